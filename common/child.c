/* SPDX-License-Identifier: Apache-2.0 */
/* child.c: one way to start a helper process. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "child.h"

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
