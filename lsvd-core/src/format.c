/*
 * format.c - encoders and parsers of the on-disk and in-object structures.
 * See format.h and docs/format.md.
 */
#include "format.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include <glib.h>
#include <lz4.h>

/* Common prefix of objects: magic, version, type, length. */
static void prefix_encode(uint8_t *b, uint16_t type, uint32_t len)
{
    memcpy(b, OBJ_MAGIC, 8);
    put_le16(b + 8, FMT_VERSION);
    put_le16(b + 10, type);
    put_le32(b + 12, len);
}

/* CRC32C of @len bytes at @b, as if the 4 bytes at @crc_off were zero. */
static uint32_t crc_skipping(const uint8_t *b, size_t len, size_t crc_off)
{
    static const uint8_t zero[4];
    uint32_t c = lsvd_crc32c(0, b, crc_off);

    c = lsvd_crc32c(c, zero, 4);
    return lsvd_crc32c(c, b + crc_off + 4, len - crc_off - 4);
}

static int prefix_parse(const uint8_t *b, size_t len, uint16_t *type,
                        uint32_t *total)
{
    if (len < 16 || memcmp(b, OBJ_MAGIC, 8) != 0) {
        return -EINVAL;
    }
    if (get_le16(b + 8) != FMT_VERSION) {
        return -EPROTONOSUPPORT;
    }
    *type = get_le16(b + 10);
    *total = get_le32(b + 12);
    return 0;
}

/* ---- superblock -------------------------------------------------------- */
#define SUPER_CRC_OFF 252

uint8_t *super_encode(const struct super *sb, size_t *len)
{
    size_t n = SUPER_FIXED_LEN + 8 * (size_t)sb->n_snaps;
    uint8_t *b = g_malloc0(n);

    prefix_encode(b, OBJ_TYPE_SUPER, n);
    memcpy(b + 16, sb->uuid, LSVD_UUID_LEN);
    put_le64(b + 32, sb->size);
    put_le64(b + 40, sb->created);
    put_le64(b + 48, 0);                        /* flags */
    put_le64(b + 56, sb->writer_epoch);
    put_le64(b + 64, sb->base_seq);
    put_le32(b + 72, sb->n_snaps);
    memcpy(b + 80, sb->base_name,
           strnlen(sb->base_name, SUPER_BASE_NAME_LEN));
    for (uint32_t i = 0; i < sb->n_snaps; i++) {
        put_le64(b + SUPER_FIXED_LEN + 8 * i, sb->snaps[i]);
    }
    put_le32(b + SUPER_CRC_OFF, crc_skipping(b, n, SUPER_CRC_OFF));
    *len = n;
    return b;
}

int super_parse(const uint8_t *b, size_t len, struct super *sb)
{
    uint16_t type;
    uint32_t total, n_snaps;
    int ret;

    memset(sb, 0, sizeof(*sb));
    ret = prefix_parse(b, len, &type, &total);
    if (ret < 0) {
        return ret;
    }
    if (type != OBJ_TYPE_SUPER || len < SUPER_FIXED_LEN || total > len ||
        total < SUPER_FIXED_LEN) {
        return -EINVAL;
    }
    if (get_le32(b + SUPER_CRC_OFF) != crc_skipping(b, total, SUPER_CRC_OFF)) {
        return -EIO;
    }
    n_snaps = get_le32(b + 72);
    if (n_snaps > SUPER_MAX_SNAPS ||
        total != SUPER_FIXED_LEN + 8 * n_snaps ||
        get_le64(b + 48) != 0) {
        return -EINVAL;
    }
    memcpy(sb->uuid, b + 16, LSVD_UUID_LEN);
    sb->size = get_le64(b + 32);
    sb->created = get_le64(b + 40);
    sb->writer_epoch = get_le64(b + 56);
    sb->base_seq = get_le64(b + 64);
    memcpy(sb->base_name, b + 80, SUPER_BASE_NAME_LEN);
    sb->base_name[SUPER_BASE_NAME_LEN] = '\0';
    if (sb->size == 0 || sb->size % LSVD_SECTOR_SIZE) {
        return -EINVAL;
    }
    sb->n_snaps = n_snaps;
    sb->snaps = g_new(uint64_t, n_snaps + 1);
    for (uint32_t i = 0; i < n_snaps; i++) {
        sb->snaps[i] = get_le64(b + SUPER_FIXED_LEN + 8 * i);
    }
    return 0;
}

