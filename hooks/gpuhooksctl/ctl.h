/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl.h: what the files of gpuhooksctl share (status.h is its library's API), one file per
 * verb group as in kmod's tools/:
 *
 *   gpuhooksctl.c   main: options, the verb, the context; then the verb's function
 *   ctl_output.c    the error line (or JSON error), JSON documents, times and ages
 *   ctl_host.c      the host scanned, and which domains run
 *   ctl_state.c     the state directory read: reservations and journals
 *   ctl_status.c    status
 *   ctl_listings.c  reservations, journals
 *   ctl_actions.c   release, reconcile, plan
 *   ctl_check.c     check
 *
 * Each verb returns the exit status (docs/gpuhooksctl.md).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "config.h"
#include "journal.h"
#include "macro.h"
#include "pci_addr.h"
#include "reserve.h"
#include "statechange.h"
#include "vm_usage.h"
#include "warn.h"

struct gpuh_host;
struct json_object;

#define PROG "gpuhooksctl"

/* gpuhooksctl's own options. */
struct args {
        bool json;
        bool free_only;
        bool has_gpu;
        struct gpuh_pci_addr gpu;
        int min_age;
        const char *dev_dir, *proc_root, *pci_ids, *root;
};

/* Everything a verb may need, resolved once. */
struct ctl {
        struct args a;
        struct gpuh_cli_common c;
        struct gpuh_config *cfg;
        char *cfg_err;
        char **env_dirs;
        struct gpuh_sc_opts sc;
};

/* ctl_output.c: one line on stderr, or with --format json a JSON error on stdout
 * (docs/errors.md). Returns the exit status. */
int ctl_fail(const char *fmt, ...) _printf_(1, 2);
/* Print @doc (pretty) and put it. Returns the exit status. */
int ctl_print_json(struct json_object *doc);
/* @t (seconds since the epoch) as "2026-12-02T10:00:00Z", "-" for 0 or less. */
void ctl_fmt_time(int64_t t, char *buf, size_t size);
/* An age as "119s", "119m", "47h", "2d": the largest unit that leaves 2 or more. */
void ctl_fmt_age(int64_t secs, char *buf, size_t size);
/* A JSON string of @s, NULL (JSON null) for NULL or "". */
struct json_object *ctl_jstr(const char *s);

/* ctl_state.c: what the state directory holds, read under its lock. */
struct ctl_state_view {
        struct gpuh_state *st;
        struct gpuh_reservation *res;
        size_t n_res;
        struct gpuh_journal **journals;
        size_t n_journals;
        struct gpuh_warnings warnings;
};

void ctl_state_view_clear(struct ctl_state_view *v);
/* Read-only; a missing state directory reads as empty. Returns 0, or the exit status of a failure. */
int ctl_state_view_load(const struct ctl *x, struct ctl_state_view *v);

/* ctl_host.c: the host scanned (inventory, usage, quarantine; 0 or an exit status), which
 * domains run (NULL: unknown), a domain's state ("running", "undefined"; NULL: unknown). */
int ctl_scan_host(struct ctl *x, struct gpuh_host **ret);
struct gpuh_vm_usage *ctl_load_usage(const struct ctl *x);
const char *ctl_domain_state(struct gpuh_vm_usage *u, const char *domain);

/* the verbs: each returns the exit status */
int ctl_verb_status(struct ctl *x);
int ctl_verb_reservations(struct ctl *x);
int ctl_verb_journals(struct ctl *x);
int ctl_verb_release(struct ctl *x, const char *vm);
int ctl_verb_reconcile(struct ctl *x);
int ctl_verb_plan(struct ctl *x, const char *path);
int ctl_verb_check(struct ctl *x);
