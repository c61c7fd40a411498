#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of vGPU layouts (docs/layouts.md): the unmodified gpudiscovery, transformer
and state-change binaries on fixture hosts mounted under the FUSE sysfs emulator (tests/emu).

  test_layouts.py --discovery BIN --transformer BIN --hook BIN --hosts BUILD/fixtures/hosts --src SRC CASE

Each CASE writes a configuration with a layout and runs CloudStack's cycle for one kind of GPU:
discovery advertises the slots -> the hostdev CloudStack's agent writes for one of them
(LibvirtGpuDef: type='pci' managed='no' for an NVIDIA vGPU VF, type='mdev' model='vfio-pci'
for an mdev) -> transform -> prepare (the mdev created with exactly that UUID, or the VF's vGPU
type set) -> discovery (used_by_vm) -> release (removed / cleared) -> discovery (the slot free
again under the same address). Exits 77 (skipped) when FUSE cannot be used here.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from agentxml import agent_xml as agent_xml_of, hostdev_mdev, hostdev_pci  # noqa: E402
from harness import check  # noqa: E402

ARGS = None
VM = "i-2-154-VM"


def emulator():
    sys.path.insert(0, os.path.join(ARGS.src, "tests", "emu"))
    import emu
    return emu


def clean_env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUHOOKS_")}
    e.pop("LIBVIRT_DEFAULT_URI", None)
    return e


class Host:
    """A fixture host under the emulator, a state directory, a configuration, and a directory of
    running domains' XML (libvirt's status files) for discovery's used_by_vm."""

    def __init__(self, host, layouts, clean=True, nvml=None):
        """@nvml: a state of the fake libnvidia-ml.so.1 (tests/fakenvml/README.md) the binaries and
        the emulator share; None: no NVML (the driver's library, which this machine lacks)."""
        self.host, self.layouts, self.clean, self.nvml = host, layouts, clean, nvml

    def __enter__(self):
        E = emulator()
        self.tmp = tempfile.mkdtemp(prefix="gpuh-layout-")
        self.env = clean_env()
        control = None
        if self.nvml is not None:
            state = os.path.join(self.tmp, "nvml.json")
            with open(state, "w") as f:
                json.dump(self.nvml, f)
            build = os.path.dirname(os.path.dirname(os.path.abspath(ARGS.hosts)))
            self.env.update({"GPUHOOKS_NVML_LIB": os.path.join(build, "tests", "fakenvml", "libnvidia-ml.so.1"),
                             "GPUH_FAKE_NVML_STATE": state})
            control = {"nvml_state": state}
        self.emu = E.Emulator(os.path.join(ARGS.hosts, self.host, "sys"), control=control)
        self.emu.__enter__()
        self.state = os.path.join(self.tmp, "state")
        self.run = os.path.join(self.tmp, "run")
        os.mkdir(self.run)
        self.cfg_path = os.path.join(self.tmp, "gpuhooks.json")
        self.config(self.layouts)
        if self.clean:
            self.reboot_devices()
        return self

    def __exit__(self, *exc):
        self.emu.__exit__(*exc)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def config(self, layouts):
        with open(self.cfg_path, "w") as f:
            json.dump({"layouts": layouts, "state_change": {"write_timeout_ms": 3000, "nvidia_mdev_grace_ms": 0}}, f)

    def reboot_devices(self):
        """What a reboot leaves: no mdev, no vGPU type set (and a fresh state directory)."""
        mdir = os.path.join(self.emu.root, "bus/mdev/devices")
        for u in sorted(os.listdir(mdir)) if os.path.isdir(mdir) else []:
            self.emu.write("bus/mdev/devices/%s/remove" % u, "1")
        pdir = os.path.join(self.emu.root, "bus/pci/devices")
        for bdf in sorted(os.listdir(pdir)):
            p = os.path.join(pdir, bdf, "nvidia", "current_vgpu_type")
            if os.path.exists(p) and open(p).read().strip() not in ("", "0"):
                self.emu.write("bus/pci/devices/%s/nvidia/current_vgpu_type" % bdf, "0")
        # an empty GPU offers every type of its PF max_instance times (NVIDIA's host driver; the
        # emulator gives back only the removed mdev's type)
        for bdf in sorted(os.listdir(pdir)):
            tdir = os.path.join(self.emu.backing, "bus/pci/devices", bdf, "mdev_supported_types")
            if not os.path.isdir(tdir) or os.path.exists(os.path.join(self.emu.backing, "bus/pci/devices", bdf, "physfn")):
                continue
            for t in sorted(os.listdir(tdir)):
                m = re.search(r"max_instance=(\d+)", open(os.path.join(tdir, t, "description")).read())
                if m:
                    with open(os.path.join(tdir, t, "available_instances"), "w") as f:
                        f.write(m.group(1) + "\n")
        shutil.rmtree(self.state, ignore_errors=True)

    def discover(self):
        r = harness.run([ARGS.discovery, "--config", self.cfg_path, "--sysfs-root", self.emu.root, "--state-dir",
                         self.state, "--no-libvirt", "--domain-xml-dir", self.run, "--cache-dir", "",
                         "--pci-ids", os.path.join(ARGS.src, "fixtures", "pci.ids")], text=True, env=self.env,
                        timeout=60)
        if r.rc != 0 or r.err:
            raise RuntimeError("gpudiscovery failed: " + r.why())
        return json.loads(r.out)

    def transform(self, xml):
        return harness.run([ARGS.transformer, "--config", self.cfg_path, "--sysfs-root", self.emu.root,
                            "--state-dir", self.state, "--no-libvirt", "--domain-xml-dir", self.run, "-"],
                           stdin=xml, text=True, env=self.env, timeout=60)

    def hook(self, args, stdin):
        return harness.run([ARGS.hook, "--config", self.cfg_path, "--sysfs-root", self.emu.root, "--state-dir",
                            self.state, "--dev-dir", self.emu.dev_dir] + args, stdin=stdin, text=True,
                           env=self.env, timeout=120)

    def started(self, xml):
        """libvirt's status file of the running domain, as discovery reads it without libvirt."""
        with open(os.path.join(self.run, VM + ".xml"), "w") as f:
            f.write("<domstatus state='running' reason='booted' pid='4242'>%s</domstatus>" %
                    re.sub(r"<\?xml[^>]*\?>", "", xml))

    def stopped(self):
        os.unlink(os.path.join(self.run, VM + ".xml"))

    def read(self, rel):
        with open(os.path.join(self.emu.root, rel)) as f:
            return f.read().strip()

    def mdevs(self):
        d = os.path.join(self.emu.root, "bus/mdev/devices")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


