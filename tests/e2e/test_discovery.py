#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the unmodified gpudiscovery binary on fixture hosts.

  test_discovery.py --bin BUILD/hooks/gpudiscovery --hosts BUILD/fixtures/hosts --src SRC CASE [ARG]

CASE is one of: host NAME | real-sys | damaged | cli | cache | vgpu-names | claims | nvml.  GPUH_UPDATE_GOLDEN=1 rewrites the golden
inventories (fixtures/hosts/NAME/expected.json) instead of comparing them.
Prints one line per check and closes with 'N passed, N failed'.
"""
import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from jsonschema import Draft202012Validator, FormatChecker

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import check, skip  # noqa: E402

ARGS = None
# A sanitizer build (CMake's GPUH_SANITIZE, set by tests/e2e/CMakeLists.txt): its binaries print
# what the plain build's print; the checks of that output's form alone (JSON Schema, the agent's
# rules: pure Python, the longest part of a run) are the plain build's, the sanitizer's verdict
# on the run is this build's.
SANITIZER = os.environ.get("GPUH_TEST_SANITIZER") or None
CACHE_DIR = None
STATE_DIR = None


def run(args, env=None, timeout=60):
    e = dict(os.environ)
    e.pop("LIBVIRT_DEFAULT_URI", None)
    e.pop("GPUHOOKS_CONFIG", None)
    e.pop("GPUHOOKS_SYSFS_ROOT", None)
    e.pop("GPUHOOKS_DOMAIN_XML_DIRS", None)
    e.pop("GPUHOOKS_PCI_IDS", None)
    # NVML: the driver's library by its soname, which a GPU-less test machine lacks (the goldens
    # say so); the fake NVML cases name theirs.
    e.pop("GPUHOOKS_NVML_LIB", None)
    e.pop("GPUH_FAKE_NVML_STATE", None)
    e["GPUHOOKS_CACHE_DIR"] = CACHE_DIR    # never the machine's /var/cache
    e["GPUHOOKS_STATE_DIR"] = STATE_DIR    # nor its /run/gpuhooks
    if env:
        e.update(env)
    return harness.run([ARGS.bin] + args, env=e, timeout=timeout)    # rc, out, err


VALIDATOR = None


def schema_errors(doc):
    global VALIDATOR
    if VALIDATOR is None:
        with open(os.path.join(ARGS.src, "schemas", "gpu-inventory.schema.json")) as f:
            VALIDATOR = Draft202012Validator(json.load(f), format_checker=FormatChecker())
    return ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in VALIDATOR.iter_errors(doc)]


def agent_rules(path):
    p = subprocess.run(["/usr/bin/python3", os.path.join(ARGS.src, "tests", "e2e", "agent_rules.py"), path],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def valid_inventory(out, label):
    """The output is one JSON document that fits the schema and the agent's parser."""
    ok = check(out.endswith(b"\n") and out.count(b"\n") == 1, label + ": one line of output")
    try:
        doc = json.loads(out)
    except ValueError as e:
        check(False, label + ": output is JSON (%s)" % e)
        return None
    if SANITIZER:
        skip(label + ": schema and agent rules, checked in the plain build (this one: -fsanitize=%s)" % SANITIZER)
        return doc
    errs = schema_errors(doc)
    ok &= check(not errs, label + ": validates against gpu-inventory.schema.json" +
                ("".join("\n         " + e for e in errs[:10])))
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(out)
    rc, msg = agent_rules(f.name)
    os.unlink(f.name)
    ok &= check(rc == 0, label + ": passes the CloudStack agent's parsing rules" +
                ("" if rc == 0 else "\n" + msg))
    return doc if ok else doc


def strip_ext(doc):
    """The part of the document the agent reads (no gpuhooks extension objects)."""
    d = copy.deepcopy(doc)
    d.pop("gpuhooks", None)
    for g in d["gpus"]:
        g.pop("gpuhooks", None)
        for v in g["vgpu_instances"] + g["vf_instances"]:
            v.pop("gpuhooks", None)
    return d


def host_args(name, extra=None):
    h = os.path.join(ARGS.hosts, name)
    return ["--sysfs-root", os.path.join(h, "sys"), "--pci-ids",
            os.path.join(ARGS.src, "fixtures", "pci.ids")] + (extra or [])


def case_host(name):
    h = os.path.join(ARGS.hosts, name)
    src = os.path.join(ARGS.src, "fixtures", "hosts", name)
    uri = "test://" + os.path.abspath(os.path.join(h, "libvirt.xml"))
    xml_dirs = ["--domain-xml-dir", os.path.join(h, "run", "libvirt", "qemu"),
                "--domain-xml-dir", os.path.join(h, "etc", "libvirt", "qemu")]

    # As the agent runs it (no stdin, JSON, default format) with libvirt reachable.
    rc, out, err = run(host_args(name, ["--connect", uri]))
    check(rc == 0, name + ": exit 0 (got %d)" % rc)
    check(err == b"", name + ": nothing on stderr" + ("" if not err else ": " + err.decode()[:300]))
    doc = valid_inventory(out, name)
    if doc is None:
        return
    check(doc["gpuhooks"]["vm_usage"] == "libvirt", name + ": VM usage came from libvirt")

    # Field by field against the facts of the host's README.
    facts = os.path.join(src, "facts.json")
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(out)
    p = subprocess.run(["/usr/bin/python3", os.path.join(ARGS.src, "tests", "e2e", "check_facts.py"), facts, f.name],
                       capture_output=True, text=True)
    os.unlink(f.name)
    check(p.returncode == 0, name + ": matches facts.json" + ("" if p.returncode == 0 else "\n" + p.stdout + p.stderr))

    # Byte-stable across runs.
    rc2, out2, _ = run(host_args(name, ["--connect", uri]))
    check(rc2 == 0 and out2 == out, name + ": identical output on a second run")

    # Golden inventory (pretty), a regression net over every field.
    rc, pretty, err = run(host_args(name, ["--connect", uri, "--format", "pretty"]))
    check(rc == 0 and err == b"" and json.loads(pretty) == doc, name + ": --format pretty is the same document")
    golden = os.path.join(src, "expected.json")
    if os.environ.get("GPUH_UPDATE_GOLDEN"):
        with open(golden, "wb") as f:
            f.write(pretty)
        print("updated " + golden)
    elif check(os.path.exists(golden), name + ": golden inventory exists"):
        with open(golden, "rb") as f:
            want = f.read()
        check(pretty == want, name + ": equals the golden inventory fixtures/hosts/%s/expected.json" % name)

    # Without libvirt, from the files libvirt keeps: the agent sees the same thing.
    rc, out3, err = run(host_args(name, ["--no-libvirt"] + xml_dirs))
    d3 = valid_inventory(out3, name + " --no-libvirt") if rc == 0 else None
    check(rc == 0 and err == b"", name + " --no-libvirt: exit 0, nothing on stderr")
    if d3:
        check(d3["gpuhooks"]["vm_usage"] == "domain-xml", name + " --no-libvirt: usage from domain XML files")
        check(strip_ext(d3) == strip_ext(doc), name + " --no-libvirt: agent fields equal the libvirt run's")

    # libvirt unreachable: falls back to the files, never to an empty usage.
    rc, out4, err = run(host_args(name, ["--connect", "qemu+unix:///system?socket=/nonexistent/libvirt-sock"] + xml_dirs))
    d4 = valid_inventory(out4, name + " libvirt unreachable") if rc == 0 else None
    check(rc == 0 and err == b"", name + " libvirt unreachable: exit 0, nothing on stderr")
    if d4:
        check(d4["gpuhooks"]["vm_usage"] == "domain-xml", name + " libvirt unreachable: usage from domain XML files")
        check(any("libvirt unreachable" in w for w in d4["gpuhooks"]["warnings"]),
              name + " libvirt unreachable: says so in gpuhooks.warnings")
        check(strip_ext(d4) == strip_ext(doc), name + " libvirt unreachable: agent fields equal the libvirt run's")

    # Environment instead of options, as the agent's environment would carry them.
    rc, out5, err = run(["--connect", uri, "--pci-ids", os.path.join(ARGS.src, "fixtures", "pci.ids")],
                        env={"GPUHOOKS_SYSFS_ROOT": os.path.join(h, "sys")})
    check(rc == 0 and out5 == out, name + ": GPUHOOKS_SYSFS_ROOT works like --sysfs-root")

    # The table for people names every GPU.
    rc, table, err = run(host_args(name, ["--connect", uri, "--format", "table"]))
    check(rc == 0 and err == b"", name + " --format table: exit 0, nothing on stderr")
    text = table.decode()
    check(all(g["gpuhooks"]["address"] in text for g in doc["gpus"]) and
          (doc["gpus"] or "(no GPUs)" in text), name + " --format table: lists every GPU")


