#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench_discovery.py: time gpudiscovery on large fake SR-IOV vGPU hosts.

Usage: bench_discovery.py --binary PATH [--runs 30] [--warmup 3] [--enforce]
                          [--workdir DIR] [--keep]

Builds two hosts with mkbighost.py (8 PFs / 64 domains and 32 PFs / 256 domains; each PF has
16 VFs with 18 mdev types each, an mdev on every third VF) and runs, for each host,

  no-libvirt:   PATH --sysfs-root OUT/sys --no-libvirt
                     --domain-xml-dir OUT/run/libvirt/qemu --domain-xml-dir OUT/etc/libvirt/qemu
  libvirt-test: PATH --sysfs-root OUT/sys --connect test:///OUT/libvirt.xml

--warmup times untimed, then --runs timed runs. Each run goes through a 30-line C helper
compiled into the work directory (stdin /dev/null, stdout and stderr to files): it forks,
execs PATH and reaps it with wait4; wall time is fork to reap (CLOCK_MONOTONIC), peak RSS the
child's ru_maxrss. The helper exists because a child spawned straight from Python inherits
Python's peak RSS in ru_maxrss (the kernel records the old address space's high-water mark
at exec); without a C compiler the script spawns directly and says the RSS is an upper
bound. The environment is the caller's without GPUHOOKS_* and
LIBVIRT_DEFAULT_URI, plus GPUHOOKS_CONFIG pointing at install/gpuhooks.json (the defaults)
and GPUHOOKS_CACHE_DIR in the work directory (the libpci names cache, warm after warm-up),
so a config file on the machine cannot change the result.

A run only counts when it is correct: exit status 0, nothing on stderr (the agent merges
stderr into the JSON), and stdout byte-identical to the first run's, which is checked in
full: strict JSON, N GPUs at the PF addresses the host has, 16 VFs each, the number of
mdevs created, every device a domain uses reported with that domain's name (expectations
from OUT/spec/expect.json), vm_usage 'domain-xml' or 'libvirt' as the mode implies, and no
error from tests/e2e/agent_rules.py.

Prints a table (host, mode, median ms, p90 ms, peak RSS MiB), the 32-PF/8-PF ratio of the
no-libvirt medians, and whether the targets hold:
  no-libvirt, 8 PFs: median <= 15 ms, peak RSS <= 16 MiB; 32-PF median <= 4.5 x 8-PF median.

Exit status: 0; 1 when a run is broken (always, the numbers would mean nothing) or, with
--enforce, when a target is missed; 2 on a usage error.
"""
import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
HOSTS = [(8, 64), (32, 256)]
TARGET_MS = 15.0
TARGET_RSS_MIB = 16.0
TARGET_RATIO = 4.5


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


mkbighost = load_module("mkbighost", os.path.join(HERE, "mkbighost.py"))
agent_rules = load_module("agent_rules", os.path.join(SRC, "tests", "e2e", "agent_rules.py"))


class Broken(Exception):
    pass


def child_env(workdir):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GPUHOOKS_") and k != "LIBVIRT_DEFAULT_URI"}
    cfg = os.path.join(SRC, "install", "gpuhooks.json")
    if not os.path.exists(cfg):
        cfg = os.path.join(workdir, "gpuhooks.json")
        with open(cfg, "w") as f:
            f.write("{}\n")
    env["GPUHOOKS_CONFIG"] = cfg
    # The names cache as in production (warm after the warm-up runs), but in the work
    # directory, never the machine's /var/cache.
    env["GPUHOOKS_CACHE_DIR"] = os.path.join(workdir, "cache")
    return env


# Why a helper: at exec the kernel records the *old* address space's peak RSS into the new
# program's ru_maxrss (fs/exec.c, setmax_mm_hiwater_rss), so a child spawned straight from
# this Python process reports at least Python's own peak (20-40 MiB here, /bin/true included).
# A tiny C parent keeps that floor at about 1 MiB; it also times fork-to-reap with
# CLOCK_MONOTONIC. It writes "wall_ns maxrss_kib exit_code" to fd 3.
HELPER_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
        struct timespec t0, t1;
        struct rusage ru;
        int status;
        pid_t pid;

        if (argc < 2 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
                return 127;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid = fork();
        if (pid < 0)
                return 127;
        if (pid == 0) {
                execv(argv[1], argv + 1);
                _exit(127);
        }
        if (wait4(pid, &status, 0, &ru) < 0)
                return 127;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        dprintf(3, "%lld %ld %d\n",
                (long long) (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
                ru.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
}
"""


