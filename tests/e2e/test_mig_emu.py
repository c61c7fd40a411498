#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""MIG and vGPU modes end to end: fixture hosts under the FUSE sysfs emulator (tests/emu) with
the fake libnvidia-ml.so.1 (tests/fakenvml) sharing its state file, the unmodified binaries.

  test_mig_emu.py --build BUILD --src SRC CASE
      CASE: h100 | a100 | l40s-modes | h100-layout | a100-layout | h100-cycle | h100-switch | a100-cycle

GIs are created and destroyed through the fake library (ctypes), as an operator's nvidia-smi
would through the real one. The *-layout cases give the host a layout of MIG-backed profiles
(docs/layouts.md, "MIG-backed profiles") and check what discovery advertises: each slot with
its GI placement and address, the same on every run. The *-cycle cases run CloudStack's cycle
on such a slot: discovery -> the agent's hostdev -> transform (the record names the GI) ->
prepare (the GI made with its placement, then the type set or the mdev created) -> release (both
undone), and kill -9 between the GI's creation and the type's write, then reconcile;
h100-switch has MIG mode off and a layout with "mig": true. Exits 77 when FUSE cannot be used.
Prints one line per check and closes with 'N passed, N failed'.
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from agentxml import agent_xml as agent_xml_of, hostdev_mdev, hostdev_pci  # noqa: E402
from harness import check  # noqa: E402

ARGS = None
NVML_IN_USE, NVML_INSUFFICIENT_RESOURCES = 19, 23


class Placement(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint), ("size", ctypes.c_uint)]


class Nvml:
    """The fake NVML, called as a program would call the real one."""

    def __init__(self, lib, state):
        os.environ["GPUH_FAKE_NVML_STATE"] = state
        self.l = ctypes.CDLL(lib)
        assert self.l.nvmlInit_v2() == 0

    def dev(self, bus_id):
        d = ctypes.c_void_p()
        assert self.l.nvmlDeviceGetHandleByPciBusId_v2(bus_id.encode(), ctypes.byref(d)) == 0
        return d

    def create_gi(self, bus_id, profile_id, start, size):
        gi = ctypes.c_void_p()
        return self.l.nvmlDeviceCreateGpuInstanceWithPlacement(self.dev(bus_id), profile_id,
                                                               ctypes.byref(Placement(start, size)), ctypes.byref(gi))

    def destroy_gi(self, bus_id, gi_id):
        gi = ctypes.c_void_p()
        r = self.l.nvmlDeviceGetGpuInstanceById(self.dev(bus_id), gi_id, ctypes.byref(gi))
        return r if r else self.l.nvmlGpuInstanceDestroy(gi)

    def set_mig(self, bus_id, mode):
        act = ctypes.c_int()
        return self.l.nvmlDeviceSetMigMode(self.dev(bus_id), mode, ctypes.byref(act))


def emulator():
    sys.path.insert(0, os.path.join(ARGS.src, "tests", "emu"))
    import emu
    return emu


def env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUHOOKS_")}
    e.pop("LIBVIRT_DEFAULT_URI", None)
    e.update(extra or {})
    return e


class Setup:
    def __init__(self, host, state=None):
        self.host = host
        self.tmp = tempfile.mkdtemp(prefix="gpuh-mig-")
        self.state = os.path.join(self.tmp, "nvml.json")
        self.cfg_path = os.path.join(self.tmp, "gpuhooks.json")
        if state is None:
            shutil.copy(os.path.join(ARGS.src, "fixtures", "hosts", host, "nvml.json"), self.state)
        else:
            with open(self.state, "w") as f:
                json.dump(state, f)
        self.lib = os.path.join(ARGS.build, "tests", "fakenvml", "libnvidia-ml.so.1")
        self.nvml = Nvml(self.lib, self.state)
        self.env = env({"GPUHOOKS_NVML_LIB": self.lib, "GPUH_FAKE_NVML_STATE": self.state,
                        "GPUHOOKS_CACHE_DIR": "", "GPUHOOKS_STATE_DIR": os.path.join(self.tmp, "st")})
        self.emu = emulator().Emulator(os.path.join(ARGS.build, "fixtures", "hosts", host, "sys"),
                                       control={"nvml_state": self.state})

    def __enter__(self):
        self.emu.__enter__()
        return self

    def __exit__(self, *exc):
        self.emu.__exit__(*exc)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def config(self, doc):
        """Write the configuration @doc the tools are given from now on (--config)."""
        with open(self.cfg_path, "w") as f:
            json.dump(doc, f)

    def discover(self, layouts=None):
        """gpudiscovery's document (None when it fails); with @layouts, the configuration is
        those layouts alone."""
        if layouts is not None:
            self.config({"layouts": layouts})
        cfg = ["--config", self.cfg_path] if os.path.exists(self.cfg_path) else []
        r = harness.run([os.path.join(ARGS.build, "hooks", "gpudiscovery")] + cfg + ["--sysfs-root", self.emu.root,
                         "--no-libvirt", "--domain-xml-dir", self.tmp], env=self.env, timeout=60)
        try:
            return json.loads(r.out) if r.rc == 0 else None
        except ValueError:
            return None

    def creatable(self, vf):
        return [int(i) for i in re.findall(r"^\s*(\d+)\s*:", self.emu.read("bus/pci/devices/%s/nvidia/creatable_vgpu_types" % vf), re.M)]

    def avail(self, vf, t):
        return int(self.emu.read("bus/pci/devices/%s/mdev_supported_types/%s/available_instances" % (vf, t)).strip())

    def nvml_state(self):
        with open(self.state) as f:
            return json.load(f)["gpus"][0]


