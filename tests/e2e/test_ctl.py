#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of gpuhooksctl and of the inventory's capacity (issue 12).

  test_ctl.py --ctl BIN --discovery BIN --hook BIN --transformer BIN --hosts BUILD/fixtures/hosts --src SRC CASE

CASE: capacity | table | status | slots | plan | check | cli (read the fixture hosts as they are)
      release | reconcile (change devices: the FUSE sysfs emulator; exit 77 without it).
Prints one line per check and closes with 'N passed, N failed'.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import check  # noqa: E402

ARGS = None


def clean_env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUHOOKS_")}
    e.pop("LIBVIRT_DEFAULT_URI", None)
    return e


def host_opts(name, state=None):
    h = os.path.join(ARGS.hosts, name)
    o = ["--sysfs-root", os.path.join(h, "sys"), "--pci-ids", os.path.join(ARGS.src, "fixtures", "pci.ids"),
         "--no-libvirt", "--domain-xml-dir", os.path.join(h, "run", "libvirt", "qemu"),
         "--domain-xml-dir", os.path.join(h, "etc", "libvirt", "qemu")]
    return o + (["--state-dir", state] if state else [])


def ctl(args, timeout=60):
    return harness.run([ARGS.ctl] + args, text=True, env=clean_env(), timeout=timeout)


def discovery(args):
    return harness.run([ARGS.discovery] + args, text=True, env=clean_env(), timeout=60)


def inventory(name):
    r = discovery(host_opts(name))
    return json.loads(r.out) if r.rc == 0 else None


def caps_of(doc, gpu):
    g = next(g for g in doc["gpus"] if g["pci_address"] == gpu)
    return {c["profile"]: c for c in g["gpuhooks"]["capacity"]}


def case_capacity():
    """The numbers, computed by hand from the fixtures' READMEs."""
    a2 = caps_of(inventory("hpe-dl380g9-a2-vgpu"), "08:00.0")
    # A2: 16 GiB = 16384 MiB, 16 VFs; mdevs of A2-4C, A2-4A, A2-4Q (4096 MiB each) on 3 of them.
    # A2-4Q: max_instance=4 -> 4 x 4096 = 16384; used 3 x 4096 = 12288; (16384 - 12288) / 4096 = 1.
    # The 13 free VFs each offer it (available_instances 1): more = min(13, 1) = 1.
    c = a2["NVIDIA A2-4Q"]
    check((c["created"], c["in_use"], c["offered"], c["fb_room"], c["more"]) == (1, 1, 13, 1, 1),
          "A2-4Q: 1 created, 1 in use, offered by 13 free VFs, framebuffer room 1 -> 1 more", c)
    # A2-2Q: framebuffer room (8 x 2048 - 12288) / 2048 = 2, but in equal-size mode the VFs offer
    # only the 4 GB size in use (available_instances 0): more 0.
    c = a2["NVIDIA A2-2Q"]
    check((c["offered"], c["fb_room"], c["more"]) == (0, 2, 0), "A2-2Q: room for 2, the mode offers none -> 0 more", c)
    c = a2["NVIDIA A2-16Q"]
    check((c["fb_room"], c["more"]) == (0, 0), "A2-16Q: (1 x 16384 - 12288) / 16384 = 0 -> 0 more", c)

    m60 = inventory("dell-r740-m60-mdev")
    for gpu in ("3d:00.0", "3e:00.0"):
        c = caps_of(m60, gpu)
        # Each M60 GPU (8 GiB) has one GRID M60-8Q (8192 MiB, max_instance=1): every type's
        # available_instances is 0, so nothing more fits; PF types are ruled by the driver's count.
        check((c["GRID M60-8Q"]["created"], c["GRID M60-8Q"]["in_use"], c["GRID M60-8Q"]["more"]) == (1, 1, 0),
              "M60 %s: M60-8Q 1 created, 1 in use, 0 more" % gpu, c["GRID M60-8Q"])
        check(all(x["more"] == 0 and x["kind"] == "mdev" and x["fb_room"] is None for x in c.values()),
              "M60 %s: every type 0 more, kind mdev, no framebuffer figure" % gpu)

    l40s = inventory("l40s-vendor-vgpu")
    c = caps_of(l40s, "af:00.0")
    # L40S: the largest type, L40S-48Q, is the whole framebuffer: 49152 MiB. af:00.0 has three VFs
    # set to L40S-8Q (8192 MiB): 49152 / 8192 = 6 instances, 3 set -> room 3; 29 free VFs list
    # 8Q and 8A only (equal-size mode). Two of the three are used by domains.
    check((c["NVIDIA L40S-8Q"]["created"], c["NVIDIA L40S-8Q"]["in_use"], c["NVIDIA L40S-8Q"]["offered"],
           c["NVIDIA L40S-8Q"]["fb_room"], c["NVIDIA L40S-8Q"]["more"]) == (3, 2, 29, 3, 3),
          "L40S af:00.0: 8Q 3 set, 2 in use, 29 free VFs, room (6 - 3) -> 3 more", c["NVIDIA L40S-8Q"])
    check(set(c) == {"NVIDIA L40S-8Q", "NVIDIA L40S-8A"} and c["NVIDIA L40S-8A"]["more"] == 3,
          "L40S af:00.0: only 8Q and 8A are offered, 8A 3 more")
    c = caps_of(l40s, "26:00.0")
    # 26:00.0 has nothing set, 32 free VFs: 1Q: 49152 / 1024 = 48 by framebuffer, 32 by VFs -> 32;
    # 4Q: 49152 / 4096 = 12 -> 12; 48Q: 1 -> 1.
    check((c["NVIDIA L40S-1Q"]["offered"], c["NVIDIA L40S-1Q"]["fb_room"], c["NVIDIA L40S-1Q"]["more"]) == (32, 48, 32),
          "L40S 26:00.0: 1Q limited by the 32 VFs", c["NVIDIA L40S-1Q"])
    check(c["NVIDIA L40S-4Q"]["more"] == 12 and c["NVIDIA L40S-48Q"]["more"] == 1,
          "L40S 26:00.0: 4Q 12 more, 48Q 1 more")

    amd = inventory("amd-mxgpu-instinct")
    c = caps_of(amd, "83:00.0")
    vf = next(iter(c.values()))
    check(vf["kind"] == "vf" and (vf["created"], vf["in_use"], vf["more"]) == (4, 1, 3),
          "S7150 MxGPU: 4 VFs, 1 in use -> 3 more", vf)


