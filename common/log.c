/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: the process-wide log sink. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static const char *log_ident = "gpuhooks";
static enum gpuh_log_target log_target = GPUH_LOG_NONE;
static int log_max_prio = LOG_WARNING;
static gpuh_log_fn log_fn;
static void *log_fn_data;

void gpuh_log_setup(const char *ident, enum gpuh_log_target target, int max_prio)
{
        log_ident = ident ? ident : "gpuhooks";
        log_target = target;
        log_max_prio = max_prio;
        if (target == GPUH_LOG_SYSLOG)
                openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void gpuh_log_set_fn(gpuh_log_fn fn, void *data)
{
        log_fn = fn;
        log_fn_data = data;
}

int gpuh_log_get_max_prio(void)
{
        return log_max_prio;
}

static void log_emit(int prio, const char *fmt, va_list ap)
{
        char msg[1024];

        if (prio > log_max_prio || (log_target == GPUH_LOG_NONE && !log_fn))
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (log_fn) {
                log_fn(log_fn_data, prio, msg);
                return;
        }
        if (log_target == GPUH_LOG_SYSLOG)
                syslog(prio, "%s", msg);
        else if (log_target == GPUH_LOG_STDERR)
                fprintf(stderr, "%s: %s\n", log_ident, msg);
}

void gpuh_log(int prio, const char *fmt, ...)
{
        va_list ap;
        int saved = errno;

        va_start(ap, fmt);
        log_emit(prio, fmt, ap);
        va_end(ap);
        errno = saved;
}

int gpuh_log_errno(int prio, int err, const char *fmt, ...)
{
        va_list ap;
        int saved = errno;

        errno = err < 0 ? -err : err;
        va_start(ap, fmt);
        log_emit(prio, fmt, ap);
        va_end(ap);
        errno = saved;
        return err;
}

int log_oom(void)
{
        fprintf(stderr, "%s: out of memory\n", log_ident);
        return 1;
}

int gpuh_error(char **reterr, int r, const char *fmt, ...)
{
        va_list ap;

        if (!reterr || *reterr)
                return r;
        va_start(ap, fmt);
        if (vasprintf(reterr, fmt, ap) < 0)
                *reterr = NULL;
        va_end(ap);
        return r;
}
