/*
 * test-format - encoders and parsers of every on-disk structure: round
 * trips, every single-bit flip rejected, truncated buffers rejected, and
 * the semantic checks behind the CRCs.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

#include <glib.h>
#include <lz4.h>

#include "format.h"
#include "util.h"

/* Offsets of fields, from docs/format.md. */
#define OFF_VERSION 8
#define OFF_TYPE 10
#define OFF_LEN 12
#define SUPER_OFF_FLAGS 48
#define SUPER_OFF_NSNAPS 72
#define SUPER_OFF_CRC 252
#define OBJ_OFF_VOLSIZE 48
#define OBJ_OFF_NEXT 56
#define OBJ_OFF_FLAGS 68
#define OBJ_OFF_CHUNK_SIZE 104
#define OBJ_OFF_CRC 124
#define JNL_OFF_CRC (JNL_BLOCK - 4)

static const uint8_t uuid_a[LSVD_UUID_LEN] = {
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
    0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
};

/* Recompute the CRC at @crc_off over @len bytes, as the encoders do, so
 * that a test can reach the checks behind the CRC. */
static void reseal(uint8_t *b, size_t len, size_t crc_off)
{
    put_le32(b + crc_off, 0);
    put_le32(b + crc_off, lsvd_crc32c(0, b, len));
}

/* ---- superblock -------------------------------------------------------- */

static void make_super(struct super *sb, uint64_t *snaps, uint32_t n)
{
    memset(sb, 0, sizeof(*sb));
    memcpy(sb->uuid, uuid_a, LSVD_UUID_LEN);
    sb->size = 10ULL << 30;
    sb->created = 1700000000;
    sb->writer_epoch = 7;
    sb->base_seq = 0x1234;
    strcpy(sb->base_name, "base-volume.0");
    for (uint32_t i = 0; i < n; i++) {
        snaps[i] = 1000 + 17 * i;
    }
    sb->n_snaps = n;
    sb->snaps = snaps;
}

static void test_super_roundtrip(void)
{
    uint64_t snaps[5];
    struct super in, out;
    uint8_t *b, *big;
    size_t len;

    for (uint32_t n = 0; n <= 5; n += 5) {
        make_super(&in, snaps, n);
        b = super_encode(&in, &len);
        g_assert_cmpuint(len, ==, SUPER_FIXED_LEN + 8 * n);
        g_assert_cmpmem(b, 8, OBJ_MAGIC, 8);
        g_assert_cmpint(super_parse(b, len, &out), ==, 0);
        g_assert_cmpmem(out.uuid, LSVD_UUID_LEN, uuid_a, LSVD_UUID_LEN);
        g_assert_cmpuint(out.size, ==, in.size);
        g_assert_cmpuint(out.created, ==, in.created);
        g_assert_cmpuint(out.writer_epoch, ==, 7);
        g_assert_cmpuint(out.base_seq, ==, 0x1234);
        g_assert_cmpstr(out.base_name, ==, "base-volume.0");
        g_assert_cmpuint(out.n_snaps, ==, n);
        g_assert_nonnull(out.snaps);
        for (uint32_t i = 0; i < n; i++) {
            g_assert_cmpuint(out.snaps[i], ==, snaps[i]);
        }
        super_free(&out);
        g_assert_null(out.snaps);

        /* bytes after the superblock (a read with a larger buffer) are
         * not part of it */
        big = g_malloc0(len + 100);
        memcpy(big, b, len);
        memset(big + len, 0xa5, 100);
        g_assert_cmpint(super_parse(big, len + 100, &out), ==, 0);
        g_assert_cmpuint(out.n_snaps, ==, n);
        super_free(&out);
        g_free(big);
        g_free(b);
    }

    /* the longest base name stays NUL-terminated */
    make_super(&in, snaps, 0);
    memset(in.base_name, 'n', SUPER_BASE_NAME_LEN);
    in.base_name[SUPER_BASE_NAME_LEN] = '\0';
    b = super_encode(&in, &len);
    g_assert_cmpint(super_parse(b, len, &out), ==, 0);
    g_assert_cmpuint(strlen(out.base_name), ==, SUPER_BASE_NAME_LEN);
    super_free(&out);
    g_free(b);

    /* the largest snapshot table */
    {
        g_autofree uint64_t *many = g_new0(uint64_t, SUPER_MAX_SNAPS);
        make_super(&in, many, 0);
        in.n_snaps = SUPER_MAX_SNAPS;
        in.snaps = many;
        many[SUPER_MAX_SNAPS - 1] = UINT64_MAX;
        b = super_encode(&in, &len);
        g_assert_cmpint(super_parse(b, len, &out), ==, 0);
        g_assert_cmpuint(out.n_snaps, ==, SUPER_MAX_SNAPS);
        g_assert_cmpuint(out.snaps[SUPER_MAX_SNAPS - 1], ==, UINT64_MAX);
        super_free(&out);
        g_free(b);
    }
}

