#!/bin/sh
# Builds tools/bench/gemm (the kernel micro-benchmark) outside the main CMake build, with the same
# per-file ISA flags as CMakeLists.txt. Usage: tools/bench/build_gemm.sh [outdir]  (default build-bench)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$src/build-bench}
mkdir -p "$out"
cflags="-std=c11 -O2 -g -Wall -Wextra -fopenmp -I$src -I$src/include -DNDEBUG"
objs=""
for f in "$src"/runtime/kernels/*.c "$src"/formats/common.c; do
    flags=""
    case "$f" in
    *_avx2.c) flags="-mavx2 -mfma -mf16c" ;;
    *_avx512.c) flags="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c" ;;
    *_avxvnni.c) flags="-mavx2 -mfma -mf16c -mavxvnni" ;;
    *_avx512vnni.c) flags="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma -mf16c" ;;
    *_amx.c) flags="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mamx-tile -mamx-int8 -mamx-bf16 -mfma -mf16c" ;;
    esac
    o="$out/$(basename "$f" .c).o"
    cc $cflags $flags -c "$f" -o "$o"
    objs="$objs $o"
done
cc $cflags "$src/tools/bench/gemm.c" $objs -o "$out/gemm" -lm
echo "$out/gemm"
