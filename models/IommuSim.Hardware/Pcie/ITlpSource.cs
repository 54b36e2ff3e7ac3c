namespace IommuSim.Hardware.Pcie;

/// <summary>A device as the root complex sees it: its link, and where finished TLPs and returned
/// flow-control credits go.</summary>
public interface ITlpSource
{
    PcieLink Link { get; }
    /// <summary>The device's posted writes in arrival order, for PCIe write ordering at the root port.</summary>
    PostedWriteOrder WriteOrder { get; }
    /// <summary>A write was accepted by memory, or the last completion of a read arrived.</summary>
    void OnTlpDone(Tlp tlp);
    /// <summary>The root port freed a receive-buffer slot (an UpdateFC DLLP).</summary>
    void OnCreditReturned(bool posted);
}

/// <summary>A device's posted writes in the order they reached the root complex (an intrusive FIFO).</summary>
public sealed class PostedWriteOrder
{
    internal Tlp? Head;
    internal Tlp? Tail;

    internal void Append(Tlp t)
    {
        t.NextWrite = null;
        t.OrderReady = false;
        if (Tail is null) Head = Tail = t;
        else { Tail.NextWrite = t; Tail = t; }
    }
}