def columns(header):
    return [m.start() for m in re.finditer(r"(?<=  )\S", "  " + header)]


def case_table():
    r = discovery(host_opts("intel-gvtg-igpu") + ["--format", "table"])
    lines = r.out.splitlines()
    check(r.rc == 0 and lines, "UHD 620 table: exit 0", r.why())
    head = lines[0]
    gpu = next(l for l in lines if l.startswith("0000:00:02.0"))
    check(gpu.index("i915") == head.index("DRIVER") and gpu.index("no: boot-vga") == head.index("PASSTHROUGH"),
          "UHD 620 table: the long model name and blocker list keep the columns aligned", "\n".join(lines[:3]))
    check(not any(l != l.rstrip() for l in lines), "table: no trailing blanks")
    check(any("profile" in l and "i915-GVTg_V5_8" in l and "1 in use, 1 more" in l for l in lines),
          "UHD 620 table: V5_8 profile row says 1 in use, 1 more")

    r = discovery(host_opts("dell-r740-m60-mdev") + ["--format", "table", "--gpu", "3d:00.0"])
    check(r.rc == 0 and "0000:3d:00.0" in r.out and "0000:3e:00.0" not in r.out, "--gpu 3d:00.0 shows that GPU only",
          r.why())
    r = discovery(host_opts("l40s-vendor-vgpu") + ["--format", "table", "--free", "--gpu", "0000:af:00.0"])
    check(r.rc == 0 and "0000:af:00.7" in r.out and "0000:af:00.4" not in r.out and "i-2-21-VM" not in r.out,
          "--free: the free VF af:00.7 shown, af:00.4 (used by i-2-21-VM) not", r.why())
    check("8Q" in r.out and "3 more" in r.out, "--free: the 8Q profile with its room")
    r = discovery(host_opts("l40s-vendor-vgpu") + ["--format", "table", "--gpu", "12:00.0"])
    check(r.rc == 1 and "no GPU at 0000:12:00.0" in r.err, "--gpu of no GPU: exit 1, says so", r.why())
    r = discovery(host_opts("l40s-vendor-vgpu") + ["--free"])
    check(r.rc == 2, "--free without --format table: usage error", r.why())

    r = ctl(["status", "--gpu", "0000:08:00.0", "--free"] + host_opts("hpe-dl380g9-a2-vgpu"))
    check(r.rc == 0 and "0000:08:00.5" in r.out and "0000:08:00.4" not in r.out and "A2-4Q" in r.out,
          "gpuhooksctl status --gpu --free: free VFs and the profiles with room", r.why())


