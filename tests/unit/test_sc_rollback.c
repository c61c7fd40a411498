/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sc_rollback: a prepare that fails at any of its writes leaves the host exactly as it
 * was (docs/state-change.md, prepare step 7). For each kind of prepare, the writes of a good
 * run are counted, then every one of them in turn fails (EBUSY, EINVAL, ENODEV, EIO), or hangs
 * and lands when the rollback waits for it, or stays in flight: then the device is quarantined,
 * its entries kept, and once the write landed reconcile puts the host back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sctest.h"

#define VM "i-2-154-VM"
#define VM_UUID "0c4b40fc-0b03-40c5-b04e-28a15fe12244"
#define MDEV_UUID "c728e022-f16f-434b-ad2c-9665ee634d3d"

struct scenario {
        const char *name;
        void (*host)(struct sct *t);
        struct gpuh_alloc a[3];
        size_t n;
};

static void host_rtx(struct sct *t) { sct_host_rtx3080(t); }
static void host_m60(struct sct *t) { sct_host_m60(t); }
static void host_s7150_off(struct sct *t) { sct_host_s7150(t, false); }
static void host_a2_off(struct sct *t) { sct_host_a2(t, false); }
static void host_l40s_off(struct sct *t) { sct_host_l40s(t, false); }

/* An L40S whose VF 0000:af:00.5 carries type 1148 (2Q), which prepare clears to set 1152. */
static void host_l40s_set(struct sct *t)
{
        sct_host_l40s(t, true);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:af:00.5/nvidia/current_vgpu_type", "1148"), 0);
}

static void host_rtx_m60(struct sct *t)
{
        sct_host_rtx3080(t);
        sct_host_m60(t);
}

static struct scenario *scenarios(size_t *n)
{
        static struct scenario s[8];

        s[0] = (struct scenario) { "pci and companion", host_rtx, { sct_pci("0000:05:00.0", "0000:05:00.1") }, 1 };
        s[1] = (struct scenario) { "pci, an mdev parent", host_m60, { sct_pci("0000:3d:00.0", NULL) }, 1 };
        s[2] = (struct scenario) { "vf, SR-IOV enabled", host_s7150_off, { sct_vf("0000:83:02.2", "0000:83:00.0") }, 1 };
        s[3] = (struct scenario) { "mdev on a VF, SR-IOV enabled", host_a2_off,
                                   { sct_mdev(MDEV_UUID, "0000:08:00.5", "nvidia-747") }, 1 };
        s[4] = (struct scenario) { "vendor vGPU, SR-IOV enabled", host_l40s_off,
                                   { sct_vgpu("0000:af:00.6", "0000:af:00.0", 1155) }, 1 };
        s[5] = (struct scenario) { "vendor vGPU, another type cleared first", host_l40s_set,
                                   { sct_vgpu("0000:af:00.5", "0000:af:00.0", 1152) }, 1 };
        s[6] = (struct scenario) { "pci and an mdev", host_rtx_m60,
                                   { sct_pci("0000:05:00.0", "0000:05:00.1"),
                                     sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-22") }, 2 };
        *n = 7;
        return s;
}

/* A fresh host of @sc, its domain XML and its state before anything. */
static struct sct *fresh(const struct scenario *sc, char **xml, char **before)
{
        struct sct *t = sct_new();

        sc->host(t);
        fk_forget_writes(t->k);
        *xml = sct_domain(VM, VM_UUID, sc->a, sc->n);
        *before = fk_snapshot(t->k);
        return t;
}

/* How many writes a good prepare of @sc makes. */
static size_t count_writes(const struct scenario *sc)
{
        _cleanup_free_ char *xml = NULL, *before = NULL, *err = NULL;
        struct sct *t = fresh(sc, &xml, &before);
        size_t n;

        assert_int_equal(sct_prepare(t, xml, &err), 0);
        fk_writes(t->k, &n);
        assert_true(n > 0);
        sct_free(t);
        return n;
}

static void test_fail_each_write(void **state)
{
        static const int errs[] = { EBUSY, EINVAL, ENODEV, EIO };
        size_t n_sc;
        struct scenario *sc = scenarios(&n_sc);

        for (size_t s = 0; s < n_sc; s++) {
                size_t n = count_writes(&sc[s]);

                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *xml = NULL, *before = NULL, *after = NULL, *err = NULL;
                        struct sct *t = fresh(&sc[s], &xml, &before);
                        const struct fk_write *w;
                        int e = errs[i % ARRAY_SIZE(errs)], r;
                        size_t nw;

                        print_message("%s: write %zu of %zu fails with %s\n", sc[s].name, i + 1, n, strerror(e));
                        fk_fail_nth(t->k, (int) i, e);
                        r = sct_prepare(t, xml, &err);
                        w = fk_writes(t->k, &nw);
                        assert_true(nw > i);
                        assert_int_equal(w[i].result, -e);
                        assert_true(r < 0);
                        assert_non_null(err);
                        assert_non_null(strstr(err, VM ": "));
                        assert_null(strstr(err, "rollback incomplete"));
                        assert_int_equal(sct_events(t, "\"event\":\"rollback\""), 1);
                        after = fk_snapshot(t->k);
                        sct_assert_same(before, after);
                        assert_false(sct_has_journal(t, VM));
                        assert_false(sct_has_reservation(t, VM));
                        sct_free(t);
                }
        }
}

static void test_hang_each_write_lands(void **state)
{
        size_t n_sc;
        struct scenario *sc = scenarios(&n_sc);

        for (size_t s = 0; s < n_sc; s++) {
                size_t n = count_writes(&sc[s]);

                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *xml = NULL, *before = NULL, *after = NULL, *err = NULL;
                        struct sct *t = fresh(&sc[s], &xml, &before);

                        print_message("%s: write %zu of %zu misses its deadline, lands later\n", sc[s].name, i + 1, n);
                        fk_hang_nth(t->k, (int) i, FK_HANG_LANDS);
                        assert_true(sct_prepare(t, xml, &err) < 0);
                        assert_non_null(strstr(err, "deadline"));
                        /* the rollback waited for it, read the device again and undid it too */
                        assert_int_equal(fk_in_flight(t->k), 0);
                        after = fk_snapshot(t->k);
                        sct_assert_same(before, after);
                        assert_false(sct_has_journal(t, VM));
                        sct_free(t);
                }
        }
}

