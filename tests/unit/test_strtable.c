/* SPDX-License-Identifier: Apache-2.0 */
/* test_strtable: GPUH_DEFINE_STRING_TABLE_LOOKUP and every enum's names (a stable interface:
 * they are written into inventories, records, reservations and journals). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "alloc.h"
#include "capacity.h"
#include "check.h"
#include "inventory.h"
#include "journal.h"
#include "request.h"
#include "status.h"
#include "strtable.h"
#include "vm_usage.h"

/* The macro on its own: a hole in the table, a NULL fallback. */
enum fruit { FRUIT_APPLE, FRUIT_HOLE, FRUIT_PEAR, _FRUIT_MAX };
static const char *const fruit_table[_FRUIT_MAX] = {
        [FRUIT_APPLE] = "apple",
        [FRUIT_PEAR] = "pear",
};
const char *fruit_to_string(enum fruit f);
int fruit_from_string(const char *s);
GPUH_DEFINE_STRING_TABLE_LOOKUP(fruit, enum fruit, fruit_table, NULL)

static void test_macro(void **state)
{
        assert_string_equal(fruit_to_string(FRUIT_APPLE), "apple");
        assert_string_equal(fruit_to_string(FRUIT_PEAR), "pear");
        assert_null(fruit_to_string(FRUIT_HOLE));
        assert_null(fruit_to_string(_FRUIT_MAX));
        assert_null(fruit_to_string((enum fruit) -1));
        assert_int_equal(fruit_from_string("apple"), FRUIT_APPLE);
        assert_int_equal(fruit_from_string("pear"), FRUIT_PEAR);
        assert_int_equal(fruit_from_string("Pear"), -EINVAL);   /* exact */
        assert_int_equal(fruit_from_string("pea"), -EINVAL);    /* no prefix match */
        assert_int_equal(fruit_from_string("pears"), -EINVAL);
        assert_int_equal(fruit_from_string(""), -EINVAL);
        assert_int_equal(fruit_from_string(NULL), -EINVAL);
}

/* One enum: its names in order, its fallback for a value outside it, and its pair. */
struct table {
        const char *what;
        const char *const *names;       /* NULL-terminated, index = value */
        const char *fallback;
        const char *(*to)(int v);
        int (*from)(const char *s);
};

/* The enum-typed functions behind an int-typed signature, for one loop over every table. */
#define WRAP(name, type) \
        static const char *name##_to(int v) { return name##_to_string((type) v); }
WRAP(gpuh_alloc_kind, enum gpuh_alloc_kind)
WRAP(gpuh_check_status, enum gpuh_check_status)
WRAP(gpuh_block, unsigned)
WRAP(gpuh_role, enum gpuh_member_role)
WRAP(gpuh_jop, enum gpuh_jop)
WRAP(gpuh_req_mode, enum gpuh_req_mode)
WRAP(gpuh_req_numa, enum gpuh_req_numa)
WRAP(gpuh_vm_state, enum gpuh_vm_state)
WRAP(gpuh_vm_source, enum gpuh_vm_source)
WRAP(gpuh_cap_kind, enum gpuh_cap_kind)
WRAP(gpuh_dev_kind, enum gpuh_dev_kind)
WRAP(gpuh_dev_state, enum gpuh_dev_state)

#define NAMES(...) ((const char *const[]) { __VA_ARGS__, NULL })
#define TABLE(name, fb, ...) { #name, NAMES(__VA_ARGS__), fb, name##_to, name##_from_string }

