/*
 * objlog.c - batches, objects, the object map.  See objlog.h.
 */
#include "objlog.h"
#include "rcache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <glib.h>
#include <lz4.h>

#include "extmap.h"

#define PUT_RETRY_MIN_MS 100
#define PUT_RETRY_MAX_MS 5000
#define CLOSE_RETRY_US (10 * G_USEC_PER_SEC)  /* PUT retries once closing */
#define CKPT_INTERVAL_US (300 * G_USEC_PER_SEC)   /* or every N objects */

#define LOC_SEQ_MAX 0x7fffffffULL
#define MAX_BATCH_EXTENTS 65536     /* seal early when this fragmented */
#define MAX_SEALED 1024             /* sealed batches waiting for PUTs */
#define READBACK_GAP (64 << 10)     /* read over gaps this small */

/* What a read needs to know about an object: its chunk table.
 * Immutable once made; freed with the objlog. */
struct objinfo {
    uint32_t hdr_len;
    uint64_t data_len;
    int loaded;                     /* chunk table present (atomic) */
    uint32_t n_chunks;
    struct obj_chunk *chunks;
    uint64_t *soff;                 /* n_chunks + 1 stored offsets */
};

/*
 * A batch: FILLING (the journal thread adds to ol->cur) -> SEALED (queued
 * for a PUT worker, sequence number assigned) -> DONE (PUT finished, maybe
 * failed) -> APPLIED (in the object map, in sequence order; freed).
 */
/* A WRITE record of the journal that a batch takes data from. */
struct brec {
    uint64_t off;                   /* its header, in the journal */
    uint64_t len;                   /* header and data */
    uint64_t seq;
};

/* Journal bytes [off, off+len) read back, at buf + pos. */
struct span {
    uint64_t off, len;
    size_t pos;
};

/* A batch's journal data, read back or copied as it was journaled. */
struct readback {
    uint8_t *buf;
    GArray *spans;                  /* struct span, by offset */
};

struct batch {
    bool ckpt;                      /* a map checkpoint, not data */
    uint64_t seq;
    struct extmap *bmap;            /* lba -> journal sector, or LOC_ZERO */
    GArray *recs;                   /* struct brec, in journal order */
    size_t blen;                    /* data bytes added, overwrites too */
    int64_t started;                /* monotonic time of the first add */
    uint64_t jseq;                  /* newest journal record in the batch */
    /*
     * A copy of its records' data, made as they were journaled, while
     * memory allows ([log] copy_batches): then the PUT needs no read-back,
     * which competes with the journal's writes for the cache device (and
     * doubled their latency under load).  mem.buf NULL: none (read back
     * at the PUT); mem_len: bytes used.
     */
    struct readback mem;
    size_t mem_len;
    bool mem_none;                  /* a record came without its data */
    bool done;                      /* DONE: ret and h are set */
    int ret;
    struct obj_header h;            /* the object's header, for the map */
};

struct objlog {
    struct backend *be;
    char *vol;
    uint8_t uuid[LSVD_UUID_LEN];
    uint64_t vol_size;
    uint64_t batch_size;
    unsigned put_depth;
    bool rdonly;

    GRWLock map_lock;               /* protects omap, objs */
    struct extmap *omap;            /* lba -> seq << 32 | sector in object */
    GPtrArray *objs;                /* index seq -> struct objinfo * */

    struct batch *cur;              /* FILLING; journal thread only */
    uint64_t next_seq;              /* journal thread only */
    unsigned ckpt_every;            /* objects between checkpoints */
    unsigned since_ckpt;            /* journal thread only */
    int64_t ckpt_time;              /* journal thread: last one queued */
    uint64_t last_ckpt;             /* seq; under `lock` */
    GMutex hdr_lock;                /* serialises chunk table loads */

