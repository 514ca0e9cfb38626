/*
 * backend.c - open the object store a configuration names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "backend.h"
#include "util.h"

/*
 * The counting layer stacked on every store backend_open() opens: requests
 * and bytes per kind, the same for dir:// and s3://, for lsvd_stat().
 */
struct counted {
    struct backend inner;
    struct backend_counters c;      /* updated with atomics */
};

static void count(uint64_t *n, uint64_t *bytes, uint64_t len)
{
    __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
    if (bytes) {
        __atomic_fetch_add(bytes, len, __ATOMIC_RELAXED);
    }
}

static int counted_result(struct counted *k, int64_t ret, int64_t ok_errno)
{
    if (ret < 0 && ret != -ok_errno) {
        count(&k->c.errors, NULL, 0);
    }
    return ret;
}

static int counted_put(void *be, const char *name, const struct iovec *iov,
                       int iovcnt)
{
    struct counted *k = be;
    uint64_t len = 0;

    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
    }
    count(&k->c.put, &k->c.put_bytes, len);
    return counted_result(k, k->inner.ops->put(k->inner.be, name, iov,
                                               iovcnt), 0);
}

static ssize_t counted_get_range(void *be, const char *name, uint64_t offset,
                                 void *buf, size_t len)
{
    struct counted *k = be;
    ssize_t n = k->inner.ops->get_range(k->inner.be, name, offset, buf, len);

    count(&k->c.get, &k->c.get_bytes, n > 0 ? n : 0);
    return counted_result(k, n, ENOENT);
}

static int counted_del(void *be, const char *name)
{
    struct counted *k = be;

    count(&k->c.del, NULL, 0);
    return counted_result(k, k->inner.ops->del(k->inner.be, name), ENOENT);
}

static int counted_list(void *be, const char *prefix, GPtrArray **names)
{
    struct counted *k = be;

    count(&k->c.list, NULL, 0);
    return counted_result(k, k->inner.ops->list(k->inner.be, prefix, names),
                          0);
}

static int counted_head(void *be, const char *name, uint64_t *size)
{
    struct counted *k = be;

    count(&k->c.head, NULL, 0);
    return counted_result(k, k->inner.ops->head(k->inner.be, name, size),
                          ENOENT);
}

static void counted_destroy(void *be)
{
    struct counted *k = be;

    backend_close(&k->inner);
    g_free(k);
}

/* Our counts; retries from the store itself, which alone sees them. */
static void counted_counters(void *be, struct backend_counters *out)
{
    struct counted *k = be;
    struct backend_counters in = { 0 };

    if (k->inner.ops->counters) {
        k->inner.ops->counters(k->inner.be, &in);
    }
    out->put = __atomic_load_n(&k->c.put, __ATOMIC_RELAXED);
    out->put_bytes = __atomic_load_n(&k->c.put_bytes, __ATOMIC_RELAXED);
    out->get = __atomic_load_n(&k->c.get, __ATOMIC_RELAXED);
    out->get_bytes = __atomic_load_n(&k->c.get_bytes, __ATOMIC_RELAXED);
    out->head = __atomic_load_n(&k->c.head, __ATOMIC_RELAXED);
    out->del = __atomic_load_n(&k->c.del, __ATOMIC_RELAXED);
    out->list = __atomic_load_n(&k->c.list, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&k->c.errors, __ATOMIC_RELAXED);
    out->retries = in.retries;
}

static const struct backend_ops counted_ops = {
    .put = counted_put,
    .get_range = counted_get_range,
    .del = counted_del,
    .list = counted_list,
    .head = counted_head,
    .destroy = counted_destroy,
    .counters = counted_counters,
};

void backend_counters(struct backend *b, struct backend_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (b->ops && b->ops->counters) {
        b->ops->counters(b->be, out);
    }
}

static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

/*
 * Credentials: the config's pair (or what lsvd_config_set_credentials()
 * put there) wins over the environment's.  A secret key alone (QEMU's
 * key-secret=) takes its access key ID from AWS_ACCESS_KEY_ID.
 */
static int open_s3(const struct lsvd_config *cfg, struct backend *out,
                   struct lsvd_err *err)
{
    struct s3_config c = cfg->s3;

    if (!c.access_key && !c.secret_key) {
        c.access_key = (char *)env("AWS_ACCESS_KEY_ID");
        c.secret_key = (char *)env("AWS_SECRET_ACCESS_KEY");
        if (!c.session_token) {
            c.session_token = (char *)env("AWS_SESSION_TOKEN");
        }
    } else if (!c.access_key) {
        c.access_key = (char *)env("AWS_ACCESS_KEY_ID");
        if (!c.access_key) {
            return lsvd_fail(err, -EACCES, "%s: a secret key is given but "
                             "no access key ID: set access_key_id in "
                             "[backend] or AWS_ACCESS_KEY_ID", cfg->source);
        }
    }
    if (c.access_key && !c.secret_key) {
        return lsvd_fail(err, -EACCES, "%s: access_key_id is set but no "
                         "secret: set secret_access_key, or give QEMU's "
                         "key-secret=", cfg->source);
    }
    if (!c.access_key || !c.secret_key) {
        return lsvd_fail(err, -EACCES, "%s: no S3 credentials: set "
                         "access_key_id and secret_access_key in [backend], "
                         "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                         cfg->source);
    }
    return backend_s3_open(&c, out, err);
}

int backend_open(const struct lsvd_config *cfg, struct backend *out,
                 struct lsvd_err *err)
{
    const char *url = cfg->backend_url;
    struct backend inner = { 0 };
    struct counted *k;
    int ret;

    if (g_str_has_prefix(url, "dir://")) {
        /* the directory is made on first use so that the embedded default
         * works on a machine where nothing was set up */
        ret = backend_dir_open(url + strlen("dir://"), true, &inner, err);
    } else if (cfg->is_s3) {
        ret = open_s3(cfg, &inner, err);
    } else {
        ret = lsvd_fail(err, -ENOTSUP, "unsupported backend URL '%s'", url);
    }
    if (ret < 0) {
        return ret;
    }
    k = g_new0(struct counted, 1);
    k->inner = inner;
    out->ops = &counted_ops;
    out->be = k;
    return 0;
}
