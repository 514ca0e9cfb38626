/*
 * volume.c - the public API: create, open, close, and the read, write and
 * flush paths that tie the journal and the object log together.
 *
 * Layers are stacked in one place, lsvd_open(): backend -> journal (locked
 * first) -> object log -> journal replay.  Threads of an open volume:
 *
 *   journal thread   takes writes, write-zeroes and flushes from `queue` in
 *                    order, group-commits them to the journal (one io_uring
 *                    round), then, in sequence order, points the journal
 *                    map at them, adds them to the batch, and completes
 *                    them; seals full batches; when the journal is full,
 *                    reclaims records already in objects, or waits for PUTs
 *   PUT workers      (objlog) encode sealed batches, from their copy of
 *                    the data or read back from the journal, and PUT them
 *   read workers     serve reads: journal map, then object map, then zeros
 *
 * Callbacks run on the journal thread (writes, flushes) or a read worker.
 *
 * Locks: jmap_lock (rwlock) protects the journal map.  A reader holds it
 * while it reads journal data, so the journal thread, which takes it for
 * writing before it reclaims journal space, never overwrites data that a
 * reader is still reading.  `lock` protects the counters for lsvd_stat().
 *
 * Journal map locations: data records map to the journal sector of the
 * data; ZERO records map to LOC_ZERO | header sector << ZLOC_SHIFT, so that
 * reclaim can tell which record an entry came from (see reclaim_record()).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "backend.h"
#include "config.h"
#include "extmap.h"
#include "journal.h"
#include "lsvd.h"
#include "objlog.h"
#include "rcache.h"
#include "util.h"

#define ROUND_MAX 64                /* requests per group commit */
#define READ_THREADS 4             /* dir://; s3:// has max_requests */
#define PUT_DEPTH 4                 /* object PUTs in flight */
#define ZLOC_SHIFT 24               /* ZERO extents: at most 2^24 sectors */
#define ZERO_EXT_MAX (1ULL << ZLOC_SHIFT)
#define WRITE_REC_MAX (JOURNAL_MAX_RECORD / 2)  /* data per write record */
#define LSVD_MAX_SECTORS (1ULL << 40)       /* 512 TiB */
#define STATS_REFRESH_US G_USEC_PER_SEC     /* while PUTs are pending */

enum vreq_type {
    VREQ_READ, VREQ_WRITE, VREQ_ZERO, VREQ_FLUSH, VREQ_RESIZE, VREQ_STOP
};

struct vreq {
    struct vreq *next;              /* in the free pool */
    enum vreq_type type;
    uint64_t offset;
    const struct iovec *iov;
    int iovcnt;
    size_t len;
    lsvd_cb *cb;
    void *cb_arg;
    int err;                        /* failed after some records went out */
};

/* One journal record of a round; a request may need several. */
struct rec_slot {
    struct vreq *req;
    uint64_t k;                     /* which record of the request */
    bool last;                      /* the request's last record */
    uint64_t seq, data_off;
};

struct lsvd_volume {
    char *name;
    bool rdonly;
    uint64_t size;
    struct backend be;
    struct super sb;
    struct objlog *ol;
    struct journal *jnl;

    GRWLock jmap_lock;
    struct extmap *jmap;        /* lba -> journal location (see above) */

    GThread *jthread;
    GAsyncQueue *queue;         /* struct vreq *, for the journal thread */
    struct workers *readers;
    int failed;                 /* journal thread: sticky write error */
    int close_ret;              /* set by the journal thread on STOP */
    char *jmpath;               /* journal map checkpoint file */
    uint64_t jmap_ckpt_at;      /* journal_appended() at the last one */

    /* the round being prepared: journal thread only */
    struct rec_slot slots[ROUND_MAX * 2];
    int nslots;
    struct vreq *flushes[ROUND_MAX];
    int nflushes;

    GMutex lock;                /* protects journal_bytes, stopping */
    uint64_t journal_bytes;     /* not yet in objects */

    /* client requests since open: atomics */
    uint64_t n_reads, n_read_bytes, n_writes, n_write_bytes;
    uint64_t n_zeroes, n_zero_bytes, n_flushes;
    char *stats_path;           /* writable opens: CACHE/VOL.stats */

    int64_t write_timeout_us;   /* [cache] write_timeout; 0: none */
    int64_t batch_timeout_us;   /* [log] batch_timeout; 0: none */
    int64_t seal_retry_at;      /* journal thread: idle seal refused */

    GMutex pool_lock;           /* protects pool, pooled */
    struct vreq *pool;          /* free request structs, reused */
    unsigned pooled;

    struct rcache *rc;          /* read cache, or NULL */
    GThread *keeper;            /* housekeeping: see keeper_thread() */
    GCond keeper_cond;
    bool stopping;              /* keeper: leave now */
};
/* A volume size: whole sectors, not empty, at most 512 TiB. */
static bool size_valid(uint64_t size)
{
    return size > 0 && size % LSVD_SECTOR_SIZE == 0 &&
           size / LSVD_SECTOR_SIZE <= LSVD_MAX_SECTORS;
}

/* The size changes only on the journal thread (resize); anyone reads it. */
static uint64_t vol_size(const struct lsvd_volume *v)
{
    return __atomic_load_n(&v->size, __ATOMIC_RELAXED);
}

/*
 * Request structs come from a free pool, so that the I/O path allocates
 * nothing once it has warmed up (the pool keeps at most POOL_MAX).
 */
#define POOL_MAX 1024

static struct vreq *vreq_get(struct lsvd_volume *v)
{
    struct vreq *r;

    g_mutex_lock(&v->pool_lock);
    r = v->pool;
    if (r) {
        v->pool = r->next;
        v->pooled--;
    }
    g_mutex_unlock(&v->pool_lock);
    return r ? r : g_new(struct vreq, 1);
}

static void vreq_put(struct lsvd_volume *v, struct vreq *r)
{
    g_mutex_lock(&v->pool_lock);
    if (v->pooled < POOL_MAX) {
        r->next = v->pool;
        v->pool = r;
        v->pooled++;
        r = NULL;
    }
    g_mutex_unlock(&v->pool_lock);
    g_free(r);
}

/* ---- paths ---------------------------------------------------------------- */

static char *cache_file(const struct lsvd_config *cfg, const char *name,
                        const char *ext)
{
    g_autofree char *leaf = g_strdup_printf("%s.%s", name, ext);

    return g_build_filename(cfg->cache_dir, leaf, NULL);
}

static char *journal_path(const struct lsvd_config *cfg, const char *name)
{
    return cache_file(cfg, name, "journal");
}

/* CACHE_DIR/VOLUME: what the read cache's file names start with. */
static char *cache_base(const struct lsvd_config *cfg, const char *name)
{
    return g_build_filename(cfg->cache_dir, name, NULL);
}

/* The journal map checkpoint beside the journal. */
static char *jmap_path(const struct lsvd_config *cfg, const char *name)
{
    return cache_file(cfg, name, "jmap");
}

bool lsvd_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > LSVD_NAME_MAX || name[0] == '.' || name[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(name[i]) && !strchr("._-", name[i])) {
            return false;
        }
    }
    return true;
}

static int check_name(const char *name, struct lsvd_err *err)
{
    if (!lsvd_name_valid(name)) {
        return lsvd_fail(err, -EINVAL, "invalid volume name '%s': use 1-%d "
                         "characters from A-Z a-z 0-9 . _ -, not starting "
                         "with '.' or '-'", name ? name : "",
                         LSVD_NAME_MAX);
    }
    return 0;
}

/* ---- records of a request ---------------------------------------------- */

/* How many journal records request @r needs. */
static uint64_t req_records(const struct vreq *r)
{
    uint64_t exts;

    if (r->type == VREQ_WRITE) {
        return (r->len + WRITE_REC_MAX - 1) / WRITE_REC_MAX;
    }
    exts = (r->len / LSVD_SECTOR_SIZE + ZERO_EXT_MAX - 1) / ZERO_EXT_MAX;
    return (exts + REC_MAX_EXTENTS - 1) / REC_MAX_EXTENTS;
}

