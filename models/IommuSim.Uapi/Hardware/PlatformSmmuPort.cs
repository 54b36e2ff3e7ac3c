using IommuSim.Hardware;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Uapi.Hardware;

/// <summary>
/// <see cref="ISmmuPort"/> over a <see cref="Platform"/> built with <c>iommu.architecture = smmuv3</c>:
/// commands go into the SMMU's command queue in simulated memory and "sync" runs the scheduler until
/// the CMD_SYNC's completion, exactly as the driver polls CONS (or waits for the sync MSI).
/// </summary>
public sealed class PlatformSmmuPort : ISmmuPort
{
    private readonly SmmuCommand[] _sync = [new SmmuCommand { Opcode = SmmuOpcode.CmdSync }];
    private readonly List<SmmuCommand> _batch = [];

    public PlatformSmmuPort(Platform platform)
    {
        Platform = platform;
        Smmu = platform.Smmu ?? throw new ArgumentException("the platform has no SMMUv3 (iommu.architecture is not smmuv3)", nameof(platform));
    }

    public Platform Platform { get; }
    public PhysicalMemory Memory => Platform.Memory;
    public FrameAllocator Frames => Platform.Frames;
    public SmmuUnit Smmu { get; }
    public long NowPs => Platform.Scheduler.Now;
    public IommuSim.Engine.Scheduling.Scheduler Scheduler => Platform.Scheduler;
    public int CommandQueueFreeSlots => (int)Smmu.CommandQueue.FreeSlots;

    public bool TrySubmit(ReadOnlySpan<SmmuCommand> commands, Action? onSync) => Smmu.CommandQueue.Submit(commands, onSync);

    public void NoteUnmappedPendingInvalidation(ushort vmid, ushort asid, ulong iova, ulong bytes)
        => Smmu.NoteUnmappedPendingInvalidation(vmid, asid, iova, bytes);

    public void Submit(ReadOnlySpan<SmmuCommand> commands, Action? onSync)
    {
        var q = Smmu.CommandQueue;
        // Commands that do not fit wait for the consumer (a full queue), in pieces of at most the queue size − 1
        // so the closing CMD_SYNC always fits behind the last piece.
        int max = (int)q.Entries - 1;
        while (commands.Length > 0)
        {
            int n = Math.Min(commands.Length, max);
            WaitForSpace(n + (commands.Length == n ? 1 : 0));
            if (commands.Length == n)
            {
                _batch.Clear();
                foreach (var c in commands) _batch.Add(c);
                _batch.Add(_sync[0]);
                q.Submit(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_batch), onSync);
                return;
            }
            q.Submit(commands[..n]);
            commands = commands[n..];
        }
        WaitForSpace(1);
        q.Submit(_sync, onSync);
    }

    public void SubmitAndSync(ReadOnlySpan<SmmuCommand> commands)
    {
        bool done = false;
        Submit(commands, () => done = true);
        Platform.RunUntil(() => done);
        if (!done) throw new InvalidOperationException("CMD_SYNC did not complete (command queue stopped on an error?)");
    }

    public void Post(ReadOnlySpan<SmmuCommand> commands)
    {
        if (!Smmu.CommandQueue.Submit(commands)) throw new InvalidOperationException("command queue full");
    }

    public void RunUntil(Func<bool> done) => Platform.RunUntil(done);

    private void WaitForSpace(int n)
    {
        var q = Smmu.CommandQueue;
        if (q.FreeSlots >= n) return;
        q.NoteFull(n); // smmu.commandQueue.fullStalls
        Platform.RunUntil(() => q.FreeSlots >= n);
        if (q.FreeSlots < n) throw new InvalidOperationException("command queue did not drain");
    }
}
