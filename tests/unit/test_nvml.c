/* SPDX-License-Identifier: Apache-2.0 */
/* test_nvml: the NVML layer against the fake libnvidia-ml.so.1 (tests/fakenvml): queries,
 * every kind of failure as one line, the deadline, and the change operations with the
 * refusals of NVIDIA's documentation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <time.h>

#include "clock.h"
#include "nvml.h"
#include "testutil.h"

static char lib[PATH_MAX], state[PATH_MAX], *tmp;

/* An A100 in MIG mode with two GIs (1g.5gb at slice 0, 2g.10gb at slices 2-3) and VFs
 * enabled; an L40S with heterogeneous mode on. Profile and type numbers: NVIDIA MIG user
 * guide (A100-SXM4-40GB) and vGPU user guide (A100 MIG-backed types), as in tests/fakenvml. */
#define STATE_A100_L40S "{\"gpus\": [" \
        "{\"pci_bus_id\": \"0000:3b:00.0\", \"vfs_enabled\": 1, \"mig\": {\"current\": 1, \"pending\": 1}," \
        " \"gi_profiles\": [" \
        "  {\"index\": 0, \"id\": 19, \"name\": \"MIG 1g.5gb\", \"slices\": 1, \"instances\": 7, \"memory_mib\": 4864," \
        "   \"placements\": [{\"start\": 0, \"size\": 1}, {\"start\": 1, \"size\": 1}, {\"start\": 4, \"size\": 1}]}," \
        "  {\"index\": 1, \"id\": 14, \"name\": \"MIG 2g.10gb\", \"slices\": 2, \"instances\": 3, \"memory_mib\": 9856," \
        "   \"placements\": [{\"start\": 0, \"size\": 2}, {\"start\": 2, \"size\": 2}, {\"start\": 4, \"size\": 2}]}]," \
        " \"gpu_instances\": [{\"id\": 3, \"profile_id\": 14, \"start\": 2, \"size\": 2}, {\"id\": 1, \"profile_id\": 19, \"start\": 0, \"size\": 1}]," \
        " \"vgpu_types\": [" \
        "  {\"id\": 469, \"name\": \"NVIDIA A100-5C\", \"framebuffer_mib\": 5120, \"max_instances\": 8}," \
        "  {\"id\": 474, \"name\": \"NVIDIA A100-1-5C\", \"framebuffer_mib\": 4864, \"max_instances\": 7, \"gi_profile_id\": 19}," \
        "  {\"id\": 475, \"name\": \"NVIDIA A100-2-10C\", \"framebuffer_mib\": 9856, \"max_instances\": 3, \"gi_profile_id\": 14}]}," \
        "{\"pci_bus_id\": \"0000:26:00.0\", \"vgpu_heterogeneous_mode\": 1," \
        " \"vgpu_types\": [{\"id\": 1151, \"name\": \"NVIDIA L40S-6Q\", \"framebuffer_mib\": 6144, \"max_instances\": 8}]}]%s}"

static void write_state(const char *extra)
{
        char buf[8192];

        snprintf(buf, sizeof(buf), STATE_A100_L40S, extra ? extra : "");
        tu_write(tmp, "state.json", buf);
}

static int setup(void **s)
{
        const char *bin = getenv("GPUH_TEST_BINDIR");

        tmp = tu_mkdtemp();
        snprintf(lib, sizeof(lib), "%s/tests/fakenvml/libnvidia-ml.so.1", bin ? bin : ".");
        snprintf(state, sizeof(state), "%s/state.json", tmp);
        setenv("GPUH_FAKE_NVML_STATE", state, 1);
        return tmp ? 0 : -1;
}

static int teardown(void **s)
{
        tu_rmtree(tmp);
        free(tmp);
        return 0;
}

static void addr(const char *s, struct gpuh_pci_addr *a)
{
        assert_int_equal(gpuh_pci_addr_parse(s, a), 0);
}

