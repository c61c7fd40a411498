/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_table.c: human-readable inventory. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory_table.h"
#include "table.h"

enum { C_ADDR, C_KIND, C_ID, C_MODEL, C_DRIVER, C_GROUP, C_NUMA, C_PT, C_USED, N_COLS };

static const char *const headers[N_COLS] = {
        "ADDRESS", "KIND", "ID", "MODEL / PROFILE", "DRIVER", "IOMMU", "NUMA", "PASSTHROUGH", "USED BY",
};

static const char *first_user(struct gpuh_inventory *inv, const struct gpuh_pci_addr *a, const char *uuid)
{
        const struct gpuh_vm *vm = NULL;
        size_t n = 0;

        if (inv->usage)
                n = uuid ? gpuh_vm_usage_mdev(inv->usage, uuid, &vm, 1) : gpuh_vm_usage_pci(inv->usage, a, &vm, 1);
        return n > 0 ? vm->name : NULL;
}

static const char *dash(const char *s)
{
        return s && *s ? s : "-";
}

bool gpuh_gpu_matches(const struct gpuh_gpu *g, const struct gpuh_pci_addr *a)
{
        if (gpuh_pci_addr_cmp(&g->dev->addr, a) == 0)
                return true;
        for (size_t v = 0; v < g->n_vfs; v++)
                if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, a) == 0)
                        return true;
        for (size_t m = 0; m < g->n_members; m++)
                if (gpuh_pci_addr_cmp(&g->members[m].dev->addr, a) == 0)
                        return true;
        return false;
}

char *gpuh_capacity_summary(const struct gpuh_profile_cap *c, char *buf, size_t size)
{
        if (c->more < 0)
                snprintf(buf, size, "%" PRId64 " in use, ? more", c->in_use);
        else
                snprintf(buf, size, "%" PRId64 " in use, %" PRId64 " more", c->in_use, c->more);
        return buf;
}

static int row(struct gpuh_table *t, const char *addr, const char *kind, const char *id, const char *model,
               const char *driver, const char *grp, const char *numa, const char *pt, const char *used)
{
        const char *cells[N_COLS] = { addr, kind, id, model, driver, grp, numa, pt, used };

        return gpuh_table_add(t, cells);
}

static bool vf_free(struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_vf *vf)
{
        if (first_user(inv, &vf->dev->addr, NULL) || gpuh_quarantine_find(inv->quarantined, inv->n_quarantined, &vf->dev->addr))
                return false;
        for (size_t i = 0; i < g->n_vgpus; i++)
                if (gpuh_pci_addr_cmp(&g->vgpus[i].mdev->parent, &vf->dev->addr) == 0)
                        return false;
        return true;
}

/* The GPU's own row: its ids, IOMMU group, NUMA node, and passthrough: "yes", or "no:" and
 * its blockers. */
static int gpu_row(struct gpuh_inventory *inv, const struct gpuh_gpu *g, struct gpuh_table *t)
{
        char id[16], grp[16], numa[16], pt[128] = "yes";

        snprintf(id, sizeof(id), "%04x:%04x", g->dev->vendor_id, g->dev->device_id);
        snprintf(grp, sizeof(grp), "%d", g->dev->iommu_group);
        snprintf(numa, sizeof(numa), "%d", g->dev->numa_node);
        if (g->blockers) {
                size_t len = (size_t) snprintf(pt, sizeof(pt), "no:");
                for (unsigned bit = 0; bit < _GPUH_BLOCK_MAX; bit++)
                        if (g->blockers & (1u << bit) && len < sizeof(pt))
                                len += (size_t) snprintf(pt + len, sizeof(pt) - len, "%s%s", len > 3 ? "," : " ",
                                                         gpuh_block_to_string(bit));
        }
        return row(t, g->dev->name, "gpu", id, dash(g->device_name), dash(g->dev->driver), g->dev->iommu_group < 0 ? "-" : grp,
                   numa, pt, dash(first_user(inv, &g->dev->addr, NULL)));
}

