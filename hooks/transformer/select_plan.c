/* SPDX-License-Identifier: Apache-2.0 */
/* select_plan.c: the plan so far, and who holds or was promised what in view of it. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "occupancy.h"
#include "select_internal.h"

/* The claims, as the occupancy model sees them, with the plan so far (common/occupancy.h). */
static struct gpuh_occupancy claims(const struct sel *c)
{
        return (struct gpuh_occupancy) {
                .self = c->in->domain, .now = (int64_t) time(NULL), .res = c->in->others, .n_res = c->in->n_others,
                .usage = c->in->inv->usage, .plan = c->plan, .n_plan = c->n_plan,
        };
}

/* A domain other than ours that uses PCI function @a (or mdev @uuid); NULL when none. */
static const char *other_user(const struct sel *c, const struct gpuh_pci_addr *a, const char *uuid)
{
        struct gpuh_occupancy o = claims(c);

        o.res = NULL;
        o.n_res = 0;
        o.plan = NULL;
        o.n_plan = 0;
        return uuid ? gpuh_occupancy_holder_mdev(&o, uuid) : gpuh_occupancy_holder_pci(&o, a);
}

const char *sel_holder_pci(const struct sel *c, const struct gpuh_pci_addr *a)
{
        struct gpuh_occupancy o = claims(c);

        return gpuh_occupancy_holder_pci(&o, a);
}

const char *sel_holder_mdev(const struct sel *c, const char *uuid)
{
        struct gpuh_occupancy o = claims(c);

        return gpuh_occupancy_holder_mdev(&o, uuid);
}

/* mdevs to be created on @parent by reservations and the plan (not in sysfs yet). They count
 * against every type's available_instances there: conservative for GPUs that allow one type
 * at a time, exact for SR-IOV VFs that carry one vGPU. */
unsigned sel_pending_mdevs(const struct sel *c, const struct gpuh_pci_addr *parent)
{
        unsigned n = 0;

        for (size_t i = 0; i < c->in->n_others; i++)
                for (size_t k = 0; k < c->in->others[i].n_devices; k++) {
                        const struct gpuh_alloc *a = &c->in->others[i].devices[k];
                        n += a->kind == GPUH_ALLOC_MDEV && a->mdev_new && gpuh_pci_addr_cmp(&a->parent, parent) == 0;
                }
        for (size_t k = 0; k < c->n_plan; k++)
                n += c->plan[k].kind == GPUH_ALLOC_MDEV && c->plan[k].mdev_new &&
                     gpuh_pci_addr_cmp(&c->plan[k].parent, parent) == 0;
        return n;
}

static bool on_gpu(const struct gpuh_gpu *g, const struct gpuh_pci_addr *a)
{
        if (gpuh_pci_addr_cmp(&g->dev->addr, a) == 0)
                return true;
        for (size_t v = 0; v < g->n_vfs; v++)
                if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, a) == 0)
                        return true;
        return false;
}

/* vGPUs of @g in use or promised: its mdevs held by anyone, its vendor VFs held by anyone. */
unsigned sel_gpu_load(const struct sel *c, const struct gpuh_gpu *g)
{
        unsigned n = 0;

        for (size_t i = 0; i < g->n_vgpus; i++)
                n += other_user(c, NULL, g->vgpus[i].mdev->uuid) != NULL;
        for (size_t v = 0; v < g->n_vfs; v++)
                n += sel_holder_pci(c, &g->vfs[v].dev->addr) != NULL;
        for (size_t i = 0; i < c->in->n_others; i++)
                for (size_t k = 0; k < c->in->others[i].n_devices; k++)
                        n += c->in->others[i].devices[k].kind == GPUH_ALLOC_MDEV && on_gpu(g, &c->in->others[i].devices[k].parent);
        for (size_t k = 0; k < c->n_plan; k++)
                n += c->plan[k].kind == GPUH_ALLOC_MDEV && on_gpu(g, &c->plan[k].parent);
        return n;
}

struct gpuh_promised sel_promised(const struct sel *c)
{
        return (struct gpuh_promised) { .res = c->in->others, .n_res = c->in->n_others, .plan = c->plan,
                                        .n_plan = c->n_plan };
}



/* Anything on @g's VFs or mdevs held by anyone (then the whole GPU is not free). */
bool sel_gpu_parts_held(const struct sel *c, const struct gpuh_gpu *g)
{
        for (size_t v = 0; v < g->n_vfs; v++)
                if (sel_holder_pci(c, &g->vfs[v].dev->addr))
                        return true;
        return sel_gpu_load(c, g) > 0;
}

void sel_companions_of(const struct gpuh_gpu *g, struct gpuh_alloc *a)
{
        for (size_t m = 0; m < g->n_members && a->n_companions < GPUH_ALLOC_MAX_COMPANIONS; m++)
                if (g->members[m].role == GPUH_ROLE_COMPANION && !g->members[m].dev->is_vf)
                        a->companions[a->n_companions++] = g->members[m].dev->addr;
}

int sel_push(struct sel *c, const struct gpuh_alloc *a)
{
        struct gpuh_alloc *np = reallocarray(c->plan, c->n_plan + 1, sizeof(*np));

        if (!np)
                return -ENOMEM;
        c->plan = np;
        c->plan[c->n_plan++] = *a;
        return 0;
}

