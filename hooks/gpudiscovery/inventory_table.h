/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_table.h: the inventory as a table for a person at a shell. */
#pragma once

#include <stdio.h>

#include "inventory.h"

/**
 * gpuh_inventory_print_table:
 * @inv: a scanned inventory
 * @f: output stream
 *
 * One line per GPU, then one per VF and per vGPU instance under it, indented; then the
 * warnings. Columns: address (UUID for vGPUs), kind, vendor:device (type id for vGPUs), model
 * or profile, driver, IOMMU group, NUMA node, passthrough, used by.
 *
 * Returns: 0; -EIO when writing fails.
 */
int gpuh_inventory_print_table(struct gpuh_inventory *inv, FILE *f);
