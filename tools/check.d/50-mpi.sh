#!/usr/bin/env bash
# Data-parallel training and embedding over Open MPI (issue 17, docs/scale.md): tests/mpi/run.sh
# with mpirun -np 2 and 4 on this machine. Installs openmpi-bin / libopenmpi-dev when missing
# (tools/install-deps.sh lists them too). Uses build-check/ (Debug, ASan+UBSan) when check.sh built it
# with MPI (then sembed, test_mpi_grad and semb_cmp are already there); otherwise builds its own
# Release tree, build-mpi/, with -DSEMBED_MPI=ON (only the three targets it needs). The 22 checks
# take about 1 minute (Release) and 2 minutes (Debug, ASan+UBSan) on 2 cores at load average ~13;
# a build-mpi/ build 2-4 more.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=""
for p in openmpi-bin libopenmpi-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "50-mpi: installing$missing" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
JOBS=${JOBS:-$(nproc)}
if [ -x build-check/test_mpi_grad ] && [ -x build-check/semb_cmp ] && [ -x build-check/sembed ]; then
  cmake --build build-check -j"$JOBS" --target sembed_cli test_mpi_grad semb_cmp >/dev/null
  tests/mpi/run.sh build-check
else
  cmake -S . -B build-mpi -DCMAKE_BUILD_TYPE=Release -DSEMBED_MPI=ON -DSEMBED_FATAL_WARNINGS=ON >/dev/null
  cmake --build build-mpi -j"$JOBS" --target sembed_cli test_mpi_grad semb_cmp >/dev/null
  tests/mpi/run.sh build-mpi
fi
