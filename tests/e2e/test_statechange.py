#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the unmodified libvirt-vm-state-change binary (docs/state-change.md).

  test_statechange.py --hook BIN --transformer BIN --hosts BUILD/fixtures/hosts --src SRC CASE

Devices are changed on fixture hosts mounted under the FUSE sysfs emulator (tests/emu), which
answers writes as the kernel does; the domain XMLs come from the unmodified transformer run on
the same emulated host, as on a real host. CASE 'protocol' needs no FUSE; every other case
exits 77 (skipped) when FUSE cannot be used here.

Prints one line per check and closes with 'N passed, N failed'.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import random

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import Result, check  # noqa: E402

ARGS = None
NS = "urn:gpuhooks:domain:1"


def emulator():
    sys.path.insert(0, os.path.join(ARGS.src, "tests", "emu"))
    import emu
    return emu


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUHOOKS_")}
    e.pop("LIBVIRT_DEFAULT_URI", None)
    if extra:
        e.update(extra)
    return e


def set_domain(xml, name, uuid):
    xml = re.sub(r"<name>[^<]*</name>", "<name>%s</name>" % name, xml, count=1)
    return re.sub(r"<uuid>[^<]*</uuid>", "<uuid>%s</uuid>" % uuid, xml, count=1)


def domain_xml(fixture, name=None, uuid=None, subst=None):
    with open(os.path.join(ARGS.src, "fixtures", "domains", fixture)) as f:
        xml = f.read()
    for a, b in (subst or {}).items():
        assert a in xml, (fixture, a)
        xml = xml.replace(a, b)
    if name:
        xml = set_domain(xml, name, uuid or "00000000-0000-4000-8000-%012x" % (abs(hash(name)) % (1 << 48)))
    return xml


def domain_name(xml):
    return re.search(r"<name>([^<]+)</name>", xml).group(1)


class Host:
    """One fixture host under the emulator, a state directory and a configuration."""

    def __init__(self, host, cfg=None, control=None):
        self.host = host
        self.cfg = cfg or {}
        self.control_init = control
        self.emu = None

    def __enter__(self):
        E = emulator()
        self.emu = E.Emulator(os.path.join(ARGS.hosts, self.host, "sys"), control=self.control_init)
        self.emu.__enter__()
        self.tmp = tempfile.mkdtemp(prefix="gpuh-sc-")
        self.state = os.path.join(self.tmp, "state")
        self.empty = os.path.join(self.tmp, "no-domains")
        os.mkdir(self.empty)
        self.config(self.cfg)
        return self

    def __exit__(self, *exc):
        self.emu.__exit__(*exc)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def config(self, cfg):
        c = {"state_change": {"write_timeout_ms": 3000, "lock_timeout_ms": 20000, "nvidia_mdev_grace_ms": 0}}
        for k, v in cfg.items():
            c.setdefault(k, {}).update(v)
        self.cfg_path = os.path.join(self.tmp, "gpuhooks.json")
        with open(self.cfg_path, "w") as f:
            json.dump(c, f)

    def opts(self):
        return ["--config", self.cfg_path, "--sysfs-root", self.emu.root, "--state-dir", self.state,
                "--dev-dir", self.emu.dev_dir]

    def transform(self, xml):
        p = subprocess.run([ARGS.transformer, "--config", self.cfg_path, "--sysfs-root", self.emu.root,
                            "--state-dir", self.state, "--no-libvirt", "--domain-xml-dir", self.empty, "-"],
                           input=xml, capture_output=True, text=True, env=clean_env(), timeout=60)
        if p.returncode != 0:
            raise RuntimeError("transformer failed: " + p.stderr)
        return p.stdout

    def hook(self, args, stdin="", opts=True, env=None, timeout=120):
        return harness.run([ARGS.hook] + (self.opts() if opts else []) + args, stdin=stdin, text=True,
                           env=clean_env(env), timeout=timeout)

    def spawn(self, args, stdin=""):
        p = subprocess.Popen([ARGS.hook] + self.opts() + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=clean_env())
        p.stdin.write(stdin)
        p.stdin.close()
        return p

    def prepare(self, xml, extra=()):
        return self.hook(list(extra) + [domain_name(xml), "prepare", "begin", "-"], stdin=xml)

    def release(self, name, extra=()):
        return self.hook(list(extra) + [name, "release", "end", "-"], stdin="<domain/>")

    def reconcile(self):
        return self.hook(["--no-libvirt", "--domain-xml-dir", self.empty, "--min-age", "0", "reconcile"])

    def journals(self):
        d = os.path.join(self.state, "journal")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def reservations(self):
        d = os.path.join(self.state, "reservations")
        return sorted(f for f in os.listdir(d) if not f.startswith(".")) if os.path.isdir(d) else []

    def snap(self):
        return snapshot(self.emu)

    def write_seq(self, since=0):
        """The writes since @since as (file name, value): the path's last component is the same
        whether a write arrived through a link or not."""
        return [(w["path"].rsplit("/", 1)[-1], w["value"].rstrip("\n"), w["result"]) for w in self.emu.writes(since)]


def snapshot(emu):
    """Everything the hook may change, read from the emulator's backing tree: driver and
    driver_override of every function, vGPU types and creatable lists, SR-IOV counts, mdevs,
    available instances, /dev/vfio nodes."""
    root = emu.backing
    s = {}
    pdir = os.path.join(root, "bus/pci/devices")
    for bdf in sorted(os.listdir(pdir)):
        d = os.path.join(pdir, bdf)

        def rd(rel):
            try:
                with open(os.path.join(d, rel)) as f:
                    return f.read().strip()
            except OSError:
                return None
        drv = os.path.join(d, "driver")
        e = {"driver": os.path.basename(os.readlink(drv)) if os.path.islink(drv) else None,
             "override": rd("driver_override")}
        for rel in ("sriov_numvfs", "nvidia/current_vgpu_type", "nvidia/creatable_vgpu_types"):
            v = rd(rel)
            if v is not None:
                e[rel] = v
        types = os.path.join(d, "mdev_supported_types")
        if os.path.isdir(types):
            e["available"] = {t: rd("mdev_supported_types/%s/available_instances" % t) for t in sorted(os.listdir(types))}
        s[bdf] = e
    mdir = os.path.join(root, "bus/mdev/devices")
    s["mdevs"] = sorted((u, os.path.basename(os.readlink(os.path.join(mdir, u, "mdev_type"))))
                        for u in os.listdir(mdir)) if os.path.isdir(mdir) else []
    s["dev_vfio"] = sorted(emu.dev_vfio())
    return s


def diff(a, b):
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append("%s: %s -> %s" % (k, a.get(k), b.get(k)))
    return "\n".join(out) or "(same)"


def driver_of(host, bdf):
    p = os.path.join(host.emu.backing, "bus/pci/devices", bdf, "driver")
    return os.path.basename(os.readlink(p)) if os.path.islink(p) else None


def group_of(host, bdf):
    return os.path.basename(os.readlink(os.path.join(host.emu.backing, "bus/pci/devices", bdf, "iommu_group")))


def record(xml):
    """The allocation record's devices, as attribute dicts."""
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', m)) for m in re.findall(r"<gpuhooks:device ([^>]*?)/?>", xml)]


def to_host_drivers(h, bdfs):
    """Give functions the fixture put on vfio-pci back to the driver the emulator's ID tables
    pick (as a host whose VM stopped): override cleared, unbound, probed."""
    for bdf in bdfs:
        h.emu.write("bus/pci/devices/%s/driver_override" % bdf, "\n")
        if driver_of(h, bdf):
            h.emu.write("bus/pci/drivers/%s/unbind" % driver_of(h, bdf), bdf)
        h.emu.write("bus/pci/drivers_probe", bdf)


# ---------------------------------------------------------------------------------------------
# Scenarios: a host, a domain asking for something, and the devices that must move.

def rtx3080(h):
    """The RTX 3080 and its audio function (IOMMU group 24), first back on nvidia/snd_hda_intel."""
    to_host_drivers(h, ["0000:05:00.0", "0000:05:00.1"])
    return domain_xml("20-dumpxml-request-passthrough-rtx3080.xml")


def a2_mdev(h):
    return domain_xml("21-dumpxml-request-mdev-a2-4q-x2.xml")


def l40s_vgpu(h):
    """A type no free VF has yet: set on one, cleared at release."""
    return domain_xml("22-dumpxml-request-vendor-vgpu-l40s-8q.xml", subst={"L40S-8Q": "L40S-4Q"})


def l40s_preset(h):
    """The type is already set on a free VF (by the operator): used as it is, nothing to undo."""
    return domain_xml("22-dumpxml-request-vendor-vgpu-l40s-8q.xml")


def s7150_vf(h):
    return domain_xml("23-dumpxml-request-vf-s7150v.xml")


SCENARIOS = {
    "rtx3080": ("consumer-rtx3080", rtx3080),
    "a2-mdev": ("hpe-dl380g9-a2-vgpu", a2_mdev),
    "l40s-vgpu": ("l40s-vendor-vgpu", l40s_vgpu),
    "l40s-preset": ("l40s-vendor-vgpu", l40s_preset),
    "s7150-vf": ("amd-mxgpu-instinct", s7150_vf),
}


def mutating():
    return [(n, v) for n, v in SCENARIOS.items() if n != "l40s-preset"]


# ---------------------------------------------------------------------------------------------
# Cases

def case_roundtrip():
    """Start then stop restores the exact prior state, on each kind of device; what prepare did
    is what the journal says and what the dry run listed."""
    for name, (host, make) in SCENARIOS.items():
        with Host(host) as h:
            xml0 = make(h)
            before = h.snap()
            xml = h.transform(xml0)
            vm = domain_name(xml)
            rec = record(xml)
            check(len(rec) > 0, "%s: the transformer wrote an allocation record" % name, xml[-2000:])
            n0 = len(h.emu.writes())
            dry = h.prepare(xml, extra=["--dry-run"])
            check(dry.rc == 0 and len(h.emu.writes()) == n0 and h.journals() == [],
                  "%s: --dry-run exits 0 and changes nothing (no write, no journal)" % name, dry.why())
            try:
                plan = json.loads(dry.out)
            except ValueError:
                plan = {"steps": []}
            planned = [(s["path"].rsplit("/", 1)[-1], s["value"]) for s in plan["steps"] if s["step"] == "write"]
            r = h.prepare(xml)
            check(r.rc == 0 and r.out == "" and r.err == "", "%s: prepare begin exits 0, prints nothing" % name, r.why())
            done = [(p, v) for p, v, res in h.write_seq(n0)]
            nothing = name == "l40s-preset"
            check(planned == done and (len(done) == 0) == nothing,
                  "%s: the dry run listed exactly the writes prepare made (%d)" % (name, len(done)),
                  "planned %s\nmade    %s" % (planned, done))
            after = h.snap()
            for d in rec:
                if d["kind"] in ("pci", "vf"):
                    check(after[d["address"]]["driver"] == "vfio-pci" and after[d["address"]]["override"] == "vfio-pci",
                          "%s: %s is on vfio-pci with driver_override" % (name, d["address"]), after[d["address"]])
                elif d["kind"] == "mdev":
                    check((d["uuid"], d["mdev-type"]) in after["mdevs"], "%s: mdev %s created as %s" %
                          (name, d["uuid"], d["mdev-type"]), after["mdevs"])
                elif d["kind"] == "vendor-vgpu":
                    check(after[d["address"]].get("nvidia/current_vgpu_type") == d["vgpu-type"],
                          "%s: %s has vGPU type %s, driver still %s" % (name, d["address"], d["vgpu-type"],
                                                                        after[d["address"]]["driver"]),
                          after[d["address"]])
                    check(after[d["address"]]["driver"] == before[d["address"]]["driver"],
                          "%s: the vendor vGPU VF stays on its driver" % name)
            check(h.journals() == ([] if nothing else [vm + ".journal"]),
                  "%s: the journal is kept while the domain runs (none when nothing changed)" % name, h.journals())
            r = h.hook([vm, "started", "begin", "-"], stdin=xml)
            with open(os.path.join(h.state, "reservations", vm + ".json")) as f:
                check(r.rc == 0 and json.load(f)["state"] == "running", "%s: started marks the reservation running" % name)
            r = h.release(vm)
            check(r.rc == 0 and r.err == "", "%s: release end exits 0" % name, r.why())
            end = h.snap()
            check(end == before, "%s: after release every device is exactly as before the start" % name, diff(before, end))
            check(h.journals() == [] and h.reservations() == [], "%s: journal and reservation are gone" % name,
                  (h.journals(), h.reservations()))
            r = h.release(vm)
            check(r.rc == 0 and h.snap() == before, "%s: a second release is harmless" % name, r.why())