/* The extents of record @k of request @r, and where its data starts in
 * the request's iovec (@skip) and how much there is (@len). */
static uint32_t req_record(const struct vreq *r, uint64_t k,
                           struct rec_extent *ext, size_t *skip, size_t *len)
{
    uint64_t lba0 = r->offset / LSVD_SECTOR_SIZE;
    uint64_t total = r->len / LSVD_SECTOR_SIZE;
    uint32_t n = 0;

    *skip = 0;
    *len = 0;
    if (r->type == VREQ_WRITE) {
        *skip = k * WRITE_REC_MAX;
        *len = MIN(WRITE_REC_MAX, r->len - *skip);
        ext[0] = (struct rec_extent){
            .lba = lba0 + *skip / LSVD_SECTOR_SIZE,
            .sectors = *len / LSVD_SECTOR_SIZE,
        };
        return 1;
    }
    for (uint64_t e = k * REC_MAX_EXTENTS; n < REC_MAX_EXTENTS; e++) {
        uint64_t start = e * ZERO_EXT_MAX;
        if (start >= total) {
            break;
        }
        ext[n++] = (struct rec_extent){
            .lba = lba0 + start,
            .sectors = MIN(ZERO_EXT_MAX, total - start),
        };
    }
    return n;
}

/* ---- the journal map ---------------------------------------------------- */

static uint64_t zero_loc(uint64_t hdr_off)
{
    return LOC_ZERO | (hdr_off / LSVD_SECTOR_SIZE) << ZLOC_SHIFT;
}

/*
 * Point the journal map at extents @ext[0..n) of a record, whose data is at
 * @data_off; with @batch, also add them to the object log's batch, with
 * @iov (after @skip bytes) their data as the request gave it (NULL: not at
 * hand).  The caller adds the record itself to the batch (a record may hold
 * several requests' writes).  jmap_lock held for writing (or no other
 * thread yet, during open).
 */
static int map_record(struct lsvd_volume *v, uint16_t type,
                      const struct rec_extent *ext, uint32_t n,
                      uint64_t data_off, uint64_t seq, bool batch,
                      const struct iovec *iov, int iovcnt, size_t skip)
{
    uint64_t pos = 0;

    for (uint32_t i = 0; i < n; i++) {
        int ret = 0;

        if (type == REC_TYPE_ZERO) {
            extmap_update(v->jmap, ext[i].lba, ext[i].sectors,
                          zero_loc(data_off - JNL_BLOCK));
            if (batch) {
                ret = objlog_batch_add(v->ol, ext[i].lba, ext[i].sectors,
                                       true, 0, seq);
            }
        } else {
            extmap_update(v->jmap, ext[i].lba, ext[i].sectors,
                          (data_off + pos) / LSVD_SECTOR_SIZE);
            if (batch) {
                ret = objlog_batch_add(v->ol, ext[i].lba, ext[i].sectors,
                                       false, data_off + pos, seq);
            }
            pos += (uint64_t)ext[i].sectors * LSVD_SECTOR_SIZE;
        }
        if (ret < 0) {
            return ret;
        }
    }
    if (batch && type == REC_TYPE_WRITE) {
        objlog_batch_data(v->ol, data_off, iov, iovcnt, skip, pos);
    }
    return 0;
}

struct match_ctx {
    uint64_t lba, base;
    GArray *hits;               /* pairs (lba, len) to trim */
};

static int match_piece(void *arg, uint64_t lba, uint64_t len, bool mapped,
                       uint64_t loc)
{
    struct match_ctx *c = arg;

    if (mapped && loc == c->base + (lba - c->lba)) {
        uint64_t hit[2] = { lba, len };
        g_array_append_vals(c->hits, hit, 2);
    }
    return 0;
}

/*
 * The journal is about to reuse the space of record @r, which is in an
 * object: drop the journal map entries that still point into it (newer
 * records' entries stay).  jmap_lock held for writing.
 */
static void reclaim_record(void *arg, const struct jrec *r)
{
    struct lsvd_volume *v = arg;
    struct match_ctx c;
    uint64_t data = r->off + JNL_BLOCK;

    c.hits = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (uint32_t i = 0; i < r->n_extents; i++) {
        const struct rec_extent *e = &r->extents[i];

        c.lba = e->lba;
        if (r->type == REC_TYPE_ZERO) {
            c.base = zero_loc(r->off);
        } else {
            c.base = data / LSVD_SECTOR_SIZE;
            data += (uint64_t)e->sectors * LSVD_SECTOR_SIZE;
        }
        g_array_set_size(c.hits, 0);
        extmap_lookup(v->jmap, e->lba, e->sectors, match_piece, &c);
        for (guint h = 0; h < c.hits->len; h += 2) {
            extmap_trim(v->jmap, g_array_index(c.hits, uint64_t, h),
                        g_array_index(c.hits, uint64_t, h + 1));
        }
    }
    g_array_free(c.hits, TRUE);
}

/* ---- the journal thread ------------------------------------------------- */

static void update_stats(struct lsvd_volume *v)
{
    uint64_t dirty = journal_dirty_bytes(v->jnl, objlog_durable_jseq(v->ol));

    g_mutex_lock(&v->lock);
    v->journal_bytes = dirty;
    g_mutex_unlock(&v->lock);
}

struct mapcollect {
    GArray *map;
};

static int collect_map(void *arg, uint64_t lba, uint64_t len,
                       bool mapped G_GNUC_UNUSED, uint64_t loc)
{
    struct jmap_map m = { lba, len, loc };

    g_array_append_val(((struct mapcollect *)arg)->map, m);
    return 0;
}

/*
 * Write the journal map checkpoint: the records in the ring and the journal
 * map, so that the next open reads neither from the ring.  Only when every
 * record is in an object (the next open checks that with the object log),
 * and only this thread changes the journal map.  Written to a new file that
 * is renamed over the old one; a failure only costs the next open a full
 * replay.
 */
static void write_jmap_ckpt(struct lsvd_volume *v)
{
    struct jmap_ckpt c = { 0 };
    struct mapcollect mc;
    g_autofree uint8_t *buf = NULL;
    struct iovec iov;
    size_t len;
    int ret;

    journal_export(v->jnl, &c);
    memcpy(c.uuid, v->sb.uuid, LSVD_UUID_LEN);
    mc.map = g_array_new(FALSE, FALSE, sizeof(struct jmap_map));
    g_rw_lock_reader_lock(&v->jmap_lock);
    extmap_foreach(v->jmap, collect_map, &mc);
    g_rw_lock_reader_unlock(&v->jmap_lock);
    c.n_map = mc.map->len;
    c.map = (struct jmap_map *)g_array_free(mc.map, FALSE);
    buf = jmap_ckpt_encode(&c, &len);
    jmap_ckpt_free(&c);

    iov = (struct iovec){ buf, len };
    ret = lsvd_replace_file(v->jmpath, &iov, 1, 0600);
    if (ret == 0) {
        v->jmap_ckpt_at = journal_appended(v->jnl);
    } else {
        lsvd_log(LSVD_LOG_WARNING, "volume '%s': cannot write %s: %s",
                 v->name, v->jmpath, g_strerror(-ret));
    }
}

/*
 * At open: take the records and the journal map from the checkpoint
 * instead of reading them from the ring, if it still fits: same volume,
 * same journal superblock (so none of its records has been overwritten),
 * and every record it covers is in an object.  Anything else: ignore it.
 */
