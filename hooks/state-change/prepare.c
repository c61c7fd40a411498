/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prepare.c: libvirt's `prepare begin` (docs/state-change.md, "prepare begin"): is a GPU
 * involved at all; the record checked; locks; the reservation, the journals and the occupancy
 * checked; every device planned and its holders looked for; then each device bound, created or
 * set, journaled first; on failure everything undone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "clock.h"
#include "log.h"
#include "mdev.h"
#include "rule.h"
#include "sc.h"
#include "sysfs.h"
#include "vendor_vgpu.h"
#include "vfio.h"

/* A record device, as planned before anything changes. */
struct unit {
        const struct gpuh_alloc *a;
        bool managed;                   /* managed='yes': libvirt binds it */
        bool planned;                   /* f[] holds its functions (it existed) */
        struct sc_fn f[SC_MAX_GROUP];
        size_t n;
        char **nodes;                   /* their device nodes, when planned */
};

/* One prepare: the run, the domain, and what it asks for. */
struct prep {
        struct sc s;
        struct gpuh_domxml *d;
        const char *asked;              /* what asks for GPUs besides a record, or NULL */
        bool *managed;                  /* per record device */
        struct unit *units;             /* per record device */
        int64_t t0;
        size_t done_before;             /* entries our journal had before this prepare */
};

/* ---- one device ------------------------------------------------------------------------ */

/* Read one function of @a's group: @ret gets its driver and override. */
static int read_fn(struct sc *s, const struct gpuh_pci_addr *m, int group, struct sc_fn *ret, char **reterr)
{
        char mname[GPUH_PCI_ADDR_MAX];
        int r;

        *ret = (struct sc_fn) { .a = *m, .group = group };
        r = gpuh_pci_driver(&s->ch, m, ret->driver, sizeof(ret->driver));
        if (r == 0)
                r = gpuh_pci_override(&s->ch, m, ret->override, sizeof(ret->override));
        if (r < 0)
                return gpuh_error(reterr, r, "%s: %s: cannot read its driver: %s", s->vm, gpuh_pci_addr_format(m, mname),
                                  strerror(-r));
        return 0;
}

static bool is_ours(const struct gpuh_alloc *a, const struct gpuh_pci_addr *m)
{
        bool ours = gpuh_pci_addr_cmp(m, &a->addr) == 0;

        for (size_t c = 0; c < a->n_companions && !ours; c++)
                ours = gpuh_pci_addr_cmp(m, &a->companions[c]) == 0;
        return ours;
}

/* The functions a pci or vf device moves to vfio-pci: its group's endpoints that are the
 * device or its companions; other endpoints must already be on vfio-pci or on no driver. */
