#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""mkpthost.py: build a fake host with 4 passthrough GPUs for benchmarking the state-change hook.

Usage: mkpthost.py OUTDIR

[C] constructed: every fact of this host is synthetic. No capture of a 4-GPU passthrough
host with HDMI-audio companions is among the fixtures, and the benchmark needs one that is
exactly as described below and nothing else (no SR-IOV, no mdevs, no shared groups), so that
a prepare + release of all four GPUs is a clean, repeatable run of the hook's pci path. The
ids and attribute values are the RTX 3080's of fixtures/hosts/consumer-rtx3080 (verbatim
there, from public captures); the topology, NUMA layout, IOMMU group numbers and drivers
are chosen here. Numbers measured on it say how much CPU the hook spends, not how a real
host behaves.

The host, written as a fixtures/mkhost.py spec:

  * 2 NUMA nodes (CPUs 0-7,16-23 and 8-15,24-31), root bus 0000:00 for node 0 and 0000:80
    for node 1, each with a host bridge (8086:09a2, class 0x060000, no driver, own IOMMU
    group) and two PCIe root ports (8086:347a, class 0x060400, driver pcieport, each in its
    own IOMMU group);
  * below each root port one GPU: GeForce RTX 3080 (10de:2206, class 0x030000, rev a1,
    subsystem 10de:1467, driver nvidia, boot_vga 0, reset_method bus) at function 0 and its
    HDMI audio (10de:1aef, class 0x040300, driver snd_hda_intel) at function 1 of the same
    slot; the pair alone in its IOMMU group. GPUs: 0000:01:00.0, 0000:02:00.0 (node 0),
    0000:81:00.0, 0000:82:00.0 (node 1);
  * driver directories bus/pci/drivers/{nvidia,snd_hda_intel,pcieport,vfio-pci} (mkhost.py
    creates one per driver in use, and always vfio-pci); tests/emu's emulator treats a driver
    as loaded exactly when its directory exists, and takes each function's driver at mount
    as the one its ID table matches, so a release can bind nvidia and snd_hda_intel again;
  * no libvirt domains (the benchmark passes an empty --domain-xml-dir).

mkhost.py refuses an OUTDIR that holds the spec, so the spec is written to a temporary
directory and copied afterwards to OUTDIR/spec/host.json, together with
OUTDIR/spec/expect.json: the GPUs, their companions, every passthrough function's driver
and IOMMU group, used by bench_statechange.py to check each run.

The output is always the same. Python standard library only.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MKHOST = os.path.join(HERE, "..", "..", "fixtures", "mkhost.py")

GPU_ID = (0x10de, 0x2206)       # GA102 [GeForce RTX 3080]
AUDIO_ID = (0x10de, 0x1aef)     # GA102 High Definition Audio Controller
SUBSYS = (0x10de, 0x1467)
NODES = {"0": "0-7,16-23", "1": "8-15,24-31"}


def bdf(domain, bus, slot, func):
    return f"{domain:04x}:{bus:02x}:{slot:02x}.{func}"


class Host:
    def __init__(self):
        self.devices = []
        self.next_group = 0
        self.gpus = []          # {"gpu", "companion", "group", "node"}

    def group(self):
        g = self.next_group
        self.next_group += 1
        return g

    def add(self, path, attrs, driver=None, group=None):
        d = {"bdf": path.rsplit("/", 1)[-1], "path": path, "attrs": attrs,
             "driver": driver, "iommu_group": group}
        self.devices.append(d)
        return d

    @staticmethod
    def attrs(ids, cls, node, subsys=(0, 0), rev="0x00", **more):
        a = {"vendor": f"0x{ids[0]:04x}", "device": f"0x{ids[1]:04x}", "class": f"0x{cls:06x}",
             "revision": rev, "subsystem_vendor": f"0x{subsys[0]:04x}",
             "subsystem_device": f"0x{subsys[1]:04x}", "numa_node": str(node)}
        a.update(more)
        return a

    def build(self):
        for node, root_bus in ((0, 0x00), (1, 0x80)):
            root = f"pci0000:{root_bus:02x}"
            self.add(f"{root}/{bdf(0, root_bus, 0, 0)}",
                     self.attrs((0x8086, 0x09a2), 0x060000, node, (0x8086, 0x0000), "0x04"),
                     group=self.group())
            for i, slot in enumerate((0x01, 0x03)):
                rp = f"{root}/{bdf(0, root_bus, slot, 0)}"
                self.add(rp, self.attrs((0x8086, 0x347a), 0x060400, node, (0x8086, 0x0000), "0x04"),
                         driver="pcieport", group=self.group())
                bus = root_bus + 1 + i
                g = self.group()
                gpu, audio = bdf(0, bus, 0, 0), bdf(0, bus, 0, 1)
                self.add(f"{rp}/{gpu}",
                         self.attrs(GPU_ID, 0x030000, node, SUBSYS, "0xa1", boot_vga="0",
                                    reset_method="bus"),
                         driver="nvidia", group=g)
                self.add(f"{rp}/{audio}",
                         self.attrs(AUDIO_ID, 0x040300, node, SUBSYS, "0xa1", reset_method="bus"),
                         driver="snd_hda_intel", group=g)
                self.gpus.append({"gpu": gpu, "companion": audio, "group": g, "node": node})

    def spec(self):
        return {"name": "bench-4gpu-passthrough", "iommu": True, "numa_nodes": NODES,
                "devices": self.devices}

    def expect(self):
        drivers = {}
        for g in self.gpus:
            drivers[g["gpu"]] = "nvidia"
            drivers[g["companion"]] = "snd_hda_intel"
        return {"gpu_id": f"{GPU_ID[0]:04x}:{GPU_ID[1]:04x}", "gpus": self.gpus,
                "drivers": drivers,
                "bridges": [d["bdf"] for d in self.devices if d["attrs"]["class"].startswith("0x06")]}


def build(outdir, quiet=False):
    """Build the host into OUTDIR; return the expectations (also in OUTDIR/spec/expect.json)."""
    h = Host()
    h.build()
    expect = h.expect()
    with tempfile.TemporaryDirectory(prefix="mkpthost.") as tmp:
        spec_path = os.path.join(tmp, "host.json")
        with open(spec_path, "w") as f:
            json.dump(h.spec(), f, indent=1)
            f.write("\n")
        r = subprocess.run([sys.executable, MKHOST, spec_path, outdir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise SystemExit(f"mkpthost.py: mkhost.py failed ({r.returncode}):\n{r.stderr}{r.stdout}")
        if r.stderr and not quiet:
            sys.stderr.write(r.stderr)
        sd = os.path.join(outdir, "spec")
        os.makedirs(sd, exist_ok=True)
        shutil.copy(spec_path, os.path.join(sd, "host.json"))
    with open(os.path.join(outdir, "spec", "expect.json"), "w") as f:
        json.dump(expect, f, indent=1)
        f.write("\n")
    return expect


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: mkpthost.py OUTDIR\n")
        return 2
    if not os.path.exists(MKHOST):
        sys.stderr.write(f"mkpthost.py: {MKHOST} not found\n")
        return 1
    e = build(argv[1])
    print(f"{argv[1]}: {len(e['gpus'])} GPUs ({e['gpu_id']}), each with its audio companion, "
          f"{len(e['bridges'])} bridges (host bridges and root ports)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
