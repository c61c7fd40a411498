/* SPDX-License-Identifier: Apache-2.0 */
/* holders.c: device nodes of a PCI function, and the processes that have them open. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "holders.h"
#include "macro.h"
#include "sysfs.h"

static int push_if_exists(char ***v, const char *path)
{
        struct stat st;

        char *copy;

        if (stat(path, &st) < 0)
                return 0;
        copy = strdup(path);
        return copy ? strv_consume(v, copy) : -ENOMEM;
}

/* "Device Minor: \t 3" of the nvidia driver's procfs file; -1 when unknown. */
static int nvidia_minor(const char *proc_root, const char *bdf)
{
        char path[PATH_MAX], buf[4096];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;
        char *p;

        snprintf(path, sizeof(path), "%s/driver/nvidia/gpus/%s/information", proc_root, bdf);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        p = strstr(buf, "Device Minor:");
        if (!p)
                return -1;
        p += strlen("Device Minor:");
        p += strspn(p, " \t");
        if (!isdigit((unsigned char) *p))
                return -1;
        return atoi(p);
}

int gpuh_pci_nodes(int dev_fd, const char *dev_dir, const char *proc_root, const struct gpuh_pci_addr *a,
                   const char *driver, int iommu_group, char ***nodes)
{
        char bdf[GPUH_PCI_ADDR_MAX], path[PATH_MAX];
        _cleanup_strv_free_ char **drm = NULL;
        int r;

        gpuh_pci_addr_format(a, bdf);
        if (dev_fd >= 0 && gpuh_sysfs_list(dev_fd, "drm", &drm) > 0)
                for (char **p = drm; *p; p++) {
                        if (strncmp(*p, "card", 4) != 0 && strncmp(*p, "renderD", 7) != 0)
                                continue;
                        snprintf(path, sizeof(path), "%s/dri/%s", dev_dir, *p);
                        if ((r = push_if_exists(nodes, path)) < 0)
                                return r;
                }
        if (driver && streq(driver, "nvidia")) {
                int minor = nvidia_minor(proc_root, bdf);

                if (minor >= 0) {
                        snprintf(path, sizeof(path), "%s/nvidia%d", dev_dir, minor);
                        if ((r = push_if_exists(nodes, path)) < 0)
                                return r;
                } else {
                        /* which one is this GPU's cannot be told: all of them */
                        _cleanup_closedir_ DIR *d = opendir(dev_dir);
                        struct dirent *de;

                        while (d && (de = readdir(d))) {
                                if (strncmp(de->d_name, "nvidia", 6) != 0 || !de->d_name[6] ||
                                    strspn(de->d_name + 6, "0123456789") != strlen(de->d_name + 6))
                                        continue;
                                snprintf(path, sizeof(path), "%s/%s", dev_dir, de->d_name);
                                if ((r = push_if_exists(nodes, path)) < 0)
                                        return r;
                        }
                }
        }
        if (iommu_group >= 0) {
                snprintf(path, sizeof(path), "%s/vfio/%d", dev_dir, iommu_group);
                if ((r = push_if_exists(nodes, path)) < 0)
                        return r;
        }
        return 0;
}

struct node_id {
        bool is_dev;
        dev_t dev;              /* st_rdev for devices, st_dev otherwise */
        ino_t ino;
        const char *path;
};

static bool same(const struct node_id *id, const struct stat *st)
{
        if (id->is_dev)
                return (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) && st->st_rdev == id->dev;
        return st->st_dev == id->dev && st->st_ino == id->ino;
}

/* The open file of /proc/PID/fd/@name, as fstatat(2) would give it, from the attributes the
 * kernel has cached: a file on a network file system whose server is gone does not hang the
 * scan (statx(2) AT_STATX_DONT_SYNC). */
static int fd_stat(int fdfd, const char *name, struct stat *st)
{
        struct statx sx;

        if (statx(fdfd, name, AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx) < 0)
                return -errno;
        if (!(sx.stx_mask & STATX_TYPE) || !(sx.stx_mask & STATX_INO))
                return -ENODATA;
        *st = (struct stat) {
                .st_mode = sx.stx_mode,
                .st_ino = (ino_t) sx.stx_ino,
                .st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
                .st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor),
        };
        return 0;
}

