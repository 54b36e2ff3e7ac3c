namespace IommuSim.Uapi.Iommufd;

/// <summary>enum iommufd_object_type.</summary>
public enum IommufdObjectType
{
    Ioas,
    Device,
    HwptPaging,
    HwptNested,
    Fault,
    Viommu,
    Vdevice,
    Access,
    Veventq,
    HwQueue,
}

/// <summary>
/// struct iommufd_object: an id in one context's table plus a count of the references other
/// objects and attachments hold. IOMMU_DESTROY succeeds only when that count is zero (the
/// table's own reference being the last one), which is what makes objects die leaf first.
/// </summary>
public abstract class IommufdObject
{
    protected IommufdObject(IommufdContext ictx) => Context = ictx;

    public IommufdContext Context { get; }

    /// <summary>The id user space sees; assigned when the object is finalized into the table.</summary>
    public uint Id { get; internal set; }

    public abstract IommufdObjectType Type { get; }

    /// <summary>References held by other objects, attachments or drivers (not by the id table).</summary>
    public int Users { get; private set; }

    /// <summary>Whether the object has been destroyed (its id no longer resolves).</summary>
    public bool Destroyed { get; internal set; }

    internal void Get() => Users++;

    internal void Put()
    {
        if (Users == 0) throw new InvalidOperationException($"{Type} {Id}: reference count underflow");
        Users--;
    }

    /// <summary>Releases what the object holds; called once, after it left the id table.</summary>
    internal abstract void Release();
}
