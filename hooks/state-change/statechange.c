/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statechange.c: prepare and release a domain's GPUs, transactionally (docs/state-change.md).
 *
 * Lock order, everywhere: the domain's lock, then the device locks in sorted order, then the
 * host lock, held only around reservation and journal reads and writes. Every change is
 * appended to the domain's journal (fsync) before it is made; every undo is idempotent.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include <json-c/json.h>

#include "change.h"
#include "domname.h"
#include "domxml.h"
#include "holders.h"
#include "inventory.h"
#include "journal.h"
#include "lock.h"
#include "log.h"
#include "mdev.h"
#include "occupancy.h"
#include "pcidev.h"
#include "quarantine.h"
#include "reserve.h"
#include "statechange.h"
#include "sysfs.h"
#include "rule.h"
#include "vendor_vgpu.h"
#include "vfio.h"
#include "vm_usage.h"

#define KEY_MAX 96
#define MAX_GROUP 32            /* functions of one IOMMU group we look at */

enum free_mode {
        FREE_ALWAYS,            /* release end: this start is over */
        FREE_RUNNING,           /* onStop, reconcile: only a reservation marked running */
};

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
        json_object *plan;              /* dry run: {"domain", "operation", "steps", "error"} */
        struct known_group {
                struct gpuh_pci_addr addr;
                int group;
        } groups[64];                   /* IOMMU groups read this run */
        size_t n_groups;
        /* one scan of /proc per run, for every node the run may need to know the holders of */
        bool scanned;
        char **scan_nodes;
        struct gpuh_holder *holders;
        size_t n_holders;
};

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *env_or(const char *v, const char *env, const char *def)
{
        const char *e;

        if (v && *v)
                return v;
        e = secure_getenv(env);
        return e && *e ? e : def;
}

/*
 * One syslog record per step, its message a JSON object (docs/state-change.md, "Logging").
 * Nothing in a dry run: nothing happens.
 */
static void event(struct sc *s, const char *ev, const char *device, const char *old, const char *new,
                  int64_t t0, int r, const char *err)
{
        json_object *o;
        const char *text;

        if (s->o->dry_run)
                return;
        o = json_object_new_object();
        if (!o)
                return;
        json_object_object_add(o, "event", json_object_new_string(ev));
        json_object_object_add(o, "vm", json_object_new_string(s->vm ? s->vm : ""));
        if (device)
                json_object_object_add(o, "device", json_object_new_string(device));
        if (old)
                json_object_object_add(o, "old", json_object_new_string(old));
        if (new)
                json_object_object_add(o, "new", json_object_new_string(new));
        if (t0) {
                char ms[32];
                snprintf(ms, sizeof(ms), "%.3f", (double) (now_us() - t0) / 1000.0);
                json_object_object_add(o, "duration_ms", json_object_new_double_s(atof(ms), ms));
        }
        json_object_object_add(o, "errno", json_object_new_int(r < 0 ? -r : 0));
        if (r < 0 && err)
                json_object_object_add(o, "error", json_object_new_string(err));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        gpuh_log(r < 0 ? LOG_WARNING : LOG_INFO, "%s", text ? text : ev);
        json_object_put(o);
}

/* Failures read "VMNAME: what": messages from the device layer name only the device. */
static void prefix_vm(const char *vm, char **reterr)
{
        size_t l;
        char *m;

        if (!vm || !reterr || !*reterr)
                return;
        l = strlen(vm);
        if (strncmp(*reterr, vm, l) == 0 && (*reterr)[l] == ':')
                return;
        if (asprintf(&m, "%s: %s", vm, *reterr) < 0)
                return;
        free(*reterr);
        *reterr = m;
}

static json_object *plan_new(const char *domain, const char *op)
{
        json_object *p = json_object_new_object();

        if (!p)
                return NULL;
        json_object_object_add(p, "domain", domain ? json_object_new_string(domain) : NULL);
        json_object_object_add(p, "operation", json_object_new_string(op));
        json_object_object_add(p, "steps", json_object_new_array());
        return p;
}

/* Move the change's steps into the plan and set its error. */
static void plan_finish(struct sc *s, int r, char *const *reterr)
{
        json_object *steps;

        if (!s->plan)
                return;
        if (s->ch.steps && json_object_object_get_ex(s->plan, "steps", &steps)) {
                for (size_t i = 0; i < json_object_array_length(s->ch.steps); i++)
                        json_object_array_add(steps, json_object_get(json_object_array_get_idx(s->ch.steps, i)));
                json_object_array_del_idx(s->ch.steps, 0, json_object_array_length(s->ch.steps));
        }
        json_object_object_add(s->plan, "error", r < 0 && reterr && *reterr ? json_object_new_string(*reterr)
                                                  : r < 0 ? json_object_new_string(strerror(-r)) : NULL);
}

static void others_free(struct sc *s)
{
        for (size_t i = 0; i < s->n_others; i++)
                gpuh_journal_free(s->others[i]);
        free(s->others);
        s->others = NULL;
        s->n_others = 0;
}

static void sc_done(struct sc *s)
{
        strv_free(s->scan_nodes);
        s->scan_nodes = NULL;
        free(s->holders);
        s->holders = NULL;
        s->scanned = false;
        gpuh_change_done(&s->ch);
        gpuh_lockset_release(&s->locks);
        if (s->vm_lock >= 0)
                close(s->vm_lock);
        s->vm_lock = -1;
        gpuh_journal_free(s->j);
        s->j = NULL;
        others_free(s);
        gpuh_state_free(s->state);
        s->state = NULL;
        gpuh_sysfs_free(s->sysfs);
        s->sysfs = NULL;
        free(s->jdir);
        s->jdir = NULL;
}

/* The sysfs side of a run: enough to read devices, nothing in the state directory. */
static int sc_open_sysfs(struct sc *s, const struct gpuh_sc_opts *o, char **reterr)
{
        const char *root = env_or(o->sysfs_root, "GPUHOOKS_SYSFS_ROOT", "/sys");
        int r;

        if (s->sysfs)
                return 0;
        s->o = o;
        s->cfg = o->cfg;
        s->vm_lock = -1;
        s->jfd = -1;
        s->lockdir = -1;
        s->dev_dir = env_or(o->dev_dir, "GPUHOOKS_DEV_DIR", "/dev");
        s->proc_root = env_or(o->proc_root, "GPUHOOKS_PROC_ROOT", "/proc");
        r = gpuh_sysfs_open(root, &s->sysfs);
        if (r < 0)
                return gpuh_error(reterr, r, "cannot open the sysfs root '%s': %s", root, strerror(-r));
        return gpuh_change_init(&s->ch, s->sysfs->root_fd, s->cfg->write_timeout_ms, o->dry_run);
}

static int sc_open(struct sc *s, const struct gpuh_sc_opts *o, char **reterr)
{
        const char *dir = env_or(o->state_dir, "GPUHOOKS_STATE_DIR", GPUH_STATE_DIR_DEFAULT);
        int r;

        r = sc_open_sysfs(s, o, reterr);
        if (r < 0)
                return r;
        if (asprintf(&s->jdir, "%s/journal", dir) < 0)
                return -ENOMEM;
        if (o->dry_run && access(dir, F_OK) < 0)
                return 0;       /* nothing reserved or journaled yet; and a dry run creates nothing */
        /* a dry run writes nothing: it reads the state directory as it is */
        r = gpuh_state_open(dir, !o->dry_run, &s->state, reterr);
        if (r < 0)
                return gpuh_error(reterr, r, "cannot use state directory '%s': %s", dir, strerror(-r));
        s->jfd = gpuh_state_subdir(s->state, "journal");
        if (o->dry_run)
                return 0;       /* it reads what is there: no journal/ is no journal */
        r = s->jfd;
        if (r >= 0)
                r = s->lockdir = gpuh_state_subdir(s->state, "locks");
        if (r < 0)
                return gpuh_error(reterr, r, "cannot use state directory '%s': %s", dir, strerror(-r));
        return 0;
}

static int host_lock(struct sc *s, char **reterr)
{
        int r;

        if (s->o->dry_run || !s->state)
                return 0;
        r = gpuh_state_lock(s->state, true, s->cfg->lock_timeout_ms);
        if (r < 0)
                return gpuh_error(reterr, r, "cannot take the host lock in '%s': %s", gpuh_state_dir(s->state),
                                  r == -ETIMEDOUT ? "held too long by another process" : strerror(-r));
        return 0;
}

static void host_unlock(struct sc *s)
{
        if (!s->o->dry_run && s->state)
                gpuh_state_unlock(s->state);
}

/* locks/vm-STEM: the domain's lock file, named by its encoded name (domname.h). */
static char *vm_lock_name(const char *vm, char buf[static 3 + GPUH_DOMNAME_ENC_SIZE])
{
        memcpy(buf, "vm-", 3);
        if (gpuh_domname_encode(vm, buf + 3) < 0)
                buf[0] = '\0';         /* not a name: gpuh_lock_take() refuses "" */
        return buf;
}

static int vm_lock(struct sc *s, int timeout_ms, char **reterr)
{
        char name[3 + GPUH_DOMNAME_ENC_SIZE];

        if (s->o->dry_run)
                return 0;
        vm_lock_name(s->vm, name);
        s->vm_lock = gpuh_lock_take(s->lockdir, name, timeout_ms);
        if (s->vm_lock < 0) {
                int r = s->vm_lock;
                s->vm_lock = -1;
                return gpuh_error(reterr, r, "%s: cannot take its lock: %s", s->vm,
                                  r == -ETIMEDOUT ? "another hook is working on it" : strerror(-r));
        }
        return 0;
}

static int take_locks(struct sc *s, char **reterr)
{
        const char *busy = NULL;
        int r;

        if (s->o->dry_run)
                return 0;
        r = gpuh_lockset_take(&s->locks, s->lockdir, s->cfg->lock_timeout_ms, &busy);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot take the lock of %s: %s", s->vm, busy ? busy + 4 : "a device",
                                  r == -ETIMEDOUT ? "another domain's hook holds it" : strerror(-r));
        return 0;
}

static char *pci_key(const struct gpuh_pci_addr *a, char *buf)
{
        char n[GPUH_PCI_ADDR_MAX];

        snprintf(buf, KEY_MAX, "pci-%s", gpuh_pci_addr_format(a, n));
        return buf;
}

/* ---- reading the host ---------------------------------------------------------------- */

/* The function's directory, opened once per run (see gpuh_change_devfd()). */
static int devfd(struct sc *s, const struct gpuh_pci_addr *a)
{
        return gpuh_change_devfd(&s->ch, a);
}

static bool pci_exists(struct sc *s, const struct gpuh_pci_addr *a)
{
        return devfd(s, a) >= 0;
}

static int pci_group(struct sc *s, const struct gpuh_pci_addr *a)
{
        char buf[32], *end;
        int fd, k;
        long g;

        /* asked for again and again (holders, undo): read once per run */
        for (size_t i = 0; i < s->n_groups; i++)
                if (gpuh_pci_addr_cmp(&s->groups[i].addr, a) == 0)
                        return s->groups[i].group;
        fd = devfd(s, a);
        if (fd < 0 || gpuh_sysfs_link_basename(fd, "iommu_group", buf, sizeof(buf)) < 0)
                return -1;
        g = strtol(buf, &end, 10);
        k = *end || g < 0 || g > 1 << 30 ? -1 : (int) g;
        if (s->n_groups < ARRAY_SIZE(s->groups))
                s->groups[s->n_groups++] = (struct known_group) { .addr = *a, .group = k };
        return k;
}

/* The functions of @a's IOMMU group, sorted; @a alone when it has none. */
static int group_members(struct sc *s, const struct gpuh_pci_addr *a, struct gpuh_pci_addr *ret, size_t max)
{
        _cleanup_strv_free_ char **names = NULL;
        int fd = devfd(s, a), r;
        size_t k = 0;

        r = fd < 0 ? fd : gpuh_sysfs_list(fd, "iommu_group/devices", &names);
        if (r <= 0) {
                ret[0] = *a;
                return 1;
        }
        for (char **p = names; *p && k < max; p++)
                if (gpuh_pci_addr_parse(*p, &ret[k]) == 0)
                        k++;
        return (int) k;
}

static bool is_bridge(struct sc *s, const struct gpuh_pci_addr *a)
{
        int fd = devfd(s, a);
        uint64_t cls = 0;

        return fd >= 0 && gpuh_sysfs_read_u64(fd, "class", &cls) == 0 && (cls >> 16) == 0x06;
}