int gpuh_holders_find(const char *proc_root, char *const *nodes, struct gpuh_holder **ret, size_t *ret_n)
{
        _cleanup_free_ struct node_id *ids = NULL;
        _cleanup_closedir_ DIR *proc = NULL;
        struct gpuh_holder *h = NULL;
        size_t n_ids = 0, n = 0, cap = 0;
        pid_t self = getpid();
        struct dirent *de;

        *ret = NULL;
        *ret_n = 0;
        for (size_t i = 0; nodes && nodes[i]; i++)
                n_ids++;
        if (n_ids == 0)
                return 0;
        ids = calloc(n_ids, sizeof(*ids));
        if (!ids)
                return -ENOMEM;
        n_ids = 0;
        for (size_t i = 0; nodes[i]; i++) {
                struct stat st;
                if (stat(nodes[i], &st) < 0)
                        continue;
                ids[n_ids].is_dev = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
                ids[n_ids].dev = ids[n_ids].is_dev ? st.st_rdev : st.st_dev;
                ids[n_ids].ino = st.st_ino;
                ids[n_ids].path = nodes[i];
                n_ids++;
        }
        if (n_ids == 0)
                return 0;
        proc = opendir(proc_root);
        if (!proc)
                return -errno;
        while ((de = readdir(proc))) {
                char path[PATH_MAX];
                _cleanup_closedir_ DIR *fds = NULL;
                struct dirent *fe;
                pid_t pid;
                int fdfd;

                if (!isdigit((unsigned char) de->d_name[0]) || strspn(de->d_name, "0123456789") != strlen(de->d_name))
                        continue;
                pid = (pid_t) atol(de->d_name);
                if (pid == self)
                        continue;
                snprintf(path, sizeof(path), "%s/%s/fd", proc_root, de->d_name);
                fds = opendir(path);
                if (!fds)
                        continue;       /* gone, a kernel thread, or not ours to read */
                fdfd = dirfd(fds);
                while ((fe = readdir(fds))) {
                        struct stat st = { 0 };
                        const struct node_id *hit = NULL;
                        char target[16];
                        ssize_t k;

                        if (fe->d_name[0] == '.')
                                continue;
                        /* The link's text says what kind of file is open (proc(5)): "socket:[N]",
                         * "pipe:[N]", "anon_inode:..." and the like are no nodes and are skipped
                         * unstat()ed; a path (whatever its name: a hard link, a node opened
                         * elsewhere, "... (deleted)") is compared by identity, so the name it was
                         * opened by does not matter. */
                        k = readlinkat(fdfd, fe->d_name, target, sizeof(target));
                        if (k <= 0 || target[0] != '/')
                                continue;
                        if (fd_stat(fdfd, fe->d_name, &st) < 0)
                                continue;
                        for (size_t i = 0; i < n_ids && !hit; i++)
                                if (same(&ids[i], &st))
                                        hit = &ids[i];
                        if (!hit)
                                continue;
                        if (n == cap) {
                                struct gpuh_holder *nh = reallocarray(h, cap ? cap * 2 : 4, sizeof(*h));
                                if (!nh) {
                                        free(h);
                                        return -ENOMEM;
                                }
                                h = nh;
                                cap = cap ? cap * 2 : 4;
                        }
                        h[n] = (struct gpuh_holder) { .pid = pid, .node = hit->path };
                        snprintf(path, sizeof(path), "%s/%s/comm", proc_root, de->d_name);
                        {
                                _cleanup_close_ int cfd = open(path, O_RDONLY | O_CLOEXEC);
                                ssize_t c = cfd >= 0 ? read(cfd, h[n].comm, sizeof(h[n].comm) - 1) : -1;
                                h[n].comm[c > 0 ? c : 0] = '\0';
                                h[n].comm[strcspn(h[n].comm, "\n")] = '\0';
                        }
                        n++;
                        break;          /* one node per process is enough to name it */
                }
        }
        *ret = h;
        *ret_n = n;
        return (int) n;
}

char *gpuh_holders_describe(const struct gpuh_holder *h, size_t n)
{
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        if (!f)
                return NULL;
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%spid %d (%s) holds %s", i ? ", " : "", (int) h[i].pid,
                        h[i].comm[0] ? h[i].comm : "?", h[i].node);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}
