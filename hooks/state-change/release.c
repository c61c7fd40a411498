/* SPDX-License-Identifier: Apache-2.0 */
/*
 * release.c: the calls after a start or a stop (docs/state-change.md): `started begin` and
 * onStart mark the reservation running; `release end`, onStop and reconcile replay a domain's
 * journal in reverse and free its reservation; reconcile also quarantines what something left
 * mid-change without a record of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "clock.h"
#include "log.h"
#include "occupancy.h"
#include "pcidev.h"
#include "sc.h"
#include "sysfs.h"
#include "vfio.h"

int gpuh_sc_started(const struct gpuh_sc_opts *o, const char *domain, char **reterr)
{
        struct gpuh_reservation res;
        struct sc s;
        int r;

        *reterr = NULL;
        r = sc_opts_check(o, reterr);
        if (r < 0)
                return r;
        if (!gpuh_domname_ok(domain))
                return gpuh_error(reterr, -EINVAL, "'%s' is not a domain name libvirt accepts", domain);
        if (o->dry_run || !sc_has_state(o, domain))
                return 0;
        sc_init(&s, o, domain);
        r = sc_open(&s, reterr);
        if (r == 0)
                r = sc_host_lock(&s, reterr);
        if (r == 0) {
                r = gpuh_reservation_load(s.state, domain, &res);
                if (r == 0) {
                        if (!res.state || !streq(res.state, "running")) {
                                free(res.state);
                                res.state = strdup("running");
                                r = res.state ? gpuh_reservation_write(s.state, &res) : -ENOMEM;
                                if (r < 0)
                                        gpuh_error(reterr, r, "%s: cannot mark its reservation running: %s", domain,
                                                   strerror(-r));
                                else
                                        gpuh_log(LOG_INFO, "%s: reservation marked running", domain);
                        }
                        gpuh_reservation_clear(&res);
                } else if (r == -ENOENT)
                        r = 0;
                else
                        gpuh_error(reterr, r, "%s: cannot read its reservation: %s", domain, strerror(-r));
                sc_host_unlock(&s);
        }
        sc_done(&s);
        return r;
}

/* ---- releasing one domain ------------------------------------------------------------------ */

/* The domain's lock, then its journal (an empty one when it has none). */
static int release_open(struct sc *s, int lock_timeout_ms, char **reterr)
{
        char enc[GPUH_DOMNAME_ENC_SIZE];
        int r;

        r = sc_open(s, reterr);
        if (r == 0)
                r = sc_vm_lock(s, lock_timeout_ms, reterr);
        if (r < 0)
                return r;
        r = gpuh_journal_load(s->jfd, s->vm, &s->j);
        if (r == -ENOENT)
                return gpuh_journal_new(s->vm, NULL, &s->j);
        if (r < 0) {
                gpuh_domname_encode(s->vm, enc);
                return gpuh_error(reterr, r == -ENOMEM ? r : -EBADMSG, "%s: its journal '%s/%s.journal' is unusable (%s): "
                                  "restore its devices by hand, then remove it", s->vm, s->jdir, enc,
                                  r == -EBADMSG ? "malformed" : strerror(-r));
        }
        return 0;
}

/* The locks of every device the journal names (disabling VFs, or MIG mode off, touches every
 * VF: all of them);
 * then our journal again, under the host lock: another may have taken entries over. */
static int release_lock_devices(struct sc *s, char **reterr)
{
        char key[SC_KEY_MAX];
        int r;

        for (size_t i = 0; i < s->j->n; i++) {
                if ((r = gpuh_lockset_add(&s->locks, gpuh_jentry_key(&s->j->e[i], key, sizeof(key)))) < 0)
                        return r;
                if (gpuh_jop_gpu_wide(s->j->e[i].op)) {
                        _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
                        int n = sc_pf_vfs(s, &s->j->e[i].dev, &vfs);
                        for (int k = 0; k < n; k++)
                                if ((r = gpuh_lockset_add(&s->locks, sc_pci_key(&vfs[k], key))) < 0)
                                        return r;
                }
        }
        r = sc_take_locks(s, reterr);
        if (r < 0)
                return r;
        r = sc_host_lock(s, reterr);
        if (r == 0)
                r = sc_load_journals(s, NULL, reterr);
        sc_host_unlock(s);
        return r;
}

