/* CPU kernels: the same C compiled natively (gcc -O2) and to wasm32-wasi (clang -O2).
 *   cpu <kernel> <size>
 * kernels: nbody <steps>, fannkuch <n>, spectral <n>, hash <passes over 64 MiB>, matmul <n>, sort <count>
 * Each kernel runs once, entered from main, as a real program's hot loop is: that is the case
 * where an engine without on-stack replacement keeps running its baseline code. */
#include <math.h>
#include <string.h>
#include "common.h"

/* ---- n-body (the Computer Language Benchmarks Game algorithm) ---- */
#define PI 3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS_PER_YEAR 365.24
typedef struct { double x, y, z, vx, vy, vz, mass; } body;

static uint64_t nbody(long steps) {
    body b[5] = {
        {0, 0, 0, 0, 0, 0, SOLAR_MASS},
        {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
         -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS},
        {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
         2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS},
        {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
         -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS},
        {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
         -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS},
    };
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < 5; i++) { px += b[i].vx * b[i].mass; py += b[i].vy * b[i].mass; pz += b[i].vz * b[i].mass; }
    b[0].vx = -px / SOLAR_MASS; b[0].vy = -py / SOLAR_MASS; b[0].vz = -pz / SOLAR_MASS;
    const double dt = 0.01;
    for (long s = 0; s < steps; s++) {
        for (int i = 0; i < 5; i++) {
            for (int j = i + 1; j < 5; j++) {
                double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * sqrt(d2));
                b[i].vx -= dx * b[j].mass * mag; b[i].vy -= dy * b[j].mass * mag; b[i].vz -= dz * b[j].mass * mag;
                b[j].vx += dx * b[i].mass * mag; b[j].vy += dy * b[i].mass * mag; b[j].vz += dz * b[i].mass * mag;
            }
        }
        for (int i = 0; i < 5; i++) { b[i].x += dt * b[i].vx; b[i].y += dt * b[i].vy; b[i].z += dt * b[i].vz; }
    }
    double e = 0;
    for (int i = 0; i < 5; i++) {
        e += 0.5 * b[i].mass * (b[i].vx * b[i].vx + b[i].vy * b[i].vy + b[i].vz * b[i].vz);
        for (int j = i + 1; j < 5; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            e -= b[i].mass * b[j].mass / sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return (uint64_t)(int64_t)(e * 1e9);
}

/* ---- fannkuch-redux ---- */
static uint64_t fannkuch(int n) {
    int perm[16], perm1[16], count[16];
    int maxflips = 0, checksum = 0, permcount = 0;
    for (int i = 0; i < n; i++) perm1[i] = i;
    int r = n;
    for (;;) {
        while (r != 1) { count[r - 1] = r; r--; }
        for (int i = 0; i < n; i++) perm[i] = perm1[i];
        int flips = 0, k;
        while ((k = perm[0]) != 0) {
            for (int i = 0, j = k; i < j; i++, j--) { int t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
            flips++;
        }
        if (flips > maxflips) maxflips = flips;
        checksum += (permcount & 1) ? -flips : flips;
        for (;;) {
            if (r == n) return (uint64_t)(uint32_t)checksum * 100 + (uint64_t)maxflips;
            int p0 = perm1[0];
            for (int i = 0; i < r; i++) perm1[i] = perm1[i + 1];
            perm1[r] = p0;
            if (--count[r] > 0) break;
            r++;
        }
        permcount++;
    }
}

/* ---- spectral norm ---- */
static double A(int i, int j) { return 1.0 / ((i + j) * (i + j + 1) / 2 + i + 1); }
static void mulAv(int n, const double *v, double *av) {
    for (int i = 0; i < n; i++) { double s = 0; for (int j = 0; j < n; j++) s += A(i, j) * v[j]; av[i] = s; }
}
static void mulAtv(int n, const double *v, double *atv) {
    for (int i = 0; i < n; i++) { double s = 0; for (int j = 0; j < n; j++) s += A(j, i) * v[j]; atv[i] = s; }
}
static uint64_t spectral(int n) {
    double *u = malloc(n * sizeof(double)), *v = malloc(n * sizeof(double)), *t = malloc(n * sizeof(double));
    for (int i = 0; i < n; i++) u[i] = 1;
    for (int i = 0; i < 10; i++) { mulAv(n, u, t); mulAtv(n, t, v); mulAv(n, v, t); mulAtv(n, t, u); }
    double vBv = 0, vv = 0;
    for (int i = 0; i < n; i++) { vBv += u[i] * v[i]; vv += v[i] * v[i]; }
    free(u); free(v); free(t);
    return (uint64_t)(sqrt(vBv / vv) * 1e9);
}

/* ---- a 64-bit multiply-rotate hash (xxhash-like, 4 lanes) over a 64 MiB buffer, `passes` times ---- */
static uint64_t hashbuf(long passes) {
    size_t len = (size_t)64 << 20;
    uint64_t *buf = malloc(len);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len / 8; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; buf[i] = x; }
    uint64_t h0 = 1, h1 = 2, h2 = 3, h3 = 4;
    const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full;
    for (long pass = 0; pass < passes; pass++) {
        for (size_t i = 0; i < len / 8; i += 4) {
            h0 = (h0 + buf[i] * P2); h0 = (h0 << 31 | h0 >> 33) * P1;
            h1 = (h1 + buf[i + 1] * P2); h1 = (h1 << 31 | h1 >> 33) * P1;
            h2 = (h2 + buf[i + 2] * P2); h2 = (h2 << 31 | h2 >> 33) * P1;
            h3 = (h3 + buf[i + 3] * P2); h3 = (h3 << 31 | h3 >> 33) * P1;
        }
    }
    free(buf);
    return h0 ^ (h1 << 1) ^ (h2 << 2) ^ (h3 << 3);
}

/* ---- dense matrix multiply, i-k-j order ---- */
static uint64_t matmul(int n) {
    double *a = malloc((size_t)n * n * sizeof(double)), *b = malloc((size_t)n * n * sizeof(double));
    double *c = calloc((size_t)n * n, sizeof(double));
    for (int i = 0; i < n * n; i++) { a[i] = (i % 7) * 0.5; b[i] = (i % 11) * 0.25; }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
    double s = 0;
    for (int i = 0; i < n * n; i++) s += c[i];
    free(a); free(b); free(c);
    return (uint64_t)s;
}

/* ---- sort: our own introsort-free quicksort + insertion sort, so libc's qsort is not measured ---- */
static void isort(int32_t *a, long n) {
    for (long i = 1; i < n; i++) { int32_t v = a[i]; long j = i - 1; while (j >= 0 && a[j] > v) { a[j + 1] = a[j]; j--; } a[j + 1] = v; }
}
static void qsort32(int32_t *a, long n) {
    while (n > 24) {
        int32_t x = a[0], y = a[n / 2], z = a[n - 1];
        int32_t p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        long i = 0, j = n - 1;
        for (;;) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i >= j) break;
            int32_t t = a[i]; a[i] = a[j]; a[j] = t; i++; j--;
        }
        if (j + 1 < n - j - 1) { qsort32(a, j + 1); a += j + 1; n -= j + 1; }
        else { qsort32(a + j + 1, n - j - 1); n = j + 1; }
    }
    isort(a, n);
}
static uint64_t sortints(long count) {
    int32_t *a = malloc(count * sizeof(int32_t));
    uint32_t x = 2463534242u;
    for (long i = 0; i < count; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; a[i] = (int32_t)x; }
    qsort32(a, count);
    uint64_t h = 0;
    for (long i = 1; i < count; i++) if (a[i - 1] > a[i]) return 0; /* not sorted: a wrong checksum */
    for (long i = 0; i < count; i += count / 97 + 1) h = h * 31 + (uint32_t)a[i];
    free(a);
    return h;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: cpu <kernel> <size>\n"); return 2; }
    const char *k = argv[1];
    long size = atol(argv[2]);
    uint64_t t0 = now_ns(), check;
    if (!strcmp(k, "nbody")) check = nbody(size);
    else if (!strcmp(k, "fannkuch")) check = fannkuch((int)size);
    else if (!strcmp(k, "spectral")) check = spectral((int)size);
    else if (!strcmp(k, "hash")) check = hashbuf(size);
    else if (!strcmp(k, "matmul")) check = matmul((int)size);
    else if (!strcmp(k, "sort")) check = sortints(size);
    else { fprintf(stderr, "unknown kernel %s\n", k); return 2; }
    report(k, now_ns() - t0, 1, check);
    return 0;
}
