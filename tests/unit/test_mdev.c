/* SPDX-License-Identifier: Apache-2.0 */
/* test_mdev: vGPU type descriptions, UUIDs, NVIDIA creatable_vgpu_types. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "mdev.h"
#include "vendor_vgpu.h"

static void test_nvidia_description(void **state)
{
        struct gpuh_vgpu_params p;

        /* HPE DL380 Gen9 A2, type nvidia-754: harvester/pcidevices @bdd8025 testdata */
        gpuh_vgpu_params_parse("nvidia-754",
                "num_heads=1, frl_config=60, framebuffer=4096M, max_resolution=4096x2400, max_instance=4", &p);
        assert_int_equal(p.max_instances, 4);
        assert_int_equal(p.video_ram_mib, 4096);
        assert_int_equal(p.max_heads, 1);
        assert_int_equal(p.max_res_x, 4096);
        assert_int_equal(p.max_res_y, 2400);
}

static void test_gvtg_description(void **state)
{
        struct gpuh_vgpu_params p;

        gpuh_vgpu_params_parse("i915-GVTg_V5_4",
                "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4\n", &p);
        assert_int_equal(p.max_instances, 4);
        assert_int_equal(p.video_ram_mib, 640);
        assert_int_equal(p.max_heads, -1);
        assert_int_equal(p.max_res_x, 1920);
        assert_int_equal(p.max_res_y, 1200);

        gpuh_vgpu_params_parse("i915-GVTg_V5_8",
                "low_gm_size: 64MB\nhigh_gm_size: 384MB\nfence: 4\nresolution: 1024x768\nweight: 2\n", &p);
        assert_int_equal(p.max_instances, 8);
        assert_int_equal(p.video_ram_mib, 448);
}

static void test_description_garbage(void **state)
{
        struct gpuh_vgpu_params p;

        gpuh_vgpu_params_parse("nvidia-1", NULL, &p);
        assert_int_equal(p.max_instances, -1);
        assert_int_equal(p.video_ram_mib, -1);
        gpuh_vgpu_params_parse("nvidia-1", "max_instance=abc, framebuffer=12XB, max_resolution=10x, num_heads=", &p);
        assert_int_equal(p.max_instances, -1);
        assert_int_equal(p.video_ram_mib, -1);
        assert_int_equal(p.max_res_x, -1);
        assert_int_equal(p.max_res_y, -1);
        assert_int_equal(p.max_heads, -1);
        gpuh_vgpu_params_parse("nvidia-1", "framebuffer=2G,max_instance=99999999999999999999999", &p);
        assert_int_equal(p.video_ram_mib, 2048);
        assert_int_equal(p.max_instances, -1);
        /* a type id alone is no GVT-g type */
        gpuh_vgpu_params_parse("GVTg_V5_x", "", &p);
        assert_int_equal(p.max_instances, -1);
}

/* Hostile sysfs numbers: each fits int64 alone, their sum does not (issue 8, item 15). */
static void test_description_overflow(void **state)
{
        struct gpuh_vgpu_params p;

        gpuh_vgpu_params_parse("i915-GVTg_V5_4",
                "low_gm_size: 9223372036854775000MB\nhigh_gm_size: 9223372036854775000MB\n", &p);
        assert_int_equal(p.video_ram_mib, -1);
        assert_int_equal(p.max_instances, 4);
        gpuh_vgpu_params_parse("i915-GVTg_V5_4", "low_gm_size: 9223372036854775000MB\nhigh_gm_size: 807MB\n", &p);
        assert_int_equal(p.video_ram_mib, INT64_MAX);
        gpuh_vgpu_params_parse("i915-GVTg_V5_4", "low_gm_size: 9223372036854775000MB\nhigh_gm_size: 808MB\n", &p);
        assert_int_equal(p.video_ram_mib, -1);
}

static void test_uuid(void **state)
{
        assert_true(gpuh_uuid_is_valid("f715f63c-0d00-4007-9c5a-b07b0c6c05de"));
        assert_true(gpuh_uuid_is_valid("F715F63C-0D00-4007-9C5A-B07B0C6C05DE"));
        assert_false(gpuh_uuid_is_valid("f715f63c-0d00-4007-9c5a-b07b0c6c05d"));
        assert_false(gpuh_uuid_is_valid("f715f63c-0d00-4007-9c5a-b07b0c6c05dee"));
        assert_false(gpuh_uuid_is_valid("f715f63c0d00-4007-9c5a-b07b0c6c05de0"));
        assert_false(gpuh_uuid_is_valid("../../../../../../../../etc/passwd00"));
        assert_false(gpuh_uuid_is_valid(NULL));
        assert_false(gpuh_uuid_is_valid(""));
        assert_false(gpuh_uuid_is_valid("f715f63c-0d00-4007-9c5a-b07b0c6c05dg"));
        assert_false(gpuh_uuid_is_valid("{f715f63c-0d00-4007-9c5a-b07b0c6c05d}"));
        assert_false(gpuh_uuid_is_valid(" f715f63c-0d00-4007-9c5a-b07b0c6c05d"));
        assert_false(gpuh_uuid_is_valid("f715f63c-0d00-4007-9c5a-b07b0c6c05d\n"));
        assert_false(gpuh_uuid_is_valid("f715f63c-0d00-4007-9c5a-b07b0c6c05de\n"));
        assert_false(gpuh_uuid_is_valid("f715f63cf0d00f4007f9c5afb07b0c6c05de"));      /* no dashes, 36 long */
        assert_false(gpuh_uuid_is_valid("f715f63c-0d00-4007-9c5a-b07b0c6c05\xe9" "e"));
}