/* With refuse_held: the vfio nodes of the devices the domain's reservation names. */
static int reservation_nodes(struct sc *s, char ***nodes, char **reterr)
{
        struct gpuh_reservation res;
        int r;

        if (!s->o->refuse_held || !s->state)
                return 0;
        r = sc_host_lock(s, reterr);
        if (r < 0)
                return r;
        r = gpuh_reservation_load(s->state, s->vm, &res);
        sc_host_unlock(s);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read its reservation: %s", s->vm, strerror(-r));
        for (size_t i = 0; i < res.n_devices && r == 0; i++) {
                const struct gpuh_alloc *d = &res.devices[i];
                r = sc_add_vfio_node(s, d->kind == GPUH_ALLOC_MDEV ? sc_mdev_group(s, d->uuid) : sc_pci_group(s, &d->addr),
                                     nodes);
        }
        gpuh_reservation_clear(&res);
        return r;
}

/* With refuse_held: -EBUSY naming the processes when the scan found any. */
static int refuse_held(struct sc *s, char **reterr)
{
        _cleanup_free_ char *desc = NULL;

        if (!s->o->refuse_held || s->scan.n_holders == 0)
                return 0;
        desc = gpuh_holders_describe(s->scan.holders, s->scan.n_holders);
        return gpuh_error(reterr, -EBUSY, "%s: still running (%s): nothing released", s->vm, desc ? desc : "held");
}

/* One scan of /proc for every vfio node the entries (and, with refuse_held, the reservation)
 * may find held. */
static int release_scan(struct sc *s, char **reterr)
{
        char **nodes = NULL;
        int r = reservation_nodes(s, &nodes, reterr);

        if (r < 0) {
                strv_free(nodes);
                return r;
        }

        for (size_t i = 0; i < s->j->n && r == 0; i++) {
                const struct gpuh_jentry *e = &s->j->e[i];
                int g = e->op == GPUH_JOP_MDEV ? sc_mdev_group(s, e->uuid)
                        : e->op == GPUH_JOP_SRIOV || e->op == GPUH_JOP_GI || e->op == GPUH_JOP_MIG ? -1
                        : sc_pci_group(s, &e->dev);
                r = sc_add_vfio_node(s, g, &nodes);
        }
        if (r == 0 && nodes)
                r = sc_scan_holders(s, nodes);
        else
                strv_free(nodes);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot look for processes using the devices in '%s': %s", s->vm,
                                  s->proc_root, strerror(-r));
        return 0;
}

/* Release @s->vm's journal: replayed, written back, the reservation freed as @mode says; the
 * domain's lock file removed when nothing is left. */
static int release_journal(struct sc *s, enum sc_free_mode mode, int lock_timeout_ms, char **reterr)
{
        int64_t t0 = gpuh_mono_us();
        size_t n0;
        int r, k;

        r = release_open(s, lock_timeout_ms, reterr);
        if (r == 0)
                r = release_lock_devices(s, reterr);
        if (r < 0)
                return r;
        n0 = s->j->n;
        r = release_scan(s, reterr);
        if (r == 0)
                r = refuse_held(s, reterr);
        if (r < 0)
                return r;
        r = sc_replay(s, reterr);
        k = sc_commit_journal(s, mode, r < 0 ? NULL : reterr);
        if (r == 0)
                r = k;
        if (n0 > 0 || r < 0)
                sc_event(s, "release", NULL, NULL, NULL, t0, r, *reterr);
        if (r == 0 && !s->o->dry_run && s->vm_lock >= 0) {
                char name[3 + GPUH_DOMNAME_ENC_SIZE];
                sc_vm_lock_name(s->vm, name);
                gpuh_lockset_release(&s->locks);
                gpuh_lock_drop(s->lockdir, name, s->vm_lock);
                s->vm_lock = -1;
        }
        return r;
}

/* Release @domain; its lock is taken with @lock_timeout_ms. A dry run's plan joins @plans. */
static int release_one(const struct gpuh_sc_opts *o, const char *domain, enum sc_free_mode mode, int lock_timeout_ms,
                       json_object *plans, char **reterr)
{
        struct sc s;
        int r = 0;

        if (!gpuh_domname_ok(domain))
                return gpuh_error(reterr, -EINVAL, "'%s' is not a domain name libvirt accepts", domain);
        sc_init(&s, o, domain);
        if (o->dry_run && !(s.plan = sc_plan_new(domain, "release")))
                r = -ENOMEM;
        else if (sc_has_state(o, domain))
                r = release_journal(&s, mode, lock_timeout_ms, reterr);
        if (r < 0)
                sc_prefix_vm(domain, reterr);
        sc_plan_finish(&s, r, reterr);
        if (s.plan) {
                if (plans)
                        json_object_array_add(plans, TAKE_PTR(s.plan));
                else
                        json_object_put(s.plan);
        }
        sc_done(&s);
        return r;
}

