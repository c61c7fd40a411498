/* SPDX-License-Identifier: Apache-2.0 */
/* check.c: the host fitness checks of gpudiscovery --check. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check.h"
#include "fileio.h"
#include "macro.h"
#include "strtable.h"
#include "sysfs.h"

#ifndef GPUH_CLOUDSTACK_HOOKS_DIR
#define GPUH_CLOUDSTACK_HOOKS_DIR "/etc/cloudstack/agent/hooks"
#endif
#ifndef GPUH_CLOUDSTACK_SCRIPTS_DIR
#define GPUH_CLOUDSTACK_SCRIPTS_DIR "/usr/share/cloudstack-common/scripts/vm/hypervisor/kvm"
#endif
#ifndef GPUH_LIBVIRT_HOOKS_DIR
#define GPUH_LIBVIRT_HOOKS_DIR "/etc/libvirt/hooks"
#endif
#define AGENT_PROPERTIES "/etc/cloudstack/agent/agent.properties"
#define CLOUDSTACK_COMMON "/usr/share/cloudstack-common"

static const char *const check_status_table[_GPUH_CHECK_STATUS_MAX] = {
        [GPUH_CHECK_OK] = "ok",
        [GPUH_CHECK_INFO] = "info",
        [GPUH_CHECK_WARN] = "warn",
        [GPUH_CHECK_FAIL] = "fail",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_check_status, enum gpuh_check_status, check_status_table, "?")

void gpuh_findings_clear(struct gpuh_findings *f)
{
        for (size_t i = 0; i < f->n; i++) {
                free(f->v[i].device);
                free(f->v[i].message);
        }
        free(f->v);
        *f = (struct gpuh_findings) { 0 };
}

bool gpuh_check_ready(const struct gpuh_findings *f)
{
        for (size_t i = 0; i < f->n; i++)
                if (f->v[i].status == GPUH_CHECK_FAIL)
                        return false;
        return true;
}

static int add(struct gpuh_findings *f, enum gpuh_check_status st, const char *check, const struct gpuh_pci_addr *dev,
               const char *fmt, ...) _printf_(5, 6);
static int add(struct gpuh_findings *f, enum gpuh_check_status st, const char *check, const struct gpuh_pci_addr *dev,
               const char *fmt, ...)
{
        struct gpuh_finding *nv = reallocarray(f->v, f->n + 1, sizeof(*nv)), *e;
        char a[GPUH_PCI_ADDR_MAX];
        va_list ap;
        int r;

        if (!nv)
                return -ENOMEM;
        f->v = nv;
        e = &f->v[f->n];
        *e = (struct gpuh_finding) { .status = st, .check = check };
        if (dev && !(e->device = strdup(gpuh_pci_addr_format(dev, a))))
                return -ENOMEM;
        va_start(ap, fmt);
        r = vasprintf(&e->message, fmt, ap);
        va_end(ap);
        if (r < 0) {
                free(e->device);
                return -ENOMEM;
        }
        f->n++;
        return 0;
}

/* ---- the kernel ----------------------------------------------------------------------- */

static int check_config(const struct gpuh_check_opts *o, struct gpuh_findings *f)
{
        if (o->config_error)
                return add(f, GPUH_CHECK_FAIL, "config", NULL, "%s; the hooks refuse every domain that asks for GPUs "
                           "until it is fixed", o->config_error);
        return add(f, GPUH_CHECK_OK, "config", NULL, "the configuration is usable");
}

/* The platforms whose IOMMU advice differs. */
enum platform {
        PLATFORM_UNKNOWN,
        PLATFORM_INTEL,         /* x86, Intel VT-d */
        PLATFORM_AMD,           /* x86, AMD-Vi (AMD, Hygon) */
        PLATFORM_POWER,         /* IBM POWER, PowerNV (OPAL firmware) */
};

static const char *const platform_names[] = {
        [PLATFORM_UNKNOWN] = "platform unknown",
        [PLATFORM_INTEL] = "Intel VT-d",
        [PLATFORM_AMD] = "AMD-Vi",
        [PLATFORM_POWER] = "POWER",
};

