/* SPDX-License-Identifier: Apache-2.0 */
/* quarantine.h: devices that did not come back to a known state, kept from every domain. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "pci_addr.h"

/*
 * STATE_DIR/quarantine/DDDD:BB:SS.F.json, one per PCI function that a change left in a state
 * gpuhooks cannot vouch for: a write to it still in flight after its deadline (an unbind that
 * may land at any time), no driver bound after a restore, or config space reading 0xffff (the
 * function fell off the bus). Such a function is not handed out (transformer), not prepared
 * (state-change hook), shown by gpudiscovery and failed by `gpudiscovery --check` until an
 * operator, having looked at it, removes the file (docs/state-change.md, "Quarantine").
 */

#define GPUH_QUARANTINE_DIR "quarantine"
#define GPUH_QUARANTINE_MAX 256                 /* files read; more is an error */
#define GPUH_QUARANTINE_FILE_MAX 4096           /* bytes of one file */

struct gpuh_quarantined {
        struct gpuh_pci_addr addr;
        int64_t since;                          /* seconds since the epoch; 0 unknown */
        char domain[256];                       /* the domain whose change it was, "" unknown */
        char reason[512];                       /* one line */
};

/**
 * gpuh_quarantine_add:
 * @dirfd: STATE_DIR/quarantine (gpuh_state_subdir(), which checks it as the state directory)
 * @a: the function
 * @domain: the domain whose change left it so, or NULL
 * @reason: one line, why
 * @now: seconds since the epoch
 *
 * Writes the file atomically and synced, never through a link (gpuh_statefile_replace()); a
 * function already quarantined keeps its first record (the first cause is the one to look at).
 *
 * Returns: 0; -ENOMEM; -errno of the write.
 */
int gpuh_quarantine_add(int dirfd, const struct gpuh_pci_addr *a, const char *domain, const char *reason, int64_t now);

/**
 * gpuh_quarantine_load:
 * @state_dir: the state directory; NULL or missing: nothing is quarantined
 * @ret, @ret_n: the quarantined functions, sorted by address (free())
 *
 * A file that cannot be read or parsed still quarantines the function its name gives (fail
 * closed), with a reason saying so; a name that is no PCI address is skipped.
 *
 * Returns: 0; -E2BIG (more than GPUH_QUARANTINE_MAX files); -ENOMEM; -errno when the
 *          directory exists but cannot be read (-ENOTDIR or -ELOOP when it is a symbolic
 *          link: it is not followed).
 */
int gpuh_quarantine_load(const char *state_dir, struct gpuh_quarantined **ret, size_t *ret_n);

/**
 * gpuh_quarantine_find:
 * Returns: the entry of @q (@n entries) for function @a, or NULL.
 */
const struct gpuh_quarantined *gpuh_quarantine_find(const struct gpuh_quarantined *q, size_t n,
                                                    const struct gpuh_pci_addr *a);
