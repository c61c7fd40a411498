/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_check.c: gpuhooksctl check: whether the host is fit, as gpudiscovery --check says. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "ctl.h"
#include "host.h"
#include "log.h"
#include "table.h"

int ctl_verb_check(struct ctl *x)
{
        _cleanup_(gpuh_host_freep) struct gpuh_host *host = NULL;
        struct gpuh_findings f;
        bool ready;
        int r;

        r = ctl_scan_host(x, &host);
        if (r != 0)
                return r;
        r = gpuh_check_host(&(struct gpuh_check_opts) { .sysfs_fd = host->sysfs->root_fd, .root = x->a.root,
                                                        .cfg = x->cfg, .config_error = x->cfg_err },
                            host->inv, &f);
        if (r < 0)
                return log_oom();
        ready = gpuh_check_ready(&f);
        if (x->a.json)
                r = ctl_print_json(gpuh_findings_to_json(&f));
        else {
                _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL;
                static const char *const h[] = { "STATUS", "CHECK", "DEVICE", "MESSAGE" };

                r = gpuh_table_new(ARRAY_SIZE(h), h, &t);
                for (size_t i = 0; i < f.n && r == 0; i++) {
                        const char *cells[] = { gpuh_check_status_to_string(f.v[i].status), f.v[i].check,
                                                f.v[i].device ? f.v[i].device : "-", f.v[i].message };
                        r = gpuh_table_add(t, cells);
                }
                if (r == 0)
                        r = gpuh_table_print(t, stdout);
                if (r == 0)
                        printf(ready ? "ready: this host can run GPU domains with gpuhooks\n"
                                     : "not ready: a check failed\n");
                r = r < 0 ? ctl_fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
        }
        gpuh_findings_clear(&f);
        return r != EXIT_SUCCESS ? r : ready ? EXIT_SUCCESS : EXIT_FAILURE;
}

