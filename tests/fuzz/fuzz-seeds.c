/*
 * fuzz-seeds - write a small seed corpus for every fuzz target: valid
 * encoded structures (so that the fuzzers start past the CRCs) and a few
 * texts.  Usage: fuzz-seeds OUTDIR; writes OUTDIR/corpus-NAME/seed-N.
 *
 * Built with -DFUZZ_SEEDS_LIB it has no main() and hands the seeds to a
 * callback instead (fuzz_seeds_foreach), for the standalone driver.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "format.h"
#include "fuzz-seeds.h"

static const char *outdir;
static fuzz_seed_fn *seed_cb;
static void *seed_arg;

static void put(const char *target, const void *data, size_t len)
{
    static GHashTable *counts;
    g_autofree char *dir = g_strdup_printf("%s/corpus-%s", outdir, target);
    g_autofree char *path = NULL;
    guint n;

    if (seed_cb) {
        seed_cb(seed_arg, target, data, len);
        return;
    }
    if (!counts) {
        counts = g_hash_table_new(g_str_hash, g_str_equal);
    }
    n = GPOINTER_TO_UINT(g_hash_table_lookup(counts, target));
    g_hash_table_insert(counts, (gpointer)target, GUINT_TO_POINTER(n + 1));
    path = g_strdup_printf("%s/seed-%u", dir, n);
    if (g_mkdir_with_parents(dir, 0755) < 0 ||
        !g_file_set_contents(path, data, len, NULL)) {
        fprintf(stderr, "fuzz-seeds: cannot write %s\n", path);
        exit(1);
    }
}

static void put_str(const char *target, const char *s)
{
    put(target, s, strlen(s));
}

static void seed_super(void)
{
    uint64_t snaps[3] = { 5, 9, 1ULL << 40 };
    struct super sb = { .size = 1ULL << 30, .created = 1700000000 };
    uint8_t *b;
    size_t len;

    memset(sb.uuid, 0xab, LSVD_UUID_LEN);
    b = super_encode(&sb, &len);
    put("super", b, len);
    g_free(b);
    sb.n_snaps = 3;
    sb.snaps = snaps;
    strcpy(sb.base_name, "base");
    sb.base_seq = 77;
    b = super_encode(&sb, &len);
    put("super", b, len);
    g_free(b);
}

static void seed_obj_header(void)
{
    struct obj_extent ext[3] = {
        { 0, 8, 0, 0 },
        { 64, 1000, OBJ_EXT_ZERO, 0 },
        { 4096, 128, 0, 4096 },
    };
    struct obj_chunk chunks[2] = {
        { 65536, 65536, 0, 0x12345678 },
        { 4096, 100, OBJ_CHUNK_LZ4, 0x9abcdef0 },
    };
    uint64_t deferred[2] = { 3, 10 };
    struct obj_header h = {
        .type = OBJ_TYPE_DATA, .seq = 1, .vol_size = 1ULL << 30,
        .chunk_size = OBJ_CHUNK_SIZE,
    };
    uint8_t *b;

    b = obj_header_encode(&h);
    put("obj-header", b, h.hdr_len);
    g_free(b);

    h.seq = 12;
    h.jseq = 400;
    h.n_extents = 3;
    h.extents = ext;
    h.n_chunks = 2;
    h.chunks = chunks;
    h.raw_len = 65536 + 4096;
    h.data_len = 65536 + 100;
    h.n_deferred = 1;
    h.deferred = deferred;
    b = obj_header_encode(&h);
    put("obj-header", b, h.hdr_len);
    /* a prefix only: the parser asks for more */
    put("obj-header", b, 64);
    g_free(b);
}

