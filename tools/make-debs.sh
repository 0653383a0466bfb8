#!/usr/bin/env bash
# tools/make-debs.sh [BUILD_DIR]: build the Debian packages of sembed with CPack:
#   libsembed0     the shared library (soname libsembed.so.0)
#   libsembed-dev  headers, sembed.pc, the CMake package, the libsembed.so link
#   sembed         the CLI, its man pages, bash completion and the default model
# into BUILD_DIR (default build-deb/, Release, installed under /usr). Prints the .deb paths.
set -euo pipefail
cd "$(dirname "$0")/.."
bdir=${1:-build-deb}
for tool in cmake cpack dpkg-deb dpkg-shlibdeps help2man; do
  command -v "$tool" >/dev/null || { echo "make-debs.sh: $tool is missing (tools/install-deps.sh installs it)" >&2; exit 1; }
done
cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DSEMBED_BUILD_TESTS=OFF \
  -DSEMBED_SANITIZE_ADDRESS=OFF -DSEMBED_SANITIZE_UNDEFINED=OFF -DSEMBED_NATIVE=OFF >/dev/null
cmake --build "$bdir" -j"$(nproc 2>/dev/null || echo 2)" --target sembed sembed_cli sembed_doc >&2
rm -f "$bdir"/*.deb
(cd "$bdir" && cpack -G DEB >cpack.log 2>&1) || { cat "$bdir/cpack.log" >&2; echo "make-debs.sh: cpack failed" >&2; exit 1; }
ls "$bdir"/*.deb
