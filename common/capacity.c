/* SPDX-License-Identifier: Apache-2.0 */
/* capacity.c: what a physical GPU's framebuffer still holds, for every kind of vGPU on its VFs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capacity.h"
#include "strtable.h"
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

/* gpuh_vendor_vgpu_fb_room() with the model's framebuffer (model_fb()) given */
static bool vendor_room(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned type,
                        const struct gpuh_promised *p, int64_t fb_model, struct gpuh_fb_room *ret)
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
        gpu_fb = max64(fb_model, free_max > 0 ? gpuh_fb_add(set, free_max) : -1);
        t.max_instances = gpu_fb >= t.video_ram_mib ? gpu_fb / t.video_ram_mib : -1;
        return gpuh_vgpu_fits(&t, used, ret);
}

bool gpuh_vendor_vgpu_fb_room(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned type,
                              const struct gpuh_promised *p, struct gpuh_fb_room *ret)
{
        return vendor_room(inv, g, type, p, model_fb(inv, g), ret);
}

/* ---- how many more of each profile fit ---- */

static const char *const cap_kind_table[_GPUH_CAP_KIND_MAX] = {
        [GPUH_CAP_PASSTHROUGH] = "passthrough", [GPUH_CAP_MDEV] = "mdev", [GPUH_CAP_VF_MDEV] = "vf-mdev",
        [GPUH_CAP_VENDOR_VGPU] = "vendor-vgpu", [GPUH_CAP_VF] = "vf",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_cap_kind, enum gpuh_cap_kind, cap_kind_table, "?")

struct caps {
        struct gpuh_profile_cap *v;
        size_t n;
};

static struct gpuh_profile_cap *caps_add(struct caps *c, enum gpuh_cap_kind kind, const char *type_id, const char *name)
{
        struct gpuh_profile_cap *nv = reallocarray(c->v, c->n + 1, sizeof(*nv));

        if (!nv)
                return NULL;
        c->v = nv;
        nv = &c->v[c->n++];
        *nv = (struct gpuh_profile_cap) { .kind = kind, .name = name, .more = -1, .free_slots = -1, .fb_more = -1 };
        snprintf(nv->type_id, sizeof(nv->type_id), "%s", type_id ? type_id : "");
        return nv;
}

/* Does a promise hold PCI function @a: the function itself (or as a companion, a VF), an mdev
 * to be made on it, or a vendor type to be set on it? */
static bool promised_pci(const struct gpuh_promised *p, const struct gpuh_pci_addr *a)
{
        for (size_t i = 0; i < p->n_res; i++)
                for (size_t k = 0; k < p->res[i].n_devices; k++) {
                        const struct gpuh_alloc *d = &p->res[i].devices[k];
                        if (gpuh_alloc_holds_pci(d, a) || (d->kind == GPUH_ALLOC_MDEV && gpuh_pci_addr_cmp(&d->parent, a) == 0) ||
                            (d->kind == GPUH_ALLOC_VENDOR_VGPU && gpuh_pci_addr_cmp(&d->addr, a) == 0))
                                return true;
                }
        for (size_t k = 0; k < p->n_plan; k++) {
                const struct gpuh_alloc *d = &p->plan[k];
                if (gpuh_alloc_holds_pci(d, a) || (d->kind == GPUH_ALLOC_MDEV && gpuh_pci_addr_cmp(&d->parent, a) == 0))
                        return true;
        }
        return false;
}

static size_t promised_mdevs_on(const struct gpuh_promised *p, const struct gpuh_pci_addr *parent, const char *type_id)
{
        size_t n = 0;

        for (size_t i = 0; i < p->n_res; i++)
                for (size_t k = 0; k < p->res[i].n_devices; k++) {
                        const struct gpuh_alloc *d = &p->res[i].devices[k];
                        n += d->kind == GPUH_ALLOC_MDEV && d->mdev_new && streq(d->mdev_type, type_id) &&
                             gpuh_pci_addr_cmp(&d->parent, parent) == 0;
                }
        for (size_t k = 0; k < p->n_plan; k++) {
                const struct gpuh_alloc *d = &p->plan[k];
                n += d->kind == GPUH_ALLOC_MDEV && d->mdev_new && streq(d->mdev_type, type_id) &&
                     gpuh_pci_addr_cmp(&d->parent, parent) == 0;
        }
        return n;
}

static bool used_pci(const struct gpuh_inventory *inv, const struct gpuh_pci_addr *a)
{
        const struct gpuh_vm *vm;

        return inv->usage && gpuh_vm_usage_pci(inv->usage, a, &vm, 1) > 0;
}

static bool used_mdev(const struct gpuh_inventory *inv, const char *uuid)
{
        const struct gpuh_vm *vm;

        return inv->usage && gpuh_vm_usage_mdev(inv->usage, uuid, &vm, 1) > 0;
}

static bool quarantined_pci(const struct gpuh_inventory *inv, const struct gpuh_pci_addr *a)
{
        return gpuh_quarantine_find(inv->quarantined, inv->n_quarantined, a) != NULL;
}

