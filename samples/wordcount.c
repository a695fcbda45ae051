/*
 * wordcount: counts lines, words and bytes of every regular file under the
 * directories given as arguments (default "."), recursively, like `wc` over
 * `find DIR -type f`. One line per file ("lines words bytes path"), sorted by
 * path, then a "total" line. Symlinks are not followed. Errors go to stderr
 * as "wordcount: <path>: <reason>" and make the exit code 1.
 *
 *   caplet run --dir ./docs:/docs:ro samples/wordcount.c /docs
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct count {
    char *path;
    unsigned long long lines, words, bytes;
};

static struct count *counts;
static size_t ncounts, capacity;
static int status;

static void fail(const char *path, int err) {
    fprintf(stderr, "wordcount: %s: %s\n", path, strerror(err));
    status = 1;
}

static void count_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fail(path, errno); return; }
    struct count c = {0};
    int in_word = 0, ch;
    while ((ch = getc(f)) != EOF) {
        c.bytes++;
        if (ch == '\n') c.lines++;
        if (isspace(ch)) in_word = 0;
        else if (!in_word) { in_word = 1; c.words++; }
    }
    if (ferror(f)) fail(path, errno);
    fclose(f);
    if (ncounts == capacity) {
        capacity = capacity ? capacity * 2 : 64;
        struct count *grown = realloc(counts, capacity * sizeof *counts);
        if (!grown) { fail(path, ENOMEM); return; }
        counts = grown;
    }
    c.path = strdup(path);
    if (!c.path) { fail(path, ENOMEM); return; }
    counts[ncounts++] = c;
}

static void walk(const char *path, int depth) {
    struct stat st;
    if (lstat(path, &st) != 0) { fail(path, errno); return; }
    if (S_ISREG(st.st_mode)) { count_file(path); return; }
    if (!S_ISDIR(st.st_mode)) return;
    if (depth > 64) { fail(path, ELOOP); return; }
    DIR *d = opendir(path);
    if (!d) { fail(path, errno); return; }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        char *child = malloc(len);
        if (!child) { fail(path, ENOMEM); break; }
        snprintf(child, len, "%s/%s", path, e->d_name);
        walk(child, depth + 1);
        free(child);
    }
    closedir(d);
}

static int by_path(const void *a, const void *b) {
    return strcmp(((const struct count *)a)->path, ((const struct count *)b)->path);
}

int main(int argc, char **argv) {
    if (argc < 2) walk(".", 0);
    for (int i = 1; i < argc; i++) walk(argv[i], 0);
    qsort(counts, ncounts, sizeof *counts, by_path);
    struct count total = {0};
    for (size_t i = 0; i < ncounts; i++) {
        printf("%7llu %7llu %8llu %s\n", counts[i].lines, counts[i].words, counts[i].bytes, counts[i].path);
        total.lines += counts[i].lines;
        total.words += counts[i].words;
        total.bytes += counts[i].bytes;
    }
    printf("%7llu %7llu %8llu total\n", total.lines, total.words, total.bytes);
    return status;
}
