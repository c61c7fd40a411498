/* SPDX-License-Identifier: Apache-2.0 */
/*
 * capacity.h: a physical GPU's framebuffer as the budget its vGPUs share, the same for mdev
 * vGPUs on SR-IOV VFs (NVIDIA Ampere) and NVIDIA vendor-specific vGPU VFs (Ada and later).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "inventory.h"
#include "mdev.h"
#include "reserve.h"

/* Devices promised but not made yet: other domains' live reservations and this run's plan. */
struct gpuh_promised {
        const struct gpuh_reservation *res;
        size_t n_res;
        const struct gpuh_alloc *plan;
        size_t n_plan;
};

/* One physical GPU's budget for one more vGPU of a type; all sizes MiB, -1 unknown. */
struct gpuh_fb_room {
        int64_t need;                   /* the type's framebuffer */
        int64_t max_instances;          /* vGPUs of the type one physical GPU holds */
        int64_t total;                  /* max_instances x need, saturated at INT64_MAX */
        int64_t used;                   /* taken: vGPUs that exist, are set or are promised; saturated */
};

/**
 * gpuh_fb_add:
 * @a, @b: framebuffer sizes in MiB; a negative (unknown) one adds nothing
 *
 * Returns: @a + @b, saturated at INT64_MAX (hostile sysfs numbers must not overflow a sum).
 */
int64_t gpuh_fb_add(int64_t a, int64_t b);

/**
 * gpuh_vgpu_fits:
 * @t: the type's max_instances and video_ram_mib (parsed from its description, or
 *     gpuh_vendor_vgpu_fb_room()'s reckoning)
 * @used: MiB already taken on the physical GPU (created, set or promised vGPUs)
 * @ret: receives the numbers the answer came from; may be NULL
 *
 * The physical GPU holds max_instances vGPUs of the type: its framebuffer is max_instances x
 * framebuffer, which vGPUs of every size share (NVIDIA vGPU user guide, "Virtual GPU Types":
 * maximum vGPUs per GPU = frame buffer of the GPU / frame buffer of the type; in mixed-size
 * mode they share that frame buffer). The product saturates instead of overflowing.
 *
 * Returns: true when used + framebuffer <= max_instances x framebuffer, or when either
 *          number of @t is unknown (<= 0: then the caller's other checks decide); false
 *          otherwise, also when used + framebuffer is past INT64_MAX.
 */
bool gpuh_vgpu_fits(const struct gpuh_vgpu_params *t, int64_t used, struct gpuh_fb_room *ret);

/**
 * gpuh_mdev_fb_room:
 * @g: a GPU whose SR-IOV VFs are mdev parents
 * @t: the mdev type asked for, as one of its VFs lists it
 * @p: promised devices
 * @ret: the numbers; may be NULL
 *
 * Used: the mdevs on @g's VFs (their type's framebuffer, else @t's), and the mdevs promised on
 * them (mdevs on the PF itself are not on this budget: available_instances rules there).
 * Each VF's available_instances says what fits now, not once the promised vGPUs exist: an A2
 * (16 GB) with three 4 GB vGPUs shows 1 on each of its 13 free VFs but has room for one.
 *
 * Returns: whether one more mdev of @t fits (gpuh_vgpu_fits()).
 */
bool gpuh_mdev_fb_room(const struct gpuh_gpu *g, const struct gpuh_mdev_type *t, const struct gpuh_promised *p,
                       struct gpuh_fb_room *ret);

/**
 * gpuh_vendor_vgpu_gpu_fb:
 * @inv: the inventory (type names of every GPU)
 * @g: a GPU whose VFs have NVIDIA's vendor-specific vGPU interface
 *
 * The GPU's framebuffer as gpuh_vendor_vgpu_fb_room() reckons it: the largest type any GPU of
 * the same model names, and never less than the types set on @g plus the largest type a free
 * VF of @g still lists (so a GPU whose VFs all carry a type still counts them all).
 *
 * Returns: MiB; -1 when no name says.
 */
int64_t gpuh_vendor_vgpu_gpu_fb(const struct gpuh_inventory *inv, const struct gpuh_gpu *g);

/**
 * gpuh_vendor_vgpu_fb_room:
 * @inv: the inventory (type names of every GPU)
 * @g: a GPU whose VFs have NVIDIA's vendor-specific vGPU interface
 * @type: the vGPU type id asked for
 * @p: promised devices
 * @ret: the numbers; may be NULL
 *
 * sysfs gives a type's id and name only; its framebuffer is read from the name
 * (gpuh_vgpu_type_name_fb()), the GPU's from the largest type any GPU of the same model
 * (vendor:device) names (the one-per-GPU type, L40S-48Q; NVIDIA vGPU user guide, "Virtual
 * GPU Types"), and never less than what is set on @g plus the largest type a free VF of @g
 * still lists (the driver's own word). max_instances is that framebuffer / the type's.
 * Used: per VF of @g, the type a promise will set on it, else its current_vgpu_type (a set
 * type holds its framebuffer whether a domain uses the VF or not); a type of unknown size
 * counts as @type's size. creatable_vgpu_types alone cannot tell: it shows what fits now, not
 * once the promised types are set (NVIDIA vgpu-device-manager, pkg/vgpu/vfio).
 *
 * Returns: whether one more vGPU of @type fits on a free VF of @g (gpuh_vgpu_fits()); true
 *          when @type's size is unknown (the creatable list alone decides).
 */
