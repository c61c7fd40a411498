#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench_statechange.py: CPU time of libvirt-vm-state-change preparing and releasing 4 GPUs.

Usage: bench_statechange.py [--bindir build/hooks] [--runs 20] [--warmup 3] [--enforce]
                            [--no-nvidia-nodes] [--workdir DIR] [--keep]

Builds the host of mkpthost.py (4 passthrough RTX 3080-like GPUs, each with its HDMI audio
function in an IOMMU group of its own, behind root ports) and mounts it under tests/emu's
FUSE sysfs emulator, which binds and unbinds drivers the way the kernel does. The two hooks
are copied from --bindir into the work directory first (unchanged; a rebuild during the run
cannot mix versions). Then:

  1. once, untimed: libvirt-vm-xml-transformer --sysfs-root EMU --state-dir STATE
     --no-libvirt --domain-xml-dir EMPTY DOMAIN.xml, where DOMAIN.xml is
     fixtures/domains/20-dumpxml-request-passthrough-rtx3080.xml (a CloudStack VM's
     dumpxml with a gpuhooks request) asking for count="4" instead of 1. Its output, the
     domain XML with 8 hostdevs and the allocation record, is what libvirt would hand the
     state-change hook.
  2. --warmup untimed pairs, then --runs timed pairs of
       libvirt-vm-state-change --sysfs-root EMU --state-dir STATE --dev-dir EMU_DEV
                               i-2-6-VM prepare begin -        (the XML on stdin)
       libvirt-vm-state-change ... i-2-6-VM release end -       (the XML on stdin)
     as libvirt runs them around a start and a stop. A release removes the journal and the
     reservation, so every prepare reserves the devices again (as after a stop).

EMU_DEV is the emulator's dev directory (it keeps /dev/vfio/GROUP there); the script adds
nvidia0..3 and nvidiactl, as the nvidia driver has them on a real host, so that prepare
looks for processes holding them, as it would there (--no-nvidia-nodes: not).

