using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads.Nic;

/// <summary>
/// One queue of a NIC: its descriptor ring in memory and the ring counters both sides keep — the
/// NIC's (fetches, buffer DMAs, write-backs) and the driver's (posts, reclaims). Counters are
/// monotonic; a counter's slot is <c>counter &amp; (ringSize − 1)</c>.
/// </summary>
internal sealed class NicQueue(int index, int ringSize, ulong ringIova, ulong poolIova, bool rx)
{
    public readonly int Index = index;
    public readonly int RingSize = ringSize;
    public readonly bool IsRx = rx;
    public readonly ulong RingIova = ringIova;
    /// <summary>recycle: this queue's first pool buffer.</summary>
    public readonly ulong PoolIova = poolIova;
    public readonly ulong[] SlotBuffer = new ulong[ringSize];
    public readonly long[] ArrivalPs = new long[ringSize];
    public readonly bool[] Measured = new bool[ringSize];
    public readonly bool[] Faulted = new bool[ringSize];
    public readonly bool[] Fetched = new bool[ringSize];
    public readonly bool[] Done = new bool[ringSize];
    public readonly bool[] BufferDone = new bool[ringSize];

    public long Posted;           // descriptors handed to the NIC by the driver
    public long Claimed;          // RX: descriptors a received packet took; TX: slots the driver took for a packet
    public long FetchIssued;      // descriptors whose fetch was issued
    public long FetchDone;        // descriptors fetched, contiguous from the start
    public long BufferIssued;     // buffer DMAs issued (ring order)
    public long BufferDoneContig; // buffer DMAs completed, contiguous from the start
    public long Sent;             // TX with a line rate: packets that have left through the port (ring order)
    public long WriteBackQueued;  // descriptors covered by queued or issued write-backs
    public long DriverHead;       // written-back descriptors the driver has taken up (ring order)
    public long Freed;            // TX: slots released
    public long PoolNext;         // recycle: next pool buffer

    /// <summary>Descriptors not available for a new packet (RX: holding received packets or waiting
    /// for a refill; TX: holding packets not yet reclaimed).</summary>
    public readonly TimeAverage Occupancy = TimeAverage.Starting(rx ? ringSize : 0);
    /// <summary>1 while no descriptor is free.</summary>
    public readonly TimeAverage Full = new();

    /// <summary>True when no slot is free for a new packet.</summary>
    public bool NoFreeSlot => IsRx ? Posted == Claimed : Claimed - Freed == RingSize;

    /// <summary>A packet takes the next slot (RX: the next posted descriptor; TX: the next free slot).</summary>
    public int Claim(long nowPs, bool measured)
    {
        int slot = (int)(Claimed & (RingSize - 1));
        ArrivalPs[slot] = nowPs;
        Measured[slot] = measured;
        Faulted[slot] = false;
        Claimed++;
        UpdateOccupancy(nowPs);
        return slot;
    }

    public void UpdateOccupancy(long nowPs)
    {
        long occ = IsRx ? RingSize - (Posted - Claimed) : Claimed - Freed;
        Occupancy.Set(nowPs, occ);
        Full.Set(nowPs, occ >= RingSize ? 1 : 0);
    }
}
