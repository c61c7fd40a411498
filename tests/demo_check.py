#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""demo_check.py DEMO BUILD: runs the README's demo and checks what it shows: the inventory
table, the transformed hostdev and record, and (with FUSE) the bind and its undo, or (without)
the dry-run plan."""
import subprocess
import sys

p = subprocess.run(["/usr/bin/python3", sys.argv[1], "--build", sys.argv[2]], capture_output=True, text=True,
                   timeout=100)
out = p.stdout
need = ["0000:36:00.0", "GV100GL", "i-2-62-VM",                                  # the inventory
        'managed="no"', '<gpuhooks:device kind="pci" address="0000:36:00.0"']      # the transform
if "sysfs emulator cannot run here" in out:
    need += ['"path": "bus/pci/drivers/nvidia/unbind"']
else:
    need += ['"event":"bind","vm":"i-2-154-VM","device":"0000:36:00.0","old":"nvidia","new":"vfio-pci"',
             "0000:36:00.0 is now on vfio-pci", "0000:36:00.0 is back on nvidia",
             '"event":"unbind","vm":"i-2-154-VM","device":"0000:36:00.0","old":"vfio-pci","new":"nvidia"']
missing = [n for n in need if n not in out]
ok = p.returncode == 0 and not missing and p.stderr == ""
print(("ok" if ok else "FAILED") + " demo: exit %d, missing %s" % (p.returncode, missing))
if not ok:
    print(out[-3000:], p.stderr[-2000:])
sys.exit(0 if ok else 1)
