/* SPDX-License-Identifier: Apache-2.0 */
/* test_config: defaults, a full file, and every kind of rejected file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "testutil.h"


static int load_text(const char *text, struct gpuh_config **c, char **err)
{
        char path[PATH_MAX];

        tu_write(tu_dir, "c.json", text);
        snprintf(path, sizeof(path), "%s/c.json", tu_dir);
        return gpuh_config_load(path, true, c, err);
}

static void test_defaults(void **state)
{
        struct gpuh_config *c = NULL;
        char path[PATH_MAX], *err = NULL;

        snprintf(path, sizeof(path), "%s/absent.json", tu_dir);
        assert_int_equal(gpuh_config_load(path, false, &c, &err), 0);
        assert_null(err);
        assert_int_equal(c->libvirt_timeout_ms, 10000);
        assert_null(c->libvirt_uri);
        assert_string_equal(c->domain_xml_dirs[0], "/run/libvirt/qemu");
        assert_string_equal(c->domain_xml_dirs[1], "/etc/libvirt/qemu");
        assert_null(c->domain_xml_dirs[2]);
        assert_false(c->passthrough_boot_vga);
        assert_string_equal(c->on_start_method, "onStart");
        assert_string_equal(c->on_stop_method, "onStop");
        assert_int_equal(c->write_timeout_ms, 10000);
        assert_int_equal(c->lock_timeout_ms, 10000);
        assert_int_equal(c->nvidia_mdev_grace_ms, 10000);
        assert_int_equal(c->reconcile_min_age_s, 120);
        assert_false(c->enable_sriov);
        assert_false(gpuh_config_keep_vfio(c, 0x10de, 0x2330));
        gpuh_config_free(c);

        /* a path the operator named must exist */
        c = NULL;
        assert_int_equal(gpuh_config_load(path, true, &c, &err), -ENOENT);
        assert_null(c);
        assert_non_null(strstr(err, "absent.json"));
        free(err);
}

static void test_full(void **state)
{
        struct gpuh_config *c = NULL;
        char *err = NULL;
        struct gpuh_pci_addr a;

        assert_int_equal(load_text("{\"$schema\": \"x\", \"discovery\": {\"extra_gpu_vendors\": [\"1da3\"],"
                                   " \"passthrough_boot_vga\": true, \"exclude_passthrough\": [\"0000:3d:00.0\"]},"
                                   " \"libvirt\": {\"uri\": \"test:///default\", \"timeout_ms\": 250,"
                                   " \"domain_xml_dirs\": [\"/a\"]}}", &c, &err), 0);
        assert_true(gpuh_config_is_extra_vendor(c, 0x1da3));
        assert_false(gpuh_config_is_extra_vendor(c, 0x1a03));
        assert_true(c->passthrough_boot_vga);
        gpuh_pci_addr_parse("0000:3d:00.0", &a);
        assert_true(gpuh_config_excludes_passthrough(c, &a));
        gpuh_pci_addr_parse("0000:3e:00.0", &a);
        assert_false(gpuh_config_excludes_passthrough(c, &a));
        assert_string_equal(c->libvirt_uri, "test:///default");
        assert_int_equal(c->libvirt_timeout_ms, 250);
        assert_string_equal(c->domain_xml_dirs[0], "/a");
        assert_null(c->domain_xml_dirs[1]);
        gpuh_config_free(c);
}

static void test_state_change(void **state)
{
        struct gpuh_config *c = NULL;
        char *err = NULL;

        assert_int_equal(load_text("{\"state_change\": {\"on_start_method\": \"vmStarted\", \"on_stop_method\": \"vm_stopped\","
                                   " \"write_timeout_ms\": 100, \"lock_timeout_ms\": 600000, \"enable_sriov\": true,"
                                   " \"keep_vfio\": [\"10de:2330\", \"1002:*\"], \"nvidia_mdev_grace_ms\": 0,"
                                   " \"reconcile_min_age_s\": 0}}", &c, &err), 0);
        assert_string_equal(c->on_start_method, "vmStarted");
        assert_string_equal(c->on_stop_method, "vm_stopped");
        assert_int_equal(c->write_timeout_ms, 100);
        assert_int_equal(c->lock_timeout_ms, 600000);
        assert_true(c->enable_sriov);
        assert_true(gpuh_config_keep_vfio(c, 0x10de, 0x2330));
        assert_false(gpuh_config_keep_vfio(c, 0x10de, 0x2331));
        assert_true(gpuh_config_keep_vfio(c, 0x1002, 0x740f));
        assert_int_equal(c->nvidia_mdev_grace_ms, 0);
        assert_int_equal(c->reconcile_min_age_s, 0);
        gpuh_config_free(c);
}

