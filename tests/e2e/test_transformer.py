#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the unmodified libvirt-vm-xml-transformer binary on fixture hosts.

  test_transformer.py --bin BUILD/hooks/libvirt-vm-xml-transformer --hosts BUILD/fixtures/hosts --src SRC CASE [ARG]

CASE is one of: case NAME [--forms] | explain NAME | concurrency | capacity | hostile | cli | reservations |
old-agents | cases-json | goldens.
NAME is an entry of fixtures/domains/cases.json; --forms also calls it in every other way the binary
takes a domain (the CloudStack argv forms, stdin, --no-libvirt), which transformer.cmake asks of a
few cases only.  'goldens' checks every golden output once against our schema, libvirt's schema and
libvirt's parser (no binary is run).  GPUH_UPDATE_GOLDEN=1 rewrites the golden outputs
(fixtures/domains/expected/NAME.xml) instead of comparing them.
Prints one line per check ('skip' lines for checks that cannot apply) and closes with
'N passed, N failed'.  Only the standard library, xmllint and virsh are used.
"""
import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import Result, check, skip  # noqa: E402,F401

ARGS = None
TMP = None                      # everything this run writes, removed at the end
CACHE_DIR = None
NS = "urn:gpuhooks:domain:1"
G = "{%s}" % NS
LIBVIRT_RNG = "/usr/share/libvirt/schemas/domain.rng"
SLOW_S = 5.0                    # "within a few seconds" (CloudStack allows 30 s in all): CPU seconds of
                                # the run (harness.Result.cpu), which a loaded machine does not stretch
ET.register_namespace("gpuhooks", NS)


# ---------------------------------------------------------------------------------------------
# Running the binary

def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUHOOKS_")}
    e.pop("LIBVIRT_DEFAULT_URI", None)
    e.pop("GPUH_FAKE_NVML_STATE", None)     # the fake NVML's state: only the cases that use it
    e["GPUHOOKS_CACHE_DIR"] = CACHE_DIR     # never the machine's /var/cache
    if extra:
        e.update(extra)
    return e


def run(args, env=None, stdin=None, timeout=30):
    """The binary with ARGS; STDIN bytes or nothing (as the agent runs it). A timeout or an
    exec failure (E2BIG: argv[2] over MAX_ARG_STRLEN) is a Result whose rc says so."""
    return harness.run([ARGS.bin] + args, env=clean_env(env), stdin=stdin, timeout=timeout)


def tool(argv, stdin=None, timeout=30):
    r = harness.run(argv, stdin=stdin, timeout=timeout)
    if isinstance(r.rc, str):
        raise RuntimeError("%s: %s" % (argv[0], r.rc))
    return r.rc, r.out.decode("utf-8", "replace") + r.err.decode("utf-8", "replace")


def mktemp(prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=TMP)


def write_tmp(data, suffix=".xml", prefix="gpuh-"):
    fd, path = tempfile.mkstemp(suffix=suffix, prefix=prefix, dir=TMP)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


# ---------------------------------------------------------------------------------------------
# Hosts: a private copy per host per test process (nothing may write the build tree)

HOSTS = {}


def tree_state(root):
    """{relative path: (mode, size, mtime, ctime, inode, link target or None)} of every entry
    under ROOT, links not followed: a write, a creation, a removal, a rename, a chmod or a new
    link target since shows as a difference (a write changes a file's mtime and ctime, which
    no one can set back to what they were; an entry created or removed changes its
    directory's)."""
    state = {}

    def walk(d, rel):
        with os.scandir(d) as it:
            for e in it:
                r = rel + e.name
                st = e.stat(follow_symlinks=False)
                state[r] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                            os.readlink(e.path) if e.is_symlink() else None)
                if e.is_dir(follow_symlinks=False):
                    walk(e.path, r + "/")
    walk(root, "")
    return state


class Host:
    def __init__(self, name):
        self.name = name
        self.orig = os.path.join(ARGS.hosts, name)
        self.root = os.path.join(mktemp("gpuh-host-"), name)
        # cp -a: the same copy as shutil.copytree(symlinks=True), in a third of the time
        r = harness.run(["cp", "-a", "--", self.orig, self.root], timeout=120)
        if r.rc != 0:
            raise RuntimeError("cannot copy %s: %s" % (self.orig, r.why()))
        self.state = tree_state(self.root)
        self.sys = os.path.join(self.root, "sys")
        self.uri = "test://" + os.path.abspath(os.path.join(self.root, "libvirt.xml"))
        self.xml_dirs = [os.path.join(self.root, "run", "libvirt", "qemu"),
                         os.path.join(self.root, "etc", "libvirt", "qemu")]

    def args(self, state, config, libvirt=True):
        a = ["--config", config, "--sysfs-root", self.sys, "--state-dir", state]
        if libvirt:
            return a + ["--connect", self.uri]
        a.append("--no-libvirt")
        for d in self.xml_dirs:
            a += ["--domain-xml-dir", d]
        return a

    def env(self, state, config):
        """The CloudStack form's settings: the environment only."""
        return {"GPUHOOKS_CONFIG": config, "GPUHOOKS_SYSFS_ROOT": self.sys, "GPUHOOKS_STATE_DIR": state,
                "LIBVIRT_DEFAULT_URI": self.uri}

    def unchanged(self):
        """Nothing under the copy was written, created, removed or re-linked since it was made."""
        return tree_state(self.root) == self.state

    # --- facts read straight from the tree, independently of the binary
    def dev(self, addr):
        return os.path.join(self.sys, "bus", "pci", "devices", addr)

    def attr(self, addr, name):
        try:
            with open(os.path.join(self.dev(addr), name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def pci_devices(self):
        d = os.path.join(self.sys, "bus", "pci", "devices")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def mdev_exists(self, u):
        return os.path.exists(os.path.join(self.sys, "bus", "mdev", "devices", u))

    def used_by_domains(self):
        """Keys ('pci', addr) / ('mdev', uuid) of every hostdev of every domain libvirt knows."""
        used = set()
        root = ET.parse(os.path.join(self.root, "libvirt.xml")).getroot()
        for dom in root.iter("domain"):
            for hd in dom.iter("hostdev"):
                k = hostdev_key(hd)
                if k:
                    used.add(k)
        return used

    def mdev_parents(self):
        d = os.path.join(self.sys, "class", "mdev_bus")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def mdev_type_of(self, parent, profile):
        """The type directory of PARENT whose id or name is PROFILE, or None."""
        base = os.path.join(self.dev(parent), "mdev_supported_types")
        if not os.path.isdir(base):
            return None
        for t in sorted(os.listdir(base)):
            name = None
            try:
                with open(os.path.join(base, t, "name")) as f:
                    name = f.read().strip()
            except OSError:
                pass
            if profile in (t, name):
                return os.path.join(base, t)
        return None


def host(name):
    if name not in HOSTS:
        HOSTS[name] = Host(name)
    return HOSTS[name]


def write_config(obj):
    return write_tmp(json.dumps(obj if obj is not None else {}), suffix=".json", prefix="gpuh-config-")


def config_doc(cfg):
    """A case's "config": a whole configuration file, or only its "transformer" object."""
    if not cfg:
        return {}
    if set(cfg) <= {"$schema", "discovery", "libvirt", "transformer"}:
        return cfg
    return {"transformer": cfg}


# ---------------------------------------------------------------------------------------------
# Domain XML

def parse(data):
    """An ElementTree root keeping comments and PIs, or raise ET.ParseError."""
    p = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    p.feed(data)
    return p.close()


def parse_or_none(data):
    try:
        return parse(data)
    except ET.ParseError:
        return None


def pci_key(addr_el):
    try:
        return "%04x:%02x:%02x.%x" % tuple(int(addr_el.get(k), 0) for k in ("domain", "bus", "slot", "function"))
    except (TypeError, ValueError):
        return None


def hostdev_key(hd):
    """('pci', '0000:05:00.0') or ('mdev', uuid) for a <hostdev>, None for anything else."""
    a = hd.find("source/address")
    if a is None:
        return None
    if hd.get("type") == "pci":
        k = pci_key(a)
        return ("pci", k) if k else None
    if hd.get("type") == "mdev" and a.get("uuid"):
        return ("mdev", a.get("uuid").lower())
    return None


def hostdevs(root):
    return [hd for devs in root.findall("devices") for hd in devs.findall("hostdev")]


def dom_name(root):
    n = root.find("name")
    return n.text if n is not None else None


def dom_uuid(root):
    u = root.find("uuid")
    return u.text.strip().lower() if u is not None and u.text else None


def first_metadata(root):
    return root.find("metadata")


def gpu_elements(root):
    md = first_metadata(root)
    return [] if md is None else md.findall(G + "gpu")


def metadata_requests(root):
    g = gpu_elements(root)
    return g[0].findall(G + "request") if g else []


def allocations(root):
    return [a for g in gpu_elements(root) for a in g.findall(G + "allocation")]


def record(root):
    """The devices of the allocation record: dicts of the attributes plus 'companions'."""
    out = []
    for a in allocations(root):
        for d in a.findall(G + "device"):
            r = dict(d.attrib)
            r["companions"] = [c.get("address") for c in d.findall(G + "companion")]
            out.append(r)
    return out


def record_keys(rec):
    """Hostdev keys the record accounts for (devices and companions)."""
    keys = []
    for d in rec:
        if d.get("kind") == "mdev":
            keys.append(("mdev", (d.get("uuid") or "").lower()))
        else:
            keys.append(("pci", d.get("address")))
        keys += [("pci", c) for c in d["companions"]]
    return keys


def rename(data, name, new_uuid=None):
    """DATA with the domain's first <name> (and <uuid>) replaced, bytes otherwise untouched."""
    data = re.sub(rb"<name>[^<]*</name>", b"<name>" + name.encode() + b"</name>", data, count=1)
    if new_uuid:
        data = re.sub(rb"<uuid>[^<]*</uuid>", b"<uuid>" + new_uuid.encode() + b"</uuid>", data, count=1)
    return data


def make_domain(name, dom_uuid_, requests, vcpu=4, cpuset=None, extra_devices=""):
    """A CloudStack-shaped domain asking for REQUESTS (list of attribute dicts) in our metadata."""
    reqs = "".join("\n      <gpuhooks:request %s/>" % " ".join('%s="%s"' % kv for kv in r.items())
                   for r in requests)
    cs = (" cpuset='%s'" % cpuset) if cpuset else ""
    return ("""<domain type='kvm'>
  <name>%s</name>
  <uuid>%s</uuid>
  <description>gpuhooks e2e</description>
  <metadata>
    <gpuhooks:gpu xmlns:gpuhooks="urn:gpuhooks:domain:1">%s
    </gpuhooks:gpu>
  </metadata>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>4194304</currentMemory>
  <vcpu placement='static'%s>%d</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>%s
  </devices>
</domain>
""" % (name, dom_uuid_, reqs, cs, vcpu, extra_devices)).encode()


def uuid5s(dom_uuid_, n=64):
    try:
        ns = uuid.UUID(dom_uuid_)
    except (TypeError, ValueError):
        return set()
    return {str(uuid.uuid5(ns, "gpuhooks-mdev-%d" % i)) for i in range(n)}


def strip_ours(in_root, out_root, rec):
    """Copies of both trees without what the transformer may add or rewrite, for comparison."""
    a, b = copy.deepcopy(in_root), copy.deepcopy(out_root)
    in_keys = [hostdev_key(hd) for hd in hostdevs(a)]
    remaining = list(in_keys)
    for devs in b.findall("devices"):
        for hd in list(devs.findall("hostdev")):
            k = hostdev_key(hd)
            if k in remaining:
                remaining.remove(k)
            else:
                devs.remove(hd)
    for t in (a, b):                        # an older record is replaced: drop it on both sides
        for g in gpu_elements(t):
            for al in g.findall(G + "allocation"):
                g.remove(al)
    if not gpu_elements(a):
        md = first_metadata(b)
        if md is not None:
            for g in md.findall(G + "gpu"):
                md.remove(g)
    if first_metadata(a) is None and first_metadata(b) is not None and len(first_metadata(b)) == 0:
        b.remove(first_metadata(b))
    ours = set(record_keys(rec))
    for t in (a, b):                        # `managed` of CloudStack's GPU hostdevs is rewritten
        for hd in hostdevs(t):
            if hostdev_key(hd) in ours:
                hd.attrib.pop("managed", None)
    return a, b


def tree_diff(a, b, path="/"):
    """None when the trees are equal (white space between elements aside), else where they differ."""
    ta = a.tag if isinstance(a.tag, str) else ("comment" if a.tag is ET.Comment else "pi")
    tb = b.tag if isinstance(b.tag, str) else ("comment" if b.tag is ET.Comment else "pi")
    here = path + ta
    if ta != tb:
        return "%s: element %s became %s" % (path, ta, tb)
    if a.attrib != b.attrib:
        return "%s: attributes %s became %s" % (here, a.attrib, b.attrib)
    if (a.text or "").strip() != (b.text or "").strip():
        return "%s: text %r became %r" % (here, (a.text or "").strip()[:80], (b.text or "").strip()[:80])
    if (a.tail or "").strip() != (b.tail or "").strip():
        return "%s: tail %r became %r" % (here, (a.tail or "").strip()[:80], (b.tail or "").strip()[:80])
    if len(a) != len(b):
        return "%s: %d children became %d (%s -> %s)" % (
            here, len(a), len(b), [c.tag if isinstance(c.tag, str) else "#" for c in a],
            [c.tag if isinstance(c.tag, str) else "#" for c in b])
    for i, (ca, cb) in enumerate(zip(a, b)):
        d = tree_diff(ca, cb, "%s/%d:" % (here, i))
        if d:
            return d
    return None


def ns_decls(data):
    return set(re.findall(rb"""xmlns(?::[\w.-]+)?\s*=\s*(?:'[^']*'|"[^"]*")""", data))


def is_gpu_function(h, addr):
    """A GPU (display 03xx or accelerator 1200 of a GPU vendor) or a VF of one, from sysfs alone."""
    cls, ven = h.attr(addr, "class"), h.attr(addr, "vendor")
    if cls and ven and (cls.startswith("0x03") or cls.startswith("0x1200")) and \
            ven in ("0x10de", "0x1002", "0x8086"):
        return True
    pf = os.path.join(h.dev(addr), "physfn")
    return os.path.islink(pf) and is_gpu_function(h, os.path.basename(os.readlink(pf)))


# ---------------------------------------------------------------------------------------------
# State dir and reservations

def state_files(state):
    out = []
    for d, dirs, files in os.walk(state):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(d, n), state))
    return sorted(out)


