/* SPDX-License-Identifier: Apache-2.0 */
/* layout.c: which vGPU slots a GPU's layout gives, and where each one goes. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "capacity.h"
#include "config.h"
#include "inventory.h"
#include "layout.h"
#include "layout_mig.h"
#include "macro.h"

void gpuh_layout_clear(struct gpuh_layout *l)
{
        if (!l)
                return;
        free(l->match.address_text);
        for (size_t i = 0; i < l->n_profiles; i++)
                free(l->profiles[i].profile);
        free(l->profiles);
        *l = (struct gpuh_layout) { 0 };
}

static bool ids_match(const struct gpuh_layout_match *m, const struct gpuh_pci_dev *d)
{
        return m->vendor == d->vendor_id && m->device == d->device_id &&
               (m->subsystem_vendor < 0 || m->subsystem_vendor == d->subsys_vendor_id) &&
               (m->subsystem_device < 0 || m->subsystem_device == d->subsys_device_id);
}

const struct gpuh_layout *gpuh_layout_find(const struct gpuh_config *cfg, const struct gpuh_pci_dev *dev,
                                           bool *ret_by_address)
{
        const struct gpuh_layout *by_id = NULL;

        if (ret_by_address)
                *ret_by_address = false;
        for (size_t i = 0; cfg && i < cfg->n_layouts; i++) {
                const struct gpuh_layout_match *m = &cfg->layouts[i].match;

                if (m->address_text) {
                        if (gpuh_pci_addr_cmp(&m->address, &dev->addr) == 0) {
                                if (ret_by_address)
                                        *ret_by_address = true;
                                return &cfg->layouts[i];
                        }
                } else if (!by_id && ids_match(m, dev))
                        by_id = &cfg->layouts[i];
        }
        return by_id;
}

void gpuh_layout_slot_uuid(const struct gpuh_pci_addr *parent, const char *type_id, unsigned number,
                           char ret[static GPUH_UUID_STR_LEN + 1])
{
        uuid_t ns, out;
        char name[GPUH_PCI_ADDR_MAX + 64 + 32], a[GPUH_PCI_ADDR_MAX];
        int len;

        uuid_parse(GPUH_LAYOUT_UUID_NS, ns);
        len = snprintf(name, sizeof(name), "%s/%s/SLOT_%u", gpuh_pci_addr_format(parent, a), type_id, number);
        uuid_generate_sha1(out, ns, name, (size_t) len < sizeof(name) ? (size_t) len : sizeof(name) - 1);
        uuid_unparse_lower(out, ret);
}

static const char *const kind_table[_GPUH_LAYOUT_KIND_MAX] = { "pf-mdev", "vf-mdev", "vendor-vf" };

const char *gpuh_layout_kind_to_string(enum gpuh_layout_kind k)
{
        return (unsigned) k < _GPUH_LAYOUT_KIND_MAX ? kind_table[k] : "?";
}

/* ---- resolution ---- */

int gpuh_layout_vfail(struct gpuh_gpu_layout *gl, int err, const char *fmt, va_list ap)
{
        _cleanup_free_ char *what = NULL;
        char a[GPUH_PCI_ADDR_MAX];

        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        if (!what || asprintf(&gl->why, "layout of GPU %s: %s; its layout is not applied",
                              gpuh_pci_addr_format(&gl->gpu->dev->addr, a), what) < 0) {
                gl->why = NULL;
                return -ENOMEM;
        }
        gl->error = err;
        return 0;
}

static int fail(struct gpuh_gpu_layout *gl, int err, const char *fmt, ...) _printf_(3, 4);
static int fail(struct gpuh_gpu_layout *gl, int err, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = gpuh_layout_vfail(gl, err, fmt, ap);
        va_end(ap);
        return r;
}

static const struct gpuh_mdev_type *find_type(const struct gpuh_mdev_type *t, size_t n, const char *profile)
{
        for (size_t i = 0; i < n; i++)
                if ((t[i].name && streq(t[i].name, profile)) || streq(t[i].type_id, profile))
                        return &t[i];
        return NULL;
}

/* The vendor vGPU type id named @name: a VF's creatable list or set type, on @g or a GPU of its
 * model, or the name cache. 0 when none. */
