/* SPDX-License-Identifier: Apache-2.0 */
/*
 * layout.h: vGPU layouts (the configuration's "layouts", docs/layouts.md): per GPU the vGPU
 * instances the host offers, and where each one goes (its slots), so that CloudStack, which
 * allocates only devices the inventory lists, can allocate vGPUs nobody created yet.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mdev.h"
#include "pci_addr.h"

struct gpuh_config;
struct gpuh_gpu;
struct gpuh_inventory;
struct gpuh_pci_dev;

#define GPUH_LAYOUT_MAX_ENTRIES 256     /* entries of "layouts" */
#define GPUH_LAYOUT_MAX_PROFILES 32     /* profiles of one entry */
#define GPUH_LAYOUT_MAX_COUNT 1024      /* one profile's count */
#define GPUH_LAYOUT_PROFILE_MAX 127     /* a profile name's bytes */

/* layouts[].match: an address, or vendor:device ids (subsystem ids optional). -1: not given. */
struct gpuh_layout_match {
        char *address_text;             /* as written; NULL when matched by ids */
        struct gpuh_pci_addr address;   /* parsed address_text */
        int vendor, device;             /* 0 .. 0xffff; -1 */
        int subsystem_vendor, subsystem_device;
};

/* layouts[].profiles[] */
struct gpuh_layout_profile {
        char *profile;                  /* as the host names it: an mdev type's name (or directory name),
                                         * an NVIDIA vendor vGPU type name ("NVIDIA L40S-8Q") */
        int count;                      /* 1 .. GPUH_LAYOUT_MAX_COUNT; 0: the most that fits */
};

/* One entry of "layouts". New keys go here and into config_keys.c's tables. */
struct gpuh_layout {
        struct gpuh_layout_match match;
        struct gpuh_layout_profile *profiles;
        size_t n_profiles;
        bool mig;                       /* "mig": true: the profiles are MIG-backed and gpuhooks may
                                         * switch MIG mode on for them (only while no VM uses the GPU;
                                         * off again only if it switched it on); false: never switched */
};

/** gpuh_layout_clear: frees what an entry holds (not the entry); accepts NULL. */
void gpuh_layout_clear(struct gpuh_layout *l);

/**
 * gpuh_layout_find:
 * @cfg: the configuration; NULL has no layouts
 * @dev: a GPU (IDENT filled)
 * @ret_by_address: set to whether the entry matched by address; may be NULL
 *
 * An entry naming @dev's address wins; else the first whose vendor and device ids (and
 * subsystem ids where given) are @dev's.
 *
 * Returns: the entry (owned by @cfg), or NULL.
 */
const struct gpuh_layout *gpuh_layout_find(const struct gpuh_config *cfg, const struct gpuh_pci_dev *dev,
                                           bool *ret_by_address);

/* gpuhooks' namespace for the slots' name-based UUIDs (RFC 4122 section 4.3); never changes. */
#define GPUH_LAYOUT_UUID_NS "5d0f7c3e-8b1a-4e6c-9f2d-7a4b3c2e1d0f"

/**
 * gpuh_layout_slot_uuid:
 * @parent: the mdev's parent function (the PF, or the VF it goes on)
 * @type_id: the mdev type's directory name
 * @number: the slot's number among its profile's slots
 * @ret: the UUID, lowercase
 *
 * A name-based (SHA-1, version 5) UUID (RFC 4122 section 4.3, libuuid's uuid_generate_sha1())
 * in gpuhooks' namespace GPUH_LAYOUT_UUID_NS of the name "PARENT/TYPE_ID/SLOT_N"
 * ("0000:3d:00.0/nvidia-18/SLOT_0"): the same on every run and after every reboot.
 */
void gpuh_layout_slot_uuid(const struct gpuh_pci_addr *parent, const char *type_id, unsigned number,
                           char ret[static GPUH_UUID_STR_LEN + 1]);

