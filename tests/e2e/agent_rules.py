#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""agent_rules.py: check a GPU inventory the way CloudStack's KVM agent parses it.

Usage: agent_rules.py [-v] INVENTORY.json|-
       agent_rules.py --self-test

Independent of schemas/gpu-inventory.schema.json: this re-implements, in Python, what
LibvirtComputingResource.parseGpuDevicesFromResult, getGpuDeviceFromVgpuInstance and
getGpuDeviceFromVfInstance do with the text gpudiscovery prints, with Gson's semantics
(apache/cloudstack, plugins/hypervisors/kvm/.../LibvirtComputingResource.java and
utils/.../script/Script.java, which runs the script with stderr merged into stdout):

  * The raw bytes must be exactly one JSON document (Gson's JsonParser throws "Did not consume
    the entire document" on trailing content; stderr is merged into stdout, so a stray
    diagnostic line breaks the parse).
  * Top level: object with a `gpus` array.
  * Per GPU: `pci_address`, `vendor_id`, `vendor`, `device_id`, `device` read with
    get().getAsString() (missing or null aborts the whole parse; a number or boolean would be
    coerced by Gson, but gpuhooks' rule is "strings", so it is an error here too);
    `vgpu_instances`, `vf_instances` getAsJsonArray(); `full_passthrough` getAsJsonObject() with
    `enabled` read by getAsInt() == 1 (a boolean aborts) and `used_by_vm` a null-safe string;
    `numa_node` (number or string), `pci_root` (string) optional; `max_instances`, `video_ram`,
    `max_heads`, `max_resolution_x`, `max_resolution_y` null-safe getAsLong() (a non-numeric
    string aborts).
  * vGPU entries: `profile_name` null or empty -> the entry is skipped (a warning here);
    `mdev_uuid` becomes the busAddress.
  * VF entries: `vf_pci_address` and `vf_profile` required strings (null aborts the whole
    parse); `vf_profile` "" -> the entry is skipped (a warning here).
  * busAddress strings (pci_address, vf_pci_address, mdev_uuid) must be unique on the host:
    the management server keys devices by them.

Any exception inside the agent's loop ends the parse and the agent keeps the devices built so
far; errors that the agent would die on are marked "(agent aborts)". With -v the tool prints
one line per VgpuTypesInfo the agent would build, in the order it builds them (the PF entry,
then its vGPU entries, then its VF entries; the exact order of field reads inside the Java code
is not known, so the cut-off after an abort is an approximation). passthroughEnabled is printed
for the PF entries only; the JSON gives no value for child devices.

Messages go to stdout as `ERROR <json-path>: text` and `WARNING <json-path>: text`; then a
summary line. Exit status: 0 when there is no error, 1 otherwise, 2 on a usage error.
"""
import json
import re
import signal
import sys

LONG_FIELDS = ("max_instances", "video_ram", "max_heads", "max_resolution_x", "max_resolution_y")
REQUIRED_GPU_STRINGS = ("pci_address", "vendor_id", "vendor", "device_id", "device")
JAVA_INT_MIN, JAVA_INT_MAX = -(1 << 31), (1 << 31) - 1
JAVA_LONG_MIN, JAVA_LONG_MAX = -(1 << 63), (1 << 63) - 1

# The two address forms LibvirtGpuDef splits on ':' (older agents only the first).
RE_BDF_SHORT = re.compile(r"[0-9a-f]{2}:[01][0-9a-f]\.[0-7]\Z")
RE_BDF_LONG = re.compile(r"(?:[0-9a-f]{4}|[1-9a-f][0-9a-f]{4}):[0-9a-f]{2}:[01][0-9a-f]\.[0-7]\Z")
RE_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
RE_JAVA_INT = re.compile(r"[+-]?[0-9]+\Z")


class JObject(dict):
    """A JSON object that remembers keys given more than once (Gson keeps the last one)."""
    dups = ()


def _pairs_hook(pairs):
    obj = JObject()
    dups = []
    for k, v in pairs:
        if k in obj:
            dups.append(k)
        obj[k] = v
    obj.dups = tuple(dups)
    return obj


def _bad_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def jpath(parts):
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


class Device:
    """One com.cloud.agent.api.VgpuTypesInfo as the agent would build it."""

    def __init__(self, kind, model, bus, parent, enabled, vm):
        self.kind, self.model, self.bus, self.parent = kind, model, bus, parent
        self.enabled, self.vm = enabled, vm

    def line(self):
        def s(v):
            return "-" if v is None else json.dumps(v) if isinstance(v, (str, bool)) else str(v)
        return (f"{self.kind:<4} modelName={s(self.model)} busAddress={s(self.bus)} "
                f"parentBusAddress={s(self.parent)} passthroughEnabled={s(self.enabled)} vmName={s(self.vm)}")


class Checker:
    def __init__(self):
        self.errors = []        # (path, message)
        self.warnings = []
        self.devices = []       # Device, in build order
        self.aborted = False    # the agent's loop would have thrown by now
        self.abort_note = None
        self.n_gpus = 0

    # ---- reporting -------------------------------------------------------------------
    def error(self, path, msg, aborts=False):
        if aborts:
            msg += " (agent aborts)"
            if not self.aborted:
                self.aborted = True
                self.abort_note = jpath(path)
        self.errors.append((jpath(path), msg))

    def warn(self, path, msg):
        self.warnings.append((jpath(path), msg))

    def add_device(self, dev):
        if not self.aborted:
            self.devices.append(dev)

    # ---- Gson accessors --------------------------------------------------------------
    def get_as_string(self, obj, key, path, required):
        """obj.get(key).getAsString() (required) or the null-safe variant. Returns str or None."""
        p = path + [key]
        if key not in obj:
            if required:
                self.error(p, "missing", aborts=True)
            return None
        v = obj[key]
        t = jtype(v)
        if t == "string":
            return v
        if t == "null":
            if required:
                self.error(p, "is null; getAsString() on JsonNull throws", aborts=True)
            return None
        if t in ("integer", "number", "boolean"):
            self.error(p, f"is a JSON {t} ({json.dumps(v)}); Gson would coerce it, but it must be a string")
            return json.dumps(v)
        if t == "array" and len(v) == 1 and jtype(v[0]) not in ("array", "object", "null"):
            self.error(p, "is a 1-element array; Gson would unwrap it, but it must be a string")
            return v[0] if isinstance(v[0], str) else json.dumps(v[0])
        self.error(p, f"is a JSON {t}; getAsString() throws", aborts=True)
        return None

    def get_long(self, obj, key, path):
        """Null-safe getAsLong(): absent or null is fine, an integer is required."""
        p = path + [key]
        if key not in obj or obj[key] is None:
            return None
        v = obj[key]
        t = jtype(v)
        if t == "integer":
            if not JAVA_LONG_MIN <= v <= JAVA_LONG_MAX:
                self.error(p, f"{v} does not fit a Java long")
            elif v < 0:
                self.error(p, f"{v} is negative")
            return v
        if t == "number":
            self.error(p, f"{json.dumps(v)} is not an integer (Gson would truncate it)")
            return int(v)
        if t == "string":
            if RE_JAVA_INT.match(v):
                self.error(p, f"is the string {json.dumps(v)}; Gson would parse it, but it must be an integer or null")
                return int(v)
            self.error(p, f"is the non-numeric string {json.dumps(v)}; getAsLong() throws NumberFormatException",
                       aborts=True)
            return None
        if t == "array" and len(v) == 1 and jtype(v[0]) == "integer":
            self.error(p, "is a 1-element array; Gson would unwrap it, but it must be an integer or null")
            return v[0]
        self.error(p, f"is a JSON {t}; getAsLong() throws", aborts=True)
        return None

    def get_array(self, obj, key, path):
        p = path + [key]
        if key not in obj:
            self.error(p, "missing; getAsJsonArray() on null throws NullPointerException", aborts=True)
            return []
        if jtype(obj[key]) != "array":
            self.error(p, f"is a JSON {jtype(obj[key])}, not an array; getAsJsonArray() throws", aborts=True)
            return []
        return obj[key]

    def check_dups(self, obj, path):
        for k in getattr(obj, "dups", ()):
            self.error(path + [k], "key given more than once (Gson silently keeps the last value)")

    def check_bus_address_pci(self, addr, path):
        if addr is None:
            return
        if addr == "":
            self.error(path, "empty busAddress")
        elif addr.startswith("0000:") and RE_BDF_LONG.match(addr):
            self.error(path, f"{addr!r}: domain 0000 must use the short form 'BB:SS.F' "
                             "(agents before #12981 turn 'DDDD:BB:SS.F' into an invalid libvirt <address>)")
        elif not (RE_BDF_SHORT.match(addr) or RE_BDF_LONG.match(addr)):
            self.error(path, f"{addr!r} is not 'BB:SS.F' or 'DDDD:BB:SS.F' (lowercase hex; LibvirtGpuDef "
                             "copies the parts into the libvirt <address>)")

    def check_model_name(self, model, path):
        if model == "passthrough":
            self.warn(path, "modelName 'passthrough' collides with the card's default whole-GPU profile")

    # ---- the parse -------------------------------------------------------------------
    def check_text(self, raw):
        """raw: bytes of the whole output. Returns the parsed document or None."""
        if not raw.strip():
            self.error([], "empty output (the agent logs 'GPU discovery failed' and reports no GPUs)", aborts=True)
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.error([], f"output is not UTF-8: {e}", aborts=True)
            return None
        if text.startswith("\ufeff"):
            self.error([], "output starts with a byte order mark", aborts=True)
            return None
        start = len(text) - len(text.lstrip())
        if not text[start:].startswith("{"):
            first = text[start:].splitlines()[0][:60]
            self.error([], f"output does not start with a JSON object (first line: {first!r}); "
                           "note that stderr is merged into stdout", aborts=True)
            return None
        dec = json.JSONDecoder(object_pairs_hook=_pairs_hook, parse_constant=_bad_constant)
        try:
            doc, end = dec.raw_decode(text, start)
        except ValueError as e:
            self.error([], f"invalid JSON: {e}", aborts=True)
            return None
        rest = text[end:]
        if rest.strip():
            at = rest.strip()[:60]
            self.error([], f"trailing content after the JSON document: {at!r} "
                           "(Gson: 'Did not consume the entire document')", aborts=True)
            return None
        return doc

    def check_doc(self, doc):
        if jtype(doc) != "object":
            self.error([], f"top level is a JSON {jtype(doc)}, not an object", aborts=True)
            return
        self.check_dups(doc, [])
        if "gpus" not in doc:
            self.error(["gpus"], "missing; getAsJsonArray() on null throws", aborts=True)
            return
        gpus = doc["gpus"]
        if jtype(gpus) != "array":
            self.error(["gpus"], f"is a JSON {jtype(gpus)}, not an array", aborts=True)
            return
        self.n_gpus = len(gpus)
        seen = {}
        for i, gpu in enumerate(gpus):
            self.check_gpu(gpu, ["gpus", i], seen)

    def note_bus(self, seen, bus, path):
        if not isinstance(bus, str) or bus == "":
            return
        key = bus.lower()
        if key in seen:
            self.error(path, f"busAddress {bus!r} already used at {seen[key]} "
                             "(the management server keys devices by busAddress)")
        else:
            seen[key] = jpath(path)

    def check_gpu(self, gpu, path, seen):
        if jtype(gpu) != "object":
            self.error(path, f"GPU entry is a JSON {jtype(gpu)}; getAsJsonObject() throws", aborts=True)
            return
        self.check_dups(gpu, path)
        vals = {k: self.get_as_string(gpu, k, path, required=True) for k in REQUIRED_GPU_STRINGS}
        pci = vals["pci_address"]
        self.check_bus_address_pci(pci, path + ["pci_address"])
        for k in ("vendor_id", "device_id"):
            v = vals[k]
            if v is not None and not re.fullmatch(r"[0-9a-f]{4}", v):
                self.error(path + [k], f"{v!r} is not 4 lowercase hex digits (card identity; '10de' selects "
                                       "NVIDIA handling)")
        for k in ("vendor", "device"):
            if vals[k] == "":
                self.warn(path + [k], "empty name (the card name is vendor + ' ' + device)")
        self.note_bus(seen, pci, path + ["pci_address"])

        # numa_node: null-safe getAsString; a number or a string.
        if "numa_node" in gpu and gpu["numa_node"] is not None:
            t = jtype(gpu["numa_node"])
            if t in ("object",) or (t == "array" and len(gpu["numa_node"]) != 1):
                self.error(path + ["numa_node"], f"is a JSON {t}; getAsString() throws", aborts=True)
            elif t not in ("integer", "string"):
                self.error(path + ["numa_node"], f"is a JSON {t}; must be an integer (or a string)")
        self.get_as_string(gpu, "pci_root", path, required=False)
        for k in LONG_FIELDS:
            self.get_long(gpu, k, path)
        vgpus = self.get_array(gpu, "vgpu_instances", path)
        vfs = self.get_array(gpu, "vf_instances", path)

        enabled, vm = None, None
        fp = gpu.get("full_passthrough")
        fpp = path + ["full_passthrough"]
        if "full_passthrough" not in gpu:
            self.error(fpp, "missing; getAsJsonObject() on null throws", aborts=True)
        elif jtype(fp) != "object":
            self.error(fpp, f"is a JSON {jtype(fp)}; getAsJsonObject() throws", aborts=True)
        else:
            self.check_dups(fp, fpp)
            enabled = self.check_enabled(fp, fpp)
            vm = self.check_vm(fp, fpp)

        self.add_device(Device("PCI", "passthrough", pci, None,
                               None if enabled is None else enabled == 1, vm))
        for j, v in enumerate(vgpus):
            self.check_vgpu(v, path + ["vgpu_instances", j], pci, seen)
        for j, v in enumerate(vfs):
            self.check_vf(v, path + ["vf_instances", j], pci, seen)

    def check_enabled(self, fp, fpp):
        p = fpp + ["enabled"]
        if "enabled" not in fp:
            self.error(p, "missing; getAsInt() on null throws NullPointerException", aborts=True)
            return None
        v = fp["enabled"]
        t = jtype(v)
        if t == "integer":
            if v not in (0, 1):
                self.error(p, f"{v} is not 0 or 1 (the agent treats anything but 1 as 0)")
            return v
        if t == "boolean":
            self.error(p, f"is the boolean {json.dumps(v)}; getAsInt() throws NumberFormatException", aborts=True)
            return None
        if t == "null":
            self.error(p, "is null; getAsInt() on JsonNull throws", aborts=True)
            return None
        if t == "number":
            self.error(p, f"{json.dumps(v)} is not an integer (Gson would truncate it); must be 0 or 1")
            return int(v)
        if t == "string":
            if RE_JAVA_INT.match(v) and JAVA_INT_MIN <= int(v) <= JAVA_INT_MAX:
                self.error(p, f"is the string {json.dumps(v)}; Gson would parse it, but it must be the integer 0 or 1")
                return int(v)
            self.error(p, f"is the string {json.dumps(v)}; getAsInt() throws NumberFormatException", aborts=True)
            return None
        self.error(p, f"is a JSON {t}; getAsInt() throws", aborts=True)
        return None

    def check_vm(self, obj, path):
        vm = self.get_as_string(obj, "used_by_vm", path, required=False)
        if vm is not None and vm.strip() == "":
            self.warn(path + ["used_by_vm"], "blank used_by_vm; use null for 'not in use'")
        return vm

    def check_vgpu(self, v, path, parent, seen):
        if jtype(v) != "object":
            self.error(path, f"vGPU entry is a JSON {jtype(v)}; getAsJsonObject() throws", aborts=True)
            return
        self.check_dups(v, path)
        profile = self.get_as_string(v, "profile_name", path, required=False)
        uuid = self.get_as_string(v, "mdev_uuid", path, required=False)
        for k in LONG_FIELDS:
            self.get_long(v, k, path)
        vm = self.check_vm(v, path)
        if uuid is None:
            if "mdev_uuid" not in v or v["mdev_uuid"] is None:
                self.error(path + ["mdev_uuid"], "missing or null: the MDEV device would have no busAddress")
        elif not RE_UUID.match(uuid):
            self.error(path + ["mdev_uuid"], f"{uuid!r} is not a lowercase UUID (it becomes <address uuid=...>)")
        self.note_bus(seen, uuid, path + ["mdev_uuid"])
        if profile is None or profile == "":
            self.warn(path + ["profile_name"], f"{'null' if profile is None else 'empty'} profile_name: "
                                               "the agent skips this vGPU")
            return
        self.check_model_name(profile, path + ["profile_name"])
        self.add_device(Device("MDEV", profile, uuid, parent, None, vm))

    def check_vf(self, v, path, parent, seen):
        if jtype(v) != "object":
            self.error(path, f"VF entry is a JSON {jtype(v)}; getAsJsonObject() throws", aborts=True)
            return
        self.check_dups(v, path)
        addr = self.get_as_string(v, "vf_pci_address", path, required=True)
        self.check_bus_address_pci(addr, path + ["vf_pci_address"])
        profile = self.get_as_string(v, "vf_profile", path, required=True)
        for k in LONG_FIELDS:
            self.get_long(v, k, path)
        vm = self.check_vm(v, path)
        self.note_bus(seen, addr, path + ["vf_pci_address"])
        if profile == "":
            self.warn(path + ["vf_profile"], "empty vf_profile: the agent skips this VF")
            return
        if profile is None:
            return
        self.check_model_name(profile, path + ["vf_profile"])
        self.add_device(Device("PCI", profile, addr, parent, None, vm))

    def run(self, raw):
        doc = self.check_text(raw)
        if doc is not None:
            self.check_doc(doc)
        return not self.errors


def print_report(c, name, verbose, out=sys.stdout):
    if verbose:
        for d in c.devices:
            print(d.line(), file=out)
        if c.aborted:
            print(f"# the agent stops at {c.abort_note}; it returns only the devices above", file=out)
    for p, m in c.errors:
        print(f"ERROR {p}: {m}", file=out)
    for p, m in c.warnings:
        print(f"WARNING {p}: {m}", file=out)
    print(f"{name}: {c.n_gpus} GPUs, {len(c.devices)} agent devices, {len(c.errors)} errors, "
          f"{len(c.warnings)} warnings: {'OK' if not c.errors else 'FAIL'}", file=out)


# ---- self-test -------------------------------------------------------------------------

def _good_doc():
    la = {"domain": "0x0000", "bus": "0x65", "slot": "0x00", "function": "0x0"}
    nulls = {k: None for k in LONG_FIELDS}
    return {
        "gpus": [{
            "pci_address": "65:00.0", "vendor_id": "10de", "vendor": "NVIDIA Corporation",
            "device_id": "2236", "device": "GA102GL [A10]", "numa_node": 0, "pci_root": "0000:64:02.0",
            **nulls,
            "full_passthrough": {"enabled": 0, "libvirt_address": la, "used_by_vm": None},
            "vgpu_instances": [{
                "mdev_uuid": "c0a80165-0005-4a10-8000-000000000593", "profile_name": "NVIDIA A10-4Q",
                "max_instances": 6, "video_ram": 4096, "max_heads": 4, "max_resolution_x": 7680,
                "max_resolution_y": 4320, "libvirt_address": dict(la, function="0x5"), "used_by_vm": "i-2-3-VM"}],
            "vf_instances": [
                {"vf_pci_address": "65:00.4", "vf_profile": "NVIDIA A10-4Q", **nulls,
                 "libvirt_address": dict(la, function="0x4"), "used_by_vm": None},
                {"vf_pci_address": "65:00.5", "vf_profile": "", **nulls,
                 "libvirt_address": dict(la, function="0x5"), "used_by_vm": None}],
        }, {
            "pci_address": "0002:01:00.0", "vendor_id": "1002", "vendor": "Advanced Micro Devices, Inc. [AMD/ATI]",
            "device_id": "740f", "device": "Aldebaran/MI200 [Instinct MI210]", "numa_node": "1",
            "full_passthrough": {"enabled": 1, "used_by_vm": "i-2-4-VM"},
            "vgpu_instances": [], "vf_instances": [],
        }],
        "gpuhooks": {"version": "0"},
    }


def _self_test():
    def dump(d):
        return json.dumps(d, indent=1).encode()

    def mutate(fn):
        d = _good_doc()
        fn(d)
        return dump(d)

    g0 = lambda d: d["gpus"][0]  # noqa: E731
    bad = {
        "enabled boolean": mutate(lambda d: g0(d)["full_passthrough"].update(enabled=False)),
        "enabled true": mutate(lambda d: d["gpus"][1]["full_passthrough"].update(enabled=True)),
        "enabled 2": mutate(lambda d: g0(d)["full_passthrough"].update(enabled=2)),
        "enabled string": mutate(lambda d: g0(d)["full_passthrough"].update(enabled="0")),
        "enabled missing": mutate(lambda d: g0(d)["full_passthrough"].pop("enabled")),
        "vf_profile null": mutate(lambda d: g0(d)["vf_instances"][0].update(vf_profile=None)),
        "vf_profile missing": mutate(lambda d: g0(d)["vf_instances"][1].pop("vf_profile")),
        "vf_pci_address null": mutate(lambda d: g0(d)["vf_instances"][0].update(vf_pci_address=None)),
        "max_instances 'abc'": mutate(lambda d: g0(d)["vgpu_instances"][0].update(max_instances="abc")),
        "max_instances '4'": mutate(lambda d: g0(d)["vgpu_instances"][0].update(max_instances="4")),
        "video_ram float": mutate(lambda d: g0(d)["vgpu_instances"][0].update(video_ram=4096.5)),
        "PF max_heads boolean": mutate(lambda d: g0(d).update(max_heads=True)),
        "missing device": mutate(lambda d: g0(d).pop("device")),
        "vendor_id number": mutate(lambda d: d["gpus"][1].update(vendor_id=1002)),
        "pci_address null": mutate(lambda d: g0(d).update(pci_address=None)),
        "pci_address 0000 long form": mutate(lambda d: g0(d).update(pci_address="0000:65:00.0")),
        "vgpu_instances missing": mutate(lambda d: g0(d).pop("vgpu_instances")),
        "vf_instances object": mutate(lambda d: g0(d).update(vf_instances={})),
        "full_passthrough missing": mutate(lambda d: d["gpus"][1].pop("full_passthrough")),
        "used_by_vm number": mutate(lambda d: g0(d)["full_passthrough"].update(used_by_vm=5)),
        "numa_node object": mutate(lambda d: g0(d).update(numa_node={})),
        "mdev_uuid missing": mutate(lambda d: g0(d)["vgpu_instances"][0].pop("mdev_uuid")),
        "duplicate busAddress": mutate(lambda d: g0(d)["vf_instances"][1].update(vf_pci_address="65:00.4")),
        "gpus missing": mutate(lambda d: d.pop("gpus")),
        "gpus object": mutate(lambda d: d.update(gpus={})),
        "trailing garbage": dump(_good_doc()) + b"\nlibvirt: error: cannot connect\n",
        "two documents": dump(_good_doc()) + dump(_good_doc()),
        "leading stderr line": b"warning: something\n" + dump(_good_doc()),
        "empty output": b"",
        "duplicate key": dump(_good_doc()).replace(b'"vendor_id": "10de"', b'"vendor_id": "10de", "vendor_id": "10de"', 1),
        "NaN": dump(_good_doc()).replace(b'"numa_node": 0', b'"numa_node": NaN', 1),
        "top-level array": b"[]",
    }
    warn_only = {
        "profile_name empty": mutate(lambda d: g0(d)["vgpu_instances"][0].update(profile_name="")),
        "profile_name null": mutate(lambda d: g0(d)["vgpu_instances"][0].update(profile_name=None)),
    }
    failures = 0

    c = Checker()
    ok = c.run(dump(_good_doc()))
    # PF, MDEV, VF 65:00.4 (65:00.5 skipped), PF 0002:01:00.0
    if not ok or len(c.devices) != 4 or len(c.warnings) != 1:
        failures += 1
        print(f"FAIL good document: errors={c.errors} warnings={c.warnings} devices={len(c.devices)}")
        print_report(c, "good", True)
    else:
        print("ok   good document passes (4 agent devices, 1 warning for the skipped VF)")
    for name, raw in bad.items():
        c = Checker()
        if c.run(raw):
            failures += 1
            print(f"FAIL bad document passed: {name}")
        else:
            print(f"ok   rejected: {name}: {c.errors[0][0]}: {c.errors[0][1]}")
    for name, raw in warn_only.items():
        c = Checker()
        if not c.run(raw) or not any("skips this vGPU" in m for _, m in c.warnings) or len(c.devices) != 3:
            failures += 1
            print(f"FAIL {name}: expected no error, a skip warning and 3 devices: {c.errors} {c.warnings}")
        else:
            print(f"ok   warning only: {name}")
    print(f"self-test: {'FAIL' if failures else 'OK'} ({failures} failures, {len(bad) + len(warn_only) + 1} cases)")
    return 1 if failures else 0


def main(argv):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = argv[1:]
    if args == ["--self-test"]:
        return _self_test()
    verbose = False
    if args and args[0] in ("-v", "--verbose"):
        verbose, args = True, args[1:]
    if len(args) != 1 or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: agent_rules.py [-v] INVENTORY.json|-\n       agent_rules.py --self-test\n")
        return 2
    name = args[0]
    try:
        if name == "-":
            raw = sys.stdin.buffer.read()
            name = "<stdin>"
        else:
            with open(name, "rb") as f:
                raw = f.read()
    except OSError as e:
        print(f"{name}: cannot read: {e.strerror}")
        return 1
    c = Checker()
    c.run(raw)
    print_report(c, name, verbose)
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
