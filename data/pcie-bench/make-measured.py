# Writes measured/*.csv (iommusim plot --measured format) from the pcie-bench .dat files; run from this folder.
import os
D={'off':'iommu-off','single-stage':'iommu-on-4k'}
def rows(path):
    for l in open(path):
        f=l.split()
        if not f or f[0].startswith('#'): continue
        yield f
out='measured'
with open(f'{out}/bw-window.csv','w') as o:
    o.write('# pcie-bench BW_DMA_RD Rand Cold, 64 B; from bw_dma_win_sweep_rd_rnd_64.dat ("BW (GB/s)" is Gbit/s)\n')
    o.write('workloads:0:workingSetBytes,translation:design,throughput.gbps\n')
    for d,f in D.items():
        for r in rows(f'{f}/bw_dma_win_sweep_rd_rnd_64.dat'):
            if r[2]=='Cold': o.write(f'{int(float(r[5]))},{d},{r[11]}\n')
with open(f'{out}/lat-window.csv','w') as o:
    o.write('# pcie-bench LAT_DMA_RD Rand Cold, 64 B, one DMA at a time; from lat_dma_sweep_rd_rnd_64.dat (Med(ns), 95%(ns))\n')
    o.write('workloads:0:workingSetBytes,translation:design,latencyNs.dma.p50,latencyNs.dma.p95\n')
    for d,f in D.items():
        for r in rows(f'{f}/lat_dma_sweep_rd_rnd_64.dat'):
            if r[2]=='Cold': o.write(f'{int(float(r[5]))},{d},{r[16]},{r[19]}\n')
with open(f'{out}/size.csv','w') as o:
    o.write('# pcie-bench BW_DMA_RD (readFraction 1) and BW_DMA_WR (0) Rand HWarm, 8 KiB window; from bw_dma_sz_sweep.dat ("BW (GB/s)" is Gbit/s)\n')
    o.write('workloads:0:bytes,workloads:0:readFraction,translation:design,throughput.gbps\n')
    for d,f in D.items():
        for r in rows(f'{f}/bw_dma_sz_sweep.dat'):
            if r[0] in ('BW_DMA_RD', 'BW_DMA_WR'): o.write(f'{r[6]},{1 if r[0] == "BW_DMA_RD" else 0},{d},{r[11]}\n')
