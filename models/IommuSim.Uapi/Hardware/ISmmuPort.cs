using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Uapi.Hardware;

/// <summary>
/// What the arm-smmu-v3 driver model needs from the simulated machine: the SMMU's registers and
/// in-memory structures (STRTAB_BASE, the queues), the memory tables are written into, and the
/// command queue. <see cref="Submit"/> is the asynchronous form (the completion runs in simulated
/// time when the CMD_SYNC completes, as arm_smmu_cmdq_poll_until_sync returns); <see cref="SubmitAndSync"/>
/// runs the simulation until then, for scripts and set-up.
/// </summary>
public interface ISmmuPort
{
    PhysicalMemory Memory { get; }
    FrameAllocator Frames { get; }
    SmmuUnit Smmu { get; }

    /// <summary>Simulated time now, in ps.</summary>
    long NowPs { get; }

    /// <summary>The engine's scheduler: for the kernel model's own timed work (a driver CPU polling CONS).</summary>
    Scheduler Scheduler { get; }

    /// <summary>
    /// Writes <paramref name="commands"/> (ending with CMD_SYNC when <paramref name="onSync"/> is given) at PROD if
    /// they all fit, else writes nothing and returns false: the caller polls CONS in simulated time and tries again
    /// (arm_smmu_cmdq_poll_until_not_full). Safe inside an event; never runs the simulation.
    /// </summary>
    bool TrySubmit(ReadOnlySpan<SmmuCommand> commands, Action? onSync);

    /// <summary>Free command-queue slots (queue size − (PROD − CONS)).</summary>
    int CommandQueueFreeSlots { get; }

    /// <summary>
    /// Results bookkeeping for lazy invalidation: [iova, iova+bytes) translated under (<paramref name="vmid"/>,
    /// <paramref name="asid"/>) was unmapped and may still be in the TLB; hits on it count as stale until a TLBI covers it.
    /// </summary>
    void NoteUnmappedPendingInvalidation(ushort vmid, ushort asid, ulong iova, ulong bytes);

    /// <summary>Writes <paramref name="commands"/> and a CMD_SYNC; <paramref name="onSync"/> runs when the sync
    /// completes (every earlier command, ATC invalidations included, has taken effect). A batch larger
    /// than the queue's free space waits for space first, as arm_smmu_cmdq_issue_cmdlist does.</summary>
    void Submit(ReadOnlySpan<SmmuCommand> commands, Action? onSync);

    /// <summary><see cref="Submit"/>, then runs the simulation until the CMD_SYNC completed.</summary>
    void SubmitAndSync(ReadOnlySpan<SmmuCommand> commands);

    /// <summary>Writes commands without a CMD_SYNC (PRI_RESP, RESUME: nothing waits for them). Safe inside a hardware event.</summary>
    void Post(ReadOnlySpan<SmmuCommand> commands);

    /// <summary>Runs the simulation until <paramref name="done"/> holds or nothing is left to happen (software polling).</summary>
    void RunUntil(Func<bool> done);
}
