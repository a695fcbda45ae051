/*
 * A plugin on Extism's plugin ABI (see caplet-extism.h): counts the vowels of its input and
 * returns JSON, with a running total kept in an Extism variable (which carries over from one
 * call to the next only when the plugin keeps its state).
 *
 *   clang-19 --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -o extism-vowels.wasm extism-vowels.c
 */
#include <stdio.h>
#include <string.h>
#include "caplet-extism.h"

static uint8_t input[65536];

EXTISM_EXPORT("count_vowels")
int32_t count_vowels(void) {
    uint64_t n = caplet_input(input, sizeof input);
    if (n > sizeof input) {
        caplet_error("input too long (at most 64 KiB)");
        return 1;
    }
    uint64_t count = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (strchr("aeiouAEIOU", input[i]) != NULL && input[i] != 0) count++;
    }
    /* The running total, kept in a variable. */
    uint64_t total = count;
    extism_ptr key = caplet_store("total", 5);
    extism_ptr old = extism_var_get(key);
    if (old != 0 && extism_length(old) == 8) total += extism_load_u64(old);
    extism_var_set(key, caplet_store(&total, 8));
    char out[96];
    int len = snprintf(out, sizeof out, "{\"count\":%llu,\"total\":%llu}", (unsigned long long)count, (unsigned long long)total);
    caplet_output(out, (uint64_t)len);
    return 0;
}