def write_journal(state, domain, entries, created):
    d = os.path.join(state, "journal")
    os.makedirs(d, mode=0o700, exist_ok=True)
    with open(os.path.join(d, domain + ".journal"), "w") as f:
        f.write(json.dumps({"journal": 1, "domain": domain, "uuid": None, "created": created}) + "\n")
        for i, e in enumerate(entries):
            f.write(json.dumps(dict(seq=i + 1, **e)) + "\n")


def transform(name, state, fixture, vm):
    with open(os.path.join(ARGS.src, "fixtures", "domains", fixture)) as f:
        xml = f.read()
    xml = re.sub(r"<name>[^<]*</name>", "<name>%s</name>" % vm, xml, count=1)
    h = os.path.join(ARGS.hosts, name)
    p = subprocess.run([ARGS.transformer, "--sysfs-root", os.path.join(h, "sys"), "--state-dir", state,
                        "--no-libvirt", "--domain-xml-dir", os.path.join(h, "run", "libvirt", "qemu"),
                        "--domain-xml-dir", os.path.join(h, "etc", "libvirt", "qemu"), "-"], input=xml, capture_output=True, text=True,
                       env=clean_env(), timeout=60)
    return p


def schema_errors(name, doc):
    from jsonschema import Draft202012Validator
    with open(os.path.join(ARGS.src, "schemas", name)) as f:
        v = Draft202012Validator(json.load(f))
    return [e.message for e in v.iter_errors(doc)]


