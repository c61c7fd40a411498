/* SPDX-License-Identifier: Apache-2.0 */
/* change.h: the sysfs writes and read-backs of a device change, made or only listed (dry run). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct gpuh_writer;

/*
 * Every function that changes a device (vfio.c, mdev.c, vendor_vgpu.c, sriov in statechange.c)
 * writes through a change, so that one code path both acts and, with @dry_run, produces the
 * ordered list of steps `--dry-run` prints (docs/state-change.md). A dry run reads sysfs as it
 * is and plans from there; its waits succeed at once.
 */
struct gpuh_change {
        int root_fd;                    /* sysfs root */
        int timeout_ms;                 /* each write, each wait */
        bool dry_run;
        struct json_object *steps;      /* dry run: the steps (a JSON array), else NULL */
        struct gpuh_writer *writer;     /* made at the first write */
};

/**
 * gpuh_change_init:
 * @c: the change
 * @root_fd: sysfs root fd
 * @timeout_ms: deadline of each write and wait
 * @dry_run: list the steps instead of making them
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_change_init(struct gpuh_change *c, int root_fd, int timeout_ms, bool dry_run);

/** gpuh_change_done: ends the writer and frees the steps (take them first). */
void gpuh_change_done(struct gpuh_change *c);

/**
 * gpuh_change_write:
 * @c: the change
 * @rel: the attribute, relative to the root
 * @value: the text (a newline is added)
 *
 * Every write gets the deadline: besides those that wait for a driver (unbind, drivers_probe,
 * mdev create/remove, current_vgpu_type, sriov_numvfs), even driver_override takes the
 * device's lock (drivers/base/driver.c driver_set_override), which a stuck unbind holds.
 *
 * Returns: 0 (always, in a dry run); -errno as gpuh_sysfs_write() or gpuh_writer_write().
 */
int gpuh_change_write(struct gpuh_change *c, const char *rel, const char *value);

/**
 * gpuh_change_wait_link:
 * @c: the change
 * @rel: a link ("bus/pci/devices/0000:05:00.0/driver")
 * @want: the basename of its target to wait for; "" waits for the link to be absent
 * @got, @size: receive the last basename read ("" when absent)
 *
 * Reads the link again, with growing pauses (1 to 64 ms), until it is as wanted or the
 * deadline passes: probing may be asynchronous, and sysfs offers nothing to wait on.
 *
 * Returns: 0; -ETIMEDOUT (@got holds what it is); -errno of the read.
 */
int gpuh_change_wait_link(struct gpuh_change *c, const char *rel, const char *want, char *got, size_t size);

/**
 * gpuh_change_wait_exists:
 * @c, @rel: as gpuh_change_wait_link()
 * @want: wait for @rel to exist (true) or to be gone (false)
 *
 * Returns: 0; -ETIMEDOUT; -errno.
 */
int gpuh_change_wait_exists(struct gpuh_change *c, const char *rel, bool want);

/**
 * gpuh_change_wait_u64:
 * @c, @rel: as gpuh_change_wait_link(), an attribute holding one number
 * @want: the value to wait for
 * @got: receives the last value read
 *
 * Returns: 0; -ETIMEDOUT; -errno of the read.
 */
int gpuh_change_wait_u64(struct gpuh_change *c, const char *rel, uint64_t want, uint64_t *got);

/**
 * gpuh_change_step:
 * @c: the change
 * @step: a JSON object describing a check or a journal entry; taken over
 *
 * A dry run appends it to the steps; otherwise it is dropped.
 */
void gpuh_change_step(struct gpuh_change *c, struct json_object *step);