def case_h100():
    pf = "0000:ae:00.0"
    with Setup("h100-mig-vendor-vgpu") as s:
        check(s.creatable("0000:ae:00.5") == [1700, 1703], "h100: a free VF lists the types with a free GI "
              "(H100-1-10C, H100-3-40C)", s.creatable("0000:ae:00.5"))
        check(s.nvml.create_gi(pf, 14, 2, 2) == 0, "h100: NVML creates a 2g.20gb GI at slices 2-3")
        check(s.nvml.create_gi(pf, 14, 4, 2) == NVML_INSUFFICIENT_RESOURCES,
              "h100: NVML refuses a GI on slices another GI holds")
        check(s.creatable("0000:ae:00.5") == [1700, 1702, 1703], "h100: the new GI's MIG-backed type "
              "(H100-2-20C) appears in the VFs' creatable_vgpu_types", s.creatable("0000:ae:00.5"))
        doc = s.discover()
        if check(doc is not None, "h100: gpudiscovery runs on the emulated host with NVML"):
            mig = doc["gpus"][0]["gpuhooks"]["mig"]
            check(mig["mode_current"] == "enabled" and [g["id"] for g in mig["gpu_instances"]] == [1, 2, 3, 4] and
                  mig["gpu_instances"][3] == {"id": 4, "profile_id": 14, "profile_name": "MIG 2g.20gb",
                                              "placement_start": 2, "placement_size": 2},
                  "h100: discovery shows MIG mode and the four GIs with the new one's placement", mig)
            check([t["id"] for t in mig["creatable_types"]] == [1700, 1702, 1703],
                  "h100: discovery lists the creatable MIG-backed types", mig["creatable_types"])
        check(s.emu.write("bus/pci/devices/0000:ae:00.5/nvidia/current_vgpu_type", "1702\n") == 0,
              "h100: H100-2-20C set on VF ae:00.5")
        check(s.emu.read("bus/pci/devices/0000:ae:00.5/nvidia/gpu_instance_id").strip() == "4",
              "h100: the VF's gpu_instance_id names the GI it took (4)")
        check(1702 not in s.creatable("0000:ae:00.6"), "h100: with its only GI taken, H100-2-20C is no longer creatable")
        check(s.nvml.destroy_gi(pf, 4) == NVML_IN_USE, "h100: NVML refuses to destroy the GI a vGPU sits on")
        check(s.nvml.set_mig(pf, 0) == NVML_IN_USE, "h100: NVML refuses a MIG mode change while VFs are enabled")
        check(s.emu.write("bus/pci/devices/0000:ae:00.5/nvidia/current_vgpu_type", "0\n") == 0 and
              1702 in s.creatable("0000:ae:00.6"), "h100: clearing the type frees the GI")
        check(s.nvml.destroy_gi(pf, 4) == 0, "h100: the free GI is destroyed")
        check(s.emu.write("bus/pci/devices/0000:ae:00.4/nvidia/current_vgpu_type", "0\n") == 0 and
              s.emu.write("bus/pci/devices/%s/sriov_numvfs" % pf, "0\n") == 0, "h100: VFs disabled")
        check(s.nvml.set_mig(pf, 1) == 0, "h100: with VFs disabled, NVML takes a MIG mode change")
        check(s.emu.write("bus/pci/devices/%s/sriov_numvfs" % pf, "32\n") == 0, "h100: VFs enabled again")
        check(s.nvml_state().get("gpu_instances") == [] and s.creatable("0000:ae:00.5") == [],
              "h100: enabling VFs wiped the GIs; no MIG-backed type is creatable until one is made",
              s.creatable("0000:ae:00.5"))


