/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_json_instances.c: a GPU's "vgpu_instances" (its mdevs, and a layout's slots not
 * created yet) and "vf_instances", each with its gpuhooks object. */
#include <stdlib.h>
#include <string.h>

#include "inventory_json_internal.h"

/* A VF's types as {type id: available instances}; the rest is in the GPU's vf_mdev_types.
 * One object per VF, not one per type: a 16-VF GPU offers hundreds of type entries. */
static json_object *vf_mdev_types(struct builder *b, const struct gpuh_mdev_type *t, size_t n)
{
        json_object *o = chk(b, json_object_new_object());

        for (size_t i = 0; i < n; i++)
                add(b, o, t[i].type_id, num_or_null(b, t[i].available_instances));
        return o;
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

json_object *ij_vgpu_instance(struct builder *b, struct gpuh_inventory *inv,
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
        ij_users_lookup(b, inv, NULL, v->mdev->uuid, &us);
        used = ij_users_json(b, inv, &us, NULL, v->mdev->uuid, &first);
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
json_object *ij_vgpu_on_demand(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_gpu *g,
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
        ij_users_lookup(b, inv, NULL, s->uuid, &us);
        used = ij_users_json(b, inv, &us, NULL, s->uuid, &first);
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

void ij_vf_shared_clear(struct vf_shared *sh)
{
        json_object_put(sh->vendor_id);
        json_object_put(sh->device_id_o);
        json_object_put(sh->device);
        json_object_put(sh->driver);
}

json_object *ij_vf_instance(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_vf *vf,
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
        ij_users_lookup(b, inv, &vf->dev->addr, NULL, &us);
        used = ij_users_json(b, inv, &us, &vf->dev->addr, NULL, &first);
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

