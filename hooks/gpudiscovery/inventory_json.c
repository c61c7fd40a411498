/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_json.c: building the inventory document with json-c. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capacity.h"
#include "inventory_json.h"
#include "macro.h"

/* Every json-c constructor can fail only for memory; one flag collects that.
 * json-c values are refcounted and never changed once built, so equal small integers (mdev
 * availability: hundreds of 0s and 1s on a large host) share one object. */
#define SHARED_INTS 64

struct builder {
        bool oom;
        json_object *ints[SHARED_INTS];
};

static json_object *chk(struct builder *b, json_object *o)
{
        if (!o)
                b->oom = true;
        return o;
}

static void add(struct builder *b, json_object *obj, const char *key, json_object *val)
{
        if (!obj || (!val && b->oom)) {
                json_object_put(val);
                return;
        }
        if (json_object_object_add(obj, key, val) < 0) {
                json_object_put(val);
                b->oom = true;
        }
}

static void push(struct builder *b, json_object *arr, json_object *val)
{
        if (!arr || !val) {
                json_object_put(val);
                if (!val)
                        b->oom = true;
                return;
        }
        if (json_object_array_add(arr, val) < 0) {
                json_object_put(val);
                b->oom = true;
        }
}

static json_object *str(struct builder *b, const char *s)
{
        return s ? chk(b, json_object_new_string(s)) : NULL;
}

static json_object *strf(struct builder *b, const char *fmt, ...) _printf_(2, 3);
static json_object *strf(struct builder *b, const char *fmt, ...)
{
        char buf[64];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        return chk(b, json_object_new_string(buf));
}

static json_object *num_or_null(struct builder *b, int64_t v)
{
        if (v < 0)
                return NULL;
        if (v >= SHARED_INTS)
                return chk(b, json_object_new_int64(v));
        if (!b->ints[v])
                b->ints[v] = chk(b, json_object_new_int64(v));
        return b->ints[v] ? json_object_get(b->ints[v]) : NULL;
}

/* Another reference to a shared value (NULL stays JSON null). */
static json_object *ref(json_object *o)
{
        return o ? json_object_get(o) : NULL;
}

static json_object *id_or_null(struct builder *b, int v)
{
        return v < 0 ? NULL : strf(b, "%04x", (unsigned) v);
}

static json_object *libvirt_address(struct builder *b, const struct gpuh_pci_addr *a)
{
        json_object *o = chk(b, json_object_new_object());

        add(b, o, "domain", strf(b, "0x%04x", (unsigned) a->domain));
        add(b, o, "bus", strf(b, "0x%02x", a->bus));
        add(b, o, "slot", strf(b, "0x%02x", a->slot));
        add(b, o, "function", strf(b, "0x%x", a->func));
        return o;
}

/* The domains using a PCI function (@uuid NULL) or an mdev: a stack buffer, or the heap
 * for a device that hundreds of defined domains name. */
struct users {
        const struct gpuh_vm *small[32];
        const struct gpuh_vm **v;
        size_t n;
};

static void users_lookup(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_pci_addr *a,
                         const char *uuid, struct users *out)
{
        struct gpuh_vm_usage *u = inv->usage;

        out->v = out->small;
        out->n = 0;
        if (!u)
                return;
        out->n = uuid ? gpuh_vm_usage_mdev(u, uuid, out->small, ARRAY_SIZE(out->small))
                      : gpuh_vm_usage_pci(u, a, out->small, ARRAY_SIZE(out->small));
        if (out->n <= ARRAY_SIZE(out->small))
                return;
        out->v = calloc(out->n, sizeof(*out->v));
        if (!out->v) {
                b->oom = true;
                out->v = out->small;
                out->n = ARRAY_SIZE(out->small);
                return;
        }
        out->n = uuid ? gpuh_vm_usage_mdev(u, uuid, out->v, out->n) : gpuh_vm_usage_pci(u, a, out->v, out->n);
}

/* Is @name among @us, or the domain of a claim on the same device before claim @n (claims.h
 * loads reservations before journals: those are listed before)? */
static bool listed(const struct users *us, const struct gpuh_inventory *inv, const struct gpuh_pci_addr *a,
                   const char *uuid, size_t n, const char *name)
{
        for (size_t i = 0; i < us->n; i++)
                if (streq(us->v[i]->name, name))
                        return true;
        for (size_t i = gpuh_claims_find(inv->claims, n, a, uuid, 0); i < n;
             i = gpuh_claims_find(inv->claims, n, a, uuid, i + 1))
                if (streq(inv->claims[i].domain, name))
                        return true;
        return false;
}

/*
 * "used_by_vm" and the full "used_by" list: the domains libvirt knows to use the device
 * (active ones first, then by name), then those gpuhooks holds it for (claims.h), each once,
 * with their kind: a live reservation's, then a journal's (docs/inventory.md, "Usage").
 * The device is PCI function @a, or the mdev @uuid.
 */
