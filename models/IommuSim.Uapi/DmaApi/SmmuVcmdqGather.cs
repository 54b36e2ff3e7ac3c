using System.Runtime.InteropServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// A guest's invalidations written into its own Tegra241 VCMDQ (a guest-owned hardware command queue): the guest
/// driver writes the commands and a CMD_SYNC at PROD in its queue memory and writes PROD to its VINTF page; the SMMU
/// consumes the queue like its main one, and the waiter runs when the CMD_SYNC completes in simulated time. When the
/// queue lacks room, the guest polls CONS (as arm_smmu_cmdq_poll_until_not_full) once per command time of the SMMU
/// (assumption, as <see cref="SmmuIotlbGather"/>) and writes the batch when it fits.
/// </summary>
public sealed class SmmuVcmdqGather : IotlbGather, IEventHandler
{
    private readonly CommandQueue _queue;
    private readonly ISmmuPort _port;
    private readonly ushort _vmid, _asid;
    private readonly List<SmmuCommand> _gathered = [];
    private readonly List<SmmuCommand> _withSync = [];
    private readonly Queue<(IInvalidationWaiter? Waiter, long Cookie)> _waits = new();
    private readonly Action _onSync;
    private bool _pending, _pollArmed;
    private IInvalidationWaiter? _pendingWaiter;
    private long _pendingCookie;

    public SmmuVcmdqGather(CommandQueue queue, ISmmuPort port, ushort vmid, ushort asid)
    {
        _queue = queue;
        _port = port;
        _vmid = vmid;
        _asid = asid;
        _onSync = OnSync;
    }

    /// <summary>The commands, already as the VINTF hands them to the SMMU (VMID forced).</summary>
    public List<SmmuCommand> Commands => _gathered;

    public override int Count => _gathered.Count;

    public override void Clear() => _gathered.Clear();

    public override void Submit(IInvalidationWaiter? waiter, long cookie)
    {
        if (_pending) throw new InvalidOperationException("a VCMDQ gather is submitted again before its previous batch reached the queue");
        _withSync.Clear();
        _withSync.AddRange(CollectionsMarshal.AsSpan(_gathered));
        _withSync.Add(new SmmuCommand { Opcode = SmmuOpcode.CmdSync });
        _gathered.Clear();
        if ((uint)_withSync.Count > _queue.Entries - 1)
            throw new InvalidOperationException($"{_withSync.Count} commands do not fit a {_queue.Entries}-entry VCMDQ at once");
        _pendingWaiter = waiter;
        _pendingCookie = cookie;
        _pending = true;
        TryWrite();
    }

    private void TryWrite()
    {
        if (_queue.Submit(CollectionsMarshal.AsSpan(_withSync), _onSync))
        {
            _waits.Enqueue((_pendingWaiter, _pendingCookie));
            _pending = false;
            _pendingWaiter = null;
            return;
        }
        if (_pollArmed) return;
        _pollArmed = true;
        var smmu = _port.Smmu;
        _port.Scheduler.ScheduleAt(smmu.Clock.EdgeAfter(_port.NowPs, Math.Max(1, smmu.Options.Queues.CyclesPerCommand)), this);
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        _pollArmed = false;
        if (_pending) TryWrite();
    }

    private void OnSync()
    {
        var (waiter, cookie) = _waits.Dequeue();
        waiter?.OnInvalidationWaitDone(cookie);
    }

    public override void NoteUnmappedPendingInvalidation(ushort tag, ulong iova, ulong bytes)
        => _port.NoteUnmappedPendingInvalidation(_vmid, _asid, iova, bytes);
}
