#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Tests of putting gpuhooks on a host and taking it off again (install/, docs in README).

  test_install.py --build BUILD --src SRC CASE

CASE:
  destdir   cmake --install into a DESTDIR holding CloudStack's gpudiscovery.sh, twice, then the
            uninstall target: the tree is exactly as before (a changed configuration is kept)
  uninstall the uninstall target removes only what the install put there: with another DESTDIR,
            or none after a DESTDIR install, it refuses and deletes nothing (the no-DESTDIR run
            happens in a mount namespace with the host's directories behind copy-on-write
            overlays, so that not even a broken uninstall can delete a real file; it needs
            root, and is skipped without); a file changed or a link re-pointed since is kept
  package   the Debian package (CPack) installed, upgraded and purged with dpkg in a throw-away
            root (dpkg --root --force-script-chrootless): diversion, conffile, restore on removal
  man       the man pages: roff without warnings, every option --help lists, the same synopsis
  check     gpudiscovery --check on fixture hosts, with and without gpuhooks installed (DESTDIR):
            a fit host is ready, an unfit one is not, and each finding says why
  lintian   Debian's lintian on the package: no error, no warning but those the package's
            override file justifies (each override with its comment, each one used); the man
            pages gzipped, the changelog of this version

(ns-uninstall is the inner half of 'uninstall', run by it inside the mount namespace.)

Exits 77 (skipped) when a tool it needs is missing (dpkg for 'package', groff for 'man',
lintian or cpack for 'lintian') or 'package' is not run as root. Prints one line per check, then 'N passed, N failed'.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import check  # noqa: E402

ARGS = None
CONFIG = None
CS_SCRIPT = "usr/share/cloudstack-common/scripts/vm/hypervisor/kvm/gpudiscovery.sh"
ORIGINAL = "#!/bin/sh\n# CloudStack's gpudiscovery.sh, as cloudstack-common installs it\necho '{\"gpus\": []}'\n"


def run(cmd, env=None):
    """@cmd with this environment plus @env, text, stdin /dev/null: a harness.Result (which also
    answers to returncode, stdout and stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    return harness.run(cmd, env=e, text=True)


def tree(root):
    """Every path under root with its type, mode, link target or content hash."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", oct(st.st_mode & 0o7777))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", oct(st.st_mode & 0o7777), hashlib.sha256(f.read()).hexdigest())
    return out


def diff(a, b):
    keys = sorted(set(a) | set(b))
    return "\n".join("%s: %s -> %s" % (k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)) or "(same)"


def fake_cloudstack_host(root):
    os.makedirs(os.path.join(root, os.path.dirname(CS_SCRIPT)))
    with open(os.path.join(root, CS_SCRIPT), "w") as f:
        f.write(ORIGINAL)
    os.chmod(os.path.join(root, CS_SCRIPT), 0o755)
    # what any host has: directories that are not empty (dpkg removes empty directories no
    # package owns, and a throw-away root's database knows no other package)
    for f in ("etc/hostname", "usr/bin/true", "usr/share/man/man1/true.1", "run/.keep"):
        os.makedirs(os.path.join(root, os.path.dirname(f)), exist_ok=True)
        with open(os.path.join(root, f), "w") as fh:
            fh.write("placeholder\n")