static json_object *users_json(struct builder *b, const struct gpuh_inventory *inv, struct users *us,
                               const struct gpuh_pci_addr *a, const char *uuid, json_object **ret_first)
{
        json_object *arr = chk(b, json_object_new_array());
        const char *first = us->n > 0 ? us->v[0]->name : NULL;

        for (size_t i = 0; i < us->n; i++) {
                json_object *u = chk(b, json_object_new_object());
                add(b, u, "name", str(b, us->v[i]->name));
                add(b, u, "state", str(b, gpuh_vm_state_to_string(us->v[i]->state)));
                push(b, arr, u);
        }
        for (size_t k = 0; k < _GPUH_CLAIM_MAX; k++)
                for (size_t i = gpuh_claims_find(inv->claims, inv->n_claims, a, uuid, 0); i < inv->n_claims;
                     i = gpuh_claims_find(inv->claims, inv->n_claims, a, uuid, i + 1)) {
                        const struct gpuh_claim *c = &inv->claims[i];
                        const struct gpuh_vm *vm;
                        json_object *u;

                        if (c->kind != k || listed(us, inv, a, uuid, i, c->domain))
                                continue;
                        vm = inv->usage ? gpuh_vm_usage_find(inv->usage, c->domain) : NULL;
                        u = chk(b, json_object_new_object());
                        add(b, u, "name", str(b, c->domain));
                        add(b, u, "state", vm ? str(b, gpuh_vm_state_to_string(vm->state)) : NULL);
                        add(b, u, "kind", str(b, gpuh_claim_kind_to_string(c->kind)));
                        push(b, arr, u);
                        if (!first)
                                first = c->domain;
                }
        *ret_first = first ? str(b, first) : NULL;
        if (us->v != us->small)
                free(us->v);
        return arr;
}

static void vgpu_numbers(struct builder *b, json_object *o, const struct gpuh_vgpu_params *p)
{
        add(b, o, "max_instances", num_or_null(b, p ? p->max_instances : -1));
        add(b, o, "video_ram", num_or_null(b, p ? p->video_ram_mib : -1));
        add(b, o, "max_heads", num_or_null(b, p ? p->max_heads : -1));
        add(b, o, "max_resolution_x", num_or_null(b, p ? p->max_res_x : -1));
        add(b, o, "max_resolution_y", num_or_null(b, p ? p->max_res_y : -1));
}

/* Full type entries (the PF's own types) or, with @catalog, the model's description only. */
static json_object *mdev_type(struct builder *b, const struct gpuh_mdev_type *t, bool catalog)
{
        json_object *o = chk(b, json_object_new_object());

        add(b, o, "type_id", str(b, t->type_id));
        add(b, o, "name", str(b, t->name));
        add(b, o, "description", str(b, t->description));
        if (!catalog)
                add(b, o, "available_instances", num_or_null(b, t->available_instances));
        add(b, o, "device_api", str(b, t->device_api));
        return o;
}

static json_object *mdev_types(struct builder *b, const struct gpuh_mdev_type *t, size_t n)
{
        json_object *arr = chk(b, json_object_new_array());

        for (size_t i = 0; i < n; i++)
                push(b, arr, mdev_type(b, &t[i], false));
        return arr;
}

/* A VF's types as {type id: available instances}; the rest is in the GPU's vf_mdev_types.
 * One object per VF, not one per type: a 16-VF GPU offers hundreds of type entries. */
static json_object *vf_mdev_types(struct builder *b, const struct gpuh_mdev_type *t, size_t n)
{
        json_object *o = chk(b, json_object_new_object());

        for (size_t i = 0; i < n; i++)
                add(b, o, t[i].type_id, num_or_null(b, t[i].available_instances));
        return o;
}

static int cmp_type_ptr(const void *a, const void *b)
{
        return strverscmp((*(const struct gpuh_mdev_type *const *) a)->type_id,
                          (*(const struct gpuh_mdev_type *const *) b)->type_id);
}

/* Every type any VF of @g offers, once, in natural order of type id. */
static json_object *vf_type_catalog(struct builder *b, const struct gpuh_gpu *g)
{
        json_object *arr = chk(b, json_object_new_array());
        const struct gpuh_mdev_type **seen = NULL;
        size_t n = 0, cap = 0;

        for (size_t v = 0; v < g->n_vfs; v++)
                for (size_t i = 0; i < g->vfs[v].n_types; i++) {
                        const struct gpuh_mdev_type *t = &g->vfs[v].types[i];
                        bool dup = false;

                        for (size_t k = 0; k < n && !dup; k++)
                                dup = streq(seen[k]->type_id, t->type_id);
                        if (dup)
                                continue;
                        if (n == cap) {
                                size_t ncap = cap * 2 + 16;
                                const struct gpuh_mdev_type **ns = reallocarray(seen, ncap, sizeof(*ns));
                                if (!ns) {
                                        b->oom = true;
                                        free(seen);
                                        return arr;
                                }
                                seen = ns;
                                cap = ncap;
                        }
                        seen[n++] = t;
                }
        if (n > 1)
                qsort(seen, n, sizeof(*seen), cmp_type_ptr);
        for (size_t k = 0; k < n; k++)
                push(b, arr, mdev_type(b, seen[k], true));
        free(seen);
        return arr;
}

