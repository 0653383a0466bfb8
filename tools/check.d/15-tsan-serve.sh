#!/usr/bin/env bash
# `sembed serve` under ThreadSanitizer (issue 20): the CLI built with -DSEMBED_SANITIZE_THREAD=ON
# (gcc, libtsan2) in build-tsan/ (shared with 10-tsan.sh), started on a free loopback port and
# driven by tests/serve_tsan_drive.py (Python standard library only): concurrent clients on every
# route with every embedding bit-identical to a lone request's, clients hanging up while their
# request waits, and a SIGTERM drain with requests in flight (answered 200, exit 0).
# TSan halts the server on its first report (exit 66) and the driver fails on it; a report in the
# server's log fails too. libmicrohttpd is not instrumented; tools/tsan-serve.supp lists what is
# suppressed there and why (never a frame of sembed's own code).
# Criterion cannot start under TSan (see 10-tsan.sh), hence a plain driver instead of test_serve.
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=$(nproc 2>/dev/null || echo 2)
export DEBIAN_FRONTEND=noninteractive
missing=""
for p in libtsan2 libmicrohttpd-dev python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "15-tsan-serve: missing$missing (apt-get install$missing)"; exit 1; }
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
PY=/usr/bin/python3
t0=$(date +%s)
CC=${TSAN_CC:-gcc} cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEMBED_FATAL_WARNINGS=ON \
  -DSEMBED_SANITIZE_THREAD=ON >/dev/null
cmake --build build-tsan -j"$JOBS" --target sembed_cli >/dev/null
t1=$(date +%s)
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 exitcode=66 suppressions=$PWD/tools/tsan-serve.supp ${TSAN_OPTIONS:-}"
if ! "$PY" tests/serve_tsan_drive.py build-tsan/sembed models/sembed-mini/sembed-mini.semb build-tsan/serve_tsan.log; then
  echo "15-tsan-serve: FAILED (server log: build-tsan/serve_tsan.log)"; tail -80 build-tsan/serve_tsan.log; exit 1
fi
echo "15-tsan-serve: passed under ThreadSanitizer (build $((t1 - t0)) s, run $(( $(date +%s) - t1 )) s)"
