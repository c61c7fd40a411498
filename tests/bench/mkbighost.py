#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""mkbighost.py: build a large fake SR-IOV vGPU host for benchmarking gpudiscovery.

Usage: mkbighost.py N M OUTDIR

Writes a fixtures/mkhost.py spec for a host with

  * N NVIDIA A10-like PFs (10de:2236, class 0x030200, driver nvidia), spread over 2 NUMA
    nodes (root bus 0000:00 for node 0, 0000:80 for node 1); GPUs come in pairs, one pair
    on its own root ports, the next pair behind a PCIe switch (upstream + 2 downstream
    ports), alternately;
  * 16 VFs per PF (physfn/virtfnN, offset 4, stride 1, like Ampere), each VF an mdev parent
    with the 18 A10 types nvidia-588 .. nvidia-605 (NVIDIA-style names and descriptions);
  * an mdev (driver nvidia-vgpu-vfio) on every third VF;
  * non-GPU functions: host bridges, an ASPEED BMC VGA behind its bridge (boot_vga 1, not
    a GPU vendor), a dual-port Mellanox NIC and an NVMe drive per node, and an Intel DSA
    function (a GPU vendor, but not a display class);
  * an IOMMU group for every function and mdev (the ASPEED bridge and VGA share one);
  * a libvirt test-driver node XML with M domains named i-2-<id>-VM: most hold an mdev
    hostdev or a pci hostdev on a VF without an mdev, some none; every fifth is shut off
    (<test:runstate>5</test:runstate>), every seventh paused;

then runs fixtures/mkhost.py on it into OUTDIR (OUTDIR/sys, OUTDIR/libvirt.xml,
OUTDIR/run/libvirt/qemu, OUTDIR/etc/libvirt/qemu). mkhost.py refuses an OUTDIR that holds
the spec, so the spec is written to a temporary directory and copied afterwards to
OUTDIR/spec/ (host.json, libvirt.xml) together with OUTDIR/spec/expect.json: what a correct
gpudiscovery must report (GPU, VF and vGPU counts, devices in use), used by
bench_discovery.py to reject broken runs.

The output depends only on N and M. Python standard library only.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
MKHOST = os.path.join(HERE, "..", "..", "fixtures", "mkhost.py")
UUID_NS = uuid.UUID("6f1c1d64-4c6a-4c43-9c0b-6770756f6f6b")
VFS_PER_PF = 16
VF_OFFSET = 4
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"

# (type id, profile, framebuffer MiB, heads, max resolution, frl) for the A10's 24 GB.
A10_TYPES = [
    ("nvidia-588", "1B", 1024, 4, "5120x2880", 45),
    ("nvidia-589", "2B", 2048, 4, "5120x2880", 45),
    ("nvidia-590", "1Q", 1024, 4, "5120x2880", 60),
    ("nvidia-591", "2Q", 2048, 4, "7680x4320", 60),
    ("nvidia-592", "3Q", 3072, 4, "7680x4320", 60),
    ("nvidia-593", "4Q", 4096, 4, "7680x4320", 60),
    ("nvidia-594", "6Q", 6144, 4, "7680x4320", 60),
    ("nvidia-595", "8Q", 8192, 4, "7680x4320", 60),
    ("nvidia-596", "12Q", 12288, 4, "7680x4320", 60),
    ("nvidia-597", "24Q", 24576, 4, "7680x4320", 60),
    ("nvidia-598", "1A", 1024, 1, "1280x1024", 60),
    ("nvidia-599", "2A", 2048, 1, "1280x1024", 60),
    ("nvidia-600", "3A", 3072, 1, "1280x1024", 60),
    ("nvidia-601", "4A", 4096, 1, "1280x1024", 60),
    ("nvidia-602", "6A", 6144, 1, "1280x1024", 60),
    ("nvidia-603", "8A", 8192, 1, "1280x1024", 60),
    ("nvidia-604", "12A", 12288, 1, "1280x1024", 60),
    ("nvidia-605", "24A", 24576, 1, "1280x1024", 60),
]
# Types the created mdevs cycle through (Q profiles, as a VDI host would use).
MDEV_TYPES = ["nvidia-591", "nvidia-593", "nvidia-594", "nvidia-595"]


