/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mig.c: the GPU instance of a MIG-backed layout slot, and the MIG mode it needs, made and
 * undone through NVML (nvml.h) with the same journal and seam as the sysfs changes.
 *
 * The order is NVIDIA's (research notes of issue 11, from NVIDIA's vGPU and MIG user guides
 * and CubeCOS's working code, bigstack-oss/cubecos core/modules/config_gpu.cpp):
 *   1. MIG mode on (nvmlDeviceSetMigMode), which the driver refuses while the GPU's VFs are
 *      enabled: switched by gpuhooks only when the GPU's layout says "mig": true and no VM
 *      uses the GPU, its VFs disabled first when they were enabled;
 *   2. SR-IOV on (sc_ensure_vf()): enabling VFs rebinds the GPU and wipes every GPU instance,
 *      so GIs are made after it;
 *   3. the GPU instance, with the explicit placement the layout gave the slot
 *      (nvmlDeviceCreateGpuInstanceWithPlacement), so slots stay where discovery said;
 *   4. the VF's vGPU type set, or the mdev created (prepare.c).
 * Release undoes them in reverse (undo.c): the type or mdev, the GI (destroyed when it exists
 * and no vGPU sits on it), then SR-IOV and MIG mode, each only when nothing else uses the GPU,
 * MIG mode only when this journal switched it on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "layout.h"
#include "log.h"
#include "nvml.h"
#include "pcidev.h"
#include "sc.h"
#include "vfio.h"

/* What NVML says of @gpu now. Returns 0 with *@ret_g set; < 0 with one line: -ENOENT (NVML
 * cannot be used, or does not know the GPU), -ENOMEM. */
static int ask(struct sc *s, const struct gpuh_pci_addr *gpu, const char *doing, struct gpuh_nvml_info **ret,
               const struct gpuh_nvml_gpu **ret_g, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX];
        const struct gpuh_nvml_gpu *g;
        int r = gpuh_nvml_query(s->o->nvml_lib, gpu, 1, GPUH_NVML_TIMEOUT_MS, ret);

        if (r < 0)
                return r;
        gpuh_pci_addr_format(gpu, name);
        if ((*ret)->error)
                return gpuh_error(reterr, -ENOENT, "%s: %s: %s: %s", s->vm, name, doing, (*ret)->error);
        g = gpuh_nvml_info_gpu(*ret, gpu);
        if (!g || g->error)
                return gpuh_error(reterr, -ENOENT, "%s: %s: %s: %s", s->vm, name, doing,
                                  g ? g->error : "NVML does not know the GPU");
        *ret_g = g;
        return 0;
}

/* The GI of @profile at @start:@size on @g, or NULL. */
static const struct gpuh_nvml_gi *find_gi(const struct gpuh_nvml_gpu *g, unsigned profile, unsigned start,
                                          unsigned size)
{
        for (size_t i = 0; i < g->n_gis; i++)
                if (g->gis[i].profile_id == profile && g->gis[i].placement_start == start &&
                    g->gis[i].placement_size == size)
                        return &g->gis[i];
        return NULL;
}

/**
 * sc_alloc_gpu:
 * @s: the run
 * @a: a record device with a GPU instance (@a->gi)
 * @ret: the GPU (PF) its GPU instance goes on
 *
 * A vendor vGPU VF's is its parent; an mdev's is its parent VF's PF (existing or not), or the
 * parent itself when that is the GPU.
 *
 * Returns: 0; -ENODEV (the parent is no GPU function or VF of one).
 */
int sc_alloc_gpu(struct sc *s, const struct gpuh_alloc *a, struct gpuh_pci_addr *ret)
{
        if (a->kind == GPUH_ALLOC_VENDOR_VGPU) {
                *ret = a->parent;
                return 0;
        }
        switch (sc_gpu_role(s, &a->parent, ret)) {
        case SC_ROLE_VF:
                return 0;
        case SC_ROLE_GPU:
                *ret = a->parent;
                return 0;
        default:
                return -ENODEV;
        }
}

