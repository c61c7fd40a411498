/* SPDX-License-Identifier: Apache-2.0 */
/* inventory.c: scanning sysfs for GPUs and everything hanging off them. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "log.h"
#include "strtable.h"
#include "sysfs.h"

#define VENDOR_NVIDIA 0x10de
#define VENDOR_AMD    0x1002
#define VENDOR_INTEL  0x8086

/* indexed by bit number: GPUH_BLOCK_BOOT_VGA is 1 << 0 */
static const char *const block_table[_GPUH_BLOCK_MAX] = {
        "boot-vga", "vfs-enabled", "mdevs-created", "no-iommu-group", "iommu-group-shared", "excluded", "layout",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_block, unsigned, block_table, "unknown")

static const char *const role_table[_GPUH_ROLE_MAX] = {
        [GPUH_ROLE_GPU] = "gpu",
        [GPUH_ROLE_COMPANION] = "companion",
        [GPUH_ROLE_BRIDGE] = "bridge",
        [GPUH_ROLE_FOREIGN] = "foreign",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_role, enum gpuh_member_role, role_table, "foreign")

static bool class_is_display(uint32_t class_code)
{
        return (class_code >> 16) == 0x03;
}

static bool class_is_accel(uint32_t class_code)
{
        return (class_code >> 8) == 0x1200;
}

bool gpuh_is_gpu(const struct gpuh_config *cfg, uint16_t vendor, uint32_t class_code)
{
        if (!class_is_display(class_code) && !class_is_accel(class_code))
                return false;
        switch (vendor) {
        case VENDOR_NVIDIA:
        case VENDOR_AMD:
                return true;
        case VENDOR_INTEL:
                return class_is_display(class_code);
        default:
                return gpuh_config_is_extra_vendor(cfg, vendor);
        }
}

static void vf_clear(struct gpuh_vf *vf)
{
        gpuh_pci_dev_free(vf->dev);
        free(vf->device_name);
        gpuh_mdev_types_free(vf->types, vf->n_types);
        gpuh_vendor_vgpu_clear(&vf->vendor_vgpu);
}

static void gpu_clear(struct gpuh_gpu *g)
{
        gpuh_pci_dev_free(g->dev);
        free(g->vendor_name);
        free(g->device_name);
        free(g->class_name);
        gpuh_mdev_types_free(g->types, g->n_types);
        for (size_t i = 0; i < g->n_vfs; i++)
                vf_clear(&g->vfs[i]);
        free(g->vfs);
        free(g->vgpus);
        for (size_t i = 0; i < g->n_members; i++)
                gpuh_pci_dev_free(g->members[i].dev);
        free(g->members);
        gpuh_warnings_clear(&g->warnings);
}

struct gpuh_inventory *gpuh_inventory_free(struct gpuh_inventory *inv)
{
        if (!inv)
                return NULL;
        for (size_t i = 0; i < inv->n_gpus; i++)
                gpu_clear(&inv->gpus[i]);
        free(inv->gpus);
        gpuh_mdevs_free(inv->mdevs, inv->n_mdevs);
        gpuh_vgpu_types_free(inv->known_types, inv->n_known_types);
        gpuh_warnings_clear(&inv->warnings);
        gpuh_nvml_info_free(inv->nvml);
        free(inv->quarantined);
        gpuh_claims_free(inv->claims, inv->n_claims);
        free(inv);
        return NULL;
}

/* kernel/iommu_groups as sorted numbers: a device's group link must name one of them. */
struct groups {
        int *v;
        size_t n;
};

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *) a, y = *(const int *) b;

        return x < y ? -1 : x > y;
}

static void check_group(struct gpuh_warnings *w, const struct groups *gs, struct gpuh_pci_dev *d)
{
        if (d->iommu_group < 0 || (gs->n && bsearch(&d->iommu_group, gs->v, gs->n, sizeof(int), cmp_int)))
                return;
        gpuh_warn(w, "%s: iommu_group: dangling link to group %d", d->name, d->iommu_group);
        d->iommu_group = -1;
}

