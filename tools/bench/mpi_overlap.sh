#!/usr/bin/env bash
# Gradient allreduce overlapped with the backward pass or not (SEMBED_MPI_OVERLAP=1, docs/scale.md
# "Overlap"): `mpirun -np 2 sembed train`, 1 thread per rank, MiniLM-L6-shaped random encoder
# (bert-base-uncased vocabulary), SimCSE unsup, global batch 64, max 32 tokens; runs alternate
# off / on REPS times so both see the same machine load. Per run: wall s/step and rank 0's CPU-s/step
# from the log (steps 2..S; step 1 is warm-up); then the ratio on / off of the medians. Also checks
# that both give bit-identical weights. Usage: [MPIRUN_FLAGS=...] tools/bench/mpi_overlap.sh [BUILD_DIR] [STEPS] [REPS]
set -eu
cd "$(dirname "$0")/../.."
B=$(cd "${1:-build}" && pwd); S=$B/sembed; STEPS=${2:-8}; REPS=${3:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
TEXT=$(tools/datafile.sh train/wiki1m_head.txt)
VOCAB=$(tools/datafile.sh vocab/bert-base-uncased/vocab.txt)
head -n 4000 "$TEXT" >"$T/data.txt"
INIT="layers=6,hidden=384,heads=12,intermediate=1536,max_position=512,vocab=$VOCAB"
ARGS="--init-random $INIT --data $T/data.txt --batch 64 --max-length 32 --steps $STEPS --lr 5e-5 --seed 1 --threads 1"
per_step() { /usr/bin/python3 -c "
import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); e=[float(x['elapsed_s']) for x in r]; c=[float(x['cpu_s']) for x in r]
print('%.4f %.4f' % ((e[-1]-e[0])/(len(e)-1), (c[-1]-c[0])/(len(c)-1)))" "$1"; }
: >"$T/off"; : >"$T/on"
for rep in $(seq "$REPS"); do
  for mode in off on; do
    ov=0; [ $mode = on ] && ov=1
    SEMBED_MPI_OVERLAP=$ov mpirun -np 2 --oversubscribe --bind-to none ${MPIRUN_FLAGS:-} -x SEMBED_MPI_OVERLAP -x OMP_NUM_THREADS \
      "$S" train $ARGS --log "$T/$mode.csv" -o "$T/$mode.semb" >/dev/null 2>"$T/err" || { cat "$T/err"; exit 1; }
    r=$(per_step "$T/$mode.csv"); echo "$r" >>"$T/$mode"
    echo "rep $rep overlap $mode: $(echo "$r" | awk '{printf "%.3f s/step wall, %.3f CPU-s/step (rank 0)", $1, $2}')"
  done
  "$B/semb_cmp" "$T/off.semb" "$T/on.semb" 0 >/dev/null || { echo "FAIL: overlap changed the weights"; exit 1; }
done
/usr/bin/python3 - "$T/off" "$T/on" <<'PY'
import statistics, sys
off = [list(map(float, l.split())) for l in open(sys.argv[1])]
on = [list(map(float, l.split())) for l in open(sys.argv[2])]
mw = [statistics.median(x[0] for x in v) for v in (off, on)]
mc = [statistics.median(x[1] for x in v) for v in (off, on)]
print("median off: %.3f s/step wall, %.3f CPU-s/step; on: %.3f, %.3f; ratio on/off wall %.3f, CPU %.3f"
      % (mw[0], mc[0], mw[1], mc[1], mw[1] / mw[0], mc[1] / mc[0]))
PY
echo "weights bit-identical with and without overlap in every rep"
