/* SPDX-License-Identifier: Apache-2.0 */
/* select_refusal.c: why a request gets nothing: the GPUs that refused it, for its error line. */
#include <stdio.h>

#include "select_internal.h"

/* Note GPU @g as out of framebuffer for the request being answered (once). */
void sel_note_full(struct sel *c, const struct gpuh_gpu *g, const struct gpuh_fb_room *room)
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
const char *sel_full_list(const struct sel *c, char *buf, size_t size)
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

/* Note GPU @g as refusing the request's size in equal-size mode (once). */
void sel_note_mode(struct sel *c, const struct gpuh_gpu *g, unsigned type, bool assumed)
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
const char *sel_mode_list(const struct sel *c, char *buf, size_t size)
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
const char *sel_users_of_type(const struct sel *c, unsigned type, const char *profile, char *buf, size_t size)
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
                            !(who = sel_holder_pci(c, &vf->dev->addr)))
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
