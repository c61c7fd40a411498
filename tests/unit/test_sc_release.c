/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sc_release: release, onStop and reconcile (hooks/state-change/statechange.h) on the fake
 * kernel: the takeover of a stale journal, the undo of every journal operation and its edge
 * cases (docs/state-change.md, "release end"), a device still held, late writes during a
 * release, the quarantine, and reconcile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci_addr.h"
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

static struct gpuh_pci_addr A(const char *s)
{
        struct gpuh_pci_addr a;

        assert_int_equal(gpuh_pci_addr_parse(s, &a), 0);
        return a;
}

static struct gpuh_jentry driver_entry(const char *bdf, const char *driver, const char *override)
{
        struct gpuh_jentry e = { .op = GPUH_JOP_DRIVER, .dev = A(bdf) };

        snprintf(e.driver, sizeof(e.driver), "%s", driver);
        snprintf(e.override, sizeof(e.override), "%s", override);
        snprintf(e.to, sizeof(e.to), "vfio-pci");
        return e;
}

/* What prepare would have done to @bdf: on vfio-pci by driver_override, as another program
 * (or an earlier run) writes it. */
static void to_vfio(struct sct *t, const char *bdf)
{
        char rel[128];

        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", bdf);
        assert_int_equal(fk_kwrite(t->k, rel, "vfio-pci"), 0);
        snprintf(rel, sizeof(rel), "bus/pci/drivers/%s/unbind", drv(t, bdf));
        assert_int_equal(fk_kwrite(t->k, rel, bdf), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/drivers_probe", bdf), 0);
        assert_string_equal(drv(t, bdf), "vfio-pci");
}

static void test_takeover(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *xml2 = sct_domain(VM2, VM2_UUID, a, 1), *err = NULL,
                           *before = NULL, *after = NULL;
        size_t writes;

        sct_host_rtx3080(t);
        before = fk_snapshot(t->k);
        /* VM stopped without its release finishing, and its reservation expired */
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        sct_drop_reservation(t, VM);
        /* VM2 gets the GPU: on vfio-pci already, nothing to write; the entries move to its journal */
        fk_forget_writes(t->k);
        assert_int_equal(sct_prepare(t, xml2, &err), 0);
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_int_equal(sct_events(t, "\"event\":\"takeover\""), 2);
        assert_false(sct_has_journal(t, VM));
        assert_true(sct_has_journal(t, VM2));
        /* VM's late release touches nothing */
        assert_int_equal(sct_release(t, VM, &err), 0);
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_string_equal(drv(t, "0000:05:00.0"), "vfio-pci");
        /* VM2's release restores the state from before VM */
        assert_int_equal(sct_release(t, VM2, &err), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_takeover_vendor_vgpu(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_vgpu("0000:af:00.5", "0000:af:00.0", 1152) };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *xml2 = sct_domain(VM2, VM2_UUID, a, 1), *err = NULL,
                           *before = NULL, *after = NULL;

        sct_host_l40s(t, true);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        sct_drop_reservation(t, VM);
        /* the type is set already: taken over, not set again */
        assert_int_equal(sct_prepare(t, xml2, &err), 0);
        assert_int_equal(sct_events(t, "\"event\":\"takeover\""), 1);
        assert_int_equal(fk_count_writes(t->k, "*/current_vgpu_type", NULL), 1);
        assert_int_equal(sct_release(t, VM2, &err), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

/* A half-finished prepare of VM (its journal, the device moved) is taken over by VM2's
 * prepare, which goes on from the journaled state. */
static void test_takeover_half_done(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml2 = sct_domain(VM2, VM2_UUID, a, 1), *err = NULL, *before = NULL, *after = NULL;
        struct gpuh_jentry e = driver_entry("0000:05:00.0", "nvidia", "");

        sct_host_rtx3080(t);
        before = fk_snapshot(t->k);
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/drivers/nvidia/unbind", "0000:05:00.0"), 0);
        assert_int_equal(sct_prepare(t, xml2, &err), 0);
        assert_false(sct_has_journal(t, VM));
        assert_string_equal(drv(t, "0000:05:00.0"), "vfio-pci");
        assert_int_equal(sct_release(t, VM2, &err), 0);
        assert_string_equal(drv(t, "0000:05:00.0"), "nvidia");
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

/* ---- undo of each journal operation -------------------------------------------------------- */

static void test_undo_driver(void **state)
{
        struct sct *t = *state;
        struct gpuh_jentry e[] = { driver_entry("0000:05:00.0", "nvidia", ""),
                                   driver_entry("0000:05:00.1", "snd_hda_intel", "snd_hda_intel") };
        _cleanup_free_ char *before = NULL, *after = NULL, *err = NULL;

        sct_host_rtx3080(t);
        /* the audio function had an override of its own: it is put back as it was */
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:05:00.1/driver_override", "snd_hda_intel"), 0);
        before = fk_snapshot(t->k);
        sct_journal(t, VM, e, 2);
        to_vfio(t, "0000:05:00.0");
        to_vfio(t, "0000:05:00.1");
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_false(sct_has_journal(t, VM));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_undo_driver_none(void **state)
{
        struct sct *t = *state;
        struct gpuh_jentry e = driver_entry("0000:83:02.0", "", "");
        _cleanup_free_ char *before = NULL, *after = NULL, *err = NULL;

        sct_host_s7150(t, true);
        before = fk_snapshot(t->k);
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:83:02.0/driver_override", "vfio-pci"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/drivers_probe", "0000:83:02.0"), 0);
        assert_string_equal(drv(t, "0000:83:02.0"), "vfio-pci");
        /* it had no driver: it ends with none, its override cleared */
        assert_int_equal(sct_release(t, VM, &err), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_undo_keep_vfio(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL;

        sct_host_rtx3080(t);
        t->cfg->keep_vfio = calloc(1, sizeof(*t->cfg->keep_vfio));
        assert_non_null(t->cfg->keep_vfio);
        t->cfg->keep_vfio[0] = (struct gpuh_keep_vfio) { .vendor = 0x10de, .device = 0x2206 };
        t->cfg->n_keep_vfio = 1;
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
        /* the GPU stays on vfio-pci by policy, its audio goes back */
        assert_string_equal(drv(t, "0000:05:00.0"), "vfio-pci");
        assert_string_equal(drv(t, "0000:05:00.1"), "snd_hda_intel");
        assert_int_equal(sct_events(t, "\"event\":\"keep\""), 1);
        assert_false(sct_has_journal(t, VM));
}

static void test_undo_device_gone(void **state)
{
        struct sct *t = *state;
        struct gpuh_jentry e = driver_entry("0000:83:02.1", "", "");
        _cleanup_free_ char *err = NULL;
        size_t writes;

        /* a VF disabled meanwhile: nothing is left to restore */
        sct_host_s7150(t, false);
        sct_journal(t, VM, &e, 1);
        assert_int_equal(sct_release(t, VM, &err), 0);
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_false(sct_has_journal(t, VM));
}

static void test_undo_mdev(void **state)
{
        struct sct *t = *state;
        struct gpuh_jentry e = { .op = GPUH_JOP_MDEV, .dev = A("0000:3d:00.0"), .uuid = MDEV_UUID,
                                 .mdev_type = "nvidia-22" };
        _cleanup_free_ char *before = NULL, *after = NULL, *err = NULL;

        sct_host_m60(t);
        before = fk_snapshot(t->k);
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_add_mdev(t->k, "0000:3d:00.0", "nvidia-22", MDEV_UUID), 0);
        /* NVIDIA's driver answers EBUSY while it tears a stopped VM's vGPU down: retried */
        fk_forget_writes(t->k);
        fk_fail(t->k, "bus/mdev/devices/*/remove", NULL, EBUSY, 2);
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_int_equal(fk_count_writes(t->k, "bus/mdev/devices/" MDEV_UUID "/remove", "1"), 3);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);

        /* busy past the grace time: the entry stays for a later release */
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_add_mdev(t->k, "0000:3d:00.0", "nvidia-22", MDEV_UUID), 0);
        fk_fail(t->k, "bus/mdev/devices/*/remove", NULL, EBUSY, -1);
        assert_int_equal(sct_release(t, VM, &err), -EBUSY);
        assert_true(sct_has_journal(t, VM));
        fk_clear_faults(t->k);
        assert_int_equal(sct_release(t, VM, &err), 0);
        free(after);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);

        /* gone already: dropped, nothing written */
        sct_journal(t, VM, &e, 1);
        fk_forget_writes(t->k);
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_int_equal(fk_count_writes(t->k, "*", NULL), 0);
        assert_false(sct_has_journal(t, VM));
}

static void test_undo_vgpu(void **state)
{
        struct sct *t = *state;
        struct gpuh_jentry e = { .op = GPUH_JOP_VGPU, .dev = A("0000:af:00.5"), .old = 1148, .to_n = 1152 };
        const char *cur = "bus/pci/devices/0000:af:00.5/nvidia/current_vgpu_type";
        _cleanup_free_ char *before = NULL, *after = NULL, *err = NULL;

        sct_host_l40s(t, true);
        assert_int_equal(fk_kwrite(t->k, cur, "1148"), 0);
        before = fk_snapshot(t->k);
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_kwrite(t->k, cur, "0"), 0);
        assert_int_equal(fk_kwrite(t->k, cur, "1152"), 0);
        /* cleared, then the type it had before set again */
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_string_equal(rd(t, cur), "1148");
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);

        /* a VF that lost its vGPU interface (its driver went) has no type to clear */
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/drivers/nvidia/unbind", "0000:af:00.5"), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_false(sct_has_journal(t, VM));
}

