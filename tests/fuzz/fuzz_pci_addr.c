/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_pci_addr: PCI addresses: gpuh_pci_addr_parse() against its documented grammar
 * (pci_addr.h: "DDDD:BB:SS.F" with 4 or 5 domain digits, 5 only when 4 cannot hold it, or
 * "BB:SS.F"; slot <= 0x1f, function <= 7; nothing else), formatting and parsing back, and
 * gpuh_pci_addr_from_libvirt() on four NUL-separated attribute values (ranges checked).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pci_addr.h"

static bool hex_n(const char *s, size_t n, unsigned *ret)
{
        unsigned v = 0;

        for (size_t i = 0; i < n; i++) {
                if (!isxdigit((unsigned char) s[i]))
                        return false;
                v = v * 16 + (unsigned) (isdigit((unsigned char) s[i]) ? s[i] - '0' : tolower((unsigned char) s[i]) - 'a' + 10);
        }
        *ret = v;
        return true;
}

static bool ref_parse(const char *s, struct gpuh_pci_addr *ret)
{
        size_t len = strlen(s), dlen;
        unsigned d = 0, b, sl, f;

        if (len == 7)
                dlen = 0;
        else if (len == 12 || len == 13)
                dlen = len - 8;
        else
                return false;
        if (dlen && (!hex_n(s, dlen, &d) || s[dlen] != ':' || (dlen == 5 && d <= 0xffff)))
                return false;
        s += dlen ? dlen + 1 : 0;
        if (!hex_n(s, 2, &b) || s[2] != ':' || !hex_n(s + 3, 2, &sl) || s[5] != '.' || !hex_n(s + 6, 1, &f) ||
            sl > 0x1f || f > 7)
                return false;
        *ret = (struct gpuh_pci_addr) { .domain = d, .bus = (uint8_t) b, .slot = (uint8_t) sl, .func = (uint8_t) f };
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fz_pieces in = { data, data + size, false };
        _cleanup_free_ char *s = fz_next(&in, NULL), *dom = NULL, *bus = NULL, *slot = NULL, *fn = NULL;
        struct gpuh_pci_addr a = { 0 }, ref = { 0 }, back = { 0 };
        char buf[GPUH_PCI_ADDR_MAX], agent[GPUH_PCI_ADDR_MAX];
        int r;

        r = gpuh_pci_addr_parse(s, &a);
        if ((r == 0) != ref_parse(s, &ref) || (r == 0 && gpuh_pci_addr_cmp(&a, &ref) != 0)) {
                fprintf(stderr, "fuzz_pci_addr: '%s' parsed %d, the grammar says otherwise\n", s, r);
                abort();
        }
        if (r == 0) {
                /* one spelling per address: formatting gives it back (lowercase) */
                gpuh_pci_addr_format(&a, buf);
                if (gpuh_pci_addr_parse(buf, &back) < 0 || gpuh_pci_addr_cmp(&a, &back) != 0 ||
                    (strlen(s) != 7 && strcasecmp(buf, s) != 0))
                        abort();
                gpuh_pci_addr_format_agent(&a, agent);
                if (gpuh_pci_addr_parse(agent, &back) < 0 || gpuh_pci_addr_cmp(&a, &back) != 0)
                        abort();
        }

        dom = fz_next(&in, NULL);
        bus = fz_next(&in, NULL);
        slot = fz_next(&in, NULL);
        fn = fz_next(&in, NULL);
        r = gpuh_pci_addr_from_libvirt(dom && *dom ? dom : NULL, bus, slot, fn, &a);
        if (r == 0) {
                if (a.domain > 0xfffff || a.slot > 0x1f || a.func > 7 || !bus || !slot || !fn)
                        abort();
                gpuh_pci_addr_format(&a, buf);
                if (gpuh_pci_addr_parse(buf, &back) < 0 || gpuh_pci_addr_cmp(&a, &back) != 0)
                        abort();
        } else if (r != -EINVAL)
                abort();
        return 0;
}
