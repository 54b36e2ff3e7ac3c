using CsCheck;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Iopt;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// One kernel: a VFIO program (iommufd cdev or legacy container) that maps per request through the run-time
/// DMA API maps through its IOAS (IOMMU_IOAS_MAP / VFIO_IOMMU_MAP_DMA, iommufd_ioas_map → iopt_map_pages →
/// iopt_fill_domain; unmap: iopt_unmap_iova_range → iopt_area_unfill_domain → iommu_unmap + iotlb_sync). CsCheck
/// generates random map / unmap / DMA sequences, strict or lazy; after every step the IOAS areas, the domain's page
/// table and what a DMA reaches must agree, and an unmapped IOVA must fault once its invalidation has completed
/// (strict: when the unmap returns; lazy: after the flush-queue flush). On VT-d and on SMMUv3 (the same iommufd
/// objects over the arm-smmu-v3 domain: TLBI_NH_VA / TLBI_NH_ASID + CMD_SYNC through the neutral gather).
/// </summary>
public class OneKernelPropertyTests
{
    public enum StepKind { Map, Unmap, Dma }

    public readonly record struct Step(StepKind Kind, int Pick, int Bytes, int Offset)
    {
        public override string ToString() => $"new(StepKind.{Kind}, {Pick}, {Bytes}, {Offset})";
    }

    private static readonly Gen<Step> StepGen = Gen.Select(
        Gen.Frequency((4, Gen.Const(StepKind.Map)), (3, Gen.Const(StepKind.Unmap)), (3, Gen.Const(StepKind.Dma))),
        Gen.Int[0, 1 << 16], Gen.Int[1, 5 * 4096], Gen.Int[0, 1 << 16],
        (k, p, b, o) => new Step(k, p, b, o));

    private static readonly Gen<(bool Lazy, Step[] Steps)> Sequence = Gen.Select(Gen.Bool, StepGen.Array[1, 40]);

    [Theory]
    [InlineData("iommufd", "vtd")]
    [InlineData("vfio-container", "vtd")]
    [InlineData("iommufd", "smmuv3")]        // arm_smmu_unmap_pages + arm_smmu_iotlb_sync: TLBI_NH_VA + CMD_SYNC
    [InlineData("vfio-container", "smmuv3")]
    public void PerRequestMapping_KeepsIoasAreasDomainTablesAndDmaInAgreement(string via, string arch)
    {
        long checkedDmas = 0, faultsAfterUnmap = 0;
        Sequence.Sample(s =>
        {
            var rig = new Rig(via, s.Lazy, arch);
            foreach (var step in s.Steps) rig.Apply(step);
            checkedDmas += rig.CheckedDmas;
            faultsAfterUnmap += rig.FaultsAfterUnmap;
        }, iter: 60, threads: 1, seed: "6RQEg2QAluN1",
        print: s => $"lazy={s.Lazy} [" + string.Join(", ", s.Steps) + "]");
        // The generator must reach the hardware both ways, or the agreement would hold vacuously.
        Assert.True(checkedDmas > 100 && faultsAfterUnmap > 20, $"{checkedDmas} DMAs checked, {faultsAfterUnmap} faults after unmap");
    }

    /// <summary>A platform with one device attached through <c>via</c>, its DMA API and the test's view of what is live.</summary>
    private sealed class Rig : IDmaApiClient
    {
        private readonly Platform _hw;
        private readonly KernelDmaApi _api;
        private readonly DmaEngine _dev;
        private readonly IoPagetable _iopt;
        // The domain's table, whatever the IOMMU: what a page translates to (VT-d PageTable or VMSAv8-64), and
        // how many bytes it maps (null: the VMSA table does not count them).
        private readonly Func<ulong, ulong?> _translate;
        private readonly Func<ulong>? _mappedBytes;
        private readonly Func<bool> _invalidationIdle;
        private readonly ProvisionedSystem _sys;
        private readonly bool _lazy;
        private readonly List<(ulong Iova, int Bytes)> _live = [];
        private readonly List<ulong> _unmapped = [];
        private ulong _mapped;
        private bool _done;

        public long CheckedDmas { get; private set; }
        public long FaultsAfterUnmap { get; private set; }

        public Rig(string via, bool lazy, string arch)
        {
            _lazy = lazy;
            _hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuSim.Hardware.Iommu.IommuOptions { Architecture = arch });
            var rid = Sim.Dev3;
            _sys = SystemProvisioner.Provision(_hw, new ProvisionRequest("single-stage", new StageSpec(), new StageSpec(), [],
                [new DeviceProvision(rid, via, [])]));
            var pd = _sys.Devices[rid];
            _dev = _hw.Device(rid)!;
            _iopt = ((Ioas)pd.Context!.Lookup(pd.IoasId)!).Iopt;
            switch (((HwptPaging)pd.Context.Lookup(pd.HwptId)!).PagingDomain)
            {
                case Uapi.Driver.VtdPagingDomain v:
                    _translate = va => v.Table.TryTranslate(va, out ulong pa, out _, out _) ? pa : null;
                    _mappedBytes = () => v.Table.MappedBytes;
                    _invalidationIdle = () => _hw.Iommu.Invalidation.Idle;
                    break;
                case Uapi.Driver.ArmSmmuV3.ArmSmmuDomain a:
                    _translate = va => a.Table.Translate(va)?.Output;
                    _mappedBytes = null;
                    var q = _hw.Smmu!.CommandQueue;
                    _invalidationIdle = () => q.Prod == q.Cons;
                    break;
                default: throw new InvalidOperationException("unexpected domain");
            }
            _api = new KernelDmaApi(_sys.Kernel.Port, DmaApiCosts.FromNs(lazy ? "lazy" : "strict", 200, 150, 100, 1500, 400, 4, 50));
            _api.Register(_dev, MappingTargets.ForIoas(pd.Context, pd.IoasId, pd.HwptId, via == "vfio-container", 4UL << 20,
                0x7000_0000_0000, 1UL << 36, ioctlPs: 400_000));
        }