def only_lock(state):
    """Nothing reserved: the state dir holds at most the lock (and an empty reservations/)."""
    return all(f in ("lock", "reservations") for f in state_files(state))


def reservation_path(state, name):
    """STATE/reservations/NAME.json, NAME the encoded domain name (common/domname.h)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import domname
    return os.path.join(state, "reservations", domname.encode(name) + ".json")


def load_reservation(state, name):
    p = reservation_path(state, name)
    if not os.path.exists(p):
        return None, "no %s" % os.path.relpath(p, state)
    try:
        with open(p) as f:
            return json.load(f), None
    except ValueError as e:
        return None, "%s is not JSON: %s" % (p, e)


def res_device_keys(res):
    keys = []
    for d in res.get("devices", []):
        if d.get("kind") == "mdev" or ("uuid" in d and "address" not in d):
            keys.append(("mdev", (d.get("uuid") or "").lower()))
        else:
            keys.append((d.get("kind"), d.get("address")))
    return keys


def rec_device_keys(rec):
    return [("mdev", (d.get("uuid") or "").lower()) if d.get("kind") == "mdev" else (d.get("kind"), d.get("address"))
            for d in rec]


def check_reservation(label, state, root, rec):
    """STATE/reservations/NAME.json names the domain and lists exactly the record's devices."""
    name, du = dom_name(root), dom_uuid(root)
    res, err = load_reservation(state, name)
    if not check(res is not None, label + ": reservation file is JSON", err):
        return None
    check(res.get("version") == 1 and res.get("domain") == name and
          (res.get("uuid") or "").lower() == (du or ""),
          label + ": reservation names the domain (version 1, name, uuid)",
          "version %r domain %r uuid %r; want %r %r" % (res.get("version"), res.get("domain"), res.get("uuid"), name, du))
    check(res.get("state") == "reserved" and isinstance(res.get("created"), int) and
          isinstance(res.get("expires"), int) and res["expires"] > res["created"] and
          res["created"] <= time.time() + 5,
          label + ": reservation state 'reserved', created < expires",
          {k: res.get(k) for k in ("state", "created", "expires")})
    companions = {c for d in rec for c in d["companions"]}
    rk = [k for k in res_device_keys(res) if k[1] not in companions]
    check(sorted(map(str, rk)) == sorted(map(str, rec_device_keys(rec))),
          label + ": reservation lists exactly the devices of the allocation record",
          "reservation %s\nrecord      %s" % (res.get("devices"), rec_device_keys(rec)))
    return res


def write_reservation(state, name, dom_uuid_, devices, created, expires, st="reserved"):
    os.makedirs(os.path.join(state, "reservations"), exist_ok=True)
    p = reservation_path(state, name)
    with open(p, "w") as f:
        json.dump({"version": 1, "domain": name, "uuid": dom_uuid_, "state": st, "created": created,
                   "expires": expires, "devices": devices}, f)
    return p


# ---------------------------------------------------------------------------------------------
# Cases

def domains_dir():
    return os.path.join(ARGS.src, "fixtures", "domains")


def load_cases():
    with open(os.path.join(domains_dir(), "cases.json")) as f:
        return json.load(f)


def case_by_name(name):
    for c in load_cases():
        if c.get("name") == name:
            return c
    raise SystemExit("no case %r in fixtures/domains/cases.json" % name)


def domain_file(c):
    p = os.path.join(domains_dir(), c["domain"])
    return p if os.path.exists(p) else os.path.join(ARGS.src, c["domain"])


def xmllint_valid(rng, path):
    rc, msg = tool(["xmllint", "--noout", "--relaxng", rng, path])
    return rc == 0, msg


def xmllint_valid_many(rng, paths):
    """{path: (ok, message)} for every one of PATHS against RNG: one xmllint for all of them
    (it parses the schema once), then one more for each that fails, for its own message."""
    if not paths:
        return {}
    rc, msg = tool(["xmllint", "--noout", "--relaxng", rng] + list(paths), timeout=120)
    res = {}
    for p in paths:
        if (p + " validates") in msg.splitlines():
            res[p] = (True, "")
        else:
            res[p] = xmllint_valid(rng, p)
    return res


def virsh_roundtrip(path, name):
    """define + dumpxml on a throwaway test:///default connection: (ok, dumpxml or message)."""
    rc, msg = tool(["virsh", "-q", "-c", "test:///default", "define %s; dumpxml %s" % (path, name)])
    i = msg.find("<domain")
    if rc != 0 or i < 0:
        return False, msg.strip()
    return True, msg[i:msg.rfind("</domain>") + len("</domain>")]


def virsh_roundtrip_many(docs):
    """{key: (ok, dumpxml or message)} for DOCS, {key: domain XML bytes}: each defined under a
    name of its own (its UUID kept: <sysinfo> may repeat it), dumped and undefined again, all on
    one throwaway test:///default connection; one that fails there is tried again alone
    (virsh_roundtrip), which gives its message."""
    tmpl, paths = {}, {}
    for i, (key, data) in enumerate(sorted(docs.items())):
        name = "gpuh-e2e-%d-%d" % (os.getpid(), i)
        paths[key] = (write_tmp(rename(data, name)), name)
        tmpl[key] = i
    cmds = "; ".join("echo @@%d@@; define %s; dumpxml %s; undefine %s" % (tmpl[k], p, n, n)
                     for k, (p, n) in paths.items())
    rc, out = tool(["virsh", "-q", "-c", "test:///default", cmds + "; echo @@end@@"], timeout=120)
    parts = dict(re.findall(r"@@(\d+)@@(.*?)(?=@@(?:\d+|end)@@)", out, re.S))
    res = {}
    for k, (p, n) in paths.items():
        seg = parts.get(str(tmpl[k]), "")
        i = seg.find("<domain")
        if i >= 0 and "</domain>" in seg:
            res[k] = (True, seg[i:seg.rfind("</domain>") + len("</domain>")])
        else:
            res[k] = virsh_roundtrip(p, n)
    return res


def check_output(label, h, c_config, data_in, out, state):
    """Everything a successful transform must satisfy. Returns the parsed output and record."""
    in_root = parse(data_in)
    try:
        root = parse(out)
    except ET.ParseError as e:
        check(False, label + ": stdout is well-formed XML", e)
        return None, None
    check(root.tag == "domain", label + ": root element is <domain>", root.tag)
    name, du = dom_name(in_root), dom_uuid(in_root)
    check(dom_name(root) == name and dom_uuid(root) == du, label + ": same domain name and uuid")
    check(out.lstrip().startswith(b"<?xml") == data_in.lstrip().startswith(b"<?xml"),
          label + ": XML declaration kept as it was (none added)")
    rec = record(root)
    allocs = allocations(root)

    asks = metadata_requests(in_root) or any(hostdev_key(hd) for hd in hostdevs(in_root)) or \
        config_doc(c_config).get("transformer", {}).get("rules")
    if not asks:
        check(not allocs, label + ": no request (no gpuhooks:request, no hostdev, no rules): no allocation record")
    if not allocs:
        check(out == data_in, label + ": no allocation record, so the output is byte-identical to the input",
              "input %d bytes, output %d bytes" % (len(data_in), len(out)))
        check(only_lock(state), label + ": nothing reserved", state_files(state))
        return root, rec

    check(len(allocs) == 1 and len(gpu_elements(root)) == 1,
          label + ": exactly one gpuhooks:gpu with one gpuhooks:allocation in the first <metadata>",
          "%d gpu, %d allocation" % (len(gpu_elements(root)), len(allocs)))
    if first_metadata(in_root) is None:
        kids = [k.tag for k in root if isinstance(k.tag, str)]
        i = kids.index("metadata")
        check(i > 0 and kids[i - 1] == ("uuid" if "uuid" in kids else "name"),
              label + ": the inserted <metadata> follows <uuid> (or <name>)", kids)
    check(allocs[0].get("version") == "1", label + ": allocation version='1'")

    # Every hostdev is the input's or the record's; every record entry has its hostdev.
    in_keys = [hostdev_key(hd) for hd in hostdevs(in_root)]
    out_hd = hostdevs(root)
    out_keys = [hostdev_key(hd) for hd in out_hd]
    rkeys = record_keys(rec)
    extra = list(out_keys)
    for k in in_keys:
        if k in extra:
            extra.remove(k)
    check(all(out_keys.count(k) >= in_keys.count(k) for k in in_keys),
          label + ": every hostdev of the input is kept", "input %s\noutput %s" % (in_keys, out_keys))
    check(all(k in rkeys for k in extra), label + ": every added hostdev is listed in the record",
          "added %s\nrecord %s" % (extra, rkeys))
    check(all(k in out_keys for k in rkeys), label + ": every device of the record has its hostdev",
          "record %s\noutput %s" % (rkeys, out_keys))
    check(len(set(rkeys)) == len(rkeys) and len(set(k for k in out_keys if k)) == len([k for k in out_keys if k]),
          label + ": no device twice (record and hostdevs)", rkeys)
    devs = root.findall("devices")
    last = devs[-1] if devs else None
    if last is not None:
        kids = list(last)
        pos = [i for i, hd in enumerate(kids) if hd.tag == "hostdev" and hostdev_key(hd) in extra]
        orig_n = len([k for k in kids if not (k.tag == "hostdev" and hostdev_key(k) in extra)])
        check(all(hostdev_key(hd) not in extra for d in devs[:-1] for hd in d.findall("hostdev")) and
              all(i >= orig_n for i in pos),
              label + ": added hostdevs are at the end of the last <devices>")

    # Shapes.
    in_by_key = {hostdev_key(hd): hd for hd in hostdevs(in_root)}
    managed_default = "yes" if config_doc(c_config).get("transformer", {}).get("managed") == "libvirt" else "no"
    by_key = {hostdev_key(hd): hd for hd in out_hd}
    pci_ok, mdev_ok, managed_ok, shape_ok, sys_ok = [], [], [], [], []
    new_uuids = uuid5s(du)
    nreq = len(metadata_requests(in_root))
    for d in rec:
        kind = d.get("kind")
        req = d.get("request")
        if not (req == "cloudstack" or (req or "").isdigit()):
            shape_ok.append("bad request=%r" % req)
        if kind == "mdev":
            hd = by_key.get(("mdev", (d.get("uuid") or "").lower()))
            if hd is None:
                continue
            if hd.get("model") != "vfio-pci" or hd.get("display") not in ("on", "off") or \
                    (hd.get("display") == "on") != (hd.get("ramfb") == "on"):
                mdev_ok.append(ET.tostring(hd).decode().strip())
            if (d.get("display") == "on") != (hd.get("display") == "on"):
                shape_ok.append("mdev %s: record display=%r, hostdev display=%r" %
                                (d.get("uuid"), d.get("display"), hd.get("display")))
            if d.get("new") not in ("yes", "no") or not d.get("parent") or not d.get("mdev-type"):
                shape_ok.append("mdev %s: new/parent/mdev-type" % d)
            elif d.get("new") == "yes" and d["uuid"].lower() not in new_uuids and hostdev_key(hd) not in in_keys:
                shape_ok.append("mdev %s: not uuid5(domain uuid, 'gpuhooks-mdev-<n>')" % d["uuid"])
            elif d.get("new") == "no" and not h.mdev_exists(d["uuid"].lower()):
                sys_ok.append("mdev %s new='no' does not exist" % d["uuid"])
            elif d.get("new") == "yes" and h.mdev_exists(d["uuid"].lower()):
                sys_ok.append("mdev %s new='yes' exists already" % d["uuid"])
            if d.get("parent") and d.get("mdev-type") and \
                    not os.path.isdir(os.path.join(h.dev(d["parent"]), "mdev_supported_types", d["mdev-type"])):
                sys_ok.append("parent %s has no type %s" % (d["parent"], d["mdev-type"]))
        elif kind in ("pci", "vf", "vendor-vgpu"):
            addrs = [d.get("address")] + d["companions"]
            for a in addrs:
                if not os.path.isdir(h.dev(a or "x")):
                    sys_ok.append("%s is not a PCI function of the host" % a)
                hd = by_key.get(("pci", a))
                if hd is None:
                    continue
                if "display" in hd.attrib or "ramfb" in hd.attrib:
                    old = in_by_key.get(("pci", a))
                    if old is None or ("display" not in old.attrib and "ramfb" not in old.attrib):
                        pci_ok.append(ET.tostring(hd).decode().strip())
                want = "no" if kind == "vendor-vgpu" else managed_default
                if hd.get("managed") != want or d.get("managed", want) != want:
                    managed_ok.append("%s: hostdev managed=%r, record managed=%r, want %r" %
                                      (a, hd.get("managed"), d.get("managed"), want))
                if ("pci", a) not in in_keys:
                    drv = hd.find("driver")
                    if hd.get("mode") != "subsystem" or drv is None or drv.get("name") != "vfio":
                        shape_ok.append("%s: not mode='subsystem' with <driver name='vfio'/>" % a)
            if kind in ("vf", "vendor-vgpu") and not d.get("parent"):
                shape_ok.append("%s %s without parent" % (kind, d.get("address")))
            if kind == "vendor-vgpu" and not (d.get("vgpu-type") or "").isdigit():
                shape_ok.append("vendor-vgpu %s: vgpu-type %r" % (d.get("address"), d.get("vgpu-type")))
        else:
            shape_ok.append("unknown kind %r" % kind)
    check(not pci_ok, label + ": type='pci' hostdevs carry no display/ramfb", "\n".join(pci_ok))
    check(not mdev_ok, label + ": type='mdev' hostdevs carry model='vfio-pci' and display (ramfb with display='on')",
          "\n".join(mdev_ok))
    check(not managed_ok, label + ": managed='%s' on passthrough/VF hostdevs, 'no' on vendor vGPU VFs" % managed_default,
          "\n".join(managed_ok))
    check(not shape_ok, label + ": record entries are complete (request, parent, types, v5 mdev UUIDs, vfio driver)",
          "\n".join(shape_ok))
    check(not sys_ok, label + ": record matches the host (devices exist, mdev types, new='yes'/'no')", "\n".join(sys_ok))

    # Request accounting.
    cs = [d for d in rec if d.get("request") == "cloudstack"]
    gpu_in = [k for k in in_keys if k and ((k[0] == "pci" and is_gpu_function(h, k[1])) or
                                           (k[0] == "mdev" and h.mdev_exists(k[1])))]
    check(sorted(map(str, gpu_in)) == sorted(map(str, [("mdev", d["uuid"].lower()) if d.get("kind") == "mdev"
                                                       else ("pci", d.get("address")) for d in cs])),
          label + ": CloudStack's own GPU hostdevs are exactly the record's request='cloudstack' devices",
          "GPU hostdevs in input %s\nrecord %s" % (gpu_in, [(d.get("kind"), d.get("address") or d.get("uuid")) for d in cs]))
    if cs:
        check(all(d.get("request") == "cloudstack" for d in rec),
              label + ": with CloudStack GPU hostdevs, metadata and rule requests are not used")
    elif nreq:
        want = [int(r.get("count", "1")) if (r.get("count") or "1").isdigit() else None
                for r in metadata_requests(in_root)]
        got = [len([d for d in rec if d.get("request") == str(i)]) for i in range(nreq)]
        check(want == got, label + ": the record answers each metadata request with its count",
              "count asked %s, devices recorded %s" % (want, got))

    # The rest of the document is kept.
    a, b = strip_ours(in_root, root, rec)
    diff = tree_diff(a, b)
    check(diff is None, label + ": the rest of the document is kept (order, comments, attributes, text)", diff)
    missing = ns_decls(data_in) - ns_decls(out)
    check(not missing, label + ": namespace declarations kept", missing)

    # Our schema, libvirt's schema and parser: once per golden output (case_goldens), which
    # this output must equal (case_case).

    check_reservation(label, state, root, rec)
    return root, rec


