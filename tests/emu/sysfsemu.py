#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""sysfsemu.py: a FUSE file system that behaves like the kernel's PCI/mdev/NVIDIA-vGPU sysfs.

Usage: sysfsemu.py BACKING MOUNTPOINT [--control FILE] [--log FILE] [--dev-dir DIR]
                  [--watch-pid PID]

BACKING is a fake host's `sys` tree (fixtures/mkhost.py writes one). It is modified in place:
pass a copy. Reads and directory listings pass through to BACKING; writes to the attributes
listed below have the kernel's side effects (links appear and disappear, counters change) and
fail with the kernel's errno; writes whose store() takes the kernel's device_lock(dev) wait for
one another on the same device (class DeviceLocks). Every other attribute is read-only, as most
sysfs attributes are.
Runs in the foreground until SIGTERM/SIGINT/SIGHUP, then unmounts and exits 0.

--control FILE  JSON read at every write: scripted faults and emulator settings
                (tests/emu/README.md describes every key). A missing file means "{}".
--log FILE      one JSON line per write (default: writes.jsonl beside the control file).
--dev-dir DIR   where /dev/vfio/<group> nodes are mirrored as empty files
                (default: dev/ beside the control file; none without --control).
--watch-pid PID stop like on SIGTERM once process PID is gone or dying (emu.py passes its own
                pid, so a test killed with SIGKILL does not leave a mount behind).