    GMutex lock;                    /* protects everything below */
    GCond cond;                     /* a batch was applied or failed */
    unsigned mem_batches;           /* batches holding a struct batch.mem */
    unsigned mem_max;               /* at most ([log] copy_batches) */
    size_t mem_size;                /* bytes in each */
    GPtrArray *mem_pool;            /* free ones */
    GQueue sealed;                  /* SEALED and DONE batches, seq order */
    uint64_t durable_jseq;
    int error;                      /* sticky: a PUT failed for good */
    bool closing;
    int64_t closing_since;          /* monotonic, when closing was set */
    struct objlog_stats stats;
    struct workers *pool;           /* PUT workers */
    struct rcache *rc;              /* read cache, or NULL; not ours */
    uint64_t prefetch;              /* bytes to read ahead on a miss */
    objlog_source_fn *src;          /* where batch data is read back */
    void *src_arg;
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

/* Take @h's chunk table, and index where each chunk is stored. */
static void objinfo_take_chunks(struct objinfo *o, struct obj_header *h)
{
    o->n_chunks = h->n_chunks;
    o->chunks = h->chunks;
    h->chunks = NULL;
    o->soff = g_new(uint64_t, o->n_chunks + 1);
    o->soff[0] = 0;
    for (uint32_t i = 0; i < o->n_chunks; i++) {
        o->soff[i + 1] = o->soff[i] + o->chunks[i].stored_len;
    }
}

/* Record object @h in the object map and the object table (takes the map
 * lock), and count it (the caller holds ol->lock or is alone). */
static void add_object(struct objlog *ol, struct obj_header *h)
{
    struct objinfo *o = g_new0(struct objinfo, 1);

    o->hdr_len = h->hdr_len;
    o->data_len = h->data_len;
    objinfo_take_chunks(o, h);
    o->loaded = 1;

    g_rw_lock_writer_lock(&ol->map_lock);
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
    g_rw_lock_writer_unlock(&ol->map_lock);

    ol->stats.objects++;
    ol->stats.stored_bytes += h->hdr_len + h->data_len;
    ol->stats.last_seq = h->seq;
}

/* Read and check the header of data object @seq; 1 (and nothing to
 * free) if it is a checkpoint instead. */
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
        if (obj_type(buf, n) == OBJ_TYPE_CHECKPOINT) {
            memset(h, 0, sizeof(*h));
            return 1;       /* no data: an older checkpoint's successor */
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

/* Load checkpoint @c: the object map and the object table as they were
 * when every object before it was applied. */
static void load_checkpoint(struct objlog *ol, const struct ckpt *c)
{
    for (uint64_t i = 0; i < c->n_extents; i++) {
        const struct ckpt_extent *e = &c->extents[i];
        uint64_t loc = e->flags & OBJ_EXT_ZERO ? LOC_ZERO :
                       e->seq << 32 | e->off;
        extmap_update(ol->omap, e->lba, e->sectors, loc);
    }
    for (uint64_t i = 0; i < c->n_objects; i++) {
        const struct ckpt_object *co = &c->objects[i];
        struct objinfo *o = g_new0(struct objinfo, 1);

        o->hdr_len = co->hdr_len;      /* chunk table loaded when read */
        o->data_len = co->data_len;
        if (ol->objs->len <= co->seq) {
            g_ptr_array_set_size(ol->objs, co->seq + 1);
        }
        g_ptr_array_index(ol->objs, co->seq) = o;
        ol->stats.objects++;
        ol->stats.stored_bytes += co->hdr_len + co->data_len;
    }
    ol->stats.last_seq = c->seq;
    ol->last_ckpt = c->seq;
}

/*
 * Find the newest checkpoint, searching the objects from the newest down,
 * and load it.  A checkpoint is written only once every object before it
 * is applied, so a gap below it is never a lost PUT.  *first is the index
 * in @seqs of the first object after it (0 and last_ckpt 0 if there is
 * none); *jseq its newest journal record.
 */
static int find_checkpoint(struct objlog *ol, GArray *seqs, guint *first,
                           uint64_t *jseq, struct lsvd_err *err)
{
    const size_t probe = 4096;
    g_autofree uint8_t *buf = g_malloc(probe);

    *first = 0;
    *jseq = 0;
    for (guint i = seqs->len; i-- > 0;) {
        uint64_t seq = g_array_index(seqs, uint64_t, i);
        char name[OBJ_NAME_MAX];
        g_autofree uint8_t *all = NULL;
        struct ckpt c;
        size_t need = 0;
        ssize_t n;
        int ret;

        objlog_object_name(name, ol->vol, seq);
        n = ol->be->ops->get_range(ol->be->be, name, 0, buf, probe);
        if (n < 0) {
            return lsvd_fail(err, n, "cannot read object %s: %s", name,
                             g_strerror(-n));
        }
        if (obj_type(buf, n) != OBJ_TYPE_CHECKPOINT) {
            continue;
        }
        ret = ckpt_parse(buf, n, &c, &need);
        if (ret == -EAGAIN) {
            all = g_try_malloc(need);
            if (!all) {
                return lsvd_fail(err, -ENOMEM, "checkpoint %s: out of memory",
                                 name);
            }
            n = ol->be->ops->get_range(ol->be->be, name, 0, all, need);
            ret = n < 0 ? (int)n : ckpt_parse(all, n, &c, &need);
        }
        if (ret == 0 && (memcmp(c.uuid, ol->uuid, LSVD_UUID_LEN) != 0 ||
                         c.seq != seq)) {
            ckpt_free(&c);
            ret = -EINVAL;
        }
        if (ret < 0) {
            /* an older checkpoint and the objects after it still hold
             * everything */
            lsvd_log(LSVD_LOG_WARNING, "checkpoint %s is unusable (%s); "
                     "trying an older one", name,
                     ret == -EIO ? "CRC mismatch" : g_strerror(-ret));
            continue;
        }
        load_checkpoint(ol, &c);
        *jseq = c.jseq;
        *first = i + 1;
        ckpt_free(&c);
        return 0;
    }
    return 0;
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}


static struct batch *batch_new(void)
{
    struct batch *b = g_new0(struct batch, 1);

    b->bmap = extmap_new();
    b->recs = g_array_new(FALSE, FALSE, sizeof(struct brec));
    return b;
}

static void readback_free(struct readback *rb)
{
    free(rb->buf);
    if (rb->spans) {
        g_array_free(rb->spans, TRUE);
    }
    memset(rb, 0, sizeof(*rb));
}

/*
 * Buffers for batches' copies of their data, ol->mem_size bytes each: at
 * most ol->mem_max in use, and those freed are kept for the next batches
 * (a fresh one costs a page fault per page written).  NULL: none now.
 */
static uint8_t *mem_get(struct objlog *ol)
{
    void *p = NULL;
    bool room;

    g_mutex_lock(&ol->lock);
    room = ol->mem_batches < ol->mem_max;
    if (room) {
        ol->mem_batches++;
        p = ol->mem_pool->len ?
            g_ptr_array_steal_index_fast(ol->mem_pool,
                                         ol->mem_pool->len - 1) : NULL;
    }
    g_mutex_unlock(&ol->lock);
    if (room && !p && posix_memalign(&p, JNL_BLOCK, ol->mem_size) != 0) {
        p = NULL;
        g_mutex_lock(&ol->lock);
        ol->mem_batches--;
        g_mutex_unlock(&ol->lock);
    }
    return p;
}

static void mem_put(struct objlog *ol, uint8_t *p)
{
    g_mutex_lock(&ol->lock);
    ol->mem_batches--;
    g_ptr_array_add(ol->mem_pool, p);
    g_mutex_unlock(&ol->lock);
}

/* Drop batch @b's in-memory copy of its data, if it has one. */
static void batch_mem_drop(struct objlog *ol, struct batch *b)
{
    if (b->mem.buf) {
        mem_put(ol, b->mem.buf);
        b->mem.buf = NULL;
        readback_free(&b->mem);
    }
}

static void batch_free(struct objlog *ol, struct batch *b)
{
    if (b) {
        batch_mem_drop(ol, b);
        extmap_free(b->bmap);
        g_array_free(b->recs, TRUE);
        obj_header_free(&b->h);
        g_free(b);
    }
}

static void put_worker(void *data, void *user_data);

int objlog_open(struct backend *be, const char *vol, const struct super *sb,
                uint64_t batch_size, unsigned put_depth,
                unsigned ckpt_every, bool rdonly, struct objlog **out,
                uint64_t *max_jseq, struct lsvd_err *err)
{
    struct objlog *ol = g_new0(struct objlog, 1);
    g_autofree char *prefix = g_strdup_printf("%s/", vol);
    g_autoptr(GPtrArray) names = NULL;
    g_autoptr(GArray) seqs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t jseq = 0, expect;
    guint first, run;
    int ret;

    ol->be = be;
    ol->vol = g_strdup(vol);
    memcpy(ol->uuid, sb->uuid, LSVD_UUID_LEN);
    ol->vol_size = sb->size;
    ol->batch_size = batch_size;
    ol->rdonly = rdonly;
    ol->put_depth = MAX(put_depth, 1);
    ol->ckpt_every = MAX(ckpt_every, 1);
    ol->ckpt_time = g_get_monotonic_time();
    g_mutex_init(&ol->hdr_lock);
    ol->omap = extmap_new();
    ol->objs = g_ptr_array_new_with_free_func(objinfo_free);
    ol->next_seq = 1;
    ol->cur = batch_new();
    ol->mem_pool = g_ptr_array_new_with_free_func(free);
    g_rw_lock_init(&ol->map_lock);
    g_mutex_init(&ol->lock);
    g_cond_init(&ol->cond);
    g_queue_init(&ol->sealed);

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

    /* the newest checkpoint, then the consecutive run after it */
    ret = find_checkpoint(ol, seqs, &first, &jseq, err);
    if (ret < 0) {
        goto fail;
    }
    expect = ol->last_ckpt + 1;
    for (run = first; run < seqs->len; run++) {
        if (g_array_index(seqs, uint64_t, run) != expect + (run - first)) {
            break;
        }
    }
    for (guint i = run; i < seqs->len && !rdonly; i++) {
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
    for (guint i = first; i < run; i++) {
        struct obj_header h;

        ret = load_header(ol, g_array_index(seqs, uint64_t, i), &h, err);
        if (ret < 0) {
            goto fail;
        }
        if (ret == 1) {
            continue;
        }
        jseq = MAX(jseq, h.jseq);
        add_object(ol, &h);
        obj_header_free(&h);
    }
    ol->next_seq = expect + (run - first);
    ol->durable_jseq = jseq;
    if (!rdonly) {
        ol->pool = workers_start("lsvd-put", ol->put_depth, put_worker, ol);
        if (!ol->pool) {
            ret = lsvd_fail(err, -EAGAIN, "cannot start PUT threads");
            goto fail;
        }
    }
    *max_jseq = jseq;
    *out = ol;
    return 0;

fail:
    objlog_close(ol);
    return ret;
}

void objlog_closing(struct objlog *ol)
{
    g_mutex_lock(&ol->lock);
    if (!ol->closing) {
        ol->closing = true;
        ol->closing_since = g_get_monotonic_time();
    }
    g_mutex_unlock(&ol->lock);
}

void objlog_close(struct objlog *ol)
{
    if (!ol) {
        return;
    }
    if (ol->pool) {
        objlog_closing(ol);
        workers_stop(ol->pool);         /* waits for PUTs */
    }
    while (!g_queue_is_empty(&ol->sealed)) {
        batch_free(ol, g_queue_pop_head(&ol->sealed));
    }
    batch_free(ol, ol->cur);
    g_ptr_array_unref(ol->mem_pool);
    extmap_free(ol->omap);
    g_ptr_array_unref(ol->objs);
    g_rw_lock_clear(&ol->map_lock);
    g_mutex_clear(&ol->hdr_lock);
    g_mutex_clear(&ol->lock);
    g_cond_clear(&ol->cond);
    g_free(ol->vol);
    g_free(ol);
}

/* ---- the batch being filled: journal thread ------------------------------ */

void objlog_set_source(struct objlog *ol, objlog_source_fn *fn, void *arg,
                       unsigned copies)
{
    ol->src = fn;
    ol->src_arg = arg;
    ol->mem_max = copies;
    ol->mem_size = 2 * ol->batch_size;
}

int objlog_batch_add(struct objlog *ol, uint64_t lba, uint64_t sectors,
                     bool zero, uint64_t joff, uint64_t jseq)
{
    struct batch *b = ol->cur;

    if (!b->started) {
        b->started = g_get_monotonic_time();
    }
    if (zero) {
        extmap_update(b->bmap, lba, sectors, LOC_ZERO);
    } else {
        extmap_update(b->bmap, lba, sectors, joff / LSVD_SECTOR_SIZE);
        b->blen += sectors * LSVD_SECTOR_SIZE;
    }
    b->jseq = jseq;
    return 0;
}

void objlog_batch_data(struct objlog *ol, uint64_t joff,
                       const struct iovec *iov, int iovcnt, size_t skip,
                       size_t len)
{
    struct batch *b = ol->cur;
    struct span sp = { joff, len, b->mem_len };

    /* the batch's first data decides whether it gets a copy; data that
     * comes without its bytes, or does not fit, drops the copy for good */
    if (b->mem_none) {
        return;
    }
    if (!iov || b->mem_len + len > ol->mem_size) {
        batch_mem_drop(ol, b);
        b->mem_none = true;
        return;
    }
    if (!b->mem.buf) {              /* the batch's first data */
        b->mem.buf = mem_get(ol);
        if (!b->mem.buf) {
            b->mem_none = true;
            return;
        }
        b->mem.spans = g_array_new(FALSE, FALSE, sizeof(struct span));
    }
    iov_to_buf(iov, iovcnt, skip, b->mem.buf + b->mem_len, len);
    g_array_append_val(b->mem.spans, sp);
    b->mem_len += len;
}

void objlog_batch_record(struct objlog *ol, uint64_t off, uint64_t len,
                         uint64_t seq)
{
    struct brec r = { off, len, seq };

    g_array_append_val(ol->cur->recs, r);
}

bool objlog_batch_full(const struct objlog *ol, unsigned times)
{
    return ol->cur->blen >= times * ol->batch_size ||
           extmap_count(ol->cur->bmap) >= times * MAX_BATCH_EXTENTS;
}

int64_t objlog_batch_started(const struct objlog *ol)
{
    return objlog_batch_empty(ol) ? 0 : ol->cur->started;
}

bool objlog_batch_empty(const struct objlog *ol)
{
    return extmap_count(ol->cur->bmap) == 0;
}

int objlog_seal(struct objlog *ol, bool wait)
{
    struct batch *b = ol->cur;

    if (objlog_batch_empty(ol)) {
        return 0;
    }
    if (ol->rdonly) {
        return -EROFS;
    }
    if (ol->next_seq > LOC_SEQ_MAX) {
        return -EFBIG;
    }
    g_mutex_lock(&ol->lock);
    /*
     * A sealed batch is small (its data stays in the journal until its
     * PUT), so during an outage writes go on until the journal is full;
     * this bound only keeps the queue finite.
     */
    while (g_queue_get_length(&ol->sealed) >= MAX_SEALED && !ol->error) {
        if (!wait) {
            g_mutex_unlock(&ol->lock);
            return -EAGAIN;
        }
        g_cond_wait(&ol->cond, &ol->lock);
    }
    if (ol->error) {
        int ret = ol->error;
        g_mutex_unlock(&ol->lock);
        return ret;
    }
    b->seq = ol->next_seq++;
    g_queue_push_tail(&ol->sealed, b);
    g_mutex_unlock(&ol->lock);

    ol->cur = batch_new();
    workers_push(ol->pool, b);
    ol->since_ckpt++;
    if ((ol->since_ckpt >= ol->ckpt_every ||
         g_get_monotonic_time() - ol->ckpt_time >= CKPT_INTERVAL_US) &&
        ol->next_seq <= LOC_SEQ_MAX) {
        struct batch *c = batch_new();

        c->ckpt = true;
        ol->since_ckpt = 0;
        ol->ckpt_time = g_get_monotonic_time();
        g_mutex_lock(&ol->lock);
        c->seq = ol->next_seq++;
        g_queue_push_tail(&ol->sealed, c);
        g_mutex_unlock(&ol->lock);
        workers_push(ol->pool, c);
    }
    return 0;
}

uint64_t objlog_durable_jseq(struct objlog *ol)
{
    uint64_t v;

    g_mutex_lock(&ol->lock);
    v = ol->durable_jseq;
    g_mutex_unlock(&ol->lock);
    return v;
}

int objlog_wait_durable(struct objlog *ol, uint64_t old, int64_t deadline)
{
    int ret;

    g_mutex_lock(&ol->lock);
    while (ol->durable_jseq <= old && !ol->error &&
           !g_queue_is_empty(&ol->sealed)) {
        if (!deadline) {
            g_cond_wait(&ol->cond, &ol->lock);
        } else if (!g_cond_wait_until(&ol->cond, &ol->lock, deadline) &&
                   ol->durable_jseq <= old) {
            g_mutex_unlock(&ol->lock);
            return -ETIMEDOUT;
        }
    }
    ret = ol->error;
    g_mutex_unlock(&ol->lock);
    return ret;
}

int objlog_drain(struct objlog *ol)
{
    int ret;

    g_mutex_lock(&ol->lock);
    while (!g_queue_is_empty(&ol->sealed) && !ol->error) {
        g_cond_wait(&ol->cond, &ol->lock);
    }
    ret = ol->error;
    g_mutex_unlock(&ol->lock);
    return ret;
}

/* ---- PUT workers ---------------------------------------------------------- */

static gint cmp_span(gconstpointer a, gconstpointer b)
{
    const struct span *x = a, *y = b;

    return x->off < y->off ? -1 : x->off > y->off;
}

/* Where journal byte @off was read back to. */
static const uint8_t *readback_at(const struct readback *rb, uint64_t off)
{
    guint lo = 0, hi = rb->spans->len;

    /* the last span starting at or before @off */
    while (hi - lo > 1) {
        guint mid = (lo + hi) / 2;
        if (g_array_index(rb->spans, struct span, mid).off <= off) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    const struct span *s = &g_array_index(rb->spans, struct span, lo);
    g_assert(off >= s->off && off < s->off + s->len);
    return rb->buf + s->pos + (off - s->off);
}

/*
 * Read batch @b's journal records back, in as few reads as their layout
 * allows (records are consecutive in the ring but for its wrap; small
 * gaps, the ZERO and FENCE records between them, are read over), and
 * check each record's CRC: an object gets what was journaled, or nothing.
 */
static int read_back(struct objlog *ol, const struct batch *b,
                     struct readback *rb)
{
    size_t total = 0;
    int ret = 0;

    rb->spans = g_array_new(FALSE, FALSE, sizeof(struct span));
    for (guint i = 0; i < b->recs->len; i++) {
        const struct brec *r = &g_array_index(b->recs, struct brec, i);
        struct span *s = rb->spans->len ?
            &g_array_index(rb->spans, struct span, rb->spans->len - 1) : NULL;

        if (s && r->off >= s->off + s->len &&
            r->off - (s->off + s->len) <= READBACK_GAP) {
            uint64_t more = r->off + r->len - (s->off + s->len);
            s->len += more;
            total += more;
        } else {
            struct span n = { r->off, r->len, total };
            g_array_append_val(rb->spans, n);
            total += r->len;
        }
    }
    /* aligned for journal_read_blocks(): the spans are whole blocks */
    if (posix_memalign((void **)&rb->buf, JNL_BLOCK, MAX(total, 1)) != 0) {
        rb->buf = NULL;
        return -ENOMEM;
    }
    for (guint i = 0; i < rb->spans->len && ret == 0; i++) {
        const struct span *s = &g_array_index(rb->spans, struct span, i);
        ret = ol->src(ol->src_arg, s->off, rb->buf + s->pos, s->len);
    }
    if (ret < 0) {
        return ret;
    }
    g_array_sort(rb->spans, cmp_span);
    for (guint i = 0; i < b->recs->len; i++) {
        const struct brec *r = &g_array_index(b->recs, struct brec, i);
        const uint8_t *p = readback_at(rb, r->off);
        struct rec_header h;

        if (rec_header_parse(p, JNL_BLOCK, &h) < 0 || h.seq != r->seq ||
            h.type != REC_TYPE_WRITE || JNL_BLOCK + h.data_len != r->len ||
            !rec_crc_ok(p, &h, p + JNL_BLOCK)) {
            lsvd_log(LSVD_LOG_ERROR, "volume '%s': journal record %" PRIu64
                     " at offset %" PRIu64 " reads back corrupted", ol->vol,
                     r->seq, r->off);
            return -EIO;
        }
    }
    return 0;
}

struct seal_ctx {
    const struct readback *rb;
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
               readback_at(c->rb, loc * LSVD_SECTOR_SIZE),
               len * LSVD_SECTOR_SIZE);
        c->raw_len += len * LSVD_SECTOR_SIZE;
    }
    g_array_append_val(c->extents, e);
    return 0;
}

/*
 * Encode batch @b as an object: the newest data of every LBA in LBA order,
 * read back from the journal, compressed in independent chunks (a chunk
 * stays raw if LZ4 loses).  Fills @h (its tables g_malloc'd) and returns
 * the stored data, or NULL with *@err if the journal could not be read
 * back intact (twice).
 */
static uint8_t *encode_batch(struct objlog *ol, struct batch *b,
                             struct obj_header *h, int *err)
{
    struct readback rb = { 0 };
    struct seal_ctx c = { .rb = &rb };
    uint64_t n_chunks, spos = 0;
    uint8_t *stored;
    int ret = 0;

    if (b->mem.buf) {
        /* copied as it was journaled: the spans only need sorting (the
         * ring may have wrapped) */
        rb = b->mem;
        g_array_sort(rb.spans, cmp_span);
    } else {
        ret = read_back(ol, b, &rb);
        if (ret < 0) {
            readback_free(&rb);
            ret = read_back(ol, b, &rb);
        }
    }
    if (ret < 0) {
        readback_free(&rb);
        *err = ret;
        return NULL;
    }
    c.extents = g_array_new(FALSE, FALSE, sizeof(struct obj_extent));
    c.raw = g_malloc(MAX(b->blen, 1));
    extmap_foreach(b->bmap, seal_extent, &c);
    if (b->mem.buf) {
        batch_mem_drop(ol, b);
    } else {
        readback_free(&rb);
    }

    n_chunks = (c.raw_len + OBJ_CHUNK_SIZE - 1) / OBJ_CHUNK_SIZE;
    h->chunks = g_new0(struct obj_chunk, n_chunks + 1);
    stored = g_malloc(n_chunks * LZ4_compressBound(OBJ_CHUNK_SIZE) + 1);
    for (uint64_t i = 0; i < n_chunks; i++) {
        struct obj_chunk *ch = &h->chunks[i];
        uint32_t raw_len = MIN(OBJ_CHUNK_SIZE, c.raw_len - i * OBJ_CHUNK_SIZE);
        const uint8_t *src = c.raw + i * OBJ_CHUNK_SIZE;
        int n = LZ4_compress_default((const char *)src,
                                     (char *)stored + spos, raw_len,
                                     LZ4_compressBound(OBJ_CHUNK_SIZE));

        ch->raw_len = raw_len;
        if (n > 0 && (uint32_t)n < raw_len) {
            ch->flags = OBJ_CHUNK_LZ4;
            ch->stored_len = n;
        } else {
            memcpy(stored + spos, src, raw_len);
            ch->stored_len = raw_len;
        }
        ch->crc = lsvd_crc32c(0, stored + spos, ch->stored_len);
        spos += ch->stored_len;
    }
    g_free(c.raw);

    h->type = OBJ_TYPE_DATA;
    memcpy(h->uuid, ol->uuid, LSVD_UUID_LEN);
    h->seq = b->seq;
    h->jseq = b->jseq;
    h->vol_size = __atomic_load_n(&ol->vol_size, __ATOMIC_RELAXED);
    h->data_len = spos;
    h->raw_len = c.raw_len;
    h->chunk_size = OBJ_CHUNK_SIZE;
    h->n_extents = c.extents->len;
    h->extents = (struct obj_extent *)g_array_free(c.extents, FALSE);
    h->n_chunks = n_chunks;
    return stored;
}

/*
 * Apply DONE batches to the object map in sequence order (objects complete
 * out of order; an older object applied after a newer one would hide newer
 * data).  Called with ol->lock held; takes the map lock inside it.
 */
static void apply_done(struct objlog *ol)
{
    struct batch *b;

    while ((b = g_queue_peek_head(&ol->sealed)) && b->done) {
        if (b->ret < 0) {
            /* a gap: later objects must not be used either */
            ol->error = b->ret;
            break;
        }
        g_queue_pop_head(&ol->sealed);
        if (b->ckpt) {
            ol->last_ckpt = b->seq;
            ol->stats.last_seq = b->seq;
        } else {
            add_object(ol, &b->h);
            ol->durable_jseq = b->jseq;
        }
        batch_free(ol, b);
    }
    g_cond_broadcast(&ol->cond);
}

struct ckpt_ctx {
    GArray *extents;
};

static int ckpt_extent(void *arg, uint64_t lba, uint64_t len,
                       bool mapped G_GNUC_UNUSED, uint64_t loc)
{
    struct ckpt_ctx *c = arg;
    struct ckpt_extent e = { .lba = lba, .sectors = len };

    if (loc & LOC_ZERO) {
        e.flags = OBJ_EXT_ZERO;
    } else {
        e.seq = loc >> 32;
        e.off = loc & 0xffffffffu;
    }
    /* the map's extents may be longer than a checkpoint entry holds */
    while (len > 0) {
        e.sectors = MIN(len, UINT32_MAX & ~7u);
        g_array_append_val(c->extents, e);
        len -= e.sectors;
        e.lba += e.sectors;
        if (!(e.flags & OBJ_EXT_ZERO)) {
            e.off += e.sectors;
        }
    }
    return 0;
}

/*
 * Encode checkpoint @b once every object before it is applied (it waits
 * for that): the object map and the object table as they are then.
 * Returns NULL if an earlier PUT failed for good.  Sets b->blen to the
 * encoded length.
 */
static uint8_t *encode_checkpoint(struct objlog *ol, struct batch *b)
{
    struct ckpt c = { .seq = b->seq };
    struct ckpt_ctx x;
    GArray *objects;
    uint8_t *buf;
    size_t len;

    g_mutex_lock(&ol->lock);
    while (g_queue_peek_head(&ol->sealed) != b && !ol->error) {
        g_cond_wait(&ol->cond, &ol->lock);
    }
    if (ol->error) {
        g_mutex_unlock(&ol->lock);
        return NULL;
    }
    c.jseq = ol->durable_jseq;
    c.prev = ol->last_ckpt;
    g_mutex_unlock(&ol->lock);

    /* nothing is applied while this batch heads the queue undone */
    x.extents = g_array_new(FALSE, FALSE, sizeof(struct ckpt_extent));
    objects = g_array_new(FALSE, FALSE, sizeof(struct ckpt_object));
    g_rw_lock_reader_lock(&ol->map_lock);
    extmap_foreach(ol->omap, ckpt_extent, &x);
    for (guint i = 0; i < ol->objs->len; i++) {
        struct objinfo *o = g_ptr_array_index(ol->objs, i);
        if (o) {
            struct ckpt_object co = { i, o->hdr_len, o->data_len };
            g_array_append_val(objects, co);
        }
    }
    g_rw_lock_reader_unlock(&ol->map_lock);

    memcpy(c.uuid, ol->uuid, LSVD_UUID_LEN);
    c.vol_size = __atomic_load_n(&ol->vol_size, __ATOMIC_RELAXED);
    c.n_extents = x.extents->len;
    c.extents = (struct ckpt_extent *)x.extents->data;
    c.n_objects = objects->len;
    c.objects = (struct ckpt_object *)objects->data;
    buf = ckpt_encode(&c, &len);
    b->blen = len;
    g_array_free(x.extents, TRUE);
    g_array_free(objects, TRUE);
    return buf;
}

static void put_worker(void *data, void *user_data)
{
    struct batch *b = data;
    struct objlog *ol = user_data;
    struct obj_header h = { 0 };
    g_autofree uint8_t *stored = NULL, *hdr = NULL;
    char name[OBJ_NAME_MAX];
    unsigned delay = PUT_RETRY_MIN_MS;
    int ret = -EIO;

    if (b->ckpt) {
        hdr = encode_checkpoint(ol, b);
        h.hdr_len = hdr ? b->blen : 0;
        if (!hdr) {
            goto done;          /* an earlier PUT failed for good */
        }
    } else {
        stored = encode_batch(ol, b, &h, &ret);
        if (!stored) {
            /* a gap: the next open replays what the journal still has */
            lsvd_log(LSVD_LOG_ERROR, "volume '%s': object %" PRIu64 ": "
                     "cannot read its data back from the journal: %s; "
                     "writing stops", ol->vol, b->seq, g_strerror(-ret));
            goto done;
        }
        hdr = obj_header_encode(&h);
    }
    objlog_object_name(name, ol->vol, b->seq);
    for (;;) {
        struct iovec iov[2] = {
            { hdr, h.hdr_len },
            { stored, b->ckpt ? 0 : h.data_len },
        };
        bool give_up;

        ret = ol->be->ops->put(ol->be->be, name, iov, 2);
        if (ret == 0) {
            break;
        }
        /* a close does not wait out an outage: the journal keeps the
         * data, and the next open replays it */
        g_mutex_lock(&ol->lock);
        give_up = ol->closing &&
                  (ol->error || g_get_monotonic_time() - ol->closing_since >=
                                CLOSE_RETRY_US);
        g_mutex_unlock(&ol->lock);
        if (give_up) {
            lsvd_log(LSVD_LOG_ERROR, "PUT %s failed: %s; giving up at close "
                     "(the data stays in the journal)", name,
                     g_strerror(-ret));
            break;
        }
        lsvd_log(LSVD_LOG_WARNING, "PUT %s failed: %s; retrying in %u ms",
                 name, g_strerror(-ret), delay);
        g_usleep(delay * 1000 / 2 + g_random_int_range(0, delay * 1000 / 2));
        delay = MIN(delay * 2, PUT_RETRY_MAX_MS);
    }

done:
    g_mutex_lock(&ol->lock);
    b->done = true;
    b->ret = hdr ? ret : -EIO;
    b->h = h;                       /* the batch owns the tables now */
    apply_done(ol);
    g_mutex_unlock(&ol->lock);
}

/* ---- reads: any thread -------------------------------------------------- */

/* An object known from a checkpoint gets its chunk table on first use. */
static int ensure_chunks(struct objlog *ol, uint64_t seq, struct objinfo *o)
{
    struct obj_header h;
    int ret = 0;

    if (g_atomic_int_get(&o->loaded)) {
        return 0;
    }
    g_mutex_lock(&ol->hdr_lock);
    if (!o->loaded) {
        ret = load_header(ol, seq, &h, NULL);
        if (ret == 0 && h.hdr_len != o->hdr_len) {
            lsvd_log(LSVD_LOG_ERROR, "object %016" PRIx64 " of '%s': header "
                     "length differs from the checkpoint's", seq, ol->vol);
            ret = -EIO;
        } else if (ret == 0) {
            objinfo_take_chunks(o, &h);
            g_atomic_int_set(&o->loaded, 1);
        }
        if (ret == 0) {
            obj_header_free(&h);
        }
        ret = ret == 1 ? -EIO : ret < 0 ? -EIO : 0;
    }
    g_mutex_unlock(&ol->hdr_lock);
    return ret;
}

/*
 * Fetch chunks [c0, c1] of object @seq with one ranged GET, check each
 * chunk's CRC and decode it: chunk i lands at @out + (i - c0) * chunk size.
 * The chunk table must be loaded.
 */
static int fetch_chunks(struct objlog *ol, uint64_t seq,
                        const struct objinfo *o, uint64_t c0, uint64_t c1,
                        uint8_t *out)
{
    char name[OBJ_NAME_MAX];
    uint64_t start = o->soff[c0], get_len = o->soff[c1 + 1] - start;
    g_autofree uint8_t *getbuf = g_try_malloc(MAX(get_len, 1));
    ssize_t n;

    objlog_object_name(name, ol->vol, seq);
    if (!getbuf) {
        return -ENOMEM;
    }
    n = ol->be->ops->get_range(ol->be->be, name, o->hdr_len + start,
                               getbuf, get_len);
    if (n < 0 || (uint64_t)n != get_len) {
        lsvd_log(LSVD_LOG_ERROR, "object %s: read of %" PRIu64 " bytes at %"
                 PRIu64 " failed: %s", name, get_len, o->hdr_len + start,
                 n < 0 ? g_strerror(-n) : "short object");
        return -EIO;
    }
    for (uint64_t i = c0; i <= c1; i++) {
        const struct obj_chunk *ch = &o->chunks[i];
        const uint8_t *src = getbuf + (o->soff[i] - start);
        uint8_t *dst = out + (i - c0) * OBJ_CHUNK_SIZE;

        if (lsvd_crc32c(0, src, ch->stored_len) != ch->crc) {
            lsvd_log(LSVD_LOG_ERROR, "object %s: chunk %" PRIu64 " (bytes %"
                     PRIu64 "+%u): CRC mismatch", name, i,
                     o->hdr_len + o->soff[i], ch->stored_len);
            return -EIO;
        }
        if (ch->flags & OBJ_CHUNK_LZ4) {
            int r = LZ4_decompress_safe((const char *)src, (char *)dst,
                                        ch->stored_len, OBJ_CHUNK_SIZE);
            if (r < 0 || (uint32_t)r != ch->raw_len) {
                lsvd_log(LSVD_LOG_ERROR, "object %s: chunk %" PRIu64
                         ": LZ4 data does not decode", name, i);
                return -EIO;
            }
        } else if (ch->stored_len != ch->raw_len) {
            lsvd_log(LSVD_LOG_ERROR, "object %s: chunk %" PRIu64 ": raw "
                     "chunk of the wrong length", name, i);
            return -EIO;
        } else {
            memcpy(dst, src, ch->raw_len);
        }
    }
    return 0;
}

/* Raw (decoded) bytes in object @o. */
static uint64_t raw_total(const struct objinfo *o)
{
    return o->n_chunks ? (uint64_t)(o->n_chunks - 1) * OBJ_CHUNK_SIZE +
                         o->chunks[o->n_chunks - 1].raw_len : 0;
}

/* A block of a cached read: its slot and what the read wants of it. */
struct cblock {
    uint64_t b;
    uint32_t slot;
    enum rcache_result res;
    bool prefetch;
    bool direct;                    /* the cache failed us: read the object */
};

/*
 * Fill the claimed blocks blk[0..n) (consecutive block numbers) with one
 * GET, and copy the parts the read wants into @dst (the read covers raw
 * bytes [off, off+len)).  Every slot is filled or aborted on return.
 */
static int fill_run(struct objlog *ol, uint64_t seq, const struct objinfo *o,
                    struct cblock *blk, unsigned n, uint64_t off,
                    uint64_t len, uint8_t *dst)
{
    uint64_t bs = rcache_block_size(ol->rc), total = raw_total(o);
    uint64_t r0 = blk[0].b * bs, r1 = MIN((blk[n - 1].b + 1) * bs, total);
    uint64_t c0 = r0 / OBJ_CHUNK_SIZE, c1 = (r1 - 1) / OBJ_CHUNK_SIZE;
    g_autofree uint8_t *raw = g_try_malloc((c1 - c0 + 1) * OBJ_CHUNK_SIZE);
    int ret = raw ? fetch_chunks(ol, seq, o, c0, c1, raw) : -ENOMEM;

    for (unsigned i = 0; i < n; i++) {
        uint64_t b0 = blk[i].b * bs, b1 = MIN(b0 + bs, total);
        uint64_t from = MAX(off, b0), to = MIN(off + len, b1);

        if (ret < 0) {
            rcache_abort(ol->rc, blk[i].slot);
            continue;
        }
        rcache_fill(ol->rc, blk[i].slot, raw + (b0 - r0), b1 - b0,
                    blk[i].prefetch);
        if (to > from) {
            memcpy(dst + (from - off), raw + (from - r0), to - from);
        }
    }
    return ret;
}

/* Read raw bytes [off, off+len) of object @seq, uncached. */
static int read_uncached(struct objlog *ol, uint64_t seq,
                         const struct objinfo *o, uint64_t off, uint64_t len,
                         uint8_t *dst)
{
    uint64_t c0 = off / OBJ_CHUNK_SIZE, c1 = (off + len - 1) / OBJ_CHUNK_SIZE;
    g_autofree uint8_t *raw = g_try_malloc((c1 - c0 + 1) * OBJ_CHUNK_SIZE);
    int ret = raw ? fetch_chunks(ol, seq, o, c0, c1, raw) : -ENOMEM;

    if (ret == 0) {
        memcpy(dst, raw + (off - c0 * OBJ_CHUNK_SIZE), len);
    }
    return ret;
}

/*
 * Read through the read cache.  First pass, without waiting: hits are
 * copied out, absent blocks are claimed, and blocks another thread is
 * filling are left for later.  The claimed blocks are fetched, a run of
 * consecutive ones with one GET, the last run extended by the prefetch
 * window (the data written just after, in the same batch).  Last, the
 * blocks that were being filled are looked up again, waiting this time:
 * concurrent misses on one block share one GET.  No claim is held while
 * waiting, so two readers can never wait for each other.
 */
static int read_cached(struct objlog *ol, uint64_t seq,
                       const struct objinfo *o, uint64_t off, uint64_t len,
                       uint8_t *dst)
{
    struct rcache *rc = ol->rc;
    uint64_t bs = rcache_block_size(rc), total = raw_total(o);
    uint64_t b0 = off / bs, b1 = (off + len - 1) / bs;
    uint64_t nb = b1 - b0 + 1, last_block = (total - 1) / bs;
    uint64_t pf = ol->prefetch / bs;
    g_autofree struct cblock *blk = g_try_new(struct cblock, nb + pf);
    uint64_t n = 0;
    int ret = 0;

    if (!blk) {
        return -ENOMEM;
    }
    for (uint64_t b = b0; b <= b1; b++, n++) {
        blk[n] = (struct cblock){ .b = b };
        blk[n].res = rcache_get(rc, seq, b, false, true, &blk[n].slot);
        if (blk[n].res == RCACHE_HIT) {
            uint64_t from = MAX(off, b * bs), to = MIN(off + len, b * bs + bs);
            if (rcache_read(rc, blk[n].slot, from - b * bs,
                            dst + (from - off), to - from) < 0) {
                blk[n].direct = true;
            }
            rcache_put(rc, blk[n].slot);
        } else if (blk[n].res == RCACHE_NONE && rcache_readonly(rc)) {
            blk[n].direct = true;   /* a miss: nobody will fill it */
        }
    }
    if (blk[n - 1].res == RCACHE_CLAIMED) {
        for (uint64_t b = b1 + 1; b <= MIN(b1 + pf, last_block); b++, n++) {
            blk[n] = (struct cblock){ .b = b, .prefetch = true };
            blk[n].res = rcache_get(rc, seq, b, false, false, &blk[n].slot);
            if (blk[n].res == RCACHE_HIT) {
                rcache_put(rc, blk[n].slot);
            }
            if (blk[n].res != RCACHE_CLAIMED) {
                n++;
                break;
            }
        }
    }
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i;

        if (blk[i].res != RCACHE_CLAIMED) {
            i++;
            continue;
        }
        while (j + 1 < n && blk[j + 1].res == RCACHE_CLAIMED) {
            j++;
        }
        if (ret < 0) {
            for (uint64_t k = i; k <= j; k++) {
                rcache_abort(rc, blk[k].slot);
            }
        } else {
            ret = fill_run(ol, seq, o, &blk[i], j - i + 1, off, len, dst);
        }
        i = j + 1;
    }
    for (uint64_t i = 0; i < nb && ret == 0; i++) {
        uint64_t b = blk[i].b, from = MAX(off, b * bs);
        uint64_t to = MIN(off + len, b * bs + bs);

        if (blk[i].direct) {
            ret = read_uncached(ol, seq, o, from, to - from,
                                dst + (from - off));
            continue;
        }
        if (blk[i].res != RCACHE_NONE) {
            continue;
        }
        switch (rcache_get(rc, seq, b, true, true, &blk[i].slot)) {
        case RCACHE_HIT:
            ret = rcache_read(rc, blk[i].slot, from - b * bs,
                              dst + (from - off), to - from);
            rcache_put(rc, blk[i].slot);
            if (ret < 0) {
                ret = read_uncached(ol, seq, o, from, to - from,
                                    dst + (from - off));
            }
            break;
        case RCACHE_CLAIMED:
            ret = fill_run(ol, seq, o, &blk[i], 1, off, len, dst);
            break;
        case RCACHE_NONE:       /* every slot busy: do without */
            ret = read_uncached(ol, seq, o, from, to - from,
                                dst + (from - off));
            break;
        }
    }
    return ret;
}

/* Read @len raw bytes at raw offset @off of object @seq into @dst. */
static int read_object(struct objlog *ol, uint64_t seq, struct objinfo *o,
                       uint64_t off, size_t len, uint8_t *dst)
{
    char name[OBJ_NAME_MAX];

    if (o && ensure_chunks(ol, seq, o) < 0) {
        return -EIO;
    }
    if (!o || len == 0 || off + len > raw_total(o)) {
        objlog_object_name(name, ol->vol, seq);
        lsvd_log(LSVD_LOG_ERROR, "object %s: map points past its data",
                 name);
        return -EIO;
    }
    if (ol->rc) {
        return read_cached(ol, seq, o, off, len, dst);
    }
    return read_uncached(ol, seq, o, off, len, dst);
}

struct piece {
    uint64_t lba, len, loc;
    struct objinfo *o;
};

struct read_ctx {
    struct objlog *ol;
    uint64_t lba;
    uint8_t *buf;
    GArray *pieces;
};

/* Map lock held: zero what reads as zero, note what is in objects. */
static int collect_piece(void *arg, uint64_t lba, uint64_t len, bool mapped,
                         uint64_t loc)
{
    struct read_ctx *c = arg;

    if (!mapped || (loc & LOC_ZERO)) {
        memset(c->buf + (lba - c->lba) * LSVD_SECTOR_SIZE, 0,
               len * LSVD_SECTOR_SIZE);
    } else {
        uint64_t seq = loc >> 32;
        struct piece p = {
            lba, len, loc,
            seq < c->ol->objs->len ? g_ptr_array_index(c->ol->objs, seq) :
                                     NULL,
        };
        g_array_append_val(c->pieces, p);
    }
    return 0;
}

int objlog_read(struct objlog *ol, uint64_t lba, uint64_t sectors,
                uint8_t *buf)
{
    struct read_ctx c = { ol, lba, buf, NULL };
    int ret = 0;

    c.pieces = g_array_new(FALSE, FALSE, sizeof(struct piece));
    g_rw_lock_reader_lock(&ol->map_lock);
    extmap_lookup(ol->omap, lba, sectors, collect_piece, &c);
    g_rw_lock_reader_unlock(&ol->map_lock);

    /* objects are immutable: no lock while fetching */
    for (guint i = 0; i < c.pieces->len && ret == 0; i++) {
        struct piece *p = &g_array_index(c.pieces, struct piece, i);
        ret = read_object(ol, p->loc >> 32, p->o,
                          (p->loc & 0xffffffffULL) * LSVD_SECTOR_SIZE,
                          p->len * LSVD_SECTOR_SIZE,
                          buf + (p->lba - lba) * LSVD_SECTOR_SIZE);
    }
    g_array_free(c.pieces, TRUE);
    return ret;
}

void objlog_stats(struct objlog *ol, struct objlog_stats *st)
{
    g_mutex_lock(&ol->lock);
    *st = ol->stats;
    g_mutex_unlock(&ol->lock);
}

void objlog_set_rcache(struct objlog *ol, struct rcache *rc,
                       uint64_t prefetch)
{
    ol->rc = rc;
    ol->prefetch = prefetch;
}

void objlog_set_vol_size(struct objlog *ol, uint64_t size)
{
    __atomic_store_n(&ol->vol_size, size, __ATOMIC_RELAXED);
}

struct first_piece {
    uint64_t len;
    int kind;
};

static int take_first(void *arg, uint64_t lba G_GNUC_UNUSED, uint64_t len,
                      bool mapped, uint64_t loc)
{
    struct first_piece *p = arg;

    p->len = len;
    p->kind = !mapped ? LSVD_EXTENT_UNWRITTEN :
              (loc & LOC_ZERO) ? LSVD_EXTENT_ZERO : LSVD_EXTENT_DATA;
    return 1;
}

int objlog_extent_kind(struct objlog *ol, uint64_t lba, uint64_t sectors,
                       uint64_t *n)
{
    struct first_piece p = { sectors, LSVD_EXTENT_UNWRITTEN };

    g_rw_lock_reader_lock(&ol->map_lock);
    extmap_lookup(ol->omap, lba, sectors, take_first, &p);
    g_rw_lock_reader_unlock(&ol->map_lock);
    *n = p.len;
    return p.kind;
}