/* What to do when the IOMMU is off, by platform. */
static const char *const platform_advice[] = {
        [PLATFORM_UNKNOWN] = "enable the IOMMU in the firmware setup (Intel: VT-d, and boot with intel_iommu=on; "
                             "AMD: AMD-Vi/IOMMU, on in Linux unless amd_iommu=off; POWER: bare-metal PowerNV only)",
        [PLATFORM_INTEL] = "enable VT-d (Intel Virtualization Technology for Directed I/O) in the firmware setup "
                           "and boot with intel_iommu=on (iommu=pt keeps the host's own DMA fast)",
        [PLATFORM_AMD] = "enable the IOMMU (AMD-Vi, often called IOMMU or AMD I/O Virtualization) in the firmware "
                         "setup; Linux turns it on by itself: make sure amd_iommu=off or iommu=off is not on the "
                         "kernel command line (iommu=pt is fine)",
        [PLATFORM_POWER] = "POWER needs no firmware switch or kernel parameter: a bare-metal PowerNV (OPAL) kernel "
                           "puts every PCI device in an IOMMU group; none here means this is not a PowerNV host "
                           "(a PowerVM LPAR or a guest cannot pass devices through)",
};

/*
 * Which platform's advice applies, read from sysfs alone (with --sysfs-root it is another host's,
 * so neither uname(2) nor /proc/cpuinfo can say), the first rule that answers:
 *  1. the IOMMU units: class/iommu/dmar* are Intel VT-d units (drivers/iommu/intel/dmar.c names
 *     them "dmar%d"), ivhd* AMD-Vi units (drivers/iommu/amd/init.c, "ivhd%d");
 *  2. firmware/opal: OPAL firmware, a PowerNV POWER host (arch/powerpc/platforms/powernv/opal.c);
 *  3. the PCI host bridges, the functions DDDD:00:00.0: vendor 8086 Intel, 1022 AMD or 1d94
 *     Hygon (AMD-Vi) with class 0x0600 (host bridge); 1014 IBM with class 0x0604 (a POWER PHB's
 *     root port).
 */
static enum platform platform_of(int sysfs_fd, char **units)
{
        _cleanup_strv_free_ char **devs = NULL;

        for (char **u = units; u && *u; u++) {
                if (strncmp(*u, "dmar", 4) == 0)
                        return PLATFORM_INTEL;
                if (strncmp(*u, "ivhd", 4) == 0)
                        return PLATFORM_AMD;
        }
        if (gpuh_sysfs_exists(sysfs_fd, "firmware/opal") == 1)
                return PLATFORM_POWER;
        if (gpuh_sysfs_list(sysfs_fd, "bus/pci/devices", &devs) <= 0)
                return PLATFORM_UNKNOWN;
        for (char **d = devs; *d; d++) {
                char rel[PATH_MAX], vendor[16], class[16];
                size_t l = strlen(*d);

                if (l < 8 || !streq(*d + l - 8, ":00:00.0"))
                        continue;
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/vendor", *d);
                if (gpuh_sysfs_read(sysfs_fd, rel, vendor, sizeof(vendor)) <= 0)
                        continue;
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/class", *d);
                if (gpuh_sysfs_read(sysfs_fd, rel, class, sizeof(class)) <= 0)
                        continue;
                if (strncmp(class, "0x0600", 6) == 0 && streq(vendor, "0x8086"))
                        return PLATFORM_INTEL;
                if (strncmp(class, "0x0600", 6) == 0 && (streq(vendor, "0x1022") || streq(vendor, "0x1d94")))
                        return PLATFORM_AMD;
                if (strncmp(class, "0x0604", 6) == 0 && streq(vendor, "0x1014"))
                        return PLATFORM_POWER;
        }
        return PLATFORM_UNKNOWN;
}

/*
 * The IOMMU is on when devices sit in IOMMU groups (kernel/iommu_groups), whatever class/iommu
 * lists: a POWER host's IOMMU (its PHBs' TCE tables) has no class/iommu entries at all. Units
 * without groups mean an IOMMU the kernel does not use.
 */
