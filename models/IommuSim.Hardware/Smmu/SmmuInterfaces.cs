namespace IommuSim.Hardware.Smmu;

/// <summary>Where translated transactions go (the root complex, a test harness).</summary>
public interface ISmmuClient
{
    /// <summary>A transaction finished translation (<see cref="SmmuTransaction.Faulted"/> says how).</summary>
    void OnTranslated(SmmuTransaction t);
    /// <summary>A translation slot freed after the SMMU refused a transaction.</summary>
    void OnSlotFree();
}

/// <summary>An ATS-capable endpoint the SMMU talks back to: its ATC and its PRI interface.</summary>
public interface ISmmuAtsEndpoint
{
    /// <summary>CMD_ATC_INV: removes ATC entries of [address, address + 4 KiB × 2^log2Pages) (of one
    /// substream when <paramref name="substreamValid"/>); returns how many.</summary>
    int InvalidateAtc(bool substreamValid, uint ssid, ulong address, uint log2Pages);

    /// <summary>CMD_PRI_RESP for a page-request group the endpoint sent (0 deny, 1 failure, 2 success).</summary>
    void OnPriResponse(bool substreamValid, uint ssid, ushort prgi, byte response);
}
