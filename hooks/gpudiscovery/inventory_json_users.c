/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_json_users.c: "used_by_vm" and "used_by": the domains libvirt knows to use a
 * device, then those gpuhooks holds it for. */
#include <stdlib.h>

#include "inventory_json_internal.h"

void ij_users_lookup(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_pci_addr *a,
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
json_object *ij_users_json(struct builder *b, const struct gpuh_inventory *inv, struct users *us,
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

