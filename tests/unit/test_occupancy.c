/* SPDX-License-Identifier: Apache-2.0 */
/* test_occupancy: who else holds a function or an mdev (reservations, journals, quarantine),
 * and the quarantine files read failing closed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "occupancy.h"
#include "quarantine.h"
#include "testutil.h"

static struct gpuh_pci_addr A(const char *s)
{
        struct gpuh_pci_addr a;

        assert_int_equal(gpuh_pci_addr_parse(s, &a), 0);
        return a;
}

/* A function's address, for the length of the full expression. */
#define P(s) (&(struct { struct gpuh_pci_addr a; }) { A(s) }.a)

/* Domain "other" reserves GPU 0000:05:00.0 (with audio 05:00.1) and an mdev on VF
 * 0000:af:00.4 of PF 0000:af:00.0; "expired" reserved 0000:06:00.0 long ago. */
static void claims(struct gpuh_reservation res[3], struct gpuh_alloc dev[3])
{
        dev[0] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_PCI, .addr = A("0000:05:00.0"), .n_companions = 1 };
        dev[0].companions[0] = A("0000:05:00.1");
        dev[1] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_MDEV, .parent = A("0000:af:00.4"),
                                       .uuid = "11111111-2222-5333-8444-555555555555" };
        dev[2] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_PCI, .addr = A("0000:06:00.0") };
        res[0] = (struct gpuh_reservation) { .domain = (char *) "other", .state = (char *) "reserved", .expires = 2000,
                                             .devices = dev, .n_devices = 2 };
        res[1] = (struct gpuh_reservation) { .domain = (char *) "expired", .state = (char *) "reserved", .expires = 10,
                                             .devices = &dev[2], .n_devices = 1 };
        res[2] = (struct gpuh_reservation) { .domain = (char *) "self", .state = (char *) "running", .expires = 0,
                                             .devices = &dev[2], .n_devices = 1 };
}

static void test_reservations(void **state)
{
        struct gpuh_reservation res[3];
        struct gpuh_alloc dev[3];
        char why[256];
        struct gpuh_pci_addr pf = A("0000:af:00.0");

        (void) state;
        claims(res, dev);
        struct gpuh_occupancy o = { .self = "self", .now = 1000, .res = res, .n_res = 3 };
        assert_true(gpuh_occupancy_pci(&o, P("0000:05:00.0"), NULL, why, sizeof(why)));
        assert_string_equal(why, "reserved for other");
        /* the companion, and the VF carrying the other's mdev, and its PF whole */
        assert_true(gpuh_occupancy_pci(&o, P("0000:05:00.1"), NULL, why, sizeof(why)));
        assert_true(gpuh_occupancy_pci(&o, P("0000:af:00.4"), &pf, why, sizeof(why)));
        /* a sibling VF is free: an mdev of one VF does not hold the others */
        assert_false(gpuh_occupancy_pci(&o, P("0000:af:00.5"), &pf, why, sizeof(why)));
        /* an expired reservation holds nothing; our own claims do not count */
        assert_false(gpuh_occupancy_pci(&o, P("0000:06:00.0"), NULL, why, sizeof(why)));
        assert_true(gpuh_occupancy_mdev(&o, "11111111-2222-5333-8444-555555555555", why, sizeof(why)));
        assert_false(gpuh_occupancy_mdev(&o, "11111111-2222-5333-8444-555555555556", why, sizeof(why)));
        /* once "other" has expired too, nothing of it counts */
        o.now = 3000;
        assert_false(gpuh_occupancy_pci(&o, P("0000:05:00.0"), NULL, why, sizeof(why)));
}

/* The exact-holder questions selection and the transformer's conflict check ask. */
static void test_holders(void **state)
{
        struct gpuh_reservation res[3];
        struct gpuh_alloc dev[3], plan[1] = { { .kind = GPUH_ALLOC_MDEV, .uuid = "aaaaaaaa-2222-5333-8444-555555555555" } };

        (void) state;
        claims(res, dev);
        struct gpuh_occupancy o = { .self = "self", .now = 1000, .res = res, .n_res = 3, .plan = plan, .n_plan = 1 };
        assert_string_equal(gpuh_occupancy_holder_pci(&o, P("0000:05:00.1")), "other");
        /* the VF carrying another's mdev is not held itself: selection weighs relatives itself */
        assert_null(gpuh_occupancy_holder_pci(&o, P("0000:af:00.4")));
        assert_null(gpuh_occupancy_holder_pci(&o, P("0000:06:00.0")));     /* expired, and our own */
        assert_string_equal(gpuh_occupancy_holder_mdev(&o, "11111111-2222-5333-8444-555555555555"), "other");
        assert_string_equal(gpuh_occupancy_holder_mdev(&o, "aaaaaaaa-2222-5333-8444-555555555555"), "self");
        assert_null(gpuh_occupancy_holder_mdev(&o, "bbbbbbbb-2222-5333-8444-555555555555"));
}

