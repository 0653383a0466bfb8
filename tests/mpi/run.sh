#!/usr/bin/env bash
# Data-parallel tests (issue 17, docs/scale.md) under mpirun on this machine (loopback / shared
# memory, --oversubscribe): each check prints "ok NAME" or "FAIL NAME: expected ... got ...".
#  grad_N        test_mpi_grad: loss and summed gradients of the gathered global batch vs PyTorch
#                (float64 autograd, same global batch), 10 AdamW steps, and vs one process with dropout;
#                InfoNCE (unsup cls/mean, sup) and distillation (MSE, relational, + InfoNCE + MLM,
#                similarity MSE + relational);
#                grad_overlap_2: the same with SEMBED_MPI_OVERLAP=1
#  equiv_*_N     `mpirun -np N sembed train` vs one process, same global batch and seed, dropout 0.1:
#                every logged step loss (total, InfoNCE and MLM parts) within 1e-5 relative, weights
#                within 1e-4 absolute; objectives unsup, sup (hard negatives), unsup + auxiliary MLM
#                (mlmaux), MLM alone (mlm), distillation MSE + relational + InfoNCE + MLM (distill)
#  eval_2        with --eval-sts (rank 0 evaluates): same dev scores, best step, weights within 1e-4
#  repro_2       two N=2 runs: bit-identical weights
#  overlap_*_N   SEMBED_MPI_OVERLAP=1 (layers' gradients summed during the backward): weights
#                bit-identical to the same N without it (unsup, + MLM, distillation)
#  resume_2      rank 1 SIGKILLs itself after step 5 (checkpoint at 4); --resume ends bit-identical
#                (weights and Adam moments) to an uninterrupted N=2 run
#  embed_N       `mpirun -np N sembed embed --input -o .npy` byte-identical to one process
#  errors        batch not a multiple of N, a teacher with the wrong row count, embed without --input:
#                clear errors, no hang
# Usage: tests/mpi/run.sh BUILD_DIR   (needs sembed, test_mpi_grad, semb_cmp built with MPI)
set -u
cd "$(dirname "$0")/../.."
B=$(cd "${1:-build}" && pwd)
S=$B/sembed
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # Open MPI's own allocations are not ours to report (overrides check.sh's detect_leaks=1; the last setting wins)
MPIRUN="timeout 300 mpirun --oversubscribe ${MPIRUN_FLAGS:-}" # a hang fails instead of stalling CI
T=$(mktemp -d "${TMPDIR:-/tmp}/sembed-mpi.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0 skip=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

for f in "$S" "$B/test_mpi_grad" "$B/semb_cmp"; do
  [ -x "$f" ] || { echo "FAIL setup: $f missing (configure with -DSEMBED_MPI=ON)"; exit 1; }
done
# Sentences: the wiki text where it is (tools/datafile.sh: $SEMBED_DATA_DIR, data/, ../shared/data),
# else the vendored STS-B dev sentences.
TEXT=$(tools/datafile.sh train/wiki1m_head.txt 2>/dev/null) || {
  STS=$(tools/datafile.sh sts/STSBenchmark/sts-dev.csv) || { echo "FAIL setup: no sentences (data/README.md)"; exit 1; }
  awk -F'\t' 'NF >= 7 { print $6; print $7 }' "$STS" >"$T/text.txt"
  TEXT=$T/text.txt
}
head -n 203 "$TEXT" >"$T/unsup.txt"
sed -n 1,120p "$TEXT" | tr -d '\t' >"$T/a"
sed -n 121,240p "$TEXT" | tr -d '\t' >"$T/b"
sed -n 241,360p "$TEXT" | tr -d '\t' >"$T/c"
paste "$T/a" "$T/b" "$T/c" >"$T/sup.tsv"
INIT="layers=2,hidden=32,heads=2,intermediate=64,max_position=64,vocab=tests/fixtures/bert-tiny/vocab.txt"
COMMON="--init-random $INIT --batch 8 --max-length 24 --lr 1e-3 --dropout 0.1 --attention-dropout 0.1 --threads 1 --seed 7"

# ---- gradient of the gathered loss vs PyTorch
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  /usr/bin/python3 tests/mpi/mpi_golden.py "$T/golden" >/dev/null 2>&1 || bad golden "mpi_golden.py failed"
  for n in 2 4; do
    if $MPIRUN -np $n "$B/test_mpi_grad" "$T/golden" unsup_cls unsup_mean sup_hn_nomlm dist_mse_mean dist_rel_cls dist_combo dist_sim_mean >"$T/grad$n.out" 2>&1; then
      ok "grad_$n"; grep '^\[' "$T/grad$n.out" | sed 's/^/    /'
    else
      bad "grad_$n" "$(grep -E 'FAIL|error' "$T/grad$n.out" | head -5)"; tail -20 "$T/grad$n.out"
    fi
  done
  # the same checks with the layers' gradients summed on a thread during the backward
  if SEMBED_MPI_OVERLAP=1 $MPIRUN -np 2 -x SEMBED_MPI_OVERLAP "$B/test_mpi_grad" "$T/golden" unsup_cls sup_hn_nomlm dist_combo \
       >"$T/grado.out" 2>&1; then
    ok "grad_overlap_2"
  else
    bad "grad_overlap_2" "$(grep -E 'FAIL|error' "$T/grado.out" | head -5)"; tail -20 "$T/grado.out"
  fi
elif [ "${CI:-}" = true ]; then
  bad grad "python3 with torch is required in CI for the PyTorch reference"
else
  echo "skip grad: /usr/bin/python3 has no torch"; skip=$((skip + 1))
fi

# ---- N ranks vs one process: losses per step and final weights
cmp_logs() { # log1 logN: step,...,loss,cl_loss,mlm_loss columns; rel 1e-5 (+ the log's 6-decimal rounding)
  /usr/bin/python3 - "$1" "$2" <<'PY'
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2])))
if len(a) != len(b) or not a:
    print("expected %d log rows, got %d" % (len(a), len(b))); sys.exit(1)
