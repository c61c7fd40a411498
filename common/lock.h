/* SPDX-License-Identifier: Apache-2.0 */
/* lock.h: flock(2) locks with deadlines: the host lock, per-domain and per-device lock files. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/**
 * gpuh_flock_deadline:
 * @fd: an open file
 * @op: LOCK_EX or LOCK_SH
 * @timeout_ms: how long to wait for another holder; 0 tries once
 *
 * Waits in flock(2) itself; an interval timer's SIGALRM (installed without SA_RESTART for the
 * wait, the previous action restored) ends the wait at the deadline. For single-threaded
 * callers: the timer is process-wide.
 *
 * Returns: 0; -ETIMEDOUT; other -errno of flock(2).
 */
int gpuh_flock_deadline(int fd, int op, int timeout_ms);

/**
 * gpuh_lock_take:
 * @dirfd: the lock directory (STATE_DIR/locks)
 * @name: the lock's file name, e.g. "pci-0000:05:00.0"; no '/'
 * @timeout_ms: as gpuh_flock_deadline()
 *
 * Opens (creating) @name and takes an exclusive flock. As a holder may remove the file
 * (gpuh_lock_drop()), the lock only counts when the file still is the one at @name after the
 * lock is taken; otherwise it is taken again on the new file (systemd's and kmod's pattern).
 *
 * Returns: the locked fd (>= 0), closed to unlock; -ETIMEDOUT; -EINVAL (bad @name); -errno of
 *          openat/flock/fstat.
 */
int gpuh_lock_take(int dirfd, const char *name, int timeout_ms);

/**
 * gpuh_lock_drop:
 * @dirfd, @name: as given to gpuh_lock_take()
 * @fd: the locked fd it returned; closed
 *
 * Removes the lock file while still holding it, then unlocks: for locks whose name will not
 * come back (a domain's, after its release).
 */
void gpuh_lock_drop(int dirfd, const char *name, int fd);

/* A set of locks taken together, in sorted order of name (so two takers never wait for each
 * other in a cycle). */
struct gpuh_lockset {
        char **names;           /* sorted, unique */
        int *fds;               /* -1 while not held */
        size_t n;
};

/** gpuh_lockset_add: adds @name (duplicates are ignored). Returns 0, -ENOMEM. */
int gpuh_lockset_add(struct gpuh_lockset *s, const char *name);

/** gpuh_lockset_has: whether @name is in the set. */
bool gpuh_lockset_has(const struct gpuh_lockset *s, const char *name);

/**
 * gpuh_lockset_take:
 * @s: the set
 * @dirfd: the lock directory
 * @timeout_ms: for the whole set
 * @ret_busy: on -ETIMEDOUT, the name that could not be taken (points into @s)
 *
 * Takes every lock in sorted order; on failure releases those taken.
 *
 * Returns: 0; -errno as gpuh_lock_take().
 */
int gpuh_lockset_take(struct gpuh_lockset *s, int dirfd, int timeout_ms, const char **ret_busy);

/** gpuh_lockset_release: unlocks all and frees the set (reusable, empty, afterwards). */
void gpuh_lockset_release(struct gpuh_lockset *s);