static void test_journals(void **state)
{
        struct gpuh_reservation res[3];
        struct gpuh_alloc dev[3];
        struct gpuh_jentry e[2] = {
                { .op = GPUH_JOP_DRIVER, .dev = A("0000:07:00.0") },
                { .op = GPUH_JOP_SRIOV, .dev = A("0000:af:00.0") },
        };
        struct gpuh_journal jo = { .domain = (char *) "other", .e = e, .n = 2 };
        struct gpuh_journal jx = { .domain = (char *) "gone", .e = e, .n = 1 };
        struct gpuh_journal *js[2] = { &jo, &jx };
        char why[256];

        (void) state;
        claims(res, dev);
        struct gpuh_occupancy o = { .self = "self", .now = 1000, .res = res, .n_res = 3, .journals = js, .n_journals = 2 };
        assert_true(gpuh_occupancy_pci(&o, P("0000:07:00.0"), NULL, why, sizeof(why)));
        assert_string_equal(why, "in use by other (its journal)");
        /* a journal whose domain holds no live reservation is stale: it is taken over, not a holder */
        js[0] = &jx;
        assert_false(gpuh_occupancy_pci(&o, P("0000:07:00.0"), NULL, why, sizeof(why)));
}

static void test_quarantine(void **state)
{
        _cleanup_free_ struct gpuh_quarantined *q = NULL;
        struct gpuh_pci_addr a = A("0000:05:00.0"), vf = A("0000:05:00.4"), b = A("0000:3b:00.0");
        char why[768];
        size_t n = 0;

        (void) state;
        assert_int_equal(gpuh_quarantine_load(tu_dir, &q, &n), 0);     /* no quarantine/ at all */
        assert_int_equal(n, 0);
        tu_mkdir(tu_dir, "quarantine");
        {
                char qd[PATH_MAX];
                _cleanup_close_ int qfd = -1;

                snprintf(qd, sizeof(qd), "%s/quarantine", tu_dir);
                qfd = open(qd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(qfd >= 0);
                assert_int_equal(gpuh_quarantine_add(qfd, &a, "i-2-6-VM", "a write\nstill in flight", 1700000000), 0);
                /* the first cause stays */
                assert_int_equal(gpuh_quarantine_add(qfd, &a, "x", "later", 1800000000), 0);
        }
        /* a damaged file still quarantines the function its name gives */
        tu_write(tu_dir, "quarantine/0000:3b:00.0.json", "{not json");
        tu_write(tu_dir, "quarantine/not-an-address.json", "{}");
        tu_write(tu_dir, "quarantine/.0000:3c:00.0.json.tmp", "{}");
        assert_int_equal(gpuh_quarantine_load(tu_dir, &q, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(gpuh_pci_addr_cmp(&q[0].addr, &a), 0);
        assert_string_equal(q[0].domain, "i-2-6-VM");
        assert_string_equal(q[0].reason, "a write still in flight");
        assert_int_equal(q[0].since, 1700000000);
        assert_non_null(strstr(q[1].reason, "malformed"));
        {
                struct gpuh_occupancy o = { .quarantined = q, .n_quarantined = n };
                assert_true(gpuh_occupancy_pci(&o, &a, NULL, why, sizeof(why)));
                assert_non_null(strstr(why, "quarantined since 2023-11-14T22:13:20Z"));
                assert_true(gpuh_occupancy_pci(&o, &vf, &a, why, sizeof(why)));      /* a VF of it */
                assert_true(gpuh_occupancy_pci(&o, &b, NULL, why, sizeof(why)));
                assert_false(gpuh_occupancy_pci(&o, &vf, NULL, why, sizeof(why)));
        }
        free(q);
        q = NULL;
        /* a quarantine/ replaced by a symbolic link is not followed */
        tu_rmtree(tu_dir);
        mkdir(tu_dir, 0700);
        tu_symlink(tu_dir, "quarantine", "/tmp");
        {
                int r = gpuh_quarantine_load(tu_dir, &q, &n);
                assert_true(r == -ENOTDIR || r == -ELOOP);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reservations),
                cmocka_unit_test(test_holders),
                cmocka_unit_test(test_journals),
                cmocka_unit_test(test_quarantine),
        };
        return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
