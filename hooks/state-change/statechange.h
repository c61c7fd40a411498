/* SPDX-License-Identifier: Apache-2.0 */
/* statechange.h: preparing a domain's GPUs before it starts and releasing them after (docs/state-change.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct json_object;

/*
 * What a call works on. The library reads no environment: the caller resolves the roots once
 * (libvirt-vm-state-change: its option, then GPUHOOKS_SYSFS_ROOT, GPUHOOKS_STATE_DIR,
 * GPUHOOKS_DEV_DIR, GPUHOOKS_PROC_ROOT, then the defaults "/sys", GPUH_STATE_DIR_DEFAULT,
 * "/dev", "/proc"), and @cfg and the four roots are required: without one, every call fails
 * with -EINVAL and changes nothing.
 */
struct gpuh_sc_opts {
        const struct gpuh_config *cfg;  /* required */
        const char *sysfs_root;         /* required: sysfs ("/sys") */
        const char *state_dir;          /* required: reservations, journals, locks (GPUH_STATE_DIR_DEFAULT) */
        const char *dev_dir;            /* required: device nodes, for holder detection ("/dev") */
        const char *proc_root;          /* required: procfs, for holder detection ("/proc") */
        bool dry_run;                   /* change nothing, take no lock; list the steps */
        const char *vmname;             /* gpuh_sc_prepare(): libvirt's VMNAME argument, which must be
                                         * the XML's <name> exactly for a domain with GPUs; NULL:
                                         * not checked */
        /* gpuh_sc_stopped(), gpuh_sc_reconcile(): which domains run (as the transformer) */
        const char *connect;
        bool no_libvirt;
        char *const *xml_dirs;          /* NULL: the configuration's libvirt.domain_xml_dirs (the CLI
                                         * resolves --domain-xml-dir, then GPUHOOKS_DOMAIN_XML_DIRS) */
        int min_age_s;                  /* gpuh_sc_reconcile(); < 0: state_change.reconcile_min_age_s */
        bool refuse_held;               /* gpuh_sc_release(): change nothing and fail with -EBUSY while a
                                         * process holds /dev/vfio/GROUP of a device the domain's journal
                                         * or reservation names (its QEMU still runs): an operator's
                                         * release (gpuhooksctl), which libvirt did not ask for */
        /* The configuration file could not be used and @cfg holds the defaults
         * (gpuh_config_load_or_default()): its one line, or NULL. A domain without GPUs and
         * without state goes on; what needs the configuration fails with this line. */
        const char *config_error;
        /* NVIDIA's management library, for the GPU instances and MIG mode of MIG-backed layout
         * slots (nvml.h; loaded in a child, only when a record names such a slot or a journal a
         * GPU instance or MIG mode); NULL: GPUH_NVML_LIB_DEFAULT */
        const char *nvml_lib;
};

/*
 * Each operation returns, with @o->dry_run, the plan through @ret_plan: a JSON object
 * {"domain", "operation", "steps": [...], "error"} (an array of them for reconcile), also on
 * failure. Without dry run @ret_plan may be NULL.
 */

/**
 * gpuh_sc_prepare:
 * @o: options
 * @xml, @len: the domain XML libvirt passes on stdin
 * @ret_plan: the dry run's plan
 * @reterr: on failure, one line naming the domain, the device and the cause (caller frees)
 *
 * libvirt's `prepare begin`: checks that the domain's allocation record, hostdevs and
 * reservation agree, then binds, creates and sets each device, journaling every change before
 * it is made; on failure undoes them all. A domain that asks for no GPU passes untouched, also
 * with @o->config_error; one that does is refused with it. For one that does, @o->vmname (when
 * set) must be the XML's <name> byte for byte: release finds the journal by VMNAME (libvirt
 * passes the name it keeps, untrimmed, as argv[1]).
 *
 * Returns: 0; -EBADMSG (unusable XML; @o->config_error and the domain asks for GPUs; VMNAME is
 *          not the XML's name); -ENODEV (asks for GPUs the XML does not carry, a device
 *          or a node is missing); -EBUSY (held by another domain or a process); -ETIMEDOUT (a
 *          lock or a write); -ENOSPC (no instance of an mdev or vGPU type left); -EIO (the
 *          journal cannot be written); -EINVAL (@o lacks a required field); -errno of the
 *          kernel's writes.
 */
int gpuh_sc_prepare(const struct gpuh_sc_opts *o, const char *xml, size_t len, struct json_object **ret_plan,
                    char **reterr);

/**
 * gpuh_sc_started:
 * @o: options
 * @domain: the domain name
 * @reterr: as above
 *
 * `started begin`, `reconnect begin` and CloudStack's onStart: the domain's reservation, if it
 * has one, is marked running (it no longer expires). @o->config_error does not stop it (it
 * needs nothing from the configuration).
 *
 * Returns: 0 (also when there is no reservation); -ETIMEDOUT; -EINVAL (bad name, or @o lacks a
 *          required field); -errno.
 */
int gpuh_sc_started(const struct gpuh_sc_opts *o, const char *domain, char **reterr);

/**
 * gpuh_sc_release:
 * @o: options
 * @domain: the domain name
 * @ret_plan, @reterr: as above
 *
 * `release end`: replays the domain's journal in reverse and frees its reservation.
 * Idempotent; an entry whose device another domain's journal now names is dropped untouched.
 * With @o->config_error a domain with neither journal nor reservation passes (0); one with
 * either is not released (the journal is kept for a release or reconcile once the
 * configuration is fixed: state_change.keep_vfio decides what is put back).
 *
 * With @o->refuse_held, a process holding the vfio group of any device its journal or
 * reservation names refuses the whole release before anything changes.
 *
 * Returns: 0; -EBUSY (a device is still held by a process: its entry is kept; with
 *          @o->refuse_held nothing is released); -ETIMEDOUT;
 *          -EBADMSG (the journal is malformed; or @o->config_error and the domain has state);
 *          -EINVAL (bad name, or @o lacks a required field); -errno of the kernel's writes.
 */
int gpuh_sc_release(const struct gpuh_sc_opts *o, const char *domain, struct json_object **ret_plan, char **reterr);

/**
 * gpuh_sc_stopped:
 * @o: options
 * @domain: the domain name
 * @ret_plan, @reterr: as above
 *
 * CloudStack's onStop: when libvirt (or, failing that, its status files) says the domain no
 * longer runs, as gpuh_sc_release(), but a reservation is freed only when it is `running`
 * (a `reserved` one may already belong to the domain's next start). @o->config_error: as
 * gpuh_sc_release().
 *
 * Returns: 0 (also when the domain still runs: nothing is done); -EIO when it cannot be told
 *          whether the domain runs; otherwise as gpuh_sc_release().
 */
int gpuh_sc_stopped(const struct gpuh_sc_opts *o, const char *domain, struct json_object **ret_plan, char **reterr);

/**
 * gpuh_sc_reconcile:
 * @o: options
 * @ret_plan, @reterr: as above
 *
 * For every domain with a journal or a running reservation that no longer runs, as
 * gpuh_sc_stopped(); skips a domain whose lock another invocation holds and journals younger
 * than the minimum age. Goes on after a domain fails and reports the first failure. With
 * @o->config_error it changes nothing and fails with that line.
 *
 * Returns: 0; -EBADMSG (@o->config_error); -EIO when it cannot be told which domains run;
 *          -EINVAL (@o lacks a required field); the first domain's error.
 */
int gpuh_sc_reconcile(const struct gpuh_sc_opts *o, struct json_object **ret_plan, char **reterr);