/* How a GPU's layout is carved. */
enum gpuh_layout_kind {
        GPUH_LAYOUT_PF_MDEV,            /* mdevs on the PF (M60, Turing and older, Intel GVT-g) */
        GPUH_LAYOUT_VF_MDEV,            /* one mdev on each SR-IOV VF (NVIDIA Ampere) */
        GPUH_LAYOUT_VENDOR_VF,          /* a vGPU type set on each VF (NVIDIA Ada and later, vGPU 17+) */
        _GPUH_LAYOUT_KIND_MAX,
};

/** gpuh_layout_kind_to_string: "pf-mdev", "vf-mdev", "vendor-vf"; "?" outside the enum. */
const char *gpuh_layout_kind_to_string(enum gpuh_layout_kind k);

/* One vGPU instance the layout offers. */
struct gpuh_layout_slot {
        size_t profile;                 /* index in the entry's profiles */
        unsigned number;                /* among that profile's slots, from 0 */
        struct gpuh_pci_addr parent;    /* MDEV: the mdev's parent (PF or VF); VENDOR_VF: the PF */
        struct gpuh_pci_addr vf;        /* VF_MDEV, VENDOR_VF: the VF */
        char uuid[GPUH_UUID_STR_LEN + 1];       /* PF_MDEV, VF_MDEV */
        bool exists;                    /* the mdev exists / the VF's vGPU type is set */
        bool derived;                   /* the UUID is gpuh_layout_slot_uuid()'s (else an existing mdev's) */
        const char *used_by;            /* the first domain using it (the inventory's usage), or NULL */
        /* MIG-backed profiles only (gi true): the GPU instance the slot's vGPU sits on, created at
         * prepare on the PF with exactly this placement (nvmlDeviceCreateGpuInstanceWithPlacement)
         * unless a GI of that profile and placement exists (gi_exists) */
        bool gi;
        unsigned gi_profile;            /* NVML GPU-instance profile id (nvmlGpuInstanceProfileInfo_v2_t.id) */
        unsigned gi_start, gi_size;     /* placement: first memory slice, slices */
        bool gi_exists;
};

/* A profile as the GPU knows it. */
struct gpuh_layout_resolved {
        const char *profile;            /* the entry's name (borrowed) */
        char type_id[64];               /* mdev: the type's directory name */
        unsigned vgpu_type;             /* vendor: the type id */
        const char *type_name;          /* the host's name of the type (borrowed), or the profile */
        int64_t fb_mib;                 /* the type's framebuffer, -1 unknown */
        unsigned count;                 /* given, or the most that fits */
        bool count_given;
        unsigned placed;                /* slots found a place now */
        int gi_profile;                 /* MIG-backed type (NVML: its GPU-instance profile id); -1:
                                         * time-sliced */
};

/* One GPU's layout. */
struct gpuh_gpu_layout {
        const struct gpuh_gpu *gpu;
        const struct gpuh_layout *entry;
        bool by_address;
        enum gpuh_layout_kind kind;
        int error;                      /* 0; -ENOENT (a profile the GPU does not offer, no NVML data or
                                         * GI profile for a MIG-backed one), -ENOSPC (does not fit),
                                         * -EINVAL (sizes this GPU cannot mix, no vGPU at all; MIG-backed
                                         * and time-sliced mixed, no MIG, MIG off without "mig") */
        char *why;                      /* with error: one line naming the GPU, the profile, the capacity */
        int64_t gpu_fb_mib;             /* the framebuffer the profiles share, -1 unknown */
        struct gpuh_layout_resolved *profiles;
        size_t n_profiles;
        struct gpuh_layout_slot *slots; /* by profile, then number; none when error */
        size_t n_slots;
        char **notes;                   /* MIG-backed slots not offered now, one line each naming the
                                         * GPU, the slot and the GI in the way */
        size_t n_notes;
};

