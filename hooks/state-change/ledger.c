/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ledger.c: what the state-change hook knows of who holds what: the domains' journals (loaded,
 * appended to, taken over from a domain that stopped without its release finishing, handed
 * over), their reservations, the quarantine, and the checks made of them before the first
 * change (docs/state-change.md, "prepare begin" steps 2 to 5, "Occupancy").
 *
 * An entry enters a journal only through ledger_append(): appended and fsync()ed before the
 * change it announces, or, in a dry run, listed as a step of the plan and kept in memory, so
 * that the rest of the run decides as the real one would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "log.h"
#include "mdev.h"
#include "occupancy.h"
#include "quarantine.h"
#include "sc.h"
#include "sysfs.h"

/**
 * sc_load_journals:
 * @s: the run (its @vm, or NULL when every journal is another's)
 * @uuid: the domain's UUID, for a journal made new
 * @reterr: on failure, one line naming the journal
 *
 * The other domains' journals into @s->others, and our own into @s->j (made empty when there
 * is none). A journal that cannot be attributed or read fails the run: it may name our devices.
 *
 * Returns: 0; -EBADMSG (an unusable or unattributable journal); -ENOMEM; -errno of the listing.
 */
int sc_load_journals(struct sc *s, const char *uuid, char **reterr)
{
        _cleanup_strv_free_ char **names = NULL;
        struct gpuh_warnings w = { 0 };
        int n, r;

        sc_others_free(s);
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

/* The other domain's journal that names @key, or NULL. */
struct gpuh_journal *sc_other_with(struct sc *s, const char *key)
{
        for (size_t i = 0; i < s->n_others; i++)
                if (gpuh_journal_find(s->others[i], key, -1) >= 0)
                        return s->others[i];
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

/* ---- the journal's one way in ------------------------------------------------------------ */

/* A dry run's journal lives in memory: @e added as gpuh_journal_append() would. */
static int journal_add(struct gpuh_journal *j, const struct gpuh_jentry *e)
{
        struct gpuh_jentry *ne = reallocarray(j->e, j->n + 1, sizeof(*ne));

        if (!ne)
                return -ENOMEM;
        j->e = ne;
        ne[j->n] = *e;
        ne[j->n].seq = j->n > 0 ? ne[j->n - 1].seq + 1 : 1;
        j->n++;
        return 0;
}

/*
 * Append @e to @j: to its file, fsync()ed (the caller holds the host lock); in a dry run a
 * step of the plan, {"step": "journal", "entry": ..., @how: @whom} (@how "taken_over_from" or
 * "moved_to" when the entry changes domain, else NULL), and to @j in memory.
 */
static int ledger_append(struct sc *s, struct gpuh_journal *j, struct gpuh_jentry *e, const char *how,
                         const char *whom)
{
        json_object *st;

        if (!s->o->dry_run)
                return gpuh_journal_append(s->jfd, j, e);
        st = json_object_new_object();
        if (st) {
                json_object_object_add(st, "step", json_object_new_string("journal"));
                json_object_object_add(st, "entry", gpuh_jentry_json(e));
                if (how)
                        json_object_object_add(st, how, json_object_new_string(whom));
        }
        gpuh_change_step(&s->ch, st);
        return journal_add(j, e);
}

/* Write @j as it now is (entries dropped); a dry run writes nothing. */
static int ledger_save(struct sc *s, struct gpuh_journal *j)
{
        return s->o->dry_run ? 0 : gpuh_journal_save(s->jfd, j);
}

/* The entries of @stale for @key move into ours, in their order: they hold the device's state
 * from before that domain, which is what our release must restore. Read from @stale's file as
 * it is now (the caller holds the host lock). */
static int take_over(struct sc *s, struct gpuh_journal *stale, const char *key)
{
        _cleanup_(gpuh_journal_freep) struct gpuh_journal *fresh = NULL;
        char k2[SC_KEY_MAX];
        int r;

        r = gpuh_journal_load(s->jfd, stale->domain, &fresh);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        for (size_t i = 0; i < fresh->n && r == 0; i++) {
                struct gpuh_jentry copy = fresh->e[i];
                if (streq(gpuh_jentry_key(&fresh->e[i], k2, sizeof(k2)), key))
                        r = ledger_append(s, s->j, &copy, "taken_over_from", stale->domain);
        }
        for (ssize_t i = (ssize_t) fresh->n - 1; r == 0 && i >= 0; i--)
                if (streq(gpuh_jentry_key(&fresh->e[i], k2, sizeof(k2)), key))
                        gpuh_journal_drop(fresh, (size_t) i);
        if (r == 0)
                r = ledger_save(s, fresh);
        sc_event(s, "takeover", strchr(key, '-') + 1, stale->domain, s->vm, 0, r, NULL);
        /* our copy of it follows */
        for (ssize_t i = (ssize_t) stale->n - 1; r == 0 && i >= 0; i--)
                if (streq(gpuh_jentry_key(&stale->e[i], k2, sizeof(k2)), key))
                        gpuh_journal_drop(stale, (size_t) i);
        return r;
}

/*
 * Journal @e (its old values as read now) before the change it announces (@change), or only
 * take over what a stale journal says of its device. When our journal already has an entry of
 * that kind for the device (an earlier, unfinished prepare), that one holds the state to
 * restore and nothing is added. When a stale journal of another domain names the device, its
 * entries for it move into ours first (take_over()). One device, one journal.
 */
static int journal_entry(struct sc *s, struct gpuh_jentry *e, bool change, char **reterr)
{
        char key[SC_KEY_MAX];
        struct gpuh_journal *stale;
        int r = 0;

        gpuh_jentry_key(e, key, sizeof(key));
        if (gpuh_journal_find(s->j, key, (int) e->op) >= 0)
                return 0;
        stale = sc_other_with(s, key);
        if (!stale && !change)
                return 0;
        r = sc_host_lock(s, reterr);
        if (r < 0)
                return r;
        if (stale)
                r = take_over(s, stale, key);
        if (r == 0 && change && gpuh_journal_find(s->j, key, (int) e->op) < 0)
                r = ledger_append(s, s->j, e, NULL, NULL);
        sc_host_unlock(s);
        if (r < 0)
                return gpuh_error(reterr, -EIO, "%s: cannot write its journal in '%s': %s", s->vm, s->jdir, strerror(-r));
        return 0;
}

/**
 * sc_journal_change:
 * @s: the run
 * @e: the change about to be made, with the device's state before it
 * @reterr: on failure, one line naming the domain and the journal
 *
 * Journals @e before the change is made (journal_entry()).
 *
 * Returns: 0; -ETIMEDOUT (the host lock); -EIO (the journal cannot be written).
 */
int sc_journal_change(struct sc *s, struct gpuh_jentry *e, char **reterr)
{
        return journal_entry(s, e, true, reterr);
}

/**
 * sc_journal_takeover:
 * @s, @e, @reterr: as sc_journal_change(), @e's device needing no change
 *
 * Nothing to change on the device, but a stale journal may name it: that is taken over, so
 * that our release restores the state from before that domain, and its late release leaves
 * the device alone.
 *
 * Returns: as sc_journal_change().
 */
int sc_journal_takeover(struct sc *s, struct gpuh_jentry *e, char **reterr)
{
        return journal_entry(s, e, false, reterr);
}

/**
 * sc_hand_over:
 * @s: the run (the host lock not held)
 * @domain: another domain, whose journal names a device @e's undo would change
 * @e: our entry, which becomes theirs
 * @what: what moves, for the message ("the VFs of 0000:af:00.0", "MIG mode of ...")
 * @device: the device, for the event
 * @reterr: on failure, one line naming the domain, @what and @domain
 *
 * sc_journal_hand_over() under the host lock, with its event.
 *
 * Returns: 1 (the entry moved); -ETIMEDOUT (the host lock); -errno of the journals.
 */
int sc_hand_over(struct sc *s, const char *domain, const struct gpuh_jentry *e, const char *what, const char *device,
                 char **reterr)
{
        int r = sc_host_lock(s, reterr);

        if (r < 0)
                return r;
        r = sc_journal_hand_over(s, domain, e);
        sc_host_unlock(s);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot hand %s over to %s: %s", s->vm, what, domain, strerror(-r));
        sc_event(s, "takeover", device, s->vm, domain, 0, 0, NULL);
        return 1;
}

/**
 * sc_journal_hand_over:
 * @s: the run (the caller holds the host lock)
 * @domain: another domain, whose journal names a device @e's undo would change
 * @e: our entry, which becomes theirs
 *
 * Returns: 0; -ENOENT (@domain has no journal any more); -errno of the journal.
 */
int sc_journal_hand_over(struct sc *s, const char *domain, const struct gpuh_jentry *e)
{
        _cleanup_(gpuh_journal_freep) struct gpuh_journal *j = NULL;
        struct gpuh_jentry moved = *e;
        int r;

        r = gpuh_journal_load(s->jfd, domain, &j);
        if (r == 0)
                r = ledger_append(s, j, &moved, "moved_to", domain);
        return r;
}

/**
 * sc_commit_journal:
 * @s: the run, its journal replayed
 * @mode: which reservation an emptied journal frees
 * @reterr: on failure, one line naming the journal
 *
 * Writes @s->j back (or removes it when empty); then, when it is empty, frees the reservation
 * as @mode says. A dry run writes nothing.
 *
 * Returns: 0; -ETIMEDOUT (the host lock); -EIO.
 */
int sc_commit_journal(struct sc *s, enum sc_free_mode mode, char **reterr)
{
        int r;

        if (s->o->dry_run)
                return 0;
        r = sc_host_lock(s, reterr);
        if (r < 0)
                return r;
        r = gpuh_journal_save(s->jfd, s->j);
        if (r == 0 && s->j->n == 0 && s->state) {
                struct gpuh_reservation res;
                int k = gpuh_reservation_load(s->state, s->vm, &res);

                if (k == 0 && (mode == SC_FREE_ALWAYS || (res.state && streq(res.state, "running"))))
                        gpuh_reservation_remove(s->state, s->vm);
                if (k == 0)
                        gpuh_reservation_clear(&res);
        }
        sc_host_unlock(s);
        if (r < 0)
                return gpuh_error(reterr, -EIO, "%s: cannot write its journal in '%s': %s", s->vm, s->jdir, strerror(-r));
        return 0;
}

/**
 * sc_quarantine:
 * @s: the run
 * @a: a function that did not come back to a state the journal vouches for
 * @why: the reason, for the file and the event
 *
 * Keeps @a from every domain until an operator clears it (STATE/quarantine/BDF.json,
 * docs/state-change.md "Late writes and the quarantine"). A dry run writes nothing.
 */
void sc_quarantine(struct sc *s, const struct gpuh_pci_addr *a, const char *why)
{
        char name[GPUH_PCI_ADDR_MAX];
        int r;

        gpuh_pci_addr_format(a, name);
        if (s->o->dry_run || !s->state)
                return;
        r = gpuh_state_subdir(s->state, GPUH_QUARANTINE_DIR);
        if (r >= 0)
                r = gpuh_quarantine_add(r, a, s->vm, why, (int64_t) time(NULL));
        sc_event(s, "quarantine", name, NULL, NULL, 0, r < 0 ? r : -EIO, why);
        if (r < 0)
                gpuh_log(LOG_ERR, "%s: %s: cannot quarantine it (%s): %s", s->vm, name, strerror(-r), why);
}

/* ---- the checks before the first change -------------------------------------------------- */

static bool same_device(const struct gpuh_alloc *x, const struct gpuh_alloc *y)
{
        if (x->kind != y->kind)
                return false;
        return x->kind == GPUH_ALLOC_MDEV ? streq(x->uuid, y->uuid) : gpuh_pci_addr_cmp(&x->addr, &y->addr) == 0;
}

static const char *alloc_name(const struct gpuh_alloc *a, char buf[static GPUH_PCI_ADDR_MAX])
{
        return a->kind == GPUH_ALLOC_MDEV ? a->uuid : gpuh_pci_addr_format(&a->addr, buf);
}

/* The domain's live reservation @own must be this domain's and hold every record device. */
static int check_own_reservation(const struct gpuh_domxml *d, const struct gpuh_reservation *own, char **reterr)
{
        char a[GPUH_PCI_ADDR_MAX];

        if (own->uuid && d->uuid && !streq(own->uuid, d->uuid))
                return gpuh_error(reterr, -EBUSY, "%s: its reservation belongs to another domain of that name (uuid %s, "
                                  "this one is %s)", d->name, own->uuid, d->uuid);
        for (size_t i = 0; i < d->n_record; i++) {
                bool held = false;
                for (size_t k = 0; k < own->n_devices && !held; k++)
                        held = same_device(&own->devices[k], &d->record[i]);
                if (!held)
                        return gpuh_error(reterr, -EBUSY, "%s: its reservation does not hold %s, which its allocation "
                                          "record names", d->name, alloc_name(&d->record[i], a));
        }
        return 0;
}

/* No reservation, or an expired one: reserve the record's devices again, unless another
 * domain's live reservation holds one. A dry run writes nothing. */
static int reserve_again(struct sc *s, const struct gpuh_domxml *d, const struct gpuh_reservation *all, size_t n,
                         const struct gpuh_reservation *own, int64_t now, char **reterr)
{
        struct gpuh_reservation rv = {
                .domain = d->name, .uuid = d->uuid, .state = (char *) "reserved", .created = now,
                .expires = now + s->cfg->reservation_ttl_s, .devices = d->record, .n_devices = d->n_record,
        };
        char a[GPUH_PCI_ADDR_MAX];
        int r;

        for (size_t i = 0; i < n; i++) {
                if (&all[i] == own || !gpuh_reservation_live(&all[i], now))
                        continue;
                for (size_t k = 0; k < d->n_record; k++)
                        if (gpuh_reservation_holds(&all[i], &d->record[k]))
                                return gpuh_error(reterr, -EBUSY, "%s: %s is reserved for %s", d->name,
                                                  alloc_name(&d->record[k], a), all[i].domain);
        }
        if (s->o->dry_run)
                return 0;
        r = gpuh_reservation_write(s->state, &rv);
        if (r < 0)
                return gpuh_error(reterr, -EIO, "%s: cannot write its reservation: %s", d->name, strerror(-r));
        gpuh_log(LOG_INFO, "%s: reserved again from its allocation record", d->name);
        return 0;
}

/**
 * sc_check_reservation:
 * @s: the run (the caller holds the host lock)
 * @d: the domain
 * @reterr: on failure, one line naming the domain and the device
 *
 * The reservation must be this domain's and hold every record device; a missing or expired
 * one is made again when no other domain's live reservation holds the devices.
 *
 * Returns: 0; -EBUSY; -EIO (the reservation cannot be written); -errno of reading them.
 */
int sc_check_reservation(struct sc *s, const struct gpuh_domxml *d, char **reterr)
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
        if (own && gpuh_reservation_live(own, now))
                r = check_own_reservation(d, own, reterr);
        else
                r = reserve_again(s, d, all, n, own, now, reterr);
        gpuh_reservations_free(all, n);
        return r;
}

/**
 * sc_check_journals:
 * @s: the run, its device locks gathered and its journals loaded
 * @reterr: on failure, one line naming the device and the domain
 *
 * Another domain's journal naming a device, while that domain's reservation is live: in use.
 *
 * Returns: 0; -EBUSY.
 */
int sc_check_journals(struct sc *s, char **reterr)
{
        for (size_t i = 0; i < s->locks.n; i++) {
                struct gpuh_journal *other = sc_other_with(s, s->locks.names[i]);

                if (!other || strncmp(s->locks.names[i], "vm-", 3) == 0 || !gpuh_jkey_claims(s->locks.names[i]))
                        continue;
                if (reservation_live(s, other->domain))
                        return gpuh_error(reterr, -EBUSY, "%s: %s is in use by %s (its journal)", s->vm,
                                          strchr(s->locks.names[i], '-') + 1, other->domain);
        }
        return 0;
}

/* What other domains claim, for the occupancy model: reservations, journals, the quarantine. */
struct claims {
        struct gpuh_reservation *res;
        size_t n_res;
        struct gpuh_quarantined *q;
        size_t n_q;
};

static void claims_clear(struct claims *c)
{
        gpuh_reservations_free(c->res, c->n_res);
        free(c->q);
        *c = (struct claims) { 0 };
}

static int load_claims(struct sc *s, const struct gpuh_domxml *d, struct claims *c, char **reterr)
{
        struct gpuh_warnings w = { 0 };
        int r;

        r = sc_host_lock(s, reterr);
        if (r < 0)
                return r;
        if (s->state)
                r = gpuh_reservations_load(s->state, &c->res, &c->n_res, &w);
        if (r == 0 && !s->j)
                r = sc_load_journals(s, d->uuid, reterr);
        sc_host_unlock(s);
        if (r < 0) {
                if (!*reterr)
                        gpuh_error(reterr, r, "%s: %s", d->name, w.n ? w.v[w.n - 1] : strerror(-r));
                gpuh_warnings_clear(&w);
                return r;
        }
        gpuh_warnings_clear(&w);
        r = gpuh_quarantine_load(s->state ? gpuh_state_dir(s->state) : NULL, &c->q, &c->n_q);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read the quarantine in '%s': %s", d->name,
                                  s->state ? gpuh_state_dir(s->state) : "", strerror(-r));
        return 0;
}

