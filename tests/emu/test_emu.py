#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Self-test of the sysfs emulator (tests/emu/sysfsemu.py) against three fixture hosts.

Usage: test_emu.py [-v] [-k SUBSTRING]

Every test mounts a fresh emulator on a copy of a fixture host and does what a hook would do
(writes of one write(2) each, as `echo` does), then checks the links, files, errnos and the
write log. Hosts come from $GPUH_TEST_BINDIR/fixtures/hosts (default <repo>/build/fixtures/hosts)
or, when missing, are built with fixtures/mkhost.py into a temporary directory. Prints one line per test and 'N passed, N failed'; exits 1 on a failure,
77 when FUSE cannot be used here (no /dev/fuse, no python3-fusepy, mount refused).
"""
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from emu import Emulator, Skip, errname, fuse_available, is_mounted, scratch_parent  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
HOSTS = ("hpe-dl380g9-a2-vgpu", "consumer-rtx3080", "l40s-vendor-vgpu")
TESTS = []
HOST_SYS = {}


def test(host):
    def deco(fn):
        TESTS.append((fn.__name__, host, fn))
        return fn
    return deco


class Fail(AssertionError):
    pass


def eq(got, want, what):
    if got != want:
        raise Fail(f"{what}: got {got!r}, want {want!r}")


def ok(cond, what):
    if not cond:
        raise Fail(what)


def w(emu, rel, value, want=0):
    """One write; assert its errno (0 = success)."""
    got = emu.write(rel, value)
    if got != want:
        raise Fail(f"echo {value!r} > {rel}: got {errname(got)}, want {errname(want)}")


def drv(emu, bdf):
    p = emu.path(f"bus/pci/devices/{bdf}/driver")
    return os.path.basename(os.readlink(p)) if os.path.islink(p) else None


def creatable(emu, bdf):
    text = emu.read(f"bus/pci/devices/{bdf}/nvidia/creatable_vgpu_types")
    return [int(ln.split(":")[0]) for ln in text.splitlines()[1:]]


A2 = "bus/pci/devices/0000:08:00.0"
TYPES = "mdev_supported_types"
U1 = "11111111-2222-4333-8444-555555555555"


# ---- PCI binding: driver_override / unbind / drivers_probe / bind ------------------------------

@test("hpe-dl380g9-a2-vgpu")
def hook_vfio_roundtrip_on_a_nic(emu):
    """The hook's sequence on a plain function: to vfio-pci and back to its own driver."""
    d = "bus/pci/devices/0000:04:00.1"
    eq(drv(emu, "0000:04:00.1"), "ixgbe", "driver at mount")
    ok("36" not in emu.dev_vfio(), "no /dev/vfio/36 before")
    w(emu, f"{d}/driver_override", "vfio-pci\n")
    eq(emu.read(f"{d}/driver_override"), "vfio-pci\n", "override")
    eq(drv(emu, "0000:04:00.1"), "ixgbe", "override alone does not rebind")
    w(emu, f"{d}/driver/unbind", "0000:04:00.1\n")
    eq(drv(emu, "0000:04:00.1"), None, "after unbind")
    ok(not os.path.lexists(emu.path("bus/pci/drivers/ixgbe/0000:04:00.1")), "ixgbe back link gone")
    ok("DRIVER=" not in emu.read(f"{d}/uevent"), "uevent without DRIVER")
    w(emu, "bus/pci/drivers_probe", "0000:04:00.1\n")
    eq(drv(emu, "0000:04:00.1"), "vfio-pci", "after drivers_probe")
    ok(os.path.islink(emu.path("bus/pci/drivers/vfio-pci/0000:04:00.1")), "vfio-pci back link")
    ok(emu.read(f"{d}/uevent").startswith("DRIVER=vfio-pci\n"), "uevent DRIVER=vfio-pci")
    ok("36" in emu.dev_vfio(), "/dev/vfio/36 appears")
    # back: clear the override, unbind, probe -> the driver the ID table picks
    w(emu, f"{d}/driver_override", "\n")
    eq(emu.read(f"{d}/driver_override"), "(null)\n", "override cleared")
    w(emu, f"{d}/driver/unbind", "0000:04:00.1\n")
    ok("36" not in emu.dev_vfio(), "/dev/vfio/36 gone")
    w(emu, "bus/pci/drivers_probe", "0000:04:00.1\n")
    eq(drv(emu, "0000:04:00.1"), "ixgbe", "back to the natural driver")
    eq([(r["path"], r["value"], r["result"]) for r in emu.writes()], [
        ("devices/pci0000:00/0000:00:02.2/0000:04:00.1/driver_override", "vfio-pci\n", "ok"),
        ("bus/pci/drivers/ixgbe/unbind", "0000:04:00.1\n", "ok"),
        ("bus/pci/drivers_probe", "0000:04:00.1\n", "ok"),
        ("devices/pci0000:00/0000:00:02.2/0000:04:00.1/driver_override", "\n", "ok"),
        ("bus/pci/drivers/vfio-pci/unbind", "0000:04:00.1\n", "ok"),
        ("bus/pci/drivers_probe", "0000:04:00.1\n", "ok")], "write log")
    eq(emu.writes()[0]["alias"], f"{d}/driver_override", "log alias")


@test("hpe-dl380g9-a2-vgpu")
def hook_sequence_through_a_shell(emu):
    """The same through sh -c 'echo ... > ...' (O_TRUNC opens, relative ../drivers_probe)."""
    d = emu.path("bus/pci/devices/0000:05:00.0")
    script = (f"cd {d} && echo vfio-pci > driver_override && echo 0000:05:00.0 > driver/unbind"
              f" && echo 0000:05:00.0 > ../../../../bus/pci/drivers_probe")
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    eq(r.returncode, 0, f"shell sequence ({r.stderr.strip()})")
    eq(drv(emu, "0000:05:00.0"), "vfio-pci", "driver after the shell sequence")
    r = subprocess.run(["sh", "-c", f"echo 1 > {d}/vendor"], capture_output=True, text=True)
    ok(r.returncode != 0, "shell write to vendor fails")


