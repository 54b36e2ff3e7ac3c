using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace IommuSim.Hardware.Memory;

/// <summary>
/// Sparse simulated physical memory: 4 KiB frames are materialised on first write; reads of
/// never-written memory return zeros. Holds the bytes only; timing is <see cref="MemoryTimingModel"/>.
/// </summary>
public sealed class PhysicalMemory
{
    public const int FrameShift = 12;
    public const int FrameSize = 1 << FrameShift;
    private const ulong OffsetMask = FrameSize - 1;

    private readonly Dictionary<ulong, byte[]> _frames = [];

    /// <summary>Frames that have been written (and so hold host memory).</summary>
    public int ResidentFrames => _frames.Count;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public ulong ReadU64(ulong pa)
    {
        if ((pa & 7) != 0) throw new ArgumentException($"unaligned 8-byte read at 0x{pa:x}", nameof(pa));
        return _frames.TryGetValue(pa >> FrameShift, out var f)
            ? BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan((int)(pa & OffsetMask), 8))
            : 0;
    }

    public void WriteU64(ulong pa, ulong value)
    {
        if ((pa & 7) != 0) throw new ArgumentException($"unaligned 8-byte write at 0x{pa:x}", nameof(pa));
        BinaryPrimitives.WriteUInt64LittleEndian(Frame(pa).AsSpan((int)(pa & OffsetMask), 8), value);
    }

    public void Read(ulong pa, Span<byte> dest)
    {
        while (dest.Length > 0)
        {
            int off = (int)(pa & OffsetMask);
            int n = Math.Min(dest.Length, FrameSize - off);
            if (_frames.TryGetValue(pa >> FrameShift, out var f)) f.AsSpan(off, n).CopyTo(dest);
            else dest[..n].Clear();
            dest = dest[n..];
            pa += (ulong)n;
        }
    }

    public void Write(ulong pa, ReadOnlySpan<byte> src)
    {
        while (src.Length > 0)
        {
            int off = (int)(pa & OffsetMask);
            int n = Math.Min(src.Length, FrameSize - off);
            src[..n].CopyTo(Frame(pa).AsSpan(off, n));
            src = src[n..];
            pa += (ulong)n;
        }
    }

    /// <summary>Zeroes a frame and releases its host memory.</summary>
    public void DiscardFrame(ulong pa) => _frames.Remove(pa >> FrameShift);

    private byte[] Frame(ulong pa)
    {
        ulong fn = pa >> FrameShift;
        if (!_frames.TryGetValue(fn, out var f))
        {
            f = new byte[FrameSize];
            _frames[fn] = f;
        }
        return f;
    }
}
