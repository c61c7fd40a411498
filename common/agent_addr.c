/* SPDX-License-Identifier: Apache-2.0 */
/* agent_addr.c: recognising an old CloudStack agent's split of DDDD:BB:SS.F (agent_addr.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_addr.h"

/* "0x" and @min to @max hex digits: the value. */
static bool hex_text(const char *s, size_t min, size_t max, unsigned long *ret)
{
        size_t n;

        if (!s || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
                return false;
        s += 2;
        for (n = 0; s[n]; n++)
                if (!isxdigit((unsigned char) s[n]))
                        return false;
        if (n < min || n > max)
                return false;
        *ret = strtoul(s, NULL, 16);
        return true;
}

bool gpuh_agent_split_detect(const char *domain, const char *bus, const char *slot, const char *function,
                             struct gpuh_agent_split *ret)
{
        unsigned long d = 0, b, s, f;

        if (domain && (!hex_text(domain, 1, 5, &d) || d != 0))
                return false;
        if (!hex_text(bus, 4, 5, &b) || !hex_text(slot, 2, 2, &s) || !hex_text(function, 1, 1, &f) || f != 0)
                return false;
        if (b > 0xfffff)
                return false;
        *ret = (struct gpuh_agent_split) { .domain = (uint32_t) b, .bus = (uint8_t) s };
        return true;
}

int gpuh_agent_split_resolve(const struct gpuh_agent_split *s, const struct gpuh_pci_addr *literal,
                             bool literal_exists, const struct gpuh_pci_addr *cands, size_t n,
                             struct gpuh_pci_addr *ret, char *why, size_t size)
{
        char l[GPUH_PCI_ADDR_MAX], c0[GPUH_PCI_ADDR_MAX], c1[GPUH_PCI_ADDR_MAX];

        if (n == 0)
                return 0;
        gpuh_pci_addr_format(literal, l);
        gpuh_pci_addr_format(&cands[0], c0);
        if (literal_exists) {
                snprintf(why, size, "hostdev address %s exists, but a CloudStack agent before 4.22.1 writes %s that way "
                         "too (it reads %04x:%02x:SS.F as bus %04x, slot %02x): ambiguous, refused", l, c0,
                         (unsigned) s->domain, s->bus, (unsigned) s->domain, s->bus);
                return -ENOTUNIQ;
        }
        if (n > 1) {
                snprintf(why, size, "hostdev address %s names no device: a CloudStack agent before 4.22.1 wrote it for "
                         "a device on bus %04x:%02x, which holds %zu it may have meant (%s, %s%s): ambiguous, refused",
                         l, (unsigned) s->domain, s->bus, n, c0, gpuh_pci_addr_format(&cands[1], c1),
                         n > 2 ? ", ..." : "");
                return -ENOTUNIQ;
        }
        *ret = cands[0];
        return 1;
}
