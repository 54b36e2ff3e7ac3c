namespace IommuSim.Hardware.Pcie;

/// <summary>A device as the root complex sees it: its link and root port, and where finished TLPs
/// and returned flow-control credits go.</summary>
public interface ITlpSource
{
    PcieLink Link { get; }
    /// <summary>The root port at the other end of the link (credits, posted-write ordering).</summary>
    RootPort Port { get; }
    /// <summary>A write was accepted by memory, or the last completion of a read arrived.</summary>
    void OnTlpDone(Tlp tlp);
    /// <summary>The root port freed a receive-buffer slot (an UpdateFC DLLP).</summary>
    void OnCreditReturned(bool posted);
}