void super_free(struct super *sb)
{
    g_free(sb->snaps);
    sb->snaps = NULL;
}

/* ---- data object header ------------------------------------------------ */
#define OBJ_CRC_OFF 124

static size_t obj_hdr_len(uint64_t ne, uint64_t nc, uint64_t nd)
{
    return OBJ_FIXED_LEN + OBJ_EXTENT_LEN * ne + OBJ_CHUNK_LEN * nc +
           OBJ_DEFERRED_LEN * nd;
}

uint8_t *obj_header_encode(struct obj_header *h)
{
    size_t n = obj_hdr_len(h->n_extents, h->n_chunks, h->n_deferred);
    uint8_t *b = g_malloc0(n), *p;

    h->hdr_len = n;
    prefix_encode(b, h->type, n);
    memcpy(b + 16, h->uuid, LSVD_UUID_LEN);
    put_le64(b + 32, h->seq);
    put_le64(b + 40, h->jseq);
    put_le64(b + 48, h->vol_size);
    put_le32(b + 56, h->n_extents);
    put_le32(b + 60, h->n_chunks);
    put_le32(b + 64, h->n_deferred);
    put_le32(b + 68, 0);                        /* flags */
    put_le64(b + 72, h->data_len);
    put_le64(b + 80, h->raw_len);
    put_le64(b + 88, h->writer_epoch);
    put_le64(b + 96, h->ckpt_seq);
    put_le32(b + 104, h->chunk_size);
    p = b + OBJ_FIXED_LEN;
    for (uint32_t i = 0; i < h->n_extents; i++, p += OBJ_EXTENT_LEN) {
        put_le64(p, h->extents[i].lba);
        put_le32(p + 8, h->extents[i].sectors);
        put_le32(p + 12, h->extents[i].flags);
        put_le64(p + 16, h->extents[i].off);
    }
    for (uint32_t i = 0; i < h->n_chunks; i++, p += OBJ_CHUNK_LEN) {
        put_le32(p, h->chunks[i].raw_len);
        put_le32(p + 4, h->chunks[i].stored_len);
        put_le32(p + 8, h->chunks[i].flags);
        put_le32(p + 12, h->chunks[i].crc);
    }
    for (uint32_t i = 0; i < 2 * h->n_deferred; i++, p += 8) {
        put_le64(p, h->deferred[i]);
    }
    put_le32(b + OBJ_CRC_OFF, crc_skipping(b, n, OBJ_CRC_OFF));
    return b;
}

