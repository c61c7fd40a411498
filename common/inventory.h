/* SPDX-License-Identifier: Apache-2.0 */
/* inventory.h: the host's GPUs with their VFs, vGPU types and instances, groups and users. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "claims.h"
#include "config.h"
#include "mdev.h"
#include "nvml.h"
#include "pci_names.h"
#include "pcidev.h"
#include "quarantine.h"
#include "vendor_vgpu.h"
#include "vm_usage.h"
#include "warn.h"

/* Upper bound of gpuh_inventory_scan()'s worker threads. */
#define GPUH_INVENTORY_MAX_THREADS 8

/* Why a GPU is not offered for full passthrough (docs/inventory.md), in output order. */
enum {
        GPUH_BLOCK_BOOT_VGA     = 1 << 0,       /* drives the host console */
        GPUH_BLOCK_VFS_ENABLED  = 1 << 1,       /* sriov_numvfs > 0 */
        GPUH_BLOCK_MDEVS        = 1 << 2,       /* mdevs exist on the PF or a VF */
        GPUH_BLOCK_NO_GROUP     = 1 << 3,       /* no IOMMU group */
        GPUH_BLOCK_GROUP_SHARED = 1 << 4,       /* group holds foreign functions */
        GPUH_BLOCK_EXCLUDED     = 1 << 5,       /* config: discovery.exclude_passthrough */
        GPUH_BLOCK_LAYOUT       = 1 << 6,       /* config: a vGPU layout (layouts) names it */
        _GPUH_BLOCK_MAX         = 7,
};

/**
 * gpuh_block_to_string / _from_string: "boot-vga", "vfs-enabled", "mdevs-created",
 * "no-iommu-group", "iommu-group-shared", "excluded", "layout" for bit number @bit (0 .. _GPUH_BLOCK_MAX - 1;
 * the inventory's passthrough_blockers, docs/inventory.md); "unknown" for any other number;
 * _from_string: the bit number, -EINVAL.
 */
const char *gpuh_block_to_string(unsigned bit);
int gpuh_block_from_string(const char *s);

enum gpuh_member_role {
        GPUH_ROLE_GPU,          /* the GPU itself */
        GPUH_ROLE_COMPANION,    /* another function of the same card (HDMI audio, USB-C) */
        GPUH_ROLE_BRIDGE,       /* PCI-to-PCI bridge: vfio accepts it in a viable group */
        GPUH_ROLE_FOREIGN,      /* anything else: blocks passing the group through */
        _GPUH_ROLE_MAX,
};

/**
 * gpuh_role_to_string / _from_string: "gpu", "companion", "bridge", "foreign" (the inventory's
 * iommu_group member roles); "foreign" for a value outside the enum; _from_string: -EINVAL.
 */
const char *gpuh_role_to_string(enum gpuh_member_role r);
int gpuh_role_from_string(const char *s);

struct gpuh_group_member {
        struct gpuh_pci_dev *dev;       /* IDENT + DRIVER filled */
        enum gpuh_member_role role;
};

struct gpuh_vf {
        struct gpuh_pci_dev *dev;
        int index;                      /* N of the PF's virtfnN link */
        char *device_name;              /* libpci name of the VF's device id */
        struct gpuh_mdev_type *types;   /* the VF's own mdev types (mdev parent VFs) */
        size_t n_types;
        bool has_vendor_vgpu;           /* NVIDIA nvidia/ interface present */
        struct gpuh_vendor_vgpu vendor_vgpu;
        const char *current_type_name;  /* name of vendor_vgpu.current_type, NULL if unset/unknown */
};

struct gpuh_vgpu_instance {
        const struct gpuh_mdev *mdev;           /* owned by the inventory */
        const struct gpuh_mdev_type *type;      /* NULL when its type is not listed on the parent */
};

