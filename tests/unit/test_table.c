/* SPDX-License-Identifier: Apache-2.0 */
/* test_table: columns sized to their widest cell (UTF-8 counted in characters), no trailing
 * blanks, empty trailing cells left out, bad column counts refused. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "table.h"

static char *print(struct gpuh_table *t)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        assert_int_equal(gpuh_table_print(t, f), 0);
        fclose(f);
        return buf;
}

static void test_widths(void **state)
{
        static const char *const h[] = { "A", "MODEL", "DRIVER" };
        struct gpuh_table *t = NULL;
        char *out;

        assert_int_equal(gpuh_table_new(3, h, &t), 0);
        assert_int_equal(gpuh_table_add(t, (const char *const[]) { "0000:00:02.0",
                                                                   "WhiskeyLake-U GT2 [UHD Graphics 620]", "i915" }), 0);
        assert_int_equal(gpuh_table_add(t, (const char *const[]) { "x", "Café", NULL }), 0);
        assert_int_equal(gpuh_table_rows(t), 2);
        out = print(t);
        /* MODEL is as wide as the UHD 620's name; "Café" is 4 characters (5 bytes) wide */
        assert_string_equal(out, "A             MODEL                                 DRIVER\n"
                                 "0000:00:02.0  WhiskeyLake-U GT2 [UHD Graphics 620]  i915\n"
                                 "x             Café\n");
        free(out);
        gpuh_table_free(t);
}

static void test_bad(void **state)
{
        static const char *const h[] = { "A" };
        struct gpuh_table *t = NULL;

        assert_int_equal(gpuh_table_new(0, h, &t), -EINVAL);
        assert_int_equal(gpuh_table_new(GPUH_TABLE_MAX_COLS + 1, h, &t), -EINVAL);
        assert_null(gpuh_table_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_widths),
                cmocka_unit_test(test_bad),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