        public void OnMapped(long tag, ulong iova) { _mapped = iova; _done = true; }
        public void OnUnmapped(long tag) => _done = true;

        public void Apply(Step s)
        {
            switch (s.Kind)
            {
                case StepKind.Map:
                {
                    _done = false;
                    _api.Map(_dev, s.Bytes, Access.ReadWrite, this, 0);
                    _hw.RunUntil(() => _done);
                    Assert.True(_done, "map did not complete");
                    Assert.DoesNotContain(_live, l => Overlaps(l.Iova, l.Bytes, _mapped, s.Bytes));
                    _live.Add((_mapped, s.Bytes));
                    _unmapped.RemoveAll(u => u >= _mapped && u < _mapped + Round(s.Bytes));
                    Dma(_mapped, s.Bytes, s.Offset);
                    break;
                }
                case StepKind.Unmap when _live.Count > 0:
                {
                    var (iova, bytes) = _live[s.Pick % _live.Count];
                    Dma(iova, bytes, s.Offset); // load the IOTLB, so that only the invalidation can make the next DMA fault
                    _live.Remove((iova, bytes));
                    _done = false;
                    long flushes = _api.Stats.Flushes;
                    _api.Unmap(_dev, iova, bytes, this, 0);
                    _hw.RunUntil(() => _done);
                    Assert.True(_done, "unmap did not complete");
                    // Lazy: the IOVA is invalidated by the next flush (queue full or timer); until then it may still hit.
                    if (_lazy) _hw.RunUntil(() => _api.Stats.Flushes > flushes && _invalidationIdle());
                    _unmapped.Add(iova);
                    break;
                }
                case StepKind.Dma when _live.Count > 0:
                {
                    var (iova, bytes) = _live[s.Pick % _live.Count];
                    Dma(iova, bytes, s.Offset);
                    break;
                }
            }
            CheckAgreement();
        }

        private static ulong Round(int bytes) => ((ulong)bytes + 0xFFF) & ~0xFFFUL;

        private static bool Overlaps(ulong a, int aBytes, ulong b, int bBytes) => a < b + Round(bBytes) && b < a + Round(aBytes);

        /// <summary>A DMA inside a live buffer reaches the page the IOAS area's user memory is backed by.</summary>
        private void Dma(ulong iova, int bytes, int offset)
        {
            ulong at = iova + (ulong)(offset % bytes) / 64 * 64 % Round(bytes);
            var r = _hw.ExecuteDma(_dev.RequesterId, null, at, 64, Access.Write);
            Assert.False(r.Faulted, $"DMA to live 0x{at:x}: {r.Reason}");
            Assert.Equal(ExpectedPa(at), r.PhysicalAddress);
            CheckedDmas++;
        }

        /// <summary>What the IOAS says <paramref name="iova"/> maps to: its area's user VA, translated by the process.</summary>
        private ulong ExpectedPa(ulong iova)
        {
            var area = _iopt.FirstArea(iova, iova) ?? throw new Xunit.Sdk.XunitException($"no IOAS area at 0x{iova:x}");
            return _sys.Process.Mm.Translate(area.SourceAddress + (iova - area.Iova))!.Value;
        }

        private void CheckAgreement()
        {
            // IOAS areas are exactly the live buffers, and the domain maps exactly them, to the same pages.
            Assert.Equal(_live.Count, _iopt.Areas.Count);
            ulong total = 0;
            foreach (var (iova, bytes) in _live)
            {
                var area = _iopt.FirstArea(iova, iova);
                Assert.NotNull(area);
                Assert.Equal(iova, area!.Iova);
                Assert.Equal(Round(bytes), area.Length);
                for (ulong page = iova; page < iova + Round(bytes); page += 0x1000)
                {
                    ulong? pa = _translate(page);
                    Assert.True(pa.HasValue, $"domain has no entry for live 0x{page:x}");
                    Assert.Equal(ExpectedPa(page), pa!.Value);
                }
                total += Round(bytes);
            }
            if (_mappedBytes is not null) Assert.Equal(total, _mappedBytes());
            // Unmapped (and invalidated) IOVAs are gone from the IOAS and the table, and a DMA to them faults.
            foreach (ulong iova in _unmapped)
            {
                Assert.Null(_iopt.FirstArea(iova, iova));
                Assert.Null(_translate(iova));
                var r = _hw.ExecuteDma(_dev.RequesterId, null, iova, 64, Access.Write);
                Assert.True(r.Faulted, $"DMA to unmapped 0x{iova:x} reached 0x{r.PhysicalAddress:x}");
                FaultsAfterUnmap++;
            }
        }
    }
}
