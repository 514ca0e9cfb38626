/*
 * faultfs-seeds.c - the seeds of fuzz-faultfs for the standalone driver
 * (tests/fuzz/standalone.c), in place of tests/fuzz/fuzz-seeds.c, whose
 * seeds are all lsvd-core structures.  Also written out as a libFuzzer
 * corpus by `faultfs-seeds DIR` (see tests/faultfs/meson.build).
 */
#include <stdio.h>
#include <string.h>

#include "../fuzz/fuzz-seeds.h"

static const char *const seeds[] = {
    "eio-write *.journal\n",
    "eio-write *.journal after=3 bytes=1M count=2\n",
    "eio-read *.rcache count=1",
    "eio-fsync vol.journal after=0\n",
    "eio-fsync *.journal count=1 lose=100\n",
    "enospc *.stats\n",
    "enospc cache/*.journal quota=64k after=1\n",
    "clear\n",
    "clear *.journal\n",
    "powercut seed=12345678901234\n",
    "powercut seed=3 lose=50\n",
    "track *.journal\n",
    "# a comment\n",
    "eio-write [a-z]*?.j* count=18446744073709551615\n",
    "enospc * quota=17179869183G\n",
};

void fuzz_seeds_foreach(fuzz_seed_fn *fn, void *arg)
{
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        fn(arg, "faultfs", seeds[i], strlen(seeds[i]));
    }
}

#ifndef FUZZ_SEEDS_LIB
/* `faultfs-seeds DIR`: the seeds as a libFuzzer corpus (scripts/run-fuzz.sh). */
int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: faultfs-seeds OUTDIR\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/seed-%02zu", argv[1], i);
        f = fopen(path, "w");
        if (!f || fputs(seeds[i], f) < 0 || fclose(f) != 0) {
            perror(path);
            return 1;
        }
    }
    return 0;
}
#endif
