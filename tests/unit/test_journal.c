/* SPDX-License-Identifier: Apache-2.0 */
/* test_journal: the write-ahead journal (crash tails, malformed lines), lock files and lock
 * sets, and finding the processes that hold a device node. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "domname.h"
#include "holders.h"
#include "journal.h"
#include "lock.h"
#include "testutil.h"

static char jdir[PATH_MAX - 256];
static int jfd = -1;                    /* jdir: the journal functions take the directory's fd */

static int setup(void **state)
{
        if (tu_group_setup(state) < 0)
                return -1;
        snprintf(jdir, sizeof(jdir), "%s/journal", tu_dir);
        if (mkdir(jdir, 0700) < 0)
                return -1;
        jfd = open(jdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return jfd < 0 ? -1 : 0;
}

static char *slurp(const char *name)
{
        static char buf[8192];
        char path[PATH_MAX + 256];
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", jdir, name);
        f = fopen(path, "r");
        if (!f)
                return NULL;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static void spit(const char *name, const char *content)
{
        tu_write(jdir, name, content);
}

static struct gpuh_jentry driver_entry(const char *bdf, const char *drv)
{
        struct gpuh_jentry e = { .op = GPUH_JOP_DRIVER };

        assert_int_equal(gpuh_pci_addr_parse(bdf, &e.dev), 0);
        snprintf(e.driver, sizeof(e.driver), "%s", drv);
        snprintf(e.to, sizeof(e.to), "vfio-pci");
        return e;
}

static void test_append_load(void **state)
{
        struct gpuh_journal *j, *k;
        struct gpuh_jentry e = driver_entry("0000:05:00.0", "nvidia"), m = { .op = GPUH_JOP_MDEV },
                           v = { .op = GPUH_JOP_VGPU, .old = 0, .to_n = 1148 };
        char key[96];

        assert_int_equal(gpuh_journal_new("i-2-154-VM", "9d3f0a6e-0000-4000-8000-000000000001", &j), 0);
        assert_int_equal(gpuh_journal_append(jfd, j, &e), 0);
        gpuh_pci_addr_parse("0000:08:00.4", &m.dev);
        snprintf(m.uuid, sizeof(m.uuid), "c728e022-f16f-434b-ad2c-9665ee634d3d");
        snprintf(m.mdev_type, sizeof(m.mdev_type), "nvidia-746");
        assert_int_equal(gpuh_journal_append(jfd, j, &m), 0);
        gpuh_pci_addr_parse("0000:af:00.4", &v.dev);
        assert_int_equal(gpuh_journal_append(jfd, j, &v), 0);
        assert_int_equal(j->n, 3);
        assert_int_equal(j->e[2].seq, 3);
        /* the file: header, then one line per change, in order */
        assert_non_null(strstr(slurp("i-2-154-VM.journal"),
                "{\"journal\":1,\"domain\":\"i-2-154-VM\",\"uuid\":\"9d3f0a6e-0000-4000-8000-000000000001\""));
        assert_non_null(strstr(slurp("i-2-154-VM.journal"),
                "{\"seq\":1,\"op\":\"driver\",\"device\":\"0000:05:00.0\",\"driver\":\"nvidia\",\"override\":\"\",\"to\":\"vfio-pci\"}\n"
                "{\"seq\":2,\"op\":\"mdev\",\"uuid\":\"c728e022-f16f-434b-ad2c-9665ee634d3d\",\"parent\":\"0000:08:00.4\",\"type\":\"nvidia-746\"}\n"
                "{\"seq\":3,\"op\":\"vgpu-type\",\"device\":\"0000:af:00.4\",\"old\":0,\"to\":1148}\n"));
        assert_int_equal(gpuh_journal_load(jfd, "i-2-154-VM", &k), 0);
        assert_int_equal(k->n, 3);
        assert_false(k->torn);
        assert_string_equal(k->uuid, "9d3f0a6e-0000-4000-8000-000000000001");
        assert_string_equal(k->e[0].driver, "nvidia");
        assert_string_equal(k->e[1].uuid, "c728e022-f16f-434b-ad2c-9665ee634d3d");
        assert_int_equal(k->e[2].to_n, 1148);
        assert_string_equal(gpuh_jentry_key(&k->e[0], key, sizeof(key)), "pci-0000:05:00.0");
        assert_string_equal(gpuh_jentry_key(&k->e[1], key, sizeof(key)), "mdev-c728e022-f16f-434b-ad2c-9665ee634d3d");
        assert_int_equal(gpuh_journal_find(k, "pci-0000:af:00.4", GPUH_JOP_VGPU), 2);
        assert_int_equal(gpuh_journal_find(k, "pci-0000:af:00.4", GPUH_JOP_DRIVER), -1);
        assert_int_equal(gpuh_journal_find(k, "pci-0000:05:00.0", -1), 0);
        /* dropping and saving; an empty journal is removed */
        gpuh_journal_drop(k, 1);
        assert_int_equal(gpuh_journal_save(jfd, k), 0);
        gpuh_journal_free(k);
        assert_int_equal(gpuh_journal_load(jfd, "i-2-154-VM", &k), 0);
        assert_int_equal(k->n, 2);
        assert_int_equal(k->e[1].op, GPUH_JOP_VGPU);
        gpuh_journal_drop(k, 0);
        gpuh_journal_drop(k, 0);
        assert_int_equal(gpuh_journal_save(jfd, k), 0);
        assert_null(slurp("i-2-154-VM.journal"));
        gpuh_journal_free(k);
        assert_int_equal(gpuh_journal_load(jfd, "i-2-154-VM", &k), -ENOENT);
        gpuh_journal_free(j);
}

/* MIG: a GPU instance created with its placement, MIG mode switched; their lines, their
 * keys (one per placement, one per GPU), and what a reader refuses. */
static void test_mig_entries(void **state)
{
        struct gpuh_journal *j, *k;
        struct gpuh_jentry g = { .op = GPUH_JOP_GI, .gi_profile = 14, .gi_start = 2, .gi_size = 2 },
                           m = { .op = GPUH_JOP_MIG, .old = 0, .to_n = 1, .mig_vfs = 32 };
        char key[96];
        int fd;

        (void) state;
        gpuh_pci_addr_parse("0000:ae:00.0", &g.dev);
        m.dev = g.dev;
        assert_int_equal(gpuh_journal_new("i-2-41-VM", NULL, &j), 0);
        assert_int_equal(gpuh_journal_append(jfd, j, &m), 0);
        assert_int_equal(gpuh_journal_append(jfd, j, &g), 0);
        assert_non_null(strstr(slurp("i-2-41-VM.journal"),
                "{\"seq\":1,\"op\":\"mig-mode\",\"device\":\"0000:ae:00.0\",\"old\":0,\"to\":1,\"vfs\":32}\n"
                "{\"seq\":2,\"op\":\"gpu-instance\",\"device\":\"0000:ae:00.0\",\"profile\":14,\"start\":2,\"size\":2}\n"));
        assert_int_equal(gpuh_journal_load(jfd, "i-2-41-VM", &k), 0);
        assert_int_equal(k->n, 2);
        assert_int_equal(k->e[0].op, GPUH_JOP_MIG);
        assert_int_equal(k->e[0].to_n, 1);
        assert_int_equal(k->e[0].mig_vfs, 32);
        assert_int_equal(k->e[1].op, GPUH_JOP_GI);
        assert_int_equal(k->e[1].gi_profile, 14);
        assert_int_equal(k->e[1].gi_start, 2);
        assert_int_equal(k->e[1].gi_size, 2);
        assert_string_equal(gpuh_jentry_key(&k->e[0], key, sizeof(key)), "mig-0000:ae:00.0");
        assert_string_equal(gpuh_jentry_key(&k->e[1], key, sizeof(key)), "gi-0000:ae:00.0-2");
        /* the GPU's own key (its driver, its VFs) is none of them: no entry is taken for another */
        assert_int_equal(gpuh_journal_find(k, "pci-0000:ae:00.0", -1), -1);
        /* a GI's placement is one domain's; MIG mode every slot's on the GPU; both undone with the
         * GPU-wide entries or before them */
        assert_true(gpuh_jkey_claims("gi-0000:ae:00.0-2"));
        assert_true(gpuh_jkey_claims("pci-0000:ae:00.0"));
        assert_false(gpuh_jkey_claims("mig-0000:ae:00.0"));
        assert_true(gpuh_jop_gpu_wide(GPUH_JOP_MIG));
        assert_true(gpuh_jop_gpu_wide(GPUH_JOP_SRIOV));
        assert_false(gpuh_jop_gpu_wide(GPUH_JOP_GI));
        assert_false(gpuh_jop_gpu_wide(GPUH_JOP_VGPU));
        gpuh_journal_free(k);
        gpuh_journal_free(j);
        /* a GI without a size, a MIG mode that is no mode: the journal is unusable */
        fd = openat(jfd, "i-2-41-VM.journal", O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_true(dprintf(fd, "{\"seq\":3,\"op\":\"gpu-instance\",\"device\":\"0000:ae:00.0\",\"profile\":14,"
                            "\"start\":2}\n") > 0);
        close(fd);
        assert_int_equal(gpuh_journal_load(jfd, "i-2-41-VM", &k), -EBADMSG);
        assert_int_equal(unlinkat(jfd, "i-2-41-VM.journal", 0), 0);
        assert_int_equal(gpuh_journal_new("i-2-42-VM", NULL, &j), 0);
        m.to_n = 2;
        assert_int_equal(gpuh_journal_append(jfd, j, &m), 0);
        assert_int_equal(gpuh_journal_load(jfd, "i-2-42-VM", &k), -EBADMSG);
        assert_int_equal(unlinkat(jfd, "i-2-42-VM.journal", 0), 0);
        gpuh_journal_free(j);
}

/* One size limit on write and read: a journal is never grown past what the reader takes. */
static void test_size_limit(void **state)
{
        struct gpuh_journal *j;
        struct gpuh_jentry e = driver_entry("0000:05:00.0", "nvidia"), f = driver_entry("0000:06:00.0", "nvidia");
        int fd;

        (void) state;
        assert_int_equal(gpuh_journal_new("big", NULL, &j), 0);
        assert_int_equal(gpuh_journal_append(jfd, j, &e), 0);
        fd = openat(jfd, "big.journal", O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (4 << 20) - 10), 0);
        close(fd);
        assert_int_equal(gpuh_journal_append(jfd, j, &f), -E2BIG);
        gpuh_journal_free(j);
        assert_int_equal(unlinkat(jfd, "big.journal", 0), 0);
}

static void test_crash_tails(void **state)
{
        struct gpuh_journal *j;
        struct gpuh_jentry e = driver_entry("0000:06:00.0", "amdgpu");

        /* a line cut by a crash mid-append: ignored (its change was never made) */
        spit("a.journal", "{\"journal\":1,\"domain\":\"a\",\"uuid\":null,\"created\":1}\n"
                          "{\"seq\":1,\"op\":\"driver\",\"device\":\"0000:05:00.0\",\"driver\":\"nvidia\",\"override\":\"\",\"to\":\"vfio-pci\"}\n"
                          "{\"seq\":2,\"op\":\"driv");
        assert_int_equal(gpuh_journal_load(jfd, "a", &j), 0);
        assert_int_equal(j->n, 1);
        assert_true(j->torn);
        /* the next append first rewrites the file without the partial line */
        assert_int_equal(gpuh_journal_append(jfd, j, &e), 0);
        assert_int_equal(j->e[1].seq, 2);
        assert_null(strstr(slurp("a.journal"), "\"driv\n"));
        gpuh_journal_free(j);
        assert_int_equal(gpuh_journal_load(jfd, "a", &j), 0);
        assert_int_equal(j->n, 2);
        assert_false(j->torn);
        assert_string_equal(j->e[1].driver, "amdgpu");
        gpuh_journal_free(j);
        /* not even the header made it: an empty journal */
        spit("b.journal", "{\"journal\":1,\"dom");
        assert_int_equal(gpuh_journal_load(jfd, "b", &j), 0);
        assert_int_equal(j->n, 0);
        gpuh_journal_free(j);
        /* anything else malformed: refused, nothing guessed */
        spit("c.journal", "{\"journal\":1,\"domain\":\"c\"}\nnot json\n");
        assert_int_equal(gpuh_journal_load(jfd, "c", &j), -EBADMSG);
        spit("c.journal", "{\"journal\":1,\"domain\":\"c\"}\n{\"seq\":1,\"op\":\"driver\",\"device\":\"0000:05:00.0\","
                          "\"driver\":\"../x\",\"override\":\"\",\"to\":\"vfio-pci\"}\n");
        assert_int_equal(gpuh_journal_load(jfd, "c", &j), -EBADMSG);
        spit("c.journal", "{\"journal\":1,\"domain\":\"c\"}\n{\"seq\":1,\"op\":\"mdev\",\"uuid\":\"x\",\"parent\":\"0000:05:00.0\","
                          "\"type\":\"nvidia-1\"}\n");
        assert_int_equal(gpuh_journal_load(jfd, "c", &j), -EBADMSG);
        spit("c.journal", "{\"journal\":1,\"domain\":\"other\"}\n");
        assert_int_equal(gpuh_journal_load(jfd, "c", &j), -EBADMSG);
        spit("c.journal", "{\"journal\":2,\"domain\":\"c\"}\n");
        assert_int_equal(gpuh_journal_load(jfd, "c", &j), -EBADMSG);
        assert_int_equal(gpuh_journal_load(jfd, "../c", &j), -EINVAL);
        assert_int_equal(gpuh_journal_load(jfd, "nonexistent", &j), -ENOENT);
}

static void test_list(void **state)
{
        char **names = NULL;
        struct gpuh_warnings w = { 0 };
        int n = gpuh_journal_list(jfd, &names, &w);

        assert_true(n >= 3);
        assert_int_equal(w.n, 0);
        for (int i = 0; i < n; i++)
                assert_null(strchr(names[i], '.'));
        strv_free(names);
        assert_int_equal(gpuh_journal_list(-1, &names, &w), 0);     /* no journal directory */
}

/* Journals of any name libvirt accepts: listed by name, none hidden, none shared. */
static void test_names(void **state)
{
        static const char *const names[] = { ".evil", "good", "  x  ", "t\tab", "a b", "a%20b" };
        char ndir[PATH_MAX / 2], long_name[241], other[241], enc[GPUH_DOMNAME_ENC_SIZE], oenc[GPUH_DOMNAME_ENC_SIZE];
        char from[PATH_MAX], to[PATH_MAX];
        struct gpuh_warnings w = { 0 };
        struct gpuh_journal *j, *k;
        struct gpuh_jentry e = driver_entry("0000:05:00.0", "nvidia");
        char **list = NULL;
        int dfd, n;

        snprintf(ndir, sizeof(ndir), "%s/journal-names", tu_dir);
        assert_int_equal(mkdir(ndir, 0700), 0);
        dfd = open(ndir, O_RDONLY | O_DIRECTORY);
        assert_true(dfd >= 0);
        memset(long_name, 'L', 240);
        long_name[240] = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                assert_int_equal(gpuh_journal_new(names[i], NULL, &j), 0);
                assert_int_equal(gpuh_journal_append(dfd, j, &e), 0);
                gpuh_journal_free(j);
        }
        assert_int_equal(gpuh_journal_new(long_name, NULL, &j), 0);
        assert_int_equal(gpuh_journal_append(dfd, j, &e), 0);
        gpuh_journal_free(j);
        /* every one listed, by its name (".evil" too: it is no hidden file) */
        n = gpuh_journal_list(dfd, &list, &w);
        assert_int_equal(n, (int) ARRAY_SIZE(names) + 1);
        assert_int_equal(w.n, 0);
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                bool found = false;
                for (int m = 0; m < n; m++)
                        found = found || streq(list[m], names[i]);
                if (!found)
                        fail_msg("'%s' not listed", names[i]);
                assert_int_equal(gpuh_journal_load(dfd, names[i], &k), 0);
                assert_string_equal(k->domain, names[i]);
                assert_int_equal(k->n, 1);
                gpuh_journal_free(k);
        }
        {
                bool found = false;
                for (int m = 0; m < n; m++)
                        found = found || streq(list[m], long_name);
                assert_true(found);
        }
        strv_free(list);

        /* a save's temporary file is passed over; an entry gpuhooks does not write is reported */
        tu_write(ndir, ".good.journal.Xy12Z9", "{");
        tu_write(ndir, ".stray.journal", "{\"journal\":1,\"domain\":\".stray\"}\n");
        n = gpuh_journal_list(dfd, &list, &w);
        assert_int_equal(n, (int) ARRAY_SIZE(names) + 1);
        assert_int_equal(w.n, 1);
        assert_non_null(strstr(w.v[0], ".stray.journal"));
        gpuh_warnings_clear(&w);
        strv_free(list);
        unlinkat(dfd, ".stray.journal", 0);

        /* two long names meeting in one hashed file name (by hand): the journal of one is never
         * read, appended to or removed as the other's */
        memcpy(other, long_name, sizeof(other));
        other[239] = 'M';
        assert_int_equal(gpuh_domname_encode(long_name, enc), 0);
        assert_int_equal(gpuh_domname_encode(other, oenc), 0);
        snprintf(from, sizeof(from), "%s.journal", enc);
        snprintf(to, sizeof(to), "%s.journal", oenc);
        assert_int_equal(renameat(dfd, from, dfd, to), 0);
        assert_int_equal(gpuh_journal_load(dfd, other, &k), -EBADMSG);
        assert_int_equal(gpuh_journal_new(other, NULL, &j), 0);
        assert_int_equal(gpuh_journal_append(dfd, j, &e), -EEXIST);
        assert_int_equal(gpuh_journal_remove(dfd, other), 0);
        assert_int_equal(faccessat(dfd, to, F_OK, 0), 0);
        gpuh_journal_free(j);
        n = gpuh_journal_list(dfd, &list, &w);
        assert_int_equal(w.n, 1);
        gpuh_warnings_clear(&w);
        strv_free(list);
        assert_int_equal(renameat(dfd, to, dfd, from), 0);
        /* a journal file a link: not read through it */
        assert_int_equal(symlinkat("/etc/hostname", dfd, "lnk.journal"), 0);
        assert_int_equal(gpuh_journal_load(dfd, "lnk", &k), -ELOOP);
        unlinkat(dfd, "lnk.journal", 0);
        /* a new journal never appends to a file it did not read */
        assert_int_equal(gpuh_journal_new("good", NULL, &j), 0);
        assert_int_equal(gpuh_journal_append(dfd, j, &e), -EEXIST);
        gpuh_journal_free(j);
        close(dfd);
}

