/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_output.c: gpuhooksctl's output: its error line or JSON error, JSON documents, times and ages. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"
#include "ctl.h"
#include "inventory_json.h"
#include "log.h"

/* One line on stderr, or with --format json one JSON error object on stdout (docs/errors.md). */
int ctl_fail(const char *fmt, ...)
{
        _cleanup_free_ char *line = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (n < 0)
                line = NULL;
        return gpuh_cli_fail(PROG, line ? 0 : -ENOMEM, line, NULL);
}

int ctl_print_json(json_object *doc)
{
        int r = doc ? gpuh_json_print(doc, 1) : -ENOMEM;

        json_object_put(doc);
        if (r == -ENOMEM)
                return log_oom();
        return r < 0 ? ctl_fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
}

void ctl_fmt_time(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t) t;
        struct tm tm;

        if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "-");
}

void ctl_fmt_age(int64_t secs, char *buf, size_t size)
{
        if (secs < 0)
                secs = 0;
        if (secs < 120)
                snprintf(buf, size, "%" PRId64 "s", secs);
        else if (secs < 7200)
                snprintf(buf, size, "%" PRId64 "m", secs / 60);
        else if (secs < 172800)
                snprintf(buf, size, "%" PRId64 "h", secs / 3600);
        else
                snprintf(buf, size, "%" PRId64 "d", secs / 86400);
}

json_object *ctl_jstr(const char *s)
{
        return s && *s ? json_object_new_string(s) : NULL;
}

