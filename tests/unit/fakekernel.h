/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fakekernel.h: an in-process fake kernel for unit tests of the state-change code.
 *
 * As libvirt's tests/virpcimock.c does for its PCI code, the tests build a fake host and let the
 * real library act on it, without root, FUSE or a device:
 *
 * - the host is a directory tree in a temporary directory laid out as sysfs is
 *   (devices/pciDDDD:00/BDF with its attributes and links, bus/pci/devices, bus/pci/drivers,
 *   kernel/iommu_groups, bus/mdev/devices), plus a dev/ (vfio nodes) and a proc/ (processes
 *   holding them) for the holder checks;
 * - every sysfs write of the library goes through the writer of common/sysfs.h (change.c makes
 *   it, the only place that writes devices). The test binaries are linked with
 *   -Wl,--wrap=gpuh_writer_new,--wrap=gpuh_writer_write,--wrap=gpuh_writer_write_at,
 *   --wrap=gpuh_writer_settle,--wrap=gpuh_writer_free (tests/CMakeLists.txt, gpuh_fake_test()):
 *   the writes reach this file instead of a child process, and are applied to the tree with the
 *   kernel's semantics: driver_override, drivers/D/unbind and bind, drivers_probe (override
 *   first, else the function's ID-table driver), vfio-pci's refusals, mdev create and remove
 *   with available_instances, NVIDIA's current_vgpu_type with the creatable lists of the sibling
 *   VFs, sriov_numvfs creating and removing VFs. The rules are those of the FUSE emulator
 *   (tests/emu/README.md, with their kernel sources), which stays the outer, end-to-end layer.
 * - faults are injected per write: an errno once or always, at the Nth write, or a hang. A hung
 *   write returns -ETIMEDOUT at once, as the writer does at its deadline, holds the device's
 *   lock (later writes to that device wait behind it: they time out too) and lands, fails or
 *   stays in flight when the library waits for its late writes (gpuh_writer_settle()), as the
 *   test chose: no sleeps, no timing.
 *
 * One fake kernel exists at a time in a process (the wrappers find it); the writes the library
 * makes while none exists fail with -ENXIO.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fk;

/**
 * fk_new:
 * @ret: the fake host, freed with fk_free()
 *
 * Makes a temporary directory in $GPUH_FK_TMPDIR, else /dev/shm (tmpfs), else /tmp (removed
 * by fk_free() unless GPUH_TEST_KEEP is set) holding
 * sys/ (an empty host: bus/pci/{devices,drivers,drivers_probe}, kernel/iommu_groups, the drivers
 * vfio-pci and pcieport), dev/ (dev/vfio/vfio), proc/ (no process) and state/ (absent: the
 * state directory the hook creates).
 *
 * Returns: 0; -EBUSY when another fake kernel exists; -errno.
 */
int fk_new(struct fk **ret);

/** fk_free: removes the tree; accepts NULL; returns NULL. */
struct fk *fk_free(struct fk *k);

/** fk_sys, fk_dev, fk_proc, fk_state, fk_dir: the directories (absolute paths). */
const char *fk_sys(const struct fk *k);
const char *fk_dev(const struct fk *k);
const char *fk_proc(const struct fk *k);
const char *fk_state(const struct fk *k);
const char *fk_dir(const struct fk *k);

/* ---- building a host ---------------------------------------------------------------------- */

struct fk_fn {
        const char *bdf;                /* "0000:05:00.0" */
        uint16_t vendor, device;
        uint32_t class_code;            /* 24 bit, 0x030000 */
        int group;                      /* IOMMU group, < 0: none (IOMMU off) */
        const char *driver;             /* bound now, NULL: none */
        const char *natural;            /* what its ID table binds (drivers_probe without an
                                         * override); NULL: @driver */
        const char *override;           /* driver_override, NULL: unset ("(null)") */
        bool owns_types;                /* @natural registers its mdev_supported_types and nvidia/:
                                         * they go while it is unbound (mdev_unregister_parent) */
};

/**
 * fk_add_fn:
 * @k: the fake host
 * @f: the function
 *
 * Adds devices/pciDDDD:00/BDF (vendor, device, class, config, driver_override, numa_node,
 * iommu_group, driver), its bus/pci/devices link, its IOMMU group and its driver (made when
 * new, with bind, unbind, new_id, remove_id).
 *
 * Returns: 0; -EEXIST; -EINVAL (bad address); -errno.
 */