def case_destdir():
    tmp = tempfile.mkdtemp(prefix="gpuh-install-")
    try:
        root = os.path.join(tmp, "root")
        fake_cloudstack_host(root)
        before = tree(root)
        env = {"DESTDIR": root}
        r = run(["cmake", "--install", ARGS.build, "--prefix", "/usr"], env)
        check(r.returncode == 0, "cmake --install into DESTDIR", r.stderr + r.stdout[-2000:])
        libexec = "/usr/libexec/gpuhooks"
        links = {
            CS_SCRIPT: libexec + "/gpudiscovery",
            "etc/cloudstack/agent/hooks/libvirt-vm-xml-transformer.sh": libexec + "/libvirt-vm-xml-transformer",
            "etc/cloudstack/agent/hooks/libvirt-vm-state-change.sh": libexec + "/libvirt-vm-state-change",
            "etc/libvirt/hooks/qemu.d/gpuhooks": libexec + "/libvirt-vm-state-change",
            "usr/bin/gpudiscovery": "../libexec/gpuhooks/gpudiscovery",
            "usr/bin/gpuhooksctl": "../libexec/gpuhooks/gpuhooksctl",
        }
        for link, target in links.items():
            p = os.path.join(root, link)
            check(os.path.islink(p) and os.readlink(p) == target, "%s -> %s" % (link, target),
                  os.readlink(p) if os.path.islink(p) else "missing")
        for tool in ("gpudiscovery", "libvirt-vm-xml-transformer", "libvirt-vm-state-change", "gpuhooksctl"):
            p = os.path.join(root, libexec.lstrip("/"), tool)
            check(os.access(p, os.X_OK), "%s installed, executable" % tool)
            check(os.path.isfile(os.path.join(root, "usr/share/man/man1", tool + ".1.gz")), "%s.1.gz installed" % tool)
        with open(os.path.join(root, CS_SCRIPT + ".gpuhooks-orig")) as f:
            check(f.read() == ORIGINAL, "CloudStack's gpudiscovery.sh is kept aside as gpudiscovery.sh.gpuhooks-orig")
        conf = os.path.join(root, "etc/gpuhooks/gpuhooks.json")
        with open(conf) as f, open(os.path.join(ARGS.src, "install/gpuhooks.json")) as g:
            check(f.read() == g.read(), "the default configuration is installed")
        unit = os.path.join(root, "lib/systemd/system/gpuhooks-reconcile.service")
        with open(unit) as f:
            check("ExecStart=/usr/libexec/gpuhooks/libvirt-vm-state-change reconcile" in f.read(),
                  "the reconcile service names the installed binary")
        check(os.path.isfile(os.path.join(root, "usr/lib/tmpfiles.d/gpuhooks.conf")), "tmpfiles.d entry for /run/gpuhooks")
        # a second install (an upgrade by hand) keeps everything, the backup included
        r = run(["cmake", "--install", ARGS.build, "--prefix", "/usr"], env)
        with open(os.path.join(root, CS_SCRIPT + ".gpuhooks-orig")) as f:
            check(r.returncode == 0 and f.read() == ORIGINAL and os.path.islink(os.path.join(root, CS_SCRIPT)),
                  "a second install keeps the original aside and the links in place", r.stderr)
        r = run(["cmake", "--build", ARGS.build, "--target", "uninstall"], env)
        after = tree(root)
        check(r.returncode == 0 and after == before, "uninstall puts the tree back exactly as it was",
              diff(before, after) + "\n" + r.stdout[-1500:] + r.stderr)
        # an operator's changed configuration survives an uninstall
        r = run(["cmake", "--install", ARGS.build, "--prefix", "/usr"], env)
        with open(conf, "a") as f:
            f.write("\n")
        r = run(["cmake", "--build", ARGS.build, "--target", "uninstall"], env)
        check(r.returncode == 0 and os.path.isfile(conf) and "Keeping (changed since install)" in r.stdout,
              "uninstall keeps a configuration the operator changed", r.stdout[-1500:])
        os.unlink(conf)
        os.rmdir(os.path.dirname(conf))
        check(tree(root) == before, "... and takes everything else", diff(before, tree(root)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def uninstall(env):
    return run(["cmake", "--build", ARGS.build, "--target", "uninstall"], env)


def manifest():
    with open(os.path.join(ARGS.build, "install_manifest.txt")) as f:
        return [l for l in f.read().splitlines() if l]


def put_decoys(root, paths):
    """A file of someone else's at each path under root that holds nothing yet, but for the
    install's notes (install-state.cmake), which only an install of gpuhooks makes."""
    for p in paths:
        d = os.path.join(root, p.lstrip("/"))
        if os.path.lexists(d) or p.endswith("/install-state.cmake"):
            continue
        os.makedirs(os.path.dirname(d), exist_ok=True)
        with open(d, "w") as f:
            f.write("# not gpuhooks': %s\n" % p)


def case_uninstall():
    tmp = tempfile.mkdtemp(prefix="gpuh-uninst-")
    try:
        root = os.path.join(tmp, "root")
        fake_cloudstack_host(root)
        pristine = tree(root)
        env = {"DESTDIR": root}
        r = run(["cmake", "--install", ARGS.build, "--prefix", "/usr"], env)
        check(r.returncode == 0, "cmake --install into DESTDIR", r.stderr + r.stdout[-2000:])
        installed = tree(root)
        paths = manifest()

        # another DESTDIR: someone else's files sit at every path the install used
        other = os.path.join(tmp, "other")
        fake_cloudstack_host(other)
        put_decoys(other, paths)
        decoys = tree(other)
        r = uninstall({"DESTDIR": other})
        errs = [l for l in r.stderr.splitlines() if root in l and other in l]
        check(r.returncode != 0 and tree(other) == decoys and tree(root) == installed,
              "uninstall with another DESTDIR refuses and deletes nothing, there or under the install's",
              diff(decoys, tree(other)) + "\n" + r.stdout[-1500:] + r.stderr)
        check(len(errs) == 1 and "nothing removed" in errs[0],
              "... with one line naming the root installed under and the one given", r.stderr)

        # no DESTDIR at all: the paths the install used, on this host's own /
        if os.geteuid() != 0 or not shutil.which("unshare"):
            print("SKIP   uninstall without DESTDIR (needs root and unshare for a private mount namespace)")
        else:
            scratch = os.path.join(tmp, "ns")
            os.mkdir(scratch)
            env_nodest = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
            r = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                                os.path.abspath(__file__), "--build", ARGS.build, "--src", ARGS.src,
                                "--scratch", scratch, "--outer-ns", os.readlink("/proc/self/ns/mnt"),
                                "ns-uninstall"], capture_output=True, text=True, env=env_nodest)
            if r.returncode == 77:
                print("SKIP   uninstall without DESTDIR: " + r.stdout.strip())
            else:
                res = json.loads(r.stdout) if r.returncode == 0 else {}
                check(r.returncode == 0 and res["rc"] != 0 and not res["changed"] and tree(root) == installed,
                      "uninstall without DESTDIR after a DESTDIR install refuses and deletes nothing on /",
                      r.stderr + r.stdout[-3000:])
                errs = [l for l in res.get("stderr", "").splitlines() if root in l and "'/'" in l]
                check(len(errs) == 1, "... with one line naming both roots", res.get("stderr"))

        # the install's notes are CMake code that uninstall runs: not once someone changed them
        notes = os.path.join(root, "usr/libexec/gpuhooks/install-state.cmake")
        with open(notes) as f:
            text = f.read()
        with open(notes, "a") as f:
            f.write("# edited\n")
        edited = tree(root)
        r = uninstall(env)
        check(r.returncode != 0 and tree(root) == edited and "cannot be trusted, nothing removed" in r.stderr,
              "uninstall refuses when install-state.cmake changed since the install", r.stdout[-1500:] + r.stderr)
        if os.path.isdir(os.path.dirname(notes)):
            with open(notes, "w") as f:
                f.write(text)
        else:   # it went ahead: install again for the checks below
            run(["cmake", "--install", ARGS.build, "--prefix", "/usr"], env)

        # what changed since the install stays, and is named; the rest goes
        doc = os.path.join(root, "usr/share/doc/gpuhooks/README.md")
        with open(doc, "a") as f:
            f.write("an operator's note\n")
        link = os.path.join(root, "usr/bin/gpudiscovery")
        os.unlink(link)
        os.symlink("/usr/local/bin/gpudiscovery", link)
        kept = {k: v for k, v in tree(root).items()
                if k in ("usr/share/doc/gpuhooks/README.md", "usr/bin/gpudiscovery")}
        r = uninstall(env)
        after = tree(root)
        check(r.returncode == 0 and {k: after.get(k) for k in kept} == kept,
              "uninstall keeps a file changed and a link re-pointed since the install", r.stdout[-2000:] + r.stderr)
        check(("Keeping (changed since install): " + doc) in r.stdout and
              ("Keeping (points elsewhere since install): " + link) in r.stdout,
              "... and names each", r.stdout[-2000:])
        extra = {k: v for k, v in after.items() if k not in pristine}
        ancestors = set()
        for k in kept:
            d = os.path.dirname(k)
            while d:
                ancestors.add(d)
                d = os.path.dirname(d)
        check(set(extra) <= set(kept) | ancestors and all(after.get(k) == v for k, v in pristine.items()),
              "... and takes everything else, putting back what it kept aside", diff(pristine, after))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_ns_uninstall():
    """Inside 'unshare --mount': every top directory the manifest names gets a copy-on-write
    overlay (changes go to a tmpfs and vanish with the namespace), decoys go where nothing is,
    and the uninstall target runs without DESTDIR. Prints {rc, stdout, stderr, changed}."""
    if os.readlink("/proc/self/ns/mnt") == ARGS.outer_ns:
        print("not in a mount namespace of its own: not running")
        return 2
    paths = manifest()
    # the directories under / the manifest reaches into (/lib may be a link to usr/lib)
    tops = {os.path.realpath("/" + p.strip("/").split("/")[0]) for p in paths}
    tops = sorted(t for t in tops if os.path.isdir(t) and not any(t.startswith(u + "/") for u in tops))
    r = run(["mount", "-t", "tmpfs", "gpuh-uninst", ARGS.scratch])
    if r.returncode != 0:
        print("cannot mount a tmpfs: " + r.stderr.strip())
        return 77
    for i, top in enumerate(tops):
        up, work = os.path.join(ARGS.scratch, "%d.up" % i), os.path.join(ARGS.scratch, "%d.work" % i)
        os.mkdir(up)
        os.mkdir(work)
        r = run(["mount", "-t", "overlay", "gpuh-uninst", "-o",
                 "lowerdir=%s,upperdir=%s,workdir=%s" % (top, up, work), top])
        if r.returncode != 0:
            print("cannot mount an overlay on %s: %s" % (top, r.stderr.strip()))
            return 77
    with open("/proc/self/mountinfo") as f:
        overlays = [l.split()[4] for l in f if " - overlay gpuh-uninst " in l]
    for p in paths:
        d = os.path.dirname(p)
        while not os.path.lexists(d):
            d = os.path.dirname(d)
        d = os.path.realpath(d)
        if not any(d == o or d.startswith(o + "/") for o in overlays):
            print("%s is not behind an overlay: not running" % p)
            return 2
    put_decoys("/", paths)

    def what(p):
        if not os.path.lexists(p):
            return None
        if os.path.islink(p):
            return ("link", os.readlink(p))
        with open(p, "rb") as f:
            return ("file", hashlib.sha256(f.read()).hexdigest())

    before = {p: what(p) for p in paths if os.path.lexists(p)}
    r = uninstall({})
    changed = [p for p, v in before.items() if what(p) != v]
    print(json.dumps({"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr, "changed": changed}))
    return 0


def dpkg(root, *args):
    return run(["dpkg", "--root=" + root, "--force-script-chrootless", "--force-depends", "--force-confold",
                "--log=/dev/null"] + list(args))


def case_package():
    for tool in ("dpkg", "dpkg-deb", "dpkg-divert", "cpack"):
        if not shutil.which(tool):
            print("SKIP: %s is not installed" % tool)
            return 77
    if os.geteuid() != 0:
        print("SKIP: dpkg --root needs root")
        return 77
    tmp = tempfile.mkdtemp(prefix="gpuh-pkg-")
    try:
        out = os.path.join(tmp, "out")
        r = run(["cpack", "--config", os.path.join(ARGS.build, "CPackConfig.cmake"), "-B", out])
        debs = [f for f in os.listdir(out) if f.endswith(".deb")] if os.path.isdir(out) else []
        if not check(r.returncode == 0 and len(debs) == 1, "cpack builds one .deb", r.stdout[-2000:] + r.stderr):
            return 1
        deb = os.path.join(out, debs[0])
        info = run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"]).stdout
        check("Package: gpuhooks" in info and "libvirt0" in info and "libxml2" in info and "libjson-c5" in info,
              "control: name, version and the runtime dependencies (libvirt0 is dlopen()ed)", info)
        ctl = os.path.join(tmp, "ctl")
        os.mkdir(ctl)
        run(["dpkg-deb", "-e", deb, ctl])
        with open(os.path.join(ctl, "conffiles")) as f:
            check(f.read().strip() == "/etc/gpuhooks/gpuhooks.json", "the configuration is a conffile")

        root = os.path.join(tmp, "root")
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
            os.makedirs(os.path.join(root, d))
        for f in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
            open(os.path.join(root, f), "w").close()
        fake_cloudstack_host(root)
        before = tree(root)

        r = dpkg(root, "-i", deb)
        check(r.returncode == 0, "dpkg -i into the throw-away root", r.stdout + r.stderr)
        div = run(["dpkg-divert", "--root=" + root, "--list", "gpuhooks"]).stdout
        check("/" + CS_SCRIPT + " to /" + CS_SCRIPT + ".distrib by gpuhooks" in div,
              "CloudStack's gpudiscovery.sh is diverted to gpudiscovery.sh.distrib", div)
        with open(os.path.join(root, CS_SCRIPT + ".distrib")) as f:
            check(f.read() == ORIGINAL, "... with its content")
        p = os.path.join(root, CS_SCRIPT)
        check(os.path.islink(p) and os.readlink(p) == "/usr/libexec/gpuhooks/gpudiscovery",
              "gpudiscovery.sh is ours", os.readlink(p) if os.path.islink(p) else "not a link")
        for link in ("etc/libvirt/hooks/qemu.d/gpuhooks", "etc/cloudstack/agent/hooks/libvirt-vm-state-change.sh",
                     "etc/cloudstack/agent/hooks/libvirt-vm-xml-transformer.sh"):
            check(os.path.islink(os.path.join(root, link)), "%s installed" % link)
        r = run([os.path.join(root, "usr/libexec/gpuhooks/gpudiscovery"), "--version"])
        check(r.returncode == 0 and r.stdout.startswith("gpudiscovery (gpuhooks)"), "the packaged binary runs", r.stderr)
        check(os.path.isdir(os.path.join(root, "run/gpuhooks")) and
              oct(os.stat(os.path.join(root, "run/gpuhooks")).st_mode & 0o777) == "0o700",
              "postinst made /run/gpuhooks, mode 0700")

        # upgrade: a newer version over a changed configuration
        conf = os.path.join(root, "etc/gpuhooks/gpuhooks.json")
        with open(conf) as f:
            changed = f.read().replace('"enable_sriov": false', '"enable_sriov": true')
        with open(conf, "w") as f:
            f.write(changed)
        x = os.path.join(tmp, "x")
        run(["dpkg-deb", "-R", deb, x])
        control = os.path.join(x, "DEBIAN", "control")
        with open(control) as f:
            text = f.read()
        version = re.search(r"^Version: (.*)$", text, re.M).group(1)
        with open(control, "w") as f:
            f.write(re.sub(r"^Version: .*$", "Version: %s+1" % version, text, flags=re.M))
        deb2 = os.path.join(tmp, "gpuhooks-next.deb")
        r = run(["dpkg-deb", "--root-owner-group", "-b", x, deb2])
        r = dpkg(root, "-i", deb2)
        status = run(["dpkg-query", "--admindir=" + os.path.join(root, "var/lib/dpkg"), "-W", "gpuhooks"]).stdout
        check(r.returncode == 0 and ("%s+1" % version) in status, "upgrade to %s+1" % version, r.stdout + r.stderr)
        with open(conf) as f:
            check(f.read() == changed, "the operator's configuration survives the upgrade")
        div2 = run(["dpkg-divert", "--root=" + root, "--list", "gpuhooks"]).stdout
        with open(os.path.join(root, CS_SCRIPT + ".distrib")) as f:
            check(div2 == div and f.read() == ORIGINAL, "the diversion and the original survive the upgrade", div2)

        # remove: CloudStack's script comes back; purge: nothing of ours is left
        r = dpkg(root, "-r", "gpuhooks")
        with open(os.path.join(root, CS_SCRIPT)) as f:
            content = f.read()
        check(r.returncode == 0 and not os.path.islink(os.path.join(root, CS_SCRIPT)) and content == ORIGINAL and
              run(["dpkg-divert", "--root=" + root, "--list", "gpuhooks"]).stdout == "",
              "dpkg -r restores CloudStack's gpudiscovery.sh and drops the diversion", r.stdout + r.stderr)
        check(os.path.isfile(conf), "... and keeps the configuration until purge")
        r = dpkg(root, "--purge", "gpuhooks")
        after = tree(root)
        ours = {k: v for k, v in after.items() if not k.startswith("var/lib/dpkg")}
        base = {k: v for k, v in before.items() if not k.startswith("var/lib/dpkg")}
        check(r.returncode == 0 and ours == base, "dpkg --purge leaves the root as it was before the install",
              diff(base, ours) + "\n" + r.stdout + r.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_man():
    if not shutil.which("groff"):
        print("SKIP: groff is not installed")
        return 77
    for tool in ("gpudiscovery", "libvirt-vm-xml-transformer", "libvirt-vm-state-change", "gpuhooksctl"):
        page = os.path.join(ARGS.build, "hooks", tool + ".1")
        binary = os.path.join(ARGS.build, "hooks", tool)
        with open(page) as f:
            roff = f.read()
        r = run(["groff", "-man", "-ww", "-z", page])
        check(r.returncode == 0 and r.stderr == "", "%s.1: roff without warnings" % tool, r.stderr)
        r = run([binary, "--man"])
        check(r.stdout == roff, "%s.1 is what '%s --man' prints (built from it)" % (tool, tool))
        helptext = run([binary, "--help"]).stdout
        opts = re.findall(r"^\s+(?:-v, )?--([a-z-]+)", helptext, re.M)
        rendered = run(["groff", "-man", "-Tutf8", page], env={"GROFF_NO_SGR": "1"}).stdout
        rendered = re.sub(r".\x08", "", rendered).replace("\u2010", "-").replace("\u2212", "-")
        missing = [o for o in opts if "--" + o not in rendered]
        check(len(opts) >= 5 and not missing, "%s.1 documents every option --help lists (%d)" % (tool, len(opts)),
              missing)
        usage = [l.split(tool, 1)[1].strip() for l in helptext.splitlines() if tool in l and
                 (l.startswith("Usage:") or l.startswith("      "))]
        check(all(u.replace("-", "") in rendered.replace("-", "").replace("\u2010", "") for u in usage),
              "%s.1 has the synopsis --help shows" % tool, usage)


def gpudiscovery_check(sysroot, root, *extra):
    r = run([os.path.join(ARGS.build, "hooks", "gpudiscovery"), "--check", "--sysfs-root", sysroot, "--root", root,
             "--no-libvirt", "--domain-xml-dir", os.path.join(root, "none"), "--config", CONFIG] + list(extra))
    return r


def findings(r):
    """'STATUS CHECK DEVICE message' lines as {check: [(status, device, message)]}."""
    out = {}
    for line in r.stdout.splitlines()[:-1]:
        st, check_, dev, msg = line.split(None, 3)
        out.setdefault(check_, []).append((st, dev, msg))
    return out


def copy_host(name, tmp):
    dst = os.path.join(tmp, name)
    shutil.copytree(os.path.join(ARGS.build, "fixtures", "hosts", name, "sys"), dst, symlinks=True)
    return dst


def set_iommu_groups(sysroot, on):
    """Every PCI function of the copied tree SYSROOT in an IOMMU group of its own (ON), or
    none at all and no IOMMU unit either (not ON)."""
    groups = os.path.join(sysroot, "kernel", "iommu_groups")
    shutil.rmtree(groups, ignore_errors=True)
    os.makedirs(groups)
    if not on:
        shutil.rmtree(os.path.join(sysroot, "class", "iommu"), ignore_errors=True)
    devices = os.path.join(sysroot, "bus", "pci", "devices")
    for n, bdf in enumerate(sorted(os.listdir(devices))):
        dev = os.path.realpath(os.path.join(devices, bdf))
        link = os.path.join(dev, "iommu_group")
        if os.path.lexists(link):
            os.unlink(link)
        if os.path.islink(os.path.join(dev, "iommu")):
            os.unlink(os.path.join(dev, "iommu"))
        if on:
            g = os.path.join(groups, str(n), "devices")
            os.makedirs(g)
            os.symlink(os.path.relpath(dev, g), os.path.join(g, bdf))
            os.symlink(os.path.relpath(os.path.join(groups, str(n)), dev), link)


def check_platforms(hosts, tmp, inst):
    """--check's IOMMU finding and advice by platform (issue 12): the IOMMU is on when devices
    sit in IOMMU groups, whatever class/iommu lists (POWER lists nothing there), and the advice
    is the platform's own: Intel VT-d, AMD-Vi or POWER (hooks/gpudiscovery/check.c)."""
    def iommu(sysroot):
        r = gpudiscovery_check(sysroot, inst)
        f = findings(r)
        return r, f.get("iommu", [("?", "-", "")])[0], f

    # POWER as captured: no IOMMU groups; POWER's advice, no Intel or AMD kernel parameter
    r, (st, _, msg), f = iommu(os.path.join(hosts, "power8-minsky-p100", "sys"))
    check(r.returncode == 1 and st == "fail" and "POWER" in msg and "PowerNV" in msg and "intel_iommu" not in msg
          and "amd_iommu" not in msg and "VT-d" not in msg, "POWER without IOMMU groups: fails with POWER's advice, "
          "no x86 kernel parameter", msg)
    check("POWER" in f["interrupt-remapping"][0][2] and f["interrupt-remapping"][0][0] == "info",
          "POWER: interrupt remapping is not an x86 question there", f.get("interrupt-remapping"))
    nodrv = sorted(d for s, d, _ in f.get("no-driver", []) if s == "warn")
    check(nodrv == ["0002:01:00.0", "0003:01:00.0", "000a:01:00.0", "000b:01:00.0"],
          "POWER: the four P100 left without a driver are named", nodrv)
    # POWER with its devices in IOMMU groups and still nothing in class/iommu: the IOMMU is on
    sysroot = copy_host("power8-minsky-p100", os.path.join(tmp, "platforms"))
    set_iommu_groups(sysroot, True)
    check(not os.path.isdir(os.path.join(sysroot, "class", "iommu")), "(the POWER copy has no class/iommu)")
    r, (st, _, msg), f = iommu(sysroot)
    check(st == "ok" and "POWER" in msg and "no units in class/iommu" in msg,
          "POWER with IOMMU groups and no class/iommu units: IOMMU on", msg)

    # AMD as captured: on, named AMD-Vi; with the IOMMU off: AMD's advice
    r, (st, _, msg), f = iommu(os.path.join(hosts, "amd-mxgpu-instinct", "sys"))
    check(st == "ok" and "AMD-Vi" in msg and "ivhd0" in msg, "AMD host: IOMMU on, AMD-Vi (ivhd0)", msg)
    sysroot = copy_host("amd-mxgpu-instinct", os.path.join(tmp, "platforms"))
    set_iommu_groups(sysroot, False)
    r, (st, _, msg), f = iommu(sysroot)
    check(r.returncode == 1 and st == "fail" and "AMD-Vi" in msg and "amd_iommu=off" in msg and
          "intel_iommu" not in msg and "VT-d" not in msg,
          "AMD host with the IOMMU off (no unit, no group; known by its 1022 host bridge): AMD's advice", msg)
    # Intel with the IOMMU off: VT-d and intel_iommu=on
    sysroot = copy_host("hpe-dl380g9-a2-vgpu", os.path.join(tmp, "platforms"))
    set_iommu_groups(sysroot, False)
    r, (st, _, msg), f = iommu(sysroot)
    check(r.returncode == 1 and st == "fail" and "VT-d" in msg and "intel_iommu=on" in msg and "amd_iommu" not in msg,
          "Intel host with the IOMMU off (known by its 8086 host bridge): VT-d and intel_iommu=on", msg)

    # a quarantined function: named, and the host is not ready
    state = os.path.join(tmp, "state-q")
    os.makedirs(os.path.join(state, "quarantine"))
    with open(os.path.join(state, "quarantine", "0000:08:00.0.json"), "w") as fh:
        fh.write("{}")
    r = gpudiscovery_check(os.path.join(hosts, "hpe-dl380g9-a2-vgpu", "sys"), inst, "--state-dir", state)
    q = findings(r).get("quarantine", [])
    check(r.returncode == 1 and [(s, d) for s, d, _ in q] == [("fail", "0000:08:00.0")],
          "a quarantined function: a failing finding naming it", r.stdout)


def case_check():
    global CONFIG
    tmp = tempfile.mkdtemp(prefix="gpuh-check-")
    hosts = os.path.join(ARGS.build, "fixtures", "hosts")
    CONFIG = os.path.join(tmp, "gpuhooks.json")
    with open(CONFIG, "w") as fh:
        fh.write("{}\n")
    try:
        bare = os.path.join(tmp, "bare")
        inst = os.path.join(tmp, "installed")
        os.makedirs(bare)
        r = run(["cmake", "--install", ARGS.build, "--prefix", "/usr", "--component", "Unspecified"], {"DESTDIR": inst})
        check(r.returncode == 0, "gpuhooks installed into a DESTDIR", r.stderr)

        r = gpudiscovery_check(os.path.join(hosts, "hpe-dl380g9-a2-vgpu", "sys"), inst)
        f = findings(r)
        check(r.returncode == 0 and r.stdout.splitlines()[-1].startswith("ready") and
              all(st != "fail" for v in f.values() for st, _, _ in v) and
              [x[0] for x in f["libvirt-qemu-hook"]] == ["ok"] and [x[0] for x in f["gpudiscovery"]] == ["ok"] and
              [x[0] for x in f["iommu"]] == ["ok"] and [x[0] for x in f["vgpu"]] == ["ok"],
              "the HPE A2 host with gpuhooks installed: ready, exit 0", r.stdout)
        r = gpudiscovery_check(os.path.join(hosts, "hpe-dl380g9-a2-vgpu", "sys"), inst, "--format", "json")
        doc = json.loads(r.stdout)
        check(r.returncode == 0 and doc["ready"] is True and all(set(x) == {"status", "check", "device", "message"}
                                                                  for x in doc["findings"]),
              "... and the same as JSON", r.stdout[:500])

        r = gpudiscovery_check(os.path.join(hosts, "hpe-dl380g9-a2-vgpu", "sys"), bare)
        f = findings(r)
        failed = sorted(c for c, v in f.items() if any(st == "fail" for st, _, _ in v))
        check(r.returncode == 1 and r.stdout.splitlines()[-1] == "not ready: 4 checks failed" and
              failed == ["agent-start-hook", "agent-transformer-hook", "gpudiscovery", "libvirt-qemu-hook"],
              "the same host without gpuhooks installed: not ready, the four missing hooks named", r.stdout)

        for name in ("dell-e5-aspeed-xeonphi", "power8-minsky-p100", "qemu-pcidomain-10000", "sgi-uv2000-k5000"):
            r = gpudiscovery_check(os.path.join(hosts, name, "sys"), inst)
            f = findings(r)
            check(r.returncode == 1 and f["iommu"][0][0] == "fail", "%s (no IOMMU groups in its capture): not ready, "
                  "the IOMMU named" % name, r.stdout)
        check_platforms(hosts, tmp, inst)

        # the consumer desktop: the GT 710 shares its group with the NIC and drives the console
        r = gpudiscovery_check(os.path.join(hosts, "consumer-rtx3080", "sys"), inst)
        f = findings(r)
        check(r.returncode == 0 and ("warn", "0000:04:00.0") in [(s, d) for s, d, _ in f["iommu-group"]] and
              "0000:03:00.0" in f["iommu-group"][0][2] and f["console-gpu"][0][1] == "0000:04:00.0",
              "the RTX 3080 desktop: ready, with the GT 710's shared group (the NIC named) and console", r.stdout)

        # broken kernels: no vfio-pci, the 3080 on nouveau, an IOMMU without interrupt remapping
        sysroot = copy_host("consumer-rtx3080", tmp)
        shutil.rmtree(os.path.join(sysroot, "bus/pci/drivers/vfio-pci"))
        os.makedirs(os.path.join(sysroot, "bus/pci/drivers/nouveau"))
        dev = os.path.realpath(os.path.join(sysroot, "bus/pci/devices/0000:05:00.0"))
        os.unlink(os.path.join(dev, "driver"))
        os.symlink(os.path.relpath(os.path.join(sysroot, "bus/pci/drivers/nouveau"), dev), os.path.join(dev, "driver"))
        r = gpudiscovery_check(sysroot, inst)
        f = findings(r)
        check(r.returncode == 1 and f["vfio-pci"][0][0] == "fail" and
              ("warn", "0000:05:00.0") in [(s, d) for s, d, _ in f.get("nouveau", [])],
              "without vfio-pci: not ready; the 3080 on nouveau: a warning", r.stdout)
        sysroot = copy_host("hpe-dl380g9-a2-vgpu", tmp)
        unit = os.path.realpath(os.path.join(sysroot, "class/iommu/dmar0"))
        os.makedirs(os.path.join(unit, "intel-iommu"))
        with open(os.path.join(unit, "intel-iommu/ecap"), "w") as fh:
            fh.write("f020d7\n")        # bit 3 clear: no interrupt remapping
        r = gpudiscovery_check(sysroot, inst)
        check(r.returncode == 1 and findings(r)["interrupt-remapping"][0][0] == "fail",
              "an Intel IOMMU without interrupt remapping (ecap bit 3): not ready", r.stdout)
        with open(os.path.join(unit, "intel-iommu/ecap"), "w") as fh:
            fh.write("f020df\n")
        os.makedirs(os.path.join(sysroot, "module/vfio_iommu_type1/parameters"))
        with open(os.path.join(sysroot, "module/vfio_iommu_type1/parameters/allow_unsafe_interrupts"), "w") as fh:
            fh.write("Y\n")
        r = gpudiscovery_check(sysroot, inst)
        check(r.returncode == 0 and findings(r)["interrupt-remapping"][0][0] == "warn",
              "allow_unsafe_interrupts on: a warning", r.stdout)

        # the agent's own agent.properties: another basedir, renamed methods
        props = os.path.join(inst, "etc/cloudstack/agent/agent.properties")
        with open(props, "w") as fh:
            fh.write("# agent.properties\nagent.hooks.basedir=/opt/hooks\n"
                     "agent.hooks.libvirt_vm_on_start.method = vmStarted\n")
        r = gpudiscovery_check(os.path.join(hosts, "hpe-dl380g9-a2-vgpu", "sys"), inst)
        f = findings(r)
        check(r.returncode == 1 and "/opt/hooks/libvirt-vm-xml-transformer.sh: missing" in f["agent-transformer-hook"][0][2]
              and f["agent-methods"][0][0] == "fail" and "vmStarted" in f["agent-methods"][0][2],
              "agent.properties is followed: hooks looked for in its basedir, its method names compared", r.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def overrides_with_reasons(path):
    """The override lines of a lintian overrides file, each checked to follow a comment."""
    lines, comment, missing = [], False, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("#"):
                comment = True
            elif not line:
                comment = False
            else:
                lines.append(line)
                if not comment:
                    missing.append(line)
    return lines, missing


def case_lintian():
    """Debian's lintian on the package CPack builds (issue 12, item 6)."""
    for tool in ("lintian", "cpack", "dpkg-deb"):
        if not shutil.which(tool):
            print("SKIP: %s is not installed" % tool)
            return 77
    tmp = tempfile.mkdtemp(prefix="gpuh-lintian-")
    try:
        out = os.path.join(tmp, "out")
        r = run(["cpack", "--config", os.path.join(ARGS.build, "CPackConfig.cmake"), "-B", out])
        debs = [f for f in os.listdir(out) if f.endswith(".deb")] if os.path.isdir(out) else []
        if not check(r.returncode == 0 and len(debs) == 1, "cpack builds one .deb", r.stdout[-2000:] + r.stderr):
            return 1
        deb = os.path.join(out, debs[0])
        lines, missing = overrides_with_reasons(os.path.join(ARGS.src, "install", "debian", "lintian-overrides"))
        check(lines and not missing, "every lintian override has its reason in a comment above it", missing)

        # --no-cfg: no user's or host's lintianrc changes what is reported; overrides are read
        # from the package itself (usr/share/lintian/overrides/gpuhooks). (--show-overrides
        # would make the overridden warnings fail --fail-on: not used.)
        r = run(["lintian", "--no-cfg", "--pedantic", "-I", "--fail-on", "error,warning", "--tag-display-limit", "0",
                 deb])
        tags = [l for l in r.stdout.splitlines() if re.match(r"^[EWIPX]: gpuhooks", l)]
        bad = [l for l in tags if l[0] in "EW"]
        check(r.returncode == 0 and not bad, "lintian: no error, no warning that is not overridden",
              bad or r.stdout[-3000:] + r.stderr[-2000:])
        # an override that matched nothing is 'unused-override' (info); a near miss is
        # 'mismatched-override' (a warning, failed above)
        unused = [l for l in tags if "unused-override" in l]
        check(not unused, "each of the %d overrides silences what lintian says" % len(lines), unused)

        listing = run(["dpkg-deb", "-c", deb]).stdout
        version = run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip()
        for tool in ("gpudiscovery", "libvirt-vm-xml-transformer", "libvirt-vm-state-change"):
            check("./usr/share/man/man1/%s.1.gz" % tool in listing and
                  "./usr/share/man/man1/%s.1\n" % tool not in listing + "\n", "%s.1 is gzipped" % tool)
        x = os.path.join(tmp, "x")
        run(["dpkg-deb", "-x", deb, x])
        with open(os.path.join(x, "usr/share/doc/gpuhooks/changelog.gz"), "rb") as f:
            import gzip
            first = gzip.decompress(f.read()).decode().splitlines()[0]
        check(version and first.startswith("gpuhooks (%s) " % version),
              "usr/share/doc/gpuhooks/changelog.gz: an entry for this version", first)
        check(os.path.isfile(os.path.join(x, "usr/share/doc/gpuhooks/copyright")), "a copyright file")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


CASES = {"lintian": case_lintian, "destdir": case_destdir, "uninstall": case_uninstall, "ns-uninstall": case_ns_uninstall,
         "package": case_package, "man": case_man, "check": case_check}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    ap.add_argument("--outer-ns", help=argparse.SUPPRESS)
    ap.add_argument("case", choices=sorted(CASES))
    ARGS = ap.parse_args()
    rc = CASES[ARGS.case]()
    if rc == 77 or ARGS.case == "ns-uninstall":
        return rc
    return harness.summary() or (1 if rc else 0)


if __name__ == "__main__":
    sys.exit(main())
