/*
 * journal.c - the write-back journal ring on a cache file, written with
 * io_uring and O_DIRECT.  See journal.h for the layout, the record states
 * and the invariants.
 */
#include "journal.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#define ROUND_BUF (8u << 20)        /* group-commit buffer */
#define MAX_SEGS 4                  /* write requests per round */
#define MERGE_MAX (1u << 20)        /* data of a record that writes join */

struct seg {
    uint64_t off;                   /* file offset */
    size_t buf_off;                 /* where in rbuf */
    size_t len;
};

struct journal {
    int fd;                 /* writes (O_DIRECT when possible); -1: none */
    int rfd;                /* buffered reads */
    char *path;
    bool rdonly;
    uint8_t uuid[LSVD_UUID_LEN];
    struct jnl_super sb;    /* the newer copy, as on disk */
    struct jnl_super copy[2];   /* blocks 0 and 1, as on disk */

    uint64_t head;          /* byte offset of the next record */
    uint64_t next_seq;
    uint64_t used;          /* bytes of records in the ring */
    uint64_t total;         /* bytes ever appended (struct jrec.cum) */
    uint64_t last_data_seq; /* newest WRITE or ZERO record */
    bool resumed;           /* records taken from a map checkpoint */
    bool copy_damaged;      /* a superblock copy needs rewriting */

    /* the records in the ring, oldest first: a circular array */
    struct jrec *recs;
    size_t rec_first, rec_count, rec_cap;

    /* the round being prepared */
    uint8_t *rbuf;          /* aligned to JNL_BLOCK */
    size_t rcap, rlen;
    struct seg segs[MAX_SEGS];
    int nsegs;
    /*
     * The round's last record, if a WRITE that later writes of the round
     * may join (one header for many small writes halves the bytes a 4 KiB
     * write costs): its header is encoded, with the CRC over all its data,
     * when the next record is prepared or the round is submitted.
     */
    bool open;
    size_t open_buf;                /* its header's offset in rbuf */
    uint64_t open_off;              /* and in the file */
    size_t open_bytes;              /* its extents' bytes (unpadded) */
    struct rec_header open_r;

    struct io_uring ring;
    bool have_ring;
    bool direct;            /* fd is O_DIRECT */
    uint8_t *sbbuf;         /* aligned block for superblock writes */
};

/* ---- small I/O helpers ------------------------------------------------- */

static uint8_t *alloc_aligned(size_t len)
{
    void *p = NULL;

    if (posix_memalign(&p, JNL_BLOCK, len) != 0) {
        return NULL;
    }
    return p;
}

/*
 * The superblock has two copies, in blocks 0 and 1, each with a generation
 * number; the newer whole one is the superblock.  Each copy is moved (to
 * the oldest live record) before the ring overwrites the record it names,
 * so both always name an intact record: a write torn by a crash, or a copy
 * damaged later, leaves the other one usable.
 */
static int write_slot(struct journal *j, int slot)
{
    int ret;

    j->sb.gen = MAX(j->copy[0].gen, j->copy[1].gen) + 1;
    jnl_super_encode(&j->sb, j->sbbuf);
    ret = lsvd_pwrite_all(j->fd, j->sbbuf, JNL_BLOCK, slot * JNL_BLOCK);
    if (ret == 0 && fdatasync(j->fd) < 0) {
        ret = -errno;
    }
    if (ret == 0) {
        j->copy[slot] = j->sb;
    }
    return ret;
}

/* Write both copies, older first. */
static int write_super(struct journal *j)
{
    int older = j->copy[0].gen <= j->copy[1].gen ? 0 : 1;
    int ret = write_slot(j, older);

    return ret < 0 ? ret : write_slot(j, !older);
}

/* ---- the record ring --------------------------------------------------- */

static struct jrec *rec_at(struct journal *j, size_t i)
{
    return &j->recs[(j->rec_first + i) % j->rec_cap];
}

static struct jrec *rec_push(struct journal *j)
{
    if (j->rec_count == j->rec_cap) {
        size_t cap = MAX(j->rec_cap * 2, 1024);
        struct jrec *n = g_new(struct jrec, cap);

        for (size_t i = 0; i < j->rec_count; i++) {
            n[i] = *rec_at(j, i);
        }
        g_free(j->recs);
        j->recs = n;
        j->rec_cap = cap;
        j->rec_first = 0;
    }
    j->rec_count++;
    return rec_at(j, j->rec_count - 1);
}

