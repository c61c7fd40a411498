/* SPDX-License-Identifier: Apache-2.0 */
/* pcidev.h: one PCI function as sysfs describes it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pci_addr.h"
#include "sysfs.h"
#include "warn.h"

/* Which attributes gpuh_pci_dev_read() fetches (as pciutils' PCI_FILL_*). */
enum {
        GPUH_PCI_FILL_IDENT    = 1 << 0,  /* vendor, device */
        GPUH_PCI_FILL_CLASS    = 1 << 9,
        GPUH_PCI_FILL_SUBSYS   = 1 << 1,  /* subsystem ids, revision */
        GPUH_PCI_FILL_DRIVER   = 1 << 2,
        GPUH_PCI_FILL_NUMA     = 1 << 3,
        GPUH_PCI_FILL_IOMMU    = 1 << 4,  /* group number from the link; existence not checked */
        GPUH_PCI_FILL_TOPOLOGY = 1 << 5,  /* root bus and root port, from the device path */
        GPUH_PCI_FILL_SRIOV    = 1 << 6,  /* sriov_totalvfs/numvfs, physfn */
        GPUH_PCI_FILL_BOOT_VGA = 1 << 7,
        GPUH_PCI_FILL_RESET    = 1 << 8,  /* reset_method */
        GPUH_PCI_FILL_ALL      = (1 << 10) - 1,
};

#define GPUH_PCI_CLASS_BRIDGE_PCI 0x0604   /* class >> 8 of a PCI-to-PCI bridge */

struct gpuh_pci_dev {
        struct gpuh_pci_addr addr;
        char name[GPUH_PCI_ADDR_MAX];   /* kernel name, "0000:08:00.0" */
        uint32_t class_code;            /* 24 bit: base class, subclass, prog-if (0x030200); 0 unless filled */
        uint16_t vendor_id;
        uint16_t device_id;
        int subsys_vendor_id;           /* -1 unknown */
        int subsys_device_id;           /* -1 unknown */
        int revision;                   /* -1 unknown */
        char *driver;                   /* bound driver's name; NULL when unbound */
        int numa_node;                  /* -1 unknown or no NUMA */
        bool boot_vga;                  /* boot_vga attribute is 1 (VGA devices only) */
        int iommu_group;                /* -1: no group (IOMMU off) */
        char *reset_method;             /* "flr bus"; NULL when the attribute is absent */
        char root_bus[GPUH_PCI_ADDR_MAX];       /* "0000:00" from "pci0000:00"; "" unknown */
        struct gpuh_pci_addr root_port; /* function below the root bus on the path */
        bool has_root_port;
        int sriov_totalvfs;             /* 0 when not SR-IOV capable */
        int sriov_numvfs;
        int sriov_vf_device;            /* device id of its VFs; -1 unknown */
        bool is_vf;                     /* has a physfn link */
        struct gpuh_pci_addr physfn;    /* valid when is_vf */
};

/**
 * gpuh_pci_dev_read:
 * @root_fd: sysfs root directory fd
 * @addr: the function; its sysfs directory is bus/pci/devices/<dddd:bb:ss.f>
 * @fill: GPUH_PCI_FILL_* bits
 * @w: receives one warning per attribute that exists but could not be used (garbage, dangling
 *     link); may be NULL
 * @ret: the new device, freed with gpuh_pci_dev_free()
 *
 * vendor/device/class come from their own attribute files, never from `config` (a VF's config
 * space reads 0xffff for both ids; Documentation/PCI/pci-iov-howto.rst). Absent optional
 * attributes leave their field unknown without a warning.
 * Source: Documentation/ABI/testing/sysfs-bus-pci.
 *
 * The iommu_group link is only read, not followed: callers that must know the group exists
 * check it against kernel/iommu_groups, which they list once (one check per device would cost
 * a system call each).
 *
 * Without GPUH_PCI_FILL_IDENT the caller supplies vendor_id and device_id (a VF's come from
 * its PF, see gpuh_inventory_scan()).
 *
 * Returns: 0; -ENOENT when the device is gone; -EBADMSG when vendor, device (with
 *          GPUH_PCI_FILL_IDENT) or class (with GPUH_PCI_FILL_CLASS) is unreadable or garbage;
 *          -ENOMEM.
 */
int gpuh_pci_dev_read(int root_fd, const struct gpuh_pci_addr *addr, unsigned fill,
                      struct gpuh_warnings *w, struct gpuh_pci_dev **ret);

/**
 * gpuh_pci_dev_read_class:
 * @root_fd: sysfs root fd
 * @addr: the function
 * @ret: its 24-bit class code
 *
 * The cheap first look an enumeration takes at every function.
 *
 * Returns: 0; -errno as gpuh_sysfs_read_u64(); -EBADMSG when the value exceeds 24 bits.
 */
int gpuh_pci_dev_read_class(int root_fd, const struct gpuh_pci_addr *addr, uint32_t *ret);

/** gpuh_pci_dev_free: accepts NULL; returns NULL. */
struct gpuh_pci_dev *gpuh_pci_dev_free(struct gpuh_pci_dev *d);
static inline void gpuh_pci_dev_freep(struct gpuh_pci_dev **d) { gpuh_pci_dev_free(*d); }
#define _cleanup_pci_dev_ _cleanup_(gpuh_pci_dev_freep)

/**
 * gpuh_pci_dev_list:
 * @root_fd: sysfs root fd
 * @w: receives a warning for every entry of bus/pci/devices that is not a PCI address
 * @ret: sorted array of addresses, free()
 *
 * Returns: the number of functions in bus/pci/devices; -ENOENT when that directory is absent
 *          (not a sysfs tree); -errno.
 */
int gpuh_pci_dev_list(int root_fd, struct gpuh_warnings *w, struct gpuh_pci_addr **ret);

/**
 * gpuh_pci_dev_list_vfs:
 * @root_fd: sysfs root fd
 * @pf: the physical function
 * @w: receives a warning per unreadable or malformed virtfnN link (a dangling one is listed:
 *     reading the VF reports it)
 * @ret_addrs: VF addresses ordered by N, free()
 * @ret_index: the N of each, free()
 *
 * Source: Documentation/ABI/testing/sysfs-bus-pci (virtfnN, physfn).
 *
 * Returns: the number of VFs (0 when none); -errno.
 */
int gpuh_pci_dev_list_vfs(int root_fd, const struct gpuh_pci_addr *pf, struct gpuh_warnings *w,
                          struct gpuh_pci_addr **ret_addrs, int **ret_index);
