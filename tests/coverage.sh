#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Line and branch coverage of common/ and hooks/ by the tests that need neither root nor FUSE
# (every ctest test but those labelled fuse, tests/README.md "Labels and builds", and
# install/package), with gcovr (Debian's gcovr, install/deps.sh).
#
# Usage: tests/coverage.sh [BUILD_DIR]      (from anywhere; default BUILD_DIR: build-coverage)
#        cmake --build build --target coverage   (BUILD_DIR build/coverage)
#
# Writes BUILD_DIR/coverage/{lines.txt,branches.txt,summary.json,index.html} and prints the
# table tests/README.md ("Coverage") shows: every file of the state-change code (by glob:
# hooks/state-change/*.c, or common/statechange.c before the split), common/occupancy.c, and
# the totals of common/ and hooks/, with the target (85 % of lines) met or not.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$src/build-coverage}
jobs=$(nproc 2>/dev/null || echo 2)

if ! command -v gcovr >/dev/null 2>&1; then
        echo "coverage: gcovr not found (Debian package gcovr; install/deps.sh installs it)" >&2
        exit 1
fi

# -fprofile-update=atomic: the scan's threads and the forked children update the same counters
# (without it gcov reports negative counts, which gcovr refuses)
cmake -S "$src" -B "$dir" -DGPUH_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_C_FLAGS="--coverage -fprofile-update=atomic -O0" -DCMAKE_EXE_LINKER_FLAGS="--coverage" >/dev/null
cmake --build "$dir" -j"$jobs"
find "$dir" -name '*.gcda' -delete

# Not the tests labelled fuse (they mount the emulator), nor install/package (it needs root).
ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$jobs" -LE '^fuse$' -E '^install/package$'

out=$dir/coverage
mkdir -p "$out"
set -- --root "$src" --object-directory "$dir" --filter "$src/common/" --filter "$src/hooks/" \
       --exclude-directories '.*/CompilerIdC'
gcovr "$@" --txt "$out/lines.txt" --json-summary-pretty --json-summary "$out/summary.json" \
      --html-details "$out/index.html" >/dev/null
gcovr "$@" --branches --txt "$out/branches.txt" >/dev/null

/usr/bin/python3 - "$out/summary.json" <<'EOF'
import fnmatch, json, sys

TARGET = 85.0
STATE_CHANGE = ["common/statechange*.c", "hooks/state-change/*.c", "hooks/libvirt-vm-state-change.c"]
OCCUPANCY = ["common/occupancy*.c", "hooks/*/occupancy*.c"]

files = json.load(open(sys.argv[1]))["files"]

def pct(c, t):
    return 100.0 * c / t if t else 100.0

def row(name, f):
    return (f"| `{name}` | {f['line_covered']}/{f['line_total']} | {pct(f['line_covered'], f['line_total']):.1f} % "
            f"| {f['branch_covered']}/{f['branch_total']} | {pct(f['branch_covered'], f['branch_total']):.1f} % |")

def total(fs):
    t = {k: 0 for k in ("line_covered", "line_total", "branch_covered", "branch_total")}
    for f in fs:
        for k in t:
            t[k] += f[k]
    return t

def pick(globs):
    return [f for f in files if any(fnmatch.fnmatch(f["filename"], g) for g in globs)]

print("| file | lines | line % | branches | branch % |")
print("|---|---|---|---|---|")
verdict = []
for title, globs in (("state-change code", STATE_CHANGE), ("occupancy model", OCCUPANCY)):
    fs = pick(globs)
    for f in sorted(fs, key=lambda f: f["filename"]):
        print(row(f["filename"], f))
    t = total(fs)
    if len(fs) > 1:
        print(row(f"{title}, all", t))
    p = pct(t["line_covered"], t["line_total"])
    verdict.append(f"{title}: {p:.1f} % of lines ({'meets' if p >= TARGET else 'BELOW'} the {TARGET:.0f} % target)")
for d in ("common/", "hooks/"):
    print(row(f"{d} (all files)", total([f for f in files if f["filename"].startswith(d)])))
print()
print("\n".join(verdict))
EOF
echo "coverage: reports in $out (index.html, lines.txt, branches.txt)"