static void rec_set(struct journal *j, struct jrec *r, uint64_t seq,
                    uint64_t off, uint64_t len, uint16_t type,
                    const struct rec_extent *ext, uint32_t n)
{
    j->used += len;
    j->total += len;
    r->cum = j->total;
    if (type == REC_TYPE_WRITE || type == REC_TYPE_ZERO) {
        j->last_data_seq = seq;
    }
    r->seq = seq;
    r->off = off;
    r->len = len;
    r->type = type;
    r->n_extents = n;
    r->extents = NULL;
    if (n == 1) {
        r->ext0 = ext[0];
    } else if (n > 1) {
        r->extents = g_memdup2(ext, n * sizeof(*ext));
    }
}

/* Record @r (the newest) grows by @extra bytes and extents @ext[0..n). */
static void rec_extend(struct journal *j, struct jrec *r, uint64_t extra,
                       const struct rec_extent *ext, uint32_t n)
{
    struct rec_extent *e;

    if (r->n_extents == 1) {
        e = g_new(struct rec_extent, 1 + n);
        e[0] = r->ext0;
    } else {
        e = g_renew(struct rec_extent, r->extents, r->n_extents + n);
    }
    memcpy(e + r->n_extents, ext, n * sizeof(*e));
    r->extents = e;
    r->n_extents += n;
    r->len += extra;
    j->used += extra;
    j->total += extra;
    r->cum = j->total;
}

static void rec_free(struct jrec *r)
{
    if (r->n_extents > 1) {
        g_free(r->extents);
    }
}

/* ---- open and close ---------------------------------------------------- */

/* Read both copies of the superblock and take the newer whole one. */
static int read_super(struct journal *j)
{
    uint8_t *b = g_malloc(2 * JNL_BLOCK);
    struct jnl_super copy[2];
    int ret[2];

    if (lsvd_pread_all(j->rfd, b, JNL_BLOCK, 0) < 0) {
        g_free(b);
        return -EINVAL;
    }
    ret[0] = jnl_super_parse(b, JNL_BLOCK, &copy[0]);
    ret[1] = lsvd_pread_all(j->rfd, b + JNL_BLOCK, JNL_BLOCK, JNL_BLOCK) < 0 ?
             -EINVAL : jnl_super_parse(b + JNL_BLOCK, JNL_BLOCK, &copy[1]);
    g_free(b);
    if (ret[0] < 0 && ret[1] < 0) {
        return ret[0];
    }
    if (ret[0] < 0 || ret[1] < 0) {
        lsvd_log(LSVD_LOG_WARNING, "journal %s: superblock copy %d is "
                 "damaged (%s); using the other", j->path, ret[0] < 0 ? 0 : 1,
                 g_strerror(-(ret[0] < 0 ? ret[0] : ret[1])));
    }
    j->sb = ret[1] < 0 || (ret[0] == 0 && copy[0].gen > copy[1].gen) ?
            copy[0] : copy[1];
    /* a damaged copy counts as the newer one's twin until rewritten */
    j->copy[0] = ret[0] < 0 ? j->sb : copy[0];
    j->copy[1] = ret[1] < 0 ? j->sb : copy[1];
    j->copy_damaged = ret[0] < 0 || ret[1] < 0;
    return 0;
}

/* True for a journal file that is empty or whose superblock block is all
 * zeros: a creation that did not get as far as the superblock. */
static bool never_written(int fd, off_t size)
{
    uint8_t *b;
    bool zero = true;

    if (size == 0) {
        return true;
    }
    if (size < JNL_BLOCK) {
        return false;
    }
    b = g_malloc(JNL_BLOCK);
    if (lsvd_pread_all(fd, b, JNL_BLOCK, 0) < 0) {
        zero = false;
    }
    for (size_t i = 0; i < JNL_BLOCK && zero; i++) {
        zero = b[i] == 0;
    }
    g_free(b);
    return zero;
}

int journal_open(const char *path, const uint8_t uuid[LSVD_UUID_LEN],
                 uint64_t size, bool rdonly, struct journal **out,
                 struct lsvd_err *err)
{
    struct journal *j = g_new0(struct journal, 1);
    struct stat st;
    int ret;

    j->fd = j->rfd = -1;
    j->path = g_strdup(path ? path : "(none)");
    j->rdonly = rdonly;
    memcpy(j->uuid, uuid, LSVD_UUID_LEN);
    j->sbbuf = alloc_aligned(JNL_BLOCK);
    j->next_seq = 1;