worst = 0.0
for ra, rb in zip(a, b):
    if ra["step"] != rb["step"]:
        print("expected step %s got %s" % (ra["step"], rb["step"])); sys.exit(1)
    for col in ("loss", "cl_loss", "mlm_loss"):
        if not ra.get(col):
            continue
        la, lb = float(ra[col]), float(rb[col])
        d = abs(la - lb)
        if la: worst = max(worst, d / abs(la))
        if d > 1e-5 * abs(la) + 1e-6:
            print("step %s: expected %s %s got %s" % (ra["step"], col, ra[col], rb[col])); sys.exit(1)
print("%d steps, worst relative loss diff %.2g (loss, cl_loss, mlm_loss)" % (len(a), worst))
PY
}
# teacher vectors for distillation: ROWS x DIM float32 .npy (unit rows, fixed seed), no numpy needed
write_teacher() { # OUT ROWS DIM
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import math, random, struct, sys
out, rows, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(5)
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, dim)
hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
with open(out, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    for _ in range(rows):
        v = [rng.gauss(0, 1) for _ in range(dim)]
        n = math.sqrt(sum(x * x for x in v))
        f.write(struct.pack("<%df" % dim, *[x / n for x in v]))
PY
}
write_teacher "$T/teacher.npy" 203 24
write_teacher "$T/teacher10.npy" 10 24
for obj in unsup sup mlmaux mlm distill; do
  data="$T/unsup.txt"
  case $obj in
    unsup) extra="--steps 6" ;;
    sup) data="$T/sup.tsv"; extra="--steps 6 --objective sup --hard-neg-weight 0.5" ;;
    mlmaux) extra="--steps 6 --mlm-weight 0.1" ;;
    mlm) extra="--steps 6 --objective mlm" ;;
    distill) extra="--steps 6 --objective distill --teacher $T/teacher.npy --mse-weight 1 --rel-weight 0.5 --cl-weight 0.3 --mlm-weight 0.1" ;;
  esac
  "$S" train $COMMON $extra --data "$data" --log "$T/$obj.1.csv" -o "$T/$obj.1.semb" >/dev/null 2>"$T/err" ||
    { bad "equiv_${obj}" "one-process run failed: $(cat "$T/err")"; continue; }
  for n in 2 4; do
    if ! $MPIRUN -np $n "$S" train $COMMON $extra --data "$data" --log "$T/$obj.$n.csv" -o "$T/$obj.$n.semb" >"$T/out" 2>&1; then
      bad "equiv_${obj}_$n" "mpirun failed: $(tail -5 "$T/out")"; continue
    fi
    if l=$(cmp_logs "$T/$obj.1.csv" "$T/$obj.$n.csv") && w=$("$B/semb_cmp" "$T/$obj.1.semb" "$T/$obj.$n.semb" 1e-4); then
      ok "equiv_${obj}_$n"; echo "    losses: $l"; echo "    weights: $w"
    else
      bad "equiv_${obj}_$n" "losses: $l; weights: ${w:-}"
    fi
  done