static void test_rejects(void **state)
{
        static const struct { const char *text, *needle; } bad[] = {
                { "", "not valid JSON" },
                { "{", "not valid JSON" },
                { "{} {}", "not valid JSON" },
                { "[]", "top level" },
                { "{\"discovry\": {}}", "discovry" },
                { "{\"discovery\": {\"extra_gpu_vendor\": []}}", "discovery.extra_gpu_vendor" },
                { "{\"discovery\": {\"extra_gpu_vendors\": [\"1DA3\"]}}", "extra_gpu_vendors[0]" },
                { "{\"discovery\": {\"extra_gpu_vendors\": [4567]}}", "extra_gpu_vendors[0]" },
                { "{\"discovery\": {\"passthrough_boot_vga\": 1}}", "passthrough_boot_vga" },
                { "{\"discovery\": {\"exclude_passthrough\": [\"3d:00\"]}}", "exclude_passthrough[0]" },
                { "{\"libvirt\": {\"timeout_ms\": 0}}", "timeout_ms" },
                { "{\"libvirt\": {\"timeout_ms\": 60001}}", "timeout_ms" },
                { "{\"libvirt\": {\"timeout_ms\": \"5\"}}", "timeout_ms" },
                { "{\"libvirt\": {\"uri\": 5}}", "uri" },
                { "{\"libvirt\": {\"domain_xml_dirs\": [\"relative\"]}}", "domain_xml_dirs[0]" },
                { "{\"libvirt\": []}", "key libvirt: must be an object" },
                { "{\"state_change\": {\"write_timeout_ms\": 99}}", "write_timeout_ms" },
                { "{\"state_change\": {\"lock_timeout_ms\": 600001}}", "lock_timeout_ms" },
                { "{\"state_change\": {\"on_start_method\": \"on start\"}}", "on_start_method" },
                { "{\"state_change\": {\"on_stop_method\": \"-x\"}}", "on_stop_method" },
                { "{\"state_change\": {\"on_start_method\": \"same\", \"on_stop_method\": \"same\"}}", "must differ" },
                { "{\"state_change\": {\"on_stop_method\": \"reconcile\"}}", "must differ" },
                { "{\"state_change\": {\"keep_vfio\": [\"10DE:2330\"]}}", "keep_vfio[0]" },
                { "{\"state_change\": {\"keep_vfio\": [\"10de\"]}}", "keep_vfio[0]" },
                { "{\"state_change\": {\"enable_sriov\": \"yes\"}}", "enable_sriov" },
                { "{\"state_change\": {\"nvidia_mdev_grace_ms\": -1}}", "nvidia_mdev_grace_ms" },
                { "{\"state_change\": {\"reconcile\": 1}}", "state_change.reconcile" },
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct gpuh_config *c = NULL;
                char *err = NULL;
                int r = load_text(bad[i].text, &c, &err);

                if (r != -EBADMSG)
                        fail_msg("'%s' gave %d", bad[i].text, r);
                assert_null(c);
                assert_non_null(err);
                if (!strstr(err, bad[i].needle))
                        fail_msg("'%s': message '%s' lacks '%s'", bad[i].text, err, bad[i].needle);
                assert_null(strchr(err, '\n'));
                free(err);
        }
}

static int load_lenient(const char *text, struct gpuh_config **c, char **err)
{
        char path[PATH_MAX];

        tu_write(tu_dir, "l.json", text);
        snprintf(path, sizeof(path), "%s/l.json", tu_dir);
        return gpuh_config_load_or_default(path, true, c, err);
}

/* A file that loads gives the same as gpuh_config_load() and no error. */
static void test_lenient_good(void **state)
{
        struct gpuh_config *c = NULL;
        char path[PATH_MAX], *err = NULL;

        assert_int_equal(load_lenient("{\"state_change\": {\"write_timeout_ms\": 100}}", &c, &err), 0);
        assert_null(err);
        assert_int_equal(c->write_timeout_ms, 100);
        gpuh_config_free(c);

        /* the default path may be absent */
        snprintf(path, sizeof(path), "%s/absent.json", tu_dir);
        c = NULL;
        assert_int_equal(gpuh_config_load_or_default(path, false, &c, &err), 0);
        assert_null(err);
        assert_int_equal(c->write_timeout_ms, 10000);
        gpuh_config_free(c);
}

/* Broken files: the defaults, the strict loader's line (file and key), and the rules whose
 * match is valid. */
