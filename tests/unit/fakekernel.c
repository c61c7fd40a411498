/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fakekernel.c: the in-process fake kernel of the unit tests (fakekernel.h).
 *
 * The host's state is the tree itself, as the FUSE emulator's is (tests/emu/sysfsemu.py): what
 * a write changes is read back from the tree by the library, and by fk_snapshot(). Only what
 * sysfs does not show is kept here: each function's ID-table driver, which driver registers its
 * mdev types, the VF templates of SR-IOV PFs, the fault rules and the writes in flight.
 * Each rule cites where the kernel does it (Linux 6.1); [NV] is NVIDIA's vendor-specific vGPU
 * behaviour as tests/emu/README.md sources it; [EMU] a choice of the emulator, kept here.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fakekernel.h"
#include "macro.h"

#define FK_MAX_DEVS 512
#define FK_MAX_TMPL 8
#define FK_MAX_TYPES 8
#define FK_MAX_VGPU 16
#define FK_MAX_RULES 32
#define FK_MAX_FLIGHTS 32
#define NVIDIA_HEADER "ID    : vGPU Name\n"
#define MDEV_DRIVER "vfio_mdev"

struct fk_devinfo {
        char bdf[16];
        char natural[32];               /* the ID table's driver, "" none */
        bool owns;                      /* @natural registers mdev_supported_types and nvidia/ */
        bool vendor_vf;                 /* a VF of a vendor-vGPU PF: vfio-pci refuses it [NV] */
        char pf[16];                    /* a VF's PF, "" */
};

struct fk_tmpl {
        char pf[16];
        struct fk_sriov s;
        char vf_driver[32];
        char types[FK_MAX_TYPES][64];
        size_t n_types;
        struct fk_vgpu_type vgpu[FK_MAX_VGPU];
        char vgpu_names[FK_MAX_VGPU][64];
};

struct fk_rule {
        char path[256];
        char value[128];                /* "" any */
        int err;                        /* fail: its errno */
        int times;                      /* < 0 all */
        bool hang;
        enum fk_hang_end end;
};

struct fk_flight {
        char crel[PATH_MAX];            /* the resolved path */
        char value[128];
        char lock[96];                  /* the device lock it holds or waits for, "" */
        bool queued;                    /* waits behind another flight's lock */
        enum fk_hang_end end;
};

struct fk {
        char *dir, *sys, *dev, *proc, *state, *stash;
        struct fk_devinfo devs[FK_MAX_DEVS];
        size_t n_devs;
        struct fk_tmpl tmpl[FK_MAX_TMPL];
        size_t n_tmpl;
        struct fk_rule rules[FK_MAX_RULES];
        size_t n_rules;
        int nth, nth_err;               /* fk_fail_nth(), fk_hang_nth(); nth < 0: none */
        bool nth_hang;
        enum fk_hang_end nth_end;
        int counted;                    /* writes since then */
        struct fk_flight flights[FK_MAX_FLIGHTS];
        size_t n_flights;
        struct fk_write *log;
        size_t n_log, cap_log;
};

static struct fk *fk_current;

/* ---- files ------------------------------------------------------------------------------- */

static char *pathf(char *buf, const char *fmt, ...) _printf_(2, 3);
static char *pathf(char *buf, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        if (vsnprintf(buf, PATH_MAX, fmt, ap) >= PATH_MAX)
                abort();        /* a test's tree never has such paths */
        va_end(ap);
        return buf;
}

static int mkdirs(const char *path)
{
        char p[PATH_MAX];

        if (mkdir(path, 0755) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        snprintf(p, sizeof(p), "%s", path);
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *s = '/';
                }
        return mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static int put(const char *path, const void *data, size_t len)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

        if (fd < 0)
                return -errno;
        return write(fd, data, len) == (ssize_t) len ? 0 : -EIO;
}

static int puts_at(const char *path, const char *text)
{
        return put(path, text, strlen(text));
}

/* The file's content, one trailing newline removed; "" and -errno when it cannot be read. */
static int get(const char *path, char *buf, size_t size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        buf[0] = '\0';
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        if (n > 0 && buf[n - 1] == '\n')
                buf[--n] = '\0';
        return (int) n;
}

static bool lexists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

/* The basename of the link's target, "" when it is no link. */
static char *link_base(const char *path, char *buf, size_t size)
{
        char t[PATH_MAX];
        ssize_t n = readlink(path, t, sizeof(t) - 1);
        const char *b;

        buf[0] = '\0';
        if (n <= 0)
                return buf;
        t[n] = '\0';
        b = strrchr(t, '/');
        snprintf(buf, size, "%s", b ? b + 1 : t);
        return buf;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static void rmtree(const char *path)
{
        nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* sys/@at becomes a link to sys/@target, relative as sysfs' links are. */
static int mklink(struct fk *k, const char *at, const char *target)
{
        char p[PATH_MAX], t[PATH_MAX] = "";
        size_t up = 0;

        for (const char *s = at; *s; s++)
                up += *s == '/';
        for (size_t i = 0; i < up; i++)
                strcat(t, "../");
        strcat(t, target);
        pathf(p, "%s/%s", k->sys, at);
        unlink(p);
        return symlink(t, p) < 0 ? -errno : 0;
}

static void rmlink(struct fk *k, const char *at)
{
        char p[PATH_MAX];

        unlink(pathf(p, "%s/%s", k->sys, at));
}

/* sys/@rel as an absolute path in @buf. */
static char *S(const struct fk *k, char *buf, const char *rel)
{
        return pathf(buf, "%s/%s", k->sys, rel);
}

/* ---- devices ----------------------------------------------------------------------------- */

/* Where a function lives: every function of a fake host sits under its domain's root bus. */
static char *devrel(const char *bdf, char *buf)
{
        const char *colon = strchr(bdf, ':');

        return pathf(buf, "devices/pci%.*s:00/%s", colon ? (int) (colon - bdf) : 4, bdf, bdf);
}

static bool is_uuid(const char *s)
{
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++)
                if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !isxdigit((unsigned char) s[i]))
                        return false;
        return true;
}

static bool is_bdf(const char *s)
{
        unsigned d, b, sl, f;
        char end;

        return sscanf(s, "%x:%x:%x.%x%c", &d, &b, &sl, &f, &end) == 4 && sl < 32 && f < 8;
}

static struct fk_devinfo *info(struct fk *k, const char *bdf)
{
        for (size_t i = 0; i < k->n_devs; i++)
                if (streq(k->devs[i].bdf, bdf))
                        return &k->devs[i];
        return NULL;
}

static struct fk_tmpl *tmpl_of(struct fk *k, const char *pf)
{
        for (size_t i = 0; i < k->n_tmpl; i++)
                if (streq(k->tmpl[i].pf, pf))
                        return &k->tmpl[i];
        return NULL;
}

static char *attr(struct fk *k, const char *bdf, const char *name, char *buf, size_t size)
{
        char d[PATH_MAX], p[PATH_MAX];

        get(pathf(p, "%s/%s/%s", k->sys, devrel(bdf, d), name), buf, size);
        return buf;
}

static char *driver_of(struct fk *k, const char *bdf, char *buf, size_t size)
{
        char d[PATH_MAX], p[PATH_MAX];

        return link_base(pathf(p, "%s/%s/driver", k->sys, devrel(bdf, d)), buf, size);
}

static char *override_of(struct fk *k, const char *bdf, char *buf, size_t size)
{
        attr(k, bdf, "driver_override", buf, size);
        if (streq(buf, "(null)"))
                buf[0] = '\0';
        return buf;
}

static int group_of(struct fk *k, const char *rel)
{
        char p[PATH_MAX], b[32];

        link_base(pathf(p, "%s/%s/iommu_group", k->sys, rel), b, sizeof(b));
        return b[0] ? atoi(b) : -1;
}

static unsigned long num_attr(struct fk *k, const char *bdf, const char *name)
{
        char b[64];

        return strtoul(attr(k, bdf, name, b, sizeof(b)), NULL, 0);
}

