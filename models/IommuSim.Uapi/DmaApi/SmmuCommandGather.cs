using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// What the SMMUv3 gathers share, whichever queue they write (the host's command queue, <see cref="SmmuIotlbGather"/>;
/// a guest's Tegra241 VCMDQ, <see cref="SmmuVcmdqGather"/>): the gathered commands, the batch with its closing
/// CMD_SYNC, the waiters of the syncs in flight (they complete in order), the stale-translation bookkeeping under
/// the domain's VMID/ASID, and the poll of CONS in simulated time when the queue has no room (once per command time
/// of the SMMU, assumption: the driver re-reads CONS as often as the consumer can advance it).
/// </summary>
public abstract class SmmuCommandGather : IotlbGather, IEventHandler
{
    private readonly ushort _vmid, _asid;
    private readonly Queue<(IInvalidationWaiter? Waiter, long Cookie)> _waits = new();
    private bool _pollArmed;

    protected SmmuCommandGather(ISmmuPort port, ushort vmid, ushort asid)
    {
        Port = port;
        _vmid = vmid;
        _asid = asid;
        OnSyncDone = OnSync;
    }

    protected ISmmuPort Port { get; }

    /// <summary>The batch as written: the gathered commands and a CMD_SYNC.</summary>
    protected List<SmmuCommand> WithSync { get; } = [];

    /// <summary>Runs when a batch's CMD_SYNC completes (one delegate, so a submission allocates nothing).</summary>
    protected Action OnSyncDone { get; }

    /// <summary>Where the driver appends.</summary>
    public List<SmmuCommand> Commands { get; protected set; } = [];

    public override int Count => Commands.Count;

    public override void Clear() => Commands.Clear();

    /// <summary>Fills <see cref="WithSync"/> with <paramref name="commands"/> and a closing CMD_SYNC.</summary>
    protected void BuildBatch(ReadOnlySpan<SmmuCommand> commands)
    {
        WithSync.Clear();
        WithSync.AddRange(commands);
        WithSync.Add(new SmmuCommand { Opcode = SmmuOpcode.CmdSync });
    }

    /// <summary>A batch with its CMD_SYNC is in the queue: <paramref name="waiter"/> runs when that sync completes.</summary>
    protected void Written(IInvalidationWaiter? waiter, long cookie) => _waits.Enqueue((waiter, cookie));

    /// <summary>The queue had no room: look at CONS again one command time later (<see cref="OnPoll"/>).</summary>
    protected void ArmPoll()
    {
        if (_pollArmed) return;
        _pollArmed = true;
        var smmu = Port.Smmu;
        Port.Scheduler.ScheduleAt(smmu.Clock.EdgeAfter(Port.NowPs, Math.Max(1, smmu.Options.Queues.CyclesPerCommand)), this);
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        _pollArmed = false;
        OnPoll();
    }

    /// <summary>The poll fired: write what is still waiting for room, if anything.</summary>
    protected abstract void OnPoll();

    private void OnSync()
    {
        var (waiter, cookie) = _waits.Dequeue();
        waiter?.OnInvalidationWaitDone(cookie);
    }

    public override void NoteUnmappedPendingInvalidation(ushort tag, ulong iova, ulong bytes)
        => Port.NoteUnmappedPendingInvalidation(_vmid, _asid, iova, bytes);
}
