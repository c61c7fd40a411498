/* SPDX-License-Identifier: Apache-2.0 */
/* status.c: what holds each GPU device of the host (gpuhooksctl status). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capacity.h"
#include "layout.h"
#include "status.h"
#include "strtable.h"

static const char *const dev_kind_table[_GPUH_DEV_KIND_MAX] = {
        [GPUH_DEV_GPU] = "gpu", [GPUH_DEV_VF] = "vf", [GPUH_DEV_MDEV] = "mdev", [GPUH_DEV_SLOT] = "slot",
};

static const char *const dev_state_table[_GPUH_DEV_STATE_MAX] = {
        [GPUH_DEV_QUARANTINED] = "quarantined", [GPUH_DEV_IN_USE] = "in-use", [GPUH_DEV_RESERVED] = "reserved",
        [GPUH_DEV_JOURNALED] = "journaled", [GPUH_DEV_DRIVERLESS] = "driverless", [GPUH_DEV_SHARED] = "shared",
        [GPUH_DEV_BLOCKED] = "blocked", [GPUH_DEV_CARVED] = "carved", [GPUH_DEV_FREE] = "free",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_dev_kind, enum gpuh_dev_kind, dev_kind_table, "?")
GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_dev_state, enum gpuh_dev_state, dev_state_table, "?")

struct rows {
        struct gpuh_dev_status *v;
        size_t n;
};

static struct gpuh_dev_status *rows_add(struct rows *r, enum gpuh_dev_kind kind, const char *id, const char *gpu,
                                        const char *profile)
{
        struct gpuh_dev_status *nv = reallocarray(r->v, r->n + 1, sizeof(*nv));

        if (!nv)
                return NULL;
        r->v = nv;
        nv = &r->v[r->n++];
        *nv = (struct gpuh_dev_status) { .kind = kind, .state = GPUH_DEV_FREE };
        snprintf(nv->id, sizeof(nv->id), "%s", id);
        snprintf(nv->gpu, sizeof(nv->gpu), "%s", gpu);
        snprintf(nv->profile, sizeof(nv->profile), "%s", profile && *profile ? profile : "-");
        return nv;
}

static void set(struct gpuh_dev_status *d, enum gpuh_dev_state st, const char *domain, const char *detail)
{
        d->state = st;
        snprintf(d->domain, sizeof(d->domain), "%s", domain ? domain : "");
        snprintf(d->detail, sizeof(d->detail), "%s", detail ? detail : "");
}

/* The live reservation holding PCI function @a (itself, an mdev to be made on it, a vendor
 * type to be set on it), or NULL. */
static const struct gpuh_reservation *reserved_pci(const struct gpuh_status_input *in, const struct gpuh_pci_addr *a)
{
        for (size_t i = 0; i < in->n_res; i++) {
                if (!gpuh_reservation_live(&in->res[i], in->now))
                        continue;
                for (size_t k = 0; k < in->res[i].n_devices; k++) {
                        const struct gpuh_alloc *d = &in->res[i].devices[k];
                        if (gpuh_alloc_holds_pci(d, a) || (d->kind == GPUH_ALLOC_MDEV && d->mdev_new &&
                                                           gpuh_pci_addr_cmp(&d->parent, a) == 0) ||
                            (d->kind == GPUH_ALLOC_VENDOR_VGPU && gpuh_pci_addr_cmp(&d->addr, a) == 0))
                                return &in->res[i];
                }
        }
        return NULL;
}

static const struct gpuh_reservation *reserved_mdev(const struct gpuh_status_input *in, const char *uuid)
{
        for (size_t i = 0; i < in->n_res; i++) {
                if (!gpuh_reservation_live(&in->res[i], in->now))
                        continue;
                for (size_t k = 0; k < in->res[i].n_devices; k++)
                        if (in->res[i].devices[k].kind == GPUH_ALLOC_MDEV && strcasecmp(in->res[i].devices[k].uuid, uuid) == 0)
                                return &in->res[i];
        }
        return NULL;
}

/* The journal naming PCI function @a (or, with @uuid, that mdev), or NULL. */
static const struct gpuh_journal *journaled(const struct gpuh_status_input *in, const struct gpuh_pci_addr *a,
                                            const char *uuid)
{
        for (size_t i = 0; i < in->n_journals; i++) {
                const struct gpuh_journal *j = in->journals[i];
                for (size_t k = 0; k < j->n; k++) {
                        const struct gpuh_jentry *e = &j->e[k];
                        if (uuid ? e->op == GPUH_JOP_MDEV && strcasecmp(e->uuid, uuid) == 0
                                 : gpuh_pci_addr_cmp(&e->dev, a) == 0)
                                return j;
                }
        }
        return NULL;
}

