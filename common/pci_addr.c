/* SPDX-License-Identifier: Apache-2.0 */
/* pci_addr.c: PCI address parsing and formatting. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci_addr.h"

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Parse exactly @n hex digits at @s. */
static int hex_n(const char *s, size_t n, uint32_t *ret)
{
        uint32_t v = 0;

        for (size_t i = 0; i < n; i++) {
                int d = hexval(s[i]);
                if (d < 0)
                        return -EINVAL;
                v = (v << 4) | (uint32_t) d;
        }
        *ret = v;
        return 0;
}

int gpuh_pci_addr_parse(const char *s, struct gpuh_pci_addr *ret)
{
        uint32_t domain = 0, bus, slot, func;
        size_t len, dlen;

        if (!s || !ret)
                return -EINVAL;
        len = strlen(s);
        /* "BB:SS.F" is 7 characters; with a domain 12 or 13. */
        if (len == 7)
                dlen = 0;
        else if (len == 12 || len == 13)
                dlen = len - 8;
        else
                return -EINVAL;
        if (dlen > 0) {
                if (hex_n(s, dlen, &domain) < 0 || s[dlen] != ':')
                        return -EINVAL;
                /* One spelling per address: 5 digits only when 4 cannot hold it. */
                if (dlen == 5 && domain <= 0xffff)
                        return -EINVAL;
                s += dlen + 1;
        }
        if (hex_n(s, 2, &bus) < 0 || s[2] != ':' ||
            hex_n(s + 3, 2, &slot) < 0 || s[5] != '.' ||
            hex_n(s + 6, 1, &func) < 0 || s[7] != '\0')
                return -EINVAL;
        if (slot > 0x1f || func > 7)
                return -EINVAL;
        *ret = (struct gpuh_pci_addr) { .domain = domain, .bus = (uint8_t) bus,
                                        .slot = (uint8_t) slot, .func = (uint8_t) func };
        return 0;
}

static int parse_num(const char *s, unsigned long max, unsigned long *ret)
{
        char *end;
        unsigned long v;

        if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 0);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int gpuh_pci_addr_from_libvirt(const char *domain, const char *bus, const char *slot,
                               const char *function, struct gpuh_pci_addr *ret)
{
        unsigned long d = 0, b, s, f;

        if (!ret)
                return -EINVAL;
        if ((domain && parse_num(domain, 0xfffff, &d) < 0) ||
            parse_num(bus, 0xff, &b) < 0 ||
            parse_num(slot, 0x1f, &s) < 0 ||
            parse_num(function, 7, &f) < 0)
                return -EINVAL;
        *ret = (struct gpuh_pci_addr) { .domain = (uint32_t) d, .bus = (uint8_t) b,
                                        .slot = (uint8_t) s, .func = (uint8_t) f };
        return 0;
}

char *gpuh_pci_addr_format(const struct gpuh_pci_addr *a, char *buf)
{
        snprintf(buf, GPUH_PCI_ADDR_MAX, "%04x:%02x:%02x.%x",
                 (unsigned) (a->domain & 0xfffff), a->bus, a->slot & 0x1f, a->func & 7);
        return buf;
}

char *gpuh_pci_addr_format_agent(const struct gpuh_pci_addr *a, char *buf)
{
        if (a->domain != 0)
                return gpuh_pci_addr_format(a, buf);
        snprintf(buf, GPUH_PCI_ADDR_MAX, "%02x:%02x.%x", a->bus, a->slot & 0x1f, a->func & 7);
        return buf;
}

int gpuh_pci_addr_cmp(const struct gpuh_pci_addr *a, const struct gpuh_pci_addr *b)
{
        if (a->domain != b->domain)
                return a->domain < b->domain ? -1 : 1;
        if (a->bus != b->bus)
                return a->bus < b->bus ? -1 : 1;
        if (a->slot != b->slot)
                return a->slot < b->slot ? -1 : 1;
        if (a->func != b->func)
                return a->func < b->func ? -1 : 1;
        return 0;
}

bool gpuh_pci_addr_same_slot(const struct gpuh_pci_addr *a, const struct gpuh_pci_addr *b)
{
        return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot;
}