def case_a100():
    pf = "0000:3b:00.0"
    vf, vf2 = "0000:3b:00.5", "0000:3b:00.6"
    with Setup("a100-mig-mdev-vgpu") as s:
        check(s.avail(vf, "nvidia-474") == 1 and s.avail(vf, "nvidia-476") == 1 and s.avail(vf, "nvidia-475") == 0 and
              s.avail(vf, "nvidia-469") == 0, "a100: a free VF offers A100-1-5C and A100-3-20C (free GIs), not "
              "A100-2-10C (its GI is taken) nor time-sliced types (MIG mode)")
        check(s.nvml.create_gi(pf, 14, 4, 2) == NVML_INSUFFICIENT_RESOURCES, "a100: no 2g.10gb GI where the 3g.20gb one is")
        check(s.nvml.destroy_gi(pf, 3) == 0 and s.nvml.create_gi(pf, 14, 4, 2) == 0,
              "a100: the 3g.20gb GI destroyed, a 2g.10gb made at slices 4-5")
        check(s.avail(vf, "nvidia-475") == 1 and s.avail(vf, "nvidia-476") == 0,
              "a100: the VFs now offer A100-2-10C, no longer A100-3-20C")
        u = "7b2c3d4e-5f60-4a7b-8c9d-a10000000b02"
        check(s.emu.write("bus/pci/devices/%s/mdev_supported_types/nvidia-475/create" % vf, u) == 0,
              "a100: an A100-2-10C mdev created on VF 3b:00.5")
        check(s.avail(vf2, "nvidia-475") == 0 and s.avail(vf2, "nvidia-474") == 1,
              "a100: the 2g GI taken, other VFs no longer offer A100-2-10C")
        doc = s.discover()
        if check(doc is not None, "a100: gpudiscovery runs on the emulated host with NVML"):
            g = doc["gpus"][0]
            mig = g["gpuhooks"]["mig"]
            more = {t["id"]: t["more"] for t in g["gpuhooks"]["vgpu_types"]}
            check(mig["mode_current"] == "enabled" and
                  [(x["id"], x["profile_id"], x["placement_start"]) for x in mig["gpu_instances"]] == [(1, 14, 0), (2, 19, 2), (3, 14, 4)],
                  "a100: discovery shows MIG mode and the GIs", mig)
            check([t["id"] for t in mig["creatable_types"]] == [474] and more[474] == 1 and more[475] == 0,
                  "a100: only A100-1-5C is creatable, one more fits; A100-2-10C is used up", (mig["creatable_types"], more))
            check(sorted(v["profile_name"] for v in g["vgpu_instances"]) == ["NVIDIA A100-2-10C"] * 2,
                  "a100: both MIG-backed mdevs are vGPU instances named by their type", g["vgpu_instances"])
        check(s.emu.write("bus/mdev/devices/%s/remove" % u, "1\n") == 0 and s.avail(vf2, "nvidia-475") == 1,
              "a100: removing the mdev frees its GI")


def case_l40s_modes():
    """NVIDIA's example, 4 x L40S-6Q + 2 x L40S-12Q: refused at transform time in equal-size mode;
    in mixed-size mode transformed and then set on the VFs at VM start."""
    types = [{"id": 1151, "name": "NVIDIA L40S-6Q", "framebuffer_mib": 6144, "max_instances": 8},
             {"id": 1153, "name": "NVIDIA L40S-12Q", "framebuffer_mib": 12288, "max_instances": 4}]
    for hetero in (0, 1):
        state = {"gpus": [{"pci_bus_id": a, "vgpu_heterogeneous_mode": hetero, "vgpu_types": types}
                          for a in ("0000:26:00.0", "0000:3d:00.0", "0000:af:00.0")]}
        with Setup("l40s-vendor-vgpu", state) as s:
            with open(os.path.join(ARGS.src, "fixtures", "domains", "37-dumpxml-request-vendor-vgpu-l40s-48q.xml")) as f:
                xml = f.read().replace('<gpuhooks:request mode="vendor-vgpu" profile="NVIDIA L40S-48Q"/>',
                                       '<gpuhooks:request mode="vendor-vgpu" profile="NVIDIA L40S-6Q" count="4"/>'
                                       '<gpuhooks:request mode="vendor-vgpu" profile="NVIDIA L40S-12Q" count="2"/>')
            s.config({"state_change": {"write_timeout_ms": 3000, "lock_timeout_ms": 20000}})
            st = os.path.join(s.tmp, "st")
            common = ["--config", s.cfg_path, "--sysfs-root", s.emu.root, "--state-dir", st]
            r = harness.run([os.path.join(ARGS.build, "hooks", "libvirt-vm-xml-transformer")] + common +
                            ["--no-libvirt", "--domain-xml-dir", s.tmp, "-"], stdin=xml, text=True, env=s.env, timeout=60)
            if hetero == 0:
                check(r.rc == 1 and "equal-size vGPU mode keeps one size per GPU" in r.err and r.out == "",
                      "l40s, equal-size (NVML): the mix is refused at transform time, naming the mode", r.why())
                continue
            if not check(r.rc == 0, "l40s, mixed-size (NVML): the mix is transformed", r.why()):
                continue
            name = re.search(r"<name>([^<]+)</name>", r.out).group(1)
            p = harness.run([os.path.join(ARGS.build, "hooks", "libvirt-vm-state-change")] + common +
                            ["--dev-dir", s.emu.dev_dir, name, "prepare", "begin", "-"], stdin=r.out, text=True,
                            env=s.env, timeout=120)
            check(p.rc == 0, "l40s, mixed-size: prepare sets every vGPU type at VM start", p.why())
            got = {}
            for m in re.finditer(r'kind="vendor-vgpu" address="([^"]+)" parent="([^"]+)"[^>]*vgpu-type="(\d+)"', r.out):
                cur = s.emu.read("bus/pci/devices/%s/nvidia/current_vgpu_type" % m.group(1)).strip()
                got.setdefault(m.group(2), []).append((m.group(3), cur))
            check(got and all(want == cur for v in got.values() for want, cur in v) and
                  any(len({w for w, _ in v}) == 2 for v in got.values()),
                  "l40s, mixed-size: 6Q and 12Q set side by side on one GPU, as planned", got)

