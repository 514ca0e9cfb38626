/*
 * test-rcache - the read cache on its own: hits and misses, CLOCK
 * eviction, the persisted map and its checks after a restart, and
 * concurrent misses on one block sharing one fill.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "format.h"
#include "rcache.h"

#define BS 65536u

static const uint8_t uuid_a[LSVD_UUID_LEN] = { 1, 2, 3 };
static const uint8_t uuid_b[LSVD_UUID_LEN] = { 9, 9, 9 };

struct fix {
    char *dir;
    char *base;
};

static void fix_setup(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    GError *gerr = NULL;

    f->dir = g_dir_make_tmp("lsvd-rcache-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    f->base = g_build_filename(f->dir, "vol", NULL);
}

static void fix_teardown(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    rcache_remove(f->base);
    g_assert_cmpint(g_rmdir(f->dir), ==, 0);
    g_free(f->base);
    g_free(f->dir);
}

static struct rcache *open_rc(struct fix *f, const uint8_t *uuid,
                              uint32_t slots)
{
    struct lsvd_err err = { { 0 } };
    struct rcache *rc = NULL;

    g_assert_cmpint(rcache_open(f->base, uuid, (uint64_t)slots * BS, BS, &rc,
                                &err), ==, 0);
    return rc;
}

/* A block's contents: every byte names the key. */
static void pattern(uint8_t *buf, uint64_t seq, uint32_t block, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seq * 31 + block * 7 + i / 512);
    }
}

static void fill(struct rcache *rc, uint64_t seq, uint32_t block,
                 uint32_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);
    uint32_t slot;

    g_assert_cmpint(rcache_get(rc, seq, block, true, true, &slot), ==,
                    RCACHE_CLAIMED);
    pattern(buf, seq, block, len);
    rcache_fill(rc, slot, buf, len, false);
}

/* Is (seq, block) cached with the right data?  A miss is given back. */
static bool cached(struct rcache *rc, uint64_t seq, uint32_t block,
                   uint32_t len)
{
    g_autofree uint8_t *buf = g_malloc(len), *want = g_malloc(len);
    uint32_t slot;

    switch (rcache_get(rc, seq, block, true, true, &slot)) {
    case RCACHE_HIT:
        g_assert_cmpint(rcache_read(rc, slot, 0, buf, len), ==, 0);
        rcache_put(rc, slot);
        pattern(want, seq, block, len);
        g_assert_true(memcmp(buf, want, len) == 0);
        return true;
    case RCACHE_CLAIMED:
        rcache_abort(rc, slot);
        return false;
    default:
        g_assert_not_reached();
    }
}

static void test_hit_miss(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct rcache *rc = open_rc(f, uuid_a, 16);
    struct rcache_counters c;
    uint8_t part[1024], want[BS];
    uint32_t slot;

    g_assert_false(cached(rc, 5, 0, BS));
    fill(rc, 5, 0, BS);
    fill(rc, 5, 1, 4096);               /* an object's short last block */
    g_assert_true(cached(rc, 5, 0, BS));
    g_assert_true(cached(rc, 5, 1, 4096));
    g_assert_false(cached(rc, 6, 0, BS));   /* other object, same block */

    /* a part of a block, and nothing past its end */
    g_assert_cmpint(rcache_get(rc, 5, 0, true, true, &slot), ==, RCACHE_HIT);
    g_assert_cmpint(rcache_read(rc, slot, 3072, part, sizeof(part)), ==, 0);
    pattern(want, 5, 0, BS);
    g_assert_true(memcmp(part, want + 3072, sizeof(part)) == 0);
    rcache_put(rc, slot);
    g_assert_cmpint(rcache_get(rc, 5, 1, true, true, &slot), ==, RCACHE_HIT);
    g_assert_cmpint(rcache_read(rc, slot, 4096 - 512, part, 1024), ==, -EIO);
    rcache_put(rc, slot);

    rcache_counters(rc, &c);
    g_assert_cmpuint(c.hits, ==, 4);
    g_assert_cmpuint(c.misses, ==, 4);
    g_assert_cmpuint(c.fills, ==, 2);
    g_assert_cmpuint(c.used_slots, ==, 2);
    g_assert_cmpuint(c.n_slots, ==, 16);
    rcache_close(rc);
}

