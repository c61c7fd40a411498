/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_state.c: the state directory as the verbs read it: reservations and journals, never written. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

void ctl_state_view_clear(struct ctl_state_view *v)
{
        gpuh_reservations_free(v->res, v->n_res);
        for (size_t i = 0; i < v->n_journals; i++)
                gpuh_journal_free(v->journals[i]);
        free(v->journals);
        gpuh_warnings_clear(&v->warnings);
        gpuh_state_free(v->st);
        *v = (struct ctl_state_view) { 0 };
}

/* Reads the reservations and journals (read-only: nothing is created). A missing state
 * directory reads as empty. Returns 0, or the exit status of a failure. */
int ctl_state_view_load(const struct ctl *x, struct ctl_state_view *v)
{
        _cleanup_free_ char *err = NULL;
        _cleanup_strv_free_ char **names = NULL;
        int r, jfd;

        r = gpuh_state_open(x->sc.state_dir, false, &v->st, &err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return ctl_fail("%s", err ? err : strerror(-r));
        r = gpuh_state_lock(v->st, false, x->cfg->lock_timeout_ms);
        if (r < 0)
                return ctl_fail("cannot lock '%s': %s", x->sc.state_dir, strerror(-r));
        r = gpuh_reservations_load(v->st, &v->res, &v->n_res, &v->warnings);
        if (r < 0)
                return ctl_fail("%s", v->warnings.n ? v->warnings.v[v->warnings.n - 1] : strerror(-r));
        jfd = gpuh_state_subdir(v->st, "journal");
        if (jfd == -ENOENT)
                jfd = -1;
        else if (jfd < 0)
                return ctl_fail("cannot open '%s/journal': %s", x->sc.state_dir, strerror(-jfd));
        r = gpuh_journal_list(jfd, &names, &v->warnings);
        if (r < 0)
                return ctl_fail("cannot list '%s/journal': %s", x->sc.state_dir, strerror(-r));
        v->journals = calloc((size_t) r + 1, sizeof(*v->journals));
        if (!v->journals)
                return log_oom();
        for (char **p = names; p && *p; p++) {
                struct gpuh_journal *j = NULL;
                int k = gpuh_journal_load(jfd, *p, &j);
                if (k == -ENOMEM)
                        return log_oom();
                if (k < 0) {
                        gpuh_warn(&v->warnings, "%s: its journal cannot be read: %s", *p,
                                  k == -EBADMSG ? "malformed" : strerror(-k));
                        continue;
                }
                v->journals[v->n_journals++] = j;
        }
        gpuh_state_unlock(v->st);
        return 0;
}

