/* Shared by every bench workload: a monotonic clock and the one result line.
 * Each workload prints, on stderr, one line per measured section:
 *   RESULT <name> ns=<total ns> ops=<operations> check=<checksum>
 * The harness reads these lines; stdout is left to what the workload measures. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void report(const char *name, uint64_t ns, uint64_t ops, uint64_t check) {
    fprintf(stderr, "RESULT %s ns=%llu ops=%llu check=%llu\n", name, (unsigned long long)ns,
            (unsigned long long)ops, (unsigned long long)check);
    fflush(stderr);
}

static inline long arg_or(int argc, char **argv, int i, long dflt) {
    return argc > i ? atol(argv[i]) : dflt;
}
#endif
