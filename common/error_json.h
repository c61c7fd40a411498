/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error_json.h: a failure as one JSON object, for the tools' --format json (docs/errors.md):
 *
 *   {"error": "one line", "errno": 16, "device": "0000:05:00.0"}
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "macro.h"

/* "0000:05:00.0" or a UUID, and the NUL */
#define GPUH_ERROR_DEVICE_MAX 37

/**
 * gpuh_error_device:
 * @msg: a one-line failure ("i-2-9-VM: 0000:05:00.0: held by pid 42 (qemu)"); NULL is none
 * @ret: receives the device it names, lowercase
 *
 * The device a failure is about, as the one line names it (every failure of a GPU domain names
 * its device and its cause: docs/state-change.md): the first PCI address written as the kernel
 * names PCI devices (DDDD:BB:SS.F, gpuh_pci_addr_parse()) standing alone in @msg, else the
 * first UUID (an mdev; RFC 4122 text, gpuh_uuid_is_valid()) standing alone. "Standing alone":
 * no hex digit right before or after it, nor a ':', '.' or '-' joining it to one
 * ("0000:05:00.0: busy" names 0000:05:00.0; "0000:05:00.0.1" names nothing).
 *
 * Returns: true when @msg names one (then @ret holds it), false otherwise.
 */
bool gpuh_error_device(const char *msg, char ret[static GPUH_ERROR_DEVICE_MAX]);

/**
 * gpuh_error_to_json:
 * @msg: the one-line failure; NULL means strerror(-@r)
 * @r: the negative errno of the failure; 0 when it has none (a usage error)
 *
 * Returns: a new object {"error": string, "errno": integer (the positive errno) or null,
 *          "device": string (gpuh_error_device()) or null} (the caller puts it); NULL on ENOMEM.
 */
json_object *gpuh_error_to_json(const char *msg, int r);
