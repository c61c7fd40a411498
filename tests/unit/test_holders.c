/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_holders: gpuh_holders_find() finds a process holding a node whatever name it opened it
 * by (a hard link, a name unlinked since), and not one holding another file. The nodes are
 * regular files in a temporary directory (compared by inode); the holders are children of the
 * test, found in the real /proc.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>

#include "holders.h"
#include "testutil.h"

struct child {
        pid_t pid;
        int release;            /* closing it lets the child exit */
};

/* A child that opens @path (and unlinks it, with @unlink_after), says so, and keeps it open
 * until released. Returns once the file is open: the child writes one byte when it is. */
static struct child spawn_holder(const char *path, bool unlink_after)
{
        int ready[2], hold[2];
        struct child c;
        char b;

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
        c.pid = fork();
        assert_true(c.pid >= 0);
        if (c.pid == 0) {
                int fd = open(path, O_RDONLY | O_CLOEXEC);

                close(ready[0]);
                close(hold[1]);
                if (fd < 0 || (unlink_after && unlink(path) < 0))
                        _exit(1);
                if (write(ready[1], "x", 1) != 1)
                        _exit(1);
                while (read(hold[0], &b, 1) > 0)
                        ;
                _exit(0);
        }
        close(ready[1]);
        close(hold[0]);
        assert_int_equal(read(ready[0], &b, 1), 1);     /* the file is open (and unlinked) */
        close(ready[0]);
        c.release = hold[1];
        return c;
}

static void release_child(struct child *c)
{
        int status;

        close(c->release);
        assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static bool holds(const struct gpuh_holder *h, size_t n, pid_t pid, const char *node)
{
        for (size_t i = 0; i < n; i++)
                if (h[i].pid == pid && h[i].node == node)
                        return true;
        return false;
}

static void test_hard_link(void **state)
{
        char node[PATH_MAX], link_path[PATH_MAX];
        char *nodes[2] = { node, NULL };
        struct gpuh_holder *h = NULL;
        struct child direct, linked;
        size_t n = 0;

        tu_write(tu_dir, "hl/dev/vfio/7", "");
        tu_mkdir(tu_dir, "hl/elsewhere");
        snprintf(node, sizeof(node), "%s/hl/dev/vfio/7", tu_dir);
        snprintf(link_path, sizeof(link_path), "%s/hl/elsewhere/qemu-group", tu_dir);
        assert_int_equal(link(node, link_path), 0);

        direct = spawn_holder(node, false);
        linked = spawn_holder(link_path, false);
        assert_true(gpuh_holders_find("/proc", nodes, &h, &n) >= 0);
        assert_true(holds(h, n, direct.pid, node));
        assert_true(holds(h, n, linked.pid, node));     /* under another name, in another directory */
        free(h);
        release_child(&linked);         /* first: it inherited the write end of direct's pipe */
        release_child(&direct);
}

static void test_unlinked(void **state)
{
        char node[PATH_MAX], gone[PATH_MAX];
        char *nodes[2] = { node, NULL };
        struct gpuh_holder *h = NULL;
        struct child c;
        size_t n = 0;

        tu_write(tu_dir, "ul/dev/vfio/8", "");
        snprintf(node, sizeof(node), "%s/ul/dev/vfio/8", tu_dir);
        snprintf(gone, sizeof(gone), "%s/ul/dev/vfio/8.tmp", tu_dir);
        assert_int_equal(link(node, gone), 0);

        /* its fd link reads ".../8.tmp (deleted)" */
        c = spawn_holder(gone, true);
        assert_int_equal(access(gone, F_OK), -1);
        assert_true(gpuh_holders_find("/proc", nodes, &h, &n) >= 0);
        assert_true(holds(h, n, c.pid, node));
        free(h);
        release_child(&c);
}

static void test_unrelated(void **state)
{
        char node[PATH_MAX], other[PATH_MAX];
        char *nodes[2] = { node, NULL };
        struct gpuh_holder *h = NULL;
        struct child c;
        size_t n = 0;

        tu_write(tu_dir, "ur/dev/vfio/9", "");
        tu_write(tu_dir, "ur/other/9", "");        /* the same last component, another file */
        snprintf(node, sizeof(node), "%s/ur/dev/vfio/9", tu_dir);
        snprintf(other, sizeof(other), "%s/ur/other/9", tu_dir);

        c = spawn_holder(other, false);
        assert_true(gpuh_holders_find("/proc", nodes, &h, &n) >= 0);
        for (size_t i = 0; i < n; i++)
                assert_int_not_equal(h[i].pid, c.pid);
        free(h);
        release_child(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hard_link),
                cmocka_unit_test(test_unlinked),
                cmocka_unit_test(test_unrelated),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests_name("holders", tests, tu_group_setup, tu_group_teardown);
}