static int read_ids(struct sc *s, const struct gpuh_pci_addr *a, uint16_t *vendor, uint16_t *device)
{
        int fd = devfd(s, a), r;
        uint64_t v, d;

        if (fd < 0)
                return fd;
        r = gpuh_sysfs_read_u64(fd, "vendor", &v);
        if (r == 0)
                r = gpuh_sysfs_read_u64(fd, "device", &d);
        if (r < 0)
                return r;
        *vendor = (uint16_t) v;
        *device = (uint16_t) d;
        return 0;
}

/*
 * The PF a missing VF would belong to: a PF with VFs disabled whose VF routing IDs (routing
 * ID + sriov_offset + i * sriov_stride, drivers/pci/iov.c pci_iov_virtfn_bus/devfn) include it.
 */
static int find_pf_of(struct sc *s, const struct gpuh_pci_addr *vf, struct gpuh_pci_addr *ret)
{
        _cleanup_free_ struct gpuh_pci_addr *all = NULL;
        int n = gpuh_pci_dev_list(s->sysfs->root_fd, NULL, &all);
        unsigned want = (unsigned) vf->bus << 8 | (unsigned) vf->slot << 3 | vf->func;

        for (int i = 0; i < n; i++) {
                char rel[96], name[GPUH_PCI_ADDR_MAX];
                uint64_t total, num, off, stride;
                unsigned rid = (unsigned) all[i].bus << 8 | (unsigned) all[i].slot << 3 | all[i].func;

                if (all[i].domain != vf->domain)
                        continue;
                gpuh_pci_addr_format(&all[i], name);
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/sriov_totalvfs", name);
                if (gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &total) < 0 || total == 0)
                        continue;
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/sriov_numvfs", name);
                if (gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &num) < 0 || num != 0)
                        continue;
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/sriov_offset", name);
                if (gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &off) < 0)
                        continue;
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/sriov_stride", name);
                if (gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &stride) < 0)
                        continue;
                for (uint64_t k = 0; k < total; k++)
                        if (rid + off + k * stride == want) {
                                *ret = all[i];
                                return 0;
                        }
        }
        return -ENOENT;
}

/* The VFs of @pf (virtfnN links). */
static int pf_vfs(struct sc *s, const struct gpuh_pci_addr *pf, struct gpuh_pci_addr **ret)
{
        _cleanup_free_ int *idx = NULL;

        return gpuh_pci_dev_list_vfs(s->sysfs->root_fd, pf, NULL, ret, &idx);
}

/* ---- journals and reservations ------------------------------------------------------- */

/* The other domains' journals, and our own (created empty when there is none). */
static int load_journals(struct sc *s, const char *uuid, char **reterr)
{
        _cleanup_strv_free_ char **names = NULL;
        struct gpuh_warnings w = { 0 };
        int n, r;

        others_free(s);
        gpuh_journal_free(s->j);
        s->j = NULL;
        n = gpuh_journal_list(s->jfd, &names, &w);
        if (n < 0) {
                gpuh_warnings_clear(&w);
                return gpuh_error(reterr, n, "cannot list journals in '%s': %s", s->jdir, strerror(-n));
        }
        if (w.n > 0) {
                /* a journal nobody can attribute may name our devices: fail closed */
                r = gpuh_error(reterr, -EBADMSG, "%s in '%s': nothing is changed while it is there; restore what it "
                               "names by hand, then remove it", w.v[0], s->jdir);
                gpuh_warnings_clear(&w);
                return r;
        }
        s->others = calloc((size_t) n + 1, sizeof(*s->others));
        if (!s->others)
                return -ENOMEM;
        for (char **p = names; p && *p; p++) {
                struct gpuh_journal *j;

                r = gpuh_journal_load(s->jfd, *p, &j);
                if (r == -ENOENT)
                        continue;       /* released meanwhile */
                if (r < 0)
                        return gpuh_error(reterr, r == -ENOMEM ? r : -EBADMSG,
                                          "the journal of %s in '%s' is unusable (%s): nothing is changed while it is; "
                                          "restore its devices by hand, then remove it", *p, s->jdir,
                                          r == -EBADMSG ? "malformed" : strerror(-r));
                if (s->vm && streq(*p, s->vm))
                        s->j = j;
                else
                        s->others[s->n_others++] = j;
        }
        if (!s->j && s->vm && (r = gpuh_journal_new(s->vm, uuid, &s->j)) < 0)
                return r;
        return 0;
}

/* Which other journal names @key? */
static struct gpuh_journal *other_with(struct sc *s, const char *key, ssize_t *ret_idx)
{
        for (size_t i = 0; i < s->n_others; i++) {
                ssize_t k = gpuh_journal_find(s->others[i], key, -1);
                if (k >= 0) {
                        if (ret_idx)
                                *ret_idx = k;
                        return s->others[i];
                }
        }
        return NULL;
}

static bool reservation_live(struct sc *s, const char *domain)
{
        struct gpuh_reservation r;
        bool live;

        if (!s->state || gpuh_reservation_load(s->state, domain, &r) < 0)
                return false;
        live = gpuh_reservation_live(&r, (int64_t) time(NULL));
        gpuh_reservation_clear(&r);
        return live;
}

/*
 * Journal @e (its old values as read now) before the change it announces. When our journal
 * already has an entry of that kind for the device (an earlier, unfinished prepare), that one
 * holds the state to restore and nothing is added. When a stale journal of another domain
 * (its domain stopped without its release finishing) names the device, its entries for the
 * device move into ours, in their order: they hold the device's state from before that
 * domain, which is what our release must restore. One device, one journal.
 */
static int journal_entry(struct sc *s, struct gpuh_jentry *e, bool change, char **reterr);

static int journal_change(struct sc *s, struct gpuh_jentry *e, char **reterr)
{
        return journal_entry(s, e, true, reterr);
}

/* Nothing to change on the device, but a stale journal may name it: take that over, so that
 * our release restores the state from before that domain, and its late release leaves the
 * device alone. */
static int journal_takeover(struct sc *s, struct gpuh_jentry *e, char **reterr)
{
        char key[KEY_MAX];

        if (!other_with(s, gpuh_jentry_key(e, key, sizeof(key)), NULL))
                return 0;
        return journal_entry(s, e, false, reterr);
}

static int journal_entry(struct sc *s, struct gpuh_jentry *e, bool change, char **reterr)
{
        char key[KEY_MAX];
        struct gpuh_journal *stale;
        int r = 0;

        gpuh_jentry_key(e, key, sizeof(key));
        if (gpuh_journal_find(s->j, key, (int) e->op) >= 0)
                return 0;
        stale = other_with(s, key, NULL);
        if (s->o->dry_run) {
                for (size_t i = 0; stale && i < stale->n; i++) {
                        char k2[KEY_MAX];
                        json_object *st;

                        if (!streq(gpuh_jentry_key(&stale->e[i], k2, sizeof(k2)), key))
                                continue;
                        if ((st = json_object_new_object())) {
                                json_object_object_add(st, "step", json_object_new_string("journal"));
                                json_object_object_add(st, "entry", gpuh_jentry_json(&stale->e[i]));
                                json_object_object_add(st, "taken_over_from", json_object_new_string(stale->domain));
                        }
                        gpuh_change_step(&s->ch, st);
                        if (stale->e[i].op == e->op)
                                return 0;
                }
                if (!change)
                        return 0;
                json_object *st = json_object_new_object();
                if (st) {
                        json_object_object_add(st, "step", json_object_new_string("journal"));
                        json_object_object_add(st, "entry", gpuh_jentry_json(e));
                }
                gpuh_change_step(&s->ch, st);
                return 0;
        }
        r = host_lock(s, reterr);
        if (r < 0)
                return r;
        if (stale) {
                struct gpuh_journal *fresh = NULL;

                /* as it is now, under the host lock */
                r = gpuh_journal_load(s->jfd, stale->domain, &fresh);
                if (r == 0) {
                        for (size_t i = 0; i < fresh->n && r == 0; i++) {
                                char k2[KEY_MAX];
                                struct gpuh_jentry copy = fresh->e[i];
                                if (streq(gpuh_jentry_key(&fresh->e[i], k2, sizeof(k2)), key))
                                        r = gpuh_journal_append(s->jfd, s->j, &copy);
                        }
                        for (ssize_t i = (ssize_t) fresh->n - 1; r == 0 && i >= 0; i--) {
                                char k2[KEY_MAX];
                                if (streq(gpuh_jentry_key(&fresh->e[i], k2, sizeof(k2)), key))
                                        gpuh_journal_drop(fresh, (size_t) i);
                        }
                        if (r == 0)
                                r = gpuh_journal_save(s->jfd, fresh);
                        event(s, "takeover", key + (e->op == GPUH_JOP_MDEV ? 5 : 4), stale->domain, s->vm, 0, r, NULL);
                        /* our copy of it follows */
                        for (ssize_t i = (ssize_t) stale->n - 1; r == 0 && i >= 0; i--) {
                                char k2[KEY_MAX];
                                if (streq(gpuh_jentry_key(&stale->e[i], k2, sizeof(k2)), key))
                                        gpuh_journal_drop(stale, (size_t) i);
                        }
                } else if (r == -ENOENT)
                        r = 0;
                gpuh_journal_free(fresh);
        }
        if (r == 0 && change && gpuh_journal_find(s->j, key, (int) e->op) < 0)
                r = gpuh_journal_append(s->jfd, s->j, e);
        host_unlock(s);
        if (r < 0)
                return gpuh_error(reterr, -EIO, "%s: cannot write its journal in '%s': %s", s->vm, s->jdir, strerror(-r));
        return 0;
}

/* ---- who holds the devices ----------------------------------------------------------- */

/* Scan /proc once for all of @nodes (taken over); later questions are answered from it. */
static int scan_holders(struct sc *s, char **nodes)
{
        int r;

        strv_free(s->scan_nodes);
        free(s->holders);
        s->holders = NULL;
        s->n_holders = 0;
        s->scan_nodes = nodes;
        s->scanned = true;
        r = gpuh_holders_find(s->proc_root, nodes, &s->holders, &s->n_holders);
        return r < 0 ? r : 0;
}

/* The holders of any of @nodes: from the run's scan when it covered them all, else by a scan
 * of their own (a VF that did not exist when the run scanned). */
static int holders_of(struct sc *s, char *const *nodes, struct gpuh_holder **ret, size_t *ret_n)
{
        bool covered = s->scanned;
        size_t n = 0;

        *ret = NULL;
        *ret_n = 0;
        for (char *const *p = nodes; covered && p && *p; p++) {
                bool in = false;
                for (char **q = s->scan_nodes; q && *q && !in; q++)
                        in = streq(*p, *q);
                covered = in;
        }
        if (!covered)
                return gpuh_holders_find(s->proc_root, nodes, ret, ret_n);
        for (size_t i = 0; i < s->n_holders; i++)
                for (char *const *p = nodes; p && *p; p++)
                        if (streq(s->holders[i].node, *p)) {
                                struct gpuh_holder *nh = reallocarray(*ret, n + 1, sizeof(*nh));
                                if (!nh) {
                                        free(*ret);
                                        *ret = NULL;
                                        return -ENOMEM;
                                }
                                *ret = nh;
                                nh[n++] = s->holders[i];
                                break;
                        }
        *ret_n = n;
        return (int) n;
}

static char *vfio_node(struct sc *s, int group)
{
        char *p;

        if (group < 0 || asprintf(&p, "%s/vfio/%d", s->dev_dir, group) < 0)
                return NULL;
        return p;
}

/* Add DEV/vfio/GROUP to @nodes when the group has a node (a device of it is on a VFIO driver). */
static int add_vfio_node(struct sc *s, int group, char ***nodes)
{
        char *p;

        if (group < 0)
                return 0;
        p = vfio_node(s, group);
        if (!p)
                return -ENOMEM;
        if (access(p, F_OK) < 0) {
                free(p);
                return 0;
        }
        return strv_consume(nodes, p);
}

/* ---- undoing one journal entry ------------------------------------------------------- */

/*
 * @a did not come back to a state the journal vouches for: keep it from every domain until an
 * operator clears it (STATE/quarantine/BDF.json, docs/state-change.md "Quarantine").
 */
