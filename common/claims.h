/* SPDX-License-Identifier: Apache-2.0 */
/*
 * claims.h: the devices gpuhooks holds for domains, as the inventory reports them
 * (docs/inventory.md, "Usage"): those of live reservations, and those a domain's journal says
 * it changed and has not given back. CloudStack allocates from the inventory: a device held
 * here must not look free to it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mdev.h"
#include "pci_addr.h"
#include "warn.h"

enum gpuh_claim_kind {
        GPUH_CLAIM_RESERVED,            /* a live reservation (reserve.h) gives it to the domain */
        GPUH_CLAIM_JOURNAL,             /* the domain's journal (journal.h) names a change to it */
        _GPUH_CLAIM_MAX,
};

struct gpuh_claim {
        char *domain;
        enum gpuh_claim_kind kind;
        bool is_mdev;
        struct gpuh_pci_addr addr;              /* a PCI function (the GPU, a companion, a VF) */
        char uuid[GPUH_UUID_STR_LEN + 1];       /* an mdev, lowercase */
};

/** gpuh_claim_kind_to_string: "reserved", "journal" (the inventory's used_by kind); NULL outside. */
const char *gpuh_claim_kind_to_string(enum gpuh_claim_kind k);

/**
 * gpuh_claims_load:
 * @state_dir: the state directory (reserve.h); one that does not exist holds nothing
 * @now: seconds since the epoch: reservations expired by then do not count
 * @ret, @ret_n: the claims, reservations first, in the order of their files; free with
 *               gpuh_claims_free()
 * @w: one warning per part that cannot be read (the reservations, a journal); what can be read
 *     is returned all the same
 *
 * Reads without the host lock: reservations are replaced atomically and journals only
 * appended to (a torn last line is ignored), so each file is read whole or not at all. A live
 * reservation claims each of its devices: a whole GPU with its companions, a VF, an mdev by
 * UUID. A journal claims the functions it moved to another driver or set a vGPU type on, and
 * the mdevs it created; enabling SR-IOV claims nothing (the VFs are what a domain uses).
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_claims_load(const char *state_dir, int64_t now, struct gpuh_claim **ret, size_t *ret_n,
                     struct gpuh_warnings *w);

/** gpuh_claims_free: frees @n claims and the array; accepts NULL. */
void gpuh_claims_free(struct gpuh_claim *c, size_t n);

/**
 * gpuh_claims_find:
 * @c, @n: the claims
 * @a: a PCI function, or NULL to look for @uuid
 * @uuid: an mdev (any case), when @a is NULL
 * @from: where to start (0, then the returned index + 1)
 *
 * Returns: the index of the next claim on that device, or @n when there is none.
 */
size_t gpuh_claims_find(const struct gpuh_claim *c, size_t n, const struct gpuh_pci_addr *a, const char *uuid,
                        size_t from);