done
# SEMBED_MPI_OVERLAP=1 (each layer's gradients summed on a thread during the backward): the same
# bits as summing after the backward (the per-element sum order does not change)
for c in mlmaux:2 unsup:4 distill:2; do
  obj=${c%:*}; n=${c#*:}; data="$T/unsup.txt"; extra="--steps 6"
  case $obj in
    mlmaux) extra="--steps 6 --mlm-weight 0.1" ;;
    distill) extra="--steps 6 --objective distill --teacher $T/teacher.npy --mse-weight 1 --rel-weight 0.5 --cl-weight 0.3 --mlm-weight 0.1" ;;
  esac
  if [ ! -e "$T/$obj.$n.semb" ]; then bad "overlap_${obj}_$n" "no run without overlap to compare with"; continue; fi
  if ! SEMBED_MPI_OVERLAP=1 SEMBED_MPI_STATS=1 $MPIRUN -np $n -x SEMBED_MPI_OVERLAP -x SEMBED_MPI_STATS "$S" train $COMMON $extra \
       --data "$data" -o "$T/$obj.$n.ov.semb" >"$T/out" 2>&1; then
    bad "overlap_${obj}_$n" "mpirun failed: $(tail -5 "$T/out")"; continue
  fi
  # 2 layers: the thread sums 2 ranges per step, then the embeddings: 3 allreduce calls per step, not 1 or 2
  calls=$(grep -o 'allreduce [0-9]* calls' "$T/out" | awk '{print $2}')
  if w=$("$B/semb_cmp" "$T/$obj.$n.semb" "$T/$obj.$n.ov.semb" 0) && [ "${calls:-0}" -ge 18 ]; then
    ok "overlap_${obj}_$n"; echo "    $w; $calls allreduce calls in 6 steps"
  else
    bad "overlap_${obj}_$n" "expected bit-identical weights and >= 18 allreduce calls, got: ${w:-} / ${calls:-none}"
  fi
done
# with --eval-sts: rank 0 evaluates and selects; the same dev scores and best step as one process
EV="--steps 6 --data $T/unsup.txt --eval-sts tests/fixtures/sts-tiny/sts-tiny.csv --eval-every 2"
s1=$("$S" train $COMMON $EV -o "$T/ev1.semb" 2>&1 | grep -o 'dev_before.*')
s2=$($MPIRUN -np 2 "$S" train $COMMON $EV -o "$T/ev2.semb" 2>&1 | grep -o 'dev_before.*')
if [ -n "$s1" ] && [ "$s1" = "$s2" ] && w=$("$B/semb_cmp" "$T/ev1.semb" "$T/ev2.semb" 1e-4); then
  ok eval_2; echo "    $s2; $w"
else
  bad eval_2 "expected '$s1', got '$s2'; weights: ${w:-}"
