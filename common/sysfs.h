/* SPDX-License-Identifier: Apache-2.0 */
/* sysfs.h: every sysfs access of gpuhooks, under one configurable root directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/*
 * A root is a directory file descriptor; every path below is relative to it and is opened with
 * openat(2), so tests point the tools at a fake tree (--sysfs-root, GPUHOOKS_SYSFS_ROOT) and
 * production uses /sys. Relative paths must not start with '/' nor contain a ".." component.
 *
 * Attributes are read with a single read(2), as the kernel produces them in one show() call
 * (Documentation/filesystems/sysfs.rst: "read(2) ... returns the whole buffer"): a second read
 * could see a newer value.
 */

struct gpuh_sysfs {
        int root_fd;            /* O_PATH|O_DIRECTORY fd of the root */
        char *root;             /* the root as given, for messages */
};

/**
 * gpuh_sysfs_open:
 * @root: directory to use as sysfs, e.g. "/sys" or a fixture tree; NULL means "/sys"
 * @ret: the new handle, freed with gpuh_sysfs_free()
 *
 * Returns: 0; -ENOMEM; -errno of open(2) (-ENOENT, -ENOTDIR, -EACCES) when @root is unusable.
 */
int gpuh_sysfs_open(const char *root, struct gpuh_sysfs **ret);

/** gpuh_sysfs_free: accepts NULL; returns NULL. */
struct gpuh_sysfs *gpuh_sysfs_free(struct gpuh_sysfs *s);
static inline void gpuh_sysfs_freep(struct gpuh_sysfs **s) { gpuh_sysfs_free(*s); }
#define _cleanup_sysfs_ _cleanup_(gpuh_sysfs_freep)

/**
 * gpuh_sysfs_open_dir:
 * @dirfd: a root fd or a directory fd from an earlier call
 * @rel: relative path of a directory, e.g. "bus/pci/devices/0000:08:00.0"
 *
 * Returns: an O_PATH|O_DIRECTORY fd (>= 0) to close(2); -ENOENT, -ENOTDIR, -EINVAL (bad @rel),
 *          other -errno of openat(2).
 */
int gpuh_sysfs_open_dir(int dirfd, const char *rel);

/**
 * gpuh_sysfs_read:
 * @dirfd, @rel: the attribute
 * @buf: receives the content, NUL-terminated, one trailing newline removed
 * @size: size of @buf in bytes; content must be at most @size - 2 bytes (one byte detects
 *        truncation)
 *
 * Returns: the length of the content in @buf (>= 0); -ENOENT when absent; -E2BIG when longer
 *          than @buf allows; -EBADMSG when it holds a NUL byte; -EISDIR; other -errno of
 *          openat(2)/read(2) (sysfs show() errors such as -EIO, -ENODEV pass through).
 */
int gpuh_sysfs_read(int dirfd, const char *rel, char *buf, size_t size);

/**
 * gpuh_sysfs_read_bin:
 * @dirfd, @rel: a binary attribute, e.g. "config"
 * @buf, @size: receives at most @size bytes, not terminated
 *
 * Returns: bytes read (>= 0) in one read(2); -errno as gpuh_sysfs_read().
 */
int gpuh_sysfs_read_bin(int dirfd, const char *rel, void *buf, size_t size);

/**
 * gpuh_sysfs_read_u64:
 * @dirfd, @rel: the attribute, holding one unsigned number: decimal, or hex with "0x"
 *               ("0x10de", "16"), surrounded by at most white space
 * @ret: the value, written only on success
 *
 * Returns: 0; -EBADMSG when the content is not exactly one such number; -errno as
 *          gpuh_sysfs_read().
 */
int gpuh_sysfs_read_u64(int dirfd, const char *rel, uint64_t *ret);

/**
 * gpuh_sysfs_read_int:
 * @dirfd, @rel: the attribute, holding one signed decimal number ("-1" for numa_node)
 * @ret: the value, written only on success
 *
 * Returns: 0; -EBADMSG when not exactly one decimal int; -errno as gpuh_sysfs_read().
 */
int gpuh_sysfs_read_int(int dirfd, const char *rel, int *ret);

/**
 * gpuh_sysfs_readlink:
 * @dirfd, @rel: a symbolic link, e.g. "bus/pci/devices/0000:08:00.0"
 * @buf, @size: receive the link's target, NUL-terminated
 *
 * Returns: the target's length; -ENOENT; -EINVAL when not a link; -E2BIG when longer than @buf.
 */
int gpuh_sysfs_readlink(int dirfd, const char *rel, char *buf, size_t size);

/**
 * gpuh_sysfs_link_basename:
 * @dirfd, @rel: a link such as "driver", "iommu_group", "physfn", "mdev_type"
 * @buf, @size: receive the last path component of its target ("vfio-pci", "38")
 *
 * Returns: the basename's length; -errno as gpuh_sysfs_readlink(); -EBADMSG for an empty target.
 */
