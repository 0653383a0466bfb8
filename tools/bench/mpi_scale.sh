#!/usr/bin/env bash
# Scaling of `sembed train` and `sembed embed` over MPI ranks on one machine (docs/scale.md):
# 1 rank x 1 thread, 2 ranks x 1 thread, 1 rank x 2 threads, each twice (interleaved), on a
# MiniLM-L6-shaped random encoder (bert-base-uncased vocabulary), SimCSE unsup, global batch 64,
# max 32 tokens. Time per step from the log (steps 2..S, the first is warm-up); collective time
# from SEMBED_MPI_STATS. Usage: tools/bench/mpi_scale.sh [BUILD_DIR] [STEPS]
set -eu
cd "$(dirname "$0")/../.."
B=$(cd "${1:-build}" && pwd); S=$B/sembed; STEPS=${2:-6}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# Text: the wiki sentences where tools/datafile.sh finds them, else the vendored STS-B dev sentences.
if WIKI=$(tools/datafile.sh train/wiki1m_head.txt 2>/dev/null); then
  head -n 4000 "$WIKI" >"$T/data.txt"
else
  DEV=$(tools/datafile.sh sts/STSBenchmark/sts-dev.csv) || exit 1
  awk -F'\t' '{ print $6; print $7 }' "$DEV" | head -n 4000 >"$T/data.txt"
fi
head -n 1000 "$T/data.txt" >"$T/embed.txt"
VOCAB=$(tools/datafile.sh vocab/bert-base-uncased/vocab.txt) || exit 1
INIT="layers=6,hidden=384,heads=12,intermediate=1536,max_position=512,vocab=$VOCAB"
ARGS="--init-random $INIT --data $T/data.txt --batch 64 --max-length 32 --steps $STEPS --lr 5e-5 --seed 1"
per_step() { /usr/bin/python3 -c "
import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); e=[float(x['elapsed_s']) for x in r]; c=[float(x['cpu_s']) for x in r]
print('%.3f s/step wall, %.3f CPU-s/step (rank 0)' % ((e[-1]-e[0])/(len(e)-1), (c[-1]-c[0])/(len(c)-1)))" "$1"; }
for rep in 1 2; do
  OMP_NUM_THREADS=1 "$S" train $ARGS --threads 1 --log "$T/a.csv" -o "$T/m.semb" >/dev/null
  echo "train rep $rep  1 rank  x 1 thread : $(per_step "$T/a.csv")"
  SEMBED_MPI_STATS=1 OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none -x SEMBED_MPI_STATS -x OMP_NUM_THREADS \
    "$S" train $ARGS --threads 1 --log "$T/b.csv" -o "$T/b.semb" 2>"$T/b.err" >/dev/null
  echo "train rep $rep  2 ranks x 1 thread : $(per_step "$T/b.csv")
    $(grep 'sembed mpi' "$T/b.err" | sed 's/.*rank 0 of 2: //')"
  OMP_NUM_THREADS=2 "$S" train $ARGS --threads 2 --log "$T/c.csv" -o "$T/c.semb" >/dev/null
  echo "train rep $rep  1 rank  x 2 threads: $(per_step "$T/c.csv")"
done
for rep in 1 2; do
  t0=$(date +%s.%N); "$S" embed -m "$T/m.semb" --input "$T/embed.txt" -t 1 -o "$T/e1.npy" 2>/dev/null; t1=$(date +%s.%N)
  OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS "$S" embed -m "$T/m.semb" --input "$T/embed.txt" -t 1 \
    -o "$T/e2.npy" 2>/dev/null; t2=$(date +%s.%N)
  "$S" embed -m "$T/m.semb" --input "$T/embed.txt" -t 2 -o "$T/e3.npy" 2>/dev/null; t3=$(date +%s.%N)
  cmp "$T/e1.npy" "$T/e2.npy" && cmp "$T/e1.npy" "$T/e3.npy"
  echo "embed rep $rep 1000 lines: 1x1 $(echo "$t1 - $t0" | bc) s, 2 ranks x 1 $(echo "$t2 - $t1" | bc) s (incl. mpirun start), 1x2 $(echo "$t3 - $t2" | bc) s; outputs identical"
done
