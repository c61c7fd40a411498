/* SPDX-License-Identifier: Apache-2.0 */
/* config.h: the gpuhooks configuration file (JSON; schemas/gpuhooks-config.schema.json). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci_addr.h"

#define GPUH_CONFIG_DEFAULT_PATH "/etc/gpuhooks/gpuhooks.json"
#define GPUH_CONFIG_MAX_BYTES (1u << 20)

struct gpuh_config {
        /* "discovery" */
        uint16_t *extra_gpu_vendors;    /* vendor ids treated as GPU vendors besides 10de/1002/8086 */
        size_t n_extra_gpu_vendors;
        bool passthrough_boot_vga;      /* offer the console GPU for full passthrough */
        struct gpuh_pci_addr *exclude_passthrough;      /* never offered for full passthrough */
        size_t n_exclude_passthrough;
        /* "libvirt" */
        char *libvirt_uri;              /* NULL: libvirt's default */
        int libvirt_timeout_ms;         /* 1 .. 60000, default 10000 */
        char **domain_xml_dirs;         /* NULL-terminated; default /run/libvirt/qemu, /etc/libvirt/qemu */
};

/**
 * gpuh_config_new_default:
 * @ret: a configuration holding every default, freed with gpuh_config_free()
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_config_new_default(struct gpuh_config **ret);

/**
 * gpuh_config_load:
 * @path: the file; NULL means GPUH_CONFIG_DEFAULT_PATH
 * @must_exist: false lets an absent file mean "all defaults" (the default path); true makes it
 *              an error (a path the operator named)
 * @ret: the configuration, freed with gpuh_config_free()
 * @reterr: on failure a one-line reason naming the file and the key, caller frees; may be NULL
 *
 * Unknown keys and wrongly typed values are errors, so a typo never silently changes nothing.
 *
 * Returns: 0; -ENOENT (absent and @must_exist); -EBADMSG (not JSON, or not the schema);
 *          -E2BIG (over GPUH_CONFIG_MAX_BYTES); -ENOMEM; other -errno of open/read.
 */
int gpuh_config_load(const char *path, bool must_exist, struct gpuh_config **ret, char **reterr);

/** gpuh_config_free: accepts NULL; returns NULL. */
struct gpuh_config *gpuh_config_free(struct gpuh_config *c);
static inline void gpuh_config_freep(struct gpuh_config **c) { gpuh_config_free(*c); }

/** gpuh_config_is_extra_vendor: @vendor is listed in discovery.extra_gpu_vendors. */
bool gpuh_config_is_extra_vendor(const struct gpuh_config *c, uint16_t vendor);

/** gpuh_config_excludes_passthrough: @a is listed in discovery.exclude_passthrough. */
bool gpuh_config_excludes_passthrough(const struct gpuh_config *c, const struct gpuh_pci_addr *a);
