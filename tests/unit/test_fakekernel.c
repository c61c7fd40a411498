/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_fakekernel: the fake kernel itself (fakekernel.h), through the library's change layer
 * (common/change.h), whose writer is wrapped: each rule as tests/emu/README.md states it for the
 * FUSE emulator, faults, hangs and snapshots. The state-change tests rely on all of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "holders.h"
#include "sctest.h"
#include "sysfs.h"

struct ctx {
        struct sct *t;
        struct gpuh_sysfs *sys;
        struct gpuh_change ch;
};

static int setup(void **state)
{
        struct ctx *c = calloc(1, sizeof(*c));

        if (!c)
                return -1;
        c->t = sct_new();
        *state = c;
        return 0;
}

static int teardown(void **state)
{
        struct ctx *c = *state;

        if (c->sys) {
                gpuh_change_done(&c->ch);
                gpuh_sysfs_free(c->sys);
        }
        sct_free(c->t);
        free(c);
        return 0;
}

/* The change layer on the host built so far. */
static struct gpuh_change *open_change(struct ctx *c)
{
        assert_int_equal(gpuh_sysfs_open(fk_sys(c->t->k), &c->sys), 0);
        assert_int_equal(gpuh_change_init(&c->ch, c->sys->root_fd, 100, false), 0);
        return &c->ch;
}

static int W(struct ctx *c, const char *rel, const char *value)
{
        return gpuh_change_write(&c->ch, c->ch.root_fd, rel, value);
}

static const char *drv(struct ctx *c, const char *bdf)
{
        static char buf[4][64];
        static int k;

        return fk_driver(c->t->k, bdf, buf[k++ % 4], sizeof(buf[0]));
}

static const char *rd(struct ctx *c, const char *rel)
{
        static char buf[4][4096];
        static int k;

        return fk_read(c->t->k, rel, buf[k++ % 4], sizeof(buf[0]));
}

static void test_bind_unbind_probe(void **state)
{
        struct ctx *c = *state;
        _cleanup_free_ char *before = NULL, *after = NULL;

        sct_host_rtx3080(c->t);
        open_change(c);
        before = fk_snapshot(c->t->k);

        /* driver_override binds nothing; unbind removes the link; drivers_probe binds by override */
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci"), 0);
        assert_string_equal(rd(c, "bus/pci/devices/0000:05:00.0/driver_override"), "vfio-pci");
        assert_string_equal(drv(c, "0000:05:00.0"), "nvidia");
        assert_int_equal(W(c, "bus/pci/drivers/nvidia/unbind", "0000:05:00.0"), 0);
        assert_string_equal(drv(c, "0000:05:00.0"), "");
        assert_false(fk_exists(c->t->k, "bus/pci/drivers/nvidia/0000:05:00.0"));
        assert_int_equal(W(c, "bus/pci/drivers_probe", "0000:05:00.0"), 0);
        assert_string_equal(drv(c, "0000:05:00.0"), "vfio-pci");
        assert_true(fk_exists(c->t->k, "bus/pci/drivers/vfio-pci/0000:05:00.0"));
        assert_true(fk_dev_exists(c->t->k, "vfio/24"));

        /* a bound device is left alone by drivers_probe */
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/driver_override", "nvidia"), 0);
        assert_int_equal(W(c, "bus/pci/drivers_probe", "0000:05:00.0"), 0);
        assert_string_equal(drv(c, "0000:05:00.0"), "vfio-pci");

        /* back: an empty override clears it, the ID table binds nvidia; the vfio node goes */
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/driver_override", ""), 0);
        assert_string_equal(rd(c, "bus/pci/devices/0000:05:00.0/driver_override"), "(null)");
        assert_int_equal(W(c, "bus/pci/drivers/vfio-pci/unbind", "0000:05:00.0"), 0);
        assert_false(fk_dev_exists(c->t->k, "vfio/24"));
        assert_int_equal(W(c, "bus/pci/drivers_probe", "0000:05:00.0"), 0);
        assert_string_equal(drv(c, "0000:05:00.0"), "nvidia");
        after = fk_snapshot(c->t->k);
        sct_assert_same(before, after);

        /* bind: by name, only a matching driver, never a bound device */
        assert_int_equal(W(c, "bus/pci/drivers/nvidia/unbind", "0000:05:00.0"), 0);
        assert_int_equal(W(c, "bus/pci/drivers/vfio-pci/bind", "0000:05:00.0"), -ENODEV);
        assert_int_equal(W(c, "bus/pci/drivers/nvidia/bind", "0000:05:00.0"), 0);
        assert_int_equal(W(c, "bus/pci/drivers/nvidia/bind", "0000:05:00.0"), -EBUSY);
        assert_string_equal(drv(c, "0000:05:00.0"), "nvidia");
}

