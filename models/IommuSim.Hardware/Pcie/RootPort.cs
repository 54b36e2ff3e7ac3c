using System.Runtime.CompilerServices;

namespace IommuSim.Hardware.Pcie;

/// <summary>
/// A root port: the root complex's end of one device's link (PCIe Base spec §1.3.1). It owns the
/// receive buffer the device's flow-control credits stand for (§2.6.1: posted and non-posted header
/// credits, <c>pcie.postedCredits</c>/<c>nonPostedCredits</c>; a TLP may be sent only while a credit of
/// its kind is available, and the slot's credit returns with an UpdateFC DLLP when the root complex
/// takes the TLP out) and the ordering of the device's posted writes (§2.4.1: a posted write may not
/// pass an earlier one, so a write whose translation missed holds back the writes behind it; reads
/// and translation requests may pass). Writes queue intrusively: nothing is allocated per TLP.
/// </summary>
public sealed class RootPort
{
    private int _postedCredits, _nonPostedCredits;
    private ITlpSource? _device;
    private Tlp? _writeHead, _writeTail;

    public RootPort(PcieLink link)
    {
        Link = link;
        _postedCredits = link.Options.PostedCredits;
        _nonPostedCredits = link.Options.NonPostedCredits;
    }

    public PcieLink Link { get; }
    /// <summary>Posted writes go to memory in arrival order (<c>pcie.orderedPostedWrites</c>).</summary>
    public bool OrderedPostedWrites => Link.Options.OrderedPostedWrites;
    /// <summary>Credits the device may still use (free receive-buffer slots).</summary>
    public int PostedCredits => _postedCredits;
    public int NonPostedCredits => _nonPostedCredits;

    /// <summary>Connects the device on the other end (where returned credits are announced).</summary>
    public void Connect(ITlpSource device) => _device = device;

    /// <summary>Writes and messages use posted credits; reads and translation requests non-posted ones.</summary>
    public static bool IsPosted(Tlp t) => t.IsWrite && !t.IsTranslationRequest;

    // ---- flow control (device side sends, root complex side frees) ----------------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool HasCredit(bool posted) => posted ? _postedCredits > 0 : _nonPostedCredits > 0;

    /// <summary>The device sends a TLP of this kind: one receive-buffer slot is taken.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ConsumeCredit(bool posted)
    {
        if (posted) _postedCredits--; else _nonPostedCredits--;
    }

    /// <summary>The root complex took <paramref name="tlp"/> out of the receive buffer: its credit goes back (UpdateFC).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ReturnCredit(Tlp tlp) => ReturnCredit(IsPosted(tlp));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ReturnCredit(bool posted)
    {
        if (posted) _postedCredits++; else _nonPostedCredits++;
        _device?.OnCreditReturned(posted);
    }

    // ---- posted-write ordering ----------------------------------------------------------

    /// <summary>A posted write arrived: it joins the port's write order.</summary>
    public void AppendWrite(Tlp t)
    {
        t.NextWrite = null;
        t.OrderReady = false;
        if (_writeTail is null) _writeHead = _writeTail = t;
        else { _writeTail.NextWrite = t; _writeTail = t; }
    }

    /// <summary>The write is translated (or faulted); false when an earlier write is still pending, so it must wait.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool MarkWriteReady(Tlp t)
    {
        t.OrderReady = true;
        return ReferenceEquals(_writeHead, t);
    }

    /// <summary>Takes the oldest write if it is ready to leave (to memory, or dropped when faulted).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryTakeReadyWrite(out Tlp write)
    {
        if (_writeHead is not { OrderReady: true } head)
        {
            write = null!;
            return false;
        }
        _writeHead = head.NextWrite;
        if (_writeHead is null) _writeTail = null;
        head.NextWrite = null;
        write = head;
        return true;
    }
}
