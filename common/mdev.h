/* SPDX-License-Identifier: Apache-2.0 */
/* mdev.h: mediated device types (vGPU profiles) and created mdevs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "pci_addr.h"
#include "warn.h"

#define GPUH_UUID_STR_LEN 36

/* Numbers a vGPU type describes; -1 where its description does not say. */
struct gpuh_vgpu_params {
        int64_t max_instances;          /* vGPUs of this type one physical GPU holds */
        int64_t video_ram_mib;          /* framebuffer, MiB */
        int64_t max_heads;              /* virtual displays */
        int64_t max_res_x;              /* pixels */
        int64_t max_res_y;
};

struct gpuh_mdev_type {
        char *type_id;                  /* directory name, "nvidia-754", "i915-GVTg_V5_4" */
        char *name;                     /* `name` file, "NVIDIA A2-4C"; NULL when absent */
        char *description;              /* `description` file, newlines kept; NULL when absent */
        int available_instances;        /* -1 unknown */
        char *device_api;               /* "vfio-pci"; NULL when absent */
        struct gpuh_vgpu_params params; /* parsed from description and type id */
        bool borrowed;                  /* name, description, device_api belong to the template */
};

struct gpuh_mdev {
        char uuid[GPUH_UUID_STR_LEN + 1];       /* lowercase */
        struct gpuh_pci_addr parent;    /* the PCI function it was created on (PF or VF) */
        char *type_id;                  /* its type's directory name; NULL if unreadable */
        int iommu_group;                /* -1 when none */
};

/**
 * gpuh_uuid_is_valid:
 * @s: candidate, e.g. an mdev directory name; NULL is not one
 *
 * libuuid's uuid_parse(3), which the kernel's mdev create also accepts (uuid_parse() in
 * lib/uuid.c; Documentation/driver-api/vfio-mediated-device.rst).
 *
 * Returns: true for the canonical 8-4-4-4-12 hex form (RFC 4122 text, either case).
 */
bool gpuh_uuid_is_valid(const char *s);

/**
 * gpuh_uuid_normalize:
 * @s: a UUID in the form gpuh_uuid_is_valid() accepts; NULL is not one
 * @ret: receives it lowercase, 36 characters and a NUL (uuid_unparse_lower(3)): the spelling
 *       sysfs, libvirt and our records compare (libvirt writes mdev UUIDs lowercase)
 *
 * Returns: 0; -EINVAL (not a UUID; @ret untouched).
 */
int gpuh_uuid_normalize(const char *s, char ret[static GPUH_UUID_STR_LEN + 1]);

/**
 * gpuh_mdev_type_name_ok:
 * @s: candidate mdev type directory name from a document ("nvidia-746", "i915-GVTg_V5_4")
 *
 * Type names go into sysfs paths: only 1..63 of [A-Za-z0-9_.:+-], not "." nor "..".
 *
 * Returns: whether @s may name a type.
 */
bool gpuh_mdev_type_name_ok(const char *s);

/**
 * gpuh_vgpu_params_parse:
 * @type_id: the type's directory name (GVT-g types carry their instance count in it)
 * @description: the type's `description` file; NULL allowed
 * @ret: the numbers found, -1 for the others
 *
 * Two formats exist in the wild:
 *  - NVIDIA, one line of key=value pairs separated by ", ":
 *    "num_heads=4, frl_config=60, framebuffer=1024M, max_resolution=5120x2880, max_instance=16"
 *    (framebuffer in MiB with an M suffix, G accepted);
 *  - Intel GVT-g, "key: value" lines (drivers/gpu/drm/i915/gvt/kvmgt.c description_show):
 *    "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4";
 *    video RAM is low + high graphics memory; max_instances comes from the type id suffix
 *    ("i915-GVTg_V5_4": the types are sized for 1, 2, 4 or 8 vGPUs, drivers/gpu/drm/i915/gvt/
 *    vgpu.c).
 * Unknown keys are ignored; a malformed value leaves its field at -1, and so does a GVT-g sum
 * past INT64_MAX MiB (hostile numbers, no GPU).
 */
void gpuh_vgpu_params_parse(const char *type_id, const char *description,
                            struct gpuh_vgpu_params *ret);