LAYOUT_NS = uuid.UUID("5d0f7c3e-8b1a-4e6c-9f2d-7a4b3c2e1d0f")       # GPUH_LAYOUT_UUID_NS


def valid(doc, what):
    from jsonschema import Draft202012Validator
    with open(os.path.join(ARGS.src, "schemas", "gpu-inventory.schema.json")) as f:
        errs = ["/".join(map(str, e.absolute_path)) + ": " + e.message
                for e in Draft202012Validator(json.load(f)).iter_errors(doc)]
    check(not errs, what + ": the inventory fits the schema", "\n".join(errs[:10]))


def gi_of(ext):
    g = ext.get("gpu_instance")
    return g and (g["profile_id"], g["placement_start"], g["placement_size"], g["exists"])


def vendor_slots(doc):
    """(slot, VF, profile, on_demand, GI) of every VF a layout slot names."""
    return [(v["gpuhooks"]["slot"], v["vf_pci_address"], v["vf_profile"], v["gpuhooks"]["on_demand"], gi_of(v["gpuhooks"]))
            for v in doc["gpus"][0]["vf_instances"] if v["gpuhooks"]["slot"] is not None]


def mdev_slots(doc):
    """(profile, slot, UUID, parent, on_demand, GI) of every vGPU instance a layout slot names."""
    return sorted((v["gpuhooks"]["layout_profile"], v["gpuhooks"]["slot"], v["mdev_uuid"], v["gpuhooks"]["parent"],
                   v["gpuhooks"]["on_demand"], gi_of(v["gpuhooks"]))
                  for v in doc["gpus"][0]["vgpu_instances"] if v["gpuhooks"]["slot"] is not None)


def case_h100_layout():
    """H100-1-10C as many as fit: 1g.10gb placements 0-6; GI 1 (slice 0, ae:00.4's vGPU) and GI 2
    (slice 1) are the slots' own, GI 3 (3g.40gb, slices 4-7) blocks slots 4-6 until destroyed."""
    pf = "0000:ae:00.0"
    layout = [{"match": {"address": pf}, "profiles": [{"profile": "NVIDIA H100-1-10C"}]}]
    with Setup("h100-mig-vendor-vgpu") as s:
        doc = s.discover(layout)
        if not check(doc is not None, "h100-layout: gpudiscovery runs with a MIG-backed layout"):
            return
        valid(doc, "h100-layout")
        lay = doc["gpus"][0]["gpuhooks"]["layout"]
        check(lay["error"] is None and lay["profiles"][0]["count"] == 7 and lay["profiles"][0]["slots"] == 4 and
              lay["profiles"][0]["gpu_instance_profile_id"] == 19 and lay["profiles"][0]["vgpu_type_id"] == 1700,
              "h100-layout: 7 slots planned by placements (not 80 GB / 10 GB), 4 placed", lay)
        want = [(0, "ae:00.4", "NVIDIA H100-1-10C", False, (19, 0, 1, True)),
                (1, "ae:00.5", "NVIDIA H100-1-10C", True, (19, 1, 1, True)),
                (2, "ae:00.6", "NVIDIA H100-1-10C", True, (19, 2, 1, False)),
                (3, "ae:00.7", "NVIDIA H100-1-10C", True, (19, 3, 1, False))]
        check(vendor_slots(doc) == want, "h100-layout: the set VF keeps slot 0 on GI 1; slots 1-3 on the next "
              "free VFs with placements 1-3 (GI 2 is slot 1's own)", vendor_slots(doc))
        w = [x for x in doc["gpuhooks"]["warnings"] if "is in the way" in x]
        check(len(w) == 3 and all(pf in x and "GPU instance 3 (profile 9 'MIG 3g.40gb', slices 4-7)" in x for x in w) and
              "slot 4 of 'NVIDIA H100-1-10C'" in w[0], "h100-layout: slots 4-6 are not offered, one warning each "
              "naming the GPU, the slot and GI 3", w)
        r = harness.run([os.path.join(ARGS.build, "hooks", "gpudiscovery"), "--check", "--config",
                         s.cfg_path, "--sysfs-root", s.emu.root, "--no-libvirt",
                         "--domain-xml-dir", s.tmp], env=s.env, text=True, timeout=60)
        lines = re.findall(r"^warn\s+layout\s+0000:ae:00\.0\s+.*slot (\d) of .*GPU instance 3 .* is in the way$", r.out, re.M)
        check(lines == ["4", "5", "6"], "h100-layout: --check warns of each blocked slot", r.out)
        again = s.discover(layout)
        check(again is not None and vendor_slots(again) == want, "h100-layout: the same slots on a second run",
              again and vendor_slots(again))
        check(s.nvml.destroy_gi(pf, 3) == 0, "h100-layout: the operator destroys GI 3")
        doc = s.discover(layout)
        got = doc and vendor_slots(doc)
        check(got and got[:4] == want and [x[4] for x in got[4:]] == [(19, p, 1, False) for p in (4, 5, 6)] and
              not any("is in the way" in x for x in doc["gpuhooks"]["warnings"]),
              "h100-layout: with GI 3 gone slots 4-6 appear, slots 0-3 unmoved", got)
    # MIG mode off (no GIs): the same layout is an error unless "mig": true; then NVML's profile
    # table, asked out of MIG mode, plans the same placements, none of them made yet
    with open(os.path.join(ARGS.src, "fixtures", "hosts", "h100-mig-vendor-vgpu", "nvml.json")) as f:
        state = json.load(f)
    state["gpus"][0].update(mig={"current": 0, "pending": 0}, gpu_instances=[])
    with Setup("h100-mig-vendor-vgpu", state) as s:
        doc = s.discover(layout)
        err = doc and doc["gpus"][0]["gpuhooks"]["layout"]["error"]
        check(err and "MIG mode is off" in err and '"mig": true' in err and vendor_slots(doc) == [] and
              err in doc["gpuhooks"]["warnings"], "h100-layout, MIG off: not applied, the warning says to set \"mig\"",
              err)
        doc = s.discover([dict(layout[0], mig=True)])
        got = doc and vendor_slots(doc)
        check(got and [x[0] for x in got] == list(range(7)) and [x[4] for x in got] == [(19, p, 1, False) for p in range(7)],
              "h100-layout, MIG off with \"mig\": true: 7 slots at placements 0-6, no GI made yet", got)


