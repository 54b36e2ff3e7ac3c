using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// The page group response is built in one place (<see cref="VtdInvalidation.PageGroupResponse"/>) for the uAPI fault path
/// (FAULT_RESPOND, refused page requests) and the run-time I/O page-fault handler. Kernel: intel_page_response
/// (drivers/iommu/intel/prq.c) fills QI_PGRP_RESP with the requester id, PASID, response code and PRG index.
/// </summary>
public class PageResponseTests
{
    [Theory]
    [InlineData((ushort)0x0300, 0u, 0, PageResponseCode.Success)]
    [InlineData((ushort)0x0400, 7u, 511, PageResponseCode.Invalid)]
    public void Page_group_response_carries_the_requester_pasid_group_and_code(ushort rid, uint pasid, int group, PageResponseCode code)
    {
        var d = VtdInvalidation.PageGroupResponse(rid, pasid, group, code);
        Assert.Equal(InvalidationType.PageGroupResponse, d.Type);
        Assert.Equal((rid, pasid, group, code), (d.RequesterId, d.Pasid, d.PageGroupIndex, d.ResponseCode));
        Assert.Equal(InvalidationGranularity.Device, d.Granularity);
    }
}
