/*
 * test-readpath - the read path end to end through the public API:
 * journal, then read cache, then the object store, counted with
 * lsvd_stat().  The read cache is keyed by object location, so these
 * tests check what that promises: a restart serves cached blocks with no
 * GET, a newer write is never hidden by a cached block, concurrent misses
 * share one GET, and a miss prefetches what was written with the block.
 *
 * To make reads reach the read cache rather than the journal, a test
 * closes the volume (everything goes into objects) and deletes the
 * journal files, keeping the read cache's.
 */
#include <errno.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "config.h"
#include "lsvd.h"
#include "util.h"

#define MiB (1024 * 1024)

struct fix {
    char *root, *store, *cache;
    struct lsvd_config *cfg;
};

static void fix_config(struct fix *f, const char *extra)
{
    g_autofree char *text = g_strdup_printf(
        "[backend]\nurl = dir://%s\n"
        "[cache]\ndir = %s\nsize = 64M\nread_size = 16M\n%s"
        "[log]\nbatch_size = 1M\n",
        f->store, f->cache, extra);
    struct lsvd_err err = { { 0 } };

    lsvd_config_free(f->cfg);
    f->cfg = NULL;
    g_assert_cmpint(config_parse(text, strlen(text), "test", &f->cfg, &err),
                    ==, 0);
}

static void fix_setup(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    GError *gerr = NULL;

    f->root = g_dir_make_tmp("lsvd-readpath-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    f->store = g_build_filename(f->root, "store", NULL);
    f->cache = g_build_filename(f->root, "cache", NULL);
    f->cfg = NULL;
    fix_config(f, "");
}

static void rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *n;

    if (!d) {
        g_unlink(path);
        return;
    }
    while ((n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, n, NULL);
        rm_rf(p);
    }
    g_dir_close(d);
    g_rmdir(path);
}

static void fix_teardown(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    rm_rf(f->root);
    lsvd_config_free(f->cfg);
    g_free(f->root);
    g_free(f->store);
    g_free(f->cache);
}

static struct lsvd_volume *open_vol(struct fix *f, const char *name)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v = NULL;

    g_assert_cmpint(lsvd_open(f->cfg, name, 0, &v, &err), ==, 0);
    return v;
}

/* Forget the journal, keep the read cache: reads go to objects. */
static void drop_journal(struct fix *f, const char *name)
{
    const char *exts[] = { "journal", "jmap" };

    for (size_t i = 0; i < G_N_ELEMENTS(exts); i++) {
        g_autofree char *leaf = g_strdup_printf("%s.%s", name, exts[i]);
        g_autofree char *p = g_build_filename(f->cache, leaf, NULL);
        g_assert_cmpint(g_unlink(p), ==, 0);
    }
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t off, int gen)
{
    for (size_t i = 0; i < len; i += 512) {
        memset(buf + i, (int)((off + i) / 512 * 13 + gen * 101), 512);
    }
}

/* Write @len bytes at @off with pattern @gen, in 256K requests. */
static void write_gen(struct lsvd_volume *v, uint64_t off, size_t len,
                      int gen)
{
    g_autofree uint8_t *buf = g_malloc(256 * 1024);

    for (size_t done = 0; done < len; done += 256 * 1024) {
        fill_pattern(buf, 256 * 1024, off + done, gen);
        g_assert_cmpint(lsvd_write(v, off + done, buf, 256 * 1024), ==, 0);
    }
}

static void check_gen(struct lsvd_volume *v, uint64_t off, size_t len,
                      size_t step, int gen)
{
    g_autofree uint8_t *buf = g_malloc(step), *want = g_malloc(step);

    for (size_t done = 0; done < len; done += step) {
        g_assert_cmpint(lsvd_read(v, off + done, buf, step), ==, 0);
        fill_pattern(want, step, off + done, gen);
        g_assert_true(memcmp(buf, want, step) == 0);
    }
}

static struct lsvd_info stat_of(struct lsvd_volume *v)
{
    struct lsvd_info i;

    g_assert_cmpint(lsvd_stat(v, &i), ==, 0);
    return i;
}

