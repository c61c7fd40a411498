/* SPDX-License-Identifier: Apache-2.0 */
/*
 * layout_mig.h (private to layout.c and layout_mig.c): MIG-backed profiles of a layout
 * (docs/layouts.md, "MIG-backed profiles"): which profiles are, whether the GPU's MIG mode
 * allows them, and the GPU-instance placement of each slot.
 */
#pragma once

#include <stdarg.h>

#include "inventory.h"
#include "layout.h"
#include "macro.h"
#include "nvml.h"

/**
 * gpuh_layout_vfail:
 * @gl: the GPU's layout
 * @err: its error (-ENOENT, -ENOSPC, -EINVAL)
 * @fmt, @ap: what does not fit or is missing, without the GPU
 *
 * Sets @gl->error and @gl->why ("layout of GPU ADDR: WHAT; its layout is not applied").
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_layout_vfail(struct gpuh_gpu_layout *gl, int err, const char *fmt, va_list ap) _printf_(3, 0);

/* The placement planned for each slot, by profile and slot number (at most one slot per
 * possible placement of its GI profile). */
struct gpuh_layout_mig {
        const struct gpuh_nvml_gpu *nvml;       /* NVML's data of the GPU */
        struct { unsigned start, size; } pl[GPUH_LAYOUT_MAX_PROFILES][GPUH_NVML_MAX_PLACEMENTS];
};

/**
 * gpuh_layout_mig_type:
 * @inv, @g: the inventory and the GPU
 * @profile: a layout's profile name: a vGPU type's name, or an mdev type directory "nvidia-N"
 *
 * Returns: the MIG-backed vGPU type (GI profile id >= 0) NVML lists for @g under that name or
 *          id, or NULL (none, no NVML data).
 */
const struct gpuh_nvml_type *gpuh_layout_mig_type(const struct gpuh_inventory *inv, const struct gpuh_gpu *g,
                                                  const char *profile);

/**
 * gpuh_layout_mig_gi_profile:
 * @inv: the inventory
 * @gl: the layout, @gl->kind set
 * @rp: a resolved profile (vgpu_type or type_id and type_name set)
 *
 * Returns: the NVML GI profile id of @rp's vGPU type (vendor: by type id; mdev: the type
 *          "nvidia-N" as NVML's type N, else by name); -1 for a time-sliced type or without
 *          NVML data.
 */
int gpuh_layout_mig_gi_profile(const struct gpuh_inventory *inv, const struct gpuh_gpu_layout *gl,
                               const struct gpuh_layout_resolved *rp);

/**
 * gpuh_layout_mig_plan:
 * @inv: the inventory (its nvml read)
 * @gl: the GPU's layout, profiles resolved (gi_profile set)
 * @parents: the VFs slots may take
 * @m: receives the plan
 *
 * Checks that the profiles are all MIG-backed or all time-sliced, that NVML answered for the
 * GPU, and its MIG mode (on, or off with the entry's "mig": true); then counts each profile
 * by placements: profiles in layout order, each slot the lowest-start possible placement of
 * its GI profile overlapping none chosen before, at most the profile's instances, the count
 * given (or as many as fit), at most @parents in all. Existing GIs play no part.
 * Failing, sets @gl->error (-EINVAL: a mix, no MIG, MIG off without "mig"; -ENOENT: no NVML
 * data, a GI profile NVML does not list; -ENOSPC: a count that does not fit) and @gl->why.
 *
 * Returns: 1 when the profiles are MIG-backed and planned (counts set); 0 when they are
 *          time-sliced, or @gl->error is set; -ENOMEM.
 */
int gpuh_layout_mig_plan(const struct gpuh_inventory *inv, struct gpuh_gpu_layout *gl, unsigned parents,
                         struct gpuh_layout_mig *m);

/** gpuh_layout_mig_slot: sets @s's gi fields from @m (its profile and number planned). */
void gpuh_layout_mig_slot(const struct gpuh_layout_mig *m, const struct gpuh_gpu_layout *gl, struct gpuh_layout_slot *s);

/**
 * gpuh_layout_mig_blocked:
 * @m, @gl: as gpuh_layout_mig_slot()
 * @s: a slot not created yet, its gi fields set
 *
 * Whether an existing GI overlaps @s's placement without being exactly its own (its GI
 * profile, its placement): the slot cannot be carved now. Then adds one line to @gl->notes
 * naming the GPU, the slot and the GI in the way.
 *
 * Returns: 1 blocked; 0 not; -ENOMEM.
 */
int gpuh_layout_mig_blocked(const struct gpuh_layout_mig *m, struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *s);