@test("hpe-dl380g9-a2-vgpu")
def bind_unbind_errnos(emu):
    w(emu, "bus/pci/drivers/nvme/unbind", "0000:04:00.0\n", errno.ENODEV)     # bound to ixgbe
    w(emu, "bus/pci/drivers/ixgbe/unbind", "0000:99:00.0\n", errno.ENODEV)    # no such device
    w(emu, "bus/pci/drivers/ixgbe/unbind", "04:00.0\n", errno.ENODEV)         # not the full name
    w(emu, "bus/pci/drivers/ixgbe/bind", "0000:04:00.0\n", errno.EBUSY)       # already bound
    w(emu, "bus/pci/drivers/ixgbe/bind", "0000:99:00.0\n", errno.ENODEV)
    w(emu, "bus/pci/drivers/ixgbe/unbind", "0000:04:00.0")                   # no newline: fine
    w(emu, "bus/pci/drivers/vfio-pci/bind", "0000:04:00.0\n", errno.ENODEV)   # no id match
    w(emu, "bus/pci/drivers/nvme/bind", "0000:04:00.0\n", errno.ENODEV)       # not its device
    w(emu, "bus/pci/drivers/ixgbe/bind", "0000:04:00.0\n")                    # ID table
    eq(drv(emu, "0000:04:00.0"), "ixgbe", "rebound by bind")
    w(emu, "bus/pci/devices/0000:04:00.0/driver_override", "vfio-pci")
    w(emu, "bus/pci/drivers/ixgbe/unbind", "0000:04:00.0\n")
    w(emu, "bus/pci/drivers/ixgbe/bind", "0000:04:00.0\n", errno.ENODEV)      # override excludes it
    w(emu, "bus/pci/drivers/vfio-pci/bind", "0000:04:00.0\n")
    eq(drv(emu, "0000:04:00.0"), "vfio-pci", "bound by vfio-pci/bind with an override")
    w(emu, "bus/pci/drivers_probe", "0000:04:00.0\n")                         # bound: no-op
    w(emu, "bus/pci/drivers_probe", "0000:99:00.0\n", errno.ENODEV)
    # a bridge refuses vfio-pci (header type 1)
    w(emu, "bus/pci/devices/0000:00:1c.2/driver_override", "vfio-pci\n")
    w(emu, "bus/pci/drivers/pcieport/unbind", "0000:00:1c.2\n")
    w(emu, "bus/pci/drivers/vfio-pci/bind", "0000:00:1c.2\n", errno.EINVAL)
    w(emu, "bus/pci/drivers_probe", "0000:00:1c.2\n")                         # swallowed
    eq(drv(emu, "0000:00:1c.2"), None, "bridge stays unbound")
    # an override naming a driver that is not loaded: probe binds nothing, still success
    w(emu, "bus/pci/devices/0000:05:00.0/driver_override", "none\n")
    w(emu, "bus/pci/drivers/nvme/unbind", "0000:05:00.0\n")
    w(emu, "bus/pci/drivers_probe", "0000:05:00.0\n")
    eq(drv(emu, "0000:05:00.0"), None, "override 'none' keeps it unbound")
    eq(emu.writes()[-1]["note"], "no driver matched", "log note")


@test("hpe-dl380g9-a2-vgpu")
def driver_override_parsing(emu):
    d = "bus/pci/devices/0000:04:00.0/driver_override"
    eq(emu.read(d), "(null)\n", "initial")
    w(emu, d, "vfio-pci")
    eq(emu.read(d), "vfio-pci\n", "without newline")
    w(emu, d, "pci-stub\nignored")
    eq(emu.read(d), "pci-stub\n", "up to the first newline")
    w(emu, d, "\n")
    eq(emu.read(d), "(null)\n", "lone newline clears")
    w(emu, d, "x" * 5000, errno.EINVAL)
    eq(emu.read(d), "(null)\n", "too long leaves it")


@test("hpe-dl380g9-a2-vgpu")
def new_id_remove_id(emu):
    w(emu, "bus/pci/drivers/ixgbe/unbind", "0000:04:00.1\n")
    w(emu, "bus/pci/drivers/vfio-pci/new_id", "8086\n", errno.EINVAL)
    w(emu, "bus/pci/drivers/vfio-pci/new_id", "8086 10fb\n")     # binds unbound 04:00.1 only
    eq(drv(emu, "0000:04:00.1"), "vfio-pci", "new_id probes unbound matches")
    eq(drv(emu, "0000:04:00.0"), "ixgbe", "bound devices untouched")
    w(emu, "bus/pci/drivers/vfio-pci/new_id", "8086 10fb\n", errno.EEXIST)
    w(emu, "bus/pci/drivers/ixgbe/new_id", "8086 10fb\n", errno.EEXIST)     # its ID table
    w(emu, "bus/pci/drivers/vfio-pci/remove_id", "8086 10fb\n")
    w(emu, "bus/pci/drivers/vfio-pci/remove_id", "8086 10fb\n", errno.ENODEV)


@test("hpe-dl380g9-a2-vgpu")
def read_only_and_write_only(emu):
    d = "bus/pci/devices/0000:08:00.0"
    for attr in ("vendor", "device", "class", "config", "iommu_group/type", "sriov_totalvfs",
                 f"../0000:08:00.4/{TYPES}/nvidia-746/available_instances"):
        w(emu, f"{d}/{attr}", "1\n", errno.EACCES)
    w(emu, f"{d}/remove", "1\n", errno.EOPNOTSUPP)                 # writable, not emulated
    w(emu, f"{d}/reset", "1\n")                                    # accepted, nothing happens
    try:
        emu.read("bus/pci/drivers/nvidia/bind")
        raise Fail("reading bind succeeded")
    except PermissionError:
        pass
    eq(os.stat(emu.path("bus/pci/drivers/nvidia/bind")).st_mode & 0o777, 0o200, "bind mode")
    eq(os.stat(emu.path(f"{d}/driver_override")).st_mode & 0o777, 0o644, "driver_override mode")
    eq(os.stat(emu.path(f"{d}/vendor")).st_mode & 0o777, 0o444, "vendor mode")
    try:
        open(emu.path(f"{d}/newfile"), "w").close()
        raise Fail("creating a file succeeded")
    except PermissionError:
        pass
    eq(emu.writes()[0]["result"], "EACCES", "failed open is logged")


# ---- vfio-pci and SR-IOV ---------------------------------------------------------------------