def bdf(domain, bus, slot, func):
    return f"{domain:04x}:{bus:02x}:{slot:02x}.{func}"


class Host:
    def __init__(self, n_gpus, n_domains):
        self.n, self.m = n_gpus, n_domains
        self.devices = []
        self.mdevs = []
        self.next_group = 1
        self.pfs = []           # (pf bdf, path prefix, node)
        self.vfs_free = []      # VF bdfs without an mdev (pci hostdev candidates)
        self.mdev_uuids = []

    def group(self):
        g = self.next_group
        self.next_group += 1
        return g

    def add(self, path, attrs, driver=None, group=True, **extra):
        name = path.rsplit("/", 1)[-1]
        d = {"bdf": name, "path": path, "attrs": attrs}
        if driver:
            d["driver"] = driver
        if group is True:
            d["iommu_group"] = self.group()
        elif group is not None:
            d["iommu_group"] = group
        d.update(extra)
        self.devices.append(d)
        return d

    @staticmethod
    def attrs(vendor, device, cls, node, sv=None, sd=None, rev="0x00", **more):
        a = {"vendor": f"0x{vendor:04x}", "device": f"0x{device:04x}", "class": f"0x{cls:06x}",
             "subsystem_vendor": f"0x{(vendor if sv is None else sv):04x}",
             "subsystem_device": f"0x{(0 if sd is None else sd):04x}",
             "revision": rev, "numa_node": str(node)}
        a.update(more)
        return a

    def bridge(self, path, node, vendor=0x8086, device=0x352a):
        return self.add(path, self.attrs(vendor, device, 0x060400, node), driver="pcieport")

    def build(self):
        per_node = [(self.n + 1) // 2, self.n // 2]
        for node, root_bus in ((0, 0x00), (1, 0x80)):
            self.build_node(node, root_bus, per_node[node])
        self.build_mdevs()

    def build_node(self, node, root_bus, n_gpus):
        root = f"pci0000:{root_bus:02x}"
        self.add(f"{root}/{bdf(0, root_bus, 0, 0)}",
                 self.attrs(0x8086, 0x09a2, 0x060000, node, rev="0x04"))
        next_bus = root_bus + 1
        slot = 1

        def root_port():
            nonlocal slot
            rp = f"{root}/{bdf(0, root_bus, slot, 0)}"
            slot += 1
            self.bridge(rp, node)
            return rp

        # Platform devices first (lower bus numbers), as firmware enumerates them.
        if node == 0:
            rp = root_port()
            ab = f"{rp}/{bdf(0, next_bus, 0, 0)}"
            g = self.group()                # the ASPEED bridge and its VGA share a group
            self.add(ab, self.attrs(0x1a03, 0x1150, 0x060400, node, rev="0x06"), group=g)
            self.add(f"{ab}/{bdf(0, next_bus + 1, 0, 0)}",
                     self.attrs(0x1a03, 0x2000, 0x030000, node, sv=0x1a03, sd=0x2000, rev="0x52",
                                boot_vga="1"), driver="ast", group=g)
            next_bus += 2
            # Intel DSA on the root bus: a GPU vendor, but class 0880 is not a display class.
            self.add(f"{root}/{bdf(0, root_bus, 0x1e, 0)}",
                     self.attrs(0x8086, 0x0b25, 0x088000, node, rev="0x01"), driver="idxd")
        rp = root_port()
        for f in (0, 1):
            self.add(f"{rp}/{bdf(0, next_bus, 0, f)}",
                     self.attrs(0x15b3, 0x101d, 0x020000, node, sv=0x15b3, sd=0x0016),
                     driver="mlx5_core")
        next_bus += 1
        rp = root_port()
        self.add(f"{rp}/{bdf(0, next_bus, 0, 0)}",
                 self.attrs(0x144d, 0xa80a, 0x010802, node, sv=0x144d, sd=0xa801), driver="nvme")
        next_bus += 1

        for i in range(n_gpus):
            pair, second = divmod(i, 2)
            if pair % 2 == 0:               # directly below a root port
                rp = root_port()
                self.gpu(f"{rp}/{bdf(0, next_bus, 0, 0)}", node)
                next_bus += 1
            else:                           # a PCIe switch per pair
                if not second:
                    rp = root_port()
                    up = f"{rp}/{bdf(0, next_bus, 0, 0)}"
                    self.bridge(up, node, 0x10b5, 0x8747)
                    dn_bus = next_bus + 1
                    self.switch = (up, dn_bus)
                    next_bus += 2
                up, dn_bus = self.switch
                dn = f"{up}/{bdf(0, dn_bus, second, 0)}"
                self.bridge(dn, node, 0x10b5, 0x8747)
                self.gpu(f"{dn}/{bdf(0, next_bus, 0, 0)}", node)
                next_bus += 1
            if next_bus > root_bus + 0x7f or slot > 0x1f:
                raise SystemExit(f"mkbighost.py: too many GPUs for one node ({n_gpus})")

    def gpu(self, path, node):
        pf = path.rsplit("/", 1)[-1]
        parent = path.rsplit("/", 1)[0]
        dom, bus = int(pf[0:4], 16), int(pf[5:7], 16)
        self.add(path, self.attrs(0x10de, 0x2236, 0x030200, node, sd=0x1482, rev="0xa1",
                                  sriov_totalvfs=str(VFS_PER_PF), sriov_numvfs=str(VFS_PER_PF),
                                  sriov_offset=str(VF_OFFSET), sriov_stride="1",
                                  sriov_vf_device="2236", reset_method="flr bus"),
                 driver="nvidia")
        pf_index = len(self.pfs)
        self.pfs.append(pf)
        for k in range(VFS_PER_PF):
            devfn = VF_OFFSET + k
            vf = bdf(dom, bus, devfn >> 3, devfn & 7)
            has_mdev = k % 3 == 0
            types = [{"type": t, "name": f"NVIDIA A10-{p}",
                      "description": (f"num_heads={h}, frl_config={frl}, framebuffer={fb}M, "
                                      f"max_resolution={res}, max_instance={24 * 1024 // fb}"),
                      "available_instances": 0 if has_mdev else 1, "device_api": "vfio-pci"}
                     for t, p, fb, h, res, frl in A10_TYPES]
            self.add(f"{parent}/{vf}",
                     self.attrs(0x10de, 0x2236, 0x030200, node, sd=0x0000, rev="0xa1"),
                     driver="nvidia", physfn=pf, vf_index=k, mdev_types=types)
            if has_mdev:
                u = str(uuid.uuid5(UUID_NS, f"{pf_index}/{k}"))
                self.mdevs.append({"uuid": u, "parent": vf,
                                   "type": MDEV_TYPES[(pf_index + k // 3) % len(MDEV_TYPES)],
                                   "driver": "nvidia-vgpu-vfio", "iommu_group": None})
                self.mdev_uuids.append(u)
            else:
                self.vfs_free.append(vf)

    def build_mdevs(self):
        for m in self.mdevs:            # groups after all PCI functions, as the kernel does
            m["iommu_group"] = self.group()

    def domains(self):
        """The node XML and what discovery must find in use: {bus address: domain}."""
        mdevs, vfs = list(self.mdev_uuids), list(self.vfs_free)
        used = {}
        out = ["<?xml version='1.0'?>", "<node>",
               "  <cpu><mhz>2900</mhz><model>x86_64</model><active>64</active><nodes>2</nodes>"
               "<sockets>2</sockets><cores>16</cores><threads>2</threads></cpu>",
               "  <memory>536870912</memory>"]
        for j in range(self.m):
            vm_id = 100 + j
            name = f"i-2-{vm_id}-VM"
            state = 5 if j % 5 == 4 else 3 if j % 7 == 6 else None
            kind = j % 4
            hostdev = ""
            if kind in (0, 1) and mdevs:
                u = mdevs.pop(0)
                used[u] = name
                hostdev = ("    <hostdev mode='subsystem' type='mdev' model='vfio-pci' display='off'>\n"
                           f"      <source><address uuid='{u}'/></source>\n"
                           "    </hostdev>\n")
            elif kind == 2 and vfs:
                v = vfs.pop(0)
                used[v] = name
                d, b, sf = v.split(":")
                s, f = sf.split(".")
                hostdev = ("    <hostdev mode='subsystem' type='pci' managed='no'>\n"
                           "      <driver name='vfio'/>\n"
                           f"      <source><address domain='0x{d}' bus='0x{b}' slot='0x{s}' "
                           f"function='0x{f}'/></source>\n"
                           "    </hostdev>\n")
            ns = f" xmlns:test='{TEST_NS}'" if state else ""
            out.append(f"  <domain type='kvm'{ns}>")
            out.append(f"    <name>{name}</name>")
            if state:
                out.append(f"    <test:runstate>{state}</test:runstate>")
            out.append(f"    <uuid>{uuid.uuid5(UUID_NS, name)}</uuid>")
            out.append(f"    <description>{name} (bench)</description>")
            out.append("    <memory unit='KiB'>8388608</memory>")
            out.append("    <vcpu>4</vcpu>")
            out.append("    <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>")
            out.append("    <features><acpi/><apic/></features>")
            out.append("    <devices>")
            out.append("      <disk type='file' device='disk'>\n"
                       "        <driver name='qemu' type='qcow2'/>\n"
                       f"        <source file='/mnt/primary/{uuid.uuid5(UUID_NS, name + '/disk')}'/>\n"
                       "        <target dev='vda' bus='virtio'/>\n"
                       "      </disk>")
            out.append("      <interface type='bridge'>\n"
                       f"        <mac address='02:00:{vm_id >> 8 & 0xff:02x}:{vm_id & 0xff:02x}:00:01'/>\n"
                       "        <source bridge='cloudbr0'/>\n"
                       "        <model type='virtio'/>\n"
                       "      </interface>")
            if hostdev:
                out.append("  " + hostdev.rstrip("\n").replace("\n", "\n  "))
            out.append("    </devices>")
            out.append("  </domain>")
        out.append("</node>")
        return "\n".join(out) + "\n", used

    def spec(self):
        return {"name": f"bench-{self.n}pf-{self.m}vm", "iommu": True, "libvirt": "libvirt.xml",
                "numa_nodes": {"0": "0-15,32-47", "1": "16-31,48-63"},
                "devices": self.devices, "mdevs": self.mdevs}


def build(n, m, outdir, quiet=False):
    """Build the host into OUTDIR; return the expectations (also in OUTDIR/spec/expect.json)."""
    h = Host(n, m)
    h.build()
    node_xml, used = h.domains()
    expect = {"gpus": n, "vfs": n * VFS_PER_PF, "vgpus": len(h.mdevs), "domains": m,
              "pf_addresses": h.pfs, "used": dict(sorted(used.items()))}
    with tempfile.TemporaryDirectory(prefix="mkbighost.") as tmp:
        with open(os.path.join(tmp, "host.json"), "w") as f:
            json.dump(h.spec(), f, indent=1)
            f.write("\n")
        with open(os.path.join(tmp, "libvirt.xml"), "w") as f:
            f.write(node_xml)
        r = subprocess.run([sys.executable, MKHOST, os.path.join(tmp, "host.json"), outdir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise SystemExit(f"mkbighost.py: mkhost.py failed ({r.returncode}):\n{r.stderr}{r.stdout}")
        if r.stderr and not quiet:
            sys.stderr.write(r.stderr)
        sd = os.path.join(outdir, "spec")
        os.makedirs(sd, exist_ok=True)
        for name in ("host.json", "libvirt.xml"):
            shutil.copy(os.path.join(tmp, name), os.path.join(sd, name))
    with open(os.path.join(outdir, "spec", "expect.json"), "w") as f:
        json.dump(expect, f, indent=1)
        f.write("\n")
    return expect


def main(argv):
    if len(argv) != 4 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: mkbighost.py N M OUTDIR\n")
        return 2
    try:
        n, m = int(argv[1]), int(argv[2])
    except ValueError:
        sys.stderr.write("mkbighost.py: N and M must be integers\n")
        return 2
    if n < 1 or m < 0:
        sys.stderr.write("mkbighost.py: need N >= 1 and M >= 0\n")
        return 2
    if not os.path.exists(MKHOST):
        sys.stderr.write(f"mkbighost.py: {MKHOST} not found\n")
        return 1
    e = build(n, m, argv[3])
    print(f"{argv[3]}: {e['gpus']} GPUs, {e['vfs']} VFs, {e['vgpus']} mdevs, {m} domains, "
          f"{len(e['used'])} devices in use")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
