/*
 * objlog.c - batches, objects, the object map.  See objlog.h.
 */
#include "objlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <glib.h>
#include <lz4.h>

#include "extmap.h"

#define LOC_SEQ_MAX 0x7fffffffULL
#define MAX_BATCH_EXTENTS 65536     /* seal early when this fragmented */

/* What a read needs to know about an object: its chunk table. */
struct objinfo {
    uint32_t hdr_len;
    uint32_t n_chunks;
    struct obj_chunk *chunks;
    uint64_t *soff;                 /* n_chunks + 1 stored offsets */
};

struct objlog {
    struct backend *be;
    char *vol;
    uint8_t uuid[LSVD_UUID_LEN];
    uint64_t vol_size;
    uint64_t batch_size;
    bool rdonly;

    struct extmap *omap;            /* lba -> seq << 32 | sector in object */
    GPtrArray *objs;                /* index seq -> struct objinfo * */
    uint64_t next_seq;

    /* the batch being filled */
    struct extmap *bmap;            /* lba -> sector in bbuf, or LOC_ZERO */
    uint8_t *bbuf;
    size_t blen, bcap;
    uint64_t bjseq;                 /* newest journal record in the batch */

    /* read scratch, worker thread only */
    uint8_t *getbuf;
    size_t getcap;
    uint8_t *chunkbuf;

    GMutex stats_lock;              /* protects stats */
    struct objlog_stats stats;
};

void objlog_object_name(char *buf, const char *vol, uint64_t seq)
{
    snprintf(buf, OBJ_NAME_MAX, "%s/%016" PRIx64, vol, seq);
}

void objlog_super_name(char *buf, const char *vol)
{
    snprintf(buf, OBJ_NAME_MAX, "%s/super", vol);
}

int objlog_parse_seq(const char *leaf, uint64_t *seq)
{
    uint64_t v = 0;

    if (strlen(leaf) != 16) {
        return -EINVAL;
    }
    for (int i = 0; i < 16; i++) {
        int d = g_ascii_xdigit_value(leaf[i]);
        if (d < 0 || g_ascii_isupper(leaf[i])) {
            return -EINVAL;
        }
        v = v << 4 | d;
    }
    if (v == 0) {
        return -EINVAL;
    }
    *seq = v;
    return 0;
}

int objlog_read_super(struct backend *be, const char *vol, struct super *sb,
                      struct lsvd_err *err)
{
    char name[OBJ_NAME_MAX];
    size_t cap = SUPER_FIXED_LEN + 8 * SUPER_MAX_SNAPS;
    g_autofree uint8_t *buf = g_malloc(cap);
    ssize_t n;
    int ret;

    objlog_super_name(name, vol);
    n = be->ops->get_range(be->be, name, 0, buf, cap);
    if (n == -ENOENT) {
        return lsvd_fail(err, -ENOENT, "volume '%s' does not exist", vol);
    }
    if (n < 0) {
        return lsvd_fail(err, n, "cannot read %s: %s", name,
                         g_strerror(-n));
    }
    ret = super_parse(buf, n, sb);
    if (ret < 0) {
        return lsvd_fail(err, -EIO, "%s: corrupted superblock (%s)", name,
                         ret == -EIO ? "CRC mismatch" : g_strerror(-ret));
    }
    return 0;
}

int objlog_write_super(struct backend *be, const char *vol,
                       const struct super *sb)
{
    char name[OBJ_NAME_MAX];
    struct iovec iov;
    size_t len;
    g_autofree uint8_t *buf = super_encode(sb, &len);

    objlog_super_name(name, vol);
    iov = (struct iovec){ buf, len };
    return be->ops->put(be->be, name, &iov, 1);
}

static void objinfo_free(gpointer p)
{
    struct objinfo *o = p;

    if (o) {
        g_free(o->chunks);
        g_free(o->soff);
        g_free(o);
    }
}

