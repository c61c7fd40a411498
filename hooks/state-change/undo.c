/* SPDX-License-Identifier: Apache-2.0 */
/*
 * undo.c: putting a device back as a journal entry recorded it, one function per journal
 * operation, and replaying a domain's journal in reverse (docs/state-change.md, "release end").
 *
 * Every undo is idempotent: a device already as recorded (or gone) is left alone. Each returns
 * 0 when the device is as recorded (or gone, or left by policy), 1 when the entry moved to
 * another journal, < 0 (with @reterr) when the entry must stay for a later try.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "mdev.h"
#include "sc.h"
#include "vendor_vgpu.h"
#include "vfio.h"

/* A process (a QEMU) still holds the group's /dev/vfio node: the entry stays. */
static int still_held(struct sc *s, int group, const char *what, const char *name, const char *not_done,
                      char **reterr)
{
        _cleanup_free_ char *desc = NULL;
        int r = sc_vfio_holders(s, group, &desc);

        if (r <= 0)
                return 0;
        return gpuh_error(reterr, -EBUSY, "%s: %s%s: still in use, %s: %s", s->vm, what, name, not_done, desc);
}

/* driver: back on the recorded driver, driver_override as it was (gpuh_pci_restore()); left
 * on vfio-pci when the function's vendor:device is in state_change.keep_vfio. */
static int undo_driver(struct sc *s, const struct gpuh_jentry *e, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX];
        int64_t t0 = gpuh_mono_us();
        uint16_t ven, dev;
        int r;

        gpuh_pci_addr_format(&e->dev, name);
        if (!sc_pci_exists(s, &e->dev))
                return 0;       /* gone (a VF disabled meanwhile): nothing left to restore */
        if (streq(e->to, GPUH_VFIO_DRIVER) && sc_read_ids(s, &e->dev, &ven, &dev) == 0 &&
            gpuh_config_keep_vfio(s->cfg, ven, dev)) {
                sc_event(s, "keep", name, e->to, e->to, 0, 0, NULL);
                return 0;
        }
        r = still_held(s, sc_pci_group(s, &e->dev), "", name, "not unbound", reterr);
        if (r < 0) {
                sc_event(s, "unbind", name, e->to, e->driver, t0, r, *reterr);
                return r;
        }
        if (sc_pci_dead(s, &e->dev)) {
                r = gpuh_error(reterr, -EIO, "%s: %s: config space reads 0xffff (the function does not answer): "
                               "left as it is and quarantined", s->vm, name);
                sc_quarantine(s, &e->dev, "config space reads 0xffff: the function does not answer");
                sc_event(s, "unbind", name, e->to, e->driver, t0, r, *reterr);
                return r;
        }
        r = gpuh_pci_restore(&s->ch, &e->dev, e->driver, e->override, reterr);
        if (r == -ENODEV && e->driver[0]) {
                char drv[64] = "";
                /* it did not come back on its driver: no driver at all is a GPU nobody can use */
                if (gpuh_pci_driver(&s->ch, &e->dev, drv, sizeof(drv)) == 0 && !drv[0]) {
                        char why[160];
                        snprintf(why, sizeof(why), "no driver bound after restoring %s", e->driver);
                        sc_quarantine(s, &e->dev, why);
                }
        }
        sc_event(s, "unbind", name, e->to, e->driver[0] ? e->driver : "none", t0, r, reterr ? *reterr : NULL);
        return r;
}

/* mdev (created): removed. NVIDIA's driver removes its mdevs itself once QEMU let go, and
 * answers EBUSY while it does: removed at once, EBUSY retried until the grace deadline. */
static int undo_mdev(struct sc *s, const struct gpuh_jentry *e, char **reterr)
{
        int64_t t0 = gpuh_mono_us();
        char drv[64] = "";
        int r;

        if (!sc_mdev_exists(s, e->uuid))
                return 0;
        r = still_held(s, sc_mdev_group(s, e->uuid), "mdev ", e->uuid, "not removed", reterr);
        if (r < 0) {
                sc_event(s, "mdev-remove", e->uuid, e->mdev_type, NULL, t0, r, *reterr);
                return r;
        }
        if (gpuh_pci_driver(&s->ch, &e->dev, drv, sizeof(drv)) == 0 && streq(drv, "nvidia"))
                r = gpuh_mdev_remove_busy(&s->ch, e->uuid, s->cfg->nvidia_mdev_grace_ms, reterr);
        else
                r = gpuh_mdev_remove(&s->ch, e->uuid, reterr);
        sc_event(s, "mdev-remove", e->uuid, e->mdev_type, NULL, t0, r, reterr ? *reterr : NULL);
        return r;
}

