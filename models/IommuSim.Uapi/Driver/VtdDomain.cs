// struct dmar_domain is the VT-d driver's iommu_domain: the common part (attachments, the domain id
// the IOTLB and PASID cache use) lives in IommuDomain, shared with the SMMUv3 driver. The alias keeps
// the VT-d driver's text in the kernel's vocabulary.
global using VtdDomain = IommuSim.Uapi.Driver.IommuDomain;