static const char *first_user(struct gpuh_inventory *inv, const struct gpuh_pci_addr *a, const char *uuid,
                              char *state, size_t size)
{
        const struct gpuh_vm *vm = NULL;
        size_t n = 0;

        if (inv->usage)
                n = uuid ? gpuh_vm_usage_mdev(inv->usage, uuid, &vm, 1) : gpuh_vm_usage_pci(inv->usage, a, &vm, 1);
        if (n == 0)
                return NULL;
        snprintf(state, size, "domain %s", gpuh_vm_state_to_string(vm->state));
        return vm->name;
}

/* Whether @domain runs, as far as the usage can tell (true when it cannot: nothing is called
 * stuck on no evidence). */
static bool domain_runs(struct gpuh_inventory *inv, const char *domain)
{
        const struct gpuh_vm *vm;

        if (!inv->usage || gpuh_vm_usage_source(inv->usage) == GPUH_VM_SOURCE_NONE)
                return true;
        vm = gpuh_vm_usage_find(inv->usage, domain);
        return vm && gpuh_vm_state_is_active(vm->state);
}

/* The states every kind shares, in precedence order; false when none applies. */
static bool common_state(const struct gpuh_status_input *in, struct gpuh_dev_status *d, const struct gpuh_pci_addr *a,
                         const char *uuid)
{
        const struct gpuh_quarantined *q = a ? gpuh_quarantine_find(in->inv->quarantined, in->inv->n_quarantined, a) : NULL;
        const struct gpuh_reservation *res;
        const struct gpuh_journal *j;
        const char *user;
        char buf[160];

        if (q) {
                set(d, GPUH_DEV_QUARANTINED, q->domain, q->reason);
                return true;
        }
        if ((user = first_user(in->inv, a, uuid, buf, sizeof(buf)))) {
                set(d, GPUH_DEV_IN_USE, user, buf);
                return true;
        }
        res = uuid ? reserved_mdev(in, uuid) : reserved_pci(in, a);
        j = journaled(in, a, uuid);
        if (res) {
                bool running = res->state && streq(res->state, "running");
                bool gone = running && !domain_runs(in->inv, res->domain);

                /* a running reservation whose domain no longer runs is a stop whose release did
                 * not happen: shown as what its journal left, else as the reservation */
                if (!gone || !j || !streq(j->domain, res->domain)) {
                        char detail[320];
                        snprintf(detail, sizeof(detail), "%s", !running ? "reservation pending start"
                                 : gone ? "reservation running, the domain does not run: gpuhooksctl release it"
                                        : "reservation running");
                        set(d, GPUH_DEV_RESERVED, res->domain, detail);
                        d->until = running ? 0 : res->expires;
                        return true;
                }
        }
        if (j) {
                snprintf(buf, sizeof(buf), "%zu journal entr%s, the domain does not run: gpuhooksctl release it", j->n,
                         j->n == 1 ? "y" : "ies");
                set(d, GPUH_DEV_JOURNALED, j->domain, buf);
                return true;
        }
        return false;
}

static bool has_mdev_on(const struct gpuh_gpu *g, const struct gpuh_pci_addr *parent, const char **uuid)
{
        for (size_t i = 0; i < g->n_vgpus; i++)
                if (gpuh_pci_addr_cmp(&g->vgpus[i].mdev->parent, parent) == 0) {
                        *uuid = g->vgpus[i].mdev->uuid;
                        return true;
                }
        return false;
}

