/*
 * ls: lists the directory given as argv[1] (default "."), sorted bytewise,
 * one name per line, directories with a trailing "/". "." and ".." are left
 * out. Errors go to stderr as "ls: <dir>: <reason>" with exit code 1.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct entry {
    char *name;
    int dir;
};

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int is_dir(const char *dir, const struct dirent *e) {
    if (e->d_type == DT_DIR) return 1;
    if (e->d_type != DT_UNKNOWN && e->d_type != DT_LNK) return 0;
    /* unknown type, or a symlink that may lead to a directory: ask stat */
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    char *path = malloc(len);
    if (!path) return 0;
    snprintf(path, len, "%s/%s", dir, e->d_name);
    struct stat st;
    int dir_like = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    free(path);
    return dir_like;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "ls: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct entry *names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            struct entry *grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                fprintf(stderr, "ls: %s: out of memory\n", dir);
                return 1;
            }
            names = grown;
        }
        char *name = strdup(e->d_name);
        if (!name) {
            fprintf(stderr, "ls: %s: out of memory\n", dir);
            return 1;
        }
        names[count].name = name;
        names[count].dir = is_dir(dir, e);
        count++;
        errno = 0;
    }
    if (errno != 0) {
        fprintf(stderr, "ls: %s: %s\n", dir, strerror(errno));
        closedir(d);
        return 1;
    }
    closedir(d);
    qsort(names, count, sizeof *names, by_name);
    for (size_t i = 0; i < count; i++) {
        printf("%s%s\n", names[i].name, names[i].dir ? "/" : "");
        free(names[i].name);
    }
    free(names);
    return 0;
}