static void test_super_bitflips(void)
{
    uint64_t snaps[3];
    struct super in, out;
    size_t len;
    g_autofree uint8_t *b = NULL;
    uint64_t flips = 0;

    make_super(&in, snaps, 3);
    b = super_encode(&in, &len);
    for (size_t byte = 0; byte < len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            int ret, expect;

            b[byte] ^= 1 << bit;
            ret = super_parse(b, len, &out);
            if (ret == 0) {
                super_free(&out);
            }
            if (byte >= OFF_VERSION && byte < OFF_VERSION + 2) {
                expect = -EPROTONOSUPPORT;
            } else if (byte < OFF_VERSION || (byte >= OFF_TYPE &&
                                               byte < OFF_TYPE + 2)) {
                expect = -EINVAL;   /* magic, type */
            } else if (byte >= OFF_LEN && byte < OFF_LEN + 4) {
                /* a longer total is past the buffer; a shorter one fails
                 * the CRC or the minimum */
                expect = ret == -EIO ? -EIO : -EINVAL;
            } else {
                expect = -EIO;
            }
            if (ret != expect) {
                g_test_message("bit %d of byte %zu: %d", bit, byte, ret);
            }
            g_assert_cmpint(ret, ==, expect);
            b[byte] ^= 1 << bit;
            flips++;
        }
    }
    g_assert_cmpuint(flips, ==, 8 * len);
    /* and the unflipped one still parses */
    g_assert_cmpint(super_parse(b, len, &out), ==, 0);
    super_free(&out);
}

static void test_super_truncated(void)
{
    uint64_t snaps[3];
    struct super in, out;
    size_t len;
    g_autofree uint8_t *b = NULL;

    make_super(&in, snaps, 3);
    b = super_encode(&in, &len);
    for (size_t n = 0; n < len; n++) {
        /* a copy of exactly n bytes, so that ASan sees any overread */
        g_autofree uint8_t *t = g_memdup2(b, MAX(n, 1));
        g_assert_cmpint(super_parse(t, n, &out), ==, -EINVAL);
        g_assert_null(out.snaps);
    }
}

static void test_super_semantics(void)
{
    uint64_t snaps[2];
    struct super in, out;
    size_t len;
    uint8_t *b;

    /* size must be a non-zero multiple of 512 */
    make_super(&in, snaps, 0);
    in.size = 0;
    b = super_encode(&in, &len);
    g_assert_cmpint(super_parse(b, len, &out), ==, -EINVAL);
    g_free(b);
    in.size = 4096 + 100;
    b = super_encode(&in, &len);
    g_assert_cmpint(super_parse(b, len, &out), ==, -EINVAL);
    g_free(b);

    /* non-zero flags, too many snapshots, a count that disagrees with
     * the length: refused even with a good CRC */
    make_super(&in, snaps, 2);
    b = super_encode(&in, &len);
    put_le64(b + SUPER_OFF_FLAGS, 1);
    reseal(b, len, SUPER_OFF_CRC);
    g_assert_cmpint(super_parse(b, len, &out), ==, -EINVAL);
    put_le64(b + SUPER_OFF_FLAGS, 0);
    put_le32(b + SUPER_OFF_NSNAPS, 3);
    reseal(b, len, SUPER_OFF_CRC);
    g_assert_cmpint(super_parse(b, len, &out), ==, -EINVAL);
    put_le32(b + SUPER_OFF_NSNAPS, SUPER_MAX_SNAPS + 1);
    reseal(b, len, SUPER_OFF_CRC);
    g_assert_cmpint(super_parse(b, len, &out), ==, -EINVAL);
    put_le32(b + SUPER_OFF_NSNAPS, 0xffffffff);
    reseal(b, len, SUPER_OFF_CRC);
    g_assert_cmpint(super_parse(b, len, &out), ==, -EINVAL);
    put_le32(b + SUPER_OFF_NSNAPS, 2);
    reseal(b, len, SUPER_OFF_CRC);
    g_assert_cmpint(super_parse(b, len, &out), ==, 0);
    super_free(&out);
    /* an unknown version and a data object are not superblocks */
    put_le16(b + OFF_VERSION, 2);
    reseal(b, len, SUPER_OFF_CRC);
    g_assert_cmpint(super_parse(b, len, &out), ==, -EPROTONOSUPPORT);
    put_le16(b + OFF_VERSION, FMT_VERSION);
    put_le16(b + OFF_TYPE, OBJ_TYPE_DATA);
    reseal(b, len, SUPER_OFF_CRC);
    g_assert_cmpint(super_parse(b, len, &out), ==, -EINVAL);
    g_free(b);
}