/* The done-when of the read cache: a restart refetches nothing. */
static void test_restart_zero_gets(struct fix *f,
                                   gconstpointer d G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v;
    struct lsvd_info a, b;

    g_assert_cmpint(lsvd_create(f->cfg, "v", 64 * MiB, &err), ==, 0);
    v = open_vol(f, "v");
    write_gen(v, 0, 8 * MiB, 1);
    g_assert_cmpint(lsvd_close(v), ==, 0);

    /* first pass: every block is a miss, fetched and cached */
    drop_journal(f, "v");
    v = open_vol(f, "v");
    a = stat_of(v);
    check_gen(v, 0, 8 * MiB, 16384, 1);
    b = stat_of(v);
    g_assert_cmpuint(b.rc_misses, ==, 8 * MiB / b.rc_block);
    g_assert_cmpuint(b.rc_fills, ==, b.rc_misses);
    g_assert_cmpuint(b.be_get - a.be_get, >, 0);
    g_assert_cmpuint(b.be_get - a.be_get, <=, b.rc_misses);
    g_assert_cmpuint(b.rc_used, ==, 8 * MiB);
    g_assert_cmpint(lsvd_close(v), ==, 0);

    /* after a restart: all hits, no GET at all after open */
    drop_journal(f, "v");
    v = open_vol(f, "v");
    a = stat_of(v);
    check_gen(v, 0, 8 * MiB, 16384, 1);
    b = stat_of(v);
    g_assert_cmpuint(b.be_get, ==, a.be_get);
    g_assert_cmpuint(b.rc_misses, ==, 0);
    g_assert_cmpuint(b.rc_hits, ==, 8 * MiB / 16384);
    g_assert_cmpuint(b.rc_hit_bytes, ==, 8 * MiB);
    g_test_message("GETs at open: %" G_GUINT64_FORMAT ", after: 0",
                   a.be_get);
    g_assert_cmpint(lsvd_close(v), ==, 0);
}

/* Cached blocks of old data never hide a newer write. */
static void test_newer_write_wins(struct fix *f,
                                  gconstpointer d G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v;

    g_assert_cmpint(lsvd_create(f->cfg, "v", 64 * MiB, &err), ==, 0);
    v = open_vol(f, "v");
    write_gen(v, 0, 4 * MiB, 1);
    g_assert_cmpint(lsvd_close(v), ==, 0);
    drop_journal(f, "v");
    v = open_vol(f, "v");
    check_gen(v, 0, 4 * MiB, 65536, 1);         /* all cached now */
    /* overwrite the middle: served from the journal at once... */
    write_gen(v, 1 * MiB, 1 * MiB, 2);
    g_assert_cmpint(lsvd_write_zeroes(v, 3 * MiB, 512 * 1024), ==, 0);
    check_gen(v, 1 * MiB, 1 * MiB, 4096, 2);
    g_assert_cmpint(lsvd_close(v), ==, 0);

    /* ...and from the objects once the journal is gone, whatever the
     * read cache still holds of generation 1 */
    drop_journal(f, "v");
    v = open_vol(f, "v");
    check_gen(v, 0, 1 * MiB, 4096, 1);
    check_gen(v, 1 * MiB, 1 * MiB, 4096, 2);
    check_gen(v, 2 * MiB, 1 * MiB, 4096, 1);
    {
        g_autofree uint8_t *buf = g_malloc(512 * 1024);
        g_autofree uint8_t *zero = g_malloc0(512 * 1024);
        g_assert_cmpint(lsvd_read(v, 3 * MiB, buf, 512 * 1024), ==, 0);
        g_assert_true(memcmp(buf, zero, 512 * 1024) == 0);
    }
    check_gen(v, 3 * MiB + 512 * 1024, 512 * 1024, 4096, 1);
    g_assert_cmpint(lsvd_close(v), ==, 0);
}

struct reader {
    struct lsvd_volume *v;
    uint64_t off;
    GThread *t;
};

static gpointer read_one(gpointer arg)
{
    struct reader *r = arg;

    check_gen(r->v, r->off, 4096, 4096, 1);
    return NULL;
}

/* Sixteen readers missing on one block at once: one GET. */
static void test_shared_miss(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct reader r[16];
    struct lsvd_volume *v;
    struct lsvd_info a, b;

    g_assert_cmpint(lsvd_create(f->cfg, "v", 64 * MiB, &err), ==, 0);
    v = open_vol(f, "v");
    write_gen(v, 0, 1 * MiB, 1);
    g_assert_cmpint(lsvd_close(v), ==, 0);
    drop_journal(f, "v");
    v = open_vol(f, "v");
    a = stat_of(v);
    for (int i = 0; i < 16; i++) {
        r[i] = (struct reader){ v, 65536 + (i % 8) * 4096, NULL };
        r[i].t = g_thread_new("reader", read_one, &r[i]);
    }
    for (int i = 0; i < 16; i++) {
        g_thread_join(r[i].t);
    }
    b = stat_of(v);
    g_assert_cmpuint(b.be_get - a.be_get, ==, 1);
    g_assert_cmpuint(b.rc_fills, ==, 1);
    g_assert_cmpuint(b.rc_hits + b.rc_misses, ==, 16);
    g_assert_cmpint(lsvd_close(v), ==, 0);
}