/* release_one() with a dry run's plan through @ret_plan. */
static int release_planned(const struct gpuh_sc_opts *o, const char *domain, enum sc_free_mode mode,
                           json_object **ret_plan, char **reterr)
{
        json_object *plans = NULL;
        int r;

        if (o->dry_run && !(plans = json_object_new_array()))
                return -ENOMEM;
        r = release_one(o, domain, mode, o->cfg->lock_timeout_ms, plans, reterr);
        if (plans && ret_plan && json_object_array_length(plans) > 0)
                *ret_plan = json_object_get(json_object_array_get_idx(plans, 0));
        json_object_put(plans);
        return r;
}

int gpuh_sc_release(const struct gpuh_sc_opts *o, const char *domain, json_object **ret_plan, char **reterr)
{
        int r;

        *reterr = NULL;
        if (ret_plan)
                *ret_plan = NULL;
        r = sc_opts_check(o, reterr);
        if (r < 0)
                return r;

        /* A broken configuration: nothing held, nothing to do; else keep the journal. */
        if (o->config_error && gpuh_domname_ok(domain) && sc_has_state(o, domain))
                return gpuh_error(reterr, -EBADMSG, "%s: not released (its journal is kept): %s", domain,
                                  o->config_error);
        return release_planned(o, domain, SC_FREE_ALWAYS, ret_plan, reterr);
}

/* Which domains run: libvirt when allowed, else the XML files libvirt keeps. */
static int load_usage(const struct gpuh_sc_opts *o, struct gpuh_vm_usage **ret, char **reterr)
{
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        _cleanup_free_ char *err = NULL;
        char *const *dirs = o->xml_dirs ? o->xml_dirs : o->cfg->domain_xml_dirs;
        struct gpuh_warnings w = { 0 };
        int r;

        if (!dirs)
                return -ENOMEM;
        r = gpuh_vm_usage_new(&u);
        if (r < 0)
                return r;
        if (!o->no_libvirt) {
                r = gpuh_vm_usage_load_libvirt(u, o->connect ? o->connect : o->cfg->libvirt_uri, o->cfg->libvirt_timeout_ms,
                                               &err);
                if (r >= 0) {
                        *ret = TAKE_PTR(u);
                        return 0;
                }
                gpuh_log(LOG_INFO, "libvirt cannot say which domains run (%s): reading its domain XML files",
                         err ? err : strerror(-r));
        }
        r = gpuh_vm_usage_load_dirs(u, dirs, &w);
        gpuh_warnings_clear(&w);
        if (r < 0)
                return r;
        if (gpuh_vm_usage_source(u) == GPUH_VM_SOURCE_NONE)
                return gpuh_error(reterr, -EIO, "cannot tell which domains run: neither libvirt nor its domain XML "
                                  "files could be read; nothing released");
        *ret = TAKE_PTR(u);
        return 0;
}

static bool runs(struct gpuh_vm_usage *u, const char *domain)
{
        const struct gpuh_vm *vm = gpuh_vm_usage_find(u, domain);

        return vm && gpuh_vm_state_is_active(vm->state);
}

/* A dry run's plan of a release that releases nothing. */
static void plan_nothing(const struct gpuh_sc_opts *o, const char *domain, json_object **ret_plan)
{
        if (ret_plan && o->dry_run && (*ret_plan = sc_plan_new(domain, "release")))
                json_object_object_add(*ret_plan, "error", NULL);
}

int gpuh_sc_stopped(const struct gpuh_sc_opts *o, const char *domain, json_object **ret_plan, char **reterr)
{
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        int r;

        *reterr = NULL;
        if (ret_plan)
                *ret_plan = NULL;
        r = sc_opts_check(o, reterr);
        if (r < 0)
                return r;
        if (!gpuh_domname_ok(domain))
                return gpuh_error(reterr, -EINVAL, "'%s' is not a domain name libvirt accepts", domain);
        if (!sc_has_state(o, domain)) {
                plan_nothing(o, domain, ret_plan);
                return 0;       /* nothing held: whether it runs does not matter */
        }

        /* A broken configuration: keep the journal. */
        if (o->config_error)
                return gpuh_error(reterr, -EBADMSG, "%s: not released (its journal is kept): %s", domain,
                                  o->config_error);

        r = load_usage(o, &u, reterr);
        if (r < 0)
                return r;
        if (runs(u, domain)) {
                gpuh_log(LOG_INFO, "%s still runs: nothing released", domain);
                plan_nothing(o, domain, ret_plan);
                return 0;
        }
        return release_planned(o, domain, SC_FREE_RUNNING, ret_plan, reterr);
}