/* ---- data object header ------------------------------------------------ */

struct obj_fixture {
    struct obj_header h;
    struct obj_extent ext[4];
    struct obj_chunk chunks[3];
    uint64_t deferred[4];
};

/* A header with extents (data and zero), three chunks (two raw and
 * full, one LZ4 and short) and two deferred pairs. */
static void make_obj(struct obj_fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->h.type = OBJ_TYPE_DATA;
    memcpy(f->h.uuid, uuid_a, LSVD_UUID_LEN);
    f->h.seq = 42;
    f->h.jseq = 9001;
    f->h.vol_size = 1ULL << 30;
    f->h.writer_epoch = 3;
    f->h.ckpt_seq = 40;
    f->h.chunk_size = OBJ_CHUNK_SIZE;

    f->chunks[0] = (struct obj_chunk){ 65536, 65536, 0, 0x11111111 };
    f->chunks[1] = (struct obj_chunk){ 65536, 65536, 0, 0x22222222 };
    f->chunks[2] = (struct obj_chunk){ 8192, 1000, OBJ_CHUNK_LZ4,
                                       0x33333333 };
    f->h.n_chunks = 3;
    f->h.chunks = f->chunks;
    f->h.raw_len = 65536 * 2 + 8192;
    f->h.data_len = 65536 * 2 + 1000;

    f->ext[0] = (struct obj_extent){ 0, 8, 0, 0 };
    f->ext[1] = (struct obj_extent){ 100, 200, OBJ_EXT_ZERO, 0 };
    f->ext[2] = (struct obj_extent){ 1000, 256, 0, 4096 };
    /* the last extent ends exactly at the end of the raw data and of the
     * volume */
    f->ext[3] = (struct obj_extent){ (1ULL << 21) - 8, 8, 0,
                                     65536 * 2 + 8192 - 4096 };
    f->h.n_extents = 4;
    f->h.extents = f->ext;

    f->deferred[0] = 5;
    f->deferred[1] = 41;
    f->deferred[2] = 6;
    f->deferred[3] = UINT64_MAX;
    f->h.n_deferred = 2;
    f->h.deferred = f->deferred;
}

static uint8_t *encode_obj(struct obj_fixture *f)
{
    return obj_header_encode(&f->h);
}

static int parse_obj_copy(const uint8_t *b, size_t len)
{
    g_autofree uint8_t *t = g_memdup2(b, MAX(len, 1));
    struct obj_header h;
    int ret = obj_header_parse(t, len, &h);

    obj_header_free(&h);
    return ret;
}

