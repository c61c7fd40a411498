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
                { "{\"libvirt\": []}", "'libvirt' must be an object" },
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_state_change),
                cmocka_unit_test(test_rejects),
        };
        return cmocka_run_group_tests_name("config", tests, tu_group_setup, tu_group_teardown);
}