static void load_jmap_ckpt(struct lsvd_volume *v, uint64_t max_jseq)
{
    g_autofree uint8_t *data = NULL;
    struct jmap_ckpt c;
    gsize len;

    if (!g_file_get_contents(v->jmpath, (gchar **)&data, &len, NULL)) {
        return;
    }
    if (jmap_ckpt_parse(data, len, &c) < 0) {
        lsvd_log(LSVD_LOG_WARNING, "volume '%s': ignoring %s: malformed",
                 v->name, v->jmpath);
        return;
    }
    if (memcmp(c.uuid, v->sb.uuid, LSVD_UUID_LEN) == 0 &&
        c.upto_seq <= max_jseq && journal_resume(v->jnl, &c) == 0) {
        for (uint64_t i = 0; i < c.n_map; i++) {
            extmap_update(v->jmap, c.map[i].lba, c.map[i].len, c.map[i].loc);
        }
        lsvd_log(LSVD_LOG_INFO, "volume '%s': journal map from %s (%" PRIu64
                 " records, %" PRIu64 " extents)", v->name, v->jmpath,
                 c.n_recs, c.n_map);
    }
    jmap_ckpt_free(&c);
}

/* Write the prepared round, then apply and complete its records in
 * sequence order. */
static void run_round(struct lsvd_volume *v)
{
    int ret;

    if (v->nslots == 0 && v->nflushes == 0) {
        return;
    }
    ret = journal_submit(v->jnl, v->nflushes > 0);
    if (ret < 0 && !v->failed) {
        lsvd_log(LSVD_LOG_ERROR, "volume '%s': journal write failed: %s; "
                 "refusing further writes", v->name, g_strerror(-ret));
        v->failed = -EIO;
    }
    /*
     * Once a write or an fdatasync of the journal has failed, a later
     * fdatasync that succeeds proves nothing: the kernel may have dropped
     * the pages whose writeback failed.  So flushes fail from then on,
     * like writes.
     */
    if (ret < 0 || v->failed) {
        ret = -EIO;
    }

    g_rw_lock_writer_lock(&v->jmap_lock);
    for (int i = 0, rec_first = 0; i < v->nslots && ret == 0; i++) {
        struct rec_slot *s = &v->slots[i];
        struct rec_extent ext[REC_MAX_EXTENTS];
        size_t skip, len;
        uint32_t n = req_record(s->req, s->k, ext, &skip, &len);
        bool write = s->req->type != VREQ_ZERO;

        ret = map_record(v, write ? REC_TYPE_WRITE : REC_TYPE_ZERO, ext, n,
                         s->data_off, s->seq, true, s->req->iov,
                         s->req->iovcnt, skip);
        /*
         * Writes of a round share a record while they fit (the journal
         * joins them): the first slot of each record has its start, and
         * its last slot ends it
         */
        if (i > 0 && s->seq != v->slots[i - 1].seq) {
            rec_first = i;
        }
        if (ret == 0 && write &&
            (i + 1 == v->nslots || v->slots[i + 1].seq != s->seq)) {
            uint64_t first = v->slots[rec_first].data_off;

            objlog_batch_record(v->ol, first - JNL_BLOCK,
                                journal_record_size(s->data_off + len - first),
                                s->seq);
        }
        if (ret < 0) {
            /* the batch could not take it: it is journaled, but no object
             * would ever hold it; stop writing */
            lsvd_log(LSVD_LOG_ERROR, "volume '%s': batch: %s", v->name,
                     g_strerror(-ret));
            v->failed = ret = -EIO;
        }
    }
    g_rw_lock_writer_unlock(&v->jmap_lock);

    for (int i = 0; i < v->nslots; i++) {
        struct rec_slot *s = &v->slots[i];
        if (s->last) {
            s->req->cb(s->req->cb_arg, ret < 0 ? ret : s->req->err);
            vreq_put(v, s->req);
        }
    }
    for (int i = 0; i < v->nflushes; i++) {
        v->flushes[i]->cb(v->flushes[i]->cb_arg, ret);
        vreq_put(v, v->flushes[i]);
    }
    v->nslots = 0;
    v->nflushes = 0;

    if (!v->failed && objlog_batch_full(v->ol, 1)) {
        /*
         * While PUTs are slow, let the batch grow rather than hold up the
         * journal (and every flush behind it); wait only once it is four
         * batches big, to bound its memory.
         */
        ret = objlog_seal(v->ol, objlog_batch_full(v->ol, 4));
        if (ret < 0 && ret != -EAGAIN) {
            lsvd_log(LSVD_LOG_ERROR, "volume '%s': %s", v->name,
                     g_strerror(-ret));
        }
    }
    /* a quiet moment with everything in objects, after a quarter of the
     * ring: checkpoint the journal map */
    if (!v->failed && objlog_batch_empty(v->ol) &&
        objlog_durable_jseq(v->ol) >= journal_last_data_seq(v->jnl) &&
        journal_appended(v->jnl) - v->jmap_ckpt_at >=
        journal_ring_size(v->jnl) / 4) {
        write_jmap_ckpt(v);
    }
    update_stats(v);
}

/*
 * The journal is full: reclaim the space of records that are in objects,
 * and if there are none, seal the batch and wait for PUTs until there are,
 * or until @deadline (0: none) passes: -ETIMEDOUT.
 */
static int make_space(struct lsvd_volume *v, int64_t deadline)
{
    uint64_t used = journal_used(v->jnl);
    uint64_t durable = objlog_durable_jseq(v->ol);
    int ret;

    g_rw_lock_writer_lock(&v->jmap_lock);
    journal_reclaim(v->jnl, durable, reclaim_record, v);
    g_rw_lock_writer_unlock(&v->jmap_lock);
    if (journal_used(v->jnl) < used) {
        return 0;
    }
    if (!objlog_batch_empty(v->ol)) {
        ret = objlog_seal(v->ol, true);
        if (ret < 0) {
            return ret;
        }
    }
    ret = objlog_wait_durable(v->ol, durable, deadline);
    if (ret < 0) {
        return ret;
    }
    if (objlog_durable_jseq(v->ol) == durable) {
        return -ENOSPC;         /* nothing in flight could free space */
    }
    return 0;
}

/*
 * Prepare the records of write or write-zeroes request @r.  A request that
 * fails after some of its records are in the round is answered by
 * run_round(), with its last prepared record, so that those records never
 * point at a request struct already reused.
 */
static void prepare_request(struct lsvd_volume *v, struct vreq *r)
{
    uint64_t nrec = req_records(r);
    struct rec_slot *pending = NULL;    /* @r's newest slot in the round */
    int64_t deadline = 0;

    /* submitted before a shrink that has run since */
    if (r->offset + r->len > vol_size(v)) {
        r->cb(r->cb_arg, -EINVAL);
        vreq_put(v, r);
        return;
    }

    for (uint64_t k = 0; k < nrec; k++) {
        struct rec_extent ext[REC_MAX_EXTENTS];
        size_t skip, len;
        uint32_t n = req_record(r, k, ext, &skip, &len);
        struct rec_slot *s;
        int ret;

        for (;;) {
            ret = v->failed;
            if (ret < 0) {
                break;
            }
            if (v->nslots == G_N_ELEMENTS(v->slots)) {
                run_round(v);
                pending = NULL;
            }
            s = &v->slots[v->nslots];
            ret = journal_prepare(v->jnl, r->type == VREQ_ZERO ?
                                  REC_TYPE_ZERO : REC_TYPE_WRITE, ext, n,
                                  r->iov, r->iovcnt, skip, len, &s->seq,
                                  &s->data_off);
            if (ret != -EAGAIN && ret != -ENOSPC) {
                break;
            }
            /* the round must go out before its space can be reused */
            run_round(v);
            pending = NULL;
            if (ret == -ENOSPC) {
                if (!deadline && v->write_timeout_us) {
                    deadline = g_get_monotonic_time() + v->write_timeout_us;
                }
                ret = make_space(v, deadline);
                if (ret == -ETIMEDOUT) {
                    lsvd_log(LSVD_LOG_WARNING, "volume '%s': a write waited "
                             "%" PRId64 " s for journal space (the object "
                             "store is slow or away): failing it with EIO",
                             v->name, v->write_timeout_us / G_USEC_PER_SEC);
                }
                if (ret < 0) {
                    break;
                }
            }
        }
        if (ret < 0) {
            ret = ret == -EFBIG ? -EINVAL : -EIO;
            if (pending) {
                pending->last = true;
                r->err = ret;
            } else {
                r->cb(r->cb_arg, ret);
                vreq_put(v, r);
            }
            return;
        }
        s->req = r;
        s->k = k;
        s->last = k + 1 == nrec;
        v->nslots++;
        pending = s;
    }
}

