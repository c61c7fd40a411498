/* SPDX-License-Identifier: Apache-2.0 */
/* occupancy.h: who else holds a PCI function or an mdev, and why. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "pci_addr.h"
#include "quarantine.h"
#include "reserve.h"
#include "vm_usage.h"

/*
 * One answer to "who holds this device, and why", for selection (the transformer), its last
 * conflict check, and prepare: the domains that use a device (libvirt, or its XML files), the
 * live reservations of other domains, the journals of other domains whose reservation is live
 * (a device they changed and have not given back), the quarantine, and the devices already
 * chosen for the asking domain in this run. Processes holding a device's /dev/vfio group are
 * the state-change hook's to look for: they need a scan of /proc. Every input is borrowed.
 */
struct gpuh_occupancy {
        const char *self;                               /* the asking domain: its claims do not count */
        int64_t now;                                    /* seconds since the epoch */
        const struct gpuh_reservation *res;             /* every reservation */
        size_t n_res;
        struct gpuh_journal *const *journals;           /* journals (the asking domain's may be among them) */
        size_t n_journals;
        const struct gpuh_quarantined *quarantined;
        size_t n_quarantined;
        struct gpuh_vm_usage *usage;                    /* domains using devices (sealed), or NULL */
        const struct gpuh_alloc *plan;                  /* chosen for the asking domain so far */
        size_t n_plan;
};

/**
 * gpuh_occupancy_pci:
 * @o: the claims
 * @a: a PCI function
 * @pf: its physical function when @a is an SR-IOV VF, else NULL
 * @why, @size: receive one line: "quarantined since ...: REASON", "reserved for DOMAIN", "in
 *              use by DOMAIN (its journal)"
 *
 * @a is held when it is quarantined, when another domain's claim gives it @a itself (the
 * function, a companion, a VF), a VF or an mdev of @a (a PF whose VFs are in use cannot be
 * passed through: unbinding it destroys them), or @pf whole.
 *
 * Returns: true when held (@why says by what); false when @a is free of gpuhooks' claims.
 */
bool gpuh_occupancy_pci(const struct gpuh_occupancy *o, const struct gpuh_pci_addr *a, const struct gpuh_pci_addr *pf,
                        char *why, size_t size);

/**
 * gpuh_occupancy_mdev:
 * @o, @why, @size: as gpuh_occupancy_pci()
 * @uuid: an mdev
 *
 * Returns: true when another domain's live reservation or journal claims the mdev.
 */
bool gpuh_occupancy_mdev(const struct gpuh_occupancy *o, const char *uuid, char *why, size_t size);

/**
 * gpuh_occupancy_holder_pci:
 * @o: the claims
 * @a: a PCI function
 *
 * Who holds @a itself (selection asks about relatives, a GPU's VFs and mdevs, one by one):
 * a domain other than @o->self that uses it, another domain's live reservation that gives it
 * (the function, as a companion, as a VF), or @o->plan.
 *
 * Returns: the holder's name (@o->self for the plan; pointers into the inputs), or NULL.
 */
const char *gpuh_occupancy_holder_pci(const struct gpuh_occupancy *o, const struct gpuh_pci_addr *a);

/**
 * gpuh_occupancy_holder_mdev:
 * @o: the claims
 * @uuid: an mdev
 *
 * Returns: as gpuh_occupancy_holder_pci(), for the mdev of that UUID.
 */
const char *gpuh_occupancy_holder_mdev(const struct gpuh_occupancy *o, const char *uuid);
