/*
 * test-extmap-btree - the extent map's B+-tree: a long randomized
 * differential run against a model, with small nodes for deep trees and
 * the tree's invariants checked as it goes, plus memory, wide-entry and
 * edge-of-space cases.
 *
 * The model is a few windows of the LBA space, each an array with one
 * slot per unit (a sector, or 2^30 sectors for a coarse window whose
 * extents are too long for narrow leaf entries).  A slot holds the
 * location of its first sector and the id of the update that wrote it;
 * since adjacent extents are never merged, the map's extents are exactly
 * the model's runs of equal id.
 *
 * LSVD_TEST_OPS sets the number of random operations of the main run
 * (default 1000000) and LSVD_TEST_SEED the seed (default 1).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "extmap.h"

#define LOC_ZERO (1ULL << 63)

/* xorshift64* */
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

static void assert_valid(struct extmap *m)
{
    const char *err = extmap_check(m);

    if (err) {
        g_error("%s", err);
    }
}

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

/* ---- the model -------------------------------------------------------- */

struct window {
    uint64_t base;      /* first sector */
    uint64_t unit;      /* sectors per slot */
    uint64_t nunits;
    uint64_t *loc;      /* location of the slot's first sector */
    uint64_t *id;       /* update that wrote the slot; 0: unmapped */
};

static struct window win[] = {
    { 0, 1, 200000 },                               /* low LBAs */
    { (1ULL << 40) - 50000, 1, 100000 },            /* across 2^40 */
    { 1ULL << 50, 1ULL << 30, 64 },                 /* very long extents */
    { UINT64_MAX - 20000, 1, 20000 },               /* the top */
};
#define NWIN G_N_ELEMENTS(win)

static uint64_t next_id;

static uint64_t win_end(const struct window *w)
{
    return w->base + w->unit * w->nunits;
}

static void model_reset(void)
{
    for (unsigned i = 0; i < NWIN; i++) {
        if (!win[i].loc) {
            win[i].loc = g_new(uint64_t, win[i].nunits);
            win[i].id = g_new(uint64_t, win[i].nunits);
        }
        memset(win[i].id, 0, win[i].nunits * sizeof(uint64_t));
    }
}

static void model_free(void)
{
    for (unsigned i = 0; i < NWIN; i++) {
        g_clear_pointer(&win[i].loc, g_free);
        g_clear_pointer(&win[i].id, g_free);
    }
}

/*
 * Apply [lba, end) to every window: map it (id != 0) or unmap it.  Ends
 * inside a coarse window must be on its unit boundaries.
 */
static void model_apply(uint64_t lba, uint64_t end, uint64_t id,
                        uint64_t loc)
{
    for (unsigned i = 0; i < NWIN; i++) {
        struct window *w = &win[i];
        uint64_t s = MAX(lba, w->base), e = MIN(end, win_end(w));

        if (s >= e) {
            continue;
        }
        g_assert_cmpuint((s - w->base) % w->unit, ==, 0);
        g_assert_cmpuint((e - w->base) % w->unit, ==, 0);
        for (uint64_t u = (s - w->base) / w->unit;
             u < (e - w->base) / w->unit; u++) {
            w->id[u] = id;
            w->loc[u] = loc + (w->base + u * w->unit - lba);
        }
    }
}

/* The window holding sector @s, or NULL. */
static struct window *window_of(uint64_t s)
{
    for (unsigned i = 0; i < NWIN; i++) {
        if (s >= win[i].base && s < win_end(&win[i])) {
            return &win[i];
        }
    }
    return NULL;
}

/* A random position in window @w (a unit boundary), or its end. */
static uint64_t rnd_pos(const struct window *w)
{
    return w->base + rnd_below(w->nunits + 1) * w->unit;
}