static int gpu_rows(const struct gpuh_status_input *in, const struct gpuh_gpu *g, struct rows *rows)
{
        struct gpuh_dev_status *d = rows_add(rows, GPUH_DEV_GPU, g->dev->name, g->dev->name, g->device_name);

        if (!d)
                return -ENOMEM;
        if (!common_state(in, d, &g->dev->addr, NULL)) {
                char why[128] = "";
                size_t len = 0;

                for (unsigned bit = 0; bit < _GPUH_BLOCK_MAX; bit++)
                        if (g->blockers & (1u << bit) && len < sizeof(why))
                                len += (size_t) snprintf(why + len, sizeof(why) - len, "%s%s", len ? "," : "",
                                                         gpuh_block_to_string(bit));
                if (!g->dev->driver || !*g->dev->driver)
                        set(d, GPUH_DEV_DRIVERLESS, NULL, "no driver bound");
                else if (g->blockers & (GPUH_BLOCK_VFS_ENABLED | GPUH_BLOCK_MDEVS))
                        set(d, GPUH_DEV_SHARED, NULL, why);
                else if (g->blockers)
                        set(d, GPUH_DEV_BLOCKED, NULL, why);
        }

        for (size_t v = 0; v < g->n_vfs; v++) {
                const struct gpuh_vf *vf = &g->vfs[v];
                const struct gpuh_gpu_layout *gl = NULL;
                const struct gpuh_layout_slot *slot;
                const char *uuid = NULL;
                char detail[96], gi[64];

                d = rows_add(rows, GPUH_DEV_VF, vf->dev->name, g->dev->name,
                             vf->has_vendor_vgpu && vf->vendor_vgpu.current_type ? vf->current_type_name : vf->device_name);
                if (!d)
                        return -ENOMEM;
                if (vf->has_vendor_vgpu && vf->vendor_vgpu.current_type && !vf->current_type_name)
                        snprintf(d->profile, sizeof(d->profile), "vGPU type %u", vf->vendor_vgpu.current_type);
                if (common_state(in, d, &vf->dev->addr, NULL))
                        continue;
                if (vf->has_vendor_vgpu && !vf->vendor_vgpu.current_type &&
                    (slot = gpuh_layouts_find_vf(in->inv->layouts, &vf->dev->addr, &gl))) {
                        /* a layout's VF: advertised under its profile, the type set at start */
                        snprintf(d->profile, sizeof(d->profile), "%s", gl->profiles[slot->profile].profile);
                        snprintf(d->detail, sizeof(d->detail), "layout slot %u, its vGPU type set at start%s",
                                 slot->number, gpuh_layout_slot_gi_text(slot, gi));
                }
                if (!vf->dev->driver || !*vf->dev->driver)
                        set(d, GPUH_DEV_DRIVERLESS, NULL, "no driver bound");
                else if (has_mdev_on(g, &vf->dev->addr, &uuid)) {
                        snprintf(detail, sizeof(detail), "vGPU %s on it", uuid);
                        set(d, GPUH_DEV_SHARED, NULL, detail);
                } else if (vf->has_vendor_vgpu && vf->vendor_vgpu.current_type)
                        set(d, GPUH_DEV_CARVED, NULL, "vGPU type set, no domain uses it");
        }

        for (size_t k = 0; k < g->n_vgpus; k++) {
                const struct gpuh_vgpu_instance *v = &g->vgpus[k];
                char parent[GPUH_PCI_ADDR_MAX];

                d = rows_add(rows, GPUH_DEV_MDEV, v->mdev->uuid, g->dev->name,
                             v->type && v->type->name ? v->type->name : v->mdev->type_id);
                if (!d)
                        return -ENOMEM;
                if (!common_state(in, d, NULL, v->mdev->uuid)) {
                        char detail[64];
                        snprintf(detail, sizeof(detail), "on %s, no domain uses it",
                                 gpuh_pci_addr_format(&v->mdev->parent, parent));
                        set(d, GPUH_DEV_CARVED, NULL, detail);
                }
        }

        /* a layout's mdev slots not created yet: free (created at start) unless a domain names,
         * reserves or journaled its UUID */
        for (size_t k = 0; gpuh_layouts_of(in->inv->layouts, g) && k < gpuh_layouts_of(in->inv->layouts, g)->n_slots; k++) {
                const struct gpuh_gpu_layout *gl = gpuh_layouts_of(in->inv->layouts, g);
                const struct gpuh_layout_slot *sl = &gl->slots[k];
                char parent[GPUH_PCI_ADDR_MAX], gi[64];

                if (sl->exists || gl->kind == GPUH_LAYOUT_VENDOR_VF)
                        continue;
                d = rows_add(rows, GPUH_DEV_SLOT, sl->uuid, g->dev->name, gl->profiles[sl->profile].type_name);
                if (!d)
                        return -ENOMEM;
                if (!common_state(in, d, NULL, sl->uuid))
                        snprintf(d->detail, sizeof(d->detail), "layout slot %u on %s, created at start%s", sl->number,
                                 gpuh_pci_addr_format(&sl->parent, parent), gpuh_layout_slot_gi_text(sl, gi));
        }
        return 0;
}

int gpuh_status_collect(const struct gpuh_status_input *in, struct gpuh_dev_status **ret, size_t *ret_n)
{
        struct rows rows = { 0 };

        for (size_t i = 0; i < in->inv->n_gpus; i++)
                if (gpu_rows(in, &in->inv->gpus[i], &rows) < 0) {
                        free(rows.v);
                        return -ENOMEM;
                }
        *ret = rows.v;
        *ret_n = rows.n;
        return (int) rows.n;
}

int gpuh_status_promised(const struct gpuh_status_input *in, struct gpuh_reservation **ret_live, struct gpuh_promised *ret)
{
        struct gpuh_reservation *live = calloc(in->n_res + 1, sizeof(*live));
        size_t n = 0;

        if (!live)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_res; i++)
                if (gpuh_reservation_live(&in->res[i], in->now))
                        live[n++] = in->res[i];         /* shallow: the caller's array owns them */
        *ret_live = live;
        *ret = (struct gpuh_promised) { .res = live, .n_res = n };
        return 0;
}
