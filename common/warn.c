/* SPDX-License-Identifier: Apache-2.0 */
/* warn.c: collected warnings. */
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "warn.h"

void gpuh_warn(struct gpuh_warnings *w, const char *fmt, ...)
{
        va_list ap;
        char *msg = NULL;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        gpuh_log(LOG_WARNING, "%s", msg);
        if (!w) {
                free(msg);
                return;
        }
        if (w->n + 1 > w->cap) {
                size_t ncap = w->cap * 2 + 8;
                char **nv = reallocarray(w->v, ncap, sizeof(char *));
                if (!nv) {
                        free(msg);
                        return;
                }
                w->v = nv;
                w->cap = ncap;
        }
        w->v[w->n++] = msg;
}

int gpuh_warnings_move(struct gpuh_warnings *dst, struct gpuh_warnings *src)
{
        if (src->n == 0)
                return 0;
        if (dst->n + src->n > dst->cap) {
                size_t ncap = dst->n + src->n;
                char **nv = reallocarray(dst->v, ncap, sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                dst->v = nv;
                dst->cap = ncap;
        }
        memcpy(dst->v + dst->n, src->v, src->n * sizeof(char *));
        dst->n += src->n;
        free(src->v);
        *src = (struct gpuh_warnings) { 0 };
        return 0;
}

void gpuh_warnings_clear(struct gpuh_warnings *w)
{
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i]);
        free(w->v);
        *w = (struct gpuh_warnings) { 0 };
}