VALIDATOR = None


def valid(inv, what, only=None):
    """The inventory fits gpu-inventory.schema.json and the CloudStack agent's parsing rules;
    with @only, the document holding that GPU alone (a 3-GPU L40S host takes seconds)."""
    global VALIDATOR
    if only:
        inv = dict(inv, gpus=[gpu(inv, only)])
    from jsonschema import Draft202012Validator, FormatChecker
    if VALIDATOR is None:
        with open(os.path.join(ARGS.src, "schemas", "gpu-inventory.schema.json")) as f:
            VALIDATOR = Draft202012Validator(json.load(f), format_checker=FormatChecker())
    errs = ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in VALIDATOR.iter_errors(inv)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(inv, f)
    p = subprocess.run(["/usr/bin/python3", os.path.join(ARGS.src, "tests", "e2e", "agent_rules.py"), f.name],
                       capture_output=True, text=True)
    os.unlink(f.name)
    check(not errs and p.returncode == 0, what + ": the inventory fits the schema and the agent's parsing rules",
          "\n".join(errs[:10]) + p.stdout + p.stderr)


def gpu(inv, addr):
    return next(g for g in inv["gpus"] if g["gpuhooks"]["address"] == addr)


def slots(g):
    """What CloudStack learns of a GPU: (busAddress, profile, used_by_vm) of every device it keeps
    (LibvirtComputingResource: vgpu_instances with a profile_name, vf_instances with a vf_profile)."""
    out = [(v["mdev_uuid"], v["profile_name"], v["used_by_vm"]) for v in g["vgpu_instances"] if v["profile_name"]]
    out += [(v["vf_pci_address"], v["vf_profile"], v["used_by_vm"]) for v in g["vf_instances"] if v["vf_profile"]]
    return sorted(out)


def on_demand(g):
    return [v for v in g["vgpu_instances"] + g["vf_instances"] if v["gpuhooks"]["on_demand"]]