/* Valid UUIDs come back lowercase, dashed; anything else is -EINVAL and leaves the buffer alone. */
static void test_uuid_normalize(void **state)
{
        static const char *const bad[] = { "", "f715f63c-0d00-4007-9c5a-b07b0c6c05d", "f715f63c-0d00-4007-9c5a-b07b0c6c05dee",
                                           "f715f63c_0d00-4007-9c5a-b07b0c6c05de", "f715f63c0d0004007f9c5a-b07b0c6c05de",
                                           "f715f63c-0d00-4007-9c5a-b07b0c6c05dx", "../../../../../../../../etc/passwd00" };
        char out[GPUH_UUID_STR_LEN + 1];

        assert_int_equal(gpuh_uuid_normalize("F715F63C-0D00-4007-9C5A-B07B0C6C05DE", out), 0);
        assert_string_equal(out, "f715f63c-0d00-4007-9c5a-b07b0c6c05de");
        assert_int_equal(gpuh_uuid_normalize("f715f63c-0d00-4007-9c5a-b07b0c6c05de", out), 0);
        assert_string_equal(out, "f715f63c-0d00-4007-9c5a-b07b0c6c05de");
        assert_int_equal(gpuh_uuid_normalize("00000000-0000-0000-0000-00000000000A", out), 0);
        assert_string_equal(out, "00000000-0000-0000-0000-00000000000a");
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                memcpy(out, "untouched", sizeof("untouched"));
                if (gpuh_uuid_normalize(bad[i], out) != -EINVAL)
                        fail_msg("'%s' accepted", bad[i]);
                assert_string_equal(out, "untouched");
                assert_false(gpuh_uuid_is_valid(bad[i]));
        }
        assert_int_equal(gpuh_uuid_normalize(NULL, out), -EINVAL);
}

static void test_creatable_types(void **state)
{
        /* L40S VF 0000:26:00.4: harvester/pcidevices @bdd8025 testdata, abridged */
        const char *text = "ID    : vGPU Name\n1148  : NVIDIA L40S-2Q\n1145  : NVIDIA L40S-1B\n"
                           "2164  : NVIDIA L40S-3B\n";
        struct gpuh_vgpu_type *t = NULL;
        int n = gpuh_vgpu_types_parse(text, &t);

        assert_int_equal(n, 3);
        assert_int_equal(t[0].id, 1145);
        assert_string_equal(t[0].name, "NVIDIA L40S-1B");
        assert_int_equal(t[2].id, 2164);
        assert_string_equal(gpuh_vgpu_type_name(t, 3, 1148), "NVIDIA L40S-2Q");
        assert_null(gpuh_vgpu_type_name(t, 3, 1));
        gpuh_vgpu_types_free(t, 3);

        assert_int_equal(gpuh_vgpu_types_parse("ID    : vGPU Name\n", &t), 0);
        gpuh_vgpu_types_free(t, 0);
        assert_int_equal(gpuh_vgpu_types_parse("", &t), 0);
        gpuh_vgpu_types_free(t, 0);
        assert_int_equal(gpuh_vgpu_types_parse("ID : x\nnot a line\n", &t), -EBADMSG);
        assert_int_equal(gpuh_vgpu_types_parse("12 NVIDIA\n", &t), -EBADMSG);
        assert_int_equal(gpuh_vgpu_types_parse("12 : \n", &t), -EBADMSG);
        assert_int_equal(gpuh_vgpu_types_parse("0 : zero\n", &t), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nvidia_description),
                cmocka_unit_test(test_gvtg_description),
                cmocka_unit_test(test_description_garbage),
                cmocka_unit_test(test_description_overflow),
                cmocka_unit_test(test_uuid),
                cmocka_unit_test(test_uuid_normalize),
                cmocka_unit_test(test_creatable_types),
        };
        return cmocka_run_group_tests_name("mdev", tests, NULL, NULL);
}
