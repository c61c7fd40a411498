/* SPDX-License-Identifier: Apache-2.0 */
/* select_candidates.c: every free device that would answer a request, and their order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "select_internal.h"

static bool matches_ids(const struct gpuh_request *r, uint16_t vendor, uint16_t device, const char *name)
{
        if (r->vendor >= 0 && r->vendor != vendor)
                return false;
        if (r->device >= 0 && r->device != device)
                return false;
        if (r->model && (!name || !streq(r->model, name)))
                return false;
        return true;
}

static bool matches_gpu(const struct gpuh_request *r, const struct gpuh_gpu *g)
{
        return matches_ids(r, g->dev->vendor_id, g->dev->device_id, g->device_name);
}

static bool type_matches(const struct gpuh_mdev_type *t, const char *profile)
{
        return streq(t->type_id, profile) || (t->name && streq(t->name, profile));
}

static int add_cand(struct sel_cand **v, size_t *n, const struct sel_cand *c)
{
        struct sel_cand *nv = reallocarray(*v, *n + 1, sizeof(*nv));

        if (!nv)
                return -ENOMEM;
        *v = nv;
        (*v)[(*n)++] = *c;
        return 0;
}

/* The candidates of one request, as sel_candidates() gathers them GPU by GPU. */
struct gather {
        struct sel *c;
        const struct gpuh_request *r;
        struct gpuh_promised prom;      /* reservations and plan so far: framebuffer promised */
        unsigned vtype;                 /* GPUH_REQ_VENDOR_VGPU: the type asked for */
        struct sel_cand *v;
        size_t n;
};

/* Passthrough: @g whole with its companions, when it matches and nothing of it is held. */
static int cand_passthrough(struct gather *gt, const struct gpuh_gpu *g, bool gpu_free, struct sel_cand *cd)
{
        bool ok = g->blockers == 0 && gpu_free && matches_gpu(gt->r, g) && !sel_gpu_parts_held(gt->c, g);

        for (size_t m = 0; ok && m < g->n_members; m++)
                if (g->members[m].role == GPUH_ROLE_COMPANION && sel_holder_pci(gt->c, &g->members[m].dev->addr))
                        ok = false;
        if (!ok)
                return 0;
        cd->a.kind = GPUH_ALLOC_PCI;
        cd->a.addr = g->dev->addr;
        sel_companions_of(g, &cd->a);
        return add_cand(&gt->v, &gt->n, cd);
}

/* Plain SR-IOV VFs of a free @g (no mdev types, no vendor vGPU), free and matching. */
static int cand_vfs(struct gather *gt, const struct gpuh_gpu *g, bool gpu_free, struct sel_cand *cd)
{
        int k = 0;

        for (size_t vi = 0; gpu_free && vi < g->n_vfs && k >= 0; vi++) {
                const struct gpuh_vf *vf = &g->vfs[vi];
                if (vf->n_types > 0 || vf->has_vendor_vgpu || sel_holder_pci(gt->c, &vf->dev->addr) ||
                    !(matches_gpu(gt->r, g) || matches_ids(gt->r, vf->dev->vendor_id, vf->dev->device_id, vf->device_name)))
                        continue;
                cd->a.kind = GPUH_ALLOC_VF;
                cd->a.addr = vf->dev->addr;
                cd->a.parent = g->dev->addr;
                k = add_cand(&gt->v, &gt->n, cd);
        }
        return k;
}

/* Existing mdevs of @g of the profile, free, on a free parent: ready as they are. */
static int cand_mdevs_existing(struct gather *gt, const struct gpuh_gpu *g, struct sel_cand *cd)
{
        int k = 0;

        for (size_t i = 0; i < g->n_vgpus && k >= 0; i++) {
                const struct gpuh_vgpu_instance *vg = &g->vgpus[i];
                if (!vg->type || !type_matches(vg->type, gt->r->profile) || sel_holder_mdev(gt->c, vg->mdev->uuid) ||
                    (gpuh_pci_addr_cmp(&vg->mdev->parent, &g->dev->addr) != 0 &&
                     sel_holder_pci(gt->c, &vg->mdev->parent)))
                        continue;
                cd->a.kind = GPUH_ALLOC_MDEV;
                cd->a.parent = vg->mdev->parent;
                memcpy(cd->a.uuid, vg->mdev->uuid, sizeof(cd->a.uuid));
                snprintf(cd->a.mdev_type, sizeof(cd->a.mdev_type), "%s", vg->type->type_id);
                cd->a.mdev_new = false;
                cd->rank_reuse = 0;
                k = add_cand(&gt->v, &gt->n, cd);
        }
        return k;
}