static unsigned vendor_type_id(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, const char *name)
{
        for (size_t k = 0; k < inv->n_gpus; k++) {
                const struct gpuh_gpu *o = &inv->gpus[k];

                if (o != g && (o->dev->vendor_id != g->dev->vendor_id || o->dev->device_id != g->dev->device_id))
                        continue;
                for (size_t v = 0; v < o->n_vfs; v++) {
                        const struct gpuh_vf *vf = &o->vfs[v];
                        for (size_t i = 0; i < vf->vendor_vgpu.n_creatable; i++)
                                if (streq(vf->vendor_vgpu.creatable[i].name, name))
                                        return vf->vendor_vgpu.creatable[i].id;
                        if (vf->vendor_vgpu.current_type && vf->current_type_name && streq(vf->current_type_name, name))
                                return vf->vendor_vgpu.current_type;
                }
        }
        for (size_t i = 0; i < inv->n_known_types; i++)
                if (streq(inv->known_types[i].name, name))
                        return inv->known_types[i].id;
        return 0;
}

static int resolve_profiles(const struct gpuh_inventory *inv, struct gpuh_gpu_layout *gl)
{
        const struct gpuh_gpu *g = gl->gpu;
        const struct gpuh_layout *e = gl->entry;

        for (size_t p = 0; p < e->n_profiles; p++) {
                struct gpuh_layout_resolved *rp = &gl->profiles[p];
                const struct gpuh_mdev_type *t = NULL;
                const struct gpuh_nvml_type *mt;

                rp->profile = e->profiles[p].profile;
                rp->count = (unsigned) e->profiles[p].count;
                rp->count_given = e->profiles[p].count > 0;
                rp->fb_mib = -1;
                rp->gi_profile = -1;
                if (gl->kind == GPUH_LAYOUT_VENDOR_VF) {
                        rp->vgpu_type = vendor_type_id(inv, g, rp->profile);
                        if (rp->vgpu_type == 0 && (mt = gpuh_layout_mig_type(inv, g, rp->profile)))
                                rp->vgpu_type = mt->id;         /* MIG-backed, no free GI now */
                        rp->type_name = rp->profile;
                        rp->fb_mib = gpuh_vgpu_type_name_fb(rp->profile);
                        if (rp->vgpu_type == 0)
                                return fail(gl, -ENOENT, "profile '%s' is not an NVIDIA vGPU type its VFs offer",
                                            rp->profile);
                } else {
                        if (gl->kind == GPUH_LAYOUT_PF_MDEV)
                                t = find_type(g->types, g->n_types, rp->profile);
                        for (size_t v = 0; !t && v < g->n_vfs; v++)
                                t = find_type(g->vfs[v].types, g->vfs[v].n_types, rp->profile);
                        if (t) {
                                snprintf(rp->type_id, sizeof(rp->type_id), "%s", t->type_id);
                                rp->type_name = t->name ? t->name : t->type_id;
                                rp->fb_mib = t->params.video_ram_mib;
                        } else if ((mt = gpuh_layout_mig_type(inv, g, rp->profile))) {
                                /* MIG-backed types the VFs list only once GIs exist */
                                snprintf(rp->type_id, sizeof(rp->type_id), "nvidia-%u", mt->id);
                                rp->type_name = mt->name;
                                rp->fb_mib = mt->fb_mib;
                        } else
                                return fail(gl, -ENOENT, "profile '%s' is not an mdev type (name or directory) it offers",
                                            rp->profile);
                }
                rp->gi_profile = gpuh_layout_mig_gi_profile(inv, gl, rp);
                for (size_t q = 0; q < p; q++)
                        if ((gl->kind == GPUH_LAYOUT_VENDOR_VF && gl->profiles[q].vgpu_type == rp->vgpu_type) ||
                            (gl->kind != GPUH_LAYOUT_VENDOR_VF && streq(gl->profiles[q].type_id, rp->type_id)))
                                return fail(gl, -EINVAL, "profile '%s' is listed twice", rp->profile);
        }
        return 0;
}

/* The type's max_instances (mdev: its description; vendor: the GPU's framebuffer / its own). */
static struct gpuh_vgpu_params profile_params(const struct gpuh_gpu_layout *gl, const struct gpuh_layout_resolved *rp)
{
        struct gpuh_vgpu_params t = { -1, rp->fb_mib, -1, -1, -1 };
        const struct gpuh_gpu *g = gl->gpu;
        const struct gpuh_mdev_type *mt = NULL;

