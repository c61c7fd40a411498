/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sc_roundtrip: prepare and release (hooks/state-change/statechange.h) on the fake kernel:
 * a round trip for each kind of device (a GPU with its companion, a GPU that is an mdev parent,
 * a plain VF, an mdev on a PF and on a VF, a vendor vGPU VF, each with its VFs enabled by the
 * hook where they do not exist yet) ends with the host exactly as before; the dry run; what
 * prepare refuses before it changes anything.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "reserve.h"
#include "sctest.h"

#define VM "i-2-154-VM"
#define VM_UUID "0c4b40fc-0b03-40c5-b04e-28a15fe12244"
#define VM2 "i-2-155-VM"
#define VM2_UUID "0c4b40fc-0b03-40c5-b04e-28a15fe12245"
#define MDEV_UUID "c728e022-f16f-434b-ad2c-9665ee634d3d"

static int setup(void **state)
{
        *state = sct_new();
        return 0;
}

static int teardown(void **state)
{
        sct_free(*state);
        return 0;
}

static const char *drv(struct sct *t, const char *bdf)
{
        static char buf[4][64];
        static int k;

        return fk_driver(t->k, bdf, buf[k++ % 4], sizeof(buf[0]));
}

static const char *rd(struct sct *t, const char *rel)
{
        static char buf[4][4096];
        static int k;

        return fk_read(t->k, rel, buf[k++ % 4], sizeof(buf[0]));
}

/* Prepare @xml, run @check on the prepared host, release: the host is as before, no state is left. */
static void round_trip(struct sct *t, const struct gpuh_alloc *a, size_t n, void (*check)(struct sct *t))
{
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, n), *before = fk_snapshot(t->k), *after = NULL,
                           *err = NULL;
        size_t writes, again;

        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_null(err);
        assert_true(sct_has_journal(t, VM));
        assert_true(sct_has_reservation(t, VM));
        check(t);
        assert_int_equal(sct_events(t, "\"event\":\"prepare\""), 1);

        /* a second prepare of the same domain (libvirt retrying a start) finds it all done */
        fk_writes(t->k, &writes);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        fk_writes(t->k, &again);
        assert_int_equal(again, writes);

        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_null(err);
        assert_false(sct_has_journal(t, VM));
        assert_false(sct_has_reservation(t, VM));
        assert_int_equal(sct_events(t, "\"event\":\"release\""), 1);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);

        /* a second release has nothing left to do */
        fk_forget_writes(t->k);
        assert_int_equal(sct_release(t, VM, &err), 0);
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
}

static void check_gpu_and_audio(struct sct *t)
{
        assert_string_equal(drv(t, "0000:05:00.0"), "vfio-pci");
        assert_string_equal(drv(t, "0000:05:00.1"), "vfio-pci");
        assert_string_equal(rd(t, "bus/pci/devices/0000:05:00.0/driver_override"), "vfio-pci");
        assert_true(fk_dev_exists(t->k, "vfio/24"));
        /* the order of docs/state-change.md: override, the driver's own unbind, probe */
        assert_int_equal(fk_count_writes(t->k, "bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci"), 1);
        assert_int_equal(fk_count_writes(t->k, "bus/pci/drivers/nvidia/unbind", "0000:05:00.0"), 1);
        assert_int_equal(fk_count_writes(t->k, "bus/pci/drivers/snd_hda_intel/unbind", "0000:05:00.1"), 1);
        assert_int_equal(fk_count_writes(t->k, "bus/pci/drivers_probe", NULL), 2);
        /* the bridge of its group stays on pcieport */
        assert_string_equal(drv(t, "0000:00:03.1"), "pcieport");
}

static void test_pci_with_companion(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };

        sct_host_rtx3080(t);
        round_trip(t, a, 1, check_gpu_and_audio);
}

static void check_m60_whole(struct sct *t)
{
        /* unbinding nvidia unregistered its mdev types; binding it back registers them again */
        assert_string_equal(drv(t, "0000:3d:00.0"), "vfio-pci");
        assert_false(fk_exists(t->k, "bus/pci/devices/0000:3d:00.0/mdev_supported_types"));
}

