/* SQLite on a file in the mounted directory, built from the amalgamation that the npm package
 * better-sqlite3 ships (fetched at bench time, never committed).
 *   sqlite_bench <rows> <dir>
 * One exclusive-locking connection: a table of <rows> rows inserted in one transaction, an index,
 * range aggregates, updates in a second transaction, and a final check. synchronous=OFF, so the
 * figure is SQLite's CPU and file I/O, not the disk's flush latency. */
#include <string.h>
#include <unistd.h>
#include "common.h"
#include "sqlite3.h"

static void must(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "FAIL %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static void exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) { fprintf(stderr, "FAIL %s: %s\n", sql, err); exit(1); }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: sqlite_bench <rows> <dir>\n"); return 2; }
    long rows = atol(argv[1]);
    char path[4096];
    snprintf(path, sizeof path, "%s/bench.db", argv[2]);
    unlink(path);
    uint64_t t0 = now_ns();
    sqlite3 *db;
    must(sqlite3_open(path, &db), db, "open");
    exec(db, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA synchronous=OFF; PRAGMA cache_size=-8192;");
    exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT)");
    sqlite3_stmt *ins;
    must(sqlite3_prepare_v2(db, "INSERT INTO t(a, b) VALUES(?, ?)", -1, &ins, NULL), db, "prepare insert");
    exec(db, "BEGIN");
    uint32_t x = 12345;
    char text[64];
    for (long i = 0; i < rows; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        snprintf(text, sizeof text, "row %ld value %u", i, x);
        sqlite3_bind_int(ins, 1, (int)(x % 100000));
        sqlite3_bind_text(ins, 2, text, -1, SQLITE_STATIC);
        must(sqlite3_step(ins), db, "insert");
        sqlite3_reset(ins);
    }
    exec(db, "COMMIT");
    sqlite3_finalize(ins);
    exec(db, "CREATE INDEX t_a ON t(a)");
    sqlite3_stmt *q;
    must(sqlite3_prepare_v2(db, "SELECT count(*), sum(length(b)) FROM t WHERE a BETWEEN ? AND ?", -1, &q, NULL), db, "prepare select");
    uint64_t check = 0;
    for (int i = 0; i < 2000; i++) {
        sqlite3_bind_int(q, 1, i * 37 % 100000);
        sqlite3_bind_int(q, 2, i * 37 % 100000 + 500);
        must(sqlite3_step(q), db, "select");
        check += (uint64_t)sqlite3_column_int64(q, 0) + (uint64_t)sqlite3_column_int64(q, 1);
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    exec(db, "BEGIN; UPDATE t SET b = b || '!' WHERE a % 7 = 0; DELETE FROM t WHERE a % 11 = 0; COMMIT");
    must(sqlite3_prepare_v2(db, "SELECT count(*), sum(a) FROM t", -1, &q, NULL), db, "prepare final");
    must(sqlite3_step(q), db, "final");
    check = check * 31 + (uint64_t)sqlite3_column_int64(q, 0) * 7 + (uint64_t)sqlite3_column_int64(q, 1);
    sqlite3_finalize(q);
    sqlite3_close(db);
    report("sqlite", now_ns() - t0, (uint64_t)rows, check);
    return 0;
}
