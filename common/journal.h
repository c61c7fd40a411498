/* SPDX-License-Identifier: Apache-2.0 */
/* journal.h: a domain's write-ahead journal of the device changes made for it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mdev.h"
#include "pci_addr.h"
#include "warn.h"

/*
 * STATE_DIR/journal/NAME.journal, JSON Lines (docs/state-change.md): a header line, then one
 * line per change, appended and fsync(2)ed before the change is made. Replayed in reverse it
 * puts every device back as it was. NAME is the domain name encoded by gpuh_domname_encode();
 * the header holds the name itself. Every function takes the journal directory as an fd
 * (gpuh_state_subdir()) and opens files in it relative to it, never through a link; a
 * negative fd is a directory that does not exist (a dry run's): nothing is journaled.
 */

enum gpuh_jop {
        GPUH_JOP_DRIVER,        /* a function moved to another driver */
        GPUH_JOP_MDEV,          /* an mdev created */
        GPUH_JOP_VGPU,          /* a vendor vGPU type set on a VF */
        GPUH_JOP_SRIOV,         /* VFs enabled on a PF */
        GPUH_JOP_GI,            /* a MIG GPU instance created on a PF (NVML) */
        GPUH_JOP_MIG,           /* MIG mode switched on a PF (NVML) */
        _GPUH_JOP_MAX,
};

#define GPUH_JOURNAL_NAME_MAX 64

struct gpuh_jentry {
        unsigned seq;                   /* 1, 2, ... in the order written */
        enum gpuh_jop op;
        struct gpuh_pci_addr dev;       /* DRIVER, VGPU, SRIOV: the function; MDEV: its parent;
                                         * GI, MIG: the GPU (PF) */
        char uuid[GPUH_UUID_STR_LEN + 1];       /* MDEV */
        char mdev_type[GPUH_JOURNAL_NAME_MAX];  /* MDEV */
        char driver[GPUH_JOURNAL_NAME_MAX];     /* DRIVER: bound driver before, "" none */
        char override[GPUH_JOURNAL_NAME_MAX];   /* DRIVER: driver_override before, "" unset */
        char to[GPUH_JOURNAL_NAME_MAX];         /* DRIVER: the driver it was moved to */
        unsigned old;                   /* VGPU: type before (0 none); SRIOV: sriov_numvfs before;
                                         * MIG: mode before (0 off, 1 on) */
        unsigned to_n;                  /* VGPU: type set; SRIOV: sriov_numvfs set; MIG: mode set */
        unsigned gi_profile;            /* GI: NVML GPU-instance profile id */
        unsigned gi_start, gi_size;     /* GI: its placement (first memory slice, slices) */
        unsigned mig_vfs;               /* MIG: the GPU's VFs enabled before (sriov_numvfs): the
                                         * driver changes MIG mode only with them off, so the switch
                                         * disables and enables them again, and so does its undo */
};

struct gpuh_journal {
        char *domain;
        char *uuid;                     /* the domain's UUID, or NULL */
        int64_t created;                /* seconds since the epoch */
        struct gpuh_jentry *e;
        size_t n;
        bool torn;                      /* the file ends in a partial line (a crash mid-append) */
        bool on_disk;                   /* read from its file or written to it: appends go there; a
                                         * journal made in memory never appends to a file it finds */
};

/**
 * gpuh_jop_to_string / _from_string: "driver", "mdev", "vgpu-type", "sriov", "gpu-instance",
 * "mig-mode" (a journal entry's "op", docs/state-change.md); NULL for a value outside the enum; _from_string: -EINVAL.
 */
const char *gpuh_jop_to_string(enum gpuh_jop op);
int gpuh_jop_from_string(const char *s);

/**
 * gpuh_jentry_key:
 * @e: an entry
 * @buf, @size: receive the device key the entry is about, which is also its lock's name:
 *              "pci-DDDD:BB:SS.F" (driver, vgpu-type, sriov), "mdev-UUID", "gi-DDDD:BB:SS.F-START"
 *              (gpu-instance: the GPU and the placement's first slice, unique on a GPU) or
 *              "mig-DDDD:BB:SS.F" (mig-mode)
 *
 * Returns: @buf.
 */
char *gpuh_jentry_key(const struct gpuh_jentry *e, char *buf, size_t size);

/**
 * gpuh_jop_gpu_wide:
 * @op: an operation
 *
 * Returns: whether an entry of @op changes a whole GPU's state (sriov: its VFs; mig-mode: its
 *          MIG mode, switched with the VFs off): undone after every other entry, with every
 *          VF's lock held (docs/state-change.md, "release end").
 */
bool gpuh_jop_gpu_wide(enum gpuh_jop op);