        if (gl->kind == GPUH_LAYOUT_VENDOR_VF) {
                if (gl->gpu_fb_mib > 0 && rp->fb_mib > 0)
                        t.max_instances = gl->gpu_fb_mib / rp->fb_mib;
                return t;
        }
        if (gl->kind == GPUH_LAYOUT_PF_MDEV)
                mt = find_type(g->types, g->n_types, rp->type_id);
        for (size_t v = 0; !mt && v < g->n_vfs; v++)
                mt = find_type(g->vfs[v].types, g->vfs[v].n_types, rp->type_id);
        if (mt)
                t.max_instances = mt->params.max_instances;
        return t;
}

/* Parents a slot may take: the VFs that could carry a vGPU (unlimited for PF mdevs). */
static unsigned parent_count(const struct gpuh_gpu_layout *gl)
{
        unsigned n = 0;

        if (gl->kind == GPUH_LAYOUT_PF_MDEV)
                return GPUH_LAYOUT_MAX_COUNT;
        for (size_t v = 0; v < gl->gpu->n_vfs; v++)
                n += gl->kind == GPUH_LAYOUT_VENDOR_VF ? gl->gpu->vfs[v].has_vendor_vgpu : gl->gpu->vfs[v].n_types > 0;
        return n;
}

/*
 * Sizes a vendor-VF GPU cannot mix now: in equal-size mode (NVML's word, else the driver's
 * default on vendor VFs) every vGPU on a GPU has one framebuffer size (NVIDIA vGPU user guide,
 * "Modes for time-sliced vGPUs"), so a layout of several sizes could never be carved there.
 */
static int check_mode(const struct gpuh_inventory *inv, struct gpuh_gpu_layout *gl)
{
        bool assumed = false;

        if (gl->kind != GPUH_LAYOUT_VENDOR_VF || gl->n_profiles < 2 ||
            gpuh_inventory_vgpu_mode(inv, gl->gpu, &assumed) != GPUH_VGPU_MODE_EQUAL)
                return 0;
        for (size_t p = 1; p < gl->n_profiles; p++)
                if (gl->profiles[p].fb_mib != gl->profiles[0].fb_mib)
                        return fail(gl, -EINVAL, "'%s' (%" PRId64 " MiB) and '%s' (%" PRId64 " MiB) cannot share it in "
                                    "equal-size vGPU mode%s: mixed sizes need mixed-size mode (nvidia-smi vgpu -shm 1, "
                                    "nvmlDeviceSetVgpuHeterogeneousMode), which a reboot resets",
                                    gl->profiles[0].profile, gl->profiles[0].fb_mib, gl->profiles[p].profile,
                                    gl->profiles[p].fb_mib, assumed ? " (the driver's default; NVML did not say)" : "");
        return 0;
}