@test("hpe-dl380g9-a2-vgpu")
def vfio_refuses_pf_with_vfs_then_sriov_cycle(emu):
    bdf = "0000:08:00.0"
    w(emu, f"{A2}/driver_override", "vfio-pci\n")
    w(emu, f"{A2}/driver/unbind", f"{bdf}\n")
    w(emu, "bus/pci/drivers_probe", f"{bdf}\n")              # probe fails, write succeeds
    eq(drv(emu, bdf), None, "PF with VFs not taken by vfio-pci")
    ok("EBUSY" in emu.writes()[-1]["note"], "log notes the EBUSY probe")
    w(emu, "bus/pci/drivers/vfio-pci/bind", f"{bdf}\n", errno.EBUSY)
    w(emu, f"{A2}/sriov_numvfs", "0\n", errno.ENOENT)        # no driver bound
    w(emu, f"{A2}/driver_override", "\n")
    w(emu, "bus/pci/drivers_probe", f"{bdf}\n")
    eq(drv(emu, bdf), "nvidia", "back on nvidia")
    w(emu, f"{A2}/sriov_numvfs", "17\n", errno.ERANGE)
    w(emu, f"{A2}/sriov_numvfs", "8\n", errno.EBUSY)
    w(emu, f"{A2}/sriov_numvfs", "16\n")                     # unchanged
    w(emu, f"{A2}/sriov_numvfs", "x\n", errno.EINVAL)
    w(emu, f"{A2}/sriov_numvfs", "0\n")
    eq(emu.read(f"{A2}/sriov_numvfs"), "0\n", "numvfs 0")
    ok(not os.path.lexists(emu.path("bus/pci/devices/0000:08:00.4")), "VF gone")
    ok(not [n for n in os.listdir(emu.path(A2)) if n.startswith("virtfn")], "virtfn links gone")
    eq(os.listdir(emu.path("bus/mdev/devices")), [], "its mdevs gone")
    ok(not os.path.exists(emu.path("kernel/iommu_groups/90")), "VF group gone")
    ok(not os.path.lexists(emu.path("class/mdev_bus/0000:08:00.4")), "mdev_bus link gone")
    # now vfio-pci takes it
    w(emu, f"{A2}/driver_override", "vfio-pci\n")
    w(emu, f"{A2}/driver/unbind", f"{bdf}\n")
    w(emu, "bus/pci/drivers_probe", f"{bdf}\n")
    eq(drv(emu, bdf), "vfio-pci", "PF without VFs bound to vfio-pci")
    ok("38" in emu.dev_vfio(), "/dev/vfio/38")
    w(emu, f"{A2}/sriov_numvfs", "4\n", errno.ENOENT)        # vfio-pci: enable_sriov off
    w(emu, f"{A2}/driver_override", "\n")
    w(emu, f"{A2}/driver/unbind", f"{bdf}\n")
    w(emu, "bus/pci/drivers_probe", f"{bdf}\n")
    eq(drv(emu, bdf), "nvidia", "back on nvidia")
    w(emu, f"{A2}/sriov_numvfs", "16\n")
    vf = "bus/pci/devices/0000:08:02.3"
    eq(drv(emu, "0000:08:02.3"), "nvidia", "recreated VF probed (sriov_drivers_autoprobe 1)")
    eq(emu.readlink(f"{A2}/virtfn15"), "../0000:08:02.3", "virtfn15")
    eq(emu.readlink(f"{vf}/physfn"), "../0000:08:00.0", "physfn")
    eq(emu.read(f"{vf}/{TYPES}/nvidia-746/available_instances"), "1\n", "free profile 746")
    eq(emu.read(f"{vf}/{TYPES}/nvidia-742/available_instances"), "0\n", "free profile 742")
    eq(emu.read(f"{vf}/driver_override"), "(null)\n", "new VF override")
    ok("PCI_SLOT_NAME=0000:08:02.3\n" in emu.read(f"{vf}/uevent"), "uevent slot name")
    ok(os.path.islink(emu.path("class/mdev_bus/0000:08:02.3")), "mdev_bus link")
    g = os.path.basename(emu.readlink(f"{vf}/iommu_group"))
    ok(os.path.islink(emu.path(f"kernel/iommu_groups/{g}/devices/0000:08:02.3")), "group back link")
    eq(len(set(os.path.basename(emu.readlink(f"bus/pci/devices/0000:08:0{s}/iommu_group"))
               for s in ("0.4", "0.5", "1.0", "2.3"))), 4, "one new group per VF")
    eq(emu.read(f"{A2}/sriov_numvfs"), "16\n", "numvfs 16")


@test("hpe-dl380g9-a2-vgpu")
def sriov_needs_a_template(emu):
    nic = "bus/pci/devices/0000:04:00.0"
    w(emu, f"{nic}/sriov_numvfs", "2\n", errno.ENOSYS)
    eq(emu.writes()[-1]["note"], "no VF template for this PF in the control file", "note")
    emu.control({"sriov": {"0000:04:00.0": {
        "driver": "ixgbevf", "offset": 128, "stride": 2,
        "attrs": {"vendor": "0x8086", "device": "0x10ed", "class": "0x020000"}}}})
    w(emu, f"{nic}/sriov_numvfs", "2\n")
    # the fixture's ixgbe gives no sriov_offset/stride, so the template's are used
    for vf in ("0000:04:10.0", "0000:04:10.2"):
        ok(os.path.isdir(emu.path(f"bus/pci/devices/{vf}")), f"VF {vf}")
        eq(emu.read(f"bus/pci/devices/{vf}/device"), "0x10ed\n", "template attr")
        eq(drv(emu, vf), None, "no ixgbevf driver here: unbound")
    w(emu, f"{nic}/sriov_numvfs", "0\n")
    ok(not os.path.lexists(emu.path("bus/pci/devices/0000:04:10.0")), "VFs removed")


@test("l40s-vendor-vgpu")
def sriov_autoprobe_off(emu):
    pf = "bus/pci/devices/0000:26:00.0"
    w(emu, f"{pf}/sriov_drivers_autoprobe", "maybe\n", errno.EINVAL)
    w(emu, f"{pf}/sriov_drivers_autoprobe", "n\n")
    eq(emu.read(f"{pf}/sriov_drivers_autoprobe"), "0\n", "stored as 0")
    w(emu, f"{pf}/sriov_numvfs", "0\n")
    w(emu, f"{pf}/sriov_numvfs", "2\n")
    eq([drv(emu, b) for b in ("0000:26:00.4", "0000:26:00.5")], [None, None], "VFs left unbound")
    ok(not os.path.exists(emu.path("bus/pci/devices/0000:26:00.4/nvidia")),
       "no nvidia/ files before nvidia binds")
    w(emu, "bus/pci/drivers_probe", "0000:26:00.4\n")
    eq(drv(emu, "0000:26:00.4"), "nvidia", "probed on request")
    eq(creatable(emu, "0000:26:00.4"), L40S_ALL, "nvidia/ files with the full list")


@test("consumer-rtx3080")
def passthrough_gpu_back_to_host(emu):
    """The RTX 3080 (05:00.0 + audio 05:00.1, group 24) is on vfio-pci at mount."""
    ok("24" in emu.dev_vfio(), "/dev/vfio/24 at mount")
    for bdf, want in (("0000:05:00.0", "nvidia"), ("0000:05:00.1", "snd_hda_intel")):
        w(emu, f"bus/pci/devices/{bdf}/driver/unbind", f"{bdf}\n")
        w(emu, "bus/pci/drivers_probe", f"{bdf}\n")
        eq(drv(emu, bdf), want, f"{bdf} natural driver")
    ok("24" not in emu.dev_vfio(), "/dev/vfio/24 gone")
    for bdf in ("0000:05:00.1", "0000:05:00.0"):
        w(emu, f"bus/pci/devices/{bdf}/driver_override", "vfio-pci\n")
        w(emu, f"bus/pci/devices/{bdf}/driver/unbind", f"{bdf}\n")
        w(emu, "bus/pci/drivers_probe", f"{bdf}\n")
        eq(drv(emu, bdf), "vfio-pci", f"{bdf} on vfio-pci")
    ok("24" in emu.dev_vfio(), "/dev/vfio/24 back")
    # the boot GT 710 shares group 15 with a NIC; binding still works (viability not modelled)
    w(emu, "bus/pci/devices/0000:04:00.0/driver_override", "vfio-pci\n")
    w(emu, "bus/pci/drivers/nvidia/unbind", "0000:04:00.0\n")
    w(emu, "bus/pci/drivers_probe", "0000:04:00.0\n")
    eq(drv(emu, "0000:04:00.0"), "vfio-pci", "GT 710")
    ok("15" in emu.dev_vfio(), "/dev/vfio/15")
    if shutil.which("lspci"):
        r = subprocess.run(["lspci", "-A", "linux-sysfs", "-O", f"sysfs.path={emu.path('bus/pci')}",
                            "-k", "-s", "04:00.0"], capture_output=True, text=True)
        ok("Kernel driver in use: vfio-pci" in r.stdout, f"lspci -k sees vfio-pci: {r.stdout}")


