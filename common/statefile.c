/* SPDX-License-Identifier: Apache-2.0 */
/* statefile.c: state directories and files, opened relative to directory fds, never through links. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "domname.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "statefile.h"

int gpuh_statedir_open(int dirfd, const char *name, const char *path, unsigned flags, char **reterr)
{
        bool nofollow = flags & GPUH_STATEDIR_NOFOLLOW;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        if ((flags & GPUH_STATEDIR_CREATE) && mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                return gpuh_error(reterr, r, "cannot create state directory '%s': %s", path, strerror(-r));
        }
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
        if (fd < 0) {
                r = -errno;
                /* a link: ELOOP, or ENOTDIR where O_DIRECTORY is looked at first */
                if (nofollow && (r == -ELOOP || r == -ENOTDIR) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISLNK(st.st_mode))
                        return gpuh_error(reterr, -ELOOP, "state directory '%s' is a symbolic link: refused, it is "
                                          "never followed", path);
                return r == -ENOENT && !(flags & GPUH_STATEDIR_CREATE) ? r
                       : gpuh_error(reterr, r, "cannot open state directory '%s': %s", path, strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                return gpuh_error(reterr, r, "cannot stat state directory '%s': %s", path, strerror(-r));
        }
        if ((flags & GPUH_STATEDIR_CHECK) && (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))))
                return gpuh_error(reterr, -EPERM, "state directory '%s' has mode %04o and owner uid %u: refused, it "
                                  "must belong to uid %u and be writable by it alone", path,
                                  (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid, (unsigned) geteuid());
        return TAKE_FD(fd);
}

int gpuh_statefile_read(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len;
        int r;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if ((uint64_t) st.st_size > max)
                return -E2BIG;
        r = gpuh_read_fd(fd, max, &buf, &len);
        if (r < 0)
                return r;
        if (len > max)
                return -E2BIG;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static const char tmpchars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int gpuh_statefile_replace(int dirfd, const char *name, const void *data, size_t len)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *p = data;
        size_t tl;
        int r = 0;

        if (asprintf(&tmp, ".%s.XXXXXX", name) < 0)
                return -ENOMEM;
        tl = strlen(tmp);
        for (int tries = 0; fd < 0 && tries < 100; tries++) {
                unsigned char rnd[6];

                if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
                        return negative_errno();
                for (size_t i = 0; i < 6; i++)
                        tmp[tl - 6 + i] = tmpchars[rnd[i] % (sizeof(tmpchars) - 1)];
                fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd < 0 && errno != EEXIST)
                        return -errno;
        }
        if (fd < 0)
                return -EEXIST;
        r = gpuh_write_all(fd, p, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0) {
                unlinkat(dirfd, tmp, 0);
                return r;
        }
        return fsync(dirfd) < 0 ? -errno : 0;
}

bool gpuh_statefile_is_temp(const char *fname, const char *suffix)
{
        size_t len = strlen(fname), sl = strlen(suffix);
        char stem[GPUH_DOMNAME_ENC_SIZE];

        if (fname[0] != '.' || len < 1 + 1 + sl + 7 || fname[len - 7] != '.')
                return false;
        for (size_t i = len - 6; i < len; i++)
                if (!strchr(tmpchars, fname[i]))
                        return false;
        if (strncmp(fname + len - 7 - sl, suffix, sl) != 0 || len - 7 - sl - 1 > GPUH_DOMNAME_ENC_MAX)
                return false;
        memcpy(stem, fname + 1, len - 7 - sl - 1);
        stem[len - 7 - sl - 1] = '\0';
        return gpuh_domname_is_stem(stem);
}