/* (total - used) / need from gpuh_vgpu_fits()'s numbers; -1 when a number is unknown. */
static int64_t room_more(const struct gpuh_fb_room *r)
{
        if (r->need <= 0 || r->total < 0)
                return -1;
        return r->total > r->used ? (r->total - r->used) / r->need : 0;
}

static int64_t min_known(int64_t a, int64_t b)
{
        if (a < 0)
                return b;
        if (b < 0)
                return a;
        return a < b ? a : b;
}

/* A VF that can take a new vGPU: not promised, not quarantined, no domain on it. */
static bool vf_open(const struct gpuh_inventory *inv, const struct gpuh_vf *vf, const struct gpuh_promised *p)
{
        return !promised_pci(p, &vf->dev->addr) && !quarantined_pci(inv, &vf->dev->addr) && !used_pci(inv, &vf->dev->addr);
}

static bool has_mdev_on(const struct gpuh_gpu *g, const struct gpuh_pci_addr *parent)
{
        for (size_t i = 0; i < g->n_vgpus; i++)
                if (gpuh_pci_addr_cmp(&g->vgpus[i].mdev->parent, parent) == 0)
                        return true;
        return false;
}

static int cap_passthrough(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_promised *p,
                           struct caps *c)
{
        struct gpuh_profile_cap *r;

        if (g->blockers)
                return 0;
        if (!(r = caps_add(c, GPUH_CAP_PASSTHROUGH, NULL, "passthrough")))
                return -ENOMEM;
        r->created = 1;
        r->in_use = used_pci(inv, &g->dev->addr);
        r->free_slots = !r->in_use && !promised_pci(p, &g->dev->addr) && !quarantined_pci(inv, &g->dev->addr);
        r->more = r->free_slots;
        return 0;
}

static int cap_pf_mdev(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_promised *p,
                       struct caps *c)
{
        for (size_t t = 0; t < g->n_types; t++) {
                const struct gpuh_mdev_type *ty = &g->types[t];
                struct gpuh_profile_cap *r = caps_add(c, GPUH_CAP_MDEV, ty->type_id, ty->name ? ty->name : ty->type_id);

                if (!r)
                        return -ENOMEM;
                for (size_t i = 0; i < g->n_vgpus; i++) {
                        const struct gpuh_mdev *m = g->vgpus[i].mdev;
                        if (gpuh_pci_addr_cmp(&m->parent, &g->dev->addr) != 0 || !m->type_id || !streq(m->type_id, ty->type_id))
                                continue;
                        r->created++;
                        r->in_use += used_mdev(inv, m->uuid);
                }
                if (ty->available_instances >= 0) {
                        int64_t left = (int64_t) ty->available_instances -
                                       (int64_t) promised_mdevs_on(p, &g->dev->addr, ty->type_id);
                        r->free_slots = left > 0 ? left : 0;
                }
                if (quarantined_pci(inv, &g->dev->addr))
                        r->free_slots = 0;
                r->more = r->free_slots;
        }
        return 0;
}

static int cmp_type_ptr(const void *a, const void *b)
{
        return strverscmp((*(const struct gpuh_mdev_type *const *) a)->type_id,
                          (*(const struct gpuh_mdev_type *const *) b)->type_id);
}

static int cap_vf_mdev(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_promised *p,
                       struct caps *c)
{
        _cleanup_free_ const struct gpuh_mdev_type **seen = NULL;
        size_t n = 0;

        /* every type any VF offers, once (one GPU model's VFs share them) */
        for (size_t v = 0; v < g->n_vfs; v++)
                for (size_t i = 0; i < g->vfs[v].n_types; i++) {
                        const struct gpuh_mdev_type *t = &g->vfs[v].types[i], **ns;
                        bool dup = false;

                        for (size_t k = 0; k < n && !dup; k++)
                                dup = streq(seen[k]->type_id, t->type_id);
                        if (dup)
                                continue;
                        if (!(ns = reallocarray(seen, n + 1, sizeof(*ns))))
                                return -ENOMEM;
                        seen = ns;
                        seen[n++] = t;
                }
        if (n > 1)
                qsort(seen, n, sizeof(*seen), cmp_type_ptr);
        for (size_t k = 0; k < n; k++) {
                const struct gpuh_mdev_type *ty = seen[k];
                struct gpuh_profile_cap *r = caps_add(c, GPUH_CAP_VF_MDEV, ty->type_id, ty->name ? ty->name : ty->type_id);
                struct gpuh_fb_room room;

                if (!r)
                        return -ENOMEM;
                r->free_slots = 0;
                for (size_t i = 0; i < g->n_vgpus; i++) {
                        const struct gpuh_mdev *m = g->vgpus[i].mdev;
                        if (gpuh_pci_addr_cmp(&m->parent, &g->dev->addr) == 0 || !m->type_id || !streq(m->type_id, ty->type_id))
                                continue;
                        r->created++;
                        r->in_use += used_mdev(inv, m->uuid);
                }
                for (size_t v = 0; v < g->n_vfs; v++) {
                        const struct gpuh_vf *vf = &g->vfs[v];
                        if (!vf_open(inv, vf, p) || has_mdev_on(g, &vf->dev->addr))
                                continue;
                        for (size_t i = 0; i < vf->n_types; i++)
                                if (streq(vf->types[i].type_id, ty->type_id) && vf->types[i].available_instances > 0) {
                                        r->free_slots++;
                                        break;
                                }
                }
                gpuh_mdev_fb_room(g, ty, p, &room);
                r->fb_more = room_more(&room);
                r->more = min_known(r->free_slots, r->fb_more);
        }
        return 0;
}