/* The GPU's layout lets gpuhooks switch MIG mode on ("mig": true). */
static bool layout_allows_mig(struct sc *s, const struct gpuh_pci_addr *gpu)
{
        _cleanup_pci_dev_ struct gpuh_pci_dev *d = NULL;
        const struct gpuh_layout *l;

        if (gpuh_pci_dev_read(s->sysfs->root_fd, gpu, GPUH_PCI_FILL_IDENT | GPUH_PCI_FILL_SUBSYS, NULL, &d) < 0)
                return false;
        l = gpuh_layout_find(s->cfg, d, NULL);
        return l && l->mig;
}

/* MIG mode may be switched on for @gpu: its layout says so, no VM uses it. */
static int may_switch_on(struct sc *s, const struct gpuh_pci_addr *gpu, const char *name, char **reterr)
{
        _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
        int n = sc_pf_vfs(s, gpu, &vfs);
        const char *busy;
        char drv[64] = "";

        if (!layout_allows_mig(s, gpu))
                return gpuh_error(reterr, -EPERM, "%s: %s: MIG mode is off, and its layout does not let gpuhooks "
                                  "switch it on (\"mig\": true): the slot's GPU instance cannot be made", s->vm, name);
        if (gpuh_pci_driver(&s->ch, gpu, drv, sizeof(drv)) < 0 || !streq(drv, "nvidia"))
                return gpuh_error(reterr, -EBUSY, "%s: %s: MIG mode is off and cannot be switched on: the GPU is on "
                                  "%s, not nvidia", s->vm, name, drv[0] ? drv : "no driver");
        if ((busy = sc_vf_in_use(s, vfs, n > 0 ? n : 0)))
                return gpuh_error(reterr, -EBUSY, "%s: %s: MIG mode is off and cannot be switched on while the GPU is "
                                  "in use: %s", s->vm, name, busy);
        return 0;
}

/* sriov_numvfs of @gpu set to @n and read back (not journaled: the mig-mode entry records the
 * VFs, and its undo sets them back). */
