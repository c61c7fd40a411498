#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""check_facts.py: compare a gpudiscovery inventory with a fixture host's facts.json.

Usage: check_facts.py FACTS.json INVENTORY.json

FACTS.json (fixtures/hosts/<name>/facts.json, format in fixtures/README.md):
  "gpus":  {"<DDDD:BB:SS.F>": {<path>: <value>, ...}}   a GPU object, found by its address
  "vfs":   {"<DDDD:BB:SS.F>": {...}}                     a vf_instances[] entry of any GPU
  "vgpus": {"<uuid>": {...}}                             a vgpu_instances[] entry of any GPU
  "absent": ["<DDDD:BB:SS.F>", ...]                      must not be listed as a GPU
  "gpu_count": N                                         length of the inventory's gpus array
  "top":   {<path>: <value>}                             paths into the whole inventory
A <path> is dotted ("full_passthrough.libvirt_address.bus"; a numeric part indexes an
array: "vgpu_instances.0.mdev_uuid"); "#<path>" means the length of the array or object at <path>.
Values compare as JSON: types must match (1 is not true, "1" is not 1).

Prints one line per mismatch and exits 1 if there is any; otherwise prints "N facts ok" and
exits 0. Exit 2 on a usage error or unreadable input.
"""
import json
import sys

MISSING = object()


def load(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"check_facts.py: {what} {path}: {e}\n")
        sys.exit(2)


def full_address(addr):
    """'08:00.0' -> '0000:08:00.0'; full addresses unchanged; lowercase."""
    if not isinstance(addr, str):
        return None
    addr = addr.lower()
    return addr if addr.count(":") == 2 else "0000:" + addr


def resolve(obj, path):
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, MISSING)
        elif isinstance(cur, list) and part.isdigit():
            i = int(part)
            cur = cur[i] if i < len(cur) else MISSING
        else:
            return MISSING
        if cur is MISSING:
            return MISSING
    return cur


def same(a, b):
    """JSON equality that keeps bool, int, float and null apart."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def show(v):
    return "<missing>" if v is MISSING else json.dumps(v, sort_keys=True)


class Checker:
    def __init__(self):
        self.ok = 0
        self.bad = []

    def fail(self, msg):
        self.bad.append(msg)

    def check_obj(self, where, obj, facts):
        for key, want in facts.items():
            if key.startswith("#"):
                got = resolve(obj, key[1:])
                got = len(got) if isinstance(got, (list, dict)) else MISSING
            else:
                got = resolve(obj, key)
            if got is not MISSING and same(got, want):
                self.ok += 1
            else:
                self.fail(f"{where}.{key}: expected {show(want)}, got {show(got)}")


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: check_facts.py FACTS.json INVENTORY.json\n")
        return 2
    facts = load(argv[1], "facts")
    inv = load(argv[2], "inventory")
    if not isinstance(facts, dict) or not isinstance(inv, dict):
        sys.stderr.write("check_facts.py: both files must hold a JSON object\n")
        return 2
    gpus_list = inv.get("gpus")
    if not isinstance(gpus_list, list):
        gpus_list = []
    c = Checker()

    gpus, vfs, vgpus = {}, {}, {}
    for g in gpus_list:
        if not isinstance(g, dict):
            continue
        addr = full_address(resolve(g, "gpuhooks.address")) or full_address(g.get("pci_address"))
        if addr in gpus:
            c.fail(f"gpus[{addr}]: listed twice")
        gpus[addr] = g
        for v in g.get("vf_instances") or []:
            if isinstance(v, dict):
                a = full_address(resolve(v, "gpuhooks.address"))
                vfs[a or full_address(v.get("vf_pci_address"))] = v
        for m in g.get("vgpu_instances") or []:
            if isinstance(m, dict) and isinstance(m.get("mdev_uuid"), str):
                vgpus[m["mdev_uuid"].lower()] = m

    for section, index, label in (("gpus", gpus, "gpus"), ("vfs", vfs, "vfs"),
                                  ("vgpus", vgpus, "vgpus")):
        for key, fl in (facts.get(section) or {}).items():
            k = key.lower() if section == "vgpus" else full_address(key)
            obj = index.get(k)
            where = f"{label}[{key}]"
            if obj is None:
                c.fail(f"{where}: missing from inventory ({len(fl)} facts not checked)")
                continue
            c.check_obj(where, obj, fl)
    for addr in facts.get("absent") or []:
        if full_address(addr) in gpus:
            c.fail(f"absent[{addr}]: listed as a GPU")
        else:
            c.ok += 1
    if "gpu_count" in facts:
        if len(gpus_list) == facts["gpu_count"]:
            c.ok += 1
        else:
            c.fail(f"gpu_count: expected {facts['gpu_count']}, got {len(gpus_list)}")
    if facts.get("top"):
        c.check_obj("top", inv, facts["top"])

    for line in c.bad:
        print(line)
    if c.bad:
        sys.stderr.write(f"{len(c.bad)} of {len(c.bad) + c.ok} facts failed\n")
        return 1
    print(f"{c.ok} facts ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
