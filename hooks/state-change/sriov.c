/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sriov.c: SR-IOV for the state-change hook: the PF a missing VF would belong to, a PF's VFs,
 * whether any of them is in use, and the sriov_numvfs writes that enable and disable them
 * (Documentation/PCI/pci-iov-howto.rst, Documentation/ABI/testing/sysfs-bus-pci).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "mdev.h"
#include "pcidev.h"
#include "sc.h"
#include "sysfs.h"
#include "vendor_vgpu.h"
#include "vfio.h"

/**
 * sc_sriov_numvfs:
 * @s: the run
 * @pf: a function
 * @ret_total, @ret_num: its sriov_totalvfs and sriov_numvfs (0 and 0 when it has no SR-IOV)
 *
 * Returns: 0; -ENOENT (gone); -EBADMSG; -ENOMEM.
 */
int sc_sriov_numvfs(struct sc *s, const struct gpuh_pci_addr *pf, int *ret_total, int *ret_num)
{
        _cleanup_pci_dev_ struct gpuh_pci_dev *d = NULL;
        int r = gpuh_pci_dev_read(s->sysfs->root_fd, pf, GPUH_PCI_FILL_SRIOV, NULL, &d);

        if (r < 0)
                return r;
        *ret_total = d->sriov_totalvfs;
        *ret_num = d->sriov_numvfs;
        return 0;
}

/* Is routing ID @want one of @pf's VFs (routing ID + sriov_offset + i * sriov_stride,
 * drivers/pci/iov.c pci_iov_virtfn_bus/devfn)? */
static bool pf_would_have(struct sc *s, const struct gpuh_pci_addr *pf, int total, unsigned want)
{
        unsigned rid = (unsigned) pf->bus << 8 | (unsigned) pf->slot << 3 | pf->func;
        int fd = sc_devfd(s, pf);
        uint64_t off, stride;

        if (fd < 0 || gpuh_sysfs_read_u64(fd, "sriov_offset", &off) < 0 ||
            gpuh_sysfs_read_u64(fd, "sriov_stride", &stride) < 0)
                return false;
        for (uint64_t k = 0; k < (uint64_t) total; k++)
                if (rid + off + k * stride == want)
                        return true;
        return false;
}

/**
 * sc_find_pf_of:
 * @s: the run
 * @vf: a function that does not exist
 * @ret: the PF with VFs disabled whose VFs would include it
 *
 * Returns: 0; -ENOENT when no PF would have it.
 */
int sc_find_pf_of(struct sc *s, const struct gpuh_pci_addr *vf, struct gpuh_pci_addr *ret)
{
        _cleanup_free_ struct gpuh_pci_addr *all = NULL;
        int n = gpuh_pci_dev_list(s->sysfs->root_fd, NULL, &all);
        unsigned want = (unsigned) vf->bus << 8 | (unsigned) vf->slot << 3 | vf->func;

        for (int i = 0; i < n; i++) {
                int total, num;

                if (all[i].domain != vf->domain)
                        continue;
                if (sc_sriov_numvfs(s, &all[i], &total, &num) < 0 || total == 0 || num != 0)
                        continue;
                if (pf_would_have(s, &all[i], total, want)) {
                        *ret = all[i];
                        return 0;
                }
        }
        return -ENOENT;
}

/* The VFs of @pf (virtfnN links): their number, or -errno. */
int sc_pf_vfs(struct sc *s, const struct gpuh_pci_addr *pf, struct gpuh_pci_addr **ret)
{
        _cleanup_free_ int *idx = NULL;

        return gpuh_pci_dev_list_vfs(s->sysfs->root_fd, pf, NULL, ret, &idx);
}

/* Is one of @vfs in use by anything: on vfio-pci, carrying an mdev or a vGPU type? Returns
 * why (a static buffer), or NULL. */
