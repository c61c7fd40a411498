/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statefile.h: the directories and files of the state directory, always relative to directory
 * fds and never through a symbolic link: whoever can replace journal/ by a link must not make
 * the hooks write where it points.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum {
        GPUH_STATEDIR_CREATE = 1 << 0,          /* made (mode 0700) when missing */
        GPUH_STATEDIR_CHECK = 1 << 1,           /* it will be written: refused when it is group- or
                                                 * world-writable or not owned by the effective uid
                                                 * (another user could replace what is written) */
        GPUH_STATEDIR_NOFOLLOW = 1 << 2,        /* refused when it is a symbolic link (the
                                                 * subdirectories; the state directory itself may
                                                 * be a link an administrator made) */
};

/**
 * gpuh_statedir_open:
 * @dirfd: the parent directory, or AT_FDCWD
 * @name: the directory: one component under @dirfd (a path with AT_FDCWD)
 * @path: how to name it in messages
 * @flags: GPUH_STATEDIR_*
 * @reterr: on failure one line naming @path and the cause (its mode and owner when refused for
 *          them); not for -ENOENT without GPUH_STATEDIR_CREATE
 *
 * Returns: an O_DIRECTORY fd (the caller closes it); -ENOENT when missing (without
 *          GPUH_STATEDIR_CREATE); -ELOOP for a symbolic link (GPUH_STATEDIR_NOFOLLOW); -ENOTDIR;
 *          -EPERM for an unsafe mode or owner (GPUH_STATEDIR_CHECK); -errno of
 *          mkdirat/openat/fstat.
 */
int gpuh_statedir_open(int dirfd, const char *name, const char *path, unsigned flags, char **reterr);

/**
 * gpuh_statefile_read:
 * @dirfd, @name: a regular file in a state directory; a symbolic link is not followed (-ELOOP)
 * @max, @ret, @ret_len: as gpuh_read_file_at()
 *
 * Returns: 0; -ENOENT; -ELOOP; -EISDIR when not a regular file; -E2BIG over @max; -ENOMEM; -errno.
 */
int gpuh_statefile_read(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len);

/**
 * gpuh_statefile_replace:
 * @dirfd, @name: the file in a state directory
 * @data, @len: its new content
 *
 * Writes ".NAME.XXXXXX" (created exclusively, never through a link, mode 0600), fsync(2)s it,
 * renames it over @name and fsyncs the directory: readers see the old or the new content, and
 * the new one survives a crash.
 *
 * Returns: 0; -errno of openat/write/fsync/renameat (the temporary file is removed).
 */
int gpuh_statefile_replace(int dirfd, const char *name, const void *data, size_t len);

/**
 * gpuh_statefile_is_temp:
 * @fname: a directory entry
 * @suffix: the suffix of the files of the directory, e.g. ".journal"
 *
 * Returns: true when @fname is a temporary file of gpuh_statefile_replace() for one of them
 *          (".STEM" @suffix ".XXXXXX", STEM an encoded domain name): not an entry of its own.
 */
bool gpuh_statefile_is_temp(const char *fname, const char *suffix);