static const struct gpuh_mdev_type *find_type(const struct gpuh_mdev_type *t, size_t n, const char *id)
{
        for (size_t i = 0; id && i < n; i++)
                if (streq(t[i].type_id, id))
                        return &t[i];
        return NULL;
}

static int read_vfs(int root_fd, const struct groups *gs, struct gpuh_gpu *g)
{
        _cleanup_free_ struct gpuh_pci_addr *addrs = NULL;
        _cleanup_free_ int *idx = NULL;
        struct gpuh_warnings *w = &g->warnings;
        const struct gpuh_mdev_type *tmpl = NULL;
        size_t n_tmpl = 0;
        int n;

        n = gpuh_pci_dev_list_vfs(root_fd, &g->dev->addr, w, &addrs, &idx);
        if (n == -ENOMEM)
                return n;
        if (n <= 0)
                return 0;
        g->vfs = calloc((size_t) n, sizeof(*g->vfs));
        if (!g->vfs)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                struct gpuh_vf *vf = &g->vfs[g->n_vfs];
                unsigned fill = GPUH_PCI_FILL_DRIVER | GPUH_PCI_FILL_IOMMU;
                int r;

                /* A VF's vendor is its PF's, its device id the PF's sriov_vf_device, and it
                 * sits on the PF's NUMA node (drivers/pci/iov.c, pci_iov_add_virtfn()): read
                 * per VF only what can differ, which matters with hundreds of VFs. */
                if (g->dev->sriov_vf_device < 0)
                        fill |= GPUH_PCI_FILL_IDENT;
                r = gpuh_pci_dev_read(root_fd, &addrs[i], fill, w, &vf->dev);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        char a[GPUH_PCI_ADDR_MAX];
                        gpuh_warn(w, "%s: VF %s: %s", g->dev->name, gpuh_pci_addr_format(&addrs[i], a),
                                  r == -EBADMSG ? "unreadable vendor or device" : strerror(-r));
                        continue;
                }
                if (!(fill & GPUH_PCI_FILL_IDENT)) {
                        vf->dev->vendor_id = g->dev->vendor_id;
                        vf->dev->device_id = (uint16_t) g->dev->sriov_vf_device;
                }
                vf->dev->numa_node = g->dev->numa_node;
                g->n_vfs++;
                check_group(w, gs, vf->dev);
                vf->index = idx[i];
                r = gpuh_mdev_types_read(root_fd, &vf->dev->addr, tmpl, n_tmpl, w, &vf->types);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        gpuh_warn(w, "%s: mdev_supported_types: %s", vf->dev->name, strerror(-r));
                else
                        vf->n_types = (size_t) r;
                if (!tmpl && vf->n_types > 0) {
                        tmpl = vf->types;
                        n_tmpl = vf->n_types;
                }
                /* NVIDIA's vendor interface; an mdev parent VF never has it. */
                if (vf->dev->vendor_id != VENDOR_NVIDIA || vf->n_types > 0)
                        continue;
                r = gpuh_vendor_vgpu_read(root_fd, &vf->dev->addr, w, &vf->vendor_vgpu);
                if (r < 0)
                        return r;
                vf->has_vendor_vgpu = r > 0;
        }
        /* A set type is named by the VF's own list, else by any sibling's (a VF's list may
         * stop naming a type once it is in use); other GPUs of the model are asked once all
         * are read (name_set_types()). */
        for (size_t i = 0; i < g->n_vfs; i++) {
                struct gpuh_vf *vf = &g->vfs[i];
                unsigned id = vf->vendor_vgpu.current_type;

                if (!vf->has_vendor_vgpu || id == 0)
                        continue;
                vf->current_type_name = gpuh_vgpu_type_name(vf->vendor_vgpu.creatable,
                                                            vf->vendor_vgpu.n_creatable, id);
                for (size_t j = 0; !vf->current_type_name && j < g->n_vfs; j++)
                        vf->current_type_name = gpuh_vgpu_type_name(g->vfs[j].vendor_vgpu.creatable,
                                                                    g->vfs[j].vendor_vgpu.n_creatable, id);
        }
        return 0;
}