static int plan_functions(struct sc *s, const struct gpuh_alloc *a, struct sc_fn *ret, size_t max, size_t *ret_n,
                          char **reterr)
{
        struct gpuh_pci_addr m[SC_MAX_GROUP];
        char name[GPUH_PCI_ADDR_MAX], mname[GPUH_PCI_ADDR_MAX];
        int n, group;
        size_t k = 0;

        gpuh_pci_addr_format(&a->addr, name);
        if (!sc_pci_exists(s, &a->addr))
                return gpuh_error(reterr, -ENODEV, "%s: %s: no such PCI device", s->vm, name);
        group = sc_pci_group(s, &a->addr);
        if (group < 0)
                return gpuh_error(reterr, -ENODEV, "%s: %s has no IOMMU group: is the IOMMU on (intel_iommu=on, "
                                  "amd_iommu) and VFIO possible on this host?", s->vm, name);
        n = sc_group_members(s, &a->addr, m, ARRAY_SIZE(m));
        for (int i = 0; i < n; i++) {
                bool ours = is_ours(a, &m[i]);
                struct sc_fn f;
                int r;

                if (!ours && sc_is_bridge(s, &m[i]))
                        continue;       /* bridges stay on pcieport: VFIO allows them in a group */
                r = read_fn(s, &m[i], group, &f, reterr);
                if (r < 0)
                        return r;
                if (!ours) {
                        if (!f.driver[0] || streq(f.driver, GPUH_VFIO_DRIVER))
                                continue;
                        return gpuh_error(reterr, -EBUSY, "%s: %s: IOMMU group %d also holds %s (on %s), which is not part "
                                          "of the GPU: the group cannot be given to a VM", s->vm, name, group,
                                          gpuh_pci_addr_format(&m[i], mname), f.driver);
                }
                if (k == max)
                        return gpuh_error(reterr, -E2BIG, "%s: %s: IOMMU group %d is too large", s->vm, name, group);
                ret[k++] = f;
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

static int bind_functions(struct sc *s, const struct sc_fn *f, size_t n, char **reterr)
{
        for (size_t i = 0; i < n; i++) {
                char name[GPUH_PCI_ADDR_MAX];
                struct gpuh_jentry e = { .op = GPUH_JOP_DRIVER, .dev = f[i].a };
                int64_t t0 = gpuh_mono_us();
                int r;

                if (streq(f[i].driver, GPUH_VFIO_DRIVER) && streq(f[i].override, GPUH_VFIO_DRIVER)) {
                        /* already as wanted: nothing to change, nothing of ours to undo */
                        if ((r = sc_journal_takeover(s, &e, reterr)) < 0)
                                return r;
                        continue;
                }
                gpuh_pci_addr_format(&f[i].a, name);
                snprintf(e.driver, sizeof(e.driver), "%s", f[i].driver);
                snprintf(e.override, sizeof(e.override), "%s", f[i].override);
                snprintf(e.to, sizeof(e.to), "%s", GPUH_VFIO_DRIVER);
                r = sc_journal_change(s, &e, reterr);
                if (r < 0)
                        return r;
                r = gpuh_pci_rebind_from(&s->ch, &f[i].a, f[i].driver, f[i].override, GPUH_VFIO_DRIVER, reterr);
                sc_event(s, "bind", name, f[i].driver[0] ? f[i].driver : "none", GPUH_VFIO_DRIVER, t0, r,
                         reterr ? *reterr : NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* pci, vf: the device and its group's companions to vfio-pci, unless libvirt binds them. */
static int prepare_pci(struct sc *s, struct unit *u, char **reterr)
{
        const struct gpuh_alloc *a = u->a;
        int r;

        if (!u->planned) {
                if (a->kind == GPUH_ALLOC_VF && (r = sc_ensure_vf(s, &a->addr, &a->parent, NULL, reterr)) < 0)
                        return r;
                r = plan_functions(s, a, u->f, ARRAY_SIZE(u->f), &u->n, reterr);
                if (r < 0)
                        return r;
        }
        if (u->managed)
                return 0;       /* libvirt binds it (managed='yes') */
        r = sc_check_holders(s, u->f, u->n, u->planned ? u->nodes : NULL, reterr);
        if (r < 0)
                return r;
        return bind_functions(s, u->f, u->n, reterr);
}

/* A MIG-backed slot's GPU, with MIG mode on (mig.c), before SR-IOV is enabled; @vf and
 * @need_rel as sc_ensure_vf(). *@ret_nv: what NVML said of the GPU, kept for sc_gi_ready()
 * unless @vf is missing: enabling SR-IOV for it wipes the GPU instances NVML listed. */
static int mig_gpu(struct sc *s, const struct gpuh_alloc *a, const struct gpuh_pci_addr *vf, const char *need_rel,
                   struct gpuh_pci_addr *gpu, struct gpuh_nvml_info **ret_nv, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX];
        int r;

        if (sc_alloc_gpu(s, a, gpu) < 0)
                return gpuh_error(reterr, -ENODEV, "%s: %s: its GPU instance's GPU is not known: the mdev's parent is "
                                  "neither a GPU nor one of its VFs", s->vm, gpuh_pci_addr_format(&a->parent, name));
        r = sc_mig_ready(s, gpu, vf, need_rel, ret_nv, reterr);
        if (r == 0 && !sc_pci_exists(s, vf))
                *ret_nv = gpuh_nvml_info_free(*ret_nv);
        return r;
}

/* mdev: used as it is when there (checked), else created on its parent. */
static int prepare_mdev(struct sc *s, const struct gpuh_alloc *a, char **reterr)
{
        struct gpuh_jentry e = { .op = GPUH_JOP_MDEV, .dev = a->parent };
        char rel[160], attr[96];
        _cleanup_(gpuh_nvml_info_freep) struct gpuh_nvml_info *nv = NULL;
        struct gpuh_pci_addr gpu;
        int64_t t0 = gpuh_mono_us();
        int r;

        snprintf(attr, sizeof(attr), "mdev_supported_types/%s", a->mdev_type);
        sc_dev_path(&a->parent, attr, rel, sizeof(rel));
        if (a->gi && (r = mig_gpu(s, a, &a->parent, rel, &gpu, &nv, reterr)) < 0)
                return r;
        if ((r = sc_ensure_vf(s, &a->parent, NULL, rel, reterr)) < 0)
                return r;
        if (sc_mdev_exists(s, a->uuid)) {
                /* there already: checked (type, parent), used as it is, not ours to remove */
                r = gpuh_mdev_create(&s->ch, &a->parent, a->mdev_type, a->uuid, reterr);
                return r == -EEXIST ? -EBUSY : r;
        }
        /* a MIG-backed type's mdev needs its GPU instance, made after SR-IOV is on */
        if (a->gi && (r = sc_gi_ready(s, a, &gpu, nv, reterr)) < 0)
                return r;
        snprintf(e.uuid, sizeof(e.uuid), "%s", a->uuid);
        snprintf(e.mdev_type, sizeof(e.mdev_type), "%s", a->mdev_type);
        r = sc_journal_change(s, &e, reterr);
        if (r < 0)
                return r;
        r = gpuh_mdev_create(&s->ch, &a->parent, a->mdev_type, a->uuid, reterr);
        sc_event(s, "mdev-create", a->uuid, NULL, a->mdev_type, t0, r, reterr ? *reterr : NULL);
        return r;
}

/* The VF's current vGPU type, through the vendor vGPU model (vendor_vgpu.h). Returns 0;
 * -ENODEV (no vGPU interface); -EIO (current_vgpu_type unreadable); -ENOMEM. */
static int current_vgpu_type(struct sc *s, const struct gpuh_pci_addr *vf, unsigned *ret, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX];
        struct gpuh_warnings w = { 0 };
        struct gpuh_vendor_vgpu v = { 0 };
        const char *bad = NULL;
        int r = gpuh_vendor_vgpu_read(s->sysfs->root_fd, vf, &w, &v);

        gpuh_pci_addr_format(vf, name);
        for (size_t i = 0; r > 0 && i < w.n && !bad; i++)
                if (strstr(w.v[i], "current_vgpu_type: "))
                        bad = strstr(w.v[i], "current_vgpu_type: ") + strlen("current_vgpu_type: ");
        if (r == 0)
                r = gpuh_error(reterr, -ENODEV, "%s: %s has no NVIDIA vGPU interface (nvidia/current_vgpu_type): %s",
                               s->vm, name, strerror(ENOENT));
        else if (bad)
                r = gpuh_error(reterr, -EIO, "%s: %s has no NVIDIA vGPU interface (nvidia/current_vgpu_type): %s",
                               s->vm, name, bad);
        else if (r > 0) {
                *ret = v.current_type;
                r = 0;
        }
        gpuh_vendor_vgpu_clear(&v);
        gpuh_warnings_clear(&w);
        return r;
}

/* vendor-vgpu: the VF stays on its driver; its vGPU type is set (journaled with the old one). */
static int prepare_vgpu(struct sc *s, const struct gpuh_alloc *a, char **reterr)
{
        struct gpuh_jentry e = { .op = GPUH_JOP_VGPU, .dev = a->addr, .to_n = a->vgpu_type };
        _cleanup_(gpuh_nvml_info_freep) struct gpuh_nvml_info *nv = NULL;
        struct gpuh_pci_addr gpu;
        _cleanup_free_ char *desc = NULL;
        char name[GPUH_PCI_ADDR_MAX], rel[160], o[16], n[16];
        int64_t t0 = gpuh_mono_us();
        unsigned cur = 0;
        int r;

        gpuh_pci_addr_format(&a->addr, name);
        sc_dev_path(&a->addr, "nvidia/current_vgpu_type", rel, sizeof(rel));
        if (a->gi && (r = mig_gpu(s, a, &a->addr, rel, &gpu, &nv, reterr)) < 0)
                return r;
        if ((r = sc_ensure_vf(s, &a->addr, &a->parent, rel, reterr)) < 0)
                return r;
        r = current_vgpu_type(s, &a->addr, &cur, reterr);
        if (r < 0)
                return r;
        if (sc_vfio_holders(s, sc_pci_group(s, &a->addr), &desc) > 0)
                return gpuh_error(reterr, -EBUSY, "%s: %s is in use (vGPU type %u): %s", s->vm, name, cur, desc);
        if (cur == a->vgpu_type)
                /* set already (by the operator, or by a domain that stopped unreleased) */
                return sc_journal_takeover(s, &e, reterr);
        /* a MIG-backed type needs its GPU instance, made after SR-IOV is on */
        if (a->gi && (r = sc_gi_ready(s, a, &gpu, nv, reterr)) < 0)
                return r;
        e.old = cur;
        r = sc_journal_change(s, &e, reterr);
        if (r < 0)
                return r;
        r = gpuh_vendor_vgpu_set(&s->ch, &a->addr, a->vgpu_type, reterr);
        snprintf(o, sizeof(o), "%u", cur);
        snprintf(n, sizeof(n), "%u", a->vgpu_type);
        sc_event(s, "vgpu-set", name, o, n, t0, r, reterr ? *reterr : NULL);
        return r;
}

static int prepare_device(struct sc *s, struct unit *u, char **reterr)
{
        switch (u->a->kind) {
        case GPUH_ALLOC_PCI:
        case GPUH_ALLOC_VF:
                return prepare_pci(s, u, reterr);
        case GPUH_ALLOC_MDEV:
                return prepare_mdev(s, u->a, reterr);
        case GPUH_ALLOC_VENDOR_VGPU:
                return prepare_vgpu(s, u->a, reterr);
        default:
                return -EINVAL;
        }
}

/* A MIG-backed slot's locks: the GPU's MIG mode (one MIG mode switch, with the VFs disabled
 * and enabled around it, at a time: shared by every slot of the GPU, never a claim) and the
 * GI's placement (the journal keys of mig-mode and gpu-instance). */
static int mig_keys(struct sc *s, const struct gpuh_alloc *a, struct gpuh_lockset *set)
{
        struct gpuh_jentry gi = { .op = GPUH_JOP_GI, .gi_start = a->gi_start }, mig = { .op = GPUH_JOP_MIG };
        char key[SC_KEY_MAX];
        int r;

        if (sc_alloc_gpu(s, a, &gi.dev) < 0)
                return 0;       /* refused when prepared */
        mig.dev = gi.dev;
        if ((r = gpuh_lockset_add(set, gpuh_jentry_key(&gi, key, sizeof(key)))) < 0)
                return r;
        return gpuh_lockset_add(set, gpuh_jentry_key(&mig, key, sizeof(key)));
}

/* Lock names of what @a touches: its functions (and group), its mdev, the PF of a missing VF,
 * a MIG-backed slot's GPU. */
static int device_keys(struct sc *s, const struct gpuh_alloc *a, struct gpuh_lockset *set)
{
        char key[SC_KEY_MAX];
        struct gpuh_pci_addr m[SC_MAX_GROUP], pf;
        const struct gpuh_pci_addr *fn = a->kind == GPUH_ALLOC_MDEV ? &a->parent : &a->addr;
        int r;

        if (a->kind == GPUH_ALLOC_MDEV) {
                snprintf(key, sizeof(key), "mdev-%s", a->uuid);
                if ((r = gpuh_lockset_add(set, key)) < 0)
                        return r;
        } else if ((r = gpuh_lockset_add(set, sc_pci_key(&a->addr, key))) < 0)
                return r;
        if (a->gi && (r = mig_keys(s, a, set)) < 0)
                return r;
        if (!sc_pci_exists(s, fn)) {
                /* may enable SR-IOV: the PF's lock serializes that */
                if ((a->kind == GPUH_ALLOC_VF || a->kind == GPUH_ALLOC_VENDOR_VGPU) && sc_pci_exists(s, &a->parent))
                        pf = a->parent;
                else if (sc_find_pf_of(s, fn, &pf) < 0)
                        return 0;
                return gpuh_lockset_add(set, sc_pci_key(&pf, key));
        }
        if (a->kind == GPUH_ALLOC_PCI || a->kind == GPUH_ALLOC_VF) {
                int n = sc_group_members(s, &a->addr, m, ARRAY_SIZE(m));
                for (int i = 0; i < n; i++)
                        if ((r = gpuh_lockset_add(set, sc_pci_key(&m[i], key))) < 0)
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

/* ---- the steps of a prepare ------------------------------------------------------------- */

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

/* The document, and the dry run's plan. Returns 1 to go on; 0: not ours (unreadable, and it
 * cannot carry a GPU); < 0. */
static int prepare_parse(struct prep *p, const char *xml, size_t len, char **reterr)
{
        const struct gpuh_sc_opts *o = p->s.o;
        int r = gpuh_domxml_parse(xml, len, &p->d, reterr);

        if (r < 0) {
                /* what does not parse, but cannot carry a GPU, is not ours to refuse */
                if (r == -ENOMEM || raw_may_involve_gpu(o->cfg, xml, len))
                        return r;
                gpuh_log(LOG_INFO, "a domain XML without GPUs that gpuhooks cannot read (%s): left alone",
                         *reterr ? *reterr : strerror(-r));
                free(*reterr);
                *reterr = NULL;
                return 0;
        }
        p->s.vm = p->d->name;
        if (o->dry_run && !(p->s.plan = sc_plan_new(p->d->name, "prepare")))
                return -ENOMEM;
        return 1;
}

/* Does it involve a GPU: a request, a rule, a record or a GPU hostdev? Nothing: the common
 * case, left untouched (0). A broken configuration refuses only now, known to want GPUs. */
static int prepare_involved(struct prep *p, char **reterr)
{
        const struct gpuh_sc_opts *o = p->s.o;
        const struct gpuh_domxml *d = p->d;
        bool gpu = false;
        int r;

        if (d->n_requests > 0)
                p->asked = "its gpuhooks:request element";
        else
                for (size_t i = 0; i < o->cfg->n_rules && !p->asked; i++)
                        if (gpuh_rule_matches(&o->cfg->rules[i].match, d->name, &d->cs))
                                p->asked = "a transformer.rules entry of the configuration";
        if (d->n_hostdevs > 0 && !d->has_record && !p->asked) {
                r = sc_open_sysfs(&p->s, reterr);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < d->n_hostdevs && !gpu; i++)
                        gpu = sc_gpu_hostdev(&p->s, &d->hostdevs[i]);
        }
        if (!d->has_record && !p->asked && !gpu)
                return 0;
        if (o->config_error)
                return gpuh_error(reterr, -EBADMSG, "%s: refused: it asks for GPUs (%s) and the configuration is "
                                  "unusable: %s", d->name, p->asked ? p->asked : d->has_record ?
                                  "its gpuhooks allocation record" : "its GPU hostdevs", o->config_error);
        return 1;
}

/* The record against the document: present, named by VMNAME, every device's hostdev there. */
static int prepare_check_record(struct prep *p, char **reterr)
{
        const struct gpuh_sc_opts *o = p->s.o;
        const struct gpuh_domxml *d = p->d;
        char a[GPUH_PCI_ADDR_MAX];

        if (!d->has_record || d->n_record == 0)
                return gpuh_error(reterr, -ENODEV, "%s asks for GPUs (%s) but its XML carries no gpuhooks allocation "
                                  "record: the transformer did not run, refusing to start it without them", d->name,
                                  p->asked ? p->asked : "an empty allocation record");
        /* VMNAME and <name> must be one name: release (VMNAME only) finds the journal by it */
        if (o->vmname && !streq(o->vmname, d->name))
                return gpuh_error(reterr, -EBADMSG, "the domain XML names the domain '%s' but libvirt's VMNAME argument "
                                  "is '%s': refusing to start it", d->name, o->vmname);
        p->managed = calloc(d->n_record, sizeof(bool));
        if (!p->managed)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_record; i++) {
                const struct gpuh_pci_addr *miss = missing_hostdev(d, &d->record[i], &p->managed[i]);

                if (miss)
                        return gpuh_error(reterr, -ENODEV, "%s: its allocation record names %s but the XML has no "
                                          "hostdev for it", d->name, d->record[i].kind == GPUH_ALLOC_MDEV ?
                                          d->record[i].uuid : gpuh_pci_addr_format(miss, a));
        }
        return 0;
}

/* The record verified (before a lock file is made for it); the domain's lock, then the device
 * locks: those of our own journal (an unfinished earlier prepare) and of every record device. */
static int prepare_lock(struct prep *p, char **reterr)
{
        struct sc *s = &p->s;
        int r;

        r = sc_open(s, reterr);
        if (r == 0)
                r = sc_verify_record(s, p->d, reterr);
        if (r == 0)
                r = sc_vm_lock(s, s->cfg->lock_timeout_ms, reterr);
        if (r < 0)
                return r;
        /* our own journal, as an unfinished earlier prepare left it: only we append to it */
        if (gpuh_journal_load(s->jfd, p->d->name, &s->j) == 0)
                for (size_t i = 0; i < s->j->n; i++) {
                        char key[SC_KEY_MAX];
                        if ((r = gpuh_lockset_add(&s->locks, gpuh_jentry_key(&s->j->e[i], key, sizeof(key)))) < 0)
                                return r;
                }
        for (size_t i = 0; i < p->d->n_record; i++)
                if ((r = device_keys(s, &p->d->record[i], &s->locks)) < 0)
                        return r;
        return sc_take_locks(s, reterr);
}

/* Under the locks: the reservation, the other journals, the occupancy of every hostdev. */
static int prepare_check_state(struct prep *p, char **reterr)
{
        struct sc *s = &p->s;
        int r;

        r = sc_host_lock(s, reterr);
        if (r < 0)
                return r;
        r = sc_check_reservation(s, p->d, reterr);
        if (r == 0)
                r = sc_load_journals(s, p->d->uuid, reterr);
        sc_host_unlock(s);
        if (r == 0)
                r = sc_check_journals(s, reterr);
        if (r == 0)
                r = sc_check_hostdevs(s, p->d, reterr);
        if (r == 0)
                p->done_before = s->j->n;
        return r;
}

/* Plan first, change nothing: every group checked, every holder looked for (one scan of /proc
 * for all devices), before the first write. */
static int prepare_plan(struct prep *p, char **reterr)
{
        struct sc *s = &p->s;
        const struct gpuh_domxml *d = p->d;
        char **nodes = NULL;
        int r = 0;

        p->units = calloc(d->n_record, sizeof(*p->units));
        if (!p->units)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_record && r == 0; i++) {
                struct unit *u = &p->units[i];
                const struct gpuh_alloc *a = &d->record[i];
                char *dup;

                u->a = a;
                u->managed = p->managed[i];
                if ((a->kind == GPUH_ALLOC_PCI || a->kind == GPUH_ALLOC_VF) && sc_pci_exists(s, &a->addr)) {
                        r = plan_functions(s, a, u->f, ARRAY_SIZE(u->f), &u->n, reterr);
                        u->planned = r == 0;
                        if (r == 0 && !u->managed)
                                r = sc_function_nodes(s, u->f, u->n, &u->nodes);
                        for (char **q = u->nodes; r == 0 && q && *q; q++)
                                r = (dup = strdup(*q)) ? strv_consume(&nodes, dup) : -ENOMEM;
                } else if (a->kind == GPUH_ALLOC_VENDOR_VGPU && sc_pci_exists(s, &a->addr))
                        r = sc_add_vfio_node(s, sc_pci_group(s, &a->addr), &nodes);
        }
        if (r == 0)
                r = sc_scan_holders(s, nodes);
        else
                strv_free(nodes);
        if (r < 0 && !*reterr)
                gpuh_error(reterr, r, "%s: cannot look for processes using the devices in '%s': %s", d->name,
                           s->proc_root, strerror(-r));
        return r;
}

/* Each device in record order, within the run's deadline: libvirtd waits for prepare without
 * limit. */
static int prepare_devices(struct prep *p, char **reterr)
{
        const struct gpuh_config *cfg = p->s.cfg;
        const struct gpuh_domxml *d = p->d;
        int r = 0;

        for (size_t i = 0; i < d->n_record; i++) {
                if (gpuh_mono_us() - p->t0 > (int64_t) cfg->prepare_timeout_ms * 1000)
                        return gpuh_error(reterr, -ETIMEDOUT, "%s: prepare ran past its deadline "
                                          "(state_change.prepare_timeout_ms %d) with %zu of %zu devices ready: "
                                          "refusing the start", d->name, cfg->prepare_timeout_ms, i, d->n_record);
                r = prepare_device(&p->s, &p->units[i], reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Undo everything, in reverse: the devices end as they were before the start. */
static void prepare_rollback(struct prep *p, char **reterr)
{
        struct sc *s = &p->s;
        _cleanup_free_ char *err = NULL;
        size_t n = s->j->n;
        int k = sc_replay(s, &err);
        char *m = NULL;

        if (k == 0)
                k = sc_commit_journal(s, SC_FREE_ALWAYS, &err);
        else
                sc_commit_journal(s, SC_FREE_ALWAYS, NULL);
        sc_event(s, "rollback", NULL, NULL, NULL, p->t0, k, err);
        if (k < 0 && *reterr && asprintf(&m, "%s; rollback incomplete (%zu of %zu changes kept in the journal): %s",
                                         *reterr, s->j->n, n, err ? err : strerror(-k)) >= 0) {
                free(*reterr);
                *reterr = m;
        }
}

/* Everything a prepare does once the domain is known to involve GPUs. */
static int prepare_gpus(struct prep *p, char **reterr)
{
        struct sc *s = &p->s;
        int r;

        if (!p->d->has_record && !p->asked) {
                /* CloudStack's own GPU hostdevs, no record (the transformer refused it, or is
                 * not installed): libvirt binds them; they must be no other domain's */
                r = sc_open(s, reterr);
                return r < 0 ? r : sc_check_hostdevs(s, p->d, reterr);
        }
        r = prepare_check_record(p, reterr);
        if (r == 0)
                r = prepare_lock(p, reterr);
        if (r == 0)
                r = prepare_check_state(p, reterr);
        if (r == 0)
                r = prepare_plan(p, reterr);
        if (r < 0)
                return r;
        r = prepare_devices(p, reterr);
        if (r < 0 && !s->o->dry_run && s->j->n > 0)
                prepare_rollback(p, reterr);
        else if (r == 0 && s->j->n > p->done_before)
                sc_event(s, "prepare", NULL, NULL, NULL, p->t0, 0, NULL);
        return r;
}

int gpuh_sc_prepare(const struct gpuh_sc_opts *o, const char *xml, size_t len, json_object **ret_plan, char **reterr)
{
        struct prep p = { .t0 = gpuh_mono_us() };
        int r;

        *reterr = NULL;
        if (ret_plan)
                *ret_plan = NULL;
        r = sc_opts_check(o, reterr);
        if (r < 0)
                return r;
        sc_init(&p.s, o, NULL);
        r = prepare_parse(&p, xml, len, reterr);
        if (r > 0)
                r = prepare_involved(&p, reterr);
        if (r > 0)
                r = prepare_gpus(&p, reterr);

        for (size_t i = 0; p.units && i < p.d->n_record; i++)
                strv_free(p.units[i].nodes);
        free(p.units);
        free(p.managed);
        if (r < 0 && p.d)
                sc_prefix_vm(p.d->name, reterr);
        sc_plan_finish(&p.s, r, reterr);
        if (ret_plan)
                *ret_plan = TAKE_PTR(p.s.plan);
        if (p.s.plan)
                json_object_put(p.s.plan);
        if (r < 0 && !*reterr && r != -ENOMEM)
                gpuh_error(reterr, r, "%s: %s", p.d && p.d->name ? p.d->name : "domain", strerror(-r));
        sc_done(&p.s);
        gpuh_domxml_free(p.d);
        return r < 0 ? r : 0;
}