def case_real_sys():
    # Read only: the machine's own /sys. No GPU here is fine; what matters is a valid document.
    rc, out, err = run(["--no-libvirt", "--domain-xml-dir", "/nonexistent"])
    check(rc == 0, "real /sys: exit 0")
    check(err == b"", "real /sys: nothing on stderr")
    valid_inventory(out, "real /sys")


def gpu_by_addr(doc, addr):
    for g in doc["gpus"]:
        if g["gpuhooks"]["address"] == addr:
            return g
    return None


def case_damaged():
    base = os.path.join(ARGS.hosts, "hpe-dl380g9-a2-vgpu")
    tmp = tempfile.mkdtemp(prefix="gpuh-damaged-")
    try:
        root = os.path.join(tmp, "h")
        shutil.copytree(base, root, symlinks=True)
        sysd = os.path.join(root, "sys")
        dev = os.path.realpath(os.path.join(sysd, "bus/pci/devices/0000:08:00.0"))
        vf = os.path.realpath(os.path.join(sysd, "bus/pci/devices/0000:08:00.5"))
        vf7 = os.path.realpath(os.path.join(sysd, "bus/pci/devices/0000:08:01.7"))

        def replace(path, content=None, kind="file"):
            if os.path.islink(path) or os.path.isfile(path):
                os.unlink(path)
            elif os.path.isdir(path):
                shutil.rmtree(path)
            if kind == "file":
                with open(path, "w") as f:
                    f.write(content)
            elif kind == "dir":
                os.mkdir(path)
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "dangling":
                os.symlink("../../nowhere/at/all", path)

        replace(os.path.join(dev, "numa_node"), "zero\n")                     # garbage
        replace(os.path.join(dev, "reset_method"), kind="fifo")               # would block a plain read
        replace(os.path.join(dev, "iommu_group"), kind="dangling")            # dangling link
        replace(vf, "not a directory\n")                                     # VF directory unusable
        t = os.path.join(vf7, "mdev_supported_types", "nvidia-746")
        replace(os.path.join(t, "available_instances"), "-3\n")               # out of range
        replace(os.path.join(t, "description"), kind="fifo")
        vf4 = os.path.realpath(os.path.join(sysd, "bus/pci/devices/0000:08:00.4"))
        replace(os.path.join(vf4, "mdev_supported_types", "nvidia-742", "description"), kind="fifo")
        replace(os.path.join(vf7, "driver"), kind="dangling")
        replace(os.path.join(sysd, "bus/pci/devices/0000:01:00.1"), kind="dangling")  # vanished device
        replace(os.path.join(sysd, "bus/pci/devices/not-a-device"), "x")
        replace(os.path.join(dev, "virtfn15"), kind="dangling")
        os.unlink(os.path.join(dev, "sriov_vf_device"))                      # pre-5.9 kernel: ids per VF

        rc, out, err = run(["--sysfs-root", sysd, "--pci-ids", os.path.join(ARGS.src, "fixtures", "pci.ids"),
                            "--no-libvirt", "--domain-xml-dir", os.path.join(root, "etc", "libvirt", "qemu")],
                           timeout=20)
        check(rc == 0, "damaged tree: exit 0 (got %d)" % rc)
        check(err == b"", "damaged tree: nothing on stderr")
        doc = valid_inventory(out, "damaged tree")
        if not doc:
            return
        g = gpu_by_addr(doc, "0000:08:00.0")
        if not check(g is not None, "damaged tree: the A2 is still listed"):
            return
        check(g["numa_node"] == -1, "damaged tree: garbage numa_node costs only that field")
        check(g["iommu_group"] is None, "damaged tree: dangling iommu_group link gives null")
        check(g["gpuhooks"]["reset_method"] is None or isinstance(g["gpuhooks"]["reset_method"], list),
              "damaged tree: a FIFO attribute does not hang the run")
        vfs = [v["gpuhooks"]["address"] for v in g["vf_instances"]]
        check("0000:08:00.5" not in vfs and "0000:08:00.4" in vfs,
              "damaged tree: a VF whose directory is unusable is dropped, its siblings stay")
        check("0000:08:02.3" not in vfs, "damaged tree: a dangling virtfn link is skipped")
        check(all(v["gpuhooks"]["vendor_id"] == "10de" and v["gpuhooks"]["device_id"] == "25b6"
                  for v in g["vf_instances"]), "damaged tree: without sriov_vf_device, VF ids come from each VF")
        vf7d = [v for v in g["vf_instances"] if v["gpuhooks"]["address"] == "0000:08:01.7"]
        if check(len(vf7d) == 1, "damaged tree: VF 08:01.7 listed"):
            types = vf7d[0]["gpuhooks"]["mdev_types"]
            check("nvidia-746" in types and types["nvidia-746"] is None,
                  "damaged tree: out-of-range available_instances gives null")
        warns = "\n".join(doc["gpuhooks"]["warnings"])
        for needle in ("numa_node", "iommu_group", "not-a-device", "virtfn15", "available_instances"):
            check(needle in warns, "damaged tree: warning names %s" % needle)
        check(gpu_by_addr(doc, "0000:01:00.1") is None, "damaged tree: a vanished device is skipped")
    finally:
        shutil.rmtree(tmp)