static void test_obj_roundtrip(void)
{
    struct obj_fixture f;
    struct obj_header h;
    g_autofree uint8_t *b = NULL;

    make_obj(&f);
    b = encode_obj(&f);
    g_assert_cmpuint(f.h.hdr_len, ==, OBJ_FIXED_LEN + 4 * OBJ_EXTENT_LEN +
                     3 * OBJ_CHUNK_LEN + 2 * OBJ_DEFERRED_LEN);
    g_assert_cmpuint(get_le32(b + OFF_LEN), ==, f.h.hdr_len);
    g_assert_cmpint(obj_header_parse(b, f.h.hdr_len, &h), ==, 0);
    g_assert_cmpuint(h.type, ==, OBJ_TYPE_DATA);
    g_assert_cmpuint(h.hdr_len, ==, f.h.hdr_len);
    g_assert_cmpmem(h.uuid, LSVD_UUID_LEN, uuid_a, LSVD_UUID_LEN);
    g_assert_cmpuint(h.seq, ==, 42);
    g_assert_cmpuint(h.jseq, ==, 9001);
    g_assert_cmpuint(h.vol_size, ==, 1ULL << 30);
    g_assert_cmpuint(h.data_len, ==, f.h.data_len);
    g_assert_cmpuint(h.raw_len, ==, f.h.raw_len);
    g_assert_cmpuint(h.writer_epoch, ==, 3);
    g_assert_cmpuint(h.ckpt_seq, ==, 40);
    g_assert_cmpuint(h.chunk_size, ==, OBJ_CHUNK_SIZE);
    g_assert_cmpuint(h.n_extents, ==, 4);
    g_assert_cmpuint(h.n_chunks, ==, 3);
    g_assert_cmpuint(h.n_deferred, ==, 2);
    for (int i = 0; i < 4; i++) {
        g_assert_cmpuint(h.extents[i].lba, ==, f.ext[i].lba);
        g_assert_cmpuint(h.extents[i].sectors, ==, f.ext[i].sectors);
        g_assert_cmpuint(h.extents[i].flags, ==, f.ext[i].flags);
        g_assert_cmpuint(h.extents[i].off, ==, f.ext[i].off);
    }
    for (int i = 0; i < 3; i++) {
        g_assert_cmpuint(h.chunks[i].raw_len, ==, f.chunks[i].raw_len);
        g_assert_cmpuint(h.chunks[i].stored_len, ==,
                         f.chunks[i].stored_len);
        g_assert_cmpuint(h.chunks[i].flags, ==, f.chunks[i].flags);
        g_assert_cmphex(h.chunks[i].crc, ==, f.chunks[i].crc);
    }
    for (int i = 0; i < 4; i++) {
        g_assert_cmpuint(h.deferred[i], ==, f.deferred[i]);
    }
    obj_header_free(&h);
    g_assert_null(h.extents);
    g_assert_null(h.chunks);
    g_assert_null(h.deferred);

    /* the data after the header is not the header's business */
    {
        g_autofree uint8_t *big = g_malloc0(f.h.hdr_len + 4096);
        memcpy(big, b, f.h.hdr_len);
        memset(big + f.h.hdr_len, 0x5a, 4096);
        g_assert_cmpint(obj_header_parse(big, f.h.hdr_len + 4096, &h), ==,
                        0);
        g_assert_cmpuint(h.n_extents, ==, 4);
        obj_header_free(&h);
    }
}

static void test_obj_empty_tables(void)
{
    struct obj_header in = { 0 }, h;
    g_autofree uint8_t *b = NULL;

    in.type = OBJ_TYPE_DATA;
    in.seq = 1;
    in.vol_size = 512;
    in.chunk_size = OBJ_CHUNK_SIZE;
    b = obj_header_encode(&in);
    g_assert_cmpuint(in.hdr_len, ==, OBJ_FIXED_LEN);
    g_assert_cmpint(obj_header_parse(b, in.hdr_len, &h), ==, 0);
    g_assert_cmpuint(h.n_extents + h.n_chunks + h.n_deferred, ==, 0);
    obj_header_free(&h);
}

static void test_obj_bitflips(void)
{
    struct obj_fixture f;
    g_autofree uint8_t *b = NULL;
    struct obj_header h;
    size_t len;

    make_obj(&f);
    b = encode_obj(&f);
    len = f.h.hdr_len;
    for (size_t byte = 0; byte < len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            int ret, expect;

            b[byte] ^= 1 << bit;
            ret = obj_header_parse(b, len, &h);
            if (byte >= OFF_VERSION && byte < OFF_VERSION + 2) {
                expect = -EPROTONOSUPPORT;
            } else if (byte < OFF_VERSION || (byte >= OFF_TYPE &&
                                               byte < OFF_TYPE + 2)) {
                expect = -EINVAL;   /* magic, type */
            } else if (byte >= OFF_LEN && byte < OFF_LEN + 4) {
                uint32_t total = get_le32(b + OFF_LEN);
                if (total > OBJ_MAX_HDR_LEN || total < OBJ_FIXED_LEN) {
                    expect = -EINVAL;
                } else if (total > len) {
                    /* asks for more bytes, which a reader cannot get */
                    expect = -EAGAIN;
                    g_assert_cmpuint(h.hdr_len, ==, total);
                } else {
                    expect = -EIO;
                }
            } else {
                expect = -EIO;
            }
            if (ret != expect) {
                g_test_message("bit %d of byte %zu: %d", bit, byte, ret);
            }
            g_assert_cmpint(ret, ==, expect);
            obj_header_free(&h);
            b[byte] ^= 1 << bit;
        }
    }
    g_assert_cmpint(obj_header_parse(b, len, &h), ==, 0);
    obj_header_free(&h);
}