/* "on_demand" and "slot" of a gpuhooks object: the layout slot a device fills, or null. */
static void slot_ext(struct builder *b, json_object *ext, const struct gpuh_gpu_layout *gl,
                     const struct gpuh_layout_slot *s, bool on_demand)
{
        add(b, ext, "on_demand", chk(b, json_object_new_boolean(on_demand)));
        add(b, ext, "slot", s ? chk(b, json_object_new_int64(s->number)) : NULL);
        add(b, ext, "layout_profile", s ? str(b, gl->profiles[s->profile].profile) : NULL);
        if (s && s->gi) {               /* MIG-backed: the GPU instance it sits on, made at prepare */
                json_object *gi = chk(b, json_object_new_object());
                add(b, gi, "profile_id", chk(b, json_object_new_int64(s->gi_profile)));
                add(b, gi, "placement_start", chk(b, json_object_new_int64(s->gi_start)));
                add(b, gi, "placement_size", chk(b, json_object_new_int64(s->gi_size)));
                add(b, gi, "exists", chk(b, json_object_new_boolean(s->gi_exists)));
                add(b, ext, "gpu_instance", gi);
        }
}

static json_object *vgpu_instance(struct builder *b, struct gpuh_inventory *inv,
                                  const struct gpuh_vgpu_instance *v)
{
        const struct gpuh_gpu_layout *gl = NULL;
        const struct gpuh_layout_slot *slot = gpuh_layouts_find_mdev(inv->layouts, v->mdev->uuid, &gl);
        json_object *o = chk(b, json_object_new_object()), *ext, *first, *used;
        struct users us;
        const char *profile = v->type && v->type->name ? v->type->name :
                              v->mdev->type_id ? v->mdev->type_id : "";
        char parent[GPUH_PCI_ADDR_MAX];

        add(b, o, "mdev_uuid", str(b, v->mdev->uuid));
        add(b, o, "profile_name", str(b, profile));
        vgpu_numbers(b, o, v->type ? &v->type->params : NULL);
        add(b, o, "libvirt_address", libvirt_address(b, &v->mdev->parent));
        users_lookup(b, inv, NULL, v->mdev->uuid, &us);
        used = users_json(b, inv, &us, NULL, v->mdev->uuid, &first);
        add(b, o, "used_by_vm", first);
        ext = chk(b, json_object_new_object());
        add(b, ext, "type_id", str(b, v->mdev->type_id));
        add(b, ext, "parent", str(b, gpuh_pci_addr_format(&v->mdev->parent, parent)));
        add(b, ext, "description", v->type ? str(b, v->type->description) : NULL);
        add(b, ext, "iommu_group", v->mdev->iommu_group < 0 ? NULL : strf(b, "%d", v->mdev->iommu_group));
        add(b, ext, "used_by", used);
        slot_ext(b, ext, gl, slot, false);
        add(b, o, "gpuhooks", ext);
        return o;
}

/* The type @type_id as @parent (the GPU or one of its VFs) lists it, or NULL. */
static const struct gpuh_mdev_type *parent_type(const struct gpuh_gpu *g, const struct gpuh_pci_addr *parent,
                                                const char *type_id)
{
        const struct gpuh_mdev_type *t = g->types;
        size_t n = g->n_types;

        for (size_t v = 0; v < g->n_vfs; v++)
                if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, parent) == 0) {
                        t = g->vfs[v].types;
                        n = g->vfs[v].n_types;
                }
        for (size_t i = 0; i < n; i++)
                if (streq(t[i].type_id, type_id))
                        return &t[i];
        return NULL;
}

/* A layout slot whose mdev does not exist yet: advertised under its UUID, created at prepare. */
static json_object *vgpu_on_demand(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_gpu *g,
                                   const struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *s)
{
        const struct gpuh_layout_resolved *rp = &gl->profiles[s->profile];
        const struct gpuh_mdev_type *t = parent_type(g, &s->parent, rp->type_id);
        json_object *o = chk(b, json_object_new_object()), *ext, *first, *used;
        struct users us;
        char parent[GPUH_PCI_ADDR_MAX];

        add(b, o, "mdev_uuid", str(b, s->uuid));
        add(b, o, "profile_name", str(b, rp->type_name));
        vgpu_numbers(b, o, t ? &t->params : NULL);
        add(b, o, "libvirt_address", libvirt_address(b, &s->parent));
        users_lookup(b, inv, NULL, s->uuid, &us);
        used = users_json(b, inv, &us, NULL, s->uuid, &first);
        add(b, o, "used_by_vm", first);
        ext = chk(b, json_object_new_object());
        add(b, ext, "type_id", str(b, rp->type_id));
        add(b, ext, "parent", str(b, gpuh_pci_addr_format(&s->parent, parent)));
        add(b, ext, "description", t ? str(b, t->description) : NULL);
        add(b, ext, "iommu_group", NULL);
        add(b, ext, "used_by", used);
        slot_ext(b, ext, gl, s, true);
        add(b, o, "gpuhooks", ext);
        return o;
}

