#!/usr/bin/env bash
# models/sembed-mini/recipe.sh: train sembed's default model from scratch, on this machine's data.
#
#   models/sembed-mini/recipe.sh            # everything, ~75 min on 2 cores with the defaults below
#   STAGES="eval analyze" models/sembed-mini/recipe.sh   # re-run some stages on an existing $OUT
#
# Stages (each reads what the previous wrote into $OUT):
#   data     prepare_data.py: mlm.txt, unsup.txt, sup.tsv (+ manifest.json with sha256 of each)
#   mlm      random init over the real bert-base-uncased vocabulary, masked-LM pretraining
#   unsup    unsupervised SimCSE (dropout views) with the auxiliary MLM loss
#   sup      supervised SimCSE: entailment / paraphrase / synonym positives, contradiction /
#            antonym hard negatives
#   ship     export + convert to int8 (q8 Linear weights) -> models/sembed-mini/sembed-mini.semb
#   eval     sembed eval, fp32 and int8: STS-B dev and STS12 -> $OUT/results/*.json
#   analyze  alignment / uniformity / spectrum of mlm, unsup, sup; training curves -> SVGs
# Checkpoints are selected on STS-B dev only (--eval-sts). STS12 is only ever evaluated, never
# used for any choice; STS-B train, SICK trial/test and STS13-16 are never read (see
# prepare_data.py for the decontamination of the training text).
#
# Environment (defaults in brackets):
#   SEMBED [build/sembed]  DATA [../shared/data]  OUT [build-recipe]  THREADS [2]  SEED [1]
#   shape:  LAYERS [6] HIDDEN [192] HEADS [3] INTERMEDIATE [768] MAX_POSITION [64]
#   steps:  MLM_STEPS [28000] UNSUP_STEPS [2000] SUP_STEPS [800] (batch 64 each)
#   Measured per step on 2 Zen 5 cores (Release build, 6 layers): mlm ~0.12 s, unsup with the
#   auxiliary MLM ~0.35 s, sup ~0.2 s.
# Size budget: with q8 the word embeddings stay f16 (30522 x HIDDEN x 2 bytes = 11.7 MB at 192),
# Linear weights are int8 (0.44 MB a layer): about 14.5 MB in all, under the 16 MB the repository allows.
# Time budget: set the step counts from a short timing run on the machine you use
# (e.g. `--steps 50` and the sentences/s the trainer reports).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SEMBED="${SEMBED:-$ROOT/build/sembed}"
DATA="${DATA:-${SEMBED_DATA_DIR:-$ROOT/../shared/data}}"
OUT="${OUT:-$ROOT/build-recipe}"
THREADS="${THREADS:-2}"
SEED="${SEED:-1}"
LAYERS="${LAYERS:-6}" HIDDEN="${HIDDEN:-192}" HEADS="${HEADS:-3}" INTERMEDIATE="${INTERMEDIATE:-768}"
MAX_POSITION="${MAX_POSITION:-64}"
MLM_STEPS="${MLM_STEPS:-28000}" UNSUP_STEPS="${UNSUP_STEPS:-2000}" SUP_STEPS="${SUP_STEPS:-800}"
POOLER="${POOLER:-mean}"
STAGES="${STAGES:-data mlm unsup sup ship eval analyze}"
PY=/usr/bin/python3

DEV="$DATA/sts/STSBenchmark/sts-dev.csv"
STS12="$DATA/sts/STS12-en-test"
VOCAB="$DATA/vocab/bert-base-uncased/vocab.txt"
SHIP="$HERE/sembed-mini.semb"

[ -x "$SEMBED" ] || { echo "recipe: $SEMBED not found (build first, or set SEMBED=)" >&2; exit 1; }
[ -f "$DEV" ] || { echo "recipe: $DEV not found (set DATA=)" >&2; exit 1; }
mkdir -p "$OUT"/{data,logs,ckpt,results,svg}

stage() { [[ " $STAGES " == *" $1 "* ]]; }
run() { echo "+ $*" >&2; "$@"; }

common=(--threads "$THREADS" --seed "$SEED" --eval-sts "$DEV" --pooler "$POOLER")

if stage data; then
    run "$PY" "$HERE/prepare_data.py" --data "$DATA" --out "$OUT/data" --seed "$SEED"
    cp "$OUT/data/manifest.json" "$HERE/data-manifest.json"
fi

if stage mlm; then
    # From scratch: BERT's initialisation, the real 30,522-token uncased vocabulary. lr and warmup
    # follow common small-BERT pretraining practice (peak 5e-4, 6% warmup, decay 0.01).
    # The dev score is only watched here (--keep last): MLM pretraining is judged by what SimCSE
    # makes of it, and selection happens in the SimCSE stages.
    run "$SEMBED" train --objective mlm \
        --init-random "layers=$LAYERS,hidden=$HIDDEN,heads=$HEADS,intermediate=$INTERMEDIATE,max_position=$MAX_POSITION,type_vocab=2,vocab=$VOCAB,lowercase=1" \
        --data "$OUT/data/mlm.txt" --steps "$MLM_STEPS" --batch 64 --max-length "$MAX_POSITION" \
        --lr 5e-4 --warmup 0.06 --weight-decay 0.01 --eval-every 2000 --keep last \
        --checkpoint "$OUT/ckpt/mlm" --log "$OUT/logs/mlm.csv" "${common[@]}" -o "$OUT/mlm.semb"
