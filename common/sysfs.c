/* SPDX-License-Identifier: Apache-2.0 */
/* sysfs.c: attribute reads and writes, links and listings under a root directory fd. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <ctype.h>
#include <dirent.h>

#include "child.h"
#include "clock.h"
#include "sysfs.h"

int gpuh_sysfs_open(const char *root, struct gpuh_sysfs **ret)
{
        _cleanup_close_ int fd = -EBADF;
        struct gpuh_sysfs *s;

        if (!root || !*root)
                root = "/sys";
        fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->root = strdup(root);
        if (!s->root) {
                free(s);
                return -ENOMEM;
        }
        s->root_fd = TAKE_FD(fd);
        *ret = s;
        return 0;
}

struct gpuh_sysfs *gpuh_sysfs_free(struct gpuh_sysfs *s)
{
        if (!s)
                return NULL;
        if (s->root_fd >= 0)
                close(s->root_fd);
        free(s->root);
        free(s);
        return NULL;
}

/* Refuse absolute paths and ".." components: every path stays below its directory fd. */
static bool rel_ok(const char *rel)
{
        const char *p = rel;

        if (!rel || rel[0] == '/')
                return false;
        while (*p) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t) (slash - p) : strlen(p);
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return false;
                if (!slash)
                        break;
                p = slash + 1;
        }
        return true;
}

static const char *rel_or_dot(const char *rel)
{
        return (!rel || !*rel) ? "." : rel;
}

