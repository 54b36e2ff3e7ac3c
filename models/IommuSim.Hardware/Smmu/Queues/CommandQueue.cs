using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Smmu.Queues;

/// <summary>What executes commands (the SMMU's caches, its ATS endpoints, stalled transactions).</summary>
public interface ISmmuCommandTarget
{
    /// <summary>Carries out a non-sync command; returns the extra time it takes (ps), e.g. an ATC
    /// invalidation's round trip to the device, which a later CMD_SYNC must wait for.</summary>
    long Execute(in SmmuCommand command);
}

/// <summary>
/// The command queue (SMMUv3 §3.5, §4): 2^log2 16-byte commands in memory, PROD written by
/// software, CONS by the SMMU. The consumer reads one command at a time from memory, executes it in
/// <c>cyclesPerCommand</c> SMMU cycles (plus what the target says: an ATC invalidation waits for the
/// device), and advances CONS. CMD_SYNC completes only when every earlier command, including
/// outstanding ATC invalidations, has completed; then it writes its MSI (or software sees CONS
/// pass it). A command with an unknown opcode stops the queue with CERROR_ILL, as on hardware.
/// </summary>
public sealed class CommandQueue : IEventHandler, IResettable
{
    private const int KindConsume = 1;
    private const int KindExecuted = 2;

    private readonly ISmmuTableMemory _memory;
    private readonly PhysicalMemory? _physical;
    private readonly MemoryTimingModel _timing;
    private readonly Scheduler _sched;
    private readonly ClockDomain _clock;
    private readonly int _cyclesPerCommand;
    private readonly QueueIndex _index;
    private ISmmuCommandTarget? _target;
    private bool _busy;
    private long _atcDoneAt;
    private readonly Dictionary<uint, Action> _syncWaiters = [];
    /// <summary>When software wrote each slot (for the hooks: how long a command waited in the queue).</summary>
    private readonly long[] _submitPs;
    private long _fetchPs;

    public CommandQueue(ISmmuTableMemory memory, MemoryTimingModel timing, Scheduler sched, ClockDomain clock,
        int log2Size, int cyclesPerCommand, PhysicalMemory? physical = null)
        : this(memory, timing, sched, clock, log2Size, cyclesPerCommand, physical, memory.AllocateTable(16UL << log2Size)) { }

    /// <summary>A queue at a base software chose (a guest's queue memory, e.g. a Tegra241 VCMDQ): nothing is allocated.</summary>
    public CommandQueue(ISmmuTableMemory memory, MemoryTimingModel timing, Scheduler sched, ClockDomain clock,
        int log2Size, int cyclesPerCommand, PhysicalMemory? physical, ulong baseAddress)
    {
        _memory = memory;
        _physical = physical;
        _timing = timing;
        _sched = sched;
        _clock = clock;
        _cyclesPerCommand = cyclesPerCommand;
        _index = new QueueIndex(log2Size);
        _submitPs = new long[_index.Entries];
        Base = baseAddress;
    }

    /// <summary>SMMU_CMDQ_BASE.ADDR.</summary>
    public ulong Base { get; }
    public uint Entries => _index.Entries;
    /// <summary>SMMU_CMDQ_PROD (software).</summary>
    public uint Prod { get; private set; }
    /// <summary>SMMU_CMDQ_CONS (hardware).</summary>
    public uint Cons { get; private set; }
    /// <summary>SMMU_CMDQ_CONS.ERR: set when the consumer stopped on an illegal command.</summary>
    public bool Error { get; private set; }
    public long Executed { get; private set; }
    public long Syncs { get; private set; }
    public LatencyHistogram SyncLatency { get; } = new("smmu.cmdSync");

    public void Attach(ISmmuCommandTarget target) => _target = target;

    /// <summary>Hooks (statistics, tracing), set by the SMMU that owns the queue.</summary>
    public HardwareObserver? Observer { get; internal set; }

    /// <summary>Software found no room for <paramref name="commands"/> commands and waits for CONS to move
    /// (for producers that check <see cref="FreeSlots"/> themselves, as arm_smmu_cmdq_issue_cmdlist polls).
    /// A producer polling again before anything was written is the same stall: reported once.</summary>
    public void NoteFull(int commands)
    {
        if (_stalled) return;
        _stalled = true;
        Observer?.OnSmmuCommandQueueFull(this, commands);
    }