def sources(xml):
    """The <source> addresses of a document's hostdevs: mdev UUIDs, PCI addresses."""
    out = []
    for h in re.findall(r"<hostdev\b.*?</hostdev>", xml, re.S):
        m = re.search(r"<address uuid=[\"']([^\"']+)", h)
        if m:
            out.append(m.group(1))
            continue
        a = dict(re.findall(r"(domain|bus|slot|function)=[\"']0x([0-9a-f]+)", h))
        out.append("%s:%s:%s.%s" % (a["domain"], a["bus"], a["slot"], a["function"]))
    return out


def cycle(h, gaddr, pick, hostdev, carved, undone, what):
    """CloudStack's whole cycle for the slot @pick (busAddress) of GPU @gaddr; @carved() and
    @undone() say whether the device is made / gone."""
    before = slots(gpu(h.discover(), gaddr))
    xml = agent_xml_of(ARGS.src, hostdev)
    r = h.transform(xml)
    if not check(r.rc == 0, what + ": the transformer accepts CloudStack's hostdev for an advertised slot", r.why()):
        return
    out = r.out
    check(sources(out) == sources(xml) and len(sources(xml)) == 1,
          what + ": the domain's GPU device is CloudStack's, the same address", (sources(xml), sources(out)))
    check(not carved(), what + ": transform carves nothing")
    want = sorted((a, p, VM if a == pick else u) for a, p, u in before)
    h.started(out)
    named = slots(gpu(h.discover(), gaddr))
    check(named == want, what + ": discovery: a slot a domain names, not carved yet, is reported used by it",
          "before %s\nnamed %s" % (before, named))
    r = h.hook([VM, "prepare", "begin", "-"], out)
    check(r.rc == 0 and carved(), what + ": prepare carves the slot", r.why())
    inv = h.discover()
    valid(inv, what + ", carved and in use", gaddr)
    after = slots(gpu(inv, gaddr))
    check(after == want, what + ": discovery: the same devices, the slot used_by_vm " + VM,
          "before %s\nafter %s" % (before, after))
    r = h.hook([VM, "release", "end", "-"], "<domain/>")
    h.stopped()
    check(r.rc == 0 and undone(), what + ": release undoes it", r.why())
    again = slots(gpu(h.discover(), gaddr))
    check(again == before, what + ": discovery: the slot free again under the same address",
          "before %s\nagain %s" % (before, again))


L40S = "0000:26:00.0"


def case_vendor():
    """L40S (NVIDIA vendor-specific vGPU VFs): NVIDIA L40S-8Q x 6 is 6 of 6 VFs with vf_profile
    'NVIDIA L40S-8Q' before any type is set; a CloudStack VF hostdev sets the type at prepare."""
    with Host("l40s-vendor-vgpu", [{"match": {"vendor": "10de", "device": "26b9"},
                                    "profiles": [{"profile": "NVIDIA L40S-8Q", "count": 6}]}]) as h:
        inv = h.discover()
        g = gpu(inv, L40S)
        s = slots(g)
        check([a for a, _, _ in s] == ["26:00.4", "26:00.5", "26:00.6", "26:00.7", "26:01.0", "26:01.1"] and
              all(p == "NVIDIA L40S-8Q" and u is None for _, p, u in s),
              "L40S-8Q x 6: the six lowest VFs advertised as NVIDIA L40S-8Q, none set yet", s)
        check(g["full_passthrough"]["enabled"] == 0 and "layout" in g["gpuhooks"]["passthrough_blockers"],
              "a GPU with a layout is not offered whole (blocker 'layout')", g["gpuhooks"]["passthrough_blockers"])
        lay = g["gpuhooks"]["layout"]
        check(lay and lay["kind"] == "vendor-vf" and lay["slots"] == 6 and lay["error"] is None and
              lay["profiles"][0]["vgpu_type_id"] == 1152, "gpuhooks.layout: vendor-vf, 6 slots, type 1152", lay)
        vf = "bus/pci/devices/0000:26:00.6/nvidia/current_vgpu_type"
        cycle(h, L40S, "26:00.6", hostdev_pci("0000:26:00.6"), lambda: h.read(vf) == "1152",
              lambda: h.read(vf) == "0", "L40S VF 26:00.6")
        # the default count: the most that fits
        h.config([{"match": {"address": L40S}, "profiles": [{"profile": "NVIDIA L40S-8Q"}]}])
        g = gpu(h.discover(), L40S)
        check(len(slots(g)) == 6 and g["gpuhooks"]["layout"]["profiles"][0]["count"] == 6 and
              not g["gpuhooks"]["layout"]["profiles"][0]["count_given"],
              "no count: 48 GB / 8 GB = 6 slots", g["gpuhooks"]["layout"])


