/*
 * A plugin on the stdio convention: the export takes no arguments, reads its input from fd 0
 * and writes its output to fd 1. Any WASI toolchain can build one; no SDK needed.
 *
 *   clang-19 --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -o stdio-upper.wasm stdio-upper.c
 */
#include <unistd.h>

__attribute__((export_name("upper")))
int upper(void) {
    char buf[4096];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 32;
        }
        for (ssize_t at = 0; at < n;) {
            ssize_t w = write(1, buf + at, (size_t)(n - at));
            if (w < 0) return 1;
            at += w;
        }
    }
    return n < 0 ? 1 : 0;
}
