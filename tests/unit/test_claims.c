/* SPDX-License-Identifier: Apache-2.0 */
/* test_claims: the devices reservations and journals hold, as the inventory reports them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "claims.h"
#include "testutil.h"

#define NOW 1763712000

static const char *const RES_GPU =
        "{\"version\": 1, \"domain\": \"i-2-1-VM\", \"uuid\": null, \"state\": \"reserved\", \"created\": 1763711000, "
        "\"expires\": 1763712600, \"devices\": [{\"kind\": \"pci\", \"address\": \"0000:05:00.0\", "
        "\"companions\": [\"0000:05:00.1\"]}, {\"kind\": \"mdev\", \"uuid\": \"C728E022-F16F-434B-AD2C-9665EE634D3D\", "
        "\"parent\": \"0000:08:00.4\", \"mdev_type\": \"nvidia-746\", \"new\": true, \"display\": false, "
        "\"companions\": []}]}";
static const char *const RES_EXPIRED =
        "{\"version\": 1, \"domain\": \"i-2-2-VM\", \"uuid\": null, \"state\": \"reserved\", \"created\": 1763700000, "
        "\"expires\": 1763700600, \"devices\": [{\"kind\": \"pci\", \"address\": \"0000:06:00.0\", \"companions\": []}]}";
static const char *const JOURNAL =
        "{\"journal\": 1, \"domain\": \"i-2-3-VM\", \"uuid\": null, \"created\": 1763711000}\n"
        "{\"seq\": 1, \"op\": \"sriov\", \"device\": \"0000:af:00.0\", \"old\": 0, \"to\": 4}\n"
        "{\"seq\": 2, \"op\": \"vgpu-type\", \"device\": \"0000:af:00.4\", \"old\": 0, \"to\": 1148}\n"
        "{\"seq\": 3, \"op\": \"driver\", \"device\": \"0000:07:00.0\", \"driver\": \"nvidia\", \"override\": \"\", "
        "\"to\": \"vfio-pci\"}\n"
        "{\"seq\": 4, \"op\": \"mdev\", \"uuid\": \"3deab9a4-200a-4c54-99b1-5eb0722d1d81\", \"parent\": \"0000:08:00.6\", "
        "\"type\": \"nvidia-747\"}\n";

static struct gpuh_pci_addr A(const char *s)
{
        struct gpuh_pci_addr a;

        assert_int_equal(gpuh_pci_addr_parse(s, &a), 0);
        return a;
}

/* The domain holding PCI function @a (or mdev @uuid) first, and its kind; NULL when none. */
static const char *holder(const struct gpuh_claim *c, size_t n, const char *a, const char *uuid,
                          enum gpuh_claim_kind *kind)
{
        struct gpuh_pci_addr pa;
        size_t i;

        if (a)
                pa = A(a);
        i = gpuh_claims_find(c, n, a ? &pa : NULL, uuid, 0);
        if (i == n)
                return NULL;
        *kind = c[i].kind;
        return c[i].domain;
}

static void test_claims(void **state)
{
        char st[512];
        struct gpuh_warnings w = { 0 };
        struct gpuh_claim *c = NULL;
        enum gpuh_claim_kind k = _GPUH_CLAIM_MAX;
        size_t n = 99;

        /* no state directory: nothing, no warning */
        snprintf(st, sizeof(st), "%s/none", tu_dir);
        assert_int_equal(gpuh_claims_load(st, NOW, &c, &n, &w), 0);
        assert_int_equal(n, 0);
        assert_int_equal(w.n, 0);

        tu_mkdir(tu_dir, "state");
        snprintf(st, sizeof(st), "%s/state", tu_dir);
        tu_write(st, "reservations/i-2-1-VM.json", RES_GPU);
        tu_write(st, "reservations/i-2-2-VM.json", RES_EXPIRED);
        tu_write(st, "journal/i-2-3-VM.journal", JOURNAL);
        assert_int_equal(gpuh_claims_load(st, NOW, &c, &n, &w), 0);
        assert_int_equal(w.n, 0);
        /* the live reservation: the GPU, its companion, its mdev (by UUID, any case) */
        assert_string_equal(holder(c, n, "0000:05:00.0", NULL, &k), "i-2-1-VM");
        assert_int_equal(k, GPUH_CLAIM_RESERVED);
        assert_string_equal(holder(c, n, "0000:05:00.1", NULL, &k), "i-2-1-VM");
        assert_string_equal(holder(c, n, NULL, "c728e022-f16f-434b-ad2c-9665ee634d3d", &k), "i-2-1-VM");
        assert_null(holder(c, n, "0000:08:00.4", NULL, &k));            /* the mdev's parent is shared */
        /* the expired one holds nothing */
        assert_null(holder(c, n, "0000:06:00.0", NULL, &k));
        /* the journal: a driver change, a vGPU type, an mdev; not the PF it enabled VFs on */
        assert_string_equal(holder(c, n, "0000:07:00.0", NULL, &k), "i-2-3-VM");
        assert_int_equal(k, GPUH_CLAIM_JOURNAL);
        assert_string_equal(holder(c, n, "0000:af:00.4", NULL, &k), "i-2-3-VM");
        assert_string_equal(holder(c, n, NULL, "3DEAB9A4-200A-4C54-99B1-5EB0722D1D81", &k), "i-2-3-VM");
        assert_null(holder(c, n, "0000:af:00.0", NULL, &k));
        assert_string_equal(gpuh_claim_kind_to_string(GPUH_CLAIM_RESERVED), "reserved");
        assert_string_equal(gpuh_claim_kind_to_string(GPUH_CLAIM_JOURNAL), "journal");
        gpuh_claims_free(c, n);

        /* a reservation that does not parse: a warning, no reservation; the journal still counts */
        tu_write(st, "reservations/i-2-4-VM.json", "{not json");
        assert_int_equal(gpuh_claims_load(st, NOW, &c, &n, &w), 0);
        assert_true(w.n > 0);
        assert_null(holder(c, n, "0000:05:00.0", NULL, &k));
        assert_string_equal(holder(c, n, "0000:07:00.0", NULL, &k), "i-2-3-VM");
        gpuh_claims_free(c, n);
        gpuh_warnings_clear(&w);

        /* a journal that does not parse: a warning; the others and the reservations count */
        snprintf(st, sizeof(st), "%s/state/reservations/i-2-4-VM.json", tu_dir);
        unlink(st);
        snprintf(st, sizeof(st), "%s/state", tu_dir);
        tu_write(st, "journal/i-2-5-VM.journal", "{\"journal\": 1, \"domain\": \"i-2-5-VM\"}\n{bad}\n");
        assert_int_equal(gpuh_claims_load(st, NOW, &c, &n, &w), 0);
        assert_int_equal(w.n, 1);
        assert_non_null(strstr(w.v[0], "i-2-5-VM"));
        assert_string_equal(holder(c, n, "0000:05:00.0", NULL, &k), "i-2-1-VM");
        assert_string_equal(holder(c, n, "0000:07:00.0", NULL, &k), "i-2-3-VM");
        gpuh_claims_free(c, n);
        gpuh_warnings_clear(&w);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_claims),
        };
        return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
