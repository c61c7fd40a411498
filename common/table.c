/* SPDX-License-Identifier: Apache-2.0 */
/* table.c: text tables with columns sized to their content. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

struct gpuh_table {
        size_t n_cols;
        char **cells;                   /* (rows + 1) x n_cols, the header first */
        size_t n_rows;                  /* with the header */
};

static size_t width(const char *s)
{
        size_t n = 0;

        for (; s && *s; s++)
                n += ((unsigned char) *s & 0xc0) != 0x80;       /* UTF-8: continuation bytes add nothing */
        return n;
}

int gpuh_table_new(size_t n_cols, const char *const *headers, struct gpuh_table **ret)
{
        struct gpuh_table *t;
        int r;

        if (n_cols == 0 || n_cols > GPUH_TABLE_MAX_COLS)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->n_cols = n_cols;
        r = gpuh_table_add(t, headers);
        if (r < 0) {
                gpuh_table_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int gpuh_table_add(struct gpuh_table *t, const char *const *cells)
{
        char **nc = reallocarray(t->cells, (t->n_rows + 1) * t->n_cols, sizeof(char *));

        if (!nc)
                return -ENOMEM;
        t->cells = nc;
        for (size_t c = 0; c < t->n_cols; c++) {
                char *s = strdup(cells[c] ? cells[c] : "");
                if (!s) {
                        for (size_t k = 0; k < c; k++)
                                free(nc[t->n_rows * t->n_cols + k]);
                        return -ENOMEM;
                }
                nc[t->n_rows * t->n_cols + c] = s;
        }
        t->n_rows++;
        return 0;
}

size_t gpuh_table_rows(const struct gpuh_table *t)
{
        return t->n_rows > 0 ? t->n_rows - 1 : 0;
}

int gpuh_table_print(const struct gpuh_table *t, FILE *f)
{
        size_t w[GPUH_TABLE_MAX_COLS] = { 0 };

        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_cols; c++) {
                        size_t n = width(t->cells[r * t->n_cols + c]);
                        if (n > w[c])
                                w[c] = n;
                }
        for (size_t r = 0; r < t->n_rows; r++) {
                size_t last = t->n_cols;

                /* trailing empty cells print nothing, not blanks */
                while (last > 1 && !t->cells[r * t->n_cols + last - 1][0])
                        last--;
                for (size_t c = 0; c < last; c++) {
                        const char *s = t->cells[r * t->n_cols + c];
                        fputs(s, f);
                        if (c + 1 < last)
                                fprintf(f, "%*s", (int) (w[c] - width(s) + 2), "");
                }
                fputc('\n', f);
        }
        return fflush(f) == EOF || ferror(f) ? -EIO : 0;
}

struct gpuh_table *gpuh_table_free(struct gpuh_table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}
