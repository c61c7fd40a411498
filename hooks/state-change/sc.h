/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sc.h: what the files of the state-change hook share (statechange.h is its public API).
 *
 *   context.c  one run: struct sc, opening and closing it, events, the dry run's plan, locks
 *   device.c   reading the host through the device model: functions, IOMMU groups, GPU roles
 *   sriov.c    SR-IOV: the PF of a missing VF, a PF's VFs, VFs in use, sriov_numvfs writes
 *   scan.c     who holds the devices: one scan of /proc per run
 *   ledger.c   journals and reservations: journaling, takeover, the checks before a change
 *   mig.c      MIG mode and the GPU instance of a MIG-backed slot, through NVML, and their undo
 *   undo.c     one undo per journal operation, and the replay of a journal
 *   prepare.c  `prepare begin`
 *   release.c  `started`, `release end`, onStop, reconcile
 *
 * Lock order, everywhere: the domain's lock, then the device locks in sorted order, then the
 * host lock, held only around reservation and journal reads and writes. Every change is
 * appended to the domain's journal (fsync) before it is made; every undo is idempotent. Every
 * sysfs write goes through gpuh_change_write() and every journal entry through the ledger, so
 * that a dry run lists both from the code that would make them (docs/state-change.md).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "config.h"
#include "domname.h"
#include "domxml.h"
#include "holders.h"
#include "journal.h"
#include "lock.h"
#include "nvml.h"
#include "pci_addr.h"
#include "reserve.h"
#include "statechange.h"
#include "vm_usage.h"

struct json_object;

#define SC_KEY_MAX 96           /* a device key, "pci-BDF" or "mdev-UUID" (gpuh_jentry_key()) */
#define SC_MAX_GROUP 32         /* functions of one IOMMU group looked at */

enum sc_free_mode {
        SC_FREE_ALWAYS,         /* release end: this start is over */
        SC_FREE_RUNNING,        /* onStop, reconcile: only a reservation marked running */
};

/* One scan of /proc per run, for every node the run may need to know the holders of (scan.c). */
struct sc_scan {
        bool done;                      /* a scan was made */
        char **nodes;                   /* the nodes it covered */
        struct gpuh_holder *holders;    /* their holders; .node points into @nodes */
        size_t n_holders;
};

/* One run of the hook, for one domain (or none: reconcile's sweep). */
struct sc {
        const struct gpuh_sc_opts *o;
        const struct gpuh_config *cfg;
        const char *dev_dir, *proc_root;
        struct gpuh_sysfs *sysfs;
        struct gpuh_state *state;       /* NULL in a dry run when the state directory does not exist */
        char *jdir;                     /* STATE/journal, for messages */
        int jfd;                        /* STATE/journal (the state's), -1 in a dry run without one */
        int lockdir;                    /* STATE/locks, -1 in a dry run */
        struct gpuh_change ch;
        const char *vm;                 /* the domain being worked on */
        int vm_lock;                    /* its lock, -1 */
        struct gpuh_lockset locks;
        struct gpuh_journal *j;         /* the domain's own journal */
        struct gpuh_journal **others;   /* the other domains' journals */
        size_t n_others;
        struct json_object *plan;       /* dry run: {"domain", "operation", "steps", "error"} */
        struct sc_known_group {
                struct gpuh_pci_addr addr;
                int group;
        } groups[64];                   /* IOMMU groups read this run */
        size_t n_groups;
        struct sc_scan scan;
};

/* A function a pci or vf device moves to vfio-pci, as read before anything changes. */
struct sc_fn {
        struct gpuh_pci_addr a;
        char driver[64];
        char override[64];
        int group;
};

enum sc_gpu_role {
        SC_ROLE_NONE,           /* not part of a GPU */
        SC_ROLE_GPU,            /* a GPU function (a PF) */
        SC_ROLE_COMPANION,      /* another function of a GPU's slot (HDMI audio, USB-C) */
        SC_ROLE_VF,             /* an SR-IOV VF of a GPU, existing or not yet enabled */
};

/* ---- context.c ---------------------------------------------------------------------- */

/* An empty run for @o (checked by sc_opts_check()) and @vm: nothing opened yet. */
void sc_init(struct sc *s, const struct gpuh_sc_opts *o, const char *vm);
/* -EINVAL with one line unless @o carries its required fields (statechange.h). */
int sc_opts_check(const struct gpuh_sc_opts *o, char **reterr);
void sc_done(struct sc *s);
/* The sysfs side of a run: enough to read devices, nothing in the state directory. */
int sc_open_sysfs(struct sc *s, char **reterr);
/* sc_open_sysfs() and the state directory (read only in a dry run, which creates nothing). */
int sc_open(struct sc *s, char **reterr);
/* Has @domain a journal or a reservation? A stat(2) or two, nothing opened or created. */
bool sc_has_state(const struct gpuh_sc_opts *o, const char *domain);
void sc_others_free(struct sc *s);

void sc_event(struct sc *s, const char *ev, const char *device, const char *old, const char *new, int64_t t0, int r,
              const char *err);
void sc_prefix_vm(const char *vm, char **reterr);
struct json_object *sc_plan_new(const char *domain, const char *op);
void sc_plan_finish(struct sc *s, int r, char *const *reterr);

