/* SPDX-License-Identifier: Apache-2.0 */
/* select_cloudstack.c: CloudStack's own hostdevs, checked and completed (companions, layout
 * slots to carve), never re-decided. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "log.h"
#include "select_internal.h"

/* "; the layout of GPU ... is not applied: ..." for an address no slot has, when a layout that
 * could have given it is broken (@g NULL: any GPU's), or "". */
static const char *layout_note(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, char *buf, size_t size)
{
        buf[0] = '\0';
        for (size_t i = 0; inv->layouts && i < inv->layouts->n; i++) {
                const struct gpuh_gpu_layout *gl = &inv->layouts->v[i];
                if (gl->why && (!g || gl->gpu == g)) {
                        snprintf(buf, size, "; %s", gl->why);
                        break;
                }
        }
        return buf;
}

/*
 * A MIG-backed slot whose GPU instance does not exist yet: prepare makes it, at the slot's own
 * placement, which no other slot shares and no GI overlaps (or the slot would not be
 * advertised: docs/layouts.md). Its type is creatable only once the GI exists, so neither the
 * VF's creatable list nor available_instances can say more now; the framebuffer rule of
 * time-sliced vGPUs does not apply to MIG.
 */
static bool gi_made_at_prepare(const struct gpuh_layout_slot *slot)
{
        return slot->gi && !slot->gi_exists;
}

/* The slot's GPU instance into the allocation (the record's gi-profile, gi-placement). */
static void slot_gi(const struct gpuh_layout_slot *slot, struct gpuh_alloc *a)
{
        a->gi = slot->gi;
        a->gi_profile = slot->gi_profile;
        a->gi_start = slot->gi_start;
        a->gi_size = slot->gi_size;
}

/* Room for @slot's mdev of type @t on its parent: the type's available instances less those
 * promised (reservations, this plan), and on SR-IOV VFs the GPU's framebuffer (capacity.h).
 * Returns 0; -ENOSPC. */
static int mdev_slot_room(struct sel *c, const struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *slot,
                          const struct gpuh_mdev_type *t, const char *pn, char **reterr)
{
        const struct gpuh_layout_resolved *rp = &gl->profiles[slot->profile];
        const struct gpuh_promised pr = sel_promised(c);
        struct gpuh_fb_room room;
        char fb[160] = "";

        if (gl->kind == GPUH_LAYOUT_VF_MDEV && !slot->gi && !gpuh_mdev_fb_room(gl->gpu, t, &pr, &room))
                snprintf(fb, sizeof(fb), ", framebuffer full (%lld of %lld MiB in use or promised)", (long long) room.used,
                         (long long) room.total);
        if (fb[0] || t->available_instances <= (int) sel_pending_mdevs(c, &slot->parent))
                return gpuh_error(reterr, -ENOSPC, "mdev %s (layout slot %u of '%s' on %s): no room left for type %s "
                                  "(%d available, %u promised%s)", slot->uuid, slot->number, rp->profile, pn, rp->type_id,
                                  t->available_instances, sel_pending_mdevs(c, &slot->parent), fb);
        return 0;
}

/*
 * A CloudStack mdev hostdev naming a layout slot not created yet (layout.h): an mdev to create
 * with that UUID on the slot's parent, if the parent still offers the type, a VF nobody else
 * holds, and there is room (mdev_slot_room(), unless its GPU instance is made at prepare).
 * Returns 0; -ENOSPC (the slot's capacity is gone); -EBUSY.
 */
static int cloudstack_mdev_slot(struct sel *c, const struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *slot,
                                struct gpuh_alloc *a, char **reterr)
{
        const struct gpuh_layout_resolved *rp = &gl->profiles[slot->profile];
        const struct gpuh_gpu *g = gl->gpu;
        const struct gpuh_mdev_type *t = NULL;
        char pn[GPUH_PCI_ADDR_MAX];
        const char *holder;
        int r;

        gpuh_pci_addr_format(&slot->parent, pn);
        if (gl->kind == GPUH_LAYOUT_PF_MDEV) {
                for (size_t i = 0; i < g->n_types && !t; i++)
                        t = streq(g->types[i].type_id, rp->type_id) ? &g->types[i] : NULL;
        } else {
                if ((holder = sel_holder_pci(c, &slot->parent)))
                        return gpuh_error(reterr, -EBUSY, "mdev %s: its VF %s is in use by %s", slot->uuid, pn, holder);
                for (size_t v = 0; v < g->n_vfs && !t; v++)
                        if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, &slot->parent) == 0)
                                for (size_t i = 0; i < g->vfs[v].n_types && !t; i++)
                                        t = streq(g->vfs[v].types[i].type_id, rp->type_id) ? &g->vfs[v].types[i] : NULL;
        }
        if (!t)
                return gpuh_error(reterr, -ENOSPC, "mdev %s (layout slot %u of '%s'): %s no longer offers type %s",
                                  slot->uuid, slot->number, rp->profile, pn, rp->type_id);
        if (!gi_made_at_prepare(slot) && (r = mdev_slot_room(c, gl, slot, t, pn, reterr)) < 0)
                return r;
        a->kind = GPUH_ALLOC_MDEV;
        a->parent = slot->parent;
        a->mdev_new = true;
        memcpy(a->uuid, slot->uuid, sizeof(a->uuid));
        snprintf(a->mdev_type, sizeof(a->mdev_type), "%s", rp->type_id);
        slot_gi(slot, a);
        return 0;
}