int gpuh_sysfs_open_dir(int dirfd, const char *rel)
{
        int fd;

        if (!rel_ok(rel_or_dot(rel)))
                return -EINVAL;
        fd = openat(dirfd, rel_or_dot(rel), O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int gpuh_sysfs_read_bin(int dirfd, const char *rel, void *buf, size_t size)
{
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        if (!rel_ok(rel))
                return -EINVAL;
        fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size);
        if (n < 0)
                return -errno;
        return (int) n;
}

int gpuh_sysfs_read(int dirfd, const char *rel, char *buf, size_t size)
{
        int n;

        if (size < 2)
                return -EINVAL;
        n = gpuh_sysfs_read_bin(dirfd, rel, buf, size - 1);
        if (n < 0)
                return n;
        if ((size_t) n >= size - 1)
                return -E2BIG;
        buf[n] = '\0';
        if (memchr(buf, '\0', (size_t) n))
                return -EBADMSG;
        if (n > 0 && buf[n - 1] == '\n')
                buf[--n] = '\0';
        return n;
}

static const char *skip_space(const char *p)
{
        while (*p == ' ' || *p == '\t' || *p == '\n')
                p++;
        return p;
}

/* One unsigned number, decimal or 0x-prefixed hex, with white space around at most. */
static int parse_unsigned(const char *p, unsigned long long *ret)
{
        unsigned long long v;
        char *end;

        p = skip_space(p);
        if (!(*p >= '0' && *p <= '9'))
                return -EBADMSG;
        errno = 0;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
                /* strtoull(16) would take a second "0x" too: "0x0x1f" is not a number */
                if (!isxdigit((unsigned char) p[2]) || (p[2] == '0' && (p[3] == 'x' || p[3] == 'X')))
                        return -EBADMSG;
                v = strtoull(p + 2, &end, 16);
        } else
                v = strtoull(p, &end, 10);
        if (errno || *skip_space(end))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int gpuh_sysfs_read_u64(int dirfd, const char *rel, uint64_t *ret)
{
        unsigned long long v;
        char buf[64];
        int r;

        r = gpuh_sysfs_read(dirfd, rel, buf, sizeof(buf));
        if (r < 0)
                return r;
        r = parse_unsigned(buf, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int gpuh_sysfs_read_int(int dirfd, const char *rel, int *ret)
{
        unsigned long long v;
        const char *p;
        char buf[64];
        bool neg;
        int r;

        r = gpuh_sysfs_read(dirfd, rel, buf, sizeof(buf));
        if (r < 0)
                return r;
        p = skip_space(buf);
        neg = *p == '-';
        if (neg && !(p[1] >= '0' && p[1] <= '9'))
                return -EBADMSG;
        r = parse_unsigned(p + neg, &v);
        if (r < 0 || (p[neg] == '0' && (p[neg + 1] == 'x' || p[neg + 1] == 'X')))
                return -EBADMSG;        /* decimal only */
        if (v > (neg ? (unsigned long long) INT_MAX + 1 : (unsigned long long) INT_MAX))
                return -EBADMSG;
        *ret = neg ? (int) -(long long) v : (int) v;
        return 0;
}

int gpuh_sysfs_readlink(int dirfd, const char *rel, char *buf, size_t size)
{
        ssize_t n;

        if (!rel_ok(rel) || size < 2)
                return -EINVAL;
        n = readlinkat(dirfd, rel, buf, size);
        if (n < 0)
                return -errno;
        if ((size_t) n >= size)
                return -E2BIG;
        buf[n] = '\0';
        return (int) n;
}

int gpuh_sysfs_link_basename(int dirfd, const char *rel, char *buf, size_t size)
{
        char target[PATH_MAX];
        const char *base;
        size_t len;
        int r;

        r = gpuh_sysfs_readlink(dirfd, rel, target, sizeof(target));
        if (r < 0)
                return r;
        while (r > 0 && target[r - 1] == '/')
                target[--r] = '\0';
        base = strrchr(target, '/');
        base = base ? base + 1 : target;
        len = strlen(base);
        if (len == 0 || streq(base, "..") || streq(base, "."))
                return -EBADMSG;
        if (len >= size)
                return -E2BIG;
        memcpy(buf, base, len + 1);
        return (int) len;
}

static int cmp_names(const void *a, const void *b)
{
        return strverscmp(*(char *const *) a, *(char *const *) b);
}

int gpuh_sysfs_list(int dirfd, const char *rel, char ***ret)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n = 0, cap = 0;
        char buf[16384];

        if (!rel_ok(rel_or_dot(rel)))
                return -EINVAL;
        fd = openat(dirfd, rel_or_dot(rel), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        cap = 1;
        /* getdents64(2) directly: readdir(3) would add an fstat and an fcntl per directory. */
        for (;;) {
                ssize_t len = getdents64(fd, buf, sizeof(buf));

                if (len < 0)
                        return -errno;
                if (len == 0)
                        break;
                for (ssize_t off = 0; off < len;) {
                        struct dirent64 *de = (struct dirent64 *) (buf + off);

                        off += de->d_reclen;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (n + 1 >= cap) {
                                size_t ncap = cap * 2 + 8;
                                char **nn = reallocarray(names, ncap, sizeof(char *));
                                if (!nn)
                                        return -ENOMEM;
                                names = nn;
                                cap = ncap;
                        }
                        names[n] = strdup(de->d_name);
                        if (!names[n])
                                return -ENOMEM;
                        names[++n] = NULL;
                }
        }
        qsort(names, n, sizeof(char *), cmp_names);
        *ret = TAKE_PTR(names);
        return (int) n;
}

int gpuh_sysfs_exists(int dirfd, const char *rel)
{
        if (!rel_ok(rel))
                return -EINVAL;
        if (faccessat(dirfd, rel, F_OK, 0) == 0)
                return 1;
        return (errno == ENOENT || errno == ENOTDIR) ? 0 : -errno;
}

int gpuh_sysfs_write(int dirfd, const char *rel, const char *value)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *line = NULL;
        size_t len;
        ssize_t n;

        if (!rel_ok(rel) || !value)
                return -EINVAL;
        len = strlen(value);
        line = malloc(len + 2);
        if (!line)
                return -ENOMEM;
        memcpy(line, value, len);
        line[len++] = '\n';
        line[len] = '\0';
        /* O_TRUNC as the shell's "echo >": harmless on sysfs, and plain test trees stay exact;
         * never O_CREAT: a missing attribute fails as on the kernel */
        fd = openat(dirfd, rel, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = write(fd, line, len);
        if (n < 0)
                return -errno;
        if ((size_t) n != len)
                return -EIO;
        return 0;
}

/*
 * The writer: a child process that makes the writes which can block in the kernel, so that the
 * caller can give up at a deadline. One child serves many writes (a fork per write would cost
 * more than the writes); a child that misses a deadline is killed and abandoned, and the next
 * write starts a new one. The child keeps only the root fd and its socket: a child stuck in the
 * kernel must hold neither the caller's stdout/stderr (libvirtd reads a hook's output until
 * EOF) nor its lock files.
 */
#define WRITER_MAX_LATE 16

struct gpuh_writer {
        int dirfd;
        int sock;               /* SOCK_SEQPACKET to the child; -1 when there is none */
        pid_t pid;
        /* children killed at a deadline and not yet gone: each may still be inside its write,
         * which the kernel finishes whatever happens to the writer (kernfs_fop_write_iter runs
         * the attribute's store() to its end; a task in D state dies only after it returns) */
        pid_t late[WRITER_MAX_LATE];
        size_t n_late;
        bool late_lost;         /* more than WRITER_MAX_LATE: some cannot be waited for */
};

#define WRITER_MAX_MSG 8192

static _Noreturn void writer_child(int dirfd, int sock)
{
        char msg[WRITER_MAX_MSG + 1];

        for (;;) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int))];
                } ctl;
                struct iovec iov = { .iov_base = msg, .iov_len = WRITER_MAX_MSG };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                                     .msg_controllen = sizeof(ctl.buf) };
                struct cmsghdr *cm;
                int at = dirfd, passed = -1, res;
                ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
                size_t rlen;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        _exit(0);
                for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                                memcpy(&passed, CMSG_DATA(cm), sizeof(int));
                if (passed >= 0)
                        at = passed;    /* a directory under the root the caller opened */
                msg[n] = '\0';
                rlen = strnlen(msg, (size_t) n);
                /* "REL\0VALUE" */
                res = rlen < (size_t) n ? gpuh_sysfs_write(at, msg, msg + rlen + 1) : -EINVAL;
                if (passed >= 0)
                        close(passed);
                if (send(sock, &res, sizeof(res), MSG_NOSIGNAL) != (ssize_t) sizeof(res))
                        _exit(1);
        }
}