/* The other functions of the GPU's IOMMU group. */
static int member_rows(struct gpuh_inventory *inv, const struct gpuh_gpu *g, struct gpuh_table *t)
{
        char id[16], grp[16], model[160], addr[64];
        int r = 0;

        snprintf(grp, sizeof(grp), "%d", g->dev->iommu_group);
        for (size_t k = 0; k < g->n_members && r == 0; k++) {
                const struct gpuh_group_member *m = &g->members[k];

                if (m->role == GPUH_ROLE_GPU)
                        continue;
                snprintf(addr, sizeof(addr), "  %s", m->dev->name);
                snprintf(id, sizeof(id), "%04x:%04x", m->dev->vendor_id, m->dev->device_id);
                snprintf(model, sizeof(model), "IOMMU group %s, class %06x", gpuh_role_to_string(m->role),
                         m->dev->class_code);
                r = row(t, addr, "group", id, model, dash(m->dev->driver), grp, "", "",
                        dash(first_user(inv, &m->dev->addr, NULL)));
        }
        return r;
}

/* A VF's row, its model what it carries: mdev types, a vendor vGPU type (or a layout's to
 * set), or nothing (its PCI name). With @free_only, none for a VF not free. */
static int vf_row(struct gpuh_inventory *inv, const struct gpuh_gpu *g, const struct gpuh_vf *vf, bool free_only,
                  struct gpuh_table *t)
{
        const struct gpuh_gpu_layout *gl = NULL;
        const struct gpuh_layout_slot *slot = gpuh_layouts_find_vf(inv->layouts, &vf->dev->addr, &gl);
        char id[16], grp[16], numa[16], model[160], addr[64], gi[64];

        if (free_only && !vf_free(inv, g, vf))
                return 0;
        snprintf(addr, sizeof(addr), "  %s", vf->dev->name);
        snprintf(id, sizeof(id), "%04x:%04x", vf->dev->vendor_id, vf->dev->device_id);
        snprintf(grp, sizeof(grp), "%d", vf->dev->iommu_group);
        snprintf(numa, sizeof(numa), "%d", vf->dev->numa_node);
        if (vf->n_types > 0)
                snprintf(model, sizeof(model), "mdev parent, %zu types", vf->n_types);
        else if (vf->has_vendor_vgpu && slot && !vf->vendor_vgpu.current_type)
                snprintf(model, sizeof(model), "vGPU %s (layout, set at start%s)",
                         gl->profiles[slot->profile].profile, gpuh_layout_slot_gi_text(slot, gi));
        else if (vf->has_vendor_vgpu)
                snprintf(model, sizeof(model), "vGPU %s",
                         vf->vendor_vgpu.current_type ? dash(vf->current_type_name) : "(none set)");
        else
                snprintf(model, sizeof(model), "%s", dash(vf->device_name));
        return row(t, addr, "vf", id, model, dash(vf->dev->driver), vf->dev->iommu_group < 0 ? "-" : grp, numa, "",
                   dash(first_user(inv, &vf->dev->addr, NULL)));
}

/* A layout's mdev slots not created yet (docs/layouts.md). */
static int slot_rows(struct gpuh_inventory *inv, const struct gpuh_gpu *g, bool free_only, struct gpuh_table *t)
{
        const struct gpuh_gpu_layout *gl = gpuh_layouts_of(inv->layouts, g);
        char model[160], gi[64];
        int r = 0;

        for (size_t k = 0; gl && k < gl->n_slots && r == 0; k++) {
                const struct gpuh_layout_slot *sl = &gl->slots[k];
                const char *user = first_user(inv, NULL, sl->uuid);
                char addr[64], parent[GPUH_PCI_ADDR_MAX];

                if (sl->exists || gl->kind == GPUH_LAYOUT_VENDOR_VF || (free_only && user))
                        continue;
                snprintf(addr, sizeof(addr), "  %s", sl->uuid);
                snprintf(model, sizeof(model), "%s on %s (layout, created at start%s)",
                         gl->profiles[sl->profile].type_name, gpuh_pci_addr_format(&sl->parent, parent),
                         gpuh_layout_slot_gi_text(sl, gi));
                r = row(t, addr, "slot", gl->profiles[sl->profile].type_id, model, "", "", "", "", dash(user));
        }
        return r;
}