/* Record object @h in the object map and the object table. */
static void add_object(struct objlog *ol, struct obj_header *h)
{
    struct objinfo *o = g_new0(struct objinfo, 1);

    o->hdr_len = h->hdr_len;
    o->n_chunks = h->n_chunks;
    o->chunks = h->chunks;
    h->chunks = NULL;
    o->soff = g_new(uint64_t, o->n_chunks + 1);
    o->soff[0] = 0;
    for (uint32_t i = 0; i < o->n_chunks; i++) {
        o->soff[i + 1] = o->soff[i] + o->chunks[i].stored_len;
    }
    for (uint32_t i = 0; i < h->n_extents; i++) {
        struct obj_extent *e = &h->extents[i];
        uint64_t loc = e->flags & OBJ_EXT_ZERO ? LOC_ZERO :
                       h->seq << 32 | e->off / LSVD_SECTOR_SIZE;
        extmap_update(ol->omap, e->lba, e->sectors, loc);
    }
    if (ol->objs->len <= h->seq) {
        g_ptr_array_set_size(ol->objs, h->seq + 1);
    }
    g_ptr_array_index(ol->objs, h->seq) = o;
    ol->next_seq = h->seq + 1;

    g_mutex_lock(&ol->stats_lock);
    ol->stats.objects++;
    ol->stats.stored_bytes += h->hdr_len + h->data_len;
    ol->stats.last_seq = h->seq;
    g_mutex_unlock(&ol->stats_lock);
}

/* Read and check the header of object @seq. */
static int load_header(struct objlog *ol, uint64_t seq, struct obj_header *h,
                       struct lsvd_err *err)
{
    char name[OBJ_NAME_MAX];
    size_t len = 4096;
    g_autofree uint8_t *buf = NULL;
    ssize_t n;
    int ret;

