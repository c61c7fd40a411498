/* SPDX-License-Identifier: Apache-2.0 */
/*
 * device.c: what the state-change hook reads of the host: PCI functions, their IOMMU groups
 * and what they are to the host's GPUs, mdevs and their parents.
 *
 * Attributes go through the device model (pcidev.h: identity, class, IOMMU group) with the
 * inventory's rules (gpuh_is_gpu(), the PCI-to-PCI bridge class); what it does not cover (the
 * group's members, physfn, config space) is read relative to the function's directory, which
 * the run's change keeps open (gpuh_change_devfd()). Source of the layout:
 * Documentation/ABI/testing/sysfs-bus-pci, Documentation/ABI/testing/sysfs-kernel-iommu_groups,
 * Documentation/driver-api/vfio-mediated-device.rst.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_addr.h"
#include "inventory.h"
#include "macro.h"
#include "pcidev.h"
#include "sc.h"
#include "sysfs.h"

/* The function's directory, opened once per run (see gpuh_change_devfd()). */
int sc_devfd(struct sc *s, const struct gpuh_pci_addr *a)
{
        return gpuh_change_devfd(&s->ch, a);
}

bool sc_pci_exists(struct sc *s, const struct gpuh_pci_addr *a)
{
        return sc_devfd(s, a) >= 0;
}

/* "bus/pci/devices/BDF/ATTR" (or the function's directory when @attr is NULL), relative to
 * the sysfs root: for the waits on what does not exist yet, which have no directory to be
 * relative to. The one place that spells the layout. */
char *sc_dev_path(const struct gpuh_pci_addr *a, const char *attr, char *buf, size_t size)
{
        char name[GPUH_PCI_ADDR_MAX];

        snprintf(buf, size, "bus/pci/devices/%s%s%s", gpuh_pci_addr_format(a, name), attr ? "/" : "", attr ? attr : "");
        return buf;
}

/* @a through the device model, @fill as gpuh_pci_dev_read(). */
static int read_dev(struct sc *s, const struct gpuh_pci_addr *a, unsigned fill, struct gpuh_pci_dev **ret)
{
        return gpuh_pci_dev_read(s->sysfs->root_fd, a, fill, NULL, ret);
}

/* @a's IOMMU group; -1 when it is gone or has none (the IOMMU is off). */
int sc_pci_group(struct sc *s, const struct gpuh_pci_addr *a)
{
        _cleanup_pci_dev_ struct gpuh_pci_dev *d = NULL;

        /* asked for again and again (holders, undo): read once per run */
        for (size_t i = 0; i < s->n_groups; i++)
                if (gpuh_pci_addr_cmp(&s->groups[i].addr, a) == 0)
                        return s->groups[i].group;
        if (read_dev(s, a, GPUH_PCI_FILL_IOMMU, &d) < 0)
                return -1;
        if (s->n_groups < ARRAY_SIZE(s->groups))
                s->groups[s->n_groups++] = (struct sc_known_group) { .addr = *a, .group = d->iommu_group };
        return d->iommu_group;
}

/* The functions of @a's IOMMU group, sorted; @a alone when it has none. */
int sc_group_members(struct sc *s, const struct gpuh_pci_addr *a, struct gpuh_pci_addr *ret, size_t max)
{
        _cleanup_strv_free_ char **names = NULL;
        int fd = sc_devfd(s, a), r;
        size_t k = 0;

        r = fd < 0 ? fd : gpuh_sysfs_list(fd, "iommu_group/devices", &names);
        if (r <= 0) {
                ret[0] = *a;
                return 1;
        }
        for (char **p = names; *p && k < max; p++)
                if (gpuh_pci_addr_parse(*p, &ret[k]) == 0)
                        k++;
        return (int) k;
}

/*
 * A PCI-to-PCI bridge (class 0x0604), the inventory's rule (inventory.c, GPUH_ROLE_BRIDGE):
 * VFIO accepts it in a group given to a VM while it stays on pcieport (before Linux 5.19,
 * drivers/vfio/vfio.c vfio_dev_driver_allowed() passes any bridge header; since, pcieport sets
 * driver_managed_dma). A host, ISA or other bridge (0x0600, 0x0601, 0x0680: an NVSwitch) has
 * a normal header and is an endpoint like any other: on a driver but vfio-pci it refuses the
 * group.
 */
