/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inventory_json_internal.h: what the files building the inventory document share
 * (inventory_json.h is its API).
 *
 *   inventory_json.c            the document: the agent's GPU objects, built by a pool of
 *                               threads, and the host's gpuhooks object
 *   inventory_json_instances.c  a GPU's vgpu_instances and vf_instances
 *   inventory_json_ext.c        a GPU's gpuhooks object
 *   inventory_json_users.c      used_by_vm and used_by
 *
 * Field names and shapes: docs/inventory.md; those the agent parses follow CloudStack's
 * gpudiscovery.sh. ij_: the prefix of what these files share.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "inventory.h"
#include "layout.h"
#include "macro.h"

/* Every json-c constructor can fail only for memory; one flag collects that.
 * json-c values are refcounted and never changed once built, so equal small integers (mdev
 * availability: hundreds of 0s and 1s on a large host) share one object. */
#define SHARED_INTS 64

struct builder {
        bool oom;
        json_object *ints[SHARED_INTS];
};

/* @o, a failed constructor's NULL noted. */
static inline json_object *chk(struct builder *b, json_object *o)
{
        if (!o)
                b->oom = true;
        return o;
}

/* @obj[@key] = @val, which it owns; @val NULL after a failure is not added (JSON null else). */
static inline void add(struct builder *b, json_object *obj, const char *key, json_object *val)
{
        if (!obj || (!val && b->oom)) {
                json_object_put(val);
                return;
        }
        if (json_object_object_add(obj, key, val) < 0) {
                json_object_put(val);
                b->oom = true;
        }
}

/* Append @val, which it owns, to @arr; a NULL @val is a failure. */
static inline void push(struct builder *b, json_object *arr, json_object *val)
{
        if (!arr || !val) {
                json_object_put(val);
                if (!val)
                        b->oom = true;
                return;
        }
        if (json_object_array_add(arr, val) < 0) {
                json_object_put(val);
                b->oom = true;
        }
}

/* A string, NULL (JSON null) for NULL. */
static inline json_object *str(struct builder *b, const char *s)
{
        return s ? chk(b, json_object_new_string(s)) : NULL;
}

/* A formatted string of at most 63 bytes. */
static inline json_object *strf(struct builder *b, const char *fmt, ...) _printf_(2, 3);
static inline json_object *strf(struct builder *b, const char *fmt, ...)
{
        char buf[64];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        return chk(b, json_object_new_string(buf));
}

/* @v, shared when small; NULL (JSON null) when negative: unknown. */
static inline json_object *num_or_null(struct builder *b, int64_t v)
{
        if (v < 0)
                return NULL;
        if (v >= SHARED_INTS)
                return chk(b, json_object_new_int64(v));
        if (!b->ints[v])
                b->ints[v] = chk(b, json_object_new_int64(v));
        return b->ints[v] ? json_object_get(b->ints[v]) : NULL;
}

/* Another reference to a shared value (NULL stays JSON null). */
static inline json_object *ref(json_object *o)
{
        return o ? json_object_get(o) : NULL;
}

/* A PCI id as "10de", NULL (JSON null) when negative. */
static inline json_object *id_or_null(struct builder *b, int v)
{
        return v < 0 ? NULL : strf(b, "%04x", (unsigned) v);
}

/* {"domain": "0x0000", "bus": "0x26", "slot": "0x00", "function": "0x0"}, as libvirt writes it. */
static inline json_object *libvirt_address(struct builder *b, const struct gpuh_pci_addr *a)
{
        json_object *o = chk(b, json_object_new_object());

        add(b, o, "domain", strf(b, "0x%04x", (unsigned) a->domain));
        add(b, o, "bus", strf(b, "0x%02x", a->bus));
        add(b, o, "slot", strf(b, "0x%02x", a->slot));
        add(b, o, "function", strf(b, "0x%x", a->func));
        return o;
}

/* The agent's max_instances, video_ram, max_heads, max_resolution_x/_y of @p (NULL: nulls). */
static inline void vgpu_numbers(struct builder *b, json_object *o, const struct gpuh_vgpu_params *p)
{
        add(b, o, "max_instances", num_or_null(b, p ? p->max_instances : -1));
        add(b, o, "video_ram", num_or_null(b, p ? p->video_ram_mib : -1));
        add(b, o, "max_heads", num_or_null(b, p ? p->max_heads : -1));
        add(b, o, "max_resolution_x", num_or_null(b, p ? p->max_res_x : -1));
        add(b, o, "max_resolution_y", num_or_null(b, p ? p->max_res_y : -1));
}


/* The domains using a PCI function (@uuid NULL) or an mdev: a stack buffer, or the heap
 * for a device that hundreds of defined domains name. */
struct users {
        const struct gpuh_vm *small[32];
        const struct gpuh_vm **v;
        size_t n;
};

/* inventory_json_users.c: the domains using PCI function @a (@uuid NULL) or mdev @uuid; their
 * JSON list "used_by", and in *@ret_first "used_by_vm" (frees what @us holds). */
void ij_users_lookup(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_pci_addr *a, const char *uuid,
                     struct users *out);
json_object *ij_users_json(struct builder *b, const struct gpuh_inventory *inv, struct users *us,
                           const struct gpuh_pci_addr *a, const char *uuid, json_object **ret_first);

/* Values every VF of one GPU repeats, built once. */
struct vf_shared {
        const char *vendor_id_src, *device_name_src, *driver_src;
        uint16_t device_id;
        json_object *vendor_id, *device_id_o, *device, *driver;
};

/* inventory_json_instances.c: an entry of "vgpu_instances": mdev @v, or layout slot @s not
 * created yet; an entry of "vf_instances" (@sh: what the GPU's VFs share, cleared after). */
json_object *ij_vgpu_instance(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_vgpu_instance *v);
json_object *ij_vgpu_on_demand(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_gpu *g,
                               const struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *s);
json_object *ij_vf_instance(struct builder *b, struct gpuh_inventory *inv, const struct gpuh_vf *vf,
                            struct vf_shared *sh);
void ij_vf_shared_clear(struct vf_shared *sh);

/* inventory_json_ext.c: GPU @g's "gpuhooks" object, its "used_by" list @used in it. */
json_object *ij_gpu_ext(struct builder *b, const struct gpuh_inventory *inv, struct gpuh_gpu *g, json_object *used);