def case_cache():
    """The names cache: same names cold or warm, never a stale or damaged answer."""
    tmp = tempfile.mkdtemp(prefix="gpuh-cache-")
    try:
        cache = os.path.join(tmp, "cache")
        ids = os.path.join(tmp, "pci.ids")
        shutil.copy(os.path.join(ARGS.src, "fixtures", "pci.ids"), ids)
        name = "hpe-dl380g9-a2-vgpu"
        args = ["--sysfs-root", os.path.join(ARGS.hosts, name, "sys"), "--pci-ids", ids, "--no-libvirt",
                "--domain-xml-dir", "/nonexistent", "--cache-dir", cache]
        cfile = os.path.join(cache, "pci-names.json")

        rc, cold, err = run(args)
        check(rc == 0 and err == b"", "cache: cold run exit 0, nothing on stderr")
        valid_inventory(cold, "cache: cold run")
        check(os.path.isfile(cfile), "cache: the cold run wrote the cache (directory created)")
        with open(cfile) as f:
            c = json.load(f)
        check(c["names"].get("d10de:25b6") == "GA107GL [A2 / A16]" and ids in c["key"],
              "cache: holds libpci's answers under a key naming the ids file")
        rc, warm, err = run(args)
        check(rc == 0 and warm == cold, "cache: a warm run prints the same bytes")

        # Poison one entry under the right key: the cache is really used...
        c["names"]["d10de:25b6"] = "POISONED"
        with open(cfile, "w") as f:
            json.dump(c, f)
        rc, out, err = run(args)
        check(b"POISONED" in out, "cache: a warm run takes names from the cache")
        valid_inventory(out, "cache: warm run")
        # ...and any change of the ids file makes it miss.
        os.utime(ids, (1, 1))
        rc, out, err = run(args)
        check(rc == 0 and out == cold, "cache: an updated pci.ids invalidates it")
        with open(cfile) as f:
            check("POISONED" not in f.read(), "cache: rewritten after the miss")

        with open(cfile, "w") as f:
            f.write("{not json")
        rc, out, err = run(args)
        check(rc == 0 and err == b"" and out == cold, "cache: a damaged cache costs nothing but time")

        shutil.rmtree(cache)
        with open(cache, "w") as f:
            f.write("a file where the directory should be")
        rc, out, err = run(args)
        check(rc == 0 and err == b"" and out == cold, "cache: an unwritable cache directory is ignored")
        rc, out, err = run(args[:-1] + [""])
        check(rc == 0 and err == b"" and out == cold, "cache: --cache-dir '' disables it")
    finally:
        shutil.rmtree(tmp)


L40S = "l40s-vendor-vgpu"
L40S_SET = ("0000:af:00.4", "0000:af:00.5", "0000:af:00.6")    # L40S-8Q (1152) set
NAMES_FILE = "vgpu-type-names.json"


def l40s_variant(tmp, empty):
    """A copy of the L40S fixture whose VFs on the GPUs EMPTY list nothing (header only), as a
    full GPU's do; returns the args to read it."""
    root = os.path.join(tmp, "h")
    shutil.copytree(os.path.join(ARGS.hosts, L40S), root, symlinks=True)
    sysd = os.path.join(root, "sys")
    devs = os.path.join(sysd, "bus", "pci", "devices")
    for a in sorted(os.listdir(devs)):
        d = os.path.realpath(os.path.join(devs, a))
        f = os.path.join(d, "nvidia", "creatable_vgpu_types")
        if os.path.isfile(f) and os.path.basename(os.readlink(os.path.join(d, "physfn"))) in empty:
            with open(f, "w") as fh:
                fh.write("ID    : vGPU Name\n")
    return ["--sysfs-root", sysd, "--pci-ids", os.path.join(ARGS.src, "fixtures", "pci.ids"), "--no-libvirt",
            "--domain-xml-dir", os.path.join(root, "run", "libvirt", "qemu"),
            "--domain-xml-dir", os.path.join(root, "etc", "libvirt", "qemu")]


def set_vfs(doc):
    """{VF address: (vf_profile, current_type_name, used_by_vm)} of the L40S VFs with a type set."""
    out = {}
    for g in doc["gpus"]:
        for v in g["vf_instances"]:
            vv = v["gpuhooks"]["vendor_vgpu"]
            if vv and vv["current_type_id"]:
                out[v["gpuhooks"]["address"]] = (v["vf_profile"], vv["current_type_name"], v["used_by_vm"])
    return out


def canonical(doc):
    """A names cache as gpudiscovery writes it (one line, no spaces): the only form it reads."""
    return json.dumps(doc, separators=(",", ":")) + "\n"