@test("consumer-rtx3080")
def natural_driver_from_control(emu):
    emu.control({"natural_drivers": {"0000:05:00.0": "nouveau"}})
    w(emu, "bus/pci/drivers/vfio-pci/unbind", "0000:05:00.0\n")
    w(emu, "bus/pci/drivers_probe", "0000:05:00.0\n")        # no nouveau driver dir here
    eq(drv(emu, "0000:05:00.0"), None, "stays unbound without that driver")


# ---- mdev --------------------------------------------------------------------------------------

@test("hpe-dl380g9-a2-vgpu")
def mdev_create_remove(emu):
    vf = "bus/pci/devices/0000:08:00.5"
    t = f"{vf}/{TYPES}/nvidia-746"
    eq(emu.read(f"{t}/available_instances"), "1\n", "before")
    w(emu, f"{t}/create", "not-a-uuid\n", errno.EINVAL)
    w(emu, f"{t}/create", "11111111-2222-4333-8444-55555555555\n", errno.EINVAL)   # 35 + \n
    w(emu, f"{t}/create", "1111111g-2222-4333-8444-555555555555\n", errno.EINVAL)
    w(emu, f"{t}/create", U1 + "\n\n", errno.EINVAL)                                 # 38 bytes
    w(emu, f"{t}/create", "f715f63c-0d00-4007-9c5a-b07b0c6c05de\n", errno.EEXIST)   # on 08:00.4
    w(emu, f"{t}/create", U1.upper() + "\n")
    m = f"{vf}/{U1}"
    ok(os.path.isdir(emu.path(m)), "mdev dir (lower case)")
    eq(emu.readlink(f"{m}/mdev_type"), "../mdev_supported_types/nvidia-746", "mdev_type link")
    eq(os.path.realpath(emu.path(f"{t}/devices/{U1}")), os.path.realpath(emu.path(m)), "type devices link")
    eq(os.path.realpath(emu.path(f"bus/mdev/devices/{U1}")), os.path.realpath(emu.path(m)), "bus/mdev link")
    eq(os.path.basename(emu.readlink(f"{m}/driver")), "nvidia-vgpu-vfio", "mdev driver")
    g = os.path.basename(emu.readlink(f"{m}/iommu_group"))
    ok(os.path.islink(emu.path(f"kernel/iommu_groups/{g}/devices/{U1}")), "group back link")
    ok(g in emu.dev_vfio(), "/dev/vfio node of the mdev group")
    ok(os.path.exists(emu.path(f"{m}/nvidia/vgpu_params")), "nvidia/ files")
    for ty in ("nvidia-746", "nvidia-751", "nvidia-754", "nvidia-742"):
        eq(emu.read(f"{vf}/{TYPES}/{ty}/available_instances"), "0\n", f"{ty} after create (one per VF)")
    w(emu, f"{vf}/{TYPES}/nvidia-751/create", "22222222-2222-4333-8444-555555555555\n", errno.EUSERS)
    w(emu, f"{m}/remove", "x\n", errno.EINVAL)
    w(emu, f"bus/mdev/devices/{U1}/remove", "0\n")
    ok(os.path.isdir(emu.path(m)), "remove 0 keeps it")
    fd = os.open(emu.path(f"bus/mdev/devices/{U1}/remove"), os.O_WRONLY)
    w(emu, f"bus/mdev/devices/{U1}/remove", "1\n")
    ok(not os.path.exists(emu.path(m)), "removed")
    try:
        os.write(fd, b"1\n")
        raise Fail("write through a stale fd succeeded")
    except OSError as e:
        eq(errname(e.errno), "ENODEV", "stale fd of a removed attribute")
    finally:
        os.close(fd)
    ok(not os.path.lexists(emu.path(f"bus/mdev/devices/{U1}")), "bus link gone")
    ok(not os.path.lexists(emu.path(f"{t}/devices/{U1}")), "type link gone")
    ok(not os.path.exists(emu.path(f"kernel/iommu_groups/{g}")), "group gone")
    ok(g not in emu.dev_vfio(), "vfio node gone")
    for ty, n in (("nvidia-746", 1), ("nvidia-751", 1), ("nvidia-754", 1), ("nvidia-742", 0)):
        eq(emu.read(f"{vf}/{TYPES}/{ty}/available_instances"), f"{n}\n", f"{ty} restored")
    # a mdev of the fixture: removing it frees its VF (free profile of a sibling)
    w(emu, "bus/mdev/devices/f715f63c-0d00-4007-9c5a-b07b0c6c05de/remove", "1\n")
    eq(emu.read(f"bus/pci/devices/0000:08:00.4/{TYPES}/nvidia-754/available_instances"), "1\n",
       "fixture VF freed")
    eq([r["alias"] for r in emu.writes() if r["result"] == "ok"][-1],
       "bus/mdev/devices/f715f63c-0d00-4007-9c5a-b07b0c6c05de/remove", "alias of an mdev write")


@test("hpe-dl380g9-a2-vgpu")
def mdev_exhausted_errno_configurable(emu):
    emu.control({"mdev_exhausted_errno": "ENOSPC"})
    t = f"bus/pci/devices/0000:08:00.4/{TYPES}/nvidia-746/create"
    w(emu, t, U1 + "\n", errno.ENOSPC)
    w(emu, f"bus/pci/devices/0000:08:00.7/{TYPES}/nvidia-746/create", U1)   # 36 bytes: ok
    w(emu, f"bus/pci/devices/0000:08:00.7/{TYPES}/nvidia-746/create", U1, errno.EEXIST)


@test("hpe-dl380g9-a2-vgpu")
def unbinding_the_vendor_driver_unregisters_the_parent(emu):
    vf = "bus/pci/devices/0000:08:00.4"
    w(emu, f"{vf}/driver_override", "vfio-pci\n")
    w(emu, f"{vf}/driver/unbind", "0000:08:00.4\n")
    ok(not os.path.exists(emu.path(f"{vf}/{TYPES}")), "mdev_supported_types gone")
    ok(not os.path.lexists(emu.path("class/mdev_bus/0000:08:00.4")), "mdev_bus link gone")
    ok(not os.path.lexists(emu.path("bus/mdev/devices/f715f63c-0d00-4007-9c5a-b07b0c6c05de")),
       "its mdev removed")
    w(emu, "bus/pci/drivers_probe", "0000:08:00.4\n")
    eq(drv(emu, "0000:08:00.4"), "vfio-pci", "VF of an mdev-mode GPU may go to vfio-pci")
    w(emu, f"{vf}/driver_override", "\n")
    w(emu, f"{vf}/driver/unbind", "0000:08:00.4\n")
    w(emu, "bus/pci/drivers_probe", "0000:08:00.4\n")
    eq(drv(emu, "0000:08:00.4"), "nvidia", "back on nvidia")
    eq(emu.read(f"{vf}/{TYPES}/nvidia-754/available_instances"), "1\n", "types back, free")
    ok(os.path.islink(emu.path("class/mdev_bus/0000:08:00.4")), "mdev_bus link back")


# ---- NVIDIA vendor-specific vGPU ---------------------------------------------------------------

L40S_ALL = [1145, 1146, 1147, 1148, 1149, 1150, 1151, 1152, 1153, 1154, 1155, 1156, 1157, 1158,
            1159, 1160, 1161, 1162, 1163, 1164, 1165, 1166, 2164]


