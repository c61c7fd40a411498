# SPDX-License-Identifier: Apache-2.0
"""The Python test scripts' shared harness: checks, counts, running a program.

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from harness import check, skip, run, summary, Result

A script prints one line per check ('ok     WHAT' or 'FAILED WHAT' with the detail of a failure
indented under it), then 'N passed, N failed' (summary()), and exits 1 when a check failed.
For /usr/bin/python3 and any python3 >= 3.7; standard library only.
"""

import os
import resource
import subprocess
import sys
import tempfile
import time

RESULTS = {"passed": 0, "failed": 0, "skipped": 0}
DETAIL_LINES = 40


def use_tmpfs():
    """Put this script's temporary files (tempfile's default directory) on /dev/shm, unless
    TMPDIR names a place: copies of fixture hosts are thousands of small files, which a disk
    makes slow to write and to delete (as the emulator's scratch, tests/emu/emu.py)."""
    if not os.environ.get("TMPDIR") and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        tempfile.tempdir = "/dev/shm"


def check(cond, what, detail=None):
    """Count and print one check; on failure print @detail (str() of it, its first
    DETAIL_LINES lines) under it. Returns @cond, so that a script can stop on a failure."""
    RESULTS["passed" if cond else "failed"] += 1
    text = "" if cond or detail is None else str(detail)
    print(("ok     " if cond else "FAILED ") + what +
          "".join("\n         " + line for line in text.splitlines()[:DETAIL_LINES]))
    sys.stdout.flush()
    return cond


def skip(what):
    """A check that does not apply here: counted apart, printed as 'skip   WHAT'."""
    RESULTS["skipped"] += 1
    print("skip   " + what)
    sys.stdout.flush()


def summary():
    """Print '(N skipped)' when some were, then 'N passed, N failed'; returns the exit status
    (1 when a check failed, else 0)."""
    if RESULTS["skipped"]:
        print("(%d skipped)" % RESULTS["skipped"])
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    sys.stdout.flush()
    return 1 if RESULTS["failed"] else 0


class Result:
    """What a run gave: rc (the exit status; a string when it did not run to its end:
    'timeout after N s', 'exec: <strerror>'), out, err (bytes, or str for a text run), elapsed
    (seconds) and cpu (CPU seconds, user and system, of the children reaped during the run: the
    program's own where the script runs one program at a time; None when not measured).
    Unpacks as (rc, out, err)."""

    def __init__(self, rc, out, err, elapsed, cpu=None):
        self.rc, self.out, self.err, self.elapsed, self.cpu = rc, out, err, elapsed, cpu

    @classmethod
    def of(cls, p, elapsed=0.0):
        """From a subprocess.CompletedProcess."""
        return cls(p.returncode, p.stdout, p.stderr, elapsed)

    # subprocess.CompletedProcess's names
    returncode = property(lambda self: self.rc)
    stdout = property(lambda self: self.out)
    stderr = property(lambda self: self.err)

    def __iter__(self):
        return iter((self.rc, self.out, self.err))

    def one_line(self):
        """stderr is exactly one non-empty line."""
        nl = "\n" if isinstance(self.err, str) else b"\n"
        return self.err.endswith(nl) and self.err.count(nl) == 1 and len(self.err.strip()) > 0

    def why(self):
        """For a failed check: the exit status, the time, stderr; stdout too for a text run
        (a binary one can be megabytes: its size)."""
        t = "%.2f s" % self.elapsed + ("" if self.cpu is None else " (%.2f s CPU)" % self.cpu)
        if isinstance(self.out, str):
            return "exit %s, %s\nstdout: %s\nstderr: %s" % (
                self.rc, t, self.out[:1500] or "(empty)", self.err[:3000] or "(empty)")
        return "exit %s, %s, stdout %d bytes, stderr: %s" % (
            self.rc, t, len(self.out), self.err.decode("utf-8", "replace")[:600] or "(empty)")


def _children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(argv, env=None, stdin=None, timeout=None, text=False, cwd=None):
    """Run @argv to its end with @env (the whole environment; None: this process's), @stdin
    (bytes or str, or None for /dev/null) and @timeout (seconds; None: no limit). Returns a
    Result; a timeout or a program that cannot be executed (ENOENT, E2BIG) is a Result too,
    whose rc says so and whose out and err hold what came before."""
    t0, c0 = time.monotonic(), _children_cpu()
    empty = "" if text else b""
    try:
        p = subprocess.run(argv, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                           capture_output=True, env=env, timeout=timeout, text=text, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        out, err = e.stdout or b"", e.stderr or b""
        if text:
            out, err = (x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in (out, err))
        return Result("timeout after %g s" % timeout, out, err, time.monotonic() - t0, _children_cpu() - c0)
    except OSError as e:
        return Result("exec: " + (e.strerror or str(e)), empty, empty, time.monotonic() - t0)
    return Result(p.returncode, p.stdout, p.stderr, time.monotonic() - t0, _children_cpu() - c0)