def case_vgpu_names():
    """A set vGPU type is named even when no creatable list of its own GPU names it (issue 8,
    item 11): by another GPU of the model, else by the names cache in the state dir."""
    tmp = tempfile.mkdtemp(prefix="gpuh-vgpu-names-")
    try:
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        cache = os.path.join(state, NAMES_FILE)
        env = {"GPUHOOKS_STATE_DIR": state}
        want = {a: ("NVIDIA L40S-8Q", "NVIDIA L40S-8Q") for a in L40S_SET}

        # 1. af:00.0 is full: none of its VFs lists anything; the other two L40S still do.
        args = l40s_variant(os.path.join(tmp, "a"), {"0000:af:00.0"})
        rc, out, err = run(args, env=env)
        check(rc == 0 and err == b"", "af:00.0 lists nothing: exit 0, nothing on stderr")
        doc = valid_inventory(out, "af:00.0 lists nothing")
        if doc:
            got = set_vfs(doc)
            check({a: got.get(a, (None, None, None))[:2] for a in L40S_SET} == want,
                  "af:00.0 lists nothing: its set VFs are named by another L40S (%s)" % got)
            check(got.get("0000:af:00.4", (None,) * 3)[2] == "i-2-21-VM",
                  "af:00.0 lists nothing: the in-use VF af:00.4 is named and used by i-2-21-VM")
            check(not any("no creatable list" in w for w in doc["gpuhooks"]["warnings"]),
                  "af:00.0 lists nothing: no warning (a list on the host names the type)")
        try:
            with open(cache) as f:
                c = json.load(f)
        except (OSError, ValueError) as e:
            c = {"error": str(e)}
        check(c.get("version") == 1 and c.get("types", {}).get("1152") == "NVIDIA L40S-8Q" and
              c.get("types", {}).get("1156") == "NVIDIA L40S-48Q" and len(c.get("types", {})) == 23,
              "the run wrote the names the lists show (23 L40S types) to STATE_DIR/%s" % NAMES_FILE)
        check(sorted(os.listdir(state)) == [NAMES_FILE], "the state dir holds the cache and nothing else (%s)"
              % sorted(os.listdir(state)))
        if os.path.isfile(cache):
            st = os.stat(cache)
            rc, out2, _ = run(args, env=env)
            check(rc == 0 and out2 == out and os.stat(cache).st_mtime_ns == st.st_mtime_ns and
                  os.stat(cache).st_ino == st.st_ino, "a second run prints the same and leaves the cache as it is")
        else:
            with open(cache, "w") as f:        # what the first run should have written
                f.write(canonical({"version": 1, "types": {"1152": "NVIDIA L40S-8Q"}}))

        # 2. Every L40S is full: no list on the host names 1152; the cache does.
        every = {"0000:26:00.0", "0000:3d:00.0", "0000:af:00.0"}
        args = l40s_variant(os.path.join(tmp, "b"), every)
        rc, out, err = run(args, env=env)
        check(rc == 0 and err == b"", "no list names the type, cache present: exit 0, nothing on stderr")
        doc = valid_inventory(out, "no list names the type, cache present")
        if doc:
            got = set_vfs(doc)
            check({a: got.get(a, (None, None, None))[:2] for a in L40S_SET} == want,
                  "no list names the type: the set VFs are named from the cache (%s)" % got)
        with open(cache) as f:
            check(len(json.load(f)["types"]) == 23, "the cache keeps names no list shows now")

        # 3. Without a cache, or with a damaged one: the type cannot be named; "" (the agent skips
        # the VF), null name, a warning, and still a valid document.
        def unnamed(label, content, validate=False):
            if content is None:
                os.unlink(cache)
            else:
                with open(cache, "w") as f:
                    f.write(content)
            rc, out, err = run(args, env=env)
            check(rc == 0 and err == b"", label + ": exit 0, nothing on stderr")
            try:
                doc = valid_inventory(out, label) if validate else json.loads(out)
            except ValueError:
                doc = None
            if check(doc is not None, label + ": a JSON document"):
                got = set_vfs(doc)
                check({a: got.get(a, (None, None, None))[:2] for a in L40S_SET} == {a: ("", None) for a in L40S_SET},
                      label + ": the set VFs are unnamed (vf_profile '', current_type_name null)")
                check(any("0000:af:00.4" in w and "1152" in w for w in doc["gpuhooks"]["warnings"]),
                      label + ": a warning names the VF and the type")

        good = '{"version":1,"types":{"1152":"NVIDIA L40S-8Q"}}\n'     # as gpudiscovery writes it
        unnamed("no cache", None, validate=True)
        check(not os.path.exists(cache), "no cache and nothing to learn: none written")
        with open(cache, "w") as f:
            f.write(good)
        rc, out, err = run(args, env=env)
        got = set_vfs(json.loads(out)) if rc == 0 else {}
        check({a: got.get(a, (None, None, None))[:2] for a in L40S_SET} == want,
              "a one-entry cache written by hand as gpudiscovery writes it names them")
        unnamed("damaged cache (not JSON)", good[:30])
        unnamed("damaged cache (trailing garbage)", good + "x")
        unnamed("damaged cache (spaced out: not as written)", good.replace(":", ": ").replace(",", ", "))
        unnamed("damaged cache (version 2)", good.replace('"version":1', '"version":2'))
        unnamed("damaged cache (an unknown key)", good.replace('{"version":1,', '{"version":1,"x":0,'))
        unnamed("damaged cache (id with a leading zero)", good.replace('"1152"', '"01152"'))
        unnamed("damaged cache (a control character in a name)", good.replace("L40S-8Q", "L40S-8Q\\n"))
        unnamed("damaged cache (one bad entry among good ones)",
                good.replace('"1152":"NVIDIA L40S-8Q"', '"1152":"NVIDIA L40S-8Q","1153":7'))
        unnamed("damaged cache (ids not ascending)",
                good.replace('"1152":"NVIDIA L40S-8Q"', '"1153":"NVIDIA L40S-12Q","1152":"NVIDIA L40S-8Q"'))
        big = {"version": 1, "types": {str(1 + i): "NVIDIA X-1Q" for i in range(2000)}}
        big["types"]["1152"] = "NVIDIA L40S-8Q"
        unnamed("oversized cache (2001 entries)", canonical(big))

        # 4. Bounded: a run whose lists name types replaces an unusable cache with what they show.
        args_a = l40s_variant(os.path.join(tmp, "c"), {"0000:af:00.0"})
        rc, out, err = run(args_a, env=env)
        with open(cache) as f:
            c = json.load(f)
        check(rc == 0 and err == b"" and len(c["types"]) == 23 and "1" not in c["types"],
              "an oversized cache is replaced by the 23 names the lists show")
        # and a cache at its limit keeps this host's names, dropping others (highest ids first)
        full = {"version": 1, "types": {str(10000 + i): "NVIDIA X-1Q" for i in range(1024)}}
        with open(cache, "w") as f:
            f.write(canonical(full))
        rc, out, err = run(args_a, env=env)
        with open(cache) as f:
            c = json.load(f)
        ids = [int(k) for k in c["types"]]
        check(rc == 0 and len(ids) == 1024 and ids == sorted(ids) and c["types"].get("1152") == "NVIDIA L40S-8Q" and
              "10000" in c["types"] and str(10000 + 1023) not in c["types"],
              "a full cache keeps 1024 entries: this host's 23 and the lowest other ids")
        check(sorted(os.listdir(state)) == [NAMES_FILE], "no temporary file is left in the state dir")

        # 5. No state dir, or an unusable one: no cache, nothing created, nothing else changes.
        gone = os.path.join(tmp, "no-such-state")
        rc, out_gone, err = run(args_a, env={"GPUHOOKS_STATE_DIR": gone})
        check(rc == 0 and err == b"" and out_gone == out and not os.path.exists(gone),
              "a missing state dir: same output, not created")
        rc, out_opt, err = run(args_a + ["--state-dir", ""], env=env)
        check(rc == 0 and err == b"" and out_opt == out, "--state-dir '': no cache, same output")
        os.unlink(cache)
        os.mkdir(cache)
        rc, out_dir, err = run(args_a, env=env)
        check(rc == 0 and err == b"" and out_dir == out and os.path.isdir(cache),
              "a directory where the cache should be: same output, nothing on stderr, left alone")
    finally:
        shutil.rmtree(tmp)


