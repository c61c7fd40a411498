#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""demo.py: gpuhooks on a bundled fixture host, step by step, showing each command and its output.

  /usr/bin/python3 tools/demo.py [--build BUILD]

On the DGX-2 fixture host (16 Tesla V100, fixtures/hosts/dgx2-v100-nvswitch):
  1. gpudiscovery --format table: the inventory, with the domains of the host's libvirt
     test-driver XML using some GPUs;
  2. libvirt-vm-xml-transformer called as the CloudStack agent calls it, on the agent's domain XML
     of a VM with a V100 (fixtures/domains/11-agent-cs421-pci-v100.xml): the hostdev it keeps and
     completes, and the allocation record;
  3. libvirt-vm-state-change's prepare and release under the FUSE sysfs emulator (tests/emu),
     which answers writes as the kernel does: each bind, with its old and new driver, then its
     undo. Without root or FUSE this step shows the --dry-run plan instead.
Everything happens in a temporary directory; nothing on this machine is touched.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def show(cmd, stdin=None, env=None, keep=None):
    """Print the command as an operator would type it, run it, print its output (or the lines
    matching @keep). Returns the completed process."""
    shown = " ".join(("'%s...'" % a[:40].replace("\n", " ") if "\n" in a else a) for a in cmd)
    print("\n$ " + shown.replace(SRC + "/", ""), flush=True)
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env)
    out = p.stdout
    if keep:
        out = "\n".join(l for l in out.splitlines() if re.search(keep, l))
    if out:
        print(out.rstrip("\n"))
    if p.stderr:
        print(p.stderr.rstrip("\n"))
    if p.returncode:
        print("(exit %d)" % p.returncode)
    return p


def heading(text):
    print("\n" + "=" * 100 + "\n" + text + "\n" + "=" * 100, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    hooks = os.path.join(build, "hooks")
    host = os.path.join(build, "fixtures", "hosts", "dgx2-v100-nvswitch")
    if not os.path.isdir(host) or not os.access(os.path.join(hooks, "gpudiscovery"), os.X_OK):
        sys.exit("demo.py: build first: cmake -S . -B build && cmake --build build")
    tmp = tempfile.mkdtemp(prefix="gpuhooks-demo-")
    state = os.path.join(tmp, "state")
    conf = os.path.join(tmp, "gpuhooks.json")
    with open(conf, "w") as f:
        json.dump({"state_change": {"write_timeout_ms": 5000}}, f)
    env = dict(os.environ, GPUHOOKS_CONFIG=conf, GPUHOOKS_STATE_DIR=state,
               GPUHOOKS_CACHE_DIR=os.path.join(tmp, "cache"))
    try:
        heading("1. gpudiscovery: the GPU inventory of the fixture host (its libvirt domains from libvirt's test driver)")
        show([os.path.join(hooks, "gpudiscovery"), "--format", "table", "--sysfs-root", os.path.join(host, "sys"),
              "--connect", "test://" + os.path.join(host, "libvirt.xml")], env=env)

        heading("2. libvirt-vm-xml-transformer, as the CloudStack agent calls it: METHOD and the whole XML as one argument")
        with open(os.path.join(SRC, "fixtures", "domains", "11-agent-cs421-pci-v100.xml")) as f:
            xml = f.read()
        print("\nThe agent's XML asks for the V100 at 0000:36:00.0 with CloudStack's own hostdev:")
        for l in xml.splitlines():
            if "<hostdev" in l or "<address domain" in l:
                print("  " + l.strip())
        tenv = dict(env, GPUHOOKS_SYSFS_ROOT=os.path.join(host, "sys"),
                    LIBVIRT_DEFAULT_URI="test://" + os.path.join(host, "libvirt.xml"))
        p = show([os.path.join(hooks, "libvirt-vm-xml-transformer"), "transform", xml], env=tenv,
                 keep=r"^\s*<(/?hostdev|address domain|metadata)")
        out = p.stdout
        print("\n(the complete XML goes back to the agent; managed='no': the state-change hook binds, not libvirt)")
        vm = re.search(r"<name>([^<]+)</name>", out).group(1)

        heading("3. libvirt-vm-state-change: libvirt's prepare before QEMU starts, release after it stopped")
        sys.path.insert(0, os.path.join(SRC, "tests", "emu"))
        try:
            import emu
            why = emu.fuse_available()
        except ImportError as e:
            why = str(e)
        if why:
            print("\nThe sysfs emulator cannot run here (%s): what prepare would do, as --dry-run shows it:" % why)
            show([os.path.join(hooks, "libvirt-vm-state-change"), "--sysfs-root", os.path.join(host, "sys"),
                  "--dry-run", vm, "prepare", "begin", "-"], stdin=out, env=env)
            return 0
        with emu.Emulator(os.path.join(host, "sys")) as e:
            senv = dict(env, GPUHOOKS_SYSFS_ROOT=e.root, GPUHOOKS_DEV_DIR=e.dev_dir)
            drv = lambda: os.path.basename(os.readlink(e.path("bus/pci/devices/0000:36:00.0/driver")))
            print("\nThe fixture host is mounted under the sysfs emulator at %s; 0000:36:00.0 is on %s." % (e.root, drv()))
            print("libvirt runs /etc/libvirt/hooks/qemu.d/gpuhooks with the domain XML on stdin:")
            show([os.path.join(hooks, "libvirt-vm-state-change"), "-v", vm, "prepare", "begin", "-"], stdin=out,
                 env=senv)
            print("\n0000:36:00.0 is now on %s; the journal, written before each change:" % drv())
            with open(os.path.join(state, "journal", vm + ".journal")) as f:
                print(f.read().rstrip("\n"))
            print("\nThe domain stops; libvirt runs the hook's release:")
            show([os.path.join(hooks, "libvirt-vm-state-change"), "-v", vm, "release", "end", "-"], stdin=out,
                 env=senv)
            print("\n0000:36:00.0 is back on %s; the sysfs writes the two runs made, in order:" % drv())
            for w in e.writes():
                print("  %-55s <- %-14s %s" % (w["alias"] or w["path"], w["value"].strip() or "(empty)", w["result"]))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
