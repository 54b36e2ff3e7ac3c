using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

public sealed partial class ArmSmmuV3Driver
{
    /// <summary>
    /// attach_dev / set_dev_pasid / remove_dev_pasid. The RID (PASID 0): a stage-1 domain gets CD 0 of the
    /// master's CD table and an S1 STE with S1DSS = SSID0 (arm_smmu_make_cdtable_ste); a stage-2 domain an S2
    /// STE with its VMID and S2TTB (arm_smmu_make_s2_domain_ste); identity a bypass STE and blocked (null) an
    /// abort STE — or, while PASIDs use the CD table, a CD-table STE whose S1DSS bypasses or aborts
    /// transactions without a PASID. A PASID: the stage-1 domain's CD at SSID = PASID (arm_smmu_set_pasid),
    /// only over a RID that can carry a CD table. Each STE write is followed by CFGI_STE, each CD write by
    /// CFGI_CD (arm_smmu_write_ste / arm_smmu_write_cd_entry), the ATC of an ATS master is invalidated when
    /// its translation changes, and the batch ends with a CMD_SYNC that is waited for.
    /// </summary>
    public Errno SetDevicePasid(DeviceSpec dev, uint pasid, IommuDomain? domain, IommuDomain? old)
    {
        if (!_masters.TryGetValue(dev.Rid.Value, out var m)) return Errno.ENODEV;
        if (domain is ArmSmmuBlockedDomain) domain = null;
        if (domain is not (null or ArmSmmuDomain or ArmSmmuIdentityDomain or ArmSmmuNestedDomain)) return Errno.EINVAL;
        // A nested domain is a whole-stream STE: it attaches to the RID only, and not while PASIDs use the host CD table.
        if (domain is ArmSmmuNestedDomain && (pasid != 0 || m.Pasids.Count > 0)) return Errno.EINVAL;
        // arm_smmu_attach_dev_nested's own checks for a vIOMMU's nested domain (ArmVsmmuHost.cs).
        if (domain is ArmSmmuNestedDomain { Vsmmu: not null } vn && CheckNestedAttach(m, vn) is var nrc && nrc != Errno.OK) return nrc;
        if (ReferenceEquals(domain, old)) return Errno.OK;
        var s = domain as ArmSmmuDomain;

        if (pasid == 0)
        {
            // A stage-2 RID domain has no CD table to carry PASIDs (arm_smmu_attach_prepare refuses it while SSIDs are in use).
            if (s is { Stage: ArmSmmuStage.S2 } && m.Pasids.Count > 0) return Errno.EBUSY;
            if (s is { Stage: ArmSmmuStage.S1 }) WriteCd(m, 0, s.MakeCd() with { Stall = m.StallEnabled });
            else if (m.RidDomain is ArmSmmuDomain { Stage: ArmSmmuStage.S1 } && m.CdTable is not null) ClearCd(m, 0);
            m.RidDomain = domain;
            WriteSte(m);
        }
        else
        {
            // arm_smmu_set_pasid: only stage-1 domains attach to a PASID, and only when the RID's STE can hold a CD table.
            if (domain is ArmSmmuIdentityDomain || s is { Stage: ArmSmmuStage.S2 }) return Errno.EINVAL;
            if (m.RidDomain is ArmSmmuDomain { Stage: ArmSmmuStage.S2 } or ArmSmmuNestedDomain) return Errno.EINVAL;
            if (pasid >= 1u << m.S1CdMax) return Errno.EINVAL;
            bool steChanges = m.Pasids.Count == 0 || s is null && m.Pasids.Count == 1;
            if (s is not null)
            {
                WriteCd(m, pasid, s.MakeCd() with { Stall = m.StallEnabled });
                m.Pasids[pasid] = s;
            }
            else
            {
                ClearCd(m, pasid); // arm_smmu_remove_dev_pasid → arm_smmu_clear_cd
                m.Pasids.Remove(pasid);
            }
            if (steChanges && m.RidDomain is not ArmSmmuDomain) WriteSte(m);
        }

        if (old is not null && old is not ArmSmmuBlockedDomain) old.RemoveAttachment(dev, pasid);
        domain?.AddAttachment(dev, pasid);
        if (m.AtsEnabled && old is not null) _cmds.Add(AtcInv(m.Sid, pasid, 0, 0));
        Sync();
        return Errno.OK;
    }