static void test_refusals(void **state)
{
        struct ctx *c = *state;

        sct_host_rtx3080(c->t);
        open_change(c);
        /* unbind from a driver it is not bound to; a device that does not exist */
        assert_int_equal(W(c, "bus/pci/drivers/igb/unbind", "0000:05:00.0"), -ENODEV);
        assert_int_equal(W(c, "bus/pci/drivers_probe", "0000:09:00.0"), -ENODEV);
        assert_int_equal(W(c, "bus/pci/drivers_probe", "05:00.0"), -ENODEV);
        /* a missing attribute is not created */
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/sriov_numvfs", "1"), -ENOENT);
        assert_false(fk_exists(c->t->k, "bus/pci/devices/0000:05:00.0/sriov_numvfs"));
        /* vfio-pci refuses a bridge: drivers_probe succeeds, nothing is bound */
        assert_int_equal(W(c, "bus/pci/devices/0000:02:04.0/driver_override", "vfio-pci"), 0);
        assert_int_equal(W(c, "bus/pci/drivers/pcieport/unbind", "0000:02:04.0"), 0);
        assert_int_equal(W(c, "bus/pci/drivers_probe", "0000:02:04.0"), 0);
        assert_string_equal(drv(c, "0000:02:04.0"), "");
        assert_int_equal(W(c, "bus/pci/drivers/vfio-pci/bind", "0000:02:04.0"), -EINVAL);
        /* an ID-table driver's probe refuses hardware it does not know */
        assert_int_equal(W(c, "bus/pci/devices/0000:02:04.0/driver_override", "igb"), 0);
        assert_int_equal(W(c, "bus/pci/drivers/igb/bind", "0000:02:04.0"), -ENODEV);
        /* attributes the fake does not emulate say so */
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/vendor", "1"), -EOPNOTSUPP);
}