fi
$MPIRUN -np 2 "$S" train $COMMON --steps 6 --data "$T/unsup.txt" -o "$T/unsup.2b.semb" >/dev/null 2>&1
if w=$("$B/semb_cmp" "$T/unsup.2.semb" "$T/unsup.2b.semb" 0); then ok repro_2; else bad repro_2 "$w"; fi

# ---- resume after a rank is killed mid-run
CK="$COMMON --steps 8 --checkpoint-every 2 --data $T/unsup.txt"
$MPIRUN -np 2 "$S" train $CK --checkpoint "$T/ckA" --log "$T/A.csv" -o "$T/A.semb" >/dev/null 2>&1
SEMBED_TEST_KILL_RANK_AT=1:5 $MPIRUN -np 2 -x SEMBED_TEST_KILL_RANK_AT "$S" train $CK --checkpoint "$T/ckB" --log "$T/B.csv" \
  -o "$T/B.semb" >"$T/kill.out" 2>&1
krc=$?
kstep=$("$S" inspect "$T/ckB/last.semb" 2>/dev/null | awk '$1 == "train.state.step" {print $3}')
if [ $krc = 0 ] || [ -e "$T/B.semb" ] || [ "$kstep" != 4 ]; then
  bad resume_2 "expected the killed run to fail (got exit $krc), no output, a checkpoint at step 4 (got '${kstep}')"
elif ! $MPIRUN -np 2 "$S" train $CK --checkpoint "$T/ckB" --resume --log "$T/B.csv" -o "$T/B.semb" >"$T/out" 2>&1; then
  bad resume_2 "resume failed: $(tail -5 "$T/out")"
elif w=$("$B/semb_cmp" "$T/A.semb" "$T/B.semb" 0) && c=$("$B/semb_cmp" "$T/ckA/last.semb" "$T/ckB/last.semb" 0) &&
     l=$(cmp_logs "$T/A.csv" "$T/B.csv"); then
  ok resume_2; echo "    killed after step 5 (exit $krc), resumed from step $kstep; output: $w"
  echo "    checkpoint with Adam moments: $c"; echo "    log (each step once): $l"
else
  bad resume_2 "output: $w; checkpoint: ${c:-}; log: ${l:-}"
fi

# ---- embed: one output file, byte-identical to one process
"$S" embed -m "$T/unsup.1.semb" --input "$T/unsup.txt" -t 1 -o "$T/e1.npy" 2>/dev/null
for n in 2 4; do
  if $MPIRUN -np $n "$S" embed -m "$T/unsup.1.semb" --input "$T/unsup.txt" -t 1 -b 5 -o "$T/e$n.npy" >"$T/out" 2>&1 &&
     cmp "$T/e1.npy" "$T/e$n.npy" >/dev/null; then
    ok "embed_$n"; echo "    $(stat -c %s "$T/e$n.npy") bytes, 203 rows: identical to one process"
  else
    bad "embed_$n" "output differs from one process or mpirun failed: $(tail -3 "$T/out")"
  fi
done

# ---- errors are named, and no rank is left waiting
e1=$($MPIRUN -np 3 "$S" train $COMMON --steps 2 --data "$T/unsup.txt" -o "$T/x.semb" 2>&1)
e2=$($MPIRUN -np 2 "$S" train $COMMON --steps 2 --objective distill --teacher "$T/teacher10.npy" --data "$T/unsup.txt" -o "$T/x.semb" 2>&1)
e3=$($MPIRUN -np 2 "$S" embed -m "$T/unsup.1.semb" -o "$T/x.npy" hello 2>&1)
if echo "$e1" | grep -q "not a multiple of the 3 ranks" && echo "$e2" | grep -q "has 10 rows (dim 24) but the training data has 203 rows" &&
   echo "$e3" | grep -q "give --input FILE"; then
  ok errors
else
  bad errors "expected named errors, got: $(echo "$e1" | grep sembed | head -2) / $(echo "$e2" | grep sembed | head -2) / $(echo "$e3" | grep sembed | head -2)"
fi

echo "mpi tests: $pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