@test("l40s-vendor-vgpu")
def vgpu_type_set_and_clear(emu):
    vf, sib = "0000:26:00.4", "0000:26:02.1"
    cur = f"bus/pci/devices/{vf}/nvidia/current_vgpu_type"
    eq(creatable(emu, sib), L40S_ALL, "free list")
    w(emu, cur, "9999\n", errno.EINVAL)
    w(emu, cur, "abc\n", errno.EINVAL)
    w(emu, cur, "1152\n")
    eq(emu.read(cur), "1152\n", "current")
    eq(creatable(emu, vf), [], "own list header-only")
    eq(emu.read(f"bus/pci/devices/{vf}/nvidia/creatable_vgpu_types"), "ID    : vGPU Name\n", "header")
    eq(emu.read(f"bus/pci/devices/{vf}/nvidia/placement_id"), "0\n", "placement_id")
    eq(creatable(emu, sib), [1152, 1162], "siblings: 8 GB types only (equal-size)")
    eq(creatable(emu, "0000:3d:00.4"), L40S_ALL, "another GPU untouched")
    w(emu, cur, "1150\n", errno.EBUSY)
    w(emu, cur, "1152\n", errno.EBUSY)
    eq(emu.writes()[-1]["note"], "type 1152 is set", "log note")
    w(emu, cur, "0\n")
    eq(emu.read(cur), "0\n", "cleared")
    eq(creatable(emu, vf), L40S_ALL, "own list back")
    eq(creatable(emu, sib), L40S_ALL, "sibling list back")
    w(emu, cur, "0\n")                                       # clearing twice is fine


@test("l40s-vendor-vgpu")
def vgpu_capacity(emu):
    vfs = ["0000:26:00.4", "0000:26:00.5", "0000:26:00.6"]
    w(emu, f"bus/pci/devices/{vfs[0]}/nvidia/current_vgpu_type", "1155\n")      # 24Q
    eq(creatable(emu, vfs[1]), [1155, 1165], "24 GB left: 24Q/24A")
    w(emu, f"bus/pci/devices/{vfs[1]}/nvidia/current_vgpu_type", "1165\n")      # 24A
    eq(creatable(emu, vfs[2]), [], "GPU full")
    w(emu, f"bus/pci/devices/{vfs[2]}/nvidia/current_vgpu_type", "1155\n", errno.EINVAL)
    w(emu, f"bus/pci/devices/{vfs[0]}/nvidia/current_vgpu_type", "0\n")
    eq(creatable(emu, vfs[2]), [1155, 1165], "room again")
    # the fixture's third GPU: 3 x 8Q set, 29 VFs list 8Q/8A; 3 more fill 48 GB
    for vf in ("0000:af:00.7", "0000:af:01.0", "0000:af:01.1"):
        eq(creatable(emu, vf), [1152, 1162], f"{vf} before")
        w(emu, f"bus/pci/devices/{vf}/nvidia/current_vgpu_type", "1162\n")
    eq(creatable(emu, "0000:af:04.3"), [], "af GPU full after 6 x 8 GB")
    eq(creatable(emu, "0000:af:00.4"), [], "set VF stays header-only")


@test("l40s-vendor-vgpu")
def vgpu_framebuffer_and_mode_from_control(emu):
    emu.control({"vgpu": {"mode": "mixed-size", "framebuffer_mb": {"1152": 16384}}})
    w(emu, "bus/pci/devices/0000:26:00.4/nvidia/current_vgpu_type", "1152\n")
    # 48 - 16 = 32 GB left, any size: everything but the 48 GB types
    eq(creatable(emu, "0000:26:00.5"), [t for t in L40S_ALL if t not in (1156, 1166)], "mixed-size")
    emu.control({"vgpu": {"gpu_framebuffer_mb": {"0000:26:00.0": 16384},
                          "framebuffer_mb": {"1152": 16384}}})
    w(emu, "bus/pci/devices/0000:26:00.4/nvidia/current_vgpu_type", "0\n")
    eq(creatable(emu, "0000:26:00.5"), [t for t in L40S_ALL if t not in (1155, 1156, 1165, 1166)],
       "a 16 GB GPU: nothing over 16 GB")
    w(emu, "bus/pci/devices/0000:26:00.4/nvidia/current_vgpu_type", "1152\n")
    eq(creatable(emu, "0000:26:00.5"), [], "a 16 GB GPU is full")


@test("l40s-vendor-vgpu")
def vendor_vf_refuses_vfio_pci(emu):
    bdf = "0000:26:00.5"
    d = f"bus/pci/devices/{bdf}"
    w(emu, f"{d}/driver_override", "vfio-pci\n")
    w(emu, f"{d}/driver/unbind", f"{bdf}\n")
    ok(not os.path.exists(emu.path(f"{d}/nvidia")), "nvidia/ goes with the nvidia driver")
    w(emu, "bus/pci/drivers_probe", f"{bdf}\n")
    eq(drv(emu, bdf), None, "vfio-pci probe refused (drivers_probe still succeeds)")
    w(emu, "bus/pci/drivers/vfio-pci/bind", f"{bdf}\n", errno.EINVAL)
    w(emu, f"{d}/driver_override", "\n")
    w(emu, "bus/pci/drivers_probe", f"{bdf}\n")
    eq(drv(emu, bdf), "nvidia", "back on nvidia")
    eq(creatable(emu, bdf), L40S_ALL, "nvidia/ back")


@test("l40s-vendor-vgpu")
def vendor_sriov_recreate(emu):
    pf = "bus/pci/devices/0000:26:00.0"
    orig = emu.read("bus/pci/devices/0000:26:00.4/nvidia/creatable_vgpu_types")
    w(emu, "bus/pci/devices/0000:26:00.4/nvidia/current_vgpu_type", "1152\n")
    w(emu, f"{pf}/sriov_numvfs", "0\n")
    ok(not os.path.lexists(emu.path("bus/pci/devices/0000:26:00.4")), "VFs gone")
    w(emu, f"{pf}/sriov_numvfs", "4\n")
    eq(sorted(n for n in os.listdir(emu.path(pf)) if n.startswith("virtfn")),
       ["virtfn0", "virtfn1", "virtfn2", "virtfn3"], "4 virtfn links")
    eq(drv(emu, "0000:26:00.7"), "nvidia", "VF on nvidia")
    eq(emu.read("bus/pci/devices/0000:26:00.4/nvidia/creatable_vgpu_types"), orig, "full list")
    eq(emu.read("bus/pci/devices/0000:26:00.4/nvidia/current_vgpu_type"), "0\n", "no type")
    w(emu, "bus/pci/devices/0000:26:00.6/nvidia/current_vgpu_type", "1156\n")      # 48Q
    eq(creatable(emu, "0000:26:00.7"), [], "GPU full")


# ---- faults, the log, concurrency, shutdown ---------------------------------------------------

