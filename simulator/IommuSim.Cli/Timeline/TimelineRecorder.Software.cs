using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Observers;
using static IommuSim.Cli.Timeline.TimelineNames;

namespace IommuSim.Cli.Timeline;

/// <summary>The software tracks: one thread per driver CPU (DMA-API calls and their phases) and the VMM (traps).</summary>
internal sealed partial class TimelineRecorder
{
    private readonly record struct CpuPhase(DmaApiPhase Phase, long StartPs, long EndPs);

    private sealed class CpuTrack(int tid)
    {
        public readonly int Tid = tid;
        public readonly List<CpuPhase> Phases = [];
    }

    private readonly Dictionary<(DmaEngine Device, int Cpu), CpuTrack> _cpus = [];
    private int _iopfTid;

    private CpuTrack Cpu(DmaEngine device, int cpu)
    {
        if (_cpus.TryGetValue((device, cpu), out var t)) return t;
        t = new CpuTrack(_cpus.Count + 2);
        _cpus[(device, cpu)] = t;
        _w.NameThread(PidDriverCpus, t.Tid, $"{device.Name} driver CPU {cpu}", t.Tid);
        return t;
    }

    /// <summary>Whether an overhead phase is a trap to the VMM under this design (else an ioctl of a VFIO program).</summary>
    private bool Traps(DmaApiPhase p) => _overheadsTrap
        && p is DmaApiPhase.MapOverhead or DmaApiPhase.UnmapOverhead or DmaApiPhase.InvalidationOverhead;

    private void OnPhase(DmaEngine device, int cpu, DmaApiPhase phase, long startPs, long endPs)
    {
        // Phases are reported when the CPU starts them; they are written with their call, after it.
        Cpu(device, cpu).Phases.Add(new CpuPhase(phase, startPs, endPs));
        if (!Traps(phase) || !InWindow(startPs)) return;
        int lane = _vmmLanes.Acquire(startPs, endPs);
        EnsureThread(PidVmm, lane + 1, _vmmLanes);
        _w.BeginInstant(PidVmm, lane + 1, VmExit, CatVmm, startPs, processScope: false);
        _w.Arg(ADevice, device.Name);
        _w.EndArgs();
        _w.BeginSlice(PidVmm, lane + 1, Trap(phase), CatVmm, startPs, endPs);
        _w.Arg(ADevice, device.Name);
        _w.EndArgs();
    }

    private void OnCall(DmaEngine device, int cpu, DmaApiCall call, long startPs, ulong iova, int bytes)
    {
        var t = Cpu(device, cpu);
        long now = _sched.Now;
        if (InWindow(startPs))
        {
            _w.BeginSlice(PidDriverCpus, t.Tid, call == DmaApiCall.Map ? Map : Unmap, CatSoftware, startPs, now);
            _w.ArgHex(AIova, iova);
            _w.Arg(ABytes, bytes);
            _w.EndArgs();
            foreach (var p in t.Phases)
            {
                if (p.StartPs >= startPs && p.EndPs <= now) _w.Slice(PidDriverCpus, t.Tid, Phase(p.Phase), CatSoftware, p.StartPs, p.EndPs);
            }
        }
        t.Phases.Clear();
    }

    private void OnFlush(DmaEngine device, int cpu, bool timer, int entries)
    {
        long now = _sched.Now;
        if (!InWindow(now)) return;
        _w.BeginInstant(PidDriverCpus, Cpu(device, cpu).Tid, timer ? FlushTimer : FlushFull, CatSoftware, now, processScope: false);
        _w.Arg(AEntries, entries);
        _w.EndArgs();
    }

    private void OnPageFault(DmaEngine device, ulong address, long startPs, long deliveryPs, bool success)
    {
        if (!InWindow(startPs)) return;
        if (_iopfTid == 0)
        {
            _iopfTid = 1;
            _w.NameThread(PidDriverCpus, _iopfTid, "I/O page-fault handler", 1);
        }
        _w.BeginSlice(PidDriverCpus, _iopfTid, PageFault, CatSoftware, startPs, _sched.Now);
        _w.Arg(ADevice, device.Name);
        _w.ArgHex(AAddress, address);
        _w.Arg(ASuccess, success ? 1 : 0);
        _w.ArgNs(ADelivery, deliveryPs);
        _w.EndArgs();
        if (deliveryPs <= 0) return;
        int lane = _vmmLanes.Acquire(startPs, startPs + deliveryPs);
        EnsureThread(PidVmm, lane + 1, _vmmLanes);
        _w.BeginInstant(PidVmm, lane + 1, VmExit, CatVmm, startPs, processScope: false);
        _w.Arg(ADevice, device.Name);
        _w.EndArgs();
        _w.BeginSlice(PidVmm, lane + 1, FaultViaVmm, CatVmm, startPs, startPs + deliveryPs);
        _w.Arg(ADevice, device.Name);
        _w.EndArgs();
    }

    /// <summary>The software hooks, forwarded to the recorder (a class can have one base).</summary>
    private sealed class Software(TimelineRecorder r) : SoftwareObserver
    {
        public override void OnDmaApiPhase(DmaEngine device, int cpu, DmaApiPhase phase, long startPs, long endPs) => r.OnPhase(device, cpu, phase, startPs, endPs);
        public override void OnDmaApiCall(DmaEngine device, int cpu, DmaApiCall call, long startPs, ulong iova, int bytes) => r.OnCall(device, cpu, call, startPs, iova, bytes);
        public override void OnFlush(DmaEngine device, int cpu, bool timer, int entries) => r.OnFlush(device, cpu, timer, entries);
        public override void OnPageFaultHandled(DmaEngine device, ulong address, long startPs, long deliveryPs, bool success) => r.OnPageFault(device, address, startPs, deliveryPs, success);
    }
}