def case_mixed():
    """L40S mixed sizes (vendor-specific vGPU shares the framebuffer among sizes, in mixed-size
    mode): 16Q x 1, 8Q x 2 and the most 4Q that fit in the rest (4); a VF with a different type
    set stays as it is. In equal-size mode (the driver's default, NVML silent) not applied."""
    layout = [{"match": {"address": L40S}, "profiles": [{"profile": "NVIDIA L40S-16Q", "count": 1},
                                                        {"profile": "NVIDIA L40S-8Q", "count": 2},
                                                        {"profile": "NVIDIA L40S-4Q"}]}]
    with Host("l40s-vendor-vgpu", layout) as h:
        g = gpu(h.discover(), L40S)
        why = g["gpuhooks"]["layout"]["error"] or ""
        check("equal-size vGPU mode (the driver's default; NVML did not say)" in why and not slots(g),
              "L40S mixed sizes without NVML: equal-size mode assumed, the layout not applied, saying so", why)
    nvml = {"gpus": [{"pci_bus_id": a, "vgpu_heterogeneous_mode": 1, "vgpu_types": []}
                     for a in ("0000:26:00.0", "0000:3d:00.0", "0000:af:00.0")]}
    with Host("l40s-vendor-vgpu", layout, nvml=nvml) as h:
        inv = h.discover()
        valid(inv, "L40S mixed", L40S)
        g = gpu(inv, L40S)
        s = slots(g)
        prof = [p for _, p, _ in s]
        check(prof == ["NVIDIA L40S-16Q"] + ["NVIDIA L40S-8Q"] * 2 + ["NVIDIA L40S-4Q"] * 4,
              "16Q x 1, 8Q x 2, 4Q x the 16 GB left (4), on the 7 lowest VFs", s)
        vf = "bus/pci/devices/0000:26:01.0/nvidia/current_vgpu_type"
        pick = [a for a, p, _ in s if p == "NVIDIA L40S-4Q"][0]
        check(pick == "26:00.7", "the 4Q slots follow the 8Q ones", s)
        vfp = "bus/pci/devices/0000:26:00.7/nvidia/current_vgpu_type"
        cycle(h, L40S, pick, hostdev_pci("0000:" + pick), lambda: h.read(vfp) == "1150",
              lambda: h.read(vfp) == "0", "L40S mixed 4Q slot " + pick)
        check(h.read(vf) == "0", "the other slots' VFs are left alone")


def case_nofit():
    """A layout that cannot fit: a warning naming GPU, profile and capacity; no slot; CloudStack's
    hostdev for one of its VFs is refused in one line."""
    with Host("l40s-vendor-vgpu", [{"match": {"address": L40S},
                                    "profiles": [{"profile": "NVIDIA L40S-8Q", "count": 7}]}]) as h:
        inv = h.discover()
        valid(inv, "a layout that does not fit", L40S)
        g = gpu(inv, L40S)
        w = [x for x in inv["gpuhooks"]["warnings"] if "layout" in x]
        check(len(w) == 1 and L40S in w[0] and "NVIDIA L40S-8Q" in w[0] and "49152" in w[0],
              "8Q x 7 on 48 GB: a warning naming the GPU, the profile and the capacity", inv["gpuhooks"]["warnings"])
        check(slots(g) == [] and g["gpuhooks"]["layout"]["error"] == w[0] and g["full_passthrough"]["enabled"] == 0,
              "its layout is not applied (no slot), the GPU still not offered whole", g["gpuhooks"]["layout"])
        r = harness.run([ARGS.discovery, "--check", "--config", h.cfg_path, "--sysfs-root", h.emu.root, "--state-dir",
                         h.state, "--no-libvirt", "--domain-xml-dir", h.run, "--cache-dir", ""], text=True, env=clean_env(),
                        timeout=60)
        check(re.search(r"^warn\s+layout\s+0000:26:00\.0\s+layout of GPU 0000:26:00\.0: 'NVIDIA L40S-8Q' x 7 does not fit",
                        r.out, re.M) is not None, "gpudiscovery --check warns, naming the GPU and the profile", r.why())
        r = h.transform(agent_xml_of(ARGS.src, hostdev_pci("0000:26:00.4")))
        check(r.rc != 0 and r.one_line() and "26:00.4" in r.err and "layout" in r.err,
              "CloudStack's hostdev for one of its VFs fails closed, naming the VF and the layout", r.why())
        h.config([{"match": {"address": L40S}, "profiles": [{"profile": "NVIDIA L40S-9Q"}]}])
        inv = h.discover()
        check(any("NVIDIA L40S-9Q" in x for x in inv["gpuhooks"]["warnings"]) and slots(gpu(inv, L40S)) == [],
              "a profile the GPU does not offer: a warning, no slot", inv["gpuhooks"]["warnings"])
    with Host("dell-r740-m60-mdev", [{"match": {"vendor": "10de", "device": "13f2"},
                                      "profiles": [{"profile": "GRID M60-2Q", "count": 2},
                                                   {"profile": "GRID M60-4Q", "count": 1}]}]) as h:
        inv = h.discover()
        check(sum("cannot share" in x for x in inv["gpuhooks"]["warnings"]) == 2,
              "M60 (mdev, one size per GPU): 2Q and 4Q together refused on both GPUs", inv["gpuhooks"]["warnings"])


