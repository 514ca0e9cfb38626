/*
 * QEMU block driver for LSVD, a log-structured virtual disk
 *
 * Copyright (C) 2026 The LSVD authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

/*
 * A protocol driver: the volume lives in an object store with a write-back
 * journal in a local cache directory, both managed by lsvd-core (lsvd.h).
 * Use it with the raw format on top.
 *
 * File name syntax (the legacy form; -blockdev options are the real API):
 *
 *     lsvd:VOLUME[:conf=FILE]
 *
 * VOLUME is a plain name ([A-Za-z0-9._-]); FILE is the LSVD configuration
 * file (default: $LSVD_CONF, then /etc/lsvd/lsvd.conf, then the embedded
 * defaults).  A backslash makes the next character literal, so a ':' in
 * FILE is written '\:'.
 *
 * Threads: the driver runs in the node's AioContext like any other.  The
 * core completes requests on its own threads; the completion callback only
 * records the result and puts the request on the node's list of completed
 * requests.  The one that finds the list empty schedules a one-shot bottom
 * half, which wakes the coroutines of all the requests on the list by
 * then: the core completes a journal round of writes at once, so the
 * AioContext is woken (an eventfd write) about once per round, not once
 * per request (qemu-img bench, 200k 4 KiB writes at depth 32: 23k write()
 * calls instead of 187k; no change in throughput was measurable).  A
 * request's state lives on the submitting coroutine's stack: nothing is
 * allocated per request.
 */

#include "qemu/osdep.h"

#include <lsvd.h>

#include "qapi/error.h"
#include "qapi/qapi-visit-block-core.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qobject-input-visitor.h"
#include "block/block_int.h"
#include "block/qdict.h"
#include "crypto/secret.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/module.h"
#include "qemu/option.h"
#include "qemu/units.h"

typedef struct LSVDTask LSVDTask;

typedef struct BDRVLSVDState {
    QSLIST_HEAD(, LSVDTask) done;   /* completed, not yet woken (atomic) */
    unsigned finish_bhs;        /* qemu_lsvd_finish_bh() scheduled (atomic) */
    struct lsvd_config *cfg;    /* kept until the volume is closed */
    struct lsvd_volume *vol;
    char *volume;               /* the volume name */
    char *conf;                 /* the conf= option, or NULL */
    bool read_only;             /* vol was opened with LSVD_OPEN_RDONLY */
    CoMutex resize_lock;        /* one resize at a time, and its check */
} BDRVLSVDState;

#define LSVD_GROW_STEP (64 * MiB)   /* see qemu_lsvd_grow() */
#define LSVD_MAX_SIZE (512 * TiB)

typedef enum {
    LSVD_AIO_READ,
    LSVD_AIO_WRITE,
    LSVD_AIO_FLUSH,
    LSVD_AIO_ZERO,              /* discard and write-zeroes */
    LSVD_AIO_RESIZE,            /* offset is the new size */
} LSVDAIOCmd;

/* One request in flight; lives on the stack of the coroutine it wakes. */
struct LSVDTask {
    BDRVLSVDState *s;
    AioContext *ctx;            /* where the coroutine runs */
    Coroutine *co;
    bool complete;
    int ret;
    QSLIST_ENTRY(LSVDTask) next;    /* on s->done */
};

/*
 * Turn an lsvd-core failure into an Error.  The core's message names the
 * problem in one line; @what describes the operation in case it is empty.
 */
static void qemu_lsvd_error(Error **errp, int ret, const struct lsvd_err *err,
                            const char *what)
{
    if (err->msg[0] == '\0') {
        error_setg_errno(errp, -ret, "lsvd: %s", what);
    } else if (g_str_has_prefix(err->msg, "lsvd: ")) {
        error_setg(errp, "%s", err->msg);
    } else {
        error_setg(errp, "lsvd: %s", err->msg);
    }
}

/*
 * Return the token that starts at @src and ends at the first ':' that is
 * not escaped, removing the escapes in place.  *@next is set to the start
 * of the following token, or NULL if this was the last one.
 */
