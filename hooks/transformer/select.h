/* SPDX-License-Identifier: Apache-2.0 */
/* select.h: choosing devices for a domain's GPU requests (docs/transformer.md, "Selection"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "alloc.h"
#include "domxml.h"
#include "inventory.h"
#include "request.h"
#include "reserve.h"

struct json_object;

struct gpuh_select_in {
        struct gpuh_inventory *inv;     /* scanned, names filled, usage set */
        const char *domain;             /* this domain: its own usage is not "in use" */
        const char *uuid;               /* this domain's UUID (mdev UUIDs derive from it), may be NULL */
        const struct gpuh_reservation *others;  /* live reservations of other domains */
        size_t n_others;
        struct gpuh_domxml *dom;        /* CloudStack's own hostdevs, when it has GPU ones */
        const struct gpuh_request *requests;    /* else these */
        size_t n_requests;
        int numa_node;                  /* the node the vCPUs are pinned to, -1 none or several */
        bool allow_mixed;
};

/**
 * gpuh_select_cloudstack:
 * @in: input; @in->dom's hostdevs are matched against the inventory
 * @ret, @ret_n: one allocation per GPU-related hostdev (request GPUH_ALLOC_REQUEST_CLOUDSTACK),
 *               with companions; none when the document has no GPU hostdev
 * @reterr: on failure, one line naming the device and the reason (caller frees)
 *
 * A hostdev naming a slot of a vGPU layout not carved yet (@in->inv->layouts, layout.h) becomes
 * what prepare carves: an mdev UUID of a slot an mdev to create (mdev_new) on the slot's parent,
 * a layout VF whose vGPU type is not set a vendor-vgpu allocation of the layout's type
 * (docs/layouts.md).
 *
 * Returns: the number of allocations; -EBUSY (used by another domain or reservation);
 *          -ENODEV (an mdev UUID that does not exist and no slot has, a GPU that cannot be
 *          passed through, a vendor VF without a vGPU type that no layout gives one);
 *          -ENOSPC (a layout slot whose capacity is gone); -ENOMEM.
 */
int gpuh_select_cloudstack(const struct gpuh_select_in *in, struct gpuh_alloc **ret, size_t *ret_n, char **reterr);

/**
 * gpuh_select_requests:
 * @in: input
 * @ret, @ret_n: the allocations, in request order
 * @explain: when not NULL, receives "candidates" and "chosen" arrays (json-c)
 * @reterr: on failure, one line naming what was asked and what is free (caller frees)
 *
 * Deterministic: the same inventory, usage and reservations give the same choice.
 *
 * Returns: 0; -ENOSPC (too few free devices); -EINVAL (mixed modes not allowed, numa=require
 *          without pinned vCPUs, mdev without a domain UUID, an unknown vGPU type); -ENOMEM.
 */
int gpuh_select_requests(const struct gpuh_select_in *in, struct gpuh_alloc **ret, size_t *ret_n,
                         struct json_object *explain, char **reterr);