/*
 * A full GPU lists nothing on any VF (in equal-size mode a GPU lists only types of the size
 * in use, in mixed-size mode only what still fits), so a set type may be named by no list of
 * its own GPU: another GPU of the same model (vendor:device) has the same types. What no list
 * on the host names stays unnamed here (gpuh_vgpu_names_update() may know it).
 */
static void name_set_types(struct gpuh_inventory *inv)
{
        for (size_t i = 0; i < inv->n_gpus; i++) {
                struct gpuh_gpu *g = &inv->gpus[i];

                for (size_t v = 0; v < g->n_vfs; v++) {
                        struct gpuh_vf *vf = &g->vfs[v];
                        unsigned id = vf->vendor_vgpu.current_type;

                        if (!vf->has_vendor_vgpu || id == 0 || vf->current_type_name)
                                continue;
                        for (size_t o = 0; o < inv->n_gpus && !vf->current_type_name; o++) {
                                const struct gpuh_gpu *m = &inv->gpus[o];

                                if (m == g || m->dev->vendor_id != g->dev->vendor_id ||
                                    m->dev->device_id != g->dev->device_id)
                                        continue;
                                for (size_t j = 0; j < m->n_vfs && !vf->current_type_name; j++)
                                        vf->current_type_name = gpuh_vgpu_type_name(m->vfs[j].vendor_vgpu.creatable,
                                                                                    m->vfs[j].vendor_vgpu.n_creatable, id);
                        }
                        if (!vf->current_type_name)
                                gpuh_warn(&g->warnings, "%s: vGPU type %u is set but no creatable list on this host names it",
                                          vf->dev->name, id);
                }
        }
}

/* mdevs on the PF or its VFs, with their types. */
static int collect_vgpus(const struct gpuh_inventory *inv, struct gpuh_gpu *g)
{
        for (size_t pass = 0; pass < 2; pass++) {
                size_t n = 0;

                for (size_t i = 0; i < inv->n_mdevs; i++) {
                        const struct gpuh_mdev *m = &inv->mdevs[i];
                        const struct gpuh_mdev_type *t = NULL;
                        bool mine = false;

                        if (gpuh_pci_addr_cmp(&m->parent, &g->dev->addr) == 0) {
                                mine = true;
                                t = find_type(g->types, g->n_types, m->type_id);
                        } else
                                for (size_t v = 0; v < g->n_vfs; v++)
                                        if (gpuh_pci_addr_cmp(&m->parent, &g->vfs[v].dev->addr) == 0) {
                                                mine = true;
                                                t = find_type(g->vfs[v].types, g->vfs[v].n_types, m->type_id);
                                                break;
                                        }
                        if (!mine)
                                continue;
                        if (pass == 1) {
                                g->vgpus[n].mdev = m;
                                g->vgpus[n].type = t;
                                if (!t)
                                        gpuh_warn(&g->warnings, "mdev %s: type %s is not listed on its parent",
                                                  m->uuid, m->type_id ? m->type_id : "(unknown)");
                        }
                        n++;
                }
                if (pass == 0) {
                        if (n == 0)
                                return 0;
                        g->vgpus = calloc(n, sizeof(*g->vgpus));
                        if (!g->vgpus)
                                return -ENOMEM;
                } else
                        g->n_vgpus = n;
        }
        return 0;
}

