#!/usr/bin/env bash
# ThreadSanitizer suite (issue 20): build the library with -DSEMBED_SANITIZE_THREAD=ON (gcc;
# libtsan2 comes with Debian 12's gcc) in build-tsan/ and run tsan_threads, the plain-program
# build of tests/test_threads.c (Criterion cannot start under TSan: Criterion issue #274):
# 8 threads, each with its own context on one freshly loaded model, released together by a barrier
# so their first calls race the lazy weight packing; f32 and int8; every embedding must be
# bit-identical to a single-threaded reference, and TSan must report nothing (halt_on_error=1).
# Contexts use one thread each, so libgomp (not TSan-instrumented) never forms a team: see the
# comment at the top of tests/test_threads.c. Checked to fail: with se_model_pack's mutex removed,
# TSan reports the data race in pack_lin.
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=$(nproc 2>/dev/null || echo 2)
if ! dpkg-query -W -f='${Status}' libtsan2 2>/dev/null | grep -q "install ok installed"; then
  [ "$(id -u)" = 0 ] || { echo "10-tsan: libtsan2 missing (apt-get install libtsan2)"; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libtsan2 >/dev/null
fi
t0=$(date +%s)
CC=${TSAN_CC:-gcc} cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEMBED_FATAL_WARNINGS=ON \
  -DSEMBED_SANITIZE_THREAD=ON >/dev/null
cmake --build build-tsan -j"$JOBS" --target tsan_threads >/dev/null
t1=$(date +%s)
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 exitcode=66 ${TSAN_OPTIONS:-}"
if ! (cd build-tsan && ./tests/tsan_threads >tsan_threads.log 2>&1); then
  echo "10-tsan: FAILED (build-tsan/tsan_threads.log)"; tail -60 build-tsan/tsan_threads.log; exit 1
fi
grep -E "differ from|tsan_threads:" build-tsan/tsan_threads.log
echo "10-tsan: passed under ThreadSanitizer (build $((t1 - t0)) s, run $(( $(date +%s) - t1 )) s)"