static int check_iommu(const struct gpuh_check_opts *o, const struct gpuh_inventory *inv, struct gpuh_findings *f)
{
        _cleanup_strv_free_ char **units = NULL;
        int n = gpuh_sysfs_list(o->sysfs_fd, "class/iommu", &units), r;
        bool intel = false, ir_all = true, ir_known = false;
        enum platform p = platform_of(o->sysfs_fd, n > 0 ? units : NULL);
        char unsafe[16] = "";

        if (n < 0)
                n = 0;
        if (inv->iommu && n > 0)
                r = add(f, GPUH_CHECK_OK, "iommu", NULL, "IOMMU on (%s, %d unit%s: %s%s), devices in IOMMU groups",
                        platform_names[p], n, n > 1 ? "s" : "", units[0], n > 1 ? ", ..." : "");
        else if (inv->iommu)
                r = add(f, GPUH_CHECK_OK, "iommu", NULL, "IOMMU on (%s, no units in class/iommu), devices in IOMMU "
                        "groups", platform_names[p]);
        else if (n > 0)
                r = add(f, GPUH_CHECK_FAIL, "iommu", NULL, "IOMMU units (%s: %s) but no IOMMU groups: the kernel does "
                        "not use the IOMMU; %s", platform_names[p], units[0], platform_advice[p]);
        else
                r = add(f, GPUH_CHECK_FAIL, "iommu", NULL, "no IOMMU groups and no IOMMU units (%s): %s",
                        platform_names[p], platform_advice[p]);
        if (r < 0)
                return r;

        /* Intel VT-d: ecap bit 3 is interrupt remapping support */
        for (char **u = units; n > 0 && *u; u++) {
                char rel[PATH_MAX], buf[64], *end;
                uint64_t ecap = 0;
                int k;

                /* "%llx\n", no 0x (drivers/iommu/intel/iommu.c, ecap_show) */
                snprintf(rel, sizeof(rel), "class/iommu/%s/intel-iommu/ecap", *u);
                k = gpuh_sysfs_read(o->sysfs_fd, rel, buf, sizeof(buf));
                if (k > 0) {
                        errno = 0;
                        ecap = strtoull(buf, &end, 16);
                        if (errno || *end || !isxdigit((unsigned char) buf[0]))
                                k = -EBADMSG;
                }
                if (k <= 0) {
                        if (strncmp(*u, "dmar", 4) == 0)
                                intel = true;
                        continue;
                }
                intel = true;
                ir_known = true;
                if (!(ecap & (1u << 3)))
                        ir_all = false;
        }
        gpuh_sysfs_read(o->sysfs_fd, "module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", unsafe, sizeof(unsafe));
        if (unsafe[0] == 'Y' || unsafe[0] == '1')
                r = add(f, GPUH_CHECK_WARN, "interrupt-remapping", NULL, "vfio_iommu_type1 allow_unsafe_interrupts is on: "
                        "a guest can inject interrupts into the host; remove the option unless the platform has no "
                        "interrupt remapping");
        else if (ir_known && !ir_all)
                r = add(f, GPUH_CHECK_FAIL, "interrupt-remapping", NULL, "an Intel IOMMU unit has no interrupt remapping "
                        "(ecap bit 3): VFIO refuses to assign devices on it");
        else if (ir_known)
                r = add(f, GPUH_CHECK_OK, "interrupt-remapping", NULL, "interrupt remapping supported by every IOMMU unit");
        else if (intel || p == PLATFORM_INTEL)
                r = add(f, GPUH_CHECK_INFO, "interrupt-remapping", NULL, "cannot read the IOMMU units' capabilities "
                        "(intel-iommu/ecap): interrupt remapping unknown");
        else if (p == PLATFORM_AMD)
                r = add(f, GPUH_CHECK_INFO, "interrupt-remapping", NULL, "AMD IOMMU: interrupt remapping is part of "
                        "AMD-Vi");
        else if (p == PLATFORM_POWER)
                r = add(f, GPUH_CHECK_INFO, "interrupt-remapping", NULL, "POWER: no x86 interrupt remapping to check "
                        "(VFIO on POWER uses the sPAPR TCE backend, not vfio_iommu_type1)");
        else
                r = add(f, GPUH_CHECK_INFO, "interrupt-remapping", NULL, "interrupt remapping unknown on this platform");
        return r;
}

static int check_vfio(const struct gpuh_check_opts *o, struct gpuh_findings *f)
{
        if (gpuh_sysfs_exists(o->sysfs_fd, "bus/pci/drivers/vfio-pci") == 1)
                return add(f, GPUH_CHECK_OK, "vfio-pci", NULL, "vfio-pci is loaded");
        return add(f, GPUH_CHECK_FAIL, "vfio-pci", NULL, "vfio-pci is not loaded: modprobe vfio-pci (and list it in "
                   "/etc/modules-load.d/) so that GPUs can be bound to it");
}

