/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.h: the state of every GPU device of a host as an operator asks for it (gpuhooksctl
 * status): each GPU, VF and mdev with what holds it, from the inventory, the reservations, the
 * journals and the quarantine.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "inventory.h"
#include "journal.h"
#include "reserve.h"

enum gpuh_dev_kind {
        GPUH_DEV_GPU,
        GPUH_DEV_VF,
        GPUH_DEV_MDEV,
        GPUH_DEV_SLOT,          /* a vGPU layout's mdev slot not created yet (docs/layouts.md) */
        _GPUH_DEV_KIND_MAX,
};

/* In order of precedence: a device takes the first that applies. */
enum gpuh_dev_state {
        GPUH_DEV_QUARANTINED,   /* a change left it in a state gpuhooks cannot vouch for */
        GPUH_DEV_IN_USE,        /* a domain's XML uses it (libvirt, or its files) */
        GPUH_DEV_RESERVED,      /* a live reservation holds it (until its expiry, or running) */
        GPUH_DEV_JOURNALED,     /* a domain's journal names it, no domain uses it, and its reservation
                                         * (if any) is not live, or is running while the domain does not
                                         * run: a release that did not happen */
        GPUH_DEV_DRIVERLESS,    /* a GPU function with no driver bound */
        GPUH_DEV_SHARED,        /* a PF carrying VFs or mdevs, a VF carrying an mdev */
        GPUH_DEV_BLOCKED,       /* a PF not offered for passthrough for another reason */
        GPUH_DEV_CARVED,        /* an mdev, or a VF with a vendor vGPU type set, no domain uses */
        GPUH_DEV_FREE,
        _GPUH_DEV_STATE_MAX,
};

/**
 * gpuh_dev_kind_to_string / _from_string: "gpu", "vf", "mdev", "slot"; gpuh_dev_state_to_string /
 * _from_string: "quarantined", "in-use", "reserved", "journaled", "driverless", "shared",
 * "blocked", "carved", "free" (the "kind" and "state" of gpuhooksctl status --format json,
 * docs/gpuhooksctl.md); "?" outside the enums; _from_string: -EINVAL.
 */
const char *gpuh_dev_kind_to_string(enum gpuh_dev_kind k);
int gpuh_dev_kind_from_string(const char *s);
const char *gpuh_dev_state_to_string(enum gpuh_dev_state s);
int gpuh_dev_state_from_string(const char *s);

struct gpuh_dev_status {
        enum gpuh_dev_kind kind;
        char id[40];                    /* the PCI address, or the mdev's UUID */
        char gpu[16];                   /* the GPU's address */
        char profile[160];              /* model, vGPU type name, or type id */
        enum gpuh_dev_state state;
        char domain[256];               /* by whom ("" none): user, reservation, journal, quarantine */
        int64_t until;                  /* reserved: its expiry (seconds since the epoch); 0: running
                                         * (no expiry) or another state */
        char detail[512];               /* one line: the reason, blockers, the user's state */
};

/* What status looks at; every input is borrowed. */
struct gpuh_status_input {
        struct gpuh_inventory *inv;                     /* with usage and quarantine set */
        const struct gpuh_reservation *res;             /* every reservation */
        size_t n_res;
        struct gpuh_journal *const *journals;           /* every journal */
        size_t n_journals;
        int64_t now;                                    /* seconds since the epoch */
};

/**
 * gpuh_status_collect:
 * @in: the host
 * @ret, @ret_n: one row per GPU, then its VFs, then its mdevs (inventory order); free()
 *
 * Each device gets the first state of enum gpuh_dev_state that applies, except that a running
 * reservation of a domain the usage knows not to run (a stop whose release never came) gives
 * way to that domain's journal naming the device. A reservation holds a
 * PCI function it gives (gpuh_alloc_holds_pci()), a VF it will create an mdev on or set a
 * vendor type on, and an mdev by UUID; an expired one that is not running holds nothing
 * (gpuh_reservation_live()). A journal names the functions of its driver, vgpu-type and sriov
 * entries, the parents and UUIDs of its mdev entries (journal.h).
 *
 * Layout slots (issue 10) are to be one more kind of row.
 *
 * Returns: the number of rows; -ENOMEM.
 */
int gpuh_status_collect(const struct gpuh_status_input *in, struct gpuh_dev_status **ret, size_t *ret_n);

/**
 * gpuh_status_promised:
 * @in: the host
 * @ret_live: receives shallow copies of @in's live reservations (gpuh_reservation_live()):
 *            free() the array only, never its members
 * @ret: the promises for gpuh_gpu_capacity(), pointing into *@ret_live
 *
 * Returns: 0; -ENOMEM.
 */
struct gpuh_promised;
int gpuh_status_promised(const struct gpuh_status_input *in, struct gpuh_reservation **ret_live, struct gpuh_promised *ret);