/* vf_profile rules of docs/inventory.md: never null, "" when the agent should skip the VF; a VF
 * a layout gives a vGPU type: that type's name, set or not yet. */
static const char *vf_profile(const struct gpuh_vf *vf, const struct gpuh_gpu_layout *gl,
                              const struct gpuh_layout_slot *slot)
{
        if (slot)
                return gl->profiles[slot->profile].profile;
        if (vf->n_types > 0)
                return "";                      /* mdev parent: its vGPUs are vgpu_instances */
        if (vf->has_vendor_vgpu)
                return vf->vendor_vgpu.current_type == 0 ? "" :
                       vf->current_type_name ? vf->current_type_name : "";
        return vf->device_name ? vf->device_name : "";
}

/* Values every VF of one GPU repeats, built once. */
struct vf_shared {
        const char *vendor_id_src, *device_name_src, *driver_src;
        uint16_t device_id;
        json_object *vendor_id, *device_id_o, *device, *driver;
};

static json_object *shared_str(struct builder *b, json_object **slot, const char **src, const char *s)
{
        if (!s)
                return NULL;
        if (!*slot || !*src || !streq(*src, s)) {
                json_object_put(*slot);
                *slot = str(b, s);
                *src = s;
        }
        return ref(*slot);
}

static void vf_shared_clear(struct vf_shared *sh)
{
        json_object_put(sh->vendor_id);
        json_object_put(sh->device_id_o);
        json_object_put(sh->device);
        json_object_put(sh->driver);
}

static json_object *vf_instance(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_vf *vf,
                                struct vf_shared *sh)
{
        json_object *o = chk(b, json_object_new_object()), *ext, *first, *used, *vv = NULL;
        const struct gpuh_gpu_layout *gl = NULL;
        const struct gpuh_layout_slot *slot = gpuh_layouts_find_vf(inv->layouts, &vf->dev->addr, &gl);
        struct users us;
        char a[GPUH_PCI_ADDR_MAX];

        add(b, o, "vf_pci_address", str(b, gpuh_pci_addr_format_agent(&vf->dev->addr, a)));
        add(b, o, "vf_profile", str(b, vf_profile(vf, gl, slot)));
        vgpu_numbers(b, o, NULL);
        add(b, o, "libvirt_address", libvirt_address(b, &vf->dev->addr));
        users_lookup(b, inv, &vf->dev->addr, NULL, &us);
        used = users_json(b, inv, &us, &vf->dev->addr, NULL, &first);
        add(b, o, "used_by_vm", first);

        ext = chk(b, json_object_new_object());
        add(b, ext, "address", str(b, vf->dev->name));
        add(b, ext, "vf_index", chk(b, json_object_new_int(vf->index)));
        if (!sh->vendor_id)
                sh->vendor_id = strf(b, "%04x", vf->dev->vendor_id);
        if (!sh->device_id_o || sh->device_id != vf->dev->device_id) {
                json_object_put(sh->device_id_o);
                sh->device_id_o = strf(b, "%04x", vf->dev->device_id);
                sh->device_id = vf->dev->device_id;
        }
        add(b, ext, "vendor_id", ref(sh->vendor_id));
        add(b, ext, "device_id", ref(sh->device_id_o));
        add(b, ext, "device", shared_str(b, &sh->device, &sh->device_name_src, vf->device_name));
        add(b, ext, "driver", shared_str(b, &sh->driver, &sh->driver_src, vf->dev->driver));
        add(b, ext, "iommu_group", vf->dev->iommu_group < 0 ? NULL : strf(b, "%d", vf->dev->iommu_group));
        add(b, ext, "numa_node", chk(b, json_object_new_int(vf->dev->numa_node)));
        add(b, ext, "mdev_types", vf_mdev_types(b, vf->types, vf->n_types));
        if (vf->has_vendor_vgpu) {
                json_object *arr = chk(b, json_object_new_array());
                vv = chk(b, json_object_new_object());
                add(b, vv, "current_type_id", chk(b, json_object_new_int64(vf->vendor_vgpu.current_type)));
                add(b, vv, "current_type_name", str(b, vf->current_type_name));
                for (size_t i = 0; i < vf->vendor_vgpu.n_creatable; i++) {
                        json_object *t = chk(b, json_object_new_object());
                        add(b, t, "id", chk(b, json_object_new_int64(vf->vendor_vgpu.creatable[i].id)));
                        add(b, t, "name", str(b, vf->vendor_vgpu.creatable[i].name));
                        push(b, arr, t);
                }
                add(b, vv, "creatable_types", arr);
        }
        add(b, ext, "vendor_vgpu", vv);
        add(b, ext, "used_by", used);
        slot_ext(b, ext, gl, slot, slot && !slot->exists);
        add(b, o, "gpuhooks", ext);
        return o;
}