struct any_ctx {
    struct lsvd_volume *v;
    bool found;
};

/* jmap_lock held: is anything mapped in the journal or the object map? */
static int anything_mapped(void *arg, uint64_t lba, uint64_t len,
                           bool mapped, uint64_t loc G_GNUC_UNUSED)
{
    struct any_ctx *c = arg;
    uint64_t n;

    if (mapped || objlog_extent_kind(c->v->ol, lba, len, &n) !=
                  LSVD_EXTENT_UNWRITTEN || n < len) {
        c->found = true;
        return 1;
    }
    return 0;
}

/*
 * Journal thread, every earlier write mapped.  A shrink needs the maps
 * empty beyond the new end, so that no record or object ever holds an
 * extent past the size it is read with.  The superblock is written first:
 * a crash leaves the old size or the new one.
 */
static int do_resize(struct lsvd_volume *v, uint64_t size)
{
    uint64_t old = vol_size(v);
    struct super sb = v->sb;
    int ret;

    if (size == old) {
        return 0;
    }
    if (size < old) {
        struct any_ctx c = { v, false };

        g_rw_lock_reader_lock(&v->jmap_lock);
        extmap_lookup(v->jmap, size / LSVD_SECTOR_SIZE,
                      (old - size) / LSVD_SECTOR_SIZE, anything_mapped, &c);
        g_rw_lock_reader_unlock(&v->jmap_lock);
        if (c.found) {
            return -ENOTEMPTY;
        }
        /* refuse new I/O past the end before the store says so */
        __atomic_store_n(&v->size, size, __ATOMIC_RELAXED);
    }
    sb.size = size;
    ret = objlog_write_super(&v->be, v->name, &sb);
    if (ret < 0) {
        lsvd_log(LSVD_LOG_ERROR, "volume '%s': cannot write the superblock "
                 "for a resize: %s", v->name, g_strerror(-ret));
        __atomic_store_n(&v->size, old, __ATOMIC_RELAXED);
        return ret;
    }
    v->sb.size = size;
    objlog_set_vol_size(v->ol, size);
    __atomic_store_n(&v->size, size, __ATOMIC_RELAXED);
    return 0;
}

/*
 * The journal thread's next request.  While the batch holds data, wait only
 * until it is batch_timeout old, then seal it: the last writes of a volume
 * gone quiet reach the store too, so losing the cache loses at most about
 * that much of them.  While data is not yet in objects, wake every second
 * to bring the counters up to date with the PUTs.  NULL: it woke for these.
 */
static struct vreq *next_request(struct lsvd_volume *v)
{
    int64_t now = g_get_monotonic_time(), until = 0, seal_at = 0;
    int64_t started = objlog_batch_started(v->ol);
    struct vreq *r;

    /* a read-only or failed volume never seals; a seal refused (too many
     * batches waiting, or a PUT failed for good) is tried again later */
    if (started && v->batch_timeout_us && !v->rdonly && !v->failed) {
        seal_at = MAX(started + v->batch_timeout_us, v->seal_retry_at);
        until = seal_at;
    }
    if (v->journal_bytes > 0) {     /* written only by this thread */
        until = until ? MIN(until, now + STATS_REFRESH_US)
                      : now + STATS_REFRESH_US;
    }
    if (!until) {
        return g_async_queue_pop(v->queue);
    }
    if (until > now) {
        r = g_async_queue_timeout_pop(v->queue, until - now);
        if (r) {
            return r;
        }
        now = g_get_monotonic_time();
    }
    if (seal_at && now >= seal_at && objlog_seal(v->ol, false) < 0) {
        v->seal_retry_at = now + STATS_REFRESH_US;
    }
    update_stats(v);
    return NULL;
}

static gpointer journal_thread(gpointer arg)
{
    struct lsvd_volume *v = arg;

    for (;;) {
        struct vreq *r = next_request(v);

        /* group commit: take what has queued up meanwhile */
        for (int n = 0; r; n++) {
            switch (r->type) {
            case VREQ_WRITE:
            case VREQ_ZERO:
                prepare_request(v, r);
                break;
            case VREQ_FLUSH:
                if (v->nflushes == ROUND_MAX) {
                    run_round(v);
                }
                v->flushes[v->nflushes++] = r;
                break;
            case VREQ_RESIZE:
                run_round(v);       /* the writes before it are mapped */
                r->cb(r->cb_arg, do_resize(v, r->offset));
                vreq_put(v, r);
                break;
            case VREQ_STOP:
                run_round(v);
                if (!v->rdonly) {
                    objlog_closing(v->ol);  /* do not wait out an outage */
                }
                if (v->rdonly) {
                    v->close_ret = 0;
                } else if (v->failed) {
                    v->close_ret = v->failed;
                } else {
                    v->close_ret = objlog_seal(v->ol, true);
                    if (v->close_ret == 0) {
                        v->close_ret = objlog_drain(v->ol);
                    }
                    if (v->close_ret == 0) {
                        write_jmap_ckpt(v);
                    }
                }
                g_free(r);
                return NULL;
            case VREQ_READ:
                g_assert_not_reached();
            }
            r = n < ROUND_MAX ? g_async_queue_try_pop(v->queue) : NULL;
            if (r && r->type == VREQ_STOP) {
                g_async_queue_push_front(v->queue, r);
                r = NULL;
            }
        }
        run_round(v);
    }
}

/* ---- reads --------------------------------------------------------------- */

struct jread_ctx {
    struct lsvd_volume *v;
    uint64_t lba;
    uint8_t *buf;
    GArray *gaps;               /* pairs (lba, len) not in the journal */
    int ret;
};

/* jmap_lock held for reading. */
static int read_piece(void *arg, uint64_t lba, uint64_t len, bool mapped,
                      uint64_t loc)
{
    struct jread_ctx *c = arg;
    uint8_t *dst = c->buf + (lba - c->lba) * LSVD_SECTOR_SIZE;

    if (!mapped) {
        uint64_t gap[2] = { lba, len };
        g_array_append_vals(c->gaps, gap, 2);
        return 0;
    }
    if (loc & LOC_ZERO) {
        memset(dst, 0, len * LSVD_SECTOR_SIZE);
        return 0;
    }
    return journal_read(c->v->jnl, loc * LSVD_SECTOR_SIZE, dst,
                        len * LSVD_SECTOR_SIZE);
}

/*
 * Per read worker, kept between requests so that a read allocates
 * nothing: the list of gaps the journal leaves, and a bounce buffer for
 * reads into several iovecs (up to SCRATCH_MAX; larger ones allocate).
 */
#define SCRATCH_MAX (4u << 20)

struct read_scratch {
    GArray *gaps;
    uint8_t *buf;
    size_t cap;
};

static void scratch_free(gpointer p)
{
    struct read_scratch *s = p;

    g_array_free(s->gaps, TRUE);
    g_free(s->buf);
    g_free(s);
}

static GPrivate scratch_key = G_PRIVATE_INIT(scratch_free);

static struct read_scratch *scratch_get(void)
{
    struct read_scratch *s = g_private_get(&scratch_key);