static void seed_journal(void)
{
    struct jnl_super js = { .start_seq = 1, .data_start = 2 * JNL_BLOCK,
                            .tail_off = 2 * JNL_BLOCK, .size = 64 << 20,
                            .gen = 3 };
    g_autofree uint8_t *b = g_malloc0(JNL_BLOCK + 2 * JNL_BLOCK);
    struct rec_header r = { .type = REC_TYPE_WRITE, .seq = 5 };
    struct iovec iov = { b + JNL_BLOCK, 2 * JNL_BLOCK };

    memset(js.uuid, 0xcd, LSVD_UUID_LEN);
    jnl_super_encode(&js, b);
    put("journal", b, JNL_BLOCK);

    /* a WRITE record of 12 sectors with its padded data */
    memset(r.uuid, 0xcd, LSVD_UUID_LEN);
    r.n_extents = 2;
    r.extents[0] = (struct rec_extent){ 100, 8, 0 };
    r.extents[1] = (struct rec_extent){ 7, 4, 0 };
    r.data_len = 2 * JNL_BLOCK;
    for (size_t i = 0; i < 12 * 512; i++) {
        b[JNL_BLOCK + i] = (uint8_t)(i * 13);
    }
    rec_header_encode(&r, b, &iov, 1);
    put("journal", b, JNL_BLOCK + 2 * JNL_BLOCK);

    /* ZERO and PAD records */
    memset(&r, 0, sizeof(r));
    r.type = REC_TYPE_ZERO;
    r.seq = 6;
    r.n_extents = 1;
    r.extents[0] = (struct rec_extent){ 0, 1u << 31, 0 };
    rec_header_encode(&r, b, NULL, 0);
    put("journal", b, JNL_BLOCK);
    memset(&r, 0, sizeof(r));
    r.type = REC_TYPE_PAD;
    r.seq = 7;
    r.data_len = JNL_BLOCK;
    memset(b + JNL_BLOCK, 0, JNL_BLOCK);
    iov.iov_len = JNL_BLOCK;
    rec_header_encode(&r, b, &iov, 1);
    put("journal", b, 2 * JNL_BLOCK);
}

static void seed_config(void)
{
    put_str("config", "");
    put_str("config",
            "[backend]\nurl = dir:///var/lib/lsvd/store\n"
            "[cache]\ndir = /var/lib/lsvd/cache\nsize = 1G\n"
            "[log]\nbatch_size = 8M\n");
    put_str("config",
            "# comment\n[cache]\nsize = 128M # journal\n"
            "dir = /ssd/c#1\t# tab\n[log]\nbatch_size=1MiB\n");
    put_str("config", "[backend]\nurl = s3://bucket/prefix\n");
    put_str("config", "[cache]\nsize = 99999999999999999999E\n");
}

static void seed_names(void)
{
    static const char *const s[] = {
        "0000000000000001", "000000007fffffff", "ffffffffffffffff",
        "super", "vm-disk.1_a", "-bad", ".hidden", "1G", "512M", "10GiB",
        "1KB", "18446744073709551615", "16E", "1GG", "",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(s); i++) {
        put_str("names", s[i]);
    }
}

/* The first byte picks the parser: even for a list page, odd for an
 * error body (see fuzz-s3xml.c). */
static void seed_s3xml(void)
{
    put_str("s3xml",
            "L<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/"
            "2006-03-01/\"><Name>lsvd-test</Name><Prefix>lsvd/</Prefix>"
            "<KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>"
            "<Delimiter>/</Delimiter><EncodingType>url</EncodingType>"
            "<IsTruncated>true</IsTruncated>"
            "<ContinuationToken>abc</ContinuationToken>"
            "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36H"
            "y4vbOwM=</NextContinuationToken>"
            "<Contents><Key>lsvd/vol/0000000000000001</Key>"
            "<LastModified>2024-01-01T00:00:00.000Z</LastModified>"
            "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>"
            "<Size>8388608</Size><StorageClass>STANDARD</StorageClass>"
            "<Owner><ID>lsvd-test</ID></Owner></Contents>"
            "<Contents><Key>lsvd/vol/super%20x</Key><Size>4096</Size>"
            "</Contents>"
            "<CommonPrefixes><Prefix>lsvd/vol/sub/</Prefix></CommonPrefixes>"
            "</ListBucketResult>");
    put_str("s3xml",
            "L<ListBucketResult><IsTruncated>false</IsTruncated>"
            "<Contents><Key>a&amp;b</Key><Size>0</Size></Contents>"
            "</ListBucketResult>");
    put_str("s3xml",
            "E<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Error><Code>NoSuchBucket</Code><Message>The specified bucket "
            "does not exist</Message><BucketName>nope</BucketName>"
            "<RequestId>tx0000</RequestId><HostId>h</HostId></Error>");
    put_str("s3xml",
            "E<Error><Code>SignatureDoesNotMatch</Code><Message/></Error>");
}