static char *qemu_lsvd_next_tok(char *src, char **next)
{
    char *out = src;
    char *p;

    *next = NULL;
    for (p = src; *p != '\0'; p++) {
        if (*p == '\\' && p[1] != '\0') {
            *out++ = *++p;
        } else if (*p == ':') {
            *next = p + 1;
            break;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
    return src;
}

static void qemu_lsvd_parse_filename(const char *filename, QDict *options,
                                     Error **errp)
{
    g_autofree char *buf = NULL;
    const char *start;
    char *p, *tok, *value;

    if (!strstart(filename, "lsvd:", &start)) {
        error_setg(errp, "lsvd: file name must start with 'lsvd:'");
        return;
    }
    if (qdict_haskey(options, "volume") || qdict_haskey(options, "conf") ||
        qdict_haskey(options, "key-secret")) {
        error_setg(errp, "lsvd: the volume, conf and key-secret options "
                   "cannot be combined with a file name");
        return;
    }

    buf = g_strdup(start);
    tok = qemu_lsvd_next_tok(buf, &p);
    if (tok[0] == '\0') {
        error_setg(errp, "lsvd: no volume name in '%s' "
                   "(expected lsvd:VOLUME[:conf=FILE])", filename);
        return;
    }
    qdict_put_str(options, "volume", tok);

    while (p) {
        tok = qemu_lsvd_next_tok(p, &p);
        value = strchr(tok, '=');
        if (!value) {
            error_setg(errp, "lsvd: option '%s' has no value "
                       "(expected key=value)", tok);
            return;
        }
        *value++ = '\0';
        if (strcmp(tok, "conf") != 0 && strcmp(tok, "key-secret") != 0) {
            error_setg(errp, "lsvd: unknown option '%s' "
                       "(the options are conf and key-secret)", tok);
            return;
        }
        if (qdict_haskey(options, tok)) {
            error_setg(errp, "lsvd: option '%s' given twice", tok);
            return;
        }
        qdict_put_str(options, tok, value);
    }
}

/*
 * key-secret=ID: the S3 secret access key, from a QEMU secret object, in
 * place of the configuration's or the environment's.
 */
static int qemu_lsvd_set_secret(struct lsvd_config *cfg, const char *id,
                                Error **errp)
{
    g_autofree char *secret = qcrypto_secret_lookup_as_utf8(id, errp);
    int ret;

    if (!secret) {
        return -EINVAL;
    }
    ret = lsvd_config_set_credentials(cfg, NULL, secret, NULL);
    explicit_bzero(secret, strlen(secret));
    if (ret < 0) {
        error_setg(errp, "lsvd: key-secret is only for an s3:// store "
                   "(the configuration %s names %s)",
                   lsvd_config_source(cfg), lsvd_config_backend_url(cfg));
    }
    return ret;
}

/*
 * The options that take the place of configuration keys for this node
 * (url first: it decides which other keys are valid).  Each goes through
 * the configuration's own checks.
 */
static int qemu_lsvd_apply_options(struct lsvd_config *cfg,
                                   BlockdevOptionsLsvd *opts, Error **errp)
{
    const struct {
        bool has;
        const char *opt, *section, *key, *str;
        uint64_t size;
    } set[] = {
        { opts->has_url, "url", "backend", "url", opts->url },
        { opts->has_cache_dir, "cache-dir", "cache", "dir", opts->cache_dir },
        { opts->has_cache_size, "cache-size", "cache", "size", NULL,
          opts->cache_size },
        { opts->has_read_cache_size, "read-cache-size", "cache", "read_size",
          NULL, opts->read_cache_size },
        { opts->has_batch_size, "batch-size", "log", "batch_size", NULL,
          opts->batch_size },
        { opts->has_prefetch, "prefetch", "cache", "prefetch", NULL,
          opts->prefetch },
    };
    struct lsvd_err err = { "" };

    for (size_t i = 0; i < ARRAY_SIZE(set); i++) {
        g_autofree char *num = NULL;
        int ret;

        if (!set[i].has) {
            continue;
        }
        if (!set[i].str) {
            num = g_strdup_printf("%" PRIu64, set[i].size);
        }
        ret = lsvd_config_set(cfg, set[i].section, set[i].key,
                              set[i].str ? set[i].str : num, &err);
        if (ret < 0) {
            error_setg(errp, "lsvd: option %s: %s", set[i].opt, err.msg);
            return ret;
        }
    }
    return 0;
}

/*
 * lsvd_open() flags.  A read-only node with force-share (qemu-img info -U)
 * does not take the journal's lock, so it works while another process
 * writes the volume; it then sees what is in the objects only.
 */
static int qemu_lsvd_open_flags(BlockDriverState *bs, bool read_only)
{
    if (!read_only) {
        return 0;
    }
    return LSVD_OPEN_RDONLY | (bs->force_share ? LSVD_OPEN_SHARED : 0);
}

/* Convert (and consume) the driver options with the QAPI visitor. */
static BlockdevOptionsLsvd *qemu_lsvd_convert_options(QDict *options,
                                                      Error **errp)
{
    BlockdevOptionsLsvd *opts = NULL;
    const QDictEntry *e;
    Visitor *v;

    v = qobject_input_visitor_new_flat_confused(options, errp);
    if (!v) {
        return NULL;
    }
    visit_type_BlockdevOptionsLsvd(v, NULL, &opts, errp);
    visit_free(v);
    if (!opts) {
        return NULL;
    }

    /* The visitor has checked every option: none is left for the caller */
    while ((e = qdict_first(options))) {
        qdict_del(options, e->key);
    }
    return opts;
}

static bool qemu_lsvd_check_name(const char *volume, Error **errp)
{
    if (!lsvd_name_valid(volume)) {
        error_setg(errp, "lsvd: invalid volume name '%s' (expected 1 to %d "
                   "characters from [A-Za-z0-9._-], not starting with "
                   "'.' or '-')", volume, LSVD_NAME_MAX);
        return false;
    }
    return true;
}

/* Main loop; blocks while the volume is created. */
static int qemu_lsvd_do_create(BlockdevOptionsLsvd *loc, uint64_t size,
                               Error **errp)
{
    struct lsvd_err err = { .msg = "" };
    struct lsvd_config *cfg = NULL;
    g_autofree char *what = NULL;
    int ret;

    if (!qemu_lsvd_check_name(loc->volume, errp)) {
        return -EINVAL;
    }
    if (size == 0) {
        /*
         * qcow2 and other formats that grow their file create it empty;
         * a volume has at least one sector, and grows when a format
         * writes past its end (qemu_lsvd_grow)
         */
        size = LSVD_SECTOR_SIZE;
    }
    if (size % LSVD_SECTOR_SIZE != 0) {
        error_setg(errp, "lsvd: size %" PRIu64 " is not a multiple of %d "
                   "bytes", size, LSVD_SECTOR_SIZE);
        return -EINVAL;
    }

    ret = lsvd_config_load(loc->has_conf ? loc->conf : NULL, &cfg, &err);
    if (ret < 0) {
        qemu_lsvd_error(errp, ret, &err, "cannot load the configuration");
        return ret;
    }
    ret = qemu_lsvd_apply_options(cfg, loc, errp);
    if (ret == 0 && loc->has_key_secret) {
        ret = qemu_lsvd_set_secret(cfg, loc->key_secret, errp);
    }
    if (ret < 0) {
        lsvd_config_free(cfg);
        return ret;
    }

    ret = lsvd_create(cfg, loc->volume, size, &err);
    if (ret < 0) {
        what = g_strdup_printf("cannot create volume '%s'", loc->volume);
        qemu_lsvd_error(errp, ret, &err, what);
    }
    lsvd_config_free(cfg);
    return ret;
}

static int coroutine_fn qemu_lsvd_co_create(BlockdevCreateOptions *options,
                                            Error **errp)
{
    BlockdevCreateOptionsLsvd *opts = &options->u.lsvd;

    assert(options->driver == BLOCKDEV_DRIVER_LSVD);
    return qemu_lsvd_do_create(opts->location, opts->size, errp);
}

static const char *const qemu_lsvd_create_keys[] = {
    "conf", "url", "key-secret",
};

static int coroutine_fn qemu_lsvd_co_create_opts(BlockDriver *drv,
                                                 const char *filename,
                                                 QemuOpts *opts,
                                                 Error **errp)
{
    BlockdevOptionsLsvd *loc = NULL;
    Error *local_err = NULL;
    QDict *options;
    uint64_t size;
    int ret;

    size = qemu_opt_get_size_del(opts, BLOCK_OPT_SIZE, 0);

    options = qdict_new();
    qemu_lsvd_parse_filename(filename, options, &local_err);
    if (local_err) {
        error_propagate(errp, local_err);
        ret = -EINVAL;
        goto out;
    }
    /* -o conf=, url=, key-secret=: the same as in the file name */
    for (size_t i = 0; i < ARRAY_SIZE(qemu_lsvd_create_keys); i++) {
        g_autofree char *v = qemu_opt_get_del(opts, qemu_lsvd_create_keys[i]);

        if (!v) {
            continue;
        }
        if (qdict_haskey(options, qemu_lsvd_create_keys[i])) {
            error_setg(errp, "lsvd: %s given both in the file name and as "
                       "an option", qemu_lsvd_create_keys[i]);
            ret = -EINVAL;
            goto out;
        }
        qdict_put_str(options, qemu_lsvd_create_keys[i], v);
    }
    loc = qemu_lsvd_convert_options(options, errp);
    if (!loc) {
        ret = -EINVAL;
        goto out;
    }

    ret = qemu_lsvd_do_create(loc, size, errp);

out:
    qapi_free_BlockdevOptionsLsvd(loc);
    qobject_unref(options);
    return ret;
}

static int qemu_lsvd_open(BlockDriverState *bs, QDict *options, int flags,
                          Error **errp)
{
    BDRVLSVDState *s = bs->opaque;
    struct lsvd_err err = { .msg = "" };
    BlockdevOptionsLsvd *opts = NULL;
    g_autofree char *what = NULL;
    const char *filename;
    int ret;

    /*
     * A file name that bdrv_fill_options() did not parse (for example
     * -blockdev driver=lsvd,filename=lsvd:VOLUME) is still understood.
     */
    filename = qdict_get_try_str(options, "filename");
    if (filename) {
        g_autofree char *name = g_strdup(filename);
        Error *local_err = NULL;

        qdict_del(options, "filename");
        qemu_lsvd_parse_filename(name, options, &local_err);
        if (local_err) {
            error_propagate(errp, local_err);
            return -EINVAL;
        }
    }

    opts = qemu_lsvd_convert_options(options, errp);
    if (!opts) {
        return -EINVAL;
    }
    if (!qemu_lsvd_check_name(opts->volume, errp)) {
        ret = -EINVAL;
        goto out;
    }

    ret = lsvd_config_load(opts->has_conf ? opts->conf : NULL, &s->cfg, &err);
    if (ret < 0) {
        qemu_lsvd_error(errp, ret, &err, "cannot load the configuration");
        goto out;
    }
    ret = qemu_lsvd_apply_options(s->cfg, opts, errp);
    if (ret < 0) {
        lsvd_config_free(s->cfg);
        s->cfg = NULL;
        goto out;
    }
    if (opts->has_key_secret) {
        ret = qemu_lsvd_set_secret(s->cfg, opts->key_secret, errp);
        if (ret < 0) {
            lsvd_config_free(s->cfg);
            s->cfg = NULL;
            goto out;
        }
    }

    s->read_only = !(flags & BDRV_O_RDWR);
    ret = lsvd_open(s->cfg, opts->volume, qemu_lsvd_open_flags(bs,
                    s->read_only), &s->vol, &err);
    if (ret < 0) {
        what = g_strdup_printf("cannot open volume '%s'", opts->volume);
        qemu_lsvd_error(errp, ret, &err, what);
        if (ret == -EBUSY && s->read_only) {
            error_append_hint(errp, "Force-share (qemu-img -U) reads it "
                              "anyway, from the objects only.\n");
        }
        lsvd_config_free(s->cfg);
        s->cfg = NULL;
        goto out;
    }

    s->volume = g_strdup(opts->volume);
    s->conf = opts->has_conf ? g_strdup(opts->conf) : NULL;
    qemu_co_mutex_init(&s->resize_lock);
    /* zeroing never stores data, so it always "unmaps" */
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    ret = 0;

out:
    qapi_free_BlockdevOptionsLsvd(opts);
    return ret;
}

/*
 * Reopen.  A read-only node that becomes read-write needs a volume handle
 * opened for writing.  The read-only handle holds a shared lock on the
 * volume's journal that would keep the writer out, so it is closed first;
 * if the volume cannot be opened for writing (another process writes it),
 * it is opened read-only again.  Should even that fail, the node has no
 * handle and fails every request with -EIO until a reopen succeeds.
 *
 * A read-write node that becomes read-only keeps its handle, and so its
 * claim on the volume: the block layer has flushed it and refuses writes
 * from now on.  For the same reason, nothing is undone on abort: a
 * read-write handle serves a read-only node.
 *
 * The volume and the configuration cannot change: the block layer refuses
 * a changed option that the driver leaves in the QDict.
 *
 * Main loop, node drained.
 */
static int qemu_lsvd_reopen_prepare(BDRVReopenState *state,
                                    BlockReopenQueue *queue, Error **errp)
{
    BDRVLSVDState *s = state->bs->opaque;
    bool read_only = !(state->flags & BDRV_O_RDWR);
    struct lsvd_err err = { .msg = "" };
    g_autofree char *what = NULL;
    int ret;

    if (s->vol && (read_only || !s->read_only)) {
        return 0;
    }

    if (s->vol) {
        /* Read-only: nothing to write out */
        lsvd_close(s->vol);
        s->vol = NULL;
    }
    ret = lsvd_open(s->cfg, s->volume, qemu_lsvd_open_flags(state->bs,
                                                          read_only),
                    &s->vol, &err);
    if (ret < 0) {
        s->vol = NULL;
        what = g_strdup_printf("cannot open volume '%s'%s", s->volume,
                               read_only ? "" : " for writing");
        qemu_lsvd_error(errp, ret, &err, what);
        if (!read_only &&
            lsvd_open(s->cfg, s->volume, LSVD_OPEN_RDONLY, &s->vol,
                      NULL) < 0) {
            s->vol = NULL;
        }
        s->read_only = true;
        return ret;
    }
    s->read_only = read_only;
    return 0;
}

/* Main loop; no request is in flight (the node is drained). */
static void qemu_lsvd_close(BlockDriverState *bs)
{
    BDRVLSVDState *s = bs->opaque;
    int ret;

    ret = s->vol ? lsvd_close(s->vol) : 0;
    if (ret < 0) {
        error_report("lsvd: volume '%s': writing the journal to the store "
                     "on close failed: %s", s->volume, strerror(-ret));
    }
    s->vol = NULL;
    /*
     * The core's threads are gone, so no completion callback runs any
     * more; but one may have scheduled a bottom half (for requests an
     * earlier one already woke) that has not run yet, and it reads @s.
     */
    AIO_WAIT_WHILE(bdrv_get_aio_context(bs),
                   qatomic_read(&s->finish_bhs) > 0);
    lsvd_config_free(s->cfg);
    s->cfg = NULL;
    g_free(s->volume);
    g_free(s->conf);
}

/*
 * Runs in the AioContext of a coroutine that submitted a request: wakes
 * every coroutine whose request is on the list (aio_co_wake() moves the
 * wakeup to another AioContext if the coroutine runs there).
 */
static void qemu_lsvd_finish_bh(void *opaque)
{
    BDRVLSVDState *s = opaque;
    QSLIST_HEAD(, LSVDTask) done;
    LSVDTask *task, *next;

    QSLIST_MOVE_ATOMIC(&done, &s->done);
    for (task = QSLIST_FIRST(&done); task; task = next) {
        Coroutine *co = task->co;

        /* the coroutine may return, and its stack go, once woken */
        next = QSLIST_NEXT(task, next);
        task->complete = true;
        aio_co_wake(co);
    }
    qatomic_dec(&s->finish_bhs);
    aio_wait_kick();            /* qemu_lsvd_close() may wait for it */
}

/*
 * Completion callback; runs once per request on a thread of lsvd-core, not
 * a QEMU thread.  It only hands the result over: @task must not be touched
 * once it is on the list.  The list was empty: no bottom half will see
 * @task unless this one schedules it (the bottom half empties the list
 * atomically, so every task that finds it empty schedules one).
 */
static void qemu_lsvd_complete(void *opaque, int ret)
{
    LSVDTask *task = opaque;
    BDRVLSVDState *s = task->s;
    AioContext *ctx = task->ctx;
    LSVDTask *old;

    task->ret = ret;
    /* QSLIST_INSERT_HEAD_ATOMIC() does not return the old head, and
     * @task may be gone by the time it could be read back */
    do {
        old = qatomic_read(&s->done.slh_first);
        task->next.sle_next = old;
    } while (qatomic_cmpxchg(&s->done.slh_first, old, task) != old);
    if (old == NULL) {
        /* counted first: qemu_lsvd_close() waits for it to have run */
        qatomic_inc(&s->finish_bhs);
        aio_bh_schedule_oneshot(ctx, qemu_lsvd_finish_bh, s);
    }
}

static int coroutine_fn qemu_lsvd_start_co(BlockDriverState *bs,
                                           LSVDAIOCmd cmd, int64_t offset,
                                           int64_t bytes, QEMUIOVector *qiov)
{
    BDRVLSVDState *s = bs->opaque;
    LSVDTask task = {
        .s = s,
        .ctx = qemu_coroutine_get_aio_context(qemu_coroutine_self()),
        .co = qemu_coroutine_self(),
    };
    int ret;

    assert(!qiov || qiov->size == bytes);
    if (!s->vol) {
        return -EIO;            /* lost in a failed reopen */
    }

    switch (cmd) {
    case LSVD_AIO_READ:
        if (bytes == 0) {
            return 0;
        }
        ret = lsvd_aio_read(s->vol, offset, qiov->iov, qiov->niov,
                            qemu_lsvd_complete, &task);
        break;
    case LSVD_AIO_WRITE:
        if (bytes == 0) {
            return 0;
        }
        ret = lsvd_aio_write(s->vol, offset, qiov->iov, qiov->niov,
                             qemu_lsvd_complete, &task);
        break;
    case LSVD_AIO_FLUSH:
        ret = lsvd_aio_flush(s->vol, qemu_lsvd_complete, &task);
        break;
    case LSVD_AIO_ZERO:
        if (bytes == 0) {
            return 0;
        }
        ret = lsvd_aio_write_zeroes(s->vol, offset, bytes,
                                    qemu_lsvd_complete, &task);
        break;
    case LSVD_AIO_RESIZE:
        ret = lsvd_aio_resize(s->vol, offset, qemu_lsvd_complete, &task);
        break;
    default:
        g_assert_not_reached();
    }
    if (ret < 0) {
        /* Refused at once: the callback will not run */
        return ret;
    }

    while (!task.complete) {
        qemu_coroutine_yield();
    }
    return task.ret;
}

static int coroutine_fn qemu_lsvd_co_preadv(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            BdrvRequestFlags flags)
{
    return qemu_lsvd_start_co(bs, LSVD_AIO_READ, offset, bytes, qiov);
}

/*
 * A format driver (qcow2) writes past the end of its file to grow it, as
 * it would on a file: grow the volume to the end of the write first.  The
 * block layer allows this only to parents holding BLK_PERM_RESIZE; the
 * raw format never does it, so a guest cannot grow its disk.  Volumes
 * only grow here: a write racing a larger grow finds the volume big
 * enough under the lock.
 */
static int coroutine_fn qemu_lsvd_grow(BlockDriverState *bs, int64_t end)
{
    BDRVLSVDState *s = bs->opaque;
    int ret = 0;

    if (!s->vol || (uint64_t)end <= lsvd_size(s->vol)) {
        return 0;
    }
    qemu_co_mutex_lock(&s->resize_lock);
    if (s->vol && (uint64_t)end > lsvd_size(s->vol)) {
        /*
         * Each grow writes the superblock (a PUT on S3): grow in steps, so
         * that a format allocating cluster by cluster does not pay one per
         * cluster.  A bigger file is nothing to qcow2, as on a file system
         * with preallocation.
         */
        ret = qemu_lsvd_start_co(bs, LSVD_AIO_RESIZE,
                                 MIN(QEMU_ALIGN_UP(end, LSVD_GROW_STEP),
                                     LSVD_MAX_SIZE), 0, NULL);
        if (ret == -EINVAL) {   /* past the largest size: just the end */
            ret = qemu_lsvd_start_co(bs, LSVD_AIO_RESIZE, end, 0, NULL);
        }
    }
    qemu_co_mutex_unlock(&s->resize_lock);
    return ret;
}

static int coroutine_fn qemu_lsvd_co_pwritev(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             QEMUIOVector *qiov,
                                             BdrvRequestFlags flags)
{
    int ret = qemu_lsvd_grow(bs, offset + bytes);

    if (ret < 0) {
        return ret;
    }
    return qemu_lsvd_start_co(bs, LSVD_AIO_WRITE, offset, bytes, qiov);
}

static int coroutine_fn qemu_lsvd_co_flush(BlockDriverState *bs)
{
    return qemu_lsvd_start_co(bs, LSVD_AIO_FLUSH, 0, 0, NULL);
}

/*
 * Discard and write-zeroes are one operation in LSVD: the range is logged
 * (so it keeps its place in the write order and survives recovery) and
 * reads as zeros from then on, without storing data.
 */
static int coroutine_fn qemu_lsvd_co_pdiscard(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes)
{
    /*
     * The block layer passes the unaligned head and tail of a discard down
     * as requests of their own and expects -ENOTSUP for what the driver
     * cannot discard (a discard is advisory); lsvd-core would refuse them
     * with -EINVAL, which fails the whole discard.
     */
    if (!QEMU_IS_ALIGNED(offset, LSVD_SECTOR_SIZE) ||
        !QEMU_IS_ALIGNED(bytes, LSVD_SECTOR_SIZE)) {
        return -ENOTSUP;
    }
    return qemu_lsvd_start_co(bs, LSVD_AIO_ZERO, offset, bytes, NULL);
}

static int coroutine_fn qemu_lsvd_co_pwrite_zeroes(BlockDriverState *bs,
                                                   int64_t offset,
                                                   int64_t bytes,
                                                   BdrvRequestFlags flags)
{
    int ret = qemu_lsvd_grow(bs, offset + bytes);

    if (ret < 0) {
        return ret;
    }
    return qemu_lsvd_start_co(bs, LSVD_AIO_ZERO, offset, bytes, NULL);
}

static int64_t qemu_lsvd_getlength(BlockDriverState *bs)
{
    BDRVLSVDState *s = bs->opaque;

    if (!s->vol) {
        return -EIO;
    }
    return lsvd_size(s->vol);
}

/* Bytes the volume takes in the store and in the journal. */
/*
 * Resize.  Growing always works; shrinking only over a tail that was never
 * written (qemu-img itself asks for --shrink first).  The volume's
 * superblock has the new size when this returns.
 */
static int coroutine_fn qemu_lsvd_co_truncate(BlockDriverState *bs,
                                              int64_t offset, bool exact,
                                              PreallocMode prealloc,
                                              BdrvRequestFlags flags,
                                              Error **errp)
{
    BDRVLSVDState *s = bs->opaque;
    uint64_t size = s->vol ? lsvd_size(s->vol) : 0;
    int ret;

    if (prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "lsvd: unsupported preallocation mode '%s' (space "
                   "is taken when written)", PreallocMode_str(prealloc));
        return -ENOTSUP;
    }
    if (offset % LSVD_SECTOR_SIZE) {
        error_setg(errp, "lsvd: size %" PRId64 " is not a multiple of %d "
                   "bytes", offset, LSVD_SECTOR_SIZE);
        return -EINVAL;
    }
    if ((uint64_t)offset == size) {
        return 0;
    }
    /*
     * Shrink like a regular file whatever @exact says (block_resize passes
     * exact=false and means "this size"); but without @exact, being at
     * least @offset big is enough, so a shrink over written data leaves
     * the size as it is, as QEMU's contract says (qcow2 trims its file
     * that way and expects no error).
     */
    qemu_co_mutex_lock(&s->resize_lock);
    ret = qemu_lsvd_start_co(bs, LSVD_AIO_RESIZE, offset, 0, NULL);
    qemu_co_mutex_unlock(&s->resize_lock);
    if (ret == -ENOTEMPTY && !exact) {
        return 0;
    }
    if (ret == -ENOTEMPTY) {
        error_setg(errp, "lsvd: cannot shrink volume '%s' to %" PRId64
                   " bytes: the range after that has been written (or "
                   "discarded or zeroed)", s->volume, offset);
    } else if (ret == -EINVAL) {
        error_setg(errp, "lsvd: invalid size %" PRId64 " for volume '%s' "
                   "(at most 512 TiB)", offset, s->volume);
    } else if (ret < 0) {
        error_setg_errno(errp, -ret, "lsvd: cannot resize volume '%s'",
                         s->volume);
    }
    return ret;
}

/*
 * Block status: written data is DATA at the same offset of this node;
 * ranges never written, discarded or zeroed read as zeros (ZERO), so that
 * qemu-img convert and map skip them.  The answer comes from the maps in
 * memory: no I/O.
 */
static int coroutine_fn qemu_lsvd_co_block_status(BlockDriverState *bs,
                                                  bool want_zero,
                                                  int64_t offset,
                                                  int64_t bytes,
                                                  int64_t *pnum,
                                                  int64_t *map,
                                                  BlockDriverState **file)
{
    BDRVLSVDState *s = bs->opaque;
    uint64_t len;
    int kind;

    if (!s->vol) {
        return -EIO;
    }
    kind = lsvd_extent(s->vol, offset, bytes, &len);
    if (kind < 0) {
        return kind;
    }
    *pnum = len;
    if (kind != LSVD_EXTENT_DATA) {
        return BDRV_BLOCK_ZERO;
    }
    *map = offset;
    *file = bs;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
}

/* For qemu-img info and query-block: the volume, its store and cache. */
static ImageInfoSpecific *qemu_lsvd_get_specific_info(BlockDriverState *bs,
                                                      Error **errp)
{
    BDRVLSVDState *s = bs->opaque;
    ImageInfoSpecificLsvd *d;
    ImageInfoSpecific *spec;
    struct lsvd_info info;

    if (!s->vol) {
        error_setg(errp, "lsvd: volume '%s' is not open", s->volume);
        return NULL;
    }
    lsvd_stat(s->vol, &info);
    d = g_new0(ImageInfoSpecificLsvd, 1);
    d->volume = g_strdup(s->volume);
    d->backend = g_strdup(lsvd_config_backend_url(s->cfg));
    d->cache_dir = g_strdup(lsvd_config_cache_dir(s->cfg));
    d->objects = info.objects;
    d->stored_bytes = info.stored_bytes;
    d->journal_dirty_bytes = info.journal_bytes;
    d->read_cache_hits = info.rc_hits;
    d->read_cache_misses = info.rc_misses;
    spec = g_new0(ImageInfoSpecific, 1);
    spec->type = IMAGE_INFO_SPECIFIC_KIND_LSVD;
    spec->u.lsvd.data = d;
    return spec;
}

static int64_t qemu_lsvd_get_allocated_file_size(BlockDriverState *bs)
{
    BDRVLSVDState *s = bs->opaque;
    struct lsvd_info info;
    int ret;

    if (!s->vol) {
        return -EIO;
    }
    ret = lsvd_stat(s->vol, &info);
    if (ret < 0) {
        return ret;
    }
    return info.stored_bytes + info.journal_bytes;
}

static void qemu_lsvd_refresh_limits(BlockDriverState *bs, Error **errp)
{
    bs->bl.request_alignment = LSVD_SECTOR_SIZE;
    bs->bl.pdiscard_alignment = LSVD_SECTOR_SIZE;
}

/* Give the node a file name lsvd:VOLUME[:conf=FILE] that opens it again. */
static void qemu_lsvd_refresh_filename(BlockDriverState *bs)
{
    BDRVLSVDState *s = bs->opaque;
    g_autoptr(GString) name = g_string_new("lsvd:");
    const char *p;

    /* Volume names have no characters that need escaping */
    g_string_append(name, s->volume);
    if (s->conf) {
        g_string_append(name, ":conf=");
        for (p = s->conf; *p != '\0'; p++) {
            if (*p == ':' || *p == '\\') {
                g_string_append_c(name, '\\');
            }
            g_string_append_c(name, *p);
        }
    }
    if (name->len < sizeof(bs->exact_filename)) {
        pstrcpy(bs->exact_filename, sizeof(bs->exact_filename), name->str);
    }
}

static QemuOptsList qemu_lsvd_create_opts = {
    .name = "lsvd-create-opts",
    .head = QTAILQ_HEAD_INITIALIZER(qemu_lsvd_create_opts.head),
    .desc = {
        {
            .name = BLOCK_OPT_SIZE,
            .type = QEMU_OPT_SIZE,
            .help = "Virtual disk size (a multiple of 512 bytes)"
        },
        {
            .name = "conf",
            .type = QEMU_OPT_STRING,
            .help = "LSVD configuration file (object store, cache)"
        },
        {
            .name = "url",
            .type = QEMU_OPT_STRING,
            .help = "Object store, in place of the configuration's: "
                    "dir:///path or s3://bucket[/prefix]"
        },
        {
            .name = "key-secret",
            .type = QEMU_OPT_STRING,
            .help = "ID of a secret object with the S3 secret access key"
        },
        { /* end of list */ }
    }
};

static const char *const qemu_lsvd_strong_runtime_opts[] = {
    "volume",
    "conf",
    "key-secret",
    "url",
    "cache-dir",

    NULL
};

static BlockDriver bdrv_lsvd = {
    .format_name                  = "lsvd",
    .protocol_name                = "lsvd",
    .instance_size                = sizeof(BDRVLSVDState),

    .bdrv_parse_filename          = qemu_lsvd_parse_filename,
    .bdrv_file_open               = qemu_lsvd_open,
    .bdrv_close                   = qemu_lsvd_close,
    .bdrv_reopen_prepare          = qemu_lsvd_reopen_prepare,
    .bdrv_co_create               = qemu_lsvd_co_create,
    .bdrv_co_create_opts          = qemu_lsvd_co_create_opts,
    .create_opts                  = &qemu_lsvd_create_opts,
    .bdrv_has_zero_init           = bdrv_has_zero_init_1,

    .bdrv_getlength               = qemu_lsvd_getlength,
    .bdrv_co_truncate             = qemu_lsvd_co_truncate,
    .bdrv_get_specific_info       = qemu_lsvd_get_specific_info,
    .bdrv_co_block_status         = qemu_lsvd_co_block_status,
    .bdrv_get_allocated_file_size = qemu_lsvd_get_allocated_file_size,
    .bdrv_refresh_limits          = qemu_lsvd_refresh_limits,
    .bdrv_refresh_filename        = qemu_lsvd_refresh_filename,

    .bdrv_co_preadv               = qemu_lsvd_co_preadv,
    .bdrv_co_pwritev              = qemu_lsvd_co_pwritev,
    .bdrv_co_flush_to_disk        = qemu_lsvd_co_flush,
    .bdrv_co_pdiscard             = qemu_lsvd_co_pdiscard,
    .bdrv_co_pwrite_zeroes        = qemu_lsvd_co_pwrite_zeroes,

    .strong_runtime_opts          = qemu_lsvd_strong_runtime_opts,
};

/*
 * lsvd-core's log lines, from any of its threads: errors and warnings
 * (a journal write that failed, a PUT being retried or given up) go to
 * stderr through error_report(), which any thread may call; information
 * lines stay quiet.
 */
static void qemu_lsvd_log(void *arg, enum lsvd_log_level level,
                          const char *msg)
{
    switch (level) {
    case LSVD_LOG_ERROR:
        error_report("lsvd: %s", msg);
        break;
    case LSVD_LOG_WARNING:
        warn_report("lsvd: %s", msg);
        break;
    case LSVD_LOG_INFO:
        break;
    }
}

static void bdrv_lsvd_init(void)
{
    lsvd_set_log_handler(qemu_lsvd_log, NULL);
    bdrv_register(&bdrv_lsvd);
}

block_init(bdrv_lsvd_init);