static void test_query(void **s)
{
        struct gpuh_pci_addr a[3];
        struct gpuh_nvml_info *info = NULL;
        const struct gpuh_nvml_gpu *g;
        const struct gpuh_nvml_type *t;

        write_state(NULL);
        addr("0000:3b:00.0", &a[0]);
        addr("0000:26:00.0", &a[1]);
        addr("0000:af:00.0", &a[2]);
        assert_int_equal(gpuh_nvml_query(lib, a, 3, 5000, &info), 0);
        assert_null(info->error);
        assert_int_equal(info->n_gpus, 3);

        g = gpuh_nvml_info_gpu(info, &a[0]);
        assert_non_null(g);
        assert_null(g->error);
        assert_int_equal(g->mig_current, 1);
        assert_int_equal(g->mig_pending, 1);
        assert_int_equal(g->vgpu_mode, GPUH_VGPU_MODE_UNKNOWN);        /* not supported in MIG mode */
        assert_int_equal(g->n_gis, 2);
        assert_int_equal(g->gis[0].id, 1);                              /* by id */
        assert_int_equal(g->gis[0].profile_id, 19);
        assert_string_equal(g->gis[0].profile_name, "MIG 1g.5gb");
        assert_int_equal(g->gis[1].id, 3);
        assert_int_equal(g->gis[1].placement_start, 2);
        assert_int_equal(g->gis[1].placement_size, 2);
        /* profiles: all placements, and what is left: 1g at slices 1 and 4 (0 has GI 1, 2-3 GI 3),
         * 2g only at 4-5 */
        assert_int_equal(g->n_profiles, 2);
        assert_int_equal(g->profiles[0].id, 14);
        assert_string_equal(g->profiles[0].name, "MIG 2g.10gb");
        assert_int_equal(g->profiles[0].slices, 2);
        assert_int_equal(g->profiles[0].instances, 3);
        assert_int_equal(g->profiles[0].memory_mib, 9856);
        assert_int_equal(g->profiles[0].n_placements, 3);
        assert_int_equal(g->profiles[0].placements[2].start, 4);
        assert_int_equal(g->profiles[0].placements[2].size, 2);
        assert_int_equal(g->profiles[0].remaining, 1);
        assert_int_equal(g->profiles[1].id, 19);
        assert_int_equal(g->profiles[1].remaining, 2);
        assert_int_equal(g->n_types, 3);
        t = gpuh_nvml_gpu_type(g, 474);
        assert_non_null(t);
        assert_string_equal(t->name, "NVIDIA A100-1-5C");
        assert_int_equal(t->fb_mib, 4864);
        assert_int_equal(t->max_instances, 7);
        assert_int_equal(t->gi_profile_id, 19);
        assert_true(t->creatable);
        t = gpuh_nvml_gpu_type(g, 469);
        assert_int_equal(t->gi_profile_id, -1);
        assert_false(t->creatable);                                     /* time-sliced, MIG on */

        g = gpuh_nvml_info_gpu(info, &a[1]);
        assert_null(g->error);
        assert_int_equal(g->mig_current, -1);
        assert_int_equal(g->vgpu_mode, GPUH_VGPU_MODE_MIXED);
        assert_string_equal(gpuh_vgpu_mode_to_string(g->vgpu_mode), "mixed-size");
        assert_true(gpuh_nvml_gpu_type(g, 1151)->creatable);

        g = gpuh_nvml_info_gpu(info, &a[2]);
        assert_string_equal(g->error, "nvmlDeviceGetHandleByPciBusId_v2: NVML_ERROR_NOT_FOUND: no such object");
        gpuh_nvml_info_free(info);
}

#define MIG_OFF "{\"gpus\": [{\"pci_bus_id\": \"0000:3b:00.0\", \"mig\": {\"current\": 0, \"pending\": 0}," \
        " \"gi_profiles\": [{\"index\": 2, \"id\": 9, \"name\": \"MIG 3g.20gb\", \"slices\": 3, \"instances\": 2," \
        " \"memory_mib\": 19968, \"placements\": [{\"start\": 0, \"size\": 4}, {\"start\": 4, \"size\": 4}]}]%s}]}"

/* MIG off: the profile table is still asked (a layout with "mig": true needs it before MIG
 * mode goes on), without remaining capacity and GIs; a GPU that answers no profile says why. */