def write_state(state, reservations=(), journals=()):
    """A state directory as the transformer and the state-change hook leave it (docs/transformer.md
    "Reservations", docs/state-change.md "The journal"): RESERVATIONS are (domain, state, expires,
    devices), JOURNALS (domain, entries)."""
    shutil.rmtree(state, ignore_errors=True)
    for sub in ("reservations", "journal"):
        os.makedirs(os.path.join(state, sub), mode=0o700)
    os.chmod(state, 0o700)
    for name, st, expires, devices in reservations:
        with open(os.path.join(state, "reservations", name + ".json"), "w") as f:
            json.dump({"version": 1, "domain": name, "uuid": None, "state": st, "created": 1763712000,
                       "expires": expires, "devices": devices}, f)
    for name, entries in journals:
        with open(os.path.join(state, "journal", name + ".journal"), "w") as f:
            f.write(json.dumps({"journal": 1, "domain": name, "uuid": None, "created": 1763712000}) + "\n")
            for i, e in enumerate(entries):
                f.write(json.dumps(dict(e, seq=i + 1)) + "\n")


def used(doc, addr):
    """(used_by_vm, used_by) of the GPU, VF or mdev ADDR (a pci_address, vf_pci_address or UUID)."""
    for g in doc["gpus"]:
        if g["pci_address"] == addr:
            return g["full_passthrough"]["used_by_vm"], g["gpuhooks"]["used_by"]
        for v in g["vf_instances"]:
            if v["vf_pci_address"] == addr:
                return v["used_by_vm"], v["gpuhooks"]["used_by"]
        for v in g["vgpu_instances"]:
            if v["mdev_uuid"] == addr:
                return v["used_by_vm"], v["gpuhooks"]["used_by"]
    return "absent", None