static void quarantine(struct sc *s, const struct gpuh_pci_addr *a, const char *why)
{
        char name[GPUH_PCI_ADDR_MAX];
        int r;

        gpuh_pci_addr_format(a, name);
        if (s->o->dry_run || !s->state)
                return;
        r = gpuh_state_subdir(s->state, GPUH_QUARANTINE_DIR);
        if (r >= 0)
                r = gpuh_quarantine_add(r, a, s->vm, why, (int64_t) time(NULL));
        event(s, "quarantine", name, NULL, NULL, 0, r < 0 ? r : -EIO, why);
        if (r < 0)
                gpuh_log(LOG_ERR, "%s: %s: cannot quarantine it (%s): %s", s->vm, name, strerror(-r), why);
}

/* Does the function answer? A config read of a function that fell off the bus completes with
 * all ones (PCIe base spec, "Unsupported Request"; drivers/pci/access.c PCI_POSSIBLE_ERROR).
 * The vendor and device ID alone do not tell: an SR-IOV VF reads 0xffff there by design
 * (PCIe SR-IOV spec 3.4.1.1); its revision and class (offsets 8 to 11) are real. */
static bool pci_dead(struct sc *s, const struct gpuh_pci_addr *a)
{
        unsigned char cfg[12];
        int fd = devfd(s, a);

        if (fd < 0 || gpuh_sysfs_read_bin(fd, "config", cfg, sizeof(cfg)) != (int) sizeof(cfg))
                return false;
        for (size_t i = 0; i < sizeof(cfg); i++)
                if (cfg[i] != 0xff)
                        return false;
        return true;
}

/* Processes holding DEV/vfio/GROUP (a QEMU using it). */
static int vfio_holders(struct sc *s, int group, char **ret_desc)
{
        _cleanup_free_ char *path = vfio_node(s, group);
        char *nodes[2] = { path, NULL };
        _cleanup_free_ struct gpuh_holder *h = NULL;
        size_t n = 0;
        int r;

        *ret_desc = NULL;
        if (!path || access(path, F_OK) < 0)
                return 0;
        r = holders_of(s, nodes, &h, &n);
        if (r <= 0)
                return r;
        *ret_desc = gpuh_holders_describe(h, n);
        return (int) n;
}

static int mdev_group(struct sc *s, const char *uuid)
{
        char rel[96], buf[32], *end;
        long g;

        snprintf(rel, sizeof(rel), "bus/mdev/devices/%s/iommu_group", uuid);
        if (gpuh_sysfs_link_basename(s->sysfs->root_fd, rel, buf, sizeof(buf)) < 0)
                return -1;
        g = strtol(buf, &end, 10);
        return *end || g < 0 ? -1 : (int) g;
}

/* Is a VF of @pf in use by anything: on vfio-pci, carrying an mdev or a vGPU type? */
static const char *vf_in_use(struct sc *s, const struct gpuh_pci_addr *vfs, int n)
{
        static char why[128];
        struct gpuh_mdev *m = NULL;
        int nm = gpuh_mdev_list(s->sysfs->root_fd, NULL, &m);
        const char *ret = NULL;

        for (int i = 0; i < n && !ret; i++) {
                char drv[64] = "", name[GPUH_PCI_ADDR_MAX], rel[96];
                uint64_t t;

                gpuh_pci_addr_format(&vfs[i], name);
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/nvidia/current_vgpu_type", name);
                if (gpuh_pci_driver(&s->ch, &vfs[i], drv, sizeof(drv)) == 0 && streq(drv, GPUH_VFIO_DRIVER)) {
                        snprintf(why, sizeof(why), "%s is on vfio-pci", name);
                        ret = why;
                } else if (gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &t) == 0 && t != 0) {
                        snprintf(why, sizeof(why), "%s has vGPU type %llu", name, (unsigned long long) t);
                        ret = why;
                }
                for (int k = 0; k < nm && !ret; k++)
                        if (gpuh_pci_addr_cmp(&m[k].parent, &vfs[i]) == 0) {
                                snprintf(why, sizeof(why), "%s carries mdev %s", name, m[k].uuid);
                                ret = why;
                        }
        }
        gpuh_mdevs_free(m, nm > 0 ? (size_t) nm : 0);
        return ret;
}

/*
 * Undo @e. Returns 0 when the device is as recorded (or gone, or left by policy), 1 when the
 * entry moved to another journal, < 0 (with @reterr) when it must stay for a later try.
 */
static int undo(struct sc *s, const struct gpuh_jentry *e, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX], rel[128], *desc = NULL;
        int64_t t0 = now_us();
        int r = 0;

        gpuh_pci_addr_format(&e->dev, name);
        switch (e->op) {
        case GPUH_JOP_DRIVER: {
                uint16_t ven, dev;

                if (!pci_exists(s, &e->dev))
                        return 0;       /* gone (a VF disabled meanwhile): nothing left to restore */
                if (streq(e->to, GPUH_VFIO_DRIVER) && read_ids(s, &e->dev, &ven, &dev) == 0 &&
                    gpuh_config_keep_vfio(s->cfg, ven, dev)) {
                        event(s, "keep", name, e->to, e->to, 0, 0, NULL);
                        return 0;
                }
                r = vfio_holders(s, pci_group(s, &e->dev), &desc);
                if (r > 0) {
                        r = gpuh_error(reterr, -EBUSY, "%s: %s: still in use, not unbound: %s", s->vm, name, desc);
                        free(desc);
                        event(s, "unbind", name, e->to, e->driver, t0, r, *reterr);
                        return r;
                }
                if (pci_dead(s, &e->dev)) {
                        r = gpuh_error(reterr, -EIO, "%s: %s: config space reads 0xffff (the function does not answer): "
                                       "left as it is and quarantined", s->vm, name);
                        quarantine(s, &e->dev, "config space reads 0xffff: the function does not answer");
                        event(s, "unbind", name, e->to, e->driver, t0, r, *reterr);
                        return r;
                }
                r = gpuh_pci_restore(&s->ch, &e->dev, e->driver, e->override, reterr);
                if (r == -ENODEV && e->driver[0]) {
                        char drv[64] = "";
                        /* it did not come back on its driver: no driver at all is a GPU nobody can use */
                        if (gpuh_pci_driver(&s->ch, &e->dev, drv, sizeof(drv)) == 0 && !drv[0]) {
                                char why[160];
                                snprintf(why, sizeof(why), "no driver bound after restoring %s", e->driver);
                                quarantine(s, &e->dev, why);
                        }
                }
                event(s, "unbind", name, e->to, e->driver[0] ? e->driver : "none", t0, r, reterr ? *reterr : NULL);
                return r;
        }
        case GPUH_JOP_MDEV: {
                char drv[64] = "";

                snprintf(rel, sizeof(rel), "bus/mdev/devices/%s", e->uuid);
                if (gpuh_sysfs_exists(s->sysfs->root_fd, rel) != 1)
                        return 0;
                r = vfio_holders(s, mdev_group(s, e->uuid), &desc);
                if (r > 0) {
                        r = gpuh_error(reterr, -EBUSY, "%s: mdev %s: still in use, not removed: %s", s->vm, e->uuid, desc);
                        free(desc);
                        event(s, "mdev-remove", e->uuid, e->mdev_type, NULL, t0, r, *reterr);
                        return r;
                }
                /* NVIDIA's driver removes its mdevs itself once QEMU let go, and answers EBUSY
                 * while it does: remove at once, and retry EBUSY until the grace deadline */
                if (gpuh_pci_driver(&s->ch, &e->dev, drv, sizeof(drv)) == 0 && streq(drv, "nvidia"))
                        r = gpuh_mdev_remove_busy(&s->ch, e->uuid, s->cfg->nvidia_mdev_grace_ms, reterr);
                else
                        r = gpuh_mdev_remove(&s->ch, e->uuid, reterr);
                event(s, "mdev-remove", e->uuid, e->mdev_type, NULL, t0, r, reterr ? *reterr : NULL);
                return r;
        }
        case GPUH_JOP_VGPU: {
                char o[16], n[16];

                if (!pci_exists(s, &e->dev))
                        return 0;
                r = vfio_holders(s, pci_group(s, &e->dev), &desc);
                if (r > 0) {
                        r = gpuh_error(reterr, -EBUSY, "%s: %s: still in use, vGPU type not cleared: %s", s->vm, name, desc);
                        free(desc);
                        return r;
                }
                snprintf(o, sizeof(o), "%u", e->to_n);
                snprintf(n, sizeof(n), "%u", e->old);
                r = gpuh_vendor_vgpu_set(&s->ch, &e->dev, 0, reterr);
                if (r == 0 && e->old != 0)
                        r = gpuh_vendor_vgpu_set(&s->ch, &e->dev, e->old, reterr);
                if (r == -ENOENT) {
                        free(*reterr);
                        *reterr = NULL;
                        r = 0;          /* the VF lost its vGPU interface: nothing is set */
                }
                event(s, "vgpu-clear", name, o, n, t0, r, reterr ? *reterr : NULL);
                return r;
        }
        case GPUH_JOP_SRIOV: {
                _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
                int n = pf_vfs(s, &e->dev, &vfs);
                const char *busy;
                char v[16];
                uint64_t cur;

                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/sriov_numvfs", name);
                if (gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &cur) < 0 || cur == e->old)
                        return 0;
                /* another domain's journal names one of the VFs: the VFs are its to disable */
                for (int i = 0; i < n; i++) {
                        char key[KEY_MAX];
                        struct gpuh_journal *other = other_with(s, pci_key(&vfs[i], key), NULL);
                        struct gpuh_jentry moved = *e;

                        if (!other)
                                continue;
                        if (s->o->dry_run) {
                                json_object *st = json_object_new_object();
                                if (st) {
                                        json_object_object_add(st, "step", json_object_new_string("journal"));
                                        json_object_object_add(st, "entry", gpuh_jentry_json(e));
                                        json_object_object_add(st, "moved_to", json_object_new_string(other->domain));
                                }
                                gpuh_change_step(&s->ch, st);
                                return 1;
                        }
                        r = host_lock(s, reterr);
                        if (r < 0)
                                return r;
                        {
                                struct gpuh_journal *fresh = NULL;
                                r = gpuh_journal_load(s->jfd, other->domain, &fresh);
                                if (r == 0)
                                        r = gpuh_journal_append(s->jfd, fresh, &moved);
                                gpuh_journal_free(fresh);
                        }
                        host_unlock(s);
                        if (r < 0)
                                return gpuh_error(reterr, r, "%s: cannot hand the VFs of %s over to %s: %s", s->vm, name,
                                                  other->domain, strerror(-r));
                        event(s, "takeover", name, s->vm, other->domain, 0, 0, NULL);
                        return 1;
                }
                if ((busy = vf_in_use(s, vfs, n > 0 ? n : 0))) {
                        /* not ours to break: left enabled */
                        event(s, "sriov-disable", name, NULL, NULL, 0, -EBUSY, busy);
                        gpuh_log(LOG_WARNING, "%s: %s: VFs left enabled: %s", s->vm, name, busy);
                        return 0;
                }
                snprintf(v, sizeof(v), "%u", e->old);
                r = gpuh_change_write(&s->ch, s->ch.root_fd, rel, v);
                if (r == 0)
                        r = gpuh_change_wait_u64(&s->ch, s->ch.root_fd, rel, e->old, &cur);
                gpuh_change_forget(&s->ch);     /* the VFs' directories are gone */
                s->n_groups = 0;
                if (r < 0)
                        gpuh_error(reterr, r, "%s: %s: setting sriov_numvfs back to %u: %s", s->vm, name, e->old,
                                   r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
                snprintf(rel, sizeof(rel), "%u", e->to_n);
                event(s, "sriov-disable", name, rel, v, t0, r, reterr ? *reterr : NULL);
                return r;
        }
        default:
                return 0;
        }
}

/*
 * Replay @s->j in reverse (SR-IOV entries last, after the VFs' own entries), each entry
 * whose device another journal now names dropped untouched. What could not be undone stays.
 * Returns 0 when nothing is left, else the first error.
 */