/* A random range in @w: mostly short, sometimes long or at an edge. */
static void rnd_range(const struct window *w, uint64_t *lba, uint64_t *len)
{
    uint64_t r = rnd_below(10000), n;

    if (r < 9000) {
        n = 1 + rnd_below(MIN(8, w->nunits));
    } else if (r < 9995) {
        n = 1 + rnd_below(MIN(64, w->nunits));
    } else {
        n = 1 + rnd_below(w->nunits);
    }
    r = rnd_below(100);
    if (r < 3) {
        *lba = 0;
    } else if (r < 6) {
        *lba = w->nunits - n;
    } else {
        *lba = rnd_below(w->nunits - n + 1);
    }
    *lba = w->base + *lba * w->unit;
    *len = n * w->unit;
}

static uint64_t rnd_loc(void)
{
    switch (rnd_below(5)) {
    case 0:
        return rnd_below(1 << 20);
    case 1:
        return (1 + rnd_below(1000)) << 32 | rnd_below(1 << 20);
    case 2:
        return LOC_ZERO | rnd_below(1 << 20);
    case 3:
        return UINT64_MAX - rnd_below(1 << 16);     /* wraps when advanced */
    default:
        return rnd();
    }
}

/* The map holds exactly the model's runs. */
static void check_whole(struct extmap *m)
{
    g_autoptr(GArray) a = all_extents(m);
    guint k = 0;

    assert_valid(m);
    g_assert_cmpuint(extmap_count(m), ==, a->len);
    for (unsigned i = 0; i < NWIN; i++) {
        struct window *w = &win[i];

        for (uint64_t u = 0; u < w->nunits;) {
            uint64_t v = u + 1;
            struct piece *p;

            if (!w->id[u]) {
                u++;
                continue;
            }
            while (v < w->nunits && w->id[v] == w->id[u]) {
                v++;
            }
            g_assert_cmpuint(k, <, a->len);
            p = &g_array_index(a, struct piece, k);
            g_assert_cmphex(p->lba, ==, w->base + u * w->unit);
            g_assert_cmphex(p->len, ==, (v - u) * w->unit);
            for (uint64_t x = u; x < v; x++) {
                g_assert_cmphex(w->loc[x], ==,
                                p->loc + (x - u) * w->unit);
            }
            k++;
            u = v;
        }
    }
    g_assert_cmpuint(k, ==, a->len);
}

/* A lookup of [lba, lba+len) agrees with the model piece by piece. */
static void check_lookup(struct extmap *m, uint64_t lba, uint64_t len)
{
    g_autoptr(GArray) a = lookup(m, lba, len);
    uint64_t pos = lba;

    for (guint i = 0; i < a->len; i++) {
        struct piece *p = &g_array_index(a, struct piece, i);
        uint64_t end = p->lba + p->len, id = 0;
        struct window *w;

        g_assert_cmphex(p->lba, ==, pos);
        g_assert_cmpuint(p->len, >, 0);
        g_assert_cmpuint(p->len, <=, lba + len - pos);
        if (i > 0 && !p->mapped) {
            g_assert_true(g_array_index(a, struct piece, i - 1).mapped);
        }
        if (p->mapped) {
            /* one extent, inside one window, matching it slot by slot */
            w = window_of(p->lba);
            g_assert_nonnull(w);
            g_assert_cmphex(end, <=, win_end(w));
            for (uint64_t u = (p->lba - w->base) / w->unit;
                 u < w->nunits && w->base + u * w->unit < end; u++) {
                uint64_t ubase = w->base + u * w->unit;
                uint64_t s = MAX(p->lba, ubase);

                g_assert_cmpuint(w->id[u], !=, 0);
                if (id) {
                    g_assert_cmpuint(w->id[u], ==, id);
                }
                id = w->id[u];
                g_assert_cmphex(w->loc[u] + (s - ubase), ==,
                                p->loc + (s - p->lba));
            }
        } else {
            for (unsigned k = 0; k < NWIN; k++) {
                uint64_t s = MAX(p->lba, win[k].base);
                uint64_t e = MIN(end, win_end(&win[k]));

                for (; s < e; s += win[k].unit) {
                    uint64_t u = (s - win[k].base) / win[k].unit;

                    g_assert_cmpuint(win[k].id[u], ==, 0);
                    s = win[k].base + u * win[k].unit;
                }
            }
        }
        pos = end;
    }
    g_assert_cmphex(pos, ==, lba + len);
}

