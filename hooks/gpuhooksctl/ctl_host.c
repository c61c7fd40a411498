/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_host.c: the host as the verbs read it: its inventory, and which domains run. */
#include <errno.h>
#include <string.h>

#include "ctl.h"
#include "host.h"
#include "log.h"
#include "quarantine.h"
#include "vgpu_names.h"

/* The host: inventory, usage, quarantine. Returns 0 or an exit status. */
int ctl_scan_host(struct ctl *x, struct gpuh_host **ret)
{
        _cleanup_free_ char *err = NULL;
        struct gpuh_host *host = NULL;
        int r;

        r = gpuh_host_scan(&(struct gpuh_host_opts) {
                        .sysfs_root = x->c.sysfs_root, .pci_ids = x->a.pci_ids ? x->a.pci_ids : x->c.pci_ids,
                        .cache_dir = x->c.cache_dir ? x->c.cache_dir : "", .connect = x->c.connect,
                        .no_libvirt = x->c.no_libvirt, .xml_dirs = x->c.xml_dirs, .xml_dirs_env = x->c.xml_dirs_env,
                        .nvml_lib = x->c.nvml_lib, .cfg = x->cfg,
                }, &host, &err);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return ctl_fail("%s", err ? err : strerror(-r));
        /* a VF whose vGPU type no list names any more (a full GPU) is named from the names
         * earlier runs saw, as gpudiscovery names it (docs/inventory.md) */
        if (gpuh_vgpu_names_update(host->inv, x->sc.state_dir) == -ENOMEM) {
                gpuh_host_free(host);
                return log_oom();
        }
        r = gpuh_quarantine_load(x->sc.state_dir, &host->inv->quarantined, &host->inv->n_quarantined);
        if (r == -ENOMEM) {
                gpuh_host_free(host);
                return log_oom();
        }
        if (r < 0)
                gpuh_warn(&host->inv->warnings, "cannot read the quarantine in '%s/quarantine': %s", x->sc.state_dir,
                          strerror(-r));
        *ret = host;
        return 0;
}

/* Which domains run: libvirt unless --no-libvirt, else (or when it cannot answer) the XML files
 * libvirt keeps. NULL when neither could be read (or without memory): states are unknown then. */
struct gpuh_vm_usage *ctl_load_usage(const struct ctl *x)
{
        struct gpuh_vm_usage *u = NULL;
        char *const *dirs = x->sc.xml_dirs ? x->sc.xml_dirs : x->cfg->domain_xml_dirs;
        struct gpuh_warnings w = { 0 };

        if (gpuh_vm_usage_new(&u) < 0)
                return NULL;
        if (!x->c.no_libvirt) {
                _cleanup_free_ char *err = NULL;
                if (gpuh_vm_usage_load_libvirt(u, x->c.connect ? x->c.connect : x->cfg->libvirt_uri,
                                               x->cfg->libvirt_timeout_ms, &err) >= 0)
                        return u;
                gpuh_log(LOG_INFO, "libvirt cannot say which domains run (%s): reading its domain XML files",
                         err ? err : "no answer");
        }
        if (dirs)
                gpuh_vm_usage_load_dirs(u, dirs, &w);
        gpuh_warnings_clear(&w);
        if (gpuh_vm_usage_source(u) == GPUH_VM_SOURCE_NONE)
                return gpuh_vm_usage_free(u);
        return u;
}

/* "running", "shutoff", ... as the usage knows the domain; "undefined" when it does not know
 * it; NULL when nothing could be read. */
const char *ctl_domain_state(struct gpuh_vm_usage *u, const char *domain)
{
        const struct gpuh_vm *vm;

        if (!u)
                return NULL;
        vm = gpuh_vm_usage_find(u, domain);
        return vm ? gpuh_vm_state_to_string(vm->state) : "undefined";
}

