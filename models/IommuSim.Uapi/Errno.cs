namespace IommuSim.Uapi;

/// <summary>
/// Linux errno values, as the ioctls return them (positive; 0 = success). Names and numbers are the
/// kernel's (include/uapi/asm-generic/errno-base.h, errno.h) so that script output and tests read
/// like strace output of a real VMM.
/// </summary>
public enum Errno
{
    OK = 0,
    EPERM = 1,
    ENOENT = 2,
    EIO = 5,
    E2BIG = 7,
    EBADF = 9,
    ENOMEM = 12,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    EINVAL = 22,
    ENOTTY = 25,
    ENOSPC = 28,
    ESPIPE = 29,
    ERANGE = 34,
    EOVERFLOW = 75,
    EBADFD = 77,
    EMSGSIZE = 90,
    EOPNOTSUPP = 95,
    EADDRINUSE = 98,
}