int obj_header_parse(const uint8_t *b, size_t len, struct obj_header *h)
{
    uint64_t raw = 0, stored = 0;
    uint16_t type;
    uint32_t total;
    const uint8_t *p;
    int ret;

    memset(h, 0, sizeof(*h));
    ret = prefix_parse(b, len, &type, &total);
    if (ret < 0) {
        return ret;
    }
    if (type != OBJ_TYPE_DATA || total < OBJ_FIXED_LEN ||
        total > OBJ_MAX_HDR_LEN) {
        return -EINVAL;
    }
    h->hdr_len = total;
    if (len < total) {
        return -EAGAIN;
    }
    if (get_le32(b + OBJ_CRC_OFF) != crc_skipping(b, total, OBJ_CRC_OFF)) {
        return -EIO;
    }
    h->type = type;
    memcpy(h->uuid, b + 16, LSVD_UUID_LEN);
    h->seq = get_le64(b + 32);
    h->jseq = get_le64(b + 40);
    h->vol_size = get_le64(b + 48);
    h->n_extents = get_le32(b + 56);
    h->n_chunks = get_le32(b + 60);
    h->n_deferred = get_le32(b + 64);
    h->data_len = get_le64(b + 72);
    h->raw_len = get_le64(b + 80);
    h->writer_epoch = get_le64(b + 88);
    h->ckpt_seq = get_le64(b + 96);
    h->chunk_size = get_le32(b + 104);
    if (get_le32(b + 68) != 0 || h->chunk_size != OBJ_CHUNK_SIZE ||
        total != obj_hdr_len(h->n_extents, h->n_chunks, h->n_deferred) ||
        h->vol_size % LSVD_SECTOR_SIZE) {
        return -EINVAL;
    }

    p = b + OBJ_FIXED_LEN;
    h->chunks = g_new(struct obj_chunk, h->n_chunks + 1);
    p += (size_t)OBJ_EXTENT_LEN * h->n_extents;     /* chunks first */
    for (uint32_t i = 0; i < h->n_chunks; i++, p += OBJ_CHUNK_LEN) {
        struct obj_chunk *c = &h->chunks[i];
        c->raw_len = get_le32(p);
        c->stored_len = get_le32(p + 4);
        c->flags = get_le32(p + 8);
        c->crc = get_le32(p + 12);
        /* every chunk but the last holds exactly chunk_size raw bytes, so
         * that a raw offset finds its chunk by division */
        if (c->raw_len == 0 || c->raw_len > h->chunk_size ||
            (i + 1 < h->n_chunks && c->raw_len != h->chunk_size) ||
            (c->flags & ~OBJ_CHUNK_LZ4) ||
            c->stored_len > (uint32_t)LZ4_compressBound(h->chunk_size) ||
            (!(c->flags & OBJ_CHUNK_LZ4) && c->stored_len != c->raw_len)) {
            return -EINVAL;
        }
        raw += c->raw_len;
        stored += c->stored_len;
    }
    if (raw != h->raw_len || stored != h->data_len) {
        return -EINVAL;
    }

    p = b + OBJ_FIXED_LEN;
    h->extents = g_new(struct obj_extent, h->n_extents + 1);
    for (uint32_t i = 0; i < h->n_extents; i++, p += OBJ_EXTENT_LEN) {
        struct obj_extent *e = &h->extents[i];
        e->lba = get_le64(p);
        e->sectors = get_le32(p + 8);
        e->flags = get_le32(p + 12);
        e->off = get_le64(p + 16);
        /* sorted by LBA and not overlapping, as written */
        if (e->sectors == 0 || (e->flags & ~OBJ_EXT_ZERO) ||
            e->lba > h->vol_size / LSVD_SECTOR_SIZE ||
            e->sectors > h->vol_size / LSVD_SECTOR_SIZE - e->lba ||
            (i > 0 && e->lba < h->extents[i - 1].lba +
                               h->extents[i - 1].sectors)) {
            return -EINVAL;
        }
        if (e->flags & OBJ_EXT_ZERO) {
            if (e->off != 0) {
                return -EINVAL;
            }
        } else if (e->off % LSVD_SECTOR_SIZE || e->off > h->raw_len ||
                   (uint64_t)e->sectors * LSVD_SECTOR_SIZE >
                   h->raw_len - e->off) {
            return -EINVAL;
        }
    }

    p += (size_t)OBJ_CHUNK_LEN * h->n_chunks;
    h->deferred = g_new(uint64_t, 2 * (size_t)h->n_deferred + 1);
    for (uint32_t i = 0; i < 2 * h->n_deferred; i++, p += 8) {
        h->deferred[i] = get_le64(p);
    }
    return 0;
}

void obj_header_free(struct obj_header *h)
{
    g_free(h->extents);
    g_free(h->chunks);
    g_free(h->deferred);
    h->extents = NULL;
    h->chunks = NULL;
    h->deferred = NULL;
}

/* ---- object map checkpoint ---------------------------------------------- */
#define CKPT_CRC_OFF 124

int obj_type(const uint8_t *b, size_t len)
{
    uint16_t type;
    uint32_t total;
    int ret = prefix_parse(b, len, &type, &total);

    return ret < 0 ? ret : type;
}

static uint64_t ckpt_len(uint64_t ne, uint64_t no)
{
    return CKPT_FIXED_LEN + CKPT_EXTENT_LEN * ne + CKPT_OBJECT_LEN * no + 4;
}

uint8_t *ckpt_encode(const struct ckpt *c, size_t *len)
{
    size_t n = ckpt_len(c->n_extents, c->n_objects);
    uint8_t *b = g_malloc0(n), *p;

    prefix_encode(b, OBJ_TYPE_CHECKPOINT, CKPT_FIXED_LEN);
    memcpy(b + 16, c->uuid, LSVD_UUID_LEN);
    put_le64(b + 32, c->seq);
    put_le64(b + 40, c->jseq);
    put_le64(b + 48, c->vol_size);
    put_le64(b + 56, c->n_extents);
    put_le64(b + 64, c->n_objects);
    put_le64(b + 72, n);
    put_le64(b + 80, c->prev);
    put_le32(b + CKPT_CRC_OFF, crc_skipping(b, CKPT_FIXED_LEN, CKPT_CRC_OFF));
    p = b + CKPT_FIXED_LEN;
    for (uint64_t i = 0; i < c->n_extents; i++, p += CKPT_EXTENT_LEN) {
        const struct ckpt_extent *e = &c->extents[i];
        put_le64(p, e->lba);
        put_le32(p + 8, e->sectors);
        put_le32(p + 12, e->flags);
        put_le64(p + 16, e->seq << 32 | e->off);
    }
    for (uint64_t i = 0; i < c->n_objects; i++, p += CKPT_OBJECT_LEN) {
        put_le64(p, c->objects[i].seq);
        put_le32(p + 8, c->objects[i].hdr_len);
        put_le32(p + 12, 0);
        put_le64(p + 16, c->objects[i].data_len);
    }
    put_le32(p, lsvd_crc32c(0, b + CKPT_FIXED_LEN, p - b - CKPT_FIXED_LEN));
    *len = n;
    return b;
}