/* Why GPU @a cannot be passed through whole now: a VF of it in use, or an mdev on it
 * (unbinding the PF destroys them); NULL when nothing is. */
static const char *whole_busy(struct sc *s, const struct gpuh_pci_addr *a)
{
        _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
        struct gpuh_mdev *md = NULL;
        const char *busy = NULL;
        int nv, nm;

        nv = sc_pf_vfs(s, a, &vfs);
        if (nv > 0)
                busy = sc_vf_in_use(s, vfs, nv);
        nm = gpuh_mdev_list(s->sysfs->root_fd, NULL, &md);
        for (int k = 0; k < nm && !busy; k++)
                if (gpuh_pci_addr_cmp(&md[k].parent, a) == 0)
                        busy = "it carries mdevs";
        gpuh_mdevs_free(md, nm > 0 ? (size_t) nm : 0);
        return busy;
}

/* One hostdev against the claims; its /dev/vfio node, when it has one, joins @nodes. */
static int check_hostdev(struct sc *s, const struct gpuh_domxml *d, const struct gpuh_occupancy *occ,
                         const struct gpuh_dom_hostdev *h, char ***nodes, char **reterr)
{
        struct gpuh_pci_addr pf;
        char why[768], a[GPUH_PCI_ADDR_MAX];
        enum sc_gpu_role role;
        const char *busy;

        if (h->is_mdev) {
                /* its parent is shared with other mdevs: only its quarantine counts */
                struct gpuh_occupancy qo = { .quarantined = occ->quarantined, .n_quarantined = occ->n_quarantined };
                bool held = gpuh_occupancy_mdev(occ, h->uuid, why, sizeof(why)) ||
                            (sc_mdev_parent(s, h->uuid, &pf) == 0 && gpuh_occupancy_pci(&qo, &pf, NULL, why, sizeof(why)));
                if (held)
                        return gpuh_error(reterr, -EBUSY, "%s: mdev %s: %s", d->name, h->uuid, why);
                return sc_add_vfio_node(s, sc_mdev_group(s, h->uuid), nodes);
        }
        if (sc_agent_split(s, h, why, sizeof(why)) > 0)
                return gpuh_error(reterr, -ENODEV, "%s: %s", d->name, why);
        role = sc_gpu_role(s, &h->addr, &pf);
        if (role == SC_ROLE_NONE)
                return 0;
        gpuh_pci_addr_format(&h->addr, a);
        if (gpuh_occupancy_pci(occ, &h->addr, role == SC_ROLE_VF ? &pf : NULL, why, sizeof(why)) ||
            (role == SC_ROLE_COMPANION && gpuh_occupancy_pci(occ, &pf, NULL, why, sizeof(why))))
                return gpuh_error(reterr, -EBUSY, "%s: %s: %s", d->name, a, why);
        if (!d->has_record && role == SC_ROLE_GPU && (busy = whole_busy(s, &h->addr)))
                /* CloudStack's whole GPU, which libvirt would unbind (a record's: verify_whole()) */
                return gpuh_error(reterr, -EBUSY, "%s: %s cannot be passed through whole: %s", d->name, a, busy);
        return sc_add_vfio_node(s, sc_pci_exists(s, &h->addr) ? sc_pci_group(s, &h->addr) : -1, nodes);
}