bool sc_is_bridge(struct sc *s, const struct gpuh_pci_addr *a)
{
        uint32_t cls;

        return gpuh_pci_dev_read_class(s->sysfs->root_fd, a, &cls) == 0 && (cls >> 8) == GPUH_PCI_CLASS_BRIDGE_PCI;
}

/* Returns 0; -ENOENT (gone); -EBADMSG (unreadable ids). */
int sc_read_ids(struct sc *s, const struct gpuh_pci_addr *a, uint16_t *vendor, uint16_t *device)
{
        _cleanup_pci_dev_ struct gpuh_pci_dev *d = NULL;
        int r = read_dev(s, a, GPUH_PCI_FILL_IDENT, &d);

        if (r < 0)
                return r;
        *vendor = d->vendor_id;
        *device = d->device_id;
        return 0;
}

static bool is_gpu_fn(struct sc *s, const struct gpuh_pci_addr *a)
{
        _cleanup_pci_dev_ struct gpuh_pci_dev *d = NULL;

        return read_dev(s, a, GPUH_PCI_FILL_IDENT | GPUH_PCI_FILL_CLASS, &d) == 0 &&
               gpuh_is_gpu(s->cfg, d->vendor_id, d->class_code);
}

/* The PF of VF @a (its physfn link); -ENOENT when @a is no VF. Only the link: the device
 * model's SR-IOV fill reads sriov_numvfs, which takes the device lock (drivers/pci/iov.c
 * sriov_numvfs_show), held by an unbind that hangs. */
static int physfn_of(struct sc *s, const struct gpuh_pci_addr *a, struct gpuh_pci_addr *ret)
{
        char buf[GPUH_PCI_ADDR_MAX + 8];
        int fd = sc_devfd(s, a), r;

        if (fd < 0)
                return fd;
        r = gpuh_sysfs_link_basename(fd, "physfn", buf, sizeof(buf));
        if (r < 0)
                return r;
        return gpuh_pci_addr_parse(buf, ret) < 0 ? -EBADMSG : 0;
}

/* What @a is to the host's GPUs; @pf receives the GPU of a companion or VF. The inventory's
 * rule: a companion shares the GPU's slot, a VF has it as physfn. */
enum sc_gpu_role sc_gpu_role(struct sc *s, const struct gpuh_pci_addr *a, struct gpuh_pci_addr *pf)
{
        struct gpuh_pci_addr f0 = *a;

        if (!sc_pci_exists(s, a))
                return sc_find_pf_of(s, a, pf) == 0 && is_gpu_fn(s, pf) ? SC_ROLE_VF : SC_ROLE_NONE;
        if (is_gpu_fn(s, a)) {
                if (physfn_of(s, a, pf) == 0)
                        return SC_ROLE_VF;
                *pf = *a;
                return SC_ROLE_GPU;
        }
        if (physfn_of(s, a, pf) == 0)
                return is_gpu_fn(s, pf) ? SC_ROLE_VF : SC_ROLE_NONE;
        for (f0.func = 0; f0.func < 8; f0.func++)
                if (f0.func != a->func && sc_pci_exists(s, &f0) && is_gpu_fn(s, &f0)) {
                        *pf = f0;
                        return SC_ROLE_COMPANION;
                }
        return SC_ROLE_NONE;
}

/**
 * sc_agent_split:
 * @s: the run
 * @h: a type='pci' hostdev
 * @why, @size: receive one line when 1 is returned (may be NULL, 0)
 *
 * A hostdev in the shape an old CloudStack agent writes for DDDD:BB:SS.F (agent_addr.h),
 * while a GPU or a VF of one is on the bus it meant: the transformer rewrites such an address
 * (or refuses it when ambiguous); here, where nothing can be rewritten, libvirt would take
 * the function the address names as written, another device or none.
 *
 * Returns: 1 when @h is such a hostdev (@why says which device it meant, or why it is
 *          ambiguous); 0 otherwise.
 */