int ckpt_parse(const uint8_t *b, size_t len, struct ckpt *c, size_t *need)
{
    uint64_t total, prev_end = 0;
    uint16_t type;
    uint32_t fixed;
    const uint8_t *p;
    int ret;

    memset(c, 0, sizeof(*c));
    ret = prefix_parse(b, len, &type, &fixed);
    if (ret < 0) {
        return ret;
    }
    if (type != OBJ_TYPE_CHECKPOINT || fixed != CKPT_FIXED_LEN ||
        len < CKPT_FIXED_LEN) {
        return -EINVAL;
    }
    if (get_le32(b + CKPT_CRC_OFF) !=
        crc_skipping(b, CKPT_FIXED_LEN, CKPT_CRC_OFF)) {
        return -EIO;
    }
    memcpy(c->uuid, b + 16, LSVD_UUID_LEN);
    c->seq = get_le64(b + 32);
    c->jseq = get_le64(b + 40);
    c->vol_size = get_le64(b + 48);
    c->n_extents = get_le64(b + 56);
    c->n_objects = get_le64(b + 64);
    total = get_le64(b + 72);
    c->prev = get_le64(b + 80);
    if (c->n_extents > CKPT_MAX_ENTRIES || c->n_objects > CKPT_MAX_ENTRIES ||
        total != ckpt_len(c->n_extents, c->n_objects) ||
        c->vol_size % LSVD_SECTOR_SIZE || c->prev >= c->seq) {
        return -EINVAL;
    }
    if (len < total) {
        *need = total;
        return -EAGAIN;
    }
    p = b + CKPT_FIXED_LEN;
    if (get_le32(b + total - 4) !=
        lsvd_crc32c(0, p, total - 4 - CKPT_FIXED_LEN)) {
        return -EIO;
    }
    c->extents = g_try_new(struct ckpt_extent, c->n_extents + 1);
    c->objects = g_try_new(struct ckpt_object, c->n_objects + 1);
    if (!c->extents || !c->objects) {
        ckpt_free(c);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < c->n_extents; i++, p += CKPT_EXTENT_LEN) {
        struct ckpt_extent *e = &c->extents[i];
        uint64_t loc = get_le64(p + 16);

        e->lba = get_le64(p);
        e->sectors = get_le32(p + 8);
        e->flags = get_le32(p + 12);
        e->seq = loc >> 32;
        e->off = loc & 0xffffffffu;
        /* sorted, not overlapping, inside the volume, pointing at an
         * object older than the checkpoint */
        if (e->sectors == 0 || (e->flags & ~OBJ_EXT_ZERO) ||
            e->lba < prev_end || e->lba > c->vol_size / LSVD_SECTOR_SIZE ||
            e->sectors > c->vol_size / LSVD_SECTOR_SIZE - e->lba ||
            ((e->flags & OBJ_EXT_ZERO) ? loc != 0 :
             e->seq == 0 || e->seq >= c->seq)) {
            ckpt_free(c);
            return -EINVAL;
        }
        prev_end = e->lba + e->sectors;
    }
    for (uint64_t i = 0; i < c->n_objects; i++, p += CKPT_OBJECT_LEN) {
        struct ckpt_object *o = &c->objects[i];

        o->seq = get_le64(p);
        o->hdr_len = get_le32(p + 8);
        o->data_len = get_le64(p + 16);
        if (o->seq == 0 || o->seq >= c->seq ||
            (i > 0 && o->seq <= c->objects[i - 1].seq) ||
            o->hdr_len < OBJ_FIXED_LEN || o->hdr_len > OBJ_MAX_HDR_LEN ||
            get_le32(p + 12) != 0) {
            ckpt_free(c);
            return -EINVAL;
        }
    }
    return 0;
}