static void test_obj_truncated(void)
{
    struct obj_fixture f;
    g_autofree uint8_t *b = NULL;
    struct obj_header h;
    size_t len;

    make_obj(&f);
    b = encode_obj(&f);
    len = f.h.hdr_len;
    for (size_t n = 0; n < len; n++) {
        g_autofree uint8_t *t = g_memdup2(b, MAX(n, 1));
        int ret = obj_header_parse(t, n, &h);

        if (n < 16) {
            /* not even the length field */
            g_assert_cmpint(ret, ==, -EINVAL);
        } else {
            /* a short prefix: read hdr_len bytes and try again */
            g_assert_cmpint(ret, ==, -EAGAIN);
            g_assert_cmpuint(h.hdr_len, ==, len);
        }
        g_assert_null(h.extents);
        g_assert_null(h.chunks);
        obj_header_free(&h);
    }
    g_assert_cmpint(parse_obj_copy(b, len), ==, 0);

    /* a length beyond the limit is refused, not asked for */
    put_le32(b + OFF_LEN, OBJ_MAX_HDR_LEN + 1);
    g_assert_cmpint(parse_obj_copy(b, 16), ==, -EINVAL);
    put_le32(b + OFF_LEN, OBJ_FIXED_LEN - 1);
    g_assert_cmpint(parse_obj_copy(b, 16), ==, -EINVAL);
    put_le32(b + OFF_LEN, OBJ_MAX_HDR_LEN);
    g_assert_cmpint(parse_obj_copy(b, 16), ==, -EAGAIN);
}

/* Encode @f (possibly broken on purpose) and parse it back. */
static int obj_check(struct obj_fixture *f)
{
    g_autofree uint8_t *b = encode_obj(f);

    return parse_obj_copy(b, f->h.hdr_len);
}

static void test_obj_semantics(void)
{
    struct obj_fixture f;

    make_obj(&f);
    g_assert_cmpint(obj_check(&f), ==, 0);

    /* extents */
    make_obj(&f);
    f.ext[0].sectors = 0;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.ext[3].lba++;                 /* one sector past the volume */
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.ext[3].lba = UINT64_MAX - 2;  /* lba + sectors wraps */
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.ext[0].sectors = UINT32_MAX;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.ext[0].flags = 0x2;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.ext[1].off = 512;             /* a ZERO extent has no data */
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.ext[2].off = 4096 + 1;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.ext[3].off += 512;            /* data past the raw stream */
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.ext[2].off = UINT64_MAX - 511;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);

    /* chunks */
    make_obj(&f);
    f.chunks[2].raw_len = 0;
    f.h.raw_len -= 8192;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.chunks[0].raw_len = 65536 - 512;  /* only the last may be short */
    f.chunks[0].stored_len = 65536 - 512;
    f.h.raw_len -= 512;
    f.h.data_len -= 512;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.chunks[2].raw_len = 65537;
    f.h.raw_len += 65537 - 8192;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.chunks[1].stored_len = 1000;      /* raw chunk, stored_len differs */
    f.h.data_len -= 65536 - 1000;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.chunks[2].stored_len = LZ4_compressBound(OBJ_CHUNK_SIZE) + 1;
    f.h.data_len += f.chunks[2].stored_len - 1000;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.chunks[2].flags = 0x4;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);

    /* totals */
    make_obj(&f);
    f.h.raw_len++;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.h.data_len--;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.h.chunk_size = 4096;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.h.vol_size += 100;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.h.type = OBJ_TYPE_SUPER;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);
    make_obj(&f);
    f.h.type = OBJ_TYPE_CHECKPOINT;
    g_assert_cmpint(obj_check(&f), ==, -EINVAL);

    /* fields behind the CRC: flags, table counts that disagree with the
     * length, an unknown version */
    {
        g_autofree uint8_t *b = NULL;
        size_t len;

        make_obj(&f);
        b = encode_obj(&f);
        len = f.h.hdr_len;
        put_le32(b + OBJ_OFF_FLAGS, 1);
        reseal(b, len, OBJ_OFF_CRC);
        g_assert_cmpint(parse_obj_copy(b, len), ==, -EINVAL);
        put_le32(b + OBJ_OFF_FLAGS, 0);
        for (int field = 0; field < 3; field++) {
            uint8_t *p = b + OBJ_OFF_NEXT + 4 * field;
            uint32_t n = get_le32(p);
            static const uint32_t delta[] = { 1, 2, 0x10000000, 0xffffffff };

            for (size_t i = 0; i < G_N_ELEMENTS(delta); i++) {
                put_le32(p, n + delta[i]);
                reseal(b, len, OBJ_OFF_CRC);
                g_assert_cmpint(parse_obj_copy(b, len), ==, -EINVAL);
            }
            put_le32(p, n);
        }
        reseal(b, len, OBJ_OFF_CRC);
        g_assert_cmpint(parse_obj_copy(b, len), ==, 0);
        put_le32(b + OBJ_OFF_CHUNK_SIZE, 0);
        reseal(b, len, OBJ_OFF_CRC);
        g_assert_cmpint(parse_obj_copy(b, len), ==, -EINVAL);
        put_le32(b + OBJ_OFF_CHUNK_SIZE, OBJ_CHUNK_SIZE);
        put_le16(b + OFF_VERSION, FMT_VERSION + 1);
        reseal(b, len, OBJ_OFF_CRC);
        g_assert_cmpint(parse_obj_copy(b, len), ==, -EPROTONOSUPPORT);
    }
}