static int check_gpus(const struct gpuh_inventory *inv, struct gpuh_findings *f)
{
        size_t offered = 0, vgpu = 0;
        int r;

        if (inv->n_gpus == 0)
                return add(f, GPUH_CHECK_FAIL, "gpus", NULL, "no GPU on this host");
        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpuh_gpu *g = &inv->gpus[i];
                const char *drv = g->dev->driver;
                bool has_vgpu = g->n_types > 0;

                for (size_t k = 0; k < g->n_vfs && !has_vgpu; k++)
                        has_vgpu = g->vfs[k].n_types > 0 || g->vfs[k].has_vendor_vgpu;
                vgpu += has_vgpu;
                if (drv && streq(drv, "nouveau") &&
                    (r = add(f, GPUH_CHECK_WARN, "nouveau", &g->dev->addr, "%s is on nouveau: NVIDIA vGPU needs the "
                             "nvidia driver, and passthrough is safest with nouveau blacklisted", g->device_name
                             ? g->device_name : "this GPU")) < 0)
                        return r;
                if ((g->blockers & GPUH_BLOCK_BOOT_VGA) &&
                    (r = add(f, GPUH_CHECK_INFO, "console-gpu", &g->dev->addr, "drives the host console (boot_vga): "
                             "not offered for passthrough (discovery.passthrough_boot_vga)")) < 0)
                        return r;
                if (g->blockers & GPUH_BLOCK_GROUP_SHARED) {
                        char a[GPUH_PCI_ADDR_MAX] = "";
                        for (size_t m = 0; m < g->n_members && !a[0]; m++)
                                if (g->members[m].role == GPUH_ROLE_FOREIGN)
                                        gpuh_pci_addr_format(&g->members[m].dev->addr, a);
                        r = add(f, GPUH_CHECK_WARN, "iommu-group", &g->dev->addr, "its IOMMU group %d also holds %s, "
                                "which is not part of the GPU: it cannot be passed through (move the card to another "
                                "slot, or enable ACS)", g->dev->iommu_group, a[0] ? a : "another device");
                        if (r < 0)
                                return r;
                }
                if ((!drv || !*drv) &&
                    (r = add(f, GPUH_CHECK_WARN, "no-driver", &g->dev->addr, "%s has no driver bound: if this host does "
                             "not leave GPUs unbound on purpose, a change was left half done (run libvirt-vm-state-change "
                             "reconcile)", g->device_name ? g->device_name : "this GPU")) < 0)
                        return r;
                if (g->blockers == 0)
                        offered++;
        }
        for (size_t i = 0; i < inv->n_quarantined; i++) {
                const struct gpuh_quarantined *q = &inv->quarantined[i];
                r = add(f, GPUH_CHECK_FAIL, "quarantine", &q->addr, "quarantined%s%s: %s; no domain gets it until it is "
                        "looked at and its file in the state directory's quarantine/ is removed",
                        q->domain[0] ? " during a change for " : "", q->domain, q->reason);
                if (r < 0)
                        return r;
        }
        /* vGPU layouts (docs/layouts.md): what CloudStack is offered, or why a layout is not applied */
        for (size_t i = 0; inv->layouts && i < inv->layouts->n; i++) {
                const struct gpuh_gpu_layout *gl = &inv->layouts->v[i];

                r = gl->error ? add(f, GPUH_CHECK_WARN, "layout", &gl->gpu->dev->addr, "%s", gl->why)
                              : add(f, GPUH_CHECK_OK, "layout", &gl->gpu->dev->addr, "%zu vGPU slot%s advertised (%s)",
                                    gl->n_slots, gl->n_slots == 1 ? "" : "s", gpuh_layout_kind_to_string(gl->kind));
                /* MIG-backed slots a GPU instance blocks now */
                for (size_t k = 0; r >= 0 && k < gl->n_notes; k++)
                        r = add(f, GPUH_CHECK_WARN, "layout", &gl->gpu->dev->addr, "%s", gl->notes[k]);
                if (r < 0)
                        return r;
        }
        r = add(f, offered ? GPUH_CHECK_OK : GPUH_CHECK_INFO, "passthrough", NULL,
                "%zu of %zu GPU%s offered for whole-GPU passthrough", offered, inv->n_gpus, inv->n_gpus > 1 ? "s" : "");
        if (r < 0)
                return r;
        return add(f, vgpu ? GPUH_CHECK_OK : GPUH_CHECK_INFO, "vgpu", NULL, vgpu
                   ? "%zu GPU%s with mdev or NVIDIA vendor-specific vGPU support"
                   : "%zu GPUs with mdev or vendor vGPU support: no vGPU driver loaded (NVIDIA vGPU manager, i915 GVT-g)",
                   vgpu, vgpu > 1 ? "s" : "");
}

