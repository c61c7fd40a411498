/* SPDX-License-Identifier: Apache-2.0 */
/* select_vgpu.c: NVIDIA vendor vGPU types: their size, MIG-backed or time-sliced, and the
 * time-sliced equal-size mode that keeps one size per GPU. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "select_internal.h"

/* Framebuffer (MiB) of vendor vGPU type @id on @g: NVML's word, else its name's; -1 unknown. */
int64_t sel_vtype_fb(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned id)
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
bool sel_vtype_is_mig(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, unsigned id)
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
unsigned sel_other_size_on(const struct sel *c, const struct gpuh_gpu *g, int64_t want)
{
        struct gpuh_inventory *inv = c->in->inv;

        for (size_t v = 0; v < g->n_vfs; v++) {
                unsigned t = g->vfs[v].has_vendor_vgpu ? g->vfs[v].vendor_vgpu.current_type : 0;
                int64_t fb = t && g->vfs[v].vendor_vgpu.gpu_instance_id < 0 && !sel_vtype_is_mig(inv, g, t) ?
                             sel_vtype_fb(inv, g, t) : -1;
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
                        fb = sel_vtype_is_mig(inv, g, d[k].vgpu_type) ? -1 : sel_vtype_fb(inv, g, d[k].vgpu_type);
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
int64_t sel_mig_room(const struct sel *c, const struct gpuh_gpu *g, unsigned type)
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
bool sel_equal_size_busy(const struct gpuh_inventory *inv)
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


/* A vendor vGPU type named @profile (or its number): its id, 0 when unknown. */
unsigned sel_vgpu_type_id(const struct gpuh_inventory *inv, const char *profile)
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

bool sel_has_type(const struct gpuh_vendor_vgpu *v, unsigned id)
{
        for (size_t k = 0; k < v->n_creatable; k++)
                if (v->creatable[k].id == id)
                        return true;
        return false;
}