/* A process holding one of @nodes (another domain's QEMU) refuses the start. */
static int check_vfio_held(struct sc *s, const struct gpuh_domxml *d, char *const *nodes, char **reterr)
{
        _cleanup_free_ struct gpuh_holder *h = NULL;
        _cleanup_free_ char *desc = NULL;
        size_t nh = 0;
        int r;

        r = gpuh_holders_find(s->proc_root, nodes, &h, &nh);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot look for processes using the devices in '%s': %s", d->name,
                                  s->proc_root, strerror(-r));
        if (nh == 0)
                return 0;
        desc = gpuh_holders_describe(h, nh);
        return gpuh_error(reterr, -EBUSY, "%s: %s is in use (another domain's QEMU?): %s", d->name, h[0].node,
                          desc ? desc : "");
}

/**
 * sc_check_hostdevs:
 * @s: the run (sc_open())
 * @d: the domain
 * @reterr: on failure, one line naming the domain, the device and its holder
 *
 * Every GPU hostdev of the document, with or without our record, against the claims of other
 * domains (reservations, journals, the quarantine: the occupancy model, occupancy.h) and
 * against processes holding its /dev/vfio group (another domain's QEMU): libvirt binds
 * managed='yes' hostdevs itself, so this is the last check before a device is given twice.
 *
 * Returns: 0; -EBUSY; -ENOMEM; -errno of reading the state or /proc.
 */
