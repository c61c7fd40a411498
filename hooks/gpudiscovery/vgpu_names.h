/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu_names.h: the NVIDIA vendor vGPU type names gpudiscovery has seen, kept so that a VF
 * whose type no creatable list names any more (a full GPU) is still named.
 *
 * STATE_DIR/vgpu-type-names.json, written atomically, one line:
 *   {"version":1,"types":{"1152":"NVIDIA L40S-8Q","1156":"NVIDIA L40S-48Q"}}
 * keys are type ids (decimal, no leading zero, 1 .. 4294967295) in ascending order, values
 * names of 1 .. GPUH_VGPU_NAME_MAX printable ASCII characters; at most GPUH_VGPU_NAMES_MAX
 * entries and GPUH_VGPU_NAMES_MAX_BYTES bytes. Anything else makes the whole file unusable.
 */
#pragma once

#include <stddef.h>

#include "inventory.h"
#include "vendor_vgpu.h"

#define GPUH_VGPU_NAMES_FILE "vgpu-type-names.json"
#define GPUH_VGPU_NAMES_MAX 1024                /* entries */
#define GPUH_VGPU_NAMES_MAX_BYTES (512u << 10)      /* GPUH_VGPU_NAMES_MAX of the longest names fit */
#define GPUH_VGPU_NAME_MAX 127                  /* bytes of a name */

/**
 * gpuh_vgpu_name_ok:
 * @name: a vGPU type name from a creatable_vgpu_types list or the cache
 *
 * Returns: whether @name is 1 .. GPUH_VGPU_NAME_MAX printable ASCII characters (0x20 ..
 *          0x7e), as NVIDIA's names are; only such names are cached.
 */
bool gpuh_vgpu_name_ok(const char *name);

/**
 * gpuh_vgpu_names_parse:
 * @text: the cache file's content (NUL-terminated)
 * @ret: the entries, by id; free with gpuh_vgpu_types_free()
 *
 * Strict: one JSON object, exactly the keys "version" (1) and "types" (an object); every id
 * and name as the file format above says, ids ascending, at most GPUH_VGPU_NAMES_MAX of them;
 * and the text byte for byte what gpuh_vgpu_names_format() writes for them (json-c alone
 * would take single quotes, duplicate keys, ...).
 *
 * Returns: the number of entries; -EBADMSG for anything else; -ENOMEM.
 */
int gpuh_vgpu_names_parse(const char *text, struct gpuh_vgpu_type **ret);

/**
 * gpuh_vgpu_names_format:
 * @t: entries ordered by id, each gpuh_vgpu_name_ok(), at most GPUH_VGPU_NAMES_MAX
 * @n: their number
 * @ret: the file content, one line with a trailing newline (free())
 *
 * Returns: 0; -EINVAL when @t breaks those rules; -ENOMEM.
 */
int gpuh_vgpu_names_format(const struct gpuh_vgpu_type *t, size_t n, char **ret);

/**
 * gpuh_vgpu_names_update:
 * @inv: a scanned inventory; VFs whose set type no list names get it from the cache
 *       (current_type_name points into @inv->known_types then)
 * @state_dir: the state directory; NULL or "" for none. It is not created: without it there
 *             is no cache (tmpfiles.d makes /run/gpuhooks at boot).
 *
 * Reads the cache, names from it what no creatable list on the host names, then adds every
 * id and name the host's lists show and writes it back (only when that changed anything; a
 * temporary file renamed over it). Past GPUH_VGPU_NAMES_MAX entries, those this host did not
 * show are dropped first, highest ids first. A missing, unreadable or damaged cache costs
 * only its names (and is replaced by what the lists show); a failed write costs nothing else.
 * Both are logged at debug level.
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_vgpu_names_update(struct gpuh_inventory *inv, const char *state_dir);
