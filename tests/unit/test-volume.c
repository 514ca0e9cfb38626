/*
 * test-volume - the public API end to end, on a store and a cache
 * directory of its own per test case.
 *
 * The store: without arguments, a dir:// store in a temporary directory
 * per test.  With --s3 (meson's test 'volume-s3', suite 's3'), the S3
 * store of the config file that LSVD_TEST_S3_CONF names (as written by
 * scripts/rgw.sh start DIR: DIR/lsvd.conf): its [backend] section as it
 * is, but with a prefix of each test's own, PREFIX/t-RANDOMHEX/, so that
 * tests never see each other's volumes and reruns never collide; the
 * cache and the batch and journal sizes are as on dir://.  --s3 without
 * LSVD_TEST_S3_CONF exits 77 (skip); without --s3 the variable is
 * ignored.  A test touches the store only through the backend operations
 * (backend_open() on the test's config), so it means the same on both;
 * teardown on S3 deletes every object under the test's prefix.
 *
 * Covered: create/open/read/write/close/reopen, reopen without the cache,
 * a random workload checked against a model, recovery after a crash (a
 * child process that opens, writes, flushes and _exit()s without closing),
 * torn and corrupted journal records, a journal older than the objects, a
 * journal that wrapped, corrupted objects, a journal of another volume,
 * the single-writer lock, list/remove, and stranded objects.
 *
 * Every sector written carries its write id and LBA in its first 16
 * bytes, so a read shows which write each sector came from: that is how
 * the crash tests check "a prefix of the writes".
 *
 * LSVD_TEST_KEEP=1 keeps the temporary directories (and on S3, the
 * objects; their prefix is printed).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "backend.h"
#include "config.h"
#include "format.h"
#include "lsvd.h"
#include "util.h"

#define SECT LSVD_SECTOR_SIZE
#define MODEL_SIZE (8ULL << 20)
#define MODEL_SECTORS (MODEL_SIZE / SECT)
#define BAD_ID UINT64_MAX

/* ---- log capture --------------------------------------------------------- */

static GMutex log_lock;
static unsigned log_errors;
static char log_last[512];

static void log_capture(void *arg G_GNUC_UNUSED, enum lsvd_log_level level,
                        const char *msg)
{
    if (g_getenv("LSVD_TEST_LOG")) {
        g_printerr("lsvd[%d]: %s\n", level, msg);
    }
    g_mutex_lock(&log_lock);
    if (level == LSVD_LOG_ERROR) {
        log_errors++;
        g_strlcpy(log_last, msg, sizeof(log_last));
    }
    g_mutex_unlock(&log_lock);
}

static unsigned log_error_count(void)
{
    unsigned n;

    g_mutex_lock(&log_lock);
    n = log_errors;
    g_mutex_unlock(&log_lock);
    return n;
}

/* ---- fixture ------------------------------------------------------------- */

/*
 * With --s3, the S3 store named by the config file LSVD_TEST_S3_CONF: its
 * [backend] keys (endpoint, region, credentials...) are used as they are,
 * and its URL gives the bucket and the prefix under which each test case
 * takes a fresh one of its own.  NULL: every test runs on dir://.
 */
static GKeyFile *s3_file;
static char *s3_bucket;
static char *s3_prefix;         /* "" or "some/prefix/" */

struct fix {
    char *root;
    char *store;        /* dir://: ROOT/store; NULL on S3 */
    char *cache;        /* ROOT/cache */
    char *url;          /* dir://ROOT/store or s3://BUCKET/PREFIX/t-HEX */
    bool s3;
    struct lsvd_config *cfg;
    /* The test's own view of the store, opened on first use; a child
     * process opens its own (be_pid tells whose it is). */
    struct backend be;
    pid_t be_pid;
};

/*
 * f->cfg: the test's store and cache with batches of @batch and a journal
 * of @cache_size; checkpoint_objects is @ckpt_objects unless 0; more
 * [cache] keys from @cache_keys (key, value, ..., NULL) if not NULL.  Only the
 * [backend] section comes from the S3 config file, so a test is configured
 * alike on both stores.
 */
static void fix_config_full(struct fix *f, const char *batch,
                            const char *cache_size, unsigned ckpt_objects,
                            const char *const *cache_keys)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *text = NULL;
    struct lsvd_err err = { { 0 } };
    gsize len;

    g_key_file_set_string(kf, "backend", "url", f->url);
    if (f->s3) {
        g_auto(GStrv) keys = g_key_file_get_keys(s3_file, "backend", NULL,
                                                 NULL);

        for (char **k = keys; k && *k; k++) {
            g_autofree char *v = NULL;

            if (!strcmp(*k, "url")) {
                continue;
            }
            v = g_key_file_get_value(s3_file, "backend", *k, NULL);
            g_key_file_set_value(kf, "backend", *k, v);
        }
    }
    g_key_file_set_string(kf, "cache", "dir", f->cache);
    g_key_file_set_string(kf, "cache", "size", cache_size);
    for (const char *const *kv = cache_keys; kv && kv[0]; kv += 2) {
        g_key_file_set_string(kf, "cache", kv[0], kv[1]);
    }
    g_key_file_set_string(kf, "log", "batch_size", batch);
    if (ckpt_objects) {
        g_key_file_set_uint64(kf, "log", "checkpoint_objects", ckpt_objects);
    }
    text = g_key_file_to_data(kf, &len, NULL);

    lsvd_config_free(f->cfg);
    f->cfg = NULL;
    if (config_parse(text, len, "test", &f->cfg, &err) < 0) {
        g_test_message("config: %s", err.msg);
    }
    g_assert_nonnull(f->cfg);
}

static void fix_config_ckpt(struct fix *f, const char *batch,
                            const char *cache_size, unsigned ckpt_objects)
{
    fix_config_full(f, batch, cache_size, ckpt_objects, NULL);
}

static void fix_config(struct fix *f, const char *batch,
                       const char *cache_size)
{
    fix_config_full(f, batch, cache_size, 0, NULL);
}

static void fix_setup(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    GError *gerr = NULL;

    memset(f, 0, sizeof(*f));
    f->root = g_dir_make_tmp("lsvd-test-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    f->cache = g_build_filename(f->root, "cache", NULL);
    if (s3_file) {
        /* a prefix no other test case or run uses */
        f->s3 = true;
        f->url = g_strdup_printf("s3://%s/%st-%08x%08x", s3_bucket,
                                 s3_prefix, g_random_int(), g_random_int());
    } else {
        f->store = g_build_filename(f->root, "store", NULL);
        f->url = g_strconcat("dir://", f->store, NULL);
    }
    fix_config(f, "1M", "64M");
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

/* ---- the store, through the backend operations --------------------------- */

/* The test's backend for this process; no assertions (for children). */
static int store_try(struct fix *f, struct backend **out)
{
    struct lsvd_err err = { { 0 } };
    int ret;

    if (!f->be.ops || f->be_pid != getpid()) {
        /* a parent's instance is left alone: it is not ours to use */
        f->be = (struct backend){ 0 };
        ret = backend_open(f->cfg, &f->be, &err);
        if (ret < 0) {
            fprintf(stderr, "open %s: %s\n", f->url, err.msg);
            return ret;
        }
        f->be_pid = getpid();
    }
    *out = &f->be;
    return 0;
}

static struct backend *store(struct fix *f)
{
    struct backend *be = NULL;

    g_assert_cmpint(store_try(f, &be), ==, 0);
    return be;
}

static char *object_name(const char *vol, uint64_t seq)
{
    return g_strdup_printf("%s/%016" PRIx64, vol, seq);
}

/* Size of object @name, or -ENOENT. */
static int store_head(struct fix *f, const char *name, uint64_t *size)
{
    struct backend *be = store(f);

    return be->ops->head(be->be, name, size);
}

static bool store_exists(struct fix *f, const char *name)
{
    uint64_t size;
    int ret = store_head(f, name, &size);

    g_assert_true(ret == 0 || ret == -ENOENT);
    return ret == 0;
}

static uint64_t store_size(struct fix *f, const char *name)
{
    uint64_t size = 0;

    g_assert_cmpint(store_head(f, name, &size), ==, 0);
    return size;
}

/* All of object @name; g_free() it. */
static uint8_t *store_get(struct fix *f, const char *name, size_t *len)
{
    struct backend *be = store(f);
    uint64_t size = store_size(f, name);
    uint8_t *data = g_malloc(size + 1);

    if (size) {
        g_assert_cmpint(be->ops->get_range(be->be, name, 0, data, size), ==,
                        size);
    }
    *len = size;
    return data;
}

static void store_put(struct fix *f, const char *name, const uint8_t *data,
                      size_t len)
{
    struct backend *be = store(f);
    struct iovec iov = { (void *)data, len };

    g_assert_cmpint(be->ops->put(be->be, name, &iov, 1), ==, 0);
}

static void store_del(struct fix *f, const char *name)
{
    struct backend *be = store(f);

    g_assert_cmpint(be->ops->del(be->be, name), ==, 0);
}

static void store_copy(struct fix *f, const char *from, const char *to)
{
    size_t len;
    g_autofree uint8_t *data = store_get(f, from, &len);

    store_put(f, to, data, len);
}

/* XOR @mask into the byte at @off of object @name: a new object in its
 * place, as rot or a bad server would leave it. */
static void store_flip_byte(struct fix *f, const char *name, uint64_t off,
                            uint8_t mask)
{
    size_t len;
    g_autofree uint8_t *data = store_get(f, name, &len);

    g_assert_cmpuint(off, <, len);
    data[off] ^= mask;
    store_put(f, name, data, len);
}

/* Object @name cut to its first @len bytes. */
static void store_truncate(struct fix *f, const char *name, uint64_t len)
{
    size_t have;
    g_autofree uint8_t *data = store_get(f, name, &have);

    g_assert_cmpuint(len, <=, have);
    store_put(f, name, data, len);
}

/* Everything listed under @prefix ("" or ending in '/'), recursively. */
static GPtrArray *store_list_all(struct fix *f, const char *prefix)
{
    struct backend *be = store(f);
    g_autoptr(GPtrArray) names = NULL;
    GPtrArray *all = g_ptr_array_new_with_free_func(g_free);

    g_assert_cmpint(be->ops->list(be->be, prefix, &names), ==, 0);
    for (guint i = 0; i < names->len; i++) {
        const char *n = g_ptr_array_index(names, i);

        if (g_str_has_suffix(n, "/")) {
            g_autoptr(GPtrArray) sub = store_list_all(f, n);

            for (guint k = 0; k < sub->len; k++) {
                g_ptr_array_add(all, g_strdup(g_ptr_array_index(sub, k)));
            }
        } else {
            g_ptr_array_add(all, g_strdup(n));
        }
    }
    return all;
}

/* Number of objects under @prefix, at any depth. */
static unsigned store_count(struct fix *f, const char *prefix)
{
    g_autoptr(GPtrArray) all = store_list_all(f, prefix);

    return all->len;
}

/*
 * Number of data objects of @vol, and the newest sequence number; no
 * assertions, so a child process can use it.
 */
static int list_objects(struct fix *f, const char *vol, unsigned *count,
                        uint64_t *newest)
{
    g_autofree char *prefix = g_strdup_printf("%s/", vol);
    g_autoptr(GPtrArray) names = NULL;
    struct backend *be;
    int ret = store_try(f, &be);

    *count = 0;
    if (newest) {
        *newest = 0;
    }
    if (ret < 0) {
        return ret;
    }
    ret = be->ops->list(be->be, prefix, &names);
    if (ret < 0) {
        return ret;
    }
    for (guint i = 0; i < names->len; i++) {
        const char *n = (const char *)g_ptr_array_index(names, i) +
                        strlen(prefix);

        if (strlen(n) == 16 && strspn(n, "0123456789abcdef") == 16) {
            uint64_t seq = g_ascii_strtoull(n, NULL, 16);
            (*count)++;
            if (newest && seq > *newest) {
                *newest = seq;
            }
        }
    }
    return 0;
}

static unsigned count_objects(struct fix *f, const char *vol,
                              uint64_t *newest)
{
    unsigned count;

    g_assert_cmpint(list_objects(f, vol, &count, newest), ==, 0);
    return count;
}

static void fix_teardown(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    bool keep = g_getenv("LSVD_TEST_KEEP") != NULL;

    if (keep) {
        g_test_message("kept %s and %s", f->url, f->root);
    } else {
        /* every object under the test's own prefix (on S3) or directory,
         * and nothing else: the backend's names are relative to it.  The
         * same on dir://, where rm_rf() would do, so that this path is
         * exercised without a server. */
        g_autoptr(GPtrArray) all = store_list_all(f, "");

        for (guint i = 0; i < all->len; i++) {
            store_del(f, g_ptr_array_index(all, i));
        }
        g_assert_cmpuint(store_count(f, ""), ==, 0);
    }
    if (f->be.ops && f->be_pid == getpid()) {
        backend_close(&f->be);
    }
    if (!keep) {
        rm_rf(f->root);
        g_assert_false(g_file_test(f->root, G_FILE_TEST_EXISTS));
    }
    lsvd_config_free(f->cfg);
    g_free(f->root);
    g_free(f->store);
    g_free(f->cache);
    g_free(f->url);
}

static char *journal_file(struct fix *f, const char *vol)
{
    g_autofree char *leaf = g_strdup_printf("%s.journal", vol);

    return g_build_filename(f->cache, leaf, NULL);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    g_autoptr(GError) gerr = NULL;
    char *data = NULL;
    gsize n = 0;

    g_assert_true(g_file_get_contents(path, &data, &n, &gerr));
    g_assert_no_error(gerr);
    *len = n;
    return (uint8_t *)data;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    g_autoptr(GError) gerr = NULL;

    g_assert_true(g_file_set_contents(path, (const char *)data, len,
                                      &gerr));
    g_assert_no_error(gerr);
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    g_autofree uint8_t *data = read_file(from, &len);

    write_file(to, data, len);
}

static uint64_t file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_size;
}

/* XOR @mask into the byte at @off of @path, in place. */
static void flip_byte(const char *path, uint64_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, &b, 1, off), ==, 1);
    b ^= mask;
    g_assert_cmpint(pwrite(fd, &b, 1, off), ==, 1);
    close(fd);
}

static void truncate_file(const char *path, uint64_t len)
{
    g_assert_cmpint(truncate(path, len), ==, 0);
}

/* Zero [off, end): what a write that never reached the disk leaves in a
 * journal file allocated ahead. */
static void zero_from(const char *path, uint64_t off, uint64_t end)
{
    g_autofree uint8_t *zeros = g_malloc0(end - off);
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, zeros, end - off, off), ==, end - off);
    close(fd);
}

/* Where the first write's record lies in a fresh volume's journal: after
 * the two superblock copies and the FENCE record of the first open. */
#define JNL_FIRST (3 * JNL_BLOCK)

/*
 * Journal sequence number of write 0 of a fresh volume's first session,
 * minus one: a writable open starts the journal with a FENCE record whose
 * successor's number jumps.  So write i has sequence number base + i + 1.
 */
static uint64_t journal_base(struct fix *f, const char *vol)
{
    g_autofree char *jpath = journal_file(f, vol);
    size_t len;
    g_autofree uint8_t *data = read_file(jpath, &len);
    struct rec_header r;

    g_assert_cmpuint(len, >=, JNL_FIRST);
    g_assert_cmpint(rec_header_parse(data + JNL_FIRST - JNL_BLOCK, JNL_BLOCK,
                                     &r), ==, 0);
    return (r.type == REC_TYPE_FENCE ? r.next_seq : r.seq) - 1;
}

/* The parsed header of object @seq of @vol; free with obj_header_free(). */
static void object_header(struct fix *f, const char *vol, uint64_t seq,
                          struct obj_header *h)
{
    g_autofree char *name = object_name(vol, seq);
    size_t len;
    g_autofree uint8_t *data = store_get(f, name, &len);