static int read_group(int root_fd, struct gpuh_gpu *g)
{
        _cleanup_strv_free_ char **names = NULL;
        struct gpuh_warnings *w = &g->warnings;
        char rel[64];
        int n;

        g->group_viable = -1;
        if (g->dev->iommu_group < 0)
                return 0;
        snprintf(rel, sizeof(rel), "kernel/iommu_groups/%d/devices", g->dev->iommu_group);
        n = gpuh_sysfs_list(root_fd, rel, &names);
        if (n == -ENOMEM)
                return n;
        if (n < 0) {
                gpuh_warn(w, "%s: %s: %s", g->dev->name, rel, strerror(-n));
                return 0;
        }
        g->members = calloc((size_t) n + 1, sizeof(*g->members));
        if (!g->members)
                return -ENOMEM;
        g->group_viable = 1;
        for (char **p = names; *p; p++) {
                struct gpuh_group_member *m = &g->members[g->n_members];
                struct gpuh_pci_addr a;
                int r;

                if (gpuh_pci_addr_parse(*p, &a) < 0)
                        continue;
                r = gpuh_pci_dev_read(root_fd, &a, GPUH_PCI_FILL_IDENT | GPUH_PCI_FILL_CLASS |
                                      GPUH_PCI_FILL_DRIVER | GPUH_PCI_FILL_SRIOV, w, &m->dev);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        /* An unreadable member may be anything: the group is not safe. */
                        gpuh_warn(w, "%s: IOMMU group member %s unreadable", g->dev->name, *p);
                        g->group_viable = 0;
                        continue;
                }
                g->n_members++;
                if (gpuh_pci_addr_cmp(&a, &g->dev->addr) == 0)
                        m->role = GPUH_ROLE_GPU;
                else if (gpuh_pci_addr_same_slot(&a, &g->dev->addr) ||
                         (m->dev->is_vf && gpuh_pci_addr_cmp(&m->dev->physfn, &g->dev->addr) == 0))
                        m->role = GPUH_ROLE_COMPANION;
                else if ((m->dev->class_code >> 8) == GPUH_PCI_CLASS_BRIDGE_PCI)
                        m->role = GPUH_ROLE_BRIDGE;
                else {
                        m->role = GPUH_ROLE_FOREIGN;
                        g->group_viable = 0;
                }
        }
        return 0;
}

/* Everything below one GPU; runs in a worker thread, touching only @g. */
static int read_gpu(int root_fd, const struct groups *gs, struct gpuh_gpu *g)
{
        int r;

        r = gpuh_mdev_types_read(root_fd, &g->dev->addr, NULL, 0, &g->warnings, &g->types);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                gpuh_warn(&g->warnings, "%s: mdev_supported_types: %s", g->dev->name, strerror(-r));
        else
                g->n_types = (size_t) r;
        check_group(&g->warnings, gs, g->dev);
        r = read_vfs(root_fd, gs, g);
        if (r < 0)
                return r;
        return read_group(root_fd, g);
}

static void set_blockers(const struct gpuh_config *cfg, struct gpuh_gpu *g)
{
        if (g->dev->boot_vga && !(cfg && cfg->passthrough_boot_vga))
                g->blockers |= GPUH_BLOCK_BOOT_VGA;
        if (g->dev->sriov_numvfs > 0 || g->n_vfs > 0)
                g->blockers |= GPUH_BLOCK_VFS_ENABLED;
        if (g->n_vgpus > 0)
                g->blockers |= GPUH_BLOCK_MDEVS;
        if (g->dev->iommu_group < 0)
                g->blockers |= GPUH_BLOCK_NO_GROUP;
        if (g->group_viable == 0)
                g->blockers |= GPUH_BLOCK_GROUP_SHARED;
        if (gpuh_config_excludes_passthrough(cfg, &g->dev->addr))
                g->blockers |= GPUH_BLOCK_EXCLUDED;
        if (gpuh_layout_find(cfg, g->dev, NULL))
                g->blockers |= GPUH_BLOCK_LAYOUT;
}

