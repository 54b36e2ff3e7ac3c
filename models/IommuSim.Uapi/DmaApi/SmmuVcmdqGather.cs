using System.Runtime.InteropServices;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// A guest's invalidations written into its own Tegra241 VCMDQ (a guest-owned hardware command queue): the guest
/// driver writes the commands and a CMD_SYNC at PROD in its queue memory and writes PROD to its VINTF page; the SMMU
/// consumes the queue like its main one, and the waiter runs when the CMD_SYNC completes in simulated time. When the
/// queue lacks room, the guest polls CONS (as arm_smmu_cmdq_poll_until_not_full) and writes the batch when it fits.
/// </summary>
public sealed class SmmuVcmdqGather(CommandQueue queue, ISmmuPort port, ushort vmid, ushort asid) : SmmuCommandGather(port, vmid, asid)
{
    private bool _pending;
    private IInvalidationWaiter? _pendingWaiter;
    private long _pendingCookie;

    public override void Submit(IInvalidationWaiter? waiter, long cookie)
    {
        if (_pending) throw new InvalidOperationException("a VCMDQ gather is submitted again before its previous batch reached the queue");
        BuildBatch(CollectionsMarshal.AsSpan(Commands));
        Commands.Clear();
        if ((uint)WithSync.Count > queue.Entries - 1)
            throw new InvalidOperationException($"{WithSync.Count} commands do not fit a {queue.Entries}-entry VCMDQ at once");
        _pendingWaiter = waiter;
        _pendingCookie = cookie;
        _pending = true;
        TryWrite();
    }

    private void TryWrite()
    {
        if (queue.Submit(CollectionsMarshal.AsSpan(WithSync), OnSyncDone))
        {
            Written(_pendingWaiter, _pendingCookie);
            _pending = false;
            _pendingWaiter = null;
            return;
        }
        ArmPoll();
    }

    protected override void OnPoll()
    {
        if (_pending) TryWrite();
    }
}
