/* SPDX-License-Identifier: Apache-2.0 */
/*
 * context.c: one run of the state-change hook: opening and closing it, its events (one
 * syslog record per step), the dry run's plan, and its locks (docs/state-change.md).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "log.h"
#include "sc.h"
#include "sysfs.h"

void sc_init(struct sc *s, const struct gpuh_sc_opts *o, const char *vm)
{
        *s = (struct sc) { .o = o, .cfg = o->cfg, .dev_dir = o->dev_dir, .proc_root = o->proc_root, .vm = vm,
                           .jfd = -1, .lockdir = -1, .vm_lock = -1 };
        /* as gpuh_change_init() leaves them: no fd is closed by sc_done() before sc_open_sysfs() */
        s->ch.root_fd = s->ch.bus_fd = s->ch.devices_fd = -1;
}

/**
 * sc_opts_check:
 * @o: the caller's options
 * @reterr: on failure, one line (caller frees)
 *
 * The library reads no environment: the CLI resolves the roots (option, then environment,
 * then default) and every public function gets them all.
 *
 * Returns: 0; -EINVAL when @o->cfg or a root is missing.
 */
int sc_opts_check(const struct gpuh_sc_opts *o, char **reterr)
{
        if (!o || !o->cfg || !o->sysfs_root || !o->state_dir || !o->dev_dir || !o->proc_root)
                return gpuh_error(reterr, -EINVAL, "state change: the options need cfg, sysfs_root, state_dir, dev_dir "
                                  "and proc_root");
        return 0;
}

void sc_others_free(struct sc *s)
{
        for (size_t i = 0; i < s->n_others; i++)
                gpuh_journal_free(s->others[i]);
        free(s->others);
        s->others = NULL;
        s->n_others = 0;
}

void sc_done(struct sc *s)
{
        sc_scan_clear(&s->scan);
        gpuh_change_done(&s->ch);
        gpuh_lockset_release(&s->locks);
        if (s->vm_lock >= 0)
                close(s->vm_lock);
        s->vm_lock = -1;
        gpuh_journal_free(s->j);
        s->j = NULL;
        sc_others_free(s);
        gpuh_state_free(s->state);
        s->state = NULL;
        gpuh_sysfs_free(s->sysfs);
        s->sysfs = NULL;
        free(s->jdir);
        s->jdir = NULL;
}

/**
 * sc_open_sysfs:
 * @s: the run (sc_init())
 * @reterr: on failure, one line naming the root
 *
 * Opens the sysfs root and the change every write of the run goes through.
 *
 * Returns: 0; -errno of opening the root; -ENOMEM.
 */
int sc_open_sysfs(struct sc *s, char **reterr)
{
        const char *root = s->o->sysfs_root;
        int r;

        if (s->sysfs)
                return 0;
        r = gpuh_sysfs_open(root, &s->sysfs);
        if (r < 0)
                return gpuh_error(reterr, r, "cannot open the sysfs root '%s': %s", root, strerror(-r));
        return gpuh_change_init(&s->ch, s->sysfs->root_fd, s->cfg->write_timeout_ms, s->o->dry_run);
}

/**
 * sc_open:
 * @s: the run (sc_init())
 * @reterr: on failure, one line naming the directory and why it cannot be used
 *
 * sc_open_sysfs(), then the state directory with journal/ and locks/ (made when missing and
 * checked: owner, mode, no links; gpuh_state_open()). A dry run reads the directory as it is
 * and creates nothing; without one, it has no state at all.
 *
 * Returns: 0; -errno as gpuh_state_open(); -ENOMEM.
 */
int sc_open(struct sc *s, char **reterr)
{
        const char *dir = s->o->state_dir;
        int r;

        r = sc_open_sysfs(s, reterr);
        if (r < 0)
                return r;
        if (asprintf(&s->jdir, "%s/journal", dir) < 0)
                return -ENOMEM;
        if (s->o->dry_run && access(dir, F_OK) < 0)
                return 0;       /* nothing reserved or journaled yet; and a dry run creates nothing */
        /* a dry run writes nothing: it reads the state directory as it is */
        r = gpuh_state_open(dir, !s->o->dry_run, &s->state, reterr);
        if (r < 0)
                return gpuh_error(reterr, r, "cannot use state directory '%s': %s", dir, strerror(-r));
        s->jfd = gpuh_state_subdir(s->state, "journal");
        if (s->o->dry_run)
                return 0;       /* it reads what is there: no journal/ is no journal */
        r = s->jfd;
        if (r >= 0)
                r = s->lockdir = gpuh_state_subdir(s->state, "locks");
        if (r < 0)
                return gpuh_error(reterr, r, "cannot use state directory '%s': %s", dir, strerror(-r));
        return 0;
}

