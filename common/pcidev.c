/* SPDX-License-Identifier: Apache-2.0 */
/* pcidev.c: reading one PCI function's sysfs directory. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pcidev.h"

struct gpuh_pci_dev *gpuh_pci_dev_free(struct gpuh_pci_dev *d)
{
        if (!d)
                return NULL;
        free(d->driver);
        free(d->reset_method);
        free(d);
        return NULL;
}

static int dev_dir(int root_fd, const struct gpuh_pci_addr *addr, char *name)
{
        char rel[64];

        gpuh_pci_addr_format(addr, name);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s", name);
        return gpuh_sysfs_open_dir(root_fd, rel);
}

int gpuh_pci_dev_read_class(int root_fd, const struct gpuh_pci_addr *addr, uint32_t *ret)
{
        char name[GPUH_PCI_ADDR_MAX], rel[80];
        uint64_t v;
        int r;

        gpuh_pci_addr_format(addr, name);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/class", name);
        r = gpuh_sysfs_read_u64(root_fd, rel, &v);
        if (r < 0)
                return r;
        if (v > 0xffffff)
                return -EBADMSG;
        *ret = (uint32_t) v;
        return 0;
}

/* An optional hex id attribute: -1 when absent or unusable (with a warning for garbage). */
static int read_opt_id(int fd, const char *dev, const char *attr, uint64_t max,
                       struct gpuh_warnings *w)
{
        uint64_t v;
        int r = gpuh_sysfs_read_u64(fd, attr, &v);

        if (r == -ENOENT)
                return -1;
        if (r < 0 || v > max) {
                gpuh_warn(w, "%s: %s: %s", dev, attr, r < 0 ? strerror(-r) : "out of range");
                return -1;
        }
        return (int) v;
}

