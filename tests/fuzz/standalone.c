/*
 * standalone - run a fuzz target without libFuzzer, so that every build
 * (gcc, ASan) checks the targets compile and survive a deterministic
 * mutation run; scripts/run-fuzz.sh does the real fuzzing.
 *
 *   fuzz-NAME-replay FILE...    run the target on each file (for example
 *                               a crash input saved by libFuzzer)
 *   fuzz-NAME-replay            run it on the seeds of fuzz-seeds.c,
 *                               every prefix and single-bit flip of them,
 *                               and random byte mutations (LSVD_TEST_OPS,
 *                               default 20000; seed LSVD_TEST_SEED)
 *
 * Built with -DFUZZ_TARGET="NAME".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz-seeds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static GPtrArray *seeds;           /* GBytes */

static void collect(void *arg G_GNUC_UNUSED, const char *target,
                    const void *data, size_t len)
{
    if (!strcmp(target, FUZZ_TARGET)) {
        g_ptr_array_add(seeds, g_bytes_new(data, len));
    }
}

/* Run on an exact-size copy, so that ASan sees any overread. */
static void run(const uint8_t *data, size_t len)
{
    uint8_t *copy = g_malloc(len ? len : 1);

    if (len) {
        memcpy(copy, data, len);
    }
    LLVMFuzzerTestOneInput(copy, len);
    g_free(copy);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *s = getenv(name);

    return s && *s ? strtoull(s, NULL, 0) : def;
}

int main(int argc, char **argv)
{
    uint64_t ops = env_u64("LSVD_TEST_OPS", 20000);
    uint64_t seed = env_u64("LSVD_TEST_SEED", 1);
    uint64_t runs = 0;
    GRand *rng;

    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            gchar *data;
            gsize len;

            if (!g_file_get_contents(argv[i], &data, &len, NULL)) {
                fprintf(stderr, "cannot read %s\n", argv[i]);
                return 1;
            }
            run((const uint8_t *)data, len);
            g_free(data);
        }
        printf("# %d inputs ran\n", argc - 1);
        return 0;
    }

    seeds = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    fuzz_seeds_foreach(collect, NULL);
    if (seeds->len == 0) {
        fprintf(stderr, "no seeds for %s\n", FUZZ_TARGET);
        return 1;
    }
    rng = g_rand_new_with_seed(seed);
    for (guint s = 0; s < seeds->len; s++) {
        gsize len;
        const uint8_t *d = g_bytes_get_data(seeds->pdata[s], &len);
        uint8_t *m = g_malloc0(len ? len : 1);

        if (len) {
            memcpy(m, d, len);
        }
        run(d, len);
        for (size_t n = 0; n < len; n++) {
            run(d, n);
        }
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit++) {
                m[i] ^= 1 << bit;
                run(m, len);
                m[i] ^= 1 << bit;
            }
        }
        runs += 1 + len + 8 * len;
        g_free(m);
    }
    for (uint64_t i = 0; i < ops; i++) {
        gsize len;
        const uint8_t *d = g_bytes_get_data(
            seeds->pdata[g_rand_int_range(rng, 0, seeds->len)], &len);
        size_t n = len + g_rand_int_range(rng, 0, 64);
        uint8_t *m = g_malloc0(n ? n : 1);
        int k = g_rand_int_range(rng, 1, 9);

        if (len) {
            memcpy(m, d, len);
        }
        /* overwrite a few bytes, often in the first 128 (the fixed
         * fields), with random or boundary values */
        while (n > 0 && k-- > 0) {
            size_t at = g_rand_boolean(rng) ?
                        g_rand_int_range(rng, 0, MIN(n, 128)) :
                        g_rand_int_range(rng, 0, n);
            static const uint8_t special[] = { 0, 0xff, 0x7f, 0x80, 1 };
            m[at] = g_rand_boolean(rng) ? g_rand_int(rng) & 0xff :
                    special[g_rand_int_range(rng, 0, 5)];
        }
        run(m, g_rand_int_range(rng, 0, n + 1));
        g_free(m);
        runs++;
    }
    g_rand_free(rng);
    printf("# %s: %" PRIu64 " inputs from %u seeds (seed %" PRIu64 ")\n",
           FUZZ_TARGET, runs, seeds->len, seed);
    g_ptr_array_unref(seeds);
    return 0;
}