CPU time is the hook's own: ru_utime + ru_stime from wait4(2), which include the helper
process the hook forks for its sysfs writes (it reaps it before exiting). The emulator's
work (a Python FUSE daemon, standing in for the kernel's sysfs handlers) is not in it, but
the kernel's side of every FUSE request is: the hook sleeps and is woken once per request
(each path component of each sysfs access is one, as the emulator is mounted with
entry_timeout=0), which a real sysfs does not cost. The script calibrates that cost (stat(2)
through the emulator against its backing tree, per voluntary context switch) and prints an
estimate of the CPU time without it, for information. Holder detection reads the real /proc
(every process's fds), so the CPU time also grows with the processes on the machine; their
number is printed.

The environment is the caller's without GPUHOOKS_* and LIBVIRT_DEFAULT_URI, plus
GPUHOOKS_CONFIG pointing at WORKDIR/gpuhooks.json (install/gpuhooks.json's defaults and
"state_change": {"nvidia_mdev_grace_ms": 0}; the host has no mdevs, so nothing waits on
it) and GPUHOOKS_CACHE_DIR in the work directory. The state directory is in the work
directory, which is on /dev/shm by default: production's /run/gpuhooks is tmpfs, and the
journal is fsync'd before every change.

A pair only counts when it is correct, and any failure makes the benchmark BROKEN (exit 1):
both runs exit 0 with nothing on stdout or stderr; after prepare, all 8 functions are on
vfio-pci with driver_override vfio-pci, /dev/vfio/GROUP exists for the 4 groups, the journal
holds one driver entry per function with its original driver; after release, every function
is back on its original driver (nvidia, snd_hda_intel) with driver_override "(null)", no
journal is left in STATE/journal, no reservation, no /dev/vfio/GROUP, the bridges keep
pcieport; the emulator's write log for each run is exactly the documented sequence
(prepare, per function in record order: driver_override <- vfio-pci, unbind from its
driver, drivers_probe; release, in reverse: driver_override <- the driver, unbind from
vfio-pci, drivers_probe, driver_override cleared), every write succeeding.

Prints a table (prepare, release, the pair: CPU median/min/max, user and system time,
voluntary context switches, wall median/max) and whether the target holds: CPU time of a
prepare + release pair, median <= 10 ms. Wall time is spawn to reap, from this script.

Exit status: 0; 1 when a run is broken (always, the numbers would mean nothing) or, with
--enforce, when the target is missed; 2 on a usage error; 77 when the emulator cannot run
here (no /dev/fuse, no python3-fusepy, not allowed to mount).
"""
import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
DOMAIN_XML = os.path.join(SRC, "fixtures", "domains", "20-dumpxml-request-passthrough-rtx3080.xml")
VM = "i-2-6-VM"
N_GPUS = 4
TARGET_MS = 10.0


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


mkpthost = load_module("mkpthost", os.path.join(HERE, "mkpthost.py"))
sys.path.insert(0, os.path.join(SRC, "tests", "emu"))
from emu import Emulator, Skip, scratch_parent  # noqa: E402


class Broken(Exception):
    pass


def child_env(workdir):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GPUHOOKS_") and k != "LIBVIRT_DEFAULT_URI"}
    cfg = {}
    src = os.path.join(SRC, "install", "gpuhooks.json")
    if os.path.exists(src):
        with open(src) as f:
            cfg = json.load(f)
    cfg.setdefault("state_change", {})["nvidia_mdev_grace_ms"] = 0
    path = os.path.join(workdir, "gpuhooks.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    env["GPUHOOKS_CONFIG"] = path
    env["GPUHOOKS_CACHE_DIR"] = os.path.join(workdir, "cache")
    return env


def run_once(argv, env, stdin_path, workdir):
    """One run of ARGV with STDIN_PATH on stdin. Returns (rusage, wall s, exit code, stdout,
    stderr); the rusage (wait4) covers the child and the children it reaped."""
    out, err = os.path.join(workdir, "out.txt"), os.path.join(workdir, "err.txt")
    fds = [os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) for p in (out, err)]
    try:
        actions = [(os.POSIX_SPAWN_OPEN, 0, stdin_path, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, fds[0], 1),
                   (os.POSIX_SPAWN_DUP2, fds[1], 2)]
        t0 = time.perf_counter()
        try:
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        except OSError as e:
            raise Broken(f"cannot run {argv[0]}: {e}") from None
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter()
    finally:
        for fd in fds:
            os.close(fd)
    with open(out, "rb") as f:
        so = f.read()
    with open(err, "rb") as f:
        se = f.read()
    return ru, t1 - t0, os.waitstatus_to_exitcode(status), so, se


def fuse_round_trip_us(emu, rounds=9, n=500):
    """CPU a FUSE round trip costs the calling process, in us: stat(2) of an attribute
    through the emulator against the same in its backing tree, divided by the voluntary
    context switches the former adds (one per request the caller waits for); the median
    of ROUNDS rounds of N each."""
    rel = "bus/pci/devices/0000:01:00.0/vendor"

    def cost(path):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(n):
            os.stat(path)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        return (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime), r1.ru_nvcsw - r0.ru_nvcsw

    est = []
    for _ in range(rounds):
        (ce, se), (cp, sp) = cost(emu.path(rel)), cost(os.path.join(emu.backing, rel))
        if se > sp:
            est.append((ce - cp) / (se - sp) * 1e6)
    return statistics.median(est) if est else None


def pin_binaries(bindir, workdir):
    """Copies of the two hooks in WORKDIR/bin, so that a rebuild of BINDIR during the run
    cannot mix two versions (or make a run fail while the linker writes the file)."""
    dst = os.path.join(workdir, "bin")
    os.makedirs(dst)
    for b in ("libvirt-vm-xml-transformer", "libvirt-vm-state-change"):
        shutil.copy2(os.path.join(bindir, b), os.path.join(dst, b))
        if not os.access(os.path.join(dst, b), os.X_OK):     # a noexec mount
            print(f"warning: cannot execute copies in {dst}: running the binaries in {bindir}")
            return bindir
    return dst


def functions(expect):
    """The passthrough functions in record order (GPU, then its companion), with drivers."""
    return [(f, expect["drivers"][f]) for g in expect["gpus"] for f in (g["gpu"], g["companion"])]


def driver_of(emu, bdf):
    p = emu.path(f"bus/pci/devices/{bdf}/driver")
    return os.path.basename(os.readlink(p)) if os.path.lexists(p) else ""


def expected_writes(expect, op):
    seq = []
    if op == "prepare":
        for f, drv in functions(expect):
            seq += [(f"bus/pci/devices/{f}/driver_override", "vfio-pci"),
                    (f"bus/pci/drivers/{drv}/unbind", f),
                    ("bus/pci/drivers_probe", f)]
    else:
        for f, drv in reversed(functions(expect)):
            seq += [(f"bus/pci/devices/{f}/driver_override", drv),
                    ("bus/pci/drivers/vfio-pci/unbind", f),
                    ("bus/pci/drivers_probe", f),
                    (f"bus/pci/devices/{f}/driver_override", "")]
    return seq


def check_writes(emu, since, expect, op):
    got = emu.writes(since)
    bad = [w for w in got if w["result"] != "ok"]
    if bad:
        w = bad[0]
        raise Broken(f"{op}: {len(bad)} failed writes, first {w['alias'] or w['path']} <- "
                     f"{w['value']!r}: {w['result']} {w.get('note') or ''}")
    seq = [(w["alias"] or w["path"], (w["value"] or "").rstrip("\n")) for w in got]
    want = expected_writes(expect, op)
    if seq != want:
        diff = next((i for i, (a, b) in enumerate(zip(seq, want)) if a != b), min(len(seq), len(want)))
        raise Broken(f"{op}: {len(seq)} writes, expected {len(want)}; first difference at #{diff + 1}: "
                     f"got {seq[diff] if diff < len(seq) else None}, "
                     f"expected {want[diff] if diff < len(want) else None}")
    return len(got)


def read_journal(state):
    path = os.path.join(state, "journal", f"{VM}.journal")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check_prepared(emu, state, expect):
    for f, drv in functions(expect):
        d = driver_of(emu, f)
        o = emu.read(f"bus/pci/devices/{f}/driver_override").strip()
        if d != "vfio-pci" or o != "vfio-pci":
            raise Broken(f"after prepare {f} is on {d or 'no driver'!r} with driver_override {o!r}, "
                         "expected vfio-pci / vfio-pci")
    groups = sorted(str(g["group"]) for g in expect["gpus"])
    if sorted(emu.dev_vfio()) != groups:
        raise Broken(f"after prepare /dev/vfio has groups {emu.dev_vfio()}, expected {groups}")
    try:
        j = read_journal(state)
    except (OSError, ValueError) as e:
        raise Broken(f"after prepare the journal cannot be read: {e}") from None
    entries = [(e.get("op"), e.get("device"), e.get("driver"), e.get("override"), e.get("to"))
               for e in j[1:]]
    want = [("driver", f, drv, "", "vfio-pci") for f, drv in functions(expect)]
    if not j or j[0].get("domain") != VM or entries != want:
        raise Broken(f"after prepare the journal is {j}, expected a header for {VM} and {want}")


def check_released(emu, state, expect):
    for f, drv in functions(expect):
        d = driver_of(emu, f)
        o = emu.read(f"bus/pci/devices/{f}/driver_override").strip()
        if d != drv or o != "(null)":
            raise Broken(f"after release {f} is on {d or 'no driver'!r} with driver_override {o!r}, "
                         f"expected {drv!r} / '(null)'")
    for b in expect["bridges"]:
        d = driver_of(emu, b)
        if d not in ("", "pcieport"):
            raise Broken(f"bridge {b} is on {d!r}")
    left = os.listdir(os.path.join(state, "journal"))
    if left:
        raise Broken(f"after release STATE/journal holds {left}")
    res = os.path.join(state, "reservations", f"{VM}.json")
    if os.path.exists(res):
        raise Broken(f"after release the reservation {res} is still there")
    if emu.dev_vfio():
        raise Broken(f"after release /dev/vfio still has groups {emu.dev_vfio()}")


def transform(bindir, emu, expect, state, empty, env, workdir):
    with open(DOMAIN_XML) as f:
        xml = f.read()
    if xml.count('count="1"') != 1:
        raise Broken(f"{DOMAIN_XML}: expected exactly one count=\"1\" request to turn into {N_GPUS}")
    dom = os.path.join(workdir, "domain-request.xml")
    with open(dom, "w") as f:
        f.write(xml.replace('count="1"', f'count="{N_GPUS}"'))
    argv = [os.path.join(bindir, "libvirt-vm-xml-transformer"), "--sysfs-root", emu.root,
            "--state-dir", state, "--no-libvirt", "--domain-xml-dir", empty, dom]
    _, _, code, out, err = run_once(argv, env, os.devnull, workdir)
    if code != 0 or err:
        raise Broken(f"transformer exited {code}: {err[:300]!r}")
    if emu.writes():
        raise Broken(f"the transformer wrote to sysfs: {emu.writes()[:2]}")
    text = out.decode()
    for f, _ in functions(expect):
        if f'address="{f}"' not in text:
            raise Broken(f"the transformer's allocation record does not name {f}")
    path = os.path.join(workdir, "domain-allocated.xml")
    with open(path, "wb") as f:
        f.write(out)
    return path


def make_nvidia_nodes(emu):
    """/dev/nvidia0..3 and /dev/nvidiactl in the emulator's dev directory, as the nvidia
    driver creates them (empty files, like the emulator's /dev/vfio nodes). Without them a
    prepare finds no node to look for holders of (no DRM nodes, no /dev/vfio/GROUP yet) and
    skips the scan of /proc it makes on a real host."""
    for name in [f"nvidia{i}" for i in range(N_GPUS)] + ["nvidiactl"]:
        open(os.path.join(emu.dev_dir, name), "w").close()


def bench(bindir, emu, expect, runs, warmup, env, workdir):
    state = os.path.join(workdir, "state")
    empty = os.path.join(workdir, "no-domains")
    os.makedirs(state)
    os.makedirs(empty)
    xml = transform(bindir, emu, expect, state, empty, env, workdir)
    hook = os.path.join(bindir, "libvirt-vm-state-change")
    common = [hook, "--sysfs-root", emu.root, "--state-dir", state, "--dev-dir", emu.dev_dir, VM]
    ops = (("prepare", ["prepare", "begin", "-"], check_prepared),
           ("release", ["release", "end", "-"], check_released))
    res = {"prepare": [], "release": [], "pair": []}
    for i in range(warmup + runs):
        pair = {}
        for name, args, check in ops:
            since = len(emu.writes())
            ru, wall, code, out, err = run_once(common + args, env, xml, workdir)
            if code != 0 or out or err:
                raise Broken(f"pair {i + 1} {name}: exit {code}, stdout {out[:200]!r}, stderr {err[:300]!r}")
            check_writes(emu, since, expect, name)
            check(emu, state, expect)
            m = {"cpu": (ru.ru_utime + ru.ru_stime) * 1000.0, "user": ru.ru_utime * 1000.0,
                 "sys": ru.ru_stime * 1000.0, "wall": wall * 1000.0, "csw": ru.ru_nvcsw}
            if i >= warmup:
                res[name].append(m)
                for k, v in m.items():
                    pair[k] = pair.get(k, 0) + v
        if i >= warmup:
            res["pair"].append(pair)
    if not emu.alive():
        raise Broken(f"the emulator died: {emu.stderr()[-300:]}")
    return res


def main(argv):
    ap = argparse.ArgumentParser(description="Benchmark libvirt-vm-state-change: prepare + release of 4 GPUs.")
    ap.add_argument("--bindir", default=os.path.join(SRC, "build", "hooks"),
                    help="directory of libvirt-vm-xml-transformer and libvirt-vm-state-change (build/hooks)")
    ap.add_argument("--runs", type=int, default=20, help="timed prepare+release pairs (20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed pairs first (3)")
    ap.add_argument("--enforce", action="store_true", help="exit 1 when the target is missed")
    ap.add_argument("--no-nvidia-nodes", action="store_true",
                    help="no /dev/nvidiaN in the dev directory (prepare then skips its scan of /proc)")
    ap.add_argument("--workdir", help="build the host and keep the state here instead of a temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv[1:])
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1 and --warmup >= 0")
    bindir = os.path.abspath(args.bindir)
    for b in ("libvirt-vm-xml-transformer", "libvirt-vm-state-change"):
        if not os.access(os.path.join(bindir, b), os.X_OK):
            ap.error(f"{os.path.join(bindir, b)} is not executable")

    if args.workdir:
        workdir = os.path.abspath(args.workdir)
        if os.path.exists(workdir) and os.listdir(workdir):
            ap.error(f"--workdir {workdir} is not empty")
        os.makedirs(workdir, exist_ok=True)
    else:
        workdir = tempfile.mkdtemp(prefix="gpuh-bench-sc.", dir=scratch_parent())
    env = child_env(workdir)
    res = None
    broken = None
    rt_us = None
    nproc = 0
    try:
        bindir = pin_binaries(bindir, workdir)
        t = time.perf_counter()
        host_dir = os.path.join(workdir, "host")
        expect = mkpthost.build(host_dir, quiet=True)
        print(f"built host: {len(expect['gpus'])} GPUs {expect['gpu_id']}, each with its audio "
              f"companion, in groups {', '.join(str(g['group']) for g in expect['gpus'])} "
              f"({time.perf_counter() - t:.1f} s)", flush=True)
        try:
            with Emulator(os.path.join(host_dir, "sys")) as emu:
                if not args.no_nvidia_nodes:
                    make_nvidia_nodes(emu)
                nproc = sum(1 for n in os.listdir("/proc") if n.isdigit())
                try:
                    res = bench(bindir, emu, expect, args.runs, args.warmup, env, workdir)
                except Broken as e:
                    broken = str(e)
                    print(f"BROKEN: {e}", flush=True)
                rt_us = fuse_round_trip_us(emu)
                if emu.stderr().strip():
                    print(f"emulator stderr: {emu.stderr().strip()[-500:]}")
        except Skip as e:
            print(f"SKIP: {e}")
            return 77
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept in {workdir}")

    print()
    print(f"{'step':<16} {'CPU median ms':>14} {'min ms':>7} {'max ms':>7} {'user ms':>8} {'sys ms':>7} "
          f"{'vol. csw':>9} {'wall median ms':>15} {'max ms':>7}")
    labels = (("prepare", "prepare begin"), ("release", "release end"), ("pair", "prepare+release"))
    for key, label in labels:
        if res is None:
            print(f"{label:<16} {'broken':>14}")
            continue
        med = {k: statistics.median(m[k] for m in res[key]) for k in res[key][0]}
        cpu = [m["cpu"] for m in res[key]]
        wall = [m["wall"] for m in res[key]]
        print(f"{label:<16} {med['cpu']:>14.2f} {min(cpu):>7.2f} {max(cpu):>7.2f} {med['user']:>8.2f} "
              f"{med['sys']:>7.2f} {med['csw']:>9.0f} {med['wall']:>15.2f} {max(wall):>7.2f}")
    print(f"({args.runs} timed pairs after {args.warmup} warm-up pairs; CPU = user+sys of the hook and its "
          f"reaped write helper (wait4), medians per column; {nproc} processes in /proc for holder detection"
          f"{'' if args.no_nvidia_nodes else ', /dev/nvidia0-3 present'})")
    if res is not None and rt_us:
        med = {k: statistics.median(m[k] for m in res["pair"]) for k in ("cpu", "csw")}
        fuse = med["csw"] * rt_us / 1000.0
        print(f"FUSE: about {rt_us:.1f} us of the caller's CPU per round trip (stat through the emulator "
              f"against its backing tree); {med['csw']:.0f} voluntary context switches per pair: about "
              f"{fuse:.1f} ms, so about {max(med['cpu'] - fuse, 0.0):.1f} ms without them "
              "(an estimate, for information; the target is on the measured CPU)")

    print()
    if broken:
        print("BROKEN run: the target cannot be judged")
        print(f"  {broken}")
        return 1
    med = statistics.median(m["cpu"] for m in res["pair"])
    ok = med <= TARGET_MS
    print(f"target prepare+release of {N_GPUS} GPUs with companions: CPU median {med:.2f} ms "
          f"<= {TARGET_MS:g} ms: {'ok' if ok else 'MISSED'}")
    if not ok:
        print(f"missed: prepare+release CPU{'' if args.enforce else ' (not enforced)'}")
        return 1 if args.enforce else 0
    print("all targets hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