def case_a100_layout():
    """A100-2-10C x 1 then A100-1-5C as many as fit: 2g.10gb at slices 0-1 (GI 1, the existing
    mdev's), 1g.5gb at 2-6; GI 2 (1g, slice 2) is slot 0's own, GI 3 (3g.20gb, 4-7) blocks 2-4."""
    pf = "0000:3b:00.0"
    layout = [{"match": {"address": pf}, "profiles": [{"profile": "NVIDIA A100-2-10C", "count": 1},
                                                      {"profile": "nvidia-474"}]}]
    with Setup("a100-mig-mdev-vgpu") as s:
        doc = s.discover(layout)
        if not check(doc is not None, "a100-layout: gpudiscovery runs with a MIG-backed layout"):
            return
        valid(doc, "a100-layout")
        lay = doc["gpus"][0]["gpuhooks"]["layout"]
        check(lay["error"] is None and [(p["count"], p["slots"], p.get("gpu_instance_profile_id")) for p in lay["profiles"]] ==
              [(1, 1, 14), (5, 2, 19)], "a100-layout: 1 x 2g and 5 x 1g planned, 1 + 2 placed", lay)
        got = mdev_slots(doc)
        ok = len(got) == 3 and got[0][:2] == ("NVIDIA A100-2-10C", 0) and got[0][2:] == (
            "6a1b2c3d-4e5f-4a6b-8c7d-a100000000a1", "0000:3b:00.4", False, (14, 0, 2, True))
        for k, (prof, slot, u, parent, od, gi) in enumerate(got[1:]):
            ok = ok and (prof, slot, od, gi) == ("nvidia-474", k, True, (19, 2 + k, 1, k == 0)) and \
                u == str(uuid.uuid5(LAYOUT_NS, "%s/nvidia-474/SLOT_%d" % (parent, k))) and parent != "0000:3b:00.4"
        check(ok, "a100-layout: the existing mdev fills the 2g slot on GI 1; two 1g slots on free VFs under their "
              "derived UUIDs at slices 2 (GI 2 exists) and 3", got)
        w = [x for x in doc["gpuhooks"]["warnings"] if "is in the way" in x]
        check(len(w) == 3 and all("GPU instance 3 (profile 9 'MIG 3g.20gb', slices 4-7)" in x for x in w),
              "a100-layout: 1g slots 2-4 are not offered, each with a warning naming GI 3", w)
        again = s.discover(layout)
        check(again is not None and mdev_slots(again) == got, "a100-layout: the same slots on a second run",
              again and mdev_slots(again))
        r = harness.run([os.path.join(ARGS.build, "hooks", "gpudiscovery"), "--format", "table", "--config",
                         s.cfg_path, "--sysfs-root", s.emu.root, "--no-libvirt",
                         "--domain-xml-dir", s.tmp], env=s.env, timeout=60, text=True)
        check(r.rc == 0 and "(layout, created at start, GI 19 at slice 2)" in r.out and
              "(layout, created at start, GI 19 at slice 3 (made at start))" in r.out,
              "a100-layout: the text table shows each slot's GI placement", r.out)
        doc = s.discover([dict(layout[0], profiles=[{"profile": "NVIDIA A100-1-5C"}, {"profile": "NVIDIA A100-5C"}])])
        check(doc is not None and "time-sliced" in (doc["gpus"][0]["gpuhooks"]["layout"]["error"] or "") and
              mdev_slots(doc) == [], "a100-layout: MIG-backed and time-sliced profiles in one layout: not applied",
              doc and doc["gpus"][0]["gpuhooks"]["layout"])



# ---- the cycle: discovery -> transform -> prepare (GI made, type set) -> release (both undone) ----