def case_status():
    tmp = tempfile.mkdtemp(prefix="gpuh-ctl-")
    try:
        state = os.path.join(tmp, "state")
        os.mkdir(state, 0o700)
        for vm in ("i-9-1-VM", "i-9-6-VM"):
            p = transform("l40s-vendor-vgpu", state, "22-dumpxml-request-vendor-vgpu-l40s-8q.xml", vm)
            check(p.returncode == 0, "the transformer reserves an L40S-8Q for " + vm, p.stderr)
        # a stuck domain's journal: it moved af:01.7 to vfio-pci, then died
        write_journal(state, "i-9-2-VM", [{"op": "driver", "device": "0000:af:01.7", "driver": "nvidia",
                                           "override": "", "to": "vfio-pci"}], int(time.time()) - 3600)
        r = ctl(["--format", "json", "status"] + host_opts("l40s-vendor-vgpu", state))
        check(r.rc == 0 and r.err == "", "status --format json: exit 0, nothing on stderr", r.why())
        doc = json.loads(r.out)
        check(schema_errors("gpuhooksctl-status.schema.json", doc) == [],
              "status --format json: valid against schemas/gpuhooksctl-status.schema.json",
              schema_errors("gpuhooksctl-status.schema.json", doc)[:5])
        res = {d["domain"]: d for d in doc["devices"] if d["state"] == "reserved"}
        check(sorted(res) == ["i-9-1-VM", "i-9-6-VM"] and all(d["kind"] == "vf" and d["until"] > doc["now"]
                                                               for d in res.values()),
              "status: a VF reserved by each domain, until a time to come", res)
        # the first takes the VF already set to 8Q that no domain uses (af:00.6, carved before)
        check(res.get("i-9-1-VM", {}).get("device") == "0000:af:00.6", "status: i-9-1-VM holds af:00.6",
              res.get("i-9-1-VM"))
        jd = [d for d in doc["devices"] if d["state"] == "journaled"]
        check([(d["device"], d["domain"]) for d in jd] == [("0000:af:01.7", "i-9-2-VM")],
              "status: af:01.7 journaled by the stuck i-9-2-VM", jd)
        used = {d["device"]: d["domain"] for d in doc["devices"] if d["state"] == "in-use"}
        check(used.get("0000:af:00.4") == "i-2-21-VM", "status: af:00.4 in use by i-2-21-VM", used)
        carved = [d["device"] for d in doc["devices"] if d["state"] == "carved"]
        check(carved == [], "status: nothing carved any more (af:00.6 is reserved)", carved)
        states = {d["state"] for d in doc["devices"]}
        check(states <= {"free", "reserved", "journaled", "in-use", "carved", "shared", "blocked", "driverless",
                         "quarantined"}, "status: every state is a documented one", states)
        # the second promises a type on a free VF: one less 8Q on its GPU than gpudiscovery says
        gpu = res["i-9-6-VM"]["gpu"]
        inv = caps_of(inventory("l40s-vendor-vgpu"), gpu[5:])
        cap = {c["profile"]: c for c in doc["capacity"] if c["gpu"] == gpu}
        check(cap["NVIDIA L40S-8Q"]["more"] == inv["NVIDIA L40S-8Q"]["more"] - 1,
              "status: the promised 8Q counts against its GPU's capacity (gpudiscovery: %d, status: %d)" %
              (inv["NVIDIA L40S-8Q"]["more"], cap["NVIDIA L40S-8Q"]["more"]))

        r = ctl(host_opts("l40s-vendor-vgpu", state) + ["status"])
        lines = r.out.splitlines()
        check(r.rc == 0 and lines[0].startswith("DEVICE") and any("journaled" in l and "i-9-2-VM" in l for l in lines),
              "status as a table", r.why())
        head, k = lines[0], lines[0].index("STATE")
        rows = lines[1:lines.index("")] if "" in lines else lines[1:]
        check(rows and all(l[k - 2:k] == "  " and l[k] != " " for l in rows),
              "status table: the STATE column starts at the same place on every row", "\n".join(rows[:5]))
        dirs = host_opts("l40s-vendor-vgpu")[4:]      # --no-libvirt and the fixture's XML directories
        r = ctl(["reservations", "--state-dir", state, "--format", "json"] + dirs)
        rs = json.loads(r.out) if r.rc == 0 else []
        check(r.rc == 0 and [x["domain"] for x in rs] == ["i-9-1-VM", "i-9-6-VM"] and rs[0]["state"] == "reserved" and
              rs[0]["live"] and 0 <= rs[0]["age_s"] < 120 and rs[0]["devices"] and rs[0]["domain_state"] == "undefined",
              "reservations --format json: i-9-1-VM, reserved, live, young, its device", r.out + r.err)
        r = ctl(["--state-dir", state, "reservations"] + dirs)
        check(r.rc == 0 and "i-9-1-VM" in r.out and "reserved" in r.out and "yes" in r.out, "reservations table", r.why())
        r = ctl(["journals", "--format", "json", "--state-dir", state] + dirs)
        js = json.loads(r.out) if r.rc == 0 else []
        check(r.rc == 0 and [x["domain"] for x in js] == ["i-9-2-VM"] and 3590 <= js[0]["age_s"] < 3700 and
              js[0]["entries"][0]["op"] == "driver" and js[0]["domain_state"] == "undefined",
              "journals --format json: i-9-2-VM, an hour old, libvirt does not know it, its entry",
              r.out + r.err)
        r = ctl(["journals", "--state-dir", state] + dirs)
        check(r.rc == 0 and re.search(r"i-9-2-VM\s+60m\s+\S+\s+undefined\s+1\s+driver pci-0000:af:01.7", r.out),
              "journals table: domain, age 60m, created, its state, 1 entry, the change", r.out)
        r = ctl(["journals", "--state-dir", os.path.join(tmp, "none")])
        check(r.rc == 0 and "(no journals)" in r.out, "journals without a state directory: none", r.why())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_plan():
    tmp = tempfile.mkdtemp(prefix="gpuh-ctl-")
    try:
        state = os.path.join(tmp, "state")
        os.mkdir(state, 0o700)
        p = transform("dgx2-v100-nvswitch", state, "25-dumpxml-request-numa-require-v100.xml", "i-9-3-VM")
        check(p.returncode == 0, "the transformer completes a V100 domain", p.stderr)
        xml = os.path.join(tmp, "dom.xml")
        with open(xml, "w") as f:
            f.write(p.stdout)
        before = sorted(os.listdir(state))
        h = os.path.join(ARGS.hosts, "dgx2-v100-nvswitch")
        opts = ["--sysfs-root", os.path.join(h, "sys"), "--state-dir", state, "--dev-dir", os.path.join(tmp, "dev")]
        r = ctl(["plan", xml, "--format", "json"] + opts)
        doc = json.loads(r.out) if r.rc == 0 else {}
        steps = doc.get("plan", {}).get("steps", [])
        check(r.rc == 0 and doc.get("ok") and doc["domain"] == "i-9-3-VM" and doc["plan"]["operation"] == "prepare" and
              any(s.get("step") == "write" or s.get("what") == "holders" for s in steps),
              "plan --format json: prepare's dry run, its steps", r.out[:800] + r.err)
        check(sorted(os.listdir(state)) == before, "plan changes nothing in the state directory")
        r = ctl(opts + ["plan", xml])
        check(r.rc == 0 and '"steps"' in r.out, "plan as text: the steps", r.why())
        r = ctl(opts + ["plan", os.path.join(tmp, "missing.xml")])
        check(r.rc == 1 and "missing.xml" in r.err, "plan of a missing file: exit 1, names it", r.why())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_check():
    r = ctl(["check", "--format", "json"] + host_opts("consumer-rtx3080") + ["--root", "/nonexistent"])
    doc = json.loads(r.out) if r.out.strip() else {}
    check(set(doc) == {"ready", "findings"} and r.rc == (0 if doc["ready"] else 1),
          "check --format json: the findings, exit 0 exactly when ready", r.why())
    r2 = ctl(["check"] + host_opts("consumer-rtx3080") + ["--root", "/nonexistent"])
    check(r2.rc == r.rc and r2.out.splitlines()[0].startswith("STATUS") and
          ("not ready" in r2.out) == (not doc["ready"]), "check as a table, same verdict", r2.why())


