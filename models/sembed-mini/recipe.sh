#!/usr/bin/env bash
# models/sembed-mini/recipe.sh: train sembed's default model from scratch, on this machine's data.
#
#   models/sembed-mini/recipe.sh            # everything, ~85 min on 2 cores with the defaults below
#   STAGES="eval analyze" models/sembed-mini/recipe.sh   # re-run some stages on an existing $OUT
#
# Stages (each reads what the previous wrote into $OUT):
#   data     prepare_data.py: mlm.txt, unsup.txt, sup.tsv (+ manifest.json with sha256 of each)
#   mlm      random init over the real bert-base-uncased vocabulary, masked-LM pretraining
#   unsup    unsupervised SimCSE (dropout views) with the auxiliary MLM loss
#   sup      supervised SimCSE: entailment / paraphrase / synonym positives, contradiction /
#            antonym hard negatives
#   distill  knowledge distillation from Universal Sentence Encoder lite (models/teacher/recipe.sh
#            with its defaults: teacher vectors of ~400k decontaminated sentences, relational +
#            similarity losses, related sentences side by side), starting from the sup model as
#            an int8 file (what sembed-mini 1 shipped); needs node/npm and the teacher's npm
#            packages, and `apt-get install fortunes dict-gcide` for the extra text
#   ship     export + convert to int8 (q8 Linear weights) -> $OUT/shipped.semb
#   eval     sembed eval, fp32 and int8: STS-B dev and STS12 -> $OUT/results/*.json; checks int8
#            within 0.3 points of fp32, then writes models/sembed-mini/sembed-mini.semb with the
#            recipe, data hashes and scores as train.* / eval.* metadata
#   analyze  alignment / uniformity / spectrum of mlm, unsup, sup; training curves -> SVGs
# Checkpoints are selected on STS-B dev only (--eval-sts). STS12 is only ever evaluated, never
# used for any choice; STS-B train, SICK trial/test and STS13-16 are never read (see
# prepare_data.py for the decontamination of the training text).
#
# Data (DATA, one folder; data/ in the repository holds only vocab and STS-B dev):
#@   vocab/bert-base-uncased/vocab.txt   bert-base-uncased's vocabulary (copy data/vocab/ from the repository)
#@   sts/STSBenchmark/sts-dev.csv        STS-B dev, SentEval layout (copy data/sts/ from the repository)
#@   sts/STS12-en-test/STS.{input,gs}.<set>.txt  SemEval-2012 STS test sets in SentEval layout
#@                                       (SentEval's data/downstream/get_transfer_data.bash fetches them)
#@   train/wiki1m_head.txt               the first 11,914 lines of SimCSE's wiki1m_for_simcse.txt
#@                                       (princeton-nlp/SimCSE, data/download_wiki.sh; CC BY-SA)
#@   train/sick/SICK_{train,trial}.txt   SICK 2014 (SemEval-2014 task 1; Zenodo record 2787612; CC BY-NC-SA 3.0)
#@   train/msr-para/msr-para-train.tsv   Microsoft Research Paraphrase Corpus training file
#@                                       (Quality, #1 ID, #2 ID, #1 String, #2 String; microsoft.com download 52398)
#@   train/rte/rte{1,2,3}_{dev,test}.xml PASCAL RTE 1-3 challenge data sets
#@   train/sentence_polarity/rt-polarity.{pos,neg}   Pang & Lee sentence polarity v1.0 (Cornell movie-review data)
#@   train/subjectivity/{plot,quote}.tok.gt9.5000    Pang & Lee subjectivity v1.0 (same site)
#@   /usr/share/wordnet/data.*           apt-get install wordnet-base
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
DATA="${DATA:-${SEMBED_DATA_DIR:-$ROOT/../shared/data}}"   # the workspace's full data set beside the repository
OUT="${OUT:-$ROOT/build-recipe}"
THREADS="${THREADS:-2}"
SEED="${SEED:-1}"
LAYERS="${LAYERS:-6}" HIDDEN="${HIDDEN:-192}" HEADS="${HEADS:-3}" INTERMEDIATE="${INTERMEDIATE:-768}"
MAX_POSITION="${MAX_POSITION:-64}"
MLM_STEPS="${MLM_STEPS:-28000}" UNSUP_STEPS="${UNSUP_STEPS:-2000}" SUP_STEPS="${SUP_STEPS:-800}"
POOLER="${POOLER:-mean}"
STAGES="${STAGES:-data mlm unsup sup distill ship eval analyze}"
FINAL="${FINAL:-distill}"   # the model that is shipped: distill (sembed-mini 2) or sup (sembed-mini 1)
PY=/usr/bin/python3

