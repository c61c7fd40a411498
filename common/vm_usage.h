/* SPDX-License-Identifier: Apache-2.0 */
/* vm_usage.h: which libvirt domain uses which PCI function or mdev. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "mdev.h"
#include "pci_addr.h"
#include "warn.h"

enum gpuh_vm_state {
        GPUH_VM_RUNNING,
        GPUH_VM_PAUSED,
        GPUH_VM_BLOCKED,
        GPUH_VM_SHUTDOWN,       /* being shut down */
        GPUH_VM_PMSUSPENDED,
        GPUH_VM_CRASHED,
        GPUH_VM_NOSTATE,
        GPUH_VM_SHUTOFF,
        GPUH_VM_DEFINED,        /* persistent config only; state not known */
        _GPUH_VM_STATE_MAX,
};

enum gpuh_vm_source {
        GPUH_VM_SOURCE_NONE,            /* nothing could be read */
        GPUH_VM_SOURCE_LIBVIRT,         /* one libvirt connection, all domains */
        GPUH_VM_SOURCE_DOMAIN_XML,      /* the XML files libvirt keeps */
        _GPUH_VM_SOURCE_MAX,
};

struct gpuh_vm {
        char *name;
        enum gpuh_vm_state state;
};

struct gpuh_vm_usage;

/**
 * gpuh_vm_state_to_string / _from_string: "running", "paused", "blocked", "shutdown",
 * "pmsuspended", "crashed", "nostate", "shutoff" (libvirt's virDomainState names, as the
 * state="" of its /run/libvirt/qemu status XML spells them), "defined"; "nostate" for a value
 * outside the enum; _from_string: -EINVAL.
 */
const char *gpuh_vm_state_to_string(enum gpuh_vm_state s);
int gpuh_vm_state_from_string(const char *s);

/** gpuh_vm_state_is_active: the domain has a QEMU process (its devices are in use now). */
bool gpuh_vm_state_is_active(enum gpuh_vm_state s);

/**
 * gpuh_vm_source_to_string / _from_string: "none", "libvirt", "domain-xml" (the inventory's
 * vm_usage); "none" for a value outside the enum; _from_string: -EINVAL.
 */
const char *gpuh_vm_source_to_string(enum gpuh_vm_source s);
int gpuh_vm_source_from_string(const char *s);

/** gpuh_vm_usage_new: an empty table. Returns 0 or -ENOMEM. */
int gpuh_vm_usage_new(struct gpuh_vm_usage **ret);

/** gpuh_vm_usage_free: accepts NULL; returns NULL. */
struct gpuh_vm_usage *gpuh_vm_usage_free(struct gpuh_vm_usage *u);
static inline void gpuh_vm_usage_freep(struct gpuh_vm_usage **u) { gpuh_vm_usage_free(*u); }

/** gpuh_vm_usage_source: where the table's content came from. */
enum gpuh_vm_source gpuh_vm_usage_source(const struct gpuh_vm_usage *u);

/**
 * gpuh_vm_usage_add_xml:
 * @u: the table
 * @xml, @len: one domain definition (`<domain>`, as virDomainGetXMLDesc and /etc/libvirt/qemu
 *             files hold) or one status file (`<domstatus state=...><domain>`, as
 *             /run/libvirt/qemu holds); CloudStack's agent form with several `<devices>`
 *             elements is accepted
 * @state: the domain's state, or -1 to take it from the document (a `<domstatus>`'s state,
 *         GPUH_VM_DEFINED for a plain `<domain>`)
 *
 * Records the domain and every `<hostdev mode='subsystem'>` of type pci (source address) and
 * mdev (source UUID), and `<interface type='hostdev'>` PCI sources. A domain seen twice (status
 * and config file) is merged; the more specific state wins. Parsed by libxml2 without network
 * access or entity expansion. Source: libvirt docs/formatdomain.rst, "Host device assignment".
 *
 * Returns: 0; -EBADMSG when the document is not well-formed or has no domain name; -ENOMEM.
 */
int gpuh_vm_usage_add_xml(struct gpuh_vm_usage *u, const char *xml, size_t len, int state);

/**
 * gpuh_vm_usage_load_libvirt:
 * @u: the table; on success its source becomes GPUH_VM_SOURCE_LIBVIRT
 * @uri: connection URI, or NULL for libvirt's default (LIBVIRT_DEFAULT_URI, then its built-in)
 * @timeout_ms: deadline for the whole exchange
 * @reterr: receives a one-line reason on failure (caller frees), may be NULL
 *
 * Opens one read-only connection and lists all domains, active and inactive, in a child
 * process, so a hung libvirtd costs at most @timeout_ms and libvirt never writes to our stderr.
 *
 * Returns: number of domains; -ECONNREFUSED when libvirt cannot be reached or fails;
 *          -ETIMEDOUT; -EBADMSG when the child's reply is malformed; -errno of fork/pipe.
 */