    if (!path && rdonly) {
        *out = j;               /* a shared open: no journal at all */
        return 0;
    }
    j->rfd = open(path, (rdonly ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC,
                  0600);
    if (j->rfd < 0) {
        if (errno == ENOENT && rdonly) {
            *out = j;
            return 0;
        }
        ret = lsvd_fail(err, -errno, "cannot open journal %s: %s", path,
                        g_strerror(errno));
        goto fail;
    }
    /* client reads of journal data are small and random: no readahead
     * into the pages ahead of the head, which the next writes overwrite */
    (void)posix_fadvise(j->rfd, 0, 0, POSIX_FADV_RANDOM);
    if (flock(j->rfd, (rdonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        ret = errno == EWOULDBLOCK ?
              lsvd_fail(err, -EBUSY, "volume is in use (journal %s is "
                        "locked: the volume is open elsewhere)", path) :
              lsvd_fail(err, -errno, "cannot lock journal %s: %s", path,
                        g_strerror(errno));
        goto fail;
    }
    if (!rdonly) {
        j->fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
        j->direct = j->fd >= 0;
        if (j->fd < 0 && errno == EINVAL) {
            j->fd = open(path, O_RDWR | O_CLOEXEC);   /* e.g. tmpfs */
        }
        if (j->fd < 0) {
            ret = lsvd_fail(err, -errno, "cannot open journal %s: %s", path,
                            g_strerror(errno));
            goto fail;
        }
    }
    if (fstat(j->rfd, &st) < 0) {
        ret = lsvd_fail(err, -errno, "cannot stat %s", path);
        goto fail;
    }

    if (never_written(j->rfd, st.st_size) && rdonly) {
        /* creation was interrupted before anything was written: no
         * records, as if there were no journal */
        close(j->rfd);
        j->rfd = -1;
        *out = j;
        return 0;
    }
    if (never_written(j->rfd, st.st_size)) {
        /* a new journal (or one whose creation was interrupted before its
         * superblock was written, so that it holds no records): allocate
         * the whole ring now, so that writes never extend the file */
        size = ROUND_UP(MAX(size, 64ULL * JNL_BLOCK), JNL_BLOCK);
        ret = posix_fallocate(j->rfd, 0, size);
        if (ret == EOPNOTSUPP) {
            /* no way to allocate here: a sparse ring is the best we have */
            ret = ftruncate(j->rfd, size) < 0 ? -errno : 0;
        } else {
            /* ENOSPC above all: a sparse ring would fail writes later */
            ret = -ret;
        }
        memcpy(j->sb.uuid, uuid, LSVD_UUID_LEN);
        j->sb.start_seq = 1;
        j->sb.data_start = 2 * JNL_BLOCK;     /* after both copies */
        j->sb.tail_off = 2 * JNL_BLOCK;
        j->sb.gen = 0;
        j->sb.size = size;
        if (ret == 0) {
            ret = write_super(j);
        }
        if (ret < 0) {
            lsvd_fail(err, ret, "cannot initialise journal %s: %s", path,
                      g_strerror(-ret));
            goto fail;
        }
    } else {
        ret = read_super(j);
        if (ret < 0) {
            lsvd_fail(err, -EIO, "journal %s: bad superblock (%s)", path,
                      ret == -EIO ? "CRC mismatch" :
                      g_strerror(ret == -ENODATA ? EINVAL : -ret));
            ret = -EIO;
            goto fail;
        }
        if (memcmp(j->sb.uuid, uuid, LSVD_UUID_LEN) != 0) {
            ret = lsvd_fail(err, -EINVAL, "journal %s belongs to another "
                            "volume", path);
            goto fail;
        }
        if ((uint64_t)st.st_size < j->sb.size) {
            ret = lsvd_fail(err, -EIO, "journal %s is shorter than its "
                            "superblock says", path);
            goto fail;
        }
    }
    if (j->copy_damaged && !rdonly) {
        /* both copies whole again before the ring moves on */
        ret = write_super(j);
        if (ret < 0) {
            lsvd_fail(err, ret, "cannot write journal %s: %s", path,
                      g_strerror(-ret));
            goto fail;
        }
    }
    j->head = j->sb.tail_off;
    j->next_seq = j->sb.start_seq;

    if (!rdonly) {
        j->rcap = ROUND_BUF;
        j->rbuf = alloc_aligned(j->rcap);
        if (!j->rbuf) {
            ret = lsvd_fail(err, -ENOMEM, "out of memory");
            goto fail;
        }
        j->have_ring = io_uring_queue_init(16, &j->ring, 0) == 0;
    }
    *out = j;
    return 0;

fail:
    journal_close(j);
    return ret;
}

void journal_close(struct journal *j)
{
    if (!j) {
        return;
    }
    while (j->rec_count > 0) {
        rec_free(rec_at(j, 0));
        j->rec_first = (j->rec_first + 1) % j->rec_cap;
        j->rec_count--;
    }
    if (j->have_ring) {
        io_uring_queue_exit(&j->ring);
    }
    if (j->fd >= 0) {
        close(j->fd);
    }
    if (j->rfd >= 0) {
        close(j->rfd);
    }
    g_free(j->recs);
    free(j->rbuf);
    free(j->sbbuf);
    g_free(j->path);
    g_free(j);
}

/* ---- replay ------------------------------------------------------------ */

/*
 * More than the number of records the ring can hold: no record in the
 * ring, however stale, has a sequence number this far past the newest
 * one replay found.
 */
static uint64_t ring_records(const struct journal *j)
{
    return (j->sb.size - j->sb.data_start) / JNL_BLOCK + 16;
}

int journal_replay(struct journal *j, uint64_t after_seq,
                   journal_replay_fn *fn, void *arg, bool *reset)
{
    const uint64_t start = j->sb.data_start, end = j->sb.size;
    uint64_t off = j->resumed ? j->head : j->sb.tail_off;
    uint64_t seq = j->resumed ? j->next_seq : j->sb.start_seq;
    uint64_t scanned = j->used;
    uint8_t *hdr = g_malloc(JNL_BLOCK), *data = NULL;
    struct rec_header r;
    int ret = 0;

    *reset = false;
    while (j->rfd >= 0 && scanned < end - start) {
        uint64_t len;

        if (lsvd_pread_all(j->rfd, hdr, JNL_BLOCK, off) < 0 ||
            rec_header_parse(hdr, JNL_BLOCK, &r) < 0 || r.seq != seq ||
            memcmp(r.uuid, j->uuid, LSVD_UUID_LEN) != 0) {
            break;          /* the end of the log */
        }
        len = JNL_BLOCK + r.data_len;
        if (len > end - off ||
            (r.type == REC_TYPE_PAD && off + len != end)) {
            break;
        }
        if (r.type == REC_TYPE_WRITE) {
            uint8_t *p = g_try_realloc(data, MAX(r.data_len, 1));
            if (!p) {
                ret = -ENOMEM;
                break;
            }
            data = p;
            if (lsvd_pread_all(j->rfd, data, r.data_len, off + JNL_BLOCK) < 0) {
                break;
            }
        }
        if (!rec_crc_ok(hdr, &r, data)) {
            /* a torn last write, or corruption: nothing after it is used */
            lsvd_log(LSVD_LOG_WARNING, "journal %s: record %" PRIu64
                     " at offset %" PRIu64 " fails its CRC; replay stops "
                     "there", j->path, seq, off);
            break;
        }
        rec_set(j, rec_push(j), seq, off, len, r.type, r.extents,
                r.n_extents);
        if (r.type == REC_TYPE_WRITE || r.type == REC_TYPE_ZERO) {
            ret = fn(arg, &r, data, off + JNL_BLOCK);
            if (ret < 0) {
                break;
            }
        }
        scanned += len;
        off += len;
        if (off == end) {
            off = start;
        }
        seq = r.type == REC_TYPE_FENCE ? r.next_seq : seq + 1;
    }
    g_free(hdr);
    g_free(data);
    if (ret < 0) {
        return ret;
    }
    j->head = off;
    j->next_seq = seq;
    if (seq <= after_seq) {
        /*
         * Everything here is older than the objects (the cache was
         * reset or lost records): start a fresh ring numbered after the
         * object log, so that sequence numbers stay consecutive.
         */
        while (j->rec_count > 0) {
            rec_free(rec_at(j, 0));
            j->rec_first = (j->rec_first + 1) % j->rec_cap;
            j->rec_count--;
        }
        j->used = 0;
        j->next_seq = MAX(after_seq + 1, seq + ring_records(j));
        *reset = true;
        if (!j->rdonly && j->fd >= 0) {
            j->sb.start_seq = j->next_seq;
            j->sb.tail_off = j->head;
            return write_super(j);
        }
    }
    return 0;
}

/* ---- writing ----------------------------------------------------------- */

bool journal_pending(const struct journal *j)
{
    return j->rlen > 0;
}

uint64_t journal_used(const struct journal *j)
{
    return j->used;
}

uint64_t journal_last_data_seq(const struct journal *j)
{
    return j->last_data_seq;
}

uint64_t journal_ring_size(const struct journal *j)
{
    return j->sb.size - j->sb.data_start;
}

uint64_t journal_appended(const struct journal *j)
{
    return j->total;
}

void journal_export(const struct journal *j, struct jmap_ckpt *c)
{
    GArray *exts = g_array_new(FALSE, FALSE, sizeof(struct rec_extent));

    g_assert(j->rlen == 0);
    c->sb_start_seq = j->sb.start_seq;
    c->sb_tail_off = j->sb.tail_off;
    c->next_seq = j->next_seq;
    c->next_off = j->head;
    c->upto_seq = j->last_data_seq;
    c->n_recs = j->rec_count;
    c->recs = g_new(struct jmap_rec, j->rec_count + 1);
    for (size_t i = 0; i < j->rec_count; i++) {
        const struct jrec *r = &j->recs[(j->rec_first + i) % j->rec_cap];

        c->recs[i] = (struct jmap_rec){ r->seq, r->off, r->len, r->type,
                                        r->n_extents };
        if (r->n_extents == 1) {
            g_array_append_val(exts, r->ext0);
        } else if (r->n_extents > 1) {
            g_array_append_vals(exts, r->extents, r->n_extents);
        }
    }
    c->n_exts = exts->len;
    c->exts = (struct rec_extent *)g_array_free(exts, FALSE);
}

/* Is record @r of a journal map checkpoint in the ring, as it says? */
static bool ring_holds(struct journal *j, const struct jmap_rec *r)
{
    uint8_t *hdr = alloc_aligned(JNL_BLOCK);
    struct rec_header h;
    bool ok;

    ok = hdr && lsvd_pread_all(j->rfd, hdr, JNL_BLOCK, r->off) == 0 &&
         rec_header_parse(hdr, JNL_BLOCK, &h) == 0 && h.seq == r->seq &&
         h.type == r->type && JNL_BLOCK + h.data_len == r->len &&
         memcmp(h.uuid, j->uuid, LSVD_UUID_LEN) == 0;
    free(hdr);
    return ok;
}

int journal_resume(struct journal *j, const struct jmap_ckpt *c)
{
    const uint64_t start = j->sb.data_start, end = j->sb.size;
    uint64_t off = c->n_recs ? c->recs[0].off : c->next_off, bytes = 0;
    const struct rec_extent *e = c->exts;

    /* the checkpoint belongs to this superblock, so none of its records
     * has been overwritten since (the superblock moves first) */
    if (j->rec_count || j->rfd < 0 || c->sb_start_seq != j->sb.start_seq ||
        c->sb_tail_off != j->sb.tail_off ||
        c->next_off < start || c->next_off >= end) {
        return -EINVAL;
    }
    /* the records lie one after another round the ring, up to next_off */
    for (uint64_t i = 0; i < c->n_recs; i++) {
        const struct jmap_rec *r = &c->recs[i];

        if (r->off != off || r->off < start || r->len > end - r->off ||
            (bytes += r->len) > end - start) {
            return -EINVAL;
        }
        off = r->off + r->len == end ? start : r->off + r->len;
    }
    if (off != c->next_off || (c->n_recs && c->recs[0].seq < c->sb_start_seq)) {
        return -EINVAL;
    }
    /* a journal made afresh (the file deleted) can match the superblock
     * fields: the ring must hold the checkpoint's records themselves */
    if (c->n_recs && (!ring_holds(j, &c->recs[0]) ||
                      !ring_holds(j, &c->recs[c->n_recs - 1]))) {
        return -EINVAL;
    }
    for (uint64_t i = 0; i < c->n_recs; i++) {
        const struct jmap_rec *r = &c->recs[i];

        rec_set(j, rec_push(j), r->seq, r->off, r->len, r->type, e,
                r->n_extents);
        e += r->n_extents;
    }
    j->head = c->next_off;
    j->next_seq = c->next_seq;
    j->resumed = true;
    return 0;
}

uint64_t journal_dirty_bytes(const struct journal *j, uint64_t durable_seq)
{
    size_t lo = 0, hi = j->rec_count;

    if (j->rec_count == 0 || durable_seq >= j->last_data_seq) {
        return 0;
    }
    /* the last record with seq <= durable_seq (seqs only grow, but jump
     * at a FENCE, so search) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (j->recs[(j->rec_first + mid) % j->rec_cap].seq <= durable_seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return j->used;
    }
    return j->total - j->recs[(j->rec_first + lo - 1) % j->rec_cap].cum;
}

uint64_t journal_last_seq(const struct journal *j)
{
    return j->next_seq - 1;
}

/* Place @len bytes for file offset @off at the end of the round buffer. */
static uint8_t *round_append(struct journal *j, uint64_t off, size_t len)
{
    struct seg *s = j->nsegs ? &j->segs[j->nsegs - 1] : NULL;
    uint8_t *p = j->rbuf + j->rlen;

    if (s && s->off + s->len == off) {
        s->len += len;
    } else {
        s = &j->segs[j->nsegs++];
        s->off = off;
        s->buf_off = j->rlen;
        s->len = len;
    }
    j->rlen += len;
    return p;
}

/*
 * Before the ring overwrites [off, off+len): if that holds the record a
 * superblock copy names as the start of replay, move that copy to the
 * oldest live record (or to @first, the record about to be written, when
 * none is live).
 */
static int guard_super(struct journal *j, uint64_t off, uint64_t len,
                       uint64_t first_off, uint64_t first_seq)
{
    if (j->rec_count > 0) {
        struct jrec *oldest = rec_at(j, 0);
        first_off = oldest->off;
        first_seq = oldest->seq;
    }
    for (int slot = 0; slot < 2; slot++) {
        const struct jnl_super *c = &j->copy[slot];
        int ret;

        if (c->tail_off < off || c->tail_off >= off + len ||
            (c->tail_off == first_off && c->start_seq == first_seq)) {
            continue;
        }
        j->sb.tail_off = first_off;
        j->sb.start_seq = first_seq;
        ret = write_slot(j, slot);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* Is there room for a record of @size bytes, after a PAD of @pad bytes? */
static bool ring_fits(struct journal *j, uint64_t size, uint64_t pad)
{
    const uint64_t start = j->sb.data_start, end = j->sb.size;
    uint64_t tail;

    if (j->used + pad + size > end - start) {
        return false;
    }
    if (j->rec_count == 0) {
        return true;
    }
    tail = rec_at(j, 0)->off;
    if (j->head >= tail) {
        /* free: [head, end) and [start, tail) */
        return pad == 0 || start + size <= tail;
    }
    /* free: [head, tail) */
    return pad == 0 && j->head + size <= tail;
}

/* Encode the open record's header: no more writes join it. */
static void close_open(struct journal *j)
{
    uint8_t *p = j->rbuf + j->open_buf;
    struct iovec dv = { p + JNL_BLOCK, j->open_r.data_len };

    if (j->open) {
        rec_header_encode(&j->open_r, p, &dv, 1);
        j->open = false;
    }
}

/*
 * Add a WRITE of @len bytes covering @ext[0..n) to the open record, if it
 * has room for it and the ring room after it.  False: prepare a record.
 */
static bool join_open(struct journal *j, const struct rec_extent *ext,
                      uint32_t n, const struct iovec *iov, int iovcnt,
                      size_t skip, size_t len, uint64_t *seq,
                      uint64_t *data_off)
{
    struct rec_header *r = &j->open_r;
    uint64_t old_size = journal_record_size(j->open_bytes);
    uint64_t new_size = journal_record_size(j->open_bytes + len);
    uint64_t extra = new_size - old_size;
    uint8_t *d;

    if (!j->open || r->n_extents + n > REC_MAX_EXTENTS ||
        j->open_bytes + len > MERGE_MAX ||
        j->open_off + new_size > j->sb.size ||      /* no wrap inside */
        j->rlen + extra > j->rcap ||
        (extra > 0 && (j->head != j->open_off + old_size ||
                       !ring_fits(j, extra, 0) ||
                       guard_super(j, j->head, extra, 0, 0) < 0))) {
        return false;
    }
    if (extra > 0) {
        round_append(j, j->head, extra);    /* extends the last segment */
    }
    d = j->rbuf + j->open_buf + JNL_BLOCK;
    iov_to_buf(iov, iovcnt, skip, d + j->open_bytes, len);
    memset(d + j->open_bytes + len, 0, new_size - JNL_BLOCK -
           (j->open_bytes + len));
    memcpy(&r->extents[r->n_extents], ext, n * sizeof(*ext));
    r->n_extents += n;
    r->data_len = new_size - JNL_BLOCK;
    rec_extend(j, rec_at(j, j->rec_count - 1), extra, ext, n);
    *seq = r->seq;
    *data_off = j->open_off + JNL_BLOCK + j->open_bytes;
    j->open_bytes += len;
    j->head = j->open_off + new_size == j->sb.size ? j->sb.data_start :
              j->open_off + new_size;
    return true;
}

int journal_prepare(struct journal *j, uint16_t type,
                    const struct rec_extent *ext, uint32_t n,
                    const struct iovec *iov, int iovcnt, size_t skip,
                    size_t len, uint64_t *seq, uint64_t *data_off)
{
    const uint64_t start = j->sb.data_start, end = j->sb.size;
    uint64_t size = journal_record_size(len), pad = 0, pos = j->head;
    struct rec_header r;
    uint8_t *p;
    int ret;

    if (j->rdonly || j->fd < 0) {
        return -EROFS;
    }
    if (n > REC_MAX_EXTENTS || len > JOURNAL_MAX_RECORD ||
        size + JNL_BLOCK > end - start) {
        return -EFBIG;
    }
    if (type == REC_TYPE_WRITE &&
        join_open(j, ext, n, iov, iovcnt, skip, len, seq, data_off)) {
        return 0;
    }
    close_open(j);
    if (pos + size > end) {
        pad = end - pos;
        pos = start;
    }
    if (!ring_fits(j, size, pad)) {
        return -ENOSPC;
    }
    /* room in the round buffer */
    if (j->rlen + size + (pad ? JNL_BLOCK : 0) > j->rcap ||
        j->nsegs + (pad ? 2 : 1) > MAX_SEGS) {
        if (j->rlen > 0) {
            return -EAGAIN;
        }
        uint8_t *nb = alloc_aligned(size + JNL_BLOCK);
        if (!nb) {
            return -ENOMEM;
        }
        free(j->rbuf);
        j->rbuf = nb;
        j->rcap = size + JNL_BLOCK;
    }

    if (pad) {
        ret = guard_super(j, j->head, pad, j->head, j->next_seq);
        if (ret < 0) {
            return ret;
        }
        memset(&r, 0, sizeof(r));
        r.type = REC_TYPE_PAD;
        memcpy(r.uuid, j->uuid, LSVD_UUID_LEN);
        r.seq = j->next_seq;
        r.data_len = pad - JNL_BLOCK;
        rec_header_encode(&r, round_append(j, j->head, JNL_BLOCK), NULL, 0);
        rec_set(j, rec_push(j), j->next_seq++, j->head, pad, REC_TYPE_PAD,
                NULL, 0);
        j->head = start;
    }
    ret = guard_super(j, pos, size, pos, j->next_seq);
    if (ret < 0) {
        return ret;
    }

    r.type = type;
    r.n_extents = n;
    memcpy(r.uuid, j->uuid, LSVD_UUID_LEN);
    r.seq = j->next_seq;
    r.data_len = size - JNL_BLOCK;
    memcpy(r.extents, ext, n * sizeof(*ext));
    p = round_append(j, pos, size);
    /* the data, copied from the caller's iovec and zero-padded */
    iov_to_buf(iov, iovcnt, skip, p + JNL_BLOCK, len);
    memset(p + JNL_BLOCK + len, 0, size - JNL_BLOCK - len);
    if (type == REC_TYPE_WRITE) {
        j->open = true;                 /* encoded by close_open() */
        j->open_buf = p - j->rbuf;
        j->open_off = pos;
        j->open_bytes = len;
        j->open_r = r;
    } else {
        rec_header_encode(&r, p, NULL, 0);
    }
    rec_set(j, rec_push(j), j->next_seq, pos, size, type, ext, n);
    *seq = j->next_seq++;
    *data_off = pos + JNL_BLOCK;
    j->head = pos + size == end ? start : pos + size;
    return 0;
}

int journal_fence(struct journal *j)
{
    const uint64_t end = j->sb.size;
    uint64_t pos = j->head;         /* a block always fits before end */
    struct rec_header r;
    int ret;

    if (j->rdonly || j->fd < 0) {
        return -EROFS;
    }
    close_open(j);
    if (!ring_fits(j, JNL_BLOCK, 0)) {
        return 0;       /* full: nothing stale can follow the head */
    }
    ret = guard_super(j, pos, JNL_BLOCK, pos, j->next_seq);
    if (ret < 0) {
        return ret;
    }
    memset(&r, 0, sizeof(r));
    r.type = REC_TYPE_FENCE;
    memcpy(r.uuid, j->uuid, LSVD_UUID_LEN);
    r.seq = j->next_seq;
    r.next_seq = j->next_seq + ring_records(j);
    rec_header_encode(&r, round_append(j, pos, JNL_BLOCK), NULL, 0);
    rec_set(j, rec_push(j), r.seq, pos, JNL_BLOCK, REC_TYPE_FENCE, NULL, 0);
    j->next_seq = r.next_seq;
    j->head = pos + JNL_BLOCK == end ? j->sb.data_start : pos + JNL_BLOCK;
    return journal_submit(j, true);
}

int journal_submit(struct journal *j, bool flush)
{
    int res[MAX_SEGS + 1];
    unsigned nreq = 0;
    int ret = 0;

    if (j->rdonly || j->fd < 0) {
        return flush ? 0 : -EROFS;
    }
    close_open(j);
    if (!j->have_ring) {
        for (int i = 0; i < j->nsegs && ret == 0; i++) {
            ret = lsvd_pwrite_all(j->fd, j->rbuf + j->segs[i].buf_off,
                             j->segs[i].len, j->segs[i].off);
        }
        if (ret == 0 && flush && fdatasync(j->fd) < 0) {
            ret = -errno;
        }
        j->rlen = 0;
        j->nsegs = 0;
        return ret;
    }

    for (int i = 0; i < j->nsegs; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&j->ring);
        io_uring_prep_write(sqe, j->fd, j->rbuf + j->segs[i].buf_off,
                            j->segs[i].len, j->segs[i].off);
        io_uring_sqe_set_data64(sqe, i);
        nreq++;
    }
    if (flush) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&j->ring);
        io_uring_prep_fsync(sqe, j->fd, IORING_FSYNC_DATASYNC);
        /* after this round's writes too, not only the earlier rounds */
        sqe->flags |= IOSQE_IO_DRAIN;
        io_uring_sqe_set_data64(sqe, MAX_SEGS);
        nreq++;
    }
    if (nreq == 0) {
        return 0;
    }
    ret = io_uring_submit_and_wait(&j->ring, nreq);
    if (ret < 0) {
        j->rlen = 0;
        j->nsegs = 0;
        return ret;
    }
    ret = 0;
    for (unsigned k = 0; k < nreq; k++) {
        struct io_uring_cqe *cqe;
        int r = io_uring_wait_cqe(&j->ring, &cqe);

        if (r < 0) {
            ret = ret ? ret : r;
            continue;
        }
        uint64_t i = io_uring_cqe_get_data64(cqe);
        res[i] = cqe->res;
        io_uring_cqe_seen(&j->ring, cqe);
        if (i < MAX_SEGS && res[i] >= 0 && (size_t)res[i] != j->segs[i].len) {
            res[i] = -EIO;          /* a short write to a preallocated file */
        }
        if (i == MAX_SEGS && res[i] > 0) {
            res[i] = 0;
        }
        if (res[i] < 0 && ret == 0) {
            ret = res[i];
        }
    }
    j->rlen = 0;
    j->nsegs = 0;
    return ret;
}

void journal_reclaim(struct journal *j, uint64_t durable_seq,
                     journal_reclaim_fn *fn, void *arg)
{
    while (j->rec_count > 0) {
        struct jrec *r = rec_at(j, 0);
        bool data = r->type == REC_TYPE_WRITE || r->type == REC_TYPE_ZERO;

        if (data && r->seq > durable_seq) {
            break;
        }
        if (data) {
            if (r->n_extents == 1) {
                r->extents = &r->ext0;
            }
            fn(arg, r);
        }
        j->used -= r->len;
        rec_free(r);
        j->rec_first = (j->rec_first + 1) % j->rec_cap;
        j->rec_count--;
    }
}

int journal_read(struct journal *j, uint64_t off, void *buf, size_t len)
{
    if (j->rfd < 0) {
        return -EIO;
    }
    return lsvd_pread_all(j->rfd, buf, len, off) == 0 ? 0 : -EIO;
}

int journal_read_blocks(struct journal *j, uint64_t off, void *buf,
                        size_t len)
{
    g_assert(off % JNL_BLOCK == 0 && len % JNL_BLOCK == 0 &&
             (uintptr_t)buf % JNL_BLOCK == 0);
    if (j->direct && lsvd_pread_all(j->fd, buf, len, off) == 0) {
        return 0;
    }
    return journal_read(j, off, buf, len);  /* or an error, read again */
}