def case_case(name, forms=False):
    """One entry of cases.json, run as a file argument: its exit, stderr, output (check_output),
    golden output, idempotence and reuse. With FORMS also every other way to call it (the
    CloudStack argv forms, stdin, --no-libvirt): transformer.cmake asks that of a few cases."""
    c = case_by_name(name)
    h = host(c["host"])
    with open(domain_file(c), "rb") as f:
        data = f.read()
    cfg = write_config(config_doc(c.get("config")))
    label = name
    st = mktemp("gpuh-state-")
    r = run(h.args(st, cfg) + [domain_file(c)])

    if c.get("expect") == "error":
        want = c.get("error_contains", "")
        check(r.rc == 1, label + ": exit 1", r.why())
        check(r.out == b"", label + ": nothing on stdout", r.out[:300])
        check(r.one_line() and want.encode() in r.err, label + ": one line on stderr containing %r" % want, r.why())
        check(only_lock(st), label + ": nothing reserved (state dir: at most the lock and an empty reservations/)", state_files(st))
        if forms and len(data) < 120 * 1024 and b"\0" not in data:
            st2 = mktemp("gpuh-state-")
            text = data.decode("utf-8", "surrogateescape")
            r2 = run(["transform", text], env=h.env(st2, cfg))
            if text.lstrip().startswith("<"):
                check(r2.rc == 1 and r2.out == b"" and r2.one_line() and want.encode() in r2.err,
                      label + ": CloudStack form: exit 1, one line containing %r, nothing on stdout" % want, r2.why())
            else:               # not the CloudStack form: a usage error is as good (the agent keeps its XML)
                check(r2.rc in (1, 2) and r2.out == b"",
                      label + ": as argv[2] (not the CloudStack form): exit 1 or 2, nothing on stdout", r2.why())
            check(only_lock(st2), label + ": CloudStack form: nothing reserved", state_files(st2))
        check(h.unchanged(), label + ": the host tree is unchanged")
        return

    ok = check(r.rc == 0, label + ": exit 0", r.why())
    check(r.err == b"", label + ": nothing on stderr", r.why())
    if not ok:
        return
    out = r.out
    root, _ = check_output(label, h, c.get("config"), data, out, st)
    if root is None:
        return

    # Golden output.
    golden = os.path.join(domains_dir(), "expected", name + ".xml")
    if os.environ.get("GPUH_UPDATE_GOLDEN"):
        os.makedirs(os.path.dirname(golden), exist_ok=True)
        with open(golden, "wb") as f:
            f.write(out)
        print("updated " + golden)
    elif check(os.path.exists(golden), label + ": golden output exists"):
        with open(golden, "rb") as f:
            check(f.read() == out, label + ": equals the golden output fixtures/domains/expected/%s.xml" % name)

    if forms:
        check_forms(label, h, c, cfg, data, out)

    # Idempotence and reuse, same state dir.
    res1, _ = load_reservation(st, dom_name(root))
    r6 = run(h.args(st, cfg) + ["-"], stdin=out)
    check(r6.rc == 0 and r6.err == b"" and r6.out == out, label + ": transforming the output again gives the same bytes",
          r6.why())
    res2, _ = load_reservation(st, dom_name(root))
    same = lambda x, y: (x is None and y is None) or (x is not None and y is not None and all(
        x.get(k) == y.get(k) for k in ("domain", "uuid", "devices", "state")))
    check(same(res1, res2), label + ": ... and keeps the same reservation", "%s\n%s" % (res1, res2))
    r7 = run(h.args(st, cfg) + [domain_file(c)])
    check(r7.rc == 0 and r7.err == b"" and r7.out == out,
          label + ": transforming the input again (a restart) reuses the reservation: same bytes", r7.why())
    check(same(res1, load_reservation(st, dom_name(root))[0]), label + ": ... and the same reservation")
    check(h.unchanged(), label + ": the host tree is unchanged")


def check_forms(label, h, c, cfg, data, out):
    """The same bytes from every form, each in a fresh state dir."""
    st2 = mktemp("gpuh-state-")
    r2 = run(["transform", data.decode("utf-8", "surrogateescape")], env=h.env(st2, cfg))
    check(r2.rc == 0 and r2.err == b"" and r2.out == out,
          label + ": CloudStack form (transform \"<xml>\", settings from the environment) gives the same bytes",
          r2.why())
    st3 = mktemp("gpuh-state-")
    r3 = run(["transform", data.decode("utf-8", "surrogateescape").rstrip("\n")], env=h.env(st3, cfg))
    check(r3.rc == 0 and r3.err == b"" and r3.out.rstrip(b"\n") == out.rstrip(b"\n"),
          label + ": CloudStack form as \"$(cat FILE)\" (trailing newline stripped) gives the same document",
          r3.why())
    st4 = mktemp("gpuh-state-")
    r4 = run(h.args(st4, cfg) + ["-"], stdin=data)
    check(r4.rc == 0 and r4.err == b"" and r4.out == out, label + ": stdin ('-') gives the same bytes", r4.why())
    st5 = mktemp("gpuh-state-")
    r5 = run(h.args(st5, cfg, libvirt=False) + [domain_file(c)])
    check(r5.rc == 0 and r5.err == b"" and r5.out == out,
          label + ": --no-libvirt with the domain XML files gives the same bytes", r5.why())


def case_goldens():
    """Every golden output (fixtures/domains/expected/NAME.xml, which case NAME's output must
    equal), checked once here rather than at every run of the binary: its gpuhooks:gpu against
    our schema, the document against libvirt's domain.rng and libvirt's own parser (virsh
    define on test:///default, every hostdev kept), each where the case's input passes too."""
    rng = os.path.join(ARGS.src, "schemas", "gpuhooks-domain.rng")
    have_rng = check(os.path.exists(rng), "schemas/gpuhooks-domain.rng exists")
    cases = []
    for c in load_cases():
        golden = os.path.join(domains_dir(), "expected", "%s.xml" % c.get("name"))
        if c.get("expect") != "ok":
            continue
        if not check(os.path.exists(golden), "%s: golden output exists" % c["name"]):
            continue
        with open(domain_file(c), "rb") as f:
            data_in = f.read()
        with open(golden, "rb") as f:
            out = f.read()
        try:
            root = parse(out)
        except ET.ParseError as e:
            check(False, "%s: the golden output is well-formed XML" % c["name"], e)
            continue
        cases.append((c["name"], data_in, out, root))

    # Our element validates against our schema.
    gpu_files = {}
    for name, _, _, root in cases:
        g = gpu_elements(root)
        if g:
            gpu_files[name] = write_tmp(ET.tostring(g[0]))
    if have_rng:
        valid = xmllint_valid_many(rng, list(gpu_files.values()))
        for name, p in gpu_files.items():
            check(valid[p][0], name + ": gpuhooks:gpu validates against gpuhooks-domain.rng", valid[p][1])

    # libvirt's own schema: the output validates where the input does.
    ins = {name: write_tmp(data_in) for name, data_in, _, _ in cases}
    vin = xmllint_valid_many(LIBVIRT_RNG, list(ins.values()))
    outs = {name: write_tmp(out) for name, _, out, _ in cases if vin[ins[name]][0]}
    vout = xmllint_valid_many(LIBVIRT_RNG, list(outs.values()))
    for name, _, _, _ in cases:
        if name in outs:
            ok, msg = vout[outs[name]]
            check(ok, name + ": output validates against libvirt's domain.rng (the input does)", msg)
        else:
            skip(name + ": input does not validate against libvirt's domain.rng, output not checked against it")

    # libvirt's parser: defines the output where it defines the input, keeping every hostdev.
    accepts = virsh_roundtrip_many({(name, "in"): data_in for name, data_in, _, _ in cases})
    dumps = virsh_roundtrip_many({(name, "out"): out for name, _, out, _ in cases if accepts[(name, "in")][0]})
    for name, _, out, _ in cases:
        ok_in, msg_in = accepts[(name, "in")]
        if not ok_in:
            skip(name + ": libvirt (test:///default) rejects the input too, define check not applicable: " +
                 (msg_in.splitlines()[-1][:200] if msg_in else ""))
            continue
        ok, dump = dumps[(name, "out")]
        if not check(ok, name + ": libvirt defines the output (virsh define/dumpxml)", dump):
            continue
        want = sorted(map(str, [hostdev_key(hd) for hd in hostdevs(parse(out))]))
        got = sorted(map(str, [hostdev_key(hd) for hd in hostdevs(parse(dump.encode()))]))
        check(want == got, name + ": libvirt keeps every hostdev (%d) with its source address/UUID" % len(want),
              "output  %s\ndumpxml %s" % (want, got))


