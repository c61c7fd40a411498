/* SPDX-License-Identifier: Apache-2.0 */
/* host.c: scanning sysfs, naming devices and asking libvirt, overlapped. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "host.h"
#include "log.h"

/* What runs beside the sysfs scan: loading pci.ids, and reading libvirt's XML files. */
struct side_job {
        struct gpuh_pci_names *names;
        struct gpuh_vm_usage *usage;
        char *const *dirs;              /* NULL: no XML files to read here */
        struct gpuh_warnings warnings;
        int dirs_read;                  /* gpuh_vm_usage_load_dirs() result */
};

static void *side_job_run(void *arg)
{
        struct side_job *j = arg;

        gpuh_pci_names_load(j->names);
        if (j->dirs)
                j->dirs_read = gpuh_vm_usage_load_dirs(j->usage, j->dirs, &j->warnings);
        return NULL;
}

unsigned gpuh_host_threads(void)
{
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        /* the side job holds a core only at the start */
        return n < 1 ? 2 : n > 7 ? 8 : (unsigned) n + 1;
}

struct gpuh_host *gpuh_host_free(struct gpuh_host *h)
{
        if (!h)
                return NULL;
        if (h->names) {
                int r = gpuh_pci_names_save(h->names);
                if (r < 0)
                        gpuh_log_errno(LOG_DEBUG, r, "names cache not written: %m");
        }
        gpuh_inventory_free(h->inv);
        gpuh_vm_usage_free(h->usage);
        gpuh_pci_names_free(h->names);
        gpuh_sysfs_free(h->sysfs);
        strv_free(h->env_dirs);
        free(h);
        return NULL;
}

int gpuh_host_scan(const struct gpuh_host_opts *o, struct gpuh_host **ret, char **reterr)
{
        _cleanup_(gpuh_host_freep) struct gpuh_host *h = NULL;
        _cleanup_free_ char *err = NULL;
        struct gpuh_libvirt_query *query = NULL;
        struct gpuh_nvml_query *nvq = NULL;
        _cleanup_free_ struct gpuh_pci_addr *nv_gpus = NULL;
        struct side_job side = { 0 };
        const char *root, *cache_dir, *uri;
        char *const *dirs;
        pthread_t tid;
        bool side_started;
        int r;

        *reterr = NULL;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        root = o->sysfs_root ? o->sysfs_root : "/sys";
        cache_dir = o->cache_dir ? o->cache_dir : GPUH_PCI_NAMES_CACHE_DIR;
        uri = o->connect ? o->connect : o->cfg->libvirt_uri;
        dirs = gpuh_vm_usage_dirs(o->xml_dirs, o->xml_dirs_env, o->cfg, &h->env_dirs);
        if (!dirs)
                return -ENOMEM;

        r = gpuh_sysfs_open(root, &h->sysfs);
        if (r < 0) {
                if (asprintf(reterr, "cannot open sysfs root '%s': %s", root, strerror(-r)) < 0)
                        *reterr = NULL;
                return r;
        }
        if (gpuh_pci_names_new(root, o->pci_ids, cache_dir, &h->names) < 0 ||
            gpuh_vm_usage_new(&h->usage) < 0)
                return -ENOMEM;

        if (!o->no_libvirt && gpuh_vm_usage_libvirt_start(uri, o->cfg->libvirt_timeout_ms, &query) < 0)
                query = NULL;   /* reported below, as an unreachable libvirt */
        xmlInitParser();
        side.names = h->names;
        side.usage = h->usage;
        side.dirs = o->no_libvirt ? dirs : NULL;
        side_started = pthread_create(&tid, NULL, side_job_run, &side) == 0;
        if (!side_started)
                side_job_run(&side);

        r = gpuh_inventory_scan(h->sysfs->root_fd, o->cfg, gpuh_host_threads(), &h->inv);
        if (side_started)
                pthread_join(tid, NULL);
        if (r < 0) {
                if (query)
                        gpuh_vm_usage_libvirt_finish(h->usage, query, NULL);
                gpuh_warnings_clear(&side.warnings);
                if (r != -ENOMEM && asprintf(reterr, "cannot read '%s/bus/pci/devices': %s", root,
                                             r == -ENOENT ? "not a sysfs tree" : strerror(-r)) < 0)
                        *reterr = NULL;
                return r;
        }
        r = gpuh_inventory_name(h->inv, h->names);
        if (r < 0) {
                if (query)
                        gpuh_vm_usage_libvirt_finish(h->usage, query, NULL);
                gpuh_warnings_clear(&side.warnings);
                return r;
        }
        /* NVML, only for NVIDIA GPUs on the nvidia driver, in its own child (the threads are
         * done: fork is safe), answering while libvirt does. */
        r = gpuh_inventory_nvml_gpus(h->inv, &nv_gpus);
        if (r > 0 && gpuh_nvml_query_start(o->nvml_lib, nv_gpus, (size_t) r, GPUH_NVML_TIMEOUT_MS, &nvq) < 0)
                nvq = NULL;
        if (r > 0 && !nvq) {
                h->inv->nvml = calloc(1, sizeof(*h->inv->nvml));
                if (!h->inv->nvml || !(h->inv->nvml->error = strdup("cannot start the NVML query process")))
                        return -ENOMEM; /* the libvirt child is killed by its death signal */
        }

        /* VM usage: libvirt first; when it cannot answer, the files it keeps. */
        if (!o->no_libvirt) {
                r = query ? gpuh_vm_usage_libvirt_finish(h->usage, query, &err) : -ECHILD;
                if (r < 0) {
                        gpuh_warn(&h->inv->warnings, "libvirt unreachable (%s), VM usage read from domain XML files",
                                  err ? err : strerror(-r));
                        side.dirs_read = gpuh_vm_usage_load_dirs(h->usage, dirs, &side.warnings);
                }
        }
        if (nvq && gpuh_nvml_query_finish(nvq, &h->inv->nvml) < 0) {
                gpuh_warnings_clear(&side.warnings);
                return -ENOMEM;
        }
        r = gpuh_warnings_move(&h->inv->warnings, &side.warnings);
        gpuh_warnings_clear(&side.warnings);
        if (r < 0 || side.dirs_read == -ENOMEM)
                return -ENOMEM;
        if (gpuh_vm_usage_source(h->usage) == GPUH_VM_SOURCE_NONE)
                gpuh_warn(&h->inv->warnings, "no VM usage: neither libvirt nor a domain XML directory could be read");
        h->inv->usage = h->usage;
        *ret = TAKE_PTR(h);
        return 0;
}
