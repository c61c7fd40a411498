/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz.h: what the fuzz targets share: a private temporary directory, files written into it,
 * and the input cut into pieces (header-only: each target is one file). */
#pragma once

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* snprintf into an array, aborting rather than truncating a path */
#define fz_printf(buf, ...) do { \
        if ((size_t) snprintf(buf, sizeof(buf), __VA_ARGS__) >= sizeof(buf)) \
                abort(); \
} while (0)

static inline char *fz_dir_buf(void)
{
        static char dir[PATH_MAX];
        return dir;
}

static inline int fz_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static inline void fz_cleanup(void)
{
        if (fz_dir_buf()[0])
                nftw(fz_dir_buf(), fz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The process's own directory, made at the first call (tmpfs when there is one), removed at exit. */
static inline const char *fz_tmpdir(void)
{
        char *dir = fz_dir_buf();

        if (!dir[0]) {
                const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
                snprintf(dir, PATH_MAX, "%s/gpuh-fuzz-XXXXXX", base);
                if (!mkdtemp(dir))
                        abort();
                atexit(fz_cleanup);
        }
        return dir;
}

/* mkdir -p of DIR/REL's parents, then DIR/REL itself when @leaf. */
static inline void fz_mkdirs(const char *dir, const char *rel, bool leaf)
{
        char path[PATH_MAX];

        fz_printf(path, "%s/%s", dir, rel);
        for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                mkdir(path, 0755);
                *p = '/';
        }
        if (leaf)
                mkdir(path, 0755);
}

/* DIR/REL holds exactly @len bytes of @data (parents made as needed). */
static inline void fz_write(const char *dir, const char *rel, const void *data, size_t len)
{
        char path[PATH_MAX];
        int fd;

        fz_mkdirs(dir, rel, false);
        fz_printf(path, "%s/%s", dir, rel);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || (len > 0 && write(fd, data, len) != (ssize_t) len))
                abort();
        close(fd);
}

/* The input as pieces: each call returns the next one, up to a NUL byte or the end, as a
 * NUL-terminated copy (free()), or NULL when nothing is left. */
struct fz_pieces {
        const uint8_t *p, *end;
        bool done;
};

static inline char *fz_next(struct fz_pieces *s, size_t *ret_len)
{
        const uint8_t *nul;
        size_t n;
        char *out;

        if (s->done)
                return NULL;
        nul = memchr(s->p, '\0', (size_t) (s->end - s->p));
        n = nul ? (size_t) (nul - s->p) : (size_t) (s->end - s->p);
        out = malloc(n + 1);
        if (!out)
                abort();
        memcpy(out, s->p, n);
        out[n] = '\0';
        if (ret_len)
                *ret_len = n;
        if (nul)
                s->p = nul + 1;
        else
                s->done = true;
        return out;
}