    /// <summary>The STE the master's current domains call for, written and CFGI_STE'd (arm_smmu_install_ste_for_dev).</summary>
    private void WriteSte(ArmSmmuMaster m)
    {
        StreamTableEntry ste;
        switch (m.RidDomain)
        {
            case ArmSmmuNestedDomain n:
                ste = n.GuestSte.Config switch
                {
                    SteConfig.Abort => AbortSte,
                    SteConfig.Bypass => S2Ste(m, n.Parent),
                    _ => S2Ste(m, n.Parent) with
                    {
                        Config = SteConfig.Nested, S1Fmt = n.GuestSte.S1Fmt, S1ContextPtr = n.GuestSte.S1ContextPtr,
                        S1CdMax = n.GuestSte.S1CdMax, S1Dss = n.GuestSte.S1Dss, Eats = m.AtsEnabled ? n.GuestSte.Eats : (byte)0,
                    },
                };
                break;
            case ArmSmmuDomain { Stage: ArmSmmuStage.S2 } d:
                ste = S2Ste(m, d);
                break;
            case ArmSmmuDomain: // stage 1 through CD 0
                ste = CdTableSte(m, s1Dss: 2);
                break;
            case ArmSmmuIdentityDomain:
                ste = m.Pasids.Count > 0 ? CdTableSte(m, s1Dss: 1) : new StreamTableEntry { Valid = true, Config = SteConfig.Bypass };
                break;
            default: // blocked
                ste = m.Pasids.Count > 0 ? CdTableSte(m, s1Dss: 0) : AbortSte;
                break;
        }
        StreamTable.Install(m.Sid, ste);
        _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.CfgiSte, Sid = m.Sid });
    }

    /// <summary>arm_smmu_make_s2_domain_ste: stage 2 with the domain's VMID and S2TTB, 4 KiB granule, 48-bit PS,
    /// faults recorded, HTTU for a dirty-tracking domain.</summary>
    private static StreamTableEntry S2Ste(ArmSmmuMaster m, ArmSmmuDomain d) => new()
    {
        Valid = true, Config = SteConfig.Stage2, Eats = m.AtsEnabled ? (byte)1 : (byte)0, S2Vmid = d.Vmid,
        S2T0Sz = (byte)(64 - d.Table.InputBits), S2Sl0 = StreamTableEntry.EncodeSl0(d.Table.Granule, d.Table.StartLevel),
        S2Granule = d.Table.Granule, S2Ps = 5, S2Aa64 = true, S2HardwareAccess = d.DirtyCapable, S2HardwareDirty = d.DirtyCapable,
        S2Record = true, S2Ttb = d.Table.Root,
        // "S2S is not compatible with ATS": a stall-enabled master without ATS stalls its stage-2 faults.
        S2Stall = m.StallEnabled && !m.AtsEnabled,
    };

    /// <summary>arm_smmu_make_cdtable_ste: stage 1 through the master's CD table; S1DSS says what SSID-less
    /// transactions do: 0 abort, 1 bypass, 2 use CD 0.</summary>
    private static StreamTableEntry CdTableSte(ArmSmmuMaster m, byte s1Dss) => new()
    {
        Valid = true, Config = SteConfig.Stage1, S1Fmt = m.CdTable!.S1Fmt, S1ContextPtr = m.CdTable.Base,
        S1CdMax = (byte)m.CdTable.S1CdMax, S1Dss = s1Dss, Eats = m.AtsEnabled ? (byte)1 : (byte)0,
        // The SMMU supports stalls: every master that may not stall gets S1STALLD (a CD.S it set would be ignored).
        S1StallDisable = !m.StallEnabled,
    };

    /// <summary>arm_smmu_write_cd_entry + arm_smmu_sync_cd: the CD, then CFGI_CD for (SID, SSID).</summary>
    private void WriteCd(ArmSmmuMaster m, uint ssid, in ContextDescriptor cd)
    {
        // arm_smmu_alloc_cd_tables: linear up to CTXDESC_L2_ENTRIES CDs, else two-level with 64 KiB leaves (S1FMT_64K_L2).
        m.CdTable ??= new ContextDescriptorTable(Port.Smmu.Memory, m.S1CdMax, m.S1CdMax > 10 ? (byte)2 : (byte)0);
        m.CdTable.Install(ssid, cd);
        _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.CfgiCd, Sid = m.Sid, Ssid = ssid, SubstreamValid = ssid != 0 });
    }

    private void ClearCd(ArmSmmuMaster m, uint ssid)
    {
        if (m.CdTable is null) return;
        m.CdTable.Clear(ssid);
        _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.CfgiCd, Sid = m.Sid, Ssid = ssid, SubstreamValid = ssid != 0 });
    }
}