/**
 * gpuh_jkey_claims:
 * @key: a device key (gpuh_jentry_key())
 *
 * Returns: whether @key names what one domain holds (a function, an mdev, a GPU instance's
 *          placement); false for a GPU's MIG mode ("mig-…"), which every slot on the GPU
 *          shares: its lock only serializes switches, another domain's entry for it is no use.
 */
bool gpuh_jkey_claims(const char *key);

struct json_object;

/** gpuh_jentry_json: the entry as its journal line holds it (without "seq"); NULL on ENOMEM. */
struct json_object *gpuh_jentry_json(const struct gpuh_jentry *e);

/**
 * gpuh_journal_load:
 * @dirfd: the journal directory
 * @domain: the domain name (gpuh_domname_ok())
 * @ret: the journal, freed with gpuh_journal_free()
 *
 * A last line without its newline is ignored (and @ret->torn set): it was being appended when
 * the writer died, before the change it announces was made.
 *
 * Returns: 0; -ENOENT when the domain has no journal; -EBADMSG for any other malformed line
 *          (nothing is guessed), or a header naming another domain; -EINVAL (bad name);
 *          -ELOOP (a link); -ENOMEM; -errno of the read.
 */
int gpuh_journal_load(int dirfd, const char *domain, struct gpuh_journal **ret);

/**
 * gpuh_journal_list:
 * @dirfd: the journal directory
 * @ret: the domain names that have a journal, NULL-terminated, in the order of their file
 *       names; strv_free()
 * @w: receives one warning per entry that is no journal gpuhooks writes: a name that does not
 *     decode (gpuh_domname_decode()), or a hashed one whose header names a domain it does not
 *     encode. The temporary files of gpuh_journal_save() are passed over, and so is a journal
 *     with a hashed name and not one whole line (its writer died before it changed anything;
 *     its domain's release removes it), with a log message.
 *
 * Names are decoded, nothing is skipped silently: a caller that finds @w grown knows that a
 * journal it cannot attribute may name devices.
 *
 * Returns: the number of names; 0 when @dirfd < 0; -ENOMEM; -errno of the listing.
 */
int gpuh_journal_list(int dirfd, char ***ret, struct gpuh_warnings *w);

/**
 * gpuh_journal_new:
 * @domain, @uuid: the domain (@uuid may be NULL)
 * @ret: an empty journal in memory, written by the first gpuh_journal_append() or
 *       gpuh_journal_save()
 *
 * Returns: 0; -EINVAL (bad name); -ENOMEM.
 */
int gpuh_journal_new(const char *domain, const char *uuid, struct gpuh_journal **ret);

/**
 * gpuh_journal_append:
 * @dirfd: the journal directory
 * @j: the journal
 * @e: the entry; its seq is set to one more than the last
 *
 * Appends one line with O_APPEND and fsync(2)s the file (and, when the file is new, writes the
 * header and fsyncs the directory), then adds @e to @j. A torn tail is rewritten away first.
 * A journal not read from its file (@j->on_disk false) only ever creates it: a file already
 * there is another domain's (two long names meeting in one hashed file name) or one it did
 * not read, and is left alone.
 *
 * Returns: 0; -EEXIST (that file); -EBADF (@dirfd < 0); -E2BIG (the file would grow past the
 *          4 MiB a journal is read up to); -errno of open/write/fsync; -ENOMEM.
 */
int gpuh_journal_append(int dirfd, struct gpuh_journal *j, struct gpuh_jentry *e);

/**
 * gpuh_journal_save:
 * @dirfd, @j: the journal as it must now be (entries dropped)
 *
 * Replaces the file atomically (fsynced, gpuh_statefile_replace()); a journal without entries
 * is removed instead.
 *
 * Returns: 0; -EBADF (@dirfd < 0); -errno; -ENOMEM.
 */
int gpuh_journal_save(int dirfd, struct gpuh_journal *j);

/**
 * gpuh_journal_remove:
 * Removes @domain's journal file from @dirfd, unless it holds another domain's journal.
 *
 * Returns: 0, also when there was none; -EINVAL (bad name); -errno of unlinkat(2).
 */
int gpuh_journal_remove(int dirfd, const char *domain);

/** gpuh_journal_drop: removes entry @i from @j (in memory). */
void gpuh_journal_drop(struct gpuh_journal *j, size_t i);

/**
 * gpuh_journal_find:
 * @j: a journal
 * @key: a device key (gpuh_jentry_key())
 * @op: the operation, or -1 for any
 *
 * Returns: the index of the first (oldest) entry about @key, or -1.
 */
ssize_t gpuh_journal_find(const struct gpuh_journal *j, const char *key, int op);

/** gpuh_journal_free: accepts NULL; returns NULL. */
struct gpuh_journal *gpuh_journal_free(struct gpuh_journal *j);
static inline void gpuh_journal_freep(struct gpuh_journal **j) { gpuh_journal_free(*j); }