int sc_check_hostdevs(struct sc *s, const struct gpuh_domxml *d, char **reterr)
{
        _cleanup_strv_free_ char **nodes = NULL;
        struct claims c = { 0 };
        int r;

        r = load_claims(s, d, &c, reterr);
        if (r == 0) {
                struct gpuh_occupancy occ = {
                        .self = d->name, .now = (int64_t) time(NULL), .res = c.res, .n_res = c.n_res,
                        .journals = s->others, .n_journals = s->n_others, .quarantined = c.q, .n_quarantined = c.n_q,
                };

                for (size_t i = 0; i < d->n_hostdevs && r == 0; i++)
                        r = check_hostdev(s, d, &occ, &d->hostdevs[i], &nodes, reterr);
        }
        if (r == 0 && nodes)
                r = check_vfio_held(s, d, nodes, reterr);
        claims_clear(&c);
        return r;
}

/* A GPU passed through whole: a GPU, its companions functions of its card, none of its VFs or
 * mdevs in use (whole_busy()). */
static int verify_whole(struct sc *s, const struct gpuh_domxml *d, const struct gpuh_alloc *a, char **reterr)
{
        char n[GPUH_PCI_ADDR_MAX], m[GPUH_PCI_ADDR_MAX];
        struct gpuh_pci_addr pf;
        const char *busy;

        gpuh_pci_addr_format(&a->addr, n);
        if (!sc_pci_exists(s, &a->addr))
                return gpuh_error(reterr, -ENODEV, "%s: %s: no such PCI device", d->name, n);
        if (sc_gpu_role(s, &a->addr, &pf) != SC_ROLE_GPU)
                return gpuh_error(reterr, -EPERM, "%s: its allocation record names %s, which is not a GPU: refused",
                                  d->name, n);
        for (size_t c = 0; c < a->n_companions; c++)
                if (!gpuh_pci_addr_same_slot(&a->companions[c], &a->addr) ||
                    gpuh_pci_addr_cmp(&a->companions[c], &a->addr) == 0)
                        return gpuh_error(reterr, -EPERM, "%s: its allocation record names %s as a companion of %s, "
                                          "which is not another function of its card: refused", d->name,
                                          gpuh_pci_addr_format(&a->companions[c], m), n);
        busy = whole_busy(s, &a->addr);
        if (busy)
                return gpuh_error(reterr, -EBUSY, "%s: %s cannot be passed through whole: %s", d->name, n, busy);
        return 0;
}

