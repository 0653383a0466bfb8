#!/bin/sh
# Training speed: `sembed train --objective unsup` against a PyTorch SimCSE loop of the twin
# (tools/bench/train_torch.py), same shapes, same tokens, same settings, in one run. Not a test;
# run it on a quiet machine (wall-clock numbers; the script warns when the load is high).
#
#   tools/bench/train_bench.sh                                  # bert-tiny, minilm-l6; 8 timed steps
#   tools/bench/train_bench.sh --models minilm-l6,bert-base --steps 5 --warmup 1
#   tools/bench/train_bench.sh --sembed build/sembed            # use an existing Release binary
#
# Settings (both peers): batch 64 sentences x 2 dropout views, max 32 tokens (padded to the
# batch's longest), hidden + attention dropout 0.1, [CLS] + MLP pooler, InfoNCE temp 0.05, AdamW
# lr 3e-5, weight decay 0, clip 1.0, fp32, --threads threads (2). Random N(0, 0.02) weights over
# the bert-base-uncased vocabulary (30,522). PyTorch runs with OpenBLAS-openmp preloaded and
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset.
#
# Columns: sentences/s over the timed steps (after --warmup untimed ones; sembed: from its CSV
# log, PyTorch: measured in the loop), the ratio sembed / PyTorch, CPU seconds per timed step
# (process CPU time over the timed steps: sembed's `cpu_s` log column, PyTorch's
# time.process_time()) and peak RSS of each process (PyTorch's
# includes `import torch`, ~0.3 GB).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
models=bert-tiny,minilm-l6
steps=8
warmup=2
threads=2
batch=64
sembed=
data=$("$src/tools/datafile.sh" train/wiki1m_head.txt 2>/dev/null || echo "$src/../shared/data/train/wiki1m_head.txt")
vocab=$("$src/tools/datafile.sh" vocab/bert-base-uncased/vocab.txt 2>/dev/null || echo "$src/data/vocab/bert-base-uncased/vocab.txt")
py=/usr/bin/python3
blas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --models) models=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --sembed) sembed=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --vocab) vocab=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "train_bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ "$steps" -ge 1 ] && [ "$warmup" -ge 1 ] || { echo "train_bench.sh: --steps and --warmup must be >= 1" >&2; exit 2; }
for f in "$data" "$vocab" /usr/bin/time; do
    [ -e "$f" ] || { echo "train_bench.sh: missing $f" >&2
        [ "$f" != "$data" ] || echo "train_bench.sh: the training text is not in the repository: pass --data FILE (one sentence a line), e.g. the first 11,914 lines of SimCSE's wiki1m_for_simcse.txt (models/sembed-mini/recipe.sh's header says where to get it)" >&2
        exit 1; }
done

if [ -z "$sembed" ]; then
    bdir=$src/build-bench-train
    echo "[build] Release sembed in $bdir" >&2
    cmake -S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DSEMBED_BUILD_TESTS=OFF >/dev/null
    make -C "$bdir" -j2 sembed_cli >/dev/null
    sembed=$bdir/sembed
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=$(( (steps + warmup) * batch ))
head -n "$n" "$data" > "$tmp/data.txt"
[ "$(wc -l < "$tmp/data.txt")" -eq "$n" ] || { echo "train_bench.sh: $data has fewer than $n lines" >&2; exit 1; }

load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
    echo "[warn] load average $load on $(nproc) CPUs: wall-clock numbers will be low and noisy" >&2
fi

shape_of() {
    case "$1" in
    bert-tiny) echo "layers=2,hidden=128,heads=2,intermediate=512" ;;
    minilm-l6) echo "layers=6,hidden=384,heads=12,intermediate=1536" ;;
    bert-base) echo "layers=12,hidden=768,heads=12,intermediate=3072" ;;
    *) echo "train_bench.sh: unknown model '$1' (bert-tiny, minilm-l6, bert-base)" >&2; exit 2 ;;
    esac
}

# sembed train for $2 steps of model $1; prints its peak RSS in KiB and leaves the log.
run_sembed() {
    /usr/bin/time -f "%M" -o "$tmp/time.txt" "$sembed" train --init-random "$(shape_of "$1"),vocab=$vocab" \
        --objective unsup --data "$tmp/data.txt" --steps "$2" --batch "$batch" --max-length 32 --temp 0.05 \
        --lr 3e-5 --dropout 0.1 --attention-dropout 0.1 --clip 1.0 --threads "$threads" --log "$tmp/log.csv" \
        -o "$tmp/out.semb" >/dev/null
    cat "$tmp/time.txt"
}

printf '| model | sembed sent/s | PyTorch sent/s | ratio | sembed CPU s/step | PyTorch CPU s/step | sembed peak MiB | PyTorch peak MiB |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for m in $(echo "$models" | tr ',' ' '); do
    shape_of "$m" >/dev/null
    echo "[$m] sembed: $warmup warm-up + $steps timed steps, $threads threads" >&2
    rss=$(run_sembed "$m" $((warmup + steps)))
    # elapsed_s (9) and cpu_s (11): seconds since the loop started, after each step
    set -- $(awk -F, -v w="$warmup" -v b="$batch" 'NR > 1 && $1 == w { t0 = $9; c0 = $11 } NR > 1 { t1 = $9; c1 = $11; s = $1 }
        END { printf "%.2f %.3f", (s - w) * b / (t1 - t0), (c1 - c0) / (s - w) }' "$tmp/log.csv")
    rate=$1; s_cpu=$2
    s_rss=$(awk -v k="$rss" 'BEGIN { printf "%.0f", k / 1024 }')
    "$sembed" tokenize -m "$tmp/out.semb" --ids --max-length 32 < "$tmp/data.txt" > "$tmp/ids.txt" 2>/dev/null
    echo "[$m] PyTorch: same steps" >&2
    if [ -e "$blas" ]; then pre=$blas; else pre=; echo "[warn] $blas missing: PyTorch runs with its default BLAS" >&2; fi
    if env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ${pre:+LD_PRELOAD=$pre} "$py" "$src/tools/bench/train_torch.py" \
        --shape "$m" --ids "$tmp/ids.txt" --steps "$steps" --warmup "$warmup" --threads "$threads" --batch "$batch" \
        > "$tmp/torch.json"; then
        set -- $("$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%.2f %.3f %.0f" % (j["sentences_per_s"], j["cpu_s_per_step"], j["peak_rss_mib"]))' "$tmp/torch.json")
        t_rate=$1; t_cpu=$2; t_rss=$3
        ratio=$(awk -v a="$rate" -v b="$t_rate" 'BEGIN { printf "%.2fx", a / b }')
    else
        t_rate=n/a; t_cpu=n/a; t_rss=n/a; ratio=n/a
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$m" "$rate" "$t_rate" "$ratio" "$s_cpu" "$t_cpu" "$s_rss" "$t_rss"
done
