/* SPDX-License-Identifier: Apache-2.0 */
/* alloc.c: allocation kinds (their written forms: alloc_codec.c). */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "macro.h"
#include "strtable.h"

static const char *const alloc_kind_table[_GPUH_ALLOC_KIND_MAX] = {
        [GPUH_ALLOC_PCI] = "pci",
        [GPUH_ALLOC_VF] = "vf",
        [GPUH_ALLOC_MDEV] = "mdev",
        [GPUH_ALLOC_VENDOR_VGPU] = "vendor-vgpu",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_alloc_kind, enum gpuh_alloc_kind, alloc_kind_table, "?")

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
