/* SPDX-License-Identifier: Apache-2.0 */
/* alloc_codec.h: the one codec of an allocation's devices, in their three written forms. */
#pragma once

#include <libxml/tree.h>

#include "alloc.h"

struct json_object;

/*
 * A device (struct gpuh_alloc) is written in three places, each by this codec alone, from one
 * table of the fields each kind carries (alloc_codec.c):
 *
 *   the allocation record   <gpuhooks:device kind="mdev" uuid=… parent=… mdev-type=… new="yes"
 *                           request="0"/> in the domain document (docs/transformer.md, "What is
 *                           written"); companions are <gpuhooks:companion address=…/> children
 *   a reservation           {"kind": "mdev", "parent": …, "uuid": …, "mdev_type": …, "new": true,
 *                           "display": false, "request": 0, "companions": []} (docs/transformer.md,
 *                           "Reservations")
 *   --explain               {"kind": "mdev", "parent": …, "uuid": …, "mdev_type": …} (docs/
 *                           transformer.md, "--explain"); written only
 *
 * Both readers take every field they know whatever the kind, and refuse the same malformed
 * values: a kind that is none of gpuh_alloc_kind_to_string()'s, an address, parent or companion
 * that is no PCI address (gpuh_pci_addr_parse()), a UUID not in the 8-4-4-4-12 form (kept
 * lowercase), an mdev type no type directory may be named (gpuh_mdev_type_name_ok()), a vGPU type
 * outside 1..0xffffff (NVIDIA's type IDs; the record's must be decimal digits, the reservation's
 * a JSON integer), a GPU instance (a MIG-backed layout slot's: docs/layouts.md) whose profile is
 * not a number below 2^32 (the record's decimal, the reservation's a JSON integer) or whose
 * placement is not "START:SIZE" with SIZE > 0, or one of the two without the other. Companions
 * past GPUH_ALLOC_MAX_COMPANIONS are passed over.
 */

/* The element of the record that holds one device, in the record's namespace. */
#define GPUH_ALLOC_RECORD_DEVICE "device"

/**
 * gpuh_alloc_to_record:
 * @doc: the domain document (libxml2)
 * @ns: the record's namespace (GPUH_DOMXML_NS, prefix "gpuhooks"), also the companions'
 * @a: the device
 * @managed_by_libvirt: the record's `managed` of a PCI kind is "yes" when this is set and the
 *                      device is no vendor vGPU VF (those stay on nvidia: never managed)
 * @ret: a new, unlinked <gpuhooks:device> element with its companions
 *
 * Attributes, in this order: PCI `kind address managed request`; VF `kind address parent managed
 * request`; vendor vGPU `kind address parent managed vgpu-type [gi-profile gi-placement] request`;
 * mdev `kind uuid parent mdev-type new [gi-profile gi-placement] [display="on"] request`.
 * `request` is the index, or "cloudstack"; the GPU instance's fields (NVML's GPU-instance
 * profile id, and START:SIZE in memory slices) only for a MIG-backed slot (@a->gi).
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_alloc_to_record(xmlDoc *doc, xmlNs *ns, const struct gpuh_alloc *a, bool managed_by_libvirt,
                         xmlNode **ret);

/**
 * gpuh_alloc_from_record:
 * @dev: a <gpuhooks:device> element of an allocation record; its <gpuhooks:companion> children
 *       are those in its own namespace
 * @ret: the device
 * @reterr: on failure one line, "gpuhooks:allocation: bad KIND-OR-FIELD" ("bad device kind",
 *          "bad address", "bad parent", "bad uuid", "bad mdev-type", "bad vgpu-type", "bad
 *          GPU-instance profile", "bad GPU-instance placement", "bad companion address")
 *
 * `new="yes"` and `display="on"` are true, anything else false; `request` is "cloudstack" (also
 * when absent) or read as by atoi(3); `managed` is not read (the hostdev's, not the device's).
 *
 * Returns: 0; -EBADMSG for a malformed value (above).
 */
int gpuh_alloc_from_record(const xmlNode *dev, struct gpuh_alloc *ret, char **reterr);

/**
 * gpuh_alloc_to_json:
 * @a: the device
 * @ret: a new JSON object (json-c; json_object_put() it): PCI `kind address request companions`;
 *       VF `kind address parent request companions`; vendor vGPU `kind address parent vgpu_type
 *       [gi_profile gi_placement] request companions`; mdev `kind parent uuid mdev_type new
 *       [gi_profile gi_placement] display request companions`. `request` is left out for
 *       CloudStack's own hostdevs; `companions` is always an array; `gi_profile` (a number) and
 *       `gi_placement` ("START:SIZE") only for a MIG-backed slot.
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_alloc_to_json(const struct gpuh_alloc *a, struct json_object **ret);

/**
 * gpuh_alloc_from_json:
 * @o: a device of a reservation's "devices"
 * @ret: the device
 * @reterr: on failure one line, "reservation device: bad KIND-OR-FIELD" (as the record's, with the
 *          JSON names: "bad mdev_type", "bad vgpu_type"); NULL drops it
 *
 * String fields of another JSON type are taken as absent (a kind never); `new` and `display` are
 * read as json_object_get_boolean() reads them; `request` is an integer or absent (CloudStack's).
 *
 * Returns: 0; -EBADMSG for a malformed value or @o not an object.
 */
int gpuh_alloc_from_json(struct json_object *o, struct gpuh_alloc *ret, char **reterr);

/**
 * gpuh_alloc_explain:
 * @a: a device
 * @o: a JSON object (json-c) that receives "kind" and "address" (PCI kinds) or "kind", "parent",
 *     "uuid" and "mdev_type" (mdev), and for a MIG-backed slot "gi_profile" and "gi_placement",
 *     as --explain prints them
 *
 * Returns: 0; -ENOMEM (@o may then hold some of the fields).
 */
int gpuh_alloc_explain(const struct gpuh_alloc *a, struct json_object *o);
