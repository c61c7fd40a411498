/* SPDX-License-Identifier: Apache-2.0 */
/* fileio.h: whole regular files in and out (configuration, libvirt's XML files, caches). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/**
 * gpuh_read_file_at:
 * @dirfd: directory fd for a relative @path, or AT_FDCWD
 * @path: a regular file
 * @max: largest size accepted, in bytes
 * @ret: the content, NUL-terminated (the NUL is not counted), free()
 * @ret_len: its length in bytes
 *
 * Returns: 0; -errno of open/fstat/read (-ENOENT, -EACCES, ...); -EISDIR when @path is not a
 *          regular file; -E2BIG when it is larger than @max (or grows past it while read);
 *          -ENOMEM.
 */
int gpuh_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len);

/**
 * gpuh_read_fd:
 * @fd: a pipe or file to read to its end (stdin of a hook)
 * @max: most bytes wanted; up to @max + 1 are read, so that the caller can tell "too large"
 * @ret: the content, NUL-terminated, free()
 * @ret_len: its length
 *
 * A closed @fd (EBADF: no stdin at all) reads as empty.
 *
 * Returns: 0; -ENOMEM; -errno of read(2).
 */
int gpuh_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/**
 * gpuh_write_all:
 * @fd: an open file
 * @data, @len: what to write
 *
 * write(2) until all of @data is written, again after EINTR and after a short write.
 *
 * Returns: 0; -errno of write(2).
 */
int gpuh_write_all(int fd, const void *data, size_t len);

/**
 * gpuh_write_file_atomic:
 * @dir: directory of the file
 * @name: file name in @dir
 * @data, @len: the new content
 * @mode: permission bits, e.g. 0644
 * @sync: fsync(2) the file before the rename and the directory after it, so that the new
 *        content, not an empty file, is what survives a crash (a journal, a reservation)
 *
 * Writes a temporary file in @dir and renames it over @name, so readers see the old or the
 * new content, never a part (rename(2) is atomic within a file system).
 *
 * Returns: 0; -errno of mkstemp/write/fchmod/fsync/rename (the temporary file is removed).
 */
int gpuh_write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
                           unsigned mode, bool sync);
