/* SPDX-License-Identifier: Apache-2.0 */
/* select.c: free devices, candidates and the deterministic choice among them. */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "alloc_codec.h"
#include "capacity.h"
#include "log.h"
#include "occupancy.h"
#include "select.h"
#include "sysfs.h"

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

struct ctx {
        const struct gpuh_select_in *in;
        struct gpuh_alloc *plan;        /* chosen so far */
        size_t n_plan;
        size_t n_new_mdevs;             /* numbering of derived mdev UUIDs */
        struct full_gpu full[4];        /* of the last candidates() */
        size_t n_full;                  /* may exceed ARRAY_SIZE(full) */
        struct mode_gpu mode[4];        /* of the last candidates() */
        size_t n_mode;                  /* may exceed ARRAY_SIZE(mode) */
};

/* ---- who holds what ---- */

/* The claims, as the occupancy model sees them, with the plan so far (common/occupancy.h). */
static struct gpuh_occupancy claims(const struct ctx *c)
{
        return (struct gpuh_occupancy) {
                .self = c->in->domain, .now = (int64_t) time(NULL), .res = c->in->others, .n_res = c->in->n_others,
                .usage = c->in->inv->usage, .plan = c->plan, .n_plan = c->n_plan,
        };
}

/* A domain other than ours that uses PCI function @a (or mdev @uuid); NULL when none. */
static const char *other_user(const struct ctx *c, const struct gpuh_pci_addr *a, const char *uuid)
{
        struct gpuh_occupancy o = claims(c);

        o.res = NULL;
        o.n_res = 0;
        o.plan = NULL;
        o.n_plan = 0;
        return uuid ? gpuh_occupancy_holder_mdev(&o, uuid) : gpuh_occupancy_holder_pci(&o, a);
}

static const char *holder_pci(const struct ctx *c, const struct gpuh_pci_addr *a)
{
        struct gpuh_occupancy o = claims(c);

        return gpuh_occupancy_holder_pci(&o, a);
}

static const char *holder_mdev(const struct ctx *c, const char *uuid)
{
        struct gpuh_occupancy o = claims(c);

        return gpuh_occupancy_holder_mdev(&o, uuid);
}

/* mdevs to be created on @parent by reservations and the plan (not in sysfs yet). They count
 * against every type's available_instances there: conservative for GPUs that allow one type
 * at a time, exact for SR-IOV VFs that carry one vGPU. */
static unsigned pending_mdevs(const struct ctx *c, const struct gpuh_pci_addr *parent)
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
static unsigned gpu_load(const struct ctx *c, const struct gpuh_gpu *g)
{
        unsigned n = 0;

        for (size_t i = 0; i < g->n_vgpus; i++)
                n += other_user(c, NULL, g->vgpus[i].mdev->uuid) != NULL;
        for (size_t v = 0; v < g->n_vfs; v++)
                n += holder_pci(c, &g->vfs[v].dev->addr) != NULL;
        for (size_t i = 0; i < c->in->n_others; i++)
                for (size_t k = 0; k < c->in->others[i].n_devices; k++)
                        n += c->in->others[i].devices[k].kind == GPUH_ALLOC_MDEV && on_gpu(g, &c->in->others[i].devices[k].parent);
        for (size_t k = 0; k < c->n_plan; k++)
                n += c->plan[k].kind == GPUH_ALLOC_MDEV && on_gpu(g, &c->plan[k].parent);
        return n;
}

static struct gpuh_promised promised(const struct ctx *c)
{
        return (struct gpuh_promised) { .res = c->in->others, .n_res = c->in->n_others, .plan = c->plan,
                                        .n_plan = c->n_plan };
}

/* Note GPU @g as out of framebuffer for the request being answered (once). */
static void note_full(struct ctx *c, const struct gpuh_gpu *g, const struct gpuh_fb_room *room)
{
        for (size_t i = 0; i < c->n_full && i < ARRAY_SIZE(c->full); i++)
                if (c->full[i].gpu == g)
                        return;
        if (c->n_full < ARRAY_SIZE(c->full))
                c->full[c->n_full] = (struct full_gpu) { g, *room };
        c->n_full++;
}

/* "; framebuffer full on GPU 0000:26:00.0 (49152 of 49152 MiB in use or promised, it holds
 * 1 x 49152 MiB), ..." for the error line, or "". */
static const char *full_list(const struct ctx *c, char *buf, size_t size)
{
        size_t len = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < c->n_full && i < ARRAY_SIZE(c->full) && len < size; i++) {
                const struct gpuh_fb_room *r = &c->full[i].room;
                char a[GPUH_PCI_ADDR_MAX];

                len += (size_t) snprintf(buf + len, size - len,
                                         "%s GPU %s (%lld of %lld MiB in use or promised, it holds %lld x %lld MiB)",
                                         i ? "," : "; framebuffer full on", gpuh_pci_addr_format(&c->full[i].gpu->dev->addr, a),
                                         (long long) r->used, (long long) r->total, (long long) r->max_instances,
                                         (long long) r->need);
        }
        if (c->n_full > ARRAY_SIZE(c->full) && len < size)
                snprintf(buf + len, size - len, " and %zu more", c->n_full - ARRAY_SIZE(c->full));
        return buf;
}

/* ---- NVIDIA's time-sliced vGPU modes ---- */

/* Framebuffer (MiB) of vendor vGPU type @id on @g: NVML's word, else its name's; -1 unknown. */
static int64_t vtype_fb(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned id)
{
        const struct gpuh_nvml_gpu *n = gpuh_nvml_info_gpu(inv->nvml, &g->dev->addr);
        const struct gpuh_nvml_type *t = n && !n->error ? gpuh_nvml_gpu_type(n, id) : NULL;

        if (t && t->fb_mib > 0)
                return t->fb_mib;
        return gpuh_vgpu_type_name_fb(gpuh_inventory_vgpu_type_name(inv, id));
}