/* Counts: given ones checked, missing ones the most that fits; the sizes checked for mixing. */
static int resolve_counts(struct gpuh_gpu_layout *gl)
{
        const struct gpuh_gpu *g = gl->gpu;
        unsigned parents = parent_count(gl), used_parents = 0;
        int64_t used = 0;

        if (gl->n_profiles > 1 && gl->kind != GPUH_LAYOUT_VENDOR_VF && g->dev->vendor_id == 0x10de)
                for (size_t p = 1; p < gl->n_profiles; p++)
                        if (gl->profiles[p].fb_mib != gl->profiles[0].fb_mib || gl->profiles[p].fb_mib <= 0)
                                return fail(gl, -EINVAL, "'%s' (%" PRId64 " MiB) and '%s' (%" PRId64 " MiB) cannot share it: "
                                            "time-sliced NVIDIA vGPUs on mdev GPUs are all of one framebuffer size "
                                            "(mixed sizes need vendor-specific vGPU VFs)",
                                            gl->profiles[0].profile, gl->profiles[0].fb_mib, gl->profiles[p].profile,
                                            gl->profiles[p].fb_mib);
        for (size_t p = 0; p < gl->n_profiles; p++) {
                struct gpuh_layout_resolved *rp = &gl->profiles[p];
                struct gpuh_vgpu_params t = profile_params(gl, rp);
                struct gpuh_fb_room room = { 0 };
                bool known = t.max_instances > 0 && t.video_ram_mib > 0;
                int64_t u = used;
                unsigned n = 0, want = rp->count_given ? rp->count : GPUH_LAYOUT_MAX_COUNT;

                if (!known && !rp->count_given)
                        return fail(gl, -EINVAL, "the capacity for '%s' is unknown (no framebuffer or max_instances): "
                                    "give its count", rp->profile);
                /* capacity.h's rule: max_instances x framebuffer, shared by the profiles */
                while (n < want && used_parents + n < parents && gpuh_vgpu_fits(&t, u, &room)) {
                        u = gpuh_fb_add(u, t.video_ram_mib);
                        n++;
                }
                if (rp->count_given && n < want) {
                        if (used_parents + n >= parents)
                                return fail(gl, -ENOSPC, "'%s' x %u does not fit: it needs %u %s, %u left after the "
                                            "profiles before it", rp->profile, want, want,
                                            gl->kind == GPUH_LAYOUT_VENDOR_VF ? "vGPU VFs" : "mdev parent VFs",
                                            parents - used_parents);
                        return fail(gl, -ENOSPC, "'%s' x %u does not fit: the GPU holds %" PRId64 " x %" PRId64
                                    " MiB (%" PRId64 " MiB), the profiles before it take %" PRId64 " MiB",
                                    rp->profile, want, room.max_instances, room.need, room.total, used);
                }
                if (n == 0)
                        return fail(gl, -ENOSPC, "no '%s' fits: the GPU holds %" PRId64 " MiB, the profiles before "
                                    "it take %" PRId64 " MiB", rp->profile, room.total, used);
                rp->count = n;
                used = u;
                used_parents += n;
        }
        return 0;
}

/* A domain using PCI function @a or mdev @uuid, from the inventory's usage; NULL when none. */
static const char *user_of(const struct gpuh_inventory *inv, const struct gpuh_pci_addr *a, const char *uuid)
{
        const struct gpuh_vm *vm = NULL;

        if (!inv->usage)
                return NULL;
        if ((uuid ? gpuh_vm_usage_mdev(inv->usage, uuid, &vm, 1) : gpuh_vm_usage_pci(inv->usage, a, &vm, 1)) == 0)
                return NULL;
        return vm->name;
}

/* Per profile, its slots by number while they are placed. */
struct place {
        struct gpuh_layout_slot *s;     /* [count] */
        bool *filled;
};

static void put(struct place *pl, const struct gpuh_layout_slot *s)
{
        pl->s[s->number] = *s;
        pl->filled[s->number] = true;
}

/* The lowest unfilled number of @pl (count @n), or @n. */
static unsigned lowest_free(const struct place *pl, unsigned n)
{
        unsigned k = 0;

        while (k < n && pl->filled[k])
                k++;
        return k;
}

/* Existing mdevs of each profile's type on their parents fill slots: a derived UUID its slot,
 * the others (UUID order) the lowest numbers left. */
static void place_existing_mdevs(const struct gpuh_inventory *inv, struct gpuh_gpu_layout *gl, struct place *pl,
                                 bool *vf_taken)
{
        const struct gpuh_gpu *g = gl->gpu;

        for (int pass = 0; pass < 2; pass++)
                for (size_t p = 0; p < gl->n_profiles; p++) {
                        const struct gpuh_layout_resolved *rp = &gl->profiles[p];

                        for (size_t i = 0; i < g->n_vgpus; i++) {
                                const struct gpuh_mdev *m = g->vgpus[i].mdev;
                                bool on_pf = gpuh_pci_addr_cmp(&m->parent, &g->dev->addr) == 0, done = false;
                                struct gpuh_layout_slot s = { .profile = p, .parent = m->parent, .exists = true };
                                size_t vi = 0;

                                if (!m->type_id || !streq(m->type_id, rp->type_id) ||
                                    on_pf != (gl->kind == GPUH_LAYOUT_PF_MDEV))
                                        continue;
                                for (size_t k = 0; k < rp->count && !done; k++)
                                        done = pl[p].filled[k] && streq(pl[p].s[k].uuid, m->uuid);
                                if (done)
                                        continue;
                                if (!on_pf)
                                        for (vi = 0; vi < g->n_vfs; vi++)
                                                if (gpuh_pci_addr_cmp(&g->vfs[vi].dev->addr, &m->parent) == 0)
                                                        break;
                                memcpy(s.uuid, m->uuid, sizeof(s.uuid));
                                s.vf = on_pf ? (struct gpuh_pci_addr) { 0 } : m->parent;
                                s.used_by = user_of(inv, NULL, m->uuid);
                                s.number = (unsigned) rp->count;
                                if (pass == 0) {
                                        for (unsigned k = 0; k < rp->count; k++) {
                                                char u[GPUH_UUID_STR_LEN + 1];
                                                gpuh_layout_slot_uuid(&m->parent, rp->type_id, k, u);
                                                if (!pl[p].filled[k] && streq(u, m->uuid)) {
                                                        s.number = k;
                                                        s.derived = true;
                                                        break;
                                                }
                                        }
                                } else
                                        s.number = lowest_free(&pl[p], rp->count);
                                if (s.number >= rp->count)
                                        continue;
                                put(&pl[p], &s);
                                if (!on_pf && vi < g->n_vfs)
                                        vf_taken[vi] = true;
                        }
                }
}

