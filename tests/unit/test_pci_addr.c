/* SPDX-License-Identifier: Apache-2.0 */
/* test_pci_addr: strict parsing, both formats, ordering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "pci_addr.h"

static void test_parse_full(void **state)
{
        struct gpuh_pci_addr a;
        char buf[GPUH_PCI_ADDR_MAX];

        assert_int_equal(gpuh_pci_addr_parse("0000:08:00.4", &a), 0);
        assert_int_equal(a.domain, 0);
        assert_int_equal(a.bus, 8);
        assert_int_equal(a.slot, 0);
        assert_int_equal(a.func, 4);
        assert_string_equal(gpuh_pci_addr_format(&a, buf), "0000:08:00.4");
        assert_string_equal(gpuh_pci_addr_format_agent(&a, buf), "08:00.4");

        assert_int_equal(gpuh_pci_addr_parse("0001:D6:1F.7", &a), 0);
        assert_int_equal(a.domain, 1);
        assert_int_equal(a.bus, 0xd6);
        assert_int_equal(a.slot, 0x1f);
        assert_int_equal(a.func, 7);
        /* non-zero domains keep the full form for the agent (CloudStack issue 12960) */
        assert_string_equal(gpuh_pci_addr_format_agent(&a, buf), "0001:d6:1f.7");
}

static void test_parse_five_digit_domain(void **state)
{
        struct gpuh_pci_addr a;
        char buf[GPUH_PCI_ADDR_MAX];

        assert_int_equal(gpuh_pci_addr_parse("10000:00:04.0", &a), 0);
        assert_int_equal(a.domain, 0x10000);
        assert_string_equal(gpuh_pci_addr_format(&a, buf), "10000:00:04.0");
        assert_string_equal(gpuh_pci_addr_format_agent(&a, buf), "10000:00:04.0");
        /* one spelling per address: 5 digits only when needed */
        assert_int_equal(gpuh_pci_addr_parse("00000:00:04.0", &a), -EINVAL);
}

static void test_parse_short(void **state)
{
        struct gpuh_pci_addr a = { .domain = 99 };
        char buf[GPUH_PCI_ADDR_MAX];

        assert_int_equal(gpuh_pci_addr_parse("3e:00.1", &a), 0);
        assert_int_equal(a.domain, 0);
        assert_int_equal(a.bus, 0x3e);
        assert_int_equal(a.func, 1);
        assert_string_equal(gpuh_pci_addr_format(&a, buf), "0000:3e:00.1");
}

static void test_parse_rejects(void **state)
{
        static const char *const bad[] = {
                "", "0", "08:00", "08:00.", "8:00.0", "08:0.0", "0000:08:00.8", "0000:08:20.0",
                "000:08:00.0", "000000:08:00.0", "0000:08:00.0 ", " 0000:08:00.0", "0000:08:00.0\n",
                "0000-08:00.0", "0000:08.00.0", "0000:08:00:0", "0000:g8:00.0", "../08:00.0",
                "0000:08:00.0/../x", "0000:08:00.00", "+000:08:00.0", "0x00:08:00.0", "00:08:00.0",
                "0000:08:0x.0",
        };
        struct gpuh_pci_addr a = { .domain = 7, .bus = 7, .slot = 7, .func = 7 };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = gpuh_pci_addr_parse(bad[i], &a);
                if (r != -EINVAL)
                        fail_msg("accepted '%s'", bad[i]);
        }
        /* output untouched on failure */
        assert_int_equal(a.domain, 7);
        assert_int_equal(a.func, 7);
        assert_int_equal(gpuh_pci_addr_parse(NULL, &a), -EINVAL);
}

static void test_from_libvirt(void **state)
{
        struct gpuh_pci_addr a;

        assert_int_equal(gpuh_pci_addr_from_libvirt("0x0000", "0x08", "0x00", "0x4", &a), 0);
        assert_int_equal(a.bus, 8);
        assert_int_equal(a.func, 4);
        assert_int_equal(gpuh_pci_addr_from_libvirt(NULL, "8", "0", "4", &a), 0);
        assert_int_equal(a.domain, 0);
        assert_int_equal(gpuh_pci_addr_from_libvirt("0x10000", "0x00", "0x04", "0x0", &a), 0);
        assert_int_equal(a.domain, 0x10000);
        /* CloudStack's pre-#12981 mistake: slot 0xd6 */
        assert_int_equal(gpuh_pci_addr_from_libvirt("0x0000", "0x0001", "0xd6", "0x0", &a), -EINVAL);
        assert_int_equal(gpuh_pci_addr_from_libvirt("0x0000", "0x100", "0x00", "0x0", &a), -EINVAL);
        assert_int_equal(gpuh_pci_addr_from_libvirt("0x0000", "0x08", "0x00", "0x8", &a), -EINVAL);
        assert_int_equal(gpuh_pci_addr_from_libvirt("0x0000", NULL, "0x00", "0x0", &a), -EINVAL);
        assert_int_equal(gpuh_pci_addr_from_libvirt("0x0000", "-1", "0x00", "0x0", &a), -EINVAL);
        assert_int_equal(gpuh_pci_addr_from_libvirt("0x0000", "0x08z", "0x00", "0x0", &a), -EINVAL);
        assert_int_equal(gpuh_pci_addr_from_libvirt("0x0000", "", "0x00", "0x0", &a), -EINVAL);
}

static void test_cmp(void **state)
{
        struct gpuh_pci_addr a, b;

        gpuh_pci_addr_parse("0000:08:00.4", &a);
        gpuh_pci_addr_parse("0000:08:01.0", &b);
        assert_true(gpuh_pci_addr_cmp(&a, &b) < 0);
        assert_true(gpuh_pci_addr_cmp(&b, &a) > 0);
        assert_false(gpuh_pci_addr_same_slot(&a, &b));
        gpuh_pci_addr_parse("0001:00:00.0", &b);
        assert_true(gpuh_pci_addr_cmp(&a, &b) < 0);
        gpuh_pci_addr_parse("0000:08:00.1", &b);
        assert_true(gpuh_pci_addr_same_slot(&a, &b));
        assert_int_equal(gpuh_pci_addr_cmp(&a, &a), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_full),
                cmocka_unit_test(test_parse_five_digit_domain),
                cmocka_unit_test(test_parse_short),
                cmocka_unit_test(test_parse_rejects),
                cmocka_unit_test(test_from_libvirt),
                cmocka_unit_test(test_cmp),
        };
        return cmocka_run_group_tests_name("pci_addr", tests, NULL, NULL);
}