static int ensure_driver(struct fk *k, const char *drv)
{
        static const char *const files[] = { "bind", "unbind", "new_id", "remove_id" };
        char p[PATH_MAX];
        int r;

        if (!drv || !*drv)
                return 0;
        r = mkdirs(pathf(p, "%s/bus/pci/drivers/%s", k->sys, drv));
        for (size_t i = 0; r == 0 && i < ARRAY_SIZE(files); i++)
                if (!lexists(pathf(p, "%s/bus/pci/drivers/%s/%s", k->sys, drv, files[i])))
                        r = puts_at(p, "");
        return r;
}

/* drivers/vfio/group.c: /dev/vfio/GROUP exists while a member is bound to a vfio driver
 * (vfio-pci for a PCI function, the mdev's vfio driver for an mdev). */
static void vfio_sync(struct fk *k, int group)
{
        _cleanup_closedir_ DIR *d = NULL;
        char p[PATH_MAX], b[64];
        struct dirent *de;
        bool on = false;

        if (group < 0)
                return;
        d = opendir(pathf(p, "%s/kernel/iommu_groups/%d/devices", k->sys, group));
        while (d && (de = readdir(d)))
                if (de->d_name[0] != '.') {
                        link_base(pathf(p, "%s/kernel/iommu_groups/%d/devices/%s/driver", k->sys, group, de->d_name),
                                  b, sizeof(b));
                        on = on || streq(b, "vfio-pci") || (is_uuid(de->d_name) && b[0]);
                }
        pathf(p, "%s/vfio/%d", k->dev, group);
        if (on && !lexists(p))
                puts_at(p, "");
        else if (!on)
                unlink(p);
}

/* drivers/iommu/iommu.c iommu_group_alloc: ida_alloc() gives the lowest free number. */
static int new_group(struct fk *k, const char *member, const char *name)
{
        char p[PATH_MAX], t[PATH_MAX];
        int g = 0;

        while (lexists(pathf(p, "%s/kernel/iommu_groups/%d", k->sys, g)))
                g++;
        mkdirs(pathf(p, "%s/kernel/iommu_groups/%d/devices", k->sys, g));
        puts_at(pathf(p, "%s/kernel/iommu_groups/%d/type", k->sys, g), "DMA\n");
        mklink(k, pathf(p, "kernel/iommu_groups/%d/devices/%s", g, name), member);
        mklink(k, pathf(p, "%s/iommu_group", member), pathf(t, "kernel/iommu_groups/%d", g));
        return g;
}

static int drop_group_member(struct fk *k, const char *member, const char *name)
{
        _cleanup_closedir_ DIR *d = NULL;
        char p[PATH_MAX];
        struct dirent *de;
        int g = group_of(k, member), left = 0;

        if (g < 0)
                return -1;
        rmlink(k, pathf(p, "kernel/iommu_groups/%d/devices/%s", g, name));
        d = opendir(pathf(p, "%s/kernel/iommu_groups/%d/devices", k->sys, g));
        while (d && (de = readdir(d)))
                left += de->d_name[0] != '.';
        if (left == 0)
                rmtree(pathf(p, "%s/kernel/iommu_groups/%d", k->sys, g));
        return g;
}

/* The mdevs (UUID directories) under a function, NULL-terminated (strv_free()). */
static char **mdevs_under(struct fk *k, const char *bdf)
{
        _cleanup_closedir_ DIR *d = NULL;
        char p[PATH_MAX], r[PATH_MAX];
        struct dirent *de;
        char **v = NULL;

        d = opendir(S(k, p, devrel(bdf, r)));
        while (d && (de = readdir(d)))
                if (is_uuid(de->d_name))
                        strv_consume(&v, strdup(de->d_name));
        return v;
}

static void set_avail(struct fk *k, const char *bdf, const char *type, long n)
{
        char p[PATH_MAX], r[PATH_MAX], v[32];

        snprintf(v, sizeof(v), "%ld\n", n);
        puts_at(pathf(p, "%s/%s/mdev_supported_types/%s/available_instances", k->sys, devrel(bdf, r), type), v);
}

static long get_avail(struct fk *k, const char *bdf, const char *type)
{
        char p[PATH_MAX], r[PATH_MAX], v[32];

        get(pathf(p, "%s/%s/mdev_supported_types/%s/available_instances", k->sys, devrel(bdf, r), type), v, sizeof(v));
        return strtol(v, NULL, 10);
}

/* mdev_core.c mdev_device_create: PARENT/UUID with its type, group and vfio driver; the type's
 * available_instances one less, or, on a VF (one vGPU per VF, NVIDIA SR-IOV vGPU) every type
 * of the VF 0 [NV]. */
static void make_mdev(struct fk *k, const char *parent, const char *type, const char *uuid)
{
        struct fk_devinfo *di = info(k, parent);
        struct fk_tmpl *t = di && di->pf[0] ? tmpl_of(k, di->pf) : NULL;
        char r[PATH_MAX], m[PATH_MAX], p[PATH_MAX], x[PATH_MAX];
        int g;

        devrel(parent, r);
        pathf(m, "%s/%s", r, uuid);
        mkdirs(S(k, p, m));
        puts_at(pathf(p, "%s/%s/remove", k->sys, m), "");
        mklink(k, pathf(p, "%s/mdev_type", m), pathf(x, "%s/mdev_supported_types/%s", r, type));
        g = new_group(k, m, uuid);
        mklink(k, pathf(p, "%s/driver", m), "bus/mdev/drivers/" MDEV_DRIVER);
        mklink(k, pathf(p, "bus/mdev/drivers/" MDEV_DRIVER "/%s", uuid), m);
        mklink(k, pathf(p, "%s/mdev_supported_types/%s/devices/%s", r, type, uuid), m);
        mklink(k, pathf(p, "bus/mdev/devices/%s", uuid), m);
        if (t)
                for (size_t i = 0; i < t->n_types; i++)
                        set_avail(k, parent, t->types[i], 0);
        else
                set_avail(k, parent, type, get_avail(k, parent, type) - 1);
        vfio_sync(k, g);
}

static void remove_mdev(struct fk *k, const char *parent, const char *uuid)
{
        struct fk_devinfo *di = info(k, parent);
        struct fk_tmpl *t = di && di->pf[0] ? tmpl_of(k, di->pf) : NULL;
        char r[PATH_MAX], m[PATH_MAX], p[PATH_MAX], type[64];
        int g;

        devrel(parent, r);
        pathf(m, "%s/%s", r, uuid);
        link_base(pathf(p, "%s/%s/mdev_type", k->sys, m), type, sizeof(type));
        g = drop_group_member(k, m, uuid);
        rmlink(k, pathf(p, "bus/mdev/drivers/" MDEV_DRIVER "/%s", uuid));
        rmlink(k, pathf(p, "%s/mdev_supported_types/%s/devices/%s", r, type, uuid));
        rmlink(k, pathf(p, "bus/mdev/devices/%s", uuid));
        rmtree(S(k, p, m));
        if (t)
                for (size_t i = 0; i < t->n_types; i++)
                        set_avail(k, parent, t->types[i], t->s.type_avail);
        else
                set_avail(k, parent, type, get_avail(k, parent, type) + 1);
        vfio_sync(k, g);
}

/* ---- NVIDIA vendor-specific vGPU [NV] ------------------------------------------------------ */

static unsigned vgpu_fb(const struct fk_tmpl *t, unsigned id)
{
        for (size_t i = 0; i < t->s.n_vgpu; i++)
                if (t->vgpu[i].id == id)
                        return t->vgpu[i].fb_mb;
        return 0;
}

/* creatable_vgpu_types lists what still fits: the framebuffer of the types set on the PF's
 * VFs plus the type's own within the GPU's, and (vGPU 17's equal-size mode) only the size in
 * use; a VF holding a type lists nothing. */
