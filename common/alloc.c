/* SPDX-License-Identifier: Apache-2.0 */
/* alloc.c: allocation kinds (their written forms: alloc_codec.c). */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "macro.h"

static const char *const kind_names[_GPUH_ALLOC_KIND_MAX] = { "pci", "vf", "mdev", "vendor-vgpu" };

const char *gpuh_alloc_kind_to_string(enum gpuh_alloc_kind k)
{
        return (unsigned) k < _GPUH_ALLOC_KIND_MAX ? kind_names[k] : "?";
}

int gpuh_alloc_kind_from_string(const char *s)
{
        for (int i = 0; i < _GPUH_ALLOC_KIND_MAX; i++)
                if (s && streq(s, kind_names[i]))
                        return i;
        return -EINVAL;
}

bool gpuh_alloc_holds_pci(const struct gpuh_alloc *a, const struct gpuh_pci_addr *addr)
{
        if (a->kind == GPUH_ALLOC_MDEV)
                return false;
        if (gpuh_pci_addr_cmp(&a->addr, addr) == 0)
                return true;
        for (size_t i = 0; i < a->n_companions; i++)
                if (gpuh_pci_addr_cmp(&a->companions[i], addr) == 0)
                        return true;
        return false;
}
