/* SPDX-License-Identifier: Apache-2.0 */
/* table.h: text tables for people at a shell, each column as wide as its widest cell. */
#pragma once

#include <stdio.h>
#include <stddef.h>

#include "macro.h"

#define GPUH_TABLE_MAX_COLS 12

/*
 * Rows are kept until printed, so that every column is sized to its content (a long model
 * name or blocker list widens its column instead of pushing the others out of line), as
 * util-linux's libsmartcols and systemd's format-table do. Cells are copied.
 */
struct gpuh_table;

/**
 * gpuh_table_new:
 * @n_cols: columns, 1 .. GPUH_TABLE_MAX_COLS
 * @headers: their headers
 * @ret: the table, freed with gpuh_table_free()
 *
 * Returns: 0; -EINVAL (@n_cols out of range); -ENOMEM.
 */
int gpuh_table_new(size_t n_cols, const char *const *headers, struct gpuh_table **ret);

/**
 * gpuh_table_add:
 * @t: the table
 * @cells: @t's number of cells; NULL or "" prints as nothing
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_table_add(struct gpuh_table *t, const char *const *cells);

/**
 * gpuh_table_rows: rows added so far (without the header).
 */
size_t gpuh_table_rows(const struct gpuh_table *t);

/**
 * gpuh_table_print:
 * @t: the table
 * @f: output stream
 *
 * The header, then the rows; columns are separated by two spaces and padded to the widest
 * cell (counted in UTF-8 characters), the last one not padded (no trailing blanks).
 *
 * Returns: 0; -EIO when writing fails.
 */
int gpuh_table_print(const struct gpuh_table *t, FILE *f);

/** gpuh_table_free: accepts NULL; returns NULL. */
struct gpuh_table *gpuh_table_free(struct gpuh_table *t);
static inline void gpuh_table_freep(struct gpuh_table **t) { gpuh_table_free(*t); }
