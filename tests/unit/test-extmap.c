/*
 * test-extmap - the extent map, checked piece by piece against a model
 * (a flat array with one location per sector) over a long run of random
 * updates, trims and lookups, plus hand-written split cases.
 *
 * LSVD_TEST_OPS sets the number of random operations (default 1000000)
 * and LSVD_TEST_SEED the seed (default 1); the seed is printed.
 */
#include <inttypes.h>
#include <stdlib.h>

#include <glib.h>

#include "extmap.h"

#define NSECT 4096
#define UNMAPPED UINT64_MAX

/* xorshift64*: deterministic and fast, whatever GLib's version */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t rnd_below(uint64_t n)
{
    return rnd() % n;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *s = g_getenv(name);

    return s && *s ? g_ascii_strtoull(s, NULL, 0) : def;
}

/* ---- collecting callbacks -------------------------------------------- */

struct piece {
    uint64_t lba, len, loc;
    bool mapped;
};

static int collect(void *arg, uint64_t lba, uint64_t len, bool mapped,
                   uint64_t loc)
{
    GArray *a = arg;
    struct piece p = { lba, len, mapped ? loc : 0, mapped };

    g_array_append_val(a, p);
    return 0;
}

static GArray *lookup(struct extmap *m, uint64_t lba, uint64_t len)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(struct piece));

    g_assert_cmpint(extmap_lookup(m, lba, len, collect, a), ==, 0);
    return a;
}

static GArray *all_extents(struct extmap *m)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(struct piece));

    g_assert_cmpint(extmap_foreach(m, collect, a), ==, 0);
    return a;
}

static void assert_piece(GArray *a, guint i, uint64_t lba, uint64_t len,
                         bool mapped, uint64_t loc)
{
    struct piece *p;

    g_assert_cmpuint(i, <, a->len);
    p = &g_array_index(a, struct piece, i);
    g_assert_cmpuint(p->lba, ==, lba);
    g_assert_cmpuint(p->len, ==, len);
    g_assert_cmpint(p->mapped, ==, mapped);
    if (mapped) {
        g_assert_cmphex(p->loc, ==, loc);
    }
}

/* ---- the model -------------------------------------------------------- */

static void model_update(uint64_t *model, uint64_t lba, uint64_t len,
                         uint64_t loc)
{
    for (uint64_t i = 0; i < len; i++) {
        model[lba + i] = loc + i;
    }
}

static void model_trim(uint64_t *model, uint64_t lba, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++) {
        model[lba + i] = UNMAPPED;
    }
}

/* The lookup of [lba, lba+len) covers it exactly, in order, with pieces
 * that agree with the model sector by sector. */
static void check_lookup(struct extmap *m, const uint64_t *model,
                         uint64_t lba, uint64_t len)
{
    g_autoptr(GArray) a = lookup(m, lba, len);
    uint64_t pos = lba;

    for (guint i = 0; i < a->len; i++) {
        struct piece *p = &g_array_index(a, struct piece, i);

        g_assert_cmpuint(p->lba, ==, pos);
        g_assert_cmpuint(p->len, >, 0);
        g_assert_cmpuint(p->lba + p->len, <=, lba + len);
        if (i > 0 && !p->mapped) {
            /* two gaps are never reported back to back */
            g_assert_true(g_array_index(a, struct piece, i - 1).mapped);
        }
        for (uint64_t k = 0; k < p->len; k++) {
            if (p->mapped) {
                g_assert_cmphex(model[p->lba + k], ==, p->loc + k);
            } else {
                g_assert_cmphex(model[p->lba + k], ==, UNMAPPED);
            }
        }
        pos += p->len;
    }
    g_assert_cmpuint(pos, ==, lba + len);
}

/* The whole map: extents in order, never overlapping, never empty, and
 * exactly the mapped sectors of the model. */
