#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Wall time of the transformer and of prepare (--dry-run) on huge domain XMLs under the 4 MiB
limit, made as tests/e2e/test_huge.py makes them, on the plain fixture tree of
dgx2-v100-nvswitch (nothing is written there).

  bench_huge.py [--bindir build/hooks] [--hosts build/fixtures/hosts] [--runs 3]

Prints the median per document and hook; exits 1 when a run fails. See tests/bench/README.md.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
import test_huge as T   # noqa: E402  (the generators)


def documents():
    node1 = [str(c) for c in list(range(24, 48)) + list(range(72, 96))]
    pin = "<vcpupin cpuset='24-47,72-80,81-95'/>"
    n = (3 << 20) // len(pin)
    return [
        ("150,000 <vcpupin>s", T.with_pins("".join("<vcpupin cpuset='%s'/>" % node1[i % len(node1)]
                                                    for i in range(150000)))),
        ("%d <vcpupin>s, 18-char cpusets" % n, T.with_pins(pin * n)),
        ("150,000 <vcpupin cpuset='0-8191'/>", T.with_pins("<vcpupin cpuset='0-8191'/>" * 150000)),
        ("20,000 non-GPU <hostdev>s", T.fixture(T.GPU_DOMAIN).replace("<devices>\n", "<devices>\n" +
                                                                       T.non_gpu_hostdevs(20000))),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", default=os.path.join(SRC, "build", "hooks"))
    ap.add_argument("--hosts", default=os.path.join(SRC, "build", "fixtures", "hosts"))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    T.ARGS = argparse.Namespace(hosts=a.hosts, src=SRC)
    host = os.path.join(a.hosts, T.HOST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUHOOKS_")}
    env.pop("LIBVIRT_DEFAULT_URI", None)
    print("%-38s %8s %10s %12s" % ("document", "MiB", "transform s", "prepare s"))
    for label, xml in documents():
        tt, tp = [], []
        for _ in range(a.runs):
            d = tempfile.mkdtemp(prefix="gpuh-bench-huge-")
            try:
                with open(os.path.join(d, "in.xml"), "w") as f:
                    f.write(xml)
                with open(os.path.join(d, "c.json"), "w") as f:
                    f.write("{}")
                env["GPUHOOKS_CACHE_DIR"] = d
                common = ["--config", os.path.join(d, "c.json"), "--sysfs-root", os.path.join(host, "sys"),
                          "--state-dir", os.path.join(d, "state")]
                t0 = time.monotonic()
                p = subprocess.run([os.path.join(a.bindir, "libvirt-vm-xml-transformer")] + common +
                                   ["--connect", "test://" + os.path.join(host, "libvirt.xml"),
                                    os.path.join(d, "in.xml")], capture_output=True, env=env)
                tt.append(time.monotonic() - t0)
                if p.returncode != 0:
                    print("BROKEN transformer on %s: %s" % (label, p.stderr.decode()[:300]))
                    return 1
                t0 = time.monotonic()
                q = subprocess.run([os.path.join(a.bindir, "libvirt-vm-state-change")] + common +
                                   ["--dry-run", "i-2-6-VM", "prepare", "begin", "-"], input=p.stdout,
                                   capture_output=True, env=env)
                tp.append(time.monotonic() - t0)
                if q.returncode != 0:
                    print("BROKEN prepare on %s: %s" % (label, q.stderr.decode()[:300]))
                    return 1
            finally:
                shutil.rmtree(d, ignore_errors=True)
        print("%-38s %8.2f %10.2f %12.2f" % (label, len(xml) / (1 << 20), statistics.median(tt),
                                            statistics.median(tp)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
