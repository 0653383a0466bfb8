#!/usr/bin/env bash
# Line coverage of each parser under its committed fuzz corpus (clang source-based coverage:
# -fprofile-instr-generate -fcoverage-mapping, llvm-profdata-14 and llvm-cov-14 from Debian's
# llvm-14). Not part of CI: run it after tools/fuzz.sh to see what the corpora reach.
#
# Usage: tools/coverage.sh [TARGET...]     (default: every tests/fuzz/fuzz_*.c)
# Output: a table per target (lines, missed, cover %) for the parser files it exercises, and
# build-cov/report/<target>/<file>.unreached.txt listing every unexecuted line with its source.
# Goal (issue 20): >= 85% of the lines of each parser file.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
PROFDATA=$(command -v llvm-profdata-14 || command -v llvm-profdata || true)
LLVMCOV=$(command -v llvm-cov-14 || command -v llvm-cov || true)
if [ -z "$PROFDATA" ] || [ -z "$LLVMCOV" ]; then
  echo "coverage.sh: needs llvm-profdata-14 and llvm-cov-14 (apt-get install llvm-14)" >&2; exit 2
fi
TARGETS=()
for a in "$@"; do TARGETS+=("fuzz_${a#fuzz_}"); done
if [ ${#TARGETS[@]} -eq 0 ]; then
  for src in tests/fuzz/fuzz_*.c; do TARGETS+=("$(basename "$src" .c)"); done
fi

# The parser files each target is meant to cover (a new target: add its files here).
parser_files() {
  case "$1" in
    fuzz_onnx) echo "formats/onnx.c convert/onnx_import.c" ;;
    fuzz_pickle) echo "formats/pickle.c" ;;
    fuzz_safetensors) echo "formats/safetensors.c" ;;  # formats/jsonx.c: under fuzz_hf_dir
    fuzz_semb) echo "formats/semb_read.c formats/semb_tokindex.c formats/semb_common.c" ;;
    fuzz_zip) echo "formats/zip.c" ;;
    fuzz_torch) echo "formats/zip.c formats/pickle.c" ;;
    fuzz_hf_dir) echo "formats/jsonx.c convert/hf.c" ;;
    fuzz_npy) echo "formats/npy.c" ;;
    fuzz_tokenizer_json) echo "runtime/tokenizer/hf_json.c" ;;
    fuzz_serve_request) echo "serve/request.c" ;;
    *) echo "" ;;
  esac
}

B=build-cov
FLAGS="-fprofile-instr-generate -fcoverage-mapping"
CC=clang cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Debug -DSEMBED_BUILD_FUZZ=ON -DSEMBED_BUILD_TESTS=OFF \
  -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_EXE_LINKER_FLAGS="$FLAGS" >/dev/null
nice cmake --build "$B" -j"$JOBS" --target "${TARGETS[@]}" >/dev/null
rm -rf "$B/prof" "$B/report" && mkdir -p "$B/prof" "$B/report"

for t in "${TARGETS[@]}"; do
  name=${t#fuzz_}
  corpus="tests/fuzz/corpus/$name"
  [ -d "$corpus" ] || { echo "coverage: $t has no corpus ($corpus)"; continue; }
  # -runs=0: run every corpus input once and stop (no mutation).
  LLVM_PROFILE_FILE="$B/prof/$name-%p.profraw" "$B/tests/fuzz/$t" -runs=0 -rss_limit_mb=4096 -timeout=60 \
    "$corpus" >"$B/report/$name.run.log" 2>&1 || { echo "coverage: $t failed on its corpus (see $B/report/$name.run.log)"; tail -20 "$B/report/$name.run.log"; }
  "$PROFDATA" merge -sparse "$B"/prof/"$name"-*.profraw -o "$B/prof/$name.profdata"
  files=$(parser_files "$t")
  [ -n "$files" ] || { echo "coverage: $t: no parser files listed in tools/coverage.sh"; continue; }
  mkdir -p "$B/report/$t"
  n_in=$(find "$corpus" -type f | wc -l)
  echo "== $t ($n_in corpus inputs)"
  # shellcheck disable=SC2086
  "$LLVMCOV" report "$B/tests/fuzz/$t" -instr-profile="$B/prof/$name.profdata" $files 2>/dev/null |
    awk -v root="$PWD/" 'BEGIN { printf "  %-28s %8s %8s %8s\n", "file", "lines", "missed", "cover" }
         $1 ~ /\.c$/ || $1 == "TOTAL" { f = $1; sub(root, "", f); printf "  %-28s %8s %8s %8s\n", f, $8, $9, $10 }'
  for f in $files; do
    out="$B/report/$t/$(echo "$f" | tr / _).unreached.txt"
    # llvm-cov show lines: "  <line>|  <count>|<source>"; count 0 = never executed.
    "$LLVMCOV" show "$B/tests/fuzz/$t" -instr-profile="$B/prof/$name.profdata" "$f" -show-line-counts 2>/dev/null |
      awk -F'|' '$2 ~ /^ *0$/ { n = $1; sub(/^ +/, "", n); r = substr($0, index($0, "|") + 1); print n ":" substr(r, index(r, "|") + 1) }' >"$out"
    echo "  $f: $(wc -l <"$out") unreached lines (listed in $out); functions with unreached lines:"
    # per function: name, lines, missed lines (llvm-cov report --show-functions columns 5 and 6)
    "$LLVMCOV" report --show-functions "$B/tests/fuzz/$t" -instr-profile="$B/prof/$name.profdata" "$f" 2>/dev/null |
      awk '$1 != "Name" && $1 != "TOTAL" && NF >= 10 && $6 > 0 { sub(/^[^:]*\.c:/, "", $1); printf "      %-36s %4d of %4d lines unreached\n", $1, $6, $5 }'
  done
done
