/* SPDX-License-Identifier: Apache-2.0 */
/* child.h: the helper processes the hooks start (the sysfs writer, the libvirt query). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/**
 * gpuh_child_fork:
 * @keep, @n_keep: file descriptors the child keeps open (at most 8)
 * @keep_stderr: whether the child keeps the caller's stderr (-v, debug output)
 *
 * fork(2) for a helper that must not outlive the hook nor hold what the hook holds: stdio is
 * flushed first (no buffered output printed twice); in the child, PR_SET_PDEATHSIG makes the
 * kernel SIGKILL it when the hook dies (prctl(2); checked against a parent that died before
 * it was set), stdin and stdout, and stderr unless @keep_stderr, are /dev/null, and every
 * other descriptor but @keep is closed (close_range(2)): a helper stuck in the kernel must
 * keep neither the pipes libvirtd or the agent read the hook's output from nor the hook's
 * lock files. Deadlines are the caller's: it waits for the child's answer with poll(2).
 * Call it from the thread that lives as long as the child is needed: the death signal follows
 * the thread that forked, not the process (prctl(2), PR_SET_PDEATHSIG).
 *
 * Returns: in the parent, the child's pid (> 0); in the child, 0; -errno of fork(2), -E2BIG
 *          for more than 8 @keep.
 */
pid_t gpuh_child_fork(const int *keep, size_t n_keep, bool keep_stderr);

/**
 * gpuh_child_collect:
 * @pid: a child from gpuh_child_fork()
 * @fd: the read end of the pipe it answers on (closed here)
 * @deadline_ms: CLOCK_MONOTONIC ms (clock.h) by which the child must have closed its end
 * @max: most bytes accepted
 * @ret, @ret_len: all it wrote, NUL-terminated (caller frees), also on -ETIMEDOUT (what came)
 * @ret_status: its waitpid(2) status
 *
 * Reads what the child writes until it closes the pipe, polling with the deadline; the child
 * is SIGKILLed when the deadline passes or the answer is too long, and is always reaped.
 *
 * Returns: 0; -ETIMEDOUT; -E2BIG (more than @max); -ENOMEM; -errno of poll/read.
 */
int gpuh_child_collect(pid_t pid, int fd, int64_t deadline_ms, size_t max, char **ret, size_t *ret_len,
                       int *ret_status);
