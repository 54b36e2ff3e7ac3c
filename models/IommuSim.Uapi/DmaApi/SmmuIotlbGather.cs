using System.Runtime.InteropServices;
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
public sealed class SmmuIotlbGather : SmmuCommandGather
{
    // Commands written to the queue in pieces (no room for all at once), and how far they got.
    private List<SmmuCommand> _pending = [];
    private int _pendingDone;
    private bool _pendingSync;
    private IInvalidationWaiter? _pendingWaiter;
    private long _pendingCookie;
    private readonly SmmuCommand[] _piece = new SmmuCommand[1];

    /// <param name="vmid">The VMID the domain's TLB entries carry (0 for a host stage-1 domain).</param>
    /// <param name="asid">The ASID they carry (0 for a stage-2 domain).</param>
    public SmmuIotlbGather(ISmmuPort port, ushort vmid, ushort asid) : base(port, vmid, asid) { }

    public override void Submit(IInvalidationWaiter? waiter, long cookie)
    {
        if (_pendingSync)
        {
            // An earlier batch still waits for room: this one goes behind it, with its own CMD_SYNC later.
            throw new InvalidOperationException("a gather is submitted again before its previous batch reached the command queue");
        }
        BuildBatch(CollectionsMarshal.AsSpan(Commands));
        if (Port.TrySubmit(CollectionsMarshal.AsSpan(WithSync), OnSyncDone))
        {
            Written(waiter, cookie);
            Commands.Clear();
            return;
        }
        // No room: keep the batch and poll CONS.
        (_pending, Commands) = (Commands, _pending);
        Commands.Clear();
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
            int free = Port.CommandQueueFreeSlots;
            int left = _pending.Count - _pendingDone;
            if (left + 1 <= free)
            {
                BuildBatch(CollectionsMarshal.AsSpan(_pending)[_pendingDone..]);
                if (!Port.TrySubmit(CollectionsMarshal.AsSpan(WithSync), OnSyncDone)) break;
                Written(_pendingWaiter, _pendingCookie);
                _pendingSync = false;
                _pendingWaiter = null;
                _pending.Clear();
                return;
            }
            if (left == 0 || free == 0) break;
            // Room for some commands but not the sync too: write one and look again.
            _piece[0] = _pending[_pendingDone];
            if (!Port.TrySubmit(_piece, null)) break;
            _pendingDone++;
        }
        Port.Smmu.CommandQueue.NoteFull(_pending.Count - _pendingDone + 1); // smmu.commandQueue.fullStalls
        ArmPoll();
    }

    protected override void OnPoll()
    {
        if (_pendingSync) Poll();
    }
}