/*
 * The scan is a pool of work items taken by up to max_threads threads: item i < n is PCI
 * function i (classify it; if it is a GPU, read everything below it into slot i), item n lists
 * the host's mdevs. Each item writes only its own slot, with its own warnings, so the result is
 * the same whatever thread takes which item.
 */
struct scan {
        int root_fd;
        const struct gpuh_config *cfg;
        const struct groups *gs;
        const struct gpuh_pci_addr *addrs;
        size_t n;                       /* PCI functions */
        struct gpuh_gpu *slots;         /* n: a GPU where slots[i].dev is set */
        struct gpuh_inventory *inv;     /* item n fills inv->mdevs */
        struct gpuh_warnings mdev_warnings;
        int mdev_error;
        atomic_size_t next;
};

/* Is function @a a GPU (not a VF)? Then read it and everything below it into @g. */
static int scan_function(struct scan *sc, const struct gpuh_pci_addr *a, struct gpuh_gpu *g)
{
        struct gpuh_warnings *w = &g->warnings;
        char name[GPUH_PCI_ADDR_MAX], rel[64];
        uint32_t class_code;
        int r;

        /* VFs are reported under their PF only; on SR-IOV hosts most functions are VFs, so
         * this one-call check comes before reading the class. */
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/physfn", gpuh_pci_addr_format(a, name));
        if (faccessat(sc->root_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        r = gpuh_pci_dev_read_class(sc->root_fd, a, &class_code);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (r != -ENOENT)
                        gpuh_warn(w, "%s: class: %s", name, strerror(-r));
                return 0;
        }
        if (!class_is_display(class_code) && !class_is_accel(class_code))
                return 0;
        r = gpuh_pci_dev_read(sc->root_fd, a, GPUH_PCI_FILL_ALL, w, &g->dev);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                gpuh_warn(w, "%s: %s", name, r == -EBADMSG ? "unreadable vendor, device or class" : strerror(-r));
                return 0;
        }
        if (!gpuh_is_gpu(sc->cfg, g->dev->vendor_id, g->dev->class_code)) {
                g->dev = gpuh_pci_dev_free(g->dev);
                return 0;
        }
        return read_gpu(sc->root_fd, sc->gs, g);
}

static void *scan_worker(void *arg)
{
        struct scan *sc = arg;
        size_t i;

        while ((i = atomic_fetch_add(&sc->next, 1)) <= sc->n) {
                if (i < sc->n) {
                        sc->slots[i].error = scan_function(sc, &sc->addrs[i], &sc->slots[i]);
                        continue;
                }
                int r = gpuh_mdev_list(sc->root_fd, &sc->mdev_warnings, &sc->inv->mdevs);
                if (r < 0 && r != -ENOMEM)
                        gpuh_warn(&sc->mdev_warnings, "bus/mdev/devices: %s", strerror(-r));
                sc->mdev_error = r == -ENOMEM ? r : 0;
                sc->inv->n_mdevs = r > 0 ? (size_t) r : 0;
        }
        return NULL;
}

/* Run the pool with up to @max_threads threads, this one included. */
static void scan_run(struct scan *sc, unsigned max_threads)
{
        pthread_t tids[GPUH_INVENTORY_MAX_THREADS];
        size_t started = 0, want = max_threads > 1 ? max_threads - 1 : 0;

        atomic_init(&sc->next, 0);
        if (want > GPUH_INVENTORY_MAX_THREADS)
                want = GPUH_INVENTORY_MAX_THREADS;
        for (; started < want; started++)
                if (pthread_create(&tids[started], NULL, scan_worker, sc) != 0)
                        break;  /* fewer threads; this one still does the rest */
        scan_worker(sc);
        for (size_t t = 0; t < started; t++)
                pthread_join(tids[t], NULL);
}