bool gpuh_vendor_vgpu_fb_room(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned type,
                              const struct gpuh_promised *p, struct gpuh_fb_room *ret);

/* ---- how many more of each profile fit on a GPU (gpudiscovery, gpuhooksctl status) ---- */

enum gpuh_cap_kind {
        GPUH_CAP_PASSTHROUGH,           /* the whole GPU (only when offered for passthrough) */
        GPUH_CAP_MDEV,                  /* an mdev type of the PF (GVT-g, NVIDIA before Ampere) */
        GPUH_CAP_VF_MDEV,               /* an mdev type of the GPU's SR-IOV VFs (NVIDIA Ampere) */
        GPUH_CAP_VENDOR_VGPU,           /* an NVIDIA vendor-specific vGPU type (Ada and later) */
        GPUH_CAP_VF,                    /* a plain SR-IOV VF (AMD MxGPU, Intel SR-IOV) */
        _GPUH_CAP_KIND_MAX,
};

/* One profile of one GPU. Counts are instances; -1 unknown. */
struct gpuh_profile_cap {
        enum gpuh_cap_kind kind;
        char type_id[64];               /* the mdev type's directory name; the vendor type's
                                         * decimal id; "" for passthrough and plain VFs */
        const char *name;               /* the profile: the type's name (else its id), "passthrough",
                                         * the VFs' libpci device name; borrowed from the inventory */
        int64_t created;                /* instances that exist: mdevs of the type, VFs with the type
                                         * set, VFs; 1 for passthrough */
        int64_t in_use;                 /* of them, used by a domain (the inventory's usage) */
        int64_t more;                   /* how many more fit now; -1 unknown */
        int64_t free_slots;             /* what the driver offers: free VFs listing the type (VF kinds,
                                         * not held by a promise or the quarantine), the PF type's
                                         * available_instances less the promised; -1 unknown */
        int64_t fb_more;                /* what the framebuffer leaves (gpuh_vgpu_fits()'s numbers:
                                         * (max_instances x framebuffer - used) / framebuffer); -1
                                         * unknown or not applicable */
};

/**
 * gpuh_cap_kind_to_string / _from_string: "passthrough", "mdev", "vf-mdev", "vendor-vgpu",
 * "vf" (the inventory's gpuhooks.capacity[].kind, docs/inventory.md); "?" outside the enum;
 * _from_string: -EINVAL.
 */
const char *gpuh_cap_kind_to_string(enum gpuh_cap_kind k);
int gpuh_cap_kind_from_string(const char *s);

/**
 * gpuh_gpu_capacity:
 * @inv: the inventory (its usage, quarantine and vendor type names)
 * @g: one of its GPUs
 * @p: promised devices (live reservations of domains), or NULL for none
 * @ret, @ret_n: the profiles, free()
 *
 * One row per profile @g offers, each on its own (rows share the GPU: one more 8Q and one more
 * 8A may each fit, not both), in this order: passthrough (when @g has no passthrough blockers),
 * the PF's mdev types as listed, the VFs' mdev types by type id in natural order, vendor vGPU
 * types by id (every type a free VF lists or a VF has set), plain VFs. "more" is the smaller
 * of what the driver offers and what the framebuffer leaves:
 *  - passthrough: 1 unless a domain uses the GPU, a promise holds it or it is quarantined;
 *  - PF mdev types: available_instances (the driver counts what is left; mdev ABI,
 *    Documentation/driver-api/vfio-mediated-device.rst) less the mdevs promised on the PF;
 *  - VF mdev types: the free VFs (no mdev, not promised, not quarantined) whose
 *    available_instances for the type is > 0 (in equal-size mode the driver offers only the
 *    size in use), capped by gpuh_mdev_fb_room();
 *  - vendor vGPU types: the free VFs (no type set, not promised, not quarantined) whose
 *    creatable_vgpu_types lists the type (the mode again), capped by gpuh_vendor_vgpu_fb_room();
 *  - plain VFs: the VFs no domain uses, not promised and not quarantined.
 *
 * Returns: the number of rows; -ENOMEM.
 */
int gpuh_gpu_capacity(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_promised *p,
                      struct gpuh_profile_cap **ret, size_t *ret_n);