static void recompute_creatable(struct fk *k, const char *pf)
{
        struct fk_tmpl *t = tmpl_of(k, pf);
        unsigned n = (unsigned) num_attr(k, pf, "sriov_numvfs"), used = 0, size = 0, gpu = 0;
        char r[PATH_MAX], p[PATH_MAX], vf[32], cur[32];

        if (!t || t->s.n_vgpu == 0)
                return;
        gpu = t->s.gpu_fb_mb;
        for (size_t i = 0; !t->s.gpu_fb_mb && i < t->s.n_vgpu; i++)
                gpu = t->vgpu[i].fb_mb > gpu ? t->vgpu[i].fb_mb : gpu;
        for (int pass = 0; pass < 2; pass++)
                for (unsigned i = 0; i < n; i++) {
                        _cleanup_free_ char *list = NULL;
                        size_t len = 0;
                        FILE *f;

                        link_base(pathf(p, "%s/%s/virtfn%u", k->sys, devrel(pf, r), i), vf, sizeof(vf));
                        if (get(pathf(p, "%s/%s/nvidia/current_vgpu_type", k->sys, devrel(vf, r)), cur, sizeof(cur)) < 0)
                                continue;       /* no vGPU interface now (its driver is unbound) */
                        if (pass == 0) {
                                unsigned fb = vgpu_fb(t, (unsigned) atoi(cur));
                                used += fb;
                                size = fb ? fb : size;
                                continue;
                        }
                        f = open_memstream(&list, &len);
                        if (!f)
                                abort();
                        fputs(NVIDIA_HEADER, f);
                        for (size_t v = 0; atoi(cur) == 0 && v < t->s.n_vgpu; v++)
                                if (used + t->vgpu[v].fb_mb <= gpu && (!size || t->vgpu[v].fb_mb == size))
                                        fprintf(f, "%-6u: %s\n", t->vgpu[v].id, t->vgpu[v].name);
                        fclose(f);
                        puts_at(pathf(p, "%s/%s/nvidia/creatable_vgpu_types", k->sys, devrel(vf, r)), list);
                }
}

/* ---- binding ----------------------------------------------------------------------------- */

/* Unbinding the driver that registered a function's mdev types unregisters the parent: its
 * mdevs go, and mdev_supported_types (and nvidia/ [NV]) until the driver binds again
 * (drivers/vfio/mdev/mdev_core.c mdev_unregister_parent). */
static void stash_owned(struct fk *k, const char *bdf)
{
        _cleanup_strv_free_ char **mdevs = mdevs_under(k, bdf);
        struct fk_devinfo *di = info(k, bdf);
        static const char *const subs[] = { "mdev_supported_types", "nvidia" };
        char r[PATH_MAX], p[PATH_MAX], q[PATH_MAX];

        for (char **u = mdevs; u && *u; u++)
                remove_mdev(k, bdf, *u);
        devrel(bdf, r);
        if (get(pathf(p, "%s/%s/nvidia/current_vgpu_type", k->sys, r), q, sizeof(q)) > 0 && atoi(q) != 0)
                puts_at(p, "0\n");
        mkdirs(pathf(q, "%s/%s", k->stash, bdf));
        for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
                if (lexists(pathf(p, "%s/%s/%s", k->sys, r, subs[i])))
                        rename(p, pathf(q, "%s/%s/%s", k->stash, bdf, subs[i]));
        if (di && di->pf[0])
                recompute_creatable(k, di->pf);
}

static void restore_owned(struct fk *k, const char *bdf)
{
        struct fk_devinfo *di = info(k, bdf);
        static const char *const subs[] = { "mdev_supported_types", "nvidia" };
        char r[PATH_MAX], p[PATH_MAX], q[PATH_MAX];

        devrel(bdf, r);
        for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
                if (lexists(pathf(q, "%s/%s/%s", k->stash, bdf, subs[i])))
                        rename(q, pathf(p, "%s/%s/%s", k->sys, r, subs[i]));
        rmdir(pathf(q, "%s/%s", k->stash, bdf));
        if (di && di->pf[0])
                recompute_creatable(k, di->pf);
}

static void do_bind(struct fk *k, const char *bdf, const char *drv)
{
        struct fk_devinfo *di = info(k, bdf);
        char r[PATH_MAX], p[PATH_MAX], t[PATH_MAX];

        devrel(bdf, r);
        mklink(k, pathf(p, "%s/driver", r), pathf(t, "bus/pci/drivers/%s", drv));
        mklink(k, pathf(p, "bus/pci/drivers/%s/%s", drv, bdf), r);
        if (di && di->owns && streq(di->natural, drv))
                restore_owned(k, bdf);
        vfio_sync(k, group_of(k, r));
}

static void do_unbind(struct fk *k, const char *bdf)
{
        struct fk_devinfo *di = info(k, bdf);
        char r[PATH_MAX], p[PATH_MAX], drv[64];

        driver_of(k, bdf, drv, sizeof(drv));
        if (!drv[0])
                return;
        devrel(bdf, r);
        if (di && di->owns && streq(di->natural, drv))
                stash_owned(k, bdf);
        rmlink(k, pathf(p, "%s/driver", r));
        rmlink(k, pathf(p, "bus/pci/drivers/%s/%s", drv, bdf));
        vfio_sync(k, group_of(k, r));
}

/* drivers/pci/pci-driver.c pci_match_device: an override names the only driver that matches,
 * and always matches it; else the ID table. */
static bool matches(struct fk *k, const char *bdf, const char *drv)
{
        struct fk_devinfo *di = info(k, bdf);
        char ov[64];

        override_of(k, bdf, ov, sizeof(ov));
        if (ov[0])
                return streq(ov, drv);
        return di && streq(di->natural, drv);
}

/* The driver's probe(): 0 or a positive errno. */
static int probe(struct fk *k, const char *bdf, const char *drv)
{
        struct fk_devinfo *di = info(k, bdf);
        char r[PATH_MAX], p[PATH_MAX], b[64];

        if (streq(drv, "vfio-pci")) {
                /* drivers/vfio/group.c vfio_group_find_or_alloc: no IOMMU group */
                if (group_of(k, devrel(bdf, r)) < 0)
                        return EINVAL;
                /* drivers/vfio/pci/vfio_pci.c vfio_pci_probe: header type 0 only */
                if (startswith(attr(k, bdf, "class", b, sizeof(b)), "0x0604"))
                        return EINVAL;
                /* [NV] the VFs of a vendor-specific vGPU GPU stay on nvidia */
                if (di && di->vendor_vf)
                        return EINVAL;
                /* vfio_pci_core.c vfio_pci_core_register_device: "Cannot bind to PF with
                 * SR-IOV enabled" */
                if (lexists(pathf(p, "%s/%s/sriov_numvfs", k->sys, r)) && num_attr(k, bdf, "sriov_numvfs") > 0)
                        return EBUSY;
                return 0;
        }
        if (streq(drv, "pci-stub"))
                return 0;
        /* [EMU] a device driver's probe rejects hardware outside its ID table */
        return di && streq(di->natural, drv) ? 0 : ENODEV;
}

/* drivers/base/dd.c __device_attach: the matching driver binds when its probe succeeds; a
 * failing probe is not reported. */
static void attach(struct fk *k, const char *bdf)
{
        struct fk_devinfo *di = info(k, bdf);
        char ov[64], p[PATH_MAX];
        const char *drv;

        override_of(k, bdf, ov, sizeof(ov));
        drv = ov[0] ? ov : di ? di->natural : "";
        if (!drv[0] || !lexists(pathf(p, "%s/bus/pci/drivers/%s", k->sys, drv)) || !matches(k, bdf, drv))
                return;
        if (probe(k, bdf, drv) == 0)
                do_bind(k, bdf, drv);
}

/* ---- SR-IOV ------------------------------------------------------------------------------ */

static void config_space(uint8_t cfg[64], uint16_t vendor, uint16_t device, uint32_t cls)
{
        memset(cfg, 0, 64);
        cfg[0] = (uint8_t) vendor;
        cfg[1] = (uint8_t) (vendor >> 8);
        cfg[2] = (uint8_t) device;
        cfg[3] = (uint8_t) (device >> 8);
        cfg[8] = 0xa1;
        cfg[9] = (uint8_t) cls;
        cfg[10] = (uint8_t) (cls >> 8);
        cfg[11] = (uint8_t) (cls >> 16);
}