static void check_whole(struct extmap *m, const uint64_t *model)
{
    g_autoptr(GArray) a = all_extents(m);
    uint64_t end = 0, mapped = 0, model_mapped = 0;

    g_assert_cmpuint(extmap_count(m), ==, a->len);
    for (guint i = 0; i < a->len; i++) {
        struct piece *p = &g_array_index(a, struct piece, i);

        g_assert_true(p->mapped);
        g_assert_cmpuint(p->len, >, 0);
        g_assert_cmpuint(p->lba, >=, end);      /* no overlap */
        g_assert_cmpuint(p->lba + p->len, <=, NSECT);
        for (uint64_t k = 0; k < p->len; k++) {
            g_assert_cmphex(model[p->lba + k], ==, p->loc + k);
        }
        end = p->lba + p->len;
        mapped += p->len;
    }
    for (uint64_t i = 0; i < NSECT; i++) {
        model_mapped += model[i] != UNMAPPED;
    }
    g_assert_cmpuint(mapped, ==, model_mapped);
}

/* A random range inside the sector space: mostly short, sometimes long,
 * sometimes touching either end. */
static void rnd_range(uint64_t *lba, uint64_t *len)
{
    uint64_t r = rnd_below(1000);

    if (r < 800) {
        *len = 1 + rnd_below(8);
    } else if (r < 999) {
        *len = 1 + rnd_below(128);
    } else {
        *len = 1 + rnd_below(NSECT);
    }
    r = rnd_below(100);
    if (r < 3) {
        *lba = 0;
    } else if (r < 6) {
        *lba = NSECT - *len;
    } else {
        *lba = rnd_below(NSECT - *len + 1);
    }
}

static void test_model(void)
{
    uint64_t ops = env_u64("LSVD_TEST_OPS", 1000000);
    uint64_t seed = env_u64("LSVD_TEST_SEED", 1);
    g_autofree uint64_t *model = g_new(uint64_t, NSECT);
    struct extmap *m = extmap_new();
    uint64_t n_update = 0, n_trim = 0, n_lookup = 0, max_count = 0;

    g_test_message("extmap model test: %" PRIu64 " ops, seed %" PRIu64
                   " (set LSVD_TEST_OPS / LSVD_TEST_SEED to change)",
                   ops, seed);
    rng_state = seed ? seed : 1;
    for (uint64_t i = 0; i < NSECT; i++) {
        model[i] = UNMAPPED;
    }

    for (uint64_t op = 0; op < ops; op++) {
        uint64_t r = rnd_below(1000), lba, len;

        rnd_range(&lba, &len);
        if (r < 450) {
            /* locations like the object map's: seq << 32 | sector */
            uint64_t loc = (1 + rnd_below(1000)) << 32 | rnd_below(1 << 20);
            extmap_update(m, lba, len, loc);
            model_update(model, lba, len, loc);
            n_update++;
        } else if (r < 549) {
            extmap_trim(m, lba, len);
            model_trim(model, lba, len);
            n_trim++;
        } else if (r < 550) {
            /* occasionally wipe out big areas so that the map stays
             * interesting at both small and large extent counts */
            uint64_t start = rnd_below(NSECT / 2);
            len = rnd_below(NSECT - start + 1);
            extmap_trim(m, start, len);
            model_trim(model, start, len);
            check_whole(m, model);
            n_trim++;
        } else {
            check_lookup(m, model, lba, len);
            n_lookup++;
        }
        max_count = MAX(max_count, extmap_count(m));
        if (op % 4096 == 0) {
            check_whole(m, model);
        }
    }
    check_whole(m, model);
    check_lookup(m, model, 0, NSECT);
    g_test_message("%" PRIu64 " updates, %" PRIu64 " trims, %" PRIu64
                   " lookups; at most %" PRIu64 " extents",
                   n_update, n_trim, n_lookup, max_count);
    g_assert_cmpuint(n_update, >, 0);
    g_assert_cmpuint(n_lookup, >, 0);
    extmap_free(m);
}

static void test_empty(void)
{
    struct extmap *m = extmap_new();
    g_autoptr(GArray) a = lookup(m, 10, 20);
    g_autoptr(GArray) z = lookup(m, 10, 0);

    g_assert_cmpuint(extmap_count(m), ==, 0);
    g_assert_cmpuint(a->len, ==, 1);
    assert_piece(a, 0, 10, 20, false, 0);
    g_assert_cmpuint(z->len, ==, 0);
    /* a zero-length update maps nothing */
    extmap_update(m, 5, 0, 77);
    g_assert_cmpuint(extmap_count(m), ==, 0);
    extmap_trim(m, 0, 100);
    g_assert_cmpuint(extmap_count(m), ==, 0);
    extmap_free(m);
    extmap_free(NULL);
}