int gpuh_vm_usage_load_libvirt(struct gpuh_vm_usage *u, const char *uri, int timeout_ms,
                               char **reterr);

struct gpuh_libvirt_query;

/**
 * gpuh_vm_usage_libvirt_start:
 * @uri: as gpuh_vm_usage_load_libvirt()
 * @timeout_ms: deadline for the whole exchange, counted from now
 * @ret: the running query, ended by gpuh_vm_usage_libvirt_finish()
 *
 * Starts the query child and returns at once, so the caller can read sysfs meanwhile. Call it
 * before starting threads (the child is forked from this one).
 *
 * Returns: 0; -ENOMEM; -errno of pipe2/fork.
 */
int gpuh_vm_usage_libvirt_start(const char *uri, int timeout_ms, struct gpuh_libvirt_query **ret);

/**
 * gpuh_vm_usage_libvirt_finish:
 * @u: the table; on success its source becomes GPUH_VM_SOURCE_LIBVIRT
 * @q: the query (freed, and its child reaped, in every case)
 * @reterr: as gpuh_vm_usage_load_libvirt()
 *
 * Waits for the answer until the deadline; the child is killed when it passes.
 *
 * Returns: as gpuh_vm_usage_load_libvirt().
 */
int gpuh_vm_usage_libvirt_finish(struct gpuh_vm_usage *u, struct gpuh_libvirt_query *q, char **reterr);

/**
 * gpuh_vm_usage_load_dirs:
 * @u: the table; when any directory could be read its source becomes GPUH_VM_SOURCE_DOMAIN_XML
 * @dirs: NULL-terminated directories, e.g. "/run/libvirt/qemu", "/etc/libvirt/qemu"; their
 *        "*.xml" files are read (4 MiB each at most), except "<name>.xml" of a domain already
 *        recorded as active: its live status file counts, not its persistent config (as
 *        libvirt itself reports a running domain), so put the status directory first
 * @w: one warning per unreadable or malformed file
 *
 * Returns: the number of directories that could be read; -ENOMEM.
 */
int gpuh_vm_usage_load_dirs(struct gpuh_vm_usage *u, char *const *dirs, struct gpuh_warnings *w);

/**
 * gpuh_vm_usage_dirs:
 * @given: the --domain-xml-dir values, NULL-terminated, or NULL
 * @env_list: GPUHOOKS_DOMAIN_XML_DIRS as the CLI layer read it (colon-separated), or NULL
 * @cfg: the configuration, or NULL
 * @ret_owned: receives a vector to strv_free() when @env_list was used, else NULL
 *
 * Returns: the domain XML directories to read: @given, else @env_list, else the
 *          configuration's libvirt.domain_xml_dirs (NULL without @cfg); NULL on ENOMEM.
 */
char *const *gpuh_vm_usage_dirs(char *const *given, const char *env_list, const struct gpuh_config *cfg,
                                char ***ret_owned);

/**
 * gpuh_vm_usage_seal:
 * @u: the table
 *
 * Prepares @u for lookups (sorts it). Lookups seal an unsealed table themselves, which is not
 * safe from several threads: seal first when threads will look up at once. Adding to @u
 * unseals it.
 */
void gpuh_vm_usage_seal(struct gpuh_vm_usage *u);

/**
 * gpuh_vm_usage_pci / gpuh_vm_usage_mdev:
 * @u: the table (sealed, for lookups from several threads)
 * @buf, @cap: receive up to @cap domains that use the function (or mdev UUID, any case),
 *             active ones first, then by name; pointers stay valid until @u changes
 *
 * Returns: the number of such domains, which may exceed @cap (0 when unused).
 */
size_t gpuh_vm_usage_pci(struct gpuh_vm_usage *u, const struct gpuh_pci_addr *addr,
                         const struct gpuh_vm **buf, size_t cap);
size_t gpuh_vm_usage_mdev(struct gpuh_vm_usage *u, const char *uuid,
                          const struct gpuh_vm **buf, size_t cap);

/** gpuh_vm_usage_n_vms: number of distinct domains recorded. */
size_t gpuh_vm_usage_n_vms(const struct gpuh_vm_usage *u);

/** gpuh_vm_usage_find: the domain named @name, or NULL when no source knows it. */
const struct gpuh_vm *gpuh_vm_usage_find(const struct gpuh_vm_usage *u, const char *name);

/** gpuh_vm_usage_get: domain number @i (0 .. n_vms - 1) in the order first seen; NULL past the end. */
const struct gpuh_vm *gpuh_vm_usage_get(const struct gpuh_vm_usage *u, size_t i);