static void test_mig_off(void **s)
{
        struct gpuh_pci_addr a;
        struct gpuh_nvml_info *info = NULL;
        const struct gpuh_nvml_gpu *g;
char buf[1024];

        addr("0000:3b:00.0", &a);
        snprintf(buf, sizeof(buf), MIG_OFF, "");
        tu_write(tmp, "state.json", buf);
        assert_int_equal(gpuh_nvml_query(lib, &a, 1, 5000, &info), 0);
        g = &info->gpus[0];
        assert_null(g->error);
        assert_int_equal(g->mig_current, 0);
        assert_int_equal(g->n_gis, 0);
        assert_int_equal(g->n_profiles, 1);
        assert_int_equal(g->profiles[0].id, 9);
        assert_int_equal(g->profiles[0].n_placements, 2);
        assert_int_equal(g->profiles[0].placements[1].start, 4);
        assert_int_equal(g->profiles[0].remaining, -1);
        assert_null(g->profiles_error);
        info = gpuh_nvml_info_free(info);

        snprintf(buf, sizeof(buf), MIG_OFF, ", \"fail\": {\"nvmlDeviceGetGpuInstanceProfileInfoV\": 3}");
        tu_write(tmp, "state.json", buf);
        assert_int_equal(gpuh_nvml_query(lib, &a, 1, 5000, &info), 0);
        assert_int_equal(info->gpus[0].n_profiles, 0);
        assert_string_equal(info->gpus[0].profiles_error,
                            "NVML_ERROR_NOT_SUPPORTED: not supported on this GPU or in its current mode");
        gpuh_nvml_info_free(info);
}

static void test_failures(void **s)
{
        struct gpuh_pci_addr a;
        struct gpuh_nvml_info *info = NULL;
        int64_t t0;

        addr("0000:3b:00.0", &a);
        /* no library */
        assert_int_equal(gpuh_nvml_query("/nonexistent/libnvidia-ml.so.1", &a, 1, 5000, &info), 0);
        assert_string_equal(info->error, "cannot load NVML: /nonexistent/libnvidia-ml.so.1: cannot open shared object file: No such file or directory");
        assert_int_equal(info->n_gpus, 0);
        info = gpuh_nvml_info_free(info);

        /* a library that is not NVML */
        assert_int_equal(gpuh_nvml_query("libc.so.6", &a, 1, 5000, &info), 0);
        assert_string_equal(info->error, "cannot load NVML: libc.so.6 lacks nvmlInit_v2");
        info = gpuh_nvml_info_free(info);

        /* init fails: the driver is not loaded */
        write_state(", \"fail\": {\"nvmlInit_v2\": 9}");
        assert_int_equal(gpuh_nvml_query(lib, &a, 1, 5000, &info), 0);
        assert_string_equal(info->error, "nvmlInit_v2: NVML_ERROR_DRIVER_NOT_LOADED: the NVIDIA driver is not loaded");
        info = gpuh_nvml_info_free(info);

        /* one call fails on a GPU: that GPU says why, the query goes on */
        write_state(", \"fail\": {\"nvmlDeviceGetMigMode\": 15}");
        assert_int_equal(gpuh_nvml_query(lib, &a, 1, 5000, &info), 0);
        assert_null(info->error);
        assert_string_equal(info->gpus[0].error, "nvmlDeviceGetMigMode: NVML_ERROR_GPU_IS_LOST: the GPU fell off the bus or is inaccessible");
        info = gpuh_nvml_info_free(info);

        /* a hung driver costs the deadline, not more */
        write_state(", \"hang\": \"nvmlDeviceGetMigMode\"");
        t0 = gpuh_mono_ms();
        assert_int_equal(gpuh_nvml_query(lib, &a, 1, 300, &info), 0);
        assert_true(gpuh_mono_ms() - t0 < 3000);
        assert_string_equal(info->error, "no answer from NVML within 300 ms");
        info = gpuh_nvml_info_free(info);
}