/* ---- journal superblock ------------------------------------------------ */

static void test_jnl_super(void)
{
    struct jnl_super in = { .start_seq = 77, .data_start = 8192,
                            .tail_off = 12288,
                            .size = 1ULL << 30 }, out;
    uint8_t b[JNL_BLOCK];

    memcpy(in.uuid, uuid_a, LSVD_UUID_LEN);
    jnl_super_encode(&in, b);
    g_assert_cmpmem(b, 8, JNL_MAGIC, 8);
    g_assert_cmpint(jnl_super_parse(b, JNL_BLOCK, &out), ==, 0);
    g_assert_cmpmem(out.uuid, LSVD_UUID_LEN, uuid_a, LSVD_UUID_LEN);
    g_assert_cmpuint(out.start_seq, ==, 77);
    g_assert_cmpuint(out.data_start, ==, 8192);
    g_assert_cmpuint(out.size, ==, 1ULL << 30);

    /* every bit flip */
    for (size_t byte = 0; byte < JNL_BLOCK; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            int ret;

            b[byte] ^= 1 << bit;
            ret = jnl_super_parse(b, JNL_BLOCK, &out);
            if (byte >= OFF_VERSION && byte < OFF_VERSION + 2) {
                g_assert_cmpint(ret, ==, -EPROTONOSUPPORT);
            } else if (byte < OFF_VERSION) {
                g_assert_cmpint(ret, ==, -EINVAL);
            } else {
                g_assert_cmpint(ret, ==, -EIO);
            }
            b[byte] ^= 1 << bit;
        }
    }

    /* truncated */
    for (size_t n = 0; n < JNL_BLOCK; n += 97) {
        g_autofree uint8_t *t = g_memdup2(b, MAX(n, 1));
        g_assert_cmpint(jnl_super_parse(t, n, &out), ==, -EINVAL);
    }
    g_assert_cmpint(jnl_super_parse(b, JNL_BLOCK - 1, &out), ==, -EINVAL);

    /* the checks behind the CRC */
    in.data_start = 0;
    jnl_super_encode(&in, b);
    g_assert_cmpint(jnl_super_parse(b, JNL_BLOCK, &out), ==, -EINVAL);
    in.data_start = 4096 + 512;
    jnl_super_encode(&in, b);
    g_assert_cmpint(jnl_super_parse(b, JNL_BLOCK, &out), ==, -EINVAL);
    in.data_start = 8192;
    in.size = 4096;
    jnl_super_encode(&in, b);
    g_assert_cmpint(jnl_super_parse(b, JNL_BLOCK, &out), ==, -EINVAL);
    in.data_start = 4096;           /* over the second superblock copy */
    in.size = 12288;
    in.tail_off = 8192;
    jnl_super_encode(&in, b);
    g_assert_cmpint(jnl_super_parse(b, JNL_BLOCK, &out), ==, -EINVAL);
    in.data_start = 8192;
    in.gen = 12345;
    jnl_super_encode(&in, b);
    g_assert_cmpint(jnl_super_parse(b, JNL_BLOCK, &out), ==, 0);
    g_assert_cmpuint(out.gen, ==, 12345);
    put_le32(b + OFF_LEN, 512);     /* block size */
    reseal(b, JNL_BLOCK, JNL_OFF_CRC);
    g_assert_cmpint(jnl_super_parse(b, JNL_BLOCK, &out), ==, -EINVAL);
}

/* ---- journal records ---------------------------------------------------- */