/* ---- reconcile ----------------------------------------------------------------------------- */

/* Why @a, a function of a GPU, is stranded; NULL when it is not. */
static const char *stranded_why(struct sc *s, const struct gpuh_pci_addr *a, enum sc_gpu_role role, const char *drv,
                                const char *ovr, char *why, size_t size)
{
        char name[GPUH_PCI_ADDR_MAX];

        if (sc_pci_dead(s, a))
                snprintf(why, size, "config space reads 0xffff: the function does not answer");
        else if (ovr[0] && !streq(ovr, drv))
                snprintf(why, size, "left mid-change: driver_override is %s but it is bound to %s, and no journal says "
                         "what it was before", ovr, drv[0] ? drv : "no driver");
        else {
                if (!drv[0] && role == SC_ROLE_GPU)
                        gpuh_log(LOG_WARNING, "%s: GPU without a driver, and no journal of gpuhooks names it",
                                 gpuh_pci_addr_format(a, name));
                return NULL;
        }
        return why;
}

/*
 * After the journals: a function of a GPU whose driver_override names a driver it is not bound
 * to, or that does not answer, while no journal, live reservation or running domain accounts
 * for it, was left mid-change by something that kept no record of its state before: nothing can
 * put it back for sure, so it is quarantined for an operator to look at. One without any driver
 * is only reported: some hosts leave GPUs unbound on purpose.
 */
static void reconcile_stranded(struct sc *s, struct gpuh_vm_usage *u, const struct gpuh_reservation *res,
                               size_t n_res, json_object *plans)
{
        _cleanup_free_ struct gpuh_pci_addr *all = NULL;
        int64_t now = (int64_t) time(NULL);
        int n = gpuh_pci_dev_list(s->sysfs->root_fd, NULL, &all);

        if (n <= 0)
                return;
        s->vm = NULL;           /* every journal is another's */
        if (sc_load_journals(s, NULL, NULL) < 0)
                return;
        for (int i = 0; i < n; i++) {
                const struct gpuh_vm *vms[1];
                struct gpuh_occupancy occ = {
                        .now = now, .res = res, .n_res = n_res, .journals = s->others, .n_journals = s->n_others,
                };
                struct gpuh_pci_addr pf;
                char drv[64] = "", ovr[64] = "", name[GPUH_PCI_ADDR_MAX], why[768];
                enum sc_gpu_role role = sc_gpu_role(s, &all[i], &pf);

                if (role == SC_ROLE_NONE)
                        continue;
                gpuh_pci_addr_format(&all[i], name);
                if (gpuh_pci_driver(&s->ch, &all[i], drv, sizeof(drv)) < 0 ||
                    gpuh_pci_override(&s->ch, &all[i], ovr, sizeof(ovr)) < 0)
                        continue;
                if (gpuh_occupancy_pci(&occ, &all[i], role == SC_ROLE_VF ? &pf : NULL, why, sizeof(why)) ||
                    gpuh_vm_usage_pci(u, &all[i], vms, 1) > 0)
                        continue;       /* accounted for (or quarantined already) */
                if (!stranded_why(s, &all[i], role, drv, ovr, why, sizeof(why)))
                        continue;
                gpuh_log(LOG_ERR, "%s: %s: quarantined", name, why);
                if (plans) {
                        json_object *p = sc_plan_new(name, "quarantine");
                        if (p) {
                                json_object_object_add(p, "error", json_object_new_string(why));
                                json_object_array_add(plans, p);
                        }
                }
                sc_quarantine(s, &all[i], why);
        }
}

