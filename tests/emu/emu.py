# SPDX-License-Identifier: Apache-2.0
"""Test helper: run sysfsemu.py on a private copy of a fake host's sys tree.

    from emu import Emulator, Skip
    try:
        with Emulator("build/fixtures/hosts/hpe-dl380g9-a2-vgpu/sys") as emu:
            emu.control({"fail": [{"path": "bus/pci/drivers_probe", "errno": "EBUSY", "times": 1}]})
            subprocess.run([tool, "--sysfs-root", emu.root, ...])
            assert [w["path"] for w in emu.writes()] == [...]
    except Skip as e:
        print(f"SKIP: {e}"); sys.exit(77)

Emulator(...) copies the tree into a fresh temporary directory, mounts the emulator on a fresh
mount point there and waits (with a deadline) until the mount is up. On exit, even after a
failure, it stops the emulator (SIGTERM, which unmounts), falls back to `fusermount3 -u -z` /
`umount -l` and SIGKILL, and removes the temporary directory (never through a live mount).
Skip is raised when FUSE cannot be used here: no /dev/fuse, no fusepy for /usr/bin/python3,
or a mount the kernel refuses (an unprivileged container).
"""
import errno
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SYSFSEMU = os.path.join(HERE, "sysfsemu.py")
PYTHON = "/usr/bin/python3"      # Debian's fusepy is installed for the system python only


class Skip(Exception):
    """FUSE is not usable on this machine: the caller exits 77 (ctest SKIP_RETURN_CODE)."""