def case_failures():
    """A write failing at each step of prepare undoes everything: one line, exit 1, prior state."""
    errnos = ["EBUSY", "EINVAL", "ENODEV", "EIO"]
    for name, (host, make) in mutating():
        with Host(host) as h:
            xml = h.transform(make(h))
            vm = domain_name(xml)
            before = h.snap()
            n0 = len(h.emu.writes())
            r = h.prepare(xml)
            steps = [w for w in h.emu.writes(n0)]
            check(r.rc == 0 and len(steps) > 0, "%s: reference run makes %d writes" % (name, len(steps)), r.why())
            h.release(vm)
            check(h.snap() == before, "%s: reference run released" % name)
            for k, w in enumerate(steps):
                e = errnos[k % len(errnos)]
                h.emu.control({"fail": [{"path": w["path"], "value": w["value"].strip() or "", "errno": e, "times": 1}]})
                n1 = len(h.emu.writes())
                r = h.prepare(xml)
                h.emu.control({})
                faulted = [x for x in h.emu.writes(n1) if x.get("fault") == "fail"]
                check(r.rc == 1 and r.one_line() and r.out == "" and len(faulted) == 1,
                      "%s: write %d (%s <- %r) failing with %s: exit 1, one line" %
                      (name, k + 1, w["path"].rsplit("/", 1)[-1], w["value"].strip(), e), r.why())
                now = h.snap()
                check(now == before and h.journals() == [], "%s: ... and every device is as before, no journal" % name,
                      diff(before, now) + "\n" + r.err)
                if now != before:
                    return
            h.release(vm)


def kill_at(h, xml, args, stdin, step, proceed):
    """Run the hook with write @step held in the emulator, SIGKILL it during that write; the
    write then completes (@proceed) or fails, as a write in flight at a crash may. Returns
    whether the hook was still running, inside that write, when it was killed. Every wait is
    for an event of the emulator's log: the write held ('hang'), then its end."""
    rule = {"path": step["path"], "value": step["value"].strip() or "", "seconds": "forever", "id": "kill",
            "times": 1}
    if not proceed:
        rule["errno"] = "EIO"
    since = len(h.emu.log())
    h.emu.control({"hang": [rule]})
    p = h.spawn(args, stdin)
    try:
        h.emu.wait_for(lambda r: r.get("event") == "hang", timeout=60, since=since,
                       what="the held write to " + step["path"])
        held = True
    except TimeoutError:
        held = False
    alive = held and p.poll() is None
    p.kill()
    # a writer killed inside a FUSE write waits for its answer: let the write end, then reap
    h.emu.control({"release": ["kill"]})
    p.wait()
    p.stdout.close()
    p.stderr.close()
    if held:
        h.emu.wait_for(lambda r: "event" not in r and r.get("fault") == "hang", timeout=60, since=since,
                       what="the end of the held write to " + step["path"])
    h.emu.control({})
    return alive


def case_crash():
    """kill -9 at every mutation point of prepare and of release, then release or reconcile:
    every device ends as it began. (The hook is killed as soon as the emulator holds the write:
    a write deadline far away keeps a loaded machine from reaching it first.)"""
    for name, (host, make) in mutating():
        with Host(host, cfg={"state_change": {"write_timeout_ms": 60000}}) as h:
            xml = h.transform(make(h))
            vm = domain_name(xml)
            before = h.snap()
            n0 = len(h.emu.writes())
            h.prepare(xml)
            steps = h.emu.writes(n0)
            n1 = len(h.emu.writes())
            h.release(vm)
            rsteps = h.emu.writes(n1)
            for i, s in enumerate(steps):
                s["_index"] = i
            for i, s in enumerate(rsteps):
                s["_index"] = i
            check(h.snap() == before, "%s: reference start and stop" % name)
            k = 0
            for s in steps:
                for proceed in (False, True):
                    k += 1
                    alive = kill_at(h, xml, [vm, "prepare", "begin", "-"], xml, s, proceed)
                    how = "reconcile" if k % 2 else "release end"
                    r = h.reconcile() if k % 2 else h.release(vm)
                    now = h.snap()
                    check(alive and r.rc == 0 and now == before and h.journals() == [],
                          "%s: prepare killed during %s <- %r (write %s), then %s: as before" %
                          (name, s["path"].rsplit("/", 1)[-1], s["value"].strip(),
                           "completes" if proceed else "fails", how), diff(before, now) + "\n" + r.why())
                    if now != before:
                        return
            for s in rsteps:
                for proceed in (False, True):
                    r = h.prepare(xml)
                    if not check(r.rc == 0, "%s: prepare again" % name, r.why()):
                        return
                    alive = kill_at(h, xml, [vm, "release", "end", "-"], "<domain/>", s, proceed)
                    r = h.release(vm)
                    now = h.snap()
                    check(alive and r.rc == 0 and now == before and h.journals() == [],
                          "%s: release killed during %s <- %r (write %s), then release again: as before" %
                          (name, s["path"].rsplit("/", 1)[-1], s["value"].strip(),
                           "completes" if proceed else "fails"), diff(before, now) + "\n" + r.why())
                    if now != before:
                        return


def wait_write(h, suffix, timeout=30):
    """Wait (with a deadline) until the emulator has answered a held write whose path ends in
    @suffix: a hanging write is logged when it finishes. Returns its log record, or None."""
    try:
        return h.emu.wait_for(lambda w: "event" not in w and w["path"].endswith(suffix) and w.get("fault") == "hang",
                              timeout=timeout, what="the end of a held write to ..." + suffix)
    except TimeoutError:
        return None


def quarantined(h):
    d = os.path.join(h.state, "quarantine")
    return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".json")) if os.path.isdir(d) else []


def case_deadline():
    """An unbind still hanging after its deadline and one more: the hook fails at the deadline,
    keeps the device's entry in the journal (the late write may still land) and quarantines it;
    once the write is over, reconcile puts it back, and it is handed out again only after an
    operator cleared the quarantine."""
    with Host("dgx2-v100-nvswitch", cfg={"state_change": {"write_timeout_ms": 1000}}) as h:
        xml = h.transform(domain_xml("25-dumpxml-request-numa-require-v100.xml",
                                     subst={'numa="require"': 'numa="any" count="3"'}))
        vm = domain_name(xml)
        before = h.snap()
        # the kernel holds the device while a write to it hangs: the hang ends (failing) only
        # when the test releases it, after the hook's 1 s deadline and its 1 s wait for the
        # late write, however slow the machine
        since = len(h.emu.log())
        h.emu.control({"hang": [{"path": "bus/pci/drivers/nvidia/unbind", "seconds": "forever", "id": "u",
                                 "errno": "EIO", "lock": True}]})
        r = h.prepare(xml)
        held = h.emu.log(since)
        check(r.rc == 1 and r.one_line() and "deadline" in r.err and vm in r.err and r.elapsed < 15,
              "a hanging unbind fails prepare at its deadline, one line naming the domain and the step", r.why())
        check(any(e.get("event") == "hang" for e in held) and
              not any("event" not in e and e.get("fault") == "hang" for e in held),
              "... while that unbind still hangs (emulator log)", held)
        m = re.search(r"0000:[0-9a-f]{2}:00\.0", r.err)
        check(m is not None, "... and the device", r.err)
        gpu = m.group(0) if m else "?"
        check(h.journals() == [vm + ".journal"] and quarantined(h) == [gpu] and "quarantined" in r.err,
              "... keeps its entry in the journal and quarantines it (the unbind may still land)",
              "%s %s\n%s" % (h.journals(), quarantined(h), r.err))
        h.emu.control({"release": ["u"]})
        check(wait_write(h, "nvidia/unbind") is not None, "the hanging unbind ends (emulator log)")
        h.emu.control({})
        r = h.reconcile()
        now = h.snap()
        check(r.rc == 0 and now == before and h.journals() == [],
              "reconcile, once the write is over, leaves every device as before", diff(before, now) + r.why())
        n0 = len(h.emu.writes())
        r = h.prepare(xml)
        check(r.rc == 1 and r.one_line() and "quarantined" in r.err and gpu in r.err and len(h.emu.writes()) == n0,
              "a quarantined GPU is refused at prepare, nothing written", r.why())
        os.unlink(os.path.join(h.state, "quarantine", gpu + ".json"))
        r = h.prepare(xml)
        check(r.rc == 0, "after the operator cleared the quarantine the next prepare works", r.why())
        r = h.release(vm)
        check(r.rc == 0 and h.snap() == before, "and its release restores everything", r.why())
        # a hanging drivers_probe, cut at prepare, the same way
        h.emu.control({"hang": [{"path": "bus/pci/drivers_probe", "seconds": "forever", "id": "p", "errno": "EIO",
                                 "times": 1}]})
        n0 = len(h.emu.writes())
        r = h.prepare(xml)
        check(r.rc == 1 and "drivers_probe" in r.err and "deadline" in r.err, "a hanging drivers_probe is cut too",
              r.why())
        h.emu.control({"release": ["p"]})
        check(wait_write(h, "drivers_probe") is not None, "the hanging probe ends (emulator log)")
        h.emu.control({})
        r = h.release(vm)
        check(h.snap() == before and h.journals() == [], "... and rolled back", diff(before, h.snap()) + r.why())


def case_budget():
    """prepare has a deadline of its own (state_change.prepare_timeout_ms): devices that are each
    slow but within their write deadline cannot hold libvirtd past it; what was done is undone."""
    with Host("dgx2-v100-nvswitch", cfg={"state_change": {"write_timeout_ms": 2000, "prepare_timeout_ms": 1000}}) as h:
        xml = h.transform(domain_xml("25-dumpxml-request-numa-require-v100.xml",
                                     subst={'numa="require"': 'numa="any" count="3"'}))
        before = h.snap()
        h.emu.control({"hang": [{"path": "bus/pci/drivers/nvidia/unbind", "seconds": 1.2}]})
        r = h.prepare(xml)
        check(r.rc == 1 and r.one_line() and "prepare_timeout_ms" in r.err and re.search(r"[0-2] of 3 devices", r.err),
              "no GPU is begun past the deadline: exit 1, one line", r.why())
        h.emu.control({})
        check(h.snap() == before and h.journals() == [], "everything done is undone", diff(before, h.snap()))