def case_explain(name):
    c = case_by_name(name)
    h = host(c["host"])
    path = domain_file(c)
    with open(path, "rb") as f:
        in_root = parse(f.read())
    cfg = write_config(config_doc(c.get("config")))
    st = mktemp("gpuh-state-")
    r = run(h.args(st, cfg) + ["--explain", path])
    try:
        doc = json.loads(r.out)
    except ValueError as e:
        check(False, name + " --explain: stdout is JSON", "%s; %s" % (e, r.why()))
        return
    check(isinstance(doc, dict) and all(k in doc for k in ("domain", "requests", "candidates", "chosen", "error")),
          name + " --explain: has domain, requests, candidates, chosen, error", sorted(doc) if isinstance(doc, dict) else doc)
    if not isinstance(doc, dict):
        return
    check(doc.get("domain") == dom_name(in_root), name + " --explain: names the domain", doc.get("domain"))
    check(isinstance(doc.get("requests"), list) and isinstance(doc.get("candidates"), list) and
          isinstance(doc.get("chosen"), list), name + " --explain: requests, candidates, chosen are lists")
    check(not os.path.exists(os.path.join(st, "reservations")) or not os.listdir(os.path.join(st, "reservations")),
          name + " --explain: reserves nothing", state_files(st))
    if c.get("expect") == "error":
        want = c.get("error_contains", "")
        check(isinstance(doc.get("error"), str) and want in doc["error"],
              name + " --explain: error names the failure (%r)" % want, "%r (exit %s)" % (doc.get("error"), r.rc))
        check(r.rc in (0, 1), name + " --explain: exit 0 or 1", r.why())
        return
    check(r.rc == 0 and r.err == b"", name + " --explain: exit 0, nothing on stderr", r.why())
    check(doc.get("error") is None, name + " --explain: error is null", doc.get("error"))
    chosen = doc.get("chosen") or []
    check(all(isinstance(x, dict) and "request" in x and "kind" in x and x.get("why") for x in chosen),
          name + " --explain: every chosen entry has request, kind, why", chosen)
    check(all(isinstance(x, dict) and "request" in x and isinstance(x.get("free"), list)
              for x in doc.get("candidates") or []), name + " --explain: every candidates entry has request, free")

    r2 = run(h.args(st, cfg) + [path])
    if not check(r2.rc == 0, name + ": the real transform after --explain: exit 0", r2.why()):
        return
    rec = record(parse(r2.out))

    def key(x):
        """request, kind, device; an mdev also by uuid and type (record: mdev-type, explain: mdev_type)."""
        k = x.get("kind")
        if k == "mdev":
            return (str(x.get("request")), k, x.get("parent") or x.get("device"), (x.get("uuid") or "").lower(),
                    x.get("mdev_type") or x.get("mdev-type"))
        return (str(x.get("request")), k, x.get("address") or x.get("device"))
    check(all((x.get("parent") and x.get("uuid") and x.get("mdev_type")) if x.get("kind") == "mdev"
              else x.get("address") for x in chosen),
          name + " --explain: chosen entries name the device as documented "
          "('address'; an mdev by 'parent', 'uuid', 'mdev_type')", chosen)
    check(sorted(map(str, map(key, chosen))) == sorted(map(str, map(key, rec))),
          name + " --explain: chosen is what the transform then records",
          "chosen %s\nrecord %s" % (sorted(map(key, chosen)), sorted(map(key, rec))))

    # Once reserved, --explain shows the reservation it would reuse.
    r3 = run(h.args(st, cfg) + ["--explain", path])
    try:
        doc3 = json.loads(r3.out)
    except ValueError as e:
        check(False, name + " --explain after the transform: stdout is JSON", "%s; %s" % (e, r3.why()))
        return
    check(r3.rc == 0 and isinstance(doc3, dict) and
          all(k in doc3 for k in ("domain", "requests", "candidates", "chosen", "error")),
          name + " --explain after the transform: has domain, requests, candidates, chosen, error",
          sorted(doc3) if isinstance(doc3, dict) else doc3)
    check(isinstance(doc3, dict) and sorted(map(str, map(key, doc3.get("chosen") or []))) ==
          sorted(map(str, map(key, rec))), name + " --explain after the transform: chosen is the reservation",
          doc3.get("chosen") if isinstance(doc3, dict) else None)


# ---------------------------------------------------------------------------------------------
# Concurrency

A2 = "hpe-dl380g9-a2-vgpu"
DGX = "dgx2-v100-nvswitch"
A2_PROFILE = "NVIDIA A2-4Q"