/* VFs carrying something: an mdev, a vGPU type. Not which domain names a VF: that domain is
 * the slot's user (a stopped CloudStack VM keeps its VF), and a domain's own definition must
 * not move the slot it was given. */
static void mark_taken_vfs(const struct gpuh_gpu_layout *gl, bool *vf_taken)
{
        const struct gpuh_gpu *g = gl->gpu;

        for (size_t v = 0; v < g->n_vfs; v++) {
                const struct gpuh_vf *vf = &g->vfs[v];
                vf_taken[v] = (gl->kind == GPUH_LAYOUT_VENDOR_VF && (!vf->has_vendor_vgpu || vf->vendor_vgpu.current_type)) ||
                              (gl->kind == GPUH_LAYOUT_VF_MDEV && vf->n_types == 0);
                for (size_t i = 0; i < g->n_vgpus && !vf_taken[v]; i++)
                        vf_taken[v] = gpuh_pci_addr_cmp(&g->vgpus[i].mdev->parent, &vf->dev->addr) == 0;
        }
}

/* @mig: the GI placements of MIG-backed profiles, or NULL */
static int place_slots(const struct gpuh_inventory *inv, struct gpuh_gpu_layout *gl, const struct gpuh_layout_mig *mig)
{
        const struct gpuh_gpu *g = gl->gpu;
        _cleanup_free_ bool *vf_taken = calloc(g->n_vfs + 1, sizeof(bool));
        _cleanup_free_ struct place *pl = calloc(gl->n_profiles, sizeof(*pl));
        size_t total = 0;
        int r = -ENOMEM;

        if (!vf_taken || !pl)
                return -ENOMEM;
        for (size_t p = 0; p < gl->n_profiles; p++) {
                pl[p].s = calloc(gl->profiles[p].count + 1, sizeof(*pl[p].s));
                pl[p].filled = calloc(gl->profiles[p].count + 1, sizeof(bool));
                if (!pl[p].s || !pl[p].filled)
                        goto out;
        }
        mark_taken_vfs(gl, vf_taken);

        if (gl->kind == GPUH_LAYOUT_VENDOR_VF) {
                /* VFs with a profile's type set, lowest first */
                for (size_t p = 0; p < gl->n_profiles; p++)
                        for (size_t v = 0; v < g->n_vfs; v++) {
                                const struct gpuh_vf *vf = &g->vfs[v];
                                unsigned k = lowest_free(&pl[p], gl->profiles[p].count);

                                if (k >= gl->profiles[p].count || !vf->has_vendor_vgpu ||
                                    vf->vendor_vgpu.current_type != gl->profiles[p].vgpu_type)
                                        continue;
                                put(&pl[p], &(struct gpuh_layout_slot) {
                                        .profile = p, .number = k, .parent = g->dev->addr, .vf = vf->dev->addr,
                                        .exists = true, .used_by = user_of(inv, &vf->dev->addr, NULL) });
                                vf_taken[v] = true;
                        }
        } else
                place_existing_mdevs(inv, gl, pl, vf_taken);

        /* the rest: derived UUIDs on the PF, or the lowest free VFs */
        for (size_t p = 0; p < gl->n_profiles; p++) {
                const struct gpuh_layout_resolved *rp = &gl->profiles[p];
                size_t v = 0;

                for (unsigned k = 0; k < rp->count; k++) {
                        struct gpuh_layout_slot s = { .profile = p, .number = k, .derived = true };
                        int blocked = 0;

                        if (pl[p].filled[k])
                                continue;
                        if (mig) {              /* a GI in the way: not offered now */
                                gpuh_layout_mig_slot(mig, gl, &s);
                                if ((blocked = gpuh_layout_mig_blocked(mig, gl, &s)) < 0)
                                        goto out;
                        }
                        if (blocked)
                                continue;
                        if (gl->kind == GPUH_LAYOUT_PF_MDEV)
                                s.parent = g->dev->addr;
                        else {
                                for (; v < g->n_vfs; v++)
                                        if (!vf_taken[v] && (gl->kind == GPUH_LAYOUT_VENDOR_VF || rp->gi_profile >= 0 ||
                                                             find_type(g->vfs[v].types, g->vfs[v].n_types, rp->type_id)))
                                                break;
                                if (v >= g->n_vfs)
                                        break;          /* no VF left now: the slot is not placed */
                                vf_taken[v] = true;
                                s.vf = g->vfs[v].dev->addr;
                                s.parent = gl->kind == GPUH_LAYOUT_VENDOR_VF ? g->dev->addr : s.vf;
                                s.derived = gl->kind != GPUH_LAYOUT_VENDOR_VF;
                        }
                        if (gl->kind != GPUH_LAYOUT_VENDOR_VF)
                                gpuh_layout_slot_uuid(&s.parent, rp->type_id, k, s.uuid);
                        put(&pl[p], &s);
                }
        }

        for (size_t p = 0; p < gl->n_profiles; p++)
                for (unsigned k = 0; k < gl->profiles[p].count; k++)
                        total += pl[p].filled[k];
        gl->slots = calloc(total + 1, sizeof(*gl->slots));
        if (!gl->slots)
                goto out;
        for (size_t p = 0; p < gl->n_profiles; p++)
                for (unsigned k = 0; k < gl->profiles[p].count; k++)
                        if (pl[p].filled[k]) {
                                gl->slots[gl->n_slots] = pl[p].s[k];
                                if (mig)
                                        gpuh_layout_mig_slot(mig, gl, &gl->slots[gl->n_slots]);
                                gl->n_slots++;
                                gl->profiles[p].placed++;
                        }
        r = 0;
out:
        for (size_t p = 0; p < gl->n_profiles; p++) {
                free(pl[p].s);
                free(pl[p].filled);
        }
        return r;
}

