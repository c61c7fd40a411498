#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Builds the libFuzzer targets with clang, ASan and UBSan in their own build directory
# (GPUH_FUZZ_BUILD, default build-fuzz/ of the source tree) and runs each in turn for SECONDS
# (default 60), at the lowest priority, on a working corpus seeded from tests/fuzz/corpus/TARGET
# (kept in BUILD/fuzz-work/TARGET/corpus between runs; the committed corpus is only read).
# A crash, a leak, a sanitizer report or an input slower than 10 s stops that target and
# leaves the input in BUILD/fuzz-work/TARGET/artifacts/. Exit status 1 when any target found
# something. Targets: domxml transform sysfs mdev vendor_vgpu pci_addr config.
# Environment: JOBS (build parallelism, default 2), FUZZ_ARGS (more libFuzzer options).
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-domxml transform sysfs mdev vendor_vgpu pci_addr config}
build=${GPUH_FUZZ_BUILD:-$src/build-fuzz}

case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
command -v clang >/dev/null || { echo "$0: clang is needed (with libclang_rt.fuzzer)" >&2; exit 2; }

cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DGPUH_FUZZ=ON -DGPUH_SANITIZE=address,undefined >/dev/null
names=
for t in $targets; do names="$names fuzz_$t"; done
# shellcheck disable=SC2086
nice cmake --build "$build" -j"${JOBS:-2}" --target $names

failed=
for t in $targets; do
        work=$build/fuzz-work/$t
        mkdir -p "$work/corpus" "$work/artifacts"
        dict=
        case $t in
        domxml|transform) dict=-dict=$src/tests/fuzz/xml.dict ;;
        config) dict=-dict=$src/tests/fuzz/json.dict ;;
        mdev) dict=-dict=$src/tests/fuzz/mdev.dict ;;
        esac
        echo "== fuzz_$t: $secs s, log in $work/log"
        # shellcheck disable=SC2086
        if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
             nice -n 19 "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
             -print_final_stats=1 -artifact_prefix="$work/artifacts/" $dict ${FUZZ_ARGS:-} \
             "$work/corpus" "$src/tests/fuzz/corpus/$t" >"$work/log" 2>&1; then
                failed="$failed $t"
                echo "   FOUND something: $(ls "$work/artifacts" | tail -n 3 | tr '\n' ' ')"
        fi
        grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|cov: .*ft:' \
                "$work/log" | tail -n 4 | sed 's/^/   /'
done
if [ -n "$failed" ]; then
        echo "found something in:$failed" >&2
        exit 1
fi