@test("hpe-dl380g9-a2-vgpu")
def scripted_failures(emu):
    emu.control({"fail": [
        {"path": "bus/pci/drivers_probe", "errno": "EBUSY", "times": 1},
        {"path": "bus/pci/devices/*/driver_override", "value": "0000:*", "errno": 5},
        {"path": "bus/pci/drivers/*/unbind", "value": "0000:04:00.1", "errno": "ENOMEM"}]})
    w(emu, "bus/pci/drivers_probe", "0000:04:00.0\n", errno.EBUSY)
    w(emu, "bus/pci/drivers_probe", "0000:04:00.0\n")            # times used up
    w(emu, "bus/pci/devices/0000:04:00.0/driver_override", "0000:04:00.0\n", errno.EIO)
    w(emu, "bus/pci/devices/0000:04:00.0/driver_override", "vfio-pci\n")    # value differs
    w(emu, "bus/pci/drivers/ixgbe/unbind", "0000:04:00.1\n", errno.ENOMEM)
    eq(drv(emu, "0000:04:00.1"), "ixgbe", "a failed write has no effect")
    w(emu, "bus/pci/drivers/ixgbe/unbind", "0000:04:00.0\n")
    recs = emu.writes()
    eq([(r["result"], r["fault"]) for r in recs],
       [("EBUSY", "fail"), ("ok", None), ("EIO", "fail"), ("ok", None), ("ENOMEM", "fail"),
        ("ok", None)], "log results and faults")
    emu.control({"fail": [{"path": "bus/pci/drivers_probe", "errno": "EBUSY", "times": 1}]})
    w(emu, "bus/pci/drivers_probe", "0000:04:00.0\n", errno.EBUSY)   # a new file re-arms


@test("hpe-dl380g9-a2-vgpu")
def hang_does_not_block_others(emu):
    emu.control({"hang": [{"path": "bus/pci/drivers/*/unbind", "seconds": 2, "times": 1}]})
    res = {}

    def hang_writer():
        t0 = time.monotonic()
        res["err"] = emu.write("bus/pci/drivers/ixgbe/unbind", "0000:04:00.1\n")
        res["took"] = time.monotonic() - t0
    th = threading.Thread(target=hang_writer)
    th.start()
    emu.wait_write("bus/pci/drivers/ixgbe/unbind", event="hang")
    eq(emu.read("bus/pci/devices/0000:04:00.1/vendor"), "0x8086\n", "parallel read")
    w(emu, "bus/pci/devices/0000:04:00.0/driver_override", "vfio-pci\n")     # parallel write
    ok(os.listdir(emu.path("bus/pci/devices")), "parallel readdir")
    # they did not wait for the hang: it still holds its write
    ok(th.is_alive() and "err" not in res, "parallel operations done while the hanging write is pending")
    eq(drv(emu, "0000:04:00.1"), "ixgbe", "not yet unbound")
    th.join(10)
    eq(res.get("err"), 0, "hanging write succeeds after the hang")
    ok(1.9 < res["took"] < 4, f"hang lasted {res['took']:.2f}s")
    eq(drv(emu, "0000:04:00.1"), None, "unbound after the hang")
    eq([(r["path"], r["fault"]) for r in emu.writes()][-1], ("bus/pci/drivers/ixgbe/unbind", "hang"),
       "log: the hang completes last")


@test("hpe-dl380g9-a2-vgpu")
def sigterm_during_hang_unmounts(emu):
    emu.control({"hang": [{"path": "bus/pci/drivers_probe", "seconds": 60}]})
    res = {}
    th = threading.Thread(target=lambda: res.setdefault(
        "err", emu.write("bus/pci/drivers_probe", "0000:04:00.0\n")))
    th.start()
    emu.wait_write("bus/pci/drivers_probe", event="hang")
    t0 = time.monotonic()
    rc = emu.stop()
    took = time.monotonic() - t0
    th.join(10)
    eq(rc, 0, "emulator exit code")
    ok(took < 5, f"stopped in {took:.2f}s")
    ok(not is_mounted(emu.root), "unmounted")
    ok(res.get("err") not in (None, 0), f"hanging write failed ({errname(res.get('err'))})")


# ---- device_lock: hung unbinds, late landings ---------------------------------------------------

class Writer:
    """One write(2) in a thread of its own, for a write that is expected to block."""

    def __init__(self, emu, rel, value):
        self.rel = rel
        self.res = {}
        self.th = threading.Thread(target=lambda: self.res.setdefault("err", emu.write(rel, value)),
                                   daemon=True)
        self.th.start()

    def pending(self):
        return self.th.is_alive()

    def result(self, timeout=10):
        """Its errno (0: success) once it returns; a deadline, not a timing assertion."""
        self.th.join(timeout)
        if self.th.is_alive():
            raise Fail(f"write to {self.rel} still blocked after {timeout}s")
        return self.res["err"]


def done_for(emu, rel):
    """Completion records of writes to rel (the path it arrived on or its alias)."""
    return [r for r in emu.writes() if rel in (r["path"], r["alias"])]


def seq_of(emu, rel):
    recs = done_for(emu, rel)
    eq(len(recs), 1, f"one completion record for {rel}")
    return recs[0]["seq"]


@test("hpe-dl380g9-a2-vgpu")
def hung_unbind_holds_the_device_lock(emu):
    """drivers/base/dd.c: the driver's remove() runs under device_lock(dev); a write whose
    store() takes that lock waits; other devices do not."""
    x, y = "0000:04:00.1", "0000:04:00.0"
    unbind = "bus/pci/drivers/ixgbe/unbind"
    ovr, rm = f"bus/pci/devices/{x}/driver_override", f"bus/pci/devices/{x}/remove"
    emu.control({"hang": [{"path": unbind, "value": x, "seconds": "forever", "id": "x"}]})
    un = Writer(emu, unbind, f"{x}\n")
    eq(emu.wait_write(unbind, event="hang")["lock"], x, "the hung unbind holds the device's lock")
    blocked = [Writer(emu, ovr, "vfio-pci\n"), Writer(emu, rm, "1\n")]
    for b in blocked:
        rec = emu.wait_write(b.rel, event="wait")
        eq((rec["lock"], rec["holder"]["path"]), (x, unbind), f"{b.rel} waits for the unbind")
    # another device's lock is free; drivers_probe of a device whose remove() still runs sees
    # dev->driver set and returns at once without the lock (bus.c bus_rescan_devices_helper)
    w(emu, f"bus/pci/devices/{y}/driver_override", "vfio-pci\n")
    eq(emu.read(f"bus/pci/devices/{y}/driver_override"), "vfio-pci\n", "another device's override")
    w(emu, "bus/pci/drivers_probe", f"{x}\n")
    eq(emu.writes()[-1]["note"], "already bound", "drivers_probe of the held device: left alone")
    eq(drv(emu, x), "ixgbe", "still bound while the unbind hangs")
    eq(emu.read(ovr), "(null)\n", "the blocked override has not landed")
    ok(all(b.pending() for b in blocked) and un.pending(), "the held writes are still in flight")
    eq(done_for(emu, ovr) + done_for(emu, rm) + done_for(emu, unbind), [], "no completion logged")
    emu.control({"release": ["x"]})
    eq(errname(un.result()), "ok", "the unbind completes when released")
    eq(errname(blocked[0].result()), "ok", "then the override goes through")
    eq(blocked[1].result(), errno.EOPNOTSUPP, "and remove (not emulated) is answered")
    eq(drv(emu, x), None, "the late unbind landed")
    eq(emu.read(ovr), "vfio-pci\n", "the override landed after it")
    ok(seq_of(emu, unbind) < min(seq_of(emu, ovr), seq_of(emu, rm)),
       "log: the unbind finishes before the writes that waited for it")
    for rel in (ovr, rm):
        rec = done_for(emu, rel)[0]
        ok(rec["lock"] == x and rec["waited"] >= 0, f"{rel}: record says it waited for {x}")
    ok(done_for(emu, unbind)[0].get("released"), "the unbind's record says it was released")