/* The GPU's functions (itself, its companions, its VFs) that are quarantined. */
static json_object *quarantined(struct builder *b, const struct gpuh_inventory *inv, const struct gpuh_gpu *g)
{
        json_object *arr = chk(b, json_object_new_array());

        for (size_t i = 0; i < inv->n_quarantined; i++) {
                const struct gpuh_quarantined *q = &inv->quarantined[i];
                bool ours = gpuh_pci_addr_cmp(&q->addr, &g->dev->addr) == 0;
                json_object *o;
                char a[GPUH_PCI_ADDR_MAX];

                for (size_t m = 0; m < g->n_members && !ours; m++)
                        ours = g->members[m].role == GPUH_ROLE_COMPANION &&
                               gpuh_pci_addr_cmp(&q->addr, &g->members[m].dev->addr) == 0;
                for (size_t v = 0; v < g->n_vfs && !ours; v++)
                        ours = gpuh_pci_addr_cmp(&q->addr, &g->vfs[v].dev->addr) == 0;
                if (!ours)
                        continue;
                o = chk(b, json_object_new_object());
                add(b, o, "address", str(b, gpuh_pci_addr_format(&q->addr, a)));
                add(b, o, "since", q->since > 0 ? chk(b, json_object_new_int64(q->since)) : NULL);
                add(b, o, "domain", q->domain[0] ? str(b, q->domain) : NULL);
                add(b, o, "reason", str(b, q->reason));
                push(b, arr, o);
        }
        return arr;
}

/* The GPU's layout (docs/inventory.md, "gpuhooks.layout"), or NULL when no entry matches it. */
static json_object *layout_json(struct builder *b, const struct gpuh_gpu_layout *gl)
{
        json_object *o, *arr;

        if (!gl)
                return NULL;
        o = chk(b, json_object_new_object());
        add(b, o, "matched_by", str(b, gl->by_address ? "address" : "ids"));
        add(b, o, "kind", str(b, gpuh_layout_kind_to_string(gl->kind)));
        add(b, o, "framebuffer_mib", num_or_null(b, gl->error ? -1 : gl->gpu_fb_mib));
        arr = chk(b, json_object_new_array());
        for (size_t p = 0; p < gl->entry->n_profiles; p++) {
                const struct gpuh_layout_resolved *rp = &gl->profiles[p];
                json_object *e = chk(b, json_object_new_object());
                bool ok = !gl->error;

                add(b, e, "profile", str(b, gl->entry->profiles[p].profile));
                add(b, e, "type_id", ok && rp->type_id[0] ? str(b, rp->type_id) : NULL);
                add(b, e, "vgpu_type_id", ok && rp->vgpu_type ? chk(b, json_object_new_int64(rp->vgpu_type)) : NULL);
                add(b, e, "video_ram", num_or_null(b, ok ? rp->fb_mib : -1));
                add(b, e, "count", ok ? chk(b, json_object_new_int64(rp->count))
                                      : num_or_null(b, gl->entry->profiles[p].count > 0 ? gl->entry->profiles[p].count : -1));
                add(b, e, "count_given", chk(b, json_object_new_boolean(gl->entry->profiles[p].count > 0)));
                add(b, e, "slots", chk(b, json_object_new_int64(ok ? rp->placed : 0)));
                if (ok && rp->gi_profile >= 0)
                        add(b, e, "gpu_instance_profile_id", chk(b, json_object_new_int64(rp->gi_profile)));
                push(b, arr, e);
        }
        add(b, o, "profiles", arr);
        add(b, o, "slots", chk(b, json_object_new_int64((int64_t) gl->n_slots)));
        add(b, o, "error", str(b, gl->why));
        return o;
}

static json_object *vgpu_type_json(struct builder *b, const struct gpuh_inventory *inv, const struct gpuh_gpu *g,
                                   const struct gpuh_nvml_gpu *n, const struct gpuh_nvml_type *t, bool full)
{
        json_object *o = chk(b, json_object_new_object());

        add(b, o, "id", chk(b, json_object_new_int64(t->id)));
        add(b, o, "name", str(b, t->name));
        add(b, o, "framebuffer_mib", num_or_null(b, t->fb_mib));
        if (full)
                add(b, o, "max_instances", num_or_null(b, t->max_instances));
        add(b, o, "gpu_instance_profile_id", num_or_null(b, t->gi_profile_id));
        if (full)
                add(b, o, "creatable", chk(b, json_object_new_boolean(t->creatable)));
        add(b, o, "more", num_or_null(b, gpuh_inventory_vgpu_more(inv, g, n, t)));
        return o;
}