/* ---- the randomized run ---------------------------------------------- */

struct run_stats {
    uint64_t updates, trims, wide_trims, lookups, clears, max_count;
};

static void run_model(size_t node_bytes, uint64_t ops, uint64_t seed)
{
    struct extmap *m = extmap_new_sized(node_bytes);
    size_t empty_bytes = extmap_memory(m);
    struct run_stats st = { 0 };
    uint64_t check_every = node_bytes <= 512 ? 997 : 4999;

    g_test_message("node %zu bytes: %" PRIu64 " ops, seed %" PRIu64,
                   node_bytes, ops, seed);
    rng_state = seed ? seed : 1;
    next_id = 1;
    model_reset();

    for (uint64_t op = 0; op < ops; op++) {
        uint64_t r = rnd_below(100000), lba, len;
        /* mostly the two big fine windows */
        uint64_t wr = rnd_below(100);
        struct window *w = &win[wr < 45 ? 0 : wr < 80 ? 1 : wr < 88 ? 2 : 3];

        rnd_range(w, &lba, &len);
        if (r < 50000) {
            uint64_t loc = rnd_loc();

            extmap_update(m, lba, len, loc);
            model_apply(lba, lba + len, next_id++, loc);
            st.updates++;
        } else if (r < 50500) {
            /* a sequential writer: a run of ascending or descending
             * extents, adjacent or not (uneven splits) */
            uint64_t n = 1 + rnd_below(200), step = 1 + rnd_below(4);
            uint64_t gap = rnd_below(2), stride = (step + gap) * w->unit;
            bool down = rnd_below(2);

            n = MIN(n, w->nunits / (step + gap));
            lba = w->base + rnd_below(w->nunits - n * (step + gap) + 1) *
                  w->unit;
            for (uint64_t k = 0; k < n; k++) {
                uint64_t at = lba + (down ? n - 1 - k : k) * stride;
                uint64_t loc = rnd_loc();

                extmap_update(m, at, step * w->unit, loc);
                model_apply(at, at + step * w->unit, next_id++, loc);
            }
            st.updates += n;
        } else if (r < 68000) {
            extmap_trim(m, lba, len);
            model_apply(lba, lba + len, 0, 0);
            st.trims++;
        } else if (r < 68020) {
            /* a trim across windows, often across many extents */
            struct window *a = &win[rnd_below(NWIN)];
            struct window *b = &win[rnd_below(NWIN)];
            uint64_t s = rnd_pos(a), e = rnd_pos(b);

            if (rnd_below(20) == 0) {
                s = 0;
                e = UINT64_MAX;
            }
            if (s > e) {
                uint64_t t = s;
                s = e;
                e = t;
            }
            extmap_trim(m, s, e - s);
            model_apply(s, e, 0, 0);
            st.wide_trims++;
        } else if (r < 68021) {
            extmap_clear(m);
            model_reset();
            st.clears++;
        } else if (r < 98000) {
            /* a lookup that may start and end anywhere in the window */
            uint64_t skew = w->unit > 1 ? rnd_below(w->unit) : 0;

            check_lookup(m, lba + skew, len - skew);
            st.lookups++;
        } else {
            /* a lookup across windows, through the gaps between them */
            unsigned a = rnd_below(NWIN), b = a + rnd_below(NWIN - a);
            uint64_t s = win[a].base + rnd_below(win[a].nunits) * win[a].unit;
            uint64_t e = win[b].base + rnd_below(win[b].nunits) * win[b].unit;

            if (b > a) {
                check_lookup(m, s, e - s);
            } else {
                check_lookup(m, MIN(s, e), MAX(s, e) - MIN(s, e));
            }
            st.lookups++;
        }
        st.max_count = MAX(st.max_count, extmap_count(m));
        if (extmap_count(m) == 0) {
            /* nothing mapped: every node is gone */
            g_assert_cmpuint(extmap_memory(m), ==, empty_bytes);
        }
        if (op % check_every == 0) {
            check_whole(m);
        }
    }
    check_whole(m);
    check_lookup(m, 0, UINT64_MAX);
    g_test_message("%" PRIu64 " updates, %" PRIu64 " trims (%" PRIu64
                   " across windows), %" PRIu64 " lookups, %" PRIu64
                   " clears; at most %" PRIu64 " extents; now %zu extents "
                   "in %zu bytes",
                   st.updates, st.trims, st.wide_trims, st.lookups,
                   st.clears, st.max_count, extmap_count(m),
                   extmap_memory(m));
    g_assert_cmpuint(st.max_count, >, 1000);
    extmap_trim(m, 0, UINT64_MAX);
    g_assert_cmpuint(extmap_count(m), ==, 0);
    g_assert_cmpuint(extmap_memory(m), ==, empty_bytes);
    assert_valid(m);
    extmap_free(m);
    model_free();
}