A2 = "0000:08:00.0"


def case_vfmdev():
    """A2 (an mdev on each SR-IOV VF): NVIDIA A2-4Q fills 4 VFs with derived UUIDs; CloudStack's
    mdev hostdev for one creates it with exactly that UUID on that VF."""
    with Host("hpe-dl380g9-a2-vgpu", [{"match": {"address": A2}, "profiles": [{"profile": "NVIDIA A2-4Q"}]}]) as h:
        inv = h.discover()
        valid(inv, "A2-4Q")
        g = gpu(inv, A2)
        od = on_demand(g)
        check(len(od) == 4 and [v["gpuhooks"]["parent"] for v in od] ==
              ["0000:08:00.4", "0000:08:00.5", "0000:08:00.6", "0000:08:00.7"] and
              all(v["profile_name"] == "NVIDIA A2-4Q" and v["gpuhooks"]["type_id"] == "nvidia-746" for v in od),
              "A2-4Q: 4 on-demand slots (16 GB / 4 GB) on the 4 lowest VFs", [(v["mdev_uuid"], v["gpuhooks"]["parent"]) for v in od])
        pick = od[1]
        uuid, parent = pick["mdev_uuid"], pick["gpuhooks"]["parent"]
        cycle(h, A2, uuid, hostdev_mdev(uuid), lambda: h.mdevs() == [uuid] and os.path.exists(
              os.path.join(h.emu.root, "bus/pci/devices", parent, uuid)), lambda: h.mdevs() == [], "A2 slot on " + parent)
    # the fixture as it is: mdevs of 3 types hold 12 of 16 GB; its 4Q mdev fills slot 0
    with Host("hpe-dl380g9-a2-vgpu", [{"match": {"address": A2}, "profiles": [{"profile": "NVIDIA A2-4Q"}]}],
              clean=False) as h:
        inv = h.discover()
        valid(inv, "A2-4Q beside mdevs in use")
        g = gpu(inv, A2)
        od = on_demand(g)
        kept = [v for v in g["vgpu_instances"] if v["gpuhooks"]["slot"] == 0]
        check(len(kept) == 1 and kept[0]["mdev_uuid"] == "c728e022-f16f-434b-ad2c-9665ee634d3d" and len(od) == 3 and
              len(g["vgpu_instances"]) == 6, "an existing mdev of the type keeps its UUID in slot 0; the in-use "
              "mdevs of other types are still reported", [(v["mdev_uuid"], v["gpuhooks"]["slot"]) for v in g["vgpu_instances"]])
        r = h.transform(agent_xml_of(ARGS.src, hostdev_mdev(od[0]["mdev_uuid"])))
        check(r.rc == 0, "a slot that still fits (4 of 16 GB left) is accepted", r.why())

        def other(uuid):
            xml = re.sub(r"<name>[^<]*</name>", "<name>i-2-155-VM</name>", agent_xml_of(ARGS.src, hostdev_mdev(uuid)), count=1)
            return h.transform(re.sub(r"<uuid>[^<]*</uuid>", "<uuid>0c4b40fc-0b03-40c5-b04e-28a15fe12245</uuid>", xml,
                                      count=1))
        r = other(od[0]["mdev_uuid"])
        check(r.rc != 0 and r.one_line() and od[0]["mdev_uuid"] in r.err and VM in r.err,
              "another domain naming the reserved slot is refused, naming the slot and its holder", r.why())
        r = other(od[1]["mdev_uuid"])
        check(r.rc != 0 and r.one_line() and od[1]["mdev_uuid"] in r.err and "framebuffer full" in r.err,
              "a slot whose capacity is gone (16 of 16 GB in use or promised) is refused in one line", r.why())