/* vgpu-type (set): cleared, then the prior type set again when there was one. */
static int undo_vgpu(struct sc *s, const struct gpuh_jentry *e, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX], o[16], n[16];
        int64_t t0 = gpuh_mono_us();
        int r;

        gpuh_pci_addr_format(&e->dev, name);
        if (!sc_pci_exists(s, &e->dev))
                return 0;
        r = still_held(s, sc_pci_group(s, &e->dev), "", name, "vGPU type not cleared", reterr);
        if (r < 0)
                return r;
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
        sc_event(s, "vgpu-clear", name, o, n, t0, r, reterr ? *reterr : NULL);
        return r;
}

/* Another domain's journal names a VF of the PF: the VFs are its to disable, and our entry
 * moves to its journal. Returns 1 when it did, 0 when no journal names one. */
static int hand_over_vfs(struct sc *s, const struct gpuh_jentry *e, const struct gpuh_pci_addr *vfs, int n,
                         char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX], what[64];

        gpuh_pci_addr_format(&e->dev, name);
        for (int i = 0; i < n; i++) {
                char key[SC_KEY_MAX];
                struct gpuh_journal *other = sc_other_with(s, sc_pci_key(&vfs[i], key));

                if (!other)
                        continue;
                snprintf(what, sizeof(what), "the VFs of %s", name);
                return sc_hand_over(s, other->domain, e, what, name, reterr);
        }
        return 0;
}

/* sriov (enabled): sriov_numvfs back to its recorded value, once no other journal names a VF
 * and none is in use (not ours to break: then left enabled). */