fi

if stage unsup; then
    # SimCSE unsup (Gao et al. 2021): temperature 0.05, dropout 0.1 as the only augmentation,
    # max length 32, auxiliary MLM weight 0.1. A from-scratch model takes a larger lr than the
    # paper's 3e-5 for pretrained BERT.
    run "$SEMBED" train -m "$OUT/mlm.semb" --objective unsup --data "$OUT/data/unsup.txt" \
        --steps "$UNSUP_STEPS" --batch 64 --max-length 32 --temp 0.05 --mlm-weight 0.1 \
        --lr 1e-4 --warmup 0.05 --eval-every 125 \
        --checkpoint "$OUT/ckpt/unsup" --log "$OUT/logs/unsup.csv" "${common[@]}" -o "$OUT/unsup.semb"
fi

if stage sup; then
    # SimCSE sup: each row's hard negative joins the in-batch negatives (weight 0 in logit space,
    # the paper's default), temperature 0.05, lr 5e-5 as the paper uses for BERT-base.
    run "$SEMBED" train -m "$OUT/unsup.semb" --objective sup --data "$OUT/data/sup.tsv" \
        --steps "$SUP_STEPS" --batch 64 --max-length 32 --temp 0.05 --hard-neg-weight 0 \
        --lr 5e-5 --warmup 0.05 --eval-every 100 \
        --checkpoint "$OUT/ckpt/sup" --log "$OUT/logs/sup.csv" "${common[@]}" -o "$OUT/sup.semb"
fi

if stage ship; then
    # int8 Linear weights (one scale per output row), f16 word embeddings, float LayerNorms.
    rm -rf "$OUT/hf"
    run "$SEMBED" export -m "$OUT/sup.semb" -o "$OUT/hf"
    run "$SEMBED" convert "$OUT/hf" -o "$SHIP" --dtype q8 --pooling "$POOLER" --name sembed-mini
    ls -l "$SHIP" >&2
    size=$(stat -c %s "$SHIP")
    [ "$size" -le $((16 * 1024 * 1024)) ] || { echo "recipe: $SHIP is $size bytes, over 16 MiB" >&2; exit 1; }
fi

if stage eval; then
    for m in mlm unsup sup; do
        run "$SEMBED" eval -m "$OUT/$m.semb" --sts "$DEV" --sts "$STS12" --threads "$THREADS" \
            --json "$OUT/results/eval-$m-f32.json"
    done
    run "$SEMBED" eval -m "$SHIP" --sts "$DEV" --sts "$STS12" --threads "$THREADS" \
        --json "$OUT/results/eval-shipped-f32.json"
    # The int8 kernels (SEMBED_COMPUTE_INT8) must stay within 0.3 Spearman points of fp32.
    if run "$SEMBED" eval -m "$SHIP" --sts "$DEV" --sts "$STS12" --threads "$THREADS" --int8 \
        --json "$OUT/results/eval-shipped-int8.json"; then
        "$PY" - "$OUT/results/eval-shipped-f32.json" "$OUT/results/eval-shipped-int8.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
worst = 0.0
for ta, tb in zip(a["tasks"], b["tasks"]):
    d = abs(ta["all"]["spearman"] - tb["all"]["spearman"])
    worst = max(worst, d)
    print("%-16s fp32 %.2f  int8 %.2f  diff %.2f" % (ta["name"], ta["all"]["spearman"], tb["all"]["spearman"], d))
sys.exit(0 if worst <= 0.3 else "int8 is %.2f Spearman points from fp32 (limit 0.3)" % worst)
EOF
    fi
    cp "$OUT"/results/eval-*.json "$HERE/" 2>/dev/null || true
fi

if stage analyze; then
    run "$SEMBED" analyze -m "$OUT/mlm.semb" -m "$OUT/unsup.semb" -m "$OUT/sup.semb" \
        --label "MLM" --label "unsup SimCSE" --label "sup SimCSE" --arrows \
        --sts "$DEV" --threads "$THREADS" --svg-dir "$OUT/svg" --json "$OUT/results/analyze.json" \
        --log "$OUT/logs/mlm.csv" --log "$OUT/logs/unsup.csv" --log "$OUT/logs/sup.csv"
    cp "$OUT"/svg/*.svg "$OUT/results/analyze.json" "$HERE/"
fi
echo "recipe: done ($STAGES); outputs in $OUT" >&2