/* Root bus and root port from the canonical path: .../devices/pci0000:00/0000:00:03.0/<dev>. */
static void read_topology(int root_fd, struct gpuh_pci_dev *d, struct gpuh_warnings *w)
{
        char rel[64], target[PATH_MAX];
        char *save = NULL, *tok;
        bool after_root = false;
        int r;

        snprintf(rel, sizeof(rel), "bus/pci/devices/%s", d->name);
        r = gpuh_sysfs_readlink(root_fd, rel, target, sizeof(target));
        if (r < 0) {
                gpuh_warn(w, "%s: device link: %s", d->name, strerror(-r));
                return;
        }
        for (tok = strtok_r(target, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
                struct gpuh_pci_addr a;

                if (!after_root) {
                        /* "pciDDDD:BB": the host bridge's bus, the root of the hierarchy */
                        if (strncmp(tok, "pci", 3) == 0 && strlen(tok + 3) < sizeof(d->root_bus) &&
                            strchr(tok + 3, ':')) {
                                snprintf(d->root_bus, sizeof(d->root_bus), "%s", tok + 3);
                                after_root = true;
                        }
                        continue;
                }
                if (gpuh_pci_addr_parse(tok, &a) == 0) {
                        d->root_port = a;
                        d->has_root_port = true;
                }
                break;
        }
        if (!d->has_root_port)
                gpuh_warn(w, "%s: no PCI root bus on the device path", d->name);
}

/* A required hex id attribute of at most @max: -ENOENT when absent, -EBADMSG for anything
 * else unusable (the identity and class of a function must be known to classify it). */
static int read_req_id(int fd, const char *attr, uint64_t max, uint64_t *ret)
{
        int r = gpuh_sysfs_read_u64(fd, attr, ret);

        if (r < 0 || *ret > max)
                return r == -ENOENT ? -ENOENT : -EBADMSG;
        return 0;
}

/* Identity: vendor, then device; without these the function cannot be classified at all. */
static int read_ident(int fd, struct gpuh_pci_dev *d)
{
        uint64_t v;
        int r;

        r = read_req_id(fd, "vendor", 0xffff, &v);
        if (r < 0)
                return r;
        d->vendor_id = (uint16_t) v;
        r = read_req_id(fd, "device", 0xffff, &v);
        if (r < 0)
                return r;
        d->device_id = (uint16_t) v;
        return 0;
}

/* The class code, 24 bits (base class, subclass, prog-if). */
static int read_class_code(int fd, struct gpuh_pci_dev *d)
{
        uint64_t v;
        int r;

        r = read_req_id(fd, "class", 0xffffff, &v);
        if (r < 0)
                return r;
        d->class_code = (uint32_t) v;
        return 0;
}

/* Subsystem ids and revision, each optional (-1 when absent or garbage). */
static void read_subsys(int fd, struct gpuh_pci_dev *d, struct gpuh_warnings *w)
{
        d->subsys_vendor_id = read_opt_id(fd, d->name, "subsystem_vendor", 0xffff, w);
        d->subsys_device_id = read_opt_id(fd, d->name, "subsystem_device", 0xffff, w);
        d->revision = read_opt_id(fd, d->name, "revision", 0xff, w);
}

/* The bound driver's name from the "driver" link; none when unbound. */
static int read_driver(int fd, struct gpuh_pci_dev *d, struct gpuh_warnings *w)
{
        char buf[256];
        int r;

        r = gpuh_sysfs_link_basename(fd, "driver", buf, sizeof(buf));
        if (r >= 0) {
                d->driver = strdup(buf);
                if (!d->driver)
                        return -ENOMEM;
        } else if (r != -ENOENT)
                gpuh_warn(w, "%s: driver: %s", d->name, strerror(-r));
        return 0;
}

/* The NUMA node, -1 when the platform has none (or it is absent). */
static void read_numa(int fd, struct gpuh_pci_dev *d, struct gpuh_warnings *w)
{
        int node, r;

        r = gpuh_sysfs_read_int(fd, "numa_node", &node);
        if (r == 0 && node >= -1)
                d->numa_node = node;
        else if (r != -ENOENT)
                gpuh_warn(w, "%s: numa_node: %s", d->name, r < 0 ? strerror(-r) : "out of range");
}

/* The IOMMU group number, the basename of the "iommu_group" link. */
static void read_iommu_group(int fd, struct gpuh_pci_dev *d, struct gpuh_warnings *w)
{
        char buf[256];
        int r;

        r = gpuh_sysfs_link_basename(fd, "iommu_group", buf, sizeof(buf));
        if (r >= 0) {
                char *end;
                long g;

                errno = 0;
                g = strtol(buf, &end, 10);
                if (errno || *end || g < 0 || g > INT_MAX || buf[0] == '-' || buf[0] == '+')
                        gpuh_warn(w, "%s: iommu_group: not a group number '%s'", d->name, buf);
                else
                        d->iommu_group = (int) g;
        } else if (r != -ENOENT)
                gpuh_warn(w, "%s: iommu_group: %s", d->name, strerror(-r));
}

/* A non-negative count attribute into @ret, left alone when absent or unusable. */
static void read_count(int fd, const char *dev, const char *attr, int *ret, struct gpuh_warnings *w)
{
        int n, r;

        r = gpuh_sysfs_read_int(fd, attr, &n);
        if (r == 0 && n >= 0)
                *ret = n;
        else if (r != -ENOENT)
                gpuh_warn(w, "%s: %s: %s", dev, attr, r < 0 ? strerror(-r) : "negative");
}

/* SR-IOV, as a PF (sriov_totalvfs, sriov_numvfs, sriov_vf_device) and as a VF (physfn), in
 * that order. */
static void read_sriov(int fd, struct gpuh_pci_dev *d, struct gpuh_warnings *w)
{
        char buf[256];
        int r;

        read_count(fd, d->name, "sriov_totalvfs", &d->sriov_totalvfs, w);
        read_count(fd, d->name, "sriov_numvfs", &d->sriov_numvfs, w);

        if (d->sriov_totalvfs > 0) {
                /* bare hex, "%x\n" (drivers/pci/iov.c, sriov_vf_device_show) */
                r = gpuh_sysfs_read(fd, "sriov_vf_device", buf, sizeof(buf));
                if (r > 0 && r <= 4 && strspn(buf, "0123456789abcdefABCDEF") == (size_t) r)
                        d->sriov_vf_device = (int) strtol(buf, NULL, 16);
                else if (r != -ENOENT)
                        gpuh_warn(w, "%s: sriov_vf_device: %s", d->name,
                                  r < 0 ? strerror(-r) : "not a device id");
        }

        r = gpuh_sysfs_link_basename(fd, "physfn", buf, sizeof(buf));
        if (r >= 0) {
                if (gpuh_pci_addr_parse(buf, &d->physfn) == 0)
                        d->is_vf = true;
                else
                        gpuh_warn(w, "%s: physfn: not a PCI address '%s'", d->name, buf);
        } else if (r != -ENOENT)
                gpuh_warn(w, "%s: physfn: %s", d->name, strerror(-r));
}

/* boot_vga: 1 for the device the firmware used as the console. */
static void read_boot_vga(int fd, struct gpuh_pci_dev *d, struct gpuh_warnings *w)
{
        int b, r;

        r = gpuh_sysfs_read_int(fd, "boot_vga", &b);
        if (r == 0 && (b == 0 || b == 1))
                d->boot_vga = b == 1;
        else if (r != -ENOENT)
                gpuh_warn(w, "%s: boot_vga: %s", d->name, r < 0 ? strerror(-r) : "not 0 or 1");
}

/* reset_method, as the kernel lists it (space-separated methods). */
static int read_reset_method(int fd, struct gpuh_pci_dev *d, struct gpuh_warnings *w)
{
        char buf[256];
        int r;

        r = gpuh_sysfs_read(fd, "reset_method", buf, sizeof(buf));
        if (r >= 0) {
                d->reset_method = strdup(buf);
                if (!d->reset_method)
                        return -ENOMEM;
        } else if (r != -ENOENT)
                gpuh_warn(w, "%s: reset_method: %s", d->name, strerror(-r));
        return 0;
}

int gpuh_pci_dev_read(int root_fd, const struct gpuh_pci_addr *addr, unsigned fill,
                      struct gpuh_warnings *w, struct gpuh_pci_dev **ret)
{
        _cleanup_pci_dev_ struct gpuh_pci_dev *d = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->addr = *addr;
        d->subsys_vendor_id = d->subsys_device_id = d->revision = -1;
        d->numa_node = -1;
        d->iommu_group = -1;
        d->sriov_vf_device = -1;

        fd = dev_dir(root_fd, addr, d->name);
        if (fd < 0)
                return fd == -ENOTDIR ? -ENOENT : fd;

        /* In this order: it is the order of the sysfs reads and of the warnings. */
        if ((fill & GPUH_PCI_FILL_IDENT) && (r = read_ident(fd, d)) < 0)
                return r;
        if ((fill & GPUH_PCI_FILL_CLASS) && (r = read_class_code(fd, d)) < 0)
                return r;
        if (fill & GPUH_PCI_FILL_SUBSYS)
                read_subsys(fd, d, w);
        if ((fill & GPUH_PCI_FILL_DRIVER) && (r = read_driver(fd, d, w)) < 0)
                return r;
        if (fill & GPUH_PCI_FILL_NUMA)
                read_numa(fd, d, w);
        if (fill & GPUH_PCI_FILL_IOMMU)
                read_iommu_group(fd, d, w);
        if (fill & GPUH_PCI_FILL_SRIOV)
                read_sriov(fd, d, w);
        if (fill & GPUH_PCI_FILL_BOOT_VGA)
                read_boot_vga(fd, d, w);
        if ((fill & GPUH_PCI_FILL_RESET) && (r = read_reset_method(fd, d, w)) < 0)
                return r;
        if (fill & GPUH_PCI_FILL_TOPOLOGY)
                read_topology(root_fd, d, w);

        *ret = TAKE_PTR(d);
        return 0;
}

static int cmp_addr(const void *a, const void *b)
{
        return gpuh_pci_addr_cmp(a, b);
}

int gpuh_pci_dev_list(int root_fd, struct gpuh_warnings *w, struct gpuh_pci_addr **ret)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ struct gpuh_pci_addr *addrs = NULL;
        size_t n = 0;
        int r;

        r = gpuh_sysfs_list(root_fd, "bus/pci/devices", &names);
        if (r < 0)
                return r;
        addrs = calloc((size_t) r + 1, sizeof(*addrs));
        if (!addrs)
                return -ENOMEM;
        for (char **p = names; *p; p++) {
                char canon[GPUH_PCI_ADDR_MAX];
                if (gpuh_pci_addr_parse(*p, &addrs[n]) < 0 ||
                    !streq(gpuh_pci_addr_format(&addrs[n], canon), *p)) {
                        gpuh_warn(w, "bus/pci/devices/%s: not a PCI device name", *p);
                        continue;
                }
                n++;
        }
        qsort(addrs, n, sizeof(*addrs), cmp_addr);
        *ret = TAKE_PTR(addrs);
        return (int) n;
}