/* Is vendor vGPU type @id MIG-backed (a GI of its own, sizes mix freely)? NVML's GI profile,
 * else NVIDIA's naming: MIG-backed names put the compute slices before the size
 * ("NVIDIA H100-1-10C", "A100-1-5CME", "DC-1-24Q"; NVIDIA vGPU user guide, "MIG-backed vGPU
 * types"), time-sliced ones do not ("NVIDIA L40S-12Q"). */
static bool vtype_is_mig(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned id)
{
        const struct gpuh_nvml_gpu *n = gpuh_nvml_info_gpu(inv->nvml, &g->dev->addr);
        const struct gpuh_nvml_type *t = n && !n->error ? gpuh_nvml_gpu_type(n, id) : NULL;
        const char *name = gpuh_inventory_vgpu_type_name(inv, id), *dash, *p;

        if (t)
                return t->gi_profile_id >= 0;
        if (!name || !(dash = strrchr(name, '-')))
                return false;
        /* "...-<slices>-<size><series>" */
        for (p = dash; p > name && isdigit((unsigned char) p[-1]); p--)
                ;
        return p < dash && p > name && p[-1] == '-';
}

/* A time-sliced vendor vGPU type on @g other than @want's size, set on a VF or promised to one
 * (by another domain's reservation or this plan); 0 when none. MIG-backed vGPUs sit on GIs of
 * their own and do not count. */
static unsigned other_size_on(const struct ctx *c, const struct gpuh_gpu *g, int64_t want)
{
        struct gpuh_inventory *inv = c->in->inv;

        for (size_t v = 0; v < g->n_vfs; v++) {
                unsigned t = g->vfs[v].has_vendor_vgpu ? g->vfs[v].vendor_vgpu.current_type : 0;
                int64_t fb = t && g->vfs[v].vendor_vgpu.gpu_instance_id < 0 && !vtype_is_mig(inv, g, t) ?
                             vtype_fb(inv, g, t) : -1;
                if (fb > 0 && fb != want)
                        return t;
        }
        for (size_t i = 0; i <= c->in->n_others; i++) {
                const struct gpuh_alloc *d = i < c->in->n_others ? c->in->others[i].devices : c->plan;
                size_t n = i < c->in->n_others ? c->in->others[i].n_devices : c->n_plan;

                for (size_t k = 0; k < n; k++) {
                        int64_t fb;
                        if (d[k].kind != GPUH_ALLOC_VENDOR_VGPU || gpuh_pci_addr_cmp(&d[k].parent, &g->dev->addr) != 0)
                                continue;
                        fb = vtype_is_mig(inv, g, d[k].vgpu_type) ? -1 : vtype_fb(inv, g, d[k].vgpu_type);
                        if (fb > 0 && fb != want)
                                return d[k].vgpu_type;
                }
        }
        return 0;
}

/* GPU instances of @g still free for one more MIG-backed vGPU of @type: NVML's count of GIs of
 * its profile no vGPU sits on (gpuh_inventory_vgpu_more()), less the VFs of @g promised a type
 * of that profile and not set yet. Without NVML a VF listing the type says only that one GI is
 * free: one promise at a time per type and GPU, until it is set. */
static int64_t mig_room(const struct ctx *c, const struct gpuh_gpu *g, unsigned type)
{
        struct gpuh_inventory *inv = c->in->inv;
        const struct gpuh_nvml_gpu *n = gpuh_nvml_info_gpu(inv->nvml, &g->dev->addr);
        const struct gpuh_nvml_type *t = n && !n->error ? gpuh_nvml_gpu_type(n, type) : NULL;
        int64_t room = t ? gpuh_inventory_vgpu_more(inv, g, n, t) : 1;

        for (size_t i = 0; i <= c->in->n_others; i++) {
                const struct gpuh_alloc *d = i < c->in->n_others ? c->in->others[i].devices : c->plan;
                size_t nd = i < c->in->n_others ? c->in->others[i].n_devices : c->n_plan;

                for (size_t k = 0; k < nd; k++) {
                        const struct gpuh_nvml_type *o;
                        bool same;

                        if (d[k].kind != GPUH_ALLOC_VENDOR_VGPU || gpuh_pci_addr_cmp(&d[k].parent, &g->dev->addr) != 0)
                                continue;
                        o = t ? gpuh_nvml_gpu_type(n, d[k].vgpu_type) : NULL;
                        same = t ? o && o->gi_profile_id == t->gi_profile_id : d[k].vgpu_type == type;
                        for (size_t v = 0; same && v < g->n_vfs; v++)
                                if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, &d[k].addr) == 0 &&
                                    g->vfs[v].vendor_vgpu.current_type == d[k].vgpu_type)
                                        same = false;   /* set already: NVML counts its GI */
                        room -= same;
                }
        }
        return room;
}

/* Does a GPU without NVML's type list carry a vendor vGPU in equal-size mode (so that its
 * VFs list only that size)? */
static bool equal_size_busy(const struct gpuh_inventory *inv)
{
        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpuh_gpu *g = &inv->gpus[i];
                const struct gpuh_nvml_gpu *n = gpuh_nvml_info_gpu(inv->nvml, &g->dev->addr);

                if ((n && !n->error && n->n_types > 0) ||
                    gpuh_inventory_vgpu_mode(inv, g, NULL) != GPUH_VGPU_MODE_EQUAL)
                        continue;
                for (size_t v = 0; v < g->n_vfs; v++)
                        if (g->vfs[v].has_vendor_vgpu && g->vfs[v].vendor_vgpu.current_type)
                                return true;
        }
        return false;
}

