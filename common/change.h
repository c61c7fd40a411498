/* SPDX-License-Identifier: Apache-2.0 */
/* change.h: the sysfs writes and read-backs of a device change, made or only listed (dry run). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvml.h"
#include "pci_addr.h"

struct json_object;
struct gpuh_writer;

/*
 * Every function that changes a device (hooks/state-change: vfio.c and its SR-IOV code; mdev.c, vendor_vgpu.c)
 * writes through a change, so that one code path both acts and, with @dry_run, produces the
 * ordered list of steps `--dry-run` prints (docs/state-change.md). A dry run reads sysfs as it
 * is and plans from there; its waits succeed at once.
 */
struct gpuh_change_dir {
        struct gpuh_pci_addr addr;
        int fd;
};

struct gpuh_change {
        int root_fd;                    /* sysfs root */
        int timeout_ms;                 /* each write, each wait */
        bool dry_run;
        struct json_object *steps;      /* dry run: the steps (a JSON array), else NULL */
        struct gpuh_writer *writer;     /* made at the first write */
        int bus_fd;                     /* bus/pci, -1 until asked for */
        int devices_fd;                 /* bus/pci/devices, -1 until asked for */
        struct gpuh_change_dir *dirs;   /* functions' directories, opened once (a path walk
                                         * through bus/pci/devices and its link each time would
                                         * cost more than the accesses) */
        size_t n_dirs;
        /* writes that missed their deadline and may still land (gpuh_writer_settle()) */
        char late[8][96];               /* their devices, as journal keys: "pci-BDF", "mdev-UUID" */
        size_t n_late;
        bool late_unknown;              /* one whose device could not be told, or more than 8 */
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
 * gpuh_change_devfd:
 * @c: the change
 * @a: a PCI function
 *
 * Returns: an O_PATH fd of its directory (bus/pci/devices/BDF, followed), kept by the change
 *          until gpuh_change_forget() or gpuh_change_done(); -ENOENT when there is no such
 *          function; -errno of openat(2).
 */
int gpuh_change_devfd(struct gpuh_change *c, const struct gpuh_pci_addr *a);

/** gpuh_change_busfd: an O_PATH fd of bus/pci, kept by the change; -errno. */
int gpuh_change_busfd(struct gpuh_change *c);

/** gpuh_change_forget: closes the directories kept (functions may have come or gone: SR-IOV). */
void gpuh_change_forget(struct gpuh_change *c);

/*
 * In the functions below @dirfd is the root fd, the bus fd or a function's fd from this change
 * (which also names the path in a dry run's steps), and @rel is relative to it.
 */

/**
 * gpuh_change_write:
 * @c: the change
 * @dirfd, @rel: the attribute
 * @value: the text (a newline is added)
 *
 * Every write gets the deadline: besides those that wait for a driver (unbind, drivers_probe,
 * mdev create/remove, current_vgpu_type, sriov_numvfs), even driver_override takes the
 * device's lock (drivers/base/driver.c driver_set_override), which a stuck unbind holds.
 *
 * Returns: 0 (always, in a dry run); -errno as gpuh_sysfs_write() or gpuh_writer_write().
 */
int gpuh_change_write(struct gpuh_change *c, int dirfd, const char *rel, const char *value);

/**
 * gpuh_change_late:
 * @c: the change
 * @key: a device, as a journal key ("pci-DDDD:BB:SS.F", "mdev-UUID")
 *
 * Returns: whether a write to @key's device missed its deadline in this change and has not been
 *          seen to finish (gpuh_change_settle()): its state may still change under the caller.
 */
bool gpuh_change_late(const struct gpuh_change *c, const char *key);

/**
 * gpuh_change_settle:
 * @c: the change
 * @timeout_ms: how long to wait
 *
 * Waits until every write of this change that missed its deadline has finished in the kernel
 * (gpuh_writer_settle()); then the late writes are forgotten: what sysfs shows now is final.
 *
 * Returns: 0 (nothing late, or all finished); -ETIMEDOUT (gpuh_change_late() still answers).
 */
int gpuh_change_settle(struct gpuh_change *c, int timeout_ms);

/**
 * gpuh_change_wait_link:
 * @c: the change
 * @dirfd, @rel: a link ("driver" of a function)
 * @want: the basename of its target to wait for; "" waits for the link to be absent
 * @got, @size: receive the last basename read ("" when absent)
 *
 * Reads the link again, with growing pauses (1 to 64 ms), until it is as wanted or the
 * deadline passes: probing may be asynchronous, and sysfs offers nothing to wait on.
 *
 * Returns: 0; -ETIMEDOUT (@got holds what it is); -errno of the read.
 */
int gpuh_change_wait_link(struct gpuh_change *c, int dirfd, const char *rel, const char *want, char *got,
                          size_t size);

/**
 * gpuh_change_wait_exists:
 * @c, @dirfd, @rel: as gpuh_change_wait_link()
 * @want: wait for @rel to exist (true) or to be gone (false)
 *
 * Returns: 0; -ETIMEDOUT; -errno.
 */
int gpuh_change_wait_exists(struct gpuh_change *c, int dirfd, const char *rel, bool want);

/**
 * gpuh_change_wait_u64:
 * @c, @dirfd, @rel: as gpuh_change_wait_link(), an attribute holding one number
 * @want: the value to wait for
 * @got: receives the last value read
 *
 * Returns: 0; -ETIMEDOUT; -errno of the read.
 */
int gpuh_change_wait_u64(struct gpuh_change *c, int dirfd, const char *rel, uint64_t want, uint64_t *got);

/**
 * gpuh_change_step:
 * @c: the change
 * @step: a JSON object describing a check or a journal entry; taken over
 *
 * A dry run appends it to the steps; otherwise it is dropped.
 */
void gpuh_change_step(struct gpuh_change *c, struct json_object *step);

/**
 * gpuh_change_path:
 * @c, @dirfd, @rel: as above
 * @buf, @size: receive the path relative to the root ("bus/pci/devices/0000:05:00.0/driver")
 *
 * Returns: @buf.
 */
char *gpuh_change_path(const struct gpuh_change *c, int dirfd, const char *rel, char *buf, size_t size);

/**
 * gpuh_change_nvml:
 * @c: the change
 * @lib: NVIDIA's management library (NULL: GPUH_NVML_LIB_DEFAULT)
 * @gpu: the GPU (a PF on the nvidia driver)
 * @op, @arg0, @arg1, @arg2: the change, as gpuh_nvml_change()
 * @ret: as gpuh_nvml_change() (0 in a dry run); may be NULL
 * @reterr: on failure, one line (caller frees)
 *
 * A device change made through NVML rather than sysfs (MIG mode, GPU instances: nvml.h), so
 * that it, too, is listed by a dry run ({"step": "nvml", "op": ..., "device": ..., "args": [...]})
 * instead of being made. The call has its own deadline (GPUH_NVML_TIMEOUT_MS); its child is
 * reaped before this returns, so a change cut at the deadline is over (made or not) by then:
 * what NVML answers afterwards is final.
 *
 * Returns: 0 (always, in a dry run); as gpuh_nvml_change().
 */
int gpuh_change_nvml(struct gpuh_change *c, const char *lib, const struct gpuh_pci_addr *gpu, enum gpuh_nvml_op op,
                     unsigned arg0, unsigned arg1, unsigned arg2, unsigned *ret, char **reterr);
