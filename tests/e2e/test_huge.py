#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Huge domain XMLs under the 4 MiB limit: the transformer and prepare do bounded work.

  test_huge.py --transformer BIN --hook BIN --hosts BUILD/fixtures/hosts --src SRC CASE

The documents are made at test time from fixture domains (fixtures/domains/) and run on the
plain fixture tree of dgx2-v100-nvswitch (nothing is written there: the transformer only
reads sysfs, prepare runs with --dry-run; the state directory is a temporary one). Each run
has a 10 s limit: about ten times what they take here, so a loaded machine cannot fail them,
while the quadratic code they guard against took 9 to 26 s here (tests/bench/README.md, "Huge
domain XMLs"). CASE:

  vcpupin     3 MiB of <vcpupin>s with 18-character cpusets, and 150,000 short <vcpupin>s
  wide        150,000 <vcpupin cpuset='0-8191'/> (the widest range a cpuset may name)
  hostdevs    20,000 non-GPU <hostdev>s, in a domain that asks for a GPU and in one that does not
  record      an allocation record of more devices than a domain may have: refused, one line

Prints one line per check and closes with 'N passed, N failed'.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ARGS = None
RESULTS = {"passed": 0, "failed": 0}
HOST = "dgx2-v100-nvswitch"
LIMIT_S = 10
MAX_BYTES = 4 << 20                     # GPUH_DOMXML_MAX_BYTES
# 28-...: one V100 asked for, its only vCPU pinned to CPU 30, which is on NUMA node 1 (CPUs
# 24-47,72-95): node 1's first free V100, 0000:bc:00.0, is chosen (case request-numa-vcpupin-v100)
GPU_DOMAIN = "28-dumpxml-request-numa-vcpupin-v100.xml"
PIN = "<vcpupin vcpu='0' cpuset='30'/>\n  </cputune>"
NODE1_GPU = "0000:bc:00.0"
PLAIN_DOMAIN = "03-dumpxml-i-2-6-VM-cs4.22dev.xml"     # no GPU asked for


def check(cond, what, detail=None):
    RESULTS["passed" if cond else "failed"] += 1
    print(("ok     " if cond else "FAILED ") + what +
          ("" if cond or not detail else "".join("\n         " + l for l in str(detail).splitlines()[:30])))
    sys.stdout.flush()
    return cond


class Result:
    def __init__(self, rc, out, err, elapsed):
        self.rc, self.out, self.err, self.elapsed = rc, out, err, elapsed

    def one_line(self):
        return self.err.endswith(b"\n") and self.err.count(b"\n") == 1 and len(self.err.strip()) > 0

    def why(self):
        return "exit %s, %.2f s, stdout %d bytes, stderr: %s" % (
            self.rc, self.elapsed, len(self.out), self.err.decode("utf-8", "replace")[:600] or "(empty)")


class Run:
    """A temporary state directory and configuration; the fixture host's tree, read only."""

    def __init__(self, tmp):
        self.tmp = tempfile.mkdtemp(prefix="run-", dir=tmp)
        self.state = os.path.join(self.tmp, "state")
        self.cfg = os.path.join(self.tmp, "gpuhooks.json")
        with open(self.cfg, "w") as f:
            f.write("{}")
        self.host = os.path.join(ARGS.hosts, HOST)
        self.sys = os.path.join(self.host, "sys")
        self.cache = os.path.join(self.tmp, "cache")
        os.mkdir(self.cache)

    def env(self):
        e = {k: v for k, v in os.environ.items() if not k.startswith("GPUHOOKS_")}
        e.pop("LIBVIRT_DEFAULT_URI", None)
        e["GPUHOOKS_CACHE_DIR"] = self.cache
        return e

    def _run(self, argv, stdin):
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, input=stdin, capture_output=True, env=self.env(), timeout=LIMIT_S)
        except subprocess.TimeoutExpired as e:
            return Result("timeout after %d s" % LIMIT_S, e.stdout or b"", e.stderr or b"", time.monotonic() - t0)
        return Result(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)

    def transform(self, data):
        path = os.path.join(self.tmp, "in.xml")
        with open(path, "wb") as f:
            f.write(data)
        return self._run([ARGS.transformer, "--config", self.cfg, "--sysfs-root", self.sys, "--state-dir", self.state,
                          "--connect", "test://" + os.path.abspath(os.path.join(self.host, "libvirt.xml")), path], None)

    def prepare(self, name, data):
        return self._run([ARGS.hook, "--config", self.cfg, "--sysfs-root", self.sys, "--state-dir", self.state,
                          "--dry-run", name, "prepare", "begin", "-"], data)

    def reservations(self):
        d = os.path.join(self.state, "reservations")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


