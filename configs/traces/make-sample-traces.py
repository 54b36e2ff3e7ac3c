#!/usr/bin/env python3
"""Writes the sample kernel traces of configs/traces/ (ftrace text, tracefs 'trace' file layout).

They are SYNTHESISED, not recorded: this repository has no machine with an IOMMU to trace. The
script writes, line for line in the format of include/trace/events/iommu.h (map, unmap) and
drivers/iommu/intel/trace.h (qi_submit), the events a Linux kernel with Intel VT-d emits for
this command sequence on a PCIe NIC whose driver keeps a 16-entry RX ring (docs/kernel-trace.md):

    cd /sys/kernel/tracing
    echo 1 > events/iommu/map/enable;  echo 1 > events/iommu/unmap/enable
    echo 1 > events/iommu/io_page_fault/enable;  echo 1 > events/intel_iommu/qi_submit/enable
    echo 1 > tracing_on
    ip link set dev eth1 up                      # rings and RX buffers mapped
    ping -c 8 -i 0.05 -s 1400 192.0.2.1          # 8 echo requests, 50 ms apart
    echo 0 > tracing_on;  cat trace > nic-ping-strict.trace

with iommu.strict=1 on the kernel command line (nic-ping-strict.trace), and without it, i.e.
deferred invalidation through the flush queue (nic-ping-lazy.trace). The modelled kernel:
- dma_alloc_coherent / dma_map_single map whole 4 KiB pages; IOVAs come top-down from below
  4 GiB (dma-iommu tries 32-bit IOVAs first for PCI devices) and freed IOVAs are reused most
  recently freed first (the IOVA rcache);
- strict: each unmap is followed by one page-selective IOTLB invalidation (qi_submit iotlb_inv,
  granularity 3, address mask 0) - the wait descriptor that qi_submit_sync appends is not traced;
- lazy: unmapped IOVAs wait in the flush queue (freed only after the flush); the 10 ms flush
  timer, armed by the first unmap after a flush, flushes the domain (iotlb_inv, granularity 2);
- TX buffers are mapped by ping's CPU (2) and cleaned, like RX, in NAPI on the IRQ CPU (0);
  each reply's RX buffer is unmapped and a fresh one mapped (refill).

Run: python3 configs/traces/make-sample-traces.py   (rewrites both files; deterministic)
"""
import os

DID = 3
HEADER = """# tracer: nop
#
# entries-in-buffer/entries-written: {n}/{n}   #P:4
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


class Kernel:
    def __init__(self, strict):
        self.strict = strict
        self.lines = []
        self.next_top = 0x100000000  # allocation is top-down below 4 GiB
        self.rcache = []             # freed page IOVAs, reused LIFO
        self.flush_queue = []
        self.timer_at = None

    def emit(self, t, task, pid, cpu, flags, event, payload):
        self.lines.append((t, f"{task:>16}-{pid:<7} [{cpu:03d}] {flags} {t:12.6f}: {event}: {payload}"))

    def alloc(self):
        if self.rcache:
            return self.rcache.pop()
        self.next_top -= 0x1000
        return self.next_top

    def map(self, t, task, pid, cpu, flags, paddr):
        iova = self.alloc()
        self.emit(t, task, pid, cpu, flags, "map",
                  f"IOMMU: iova=0x{iova:016x} - 0x{iova + 4096:016x} paddr=0x{paddr:016x} size=4096")
        return iova

    def unmap(self, t, task, pid, cpu, flags, iova):
        self.emit(t, task, pid, cpu, flags, "unmap",
                  f"IOMMU: iova=0x{iova:016x} - 0x{iova + 4096:016x} size=4096 unmapped_size=4096")
        if self.strict:
            qw0 = DID << 16 | 0xC0 | 3 << 4 | 0x2  # DID, DR|DW, page-selective, QI_IOTLB_TYPE
            self.emit(t + 0.000001, task, pid, cpu, flags, "qi_submit", f"iotlb_inv dmar0: 0x{qw0:x} 0x{iova:x} 0x0 0x0")
            self.rcache.append(iova)
        else:
            self.flush_queue.append(iova)
            if self.timer_at is None:
                self.timer_at = t + 0.010  # IOVA_FQ_TIMEOUT, 10 ms

    def run_timer(self, until):
        if self.timer_at is not None and self.timer_at <= until:
            qw0 = DID << 16 | 0xC0 | 2 << 4 | 0x2  # domain-selective
            self.emit(self.timer_at, "<idle>", 0, 3, "..s1.", "qi_submit", f"iotlb_inv dmar0: 0x{qw0:x} 0x0 0x0 0x0")
            self.rcache.extend(self.flush_queue)
            self.flush_queue.clear()
            self.timer_at = None


def trace(strict):
    k = Kernel(strict)
    t0 = 1523.100000
    paddr = 0x1_2340_0000
    def page():
        nonlocal paddr
        paddr += 0x1000
        return paddr
    # ip link set dev eth1 up: TX and RX descriptor rings (coherent), then 16 RX buffers.
    t = t0
    tx_ring = k.map(t, "ip", 1874, 1, ".....", page()); t += 0.000004
    rx_ring = k.map(t, "ip", 1874, 1, ".....", page()); t += 0.000004
    rx = []
    for _ in range(16):
        rx.append(k.map(t, "ip", 1874, 1, ".....", page()))
        t += 0.000002
    slot = 0
    for i in range(8):
        ts = t0 + 0.010 + i * 0.050
        k.run_timer(ts)
        tx = k.map(ts, "ping", 2291, 2, ".....", page())            # dma_map_single of the echo request
        k.unmap(ts + 0.000018, "<idle>", 0, 0, "..s1.", tx)          # TX clean in NAPI
        rx_t = ts + 0.000190                                          # the reply lands in RX slot `slot`
        k.unmap(rx_t, "<idle>", 0, 0, "..s1.", rx[slot])
        rx[slot] = k.map(rx_t + 0.000003, "<idle>", 0, 0, "..s1.", page())  # refill
        slot = (slot + 1) % 16
    k.run_timer(t0 + 1.0)
    k.lines.sort(key=lambda x: x[0])  # stable: equal times keep their order
    body = "\n".join(l for _, l in k.lines) + "\n"
    return HEADER.format(n=len(k.lines)) + body


here = os.path.dirname(os.path.abspath(__file__))
for name, strict in (("nic-ping-strict.trace", True), ("nic-ping-lazy.trace", False)):
    with open(os.path.join(here, name), "w", newline="\n") as f:
        f.write(trace(strict))