static void test_model_deep(void)
{
    run_model(256, env_u64("LSVD_TEST_OPS", 1000000),
              env_u64("LSVD_TEST_SEED", 1));
}

static void test_model_sizes(void)
{
    static const size_t sizes[] = { 192, 512, 1024, 4096 };
    uint64_t ops = env_u64("LSVD_TEST_OPS", 1000000) / 5;

    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        run_model(sizes[i], ops, env_u64("LSVD_TEST_SEED", 1) + i + 1);
    }
}

/* ---- memory --------------------------------------------------------- */

#define SLOT 64         /* sectors per slot: one extent of <= 48 in each */

static double fill_bytes_per_extent(struct extmap *m, uint64_t n,
                                    const uint64_t *order)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t s = order ? order[i] : i;

        extmap_update(m, s * SLOT + rnd_below(16), 1 + rnd_below(32),
                      (1 + rnd_below(1000)) << 32 | rnd_below(1 << 22));
    }
    assert_valid(m);
    g_assert_cmpuint(extmap_count(m), ==, n);
    return (double)extmap_memory(m) / n;
}

static void test_memory(void)
{
    uint64_t n = 1000000;
    g_autofree uint64_t *order = g_new(uint64_t, n);
    struct extmap *m;
    size_t empty_bytes;
    double bpe;

    rng_state = 42;
    for (uint64_t i = 0; i < n; i++) {
        order[i] = i;
    }
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = rnd_below(i + 1), t = order[i];

        order[i] = order[j];
        order[j] = t;
    }

    m = extmap_new();
    empty_bytes = extmap_memory(m);
    bpe = fill_bytes_per_extent(m, n, order);
    g_test_message("random order: %.2f bytes per extent", bpe);
    g_assert_cmpfloat(bpe, <=, 24.0);

    /* one trim over all of them frees every node */
    extmap_trim(m, 0, n * SLOT);
    g_assert_cmpuint(extmap_count(m), ==, 0);
    g_assert_cmpuint(extmap_memory(m), ==, empty_bytes);

    bpe = fill_bytes_per_extent(m, n, NULL);
    g_test_message("ascending: %.2f bytes per extent", bpe);
    g_assert_cmpfloat(bpe, <=, 24.0);
    extmap_clear(m);
    g_assert_cmpuint(extmap_memory(m), ==, empty_bytes);

    for (uint64_t i = 0; i < n; i++) {
        order[i] = n - 1 - i;
    }
    bpe = fill_bytes_per_extent(m, n, order);
    g_test_message("descending: %.2f bytes per extent", bpe);
    g_assert_cmpfloat(bpe, <=, 24.0);

    /* trim every other extent: leaves merge, and memory follows */
    for (uint64_t i = 0; i < n; i += 2) {
        extmap_trim(m, i * SLOT, SLOT);
    }
    assert_valid(m);
    bpe = (double)extmap_memory(m) / extmap_count(m);
    g_test_message("after trimming half: %.2f bytes per extent", bpe);
    g_assert_cmpfloat(bpe, <=, 32.0);
    extmap_free(m);
}