def case_stuck():
    """An unbind that never returns while the device's lock is held (the kernel's device_lock,
    modelled by the emulator): prepare fails, keeps the entry and quarantines the GPU; a release
    meanwhile changes nothing it cannot vouch for; once the unbind finally lands, reconcile puts
    the GPU back on nvidia, and the quarantine stays for the operator."""
    with Host("consumer-rtx3080", cfg={"state_change": {"write_timeout_ms": 1000}}) as h:
        xml = h.transform(rtx3080(h))
        vm = domain_name(xml)
        before = h.snap()
        h.emu.control({"hang": [{"path": "bus/pci/drivers/nvidia/unbind", "seconds": "forever", "id": "u",
                                 "then": "complete", "lock": True}]})
        r = h.prepare(xml)
        check(r.rc == 1 and r.one_line() and "0000:05:00.0" in r.err and "quarantined" in r.err,
              "prepare fails naming the GPU, and says it is quarantined", r.why())
        check(h.journals() == [vm + ".journal"] and quarantined(h) == ["0000:05:00.0"],
              "the entry is kept, the GPU quarantined", "%s %s" % (h.journals(), quarantined(h)))
        r = h.release(vm)
        check(r.rc == 1 and r.one_line() and h.journals() == [vm + ".journal"],
              "a release while the unbind still hangs keeps the entry (exit 1, one line)", r.why())
        h.emu.control({"release": ["u"]})
        h.emu.wait_write("bus/pci/drivers/nvidia/unbind", result="ok", timeout=20)
        r = h.reconcile()
        check(r.rc == 0 and h.snap() == before and h.journals() == [],
              "once it landed, reconcile puts the GPU back on nvidia", diff(before, h.snap()) + r.why())
        check(quarantined(h) == ["0000:05:00.0"], "the quarantine stays until an operator clears it")