/* Note GPU @g as refusing the request's size in equal-size mode (once). */
static void note_mode(struct ctx *c, const struct gpuh_gpu *g, unsigned type, bool assumed)
{
        for (size_t i = 0; i < c->n_mode && i < ARRAY_SIZE(c->mode); i++)
                if (c->mode[i].gpu == g)
                        return;
        if (c->n_mode < ARRAY_SIZE(c->mode))
                c->mode[c->n_mode] = (struct mode_gpu) { g, type, assumed };
        c->n_mode++;
}

/* "; equal-size vGPU mode (the driver's default, NVML did not say) keeps one size per GPU:
 * 0000:26:00.0 has NVIDIA L40S-6Q, ... (set or promised)" or "". */
static const char *mode_list(const struct ctx *c, char *buf, size_t size)
{
        size_t len = 0;
        bool assumed = false;

        buf[0] = '\0';
        if (c->n_mode == 0)
                return buf;
        for (size_t i = 0; i < c->n_mode && i < ARRAY_SIZE(c->mode); i++)
                assumed |= c->mode[i].assumed;
        len = (size_t) snprintf(buf, size, "; equal-size vGPU mode%s keeps one size per GPU:",
                                assumed ? " (the driver's default, NVML did not say)" : "");
        for (size_t i = 0; i < c->n_mode && i < ARRAY_SIZE(c->mode) && len < size; i++) {
                const char *name = gpuh_inventory_vgpu_type_name(c->in->inv, c->mode[i].type);
                char a[GPUH_PCI_ADDR_MAX], t[32];

                snprintf(t, sizeof(t), "type %u", c->mode[i].type);
                len += (size_t) snprintf(buf + len, size - len, "%s %s has %s", i ? "," : "",
                                         gpuh_pci_addr_format(&c->mode[i].gpu->dev->addr, a), name ? name : t);
        }
        if (c->n_mode > ARRAY_SIZE(c->mode) && len < size)
                len += (size_t) snprintf(buf + len, size - len, " and %zu more", c->n_mode - ARRAY_SIZE(c->mode));
        if (len < size)
                snprintf(buf + len, size - len, " (set or promised)");
        return buf;
}

/* "; NVIDIA L40S-12Q is used up: 0000:af:00.4 by i-2-10-VM, ..." for a vendor vGPU type
 * nothing more of fits: who holds the VFs set to it or promised it. */
static const char *users_of_type(const struct ctx *c, unsigned type, const char *profile, char *buf, size_t size)
{
        struct gpuh_inventory *inv = c->in->inv;
        char list[400];
        size_t len = 0, n = 0;

        buf[0] = list[0] = '\0';
        if (type == 0)
                return buf;
        for (size_t g = 0; g < inv->n_gpus; g++)
                for (size_t v = 0; v < inv->gpus[g].n_vfs && len < sizeof(list); v++) {
                        const struct gpuh_vf *vf = &inv->gpus[g].vfs[v];
                        const char *who;
                        char a[GPUH_PCI_ADDR_MAX];
                        bool promised = false;

                        for (size_t i = 0; i < c->in->n_others && !promised; i++)
                                for (size_t k = 0; k < c->in->others[i].n_devices && !promised; k++)
                                        promised = c->in->others[i].devices[k].kind == GPUH_ALLOC_VENDOR_VGPU &&
                                                   c->in->others[i].devices[k].vgpu_type == type &&
                                                   gpuh_pci_addr_cmp(&c->in->others[i].devices[k].addr, &vf->dev->addr) == 0;
                        for (size_t k = 0; k < c->n_plan && !promised; k++)
                                promised = c->plan[k].kind == GPUH_ALLOC_VENDOR_VGPU && c->plan[k].vgpu_type == type &&
                                           gpuh_pci_addr_cmp(&c->plan[k].addr, &vf->dev->addr) == 0;
                        if (!vf->has_vendor_vgpu || (vf->vendor_vgpu.current_type != type && !promised) ||
                            !(who = holder_pci(c, &vf->dev->addr)))
                                continue;
                        if (n++ < 8)
                                len += (size_t) snprintf(list + len, sizeof(list) - len, "%s %s by %s", n == 1 ? "" : ",",
                                                         gpuh_pci_addr_format(&vf->dev->addr, a), who);
                }
        if (n > 8 && len < sizeof(list))
                snprintf(list + len, sizeof(list) - len, " and %zu more", n - 8);
        if (n > 0)
                snprintf(buf, size, "; %s is used up:%s", profile, list);
        return buf;
}

/* Anything on @g's VFs or mdevs held by anyone (then the whole GPU is not free). */
static bool gpu_parts_held(const struct ctx *c, const struct gpuh_gpu *g)
{
        for (size_t v = 0; v < g->n_vfs; v++)
                if (holder_pci(c, &g->vfs[v].dev->addr))
                        return true;
        return gpu_load(c, g) > 0;
}

/* ---- CloudStack's own hostdevs ---- */