    private bool _stalled;

    public uint FreeSlots => _index.Entries - _index.Count(Prod, Cons);

    /// <summary>Software writes <paramref name="commands"/> at PROD and rings the doorbell. Returns false
    /// (and writes nothing) when they do not fit: the driver waits for CONS, as arm_smmu_cmdq_issue_cmdlist does.
    /// <paramref name="onSync"/> runs when the batch's last command, a CMD_SYNC, completes.</summary>
    public bool Submit(ReadOnlySpan<SmmuCommand> commands, Action? onSync = null)
    {
        if (commands.Length == 0) return true;
        if (commands.Length > FreeSlots)
        {
            NoteFull(commands.Length);
            return false;
        }
        if (onSync is not null && commands[^1].Opcode != SmmuOpcode.CmdSync)
            throw new ArgumentException("a completion callback needs the batch to end with CMD_SYNC");
        _stalled = false;
        foreach (var c in commands)
        {
            c.Encode(out ulong d0, out ulong d1);
            ulong slot = Base + 16UL * _index.Position(Prod);
            _memory.WriteU64(slot, d0);
            _memory.WriteU64(slot + 8, d1);
            _submitPs[_index.Position(Prod)] = _sched.Now;
            Prod = _index.Next(Prod);
        }
        if (onSync is not null) _syncWaiters[(Prod - 1) & ((2u << _index.Log2Size) - 1)] = onSync;
        Kick();
        return true;
    }

    private void Kick()
    {
        if (_busy || Error || _index.Empty(Prod, Cons)) return;
        _busy = true;
        _fetchPs = _sched.Now;
        // The consumer fetches the next command from memory (one 16-byte read).
        _sched.ScheduleAt(_timing.WalkRead(_sched.Now), this, KindConsume);
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        if (kind == KindExecuted)
        {
            CompleteCurrent();
            return;
        }
        ulong slot = Base + 16UL * _index.Position(Cons);
        var command = SmmuCommand.Decode(_memory.ReadU64(slot), _memory.ReadU64(slot + 8));
        if (!SmmuCommand.IsKnown(command.Opcode))
        {
            Error = true; // CERROR_ILL: CONS stays on the bad command until software fixes it
            _busy = false;
            return;
        }
        long done = _clock.EdgeAfter(_sched.Now, _cyclesPerCommand);
        if (command.Opcode == SmmuOpcode.CmdSync)
        {
            // Waits for every earlier command, outstanding ATC invalidations included.
            done = Math.Max(done, _atcDoneAt);
            Syncs++;
        }
        else
        {
            long extra = _target?.Execute(command) ?? 0;
            if (extra > 0) _atcDoneAt = Math.Max(_atcDoneAt, _sched.Now + extra);
        }
        if (command.Opcode == SmmuOpcode.CmdSync) SyncLatency.Record(done - _sched.Now);
        _sched.ScheduleAt(done, this, KindExecuted);
    }

    private void CompleteCurrent()
    {
        uint current = Cons;
        ulong slot = Base + 16UL * _index.Position(current);
        var command = SmmuCommand.Decode(_memory.ReadU64(slot), _memory.ReadU64(slot + 8));
        Cons = _index.Next(Cons);
        Executed++;
        _busy = false;
        Observer?.OnSmmuCommand(this, command, _submitPs[_index.Position(current)], _fetchPs);
        if (command.Opcode == SmmuOpcode.CmdSync)
        {
            if (command.MsiAddress != 0) _physical?.WriteU64(command.MsiAddress, 1); // the completion MSI's data
            if (_syncWaiters.Remove(current, out var done)) done();
        }
        Kick();
    }

    /// <summary>Software recovers from CERROR_ILL: skips the bad command (as arm_smmu_cmdq_skip_err turns it into a CMD_SYNC).</summary>
    public void SkipError()
    {
        if (!Error) return;
        Error = false;
        Cons = _index.Next(Cons);
        Kick();
    }

    public void Reset()
    {
        Executed = Syncs = 0;
        SyncLatency.Reset();
    }
}