/* Room for the vendor VF @vf's type of @slot: creatable on that VF, and (time-sliced) the GPU's
 * framebuffer with what is promised. Returns 0; -ENOSPC. */
static int vendor_slot_room(struct sel *c, const struct gpuh_gpu *gpu, const struct gpuh_vf *vf,
                            const struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *slot, char **reterr)
{
        const struct gpuh_layout_resolved *rp = &gl->profiles[slot->profile];
        const struct gpuh_promised pr = sel_promised(c);
        struct gpuh_fb_room room;
        char an[GPUH_PCI_ADDR_MAX];

        gpuh_pci_addr_format(&vf->dev->addr, an);
        if (!slot->gi && !gpuh_vendor_vgpu_fb_room(c->in->inv, gpu, rp->vgpu_type, &pr, &room))
                return gpuh_error(reterr, -ENOSPC, "VF %s (layout slot %u of '%s'): framebuffer full (%lld of %lld MiB "
                                  "in use or promised)", an, slot->number, rp->profile, (long long) room.used,
                                  (long long) room.total);
        if (!sel_has_type(&vf->vendor_vgpu, rp->vgpu_type))
                return gpuh_error(reterr, -ENOSPC, "VF %s (layout slot %u of '%s'): vGPU type %u is not creatable on it now",
                                  an, slot->number, rp->profile, rp->vgpu_type);
        return 0;
}

/* A CloudStack hostdev naming a layout's vendor vGPU VF whose type is not set yet: the type to
 * set, if there is room (vendor_slot_room(), unless its GPU instance is made at prepare).
 * Returns 0; -ENOSPC. */
static int cloudstack_vendor_slot(struct sel *c, const struct gpuh_gpu *gpu, const struct gpuh_vf *vf,
                                  const struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *slot,
                                  struct gpuh_alloc *a, char **reterr)
{
        int r;

        if (!gi_made_at_prepare(slot) && (r = vendor_slot_room(c, gpu, vf, gl, slot, reterr)) < 0)
                return r;
        a->kind = GPUH_ALLOC_VENDOR_VGPU;
        a->vgpu_type = gl->profiles[slot->profile].vgpu_type;
        slot_gi(slot, a);
        return 0;
}

static const char *blocker_list(unsigned blockers, char *buf, size_t size)
{
        size_t len = 0;

        buf[0] = '\0';
        for (unsigned bit = 0; bit < _GPUH_BLOCK_MAX; bit++)
                if (blockers & (1u << bit) && len < size)
                        len += (size_t) snprintf(buf + len, size - len, "%s%s", len ? ", " : "", gpuh_block_to_string(bit));
        return buf;
}

/* CloudStack's mdev hostdev @h: an existing mdev nobody else holds, or a layout's slot not
 * created yet. Returns 1 (@a filled); -EBUSY; -ENODEV (no such mdev and no slot); -ENOSPC. */
static int cloudstack_mdev(struct sel *c, const struct gpuh_dom_hostdev *h, struct gpuh_alloc *a, char **reterr)
{
        struct gpuh_inventory *inv = c->in->inv;
        const struct gpuh_mdev *m = NULL;
        const struct gpuh_gpu_layout *gl = NULL;
        const struct gpuh_layout_slot *slot;
        const char *holder;
        char why[512];
        int r;

        for (size_t k = 0; k < inv->n_mdevs; k++)
                if (streq(inv->mdevs[k].uuid, h->uuid))
                        m = &inv->mdevs[k];
        if ((holder = sel_holder_mdev(c, h->uuid)))
                return gpuh_error(reterr, -EBUSY, "mdev %s is in use by %s", h->uuid, holder);
        if (m) {
                a->kind = GPUH_ALLOC_MDEV;
                a->parent = m->parent;
                memcpy(a->uuid, m->uuid, sizeof(a->uuid));
                snprintf(a->mdev_type, sizeof(a->mdev_type), "%s", m->type_id ? m->type_id : "");
                return 1;
        }
        /* a layout's slot not created yet (docs/layouts.md) */
        slot = gpuh_layouts_find_mdev(inv->layouts, h->uuid, &gl);
        if (!slot)
                return gpuh_error(reterr, -ENODEV, "mdev %s does not exist on this host, and its type is "
                                  "not known to create it%s", h->uuid, layout_note(inv, NULL, why, sizeof(why)));
        r = cloudstack_mdev_slot(c, gl, slot, a, reterr);
        return r < 0 ? r : 1;
}