void ckpt_free(struct ckpt *c)
{
    g_free(c->extents);
    g_free(c->objects);
    c->extents = NULL;
    c->objects = NULL;
}

/* ---- journal ------------------------------------------------------------ */
#define JNL_CRC_OFF (JNL_BLOCK - 4)
#define REC_CRC_OFF 48

void jnl_super_encode(const struct jnl_super *js, uint8_t b[JNL_BLOCK])
{
    memset(b, 0, JNL_BLOCK);
    memcpy(b, JNL_MAGIC, 8);
    put_le16(b + 8, FMT_VERSION);
    put_le32(b + 12, JNL_BLOCK);
    memcpy(b + 16, js->uuid, LSVD_UUID_LEN);
    put_le64(b + 32, js->start_seq);
    put_le64(b + 40, js->data_start);
    put_le64(b + 48, js->size);
    put_le64(b + 56, js->tail_off);
    put_le64(b + 64, js->gen);
    put_le32(b + JNL_CRC_OFF, crc_skipping(b, JNL_BLOCK, JNL_CRC_OFF));
}

int jnl_super_parse(const uint8_t *b, size_t len, struct jnl_super *js)
{
    if (len < JNL_BLOCK || memcmp(b, JNL_MAGIC, 8) != 0) {
        return -EINVAL;
    }
    if (get_le16(b + 8) != FMT_VERSION) {
        return -EPROTONOSUPPORT;
    }
    if (get_le32(b + JNL_CRC_OFF) != crc_skipping(b, JNL_BLOCK, JNL_CRC_OFF)) {
        return -EIO;
    }
    memcpy(js->uuid, b + 16, LSVD_UUID_LEN);
    js->start_seq = get_le64(b + 32);
    js->data_start = get_le64(b + 40);
    js->size = get_le64(b + 48);
    js->tail_off = get_le64(b + 56);
    js->gen = get_le64(b + 64);
    if (get_le32(b + 12) != JNL_BLOCK || js->data_start < 2 * JNL_BLOCK ||
        js->data_start % JNL_BLOCK || js->size % JNL_BLOCK ||
        js->size <= js->data_start || js->tail_off < js->data_start ||
        js->tail_off >= js->size || js->tail_off % JNL_BLOCK) {
        return -EINVAL;
    }
    return 0;
}

void rec_header_encode(struct rec_header *r, uint8_t b[JNL_BLOCK],
                       const struct iovec *data, int iovcnt)
{
    uint8_t *p = b + REC_FIXED_LEN;
    uint32_t crc;

    memset(b, 0, JNL_BLOCK);
    memcpy(b, REC_MAGIC, 8);
    put_le16(b + 8, FMT_VERSION);
    put_le16(b + 10, r->type);
    put_le32(b + 12, r->n_extents);
    memcpy(b + 16, r->uuid, LSVD_UUID_LEN);
    put_le64(b + 32, r->seq);
    put_le64(b + 40, r->data_len);
    put_le64(b + 56, r->type == REC_TYPE_FENCE ? r->next_seq : 0);
    for (uint32_t i = 0; i < r->n_extents; i++, p += REC_EXTENT_LEN) {
        put_le64(p, r->extents[i].lba);
        put_le32(p + 8, r->extents[i].sectors);
        put_le32(p + 12, r->extents[i].flags);
    }
    crc = lsvd_crc32c(0, b, JNL_BLOCK);
    for (int i = 0; i < iovcnt; i++) {
        crc = lsvd_crc32c(crc, data[i].iov_base, data[i].iov_len);
    }
    r->crc = crc;
    put_le32(b + REC_CRC_OFF, crc);
}