    g_assert_cmpint(obj_header_parse(data, len, h), ==, 0);
    g_assert_cmpuint(h->seq, ==, seq);
}

/* ---- data patterns ------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/*
 * Sector @lba as written by write @id: id and LBA, then filler that LZ4
 * compresses well for even ids and not at all for odd ones.  Id 0 is a
 * sector of zeros.
 */
static void pat_sector(uint8_t *s, uint64_t lba, uint64_t id)
{
    uint64_t x = mix(id * 0x100000001b3ULL ^ lba);

    if (id == 0) {
        memset(s, 0, SECT);
        return;
    }
    put_le64(s, id);
    put_le64(s + 8, lba);
    for (int i = 16; i < SECT; i += 8) {
        if (id & 1) {
            x = mix(x);
        }
        put_le64(s + i, x);
    }
}

static void pat_fill(uint8_t *buf, uint64_t lba, uint64_t sectors,
                     uint64_t id)
{
    for (uint64_t i = 0; i < sectors; i++) {
        pat_sector(buf + i * SECT, lba + i, id);
    }
}

/* Which write sector @s holds: 0 for zeros, BAD_ID for anything else. */
static uint64_t pat_id(const uint8_t *s, uint64_t lba)
{
    uint8_t want[SECT];
    uint64_t id = get_le64(s);

    if (id == 0 || id == BAD_ID) {
        for (int i = 0; i < SECT; i++) {
            if (s[i]) {
                return BAD_ID;
            }
        }
        return 0;
    }
    pat_sector(want, lba, id);
    return memcmp(s, want, SECT) == 0 ? id : BAD_ID;
}

/* ---- volume helpers ------------------------------------------------------ */

static void vol_create(struct fix *f, const char *name, uint64_t size)
{
    struct lsvd_err err = { { 0 } };
    int ret = lsvd_create(f->cfg, name, size, &err);

    if (ret < 0) {
        g_test_message("create %s: %s", name, err.msg);
    }
    g_assert_cmpint(ret, ==, 0);
}

static struct lsvd_volume *vol_open(struct fix *f, const char *name,
                                    int flags)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v = NULL;
    int ret = lsvd_open(f->cfg, name, flags, &v, &err);

    if (ret < 0) {
        g_test_message("open %s: %s", name, err.msg);
    }
    g_assert_cmpint(ret, ==, 0);
    g_assert_nonnull(v);
    return v;
}

/* Open expecting failure @expect; returns the message. */
static char *vol_open_fails(struct fix *f, const char *name, int flags,
                            int expect)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v = NULL;
    int ret = lsvd_open(f->cfg, name, flags, &v, &err);

    g_test_message("open %s -> %d: %s", name, ret, err.msg);
    g_assert_cmpint(ret, ==, expect);
    g_assert_null(v);
    g_assert_cmpstr(err.msg, !=, "");
    return g_strdup(err.msg);
}

static void vol_close(struct lsvd_volume *v)
{
    g_assert_cmpint(lsvd_close(v), ==, 0);
}

static void write_pat(struct lsvd_volume *v, uint64_t lba, uint64_t sectors,
                      uint64_t id)
{
    g_autofree uint8_t *buf = g_malloc(sectors * SECT);

    pat_fill(buf, lba, sectors, id);
    g_assert_cmpint(lsvd_write(v, lba * SECT, buf, sectors * SECT), ==, 0);
}

/* Read [lba, lba+sectors) and check that every sector holds write @id. */
static void check_pat(struct lsvd_volume *v, uint64_t lba, uint64_t sectors,
                      uint64_t id)
{
    g_autofree uint8_t *buf = g_malloc(sectors * SECT);

    memset(buf, 0xcc, sectors * SECT);
    g_assert_cmpint(lsvd_read(v, lba * SECT, buf, sectors * SECT), ==, 0);
    for (uint64_t i = 0; i < sectors; i++) {
        uint64_t got = pat_id(buf + i * SECT, lba + i);
        if (got != id) {
            g_test_message("sector %" PRIu64 ": write %" PRIu64
                           " expected, found %" PRIu64 " (%" PRIu64
                           " = bad)", lba + i, id, got, BAD_ID);
        }
        g_assert_cmpuint(got, ==, id);
    }
}

/* The write id of every sector of [0, sectors), read 1 MiB at a time. */
static uint64_t *observe(struct lsvd_volume *v, uint64_t sectors)
{
    uint64_t *ids = g_new(uint64_t, sectors);
    const uint64_t step = (1 << 20) / SECT;
    g_autofree uint8_t *buf = g_malloc(step * SECT);

    for (uint64_t lba = 0; lba < sectors; lba += step) {
        uint64_t n = MIN(step, sectors - lba);
        g_assert_cmpint(lsvd_read(v, lba * SECT, buf, n * SECT), ==, 0);
        for (uint64_t i = 0; i < n; i++) {
            ids[lba + i] = pat_id(buf + i * SECT, lba + i);
        }
    }
    return ids;
}

static bool same_ids(const uint64_t *got, const uint64_t *want,
                     uint64_t sectors, bool verbose)
{
    for (uint64_t i = 0; i < sectors; i++) {
        if (got[i] != want[i]) {
            if (verbose) {
                g_test_message("sector %" PRIu64 ": write %" PRIu64
                               " expected, found %" PRIu64, i, want[i],
                               got[i]);
            }
            return false;
        }
    }
    return true;
}

static void check_model(struct lsvd_volume *v, const uint64_t *model,
                        uint64_t sectors)
{
    g_autofree uint64_t *ids = observe(v, sectors);

    g_assert_true(same_ids(ids, model, sectors, true));
}

/* ---- random workloads ---------------------------------------------------- */

struct op {
    uint64_t lba;
    uint64_t sectors;
    bool zero;          /* write-zeroes instead of data */
};

/* @n operations on [0, vol_sectors): op i is write id i + 1. */
static struct op *make_ops(uint64_t seed, unsigned n, uint64_t vol_sectors,
                           uint64_t max_sectors, unsigned zero_pct)
{
    struct op *ops = g_new(struct op, n);
    uint64_t x = seed;

    for (unsigned i = 0; i < n; i++) {
        x = mix(x);
        ops[i].sectors = 1 + x % max_sectors;
        x = mix(x);
        if (x % 8 == 0) {
            /* 4 KiB aligned, as most guests write */
            ops[i].sectors = ROUND_UP(ops[i].sectors, 8);
        }
        ops[i].sectors = MIN(ops[i].sectors, vol_sectors);
        x = mix(x);
        ops[i].lba = x % (vol_sectors - ops[i].sectors + 1);
        x = mix(x);
        ops[i].zero = x % 100 < zero_pct;
    }
    return ops;
}

static void model_apply(uint64_t *model, const struct op *ops,
                        unsigned from, unsigned to)
{
    for (unsigned i = from; i < to; i++) {
        for (uint64_t k = 0; k < ops[i].sectors; k++) {
            model[ops[i].lba + k] = ops[i].zero ? 0 : i + 1;
        }
    }
}

/* Apply ops [from, to); no assertions, so a child process can use it. */
static int apply_ops(struct lsvd_volume *v, const struct op *ops,
                     unsigned from, unsigned to)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    int ret = 0;

    for (unsigned i = from; i < to && ret == 0; i++) {
        size_t len = ops[i].sectors * SECT;

        if (ops[i].zero) {
            ret = lsvd_write_zeroes(v, ops[i].lba * SECT, len);
            continue;
        }
        if (len > cap) {
            buf = g_realloc(buf, len);
            cap = len;
        }
        pat_fill(buf, ops[i].lba, ops[i].sectors, i + 1);
        ret = lsvd_write(v, ops[i].lba * SECT, buf, len);
    }
    g_free(buf);
    return ret;
}

/* ---- child processes ----------------------------------------------------- */

typedef int child_fn(struct fix *f, void *arg);

/* Run @fn in a child process, which exits with its return value without
 * any cleanup: open volumes stay unclosed, as in a crash. */
static void run_child(struct fix *f, child_fn *fn, void *arg)
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        _exit(fn(f, arg));
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

struct crash_arg {
    const char *vol;
    const struct op *ops;
    unsigned from, to;
    const char *save_journal_to;    /* copy of the journal after @mid */
    unsigned mid;
    unsigned wait_objects;          /* PUTs are asynchronous: wait for
                                     * this many objects before exiting */
    bool aio;                       /* 32 requests in flight at once */
};

/* PUTs are asynchronous: wait (up to 10 s) for @n objects of @vol.
 * 0, or 16 if they cannot be listed. */
static int wait_objects(struct fix *f, const char *vol, unsigned n)
{
    for (int i = 0; i < 1000 && n > 0; i++) {
        unsigned count;

        if (list_objects(f, vol, &count, NULL) < 0) {
            return 16;
        }
        if (count >= n) {
            break;
        }
        g_usleep(10000);
    }
    return 0;
}

static int apply_ops_aio(struct lsvd_volume *v, const struct op *ops,
                         unsigned n);

/* Open, apply the ops (with @aio: ops 0..to, 32 at a time), flush, and
 * "crash". */
static int crash_child(struct fix *f, void *p)
{
    struct crash_arg *a = p;
    struct lsvd_volume *v = NULL;
    struct lsvd_err err;

    if (lsvd_open(f->cfg, a->vol, 0, &v, &err) < 0) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        return 10;
    }
    if (a->save_journal_to) {
        g_autofree char *jpath = journal_file(f, a->vol);
        gchar *data;
        gsize len;

        if (apply_ops(v, a->ops, a->from, a->mid) < 0 ||
            lsvd_flush(v) < 0) {
            return 11;
        }
        if (!g_file_get_contents(jpath, &data, &len, NULL) ||
            !g_file_set_contents(a->save_journal_to, data, len, NULL)) {
            return 12;
        }
        g_free(data);
        if (apply_ops(v, a->ops, a->mid, a->to) < 0) {
            return 13;
        }
    } else if (a->aio ? apply_ops_aio(v, a->ops, a->to) < 0 :
                        apply_ops(v, a->ops, a->from, a->to) < 0) {
        return 14;
    }
    if (lsvd_flush(v) < 0) {
        return 15;
    }
    return wait_objects(f, a->vol, a->wait_objects);
}

/* ==== the tests ========================================================== */

static void test_basic(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v;
    struct lsvd_info info;

    vol_create(f, "v1", 64 << 20);
    g_assert_cmpint(lsvd_create(f->cfg, "v1", 64 << 20, &err), ==, -EEXIST);
    g_assert_nonnull(strstr(err.msg, "v1"));
    g_assert_cmpint(lsvd_create(f->cfg, "bad/name", 1 << 20, &err), ==,
                    -EINVAL);
    g_assert_cmpint(lsvd_create(f->cfg, "v2", 0, &err), ==, -EINVAL);
    g_assert_cmpint(lsvd_create(f->cfg, "v2", 1000, &err), ==, -EINVAL);
    g_assert_cmpint(lsvd_create(f->cfg, "v2", 1ULL << 62, &err), ==,
                    -EINVAL);
    g_free(vol_open_fails(f, "v2", 0, -ENOENT));
    g_free(vol_open_fails(f, "..", 0, -EINVAL));

    v = vol_open(f, "v1", 0);
    g_assert_cmpuint(lsvd_size(v), ==, 64 << 20);
    g_assert_cmpint(lsvd_stat(v, &info), ==, 0);
    g_assert_cmpuint(info.size, ==, 64 << 20);
    g_assert_cmpuint(info.objects, ==, 0);
    g_assert_cmpuint(info.journal_bytes, ==, 0);

    write_pat(v, 0, 8, 1);
    write_pat(v, 1000, 1, 2);
    write_pat(v, (64 << 20) / SECT - 16, 16, 3);    /* the last sectors */
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    check_pat(v, 0, 8, 1);
    check_pat(v, 1000, 1, 2);
    check_pat(v, (64 << 20) / SECT - 16, 16, 3);
    check_pat(v, 8, 992, 0);
    g_assert_cmpint(lsvd_stat(v, &info), ==, 0);
    g_assert_cmpuint(info.journal_bytes, >=, 3 * 2 * JNL_BLOCK);
    vol_close(v);

    v = vol_open(f, "v1", 0);
    check_pat(v, 0, 8, 1);
    check_pat(v, 1000, 1, 2);
    check_pat(v, (64 << 20) / SECT - 16, 16, 3);
    check_pat(v, 1001, 100, 0);
    /* a cleanly closed volume has everything in objects */
    g_assert_cmpint(lsvd_stat(v, &info), ==, 0);
    g_assert_cmpuint(info.objects, ==, 1);
    g_assert_cmpuint(info.last_seq, ==, 1);
    g_assert_cmpuint(info.journal_bytes, ==, 0);
    g_assert_cmpuint(info.stored_bytes, >, 0);
    vol_close(v);

    /* read-only: reads work, writes are refused */
    v = vol_open(f, "v1", LSVD_OPEN_RDONLY);
    check_pat(v, 0, 8, 1);
    {
        uint8_t buf[SECT] = { 0 };
        g_assert_cmpint(lsvd_write(v, 0, buf, SECT), ==, -EROFS);
        g_assert_cmpint(lsvd_write_zeroes(v, 0, SECT), ==, -EROFS);
        g_assert_cmpint(lsvd_flush(v), ==, 0);
    }
    vol_close(v);
}

static void test_reopen_without_cache(struct fix *f,
                                      gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    g_autofree char *jpath = journal_file(f, "v");

    vol_create(f, "v", MODEL_SIZE);
    v = vol_open(f, "v", 0);
    write_pat(v, 0, 2048, 1);           /* 1 MiB: fills one batch */
    write_pat(v, 4096, 100, 2);
    write_pat(v, 100, 10, 3);           /* over the first, in the journal */
    vol_close(v);
    g_assert_true(g_file_test(jpath, G_FILE_TEST_EXISTS));
    rm_rf(f->cache);
    g_assert_false(g_file_test(f->cache, G_FILE_TEST_EXISTS));

    /* read-only first: it must not need (or make) the cache */
    v = vol_open(f, "v", LSVD_OPEN_RDONLY);
    check_pat(v, 0, 100, 1);
    check_pat(v, 100, 10, 3);
    check_pat(v, 110, 2048 - 110, 1);
    check_pat(v, 4096, 100, 2);
    check_pat(v, 2048, 2048, 0);
    vol_close(v);
    g_assert_false(g_file_test(jpath, G_FILE_TEST_EXISTS));

    v = vol_open(f, "v", 0);
    check_pat(v, 0, 100, 1);
    check_pat(v, 100, 10, 3);
    check_pat(v, 4096, 100, 2);
    write_pat(v, 5000, 8, 4);
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "v", 0);
    check_pat(v, 5000, 8, 4);
    check_pat(v, 100, 10, 3);
    vol_close(v);
}

static void test_unwritten_zeros(struct fix *f,
                                 gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    g_autofree uint8_t *buf = g_malloc(1 << 20);

    vol_create(f, "z", 1ULL << 40);     /* 1 TiB, sparse */
    v = vol_open(f, "z", 0);
    memset(buf, 0xaa, 1 << 20);
    g_assert_cmpint(lsvd_read(v, 0, buf, 1 << 20), ==, 0);
    for (size_t i = 0; i < (1 << 20); i++) {
        g_assert_cmpuint(buf[i], ==, 0);
    }
    /* the very end of a large volume */
    memset(buf, 0xaa, 4096);
    g_assert_cmpint(lsvd_read(v, (1ULL << 40) - 4096, buf, 4096), ==, 0);
    check_pat(v, (1ULL << 40) / SECT - 8, 8, 0);

    /* data in the journal with holes on both sides */
    write_pat(v, 20, 10, 5);
    write_pat(v, (1ULL << 39) / SECT, 3, 6);
    check_pat(v, 0, 20, 0);
    check_pat(v, 20, 10, 5);
    check_pat(v, 30, 50, 0);
    check_pat(v, (1ULL << 39) / SECT - 2, 2, 0);
    check_pat(v, (1ULL << 39) / SECT, 3, 6);
    check_pat(v, (1ULL << 39) / SECT + 3, 5, 0);
    vol_close(v);

    /* and in objects */
    v = vol_open(f, "z", 0);
    check_pat(v, 0, 20, 0);
    check_pat(v, 20, 10, 5);
    check_pat(v, 30, 50, 0);
    check_pat(v, (1ULL << 39) / SECT, 3, 6);
    check_pat(v, (1ULL << 39) / SECT + 3, 5, 0);
    vol_close(v);
}

