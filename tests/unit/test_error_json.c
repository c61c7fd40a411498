/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON error form (common/error_json.h): the object, and the device a line names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error_json.h"

static void test_device(void **state)
{
        static const struct { const char *msg, *want; } cases[] = {
                { "i-2-9-VM: 0000:05:00.0: held by pid 42 (qemu)", "0000:05:00.0" },
                { "i-2-9-VM: 0000:AF:00.1 is on driver nvidia", "0000:af:00.1" },
                { "10000:05:00.0: a 5-digit domain", "10000:05:00.0" },
                /* the PCI address first, wherever a UUID stands */
                { "mdev 4b20d080-1b54-4048-85b3-a6a62d165c01 on 0000:08:02.0: no such type", "0000:08:02.0" },
                { "mdev 4B20D080-1B54-4048-85B3-A6A62D165C01: not on this host", "4b20d080-1b54-4048-85b3-a6a62d165c01" },
                /* not standing alone, or not an address */
                { "version 1.0000:05:00.0", NULL },
                { "0000:05:00.0.1", NULL },
                { "0000:05:20.0: slot over 0x1f", NULL },
                { "0000:05:00.8", NULL },
                { "config '/etc/gpuhooks/gpuhooks.json':4:18: key x: unknown key", NULL },
                { "4b20d080-1b54-4048-85b3-a6a62d165c01-0", NULL },
                { "0000:05:00.0. Then", "0000:05:00.0" },
                { "", NULL },
        };
        char dev[GPUH_ERROR_DEVICE_MAX];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                bool found = gpuh_error_device(cases[i].msg, dev);

                if (found != (cases[i].want != NULL) || (found && strcmp(dev, cases[i].want) != 0))
                        fail_msg("'%s': got %s, expected %s", cases[i].msg, found ? dev : "none",
                                 cases[i].want ? cases[i].want : "none");
        }
        assert_false(gpuh_error_device(NULL, dev));
}

static void test_object(void **state)
{
        json_object *o = gpuh_error_to_json("i-2-9-VM: 0000:05:00.0: held by pid 42 (qemu)", -EBUSY), *v;

        assert_non_null(o);
        assert_int_equal(json_object_object_length(o), 3);
        assert_true(json_object_object_get_ex(o, "error", &v));
        assert_string_equal(json_object_get_string(v), "i-2-9-VM: 0000:05:00.0: held by pid 42 (qemu)");
        assert_true(json_object_object_get_ex(o, "errno", &v));
        assert_true(json_object_is_type(v, json_type_int));
        assert_int_equal(json_object_get_int(v), EBUSY);
        assert_true(json_object_object_get_ex(o, "device", &v));
        assert_string_equal(json_object_get_string(v), "0000:05:00.0");
        json_object_put(o);

        /* no errno (a usage error), no device: both null, still present */
        o = gpuh_error_to_json("unknown option '--bogus' (see --help)", 0);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "errno", &v));
        assert_null(v);
        assert_true(json_object_object_get_ex(o, "device", &v));
        assert_null(v);
        assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                            "{\"error\":\"unknown option '--bogus' (see --help)\",\"errno\":null,\"device\":null}");
        json_object_put(o);

        /* no line: strerror() of the errno */
        o = gpuh_error_to_json(NULL, -ENOENT);
        assert_true(json_object_object_get_ex(o, "error", &v));
        assert_string_equal(json_object_get_string(v), strerror(ENOENT));
        json_object_put(o);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_device),
                cmocka_unit_test(test_object),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