class Cycle:
    """The hooks of one host with a layout: a configuration, a state directory, and the calls."""

    def __init__(self, s, layouts):
        self.s = s
        s.config({"layouts": layouts,
                  "state_change": {"write_timeout_ms": 60000, "lock_timeout_ms": 20000, "enable_sriov": True}})
        self.state = os.path.join(s.tmp, "st")
        self.empty = os.path.join(s.tmp, "empty")
        os.makedirs(self.empty, exist_ok=True)

    def common(self):
        return ["--config", self.s.cfg_path, "--sysfs-root", self.s.emu.root, "--state-dir", self.state]

    def discover(self):
        return self.s.discover()

    def transform(self, xml):
        return harness.run([os.path.join(ARGS.build, "hooks", "libvirt-vm-xml-transformer")] + self.common() +
                           ["--no-libvirt", "--domain-xml-dir", self.empty, "-"], stdin=xml, text=True,
                           env=self.s.env, timeout=60)

    def hook_args(self, args):
        return [os.path.join(ARGS.build, "hooks", "libvirt-vm-state-change")] + self.common() + \
            ["--dev-dir", self.s.emu.dev_dir] + args

    def hook(self, args, stdin="<domain/>"):
        return harness.run(self.hook_args(args), stdin=stdin, text=True, env=self.s.env, timeout=120)

    def journals(self):
        d = os.path.join(self.state, "journal")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


def nvml_gis(s):
    return sorted((g["profile_id"], g["start"], g["size"]) for g in s.nvml_state().get("gpu_instances", []))


def free_slot(doc):
    """The first advertised slot whose GPU instance does not exist yet: (address, GI) for a
    vendor VF, (UUID, GI) for an mdev."""
    g = doc["gpus"][0]
    for v in g.get("vf_instances", []):
        x = v["gpuhooks"]
        if x.get("slot") is not None and x.get("gpu_instance") and not x["gpu_instance"]["exists"]:
            return v["vf_pci_address"], x["gpu_instance"]
    for v in g.get("vgpu_instances", []):
        x = v["gpuhooks"]
        if x.get("slot") is not None and x.get("gpu_instance") and not x["gpu_instance"]["exists"]:
            return v["mdev_uuid"], x["gpu_instance"]
    return None, None


def full(pf, short):
    return pf[:5] + short if len(short) < 12 else short


def vendor_cycle(s, c, pf, what):
    """One vendor-VF slot through the cycle; returns the transformed XML (or None)."""
    doc = c.discover()
    vf, gi = free_slot(doc) if doc else (None, None)
    if not check(vf is not None, "%s: discovery advertises a slot whose GPU instance is made at start" % what, doc):
        return None
    vf = full(pf, vf)
    want = (gi["profile_id"], gi["placement_start"], gi["placement_size"])
    st = harness.run([os.path.join(ARGS.build, "hooks", "gpuhooksctl")] + c.common() +
                     ["--no-libvirt", "--domain-xml-dir", c.empty, "status", "--gpu", pf], env=s.env, text=True,
                     timeout=60)
    line = [x for x in st.out.splitlines() if vf in x]
    check(st.rc == 0 and len(line) == 1 and ", GI %d at slices %d-%d (made at start)" % (
        want[0], want[1], want[1] + want[2] - 1) in line[0],
        "%s: gpuhooksctl status shows the slot's GPU instance, made at start" % what, st.why())
    t = c.transform(agent_xml_of(ARGS.src, hostdev_pci(vf)))
    rec = 'gi-profile="%d" gi-placement="%d:%d"' % want
    if not check(t.rc == 0 and rec in t.out, "%s: the transformer records the slot's GPU instance (%s)" % (what, rec),
                 t.why()):
        return None
    name = re.search(r"<name>([^<]+)</name>", t.out).group(1)
    before = nvml_gis(s)
    p = c.hook([name, "prepare", "begin", "-"], stdin=t.out)
    check(p.rc == 0, "%s: prepare succeeds" % what, p.why())
    gis = s.nvml_state().get("gpu_instances", [])
    mine = [g for g in gis if (g["profile_id"], g["start"], g["size"]) == want]
    check(len(mine) == 1 and nvml_gis(s) == sorted(before + [want]),
          "%s: prepare made the GPU instance at the slot's placement %d:%d" % (what, want[1], want[2]), gis)
    cur = s.emu.read("bus/pci/devices/%s/nvidia/current_vgpu_type" % vf).strip()
    gid = s.emu.read("bus/pci/devices/%s/nvidia/gpu_instance_id" % vf).strip()
    check(cur != "0" and mine and gid == str(mine[0]["id"]),
          "%s: then set the VF's type, whose vGPU sits on that GPU instance" % what, (cur, gid, mine))
    r = c.hook([name, "release", "end", "-"])
    check(r.rc == 0 and nvml_gis(s) == before and
          s.emu.read("bus/pci/devices/%s/nvidia/current_vgpu_type" % vf).strip() == "0" and not c.journals(),
          "%s: release clears the type and destroys the GPU instance; no journal left" % what,
          (r.why(), nvml_gis(s), c.journals()))
    return t.out, vf, want