def writer_abandoned(p, timeout=60):
    """Wait until the hook @p (a Popen) has given up on a write at its deadline: it SIGKILLs its
    sysfs writer child, which stays, SIGKILL pending, inside the write the emulator holds
    (sysfsemu.py pid_alive). Returns that child's pid, or None at @timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and p.poll() is None:
        try:
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        for k in kids:
            try:
                with open("/proc/%d/status" % k) as f:
                    st = dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)
                pending = int(st.get("SigPnd", "0"), 16) | int(st.get("ShdPnd", "0"), 16)
            except (OSError, ValueError):
                continue
            if pending & (1 << (signal.SIGKILL - 1)):
                return k
        time.sleep(0.01)
    return None


def case_late():
    """An unbind that lands after its deadline: prepare waits for the late write before it rolls
    back, so the GPU ends on its own driver, not driverless; a later domain's start and stop
    leave it there too. The unbind is held until the hook gave up on it (it killed its writer)
    and then lands at once: inside the hook's wait for late writes (write_timeout_ms again),
    however slow the machine."""
    with Host("consumer-rtx3080", cfg={"state_change": {"write_timeout_ms": 3000}}) as h:
        xml = h.transform(rtx3080(h))
        vm = domain_name(xml)
        before = h.snap()
        since = len(h.emu.log())
        h.emu.control({"hang": [{"path": "bus/pci/drivers/nvidia/unbind", "seconds": "forever", "id": "late",
                                 "times": 1}]})
        t0 = time.monotonic()
        p = h.spawn([vm, "prepare", "begin", "-"], xml)
        h.emu.wait_write("bus/pci/drivers/nvidia/unbind", event="hang", since=since, timeout=60)
        gave_up = writer_abandoned(p)
        h.emu.control({"release": ["late"]})
        err = p.stderr.read()           # to its end: the hook and its writer are gone
        out = p.stdout.read()
        p.wait()
        p.stdout.close()
        p.stderr.close()
        r = Result(p.returncode, out, err, time.monotonic() - t0)
        check(gave_up is not None, "the hook gives up on the hanging unbind at its deadline (kills its writer)",
              r.why())
        check(r.rc == 1 and r.one_line() and "0000:05:00.0" in r.err and "deadline" in r.err,
              "prepare fails at the deadline, one line naming the GPU", r.why())
        w = wait_write(h, "nvidia/unbind")
        check(w is not None and w["result"] == "ok" and w.get("released"), "the late unbind landed (emulator log)", w)
        now = h.snap()
        check(now == before and h.journals() == [] and quarantined(h) == [],
              "after the late unbind the GPU is back on nvidia, journal gone, nothing quarantined", diff(before, now))
        h.emu.control({})
        xml2 = h.transform(set_domain(rtx3080(h), "i-2-77-VM", "00000000-0000-4000-8000-000000000077"))
        r = h.prepare(xml2)
        check(r.rc == 0, "the next domain's prepare works", r.why())
        with open(os.path.join(h.state, "journal", "i-2-77-VM.journal")) as f:
            drivers = [json.loads(l).get("driver") for l in f][1:]
        check("" not in drivers and "nvidia" in drivers, "its journal records the GPU's own driver", drivers)
        r = h.release("i-2-77-VM")
        check(r.rc == 0 and h.snap() == before, "and its release puts the GPU back on nvidia", diff(before, h.snap()))


def case_parallel():
    """8 domains of 3 GPUs each starting and stopping at once over a pool of 16, twice each: no
    GPU is ever given to two of them, and every one ends on its own driver. (The contention is in
    the first round, 24 GPUs asked for at once; each more round costs about 6 s of CPU on the
    DGX-2 host, tests/README.md "Time".)"""
    with Host("dgx2-v100-nvswitch") as h:
        before = h.snap()
        base = domain_xml("25-dumpxml-request-numa-require-v100.xml", subst={'numa="require"': 'numa="any" count="3"'})
        lock = threading.Lock()
        holding = {}                    # vm -> set of GPUs between a successful prepare and its release
        problems = []
        counts = {"prepared": 0, "refused": 0, "cycles": 0}

        def worker(i):
            rnd = random.Random(i)
            vm = "i-2-%d-VM" % (900 + i)
            for _ in range(2):
                xml = set_domain(base, vm, "00000000-0000-4000-8000-%012d" % (900 + i))
                try:
                    xml = h.transform(xml)
                except RuntimeError as e:
                    with lock:
                        counts["refused"] += 1
                    time.sleep(rnd.random() * 0.2)
                    continue
                gpus = {d["address"] for d in record(xml)}
                r = h.prepare(xml)
                if r.rc != 0:
                    with lock:
                        counts["refused"] += 1
                        if "in use" not in r.err and "reserved" not in r.err:
                            problems.append("%s prepare: %s" % (vm, r.err.strip()))
                    h.release(vm)
                    continue
                with lock:
                    for other, g in holding.items():
                        if g & gpus:
                            problems.append("%s and %s both hold %s" % (vm, other, sorted(g & gpus)))
                    for g in gpus:
                        if driver_of(h, g) != "vfio-pci":
                            problems.append("%s: %s not on vfio-pci after prepare" % (vm, g))
                    holding[vm] = gpus
                    counts["prepared"] += 1
                # it runs: libvirt's status file says so, and its QEMU holds the VFIO groups
                status = os.path.join(h.empty, vm + ".xml")
                with open(status + ".tmp", "w") as f:
                    f.write("<domstatus state='running' reason='booted' pid='1'>%s</domstatus>" %
                            re.sub(r"<\?xml[^>]*\?>", "", xml))
                os.rename(status + ".tmp", status)
                nodes = " ".join("%d<'%s'" % (3 + k, os.path.join(h.emu.dev_dir, "vfio", group_of(h, g)))
                                 for k, g in enumerate(sorted(gpus)))
                qemu = subprocess.Popen(["sh", "-c", "exec %s sleep 60" % nodes])
                h.hook([vm, "started", "begin", "-"], stdin=xml)
                time.sleep(rnd.random() * 0.3)
                with lock:
                    del holding[vm]
                qemu.kill()
                qemu.wait()
                os.unlink(status)
                r = h.release(vm)
                with lock:
                    counts["cycles"] += 1
                    if r.rc != 0:
                        problems.append("%s release: %s" % (vm, r.err.strip()))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(problems == [], "8 parallel domains, %d prepares, %d refused, %.1f s: no GPU given twice, no failure" %
              (counts["prepared"], counts["refused"], time.monotonic() - t0), "\n".join(problems[:20]))
        check(counts["prepared"] >= 8 and counts["cycles"] == counts["prepared"],
              "starts went through (%d) and each was released" % counts["prepared"])
        now = h.snap()
        check(now == before and h.journals() == [] and h.reservations() == [],
              "afterwards every GPU is on its driver again, no journal, no reservation", diff(before, now))


def case_independent():
    """Starts of different domains do not wait for each other: while a write to one domain's
    GPU hangs in the kernel, another domain's prepare on other GPUs goes through. (The hang is
    on the GPU's own driver_override: FUSE serializes writes to one file, such as the driver's
    unbind, which the kernel does not.) The order of events proves it, not the time: A's write
    is held until B's prepare is over, so a B that waited for A could not finish before it
    (it would fail at its lock timeout instead)."""
    with Host("dgx2-v100-nvswitch", cfg={"state_change": {"write_timeout_ms": 60000}}) as h:
        base = domain_xml("25-dumpxml-request-numa-require-v100.xml", subst={'numa="require"': 'numa="any" count="2"'})
        xa = h.transform(set_domain(base, "i-2-601-VM", "00000000-0000-4000-8000-000000000601"))
        xb = h.transform(set_domain(base, "i-2-602-VM", "00000000-0000-4000-8000-000000000602"))
        before = h.snap()
        a_gpu = next(d["address"] for d in record(xa) if before[d["address"]]["driver"] == "nvidia")
        a_path = "bus/pci/devices/%s/driver_override" % a_gpu
        since = len(h.emu.log())
        h.emu.control({"hang": [{"path": a_path, "seconds": "forever", "id": "a"}]})
        pa = h.spawn(["i-2-601-VM", "prepare", "begin", "-"], xa)
        h.emu.wait_write(a_path, event="hang", since=since, timeout=60)
        r = h.prepare(xb)
        a_running = pa.poll() is None
        a_done = [w for w in h.emu.log(since) if "event" not in w and w.get("fault") == "hang"]
        check(r.rc == 0 and a_running and a_done == [],
              "B prepares (%.2f s) while a write to A's %s hangs, A still at it (no lock held across a write)" %
              (r.elapsed, a_gpu), r.why())
        h.emu.control({"release": ["a"]})
        pa.wait()
        check(pa.returncode == 0, "A's prepare finishes once its write returns", pa.stderr.read())
        pa.stdout.close()
        pa.stderr.close()
        h.emu.control({})
        for vm in ("i-2-601-VM", "i-2-602-VM"):
            h.release(vm)
        check(h.snap() == before, "both released")


def case_events():
    """One structured log record per step: JSON with vm, device, old, new, duration, errno."""
    with Host("consumer-rtx3080") as h:
        xml = h.transform(rtx3080(h))
        vm = domain_name(xml)
        r = h.prepare(xml, extra=["-v"])
        ev = [json.loads(l.split(": ", 1)[1]) for l in r.err.splitlines() if ": {\"event\"" in l]
        binds = [e for e in ev if e["event"] == "bind"]
        check(r.rc == 0 and sorted(e["device"] for e in binds) == ["0000:05:00.0", "0000:05:00.1"] and
              all(e["vm"] == vm and e["new"] == "vfio-pci" and e["errno"] == 0 and e["duration_ms"] >= 0 for e in binds) and
              {e["old"] for e in binds} == {"nvidia", "snd_hda_intel"},
              "prepare logs a bind event per function (vm, device, old and new driver, duration, errno)", r.err)
        r = h.release(vm, extra=["-v"])
        ev = [json.loads(l.split(": ", 1)[1]) for l in r.err.splitlines() if ": {\"event\"" in l]
        check([e["event"] for e in ev] == ["unbind", "unbind", "release"] and
              {e["new"] for e in ev if e["event"] == "unbind"} == {"nvidia", "snd_hda_intel"},
              "release logs an unbind event per function, then the release", r.err)
        h.emu.control({"fail": [{"path": "bus/pci/drivers_probe", "value": "0000:05:00.1", "errno": "EBUSY", "times": 1}]})
        r = h.prepare(xml, extra=["-v"])
        ev = [json.loads(l.split(": ", 1)[1]) for l in r.err.splitlines() if ": {\"event\"" in l]
        failed = [e for e in ev if e["errno"] != 0]
        check(r.rc == 1 and any(e["event"] == "bind" and e["errno"] == 16 and "error" in e for e in failed) and
              ev[-1]["event"] == "rollback" and ev[-1]["errno"] == 0,
              "a failed step logs its errno and cause, then the rollback", r.err)
        # without -v: nothing on stderr (the agent merges it into what it parses); events go to syslog
        h.emu.control({})
        r = h.prepare(xml)
        check(r.rc == 0 and r.err == "", "without -v nothing is printed")
        h.release(vm)


def case_grace():
    """On an nvidia parent the hook writes remove at once and retries EBUSY (the driver still
    removing it) until state_change.nvidia_mdev_grace_ms: an uncontended release takes one write,
    not the grace; an mdev still busy at the deadline stays in the journal for reconcile."""
    with Host("hpe-dl380g9-a2-vgpu", cfg={"state_change": {"nvidia_mdev_grace_ms": 30000}}) as h:
        xml = h.transform(a2_mdev(h))
        vm = domain_name(xml)
        before = h.snap()
        r = h.prepare(xml)
        with open(os.path.join(h.state, "journal", vm + ".journal")) as f:
            made = [json.loads(l) for l in f][1:]
        check(r.rc == 0 and len(made) == 1 and made[0]["op"] == "mdev", "prepared: one mdev created", r.why())
        n0 = len(h.emu.writes())
        r = h.release(vm)
        # the old hook waited the whole grace (30 s) before its first write
        check(r.rc == 0 and r.elapsed < 15 and [p for p, v, res in h.write_seq(n0)] == ["remove"] and
              h.snap() == before, "uncontended: one remove, at once (%.2f s, grace 30 s)" % r.elapsed, r.why())

        # the driver is still at it: EBUSY twice, then the remove goes through
        r = h.prepare(xml)
        uuid = made[0]["uuid"]
        h.emu.control({"fail": [{"path": "bus/mdev/devices/*/remove", "errno": "EBUSY", "times": 2}]})
        n0 = len(h.emu.writes())
        r = h.release(vm)
        seq = h.write_seq(n0)
        check(r.rc == 0 and [(p, res) for p, v, res in seq] == [("remove", "EBUSY"), ("remove", "EBUSY"),
                                                                 ("remove", "ok")] and h.snap() == before,
              "EBUSY twice: retried, removed, everything as before", r.why() + "\n" + str(seq))

        # busy past the grace: the release fails naming the mdev, the entry stays for reconcile
        h.config({"state_change": {"nvidia_mdev_grace_ms": 300}})
        r = h.prepare(xml)
        h.emu.control({"fail": [{"path": "bus/mdev/devices/*/remove", "errno": "EBUSY"}]})
        r = h.release(vm)
        check(r.rc == 1 and r.one_line() and uuid in r.err and h.journals() == [vm + ".journal"],
              "busy past the grace: exit 1, one line naming the mdev, journal kept", r.why())
        h.emu.control({})
        r = h.reconcile()
        check(r.rc == 0 and h.journals() == [] and h.snap() == before, "reconcile removes it once it is free",
              r.why() + diff(before, h.snap()))


def case_reconnect():
    """libvirtd restarted while the domain runs: reconnect re-adopts it (reservation running,
    journal kept), and the later release still puts everything back."""
    with Host("dgx2-v100-nvswitch") as h:
        xml = h.transform(domain_xml("25-dumpxml-request-numa-require-v100.xml",
                                     subst={'numa="require"': 'numa="any" count="3"'}))
        vm = domain_name(xml)
        before = h.snap()
        r = h.prepare(xml)
        journal = open(os.path.join(h.state, "journal", vm + ".journal")).read()
        r = h.hook([vm, "reconnect", "begin", "-"], stdin=xml)
        with open(os.path.join(h.state, "reservations", vm + ".json")) as f:
            state = json.load(f)["state"]
        check(r.rc == 0 and r.out == "" and r.err == "" and state == "running" and
              open(os.path.join(h.state, "journal", vm + ".journal")).read() == journal,
              "reconnect begin: exit 0, silent, reservation running, journal untouched", r.why())
        r = h.reconcile()
        check(r.rc == 0 and h.journals() == [], "reconcile releases it once it no longer runs (no status file here)",
              r.why())
        check(h.snap() == before, "... back as before", diff(before, h.snap()))


def holding(path):
    """A process that holds @path open (as fd 3), once it does: it says so on its stdout."""
    p = subprocess.Popen(["sh", "-c", "exec 3<'%s' && echo open && exec sleep 60" % path], stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    p.stdout.close()
    if line != "open\n":
        p.kill()
        p.wait()
        raise RuntimeError("cannot hold %s open" % path)
    return p


def case_holders():
    """A process holding the GPU's nodes, or its group's vfio node, refuses the start, named."""
    with Host("dgx2-v100-nvswitch") as h:
        xml = h.transform(domain_xml("25-dumpxml-request-numa-require-v100.xml",
                                     subst={'numa="require"': 'numa="any" count="3"'}))
        vm = domain_name(xml)
        before = h.snap()
        node = os.path.join(h.emu.dev_dir, "nvidia0")
        with open(node, "w"):
            pass
        holder = holding(node)
        try:
            r = h.prepare(xml)
            check(r.rc == 1 and r.one_line() and ("pid %d (sleep)" % holder.pid) in r.err and "nvidia0" in r.err,
                  "a process holding /dev/nvidiaN refuses the start, naming pid and program", r.why())
            check(h.snap() == before and h.journals() == [], "... nothing changed", diff(before, h.snap()))
        finally:
            holder.kill()
            holder.wait()
        os.unlink(node)
        r = h.prepare(xml)
        check(r.rc == 0, "without the holder the start works", r.why())
        # while prepared, a process (another QEMU) holds the vfio group: release keeps the device
        gpu = next(d["address"] for d in record(xml) if before[d["address"]]["driver"] == "nvidia")
        group = os.path.basename(os.readlink(os.path.join(h.emu.backing, "bus/pci/devices", gpu, "iommu_group")))
        vnode = os.path.join(h.emu.dev_dir, "vfio", group)
        qemu = holding(vnode)
        try:
            r = h.release(vm)
            check(r.rc == 1 and r.one_line() and "still in use" in r.err and gpu in r.err,
                  "release leaves a device whose /dev/vfio group a process holds, exit 1", r.why())
            check(driver_of(h, gpu) == "vfio-pci" and h.journals() == [vm + ".journal"],
                  "... it stays on vfio-pci, its entry kept in the journal")
        finally:
            qemu.kill()
            qemu.wait()
        r = h.reconcile()
        check(r.rc == 0 and h.snap() == before and h.journals() == [],
              "reconcile finishes the release once the holder is gone", diff(before, h.snap()) + r.why())


def case_group():
    """A GPU whose IOMMU group holds a foreign device (the GT 710 and the chipset NIC) is
    refused by the hook itself, whatever its XML says."""
    with Host("consumer-rtx3080") as h:
        before = h.snap()
        xml = domain_xml("20-dumpxml-request-passthrough-rtx3080.xml", name="i-2-77-VM")
        rec = ('<gpuhooks:allocation version="1"><gpuhooks:device kind="pci" address="0000:04:00.0" managed="no" '
               'request="0"><gpuhooks:companion address="0000:04:00.1"/></gpuhooks:device></gpuhooks:allocation>')
        xml = xml.replace("</gpuhooks:gpu>", rec + "</gpuhooks:gpu>")
        hd = ""
        for f in ("0", "1"):
            hd += ("<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x04' "
                   "slot='0x00' function='0x%s'/></source></hostdev>" % f)
        xml = xml.replace("</devices>", hd + "</devices>", 1)
        r = h.prepare(xml)
        check(r.rc == 1 and r.one_line() and "0000:03:00.0" in r.err and "IOMMU group" in r.err,
              "the GT 710 is refused: its group also holds the NIC 0000:03:00.0", r.why())
        check(h.snap() == before and h.journals() == [], "... nothing changed")
        # and a record whose hostdev is missing from the XML
        xml2 = xml.replace(hd, "")
        r = h.prepare(xml2)
        check(r.rc == 1 and r.one_line() and "no hostdev" in r.err, "a record device without its hostdev is refused",
              r.why())


def case_takeover():
    """A domain that stopped without its release finishing: the next domain given its GPU
    takes the journal entries over; the stale release then leaves the GPU alone."""
    with Host("dgx2-v100-nvswitch") as h:
        before = h.snap()
        base = domain_xml("25-dumpxml-request-numa-require-v100.xml", subst={'numa="require"': 'numa="any" count="3"'})
        xa = h.transform(set_domain(base, "i-2-501-VM", "00000000-0000-4000-8000-000000000501"))
        r = h.prepare(xa)
        check(r.rc == 0, "A prepared", r.why())
        gpus = [d["address"] for d in record(xa)]
        # A's QEMU died with the host's libvirtd unaware; its reservation is gone (reclaimed)
        os.unlink(os.path.join(h.state, "reservations", "i-2-501-VM.json"))
        xb = h.transform(set_domain(base, "i-2-502-VM", "00000000-0000-4000-8000-000000000502"))
        check(sorted(d["address"] for d in record(xb)) == sorted(gpus), "B is given the same GPUs", record(xb))
        r = h.prepare(xb)
        check(r.rc == 0, "B prepares them (A's journal is stale: taken over)", r.why())
        with open(os.path.join(h.state, "journal", "i-2-502-VM.journal")) as f:
            jb = [json.loads(l) for l in f][1:]
        nv = [e for e in jb if e["op"] == "driver" and e["driver"] == "nvidia"]
        check(len(nv) == len([g for g in gpus if before[g]["driver"] == "nvidia"]),
              "B's journal holds the drivers from before A (nvidia), not vfio-pci", jb)
        check("i-2-501-VM.journal" not in h.journals(), "A's journal lost its entries", h.journals())
        r = h.release("i-2-501-VM")
        check(r.rc == 0 and all(driver_of(h, g) == "vfio-pci" for g in gpus),
              "A's late release touches none of B's GPUs", r.why())
        r = h.release("i-2-502-VM")
        check(r.rc == 0 and h.snap() == before, "B's release puts them back as they were before A", diff(before, h.snap()))
        # a live owner: A prepared and reserved; B with a record naming A's GPU is refused
        xa = h.transform(set_domain(base, "i-2-501-VM", "00000000-0000-4000-8000-000000000501"))
        h.prepare(xa)
        xb2 = set_domain(xa, "i-2-503-VM", "00000000-0000-4000-8000-000000000503")
        r = h.prepare(xb2)
        check(r.rc == 1 and r.one_line() and "i-2-501-VM" in r.err, "a GPU another running domain holds is refused",
              r.why())
        h.release("i-2-501-VM")
        check(h.snap() == before, "all released")


def case_sriov():
    """VFs gone (as after a reboot): enabled at prepare when allowed, disabled at release."""
    with Host("l40s-vendor-vgpu", cfg={"state_change": {"enable_sriov": True}}) as h:
        xml = h.transform(l40s_vgpu(h))
        vm = domain_name(xml)
        vf = next(d for d in record(xml) if d["kind"] == "vendor-vgpu")
        pf = vf["parent"]
        total = open(os.path.join(h.emu.backing, "bus/pci/devices", pf, "sriov_numvfs")).read().strip()
        check(h.emu.write("bus/pci/devices/%s/sriov_numvfs" % pf, "0\n") == 0 and
              not os.path.exists(os.path.join(h.emu.backing, "bus/pci/devices", vf["address"])),
              "the PF's VFs are disabled (%s had %s)" % (pf, total))
        before = h.snap()
        h.config({"state_change": {"enable_sriov": False}})
        r = h.prepare(xml)
        check(r.rc == 1 and r.one_line() and "enable_sriov" in r.err, "with enable_sriov false the start is refused",
              r.why())
        check(h.snap() == before, "... nothing changed")
        h.config({"state_change": {"enable_sriov": True}})
        r = h.prepare(xml)
        now = h.snap()
        check(r.rc == 0 and now[pf].get("sriov_numvfs") not in ("0", None) and
              now[vf["address"]].get("nvidia/current_vgpu_type") == vf["vgpu-type"],
              "prepare enables the VFs and sets the vGPU type on %s" % vf["address"], r.why())
        r = h.release(vm)
        now = h.snap()
        check(r.rc == 0 and now == before, "release clears the type and disables the VFs again", diff(before, now) + "\n" + r.why())


def case_cloudstack():
    """The agent's calls: onStart marks running; onStop releases only a domain that stopped."""
    with Host("dgx2-v100-nvswitch", cfg={"state_change": {"on_start_method": "vmStarted",
                                                          "on_stop_method": "vmStopped"}}) as h:
        xml = h.transform(domain_xml("25-dumpxml-request-numa-require-v100.xml",
                                     subst={'numa="require"': 'numa="any" count="3"'}))
        vm = domain_name(xml)
        before = h.snap()
        r = h.prepare(xml)
        check(r.rc == 0, "prepared", r.why())
        r = h.hook(["vmStarted", vm])
        with open(os.path.join(h.state, "reservations", vm + ".json")) as f:
            check(r.rc == 0 and r.out == "" and r.err == "" and json.load(f)["state"] == "running",
                  "METHOD VMNAME with the configured start method marks the reservation running", r.why())
        r = h.hook(["onStart", vm])
        check(r.rc == 2 and r.one_line() and "vmStarted" in r.err, "the default name is not accepted once renamed",
              r.why())
        # the agent's onStop while libvirt's status file says the domain still runs
        run = os.path.join(h.tmp, "run")
        os.mkdir(run)
        with open(os.path.join(run, vm + ".xml"), "w") as f:
            f.write("<domstatus state='running' reason='booted' pid='4242'>%s</domstatus>" %
                    re.sub(r"<\?xml[^>]*\?>", "", xml))
        r = h.hook(["--no-libvirt", "--domain-xml-dir", run, "vmStopped", vm])
        check(r.rc == 0 and h.journals() == [vm + ".journal"] and driver_of(h, record(xml)[1]["address"]) == "vfio-pci",
              "onStop of a domain that still runs releases nothing", r.why())
        os.unlink(os.path.join(run, vm + ".xml"))
        r = h.hook(["--no-libvirt", "--domain-xml-dir", run, "vmStopped", vm])
        check(r.rc == 0 and r.out == "" and h.snap() == before and h.journals() == [] and h.reservations() == [],
              "onStop of a stopped domain releases its devices and its running reservation", diff(before, h.snap()))
        r = h.hook(["--no-libvirt", "--domain-xml-dir", os.path.join(h.tmp, "nowhere"), "vmStopped", vm])
        check(r.rc == 0 and r.err == "", "onStop of a domain holding nothing: exit 0 without asking anyone", r.why())
        r = h.prepare(xml)
        r = h.hook(["--no-libvirt", "--domain-xml-dir", os.path.join(h.tmp, "nowhere"), "vmStopped", vm])
        check(r.rc == 1 and r.one_line() and "cannot tell" in r.err and h.journals() == [vm + ".journal"],
              "onStop when nothing can say whether the domain runs: exit 1, nothing released", r.why())
        h.release(vm)
        check(h.snap() == before, "released by libvirt's release end")