def case_cli():
    a = ctl(["status", "--format", "json"] + host_opts("hpe-dl380g9-a2-vgpu"))
    b = ctl(["--format", "json"] + host_opts("hpe-dl380g9-a2-vgpu")[:4] + ["status"] + host_opts("hpe-dl380g9-a2-vgpu")[4:])
    ja, jb = json.loads(a.out), json.loads(b.out)
    ja.pop("now")
    jb.pop("now")
    check(a.rc == 0 and ja == jb, "options before, after and around the verb: the same result")
    for args, what in ((["frobnicate"], "unknown verb"), ([], "no verb"), (["release"], "release without VMNAME"),
                       (["status", "--format", "xml"], "unknown format"), (["journals", "--free"], "--free on journals"),
                       (["status", "extra"], "an extra argument")):
        r = ctl(args)
        check(r.rc == 2 and r.out == "" and r.one_line(), "%s: exit 2, one line" % what, r.why())
    # a failure with --format json: one JSON error object on stdout, nothing on stderr (docs/errors.md)
    r = ctl(["status", "--format", "json", "--gpu", "0000:99:00.0"] + host_opts("hpe-dl380g9-a2-vgpu"))
    try:
        e = json.loads(r.out)
    except ValueError:
        e = None
    check(r.rc == 1 and r.err == "" and isinstance(e, dict) and "0000:99:00.0" in e.get("error", "") and
          e.get("device") == "0000:99:00.0" and "errno" in e, "a failure with --format json: one JSON error object", r.why())
    r = ctl(["status", "--gpu", "0000:99:00.0"] + host_opts("hpe-dl380g9-a2-vgpu"))
    check(r.rc == 1 and r.out == "" and r.err.startswith("gpuhooksctl: ") and r.one_line(),
          "the same failure as text: one line on stderr", r.why())
    r = ctl(["--help"])
    check(r.rc == 0 and all(v in r.out for v in ("status", "reservations", "journals", "release", "reconcile", "plan",
                                                  "check")), "--help names every verb")
    r = ctl(["--man"])
    check(r.rc == 0 and r.out.startswith(".TH GPUHOOKSCTL 1"), "--man prints the manual page")


