/* SPDX-License-Identifier: Apache-2.0 */
/* vendor_vgpu.h: NVIDIA vendor-specific vGPU on SR-IOV VFs (vGPU 17+, Ada/Hopper/Blackwell). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "pci_addr.h"
#include "warn.h"

/*
 * On these GPUs there is no mdev: each VF, bound to the nvidia driver, has a directory
 * nvidia/ with creatable_vgpu_types (a header line "ID    : vGPU Name", then one "%-5d : %s"
 * line per type that can still be created on that VF) and current_vgpu_type ("0" when free,
 * else the numeric type id; writing an id assigns it). Source: NVIDIA vGPU 17 user guide,
 * "Creating an NVIDIA vGPU on a Linux with KVM Hypervisor that Uses a Vendor-Specific VFIO
 * Framework"; NVIDIA's RFC "vfio/nvidia-vgpu" kernel patches (2024).
 */

struct gpuh_vgpu_type {
        unsigned id;                    /* vGPU type id, e.g. 1148 */
        char *name;                     /* "NVIDIA L40S-2Q" */
};

struct gpuh_vendor_vgpu {
        unsigned current_type;          /* 0: none set */
        struct gpuh_vgpu_type *creatable;       /* ordered by id */
        size_t n_creatable;
        int gpu_instance_id;            /* nvidia/gpu_instance_id of a set MIG-backed type; -1 none */
};

/**
 * gpuh_vgpu_types_parse:
 * @text: content of creatable_vgpu_types
 * @ret: types ordered by id, free with gpuh_vgpu_types_free()
 *
 * The header line and blank lines are skipped; a line that is not "<id> : <name>" makes the
 * whole content invalid.
 *
 * Returns: the number of types (0 for a header-only file); -EBADMSG; -ENOMEM.
 */
int gpuh_vgpu_types_parse(const char *text, struct gpuh_vgpu_type **ret);

/** gpuh_vgpu_types_free: accepts NULL. */
void gpuh_vgpu_types_free(struct gpuh_vgpu_type *t, size_t n);

/**
 * gpuh_vendor_vgpu_read:
 * @root_fd: sysfs root fd
 * @vf: the VF
 * @w: warnings for unreadable files
 * @ret: the VF's state, filled only when it returns 1; free with gpuh_vendor_vgpu_clear()
 *
 * Returns: 1 when the VF has the nvidia/ interface, 0 when not, -ENOMEM.
 */
int gpuh_vendor_vgpu_read(int root_fd, const struct gpuh_pci_addr *vf, struct gpuh_warnings *w,
                          struct gpuh_vendor_vgpu *ret);

/** gpuh_vendor_vgpu_clear: frees what gpuh_vendor_vgpu_read() filled. */
void gpuh_vendor_vgpu_clear(struct gpuh_vendor_vgpu *v);

/**
 * gpuh_vgpu_type_name:
 * Returns: the name of type @id in @types, or NULL.
 */
const char *gpuh_vgpu_type_name(const struct gpuh_vgpu_type *types, size_t n, unsigned id);

/**
 * gpuh_vgpu_type_name_fb:
 * @name: an NVIDIA vGPU type name, "NVIDIA L40S-8Q", "NVIDIA H100-1-10C", "GRID M60-0B"
 *
 * sysfs names a vendor vGPU type but gives no size; NVIDIA's names carry it: the number before
 * the series letters (A, B, C, Q, ...) after the last '-' is the frame buffer in GB (1024 MiB),
 * 0 meaning 512 MiB; MIG-backed types put the compute slices first ("-1-10C": 10 GB). Source:
 * NVIDIA Virtual GPU Software User Guide, "Virtual GPU Types" tables (frame buffer column).
 *
 * Returns: the framebuffer in MiB; -1 when @name does not end that way (or is NULL).
 */
int64_t gpuh_vgpu_type_name_fb(const char *name);

/**
 * gpuh_vendor_vgpu_set:
 * @c: the change (sysfs root, deadline, dry run)
 * @vf: the VF
 * @type: the vGPU type id to set; 0 clears
 * @reterr: on failure, one line naming the VF, the type and the cause (caller frees)
 *
 * Nothing is written when @type is already set. Another type set is cleared first (writing
 * it while one is set fails). A type to set must be in the VF's creatable_vgpu_types, read
 * again after a clear. The value is read back until the deadline.
 *
 * Returns: 0; -ENOENT (the VF has no nvidia/ interface); -ENOSPC (the type is not creatable
 *          on this VF now); -ETIMEDOUT; -EIO (read back another value); -errno of the writes.
 */
int gpuh_vendor_vgpu_set(struct gpuh_change *c, const struct gpuh_pci_addr *vf, unsigned type, char **reterr);