int rec_header_parse(const uint8_t *b, size_t len, struct rec_header *r)
{
    const uint8_t *p = b + REC_FIXED_LEN;
    uint64_t bytes = 0;

    if (len < JNL_BLOCK || memcmp(b, REC_MAGIC, 8) != 0) {
        return -EINVAL;
    }
    if (get_le16(b + 8) != FMT_VERSION) {
        return -EPROTONOSUPPORT;
    }
    r->type = get_le16(b + 10);
    r->n_extents = get_le32(b + 12);
    memcpy(r->uuid, b + 16, LSVD_UUID_LEN);
    r->seq = get_le64(b + 32);
    r->data_len = get_le64(b + 40);
    r->crc = get_le32(b + REC_CRC_OFF);
    r->next_seq = get_le64(b + 56);
    if (r->type < REC_TYPE_WRITE || r->type > REC_TYPE_FENCE ||
        (r->type == REC_TYPE_FENCE ?
         r->next_seq <= r->seq || r->n_extents || r->data_len :
         r->next_seq != 0) ||
        r->n_extents > REC_MAX_EXTENTS || r->data_len % JNL_BLOCK ||
        r->data_len > (1ULL << 40)) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < r->n_extents; i++, p += REC_EXTENT_LEN) {
        r->extents[i].lba = get_le64(p);
        r->extents[i].sectors = get_le32(p + 8);
        r->extents[i].flags = get_le32(p + 12);
        if (r->extents[i].sectors == 0 || r->extents[i].flags != 0 ||
            r->extents[i].lba > UINT64_MAX / 2) {
            return -EINVAL;
        }
        bytes += (uint64_t)r->extents[i].sectors * LSVD_SECTOR_SIZE;
    }
    if (r->type == REC_TYPE_WRITE &&
        ROUND_UP(bytes, JNL_BLOCK) != r->data_len) {
        return -EINVAL;
    }
    if (r->type == REC_TYPE_ZERO && r->data_len != 0) {
        return -EINVAL;
    }
    if (r->type == REC_TYPE_PAD && r->n_extents != 0) {
        return -EINVAL;
    }
    return 0;
}

bool rec_crc_ok(const uint8_t b[JNL_BLOCK], const struct rec_header *r,
                const void *data)
{
    uint32_t crc = crc_skipping(b, JNL_BLOCK, REC_CRC_OFF);

    /* a PAD record's data_len is space skipped, not data it covers */
    if (r->type == REC_TYPE_WRITE) {
        crc = lsvd_crc32c(crc, data, r->data_len);
    }
    return crc == r->crc;
}

/* ---- journal map checkpoint --------------------------------------------- */
#define JMAP_CRC_OFF 124

static uint64_t jmap_len(uint64_t nr, uint64_t ne, uint64_t nm)
{
    return JMAP_FIXED_LEN + JMAP_REC_LEN * nr + JMAP_EXT_LEN * ne +
           JMAP_MAP_LEN * nm + 4;
}

uint8_t *jmap_ckpt_encode(const struct jmap_ckpt *c, size_t *len)
{
    size_t n = jmap_len(c->n_recs, c->n_exts, c->n_map);
    uint8_t *b = g_malloc0(n), *p;

    memcpy(b, JMAP_MAGIC, 8);
    put_le16(b + 8, FMT_VERSION);
    put_le32(b + 12, JMAP_FIXED_LEN);
    memcpy(b + 16, c->uuid, LSVD_UUID_LEN);
    put_le64(b + 32, c->sb_start_seq);
    put_le64(b + 40, c->sb_tail_off);
    put_le64(b + 48, c->next_seq);
    put_le64(b + 56, c->next_off);
    put_le64(b + 64, c->upto_seq);
    put_le64(b + 72, c->n_recs);
    put_le64(b + 80, c->n_exts);
    put_le64(b + 88, c->n_map);
    put_le64(b + 96, n);
    put_le32(b + JMAP_CRC_OFF, crc_skipping(b, JMAP_FIXED_LEN, JMAP_CRC_OFF));
    p = b + JMAP_FIXED_LEN;
    for (uint64_t i = 0; i < c->n_recs; i++, p += JMAP_REC_LEN) {
        put_le64(p, c->recs[i].seq);
        put_le64(p + 8, c->recs[i].off);
        put_le64(p + 16, c->recs[i].len);
        put_le16(p + 24, c->recs[i].type);
        put_le32(p + 28, c->recs[i].n_extents);
    }
    for (uint64_t i = 0; i < c->n_exts; i++, p += JMAP_EXT_LEN) {
        put_le64(p, c->exts[i].lba);
        put_le32(p + 8, c->exts[i].sectors);
        put_le32(p + 12, c->exts[i].flags);
    }
    for (uint64_t i = 0; i < c->n_map; i++, p += JMAP_MAP_LEN) {
        put_le64(p, c->map[i].lba);
        put_le64(p + 8, c->map[i].len);
        put_le64(p + 16, c->map[i].loc);
    }
    put_le32(p, lsvd_crc32c(0, b + JMAP_FIXED_LEN, p - b - JMAP_FIXED_LEN));
    *len = n;
    return b;
}