    if (!s) {
        s = g_new0(struct read_scratch, 1);
        s->gaps = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        g_private_set(&scratch_key, s);
    }
    g_array_set_size(s->gaps, 0);
    return s;
}

static int do_read(struct lsvd_volume *v, struct vreq *r, uint8_t *buf,
                   GArray *gaps)
{
    struct jread_ctx c = { v, r->offset / LSVD_SECTOR_SIZE, buf, gaps, 0 };
    int ret;

    g_rw_lock_reader_lock(&v->jmap_lock);
    ret = extmap_lookup(v->jmap, c.lba, r->len / LSVD_SECTOR_SIZE,
                        read_piece, &c);
    g_rw_lock_reader_unlock(&v->jmap_lock);
    for (guint i = 0; i < c.gaps->len && ret == 0; i += 2) {
        uint64_t lba = g_array_index(c.gaps, uint64_t, i);
        ret = objlog_read(v->ol, lba, g_array_index(c.gaps, uint64_t, i + 1),
                          buf + (lba - c.lba) * LSVD_SECTOR_SIZE);
    }
    return ret;
}

static void read_task(void *data, void *user_data)
{
    struct vreq *r = data;
    struct lsvd_volume *v = user_data;
    struct read_scratch *sc = scratch_get();
    uint8_t *buf = r->iov[0].iov_base, *heap = NULL;
    lsvd_cb *cb = r->cb;
    void *cb_arg = r->cb_arg;
    int ret = 0;

    if (r->iovcnt != 1) {
        if (r->len > SCRATCH_MAX) {
            buf = heap = g_try_malloc(r->len);
        } else {
            if (sc->cap < r->len) {
                g_free(sc->buf);
                sc->cap = MAX(r->len, 65536);
                sc->buf = g_malloc(sc->cap);
            }
            buf = sc->buf;
        }
        ret = buf ? 0 : -ENOMEM;
    }
    if (ret == 0) {
        ret = do_read(v, r, buf, sc->gaps);
    }
    if (ret == 0 && r->iovcnt != 1) {
        size_t done = 0;
        for (int i = 0; i < r->iovcnt && done < r->len; i++) {
            size_t n = MIN(r->iov[i].iov_len, r->len - done);
            memcpy(r->iov[i].iov_base, buf + done, n);
            done += n;
        }
    }
    g_free(heap);
    vreq_put(v, r);
    cb(cb_arg, ret);
}

/* ---- submission --------------------------------------------------------- */

static size_t iov_length(const struct iovec *iov, int iovcnt)
{
    size_t len = 0;

    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
    }
    return len;
}

static int submit_len(struct lsvd_volume *v, enum vreq_type type,
                      uint64_t offset, const struct iovec *iov, int iovcnt,
                      size_t len, lsvd_cb *cb, void *cb_arg)
{
    struct vreq *r;

    uint64_t size = vol_size(v);

    if (type != VREQ_FLUSH && type != VREQ_RESIZE &&
        (offset % LSVD_SECTOR_SIZE || len % LSVD_SECTOR_SIZE ||
         offset > size || len > size - offset || iovcnt < 0)) {
        return -EINVAL;
    }
    if ((type == VREQ_WRITE || type == VREQ_ZERO || type == VREQ_RESIZE) &&
        v->rdonly) {
        return -EROFS;
    }
    if (type != VREQ_FLUSH && type != VREQ_RESIZE && len == 0) {
        cb(cb_arg, 0);
        return 0;
    }
    switch (type) {
    case VREQ_READ:
        __atomic_fetch_add(&v->n_reads, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&v->n_read_bytes, len, __ATOMIC_RELAXED);
        break;
    case VREQ_WRITE:
        __atomic_fetch_add(&v->n_writes, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&v->n_write_bytes, len, __ATOMIC_RELAXED);
        break;
    case VREQ_ZERO:
        __atomic_fetch_add(&v->n_zeroes, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&v->n_zero_bytes, len, __ATOMIC_RELAXED);
        break;
    case VREQ_FLUSH:
        __atomic_fetch_add(&v->n_flushes, 1, __ATOMIC_RELAXED);
        break;
    default:
        break;
    }
    r = vreq_get(v);
    *r = (struct vreq){
        .next = NULL,
        .type = type, .offset = offset, .iov = iov, .iovcnt = iovcnt,
        .len = len, .cb = cb, .cb_arg = cb_arg,
    };
    if (type == VREQ_READ) {
        workers_push(v->readers, r);
    } else {
        g_async_queue_push(v->queue, r);
    }
    return 0;
}

static int submit(struct lsvd_volume *v, enum vreq_type type,
                  uint64_t offset, const struct iovec *iov, int iovcnt,
                  lsvd_cb *cb, void *cb_arg)
{
    return submit_len(v, type, offset, iov, iovcnt,
                      iov ? iov_length(iov, iovcnt) : 0, cb, cb_arg);
}

int lsvd_aio_write_zeroes(struct lsvd_volume *v, uint64_t offset,
                          uint64_t len, lsvd_cb *cb, void *cb_arg)
{
    if (len > SIZE_MAX) {
        return -EINVAL;
    }
    return submit_len(v, VREQ_ZERO, offset, NULL, 0, len, cb, cb_arg);
}

int lsvd_aio_read(struct lsvd_volume *v, uint64_t offset,
                  const struct iovec *iov, int iovcnt, lsvd_cb *cb,
                  void *cb_arg)
{
    return submit(v, VREQ_READ, offset, iov, iovcnt, cb, cb_arg);
}

int lsvd_aio_write(struct lsvd_volume *v, uint64_t offset,
                   const struct iovec *iov, int iovcnt, lsvd_cb *cb,
                   void *cb_arg)
{
    return submit(v, VREQ_WRITE, offset, iov, iovcnt, cb, cb_arg);
}

int lsvd_aio_flush(struct lsvd_volume *v, lsvd_cb *cb, void *cb_arg)
{
    return submit(v, VREQ_FLUSH, 0, NULL, 0, cb, cb_arg);
}

struct first_jpiece {
    uint64_t len, loc;
    bool mapped;
};

static int first_jpiece(void *arg, uint64_t lba G_GNUC_UNUSED, uint64_t len,
                        bool mapped, uint64_t loc)
{
    struct first_jpiece *p = arg;

    *p = (struct first_jpiece){ len, loc, mapped };
    return 1;
}

int lsvd_aio_resize(struct lsvd_volume *v, uint64_t size, lsvd_cb *cb,
                    void *cb_arg)
{
    if (!size_valid(size)) {
        return -EINVAL;
    }
    return submit_len(v, VREQ_RESIZE, size, NULL, 0, 0, cb, cb_arg);
}

int lsvd_extent(struct lsvd_volume *v, uint64_t offset, uint64_t max,
                uint64_t *len)
{
    struct first_jpiece p = { 0 };
    uint64_t size = vol_size(v), lba = offset / LSVD_SECTOR_SIZE, n;
    int kind;

    if (offset % LSVD_SECTOR_SIZE || offset >= size || max == 0) {
        return -EINVAL;
    }
    max = MIN(max, size - offset) / LSVD_SECTOR_SIZE;
    if (max == 0) {
        return -EINVAL;
    }
    g_rw_lock_reader_lock(&v->jmap_lock);
    extmap_lookup(v->jmap, lba, max, first_jpiece, &p);
    g_rw_lock_reader_unlock(&v->jmap_lock);
    if (p.mapped) {
        kind = (p.loc & LOC_ZERO) ? LSVD_EXTENT_ZERO : LSVD_EXTENT_DATA;
        n = p.len;
    } else {
        /* not in the journal for p.len sectors: the object map says */
        kind = objlog_extent_kind(v->ol, lba, p.len, &n);
    }
    *len = n * LSVD_SECTOR_SIZE;
    return kind;
}

/* ---- blocking wrappers -------------------------------------------------- */

struct waiter {
    GMutex m;
    GCond c;
    bool done;
    int ret;
};