M60 = "0000:3d:00.0"


def case_pfmdev():
    """M60 (mdevs on the PF): GRID M60-2Q x 4 per GPU under derived UUIDs."""
    with Host("dell-r740-m60-mdev", [{"match": {"vendor": "10de", "device": "13f2"},
                                      "profiles": [{"profile": "GRID M60-2Q"}]}]) as h:
        inv = h.discover()
        valid(inv, "M60-2Q")
        g = gpu(inv, M60)
        od = on_demand(g)
        check(len(od) == 4 and all(v["gpuhooks"]["parent"] == M60 and v["profile_name"] == "GRID M60-2Q" for v in od) and
              [v["gpuhooks"]["slot"] for v in od] == [0, 1, 2, 3], "M60-2Q: 4 on-demand slots on the PF", od)
        uuid = od[2]["mdev_uuid"]
        cycle(h, M60, uuid, hostdev_mdev(uuid), lambda: h.mdevs() == [uuid] and os.path.exists(
              os.path.join(h.emu.root, "bus/pci/devices", M60, uuid)), lambda: h.mdevs() == [], "M60 slot 2")


def case_stable():
    """The advertised set is a function of the layout and the hardware: the same across runs, with
    a slot created, and after a "reboot" (a fresh host copy, fresh state directory, mdevs gone)."""
    layouts = [{"match": {"vendor": "10de", "device": "13f2"}, "profiles": [{"profile": "GRID M60-2Q"}]}]
    with Host("dell-r740-m60-mdev", layouts) as h:
        first = slots(gpu(h.discover(), M60)), slots(gpu(h.discover(), "0000:3e:00.0"))
        check(first == (slots(gpu(h.discover(), M60)), slots(gpu(h.discover(), "0000:3e:00.0"))),
              "two runs: the same devices")
        uuid = first[0][0][0]
        h.emu.write("bus/pci/devices/%s/mdev_supported_types/nvidia-18/create" % M60, uuid)
        check(slots(gpu(h.discover(), M60)) == first[0], "a slot's mdev created: the same devices, same UUIDs")
    with Host("dell-r740-m60-mdev", layouts) as h:
        check((slots(gpu(h.discover(), M60)), slots(gpu(h.discover(), "0000:3e:00.0"))) == first,
              "after a reboot: the same devices under the same addresses")
    with Host("l40s-vendor-vgpu", [{"match": {"address": L40S}, "profiles": [{"profile": "NVIDIA L40S-8Q"}]}]) as h:
        a = slots(gpu(h.discover(), L40S))
        h.emu.write("bus/pci/devices/0000:26:00.5/nvidia/current_vgpu_type", "1152")
        b = slots(gpu(h.discover(), L40S))
        h.reboot_devices()
        c = slots(gpu(h.discover(), L40S))
        check(a == b == c and len(a) == 6, "L40S: the same VFs with a type set and after a reboot", (a, b, c))


CASES = {"vendor": case_vendor, "mixed": case_mixed, "nofit": case_nofit, "vfmdev": case_vfmdev,
         "pfmdev": case_pfmdev, "stable": case_stable}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--discovery", required=True)
    ap.add_argument("--transformer", required=True)
    ap.add_argument("--hook", required=True)
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    ARGS = ap.parse_args()
    harness.use_tmpfs()
    why = emulator().fuse_available()
    if why:
        print("SKIP: the sysfs emulator cannot run here: " + why)
        return 77
    try:
        CASES[ARGS.case]()
    except Exception as e:
        if type(e).__name__ == "Skip":
            print("SKIP: " + str(e))
            return 77
        raise
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
