/* SPDX-License-Identifier: Apache-2.0 */
/* claims.c: live reservations and journals as the devices they hold (claims.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "claims.h"
#include "journal.h"
#include "macro.h"
#include "reserve.h"

const char *gpuh_claim_kind_to_string(enum gpuh_claim_kind k)
{
        switch (k) {
        case GPUH_CLAIM_RESERVED:
                return "reserved";
        case GPUH_CLAIM_JOURNAL:
                return "journal";
        default:
                return NULL;
        }
}

struct list {
        struct gpuh_claim *v;
        size_t n, cap;
};

static int add(struct list *l, const char *domain, enum gpuh_claim_kind kind, const struct gpuh_pci_addr *a,
               const char *uuid)
{
        struct gpuh_claim *c;

        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 16;
                struct gpuh_claim *nv = reallocarray(l->v, cap, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                l->v = nv;
                l->cap = cap;
        }
        c = &l->v[l->n];
        *c = (struct gpuh_claim) { .kind = kind, .is_mdev = uuid != NULL };
        if (a)
                c->addr = *a;
        if (uuid)
                for (size_t i = 0; i < GPUH_UUID_STR_LEN && uuid[i]; i++)
                        c->uuid[i] = (char) (uuid[i] >= 'A' && uuid[i] <= 'F' ? uuid[i] - 'A' + 'a' : uuid[i]);
        c->domain = strdup(domain);
        if (!c->domain)
                return -ENOMEM;
        l->n++;
        return 0;
}

static int add_reservation(struct list *l, const struct gpuh_reservation *r)
{
        int k = 0;

        for (size_t i = 0; i < r->n_devices && k == 0; i++) {
                const struct gpuh_alloc *a = &r->devices[i];

                if (a->kind == GPUH_ALLOC_MDEV) {
                        k = add(l, r->domain, GPUH_CLAIM_RESERVED, NULL, a->uuid);
                        continue;
                }
                k = add(l, r->domain, GPUH_CLAIM_RESERVED, &a->addr, NULL);
                for (size_t c = 0; c < a->n_companions && k == 0; c++)
                        k = add(l, r->domain, GPUH_CLAIM_RESERVED, &a->companions[c], NULL);
        }
        return k;
}

static int add_journals(struct list *l, struct gpuh_state *s, struct gpuh_warnings *w)
{
        _cleanup_strv_free_ char **names = NULL;
        int dfd = gpuh_state_subdir(s, "journal"), n, k = 0;

        if (dfd == -ENOENT)
                return 0;
        if (dfd < 0) {
                gpuh_warn(w, "cannot read the journals in '%s/journal': %s", gpuh_state_dir(s), strerror(-dfd));
                return 0;
        }
        n = gpuh_journal_list(dfd, &names, w);
        if (n == -ENOMEM)
                return n;
        if (n < 0) {
                gpuh_warn(w, "cannot list the journals in '%s/journal': %s", gpuh_state_dir(s), strerror(-n));
                return 0;
        }
        for (char **p = names; p && *p && k == 0; p++) {
                struct gpuh_journal *j = NULL;
                int r = gpuh_journal_load(dfd, *p, &j);

                if (r == -ENOMEM)
                        return r;
                if (r == -ENOENT)
                        continue;       /* released meanwhile */
                if (r < 0) {
                        gpuh_warn(w, "the journal of %s in '%s/journal' is unusable: %s", *p, gpuh_state_dir(s),
                                  strerror(-r));
                        continue;
                }
                for (size_t i = 0; i < j->n && k == 0; i++) {
                        const struct gpuh_jentry *e = &j->e[i];

                        if (e->op == GPUH_JOP_MDEV)
                                k = add(l, j->domain, GPUH_CLAIM_JOURNAL, NULL, e->uuid);
                        else if (e->op == GPUH_JOP_DRIVER || e->op == GPUH_JOP_VGPU)
                                k = add(l, j->domain, GPUH_CLAIM_JOURNAL, &e->dev, NULL);
                }
                gpuh_journal_free(j);
        }
        return k;
}

int gpuh_claims_load(const char *state_dir, int64_t now, struct gpuh_claim **ret, size_t *ret_n,
                     struct gpuh_warnings *w)
{
        _cleanup_(gpuh_state_freep) struct gpuh_state *s = NULL;
        _cleanup_free_ char *err = NULL;
        struct gpuh_reservation *res = NULL;
        struct list l = { 0 };
        size_t n_res = 0;
        int r;

        *ret = NULL;
        *ret_n = 0;
        if (!state_dir)
                return 0;
        r = gpuh_state_open(state_dir, false, &s, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                gpuh_warn(w, "cannot read the state directory '%s': %s", state_dir, err ? err : strerror(-r));
                return 0;
        }
        r = gpuh_reservations_load(s, &res, &n_res, w);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && r != -EBADMSG)
                /* -EBADMSG put its warning in @w itself */
                gpuh_warn(w, "cannot read the reservations in '%s/reservations': %s", state_dir, strerror(-r));
        for (size_t i = 0; r == 0 && i < n_res; i++)
                if (gpuh_reservation_live(&res[i], now))
                        r = add_reservation(&l, &res[i]);
        gpuh_reservations_free(res, n_res);
        if (r != -ENOMEM)
                r = add_journals(&l, s, w);
        if (r == -ENOMEM) {
                gpuh_claims_free(l.v, l.n);
                return r;
        }
        *ret = l.v;
        *ret_n = l.n;
        return 0;
}

void gpuh_claims_free(struct gpuh_claim *c, size_t n)
{
        for (size_t i = 0; c && i < n; i++)
                free(c[i].domain);
        free(c);
}

size_t gpuh_claims_find(const struct gpuh_claim *c, size_t n, const struct gpuh_pci_addr *a, const char *uuid,
                        size_t from)
{
        for (size_t i = from; i < n; i++)
                if (a ? !c[i].is_mdev && gpuh_pci_addr_cmp(&c[i].addr, a) == 0
                      : c[i].is_mdev && uuid && strcasecmp(c[i].uuid, uuid) == 0)
                        return i;
        return n;
}