static void test_undo_sriov(void **state)
{
        struct sct *t = *state;
        struct gpuh_jentry e = { .op = GPUH_JOP_SRIOV, .dev = A("0000:83:00.0"), .old = 0, .to_n = 4 };
        _cleanup_free_ char *before = NULL, *after = NULL, *err = NULL;

        sct_host_s7150(t, false);
        before = fk_snapshot(t->k);
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:83:00.0/sriov_numvfs", "4"), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);

        /* a VF in use by something no journal knows: the VFs are left enabled, the entry goes */
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:83:00.0/sriov_numvfs", "4"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:83:02.3/driver_override", "vfio-pci"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/drivers_probe", "0000:83:02.3"), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_string_equal(rd(t, "bus/pci/devices/0000:83:00.0/sriov_numvfs"), "4");
        assert_int_equal(sct_events(t, "VFs left enabled: 0000:83:02.3 is on vfio-pci"), 1);
        assert_false(sct_has_journal(t, VM));
}

/* Another domain's journal names a VF: the VFs are its to disable, the entry moves there. */
static void test_undo_sriov_moved(void **state)
{
        struct sct *t = *state;
        struct gpuh_jentry e = { .op = GPUH_JOP_SRIOV, .dev = A("0000:83:00.0"), .old = 0, .to_n = 4 };
        struct gpuh_jentry vf = driver_entry("0000:83:02.1", "", "");
        _cleanup_free_ char *before = NULL, *after = NULL, *err = NULL;

        sct_host_s7150(t, false);
        before = fk_snapshot(t->k);
        sct_journal(t, VM, &e, 1);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:83:00.0/sriov_numvfs", "4"), 0);
        sct_journal(t, VM2, &vf, 1);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:83:02.1/driver_override", "vfio-pci"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/drivers_probe", "0000:83:02.1"), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_false(sct_has_journal(t, VM));
        assert_string_equal(rd(t, "bus/pci/devices/0000:83:00.0/sriov_numvfs"), "4");
        assert_int_equal(sct_events(t, "\"event\":\"takeover\""), 1);
        /* VM2's release puts its VF back, then disables the VFs */
        assert_int_equal(sct_release(t, VM2, &err), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_undo_dead_device(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL;
        unsigned char ones[64];

        sct_host_rtx3080(t);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        /* the GPU fell off the bus: config space reads all ones */
        memset(ones, 0xff, sizeof(ones));
        assert_int_equal(fk_poke(t->k, "bus/pci/devices/0000:05:00.0/config", ones, sizeof(ones)), 0);
        assert_int_equal(sct_release(t, VM, &err), -EIO);
        assert_non_null(strstr(err, "0000:05:00.0: config space reads 0xffff"));
        assert_true(sct_quarantined(t, "0000:05:00.0"));
        assert_true(sct_has_journal(t, VM));
        /* its audio function was put back */
        assert_string_equal(drv(t, "0000:05:00.1"), "snd_hda_intel");
}

static void test_undo_no_driver_after(void **state)
{
        struct sct *t = *state;
        struct gpuh_jentry e = driver_entry("0000:05:00.0", "nouveau", "");
        _cleanup_free_ char *err = NULL;

        sct_host_rtx3080(t);
        sct_journal(t, VM, &e, 1);
        to_vfio(t, "0000:05:00.0");
        /* nouveau is not there to bind it: a GPU without a driver is quarantined */
        assert_int_equal(sct_release(t, VM, &err), -ENODEV);
        assert_string_equal(drv(t, "0000:05:00.0"), "");
        assert_true(sct_quarantined(t, "0000:05:00.0"));
        assert_int_equal(sct_events(t, "no driver bound after restoring nouveau"), 1);
        assert_true(sct_has_journal(t, VM));
}

/* ---- held devices, late writes ------------------------------------------------------------- */

static void test_release_held(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL, *before = NULL, *after = NULL;

        sct_host_rtx3080(t);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        /* QEMU has not let go of the group yet */
        assert_int_equal(fk_hold(t->k, 4242, "qemu-system-x86", "vfio/24"), 0);
        assert_int_equal(sct_release(t, VM, &err), -EBUSY);
        assert_non_null(strstr(err, "still in use"));
        assert_non_null(strstr(err, "pid 4242 (qemu-system-x86)"));
        assert_true(sct_has_journal(t, VM));
        assert_string_equal(drv(t, "0000:05:00.0"), "vfio-pci");
        fk_unhold(t->k, 4242);
        assert_int_equal(sct_release(t, VM, &err), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_release_held_mdev(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-18") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL, *before = NULL, *after = NULL;

        sct_host_m60(t);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        /* the mdev's own group, the lowest free number */
        assert_true(fk_dev_exists(t->k, "vfio/0"));
        assert_int_equal(fk_hold(t->k, 4243, "qemu-system-x86", "vfio/0"), 0);
        assert_int_equal(sct_release(t, VM, &err), -EBUSY);
        assert_non_null(strstr(err, "mdev " MDEV_UUID ": still in use"));
        assert_true(fk_exists(t->k, "bus/mdev/devices/" MDEV_UUID));
        fk_unhold(t->k, 4243);
        assert_int_equal(sct_release(t, VM, &err), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_release_late_lands(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL, *before = NULL, *after = NULL;

        sct_host_rtx3080(t);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        /* the unbind from vfio-pci misses its deadline: waited for, read again, finished */
        fk_hang(t->k, "bus/pci/drivers/vfio-pci/unbind", "0000:05:00.0", FK_HANG_LANDS, 1);
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_null(err);
        assert_int_equal(fk_in_flight(t->k), 0);
        assert_false(sct_quarantined(t, "0000:05:00.0"));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_release_late_stuck(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL, *before = NULL, *after = NULL;

        sct_host_rtx3080(t);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        fk_hang(t->k, "bus/pci/drivers/vfio-pci/unbind", "0000:05:00.0", FK_HANG_STUCK, 1);
        assert_int_equal(sct_release(t, VM, &err), -ETIMEDOUT);
        assert_non_null(strstr(err, "0000:05:00.0"));
        assert_non_null(strstr(err, "quarantined"));
        assert_true(sct_quarantined(t, "0000:05:00.0"));
        assert_true(sct_has_journal(t, VM));
        /* the other function was released */
        assert_string_equal(drv(t, "0000:05:00.1"), "snd_hda_intel");
        /* a later release (reconcile) while it still hangs keeps it too (reconcile takes the
         * -ETIMEDOUT for a domain lock another hook holds: it logs and goes on) */
        sct_reconcile(t, &err);
        assert_true(sct_has_journal(t, VM));
        assert_string_equal(drv(t, "0000:05:00.0"), "vfio-pci");
        fk_land(t->k);
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_false(sct_has_journal(t, VM));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
        /* the quarantine stays until an operator removes it */
        assert_true(sct_quarantined(t, "0000:05:00.0"));
}

/* ---- reconcile, onStop ---------------------------------------------------------------------- */

static void test_reconcile(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        struct gpuh_alloc b[] = { sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-22") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *xml2 = sct_domain(VM2, VM2_UUID, b, 1), *err = NULL,
                           *before = NULL, *after = NULL;

        sct_host_rtx3080(t);
        sct_host_m60(t);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_int_equal(sct_prepare(t, xml2, &err), 0);
        /* VM2 runs; VM does not (a crash): only VM is released */
        sct_running(t, VM2, xml2);
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_false(sct_has_journal(t, VM));
        assert_true(sct_has_journal(t, VM2));
        assert_string_equal(drv(t, "0000:05:00.0"), "nvidia");
        assert_true(fk_exists(t->k, "bus/mdev/devices/" MDEV_UUID));
        /* journals younger than the minimum age may be a start in progress */
        sct_running(t, VM2, NULL);
        t->o.min_age_s = 3600;
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_true(sct_has_journal(t, VM2));
        t->o.min_age_s = 0;
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_false(sct_has_journal(t, VM2));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_reconcile_stranded(void **state)
{
        struct sct *t = *state;
        _cleanup_free_ char *err = NULL;

        sct_host_rtx3080(t);
        /* something set the override and kept no record: nothing can say what it was */
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci"), 0);
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_true(sct_quarantined(t, "0000:05:00.0"));
        assert_false(sct_quarantined(t, "0000:05:00.1"));
        assert_int_equal(sct_events(t, "0000:05:00.0: left mid-change"), 1);
        /* a GPU without any driver is only reported */
        assert_int_equal(fk_kwrite(t->k, "bus/pci/drivers/nvidia/unbind", "0000:04:00.0"), 0);
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_false(sct_quarantined(t, "0000:04:00.0"));
        assert_int_equal(sct_events(t, "0000:04:00.0: GPU without a driver"), 1);
}

static void test_stopped(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_vgpu("0000:af:00.5", "0000:af:00.0", 1152) };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL, *before = NULL, *after = NULL;

        sct_host_l40s(t, true);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_int_equal(gpuh_sc_started(&t->o, VM, sct_err(&err)), 0);
        /* onStop while it still runs: nothing */
        sct_running(t, VM, xml);
        assert_int_equal(gpuh_sc_stopped(&t->o, VM, NULL, sct_err(&err)), 0);
        assert_true(sct_has_journal(t, VM));
        /* it stopped: released, its running reservation freed */
        sct_running(t, VM, NULL);
        assert_int_equal(gpuh_sc_stopped(&t->o, VM, NULL, sct_err(&err)), 0);
        assert_false(sct_has_journal(t, VM));
        assert_false(sct_has_reservation(t, VM));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

static void test_broken_config(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *none = sct_domain(VM2, VM2_UUID, NULL, 0),
                           *err = NULL;

        sct_host_rtx3080(t);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        t->o.config_error = "config '/etc/gpuhooks/gpuhooks.json': unknown key 'x'";
        /* the journal is kept for a release once the file is fixed */
        assert_int_equal(sct_release(t, VM, &err), -EBADMSG);
        assert_true(sct_has_journal(t, VM));
        assert_int_equal(sct_reconcile(t, &err), -EBADMSG);
        assert_int_equal(gpuh_sc_stopped(&t->o, VM, NULL, sct_err(&err)), -EBADMSG);
        /* a domain without GPUs passes, one with them is refused */
        assert_int_equal(sct_prepare(t, none, &err), 0);
        assert_int_equal(sct_release(t, VM2, &err), 0);
        assert_int_equal(sct_prepare(t, xml, &err), -EBADMSG);
        t->o.config_error = NULL;
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_string_equal(drv(t, "0000:05:00.0"), "nvidia");
}

static void test_malformed_journal(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml2 = sct_domain(VM2, VM2_UUID, a, 1), *err = NULL;
        struct gpuh_jentry e = driver_entry("0000:05:00.0", "nvidia", "");
        char path[4096];
        FILE *f;
        size_t writes;

        sct_host_rtx3080(t);
        sct_journal(t, VM, &e, 1);
        snprintf(path, sizeof(path), "%s/journal/" VM ".journal", fk_state(t->k));
        f = fopen(path, "a");
        assert_non_null(f);
        fputs("not json\n{}\n", f);
        fclose(f);
        /* nothing is guessed: the release fails, and no other domain is prepared meanwhile */
        assert_int_equal(sct_release(t, VM, &err), -EBADMSG);
        assert_non_null(strstr(err, "unusable"));
        assert_int_equal(sct_prepare(t, xml2, &err), -EBADMSG);
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_takeover, setup, teardown),
                cmocka_unit_test_setup_teardown(test_takeover_vendor_vgpu, setup, teardown),
                cmocka_unit_test_setup_teardown(test_takeover_half_done, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_driver, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_driver_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_keep_vfio, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_device_gone, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_mdev, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_vgpu, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_sriov, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_sriov_moved, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_dead_device, setup, teardown),
                cmocka_unit_test_setup_teardown(test_undo_no_driver_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_release_held, setup, teardown),
                cmocka_unit_test_setup_teardown(test_release_held_mdev, setup, teardown),
                cmocka_unit_test_setup_teardown(test_release_late_lands, setup, teardown),
                cmocka_unit_test_setup_teardown(test_release_late_stuck, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reconcile, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reconcile_stranded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stopped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broken_config, setup, teardown),
                cmocka_unit_test_setup_teardown(test_malformed_journal, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
