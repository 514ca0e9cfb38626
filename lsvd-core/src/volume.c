/*
 * volume.c - the public API: create, open, close, and the read, write and
 * flush paths that tie the journal and the object log together.
 *
 * Layers are stacked in one place, volume_open(): backend -> object log ->
 * journal.  Requests go through one worker thread per volume, in order:
 *
 *   write: journal record (ack) -> batch -> object PUT when the batch is full
 *          -> the journal space is reset once its records are all in objects
 *   read:  journal map, then object map, then zeros
 *   flush: one journal device flush
 *
 * Threads: the lsvd_* entry points run on the caller's thread and only
 * queue requests; the worker owns the journal, the maps and the batch.
 * Callbacks run on the worker.  The stats in struct lsvd_volume are read
 * under `lock`.
 */
#include <errno.h>
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
#include "util.h"

enum vreq_type { VREQ_READ, VREQ_WRITE, VREQ_ZERO, VREQ_FLUSH, VREQ_STOP };

struct vreq {
    enum vreq_type type;
    uint64_t offset;
    const struct iovec *iov;
    int iovcnt;
    size_t len;
    lsvd_cb *cb;
    void *cb_arg;
};

struct lsvd_volume {
    char *name;
    bool rdonly;
    uint64_t size;
    uint64_t batch_size;
    struct backend be;
    struct super sb;
    struct objlog *ol;
    struct journal *jnl;
    struct extmap *jmap;        /* lba -> journal sector, or LOC_ZERO */

    GThread *worker;
    GAsyncQueue *queue;         /* struct vreq * */
    uint8_t *rbuf;              /* read bounce buffer, worker only */
    size_t rcap;
    int close_ret;              /* set by the worker on VREQ_STOP */

    GMutex lock;                /* protects journal_bytes */
    uint64_t journal_bytes;
};

/* ---- paths ---------------------------------------------------------------- */

static char *journal_path(const struct lsvd_config *cfg, const char *name)
{
    g_autofree char *leaf = g_strdup_printf("%s.journal", name);

    return g_build_filename(cfg->cache_dir, leaf, NULL);
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

/* ---- the worker ------------------------------------------------------- */

/* Make room in the journal: put the batch into an object and reuse the
 * journal space, which then holds nothing that is not in an object. */
static int write_out(struct lsvd_volume *v)
{
    int ret = objlog_seal(v->ol);

    if (ret == 0) {
        ret = journal_reset(v->jnl);
    }
    if (ret == 0) {
        extmap_clear(v->jmap);
        g_mutex_lock(&v->lock);
        v->journal_bytes = 0;
        g_mutex_unlock(&v->lock);
    }
    return ret;
}

static int do_write(struct lsvd_volume *v, struct vreq *r)
{
    struct rec_extent ext = {
        .lba = r->offset / LSVD_SECTOR_SIZE,
        .sectors = r->len / LSVD_SECTOR_SIZE,
    };
    uint64_t seq, data_off;
    int ret;

    if (v->rdonly) {
        return -EROFS;
    }
    if (journal_record_size(r->len) > journal_free(v->jnl)) {
        ret = write_out(v);
        if (ret < 0) {
            return ret;
        }
        if (journal_record_size(r->len) > journal_free(v->jnl)) {
            return -ENOSPC;     /* larger than the whole journal */
        }
    }
    ret = journal_append(v->jnl, REC_TYPE_WRITE, &ext, 1, r->iov, r->iovcnt,
                         r->len, &seq, &data_off);
    if (ret < 0) {
        return ret;
    }
    extmap_update(v->jmap, ext.lba, ext.sectors,
                  data_off / LSVD_SECTOR_SIZE);
    g_mutex_lock(&v->lock);
    v->journal_bytes = journal_used(v->jnl);
    g_mutex_unlock(&v->lock);

    ret = objlog_batch_add(v->ol, ext.lba, ext.sectors, r->iov, r->iovcnt,
                           seq);
    if (ret == 0 && objlog_batch_full(v->ol)) {
        /* the write is journaled already: a failed PUT is retried later,
         * and the write still succeeds */
        if (write_out(v) < 0) {
            lsvd_log(LSVD_LOG_WARNING, "volume '%s': writing a batch failed; "
                     "will retry", v->name);
        }
    }
    return ret;
}

static int do_zero(struct lsvd_volume *v, struct vreq *r)
{
    struct rec_extent ext[REC_MAX_EXTENTS];
    uint64_t lba = r->offset / LSVD_SECTOR_SIZE;
    uint64_t left = r->len / LSVD_SECTOR_SIZE;
    int ret;

    if (v->rdonly) {
        return -EROFS;
    }
    /* one record per 252 extents of at most 2^31 sectors each */
    while (left > 0) {
        uint32_t n = 0;
        uint64_t seq, data_off;

        while (left > 0 && n < REC_MAX_EXTENTS) {
            uint64_t len = MIN(left, 1ULL << 31);
            ext[n++] = (struct rec_extent){ .lba = lba, .sectors = len };
            lba += len;
            left -= len;
        }
        if (journal_record_size(0) > journal_free(v->jnl)) {
            ret = write_out(v);
            if (ret < 0) {
                return ret;
            }
        }
        ret = journal_append(v->jnl, REC_TYPE_ZERO, ext, n, NULL, 0, 0,
                             &seq, &data_off);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t i = 0; i < n; i++) {
            extmap_update(v->jmap, ext[i].lba, ext[i].sectors, LOC_ZERO);
            ret = objlog_batch_add(v->ol, ext[i].lba, ext[i].sectors, NULL, 0,
                                   seq);
            if (ret < 0) {
                return ret;
            }
        }
    }
    g_mutex_lock(&v->lock);
    v->journal_bytes = journal_used(v->jnl);
    g_mutex_unlock(&v->lock);
    if (objlog_batch_full(v->ol) && write_out(v) < 0) {
        lsvd_log(LSVD_LOG_WARNING, "volume '%s': writing a batch failed; "
                 "will retry", v->name);
    }
    return 0;
}