const char *sc_vf_in_use(struct sc *s, const struct gpuh_pci_addr *vfs, int n)
{
        static char why[128];
        struct gpuh_mdev *m = NULL;
        int nm = gpuh_mdev_list(s->sysfs->root_fd, NULL, &m);
        const char *ret = NULL;

        for (int i = 0; i < n && !ret; i++) {
                char drv[64] = "", name[GPUH_PCI_ADDR_MAX];
                struct gpuh_vendor_vgpu v;

                gpuh_pci_addr_format(&vfs[i], name);
                if (gpuh_pci_driver(&s->ch, &vfs[i], drv, sizeof(drv)) == 0 && streq(drv, GPUH_VFIO_DRIVER)) {
                        snprintf(why, sizeof(why), "%s is on vfio-pci", name);
                        ret = why;
                } else if (gpuh_vendor_vgpu_read(s->sysfs->root_fd, &vfs[i], NULL, &v) == 1) {
                        if (v.current_type != 0) {
                                snprintf(why, sizeof(why), "%s has vGPU type %u", name, v.current_type);
                                ret = why;
                        }
                        gpuh_vendor_vgpu_clear(&v);
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

/**
 * sc_sriov_set:
 * @s: the run
 * @pf: the PF
 * @n: the number of VFs to have
 * @wait: read sriov_numvfs back until it is @n (the change's deadline)
 * @ret_now: with @wait, the last value read
 *
 * The one write of sriov_numvfs, through the change (a dry run lists it). The VFs' directories
 * come or go: the run forgets the directories and groups it knew.
 *
 * Returns: 0; -ENOENT (@pf is gone); -ETIMEDOUT; -errno of the write (-EBUSY: VFs in use).
 */
int sc_sriov_set(struct sc *s, const struct gpuh_pci_addr *pf, unsigned n, bool wait, uint64_t *ret_now)
{
        int fd = sc_devfd(s, pf), r;
        char v[16];

        if (fd < 0)
                return fd;
        snprintf(v, sizeof(v), "%u", n);
        r = gpuh_change_write(&s->ch, fd, "sriov_numvfs", v);
        if (r == 0 && wait)
                r = gpuh_change_wait_u64(&s->ch, fd, "sriov_numvfs", n, ret_now);
        gpuh_change_forget(&s->ch);
        s->n_groups = 0;
        return r;
}

/* The PF whose VFs would include the missing @vf: @pf_hint when it exists, else looked for. */
static int pf_for(struct sc *s, const struct gpuh_pci_addr *vf, const struct gpuh_pci_addr *pf_hint,
                  struct gpuh_pci_addr *ret)
{
        if (pf_hint && sc_pci_exists(s, pf_hint)) {
                *ret = *pf_hint;
                return 0;
        }
        return sc_find_pf_of(s, vf, ret);
}

/**
 * sc_ensure_vf:
 * @s: the run
 * @vf: a function a record device needs (a VF, or an mdev's parent)
 * @pf_hint: its PF as the record names it, or NULL
 * @need_rel: what the device needs of the VF once its driver bound it (relative to the sysfs
 *            root: its mdev type, its nvidia/ interface), waited for too; or NULL
 * @reterr: on failure, one line naming the domain, the VF and the PF
 *
 * Nothing when @vf exists. Otherwise, when its PF has VFs disabled and
 * state_change.enable_sriov allows it, sriov_numvfs ← sriov_totalvfs (journaled first), and
 * the VF is waited for (docs/state-change.md, prepare step 6).
 *
 * Returns: 0; -ENODEV (no such VF, SR-IOV off and not to be enabled, the VF did not appear);
 *          -EIO (the journal); -errno of the write.
 */
int sc_ensure_vf(struct sc *s, const struct gpuh_pci_addr *vf, const struct gpuh_pci_addr *pf_hint,
                 const char *need_rel, char **reterr)
{
        struct gpuh_pci_addr pf;
        char name[GPUH_PCI_ADDR_MAX], pname[GPUH_PCI_ADDR_MAX], rel[128], v[16];
        struct gpuh_jentry e = { .op = GPUH_JOP_SRIOV };
        int64_t t0 = gpuh_mono_us();
        int total = 0, num = 0, r;

        if (sc_pci_exists(s, vf))
                return 0;
        gpuh_pci_addr_format(vf, name);
        if (pf_for(s, vf, pf_hint, &pf) < 0)
                return gpuh_error(reterr, -ENODEV, "%s: %s: no such PCI device", s->vm, name);
        gpuh_pci_addr_format(&pf, pname);
        if (sc_sriov_numvfs(s, &pf, &total, &num) < 0 || total == 0 || num != 0)
                return gpuh_error(reterr, -ENODEV, "%s: VF %s does not exist (PF %s has %d VFs)", s->vm, name, pname,
                                  num);
        if (!s->cfg->enable_sriov)
                return gpuh_error(reterr, -ENODEV, "%s: VF %s does not exist: SR-IOV is off on %s (sriov_numvfs 0) and "
                                  "state_change.enable_sriov is false", s->vm, name, pname);
        if (total > 0xffff)
                return gpuh_error(reterr, -ENODEV, "%s: %s cannot enable VFs (sriov_totalvfs unreadable)", s->vm, pname);
        e.dev = pf;
        e.old = 0;
        e.to_n = (unsigned) total;
        r = sc_journal_change(s, &e, reterr);
        if (r < 0)
                return r;
        snprintf(v, sizeof(v), "%d", total);
        r = sc_sriov_set(s, &pf, (unsigned) total, false, NULL);
        if (r < 0)
                gpuh_error(reterr, r, "%s: %s: enabling %s VFs: %s", s->vm, pname, v,
                           r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        if (r == 0) {
                /* the VF, and what the device needs of it once its driver bound it */
                r = gpuh_change_wait_exists(&s->ch, s->ch.root_fd, sc_dev_path(vf, NULL, rel, sizeof(rel)), true);
                if (r == 0 && need_rel)
                        r = gpuh_change_wait_exists(&s->ch, s->ch.root_fd, need_rel, true);
                if (r < 0)
                        gpuh_error(reterr, -ENODEV, "%s: VF %s did not appear after enabling SR-IOV on %s", s->vm, name,
                                   pname);
        }
        sc_event(s, "sriov-enable", pname, "0", v, t0, r, reterr ? *reterr : NULL);
        return r < 0 ? (r == -ETIMEDOUT ? -ENODEV : r) : 0;
}
