/*
 * extmap-bench - memory and speed of the extent map.
 *
 * Builds a map of N random, non-adjacent extents (default 1000000; the
 * first argument changes it) and prints the bytes per extent and the time
 * per insert, lookup, overwrite and trim; then the same for ascending
 * inserts, as a sequential writer makes them.
 *
 * Build and run, from the top of the tree:
 *   gcc -O2 -Ilsvd-core/src bench/extmap-bench.c lsvd-core/src/extmap.c \
 *       $(pkg-config --cflags --libs glib-2.0) -o extmap-bench
 *   ./extmap-bench [N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <glib.h>

#include "extmap.h"

/* Extent i lies in [i * SLOT, i * SLOT + 48): never adjacent to another. */
#define SLOT 64

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* An extent in slot @s, located like the object map's entries. */
static void put(struct extmap *m, uint64_t s)
{
    extmap_update(m, s * SLOT + rnd() % 16, 1 + rnd() % 32,
                  (1 + rnd() % 100000) << 32 | (rnd() % (1 << 22)));
}

static int sum_piece(void *arg, uint64_t lba G_GNUC_UNUSED, uint64_t len,
                     bool mapped, uint64_t loc)
{
    uint64_t *sum = arg;

    *sum += mapped ? loc + len : len;
    return 0;
}

/* Bytes in use on the heap, malloc's overhead included, if known. */
static size_t heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
#else
    return 0;
#endif
}

static void report(const char *what, double t0, uint64_t n)
{
    printf("  %-28s %8.1f ns/op\n", what, (now_ns() - t0) / n);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
    uint64_t *order, sum = 0;
    size_t heap0;
    struct extmap *m;
    double t0;

    if (n < 2) {
        fprintf(stderr, "usage: %s [extents >= 2]\n", argv[0]);
        return 1;
    }
    order = g_new(uint64_t, n);
    for (uint64_t i = 0; i < n; i++) {
        order[i] = i;
    }
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = rnd() % (i + 1), t = order[i];

        order[i] = order[j];
        order[j] = t;
    }

    printf("extmap: %" PRIu64 " random non-adjacent extents\n", n);
    heap0 = heap_bytes();
    m = extmap_new();
    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        put(m, order[i]);
    }
    report("insert (random order)", t0, n);
    printf("  %-28s %8.2f bytes/extent (%zu extents, %zu bytes)\n",
           "memory", (double)extmap_memory(m) / extmap_count(m),
           extmap_count(m), extmap_memory(m));
    if (heap_bytes()) {
        printf("  %-28s %8.2f bytes/extent (malloc overhead included)\n",
               "heap", (double)(heap_bytes() - heap0) / extmap_count(m));
    }

    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        extmap_lookup(m, (rnd() % n) * SLOT + rnd() % 48, 8, sum_piece,
                      &sum);
    }
    report("lookup (8 sectors)", t0, n);

    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        put(m, rnd() % n);
    }
    report("update (overwrite, splits)", t0, n);
    printf("  %-28s %8.2f bytes/extent (%zu extents)\n", "memory",
           (double)extmap_memory(m) / extmap_count(m), extmap_count(m));

    t0 = now_ns();
    for (uint64_t i = 0; i < n / 2; i++) {
        extmap_trim(m, (rnd() % n) * SLOT, SLOT);
    }
    report("trim (one slot)", t0, n / 2);
    printf("  %-28s %8.2f bytes/extent (%zu extents)\n", "memory",
           (double)extmap_memory(m) / extmap_count(m), extmap_count(m));

    t0 = now_ns();
    extmap_trim(m, 0, n * SLOT);
    printf("  %-28s %8.1f ms\n", "trim (everything at once)",
           (now_ns() - t0) / 1e6);
    extmap_free(m);

    printf("extmap: %" PRIu64 " ascending non-adjacent extents\n", n);
    m = extmap_new();
    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        put(m, i);
    }
    report("insert (ascending)", t0, n);
    printf("  %-28s %8.2f bytes/extent (%zu extents, %zu bytes)\n",
           "memory", (double)extmap_memory(m) / extmap_count(m),
           extmap_count(m), extmap_memory(m));
    t0 = now_ns();
    extmap_foreach(m, sum_piece, &sum);
    report("foreach", t0, n);
    extmap_free(m);

    g_free(order);
    /* keep the lookups from being optimised away */
    return sum == 42 ? 2 : 0;
}