def a2_capacity(h, profile):
    """Instances of PROFILE the A2 host can still give: available_instances per parent, at
    most one vGPU per VF (README: "each VF carries at most one vGPU"), and on a GPU whose VFs
    are the parents, its framebuffer (the type's max_instance x framebuffer) less the
    framebuffer of the vGPUs that exist on its VFs."""
    used = h.used_by_domains()
    n = 0
    per_gpu = {}
    for p in h.mdev_parents():
        t = h.mdev_type_of(p, profile)
        if not t:
            continue
        try:
            with open(os.path.join(t, "available_instances")) as f:
                avail = int(f.read())
        except (OSError, ValueError):
            avail = 0
        existing = [u for u in os.listdir(os.path.join(h.dev(p))) if re.fullmatch(r"[0-9a-f-]{36}", u)]
        free_existing = [u for u in os.listdir(os.path.join(t, "devices")) if ("mdev", u) not in used]
        is_vf = os.path.islink(os.path.join(h.dev(p), "physfn"))
        if is_vf:
            n_here = 1 if (free_existing or (avail > 0 and not existing)) else 0
            pf = os.path.basename(os.readlink(os.path.join(h.dev(p), "physfn")))
            g = per_gpu.setdefault(pf, {"new": 0, "reuse": 0, "fb_used": 0, "t": t})
            if free_existing:
                g["reuse"] += n_here
            else:
                g["new"] += n_here
            for u in existing:
                with open(os.path.join(h.dev(p), u, "mdev_type", "description")) as f:
                    m = re.search(r"framebuffer=(\d+)M", f.read())
                g["fb_used"] += int(m.group(1)) if m else 0
        else:
            n += avail + len(free_existing)
    for pf, g in per_gpu.items():
        with open(os.path.join(g["t"], "description")) as f:
            desc = f.read()
        fb = int(re.search(r"framebuffer=(\d+)M", desc).group(1))
        total = int(re.search(r"max_instance=(\d+)", desc).group(1)) * fb
        n += g["reuse"] + min(g["new"], max(0, (total - g["fb_used"]) // fb))
    return n


def dgx_capacity(h):
    used = h.used_by_domains()
    return len([a for a in h.pci_devices() if h.attr(a, "vendor") == "0x10de" and h.attr(a, "device") == "0x1db8"
                and ("pci", a) not in used])


def template_domain(host_name, mode):
    """A case of cases.json on HOST asking for MODE in its metadata (the brief's "copies of the
    fixture"), else None: the caller then builds its own."""
    try:
        cases = load_cases()
    except (OSError, ValueError):
        return None
    for c in cases:
        if c.get("host") != host_name or c.get("expect") != "ok" or config_doc(c.get("config")) != {}:
            continue
        try:
            with open(domain_file(c), "rb") as f:
                data = f.read()
            root = parse(data)
        except (OSError, ET.ParseError):
            continue
        reqs = metadata_requests(root)
        if len(reqs) == 1 and reqs[0].get("mode") == mode and reqs[0].get("count", "1") == "1" and \
                reqs[0].get("numa", "prefer") != "require" and \
                not any(hostdev_key(hd) for hd in hostdevs(root)):
            return c["name"], data
    return None


def concurrency_run(label, h, datas, capacity, n_parallel):
    st = mktemp("gpuh-state-")
    cfg = write_config({})
    procs = []
    paths = [write_tmp(d) for d in datas]
    t0 = time.monotonic()
    for p in paths:
        procs.append(subprocess.Popen([ARGS.bin] + h.args(st, cfg) + [p], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=clean_env()))
    results = []
    for pr in procs:
        try:
            out, err = pr.communicate(timeout=60)
            results.append(Result(pr.returncode, out, err, time.monotonic() - t0))
        except subprocess.TimeoutExpired:
            pr.kill()
            out, err = pr.communicate()
            results.append(Result("timeout", out, err, time.monotonic() - t0))
    bad = [(i, r.why()) for i, r in enumerate(results)
           if not ((r.rc == 0 and r.err == b"" and r.out.lstrip().startswith(b"<")) or
                   (r.rc == 1 and r.out == b"" and r.one_line()))]
    check(not bad, label + ": each of %d parallel transforms succeeds or fails with one line" % n_parallel,
          "\n".join("#%d %s" % b for b in bad))
    fails = [r for r in results if r.rc == 1]
    check(all(b"free" in r.err.lower() for r in fails),
          label + ": failures say how many were free", "\n".join(r.err.decode("utf-8", "replace") for r in fails[:3]))
    okd = [(datas[i], r) for i, r in enumerate(results) if r.rc == 0]
    check(len(okd) == capacity, label + ": %d succeeded, the host could give %d" % (len(okd), capacity),
          "failures: " + "; ".join(r.err.decode("utf-8", "replace").strip() for r in fails[:4]))
    pci, parents, uuids = [], [], []
    for data, r in okd:
        root = parse_or_none(r.out)
        if root is None:
            check(False, label + ": output is XML", r.out[:200])
            continue
        rec = record(root)
        for d in rec:
            if d.get("kind") == "mdev":
                parents.append(d.get("parent"))
                uuids.append(d.get("uuid"))
            else:
                pci.append(d.get("address"))
                pci += d["companions"]
    dup = lambda xs: sorted({x for x in xs if xs.count(x) > 1})
    check(not dup(pci), label + ": no PCI address given twice", dup(pci))
    check(not dup(uuids), label + ": no mdev UUID given twice", dup(uuids))
    check(not dup(parents), label + ": no mdev parent VF given twice (each A2 VF carries at most one vGPU)",
          dup(parents))
    used = {k[1] for k in h.used_by_domains()}
    check(not (set(pci) | set(uuids)) & used, label + ": nothing given that a domain uses",
          (set(pci) | set(uuids)) & used)
    names = sorted(dom_name(parse(d)) for d, _ in okd)
    resdir = os.path.join(st, "reservations")
    files = sorted(f[:-5] for f in os.listdir(resdir) if f.endswith(".json")) if os.path.isdir(resdir) else []
    check(files == names, label + ": one reservation per successful domain, none for the failed ones",
          "reservations %s\nsucceeded %s" % (files, names))
    all_res = []
    for f in files:
        res, _ = load_reservation(st, f)
        all_res += [str(k) for k in res_device_keys(res or {})]
    check(not dup(all_res), label + ": no device in two reservations", dup(all_res))
    check(not [f for f in state_files(st) if not (f == "lock" or f == "reservations" or
                                                   re.fullmatch(r"reservations/[^/]+\.json", f))],
          label + ": no temporary files left in the state dir", state_files(st))
    if okd:
        data, r = okd[0]
        r2 = run(h.args(st, cfg) + ["-"], stdin=data)
        check(r2.rc == 0 and r2.out == r.out, label + ": a successful domain transformed again gets the same bytes",
              r2.why())
    return st


def case_concurrency():
    n = 16
    # 1. mdev requests on the A2 (16 VFs, 3 hold a vGPU: 13 can take one A2-4Q each).
    h = host(A2)
    tpl = template_domain(A2, "mdev")
    if tpl:
        print("       A2 template: case %s" % tpl[0])
        profile = metadata_requests(parse(tpl[1]))[0].get("profile")
        base = tpl[1]
    else:
        print("       A2 template: generated (no single-mdev-request case in cases.json)")
        profile = A2_PROFILE
        base = make_domain("x", str(uuid.uuid4()), [{"mode": "mdev", "profile": profile}])
    cap = a2_capacity(h, profile)
    check(0 < cap < n, "A2 %s: host capacity %d is below %d requests (test premise)" % (profile, cap, n))
    datas = [rename(base, "i-3-%d-VM" % (500 + i), str(uuid.uuid5(uuid.NAMESPACE_URL, "gpuh-a2-%d" % i)))
             for i in range(n)]
    concurrency_run("A2 mdev x%d" % n, h, datas, cap, n)

    # 2. Passthrough on the DGX-2 (16 V100, 4 used by domains: 12 free).
    h = host(DGX)
    tpl = template_domain(DGX, "passthrough")
    if tpl:
        print("       DGX-2 template: case %s" % tpl[0])
        base = tpl[1]
    else:
        print("       DGX-2 template: generated")
        base = make_domain("x", str(uuid.uuid4()), [{"mode": "passthrough", "vendor": "10de", "device": "1db8"}])
    cap = dgx_capacity(h)
    check(0 < cap < n, "DGX-2: host capacity %d is below %d requests (test premise)" % (cap, n))
    datas = [rename(base, "i-3-%d-VM" % (600 + i), str(uuid.uuid5(uuid.NAMESPACE_URL, "gpuh-dgx-%d" % i)))
             for i in range(n)]
    concurrency_run("DGX-2 passthrough x%d" % n, h, datas, cap, n)
    check(host(A2).unchanged() and host(DGX).unchanged(), "concurrency: the host trees are unchanged")


# ---------------------------------------------------------------------------------------------
# Capacity: NVIDIA vendor vGPUs against the GPU's framebuffer (issue 8, item 10)

L40S = "l40s-vendor-vgpu"
L40S_48Q_DOMAIN = "37-dumpxml-request-vendor-vgpu-l40s-48q.xml"


def type_gb(name):
    """The frame buffer (GB) an NVIDIA vGPU type name carries: 'NVIDIA L40S-8Q' -> 8."""
    m = re.search(r"-(\d+)[A-Z]{1,4}$", name or "")
    return None if not m else (0.5 if m.group(1) == "0" else int(m.group(1)))


def vendor_state(h):
    """{PF: [(VF, current type id, {id: name} creatable)]} of the vendor vGPU VFs, from the tree."""
    gpus = {}
    for a in h.pci_devices():
        nv = os.path.join(h.dev(a), "nvidia")
        if not os.path.isdir(nv):
            continue
        pf = os.path.basename(os.readlink(os.path.join(h.dev(a), "physfn")))
        with open(os.path.join(nv, "current_vgpu_type")) as f:
            cur = int(f.read())
        with open(os.path.join(nv, "creatable_vgpu_types")) as f:
            lst = dict((int(i), n.strip()) for i, n in re.findall(r"^\s*(\d+)\s*:\s*(.+)$", f.read(), re.M))
        gpus.setdefault(pf, []).append((a, cur, lst))
    return gpus


def vendor_capacity(h, type_id, promised_gb):
    """vGPUs of TYPE_ID the host can still give: per GPU, its VFs set to the type and unused,
    then as many free VFs listing it as the framebuffer left holds (the GPU's framebuffer: the
    largest type any list names; taken: the types set on its VFs and PROMISED_GB[PF])."""
    gpus = vendor_state(h)
    used = {k[1] for k in h.used_by_domains()}
    names = {i: n for vfs in gpus.values() for _, _, lst in vfs for i, n in lst.items()}
    gpu_gb = max(type_gb(n) for n in names.values())
    need = type_gb(names[type_id])
    per = {}
    for pf, vfs in gpus.items():
        reuse = len([a for a, cur, _ in vfs if cur == type_id and a not in used])
        new = len([a for a, cur, lst in vfs if cur == 0 and type_id in lst and a not in used])
        taken = sum(type_gb(names.get(cur)) or need for _, cur, _ in vfs if cur) + promised_gb.get(pf, 0)
        per[pf] = reuse + min(new, int((gpu_gb - taken) // need))
    return per, names[type_id], need


def case_capacity():
    h = host(L40S)
    try:
        with open(os.path.join(domains_dir(), L40S_48Q_DOMAIN), "rb") as f:
            base = f.read()
    except OSError as e:
        check(False, "capacity: the domain %s is readable (%s)" % (L40S_48Q_DOMAIN, e))
        return
    st = mktemp("gpuh-state-")
    cfg = write_config({})
    promised = {}

    def transforms(label, type_id, prefix):
        """Transforms of different domains asking for TYPE_ID, one after the other in one state
        dir, until one is refused: as many succeed as the host holds, each on a VF of its own."""
        per, name, need = vendor_capacity(h, type_id, promised)
        cap = sum(per.values())
        print("       %s: %s (%s GB) fits %s" % (label, name, need, per))
        given = []
        for i in range(cap + 1):
            data = rename(base, "i-3-%d-VM" % (prefix + i), str(uuid.uuid5(uuid.NAMESPACE_URL, "gpuh-cap-%d" % (prefix + i))))
            data = data.replace(b'profile="NVIDIA L40S-48Q"', b'profile="' + name.encode() + b'"')
            r = run(h.args(st, cfg) + [write_tmp(data)])
            if i < cap:
                rec = record(parse(r.out)) if r.rc == 0 else []
                if not check(r.rc == 0 and r.err == b"" and len(rec) == 1 and rec[0].get("kind") == "vendor-vgpu" and
                             rec[0].get("vgpu-type") == str(type_id),
                             "%s: domain %d of %d gets a %s VF" % (label, i + 1, cap, name), r.why()):
                    return given
                given.append((rec[0].get("parent"), rec[0].get("address")))
                promised[rec[0].get("parent")] = promised.get(rec[0].get("parent"), 0) + need
            else:
                err = r.err.decode("utf-8", "replace")
                check(r.rc == 1 and r.out == b"" and r.one_line() and "free" in err,
                      "%s: domain %d (one more than fits) is refused with one line" % (label, i + 1), r.why())
                full = [pf for pf in sorted(vendor_state(h)) if "GPU %s (" % pf in err]
                check(full and all(pf in full for pf, _ in given) and
                      re.search(r"GPU [0-9a-f:.]+ \(\d+ of \d+ MiB in use or promised, it holds \d+ x %d MiB\)" %
                                (need * 1024), err),
                      "%s: the refusal names the GPUs that are full and their framebuffer" % label, err)
        vfs = [a for _, a in given]
        check(len(set(vfs)) == len(vfs), "%s: no VF given twice" % label, vfs)
        got = {}
        for pf, _ in given:
            got[pf] = got.get(pf, 0) + 1
        check(got == {pf: n for pf, n in per.items() if n}, "%s: per GPU as many as fit" % label,
              "given %s, fit %s" % (got, per))
        return given

    # L40S-48Q takes a whole 48 GB L40S: one on each of the two free GPUs, none on af:00.0
    # (three 8 GB vGPUs set there), the third domain is refused.
    g48 = transforms("L40S-48Q", 1156, 700)
    check(len(g48) == 2, "L40S-48Q: exactly one per free 48 GB GPU (2)", g48)
    # Then L40S-8Q: the two 48Q promises fill their GPUs; af:00.0 holds 6 x 8 GB, 3 set (one
    # of them free to reuse), so 1 + 3.
    g8 = transforms("L40S-8Q", 1152, 800)
    check(len(g8) == 4 and all(pf == "0000:af:00.0" for pf, _ in g8),
          "L40S-8Q: af:00.6 (set, free) and 3 more on af:00.0, nothing on the full GPUs", g8)
    resdir = os.path.join(st, "reservations")
    files = sorted(f for f in os.listdir(resdir) if f.endswith(".json")) if os.path.isdir(resdir) else []
    check(len(files) == len(g48) + len(g8), "capacity: one reservation per successful domain, none for the refused",
          files)
    check(h.unchanged(), "capacity: the host tree is unchanged")


# ---------------------------------------------------------------------------------------------
# NVIDIA's time-sliced vGPU modes (issue 11, item 4): in equal-size mode (the driver's default,
# or NVML's heterogeneous mode off) a GPU carrying one size takes no other, refused at transform
# time; in mixed-size mode (NVML says so: the fake libnvidia-ml.so.1 of tests/fakenvml) sizes
# share a GPU within its framebuffer. NVIDIA's own example: 4 x L40S-6Q + 2 x L40S-12Q.

L40S_TYPES = [{"id": 1151, "name": "NVIDIA L40S-6Q", "framebuffer_mib": 6144, "max_instances": 8},
              {"id": 1152, "name": "NVIDIA L40S-8Q", "framebuffer_mib": 8192, "max_instances": 6},
              {"id": 1153, "name": "NVIDIA L40S-12Q", "framebuffer_mib": 12288, "max_instances": 4},
              {"id": 1156, "name": "NVIDIA L40S-48Q", "framebuffer_mib": 49152, "max_instances": 1}]


def fake_nvml(hetero):
    """(environment, state file) for the fake NVML with the fixture's three L40S in mode HETERO."""
    lib = os.path.abspath(os.path.join(ARGS.hosts, "..", "..", "tests", "fakenvml", "libnvidia-ml.so.1"))
    st = write_tmp(json.dumps({"gpus": [{"pci_bus_id": a, "vgpu_heterogeneous_mode": hetero, "vgpu_types": L40S_TYPES}
                                        for a in ("0000:26:00.0", "0000:3d:00.0", "0000:af:00.0")]}),
                   suffix=".json", prefix="gpuh-nvml-")
    return {"GPUHOOKS_NVML_LIB": lib, "GPUH_FAKE_NVML_STATE": st}, lib


def case_vgpu_modes():
    h = host(L40S)
    cfg = write_config({})
    mix = make_domain("i-4-900-VM", str(uuid.uuid5(uuid.NAMESPACE_URL, "gpuh-modes-900")),
                      [{"mode": "vendor-vgpu", "profile": "NVIDIA L40S-6Q", "count": "4"},
                       {"mode": "vendor-vgpu", "profile": "NVIDIA L40S-12Q", "count": "2"}])
    path = write_tmp(mix)
    env_equal, lib = fake_nvml(0)
    if not check(os.path.exists(lib), "vgpu-modes: the fake NVML is built (%s)" % lib):
        return
    env_mixed, _ = fake_nvml(1)
    no_nvml = {"GPUHOOKS_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"}

    for label, env, default in (("no NVML (the driver's default)", no_nvml, True),
                                ("NVML: equal-size", env_equal, False)):
        st = mktemp("gpuh-state-")
        r = run(h.args(st, cfg) + [path], env=env)
        err = r.err.decode("utf-8", "replace")
        check(r.rc == 1 and r.out == b"" and r.one_line(), "vgpu-modes, %s: 4 x 6Q + 2 x 12Q refused at transform "
              "time with one line" % label, r.why())
        check("request 1 asks for 2 x vendor-vgpu 'NVIDIA L40S-12Q'" in err and
              "equal-size vGPU mode" in err and "keeps one size per GPU" in err and
              "0000:26:00.0 has NVIDIA L40S-6Q" in err and "0000:af:00.0 has NVIDIA L40S-8Q" in err,
              "vgpu-modes, %s: the refusal names the mode and the size on each GPU" % label, err)
        check(("the driver's default" in err) == default,
              "vgpu-modes, %s: it says whether the mode is %s" % (label, "assumed" if default else "NVML's"), err)
        check(not os.listdir(os.path.join(st, "reservations")) if os.path.isdir(os.path.join(st, "reservations")) else True,
              "vgpu-modes, %s: nothing reserved" % label, state_files(st))

    # mixed-size: granted, each VF once, every GPU within its 48 GB
    st = mktemp("gpuh-state-")
    r = run(h.args(st, cfg) + [path], env=env_mixed)
    rec = record(parse(r.out)) if r.rc == 0 else []
    check(r.rc == 0 and r.err == b"" and len(rec) == 6, "vgpu-modes, NVML: mixed-size: 4 x 6Q + 2 x 12Q granted", r.why())
    names = {str(t["id"]): t["name"] for t in L40S_TYPES}
    per, vfs = {}, [d.get("address") for d in rec]
    set_gb = {}
    for pf, vfl in vendor_state(h).items():
        set_gb[pf] = sum(type_gb(names.get(str(cur), "")) or 0 for _, cur, _ in vfl if cur)
    for d in rec:
        per[d.get("parent")] = per.get(d.get("parent"), 0) + type_gb(names[d.get("vgpu-type")])
    check(len(set(vfs)) == 6 and sorted(d.get("vgpu-type") for d in rec) == ["1151"] * 4 + ["1153"] * 2,
          "vgpu-modes, mixed-size: six distinct VFs, four 6Q and two 12Q", rec)
    check(all(per[pf] + set_gb.get(pf, 0) <= 48 for pf in per),
          "vgpu-modes, mixed-size: no GPU past its 48 GB framebuffer", {"granted GB": per, "set GB": set_gb})

    # an exhausted type is used up, and by whom: never 'not known'
    st = mktemp("gpuh-state-")
    base = make_domain("i-4-910-VM", str(uuid.uuid5(uuid.NAMESPACE_URL, "gpuh-modes-910")),
                       [{"mode": "vendor-vgpu", "profile": "NVIDIA L40S-48Q"}])
    holders = []
    for i in range(3):
        name = "i-4-%d-VM" % (910 + i)
        data = rename(base, name, str(uuid.uuid5(uuid.NAMESPACE_URL, "gpuh-modes-%d" % (910 + i))))
        r = run(h.args(st, cfg) + [write_tmp(data)], env=env_equal)
        if i < 2:
            check(r.rc == 0, "vgpu-modes: %s gets an L40S-48Q" % name, r.why())
            holders.append(name)
        else:
            err = r.err.decode("utf-8", "replace")
            check(r.rc == 1 and r.one_line() and "NVIDIA L40S-48Q is used up:" in err and
                  all(" by %s" % n in err for n in holders) and "not known" not in err,
                  "vgpu-modes: the third 48Q is refused as used up, naming who holds it", r.why())
    check(h.unchanged(), "vgpu-modes: the host tree is unchanged")

    # MIG-backed types sit on GPU instances of their own: sizes mix in MIG mode (the H100 has an
    # H100-1-10C set), and a free GI, not the framebuffer, is the budget: the host has one free
    # 3g.40gb GI (the VFs' lists say one is free; nvml.json says how many), so one H100-3-40C.
    h = host("h100-mig-vendor-vgpu")
    with open(os.path.join(ARGS.src, "fixtures", "hosts", "h100-mig-vendor-vgpu", "nvml.json")) as f:
        h100_state = write_tmp(f.read().encode(), suffix=".json", prefix="gpuh-nvml-")
    for label, env in (("no NVML", no_nvml), ("NVML", {"GPUHOOKS_NVML_LIB": lib, "GPUH_FAKE_NVML_STATE": h100_state})):
        st = mktemp("gpuh-state-")
        base = make_domain("i-4-920-VM", str(uuid.uuid5(uuid.NAMESPACE_URL, "gpuh-modes-920")),
                           [{"mode": "vendor-vgpu", "profile": "NVIDIA H100-3-40C"}])
        r = run(h.args(st, cfg) + [write_tmp(base)], env=env)
        rec = record(parse(r.out)) if r.rc == 0 else []
        check(r.rc == 0 and len(rec) == 1 and rec[0].get("vgpu-type") == "1703" and rec[0].get("parent") == "0000:ae:00.0",
              "vgpu-modes, %s: an H100-3-40C beside the H100-1-10C on the MIG GPU" % label, r.why())
        data = rename(base, "i-4-921-VM", str(uuid.uuid5(uuid.NAMESPACE_URL, "gpuh-modes-921")))
        r = run(h.args(st, cfg) + [write_tmp(data)], env=env)
        err = r.err.decode("utf-8", "replace")
        check(r.rc == 1 and r.one_line() and "NVIDIA H100-3-40C is used up: 0000:ae:00.5 by i-4-920-VM" in err and
              "equal-size" not in err and "framebuffer full" not in err,
              "vgpu-modes, %s: a second H100-3-40C waits for a GI, refused as used up by the first" % label, r.why())
    check(h.unchanged(), "vgpu-modes: the H100 host tree is unchanged")


# ---------------------------------------------------------------------------------------------
# Hostile input

def generated_hostile():
    req = '<gpuhooks:gpu xmlns:gpuhooks="urn:gpuhooks:domain:1"><gpuhooks:request mode="mdev" profile="NVIDIA A2-4Q"/></gpuhooks:gpu>'

    def dom(name="i-9-1-VM", body="", pre=""):
        return (pre + "<domain type='kvm'><name>%s</name><uuid>0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4a77</uuid>"
                "<metadata>%s</metadata>%s<memory>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
                "<devices/></domain>\n" % (name, req, body)).encode("utf-8", "surrogateescape")
    out = {}
    out["gen-5mib.xml"] = dom(body="<description>%s</description>" % ("x" * (5 << 20)))
    out["gen-4mib-plus-1.xml"] = None      # filled below: exactly 4 MiB + 1 byte
    base = dom(body="<description></description>")
    out["gen-4mib-plus-1.xml"] = base.replace(b"<description></description>",
                                              b"<description>" + b"y" * ((4 << 20) + 1 - len(base)) + b"</description>")
    out["gen-nested-10000.xml"] = dom(body="<description/>" + "<x:a xmlns:x='urn:x'>" + "<x:a>" * 9999 +
                                      "</x:a>" * 10000)
    out["gen-nested-10000-metadata.xml"] = ("<domain><name>i-9-1-VM</name><metadata>" + "<a>" * 10000 +
                                            "</a>" * 10000 + "</metadata></domain>\n").encode()
    out["gen-doctype-entity.xml"] = dom(pre="<!DOCTYPE domain [<!ENTITY e 'i-9-1-VM'>]>\n").replace(
        b"<name>i-9-1-VM</name>", b"<name>&e;</name>")
    out["gen-doctype-xxe.xml"] = dom(pre="<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\n",
                                     body="<description>&x;</description>")
    laughs = "<!DOCTYPE domain [<!ENTITY a0 'ha'>" + "".join(
        "<!ENTITY a%d '%s'>" % (i, ("&a%d;" % (i - 1)) * 10) for i in range(1, 10)) + "]>\n"
    out["gen-billion-laughs.xml"] = dom(pre=laughs, body="<description>&a9;</description>")
    out["gen-invalid-utf8.xml"] = dom(body="<description>\udcff\udcfe</description>")
    out["gen-name-slash.xml"] = dom(name="../../etc/i-9-1-VM")
    out["gen-name-dotdot.xml"] = dom(name="..")
    out["gen-name-256.xml"] = dom(name="i" * 256)
    out["gen-name-control.xml"] = dom(name="i-9-&#1;-VM")
    out["gen-truncated.xml"] = dom()[:-40]
    out["gen-empty.xml"] = b""
    out["gen-not-domain.xml"] = b"<node><domain><name>i-9-1-VM</name></domain></node>\n"
    out["gen-two-roots.xml"] = dom() + dom()
    out["gen-nul.xml"] = dom(body="<description>a\0b</description>")
    return out


def case_hostile():
    h = host(A2)
    cfg = write_config({})
    d = os.path.join(domains_dir(), "hostile")
    files = {}
    if check(os.path.isdir(d) and os.listdir(d), "hostile: fixtures/domains/hostile/ has files"):
        for dp, _, fs in os.walk(d):
            for f in sorted(fs):
                p = os.path.join(dp, f)
                with open(p, "rb") as fh:
                    files[os.path.relpath(p, d)] = fh.read()
    files.update(generated_hostile())
    for name, data in sorted(files.items()):
        path = write_tmp(data, suffix="-" + os.path.basename(name).replace("/", "_"))
        st = mktemp("gpuh-state-")
        r = run(h.args(st, cfg) + [path], timeout=30)
        check(r.rc == 1 and r.out == b"" and r.one_line() and r.cpu < SLOW_S and only_lock(st),
              "hostile %s (%d bytes): exit 1, one line, nothing on stdout, nothing reserved, < %.0f s" %
              (name, len(data), SLOW_S), r.why() + ("" if only_lock(st) else "\nstate: %s" % state_files(st)))
        # The CloudStack form: only what execve(2) can carry (no NUL, one argument < 128 KiB).
        if b"\0" in data or len(data) >= 128 * 1024 - 1:
            skip("hostile %s: not passable as argv[2] (%s)" % (name, "NUL byte" if b"\0" in data else "too big"))
            continue
        st = mktemp("gpuh-state-")
        text = data.decode("utf-8", "surrogateescape")
        r = run(["transform", text], env=h.env(st, cfg), timeout=30)
        if text.lstrip().startswith("<"):
            ok = r.rc == 1 and r.one_line()
        else:                       # not recognised as the CloudStack form: a usage error is fine
            ok = r.rc in (1, 2)
        check(ok and r.out == b"" and r.cpu < SLOW_S and only_lock(st),
              "hostile %s as argv[2]: exit 1 (one line), nothing on stdout, nothing reserved" % name,
              r.why() + ("" if only_lock(st) else "\nstate: %s" % state_files(st)))
    check(h.unchanged(), "hostile: the host tree is unchanged")
    # Below the size limit is fine: a 3.9 MiB document without a request comes back unchanged.
    big = ("<domain type='kvm'><name>i-9-2-VM</name><uuid>0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4a78</uuid>"
           "<description>%s</description><memory>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
           "<devices/></domain>\n" % ("z" * (4 * 1024 * 1024 - 100 * 1024))).encode()
    st = mktemp("gpuh-state-")
    r = run(h.args(st, cfg) + [write_tmp(big)])
    check(r.rc == 0 and r.out == big and r.cpu < SLOW_S,
          "a 3.9 MiB document without a request: exit 0, byte-identical", r.why())


# ---------------------------------------------------------------------------------------------
# Command line

def case_cli():
    h = host(A2)
    cfg = write_config({})
    st = mktemp("gpuh-state-")
    data = make_domain("i-4-1-VM", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4c01", [{"mode": "mdev", "profile": A2_PROFILE}])
    path = write_tmp(data)

    r = run(["--bogus"])
    check(r.rc == 2 and r.out == b"" and r.one_line() and b"--bogus" in r.err,
          "unknown option: exit 2, one line on stderr naming it, nothing on stdout", r.why())
    r = run(h.args(st, cfg) + ["--bogus", path])
    check(r.rc == 2 and r.out == b"" and only_lock(st), "unknown option among good ones: exit 2, nothing reserved", r.why())
    r = run(h.args(st, cfg) + ["--state-dir"])
    check(r.rc == 2 and r.out == b"" and r.one_line(), "missing option argument: exit 2, one line", r.why())
    r = run(h.args(st, cfg) + [path, path])
    check(r.rc == 2 and r.out == b"", "two input files: exit 2", r.why())
    missing = os.path.join(TMP, "no-such-dir", "domain.xml")
    r = run(h.args(st, cfg) + [missing])
    check(r.rc == 1 and r.out == b"" and r.one_line() and missing.encode() in r.err,
          "missing input file: exit 1, one line naming the path", r.why())
    check(only_lock(st), "nothing reserved by the failed runs", state_files(st))

    r = run(["--help"])
    text = r.out.decode("utf-8", "replace")
    opts = ("--config", "--sysfs-root", "--state-dir", "--connect", "--no-libvirt", "--domain-xml-dir", "--explain",
            "-v", "--help", "--version")
    check(r.rc == 0 and r.err == b"" and all(o in text for o in opts), "--help lists every option",
          "missing: %s; %s" % ([o for o in opts if o not in text], r.why()))
    r = run(["--version"])
    check(r.rc == 0 and r.err == b"" and r.out.startswith(b"libvirt-vm-xml-transformer (gpuhooks) ") and
          r.out.count(b"\n") == 1, "--version: 'libvirt-vm-xml-transformer (gpuhooks) VERSION'", r.why())

    bad = write_tmp('{"transformer": {"allow_mixd": true}}', suffix=".json")
    r = run(h.args(st, bad) + [path])
    check(r.rc == 1 and r.out == b"" and r.one_line() and b"allow_mixd" in r.err and only_lock(st),
          "config with an unknown key: exit 1, one line naming the key, nothing on stdout", r.why())
    r = run(h.args(st, os.path.join(TMP, "nonexistent.json")) + [path])
    check(r.rc == 1 and r.out == b"" and r.one_line() and b"nonexistent.json" in r.err and only_lock(st),
          "missing named config: exit 1, one line naming it", r.why())
    stc = mktemp("gpuh-state-")
    r = run(["transform", data.decode()], env=dict(h.env(stc, cfg), GPUHOOKS_CONFIG=bad))
    check(r.rc == 1 and r.out == b"" and b"allow_mixd" in r.err, "GPUHOOKS_CONFIG is read (CloudStack form)",
          r.why())

    # A broken configuration never blocks a domain that asks for no GPU (issue 8, item 2): it
    # passes byte for byte; a GPU domain fails closed with one line naming the file and the key.
    def hostdev(addr=None, uuid=None):
        if uuid:
            return ("\n    <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'>"
                    "<source><address uuid='%s'/></source></hostdev>" % uuid)
        d, rest = addr.split(":", 1)
        b, sf = rest.split(":")
        sl, fn = sf.split(".")
        return ("\n    <hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/><source>"
                "<address domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'/></source></hostdev>" % (d, b, sl, fn))
    with open(os.path.join(ARGS.src, "fixtures", "domains", "03-dumpxml-i-2-6-VM-cs4.22dev.xml"), "rb") as f:
        plain = f.read()
    ilo = make_domain("i-4-2-VM", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4c02", [], extra_devices=hostdev("0000:01:00.0"))
    cs_gpu = make_domain("i-4-3-VM", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4c03", [], extra_devices=hostdev("0000:08:00.0"))
    cs_mdev = make_domain("i-4-4-VM", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4c04", [],
                          extra_devices=hostdev(uuid="f715f63c-0d00-4007-9c5a-b07b0c6c05de"))
    rule_cfg = {"transformer": {"rules": [{"match": {"name": "i-2-*"}, "requests": [{"mode": "passthrough"}]}]}}
    broken = [("an unknown key", '{"transformer": {"allow_mixd": true}}', "transformer.allow_mixd"),
              ("a bad value", '{"state_change": {"write_timeout_ms": 5}}', "state_change.write_timeout_ms")]
    for what, text, key in broken:
        bad_cfg = write_tmp(text, suffix=".json")
        sb = mktemp("gpuh-state-")
        for label, doc in (("a domain without GPUs", plain), ("a domain with a non-GPU hostdev (the iLO)", ilo)):
            r = run(h.args(sb, bad_cfg) + [write_tmp(doc)])
            check(r.rc == 0 and r.out == doc and r.err == b"" and only_lock(sb),
                  "config with %s: %s passes unchanged, exit 0, silent" % (what, label), r.why())
            r = run(["transform", doc.decode()], env=h.env(sb, bad_cfg))
            check(r.rc == 0 and r.out == doc and r.err == b"",
                  "config with %s: %s passes unchanged in the CloudStack form" % (what, label), r.why())
        for label, doc in (("a request element", data), ("CloudStack's GPU hostdev", cs_gpu),
                           ("CloudStack's mdev hostdev", cs_mdev)):
            r = run(h.args(sb, bad_cfg) + [write_tmp(doc)])
            check(r.rc == 1 and r.out == b"" and r.one_line() and bad_cfg.encode() in r.err and key.encode() in r.err
                  and only_lock(sb), "config with %s: a domain with %s fails closed, one line naming the file and "
                  "the key, nothing reserved" % (what, label), r.why())
        # the configuration's rules, valid on their own, still say which domains want GPUs
        with open(bad_cfg, "w") as f:
            doc = json.loads(text)
            doc.setdefault("transformer", {}).update(rule_cfg["transformer"])
            json.dump(doc, f)
        r = run(h.args(sb, bad_cfg) + [write_tmp(plain)])
        check(r.rc == 1 and r.out == b"" and r.one_line() and key.encode() in r.err and b"transformer.rules" in r.err
              and only_lock(sb), "config with %s beside a valid rule matching the domain: fails closed" % what,
              r.why())

    # The CloudStack form: any METHOD, white space before the document; no stdin is read.
    s1, s2, s3, s4 = (mktemp("gpuh-state-") for _ in range(4))
    r1 = run(h.args(s1, cfg) + [path])
    ok = check(r1.rc == 0 and r1.err == b"", "the file form works on a plain mdev request", r1.why())
    r2 = run(["anything", data.decode()], env=h.env(s2, cfg))
    check(ok and r2.rc == 0 and r2.out == r1.out, "CloudStack form: any METHOD is accepted", r2.why())
    r3 = run(["transform", "\n  " + data.decode()], env=h.env(s3, cfg))
    check(ok and r3.rc == 0 and r3.out.lstrip() == r1.out.lstrip(),
          "CloudStack form: white space before '<' is allowed", r3.why())
    r4 = run(h.args(s4, cfg), stdin=data)
    check(ok and r4.rc == 0 and r4.out == r1.out, "no FILE: the document is read from stdin", r4.why())
    r5 = run(["-v"] + h.args(mktemp("gpuh-state-"), cfg) + [path])
    check(r5.rc == 0 and r5.out == r1.out, "-v: same output", r5.why())
    print("       (-v wrote %d lines on stderr for a successful transform)" % r5.err.count(b"\n"))
    # options after the FILE, as getopt users expect (issue 12)
    r6 = run([path] + h.args(mktemp("gpuh-state-"), cfg))
    check(ok and r6.rc == 0 and r6.out == r1.out, "options after FILE: the same output", r6.why())
    # --format json: what succeeds prints as ever
    r7 = run(h.args(mktemp("gpuh-state-"), cfg) + [path, "--format", "json"])
    check(ok and r7.rc == 0 and r7.out == r1.out and r7.err == b"", "--format json: a success prints the XML",
          r7.why())
    check(h.unchanged(), "cli: the host tree is unchanged")
    json_errors()
    audit_records()


def audit_lines(r):
    """The JSON records among -v's stderr lines ('libvirt-vm-xml-transformer: {...}')."""
    out = []
    for line in r.err.decode("utf-8", "replace").splitlines():
        _, _, rest = line.partition(": ")
        if rest.startswith("{"):
            out.append(json.loads(rest))
    return out


def audit_records():
    """One JSON audit record per decision, in the state-change hook's form (docs/logging.md,
    issue 12): the devices chosen and why each, or the refusal and its cause; none for a domain
    that asks for no GPU, none for --explain."""
    h = host("dgx2-v100-nvswitch")
    cfg = write_config({})
    st = mktemp("gpuh-state-")
    ok_path = domain_file(case_by_name("request-numa-vcpupin-v100"))
    r = run(["-v"] + h.args(st, cfg) + [ok_path])
    recs = audit_lines(r)
    rec = recs[0] if len(recs) == 1 else {}
    devs = rec.get("devices") or [{}]
    check(r.rc == 0 and len(recs) == 1 and rec.get("event") == "allocate" and rec.get("vm") == "i-2-6-VM" and
          rec.get("source") == "metadata" and rec.get("errno") == 0 and
          [q.get("mode") for q in rec.get("requests", [])] == ["passthrough"] and len(devs) == 1 and
          devs[0].get("address") == ((load_reservation(st, "i-2-6-VM")[0] or {}).get("devices") or [{}])[0].get("address") and
          "numa node 1 (the vCPUs')" in devs[0].get("why", "") and isinstance(rec.get("duration_ms"), float),
          "a choice: one 'allocate' record, the request, the device reserved and why (its NUMA node)", recs)
    st2 = mktemp("gpuh-state-")
    bad_path = domain_file(case_by_name("request-too-many-v100"))
    r = run(["-v"] + h.args(st2, cfg) + [bad_path])
    recs = audit_lines(r)
    rec = recs[0] if len(recs) == 1 else {}
    check(r.rc == 1 and len(recs) == 1 and rec.get("event") == "refuse" and rec.get("errno") == 28 and
          "only 12 free" in rec.get("error", "") and rec.get("requests", [{}])[0].get("count") == 16 and
          "devices" not in rec, "a refusal: one 'refuse' record, the request, errno ENOSPC and the cause", recs)
    hr = host("consumer-rtx3080")
    r = run(["-v"] + hr.args(mktemp("gpuh-state-"), cfg) + [domain_file(case_by_name("cs421-pci-rtx3080-in-use"))])
    recs = audit_lines(r)
    check(r.rc == 1 and len(recs) == 1 and recs[0].get("event") == "refuse" and recs[0].get("device") == "0000:05:00.0"
          and recs[0].get("errno") == 16 and recs[0].get("source") == "cloudstack",
          "a refusal of CloudStack's hostdev naming a device: the record's device and source", recs)
    with open(os.path.join(ARGS.src, "fixtures", "domains", "03-dumpxml-i-2-6-VM-cs4.22dev.xml"), "rb") as f:
        plain = f.read()
    r = run(["-v"] + h.args(mktemp("gpuh-state-"), cfg), stdin=plain)
    check(r.rc == 0 and audit_lines(r) == [], "a domain without GPUs: no record", r.why())
    r = run(["-v", "--explain"] + h.args(mktemp("gpuh-state-"), cfg) + [ok_path])
    check(r.rc == 0 and audit_lines(r) == [], "--explain (nothing reserved): no record", r.why())


def json_error(r, label):
    """The one JSON error object of --format json on R's stdout, nothing on stderr; None if not."""
    try:
        doc = json.loads(r.out)
    except ValueError:
        doc = None
    ok = (isinstance(doc, dict) and r.err == b"" and r.out.count(b"\n") == 1 and isinstance(doc.get("error"), str)
          and "\n" not in doc["error"] and set(doc) - {"plan"} == {"error", "errno", "device"}
          and (doc["errno"] is None or isinstance(doc["errno"], int)))
    check(ok, label + ": one JSON object {error, errno, device} on stdout, nothing on stderr", r.why())
    return doc if ok else None


def json_errors():
    """--format json: a failure is one JSON object on stdout (docs/errors.md, issue 12)."""
    h = host("consumer-rtx3080")
    cfg = write_config({})
    st = mktemp("gpuh-state-")
    c = case_by_name("cs421-pci-rtx3080-in-use")
    path = domain_file(c)
    r = run(h.args(st, cfg) + [path])
    check(r.rc == 1 and r.out == b"" and r.one_line(), "text form (default): one line on stderr", r.why())
    text = r.err.decode().strip()
    r = run(h.args(st, cfg) + ["--format", "json", path])
    doc = json_error(r, "a device in use")
    check(r.rc == 1 and doc is not None and text.endswith(doc["error"]) and doc["device"] == "0000:05:00.0"
          and doc["errno"] == 16, "... the same line, errno EBUSY (16), the device 0000:05:00.0", r.why())
    check(only_lock(st), "... nothing reserved", state_files(st))
    r = run(h.args(st, cfg) + [path, "--explain", "--format=json"])
    doc = json_error(r, "--explain of a refusal")
    check(r.rc == 1 and doc is not None and isinstance(doc.get("plan"), dict) and doc["device"] == "0000:05:00.0",
          "... carries the plan as its member 'plan'", r.why())
    r = run(["--format", "json", "--bogus"])
    doc = json_error(r, "an unknown option")
    check(r.rc == 2 and doc is not None and doc["errno"] is None and doc["device"] is None and "--bogus" in doc["error"],
          "... exit 2, errno null, device null, the option named", r.why())
    r = run(["--bogus", "--format", "json"])
    check(r.rc == 2 and json_error(r, "an unknown option before --format json") is not None,
          "... also when --format json comes after it", r.why())
    r = run(["--format", "yaml"])
    check(r.rc == 2 and r.out == b"" and b"yaml" in r.err, "--format yaml: exit 2, text", r.why())
    r = run(h.args(st, os.path.join(TMP, "nonexistent.json")) + ["--format", "json", path])
    doc = json_error(r, "a missing named config")
    check(r.rc == 1 and doc is not None and "nonexistent.json" in doc["error"] and doc["device"] is None,
          "... names it, device null", r.why())
    r = run(["transform", open(path).read()], env=h.env(mktemp("gpuh-state-"), cfg))
    check(r.rc == 1 and r.out == b"" and r.one_line(), "the CloudStack form is unchanged: one line on stderr", r.why())


# ---------------------------------------------------------------------------------------------
# Reservations

def case_reservations():
    h = host(DGX)
    cfg = write_config({})
    used = {k[1] for k in h.used_by_domains()}
    free = [a for a in h.pci_devices() if h.attr(a, "vendor") == "0x10de" and h.attr(a, "device") == "0x1db8"
            and a not in used]
    if not check(len(free) >= 3, "reservations: the DGX-2 has free V100s (%d)" % len(free)):
        return
    now = int(time.time())
    want_all = {"mode": "passthrough", "vendor": "10de", "device": "1db8", "count": str(len(free))}
    want_less = dict(want_all, count=str(len(free) - 1))
    me = ("i-5-1-VM", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4d01")
    other_uuid = "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4dff"

    def given(r):
        root = parse_or_none(r.out)
        return [] if root is None else [d.get("address") for d in record(root)]

    # Expired reservation of another domain: reclaimed.
    st = mktemp("gpuh-state-")
    p = write_reservation(st, "i-9-900-VM", other_uuid, [{"kind": "pci", "address": free[0]}], now - 1200, now - 600)
    r = run(h.args(st, cfg) + [write_tmp(make_domain(*me, [want_all]))])
    check(r.rc == 0 and free[0] in given(r),
          "expired reservation of another domain: reclaimed, its device %s given (all %d asked)" % (free[0], len(free)),
          r.why())
    left, _ = load_reservation(st, "i-9-900-VM")
    check(left is None or free[0] not in [d.get("address") for d in left.get("devices", [])],
          "expired reservation: no longer holds the device", left)

    # Live reservation of another domain (not defined in libvirt yet, as at a CloudStack start): respected.
    st = mktemp("gpuh-state-")
    p = write_reservation(st, "i-9-901-VM", other_uuid, [{"kind": "pci", "address": free[0]}], now - 10, now + 3600)
    with open(p, "rb") as f:
        before = f.read()
    r = run(h.args(st, cfg) + [write_tmp(make_domain(*me, [want_all]))])
    check(r.rc == 1 and r.out == b"" and r.one_line() and b"free" in r.err.lower(),
          "live reservation of another domain: asking for all %d fails, one line saying how many were free" % len(free),
          r.why())
    check(load_reservation(st, me[0])[0] is None, "... and reserves nothing for the failed domain")
    r = run(h.args(st, cfg) + [write_tmp(make_domain(*me, [want_less]))])
    check(r.rc == 0 and free[0] not in given(r) and len(given(r)) == len(free) - 1,
          "live reservation of another domain: its device %s is not given" % free[0], r.why())
    with open(p, "rb") as f:
        check(f.read() == before, "live reservation of another domain: left untouched")

    # A running reservation of a domain libvirt knows is kept even past `expires`.
    st = mktemp("gpuh-state-")
    lv = ET.parse(os.path.join(h.root, "libvirt.xml")).getroot()
    d60 = [d for d in lv.iter("domain") if d.findtext("name") == "i-2-60-VM"]
    if d60:
        write_reservation(st, "i-2-60-VM", d60[0].findtext("uuid"), [{"kind": "pci", "address": "0000:34:00.0"},
                                                                      {"kind": "pci", "address": free[1]}],
                          now - 7200, now - 3600, st="running")
        r = run(h.args(st, cfg) + [write_tmp(make_domain(*me, [want_less]))])
        check(r.rc == 0 and free[1] not in given(r),
              "running reservation of an existing domain, past expires: respected (%s not given)" % free[1], r.why())
    else:
        skip("no domain i-2-60-VM in the DGX-2 fixture")

    # A running reservation whose domain is gone: reclaimed.
    st = mktemp("gpuh-state-")
    write_reservation(st, "i-9-903-VM", other_uuid, [{"kind": "pci", "address": free[0]}], now - 60, now + 3600,
                      st="running")
    r = run(h.args(st, cfg) + [write_tmp(make_domain(*me, [want_all]))])
    check(r.rc == 0 and free[0] in given(r), "running reservation whose domain is gone: reclaimed", r.why())
    st = mktemp("gpuh-state-")
    write_reservation(st, "i-9-903-VM", other_uuid, [{"kind": "pci", "address": free[0]}], now - 60, now + 3600,
                      st="running")
    r = run(h.args(st, cfg, libvirt=False) + [write_tmp(make_domain(*me, [want_all]))])
    check(r.rc == 0 and free[0] in given(r),
          "running reservation whose domain is gone (--no-libvirt, from the status files): reclaimed", r.why())
    # Neither libvirt nor the status files readable: never reclaimed on a guess.
    st = mktemp("gpuh-state-")
    write_reservation(st, "i-9-903-VM", other_uuid, [{"kind": "pci", "address": free[0]}], now - 60, now + 3600,
                      st="running")
    blind = ["--config", cfg, "--sysfs-root", h.sys, "--state-dir", st,
             "--connect", "qemu+unix:///system?socket=/nonexistent/libvirt-sock",
             "--domain-xml-dir", os.path.join(TMP, "nonexistent-run"),
             "--domain-xml-dir", os.path.join(TMP, "nonexistent-etc")]
    r = run(blind + [write_tmp(make_domain(*me, [want_all]))])
    check((r.rc == 1 and r.one_line() and r.out == b"") or (r.rc == 0 and free[0] not in given(r)),
          "running reservation, libvirt and status files unreadable: not reclaimed", r.why())
    print("       (usage unreadable: exit %s%s)" % (r.rc, "" if r.rc == 0 else ", " + r.err.decode().strip()))
    check((r.rc == 1 and r.one_line() and r.out == b"") or (r.rc == 0 and not set(given(r)) & used),
          "libvirt and status files unreadable: no GPU that a domain uses is handed out",
          "given %s" % sorted(set(given(r)) & used))

    # Same name, different UUID: not reused (mdev UUIDs derive from the domain UUID, so it shows).
    a2 = host(A2)
    st = mktemp("gpuh-state-")
    ua, ub = "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4e0a", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4e0b"
    da = make_domain("i-5-2-VM", ua, [{"mode": "mdev", "profile": A2_PROFILE}])
    db = make_domain("i-5-2-VM", ub, [{"mode": "mdev", "profile": A2_PROFILE}])
    ra = run(a2.args(st, cfg) + [write_tmp(da)])
    if check(ra.rc == 0, "same name: first domain (uuid A) transformed", ra.why()):
        rec_a = record(parse(ra.out))
        rb = run(a2.args(st, cfg) + [write_tmp(db)])
        if rb.rc == 0:
            rec_b = record(parse(rb.out))
            res, _ = load_reservation(st, "i-5-2-VM")
            check(not ({d.get("uuid") for d in rec_a} & {d.get("uuid") for d in rec_b}) and
                  all(d.get("uuid") in uuid5s(ub) for d in rec_b if d.get("new") == "yes"),
                  "same name, other UUID: the reservation is not reused (mdev UUIDs from uuid B)",
                  "A %s\nB %s" % (rec_a, rec_b))
            check(res is not None and res.get("uuid") == ub, "same name, other UUID: the reservation now holds uuid B",
                  res)
        else:
            check(rb.rc == 1 and rb.one_line() and rb.out == b"",
                  "same name, other UUID: refused with one line (not reused)", rb.why())
        # And the same name and UUID again: reused, same bytes.
        st2 = mktemp("gpuh-state-")
        r1 = run(a2.args(st2, cfg) + [write_tmp(da)])
        r2 = run(a2.args(st2, cfg) + [write_tmp(da)])
        check(r1.rc == 0 and r2.rc == 0 and r1.out == r2.out, "same name and UUID: reused, same bytes", r2.why())

    # The TTL comes from the config.
    st = mktemp("gpuh-state-")
    cfg30 = write_config({"transformer": {"reservation_ttl_s": 30}})
    r = run(h.args(st, cfg30) + [write_tmp(make_domain("i-5-3-VM", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4d03",
                                                       [{"mode": "passthrough"}]))])
    res, err = load_reservation(st, "i-5-3-VM")
    check(r.rc == 0 and res is not None and res.get("expires", 0) - res.get("created", 0) == 30,
          "transformer.reservation_ttl_s 30: expires = created + 30", res or err or r.why())

    # A state dir that does not exist yet (/run after a reboot) is created.
    st = os.path.join(mktemp("gpuh-state-"), "gpuhooks")
    r = run(h.args(st, cfg) + [write_tmp(make_domain("i-5-4-VM", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4d04",
                                                     [{"mode": "passthrough"}]))])
    check(r.rc == 0 and os.path.exists(reservation_path(st, "i-5-4-VM")),
          "a missing state dir is created", r.why())

    # A damaged reservation file of another domain does not crash anything.
    st = mktemp("gpuh-state-")
    os.makedirs(os.path.join(st, "reservations"))
    with open(reservation_path(st, "i-9-904-VM"), "w") as f:
        f.write('{"version": 1, "domain": "i-9-904-VM", "devi')
    r = run(h.args(st, cfg) + [write_tmp(make_domain("i-5-5-VM", "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4d05",
                                                     [{"mode": "passthrough"}]))])
    check((r.rc == 0 and r.err == b"") or (r.rc == 1 and r.one_line() and r.out == b""),
          "a damaged reservation file of another domain: exit 0, or 1 with one line", r.why())
    print("       (damaged reservation file: exit %s%s)" % (r.rc, "" if r.rc == 0 else ", " + r.err.decode().strip()))
    check(h.unchanged() and a2.unchanged(), "reservations: the host trees are unchanged")


# ---------------------------------------------------------------------------------------------
# cases.json itself

def case_cases_json():
    try:
        cases = load_cases()
    except (OSError, ValueError) as e:
        check(False, "cases.json is readable JSON", e)
        return
    check(isinstance(cases, list) and cases, "cases.json is a non-empty list")
    names = [c.get("name") for c in cases]
    check(len(set(names)) == len(names), "case names are unique",
          sorted({n for n in names if names.count(n) > 1}))
    allowed = {"name", "domain", "host", "expect", "error_contains", "config", "note"}
    for c in cases:
        n = c.get("name")
        problems = []
        if not isinstance(n, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", n):
            problems.append("name must be [A-Za-z0-9._-]+")
        if set(c) - allowed:
            problems.append("unknown keys %s" % sorted(set(c) - allowed))
        if c.get("expect") not in ("ok", "error"):
            problems.append("expect must be ok or error")
        if c.get("expect") == "error" and not c.get("error_contains"):
            problems.append("an error case needs error_contains")
        if not isinstance(c.get("domain"), str) or not os.path.isfile(domain_file(c)):
            problems.append("domain file %r missing" % c.get("domain"))
        if not os.path.isdir(os.path.join(ARGS.src, "fixtures", "hosts", c.get("host") or "-")):
            problems.append("host %r is not a fixture host" % c.get("host"))
        if "config" in c and not isinstance(c["config"], dict):
            problems.append("config must be an object")
        check(not problems, "case %s is well formed" % n, "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# Old agents and PCI domains

P8 = "power8-minsky-p100-vfio"
CS421 = "11-agent-cs421-pci-v100.xml"
CS421_ADDR = "domain='0x0000' bus='0x36' slot='0x00' function='0x0'"


def cs421_hostdev(name, dom_uuid_, address):
    """The 4.21 agent's domain (fixtures/domains/11-...) named NAME, its GPU hostdev's
    <address> attributes ADDRESS."""
    with open(os.path.join(domains_dir(), CS421), "rb") as f:
        data = f.read()
    assert CS421_ADDR.encode() in data
    return rename(data.replace(CS421_ADDR.encode(), address.encode()), name, dom_uuid_)


def case_old_agents():
    """CloudStack agents before 4.22.1 (apache/cloudstack PR #12981) write the inventory's
    000b:01:00.0 as domain='0x0000' bus='0x000b' slot='0x01' function='0x0' (the slot and
    function lost): on a host with GPUs in PCI domains 0002/0003/000a/000b, the transformer
    rewrites such an address to the one device the agent can have meant, and refuses it when
    that is ambiguous or the device is held elsewhere (issue 10, items 4 and 5)."""
    h = Host(P8)
    cfg = write_config({})
    old = "domain='0x0000' bus='0x%s' slot='0x01' function='0x0'"
    st = mktemp("gpuh-state-")
    data = cs421_hostdev("i-2-60-VM", "00000000-0000-4000-8000-000000000060", old % "000b")
    r = run(h.args(st, cfg) + [write_tmp(data)])
    root = parse_or_none(r.out) if r.rc == 0 else None
    ok = check(r.rc == 0 and r.err == b"" and root is not None, "000b:01:00.0 in the old agent's form: exit 0, silent",
               r.why())
    if ok:
        keys = [hostdev_key(hd) for hd in hostdevs(root)]
        rec = record(root)
        check(keys == [("pci", "000b:01:00.0")], "its hostdev now names 000b:01:00.0", keys)
        check([(d.get("kind"), d.get("address"), d.get("request")) for d in rec] ==
              [("pci", "000b:01:00.0", "cloudstack")], "the record holds CloudStack's 000b:01:00.0",
              rec)
        res, _ = load_reservation(st, "i-2-60-VM")
        check(res is not None and [d.get("address") for d in res["devices"]] == ["000b:01:00.0"],
              "reserved: 000b:01:00.0", res)
        check(xmllint_valid(LIBVIRT_RNG, write_tmp(r.out)), "the output is valid for libvirt's domain schema")
        r2 = run(h.args(st, cfg) + [write_tmp(r.out)])
        check(r2.rc == 0 and r2.out == r.out, "its output transformed again: the same (the record is the plan)",
              r2.why())
    r = run(["-v"] + h.args(mktemp("gpuh-state-"), cfg) + [write_tmp(data)])
    check(r.rc == 0 and b"0000:0b:01.0 rewritten to 000b:01:00.0" in r.err and b"4.22.1" in r.err,
          "-v: the rewrite is logged, naming both addresses and the agent version", r.why())

    # Held elsewhere, in the old form too: another domain's reservation, a domain libvirt knows.
    other = cs421_hostdev("i-2-61-VM", "00000000-0000-4000-8000-000000000061", old % "000b")
    r = run(h.args(st, cfg) + [write_tmp(other)])
    check(r.rc == 1 and r.out == b"" and r.one_line() and b"000b:01:00.0" in r.err and b"i-2-60-VM" in r.err,
          "another domain asking for 000b:01:00.0 (old form) while i-2-60-VM holds it: refused, one line naming both",
          r.why())
    r = run(h.args(st, cfg) + [write_tmp(cs421_hostdev("i-2-62-VM", "00000000-0000-4000-8000-000000000062",
                                                       old % "000a"))])
    check(r.rc == 1 and r.out == b"" and r.one_line() and b"000a:01:00.0" in r.err and b"i-2-80-VM" in r.err,
          "000a:01:00.0 (old form), which the defined domain i-2-80-VM names: refused, naming it", r.why())
    # The new agents' form of the same device is refused alike (the occupancy model, not the form).
    r = run(h.args(st, cfg) + [write_tmp(cs421_hostdev("i-2-63-VM", "00000000-0000-4000-8000-000000000063",
                                                       "domain='0x000b' bus='0x01' slot='0x00' function='0x0'"))])
    check(r.rc == 1 and r.one_line() and b"i-2-60-VM" in r.err, "000b:01:00.0 in the 4.22.1 form: refused alike",
          r.why())

    # A broken configuration: the old form of a GPU fails closed, as CloudStack's GPU hostdevs do.
    bad_cfg = write_tmp('{"transformer": {"allow_mixd": true}}', suffix=".json")
    sb = mktemp("gpuh-state-")
    r = run(h.args(sb, bad_cfg) + [write_tmp(cs421_hostdev("i-2-66-VM", "00000000-0000-4000-8000-000000000066",
                                                           old % "0003"))])
    check(r.rc == 1 and r.out == b"" and r.one_line() and b"allow_mixd" in r.err and only_lock(sb),
          "a broken configuration: the old form of 0003:01:00.0 fails closed, one line", r.why())

    # Nothing CloudStack allocates on the bus it would mean (000c:01): not ours, byte-identical.
    none = cs421_hostdev("i-2-64-VM", "00000000-0000-4000-8000-000000000064", old % "000c")
    st2 = mktemp("gpuh-state-")
    r = run(h.args(st2, cfg) + [write_tmp(none)])
    check(r.rc == 0 and r.out == none and only_lock(st2), "an address in that shape with no GPU on 000c:01: passes "
          "byte for byte, nothing reserved", r.why())
    check(h.unchanged(), "the host tree is unchanged")

    # Ambiguous: a function at 0000:02:01.0 too (the address as written): refused, never guessed.
    h2 = Host(P8)
    os.symlink("../../../devices/pci0002:00/0002:00:00.0", os.path.join(h2.sys, "bus", "pci", "devices",
                                                                        "0000:02:01.0"))
    st3 = mktemp("gpuh-state-")
    r = run(h2.args(st3, cfg) + [write_tmp(cs421_hostdev("i-2-65-VM", "00000000-0000-4000-8000-000000000065",
                                                         old % "0002"))])
    check(r.rc == 1 and r.out == b"" and r.one_line() and b"ambiguous" in r.err and b"0000:02:01.0" in r.err and
          b"0002:01:00.0" in r.err and only_lock(st3),
          "0000:02:01.0 exists as well as 0002:01:00.0: refused as ambiguous, one line naming both, nothing reserved",
          r.why())


def main():
    global ARGS, TMP, CACHE_DIR
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("case", choices=["case", "explain", "concurrency", "capacity", "vgpu-modes", "hostile", "cli", "reservations",
                                         "old-agents", "cases-json", "goldens"])
    ap.add_argument("arg", nargs="?")
    ap.add_argument("--forms", action="store_true", help="case: every way of calling it, not only a file")
    ARGS = ap.parse_args()
    if ARGS.case in ("case", "explain") and not ARGS.arg:
        ap.error("%s needs a case name" % ARGS.case)
    # Copies of the hosts are thousands of small files: tmpfs (/dev/shm, like /run/gpuhooks) unless
    # TMPDIR says otherwise.
    base = None
    if not os.environ.get("TMPDIR") and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        base = "/dev/shm"
    TMP = tempfile.mkdtemp(prefix="gpuh-transformer-", dir=base)
    CACHE_DIR = os.path.join(TMP, "names-cache")
    os.mkdir(CACHE_DIR)
    try:
        if ARGS.case == "cases-json":
            case_cases_json()
        elif ARGS.case == "goldens":
            case_goldens()
        elif not os.access(ARGS.bin, os.X_OK):
            check(False, "the binary %s exists" % ARGS.bin)
        elif ARGS.case == "case":
            case_case(ARGS.arg, ARGS.forms)
        elif ARGS.case == "explain":
            case_explain(ARGS.arg)
        elif ARGS.case == "concurrency":
            case_concurrency()
        elif ARGS.case == "capacity":
            case_capacity()
        elif ARGS.case == "vgpu-modes":
            case_vgpu_modes()
        elif ARGS.case == "hostile":
            case_hostile()
        elif ARGS.case == "cli":
            case_cli()
        elif ARGS.case == "reservations":
            case_reservations()
        elif ARGS.case == "old-agents":
            case_old_agents()
    finally:
        if os.environ.get("GPUH_KEEP_TMP"):
            print("kept " + TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
