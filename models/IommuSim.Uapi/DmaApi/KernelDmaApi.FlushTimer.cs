using IommuSim.Engine.Scheduling;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

public sealed partial class KernelDmaApi
{
    private readonly Dictionary<IMappingTarget, DomainFlushTimer> _flushTimers = [];

    /// <summary>The flush timer of <paramref name="target"/>'s domain, shared by every CPU mapping into it.</summary>
    private DomainFlushTimer FlushTimer(IMappingTarget target)
    {
        if (!_flushTimers.TryGetValue(target, out var t)) _flushTimers[target] = t = new DomainFlushTimer(this, target);
        return t;
    }

    /// <summary>
    /// The flush-queue state dma-iommu.c keeps per DMA domain (struct iommu_dma_cookie): the flush start and finish
    /// counts (fq_flush_start_cnt, fq_flush_finish_cnt; fq_flush_iotlb raises one before and the other after a
    /// domain-wide invalidation) and the one flush timer (fq_timer). The first lazy unmap after the timer last ran
    /// arms it (queue_iova: fq_timer_on); when it fires (fq_flush_timeout) it runs one domain-wide invalidation on a
    /// CPU of its own and, when that completes, frees every CPU's ring (fq_ring_free). A CPU whose queue fills
    /// flushes and frees its own ring; the others free what that flush covered at their next unmap.
    /// </summary>
    private sealed class DomainFlushTimer : IEventHandler, IInvalidationWaiter
    {
        private readonly KernelDmaApi _api;
        private readonly IMappingTarget _t;
        private readonly IotlbGather _gather;
        private readonly List<DeviceMapper> _cpus = [];
        private bool _armed;
        private bool _inFlight;

        public DomainFlushTimer(KernelDmaApi api, IMappingTarget target)
        {
            _api = api;
            _t = target;
            _gather = target.CreateGather();
        }

        public void Add(DeviceMapper cpu) => _cpus.Add(cpu);

        public long FlushStartCount { get; private set; }
        public long FlushFinishCount { get; private set; }

        /// <summary>A domain-wide invalidation was queued (atomic64_inc(&amp;cookie->fq_flush_start_cnt)).</summary>
        public void FlushStarted() => FlushStartCount++;

        /// <summary>It completed (atomic64_inc(&amp;cookie->fq_flush_finish_cnt)); the invalidation queue completes in order.</summary>
        public void FlushFinished() => FlushFinishCount++;

        public void Arm()
        {
            if (_armed) return;
            _armed = true;
            _api._port.Scheduler.ScheduleIn(_api._costs.FlushTimeoutPs, this, 0, 0);
        }

        public void OnEvent(int kind, long arg, object? payload)
        {
            _armed = false;
            if (_inFlight)
            {
                // The last timer flush is still in the hardware: its entries are not freed yet, so try again later.
                Arm();
                return;
            }
            foreach (var cpu in _cpus)
                if (cpu.Queued > 0) _api.Observer?.OnFlush(cpu.Device, cpu.Cpu, true, cpu.Queued);
            _gather.Clear();
            _t.AddDomainInvalidation(_gather);
            _api.Stats.Flushes++;
            _api.Stats.InvalidationDescriptors += _gather.Count + 1;
            _inFlight = true;
            FlushStarted();
            _gather.Submit(this, 0);
        }

        public void OnInvalidationWaitDone(long cookie)
        {
            FlushFinished();
            foreach (var cpu in _cpus) cpu.FreeFlushed();
            _inFlight = false;
        }
    }
}