# ---- under the emulator ------------------------------------------------------------------------


def sc():
    import test_statechange as t
    t.ARGS = argparse.Namespace(hook=ARGS.hook, transformer=ARGS.transformer, discovery=ARGS.discovery,
                                hosts=ARGS.hosts, src=ARGS.src)
    return t


def ctl_on(h, args):
    return ctl(args + ["--config", h.cfg_path, "--sysfs-root", h.emu.root, "--state-dir", h.state, "--dev-dir",
                       h.emu.dev_dir])


def prepared_v100(t, h, vm):
    # three V100s: at least one starts on nvidia (the fixture has some on vfio-pci already)
    xml = h.transform(t.domain_xml("25-dumpxml-request-numa-require-v100.xml", name=vm,
                                   subst={'numa="require"': 'numa="any" count="3"'}))
    r = h.prepare(xml)
    check(r.rc == 0, "%s prepared" % vm, r.why())
    r = h.hook([vm, "started", "begin", "-"], stdin="<domain/>")
    check(r.rc == 0, "%s started: its reservation runs" % vm, r.why())
    return xml


def case_release():
    t = sc()
    with t.Host("dgx2-v100-nvswitch") as h:
        before = h.snap()
        xml = prepared_v100(t, h, "i-9-4-VM")
        gpu = next(d["address"] for d in t.record(xml) if before[d["address"]]["driver"] == "nvidia")
        check(t.driver_of(h, gpu) == "vfio-pci" and h.journals() == ["i-9-4-VM.journal"],
              "the V100 is on vfio-pci, the domain has a journal")
        r = ctl_on(h, ["journals", "--format", "json", "--no-libvirt", "--domain-xml-dir", h.empty])
        js = json.loads(r.out) if r.rc == 0 else []
        check([(j["domain"], j["domain_state"]) for j in js] == [("i-9-4-VM", "undefined")],
              "journals lists it, a domain libvirt's files do not know", r.why())
        # while libvirt's status file says it runs, the GPU is in use by it
        run_dir = os.path.join(h.tmp, "run-qemu")
        os.mkdir(run_dir)
        with open(os.path.join(run_dir, "i-9-4-VM.xml"), "w") as f:
            f.write("<domstatus state='running'>%s</domstatus>" % xml)
        r = ctl_on(h, ["status", "--format", "json", "--no-libvirt", "--domain-xml-dir", run_dir])
        st = {d["device"]: d for d in json.loads(r.out)["devices"]} if r.rc == 0 else {}
        check(st.get(gpu, {}).get("state") == "in-use" and st[gpu]["domain"] == "i-9-4-VM",
              "status: while it runs, the GPU is in use by i-9-4-VM", st.get(gpu))
        # once it stopped without its release: journaled, named as the domain to release
        os.unlink(os.path.join(run_dir, "i-9-4-VM.xml"))
        r = ctl_on(h, ["status", "--format", "json", "--no-libvirt", "--domain-xml-dir", run_dir])
        st = {d["device"]: d for d in json.loads(r.out)["devices"]} if r.rc == 0 else {}
        check(st.get(gpu, {}).get("state") == "journaled" and st[gpu]["domain"] == "i-9-4-VM" and
              "gpuhooksctl release" in st[gpu]["detail"],
              "status: stopped without its release, the GPU is journaled by i-9-4-VM", st.get(gpu))
        r = ctl_on(h, ["status", "--no-libvirt", "--domain-xml-dir", run_dir])
        check(r.rc == 0 and re.search(r"^%s\s.*journaled\s+i-9-4-VM" % gpu, r.out, re.M),
              "status table: one command shows the stuck VM's GPU and its owner", r.out[:600])
        # its QEMU still runs: a process holds the group's vfio node
        vnode = os.path.join(h.emu.dev_dir, "vfio", t.group_of(h, gpu))
        mid = h.snap()
        qemu = t.holding(vnode)
        try:
            r = ctl_on(h, ["release", "i-9-4-VM"])
            check(r.rc == 1 and r.one_line() and "still running" in r.err and ("pid %d" % qemu.pid) in r.err,
                  "release of a running domain: refused, exit 1, naming its process", r.why())
            check(h.snap() == mid and h.journals() == ["i-9-4-VM.journal"] and h.reservations(),
                  "... nothing changed: devices, journal, reservation", t.diff(mid, h.snap()))
        finally:
            qemu.kill()
            qemu.wait()
        r = ctl_on(h, ["release", "--format", "json", "i-9-4-VM"])
        doc = json.loads(r.out) if r.out.strip() else {}
        check(r.rc == 0 and doc.get("ok") is True and doc.get("domain") == "i-9-4-VM",
              "release of the stuck domain: exit 0, {ok: true}", r.why())
        check(h.snap() == before and h.journals() == [] and h.reservations() == [],
              "... its devices are as before the start, journal and reservation gone", t.diff(before, h.snap()))
        r = ctl_on(h, ["release", "i-9-4-VM"])
        check(r.rc == 0, "release again: nothing to do, exit 0", r.why())

        # a running domain known only by its reservation (its journal gone: nothing of it to
        # undo): the holder of its reserved GPU's group still refuses the release
        xml = h.transform(t.domain_xml("25-dumpxml-request-numa-require-v100.xml", name="i-9-7-VM"))
        check(h.prepare(xml).rc == 0 and h.hook(["i-9-7-VM", "started", "begin", "-"], stdin="<domain/>").rc == 0,
              "i-9-7-VM prepared and started")
        gpu = t.record(xml)[0]["address"]
        os.unlink(os.path.join(h.state, "journal", "i-9-7-VM.journal"))
        check(t.driver_of(h, gpu) == "vfio-pci" and h.journals() == [] and h.reservations() == ["i-9-7-VM.json"],
              "... its GPU on vfio-pci, no journal, a running reservation", (h.journals(), h.reservations()))
        qemu = t.holding(os.path.join(h.emu.dev_dir, "vfio", t.group_of(h, gpu)))
        try:
            r = ctl_on(h, ["release", "i-9-7-VM"])
            check(r.rc == 1 and "still running" in r.err and h.reservations() == ["i-9-7-VM.json"],
                  "release: refused by the holder of the reserved GPU's group, the reservation kept", r.why())
        finally:
            qemu.kill()
            qemu.wait()
        r = ctl_on(h, ["release", "i-9-7-VM"])
        check(r.rc == 0 and h.reservations() == [], "release without the holder frees the reservation", r.why())


