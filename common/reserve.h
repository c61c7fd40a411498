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
 * STATE_DIR/reservations/NAME.json    one per domain, replaced atomically (docs/transformer.md)
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
 * @dir: the state directory, created mode 0700 when missing (reservations/ is created by the
 *       first gpuh_reservation_write())
 * @ret: the handle, freed with gpuh_state_free() (which drops the lock)
 *
 * Returns: 0; -errno of mkdir/open.
 */
int gpuh_state_open(const char *dir, struct gpuh_state **ret);

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
 * Returns: an O_DIRECTORY fd of STATE_DIR/@name (created mode 0700 when missing), which the
 *          state keeps and closes; -errno of mkdir/open.
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
 * so that nothing is handed out that it might hold (the operator removes the file).
 *
 * Returns: 0; -EBADMSG for an unreadable or malformed reservation file; -ENOMEM; -errno when
 *          the directory cannot be listed.
 */
int gpuh_reservations_load(struct gpuh_state *s, struct gpuh_reservation **ret, size_t *ret_n,
                           struct gpuh_warnings *w);

/**
 * gpuh_reservation_load:
 * @s: the state (locked)
 * @domain: the domain name
 * @ret: its reservation, cleared with gpuh_reservation_clear()
 *
 * Returns: 0; -ENOENT when it has none; -EBADMSG when its file is malformed; -ENOMEM; -errno.
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
 * @s: the state (exclusively locked)
 * @r: the reservation; its domain names the file
 *
 * Returns: 0; -errno of the atomic write; -ENOMEM.
 */
int gpuh_reservation_write(struct gpuh_state *s, const struct gpuh_reservation *r);

/**
 * gpuh_reservation_remove:
 * Returns: 0 (also when there was none); -errno of unlink(2).
 */
int gpuh_reservation_remove(struct gpuh_state *s, const char *domain);
