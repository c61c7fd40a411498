/* SPDX-License-Identifier: Apache-2.0 */
/* capacity.c: what a physical GPU's framebuffer still holds, for every kind of vGPU on its VFs. */
#include <stdint.h>
#include <string.h>

#include "capacity.h"
#include "vendor_vgpu.h"

int64_t gpuh_fb_add(int64_t a, int64_t b)
{
        int64_t sum;

        if (a < 0)
                a = 0;
        if (b < 0)
                b = 0;
        return __builtin_add_overflow(a, b, &sum) ? INT64_MAX : sum;
}

bool gpuh_vgpu_fits(const struct gpuh_vgpu_params *t, int64_t used, struct gpuh_fb_room *ret)
{
        struct gpuh_fb_room room = { .need = t->video_ram_mib, .max_instances = t->max_instances,
                                     .total = -1, .used = used < 0 ? 0 : used };
        int64_t after;
        bool fits = true;

        if (room.need > 0 && room.max_instances > 0) {
                if (__builtin_mul_overflow(room.max_instances, room.need, &room.total))
                        room.total = INT64_MAX;
                fits = !__builtin_add_overflow(room.used, room.need, &after) && after <= room.total;
        }
        if (ret)
                *ret = room;
        return fits;
}

static bool on_vf_of(const struct gpuh_gpu *g, const struct gpuh_pci_addr *a)
{
        for (size_t v = 0; v < g->n_vfs; v++)
                if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, a) == 0)
                        return true;
        return false;
}

/* ---- mdevs on VFs ---- */

/* Framebuffer of mdev type @type_id as VF @parent of @g lists it, or @fallback. */
static int64_t mdev_type_fb(const struct gpuh_gpu *g, const struct gpuh_pci_addr *parent, const char *type_id,
                            int64_t fallback)
{
        for (size_t v = 0; v < g->n_vfs; v++)
                if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, parent) == 0)
                        for (size_t t = 0; t < g->vfs[v].n_types; t++)
                                if (streq(g->vfs[v].types[t].type_id, type_id) &&
                                    g->vfs[v].types[t].params.video_ram_mib > 0)
                                        return g->vfs[v].types[t].params.video_ram_mib;
        return fallback;
}

static int64_t mdev_promised_fb(const struct gpuh_gpu *g, const struct gpuh_alloc *a, int64_t fb)
{
        if (a->kind != GPUH_ALLOC_MDEV || !a->mdev_new || !on_vf_of(g, &a->parent))
                return 0;
        return mdev_type_fb(g, &a->parent, a->mdev_type, fb);
}

bool gpuh_mdev_fb_room(const struct gpuh_gpu *g, const struct gpuh_mdev_type *t, const struct gpuh_promised *p,
                       struct gpuh_fb_room *ret)
{
        int64_t fb = t->params.video_ram_mib, used = 0;

        for (size_t i = 0; i < g->n_vgpus; i++)
                if (gpuh_pci_addr_cmp(&g->vgpus[i].mdev->parent, &g->dev->addr) != 0)
                        used = gpuh_fb_add(used, g->vgpus[i].type && g->vgpus[i].type->params.video_ram_mib > 0
                                                 ? g->vgpus[i].type->params.video_ram_mib : fb);
        for (size_t i = 0; i < p->n_res; i++)
                for (size_t k = 0; k < p->res[i].n_devices; k++)
                        used = gpuh_fb_add(used, mdev_promised_fb(g, &p->res[i].devices[k], fb));
        for (size_t k = 0; k < p->n_plan; k++)
                used = gpuh_fb_add(used, mdev_promised_fb(g, &p->plan[k], fb));
        return gpuh_vgpu_fits(&t->params, used, ret);
}

/* ---- NVIDIA vendor-specific vGPU VFs ---- */

static int64_t max64(int64_t a, int64_t b)
{
        return a > b ? a : b;
}

static int64_t list_max_fb(const struct gpuh_vendor_vgpu *v)
{
        int64_t m = -1;

        for (size_t k = 0; k < v->n_creatable; k++)
                m = max64(m, gpuh_vgpu_type_name_fb(v->creatable[k].name));
        return m;
}

/* "NVIDIA L40S-" of "NVIDIA L40S-8Q": the model part of a vGPU type name (up to its last '-'). */
static size_t model_prefix(const char *name)
{
        const char *dash = name ? strrchr(name, '-') : NULL;

        return dash ? (size_t) (dash - name) + 1 : 0;
}

/* A name of @g's own types (a listed or set one), or NULL. */
static const char *some_type_name(const struct gpuh_gpu *g)
{
        for (size_t v = 0; v < g->n_vfs; v++) {
                if (g->vfs[v].vendor_vgpu.n_creatable > 0)
                        return g->vfs[v].vendor_vgpu.creatable[0].name;
                if (g->vfs[v].current_type_name)
                        return g->vfs[v].current_type_name;
        }
        return NULL;
}

