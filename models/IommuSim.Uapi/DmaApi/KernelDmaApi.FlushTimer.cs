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
    /// cookie->fq_timer of dma-iommu.c: one timer per DMA domain, not per CPU. The first lazy unmap after the timer
    /// last ran arms it (queue_iova: fq_timer_on); when it fires (fq_flush_timeout) it runs one domain-wide
    /// invalidation (fq_flush_iotlb) on a CPU of its own, and when that completes every CPU's flush-queue entries
    /// queued before it are freed (fq_ring_free for each CPU): their IOVAs back to the allocator, their table pages
    /// to the page allocator. A CPU whose queue fills still flushes and frees its own ring itself.
    /// </summary>
    private sealed class DomainFlushTimer : IEventHandler, IInvalidationWaiter
    {
        private readonly KernelDmaApi _api;
        private readonly IMappingTarget _t;
        private readonly IotlbGather _gather;
        private readonly List<DeviceMapper> _cpus = [];
        private readonly List<(DeviceMapper Cpu, ulong Iova, ulong Bytes, bool Fixed)> _flushing = [];
        private readonly List<ulong> _flushingFreed = [];
        private bool _armed;
        private bool _inFlight;

        public DomainFlushTimer(KernelDmaApi api, IMappingTarget target)
        {
            _api = api;
            _t = target;
            _gather = target.CreateGather();
        }

        public void Add(DeviceMapper cpu) => _cpus.Add(cpu);

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
            foreach (var cpu in _cpus) cpu.TakeQueued(_flushing, _flushingFreed);
            _gather.Clear();
            _t.AddDomainInvalidation(_gather);
            _api.Stats.Flushes++;
            _api.Stats.InvalidationDescriptors += _gather.Count + 1;
            _inFlight = true;
            _gather.Submit(this, 0);
        }

        public void OnInvalidationWaitDone(long cookie)
        {
            foreach (var (cpu, iova, bytes, isFixed) in _flushing)
                if (!isFixed) cpu.FreeIova(iova, bytes);
            _flushing.Clear();
            _t.PutTablePages(_flushingFreed);
            _inFlight = false;
        }
    }
}