    objlog_object_name(name, ol->vol, seq);
    for (;;) {
        buf = g_realloc(buf, len);
        n = ol->be->ops->get_range(ol->be->be, name, 0, buf, len);
        if (n < 0) {
            return lsvd_fail(err, n, "cannot read object %s: %s", name,
                             g_strerror(-n));
        }
        ret = obj_header_parse(buf, n, h);
        if (ret == -EAGAIN && (size_t)n == len && h->hdr_len > len) {
            len = h->hdr_len;
            continue;
        }
        break;
    }
    if (ret == 0 && (memcmp(h->uuid, ol->uuid, LSVD_UUID_LEN) != 0 ||
                     h->seq != seq)) {
        ret = -EINVAL;
    }
    if (ret < 0) {
        obj_header_free(h);
        lsvd_log(LSVD_LOG_ERROR, "object %s: bad header (%s)", name,
                 ret == -EIO ? "CRC mismatch" : g_strerror(-ret));
        return lsvd_fail(err, -EIO, "object %s: bad header (%s)", name,
                         ret == -EIO ? "CRC mismatch" : g_strerror(-ret));
    }
    return 0;
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

int objlog_open(struct backend *be, const char *vol, const struct super *sb,
                uint64_t batch_size, bool rdonly, struct objlog **out,
                uint64_t *max_jseq, struct lsvd_err *err)
{
    struct objlog *ol = g_new0(struct objlog, 1);
    g_autofree char *prefix = g_strdup_printf("%s/", vol);
    g_autoptr(GPtrArray) names = NULL;
    g_autoptr(GArray) seqs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t jseq = 0;
    guint prefix_len;
    int ret;

    ol->be = be;
    ol->vol = g_strdup(vol);
    memcpy(ol->uuid, sb->uuid, LSVD_UUID_LEN);
    ol->vol_size = sb->size;
    ol->batch_size = batch_size;
    ol->rdonly = rdonly;
    ol->omap = extmap_new();
    ol->bmap = extmap_new();
    ol->objs = g_ptr_array_new_with_free_func(objinfo_free);
    ol->next_seq = 1;
    ol->chunkbuf = g_malloc(OBJ_CHUNK_SIZE);
    g_mutex_init(&ol->stats_lock);

    ret = be->ops->list(be->be, prefix, &names);
    if (ret < 0) {
        lsvd_fail(err, ret, "cannot list objects of '%s': %s", vol,
                  g_strerror(-ret));
        goto fail;
    }
    for (guint i = 0; i < names->len; i++) {
        const char *leaf = (char *)g_ptr_array_index(names, i) +
                           strlen(prefix);
        uint64_t seq;

        if (!strcmp(leaf, "super")) {
            continue;
        }
        if (objlog_parse_seq(leaf, &seq) < 0 || seq > LOC_SEQ_MAX) {
            lsvd_log(LSVD_LOG_WARNING, "volume '%s': ignoring object '%s' "
                     "with an unexpected name", vol, leaf);
            continue;
        }
        g_array_append_val(seqs, seq);
    }
    g_array_sort(seqs, cmp_u64);

    /* the consecutive prefix 1..N */
    for (prefix_len = 0; prefix_len < seqs->len; prefix_len++) {
        if (g_array_index(seqs, uint64_t, prefix_len) != prefix_len + 1) {
            break;
        }
    }
    for (guint i = prefix_len; i < seqs->len && !rdonly; i++) {
        char name[OBJ_NAME_MAX];

        objlog_object_name(name, vol, g_array_index(seqs, uint64_t, i));
        lsvd_log(LSVD_LOG_INFO, "deleting stranded object %s", name);
        ret = be->ops->del(be->be, name);
        if (ret < 0 && ret != -ENOENT) {
            lsvd_fail(err, ret, "cannot delete stranded object %s: %s",
                      name, g_strerror(-ret));
            goto fail;
        }
    }
    for (guint i = 0; i < prefix_len; i++) {
        struct obj_header h;

        ret = load_header(ol, i + 1, &h, err);
        if (ret < 0) {
            goto fail;
        }
        jseq = MAX(jseq, h.jseq);
        add_object(ol, &h);
        obj_header_free(&h);
    }
    *max_jseq = jseq;
    *out = ol;
    return 0;

fail:
    objlog_close(ol);
    return ret;
}

void objlog_close(struct objlog *ol)
{
    if (!ol) {
        return;
    }
    extmap_free(ol->omap);
    extmap_free(ol->bmap);
    g_ptr_array_unref(ol->objs);
    g_free(ol->bbuf);
    g_free(ol->getbuf);
    g_free(ol->chunkbuf);
    g_mutex_clear(&ol->stats_lock);
    g_free(ol->vol);
    g_free(ol);
}

int objlog_batch_add(struct objlog *ol, uint64_t lba, uint64_t sectors,
                     const struct iovec *iov, int iovcnt, uint64_t jseq)
{
    size_t len = sectors * LSVD_SECTOR_SIZE;

    if (iov) {
        if (ol->blen + len > ol->bcap) {
            size_t cap = MAX(ol->bcap * 2, ol->blen + len);
            cap = MAX(cap, ol->batch_size + (1 << 20));
            uint8_t *p = g_try_realloc(ol->bbuf, cap);
            if (!p) {
                return -ENOMEM;
            }
            ol->bbuf = p;
            ol->bcap = cap;
        }
        size_t pos = ol->blen;
        for (int i = 0; i < iovcnt && pos < ol->blen + len; i++) {
            size_t n = MIN(iov[i].iov_len, ol->blen + len - pos);
            memcpy(ol->bbuf + pos, iov[i].iov_base, n);
            pos += n;
        }
        extmap_update(ol->bmap, lba, sectors, ol->blen / LSVD_SECTOR_SIZE);
        ol->blen += len;
    } else {
        extmap_update(ol->bmap, lba, sectors, LOC_ZERO);
    }
    ol->bjseq = jseq;
    return 0;
}

bool objlog_batch_full(const struct objlog *ol)
{
    return ol->blen >= ol->batch_size ||
           extmap_count(ol->bmap) >= MAX_BATCH_EXTENTS;
}

bool objlog_batch_empty(const struct objlog *ol)
{
    return extmap_count(ol->bmap) == 0;
}

struct seal_ctx {
    struct objlog *ol;
    GArray *extents;
    uint8_t *raw;
    uint64_t raw_len;
};

static int seal_extent(void *arg, uint64_t lba, uint64_t len,
                       bool mapped G_GNUC_UNUSED, uint64_t loc)
{
    struct seal_ctx *c = arg;
    struct obj_extent e = { .lba = lba, .sectors = len };

    if (loc & LOC_ZERO) {
        e.flags = OBJ_EXT_ZERO;
    } else {
        e.off = c->raw_len;
        memcpy(c->raw + c->raw_len,
               c->ol->bbuf + loc * LSVD_SECTOR_SIZE, len * LSVD_SECTOR_SIZE);
        c->raw_len += len * LSVD_SECTOR_SIZE;
    }
    g_array_append_val(c->extents, e);
    return 0;
}

int objlog_seal(struct objlog *ol)
{
    struct seal_ctx c = { .ol = ol };
    struct obj_header h = { 0 };
    g_autofree uint8_t *stored = NULL, *hdr = NULL;
    struct obj_chunk *chunks;
    char name[OBJ_NAME_MAX];
    struct iovec iov[2];
    uint64_t n_chunks, spos = 0;
    int ret;

    if (objlog_batch_empty(ol)) {
        return 0;
    }
    if (ol->rdonly) {
        return -EROFS;
    }
    if (ol->next_seq > LOC_SEQ_MAX) {
        return -EFBIG;
    }

    /* gather the newest data of every LBA in LBA order */
    c.extents = g_array_new(FALSE, FALSE, sizeof(struct obj_extent));
    c.raw = g_try_malloc(MAX(ol->blen, 1));
    if (!c.raw) {
        g_array_free(c.extents, TRUE);
        return -ENOMEM;
    }
    extmap_foreach(ol->bmap, seal_extent, &c);

    /* compress in independent chunks; keep a chunk raw if LZ4 loses */
    n_chunks = (c.raw_len + OBJ_CHUNK_SIZE - 1) / OBJ_CHUNK_SIZE;
    chunks = g_new0(struct obj_chunk, n_chunks + 1);
    h.chunks = chunks;          /* freed at out:, unless add_object takes it */
    stored = g_try_malloc(n_chunks * LZ4_compressBound(OBJ_CHUNK_SIZE) + 1);
    if (!stored) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < n_chunks; i++) {
        uint32_t raw_len = MIN(OBJ_CHUNK_SIZE, c.raw_len - i * OBJ_CHUNK_SIZE);
        const uint8_t *src = c.raw + i * OBJ_CHUNK_SIZE;
        int n = LZ4_compress_default((const char *)src,
                                     (char *)stored + spos, raw_len,
                                     LZ4_compressBound(OBJ_CHUNK_SIZE));

        chunks[i].raw_len = raw_len;
        if (n > 0 && (uint32_t)n < raw_len) {
            chunks[i].flags = OBJ_CHUNK_LZ4;
            chunks[i].stored_len = n;
        } else {
            memcpy(stored + spos, src, raw_len);
            chunks[i].stored_len = raw_len;
        }
        chunks[i].crc = lsvd_crc32c(0, stored + spos, chunks[i].stored_len);
        spos += chunks[i].stored_len;
    }

