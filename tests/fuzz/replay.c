/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c: a main for a fuzz target where libFuzzer is not used (the normal gcc build): runs
 * LLVMFuzzerTestOneInput once on each file named, or each regular file of each directory
 * named, in sorted order, and says how many. A crash, an abort or a sanitizer report is the
 * failure; the corpus replays as a ctest (fuzz/replay-TARGET).
 *
 *   fuzz_TARGET [-v] FILE|DIR...
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static bool verbose;

static int one(const char *path)
{
        _cleanup_free_ char *data = NULL;
        _cleanup_free_ uint8_t *exact = NULL;
        size_t len = 0;
        int r;

        r = gpuh_read_file_at(AT_FDCWD, path, 64u << 20, &data, &len);
        if (r < 0) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
                return r;
        }
        if (verbose)
                fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
        /* a copy of exactly @len bytes, as libFuzzer passes it: reading past it is a bug */
        exact = malloc(len ? len : 1);
        if (!exact)
                abort();
        memcpy(exact, data, len);
        LLVMFuzzerTestOneInput(exact, len);
        return 0;
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int main(int argc, char **argv)
{
        size_t n = 0;
        int failed = 0;

        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (streq(argv[i], "-v")) {
                        verbose = true;
                        continue;
                }
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        failed++;
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_closedir_ DIR *d = opendir(argv[i]);
                        _cleanup_strv_free_ char **names = NULL;
                        size_t k = 0, cap = 0;
                        struct dirent *de;

                        if (!d) {
                                fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                                failed++;
                                continue;
                        }
                        while ((de = readdir(d))) {
                                char path[PATH_MAX];
                                struct stat fst;

                                snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                                if (stat(path, &fst) < 0 || !S_ISREG(fst.st_mode))
                                        continue;
                                if (k + 1 >= cap) {
                                        char **nv = realloc(names, (cap = cap * 2 + 16) * sizeof(char *));
                                        if (!nv)
                                                abort();
                                        names = nv;
                                }
                                if (!(names[k++] = strdup(path)))
                                        abort();
                                names[k] = NULL;
                        }
                        if (k > 1)
                                qsort(names, k, sizeof(char *), name_cmp);
                        for (size_t j = 0; j < k; j++, n++)
                                failed += one(names[j]) < 0;
                } else {
                        failed += one(argv[i]) < 0;
                        n++;
                }
        }
        printf("replayed %zu inputs%s\n", n, failed ? ", some unreadable" : "");
        return failed || n == 0 ? 1 : 0;
}