int sc_agent_split(struct sc *s, const struct gpuh_dom_hostdev *h, char *why, size_t size)
{
        _cleanup_strv_free_ char **names = NULL;
        struct gpuh_pci_addr cands[4], real;
        char l[GPUH_PCI_ADDR_MAX], c[GPUH_PCI_ADDR_MAX], buf[384];
        size_t n = 0;
        int r;

        if (h->is_mdev || !h->agent_split || gpuh_sysfs_list(s->sysfs->root_fd, "bus/pci/devices", &names) < 0)
                return 0;
        for (char **p = names; p && *p && n < ARRAY_SIZE(cands); p++) {
                struct gpuh_pci_addr a, pf;
                enum sc_gpu_role role;

                if (gpuh_pci_addr_parse(*p, &a) < 0 || a.domain != h->split.domain || a.bus != h->split.bus)
                        continue;
                role = sc_gpu_role(s, &a, &pf);
                if (role == SC_ROLE_GPU || role == SC_ROLE_VF)
                        cands[n++] = a;
        }
        r = gpuh_agent_split_resolve(&h->split, &h->addr, sc_pci_exists(s, &h->addr), cands, n, &real, buf,
                                     sizeof(buf));
        if (r == 0)
                return 0;
        if (why && r > 0)
                snprintf(why, size, "hostdev address %s names no device: a CloudStack agent before 4.22.1 wrote it for "
                         "%s (apache/cloudstack PR #12981); the transformer rewrites it, and did not run for this start",
                         gpuh_pci_addr_format(&h->addr, l), gpuh_pci_addr_format(&real, c));
        else if (why)
                snprintf(why, size, "%s", buf);
        return 1;
}

/* A hostdev that gives a GPU (or part of one): an mdev, a PCI function of a GPU, or an old
 * agent's address for one (sc_agent_split()). */
bool sc_gpu_hostdev(struct sc *s, const struct gpuh_dom_hostdev *h)
{
        struct gpuh_pci_addr pf;

        return h->is_mdev || sc_gpu_role(s, &h->addr, &pf) != SC_ROLE_NONE || sc_agent_split(s, h, NULL, 0) > 0;
}

/* bus/mdev/devices/UUID: the mdevs, whatever their parent's bus. */
static char *mdev_path(const char *uuid, const char *attr, char *buf, size_t size)
{
        snprintf(buf, size, "bus/mdev/devices/%s%s%s", uuid, attr ? "/" : "", attr ? attr : "");
        return buf;
}

bool sc_mdev_exists(struct sc *s, const char *uuid)
{
        char rel[96];

        return gpuh_sysfs_exists(s->sysfs->root_fd, mdev_path(uuid, NULL, rel, sizeof(rel))) == 1;
}

/* The mdev's parent function, from bus/mdev/devices/UUID (a link into the parent's directory). */
int sc_mdev_parent(struct sc *s, const char *uuid, struct gpuh_pci_addr *ret)
{
        char rel[96], target[PATH_MAX], *p, *e;

        if (gpuh_sysfs_readlink(s->sysfs->root_fd, mdev_path(uuid, NULL, rel, sizeof(rel)), target, sizeof(target)) < 0)
                return -ENOENT;
        /* ../../../devices/pci0000:00/0000:00:03.0/0000:05:00.0/UUID */
        e = strrchr(target, '/');
        if (!e)
                return -EBADMSG;
        *e = '\0';
        p = strrchr(target, '/');
        return gpuh_pci_addr_parse(p ? p + 1 : target, ret) < 0 ? -EBADMSG : 0;
}

/* The mdev's IOMMU group (its own, made by the mdev core); -1 when it has none. */
int sc_mdev_group(struct sc *s, const char *uuid)
{
        char rel[96], buf[32], *end;
        long g;

        if (gpuh_sysfs_link_basename(s->sysfs->root_fd, mdev_path(uuid, "iommu_group", rel, sizeof(rel)), buf,
                                     sizeof(buf)) < 0)
                return -1;
        g = strtol(buf, &end, 10);
        return *end || g < 0 ? -1 : (int) g;
}

/* Does the function answer? A config read of a function that fell off the bus completes with
 * all ones (PCIe base spec, "Unsupported Request"; drivers/pci/access.c PCI_POSSIBLE_ERROR).
 * The vendor and device ID alone do not tell: an SR-IOV VF reads 0xffff there by design
 * (PCIe SR-IOV spec 3.4.1.1); its revision and class (offsets 8 to 11) are real. */
bool sc_pci_dead(struct sc *s, const struct gpuh_pci_addr *a)
{
        unsigned char cfg[12];
        int fd = sc_devfd(s, a);

        if (fd < 0 || gpuh_sysfs_read_bin(fd, "config", cfg, sizeof(cfg)) != (int) sizeof(cfg))
                return false;
        for (size_t i = 0; i < sizeof(cfg); i++)
                if (cfg[i] != 0xff)
                        return false;
        return true;
}