def kill_between(s, c, xml, write, want, what, undone):
    """Prepare @xml with @write (the type's or the mdev's, after the GI's creation) held in the
    emulator, kill -9 the hook there, then reconcile: the GI @want and the journal are left by the
    crash, and reconcile destroys the GI (@undone: the type or mdev is not there either)."""
    before = nvml_gis(s)
    name = re.search(r"<name>([^<]+)</name>", xml).group(1)
    since = len(s.emu.log())
    s.emu.control({"nvml_state": s.state, "hang": [{"path": write, "seconds": "forever", "id": "kill", "times": 1,
                                                    "errno": "EIO"}]})
    p = subprocess.Popen(c.hook_args([name, "prepare", "begin", "-"]), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=s.env)
    p.stdin.write(xml)
    p.stdin.close()
    try:
        s.emu.wait_for(lambda r: r.get("event") == "hang", timeout=60, since=since, what="the held write")
        held = True
    except TimeoutError:
        held = False
    made = nvml_gis(s)
    p.kill()
    # a writer killed inside a FUSE write waits for its answer: let the write end (failing), reap
    s.emu.control({"nvml_state": s.state, "release": ["kill"]})
    p.wait()
    p.stdout.close()
    p.stderr.close()
    s.emu.control({"nvml_state": s.state})
    check(held and made == sorted(before + [want]) and c.journals(),
          "%s: kill -9 during the write after the GPU instance was made: the GI and the journal are left" % what,
          (held, made, c.journals()))
    r = c.hook(["--no-libvirt", "--domain-xml-dir", c.empty, "--min-age", "0", "reconcile"])
    check(r.rc == 0 and nvml_gis(s) == before and not c.journals() and undone(),
          "%s: reconcile destroys the GPU instance; nothing is left" % what, (r.why(), nvml_gis(s), c.journals()))


def case_h100_cycle():
    """H100-2-20C slots (2g.20gb, placements 0, 2, 4): GIs 1 and 2 (1g, slices 0 and 1) block
    the first, GI 3 (3g, slices 4-7) the last; the slot at 2:2 is made at start, undone at stop;
    then kill -9 between its GI's creation and the type's write, and reconcile."""
    pf = "0000:ae:00.0"
    with Setup("h100-mig-vendor-vgpu") as s:
        c = Cycle(s, [{"match": {"address": pf}, "profiles": [{"profile": "NVIDIA H100-2-20C"}]}])
        got = vendor_cycle(s, c, pf, "h100-cycle")
        if not got:
            return
        xml, vf, want = got
        kill_between(s, c, xml, "bus/pci/devices/%s/nvidia/current_vgpu_type" % vf, want, "h100-cycle",
                     lambda: s.emu.read("bus/pci/devices/%s/nvidia/current_vgpu_type" % vf).strip() == "0")


def case_h100_mig_switch():
    """MIG mode off, the layout says "mig": true: refused while a VF carries a vGPU; once free,
    prepare disables the VFs, switches MIG on, enables the VFs, makes the GI, sets the type;
    release undoes all of it, MIG mode off again, the 32 VFs back."""
    pf = "0000:ae:00.0"
    with open(os.path.join(ARGS.src, "fixtures", "hosts", "h100-mig-vendor-vgpu", "nvml.json")) as f:
        st = json.load(f)
    st["gpus"][0]["mig"] = {"current": 0, "pending": 0}
    st["gpus"][0]["gpu_instances"] = []
    with Setup("h100-mig-vendor-vgpu", st) as s:
        c = Cycle(s, [{"match": {"address": pf}, "mig": True, "profiles": [{"profile": "NVIDIA H100-2-20C"}]}])
        doc = c.discover()
        vf, gi = free_slot(doc) if doc else (None, None)
        if not check(vf is not None, "h100-switch: with MIG off, the MIG layout's slots are advertised", doc):
            return
        vf = full(pf, vf)
        t = c.transform(agent_xml_of(ARGS.src, hostdev_pci(vf)))
        if not check(t.rc == 0, "h100-switch: the transformer takes the slot", t.why()):
            return
        name = re.search(r"<name>([^<]+)</name>", t.out).group(1)
        p = c.hook([name, "prepare", "begin", "-"], stdin=t.out)
        check(p.rc == 1 and "MIG mode is off and cannot be switched on while the GPU is in use: 0000:ae:00.4 has "
              "vGPU type 1700" in p.err and s.nvml_state()["mig"]["current"] == 0 and not c.journals(),
              "h100-switch: refused while VF ae:00.4 carries a vGPU, nothing changed", p.why())
        s.emu.write("bus/pci/devices/0000:ae:00.4/nvidia/current_vgpu_type", "0\n")
        p = c.hook([name, "prepare", "begin", "-"], stdin=t.out)
        want = [(gi["profile_id"], gi["placement_start"], gi["placement_size"])]
        check(p.rc == 0 and s.nvml_state()["mig"]["current"] == 1 and nvml_gis(s) == want and
              s.emu.read("bus/pci/devices/%s/sriov_numvfs" % pf).strip() == "32" and
              s.emu.read("bus/pci/devices/%s/nvidia/current_vgpu_type" % vf).strip() != "0",
              "h100-switch: MIG mode switched on (VFs off and on again around it), the GI made, the type set",
              (p.why(), s.nvml_state()["mig"], nvml_gis(s)))
        r = c.hook([name, "release", "end", "-"])
        check(r.rc == 0 and s.nvml_state()["mig"]["current"] == 0 and nvml_gis(s) == [] and
              s.emu.read("bus/pci/devices/%s/sriov_numvfs" % pf).strip() == "32" and not c.journals(),
              "h100-switch: release undoes it all: the type, the GI, MIG mode (gpuhooks switched it), the VFs back",
              (r.why(), s.nvml_state()["mig"], nvml_gis(s)))
        # MIG on by the operator with the VFs off, and a GI at the slot's placement made then:
        # enabling the VFs at prepare wipes it, so prepare must not count on it
        check(s.emu.write("bus/pci/devices/%s/sriov_numvfs" % pf, "0\n") == 0 and s.nvml.set_mig(pf, 1) == 0 and
              s.nvml.create_gi(pf, *want[0]) == 0 and nvml_gis(s) == want,
              "h100-switch: MIG on and the slot's GI made with the VFs off")
        p = c.hook([name, "prepare", "begin", "-"], stdin=t.out)
        check(p.rc == 0 and nvml_gis(s) == want and s.nvml_state()["mig"]["current"] == 1 and
              s.emu.read("bus/pci/devices/%s/nvidia/current_vgpu_type" % vf).strip() != "0",
              "h100-switch: prepare enables the VFs (which wipes that GI), then makes the GI again and sets the type",
              (p.why(), nvml_gis(s)))
        r = c.hook([name, "release", "end", "-"])
        check(r.rc == 0 and nvml_gis(s) == [] and s.nvml_state()["mig"]["current"] == 1 and not c.journals(),
              "h100-switch: release destroys the GI it made and leaves MIG mode on (the operator's)", r.why())


