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
