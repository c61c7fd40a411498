/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sctest.h: what the state-change unit tests share: fake hosts built on the fake kernel
 * (fakekernel.h), the hook's options pointing at them, and domain XMLs written by the
 * library's own codec (gpuh_domxml_apply(), the transformer's output) from allocation records.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "alloc.h"
#include "config.h"
#include "fakekernel.h"
#include "journal.h"
#include "statechange.h"

struct sct {
        struct fk *k;
        struct gpuh_config *cfg;        /* the defaults, short deadlines (sct_new()) */
        struct gpuh_sc_opts o;          /* sysfs, state, dev and proc in the fake host; no libvirt,
                                         * the domain XML files in @xml_dir (none: nothing runs) */
        char *xml_dir;
        char *xml_dirs[2];
        char *events;                   /* the log, one message a line (sct_events()) */
        size_t n_events;
};

/**
 * sct_new:
 * Returns: a fake kernel with an empty host, the default configuration with deadlines short
 *          enough for a read-back that never succeeds (write_timeout_ms 100, the mdev grace
 *          20 ms) and enable_sriov on, and the options; aborts when any cannot be made.
 */
struct sct *sct_new(void);

/** sct_free: frees it all (the fake kernel's tree too); accepts NULL; returns NULL. */
struct sct *sct_free(struct sct *t);

/*
 * The fake hosts, each a small version of a fixture host of fixtures/hosts:
 *
 * sct_host_rtx3080 (consumer-rtx3080): GPU 0000:05:00.0 (nvidia) with its HDMI audio
 *   0000:05:00.1 (snd_hda_intel), IOMMU group 24; GPU 0000:04:00.0 (nvidia) in group 15 with a
 *   NIC 0000:03:00.0 (igb) and the bridge 0000:00:03.1 (pcieport).
 * sct_host_m60 (dell-r740-m60-mdev): GPU 0000:3d:00.0 on nvidia, which registers its mdev types
 *   nvidia-18 (4 instances) and nvidia-22 (2), IOMMU group 30; its node dev/nvidia0.
 * sct_host_a2 (hpe-dl380g9-a2-vgpu): A2 0000:08:00.0 (nvidia) with 4 VFs 0000:08:00.4 to
 *   0000:08:00.7 (@vfs_enabled, else none yet), each with the mdev types nvidia-746, nvidia-747
 *   (one vGPU per VF).
 * sct_host_l40s (l40s-vendor-vgpu): L40S 0000:af:00.0 (nvidia) with 4 VFs 0000:af:00.4 to
 *   0000:af:00.7 (@vfs_enabled, else none yet) carrying NVIDIA's vendor vGPU interface: types
 *   1148 (L40S-2Q), 1152 (L40S-8Q), 1155 (L40S-24Q), a 48 GB GPU.
 * sct_host_s7150 (amd-mxgpu-instinct): FirePro S7150 0000:83:00.0 (gim) with 4 plain VFs
 *   0000:83:02.0 to 0000:83:02.3 (@vfs_enabled, else none yet), unbound (no VF driver).
 */
void sct_host_rtx3080(struct sct *t);
void sct_host_m60(struct sct *t);
void sct_host_a2(struct sct *t, bool vfs_enabled);
void sct_host_l40s(struct sct *t, bool vfs_enabled);
void sct_host_s7150(struct sct *t, bool vfs_enabled);

/* Devices of an allocation record (request 0). @companion may be NULL. */
struct gpuh_alloc sct_pci(const char *addr, const char *companion);
struct gpuh_alloc sct_vf(const char *addr, const char *parent);
struct gpuh_alloc sct_mdev(const char *uuid, const char *parent, const char *type);
struct gpuh_alloc sct_vgpu(const char *addr, const char *parent, unsigned type);

/**
 * sct_domain:
 * @name, @uuid: the domain
 * @a, @n: its allocation record; @n 0: a domain without GPUs
 *
 * Returns: the domain XML as the transformer writes it (the hostdevs and the record,
 *          gpuh_domxml_apply()); free(). Aborts on failure.
 */
char *sct_domain(const char *name, const char *uuid, const struct gpuh_alloc *a, size_t n);

/**
 * sct_domain_plain:
 * @name, @uuid: the domain
 * @pci: PCI functions given by CloudStack's own hostdevs ("0000:05:00.0"), NULL-terminated, or NULL
 * @mdevs: mdev UUIDs given the same way, or NULL
 * @request: our request element (one passthrough GPU) in its metadata
 *
 * Returns: a domain XML without an allocation record (the transformer did not run); free().
 */
char *sct_domain_plain(const char *name, const char *uuid, const char *const *pci, const char *const *mdevs,
                       bool request);

/** sct_strip_hostdevs: @xml without its <hostdev> elements (its record kept); free(). */
char *sct_strip_hostdevs(const char *xml);

/** sct_err: frees *@err, for a call that sets it afresh: gpuh_sc_stopped(..., sct_err(&err)). */
static inline char **sct_err(char **err)
{
        free(*err);
        *err = NULL;
        return err;
}

/** sct_prepare: gpuh_sc_prepare() of @xml with @t's options (VMNAME not given); *@err as it. */
int sct_prepare(struct sct *t, const char *xml, char **err);

/** sct_release: gpuh_sc_release() of @domain with @t's options. */
int sct_release(struct sct *t, const char *domain, char **err);

/** sct_reconcile: gpuh_sc_reconcile() with @t's options (min age 0). */
int sct_reconcile(struct sct *t, char **err);

/**
 * sct_journal:
 * @t: the test
 * @domain: a domain
 * @e, @n: entries appended to its journal (made when it has none), as prepare appends them
 *
 * Aborts on failure.
 */
void sct_journal(struct sct *t, const char *domain, const struct gpuh_jentry *e, size_t n);

/** sct_drop_reservation: removes @domain's reservation (it expired: its journal is stale). */
void sct_drop_reservation(struct sct *t, const char *domain);

/**
 * sct_running:
 * @t, @xml: libvirt's status file of a running domain in @t's domain XML directory, made
 *           from @xml (`<domstatus state='running'>` around it), so that onStop and reconcile
 *           see it run; NULL @xml removes the file of @name
 */
void sct_running(struct sct *t, const char *name, const char *xml);

/** sct_has_journal, sct_has_reservation: whether @domain has one in the state directory. */
bool sct_has_journal(struct sct *t, const char *domain);
bool sct_has_reservation(struct sct *t, const char *domain);

/** sct_quarantined: whether the function @bdf is quarantined. */
bool sct_quarantined(struct sct *t, const char *bdf);

/** sct_events: how often @needle occurs in the messages logged since sct_new(). */
size_t sct_events(struct sct *t, const char *needle);

/**
 * sct_assert_same:
 * Fails the test (cmocka) when the snapshots differ, printing the first difference.
 */
#define sct_assert_same(a, b)                                                   \
        do {                                                                    \
                char _diff[2048];                                               \
                if (!fk_snapshot_same((a), (b), _diff, sizeof(_diff)))          \
                        fail_msg("the host changed:\n%s", _diff);               \
        } while (0)