/**
 * sc_verify_record:
 * @s: the run (sc_open())
 * @d: the domain, with its allocation record
 * @reterr: on failure, one line naming the domain and the device
 *
 * An allocation record is a claim, never an authority: every device it names must be one the
 * transformer may hand out (a GPU, companions of its slot, a VF of a GPU, an mdev of a GPU or
 * of such a VF), consistent with its relatives (verify_whole()).
 *
 * Returns: 0; -EPERM (not a device the transformer may hand out); -EBUSY; -ENODEV; -EINVAL.
 */
int sc_verify_record(struct sc *s, const struct gpuh_domxml *d, char **reterr)
{
        for (size_t i = 0; i < d->n_record; i++) {
                const struct gpuh_alloc *a = &d->record[i];
                char n[GPUH_PCI_ADDR_MAX], m[GPUH_PCI_ADDR_MAX];
                struct gpuh_pci_addr pf;
                enum sc_gpu_role role;
                int r;

                switch (a->kind) {
                case GPUH_ALLOC_PCI:
                        if ((r = verify_whole(s, d, a, reterr)) < 0)
                                return r;
                        break;
                case GPUH_ALLOC_VF:
                case GPUH_ALLOC_VENDOR_VGPU:
                        gpuh_pci_addr_format(&a->addr, n);
                        role = sc_gpu_role(s, &a->addr, &pf);
                        if (role != SC_ROLE_VF || gpuh_pci_addr_cmp(&pf, &a->parent) != 0)
                                return gpuh_error(reterr, -EPERM, "%s: its allocation record names %s as a VF of GPU %s, "
                                                  "which it is not: refused", d->name, n,
                                                  gpuh_pci_addr_format(&a->parent, m));
                        break;
                case GPUH_ALLOC_MDEV:
                        gpuh_pci_addr_format(&a->parent, n);
                        role = sc_gpu_role(s, &a->parent, &pf);
                        if (role != SC_ROLE_GPU && role != SC_ROLE_VF)
                                return gpuh_error(reterr, -EPERM, "%s: its allocation record names mdev %s on %s, which is "
                                                  "not a GPU or a VF of one: refused", d->name, a->uuid, n);
                        break;
                default:
                        return -EINVAL;
                }
        }
        return 0;
}
