/* SPDX-License-Identifier: Apache-2.0 */
/* testutil.h: temporary trees for unit tests (header-only, each test binary is one file). */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

static inline char *tu_mkdtemp(void)
{
        char tmpl[] = "/tmp/gpuh-test-XXXXXX";
        char *d = mkdtemp(tmpl);
        return d ? strdup(d) : NULL;
}

/* mkdir -p of the parent directories of DIR/REL. */
static inline void tu_mkparents(const char *dir, const char *rel)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                mkdir(path, 0755);
                *p = '/';
        }
}

static inline void tu_write(const char *dir, const char *rel, const char *content)
{
        char path[PATH_MAX];
        FILE *f;
        tu_mkparents(dir, rel);
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        f = fopen(path, "w");
        if (!f)
                abort();
        fputs(content, f);
        fclose(f);
}

static inline void tu_symlink(const char *dir, const char *rel, const char *target)
{
        char path[PATH_MAX];
        tu_mkparents(dir, rel);
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        if (symlink(target, path) < 0)
                abort();
}

static inline void tu_mkdir(const char *dir, const char *rel)
{
        char path[PATH_MAX];
        tu_mkparents(dir, rel);
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        mkdir(path, 0755);
}

static int tu_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static inline void tu_rmtree(const char *dir)
{
        if (dir && !getenv("GPUH_TEST_KEEP"))
                nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* One temporary directory per test group: tu_dir, made by tu_group_setup. */
static char *tu_dir;

static int _unused_ tu_group_setup(void **state)
{
        tu_dir = tu_mkdtemp();
        return tu_dir ? 0 : -1;
}

static int _unused_ tu_group_teardown(void **state)
{
        tu_rmtree(tu_dir);
        free(tu_dir);
        tu_dir = NULL;
        return 0;
}