static int replay(struct sc *s, char **reterr)
{
        int first = 0;
        /* A write that missed its deadline may still land: before anything is read to decide
         * an undo, wait for it (one more deadline); a device whose write is still in flight
         * then keeps its entries and is quarantined. */
        bool stuck = gpuh_change_settle(&s->ch, s->cfg->write_timeout_ms) < 0;

        for (int pass = 0; pass < 2; pass++)
                for (ssize_t i = (ssize_t) s->j->n - 1; i >= 0; i--) {
                        struct gpuh_jentry e = s->j->e[i];
                        char key[KEY_MAX], *err = NULL;
                        struct gpuh_journal *other;
                        int r;

                        if ((e.op == GPUH_JOP_SRIOV) != (pass == 1))
                                continue;
                        gpuh_jentry_key(&e, key, sizeof(key));
                        other = other_with(s, key, NULL);
                        if (other) {
                                gpuh_log(LOG_INFO, "%s: %s now belongs to %s: left as it is", s->vm, key, other->domain);
                                gpuh_journal_drop(s->j, (size_t) i);
                                continue;
                        }
                        if (stuck && gpuh_change_late(&s->ch, key))
                                r = -ETIMEDOUT;
                        else {
                                r = undo(s, &e, &err);
                                if (r < 0 && gpuh_change_late(&s->ch, key)) {
                                        /* the undo's own write missed its deadline: wait for
                                         * it to finish, then read the truth and try again */
                                        stuck = gpuh_change_settle(&s->ch, s->cfg->write_timeout_ms) < 0;
                                        if (!stuck) {
                                                free(err);
                                                err = NULL;
                                                r = undo(s, &e, &err);
                                        } else
                                                r = -ETIMEDOUT;
                                }
                        }
                        if (r == -ETIMEDOUT && stuck && gpuh_change_late(&s->ch, key)) {
                                char name[GPUH_PCI_ADDR_MAX], why[200];

                                gpuh_pci_addr_format(&e.dev, name);
                                snprintf(why, sizeof(why), "a write to it was still in flight %d ms after its deadline",
                                         s->cfg->write_timeout_ms);
                                quarantine(s, &e.dev, why);
                                free(err);
                                err = NULL;
                                gpuh_error(&err, -ETIMEDOUT, "%s: %s: %s: its state may still change; kept in the "
                                           "journal and quarantined", s->vm, name, why);
                        }
                        if (r >= 0) {
                                gpuh_journal_drop(s->j, (size_t) i);
                                free(err);
                                continue;
                        }
                        if (first == 0) {
                                first = r;
                                if (reterr && !*reterr)
                                        *reterr = TAKE_PTR(err);
                        }
                        free(err);
                }
        return first;
}

/* Write @s->j back (or remove it when empty); then maybe free the reservation. */
static int commit_journal(struct sc *s, enum free_mode mode, char **reterr)
{
        int r;

        if (s->o->dry_run)
                return 0;
        r = host_lock(s, reterr);
        if (r < 0)
                return r;
        r = gpuh_journal_save(s->jfd, s->j);
        if (r == 0 && s->j->n == 0 && s->state) {
                struct gpuh_reservation res;
                int k = gpuh_reservation_load(s->state, s->vm, &res);

                if (k == 0 && (mode == FREE_ALWAYS || (res.state && streq(res.state, "running"))))
                        gpuh_reservation_remove(s->state, s->vm);
                if (k == 0)
                        gpuh_reservation_clear(&res);
        }
        host_unlock(s);
        if (r < 0)
                return gpuh_error(reterr, -EIO, "%s: cannot write its journal in '%s': %s", s->vm, s->jdir, strerror(-r));
        return 0;
}

/* ---- prepare -------------------------------------------------------------------------- */

struct fn {
        struct gpuh_pci_addr a;
        char driver[64];
        char override[64];
        int group;
};

/* The functions a pci or vf device moves to vfio-pci: its group's endpoints that are the
 * device or its companions; other endpoints must already be on vfio-pci or on no driver. */
static int plan_functions(struct sc *s, const struct gpuh_alloc *a, struct fn *ret, size_t max, size_t *ret_n,
                          char **reterr)
{
        struct gpuh_pci_addr m[MAX_GROUP];
        char name[GPUH_PCI_ADDR_MAX], mname[GPUH_PCI_ADDR_MAX];
        int n, group;
        size_t k = 0;

        gpuh_pci_addr_format(&a->addr, name);
        if (!pci_exists(s, &a->addr))
                return gpuh_error(reterr, -ENODEV, "%s: %s: no such PCI device", s->vm, name);
        group = pci_group(s, &a->addr);
        if (group < 0)
                return gpuh_error(reterr, -ENODEV, "%s: %s has no IOMMU group: is the IOMMU on (intel_iommu=on, "
                                  "amd_iommu) and VFIO possible on this host?", s->vm, name);
        n = group_members(s, &a->addr, m, ARRAY_SIZE(m));
        for (int i = 0; i < n; i++) {
                bool ours = gpuh_pci_addr_cmp(&m[i], &a->addr) == 0;
                char drv[64] = "", ovr[64] = "";
                int r;

                for (size_t c = 0; c < a->n_companions && !ours; c++)
                        ours = gpuh_pci_addr_cmp(&m[i], &a->companions[c]) == 0;
                if (!ours && is_bridge(s, &m[i]))
                        continue;       /* bridges stay on pcieport: VFIO allows them in a group */
                gpuh_pci_addr_format(&m[i], mname);
                r = gpuh_pci_driver(&s->ch, &m[i], drv, sizeof(drv));
                if (r == 0)
                        r = gpuh_pci_override(&s->ch, &m[i], ovr, sizeof(ovr));
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: %s: cannot read its driver: %s", s->vm, mname, strerror(-r));
                if (!ours) {
                        if (!drv[0] || streq(drv, GPUH_VFIO_DRIVER))
                                continue;
                        return gpuh_error(reterr, -EBUSY, "%s: %s: IOMMU group %d also holds %s (on %s), which is not part "
                                          "of the GPU: the group cannot be given to a VM", s->vm, name, group, mname, drv);
                }
                if (k == max)
                        return gpuh_error(reterr, -E2BIG, "%s: %s: IOMMU group %d is too large", s->vm, name, group);
                ret[k] = (struct fn) { .a = m[i], .group = group };
                snprintf(ret[k].driver, sizeof(ret[k].driver), "%s", drv);
                snprintf(ret[k].override, sizeof(ret[k].override), "%s", ovr);
                k++;
        }
        /* companions the record names must exist (a function the XML carries) */
        for (size_t c = 0; c < a->n_companions; c++) {
                bool found = false;
                for (size_t i = 0; i < k && !found; i++)
                        found = gpuh_pci_addr_cmp(&ret[i].a, &a->companions[c]) == 0;
                if (!found)
                        return gpuh_error(reterr, -ENODEV, "%s: companion %s of %s is not in its IOMMU group %d", s->vm,
                                          gpuh_pci_addr_format(&a->companions[c], mname), name, group);
        }
        *ret_n = k;
        return 0;
}

/* The nodes of functions about to move: their own (DRM, nvidia) unless on vfio-pci already,
 * and their group's vfio node. */