static struct fk_devinfo *add_info(struct fk *k, const char *bdf)
{
        struct fk_devinfo *di = info(k, bdf);

        if (!di) {
                if (k->n_devs == FK_MAX_DEVS)
                        abort();
                di = &k->devs[k->n_devs++];
        }
        *di = (struct fk_devinfo) { 0 };
        snprintf(di->bdf, sizeof(di->bdf), "%s", bdf);
        return di;
}

static void drop_info(struct fk *k, const char *bdf)
{
        struct fk_devinfo *di = info(k, bdf);

        if (di)
                *di = k->devs[--k->n_devs];
}

/* drivers/pci/iov.c sriov_enable: VF i at routing ID PF + offset + i * stride, each in a group
 * of its own, bound at once when sriov_drivers_autoprobe is 1. */
static void sriov_enable(struct fk *k, const char *pf, struct fk_tmpl *t, unsigned n)
{
        unsigned dom, bus, slot, fn, rid;
        char r[PATH_MAX], pr[PATH_MAX], p[PATH_MAX], vbdf[32], v[64];
        uint8_t cfg[64];

        sscanf(pf, "%x:%x:%x.%x", &dom, &bus, &slot, &fn);
        rid = bus << 8 | slot << 3 | fn;
        devrel(pf, pr);
        for (unsigned i = 0; i < n; i++) {
                unsigned vrid = rid + t->s.offset + i * t->s.stride;
                struct fk_devinfo *di;

                snprintf(vbdf, sizeof(vbdf), "%04x:%02x:%02x.%x", dom, vrid >> 8, (vrid & 0xff) >> 3, vrid & 7);
                devrel(vbdf, r);
                mkdirs(S(k, p, r));
                snprintf(v, sizeof(v), "0x%04x\n", (unsigned) num_attr(k, pf, "vendor"));
                puts_at(pathf(p, "%s/%s/vendor", k->sys, r), v);
                snprintf(v, sizeof(v), "0x%04x\n", t->s.vf_device);
                puts_at(pathf(p, "%s/%s/device", k->sys, r), v);
                snprintf(v, sizeof(v), "0x%06x\n", t->s.vf_class);
                puts_at(pathf(p, "%s/%s/class", k->sys, r), v);
                /* a VF's vendor and device ID read 0xffff (PCIe SR-IOV 3.4.1.1) */
                config_space(cfg, 0xffff, 0xffff, t->s.vf_class);
                put(pathf(p, "%s/%s/config", k->sys, r), cfg, sizeof(cfg));
                puts_at(pathf(p, "%s/%s/driver_override", k->sys, r), "(null)\n");
                puts_at(pathf(p, "%s/%s/numa_node", k->sys, r), "-1\n");
                mklink(k, pathf(p, "%s/physfn", r), pr);
                mklink(k, pathf(p, "%s/virtfn%u", pr, i), r);
                mklink(k, pathf(p, "bus/pci/devices/%s", vbdf), r);
                new_group(k, r, vbdf);
                di = add_info(k, vbdf);
                snprintf(di->natural, sizeof(di->natural), "%s", t->vf_driver);
                snprintf(di->pf, sizeof(di->pf), "%s", pf);
                di->vendor_vf = t->s.n_vgpu > 0;
                di->owns = t->vf_driver[0] && (t->n_types > 0 || t->s.n_vgpu > 0);
                for (size_t m = 0; m < t->n_types; m++) {
                        mkdirs(pathf(p, "%s/%s/mdev_supported_types/%s/devices", k->sys, r, t->types[m]));
                        puts_at(pathf(p, "%s/%s/mdev_supported_types/%s/device_api", k->sys, r, t->types[m]), "vfio-pci\n");
                        puts_at(pathf(p, "%s/%s/mdev_supported_types/%s/create", k->sys, r, t->types[m]), "");
                        set_avail(k, vbdf, t->types[m], t->s.type_avail);
                }
                if (t->s.n_vgpu > 0) {
                        mkdirs(pathf(p, "%s/%s/nvidia", k->sys, r));
                        puts_at(pathf(p, "%s/%s/nvidia/current_vgpu_type", k->sys, r), "0\n");
                        puts_at(pathf(p, "%s/%s/nvidia/creatable_vgpu_types", k->sys, r), NVIDIA_HEADER);
                }
                if (di->owns)
                        stash_owned(k, vbdf);   /* registered once its driver binds */
                attach(k, vbdf);
        }
        snprintf(v, sizeof(v), "%u\n", n);
        puts_at(pathf(p, "%s/%s/sriov_numvfs", k->sys, pr), v);
        recompute_creatable(k, pf);
}

static void sriov_disable(struct fk *k, const char *pf)
{
        unsigned n = (unsigned) num_attr(k, pf, "sriov_numvfs");
        char pr[PATH_MAX], r[PATH_MAX], p[PATH_MAX], vbdf[32];

        devrel(pf, pr);
        for (unsigned i = 0; i < n; i++) {
                _cleanup_strv_free_ char **mdevs = NULL;
                int g;

                link_base(pathf(p, "%s/%s/virtfn%u", k->sys, pr, i), vbdf, sizeof(vbdf));
                mdevs = mdevs_under(k, vbdf);
                for (char **u = mdevs; u && *u; u++)
                        remove_mdev(k, vbdf, *u);
                do_unbind(k, vbdf);
                rmtree(pathf(p, "%s/%s", k->stash, vbdf));
                devrel(vbdf, r);
                g = drop_group_member(k, r, vbdf);
                rmlink(k, pathf(p, "bus/pci/devices/%s", vbdf));
                rmtree(S(k, p, r));
                rmlink(k, pathf(p, "%s/virtfn%u", pr, i));
                drop_info(k, vbdf);
                vfio_sync(k, g);
        }
        puts_at(pathf(p, "%s/%s/sriov_numvfs", k->sys, pr), "0\n");
}

/* ---- the writes -------------------------------------------------------------------------- */

/* kstrtoul with one trailing newline: a decimal (or 0x hex) number and nothing else. */
static int knum(const char *s, unsigned long max, unsigned long *ret)
{
        char *end;

        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        *ret = strtoul(s, &end, 0);
        if (errno || (*end && !streq(end, "\n")))
                return -EINVAL;
        return *ret > max ? -ERANGE : 0;
}

/* The device a value names: sysfs_streq (one trailing newline ignored). */
static bool name_arg(struct fk *k, const char *value, char *bdf, size_t size)
{
        char p[PATH_MAX], r[PATH_MAX];

        snprintf(bdf, size, "%s", value);
        bdf[strcspn(bdf, "\n")] = '\0';
        return is_bdf(bdf) && lexists(S(k, p, devrel(bdf, r)));
}

/* Documentation/ABI/testing/sysfs-bus-pci driver_override; drivers/base/driver.c
 * driver_set_override: the text up to the first newline, empty clears; nothing is (un)bound. */
static int w_override(struct fk *k, const char *bdf, const char *value)
{
        char p[PATH_MAX], r[PATH_MAX], v[4100];

        if (strlen(value) >= 4095)
                return -EINVAL;
        snprintf(v, sizeof(v), "%s", value);
        v[strcspn(v, "\n")] = '\0';
        strcat(v[0] ? v : strcpy(v, "(null)"), "\n");
        return puts_at(pathf(p, "%s/%s/driver_override", k->sys, devrel(bdf, r)), v);
}

/* drivers/base/bus.c unbind_store: the device must be bound to this driver, else -ENODEV. */
static int w_unbind(struct fk *k, const char *drv, const char *value)
{
        char bdf[64], cur[64];

        if (!name_arg(k, value, bdf, sizeof(bdf)) || !streq(driver_of(k, bdf, cur, sizeof(cur)), drv))
                return -ENODEV;
        do_unbind(k, bdf);
        return 0;
}

/* bus.c bind_store: no such device or no match -ENODEV; dd.c __driver_probe_device: bound
 * already -EBUSY; the probe's own errno. */