int gpuh_inventory_scan(int root_fd, const struct gpuh_config *cfg, unsigned max_threads,
                        struct gpuh_inventory **ret)
{
        _cleanup_(gpuh_inventory_freep) struct gpuh_inventory *inv = NULL;
        _cleanup_free_ struct gpuh_pci_addr *addrs = NULL;
        _cleanup_strv_free_ char **groups = NULL;
        _cleanup_free_ int *group_nums = NULL;
        struct groups gs = { 0 };
        struct scan sc = { 0 };
        int n, r = 0;

        inv = calloc(1, sizeof(*inv));
        if (!inv)
                return -ENOMEM;

        n = gpuh_pci_dev_list(root_fd, &inv->warnings, &addrs);
        if (n < 0)
                return n;
        r = gpuh_sysfs_list(root_fd, "kernel/iommu_groups", &groups);
        if (r == -ENOMEM)
                return r;
        inv->iommu = r > 0;
        if (r > 0) {
                group_nums = calloc((size_t) r, sizeof(int));
                if (!group_nums)
                        return -ENOMEM;
                for (char **p = groups; *p; p++) {
                        char *end;
                        long g = strtol(*p, &end, 10);
                        if (!*end && g >= 0 && g <= INT_MAX && **p >= '0' && **p <= '9')
                                group_nums[gs.n++] = (int) g;
                }
                qsort(group_nums, gs.n, sizeof(int), cmp_int);
                gs.v = group_nums;
        }

        sc = (struct scan) { .root_fd = root_fd, .cfg = cfg, .gs = &gs, .addrs = addrs,
                             .n = (size_t) n, .inv = inv };
        sc.slots = calloc((size_t) n + 1, sizeof(*sc.slots));
        if (!sc.slots)
                return -ENOMEM;
        scan_run(&sc, max_threads);

        /* Gather in address order: the GPUs, and every warning. */
        r = sc.mdev_error;
        if (r == 0)
                r = gpuh_warnings_move(&inv->warnings, &sc.mdev_warnings);
        for (size_t i = 0; i < sc.n; i++) {
                struct gpuh_gpu *g = &sc.slots[i];

                if (r == 0 && g->error < 0)
                        r = g->error;
                if (r == 0)
                        r = gpuh_warnings_move(&inv->warnings, &g->warnings);
                if (g->dev)
                        sc.slots[inv->n_gpus++] = *g;
                else
                        gpu_clear(g);
        }
        inv->gpus = sc.slots;   /* owned by inv from here on, whatever r is */
        gpuh_warnings_clear(&sc.mdev_warnings);
        if (r < 0)
                return r;