static void test_pci_mdev_parent(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:3d:00.0", NULL) };

        sct_host_m60(t);
        round_trip(t, a, 1, check_m60_whole);
}

static void check_vf(struct sct *t)
{
        assert_string_equal(drv(t, "0000:83:02.1"), "vfio-pci");
        assert_string_equal(drv(t, "0000:83:00.0"), "gim");
}

static void test_vf(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_vf("0000:83:02.1", "0000:83:00.0") };

        sct_host_s7150(t, true);
        round_trip(t, a, 1, check_vf);
}

static void check_vf_enabled(struct sct *t)
{
        check_vf(t);
        assert_string_equal(rd(t, "bus/pci/devices/0000:83:00.0/sriov_numvfs"), "4");
        assert_int_equal(fk_count_writes(t->k, "bus/pci/devices/0000:83:00.0/sriov_numvfs", "4"), 1);
}

static void test_vf_sriov_enable(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_vf("0000:83:02.1", "0000:83:00.0") };

        sct_host_s7150(t, false);
        round_trip(t, a, 1, check_vf_enabled);
}

static void check_mdev_pf(struct sct *t)
{
        assert_true(fk_exists(t->k, "bus/mdev/devices/" MDEV_UUID));
        assert_string_equal(rd(t, "bus/pci/devices/0000:3d:00.0/mdev_supported_types/nvidia-18/available_instances"), "3");
        assert_string_equal(drv(t, "0000:3d:00.0"), "nvidia");
}

static void test_mdev_pf(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-18") };

        sct_host_m60(t);
        round_trip(t, a, 1, check_mdev_pf);
}

static void check_mdev_vf(struct sct *t)
{
        assert_true(fk_exists(t->k, "bus/mdev/devices/" MDEV_UUID));
        assert_string_equal(rd(t, "bus/pci/devices/0000:08:00.6/mdev_supported_types/nvidia-747/available_instances"), "0");
}

static void test_mdev_vf(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_mdev(MDEV_UUID, "0000:08:00.6", "nvidia-746") };

        sct_host_a2(t, true);
        round_trip(t, a, 1, check_mdev_vf);
}

static void test_mdev_vf_sriov_enable(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_mdev(MDEV_UUID, "0000:08:00.6", "nvidia-746") };

        sct_host_a2(t, false);
        round_trip(t, a, 1, check_mdev_vf);
}

static void check_vgpu(struct sct *t)
{
        assert_string_equal(rd(t, "bus/pci/devices/0000:af:00.5/nvidia/current_vgpu_type"), "1152");
        /* the VF stays on nvidia */
        assert_string_equal(drv(t, "0000:af:00.5"), "nvidia");
        assert_string_equal(rd(t, "bus/pci/devices/0000:af:00.6/nvidia/creatable_vgpu_types"),
                            "ID    : vGPU Name\n1152  : NVIDIA L40S-8Q");
}

static void test_vendor_vgpu(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_vgpu("0000:af:00.5", "0000:af:00.0", 1152) };

        sct_host_l40s(t, true);
        round_trip(t, a, 1, check_vgpu);
}

static void test_vendor_vgpu_sriov_enable(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_vgpu("0000:af:00.5", "0000:af:00.0", 1152) };

        sct_host_l40s(t, false);
        round_trip(t, a, 1, check_vgpu);
}

static void check_mixed(struct sct *t)
{
        check_gpu_and_audio(t);
        check_mdev_pf(t);
}

static void test_several_devices(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1"),
                                  sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-18") };

        sct_host_rtx3080(t);
        sct_host_m60(t);
        round_trip(t, a, 2, check_mixed);
}

static void test_no_gpu(void **state)
{
        struct sct *t = *state;
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, NULL, 0), *err = NULL;
        size_t writes;

        sct_host_rtx3080(t);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        /* every domain of the host passes through the hook: none leaves a file */
        assert_int_equal(access(fk_state(t->k), F_OK), -1);
}

