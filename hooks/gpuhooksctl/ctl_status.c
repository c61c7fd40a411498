/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_status.c: gpuhooksctl status: every GPU device's state, and each GPU's capacity left. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "capacity.h"
#include "ctl.h"
#include "host.h"
#include "inventory_table.h"
#include "layout.h"
#include "log.h"
#include "status.h"
#include "table.h"

/* Is a row of GPU @gpu shown with --gpu and --free? */
static bool row_shown(const struct args *a, const struct gpuh_inventory *inv, const char *gpu, bool is_free)
{
        if (a->free_only && !is_free)
                return false;
        if (a->has_gpu) {
                struct gpuh_pci_addr g;
                if (gpuh_pci_addr_parse(gpu, &g) < 0)
                        return false;
                for (size_t i = 0; i < inv->n_gpus; i++)
                        if (gpuh_pci_addr_cmp(&inv->gpus[i].dev->addr, &g) == 0)
                                return gpuh_gpu_matches(&inv->gpus[i], &a->gpu);
                return false;
        }
        return true;
}

/* One device's row: an object of "devices" (@devs, JSON), else a line of @t. Returns 0; -ENOMEM. */
static int device_row(const struct gpuh_dev_status *d, json_object *devs, struct gpuh_table *t)
{
        char until[32];

        ctl_fmt_time(d->until, until, sizeof(until));
        if (devs) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "device", ctl_jstr(d->id));
                json_object_object_add(o, "kind", ctl_jstr(gpuh_dev_kind_to_string(d->kind)));
                json_object_object_add(o, "gpu", ctl_jstr(d->gpu));
                json_object_object_add(o, "profile", ctl_jstr(d->profile));
                json_object_object_add(o, "state", ctl_jstr(gpuh_dev_state_to_string(d->state)));
                json_object_object_add(o, "domain", ctl_jstr(d->domain));
                json_object_object_add(o, "until", d->until > 0 ? json_object_new_int64(d->until) : NULL);
                json_object_object_add(o, "detail", ctl_jstr(d->detail));
                json_object_array_add(devs, o);
                return 0;
        }
        const char *cells[] = { d->id, gpuh_dev_kind_to_string(d->kind), d->gpu, d->profile,
                                gpuh_dev_state_to_string(d->state), d->domain[0] ? d->domain : "-",
                                until, d->detail };
        return gpuh_table_add(t, cells);
}

/* GPU @g's profiles with instances or room (--free: with room), as gpuh_gpu_capacity() counts
 * them with @p promised: objects of "capacity" (@caps, JSON), else lines of @ct. Returns 0;
 * -ENOMEM. */