/* A miss also brings in what was written after it, in the same object. */
static void test_prefetch(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v;
    struct lsvd_info a, b;

    fix_config(f, "prefetch = 512K\n");
    g_assert_cmpint(lsvd_create(f->cfg, "v", 64 * MiB, &err), ==, 0);
    v = open_vol(f, "v");
    /* written far apart in the address space, one after the other in
     * time: one object holds both */
    write_gen(v, 40 * MiB, 256 * 1024, 1);
    write_gen(v, 8 * MiB, 256 * 1024, 1);
    g_assert_cmpint(lsvd_close(v), ==, 0);
    drop_journal(f, "v");
    v = open_vol(f, "v");
    a = stat_of(v);
    check_gen(v, 8 * MiB, 4096, 4096, 1);      /* a miss */
    b = stat_of(v);
    g_assert_cmpuint(b.rc_misses - a.rc_misses, ==, 1);
    g_assert_cmpuint(b.be_get - a.be_get, ==, 1);
    g_assert_cmpuint(b.rc_prefetched, >=, 1);
    /* the rest of both ranges: hits, no GET (the object stores LBA 8M
     * before 40M, so the prefetch window after 8M covers 40M) */
    check_gen(v, 8 * MiB, 256 * 1024, 4096, 1);
    check_gen(v, 40 * MiB, 256 * 1024, 4096, 1);
    a = stat_of(v);
    g_assert_cmpuint(a.be_get, ==, b.be_get);
    g_assert_cmpuint(a.rc_misses, ==, b.rc_misses);
    g_assert_cmpint(lsvd_close(v), ==, 0);
}

static void test_no_read_cache(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v;
    struct lsvd_info a;

    fix_config(f, "read_size = 0\n");
    g_assert_cmpint(lsvd_create(f->cfg, "v", 64 * MiB, &err), ==, 0);
    v = open_vol(f, "v");
    write_gen(v, 0, 2 * MiB, 1);
    g_assert_cmpint(lsvd_close(v), ==, 0);
    drop_journal(f, "v");
    v = open_vol(f, "v");
    check_gen(v, 0, 2 * MiB, 8192, 1);
    check_gen(v, 0, 2 * MiB, 8192, 1);
    a = stat_of(v);
    g_assert_cmpuint(a.rc_size, ==, 0);
    g_assert_cmpuint(a.rc_hits + a.rc_misses, ==, 0);
    g_assert_cmpuint(a.be_get, >=, 2 * 2 * MiB / 65536);
    g_assert_cmpint(lsvd_close(v), ==, 0);
}

/* The counters are in the stats file after close, for `lsvd info`. */
static void test_stats_file(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    g_autofree char *path = lsvd_stats_path(f->cfg, "v");
    g_autofree char *text = NULL;
    struct lsvd_volume *v;
    char *crc;

    g_assert_cmpint(lsvd_create(f->cfg, "v", 64 * MiB, &err), ==, 0);
    v = open_vol(f, "v");
    write_gen(v, 0, 1 * MiB, 1);
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    g_assert_cmpint(lsvd_close(v), ==, 0);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_true(g_str_has_prefix(text, "lsvd-stats 1\nvolume v\n"));
    g_assert_nonnull(strstr(text, "\nwrites 4\n"));
    g_assert_nonnull(strstr(text, "\nwrite_bytes 1048576\n"));
    g_assert_nonnull(strstr(text, "\nflushes 1\n"));
    g_assert_nonnull(strstr(text, "\nbe_put "));
    crc = strstr(text, "crc32c ");
    g_assert_nonnull(crc);
    g_assert_cmpuint(strtoul(crc + 7, NULL, 16), ==,
                     lsvd_crc32c(0, text, crc - text));
    /* removing the volume removes it */
    g_assert_cmpint(lsvd_remove(f->cfg, "v", &err), ==, 0);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
    g_test_add("/readpath/" path, struct fix, NULL, fix_setup, fn, \
               fix_teardown)
    ADD("restart-zero-gets", test_restart_zero_gets);
    ADD("newer-write-wins", test_newer_write_wins);
    ADD("shared-miss", test_shared_miss);
    ADD("prefetch", test_prefetch);
    ADD("no-read-cache", test_no_read_cache);
    ADD("stats-file", test_stats_file);
    return g_test_run();
}