struct gpuh_gpu {
        struct gpuh_pci_dev *dev;       /* ALL filled */
        char *vendor_name;
        char *device_name;
        char *class_name;
        struct gpuh_mdev_type *types;   /* the PF's own mdev types */
        size_t n_types;
        struct gpuh_vf *vfs;            /* by VF index */
        size_t n_vfs;
        struct gpuh_vgpu_instance *vgpus;       /* created mdevs on the PF or its VFs */
        size_t n_vgpus;
        struct gpuh_group_member *members;      /* IOMMU group, by address */
        size_t n_members;
        int group_viable;               /* 1, 0; -1 without a group */
        unsigned blockers;              /* GPUH_BLOCK_* */
        struct gpuh_warnings warnings;  /* this GPU's, merged into the inventory's in order */
        int error;                      /* a worker's fatal error (-ENOMEM) */
};

struct gpuh_inventory {
        struct gpuh_gpu *gpus;          /* by address */
        size_t n_gpus;
        struct gpuh_mdev *mdevs;        /* every PCI-parented mdev of the host */
        size_t n_mdevs;
        bool iommu;                     /* kernel/iommu_groups holds groups */
        struct gpuh_vm_usage *usage;    /* borrowed, set by the caller; may be NULL */
        const struct gpuh_layouts *layouts;     /* borrowed, set by the caller (gpuh_layouts_resolve());
                                                 * may be NULL */
        struct gpuh_quarantined *quarantined;   /* owned (free()), set by the caller: functions the
                                                 * state-change hook quarantined (quarantine.h) */
        size_t n_quarantined;
        struct gpuh_claim *claims;      /* owned (gpuh_claims_free()), set by the caller: devices
                                         * reservations and journals hold (claims.h) */
        size_t n_claims;
        struct gpuh_vgpu_type *known_types;     /* vendor vGPU names from the cache
                                                 * (gpuh_vgpu_names_update()); VFs' current_type_name
                                                 * may point into it */
        size_t n_known_types;
        struct gpuh_nvml_info *nvml;    /* owned, set by the caller (gpuh_host_scan()): what NVML
                                         * said of gpuh_inventory_nvml_gpus(); NULL: not asked */
        struct gpuh_warnings warnings;
};

/**
 * gpuh_is_gpu:
 * @cfg: configuration (extra vendors), may be NULL
 * @vendor: vendor id
 * @class_code: 24-bit class code
 *
 * Display controllers (base class 0x03) of NVIDIA 10de, AMD 1002, Intel 8086 or a configured
 * vendor, and processing accelerators (0x1200) of the same vendors except Intel, whose 0x1200
 * functions are NPUs. BMC and emulated VGAs come from other vendors.
 *
 * Returns: whether the function is a GPU.
 */
bool gpuh_is_gpu(const struct gpuh_config *cfg, uint16_t vendor, uint32_t class_code);

/**
 * gpuh_inventory_scan:
 * @root_fd: sysfs root fd
 * @cfg: configuration, may be NULL for defaults
 * @max_threads: most threads reading GPUs at once (1: none started); the result does not
 *               depend on it
 * @ret: the inventory, without names (gpuh_inventory_name()) and usage (set @ret->usage);
 *       freed with gpuh_inventory_free()
 *
 * Reads every GPU of bus/pci/devices with its VFs, mdev types, mdevs, vendor vGPU state and
 * IOMMU group. What cannot be read costs that field or that device and adds a warning.
 * A large SR-IOV host means thousands of attribute files (every mdev type of every VF), so
 * GPUs are read by up to @max_threads threads, each into its own slot; warnings are merged in
 * GPU order, so the output stays byte-stable.
 *
 * Returns: 0; -ENOENT when bus/pci/devices is absent (not a sysfs tree); -ENOMEM; -errno when
 *          bus/pci/devices cannot be listed or a thread cannot be started.
 */
int gpuh_inventory_scan(int root_fd, const struct gpuh_config *cfg, unsigned max_threads,
                        struct gpuh_inventory **ret);