DEV="$DATA/sts/STSBenchmark/sts-dev.csv"
STS12="$DATA/sts/STS12-en-test"
VOCAB="$DATA/vocab/bert-base-uncased/vocab.txt"
SHIP="$HERE/sembed-mini.semb"

[ -x "$SEMBED" ] || { echo "recipe: $SEMBED not found (build first, or set SEMBED=)" >&2; exit 1; }
mkdir -p "$OUT"/{data,logs,ckpt,results,svg}

stage() { [[ " $STAGES " == *" $1 "* ]]; }
# The training text is not in the repository (data/README.md): check for all of it up front and
# say what to get and where, rather than failing an hour in.
if stage data || stage mlm || stage eval; then
    missing=()
    for rel in sts/STSBenchmark/sts-dev.csv vocab/bert-base-uncased/vocab.txt \
        sts/STS12-en-test/STS.input.MSRpar.txt train/wiki1m_head.txt train/sick/SICK_train.txt \
        train/msr-para/msr-para-train.tsv train/rte/rte1_dev.xml train/sentence_polarity/rt-polarity.pos \
        train/sentence_polarity/rt-polarity.neg train/subjectivity/plot.tok.gt9.5000 \
        train/subjectivity/quote.tok.gt9.5000; do
        [ -f "$DATA/$rel" ] || missing+=("$rel")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        {
            echo "recipe: the training and evaluation data are not in DATA=$DATA; missing:"
            printf '  %s\n' "${missing[@]}"
            echo "Lay them out in one folder and set DATA= (or SEMBED_DATA_DIR=). What to get and where:"
            sed -n 's/^#@ \{0,1\}//p' "$HERE/recipe.sh"
        } >&2
        exit 1
    fi
fi
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

if stage distill; then
    # sembed-mini 1 was the sup model as an int8 file: the student starts from exactly that.
    rm -rf "$OUT/hf-sup"
    run "$SEMBED" export -m "$OUT/sup.semb" -o "$OUT/hf-sup"
    run "$SEMBED" convert "$OUT/hf-sup" -o "$OUT/sup-q8.semb" --dtype q8 --pooling "$POOLER" --name sembed-mini
    run env SEMBED="$SEMBED" DATA="$DATA" OUT="$OUT/distill" STUDENT="$OUT/sup-q8.semb" THREADS="$THREADS" SEED="$SEED" \
        STAGES="data teacher arrange distill" "$ROOT/models/teacher/recipe.sh"
    cp "$OUT/distill/distill.semb" "$OUT/distill.semb"
    cp "$OUT/distill/logs/distill.csv" "$OUT/logs/distill.csv"
fi

if stage ship; then
    # int8 Linear weights (one scale per output row), f16 word embeddings, float LayerNorms.
    rm -rf "$OUT/hf"
    run "$SEMBED" export -m "$OUT/$FINAL.semb" -o "$OUT/hf"
    run "$SEMBED" convert "$OUT/hf" -o "$OUT/shipped.semb" --dtype q8 --pooling "$POOLER" --name sembed-mini
fi

if stage eval; then
    evals=(mlm unsup sup)
    [ "$FINAL" = distill ] && evals+=(distill)
    for m in "${evals[@]}"; do
        # a re-run of the last stages on an $OUT without the earlier models keeps their committed results
        [ -f "$OUT/$m.semb" ] || { echo "recipe: $OUT/$m.semb absent: eval-$m-f32.json not redone" >&2; continue; }
        run "$SEMBED" eval -m "$OUT/$m.semb" --sts "$DEV" --sts "$STS12" --threads "$THREADS" \
            --json "$OUT/results/eval-$m-f32.json"
    done
    # The shipped int8 file: int8 kernels (its default) and f32 kernels on the same q8 weights.
    run "$SEMBED" eval -m "$OUT/shipped.semb" --sts "$DEV" --sts "$STS12" --threads "$THREADS" --compute int8 \
        --json "$OUT/results/eval-shipped-int8.json"
    run "$SEMBED" eval -m "$OUT/shipped.semb" --sts "$DEV" --sts "$STS12" --threads "$THREADS" --compute f32 \
        --json "$OUT/results/eval-shipped-q8w-f32.json"
    cp "$OUT"/results/eval-*.json "$HERE/"
    # int8 (quantized weights + int8 kernels) must stay within 0.3 Spearman points of the fp32 model.
    # Then the shipped file gets its recipe, data hashes and scores as metadata (train.*, eval.*).
    "$PY" - "$OUT" "$HERE" "$SEMBED" "$FINAL" <<'EOF2'