static void seed_ckpt(void)
{
    struct ckpt_extent ext[3] = {
        { .lba = 0, .sectors = 8, .seq = 1, .off = 0 },
        { .lba = 8, .sectors = 100, .flags = OBJ_EXT_ZERO },
        { .lba = 4096, .sectors = 16, .seq = 2, .off = 8 },
    };
    struct ckpt_object obj[2] = {
        { .seq = 1, .hdr_len = 200, .data_len = 4096 },
        { .seq = 2, .hdr_len = 300, .data_len = 12288 },
    };
    struct ckpt c = {
        .seq = 3, .jseq = 40, .vol_size = 1ULL << 30, .n_extents = 3,
        .n_objects = 2, .extents = ext, .objects = obj,
    };
    uint8_t *b;
    size_t len;

    b = ckpt_encode(&c, &len);
    put("ckpt", b, len);
    g_free(b);
    c.n_extents = 0;
    c.n_objects = 0;
    b = ckpt_encode(&c, &len);
    put("ckpt", b, len);
    g_free(b);
}

static void seed_jmap(void)
{
    struct jmap_rec recs[3] = {
        { .seq = 10, .off = 4096, .len = 8192, .type = REC_TYPE_WRITE,
          .n_extents = 1 },
        { .seq = 11, .off = 12288, .len = 4096, .type = REC_TYPE_ZERO,
          .n_extents = 2 },
        { .seq = 12, .off = 16384, .len = 4096, .type = REC_TYPE_FENCE },
    };
    struct rec_extent exts[3] = {
        { .lba = 0, .sectors = 8 }, { .lba = 100, .sectors = 50 },
        { .lba = 400, .sectors = 1 },
    };
    struct jmap_map map[2] = {
        { .lba = 0, .len = 8, .loc = 16 },
        { .lba = 100, .len = 50, .loc = (1ULL << 63) | (24ULL << 24) },
    };
    struct jmap_ckpt c = {
        .sb_start_seq = 10, .sb_tail_off = 4096, .next_seq = 1000,
        .next_off = 20480, .upto_seq = 11, .n_recs = 3, .n_exts = 3,
        .n_map = 2, .recs = recs, .exts = exts, .map = map,
    };
    uint8_t *b;
    size_t len;

    b = jmap_ckpt_encode(&c, &len);
    put("jmap", b, len);
    g_free(b);
    c.n_recs = c.n_exts = c.n_map = 0;
    b = jmap_ckpt_encode(&c, &len);
    put("jmap", b, len);
    g_free(b);
}

static void seed_rcmap(void)
{
    struct rcmap_entry e[3] = {
        { .seq = 1, .block = 0, .slot = 5, .len = 65536, .crc = 0x1234 },
        { .seq = 1, .block = 1, .slot = 0, .len = 4096, .crc = 0x5678 },
        { .seq = 0x42, .block = 7, .slot = 15, .len = 512, .crc = 1 },
    };
    struct rcmap m = { .uuid = { 7 }, .block_size = 65536, .n_slots = 16,
                       .n_entries = 3, .entries = e };
    uint8_t *b;
    size_t len;

    b = rcmap_encode(&m, &len);
    put("rcmap", b, len);
    g_free(b);
    m.n_entries = 0;
    b = rcmap_encode(&m, &len);
    put("rcmap", b, len);
    g_free(b);
}

static void seed_all(void)
{
    seed_rcmap();
    seed_jmap();
    seed_super();
    seed_ckpt();
    seed_obj_header();
    seed_journal();
    seed_config();
    seed_names();
    seed_s3xml();
}

void fuzz_seeds_foreach(fuzz_seed_fn *fn, void *arg)
{
    seed_cb = fn;
    seed_arg = arg;
    seed_all();
    seed_cb = NULL;
}

#ifndef FUZZ_SEEDS_LIB
int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-seeds OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    seed_all();
    return 0;
}
#endif