def fixture(name):
    with open(os.path.join(ARGS.src, "fixtures", "domains", name)) as f:
        return f.read()


def domain_name(xml):
    return re.search(r"<name>([^<]*)</name>", xml).group(1)


def with_pins(pins):
    """The GPU domain with its one <vcpupin> replaced by PINS (one line)."""
    xml = fixture(GPU_DOMAIN)
    assert xml.count(PIN) == 1
    return xml.replace(PIN, pins + "\n  </cputune>")


def hostdev_addrs(xml):
    """(domain, bus, slot, function) of every PCI <hostdev>, as ints."""
    out = []
    for m in re.finditer(r"<hostdev\b.*?</hostdev>", xml, re.S):
        a = re.search(r"<address domain=.(0x[0-9a-f]+). bus=.(0x[0-9a-f]+). slot=.(0x[0-9a-f]+). "
                      r"function=.(0x[0-9a-f]+).", m.group(0))
        if a:
            out.append(tuple(int(x, 16) for x in a.groups()))
    return out


def bdf(addr):
    return "%04x:%02x:%02x.%x" % addr


def gpu_domain_runs(label, data, n_pins=None):
    """Transform DATA (asks for one V100, pinned to node 1), then prepare its output."""
    r = Run(ARGS.tmp)
    t = r.transform(data)
    out = t.out.decode("utf-8", "replace")
    ok = check(t.rc == 0 and t.err == b"" and NODE1_GPU in map(bdf, hostdev_addrs(out)) and
               "<gpuhooks:allocation" in out,
               "%s (%d bytes): the transformer exits 0 within %d s, silent, node 1's V100 %s written in (%.2f s)" %
               (label, len(data), LIMIT_S, NODE1_GPU, t.elapsed), t.why())
    if ok and n_pins is not None:
        n = out.count("<vcpupin ") - fixture(GPU_DOMAIN).count("<vcpupin ") + 1     # its comment names one
        check(n == n_pins, "%s: the %d <vcpupin>s come back" % (label, n_pins), "%d in the output" % n)
    if not ok:
        return
    p = r.prepare(domain_name(out), t.out)
    steps = None
    try:
        doc = json.loads(p.out)
        steps = doc.get("steps") if doc.get("domain") == domain_name(out) and doc.get("operation") == "prepare" else None
    except ValueError:
        pass
    writes = [s.get("path") for s in steps or [] if s.get("step") == "write"]
    check(p.rc == 0 and p.err == b"" and "bus/pci/devices/%s/driver_override" % NODE1_GPU in writes,
          "%s: prepare --dry-run of its output exits 0 within %d s, silent, plans the bind of %s (%.2f s)" %
          (label, LIMIT_S, NODE1_GPU, p.elapsed), p.why() + "\nwrites: %s" % writes)


def plain_domain_runs(label, data):
    """A domain that asks for no GPU: never refused, handed back byte for byte, nothing to prepare."""
    r = Run(ARGS.tmp)
    t = r.transform(data)
    check(t.rc == 0 and t.err == b"" and t.out == data and not r.reservations(),
          "%s (%d bytes, no GPU asked for): the transformer hands it back unchanged within %d s (%.2f s)" %
          (label, len(data), LIMIT_S, t.elapsed), t.why())
    name = domain_name(data.decode())
    p = r.prepare(name, data)
    try:
        plan = json.loads(p.out)
    except ValueError:
        plan = None
    check(p.rc == 0 and p.err == b"" and plan == {"domain": name, "operation": "prepare", "steps": [], "error": None},
          "%s: prepare --dry-run exits 0 within %d s, silent, with nothing to do (%.2f s)" % (label, LIMIT_S, p.elapsed),
          p.why() + "\nstdout: %s" % p.out[:300])