import hashlib, json, os, subprocess, sys
out, here, sembed, final = sys.argv[1:5]
f32 = json.load(open(f"{out}/results/eval-{final}-f32.json"))
i8 = json.load(open(f"{out}/results/eval-shipped-int8.json"))
worst, meta = 0.0, []
for ta, tb in zip(f32["tasks"], i8["tasks"]):
    a, b = ta["all"]["spearman"], tb["all"]["spearman"]
    worst = max(worst, abs(a - b))
    print("%-16s fp32 %.2f  int8 %.2f  diff %.2f" % (ta["name"], a, b, abs(a - b)))
    key = "stsb_dev" if ta["name"] == "sts-dev" else ta["name"].split("-")[0].lower() + "_all"
    meta += [f"eval.{key}_spearman_f32:f32={a:.4f}", f"eval.{key}_spearman_int8:f32={b:.4f}"]
if worst > 0.3:
    sys.exit("int8 is %.2f Spearman points from fp32 (limit 0.3)" % worst)
man = json.load(open(f"{here}/data-manifest.json"))
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
meta += ["eval.protocol=Spearman x100 of cosine vs gold; STS-B dev (model selection) and STS12 'all' (SentEval); sembed eval",
         "train.recipe=models/sembed-mini/recipe.sh", f"train.recipe_sha256={sha(here + '/recipe.sh')}",
         f"train.prepare_data_sha256={sha(here + '/prepare_data.py')}",
         "train.stages=mlm from random init (28000 x 64) -> unsup SimCSE + 0.1 MLM (2000 x 64, best on STS-B dev) -> sup SimCSE (800 x 64, best on STS-B dev)"
         + (" -> int8 file -> distillation from USE lite (models/teacher/recipe.sh defaults, best on STS-B dev)" if final == "distill" else "")]
for name, o in sorted(man["outputs"].items()):
    meta.append(f"train.data_sha256.{name.replace('.', '_')}={o['sha256']}")
if final == "distill":
    d = f"{out}/distill"
    meta += [f"train.data_sha256.distill_all_txt={sha(d + '/data/all.txt')}",
             f"train.distill.teacher_sha256={sha(d + '/data/all.npy')}",
             "train.distill.recipe=models/teacher/recipe.sh",
             f"train.distill.recipe_sha256={sha(os.path.join(here, '../teacher/recipe.sh'))}",
             "train.distill.teacher_json=" + open(d + "/data/all.json").read().strip()]
args = [sembed, "convert", f"{out}/hf", "-o", f"{here}/sembed-mini.semb", "--dtype", "q8", "--pooling", "mean",
        "--name", "sembed-mini"]
for m in meta:
    args += ["--meta", m]
print("+", " ".join(args[:9]), "... (%d --meta)" % len(meta), file=sys.stderr)
subprocess.run(args, check=True)
EOF2
    ls -l "$SHIP" >&2
    size=$(stat -c %s "$SHIP")
    [ "$size" -le $((16 * 1024 * 1024)) ] || { echo "recipe: $SHIP is $size bytes, over 16 MiB" >&2; exit 1; }
fi

if stage analyze; then
    am=(-m "$OUT/mlm.semb" -m "$OUT/unsup.semb" -m "$OUT/sup.semb" --label "MLM" --label "unsup SimCSE" --label "sup SimCSE")
    logs=(--log "$OUT/logs/mlm.csv" --log "$OUT/logs/unsup.csv" --log "$OUT/logs/sup.csv")
    if [ "$FINAL" = distill ]; then
        am+=(-m "$OUT/distill.semb" --label "distilled")
        logs+=(--log "$OUT/logs/distill.csv")
    fi
    run "$SEMBED" analyze "${am[@]}" --arrows \
        --sts "$DEV" --threads "$THREADS" --svg-dir "$OUT/svg" --json "$OUT/results/analyze.json" "${logs[@]}"
    cp "$OUT"/svg/*.svg "$OUT/results/analyze.json" "$HERE/"
fi
echo "recipe: done ($STAGES); outputs in $OUT" >&2