def case_a100_cycle():
    """An A100-1-5C mdev slot (mdev on a VF): the operator's GIs 2 and 3 destroyed first, so that
    the only free 1g GI is the one prepare makes; prepare makes it and the mdev, release removes
    both; then kill -9 between the GI's creation and the mdev's, and reconcile."""
    pf = "0000:3b:00.0"
    with Setup("a100-mig-mdev-vgpu") as s:
        check(s.nvml.destroy_gi(pf, 2) == 0 and s.nvml.destroy_gi(pf, 3) == 0, "a100-cycle: GIs 2 and 3 destroyed")
        c = Cycle(s, [{"match": {"address": pf}, "profiles": [{"profile": "NVIDIA A100-1-5C"}]}])
        doc = c.discover()
        u, gi = free_slot(doc) if doc else (None, None)
        if not check(u is not None, "a100-cycle: an mdev slot whose GI is made at start is advertised", doc):
            return
        want = (gi["profile_id"], gi["placement_start"], gi["placement_size"])
        t = c.transform(agent_xml_of(ARGS.src, hostdev_mdev(u)))
        if not check(t.rc == 0 and 'gi-placement="%d:%d"' % want[1:] in t.out and 'new="yes"' in t.out,
                     "a100-cycle: the transformer records the mdev to create and its GI", t.why()):
            return
        name = re.search(r"<name>([^<]+)</name>", t.out).group(1)
        before = nvml_gis(s)
        p = c.hook([name, "prepare", "begin", "-"], stdin=t.out)
        check(p.rc == 0 and nvml_gis(s) == sorted(before + [want]) and
              os.path.exists(os.path.join(s.emu.root, "bus", "mdev", "devices", u)),
              "a100-cycle: prepare made the GI at %d:%d, then the mdev with the slot's UUID" % want[1:],
              (p.why(), nvml_gis(s)))
        r = c.hook([name, "release", "end", "-"])
        gone = lambda: not os.path.exists(os.path.join(s.emu.root, "bus", "mdev", "devices", u))  # noqa: E731
        check(r.rc == 0 and nvml_gis(s) == before and gone(),
              "a100-cycle: release removes the mdev, then destroys the GI", (r.why(), nvml_gis(s)))
        parent = re.search(r'kind="mdev" uuid="%s" parent="([^"]+)"' % u, t.out).group(1)
        kill_between(s, c, t.out, "bus/pci/devices/%s/mdev_supported_types/nvidia-474/create" % parent, want,
                     "a100-cycle", gone)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("case", choices=["h100", "a100", "l40s-modes", "h100-layout", "a100-layout", "h100-cycle",
                                     "h100-switch", "a100-cycle"])
    ARGS = ap.parse_args()
    harness.use_tmpfs()
    E = emulator()
    try:
        {"h100": case_h100, "a100": case_a100, "l40s-modes": case_l40s_modes, "h100-layout": case_h100_layout,
         "a100-layout": case_a100_layout, "h100-cycle": case_h100_cycle, "h100-switch": case_h100_mig_switch,
         "a100-cycle": case_a100_cycle}[ARGS.case]()
    except E.Skip as e:
        print("SKIP: %s" % e)
        return 77
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
