using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Vm;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// The guest's own SMMUv3 structures for a nested STE, as a guest arm-smmu-v3 driver writes them into its RAM: a
/// linear CD table (one CD, SubstreamID 0) whose TTB0 is a VMSAv8-64 stage-1 table with a 4 KiB granule. Every
/// address in them is an IPA (= GPA); the SMMU reaches them through the vIOMMU's stage 2. The guest changes its
/// table without invalidating; it sends TLBI_NH_* through the vIOMMU (or its VCMDQ) itself.
/// </summary>
public sealed class ArmVsmmuGuest
{
    /// <summary>A 48-bit stage-1 input range, Ips = 48 bits (CD.IPS 5): a guest's usual Linux configuration.</summary>
    public const int InputBits = 48;

    public ArmVsmmuGuest(VirtualMachine vm, ushort asid)
    {
        Vm = vm;
        Asid = asid;
        var mem = new Memory(vm.TableMemory);
        Stage1 = new VmsaPageTable(mem, SmmuStage.Stage1, Granule.Size4K, InputBits);
        CdTable = new ContextDescriptorTable(mem, 0);
        CdTable.Install(0, new ContextDescriptor
        {
            Valid = true, T0Sz = 64 - InputBits, Tg0 = Granule.Size4K, Ips = 5, Aa64 = true, HardwareAccess = true,
            Record = true, Asid = asid, Ttb0 = Stage1.Root,
        });
    }

    public VirtualMachine Vm { get; }
    public ushort Asid { get; }
    public VmsaPageTable Stage1 { get; }
    public ContextDescriptorTable CdTable { get; }

    /// <summary>The STE word 0 a guest writes for this CD table: V | Config S1_TRANS | S1ContextPtr (S1Fmt linear, S1CDMax 0).</summary>
    public ulong Ste0 => ArmVsmmuUserData.STRTAB_STE_0_V | ((ulong)ArmVsmmuUserData.STRTAB_STE_0_CFG_S1_TRANS << 1)
                         | (CdTable.Base & ArmVsmmuUserData.STRTAB_STE_0_S1CTXPTR_MASK);

    /// <summary>Guest RAM as SMMU table memory: table pages from the guest's allocator, addresses are IPAs.</summary>
    private sealed class Memory(GuestTableMemory guest) : ISmmuTableMemory
    {
        public ulong ReadU64(ulong address) => guest.ReadEntry(address);
        public void WriteU64(ulong address, ulong value) => guest.WriteEntry(address, value);

        public ulong AllocateTable(ulong bytes)
            => bytes <= 4096 ? guest.AllocateTablePage() : throw new ArgumentException("a guest SMMU table larger than a 4 KiB page", nameof(bytes));

        public void FreeTable(ulong address, ulong bytes) => guest.FreeTablePage(address);
    }
}
