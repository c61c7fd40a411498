/* SPDX-License-Identifier: Apache-2.0 */
/* warn.h: the list of things an inventory run could not read, reported with its output. */
#pragma once

#include <stddef.h>

#include "macro.h"

struct gpuh_warnings {
        char **v;               /* messages, in the order they were added */
        size_t n;
        size_t cap;
};

/**
 * gpuh_warn:
 * @w: the list; NULL drops the message
 * @fmt: printf format of a one-line message, e.g. "0000:08:00.0: numa_node: unparsable"
 *
 * Also logs the message at LOG_WARNING. Allocation failure drops the message.
 */
void gpuh_warn(struct gpuh_warnings *w, const char *fmt, ...) _printf_(2, 3);

/**
 * gpuh_warnings_move:
 * @dst: receives @src's messages after its own, without logging them again
 * @src: emptied
 *
 * Returns: 0; -ENOMEM (then @src keeps what was not moved).
 */
int gpuh_warnings_move(struct gpuh_warnings *dst, struct gpuh_warnings *src);

/** gpuh_warnings_clear: frees the messages; @w itself stays usable. */
void gpuh_warnings_clear(struct gpuh_warnings *w);
