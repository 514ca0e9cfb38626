/*
 * fuzz-seeds.h - the seed inputs of the fuzz targets, for the standalone
 * driver (fuzz-seeds.c built with -DFUZZ_SEEDS_LIB).
 */
#ifndef FUZZ_SEEDS_H
#define FUZZ_SEEDS_H

#include <stddef.h>

/* @target is the target's name without "fuzz-", e.g. "obj-header". */
typedef void fuzz_seed_fn(void *arg, const char *target, const void *data,
                          size_t len);
void fuzz_seeds_foreach(fuzz_seed_fn *fn, void *arg);

#endif /* FUZZ_SEEDS_H */
