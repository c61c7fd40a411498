/* SPDX-License-Identifier: Apache-2.0 */
/* lock.c: flock(2) with a deadline, lock files that may be removed, sorted lock sets. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "clock.h"
#include "lock.h"
#include "macro.h"

static void on_alarm(int sig)
{
        (void) sig;
}

int gpuh_flock_deadline(int fd, int op, int timeout_ms)
{
        struct sigaction sa = { .sa_handler = on_alarm }, old;
        struct itimerval it = { 0 }, off = { 0 };
        int r = 0;

        if (flock(fd, op | LOCK_NB) == 0)
                return 0;
        if (errno != EWOULDBLOCK)
                return -errno;
        if (timeout_ms <= 0)
                return -ETIMEDOUT;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGALRM, &sa, &old) < 0)
                return -errno;
        it.it_value.tv_sec = timeout_ms / 1000;
        it.it_value.tv_usec = (timeout_ms % 1000) * 1000;
        setitimer(ITIMER_REAL, &it, NULL);
        if (flock(fd, op) < 0)
                r = errno == EINTR ? -ETIMEDOUT : -errno;
        setitimer(ITIMER_REAL, &off, NULL);
        sigaction(SIGALRM, &old, NULL);
        return r;
}

int gpuh_lock_take(int dirfd, const char *name, int timeout_ms)
{
        int64_t deadline = gpuh_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

        if (!name || !*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        for (;;) {
                struct stat a, b;
                int64_t left = deadline - gpuh_mono_ms();
                int fd, r;

                fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd < 0)
                        return -errno;
                r = gpuh_flock_deadline(fd, LOCK_EX, left > 0 ? (int) left : 0);
                if (r < 0) {
                        close(fd);
                        return r;
                }
                if (fstat(fd, &a) < 0) {
                        r = -errno;
                        close(fd);
                        return r;
                }
                if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                        return fd;
                /* removed (and perhaps recreated) by its holder meanwhile: take the one there now */
                close(fd);
                if (gpuh_mono_ms() > deadline)
                        return -ETIMEDOUT;
        }
}

void gpuh_lock_drop(int dirfd, const char *name, int fd)
{
        if (fd < 0)
                return;
        (void) unlinkat(dirfd, name, 0);
        close(fd);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

bool gpuh_lockset_has(const struct gpuh_lockset *s, const char *name)
{
        return s->n && bsearch(&name, s->names, s->n, sizeof(char *), cmp_str);
}

int gpuh_lockset_add(struct gpuh_lockset *s, const char *name)
{
        char **nn;
        int *nf;

        if (gpuh_lockset_has(s, name))
                return 0;
        nn = reallocarray(s->names, s->n + 1, sizeof(char *));
        if (!nn)
                return -ENOMEM;
        s->names = nn;
        nf = reallocarray(s->fds, s->n + 1, sizeof(int));
        if (!nf)
                return -ENOMEM;
        s->fds = nf;
        s->names[s->n] = strdup(name);
        if (!s->names[s->n])
                return -ENOMEM;
        s->fds[s->n++] = -1;
        qsort(s->names, s->n, sizeof(char *), cmp_str);
        return 0;
}

int gpuh_lockset_take(struct gpuh_lockset *s, int dirfd, int timeout_ms, const char **ret_busy)
{
        int64_t deadline = gpuh_mono_ms() + timeout_ms;

        for (size_t i = 0; i < s->n; i++) {
                int64_t left = deadline - gpuh_mono_ms();
                int fd;

                if (s->fds[i] >= 0)
                        continue;
                fd = gpuh_lock_take(dirfd, s->names[i], left > 0 ? (int) left : 0);
                if (fd < 0) {
                        if (ret_busy)
                                *ret_busy = s->names[i];
                        for (size_t k = 0; k < i; k++)
                                if (s->fds[k] >= 0) {
                                        close(s->fds[k]);
                                        s->fds[k] = -1;
                                }
                        return fd;
                }
                s->fds[i] = fd;
        }
        return 0;
}

void gpuh_lockset_release(struct gpuh_lockset *s)
{
        for (size_t i = 0; i < s->n; i++) {
                if (s->fds[i] >= 0)
                        close(s->fds[i]);
                free(s->names[i]);
        }
        free(s->names);
        free(s->fds);
        *s = (struct gpuh_lockset) { 0 };
}
