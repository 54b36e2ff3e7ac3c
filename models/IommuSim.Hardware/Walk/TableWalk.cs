namespace IommuSim.Hardware.Walk;

/// <summary>
/// What every table walk in flight has, whatever the table format (VT-d paging structures or
/// VMSAv8-64 descriptors): the requests waiting on it, the walker (slot) running it, the level
/// reached in each stage and the one descriptor read in flight. Pooled by <see cref="WalkerSlots{TWalk, TRequest, TOps}"/>.
/// </summary>
internal abstract class TableWalk<TRequest> where TRequest : class
{
    /// <summary>Waiting requests, linked through the request's own link field (the first one started the walk).</summary>
    public TRequest? Head, Tail;
    /// <summary>Index of the walker running this walk.</summary>
    public int Slot;
    public long StartPs;
    /// <summary>Some waiter writes (the leaf's dirty state is set on the way out).</summary>
    public bool AnyWrite;
    public bool Faulted;

    /// <summary>Current stage-1 and stage-2 level (the observer reports the level of each read).</summary>
    public int S1Level;
    public int S2Level;

    // The read in flight.
    public ulong PendingAddress;
    public ulong PendingValue;
    /// <summary>Which stage's read waits for its walk-cache lookup to end (a <see cref="WalkEventKinds"/> value).</summary>
    public int PendingKind;
}

/// <summary>The event kinds a table walker schedules on itself.</summary>
internal static class WalkEventKinds
{
    /// <summary>A stage-1 table entry arrived from memory.</summary>
    public const int Stage1Read = 1;
    /// <summary>A stage-2 table entry arrived from memory.</summary>
    public const int Stage2Read = 2;
    /// <summary>The walk-cache lookup before a read is over: the read goes to memory now.</summary>
    public const int Issue = 3;
}

/// <summary>
/// The architecture-specific part of the walker-slot bookkeeping, implemented by a readonly struct so
/// that <see cref="WalkerSlots{TWalk, TRequest, TOps}"/> is compiled for it and every call is direct
/// (no interface or virtual dispatch per event).
/// </summary>
internal interface IWalkerOps<TWalk, TRequest> where TRequest : class
{
    /// <summary>The request's link in a waiter list or the walker queue.</summary>
    TRequest? GetNext(TRequest r);
    void SetNext(TRequest r, TRequest? next);
    bool IsWrite(TRequest r);
    /// <summary>A miss for <paramref name="r"/> can join walk <paramref name="w"/> (same tag, same 4 KiB page).</summary>
    bool Covers(TWalk w, TRequest r);
    /// <summary>Resets the architecture's walk state for a walk started by <paramref name="first"/>.</summary>
    void Init(TWalk w, TRequest first);
    /// <summary>Starts the walk's first step (cache lookups, first read or an immediate fault).</summary>
    void Begin(TWalk w);
    void OnStarted(Observers.HardwareObserver o, int slot, TRequest r);
    void OnJoined(Observers.HardwareObserver o, int slot, TRequest r);
    /// <summary>Writes the walk's outcome into one waiter (translation, or the fault it takes).</summary>
    void Deliver(TWalk w, TRequest r, PageTables.Access rights, int reads, bool first);
    /// <summary>Hands a waiter back to the translation pipeline.</summary>
    void Done(TRequest r);
    /// <summary>Before a queued miss starts its walk: true when the TLB filled it meanwhile (and the pipeline took it).</summary>
    bool TryCompleteFromTlb(TRequest r);
}