def case_claims():
    """What gpuhooks holds for a domain is in use, as what libvirt's domains hold (issue 10, item
    2): a live reservation's devices and a journal's are reported with used_by_vm, their kind in
    gpuhooks.used_by; a libvirt user comes first; an expired reservation holds nothing; an
    unreadable state gives a warning, never a failure. On a host with four PCI domains
    (power8-minsky-p100) and on VFs and mdevs (hpe-dl380g9-a2-vgpu)."""
    tmp = tempfile.mkdtemp(prefix="gpuh-claims-")
    now = int(time.time())
    try:
        state = os.path.join(tmp, "state")
        env = {"GPUHOOKS_STATE_DIR": state}
        p8 = "power8-minsky-p100"
        uri = "test://" + os.path.abspath(os.path.join(ARGS.hosts, p8, "libvirt.xml"))
        pci = lambda a: {"kind": "pci", "address": a, "companions": []}    # noqa: E731
        write_state(state, reservations=[
            ("i-2-90-VM", "reserved", now + 600, [pci("0002:01:00.0")]),
            ("i-2-91-VM", "running", 0, [pci("000a:01:00.0")]),          # running: never expires
            ("i-2-93-VM", "reserved", now - 1, [pci("0003:01:00.0")]),   # expired
        ], journals=[
            ("i-2-92-VM", [{"op": "driver", "device": "000b:01:00.0", "driver": "nvidia", "override": "",
                            "to": "vfio-pci"}]),
            ("i-2-90-VM", [{"op": "driver", "device": "0002:01:00.0", "driver": "", "override": "",
                            "to": "vfio-pci"}]),
        ])
        rc, out, err = run(host_args(p8, ["--connect", uri]), env=env)
        check(rc == 0 and err == b"", "%s with claims: exit 0, nothing on stderr" % p8, err.decode()[:300])
        doc = valid_inventory(out, "%s with claims" % p8)
        if doc:
            check(used(doc, "0002:01:00.0") == ("i-2-90-VM", [{"name": "i-2-90-VM", "state": None, "kind": "reserved"}]),
                  "a reserved GPU (domain 0002) is used by its domain, kind reserved, once (its journal too)",
                  used(doc, "0002:01:00.0"))
            check(used(doc, "000a:01:00.0") == ("i-2-80-VM", [{"name": "i-2-80-VM", "state": "shutoff"},
                                                              {"name": "i-2-91-VM", "state": None, "kind": "reserved"}]),
                  "a GPU libvirt's i-2-80-VM names and i-2-91-VM reserves: the libvirt user first",
                  used(doc, "000a:01:00.0"))
            check(used(doc, "0003:01:00.0") == (None, []), "an expired reservation holds nothing",
                  used(doc, "0003:01:00.0"))
            check(used(doc, "000b:01:00.0") == ("i-2-92-VM", [{"name": "i-2-92-VM", "state": None, "kind": "journal"}]),
                  "a GPU a journal names (domain 000b) is used by that domain, kind journal", used(doc, "000b:01:00.0"))
            check(doc["gpuhooks"]["warnings"] == [], "no warning", doc["gpuhooks"]["warnings"])
        # the domain libvirt knows gets its state
        write_state(state, reservations=[("i-2-81-VM", "running", 0, [pci("0002:01:00.0")])])
        rc, out, err = run(host_args(p8, ["--connect", uri]), env=env)
        d = json.loads(out) if rc == 0 else None
        check(d is not None and used(d, "0002:01:00.0") ==
              ("i-2-81-VM", [{"name": "i-2-81-VM", "state": "running", "kind": "reserved"}]),
              "a reservation of a domain libvirt knows carries its state", d and used(d, "0002:01:00.0"))

        # An unreadable reservation: a warning; the journals still count, nothing fails.
        write_state(state, journals=[("i-2-92-VM", [{"op": "driver", "device": "000b:01:00.0", "driver": "nvidia",
                                                      "override": "", "to": "vfio-pci"}])])
        with open(os.path.join(state, "reservations", "i-2-94-VM.json"), "w") as f:
            f.write("{not json")
        rc, out, err = run(host_args(p8, ["--connect", uri]), env=env)
        doc = valid_inventory(out, "an unreadable reservation") if rc == 0 else None
        check(rc == 0 and err == b"", "an unreadable reservation: exit 0, nothing on stderr", err.decode()[:300])
        if doc:
            check(any("i-2-94-VM" in w for w in doc["gpuhooks"]["warnings"]),
                  "an unreadable reservation: named in gpuhooks.warnings", doc["gpuhooks"]["warnings"])
            check(used(doc, "000b:01:00.0")[0] == "i-2-92-VM", "an unreadable reservation: the journal still counts")
        # A state directory nobody may read: a warning, the inventory as without it.
        os.chmod(state, 0o000)
        try:
            readable = os.access(state, os.R_OK)
            rc, out, err = run(host_args(p8, ["--connect", uri]), env=env)
        finally:
            os.chmod(state, 0o700)
        if readable:
            skip("an unreadable state directory (running as root: it can be read)")
        else:
            d = json.loads(out) if rc == 0 else None
            check(rc == 0 and err == b"" and d is not None and used(d, "000b:01:00.0") == (None, []) and
                  any(state in w for w in d["gpuhooks"]["warnings"]),
                  "an unreadable state directory: exit 0, a warning, no claims", (rc, err, d and d["gpuhooks"]["warnings"]))

        # VFs and mdevs: the A2's VF 08:00.5 reserved, VF 08:00.7 in a journal, an mdev libvirt's
        # i-2-11-VM names and that domain reserves (listed once).
        a2 = "hpe-dl380g9-a2-vgpu"
        uri = "test://" + os.path.abspath(os.path.join(ARGS.hosts, a2, "libvirt.xml"))
        mdev = "c728e022-f16f-434b-ad2c-9665ee634d3d"
        write_state(state, reservations=[
            ("i-2-95-VM", "reserved", now + 600, [{"kind": "vf", "address": "0000:08:00.5", "parent": "0000:08:00.0",
                                                   "companions": []}]),
            ("i-2-11-VM", "reserved", now + 600, [{"kind": "mdev", "uuid": mdev.upper(), "parent": "0000:08:02.0",
                                                   "mdev_type": "nvidia-745", "new": False, "display": False,
                                                   "companions": []}]),
        ], journals=[("i-2-96-VM", [{"op": "driver", "device": "0000:08:00.7", "driver": "", "override": "",
                                     "to": "vfio-pci"}])])
        rc, out, err = run(host_args(a2, ["--connect", uri]), env=env)
        check(rc == 0 and err == b"", "%s with claims: exit 0, nothing on stderr" % a2, err.decode()[:300])
        doc = valid_inventory(out, "%s with claims" % a2)
        if doc:
            check(used(doc, "08:00.5") == ("i-2-95-VM", [{"name": "i-2-95-VM", "state": None, "kind": "reserved"}]),
                  "a reserved VF is used by its domain", used(doc, "08:00.5"))
            check(used(doc, "08:00.7") == ("i-2-96-VM", [{"name": "i-2-96-VM", "state": None, "kind": "journal"}]),
                  "a VF a journal names is used by that domain", used(doc, "08:00.7"))
            check(used(doc, mdev) == ("i-2-11-VM", [{"name": "i-2-11-VM", "state": "shutoff"}]),
                  "an mdev its own user reserves: listed once, as libvirt's", used(doc, mdev))
            check(used(doc, "08:00.0")[0] is None, "the GPU whose VFs are held is not itself used")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_cli():
    rc, out, err = run(["--bogus"])
    check(rc == 2 and out == b"" and err.count(b"\n") == 1 and b"--bogus" in err,
          "unknown option: exit 2, one line on stderr naming it, nothing on stdout")
    rc, out, err = run(["--format", "xml"])
    check(rc == 2 and out == b"" and b"xml" in err, "unknown format: exit 2")
    rc, out, err = run(["--format"])
    check(rc == 2 and out == b"" and err.count(b"\n") == 1, "missing option argument: exit 2")
    rc, out, err = run(["extra"])
    check(rc == 2 and out == b"", "stray argument: exit 2")
    rc, out, err = run(["--sysfs-root", "/nonexistent/sysfs"])
    check(rc == 1 and out == b"" and err.count(b"\n") == 1 and b"/nonexistent/sysfs" in err,
          "unreadable sysfs root: exit 1, one line naming it")
    empty = tempfile.mkdtemp(prefix="gpuh-empty-")
    rc, out, err = run(["--sysfs-root", empty])
    check(rc == 1 and out == b"" and b"not a sysfs tree" in err, "a directory that is not sysfs: exit 1")
    # --format json given: a failure is one JSON object on stdout, nothing on stderr (issue 12);
    # the default (the agent's call) is unchanged, above
    for args, what in ((["--sysfs-root", "/nonexistent/sysfs", "--format", "json"], "unreadable sysfs root"),
                       (["--format=json", "--check", "--sysfs-root", "/nonexistent/sysfs"], "--check, no sysfs"),
                       (["--sysfs-root", empty, "--format", "json"], "not a sysfs tree")):
        rc, out, err = run(args)
        try:
            doc = json.loads(out)
        except ValueError:
            doc = None
        check(rc == 1 and err == b"" and out.count(b"\n") == 1 and isinstance(doc, dict) and
              set(doc) == {"error", "errno", "device"} and isinstance(doc["errno"], int) and doc["errno"] > 0 and
              doc["device"] is None and (b"/nonexistent/sysfs" in out or empty.encode() in out),
              "%s, --format json: exit 1, {error, errno, device} on stdout naming it (%r)" % (what, out))
    rc, out, err = run(["--bogus", "--format", "json"])
    doc = json.loads(out) if rc == 2 and out else None
    check(doc is not None and err == b"" and doc["errno"] is None and "--bogus" in doc["error"],
          "unknown option, --format json: exit 2, the JSON error, errno null")
    # options in any order
    rc, out, err = run(["--format", "table", "--sysfs-root", "/nonexistent/sysfs"])
    rc2, out2, err2 = run(["--sysfs-root", "/nonexistent/sysfs", "--format", "table"])
    check(rc == rc2 == 1 and err == err2, "options in any order")
    os.rmdir(empty)
    # A broken configuration (issue 8, item 2): the inventory from the defaults, exit 0, nothing
    # on stderr, the error as the document's first warning; --check fails on it.
    tmp = tempfile.mkdtemp(prefix="gpuh-cfg-")
    hargs = host_args("hpe-dl380g9-a2-vgpu", ["--no-libvirt", "--domain-xml-dir", tmp])
    good = os.path.join(tmp, "good.json")
    with open(good, "w") as f:
        f.write("{}")
    rc, ref, err = run(hargs + ["--config", good])
    ref = json.loads(ref)
    broken = [("an unknown key", '{"discovery": {"passthrough_bootvga": true}}', "discovery.passthrough_bootvga"),
              ("a bad value", '{"libvirt": {"timeout_ms": 0}}', "libvirt.timeout_ms"),
              ("no JSON", '{"discovery": ', "not valid JSON"),
              ("a missing named file", None, "No such file")]
    for what, text, needle in broken:
        path = os.path.join(tmp, "bad.json" if text is not None else "absent.json")
        if text is not None:
            with open(path, "w") as f:
                f.write(text)
        rc, out, err = run(hargs + ["--config", path])
        doc = valid_inventory(out, "config with " + what) if rc == 0 else None
        warns = doc["gpuhooks"]["warnings"] if doc else []
        check(rc == 0 and err == b"" and warns and path in warns[0] and needle in warns[0],
              "config with %s: exit 0, nothing on stderr, the first warning names the file and the problem (%s)"
              % (what, warns[:1]))
        check(doc is not None and dict(doc, gpuhooks=None) == dict(ref, gpuhooks=None) and
              warns[1:] == ref["gpuhooks"]["warnings"],
              "config with %s: the same inventory as with the defaults" % what)
        rc, out, err = run(hargs, env={"GPUHOOKS_CONFIG": path})
        check(rc == 0 and path.encode() in out, "config with %s: GPUHOOKS_CONFIG is read" % what)
        rc, out, err = run(hargs + ["--config", path, "--check", "--root", tmp])
        lines = [l.split(None, 3) for l in out.decode().splitlines()[:-1]]
        cfg = [l for l in lines if l[1] == "config"]
        check(rc == 1 and len(cfg) == 1 and cfg[0][0] == "fail" and path in cfg[0][3] and needle in cfg[0][3],
              "config with %s: --check reports it as a failing finding (%s)" % (what, cfg))
    rc, out, err = run(hargs + ["--config", good, "--check", "--root", tmp])
    cfg = [l.split(None, 3) for l in out.decode().splitlines()[:-1] if l.split()[1] == "config"]
    check(len(cfg) == 1 and cfg[0][0] == "ok", "a usable config: --check says so (%s)" % cfg)
    shutil.rmtree(tmp, ignore_errors=True)
    rc, out, err = run(["--help"])
    text = out.decode()
    check(rc == 0 and err == b"" and all(o in text for o in
          ("--format", "--sysfs-root", "--connect", "--no-libvirt", "--config", "--domain-xml-dir", "-v")),
          "--help lists every option")
    rc, out, err = run(["--version"])
    check(rc == 0 and out.startswith(b"gpudiscovery (gpuhooks) "), "--version")