static void test_lenient_broken(void **state)
{
        static const char rule[] = "\"transformer\": {\"rules\": [{\"match\": {\"name\": \"i-2-*\"},"
                                   " \"requests\": [{\"mode\": \"passthrough\"}]}]";
        static const struct { const char *text, *needle; size_t n_rules; } cases[] = {
                /* an unknown key: elsewhere, and next to the rules */
                { "{\"discovry\": {}, @}}", "key discovry: unknown key", 1 },
                { "{@, \"allow_mixd\": true}}", "key transformer.allow_mixd: unknown key", 1 },
                /* a bad value; valid settings beside it are not used either */
                { "{\"state_change\": {\"write_timeout_ms\": 5, \"lock_timeout_ms\": 100}, @}}",
                  "key state_change.write_timeout_ms: must be an integer from 100 to 600000", 1 },
                { "{\"libvirt\": {\"timeout_ms\": 250, \"uri\": 5}, @}}", "key libvirt.uri: ", 1 },
                /* the only rule's match broken: none */
                { "{\"transformer\": {\"rules\": [{\"match\": {}, \"requests\": []}]}}", "rules[0].match", 0 },
                /* not JSON: nothing can be trusted */
                { "{@,\n  \"x\": }}", "not valid JSON", 0 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gpuh_config *c = NULL;
                char text[1024], *err = NULL;

                const char *at = strchr(cases[i].text, '@');

                /* '@' stands for the valid rules */
                if (at)
                        snprintf(text, sizeof(text), "%.*s%s%s", (int) (at - cases[i].text), cases[i].text, rule, at + 1);
                else
                        snprintf(text, sizeof(text), "%s", cases[i].text);
                assert_int_equal(load_lenient(text, &c, &err), 0);
                assert_non_null(c);
                if (!err || !strstr(err, cases[i].needle) || !strstr(err, "l.json"))
                        fail_msg("'%s': message '%s' lacks '%s' or the file", text, err ? err : "(none)", cases[i].needle);
                assert_null(strchr(err, '\n'));
                /* the defaults */
                assert_int_equal(c->write_timeout_ms, 10000);
                assert_int_equal(c->lock_timeout_ms, 10000);
                assert_int_equal(c->libvirt_timeout_ms, 10000);
                assert_null(c->libvirt_uri);
                assert_false(c->allow_mixed);
                if (c->n_rules != cases[i].n_rules)
                        fail_msg("'%s': %zu rules, expected %zu", text, c->n_rules, cases[i].n_rules);
                if (c->n_rules) {
                        assert_string_equal(c->rules[0].match.name, "i-2-*");
                        assert_int_equal(c->rules[0].n_requests, 1);
                }
                gpuh_config_free(c);
                free(err);
        }
}

/* Rules in a broken file: each one whose match is valid is kept (its requests only when valid),
 * so that a domain it matches is still known to want GPUs. */
static void test_lenient_rules(void **state)
{
        struct gpuh_config *c = NULL;
        char *err = NULL;

        assert_int_equal(load_lenient("{\"transformer\": {\"rules\": ["
                                      "{\"match\": {\"nmae\": \"x\"}, \"requests\": [{\"mode\": \"passthrough\"}]},"
                                      "{\"match\": {\"name\": \"a-*\"}, \"requests\": [{\"mode\": \"mdev\"}]},"
                                      "{\"match\": {\"service_offering\": \"GPU-*\"}, \"requests\": [{\"mode\": \"passthrough\"}]},"
                                      "{\"requests\": [{\"mode\": \"passthrough\"}]}, 5]}}", &c, &err), 0);
        assert_non_null(strstr(err, "rules[0].match.nmae"));
        assert_int_equal(c->n_rules, 2);
        assert_string_equal(c->rules[0].match.name, "a-*");
        assert_int_equal(c->rules[0].n_requests, 0);            /* mdev without a profile */
        assert_null(c->rules[0].requests);
        assert_string_equal(c->rules[1].match.service_offering, "GPU-*");
        assert_int_equal(c->rules[1].n_requests, 1);
        gpuh_config_free(c);
        free(err);
}

/* The agent's renamed methods survive a broken file when they are valid themselves. */
static void test_lenient_methods(void **state)
{
        struct gpuh_config *c = NULL;
        char *err = NULL;

        assert_int_equal(load_lenient("{\"state_change\": {\"on_start_method\": \"vmStarted\", \"on_stop_method\":"
                                      " \"vmStopped\", \"keep_vfio\": [\"x\"]}}", &c, &err), 0);
        assert_non_null(strstr(err, "keep_vfio[0]"));
        assert_string_equal(c->on_start_method, "vmStarted");
        assert_string_equal(c->on_stop_method, "vmStopped");
        assert_int_equal(c->n_keep_vfio, 0);
        gpuh_config_free(c);
        free(err);

        c = NULL;
        assert_int_equal(load_lenient("{\"state_change\": {\"on_start_method\": \"same\", \"on_stop_method\": \"same\"}}",
                                      &c, &err), 0);
        assert_non_null(strstr(err, "must differ"));
        assert_string_equal(c->on_start_method, "onStart");
        assert_string_equal(c->on_stop_method, "onStop");
        gpuh_config_free(c);
        free(err);
}

/* Missing and unreadable named files: defaults and a line naming the file. */
static void test_lenient_missing(void **state)
{
        struct gpuh_config *c = NULL;
        char path[PATH_MAX], *err = NULL;

        snprintf(path, sizeof(path), "%s/absent.json", tu_dir);
        assert_int_equal(gpuh_config_load_or_default(path, true, &c, &err), 0);
        assert_non_null(c);
        assert_non_null(strstr(err, "absent.json"));
        assert_int_equal(c->reservation_ttl_s, 600);
        gpuh_config_free(c);
        free(err);

        c = NULL;
        assert_int_equal(gpuh_config_load_or_default(tu_dir, true, &c, &err), 0);
        assert_non_null(strstr(err, "not a regular file"));
        gpuh_config_free(c);
        free(err);
}

/* A JSON syntax error says where. */
static void test_syntax_position(void **state)
{
        struct gpuh_config *c = NULL;
        char *err = NULL;

        assert_int_equal(load_text("{\n  \"discovery\": {},\n  \"libvirt\": ]\n}", &c, &err), -EBADMSG);
        if (!strstr(err, "c.json:3:14: not valid JSON: "))
                fail_msg("'%s' lacks the position", err);
        free(err);
        assert_int_equal(load_text("{}\n\n  {}", &c, &err), -EBADMSG);
        if (!strstr(err, "c.json:3:3: not valid JSON: "))
                fail_msg("'%s' lacks the position of the second value", err);
        free(err);
        assert_int_equal(load_text("{\"a\":", &c, &err), -EBADMSG);
        if (!strstr(err, "incomplete document"))
                fail_msg("'%s' does not say the document is incomplete", err);
        free(err);
}

/* A schema error names the file, the line and column of the key, the key, and the problem:
 * "FILE:LINE:COLUMN: key KEY: PROBLEM" (issue 12). */
static void test_key_position(void **state)
{
        static const struct { const char *text, *want; } cases[] = {
                /* a value of the wrong type: the position of its key */
                { "{\n  \"transformer\": {\n    \"rules\": [\n      {\"match\": {\"name\": 5}, \"requests\": []}\n"
                  "    ]\n  }\n}\n",
                  "c.json:4:18: key transformer.rules[0].match.name: must be a non-empty string" },
                /* the second rule: the scan skips the first one's values, strings with brackets,
                 * braces and escaped quotes among them */
                { "{\"transformer\": {\"rules\": [{\"match\": {\"name\": \"[{\\\"}]\"}, \"requests\": "
                  "[{\"mode\": \"passthrough\"}]},\n {\"match\": {\"zone\": \"\"}, \"requests\": []}]}}",
                  "c.json:2:13: key transformer.rules[1].match.zone: must be a non-empty string" },
                /* an unknown key: where it is */
                { "{\"discovery\": {},\n\t\"libvirt\": {\"timeout_ms\": 5,\n  \"urx\": null}}",
                  "c.json:3:3: key libvirt.urx: unknown key" },
                /* an array element: the element */
                { "{\"state_change\": {\"keep_vfio\": [\"10de:2330\",\n   \"zz\"]}}",
                  "c.json:2:4: key state_change.keep_vfio[1]: must be " },
                /* a request of a rule: the property */
                { "{\"transformer\": {\"rules\": [{\"match\": {\"name\": \"x\"},\n\"requests\": [{\"mode\": \"bogus\"}]}]}}",
                  "c.json:2:15: key transformer.rules[0].requests[0].mode: " },
                /* a key given twice: json-c keeps the last, so does the position */
                { "{\"libvirt\": {\"timeout_ms\": 5},\n \"libvirt\": {\"timeout_ms\": 0}}",
                  "c.json:2:14: key libvirt.timeout_ms: must be an integer from 1 to 60000" },
                /* a key spelled with an escape */
                { "{\"libvirt\": {\"timeout\\u005fms\": 0}}", "c.json:1:14: key libvirt.timeout_ms: " },
                /* the top level */
                { "\n  [1]", "c.json:2:3: the top level must be an object" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gpuh_config *c = NULL;
                char *err = NULL;

                assert_int_equal(load_text(cases[i].text, &c, &err), -EBADMSG);
                assert_non_null(err);
                if (!strstr(err, cases[i].want))
                        fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
                assert_null(strchr(err, '\n'));
                free(err);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_state_change),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_lenient_good),
                cmocka_unit_test(test_lenient_broken),
                cmocka_unit_test(test_lenient_rules),
                cmocka_unit_test(test_lenient_methods),
                cmocka_unit_test(test_lenient_missing),
                cmocka_unit_test(test_syntax_position),
                cmocka_unit_test(test_key_position),
        };
        return cmocka_run_group_tests_name("config", tests, tu_group_setup, tu_group_teardown);
}