/* Parents, @g then its free VFs, with room for one more mdev of the profile: to create. A
 * VF's type also needs framebuffer on the GPU (else @g is noted full). */
static int cand_mdevs_new(struct gather *gt, const struct gpuh_gpu *g, struct sel_cand *cd)
{
        int k = 0;

        for (size_t p = 0; p <= g->n_vfs && k >= 0; p++) {
                const struct gpuh_mdev_type *types = p == 0 ? g->types : g->vfs[p - 1].types;
                size_t nt = p == 0 ? g->n_types : g->vfs[p - 1].n_types;
                const struct gpuh_pci_addr *pa = p == 0 ? &g->dev->addr : &g->vfs[p - 1].dev->addr;

                if (p > 0 && sel_holder_pci(gt->c, pa))
                        continue;
                for (size_t t = 0; t < nt && k >= 0; t++) {
                        struct gpuh_fb_room room;

                        if (!type_matches(&types[t], gt->r->profile) || types[t].available_instances <= 0 ||
                            (unsigned) types[t].available_instances <= sel_pending_mdevs(gt->c, pa))
                                continue;
                        if (p > 0 && !gpuh_mdev_fb_room(g, &types[t], &gt->prom, &room)) {
                                sel_note_full(gt->c, g, &room);
                                continue;
                        }
                        cd->a.kind = GPUH_ALLOC_MDEV;
                        cd->a.parent = *pa;
                        cd->a.uuid[0] = '\0';
                        snprintf(cd->a.mdev_type, sizeof(cd->a.mdev_type), "%s", types[t].type_id);
                        cd->a.mdev_new = true;
                        cd->rank_reuse = 1;
                        k = add_cand(&gt->v, &gt->n, cd);
                }
        }
        return k;
}

/* mdevs on a free, matching @g: existing free ones of the type first, then new ones. */
static int cand_mdevs(struct gather *gt, const struct gpuh_gpu *g, bool gpu_free, struct sel_cand *cd)
{
        int k;

        if (!gpu_free || !matches_gpu(gt->r, g))
                return 0;
        cd->load = sel_gpu_load(gt->c, g);
        k = cand_mdevs_existing(gt, g, cd);
        if (k < 0)
                return k;
        return cand_mdevs_new(gt, g, cd);
}

/* NVIDIA vendor-specific vGPU VFs of a free, matching @g, each free and either set to the type
 * already or unset and able to take it while the GPU's framebuffer has room (else @g is noted
 * full). */