static void test_locks(void **state)
{
        char ldir[PATH_MAX];
        struct gpuh_lockset s = { 0 };
        const char *busy = NULL;
        int dfd, fd, pfd[2];
        pid_t pid;
        char c;

        snprintf(ldir, sizeof(ldir), "%s/locks", tu_dir);
        assert_int_equal(mkdir(ldir, 0700), 0);
        dfd = open(ldir, O_RDONLY | O_DIRECTORY);
        assert_true(dfd >= 0);
        /* sorted and unique, whatever the order of adding */
        assert_int_equal(gpuh_lockset_add(&s, "pci-0000:b7:00.0"), 0);
        assert_int_equal(gpuh_lockset_add(&s, "mdev-aaaa"), 0);
        assert_int_equal(gpuh_lockset_add(&s, "pci-0000:34:00.0"), 0);
        assert_int_equal(gpuh_lockset_add(&s, "pci-0000:b7:00.0"), 0);
        assert_int_equal(s.n, 3);
        assert_string_equal(s.names[0], "mdev-aaaa");
        assert_string_equal(s.names[1], "pci-0000:34:00.0");
        assert_string_equal(s.names[2], "pci-0000:b7:00.0");
        assert_true(gpuh_lockset_has(&s, "pci-0000:34:00.0"));
        assert_false(gpuh_lockset_has(&s, "pci-0000:35:00.0"));
        /* another process holds one: the set waits until the deadline, then lets all go */
        assert_int_equal(pipe(pfd), 0);
        pid = fork();
        if (pid == 0) {
                int l = gpuh_lock_take(dfd, "pci-0000:b7:00.0", 1000);
                if (write(pfd[1], "x", 1) != 1 || l < 0)
                        _exit(1);
                pause();
                _exit(0);
        }
        assert_int_equal(read(pfd[0], &c, 1), 1);
        assert_int_equal(gpuh_lockset_take(&s, dfd, 200, &busy), -ETIMEDOUT);
        assert_string_equal(busy, "pci-0000:b7:00.0");
        for (size_t i = 0; i < s.n; i++)
                assert_int_equal(s.fds[i], -1);
        /* the lock taken by nobody else is free again */
        fd = gpuh_lock_take(dfd, "pci-0000:34:00.0", 0);
        assert_true(fd >= 0);
        close(fd);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        assert_int_equal(gpuh_lockset_take(&s, dfd, 1000, &busy), 0);
        gpuh_lockset_release(&s);
        /* a removed lock file: a taker gets the file that is there now */
        fd = gpuh_lock_take(dfd, "vm-x", 0);
        assert_true(fd >= 0);
        gpuh_lock_drop(dfd, "vm-x", fd);
        assert_int_equal(faccessat(dfd, "vm-x", F_OK, 0), -1);
        fd = gpuh_lock_take(dfd, "vm-x", 0);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(gpuh_lock_take(dfd, "../x", 0), -EINVAL);
        close(dfd);
        close(pfd[0]);
        close(pfd[1]);
}