int sc_host_lock(struct sc *s, char **reterr);
void sc_host_unlock(struct sc *s);
char *sc_vm_lock_name(const char *vm, char buf[static 3 + GPUH_DOMNAME_ENC_SIZE]);
int sc_vm_lock(struct sc *s, int timeout_ms, char **reterr);
int sc_take_locks(struct sc *s, char **reterr);
char *sc_pci_key(const struct gpuh_pci_addr *a, char buf[static SC_KEY_MAX]);

/* ---- device.c ----------------------------------------------------------------------- */

int sc_devfd(struct sc *s, const struct gpuh_pci_addr *a);
bool sc_pci_exists(struct sc *s, const struct gpuh_pci_addr *a);
char *sc_dev_path(const struct gpuh_pci_addr *a, const char *attr, char *buf, size_t size);
int sc_pci_group(struct sc *s, const struct gpuh_pci_addr *a);
int sc_group_members(struct sc *s, const struct gpuh_pci_addr *a, struct gpuh_pci_addr *ret, size_t max);
bool sc_is_bridge(struct sc *s, const struct gpuh_pci_addr *a);
int sc_read_ids(struct sc *s, const struct gpuh_pci_addr *a, uint16_t *vendor, uint16_t *device);
enum sc_gpu_role sc_gpu_role(struct sc *s, const struct gpuh_pci_addr *a, struct gpuh_pci_addr *pf);
int sc_agent_split(struct sc *s, const struct gpuh_dom_hostdev *h, char *why, size_t size);
bool sc_gpu_hostdev(struct sc *s, const struct gpuh_dom_hostdev *h);
bool sc_mdev_exists(struct sc *s, const char *uuid);
int sc_mdev_parent(struct sc *s, const char *uuid, struct gpuh_pci_addr *ret);
int sc_mdev_group(struct sc *s, const char *uuid);
bool sc_pci_dead(struct sc *s, const struct gpuh_pci_addr *a);

/* ---- sriov.c ------------------------------------------------------------------------ */

int sc_find_pf_of(struct sc *s, const struct gpuh_pci_addr *vf, struct gpuh_pci_addr *ret);
int sc_pf_vfs(struct sc *s, const struct gpuh_pci_addr *pf, struct gpuh_pci_addr **ret);
const char *sc_vf_in_use(struct sc *s, const struct gpuh_pci_addr *vfs, int n);
int sc_sriov_numvfs(struct sc *s, const struct gpuh_pci_addr *pf, int *ret_total, int *ret_num);
int sc_sriov_set(struct sc *s, const struct gpuh_pci_addr *pf, unsigned n, bool wait, uint64_t *ret_now);
int sc_ensure_vf(struct sc *s, const struct gpuh_pci_addr *vf, const struct gpuh_pci_addr *pf_hint,
                 const char *need_rel, char **reterr);

/* ---- scan.c ------------------------------------------------------------------------- */

int sc_scan_holders(struct sc *s, char **nodes);
int sc_holders_of(struct sc *s, char *const *nodes, struct gpuh_holder **ret, size_t *ret_n);
void sc_scan_clear(struct sc_scan *scan);
int sc_add_vfio_node(struct sc *s, int group, char ***nodes);
int sc_vfio_holders(struct sc *s, int group, char **ret_desc);
int sc_function_nodes(struct sc *s, const struct sc_fn *f, size_t n, char ***nodes);
int sc_check_holders(struct sc *s, const struct sc_fn *f, size_t n, char *const *known, char **reterr);

/* ---- ledger.c ----------------------------------------------------------------------- */

int sc_load_journals(struct sc *s, const char *uuid, char **reterr);
struct gpuh_journal *sc_other_with(struct sc *s, const char *key);
int sc_journal_change(struct sc *s, struct gpuh_jentry *e, char **reterr);
int sc_journal_takeover(struct sc *s, struct gpuh_jentry *e, char **reterr);
int sc_journal_hand_over(struct sc *s, const char *domain, const struct gpuh_jentry *e);
int sc_hand_over(struct sc *s, const char *domain, const struct gpuh_jentry *e, const char *what, const char *device,
                 char **reterr);
int sc_commit_journal(struct sc *s, enum sc_free_mode mode, char **reterr);
int sc_check_reservation(struct sc *s, const struct gpuh_domxml *d, char **reterr);
int sc_check_journals(struct sc *s, char **reterr);
int sc_check_hostdevs(struct sc *s, const struct gpuh_domxml *d, char **reterr);
int sc_verify_record(struct sc *s, const struct gpuh_domxml *d, char **reterr);
void sc_quarantine(struct sc *s, const struct gpuh_pci_addr *a, const char *why);

/* ---- mig.c -------------------------------------------------------------------------- */

int sc_alloc_gpu(struct sc *s, const struct gpuh_alloc *a, struct gpuh_pci_addr *ret);
int sc_mig_ready(struct sc *s, const struct gpuh_pci_addr *gpu, const struct gpuh_pci_addr *vf, const char *need_rel,
                 struct gpuh_nvml_info **ret_info, char **reterr);
int sc_gi_ready(struct sc *s, const struct gpuh_alloc *a, const struct gpuh_pci_addr *gpu,
                const struct gpuh_nvml_info *known, char **reterr);
int sc_undo_gi(struct sc *s, const struct gpuh_jentry *e, char **reterr);
int sc_undo_mig(struct sc *s, const struct gpuh_jentry *e, char **reterr);

/* ---- undo.c ------------------------------------------------------------------------- */

int sc_undo(struct sc *s, const struct gpuh_jentry *e, char **reterr);
int sc_replay(struct sc *s, char **reterr);