static int cand_vendor_vgpus(struct gather *gt, const struct gpuh_gpu *g, bool gpu_free, struct sel_cand *cd)
{
        struct gpuh_fb_room room;
        int room_ok = -1;       /* the GPU's framebuffer, asked once */
        int k = 0;
        bool mig;

        if (!gpu_free || !matches_gpu(gt->r, g))
                return 0;
        mig = sel_vtype_is_mig(gt->c->in->inv, g, gt->vtype);
        /* Equal-size mode (NVML's word, else the driver's default on vendor VFs): a GPU that
         * carries or was promised another size takes none of this one (NVIDIA vGPU user guide,
         * "Modes for time-sliced vGPUs"); refused here, not when the VM starts. */
        {
                bool assumed = false;
                int64_t want = sel_vtype_fb(gt->c->in->inv, g, gt->vtype);
                unsigned other;

                if (want > 0 && !sel_vtype_is_mig(gt->c->in->inv, g, gt->vtype) &&
                    gpuh_inventory_vgpu_mode(gt->c->in->inv, g, &assumed) == GPUH_VGPU_MODE_EQUAL &&
                    (other = sel_other_size_on(gt->c, g, want))) {
                        sel_note_mode(gt->c, g, other, assumed);
                        return 0;
                }
        }
        cd->load = sel_gpu_load(gt->c, g);
        for (size_t vi = 0; vi < g->n_vfs && k >= 0; vi++) {
                const struct gpuh_vf *vf = &g->vfs[vi];
                if (!vf->has_vendor_vgpu || sel_holder_pci(gt->c, &vf->dev->addr))
                        continue;
                if (vf->vendor_vgpu.current_type == gt->vtype)
                        cd->rank_reuse = 0;     /* set already: its framebuffer is counted */
                else if (vf->vendor_vgpu.current_type == 0 && sel_has_type(&vf->vendor_vgpu, gt->vtype)) {
                        /* MIG-backed: a free GPU instance, not the framebuffer, is the budget */
                        if (room_ok < 0)
                                room_ok = mig ? sel_mig_room(gt->c, g, gt->vtype) > 0 :
                                          gpuh_vendor_vgpu_fb_room(gt->c->in->inv, g, gt->vtype, &gt->prom, &room);
                        if (!room_ok && mig)
                                continue;
                        if (!room_ok) {
                                sel_note_full(gt->c, g, &room);
                                continue;
                        }
                        cd->rank_reuse = 1;
                } else
                        continue;
                cd->a.kind = GPUH_ALLOC_VENDOR_VGPU;
                cd->a.addr = vf->dev->addr;
                cd->a.parent = g->dev->addr;
                cd->a.vgpu_type = gt->vtype;
                k = add_cand(&gt->v, &gt->n, cd);
        }
        return k;
}

/* Every free device that would answer @r now. */
int sel_candidates(struct sel *c, const struct gpuh_request *r, int ri, struct sel_cand **ret, size_t *ret_n)
{
        struct gpuh_inventory *inv = c->in->inv;
        struct gather gt = { .c = c, .r = r, .prom = sel_promised(c) };
        int k = 0;

        c->n_full = 0;
        c->n_mode = 0;

        if (r->mode == GPUH_REQ_VENDOR_VGPU && !(gt.vtype = sel_vgpu_type_id(inv, r->profile)))
                return -ENOENT;
        for (size_t gi = 0; gi < inv->n_gpus && k >= 0; gi++) {
                const struct gpuh_gpu *g = &inv->gpus[gi];
                bool gpu_free = !sel_holder_pci(c, &g->dev->addr);
                struct sel_cand cd = { .gpu = g, .node = g->dev->numa_node };

                cd.a.request = ri;
                cd.a.display = r->display;
                switch (r->mode) {
                case GPUH_REQ_PASSTHROUGH:
                        k = cand_passthrough(&gt, g, gpu_free, &cd);
                        break;
                case GPUH_REQ_VF:
                        k = cand_vfs(&gt, g, gpu_free, &cd);
                        break;
                case GPUH_REQ_MDEV:
                        k = cand_mdevs(&gt, g, gpu_free, &cd);
                        break;
                case GPUH_REQ_VENDOR_VGPU:
                        k = cand_vendor_vgpus(&gt, g, gpu_free, &cd);
                        break;
                default:
                        break;
                }
        }
        if (k < 0) {
                free(gt.v);
                return k;
        }
        *ret = gt.v;
        *ret_n = gt.n;
        return 0;
}

int sel_cand_cmp(const void *x, const void *y, void *arg)
{
        const struct sel_cand *a = x, *b = y;
        int want_node = *(const int *) arg;
        int an = want_node >= 0 && a->node == want_node, bn = want_node >= 0 && b->node == want_node;
        int c;

        if (an != bn)
                return bn - an;                 /* the vCPUs' node first */
        if (a->rank_reuse != b->rank_reuse)
                return a->rank_reuse - b->rank_reuse;
        if (a->load != b->load)
                return a->load < b->load ? -1 : 1;      /* least-loaded GPU */
        c = gpuh_pci_addr_cmp(a->a.kind == GPUH_ALLOC_MDEV ? &a->a.parent : &a->a.addr,
                              b->a.kind == GPUH_ALLOC_MDEV ? &b->a.parent : &b->a.addr);
        if (c)
                return c;
        return strcmp(a->a.uuid, b->a.uuid);
}