struct jread_ctx {
    struct lsvd_volume *v;
    uint64_t lba;
    uint8_t *buf;
};

static int read_piece(void *arg, uint64_t lba, uint64_t len, bool mapped,
                      uint64_t loc)
{
    struct jread_ctx *c = arg;
    uint8_t *dst = c->buf + (lba - c->lba) * LSVD_SECTOR_SIZE;

    if (!mapped) {
        return objlog_read(c->v->ol, lba, len, dst);
    }
    if (loc & LOC_ZERO) {
        memset(dst, 0, len * LSVD_SECTOR_SIZE);
        return 0;
    }
    return journal_read(c->v->jnl, loc * LSVD_SECTOR_SIZE, dst,
                        len * LSVD_SECTOR_SIZE);
}

static int do_read(struct lsvd_volume *v, struct vreq *r)
{
    struct jread_ctx c = { v, r->offset / LSVD_SECTOR_SIZE, NULL };
    size_t done = 0;
    int ret;

    if (r->len > v->rcap) {
        uint8_t *p = g_try_realloc(v->rbuf, r->len);
        if (!p) {
            return -ENOMEM;
        }
        v->rbuf = p;
        v->rcap = r->len;
    }
    c.buf = v->rbuf;
    ret = extmap_lookup(v->jmap, c.lba, r->len / LSVD_SECTOR_SIZE,
                        read_piece, &c);
    if (ret < 0) {
        return ret;
    }
    for (int i = 0; i < r->iovcnt && done < r->len; i++) {
        size_t n = MIN(r->iov[i].iov_len, r->len - done);
        memcpy(r->iov[i].iov_base, v->rbuf + done, n);
        done += n;
    }
    return 0;
}

static gpointer worker_main(gpointer arg)
{
    struct lsvd_volume *v = arg;

    for (;;) {
        struct vreq *r = g_async_queue_pop(v->queue);
        int ret = 0;

        switch (r->type) {
        case VREQ_READ:
            ret = do_read(v, r);
            break;
        case VREQ_WRITE:
            ret = do_write(v, r);
            break;
        case VREQ_ZERO:
            ret = do_zero(v, r);
            break;
        case VREQ_FLUSH:
            ret = v->rdonly ? 0 : journal_flush(v->jnl);
            break;
        case VREQ_STOP:
            v->close_ret = v->rdonly ? 0 : write_out(v);
            g_free(r);
            return NULL;
        }
        r->cb(r->cb_arg, ret);
        g_free(r);
    }
}

/* ---- submission ------------------------------------------------------- */

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

    if (type != VREQ_FLUSH &&
        (offset % LSVD_SECTOR_SIZE || len % LSVD_SECTOR_SIZE ||
         offset > v->size || len > v->size - offset || iovcnt < 0)) {
        return -EINVAL;
    }
    if ((type == VREQ_WRITE || type == VREQ_ZERO) && v->rdonly) {
        return -EROFS;
    }
    if (type != VREQ_FLUSH && len == 0) {
        cb(cb_arg, 0);
        return 0;
    }
    r = g_new(struct vreq, 1);
    *r = (struct vreq){
        .type = type, .offset = offset, .iov = iov, .iovcnt = iovcnt,
        .len = len, .cb = cb, .cb_arg = cb_arg,
    };
    g_async_queue_push(v->queue, r);
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

/* ---- open and close ----------------------------------------------------- */