/* gpuhooks.mig, .vgpu_mode and .vgpu_types of an NVIDIA GPU (docs/inventory.md, "MIG and vGPU
 * modes"): what NVML said, or why it said nothing. */
static void nvml_ext(struct builder *b, const struct gpuh_inventory *inv, const struct gpuh_gpu *g, json_object *ext)
{
        const struct gpuh_nvml_gpu *n = NULL;
        json_object *mig = chk(b, json_object_new_object()), *arr;
        char buf[256];
        const char *why = gpuh_inventory_nvml(inv, g, buf, sizeof(buf), &n);

        if (why) {
                add(b, mig, "unavailable", str(b, why));
                add(b, ext, "mig", mig);
                add(b, ext, "vgpu_mode", NULL);
                return;
        }
        add(b, mig, "mode_current", n->mig_current < 0 ? NULL : str(b, n->mig_current ? "enabled" : "disabled"));
        add(b, mig, "mode_pending", n->mig_pending < 0 ? NULL : str(b, n->mig_pending ? "enabled" : "disabled"));
        arr = chk(b, json_object_new_array());
        for (size_t i = 0; i < n->n_gis; i++) {
                json_object *o = chk(b, json_object_new_object());
                add(b, o, "id", chk(b, json_object_new_int64(n->gis[i].id)));
                add(b, o, "profile_id", chk(b, json_object_new_int64(n->gis[i].profile_id)));
                add(b, o, "profile_name", n->gis[i].profile_name[0] ? str(b, n->gis[i].profile_name) : NULL);
                add(b, o, "placement_start", chk(b, json_object_new_int64(n->gis[i].placement_start)));
                add(b, o, "placement_size", chk(b, json_object_new_int64(n->gis[i].placement_size)));
                push(b, arr, o);
        }
        add(b, mig, "gpu_instances", arr);
        arr = chk(b, json_object_new_array());
        for (size_t i = 0; i < n->n_profiles; i++) {
                const struct gpuh_nvml_profile *p = &n->profiles[i];
                json_object *o = chk(b, json_object_new_object()), *pl = chk(b, json_object_new_array());

                add(b, o, "id", chk(b, json_object_new_int64(p->id)));
                add(b, o, "name", p->name[0] ? str(b, p->name) : NULL);
                add(b, o, "slices", chk(b, json_object_new_int64(p->slices)));
                add(b, o, "instances", chk(b, json_object_new_int64(p->instances)));
                add(b, o, "memory_mib", num_or_null(b, p->memory_mib));
                add(b, o, "remaining", num_or_null(b, p->remaining));
                for (size_t k = 0; k < p->n_placements; k++) {
                        json_object *e = chk(b, json_object_new_object());
                        add(b, e, "start", chk(b, json_object_new_int64(p->placements[k].start)));
                        add(b, e, "size", chk(b, json_object_new_int64(p->placements[k].size)));
                        push(b, pl, e);
                }
                add(b, o, "placements", pl);
                push(b, arr, o);
        }
        add(b, mig, "profiles", arr);
        arr = chk(b, json_object_new_array());
        for (size_t i = 0; i < n->n_types; i++)
                if (n->types[i].gi_profile_id >= 0 && n->types[i].creatable)
                        push(b, arr, vgpu_type_json(b, inv, g, n, &n->types[i], false));
        add(b, mig, "creatable_types", arr);
        add(b, ext, "mig", mig);
        add(b, ext, "vgpu_mode", str(b, gpuh_vgpu_mode_to_string(n->vgpu_mode)));
        arr = chk(b, json_object_new_array());
        for (size_t i = 0; i < n->n_types; i++)
                push(b, arr, vgpu_type_json(b, inv, g, n, &n->types[i], true));
        add(b, ext, "vgpu_types", arr);
}

/* How many more of each profile fit (capacity.h): the promised devices are not counted here
 * (gpudiscovery reads no reservations; gpuhooksctl status does). */
static json_object *capacity(struct builder *b, const struct gpuh_inventory *inv, const struct gpuh_gpu *g)
{
        _cleanup_free_ struct gpuh_profile_cap *caps = NULL;
        json_object *arr = chk(b, json_object_new_array());
        size_t n = 0;

        if (gpuh_gpu_capacity(inv, g, NULL, &caps, &n) < 0) {
                b->oom = true;
                return arr;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *o = chk(b, json_object_new_object());
                add(b, o, "kind", str(b, gpuh_cap_kind_to_string(caps[i].kind)));
                add(b, o, "profile", str(b, caps[i].name));
                add(b, o, "type_id", caps[i].type_id[0] ? str(b, caps[i].type_id) : NULL);
                add(b, o, "created", num_or_null(b, caps[i].created));
                add(b, o, "in_use", num_or_null(b, caps[i].in_use));
                add(b, o, "more", num_or_null(b, caps[i].more));
                add(b, o, "offered", num_or_null(b, caps[i].free_slots));
                add(b, o, "fb_room", num_or_null(b, caps[i].fb_more));
                push(b, arr, o);
        }
        return arr;
}