NVML_EXT = ("mig", "vgpu_mode", "vgpu_types")


def without_nvml_fields(doc):
    d = copy.deepcopy(doc)
    for g in d["gpus"]:
        for k in NVML_EXT:
            g["gpuhooks"].pop(k, None)
    return d


def case_nvml():
    """MIG and vGPU-mode data from the fake libnvidia-ml.so.1 (tests/fakenvml) on the MIG hosts;
    without NVML, or with NVML failing, the same document but for those fields."""
    lib = os.path.abspath(os.path.join(ARGS.hosts, "..", "..", "tests", "fakenvml", "libnvidia-ml.so.1"))
    if not check(os.path.exists(lib), "nvml: the fake NVML is built (%s)" % lib):
        return
    more = {"a100-mig-mdev-vgpu": {474: 1, 476: 1}, "h100-mig-vendor-vgpu": {1700: 1, 1703: 1}}
    for name in ("a100-mig-mdev-vgpu", "h100-mig-vendor-vgpu"):
        with open(os.path.join(ARGS.src, "fixtures", "hosts", name, "nvml.json")) as f:
            state = json.load(f)
        st = os.path.join(STATE_DIR, name + "-nvml.json")
        with open(st, "w") as f:
            json.dump(state, f)
        env = {"GPUHOOKS_NVML_LIB": lib, "GPUH_FAKE_NVML_STATE": st}
        rc, out, err = run(host_args(name, ["--no-libvirt"]), env=env)
        check(rc == 0 and err == b"", name + ": with NVML: exit 0, nothing on stderr", err)
        doc = valid_inventory(out, name + " with NVML")
        if doc is None:
            continue
        g, s = doc["gpus"][0], state["gpus"][0]
        ext = g["gpuhooks"]
        prof = {p["id"]: p["name"] for p in s["gi_profiles"]}
        want_gis = [{"id": i["id"], "profile_id": i["profile_id"], "profile_name": prof[i["profile_id"]],
                     "placement_start": i["start"], "placement_size": i["size"]}
                    for i in sorted(s["gpu_instances"], key=lambda i: i["id"])]
        check(ext["mig"].get("mode_current") == "enabled" and ext["mig"].get("mode_pending") == "enabled",
              name + ": MIG mode enabled, now and pending", ext["mig"])
        check(ext["mig"].get("gpu_instances") == want_gis, name + ": the GPU instances, by id, with profile and placement",
              {"got": ext["mig"].get("gpu_instances"), "want": want_gis})
        # profiles: every placement, and how many more GIs fit (placements free of the GIs and of
        # each other, within the instance count)
        want_prof = []
        for p in sorted(s["gi_profiles"], key=lambda p: p["id"]):
            taken = set(x for i in s["gpu_instances"] for x in range(i["start"], i["start"] + i["size"]))
            free = 0
            for pl in p["placements"]:
                sl = set(range(pl["start"], pl["start"] + pl["size"]))
                if not sl & taken:
                    taken |= sl
                    free += 1
            same = len([i for i in s["gpu_instances"] if i["profile_id"] == p["id"]])
            want_prof.append({"id": p["id"], "name": p["name"], "slices": p["slices"], "instances": p["instances"],
                              "memory_mib": p["memory_mib"], "remaining": max(0, min(free, p["instances"] - same)),
                              "placements": p["placements"]})
        check(ext["mig"].get("profiles") == want_prof, name + ": every GI profile with its placements and what is left",
              {"got": ext["mig"].get("profiles"), "want": want_prof})
        free_profiles = {i["profile_id"] for i in s["gpu_instances"] if not i.get("in_use")}
        want_cr = sorted(t["id"] for t in s["vgpu_types"] if t.get("gi_profile_id") in free_profiles)
        got_cr = [t["id"] for t in ext["mig"].get("creatable_types", [])]
        check(got_cr == want_cr, name + ": creatable MIG-backed types are those with a free GI of their profile",
              {"got": got_cr, "want": want_cr})
        check(ext.get("vgpu_mode") is None, name + ": no vGPU mode in MIG mode (NVML: not supported)", ext.get("vgpu_mode"))
        types = {t["id"]: t for t in ext.get("vgpu_types", [])}
        ok = len(types) == len(s["vgpu_types"])
        for t in s["vgpu_types"]:
            o = types.get(t["id"], {})
            ok &= (o.get("name"), o.get("framebuffer_mib"), o.get("max_instances"), o.get("gpu_instance_profile_id")) == \
                (t["name"], t["framebuffer_mib"], t["max_instances"], t.get("gi_profile_id"))
            ok &= o.get("more") == more[name].get(t["id"], 0)
        check(ok, name + ": every vGPU type with framebuffer, max instances, GI profile and how many more fit",
              json.dumps(ext.get("vgpu_types"))[:1500])

        # no NVML: the same document but for the NVML fields, and mig says why
        rc, out2, err = run(host_args(name, ["--no-libvirt"]), env={"GPUHOOKS_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
        doc2 = json.loads(out2) if rc == 0 else None
        check(doc2 is not None and without_nvml_fields(doc2) == without_nvml_fields(doc),
              name + ": without NVML nothing but the NVML fields differ")
        if doc2:
            e2 = doc2["gpus"][0]["gpuhooks"]
            check(e2["mig"] == {"unavailable": "cannot load NVML: /nonexistent/libnvidia-ml.so.1: cannot open shared object "
                                               "file: No such file or directory"} and e2["vgpu_mode"] is None and
                  "vgpu_types" not in e2, name + ": without NVML, mig.unavailable says why", e2.get("mig"))
        # NVML failing: the same, with NVML's own line
        state["fail"] = {"nvmlInit_v2": 9}
        with open(st, "w") as f:
            json.dump(state, f)
        rc, out3, err = run(host_args(name, ["--no-libvirt"]), env=env)
        doc3 = json.loads(out3) if rc == 0 else None
        check(doc3 is not None and without_nvml_fields(doc3) == without_nvml_fields(doc) and
              doc3["gpus"][0]["gpuhooks"]["mig"] == {
                  "unavailable": "nvmlInit_v2: NVML_ERROR_DRIVER_NOT_LOADED: the NVIDIA driver is not loaded"},
              name + ": NVML failing: one line in mig.unavailable, nothing else lost",
              doc3 and doc3["gpus"][0]["gpuhooks"]["mig"])

    # --check: a MIG mode waiting for a reset, MIG on with VFs but no GI; NVML missing
    st = os.path.join(STATE_DIR, "h100-nogi.json")
    with open(st, "w") as f:
        json.dump({"gpus": [{"pci_bus_id": "0000:ae:00.0", "vfs_enabled": 1, "mig": {"current": 1, "pending": 0},
                             "gi_profiles": [], "gpu_instances": [], "vgpu_types": []}]}, f)
    hargs = host_args("h100-mig-vendor-vgpu", ["--no-libvirt", "--check", "--root", STATE_DIR])
    rc, out, err = run(hargs, env={"GPUHOOKS_NVML_LIB": lib, "GPUH_FAKE_NVML_STATE": st})
    mig = [l.split(None, 3) for l in out.decode().splitlines() if l.split()[1:2] == ["mig"]]
    check([m[0] for m in mig] == ["warn", "warn"] and all(m[2] == "0000:ae:00.0" for m in mig) and
          "disabled after the next GPU reset" in mig[0][3] and "no GPU instance" in mig[1][3],
          "--check warns of a pending MIG mode and of MIG without GPU instances", out.decode())
    rc, out, err = run(hargs, env={"GPUHOOKS_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
    check(any(l.startswith("info  nvml ") and "equal-size" in l for l in out.decode().splitlines()),
          "--check says when NVML cannot be used, and what is assumed", out.decode())

    # vGPU modes outside MIG: the L40S host, mixed-size on one GPU, equal-size on another
    st = os.path.join(STATE_DIR, "l40s-nvml.json")
    with open(st, "w") as f:
        json.dump({"gpus": [{"pci_bus_id": "0000:26:00.0", "vgpu_heterogeneous_mode": 1, "vgpu_types": []},
                            {"pci_bus_id": "0000:af:00.0", "vgpu_heterogeneous_mode": 0, "vgpu_types": []}]}, f)
    rc, out, err = run(host_args("l40s-vendor-vgpu", ["--no-libvirt"]), env={"GPUHOOKS_NVML_LIB": lib, "GPUH_FAKE_NVML_STATE": st})
    doc = valid_inventory(out, "l40s-vendor-vgpu with NVML")
    if doc:
        modes = {g["gpuhooks"]["address"]: g["gpuhooks"]["vgpu_mode"] for g in doc["gpus"]}
        mig = {g["gpuhooks"]["address"]: g["gpuhooks"]["mig"] for g in doc["gpus"]}
        check(modes == {"0000:26:00.0": "mixed-size", "0000:3d:00.0": None, "0000:af:00.0": "equal-size"},
              "l40s-vendor-vgpu: vgpu_mode per GPU as NVML says, null where it does not know the GPU", modes)
        check(mig["0000:26:00.0"].get("mode_current", "x") is None and
              mig["0000:3d:00.0"] == {"unavailable": "NVML: nvmlDeviceGetHandleByPciBusId_v2: NVML_ERROR_NOT_FOUND: no such object"},
              "l40s-vendor-vgpu: no MIG on an L40S (null mode); a GPU NVML does not know says so", mig)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("case")
    ap.add_argument("arg", nargs="?")
    ARGS = ap.parse_args()
    harness.use_tmpfs()
    global CACHE_DIR, STATE_DIR
    CACHE_DIR = tempfile.mkdtemp(prefix="gpuh-names-")
    STATE_DIR = tempfile.mkdtemp(prefix="gpuh-state-")
    if ARGS.case == "host":
        case_host(ARGS.arg)
    elif ARGS.case == "real-sys":
        case_real_sys()
    elif ARGS.case == "damaged":
        case_damaged()
    elif ARGS.case == "cli":
        case_cli()
    elif ARGS.case == "cache":
        case_cache()
    elif ARGS.case == "vgpu-names":
        case_vgpu_names()
    elif ARGS.case == "claims":
        case_claims()
    elif ARGS.case == "nvml":
        case_nvml()
    else:
        ap.error("unknown case")
    shutil.rmtree(CACHE_DIR, ignore_errors=True)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
