#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of every fuzz target into tests/fuzz/corpus/TARGET/seed-*, from the
fixtures (domain XMLs, the hosts' sysfs attributes, built into BUILD/fixtures/hosts), the
configuration samples and the e2e samples. Regression inputs (crash-*, slow-*) are kept.

  tests/fuzz/mkcorpus.py [BUILD]          (default: build)
"""
import glob
import json
import os
import sys

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(SRC, "tests", "fuzz", "corpus")


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name.replace("/", "-")), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def walk_dirs(top):
    """Every directory below TOP, not following links (sysfs trees link in circles)."""
    for d, dirs, _ in os.walk(top):
        for n in dirs:
            yield os.path.join(d, n)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(SRC, "build")
    hosts = os.path.join(build, "fixtures", "hosts")
    for t in os.listdir(OUT) if os.path.isdir(OUT) else []:
        for f in glob.glob(os.path.join(OUT, t, "seed-*")):
            os.unlink(f)
    dom = os.path.join(SRC, "fixtures", "domains")

    # domxml: CloudStack agent and dumpxml documents, every record/request sample, the hostile ones
    for f in ("01-agent-i-2-154-VM-cs4.19.xml", "06-fixture-i-2-3-VM-gpu-hostdevs-trimmed.xml",
              "11-agent-cs421-pci-v100.xml", "12-agent-cs421-mdev-a2-held.xml", "15-agent-cs421-vf-l40s-display.xml",
              "16-agent-cs423-metadata.xml", "17-agent-cs423-extraconfig-request.xml",
              "18-agent-extraconfig-metadata-then-request.xml", "27-dumpxml-request-mixed-passthrough-mdev.xml",
              "31-dumpxml-request-mdev-gvtg-typeid-display.xml"):
        put("domxml", f, rd(os.path.join(dom, f)))
    for p in sorted(glob.glob(os.path.join(SRC, "tests", "e2e", "samples", "domain-record-*.xml"))):
        put("domxml", os.path.basename(p), rd(p))
    for p in sorted(glob.glob(os.path.join(dom, "hostile", "*"))):
        if os.path.getsize(p) < 8192:
            put("domxml", "hostile-" + os.path.basename(p), rd(p))

    # transform: the documents of the cases on hpe-dl380g9-a2-vgpu (the target's host); their
    # lengths' parities differ (odd reserves, even explains)
    cases = json.loads(rd(os.path.join(dom, "cases.json")))
    seen = set()
    for c in cases:
        if c.get("host") != "hpe-dl380g9-a2-vgpu" or not c.get("domain") or c["domain"] in seen:
            continue
        seen.add(c["domain"])
        data = rd(os.path.join(dom, c["domain"]))
        put("transform", c["domain"], data)
    small = ("<domain type='kvm'><name>i-2-9-VM</name><uuid>0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4a77</uuid>"
             "<metadata><gpuhooks:gpu xmlns:gpuhooks=\"urn:gpuhooks:domain:1\">%s</gpuhooks:gpu></metadata>"
             "<vcpu cpuset='0-3'>2</vcpu><cputune><vcpupin vcpu='0' cpuset='1'/></cputune><devices>%s</devices></domain>\n")
    put("transform", "mini-mdev.xml", small % ('<gpuhooks:request mode="mdev" profile="NVIDIA A2-4Q"/>', ""))
    put("transform", "mini-vf.xml", small % ('<gpuhooks:request mode="vf" count="2" numa="require"/>', ""))
    put("transform", "mini-passthrough.xml", small % ('<gpuhooks:request mode="passthrough" vendor="10de"/>', ""))
    put("transform", "mini-cs-hostdev.xml", small % ("", "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
                                                         "<address domain='0x0000' bus='0x08' slot='0x00' function='0x5'/>"
                                                         "</source></hostdev>"))

    # sysfs: attribute content, NUL, a link target, NUL, names to list, NUL, a relative path
    a2 = os.path.join(hosts, "hpe-dl380g9-a2-vgpu", "sys", "bus", "pci", "devices", "0000:08:00.4")
    for attr in ("vendor", "device", "class", "numa_node", "revision", "local_cpulist", "reset_method", "irq"):
        p = os.path.join(a2, attr)
        if os.path.isfile(p):
            put("sysfs", attr, rd(p) + b"\0" + os.readlink(os.path.join(a2, "driver")).encode() +
                b"\0virtfn0\0virtfn10\0virtfn2\0\0bus/pci/devices")
    put("sysfs", "hex-u64", b"0x10de\n\0../../../../kernel/iommu_groups/90\0a\0b\0../x")
    put("sysfs", "negative", b"-1\n\0/\0nvidia-10\0nvidia-9\0list/../..")
    put("sysfs", "spaces", b" \t42 \n\0physfn/\0\0\0.")

    # mdev: type id, NUL, description, NUL, name, NUL, available_instances, NUL, device_api
    for host in ("hpe-dl380g9-a2-vgpu", "dell-r740-m60-mdev", "intel-gvtg-igpu"):
        types = sorted(os.path.join(d, t) for d in walk_dirs(os.path.join(hosts, host, "sys", "devices"))
                       if os.path.basename(d) == "mdev_supported_types" for t in os.listdir(d))
        done = set()
        for t in types:
            tid = os.path.basename(t)
            if tid in done or len(done) >= 4:
                continue
            done.add(tid)
            parts = [tid.encode()] + [rd(os.path.join(t, f)) if os.path.isfile(os.path.join(t, f)) else b""
                                      for f in ("description", "name", "available_instances", "device_api")]
            put("mdev", "%s-%s" % (host, tid), b"\0".join(parts))
    put("mdev", "uuid", b"6c1b1e4a-54f2-4d6e-9a57-3f8e2d7c1b00\0framebuffer=1G, max_resolution=1x1\0\0" b"1\0vfio-pci")

    # vendor_vgpu: creatable_vgpu_types, NUL, current_vgpu_type
    l40 = sorted(d for d in walk_dirs(os.path.join(hosts, "l40s-vendor-vgpu", "sys", "devices"))
                 if os.path.basename(d) == "nvidia" and os.path.isfile(os.path.join(d, "creatable_vgpu_types")))
    for i, d in enumerate(l40[:3]):
        put("vendor_vgpu", "l40s-%d" % i, rd(os.path.join(d, "creatable_vgpu_types")) + b"\0" +
            rd(os.path.join(d, "current_vgpu_type")))
    put("vendor_vgpu", "header-only", b"ID    : vGPU Name\n\0" b"0\n")

    # pci_addr: an address, NUL, libvirt's domain, bus, slot, function
    for n, s in (("short", "08:00.4"), ("full", "0000:3b:00.0"), ("five", "10000:01:00.0"),
                 ("upper", "0000:AF:1F.7"), ("libvirt-decimal", "ff:1f.7\0" "0\0" "8\0" "31\0" "7"),
                 ("libvirt-hex", "0000:08:00.4\0" "0x0000\0" "0x08\0" "0x00\0" "0x4")):
        put("pci_addr", n, s)

    # config: the defaults, every case's configuration
    put("config", "install-gpuhooks.json", rd(os.path.join(SRC, "install", "gpuhooks.json")))
    k = 0
    for c in cases:
        if c.get("config"):
            cfg = c["config"]
            if not set(cfg) <= {"$schema", "discovery", "libvirt", "transformer", "state_change"}:
                cfg = {"transformer": cfg}
            put("config", "case-%s.json" % c["name"], json.dumps(cfg, indent=1))
            k += 1
    put("config", "state-change.json", '{"state_change": {"on_start_method": "vmStarted", "write_timeout_ms": 100,'
        ' "keep_vfio": ["10de:2330", "1002:*"], "enable_sriov": true}, "libvirt": {"uri": "test:///default",'
        ' "domain_xml_dirs": ["/a"]}, "discovery": {"extra_gpu_vendors": ["1da3"], "exclude_passthrough":'
        ' ["0000:3d:00.0"]}}')


if __name__ == "__main__":
    main()
