/*
 * caplet-extism.h: the Extism plugin ABI (`extism:host/env`) for C plugins, written for caplet.
 * A plugin built on it runs under caplet (`plugin(...)`) and under Extism's runtimes alike.
 *
 * Memory model: the host keeps "blocks" addressed by 64-bit offsets (0 = none). The plugin
 * copies bytes between its own memory and a block with load/store. Every offset the plugin
 * passes is checked by the host; a bad one traps the call.
 */
#ifndef CAPLET_EXTISM_H
#define CAPLET_EXTISM_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t extism_ptr;

#define EXTISM_IMPORT(name) __attribute__((import_module("extism:host/env"), import_name(name)))
#define EXTISM_EXPORT(name) __attribute__((export_name(name)))

EXTISM_IMPORT("input_length") uint64_t extism_input_length(void);
EXTISM_IMPORT("input_load_u8") uint8_t extism_input_load_u8(uint64_t index);
EXTISM_IMPORT("input_load_u64") uint64_t extism_input_load_u64(uint64_t index);
EXTISM_IMPORT("alloc") extism_ptr extism_alloc(uint64_t size);
EXTISM_IMPORT("free") void extism_free(extism_ptr block);
EXTISM_IMPORT("length") uint64_t extism_length(extism_ptr block);
EXTISM_IMPORT("load_u8") uint8_t extism_load_u8(extism_ptr at);
EXTISM_IMPORT("load_u64") uint64_t extism_load_u64(extism_ptr at);
EXTISM_IMPORT("store_u8") void extism_store_u8(extism_ptr at, uint8_t v);
EXTISM_IMPORT("store_u64") void extism_store_u64(extism_ptr at, uint64_t v);
EXTISM_IMPORT("output_set") void extism_output_set(extism_ptr block, uint64_t length);
EXTISM_IMPORT("error_set") void extism_error_set(extism_ptr block);
EXTISM_IMPORT("config_get") extism_ptr extism_config_get(extism_ptr key);
EXTISM_IMPORT("var_get") extism_ptr extism_var_get(extism_ptr key);
EXTISM_IMPORT("var_set") void extism_var_set(extism_ptr key, extism_ptr value);
EXTISM_IMPORT("log_info") void extism_log_info(extism_ptr message);
EXTISM_IMPORT("log_warn") void extism_log_warn(extism_ptr message);
EXTISM_IMPORT("log_error") void extism_log_error(extism_ptr message);
EXTISM_IMPORT("http_request") extism_ptr extism_http_request(extism_ptr request, extism_ptr body);
EXTISM_IMPORT("http_status_code") int32_t extism_http_status_code(void);

/* Copies the call's input into buf (at most cap bytes); returns the input's full length. */
static inline uint64_t caplet_input(uint8_t *buf, uint64_t cap) {
    uint64_t n = extism_input_length();
    uint64_t i = 0;
    for (; i + 8 <= n && i + 8 <= cap; i += 8) {
        uint64_t w = extism_input_load_u64(i);
        for (int k = 0; k < 8; k++) buf[i + k] = (uint8_t)(w >> (8 * k));
    }
    for (; i < n && i < cap; i++) buf[i] = extism_input_load_u8(i);
    return n;
}

/* A new block holding len bytes of src; 0 when the host has no room. */
static inline extism_ptr caplet_store(const void *src, uint64_t len) {
    extism_ptr block = extism_alloc(len);
    if (block == 0) return 0;
    const uint8_t *s = (const uint8_t *)src;
    uint64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = 0;
        for (int k = 0; k < 8; k++) w |= (uint64_t)s[i + k] << (8 * k);
        extism_store_u64(block + i, w);
    }
    for (; i < len; i++) extism_store_u8(block + i, s[i]);
    return block;
}

/* Copies a block into buf (at most cap bytes); returns the block's full length. */
static inline uint64_t caplet_load(extism_ptr block, uint8_t *buf, uint64_t cap) {
    uint64_t n = extism_length(block);
    for (uint64_t i = 0; i < n && i < cap; i++) buf[i] = extism_load_u8(block + i);
    return n;
}

static inline uint64_t caplet_strlen(const char *s) { uint64_t n = 0; while (s[n]) n++; return n; }

/* The call's output: len bytes of src. */
static inline void caplet_output(const void *src, uint64_t len) {
    extism_ptr block = caplet_store(src, len);
    extism_output_set(block, len);
}

/* Fails the call with a message; return a non-zero status after it. */
static inline void caplet_error(const char *message) {
    extism_error_set(caplet_store(message, caplet_strlen(message)));
}

#endif