static int set_vfs(struct sc *s, const struct gpuh_pci_addr *gpu, const char *name, unsigned n, const char *why,
                   char **reterr)
{
        int64_t t0 = gpuh_mono_us();
        uint64_t now = 0;
        char v[16];
        int r;

        r = sc_sriov_set(s, gpu, n, true, &now);
        snprintf(v, sizeof(v), "%u", n);
        if (r < 0)
                gpuh_error(reterr, r, "%s: %s: setting sriov_numvfs to %u %s: %s", s->vm, name, n, why,
                           r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        sc_event(s, n ? "sriov-enable" : "sriov-disable", name, NULL, v, t0, r, reterr ? *reterr : NULL);
        return r;
}

/**
 * sc_mig_ready:
 * @s: the run, the GPU's MIG lock held
 * @gpu: the GPU a slot's GPU instance goes on (sc_alloc_gpu())
 * @vf: the VF the slot needs (its mdev's parent, or the vendor vGPU VF)
 * @need_rel: what the slot needs of that VF once its driver bound it (as sc_ensure_vf())
 * @ret_info: on success, what NVML said of the GPU last (after a switch, read back): the
 *            caller's to give sc_gi_ready() while nothing enabled SR-IOV since, which wipes GPU
 *            instances; gpuh_nvml_info_free() it
 * @reterr: on failure, one line naming the domain, the GPU and the cause
 *
 * Step 1 above: nothing when MIG mode is on. Otherwise, when the GPU's layout says "mig": true,
 * it is on nvidia and none of its VFs is in use: journaled first ("mig-mode", with the VFs
 * enabled now), its VFs disabled when enabled, MIG mode switched on and read back (a mode left
 * pending: Ampere applies it at the next GPU reset, which gpuhooks never makes: nvidia-smi
 * documentation), and the VFs enabled again as they were, @vf and @need_rel waited for.
 *
 * Returns: 0; -ENOENT (NVML cannot be used); -EOPNOTSUPP (the GPU has no MIG); -EPERM (the
 *          layout does not allow it); -EBUSY (in use, not on nvidia); -EAGAIN (pending a
 *          reset); -ENODEV (the VF did not come back); -EIO (the journal); -errno of the changes.
 */
int sc_mig_ready(struct sc *s, const struct gpuh_pci_addr *gpu, const struct gpuh_pci_addr *vf, const char *need_rel,
                 struct gpuh_nvml_info **ret_info, char **reterr)
{
        _cleanup_(gpuh_nvml_info_freep) struct gpuh_nvml_info *info = NULL;
        struct gpuh_jentry e = { .op = GPUH_JOP_MIG, .dev = *gpu, .old = 0, .to_n = 1 };
        const struct gpuh_nvml_gpu *g;
        char name[GPUH_PCI_ADDR_MAX], rel[128];
        int64_t t0 = gpuh_mono_us();
        int total = 0, num = 0, r;

        gpuh_pci_addr_format(gpu, name);
        r = ask(s, gpu, "reading its MIG mode", &info, &g, reterr);
        if (r < 0)
                return r;
        if (g->mig_current == 1) {
                *ret_info = TAKE_PTR(info);
                return 0;
        }
        if (g->mig_current < 0)
                return gpuh_error(reterr, -EOPNOTSUPP, "%s: %s: the slot is MIG-backed but the GPU has no MIG mode",
                                  s->vm, name);
        r = may_switch_on(s, gpu, name, reterr);
        if (r < 0)
                return r;
        if (sc_sriov_numvfs(s, gpu, &total, &num) == 0 && num > 0)
                e.mig_vfs = (unsigned) num;
        r = sc_journal_change(s, &e, reterr);
        if (r == 0 && e.mig_vfs > 0)
                r = set_vfs(s, gpu, name, 0, "to switch MIG mode on", reterr);
        if (r == 0) {
                r = gpuh_change_nvml(&s->ch, s->o->nvml_lib, gpu, GPUH_NVML_SET_MIG_MODE, 1, 0, 0, NULL, reterr);
                if (r < 0)
                        sc_prefix_vm(s->vm, reterr);
        }
        if (r == 0 && !s->o->dry_run) {
                gpuh_nvml_info_free(TAKE_PTR(info));
                r = ask(s, gpu, "reading its MIG mode back", &info, &g, reterr);
                if (r == 0 && g->mig_current != 1)
                        r = gpuh_error(reterr, -EAGAIN, "%s: %s: MIG mode switched on is pending a GPU reset, which "
                                       "gpuhooks never makes: reset the GPU while it is unused, or reboot", s->vm, name);
        }
        sc_event(s, "mig-on", name, "0", "1", t0, r, reterr ? *reterr : NULL);
        if (r == 0 && e.mig_vfs > 0)
                r = set_vfs(s, gpu, name, e.mig_vfs, "again after switching MIG mode on", reterr);
        if (r == 0 && e.mig_vfs > 0 && !s->o->dry_run) {
                r = gpuh_change_wait_exists(&s->ch, s->ch.root_fd, sc_dev_path(vf, NULL, rel, sizeof(rel)), true);
                if (r == 0 && need_rel)
                        r = gpuh_change_wait_exists(&s->ch, s->ch.root_fd, need_rel, true);
                if (r < 0)
                        r = gpuh_error(reterr, -ENODEV, "%s: %s did not come back after switching MIG mode on on %s",
                                       s->vm, gpuh_pci_addr_format(vf, rel), name);
        }
        if (r == 0)
                *ret_info = TAKE_PTR(info);     /* MIG mode just on: no GPU instance, VFs cycled or not */
        return r;
}

/**
 * sc_gi_ready:
 * @s: the run, the GPU's lock held
 * @a: a record device with a GPU instance (@a->gi)
 * @gpu: its GPU (sc_alloc_gpu())
 * @known: what NVML said of @gpu, still true now (sc_mig_ready()'s, when no VF was enabled
 *         since); NULL: asked here
 * @reterr: on failure, one line naming the domain, the GPU, the GI and NVML's answer
 *
 * Step 3 above, after SR-IOV is on: a GI of @a's profile and placement that exists is used
 * (only taken over from a stale journal that names it); otherwise one is created with that
 * explicit placement, journaled first ("gpu-instance").
 *
 * Returns: 0; -ENOENT (NVML cannot be used); -ENOSPC (another GI holds those slices);
 *          -EOPNOTSUPP (MIG mode off); -EIO (the journal); as gpuh_nvml_change().
 */
int sc_gi_ready(struct sc *s, const struct gpuh_alloc *a, const struct gpuh_pci_addr *gpu,
                const struct gpuh_nvml_info *known, char **reterr)
{
        _cleanup_(gpuh_nvml_info_freep) struct gpuh_nvml_info *info = NULL;
        struct gpuh_jentry e = { .op = GPUH_JOP_GI, .dev = *gpu, .gi_profile = a->gi_profile,
                                 .gi_start = a->gi_start, .gi_size = a->gi_size };
        const struct gpuh_nvml_gpu *g;
        char name[GPUH_PCI_ADDR_MAX], what[64];
        int64_t t0 = gpuh_mono_us();
        unsigned id = 0;
        int r;

        gpuh_pci_addr_format(gpu, name);
        snprintf(what, sizeof(what), "profile %u at %u:%u", a->gi_profile, a->gi_start, a->gi_size);
        g = known ? gpuh_nvml_info_gpu(known, gpu) : NULL;
        if ((!g || g->error) && (r = ask(s, gpu, "reading its GPU instances", &info, &g, reterr)) < 0)
                return r;
        if (find_gi(g, a->gi_profile, a->gi_start, a->gi_size))
                return sc_journal_takeover(s, &e, reterr);
        r = sc_journal_change(s, &e, reterr);
        if (r < 0)
                return r;
        r = gpuh_change_nvml(&s->ch, s->o->nvml_lib, gpu, GPUH_NVML_CREATE_GI, a->gi_profile, a->gi_start,
                             a->gi_size, &id, reterr);
        if (r < 0)
                sc_prefix_vm(s->vm, reterr);
        sc_event(s, "gi-create", name, NULL, what, t0, r, reterr ? *reterr : NULL);
        return r;
}

/* ---- undo ------------------------------------------------------------------------------- */

/* gpu-instance (created): destroyed when it exists; a vGPU on it (NVML_ERROR_IN_USE) keeps the
 * entry for a later try. MIG mode off, or NVML not knowing the GPU any more (a reboot, a
 * reset, a reload of the vGPU manager wipe GIs: research notes): nothing left to destroy. */
int sc_undo_gi(struct sc *s, const struct gpuh_jentry *e, char **reterr)
{
        _cleanup_(gpuh_nvml_info_freep) struct gpuh_nvml_info *info = NULL;
        const struct gpuh_nvml_gpu *g;
        const struct gpuh_nvml_gi *gi;
        char name[GPUH_PCI_ADDR_MAX], what[64];
        int64_t t0 = gpuh_mono_us();
        int r;

        gpuh_pci_addr_format(&e->dev, name);
        if (!sc_pci_exists(s, &e->dev))
                return 0;
        r = ask(s, &e->dev, "reading its GPU instances", &info, &g, reterr);
        if (r < 0)
                return r;
        gi = g->mig_current == 1 ? find_gi(g, e->gi_profile, e->gi_start, e->gi_size) : NULL;
        if (!gi)
                return 0;
        snprintf(what, sizeof(what), "GI %u (profile %u at %u:%u)", gi->id, e->gi_profile, e->gi_start, e->gi_size);
        r = gpuh_change_nvml(&s->ch, s->o->nvml_lib, &e->dev, GPUH_NVML_DESTROY_GI, gi->id, 0, 0, NULL, reterr);
        if (r < 0)
                sc_prefix_vm(s->vm, reterr);
        sc_event(s, "gi-destroy", name, what, NULL, t0, r, reterr ? *reterr : NULL);
        return r;
}

/* Another domain's journal that names a VF or a GPU instance of @gpu: MIG mode is its too. */
static struct gpuh_journal *other_on_gpu(struct sc *s, const struct gpuh_pci_addr *gpu)
{
        _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
        int n = sc_pf_vfs(s, gpu, &vfs);

        for (size_t k = 0; k < s->n_others; k++)
                for (size_t i = 0; i < s->others[k]->n; i++) {
                        const struct gpuh_jentry *o = &s->others[k]->e[i];
                        struct gpuh_pci_addr pf;

                        if (o->op == GPUH_JOP_GI && gpuh_pci_addr_cmp(&o->dev, gpu) == 0)
                                return s->others[k];
                        for (int v = 0; v < n; v++)
                                if (gpuh_pci_addr_cmp(&o->dev, &vfs[v]) == 0)
                                        return s->others[k];
                        if (o->op == GPUH_JOP_MDEV && sc_gpu_role(s, &o->dev, &pf) == SC_ROLE_VF &&
                            gpuh_pci_addr_cmp(&pf, gpu) == 0)
                                return s->others[k];
                }
        return NULL;
}

/* Why MIG mode stays as it is (not ours to break), or NULL; @buf holds it. */
static const char *mig_kept(struct sc *s, const struct gpuh_jentry *e, const struct gpuh_nvml_gpu *g, char *buf,
                            size_t size)
{
        _cleanup_free_ struct gpuh_pci_addr *vfs = NULL;
        int n = sc_pf_vfs(s, &e->dev, &vfs);
        const char *busy;

        if (g->n_gis > 0) {
                snprintf(buf, size, "%zu GPU instances exist (GI %u first)", g->n_gis, g->gis[0].id);
                return buf;
        }
        if ((busy = sc_vf_in_use(s, vfs, n > 0 ? n : 0))) {
                snprintf(buf, size, "%s", busy);
                return buf;
        }
        return NULL;
}

/* MIG mode back to @e's, with the VFs disabled meanwhile (the driver refuses it otherwise).
 * Returns 0; 1 when it is left as it is (logged); < 0 with *@reterr. */
static int mig_back(struct sc *s, const struct gpuh_jentry *e, const struct gpuh_nvml_gpu *g, const char *name,
                    char **reterr)
{
        int64_t t0 = gpuh_mono_us();
        int total = 0, num = 0, r;
        const char *kept;
        char why[160], o[4], n[4];

        if ((kept = mig_kept(s, e, g, why, sizeof(why)))) {
                sc_event(s, "mig-off", name, NULL, NULL, 0, -EBUSY, kept);
                gpuh_log(LOG_WARNING, "%s: %s: MIG mode left on: %s", s->vm, name, kept);
                return 1;
        }
        if (sc_sriov_numvfs(s, &e->dev, &total, &num) == 0 && num > 0 &&
            (r = set_vfs(s, &e->dev, name, 0, "to switch MIG mode off", reterr)) < 0)
                return r;
        r = gpuh_change_nvml(&s->ch, s->o->nvml_lib, &e->dev, GPUH_NVML_SET_MIG_MODE, e->old, 0, 0, NULL, reterr);
        if (r < 0)
                sc_prefix_vm(s->vm, reterr);
        snprintf(o, sizeof(o), "%u", e->to_n);
        snprintf(n, sizeof(n), "%u", e->old);
        sc_event(s, "mig-off", name, o, n, t0, r, reterr ? *reterr : NULL);
        return r;
}

/* mig-mode (switched): back to the recorded mode (pending included), once no other journal
 * names a VF or GI of the GPU (the entry moves to that journal otherwise), no GI exists and no
 * VF is in use (otherwise left on, logged: not ours to break); the VFs disabled for it, then
 * enabled again as they were before the switch. Also after a switch that failed half-way (the
 * mode as recorded, the VFs still off). */
int sc_undo_mig(struct sc *s, const struct gpuh_jentry *e, char **reterr)
{
        _cleanup_(gpuh_nvml_info_freep) struct gpuh_nvml_info *info = NULL;
        const struct gpuh_nvml_gpu *g;
        struct gpuh_journal *other;
        char name[GPUH_PCI_ADDR_MAX];
        int total = 0, num = 0, r;

        gpuh_pci_addr_format(&e->dev, name);
        if (!sc_pci_exists(s, &e->dev))
                return 0;
        r = ask(s, &e->dev, "reading its MIG mode", &info, &g, reterr);
        if (r < 0)
                return r;
        if (g->mig_current >= 0 && ((unsigned) g->mig_current != e->old || (unsigned) g->mig_pending != e->old)) {
                if ((other = other_on_gpu(s, &e->dev))) {
                        char what[64];

                        snprintf(what, sizeof(what), "MIG mode of %s", name);
                        return sc_hand_over(s, other->domain, e, what, name, reterr);
                }
                r = mig_back(s, e, g, name, reterr);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        if (e->mig_vfs > 0 && sc_sriov_numvfs(s, &e->dev, &total, &num) == 0 && num == 0)
                return set_vfs(s, &e->dev, name, e->mig_vfs, "again, as before MIG mode was switched", reterr);
        return 0;
}