/* Overwrites inside one batch (and one journal) read back the newest
 * data, before and after the batch becomes an object. */
static void test_overlap_in_batch(struct fix *f,
                                  gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    uint64_t model[512] = { 0 };
    /* lba, sectors; write id = index + 1 */
    static const uint64_t w[][2] = {
        { 0, 128 },         /* A */
        { 32, 32 },         /* B inside A */
        { 48, 64 },         /* C over B's tail and A */
        { 0, 1 },           /* D: A's first sector */
        { 127, 10 },        /* E: A's last sector and beyond */
        { 40, 8 },          /* F inside B */
        { 0, 200 },         /* G over everything so far ... */
        { 100, 1 },         /* ... and H inside G */
        { 300, 8 },
        { 296, 16 },        /* J covers I exactly and more */
    };

    vol_create(f, "o", 512 * SECT);
    v = vol_open(f, "o", 0);
    for (unsigned i = 0; i < G_N_ELEMENTS(w); i++) {
        write_pat(v, w[i][0], w[i][1], i + 1);
        for (uint64_t k = 0; k < w[i][1]; k++) {
            model[w[i][0] + k] = i + 1;
        }
        check_model(v, model, 512);
    }
    vol_close(v);
    v = vol_open(f, "o", 0);
    check_model(v, model, 512);
    vol_close(v);
    /* the object holds each LBA once */
    {
        struct obj_header h;
        uint64_t covered = 0;

        object_header(f, "o", 1, &h);
        for (uint32_t i = 0; i < h.n_extents; i++) {
            covered += h.extents[i].sectors;
            if (i > 0) {
                g_assert_cmpuint(h.extents[i].lba, >=,
                                 h.extents[i - 1].lba +
                                 h.extents[i - 1].sectors);
            }
        }
        g_assert_cmpuint(covered, ==, 200 + 16);
        g_assert_cmpuint(h.raw_len, ==, (200 + 16) * SECT);
        obj_header_free(&h);
    }
}

/* A random workload (writes and write-zeroes, 1 MiB batches so that many
 * objects are made), checked against the model while open, after a clean
 * reopen and after a reopen without the cache. */
