/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_json_ext.c: the "gpuhooks" object of a GPU, gpuhooks' own fields beside the
 * agent's: PCI details, the IOMMU group, types, quarantine, layout, NVML, capacity. */
#include <stdlib.h>
#include <string.h>

#include "capacity.h"
#include "inventory_json_internal.h"

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

json_object *ij_gpu_ext(struct builder *b, const struct gpuh_inventory *inv, struct gpuh_gpu *g, json_object *used)
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