Each kernel rule below names its source: an ABI document or a kernel source file (Linux 6.1,
Debian 12's kernel, unless said otherwise). [NV] marks NVIDIA's vendor-specific vGPU
behaviour, which is not in the kernel (sources in tests/emu/README.md); [EMU] marks a choice
of this emulator where the kernel gives no answer.
"""
import argparse
import ctypes
import errno
import fnmatch
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback

try:
    from fusepy import FUSE, FuseOSError, Operations
except ImportError:  # Debian's python3-fusepy names the module fusepy (research testing.md 2d)
    sys.stderr.write("sysfsemu: python module 'fusepy' missing "
                     "(apt-get install python3-fusepy; run with /usr/bin/python3)\n")
    sys.exit(3)

BDF_RE = re.compile(r"^[0-9a-f]{4,5}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TMP_PREFIX = ".sysfsemu-"
HANG_POLL_S = 0.02        # how often a hang with an id or `forever` looks for its release
NVIDIA_HEADER = "ID    : vGPU Name\n"

# Drivers that bind to whatever driver_override/new_id sends them (no ID table of their own).
GENERIC_DRIVERS = ("vfio-pci", "pci-stub", "uio_pci_generic")
# Writable in the kernel but not emulated: a write fails with EOPNOTSUPP so a test notices.
UNEMULATED_PCI_ATTRS = ("remove", "enable", "reset_method", "d3cold_allowed", "numa_node",
                        "broken_parity_status", "msi_bus", "power/control")
# NVIDIA vendor-specific files that take a value; stored as written [NV].
NVIDIA_STORE = ("vgpu_params", "placement_id", "gpu_instance_id", "warm_update")


class KErr(Exception):
    """A write fails with this errno, as the kernel's store() would return -errno."""

    def __init__(self, err, note=None):
        super().__init__(err, note)
        self.err = err
        self.note = note


def errno_of(v, default=errno.EIO):
    if isinstance(v, int):
        return v
    if isinstance(v, str) and hasattr(errno, v.upper()):
        return getattr(errno, v.upper())
    return default


class DeviceLocks:
    """The kernel's per-device lock, device_lock(dev) (the mutex in struct device), one per PCI
    function or mdev, by name (BDF or UUID). A write whose store() takes it holds it while it
    works; one that finds it taken waits in its own FUSE thread (other requests go on)."""

    def __init__(self, stopping):
        self.cv = threading.Condition()
        self.held = {}              # name -> {"path", "value"} of the write holding it
        self.stopping = stopping

    def acquire(self, name, who, on_wait=None):
        """Take lock @name for @who. When it is held, on_wait(holder) is called once, then this
        waits. Returns (True, seconds waited or None when it was free), or (False, None) when
        the emulator stops meanwhile (the lock is not taken)."""
        with self.cv:
            if name not in self.held:
                self.held[name] = who
                return True, None
            t0 = time.monotonic()
            if on_wait:
                on_wait(self.held[name])
            while name in self.held and not self.stopping.is_set():
                self.cv.wait()
            if self.stopping.is_set():
                return False, None
            self.held[name] = who
            return True, time.monotonic() - t0

    def release(self, name):
        with self.cv:
            self.held.pop(name, None)
            self.cv.notify_all()

    def wake_all(self):
        """Wake every waiter (the emulator is stopping: they fail)."""
        with self.cv:
            self.cv.notify_all()


class Op:
    """One write in flight: what its log records say about it."""

    def __init__(self, rel, alias, value):
        self.rel, self.alias, self.value = rel, alias, value
        self.fault = None       # "hang" or "fail" when a control rule applied
        self.held = None        # name of the device lock this write holds
        self.extra = {}         # more keys for its log record ("lock", "waited")
        self.hang = {}          # state of a hung unbind: {"bdf", "drv", "unreg", "early"}


# ---- the kernel's string parsers ---------------------------------------------------------

def cstr(data):
    """The store() buffer as C code sees it: up to the first NUL (driver_set_override uses
    strlen; lib/kstrtox.c stops at the NUL)."""
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def kstrtoull(s, base=0, limit=(1 << 64) - 1):
    """lib/kstrtox.c _kstrtoull: optional '+', radix prefix for base 0/16, digits, then at most
    one '\\n'. Raises KErr(EINVAL) or KErr(ERANGE) as the kernel returns them."""
    if s.startswith("+"):
        s = s[1:]
    if base in (0, 16) and len(s) > 2 and s[0] == "0" and s[1] in "xX" and s[2] in "0123456789abcdefABCDEF":
        s, base = s[2:], 16
    elif base == 0:
        base = 8 if s.startswith("0") else 10
    digits = "0123456789abcdef"[:base]
    i = 0
    while i < len(s) and s[i].lower() in digits:
        i += 1
    if i == 0:
        raise KErr(errno.EINVAL)
    val = int(s[:i], base)
    rest = s[i:]
    if rest.startswith("\n"):
        rest = rest[1:]
    if rest:
        raise KErr(errno.EINVAL)
    if val > limit:
        raise KErr(errno.ERANGE)
    return val


def kstrtobool(s):
    """lib/kstrtox.c kstrtobool: y/Y/1/on -> True, n/N/0/off -> False, else EINVAL."""
    if not s:
        raise KErr(errno.EINVAL)
    c = s[0]
    if c in "yYtT1":
        return True
    if c in "nNfF0":
        return False
    if c in "oO" and len(s) > 1:
        if s[1] in "nN":
            return True
        if s[1] in "fF":
            return False
    raise KErr(errno.EINVAL)


def name_arg(s):
    """bus_find_device_by_name() compares with sysfs_streq: strip exactly one '\\n'."""
    return s[:-1] if s.endswith("\n") else s


# ---- the file system ----------------------------------------------------------------------

class SysfsEmu(Operations):
    use_ns = True

    def __init__(self, backing, control=None, log=None, dev_dir=None):
        self.root = os.path.realpath(backing)
        self.ctl_path = control
        self.log_path = log
        self.dev_dir = dev_dir
        self.dev_lock = threading.RLock()   # the emulator's own: one for every change of the tree
        self.log_lock = threading.Lock()
        self.ctl_lock = threading.Lock()
        self.fh_lock = threading.Lock()
        self.stopping = threading.Event()
        self.locks = DeviceLocks(self.stopping)     # the kernel's device_lock() of each device
        self.kbound = {}         # bdf -> driver: its `driver` link is gone, its remove() still runs
        self.unregistering = set()  # mdev parents whose driver's remove() hangs in mdev_unregister_parent
        self.files = {}
        self.next_fh = 1
        self.seq = 0
        self.t0 = time.monotonic()
        self.ctl_raw = None
        self.ctl = {}
        self.used = {}
        self.stash = tempfile.mkdtemp(prefix="sysfsemu-stash-")
        # state remembered at mount time ("what the kernel knows")
        self.dev_by_dir = {}     # rel dir of a PCI function -> bdf
        self.natural = {}        # bdf -> driver its ID table match would pick, or None
        self.owner = {}          # bdf -> driver that registers its mdev_supported_types/nvidia
        self.dynids = {}         # driver -> [(vendor, device, subvendor, subdevice)] (new_id)
        self.mdev_free = {}      # VF mdev parent bdf -> {type: available_instances when free}
        self.catalog = {}        # vendor-vGPU PF bdf -> (header, [(id, line)])
        self.vendor_pfs = set()  # PFs whose VFs carry NVIDIA vendor-specific nvidia/ files
        self.templates = {}      # PF bdf -> VF template snapshotted from an existing VF
        self.mdev_driver_for = {}  # parent's PCI driver -> mdev bus driver of its mdevs
        self.nvml_sig = None     # (path, mtime_ns, size) of the fake NVML state last applied
        self.mig_mdev = {}       # mdev uuid -> GI id it took (MIG-backed mdev types)
        self.scan()
        if self.dev_dir:
            os.makedirs(os.path.join(self.dev_dir, "vfio"), exist_ok=True)
            open(os.path.join(self.dev_dir, "vfio", "vfio"), "a").close()
            for g in self.listdir("kernel/iommu_groups"):
                self.vfio_sync(g)

    # -- small helpers -----------------------------------------------------------------------
    def p(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    def relof(self, full):
        return os.path.relpath(full, self.root)

    def listdir(self, rel):
        try:
            return sorted(n for n in os.listdir(self.p(rel)) if not n.startswith(TMP_PREFIX))
        except OSError:
            return []

    def readf(self, full, default=None):
        try:
            with open(full, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return default

    def writef(self, full, text):
        """Replace a file atomically, so a concurrent reader never sees it half written."""
        tmp = os.path.join(os.path.dirname(full), TMP_PREFIX + os.path.basename(full))
        with open(tmp, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        os.replace(tmp, full)

    def mklink(self, at, target):
        """Create `at` as a relative link to `target` (both absolute backing paths)."""
        if os.path.lexists(at):
            os.unlink(at)
        os.symlink(os.path.relpath(target, os.path.dirname(at)), at)

    def rmlink(self, at):
        if os.path.lexists(at):
            os.unlink(at)

    def dev_dir_of(self, bdf):
        link = self.p(f"bus/pci/devices/{bdf}")
        if not os.path.lexists(link):
            return None
        d = os.path.realpath(link)
        return d if os.path.isdir(d) else None

    def attr(self, bdf, name, default=None):
        d = self.dev_dir_of(bdf)
        v = self.readf(os.path.join(d, name)) if d else None
        return default if v is None else v.strip()

    def driver_of(self, bdf):
        d = self.dev_dir_of(bdf)
        if d and os.path.islink(os.path.join(d, "driver")):
            return os.path.basename(os.readlink(os.path.join(d, "driver")))
        return None

    def override_of(self, bdf):
        v = self.attr(bdf, "driver_override", "(null)")
        return None if v == "(null)" else v

    def physfn_of(self, bdf):
        d = self.dev_dir_of(bdf)
        if d and os.path.islink(os.path.join(d, "physfn")):
            return os.path.basename(os.readlink(os.path.join(d, "physfn")))
        return None

    def vfs_of(self, pf):
        d = self.dev_dir_of(pf)
        out = []
        for n in os.listdir(d) if d else []:
            if n.startswith("virtfn") and n[6:].isdigit():
                out.append((int(n[6:]), os.path.basename(os.readlink(os.path.join(d, n)))))
        return [b for _, b in sorted(out)]

    def ids_of(self, bdf):
        def h(name):
            try:
                return int(self.attr(bdf, name, "0xffff"), 16)
            except ValueError:
                return 0xffff
        return (h("vendor"), h("device"), h("subsystem_vendor"), h("subsystem_device"))

    def group_of(self, full_dev):
        g = os.path.join(full_dev, "iommu_group")
        return os.path.basename(os.readlink(g)) if os.path.islink(g) else None

    def natural_of(self, bdf, ctl):
        nd = ctl.get("natural_drivers") or {}
        return nd[bdf] if bdf in nd else self.natural.get(bdf)

    # -- mount-time scan ---------------------------------------------------------------------
    def scan(self):
        bdfs = self.listdir("bus/pci/devices")
        for bdf in bdfs:
            d = self.dev_dir_of(bdf)
            if d:
                self.dev_by_dir[self.relof(d)] = bdf
                self.natural[bdf] = self.driver_of(bdf)
        # A function found on vfio-pci was put there by a user; the kernel's own ID-table match
        # would pick the driver of a like function [EMU]: the same vendor:device, else the same
        # vendor and class. A control file's natural_drivers overrides this.
        for bdf in bdfs:
            if self.natural.get(bdf) != "vfio-pci":
                continue
            ven, dev = self.attr(bdf, "vendor"), self.attr(bdf, "device")
            cls = (self.attr(bdf, "class") or "")[:6]
            pick = None
            for other in bdfs:
                drv = self.natural.get(other)
                if other == bdf or drv in (None, "vfio-pci"):
                    continue
                if self.attr(other, "vendor") == ven and self.attr(other, "device") == dev:
                    pick = drv
                    break
                if pick is None and self.attr(other, "vendor") == ven and \
                        (self.attr(other, "class") or "")[:6] == cls:
                    pick = drv
            self.natural[bdf] = pick
        catalogs = {}
        for bdf in bdfs:
            d = self.dev_dir_of(bdf)
            if not d:
                continue
            nat = self.natural.get(bdf)
            if nat and (os.path.isdir(os.path.join(d, "mdev_supported_types"))
                        or os.path.isdir(os.path.join(d, "nvidia"))):
                self.owner[bdf] = nat
            pf = self.physfn_of(bdf)
            cre = self.readf(os.path.join(d, "nvidia", "creatable_vgpu_types"))
            if pf and cre is not None:
                self.vendor_pfs.add(pf)
                model = self.ids_of(pf)[:2]
                header, lines = catalogs.setdefault(model, [None, {}])
                hdr, entries = parse_creatable(cre)
                catalogs[model][0] = header or hdr
                for vid, line in entries:
                    lines.setdefault(vid, line)
        for pf in self.vendor_pfs:
            header, lines = catalogs[self.ids_of(pf)[:2]]
            self.catalog[pf] = (header or NVIDIA_HEADER, sorted(lines.items()))
        # mdev parents that are VFs: remember each one's free availability, for remove [EMU]
        for bdf in bdfs:
            pf = self.physfn_of(bdf)
            if pf and self.mdev_types(bdf) and not self.mdevs_under(bdf):
                self.mdev_free[bdf] = self.mdev_avail(bdf)
        for bdf in bdfs:
            pf = self.physfn_of(bdf)
            if pf and self.mdev_types(bdf) and bdf not in self.mdev_free:
                sib = next((v for v in self.vfs_of(pf) if v in self.mdev_free), None)
                self.mdev_free[bdf] = dict(self.mdev_free[sib]) if sib else None
        for uuid in self.listdir("bus/mdev/devices"):
            m = os.path.realpath(self.p(f"bus/mdev/devices/{uuid}"))
            parent = self.dev_by_dir.get(self.relof(os.path.dirname(m)))
            drv = os.path.join(m, "driver")
            if parent and os.path.islink(drv):
                self.mdev_driver_for.setdefault(self.natural.get(parent),
                                                os.path.basename(os.readlink(drv)))
        for bdf in bdfs:
            vfs = self.vfs_of(bdf)
            if vfs:
                self.templates[bdf] = self.snapshot_vf(bdf, vfs)

    def snapshot_vf(self, pf, vfs):
        """A template to recreate this PF's VFs: the files of a VF holding nothing [EMU]."""
        free = [v for v in vfs if not self.mdevs_under(v)
                and (self.attr(v, "nvidia/current_vgpu_type", "0") in ("0", ""))]
        src = free[0] if free else vfs[0]
        d = self.dev_dir_of(src)
        files = {}
        for top, dirs, names in os.walk(d):
            relt = os.path.relpath(top, d)
            keep = []
            for n in dirs:
                full = os.path.join(top, n)
                if os.path.islink(full) or (relt == "." and UUID_RE.match(n)):
                    continue
                keep.append(n)
                files[os.path.normpath(os.path.join(relt, n))] = None
            dirs[:] = keep
            for n in names:
                full = os.path.join(top, n)
                if os.path.islink(full):
                    continue
                with open(full, "rb") as f:
                    files[os.path.normpath(os.path.join(relt, n))] = f.read()
        files["driver_override"] = b"(null)\n"
        if "nvidia/current_vgpu_type" in files:
            files["nvidia/current_vgpu_type"] = b"0\n"
            for n in NVIDIA_STORE:
                if f"nvidia/{n}" in files:
                    files[f"nvidia/{n}"] = b""
        free_avail = self.mdev_free.get(src) or {}
        for t, n in free_avail.items():
            files[f"mdev_supported_types/{t}/available_instances"] = f"{n}\n".encode()
        return {"files": files, "driver": self.natural.get(src), "mdev_free": dict(free_avail)}

    # -- mdev helpers ------------------------------------------------------------------------
    def mdev_types(self, bdf):
        d = self.dev_dir_of(bdf)
        return self.listdir(self.relof(os.path.join(d, "mdev_supported_types"))) if d and \
            os.path.isdir(os.path.join(d, "mdev_supported_types")) else []

    def mdev_avail(self, bdf):
        d = self.dev_dir_of(bdf)
        out = {}
        for t in self.mdev_types(bdf):
            try:
                out[t] = int(self.readf(os.path.join(d, "mdev_supported_types", t,
                                                     "available_instances"), "0").strip())
            except ValueError:
                out[t] = 0
        return out

    def set_avail(self, bdf, t, n):
        d = self.dev_dir_of(bdf)
        f = os.path.join(d, "mdev_supported_types", t, "available_instances")
        if os.path.exists(f):
            self.writef(f, f"{max(n, 0)}\n")

    def mdevs_under(self, bdf):
        d = self.dev_dir_of(bdf)
        if not d:
            return []
        return [n for n in sorted(os.listdir(d)) if UUID_RE.match(n)
                and os.path.islink(os.path.join(d, n, "mdev_type"))]

    # -- classification of paths -------------------------------------------------------------
    def context(self, rel):
        """(kind, id, sub) for a path: ('pci', bdf, sub parts), ('mdev', uuid, sub parts) or
        (None, None, parts)."""
        parts = rel.split("/") if rel else []
        if parts and parts[0] == "devices":
            for i in range(len(parts), 1, -1):
                prefix = "/".join(parts[:i])
                bdf = self.dev_by_dir.get(prefix)
                if bdf:
                    return "pci", bdf, parts[i:]
                if UUID_RE.match(parts[i - 1]) and "/".join(parts[:i - 1]) in self.dev_by_dir \
                        and os.path.islink(self.p(prefix + "/mdev_type")):
                    return "mdev", parts[i - 1], parts[i:]
        return None, None, parts

    def classify(self, rel):
        """(handler, mode bits) of a regular file: what a write does, and 0200/0644/0444 as the
        kernel's attribute would have."""
        kind, ident, sub = self.context(rel)
        s = "/".join(sub)
        if kind is None:
            if rel == "bus/pci/drivers_probe":
                return "drivers_probe", 0o200
            if rel == "bus/pci/drivers_autoprobe":
                return "bus_autoprobe", 0o644
            if rel == "bus/pci/rescan":
                return "noop", 0o200
            if rel == "bus/pci/resource_alignment":
                return "unemulated", 0o644
            if len(sub) == 5 and sub[:3] == ["bus", "pci", "drivers"] and \
                    sub[4] in ("bind", "unbind", "new_id", "remove_id"):
                return sub[4], 0o200
            if len(sub) == 5 and sub[:3] == ["bus", "mdev", "drivers"] and sub[4] in ("bind", "unbind"):
                return "unemulated", 0o200
            return None, 0o444
        if kind == "mdev":
            if s == "remove":
                return "mdev_remove", 0o200
            if s == "nvidia/vgpu_params":
                return "store", 0o644
            return None, 0o444
        if s == "driver_override":
            return "driver_override", 0o644
        if s == "sriov_numvfs":
            return "sriov_numvfs", 0o644
        if s == "sriov_drivers_autoprobe":
            return "sriov_autoprobe", 0o644
        if s in ("reset", "rescan"):
            return "noop", 0o200
        if s in UNEMULATED_PCI_ATTRS:
            return "unemulated", 0o200 if s == "remove" else 0o644
        if s == "nvidia/current_vgpu_type":
            return "current_vgpu_type", 0o644
        if len(sub) == 2 and sub[0] == "nvidia" and sub[1] in NVIDIA_STORE:
            return "store", 0o644
        if len(sub) == 3 and sub[0] == "mdev_supported_types" and sub[2] == "create":
            return "mdev_create", 0o200
        return None, 0o444

    def alias(self, rel):
        kind, ident, sub = self.context(rel)
        if kind == "pci":
            return "/".join([f"bus/pci/devices/{ident}"] + sub)
        if kind == "mdev":
            return "/".join([f"bus/mdev/devices/{ident}"] + sub)
        return None

    # -- control file, faults, log -----------------------------------------------------------
    def control(self):
        return self.control_raw()[1]

    def control_raw(self):
        """(the control file's bytes, its parsed content); re-read at every call."""
        if not self.ctl_path:
            return b"", {}
        try:
            with open(self.ctl_path, "rb") as f:
                raw = f.read()
        except OSError:
            raw = b""
        with self.ctl_lock:
            if raw != self.ctl_raw:
                self.ctl_raw = raw
                self.used = {}
                try:
                    self.ctl = json.loads(raw) if raw.strip() else {}
                    if not isinstance(self.ctl, dict):
                        raise ValueError("not a JSON object")
                except ValueError as e:
                    sys.stderr.write(f"sysfsemu: ignoring control file {self.ctl_path}: {e}\n")
                    self.ctl = {}
            return raw, self.ctl

    def match_rule(self, ctl, kind, rel, alias, value):
        for i, r in enumerate(ctl.get(kind) or []):
            pat = str(r.get("path", "*")).lstrip("/")
            if not (fnmatch.fnmatchcase(rel, pat) or (alias and fnmatch.fnmatchcase(alias, pat))):
                continue
            if "value" in r and not fnmatch.fnmatchcase(value.strip(), str(r["value"])):
                continue
            with self.ctl_lock:
                key = (kind, i)
                times = r.get("times")
                if times is not None and self.used.get(key, 0) >= int(times):
                    continue
                self.used[key] = self.used.get(key, 0) + 1
            return r
        return None

    def log(self, rel, alias, value, err, fault=None, note=None, extra=None):
        """One record for a finished write (or a refused open)."""
        rec = {"path": rel, "alias": alias, "value": value,
               "result": "ok" if not err else errno.errorcode.get(err, str(err)),
               "errno": err, "fault": fault}
        if note:
            rec["note"] = note
        rec.update(extra or {})
        self.append_log(rec)

    def log_event(self, event, op, **keys):
        """One record for a write still in flight: "hang" (a hang rule holds it, with the lock
        it holds meanwhile), "wait" (it waits for a device lock another write holds),
        "still-hanging" (the control file changed and does not release it)."""
        rec = {"event": event, "path": op.rel, "alias": op.alias, "value": op.value}
        rec.update(keys)
        self.append_log(rec)

    def append_log(self, rec):
        if not self.log_path:
            return
        with self.log_lock:
            self.seq += 1
            rec = dict({"seq": self.seq, "t": round(time.monotonic() - self.t0, 6)}, **rec)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")

    # -- FUSE read side ----------------------------------------------------------------------
    def getattr(self, path, fh=None):
        rel = path.lstrip("/")
        base = os.path.basename(rel)
        if base.startswith(TMP_PREFIX):
            raise FuseOSError(errno.ENOENT)
        try:
            st = os.lstat(self.p(rel))
        except OSError as e:
            raise FuseOSError(e.errno)
        mode = st.st_mode
        if stat.S_ISREG(mode):
            mode = stat.S_IFREG | self.classify(rel)[1]
        return {"st_mode": mode, "st_nlink": st.st_nlink, "st_size": st.st_size,
                "st_uid": st.st_uid, "st_gid": st.st_gid, "st_atime": st.st_atime_ns,
                "st_mtime": st.st_mtime_ns, "st_ctime": st.st_ctime_ns}

    def readdir(self, path, fh):
        rel = path.lstrip("/")
        try:
            names = os.listdir(self.p(rel))
        except OSError as e:
            raise FuseOSError(e.errno)
        return [".", ".."] + [n for n in names if not n.startswith(TMP_PREFIX)]

    def readlink(self, path):
        try:
            return os.readlink(self.p(path.lstrip("/")))
        except OSError as e:
            raise FuseOSError(e.errno)

    def open(self, path, flags):
        rel = path.lstrip("/")
        full = self.p(rel)
        if not os.path.lexists(full):
            raise FuseOSError(errno.ENOENT)
        handler, mode = self.classify(rel)
        acc = flags & os.O_ACCMODE
        # fs/kernfs/file.c kernfs_fop_open: opening for write an attribute without a store()
        # (or for read one without a show()) fails with EACCES, for root too.
        if acc in (os.O_WRONLY, os.O_RDWR) and not mode & 0o200:
            self.log(rel, self.alias(rel), None, errno.EACCES, note="open for write")
            raise FuseOSError(errno.EACCES)
        if acc in (os.O_RDONLY, os.O_RDWR) and not mode & 0o400:
            raise FuseOSError(errno.EACCES)
        with self.fh_lock:
            fh = self.next_fh
            self.next_fh += 1
            self.files[fh] = None
        return fh

    def read(self, path, size, offset, fh):
        # sysfs fills a buffer from show() at the first read and serves later offsets from it
        # (fs/kernfs/file.c, seq_file); a read at offset 0 calls show() again.
        with self.fh_lock:
            snap = self.files.get(fh)
        if (offset == 0 or snap is None) and os.path.basename(path) in NVML_SYNCED:
            ctl = self.control()
            if ctl.get("nvml_state"):
                with self.dev_lock:
                    self.nvml_sync(ctl)
        if offset == 0 or snap is None:
            try:
                with open(self.p(path.lstrip("/")), "rb") as f:
                    snap = f.read()
            except OSError as e:
                raise FuseOSError(e.errno)
            with self.fh_lock:
                self.files[fh] = snap
        return snap[offset:offset + size]

    def release(self, path, fh):
        with self.fh_lock:
            self.files.pop(fh, None)
        return 0

    def truncate(self, path, length, fh=None):
        return 0        # O_TRUNC from a shell's '>' is ignored, as by sysfs

    def utimens(self, path, times=None):
        return 0

    def create(self, path, mode, fi=None):
        raise FuseOSError(errno.EACCES)     # no new files in sysfs

    def _eperm(self, *a):
        raise FuseOSError(errno.EPERM)

    mkdir = rmdir = unlink = symlink = rename = link = mknod = chmod = chown = _eperm

    # -- FUSE write side ---------------------------------------------------------------------
    def write(self, path, data, offset, fh):
        rel = path.lstrip("/")
        op = Op(rel, self.alias(rel), data.decode("utf-8", "replace"))
        handler, _ = self.classify(rel)
        note, err = None, 0
        try:
            note = self.write_op(op, handler, data)
        except KErr as e:
            err, note = e.err, e.note
        except Exception:
            traceback.print_exc()
            err, note, op.fault = errno.EIO, "emulator error", None
        try:
            if op.hang:
                self.hang_end(op)
            # logged before the lock goes, so the holder's record precedes its waiters'
            self.log(rel, op.alias, op.value, err, op.fault, note, op.extra)
        finally:
            if op.held:
                self.locks.release(op.held)
        if err:
            raise FuseOSError(err)
        return len(data)

    def write_op(self, op, handler, data):
        """A write as the kernel's store() runs it: the checks it makes unlocked, then, for a
        store() that takes device_lock(dev), the lock (waiting while another write holds it),
        then its effect on the state as it is then. A hang rule holds the write (and the lock
        its store() takes) first. Returns a note for the log, or raises KErr."""
        raw, ctl = self.control_raw()
        with self.dev_lock:
            lock = self.lock_name(handler, op.rel, data)
        hang = self.match_rule(ctl, "hang", op.rel, op.alias, op.value)
        if hang:
            op.fault = "hang"
            self.hold(op, hang, handler, data, lock, raw)
        fail = self.match_rule(ctl, "fail", op.rel, op.alias, op.value)
        if fail:
            op.fault = "fail"
            raise KErr(errno_of(fail.get("errno", "EIO")))
        with self.dev_lock:
            # fs/kernfs/file.c: a write through an fd whose attribute has been removed
            # meanwhile (a removed mdev's remove, a gone VF's files) -> -ENODEV
            if not os.path.lexists(self.p(op.rel)):
                raise KErr(errno.ENODEV, "attribute removed")
            done, note = self.unlocked_checks(handler, op.rel, data, ctl)
        if done:
            return note
        if lock and not op.held:
            self.take_lock(op, lock)
        with self.dev_lock:
            if not os.path.lexists(self.p(op.rel)):
                raise KErr(errno.ENODEV, "attribute removed")
            return self.dispatch(handler, op.rel, data, ctl)

    # -- device_lock, hangs ----------------------------------------------------------------------
    def lock_name(self, handler, rel, data):
        """The device whose device_lock() this write's store() takes (BDF or mdev UUID), or None.
        drivers/base/bus.c unbind_store -> dd.c device_driver_detach ->
        device_release_driver_internal; bus.c bind_store -> dd.c device_driver_attach;
        bus.c drivers_probe_store -> bus_rescan_devices_helper -> dd.c device_attach ->
        __device_attach (only for an unbound device, see unlocked_checks);
        drivers/pci/pci-sysfs.c driver_override_store -> drivers/base/driver.c
        driver_set_override (Linux >= 5.19; before, the same lock in driver_override_store);
        drivers/pci/iov.c sriov_numvfs_store (the PF's); pci-sysfs.c remove_store ->
        drivers/pci/remove.c pci_stop_and_remove_bus_device_locked -> pci_stop_dev ->
        dd.c device_release_driver; drivers/vfio/mdev/mdev_sysfs.c remove_store ->
        mdev_core.c mdev_device_remove -> device_del -> device_release_driver (the mdev's own
        lock, not its parent's: the mdev bus has no need_parent_lock)."""
        kind, ident, sub = self.context(rel)
        if handler in ("unbind", "bind", "drivers_probe"):
            return self.find_dev(cstr(data))
        if kind == "pci" and sub in (["driver_override"], ["sriov_numvfs"], ["remove"]):
            return ident
        if kind == "mdev" and sub == ["remove"]:
            return ident
        return None

    def take_lock(self, op, name):
        def on_wait(holder):
            self.log_event("wait", op, lock=name, holder=holder)
        ok, waited = self.locks.acquire(name, {"path": op.rel, "value": op.value}, on_wait)
        if not ok:
            raise KErr(errno.EIO, "emulator stopping")
        op.held = name
        if waited is not None:
            op.extra.update(lock=name, waited=round(waited, 6))

    def hold(self, op, rule, handler, data, lock, raw):
        """A hang rule: the write stays in its store() for `seconds` (or `forever`), holding the
        device lock its store() takes (unless `lock` is false, the default for `then: fail`),
        until the time is up or the control file's `release` names the rule's `id`. Then it
        completes (`then: complete`, the default without `errno`: the late landing of an
        unbind whose driver's remove() returned at last) or fails with `errno` without effect
        (`then: fail`, the default with `errno`). Raises KErr for a failure."""
        then = rule.get("then") or ("fail" if rule.get("errno") else "complete")
        if lock and rule.get("lock", then != "fail"):
            self.take_lock(op, lock)
        with self.dev_lock:
            self.hang_begin(op, rule, handler, data)
        secs = rule.get("seconds", 30)
        self.log_event("hang", op, lock=op.held, seconds=secs, id=rule.get("id"), then=then)
        how = self.hang_wait(op, rule, secs, raw)
        if how == "stop":
            raise KErr(errno.EIO, "emulator stopping")
        if how == "released":
            op.extra["released"] = True
        if then == "fail":
            raise KErr(errno_of(rule.get("errno", "EIO")))

    def hang_wait(self, op, rule, secs, raw):
        """Sleep in this FUSE worker thread only (other requests run in other threads).
        Returns "done", "released" or "stop"."""
        forever = secs == "forever"
        if not forever and "id" not in rule:
            return "stop" if self.stopping.wait(float(secs)) else "done"
        rid = str(rule.get("id", ""))
        deadline = None if forever else time.monotonic() + float(secs)
        seen = raw
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return "done"
            if self.stopping.wait(HANG_POLL_S if left is None else min(HANG_POLL_S, left)):
                return "stop"
            raw, ctl = self.control_raw()
            rel = ctl.get("release") or []
            if isinstance(rel, str):
                rel = [rel]
            if any(fnmatch.fnmatchcase(rid, str(pat)) for pat in rel):
                return "released"
            if raw != seen:
                seen = raw
                self.log_event("still-hanging", op, lock=op.held, id=rule.get("id"))

    def hang_begin(self, op, rule, handler, data):
        """A hung unbind is inside the driver's remove() (drivers/base/dd.c
        __device_release_driver, device lock held): the device still has its driver for the
        kernel (dev->driver is cleared only after remove() returns). With `early_sysfs`, its
        `driver` links are already gone, as driver_sysfs_remove() runs before remove(). When
        the driver registered the device's mdev parent, the hang is taken to be in
        mdev_unregister_parent (mdev_core.c; [EMU]: where a parent's unbind waits for an mdev a
        VM holds): creating or removing an mdev on it fails with ENODEV meanwhile."""
        if handler != "unbind" or not op.held:
            return
        drv = op.rel.split("/")[3]
        bdf = self.find_dev(cstr(data))
        if bdf is None or self.kdriver_of(bdf) != drv:
            return
        op.hang = {"bdf": bdf, "drv": drv}
        if self.owner.get(bdf) == drv:
            self.unregistering.add(bdf)
            op.hang["unreg"] = True
        if rule.get("early_sysfs") and self.driver_of(bdf) == drv:
            d = self.dev_dir_of(bdf)
            self.kbound[bdf] = drv
            self.rmlink(os.path.join(d, "driver"))
            self.rmlink(self.p(f"bus/pci/drivers/{drv}/{bdf}"))
            op.hang["early"] = True

    def hang_end(self, op):
        """Undo what hang_begin() set up, as far as the unbind did not land."""
        h = op.hang
        with self.dev_lock:
            if h.get("unreg"):
                self.unregistering.discard(h["bdf"])
            if h.get("early") and self.kbound.get(h["bdf"]) == h["drv"]:
                # the unbind failed after all [EMU]: the links come back
                del self.kbound[h["bdf"]]
                d = self.dev_dir_of(h["bdf"])
                if d:
                    ddir = self.p(f"bus/pci/drivers/{h['drv']}")
                    self.mklink(os.path.join(d, "driver"), ddir)
                    self.mklink(os.path.join(ddir, h["bdf"]), d)

    def kdriver_of(self, bdf):
        """dev->driver: the `driver` link's target, or the driver whose remove() still runs."""
        return self.kbound.get(bdf) or self.driver_of(bdf)

    def unlocked_checks(self, handler, rel, data, ctl):
        """What a store() checks before it takes the device lock. Raises KErr; returns
        (True, note) when the write ends here, without the lock, else (False, None)."""
        s = cstr(data)
        if handler == "unbind":
            # drivers/base/bus.c unbind_store: dev && dev->driver == drv, else -ENODEV
            bdf = self.find_dev(s)
            if bdf is None or self.kdriver_of(bdf) != rel.split("/")[3]:
                raise KErr(errno.ENODEV)
        elif handler == "bind":
            # bus.c bind_store: dev && driver_match_device(), else -ENODEV
            bdf = self.find_dev(s)
            if bdf is None or not self.pci_match(bdf, rel.split("/")[3], ctl):
                raise KErr(errno.ENODEV)
        elif handler == "drivers_probe":
            # bus.c drivers_probe_store: no such device -> -ENODEV; bus_rescan_devices_helper
            # calls device_attach() only if !dev->driver: a bound device (also one whose unbind
            # still runs) is left alone at once, without the lock
            bdf = self.find_dev(s)
            if bdf is None:
                raise KErr(errno.ENODEV)
            if self.kdriver_of(bdf) is not None:
                return True, "already bound"
        elif handler == "driver_override":
            if len(data) >= 4095:       # drivers/base/driver.c driver_set_override
                raise KErr(errno.EINVAL)
        elif handler == "sriov_numvfs":
            kind, pf, sub = self.context(rel)
            self.parse_numvfs(pf, s)
        elif handler == "mdev_remove":
            # mdev_sysfs.c remove_store: kstrtoul else -EINVAL; 0 does nothing
            if kstrtoull(s, 0) == 0:
                return True, "0: nothing removed"
        return False, None

    def dispatch(self, handler, rel, data, ctl):
        kind, ident, sub = self.context(rel)
        s = cstr(data)
        if handler is None:
            raise KErr(errno.EACCES)
        if handler == "noop":
            return None
        if handler == "unemulated":
            raise KErr(errno.EOPNOTSUPP, "writable in the kernel, not emulated")
        if handler == "store":
            self.writef(self.p(rel), data)
            return None
        if handler == "bus_autoprobe":
            # drivers/base/bus.c drivers_autoprobe_store: '0' first -> 0, anything else -> 1
            self.writef(self.p(rel), "0\n" if s.startswith("0") else "1\n")
            return None
        if handler == "sriov_autoprobe":
            # drivers/pci/iov.c sriov_drivers_autoprobe_store: kstrtobool, else -EINVAL
            self.writef(self.p(rel), "1\n" if kstrtobool(s) else "0\n")
            return None
        if handler == "driver_override":
            return self.w_driver_override(ident, data)
        if handler in ("bind", "unbind", "new_id", "remove_id"):
            drv = rel.split("/")[3]
            return getattr(self, "w_" + handler)(drv, s, ctl)
        if handler == "drivers_probe":
            return self.w_drivers_probe(s, ctl)
        if handler == "sriov_numvfs":
            return self.w_sriov_numvfs(ident, s, ctl)
        if handler in ("mdev_create", "current_vgpu_type"):
            self.nvml_sync(ctl)         # a GI the fake NVML made since the last read
        if handler == "mdev_create":
            return self.w_mdev_create(ident, sub[1], data, ctl)
        if handler == "mdev_remove":
            return self.w_mdev_remove(rel, s, ctl)
        if handler == "current_vgpu_type":
            return self.w_current_vgpu_type(ident, s, ctl)
        raise KErr(errno.EACCES)

    # -- PCI driver binding ------------------------------------------------------------------
    def w_driver_override(self, bdf, data):
        # Documentation/ABI/testing/sysfs-bus-pci (driver_override); drivers/base/driver.c
        # driver_set_override: >= PAGE_SIZE-1 bytes -> EINVAL; strlen() of the buffer; empty or a
        # lone "\n" clears; else the text up to the first "\n" is kept. Nothing is (un)bound.
        if len(data) >= 4095:
            raise KErr(errno.EINVAL)
        s = cstr(data)
        val = s.split("\n", 1)[0]
        d = self.dev_dir_of(bdf)
        self.writef(os.path.join(d, "driver_override"), (val if val else "(null)") + "\n")
        return None

    def pci_match(self, bdf, drv, ctl):
        """drivers/pci/pci-driver.c pci_match_device: an override names the only driver that
        matches (and it always matches); else dynamic ids (new_id), then the ID table."""
        ov = self.override_of(bdf)
        if ov is not None and ov != drv:
            return False
        ven, dev, sv, sd = self.ids_of(bdf)
        for (v, d, s2, d2) in self.dynids.get(drv, []):
            if v == ven and d == dev and s2 in (sv, 0xffffffff) and d2 in (sd, 0xffffffff):
                return True
        if self.natural_of(bdf, ctl) == drv:
            return True
        return ov is not None

    def is_vendor_vf(self, bdf):
        pf = self.physfn_of(bdf)
        return pf is not None and pf in self.vendor_pfs

    def probe(self, bdf, drv, ctl):
        """The driver's probe(): 0 or a positive errno."""
        d = self.dev_dir_of(bdf)
        if drv == "vfio-pci":
            # drivers/vfio/group.c vfio_group_find_or_alloc: no IOMMU group -> -EINVAL
            if not os.path.islink(os.path.join(d, "iommu_group")):
                return errno.EINVAL
            # drivers/vfio/pci/vfio_pci.c vfio_pci_probe: only header type 0 -> bridges -EINVAL
            if (self.attr(bdf, "class") or "").startswith("0x0604"):
                return errno.EINVAL
            # [NV] a VF of a vendor-specific-vGPU GPU belongs to nvidia: vfio-pci refuses it
            if self.is_vendor_vf(bdf):
                return errno.EINVAL
            # drivers/vfio/pci/vfio_pci_core.c vfio_pci_core_register_device: "Cannot bind to PF
            # with SR-IOV enabled" -> -EBUSY
            try:
                if int(self.attr(bdf, "sriov_numvfs", "0") or 0) > 0:
                    return errno.EBUSY
            except ValueError:
                pass
            return 0
        if drv in GENERIC_DRIVERS:
            return 0
        # [EMU] a device driver's probe rejects hardware outside its ID table and dynids
        ven, dev, _, _ = self.ids_of(bdf)
        if self.natural_of(bdf, ctl) != drv and \
                not any(v == ven and dv == dev for v, dv, _, _ in self.dynids.get(drv, [])):
            return errno.ENODEV
        return 0

    def do_bind(self, bdf, drv, ctl):
        d = self.dev_dir_of(bdf)
        ddir = self.p(f"bus/pci/drivers/{drv}")
        self.mklink(os.path.join(d, "driver"), ddir)
        self.mklink(os.path.join(ddir, bdf), d)
        self.set_uevent_driver(d, drv)
        if self.owner.get(bdf) == drv:
            self.restore_owned(bdf, ctl)
        self.vfio_sync(self.group_of(d))

    def do_unbind(self, bdf, ctl):
        d = self.dev_dir_of(bdf)
        drv = self.kdriver_of(bdf)
        if drv is None:
            return
        if self.owner.get(bdf) == drv:
            self.stash_owned(bdf, ctl)
        self.rmlink(os.path.join(d, "driver"))
        self.rmlink(self.p(f"bus/pci/drivers/{drv}/{bdf}"))
        self.kbound.pop(bdf, None)
        self.set_uevent_driver(d, None)
        self.vfio_sync(self.group_of(d))

    def set_uevent_driver(self, d, drv):
        f = os.path.join(d, "uevent")
        text = self.readf(f)
        if text is None:
            return
        lines = [ln for ln in text.splitlines() if not ln.startswith("DRIVER=")]
        if drv:
            lines.insert(0, f"DRIVER={drv}")
        self.writef(f, "".join(ln + "\n" for ln in lines))

    def device_attach(self, bdf, ctl):
        """drivers/base/dd.c __device_attach: try each matching driver until one's probe()
        succeeds; a failing probe is not an error here (really_probe returns it positive and
        __device_attach_driver goes on). Order [EMU]: new_id drivers, then the ID table's."""
        ov = self.override_of(bdf)
        if ov is not None:
            cands = [ov]
        else:
            cands = sorted(drv for drv in self.dynids if self.pci_match(bdf, drv, ctl))
            nat = self.natural_of(bdf, ctl)
            if nat and nat not in cands:
                cands.append(nat)
        notes = []
        for drv in cands:
            if not os.path.isdir(self.p(f"bus/pci/drivers/{drv}")) or not self.pci_match(bdf, drv, ctl):
                continue
            err = self.probe(bdf, drv, ctl)
            if err == 0:
                self.do_bind(bdf, drv, ctl)
                return drv, None
            notes.append(f"{drv} probe failed: {errno.errorcode.get(err, err)}")
        return None, "; ".join(notes) or "no driver matched"

    def find_dev(self, s):
        bdf = name_arg(s)
        if not bdf or "/" in bdf or bdf in (".", "..") or self.dev_dir_of(bdf) is None:
            return None
        return bdf

    def w_bind(self, drv, s, ctl):
        # drivers/base/bus.c bind_store: no such device or no match -> -ENODEV (checked
        # before the lock, unlocked_checks); under the lock drivers/base/dd.c
        # __driver_probe_device: already bound -> -EBUSY (current kernels, 6.1 included;
        # before the 2021 driver-core rework bind_store itself checked dev->driver == NULL and
        # answered -ENODEV); drivers/pci/pci-driver.c __pci_device_probe matches again
        # (-ENODEV); device_driver_attach returns a failed probe's errno.
        bdf = self.find_dev(s)
        if bdf is None:
            raise KErr(errno.ENODEV)
        if self.kdriver_of(bdf) is not None:
            raise KErr(errno.EBUSY)
        if not self.pci_match(bdf, drv, ctl):
            raise KErr(errno.ENODEV)
        err = self.probe(bdf, drv, ctl)
        if err:
            raise KErr(err, f"{drv} probe failed")
        self.do_bind(bdf, drv, ctl)
        return None

    def w_unbind(self, drv, s, ctl):
        # drivers/base/bus.c unbind_store: the device must exist and be bound to this driver,
        # else -ENODEV (checked before the lock, unlocked_checks). Under the lock
        # drivers/base/dd.c device_driver_detach -> device_release_driver_internal(dev, NULL)
        # releases whatever driver the device has by then: none (another unbind landed
        # first) is success too.
        bdf = self.find_dev(s)
        if bdf is not None:
            self.do_unbind(bdf, ctl)
        return None

    def w_drivers_probe(self, s, ctl):
        # drivers/base/bus.c drivers_probe_store: unknown device -> -ENODEV; a bound device is
        # left alone; otherwise device_attach(); success whether or not a driver bound.
        bdf = self.find_dev(s)
        if bdf is None:
            raise KErr(errno.ENODEV)
        if self.kdriver_of(bdf) is not None:
            return "already bound"
        drv, note = self.device_attach(bdf, ctl)
        return f"bound to {drv}" if drv else note

    def parse_ids(self, s):
        """sscanf(buf, "%x %x %x %x %x %x %lx", ...): how many fields parsed, and them."""
        vals = []
        for tok in s.split():
            try:
                vals.append(int(tok, 16))
            except ValueError:
                break
        return vals

    def w_new_id(self, drv, s, ctl):
        # drivers/pci/pci-driver.c new_id_store: < 2 fields -> -EINVAL; without all 7 fields an
        # id the driver already matches -> -EEXIST; pci_add_dynid then driver_attach() probes
        # every unbound device it now matches.
        ids = self.parse_ids(s)
        if len(ids) < 2:
            raise KErr(errno.EINVAL)
        ven, dev = ids[0], ids[1]
        sv = ids[2] if len(ids) > 2 else 0xffffffff
        sd = ids[3] if len(ids) > 3 else 0xffffffff
        if len(ids) != 7:
            if any(v == ven and d == dev for v, d, _, _ in self.dynids.get(drv, [])) or any(
                    self.natural_of(b, ctl) == drv and self.ids_of(b)[:2] == (ven, dev)
                    for b in self.listdir("bus/pci/devices")):
                raise KErr(errno.EEXIST)
        self.dynids.setdefault(drv, []).append((ven, dev, sv, sd))
        bound = []
        for bdf in self.listdir("bus/pci/devices"):
            if self.driver_of(bdf) is None and self.pci_match(bdf, drv, ctl) and \
                    self.ids_of(bdf)[:2] == (ven, dev) and self.probe(bdf, drv, ctl) == 0:
                self.do_bind(bdf, drv, ctl)
                bound.append(bdf)
        return f"bound {' '.join(bound)}" if bound else None

    def w_remove_id(self, drv, s, ctl):
        # drivers/pci/pci-driver.c remove_id_store: < 2 fields -> -EINVAL; no such dynid -> -ENODEV
        ids = self.parse_ids(s)
        if len(ids) < 2:
            raise KErr(errno.EINVAL)
        lst = self.dynids.get(drv, [])
        for i, (v, d, _, _) in enumerate(lst):
            if v == ids[0] and d == ids[1]:
                del lst[i]
                return None
        raise KErr(errno.ENODEV)

    # -- driver-owned subtrees (mdev parent registration, nvidia/ files) -----------------------
    def stash_owned(self, bdf, ctl):
        """Unbinding the vendor driver unregisters the mdev parent (drivers/vfio/mdev/mdev_core.c
        mdev_unregister_parent removes its mdevs, mdev_supported_types and the mdev_bus class
        link); the nvidia/ files go with the nvidia driver [NV]."""
        d = self.dev_dir_of(bdf)
        for u in self.mdevs_under(bdf):
            self.remove_mdev(os.path.join(d, u), ctl)
        cur = os.path.join(d, "nvidia", "current_vgpu_type")
        if os.path.exists(cur) and self.readf(cur, "0").strip() not in ("0", ""):
            self.clear_vgpu_type(d)
        dst = os.path.join(self.stash, bdf)
        os.makedirs(dst, exist_ok=True)
        for sub in ("mdev_supported_types", "nvidia"):
            if os.path.isdir(os.path.join(d, sub)):
                shutil.move(os.path.join(d, sub), os.path.join(dst, sub))
        self.rmlink(self.p(f"class/mdev_bus/{bdf}"))
        pf = self.physfn_of(bdf)
        if pf in self.vendor_pfs:
            self.recompute_creatable(pf, ctl)

    def restore_owned(self, bdf, ctl):
        d = self.dev_dir_of(bdf)
        src = os.path.join(self.stash, bdf)
        for sub in ("mdev_supported_types", "nvidia"):
            if os.path.isdir(os.path.join(src, sub)) and not os.path.exists(os.path.join(d, sub)):
                shutil.move(os.path.join(src, sub), os.path.join(d, sub))
        if os.path.isdir(os.path.join(d, "mdev_supported_types")):
            os.makedirs(self.p("class/mdev_bus"), exist_ok=True)
            self.mklink(self.p(f"class/mdev_bus/{bdf}"), d)
        pf = self.physfn_of(bdf)
        if pf in self.vendor_pfs:
            self.recompute_creatable(pf, ctl)

    # -- /dev/vfio mirror ----------------------------------------------------------------------
    def vfio_sync(self, group):
        """drivers/vfio/group.c: /dev/vfio/<group> exists while a device of the group is bound
        to a vfio driver (vfio-pci for PCI functions, the mdev's vfio driver for an mdev)."""
        if not self.dev_dir or group is None:
            return
        gdir = self.p(f"kernel/iommu_groups/{group}/devices")
        on = False
        for n in self.listdir(self.relof(gdir)):
            full = os.path.realpath(os.path.join(gdir, n))
            drv = os.path.join(full, "driver")
            if not os.path.islink(drv):
                continue
            if UUID_RE.match(n) or os.path.basename(os.readlink(drv)) == "vfio-pci":
                on = True
        node = os.path.join(self.dev_dir, "vfio", str(group))
        if on and not os.path.exists(node):
            open(node, "a").close()
        elif not on and os.path.exists(node):
            os.unlink(node)

    def new_group(self, member_full, name, like_group=None):
        """drivers/iommu/iommu.c iommu_group_alloc: ida_alloc gives the lowest free id."""
        used = set()
        for g in self.listdir("kernel/iommu_groups"):
            if g.isdigit():
                used.add(int(g))
        gid = 0
        while gid in used:
            gid += 1
        gdir = self.p(f"kernel/iommu_groups/{gid}")
        os.makedirs(os.path.join(gdir, "devices"))
        gtype = self.readf(self.p(f"kernel/iommu_groups/{like_group}/type")) if like_group else None
        self.writef(os.path.join(gdir, "type"), gtype or "DMA\n")
        self.writef(os.path.join(gdir, "reserved_regions"), "")
        self.mklink(os.path.join(gdir, "devices", name), member_full)
        self.mklink(os.path.join(member_full, "iommu_group"), gdir)
        return str(gid)

    def drop_group_member(self, member_full, name):
        g = self.group_of(member_full)
        if g is None:
            return None
        gdir = self.p(f"kernel/iommu_groups/{g}")
        self.rmlink(os.path.join(gdir, "devices", name))
        if os.path.isdir(gdir) and not self.listdir(self.relof(os.path.join(gdir, "devices"))):
            shutil.rmtree(gdir)
        return g

    # -- mdev ----------------------------------------------------------------------------------
    def w_mdev_create(self, bdf, mtype, data, ctl):
        # mdev_core.c mdev_device_create (6.1): after the duplicate and the availability
        # checks, down_read_trylock(&parent->unreg_sem) fails while the parent unregisters ->
        # -ENODEV
        # drivers/vfio/mdev/mdev_sysfs.c create_store: count must be 36 or 37 bytes, guid_parse
        # (lib/uuid.c: hex digits with '-' at 8,13,18,23) else -EINVAL.
        # drivers/vfio/mdev/mdev_core.c mdev_device_create: a UUID already in use anywhere ->
        # -EEXIST; no available instance -> -EUSERS (core accounting, Linux >= 6.1); the
        # device is named "%pUl" (lower case). Documentation/driver-api/vfio-mediated-device.rst.
        if len(data) < 36 or len(data) > 37:
            raise KErr(errno.EINVAL)
        u = data[:36].decode("latin-1")
        if not UUID_RE.match(u.lower()):
            raise KErr(errno.EINVAL)
        u = u.lower()
        d = self.dev_dir_of(bdf)
        tdir = os.path.join(d, "mdev_supported_types", mtype)
        if os.path.lexists(self.p(f"bus/mdev/devices/{u}")) or any(
                os.path.lexists(os.path.join(self.p(r), u)) for r in self.dev_by_dir):
            raise KErr(errno.EEXIST)
        try:
            avail = int(self.readf(os.path.join(tdir, "available_instances"), "0").strip())
        except ValueError:
            avail = 0
        if avail <= 0:
            default = "ENOSPC" if self.natural_of(bdf, ctl) == "i915" else "EUSERS"
            raise KErr(errno_of(ctl.get("mdev_exhausted_errno", default), errno.EUSERS),
                       "available_instances is 0")
        if bdf in self.unregistering:
            raise KErr(errno.ENODEV, "parent unregistration has started")
        mdir = os.path.join(d, u)
        os.mkdir(mdir)
        self.writef(os.path.join(mdir, "remove"), "")
        self.mklink(os.path.join(mdir, "mdev_type"), tdir)
        os.makedirs(self.p("bus/mdev/devices"), exist_ok=True)
        self.mklink(os.path.join(mdir, "subsystem"), self.p("bus/mdev"))
        self.new_group(mdir, u, self.group_of(d))
        mdrv = ctl.get("mdev_driver") or self.mdev_driver_for.get(self.natural_of(bdf, ctl))
        if mdrv and os.path.isdir(self.p(f"bus/mdev/drivers/{mdrv}")):
            self.mklink(os.path.join(mdir, "driver"), self.p(f"bus/mdev/drivers/{mdrv}"))
            self.mklink(self.p(f"bus/mdev/drivers/{mdrv}/{u}"), mdir)
        if self.natural_of(bdf, ctl) == "nvidia":
            os.mkdir(os.path.join(mdir, "nvidia"))
            for n in ("vgpu_params", "vm_name"):
                self.writef(os.path.join(mdir, "nvidia", n), "")
        self.mklink(os.path.join(tdir, "devices", u), mdir)
        self.mklink(self.p(f"bus/mdev/devices/{u}"), mdir)
        if self.physfn_of(bdf) and ctl.get("mdev_one_per_vf", True):
            # [NV] an SR-IOV vGPU GPU (Ampere and later) carries one vGPU per VF: once it holds
            # one, every type of that VF reads 0.
            for t in self.mdev_types(bdf):
                self.set_avail(bdf, t, 0)
        else:
            self.set_avail(bdf, mtype, avail - 1)
        m = re.match(r"nvidia-(\d+)$", mtype)
        if self.physfn_of(bdf) and m:
            gi = self.mig_take(self.physfn_of(bdf), int(m.group(1)), ctl)
            if gi:
                self.mig_mdev[u] = gi
                self.mig_apply_mdev(self.physfn_of(bdf), ctl)
        self.vfio_sync(self.group_of(mdir))
        return None

    def remove_mdev(self, mdir, ctl):
        u = os.path.basename(mdir)
        d = os.path.dirname(mdir)
        bdf = self.dev_by_dir.get(self.relof(d))
        tdir = os.path.realpath(os.path.join(mdir, "mdev_type"))
        mtype = os.path.basename(tdir)
        drv = os.path.join(mdir, "driver")
        if os.path.islink(drv):
            self.rmlink(self.p(f"bus/mdev/drivers/{os.path.basename(os.readlink(drv))}/{u}"))
            os.unlink(drv)
        g = self.drop_group_member(mdir, u)
        self.rmlink(os.path.join(tdir, "devices", u))
        self.rmlink(self.p(f"bus/mdev/devices/{u}"))
        shutil.rmtree(mdir)
        if self.physfn_of(bdf) and ctl.get("mdev_one_per_vf", True):
            free = self.mdev_free.get(bdf)
            if free:
                for t, n in free.items():
                    self.set_avail(bdf, t, n)
            else:
                self.set_avail(bdf, mtype, 1)       # [EMU] no free sibling was ever seen
        else:
            cur = self.mdev_avail(bdf).get(mtype, 0)
            self.set_avail(bdf, mtype, cur + 1)
        m = re.match(r"nvidia-(\d+)$", mtype)
        pf = self.physfn_of(bdf)
        if pf and m and self.nvml_gpu(pf, ctl)[1] is not None:
            self.mig_give(pf, self.mig_mdev.pop(u, None), ctl, vtype=int(m.group(1)))
            self.mig_apply_mdev(pf, ctl)
        self.vfio_sync(g)

    def w_mdev_remove(self, rel, s, ctl):
        # drivers/vfio/mdev/mdev_sysfs.c remove_store: kstrtoul(buf, 0) else -EINVAL; 0 does
        # nothing; non-zero removes the device (mdev_core.c mdev_device_remove).
        # mdev_core.c mdev_device_remove: down_read_trylock(&parent->unreg_sem) fails while
        # the parent unregisters -> -ENODEV
        val = kstrtoull(s, 0)
        if val == 0:
            return "0: nothing removed"
        mdir = os.path.dirname(self.p(rel))
        if self.dev_by_dir.get(self.relof(os.path.dirname(mdir))) in self.unregistering:
            raise KErr(errno.ENODEV, "parent unregistration has started")
        self.remove_mdev(mdir, ctl)
        return None

    # -- SR-IOV ----------------------------------------------------------------------------------
    def parse_numvfs(self, pf, s):
        """drivers/pci/iov.c sriov_numvfs_store, before device_lock: kstrtou16 else -EINVAL;
        > sriov_totalvfs -> -ERANGE."""
        try:
            n = kstrtoull(s, 0, 0xffff)
        except KErr:
            raise KErr(errno.EINVAL)
        total = int(self.attr(pf, "sriov_totalvfs", "0") or 0)
        if n > total:
            raise KErr(errno.ERANGE)
        return n

    def w_sriov_numvfs(self, pf, s, ctl):
        # drivers/pci/iov.c sriov_numvfs_store; Documentation/ABI/testing/sysfs-bus-pci:
        # parse_numvfs, then under the PF's device_lock: same number -> success, nothing
        # changes; no driver bound -> -ENOENT; 0 disables; N while VFs are enabled -> -EBUSY.
        n = self.parse_numvfs(pf, s)
        cur = int(self.attr(pf, "sriov_numvfs", "0") or 0)
        if n == cur:
            return "unchanged"
        drv = self.driver_of(pf)
        if drv is None:
            raise KErr(errno.ENOENT, "no driver bound")
        # drivers/vfio/pci/vfio_pci.c vfio_pci_sriov_configure: enable_sriov=N (the default)
        # -> -ENOENT
        if drv == "vfio-pci" and n and not ctl.get("vfio_pci_enable_sriov", False):
            raise KErr(errno.ENOENT, "vfio-pci enable_sriov is off")
        if n == 0:
            self.sriov_disable(pf, ctl)
            return None
        if cur:
            raise KErr(errno.EBUSY)
        tmpl = (ctl.get("sriov") or {}).get(pf)
        tmpl = template_from_spec(tmpl) if tmpl else self.templates.get(pf)
        if not tmpl:
            raise KErr(errno.ENOSYS, "no VF template for this PF in the control file")
        self.sriov_enable(pf, n, tmpl, ctl)
        return None

    def sriov_enable(self, pf, n, tmpl, ctl):
        pfdir = self.dev_dir_of(pf)
        parent = os.path.dirname(pfdir)
        dom, bus, devfn = pf.split(":")[0], int(pf.split(":")[1], 16), pf.split(":")[2]
        slot, fn = int(devfn.split(".")[0], 16), int(devfn.split(".")[1])
        rid = (bus << 8) | (slot << 3) | fn
        offset = int(self.attr(pf, "sriov_offset", str(tmpl.get("offset", 1))) or 1)
        stride = int(self.attr(pf, "sriov_stride", str(tmpl.get("stride", 1))) or 1)
        autoprobe = self.attr(pf, "sriov_drivers_autoprobe", "1") != "0"
        pfgroup = self.group_of(pfdir)
        vendor = any(k == "nvidia/creatable_vgpu_types" for k in tmpl["files"])
        if vendor:
            self.vendor_pfs.add(pf)
            if pf not in self.catalog:
                self.catalog[pf] = parse_creatable(
                    tmpl["files"]["nvidia/creatable_vgpu_types"].decode())
        for i in range(n):
            # drivers/pci/iov.c pci_iov_virtfn_bus/devfn: routing ID = PF + offset + i * stride
            vrid = rid + offset + i * stride
            if (vrid >> 8) != bus:
                raise KErr(errno.ENOSYS, "VFs on another bus are not emulated")
            vbdf = f"{dom}:{vrid >> 8:02x}:{(vrid & 0xff) >> 3:02x}.{vrid & 7}"
            vdir = os.path.join(parent, vbdf)
            os.mkdir(vdir)
            for relp, content in sorted(tmpl["files"].items(), key=lambda kv: kv[0]):
                full = os.path.join(vdir, relp)
                if content is None:
                    os.makedirs(full, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(full), exist_ok=True)
                    self.writef(full, content)
            for ln in ("subsystem", "iommu"):
                if os.path.islink(os.path.join(pfdir, ln)):
                    os.symlink(os.readlink(os.path.join(pfdir, ln)), os.path.join(vdir, ln))
            self.mklink(os.path.join(vdir, "physfn"), pfdir)
            self.mklink(os.path.join(pfdir, f"virtfn{i}"), vdir)
            self.mklink(self.p(f"bus/pci/devices/{vbdf}"), vdir)
            if pfgroup is not None:
                self.new_group(vdir, vbdf, pfgroup)
            self.writef(os.path.join(vdir, "uevent"), vf_uevent(tmpl["files"].get("uevent"), vbdf))
            self.dev_by_dir[self.relof(vdir)] = vbdf
            self.natural[vbdf] = tmpl.get("driver")
            if tmpl.get("driver") and ("mdev_supported_types" in tmpl["files"] or vendor):
                self.owner[vbdf] = tmpl["driver"]
            if "mdev_supported_types" in tmpl["files"]:
                self.mdev_free[vbdf] = dict(tmpl.get("mdev_free") or self.mdev_avail(vbdf))
            if self.owner.get(vbdf):
                # registered only once its driver binds: keep it aside until then
                self.stash_owned(vbdf, ctl)
            if autoprobe:
                # Documentation/ABI/testing/sysfs-bus-pci sriov_drivers_autoprobe: new VFs are
                # bound to a matching driver at once when it reads 1.
                self.device_attach(vbdf, ctl)
        self.writef(os.path.join(pfdir, "sriov_numvfs"), f"{n}\n")
        self.mig_sriov(pf, True, ctl)
        if vendor:
            self.recompute_creatable(pf, ctl)
        self.mig_apply_mdev(pf, ctl)

    def sriov_disable(self, pf, ctl):
        pfdir = self.dev_dir_of(pf)
        for i, vbdf in enumerate(self.vfs_of(pf)):
            vdir = self.dev_dir_of(vbdf)
            self.do_unbind(vbdf, ctl)
            shutil.rmtree(os.path.join(self.stash, vbdf), ignore_errors=True)
            g = self.drop_group_member(vdir, vbdf)
            self.rmlink(self.p(f"bus/pci/devices/{vbdf}"))
            self.rmlink(self.p(f"class/mdev_bus/{vbdf}"))
            self.dev_by_dir.pop(self.relof(vdir), None)
            shutil.rmtree(vdir)
            for k in (self.natural, self.owner, self.mdev_free):
                k.pop(vbdf, None)
            if self.dev_dir and g is not None:
                self.vfio_sync(g)
        for n in os.listdir(pfdir):
            if n.startswith("virtfn") and n[6:].isdigit():
                os.unlink(os.path.join(pfdir, n))
        self.writef(os.path.join(pfdir, "sriov_numvfs"), "0\n")
        self.mig_sriov(pf, False, ctl)

    # -- NVIDIA vendor-specific vGPU [NV] ------------------------------------------------------
    def fb_of(self, vid, line, ctl):
        cfg = (ctl.get("vgpu") or {}).get("framebuffer_mb") or {}
        if str(vid) in cfg:
            return int(cfg[str(vid)])
        m = re.search(r"-(\d+)[A-Z]+\s*$", line)
        return int(m.group(1)) * 1024 if m else 0

    def recompute_creatable(self, pf, ctl):
        """[NV] creatable_vgpu_types lists only what still fits: the set types' framebuffer,
        summed over the PF's VFs, may not exceed the GPU's; in equal-size mode (the default of
        vGPU 17) only types of the size already in use. A VF holding a type lists nothing."""
        header, entries = self.catalog.get(pf, (NVIDIA_HEADER, []))
        cfg = ctl.get("vgpu") or {}
        _, g = self.nvml_gpu(pf, ctl)
        if g is not None and (g.get("mig") or {}).get("current") == 1:
            return self.mig_apply_vendor(pf, g, header)
        lines = dict(entries)
        gpu_fb = (cfg.get("gpu_framebuffer_mb") or {}).get(pf)
        if gpu_fb is None:
            gpu_fb = max([self.fb_of(v, ln, ctl) for v, ln in entries] or [0])
        mode = cfg.get("mode", "equal-size")
        if g is not None and "vgpu_heterogeneous_mode" in g:
            mode = "mixed-size" if g["vgpu_heterogeneous_mode"] else "equal-size"   # NVML's word
        vfs = []
        used, sizes = 0, set()
        for vf in self.vfs_of(pf):
            d = self.dev_dir_of(vf)
            if not d or not os.path.isdir(os.path.join(d, "nvidia")):
                continue
            vfs.append(d)
            try:
                cur = int(self.readf(os.path.join(d, "nvidia", "current_vgpu_type"), "0").strip() or 0)
            except ValueError:
                cur = 0
            if cur:
                fb = self.fb_of(cur, lines.get(cur, ""), ctl)
                used += fb
                sizes.add(fb)
        for d in vfs:
            f = os.path.join(d, "nvidia", "creatable_vgpu_types")
            try:
                cur = int(self.readf(os.path.join(d, "nvidia", "current_vgpu_type"), "0").strip() or 0)
            except ValueError:
                cur = 0
            keep = []
            if not cur:
                for vid, ln in entries:
                    fb = self.fb_of(vid, ln, ctl)
                    if used + fb > gpu_fb:
                        continue
                    if mode == "equal-size" and sizes and fb not in sizes:
                        continue
                    keep.append(ln)
            self.writef(f, header + "".join(keep))

    def clear_vgpu_type(self, d):
        gif = os.path.join(d, "nvidia", "gpu_instance_id")
        gi = (self.readf(gif, "") or "").strip() if os.path.exists(gif) else ""
        bdf = self.dev_by_dir.get(self.relof(d))
        if gi.isdigit() and bdf and self.physfn_of(bdf):
            self.mig_give(self.physfn_of(bdf), int(gi), self.control())
            self.writef(gif, "")
        self.writef(os.path.join(d, "nvidia", "current_vgpu_type"), "0\n")
        for n in ("placement_id", "warm_update"):
            if os.path.exists(os.path.join(d, "nvidia", n)):
                self.writef(os.path.join(d, "nvidia", n), "")

    def w_current_vgpu_type(self, bdf, s, ctl):
        # [NV] writing an id from creatable_vgpu_types sets it; 0 clears it; another id while
        # one is set -> EBUSY; an id not creatable on this VF now -> EINVAL.
        try:
            n = kstrtoull(s.strip() + "\n", 10, 0xffffffff)
        except KErr:
            raise KErr(errno.EINVAL)
        d = self.dev_dir_of(bdf)
        try:
            cur = int(self.readf(os.path.join(d, "nvidia", "current_vgpu_type"), "0").strip() or 0)
        except ValueError:
            cur = 0
        pf = self.physfn_of(bdf)
        if n == 0:
            if cur:
                self.clear_vgpu_type(d)
                if pf:
                    self.recompute_creatable(pf, ctl)
            return None
        if cur:
            raise KErr(errno.EBUSY, f"type {cur} is set")
        _, entries = parse_creatable(self.readf(os.path.join(d, "nvidia", "creatable_vgpu_types"), ""))
        if n not in dict(entries):
            raise KErr(errno.EINVAL, "not in creatable_vgpu_types")
        gi = self.mig_take(pf, n, ctl) if pf else None
        if gi is False:
            raise KErr(errno.EIO, "no free GPU instance for this MIG-backed type")
        self.writef(os.path.join(d, "nvidia", "current_vgpu_type"), f"{n}\n")
        # after a write, placement_id and warm_update read 0 (cubecos#312 capture)
        for f in ("placement_id", "warm_update"):
            if os.path.exists(os.path.join(d, "nvidia", f)):
                self.writef(os.path.join(d, "nvidia", f), "0\n")
        if gi is not None and os.path.exists(os.path.join(d, "nvidia", "gpu_instance_id")):
            self.writef(os.path.join(d, "nvidia", "gpu_instance_id"), f"{gi}\n")
        if pf:
            self.recompute_creatable(pf, ctl)
        return None

    # -- MIG, from the fake NVML's state file (tests/fakenvml) [NV] ------------------------------
    # The control file's "nvml_state" names the JSON file the fake libnvidia-ml.so.1 keeps
    # (MIG mode, GPU instances, vGPU types with their GI profile). In MIG mode a free VF offers
    # the MIG-backed types whose profile has a GI no vGPU sits on; setting one (or creating an
    # mdev of one) takes the lowest such GI, which the VF's nvidia/gpu_instance_id then shows;
    # enabling SR-IOV wipes the GIs; MIG changes are refused by the fake while VFs are
    # enabled (research mig-vgpu.md, "Order of operations"). Changes the fake makes (a GI
    # created or destroyed) show at the next read of a list.
    def nvml_load(self, ctl):
        path = ctl.get("nvml_state")
        if not path:
            return None, None
        try:
            with open(path) as f:
                return path, json.load(f)
        except (OSError, ValueError):
            return path, None

    def nvml_save(self, path, doc):
        tmp = f"{path}.emu.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, path)

    def nvml_gpu(self, pf, ctl, doc=None):
        if doc is None:
            _, doc = self.nvml_load(ctl)
        for g in (doc or {}).get("gpus", []):
            if g.get("pci_bus_id", "").lower()[-12:] == pf[-12:]:
                return doc, g
        return doc, None

    def nvml_sync(self, ctl):
        path = ctl.get("nvml_state")
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        sig = (path, st.st_mtime_ns, st.st_size) if st else None
        if sig == self.nvml_sig:
            return
        self.nvml_sig = sig
        _, doc = self.nvml_load(ctl)
        for g in (doc or {}).get("gpus", []):
            pf = next((b for b in self.dev_by_dir.values() if b[-12:] == g.get("pci_bus_id", "").lower()[-12:]), None)
            if pf in self.vendor_pfs:
                self.recompute_creatable(pf, ctl)
            elif pf:
                self.mig_apply_mdev(pf, ctl)

    def mig_free_profiles(self, g):
        return {gi["profile_id"] for gi in g.get("gpu_instances", []) if not gi.get("in_use")}

    def mig_apply_vendor(self, pf, g, header):
        free = self.mig_free_profiles(g)
        keep = [f"{t['id']:<5d} : {t['name']}\n" for t in sorted(g.get("vgpu_types", []), key=lambda t: t["id"])
                if t.get("gi_profile_id") in free]
        for vf in self.vfs_of(pf):
            d = self.dev_dir_of(vf)
            if not d or not os.path.isdir(os.path.join(d, "nvidia")):
                continue
            cur = (self.readf(os.path.join(d, "nvidia", "current_vgpu_type"), "0") or "0").strip()
            self.writef(os.path.join(d, "nvidia", "creatable_vgpu_types"),
                        (header or NVIDIA_HEADER) + ("" if cur not in ("0", "") else "".join(keep)))

    def mig_apply_mdev(self, pf, ctl):
        _, g = self.nvml_gpu(pf, ctl)
        if g is None or (g.get("mig") or {}).get("current") != 1:
            return
        free = self.mig_free_profiles(g)
        prof = {t["id"]: t.get("gi_profile_id") for t in g.get("vgpu_types", [])}
        for vf in self.vfs_of(pf):
            busy = bool(self.mdevs_under(vf))
            for t in self.mdev_types(vf):
                m = re.match(r"nvidia-(\d+)$", t)
                p = prof.get(int(m.group(1))) if m else None
                self.set_avail(vf, t, 1 if not busy and p is not None and p in free else 0)

    def mig_take(self, pf, vtype, ctl):
        """The GI a vGPU of VTYPE takes: its id (marked in_use in the state), None when the GPU
        or the type is not MIG, False when no GI of its profile is free."""
        path, doc = self.nvml_load(ctl)
        doc, g = self.nvml_gpu(pf, ctl, doc)
        if g is None or (g.get("mig") or {}).get("current") != 1:
            return None
        p = next((t.get("gi_profile_id") for t in g.get("vgpu_types", []) if t["id"] == vtype), None)
        if p is None:
            return None
        for gi in sorted(g.get("gpu_instances", []), key=lambda x: x["id"]):
            if gi["profile_id"] == p and not gi.get("in_use"):
                gi["in_use"] = 1
                self.nvml_save(path, doc)
                return gi["id"]
        return False

    def mig_give(self, pf, gi_id, ctl, vtype=None):
        """GI GI_ID (else one in use of VTYPE's profile) no longer carries a vGPU."""
        path, doc = self.nvml_load(ctl)
        doc, g = self.nvml_gpu(pf, ctl, doc)
        if g is None:
            return
        p = next((t.get("gi_profile_id") for t in g.get("vgpu_types", []) if t["id"] == vtype), None)
        for gi in sorted(g.get("gpu_instances", []), key=lambda x: x["id"]):
            if gi.get("in_use") and (gi["id"] == gi_id if gi_id is not None else gi["profile_id"] == p):
                gi.pop("in_use", None)
                self.nvml_save(path, doc)
                return

    def mig_sriov(self, pf, enabled, ctl):
        """[NV] enabling VFs rebinds the GPU and wipes its GIs; the fake refuses MIG changes
        while they are enabled (vfs_enabled)."""
        path, doc = self.nvml_load(ctl)
        doc, g = self.nvml_gpu(pf, ctl, doc)
        if g is None:
            return
        g["vfs_enabled"] = 1 if enabled else 0
        if enabled:
            g["gpu_instances"] = []
        else:
            for gi in g.get("gpu_instances", []):
                gi.pop("in_use", None)
        self.nvml_save(path, doc)

    def destroy(self, path):
        shutil.rmtree(self.stash, ignore_errors=True)


# lists the fake NVML's state can change behind the emulator's back (a GI created)
NVML_SYNCED = ("creatable_vgpu_types", "available_instances")


def parse_creatable(text):
    """'ID    : vGPU Name' header, then '1152  : NVIDIA L40S-8Q' lines -> (header, [(id, line)])."""
    header, out = None, []
    for ln in (text or "").splitlines(keepends=True):
        m = re.match(r"\s*(\d+)\s*:", ln)
        if m:
            out.append((int(m.group(1)), ln if ln.endswith("\n") else ln + "\n"))
        elif header is None and ln.strip():
            header = ln if ln.endswith("\n") else ln + "\n"
    return header, out


def vf_uevent(tmpl_uevent, bdf):
    lines = []
    for ln in (tmpl_uevent or b"").decode().splitlines():
        if ln.startswith("DRIVER="):
            continue
        if ln.startswith("PCI_SLOT_NAME="):
            ln = f"PCI_SLOT_NAME={bdf}"
        lines.append(ln)
    if not any(ln.startswith("PCI_SLOT_NAME=") for ln in lines):
        lines.append(f"PCI_SLOT_NAME={bdf}")
    return "".join(ln + "\n" for ln in lines)


def template_from_spec(spec):
    """A control-file VF template in the host.json device format (fixtures/README.md):
    attrs, config (hex), driver, nvidia, mdev_types, files."""
    files = {}
    attrs = spec.get("attrs") or {}
    for k, v in attrs.items():
        files[k] = f"{v}\n".encode()
    files.setdefault("irq", b"0\n")
    files.setdefault("resource", b"0x0000000000000000 0x0000000000000000 0x0000000000000000\n" * 13)
    files["driver_override"] = b"(null)\n"
    files["remove"] = b""
    files["rescan"] = b""
    if "reset_method" in attrs:
        files["reset"] = b""
    if spec.get("config"):
        files["config"] = bytes.fromhex(spec["config"])
    else:   # a VF's config space reads ffff for vendor and device
        files["config"] = b"\xff\xff\xff\xff" + bytes(60)
    try:
        ven, dev = int(attrs.get("vendor", "0"), 16), int(attrs.get("device", "0"), 16)
        cls = int(attrs.get("class", "0"), 16)
        sv, sd = int(attrs.get("subsystem_vendor", "0"), 16), int(attrs.get("subsystem_device", "0"), 16)
        files["uevent"] = (f"PCI_CLASS={cls:X}\nPCI_ID={ven:04X}:{dev:04X}\n"
                           f"PCI_SUBSYS_ID={sv:04X}:{sd:04X}\nPCI_SLOT_NAME=\n").encode()
        modalias = (f"pci:v{ven:08X}d{dev:08X}sv{sv:08X}sd{sd:08X}"
                    f"bc{cls >> 16:02X}sc{(cls >> 8) & 0xff:02X}i{cls & 0xff:02X}\n")
        files.setdefault("modalias", modalias.encode())
    except ValueError:
        files["uevent"] = b"PCI_SLOT_NAME=\n"
    for k, v in (spec.get("nvidia") or {}).items():
        files["nvidia"] = None
        files[f"nvidia/{k}"] = v.encode()
    free = {}
    if spec.get("mdev_types"):
        files["mdev_supported_types"] = None
    for t in spec.get("mdev_types") or []:
        base = f"mdev_supported_types/{t['type']}"
        files[base] = None
        files[f"{base}/devices"] = None
        if t.get("name") is not None:
            files[f"{base}/name"] = f"{t['name']}\n".encode()
        files[f"{base}/description"] = f"{t.get('description', '')}\n".encode()
        files[f"{base}/device_api"] = f"{t.get('device_api', 'vfio-pci')}\n".encode()
        files[f"{base}/available_instances"] = f"{t.get('available_instances', 1)}\n".encode()
        files[f"{base}/create"] = b""
        free[t["type"]] = int(t.get("available_instances", 1))
    for k, v in (spec.get("files") or {}).items():
        files[k] = v.encode()
    return {"files": files, "driver": spec.get("driver"), "mdev_free": free,
            "offset": spec.get("offset", 1), "stride": spec.get("stride", 1)}


# ---- main -----------------------------------------------------------------------------------

def umount(path):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), 2) != 0:     # MNT_DETACH
        return ctypes.get_errno()
    return 0


def pid_alive(pid):
    """False once @pid is gone, a zombie, or dying: a killed process whose threads wait in a
    write to this file system (the kernel's fuse request_wait_answer) stays until the write is
    answered, with SIGKILL pending; a hang held `forever` would keep both waiting."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/status") as f:
            st = dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)
    except OSError:
        return False
    if st.get("State", "").split()[:1] in (["Z"], ["X"]):
        return False
    try:
        pending = int(st.get("SigPnd", "0"), 16) | int(st.get("ShdPnd", "0"), 16)
    except ValueError:
        return True
    return not pending & (1 << (signal.SIGKILL - 1))


def main(argv=None):
    ap = argparse.ArgumentParser(description="FUSE sysfs emulator (see tests/emu/README.md)")
    ap.add_argument("backing")
    ap.add_argument("mountpoint")
    ap.add_argument("--control")
    ap.add_argument("--log")
    ap.add_argument("--dev-dir")
    ap.add_argument("--watch-pid", type=int,
                    help="stop (and unmount) when this process is gone, e.g. a killed test")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.backing) or not os.path.isdir(a.mountpoint):
        sys.stderr.write("sysfsemu: BACKING and MOUNTPOINT must be directories\n")
        return 2
    ctl_dir = os.path.dirname(os.path.abspath(a.control)) if a.control else None
    log = a.log or (os.path.join(ctl_dir, "writes.jsonl") if ctl_dir else None)
    dev_dir = a.dev_dir or (os.path.join(ctl_dir, "dev") if ctl_dir else None)
    emu = SysfsEmu(a.backing, os.path.abspath(a.control) if a.control else None, log, dev_dir)
    mnt = os.path.abspath(a.mountpoint)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    # Installed before libfuse starts: libfuse then keeps its own handlers off these signals
    # (it only replaces SIG_DFL), so the main thread decides how to stop.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    result = {}

    def run():
        try:
            FUSE(emu, mnt, foreground=True, nothreads=False, fsname="sysfsemu",
                 subtype="sysfsemu", entry_timeout=0, attr_timeout=0, negative_timeout=0,
                 direct_io=True)
            result["rc"] = 0
        except BaseException as e:     # mount failure: fusepy raises RuntimeError
            result["rc"] = 1
            result["err"] = e

    t = threading.Thread(target=run, name="fuse", daemon=True)
    t.start()
    while t.is_alive() and not stop.is_set():
        stop.wait(0.2)
        if a.watch_pid and not pid_alive(a.watch_pid):
            stop.set()
    if stop.is_set() and t.is_alive():
        emu.stopping.set()           # wake hanging writes so the kernel can drop the mount
        emu.locks.wake_all()         # ...and those waiting for a device lock
        umount(mnt)
        t.join(15)
        if t.is_alive():
            sys.stderr.write("sysfsemu: FUSE loop did not stop; exiting anyway\n")
            shutil.rmtree(emu.stash, ignore_errors=True)
            os._exit(1)
    shutil.rmtree(emu.stash, ignore_errors=True)
    if result.get("rc") and not stop.is_set():
        sys.stderr.write(f"sysfsemu: mount failed: {result.get('err')}\n")
        return 1
    # asked to stop: fusepy may raise as the mount goes away under a request in flight; the
    # mount is gone, as asked
    return 0


if __name__ == "__main__":
    sys.exit(main())