static void test_mdev(void **state)
{
        struct ctx *c = *state;
        _cleanup_free_ char *before = NULL, *after = NULL;
        const char *u = "11111111-2222-3333-4444-555555555555";
        const char *create = "bus/pci/devices/0000:3d:00.0/mdev_supported_types/nvidia-22/create";

        sct_host_m60(c->t);
        open_change(c);
        before = fk_snapshot(c->t->k);
        assert_int_equal(W(c, create, u), 0);
        assert_string_equal(rd(c, "bus/pci/devices/0000:3d:00.0/mdev_supported_types/nvidia-22/available_instances"), "1");
        assert_true(fk_exists(c->t->k, "bus/mdev/devices/11111111-2222-3333-4444-555555555555/mdev_type"));
        assert_true(fk_exists(c->t->k, "bus/pci/devices/0000:3d:00.0/mdev_supported_types/nvidia-22/devices/"
                                       "11111111-2222-3333-4444-555555555555"));
        assert_true(fk_dev_exists(c->t->k, "vfio/0"));  /* the mdev's own group, the lowest free */
        assert_int_equal(W(c, create, u), -EEXIST);
        assert_int_equal(W(c, create, "not-a-uuid"), -EINVAL);
        assert_int_equal(W(c, create, "11111111-2222-3333-4444-666666666666"), 0);
        assert_int_equal(W(c, create, "11111111-2222-3333-4444-777777777777"), -EUSERS);
        assert_int_equal(W(c, "bus/mdev/devices/11111111-2222-3333-4444-666666666666/remove", "0"), 0);
        assert_int_equal(W(c, "bus/mdev/devices/11111111-2222-3333-4444-666666666666/remove", "x"), -EINVAL);
        assert_int_equal(W(c, "bus/mdev/devices/11111111-2222-3333-4444-666666666666/remove", "1"), 0);
        assert_int_equal(W(c, "bus/mdev/devices/11111111-2222-3333-4444-555555555555/remove", "1"), 0);
        assert_false(fk_dev_exists(c->t->k, "vfio/0"));
        after = fk_snapshot(c->t->k);
        sct_assert_same(before, after);

        /* the parent's driver going unregisters it: its mdevs and types go, and come back */
        assert_int_equal(W(c, create, u), 0);
        assert_int_equal(W(c, "bus/pci/drivers/nvidia/unbind", "0000:3d:00.0"), 0);
        assert_false(fk_exists(c->t->k, "bus/pci/devices/0000:3d:00.0/mdev_supported_types"));
        assert_false(fk_exists(c->t->k, "bus/mdev/devices/11111111-2222-3333-4444-555555555555"));
        assert_int_equal(W(c, "bus/pci/drivers_probe", "0000:3d:00.0"), 0);
        free(after);
        after = fk_snapshot(c->t->k);
        sct_assert_same(before, after);
}

static void test_sriov(void **state)
{
        struct ctx *c = *state;
        _cleanup_free_ char *before = NULL, *after = NULL;

        sct_host_a2(c->t, false);
        open_change(c);
        before = fk_snapshot(c->t->k);
        assert_int_equal(W(c, "bus/pci/devices/0000:08:00.0/sriov_numvfs", "5"), -ERANGE);
        assert_int_equal(W(c, "bus/pci/devices/0000:08:00.0/sriov_numvfs", "x"), -EINVAL);
        assert_int_equal(W(c, "bus/pci/devices/0000:08:00.0/sriov_numvfs", "4"), 0);
        assert_string_equal(rd(c, "bus/pci/devices/0000:08:00.0/sriov_numvfs"), "4");
        /* VF i at PF + offset 4 + i, bound by autoprobe, which registers its types */
        assert_string_equal(drv(c, "0000:08:00.4"), "nvidia");
        assert_string_equal(drv(c, "0000:08:00.7"), "nvidia");
        assert_true(fk_exists(c->t->k, "bus/pci/devices/0000:08:00.4/physfn"));
        assert_true(fk_exists(c->t->k, "bus/pci/devices/0000:08:00.0/virtfn3"));
        assert_string_equal(rd(c, "bus/pci/devices/0000:08:00.5/mdev_supported_types/nvidia-747/available_instances"), "1");
        assert_int_equal(W(c, "bus/pci/devices/0000:08:00.0/sriov_numvfs", "2"), -EBUSY);
        /* one vGPU per VF: every type of the VF reads 0 once it carries one */
        assert_int_equal(W(c, "bus/pci/devices/0000:08:00.5/mdev_supported_types/nvidia-746/create",
                           "aaaaaaaa-2222-3333-4444-555555555555"), 0);
        assert_string_equal(rd(c, "bus/pci/devices/0000:08:00.5/mdev_supported_types/nvidia-747/available_instances"), "0");
        assert_int_equal(W(c, "bus/mdev/devices/aaaaaaaa-2222-3333-4444-555555555555/remove", "1"), 0);
        assert_string_equal(rd(c, "bus/pci/devices/0000:08:00.5/mdev_supported_types/nvidia-747/available_instances"), "1");
        /* on vfio-pci a PF cannot enable VFs, nor can an unbound one */
        assert_int_equal(W(c, "bus/pci/devices/0000:08:00.0/sriov_numvfs", "0"), 0);
        assert_false(fk_exists(c->t->k, "bus/pci/devices/0000:08:00.4"));
        after = fk_snapshot(c->t->k);
        sct_assert_same(before, after);
        assert_int_equal(W(c, "bus/pci/drivers/nvidia/unbind", "0000:08:00.0"), 0);
        assert_int_equal(W(c, "bus/pci/devices/0000:08:00.0/sriov_numvfs", "4"), -ENOENT);
}