int gpuh_sysfs_link_basename(int dirfd, const char *rel, char *buf, size_t size);

/**
 * gpuh_sysfs_list:
 * @dirfd, @rel: a directory ("" or "." for @dirfd itself)
 * @ret: NULL-terminated array of entry names without "." and "..", sorted in natural order
 *       (strverscmp: "virtfn2" before "virtfn10"); free with strv_free()
 *
 * Returns: the number of names; -ENOENT when the directory is absent; -ENOMEM; -errno.
 */
int gpuh_sysfs_list(int dirfd, const char *rel, char ***ret);

/**
 * gpuh_sysfs_exists:
 * Returns: 1 when @rel exists (links are followed), 0 when not, -errno on other errors.
 */
int gpuh_sysfs_exists(int dirfd, const char *rel);

/**
 * gpuh_sysfs_write:
 * @dirfd, @rel: an existing attribute (never created: a missing one gives -ENOENT as on the
 *               kernel)
 * @value: the text to write; a newline is appended in the same write(2)
 *
 * Returns: 0; -errno of openat(2)/write(2) (-EBUSY, -ENODEV, -EINVAL from the kernel); -EIO for
 *          a short write.
 */
int gpuh_sysfs_write(int dirfd, const char *rel, const char *value);

/**
 * gpuh_sysfs_write_deadline:
 * @dirfd, @rel, @value: as gpuh_sysfs_write()
 * @timeout_ms: how long the write may take
 *
 * Some sysfs writes block in the kernel for as long as something holds the device: unbinding a
 * GPU a process has open, removing an mdev the NVIDIA driver still tears down, setting a vGPU
 * type. The write runs in a child process; when it has not finished by the deadline the child
 * is killed (a task stuck in the kernel may only go when the kernel lets it) and the caller is
 * free to report and fail instead of holding libvirtd.
 *
 * Returns: 0; -ETIMEDOUT; -errno of the write (as gpuh_sysfs_write()); -errno of fork/pipe.
 */
int gpuh_sysfs_write_deadline(int dirfd, const char *rel, const char *value, int timeout_ms);

struct gpuh_writer;

/**
 * gpuh_writer_new:
 * @dirfd: the root fd the writes are relative to (kept open by the caller)
 * @ret: the writer, freed with gpuh_writer_free()
 *
 * A writer makes gpuh_sysfs_write()s in a child process, started at the first write and reused,
 * so each can be given a deadline (see gpuh_sysfs_write_deadline()).
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_writer_new(int dirfd, struct gpuh_writer **ret);

/**
 * gpuh_writer_write:
 * @w: the writer
 * @rel, @value: as gpuh_sysfs_write() (together at most 8 KiB)
 * @timeout_ms: how long the write may take
 *
 * Returns: as gpuh_sysfs_write(); -ETIMEDOUT (the child is killed and a new one serves the next
 *          write); -E2BIG; -errno of socketpair/fork.
 */
int gpuh_writer_write(struct gpuh_writer *w, const char *rel, const char *value, int timeout_ms);

/**
 * gpuh_writer_write_at:
 * @w: the writer
 * @dirfd: a directory under the writer's root (an O_PATH fd of a device's directory, which
 *         saves the path walk), passed to the child with SCM_RIGHTS; -1 for the root
 * @rel, @value, @timeout_ms: as gpuh_writer_write(), @rel relative to @dirfd
 *
 * Returns: as gpuh_writer_write().
 */
int gpuh_writer_write_at(struct gpuh_writer *w, int dirfd, const char *rel, const char *value, int timeout_ms);

/**
 * gpuh_writer_settle:
 * @w: the writer (NULL: nothing to wait for)
 * @timeout_ms: how long to wait
 *
 * A write that missed its deadline is not over: the kernel runs the attribute's store() to its
 * end whatever happens to the writing task (fs/kernfs/file.c kernfs_fop_write_iter; a task
 * blocked in device_lock() or in a driver's remove() cannot die before it returns), so an
 * unbind may still land seconds later. The writer keeps the children it killed at a deadline;
 * this waits until every one of them has exited, that is until each late write has finished,
 * landed or failed. Only then does a read of the device's state tell its final state.
 *
 * Returns: 0 (no late write is in flight); -ETIMEDOUT (one still is: the device's state may
 *          still change).
 */
int gpuh_writer_settle(struct gpuh_writer *w, int timeout_ms);

/** gpuh_writer_unsettled: whether a write that missed its deadline may still be in flight. */
bool gpuh_writer_unsettled(const struct gpuh_writer *w);

/** gpuh_writer_free: ends the child; accepts NULL; returns NULL. */
struct gpuh_writer *gpuh_writer_free(struct gpuh_writer *w);