/*
 * MIG and the vGPU mode, as NVML said (docs/inventory.md, "MIG and vGPU modes"): a MIG mode
 * waiting for a GPU reset, and a GPU in MIG mode with VFs but no GPU instance, on which no
 * MIG-backed vGPU can be made (enabling VFs wipes the GIs: they are made after; research
 * mig-vgpu.md, "Order of operations").
 */
static int check_mig(const struct gpuh_inventory *inv, struct gpuh_findings *f)
{
        int r;

        if (inv->nvml && inv->nvml->error &&
            (r = add(f, GPUH_CHECK_INFO, "nvml", NULL, "NVML not usable (%s): MIG and the vGPU mode of the NVIDIA GPUs "
                     "are unknown; GPUs with vendor vGPU VFs are taken to be in equal-size mode", inv->nvml->error)) < 0)
                return r;
        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpuh_gpu *g = &inv->gpus[i];
                const struct gpuh_nvml_gpu *n = NULL;
                char why[256];

                if (gpuh_inventory_nvml(inv, g, why, sizeof(why), &n))
                        continue;
                if (n->mig_current >= 0 && n->mig_pending >= 0 && n->mig_current != n->mig_pending &&
                    (r = add(f, GPUH_CHECK_WARN, "mig", &g->dev->addr, "MIG mode is %s, %s after the next GPU reset",
                             n->mig_current ? "enabled" : "disabled", n->mig_pending ? "enabled" : "disabled")) < 0)
                        return r;
                if (n->mig_current == 1 && n->n_gis == 0 && g->n_vfs > 0 &&
                    (r = add(f, GPUH_CHECK_WARN, "mig", &g->dev->addr, "MIG is enabled but the GPU has no GPU instance: "
                             "no MIG-backed vGPU can be created until one is (enabling SR-IOV removes them: create "
                             "them after)")) < 0)
                        return r;
        }
        return 0;
}

/* ---- the installation ------------------------------------------------------------------- */

/* @path (absolute) under @root, its symbolic links followed inside @root. */
static int resolve(const char *root, const char *path, char *out, size_t size, struct stat *st)
{
        char cur[PATH_MAX];

        snprintf(cur, sizeof(cur), "%s", path);
        for (int hops = 0; hops < 16; hops++) {
                char full[PATH_MAX * 2], target[PATH_MAX];
                ssize_t n;

                snprintf(full, sizeof(full), "%s%s", streq(root, "/") ? "" : root, cur);
                if (lstat(full, st) < 0)
                        return -errno;
                if (!S_ISLNK(st->st_mode)) {
                        snprintf(out, size, "%s", cur);
                        return 0;
                }
                n = readlink(full, target, sizeof(target) - 1);
                if (n < 0)
                        return -errno;
                target[n] = '\0';
                if (target[0] == '/')
                        snprintf(cur, sizeof(cur), "%s", target);
                else {
                        char *slash = strrchr(cur, '/');
                        char dir[PATH_MAX];
                        snprintf(dir, sizeof(dir), "%.*s", slash ? (int) (slash - cur) : 0, cur);
                        if (snprintf(cur, sizeof(cur), "%s/%s", dir, target) >= (int) sizeof(cur))
                                return -ENAMETOOLONG;
                }
        }
        return -ELOOP;
}

struct agent_props {
        char *basedir, *transformer, *on_start, *on_stop, *start_method, *stop_method, *scripts_dir;
        bool found;
};

static void props_clear(struct agent_props *p)
{
        free(p->basedir);
        free(p->transformer);
        free(p->on_start);
        free(p->on_stop);
        free(p->start_method);
        free(p->stop_method);
        free(p->scripts_dir);
}

