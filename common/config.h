/* SPDX-License-Identifier: Apache-2.0 */
/* config.h: the gpuhooks configuration file (JSON; schemas/gpuhooks-config.schema.json). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "pci_addr.h"
#include "request.h"

#define GPUH_CONFIG_DEFAULT_PATH "/etc/gpuhooks/gpuhooks.json"
#define GPUH_CONFIG_MAX_BYTES (1u << 20)

/* transformer.rules[].match: fnmatch(3) globs; NULL fields match anything. */
struct gpuh_rule_match {
        char *name;                     /* the domain name, "i-2-154-VM" */
        char *service_offering;         /* CloudStack 4.23+ <cloudstack:instance> fields */
        char *host_tag;                 /* any of the offering's host tags */
        char *account;
        char *domain;
        char *project;
        char *zone;
        char **tag_keys;                /* resource_tag: every key must exist, its value match */
        char **tag_globs;
        size_t n_tags;
};

struct gpuh_rule {
        struct gpuh_rule_match match;
        struct gpuh_request *requests;
        size_t n_requests;
};

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
        /* "transformer" */
        struct gpuh_rule *rules;
        size_t n_rules;
        bool allow_mixed;               /* a domain may mix passthrough and vGPU */
        int reservation_ttl_s;          /* 10 .. 86400, default 600 */
        bool managed_by_libvirt;        /* managed='yes': libvirt binds, not our state-change hook */
        /* "state_change" */
        char *on_start_method;          /* CloudStack's method names; default "onStart" */
        char *on_stop_method;           /* default "onStop" */
        int write_timeout_ms;           /* each sysfs write and read-back; 100 .. 600000, default 10000 */
        int lock_timeout_ms;            /* 100 .. 600000, default 10000 */
        bool enable_sriov;              /* enable a PF's VFs when a VF asked for does not exist */
        struct gpuh_keep_vfio *keep_vfio;       /* left on vfio-pci at release */
        size_t n_keep_vfio;
        int nvidia_mdev_grace_ms;       /* 0 .. 60000, default 10000 */
        int reconcile_min_age_s;        /* 0 .. 86400, default 120 */
        int prepare_timeout_ms;         /* 1000 .. 3600000, default 120000: prepare's whole run */
        /* "layouts" (layout.h) */
        struct gpuh_layout *layouts;
        size_t n_layouts;
};

/* state_change.keep_vfio: "VVVV:DDDD" or "VVVV:*" */
struct gpuh_keep_vfio {
        uint16_t vendor;
        int device;                     /* -1: any */
};

/* ---- The loader's tables: one per JSON object of the file, every key it accepts ---- */

enum gpuh_config_type {
        GPUH_CONFIG_IGNORED,    /* accepted and not read ("$schema") */
        GPUH_CONFIG_BOOL,       /* true or false, into a bool */
        GPUH_CONFIG_INT,        /* an integer from min to max, into an int */
        GPUH_CONFIG_GLOB,       /* a non-empty string (an fnmatch(3) pattern), into a char * */
        GPUH_CONFIG_CUSTOM,     /* anything else (arrays, objects, enums, null): the key's load() */
};

struct json_object;
struct gpuh_config_at;          /* config.c: the file, the dotted name of the object, the error */

struct gpuh_config_key {
        const char *name;
        enum gpuh_config_type type;
        size_t offset;          /* BOOL, INT, GLOB, some CUSTOM: the field in the object's struct */
        int64_t min, max;       /* INT: the accepted range */
        int64_t def;            /* INT, BOOL: the default (gpuh_config_new_default()) */
        int (*load)(void *target, const struct gpuh_config_key *k, struct json_object *v,
                    const struct gpuh_config_at *at);   /* CUSTOM: 0, -EBADMSG (and the line), -ENOMEM */
};

struct gpuh_config_section {
        const char *name;       /* "" (the top level), "discovery", "libvirt", "transformer", "state_change"
                                 * (fields of struct gpuh_config), "transformer.rules[]" (struct gpuh_rule),
                                 * "transformer.rules[].match" (struct gpuh_rule_match), "layouts[]"
                                 * (struct gpuh_layout), "layouts[].match", "layouts[].profiles[]" */
        const struct gpuh_config_key *keys;     /* in the order they are read */
        size_t n_keys;
        bool in_config;         /* the keys' offsets are in struct gpuh_config */
};

/**
 * gpuh_config_sections:
 * @ret_n: receives the number of sections
 *
 * The tables gpuh_config_load() reads the file by (schemas/gpuhooks-config.schema.json; the unit
 * test test_config_schema checks one against the other). A key absent from its section's table
 * is an error. transformer.rules[].requests is read by gpuh_requests_from_json().
 *
 * Returns: the sections (static, the top level first).
 */
const struct gpuh_config_section *gpuh_config_sections(size_t *ret_n);

/** gpuh_config_keep_vfio: the function @vendor:@device stays on vfio-pci at release. */
bool gpuh_config_keep_vfio(const struct gpuh_config *c, uint16_t vendor, uint16_t device);

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
 *          -EINVAL (a directory);
 *          -E2BIG (over GPUH_CONFIG_MAX_BYTES); -ENOMEM; other -errno of open/read.
 */
int gpuh_config_load(const char *path, bool must_exist, struct gpuh_config **ret, char **reterr);

/**
 * gpuh_config_load_or_default:
 * @path, @must_exist: as gpuh_config_load()
 * @ret: the configuration, freed with gpuh_config_free(); set whenever 0 is returned
 * @ret_error: NULL when the file was used (or absent and allowed to be); else the one line
 *             gpuh_config_load() gives, naming the file, the key and the problem (and for a
 *             JSON syntax error its line and column); caller frees
 *
 * For the hooks, which every domain of the host passes through: one typo in the file must not
 * refuse them all. When gpuh_config_load() fails, *@ret holds the defaults instead, plus what
 * can be trusted on its own: when the file is JSON, every transformer.rules entry whose match
 * is valid, with its requests when they are valid too, else none (so that a domain a rule gives
 * GPUs is still known to want GPUs, and is refused rather than started without them), and its
 * state_change.on_start_method/on_stop_method if valid (so the agent's renamed calls are still
 * understood), and its layouts if all of them are valid (so the vGPU slots CloudStack was shown
 * keep their addresses, docs/layouts.md). The caller decides what may go on with
 * defaults (docs/state-change.md, docs/transformer.md, docs/inventory.md: "A broken
 * configuration").
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_config_load_or_default(const char *path, bool must_exist, struct gpuh_config **ret, char **ret_error);

/** gpuh_config_free: accepts NULL; returns NULL. */
struct gpuh_config *gpuh_config_free(struct gpuh_config *c);
static inline void gpuh_config_freep(struct gpuh_config **c) { gpuh_config_free(*c); }

/** gpuh_config_is_extra_vendor: @vendor is listed in discovery.extra_gpu_vendors. */
bool gpuh_config_is_extra_vendor(const struct gpuh_config *c, uint16_t vendor);

/** gpuh_config_excludes_passthrough: @a is listed in discovery.exclude_passthrough. */
bool gpuh_config_excludes_passthrough(const struct gpuh_config *c, const struct gpuh_pci_addr *a);