static void test_dry_run(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL;
        json_object *plan = NULL, *steps, *st;
        size_t writes, n_write = 0;

        sct_host_rtx3080(t);
        t->o.dry_run = true;
        assert_int_equal(gpuh_sc_prepare(&t->o, xml, strlen(xml), &plan, sct_err(&err)), 0);
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_int_equal(access(fk_state(t->k), F_OK), -1);
        assert_true(json_object_object_get_ex(plan, "steps", &steps));
        for (size_t i = 0; i < json_object_array_length(steps); i++) {
                st = json_object_array_get_idx(steps, i);
                n_write += streq(json_object_get_string(json_object_object_get(st, "step")), "write");
        }
        /* override, unbind, probe for each function */
        assert_int_equal(n_write, 6);
        st = json_object_array_get_idx(steps, 0);
        assert_string_equal(json_object_get_string(json_object_object_get(st, "step")), "check");
        json_object_put(plan);
}

static void test_refused_group_with_nic(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:04:00.0", NULL) };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL, *before = NULL, *after = NULL;
        size_t writes;

        sct_host_rtx3080(t);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), -EBUSY);
        assert_non_null(strstr(err, "0000:03:00.0 (on igb)"));
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_false(sct_has_journal(t, VM));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_refused_holder(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:3d:00.0", NULL) };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL;
        size_t writes;

        sct_host_m60(t);
        /* nvidia-persistenced holds the GPU's node (all /dev/nvidiaN: the minor is unknown) */
        assert_int_equal(fk_hold(t->k, 4242, "nvidia-persiste", "nvidia0"), 0);
        assert_int_equal(sct_prepare(t, xml, &err), -EBUSY);
        assert_non_null(strstr(err, "pid 4242 (nvidia-persiste)"));
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        fk_unhold(t->k, 4242);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
}

static void test_refused_reserved_elsewhere(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *xml2 = sct_domain(VM2, VM2_UUID, a, 1),
                           *err = NULL;
        size_t writes;

        sct_host_rtx3080(t);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        fk_forget_writes(t->k);
        /* the same GPU for another domain: its journal and live reservation hold it */
        assert_int_equal(sct_prepare(t, xml2, &err), -EBUSY);
        assert_non_null(strstr(err, VM));
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_false(sct_has_journal(t, VM2));
        assert_string_equal(drv(t, "0000:05:00.0"), "vfio-pci");
        assert_int_equal(sct_release(t, VM, &err), 0);
}

static void test_refused_missing_vf(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_vf("0000:83:02.1", "0000:83:00.0") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL;
        size_t writes;

        sct_host_s7150(t, false);
        t->cfg->enable_sriov = false;
        assert_int_equal(sct_prepare(t, xml, &err), -ENODEV);
        assert_non_null(strstr(err, "state_change.enable_sriov is false"));
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_false(sct_has_journal(t, VM));
}

static void test_started(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_vgpu("0000:af:00.5", "0000:af:00.0", 1152) };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL;
        struct gpuh_state *st = NULL;
        struct gpuh_reservation res;

        sct_host_l40s(t, true);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_int_equal(gpuh_sc_started(&t->o, VM, sct_err(&err)), 0);
        assert_int_equal(gpuh_state_open(fk_state(t->k), false, &st, &err), 0);
        assert_int_equal(gpuh_reservation_load(st, VM, &res), 0);
        assert_string_equal(res.state, "running");
        gpuh_reservation_clear(&res);
        gpuh_state_free(st);
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_false(sct_has_reservation(t, VM));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_pci_with_companion, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pci_mdev_parent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vf, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vf_sriov_enable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mdev_pf, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mdev_vf, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mdev_vf_sriov_enable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vendor_vgpu, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vendor_vgpu_sriov_enable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_several_devices, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_gpu, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_group_with_nic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_holder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_reserved_elsewhere, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_missing_vf, setup, teardown),
                cmocka_unit_test_setup_teardown(test_started, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
