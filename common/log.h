/* SPDX-License-Identifier: Apache-2.0 */
/* log.h: the one log sink of gpuhooks (syslog, stderr or nothing). */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

/*
 * Errno values the library generates itself have fixed meanings:
 *   -ENOENT     device or attribute absent
 *   -EBADMSG    unparsable sysfs, JSON or XML content
 *   -EINVAL     bad caller input (an address, an option)
 *   -EBUSY      device owned by another driver or VM
 *   -ETIMEDOUT  a bounded wait expired
 *   -E2BIG      content larger than the buffer or limit allowed for it
 * Every other negative value passes an errno of the kernel or libc through unchanged.
 */

enum gpuh_log_target {
        GPUH_LOG_NONE,
        GPUH_LOG_SYSLOG,
        GPUH_LOG_STDERR,
};

typedef void (*gpuh_log_fn)(void *data, int prio, const char *msg);

/**
 * gpuh_log_setup:
 * @ident: program name for syslog and the stderr prefix, e.g. "gpudiscovery"
 * @target: where messages go
 * @max_prio: most verbose priority kept (LOG_ERR .. LOG_DEBUG, syslog(3) values)
 *
 * Sets the process-wide sink. Defaults before any call: no output at all.
 */
void gpuh_log_setup(const char *ident, enum gpuh_log_target target, int max_prio);

/**
 * gpuh_log_set_fn:
 * @fn: receives every kept message, formatted, without trailing newline; NULL restores @target
 * @data: passed to @fn
 *
 * Lets tests capture messages.
 */
void gpuh_log_set_fn(gpuh_log_fn fn, void *data);

/** gpuh_log_get_max_prio: the most verbose priority currently kept. */
int gpuh_log_get_max_prio(void);

/**
 * gpuh_log:
 * @prio: syslog(3) priority
 * @fmt: printf format; %m is the current errno
 */
void gpuh_log(int prio, const char *fmt, ...) _printf_(2, 3);

/**
 * gpuh_log_errno:
 * @prio: syslog(3) priority
 * @err: a negative errno (its absolute value is set as errno for %m)
 *
 * Returns: @err, so callers can `return gpuh_log_errno(LOG_ERR, r, "...: %m");`
 */
int gpuh_log_errno(int prio, int err, const char *fmt, ...) _printf_(3, 4);

#define gpuh_debug(...) gpuh_log(LOG_DEBUG, __VA_ARGS__)

/**
 * gpuh_error:
 * @reterr: receives the one-line message (caller frees) unless it already holds one (the
 *          first cause is the one reported); NULL drops it
 * @r: a negative errno, returned as it is
 * @fmt: printf format of the message
 *
 * Returns: @r, so library code can `return gpuh_error(reterr, -EINVAL, "...");`.
 */
int gpuh_error(char **reterr, int r, const char *fmt, ...) _printf_(3, 4);

/**
 * log_oom:
 * Reports "out of memory" on stderr (an allocation failure is always worth saying) and returns
 * EXIT_FAILURE, for mains: `return log_oom();`.
 */
int log_oom(void);