static void test_vendor_vgpu(void **state)
{
        struct ctx *c = *state;
        _cleanup_free_ char *before = NULL, *after = NULL;
        const char *cur4 = "bus/pci/devices/0000:af:00.4/nvidia/current_vgpu_type";

        sct_host_l40s(c->t, true);
        open_change(c);
        before = fk_snapshot(c->t->k);
        assert_non_null(strstr(rd(c, "bus/pci/devices/0000:af:00.5/nvidia/creatable_vgpu_types"), "1155  : NVIDIA L40S-24Q"));
        assert_int_equal(W(c, cur4, "1152"), 0);
        assert_string_equal(rd(c, cur4), "1152");
        /* equal size: the others list only 8 GB types; the VF itself nothing */
        assert_string_equal(rd(c, "bus/pci/devices/0000:af:00.5/nvidia/creatable_vgpu_types"),
                            "ID    : vGPU Name\n1152  : NVIDIA L40S-8Q");
        assert_string_equal(rd(c, "bus/pci/devices/0000:af:00.4/nvidia/creatable_vgpu_types"), "ID    : vGPU Name");
        assert_int_equal(W(c, "bus/pci/devices/0000:af:00.5/nvidia/current_vgpu_type", "1148"), -EINVAL);
        assert_int_equal(W(c, cur4, "1148"), -EBUSY);
        assert_int_equal(W(c, cur4, "0"), 0);
        after = fk_snapshot(c->t->k);
        sct_assert_same(before, after);
        /* its VFs stay on nvidia: vfio-pci refuses them */
        assert_int_equal(W(c, "bus/pci/devices/0000:af:00.4/driver_override", "vfio-pci"), 0);
        assert_int_equal(W(c, "bus/pci/drivers/nvidia/unbind", "0000:af:00.4"), 0);
        assert_int_equal(W(c, "bus/pci/drivers/vfio-pci/bind", "0000:af:00.4"), -EINVAL);
}

static void test_faults(void **state)
{
        struct ctx *c = *state;
        size_t n;
        const struct fk_write *w;

        sct_host_rtx3080(c->t);
        open_change(c);
        fk_fail(c->t->k, "bus/pci/devices/*/driver_override", "vfio*", EBUSY, 1);
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/driver_override", "nvidia"), 0);
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci"), -EBUSY);
        assert_string_equal(rd(c, "bus/pci/devices/0000:05:00.0/driver_override"), "nvidia");   /* no effect */
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci"), 0); /* once */
        fk_fail_nth(c->t->k, 1, EIO);
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.1/driver_override", "vfio-pci"), 0);
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.1/driver_override", "x"), -EIO);
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.1/driver_override", ""), 0);
        w = fk_writes(c->t->k, &n);
        assert_int_equal(n, 6);
        assert_string_equal(w[1].path, "bus/pci/devices/0000:05:00.0/driver_override");
        assert_string_equal(w[1].value, "vfio-pci");
        assert_int_equal(w[1].result, -EBUSY);
        assert_int_equal(fk_count_writes(c->t->k, "*/0000:05:00.1/*", NULL), 3);
        assert_int_equal(fk_count_writes(c->t->k, "*driver_override", "vfio-pci"), 3);
}