/* The largest vGPU type any GPU of @g's model names, or the name cache remembers for that
 * model (a GPU whose free VFs list only what still fits): the whole framebuffer. */
static int64_t model_fb(const struct gpuh_inventory *inv, const struct gpuh_gpu *g)
{
        const char *own = some_type_name(g);
        size_t pl = model_prefix(own);
        int64_t m = -1;

        for (size_t i = 0; pl > 0 && i < inv->n_known_types; i++)
                if (model_prefix(inv->known_types[i].name) == pl && strncmp(inv->known_types[i].name, own, pl) == 0)
                        m = max64(m, gpuh_vgpu_type_name_fb(inv->known_types[i].name));

        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpuh_gpu *o = &inv->gpus[i];

                if (o->dev->vendor_id != g->dev->vendor_id || o->dev->device_id != g->dev->device_id)
                        continue;
                for (size_t v = 0; v < o->n_vfs; v++) {
                        m = max64(m, list_max_fb(&o->vfs[v].vendor_vgpu));
                        m = max64(m, gpuh_vgpu_type_name_fb(o->vfs[v].current_type_name));
                }
        }
        return m;
}

/* The type a promise will set on VF @a, 0 when none does. */
static unsigned promised_type(const struct gpuh_promised *p, const struct gpuh_pci_addr *a)
{
        for (size_t i = 0; i < p->n_res; i++)
                for (size_t k = 0; k < p->res[i].n_devices; k++) {
                        const struct gpuh_alloc *d = &p->res[i].devices[k];
                        if (d->kind == GPUH_ALLOC_VENDOR_VGPU && gpuh_pci_addr_cmp(&d->addr, a) == 0)
                                return d->vgpu_type;
                }
        for (size_t k = 0; k < p->n_plan; k++)
                if (p->plan[k].kind == GPUH_ALLOC_VENDOR_VGPU && gpuh_pci_addr_cmp(&p->plan[k].addr, a) == 0)
                        return p->plan[k].vgpu_type;
        return 0;
}

static int64_t vendor_type_fb(const struct gpuh_inventory *inv, unsigned id, int64_t fallback)
{
        int64_t fb = gpuh_vgpu_type_name_fb(gpuh_inventory_vgpu_type_name(inv, id));

        return fb > 0 ? fb : fallback;
}

int64_t gpuh_vendor_vgpu_gpu_fb(const struct gpuh_inventory *inv, const struct gpuh_gpu *g)
{
        int64_t set = 0, free_max = -1;

        for (size_t v = 0; v < g->n_vfs; v++) {
                const struct gpuh_vf *vf = &g->vfs[v];

                if (!vf->has_vendor_vgpu)
                        continue;
                if (vf->vendor_vgpu.current_type != 0)
                        set = gpuh_fb_add(set, vendor_type_fb(inv, vf->vendor_vgpu.current_type, 0));
                else
                        free_max = max64(free_max, list_max_fb(&vf->vendor_vgpu));
        }
        return max64(model_fb(inv, g), set > 0 || free_max > 0 ? gpuh_fb_add(set, free_max) : -1);
}

bool gpuh_vendor_vgpu_fb_room(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned type,
                              const struct gpuh_promised *p, struct gpuh_fb_room *ret)
{
        struct gpuh_vgpu_params t = { -1, -1, -1, -1, -1 };
        int64_t set = 0, used = 0, free_max = -1, gpu_fb;

        t.video_ram_mib = gpuh_vgpu_type_name_fb(gpuh_inventory_vgpu_type_name(inv, type));
        if (t.video_ram_mib <= 0)
                return gpuh_vgpu_fits(&t, 0, ret);
        for (size_t v = 0; v < g->n_vfs; v++) {
                const struct gpuh_vf *vf = &g->vfs[v];
                unsigned cur = vf->has_vendor_vgpu ? vf->vendor_vgpu.current_type : 0;
                unsigned eff = promised_type(p, &vf->dev->addr);

                if (!vf->has_vendor_vgpu)
                        continue;
                if (cur != 0)
                        set = gpuh_fb_add(set, vendor_type_fb(inv, cur, t.video_ram_mib));
                else
                        free_max = max64(free_max, list_max_fb(&vf->vendor_vgpu));
                if (eff == 0)
                        eff = cur;
                if (eff != 0)
                        used = gpuh_fb_add(used, vendor_type_fb(inv, eff, t.video_ram_mib));
        }
        gpu_fb = max64(model_fb(inv, g), free_max > 0 ? gpuh_fb_add(set, free_max) : -1);
        t.max_instances = gpu_fb >= t.video_ram_mib ? gpu_fb / t.video_ram_mib : -1;
        return gpuh_vgpu_fits(&t, used, ret);
}