        name_set_types(inv);
        for (size_t i = 0; i < inv->n_gpus; i++) {
                struct gpuh_gpu *g = &inv->gpus[i];

                r = collect_vgpus(inv, g);
                if (r < 0)
                        return r;
                set_blockers(cfg, g);
                r = gpuh_warnings_move(&inv->warnings, &g->warnings);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(inv);
        return 0;
}

const char *gpuh_inventory_vgpu_type_name(const struct gpuh_inventory *inv, unsigned id)
{
        for (size_t g = 0; g < inv->n_gpus; g++)
                for (size_t v = 0; v < inv->gpus[g].n_vfs; v++) {
                        const struct gpuh_vf *vf = &inv->gpus[g].vfs[v];
                        const char *n = gpuh_vgpu_type_name(vf->vendor_vgpu.creatable, vf->vendor_vgpu.n_creatable, id);

                        if (n)
                                return n;
                        if (vf->current_type_name && vf->vendor_vgpu.current_type == id)
                                return vf->current_type_name;
                }
        return NULL;
}

int gpuh_inventory_name(struct gpuh_inventory *inv, struct gpuh_pci_names *names)
{
        char buf[128];

        for (size_t i = 0; i < inv->n_gpus; i++) {
                struct gpuh_gpu *g = &inv->gpus[i];

                free(g->vendor_name);
                free(g->device_name);
                free(g->class_name);
                g->vendor_name = strdup(gpuh_pci_name_vendor(names, g->dev->vendor_id, buf, sizeof(buf)));
                g->device_name = strdup(gpuh_pci_name_device(names, g->dev->vendor_id, g->dev->device_id,
                                                             buf, sizeof(buf)));
                g->class_name = strdup(gpuh_pci_name_class(names, g->dev->class_code, buf, sizeof(buf)));
                if (!g->vendor_name || !g->device_name || !g->class_name)
                        return -ENOMEM;
                for (size_t k = 0; k < g->n_vfs; k++) {
                        struct gpuh_vf *vf = &g->vfs[k];
                        free(vf->device_name);
                        vf->device_name = strdup(gpuh_pci_name_device(names, vf->dev->vendor_id,
                                                                      vf->dev->device_id, buf, sizeof(buf)));
                        if (!vf->device_name)
                                return -ENOMEM;
                }
        }
        return 0;
}

/* ---- what NVML adds ---- */

static bool on_nvidia(const struct gpuh_gpu *g)
{
        return g->dev->vendor_id == VENDOR_NVIDIA && g->dev->driver && streq(g->dev->driver, "nvidia");
}

int gpuh_inventory_nvml_gpus(const struct gpuh_inventory *inv, struct gpuh_pci_addr **ret)
{
        size_t n = 0;

        *ret = NULL;
        for (size_t i = 0; i < inv->n_gpus; i++)
                n += on_nvidia(&inv->gpus[i]);
        if (n == 0)
                return 0;
        *ret = calloc(n, sizeof(**ret));
        if (!*ret)
                return -ENOMEM;
        n = 0;
        for (size_t i = 0; i < inv->n_gpus; i++)
                if (on_nvidia(&inv->gpus[i]))
                        (*ret)[n++] = inv->gpus[i].dev->addr;
        return (int) n;
}

const char *gpuh_inventory_nvml(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, char *buf, size_t size,
                                const struct gpuh_nvml_gpu **ret)
{
        const struct gpuh_nvml_gpu *n;

        *ret = NULL;
        if (g->dev->vendor_id != VENDOR_NVIDIA)
                return "not an NVIDIA GPU";
        if (!on_nvidia(g)) {
                snprintf(buf, size, "NVML sees only GPUs on the nvidia driver; this one is on %s",
                         g->dev->driver ? g->dev->driver : "no driver");
                return buf;
        }
        if (!inv->nvml)
                return "NVML not asked";
        if (inv->nvml->error)
                return inv->nvml->error;
        n = gpuh_nvml_info_gpu(inv->nvml, &g->dev->addr);
        if (!n)
                return "NVML not asked";
        if (n->error) {
                snprintf(buf, size, "NVML: %s", n->error);
                return buf;
        }
        *ret = n;
        return NULL;
}

static bool has_vendor_vfs(const struct gpuh_gpu *g)
{
        for (size_t v = 0; v < g->n_vfs; v++)
                if (g->vfs[v].has_vendor_vgpu)
                        return true;
        return false;
}

enum gpuh_vgpu_mode gpuh_inventory_vgpu_mode(const struct gpuh_inventory *inv, const struct gpuh_gpu *g, bool *ret_assumed)
{
        const struct gpuh_nvml_gpu *n = NULL;
        char why[160];