static char *trim(char *s)
{
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = '\0';
        return s;
}

/* The keys the agent reads for its hooks (agent.properties, Java properties: key=value,
 * key: value, # and ! comments); absent keys keep their defaults. */
static int read_agent_properties(const char *root, struct agent_props *p)
{
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        size_t len;
        int r;

        snprintf(path, sizeof(path), "%s%s", streq(root, "/") ? "" : root, AGENT_PROPERTIES);
        r = gpuh_read_file_at(AT_FDCWD, path, 1 << 20, &text, &len);
        p->found = r == 0;
        for (char *line = text, *next; r == 0 && line && *line; line = next) {
                char *k, *v, *sep;
                struct { const char *key; char **dst; } keys[] = {
                        { "agent.hooks.basedir", &p->basedir },
                        { "agent.hooks.libvirt_vm_xml_transformer.shell_script", &p->transformer },
                        { "agent.hooks.libvirt_vm_on_start.shell_script", &p->on_start },
                        { "agent.hooks.libvirt_vm_on_stop.shell_script", &p->on_stop },
                        { "agent.hooks.libvirt_vm_on_start.method", &p->start_method },
                        { "agent.hooks.libvirt_vm_on_stop.method", &p->stop_method },
                        { "kvm.scripts.dir", &p->scripts_dir },
                };

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                k = trim(line);
                if (!*k || *k == '#' || *k == '!')
                        continue;
                sep = k + strcspn(k, "=:");
                if (!*sep)
                        continue;
                *sep = '\0';
                k = trim(k);
                v = trim(sep + 1);
                for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                        if (streq(k, keys[i].key) && *v) {
                                free(*keys[i].dst);
                                if (!(*keys[i].dst = strdup(v)))
                                        return -ENOMEM;
                        }
        }
        return 0;
}

/* A hook the agent or libvirtd runs: present, executable, and gpuhooks' @tool; @without says
 * what happens when it is not. */
static int check_hook(const struct gpuh_check_opts *o, struct gpuh_findings *f, const char *check, const char *path,
                      const char *tool, const char *without)
{
        char real[PATH_MAX], full[PATH_MAX * 2];
        const char *base;
        struct stat st;
        int r = resolve(o->root, path, real, sizeof(real), &st);

        if (r < 0)
                return add(f, GPUH_CHECK_FAIL, check, NULL, "%s: %s: %s", path,
                           r == -ENOENT ? "missing" : strerror(-r), without);
        snprintf(full, sizeof(full), "%s%s", streq(o->root, "/") ? "" : o->root, real);
        if (!S_ISREG(st.st_mode) || access(full, X_OK) < 0)
                return add(f, GPUH_CHECK_FAIL, check, NULL, "%s: not an executable file: %s", path, without);
        base = strrchr(real, '/');
        base = base ? base + 1 : real;
        if (!streq(base, tool) || !strstr(real, "/gpuhooks/"))
                return add(f, GPUH_CHECK_WARN, check, NULL, "%s is %s, not gpuhooks' %s", path, real, tool);
        return add(f, GPUH_CHECK_OK, check, NULL, "%s -> %s", path, real);
}