static bool has_type(const struct gpuh_vendor_vgpu *v, unsigned id);

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
 * A CloudStack mdev hostdev naming a layout slot not created yet (layout.h): an mdev to create
 * with that UUID on the slot's parent, if it still fits there: the type's available instances
 * less those promised (reservations, this plan), and on SR-IOV VFs the GPU's framebuffer
 * (capacity.h) and a VF nobody else holds. Returns 0; -ENOSPC (the slot's capacity is gone);
 * -EBUSY.
 */
static int cloudstack_mdev_slot(struct ctx *c, const struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *slot,
                                struct gpuh_alloc *a, char **reterr)
{
        const struct gpuh_layout_resolved *rp = &gl->profiles[slot->profile];
        const struct gpuh_gpu *g = gl->gpu;
        const struct gpuh_mdev_type *t = NULL;
        const struct gpuh_promised pr = promised(c);
        struct gpuh_fb_room room;
        char pn[GPUH_PCI_ADDR_MAX], fb[160] = "";
        const char *holder;

        gpuh_pci_addr_format(&slot->parent, pn);
        if (gl->kind == GPUH_LAYOUT_PF_MDEV) {
                for (size_t i = 0; i < g->n_types && !t; i++)
                        t = streq(g->types[i].type_id, rp->type_id) ? &g->types[i] : NULL;
        } else {
                if ((holder = holder_pci(c, &slot->parent)))
                        return gpuh_error(reterr, -EBUSY, "mdev %s: its VF %s is in use by %s", slot->uuid, pn, holder);
                for (size_t v = 0; v < g->n_vfs && !t; v++)
                        if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, &slot->parent) == 0)
                                for (size_t i = 0; i < g->vfs[v].n_types && !t; i++)
                                        t = streq(g->vfs[v].types[i].type_id, rp->type_id) ? &g->vfs[v].types[i] : NULL;
        }
        if (!t)
                return gpuh_error(reterr, -ENOSPC, "mdev %s (layout slot %u of '%s'): %s no longer offers type %s",
                                  slot->uuid, slot->number, rp->profile, pn, rp->type_id);
        if (gl->kind == GPUH_LAYOUT_VF_MDEV && !gpuh_mdev_fb_room(g, t, &pr, &room))
                snprintf(fb, sizeof(fb), ", framebuffer full (%lld of %lld MiB in use or promised)", (long long) room.used,
                         (long long) room.total);
        if (fb[0] || t->available_instances <= (int) pending_mdevs(c, &slot->parent))
                return gpuh_error(reterr, -ENOSPC, "mdev %s (layout slot %u of '%s' on %s): no room left for type %s "
                                  "(%d available, %u promised%s)", slot->uuid, slot->number, rp->profile, pn, rp->type_id,
                                  t->available_instances, pending_mdevs(c, &slot->parent), fb);
        a->kind = GPUH_ALLOC_MDEV;
        a->parent = slot->parent;
        a->mdev_new = true;
        memcpy(a->uuid, slot->uuid, sizeof(a->uuid));
        snprintf(a->mdev_type, sizeof(a->mdev_type), "%s", rp->type_id);
        return 0;
}

/* A CloudStack hostdev naming a layout's vendor vGPU VF whose type is not set yet: the type to
 * set, if it still fits (creatable on that VF, and the GPU's framebuffer with what is promised).
 * Returns 0; -ENOSPC. */
static int cloudstack_vendor_slot(struct ctx *c, const struct gpuh_gpu *gpu, const struct gpuh_vf *vf,
                                  const struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *slot,
                                  struct gpuh_alloc *a, char **reterr)
{
        const struct gpuh_layout_resolved *rp = &gl->profiles[slot->profile];
        const struct gpuh_promised pr = promised(c);
        struct gpuh_fb_room room;
        char an[GPUH_PCI_ADDR_MAX];

        gpuh_pci_addr_format(&vf->dev->addr, an);
        if (!gpuh_vendor_vgpu_fb_room(c->in->inv, gpu, rp->vgpu_type, &pr, &room))
                return gpuh_error(reterr, -ENOSPC, "VF %s (layout slot %u of '%s'): framebuffer full (%lld of %lld MiB "
                                  "in use or promised)", an, slot->number, rp->profile, (long long) room.used,
                                  (long long) room.total);
        if (!has_type(&vf->vendor_vgpu, rp->vgpu_type))
                return gpuh_error(reterr, -ENOSPC, "VF %s (layout slot %u of '%s'): vGPU type %u is not creatable on it now",
                                  an, slot->number, rp->profile, rp->vgpu_type);
        a->kind = GPUH_ALLOC_VENDOR_VGPU;
        a->vgpu_type = rp->vgpu_type;
        return 0;
}