static int replay_record(void *arg, const struct rec_header *r,
                         const uint8_t *data, uint64_t data_off)
{
    struct lsvd_volume *v = arg;
    uint64_t pos = 0;

    for (uint32_t i = 0; i < r->n_extents; i++) {
        const struct rec_extent *e = &r->extents[i];
        uint64_t len = (uint64_t)e->sectors * LSVD_SECTOR_SIZE;
        int ret;

        if (e->lba + e->sectors > v->size / LSVD_SECTOR_SIZE) {
            lsvd_log(LSVD_LOG_ERROR, "volume '%s': journal record %" PRIu64
                     " lies outside the volume", v->name, r->seq);
            return -EIO;
        }
        if (r->type == REC_TYPE_ZERO) {
            extmap_update(v->jmap, e->lba, e->sectors, LOC_ZERO);
            ret = objlog_batch_add(v->ol, e->lba, e->sectors, NULL, 0,
                                   r->seq);
        } else {
            struct iovec iov = { (void *)(data + pos), len };
            extmap_update(v->jmap, e->lba, e->sectors,
                          (data_off + pos) / LSVD_SECTOR_SIZE);
            ret = objlog_batch_add(v->ol, e->lba, e->sectors, &iov, 1,
                                   r->seq);
            pos += len;
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static void volume_free(struct lsvd_volume *v)
{
    journal_close(v->jnl);
    objlog_close(v->ol);
    extmap_free(v->jmap);
    super_free(&v->sb);
    backend_close(&v->be);
    if (v->queue) {
        g_async_queue_unref(v->queue);
    }
    g_mutex_clear(&v->lock);
    g_free(v->rbuf);
    g_free(v->name);
    g_free(v);
}

int lsvd_open(const struct lsvd_config *cfg, const char *name, int flags,
              struct lsvd_volume **out, struct lsvd_err *err)
{
    struct lsvd_volume *v;
    g_autofree char *jpath = NULL;
    uint64_t max_jseq = 0;
    int ret;

    ret = check_name(name, err);
    if (ret < 0) {
        return ret;
    }
    v = g_new0(struct lsvd_volume, 1);
    g_mutex_init(&v->lock);
    v->name = g_strdup(name);
    v->rdonly = flags & LSVD_OPEN_RDONLY;
    v->batch_size = cfg->batch_size;

    /* the stack: backend -> object log -> journal */
    ret = backend_open(cfg->backend_url, &v->be, err);
    if (ret < 0) {
        goto fail;
    }
    ret = objlog_read_super(&v->be, name, &v->sb, err);
    if (ret < 0) {
        goto fail;
    }
    v->size = v->sb.size;

    /* lock the journal before touching objects: one writer at a time */
    jpath = journal_path(cfg, name);
    if (!v->rdonly && g_mkdir_with_parents(cfg->cache_dir, 0700) < 0) {
        ret = lsvd_fail(err, -errno, "cannot create cache directory %s: %s",
                        cfg->cache_dir, g_strerror(errno));
        goto fail;
    }
    ret = journal_open(jpath, v->sb.uuid, cfg->cache_size, v->rdonly,
                       &v->jnl, err);
    if (ret < 0) {
        goto fail;
    }
    ret = objlog_open(&v->be, name, &v->sb, cfg->batch_size, v->rdonly,
                      &v->ol, &max_jseq, err);
    if (ret < 0) {
        goto fail;
    }
    v->jmap = extmap_new();
    ret = journal_replay(v->jnl, max_jseq, replay_record, v);
    if (ret < 0) {
        lsvd_fail(err, ret, "volume '%s': journal replay failed: %s", name,
                  g_strerror(-ret));
        goto fail;
    }
    v->journal_bytes = journal_used(v->jnl);

    v->queue = g_async_queue_new();
    v->worker = g_thread_try_new("lsvd-worker", worker_main, v, NULL);
    if (!v->worker) {
        ret = lsvd_fail(err, -EAGAIN, "cannot start the volume's thread");
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
    g_thread_join(v->worker);
    ret = v->close_ret;
    volume_free(v);
    return ret;
}

uint64_t lsvd_size(const struct lsvd_volume *v)
{
    return v->size;
}

int lsvd_stat(struct lsvd_volume *v, struct lsvd_info *info)
{
    struct objlog_stats st;

    objlog_stats(v->ol, &st);
    info->size = v->size;
    info->objects = st.objects;
    info->stored_bytes = st.stored_bytes;
    info->last_seq = st.last_seq;
    g_mutex_lock(&v->lock);
    info->journal_bytes = v->journal_bytes;
    g_mutex_unlock(&v->lock);
    return 0;
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
    if (size == 0 || size % LSVD_SECTOR_SIZE ||
        size / LSVD_SECTOR_SIZE > (1ULL << 40)) {
        return lsvd_fail(err, -EINVAL, "invalid size %" PRIu64 ": must be a "
                         "non-zero multiple of %d bytes, at most 512 TiB",
                         size, LSVD_SECTOR_SIZE);
    }
    ret = backend_open(cfg->backend_url, &be, err);
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
    ret = backend_open(cfg->backend_url, &be, err);
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
    if (jnl) {
        unlink(jpath);
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

    ret = backend_open(cfg->backend_url, &be, err);
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