static int undo_sriov(struct sc *s, const struct gpuh_jentry *e, char **reterr)
{
        _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
        char name[GPUH_PCI_ADDR_MAX], v[16], was[16];
        int64_t t0 = gpuh_mono_us();
        int n = sc_pf_vfs(s, &e->dev, &vfs), total, num, r;
        const char *busy;
        uint64_t cur;

        gpuh_pci_addr_format(&e->dev, name);
        if (sc_sriov_numvfs(s, &e->dev, &total, &num) < 0 || (unsigned) num == e->old)
                return 0;
        r = hand_over_vfs(s, e, vfs, n, reterr);
        if (r != 0)
                return r;
        if ((busy = sc_vf_in_use(s, vfs, n > 0 ? n : 0))) {
                /* not ours to break: left enabled */
                sc_event(s, "sriov-disable", name, NULL, NULL, 0, -EBUSY, busy);
                gpuh_log(LOG_WARNING, "%s: %s: VFs left enabled: %s", s->vm, name, busy);
                return 0;
        }
        r = sc_sriov_set(s, &e->dev, e->old, true, &cur);
        if (r < 0)
                gpuh_error(reterr, r, "%s: %s: setting sriov_numvfs back to %u: %s", s->vm, name, e->old,
                           r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        snprintf(v, sizeof(v), "%u", e->old);
        snprintf(was, sizeof(was), "%u", e->to_n);
        sc_event(s, "sriov-disable", name, was, v, t0, r, reterr ? *reterr : NULL);
        return r;
}

static int (*const undo_op[_GPUH_JOP_MAX])(struct sc *s, const struct gpuh_jentry *e, char **reterr) = {
        [GPUH_JOP_DRIVER] = undo_driver,
        [GPUH_JOP_MDEV] = undo_mdev,
        [GPUH_JOP_VGPU] = undo_vgpu,
        [GPUH_JOP_SRIOV] = undo_sriov,
        [GPUH_JOP_GI] = sc_undo_gi,
        [GPUH_JOP_MIG] = sc_undo_mig,
};

/**
 * sc_undo:
 * @s: the run, its device locks held
 * @e: a journal entry
 * @reterr: when it fails, one line naming the domain, the device and the cause
 *
 * Puts @e's device back as @e recorded it (the table above, docs/state-change.md).
 *
 * Returns: 0 (as recorded, gone, or left by policy); 1 (the entry moved to another journal);
 *          -EBUSY (still held by a process); -EIO (the function does not answer); -ETIMEDOUT;
 *          -ENODEV (it came back on another driver); -errno of the writes.
 */
int sc_undo(struct sc *s, const struct gpuh_jentry *e, char **reterr)
{
        if ((unsigned) e->op >= ARRAY_SIZE(undo_op) || !undo_op[e->op])
                return 0;
        return undo_op[e->op](s, e, reterr);
}

/* Undo @e; a write of it that missed its deadline is waited for (one more deadline), and the
 * undo tried again from what sysfs then shows. *@stuck: a late write is still in flight. */
static int undo_settled(struct sc *s, const struct gpuh_jentry *e, const char *key, bool *stuck, char **err)
{
        int r;

        if (*stuck && gpuh_change_late(&s->ch, key))
                return -ETIMEDOUT;
        r = sc_undo(s, e, err);
        if (r < 0 && gpuh_change_late(&s->ch, key)) {
                /* the undo's own write missed its deadline: wait for it to finish, then read the
                 * truth and try again */
                *stuck = gpuh_change_settle(&s->ch, s->cfg->write_timeout_ms) < 0;
                if (*stuck)
                        return -ETIMEDOUT;
                free(*err);
                *err = NULL;
                r = sc_undo(s, e, err);
        }
        return r;
}

/* A device whose write is still in flight after the second deadline: kept and quarantined. */
static void quarantine_late(struct sc *s, const struct gpuh_jentry *e, char **err)
{
        char name[GPUH_PCI_ADDR_MAX], why[200];

        gpuh_pci_addr_format(&e->dev, name);
        snprintf(why, sizeof(why), "a write to it was still in flight %d ms after its deadline",
                 s->cfg->write_timeout_ms);
        sc_quarantine(s, &e->dev, why);
        free(*err);
        *err = NULL;
        gpuh_error(err, -ETIMEDOUT, "%s: %s: %s: its state may still change; kept in the journal and quarantined",
                   s->vm, name, why);
}

/* Undo entry @i of our journal, dropping it when done. Returns 0, or < 0 with *@err. */
static int replay_entry(struct sc *s, size_t i, bool *stuck, char **err)
{
        struct gpuh_jentry e = s->j->e[i];
        char key[SC_KEY_MAX];
        struct gpuh_journal *other;
        int r;

        gpuh_jentry_key(&e, key, sizeof(key));
        other = sc_other_with(s, key);
        if (other) {
                gpuh_log(LOG_INFO, "%s: %s now belongs to %s: left as it is", s->vm, key, other->domain);
                gpuh_journal_drop(s->j, i);
                return 0;
        }
        r = undo_settled(s, &e, key, stuck, err);
        if (r == -ETIMEDOUT && *stuck && gpuh_change_late(&s->ch, key))
                quarantine_late(s, &e, err);
        if (r >= 0)
                gpuh_journal_drop(s->j, i);
        return r < 0 ? r : 0;
}

/**
 * sc_replay:
 * @s: the run, its journal loaded and its device locks held
 * @reterr: the first failure's line
 *
 * Replays @s->j in reverse (SR-IOV and MIG-mode entries last, after the VFs' and GPU instances'
 * own entries, in reverse among themselves: MIG mode goes off with the VFs disabled), each entry whose
 * device another journal now names dropped untouched. What could not be undone stays. A write
 * that missed its deadline may still land: before anything is read to decide an undo, it is
 * waited for (one more deadline); a device whose write is still in flight then keeps its
 * entries and is quarantined.
 *
 * Returns: 0 when nothing is left, else the first error.
 */
int sc_replay(struct sc *s, char **reterr)
{
        bool stuck = gpuh_change_settle(&s->ch, s->cfg->write_timeout_ms) < 0;
        int first = 0;

        for (int pass = 0; pass < 2; pass++)
                for (ssize_t i = (ssize_t) s->j->n - 1; i >= 0; i--) {
                        char *err = NULL;
                        int r;

                        if (gpuh_jop_gpu_wide(s->j->e[i].op) != (pass == 1))
                                continue;
                        r = replay_entry(s, (size_t) i, &stuck, &err);
                        if (r < 0 && first == 0) {
                                first = r;
                                if (reterr && !*reterr)
                                        *reterr = TAKE_PTR(err);
                        }
                        free(err);
                }
        return first;
}