/* CLOCK: blocks read since the hand passed survive, the others go. */
static void test_clock(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct rcache *rc = open_rc(f, uuid_a, 16);
    struct rcache_counters c;

    for (uint32_t b = 0; b < 16; b++) {
        fill(rc, 1, b, BS);
    }
    /* a full cache: the next fill sweeps every reference bit off and
     * takes slot 0; then blocks 1..7 are read again */
    fill(rc, 2, 0, BS);
    for (uint32_t b = 1; b < 8; b++) {
        g_assert_true(cached(rc, 1, b, BS));
    }
    for (uint32_t b = 1; b <= 8; b++) {
        fill(rc, 3, b, BS);
    }
    /* the eight new blocks took the slots of blocks 8..15, not 1..7 */
    rcache_counters(rc, &c);
    g_assert_cmpuint(c.evictions, ==, 9);
    g_assert_cmpuint(c.used_slots, ==, 16);
    g_assert_true(cached(rc, 2, 0, BS));
    for (uint32_t b = 1; b < 8; b++) {
        g_assert_true(cached(rc, 1, b, BS));
    }
    for (uint32_t b = 1; b <= 8; b++) {
        g_assert_true(cached(rc, 3, b, BS));
    }
    /* (a miss claims a slot, evicting: look for them last) */
    for (uint32_t b = 8; b < 16; b++) {
        g_assert_false(cached(rc, 1, b, BS));
    }
    rcache_close(rc);
}

/* A reader's slot is never taken from under it, nor a slot being filled. */
static void test_busy_slots(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct rcache *rc = open_rc(f, uuid_a, 16);
    uint32_t held[16], slot;

    for (uint32_t b = 0; b < 16; b++) {
        fill(rc, 1, b, BS);
        g_assert_cmpint(rcache_get(rc, 1, b, true, true, &held[b]), ==,
                        RCACHE_HIT);
    }
    g_assert_cmpint(rcache_get(rc, 9, 0, true, true, &slot), ==,
                    RCACHE_NONE);
    rcache_put(rc, held[3]);
    g_assert_cmpint(rcache_get(rc, 9, 0, true, true, &slot), ==,
                    RCACHE_CLAIMED);
    g_assert_cmpuint(slot, ==, held[3]);
    /* being filled: a second lookup without waiting gets NONE */
    g_assert_cmpint(rcache_get(rc, 9, 0, false, true, &held[3]), ==,
                    RCACHE_NONE);
    rcache_abort(rc, slot);
    for (uint32_t b = 0; b < 16; b++) {
        if (b != 3) {
            rcache_put(rc, held[b]);
        }
    }
    rcache_close(rc);
}

static void test_persist(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct rcache *rc = open_rc(f, uuid_a, 16);
    struct rcache_counters c;

    for (uint32_t b = 0; b < 10; b++) {
        fill(rc, 7, b, b == 9 ? 8192 : BS);
    }
    rcache_close(rc);               /* saves the map */

    rc = open_rc(f, uuid_a, 16);
    rcache_counters(rc, &c);
    g_assert_cmpuint(c.used_slots, ==, 10);
    for (uint32_t b = 0; b < 10; b++) {
        g_assert_true(cached(rc, 7, b, b == 9 ? 8192 : BS));
    }
    rcache_counters(rc, &c);
    g_assert_cmpuint(c.hits, ==, 10);
    g_assert_cmpuint(c.bad_blocks, ==, 0);
    rcache_close(rc);

    /* another volume's cache, or another geometry: starts empty */
    rc = open_rc(f, uuid_b, 16);
    rcache_counters(rc, &c);
    g_assert_cmpuint(c.used_slots, ==, 0);
    g_assert_false(cached(rc, 7, 0, BS));
    rcache_close(rc);
    rc = open_rc(f, uuid_a, 32);
    rcache_counters(rc, &c);
    g_assert_cmpuint(c.used_slots, ==, 0);
    rcache_close(rc);
}

/*
 * A crash after a slot was reused but before the map was saved again: the
 * old map names the slot for its old block; the CRC catches it and the
 * block is refilled instead of served.
 */