static int resolve_gpu(const struct gpuh_inventory *inv, struct gpuh_gpu_layout *gl)
{
        const struct gpuh_gpu *g = gl->gpu;
        struct gpuh_layout_mig mig;
        bool vendor = false, vf_mdev = false;
        int r;

        for (size_t v = 0; v < g->n_vfs; v++) {
                vendor = vendor || g->vfs[v].has_vendor_vgpu;
                vf_mdev = vf_mdev || g->vfs[v].n_types > 0;
        }
        gl->kind = vendor ? GPUH_LAYOUT_VENDOR_VF : vf_mdev ? GPUH_LAYOUT_VF_MDEV : GPUH_LAYOUT_PF_MDEV;
        gl->gpu_fb_mib = -1;
        gl->n_profiles = gl->entry->n_profiles;
        gl->profiles = calloc(gl->n_profiles + 1, sizeof(*gl->profiles));
        if (!gl->profiles)
                return -ENOMEM;
        if (!vendor && !vf_mdev && g->n_types == 0)
                return fail(gl, -EINVAL, "it offers no vGPU (no mdev types, no NVIDIA vGPU VFs)");
        if ((r = resolve_profiles(inv, gl)) < 0 || gl->error)
                return r;
        /* MIG-backed: counted by GI placements, not framebuffer */
        if ((r = gpuh_layout_mig_plan(inv, gl, parent_count(gl), &mig)) < 0 || gl->error)
                return r;
        if (r > 0)
                return place_slots(inv, gl, &mig);
        if (vendor)
                gl->gpu_fb_mib = gpuh_vendor_vgpu_gpu_fb(inv, g);
        else
                for (size_t p = 0; p < gl->n_profiles; p++) {
                        struct gpuh_vgpu_params t = profile_params(gl, &gl->profiles[p]);
                        if (t.max_instances > 0 && t.video_ram_mib > 0 && t.max_instances * t.video_ram_mib > gl->gpu_fb_mib)
                                gl->gpu_fb_mib = t.max_instances * t.video_ram_mib;
                }
        if ((r = check_mode(inv, gl)) < 0 || gl->error || (r = resolve_counts(gl)) < 0 || gl->error)
                return r;
        return place_slots(inv, gl, NULL);
}

