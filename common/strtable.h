/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strtable.h: an enum's names in one table, and the _to_string/_from_string pair generated from
 * it (as systemd's DEFINE_STRING_TABLE_LOOKUP), so that the two directions cannot drift apart.
 */
#pragma once

#include <errno.h>
#include <stddef.h>

#include "macro.h"

/*
 * GPUH_DEFINE_STRING_TABLE_LOOKUP(name, type, table, fallback): defines
 *
 *   const char *name##_to_string(type i);
 *      @table[@i]; @fallback (a string, or NULL) when @i is outside @table or its slot is NULL.
 *
 *   int name##_from_string(const char *s);
 *      the index of the entry of @table that equals @s (exact, case-sensitive);
 *      -EINVAL when @s is NULL or no entry equals it.
 *
 * @table: a `static const char *const table[_..._MAX]`, indexed by the enum's values
 * (designated initialisers keep it readable); a NULL slot names nothing.
 * The caller's header declares both functions (-Wmissing-prototypes), with their doc comments.
 */
#define GPUH_DEFINE_STRING_TABLE_LOOKUP(name, type, table, fallback)                           \
        const char *name##_to_string(type i)                                                    \
        {                                                                                       \
                return (size_t) i < ARRAY_SIZE(table) && (table)[i] ? (table)[i] : (fallback);  \
        }                                                                                       \
                                                                                                \
        int name##_from_string(const char *s)                                                   \
        {                                                                                       \
                for (size_t _i = 0; s && _i < ARRAY_SIZE(table); _i++)                          \
                        if ((table)[_i] && streq((table)[_i], s))                               \
                                return (int) _i;                                                \
                return -EINVAL;                                                                 \
        }