/* The GPU that PCI function @addr is, or whose VF (*@vf) it is; NULL when none is. */
static const struct gpuh_gpu *gpu_of(const struct gpuh_inventory *inv, const struct gpuh_pci_addr *addr,
                                     const struct gpuh_vf **vf)
{
        const struct gpuh_gpu *gpu = NULL;

        *vf = NULL;
        for (size_t g = 0; g < inv->n_gpus && !gpu; g++) {
                if (gpuh_pci_addr_cmp(&inv->gpus[g].dev->addr, addr) == 0)
                        gpu = &inv->gpus[g];
                for (size_t v = 0; v < inv->gpus[g].n_vfs && !gpu; v++)
                        if (gpuh_pci_addr_cmp(&inv->gpus[g].vfs[v].dev->addr, addr) == 0) {
                                gpu = &inv->gpus[g];
                                *vf = &inv->gpus[g].vfs[v];
                        }
        }
        return gpu;
}

/* CloudStack's hostdev @a->addr (named @an), VF @vf of @gpu: a vendor vGPU VF with its type
 * set, or a layout's whose type is set at prepare, or a plain VF; never an mdev parent, never
 * while its GPU is held whole. Returns 0; -EBUSY; -ENODEV; -ENOSPC. */
static int cloudstack_vf(struct sel *c, const struct gpuh_gpu *gpu, const struct gpuh_vf *vf, const char *an,
                         struct gpuh_alloc *a, char **reterr)
{
        const char *holder;
        char why[512];

        if ((holder = sel_holder_pci(c, &gpu->dev->addr)))
                return gpuh_error(reterr, -EBUSY, "%s: its GPU is in use by %s", an, holder);
        a->parent = gpu->dev->addr;
        if (vf->has_vendor_vgpu && vf->vendor_vgpu.current_type == 0) {
                /* a layout's VF whose type is set at prepare (docs/layouts.md) */
                const struct gpuh_gpu_layout *gl = NULL;
                const struct gpuh_layout_slot *slot = gpuh_layouts_find_vf(c->in->inv->layouts, &a->addr, &gl);

                if (!slot)
                        return gpuh_error(reterr, -ENODEV, "vendor vGPU VF %s has no vGPU type set, and no "
                                          "layout gives it one%s", an, layout_note(c->in->inv, gpu, why, sizeof(why)));
                return cloudstack_vendor_slot(c, gpu, vf, gl, slot, a, reterr);
        }
        if (vf->has_vendor_vgpu) {
                a->kind = GPUH_ALLOC_VENDOR_VGPU;
                a->vgpu_type = vf->vendor_vgpu.current_type;
        } else if (vf->n_types > 0)
                return gpuh_error(reterr, -ENODEV, "VF %s is an mdev parent, not a device to pass through", an);
        else
                a->kind = GPUH_ALLOC_VF;
        return 0;
}

/* CloudStack's PCI hostdev @h: a GPU whole, with its companions, or one of its VFs.
 * Returns 1 (@a filled); 0 (not a GPU: not ours to judge); -EBUSY; -ENODEV; -ENOSPC. */
static int cloudstack_pci(struct sel *c, const struct gpuh_dom_hostdev *h, struct gpuh_alloc *a, char **reterr)
{
        const struct gpuh_vf *vf;
        const struct gpuh_gpu *gpu = gpu_of(c->in->inv, &h->addr, &vf);
        const char *holder;
        char an[GPUH_PCI_ADDR_MAX], why[512];
        int r;

        if (!gpu)
                return 0;
        gpuh_pci_addr_format(&h->addr, an);
        if ((holder = sel_holder_pci(c, &h->addr)))
                return gpuh_error(reterr, -EBUSY, "%s is in use by %s", an, holder);
        a->addr = h->addr;
        if (vf) {
                r = cloudstack_vf(c, gpu, vf, an, a, reterr);
                return r < 0 ? r : 1;
        }
        if (gpu->blockers)
                return gpuh_error(reterr, -ENODEV, "GPU %s cannot be passed through whole (%s)", an,
                                  blocker_list(gpu->blockers, why, sizeof(why)));
        a->kind = GPUH_ALLOC_PCI;
        sel_companions_of(gpu, a);
        return 1;
}

int gpuh_select_cloudstack(const struct gpuh_select_in *in, struct gpuh_alloc **ret, size_t *ret_n, char **reterr)
{
        struct sel c = { .in = in };
        int r;

        for (size_t i = 0; in->dom && i < in->dom->n_hostdevs; i++) {
                const struct gpuh_dom_hostdev *h = &in->dom->hostdevs[i];
                struct gpuh_alloc a = { .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };

                r = h->is_mdev ? cloudstack_mdev(&c, h, &a, reterr) : cloudstack_pci(&c, h, &a, reterr);
                if (r < 0 || (r > 0 && (r = sel_push(&c, &a)) < 0))
                        goto out;
        }
        *ret = c.plan;
        *ret_n = c.n_plan;
        return (int) c.n_plan;
out:
        free(c.plan);
        return r;
}