/* Add the domains of running reservations that have no journal to @names. */
static int add_running(char ***names, const struct gpuh_reservation *res, size_t n_res)
{
        for (size_t i = 0; i < n_res; i++) {
                bool listed = false;
                char *dup;

                if (!res[i].state || !streq(res[i].state, "running"))
                        continue;
                for (char **p = *names; p && *p && !listed; p++)
                        listed = streq(*p, res[i].domain);
                if (listed)
                        continue;
                if (!(dup = strdup(res[i].domain)) || strv_consume(names, dup) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The candidates: every journal, and every reservation marked running (@res, to free). An
 * unattributable journal sets *@first (and @reterr); the others are still released. */
static int reconcile_candidates(struct sc *s, char ***names, struct gpuh_reservation **res, size_t *n_res, int *first,
                                char **reterr)
{
        struct gpuh_warnings w = { 0 };
        int r;

        r = gpuh_journal_list(s->jfd, names, &w);
        if (w.n > 0) {
                /* reported (gpuh_warn() logged each); the others are still released */
                *first = -EBADMSG;
                gpuh_error(reterr, *first, "%s in '%s': restore what it names by hand, then remove it", w.v[0], s->jdir);
        }
        gpuh_warnings_clear(&w);
        if (r >= 0 && s->state) {
                r = sc_host_lock(s, reterr);
                if (r == 0) {
                        r = gpuh_reservations_load(s->state, res, n_res, &w);
                        sc_host_unlock(s);
                        if (r < 0)
                                gpuh_error(reterr, r, "%s", w.n ? w.v[w.n - 1] : strerror(-r));
                }
        }
        gpuh_warnings_clear(&w);
        if (r < 0)
                return r;
        return add_running(names, *res, *n_res);
}

/* Release every candidate that no longer runs; goes on after a failure, keeps the first. */
static void reconcile_release(struct sc *s, struct gpuh_vm_usage *u, char *const *names, json_object *plans,
                              int *first, char **reterr)
{
        const struct gpuh_sc_opts *o = s->o;
        int min_age = o->min_age_s >= 0 ? o->min_age_s : o->cfg->reconcile_min_age_s;
        int64_t now = (int64_t) time(NULL);

        for (char *const *p = names; p && *p; p++) {
                struct gpuh_journal *j = NULL;
                _cleanup_free_ char *err = NULL;
                int k;

                if (runs(u, *p))
                        continue;
                if (gpuh_journal_load(s->jfd, *p, &j) == 0) {
                        bool young = min_age > 0 && j->created > now - min_age;
                        gpuh_journal_free(j);
                        if (young) {
                                gpuh_log(LOG_INFO, "%s: journal younger than %d s, left for now", *p, min_age);
                                continue;
                        }
                }
                k = release_one(o, *p, SC_FREE_RUNNING, 0, plans, &err);
                if (k == -ETIMEDOUT) {
                        gpuh_log(LOG_INFO, "%s: another hook is working on it, left for now", *p);
                        continue;
                }
                if (k < 0) {
                        gpuh_log(LOG_WARNING, "%s", err ? err : strerror(-k));
                        if (*first == 0) {
                                *first = k;
                                *reterr = TAKE_PTR(err);
                        }
                } else
                        gpuh_log(LOG_INFO, "%s: released (it no longer runs)", *p);
        }
}

int gpuh_sc_reconcile(const struct gpuh_sc_opts *o, json_object **ret_plan, char **reterr)
{
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        _cleanup_strv_free_ char **names = NULL;
        struct gpuh_reservation *res = NULL;
        json_object *plans = NULL;
        size_t n_res = 0;
        struct sc s;
        int r, first = 0;

        *reterr = NULL;
        if (ret_plan)
                *ret_plan = NULL;
        r = sc_opts_check(o, reterr);
        if (r < 0)
                return r;

        /* A broken configuration: change nothing. */
        if (o->config_error)
                return gpuh_error(reterr, -EBADMSG, "reconcile: nothing released: %s", o->config_error);

        r = load_usage(o, &u, reterr);
        if (r < 0)
                return r;
        sc_init(&s, o, NULL);
        r = sc_open(&s, reterr);
        if (r == 0 && o->dry_run && !(plans = json_object_new_array()))
                r = -ENOMEM;
        if (r == 0)
                r = reconcile_candidates(&s, &names, &res, &n_res, &first, reterr);
        if (r == 0) {
                reconcile_release(&s, u, names, plans, &first, reterr);
                reconcile_stranded(&s, u, res, n_res, plans);
        }
        gpuh_reservations_free(res, n_res);
        sc_done(&s);
        if (r < 0) {
                json_object_put(plans);
                return r;
        }
        if (ret_plan)
                *ret_plan = plans;
        else
                json_object_put(plans);
        return first;
}
