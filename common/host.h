/* SPDX-License-Identifier: Apache-2.0 */
/* host.h: one consistent look at the host: its GPUs and which domains use them. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "inventory.h"
#include "pci_names.h"
#include "sysfs.h"
#include "vm_usage.h"

/* Where to look; NULL fields take the environment, then the config file, then the default. */
/* Resolved by the CLI layer (struct gpuh_cli_common): NULL takes the default named. */
struct gpuh_host_opts {
        const char *sysfs_root;         /* NULL: "/sys" */
        const char *pci_ids;            /* NULL: libpci's own */
        const char *cache_dir;          /* NULL: GPUH_PCI_NAMES_CACHE_DIR; "" none */
        const char *connect;            /* config libvirt.uri, LIBVIRT_DEFAULT_URI (libvirt reads it) */
        bool no_libvirt;
        char *const *xml_dirs;          /* --domain-xml-dir values, or NULL */
        const char *xml_dirs_env;       /* else these (colon-separated), else config libvirt.domain_xml_dirs */
        const char *nvml_lib;           /* NULL: GPUH_NVML_LIB_DEFAULT (nvml.h) */
        const struct gpuh_config *cfg;  /* required */
};

struct gpuh_host {
        struct gpuh_sysfs *sysfs;
        struct gpuh_pci_names *names;
        struct gpuh_vm_usage *usage;
        struct gpuh_inventory *inv;     /* named, with usage set; warnings include usage's */
        char **env_dirs;                /* owned copy of GPUHOOKS_DOMAIN_XML_DIRS */
};

/**
 * gpuh_host_scan:
 * @o: where to look
 * @ret: the snapshot, freed with gpuh_host_free() (which saves the names cache)
 * @reterr: on failure a one-line reason (caller frees)
 *
 * Three things at once, as each would otherwise wait for the others: libvirt answers in its
 * query child (forked first, before any thread), pci.ids or the names cache (and without
 * libvirt the domain XML files) load in a thread, and sysfs is read by a thread pool. When
 * libvirt cannot answer, the XML files libvirt keeps are read instead, with a warning.
 *
 * Returns: 0; -ENOENT/-ENOTDIR/-EACCES when the sysfs root cannot be opened or holds no
 *          bus/pci/devices; -ENOMEM.
 */
int gpuh_host_scan(const struct gpuh_host_opts *o, struct gpuh_host **ret, char **reterr);

/** gpuh_host_free: accepts NULL; returns NULL. */
struct gpuh_host *gpuh_host_free(struct gpuh_host *h);
static inline void gpuh_host_freep(struct gpuh_host **h) { gpuh_host_free(*h); }

/** gpuh_host_threads: threads worth using here: one more than the cores, at most 8. */
unsigned gpuh_host_threads(void);
