#!/usr/bin/env bash
# Data-parallel training and embedding over Open MPI (issue 17, docs/scale.md): tests/mpi/run.sh
# with mpirun -np 2 and 4 on this machine. Installs openmpi-bin / libopenmpi-dev when missing
# (tools/install-deps.sh lists them too). Builds its own Release tree, build-mpi/, with
# -DSEMBED_MPI=ON (only the three targets it needs). About 3-4 minutes on 2 cores.
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
cmake -S . -B build-mpi -DCMAKE_BUILD_TYPE=Release -DSEMBED_MPI=ON -DSEMBED_FATAL_WARNINGS=ON >/dev/null
cmake --build build-mpi -j"$JOBS" --target sembed_cli test_mpi_grad semb_cmp >/dev/null
tests/mpi/run.sh build-mpi
