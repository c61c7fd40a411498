/* SPDX-License-Identifier: Apache-2.0 */
/* macro.h: cleanup helpers and small macros shared by all of gpuhooks. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _must_check_ __attribute__((warn_unused_result))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Hand a pointer (or fd) out of a cleanup variable: the variable is left NULL (-EBADF). */
#define TAKE_PTR(p) ({ typeof(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -EBADF; _fd; })

static inline void freep(void *p) { free(*(void **) p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d) { if (*d) closedir(*d); }
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Free a NULL-terminated array of strings. */
static inline void strv_free(char **v)
{
        if (!v) return;
        for (char **p = v; *p; p++) free(*p);
        free(v);
}
static inline void strv_freep(char ***v) { strv_free(*v); }

/*
 * Append @s (taken over; NULL is nothing to add) to the NULL-terminated array *@v, unless an
 * equal string is there already (then @s is freed). Returns 0 or -ENOMEM (@s freed).
 */
static inline int strv_consume(char ***v, char *s)
{
        size_t n = 0;
        char **nv;

        if (!s)
                return 0;
        for (; *v && (*v)[n]; n++)
                if (strcmp((*v)[n], s) == 0) {
                        free(s);
                        return 0;
                }
        nv = (char **) realloc(*v, (n + 2) * sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[n] = s;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

#define streq(a, b) (strcmp((a), (b)) == 0)

/* @s without @prefix, or NULL when it does not start with it. */
static inline const char *startswith(const char *s, const char *prefix)
{
        size_t l = strlen(prefix);

        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}