int gpuh_writer_new(int dirfd, struct gpuh_writer **ret)
{
        struct gpuh_writer *w = calloc(1, sizeof(*w));

        if (!w)
                return -ENOMEM;
        w->dirfd = dirfd;
        w->sock = -1;
        w->pid = -1;
        *ret = w;
        return 0;
}

static void writer_abandon(struct gpuh_writer *w)
{
        int status;

        if (w->sock >= 0)
                close(w->sock);
        if (w->pid > 0) {
                kill(w->pid, SIGKILL);
                /* reaped if it goes at once; one stuck in the kernel is waited for by
                 * gpuh_writer_settle(), or left to init */
                if (waitpid(w->pid, &status, WNOHANG) == 0) {
                        if (w->n_late < WRITER_MAX_LATE)
                                w->late[w->n_late++] = w->pid;
                        else
                                w->late_lost = true;
                }
        }
        w->sock = -1;
        w->pid = -1;
}

/* Reap the late writers that are gone; returns how many are left. */
static size_t writer_reap_late(struct gpuh_writer *w)
{
        size_t k = 0;

        for (size_t i = 0; i < w->n_late; i++) {
                int status;
                pid_t p = waitpid(w->late[i], &status, WNOHANG);

                if (p == 0 || (p < 0 && errno == EINTR))
                        w->late[k++] = w->late[i];
        }
        w->n_late = k;
        return k;
}

int gpuh_writer_settle(struct gpuh_writer *w, int timeout_ms)
{
        int64_t deadline = gpuh_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
        int pause = 1;

        if (!w)
                return 0;
        while (writer_reap_late(w) > 0) {
                int64_t left = deadline - gpuh_mono_ms();

                if (left <= 0)
                        return -ETIMEDOUT;
                poll(NULL, 0, (int) (left < pause ? left : pause));
                pause = pause < 64 ? pause * 2 : 64;
        }
        return w->late_lost ? -ETIMEDOUT : 0;
}