int jmap_ckpt_parse(const uint8_t *b, size_t len, struct jmap_ckpt *c)
{
    uint64_t total, exts = 0, end = 0;
    const uint8_t *p;

    memset(c, 0, sizeof(*c));
    if (len < JMAP_FIXED_LEN || memcmp(b, JMAP_MAGIC, 8) != 0) {
        return -EINVAL;
    }
    if (get_le16(b + 8) != FMT_VERSION) {
        return -EPROTONOSUPPORT;
    }
    if (get_le32(b + JMAP_CRC_OFF) !=
        crc_skipping(b, JMAP_FIXED_LEN, JMAP_CRC_OFF)) {
        return -EIO;
    }
    memcpy(c->uuid, b + 16, LSVD_UUID_LEN);
    c->sb_start_seq = get_le64(b + 32);
    c->sb_tail_off = get_le64(b + 40);
    c->next_seq = get_le64(b + 48);
    c->next_off = get_le64(b + 56);
    c->upto_seq = get_le64(b + 64);
    c->n_recs = get_le64(b + 72);
    c->n_exts = get_le64(b + 80);
    c->n_map = get_le64(b + 88);
    total = get_le64(b + 96);
    if (get_le32(b + 12) != JMAP_FIXED_LEN ||
        c->n_recs > JMAP_MAX_ENTRIES || c->n_exts > JMAP_MAX_ENTRIES ||
        c->n_map > JMAP_MAX_ENTRIES ||
        total != jmap_len(c->n_recs, c->n_exts, c->n_map) || total != len ||
        c->upto_seq >= c->next_seq || c->next_off % JNL_BLOCK) {
        return -EINVAL;
    }
    p = b + JMAP_FIXED_LEN;
    if (get_le32(b + total - 4) !=
        lsvd_crc32c(0, p, total - 4 - JMAP_FIXED_LEN)) {
        return -EIO;
    }
    c->recs = g_try_new(struct jmap_rec, c->n_recs + 1);
    c->exts = g_try_new(struct rec_extent, c->n_exts + 1);
    c->map = g_try_new(struct jmap_map, c->n_map + 1);
    if (!c->recs || !c->exts || !c->map) {
        jmap_ckpt_free(c);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < c->n_recs; i++, p += JMAP_REC_LEN) {
        struct jmap_rec *r = &c->recs[i];

        r->seq = get_le64(p);
        r->off = get_le64(p + 8);
        r->len = get_le64(p + 16);
        r->type = get_le16(p + 24);
        r->n_extents = get_le32(p + 28);
        if ((i > 0 && r->seq <= c->recs[i - 1].seq) || r->seq >= c->next_seq ||
            r->type < REC_TYPE_WRITE || r->type > REC_TYPE_FENCE ||
            r->n_extents > REC_MAX_EXTENTS || r->off % JNL_BLOCK ||
            r->len < JNL_BLOCK || r->len % JNL_BLOCK ||
            get_le16(p + 26) != 0) {
            jmap_ckpt_free(c);
            return -EINVAL;
        }
        exts += r->n_extents;
    }
    if (exts != c->n_exts) {
        jmap_ckpt_free(c);
        return -EINVAL;
    }
    for (uint64_t i = 0; i < c->n_exts; i++, p += JMAP_EXT_LEN) {
        c->exts[i].lba = get_le64(p);
        c->exts[i].sectors = get_le32(p + 8);
        c->exts[i].flags = get_le32(p + 12);
        if (c->exts[i].sectors == 0 || c->exts[i].flags != 0 ||
            c->exts[i].lba > UINT64_MAX / 2) {
            jmap_ckpt_free(c);
            return -EINVAL;
        }
    }
    for (uint64_t i = 0; i < c->n_map; i++, p += JMAP_MAP_LEN) {
        struct jmap_map *m = &c->map[i];

        m->lba = get_le64(p);
        m->len = get_le64(p + 8);
        m->loc = get_le64(p + 16);
        if (m->len == 0 || m->lba < end || m->lba > UINT64_MAX / 2 ||
            m->len > UINT64_MAX / 2 - m->lba) {
            jmap_ckpt_free(c);
            return -EINVAL;
        }
        end = m->lba + m->len;
    }
    return 0;
}

void jmap_ckpt_free(struct jmap_ckpt *c)
{
    g_free(c->recs);
    g_free(c->exts);
    g_free(c->map);
    c->recs = NULL;
    c->exts = NULL;
    c->map = NULL;
}