/* [100, 200) -> 1000; overwrite in the middle, at the head, at the tail */
static void test_split_middle(void)
{
    struct extmap *m = extmap_new();
    g_autoptr(GArray) a = NULL;

    extmap_update(m, 100, 100, 1000);
    extmap_update(m, 140, 20, 5000);
    g_assert_cmpuint(extmap_count(m), ==, 3);
    a = lookup(m, 90, 120);
    g_assert_cmpuint(a->len, ==, 5);
    assert_piece(a, 0, 90, 10, false, 0);
    assert_piece(a, 1, 100, 40, true, 1000);
    assert_piece(a, 2, 140, 20, true, 5000);
    /* the tail piece's location is advanced by the split */
    assert_piece(a, 3, 160, 40, true, 1060);
    assert_piece(a, 4, 200, 10, false, 0);
    extmap_free(m);
}

static void test_split_head(void)
{
    struct extmap *m = extmap_new();
    g_autoptr(GArray) a = NULL;

    extmap_update(m, 100, 100, 1000);
    /* starts before the extent, ends inside it */
    extmap_update(m, 50, 70, 7000);
    g_assert_cmpuint(extmap_count(m), ==, 2);
    a = lookup(m, 0, 300);
    g_assert_cmpuint(a->len, ==, 4);
    assert_piece(a, 0, 0, 50, false, 0);
    assert_piece(a, 1, 50, 70, true, 7000);
    assert_piece(a, 2, 120, 80, true, 1020);
    assert_piece(a, 3, 200, 100, false, 0);
    g_array_unref(a);

    /* exactly the first sector */
    extmap_update(m, 50, 1, 9000);
    a = lookup(m, 50, 3);
    g_assert_cmpuint(a->len, ==, 2);
    assert_piece(a, 0, 50, 1, true, 9000);
    assert_piece(a, 1, 51, 2, true, 7001);
    extmap_free(m);
}

static void test_split_tail(void)
{
    struct extmap *m = extmap_new();
    g_autoptr(GArray) a = NULL;

    extmap_update(m, 100, 100, 1000);
    /* starts inside the extent, ends after it */
    extmap_update(m, 180, 50, 3000);
    a = lookup(m, 100, 200);
    g_assert_cmpuint(a->len, ==, 3);
    assert_piece(a, 0, 100, 80, true, 1000);
    assert_piece(a, 1, 180, 50, true, 3000);
    assert_piece(a, 2, 230, 70, false, 0);
    g_array_unref(a);

    /* exactly the last sector */
    extmap_update(m, 229, 1, 4000);
    a = lookup(m, 228, 2);
    g_assert_cmpuint(a->len, ==, 2);
    assert_piece(a, 0, 228, 1, true, 3048);
    assert_piece(a, 1, 229, 1, true, 4000);
    extmap_free(m);
}

static void test_trim_splits(void)
{
    struct extmap *m = extmap_new();
    g_autoptr(GArray) a = NULL;

    extmap_update(m, 0, 1000, 1ULL << 32);
    extmap_trim(m, 0, 10);          /* head */
    extmap_trim(m, 990, 10);        /* tail */
    extmap_trim(m, 500, 100);       /* middle */
    g_assert_cmpuint(extmap_count(m), ==, 2);
    a = all_extents(m);
    g_assert_cmpuint(a->len, ==, 2);
    assert_piece(a, 0, 10, 490, true, (1ULL << 32) + 10);
    assert_piece(a, 1, 600, 390, true, (1ULL << 32) + 600);
    g_array_unref(a);

    /* a trim covering several extents and the gaps between them */
    extmap_update(m, 2000, 10, 1);
    extmap_update(m, 2020, 10, 2);
    extmap_trim(m, 400, 1700);
    a = all_extents(m);
    g_assert_cmpuint(a->len, ==, 1);
    assert_piece(a, 0, 10, 390, true, (1ULL << 32) + 10);
    g_array_unref(a);

    /* a trim of an unmapped range changes nothing */
    extmap_trim(m, 5000, 10);
    g_assert_cmpuint(extmap_count(m), ==, 1);

    /* replacing an extent exactly, then covering several */
    extmap_update(m, 10, 390, 42);
    a = all_extents(m);
    g_assert_cmpuint(a->len, ==, 1);
    assert_piece(a, 0, 10, 390, true, 42);
    g_array_unref(a);
    extmap_update(m, 20, 10, 1);
    extmap_update(m, 40, 10, 2);
    extmap_update(m, 0, 500, 3);
    a = all_extents(m);
    g_assert_cmpuint(a->len, ==, 1);
    assert_piece(a, 0, 0, 500, true, 3);

    extmap_clear(m);
    g_assert_cmpuint(extmap_count(m), ==, 0);
    extmap_update(m, 1, 1, 1);
    g_assert_cmpuint(extmap_count(m), ==, 1);
    extmap_free(m);
}