static void companions_of(const struct gpuh_gpu *g, struct gpuh_alloc *a)
{
        for (size_t m = 0; m < g->n_members && a->n_companions < GPUH_ALLOC_MAX_COMPANIONS; m++)
                if (g->members[m].role == GPUH_ROLE_COMPANION && !g->members[m].dev->is_vf)
                        a->companions[a->n_companions++] = g->members[m].dev->addr;
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

static int push(struct ctx *c, const struct gpuh_alloc *a)
{
        struct gpuh_alloc *np = reallocarray(c->plan, c->n_plan + 1, sizeof(*np));

        if (!np)
                return -ENOMEM;
        c->plan = np;
        c->plan[c->n_plan++] = *a;
        return 0;
}

int gpuh_select_cloudstack(const struct gpuh_select_in *in, struct gpuh_alloc **ret, size_t *ret_n, char **reterr)
{
        struct ctx c = { .in = in };
        struct gpuh_inventory *inv = in->inv;
        char an[GPUH_PCI_ADDR_MAX], why[512];
        int r = 0;

        for (size_t i = 0; in->dom && i < in->dom->n_hostdevs; i++) {
                const struct gpuh_dom_hostdev *h = &in->dom->hostdevs[i];
                struct gpuh_alloc a = { .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
                const char *holder;

                if (h->is_mdev) {
                        const struct gpuh_mdev *m = NULL;
                        for (size_t k = 0; k < inv->n_mdevs; k++)
                                if (streq(inv->mdevs[k].uuid, h->uuid))
                                        m = &inv->mdevs[k];
                        if ((holder = holder_mdev(&c, h->uuid))) {
                                r = gpuh_error(reterr, -EBUSY, "mdev %s is in use by %s", h->uuid, holder);
                                goto out;
                        }
                        if (!m) {
                                /* a layout's slot not created yet (docs/layouts.md) */
                                const struct gpuh_gpu_layout *gl = NULL;
                                const struct gpuh_layout_slot *slot = gpuh_layouts_find_mdev(inv->layouts, h->uuid, &gl);

                                if (!slot) {
                                        r = gpuh_error(reterr, -ENODEV, "mdev %s does not exist on this host, and its type is "
                                                       "not known to create it%s", h->uuid,
                                                       layout_note(inv, NULL, why, sizeof(why)));
                                        goto out;
                                }
                                if ((r = cloudstack_mdev_slot(&c, gl, slot, &a, reterr)) < 0 || (r = push(&c, &a)) < 0)
                                        goto out;
                                continue;
                        }
                        a.kind = GPUH_ALLOC_MDEV;
                        a.parent = m->parent;
                        memcpy(a.uuid, m->uuid, sizeof(a.uuid));
                        snprintf(a.mdev_type, sizeof(a.mdev_type), "%s", m->type_id ? m->type_id : "");
                } else {
                        const struct gpuh_gpu *gpu = NULL;
                        const struct gpuh_vf *vf = NULL;

                        for (size_t g = 0; g < inv->n_gpus && !gpu; g++) {
                                if (gpuh_pci_addr_cmp(&inv->gpus[g].dev->addr, &h->addr) == 0)
                                        gpu = &inv->gpus[g];
                                for (size_t v = 0; v < inv->gpus[g].n_vfs && !gpu; v++)
                                        if (gpuh_pci_addr_cmp(&inv->gpus[g].vfs[v].dev->addr, &h->addr) == 0) {
                                                gpu = &inv->gpus[g];
                                                vf = &inv->gpus[g].vfs[v];
                                        }
                        }
                        if (!gpu)
                                continue;       /* not a GPU: not ours to judge */
                        gpuh_pci_addr_format(&h->addr, an);
                        if ((holder = holder_pci(&c, &h->addr))) {
                                r = gpuh_error(reterr, -EBUSY, "%s is in use by %s", an, holder);
                                goto out;
                        }
                        a.addr = h->addr;
                        if (!vf) {
                                if (gpu->blockers) {
                                        r = gpuh_error(reterr, -ENODEV, "GPU %s cannot be passed through whole (%s)", an,
                                                 blocker_list(gpu->blockers, why, sizeof(why)));
                                        goto out;
                                }
                                a.kind = GPUH_ALLOC_PCI;
                                companions_of(gpu, &a);
                        } else {
                                if ((holder = holder_pci(&c, &gpu->dev->addr))) {
                                        r = gpuh_error(reterr, -EBUSY, "%s: its GPU is in use by %s", an, holder);
                                        goto out;
                                }
                                a.parent = gpu->dev->addr;
                                if (vf->has_vendor_vgpu && vf->vendor_vgpu.current_type == 0) {
                                        /* a layout's VF whose type is set at prepare (docs/layouts.md) */
                                        const struct gpuh_gpu_layout *gl = NULL;
                                        const struct gpuh_layout_slot *slot = gpuh_layouts_find_vf(inv->layouts, &h->addr, &gl);

                                        if (!slot) {
                                                r = gpuh_error(reterr, -ENODEV, "vendor vGPU VF %s has no vGPU type set, and no "
                                                               "layout gives it one%s", an,
                                                               layout_note(inv, gpu, why, sizeof(why)));
                                                goto out;
                                        }
                                        if ((r = cloudstack_vendor_slot(&c, gpu, vf, gl, slot, &a, reterr)) < 0)
                                                goto out;
                                } else if (vf->has_vendor_vgpu) {
                                        a.kind = GPUH_ALLOC_VENDOR_VGPU;
                                        a.vgpu_type = vf->vendor_vgpu.current_type;
                                } else if (vf->n_types > 0) {
                                        r = gpuh_error(reterr, -ENODEV, "VF %s is an mdev parent, not a device to pass through", an);
                                        goto out;
                                } else
                                        a.kind = GPUH_ALLOC_VF;
                        }
                }
                if ((r = push(&c, &a)) < 0)
                        goto out;
        }
        *ret = c.plan;
        *ret_n = c.n_plan;
        return (int) c.n_plan;
out:
        free(c.plan);
        return r;
}

/* ---- requests ---- */

struct cand {
        struct gpuh_alloc a;
        int node;
        int rank_reuse;         /* 0: an existing mdev or a VF with the type set; 1: to create/set */
        unsigned load;
        const struct gpuh_gpu *gpu;
};

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

/* A vendor vGPU type named @profile (or its number): its id, 0 when unknown. */
static unsigned vgpu_type_id(const struct gpuh_inventory *inv, const char *profile)
{
        char *end;
        unsigned long id = strtoul(profile, &end, 10);

        if (isdigit((unsigned char) profile[0]) && !*end && id > 0 && id <= 0xffffffffUL)
                return (unsigned) id;
        for (size_t g = 0; g < inv->n_gpus; g++)
                for (size_t v = 0; v < inv->gpus[g].n_vfs; v++) {
                        const struct gpuh_vf *vf = &inv->gpus[g].vfs[v];
                        for (size_t k = 0; k < vf->vendor_vgpu.n_creatable; k++)
                                if (streq(vf->vendor_vgpu.creatable[k].name, profile))
                                        return vf->vendor_vgpu.creatable[k].id;
                        if (vf->current_type_name && streq(vf->current_type_name, profile))
                                return vf->vendor_vgpu.current_type;
                }
        /* NVML names every type a GPU supports, whatever the lists show now */
        for (size_t g = 0; inv->nvml && g < inv->nvml->n_gpus; g++)
                for (size_t k = 0; k < inv->nvml->gpus[g].n_types; k++)
                        if (streq(inv->nvml->gpus[g].types[k].name, profile))
                                return inv->nvml->gpus[g].types[k].id;
        return 0;
}

static bool has_type(const struct gpuh_vendor_vgpu *v, unsigned id)
{
        for (size_t k = 0; k < v->n_creatable; k++)
                if (v->creatable[k].id == id)
                        return true;
        return false;
}

static int add_cand(struct cand **v, size_t *n, const struct cand *c)
{
        struct cand *nv = reallocarray(*v, *n + 1, sizeof(*nv));

        if (!nv)
                return -ENOMEM;
        *v = nv;
        (*v)[(*n)++] = *c;
        return 0;
}

/* The candidates of one request, as candidates() gathers them GPU by GPU. */
struct gather {
        struct ctx *c;
        const struct gpuh_request *r;
        struct gpuh_promised prom;      /* reservations and plan so far: framebuffer promised */
        unsigned vtype;                 /* GPUH_REQ_VENDOR_VGPU: the type asked for */
        struct cand *v;
        size_t n;
};

/* Passthrough: @g whole with its companions, when it matches and nothing of it is held. */
static int cand_passthrough(struct gather *gt, const struct gpuh_gpu *g, bool gpu_free, struct cand *cd)
{
        bool ok = g->blockers == 0 && gpu_free && matches_gpu(gt->r, g) && !gpu_parts_held(gt->c, g);

        for (size_t m = 0; ok && m < g->n_members; m++)
                if (g->members[m].role == GPUH_ROLE_COMPANION && holder_pci(gt->c, &g->members[m].dev->addr))
                        ok = false;
        if (!ok)
                return 0;
        cd->a.kind = GPUH_ALLOC_PCI;
        cd->a.addr = g->dev->addr;
        companions_of(g, &cd->a);
        return add_cand(&gt->v, &gt->n, cd);
}

/* Plain SR-IOV VFs of a free @g (no mdev types, no vendor vGPU), free and matching. */
static int cand_vfs(struct gather *gt, const struct gpuh_gpu *g, bool gpu_free, struct cand *cd)
{
        int k = 0;

        for (size_t vi = 0; gpu_free && vi < g->n_vfs && k >= 0; vi++) {
                const struct gpuh_vf *vf = &g->vfs[vi];
                if (vf->n_types > 0 || vf->has_vendor_vgpu || holder_pci(gt->c, &vf->dev->addr) ||
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
static int cand_mdevs_existing(struct gather *gt, const struct gpuh_gpu *g, struct cand *cd)
{
        int k = 0;

        for (size_t i = 0; i < g->n_vgpus && k >= 0; i++) {
                const struct gpuh_vgpu_instance *vg = &g->vgpus[i];
                if (!vg->type || !type_matches(vg->type, gt->r->profile) || holder_mdev(gt->c, vg->mdev->uuid) ||
                    (gpuh_pci_addr_cmp(&vg->mdev->parent, &g->dev->addr) != 0 &&
                     holder_pci(gt->c, &vg->mdev->parent)))
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
static int cand_mdevs_new(struct gather *gt, const struct gpuh_gpu *g, struct cand *cd)
{
        int k = 0;

        for (size_t p = 0; p <= g->n_vfs && k >= 0; p++) {
                const struct gpuh_mdev_type *types = p == 0 ? g->types : g->vfs[p - 1].types;
                size_t nt = p == 0 ? g->n_types : g->vfs[p - 1].n_types;
                const struct gpuh_pci_addr *pa = p == 0 ? &g->dev->addr : &g->vfs[p - 1].dev->addr;

                if (p > 0 && holder_pci(gt->c, pa))
                        continue;
                for (size_t t = 0; t < nt && k >= 0; t++) {
                        struct gpuh_fb_room room;

                        if (!type_matches(&types[t], gt->r->profile) || types[t].available_instances <= 0 ||
                            (unsigned) types[t].available_instances <= pending_mdevs(gt->c, pa))
                                continue;
                        if (p > 0 && !gpuh_mdev_fb_room(g, &types[t], &gt->prom, &room)) {
                                note_full(gt->c, g, &room);
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
static int cand_mdevs(struct gather *gt, const struct gpuh_gpu *g, bool gpu_free, struct cand *cd)
{
        int k;

        if (!gpu_free || !matches_gpu(gt->r, g))
                return 0;
        cd->load = gpu_load(gt->c, g);
        k = cand_mdevs_existing(gt, g, cd);
        if (k < 0)
                return k;
        return cand_mdevs_new(gt, g, cd);
}

/* NVIDIA vendor-specific vGPU VFs of a free, matching @g, each free and either set to the type
 * already or unset and able to take it while the GPU's framebuffer has room (else @g is noted
 * full). */
static int cand_vendor_vgpus(struct gather *gt, const struct gpuh_gpu *g, bool gpu_free, struct cand *cd)
{
        struct gpuh_fb_room room;
        int room_ok = -1;       /* the GPU's framebuffer, asked once */
        int k = 0;
        bool mig;

        if (!gpu_free || !matches_gpu(gt->r, g))
                return 0;
        mig = vtype_is_mig(gt->c->in->inv, g, gt->vtype);
        /* Equal-size mode (NVML's word, else the driver's default on vendor VFs): a GPU that
         * carries or was promised another size takes none of this one (NVIDIA vGPU user guide,
         * "Modes for time-sliced vGPUs"); refused here, not when the VM starts. */
        {
                bool assumed = false;
                int64_t want = vtype_fb(gt->c->in->inv, g, gt->vtype);
                unsigned other;

                if (want > 0 && !vtype_is_mig(gt->c->in->inv, g, gt->vtype) &&
                    gpuh_inventory_vgpu_mode(gt->c->in->inv, g, &assumed) == GPUH_VGPU_MODE_EQUAL &&
                    (other = other_size_on(gt->c, g, want))) {
                        note_mode(gt->c, g, other, assumed);
                        return 0;
                }
        }
        cd->load = gpu_load(gt->c, g);
        for (size_t vi = 0; vi < g->n_vfs && k >= 0; vi++) {
                const struct gpuh_vf *vf = &g->vfs[vi];
                if (!vf->has_vendor_vgpu || holder_pci(gt->c, &vf->dev->addr))
                        continue;
                if (vf->vendor_vgpu.current_type == gt->vtype)
                        cd->rank_reuse = 0;     /* set already: its framebuffer is counted */
                else if (vf->vendor_vgpu.current_type == 0 && has_type(&vf->vendor_vgpu, gt->vtype)) {
                        /* MIG-backed: a free GPU instance, not the framebuffer, is the budget */
                        if (room_ok < 0)
                                room_ok = mig ? mig_room(gt->c, g, gt->vtype) > 0 :
                                          gpuh_vendor_vgpu_fb_room(gt->c->in->inv, g, gt->vtype, &gt->prom, &room);
                        if (!room_ok && mig)
                                continue;
                        if (!room_ok) {
                                note_full(gt->c, g, &room);
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
static int candidates(struct ctx *c, const struct gpuh_request *r, int ri, struct cand **ret, size_t *ret_n)
{
        struct gpuh_inventory *inv = c->in->inv;
        struct gather gt = { .c = c, .r = r, .prom = promised(c) };
        int k = 0;

        c->n_full = 0;
        c->n_mode = 0;

        if (r->mode == GPUH_REQ_VENDOR_VGPU && !(gt.vtype = vgpu_type_id(inv, r->profile)))
                return -ENOENT;
        for (size_t gi = 0; gi < inv->n_gpus && k >= 0; gi++) {
                const struct gpuh_gpu *g = &inv->gpus[gi];
                bool gpu_free = !holder_pci(c, &g->dev->addr);
                struct cand cd = { .gpu = g, .node = g->dev->numa_node };

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

static int cmp_cand(const void *x, const void *y, void *arg)
{
        const struct cand *a = x, *b = y;
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

static void describe(const struct gpuh_request *r, char *buf, size_t size)
{
        snprintf(buf, size, "%u x %s%s%s%s%s", r->count, gpuh_req_mode_to_string(r->mode),
                 r->profile ? " '" : "", r->profile ? r->profile : "", r->profile ? "'" : "",
                 r->model ? " of the given model" : (r->vendor >= 0 || r->device >= 0) ? " of the given ids" : "");
}

static int derive_uuid(const char *domain_uuid, size_t slot, char *out)
{
        uuid_t ns, u;
        char name[64];

        if (!domain_uuid || uuid_parse(domain_uuid, ns) < 0)
                return -EINVAL;
        snprintf(name, sizeof(name), "gpuhooks-mdev-%zu", slot);
        uuid_generate_sha1(u, ns, name, strlen(name));
        uuid_unparse_lower(u, out);
        return 0;
}

static json_object *cand_json(const struct cand *cd)
{
        char a[GPUH_PCI_ADDR_MAX];

        return json_object_new_string(cd->a.kind == GPUH_ALLOC_MDEV ? gpuh_pci_addr_format(&cd->a.parent, a)
                                                                    : gpuh_pci_addr_format(&cd->a.addr, a));
}

int gpuh_select_requests(const struct gpuh_select_in *in, struct gpuh_alloc **ret, size_t *ret_n,
                         json_object *explain, char **reterr)
{
        struct ctx c = { .in = in };
        json_object *jcand = explain ? json_object_new_array() : NULL, *jchosen = explain ? json_object_new_array() : NULL;
        bool pass = false, vgpu = false;
        int r = 0;

        if (explain) {
                json_object_object_add(explain, "candidates", jcand);
                json_object_object_add(explain, "chosen", jchosen);
        }
        for (size_t i = 0; i < in->n_requests; i++) {
                pass |= in->requests[i].mode == GPUH_REQ_PASSTHROUGH;
                vgpu |= in->requests[i].mode != GPUH_REQ_PASSTHROUGH;
        }
        if (pass && vgpu && !in->allow_mixed)
                return gpuh_error(reterr, -EINVAL, "it mixes passthrough and vGPU requests (transformer.allow_mixed is off)");

        for (size_t ri = 0; ri < in->n_requests; ri++) {
                const struct gpuh_request *rq = &in->requests[ri];
                char what[400];

                describe(rq, what, sizeof(what));
                if (rq->numa == GPUH_NUMA_REQUIRE && in->numa_node < 0) {
                        r = gpuh_error(reterr, -EINVAL, "request %zu (%s) requires the NUMA node of the vCPUs, which are not pinned to one node",
                                 ri, what);
                        goto out;
                }
                size_t free_at_start = 0;

                for (unsigned k = 0; k < rq->count; k++) {
                        _cleanup_free_ struct cand *v = NULL;
                        size_t n = 0, best = SIZE_MAX;
                        int want_node;

                        r = candidates(&c, rq, (int) ri, &v, &n);
                        if (r == -ENOENT) {
                                r = gpuh_error(reterr, -EINVAL, "request %zu: vGPU type '%s' is not known on this host: no VF "
                                               "lists it as creatable now or has it set%s", ri, rq->profile,
                                               equal_size_busy(c.in->inv) ? " (a GPU in equal-size vGPU mode lists only "
                                               "the size it carries; NVML, which names every type, did not answer)" : "");
                                goto out;
                        }
                        if (r < 0)
                                goto out;
                        want_node = rq->numa == GPUH_NUMA_ANY ? -1 : in->numa_node;
                        if (n > 1)
                                qsort_r(v, n, sizeof(*v), cmp_cand, &want_node);
                        for (size_t i = 0; i < n && best == SIZE_MAX; i++)
                                if (rq->numa != GPUH_NUMA_REQUIRE || v[i].node == in->numa_node)
                                        best = i;
                        if (k == 0)
                                for (size_t i = 0; i < n; i++)
                                        free_at_start += rq->numa != GPUH_NUMA_REQUIRE || v[i].node == in->numa_node;
                        if (explain && k == 0) {
                                json_object *e = json_object_new_object(), *free_list = json_object_new_array();
                                json_object_object_add(e, "request", json_object_new_int((int) ri));
                                for (size_t i = 0; i < n; i++)
                                        json_object_array_add(free_list, cand_json(&v[i]));
                                json_object_object_add(e, "free", free_list);
                                json_object_array_add(jcand, e);
                        }
                        if (best == SIZE_MAX) {
                                /* what could be given: candidates count one by one, but some
                                 * share a budget (a GPU's framebuffer), so count what was picked */
                                char full[512], modes[512], users[512];

                                r = gpuh_error(reterr, -ENOSPC, "request %zu asks for %s%s, only %zu free on this host%s%s%s", ri,
                                         what, rq->numa == GPUH_NUMA_REQUIRE ? " on the vCPUs' NUMA node" : "",
                                         k > 0 ? (size_t) k : free_at_start, full_list(&c, full, sizeof(full)),
                                         mode_list(&c, modes, sizeof(modes)),
                                         rq->mode == GPUH_REQ_VENDOR_VGPU ?
                                         users_of_type(&c, vgpu_type_id(c.in->inv, rq->profile), rq->profile, users, sizeof(users)) : "");
                                goto out;
                        }
                        if (v[best].a.kind == GPUH_ALLOC_MDEV && v[best].a.mdev_new &&
                            derive_uuid(in->uuid, c.n_new_mdevs++, v[best].a.uuid) < 0) {
                                r = gpuh_error(reterr, -EINVAL, "request %zu: an mdev needs the domain's <uuid>", ri);
                                goto out;
                        }
                        if (explain) {
                                json_object *e = json_object_new_object();
                                char why[128];
                                json_object_object_add(e, "request", json_object_new_int((int) ri));
                                gpuh_alloc_explain(&v[best].a, e);
                                snprintf(why, sizeof(why), "numa node %d%s, %u vGPUs on the GPU, %s", v[best].node,
                                         in->numa_node >= 0 && v[best].node == in->numa_node ? " (the vCPUs')" : "",
                                         v[best].load, v[best].rank_reuse ? "to create or set" : "ready as it is");
                                json_object_object_add(e, "why", json_object_new_string(why));
                                json_object_array_add(jchosen, e);
                        }
                        if ((r = push(&c, &v[best].a)) < 0)
                                goto out;
                }
        }
        *ret = c.plan;
        *ret_n = c.n_plan;
        return 0;
out:
        free(c.plan);
        return r;
}

/* ---- NUMA ---- */

/* Parse a libvirt cpuset ("0-5,12,^3") into a bitmap of @max CPUs. */
static int parse_cpuset(const char *s, unsigned char *bits, size_t max)
{
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                bool neg = *t == '^';
                char *end;
                unsigned long a, b;

                while (isspace((unsigned char) *t))
                        t++;
                if (neg)
                        t++;
                if (!isdigit((unsigned char) *t))
                        return -EINVAL;
                a = strtoul(t, &end, 10);
                b = a;
                if (*end == '-') {
                        if (!isdigit((unsigned char) end[1]))
                                return -EINVAL;
                        b = strtoul(end + 1, &end, 10);
                }
                while (isspace((unsigned char) *end))
                        end++;
                if (*end || b < a || b >= max)
                        return -EINVAL;
                memset(bits + a, !neg, b - a + 1);      /* not a loop: 150,000 "0-8191" pins stay cheap */
        }
        return 0;
}

#define MAX_CPUS 8192

int gpuh_cpuset_node(int root_fd, const char *cpuset, int *ret)
{
        _cleanup_free_ unsigned char *want = calloc(MAX_CPUS, 1), *node = calloc(MAX_CPUS, 1);
        _cleanup_strv_free_ char **nodes = NULL;
        int found = -1, r;

        *ret = -1;
        if (!want || !node)
                return -ENOMEM;
        if (!cpuset)
                return 0;
        r = parse_cpuset(cpuset, want, MAX_CPUS);
        if (r < 0)
                return r;
        if (gpuh_sysfs_list(root_fd, "devices/system/node", &nodes) < 0)
                return 0;
        for (char **p = nodes; *p; p++) {
                char rel[128], buf[4096];
                int id;
                bool all = true, any = false;

                if (strncmp(*p, "node", 4) != 0 || !isdigit((unsigned char) (*p)[4]))
                        continue;
                id = atoi(*p + 4);
                snprintf(rel, sizeof(rel), "devices/system/node/%s/cpulist", *p);
                if (gpuh_sysfs_read(root_fd, rel, buf, sizeof(buf)) < 0)
                        continue;
                memset(node, 0, MAX_CPUS);
                if (buf[0] && parse_cpuset(buf, node, MAX_CPUS) < 0)
                        continue;
                for (size_t i = 0; i < MAX_CPUS; i++)
                        if (want[i]) {
                                if (node[i])
                                        any = true;
                                else
                                        all = false;
                        }
                if (any && all) {
                        found = id;
                        break;
                }
        }
        *ret = found;
        return 0;
}