/* ---- read cache map ------------------------------------------------------ */

#define RCMAP_CRC_OFF 60

static size_t rcmap_len(uint64_t n_entries)
{
    return RCMAP_FIXED_LEN + n_entries * RCMAP_ENTRY_LEN + 4;
}

uint8_t *rcmap_encode(const struct rcmap *m, size_t *len)
{
    size_t n = rcmap_len(m->n_entries);
    uint8_t *b = g_malloc0(n), *p;

    memcpy(b, RCMAP_MAGIC, 8);
    put_le16(b + 8, FMT_VERSION);
    put_le32(b + 12, RCMAP_FIXED_LEN);
    memcpy(b + 16, m->uuid, LSVD_UUID_LEN);
    put_le32(b + 32, m->block_size);
    put_le32(b + 36, m->n_slots);
    put_le32(b + 40, m->n_entries);
    put_le64(b + 48, n);
    put_le32(b + RCMAP_CRC_OFF, crc_skipping(b, RCMAP_FIXED_LEN,
                                             RCMAP_CRC_OFF));
    p = b + RCMAP_FIXED_LEN;
    for (uint32_t i = 0; i < m->n_entries; i++, p += RCMAP_ENTRY_LEN) {
        put_le64(p, m->entries[i].seq);
        put_le32(p + 8, m->entries[i].block);
        put_le32(p + 12, m->entries[i].slot);
        put_le32(p + 16, m->entries[i].len);
        put_le32(p + 20, m->entries[i].crc);
    }
    put_le32(p, lsvd_crc32c(0, b + RCMAP_FIXED_LEN, p - b - RCMAP_FIXED_LEN));
    *len = n;
    return b;
}

int rcmap_parse(const uint8_t *b, size_t len, struct rcmap *m)
{
    g_autofree uint8_t *used = NULL;
    const uint8_t *p;

    memset(m, 0, sizeof(*m));
    if (len < RCMAP_FIXED_LEN || memcmp(b, RCMAP_MAGIC, 8) != 0) {
        return -EINVAL;
    }
    if (get_le16(b + 8) != FMT_VERSION) {
        return -EPROTONOSUPPORT;
    }
    if (get_le32(b + RCMAP_CRC_OFF) !=
        crc_skipping(b, RCMAP_FIXED_LEN, RCMAP_CRC_OFF)) {
        return -EIO;
    }
    memcpy(m->uuid, b + 16, LSVD_UUID_LEN);
    m->block_size = get_le32(b + 32);
    m->n_slots = get_le32(b + 36);
    m->n_entries = get_le32(b + 40);
    if (get_le32(b + 12) != RCMAP_FIXED_LEN || get_le16(b + 10) != 0 ||
        get_le32(b + 44) != 0 || get_le32(b + 56) != 0 ||
        m->block_size < LSVD_SECTOR_SIZE || m->block_size % LSVD_SECTOR_SIZE ||
        m->n_slots > RCMAP_MAX_SLOTS || m->n_entries > m->n_slots ||
        get_le64(b + 48) != rcmap_len(m->n_entries) ||
        len != rcmap_len(m->n_entries)) {
        return -EINVAL;
    }
    p = b + RCMAP_FIXED_LEN;
    if (get_le32(b + len - 4) != lsvd_crc32c(0, p, len - 4 - RCMAP_FIXED_LEN)) {
        return -EIO;
    }
    used = g_try_malloc0(m->n_slots / 8 + 1);
    m->entries = g_try_new(struct rcmap_entry, m->n_entries + 1);
    if (!used || !m->entries) {
        rcmap_free(m);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < m->n_entries; i++, p += RCMAP_ENTRY_LEN) {
        struct rcmap_entry *e = &m->entries[i];

        e->seq = get_le64(p);
        e->block = get_le32(p + 8);
        e->slot = get_le32(p + 12);
        e->len = get_le32(p + 16);
        e->crc = get_le32(p + 20);
        if (e->seq == 0 || e->slot >= m->n_slots ||
            (used[e->slot / 8] & (1u << (e->slot % 8))) || e->len == 0 ||
            e->len > m->block_size || e->len % LSVD_SECTOR_SIZE ||
            get_le64(p + 24) != 0) {
            rcmap_free(m);
            return -EINVAL;
        }
        used[e->slot / 8] |= 1u << (e->slot % 8);
    }
    return 0;
}

void rcmap_free(struct rcmap *m)
{
    g_free(m->entries);
    m->entries = NULL;
}