static bool lists_type(const struct gpuh_vendor_vgpu *v, unsigned id)
{
        for (size_t k = 0; k < v->n_creatable; k++)
                if (v->creatable[k].id == id)
                        return true;
        return false;
}

static int cmp_uint(const void *a, const void *b)
{
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;

        return x < y ? -1 : x > y;
}

static int cap_vendor(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_promised *p,
                      struct caps *c)
{
        _cleanup_free_ unsigned *ids = NULL;
        size_t n = 0;
        int64_t fb_model = -1;
        bool any = false;

        for (size_t v = 0; v < g->n_vfs; v++) {
                const struct gpuh_vendor_vgpu *vv = &g->vfs[v].vendor_vgpu;

                if (!g->vfs[v].has_vendor_vgpu)
                        continue;
                any = true;
                for (size_t k = 0; k <= vv->n_creatable; k++) {
                        unsigned id = k < vv->n_creatable ? vv->creatable[k].id : vv->current_type, *ns;
                        bool dup = id == 0;

                        for (size_t i = 0; i < n && !dup; i++)
                                dup = ids[i] == id;
                        if (dup)
                                continue;
                        if (!(ns = reallocarray(ids, n + 1, sizeof(*ns))))
                                return -ENOMEM;
                        ids = ns;
                        ids[n++] = id;
                }
        }
        if (!any)
                return 0;
        if (n > 1)
                qsort(ids, n, sizeof(*ids), cmp_uint);
        fb_model = model_fb(inv, g);
        for (size_t k = 0; k < n; k++) {
                const char *name = gpuh_inventory_vgpu_type_name(inv, ids[k]);
                struct gpuh_profile_cap *r;
                struct gpuh_fb_room room;
                char id[16];

                snprintf(id, sizeof(id), "%u", ids[k]);
                if (!(r = caps_add(c, GPUH_CAP_VENDOR_VGPU, id, name)))
                        return -ENOMEM;
                r->free_slots = 0;
                for (size_t v = 0; v < g->n_vfs; v++) {
                        const struct gpuh_vf *vf = &g->vfs[v];

                        if (!vf->has_vendor_vgpu)
                                continue;
                        if (vf->vendor_vgpu.current_type == ids[k]) {
                                r->created++;
                                r->in_use += used_pci(inv, &vf->dev->addr);
                        } else if (vf->vendor_vgpu.current_type == 0 && vf_open(inv, vf, p) &&
                                   lists_type(&vf->vendor_vgpu, ids[k]))
                                r->free_slots++;
                }
                vendor_room(inv, g, ids[k], p, fb_model, &room);
                r->fb_more = room_more(&room);
                r->more = min_known(r->free_slots, r->fb_more);
        }
        return 0;
}

static int cap_plain_vf(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_promised *p,
                        struct caps *c)
{
        struct gpuh_profile_cap *r = NULL;

        for (size_t v = 0; v < g->n_vfs; v++) {
                const struct gpuh_vf *vf = &g->vfs[v];

                if (vf->n_types > 0 || vf->has_vendor_vgpu)
                        continue;
                if (!r) {
                        if (!(r = caps_add(c, GPUH_CAP_VF, NULL, vf->device_name ? vf->device_name : vf->dev->name)))
                                return -ENOMEM;
                        r->free_slots = 0;
                }
                r->created++;
                r->in_use += used_pci(inv, &vf->dev->addr);
                r->free_slots += vf_open(inv, vf, p);
        }
        if (r)
                r->more = r->free_slots;
        return 0;
}

int gpuh_gpu_capacity(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_promised *p,
                      struct gpuh_profile_cap **ret, size_t *ret_n)
{
        static const struct gpuh_promised none = { 0 };
        struct caps c = { 0 };
        int r;

        if (!p)
                p = &none;
        r = cap_passthrough(inv, g, p, &c);
        if (r == 0)
                r = cap_pf_mdev(inv, g, p, &c);
        if (r == 0)
                r = cap_vf_mdev(inv, g, p, &c);
        if (r == 0)
                r = cap_vendor(inv, g, p, &c);
        if (r == 0)
                r = cap_plain_vf(inv, g, p, &c);
        if (r < 0) {
                free(c.v);
                return r;
        }
        for (size_t i = 0; i < c.n; i++)
                if (!c.v[i].name)
                        c.v[i].name = c.v[i].type_id;   /* an unnamed vendor type: its id */
        *ret = c.v;
        *ret_n = c.n;
        return (int) c.n;
}