/* Adjacent extents are not merged: they may point anywhere. */
static void test_adjacent(void)
{
    struct extmap *m = extmap_new();
    g_autoptr(GArray) a = NULL;

    extmap_update(m, 0, 10, 100);
    extmap_update(m, 10, 10, 110);
    extmap_update(m, 20, 10, 999);
    a = lookup(m, 5, 20);
    g_assert_cmpuint(a->len, ==, 3);
    assert_piece(a, 0, 5, 5, true, 105);
    assert_piece(a, 1, 10, 10, true, 110);
    assert_piece(a, 2, 20, 5, true, 999);
    extmap_free(m);
}

/* Large LBAs and locations near the top of their ranges. */
static void test_large_values(void)
{
    struct extmap *m = extmap_new();
    g_autoptr(GArray) a = NULL;
    uint64_t base = 1ULL << 40;

    extmap_update(m, base, 1ULL << 20, 0x7fffffffULL << 32);
    extmap_update(m, base + 10, 1, 1ULL << 63);
    a = lookup(m, base - 1, 13);
    g_assert_cmpuint(a->len, ==, 4);
    assert_piece(a, 0, base - 1, 1, false, 0);
    assert_piece(a, 1, base, 10, true, 0x7fffffffULL << 32);
    assert_piece(a, 2, base + 10, 1, true, 1ULL << 63);
    assert_piece(a, 3, base + 11, 1, true, (0x7fffffffULL << 32) + 11);
    extmap_free(m);
}

struct stop_ctx {
    int calls;
    int stop_at;
};

static int stop_after(void *arg, uint64_t lba G_GNUC_UNUSED,
                      uint64_t len G_GNUC_UNUSED, bool mapped G_GNUC_UNUSED,
                      uint64_t loc G_GNUC_UNUSED)
{
    struct stop_ctx *c = arg;

    return ++c->calls == c->stop_at ? -42 : 0;
}

static void test_early_stop(void)
{
    struct extmap *m = extmap_new();
    struct stop_ctx c = { 0, 2 };

    extmap_update(m, 10, 10, 1);
    extmap_update(m, 30, 10, 2);
    /* gap, extent (stop here), gap, extent, gap */
    g_assert_cmpint(extmap_lookup(m, 0, 50, stop_after, &c), ==, -42);
    g_assert_cmpint(c.calls, ==, 2);
    c = (struct stop_ctx){ 0, 1 };
    g_assert_cmpint(extmap_foreach(m, stop_after, &c), ==, -42);
    g_assert_cmpint(c.calls, ==, 1);
    c = (struct stop_ctx){ 0, 100 };
    g_assert_cmpint(extmap_lookup(m, 0, 50, stop_after, &c), ==, 0);
    g_assert_cmpint(c.calls, ==, 5);
    extmap_free(m);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/extmap/empty", test_empty);
    g_test_add_func("/extmap/split-middle", test_split_middle);
    g_test_add_func("/extmap/split-head", test_split_head);
    g_test_add_func("/extmap/split-tail", test_split_tail);
    g_test_add_func("/extmap/trim-splits", test_trim_splits);
    g_test_add_func("/extmap/adjacent", test_adjacent);
    g_test_add_func("/extmap/large-values", test_large_values);
    g_test_add_func("/extmap/early-stop", test_early_stop);
    g_test_add_func("/extmap/model", test_model);
    return g_test_run();
}
