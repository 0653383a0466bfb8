#!/usr/bin/env bash
# ThreadSanitizer suite (issue 20): build the library and tests/test_threads.c with
# -DSEMBED_SANITIZE_THREAD=ON (gcc; libtsan2 comes with Debian 12's gcc) in build-tsan/, then run
# the test: 8 threads, each with its own context on one shared model, released together by a
# barrier so their first calls race the lazy weight packing; f32 and int8; results must be
# bit-identical to a single-threaded reference and TSan must report nothing (halt_on_error=1
# turns any report into a crash, which Criterion counts as a failure).
# Contexts use one thread each, so libgomp (not TSan-instrumented) never forms a team: see the
# comment at the top of tests/test_threads.c.
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
cmake --build build-tsan -j"$JOBS" --target test_threads >/dev/null
# second_deadlock_stack: clearer lock-order reports; exitcode 66 if a report slips past halt_on_error.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 exitcode=66 ${TSAN_OPTIONS:-}"
(cd build-tsan && ./tests/test_threads --jobs 1 --verbose 2>&1 | tee test_threads.log | grep -E "differ from|Synthesis|WARNING: ThreadSanitizer|FAIL") || true
if grep -q "WARNING: ThreadSanitizer" build-tsan/test_threads.log || ! grep -q "Failing: 0 | Crashing: 0" build-tsan/test_threads.log; then
  echo "10-tsan: FAILED (build-tsan/test_threads.log)"; tail -60 build-tsan/test_threads.log; exit 1
fi
echo "10-tsan: test_threads passed under ThreadSanitizer in $(( $(date +%s) - t0 )) s (build included)"