@test("hpe-dl380g9-a2-vgpu")
def late_unbind_lands_after_its_writer_is_killed(emu):
    """A writer killed at its deadline does not stop the store(): the unbind lands later."""
    x = "0000:04:00.1"
    unbind = "bus/pci/drivers/ixgbe/unbind"
    emu.control({"hang": [{"path": unbind, "seconds": "forever", "id": "u"}]})
    p = subprocess.Popen(["/usr/bin/python3", "-c",
                          "import os, sys; os.write(os.open(sys.argv[1], os.O_WRONLY), b'%s\\n')" % x,
                          emu.path(unbind)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        emu.wait_write(unbind, event="hang")
        p.kill()
        emu.control({"hang": []})                       # a change that releases nothing
        emu.wait_write(unbind, event="still-hanging")
        eq(drv(emu, x), "ixgbe", "still bound while remove() hangs, writer dead or not")
        eq(done_for(emu, unbind), [], "the unbind has not finished")
        emu.control({"release": ["u"]})
        eq(emu.wait_write(unbind)["result"], "ok", "the abandoned unbind completes")
        eq(drv(emu, x), None, "late landing: the driver link is gone")
        ok(not os.path.lexists(emu.path(f"bus/pci/drivers/ixgbe/{x}")), "and the driver's link to it")
        ok("DRIVER=" not in emu.read(f"bus/pci/devices/{x}/uevent"), "uevent without DRIVER")
        eq(p.wait(10), -signal.SIGKILL, "the writer was killed during the write")
    finally:
        if p.poll() is None:
            emu.control({"release": ["*"]})
            p.wait(10)


@test("hpe-dl380g9-a2-vgpu")
def still_hanging_keeps_the_lock_until_released(emu):
    """A `forever` hang keeps the device's lock until the control file releases it; here it
    then fails (then: fail, lock: true) and the waiter runs against the state as it is then."""
    pf = "0000:08:00.0"
    unbind, numvfs = "bus/pci/drivers/nvidia/unbind", f"bus/pci/devices/{pf}/sriov_numvfs"
    emu.control({"hang": [{"path": unbind, "value": pf, "seconds": "forever", "id": "pf",
                           "then": "fail", "errno": "EIO", "lock": True}]})
    un = Writer(emu, unbind, f"{pf}\n")
    eq(emu.wait_write(unbind, event="hang")["lock"], pf, "the lock of the PF")
    nv = Writer(emu, numvfs, "0\n")
    eq(emu.wait_write(numvfs, event="wait")["lock"], pf, "sriov_numvfs waits for the PF's lock")
    emu.control({"fail": []})                           # any other change: still hanging
    emu.wait_write(unbind, event="still-hanging")
    ok(un.pending() and nv.pending(), "both still in flight")
    eq(done_for(emu, numvfs), [], "sriov_numvfs has not run")
    eq(drv(emu, pf), "nvidia", "the PF keeps its driver")
    ok(os.path.lexists(emu.path("bus/pci/devices/0000:08:00.4")), "its VFs are there")
    emu.control({"release": ["p*"]})
    eq(errname(un.result()), "EIO", "released, the unbind fails (then: fail)")
    eq(errname(nv.result()), "ok", "then sriov_numvfs runs: the PF still has its driver")
    eq(drv(emu, pf), "nvidia", "nothing unbound")
    ok(not os.path.lexists(emu.path("bus/pci/devices/0000:08:00.4")), "VFs disabled")
    eq(done_for(emu, unbind)[0]["fault"], "hang", "log: the unbind's fault")


@test("hpe-dl380g9-a2-vgpu")
def bind_waits_then_meets_the_state_as_it_is(emu):
    """bind_store checks the match unlocked, then waits for the lock: after a failed unbind
    the device is still bound (EBUSY), after a landed one it binds."""
    x = "0000:04:00.1"
    unbind, bind = "bus/pci/drivers/ixgbe/unbind", "bus/pci/drivers/ixgbe/bind"
    for then, want, driver in (("fail", "EBUSY", "ixgbe"), ("complete", "ok", "ixgbe")):
        n0 = len(emu.log())
        emu.control({"hang": [{"path": unbind, "seconds": "forever", "id": then, "then": then,
                               "lock": True}]})
        un = Writer(emu, unbind, f"{x}\n")
        emu.wait_write(unbind, event="hang", since=n0)
        b = Writer(emu, bind, f"{x}\n")
        emu.wait_write(bind, event="wait", since=n0)
        emu.control({"release": [then]})
        eq(errname(un.result()), "EIO" if then == "fail" else "ok", f"unbind ({then})")
        eq(errname(b.result()), want, f"bind after the unbind ({then})")
        eq(drv(emu, x), driver, f"driver after ({then})")
    recs = [(r["path"], r["result"]) for r in emu.writes()]
    eq(recs, [(unbind, "EIO"), (bind, "EBUSY"), (unbind, "ok"), (bind, "ok")], "log order")


@test("hpe-dl380g9-a2-vgpu")
def mdev_parent_unregistering_during_a_hung_unbind(emu):
    """mdev create/remove take no lock of the parent; while its driver's remove() hangs in
    mdev_unregister_parent they fail at once with ENODEV (unreg_sem trylock)."""
    vf, other = "0000:08:00.7", "0000:08:01.0"      # VFs without an mdev
    u2 = "22222222-2222-4333-8444-555555555555"
    unbind = "bus/pci/drivers/nvidia/unbind"
    emu.control({"mdev_one_per_vf": False})
    w(emu, f"bus/pci/devices/{vf}/{TYPES}/nvidia-746/create", U1 + "\n")
    emu.control({"mdev_one_per_vf": False,
                 "hang": [{"path": unbind, "value": vf, "seconds": "forever", "id": "vf"}]})
    un = Writer(emu, unbind, f"{vf}\n")
    emu.wait_write(unbind, event="hang")
    w(emu, f"bus/mdev/devices/{U1}/remove", "1\n", errno.ENODEV)
    eq(emu.writes()[-1]["note"], "parent unregistration has started", "note")
    w(emu, f"bus/pci/devices/{vf}/{TYPES}/nvidia-751/create", u2 + "\n", errno.ENODEV)
    w(emu, f"bus/pci/devices/{other}/{TYPES}/nvidia-751/create", u2 + "\n")    # another parent
    w(emu, f"bus/mdev/devices/{u2}/remove", "1\n")
    ok(os.path.isdir(emu.path(f"bus/pci/devices/{vf}/{U1}")), "its mdev is still there")
    emu.control({"release": ["vf"]})
    eq(errname(un.result()), "ok", "the unbind lands")
    ok(not os.path.lexists(emu.path(f"bus/mdev/devices/{U1}")), "the parent's mdev went with it")
    ok(not os.path.exists(emu.path(f"bus/pci/devices/{vf}/{TYPES}")), "its types too")


@test("consumer-rtx3080")
def early_sysfs_unlinks_before_remove_returns(emu):
    """early_sysfs: the driver links go at the start of the hang (dd.c driver_sysfs_remove runs
    before remove()); for the kernel the device keeps its driver until remove() returns."""
    gpu = "0000:05:00.0"
    d = f"bus/pci/devices/{gpu}"
    unbind = "bus/pci/drivers/vfio-pci/unbind"
    emu.control({"hang": [{"path": unbind, "value": gpu, "seconds": "forever", "id": "g",
                           "early_sysfs": True}]})
    un = Writer(emu, unbind, f"{gpu}\n")
    emu.wait_write(unbind, event="hang")
    eq(drv(emu, gpu), None, "no driver link while remove() runs")
    ok(not os.path.lexists(emu.path(f"bus/pci/drivers/vfio-pci/{gpu}")), "nor the driver's link")
    ok(emu.read(f"{d}/uevent").startswith("DRIVER=vfio-pci\n"), "uevent still names the driver")
    ok("24" in emu.dev_vfio(), "/dev/vfio/24 still there")
    w(emu, "bus/pci/drivers_probe", f"{gpu}\n")
    eq(emu.writes()[-1]["note"], "already bound", "drivers_probe: dev->driver still set")
    eq(drv(emu, gpu), None, "nothing bound by it")
    b = Writer(emu, "bus/pci/drivers/nvidia/bind", f"{gpu}\n")
    emu.wait_write("bus/pci/drivers/nvidia/bind", event="wait")
    emu.control({"release": ["g"]})
    eq(errname(un.result()), "ok", "the unbind lands")
    eq(errname(b.result()), "ok", "then nvidia binds")
    eq(drv(emu, gpu), "nvidia", "on nvidia")
    ok("24" in emu.dev_vfio(), "/dev/vfio/24 stays: the audio function is still on vfio-pci")
    # a failing early hang puts the links back
    emu.control({"hang": [{"path": "bus/pci/drivers/nvidia/unbind", "seconds": "forever", "id": "f",
                           "then": "fail", "lock": True, "early_sysfs": True}]})
    un = Writer(emu, "bus/pci/drivers/nvidia/unbind", f"{gpu}\n")
    emu.wait_write("bus/pci/drivers/nvidia/unbind", event="hang")
    eq(drv(emu, gpu), None, "unlinked during the hang")
    emu.control({"release": ["f"]})
    eq(errname(un.result()), "EIO", "fails")
    eq(drv(emu, gpu), "nvidia", "the links are back")
    ok(os.path.islink(emu.path(f"bus/pci/drivers/nvidia/{gpu}")), "both")


@test("hpe-dl380g9-a2-vgpu")
def sigterm_wakes_lock_waiters(emu):
    x = "0000:04:00.1"
    emu.control({"hang": [{"path": "bus/pci/drivers/ixgbe/unbind", "seconds": "forever"}]})
    un = Writer(emu, "bus/pci/drivers/ixgbe/unbind", f"{x}\n")
    emu.wait_write("bus/pci/drivers/ixgbe/unbind", event="hang")
    ov = Writer(emu, f"bus/pci/devices/{x}/driver_override", "vfio-pci\n")
    emu.wait_write(f"bus/pci/devices/{x}/driver_override", event="wait")
    eq(emu.stop(), 0, "emulator exit code")
    ok(not is_mounted(emu.root), "unmounted")
    ok(un.result() != 0 and ov.result() != 0, "the hung and the waiting write both fail")


HELD_BY_A_KILLED_TEST = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
from emu import Emulator
e = Emulator(sys.argv[2]).__enter__()
e.control({"hang": [{"path": "bus/pci/drivers/ixgbe/unbind", "seconds": "forever"}]})
threading.Thread(target=e.write, args=("bus/pci/drivers/ixgbe/unbind", "0000:04:00.1\n"),
                 daemon=True).start()
e.wait_write("bus/pci/drivers/ixgbe/unbind", event="hang")
print(e.proc.pid, e.dir, flush=True)
threading.Event().wait()
"""


@test("hpe-dl380g9-a2-vgpu")
def killed_test_with_a_held_write_leaves_no_mount(emu):
    """A test killed while one of its writes is held `forever` cannot exit before the write
    is answered (SIGKILL pending): --watch-pid counts it as gone, so the emulator stops."""
    p = subprocess.Popen(["/usr/bin/python3", "-c", HELD_BY_A_KILLED_TEST, HERE, HOST_SYS[emu.host]],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().split()
    ok(len(line) == 2, "the helper test started its emulator")
    epid, edir = int(line[0]), line[1]
    mnt = os.path.join(edir, "sys")
    p.kill()
    deadline = time.monotonic() + 10
    while is_mounted(mnt) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        ok(not is_mounted(mnt), "the emulator of the killed test unmounted")
        eq(p.wait(10), -signal.SIGKILL, "and the killed test is gone")
    finally:
        if is_mounted(mnt):
            os.kill(epid, signal.SIGTERM)
            p.wait(10)
        p.stdout.close()
        if not is_mounted(mnt):
            shutil.rmtree(edir, ignore_errors=True)


# ---- runner ------------------------------------------------------------------------------------

def host_trees(tmp):
    bindir = os.environ.get("GPUH_TEST_BINDIR", os.path.join(REPO, "build"))
    for h in HOSTS:
        built = os.path.join(bindir, "fixtures", "hosts", h, "sys")
        if os.path.isdir(built):
            HOST_SYS[h] = built
            continue
        out = os.path.join(tmp, h)
        os.makedirs(out)
        subprocess.run([sys.executable, os.path.join(REPO, "fixtures", "mkhost.py"),
                        os.path.join(REPO, "fixtures", "hosts", h, "host.json"), out],
                       check=True, stdout=subprocess.DEVNULL)
        HOST_SYS[h] = os.path.join(out, "sys")


def main(argv):
    verbose = "-v" in argv
    only = argv[argv.index("-k") + 1] if "-k" in argv else None
    # --shard I/N: every Nth test from the Ith (ctest runs the shards side by side)
    shard, shards = (int(x) for x in argv[argv.index("--shard") + 1].split("/")) if "--shard" in argv else (0, 1)
    why = fuse_available()
    if why:
        print(f"SKIP: FUSE unavailable: {why}")
        return 77
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="gpuh-emu-hosts-", dir=scratch_parent())
    try:
        host_trees(tmp)
        for k, (name, host, fn) in enumerate(TESTS):
            if (only and only not in name) or k % shards != shard:
                continue
            t0 = time.monotonic()
            try:
                with Emulator(HOST_SYS[host]) as emu:
                    emu.host = host
                    try:
                        fn(emu)
                    finally:
                        if emu.alive() and "Traceback" in emu.stderr():
                            raise Fail("emulator stderr:\n" + emu.stderr())
                harness.RESULTS["passed"] += 1
                print(f"ok   {name} [{host}] ({time.monotonic() - t0:.2f}s)")
            except Skip as e:
                print(f"SKIP: {e}")
                return 77
            except Exception as e:
                harness.RESULTS["failed"] += 1
                print(f"FAIL {name} [{host}]: {e}")
                if verbose or not isinstance(e, Fail):
                    traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# {time.monotonic() - t_start:.1f}s")
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
