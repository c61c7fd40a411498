/* SPDX-License-Identifier: Apache-2.0 */
/* test_vgpu_names: the vendor vGPU type-name cache file, read strictly (issue 8, item 11). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu_names.h"

static void test_roundtrip(void **state)
{
        struct gpuh_vgpu_type t[] = { { 1152, (char *) "NVIDIA L40S-8Q" }, { 1156, (char *) "NVIDIA L40S-48Q" },
                                      { 4294967295u, (char *) "NVIDIA \"quoted\" / name" } };
        struct gpuh_vgpu_type *back = NULL;
        char *text = NULL;
        int n;

        assert_int_equal(gpuh_vgpu_names_format(t, 3, &text), 0);
        assert_string_equal(text, "{\"version\":1,\"types\":{\"1152\":\"NVIDIA L40S-8Q\",\"1156\":\"NVIDIA L40S-48Q\","
                                  "\"4294967295\":\"NVIDIA \\\"quoted\\\" / name\"}}\n");
        n = gpuh_vgpu_names_parse(text, &back);
        assert_int_equal(n, 3);
        for (int i = 0; i < n; i++) {
                assert_int_equal(back[i].id, t[i].id);
                assert_string_equal(back[i].name, t[i].name);
        }
        gpuh_vgpu_types_free(back, (size_t) n);
        free(text);

        assert_int_equal(gpuh_vgpu_names_format(NULL, 0, &text), 0);
        assert_int_equal(gpuh_vgpu_names_parse(text, &back), 0);
        gpuh_vgpu_types_free(back, 0);
        free(text);
}

static void test_format_refuses(void **state)
{
        struct gpuh_vgpu_type down[] = { { 2, (char *) "b" }, { 1, (char *) "a" } };
        struct gpuh_vgpu_type ctl[] = { { 1, (char *) "a\tb" } };
        struct gpuh_vgpu_type zero[] = { { 0, (char *) "a" } };
        char *text = NULL;

        assert_int_equal(gpuh_vgpu_names_format(down, 2, &text), -EINVAL);
        assert_int_equal(gpuh_vgpu_names_format(ctl, 1, &text), -EINVAL);
        assert_int_equal(gpuh_vgpu_names_format(zero, 1, &text), -EINVAL);
        assert_null(text);
}

static void test_parse_strict(void **state)
{
        static const char *const bad[] = {
                "",
                "{",
                "[]",
                "{\"version\": 1}",
                "{\"version\": 1, \"types\": []}",
                "{\"version\": \"1\", \"types\": {}}",
                "{\"version\": 1.0, \"types\": {}}",
                "{\"version\": 2, \"types\": {}}",
                "{\"version\": 1, \"types\": {}, \"x\": 1}",
                "{\"version\": 1, \"types\": {}} {}",
                "{\"version\": 1, \"types\": {}} x",
                "{'version': 1, 'types': {}}",
                "{\"version\": 1, \"types\": {\"0\": \"a\"}}",
                "{\"version\": 1, \"types\": {\"01\": \"a\"}}",
                "{\"version\": 1, \"types\": {\"+1\": \"a\"}}",
                "{\"version\": 1, \"types\": {\"1 \": \"a\"}}",
                "{\"version\": 1, \"types\": {\"4294967296\": \"a\"}}",
                "{\"version\": 1, \"types\": {\"99999999999999999999999\": \"a\"}}",
                "{\"version\": 1, \"types\": {\"1\": \"\"}}",
                "{\"version\": 1, \"types\": {\"1\": 1}}",
                "{\"version\": 1, \"types\": {\"1\": null}}",
                "{\"version\": 1, \"types\": {\"1\": \"a\\nb\"}}",
                "{\"version\": 1, \"types\": {\"1\": \"a\\u0000b\"}}",
                "{\"version\": 1, \"types\": {\"1\": \"caf\\u00e9\"}}",
                "{\"version\": 1, \"types\": {\"2\": \"a\", \"1\": \"b\"}}",
                "{\"version\": 1, \"types\": {\"1\": \"a\", \"1\": \"b\"}}",
                /* valid JSON, not as written */
                "{\"version\": 1, \"types\": {\"1\": \"a\"}}\n",
                "{\"types\":{\"1\":\"a\"},\"version\":1}\n",
                "{\"version\":1,\"types\":{\"1\":\"a\"}}",
                "{\"version\":1,\"types\":{\"1\":\"\\u0061\"}}\n",
        };
        struct gpuh_vgpu_type *t = NULL;
        char name[GPUH_VGPU_NAME_MAX + 2], *text = NULL;
        size_t len = 0;
        FILE *f;

        assert_int_equal(gpuh_vgpu_names_parse("{\"version\":1,\"types\":{\"1\":\"a\"}}\n", &t), 1);
        gpuh_vgpu_types_free(t, 1);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = gpuh_vgpu_names_parse(bad[i], &t);
                if (r != -EBADMSG)
                        fail_msg("accepted (%d): %s", r, bad[i]);
        }
        /* a name of the longest length is fine, one more byte is not */
        memset(name, 'x', sizeof(name));
        name[GPUH_VGPU_NAME_MAX] = '\0';
        assert_true(gpuh_vgpu_name_ok(name));
        name[GPUH_VGPU_NAME_MAX] = 'x';
        name[GPUH_VGPU_NAME_MAX + 1] = '\0';
        assert_false(gpuh_vgpu_name_ok(name));
        assert_false(gpuh_vgpu_name_ok(""));
        assert_false(gpuh_vgpu_name_ok(NULL));

        /* at most GPUH_VGPU_NAMES_MAX entries */
        f = open_memstream(&text, &len);
        assert_non_null(f);
        fputs("{\"version\":1,\"types\":{", f);
        for (unsigned i = 1; i <= GPUH_VGPU_NAMES_MAX + 1; i++)
                fprintf(f, "%s\"%u\":\"T\"", i > 1 ? "," : "", i);
        fputs("}}", f);
        fclose(f);
        assert_int_equal(gpuh_vgpu_names_parse(text, &t), -EBADMSG);
        free(text);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_format_refuses),
                cmocka_unit_test(test_parse_strict),
        };
        return cmocka_run_group_tests_name("vgpu_names", tests, NULL, NULL);
}
