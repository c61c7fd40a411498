/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_actions.c: gpuhooksctl release, reconcile and plan, through the state-change hook's library. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ctl.h"
#include "domxml.h"
#include "fileio.h"
#include "log.h"

/* A state-change call's result: {"domain", "operation", "ok", "error"} or one line. */
static int report(const struct ctl *x, const char *domain, const char *op, int r, const char *err, json_object *plan)
{
        const char *msg = r < 0 ? (err ? err : strerror(-r)) : NULL;

        if (r == -ENOMEM)
                return log_oom();
        if (x->a.json) {
                json_object *o = json_object_new_object();
                if (!o)
                        return log_oom();
                json_object_object_add(o, "domain", ctl_jstr(domain));
                json_object_object_add(o, "operation", ctl_jstr(op));
                json_object_object_add(o, "ok", json_object_new_boolean(r == 0));
                json_object_object_add(o, "error", ctl_jstr(msg));
                if (plan)
                        json_object_object_add(o, "plan", json_object_get(plan));
                if (ctl_print_json(o) != EXIT_SUCCESS)
                        return EXIT_FAILURE;
        } else if (r == 0 && plan) {
                const char *s = json_object_to_json_string_ext(plan, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
                printf("%s\n", s ? s : "");
        } else if (r == 0)
                printf("%s: %s done\n", domain ? domain : "host", op);
        if (r < 0) {
                fprintf(stderr, PROG ": %s\n", msg);
                return EXIT_FAILURE;
        }
        return fflush(stdout) == EOF ? EXIT_FAILURE : EXIT_SUCCESS;
}

int ctl_verb_release(struct ctl *x, const char *vm)
{
        _cleanup_free_ char *err = NULL;
        int r;

        x->sc.refuse_held = true;
        r = gpuh_sc_release(&x->sc, vm, NULL, &err);
        return report(x, vm, "release", r, err, NULL);
}

/* The domains with a journal or a reservation. */
static int state_names(struct ctl *x, char ***ret)
{
        struct ctl_state_view v = { 0 };
        int r = ctl_state_view_load(x, &v);

        for (size_t i = 0; i < v.n_journals && r == 0; i++) {
                char *d = strdup(v.journals[i]->domain);
                if (!d || strv_consume(ret, d) < 0)
                        r = log_oom();
        }
        for (size_t i = 0; i < v.n_res && r == 0; i++) {
                bool dup = false;
                for (char **p = *ret; p && *p && !dup; p++)
                        dup = streq(*p, v.res[i].domain);
                char *d = dup ? NULL : strdup(v.res[i].domain);
                if (!dup && (!d || strv_consume(ret, d) < 0))
                        r = log_oom();
        }
        ctl_state_view_clear(&v);
        return r;
}

int ctl_verb_reconcile(struct ctl *x)
{
        _cleanup_strv_free_ char **before = NULL, **after = NULL;
        _cleanup_free_ char *err = NULL;
        json_object *released;
        int r;

        x->sc.min_age_s = x->a.min_age;
        if ((r = state_names(x, &before)) != 0)
                return r;
        r = gpuh_sc_reconcile(&x->sc, NULL, &err);
        if (state_names(x, &after) != 0)
                return EXIT_FAILURE;
        released = json_object_new_array();
        if (!released)
                return log_oom();
        for (char **p = before; p && *p; p++) {
                bool left = false;
                for (char **q = after; q && *q && !left; q++)
                        left = streq(*p, *q);
                if (!left)
                        json_object_array_add(released, json_object_new_string(*p));
        }
        if (x->a.json) {
                json_object *o = json_object_new_object(), *kept = json_object_new_array();
                if (!o || !kept) {
                        json_object_put(o);
                        json_object_put(kept);
                        json_object_put(released);
                        return log_oom();
                }
                for (char **q = after; q && *q; q++)
                        json_object_array_add(kept, json_object_new_string(*q));
                json_object_object_add(o, "operation", json_object_new_string("reconcile"));
                json_object_object_add(o, "ok", json_object_new_boolean(r == 0));
                json_object_object_add(o, "error", ctl_jstr(r < 0 ? (err ? err : strerror(-r)) : NULL));
                json_object_object_add(o, "released", released);
                json_object_object_add(o, "kept", kept);
                if (ctl_print_json(o) != EXIT_SUCCESS)
                        return EXIT_FAILURE;
        } else {
                for (size_t i = 0; i < json_object_array_length(released); i++)
                        printf("released %s\n", json_object_get_string(json_object_array_get_idx(released, i)));
                for (char **q = after; q && *q; q++)
                        printf("kept %s\n", *q);
                json_object_put(released);
        }
        if (r < 0)
                return ctl_fail("%s", err ? err : strerror(-r));
        return EXIT_SUCCESS;
}

int ctl_verb_plan(struct ctl *x, const char *path)
{
        _cleanup_free_ char *xml = NULL, *err = NULL;
        json_object *plan = NULL;
        size_t len = 0;
        int r, k;

        r = gpuh_read_file_at(AT_FDCWD, path, GPUH_DOMXML_MAX_BYTES, &xml, &len);
        if (r < 0)
                return ctl_fail("cannot read '%s': %s", path, strerror(-r));
        x->sc.dry_run = true;
        r = gpuh_sc_prepare(&x->sc, xml, len, &plan, &err);
        /* the domain the plan is for, as the XML names it */
        k = report(x, json_object_get_string(json_object_object_get(plan, "domain")), "plan", r, err, plan);
        json_object_put(plan);
        return k;
}