def libvirt_address(bdf):
    d, b, sf = bdf.split(":")
    sl, fn = sf.split(".")
    return "domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'" % (d, b, sl, fn)


def retarget(xml, old, new, record_attrs=None):
    """A forged document: the hostdev and the record moved from function @old to @new."""
    xml = re.sub(r"domain=.0x%s. bus=.0x%s. slot=.0x%s. function=.0x%s." % tuple(re.split(r"[:.]", old)),
                 libvirt_address(new), xml)
    return xml.replace('address="%s"' % old, 'address="%s"' % new)


def case_stranded():
    """reconcile finds a GPU function left mid-change by something that kept no journal (its
    driver_override names vfio-pci, it has no driver) and quarantines it; a GPU on its own
    driver, or one already accounted for, is left alone; --check fails on a quarantined GPU."""
    with Host("consumer-rtx3080") as h:
        to_host_drivers(h, ["0000:05:00.0", "0000:05:00.1"])
        r = h.reconcile()
        check(r.rc == 0 and quarantined(h) == [], "a host on its own drivers: nothing quarantined", r.why())
        h.emu.write("bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci\n")
        h.emu.write("bus/pci/drivers/nvidia/unbind", "0000:05:00.0")
        r = h.hook(["--no-libvirt", "--domain-xml-dir", h.empty, "--min-age", "0", "--dry-run", "reconcile"])
        check(r.rc == 0 and "0000:05:00.0" in r.out and quarantined(h) == [],
              "reconcile --dry-run names the stranded GPU and writes nothing", r.why())
        r = h.reconcile()
        check(r.rc == 0 and quarantined(h) == ["0000:05:00.0"], "reconcile quarantines it", r.why())
        r = subprocess.run([ARGS.discovery, "--sysfs-root", h.emu.root, "--state-dir", h.state, "--no-libvirt",
                            "--domain-xml-dir", h.empty, "--config", h.cfg_path, "--check"],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        check(r.returncode == 1 and re.search(r"^fail\s+quarantine\s+0000:05:00\.0", r.stdout, re.M) is not None,
              "gpudiscovery --check fails, naming the quarantined GPU", r.stdout + r.stderr)
        r = subprocess.run([ARGS.discovery, "--sysfs-root", h.emu.root, "--state-dir", h.state, "--no-libvirt",
                            "--domain-xml-dir", h.empty, "--config", h.cfg_path],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        q = [x for g in json.loads(r.stdout)["gpus"] for x in g["gpuhooks"]["quarantined"]] if r.returncode == 0 else []
        check(len(q) == 1 and q[0]["address"] == "0000:05:00.0" and "mid-change" in q[0]["reason"],
              "the inventory shows it under the GPU's gpuhooks.quarantined", r.stdout[-500:] + r.stderr)
        try:
            h.transform(domain_xml("20-dumpxml-request-passthrough-rtx3080.xml"))
            refused = False
        except RuntimeError as e:
            refused = True
        check(refused, "the transformer does not hand it out")


def case_occupancy():
    """CloudStack's own GPU hostdev without our record (the transformer refused the domain and
    the agent started it anyway) is checked against the other domains' reservations: libvirt
    would bind a GPU reserved for another domain."""
    with Host("dgx2-v100-nvswitch") as h:
        a = domain_xml("11-agent-cs421-pci-v100.xml", name="i-2-50-VM", uuid="00000000-0000-4000-8000-000000000050")
        b = domain_xml("11-agent-cs421-pci-v100.xml", name="i-2-51-VM", uuid="00000000-0000-4000-8000-000000000051")
        gpu = "0000:36:00.0"
        xa = h.transform(a)
        check(gpu in [d["address"] for d in record(xa)], "A: the transformer kept CloudStack's hostdev of %s" % gpu)
        try:
            h.transform(b)
            refused = False
        except RuntimeError:
            refused = True
        check(refused, "B: the transformer refuses the GPU reserved for A")
        n0 = len(h.emu.writes())
        r = h.prepare(b)
        check(r.rc == 1 and r.one_line() and gpu in r.err and "i-2-50-VM" in r.err and len(h.emu.writes()) == n0,
              "B started with its original XML (no record): prepare refuses, naming the GPU and A", r.why())
        r = h.prepare(xa)
        check(r.rc == 0, "A starts", r.why())
        r = h.prepare(b)
        check(r.rc == 1 and r.one_line() and gpu in r.err and "i-2-50-VM" in r.err,
              "while A runs, B is still refused", r.why())
        # a hostdev of something else than a GPU (the host bridge) is none of our business
        c = retarget(domain_xml("11-agent-cs421-pci-v100.xml", name="i-2-52-VM"), gpu, "0000:00:00.0")
        r = h.prepare(c)
        check(r.rc == 0 and r.err == "" and h.journals() == ["i-2-50-VM.journal"],
              "a domain whose hostdev is no GPU passes untouched", r.why())
        r = h.release("i-2-50-VM")
        check(r.rc == 0, "A released", r.why())
        r = h.prepare(b)
        check(r.rc == 0 and r.err == "", "once A is gone, B (CloudStack's managed hostdev, no record) passes", r.why())


def case_record():
    """An allocation record is a claim to verify: a forged record for the NVSwitch, for a GPU
    whose VFs another domain uses, or for more devices than any domain has, is refused before
    anything is written or locked."""
    with Host("dgx2-v100-nvswitch") as h:
        xml = h.transform(domain_xml("11-agent-cs421-pci-v100.xml"))
        vm = domain_name(xml)
        gpu = "0000:36:00.0"
        nvswitch = "0000:61:00.0"
        forged = retarget(xml, gpu, nvswitch)
        check(nvswitch in [d["address"] for d in record(forged)], "forged: the record names the NVSwitch")
        n0 = len(h.emu.writes())
        r = h.prepare(forged)
        locks = os.listdir(os.path.join(h.state, "locks")) if os.path.isdir(os.path.join(h.state, "locks")) else []
        check(r.rc == 1 and r.one_line() and nvswitch in r.err and "not a GPU" in r.err and
              len(h.emu.writes()) == n0 and not any(nvswitch in l for l in locks) and driver_of(h, nvswitch) == "nvidia",
              "a record naming the NVSwitch: refused, nothing written, no lock file", r.why() + str(locks))
        res0 = open(os.path.join(h.state, "reservations", vm + ".json")).read()
        try:
            h.transform(forged)
            refused = False
        except RuntimeError as e:
            refused = nvswitch in str(e)
        check(refused and open(os.path.join(h.state, "reservations", vm + ".json")).read() == res0,
              "the transformer refuses the forged record too, the reservation unchanged")
        dev = re.search(r"<gpuhooks:device [^>]*/>|<gpuhooks:device .*?</gpuhooks:device>", xml, re.S).group(0)
        many = xml.replace(dev, dev * 257, 1)
        locks0 = sorted(os.listdir(os.path.join(h.state, "locks"))) if os.path.isdir(os.path.join(h.state, "locks")) else []
        r = h.prepare(many)
        locks1 = sorted(os.listdir(os.path.join(h.state, "locks"))) if os.path.isdir(os.path.join(h.state, "locks")) else []
        check(r.rc == 1 and r.one_line() and "256" in r.err and locks1 == locks0,
              "a record of 257 devices: refused, no lock file made", r.why() + str(locks1))
        try:
            h.transform(many)
            refused = False
        except RuntimeError:
            refused = True
        check(refused and h.reservations() in ([], [vm + ".json"]), "... by the transformer too, no reservation grown")
        r = h.prepare(xml)
        check(r.rc == 0, "the genuine record still starts", r.why())
        h.release(vm)
    with Host("l40s-vendor-vgpu") as h:
        xml = h.transform(l40s_vgpu(h))
        vm = domain_name(xml)
        rec = record(xml)[0]
        r = h.prepare(xml)
        check(r.rc == 0 and rec["kind"] == "vendor-vgpu", "A: a vGPU type set on VF %s" % rec["address"], r.why())
        pf = rec["parent"]
        forged = retarget(xml, rec["address"], pf)
        forged = re.sub(r'<gpuhooks:device kind="vendor-vgpu" address="%s"[^>]*/>' % re.escape(pf),
                        '<gpuhooks:device kind="pci" address="%s" managed="no" request="0"/>' % pf, forged)
        forged = set_domain(forged, "i-2-60-VM", "00000000-0000-4000-8000-000000000060")
        check('kind="pci" address="%s"' % pf in forged, "forged: B's record asks for the PF %s whole" % pf)
        n0 = len(h.emu.writes())
        r = h.prepare(forged)
        check(r.rc == 1 and r.one_line() and pf in r.err and len(h.emu.writes()) == n0 and driver_of(h, pf) == "nvidia",
              "B's record for the PF whose VF A uses: refused, the PF stays on nvidia", r.why())
        h.release(vm)


def case_lifecycle():
    """One CloudStack VM through the whole path, each tool called as its caller calls it:
    gpudiscovery shows the V100 free; the transformer, as the agent runs it (METHOD and the XML
    as one argument, settings from the environment), reserves it; the qemu hook's prepare
    (XML on stdin) binds it; gpudiscovery, with libvirt unreachable (a busy daemon), shows it
    used by the VM through the status file libvirt keeps; release puts it back and it is free
    again. A second VM asking for the same GPU fails at transform; a VM whose transform was
    skipped is refused at prepare."""
    with Host("dgx2-v100-nvswitch") as h:
        run_dir = os.path.join(h.tmp, "run-libvirt-qemu")
        etc_dir = os.path.join(h.tmp, "etc-libvirt-qemu")
        os.mkdir(run_dir)
        os.mkdir(etc_dir)
        gpu = "0000:36:00.0"
        env = {"GPUHOOKS_CONFIG": h.cfg_path, "GPUHOOKS_SYSFS_ROOT": h.emu.root, "GPUHOOKS_STATE_DIR": h.state,
               "GPUHOOKS_DEV_DIR": h.emu.dev_dir, "GPUHOOKS_DOMAIN_XML_DIRS": run_dir + ":" + etc_dir,
               "LIBVIRT_DEFAULT_URI": "qemu+unix:///system?socket=" + os.path.join(h.tmp, "no-libvirtd.sock")}

        def discover():
            p = subprocess.run([ARGS.discovery], capture_output=True, text=True, env=clean_env(env), timeout=60,
                               stdin=subprocess.DEVNULL)
            doc = json.loads(p.stdout) if p.returncode == 0 and p.stdout else {"gpus": []}
            g = [x for x in doc["gpus"] if x["gpuhooks"]["address"] == gpu]
            return p, (g[0]["full_passthrough"]["used_by_vm"], g[0]["driver"]) if g else (None, None)

        p, (used, drv) = discover()
        check(p.returncode == 0 and p.stderr == "" and used is None and drv == "nvidia",
              "gpudiscovery, as the agent runs it: %s free, on nvidia" % gpu, p.stderr + str((used, drv)))
        before = h.snap()

        xml = domain_xml("11-agent-cs421-pci-v100.xml")
        vm = domain_name(xml)
        t0 = time.monotonic()
        p = subprocess.run([ARGS.transformer, "transform", xml], capture_output=True, text=True, env=clean_env(env),
                           timeout=60, stdin=subprocess.DEVNULL)
        out = p.stdout
        check(p.returncode == 0 and p.stderr == "" and "<gpuhooks:allocation" in out and
              re.search(r"<hostdev mode=.subsystem. type=.pci. managed=.no.[ >]", out) is not None,
              "the transformer, as the agent runs it: the XML back with managed='no' and the allocation record "
              "(%.2f s)" % (time.monotonic() - t0), p.stderr + out[-1500:])

        other = set_domain(xml, "i-2-155-VM", "00000000-0000-4000-8000-000000000155")
        p = subprocess.run([ARGS.transformer, "transform", other], capture_output=True, text=True, env=clean_env(env),
                           timeout=60, stdin=subprocess.DEVNULL)
        check(p.returncode == 1 and p.stdout == "" and p.stderr.count("\n") == 1 and vm in p.stderr,
              "a second VM asking for the same GPU fails at transform, naming the holder", p.stderr)

        r = harness.run([ARGS.hook, vm, "prepare", "begin", "-"], stdin=out, text=True, env=clean_env(env),
                        timeout=120)
        check(r.rc == 0 and r.out == "" and r.err == "" and driver_of(h, gpu) == "vfio-pci",
              "the qemu hook's prepare (XML on stdin) binds %s to vfio-pci" % gpu, r.why())
        # libvirt starts the domain: its status file, then the started hook
        with open(os.path.join(run_dir, vm + ".xml"), "w") as f:
            f.write("<domstatus state='running' reason='booted' pid='4242'>\n%s</domstatus>\n" %
                    re.sub(r"<\?xml[^>]*\?>", "", out))
        subprocess.run([ARGS.hook, vm, "started", "begin", "-"], input=out, capture_output=True, text=True,
                       env=clean_env(env), timeout=60)
        p, (used, drv) = discover()
        check(p.returncode == 0 and used == vm and drv == "vfio-pci",
              "gpudiscovery (libvirt unreachable: its status files) shows %s used by %s, on vfio-pci" % (gpu, vm),
              p.stderr + str((used, drv)))

        # the VM stops: libvirt removes the status file and runs release
        os.unlink(os.path.join(run_dir, vm + ".xml"))
        r = harness.run([ARGS.hook, vm, "release", "end", "-"], stdin=out, text=True, env=clean_env(env),
                        timeout=120)
        p, (used, drv) = discover()
        check(r.rc == 0 and used is None and drv == "nvidia" and h.snap() == before and h.journals() == [],
              "release: %s free again, back on nvidia, every device as before" % gpu, r.why() + diff(before, h.snap()))

        # the agent's onStop after all that: nothing left to do
        r = harness.run([ARGS.hook, "onStop", vm], text=True, env=clean_env(env), timeout=60)
        check(r.rc == 0 and r.out == "" and r.err == "", "the agent's onStop afterwards: exit 0, silent", r.why())

        # a VM asking for GPUs whose transform was skipped (hook missing, or it failed)
        skipped = domain_xml("25-dumpxml-request-numa-require-v100.xml", name="i-2-156-VM")
        r = harness.run([ARGS.hook, "i-2-156-VM", "prepare", "begin", "-"], stdin=skipped, text=True,
                        env=clean_env(env), timeout=60)
        check(r.rc == 1 and r.one_line() and "transformer did not run" in r.err and h.snap() == before,
              "a VM whose transform was skipped is refused at prepare, nothing changed", r.why())


def transform_plain(tmp, state, xml, cfg):
    """The transformer on the protocol case's plain fixture tree: reserves, writes nothing else."""
    empty = os.path.join(tmp, "no-domains")
    os.makedirs(empty, exist_ok=True)
    p = subprocess.run([ARGS.transformer, "--config", cfg, "--no-libvirt", "--domain-xml-dir", empty, "-"],
                       input=xml, capture_output=True, text=True, timeout=60,
                       env=clean_env({"GPUHOOKS_SYSFS_ROOT": os.path.join(ARGS.hosts, "dgx2-v100-nvswitch", "sys"),
                                      "GPUHOOKS_STATE_DIR": state}))
    if p.returncode != 0:
        raise RuntimeError("transformer failed: " + p.stderr)
    return p.stdout


def reservation_state(state, name):
    try:
        with open(os.path.join(state, "reservations", encoded(name) + ".json")) as f:
            return json.load(f)["state"]
    except OSError:
        return None


def broken_config(run, tmp, state, plain, asks):
    """A broken configuration never blocks a domain that asks for no GPU (issue 8, item 2); a GPU
    domain fails closed with one line naming the file and the key; what a domain holds is kept."""
    good = os.path.join(tmp, "gpuhooks.json")
    cases = [("an unknown key", {"transformer": {"allow_mixd": True}}, "transformer.allow_mixd"),
             ("a bad value", {"state_change": {"write_timeout_ms": 5}}, "state_change.write_timeout_ms")]
    for what, doc, key in cases:
        bad = os.path.join(tmp, "broken.json")
        with open(bad, "w") as f:
            json.dump(doc, f)
        env = {"GPUHOOKS_CONFIG": bad}
        for args in (["i-2-6-VM", "prepare", "begin", "-"], ["i-2-6-VM", "started", "begin", "-"],
                     ["i-2-6-VM", "release", "end", "-"], ["i-2-6-VM", "reconnect", "begin", "-"],
                     ["onStart", "i-2-6-VM"], ["onStop", "i-2-6-VM"]):
            r = run(args, stdin=plain if len(args) == 4 else "", env=env)
            check(r.rc == 0 and r.out == "" and r.err == "",
                  "config with %s: %s of a domain without GPUs: exit 0, silent"
                  % (what, " ".join(args[1:3]) if len(args) == 4 else args[0]), r.why())
        r = run(["i-2-6-VM", "prepare", "begin", "-"], stdin=asks, env=env)
        check(r.rc == 1 and r.one_line() and bad in r.err and key in r.err,
              "config with %s: prepare of a domain asking for GPUs: exit 1, one line naming the file and the key"
              % what, r.why())
        # the rules, valid on their own, still make a domain a GPU domain
        with open(bad, "w") as f:
            json.dump(dict(doc, transformer=dict(doc.get("transformer", {}), rules=[
                {"match": {"name": "i-2-*"}, "requests": [{"mode": "passthrough"}]}])), f)
        r = run(["i-2-6-VM", "prepare", "begin", "-"], stdin=plain, env=env)
        check(r.rc == 1 and r.one_line() and key in r.err and "transformer.rules" in r.err,
              "config with %s beside a rule matching the domain: its prepare fails closed" % what, r.why())
        with open(bad, "w") as f:
            json.dump(doc, f)

        # a domain with state: started goes on, release/onStop/reconcile keep it
        name = "i-9-1-VM"
        xml = transform_plain(tmp, state, domain_xml("25-dumpxml-request-numa-require-v100.xml", name=name), good)
        check(reservation_state(state, name) == "reserved", "config with %s: %s reserved by the transformer"
              % (what, name))
        r = run([name, "started", "begin", "-"], stdin=xml, env=env)
        check(r.rc == 0 and r.err == "" and reservation_state(state, name) == "running",
              "config with %s: started of a domain with a reservation goes on with defaults" % what, r.why())
        r = run([name, "reconnect", "begin", "-"], stdin=xml, env=env)
        check(r.rc == 0, "config with %s: reconnect of it never fails" % what, r.why())
        for label, args, stdin in (("release end", [name, "release", "end", "-"], xml),
                                   ("onStop", ["onStop", name], ""),
                                   ("reconcile", ["--no-libvirt", "--domain-xml-dir", tmp, "--min-age", "0",
                                                  "reconcile"], "")):
            r = run(args, stdin=stdin, env=env)
            check(r.rc == 1 and r.one_line() and bad in r.err and key in r.err and
                  reservation_state(state, name) == "running",
                  "config with %s: %s with a domain's state: exit 1, one line naming the file and the key, the "
                  "state kept" % (what, label), r.why())
        r = run([name, "release", "end", "-"], stdin=xml)
        check(r.rc == 0 and r.err == "" and reservation_state(state, name) is None,
              "... and with the configuration fixed, release frees it", r.why())


def broken_rule(run, tmp, plain):
    """A rule whose requests are broken still says which domains want GPUs: they are refused."""
    bad = os.path.join(tmp, "broken-rule.json")
    with open(bad, "w") as f:
        json.dump({"transformer": {"rules": [{"match": {"name": "i-2-*"}, "requests": [{"mode": "mdev"}]}]}}, f)
    r = run(["i-2-6-VM", "prepare", "begin", "-"], stdin=plain, env={"GPUHOOKS_CONFIG": bad})
    check(r.rc == 1 and r.one_line() and bad in r.err and "profile" in r.err,
          "a rule with broken requests matching the domain: its prepare fails closed, naming the problem", r.why())
    other = set_domain(plain, "i-3-7-VM", "00000000-0000-4000-8000-0000000037ab")
    r = run(["i-3-7-VM", "prepare", "begin", "-"], stdin=other, env={"GPUHOOKS_CONFIG": bad})
    check(r.rc == 0 and r.err == "", "... a domain it does not match passes", r.why())


def weird_names(run, tmp, state, plain):
    """libvirt's VMNAME is whatever stands before OP SUBOP EXTRA, even '--help' or '-v' (issue 8, item 8)."""
    good = os.path.join(tmp, "gpuhooks.json")
    for name in ("--help", "-v", "--version", "--config=x"):
        xml = set_domain(plain, name, "00000000-0000-4000-8000-00000000abcd")
        for op, sub in (("prepare", "begin"), ("started", "begin"), ("release", "end"), ("migrate", "begin")):
            r = run([name, op, sub, "-"], stdin=xml)
            check(r.rc == 0 and r.out == "" and r.err == "",
                  "a domain without GPUs named '%s': %s %s: exit 0, nothing printed" % (name, op, sub), r.why())
        # with state: the hook acts on that domain; options before its name are options
        other = os.path.join(tmp, "other-state")
        gpu = transform_plain(tmp, other, domain_xml("25-dumpxml-request-numa-require-v100.xml", name=name), good)
        r = run(["--state-dir", other, name, "started", "begin", "-"], stdin=gpu)
        check(r.rc == 0 and r.out == "" and reservation_state(other, name) == "running",
              "a GPU domain named '%s' (--state-dir before it): started marks its reservation running" % name,
              r.why())
        r = run(["--state-dir", other, name, "release", "end", "-"], stdin=gpu)
        check(r.rc == 0 and r.out == "" and reservation_state(other, name) is None,
              "a GPU domain named '%s': release frees its reservation" % name, r.why())
    # '--config=/x': not an option either; libvirt allows no '/' in a name, nor do we
    r = run(["--config=/x", "prepare", "begin", "-"], stdin=plain)
    check(r.rc == 0 and r.out == "" and r.err == "", "VMNAME '--config=/x' is not read as --config: prepare of a "
          "domain without GPUs exits 0, nothing printed", r.why())
    rule = os.path.join(tmp, "rule-x.json")
    with open(rule, "w") as f:
        json.dump({"transformer": {"rules": [{"match": {"name": "i-2-*"}, "requests": [{"mode": "passthrough"}]}]}}, f)
    r = run(["--config=/x", "prepare", "begin", "-"], stdin=plain, env={"GPUHOOKS_CONFIG": rule})
    check(r.rc == 1 and "transformer did not run" in r.err and "/x" not in r.err,
          "... the configuration used is GPUHOOKS_CONFIG's (its rule refuses the domain), not '/x'", r.why())
    r = run(["--config=/x", "started", "begin", "-"], stdin=plain)
    check(r.rc == 1 and r.one_line() and "'--config=/x' is not a domain name" in r.err,
          "... started refuses it as a domain name with '/'", r.why())
    r = run(["-v", "--bogus", "x", "prepare", "begin", "-"], stdin=plain)
    check(r.rc == 2 and r.one_line() and "--bogus" in r.err, "an unknown option before VMNAME: exit 2", r.why())
    r = run(["a", "b", "prepare", "begin", "-"], stdin=plain)
    check(r.rc == 2 and r.one_line(), "a stray argument before VMNAME: exit 2", r.why())


def case_protocol():
    """The qemu hook's and the agent's calling conventions, on a plain fixture tree (no
    writes happen, so no FUSE is needed)."""
    root = os.path.join(ARGS.hosts, "dgx2-v100-nvswitch", "sys")
    tmp = tempfile.mkdtemp(prefix="gpuh-sc-proto-")
    try:
        state = os.path.join(tmp, "state")
        cfg = os.path.join(tmp, "gpuhooks.json")
        with open(cfg, "w") as f:
            f.write("{}")

        def run(args, stdin="", env=None):
            return harness.run([ARGS.hook] + args, stdin=stdin, text=True, timeout=60,
                               env=clean_env(dict({"GPUHOOKS_CONFIG": cfg, "GPUHOOKS_SYSFS_ROOT": root,
                                                   "GPUHOOKS_STATE_DIR": state}, **(env or {}))))
        plain = domain_xml("03-dumpxml-i-2-6-VM-cs4.22dev.xml")
        for op, sub in (("prepare", "begin"), ("start", "begin"), ("started", "begin"), ("stopped", "end"),
                        ("release", "end"), ("migrate", "begin"), ("restore", "begin"), ("reconnect", "begin"),
                        ("attach", "begin")):
            r = run(["i-2-6-VM", op, sub, "-"], stdin=plain)
            check(r.rc == 0 and r.out == "" and r.err == "", "%s %s of a domain without GPUs: exit 0, silent" % (op, sub),
                  r.why())
        check(not os.path.exists(os.path.join(state, "journal")), "... and no journal directory was made")
        big = "<domain>" + "<!-- x -->" * 800000 + "</domain>"
        r = run(["i-2-6-VM", "release", "end", "-"], stdin=big)
        check(r.rc == 0, "a large document on stdin is read to its end (libvirt writes it to every call)", r.why())
        asks = domain_xml("25-dumpxml-request-numa-require-v100.xml")
        r = run(["i-2-6-VM", "prepare", "begin", "-"], stdin=asks)
        check(r.rc == 1 and r.one_line() and "transformer did not run" in r.err,
              "prepare of a domain that asks for GPUs but carries no record: refused, one line", r.why())
        r = run(["i-2-6-VM", "migrate", "begin", "-"], stdin=asks)
        check(r.rc == 0 and r.out == "", "migrate begin prints nothing (its stdout would replace the XML)", r.why())
        rule = os.path.join(tmp, "rule.json")
        with open(rule, "w") as f:
            json.dump({"transformer": {"rules": [{"match": {"name": "i-2-*"},
                                                  "requests": [{"mode": "passthrough"}]}]}}, f)
        r = run(["i-2-6-VM", "prepare", "begin", "-"], stdin=plain, env={"GPUHOOKS_CONFIG": rule})
        check(r.rc == 1 and "transformer.rules" in r.err, "a matching config rule without a record: refused", r.why())
        r = run(["i-2-6-VM", "prepare", "begin", "-"], stdin="<domain><name>x</name")
        check(r.rc == 0 and r.out == "" and r.err == "",
              "malformed XML that cannot carry a GPU: exit 0, silent (never blocks a domain without GPUs)", r.why())
        r = run(["i-2-6-VM", "prepare", "begin", "-"],
                stdin="<domain><name>x</name><devices><hostdev mode='subsystem' type='pci'>")
        check(r.rc == 1 and r.one_line(), "malformed XML with a hostdev: exit 1, one line", r.why())
        r = run(["i-2-6-VM", "prepare", "begin", "-"],
                stdin="<domain><name>x</name><metadata><gpu xmlns='urn:gpuhooks:domain:1'><request/></gpu>")
        check(r.rc == 1 and r.one_line(), "malformed XML with a gpuhooks element: exit 1, one line", r.why())
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"state_change": {"write_timeout_ms": 5}}')
        r = run(["i-2-6-VM", "reconnect", "begin", "-"], stdin=plain, env={"GPUHOOKS_CONFIG": bad})
        check(r.rc == 0, "reconnect never fails (libvirt would kill the guest), even with a broken config", r.why())
        broken_config(run, tmp, state, plain, asks)
        broken_rule(run, tmp, plain)
        weird_names(run, tmp, state, plain)
        for args in (["i-2-6-VM", "prepare", "begin"], ["onStart"], ["a", "b", "c", "d", "e"], ["--bogus", "reconcile"],
                     ["frobnicate", "i-2-6-VM"]):
            r = run(args)
            check(r.rc == 2 and r.one_line() and r.out == "", "bad arguments %s: exit 2, one line" % args, r.why())
        r = run(["--help"])
        check(r.rc == 0 and "VMNAME OP SUBOP EXTRA" in r.out and "onStart|onStop" in r.out, "--help", r.why())
        r = run(["onStart", "i-2-6-VM"])
        check(r.rc == 0 and r.out == "" and r.err == "", "onStart of a domain without reservation: exit 0, silent",
              r.why())
        r = run(["onStart", "../../etc/passwd"])
        check(r.rc == 1 and r.one_line(), "a domain name with '/' is refused", r.why())
        r = run(["--no-libvirt", "--domain-xml-dir", tmp, "--dry-run", "reconcile"])
        check(r.rc == 0 and json.loads(r.out) == [], "reconcile --dry-run with nothing to do prints []", r.why())
        # options and verbs in any order, as getopt users expect (issue 12)
        r = run(["reconcile", "--min-age", "0", "--no-libvirt", "--dry-run", "--domain-xml-dir", tmp])
        check(r.rc == 0 and json.loads(r.out) == [], "reconcile --min-age 0 --dry-run ...: options after the verb",
              r.why())
        r = run(["--dry-run", "reconcile", "--no-libvirt", "--min-age=0", "--domain-xml-dir", tmp])
        check(r.rc == 0 and json.loads(r.out) == [], "options on both sides of the verb", r.why())
        r = run(["reconcile", "--min-age", "x"])
        check(r.rc == 2 and r.one_line() and "--min-age" in r.err, "a bad value after the verb: exit 2, named",
              r.why())
        r = run(["--", "reconcile", "-v"])
        check(r.rc == 2 and r.one_line(), "'--' ends the options: '-v' after it is an argument", r.why())
        r = run(["--dry-run", "onStart", "i-2-6-VM"])
        check(r.rc == 0 and r.err == "", "an operator's onStart with an option after it", r.why())
        # --format json: a failure is one JSON object on stdout, nothing on stderr (issue 12)
        def json_error(r):
            try:
                doc = json.loads(r.out)
            except ValueError:
                return None
            ok = (isinstance(doc, dict) and r.err == "" and r.out.count("\n") == 1 and
                  set(doc) - {"plan"} == {"error", "errno", "device"})
            return doc if ok else None
        r = run(["i-2-6-VM", "prepare", "begin", "-"], stdin=asks)
        text = r.err.strip()
        r = run(["--format", "json", "i-2-6-VM", "prepare", "begin", "-"], stdin=asks)
        doc = json_error(r)
        check(r.rc == 1 and doc is not None and text.endswith(doc["error"]) and isinstance(doc["errno"], int),
              "--format json, prepare refused: exit 1, the same line as {error, errno, device} on stdout", r.why())
        r = run(["reconcile", "--format", "json", "--min-age", "x"])
        doc = json_error(r)
        check(r.rc == 2 and doc is not None and doc["errno"] is None and "--min-age" in doc["error"],
              "--format json, a bad option value: exit 2, the JSON error, errno null", r.why())
        r = run(["reconcile", "--format", "json", "--no-libvirt", "--domain-xml-dir", tmp, "--dry-run", "--min-age=0"])
        check(r.rc == 0 and json.loads(r.out) == [], "--format json, a success: the output as ever", r.why())
        r = run(["reconcile", "--format", "json"], env={"GPUHOOKS_CONFIG": os.path.join(tmp, "absent.json")})
        doc = json_error(r)
        check(r.rc == 1 and doc is not None and "absent.json" in doc["error"],
              "--format json, reconcile with a missing named config: the JSON error naming it", r.why())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Names and the state directory (issue 8)

def encoded(name):
    """The file-name stem gpuhooks gives a domain name (common/domname.h), computed here."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import domname
    return domname.encode(name)


def transform_result(h, xml):
    """The transformer on @xml, its failure included."""
    return harness.run([ARGS.transformer, "--config", h.cfg_path, "--sysfs-root", h.emu.root,
                        "--state-dir", h.state, "--no-libvirt", "--domain-xml-dir", h.empty, "-"],
                       stdin=xml, text=True, env=clean_env(), timeout=60)


RTX = "0000:05:00.0"


def case_names_dot():
    """'.evil' (libvirt takes a leading dot) is no hidden file: its reservation keeps 'good' off
    its GPU, and its release finds its journal and restores the GPU."""
    with Host("consumer-rtx3080") as h:
        xml0 = rtx3080(h)
        before = h.snap()
        evil = h.transform(set_domain(xml0, ".evil", "00000000-0000-4000-8000-00000000e011"))
        check(h.reservations() == ["%2Eevil.json"], "'.evil': its reservation is reservations/%2Eevil.json",
              os.listdir(os.path.join(h.state, "reservations")))
        r = transform_result(h, set_domain(xml0, "good", "00000000-0000-4000-8000-00000000e012"))
        check(r.rc == 1 and r.out == "" and r.one_line() and h.reservations() == ["%2Eevil.json"],
              "'good' asking for the GPU '.evil' has: refused by the transformer, nothing reserved", r.why())
        r = h.prepare(evil)
        check(r.rc == 0 and r.err == "" and driver_of(h, RTX) == "vfio-pci" and h.journals() == ["%2Eevil.journal"],
              "prepare of '.evil' binds its GPU; its journal is journal/%2Eevil.journal", r.why() + str(h.journals()))
        r = h.release(".evil")
        end = h.snap()
        check(r.rc == 0 and r.err == "" and end == before and h.journals() == [] and h.reservations() == [],
              "release '.evil' puts the GPU back and removes journal and reservation",
              r.why() + diff(before, end) + str((h.journals(), h.reservations())))


def case_names_untrimmed():
    """<name>  x  </name>: libvirt does not trim it and passes '  x  ' as VMNAME; neither does
    gpuhooks, so the release of '  x  ' restores the GPU (and one of 'x' is another domain's)."""
    with Host("consumer-rtx3080") as h:
        xml0 = rtx3080(h)
        before = h.snap()
        xml = h.transform(set_domain(xml0, "  x  ", "00000000-0000-4000-8000-0000000000a1"))
        check("<name>  x  </name>" in xml and h.reservations() == [encoded("  x  ") + ".json"],
              "the transformer keeps the name as it is and reserves under it", h.reservations())
        r = h.prepare(xml)
        check(r.rc == 0 and driver_of(h, RTX) == "vfio-pci" and h.journals() == ["%20%20x%20%20.journal"],
              "prepare (VMNAME '  x  ') binds the GPU, journaled under '  x  '", r.why() + str(h.journals()))
        r = h.release("  x  ")
        end = h.snap()
        check(r.rc == 0 and end == before and h.journals() == [] and h.reservations() == [],
              "release '  x  ' puts the GPU back", r.why() + diff(before, end))
        xml = h.transform(xml)
        r = h.prepare(xml)
        check(r.rc == 0 and driver_of(h, RTX) == "vfio-pci", "prepared again", r.why())
        r = h.release("x")
        check(r.rc == 0 and driver_of(h, RTX) == "vfio-pci" and len(h.journals()) == 1,
              "release 'x', another domain: the GPU of '  x  ' is left alone", r.why())
        r = h.release("  x  ")
        check(r.rc == 0 and h.snap() == before, "release '  x  ' puts it back again", r.why())


def case_names_long():
    """A 240-byte name and one with a tab (libvirt takes both) get a GPU and give it back; their
    files are named as gpuhooks encodes them (a hashed name for the long one)."""
    for name in ("i-2-240-VM-" + "x" * 229, "i-2-7\tVM"):
        label = "%d-byte name" % len(name) if len(name) > 20 else repr(name)
        with Host("consumer-rtx3080") as h:
            xml0 = rtx3080(h)
            before = h.snap()
            r = transform_result(h, set_domain(xml0, name, "00000000-0000-4000-8000-%012x" % (0xb000 + len(name))))
            check(r.rc == 0 and h.reservations() == [encoded(name) + ".json"],
                  "%s: the transformer reserves its GPU in %s.json" % (label, encoded(name)[:40] + "..."),
                  r.why() + str(h.reservations()))
            if r.rc != 0:
                continue
            xml = r.out
            r = h.prepare(xml)
            check(r.rc == 0 and r.err == "" and driver_of(h, RTX) == "vfio-pci" and
                  h.journals() == [encoded(name) + ".journal"], "%s: prepare binds the GPU" % label,
                  r.why() + str(h.journals()))
            r = h.hook([name, "started", "begin", "-"], stdin=xml)
            with open(os.path.join(h.state, "reservations", encoded(name) + ".json")) as f:
                res = json.load(f)
            check(r.rc == 0 and res["state"] == "running" and res["domain"] == name,
                  "%s: started marks it running; the file holds the whole name" % label, r.why())
            r = h.release(name)
            end = h.snap()
            check(r.rc == 0 and r.err == "" and end == before and h.journals() == [] and h.reservations() == [],
                  "%s: release puts the GPU back" % label, r.why() + diff(before, end))


def case_vmname():
    """libvirt's VMNAME and the XML's <name> must be the same name for a domain with GPUs:
    release finds the journal by VMNAME alone."""
    with Host("consumer-rtx3080") as h:
        xml = h.transform(rtx3080(h))
        vm = domain_name(xml)
        before = h.snap()
        r = h.hook(["other-VM", "prepare", "begin", "-"], stdin=xml)
        check(r.rc == 1 and r.out == "" and r.one_line() and "'%s'" % vm in r.err and "'other-VM'" in r.err and
              h.snap() == before and h.journals() == [],
              "VMNAME 'other-VM' for the XML of %s: refused with one line naming both, nothing changed" % vm, r.why())
        plain = domain_xml("03-dumpxml-i-2-6-VM-cs4.22dev.xml")
        r = h.hook(["not-its-name", "prepare", "begin", "-"], stdin=plain)
        check(r.rc == 0 and r.out == "" and r.err == "", "a domain without GPUs passes whatever VMNAME says", r.why())
        r = h.prepare(xml)
        check(r.rc == 0 and driver_of(h, RTX) == "vfio-pci", "with its own VMNAME it starts", r.why())
        r = h.release(vm)
        check(r.rc == 0 and h.snap() == before, "and is released", r.why())


def case_statedir():
    """journal/, locks/ or reservations/ replaced by a link to another directory is refused,
    never followed (nothing is made where it points); a state directory others may write is
    refused, naming it and its mode."""
    with Host("consumer-rtx3080") as h:
        xml0 = rtx3080(h)
        xml = h.transform(xml0)
        before = h.snap()
        target = os.path.join(h.tmp, "elsewhere")
        os.mkdir(target, 0o700)
        for sub in ("journal", "locks"):
            p = os.path.join(h.state, sub)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            os.symlink(target, p)
            r = h.prepare(xml)
            check(r.rc == 1 and r.one_line() and "symbolic link" in r.err and sub in r.err and
                  os.listdir(target) == [] and h.snap() == before,
                  "%s/ a link to another directory: prepare refused, nothing made there, nothing changed" % sub,
                  r.why() + str(os.listdir(target)))
            os.unlink(p)
        res = os.path.join(h.state, "reservations")
        os.rename(res, res + ".saved")
        os.symlink(target, res)
        r = transform_result(h, set_domain(xml0, "i-2-8-VM", "00000000-0000-4000-8000-000000000c08"))
        check(r.rc == 1 and r.out == "" and r.one_line() and "symbolic link" in r.err and os.listdir(target) == [],
              "reservations/ a link: the transformer refuses, nothing made there", r.why())
        r = h.prepare(xml)
        check(r.rc == 1 and r.one_line() and "symbolic link" in r.err and os.listdir(target) == [] and
              h.snap() == before, "reservations/ a link: prepare refused too", r.why())
        os.unlink(res)
        os.rename(res + ".saved", res)

        os.chmod(h.state, 0o777)
        r = h.prepare(xml)
        check(r.rc == 1 and r.one_line() and h.state in r.err and "0777" in r.err and h.snap() == before and
              not os.path.exists(os.path.join(h.state, "journal")),
              "a state directory of mode 0777: prepare refused, naming it and its mode", r.why())
        r = transform_result(h, set_domain(xml0, "i-2-8-VM", "00000000-0000-4000-8000-000000000c08"))
        check(r.rc == 1 and r.one_line() and "0777" in r.err, "... and the transformer refuses it", r.why())
        os.chmod(h.state, 0o700)
        r = h.prepare(xml)
        check(r.rc == 0 and driver_of(h, RTX) == "vfio-pci", "mode 0700 again: prepare binds the GPU", r.why())
        r = h.release(domain_name(xml))
        check(r.rc == 0 and h.snap() == before, "and release puts it back", r.why())


CS421_ADDR = "domain='0x0000' bus='0x36' slot='0x00' function='0x0'"


def case_old_agents():
    """CloudStack agents before 4.22.1 (apache/cloudstack PR #12981) write 000b:01:00.0 as
    domain='0x0000' bus='0x000b' slot='0x01' function='0x0'. When the transformer did not run
    for a start (it refused, or is not installed: the agent starts the domain with its original
    XML), only prepare stands between libvirt and that address: it refuses it, naming the GPU
    meant; and it refuses a GPU another domain holds in either form, writing nothing. On a host
    with GPUs in PCI domains 0002, 0003, 000a and 000b (issue 10, items 4 to 6)."""
    with Host("power8-minsky-p100-vfio") as h:
        gpu = "000b:01:00.0"
        old_form = "domain='0x0000' bus='0x000b' slot='0x01' function='0x0'"
        new_form = "domain='0x000b' bus='0x01' slot='0x00' function='0x0'"
        a = domain_xml("11-agent-cs421-pci-v100.xml", name="i-2-60-VM", uuid="00000000-0000-4000-8000-000000000060",
                       subst={CS421_ADDR: old_form})
        n0 = len(h.emu.writes())
        r = h.prepare(a)
        check(r.rc == 1 and r.one_line() and gpu in r.err and "4.22.1" in r.err and len(h.emu.writes()) == n0 and
              h.journals() == [] and h.reservations() == [],
              "the old form without a record: refused, one line naming %s, nothing written" % gpu, r.why())
        xa = h.transform(a)
        check([d.get("address") for d in record(xa)] == [gpu] and old_form not in xa,
              "the transformer rewrote the old form to %s (hostdev and record)" % gpu)
        r = h.prepare(xa)
        check(r.rc == 0 and driver_of(h, gpu) == "vfio-pci", "the transformed domain starts: %s on vfio-pci" % gpu,
              r.why())
        for form, label in ((new_form, "the 4.22.1 form"), (old_form, "the old form")):
            b = domain_xml("11-agent-cs421-pci-v100.xml", name="i-2-61-VM",
                           uuid="00000000-0000-4000-8000-000000000061", subst={CS421_ADDR: form})
            n0 = len(h.emu.writes())
            r = h.prepare(b)
            check(r.rc == 1 and r.one_line() and gpu in r.err and len(h.emu.writes()) == n0 and
                  h.journals() == ["i-2-60-VM.journal"],
                  "another domain's hostdev for %s in %s, no record: refused, nothing written" % (gpu, label), r.why())
            if form == new_form:
                check("i-2-60-VM" in r.err, "... naming the domain that holds it", r.why())
        r = h.release("i-2-60-VM")
        check(r.rc == 0 and driver_of(h, gpu) == "nvidia" and h.journals() == [], "released: %s back on nvidia" % gpu,
              r.why())
        # a GPU of another domain in the old form: 0002:01:00.0 passes once nobody holds it
        c = domain_xml("11-agent-cs421-pci-v100.xml", name="i-2-62-VM", uuid="00000000-0000-4000-8000-000000000062",
                       subst={CS421_ADDR: new_form.replace("0x000b", "0x0002")})
        r = h.prepare(c)
        check(r.rc == 0 and r.err == "", "CloudStack's 0002:01:00.0 in the 4.22.1 form, free, no record: passes",
              r.why())


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--hook", required=True)
    ap.add_argument("--transformer", required=True)
    ap.add_argument("--discovery", required=True)
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    ARGS = ap.parse_args()
    harness.use_tmpfs()
    if ARGS.case != "protocol":
        E = emulator()
        why = E.fuse_available()
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