/* A trim over many extents costs about one pass over them. */
static void test_big_trim(void)
{
    struct extmap *m = extmap_new();
    uint64_t n = 500000;
    gint64 t0;

    for (uint64_t i = 0; i < n; i++) {
        extmap_update(m, i * 4, 2, i);
    }
    /* from the middle of one extent to the middle of another */
    t0 = g_get_monotonic_time();
    extmap_trim(m, 5, (n - 4) * 4);
    g_test_message("trim of %" PRIu64 " extents: %" PRId64 " us", n,
                   g_get_monotonic_time() - t0);
    assert_valid(m);
    /* [0, 2), [4, 5), [4n - 11, 4n - 10) and the last two */
    g_assert_cmpuint(extmap_count(m), ==, 5);
    g_assert_cmpuint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
    extmap_free(m);
}

/* ---- wide entries and the edges of the LBA space -------------------- */

static void assert_piece(GArray *a, guint i, uint64_t lba, uint64_t len,
                         bool mapped, uint64_t loc)
{
    struct piece *p;

    g_assert_cmpuint(i, <, a->len);
    p = &g_array_index(a, struct piece, i);
    g_assert_cmphex(p->lba, ==, lba);
    g_assert_cmphex(p->len, ==, len);
    g_assert_cmpint(p->mapped, ==, mapped);
    if (mapped) {
        g_assert_cmphex(p->loc, ==, loc);
    }
}

static void test_wide(void)
{
    struct extmap *m = extmap_new_sized(256);
    g_autoptr(GArray) a = NULL;
    uint64_t big = 5ULL << 32;

    /* an extent longer than 2^32 sectors stays one extent */
    extmap_update(m, 1000, big, 7);
    g_assert_cmpuint(extmap_count(m), ==, 1);
    a = all_extents(m);
    assert_piece(a, 0, 1000, big, true, 7);
    g_clear_pointer(&a, g_array_unref);

    /* split it far from its start: the tail's location advances */
    extmap_update(m, 1000 + (3ULL << 32), 10, LOC_ZERO | 3);
    a = all_extents(m);
    g_assert_cmpuint(a->len, ==, 3);
    assert_piece(a, 0, 1000, 3ULL << 32, true, 7);
    assert_piece(a, 1, 1000 + (3ULL << 32), 10, true, LOC_ZERO | 3);
    assert_piece(a, 2, 1010 + (3ULL << 32), (2ULL << 32) - 10, true,
                 7 + (3ULL << 32) + 10);
    g_clear_pointer(&a, g_array_unref);

    /* many small extents around and inside it: leaves of both kinds */
    for (uint64_t i = 0; i < 2000; i++) {
        extmap_update(m, (i * 3) << 28, 1 + i % 5, i << 40);
        extmap_update(m, i * 7, 3, i);
        assert_valid(m);
    }
    for (uint64_t i = 0; i < 2000; i += 3) {
        extmap_trim(m, (i * 3) << 28, 2);
        assert_valid(m);
    }
    /* inside what is left of the long extent */
    a = lookup(m, (3ULL << 28) - 1, 3);
    assert_piece(a, 0, (3ULL << 28) - 1, 1, true, 7 + (3ULL << 28) - 1001);
    assert_piece(a, 1, 3ULL << 28, 2, true, 1ULL << 40);
    g_clear_pointer(&a, g_array_unref);
    extmap_trim(m, 0, UINT64_MAX);
    g_assert_cmpuint(extmap_count(m), ==, 0);
    assert_valid(m);
    extmap_free(m);
}