static void test_changes(void **s)
{
        struct gpuh_pci_addr a, l;
        struct gpuh_nvml_info *info = NULL;
        char *err = NULL;
        unsigned id = 0;

        write_state(NULL);
        addr("0000:3b:00.0", &a);
        addr("0000:26:00.0", &l);
        /* a GI with an explicit placement gets the lowest free id */
        assert_int_equal(gpuh_nvml_change(lib, &a, GPUH_NVML_CREATE_GI, 19, 4, 1, 5000, &id, &err), 0);
        assert_int_equal(id, 2);
        /* an occupied slice */
        assert_int_equal(gpuh_nvml_change(lib, &a, GPUH_NVML_CREATE_GI, 14, 2, 2, 5000, &id, &err), -ENOSPC);
        assert_string_equal(err, "GPU 0000:3b:00.0: create GPU instance: nvmlDeviceCreateGpuInstanceWithPlacement: "
                                 "NVML_ERROR_INSUFFICIENT_RESOURCES: not enough free resources (slices, placements)");
        err = (free(err), NULL);
        /* a placement the profile does not have */
        assert_int_equal(gpuh_nvml_change(lib, &a, GPUH_NVML_CREATE_GI, 19, 6, 1, 5000, &id, &err), -EINVAL);
        err = (free(err), NULL);
        assert_int_equal(gpuh_nvml_change(lib, &a, GPUH_NVML_DESTROY_GI, 3, 0, 0, 5000, NULL, &err), 0);
        assert_int_equal(gpuh_nvml_change(lib, &a, GPUH_NVML_DESTROY_GI, 3, 0, 0, 5000, NULL, &err), -ENOENT);
        assert_non_null(strstr(err, "nvmlDeviceGetGpuInstanceById: NVML_ERROR_NOT_FOUND"));
        err = (free(err), NULL);
        assert_int_equal(gpuh_nvml_query(lib, &a, 1, 5000, &info), 0);
        assert_int_equal(info->gpus[0].n_gis, 2);
        assert_int_equal(info->gpus[0].gis[1].id, 2);
        assert_int_equal(info->gpus[0].gis[1].placement_start, 4);
        assert_false(gpuh_nvml_gpu_type(&info->gpus[0], 475)->creatable);      /* no 2g.10gb GI left */
        info = gpuh_nvml_info_free(info);
        /* MIG mode cannot change while VFs are enabled */
        assert_int_equal(gpuh_nvml_change(lib, &a, GPUH_NVML_SET_MIG_MODE, 0, 0, 0, 5000, NULL, &err), -EBUSY);
        assert_string_equal(err, "GPU 0000:3b:00.0: set MIG mode: nvmlDeviceSetMigMode: NVML_ERROR_IN_USE: the GPU is in use");
        err = (free(err), NULL);
        /* nor the vGPU mode in MIG mode; on the L40S it can */
        assert_int_equal(gpuh_nvml_change(lib, &a, GPUH_NVML_SET_VGPU_MODE, 1, 0, 0, 5000, NULL, &err), -EOPNOTSUPP);
        err = (free(err), NULL);
        assert_int_equal(gpuh_nvml_change(lib, &l, GPUH_NVML_SET_VGPU_MODE, 0, 0, 0, 5000, NULL, &err), 0);
        assert_int_equal(gpuh_nvml_query(lib, &l, 1, 5000, &info), 0);
        assert_int_equal(info->gpus[0].vgpu_mode, GPUH_VGPU_MODE_EQUAL);
        info = gpuh_nvml_info_free(info);
        /* no NVML */
        assert_int_equal(gpuh_nvml_change("/nonexistent/libnvidia-ml.so.1", &l, GPUH_NVML_SET_VGPU_MODE, 0, 0, 0, 5000,
                                          NULL, &err), -ENOENT);
        assert_non_null(strstr(err, "cannot load NVML"));
        free(err);
}

/* The changes' names, as a dry run lists them (docs/state-change.md). */
static void test_op_names(void **s)
{
        (void) s;
        assert_string_equal(gpuh_nvml_op_to_string(GPUH_NVML_SET_MIG_MODE), "set-mig-mode");
        assert_string_equal(gpuh_nvml_op_to_string(GPUH_NVML_CREATE_GI), "create-gpu-instance");
        assert_string_equal(gpuh_nvml_op_to_string(GPUH_NVML_DESTROY_GI), "destroy-gpu-instance");
        assert_string_equal(gpuh_nvml_op_to_string(GPUH_NVML_SET_VGPU_MODE), "set-vgpu-mode");
        assert_null(gpuh_nvml_op_to_string(_GPUH_NVML_OP_MAX));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_op_names),
                cmocka_unit_test(test_query),
                cmocka_unit_test(test_mig_off),
                cmocka_unit_test(test_failures),
                cmocka_unit_test(test_changes),
        };
        return cmocka_run_group_tests_name("nvml", tests, setup, teardown);
}
