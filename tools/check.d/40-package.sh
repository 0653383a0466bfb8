#!/usr/bin/env bash
# tools/check.d/40-package.sh: the Debian packages (issue 19). Builds them with tools/make-debs.sh
# (Release, prefix /usr, in build-deb/), checks their control data, unpacks them with `dpkg -x`
# into a temporary tree (no root install, no chroot), then uses only that tree: a consumer C
# program compiled through pkg-config and one through find_package(sembed), both embedding a
# sentence with the installed default model and agreeing with the installed CLI; the installed
# `sembed --version` (version + git revision) and `sembed embed`; a man page per subcommand and
# the bash completion. Prints "package: N passed, M failed"; exits non-zero on any failure.
# Usage: tools/check.d/40-package.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
bdir=${1:-build-deb}

# What this step alone needs (also in tools/install-deps.sh).
need=""
for p in cmake pkg-config dpkg-dev help2man file binutils gzip; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  echo "package: installing$need" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null ||
    { echo "package: could not install$need"; exit 1; }
fi

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "package: ok   $1"; }
bad() { fail=$((fail + 1)); echo "package: FAIL $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "package: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

t0=$(date +%s)
if ! debs=$(tools/make-debs.sh "$bdir"); then bad "tools/make-debs.sh builds the packages"; finish; fi
echo "package: built in $(($(date +%s) - t0)) s:" $debs
version=$(sed -n 's/^project(sembed VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
lib=$(ls "$bdir"/libsembed0_*.deb 2>/dev/null) dev=$(ls "$bdir"/libsembed-dev_*.deb 2>/dev/null) cli=$(ls "$bdir"/sembed_*.deb 2>/dev/null)
check "three packages: libsembed0, libsembed-dev, sembed" test -f "$lib" -a -f "$dev" -a -f "$cli"
[ -f "$lib" ] && [ -f "$dev" ] && [ -f "$cli" ] || finish

field() { dpkg-deb -f "$1" "$2"; }
check "libsembed0 version $version" test "$(field "$lib" Version)" = "$version"
check "libsembed-dev depends on libsembed0 (= $version)" grep -qF "libsembed0 (= $version)" <<<"$(field "$dev" Depends)"
check "libsembed0 depends on the C runtime (shlibdeps ran)" grep -q "libc6" <<<"$(field "$lib" Depends)"
check "libsembed0 has a shlibs file for libsembed.so.0" \
  bash -c "dpkg-deb --ctrl-tarfile '$lib' | tar -xO ./shlibs 2>/dev/null | grep -q '^libsembed 0 libsembed0'"
check "libsembed0 runs ldconfig on install (trigger or postinst)" \
  bash -c "dpkg-deb --ctrl-tarfile '$lib' | tar -xO ./triggers ./postinst 2>/dev/null | grep -q ldconfig"

root=$(mktemp -d "${TMPDIR:-/tmp}/sembed-debs-XXXXXX")
trap 'rm -rf "$root"' EXIT
for d in $lib $dev $cli; do dpkg -x "$d" "$root/tree"; done
usr=$root/tree/usr
libdir=$(dirname "$(find "$usr/lib" -name 'libsembed.so.0' | head -1)")
check "libsembed.so.0 is in libsembed0, libsembed.so (the link) only in -dev" \
  bash -c "dpkg-deb -c '$lib' | grep -q 'libsembed.so.0 ' && ! dpkg-deb -c '$lib' | grep -q 'libsembed.so ' && dpkg-deb -c '$dev' | grep -q 'libsembed.so ->'"
check "the library's soname is libsembed.so.0" \
  bash -c "objdump -p '$libdir/libsembed.so.0' | grep -q 'SONAME *libsembed.so.0\$'"
check "the library has no build-tree RUNPATH" bash -c "! objdump -p '$libdir/libsembed.so.0' | grep -q RUNPATH"

# The consumer: embeds one sentence with the installed default model and prints the vector.
model=$usr/share/sembed/models/sembed-mini/sembed-mini.semb
check "sembed ships the default model" test -f "$model"
cat >"$root/consumer.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sembed/model.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    struct sembed_model *m = NULL;
    int rc = sembed_model_load(argv[1], NULL, &m);
    if (rc) { fprintf(stderr, "load %s: %s\n", argv[1], sembed_strerror(rc)); return 1; }
    struct sembed_context *c = NULL;
    rc = sembed_context_create(m, NULL, &c);
    if (rc) { fprintf(stderr, "context: %s\n", sembed_strerror(rc)); return 1; }
    uint32_t dim = sembed_model_dim(m);
    float *v = malloc(dim * sizeof *v);
    const char *texts[1] = {argv[2]};
    rc = sembed_embed_texts(c, texts, 1, v);
    if (rc) { fprintf(stderr, "embed: %s\n", sembed_strerror(rc)); return 1; }
    printf("[");
    for (uint32_t i = 0; i < dim; i++) printf("%s%.9g", i ? "," : "", v[i]);
    printf("]\n");
    free(v);
    sembed_context_free(c);
    sembed_model_free(m);
    return 0;
}
EOF
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=
pc="pkg-config --define-variable=prefix=$usr"
check "pkg-config finds sembed $version in the unpacked tree" test "$($pc --modversion sembed 2>&1)" = "$version"
check "pkg-config's flags point into the unpacked tree" grep -qF -- "-I$usr/include" <<<"$($pc --cflags sembed)"
sentence="A man is playing a guitar."
if cc -std=c11 -Wall -Werror -o "$root/consumer" "$root/consumer.c" $($pc --cflags --libs sembed) 2>"$root/cc.log"; then
  ok "a consumer compiles and links through pkg-config"
else
  bad "a consumer compiles and links through pkg-config: $(head -5 "$root/cc.log")"
fi
check "the consumer runs against the unpacked libsembed.so.0 (ldd)" \
  bash -c "LD_LIBRARY_PATH='$libdir' ldd '$root/consumer' | grep -qF '$libdir/libsembed.so.0'"
lib_vec=$(LD_LIBRARY_PATH=$libdir "$root/consumer" "$model" "$sentence" 2>&1)
check "the consumer embeds with the default model" grep -qE '^\[-?[0-9]' <<<"$lib_vec"

# The same through the CMake package.
mkdir -p "$root/cm"
cat >"$root/cm/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(sembed $version REQUIRED)
add_executable(consumer $root/consumer.c)
target_link_libraries(consumer sembed::sembed)
EOF
if cmake -S "$root/cm" -B "$root/cm/b" -DCMAKE_PREFIX_PATH="$usr" >"$root/cm.log" 2>&1 && cmake --build "$root/cm/b" >>"$root/cm.log" 2>&1; then
  ok "a consumer builds through find_package(sembed) + sembed::sembed"
  cm_vec=$(LD_LIBRARY_PATH=$libdir "$root/cm/b/consumer" "$model" "$sentence" 2>&1)
  check "the find_package consumer gives the same vector" test "$cm_vec" = "$lib_vec"
else
  bad "a consumer builds through find_package(sembed): $(tail -5 "$root/cm.log")"
fi

# The installed CLI.
sembed=$usr/bin/sembed
first=$("$sembed" --version 2>&1 | head -1)
if git -C . rev-parse --short=12 HEAD >/dev/null 2>&1 && [ -z "${SEMBED_GIT_REVISION:-}" ]; then
  rev=$(git -C . rev-parse --short=12 HEAD)
  check "installed sembed --version: '$first' = 'sembed $version (git $rev[-dirty])'" \
    bash -c "[ '$first' = 'sembed $version (git $rev)' ] || [ '$first' = 'sembed $version (git $rev-dirty)' ]"
else
  check "installed sembed --version names the version: '$first'" grep -qE "^sembed $version \(git [^)]+\)$" <<<"$first"
fi
cli_vec=$(echo "$sentence" | "$sembed" embed -m "$model" 2>&1)
check "installed sembed embed prints one vector" test "$(grep -c '^\[' <<<"$cli_vec")" = 1
check "the CLI and the library consumer agree on the vector" test "$cli_vec" = "$lib_vec"

# Man pages and completion, for every subcommand the installed CLI lists.
cmds=$("$sembed" --help | awk '/^commands:/{on=1; next} on && /^$/{exit} on && /^  [a-z]/{print $1}')
man1=$usr/share/man/man1
missing=""
for c in sembed $(printf 'sembed-%s ' $cmds); do [ -f "$man1/$c.1.gz" ] || missing="$missing $c"; done
check "a man page for sembed and each of its $(echo $cmds | wc -w) subcommands${missing:+ (missing:$missing)}" test -z "$missing"
check "the embed man page documents --model" bash -c "zcat '$man1/sembed-embed.1.gz' | grep -q 'model'"
if command -v man >/dev/null; then
  check "man renders sembed-embed(1) without warnings" \
    bash -c "out=\$(MANWIDTH=80 man --warnings -l '$man1/sembed-embed.1.gz' 2>&1 >/dev/null); [ -z \"\$out\" ] || { echo \"\$out\" | head -3; false; }"
fi
comp=$usr/share/bash-completion/completions/sembed
check "bash completion installed" test -f "$comp"
got=$(bash -c 'source "$1"; COMP_WORDS=(sembed tok); COMP_CWORD=1; _sembed; echo "${COMPREPLY[*]}"' _ "$comp")
check "completion: 'sembed tok<TAB>' -> tokenize (got '$got')" test "$got" = "tokenize"
got=$(bash -c 'source "$1"; COMP_WORDS=(sembed embed --mo); COMP_CWORD=2; _sembed; echo "${COMPREPLY[*]}"' _ "$comp")
check "completion: 'sembed embed --mo<TAB>' -> --model (got '$got')" test "$got" = "--model"

echo "package: step took $(($(date +%s) - t0)) s"
finish