static json_object *gpu_ext(struct builder *b, const struct gpuh_inventory *inv, struct gpuh_gpu *g, json_object *used)
{
        const struct gpuh_pci_dev *d = g->dev;
        json_object *ext = chk(b, json_object_new_object()), *arr;

        add(b, ext, "address", str(b, d->name));
        add(b, ext, "class_code", strf(b, "0x%06x", d->class_code));
        add(b, ext, "subsystem_vendor_id", id_or_null(b, d->subsys_vendor_id));
        add(b, ext, "subsystem_device_id", id_or_null(b, d->subsys_device_id));
        add(b, ext, "revision", d->revision < 0 ? NULL : strf(b, "%02x", (unsigned) d->revision));
        add(b, ext, "boot_vga", chk(b, json_object_new_boolean(d->boot_vga)));
        add(b, ext, "root_bus", d->root_bus[0] ? str(b, d->root_bus) : NULL);

        arr = NULL;
        if (d->reset_method) {
                _cleanup_free_ char *copy = strdup(d->reset_method);
                char *save = NULL;
                arr = chk(b, json_object_new_array());
                if (!copy)
                        b->oom = true;
                for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save))
                        push(b, arr, str(b, t));
        }
        add(b, ext, "reset_method", arr);

        arr = chk(b, json_object_new_array());
        for (size_t i = 0; i < g->n_members; i++) {
                const struct gpuh_pci_dev *m = g->members[i].dev;
                json_object *o = chk(b, json_object_new_object());
                add(b, o, "address", str(b, m->name));
                add(b, o, "vendor_id", strf(b, "%04x", m->vendor_id));
                add(b, o, "device_id", strf(b, "%04x", m->device_id));
                add(b, o, "class_code", strf(b, "0x%06x", m->class_code));
                add(b, o, "driver", str(b, m->driver));
                add(b, o, "role", str(b, gpuh_role_to_string(g->members[i].role)));
                push(b, arr, o);
        }
        add(b, ext, "iommu_group_members", arr);
        add(b, ext, "iommu_group_viable",
            g->group_viable < 0 ? NULL : chk(b, json_object_new_boolean(g->group_viable)));

        arr = chk(b, json_object_new_array());
        for (unsigned bit = 0; bit < _GPUH_BLOCK_MAX; bit++)
                if (g->blockers & (1u << bit))
                        push(b, arr, str(b, gpuh_block_to_string(bit)));
        add(b, ext, "passthrough_blockers", arr);
        add(b, ext, "mdev_types", mdev_types(b, g->types, g->n_types));
        add(b, ext, "vf_mdev_types", vf_type_catalog(b, g));
        add(b, ext, "used_by", used);
        add(b, ext, "quarantined", quarantined(b, inv, g));
        add(b, ext, "layout", layout_json(b, gpuh_layouts_of(inv->layouts, g)));
        if (d->vendor_id == 0x10de)
                nvml_ext(b, inv, g, ext);
        add(b, ext, "capacity", capacity(b, inv, g));
        return ext;
}

static json_object *gpu(struct builder *b, struct gpuh_inventory *inv, struct gpuh_gpu *g)
{
        const struct gpuh_pci_dev *d = g->dev;
        json_object *o = chk(b, json_object_new_object()), *fp, *arr, *first, *used;
        struct users us;
        char a[GPUH_PCI_ADDR_MAX];

        add(b, o, "pci_address", str(b, gpuh_pci_addr_format_agent(&d->addr, a)));
        add(b, o, "vendor_id", strf(b, "%04x", d->vendor_id));
        add(b, o, "device_id", strf(b, "%04x", d->device_id));
        add(b, o, "vendor", str(b, g->vendor_name));
        add(b, o, "device", str(b, g->device_name));
        add(b, o, "driver", str(b, d->driver));
        add(b, o, "pci_class", strf(b, "%s [%04x]", g->class_name, (unsigned) (d->class_code >> 8)));
        add(b, o, "iommu_group", d->iommu_group < 0 ? NULL : strf(b, "%d", d->iommu_group));
        add(b, o, "pci_root", d->has_root_port ? str(b, gpuh_pci_addr_format(&d->root_port, a)) :
                              str(b, d->name));
        add(b, o, "numa_node", chk(b, json_object_new_int(d->numa_node)));
        add(b, o, "sriov_totalvfs", chk(b, json_object_new_int(d->sriov_totalvfs)));
        add(b, o, "sriov_numvfs", chk(b, json_object_new_int(d->sriov_numvfs)));
        vgpu_numbers(b, o, NULL);

        fp = chk(b, json_object_new_object());
        add(b, fp, "enabled", chk(b, json_object_new_int(g->blockers == 0)));
        add(b, fp, "libvirt_address", libvirt_address(b, &d->addr));
        users_lookup(b, inv, &d->addr, NULL, &us);
        used = users_json(b, inv, &us, &d->addr, NULL, &first);
        add(b, fp, "used_by_vm", first);
        add(b, o, "full_passthrough", fp);

        arr = chk(b, json_object_new_array());
        for (size_t i = 0; i < g->n_vgpus; i++)
                push(b, arr, vgpu_instance(b, inv, &g->vgpus[i]));
        {
                const struct gpuh_gpu_layout *gl = gpuh_layouts_of(inv->layouts, g);
                for (size_t i = 0; gl && gl->kind != GPUH_LAYOUT_VENDOR_VF && i < gl->n_slots; i++)
                        if (!gl->slots[i].exists)
                                push(b, arr, vgpu_on_demand(b, inv, g, gl, &gl->slots[i]));
        }
        add(b, o, "vgpu_instances", arr);
        arr = chk(b, json_object_new_array());
        {
                struct vf_shared sh = { 0 };
                for (size_t i = 0; i < g->n_vfs; i++)
                        push(b, arr, vf_instance(b, inv, &g->vfs[i], &sh));
                vf_shared_clear(&sh);
        }
        add(b, o, "vf_instances", arr);
        add(b, o, "gpuhooks", gpu_ext(b, inv, g, used));
        return o;
}

