#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark libvirt-vm-xml-transformer: a real-size CloudStack domain XML (the 4.19 agent form,
fixtures/domains/01) asking for 4 vGPUs, on the 8-PF fake host of bench_discovery.py.

  bench_transform.py --binary build/hooks/libvirt-vm-xml-transformer [--runs 30] [--enforce]

Each timed run starts from an empty state directory, so every run selects and reserves anew
(a second transform of the same domain would reuse its reservation). A run counts only when it
exits 0, writes nothing on stderr and returns the document with exactly 4 new hostdevs.
Targets (docs: issue 3): median <= 20 ms and peak RSS <= 16 MiB, without libvirt; the libvirt
test-driver row is for information.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench_discovery as bd  # noqa: E402  (its spawn helper and host generator)

TARGET_MS = 20.0
TARGET_RSS_MIB = 16.0
REQUEST = ('<metadata><gpuhooks:gpu xmlns:gpuhooks="urn:gpuhooks:domain:1">'
           '<gpuhooks:request count="2" mode="mdev" profile="NVIDIA A10-4Q"/>'
           '<gpuhooks:request count="2" mode="mdev" profile="NVIDIA A10-6Q"/>'
           '</gpuhooks:gpu></metadata>')


def domain_xml():
    with open(os.path.join(SRC, "fixtures", "domains", "01-agent-i-2-154-VM-cs4.19.xml")) as f:
        xml = f.read()
    # the agent puts <metadata> after </features> (4.23+); any place works for the transformer
    return xml.replace("</features>", "</features>" + REQUEST, 1)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--enforce", action="store_true")
    ap.add_argument("--workdir")
    args = ap.parse_args(argv[1:])
    binary = os.path.abspath(args.binary)
    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="gpuh-tbench.")
    os.makedirs(workdir, exist_ok=True)
    env = bd.child_env(workdir)
    helper = bd.build_helper(workdir)
    host_dir = os.path.join(workdir, "8pf-64vm")
    if not os.path.isdir(os.path.join(host_dir, "sys")):
        bd.mkbighost.build(8, 64, host_dir, quiet=True)
    dom = os.path.join(workdir, "domain.xml")
    with open(dom, "w") as f:
        f.write(domain_xml())
    n_in = domain_xml().count("<hostdev")
    results = {}
    try:
        for mode in ("no-libvirt", "libvirt-test"):
            base = [binary, "--sysfs-root", os.path.join(host_dir, "sys")]
            if mode == "no-libvirt":
                base += ["--no-libvirt", "--domain-xml-dir", os.path.join(host_dir, "run", "libvirt", "qemu"),
                         "--domain-xml-dir", os.path.join(host_dir, "etc", "libvirt", "qemu")]
            else:
                base += ["--connect", "test://" + os.path.join(host_dir, "libvirt.xml")]
            times, rss = [], []
            for i in range(args.warmup + args.runs):
                state = os.path.join(workdir, "state")
                shutil.rmtree(state, ignore_errors=True)
                wall, maxrss, code = bd.run_once(helper, base + ["--state-dir", state, dom], env, workdir)
                with open(os.path.join(workdir, "out.json"), "rb") as f:
                    out = f.read()
                with open(os.path.join(workdir, "err.txt"), "rb") as f:
                    err = f.read()
                if code != 0 or err or out.count(b"<hostdev") != n_in + 4:
                    print(f"BROKEN {mode}: exit {code}, stderr {err[:200]!r}, "
                          f"{out.count(b'<hostdev') - n_in} new hostdevs")
                    return 1
                if i >= args.warmup:
                    times.append(wall * 1000)
                    rss.append(maxrss / 1024)
            results[mode] = (statistics.median(times), sorted(times)[int(0.9 * (len(times) - 1))], max(rss))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'mode':<13} {'median ms':>10} {'p90 ms':>8} {'peak RSS MiB':>13}")
    for mode, (med, p90, r) in results.items():
        print(f"{mode:<13} {med:>10.2f} {p90:>8.2f} {r:>13.1f}")
    med, _, r = results["no-libvirt"]
    ok_t, ok_r = med <= TARGET_MS, r <= TARGET_RSS_MIB
    print(f"target without libvirt: median {med:.2f} ms <= {TARGET_MS:g} ms: {'ok' if ok_t else 'MISSED'}")
    print(f"target without libvirt: peak RSS {r:.1f} MiB <= {TARGET_RSS_MIB:g} MiB: {'ok' if ok_r else 'MISSED'}")
    if ok_t and ok_r:
        print("all targets hold")
        return 0
    return 1 if args.enforce else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