static void make_rec(struct rec_header *r, uint16_t type)
{
    memset(r, 0, sizeof(*r));
    r->type = type;
    memcpy(r->uuid, uuid_a, LSVD_UUID_LEN);
    r->seq = 123456;
    if (type == REC_TYPE_WRITE || type == REC_TYPE_ZERO) {
        r->n_extents = 3;
        r->extents[0] = (struct rec_extent){ 0, 1, 0 };
        r->extents[1] = (struct rec_extent){ 1000, 8, 0 };
        r->extents[2] = (struct rec_extent){ 5, 7, 0 };
    }
    if (type == REC_TYPE_WRITE) {
        r->data_len = 8192;             /* 16 sectors, rounded up */
    } else if (type == REC_TYPE_PAD) {
        r->data_len = 3 * JNL_BLOCK;
    }
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
    }
}

static void test_rec_roundtrip(void)
{
    static const uint16_t types[] = {
        REC_TYPE_WRITE, REC_TYPE_ZERO, REC_TYPE_PAD,
    };

    for (size_t t = 0; t < G_N_ELEMENTS(types); t++) {
        struct rec_header in, out;
        uint8_t b[JNL_BLOCK];
        g_autofree uint8_t *data = NULL;
        struct iovec iov[2];

        make_rec(&in, types[t]);
        data = g_malloc(MAX(in.data_len, 1));
        fill(data, in.data_len, t);
        /* the data in two pieces, as a guest iovec would be */
        iov[0] = (struct iovec){ data, in.data_len / 3 };
        iov[1] = (struct iovec){ data + in.data_len / 3,
                                 in.data_len - in.data_len / 3 };
        /* only a WRITE record's CRC covers data */
        rec_header_encode(&in, b, iov, types[t] == REC_TYPE_WRITE ? 2 : 0);
        g_assert_cmpmem(b, 8, REC_MAGIC, 8);
        memset(&out, 0xee, sizeof(out));
        g_assert_cmpint(rec_header_parse(b, JNL_BLOCK, &out), ==, 0);
        g_assert_cmpuint(out.type, ==, types[t]);
        g_assert_cmpuint(out.n_extents, ==, in.n_extents);
        g_assert_cmpmem(out.uuid, LSVD_UUID_LEN, uuid_a, LSVD_UUID_LEN);
        g_assert_cmpuint(out.seq, ==, 123456);
        g_assert_cmpuint(out.data_len, ==, in.data_len);
        g_assert_cmphex(out.crc, ==, in.crc);
        for (uint32_t i = 0; i < in.n_extents; i++) {
            g_assert_cmpuint(out.extents[i].lba, ==, in.extents[i].lba);
            g_assert_cmpuint(out.extents[i].sectors, ==,
                             in.extents[i].sectors);
            g_assert_cmpuint(out.extents[i].flags, ==, 0);
        }
        g_assert_true(rec_crc_ok(b, &out, data));

        /* the CRC covers the data */
        if (in.data_len && types[t] == REC_TYPE_WRITE) {
            data[in.data_len - 1] ^= 0x80;
            g_assert_false(rec_crc_ok(b, &out, data));
            data[in.data_len - 1] ^= 0x80;
            data[0] ^= 1;
            g_assert_false(rec_crc_ok(b, &out, data));
            data[0] ^= 1;
        }
        g_assert_true(rec_crc_ok(b, &out, data));
    }

    /* the most extents a header block holds */
    {
        struct rec_header in, out;
        uint8_t b[JNL_BLOCK];

        make_rec(&in, REC_TYPE_ZERO);
        in.n_extents = REC_MAX_EXTENTS;
        for (uint32_t i = 0; i < REC_MAX_EXTENTS; i++) {
            in.extents[i] = (struct rec_extent){ 3 * i, 2, 0 };
        }
        rec_header_encode(&in, b, NULL, 0);
        g_assert_cmpint(rec_header_parse(b, JNL_BLOCK, &out), ==, 0);
        g_assert_cmpuint(out.n_extents, ==, REC_MAX_EXTENTS);
        g_assert_cmpuint(out.extents[REC_MAX_EXTENTS - 1].lba, ==,
                         3 * (REC_MAX_EXTENTS - 1));
        g_assert_true(rec_crc_ok(b, &out, NULL));
    }
}

/* Every single-bit flip of a record header block is caught: by the
 * parser or by the CRC. */
