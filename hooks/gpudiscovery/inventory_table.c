/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_table.c: human-readable inventory. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "inventory_table.h"

#define ROW "%-38s %-5s %-13s %-34s %-16s %-5s %-4s %-28s %s\n"

static const char *first_user(struct gpuh_inventory *inv, const struct gpuh_pci_addr *a, const char *uuid)
{
        const struct gpuh_vm *vm = NULL;
        size_t n = 0;

        if (inv->usage)
                n = uuid ? gpuh_vm_usage_mdev(inv->usage, uuid, &vm, 1) : gpuh_vm_usage_pci(inv->usage, a, &vm, 1);
        return n > 0 ? vm->name : "-";
}

static const char *dash(const char *s)
{
        return s && *s ? s : "-";
}

int gpuh_inventory_print_table(struct gpuh_inventory *inv, FILE *f)
{
        fprintf(f, ROW, "ADDRESS", "KIND", "ID", "MODEL / PROFILE", "DRIVER", "IOMMU", "NUMA",
                "PASSTHROUGH", "USED BY");
        for (size_t i = 0; i < inv->n_gpus; i++) {
                struct gpuh_gpu *g = &inv->gpus[i];
                char id[16], grp[16], numa[16], pt[128] = "yes", model[160];

                snprintf(id, sizeof(id), "%04x:%04x", g->dev->vendor_id, g->dev->device_id);
                snprintf(grp, sizeof(grp), "%d", g->dev->iommu_group);
                snprintf(numa, sizeof(numa), "%d", g->dev->numa_node);
                snprintf(model, sizeof(model), "%s", g->device_name);
                if (g->blockers) {
                        size_t len = (size_t) snprintf(pt, sizeof(pt), "no:");
                        for (unsigned bit = 0; bit < _GPUH_BLOCK_MAX; bit++)
                                if (g->blockers & (1u << bit) && len < sizeof(pt))
                                        len += (size_t) snprintf(pt + len, sizeof(pt) - len, "%s%s",
                                                                 len > 3 ? "," : " ", gpuh_block_to_string(bit));
                }
                fprintf(f, ROW, g->dev->name, "gpu", id, model, dash(g->dev->driver),
                        g->dev->iommu_group < 0 ? "-" : grp, numa, pt,
                        first_user(inv, &g->dev->addr, NULL));

                for (size_t k = 0; k < g->n_members; k++) {
                        const struct gpuh_group_member *m = &g->members[k];
                        char addr[48];
                        if (m->role == GPUH_ROLE_GPU)
                                continue;
                        snprintf(addr, sizeof(addr), "  %s", m->dev->name);
                        snprintf(id, sizeof(id), "%04x:%04x", m->dev->vendor_id, m->dev->device_id);
                        snprintf(model, sizeof(model), "IOMMU group %s, class %06x",
                                 gpuh_role_to_string(m->role), m->dev->class_code);
                        fprintf(f, ROW, addr, "group", id, model, dash(m->dev->driver), grp, "", "",
                                first_user(inv, &m->dev->addr, NULL));
                }
                for (size_t k = 0; k < g->n_vfs; k++) {
                        const struct gpuh_vf *vf = &g->vfs[k];
                        const struct gpuh_gpu_layout *gl = NULL;
                        const struct gpuh_layout_slot *slot = gpuh_layouts_find_vf(inv->layouts, &vf->dev->addr, &gl);
                        char addr[48];

                        snprintf(addr, sizeof(addr), "  %s", vf->dev->name);
                        snprintf(id, sizeof(id), "%04x:%04x", vf->dev->vendor_id, vf->dev->device_id);
                        snprintf(grp, sizeof(grp), "%d", vf->dev->iommu_group);
                        snprintf(numa, sizeof(numa), "%d", vf->dev->numa_node);
                        if (vf->n_types > 0)
                                snprintf(model, sizeof(model), "mdev parent, %zu types", vf->n_types);
                        else if (vf->has_vendor_vgpu && slot && !vf->vendor_vgpu.current_type)
                                snprintf(model, sizeof(model), "vGPU %s (layout, set at start)",
                                         gl->profiles[slot->profile].profile);
                        else if (vf->has_vendor_vgpu)
                                snprintf(model, sizeof(model), "vGPU %s",
                                         vf->vendor_vgpu.current_type ? dash(vf->current_type_name) : "(none set)");
                        else
                                snprintf(model, sizeof(model), "%s", vf->device_name);
                        fprintf(f, ROW, addr, "vf", id, model, dash(vf->dev->driver),
                                vf->dev->iommu_group < 0 ? "-" : grp, numa, "",
                                first_user(inv, &vf->dev->addr, NULL));
                }
                for (size_t k = 0; k < g->n_vgpus; k++) {
                        const struct gpuh_vgpu_instance *v = &g->vgpus[k];
                        char addr[48], parent[GPUH_PCI_ADDR_MAX];

                        snprintf(addr, sizeof(addr), "  %s", v->mdev->uuid);
                        snprintf(model, sizeof(model), "%s on %s",
                                 v->type && v->type->name ? v->type->name : dash(v->mdev->type_id),
                                 gpuh_pci_addr_format(&v->mdev->parent, parent));
                        fprintf(f, ROW, addr, "vgpu", dash(v->mdev->type_id), model, "", "", "", "",
                                first_user(inv, NULL, v->mdev->uuid));
                }
                /* a layout's mdev slots not created yet (docs/layouts.md) */
                for (size_t k = 0; gpuh_layouts_of(inv->layouts, g) && k < gpuh_layouts_of(inv->layouts, g)->n_slots; k++) {
                        const struct gpuh_gpu_layout *gl = gpuh_layouts_of(inv->layouts, g);
                        const struct gpuh_layout_slot *sl = &gl->slots[k];
                        char addr[48], parent[GPUH_PCI_ADDR_MAX];

                        if (sl->exists || gl->kind == GPUH_LAYOUT_VENDOR_VF)
                                continue;
                        snprintf(addr, sizeof(addr), "  %s", sl->uuid);
                        snprintf(model, sizeof(model), "%s on %s (layout, created at start)",
                                 gl->profiles[sl->profile].type_name, gpuh_pci_addr_format(&sl->parent, parent));
                        fprintf(f, ROW, addr, "slot", gl->profiles[sl->profile].type_id, model, "", "", "", "",
                                first_user(inv, NULL, sl->uuid));
                }
        }
        if (inv->n_gpus == 0)
                fprintf(f, "(no GPUs)\n");
        for (size_t i = 0; i < inv->warnings.n; i++)
                fprintf(f, "warning: %s\n", inv->warnings.v[i]);
        return fflush(f) == EOF || ferror(f) ? -EIO : 0;
}