static void test_top_of_space(void)
{
    struct extmap *m = extmap_new_sized(256);
    g_autoptr(GArray) a = NULL;
    uint64_t top = UINT64_MAX;

    /* ranges are clamped at UINT64_MAX */
    extmap_update(m, top - 10, 100, 1);
    extmap_update(m, top, 5, 2);
    g_assert_cmpuint(extmap_count(m), ==, 1);
    a = all_extents(m);
    assert_piece(a, 0, top - 10, 10, true, 1);
    g_clear_pointer(&a, g_array_unref);
    a = lookup(m, top - 12, 1000);
    g_assert_cmpuint(a->len, ==, 2);
    assert_piece(a, 0, top - 12, 2, false, 0);
    assert_piece(a, 1, top - 10, 10, true, 1);
    g_clear_pointer(&a, g_array_unref);

    /* the whole space in one extent, then split at both ends */
    extmap_update(m, 0, top, 100);
    extmap_trim(m, 0, 1);
    extmap_trim(m, top - 1, 1);
    a = all_extents(m);
    g_assert_cmpuint(a->len, ==, 1);
    assert_piece(a, 0, 1, top - 2, true, 101);
    g_clear_pointer(&a, g_array_unref);
    extmap_trim(m, 1ULL << 62, 1);
    a = all_extents(m);
    g_assert_cmpuint(a->len, ==, 2);
    assert_piece(a, 1, (1ULL << 62) + 1, top - (1ULL << 62) - 2, true,
                 100 + (1ULL << 62) + 1);
    g_clear_pointer(&a, g_array_unref);
    assert_valid(m);
    extmap_free(m);
}

/* A location with bit 63 set is just a number: the tail adds to it. */
static void test_loc_zero(void)
{
    struct extmap *m = extmap_new();
    g_autoptr(GArray) a = NULL;

    extmap_update(m, 100, 50, LOC_ZERO);
    extmap_trim(m, 110, 5);
    a = all_extents(m);
    assert_piece(a, 0, 100, 10, true, LOC_ZERO);
    assert_piece(a, 1, 115, 35, true, LOC_ZERO + 15);
    extmap_free(m);
}

/* Fill to several levels, then empty it again one extent at a time. */
static void test_grow_shrink(void)
{
    struct extmap *m = extmap_new_sized(192);
    size_t empty_bytes = extmap_memory(m);
    uint64_t n = 20000;

    rng_state = 7;
    for (uint64_t i = 0; i < n; i++) {
        extmap_update(m, rnd_below(n) * 10, 5, i);
    }
    assert_valid(m);
    for (uint64_t i = 0; i < n; i++) {
        extmap_trim(m, rnd_below(n) * 10, 5);
        if (i % 97 == 0) {
            assert_valid(m);
        }
    }
    for (uint64_t i = 0; i < n; i++) {
        extmap_trim(m, i * 10, 5);
    }
    g_assert_cmpuint(extmap_count(m), ==, 0);
    g_assert_cmpuint(extmap_memory(m), ==, empty_bytes);
    assert_valid(m);
    extmap_free(m);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/extmap-btree/wide", test_wide);
    g_test_add_func("/extmap-btree/top-of-space", test_top_of_space);
    g_test_add_func("/extmap-btree/loc-zero", test_loc_zero);
    g_test_add_func("/extmap-btree/grow-shrink", test_grow_shrink);
    g_test_add_func("/extmap-btree/big-trim", test_big_trim);
    g_test_add_func("/extmap-btree/memory", test_memory);
    g_test_add_func("/extmap-btree/model-deep", test_model_deep);
    g_test_add_func("/extmap-btree/model-sizes", test_model_sizes);
    return g_test_run();
}
