/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_table.h: the inventory as a table for a person at a shell. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "capacity.h"
#include "inventory.h"

/* What the table shows; a zeroed one shows everything. */
struct gpuh_table_filter {
        const struct gpuh_pci_addr *gpu;        /* only this GPU (a PF address, or one of its VFs'), or NULL */
        bool free_only;                         /* only what can still be given: GPUs with room, free VFs,
                                                 * vGPUs no domain uses, profiles with more > 0 */
};

/**
 * gpuh_gpu_matches:
 * Returns: whether @a is GPU @g itself, one of its VFs or one of its IOMMU group members.
 */
bool gpuh_gpu_matches(const struct gpuh_gpu *g, const struct gpuh_pci_addr *a);

/**
 * gpuh_capacity_summary:
 * @c: a profile's capacity
 * @buf, @size: receive "1 in use, 1 more" ("? more" when unknown)
 *
 * Returns: @buf.
 */
char *gpuh_capacity_summary(const struct gpuh_profile_cap *c, char *buf, size_t size);

/**
 * gpuh_inventory_print_table:
 * @inv: a scanned inventory
 * @flt: what to show, or NULL for everything
 * @f: output stream
 *
 * One line per GPU, then indented one per IOMMU group member, VF and vGPU instance under it,
 * then one per profile that exists or has room (gpuh_gpu_capacity(): "1 in use, 1 more");
 * then the warnings. Columns (each as wide as its content, table.h): address (UUID for
 * vGPUs), kind, vendor:device (type id for vGPUs and profiles), model or profile, driver,
 * IOMMU group, NUMA node, passthrough, used by (capacity for profiles).
 *
 * Returns: 0; -ENOMEM; -EIO when writing fails.
 */
int gpuh_inventory_print_table(struct gpuh_inventory *inv, const struct gpuh_table_filter *flt, FILE *f);
