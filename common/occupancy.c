/* SPDX-License-Identifier: Apache-2.0 */
/* occupancy.c: other domains' reservations and journals, and the quarantine, as one answer. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "occupancy.h"

static bool other(const struct gpuh_occupancy *o, const char *domain)
{
        return !o->self || !streq(o->self, domain);
}

static const struct gpuh_reservation *live_reservation(const struct gpuh_occupancy *o, const char *domain)
{
        for (size_t i = 0; i < o->n_res; i++)
                if (streq(o->res[i].domain, domain) && gpuh_reservation_live(&o->res[i], o->now))
                        return &o->res[i];
        return NULL;
}

/* Does device @d give its domain @a, something of @a, or all of @pf? */
static bool alloc_touches(const struct gpuh_alloc *d, const struct gpuh_pci_addr *a, const struct gpuh_pci_addr *pf)
{
        if (gpuh_alloc_holds_pci(d, a))
                return true;
        if (d->kind != GPUH_ALLOC_PCI && gpuh_pci_addr_cmp(&d->parent, a) == 0)
                return true;    /* a VF, an mdev or a vGPU of @a */
        return pf && gpuh_alloc_holds_pci(d, pf);
}

bool gpuh_occupancy_pci(const struct gpuh_occupancy *o, const struct gpuh_pci_addr *a, const struct gpuh_pci_addr *pf,
                        char *why, size_t size)
{
        const struct gpuh_quarantined *q = gpuh_quarantine_find(o->quarantined, o->n_quarantined, a);
        char key[GPUH_PCI_ADDR_MAX + 8], pkey[GPUH_PCI_ADDR_MAX + 8], n[GPUH_PCI_ADDR_MAX];

        if (!q && pf)
                q = gpuh_quarantine_find(o->quarantined, o->n_quarantined, pf);
        if (q) {
                char t[32] = "an unknown time";
                time_t since = (time_t) q->since;
                struct tm tm;

                if (q->since > 0 && gmtime_r(&since, &tm))
                        strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
                snprintf(why, size, "%s is quarantined since %s: %s", gpuh_pci_addr_format(&q->addr, n), t, q->reason);
                return true;
        }
        for (size_t i = 0; i < o->n_res; i++) {
                const struct gpuh_reservation *r = &o->res[i];

                if (!other(o, r->domain) || !gpuh_reservation_live(r, o->now))
                        continue;
                for (size_t k = 0; k < r->n_devices; k++)
                        if (alloc_touches(&r->devices[k], a, pf)) {
                                snprintf(why, size, "reserved for %s", r->domain);
                                return true;
                        }
        }
        snprintf(key, sizeof(key), "pci-%s", gpuh_pci_addr_format(a, n));
        if (pf)
                snprintf(pkey, sizeof(pkey), "pci-%s", gpuh_pci_addr_format(pf, n));
        for (size_t i = 0; i < o->n_journals; i++) {
                const struct gpuh_journal *j = o->journals[i];

                if (!other(o, j->domain) || !live_reservation(o, j->domain))
                        continue;
                for (size_t k = 0; k < j->n; k++) {
                        const struct gpuh_jentry *e = &j->e[k];
                        char ek[GPUH_PCI_ADDR_MAX + 48];

                        gpuh_jentry_key(e, ek, sizeof(ek));
                        if (streq(ek, key) || (pf && streq(ek, pkey) && e->op == GPUH_JOP_DRIVER) ||
                            (e->op == GPUH_JOP_MDEV && gpuh_pci_addr_cmp(&e->dev, a) == 0)) {
                                snprintf(why, size, "in use by %s (its journal)", j->domain);
                                return true;
                        }
                }
        }
        return false;
}

bool gpuh_occupancy_mdev(const struct gpuh_occupancy *o, const char *uuid, char *why, size_t size)
{
        char key[64];

        for (size_t i = 0; i < o->n_res; i++) {
                const struct gpuh_reservation *r = &o->res[i];

                if (!other(o, r->domain) || !gpuh_reservation_live(r, o->now))
                        continue;
                for (size_t k = 0; k < r->n_devices; k++)
                        if (r->devices[k].kind == GPUH_ALLOC_MDEV && streq(r->devices[k].uuid, uuid)) {
                                snprintf(why, size, "reserved for %s", r->domain);
                                return true;
                        }
        }
        snprintf(key, sizeof(key), "mdev-%s", uuid);
        for (size_t i = 0; i < o->n_journals; i++) {
                const struct gpuh_journal *j = o->journals[i];

                if (other(o, j->domain) && live_reservation(o, j->domain) && gpuh_journal_find(j, key, -1) >= 0) {
                        snprintf(why, size, "in use by %s (its journal)", j->domain);
                        return true;
                }
        }
        return false;
}

/* A domain other than the asking one that uses @a (or mdev @uuid). */
static const char *user_of(const struct gpuh_occupancy *o, const struct gpuh_pci_addr *a, const char *uuid)
{
        const struct gpuh_vm *vms[8];
        size_t n;

        if (!o->usage)
                return NULL;
        n = uuid ? gpuh_vm_usage_mdev(o->usage, uuid, vms, ARRAY_SIZE(vms))
                 : gpuh_vm_usage_pci(o->usage, a, vms, ARRAY_SIZE(vms));
        for (size_t i = 0; i < n && i < ARRAY_SIZE(vms); i++)
                if (other(o, vms[i]->name))
                        return vms[i]->name;
        return NULL;
}

const char *gpuh_occupancy_holder_pci(const struct gpuh_occupancy *o, const struct gpuh_pci_addr *a)
{
        const char *h = user_of(o, a, NULL);

        if (h)
                return h;
        for (size_t i = 0; i < o->n_res; i++)
                if (other(o, o->res[i].domain) && gpuh_reservation_live(&o->res[i], o->now))
                        for (size_t k = 0; k < o->res[i].n_devices; k++)
                                if (gpuh_alloc_holds_pci(&o->res[i].devices[k], a))
                                        return o->res[i].domain;
        for (size_t k = 0; k < o->n_plan; k++)
                if (gpuh_alloc_holds_pci(&o->plan[k], a))
                        return o->self;
        return NULL;
}

const char *gpuh_occupancy_holder_mdev(const struct gpuh_occupancy *o, const char *uuid)
{
        const char *h = user_of(o, NULL, uuid);

        if (h)
                return h;
        for (size_t i = 0; i < o->n_res; i++)
                if (other(o, o->res[i].domain) && gpuh_reservation_live(&o->res[i], o->now))
                        for (size_t k = 0; k < o->res[i].n_devices; k++)
                                if (o->res[i].devices[k].kind == GPUH_ALLOC_MDEV && streq(o->res[i].devices[k].uuid, uuid))
                                        return o->res[i].domain;
        for (size_t k = 0; k < o->n_plan; k++)
                if (o->plan[k].kind == GPUH_ALLOC_MDEV && streq(o->plan[k].uuid, uuid))
                        return o->self;
        return NULL;
}
