/* SPDX-License-Identifier: Apache-2.0 */
/* holders.h: which processes hold a device's nodes open (before an unbind that would hang). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "pci_addr.h"

/*
 * Unbinding a driver from a GPU a process still has open blocks in the kernel until the
 * process lets go (nvidia-persistenced, a CUDA job, Xorg; and a VM's QEMU for /dev/vfio). The
 * state-change hook looks first and refuses, naming them, as Incus does for /dev/nvidiaN.
 */

struct gpuh_holder {
        pid_t pid;
        char comm[32];                  /* /proc/PID/comm */
        const char *node;               /* the node it holds (points into the caller's list) */
};

/**
 * gpuh_pci_nodes:
 * @dev_fd: the function's sysfs directory (bus/pci/devices/BDF), or -1
 * @dev_dir: where device nodes are ("/dev")
 * @proc_root: procfs ("/proc")
 * @a: the function
 * @driver: its bound driver ("" none)
 * @iommu_group: its IOMMU group, or -1
 * @nodes: NULL-terminated list the paths are appended to (strv; grown with realloc)
 *
 * The nodes through which the function is used: its DRM nodes (DEV/dri/ + the entries of its
 * drm/ directory: cardN, renderDN; Documentation/gpu/drm-uapi.rst), on `nvidia` its
 * DEV/nvidiaN (N, the "Device Minor" of PROC/driver/nvidia/gpus/BDF/information; every
 * DEV/nvidia[0-9]* when that cannot be read), and DEV/vfio/GROUP
 * (Documentation/driver-api/vfio.rst). Only nodes that exist are listed.
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_pci_nodes(int dev_fd, const char *dev_dir, const char *proc_root, const struct gpuh_pci_addr *a,
                   const char *driver, int iommu_group, char ***nodes);

/**
 * gpuh_holders_find:
 * @proc_root: procfs
 * @nodes: NULL-terminated paths of device nodes (or any files)
 * @ret, @ret_n: the processes with one of them open (in /proc/PID/fd), by pid; free()
 *
 * One scan of @proc_root/PID/fd for all nodes. Every open file that is not a socket, a pipe or
 * an anonymous inode (its fd link's text does not start with '/', proc(5)) is stat()ed
 * through the link, which follows to the open file itself, and compared with each node: by
 * device number for character and block devices (the node opened under another name or
 * directory, through a hard link, in another mount namespace, or unlinked since it was opened
 * all count) and by device and inode for other files. The attributes come from the kernel's
 * cache (statx(2) AT_STATX_DONT_SYNC), so a file on an unreachable network file system does
 * not hang the scan. Processes whose fds cannot be read (gone, or not permitted) are skipped;
 * the caller itself is never listed.
 *
 * Returns: the number of holders found (>= 0); -ENOMEM; -errno when @proc_root cannot be read.
 */
int gpuh_holders_find(const char *proc_root, char *const *nodes, struct gpuh_holder **ret, size_t *ret_n);

/**
 * gpuh_holders_describe:
 * Returns: "pid 4242 (nvidia-persiste) holds /dev/nvidia0, pid 77 (Xorg) holds /dev/dri/card1"
 *          (malloc()ed), or NULL on ENOMEM.
 */
char *gpuh_holders_describe(const struct gpuh_holder *h, size_t n);