int fk_add_fn(struct fk *k, const struct fk_fn *f);

/**
 * fk_add_mdev_type:
 * @k, @bdf: a function added before (a PF, or a VF template: fk_sriov's @types)
 * @type: the type directory, "nvidia-746"
 * @name: its name file, NULL: none
 * @avail: available_instances
 *
 * Returns: 0; -errno.
 */
int fk_add_mdev_type(struct fk *k, const char *bdf, const char *type, const char *name, int avail);

/**
 * fk_add_mdev:
 * @k, @parent, @type, @uuid: an mdev that exists already, made as a create write makes it
 *
 * Returns: 0; the create's -errno.
 */
int fk_add_mdev(struct fk *k, const char *parent, const char *type, const char *uuid);

struct fk_vgpu_type {
        unsigned id;                    /* 1148 */
        const char *name;               /* "NVIDIA L40S-2Q" */
        unsigned fb_mb;                 /* its framebuffer */
};

struct fk_sriov {
        unsigned total;                 /* sriov_totalvfs */
        unsigned offset, stride;        /* sriov_offset, sriov_stride */
        unsigned enabled;               /* VFs enabled now (sriov_numvfs) */
        uint16_t vf_device;             /* sriov_vf_device, the VFs' device id */
        uint32_t vf_class;              /* the VFs' class */
        const char *vf_driver;          /* what binds a new VF (sriov_drivers_autoprobe 1), NULL none */
        /* each VF carries these mdev types, one vGPU per VF (NVIDIA SR-IOV vGPU, the A2) */
        const char *const *types;       /* NULL-terminated type directory names */
        int type_avail;                 /* available_instances of each on a free VF */
        /* or NVIDIA's vendor-specific vGPU (the L40S): nvidia/ on each VF */
        const struct fk_vgpu_type *vgpu;
        size_t n_vgpu;
        unsigned gpu_fb_mb;             /* the GPU's framebuffer; 0: the largest type's */
};

/**
 * fk_sriov:
 * @k, @pf: a function added before, on its driver
 * @s: its SR-IOV capability and what its VFs look like
 *
 * Writes the PF's sriov_* attributes and keeps @s as the template of the VFs the kernel makes
 * (VF i at routing ID PF + offset + i * stride, each in an IOMMU group of its own, drivers/pci/
 * iov.c pci_iov_virtfn_bus/devfn); makes @s->enabled of them now.
 *
 * Returns: 0; -errno.
 */
int fk_sriov(struct fk *k, const char *pf, const struct fk_sriov *s);

/**
 * fk_hold:
 * @k: the fake host
 * @pid: a process id that is not the test's
 * @comm: its name
 * @node: a node under dev/ ("vfio/24", "nvidia0"), made (an empty file) when missing
 *
 * Makes proc/PID/comm and proc/PID/fd/N leading to the node: a process holding it.
 *
 * Returns: 0; -errno.
 */
int fk_hold(struct fk *k, int pid, const char *comm, const char *node);

/** fk_unhold: the process @pid is gone (proc/PID removed). */
void fk_unhold(struct fk *k, int pid);

/* ---- faults ------------------------------------------------------------------------------- */

/*
 * Paths in rules are fnmatch(3) globs ('*' also matches '/') against the path a write arrived
 * on relative to sys/, with links resolved ("bus/pci/drivers/nvidia/unbind",
 * "devices/pci0000:00/0000:05:00.0/driver_override"), and against its alias, the path the
 * library names in its messages: "bus/pci/devices/BDF/FILE" for a function's attribute,
 * "bus/mdev/devices/UUID/FILE" for an mdev's.
 */

/**
 * fk_fail:
 * @k: the fake host
 * @path: glob of the write's path
 * @value: glob of the value written, NULL: any
 * @err: the errno the write fails with (positive), without any effect
 * @times: how many writes it applies to, < 0: all
 */
void fk_fail(struct fk *k, const char *path, const char *value, int err, int times);