/* The GPU's mdevs, then its layout's mdev slots not created yet (docs/layouts.md); with
 * @free_only, those no domain uses. */
static int vgpu_rows(struct gpuh_inventory *inv, const struct gpuh_gpu *g, bool free_only, struct gpuh_table *t)
{
        char model[160], addr[64];
        int r = 0;

        for (size_t k = 0; k < g->n_vgpus && r == 0; k++) {
                const struct gpuh_vgpu_instance *v = &g->vgpus[k];
                const char *user = first_user(inv, NULL, v->mdev->uuid);
                char parent[GPUH_PCI_ADDR_MAX];

                if (free_only && user)
                        continue;
                snprintf(addr, sizeof(addr), "  %s", v->mdev->uuid);
                snprintf(model, sizeof(model), "%s on %s", v->type && v->type->name ? v->type->name : dash(v->mdev->type_id),
                         gpuh_pci_addr_format(&v->mdev->parent, parent));
                r = row(t, addr, "vgpu", dash(v->mdev->type_id), model, "", "", "", "", dash(user));
        }
        return r == 0 ? slot_rows(inv, g, free_only, t) : r;
}

/* The GPU's profiles, with what is created and in use and how many more fit. */
static int profile_rows(const struct gpuh_profile_cap *caps, size_t n_caps, bool free_only, struct gpuh_table *t)
{
        int r = 0;

        for (size_t k = 0; k < n_caps && r == 0; k++) {
                const struct gpuh_profile_cap *c = &caps[k];
                char sum[64];

                /* a profile that exists or has room; --free: with room */
                if (free_only ? c->more == 0 : c->created == 0 && c->more == 0)
                        continue;
                r = row(t, "  profile", gpuh_cap_kind_to_string(c->kind), dash(c->type_id), c->name, "", "", "", "",
                        gpuh_capacity_summary(c, sum, sizeof(sum)));
        }
        return r;
}

/* One GPU's rows: itself, the rest of its IOMMU group (not with --free), its VFs, its vGPUs
 * and slots, its profiles; with --free, nothing for a GPU without room. Returns 0; -ENOMEM. */
static int gpu_rows(struct gpuh_inventory *inv, struct gpuh_gpu *g, const struct gpuh_table_filter *flt,
                    struct gpuh_table *t)
{
        _cleanup_free_ struct gpuh_profile_cap *caps = NULL;
        bool free_only = flt && flt->free_only, room = false;
        size_t n_caps = 0;
        int r;

        r = gpuh_gpu_capacity(inv, g, NULL, &caps, &n_caps);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_caps; i++)
                room = room || caps[i].more != 0;
        if (free_only && !room)
                return 0;
        r = gpu_row(inv, g, t);
        if (r == 0 && !free_only)
                r = member_rows(inv, g, t);
        for (size_t k = 0; k < g->n_vfs && r == 0; k++)
                r = vf_row(inv, g, &g->vfs[k], free_only, t);
        if (r == 0)
                r = vgpu_rows(inv, g, free_only, t);
        if (r == 0)
                r = profile_rows(caps, n_caps, free_only, t);
        return r;
}

int gpuh_inventory_print_table(struct gpuh_inventory *inv, const struct gpuh_table_filter *flt, FILE *f)
{
        _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL;
        size_t shown = 0;
        int r;

        r = gpuh_table_new(N_COLS, headers, &t);
        if (r < 0)
                return r;
        for (size_t i = 0; i < inv->n_gpus && r == 0; i++) {
                if (flt && flt->gpu && !gpuh_gpu_matches(&inv->gpus[i], flt->gpu))
                        continue;
                shown++;
                r = gpu_rows(inv, &inv->gpus[i], flt, t);
        }
        if (r < 0)
                return r;
        r = gpuh_table_print(t, f);
        if (r < 0)
                return r;
        if (inv->n_gpus == 0)
                fprintf(f, "(no GPUs)\n");
        else if (shown == 0)
                fprintf(f, "(no GPU at that address)\n");
        for (size_t i = 0; i < inv->warnings.n; i++)
                fprintf(f, "warning: %s\n", inv->warnings.v[i]);
        return fflush(f) == EOF || ferror(f) ? -EIO : 0;
}