static int capacity_rows(const struct ctl *x, const struct gpuh_inventory *inv, const struct gpuh_gpu *g,
                         const struct gpuh_promised *p, json_object *caps, struct gpuh_table *ct)
{
        _cleanup_free_ struct gpuh_profile_cap *c = NULL;
        size_t nc = 0;

        if (gpuh_gpu_capacity(inv, g, p, &c, &nc) < 0)
                return -ENOMEM;
        for (size_t k = 0; k < nc; k++) {
                char cr[24], iu[24], mo[24];

                if (x->a.free_only ? c[k].more == 0 : c[k].created == 0 && c[k].more == 0)
                        continue;
                if (caps) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "gpu", ctl_jstr(g->dev->name));
                        json_object_object_add(o, "kind", ctl_jstr(gpuh_cap_kind_to_string(c[k].kind)));
                        json_object_object_add(o, "type_id", ctl_jstr(c[k].type_id));
                        json_object_object_add(o, "profile", ctl_jstr(c[k].name));
                        json_object_object_add(o, "created", json_object_new_int64(c[k].created));
                        json_object_object_add(o, "in_use", json_object_new_int64(c[k].in_use));
                        json_object_object_add(o, "more", c[k].more >= 0 ? json_object_new_int64(c[k].more) : NULL);
                        json_object_array_add(caps, o);
                        continue;
                }
                snprintf(cr, sizeof(cr), "%" PRId64, c[k].created);
                snprintf(iu, sizeof(iu), "%" PRId64, c[k].in_use);
                if (c[k].more < 0)
                        snprintf(mo, sizeof(mo), "?");
                else
                        snprintf(mo, sizeof(mo), "%" PRId64, c[k].more);
                const char *cells[] = { g->dev->name, gpuh_cap_kind_to_string(c[k].kind),
                                        c[k].type_id[0] ? c[k].type_id : "-", c[k].name, cr, iu, mo };
                if (gpuh_table_add(ct, cells) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* status's JSON document, {"now", "devices", "capacity", "warnings"} (docs/gpuhooksctl.md),
 * its arrays in *@devs, *@caps, *@warns; NULL without memory. */
static json_object *status_doc(int64_t now, json_object **devs, json_object **caps, json_object **warns)
{
        json_object *doc = json_object_new_object();

        *devs = json_object_new_array();
        *caps = json_object_new_array();
        *warns = json_object_new_array();
        if (!doc || !*devs || !*caps || !*warns) {
                json_object_put(doc);
                json_object_put(*devs);
                json_object_put(*caps);
                json_object_put(*warns);
                return NULL;
        }
        json_object_object_add(doc, "now", json_object_new_int64(now));
        json_object_object_add(doc, "devices", *devs);
        json_object_object_add(doc, "capacity", *caps);
        json_object_object_add(doc, "warnings", *warns);
        return doc;
}

/* The devices' table, the capacity table when it has rows, the warnings. Returns the exit status. */
static int status_tables_print(struct gpuh_table *t, struct gpuh_table *ct, const struct gpuh_warnings *w)
{
        int r = gpuh_table_print(t, stdout);

        if (r == 0 && gpuh_table_rows(ct) > 0) {
                putchar('\n');
                r = gpuh_table_print(ct, stdout);
        }
        for (size_t i = 0; i < w->n; i++)
                printf("warning: %s\n", w->v[i]);
        if (r == 0 && fflush(stdout) == EOF)
                r = -EIO;
        return r < 0 ? ctl_fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
}

static int status_print(const struct ctl *x, struct gpuh_inventory *inv, const struct gpuh_dev_status *rows, size_t n,
                        const struct gpuh_promised *p, int64_t now, const struct gpuh_warnings *w)
{
        _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL, *ct = NULL;
        json_object *doc = NULL, *devs = NULL, *caps = NULL, *warns = NULL;
        static const char *const dh[] = { "DEVICE", "KIND", "GPU", "PROFILE", "STATE", "DOMAIN", "UNTIL", "DETAIL" };
        static const char *const ch[] = { "GPU", "KIND", "TYPE", "PROFILE", "CREATED", "IN USE", "MORE" };

        if (x->a.json) {
                if (!(doc = status_doc(now, &devs, &caps, &warns)))
                        return log_oom();
        } else if (gpuh_table_new(ARRAY_SIZE(dh), dh, &t) < 0 || gpuh_table_new(ARRAY_SIZE(ch), ch, &ct) < 0)
                return log_oom();
        for (size_t i = 0; i < n; i++)
                if (row_shown(&x->a, inv, rows[i].gpu, rows[i].state == GPUH_DEV_FREE) &&
                    device_row(&rows[i], devs, t) < 0)
                        return log_oom();
        for (size_t i = 0; i < inv->n_gpus; i++)
                if (row_shown(&x->a, inv, inv->gpus[i].dev->name, true) &&
                    capacity_rows(x, inv, &inv->gpus[i], p, caps, ct) < 0)
                        return log_oom();
        if (!doc)
                return status_tables_print(t, ct, w);
        for (size_t i = 0; i < w->n; i++)
                json_object_array_add(warns, json_object_new_string(w->v[i]));
        return ctl_print_json(doc);
}

int ctl_verb_status(struct ctl *x)
{
        _cleanup_(gpuh_layouts_freep) struct gpuh_layouts *layouts = NULL;    /* after host: it borrows them */
        _cleanup_(gpuh_host_freep) struct gpuh_host *host = NULL;
        _cleanup_free_ struct gpuh_dev_status *rows = NULL;
        _cleanup_free_ struct gpuh_reservation *live = NULL;
        struct ctl_state_view v = { 0 };
        struct gpuh_promised p;
        size_t n = 0;
        int r;

        r = ctl_scan_host(x, &host);
        if (r != 0)
                return r;
        /* vGPU layouts: their slots, as gpudiscovery advertises them */
        if (gpuh_layouts_resolve(host->inv, x->cfg, &layouts) < 0)
                return log_oom();
        host->inv->layouts = layouts;
        if (x->a.has_gpu) {
                bool found = false;
                for (size_t i = 0; i < host->inv->n_gpus && !found; i++)
                        found = gpuh_gpu_matches(&host->inv->gpus[i], &x->a.gpu);
                if (!found) {
                        char s[GPUH_PCI_ADDR_MAX];
                        return ctl_fail("no GPU at %s", gpuh_pci_addr_format(&x->a.gpu, s));
                }
        }
        r = ctl_state_view_load(x, &v);
        if (r == 0) {
                struct gpuh_status_input in = {
                        .inv = host->inv, .res = v.res, .n_res = v.n_res, .journals = v.journals,
                        .n_journals = v.n_journals, .now = (int64_t) time(NULL),
                };
                if (gpuh_status_collect(&in, &rows, &n) < 0 || gpuh_status_promised(&in, &live, &p) < 0)
                        r = log_oom();
                else if (gpuh_warnings_move(&v.warnings, &host->inv->warnings) < 0)
                        r = log_oom();
                else
                        r = status_print(x, host->inv, rows, n, &p, in.now, &host->inv->warnings);
        }
        ctl_state_view_clear(&v);
        return r;
}