static void test_hang_each_write_stuck(void **state)
{
        size_t n_sc;
        struct scenario *sc = scenarios(&n_sc);

        for (size_t s = 0; s < n_sc; s++) {
                size_t n = count_writes(&sc[s]);

                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *xml = NULL, *before = NULL, *after = NULL, *err = NULL;
                        struct sct *t = fresh(&sc[s], &xml, &before);
                        size_t nw;

                        print_message("%s: write %zu of %zu stays in flight\n", sc[s].name, i + 1, n);
                        fk_hang_nth(t->k, (int) i, FK_HANG_STUCK);
                        assert_true(sct_prepare(t, xml, &err) < 0);
                        fk_writes(t->k, &nw);
                        assert_true(nw > i);
                        /* what it was writing to may change at any time: kept, and quarantined */
                        assert_true(fk_in_flight(t->k) > 0);
                        assert_non_null(strstr(err, "rollback incomplete"));
                        assert_non_null(strstr(err, "quarantined"));
                        assert_true(sct_has_journal(t, VM));
                        assert_int_equal(sct_events(t, "\"event\":\"quarantine\""), 1);
                        /* the write lands at last: reconcile restores what the journal kept */
                        fk_land(t->k);
                        assert_int_equal(sct_reconcile(t, &err), 0);
                        assert_false(sct_has_journal(t, VM));
                        after = fk_snapshot(t->k);
                        sct_assert_same(before, after);
                        sct_free(t);
                }
        }
}

/*
 * An mdev create that stays in flight is a late write like any other: the rollback must keep
 * the mdev's entry until it is over, and reconcile remove the mdev once it landed. It failed
 * while common/change.c write_key() named a create write (mdev_supported_types/T/create under
 * the parent's directory fd) by its parent, "pci-PARENT", whereas the journal entry is
 * "mdev-UUID": the undo found no mdev yet and dropped the entry, and the mdev that landed
 * afterwards was nobody's (leaked, available_instances one short). A create is now keyed by its
 * value, the UUID.
 */
static void test_mdev_create_stuck(void **state)
{
        struct gpuh_alloc a[] = { sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-22") };
        _cleanup_free_ char *xml = NULL, *before = NULL, *after = NULL, *err = NULL;
        struct scenario sc = { "mdev on a PF", host_m60, { a[0] }, 1 };
        struct sct *t;

        t = fresh(&sc, &xml, &before);
        fk_hang(t->k, "*/mdev_supported_types/nvidia-22/create", NULL, FK_HANG_STUCK, 1);
        assert_int_equal(sct_prepare(t, xml, &err), -ETIMEDOUT);
        assert_non_null(strstr(err, "rollback incomplete"));
        assert_true(sct_has_journal(t, VM));
        fk_land(t->k);
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_false(fk_exists(t->k, "bus/mdev/devices/" MDEV_UUID));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
        sct_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fail_each_write),
                cmocka_unit_test(test_hang_each_write_lands),
                cmocka_unit_test(test_hang_each_write_stuck),
                cmocka_unit_test(test_mdev_create_stuck),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