static const struct table tables[] = {
        TABLE(gpuh_alloc_kind, "?", "pci", "vf", "mdev", "vendor-vgpu"),
        TABLE(gpuh_check_status, "?", "ok", "info", "warn", "fail"),
        TABLE(gpuh_block, "unknown", "boot-vga", "vfs-enabled", "mdevs-created", "no-iommu-group",
              "iommu-group-shared", "excluded", "layout"),
        TABLE(gpuh_role, "foreign", "gpu", "companion", "bridge", "foreign"),
        TABLE(gpuh_jop, NULL, "driver", "mdev", "vgpu-type", "sriov", "gpu-instance", "mig-mode"),
        TABLE(gpuh_req_mode, "?", "passthrough", "vf", "mdev", "vendor-vgpu"),
        TABLE(gpuh_req_numa, "?", "prefer", "require", "any"),
        TABLE(gpuh_vm_state, "nostate", "running", "paused", "blocked", "shutdown", "pmsuspended", "crashed",
              "nostate", "shutoff", "defined"),
        TABLE(gpuh_vm_source, "none", "none", "libvirt", "domain-xml"),
        TABLE(gpuh_cap_kind, "?", "passthrough", "mdev", "vf-mdev", "vendor-vgpu", "vf"),
        TABLE(gpuh_dev_kind, "?", "gpu", "vf", "mdev", "slot"),
        TABLE(gpuh_dev_state, "?", "quarantined", "in-use", "reserved", "journaled", "driverless", "shared", "blocked",
              "carved", "free"),
};

/* The enums' sizes, so that a value added without a name is caught. */
static const int maxes[] = {
        _GPUH_ALLOC_KIND_MAX, _GPUH_CHECK_STATUS_MAX, _GPUH_BLOCK_MAX, _GPUH_ROLE_MAX, _GPUH_JOP_MAX,
        _GPUH_REQ_MODE_MAX, _GPUH_NUMA_MAX, _GPUH_VM_STATE_MAX, _GPUH_VM_SOURCE_MAX, _GPUH_CAP_KIND_MAX,
        _GPUH_DEV_KIND_MAX, _GPUH_DEV_STATE_MAX,
};

static void test_round_trip(void **state)
{
        static const char *const unknown[] = { "", "x", "PCI", "Running", " ok", "ok ", "mdev-", "none\n" };

        assert_int_equal(ARRAY_SIZE(tables), ARRAY_SIZE(maxes));
        for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
                const struct table *tb = &tables[t];
                int n = 0;

                for (; tb->names[n]; n++) {
                        const char *s = tb->to(n);
                        if (!s || !streq(s, tb->names[n]))
                                fail_msg("%s(%d) is '%s', expected '%s'", tb->what, n, s ? s : "(null)", tb->names[n]);
                        if (tb->from(s) != n)
                                fail_msg("%s_from_string('%s') is %d, expected %d", tb->what, s, tb->from(s), n);
                }
                if (n != maxes[t])
                        fail_msg("%s: %d names for %d values", tb->what, n, maxes[t]);
                /* outside the enum: the fallback, on either side */
                for (int v = n; v < n + 3; v++) {
                        const char *s = tb->to(v);
                        if (tb->fallback ? !s || !streq(s, tb->fallback) : s != NULL)
                                fail_msg("%s(%d) is '%s', expected the fallback", tb->what, v, s ? s : "(null)");
                }
                if (tb->fallback ? !streq(tb->to(-1), tb->fallback) : tb->to(-1) != NULL)
                        fail_msg("%s(-1) is not the fallback", tb->what);
                /* unknown strings, and NULL */
                for (size_t u = 0; u < ARRAY_SIZE(unknown); u++)
                        if (tb->from(unknown[u]) != -EINVAL)
                                fail_msg("%s_from_string('%s') is %d", tb->what, unknown[u], tb->from(unknown[u]));
                assert_int_equal(tb->from(NULL), -EINVAL);
        }
}

/* gpuh_block_* number bits, not masks. */
static void test_block_bits(void **state)
{
        assert_int_equal(1 << gpuh_block_from_string("boot-vga"), GPUH_BLOCK_BOOT_VGA);
        assert_int_equal(1 << gpuh_block_from_string("vfs-enabled"), GPUH_BLOCK_VFS_ENABLED);
        assert_int_equal(1 << gpuh_block_from_string("mdevs-created"), GPUH_BLOCK_MDEVS);
        assert_int_equal(1 << gpuh_block_from_string("no-iommu-group"), GPUH_BLOCK_NO_GROUP);
        assert_int_equal(1 << gpuh_block_from_string("iommu-group-shared"), GPUH_BLOCK_GROUP_SHARED);
        assert_int_equal(1 << gpuh_block_from_string("excluded"), GPUH_BLOCK_EXCLUDED);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_macro),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_block_bits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