static void test_stale_slot(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct rcache *rc = open_rc(f, uuid_a, 16);
    g_autofree char *data = g_strconcat(f->base, ".rcache", NULL);
    struct rcache_counters c;
    uint8_t junk[512];
    int fd;

    fill(rc, 3, 0, BS);
    fill(rc, 3, 1, BS);
    g_assert_cmpint(rcache_persist(rc), ==, 0);
    rcache_close(rc);

    /* overwrite a sector of block (3, 1)'s slot behind the map's back */
    fd = open(data, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    memset(junk, 0xee, sizeof(junk));
    for (uint32_t s = 0; s < 2; s++) {
        g_assert_cmpint(pwrite(fd, junk, sizeof(junk), s * BS + 4096), ==,
                        sizeof(junk));
    }
    close(fd);

    rc = open_rc(f, uuid_a, 16);
    g_assert_false(cached(rc, 3, 0, BS));
    g_assert_false(cached(rc, 3, 1, BS));
    rcache_counters(rc, &c);
    g_assert_cmpuint(c.bad_blocks, ==, 2);
    g_assert_cmpuint(c.used_slots, ==, 0);
    fill(rc, 3, 1, BS);
    g_assert_true(cached(rc, 3, 1, BS));
    rcache_close(rc);
}

/* A damaged map file is not trusted: the cache starts empty. */
static void test_bad_map(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct rcache *rc = open_rc(f, uuid_a, 16);
    g_autofree char *map = g_strconcat(f->base, ".rcmap", NULL);
    g_autofree char *buf = NULL;
    struct rcache_counters c;
    gsize len;

    fill(rc, 4, 0, BS);
    rcache_close(rc);
    g_assert_true(g_file_get_contents(map, &buf, &len, NULL));
    buf[RCMAP_FIXED_LEN + 12] ^= 1;     /* the entry's slot number */
    g_assert_true(g_file_set_contents(map, buf, len, NULL));
    rc = open_rc(f, uuid_a, 16);
    rcache_counters(rc, &c);
    g_assert_cmpuint(c.used_slots, ==, 0);
    rcache_close(rc);
}

struct waiter {
    struct rcache *rc;
    enum rcache_result res;
    uint8_t buf[BS];
};

static gpointer wait_for_block(gpointer arg)
{
    struct waiter *w = arg;
    uint32_t slot;

    w->res = rcache_get(w->rc, 11, 2, true, true, &slot);
    if (w->res == RCACHE_HIT) {
        g_assert_cmpint(rcache_read(w->rc, slot, 0, w->buf, BS), ==, 0);
        rcache_put(w->rc, slot);
    } else if (w->res == RCACHE_CLAIMED) {
        rcache_abort(w->rc, slot);
    }
    return NULL;
}

/* A second miss on a block being filled waits for that fill. */
static void test_shared_fill(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct rcache *rc = open_rc(f, uuid_a, 16);
    struct waiter w = { .rc = rc, .res = -1 };
    uint8_t want[BS];
    uint32_t slot;
    GThread *t;

    g_assert_cmpint(rcache_get(rc, 11, 2, true, true, &slot), ==,
                    RCACHE_CLAIMED);
    t = g_thread_new("waiter", wait_for_block, &w);
    g_usleep(100 * 1000);
    g_assert_cmpint(g_atomic_int_get((int *)&w.res), ==, -1);  /* waiting */
    pattern(want, 11, 2, BS);
    rcache_fill(rc, slot, want, BS, false);
    g_thread_join(t);
    g_assert_cmpint(w.res, ==, RCACHE_HIT);
    g_assert_true(memcmp(w.buf, want, BS) == 0);

    /* a fill given up leaves the block absent */
    g_assert_cmpint(rcache_get(rc, 11, 3, true, true, &slot), ==,
                    RCACHE_CLAIMED);
    rcache_abort(rc, slot);
    g_assert_false(cached(rc, 11, 3, BS));
    rcache_close(rc);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
    g_test_add("/rcache/" path, struct fix, NULL, fix_setup, fn, fix_teardown)
    ADD("hit-miss", test_hit_miss);
    ADD("clock", test_clock);
    ADD("busy-slots", test_busy_slots);
    ADD("persist", test_persist);
    ADD("stale-slot", test_stale_slot);
    ADD("bad-map", test_bad_map);
    ADD("shared-fill", test_shared_fill);
    return g_test_run();
}