        if (ret_assumed)
                *ret_assumed = false;
        if (!gpuh_inventory_nvml(inv, g, why, sizeof(why), &n)) {
                if (n->vgpu_mode != GPUH_VGPU_MODE_UNKNOWN || n->mig_current == 1)
                        return n->vgpu_mode;
        }
        if (!has_vendor_vfs(g))
                return GPUH_VGPU_MODE_UNKNOWN;
        if (ret_assumed)
                *ret_assumed = true;
        return GPUH_VGPU_MODE_EQUAL;
}

/* The vGPUs on @g: vendor VFs with a type set, mdevs on its VFs (their type ids "nvidia-N"). */
struct vgpu_on {
        unsigned type;
        int gi;                 /* vendor VF's gpu_instance_id, -1 */
};

static size_t vgpus_on(const struct gpuh_gpu *g, struct vgpu_on *v, size_t cap)
{
        size_t n = 0;

        for (size_t i = 0; i < g->n_vfs && n < cap; i++)
                if (g->vfs[i].has_vendor_vgpu && g->vfs[i].vendor_vgpu.current_type)
                        v[n++] = (struct vgpu_on) { g->vfs[i].vendor_vgpu.current_type, g->vfs[i].vendor_vgpu.gpu_instance_id };
        for (size_t i = 0; i < g->n_vgpus && n < cap; i++) {
                const char *id = g->vgpus[i].mdev->type_id, *num = id ? startswith(id, "nvidia-") : NULL;
                char *end;
                unsigned long t = num ? strtoul(num, &end, 10) : 0;

                if (num && *num && !*end && t > 0 && t <= UINT32_MAX)
                        v[n++] = (struct vgpu_on) { (unsigned) t, -1 };
        }
        return n;
}

int64_t gpuh_inventory_vgpu_more(const struct gpuh_inventory *inv, const struct gpuh_gpu *g,
                                 const struct gpuh_nvml_gpu *n, const struct gpuh_nvml_type *t)
{
        struct vgpu_on on[1024];
        size_t n_on = vgpus_on(g, on, ARRAY_SIZE(on));
        enum gpuh_vgpu_mode mode = gpuh_inventory_vgpu_mode(inv, g, NULL);

        if (t->fb_mib <= 0 || t->max_instances < 0)
                return -1;
        if (t->gi_profile_id >= 0) {
                int64_t free_gis = 0;

                if (n->mig_current != 1)
                        return 0;
                for (size_t i = 0; i < n->n_gis; i++) {
                        bool taken = false;

                        if ((int64_t) n->gis[i].profile_id != t->gi_profile_id)
                                continue;
                        for (size_t k = 0; k < n_on && !taken; k++)
                                taken = on[k].gi == (int) n->gis[i].id;
                        free_gis += !taken;
                }
                /* mdevs and VFs that do not say their GI: each takes one GI of its profile */
                for (size_t k = 0; k < n_on; k++) {
                        const struct gpuh_nvml_type *o = gpuh_nvml_gpu_type(n, on[k].type);
                        if (on[k].gi < 0 && o && o->gi_profile_id == t->gi_profile_id)
                                free_gis--;
                }
                return free_gis > 0 ? free_gis : 0;
        } else {
                int64_t budget = 0, used = 0, same = 0, more;

                if (n->mig_current == 1)
                        return 0;
                for (size_t i = 0; i < n->n_types; i++)
                        if (n->types[i].gi_profile_id < 0 && n->types[i].fb_mib > 0 && n->types[i].max_instances > 0 &&
                            n->types[i].fb_mib * n->types[i].max_instances > budget)
                                budget = n->types[i].fb_mib * n->types[i].max_instances;
                for (size_t k = 0; k < n_on; k++) {
                        const struct gpuh_nvml_type *o = gpuh_nvml_gpu_type(n, on[k].type);
                        int64_t fb = o && o->fb_mib > 0 ? o->fb_mib : t->fb_mib;

                        if (mode != GPUH_VGPU_MODE_MIXED && fb != t->fb_mib)
                                return 0;       /* equal-size: another size is on the GPU */
                        used += fb;
                        same += mode != GPUH_VGPU_MODE_MIXED || on[k].type == t->id;
                }
                more = budget > used ? (budget - used) / t->fb_mib : 0;
                if (more > t->max_instances - same)
                        more = t->max_instances - same;
                return more > 0 ? more : 0;
        }
}