def fuse_available():
    """None when the emulator can run here, else the reason it cannot."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse: {e.strerror}"
    if not os.access(PYTHON, os.X_OK):
        return f"no {PYTHON}"
    r = subprocess.run([PYTHON, "-c", "import fusepy"], capture_output=True)
    if r.returncode != 0:
        return "python3-fusepy is not installed (module fusepy)"
    return None


def scratch_parent():
    """Where copies go: $GPUH_EMU_TMPDIR, else /dev/shm (tmpfs: copying a ~4000-file host
    tree there takes 0.1 s, against seconds on a slow disk), else the default temp dir."""
    env = os.environ.get("GPUH_EMU_TMPDIR")
    if env:
        return env
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    return None


def is_mounted(path):
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                mnt = fields[4].encode().decode("unicode_escape")
                if mnt == path:
                    return True
    except OSError:
        return os.path.ismount(path)
    return False


class Emulator:
    def __init__(self, host_sys_dir, control=None, timeout=10.0, keep=False):
        """host_sys_dir: a fixture host's sys/ tree (it is copied, never modified).
        control: an initial control dict (see README.md). keep: leave the temp dir (debug)."""
        self.src = os.path.abspath(host_sys_dir)
        self.initial_control = control or {}
        self.timeout = timeout
        self.keep = keep
        self.proc = None
        self.dir = None

    # paths: dir/backing (the copy), dir/sys (mount point = emu.root), dir/control.json,
    # dir/writes.jsonl (log), dir/dev/vfio/<group> (vfio nodes), dir/emu.stderr
    def __enter__(self):
        why = fuse_available()
        if why:
            raise Skip(why)
        if not os.path.isdir(self.src):
            raise FileNotFoundError(self.src)
        self.dir = tempfile.mkdtemp(prefix="gpuh-emu-", dir=scratch_parent())
        try:
            self.backing = os.path.join(self.dir, "backing")
            self.root = os.path.join(self.dir, "sys")
            self.control_path = os.path.join(self.dir, "control.json")
            self.log_path = os.path.join(self.dir, "writes.jsonl")
            self.dev_dir = os.path.join(self.dir, "dev")
            self.stderr_path = os.path.join(self.dir, "emu.stderr")
            shutil.copytree(self.src, self.backing, symlinks=True)
            os.mkdir(self.root)
            self.control(self.initial_control)
            with open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    [PYTHON, SYSFSEMU, self.backing, self.root, "--control", self.control_path,
                     "--watch-pid", str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
                    env=dict(os.environ, TMPDIR=self.dir))
            deadline = time.monotonic() + self.timeout
            while not is_mounted(self.root):
                rc = self.proc.poll()
                if rc is not None:
                    msg = self.stderr()
                    if rc == 3 or "Operation not permitted" in msg or "fuse device" in msg \
                            or "Permission denied" in msg:
                        raise Skip(f"FUSE mount refused: {msg.strip()}")
                    raise RuntimeError(f"sysfsemu exited {rc} before mounting: {msg}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sysfsemu did not mount within {self.timeout}s: {self.stderr()}")
                time.sleep(0.02)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- for tests ---------------------------------------------------------------------------
    def path(self, rel):
        return os.path.join(self.root, rel)

    def control(self, d):
        """Replace the control file (atomically: the emulator reads it at every write; a new
        file restarts every rule's `times` count)."""
        tmp = self.control_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(d, f)
        os.replace(tmp, self.control_path)

    def writes(self, since=0):
        """The finished writes of the emulator's log: dicts with seq, t, path, alias, value,
        result, errno, fault (and note; lock and waited for a write that waited for a device
        lock). since: skip the first N of them (len() of an earlier writes())."""
        return [r for r in self.log() if "event" not in r][since:]

    def log(self, since=0):
        """Every record of the log, in order: the finished writes (as in writes()) and the
        events of writes in flight, which carry "event": "hang" (a hang rule holds the write,
        "lock" names the device lock it holds meanwhile), "wait" (it waits for the device lock
        "lock" that "holder" holds), "still-hanging" (the control file changed, the hang goes
        on). since: skip the first N records (len() of an earlier log())."""
        try:
            with open(self.log_path) as f:
                recs = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            recs = []
        return recs[since:]

    def wait_for(self, pred, timeout=10.0, since=0, what="a log record"):
        """Poll the log (every record, events included, from record @since) until pred(record)
        holds for one; return that record. Raises TimeoutError after @timeout seconds (and
        RuntimeError when the emulator is gone), naming @what."""
        deadline = time.monotonic() + timeout
        while True:
            for rec in self.log(since):
                if pred(rec):
                    return rec
            if not self.alive():
                raise RuntimeError(f"emulator exited while waiting for {what}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} in the emulator's log within {timeout}s")
            time.sleep(0.01)

    def wait_write(self, path, result=None, event=None, timeout=10.0, since=0):
        """Wait for the record of a write to @path (a glob, matched against the path the write
        arrived on and its alias): by default its completion, with @result ("ok", "EBUSY",
        ...) when given; with @event ("hang", "wait", "still-hanging") that event instead.
        Returns the record; raises TimeoutError after @timeout seconds."""
        def pred(r):
            if r.get("event") != event:
                return False
            if not (fnmatch.fnmatchcase(r["path"], path) or
                    (r.get("alias") and fnmatch.fnmatchcase(r["alias"], path))):
                return False
            return event is not None or result is None or r["result"] == result
        what = f"{event or 'completed'} write to {path}" + (f" ({result})" if result else "")
        return self.wait_for(pred, timeout, since, what)

    def dev_vfio(self):
        """Groups whose /dev/vfio/<group> node exists (without the 'vfio' container node)."""
        try:
            return sorted((n for n in os.listdir(os.path.join(self.dev_dir, "vfio")) if n != "vfio"),
                          key=lambda n: int(n) if n.isdigit() else n)
        except FileNotFoundError:
            return []

    def write(self, rel, value):
        """One write(2) of value to the attribute, like `echo` (value is sent as given; add
        '\\n' yourself). Returns 0 or the errno."""
        data = value.encode() if isinstance(value, str) else value
        try:
            fd = os.open(self.path(rel), os.O_WRONLY)
        except OSError as e:
            return e.errno
        try:
            os.write(fd, data)
            return 0
        except OSError as e:
            return e.errno
        finally:
            os.close(fd)

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def readlink(self, rel):
        return os.readlink(self.path(rel))

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- teardown ----------------------------------------------------------------------------
    def stop(self, timeout=10.0):
        """SIGTERM the emulator and wait for it to unmount and exit. Returns its exit code
        (None if it had to be killed)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                rc = None
        if self.root and is_mounted(self.root):
            for cmd in (["fusermount3", "-u", "-z", self.root], ["umount", "-l", self.root]):
                try:
                    subprocess.run(cmd, capture_output=True, timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    continue
                if not is_mounted(self.root):
                    break
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
            rc = None
        return rc

    def close(self):
        try:
            self.stop()
        finally:
            if self.dir and not self.keep:
                if self.root and is_mounted(self.root):
                    # never delete through a live mount: leave the directory behind
                    return
                shutil.rmtree(self.dir, ignore_errors=True)


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "ok"
