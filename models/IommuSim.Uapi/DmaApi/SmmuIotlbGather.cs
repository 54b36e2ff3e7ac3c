using System.Runtime.InteropServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The SMMUv3 gather: the commands arm_smmu_tlb_inv_range_domain / arm_smmu_tlb_inv_context build (TLBI_NH_VA,
/// TLBI_S2_IPA, TLBI_NH_ASID, TLBI_S12_VMALL, ATC_INV), submitted with a closing CMD_SYNC through the SMMU port
/// (arm_smmu_cmdq_issue_cmdlist with sync = true). The completion is asynchronous: the waiter runs when the
/// CMD_SYNC completes in simulated time. When the command queue has no room, the driver CPU polls CONS
/// (arm_smmu_cmdq_poll_until_not_full) in simulated time, once per consumed command (assumption: it re-reads
/// CONS as often as the consumer can advance it), writing what fits; the CMD_SYNC goes with the last piece.
/// Nothing is allocated per submission once the waiter queue has grown to the number of overlapping syncs.
/// </summary>
public sealed class SmmuIotlbGather : IotlbGather, IEventHandler
{
    private readonly ISmmuPort _port;
    private readonly ushort _vmid, _asid;
    private List<SmmuCommand> _gathered = [];
    // Commands written to the queue in pieces (no room for all at once), and how far they got.
    private List<SmmuCommand> _pending = [];
    private int _pendingDone;
    private bool _pendingSync, _pollArmed;
    private IInvalidationWaiter? _pendingWaiter;
    private long _pendingCookie;
    private readonly SmmuCommand[] _piece = new SmmuCommand[1];
    private readonly List<SmmuCommand> _withSync = [];
    // CMD_SYNCs complete in order: their waiters, oldest first.
    private readonly Queue<(IInvalidationWaiter? Waiter, long Cookie)> _waits = new();
    private readonly Action _onSync;

    /// <param name="vmid">The VMID the domain's TLB entries carry (0 for a host stage-1 domain).</param>
    /// <param name="asid">The ASID they carry (0 for a stage-2 domain).</param>
    public SmmuIotlbGather(ISmmuPort port, ushort vmid, ushort asid)
    {
        _port = port;
        _vmid = vmid;
        _asid = asid;
        _onSync = OnSync;
    }

    /// <summary>Where the driver appends (<see cref="Driver.ArmSmmuV3.ArmSmmuV3Driver.DeferFlushes"/>).</summary>
    public List<SmmuCommand> Commands => _gathered;

    public override int Count => _gathered.Count;

    public override void Clear() => _gathered.Clear();

    public override void Submit(IInvalidationWaiter? waiter, long cookie)
    {
        if (_pendingSync)
        {
            // An earlier batch still waits for room: this one goes behind it, with its own CMD_SYNC later.
            throw new InvalidOperationException("a gather is submitted again before its previous batch reached the command queue");
        }
        var span = CollectionsMarshal.AsSpan(_gathered);
        _withSync.Clear();
        _withSync.AddRange(span);
        _withSync.Add(new SmmuCommand { Opcode = SmmuOpcode.CmdSync });
        if (_port.TrySubmit(CollectionsMarshal.AsSpan(_withSync), _onSync))
        {
            _waits.Enqueue((waiter, cookie));
            _gathered.Clear();
            return;
        }
        // No room: keep the batch and poll CONS.
        (_pending, _gathered) = (_gathered, _pending);
        _gathered.Clear();
        _pendingDone = 0;
        _pendingSync = true;
        _pendingWaiter = waiter;
        _pendingCookie = cookie;
        Poll();
    }

    /// <summary>Writes what fits of the pending batch; the CMD_SYNC (with the waiter) goes with its last piece.</summary>
    private void Poll()
    {
        while (_pendingSync)
        {
            int free = _port.CommandQueueFreeSlots;
            int left = _pending.Count - _pendingDone;
            if (left + 1 <= free)
            {
                _withSync.Clear();
                for (int i = _pendingDone; i < _pending.Count; i++) _withSync.Add(_pending[i]);
                _withSync.Add(new SmmuCommand { Opcode = SmmuOpcode.CmdSync });
                if (!_port.TrySubmit(CollectionsMarshal.AsSpan(_withSync), _onSync)) break;
                _waits.Enqueue((_pendingWaiter, _pendingCookie));
                _pendingSync = false;
                _pendingWaiter = null;
                _pending.Clear();
                return;
            }
            if (left == 0 || free == 0) break;
            // Room for some commands but not the sync too: write one and look again.
            _piece[0] = _pending[_pendingDone];
            if (!_port.TrySubmit(_piece, null)) break;
            _pendingDone++;
        }
        _port.Smmu.CommandQueue.NoteFull(_pending.Count - _pendingDone + 1); // smmu.commandQueue.fullStalls
        if (_pollArmed) return;
        _pollArmed = true;
        var smmu = _port.Smmu;
        long next = smmu.Clock.EdgeAfter(_port.NowPs, Math.Max(1, smmu.Options.Queues.CyclesPerCommand));
        _port.Scheduler.ScheduleAt(next, this);
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        _pollArmed = false;
        if (_pendingSync) Poll();
    }

    private void OnSync()
    {
        var (waiter, cookie) = _waits.Dequeue();
        waiter?.OnInvalidationWaitDone(cookie);
    }

    public override void NoteUnmappedPendingInvalidation(ushort tag, ulong iova, ulong bytes)
        => _port.NoteUnmappedPendingInvalidation(_vmid, _asid, iova, bytes);
}
