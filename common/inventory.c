/* SPDX-License-Identifier: Apache-2.0 */
/* inventory.c: scanning sysfs for GPUs and everything hanging off them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "log.h"
#include "sysfs.h"

#define VENDOR_NVIDIA 0x10de
#define VENDOR_AMD    0x1002
#define VENDOR_INTEL  0x8086

static const char *const block_names[_GPUH_BLOCK_MAX] = {
        "boot-vga", "vfs-enabled", "mdevs-created", "no-iommu-group", "iommu-group-shared", "excluded",
};

const char *gpuh_block_to_string(unsigned bit)
{
        return bit < _GPUH_BLOCK_MAX ? block_names[bit] : "unknown";
}

const char *gpuh_role_to_string(enum gpuh_member_role r)
{
        switch (r) {
        case GPUH_ROLE_GPU:
                return "gpu";
        case GPUH_ROLE_COMPANION:
                return "companion";
        case GPUH_ROLE_BRIDGE:
                return "bridge";
        default:
                return "foreign";
        }
}

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
}

struct gpuh_inventory *gpuh_inventory_free(struct gpuh_inventory *inv)
{
        if (!inv)
                return NULL;
        for (size_t i = 0; i < inv->n_gpus; i++)
                gpu_clear(&inv->gpus[i]);
        free(inv->gpus);
        gpuh_mdevs_free(inv->mdevs, inv->n_mdevs);
        gpuh_warnings_clear(&inv->warnings);
        free(inv);
        return NULL;
}

static const struct gpuh_mdev_type *find_type(const struct gpuh_mdev_type *t, size_t n, const char *id)
{
        for (size_t i = 0; id && i < n; i++)
                if (streq(t[i].type_id, id))
                        return &t[i];
        return NULL;
}

static int read_vfs(struct gpuh_inventory *inv, int root_fd, struct gpuh_pci_names *names,
                    struct gpuh_gpu *g)
{
        _cleanup_free_ struct gpuh_pci_addr *addrs = NULL;
        _cleanup_free_ int *idx = NULL;
        const struct gpuh_mdev_type *tmpl = NULL;
        size_t n_tmpl = 0;
        int n;

        n = gpuh_pci_dev_list_vfs(root_fd, &g->dev->addr, &inv->warnings, &addrs, &idx);
        if (n == -ENOMEM)
                return n;
        if (n <= 0)
                return 0;
        g->vfs = calloc((size_t) n, sizeof(*g->vfs));
        if (!g->vfs)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                struct gpuh_vf *vf = &g->vfs[g->n_vfs];
                char buf[128];
                int r;

                r = gpuh_pci_dev_read(root_fd, &addrs[i],
                                      GPUH_PCI_FILL_IDENT | GPUH_PCI_FILL_SUBSYS | GPUH_PCI_FILL_DRIVER |
                                      GPUH_PCI_FILL_NUMA | GPUH_PCI_FILL_IOMMU,
                                      &inv->warnings, &vf->dev);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        char a[GPUH_PCI_ADDR_MAX];
                        gpuh_warn(&inv->warnings, "%s: VF %s: %s", g->dev->name,
                                  gpuh_pci_addr_format(&addrs[i], a),
                                  r == -EBADMSG ? "unreadable vendor, device or class" : strerror(-r));
                        continue;
                }
                g->n_vfs++;
                vf->index = idx[i];
                vf->device_name = strdup(gpuh_pci_name_device(names, vf->dev->vendor_id,
                                                              vf->dev->device_id, buf, sizeof(buf)));
                if (!vf->device_name)
                        return -ENOMEM;
                r = gpuh_mdev_types_read(root_fd, &vf->dev->addr, tmpl, n_tmpl, &inv->warnings, &vf->types);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        gpuh_warn(&inv->warnings, "%s: mdev_supported_types: %s", vf->dev->name, strerror(-r));
                else
                        vf->n_types = (size_t) r;
                if (!tmpl && vf->n_types > 0) {
                        tmpl = vf->types;
                        n_tmpl = vf->n_types;
                }
                r = gpuh_vendor_vgpu_read(root_fd, &vf->dev->addr, &inv->warnings, &vf->vendor_vgpu);
                if (r < 0)
                        return r;
                vf->has_vendor_vgpu = r > 0;
        }
        /* A set type is named by the VF's own list, else by any sibling's (a VF's list may
         * stop naming a type once it is in use). */
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
                if (!vf->current_type_name)
                        gpuh_warn(&inv->warnings, "%s: vGPU type %u is set but no creatable list names it",
                                  vf->dev->name, id);
        }
        return 0;
}