/**
 * gpuh_mdev_types_read:
 * @root_fd: sysfs root fd
 * @parent: PCI function whose mdev_supported_types/ is read
 * @tmpl: types already read from a sibling of the same GPU (name, description and device_api
 *        are per model and shared with it, so @tmpl must outlive the result;
 *        available_instances is always read), or NULL
 * @n_tmpl: entries in @tmpl
 * @w: warnings for unreadable type attributes
 * @ret: array of types in natural order of type id, free with gpuh_mdev_types_free()
 *
 * Source: Documentation/driver-api/vfio-mediated-device.rst, "Directories and files under the
 * sysfs for Each Physical Device".
 *
 * Returns: number of types; 0 when the function has no mdev_supported_types; -ENOMEM; -errno.
 */
int gpuh_mdev_types_read(int root_fd, const struct gpuh_pci_addr *parent,
                         const struct gpuh_mdev_type *tmpl, size_t n_tmpl,
                         struct gpuh_warnings *w, struct gpuh_mdev_type **ret);

/** gpuh_mdev_types_free: frees @n types and the array; accepts NULL. */
void gpuh_mdev_types_free(struct gpuh_mdev_type *types, size_t n);

/**
 * gpuh_mdev_list:
 * @root_fd: sysfs root fd
 * @w: warnings for entries that cannot be resolved
 * @ret: every mdev of bus/mdev/devices whose parent is a PCI function, ordered by parent address
 *       then UUID; free with gpuh_mdevs_free()
 *
 * Source: Documentation/driver-api/vfio-mediated-device.rst, "Directories and Files Under the
 * sysfs for Each mdev Device" (bus/mdev/devices/<uuid> links to <parent>/<uuid>).
 *
 * Returns: number of mdevs; 0 when bus/mdev is absent (no mdev support loaded); -ENOMEM; -errno.
 */
int gpuh_mdev_list(int root_fd, struct gpuh_warnings *w, struct gpuh_mdev **ret);

/** gpuh_mdevs_free: frees @n mdevs and the array; accepts NULL. */
void gpuh_mdevs_free(struct gpuh_mdev *m, size_t n);

/**
 * gpuh_mdev_create:
 * @c: the change (sysfs root, deadline, dry run)
 * @parent: the PCI function (PF or VF) whose mdev_supported_types/@type_id is used
 * @type_id: e.g. "nvidia-746"
 * @uuid: the new mdev's UUID (lowercase)
 * @reterr: on failure, one line naming the parent, type and cause (caller frees)
 *
 * An mdev of that UUID and type on that parent already existing is success (nothing written).
 * available_instances is checked first so the error says why; after the write the mdev is
 * waited for in bus/mdev/devices.
 * Source: Documentation/driver-api/vfio-mediated-device.rst ("create").
 *
 * Returns: 0; -EEXIST (the UUID exists with another type or parent); -ENOSPC (no instance
 *          available); -ENOENT (no such type); -EINVAL (bad UUID or type name); -ETIMEDOUT;
 *          -ENODEV (it did not appear); -errno of the write.
 */
int gpuh_mdev_create(struct gpuh_change *c, const struct gpuh_pci_addr *parent, const char *type_id, const char *uuid,
                     char **reterr);

/**
 * gpuh_mdev_remove:
 * @c: the change
 * @uuid: the mdev
 * @reterr: as above
 *
 * An mdev that does not exist is success: removal is idempotent. After the write it is waited
 * for to go. Source: Documentation/driver-api/vfio-mediated-device.rst ("remove").
 *
 * Returns: 0; -ETIMEDOUT; -errno of the write (-EBUSY while a VM holds it).
 */
int gpuh_mdev_remove(struct gpuh_change *c, const char *uuid, char **reterr);

/**
 * gpuh_mdev_remove_busy:
 * @c: the change
 * @uuid: the mdev
 * @grace_ms: how long -EBUSY is retried (0: once, as gpuh_mdev_remove())
 * @reterr: as above
 *
 * As gpuh_mdev_remove(), at once; while the write answers -EBUSY it is tried again with
 * growing pauses (2 to 256 ms) until @grace_ms have passed, and an mdev that went meanwhile
 * (its parent's driver removed it) is success. NVIDIA's host driver removes the mdevs of a
 * stopped VM itself and answers EBUSY while it does (Proxmox qemu-server's cleanup of nvidia
 * mdevs retries for that reason); an uncontended release costs one write.
 *
 * Returns: 0; -EBUSY (still busy at the deadline); otherwise as gpuh_mdev_remove().
 */
int gpuh_mdev_remove_busy(struct gpuh_change *c, const char *uuid, int grace_ms, char **reterr);