/**
 * fk_fail_nth:
 * @k: the fake host
 * @n: the write, counted from 0 among the writes made from now on
 * @err: its errno (positive)
 */
void fk_fail_nth(struct fk *k, int n, int err);

/**
 * fk_kwrite:
 * @k, @rel, @value: a write to sys/@rel, as another program makes it: with the kernel's
 *                   semantics, the faults and the log
 *
 * Returns: 0; -errno as the kernel answers.
 */
int fk_kwrite(struct fk *k, const char *rel, const char *value);

enum fk_hang_end {
        FK_HANG_LANDS,          /* the write lands when the library waits for it (settle) */
        FK_HANG_FAILS,          /* it fails without effect when waited for */
        FK_HANG_STUCK,          /* it stays in flight until fk_land() */
};

/**
 * fk_hang:
 * @k, @path, @value: as fk_fail()
 * @end: how the held write ends
 * @times: as fk_fail()
 *
 * A matching write takes its device's lock (as its store() does: the function for
 * driver_override, bind, unbind, drivers_probe of an unbound function, sriov_numvfs; the mdev
 * for its remove), returns -ETIMEDOUT (the writer's deadline) and stays in flight; writes that
 * need that lock meanwhile are in flight behind it (-ETIMEDOUT too), a drivers_probe of a
 * function still bound returns at once having done nothing (bus.c drivers_probe_store).
 */
void fk_hang(struct fk *k, const char *path, const char *value, enum fk_hang_end end, int times);

/**
 * fk_hang_nth:
 * @k: the fake host
 * @n: the write, counted from 0 among the writes made from now on
 * @end: as fk_hang()
 */
void fk_hang_nth(struct fk *k, int n, enum fk_hang_end end);

/** fk_clear_faults: no rule applies any more (writes in flight stay). */
void fk_clear_faults(struct fk *k);

/** fk_land: every write in flight ends now, in order, as its rule says (a stuck one lands). */
void fk_land(struct fk *k);

/** fk_in_flight: how many writes are in flight. */
size_t fk_in_flight(const struct fk *k);

/* ---- what happened ------------------------------------------------------------------------ */

struct fk_write {
        char path[256];                 /* the alias (see above), else the resolved path */
        char value[128];
        int result;                     /* 0, -errno; -ETIMEDOUT for one held */
};

/** fk_writes: the writes made since fk_new() (or fk_forget_writes()); @n receives their count. */
const struct fk_write *fk_writes(const struct fk *k, size_t *n);

/** fk_forget_writes: empties that log. */
void fk_forget_writes(struct fk *k);

/** fk_count_writes: how many logged writes match @path (glob) and @value (glob, NULL any). */
size_t fk_count_writes(const struct fk *k, const char *path, const char *value);

/**
 * fk_snapshot:
 * @k: the fake host
 *
 * Returns: every entry of sys/ and dev/, one line each in sorted order: the path, then "->"
 *          and the target of a link, ":" and the content of a file, or "/" for a directory; the
 *          whole state the library could read (free()). NULL on ENOMEM.
 */
char *fk_snapshot(const struct fk *k);

/**
 * fk_snapshot_same:
 * @a, @b: two snapshots
 * @buf, @size: receive the first line that differs, from each side, when they differ
 *
 * Returns: whether they are equal.
 */
bool fk_snapshot_same(const char *a, const char *b, char *buf, size_t size);

/** fk_read: the content of sys/@rel without its trailing newline into @buf ("" when absent). */
char *fk_read(const struct fk *k, const char *rel, char *buf, size_t size);

/** fk_driver: the basename of sys/bus/pci/devices/@bdf/driver into @buf ("" when unbound). */
char *fk_driver(const struct fk *k, const char *bdf, char *buf, size_t size);

/** fk_exists: whether sys/@rel exists (links followed). */
bool fk_exists(const struct fk *k, const char *rel);

/** fk_dev_exists: whether dev/@rel exists. */
bool fk_dev_exists(const struct fk *k, const char *rel);

/**
 * fk_poke:
 * @k, @rel: a file under sys/
 * @data, @len: its new content
 *
 * Changes the host behind the library's back (something else wrote it), with no semantics.
 *
 * Returns: 0; -errno.
 */
int fk_poke(struct fk *k, const char *rel, const void *data, size_t len);