def case_reconcile():
    t = sc()
    with t.Host("dgx2-v100-nvswitch") as h:
        before = h.snap()
        prepared_v100(t, h, "i-9-5-VM")
        r = ctl_on(h, ["reconcile", "--format", "json", "--no-libvirt", "--domain-xml-dir", h.empty,
                       "--min-age", "0"])
        doc = json.loads(r.out) if r.out.strip() else {}
        check(r.rc == 0 and doc.get("ok") is True and "i-9-5-VM" in doc.get("released", []),
              "reconcile --format json: the domain that does not run is released", r.why())
        check(h.snap() == before and h.journals() == [], "... its devices are back", t.diff(before, h.snap()))
        r = ctl_on(h, ["reconcile", "--no-libvirt", "--domain-xml-dir", h.empty])
        check(r.rc == 0 and "released" not in r.out, "reconcile again: nothing to release", r.why())


def case_slots():
    """status lists a vGPU layout's mdev slots not created yet, under the UUIDs gpudiscovery
    advertises, free until a domain names one (here: a defined domain's XML), and a layout VF
    under its profile (docs/layouts.md)."""
    tmp = tempfile.mkdtemp(prefix="gpuh-ctl-")
    try:
        conf, xmldir = os.path.join(tmp, "gpuhooks.json"), os.path.join(tmp, "qemu")
        os.mkdir(xmldir)
        with open(conf, "w") as f:
            json.dump({"layouts": [{"match": {"vendor": "10de", "device": "13f2"},
                                    "profiles": [{"profile": "GRID M60-2Q"}]}]}, f)
        opts = host_opts("dell-r740-m60-mdev") + ["--config", conf, "--domain-xml-dir", xmldir]
        r = discovery(opts)
        inv = json.loads(r.out) if r.rc == 0 else {"gpus": []}
        od = [v["mdev_uuid"] for g in inv["gpus"] for v in g["vgpu_instances"] if v["gpuhooks"]["on_demand"]]
        check(len(od) >= 4, "gpudiscovery advertises the M60-2Q slots on demand", r.why())
        r = ctl(["status", "--format", "json"] + opts)
        doc = json.loads(r.out) if r.rc == 0 else {"devices": []}
        slots = [d for d in doc["devices"] if d["kind"] == "slot"]
        check(r.rc == 0 and [d["device"] for d in slots] == od and
              all(d["state"] == "free" and d["profile"] == "GRID M60-2Q" and "created at start" in d["detail"]
                  for d in slots), "status: one free 'slot' row per advertised UUID, in the same order",
              [(d["device"], d["state"], d["detail"]) for d in slots][:6])
        check(schema_errors("gpuhooksctl-status.schema.json", doc) == [], "status with slots: valid against its schema",
              schema_errors("gpuhooksctl-status.schema.json", doc)[:3])
        # a domain defined with slot 1 (CloudStack's hostdev, docs/layouts.md): in use by it
        with open(os.path.join(xmldir, "i-7-1-VM.xml"), "w") as f:
            f.write("<domain type='kvm'><name>i-7-1-VM</name><devices><hostdev mode='subsystem' type='mdev' "
                    "model='vfio-pci' display='off'><source><address uuid='%s'/></source></hostdev></devices>"
                    "</domain>\n" % od[1])
        r = ctl(["status", "--format", "json"] + opts)
        doc = json.loads(r.out) if r.rc == 0 else {"devices": []}
        st = {d["device"]: (d["state"], d["domain"]) for d in doc["devices"] if d["kind"] == "slot"}
        check(st.get(od[1]) == ("in-use", "i-7-1-VM") and st.get(od[0]) == ("free", None),
              "status: the slot a defined domain names is in use by it, the others free", st)
        r = ctl(["status"] + opts)
        check(r.rc == 0 and od[1] in r.out and "slot" in r.out, "status table: the slot rows", r.why())
        # a vendor-VF layout: a VF whose type is not set yet shows the layout's profile
        with open(conf, "w") as f:
            json.dump({"layouts": [{"match": {"vendor": "10de", "device": "26b9"},
                                    "profiles": [{"profile": "NVIDIA L40S-8Q", "count": 2}]}]}, f)
        opts = host_opts("l40s-vendor-vgpu") + ["--config", conf]
        r = ctl(["status", "--format", "json"] + opts)
        doc = json.loads(r.out) if r.rc == 0 else {"devices": []}
        lay = [d for d in doc["devices"] if d["kind"] == "vf" and "layout slot" in (d["detail"] or "")]
        check(r.rc == 0 and lay and all(d["profile"] == "NVIDIA L40S-8Q" and d["state"] == "free" for d in lay),
              "status: a layout VF not set yet shows its layout profile", [(d["device"], d["profile"]) for d in lay])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    for o in ("--ctl", "--discovery", "--hook", "--transformer", "--hosts", "--src"):
        p.add_argument(o, required=True)
    p.add_argument("case")
    ARGS = p.parse_args()
    cases = {"capacity": case_capacity, "table": case_table, "status": case_status, "plan": case_plan,
             "check": case_check, "cli": case_cli, "slots": case_slots, "release": case_release, "reconcile": case_reconcile}
    if ARGS.case in ("release", "reconcile"):
        sys.path.insert(0, os.path.join(ARGS.src, "tests", "emu"))
        import emu
        try:
            cases[ARGS.case]()
        except emu.Skip as e:
            print("SKIP: %s" % e)
            return 77
    else:
        cases[ARGS.case]()
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