static void wake(void *arg, int ret)
{
    struct waiter *w = arg;

    g_mutex_lock(&w->m);
    w->ret = ret;
    w->done = true;
    g_cond_signal(&w->c);
    g_mutex_unlock(&w->m);
}

static int wait_for(struct waiter *w, int submitted)
{
    if (submitted == 0) {
        g_mutex_lock(&w->m);
        while (!w->done) {
            g_cond_wait(&w->c, &w->m);
        }
        g_mutex_unlock(&w->m);
        submitted = w->ret;
    }
    g_mutex_clear(&w->m);
    g_cond_clear(&w->c);
    return submitted;
}

static void waiter_init(struct waiter *w)
{
    g_mutex_init(&w->m);
    g_cond_init(&w->c);
    w->done = false;
    w->ret = 0;
}

int lsvd_read(struct lsvd_volume *v, uint64_t offset, void *buf, size_t len)
{
    struct iovec iov = { buf, len };
    struct waiter w;

    waiter_init(&w);
    return wait_for(&w, lsvd_aio_read(v, offset, &iov, 1, wake, &w));
}

int lsvd_write(struct lsvd_volume *v, uint64_t offset, const void *buf,
               size_t len)
{
    struct iovec iov = { (void *)buf, len };
    struct waiter w;

    waiter_init(&w);
    return wait_for(&w, lsvd_aio_write(v, offset, &iov, 1, wake, &w));
}

int lsvd_write_zeroes(struct lsvd_volume *v, uint64_t offset, uint64_t len)
{
    struct waiter w;

    waiter_init(&w);
    return wait_for(&w, lsvd_aio_write_zeroes(v, offset, len, wake, &w));
}

int lsvd_flush(struct lsvd_volume *v)
{
    struct waiter w;

    waiter_init(&w);
    return wait_for(&w, lsvd_aio_flush(v, wake, &w));
}

int lsvd_resize(struct lsvd_volume *v, uint64_t size)
{
    struct waiter w;

    waiter_init(&w);
    return wait_for(&w, lsvd_aio_resize(v, size, wake, &w));
}

/* ---- open and close ----------------------------------------------------- */

/* Sealed batches read their data back from the journal. */
static int journal_source(void *arg, uint64_t off, void *buf, size_t len)
{
    return journal_read_blocks(arg, off, buf, len);
}

struct replay_ctx {
    struct lsvd_volume *v;
    uint64_t after_seq;         /* records up to here are in objects */
};