/**
 * gpuh_inventory_name:
 * @inv: a scanned inventory
 * @names: libpci names handle
 *
 * Fills the vendor, device and class names of the GPUs and the device names of their VFs.
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_inventory_name(struct gpuh_inventory *inv, struct gpuh_pci_names *names);

/**
 * gpuh_inventory_vgpu_type_name:
 * @inv: an inventory
 * @id: an NVIDIA vendor vGPU type id
 *
 * Returns: its name as any VF's creatable_vgpu_types lists it, or as a VF with it set was
 *          named; NULL when none does. Owned by @inv.
 */
const char *gpuh_inventory_vgpu_type_name(const struct gpuh_inventory *inv, unsigned id);

/**
 * gpuh_inventory_nvml_gpus:
 * @inv: a scanned inventory
 * @ret: the addresses of its NVIDIA GPUs bound to the nvidia driver, the only ones NVML knows
 *       (caller frees; NULL when none)
 *
 * Returns: their number; -ENOMEM.
 */
int gpuh_inventory_nvml_gpus(const struct gpuh_inventory *inv, struct gpuh_pci_addr **ret);

/**
 * gpuh_inventory_nvml:
 * @inv: the inventory, with @inv->nvml set or not
 * @g: one of its GPUs
 * @buf, @size: room for the reason
 * @ret: receives what NVML said of @g, or NULL
 *
 * Returns: NULL when NVML answered for @g (*@ret set); else one line saying why there is no
 *          MIG or vGPU-mode data for it: not an NVIDIA GPU, not on the nvidia driver, NVML not
 *          loadable or failing (its own line), or failing for this GPU.
 */
const char *gpuh_inventory_nvml(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, char *buf, size_t size,
                                const struct gpuh_nvml_gpu **ret);

/**
 * gpuh_inventory_vgpu_mode:
 * @inv, @g: as gpuh_inventory_nvml()
 * @ret_assumed: receives true when the mode is not NVML's word but the driver's default; may be NULL
 *
 * NVML's heterogeneous mode when it answered; otherwise, for a GPU whose VFs carry NVIDIA's
 * vendor-specific vGPU interface (Ada and later, vGPU 17+), equal-size: the driver's default,
 * which holds until someone sets mixed-size mode (NVIDIA vGPU user guide, "Modes for
 * time-sliced vGPUs"; the mode is lost at every reboot).
 *
 * Returns: the mode; GPUH_VGPU_MODE_UNKNOWN for other GPUs, and in MIG mode.
 */
enum gpuh_vgpu_mode gpuh_inventory_vgpu_mode(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, bool *ret_assumed);

/**
 * gpuh_inventory_vgpu_more:
 * @inv, @g: as gpuh_inventory_nvml()
 * @n: what NVML said of @g
 * @t: one of its types
 *
 * How many more vGPUs of @t fit on @g now. MIG-backed (@t has a GI profile): the GIs of that
 * profile no vGPU sits on (a vendor VF's gpu_instance_id; on mdev parents, each mdev of a type
 * of the profile takes one), 0 outside MIG mode. Time-sliced: 0 in MIG mode; else the room
 * left in the GPU's framebuffer (its largest type's framebuffer x max instances) by the vGPUs
 * set or created, within @t's max instances; in equal-size mode 0 once a vGPU of another size
 * exists (NVIDIA vGPU user guide, "Virtual GPU Types", "Modes for time-sliced vGPUs").
 * Placement alignment in mixed-size mode is not modelled: the driver's creatable lists decide.
 *
 * Returns: the count, >= 0; -1 when @t's framebuffer or max instances is unknown.
 */
int64_t gpuh_inventory_vgpu_more(const struct gpuh_inventory *inv, const struct gpuh_gpu *g,
                                 const struct gpuh_nvml_gpu *n, const struct gpuh_nvml_type *t);

/** gpuh_inventory_free: accepts NULL; returns NULL. */
struct gpuh_inventory *gpuh_inventory_free(struct gpuh_inventory *inv);
static inline void gpuh_inventory_freep(struct gpuh_inventory **i) { gpuh_inventory_free(*i); }