    h.type = OBJ_TYPE_DATA;
    memcpy(h.uuid, ol->uuid, LSVD_UUID_LEN);
    h.seq = ol->next_seq;
    h.jseq = ol->bjseq;
    h.vol_size = ol->vol_size;
    h.data_len = spos;
    h.raw_len = c.raw_len;
    h.chunk_size = OBJ_CHUNK_SIZE;
    h.n_extents = c.extents->len;
    h.extents = (struct obj_extent *)c.extents->data;
    h.n_chunks = n_chunks;
    hdr = obj_header_encode(&h);

    objlog_object_name(name, ol->vol, h.seq);
    iov[0] = (struct iovec){ hdr, h.hdr_len };
    iov[1] = (struct iovec){ stored, spos };
    ret = ol->be->ops->put(ol->be->be, name, iov, 2);
    if (ret < 0) {
        lsvd_log(LSVD_LOG_ERROR, "PUT %s failed: %s", name, g_strerror(-ret));
        goto out;
    }

    add_object(ol, &h);
    extmap_clear(ol->bmap);
    ol->blen = 0;
    ret = 0;
out:
    g_free(h.chunks);
    g_array_free(c.extents, TRUE);
    g_free(c.raw);
    return ret;
}

/* Read @len raw bytes at raw offset @off of object @seq into @dst. */
static int read_object(struct objlog *ol, uint64_t seq, uint64_t off,
                       size_t len, uint8_t *dst)
{
    struct objinfo *o = seq < ol->objs->len ?
                        g_ptr_array_index(ol->objs, seq) : NULL;
    char name[OBJ_NAME_MAX];
    uint64_t c0, c1, start, get_len;
    ssize_t n;

    objlog_object_name(name, ol->vol, seq);
    c0 = off / OBJ_CHUNK_SIZE;
    c1 = (off + len - 1) / OBJ_CHUNK_SIZE;
    if (!o || c1 >= o->n_chunks) {
        lsvd_log(LSVD_LOG_ERROR, "object %s: map points past its data",
                 name);
        return -EIO;
    }
    start = o->soff[c0];
    get_len = o->soff[c1 + 1] - start;
    if (get_len > ol->getcap) {
        uint8_t *p = g_try_realloc(ol->getbuf, get_len);
        if (!p) {
            return -ENOMEM;
        }
        ol->getbuf = p;
        ol->getcap = get_len;
    }
    n = ol->be->ops->get_range(ol->be->be, name, o->hdr_len + start,
                               ol->getbuf, get_len);
    if (n < 0 || (uint64_t)n != get_len) {
        lsvd_log(LSVD_LOG_ERROR, "object %s: read of %" PRIu64 " bytes at %"
                 PRIu64 " failed: %s", name, get_len, o->hdr_len + start,
                 n < 0 ? g_strerror(-n) : "short object");
        return -EIO;
    }
    for (uint64_t i = c0; i <= c1; i++) {
        struct obj_chunk *ch = &o->chunks[i];
        const uint8_t *src = ol->getbuf + (o->soff[i] - start);
        uint64_t cstart = i * OBJ_CHUNK_SIZE;
        uint64_t from = MAX(off, cstart);
        uint64_t to = MIN(off + len, cstart + ch->raw_len);

        if (lsvd_crc32c(0, src, ch->stored_len) != ch->crc) {
            lsvd_log(LSVD_LOG_ERROR, "object %s: chunk %" PRIu64 " (bytes %"
                     PRIu64 "+%u): CRC mismatch", name, i,
                     o->hdr_len + o->soff[i], ch->stored_len);
            return -EIO;
        }
        if (ch->flags & OBJ_CHUNK_LZ4) {
            int r = LZ4_decompress_safe((const char *)src,
                                        (char *)ol->chunkbuf,
                                        ch->stored_len, OBJ_CHUNK_SIZE);
            if (r < 0 || (uint32_t)r != ch->raw_len) {
                lsvd_log(LSVD_LOG_ERROR, "object %s: chunk %" PRIu64
                         ": LZ4 data does not decode", name, i);
                return -EIO;
            }
            src = ol->chunkbuf;
        }
        if (to > from) {
            memcpy(dst + (from - off), src + (from - cstart), to - from);
        }
    }
    return 0;
}

struct read_ctx {
    struct objlog *ol;
    uint64_t lba;
    uint8_t *buf;
};

static int read_piece(void *arg, uint64_t lba, uint64_t len, bool mapped,
                      uint64_t loc)
{
    struct read_ctx *c = arg;
    uint8_t *dst = c->buf + (lba - c->lba) * LSVD_SECTOR_SIZE;

    if (!mapped || (loc & LOC_ZERO)) {
        memset(dst, 0, len * LSVD_SECTOR_SIZE);
        return 0;
    }
    return read_object(c->ol, loc >> 32,
                       (loc & 0xffffffffULL) * LSVD_SECTOR_SIZE,
                       len * LSVD_SECTOR_SIZE, dst);
}

int objlog_read(struct objlog *ol, uint64_t lba, uint64_t sectors,
                uint8_t *buf)
{
    struct read_ctx c = { ol, lba, buf };

    return extmap_lookup(ol->omap, lba, sectors, read_piece, &c);
}

void objlog_stats(struct objlog *ol, struct objlog_stats *st)
{
    g_mutex_lock(&ol->stats_lock);
    *st = ol->stats;
    g_mutex_unlock(&ol->stats_lock);
}