static int replay_record(void *arg, const struct rec_header *r,
                         const uint8_t *data, uint64_t data_off)
{
    struct replay_ctx *c = arg;
    struct lsvd_volume *v = c->v;
    bool batch = r->seq > c->after_seq;
    /* read and CRC-checked by replay: a batch may keep it, and then its
     * PUT need not read it back */
    struct iovec dv = { (void *)data, r->data_len };
    int ret;

    for (uint32_t i = 0; i < r->n_extents; i++) {
        const struct rec_extent *e = &r->extents[i];

        if (e->lba + e->sectors > vol_size(v) / LSVD_SECTOR_SIZE ||
            (r->type == REC_TYPE_ZERO && e->sectors > ZERO_EXT_MAX)) {
            lsvd_log(LSVD_LOG_ERROR, "volume '%s': journal record %" PRIu64
                     " at offset %" PRIu64 " is malformed", v->name, r->seq,
                     data_off - JNL_BLOCK);
            return -EIO;
        }
    }
    ret = map_record(v, r->type, r->extents, r->n_extents, data_off, r->seq,
                     batch, data ? &dv : NULL, 1, 0);
    if (ret == 0 && batch && r->type == REC_TYPE_WRITE) {
        objlog_batch_record(v->ol, data_off - JNL_BLOCK,
                            JNL_BLOCK + r->data_len, r->seq);
    }
    /* a journal of many batches replays into as many objects, not into
     * one as large as the journal */
    if (ret == 0 && batch && !v->rdonly && objlog_batch_full(v->ol, 1)) {
        int sret = objlog_seal(v->ol, false);

        if (sret < 0 && sret != -EAGAIN) {
            ret = sret;
        }
    }
    return ret;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define KEEPER_TICK_S 1
#define RCACHE_PERSIST_S 30         /* read cache map saved this often */
#define STATS_S 5                   /* the stats file, this often */

static void write_stats_file(struct lsvd_volume *v);

/* Something a stats file shows has changed since @last. */
static bool stats_changed(struct lsvd_volume *v, uint64_t *last)
{
    struct backend_counters bc;
    uint64_t sum;

    backend_get_counters(&v->be, &bc);
    sum = LOAD(v->n_reads) + LOAD(v->n_writes) + LOAD(v->n_zeroes) +
          LOAD(v->n_flushes) + bc.put + bc.get + bc.del + bc.list + bc.head;
    if (sum == *last) {
        return false;
    }
    *last = sum;
    return true;
}

/*
 * Housekeeping, once a second: the read cache map is saved every
 * RCACHE_PERSIST_S seconds if it changed, so that a restart, even after a
 * crash, does not refetch what the cache held.
 */
static gpointer keeper_thread(gpointer arg)
{
    struct lsvd_volume *v = arg;
    int64_t next_persist = g_get_monotonic_time() +
                           RCACHE_PERSIST_S * G_TIME_SPAN_SECOND;
    int64_t next_stats = 0;
    uint64_t last = UINT64_MAX;

    g_mutex_lock(&v->lock);
    while (!v->stopping) {
        int64_t now = g_get_monotonic_time();

        if (v->stats_path && now >= next_stats) {
            g_mutex_unlock(&v->lock);
            if (stats_changed(v, &last)) {
                write_stats_file(v);
            }
            g_mutex_lock(&v->lock);
            next_stats = now + STATS_S * G_TIME_SPAN_SECOND;
            continue;
        }
        if (now >= next_persist) {
            g_mutex_unlock(&v->lock);
            if (v->rc) {
                rcache_persist(v->rc);
            }
            g_mutex_lock(&v->lock);
            next_persist = now + RCACHE_PERSIST_S * G_TIME_SPAN_SECOND;
            continue;
        }
        g_cond_wait_until(&v->keeper_cond, &v->lock,
                          now + KEEPER_TICK_S * G_TIME_SPAN_SECOND);
    }
    g_mutex_unlock(&v->lock);
    return NULL;
}

static void volume_free(struct lsvd_volume *v)
{
    if (v->keeper) {
        g_mutex_lock(&v->lock);
        v->stopping = true;
        g_cond_signal(&v->keeper_cond);
        g_mutex_unlock(&v->lock);
        g_thread_join(v->keeper);
    }
    workers_stop(v->readers);
    if (v->stats_path && v->jthread) {
        update_stats(v);
        write_stats_file(v);        /* the final counts */
    }
    objlog_close(v->ol);
    rcache_close(v->rc);
    journal_close(v->jnl);
    extmap_free(v->jmap);
    super_free(&v->sb);
    backend_close(&v->be);
    if (v->queue) {
        g_async_queue_unref(v->queue);
    }
    g_rw_lock_clear(&v->jmap_lock);
    g_mutex_clear(&v->lock);
    while (v->pool) {
        struct vreq *r = v->pool;
        v->pool = r->next;
        g_free(r);
    }
    g_mutex_clear(&v->pool_lock);
    g_cond_clear(&v->keeper_cond);
    g_free(v->jmpath);
    g_free(v->stats_path);
    g_free(v->name);
    g_free(v);
}

int lsvd_open(const struct lsvd_config *cfg, const char *name, int flags,
              struct lsvd_volume **out, struct lsvd_err *err)
{
    struct lsvd_volume *v;
    struct replay_ctx rc;
    g_autofree char *jpath = NULL;
    uint64_t max_jseq = 0;
    bool reset, shared;
    int ret;

    ret = check_name(name, err);
    if (ret < 0) {
        return ret;
    }
    v = g_new0(struct lsvd_volume, 1);
    g_mutex_init(&v->lock);
    g_mutex_init(&v->pool_lock);
    g_cond_init(&v->keeper_cond);
    g_rw_lock_init(&v->jmap_lock);
    v->name = g_strdup(name);
    v->rdonly = flags & (LSVD_OPEN_RDONLY | LSVD_OPEN_SHARED);
    v->write_timeout_us = (int64_t)cfg->write_timeout_ms * 1000;
    v->batch_timeout_us = (int64_t)cfg->batch_timeout_ms * 1000;
    shared = flags & LSVD_OPEN_SHARED;
    v->jmap = extmap_new();

    /* the stack: backend -> journal -> object log -> replay */
    ret = backend_open(cfg, &v->be, err);
    if (ret < 0) {
        goto fail;
    }
    ret = objlog_read_super(&v->be, name, &v->sb, err);
    if (ret < 0) {
        goto fail;
    }
    v->size = v->sb.size;     /* before any thread starts */

    /* lock the journal before touching objects: one writer at a time */
    jpath = journal_path(cfg, name);
    if (!v->rdonly && g_mkdir_with_parents(cfg->cache_dir, 0700) < 0) {
        ret = lsvd_fail(err, -errno, "cannot create cache directory %s: %s",
                        cfg->cache_dir, g_strerror(errno));
        goto fail;
    }
    ret = journal_open(shared ? NULL : jpath, v->sb.uuid, cfg->cache_size,
                       v->rdonly, &v->jnl, err);
    if (ret < 0) {
        goto fail;
    }
    ret = objlog_open(&v->be, name, &v->sb, cfg->batch_size, PUT_DEPTH,
                      cfg->checkpoint_objects, v->rdonly, &v->ol, &max_jseq,
                      err);
    if (ret < 0) {
        goto fail;
    }
    objlog_set_source(v->ol, journal_source, v->jnl, cfg->copy_batches);
    if (cfg->read_cache_size > 0 && !shared) {
        g_autofree char *base = cache_base(cfg, name);

        /* a read-only open uses what the cache holds, if anything */
        ret = rcache_open(base, v->sb.uuid, cfg->read_cache_size,
                          cfg->read_block, v->rdonly, &v->rc,
                          v->rdonly ? NULL : err);
        if (ret < 0 && !v->rdonly) {
            goto fail;
        }
        if (ret == 0) {
            objlog_set_rcache(v->ol, v->rc, v->rdonly ? 0 : cfg->prefetch);
        }
    }
    v->jmpath = jmap_path(cfg, name);
    if (!shared) {
        load_jmap_ckpt(v, max_jseq);
    }
    rc = (struct replay_ctx){ v, max_jseq };
    ret = journal_replay(v->jnl, max_jseq, replay_record, &rc, &reset);
    if (ret < 0) {
        lsvd_fail(err, ret, "volume '%s': journal replay failed: %s", name,
                  g_strerror(-ret));
        goto fail;
    }
    if (reset) {
        extmap_clear(v->jmap);
    }
    if (!v->rdonly) {
        ret = journal_fence(v->jnl);
        if (ret < 0) {
            lsvd_fail(err, ret, "volume '%s': cannot write journal %s: %s",
                      name, jpath, g_strerror(-ret));
            goto fail;
        }
    }
    v->journal_bytes = journal_dirty_bytes(v->jnl, max_jseq);
    if (!v->rdonly) {
        v->stats_path = cache_file(cfg, name, "stats");
    }

    v->queue = g_async_queue_new();
    /* a read worker blocks on its GET: an S3 store gets as many as it
     * allows requests in flight, so that misses can use them all */
    v->readers = workers_start("lsvd-read", cfg->is_s3 ?
                               MAX(READ_THREADS, cfg->s3.max_requests) :
                               READ_THREADS, read_task, v);
    v->jthread = g_thread_try_new("lsvd-journal", journal_thread, v, NULL);
    v->keeper = g_thread_try_new("lsvd-keeper", keeper_thread, v, NULL);
    if (!v->readers || !v->jthread || !v->keeper) {
        ret = lsvd_fail(err, -EAGAIN, "cannot start the volume's threads");
        goto fail;
    }
    *out = v;
    return 0;

fail:
    volume_free(v);
    return ret;
}

int lsvd_close(struct lsvd_volume *v)
{
    struct vreq *stop = g_new0(struct vreq, 1);
    int ret;

    stop->type = VREQ_STOP;
    g_async_queue_push(v->queue, stop);
    g_thread_join(v->jthread);
    ret = v->close_ret;
    volume_free(v);
    return ret;
}

uint64_t lsvd_size(const struct lsvd_volume *v)
{
    return vol_size(v);
}

int lsvd_stat(struct lsvd_volume *v, struct lsvd_info *info)
{
    struct objlog_stats st;
    struct backend_counters bc;

    memset(info, 0, sizeof(*info));
    objlog_stats(v->ol, &st);
    info->size = vol_size(v);
    info->objects = st.objects;
    info->stored_bytes = st.stored_bytes;
    info->last_seq = st.last_seq;
    g_mutex_lock(&v->lock);
    info->journal_bytes = v->journal_bytes;
    g_mutex_unlock(&v->lock);

    info->reads = LOAD(v->n_reads);
    info->read_bytes = LOAD(v->n_read_bytes);
    info->writes = LOAD(v->n_writes);
    info->write_bytes = LOAD(v->n_write_bytes);
    info->zeroes = LOAD(v->n_zeroes);
    info->zero_bytes = LOAD(v->n_zero_bytes);
    info->flushes = LOAD(v->n_flushes);
    info->journal_size = journal_ring_size(v->jnl);
    info->journal_used = journal_used(v->jnl);

    backend_get_counters(&v->be, &bc);
    info->be_put = bc.put;
    info->be_put_bytes = bc.put_bytes;
    info->be_get = bc.get;
    info->be_get_bytes = bc.get_bytes;
    info->be_head = bc.head;
    info->be_delete = bc.del;
    info->be_list = bc.list;
    info->be_retries = bc.retries;
    info->be_errors = bc.errors;

    if (v->rc) {
        struct rcache_counters rc;

        rcache_counters(v->rc, &rc);
        info->rc_size = rc.n_slots * rc.block_size;
        info->rc_used = rc.used_slots * rc.block_size;
        info->rc_block = rc.block_size;
        info->rc_hits = rc.hits;
        info->rc_misses = rc.misses;
        info->rc_hit_bytes = rc.hit_bytes;
        info->rc_fills = rc.fills;
        info->rc_prefetched = rc.prefetched;
        info->rc_evictions = rc.evictions;
    }
    return 0;
}

uint32_t lsvd_checksum(const void *buf, size_t len)
{
    return lsvd_crc32c(0, buf, len);
}

char *lsvd_stats_path(const struct lsvd_config *cfg, const char *name)
{
    g_autofree char *p = cache_file(cfg, name, "stats");

    return strdup(p);
}

/*
 * The stats file (docs/format.md): "lsvd-stats 1", then one "key value"
 * line per counter, then "crc32c X" over everything before that line.
 * Written to a temporary file and renamed, without fsync: it is for
 * people, and a crash may lose the last few seconds of it.
 */
static void write_stats_file(struct lsvd_volume *v)
{
    struct lsvd_info i;
    g_autofree char *tmp = g_strconcat(v->stats_path, ".tmp", NULL);
    GString *s = g_string_new("lsvd-stats 1\n");

    lsvd_stat(v, &i);
#define F(name) g_string_append_printf(s, #name " %" PRIu64 "\n", i.name)
    g_string_append_printf(s, "volume %s\n", v->name);
    g_string_append_printf(s, "pid %d\n", (int)getpid());
    g_string_append_printf(s, "time %" PRId64 "\n",
                           g_get_real_time() / G_USEC_PER_SEC);
    F(size); F(objects); F(stored_bytes); F(journal_bytes); F(last_seq);
    F(reads); F(read_bytes); F(writes); F(write_bytes);
    F(zeroes); F(zero_bytes); F(flushes);
    F(journal_size); F(journal_used);
    F(be_put); F(be_put_bytes); F(be_get); F(be_get_bytes);
    F(be_head); F(be_delete); F(be_list); F(be_retries); F(be_errors);
    F(rc_size); F(rc_used); F(rc_block); F(rc_hits); F(rc_misses);
    F(rc_hit_bytes); F(rc_fills); F(rc_prefetched); F(rc_evictions);
#undef F
    g_string_append_printf(s, "crc32c %08x\n",
                           lsvd_crc32c(0, s->str, s->len));
    if (!g_file_set_contents(tmp, s->str, s->len, NULL) ||
        rename(tmp, v->stats_path) < 0) {
        g_unlink(tmp);
    }
    g_string_free(s, TRUE);
}

/* ---- volume management -------------------------------------------------- */

/* Delete every data object of @name, newest first, so that what remains
 * after a crash is still a prefix of the log. */
static int delete_objects(struct backend *be, const char *name,
                          struct lsvd_err *err)
{
    g_autofree char *prefix = g_strdup_printf("%s/", name);
    g_autoptr(GPtrArray) names = NULL;
    int ret = be->ops->list(be->be, prefix, &names);

    if (ret < 0) {
        return lsvd_fail(err, ret, "cannot list objects of '%s': %s", name,
                         g_strerror(-ret));
    }
    for (guint i = names->len; i-- > 0;) {
        const char *obj = g_ptr_array_index(names, i);
        uint64_t seq;

        if (objlog_parse_seq(obj + strlen(prefix), &seq) < 0) {
            continue;
        }
        ret = be->ops->del(be->be, obj);
        if (ret < 0 && ret != -ENOENT) {
            return lsvd_fail(err, ret, "cannot delete %s: %s", obj,
                             g_strerror(-ret));
        }
    }
    return 0;
}

int lsvd_create(const struct lsvd_config *cfg, const char *name,
                uint64_t size, struct lsvd_err *err)
{
    struct backend be = { 0 };
    struct super sb = { 0 };
    char sname[OBJ_NAME_MAX];
    g_autofree char *jpath = NULL;
    uint64_t osize;
    int ret;

    ret = check_name(name, err);
    if (ret < 0) {
        return ret;
    }
    if (!size_valid(size)) {
        return lsvd_fail(err, -EINVAL, "invalid size %" PRIu64 ": must be a "
                         "non-zero multiple of %d bytes, at most 512 TiB",
                         size, LSVD_SECTOR_SIZE);
    }
    ret = backend_open(cfg, &be, err);
    if (ret < 0) {
        return ret;
    }
    objlog_super_name(sname, name);
    ret = be.ops->head(be.be, sname, &osize);
    if (ret == 0) {
        ret = lsvd_fail(err, -EEXIST, "volume '%s' already exists", name);
        goto out;
    }
    if (ret != -ENOENT) {
        lsvd_fail(err, ret, "cannot check for volume '%s': %s", name,
                  g_strerror(-ret));
        goto out;
    }
    /* objects left by an interrupted removal belong to no volume */
    ret = delete_objects(&be, name, err);
    if (ret < 0) {
        goto out;
    }
    jpath = journal_path(cfg, name);
    if (unlink(jpath) < 0 && errno != ENOENT) {
        ret = lsvd_fail(err, -errno, "cannot remove stale journal %s: %s",
                        jpath, g_strerror(errno));
        goto out;
    }
    {
        g_autofree char *jm = jmap_path(cfg, name);
        unlink(jm);         /* its UUID would not match anyway */
    }

    ret = lsvd_uuid_generate(sb.uuid);
    if (ret < 0) {
        lsvd_fail(err, ret, "cannot generate a UUID");
        goto out;
    }
    sb.size = size;
    sb.created = time(NULL);
    ret = objlog_write_super(&be, name, &sb);
    if (ret < 0) {
        lsvd_fail(err, ret, "cannot write the superblock of '%s': %s", name,
                  g_strerror(-ret));
    }
out:
    backend_close(&be);
    return ret;
}

int lsvd_remove(const struct lsvd_config *cfg, const char *name,
                struct lsvd_err *err)
{
    struct backend be = { 0 };
    struct super sb = { 0 };
    struct journal *jnl = NULL;
    char sname[OBJ_NAME_MAX];
    g_autofree char *jpath = NULL;
    int ret;

    ret = check_name(name, err);
    if (ret < 0) {
        return ret;
    }
    ret = backend_open(cfg, &be, err);
    if (ret < 0) {
        return ret;
    }
    ret = objlog_read_super(&be, name, &sb, err);
    if (ret < 0) {
        goto out;
    }
    /* holding the journal lock keeps a writer from opening meanwhile */
    jpath = journal_path(cfg, name);
    if (g_file_test(jpath, G_FILE_TEST_EXISTS)) {
        ret = journal_open(jpath, sb.uuid, cfg->cache_size, false, &jnl, err);
        if (ret == -EINVAL || ret == -EIO) {
            /* another volume's journal, or one whose superblock cannot
             * be read: leave it (a new volume of this name replaces it) */
            jnl = NULL;
        } else if (ret < 0) {
            goto out;
        }
    }
    ret = delete_objects(&be, name, err);
    if (ret < 0) {
        goto out;
    }
    objlog_super_name(sname, name);
    ret = be.ops->del(be.be, sname);
    if (ret < 0) {
        lsvd_fail(err, ret, "cannot delete %s: %s", sname, g_strerror(-ret));
        goto out;
    }
    /* a writer always has a journal: without one, nobody has the volume
     * open and its other cache files can go too */
    if (jnl || !g_file_test(jpath, G_FILE_TEST_EXISTS)) {
        g_autofree char *jm = jmap_path(cfg, name);
        g_autofree char *base = cache_base(cfg, name);
        g_autofree char *st = cache_file(cfg, name, "stats");

        rcache_remove(base);
        unlink(st);
        unlink(jm);
        if (jnl) {
            unlink(jpath);
        }
    }
out:
    journal_close(jnl);
    super_free(&sb);
    backend_close(&be);
    return ret;
}

int lsvd_list(const struct lsvd_config *cfg, char ***out,
              struct lsvd_err *err)
{
    struct backend be = { 0 };
    g_autoptr(GPtrArray) names = NULL;
    GPtrArray *vols;
    int ret;

    ret = backend_open(cfg, &be, err);
    if (ret < 0) {
        return ret;
    }
    ret = be.ops->list(be.be, "", &names);
    if (ret < 0) {
        backend_close(&be);
        return lsvd_fail(err, ret, "cannot list the store: %s",
                         g_strerror(-ret));
    }
    vols = g_ptr_array_new();
    for (guint i = 0; i < names->len; i++) {
        const char *n = g_ptr_array_index(names, i);
        size_t len = strlen(n);
        char sname[OBJ_NAME_MAX];
        g_autofree char *vol = NULL;
        uint64_t sz;

        if (len < 2 || n[len - 1] != '/') {
            continue;
        }
        vol = g_strndup(n, len - 1);
        if (!lsvd_name_valid(vol)) {
            continue;
        }
        objlog_super_name(sname, vol);
        if (be.ops->head(be.be, sname, &sz) == 0) {
            g_ptr_array_add(vols, g_steal_pointer(&vol));
        }
    }
    g_ptr_array_add(vols, NULL);
    *out = (char **)g_ptr_array_free(vols, FALSE);
    backend_close(&be);
    return 0;
}

void lsvd_free_names(char **names)
{
    g_strfreev(names);
}