static void test_holders(void **state)
{
        char dev[PATH_MAX], node[PATH_MAX + 32], other[PATH_MAX + 32];
        char *nodes[] = { node, other, NULL };
        struct gpuh_holder *h = NULL;
        size_t n = 0;
        char *desc;
        int pfd[2];
        pid_t pid;
        char c;

        snprintf(dev, sizeof(dev), "%s/dev", tu_dir);
        snprintf(node, sizeof(node), "%s/dev/vfio/36", tu_dir);
        snprintf(other, sizeof(other), "%s/dev/nvidia0", tu_dir);
        tu_write(tu_dir, "dev/vfio/36", "");
        tu_write(tu_dir, "dev/nvidia0", "");
        /* nobody has them open */
        assert_int_equal(gpuh_holders_find("/proc", nodes, &h, &n), 0);
        assert_int_equal(n, 0);
        /* a child opens one (the caller itself is never listed) */
        assert_int_equal(pipe(pfd), 0);
        pid = fork();
        if (pid == 0) {
                int fd = open(node, O_RDONLY);
                if (fd < 0 || write(pfd[1], "x", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        assert_int_equal(read(pfd[0], &c, 1), 1);
        {
                int mine = open(other, O_RDONLY);
                assert_int_equal(gpuh_holders_find("/proc", nodes, &h, &n), 1);
                close(mine);
        }
        assert_int_equal(n, 1);
        assert_int_equal(h[0].pid, pid);
        assert_string_equal(h[0].node, node);
        desc = gpuh_holders_describe(h, n);
        assert_non_null(strstr(desc, "holds"));
        assert_non_null(strstr(desc, "/dev/vfio/36"));
        free(desc);
        free(h);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(pfd[0]);
        close(pfd[1]);
        /* which nodes a function has: its vfio group; on nvidia every /dev/nvidiaN when the
         * driver's procfs cannot say which */
        {
                char **list = NULL;
                struct gpuh_pci_addr a;
                char dpath[PATH_MAX + 64];
                int fd;

                gpuh_pci_addr_parse("0000:05:00.0", &a);
                tu_write(tu_dir, "bus/pci/devices/0000:05:00.0/drm/card1/dev", "226:1\n");
                snprintf(dpath, sizeof(dpath), "%s/bus/pci/devices/0000:05:00.0", tu_dir);
                fd = open(dpath, O_PATH | O_DIRECTORY);
                tu_write(tu_dir, "dev/dri/card1", "");
                assert_int_equal(gpuh_pci_nodes(fd, dev, "/nonexistent-proc", &a, "nvidia", 36, &list), 0);
                assert_non_null(list);
                assert_true(strstr(list[0], "/dev/dri/card1") != NULL);
                assert_true(strstr(list[1], "/dev/nvidia0") != NULL);
                assert_true(strstr(list[2], "/dev/vfio/36") != NULL);
                assert_null(list[3]);
                strv_free(list);
                list = NULL;
                /* with the driver's procfs: only its minor */
                tu_write(tu_dir, "proc/driver/nvidia/gpus/0000:05:00.0/information",
                         "Model: \t\t Tesla V100\nDevice Minor: \t 3\n");
                tu_write(tu_dir, "dev/nvidia3", "");
                {
                        char proc[PATH_MAX];
                        snprintf(proc, sizeof(proc), "%s/proc", tu_dir);
                        assert_int_equal(gpuh_pci_nodes(fd, dev, proc, &a, "nvidia", -1, &list), 0);
                }
                assert_true(strstr(list[1], "/dev/nvidia3") != NULL);
                assert_null(list[2]);
                strv_free(list);
                close(fd);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_append_load),
                cmocka_unit_test(test_mig_entries),
                cmocka_unit_test(test_size_limit),
                cmocka_unit_test(test_crash_tails),
                cmocka_unit_test(test_list),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_locks),
                cmocka_unit_test(test_holders),
        };
        return cmocka_run_group_tests_name("journal", tests, setup, tu_group_teardown);
}