static int check_install(const struct gpuh_check_opts *o, struct gpuh_findings *f)
{
        struct agent_props p = { 0 };
        char path[PATH_MAX], sdir[PATH_MAX];
        const char *basedir, *scripts;
        int r;

        r = read_agent_properties(o->root, &p);
        if (r < 0)
                goto out;
        basedir = p.basedir ? p.basedir : GPUH_CLOUDSTACK_HOOKS_DIR;
        r = add(f, GPUH_CHECK_INFO, "cloudstack-agent", NULL, p.found
                ? "agent.properties: hooks in %s" : "no %s: CloudStack's defaults assumed (hooks in %s)",
                p.found ? basedir : AGENT_PROPERTIES, basedir);
        if (r < 0)
                goto out;

        snprintf(path, sizeof(path), "%s/%s", basedir, p.transformer ? p.transformer : "libvirt-vm-xml-transformer.sh");
        if ((r = check_hook(o, f, "agent-transformer-hook", path, "libvirt-vm-xml-transformer",
                            "the agent starts VMs without giving them GPUs through gpuhooks")) < 0)
                goto out;
        snprintf(path, sizeof(path), "%s/%s", basedir, p.on_start ? p.on_start : "libvirt-vm-state-change.sh");
        if ((r = check_hook(o, f, "agent-start-hook", path, "libvirt-vm-state-change",
                            "the agent's onStart/onStop reach nothing")) < 0)
                goto out;
        if (p.on_stop && !(p.on_start && streq(p.on_stop, p.on_start))) {
                snprintf(path, sizeof(path), "%s/%s", basedir, p.on_stop);
                if ((r = check_hook(o, f, "agent-stop-hook", path, "libvirt-vm-state-change",
                                    "the agent's onStop reaches nothing")) < 0)
                        goto out;
        }
        if ((p.start_method && !streq(p.start_method, o->cfg->on_start_method)) ||
            (p.stop_method && !streq(p.stop_method, o->cfg->on_stop_method))) {
                r = add(f, GPUH_CHECK_FAIL, "agent-methods", NULL, "the agent calls the hook with methods '%s'/'%s' but "
                        "state_change.on_start_method/on_stop_method are '%s'/'%s'",
                        p.start_method ? p.start_method : "onStart", p.stop_method ? p.stop_method : "onStop",
                        o->cfg->on_start_method, o->cfg->on_stop_method);
                if (r < 0)
                        goto out;
        }
        snprintf(path, sizeof(path), "%s/qemu.d/gpuhooks", GPUH_LIBVIRT_HOOKS_DIR);
        if ((r = check_hook(o, f, "libvirt-qemu-hook", path, "libvirt-vm-state-change",
                            "libvirtd neither binds GPUs before a start nor releases them after a stop")) < 0)
                goto out;

        scripts = GPUH_CLOUDSTACK_SCRIPTS_DIR;
        if (p.scripts_dir) {
                if (p.scripts_dir[0] == '/')
                        snprintf(sdir, sizeof(sdir), "%s", p.scripts_dir);
                else
                        snprintf(sdir, sizeof(sdir), "%s/%s", CLOUDSTACK_COMMON, p.scripts_dir);
                scripts = sdir;
        }
        if (snprintf(path, sizeof(path), "%s/gpudiscovery.sh", scripts) >= (int) sizeof(path))
                r = add(f, GPUH_CHECK_FAIL, "gpudiscovery", NULL, "kvm.scripts.dir is too long");
        else
                r = check_hook(o, f, "gpudiscovery", path, "gpudiscovery",
                               "the agent fails to start without a gpudiscovery.sh");
out:
        props_clear(&p);
        return r;
}

int gpuh_check_host(const struct gpuh_check_opts *o, const struct gpuh_inventory *inv, struct gpuh_findings *ret)
{
        struct gpuh_check_opts oo = *o;
        int r;

        *ret = (struct gpuh_findings) { 0 };
        if (!oo.root || !*oo.root)
                oo.root = "/";
        if ((r = check_config(&oo, ret)) < 0 || (r = check_iommu(&oo, inv, ret)) < 0 || (r = check_vfio(&oo, ret)) < 0 ||
            (r = check_gpus(inv, ret)) < 0 || (r = check_mig(inv, ret)) < 0 || (r = check_install(&oo, ret)) < 0) {
                gpuh_findings_clear(ret);
                return r;
        }
        return 0;
}

json_object *gpuh_findings_to_json(const struct gpuh_findings *f)
{
        json_object *o = json_object_new_object(), *arr = json_object_new_array();

        if (!o || !arr) {
                json_object_put(o);
                json_object_put(arr);
                return NULL;
        }
        json_object_object_add(o, "ready", json_object_new_boolean(gpuh_check_ready(f)));
        for (size_t i = 0; i < f->n; i++) {
                json_object *e = json_object_new_object();
                if (!e) {
                        json_object_put(o);
                        json_object_put(arr);
                        return NULL;
                }
                json_object_object_add(e, "status", json_object_new_string(gpuh_check_status_to_string(f->v[i].status)));
                json_object_object_add(e, "check", json_object_new_string(f->v[i].check));
                json_object_object_add(e, "device", f->v[i].device ? json_object_new_string(f->v[i].device) : NULL);
                json_object_object_add(e, "message", json_object_new_string(f->v[i].message));
                json_object_array_add(arr, e);
        }
        json_object_object_add(o, "findings", arr);
        return o;
}