static int function_nodes(struct sc *s, const struct fn *f, size_t n, char ***nodes)
{
        for (size_t i = 0; i < n; i++) {
                bool moves = !streq(f[i].driver, GPUH_VFIO_DRIVER);
                int r = gpuh_pci_nodes(devfd(s, &f[i].a), s->dev_dir, s->proc_root, &f[i].a,
                                       moves ? f[i].driver : "", f[i].group, nodes);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Refuse when a process holds a node of a function about to be unbound, or a group's vfio node. */
static int check_holders(struct sc *s, const struct fn *f, size_t n, char *const *known, char **reterr)
{
        _cleanup_strv_free_ char **own = NULL;
        char *const *nodes = known;
        _cleanup_free_ struct gpuh_holder *h = NULL;
        _cleanup_free_ char *desc = NULL;
        size_t nh = 0;
        int r;

        if (!nodes) {
                r = function_nodes(s, f, n, &own);
                if (r < 0)
                        return r;
                nodes = own;
        }
        r = holders_of(s, nodes, &h, &nh);
        if (s->o->dry_run) {
                json_object *st = json_object_new_object(), *arr = json_object_new_array(), *ha = json_object_new_array();
                char a[GPUH_PCI_ADDR_MAX];
                if (st && arr && ha) {
                        for (char *const *p = nodes; p && *p; p++)
                                json_object_array_add(arr, json_object_new_string(*p));
                        for (size_t i = 0; i < nh; i++) {
                                json_object *x = json_object_new_object();
                                json_object_object_add(x, "pid", json_object_new_int(h[i].pid));
                                json_object_object_add(x, "comm", json_object_new_string(h[i].comm));
                                json_object_object_add(x, "node", json_object_new_string(h[i].node));
                                json_object_array_add(ha, x);
                        }
                        json_object_object_add(st, "step", json_object_new_string("check"));
                        json_object_object_add(st, "what", json_object_new_string("holders"));
                        json_object_object_add(st, "device", json_object_new_string(gpuh_pci_addr_format(&f[0].a, a)));
                        json_object_object_add(st, "nodes", TAKE_PTR(arr));
                        json_object_object_add(st, "holders", TAKE_PTR(ha));
                }
                json_object_put(arr);
                json_object_put(ha);
                gpuh_change_step(&s->ch, st);
        }
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot look for processes using the devices in '%s': %s", s->vm,
                                  s->proc_root, strerror(-r));
        if (nh == 0)
                return 0;
        desc = gpuh_holders_describe(h, nh);
        {
                char a[GPUH_PCI_ADDR_MAX];
                return gpuh_error(reterr, -EBUSY, "%s: %s is in use, refusing to take it: %s", s->vm,
                                  gpuh_pci_addr_format(&f[0].a, a), desc ? desc : "");
        }
}

static int bind_functions(struct sc *s, const struct fn *f, size_t n, char **reterr)
{
        for (size_t i = 0; i < n; i++) {
                char name[GPUH_PCI_ADDR_MAX];
                struct gpuh_jentry e = { .op = GPUH_JOP_DRIVER, .dev = f[i].a };
                int64_t t0 = now_us();
                int r;

                if (streq(f[i].driver, GPUH_VFIO_DRIVER) && streq(f[i].override, GPUH_VFIO_DRIVER)) {
                        /* already as wanted: nothing to change, nothing of ours to undo */
                        if ((r = journal_takeover(s, &e, reterr)) < 0)
                                return r;
                        continue;
                }
                gpuh_pci_addr_format(&f[i].a, name);
                snprintf(e.driver, sizeof(e.driver), "%s", f[i].driver);
                snprintf(e.override, sizeof(e.override), "%s", f[i].override);
                snprintf(e.to, sizeof(e.to), "%s", GPUH_VFIO_DRIVER);
                r = journal_change(s, &e, reterr);
                if (r < 0)
                        return r;
                r = gpuh_pci_rebind_from(&s->ch, &f[i].a, f[i].driver, f[i].override, GPUH_VFIO_DRIVER, reterr);
                event(s, "bind", name, f[i].driver[0] ? f[i].driver : "none", GPUH_VFIO_DRIVER, t0, r,
                      reterr ? *reterr : NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The VF @vf of a device does not exist: enable the PF's VFs when allowed. */
static int ensure_vf(struct sc *s, const struct gpuh_pci_addr *vf, const struct gpuh_pci_addr *pf_hint,
                     const char *need_rel, char **reterr)
{
        struct gpuh_pci_addr pf;
        char name[GPUH_PCI_ADDR_MAX], pname[GPUH_PCI_ADDR_MAX], rel[128], v[16];
        struct gpuh_jentry e = { .op = GPUH_JOP_SRIOV };
        int64_t t0 = now_us();
        uint64_t total = 0, num = 0;
        int r;

        if (pci_exists(s, vf))
                return 0;
        gpuh_pci_addr_format(vf, name);
        if (pf_hint && pci_exists(s, pf_hint))
                pf = *pf_hint;
        else if (find_pf_of(s, vf, &pf) < 0)
                return gpuh_error(reterr, -ENODEV, "%s: %s: no such PCI device", s->vm, name);
        gpuh_pci_addr_format(&pf, pname);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/sriov_numvfs", pname);
        if (gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &num) < 0 || num != 0)
                return gpuh_error(reterr, -ENODEV, "%s: VF %s does not exist (PF %s has %llu VFs)", s->vm, name, pname,
                                  (unsigned long long) num);
        if (!s->cfg->enable_sriov)
                return gpuh_error(reterr, -ENODEV, "%s: VF %s does not exist: SR-IOV is off on %s (sriov_numvfs 0) and "
                                  "state_change.enable_sriov is false", s->vm, name, pname);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/sriov_totalvfs", pname);
        r = gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &total);
        if (r < 0 || total == 0 || total > 0xffff)
                return gpuh_error(reterr, -ENODEV, "%s: %s cannot enable VFs (sriov_totalvfs unreadable)", s->vm, pname);
        e.dev = pf;
        e.old = 0;
        e.to_n = (unsigned) total;
        r = journal_change(s, &e, reterr);
        if (r < 0)
                return r;
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/sriov_numvfs", pname);
        snprintf(v, sizeof(v), "%llu", (unsigned long long) total);
        r = gpuh_change_write(&s->ch, s->ch.root_fd, rel, v);
        if (r < 0)
                gpuh_error(reterr, r, "%s: %s: enabling %s VFs: %s", s->vm, pname, v,
                           r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        gpuh_change_forget(&s->ch);     /* a missing VF's lookup is not cached, but be plain */
        s->n_groups = 0;
        if (r == 0) {
                /* the VF, and what the device needs of it once its driver bound it */
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s", name);
                r = gpuh_change_wait_exists(&s->ch, s->ch.root_fd, rel, true);
                if (r == 0 && need_rel)
                        r = gpuh_change_wait_exists(&s->ch, s->ch.root_fd, need_rel, true);
                if (r < 0)
                        gpuh_error(reterr, -ENODEV, "%s: VF %s did not appear after enabling SR-IOV on %s", s->vm, name,
                                   pname);
        }
        event(s, "sriov-enable", pname, "0", v, t0, r, reterr ? *reterr : NULL);
        return r < 0 ? (r == -ETIMEDOUT ? -ENODEV : r) : 0;
}

/* A record device, as planned before anything changes. */
struct unit {
        const struct gpuh_alloc *a;
        bool managed;                   /* managed='yes': libvirt binds it */
        bool planned;                   /* f[] holds its functions (it existed) */
        struct fn f[MAX_GROUP];
        size_t n;
        char **nodes;                   /* their device nodes, when planned */
};

static int prepare_device(struct sc *s, struct unit *u, char **reterr)
{
        const struct gpuh_alloc *a = u->a;
        char name[GPUH_PCI_ADDR_MAX], rel[160];
        int64_t t0 = now_us();
        int r;

        switch (a->kind) {
        case GPUH_ALLOC_PCI:
        case GPUH_ALLOC_VF:
                if (!u->planned) {
                        if (a->kind == GPUH_ALLOC_VF && (r = ensure_vf(s, &a->addr, &a->parent, NULL, reterr)) < 0)
                                return r;
                        r = plan_functions(s, a, u->f, ARRAY_SIZE(u->f), &u->n, reterr);
                        if (r < 0)
                                return r;
                }
                if (u->managed)
                        return 0;       /* libvirt binds it (managed='yes') */
                r = check_holders(s, u->f, u->n, u->planned ? u->nodes : NULL, reterr);
                if (r < 0)
                        return r;
                return bind_functions(s, u->f, u->n, reterr);
        case GPUH_ALLOC_MDEV: {
                struct gpuh_jentry e = { .op = GPUH_JOP_MDEV, .dev = a->parent };

                gpuh_pci_addr_format(&a->parent, name);
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/mdev_supported_types/%s", name, a->mdev_type);
                if ((r = ensure_vf(s, &a->parent, NULL, rel, reterr)) < 0)
                        return r;
                snprintf(rel, sizeof(rel), "bus/mdev/devices/%s", a->uuid);
                if (gpuh_sysfs_exists(s->sysfs->root_fd, rel) == 1) {
                        /* there already: checked (type, parent), used as it is, not ours to remove */
                        r = gpuh_mdev_create(&s->ch, &a->parent, a->mdev_type, a->uuid, reterr);
                        return r == -EEXIST ? -EBUSY : r;
                }
                snprintf(e.uuid, sizeof(e.uuid), "%s", a->uuid);
                snprintf(e.mdev_type, sizeof(e.mdev_type), "%s", a->mdev_type);
                r = journal_change(s, &e, reterr);
                if (r < 0)
                        return r;
                r = gpuh_mdev_create(&s->ch, &a->parent, a->mdev_type, a->uuid, reterr);
                event(s, "mdev-create", a->uuid, NULL, a->mdev_type, t0, r, reterr ? *reterr : NULL);
                return r;
        }
        case GPUH_ALLOC_VENDOR_VGPU: {
                struct gpuh_jentry e = { .op = GPUH_JOP_VGPU, .dev = a->addr, .to_n = a->vgpu_type };
                _cleanup_free_ char *desc = NULL;
                uint64_t cur = 0;
                char o[16], n[16];

                gpuh_pci_addr_format(&a->addr, name);
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/nvidia/current_vgpu_type", name);
                if ((r = ensure_vf(s, &a->addr, &a->parent, rel, reterr)) < 0)
                        return r;
                r = gpuh_sysfs_read_u64(s->sysfs->root_fd, rel, &cur);
                if (r < 0)
                        return gpuh_error(reterr, r == -ENOENT ? -ENODEV : r, "%s: %s has no NVIDIA vGPU interface "
                                          "(nvidia/current_vgpu_type): %s", s->vm, name, strerror(-r));
                if (vfio_holders(s, pci_group(s, &a->addr), &desc) > 0)
                        return gpuh_error(reterr, -EBUSY, "%s: %s is in use (vGPU type %llu): %s", s->vm, name,
                                          (unsigned long long) cur, desc);
                if (cur == a->vgpu_type)
                        /* set already (by the operator, or by a domain that stopped unreleased) */
                        return journal_takeover(s, &e, reterr);
                e.old = (unsigned) cur;
                r = journal_change(s, &e, reterr);
                if (r < 0)
                        return r;
                r = gpuh_vendor_vgpu_set(&s->ch, &a->addr, a->vgpu_type, reterr);
                snprintf(o, sizeof(o), "%llu", (unsigned long long) cur);
                snprintf(n, sizeof(n), "%u", a->vgpu_type);
                event(s, "vgpu-set", name, o, n, t0, r, reterr ? *reterr : NULL);
                return r;
        }
        default:
                return -EINVAL;
        }
}

/* Lock names of what @a touches: its functions (and group), its mdev, the PF of a missing VF. */
static int device_keys(struct sc *s, const struct gpuh_alloc *a, struct gpuh_lockset *set)
{
        char key[KEY_MAX];
        struct gpuh_pci_addr m[MAX_GROUP], pf;
        const struct gpuh_pci_addr *fn = a->kind == GPUH_ALLOC_MDEV ? &a->parent : &a->addr;
        int r;

        if (a->kind == GPUH_ALLOC_MDEV) {
                snprintf(key, sizeof(key), "mdev-%s", a->uuid);
                if ((r = gpuh_lockset_add(set, key)) < 0)
                        return r;
        } else if ((r = gpuh_lockset_add(set, pci_key(&a->addr, key))) < 0)
                return r;
        if (!pci_exists(s, fn)) {
                /* may enable SR-IOV: the PF's lock serializes that */
                if ((a->kind == GPUH_ALLOC_VF || a->kind == GPUH_ALLOC_VENDOR_VGPU) && pci_exists(s, &a->parent))
                        pf = a->parent;
                else if (find_pf_of(s, fn, &pf) < 0)
                        return 0;
                return gpuh_lockset_add(set, pci_key(&pf, key));
        }
        if (a->kind == GPUH_ALLOC_PCI || a->kind == GPUH_ALLOC_VF) {
                int n = group_members(s, &a->addr, m, ARRAY_SIZE(m));
                for (int i = 0; i < n; i++)
                        if ((r = gpuh_lockset_add(set, pci_key(&m[i], key))) < 0)
                                return r;
        }
        return 0;
}

/* Does the XML carry the hostdevs of @a? Sets *@managed when a PCI one is managed='yes'. */
static const struct gpuh_pci_addr *missing_hostdev(const struct gpuh_domxml *d, const struct gpuh_alloc *a, bool *managed)
{
        const struct gpuh_pci_addr *need[GPUH_ALLOC_MAX_COMPANIONS + 1];
        size_t n = 0;

        *managed = false;
        if (a->kind == GPUH_ALLOC_MDEV) {
                for (size_t k = 0; k < d->n_hostdevs; k++)
                        if (d->hostdevs[k].is_mdev && streq(d->hostdevs[k].uuid, a->uuid))
                                return NULL;
                return &a->parent;
        }
        need[n++] = &a->addr;
        for (size_t c = 0; c < a->n_companions; c++)
                need[n++] = &a->companions[c];
        for (size_t i = 0; i < n; i++) {
                bool found = false;
                for (size_t k = 0; k < d->n_hostdevs && !found; k++)
                        if (!d->hostdevs[k].is_mdev && gpuh_pci_addr_cmp(&d->hostdevs[k].addr, need[i]) == 0) {
                                found = true;
                                if (i == 0)
                                        *managed = d->hostdevs[k].managed;
                        }
                if (!found)
                        return need[i];
        }
        return NULL;
}

static bool same_device(const struct gpuh_alloc *x, const struct gpuh_alloc *y)
{
        if (x->kind != y->kind)
                return false;
        return x->kind == GPUH_ALLOC_MDEV ? streq(x->uuid, y->uuid) : gpuh_pci_addr_cmp(&x->addr, &y->addr) == 0;
}

/* The reservation must be this domain's and hold every record device; a missing or expired
 * one is made again when no other domain's live reservation holds the devices. */
static int check_reservation(struct sc *s, const struct gpuh_domxml *d, char **reterr)
{
        struct gpuh_reservation *all = NULL, *own = NULL;
        size_t n = 0;
        int64_t now = (int64_t) time(NULL);
        struct gpuh_warnings w = { 0 };
        int r;

        if (!s->state)
                return 0;       /* dry run without a state directory: nothing reserved anywhere */
        r = gpuh_reservations_load(s->state, &all, &n, &w);
        if (r < 0) {
                r = gpuh_error(reterr, r, "%s: %s", d->name, w.n ? w.v[w.n - 1] : strerror(-r));
                gpuh_warnings_clear(&w);
                return r;
        }
        gpuh_warnings_clear(&w);
        for (size_t i = 0; i < n; i++)
                if (streq(all[i].domain, d->name))
                        own = &all[i];
        if (own && gpuh_reservation_live(own, now)) {
                if (own->uuid && d->uuid && !streq(own->uuid, d->uuid)) {
                        r = gpuh_error(reterr, -EBUSY, "%s: its reservation belongs to another domain of that name "
                                       "(uuid %s, this one is %s)", d->name, own->uuid, d->uuid);
                        goto out;
                }
                for (size_t i = 0; i < d->n_record; i++) {
                        bool held = false;
                        for (size_t k = 0; k < own->n_devices && !held; k++)
                                held = same_device(&own->devices[k], &d->record[i]);
                        if (!held) {
                                char a[GPUH_PCI_ADDR_MAX];
                                r = gpuh_error(reterr, -EBUSY, "%s: its reservation does not hold %s, which its allocation "
                                               "record names", d->name,
                                               d->record[i].kind == GPUH_ALLOC_MDEV ? d->record[i].uuid
                                               : gpuh_pci_addr_format(&d->record[i].addr, a));
                                goto out;
                        }
                }
                r = 0;
                goto out;
        }
        /* none, or expired: reserve again unless another domain holds a device */
        for (size_t i = 0; i < n; i++) {
                if (&all[i] == own || !gpuh_reservation_live(&all[i], now))
                        continue;
                for (size_t k = 0; k < d->n_record; k++)
                        if (gpuh_reservation_holds(&all[i], &d->record[k])) {
                                char a[GPUH_PCI_ADDR_MAX];
                                r = gpuh_error(reterr, -EBUSY, "%s: %s is reserved for %s", d->name,
                                               d->record[k].kind == GPUH_ALLOC_MDEV ? d->record[k].uuid
                                               : gpuh_pci_addr_format(&d->record[k].addr, a), all[i].domain);
                                goto out;
                        }
        }
        if (!s->o->dry_run) {
                struct gpuh_reservation rv = {
                        .domain = d->name, .uuid = d->uuid, .state = (char *) "reserved", .created = now,
                        .expires = now + s->cfg->reservation_ttl_s, .devices = d->record, .n_devices = d->n_record,
                };
                r = gpuh_reservation_write(s->state, &rv);
                if (r < 0) {
                        r = gpuh_error(reterr, -EIO, "%s: cannot write its reservation: %s", d->name, strerror(-r));
                        goto out;
                }
                gpuh_log(LOG_INFO, "%s: reserved again from its allocation record", d->name);
        }
        r = 0;
out:
        gpuh_reservations_free(all, n);
        return r;
}

/* Another domain's journal naming a device, while that domain's reservation is live: in use. */
static int check_journals(struct sc *s, char **reterr)
{
        for (size_t i = 0; i < s->locks.n; i++) {
                struct gpuh_journal *other = other_with(s, s->locks.names[i], NULL);

                if (!other || strncmp(s->locks.names[i], "vm-", 3) == 0)
                        continue;
                if (reservation_live(s, other->domain))
                        return gpuh_error(reterr, -EBUSY, "%s: %s is in use by %s (its journal)", s->vm,
                                          strchr(s->locks.names[i], '-') + 1, other->domain);
        }
        return 0;
}

/* ---- what a domain involves, and who else holds it ------------------------------------ */

/*
 * Could a document gpuhooks cannot parse involve a GPU? Only our namespace or a <hostdev> can
 * carry one, and a configuration rule may claim any domain by name: conservative, since what
 * this answers "no" to starts without any check.
 */
static bool raw_may_involve_gpu(const struct gpuh_config *cfg, const char *xml, size_t len)
{
        return cfg->n_rules > 0 || memmem(xml, len, GPUH_DOMXML_NS, strlen(GPUH_DOMXML_NS)) ||
               memmem(xml, len, "<hostdev", 8) || memmem(xml, len, ":hostdev", 8);
}

static bool is_gpu_fn(struct sc *s, const struct gpuh_pci_addr *a)
{
        uint16_t vendor, device;
        uint64_t cls;
        int fd = devfd(s, a);

        return fd >= 0 && read_ids(s, a, &vendor, &device) == 0 && gpuh_sysfs_read_u64(fd, "class", &cls) == 0 &&
               gpuh_is_gpu(s->cfg, vendor, (uint32_t) cls);
}

/* The PF of VF @a (its physfn link); -ENOENT when @a is no VF. */
static int physfn_of(struct sc *s, const struct gpuh_pci_addr *a, struct gpuh_pci_addr *ret)
{
        char buf[GPUH_PCI_ADDR_MAX + 8];
        int fd = devfd(s, a), r;

        if (fd < 0)
                return fd;
        r = gpuh_sysfs_link_basename(fd, "physfn", buf, sizeof(buf));
        if (r < 0)
                return r;
        return gpuh_pci_addr_parse(buf, ret) < 0 ? -EBADMSG : 0;
}

enum gpu_role {
        ROLE_NONE,              /* not part of a GPU */
        ROLE_GPU,               /* a GPU function (a PF) */
        ROLE_COMPANION,         /* another function of a GPU's slot (HDMI audio, USB-C) */
        ROLE_VF,                /* an SR-IOV VF of a GPU, existing or not yet enabled */
};

/* What @a is to the host's GPUs; @pf receives the GPU of a companion or VF. The inventory's
 * rule: a companion shares the GPU's slot, a VF has it as physfn. */
static enum gpu_role gpu_role(struct sc *s, const struct gpuh_pci_addr *a, struct gpuh_pci_addr *pf)
{
        struct gpuh_pci_addr f0 = *a;

        if (!pci_exists(s, a))
                return find_pf_of(s, a, pf) == 0 && is_gpu_fn(s, pf) ? ROLE_VF : ROLE_NONE;
        if (is_gpu_fn(s, a)) {
                if (physfn_of(s, a, pf) == 0)
                        return ROLE_VF;
                *pf = *a;
                return ROLE_GPU;
        }
        if (physfn_of(s, a, pf) == 0)
                return is_gpu_fn(s, pf) ? ROLE_VF : ROLE_NONE;
        for (f0.func = 0; f0.func < 8; f0.func++)
                if (f0.func != a->func && pci_exists(s, &f0) && is_gpu_fn(s, &f0)) {
                        *pf = f0;
                        return ROLE_COMPANION;
                }
        return ROLE_NONE;
}

/* A hostdev that gives a GPU (or part of one): an mdev, or a PCI function of a GPU. */
static bool gpu_hostdev(struct sc *s, const struct gpuh_dom_hostdev *h)
{
        struct gpuh_pci_addr pf;

        return h->is_mdev || gpu_role(s, &h->addr, &pf) != ROLE_NONE;
}

/* The mdev's parent function, from bus/mdev/devices/UUID (a link into the parent's directory). */
static int mdev_parent(struct sc *s, const char *uuid, struct gpuh_pci_addr *ret)
{
        char rel[96], target[PATH_MAX], *p, *e;

        snprintf(rel, sizeof(rel), "bus/mdev/devices/%s", uuid);
        if (gpuh_sysfs_readlink(s->sysfs->root_fd, rel, target, sizeof(target)) < 0)
                return -ENOENT;
        /* ../../../devices/pci0000:00/0000:00:03.0/0000:05:00.0/UUID */
        e = strrchr(target, '/');
        if (!e)
                return -EBADMSG;
        *e = '\0';
        p = strrchr(target, '/');
        return gpuh_pci_addr_parse(p ? p + 1 : target, ret) < 0 ? -EBADMSG : 0;
}

/*
 * Every GPU hostdev of the document, with or without our record, against the claims of other
 * domains (reservations, journals, the quarantine) and against processes holding its
 * /dev/vfio group (another domain's QEMU): libvirt binds managed='yes' hostdevs itself, so
 * this is the last check before a device is given twice.
 */
static int check_hostdevs(struct sc *s, const struct gpuh_domxml *d, char **reterr)
{
        _cleanup_free_ struct gpuh_quarantined *q = NULL;
        struct gpuh_reservation *res = NULL;
        struct gpuh_warnings w = { 0 };
        size_t n_q = 0, n_res = 0;
        char **nodes = NULL;
        int r;

        r = host_lock(s, reterr);
        if (r < 0)
                return r;
        if (s->state)
                r = gpuh_reservations_load(s->state, &res, &n_res, &w);
        if (r == 0 && !s->j)
                r = load_journals(s, d->uuid, reterr);
        host_unlock(s);
        if (r < 0) {
                if (!*reterr)
                        gpuh_error(reterr, r, "%s: %s", d->name, w.n ? w.v[w.n - 1] : strerror(-r));
                goto out;
        }
        r = gpuh_quarantine_load(s->state ? gpuh_state_dir(s->state) : NULL, &q, &n_q);
        if (r < 0) {
                gpuh_error(reterr, r, "%s: cannot read the quarantine in '%s': %s", d->name,
                           s->state ? gpuh_state_dir(s->state) : "", strerror(-r));
                goto out;
        }
        {
                struct gpuh_occupancy occ = {
                        .self = d->name, .now = (int64_t) time(NULL), .res = res, .n_res = n_res,
                        .journals = s->others, .n_journals = s->n_others, .quarantined = q, .n_quarantined = n_q,
                };

                for (size_t i = 0; i < d->n_hostdevs && r == 0; i++) {
                        const struct gpuh_dom_hostdev *h = &d->hostdevs[i];
                        struct gpuh_pci_addr pf;
                        char why[768], a[GPUH_PCI_ADDR_MAX];
                        enum gpu_role role;
                        int g;

                        if (h->is_mdev) {
                                /* its parent is shared with other mdevs: only its quarantine counts */
                                struct gpuh_occupancy qo = { .quarantined = q, .n_quarantined = n_q };
                                bool held = gpuh_occupancy_mdev(&occ, h->uuid, why, sizeof(why)) ||
                                            (mdev_parent(s, h->uuid, &pf) == 0 &&
                                             gpuh_occupancy_pci(&qo, &pf, NULL, why, sizeof(why)));
                                if (held)
                                        r = gpuh_error(reterr, -EBUSY, "%s: mdev %s: %s", d->name, h->uuid, why);
                                else
                                        r = add_vfio_node(s, mdev_group(s, h->uuid), &nodes);
                                continue;
                        }
                        role = gpu_role(s, &h->addr, &pf);
                        if (role == ROLE_NONE)
                                continue;
                        gpuh_pci_addr_format(&h->addr, a);
                        if (gpuh_occupancy_pci(&occ, &h->addr, role == ROLE_VF ? &pf : NULL, why, sizeof(why)) ||
                            (role == ROLE_COMPANION && gpuh_occupancy_pci(&occ, &pf, NULL, why, sizeof(why)))) {
                                r = gpuh_error(reterr, -EBUSY, "%s: %s: %s", d->name, a, why);
                                continue;
                        }
                        g = pci_exists(s, &h->addr) ? pci_group(s, &h->addr) : -1;
                        r = add_vfio_node(s, g, &nodes);
                }
        }
        if (r == 0 && nodes) {
                _cleanup_free_ struct gpuh_holder *h = NULL;
                _cleanup_free_ char *desc = NULL;
                size_t nh = 0;

                r = gpuh_holders_find(s->proc_root, nodes, &h, &nh);
                if (r < 0)
                        gpuh_error(reterr, r, "%s: cannot look for processes using the devices in '%s': %s", d->name,
                                   s->proc_root, strerror(-r));
                else if (nh > 0) {
                        desc = gpuh_holders_describe(h, nh);
                        r = gpuh_error(reterr, -EBUSY, "%s: %s is in use (another domain's QEMU?): %s", d->name,
                                       h[0].node, desc ? desc : "");
                } else
                        r = 0;
        }
out:
        strv_free(nodes);
        gpuh_warnings_clear(&w);
        gpuh_reservations_free(res, n_res);
        return r;
}

/*
 * An allocation record is a claim, never an authority: every device it names must be one the
 * transformer may hand out (a GPU, companions of its slot, a VF of a GPU, an mdev of a GPU or
 * of such a VF), consistent with its relatives (a GPU whose VFs or mdevs are in use is not
 * passed through whole: unbinding the PF destroys them).
 */
static int verify_record(struct sc *s, const struct gpuh_domxml *d, char **reterr)
{
        for (size_t i = 0; i < d->n_record; i++) {
                const struct gpuh_alloc *a = &d->record[i];
                char n[GPUH_PCI_ADDR_MAX], m[GPUH_PCI_ADDR_MAX];
                struct gpuh_pci_addr pf;
                enum gpu_role role;

                switch (a->kind) {
                case GPUH_ALLOC_PCI: {
                        _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
                        struct gpuh_mdev *md = NULL;
                        const char *busy = NULL;
                        int nv, nm;

                        gpuh_pci_addr_format(&a->addr, n);
                        if (!pci_exists(s, &a->addr))
                                return gpuh_error(reterr, -ENODEV, "%s: %s: no such PCI device", d->name, n);
                        if (gpu_role(s, &a->addr, &pf) != ROLE_GPU)
                                return gpuh_error(reterr, -EPERM, "%s: its allocation record names %s, which is not a GPU: "
                                                  "refused", d->name, n);
                        for (size_t c = 0; c < a->n_companions; c++)
                                if (!gpuh_pci_addr_same_slot(&a->companions[c], &a->addr) ||
                                    gpuh_pci_addr_cmp(&a->companions[c], &a->addr) == 0)
                                        return gpuh_error(reterr, -EPERM, "%s: its allocation record names %s as a "
                                                          "companion of %s, which is not another function of its card: "
                                                          "refused", d->name,
                                                          gpuh_pci_addr_format(&a->companions[c], m), n);
                        nv = pf_vfs(s, &a->addr, &vfs);
                        if (nv > 0)
                                busy = vf_in_use(s, vfs, nv);
                        nm = gpuh_mdev_list(s->sysfs->root_fd, NULL, &md);
                        for (int k = 0; k < nm && !busy; k++)
                                if (gpuh_pci_addr_cmp(&md[k].parent, &a->addr) == 0)
                                        busy = "it carries mdevs";
                        gpuh_mdevs_free(md, nm > 0 ? (size_t) nm : 0);
                        if (busy)
                                return gpuh_error(reterr, -EBUSY, "%s: %s cannot be passed through whole: %s", d->name, n,
                                                  busy);
                        break;
                }
                case GPUH_ALLOC_VF:
                case GPUH_ALLOC_VENDOR_VGPU:
                        gpuh_pci_addr_format(&a->addr, n);
                        role = gpu_role(s, &a->addr, &pf);
                        if (role != ROLE_VF || gpuh_pci_addr_cmp(&pf, &a->parent) != 0)
                                return gpuh_error(reterr, -EPERM, "%s: its allocation record names %s as a VF of GPU %s, "
                                                  "which it is not: refused", d->name, n,
                                                  gpuh_pci_addr_format(&a->parent, m));
                        break;
                case GPUH_ALLOC_MDEV:
                        gpuh_pci_addr_format(&a->parent, n);
                        role = gpu_role(s, &a->parent, &pf);
                        if (role != ROLE_GPU && role != ROLE_VF)
                                return gpuh_error(reterr, -EPERM, "%s: its allocation record names mdev %s on %s, which is "
                                                  "not a GPU or a VF of one: refused", d->name, a->uuid, n);
                        break;
                default:
                        return -EINVAL;
                }
        }
        return 0;
}

int gpuh_sc_prepare(const struct gpuh_sc_opts *o, const char *xml, size_t len, json_object **ret_plan, char **reterr)
{
        struct sc s = { 0 };
        struct gpuh_domxml *d = NULL;
        _cleanup_free_ bool *managed = NULL;
        _cleanup_free_ struct unit *units = NULL;
        const char *asked = NULL;
        int64_t t0 = now_us();
        size_t done_before = 0;
        bool gpu = false;
        int r;

        *reterr = NULL;
        if (ret_plan)
                *ret_plan = NULL;
        s.vm_lock = -1;
        r = gpuh_domxml_parse(xml, len, &d, reterr);
        if (r < 0) {
                /* what does not parse, but cannot carry a GPU, is not ours to refuse */
                if (r != -ENOMEM && !raw_may_involve_gpu(o->cfg, xml, len)) {
                        gpuh_log(LOG_INFO, "a domain XML without GPUs that gpuhooks cannot read (%s): left alone",
                                 *reterr ? *reterr : strerror(-r));
                        free(*reterr);
                        *reterr = NULL;
                        r = 0;
                }
                goto out;
        }
        s.vm = d->name;
        if (o->dry_run && !(s.plan = plan_new(d->name, "prepare"))) {
                r = -ENOMEM;
                goto out;
        }

        /* What does it ask for? Nothing: the common case, left untouched. */
        if (d->n_requests > 0)
                asked = "its gpuhooks:request element";
        else
                for (size_t i = 0; i < o->cfg->n_rules && !asked; i++)
                        if (gpuh_rule_matches(&o->cfg->rules[i].match, d->name, &d->cs))
                                asked = "a transformer.rules entry of the configuration";
        if (d->n_hostdevs > 0 && !d->has_record && !asked) {
                r = sc_open_sysfs(&s, o, reterr);
                if (r < 0)
                        goto out;
                for (size_t i = 0; i < d->n_hostdevs && !gpu; i++)
                        gpu = gpu_hostdev(&s, &d->hostdevs[i]);
        }
        if (!d->has_record && !asked && !gpu) {
                r = 0;
                goto out;
        }

        /* A broken configuration: only now, known to want GPUs, is the domain refused. */
        if (o->config_error) {
                r = gpuh_error(reterr, -EBADMSG, "%s: refused: it asks for GPUs (%s) and the configuration is unusable: %s",
                               d->name, asked ? asked : d->has_record ? "its gpuhooks allocation record" : "its GPU hostdevs",
                               o->config_error);
                goto out;
        }
        if (!d->has_record && !asked) {
                /* CloudStack's own GPU hostdevs, no record (the transformer refused it, or is
                 * not installed): libvirt binds them; they must be no other domain's */
                r = sc_open(&s, o, reterr);
                if (r == 0)
                        r = check_hostdevs(&s, d, reterr);
                goto out;
        }

        if (!d->has_record || d->n_record == 0) {
                r = gpuh_error(reterr, -ENODEV, "%s asks for GPUs (%s) but its XML carries no gpuhooks allocation record: "
                               "the transformer did not run, refusing to start it without them", d->name,
                               asked ? asked : "an empty allocation record");
                goto out;
        }
        /* VMNAME and <name> must be one name: release (VMNAME only) finds the journal by it */
        if (o->vmname && !streq(o->vmname, d->name)) {
                r = gpuh_error(reterr, -EBADMSG, "the domain XML names the domain '%s' but libvirt's VMNAME argument "
                               "is '%s': refusing to start it", d->name, o->vmname);
                goto out;
        }
        managed = calloc(d->n_record, sizeof(bool));
        if (!managed) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < d->n_record; i++) {
                const struct gpuh_pci_addr *miss = missing_hostdev(d, &d->record[i], &managed[i]);
                char a[GPUH_PCI_ADDR_MAX];

                if (!miss)
                        continue;
                r = gpuh_error(reterr, -ENODEV, "%s: its allocation record names %s but the XML has no hostdev for it",
                               d->name, d->record[i].kind == GPUH_ALLOC_MDEV ? d->record[i].uuid
                                                                             : gpuh_pci_addr_format(miss, a));
                goto out;
        }

        r = sc_open(&s, o, reterr);
        if (r == 0)
                r = verify_record(&s, d, reterr);       /* before a lock file is made for it */
        if (r < 0)
                goto out;
        r = vm_lock(&s, o->cfg->lock_timeout_ms, reterr);
        if (r < 0)
                goto out;
        /* our own journal, as an unfinished earlier prepare left it: only we append to it */
        if (gpuh_journal_load(s.jfd, d->name, &s.j) == 0)
                for (size_t i = 0; i < s.j->n; i++) {
                        char key[KEY_MAX];
                        if ((r = gpuh_lockset_add(&s.locks, gpuh_jentry_key(&s.j->e[i], key, sizeof(key)))) < 0)
                                goto out;
                }
        for (size_t i = 0; i < d->n_record; i++)
                if ((r = device_keys(&s, &d->record[i], &s.locks)) < 0)
                        goto out;
        r = take_locks(&s, reterr);
        if (r < 0)
                goto out;

        r = host_lock(&s, reterr);
        if (r < 0)
                goto out;
        r = check_reservation(&s, d, reterr);
        if (r == 0)
                r = load_journals(&s, d->uuid, reterr);
        host_unlock(&s);
        if (r == 0)
                r = check_journals(&s, reterr);
        if (r == 0)
                r = check_hostdevs(&s, d, reterr);
        if (r < 0)
                goto out;
        done_before = s.j->n;

        /* Plan first, change nothing: every group checked, every holder looked for (one scan
         * of /proc for all devices), before the first write. */
        units = calloc(d->n_record, sizeof(*units));
        if (!units) {
                r = -ENOMEM;
                goto out;
        }
        {
                char **nodes = NULL;

                for (size_t i = 0; i < d->n_record && r == 0; i++) {
                        struct unit *u = &units[i];
                        const struct gpuh_alloc *a = &d->record[i];
                        char *dup;

                        u->a = a;
                        u->managed = managed[i];
                        if ((a->kind == GPUH_ALLOC_PCI || a->kind == GPUH_ALLOC_VF) && pci_exists(&s, &a->addr)) {
                                r = plan_functions(&s, a, u->f, ARRAY_SIZE(u->f), &u->n, reterr);
                                u->planned = r == 0;
                                if (r == 0 && !u->managed)
                                        r = function_nodes(&s, u->f, u->n, &u->nodes);
                                for (char **p = u->nodes; r == 0 && p && *p; p++)
                                        r = (dup = strdup(*p)) ? strv_consume(&nodes, dup) : -ENOMEM;
                        } else if (a->kind == GPUH_ALLOC_VENDOR_VGPU && pci_exists(&s, &a->addr))
                                r = add_vfio_node(&s, pci_group(&s, &a->addr), &nodes);
                }
                if (r == 0)
                        r = scan_holders(&s, nodes);
                else
                        strv_free(nodes);
                if (r < 0) {
                        if (!*reterr)
                                gpuh_error(reterr, r, "%s: cannot look for processes using the devices in '%s': %s",
                                           d->name, s.proc_root, strerror(-r));
                        goto out;
                }
        }
        for (size_t i = 0; i < d->n_record; i++) {
                /* libvirtd waits for prepare without limit: the run has a deadline of its own */
                if (now_us() - t0 > (int64_t) o->cfg->prepare_timeout_ms * 1000) {
                        r = gpuh_error(reterr, -ETIMEDOUT, "%s: prepare ran past its deadline (state_change.prepare_timeout_ms "
                                       "%d) with %zu of %zu devices ready: refusing the start", d->name,
                                       o->cfg->prepare_timeout_ms, i, d->n_record);
                        break;
                }
                r = prepare_device(&s, &units[i], reterr);
                if (r < 0)
                        break;
        }
        if (r < 0 && !o->dry_run && s.j->n > 0) {
                /* undo everything, in reverse: the devices end as they were before the start */
                _cleanup_free_ char *err = NULL;
                size_t n = s.j->n;
                int k = replay(&s, &err);

                if (k == 0)
                        k = commit_journal(&s, FREE_ALWAYS, &err);
                else
                        commit_journal(&s, FREE_ALWAYS, NULL);
                event(&s, "rollback", NULL, NULL, NULL, t0, k, err);
                if (k < 0 && *reterr) {
                        char *m = NULL;
                        if (asprintf(&m, "%s; rollback incomplete (%zu of %zu changes kept in the journal): %s", *reterr,
                                     s.j->n, n, err ? err : strerror(-k)) >= 0) {
                                free(*reterr);
                                *reterr = m;
                        }
                }
                goto out;
        }
        if (r == 0 && s.j->n > done_before)
                event(&s, "prepare", NULL, NULL, NULL, t0, 0, NULL);
out:
        for (size_t i = 0; units && i < d->n_record; i++)
                strv_free(units[i].nodes);
        if (r < 0 && d)
                prefix_vm(d->name, reterr);
        plan_finish(&s, r, reterr);
        if (ret_plan)
                *ret_plan = TAKE_PTR(s.plan);
        if (s.plan)
                json_object_put(s.plan);
        if (r < 0 && !*reterr && r != -ENOMEM)
                gpuh_error(reterr, r, "%s: %s", d && d->name ? d->name : "domain", strerror(-r));
        sc_done(&s);
        gpuh_domxml_free(d);
        return r;
}

/* ---- started, release, onStop, reconcile ------------------------------------------------ */

/* Has @domain a journal or a reservation? Every domain of the host passes through the hooks;
 * those that never had a GPU cost a stat(2) or two, and leave nothing behind. */
static bool has_state(const struct gpuh_sc_opts *o, const char *domain)
{
        const char *dir = env_or(o->state_dir, "GPUHOOKS_STATE_DIR", GPUH_STATE_DIR_DEFAULT);
        char path[PATH_MAX], enc[GPUH_DOMNAME_ENC_SIZE];

        /* the files are named by the encoded name (domname.h); whether the directories may be
         * used is checked when they are opened (sc_open()) */
        if (gpuh_domname_encode(domain, enc) < 0)
                return false;
        snprintf(path, sizeof(path), "%s/journal/%s.journal", dir, enc);
        if (access(path, F_OK) == 0)
                return true;
        snprintf(path, sizeof(path), "%s/reservations/%s.json", dir, enc);
        return access(path, F_OK) == 0;
}

int gpuh_sc_started(const struct gpuh_sc_opts *o, const char *domain, char **reterr)
{
        struct sc s = { 0 };
        struct gpuh_reservation res;
        int r;

        *reterr = NULL;
        s.vm_lock = -1;
        s.vm = domain;
        if (!gpuh_domname_ok(domain))
                return gpuh_error(reterr, -EINVAL, "'%s' is not a domain name libvirt accepts", domain);
        if (o->dry_run || !has_state(o, domain))
                return 0;
        r = sc_open(&s, o, reterr);
        if (r == 0)
                r = host_lock(&s, reterr);
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
                host_unlock(&s);
        }
        sc_done(&s);
        return r;
}

/* Release @domain's journal; the domain lock is taken with @lock_timeout_ms. */
static int release_one(const struct gpuh_sc_opts *o, const char *domain, enum free_mode mode, int lock_timeout_ms,
                       json_object *plans, char **reterr)
{
        struct sc s = { 0 };
        int64_t t0 = now_us();
        size_t n0 = 0;
        int r;

        s.vm_lock = -1;
        s.vm = domain;
        if (!gpuh_domname_ok(domain))
                return gpuh_error(reterr, -EINVAL, "'%s' is not a domain name libvirt accepts", domain);
        if (o->dry_run && !(s.plan = plan_new(domain, "release"))) {
                r = -ENOMEM;
                goto out;
        }
        if (!has_state(o, domain)) {
                r = 0;
                goto out;
        }
        r = sc_open(&s, o, reterr);
        if (r < 0)
                goto out;
        r = vm_lock(&s, lock_timeout_ms, reterr);
        if (r < 0)
                goto out;
        r = gpuh_journal_load(s.jfd, domain, &s.j);
        if (r == -ENOENT) {
                r = gpuh_journal_new(domain, NULL, &s.j);
                if (r < 0)
                        goto out;
        } else if (r < 0) {
                char enc[GPUH_DOMNAME_ENC_SIZE];
                gpuh_domname_encode(domain, enc);
                r = gpuh_error(reterr, r == -ENOMEM ? r : -EBADMSG, "%s: its journal '%s/%s.journal' is unusable (%s): "
                               "restore its devices by hand, then remove it", domain, s.jdir, enc,
                               r == -EBADMSG ? "malformed" : strerror(-r));
                goto out;
        }
        for (size_t i = 0; i < s.j->n; i++) {
                char key[KEY_MAX];
                if ((r = gpuh_lockset_add(&s.locks, gpuh_jentry_key(&s.j->e[i], key, sizeof(key)))) < 0)
                        goto out;
                if (s.j->e[i].op == GPUH_JOP_SRIOV) {
                        /* disabling VFs touches every VF: take them all */
                        _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
                        int n = pf_vfs(&s, &s.j->e[i].dev, &vfs);
                        for (int k = 0; k < n; k++)
                                if ((r = gpuh_lockset_add(&s.locks, pci_key(&vfs[k], key))) < 0)
                                        goto out;
                }
        }
        r = take_locks(&s, reterr);
        if (r < 0)
                goto out;
        r = host_lock(&s, reterr);
        if (r == 0)
                r = load_journals(&s, NULL, reterr);    /* ours again: another may have taken entries over */
        host_unlock(&s);
        if (r < 0)
                goto out;
        n0 = s.j->n;
        {
                /* one scan of /proc for every vfio node the entries may find held */
                char **nodes = NULL;
                for (size_t i = 0; i < s.j->n && r == 0; i++) {
                        const struct gpuh_jentry *e = &s.j->e[i];
                        int g = e->op == GPUH_JOP_MDEV ? mdev_group(&s, e->uuid)
                                : e->op == GPUH_JOP_SRIOV ? -1 : pci_group(&s, &e->dev);
                        r = add_vfio_node(&s, g, &nodes);
                }
                if (r == 0 && nodes)
                        r = scan_holders(&s, nodes);
                else
                        strv_free(nodes);
                if (r < 0) {
                        gpuh_error(reterr, r, "%s: cannot look for processes using the devices in '%s': %s", domain,
                                   s.proc_root, strerror(-r));
                        goto out;
                }
        }
        r = replay(&s, reterr);
        {
                int k = commit_journal(&s, mode, r < 0 ? NULL : reterr);
                if (r == 0)
                        r = k;
        }
        if (n0 > 0 || r < 0)
                event(&s, "release", NULL, NULL, NULL, t0, r, *reterr);
        if (r == 0 && !o->dry_run && s.vm_lock >= 0) {
                char name[3 + GPUH_DOMNAME_ENC_SIZE];
                vm_lock_name(domain, name);
                gpuh_lockset_release(&s.locks);
                gpuh_lock_drop(s.lockdir, name, s.vm_lock);
                s.vm_lock = -1;
        }
out:
        if (r < 0)
                prefix_vm(domain, reterr);
        plan_finish(&s, r, reterr);
        if (s.plan) {
                if (plans)
                        json_object_array_add(plans, TAKE_PTR(s.plan));
                else
                        json_object_put(s.plan);
        }
        sc_done(&s);
        return r;
}

int gpuh_sc_release(const struct gpuh_sc_opts *o, const char *domain, json_object **ret_plan, char **reterr)
{
        json_object *plans = NULL;
        int r;

        *reterr = NULL;
        if (ret_plan)
                *ret_plan = NULL;

        /* A broken configuration: nothing held, nothing to do; else keep the journal. */
        if (o->config_error && gpuh_domname_ok(domain) && has_state(o, domain))
                return gpuh_error(reterr, -EBADMSG, "%s: not released (its journal is kept): %s", domain,
                                  o->config_error);

        if (o->dry_run && !(plans = json_object_new_array()))
                return -ENOMEM;
        r = release_one(o, domain, FREE_ALWAYS, o->cfg->lock_timeout_ms, plans, reterr);
        if (plans && ret_plan && json_object_array_length(plans) > 0)
                *ret_plan = json_object_get(json_object_array_get_idx(plans, 0));
        json_object_put(plans);
        return r;
}

/* Which domains run: libvirt when allowed, else the XML files libvirt keeps. */
static int load_usage(const struct gpuh_sc_opts *o, struct gpuh_vm_usage **ret, char **reterr)
{
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        _cleanup_free_ char *err = NULL;
        _cleanup_strv_free_ char **owned = NULL;
        char *const *dirs = gpuh_vm_usage_dirs(o->xml_dirs, o->xml_dirs_env, o->cfg, &owned);
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

int gpuh_sc_stopped(const struct gpuh_sc_opts *o, const char *domain, json_object **ret_plan, char **reterr)
{
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        json_object *plans = NULL;
        int r;

        *reterr = NULL;
        if (ret_plan)
                *ret_plan = NULL;
        if (!gpuh_domname_ok(domain))
                return gpuh_error(reterr, -EINVAL, "'%s' is not a domain name libvirt accepts", domain);
        if (!has_state(o, domain)) {
                if (ret_plan && o->dry_run && (*ret_plan = plan_new(domain, "release")))
                        json_object_object_add(*ret_plan, "error", NULL);
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
                if (ret_plan && o->dry_run && (*ret_plan = plan_new(domain, "release")))
                        json_object_object_add(*ret_plan, "error", NULL);
                return 0;
        }
        if (o->dry_run && !(plans = json_object_new_array()))
                return -ENOMEM;
        r = release_one(o, domain, FREE_RUNNING, o->cfg->lock_timeout_ms, plans, reterr);
        if (plans && ret_plan && json_object_array_length(plans) > 0)
                *ret_plan = json_object_get(json_object_array_get_idx(plans, 0));
        json_object_put(plans);
        return r;
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
        if (load_journals(s, NULL, NULL) < 0)
                return;
        for (int i = 0; i < n; i++) {
                const struct gpuh_vm *vms[1];
                struct gpuh_occupancy occ = {
                        .now = now, .res = res, .n_res = n_res, .journals = s->others, .n_journals = s->n_others,
                };
                struct gpuh_pci_addr pf;
                char drv[64] = "", ovr[64] = "", name[GPUH_PCI_ADDR_MAX], why[768];
                enum gpu_role role = gpu_role(s, &all[i], &pf);

                if (role == ROLE_NONE)
                        continue;
                gpuh_pci_addr_format(&all[i], name);
                if (gpuh_pci_driver(&s->ch, &all[i], drv, sizeof(drv)) < 0 ||
                    gpuh_pci_override(&s->ch, &all[i], ovr, sizeof(ovr)) < 0)
                        continue;
                if (gpuh_occupancy_pci(&occ, &all[i], role == ROLE_VF ? &pf : NULL, why, sizeof(why)) ||
                    gpuh_vm_usage_pci(u, &all[i], vms, 1) > 0)
                        continue;       /* accounted for (or quarantined already) */
                if (pci_dead(s, &all[i]))
                        snprintf(why, sizeof(why), "config space reads 0xffff: the function does not answer");
                else if (ovr[0] && !streq(ovr, drv))
                        snprintf(why, sizeof(why), "left mid-change: driver_override is %s but it is bound to %s, and "
                                 "no journal says what it was before", ovr, drv[0] ? drv : "no driver");
                else {
                        if (!drv[0] && role == ROLE_GPU)
                                gpuh_log(LOG_WARNING, "%s: GPU without a driver, and no journal of gpuhooks names it",
                                         name);
                        continue;
                }
                gpuh_log(LOG_ERR, "%s: %s: quarantined", name, why);
                if (plans) {
                        json_object *p = plan_new(name, "quarantine");
                        if (p) {
                                json_object_object_add(p, "error", json_object_new_string(why));
                                json_object_array_add(plans, p);
                        }
                }
                quarantine(s, &all[i], why);
        }
}

int gpuh_sc_reconcile(const struct gpuh_sc_opts *o, json_object **ret_plan, char **reterr)
{
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        _cleanup_strv_free_ char **names = NULL;
        struct gpuh_reservation *res = NULL;
        struct gpuh_warnings w = { 0 };
        struct sc s = { 0 };
        json_object *plans = NULL;
        int64_t now = (int64_t) time(NULL);
        int min_age = o->min_age_s >= 0 ? o->min_age_s : o->cfg->reconcile_min_age_s;
        size_t n_res = 0;
        int r, first = 0;

        *reterr = NULL;
        if (ret_plan)
                *ret_plan = NULL;

        /* A broken configuration: change nothing. */
        if (o->config_error)
                return gpuh_error(reterr, -EBADMSG, "reconcile: nothing released: %s", o->config_error);

        s.vm_lock = -1;
        r = load_usage(o, &u, reterr);
        if (r < 0)
                return r;
        r = sc_open(&s, o, reterr);
        if (r < 0) {
                sc_done(&s);
                return r;
        }
        if (o->dry_run && !(plans = json_object_new_array())) {
                sc_done(&s);
                return -ENOMEM;
        }
        /* candidates: every journal, and every reservation marked running */
        r = gpuh_journal_list(s.jfd, &names, &w);
        if (w.n > 0 && first == 0) {
                /* reported (gpuh_warn() logged each); the others are still released */
                first = -EBADMSG;
                gpuh_error(reterr, first, "%s in '%s': restore what it names by hand, then remove it", w.v[0], s.jdir);
        }
        gpuh_warnings_clear(&w);
        if (r >= 0 && s.state) {
                r = host_lock(&s, reterr);
                if (r == 0) {
                        r = gpuh_reservations_load(s.state, &res, &n_res, &w);
                        host_unlock(&s);
                        if (r < 0)
                                gpuh_error(reterr, r, "%s", w.n ? w.v[w.n - 1] : strerror(-r));
                }
        }
        gpuh_warnings_clear(&w);
        if (r < 0) {
                json_object_put(plans);
                sc_done(&s);
                return r;
        }
        for (size_t i = 0; i < n_res; i++) {
                bool listed = false;
                size_t k = 0;
                char **nn;

                if (!res[i].state || !streq(res[i].state, "running"))
                        continue;
                for (; names && names[k]; k++)
                        listed = listed || streq(names[k], res[i].domain);
                if (listed)
                        continue;
                nn = realloc(names, (k + 2) * sizeof(char *));
                if (!nn || !(nn[k] = strdup(res[i].domain))) {
                        names = nn ? nn : names;
                        r = -ENOMEM;
                        break;
                }
                nn[k + 1] = NULL;
                names = nn;
        }
        for (char **p = names; r >= 0 && p && *p; p++) {
                struct gpuh_journal *j = NULL;
                _cleanup_free_ char *err = NULL;
                int k;

                if (runs(u, *p))
                        continue;
                if (gpuh_journal_load(s.jfd, *p, &j) == 0) {
                        bool young = min_age > 0 && j->created > now - min_age;
                        gpuh_journal_free(j);
                        if (young) {
                                gpuh_log(LOG_INFO, "%s: journal younger than %d s, left for now", *p, min_age);
                                continue;
                        }
                }
                k = release_one(o, *p, FREE_RUNNING, 0, plans, &err);
                if (k == -ETIMEDOUT) {
                        gpuh_log(LOG_INFO, "%s: another hook is working on it, left for now", *p);
                        continue;
                }
                if (k < 0) {
                        gpuh_log(LOG_WARNING, "%s", err ? err : strerror(-k));
                        if (first == 0) {
                                first = k;
                                *reterr = TAKE_PTR(err);
                        }
                } else
                        gpuh_log(LOG_INFO, "%s: released (it no longer runs)", *p);
        }
        if (r >= 0)
                reconcile_stranded(&s, u, res, n_res, plans);
        gpuh_reservations_free(res, n_res);
        sc_done(&s);
        if (ret_plan)
                *ret_plan = plans;
        else
                json_object_put(plans);
        return r < 0 ? r : first;
}