int gpuh_layouts_resolve(const struct gpuh_inventory *inv, const struct gpuh_config *cfg, struct gpuh_layouts **ret)
{
        _cleanup_(gpuh_layouts_freep) struct gpuh_layouts *l = calloc(1, sizeof(*l));
        int r;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; cfg && cfg->n_layouts > 0 && i < inv->n_gpus; i++) {
                bool by_address;
                const struct gpuh_layout *e = gpuh_layout_find(cfg, inv->gpus[i].dev, &by_address);
                struct gpuh_gpu_layout *nv;

                if (!e)
                        continue;
                nv = reallocarray(l->v, l->n + 1, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                l->v = nv;
                l->v[l->n++] = (struct gpuh_gpu_layout) { .gpu = &inv->gpus[i], .entry = e, .by_address = by_address };
                r = resolve_gpu(inv, &l->v[l->n - 1]);
                if (r < 0)
                        return r;
                if (l->v[l->n - 1].error) {
                        free(l->v[l->n - 1].slots);
                        l->v[l->n - 1].slots = NULL;
                        l->v[l->n - 1].n_slots = 0;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

const char *gpuh_layout_slot_gi_text(const struct gpuh_layout_slot *s, char buf[static 64])
{
        char end[16] = "";

        buf[0] = '\0';
        if (!s || !s->gi)
                return buf;
        if (s->gi_size > 1)
                snprintf(end, sizeof(end), "-%u", s->gi_start + s->gi_size - 1);
        snprintf(buf, 64, ", GI %u at slice%s %u%s%s", s->gi_profile, s->gi_size > 1 ? "s" : "", s->gi_start, end,
                 s->gi_exists ? "" : " (made at start)");
        return buf;
}

struct gpuh_layouts *gpuh_layouts_free(struct gpuh_layouts *l)
{
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].why);
                free(l->v[i].profiles);
                free(l->v[i].slots);
                for (size_t k = 0; k < l->v[i].n_notes; k++)
                        free(l->v[i].notes[k]);
                free(l->v[i].notes);
        }
        free(l->v);
        free(l);
        return NULL;
}

const struct gpuh_gpu_layout *gpuh_layouts_of(const struct gpuh_layouts *l, const struct gpuh_gpu *g)
{
        for (size_t i = 0; l && i < l->n; i++)
                if (l->v[i].gpu == g)
                        return &l->v[i];
        return NULL;
}

const struct gpuh_layout_slot *gpuh_layouts_find_mdev(const struct gpuh_layouts *l, const char *uuid,
                                                      const struct gpuh_gpu_layout **ret_gl)
{
        for (size_t i = 0; l && i < l->n; i++)
                for (size_t k = 0; l->v[i].kind != GPUH_LAYOUT_VENDOR_VF && k < l->v[i].n_slots; k++)
                        if (streq(l->v[i].slots[k].uuid, uuid)) {
                                if (ret_gl)
                                        *ret_gl = &l->v[i];
                                return &l->v[i].slots[k];
                        }
        return NULL;
}

const struct gpuh_layout_slot *gpuh_layouts_find_vf(const struct gpuh_layouts *l, const struct gpuh_pci_addr *vf,
                                                    const struct gpuh_gpu_layout **ret_gl)
{
        for (size_t i = 0; l && i < l->n; i++)
                for (size_t k = 0; l->v[i].kind == GPUH_LAYOUT_VENDOR_VF && k < l->v[i].n_slots; k++)
                        if (gpuh_pci_addr_cmp(&l->v[i].slots[k].vf, vf) == 0) {
                                if (ret_gl)
                                        *ret_gl = &l->v[i];
                                return &l->v[i].slots[k];
                        }
        return NULL;
}