/* mdevs on the PF or its VFs, with their types. */
static int collect_vgpus(struct gpuh_inventory *inv, struct gpuh_gpu *g)
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
                                        gpuh_warn(&inv->warnings, "mdev %s: type %s is not listed on its parent",
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

static int read_group(struct gpuh_inventory *inv, int root_fd, struct gpuh_gpu *g)
{
        _cleanup_strv_free_ char **names = NULL;
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
                gpuh_warn(&inv->warnings, "%s: %s: %s", g->dev->name, rel, strerror(-n));
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
                r = gpuh_pci_dev_read(root_fd, &a, GPUH_PCI_FILL_IDENT | GPUH_PCI_FILL_DRIVER |
                                      GPUH_PCI_FILL_SRIOV, &inv->warnings, &m->dev);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        /* An unreadable member may be anything: the group is not safe. */
                        gpuh_warn(&inv->warnings, "%s: IOMMU group member %s unreadable", g->dev->name, *p);
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

static int read_gpu(struct gpuh_inventory *inv, int root_fd, const struct gpuh_config *cfg,
                    struct gpuh_pci_names *names, struct gpuh_gpu *g)
{
        char buf[128];
        int r;

        g->vendor_name = strdup(gpuh_pci_name_vendor(names, g->dev->vendor_id, buf, sizeof(buf)));
        g->device_name = strdup(gpuh_pci_name_device(names, g->dev->vendor_id, g->dev->device_id,
                                                     buf, sizeof(buf)));
        g->class_name = strdup(gpuh_pci_name_class(names, g->dev->class_code, buf, sizeof(buf)));
        if (!g->vendor_name || !g->device_name || !g->class_name)
                return -ENOMEM;

        r = gpuh_mdev_types_read(root_fd, &g->dev->addr, NULL, 0, &inv->warnings, &g->types);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                gpuh_warn(&inv->warnings, "%s: mdev_supported_types: %s", g->dev->name, strerror(-r));
        else
                g->n_types = (size_t) r;

        r = read_vfs(inv, root_fd, names, g);
        if (r < 0)
                return r;
        r = collect_vgpus(inv, g);
        if (r < 0)
                return r;
        r = read_group(inv, root_fd, g);
        if (r < 0)
                return r;

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
        return 0;
}

int gpuh_inventory_scan(int root_fd, const struct gpuh_config *cfg, struct gpuh_pci_names *names,
                        struct gpuh_vm_usage *usage, struct gpuh_inventory **ret)
{
        _cleanup_(gpuh_inventory_freep) struct gpuh_inventory *inv = NULL;
        _cleanup_free_ struct gpuh_pci_addr *addrs = NULL;
        _cleanup_strv_free_ char **groups = NULL;
        int n, r;

        inv = calloc(1, sizeof(*inv));
        if (!inv)
                return -ENOMEM;
        inv->usage = usage;

        n = gpuh_pci_dev_list(root_fd, &inv->warnings, &addrs);
        if (n < 0)
                return n;
        r = gpuh_sysfs_list(root_fd, "kernel/iommu_groups", &groups);
        if (r == -ENOMEM)
                return r;
        inv->iommu = r > 0;
        r = gpuh_mdev_list(root_fd, &inv->warnings, &inv->mdevs);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                gpuh_warn(&inv->warnings, "bus/mdev/devices: %s", strerror(-r));
        else
                inv->n_mdevs = (size_t) r;

        inv->gpus = calloc((size_t) n + 1, sizeof(*inv->gpus));
        if (!inv->gpus)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                struct gpuh_gpu *g = &inv->gpus[inv->n_gpus];
                char a[GPUH_PCI_ADDR_MAX], rel[64];
                uint32_t class_code;

                r = gpuh_pci_dev_read_class(root_fd, &addrs[i], &class_code);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        if (r != -ENOENT)
                                gpuh_warn(&inv->warnings, "%s: class: %s",
                                          gpuh_pci_addr_format(&addrs[i], a), strerror(-r));
                        continue;
                }
                if (!class_is_display(class_code) && !class_is_accel(class_code))
                        continue;
                /* VFs are reported under their PF only. */
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/physfn", gpuh_pci_addr_format(&addrs[i], a));
                if (faccessat(root_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                        continue;
                r = gpuh_pci_dev_read(root_fd, &addrs[i], GPUH_PCI_FILL_ALL, &inv->warnings, &g->dev);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        gpuh_warn(&inv->warnings, "%s: %s", a,
                                  r == -EBADMSG ? "unreadable vendor, device or class" : strerror(-r));
                        continue;
                }
                if (!gpuh_is_gpu(cfg, g->dev->vendor_id, g->dev->class_code)) {
                        g->dev = gpuh_pci_dev_free(g->dev);
                        continue;
                }
                inv->n_gpus++;
                r = read_gpu(inv, root_fd, cfg, names, g);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(inv);
        return 0;
}