int gpuh_pci_dev_list_vfs(int root_fd, const struct gpuh_pci_addr *pf, struct gpuh_warnings *w,
                          struct gpuh_pci_addr **ret_addrs, int **ret_index)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ struct gpuh_pci_addr *addrs = NULL;
        _cleanup_free_ int *idx = NULL;
        _cleanup_close_ int fd = -EBADF;
        char pfname[GPUH_PCI_ADDR_MAX], buf[64];
        size_t n = 0;
        int r;

        fd = dev_dir(root_fd, pf, pfname);
        if (fd < 0)
                return fd;
        r = gpuh_sysfs_list(fd, ".", &names);
        if (r < 0)
                return r;
        addrs = calloc((size_t) r + 1, sizeof(*addrs));
        idx = calloc((size_t) r + 1, sizeof(*idx));
        if (!addrs || !idx)
                return -ENOMEM;
        /* names are in natural order, so virtfn2 comes before virtfn10 */
        for (char **p = names; *p; p++) {
                char *end;
                long i;

                if (strncmp(*p, "virtfn", 6) != 0 || !(*p)[6])
                        continue;
                errno = 0;
                i = strtol(*p + 6, &end, 10);
                if (errno || *end || i < 0 || i > 0xffff || (*p)[6] == '-' || (*p)[6] == '+')
                        continue;
                /* Only read: a dangling link shows when the VF itself is read. */
                r = gpuh_sysfs_link_basename(fd, *p, buf, sizeof(buf));
                if (r < 0 || gpuh_pci_addr_parse(buf, &addrs[n]) < 0) {
                        gpuh_warn(w, "%s: %s: %s", pfname, *p,
                                  r < 0 ? strerror(-r) : "not a PCI address");
                        continue;
                }
                idx[n++] = (int) i;
        }
        *ret_addrs = TAKE_PTR(addrs);
        *ret_index = TAKE_PTR(idx);
        return (int) n;
}
