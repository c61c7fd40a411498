/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_listings.c: gpuhooksctl reservations and journals: what the state directory holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ctl.h"
#include "log.h"
#include "table.h"

static void alloc_name(const struct gpuh_alloc *d, char *buf, size_t size)
{
        char a[GPUH_PCI_ADDR_MAX];

        if (d->kind == GPUH_ALLOC_MDEV)
                snprintf(buf, size, "mdev %s (%s on %s)%s", d->uuid, d->mdev_type, gpuh_pci_addr_format(&d->parent, a),
                         d->mdev_new ? " new" : "");
        else if (d->kind == GPUH_ALLOC_VENDOR_VGPU)
                snprintf(buf, size, "vendor-vgpu %s type %u", gpuh_pci_addr_format(&d->addr, a), d->vgpu_type);
        else
                snprintf(buf, size, "%s %s", gpuh_alloc_kind_to_string(d->kind), gpuh_pci_addr_format(&d->addr, a));
}

/* The state directory read, and the table (or the JSON array) a listing verb fills; 0 or an
 * exit status (the view cleared). */
static int listing_start(struct ctl *x, struct ctl_state_view *v, const char *const *h, size_t n_h, struct gpuh_table **t,
                         json_object **arr)
{
        int r = ctl_state_view_load(x, v);

        if (r == 0 && (x->a.json ? !(*arr = json_object_new_array()) : gpuh_table_new(n_h, h, t) < 0))
                r = log_oom();
        if (r != 0)
                ctl_state_view_clear(v);
        return r;
}

int ctl_verb_reservations(struct ctl *x)
{
        _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL;
        static const char *const h[] = { "DOMAIN", "STATE", "AGE", "CREATED", "EXPIRES", "LIVE", "DOMAIN STATE",
                                         "DEVICES" };
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        struct ctl_state_view v = { 0 };
        int64_t now = (int64_t) time(NULL);
        json_object *arr = NULL;
        int r;

        r = listing_start(x, &v, h, ARRAY_SIZE(h), &t, &arr);
        if (r != 0)
                return r;
        if (v.n_res > 0)
                u = ctl_load_usage(x);
        for (size_t i = 0; i < v.n_res; i++) {
                const struct gpuh_reservation *res = &v.res[i];
                bool running = res->state && streq(res->state, "running"), live = gpuh_reservation_live(res, now);
                char age[32], created[32], expires[32], devs[1024] = "", one[160];
                size_t len = 0;

                ctl_fmt_age(now - res->created, age, sizeof(age));
                ctl_fmt_time(res->created, created, sizeof(created));
                ctl_fmt_time(running ? 0 : res->expires, expires, sizeof(expires));
                if (arr) {
                        json_object *o = json_object_new_object(), *d = json_object_new_array();
                        json_object_object_add(o, "domain", ctl_jstr(res->domain));
                        json_object_object_add(o, "uuid", ctl_jstr(res->uuid));
                        json_object_object_add(o, "state", ctl_jstr(res->state));
                        json_object_object_add(o, "created", json_object_new_int64(res->created));
                        json_object_object_add(o, "age_s", json_object_new_int64(now - res->created));
                        json_object_object_add(o, "expires", running ? NULL : json_object_new_int64(res->expires));
                        json_object_object_add(o, "live", json_object_new_boolean(live));
                        json_object_object_add(o, "domain_state", ctl_jstr(ctl_domain_state(u, res->domain)));
                        for (size_t k = 0; k < res->n_devices; k++) {
                                alloc_name(&res->devices[k], one, sizeof(one));
                                json_object_array_add(d, json_object_new_string(one));
                        }
                        json_object_object_add(o, "devices", d);
                        json_object_array_add(arr, o);
                        continue;
                }
                for (size_t k = 0; k < res->n_devices && len < sizeof(devs); k++) {
                        alloc_name(&res->devices[k], one, sizeof(one));
                        len += (size_t) snprintf(devs + len, sizeof(devs) - len, "%s%s", k ? ", " : "", one);
                }
                const char *ds = ctl_domain_state(u, res->domain);
                const char *cells[] = { res->domain, res->state ? res->state : "-", age, created, expires,
                                        live ? "yes" : "no (expired)", ds ? ds : "?", devs };
                if (gpuh_table_add(t, cells) < 0) {
                        ctl_state_view_clear(&v);
                        return log_oom();
                }
        }
        ctl_state_view_clear(&v);
        if (arr)
                return ctl_print_json(arr);
        if (gpuh_table_rows(t) == 0)
                return printf("(no reservations)\n") < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        r = gpuh_table_print(t, stdout);
        return r < 0 ? ctl_fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
}

int ctl_verb_journals(struct ctl *x)
{
        _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL;
        static const char *const h[] = { "DOMAIN", "AGE", "CREATED", "DOMAIN STATE", "ENTRIES", "CHANGES" };
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        struct ctl_state_view v = { 0 };
        int64_t now = (int64_t) time(NULL);
        json_object *arr = NULL;
        int r;

        r = listing_start(x, &v, h, ARRAY_SIZE(h), &t, &arr);
        if (r != 0)
                return r;
        if (v.n_journals > 0)
                u = ctl_load_usage(x);
        for (size_t i = 0; i < v.n_journals; i++) {
                const struct gpuh_journal *j = v.journals[i];
                char age[32], created[32], n[16], changes[1024] = "", key[96];
                size_t len = 0;

                ctl_fmt_age(now - j->created, age, sizeof(age));
                ctl_fmt_time(j->created, created, sizeof(created));
                snprintf(n, sizeof(n), "%zu%s", j->n, j->torn ? " (torn)" : "");
                if (arr) {
                        json_object *o = json_object_new_object(), *e = json_object_new_array();
                        json_object_object_add(o, "domain", ctl_jstr(j->domain));
                        json_object_object_add(o, "uuid", ctl_jstr(j->uuid));
                        json_object_object_add(o, "created", json_object_new_int64(j->created));
                        json_object_object_add(o, "age_s", json_object_new_int64(now - j->created));
                        json_object_object_add(o, "torn", json_object_new_boolean(j->torn));
                        json_object_object_add(o, "domain_state", ctl_jstr(ctl_domain_state(u, j->domain)));
                        for (size_t k = 0; k < j->n; k++) {
                                json_object *x1 = gpuh_jentry_json(&j->e[k]);
                                if (x1)
                                        json_object_array_add(e, x1);
                        }
                        json_object_object_add(o, "entries", e);
                        json_object_array_add(arr, o);
                        continue;
                }
                for (size_t k = 0; k < j->n && len < sizeof(changes); k++)
                        len += (size_t) snprintf(changes + len, sizeof(changes) - len, "%s%s %s", k ? ", " : "",
                                                 gpuh_jop_to_string(j->e[k].op), gpuh_jentry_key(&j->e[k], key, sizeof(key)));
                const char *ds = ctl_domain_state(u, j->domain);
                const char *cells[] = { j->domain, age, created, ds ? ds : "?", n, changes };
                if (gpuh_table_add(t, cells) < 0) {
                        ctl_state_view_clear(&v);
                        return log_oom();
                }
        }
        for (size_t i = 0; i < v.warnings.n; i++)
                fprintf(stderr, PROG ": warning: %s\n", v.warnings.v[i]);
        ctl_state_view_clear(&v);
        if (arr)
                return ctl_print_json(arr);
        if (gpuh_table_rows(t) == 0)
                return printf("(no journals)\n") < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        r = gpuh_table_print(t, stdout);
        return r < 0 ? ctl_fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
}