def build_helper(workdir):
    """Compile the spawn helper; None when no C compiler works."""
    src = os.path.join(workdir, "spawnrss.c")
    exe = os.path.join(workdir, "spawnrss")
    with open(src, "w") as f:
        f.write(HELPER_C)
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-O2", "-o", exe, src], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return exe if r.returncode == 0 else None


def run_once(helper, argv, env, workdir):
    """One run. Returns (wall seconds, ru_maxrss KiB, exit code); stdout and stderr are left
    in WORKDIR/out.json and WORKDIR/err.txt."""
    fds = [os.open(os.path.join(workdir, n), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
           for n in ("out.json", "err.txt", "report.txt")]
    try:
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, fds[0], 1),
                   (os.POSIX_SPAWN_DUP2, fds[1], 2)]
        if helper:
            actions.append((os.POSIX_SPAWN_DUP2, fds[2], 3))
            pid = os.posix_spawn(helper, [helper] + argv, env, file_actions=actions)
            _, status, _ = os.wait4(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise Broken(f"spawn helper failed (status {status}) running {argv[0]}")
            with open(os.path.join(workdir, "report.txt")) as f:
                ns, maxrss, code = (int(x) for x in f.read().split())
            return ns / 1e9, maxrss, code
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter()
        return t1 - t0, ru.ru_maxrss, os.waitstatus_to_exitcode(status)
    finally:
        for fd in fds:
            os.close(fd)


def check_output(raw, expect, mode):
    """Full correctness check of one output; raises Broken."""
    c = agent_rules.Checker()
    c.run(raw)
    if c.errors:
        p, m = c.errors[0]
        raise Broken(f"agent_rules: {len(c.errors)} errors, first: {p}: {m}")
    doc = json.loads(raw)
    gpus = doc.get("gpus")
    if not isinstance(gpus, list) or len(gpus) != expect["gpus"]:
        raise Broken(f"expected {expect['gpus']} GPUs, got "
                     f"{len(gpus) if isinstance(gpus, list) else type(gpus).__name__}")
    addrs = [g.get("gpuhooks", {}).get("address") for g in gpus]
    if addrs != sorted(expect["pf_addresses"]):
        raise Broken(f"GPU addresses differ from the host's PFs: {addrs[:4]}...")
    n_vfs = sum(len(g["vf_instances"]) for g in gpus)
    n_vgpus = sum(len(g["vgpu_instances"]) for g in gpus)
    if n_vfs != expect["vfs"] or n_vgpus != expect["vgpus"]:
        raise Broken(f"expected {expect['vfs']} VFs and {expect['vgpus']} vGPUs, "
                     f"got {n_vfs} and {n_vgpus}")
    want_src = "domain-xml" if mode == "no-libvirt" else "libvirt"
    src = doc.get("gpuhooks", {}).get("vm_usage")
    if src != want_src:
        raise Broken(f"vm_usage is {src!r}, expected {want_src!r}")
    used = {}
    for g in gpus:
        if g["full_passthrough"]["used_by_vm"]:
            used[g["gpuhooks"]["address"]] = g["full_passthrough"]["used_by_vm"]
        for v in g["vf_instances"]:
            if v["used_by_vm"]:
                used[v["gpuhooks"]["address"]] = v["used_by_vm"]
        for v in g["vgpu_instances"]:
            if v["used_by_vm"]:
                used[v["mdev_uuid"]] = v["used_by_vm"]
    if used != expect["used"]:
        missing = sorted(set(expect["used"]) - set(used))
        extra = sorted(set(used) - set(expect["used"]))
        wrong = sorted(k for k in set(used) & set(expect["used"]) if used[k] != expect["used"][k])
        raise Broken(f"used_by_vm differs: {len(missing)} missing {missing[:2]}, {len(extra)} unexpected "
                     f"{extra[:2]}, {len(wrong)} with another domain {wrong[:2]}")


def percentile(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(1, -(-len(s) * p // 100))
    return s[int(k) - 1]


def bench(helper, binary, host_dir, expect, mode, runs, warmup, env, workdir):
    if mode == "no-libvirt":
        argv = [binary, "--sysfs-root", f"{host_dir}/sys", "--no-libvirt",
                "--domain-xml-dir", f"{host_dir}/run/libvirt/qemu",
                "--domain-xml-dir", f"{host_dir}/etc/libvirt/qemu"]
    else:
        argv = [binary, "--sysfs-root", f"{host_dir}/sys", "--connect", f"test://{host_dir}/libvirt.xml"]
    out = os.path.join(workdir, "out.json")
    err = os.path.join(workdir, "err.txt")
    reference = None
    times, rss = [], []
    for i in range(warmup + runs):
        wall, maxrss, code = run_once(helper, argv, env, workdir)
        with open(out, "rb") as f:
            raw = f.read()
        with open(err, "rb") as f:
            errtext = f.read()
        if code != 0:
            raise Broken(f"exit status {code}; stderr: {errtext[:300]!r}")
        if errtext:
            raise Broken(f"wrote to stderr (the agent would parse it as JSON): {errtext[:300]!r}")
        if reference is None:
            check_output(raw, expect, mode)
            reference = raw
        elif raw != reference:
            raise Broken(f"run {i + 1}: output differs from the first run (not byte-stable)")
        if i >= warmup:
            times.append(wall * 1000.0)
            rss.append(maxrss / 1024.0)
    return {"median": statistics.median(times), "p90": percentile(times, 90),
            "rss": max(rss), "bytes": len(reference), "argv": argv}


def main(argv):
    ap = argparse.ArgumentParser(description="Benchmark gpudiscovery on large fake hosts.")
    ap.add_argument("--binary", required=True, help="the gpudiscovery binary")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per host and mode (30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs first (3)")
    ap.add_argument("--enforce", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--workdir", help="build the hosts here instead of a temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv[1:])
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1 and --warmup >= 0")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        ap.error(f"{binary} is not executable")

    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="gpuh-bench.")
    os.makedirs(workdir, exist_ok=True)
    env = child_env(workdir)
    helper = build_helper(workdir)
    if not helper:
        print("warning: no working C compiler ($CC or cc): spawning directly, so peak RSS includes "
              "this script's own (an upper bound) and wall time includes Python's spawn cost")
    results = {}
    broken = []
    try:
        for n, m in HOSTS:
            host = f"{n}pf-{m}vm"
            host_dir = os.path.join(workdir, host)
            t = time.perf_counter()
            expect = mkbighost.build(n, m, host_dir, quiet=True)
            print(f"built {host}: {expect['vfs']} VFs, {expect['vgpus']} mdevs, {m} domains, "
                  f"{len(expect['used'])} devices in use ({time.perf_counter() - t:.1f} s)", flush=True)
            for mode in ("no-libvirt", "libvirt-test"):
                try:
                    results[(n, mode)] = bench(helper, binary, host_dir, expect, mode, args.runs,
                                               args.warmup, env, workdir)
                except Broken as e:
                    broken.append(f"{host} {mode}: {e}")
                    print(f"BROKEN {host} {mode}: {e}", flush=True)
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep or args.workdir:
            print(f"hosts kept in {workdir}")

    print()
    print(f"{'host':<12} {'mode':<13} {'median ms':>10} {'p90 ms':>8} {'peak RSS MiB':>13} {'output KiB':>11}")
    for n, m in HOSTS:
        for mode in ("no-libvirt", "libvirt-test"):
            r = results.get((n, mode))
            host = f"{n}pf-{m}vm"
            if r is None:
                print(f"{host:<12} {mode:<13} {'broken':>10}")
                continue
            print(f"{host:<12} {mode:<13} {r['median']:>10.2f} {r['p90']:>8.2f} {r['rss']:>13.1f} "
                  f"{r['bytes'] / 1024:>11.0f}")
    print(f"({args.runs} timed runs after {args.warmup} warm-up runs each)")

    misses = []
    small, big = results.get((8, "no-libvirt")), results.get((32, "no-libvirt"))
    print()
    if small:
        ok = small["median"] <= TARGET_MS
        print(f"target 8 PFs without libvirt: median {small['median']:.2f} ms <= {TARGET_MS:g} ms: "
              f"{'ok' if ok else 'MISSED'}")
        misses += [] if ok else ["8-PF median"]
        ok = small["rss"] <= TARGET_RSS_MIB
        print(f"target 8 PFs without libvirt: peak RSS {small['rss']:.1f} MiB <= {TARGET_RSS_MIB:g} MiB: "
              f"{'ok' if ok else 'MISSED'}")
        misses += [] if ok else ["8-PF RSS"]
    if small and big:
        ratio = big["median"] / small["median"]
        ok = ratio <= TARGET_RATIO
        print(f"target 32-PF/8-PF without libvirt: ratio {ratio:.2f} <= {TARGET_RATIO:g}: "
              f"{'ok' if ok else 'MISSED'}")
        misses += [] if ok else ["32/8 ratio"]
    if broken:
        print(f"BROKEN runs ({len(broken)}): the targets cannot be judged")
        for b in broken:
            print(f"  {b}")
        return 1
    if misses:
        print(f"missed: {', '.join(misses)}{'' if args.enforce else ' (not enforced)'}")
        return 1 if args.enforce else 0
    print("all targets hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