static int w_bind(struct fk *k, const char *drv, const char *value)
{
        char bdf[64], cur[64];
        int e;

        if (!name_arg(k, value, bdf, sizeof(bdf)) || !matches(k, bdf, drv))
                return -ENODEV;
        if (driver_of(k, bdf, cur, sizeof(cur))[0])
                return -EBUSY;
        e = probe(k, bdf, drv);
        if (e)
                return -e;
        do_bind(k, bdf, drv);
        return 0;
}

/* bus.c drivers_probe_store: -ENODEV for no such device; a bound device is left alone; success
 * even when nothing binds. */
static int w_probe(struct fk *k, const char *value)
{
        char bdf[64], cur[64];

        if (!name_arg(k, value, bdf, sizeof(bdf)))
                return -ENODEV;
        if (!driver_of(k, bdf, cur, sizeof(cur))[0])
                attach(k, bdf);
        return 0;
}

/* drivers/pci/iov.c sriov_numvfs_store. */
static int w_numvfs(struct fk *k, const char *pf, const char *value)
{
        struct fk_tmpl *t = tmpl_of(k, pf);
        unsigned long n, cur = num_attr(k, pf, "sriov_numvfs");
        char drv[64];
        int r = knum(value, 0xffff, &n);

        if (r < 0)
                return -EINVAL;
        if (n > num_attr(k, pf, "sriov_totalvfs"))
                return -ERANGE;
        if (n == cur)
                return 0;
        if (!driver_of(k, pf, drv, sizeof(drv))[0])
                return -ENOENT;
        if (streq(drv, "vfio-pci") && n)        /* vfio_pci.c: enable_sriov off */
                return -ENOENT;
        if (n == 0) {
                sriov_disable(k, pf);
                return 0;
        }
        if (cur)
                return -EBUSY;
        if (!t)
                return -ENOSYS;                 /* [EMU] no VF template */
        sriov_enable(k, pf, t, (unsigned) n);
        return 0;
}