def case_vcpupin():
    # 3 MiB of pins naming 18-character cpusets (node 1's CPUs): the shape that cost most
    # when every cpuset was appended by copying all those before it
    pin = "<vcpupin cpuset='24-47,72-80,81-95'/>"
    n = (3 << 20) // len(pin)
    data = with_pins(pin * n).encode()
    assert len(data) < MAX_BYTES
    gpu_domain_runs("%d <vcpupin>s of 18-character cpusets" % n, data, n)
    # 150,000 pins, one CPU of node 1 each
    node1 = [str(c) for c in list(range(24, 48)) + list(range(72, 96))]
    data = with_pins("".join("<vcpupin cpuset='%s'/>" % node1[i % len(node1)] for i in range(150000))).encode()
    assert len(data) < MAX_BYTES
    gpu_domain_runs("150,000 <vcpupin>s", data, 150000)


def case_wide():
    # every pin names all 8192 CPUs a cpuset may: no NUMA node holds them, any V100 will do
    data = with_pins("<vcpupin cpuset='0-8191'/>" * 150000).encode()
    assert len(data) < MAX_BYTES
    r = Run(ARGS.tmp)
    t = r.transform(data)
    out = t.out.decode("utf-8", "replace")
    check(t.rc == 0 and t.err == b"" and len(hostdev_addrs(out)) >= 1 and "<gpuhooks:allocation" in out,
          "150,000 <vcpupin cpuset='0-8191'/> (%d bytes): the transformer exits 0 within %d s with a V100 (%.2f s)" %
          (len(data), LIMIT_S, t.elapsed), t.why())
    plain = fixture(PLAIN_DOMAIN)
    assert plain.count("</cputune>") == 1
    plain_domain_runs("150,000 <vcpupin cpuset='0-8191'/>",
                      plain.replace("</cputune>", "<vcpupin cpuset='0-8191'/>" * 150000 + "</cputune>").encode())


def non_gpu_hostdevs(n):
    """N pretty-printed PCI <hostdev>s of the host's functions that are not display devices."""
    d = os.path.join(ARGS.hosts, HOST, "sys", "bus", "pci", "devices")
    funcs = []
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f, "class")) as fh:
            if not fh.read().startswith("0x03"):
                funcs.append(f)
    assert funcs
    out = []
    for i in range(n):
        dom, bus, sf = funcs[i % len(funcs)].split(":")
        slot, fn = sf.split(".")
        out.append("    <hostdev mode='subsystem' type='pci' managed='no'>\n      <source>\n"
                   "        <address domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'/>\n"
                   "      </source>\n    </hostdev>\n" % (dom, bus, slot, fn))
    return "".join(out)


def case_hostdevs():
    hds = non_gpu_hostdevs(20000)
    xml = fixture(GPU_DOMAIN)
    assert xml.count("<devices>\n") == 1
    data = xml.replace("<devices>\n", "<devices>\n" + hds).encode()
    assert len(data) < MAX_BYTES
    gpu_domain_runs("20,000 non-GPU <hostdev>s", data)
    plain = fixture(PLAIN_DOMAIN)
    assert plain.count("<devices>\n") == 1
    plain_domain_runs("20,000 non-GPU <hostdev>s", plain.replace("<devices>\n", "<devices>\n" + hds).encode())


def case_record():
    """A record of more devices than a domain may have (here, one V100 named over and over, each
    found among the domain's hostdevs) is refused by both hooks: written into a reservation it
    was megabytes the reservation reader refuses, which stopped every later transform."""
    r = Run(ARGS.tmp)
    t = r.transform(fixture(GPU_DOMAIN).encode())
    out = t.out.decode("utf-8", "replace")
    dev = re.search(r"<gpuhooks:device [^>]*/>", out)
    if not check(t.rc == 0 and dev, "record: the transformer's output has one record device", t.why()):
        return
    big = out.replace(dev.group(0), dev.group(0) * 257).encode()
    r = Run(ARGS.tmp)
    t = r.transform(big)
    check(t.rc == 1 and t.out == b"" and t.one_line() and b"more than 256" in t.err and not r.reservations(),
          "a record of 257 devices: the transformer refuses it (one line naming the cap), nothing reserved", t.why())
    p = r.prepare(domain_name(out), big)
    check(p.rc == 1 and p.out == b"" and p.one_line() and b"more than 256" in p.err,
          "a record of 257 devices: prepare refuses it, one line", p.why())


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--transformer", required=True)
    ap.add_argument("--hook", required=True)
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    ARGS = ap.parse_args()
    base = "/dev/shm" if not os.environ.get("TMPDIR") and os.access("/dev/shm", os.W_OK) else None
    ARGS.tmp = tempfile.mkdtemp(prefix="gpuh-huge-", dir=base)
    try:
        CASES[ARGS.case]()
    finally:
        shutil.rmtree(ARGS.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
