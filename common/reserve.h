/* SPDX-License-Identifier: Apache-2.0 */
/* reserve.h: the state directory: the host lock and the devices each domain holds. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "warn.h"

#define GPUH_STATE_DIR_DEFAULT "/run/gpuhooks"

/*
 * STATE_DIR/lock                      flock(2)ed for every read-modify-write of reservations
 * STATE_DIR/reservations/NAME.json    one per domain, replaced atomically (docs/transformer.md);
 *                                     NAME is the domain name encoded by gpuh_domname_encode()
 * STATE_DIR/journal/, STATE_DIR/locks/  the state-change hook's (journal.h, lock.h)
 *
 * Everything under STATE_DIR is opened relative to its directory fd, never through a symbolic
 * link (statefile.h).
 */

struct gpuh_state;

struct gpuh_reservation {
        char *domain;                   /* domain name */
        char *uuid;                     /* domain UUID, or NULL */
        char *state;                    /* "reserved" (by a transform) or "running" (state-change hook) */
        int64_t created;                /* seconds since the epoch */
        int64_t expires;                /* seconds since the epoch; ignored while running */
        char *signature;                /* what was asked, to reuse only for the same requests */
        struct gpuh_alloc *devices;
        size_t n_devices;
};

/**
 * gpuh_state_open:
 * @dir: the state directory
 * @write: reservations, journals or locks will be written: @dir is created (mode 0700) when
 *         missing, and it and the subdirectories journal/, locks/ and reservations/ there are
 *         refused when group- or world-writable or not owned by the effective uid; the lock
 *         file is created. A missing subdirectory is made (0700) when first needed. Otherwise
 *         (--explain, --dry-run) nothing is created, and what is missing reads as empty.
 * @ret: the handle, freed with gpuh_state_free() (which drops the lock)
 * @reterr: on failure one line naming the directory and the cause (statefile.h)
 *
 * A subdirectory that is a symbolic link is refused, never followed; @dir itself may be one.
 *
 * Returns: 0; -EPERM (unsafe mode or owner); -ELOOP (a subdirectory is a link); -errno of
 *          mkdir/open.
 */
int gpuh_state_open(const char *dir, bool write, struct gpuh_state **ret, char **reterr);

/** gpuh_state_free: accepts NULL; returns NULL. */
struct gpuh_state *gpuh_state_free(struct gpuh_state *s);
static inline void gpuh_state_freep(struct gpuh_state **s) { gpuh_state_free(*s); }

/** gpuh_state_dir: the directory, as given to gpuh_state_open(). */
const char *gpuh_state_dir(const struct gpuh_state *s);

/**
 * gpuh_state_subdir:
 * @s: the state
 * @name: "journal", "locks", "reservations", "quarantine"
 *
 * Returns: the O_DIRECTORY fd of STATE_DIR/@name (a writer's made, mode 0700, when missing;
 *          never through a link), which the state keeps and closes; -ENOENT when a reader's
 *          state has none; -EINVAL for another @name; -errno as gpuh_statedir_open().
 */
int gpuh_state_subdir(struct gpuh_state *s, const char *name);

/** gpuh_state_unlock: drops the host lock. */
void gpuh_state_unlock(struct gpuh_state *s);

/**
 * gpuh_state_lock:
 * @s: the state
 * @exclusive: true to change reservations, false to read them
 * @timeout_ms: how long to wait for another holder
 *
 * flock(2) on STATE_DIR/lock, waiting with a deadline (an interval timer interrupts the wait).
 * A reader's state without a lock file (nobody wrote there yet) has nothing to lock: 0.
 *
 * Returns: 0; -ETIMEDOUT; other -errno of flock(2).
 */
int gpuh_state_lock(struct gpuh_state *s, bool exclusive, int timeout_ms);

/**
 * gpuh_reservations_load:
 * @s: the state (locked)
 * @ret, @ret_n: every reservation; free with gpuh_reservations_free()
 * @w: receives a warning naming a file that does not parse
 *
 * A reservation that cannot be read holds devices nobody knows: the whole load fails then,
 * so that nothing is handed out that it might hold (the operator removes the file). So does
 * any entry of the directory that is not a reservation gpuhooks wrote: a name that does not
 * decode (gpuh_domname_decode()), or a file holding another domain than its name encodes.
 * Only the temporary files of an atomic write are passed over (gpuh_statefile_is_temp()).
 *
 * Returns: 0; -EBADMSG for an unreadable, malformed or foreign entry; -ENOMEM; -errno when the
 *          directory cannot be listed.
 */
int gpuh_reservations_load(struct gpuh_state *s, struct gpuh_reservation **ret, size_t *ret_n,
                           struct gpuh_warnings *w);

/**
 * gpuh_reservation_load:
 * @s: the state (locked)
 * @domain: the domain name
 * @ret: its reservation, cleared with gpuh_reservation_clear()
 *
 * Returns: 0; -ENOENT when it has none; -EBADMSG when its file is malformed or holds another
 *          domain (two long names sharing a hashed file name); -EINVAL (bad name); -ENOMEM;
 *          -errno.
 */
int gpuh_reservation_load(struct gpuh_state *s, const char *domain, struct gpuh_reservation *ret);

/**
 * gpuh_reservation_holds:
 * Returns: true when @r holds device @a: the same mdev UUID, or for PCI kinds a function @a
 *          gives the domain (gpuh_alloc_holds_pci()).
 */
bool gpuh_reservation_holds(const struct gpuh_reservation *r, const struct gpuh_alloc *a);

/** gpuh_reservations_free: frees @n reservations and the array. */
void gpuh_reservations_free(struct gpuh_reservation *r, size_t n);

/** gpuh_reservation_clear: frees what one reservation holds. */
void gpuh_reservation_clear(struct gpuh_reservation *r);

/**
 * gpuh_reservation_live:
 * Returns: whether @r still holds its devices at time @now: running, or not yet expired.
 */
bool gpuh_reservation_live(const struct gpuh_reservation *r, int64_t now);

/**
 * gpuh_reservation_write:
 * @s: the state (exclusively locked, opened for writing)
 * @r: the reservation; its domain names the file (gpuh_domname_encode())
 *
 * Returns: 0; -EEXIST when the file holds another domain's reservation (it is left alone);
 *          -EINVAL (bad name); -EROFS (@s opened read-only); -E2BIG (larger than the 1 MiB a
 *          reservation is read up to: never written); -errno of the atomic write; -ENOMEM.
 */
int gpuh_reservation_write(struct gpuh_state *s, const struct gpuh_reservation *r);

/**
 * gpuh_reservation_remove:
 * Removes @domain's reservation file; one holding another domain's reservation is left.
 *
 * Returns: 0 (also when there was none); -EINVAL (bad name); -EROFS (@s opened read-only);
 *          -errno of unlinkat(2).
 */
int gpuh_reservation_remove(struct gpuh_state *s, const char *domain);