static void test_rec_bitflips(void)
{
    struct rec_header in, out;
    uint8_t b[JNL_BLOCK];
    uint8_t data[8192];
    struct iovec iov = { data, sizeof(data) };

    make_rec(&in, REC_TYPE_WRITE);
    fill(data, sizeof(data), 99);
    rec_header_encode(&in, b, &iov, 1);
    for (size_t byte = 0; byte < JNL_BLOCK; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            bool accepted;

            b[byte] ^= 1 << bit;
            accepted = rec_header_parse(b, JNL_BLOCK, &out) == 0 &&
                       out.data_len <= sizeof(data) &&
                       rec_crc_ok(b, &out, data);
            if (accepted) {
                g_test_message("bit %d of byte %zu accepted", bit, byte);
            }
            g_assert_false(accepted);
            b[byte] ^= 1 << bit;
        }
    }
    /* and every bit of the data */
    g_assert_cmpint(rec_header_parse(b, JNL_BLOCK, &out), ==, 0);
    for (size_t byte = 0; byte < sizeof(data); byte++) {
        for (int bit = 0; bit < 8; bit++) {
            data[byte] ^= 1 << bit;
            g_assert_false(rec_crc_ok(b, &out, data));
            data[byte] ^= 1 << bit;
        }
    }
    g_assert_true(rec_crc_ok(b, &out, data));
}

static int rec_check(struct rec_header *r)
{
    uint8_t b[JNL_BLOCK];
    struct rec_header out;

    rec_header_encode(r, b, NULL, 0);
    return rec_header_parse(b, JNL_BLOCK, &out);
}

static void test_rec_semantics(void)
{
    struct rec_header r;
    uint8_t b[JNL_BLOCK];

    make_rec(&r, REC_TYPE_WRITE);
    g_assert_cmpint(rec_check(&r), ==, 0);
    r.type = 0;
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);
    r.type = REC_TYPE_PAD + 1;
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);

    make_rec(&r, REC_TYPE_WRITE);
    r.data_len = 4096;              /* 16 sectors do not fit in 4 KiB */
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);
    r.data_len = 3 * 4096;          /* nor take three blocks */
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);
    r.data_len = 8192 + 512;        /* not a whole block */
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);

    make_rec(&r, REC_TYPE_WRITE);
    r.extents[1].sectors = 0;
    r.data_len = 4096;
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);
    make_rec(&r, REC_TYPE_WRITE);
    r.extents[2].flags = 1;
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);
    make_rec(&r, REC_TYPE_WRITE);
    r.extents[0].lba = UINT64_MAX - 1;
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);

    make_rec(&r, REC_TYPE_ZERO);
    r.data_len = 4096;
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);
    make_rec(&r, REC_TYPE_PAD);
    r.n_extents = 1;
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);
    make_rec(&r, REC_TYPE_PAD);
    r.data_len = 1ULL << 41;
    g_assert_cmpint(rec_check(&r), ==, -EINVAL);

    /* too many extents for the block */
    make_rec(&r, REC_TYPE_ZERO);
    rec_header_encode(&r, b, NULL, 0);
    put_le32(b + OFF_LEN, REC_MAX_EXTENTS + 1);
    g_assert_cmpint(rec_header_parse(b, JNL_BLOCK, &r), ==, -EINVAL);
    put_le32(b + OFF_LEN, 0xffffffff);
    g_assert_cmpint(rec_header_parse(b, JNL_BLOCK, &r), ==, -EINVAL);

    /* wrong version, truncated */
    make_rec(&r, REC_TYPE_ZERO);
    rec_header_encode(&r, b, NULL, 0);
    for (size_t n = 0; n < JNL_BLOCK; n += 61) {
        g_autofree uint8_t *t = g_memdup2(b, MAX(n, 1));
        g_assert_cmpint(rec_header_parse(t, n, &r), ==, -EINVAL);
    }
    put_le16(b + OFF_VERSION, 0);
    g_assert_cmpint(rec_header_parse(b, JNL_BLOCK, &r), ==,
                    -EPROTONOSUPPORT);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/format/super/roundtrip", test_super_roundtrip);
    g_test_add_func("/format/super/bitflips", test_super_bitflips);
    g_test_add_func("/format/super/truncated", test_super_truncated);
    g_test_add_func("/format/super/semantics", test_super_semantics);
    g_test_add_func("/format/obj/roundtrip", test_obj_roundtrip);
    g_test_add_func("/format/obj/empty-tables", test_obj_empty_tables);
    g_test_add_func("/format/obj/bitflips", test_obj_bitflips);
    g_test_add_func("/format/obj/truncated", test_obj_truncated);
    g_test_add_func("/format/obj/semantics", test_obj_semantics);
    g_test_add_func("/format/jnl-super", test_jnl_super);
    g_test_add_func("/format/rec/roundtrip", test_rec_roundtrip);
    g_test_add_func("/format/rec/bitflips", test_rec_bitflips);
    g_test_add_func("/format/rec/semantics", test_rec_semantics);
    return g_test_run();
}
