#!/usr/bin/env bash
# The Python package (python/, docs/python.md): build libsembed and the CLI in Release
# (build-python/, the folder python/setup.py builds in), `pip install ./python` offline into a
# throwaway venv that sees Debian's numpy and pytest, then run python/tests with /usr/bin/python3's
# venv. The tests compare against build-python/sembed (same sources, same flags as the package's library).
set -euo pipefail
cd "$(dirname "$0")/../.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
need="build-essential cmake python3 python3-pip python3-venv python3-setuptools python3-wheel python3-numpy python3-pytest"
missing=""
for p in $need; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "30-python: installing:$missing"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
start=$(date +%s)
JOBS=$(nproc 2>/dev/null || echo 2)
export CMAKE_BUILD_PARALLEL_LEVEL=$JOBS
cmake -S . -B build-python -DCMAKE_BUILD_TYPE=Release -DSEMBED_BUILD_TESTS=OFF >/dev/null
cmake --build build-python -j"$JOBS" --target sembed sembed_cli >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --no-build-isolation --no-index ./python >"$tmp/pip.log" 2>&1 \
  || { cat "$tmp/pip.log"; echo "30-python: pip install ./python FAILED"; exit 1; }
# The tests must import the installed package (with its bundled library), not the source folder.
(cd "$tmp" && "$tmp/venv/bin/python" -c 'import sembed, sys; print("30-python: sembed", sembed.__version__, "from", sembed.LIBRARY_PATH, "kernel", sembed.kernel_path()); sys.exit(0 if "/venv/" in sembed.LIBRARY_PATH else 1)') \
  || { echo "30-python: the installed package does not use its bundled library"; exit 1; }
rc=0
SEMBED_CLI="$PWD/build-python/sembed" CI="${CI:-true}" "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider python/tests || rc=$?
echo "30-python: pytest exit status $rc, $(( $(date +%s) - start )) s (build, install, tests)"
exit "$rc"