struct gpuh_layouts {
        struct gpuh_gpu_layout *v;      /* the GPUs an entry matches, in inventory order */
        size_t n;
};

/**
 * gpuh_layouts_resolve:
 * @inv: the inventory (usage set when known)
 * @cfg: the configuration; NULL or no "layouts": an empty result
 * @ret: the GPUs' layouts, freed with gpuh_layouts_free()
 *
 * For each GPU an entry matches: each profile found among the types the GPU offers (an mdev
 * type's name or directory name; a vendor vGPU type's name as the VFs' creatable lists, a set
 * type or the name cache give it), its count (given, or the most that fits: the framebuffer
 * the profiles before it leave / the type's framebuffer, at most max_instances, at most the
 * VFs left), then the whole checked against the capacity (capacity.h's rule: max_instances x
 * framebuffer shared by the vGPUs of every size) and the parents available; a layout that
 * cannot fit gets error and why, and no slots.
 * Slots: existing mdevs of the type (those whose UUID is a slot's derived one first, in that
 * slot; then the others in UUID order) and VFs with the type set (lowest VF first) fill slots;
 * the others take derived UUIDs, on the PF, or on the lowest free VFs (no mdev, no vGPU type).
 * MIG-backed profiles (NVML lists their vGPU type with a GPU-instance profile; all of an
 * entry's profiles or none, MIG mode on or the entry's "mig" true) are counted by GI
 * placements instead of framebuffer: in layout order, each slot takes the lowest-start
 * possible placement of its GI profile that overlaps none taken before, at most the profile's
 * instances; slot N of a profile gets its Nth placement (gi fields; gi_exists when a GI of
 * that profile and placement exists). A slot not created yet whose placement overlaps
 * another GI is not placed, with a line in notes (docs/layouts.md, "MIG-backed profiles").
 * The result depends on nothing but the layout and the hardware (which domains use what only
 * fills used_by): no clock, no randomness, no domain definition.
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_layouts_resolve(const struct gpuh_inventory *inv, const struct gpuh_config *cfg, struct gpuh_layouts **ret);

/**
 * gpuh_layout_slot_gi_text:
 * @s: a slot, or NULL
 * @buf: receives the text
 *
 * Returns: @buf holding a MIG-backed slot's GPU instance as the text tables show it,
 *          ", GI 14 at slices 0-1", or ", GI 19 at slice 2 (made at start)" when it does not
 *          exist yet (GI: the NVML GPU-instance profile id; slices: the placement); "" for a slot
 *          that is not MIG-backed or NULL.
 */
const char *gpuh_layout_slot_gi_text(const struct gpuh_layout_slot *s, char buf[static 64]);

/** gpuh_layouts_free: accepts NULL; returns NULL. */
struct gpuh_layouts *gpuh_layouts_free(struct gpuh_layouts *l);
static inline void gpuh_layouts_freep(struct gpuh_layouts **l) { gpuh_layouts_free(*l); }

/** gpuh_layouts_of: @g's layout in @l (@l may be NULL), or NULL. */
const struct gpuh_gpu_layout *gpuh_layouts_of(const struct gpuh_layouts *l, const struct gpuh_gpu *g);

/**
 * gpuh_layouts_find_mdev / gpuh_layouts_find_vf:
 * @l: the layouts (may be NULL)
 * @uuid: an mdev UUID (lowercase) / @vf: a VF's address
 * @ret_gl: receives the slot's GPU layout; may be NULL
 *
 * Returns: the slot of that UUID / VF, or NULL.
 */
const struct gpuh_layout_slot *gpuh_layouts_find_mdev(const struct gpuh_layouts *l, const char *uuid,
                                                      const struct gpuh_gpu_layout **ret_gl);
const struct gpuh_layout_slot *gpuh_layouts_find_vf(const struct gpuh_layouts *l, const struct gpuh_pci_addr *vf,
                                                    const struct gpuh_gpu_layout **ret_gl);
