/* SPDX-License-Identifier: Apache-2.0 */
/*
 * select_internal.h: what the files of the selection share (select.h is its API).
 *
 *   select_plan.c        the plan so far, and who holds or was promised what in view of it
 *   select_vgpu.c        NVIDIA vendor vGPU types: sizes, MIG-backed or not, equal-size mode
 *   select_refusal.c     why a request gets nothing: the notes of its error line
 *   select_candidates.c  every free device that would answer a request, and their order
 *   select.c             gpuh_select_requests(): the choice among the candidates
 *   select_cloudstack.c  gpuh_select_cloudstack(): CloudStack's own hostdevs, completed
 *
 * Every claim is checked against the one occupancy model (common/occupancy.h), with the plan
 * so far as one more claimant (docs/transformer.md, "Selection").
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "capacity.h"
#include "inventory.h"
#include "macro.h"
#include "request.h"
#include "select.h"

/* A GPU whose framebuffer had no room for the request being answered, for its error line. */
struct full_gpu {
        const struct gpuh_gpu *gpu;
        struct gpuh_fb_room room;
};

/* A GPU in equal-size vGPU mode that already carries (or was promised) another size. */
struct mode_gpu {
        const struct gpuh_gpu *gpu;
        unsigned type;                  /* a type of the size in use there */
        bool assumed;                   /* the mode is the driver's default, not NVML's word */
};

/* One selection: its input, the plan so far, and the refusals of the last sel_candidates(). */
struct sel {
        const struct gpuh_select_in *in;
        struct gpuh_alloc *plan;        /* chosen so far */
        size_t n_plan;
        size_t n_new_mdevs;             /* numbering of derived mdev UUIDs */
        struct full_gpu full[4];        /* of the last sel_candidates() */
        size_t n_full;                  /* may exceed ARRAY_SIZE(full) */
        struct mode_gpu mode[4];        /* of the last sel_candidates() */
        size_t n_mode;                  /* may exceed ARRAY_SIZE(mode) */
};

/* A free device that would answer a request (select_candidates.c). */
struct sel_cand {
        struct gpuh_alloc a;
        int node;
        int rank_reuse;         /* 0: an existing mdev or a VF with the type set; 1: to create/set */
        unsigned load;
        const struct gpuh_gpu *gpu;
};

/* select_plan.c: who holds PCI function @a (or mdev @uuid) itself: another domain that uses
 * it, another domain's live reservation, or the plan (gpuh_occupancy_holder_pci()); NULL. */
const char *sel_holder_pci(const struct sel *c, const struct gpuh_pci_addr *a);
const char *sel_holder_mdev(const struct sel *c, const char *uuid);
unsigned sel_pending_mdevs(const struct sel *c, const struct gpuh_pci_addr *parent);
unsigned sel_gpu_load(const struct sel *c, const struct gpuh_gpu *g);
bool sel_gpu_parts_held(const struct sel *c, const struct gpuh_gpu *g);
/* The framebuffer promised by other domains' reservations and the plan (capacity.h). */
struct gpuh_promised sel_promised(const struct sel *c);
/* The companions of @g's IOMMU group (not VFs) into @a, at most GPUH_ALLOC_MAX_COMPANIONS. */
void sel_companions_of(const struct gpuh_gpu *g, struct gpuh_alloc *a);
/* Append @a to the plan. Returns 0; -ENOMEM. */
int sel_push(struct sel *c, const struct gpuh_alloc *a);

/* select_vgpu.c */
int64_t sel_vtype_fb(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned id);
bool sel_vtype_is_mig(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned id);
unsigned sel_other_size_on(const struct sel *c, const struct gpuh_gpu *g, int64_t want);
int64_t sel_mig_room(const struct sel *c, const struct gpuh_gpu *g, unsigned type);
bool sel_equal_size_busy(const struct gpuh_inventory *inv);
unsigned sel_vgpu_type_id(const struct gpuh_inventory *inv, const char *profile);
/* Does vendor vGPU function @v list type @id as creatable now? */
bool sel_has_type(const struct gpuh_vendor_vgpu *v, unsigned id);

/* select_refusal.c */
void sel_note_full(struct sel *c, const struct gpuh_gpu *g, const struct gpuh_fb_room *room);
const char *sel_full_list(const struct sel *c, char *buf, size_t size);
void sel_note_mode(struct sel *c, const struct gpuh_gpu *g, unsigned type, bool assumed);
const char *sel_mode_list(const struct sel *c, char *buf, size_t size);
const char *sel_users_of_type(const struct sel *c, unsigned type, const char *profile, char *buf, size_t size);

/* select_candidates.c: every free device that would answer request @r (number @ri) now, in
 * *@ret (caller frees); c->full and c->mode note the GPUs that refused it. Returns 0; -ENOENT
 * (a vendor vGPU type nobody knows); -ENOMEM. */
int sel_candidates(struct sel *c, const struct gpuh_request *r, int ri, struct sel_cand **ret, size_t *ret_n);
/* qsort_r() order of candidates, best first; @arg points to the wanted NUMA node (int, -1 any). */
int sel_cand_cmp(const void *x, const void *y, void *arg);
