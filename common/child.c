/* SPDX-License-Identifier: Apache-2.0 */
/* child.c: one way to start a helper process. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *) a, y = *(const int *) b;

        return (x > y) - (x < y);
}

pid_t gpuh_child_fork(const int *keep, size_t n_keep, bool keep_stderr)
{
        int fds[8 + 1], n = 0, null;
        pid_t parent = getpid(), pid;
        unsigned lo = 0;

        if (n_keep > 8)
                return -E2BIG;
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid != 0)
                return pid < 0 ? -errno : pid;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1);       /* the hook died before the signal was armed */
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                dup2(null, STDIN_FILENO);
                dup2(null, STDOUT_FILENO);
                if (!keep_stderr)
                        dup2(null, STDERR_FILENO);
        }
        /* the three standard descriptors stay (/dev/null or stderr), then @keep */
        for (size_t i = 0; i < n_keep; i++)
                if (keep[i] > STDERR_FILENO)
                        fds[n++] = keep[i];
        qsort(fds, (size_t) n, sizeof(int), cmp_int);
        fds[n] = -1;
        lo = STDERR_FILENO + 1;
        for (int i = 0; i <= n; i++) {
                unsigned hi = fds[i] < 0 ? ~0U : (unsigned) fds[i] - 1;
                if (fds[i] >= 0 && (unsigned) fds[i] < lo)
                        continue;       /* a duplicate */
                if (hi >= lo)
                        close_range(lo, hi, 0);
                if (fds[i] < 0)
                        break;
                lo = (unsigned) fds[i] + 1;
        }
        return 0;
}

int gpuh_child_collect(pid_t pid, int fd, int64_t deadline_ms, size_t max, char **ret, size_t *ret_len,
                       int *ret_status)
{
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int r = 0, status = 0;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = deadline_ms - gpuh_mono_ms();
                ssize_t n;

                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                n = poll(&p, 1, (int) (left > 1000 ? 1000 : left));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        continue;
                if (cap - len < 4097) {
                        size_t ncap = cap * 2 + 16384;
                        char *nb;

                        if (cap > max + 1) {
                                r = -E2BIG;
                                break;
                        }
                        nb = realloc(buf, ncap);
                        if (!nb) {
                                r = -ENOMEM;
                                break;
                        }
                        buf = nb;
                        cap = ncap;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max) {
                        r = -E2BIG;
                        break;
                }
        }
        close(fd);
        if (r < 0)
                kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (buf)
                buf[len] = '\0';
        if (r < 0 && r != -ETIMEDOUT) {
                free(buf);
                buf = NULL;
                len = 0;
        }
        *ret = buf;
        *ret_len = len;
        *ret_status = status;
        return r;
}
