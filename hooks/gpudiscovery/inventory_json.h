/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_json.h: the inventory as the JSON CloudStack's agent parses (docs/inventory.md). */
#pragma once

#include <json-c/json.h>

#include "inventory.h"

/**
 * gpuh_inventory_to_json:
 * @inv: a scanned inventory
 * @max_threads: most threads building GPU objects at once (1: none started); the document
 *               does not depend on it
 * @ret: the document, released with json_object_put()
 *
 * Field names, nesting and types follow CloudStack's gpudiscovery.sh as parsed by
 * LibvirtComputingResource.parseGpuDevicesFromResult (enabled is 0/1, required fields are
 * strings, vf_profile is never null); gpuhooks' own fields live in objects named "gpuhooks".
 * Key order is fixed, so serialising twice gives the same bytes.
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_inventory_to_json(struct gpuh_inventory *inv, unsigned max_threads, json_object **ret);

/**
 * gpuh_json_print:
 * @o: document
 * @pretty: indent with two spaces; else one line
 *
 * Writes @o and a newline to stdout; '/' is not escaped.
 *
 * Returns: 0; -EIO when stdout fails.
 */
int gpuh_json_print(json_object *o, int pretty);
