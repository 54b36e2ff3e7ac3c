namespace IommuSim.Uapi.Memory;

/// <summary>mmap(2) protection bits (include/uapi/asm-generic/mman-common.h) the model's MMAP takes.</summary>
public static class Mman
{
    public const uint PROT_READ = 1;
    public const uint PROT_WRITE = 2;

    /// <summary>RLIM_INFINITY (include/uapi/asm-generic/resource.h): no RLIMIT_MEMLOCK.</summary>
    public const ulong RLIM_INFINITY = ulong.MaxValue;
}