static void test_hangs(void **state)
{
        struct ctx *c = *state;

        sct_host_rtx3080(c->t);
        open_change(c);
        /* a held unbind: -ETIMEDOUT now, the device still bound, its lock held */
        fk_hang(c->t->k, "bus/pci/drivers/nvidia/unbind", "0000:05:00.0", FK_HANG_LANDS, 1);
        assert_int_equal(W(c, "bus/pci/drivers/nvidia/unbind", "0000:05:00.0"), -ETIMEDOUT);
        assert_true(gpuh_change_late(&c->ch, "pci-0000:05:00.0"));
        assert_string_equal(drv(c, "0000:05:00.0"), "nvidia");
        /* drivers_probe of the still bound device returns at once, doing nothing */
        assert_int_equal(W(c, "bus/pci/drivers_probe", "0000:05:00.0"), 0);
        /* driver_override waits for the lock: in flight behind the unbind */
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci"), -ETIMEDOUT);
        assert_int_equal(fk_in_flight(c->t->k), 2);
        /* another device goes on */
        assert_int_equal(W(c, "bus/pci/devices/0000:05:00.1/driver_override", "vfio-pci"), 0);
        /* waiting for the late writes: they land, in order */
        assert_int_equal(gpuh_change_settle(&c->ch, 100), 0);
        assert_false(gpuh_change_late(&c->ch, "pci-0000:05:00.0"));
        assert_int_equal(fk_in_flight(c->t->k), 0);
        assert_string_equal(drv(c, "0000:05:00.0"), "");
        assert_string_equal(rd(c, "bus/pci/devices/0000:05:00.0/driver_override"), "vfio-pci");

        /* one that stays: settle times out until it lands */
        fk_hang(c->t->k, "bus/pci/drivers/snd_hda_intel/unbind", NULL, FK_HANG_STUCK, 1);
        assert_int_equal(W(c, "bus/pci/drivers/snd_hda_intel/unbind", "0000:05:00.1"), -ETIMEDOUT);
        assert_int_equal(gpuh_change_settle(&c->ch, 100), -ETIMEDOUT);
        assert_true(gpuh_change_late(&c->ch, "pci-0000:05:00.1"));
        assert_string_equal(drv(c, "0000:05:00.1"), "snd_hda_intel");
        fk_land(c->t->k);
        assert_string_equal(drv(c, "0000:05:00.1"), "");
        assert_int_equal(gpuh_change_settle(&c->ch, 100), 0);

        /* one that fails when it ends: no effect */
        fk_hang(c->t->k, "bus/pci/drivers_probe", NULL, FK_HANG_FAILS, 1);
        assert_int_equal(W(c, "bus/pci/drivers_probe", "0000:05:00.1"), -ETIMEDOUT);
        assert_int_equal(gpuh_change_settle(&c->ch, 100), 0);
        assert_string_equal(drv(c, "0000:05:00.1"), "");
}

static void test_holders(void **state)
{
        struct ctx *c = *state;
        char node[PATH_MAX], *nodes[] = { node, NULL };
        _cleanup_free_ struct gpuh_holder *h = NULL;
        size_t n = 0;

        sct_host_rtx3080(c->t);
        snprintf(node, sizeof(node), "%s/nvidia0", fk_dev(c->t->k));
        assert_int_equal(fk_hold(c->t->k, 4242, "nvidia-persiste", "nvidia0"), 0);
        assert_int_equal(gpuh_holders_find(fk_proc(c->t->k), nodes, &h, &n), 1);
        assert_int_equal(h[0].pid, 4242);
        assert_string_equal(h[0].comm, "nvidia-persiste");
        free(h);
        h = NULL;
        fk_unhold(c->t->k, 4242);
        assert_int_equal(gpuh_holders_find(fk_proc(c->t->k), nodes, &h, &n), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_bind_unbind_probe, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mdev, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sriov, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vendor_vgpu, setup, teardown),
                cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hangs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_holders, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
