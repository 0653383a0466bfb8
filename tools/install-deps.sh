#!/usr/bin/env bash
# Install what sembed needs on Debian 12 (as root, or with sudo): build tools and libraries, plus
# the reference tools the tests compare against (PyTorch, ONNX, the HF tokenizer, ONNX Runtime).
# Usage: tools/install-deps.sh [--runtime-only]
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

BUILD_PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev libxxhash-dev libutf8proc-dev libjson-c-dev
  libprotobuf-c-dev protobuf-c-compiler zlib1g-dev libpcre2-dev libmicrohttpd-dev"
TEST_PKGS="libcriterion-dev python3 python3-torch python3-onnx python3-numpy"
TEST_PKGS="$TEST_PKGS help2man dpkg-dev file"   # issue 19: man pages, .deb packages (tools/make-debs.sh)
TEST_PKGS="$TEST_PKGS libopenmpi-dev openmpi-bin"   # issue 17: mpirun tests (the CLI gains MPI when these are present)

# Python package (python/, tools/check.d/30-python.sh)
TEST_PKGS="$TEST_PKGS python3-pip python3-venv python3-setuptools python3-wheel python3-pytest"

pkgs="$BUILD_PKGS"
if [ "${1:-}" != "--runtime-only" ]; then pkgs="$pkgs $TEST_PKGS"; fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "${1:-}" != "--runtime-only" ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  if [ ! -d tools/node/node_modules/tokenizers ] || [ ! -d tools/node/node_modules/onnxruntime-node ] ||
     [ ! -d tools/node/node_modules/openai ]; then
    (cd tools/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