/* Every domain of the host passes through the hooks; those that never had a GPU cost a stat(2)
 * or two, and leave nothing behind. */
bool sc_has_state(const struct gpuh_sc_opts *o, const char *domain)
{
        char path[PATH_MAX], enc[GPUH_DOMNAME_ENC_SIZE];

        /* the files are named by the encoded name (domname.h); whether the directories may be
         * used is checked when they are opened (sc_open()) */
        if (gpuh_domname_encode(domain, enc) < 0)
                return false;
        snprintf(path, sizeof(path), "%s/journal/%s.journal", o->state_dir, enc);
        if (access(path, F_OK) == 0)
                return true;
        snprintf(path, sizeof(path), "%s/reservations/%s.json", o->state_dir, enc);
        return access(path, F_OK) == 0;
}

/*
 * One syslog record per step, its message a JSON object (docs/state-change.md, "Logging"):
 * @ev, the domain, @device, @old and @new (each left out when NULL), the time since @t0 (µs of
 * gpuh_mono_us(); 0 leaves it out), errno and, on failure, @err. Nothing in a dry run: nothing
 * happens.
 */
void sc_event(struct sc *s, const char *ev, const char *device, const char *old, const char *new, int64_t t0, int r,
              const char *err)
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
                snprintf(ms, sizeof(ms), "%.3f", (double) (gpuh_mono_us() - t0) / 1000.0);
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
void sc_prefix_vm(const char *vm, char **reterr)
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

/* A dry run's plan: {"domain", "operation", "steps": []}; "error" is added by sc_plan_finish(). */
json_object *sc_plan_new(const char *domain, const char *op)
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
void sc_plan_finish(struct sc *s, int r, char *const *reterr)
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

/* ---- locks ----------------------------------------------------------------------------- */

/* The host lock, around reservation and journal reads and writes only (none in a dry run). */
int sc_host_lock(struct sc *s, char **reterr)
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

void sc_host_unlock(struct sc *s)
{
        if (!s->o->dry_run && s->state)
                gpuh_state_unlock(s->state);
}

/* locks/vm-STEM: the domain's lock file, named by its encoded name (domname.h). */
char *sc_vm_lock_name(const char *vm, char buf[static 3 + GPUH_DOMNAME_ENC_SIZE])
{
        memcpy(buf, "vm-", 3);
        if (gpuh_domname_encode(vm, buf + 3) < 0)
                buf[0] = '\0';         /* not a name: gpuh_lock_take() refuses "" */
        return buf;
}

/* The domain's lock, first of all (none in a dry run). Returns 0; -ETIMEDOUT; -errno. */
int sc_vm_lock(struct sc *s, int timeout_ms, char **reterr)
{
        char name[3 + GPUH_DOMNAME_ENC_SIZE];

        if (s->o->dry_run)
                return 0;
        sc_vm_lock_name(s->vm, name);
        s->vm_lock = gpuh_lock_take(s->lockdir, name, timeout_ms);
        if (s->vm_lock < 0) {
                int r = s->vm_lock;
                s->vm_lock = -1;
                return gpuh_error(reterr, r, "%s: cannot take its lock: %s", s->vm,
                                  r == -ETIMEDOUT ? "another hook is working on it" : strerror(-r));
        }
        return 0;
}

/* The device locks gathered in @s->locks, in sorted order. Returns 0; -ETIMEDOUT; -errno. */
int sc_take_locks(struct sc *s, char **reterr)
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

/* "pci-BDF": a function's key, as journal entries and lock files name it. */
char *sc_pci_key(const struct gpuh_pci_addr *a, char buf[static SC_KEY_MAX])
{
        char n[GPUH_PCI_ADDR_MAX];

        snprintf(buf, SC_KEY_MAX, "pci-%s", gpuh_pci_addr_format(a, n));
        return buf;
}