/* GPU objects are built by a pool of threads, each with its own builder, into their slots. */
struct pool {
        struct gpuh_inventory *inv;
        json_object **objs;
        atomic_size_t next;
        atomic_bool oom;
};

static void *build_worker(void *arg)
{
        struct pool *p = arg;
        struct builder b = { 0 };
        size_t i;

        while ((i = atomic_fetch_add(&p->next, 1)) < p->inv->n_gpus)
                p->objs[i] = gpu(&b, p->inv, &p->inv->gpus[i]);
        for (size_t k = 0; k < SHARED_INTS; k++)
                json_object_put(b.ints[k]);
        if (b.oom)
                atomic_store(&p->oom, true);
        return NULL;
}

int gpuh_inventory_to_json(struct gpuh_inventory *inv, unsigned max_threads, json_object **ret)
{
        struct builder b = { 0 };
        struct pool p = { .inv = inv };
        pthread_t tids[8];
        size_t started = 0, want = max_threads > 1 ? max_threads - 1 : 0;
        json_object *root, *gpus, *ext, *warn;

        if (inv->usage)
                gpuh_vm_usage_seal(inv->usage);         /* lookups from several threads */
        p.objs = calloc(inv->n_gpus + 1, sizeof(*p.objs));
        if (!p.objs)
                return -ENOMEM;
        atomic_init(&p.next, 0);
        atomic_init(&p.oom, false);
        if (want > ARRAY_SIZE(tids))
                want = ARRAY_SIZE(tids);
        if (want + 1 > inv->n_gpus)
                want = inv->n_gpus > 0 ? inv->n_gpus - 1 : 0;
        for (; started < want; started++)
                if (pthread_create(&tids[started], NULL, build_worker, &p) != 0)
                        break;
        build_worker(&p);
        for (size_t t = 0; t < started; t++)
                pthread_join(tids[t], NULL);
        b.oom = atomic_load(&p.oom);

        root = chk(&b, json_object_new_object());
        gpus = chk(&b, json_object_new_array());
        for (size_t i = 0; i < inv->n_gpus; i++) {
                if (!p.objs[i])
                        b.oom = true;
                push(&b, gpus, p.objs[i]);
        }
        free(p.objs);
        add(&b, root, "gpus", gpus);

        ext = chk(&b, json_object_new_object());
        add(&b, ext, "version", str(&b, GPUH_VERSION));
        add(&b, ext, "vm_usage", str(&b, gpuh_vm_source_to_string(
                        inv->usage ? gpuh_vm_usage_source(inv->usage) : GPUH_VM_SOURCE_NONE)));
        add(&b, ext, "iommu", chk(&b, json_object_new_boolean(inv->iommu)));
        warn = chk(&b, json_object_new_array());
        for (size_t i = 0; i < inv->warnings.n; i++)
                push(&b, warn, str(&b, inv->warnings.v[i]));
        add(&b, ext, "warnings", warn);
        add(&b, root, "gpuhooks", ext);

        for (size_t i = 0; i < SHARED_INTS; i++)
                json_object_put(b.ints[i]);
        if (b.oom) {
                json_object_put(root);
                return -ENOMEM;
        }
        *ret = root;
        return 0;
}

int gpuh_json_print(json_object *o, int pretty)
{
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
                    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);
        const char *s = json_object_to_json_string_ext(o, flags);

        if (!s || fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
                return -EIO;
        return 0;
}