bool gpuh_writer_unsettled(const struct gpuh_writer *w)
{
        return w && (w->n_late > 0 || w->late_lost);
}

static int writer_start(struct gpuh_writer *w)
{
        int sv[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* nothing but the root and the socket: a child stuck in the kernel holds neither the
         * hook's stdout/stderr (libvirtd reads them to EOF) nor its lock files */
        pid = gpuh_child_fork((const int[]) { w->dirfd, sv[1] }, 2, false);
        if (pid < 0) {
                close(sv[0]);
                close(sv[1]);
                return pid;
        }
        if (pid == 0)
                writer_child(w->dirfd, sv[1]);
        close(sv[1]);
        w->sock = sv[0];
        w->pid = pid;
        return 0;
}

int gpuh_writer_write(struct gpuh_writer *w, const char *rel, const char *value, int timeout_ms)
{
        return gpuh_writer_write_at(w, -1, rel, value, timeout_ms);
}

int gpuh_writer_write_at(struct gpuh_writer *w, int dirfd, const char *rel, const char *value, int timeout_ms)
{
        int64_t deadline = gpuh_mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
        char msg[WRITER_MAX_MSG];
        size_t rl, vl;
        int r;

        if (!rel_ok(rel) || !value)
                return -EINVAL;
        rl = strlen(rel);
        vl = strlen(value);
        if (rl + 1 + vl > sizeof(msg))
                return -E2BIG;
        memcpy(msg, rel, rl + 1);
        memcpy(msg + rl + 1, value, vl);
        if (w->sock < 0 && (r = writer_start(w)) < 0)
                return r;
        {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int))];
                } ctl = { 0 };
                struct iovec iov = { .iov_base = msg, .iov_len = rl + 1 + vl };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

                if (dirfd >= 0 && dirfd != w->dirfd) {
                        struct cmsghdr *cm;
                        mh.msg_control = ctl.buf;
                        mh.msg_controllen = sizeof(ctl.buf);
                        cm = CMSG_FIRSTHDR(&mh);
                        cm->cmsg_level = SOL_SOCKET;
                        cm->cmsg_type = SCM_RIGHTS;
                        cm->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(cm), &dirfd, sizeof(int));
                }
                if (sendmsg(w->sock, &mh, MSG_NOSIGNAL) < 0) {
                        r = -errno;
                        writer_abandon(w);
                        return r;
                }
        }
        for (;;) {
                struct pollfd p = { .fd = w->sock, .events = POLLIN };
                int64_t left = deadline - gpuh_mono_ms();
                int k, res;
                ssize_t n;

                if (left <= 0)
                        break;
                k = poll(&p, 1, (int) (left > 1000 ? 1000 : left));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        writer_abandon(w);
                        return r;
                }
                if (k == 0)
                        continue;
                n = recv(w->sock, &res, sizeof(res), 0);
                if (n == (ssize_t) sizeof(res))
                        return res;
                writer_abandon(w);      /* died under us */
                return -EIO;
        }
        writer_abandon(w);
        return -ETIMEDOUT;
}

struct gpuh_writer *gpuh_writer_free(struct gpuh_writer *w)
{
        int status;

        if (!w)
                return NULL;
        if (w->sock >= 0) {
                close(w->sock);         /* the child reads EOF and exits */
                while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
                        ;
        }
        free(w);
        return NULL;
}

int gpuh_sysfs_write_deadline(int dirfd, const char *rel, const char *value, int timeout_ms)
{
        struct gpuh_writer *w;
        int r;

        if (!rel_ok(rel) || !value)
                return -EINVAL;
        r = gpuh_writer_new(dirfd, &w);
        if (r < 0)
                return r;
        r = gpuh_writer_write(w, rel, value, timeout_ms);
        gpuh_writer_free(w);
        return r;
}