static void test_random_model(struct fix *f,
                              gconstpointer data G_GNUC_UNUSED)
{
    const unsigned n = 1500;
    g_autofree struct op *ops = make_ops(42, n, MODEL_SECTORS, 128, 10);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    struct lsvd_volume *v;
    struct lsvd_info info;

    vol_create(f, "r", MODEL_SIZE);
    v = vol_open(f, "r", 0);
    for (unsigned i = 0; i < n; i += 100) {
        g_assert_cmpint(apply_ops(v, ops, i, MIN(i + 100, n)), ==, 0);
        model_apply(model, ops, i, MIN(i + 100, n));
        if (i % 500 == 0) {
            check_model(v, model, MODEL_SECTORS);
        }
    }
    check_model(v, model, MODEL_SECTORS);
    g_assert_cmpint(lsvd_stat(v, &info), ==, 0);
    g_test_message("%" PRIu64 " objects, %" PRIu64 " bytes stored, %"
                   PRIu64 " journal bytes", info.objects, info.stored_bytes,
                   info.journal_bytes);
    g_assert_cmpuint(info.objects, >=, 5);
    vol_close(v);

    v = vol_open(f, "r", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "r", LSVD_OPEN_RDONLY);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

static void test_invalid_requests(struct fix *f,
                                  gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    uint8_t buf[2 * SECT] = { 0 };
    const uint64_t size = 1 << 20;

    vol_create(f, "inv", size);
    v = vol_open(f, "inv", 0);
    /* unaligned offset or length */
    g_assert_cmpint(lsvd_write(v, 1, buf, SECT), ==, -EINVAL);
    g_assert_cmpint(lsvd_write(v, 0, buf, SECT + 1), ==, -EINVAL);
    g_assert_cmpint(lsvd_write(v, 0, buf, 100), ==, -EINVAL);
    g_assert_cmpint(lsvd_read(v, 256, buf, SECT), ==, -EINVAL);
    g_assert_cmpint(lsvd_read(v, 0, buf, SECT - 1), ==, -EINVAL);
    g_assert_cmpint(lsvd_write_zeroes(v, 100, SECT), ==, -EINVAL);
    g_assert_cmpint(lsvd_write_zeroes(v, 0, 100), ==, -EINVAL);
    /* out of range, including overflowing ends */
    g_assert_cmpint(lsvd_write(v, size, buf, SECT), ==, -EINVAL);
    g_assert_cmpint(lsvd_write(v, size - SECT, buf, 2 * SECT), ==, -EINVAL);
    g_assert_cmpint(lsvd_read(v, size, buf, SECT), ==, -EINVAL);
    g_assert_cmpint(lsvd_read(v, size + SECT, buf, SECT), ==, -EINVAL);
    g_assert_cmpint(lsvd_read(v, UINT64_MAX - 511, buf, SECT), ==, -EINVAL);
    g_assert_cmpint(lsvd_write(v, UINT64_MAX - 511, buf, SECT), ==,
                    -EINVAL);
    g_assert_cmpint(lsvd_write_zeroes(v, size - SECT, 2 * SECT), ==,
                    -EINVAL);
    g_assert_cmpint(lsvd_write_zeroes(v, SECT, UINT64_MAX - 511), ==,
                    -EINVAL);
    /* empty requests at the end are fine */
    g_assert_cmpint(lsvd_read(v, size, buf, 0), ==, 0);
    g_assert_cmpint(lsvd_write(v, size, buf, 0), ==, 0);
    /* nothing was written by the refused requests */
    check_pat(v, 0, size / SECT, 0);
    /* the last sector is in range */
    write_pat(v, size / SECT - 1, 1, 9);
    check_pat(v, size / SECT - 1, 1, 9);
    vol_close(v);
}

/* ---- asynchronous requests ----------------------------------------------- */

struct aio_state {
    GMutex m;
    GCond c;
    unsigned done;
    unsigned errors;
    unsigned calls[80];
};

struct aio_req {
    struct aio_state *s;
    unsigned i;
};

static void aio_cb(void *arg, int ret)
{
    struct aio_req *r = arg;
    struct aio_state *s = r->s;

    g_mutex_lock(&s->m);
    s->calls[r->i]++;
    s->done++;
    if (ret < 0) {
        s->errors++;
    }
    g_cond_signal(&s->c);
    g_mutex_unlock(&s->m);
}

static void aio_wait(struct aio_state *s, unsigned n)
{
    g_mutex_lock(&s->m);
    while (s->done < n) {
        g_cond_wait(&s->c, &s->m);
    }
    g_mutex_unlock(&s->m);
}

/* Many requests in flight with scattered iovecs of odd sizes; every
 * callback runs exactly once. */
static void test_aio(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct aio_state s = { 0 };
    struct aio_req idx[80];
    struct lsvd_volume *v;
    const unsigned nw = 32;
    uint8_t *bufs[32];
    struct iovec iovs[32][3];

    g_mutex_init(&s.m);
    g_cond_init(&s.c);
    for (unsigned i = 0; i < 80; i++) {
        idx[i] = (struct aio_req){ &s, i };
    }
    vol_create(f, "aio", MODEL_SIZE);
    v = vol_open(f, "aio", 0);

    /* 32 writes of 8 sectors, each split as 100 + 3000 + 996 bytes */
    for (unsigned i = 0; i < nw; i++) {
        bufs[i] = g_malloc(8 * SECT);
        pat_fill(bufs[i], 64 * i, 8, i + 1);
        iovs[i][0] = (struct iovec){ bufs[i], 100 };
        iovs[i][1] = (struct iovec){ bufs[i] + 100, 3000 };
        iovs[i][2] = (struct iovec){ bufs[i] + 3100, 8 * SECT - 3100 };
        g_assert_cmpint(lsvd_aio_write(v, 64 * i * SECT, iovs[i], 3, aio_cb,
                                       &idx[i]), ==, 0);
    }
    g_assert_cmpint(lsvd_aio_flush(v, aio_cb, &idx[nw]), ==, 0);
    aio_wait(&s, nw + 1);
    g_assert_cmpuint(s.errors, ==, 0);

    /* read them back into scattered buffers */
    for (unsigned i = 0; i < nw; i++) {
        memset(bufs[i], 0, 8 * SECT);
        iovs[i][0] = (struct iovec){ bufs[i], 3 * SECT + 7 };
        iovs[i][1] = (struct iovec){ bufs[i] + 3 * SECT + 7, 1 };
        iovs[i][2] = (struct iovec){ bufs[i] + 3 * SECT + 8,
                                     5 * SECT - 8 };
        g_assert_cmpint(lsvd_aio_read(v, 64 * i * SECT, iovs[i], 3, aio_cb,
                                      &idx[nw + 1 + i]), ==, 0);
    }
    aio_wait(&s, 2 * nw + 1);
    g_assert_cmpuint(s.errors, ==, 0);
    for (unsigned i = 0; i < nw; i++) {
        for (unsigned k = 0; k < 8; k++) {
            g_assert_cmpuint(pat_id(bufs[i] + k * SECT, 64 * i + k), ==,
                             i + 1);
        }
        g_free(bufs[i]);
    }
    /* exactly once each, and refused requests never call back */
    {
        struct iovec bad = { NULL, 100 };
        g_assert_cmpint(lsvd_aio_read(v, 0, &bad, 1, aio_cb, &idx[79]), ==,
                        -EINVAL);
    }
    vol_close(v);
    for (unsigned i = 0; i < 2 * nw + 1; i++) {
        g_assert_cmpuint(s.calls[i], ==, 1);
    }
    g_assert_cmpuint(s.calls[79], ==, 0);
    g_mutex_clear(&s.m);
    g_cond_clear(&s.c);
}

static void test_write_zeroes(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    const uint64_t n = MODEL_SECTORS;

    vol_create(f, "wz", MODEL_SIZE);
    v = vol_open(f, "wz", 0);
    write_pat(v, 0, n, 1);          /* 8 MiB: eight objects */
    g_assert_cmpint(lsvd_write_zeroes(v, 100 * SECT, 50 * SECT), ==, 0);
    write_pat(v, 120, 4, 2);        /* data inside the zeroed range */
    check_pat(v, 0, 100, 1);
    check_pat(v, 100, 20, 0);
    check_pat(v, 120, 4, 2);
    check_pat(v, 124, 26, 0);
    check_pat(v, 150, 100, 1);
    vol_close(v);

    v = vol_open(f, "wz", 0);
    check_pat(v, 0, 100, 1);
    check_pat(v, 100, 20, 0);
    check_pat(v, 120, 4, 2);
    check_pat(v, 124, 26, 0);
    check_pat(v, 150, 100, 1);
    /* the whole volume, then a little data */
    g_assert_cmpint(lsvd_write_zeroes(v, 0, MODEL_SIZE), ==, 0);
    write_pat(v, n - 1, 1, 3);
    check_pat(v, 0, n - 1, 0);
    vol_close(v);

    rm_rf(f->cache);
    v = vol_open(f, "wz", 0);
    check_pat(v, 0, n - 1, 0);
    check_pat(v, n - 1, 1, 3);
    /* a batch of nothing but zeros makes an object without data */
    g_assert_cmpint(lsvd_write_zeroes(v, (n - 1) * SECT, SECT), ==, 0);
    vol_close(v);
    {
        uint64_t newest;
        struct obj_header h;

        count_objects(f, "wz", &newest);
        object_header(f, "wz", newest, &h);
        g_assert_cmpuint(h.n_chunks, ==, 0);
        g_assert_cmpuint(h.data_len, ==, 0);
        g_assert_cmpuint(h.n_extents, ==, 1);
        g_assert_cmpuint(h.extents[0].flags, ==, OBJ_EXT_ZERO);
        obj_header_free(&h);
    }
    v = vol_open(f, "wz", 0);
    check_pat(v, 0, n, 0);
    vol_close(v);
}

/* Zeroing more than a journal record extent holds (2^31 sectors) on a
 * large sparse volume, with data on both sides of the seams. */
static void test_write_zeroes_huge(struct fix *f,
                                   gconstpointer data G_GNUC_UNUSED)
{
    const uint64_t size = 4ULL << 40;       /* 2^33 sectors */
    const uint64_t seam = 1ULL << 31;       /* sectors */
    struct lsvd_volume *v;

    vol_create(f, "huge", size);
    v = vol_open(f, "huge", 0);
    write_pat(v, seam - 4, 8, 1);
    write_pat(v, 3 * seam - 1, 2, 2);
    write_pat(v, size / SECT - 8, 8, 3);
    g_assert_cmpint(lsvd_write_zeroes(v, SECT, size - 2 * SECT), ==, 0);
    write_pat(v, seam, 1, 4);
    check_pat(v, seam - 4, 4, 0);
    check_pat(v, seam, 1, 4);
    check_pat(v, seam + 1, 3, 0);
    check_pat(v, 3 * seam - 1, 2, 0);
    check_pat(v, size / SECT - 8, 7, 0);
    check_pat(v, size / SECT - 1, 1, 3);
    vol_close(v);
    v = vol_open(f, "huge", 0);
    check_pat(v, seam - 4, 4, 0);
    check_pat(v, seam, 1, 4);
    check_pat(v, seam + 1, 3, 0);
    check_pat(v, 3 * seam - 1, 2, 0);
    check_pat(v, size / SECT - 8, 7, 0);
    check_pat(v, size / SECT - 1, 1, 3);
    vol_close(v);
}

/* ---- crashes ------------------------------------------------------------- */

/* Crash with 1 MiB batches after many writes; reopen with the cache. */
static void test_crash_cache_intact(struct fix *f,
                                    gconstpointer data G_GNUC_UNUSED)
{
    const unsigned n = 600;
    g_autofree struct op *ops = make_ops(7, n, MODEL_SECTORS, 64, 5);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    struct crash_arg a = { .vol = "c", .ops = ops, .from = 0, .to = n,
                           .wait_objects = 2 };
    g_autofree char *jpath = journal_file(f, "c");
    struct lsvd_volume *v;

    vol_create(f, "c", MODEL_SIZE);
    run_child(f, crash_child, &a);
    model_apply(model, ops, 0, n);
    g_assert_cmpuint(count_objects(f, "c", NULL), >=, 2);
    g_assert_cmpuint(file_size(jpath), >, JNL_BLOCK);

    /* every flushed write is there, read-only (which changes nothing) */
    {
        size_t len0, len1;
        g_autofree uint8_t *before = read_file(jpath, &len0);
        g_autofree uint8_t *after = NULL;

        v = vol_open(f, "c", LSVD_OPEN_RDONLY);
        check_model(v, model, MODEL_SECTORS);
        vol_close(v);
        after = read_file(jpath, &len1);
        g_assert_cmpmem(before, len0, after, len1);
    }

    /* and writable; then the volume goes on working */
    v = vol_open(f, "c", 0);
    check_model(v, model, MODEL_SECTORS);
    write_pat(v, 10, 10, n + 1);
    for (unsigned k = 10; k < 20; k++) {
        model[k] = n + 1;
    }
    vol_close(v);
    v = vol_open(f, "c", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "c", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

/* The same crash, but the cache is lost too: the volume is the state
 * after the newest object's last journal record, a prefix of the writes
 * at object granularity. */
static void test_crash_cache_lost(struct fix *f,
                                  gconstpointer data G_GNUC_UNUSED)
{
    const unsigned n = 600;
    g_autofree struct op *ops = make_ops(8, n, MODEL_SECTORS, 64, 5);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    g_autofree uint64_t *ids = NULL;
    struct crash_arg a = { .vol = "c", .ops = ops, .from = 0, .to = n };
    struct lsvd_volume *v;
    struct obj_header h;
    uint64_t newest, jseq;
    unsigned objs;

    vol_create(f, "c", MODEL_SIZE);
    run_child(f, crash_child, &a);
    objs = count_objects(f, "c", &newest);
    g_assert_cmpuint(objs, >=, 2);
    g_assert_cmpuint(newest, ==, objs);
    /* journal record base + i is op i (a fresh volume, one record per
     * op) */
    object_header(f, "c", newest, &h);
    jseq = h.jseq - journal_base(f, "c");
    obj_header_free(&h);
    g_test_message("%u objects; the newest holds writes up to %" PRIu64
                   " of %u", objs, jseq, n);
    g_assert_cmpuint(jseq, >, 0);
    g_assert_cmpuint(jseq, <, n);   /* the tail was only in the journal */

    rm_rf(f->cache);
    v = vol_open(f, "c", 0);
    ids = observe(v, MODEL_SECTORS);
    model_apply(model, ops, 0, jseq);
    g_assert_true(same_ids(ids, model, MODEL_SECTORS, true));
    /* the writes after it are gone, and new ones work */
    write_pat(v, 0, 8, n + 1);
    vol_close(v);
    for (unsigned k = 0; k < 8; k++) {
        model[k] = n + 1;
    }
    v = vol_open(f, "c", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

/*
 * A journal older than the objects: the cache comes back from a copy
 * taken before the batch holding its records was written out (as after
 * a crash between the object PUT and the journal reset).  Its records
 * are all in objects already and must be skipped.
 */
static void test_journal_older_than_objects(struct fix *f,
                                            gconstpointer data G_GNUC_UNUSED)
{
    const unsigned n = 24;
    g_autofree struct op *ops = g_new0(struct op, n);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    g_autofree char *jpath = journal_file(f, "old");
    g_autofree char *saved = g_build_filename(f->root, "saved.journal",
                                              NULL);
    struct crash_arg a = {
        .vol = "old", .ops = ops, .from = 0, .to = n,
        .save_journal_to = saved, .mid = 4, .wait_objects = 1,
    };
    struct lsvd_volume *v;
    struct obj_header h;
    uint64_t newest;

    /* 64 KiB writes, each over part of the one before: the batch of
     * 1 MiB is full after the 16th */
    for (unsigned i = 0; i < n; i++) {
        ops[i] = (struct op){ 64 * i, 128, false };
    }
    vol_create(f, "old", MODEL_SIZE);
    run_child(f, crash_child, &a);
    g_assert_cmpuint(count_objects(f, "old", &newest), ==, 1);
    object_header(f, "old", 1, &h);
    g_assert_cmpuint(h.jseq - journal_base(f, "old"), >=, a.mid);
    model_apply(model, ops, 0, h.jseq - journal_base(f, "old"));
    obj_header_free(&h);

    copy_file(saved, jpath);
    v = vol_open(f, "old", 0);
    check_model(v, model, MODEL_SECTORS);
    write_pat(v, 4000, 8, 100);
    vol_close(v);
    for (unsigned k = 4000; k < 4008; k++) {
        model[k] = 100;
    }
    v = vol_open(f, "old", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

/* Small writes with 16 MiB batches: the 64 MiB journal ring fills before
 * the batch does, writes wait for the PUT, and the ring goes round, so old
 * records with lower sequence numbers lie behind the new ones when the
 * crash comes. */
static void test_journal_wrap_crash(struct fix *f,
                                    gconstpointer data G_GNUC_UNUSED)
{
    const unsigned n = 9000;
    g_autofree struct op *ops = make_ops(9, n, MODEL_SECTORS, 1, 3);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    struct crash_arg a = { .vol = "w", .ops = ops, .from = 0, .to = n,
                           .wait_objects = 1 };
    g_autofree char *jpath = journal_file(f, "w");
    struct lsvd_volume *v;

    fix_config(f, "16M", "64M");
    vol_create(f, "w", MODEL_SIZE);
    run_child(f, crash_child, &a);
    model_apply(model, ops, 0, n);
    /* one write-out, when the journal was full */
    g_assert_cmpuint(count_objects(f, "w", NULL), ==, 1);
    g_assert_cmpuint(file_size(jpath), >=, 60 << 20);

    v = vol_open(f, "w", LSVD_OPEN_RDONLY);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);

    /* the ring went round: both superblock copies moved; damage the newer
     * one (a torn write, or rot): the other still names an intact record */
    {
        size_t len;
        g_autofree uint8_t *data = read_file(jpath, &len);
        struct jnl_super c0, c1;

        g_assert_cmpint(jnl_super_parse(data, JNL_BLOCK, &c0), ==, 0);
        g_assert_cmpint(jnl_super_parse(data + JNL_BLOCK, JNL_BLOCK, &c1),
                        ==, 0);
        g_assert_cmpuint(c0.gen, !=, c1.gen);
        g_assert_cmpuint(MAX(c0.gen, c1.gen), >, 2);
        flip_byte(jpath, (c0.gen > c1.gen ? 0 : JNL_BLOCK) + 50, 0x08);
    }
    v = vol_open(f, "w", LSVD_OPEN_RDONLY);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
    v = vol_open(f, "w", 0);            /* rewrites the damaged copy */
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "w", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

/* Crash after crash, each run recovering the last one's journal and
 * adding to it; nothing flushed is ever lost. */
static void test_repeated_crashes(struct fix *f,
                                  gconstpointer data G_GNUC_UNUSED)
{
    const unsigned runs = 6, per_run = 150;
    g_autofree struct op *ops = make_ops(11, runs * per_run, MODEL_SECTORS,
                                         96, 5);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    struct lsvd_volume *v;

    vol_create(f, "rc", MODEL_SIZE);
    for (unsigned r = 0; r < runs; r++) {
        struct crash_arg a = { .vol = "rc", .ops = ops,
                               .from = r * per_run,
                               .to = (r + 1) * per_run };

        run_child(f, crash_child, &a);
        model_apply(model, ops, a.from, a.to);
        v = vol_open(f, "rc", LSVD_OPEN_RDONLY);
        check_model(v, model, MODEL_SECTORS);
        vol_close(v);
    }
    g_assert_cmpuint(count_objects(f, "rc", NULL), >=, 3);
    v = vol_open(f, "rc", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "rc", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

/* ---- torn and corrupted journal records ---------------------------------- */

/* Eight 4 KiB writes (records of 8 KiB): write i goes to LBA 100 * i,
 * except the last, which overwrites the first. */
#define TORN_N 8

static struct op *torn_ops(void)
{
    struct op *ops = g_new0(struct op, TORN_N);

    for (unsigned i = 0; i < TORN_N; i++) {
        ops[i] = (struct op){ 100 * (i + 1), 8, false };
    }
    ops[TORN_N - 1].lba = 100;
    return ops;
}

static void test_torn_journal(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    const uint64_t rec = 2 * JNL_BLOCK;
    const uint64_t full = JNL_FIRST + TORN_N * rec;
    static const char *const what[] = {
        "last record's data cut short",
        "last record's header cut short",
        "last record's data corrupted",
        "last record's header corrupted",
        "last record's sequence number wrong",
        "last record's data missing",
    };
    g_autofree struct op *ops = torn_ops();

    for (unsigned t = 0; t < G_N_ELEMENTS(what); t++) {
        g_autofree char *vol = g_strdup_printf("torn%u", t);
        g_autofree char *jpath = journal_file(f, vol);
        struct crash_arg a = { .vol = vol, .ops = ops, .from = 0,
                               .to = TORN_N };
        struct lsvd_volume *v;

        g_test_message("%s: %s", vol, what[t]);
        vol_create(f, vol, MODEL_SIZE);
        run_child(f, crash_child, &a);
        g_assert_cmpuint(file_size(jpath), >=, full);
        switch (t) {
        case 0:
            zero_from(jpath, full - 1, full);
            break;
        case 1:
            zero_from(jpath, full - rec + 100, full);
            break;
        case 2:
            flip_byte(jpath, full - 10, 0x40);
            break;
        case 3:
            flip_byte(jpath, full - rec + 64, 0x01);   /* first extent */
            break;
        case 4:
            flip_byte(jpath, full - rec + 32, 0x01);   /* seq */
            break;
        case 5:
            zero_from(jpath, full - rec / 2, full);
            break;
        }

        v = vol_open(f, vol, 0);
        check_pat(v, 100, 8, 1);        /* the last write is gone */
        for (unsigned i = 1; i < TORN_N - 1; i++) {
            check_pat(v, 100 * (i + 1), 8, i + 1);
        }
        /* new writes go where the torn record was */
        write_pat(v, 2000, 8, 50);
        write_pat(v, 300, 1, 51);
        vol_close(v);
        v = vol_open(f, vol, 0);
        check_pat(v, 100, 8, 1);
        check_pat(v, 200, 8, 2);
        check_pat(v, 300, 1, 51);
        check_pat(v, 301, 7, 3);
        check_pat(v, 2000, 8, 50);
        check_pat(v, 800, 8, 0);
        vol_close(v);
    }
}

/*
 * A new volume @vol, open, with writes 1, 2 and 3 of 8 sectors at 100, 200
 * and 300, flushed (three records), and the second record's data then
 * changed in the journal file, as if the device returned it changed.
 */
static struct lsvd_volume *second_record_damaged(struct fix *f,
                                                 const char *vol)
{
    g_autofree char *jpath = journal_file(f, vol);
    const uint64_t rec = 2 * JNL_BLOCK;         /* 8 sectors of data */
    struct lsvd_volume *v;

    vol_create(f, vol, MODEL_SIZE);
    v = vol_open(f, vol, 0);
    write_pat(v, 100, 8, 1);
    write_pat(v, 200, 8, 2);
    write_pat(v, 300, 8, 3);
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    flip_byte(jpath, JNL_FIRST + rec + JNL_BLOCK + 10, 0x40);
    return v;
}

/*
 * With copy_batches = 0 batches hold no copy of the data: a PUT reads it
 * back from the journal and checks each record's CRC.  A record corrupted
 * on the cache device after it was written (and acknowledged) must never
 * reach an object: the PUT fails, writing stops, and the next open replays
 * up to the bad record.
 */
static void test_readback_corrupt(struct fix *f,
                                  gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *jpath = journal_file(f, "rb");
    struct lsvd_volume *v;

    g_assert_cmpint(lsvd_config_set(f->cfg, "log", "copy_batches", "0",
                                    NULL), ==, 0);
    v = second_record_damaged(f, "rb");
    g_assert_cmpint(lsvd_close(v), ==, -EIO);
    g_assert_cmpuint(count_objects(f, "rb", NULL), ==, 0);

    v = vol_open(f, "rb", 0);
    check_pat(v, 100, 8, 1);
    check_pat(v, 200, 8, 0);            /* replay stopped at the bad one */
    check_pat(v, 300, 8, 0);
    vol_close(v);
    g_assert_cmpuint(count_objects(f, "rb", NULL), >=, 1);
    g_assert_cmpint(unlink(jpath), ==, 0);
    v = vol_open(f, "rb", 0);
    check_pat(v, 100, 8, 1);
    check_pat(v, 200, 8, 0);
    vol_close(v);
}

/* Apply ops [0, n) with up to 32 requests in flight at once, window by
 * window (a window's overlapping writes land in submission order). */
static int apply_ops_aio(struct lsvd_volume *v, const struct op *ops,
                         unsigned n)
{
    struct aio_state s = { 0 };
    struct aio_req idx[32];
    uint8_t *bufs[32];
    struct iovec iov[32];
    int ret = 0;

    g_mutex_init(&s.m);
    g_cond_init(&s.c);
    for (unsigned i = 0; i < 32; i++) {
        idx[i] = (struct aio_req){ &s, i };
        bufs[i] = g_malloc(64 * SECT);
    }
    for (unsigned w = 0; w < n && ret == 0; w += 32) {
        unsigned m = MIN(32, n - w);

        s.done = 0;
        for (unsigned i = 0; i < m && ret == 0; i++) {
            const struct op *o = &ops[w + i];

            g_assert_cmpuint(o->sectors, <=, 64);
            if (o->zero) {
                ret = lsvd_aio_write_zeroes(v, o->lba * SECT, o->sectors * SECT,
                                            aio_cb, &idx[i]);
                continue;
            }
            pat_fill(bufs[i], o->lba, o->sectors, w + i + 1);
            iov[i] = (struct iovec){ bufs[i], o->sectors * SECT };
            ret = lsvd_aio_write(v, o->lba * SECT, &iov[i], 1, aio_cb,
                                 &idx[i]);
        }
        aio_wait(&s, m);
        ret = ret < 0 ? ret : s.errors ? -EIO : 0;
    }
    for (unsigned i = 0; i < 32; i++) {
        g_free(bufs[i]);
    }
    g_mutex_clear(&s.m);
    g_cond_clear(&s.c);
    return ret;
}

/*
 * Writes in flight together share journal records (one header for many):
 * the journal takes fewer bytes than a record per write, and a crash
 * replays them all, in order, with the cache kept; and with batches that
 * keep no copy of their data (copy_batches = 0) as well as with copies.
 */
static void merged_records(struct fix *f, bool copies)
{
    const char *vol = copies ? "mc" : "mn";
    const unsigned n = 2000;
    g_autofree struct op *ops = make_ops(11, n, MODEL_SECTORS, 24, 5);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    struct crash_arg a = { .vol = vol, .ops = ops, .to = n,
                           .wait_objects = 1, .aio = true };
    g_autofree char *jpath = journal_file(f, vol);
    struct lsvd_volume *v;
    bool merged = false;

    if (!copies) {
        g_assert_cmpint(lsvd_config_set(f->cfg, "log", "copy_batches", "0",
                                        NULL), ==, 0);
    }
    g_assert_cmpint(lsvd_config_set(f->cfg, "log", "batch_size", "1M",
                                    NULL), ==, 0);

    /* 32 one-sector writes at once take less than 32 records would (the
     * journal thread may start a round before all are queued: retried) */
    vol_create(f, "probe", MODEL_SIZE);
    v = vol_open(f, "probe", 0);
    for (unsigned attempt = 0; attempt < 20 && !merged; attempt++) {
        struct op w[32];
        struct lsvd_info i0, i1;

        for (unsigned i = 0; i < 32; i++) {
            w[i] = (struct op){ .lba = 8 * i + attempt, .sectors = 1 };
        }
        g_assert_cmpint(lsvd_stat(v, &i0), ==, 0);
        g_assert_cmpint(apply_ops_aio(v, w, 32), ==, 0);
        g_assert_cmpint(lsvd_flush(v), ==, 0);
        g_assert_cmpint(lsvd_stat(v, &i1), ==, 0);
        merged = i1.journal_used - i0.journal_used < 32 * 2 * JNL_BLOCK;
    }
    g_assert_true(merged);
    vol_close(v);

    vol_create(f, vol, MODEL_SIZE);
    run_child(f, crash_child, &a);
    model_apply(model, ops, 0, n);
    v = vol_open(f, vol, 0);            /* replays the journal */
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
    g_assert_cmpint(unlink(jpath), ==, 0);
    v = vol_open(f, vol, 0);            /* all in objects */
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

static void test_merged_records(struct fix *f, gconstpointer d G_GNUC_UNUSED)
{
    merged_records(f, true);
}

static void test_merged_records_nocopy(struct fix *f,
                                       gconstpointer d G_GNUC_UNUSED)
{
    merged_records(f, false);
}

/*
 * By default a batch keeps a copy of the data it was given, and its PUT
 * uses that: a record damaged on the cache device after it was written
 * does not reach the object, which holds what was written.
 */
static void test_batch_copy(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *jpath = journal_file(f, "bc");
    struct lsvd_volume *v = second_record_damaged(f, "bc");

    g_assert_cmpint(lsvd_close(v), ==, 0);
    g_assert_cmpuint(count_objects(f, "bc", NULL), >=, 1);
    g_assert_cmpint(unlink(jpath), ==, 0);
    v = vol_open(f, "bc", 0);
    check_pat(v, 100, 8, 1);
    check_pat(v, 200, 8, 2);
    check_pat(v, 300, 8, 3);
    vol_close(v);
}

/*
 * A journal made afresh (its file deleted, the journal map checkpoint
 * kept) can carry the same superblock fields as the old one: the
 * checkpoint must not be taken for it, or reads would go to the new
 * journal's empty blocks instead of the objects.
 */
static void test_journal_deleted_jmap_kept(struct fix *f,
                                           gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *jpath = journal_file(f, "jd");
    struct lsvd_volume *v;

    vol_create(f, "jd", MODEL_SIZE);
    v = vol_open(f, "jd", 0);
    write_pat(v, 100, 8, 1);
    write_pat(v, 300, 16, 2);
    vol_close(v);                       /* writes the checkpoint */
    g_assert_cmpint(unlink(jpath), ==, 0);
    v = vol_open(f, "jd", 0);
    check_pat(v, 100, 8, 1);
    check_pat(v, 300, 16, 2);
    vol_close(v);
}

/* Poll the counters until the journal holds nothing that is not in an
 * object, or @secs seconds pass; the seconds it took, the counters in
 * *@info. */
static double wait_drained(struct lsvd_volume *v, unsigned secs,
                           struct lsvd_info *info)
{
    int64_t t0 = g_get_monotonic_time();

    do {
        g_usleep(100000);
        g_assert_cmpint(lsvd_stat(v, info), ==, 0);
    } while (info->journal_bytes > 0 &&
             g_get_monotonic_time() - t0 < secs * G_USEC_PER_SEC);
    return (g_get_monotonic_time() - t0) / 1e6;
}

/* lsvd_write() of @sectors of write @id at @lba; its result, and how
 * long it took in *@secs. */
static int timed_write(struct lsvd_volume *v, uint64_t lba, uint64_t sectors,
                       uint64_t id, double *secs)
{
    g_autofree uint8_t *buf = g_malloc(sectors * SECT);
    int64_t t0;
    int ret;

    pat_fill(buf, lba, sectors, id);
    t0 = g_get_monotonic_time();
    ret = lsvd_write(v, lba * SECT, buf, sectors * SECT);
    *secs = (g_get_monotonic_time() - t0) / 1e6;
    return ret;
}

/*
 * [cache] write_timeout: with the store refusing PUTs, writes go on into
 * the journal until it is full (not only until a few batches are in
 * memory), then wait, and fail with EIO once they have waited that long;
 * a request split into several records that fails after its first one is
 * answered once, with EIO.  When the store takes PUTs again, writes work
 * again and nothing acknowledged is lost.  dir:// only: a directory in an
 * object's place makes its PUT fail, even for root.
 */
static void test_write_timeout(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    static const char *const keys[] = { "write_timeout", "1", NULL };
    const uint64_t rec = (16ULL << 20) / SECT;     /* one whole record */
    g_autofree char *cache = NULL;
    struct lsvd_volume *v;
    char *blocked[4];
    struct lsvd_info info;
    double secs;
    unsigned n;
    int ret = 0;

    if (f->s3) {
        g_test_skip("needs dir:// to refuse PUTs");
        return;
    }
    fix_config_full(f, "1M", "64M", 0, keys);
    vol_create(f, "wt", 128ULL << 20);
    for (unsigned i = 0; i < G_N_ELEMENTS(blocked); i++) {
        g_autofree char *name = object_name("wt", i + 1);

        blocked[i] = g_build_filename(f->store, name, NULL);
        if (!g_file_test(blocked[i], G_FILE_TEST_EXISTS)) {
            g_assert_cmpint(g_mkdir_with_parents(blocked[i], 0755), ==, 0);
        }
    }
    v = vol_open(f, "wt", 0);
    g_assert_cmpint(timed_write(v, 0, rec, 1, &secs), ==, 0);
    g_assert_cmpint(timed_write(v, rec, rec, 2, &secs), ==, 0);
    g_assert_cmpint(timed_write(v, 2 * rec, rec / 2, 3, &secs), ==, 0);
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    /* 40 MiB are in, in 1 MiB batches none of which could be PUT; a write
     * of two records: the first fits, the second does not */
    g_assert_cmpint(timed_write(v, 3 * rec, 2 * rec, 9, &secs), ==, -EIO);
    g_test_message("a write waited %.2f s for journal space", secs);
    g_assert_cmpfloat(secs, >=, 0.9);
    /* what is left of the ring takes small writes, then they fail too */
    for (n = 0; n < 16; n++) {
        ret = timed_write(v, 200000 + n * 2048, 2048, 4 + n, &secs);
        if (ret < 0) {
            break;
        }
    }
    g_test_message("%u more 1 MiB writes went in", n);
    g_assert_cmpint(ret, ==, -EIO);
    g_assert_cmpfloat(secs, >=, 0.9);

    for (unsigned i = 0; i < G_N_ELEMENTS(blocked); i++) {
        g_rmdir(blocked[i]);
        g_free(blocked[i]);
    }
    /* the PUTs' next retries (backed off up to 5 s) drain the journal;
     * a write before that could time out again */
    wait_drained(v, 60, &info);
    g_assert_cmpuint(info.journal_bytes, ==, 0);
    g_assert_cmpint(timed_write(v, 200000, 2048, 100, &secs), ==, 0);
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    vol_close(v);

    cache = g_build_filename(f->root, "cache", NULL);
    rm_rf(cache);
    v = vol_open(f, "wt", 0);
    check_pat(v, 0, rec, 1);
    check_pat(v, rec, rec, 2);
    check_pat(v, 2 * rec, rec / 2, 3);
    check_pat(v, 200000, 2048, 100);
    vol_close(v);
}

/*
 * [log] batch_timeout: a batch that is not full is PUT once it is that
 * old, so a volume gone quiet has its last writes in the store (and a lost
 * cache loses none of them); the counters follow the PUTs without any new
 * request.
 */
static void test_batch_timeout(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    static const char *const keys[] = { NULL };
    g_autofree char *conf = NULL, *cache = NULL;
    struct lsvd_volume *v;
    struct lsvd_info info;

    fix_config_full(f, "1M", "64M", 0, keys);
    g_assert_cmpint(lsvd_config_set(f->cfg, "log", "batch_timeout", "1",
                                    NULL), ==, 0);
    vol_create(f, "bt", MODEL_SIZE);
    v = vol_open(f, "bt", 0);
    write_pat(v, 100, 64, 1);
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    g_test_message("in the store after %.1f s", wait_drained(v, 10, &info));
    g_assert_cmpuint(info.journal_bytes, ==, 0);
    g_assert_cmpuint(count_objects(f, "bt", NULL), >=, 1);
    /* the cache lost while the volume is open: the store has the write */
    cache = g_build_filename(f->root, "cache", NULL);
    g_assert_cmpint(lsvd_close(v), ==, 0);
    rm_rf(cache);
    v = vol_open(f, "bt", 0);
    check_pat(v, 100, 64, 1);
    vol_close(v);
}

/*
 * A close while the store refuses PUTs gives up after about 10 s instead
 * of waiting out the outage: the data stays in the journal, and the next
 * open, with the store back, replays it.
 */
static void test_close_during_outage(struct fix *f,
                                     gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *name = object_name("co", 1);
    g_autofree char *blocked = NULL;
    struct lsvd_volume *v;
    int64_t t0;
    double secs;
    int ret;

    if (f->s3) {
        g_test_skip("needs dir:// to refuse PUTs");
        return;
    }
    vol_create(f, "co", MODEL_SIZE);
    blocked = g_build_filename(f->store, name, NULL);
    g_assert_false(g_file_test(blocked, G_FILE_TEST_EXISTS));
    g_assert_cmpint(g_mkdir_with_parents(blocked, 0755), ==, 0);
    v = vol_open(f, "co", 0);
    write_pat(v, 100, 64, 1);
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    t0 = g_get_monotonic_time();
    ret = lsvd_close(v);
    secs = (g_get_monotonic_time() - t0) / 1e6;
    g_test_message("close: %d after %.1f s", ret, secs);
    g_assert_cmpint(ret, <, 0);
    g_assert_cmpfloat(secs, <, 30);
    g_assert_cmpint(g_rmdir(blocked), ==, 0);
    v = vol_open(f, "co", 0);
    check_pat(v, 100, 64, 1);
    vol_close(v);
    g_assert_cmpuint(count_objects(f, "co", NULL), >=, 1);
}

/* User and system CPU seconds of this process so far. */
static double cpu_seconds(void)
{
    struct rusage ru;

    g_assert_cmpint(getrusage(RUSAGE_SELF, &ru), ==, 0);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Write 20 MiB in 1 MiB writes (write i is id i + 1), flush, and "crash"
 * with nothing in objects (the test refuses PUTs). */
static int replay_child(struct fix *f, void *p G_GNUC_UNUSED)
{
    struct lsvd_volume *v = NULL;
    struct lsvd_err err;
    g_autofree uint8_t *buf = g_malloc(1 << 20);

    if (lsvd_open(f->cfg, "rp", 0, &v, &err) < 0) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        return 10;
    }
    for (uint64_t i = 0; i < 20; i++) {
        pat_fill(buf, i * 2048, 2048, i + 1);
        if (lsvd_write(v, i << 20, buf, 1 << 20) < 0) {
            return 11;
        }
    }
    return lsvd_flush(v) < 0 ? 12 : 0;
}

/*
 * Replay after a crash seals batches as they fill: a journal holding many
 * batches' worth goes back into as many objects, not one as large as the
 * journal (which also had to be held in memory whole).
 */
static void test_replay_batches(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *name = object_name("rp", 1);
    g_autofree char *jpath = journal_file(f, "rp");
    g_autofree char *blocked = NULL;
    struct lsvd_volume *v;
    double cpu;
    unsigned n;

    if (f->s3) {
        g_test_skip("needs dir:// to refuse PUTs");
        return;
    }
    fix_config(f, "1M", "64M");
    vol_create(f, "rp", 32ULL << 20);
    blocked = g_build_filename(f->store, name, NULL);
    g_assert_cmpint(g_mkdir_with_parents(blocked, 0755), ==, 0);
    run_child(f, replay_child, NULL);

    /* read-only, the replayed batch can never be sealed: the journal
     * thread must still sleep, not spin, while the volume is idle */
    g_assert_cmpint(lsvd_config_set(f->cfg, "log", "batch_timeout", "1",
                                    NULL), ==, 0);
    v = vol_open(f, "rp", LSVD_OPEN_RDONLY);
    g_usleep(1200000);              /* past batch_timeout */
    cpu = cpu_seconds();
    g_usleep(1500000);
    cpu = cpu_seconds() - cpu;
    g_test_message("read-only and idle for 1.5 s: %.3f s of CPU", cpu);
    g_assert_cmpfloat(cpu, <, 0.3);
    vol_close(v);

    g_assert_cmpint(g_rmdir(blocked), ==, 0);

    v = vol_open(f, "rp", 0);
    vol_close(v);
    n = count_objects(f, "rp", NULL);
    g_test_message("replay of 20 MiB in 1 MiB batches: %u objects", n);
    g_assert_cmpuint(n, >=, 10);
    g_assert_cmpint(unlink(jpath), ==, 0);
    v = vol_open(f, "rp", 0);
    for (uint64_t i = 0; i < 20; i++) {
        check_pat(v, i * 2048, 2048, i + 1);
    }
    vol_close(v);
}

struct one_write_arg {
    const char *vol;
    uint64_t lba, sectors, id;
};

/* Open, write one pattern, flush, crash. */
static int one_write_child(struct fix *f, void *p)
{
    struct one_write_arg *a = p;
    struct lsvd_volume *v = NULL;
    struct lsvd_err err;
    g_autofree uint8_t *buf = g_malloc(a->sectors * SECT);

    if (lsvd_open(f->cfg, a->vol, 0, &v, &err) < 0) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        return 10;
    }
    pat_fill(buf, a->lba, a->sectors, a->id);
    if (lsvd_write(v, a->lba * SECT, buf, a->sectors * SECT) < 0 ||
        lsvd_flush(v) < 0) {
        return 11;
    }
    return 0;
}

/*
 * A record in the middle of the journal is corrupted (bit rot, or a
 * record that did not reach the disk while a later one did): replay
 * stops there and drops the records after it.  A write made after that
 * recovery takes the corrupted record's place; after a second crash the
 * dropped records behind it, whose sequence numbers follow on, must not
 * come back and undo it.
 */
static void test_journal_stale_records_after_corruption(
    struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    const uint64_t rec = 2 * JNL_BLOCK;
    g_autofree struct op *ops = g_new0(struct op, TORN_N);
    g_autofree char *jpath = journal_file(f, "s");
    struct crash_arg a = { .vol = "s", .ops = ops, .from = 0,
                           .to = TORN_N };
    struct one_write_arg w = { "s", 100, 8, 9 };
    struct lsvd_volume *v;

    /* write 5 overwrites write 1 at LBA 100 */
    for (unsigned i = 0; i < TORN_N; i++) {
        ops[i] = (struct op){ 100 * (i + 1), 8, false };
    }
    ops[4].lba = 100;
    vol_create(f, "s", MODEL_SIZE);
    run_child(f, crash_child, &a);
    /* corrupt the data of record 4 */
    flip_byte(jpath, JNL_FIRST + 3 * rec + JNL_BLOCK + 10, 0x10);

    v = vol_open(f, "s", LSVD_OPEN_RDONLY);
    check_pat(v, 100, 8, 1);
    check_pat(v, 200, 8, 2);
    check_pat(v, 300, 8, 3);
    check_pat(v, 400, 8, 0);
    check_pat(v, 600, 8, 0);
    vol_close(v);

    /* recover, write 9 over LBA 100 (a record of the same size as record
     * 4, in its place), flush, crash again */
    run_child(f, one_write_child, &w);

    v = vol_open(f, "s", LSVD_OPEN_RDONLY);
    check_pat(v, 100, 8, 9);
    check_pat(v, 200, 8, 2);
    check_pat(v, 300, 8, 3);
    check_pat(v, 400, 8, 0);
    check_pat(v, 600, 8, 0);
    check_pat(v, 700, 8, 0);
    check_pat(v, 800, 8, 0);
    vol_close(v);
    v = vol_open(f, "s", 0);
    check_pat(v, 100, 8, 9);
    check_pat(v, 600, 8, 0);
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "s", 0);
    check_pat(v, 100, 8, 9);
    check_pat(v, 600, 8, 0);
    vol_close(v);
}

/* ---- corrupted objects --------------------------------------------------- */

static void test_corrupt_object_chunk(struct fix *f,
                                      gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *obj = object_name("bad", 1);
    g_autofree char *obj2 = object_name("bad", 2);
    g_autofree uint8_t *buf = g_malloc(1 << 20);
    g_autofree uint8_t *noise = g_malloc(128 * SECT);
    struct lsvd_volume *v;
    struct obj_header h;
    uint64_t soff[8] = { 0 };
    uint64_t x = 1;
    unsigned errors0;

    /* data LZ4 cannot shrink, so that chunk 6 is stored raw */
    for (unsigned i = 0; i < 128 * SECT; i += 8) {
        x = mix(x);
        put_le64(noise + i, x);
    }
    vol_create(f, "bad", MODEL_SIZE);
    v = vol_open(f, "bad", 0);
    write_pat(v, 0, 512, 1);        /* 256 KiB: chunks 0-3 */
    write_pat(v, 1024, 256, 2);     /* 128 KiB compressible: chunks 4-5 */
    g_assert_cmpint(lsvd_write(v, 2048 * SECT, noise, 128 * SECT), ==, 0);
    vol_close(v);

    object_header(f, "bad", 1, &h);
    g_assert_cmpuint(h.n_chunks, ==, 7);
    for (unsigned i = 0; i < 7; i++) {
        soff[i + 1] = soff[i] + h.chunks[i].stored_len;
    }
    g_assert_cmpuint(h.chunks[4].flags, ==, OBJ_CHUNK_LZ4);
    g_assert_cmpuint(h.chunks[6].flags, ==, 0);
    store_flip_byte(f, obj, h.hdr_len + soff[2] + 100, 0x01);
    store_flip_byte(f, obj, h.hdr_len + soff[4] + 5, 0x80);
    store_flip_byte(f, obj, h.hdr_len + soff[6] + 64 * SECT + 1, 0x02);
    obj_header_free(&h);

    errors0 = log_error_count();
    rm_rf(f->cache);                /* else the journal serves the reads */
    v = vol_open(f, "bad", 0);
    /* the good chunks read fine ... */
    check_pat(v, 0, 256, 1);
    check_pat(v, 384, 128, 1);
    check_pat(v, 1152, 128, 2);
    /* ... the corrupted ones fail, never returning wrong data */
    g_assert_cmpint(lsvd_read(v, 256 * SECT, buf, 128 * SECT), ==, -EIO);
    g_assert_cmpint(lsvd_read(v, 300 * SECT, buf, SECT), ==, -EIO);
    g_assert_cmpint(lsvd_read(v, 383 * SECT, buf, SECT), ==, -EIO);
    g_assert_cmpint(lsvd_read(v, 1024 * SECT, buf, SECT), ==, -EIO);
    g_assert_cmpint(lsvd_read(v, 1100 * SECT, buf, 100 * SECT), ==, -EIO);
    g_assert_cmpint(lsvd_read(v, 2048 * SECT, buf, SECT), ==, -EIO);
    g_assert_cmpint(lsvd_read(v, 2175 * SECT, buf, SECT), ==, -EIO);
    g_assert_cmpint(lsvd_read(v, 0, buf, 1 << 20), ==, -EIO);
    g_assert_cmpint(lsvd_read(v, 2040 * SECT, buf, 16 * SECT), ==, -EIO);
    g_assert_cmpuint(log_error_count(), >, errors0);
    g_mutex_lock(&log_lock);
    g_assert_nonnull(strstr(log_last, "0000000000000001"));
    g_mutex_unlock(&log_lock);

    /* rewriting a range makes it readable again, now and later */
    write_pat(v, 256, 128, 3);
    check_pat(v, 256, 128, 3);
    g_assert_cmpint(lsvd_write(v, 2048 * SECT, noise, 128 * SECT), ==, 0);
    vol_close(v);
    v = vol_open(f, "bad", 0);
    check_pat(v, 256, 128, 3);
    g_assert_cmpint(lsvd_read(v, 2048 * SECT, buf, 128 * SECT), ==, 0);
    g_assert_cmpmem(buf, 128 * SECT, noise, 128 * SECT);
    g_assert_cmpint(lsvd_read(v, 1024 * SECT, buf, SECT), ==, -EIO);
    vol_close(v);

    /* an object cut short fails the reads past its end */
    object_header(f, "bad", 2, &h);
    g_assert_cmpuint(store_size(f, obj2), ==, h.hdr_len + h.data_len);
    obj_header_free(&h);
    store_truncate(f, obj2, store_size(f, obj2) - 1000);
    rm_rf(f->cache);
    v = vol_open(f, "bad", 0);
    check_pat(v, 0, 256, 1);
    g_assert_cmpint(lsvd_read(v, 2048 * SECT, buf, 128 * SECT), ==, -EIO);
    vol_close(v);
}

static void test_corrupt_object_header(struct fix *f,
                                       gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *obj = object_name("hdr", 1);
    struct lsvd_volume *v;
    char *msg;

    vol_create(f, "hdr", MODEL_SIZE);
    v = vol_open(f, "hdr", 0);
    write_pat(v, 0, 64, 1);
    vol_close(v);
    store_flip_byte(f, obj, OBJ_FIXED_LEN + 2, 0x04);   /* first extent's LBA */

    msg = vol_open_fails(f, "hdr", 0, -EIO);
    g_assert_nonnull(strstr(msg, "0000000000000001"));
    g_free(msg);
    g_free(vol_open_fails(f, "hdr", LSVD_OPEN_RDONLY, -EIO));
    /* the object is not deleted: it is evidence, not a stray */
    g_assert_true(store_exists(f, obj));
    store_flip_byte(f, obj, OBJ_FIXED_LEN + 2, 0x04);
    v = vol_open(f, "hdr", 0);
    check_pat(v, 0, 64, 1);
    vol_close(v);
}

/* A journal whose superblock is unreadable is refused, not skipped (its
 * records may hold flushed writes); the volume can still be removed. */
static void test_corrupt_journal_super(struct fix *f,
                                       gconstpointer data G_GNUC_UNUSED)
{
    struct one_write_arg w = { "js", 0, 8, 1 };
    g_autofree char *jpath = journal_file(f, "js");
    struct lsvd_err err = { { 0 } };
    char *msg;

    vol_create(f, "js", MODEL_SIZE);
    run_child(f, one_write_child, &w);
    flip_byte(jpath, 40, 0x01);                 /* data_start, copy 0 */
    flip_byte(jpath, JNL_BLOCK + 40, 0x01);     /* and copy 1 */

    msg = vol_open_fails(f, "js", 0, -EIO);
    g_assert_nonnull(strstr(msg, "js.journal"));
    g_free(msg);
    g_free(vol_open_fails(f, "js", LSVD_OPEN_RDONLY, -EIO));

    g_assert_cmpint(lsvd_remove(f->cfg, "js", &err), ==, 0);
    g_free(vol_open_fails(f, "js", 0, -ENOENT));
    vol_create(f, "js", MODEL_SIZE);
    {
        struct lsvd_volume *v = vol_open(f, "js", 0);
        check_pat(v, 0, 8, 0);
        vol_close(v);
    }
}

/* ---- journals of other volumes ------------------------------------------- */

static void test_foreign_journal(struct fix *f,
                                 gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *jpath = journal_file(f, "a");
    g_autofree char *saved = g_build_filename(f->root, "a.journal.old",
                                              NULL);
    struct lsvd_err err = { { 0 } };
    struct one_write_arg w = { "a", 0, 8, 1 };
    struct lsvd_volume *v;
    char *msg;

    /* the first "a" crashes with a write in its journal */
    vol_create(f, "a", MODEL_SIZE);
    run_child(f, one_write_child, &w);
    copy_file(jpath, saved);

    /* a new "a" (new UUID) finds the old journal in its place */
    g_assert_cmpint(lsvd_remove(f->cfg, "a", &err), ==, 0);
    g_assert_false(g_file_test(jpath, G_FILE_TEST_EXISTS));
    vol_create(f, "a", MODEL_SIZE);
    copy_file(saved, jpath);
    msg = vol_open_fails(f, "a", 0, -EINVAL);
    g_assert_nonnull(strstr(msg, "another volume"));
    g_assert_nonnull(strstr(msg, "a.journal"));
    g_free(msg);
    g_free(vol_open_fails(f, "a", LSVD_OPEN_RDONLY, -EINVAL));
    /* the refused journal is left as it was */
    {
        size_t l0, l1;
        g_autofree uint8_t *d0 = read_file(saved, &l0);
        g_autofree uint8_t *d1 = read_file(jpath, &l1);
        g_assert_cmpmem(d0, l0, d1, l1);
    }

    /* once it is moved away, the new volume opens and is empty */
    g_assert_cmpint(g_unlink(jpath), ==, 0);
    v = vol_open(f, "a", 0);
    check_pat(v, 0, 8, 0);
    vol_close(v);

    /* removing a volume leaves another volume's journal alone */
    copy_file(saved, jpath);
    g_assert_cmpint(lsvd_remove(f->cfg, "a", &err), ==, 0);
    g_assert_true(g_file_test(jpath, G_FILE_TEST_EXISTS));
}

/* ---- the writer lock ----------------------------------------------------- */

static void test_exclusive_same_process(struct fix *f,
                                        gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v;
    char *msg;

    vol_create(f, "x", MODEL_SIZE);
    v = vol_open(f, "x", 0);
    write_pat(v, 0, 8, 1);
    msg = vol_open_fails(f, "x", 0, -EBUSY);
    g_assert_nonnull(strstr(msg, "in use"));
    g_free(msg);
    g_assert_cmpint(lsvd_remove(f->cfg, "x", &err), ==, -EBUSY);
    /* the refused open and remove disturbed nothing */
    write_pat(v, 8, 8, 2);
    check_pat(v, 0, 8, 1);
    check_pat(v, 8, 8, 2);
    vol_close(v);
    v = vol_open(f, "x", 0);
    check_pat(v, 0, 8, 1);
    check_pat(v, 8, 8, 2);
    vol_close(v);
}

struct holder_arg {
    const char *vol;
    int ready_fd;       /* child writes one byte when it holds the lock */
    int release_fd;     /* child exits when it reads one byte */
};

static int holder_child(struct fix *f, void *p)
{
    struct holder_arg *a = p;
    struct lsvd_volume *v = NULL;
    struct lsvd_err err;
    char c = 'r';
    int ret;

    if (lsvd_open(f->cfg, a->vol, 0, &v, &err) < 0) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        return 10;
    }
    if (write(a->ready_fd, &c, 1) != 1 || read(a->release_fd, &c, 1) != 1) {
        return 11;
    }
    ret = lsvd_close(v);
    return ret < 0 ? 12 : 0;
}

static void test_exclusive_two_processes(struct fix *f,
                                         gconstpointer data G_GNUC_UNUSED)
{
    int ready[2], release[2];
    struct holder_arg a = { "x2", 0, 0 };
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v;
    int status;
    pid_t pid;
    char c;

    vol_create(f, "x2", MODEL_SIZE);
    g_assert_cmpint(pipe(ready), ==, 0);
    g_assert_cmpint(pipe(release), ==, 0);
    a.ready_fd = ready[1];
    a.release_fd = release[0];
    fflush(NULL);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        _exit(holder_child(f, &a));
    }
    g_assert_cmpint(read(ready[0], &c, 1), ==, 1);

    g_free(vol_open_fails(f, "x2", 0, -EBUSY));
    g_assert_cmpint(lsvd_remove(f->cfg, "x2", &err), ==, -EBUSY);

    g_assert_cmpint(write(release[1], &c, 1), ==, 1);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    close(ready[0]);
    close(ready[1]);
    close(release[0]);
    close(release[1]);

    /* free again once the holder is gone */
    v = vol_open(f, "x2", 0);
    vol_close(v);
}

/* ---- list and remove ----------------------------------------------------- */

static void test_list_remove(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *v;
    char **names = NULL;
    const char *junk = "notavolume/README";
    g_autofree char *empty = f->s3 ? NULL :
        g_build_filename(f->store, "empty", NULL);
    g_autofree char *bdir = f->s3 ? NULL :
        g_build_filename(f->store, "b", NULL);
    g_autofree char *bjnl = journal_file(f, "b");

    /* an empty (even missing) store lists nothing */
    g_assert_cmpint(lsvd_list(f->cfg, &names, &err), ==, 0);
    g_assert_nonnull(names);
    g_assert_null(names[0]);
    lsvd_free_names(names);

    vol_create(f, "c", 1 << 20);
    vol_create(f, "a", 1 << 20);
    vol_create(f, "b", 8 << 20);
    /* objects under a name without a superblock are not a volume; on
     * dir://, nor is an empty directory */
    store_put(f, junk, (const uint8_t *)"hello", 5);
    if (!f->s3) {
        g_assert_cmpint(g_mkdir(empty, 0755), ==, 0);
    }
    g_assert_cmpint(lsvd_list(f->cfg, &names, &err), ==, 0);
    g_assert_cmpuint(g_strv_length(names), ==, 3);
    g_assert_cmpstr(names[0], ==, "a");
    g_assert_cmpstr(names[1], ==, "b");
    g_assert_cmpstr(names[2], ==, "c");
    lsvd_free_names(names);

    /* remove a volume with objects and a journal */
    v = vol_open(f, "b", 0);
    write_pat(v, 0, 4096, 1);       /* 2 MiB: objects */
    write_pat(v, 8000, 8, 2);
    vol_close(v);
    g_assert_cmpuint(count_objects(f, "b", NULL), >=, 2);
    g_assert_true(g_file_test(bjnl, G_FILE_TEST_EXISTS));
    g_assert_cmpint(lsvd_remove(f->cfg, "b", &err), ==, 0);
    g_assert_cmpuint(store_count(f, "b/"), ==, 0);
    if (!f->s3) {
        g_assert_false(g_file_test(bdir, G_FILE_TEST_EXISTS));
    }
    g_assert_false(g_file_test(bjnl, G_FILE_TEST_EXISTS));
    g_assert_cmpint(lsvd_remove(f->cfg, "b", &err), ==, -ENOENT);
    g_assert_cmpint(lsvd_remove(f->cfg, "../b", &err), ==, -EINVAL);
    g_free(vol_open_fails(f, "b", 0, -ENOENT));

    g_assert_cmpint(lsvd_list(f->cfg, &names, &err), ==, 0);
    g_assert_cmpuint(g_strv_length(names), ==, 2);
    g_assert_cmpstr(names[0], ==, "a");
    g_assert_cmpstr(names[1], ==, "c");
    lsvd_free_names(names);

    /* a new volume of the same name starts empty */
    vol_create(f, "b", 8 << 20);
    v = vol_open(f, "b", 0);
    check_pat(v, 0, 16384, 0);
    write_pat(v, 0, 4096, 3);
    vol_close(v);
    g_assert_true(store_exists(f, junk));
    if (!f->s3) {
        g_assert_true(g_file_test(empty, G_FILE_TEST_IS_DIR));
    }

    /* objects left behind without a superblock belong to no volume: a
     * volume created under that name does not see them */
    {
        g_assert_cmpuint(count_objects(f, "b", NULL), ==, 1);
        store_del(f, "b/super");
        g_free(vol_open_fails(f, "b", 0, -ENOENT));
        vol_create(f, "b", 8 << 20);
        g_assert_cmpuint(count_objects(f, "b", NULL), ==, 0);
        v = vol_open(f, "b", 0);
        check_pat(v, 0, 16384, 0);
        vol_close(v);
    }
}

/* ---- stranded objects ---------------------------------------------------- */

/*
 * A writer killed inside its first open leaves an empty journal file, or
 * one allocated but with no superblock yet: read-only opens see an empty
 * journal, and a writable open starts it afresh.  (Found by the crash
 * test: lsvd info failed on such a volume.)
 */
static void test_interrupted_journal_creation(struct fix *f,
                                              gconstpointer data
                                              G_GNUC_UNUSED)
{
    g_autofree char *jpath = journal_file(f, "ic");
    struct lsvd_volume *v;

    vol_create(f, "ic", MODEL_SIZE);
    g_assert_cmpint(g_mkdir_with_parents(f->cache, 0700), ==, 0);
    for (int k = 0; k < 2; k++) {
        g_assert_true(g_file_set_contents(jpath, "", 0, NULL));
        if (k == 1) {
            truncate_file(jpath, 1 << 20);      /* allocated, all zeros */
        }
        v = vol_open(f, "ic", LSVD_OPEN_RDONLY);
        check_pat(v, 0, 8, k);          /* what the objects hold */
        vol_close(v);
        v = vol_open(f, "ic", 0);
        write_pat(v, 0, 8, k + 1);
        vol_close(v);
        v = vol_open(f, "ic", LSVD_OPEN_RDONLY);
        check_pat(v, 0, 8, k + 1);
        vol_close(v);
        g_assert_cmpint(unlink(jpath), ==, 0);
    }
}

/* ---- journal map checkpoints --------------------------------------------- */

/*
 * A clean close writes CACHE/VOL.jmap, and the next open takes the ring's
 * records from it; a crash after that open replays the ring from where the
 * checkpoint ends.  A corrupted or stale checkpoint is ignored.
 */
static void test_jmap_checkpoint(struct fix *f,
                                 gconstpointer data G_GNUC_UNUSED)
{
    const unsigned n = 400;
    g_autofree struct op *ops = make_ops(31, 2 * n, MODEL_SECTORS, 64, 5);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    g_autofree char *jm = g_build_filename(f->cache, "jc.jmap", NULL);
    struct crash_arg a = { .vol = "jc", .ops = ops, .from = n, .to = 2 * n };
    struct lsvd_volume *v;

    vol_create(f, "jc", MODEL_SIZE);
    v = vol_open(f, "jc", 0);
    g_assert_cmpint(apply_ops(v, ops, 0, n), ==, 0);
    model_apply(model, ops, 0, n);
    vol_close(v);
    g_assert_true(g_file_test(jm, G_FILE_TEST_EXISTS));

    v = vol_open(f, "jc", LSVD_OPEN_RDONLY);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);

    /* open from the checkpoint, write more, crash: checkpoint + replay */
    run_child(f, crash_child, &a);
    model_apply(model, ops, n, 2 * n);
    v = vol_open(f, "jc", LSVD_OPEN_RDONLY);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);

    /* a corrupted checkpoint is ignored: the ring is read instead */
    flip_byte(jm, 40, 0x01);
    v = vol_open(f, "jc", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "jc", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

/* ---- object map checkpoints ---------------------------------------------- */

/* The sequence numbers of @vol's checkpoint objects, ascending. */
static GArray *checkpoints(struct fix *f, const char *vol, uint64_t newest)
{
    GArray *seqs = g_array_new(FALSE, FALSE, sizeof(uint64_t));

    for (uint64_t seq = 1; seq <= newest; seq++) {
        g_autofree char *name = object_name(vol, seq);
        size_t len;
        g_autofree uint8_t *data = NULL;

        if (!store_exists(f, name)) {
            continue;
        }
        data = store_get(f, name, &len);
        if (obj_type(data, len) == OBJ_TYPE_CHECKPOINT) {
            g_array_append_val(seqs, seq);
        }
    }
    return seqs;
}

/*
 * Checkpoints every 3 objects: a volume reopened without its cache loads
 * the newest checkpoint and the objects after it; if that checkpoint is
 * corrupted, an older one and the objects after it give the same volume.
 */
static void test_checkpoints(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    const unsigned n = 1500;
    g_autofree struct op *ops = make_ops(21, n, MODEL_SECTORS, 64, 5);
    g_autofree uint64_t *model = g_new0(uint64_t, MODEL_SECTORS);
    g_autoptr(GArray) ck = NULL;
    struct lsvd_volume *v;
    struct lsvd_info info;
    uint64_t newest, last;
    struct ckpt c;
    size_t need, len;

    fix_config_ckpt(f, "1M", "64M", 3);
    vol_create(f, "ck", MODEL_SIZE);
    v = vol_open(f, "ck", 0);
    g_assert_cmpint(apply_ops(v, ops, 0, n), ==, 0);
    model_apply(model, ops, 0, n);
    vol_close(v);

    count_objects(f, "ck", &newest);
    ck = checkpoints(f, "ck", newest);
    g_test_message("%" PRIu64 " objects, %u checkpoints", newest, ck->len);
    g_assert_cmpuint(ck->len, >=, 2);
    last = g_array_index(ck, uint64_t, ck->len - 1);
    {
        g_autofree char *name = object_name("ck", last);
        g_autofree uint8_t *data = store_get(f, name, &len);

        g_assert_cmpint(ckpt_parse(data, len, &c, &need), ==, 0);
        g_assert_cmpuint(c.seq, ==, last);
        g_assert_cmpuint(c.n_extents, >, 0);
        g_assert_cmpuint(c.n_objects, >, 0);
        ckpt_free(&c);
    }

    rm_rf(f->cache);
    v = vol_open(f, "ck", LSVD_OPEN_RDONLY);
    check_model(v, model, MODEL_SECTORS);
    g_assert_cmpint(lsvd_stat(v, &info), ==, 0);
    g_assert_cmpuint(info.last_seq, ==, newest);
    vol_close(v);

    /* the newest checkpoint corrupted: the one before it serves */
    {
        g_autofree char *name = object_name("ck", last);
        store_flip_byte(f, name, 200, 0x04);
    }
    v = vol_open(f, "ck", 0);
    check_model(v, model, MODEL_SECTORS);
    write_pat(v, 0, 8, n + 1);
    vol_close(v);
    for (unsigned k = 0; k < 8; k++) {
        model[k] = n + 1;
    }
    rm_rf(f->cache);
    v = vol_open(f, "ck", 0);
    check_model(v, model, MODEL_SECTORS);
    vol_close(v);
}

static void test_stranded_objects(struct fix *f,
                                  gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *obj1 = object_name("st", 1);
    g_autofree char *obj4 = object_name("st", 4);
    const char *odd = "st/README";
    struct lsvd_volume *v;
    uint64_t newest;

    vol_create(f, "st", MODEL_SIZE);
    v = vol_open(f, "st", 0);
    write_pat(v, 0, 256, 1);
    vol_close(v);                   /* object 1 */
    v = vol_open(f, "st", 0);
    write_pat(v, 0, 128, 2);
    vol_close(v);                   /* object 2 */
    g_assert_cmpuint(count_objects(f, "st", &newest), ==, 2);

    /* object 4 after a gap: a leftover of a log that was cut at 2 */
    store_copy(f, obj1, obj4);
    store_put(f, odd, (const uint8_t *)"hello", 5);

    /* a read-only open neither uses nor deletes it */
    v = vol_open(f, "st", LSVD_OPEN_RDONLY);
    check_pat(v, 0, 128, 2);
    check_pat(v, 128, 128, 1);
    vol_close(v);
    g_assert_true(store_exists(f, obj4));

    /* a writable open deletes it and does not use it */
    v = vol_open(f, "st", 0);
    g_assert_false(store_exists(f, obj4));
    check_pat(v, 0, 128, 2);
    check_pat(v, 128, 128, 1);
    write_pat(v, 64, 8, 3);
    vol_close(v);                   /* object 3: the log is 1..3 again */
    g_assert_cmpuint(count_objects(f, "st", &newest), ==, 3);
    g_assert_cmpuint(newest, ==, 3);
    /* a file with another name is left alone */
    g_assert_true(store_exists(f, odd));

    v = vol_open(f, "st", 0);
    check_pat(v, 0, 64, 2);
    check_pat(v, 64, 8, 3);
    check_pat(v, 72, 56, 2);
    check_pat(v, 128, 128, 1);
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "st", 0);
    check_pat(v, 64, 8, 3);
    vol_close(v);
}

/* ---- threads ------------------------------------------------------------- */

struct thread_arg {
    struct lsvd_volume *v;
    unsigned t;
    int failed;
};

/* Each thread writes and reads back its own 2 MiB region. */
static gpointer thread_main(gpointer p)
{
    struct thread_arg *a = p;
    const uint64_t base = a->t * 4096, n = 4096;
    g_autofree uint64_t *model = g_new0(uint64_t, n);
    g_autofree struct op *ops = make_ops(100 + a->t, 300, n, 64, 10);
    g_autofree uint8_t *buf = g_malloc(n * SECT);

    for (unsigned i = 0; i < 300 && !a->failed; i++) {
        uint64_t id = (a->t + 1) * 1000 + i + 1;
        size_t len = ops[i].sectors * SECT;

        if (ops[i].zero) {
            a->failed |= lsvd_write_zeroes(a->v, (base + ops[i].lba) * SECT,
                                           len) < 0;
        } else {
            pat_fill(buf, base + ops[i].lba, ops[i].sectors, id);
            a->failed |= lsvd_write(a->v, (base + ops[i].lba) * SECT, buf,
                                    len) < 0;
        }
        for (uint64_t k = 0; k < ops[i].sectors; k++) {
            model[ops[i].lba + k] = ops[i].zero ? 0 : id;
        }
        if (i % 50 == 49) {
            a->failed |= lsvd_read(a->v, base * SECT, buf, n * SECT) < 0;
            for (uint64_t k = 0; k < n && !a->failed; k++) {
                a->failed |= pat_id(buf + k * SECT, base + k) != model[k];
            }
        }
    }
    return NULL;
}

static void test_threads(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct thread_arg a[4];
    GThread *th[4];
    struct lsvd_volume *v;

    vol_create(f, "th", MODEL_SIZE);
    v = vol_open(f, "th", 0);
    for (unsigned t = 0; t < 4; t++) {
        a[t] = (struct thread_arg){ v, t, 0 };
        th[t] = g_thread_new("writer", thread_main, &a[t]);
    }
    for (unsigned t = 0; t < 4; t++) {
        g_thread_join(th[t]);
        g_assert_cmpint(a[t].failed, ==, 0);
    }
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    vol_close(v);
}

/* A volume whose size is not a multiple of 4 KiB, or just one sector. */
static void test_odd_sizes(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    uint8_t buf[4 * SECT];

    vol_create(f, "three", 3 * SECT);
    vol_create(f, "one", SECT);
    v = vol_open(f, "three", 0);
    g_assert_cmpuint(lsvd_size(v), ==, 3 * SECT);
    write_pat(v, 2, 1, 1);
    write_pat(v, 0, 3, 2);
    write_pat(v, 1, 1, 3);
    g_assert_cmpint(lsvd_read(v, 0, buf, 4 * SECT), ==, -EINVAL);
    vol_close(v);
    v = vol_open(f, "three", 0);
    check_pat(v, 0, 1, 2);
    check_pat(v, 1, 1, 3);
    check_pat(v, 2, 1, 2);
    vol_close(v);

    v = vol_open(f, "one", 0);
    write_pat(v, 0, 1, 4);
    g_assert_cmpint(lsvd_write_zeroes(v, 0, SECT), ==, 0);
    check_pat(v, 0, 1, 0);
    write_pat(v, 0, 1, 5);
    vol_close(v);
    v = vol_open(f, "one", 0);
    check_pat(v, 0, 1, 5);
    vol_close(v);
}

/* ---- big writes ---------------------------------------------------------- */

static void test_big_writes(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    const uint64_t size = 128ULL << 20;
    g_autofree uint8_t *buf = g_malloc(64 << 20);
    struct lsvd_volume *v;
    struct lsvd_info info;

    vol_create(f, "big", size);
    v = vol_open(f, "big", 0);
    /* one write of 4 MiB with 1 MiB batches: an object larger than a
     * batch */
    write_pat(v, 1, 8192, 1);
    check_pat(v, 1, 8192, 1);
    /* a write larger than the whole journal goes through in pieces */
    memset(buf, 0x11, 64 << 20);
    g_assert_cmpint(lsvd_write(v, 0, buf, 64 << 20), ==, 0);
    memset(buf, 0, 64 << 20);
    g_assert_cmpint(lsvd_read(v, 0, buf, 64 << 20), ==, 0);
    for (size_t i = 0; i < (64 << 20); i++) {
        g_assert_cmpuint(buf[i], ==, 0x11);
    }
    vol_close(v);
    rm_rf(f->cache);
    v = vol_open(f, "big", 0);
    memset(buf, 0, 64 << 20);
    g_assert_cmpint(lsvd_read(v, 0, buf, 64 << 20), ==, 0);
    for (size_t i = 0; i < (64 << 20); i++) {
        g_assert_cmpuint(buf[i], ==, 0x11);
    }
    check_pat(v, 131072, 100, 0);
    g_assert_cmpint(lsvd_stat(v, &info), ==, 0);
    g_assert_cmpuint(info.objects, >=, 2);
    vol_close(v);
}

/*
 * With --s3: the S3 store of the file LSVD_TEST_S3_CONF names.  Returns -1
 * (skip) if that variable is unset; a file that cannot be read or is not
 * an s3:// config is an error that ends the program.
 */
static int load_s3_conf(void)
{
    const char *path = g_getenv("LSVD_TEST_S3_CONF");
    g_autoptr(GError) gerr = NULL;
    struct lsvd_err err = { { 0 } };
    struct lsvd_config *cfg = NULL;
    g_autofree char *text = NULL;
    gsize len;

    if (!path || !*path) {
        printf("1..0 # SKIP --s3: LSVD_TEST_S3_CONF is not set\n");
        return -1;
    }
    if (!g_file_get_contents(path, &text, &len, &gerr)) {
        fprintf(stderr, "LSVD_TEST_S3_CONF: %s\n", gerr->message);
        exit(1);
    }
    if (config_parse(text, len, path, &cfg, &err) < 0) {
        fprintf(stderr, "LSVD_TEST_S3_CONF: %s\n", err.msg);
        exit(1);
    }
    if (!cfg->is_s3) {
        fprintf(stderr, "LSVD_TEST_S3_CONF: %s: [backend] url = %s is not "
                "s3://\n", path, cfg->backend_url);
        exit(1);
    }
    s3_file = g_key_file_new();
    if (!g_key_file_load_from_data(s3_file, text, len, G_KEY_FILE_NONE,
                                   &gerr)) {
        fprintf(stderr, "LSVD_TEST_S3_CONF: %s: %s\n", path, gerr->message);
        exit(1);
    }
    s3_bucket = g_strdup(cfg->s3.bucket);
    s3_prefix = g_strdup(cfg->s3.prefix);
    lsvd_config_free(cfg);
    return 0;
}

/* ---- the read path: journal, read cache, objects ------------------------
 *
 * The read cache is keyed by object location, so these check what that
 * promises: a restart serves cached blocks with no GET, a newer write is
 * never hidden by a cached block, concurrent misses share one GET, and a
 * miss prefetches what was written with the block.  To make reads reach
 * the read cache rather than the journal, a test closes the volume
 * (everything goes into objects) and deletes the journal files, keeping the
 * read cache's.
 */

#define MiB (1024 * 1024)

static const char *const prefetch_keys[] = { "prefetch", "512K", NULL };
static const char *const no_rcache_keys[] = { "read_size", "0", NULL };

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
                                   gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    struct lsvd_info a, b;

    vol_create(f, "v", 64 * MiB);
    v = vol_open(f, "v", 0);
    write_gen(v, 0, 8 * MiB, 1);
    vol_close(v);

    /* first pass: every block is a miss, fetched and cached */
    drop_journal(f, "v");
    v = vol_open(f, "v", 0);
    a = stat_of(v);
    check_gen(v, 0, 8 * MiB, 16384, 1);
    b = stat_of(v);
    g_assert_cmpuint(b.rc_misses, ==, 8 * MiB / b.rc_block);
    g_assert_cmpuint(b.rc_fills, ==, b.rc_misses);
    g_assert_cmpuint(b.be_get - a.be_get, >, 0);
    g_assert_cmpuint(b.be_get - a.be_get, <=, b.rc_misses);
    g_assert_cmpuint(b.rc_used, ==, 8 * MiB);
    vol_close(v);

    /* after a restart: all hits, no GET at all after open */
    drop_journal(f, "v");
    v = vol_open(f, "v", 0);
    a = stat_of(v);
    check_gen(v, 0, 8 * MiB, 16384, 1);
    b = stat_of(v);
    g_assert_cmpuint(b.be_get, ==, a.be_get);
    g_assert_cmpuint(b.rc_misses, ==, 0);
    g_assert_cmpuint(b.rc_hits, ==, 8 * MiB / 16384);
    g_assert_cmpuint(b.rc_hit_bytes, ==, 8 * MiB);
    g_test_message("GETs at open: %" G_GUINT64_FORMAT ", after: 0",
                   a.be_get);
    vol_close(v);

    /* a read-only open serves the same hits, and writes nothing */
    {
        g_autofree char *map = g_build_filename(f->cache, "v.rcmap", NULL);
        struct stat st0, st1;

        drop_journal(f, "v");
        g_assert_cmpint(stat(map, &st0), ==, 0);
        v = vol_open(f, "v", LSVD_OPEN_RDONLY);
        a = stat_of(v);
        check_gen(v, 0, 8 * MiB, 65536, 1);
        b = stat_of(v);
        g_assert_cmpuint(b.be_get, ==, a.be_get);
        g_assert_cmpuint(b.rc_hits, ==, 8 * MiB / 65536);
        vol_close(v);
        g_assert_cmpint(stat(map, &st1), ==, 0);
        g_assert_cmpint(st0.st_mtim.tv_nsec, ==, st1.st_mtim.tv_nsec);
        g_assert_cmpint(st0.st_mtim.tv_sec, ==, st1.st_mtim.tv_sec);
    }
}

/* Cached blocks of old data never hide a newer write. */
static void test_newer_write_wins(struct fix *f,
                                  gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;

    vol_create(f, "v", 64 * MiB);
    v = vol_open(f, "v", 0);
    write_gen(v, 0, 4 * MiB, 1);
    vol_close(v);
    drop_journal(f, "v");
    v = vol_open(f, "v", 0);
    check_gen(v, 0, 4 * MiB, 65536, 1);         /* all cached now */
    /* overwrite the middle: served from the journal at once... */
    write_gen(v, 1 * MiB, 1 * MiB, 2);
    g_assert_cmpint(lsvd_write_zeroes(v, 3 * MiB, 512 * 1024), ==, 0);
    check_gen(v, 1 * MiB, 1 * MiB, 4096, 2);
    vol_close(v);

    /* ...and from the objects once the journal is gone, whatever the
     * read cache still holds of generation 1 */
    drop_journal(f, "v");
    v = vol_open(f, "v", 0);
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
    vol_close(v);
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
static void test_shared_miss(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct reader r[16];
    struct lsvd_volume *v;
    struct lsvd_info a, b;

    vol_create(f, "v", 64 * MiB);
    v = vol_open(f, "v", 0);
    write_gen(v, 0, 1 * MiB, 1);
    vol_close(v);
    drop_journal(f, "v");
    v = vol_open(f, "v", 0);
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
    vol_close(v);
}

/* A miss also brings in what was written after it, in the same object. */
static void test_prefetch(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    struct lsvd_info a, b;

    fix_config_full(f, "1M", "64M", 0, prefetch_keys);
    vol_create(f, "v", 64 * MiB);
    v = vol_open(f, "v", 0);
    /* written far apart in the address space, one after the other in
     * time: one object holds both */
    write_gen(v, 40 * MiB, 256 * 1024, 1);
    write_gen(v, 8 * MiB, 256 * 1024, 1);
    vol_close(v);
    drop_journal(f, "v");
    v = vol_open(f, "v", 0);
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
    vol_close(v);
}

static void test_no_read_cache(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    struct lsvd_info a;

    fix_config_full(f, "1M", "64M", 0, no_rcache_keys);
    vol_create(f, "v", 64 * MiB);
    v = vol_open(f, "v", 0);
    write_gen(v, 0, 2 * MiB, 1);
    vol_close(v);
    drop_journal(f, "v");
    v = vol_open(f, "v", 0);
    check_gen(v, 0, 2 * MiB, 8192, 1);
    check_gen(v, 0, 2 * MiB, 8192, 1);
    a = stat_of(v);
    g_assert_cmpuint(a.rc_size, ==, 0);
    g_assert_cmpuint(a.rc_hits + a.rc_misses, ==, 0);
    g_assert_cmpuint(a.be_get, >=, 2 * 2 * MiB / 65536);
    vol_close(v);
}

/* The counters are in the stats file after close, for `lsvd info`. */
static void test_stats_file(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *path = lsvd_stats_path(f->cfg, "v");
    g_autofree char *text = NULL;
    struct lsvd_volume *v;
    char *crc;

    vol_create(f, "v", 64 * MiB);
    v = vol_open(f, "v", 0);
    write_gen(v, 0, 1 * MiB, 1);
    g_assert_cmpint(lsvd_flush(v), ==, 0);
    vol_close(v);
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
    g_assert_cmpint(lsvd_remove(f->cfg, "v", NULL), ==, 0);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}


/* ---- resize and extents -------------------------------------------------- */

static void test_resize(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    uint8_t buf[4096];

    vol_create(f, "v", 8 * MiB);
    v = vol_open(f, "v", 0);
    write_gen(v, 0, 1 * MiB, 1);
    /* grow: the new space reads as zeros and takes writes */
    g_assert_cmpint(lsvd_write(v, 8 * MiB, buf, 4096), ==, -EINVAL);
    g_assert_cmpint(lsvd_resize(v, 24 * MiB), ==, 0);
    g_assert_cmpuint(lsvd_size(v), ==, 24 * MiB);
    g_assert_cmpint(lsvd_read(v, 20 * MiB, buf, 4096), ==, 0);
    for (int i = 0; i < 4096; i++) {
        g_assert_cmpint(buf[i], ==, 0);
    }
    write_gen(v, 16 * MiB, 256 * 1024, 2);
    vol_close(v);

    v = vol_open(f, "v", 0);
    g_assert_cmpuint(lsvd_size(v), ==, 24 * MiB);
    check_gen(v, 0, 1 * MiB, 65536, 1);
    check_gen(v, 16 * MiB, 256 * 1024, 65536, 2);
    /* shrink below data: refused, nothing changes */
    g_assert_cmpint(lsvd_resize(v, 16 * MiB), ==, -ENOTEMPTY);
    g_assert_cmpint(lsvd_resize(v, 12 * MiB), ==, -ENOTEMPTY);
    g_assert_cmpuint(lsvd_size(v), ==, 24 * MiB);
    /* zeroed is still written: refused too */
    g_assert_cmpint(lsvd_write_zeroes(v, 16 * MiB, 256 * 1024), ==, 0);
    g_assert_cmpint(lsvd_resize(v, 16 * MiB), ==, -ENOTEMPTY);
    /* an unwritten tail may go */
    g_assert_cmpint(lsvd_resize(v, 16 * MiB + 256 * 1024), ==, 0);
    g_assert_cmpuint(lsvd_size(v), ==, 16 * MiB + 256 * 1024);
    g_assert_cmpint(lsvd_read(v, 16 * MiB + 256 * 1024, buf, 512), ==,
                    -EINVAL);
    g_assert_cmpint(lsvd_resize(v, 1000), ==, -EINVAL);
    g_assert_cmpint(lsvd_resize(v, 0), ==, -EINVAL);
    vol_close(v);

    /* the size is in the store: a read-only open, and one without the
     * cache, see it; a read-only volume cannot be resized */
    drop_journal(f, "v");
    v = vol_open(f, "v", LSVD_OPEN_RDONLY);
    g_assert_cmpuint(lsvd_size(v), ==, 16 * MiB + 256 * 1024);
    g_assert_cmpint(lsvd_resize(v, 32 * MiB), ==, -EROFS);
    check_gen(v, 0, 1 * MiB, 65536, 1);
    vol_close(v);
}

static int extent_of(struct lsvd_volume *v, uint64_t off, uint64_t max,
                     uint64_t *len)
{
    int kind = lsvd_extent(v, off, max, len);

    g_assert_cmpint(kind, >=, 0);
    g_assert_cmpuint(*len, >, 0);
    g_assert_cmpuint(*len, <=, max);
    return kind;
}

/* What qemu-img map sees: unwritten, zeroed and data ranges, whether they
 * are in the journal or only in objects. */
static void test_extents(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_volume *v;
    uint64_t len;

    vol_create(f, "v", 16 * MiB);
    v = vol_open(f, "v", 0);
    g_assert_cmpint(extent_of(v, 0, 16 * MiB, &len), ==,
                    LSVD_EXTENT_UNWRITTEN);
    g_assert_cmpuint(len, ==, 16 * MiB);
    write_gen(v, 1 * MiB, 256 * 1024, 1);
    g_assert_cmpint(lsvd_write_zeroes(v, 4 * MiB, 1 * MiB), ==, 0);
    for (int pass = 0; pass < 2; pass++) {
        g_assert_cmpint(extent_of(v, 0, 16 * MiB, &len), ==,
                        LSVD_EXTENT_UNWRITTEN);
        g_assert_cmpuint(len, ==, 1 * MiB);
        g_assert_cmpint(extent_of(v, 1 * MiB, 16 * MiB, &len), ==,
                        LSVD_EXTENT_DATA);
        g_assert_cmpuint(len, ==, 256 * 1024);
        g_assert_cmpint(extent_of(v, 1 * MiB + 4096, 8192, &len), ==,
                        LSVD_EXTENT_DATA);
        g_assert_cmpuint(len, ==, 8192);
        g_assert_cmpint(extent_of(v, 1 * MiB + 256 * 1024, 16 * MiB, &len),
                        ==, LSVD_EXTENT_UNWRITTEN);
        g_assert_cmpuint(len, ==, 3 * MiB - 256 * 1024);
        g_assert_cmpint(extent_of(v, 4 * MiB, 16 * MiB, &len), ==,
                        LSVD_EXTENT_ZERO);
        g_assert_cmpuint(len, ==, 1 * MiB);
        g_assert_cmpint(extent_of(v, 5 * MiB, 16 * MiB, &len), ==,
                        LSVD_EXTENT_UNWRITTEN);
        g_assert_cmpuint(len, ==, 11 * MiB);
        /* the same once it is only in objects */
        vol_close(v);
        drop_journal(f, "v");
        v = vol_open(f, "v", 0);
    }
    g_assert_cmpint(lsvd_extent(v, 16 * MiB, 512, &len), ==, -EINVAL);
    g_assert_cmpint(lsvd_extent(v, 100, 512, &len), ==, -EINVAL);
    vol_close(v);
}


/* A shared open reads the objects while a writer has the volume. */
static void test_shared_open(struct fix *f, gconstpointer data G_GNUC_UNUSED)
{
    struct lsvd_err err = { { 0 } };
    struct lsvd_volume *w, *r = NULL;
    g_autofree uint8_t *buf = g_malloc(65536);
    uint8_t want1[65536], want2[65536];

    vol_create(f, "v", 16 * MiB);
    w = vol_open(f, "v", 0);
    write_gen(w, 0, 4 * MiB, 1);
    vol_close(w);
    w = vol_open(f, "v", 0);
    write_gen(w, 0, 1 * MiB, 2);                /* maybe only journaled */
    g_assert_cmpint(lsvd_open(f->cfg, "v", LSVD_OPEN_RDONLY, &r, &err), ==,
                    -EBUSY);
    r = vol_open(f, "v", LSVD_OPEN_RDONLY | LSVD_OPEN_SHARED);
    g_assert_cmpuint(lsvd_size(r), ==, 16 * MiB);
    check_gen(r, 1 * MiB, 3 * MiB, 65536, 1);
    /* the first MiB: the writer's old data or its new, nothing else */
    g_assert_cmpint(lsvd_read(r, 0, buf, 65536), ==, 0);
    fill_pattern(want1, 65536, 0, 1);
    fill_pattern(want2, 65536, 0, 2);
    g_assert_true(memcmp(buf, want1, 65536) == 0 ||
                  memcmp(buf, want2, 65536) == 0);
    g_assert_cmpint(lsvd_write(r, 0, buf, 4096), ==, -EROFS);
    vol_close(r);
    /* the shared open touched nothing of the writer's */
    check_gen(w, 0, 1 * MiB, 65536, 2);
    vol_close(w);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *path;
        void (*fn)(struct fix *, gconstpointer);
    } tests[] = {
        { "/volume/basic", test_basic },
        { "/volume/reopen-without-cache", test_reopen_without_cache },
        { "/volume/unwritten-zeros", test_unwritten_zeros },
        { "/volume/overlap-in-batch", test_overlap_in_batch },
        { "/volume/random-model", test_random_model },
        { "/volume/invalid-requests", test_invalid_requests },
        { "/volume/aio", test_aio },
        { "/volume/write-zeroes", test_write_zeroes },
        { "/volume/write-zeroes-huge", test_write_zeroes_huge },
        { "/volume/big-writes", test_big_writes },
        { "/volume/threads", test_threads },
        { "/volume/odd-sizes", test_odd_sizes },
        { "/volume/crash/cache-intact", test_crash_cache_intact },
        { "/volume/crash/cache-lost", test_crash_cache_lost },
        { "/volume/crash/journal-older-than-objects",
          test_journal_older_than_objects },
        { "/volume/crash/journal-wrap", test_journal_wrap_crash },
        { "/volume/crash/repeated", test_repeated_crashes },
        { "/volume/crash/torn-journal", test_torn_journal },
        { "/volume/crash/readback-corrupt", test_readback_corrupt },
        { "/volume/crash/batch-copy", test_batch_copy },
        { "/volume/crash/merged-records", test_merged_records },
        { "/volume/crash/merged-records-nocopy", test_merged_records_nocopy },
        { "/volume/write-timeout", test_write_timeout },
        { "/volume/batch-timeout", test_batch_timeout },
        { "/volume/close-during-outage", test_close_during_outage },
        { "/volume/crash/replay-batches", test_replay_batches },
        { "/volume/crash/journal-deleted-jmap-kept",
          test_journal_deleted_jmap_kept },
        { "/volume/crash/stale-records-after-corruption",
          test_journal_stale_records_after_corruption },
        { "/volume/corrupt/object-chunk", test_corrupt_object_chunk },
        { "/volume/corrupt/object-header", test_corrupt_object_header },
        { "/volume/corrupt/journal-super", test_corrupt_journal_super },
        { "/volume/foreign-journal", test_foreign_journal },
        { "/volume/exclusive/same-process", test_exclusive_same_process },
        { "/volume/exclusive/two-processes", test_exclusive_two_processes },
        { "/volume/list-remove", test_list_remove },
        { "/volume/stranded-objects", test_stranded_objects },
        { "/volume/checkpoints", test_checkpoints },
        { "/volume/crash/jmap-checkpoint", test_jmap_checkpoint },
        { "/volume/crash/interrupted-journal-creation",
          test_interrupted_journal_creation },
        { "/volume/readpath/restart-zero-gets", test_restart_zero_gets },
        { "/volume/readpath/newer-write-wins", test_newer_write_wins },
        { "/volume/readpath/shared-miss", test_shared_miss },
        { "/volume/readpath/prefetch", test_prefetch },
        { "/volume/readpath/no-read-cache", test_no_read_cache },
        { "/volume/readpath/stats-file", test_stats_file },
        { "/volume/resize", test_resize },
        { "/volume/extents", test_extents },
        { "/volume/shared-open", test_shared_open },
    };

    int n = 1;
    bool s3 = false;

    /* --s3 is ours: take it out before GTest sees the arguments */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--s3")) {
            s3 = true;
        } else {
            argv[n++] = argv[i];
        }
    }
    argc = n;
    argv[argc] = NULL;
    if (s3 && load_s3_conf() < 0) {
        return 77;
    }

    g_test_init(&argc, &argv, NULL);
    lsvd_set_log_handler(log_capture, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(tests); i++) {
        g_test_add(tests[i].path, struct fix, NULL, fix_setup, tests[i].fn,
                   fix_teardown);
    }
    return g_test_run();
}
