#!/usr/bin/env bash
# Builds the plugin samples (samples/plugins/*.c) and the plugin test fixtures
# (test/fixtures/plugins/*.c) as WASI reactors; the .wasm files are committed.
# Needs clang 19 with wasm32-wasi (see test/fixtures/build.sh). Output is deterministic.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CLANG="${CLANG:-clang-19}"
WASI_SYSROOT="${WASI_SYSROOT:-/usr}"
export SOURCE_DATE_EPOCH=0 LC_ALL=C
CFLAGS=(--target=wasm32-wasi "--sysroot=$WASI_SYSROOT" -mexec-model=reactor -O2 -Wall -Wextra -Werror
        -Wno-unused-parameter -ffile-prefix-map="$root"=. -Wl,--strip-debug)
for dir in "$root/samples/plugins" "$root/test/fixtures/plugins"; do
    for src in "$dir"/*.c; do
        name="$(basename "$src" .c)"
        scratch="$(mktemp -d)"
        (cd "$dir" && "$CLANG" "${CFLAGS[@]}" -o "$scratch/$name.wasm" "$name.c")
        mv "$scratch/$name.wasm" "$dir/$name.wasm"
        rmdir "$scratch"
        printf '  %-44s %7d bytes\n' "${dir#"$root"/}/$name.wasm" "$(wc -c <"$dir/$name.wasm")"
    done
done
