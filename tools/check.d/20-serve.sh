#!/usr/bin/env bash
# sembed serve (issue 13): the official OpenAI SDK (npm `openai`) against the server built in
# build-check/ (ASan+UBSan), bit-identical to `sembed embed`. test_serve (Criterion) already ran in
# ctest and fuzz_serve_request in the fuzz loop. About 10 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
missing=""
dpkg-query -W -f='${Status}' libmicrohttpd-dev 2>/dev/null | grep -q "install ok installed" || missing=" libmicrohttpd-dev"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing="$missing nodejs npm"; fi
if [ -n "$missing" ]; then
  echo "20-serve: installing$missing" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ ! -d tools/node/node_modules/openai ]; then
  (cd tools/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi
[ -x build-check/sembed ] || { echo "20-serve: build-check/sembed is missing (run tools/check.sh)"; exit 1; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
node tools/node/serve_openai.js build-check/sembed models/sembed-mini/sembed-mini.semb