/* drivers/vfio/mdev/mdev_sysfs.c create_store, mdev_core.c mdev_device_create. */
static int w_create(struct fk *k, const char *parent, const char *type, const char *value)
{
        char u[64], p[PATH_MAX];

        snprintf(u, sizeof(u), "%s", value);
        u[strcspn(u, "\n")] = '\0';
        if (!is_uuid(u))
                return -EINVAL;
        for (char *c = u; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        if (lexists(pathf(p, "%s/bus/mdev/devices/%s", k->sys, u)))
                return -EEXIST;
        if (get_avail(k, parent, type) <= 0)
                return -EUSERS;
        make_mdev(k, parent, type, u);
        return 0;
}

/* mdev_sysfs.c remove_store: a number, 0 does nothing. */
static int w_remove(struct fk *k, const char *parent, const char *uuid, const char *value)
{
        unsigned long n;

        if (knum(value, ULONG_MAX, &n) < 0)
                return -EINVAL;
        if (n)
                remove_mdev(k, parent, uuid);
        return 0;
}

/* [NV] nvidia/current_vgpu_type: a creatable id sets it, 0 clears, another id while one is set
 * -EBUSY, one not creatable now -EINVAL. */
static int w_vgpu(struct fk *k, const char *vf, const char *value)
{
        struct fk_devinfo *di = info(k, vf);
        char r[PATH_MAX], p[PATH_MAX], cur[32], list[4096], want[32];
        unsigned long n;

        if (knum(value, 0xffffffff, &n) < 0)
                return -EINVAL;
        devrel(vf, r);
        get(pathf(p, "%s/%s/nvidia/current_vgpu_type", k->sys, r), cur, sizeof(cur));
        if (n == 0) {
                puts_at(p, "0\n");
        } else if (atoi(cur) != 0) {
                return -EBUSY;
        } else {
                get(pathf(p, "%s/%s/nvidia/creatable_vgpu_types", k->sys, r), list, sizeof(list));
                snprintf(want, sizeof(want), "\n%-6lu:", n);
                if (!strstr(list, want))
                        return -EINVAL;
                snprintf(want, sizeof(want), "%lu\n", n);
                puts_at(pathf(p, "%s/%s/nvidia/current_vgpu_type", k->sys, r), want);
        }
        if (di && di->pf[0])
                recompute_creatable(k, di->pf);
        return 0;
}

/* Split a resolved path "devices/pciD:00/BDF/REST" into BDF and REST. */
static bool dev_path(const char *crel, char *bdf, size_t size, const char **rest)
{
        const char *s = startswith(crel, "devices/"), *e;

        if (!s || !(s = strchr(s, '/')))
                return false;
        s++;
        e = strchr(s, '/');
        if (!e || (size_t) (e - s) >= size)
                return false;
        snprintf(bdf, size, "%.*s", (int) (e - s), s);
        *rest = e + 1;
        return is_bdf(bdf);
}

static int dispatch(struct fk *k, const char *crel, const char *value)
{
        char bdf[64], a[128], b[128];
        const char *rest, *s;

        if (streq(crel, "bus/pci/drivers_probe"))
                return w_probe(k, value);
        if ((s = startswith(crel, "bus/pci/drivers/")) && sscanf(s, "%127[^/]/%127s", a, b) == 2) {
                if (streq(b, "unbind"))
                        return w_unbind(k, a, value);
                if (streq(b, "bind"))
                        return w_bind(k, a, value);
                return -EOPNOTSUPP;     /* new_id, remove_id: not used by gpuhooks */
        }
        if (!dev_path(crel, bdf, sizeof(bdf), &rest))
                return -EOPNOTSUPP;
        if (streq(rest, "driver_override"))
                return w_override(k, bdf, value);
        if (streq(rest, "sriov_numvfs"))
                return w_numvfs(k, bdf, value);
        if (streq(rest, "nvidia/current_vgpu_type"))
                return w_vgpu(k, bdf, value);
        if ((s = startswith(rest, "mdev_supported_types/")) && sscanf(s, "%127[^/]/%127s", a, b) == 2 &&
            streq(b, "create"))
                return w_create(k, bdf, a, value);
        if (sscanf(rest, "%127[^/]/%127s", a, b) == 2 && is_uuid(a) && streq(b, "remove"))
                return w_remove(k, bdf, a, value);
        return -EOPNOTSUPP;     /* [EMU] writable in the kernel, not emulated: a test notices */
}

/* The device lock a write's store() takes (tests/emu/README.md, "device_lock"), "" none. */
static char *lock_of(struct fk *k, const char *crel, const char *value, char *buf, size_t size)
{
        char bdf[64], a[128], cur[64];
        const char *rest, *s;

        buf[0] = '\0';
        if (streq(crel, "bus/pci/drivers_probe")) {
                if (name_arg(k, value, bdf, sizeof(bdf)) && !driver_of(k, bdf, cur, sizeof(cur))[0])
                        snprintf(buf, size, "pci-%s", bdf);
        } else if ((s = startswith(crel, "bus/pci/drivers/"))) {
                if (name_arg(k, value, bdf, sizeof(bdf)) && (strstr(s, "/unbind") || strstr(s, "/bind")))
                        snprintf(buf, size, "pci-%s", bdf);
        } else if (dev_path(crel, bdf, sizeof(bdf), &rest)) {
                if (streq(rest, "driver_override") || streq(rest, "sriov_numvfs"))
                        snprintf(buf, size, "pci-%s", bdf);
                else if (sscanf(rest, "%127[^/]/", a) == 1 && is_uuid(a) && strstr(rest, "/remove"))
                        snprintf(buf, size, "mdev-%s", a);
        }
        return buf;
}

/* ---- faults, flights and the log --------------------------------------------------------- */

/* The path the library names: bus/pci/devices/BDF/FILE, bus/mdev/devices/UUID/FILE. */
static char *alias_of(const char *crel, char *buf, size_t size)
{
        char bdf[64], a[128];
        const char *rest;

        if (!dev_path(crel, bdf, sizeof(bdf), &rest))
                snprintf(buf, size, "%s", crel);
        else if (sscanf(rest, "%127[^/]", a) == 1 && is_uuid(a) && rest[36] == '/')
                snprintf(buf, size, "bus/mdev/devices/%s", rest);
        else
                snprintf(buf, size, "bus/pci/devices/%s/%s", bdf, rest);
        return buf;
}

static struct fk_write *log_write(struct fk *k, const char *alias, const char *value)
{
        struct fk_write *w;

        if (k->n_log == k->cap_log) {
                size_t cap = k->cap_log ? k->cap_log * 2 : 64;
                struct fk_write *n = reallocarray(k->log, cap, sizeof(*n));
                if (!n)
                        abort();
                k->log = n;
                k->cap_log = cap;
        }
        w = &k->log[k->n_log++];
        *w = (struct fk_write) { 0 };
        snprintf(w->path, sizeof(w->path), "%s", alias);
        snprintf(w->value, sizeof(w->value), "%s", value);
        return w;
}

static struct fk_rule *match_rule(struct fk *k, bool hang, const char *crel, const char *alias, const char *value)
{
        for (size_t i = 0; i < k->n_rules; i++) {
                struct fk_rule *r = &k->rules[i];

                if (r->hang != hang || r->times == 0)
                        continue;
                if (fnmatch(r->path, alias, 0) != 0 && fnmatch(r->path, crel, 0) != 0)
                        continue;
                if (r->value[0] && fnmatch(r->value, value, 0) != 0)
                        continue;
                if (r->times > 0)
                        r->times--;
                return r;
        }
        return NULL;
}

static bool lock_in_flight(const struct fk *k, const char *lock)
{
        for (size_t i = 0; lock[0] && i < k->n_flights; i++)
                if (streq(k->flights[i].lock, lock))
                        return true;
        return false;
}

static void fly(struct fk *k, const char *crel, const char *value, const char *lock, bool queued,
                enum fk_hang_end end)
{
        struct fk_flight *f;

        if (k->n_flights == FK_MAX_FLIGHTS)
                abort();
        f = &k->flights[k->n_flights++];
        *f = (struct fk_flight) { .queued = queued, .end = end };
        snprintf(f->crel, sizeof(f->crel), "%s", crel);
        snprintf(f->value, sizeof(f->value), "%s", value);
        snprintf(f->lock, sizeof(f->lock), "%s", lock);
}

static int fk_do_write(struct fk *k, const char *crel, const char *value)
{
        char alias[PATH_MAX], lock[96];
        struct fk_write *w;
        struct fk_rule *rule;

        alias_of(crel, alias, sizeof(alias));
        w = log_write(k, alias, value);
        lock_of(k, crel, value, lock, sizeof(lock));
        if (k->nth >= 0 && k->counted++ == k->nth) {
                k->nth = -1;
                if (!k->nth_hang)
                        return w->result = -k->nth_err;
                fly(k, crel, value, lock, lock_in_flight(k, lock), k->nth_end);
                return w->result = -ETIMEDOUT;
        }
        if ((rule = match_rule(k, true, crel, alias, value))) {
                /* held in its store(): the writer gives up at its deadline */
                fly(k, crel, value, lock, lock_in_flight(k, lock), rule->end);
                return w->result = -ETIMEDOUT;
        }
        if (lock_in_flight(k, lock)) {
                /* waits for the device's lock until the deadline, and goes on waiting */
                fly(k, crel, value, lock, true, FK_HANG_LANDS);
                return w->result = -ETIMEDOUT;
        }
        if ((rule = match_rule(k, false, crel, alias, value)))
                return w->result = -rule->err;
        return w->result = dispatch(k, crel, value);
}

/* Writes in flight end: a held one as its rule says (a stuck one only with @all), one queued
 * behind a lock when no held write keeps that lock any more. */
static void land(struct fk *k, bool all)
{
        size_t kept = 0;

        for (size_t i = 0; i < k->n_flights; i++) {
                struct fk_flight f = k->flights[i];
                bool keep;

                if (f.queued) {
                        keep = false;
                        for (size_t j = 0; j < kept && !keep; j++)
                                keep = streq(k->flights[j].lock, f.lock);
                } else
                        keep = f.end == FK_HANG_STUCK && !all;
                if (keep) {
                        k->flights[kept++] = f;
                        continue;
                }
                if (f.queued || f.end != FK_HANG_FAILS)
                        dispatch(k, f.crel, f.value);
        }
        k->n_flights = kept;
}

/* ---- the writer of common/sysfs.h, wrapped (-Wl,--wrap) ---------------------------------- */

struct gpuh_writer;
int __wrap_gpuh_writer_new(int dirfd, struct gpuh_writer **ret);
int __wrap_gpuh_writer_write(struct gpuh_writer *w, const char *rel, const char *value, int timeout_ms);
int __wrap_gpuh_writer_write_at(struct gpuh_writer *w, int dirfd, const char *rel, const char *value, int timeout_ms);
int __wrap_gpuh_writer_settle(struct gpuh_writer *w, int timeout_ms);
struct gpuh_writer *__wrap_gpuh_writer_free(struct gpuh_writer *w);

static int writer_root = -1;    /* the root fd of the last writer made */
static char writer_token;

int __wrap_gpuh_writer_new(int dirfd, struct gpuh_writer **ret)
{
        writer_root = dirfd;
        *ret = (struct gpuh_writer *) &writer_token;
        return 0;
}

int __wrap_gpuh_writer_write(struct gpuh_writer *w, const char *rel, const char *value, int timeout_ms)
{
        return __wrap_gpuh_writer_write_at(w, -1, rel, value, timeout_ms);
}

/* A write to the file @dir/@rel, as open(2) and write(2) of it reach the kernel. */
static int write_path(struct fk *k, const char *dir, const char *rel, const char *value)
{
        char full[PATH_MAX + 256], canon[PATH_MAX], sysreal[PATH_MAX];
        size_t l;

        snprintf(full, sizeof(full), "%s/%s", dir, rel);
        /* open(2) of a missing attribute: the kernel creates nothing */
        if (!realpath(full, canon) || !realpath(k->sys, sysreal)) {
                int e = -errno;
                log_write(k, rel, value)->result = e;
                return e;
        }
        l = strlen(sysreal);
        if (strncmp(canon, sysreal, l) != 0 || canon[l] != '/')
                return -EXDEV;  /* not under the fake host: a test's mistake */
        return fk_do_write(k, canon + l + 1, value);
}

int __wrap_gpuh_writer_write_at(struct gpuh_writer *w, int dirfd, const char *rel, const char *value, int timeout_ms)
{
        struct fk *k = fk_current;
        char fdp[64], dir[PATH_MAX];
        ssize_t n;

        if (!k)
                return -ENXIO;
        snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", dirfd < 0 ? writer_root : dirfd);
        n = readlink(fdp, dir, sizeof(dir) - 1);
        if (n < 0)
                return -EBADF;
        dir[n] = '\0';
        return write_path(k, dir, rel, value);
}

int __wrap_gpuh_writer_settle(struct gpuh_writer *w, int timeout_ms)
{
        struct fk *k = fk_current;

        if (!k)
                return 0;
        land(k, false);
        return k->n_flights > 0 ? -ETIMEDOUT : 0;
}

struct gpuh_writer *__wrap_gpuh_writer_free(struct gpuh_writer *w)
{
        return NULL;
}

/* ---- the API ----------------------------------------------------------------------------- */

int fk_new(struct fk **ret)
{
        const char *base = getenv("GPUH_FK_TMPDIR");
        char tmpl[PATH_MAX], p[PATH_MAX];
        struct fk *k;
        int r;

        if (fk_current)
                return -EBUSY;
        /* tmpfs: a host is hundreds of files, made and removed for every test case */
        if (!base || !*base)
                base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(tmpl, sizeof(tmpl), "%s/gpuh-fk-XXXXXX", base);
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->nth = -1;
        if (!mkdtemp(tmpl)) {
                free(k);
                return -errno;
        }
        k->dir = strdup(tmpl);
        if (asprintf(&k->sys, "%s/sys", tmpl) < 0 || asprintf(&k->dev, "%s/dev", tmpl) < 0 ||
            asprintf(&k->proc, "%s/proc", tmpl) < 0 || asprintf(&k->state, "%s/state", tmpl) < 0 ||
            asprintf(&k->stash, "%s/stash", tmpl) < 0) {
                fk_current = k;
                fk_free(k);
                return -ENOMEM;
        }
        fk_current = k;
        r = mkdirs(pathf(p, "%s/bus/pci/devices", k->sys));
        if (r == 0)
                r = mkdirs(pathf(p, "%s/kernel/iommu_groups", k->sys));
        if (r == 0)
                r = puts_at(pathf(p, "%s/bus/pci/drivers_probe", k->sys), "");
        if (r == 0)
                r = puts_at(pathf(p, "%s/bus/pci/drivers_autoprobe", k->sys), "1\n");
        if (r == 0)
                r = ensure_driver(k, "vfio-pci");
        if (r == 0)
                r = ensure_driver(k, "pcieport");
        if (r == 0)
                r = mkdirs(pathf(p, "%s/vfio", k->dev));
        if (r == 0)
                r = puts_at(pathf(p, "%s/vfio/vfio", k->dev), "");
        if (r == 0)
                r = mkdirs(k->proc);
        if (r == 0)
                r = mkdirs(k->stash);
        if (r < 0) {
                fk_free(k);
                return r;
        }
        *ret = k;
        return 0;
}

struct fk *fk_free(struct fk *k)
{
        if (!k)
                return NULL;
        if (k->dir && !getenv("GPUH_TEST_KEEP"))
                rmtree(k->dir);
        free(k->dir);
        free(k->sys);
        free(k->dev);
        free(k->proc);
        free(k->state);
        free(k->stash);
        free(k->log);
        if (fk_current == k)
                fk_current = NULL;
        free(k);
        return NULL;
}

const char *fk_sys(const struct fk *k) { return k->sys; }
const char *fk_dev(const struct fk *k) { return k->dev; }
const char *fk_proc(const struct fk *k) { return k->proc; }
const char *fk_state(const struct fk *k) { return k->state; }
const char *fk_dir(const struct fk *k) { return k->dir; }

int fk_add_fn(struct fk *k, const struct fk_fn *f)
{
        struct fk_devinfo *di;
        char r[PATH_MAX], p[PATH_MAX], t[PATH_MAX], v[64];
        uint8_t cfg[64];
        int e;

        if (!is_bdf(f->bdf))
                return -EINVAL;
        if (info(k, f->bdf))
                return -EEXIST;
        devrel(f->bdf, r);
        if ((e = mkdirs(S(k, p, r))) < 0)
                return e;
        snprintf(v, sizeof(v), "0x%04x\n", f->vendor);
        puts_at(pathf(p, "%s/%s/vendor", k->sys, r), v);
        puts_at(pathf(p, "%s/%s/subsystem_vendor", k->sys, r), v);
        snprintf(v, sizeof(v), "0x%04x\n", f->device);
        puts_at(pathf(p, "%s/%s/device", k->sys, r), v);
        puts_at(pathf(p, "%s/%s/subsystem_device", k->sys, r), v);
        snprintf(v, sizeof(v), "0x%06x\n", f->class_code);
        puts_at(pathf(p, "%s/%s/class", k->sys, r), v);
        puts_at(pathf(p, "%s/%s/revision", k->sys, r), "0xa1\n");
        puts_at(pathf(p, "%s/%s/numa_node", k->sys, r), "-1\n");
        config_space(cfg, f->vendor, f->device, f->class_code);
        put(pathf(p, "%s/%s/config", k->sys, r), cfg, sizeof(cfg));
        snprintf(v, sizeof(v), "%s\n", f->override ? f->override : "(null)");
        puts_at(pathf(p, "%s/%s/driver_override", k->sys, r), v);
        if ((e = mklink(k, pathf(p, "bus/pci/devices/%s", f->bdf), r)) < 0)
                return e;
        if (f->group >= 0) {
                mkdirs(pathf(p, "%s/kernel/iommu_groups/%d/devices", k->sys, f->group));
                puts_at(pathf(p, "%s/kernel/iommu_groups/%d/type", k->sys, f->group), "DMA\n");
                mklink(k, pathf(p, "kernel/iommu_groups/%d/devices/%s", f->group, f->bdf), r);
                mklink(k, pathf(p, "%s/iommu_group", r), pathf(t, "kernel/iommu_groups/%d", f->group));
        }
        di = add_info(k, f->bdf);
        snprintf(di->natural, sizeof(di->natural), "%s", f->natural ? f->natural : f->driver ? f->driver : "");
        di->owns = f->owns_types;
        if ((e = ensure_driver(k, f->driver)) < 0 || (e = ensure_driver(k, di->natural)) < 0)
                return e;
        if (f->driver) {
                /* bound before the types were added: nothing to restore */
                bool owns = di->owns;
                di->owns = false;
                do_bind(k, f->bdf, f->driver);
                di->owns = owns;
        }
        return 0;
}

int fk_add_mdev_type(struct fk *k, const char *bdf, const char *type, const char *name, int avail)
{
        char r[PATH_MAX], p[PATH_MAX];
        int e;

        devrel(bdf, r);
        if ((e = mkdirs(pathf(p, "%s/%s/mdev_supported_types/%s/devices", k->sys, r, type))) < 0)
                return e;
        puts_at(pathf(p, "%s/%s/mdev_supported_types/%s/device_api", k->sys, r, type), "vfio-pci\n");
        puts_at(pathf(p, "%s/%s/mdev_supported_types/%s/create", k->sys, r, type), "");
        if (name) {
                char v[128];
                snprintf(v, sizeof(v), "%s\n", name);
                puts_at(pathf(p, "%s/%s/mdev_supported_types/%s/name", k->sys, r, type), v);
        }
        set_avail(k, bdf, type, avail);
        if ((e = mkdirs(pathf(p, "%s/bus/mdev/devices", k->sys))) < 0)
                return e;
        return mkdirs(pathf(p, "%s/bus/mdev/drivers/" MDEV_DRIVER, k->sys));
}

int fk_add_mdev(struct fk *k, const char *parent, const char *type, const char *uuid)
{
        char r[PATH_MAX], d[PATH_MAX];

        if (!info(k, parent))
                return -ENODEV;
        return fk_do_write(k, pathf(r, "%s/mdev_supported_types/%s/create", devrel(parent, d), type), uuid);
}

int fk_kwrite(struct fk *k, const char *rel, const char *value)
{
        return write_path(k, k->sys, rel, value);
}

int fk_sriov(struct fk *k, const char *pf, const struct fk_sriov *s)
{
        struct fk_tmpl *t;
        char r[PATH_MAX], p[PATH_MAX], v[64];
        int e;

        if (!info(k, pf))
                return -ENODEV;
        if (k->n_tmpl == FK_MAX_TMPL)
                return -E2BIG;
        t = &k->tmpl[k->n_tmpl++];
        *t = (struct fk_tmpl) { .s = *s };
        snprintf(t->pf, sizeof(t->pf), "%s", pf);
        snprintf(t->vf_driver, sizeof(t->vf_driver), "%s", s->vf_driver ? s->vf_driver : "");
        t->s.vf_driver = NULL;
        for (const char *const *x = s->types; x && *x && t->n_types < FK_MAX_TYPES; x++)
                snprintf(t->types[t->n_types++], sizeof(t->types[0]), "%s", *x);
        t->s.types = NULL;
        t->s.n_vgpu = s->n_vgpu < FK_MAX_VGPU ? s->n_vgpu : FK_MAX_VGPU;
        for (size_t i = 0; i < t->s.n_vgpu; i++) {
                t->vgpu[i] = s->vgpu[i];
                snprintf(t->vgpu_names[i], sizeof(t->vgpu_names[i]), "%s", s->vgpu[i].name);
                t->vgpu[i].name = t->vgpu_names[i];
        }
        t->s.vgpu = NULL;
        if ((e = ensure_driver(k, t->vf_driver)) < 0)
                return e;
        if (t->n_types > 0 && ((e = mkdirs(pathf(p, "%s/bus/mdev/devices", k->sys))) < 0 ||
                               (e = mkdirs(pathf(p, "%s/bus/mdev/drivers/" MDEV_DRIVER, k->sys))) < 0))
                return e;
        devrel(pf, r);
        snprintf(v, sizeof(v), "%u\n", s->total);
        puts_at(pathf(p, "%s/%s/sriov_totalvfs", k->sys, r), v);
        puts_at(pathf(p, "%s/%s/sriov_numvfs", k->sys, r), "0\n");
        snprintf(v, sizeof(v), "%u\n", s->offset);
        puts_at(pathf(p, "%s/%s/sriov_offset", k->sys, r), v);
        snprintf(v, sizeof(v), "%u\n", s->stride);
        puts_at(pathf(p, "%s/%s/sriov_stride", k->sys, r), v);
        snprintf(v, sizeof(v), "%x\n", s->vf_device);
        puts_at(pathf(p, "%s/%s/sriov_vf_device", k->sys, r), v);
        puts_at(pathf(p, "%s/%s/sriov_drivers_autoprobe", k->sys, r), "1\n");
        if (s->enabled)
                sriov_enable(k, pf, t, s->enabled);
        return 0;
}

int fk_hold(struct fk *k, int pid, const char *comm, const char *node)
{
        char p[PATH_MAX], n[PATH_MAX], c[128];
        int e;

        pathf(n, "%s/%s", k->dev, node);
        if (!lexists(n) && (e = puts_at(n, "")) < 0)
                return e;
        if ((e = mkdirs(pathf(p, "%s/%d/fd", k->proc, pid))) < 0)
                return e;
        snprintf(c, sizeof(c), "%s\n", comm);
        puts_at(pathf(p, "%s/%d/comm", k->proc, pid), c);
        for (int fd = 3;; fd++)
                if (!lexists(pathf(p, "%s/%d/fd/%d", k->proc, pid, fd)))
                        return symlink(n, p) < 0 ? -errno : 0;
}

void fk_unhold(struct fk *k, int pid)
{
        char p[PATH_MAX];

        rmtree(pathf(p, "%s/%d", k->proc, pid));
}

static void add_rule(struct fk *k, const char *path, const char *value, bool hang, enum fk_hang_end end, int err,
                     int times)
{
        struct fk_rule *r;

        if (k->n_rules == FK_MAX_RULES)
                abort();
        r = &k->rules[k->n_rules++];
        *r = (struct fk_rule) { .hang = hang, .end = end, .err = err, .times = times };
        snprintf(r->path, sizeof(r->path), "%s", path);
        snprintf(r->value, sizeof(r->value), "%s", value ? value : "");
}

void fk_fail(struct fk *k, const char *path, const char *value, int err, int times)
{
        add_rule(k, path, value, false, FK_HANG_LANDS, err, times);
}

void fk_fail_nth(struct fk *k, int n, int err)
{
        k->nth = n;
        k->nth_err = err;
        k->nth_hang = false;
        k->counted = 0;
}

void fk_hang_nth(struct fk *k, int n, enum fk_hang_end end)
{
        k->nth = n;
        k->nth_hang = true;
        k->nth_end = end;
        k->counted = 0;
}

void fk_hang(struct fk *k, const char *path, const char *value, enum fk_hang_end end, int times)
{
        add_rule(k, path, value, true, end, 0, times);
}

void fk_clear_faults(struct fk *k)
{
        k->n_rules = 0;
        k->nth = -1;
}

void fk_land(struct fk *k)
{
        land(k, true);
}

size_t fk_in_flight(const struct fk *k)
{
        return k->n_flights;
}

const struct fk_write *fk_writes(const struct fk *k, size_t *n)
{
        *n = k->n_log;
        return k->log;
}

void fk_forget_writes(struct fk *k)
{
        k->n_log = 0;
}

size_t fk_count_writes(const struct fk *k, const char *path, const char *value)
{
        size_t n = 0;

        for (size_t i = 0; i < k->n_log; i++)
                n += fnmatch(path, k->log[i].path, 0) == 0 && (!value || fnmatch(value, k->log[i].value, 0) == 0);
        return n;
}

/* ---- snapshots --------------------------------------------------------------------------- */

static char **snap_lines;
static size_t snap_n, snap_cap;
static size_t snap_skip;        /* length of the directory walked, with its '/' */
static const char *snap_prefix;

static int snap_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        char *line = NULL, t[PATH_MAX];
        const char *rel = strlen(path) > snap_skip ? path + snap_skip : "";
        int r = -1;

        if (flag == FTW_SL) {
                ssize_t n = readlink(path, t, sizeof(t) - 1);
                t[n > 0 ? n : 0] = '\0';
                r = asprintf(&line, "%s/%s -> %s", snap_prefix, rel, t);
        } else if (flag == FTW_D || flag == FTW_DP) {
                r = asprintf(&line, "%s/%s/", snap_prefix, rel);
        } else if (flag == FTW_F) {
                unsigned char buf[4096];
                char shown[3 * sizeof(buf) + 1], *o = shown;
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

                for (ssize_t i = 0; i < n; i++)
                        o += isprint(buf[i]) && buf[i] != '\\' ? sprintf(o, "%c", buf[i]) : sprintf(o, "\\%02x", buf[i]);
                *o = '\0';
                r = asprintf(&line, "%s/%s: %s", snap_prefix, rel, shown);
        }
        if (r < 0)
                return 0;
        if (snap_n == snap_cap) {
                size_t cap = snap_cap ? snap_cap * 2 : 1024;
                char **n = reallocarray(snap_lines, cap, sizeof(char *));
                if (!n)
                        abort();
                snap_lines = n;
                snap_cap = cap;
        }
        snap_lines[snap_n++] = line;
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

char *fk_snapshot(const struct fk *k)
{
        const char *const roots[][2] = { { k->sys, "sys" }, { k->dev, "dev" } };
        char *out = NULL;
        size_t len = 0;
        FILE *f;

        snap_lines = NULL;
        snap_n = snap_cap = 0;
        for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
                snap_skip = strlen(roots[i][0]) + 1;
                snap_prefix = roots[i][1];
                nftw(roots[i][0], snap_cb, 16, FTW_PHYS);
        }
        qsort(snap_lines, snap_n, sizeof(char *), cmp_str);
        f = open_memstream(&out, &len);
        for (size_t i = 0; i < snap_n; i++) {
                if (f)
                        fprintf(f, "%s\n", snap_lines[i]);
                free(snap_lines[i]);
        }
        free(snap_lines);
        snap_lines = NULL;
        if (!f || fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

bool fk_snapshot_same(const char *a, const char *b, char *buf, size_t size)
{
        const char *x = a, *y = b;

        while (*x && *y) {
                size_t lx = strcspn(x, "\n"), ly = strcspn(y, "\n");
                if (lx != ly || memcmp(x, y, lx) != 0)
                        break;
                x += lx + (x[lx] == '\n');
                y += ly + (y[ly] == '\n');
        }
        if (!*x && !*y)
                return true;
        snprintf(buf, size, "before: %.*s\n after: %.*s", (int) strcspn(x, "\n"), x, (int) strcspn(y, "\n"), y);
        return false;
}

char *fk_read(const struct fk *k, const char *rel, char *buf, size_t size)
{
        char p[PATH_MAX];

        get(S(k, p, rel), buf, size);
        return buf;
}

char *fk_driver(const struct fk *k, const char *bdf, char *buf, size_t size)
{
        char p[PATH_MAX];

        return link_base(pathf(p, "%s/bus/pci/devices/%s/driver", k->sys, bdf), buf, size);
}

bool fk_exists(const struct fk *k, const char *rel)
{
        char p[PATH_MAX];

        return access(S(k, p, rel), F_OK) == 0;
}

bool fk_dev_exists(const struct fk *k, const char *rel)
{
        char p[PATH_MAX];

        return lexists(pathf(p, "%s/%s", k->dev, rel));
}

int fk_poke(struct fk *k, const char *rel, const void *data, size_t len)
{
        char p[PATH_MAX];

        return put(S(k, p, rel), data, len);
}
