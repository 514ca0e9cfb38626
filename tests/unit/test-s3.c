/*
 * test-s3 - the S3 backend.
 *
 * Against a real server (Ceph RGW from scripts/rgw.sh) when
 * LSVD_TEST_S3_CONF names an s3:// config: round trips, ranges, paging,
 * concurrency, bad credentials, a missing bucket.  Each run works under a
 * random prefix below the config's and deletes what it wrote.  Without
 * the variable those cases skip.
 *
 * Always, with no server: an unreachable endpoint; a fake HTTP server in
 * a thread of this process (127.0.0.1, ephemeral port, no signature
 * checks) scripted to answer 503 then 200, 403, nothing at all, too many
 * bytes, a hostile LIST page; and TLS against `openssl s_server` with a
 * certificate made here (skipped if openssl is missing).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "backend.h"
#include "config.h"
#include "lsvd.h"

static struct lsvd_config *rgw_cfg;     /* NULL: no server */
static char *rgw_prefix;                /* this run's prefix */

static double elapsed_s(gint64 t0)
{
    return (g_get_monotonic_time() - t0) / 1e6;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        p[i] = seed >> 16;
    }
}

/* The RGW settings, with this run's prefix and the config's (or the
 * environment's) credentials. */
static bool rgw_config(struct s3_config *c)
{
    if (!rgw_cfg) {
        g_test_skip("LSVD_TEST_S3_CONF is not set");
        return false;
    }
    *c = rgw_cfg->s3;
    c->prefix = rgw_prefix;
    if (!c->access_key) {
        c->access_key = (char *)g_getenv("AWS_ACCESS_KEY_ID");
        c->secret_key = (char *)g_getenv("AWS_SECRET_ACCESS_KEY");
    }
    g_assert_nonnull(c->access_key);
    return true;
}

static void open_ok(const struct s3_config *c, struct backend *b)
{
    struct lsvd_err err = { { 0 } };
    int ret = backend_s3_open(c, b, &err);

    if (ret < 0) {
        g_error("backend_s3_open: %s (%d)", err.msg, ret);
    }
}

static void put_buf(struct backend *b, const char *name, const void *buf,
                    size_t len)
{
    struct iovec iov = { (void *)buf, len };

    g_assert_cmpint(b->ops->put(b->be, name, &iov, 1), ==, 0);
}

/* ------------------------------------------------------------ RGW */

static void test_roundtrip(void)
{
    struct s3_config c;
    struct backend b;
    size_t big = 20u << 20;
    g_autofree uint8_t *data = g_malloc(big), *back = g_malloc(big + 10);
    struct iovec iov[3];
    struct backend_counters n;
    uint64_t size;
    gint64 t0;
    ssize_t got;

    if (!rgw_config(&c)) {
        return;
    }
    open_ok(&c, &b);
    fill(data, big, 1);

    /* three pieces, one of them empty */
    iov[0] = (struct iovec){ data, 1000 };
    iov[1] = (struct iovec){ data + 1000, 0 };
    iov[2] = (struct iovec){ data + 1000, 3096 };
    g_assert_cmpint(b.ops->put(b.be, "rt/small", iov, 3), ==, 0);
    g_assert_cmpint(b.ops->head(b.be, "rt/small", &size), ==, 0);
    g_assert_cmpuint(size, ==, 4096);
    memset(back, 0, 4096);
    got = b.ops->get_range(b.be, "rt/small", 0, back, 4096);
    g_assert_cmpint(got, ==, 4096);
    g_assert_cmpmem(back, 4096, data, 4096);

    /* 20 MiB: throughput for the report */
    t0 = g_get_monotonic_time();
    put_buf(&b, "rt/big", data, big);
    g_test_message("PUT 20 MiB: %.3f s, %.1f MiB/s", elapsed_s(t0),
                   20 / elapsed_s(t0));
    t0 = g_get_monotonic_time();
    got = b.ops->get_range(b.be, "rt/big", 0, back, big + 10);
    g_test_message("GET 20 MiB: %.3f s, %.1f MiB/s", elapsed_s(t0),
                   20 / elapsed_s(t0));
    g_assert_cmpint(got, ==, big);
    g_assert_true(memcmp(back, data, big) == 0);
    g_assert_cmpint(b.ops->head(b.be, "rt/big", &size), ==, 0);
    g_assert_cmpuint(size, ==, big);

    /* ranges: inside, across the end (short), past the end (0) */
    got = b.ops->get_range(b.be, "rt/big", 12345678, back, 65536);
    g_assert_cmpint(got, ==, 65536);
    g_assert_cmpmem(back, 65536, data + 12345678, 65536);
    got = b.ops->get_range(b.be, "rt/big", big - 100, back, 4096);
    g_assert_cmpint(got, ==, 100);
    g_assert_cmpmem(back, 100, data + big - 100, 100);
    got = b.ops->get_range(b.be, "rt/big", big + 5, back, 4096);
    g_assert_cmpint(got, ==, 0);
    got = b.ops->get_range(b.be, "rt/small", 0, back, 0);
    g_assert_cmpint(got, ==, 0);

    /* missing objects, and delete */
    g_assert_cmpint(b.ops->head(b.be, "rt/none", &size), ==, -ENOENT);
    g_assert_cmpint(b.ops->get_range(b.be, "rt/none", 0, back, 10), ==,
                    -ENOENT);
    g_assert_cmpint(b.ops->del(b.be, "rt/small"), ==, 0);
    g_assert_cmpint(b.ops->del(b.be, "rt/big"), ==, 0);
    g_assert_cmpint(b.ops->head(b.be, "rt/small", &size), ==, -ENOENT);
    g_assert_cmpint(b.ops->get_range(b.be, "rt/big", 0, back, 10), ==,
                    -ENOENT);
    /* S3 cannot tell a DELETE of a missing key (backend.h) */
    g_assert_cmpint(b.ops->del(b.be, "rt/none"), ==, 0);

    /* names we never write are refused before any request */
    g_assert_cmpint(b.ops->head(b.be, "rt/../x", &size), ==, -EINVAL);
    g_assert_cmpint(b.ops->head(b.be, "/x", &size), ==, -EINVAL);

    g_assert_cmpint(backend_get_counters(&b, &n), ==, 0);
    g_assert_cmpuint(n.put, ==, 2);
    g_assert_cmpuint(n.put_bytes, ==, 4096 + big);
    g_assert_cmpuint(n.get, ==, 7);     /* len 0 is a HEAD */
    g_assert_cmpuint(n.head, ==, 5);
    g_assert_cmpuint(n.get_bytes, ==, 4096 + big + 65536 + 100);
    g_assert_cmpuint(n.del, ==, 3);
    g_assert_cmpuint(n.errors, ==, 0);
    backend_close(&b);
}

struct job {
    struct backend *b;
    int first, count, step;
    const char *fmt;
    bool del;
    size_t len;
};

static gpointer put_job(gpointer arg)
{
    struct job *j = arg;
    g_autofree uint8_t *buf = g_malloc(j->len + 1);

    for (int i = j->first; i < j->count; i += j->step) {
        g_autofree char *name = g_strdup_printf(j->fmt, i);

        if (j->del) {
            g_assert_cmpint(j->b->ops->del(j->b->be, name), ==, 0);
        } else {
            fill(buf, j->len, i);
            put_buf(j->b, name, buf, j->len);
        }
    }
    return NULL;
}

/* @fmt with i in [0, count), from 8 threads. */
static void many(struct backend *b, const char *fmt, int count, bool del)
{
    GThread *t[8];
    struct job j[8];

    for (int i = 0; i < 8; i++) {
        j[i] = (struct job){ b, i, count, 8, fmt, del, 16 };
        t[i] = g_thread_new("put", put_job, &j[i]);
    }
    for (int i = 0; i < 8; i++) {
        g_thread_join(t[i]);
    }
}

static void test_list(void)
{
    static const char *const deep[] = {
        "ls/deep/a/x", "ls/deep/b/y", "ls/deep/b/z/w", "ls/deep/c",
    };
    struct s3_config c;
    struct backend b;
    struct backend_counters n0, n1;
    GPtrArray *names;
    const int count = 1100;
    gint64 t0;

    if (!rgw_config(&c)) {
        return;
    }
    c.max_requests = 16;
    open_ok(&c, &b);
    t0 = g_get_monotonic_time();
    many(&b, "ls/pg/%05d", count, false);
    g_test_message("%d PUTs from 8 threads: %.2f s", count, elapsed_s(t0));
    for (size_t i = 0; i < G_N_ELEMENTS(deep); i++) {
        put_buf(&b, deep[i], "x", 1);
    }

    backend_get_counters(&b, &n0);
    g_assert_cmpint(b.ops->list(b.be, "ls/pg/", &names), ==, 0);
    backend_get_counters(&b, &n1);
    g_assert_cmpuint(n1.list - n0.list, >=, 2);        /* it paged */
    g_assert_cmpuint(names->len, ==, count);
    for (int i = 0; i < count; i++) {
        g_autofree char *want = g_strdup_printf("ls/pg/%05d", i);
        g_assert_cmpstr(names->pdata[i], ==, want);
    }
    g_ptr_array_unref(names);

    g_assert_cmpint(b.ops->list(b.be, "ls/deep/", &names), ==, 0);
    g_assert_cmpuint(names->len, ==, 3);
    g_assert_cmpstr(names->pdata[0], ==, "ls/deep/a/");
    g_assert_cmpstr(names->pdata[1], ==, "ls/deep/b/");
    g_assert_cmpstr(names->pdata[2], ==, "ls/deep/c");
    g_ptr_array_unref(names);

    g_assert_cmpint(b.ops->list(b.be, "", &names), ==, 0);
    g_assert_cmpuint(names->len, ==, 1);
    g_assert_cmpstr(names->pdata[0], ==, "ls/");
    g_ptr_array_unref(names);

    g_assert_cmpint(b.ops->list(b.be, "ls/nothing/", &names), ==, 0);
    g_assert_cmpuint(names->len, ==, 0);
    g_ptr_array_unref(names);
    g_assert_cmpint(b.ops->list(b.be, "ls/../", &names), ==, -EINVAL);

    many(&b, "ls/pg/%05d", count, true);
    for (size_t i = 0; i < G_N_ELEMENTS(deep); i++) {
        g_assert_cmpint(b.ops->del(b.be, deep[i]), ==, 0);
    }
    g_assert_cmpint(b.ops->list(b.be, "", &names), ==, 0);
    g_assert_cmpuint(names->len, ==, 0);
    g_ptr_array_unref(names);
    backend_close(&b);
}

struct conc {
    struct backend *b;
    int id;
};

static gpointer conc_job(gpointer arg)
{
    struct conc *j = arg;
    size_t len = 100000 + j->id * 4099;
    g_autofree uint8_t *buf = g_malloc(len), *back = g_malloc(len);
    g_autofree char *name = g_strdup_printf("cc/%02d", j->id);

    for (int round = 0; round < 3; round++) {
        fill(buf, len, j->id * 100 + round);
        put_buf(j->b, name, buf, len);
        g_assert_cmpint(j->b->ops->get_range(j->b->be, name, 0, back, len),
                        ==, len);
        g_assert_true(memcmp(buf, back, len) == 0);
    }
    g_assert_cmpint(j->b->ops->del(j->b->be, name), ==, 0);
    return NULL;
}

static void test_concurrency(void)
{
    struct s3_config c;
    struct backend b;
    struct backend_counters n;
    GThread *t[32];
    struct conc j[32];
    gint64 t0;

    if (!rgw_config(&c)) {
        return;
    }
    c.max_requests = 4;
    open_ok(&c, &b);
    t0 = g_get_monotonic_time();
    for (int i = 0; i < 32; i++) {
        j[i] = (struct conc){ &b, i };
        t[i] = g_thread_new("conc", conc_job, &j[i]);
    }
    for (int i = 0; i < 32; i++) {
        g_thread_join(t[i]);
    }
    g_test_message("32 threads x 3 PUT+GET, max_requests 4: %.2f s",
                   elapsed_s(t0));
    backend_get_counters(&b, &n);
    g_assert_cmpuint(n.put, ==, 96);
    g_assert_cmpuint(n.get, ==, 96);
    g_assert_cmpuint(n.errors, ==, 0);
    backend_close(&b);
}

static void test_bad_secret(void)
{
    struct s3_config c;
    struct backend b = { 0 };
    struct lsvd_err err = { { 0 } };
    gint64 t0;
    int ret;

    if (!rgw_config(&c)) {
        return;
    }
    c.secret_key = "wrongSecretKey00000000000000000000000000";
    t0 = g_get_monotonic_time();
    ret = backend_s3_open(&c, &b, &err);
    g_test_message("wrong secret: %.3f s: %s", elapsed_s(t0), err.msg);
    g_assert_cmpint(ret, ==, -EACCES);
    g_assert_null(b.ops);
    g_assert_cmpfloat(elapsed_s(t0), <, 5);
    g_assert_nonnull(strstr(err.msg, "access denied"));
    g_assert_nonnull(strstr(err.msg, "secret_access_key"));
    g_assert_null(strstr(err.msg, c.secret_key));
    g_assert_null(strstr(err.msg, "Signature="));
}

static void test_no_bucket(void)
{
    struct s3_config c;
    struct backend b = { 0 };
    struct lsvd_err err = { { 0 } };
    int ret;

    if (!rgw_config(&c)) {
        return;
    }
    c.bucket = "lsvd-no-such-bucket";
    ret = backend_s3_open(&c, &b, &err);
    g_test_message("missing bucket: %s", err.msg);
    g_assert_cmpint(ret, ==, -ENXIO);
    g_assert_nonnull(strstr(err.msg, "bucket 'lsvd-no-such-bucket' does not "
                            "exist at http"));
}

/* ------------------------------------------------------------ no server */

static struct s3_config local_config(const char *endpoint)
{
    return (struct s3_config){
        .bucket = "fake",
        .prefix = "p/",
        .endpoint = (char *)endpoint,
        .region = "us-east-1",
        .access_key = "AKIDEXAMPLE",
        .secret_key = "secret-that-must-not-leak",
        .verify_tls = true,
        .connect_timeout_ms = 1000,
        .timeout_ms = 2000,
        .retry_time_ms = 5000,
        .max_requests = 4,
    };
}

/* A listening socket on 127.0.0.1, ephemeral port. */
static int listen_any_backlog(int *port, int backlog)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    g_assert_cmpint(listen(fd, backlog), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &alen), ==, 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int listen_any(int *port)
{
    return listen_any_backlog(port, 64);
}

static void test_unreachable(void)
{
    struct s3_config c = local_config("http://127.0.0.1:1");
    struct backend b = { 0 };
    struct lsvd_err err = { { 0 } };
    gint64 t0 = g_get_monotonic_time();
    int ret = backend_s3_open(&c, &b, &err);

    g_test_message("refused: %.3f s: %s", elapsed_s(t0), err.msg);
    g_assert_cmpint(ret, ==, -ECONNREFUSED);
    g_assert_cmpfloat(elapsed_s(t0), <, 5);
    g_assert_nonnull(strstr(err.msg, "cannot reach http://127.0.0.1:1"));
    g_assert_null(strstr(err.msg, c.secret_key));

    /* a listener whose accept queue is full drops our SYN: a connect
     * timeout, which open must not retry for retry_time */
    {
        g_autofree char *ep = NULL;
        int port, lfd = listen_any_backlog(&port, 0), fill[4];

        for (int i = 0; i < 4; i++) {
            struct sockaddr_in a = { .sin_family = AF_INET,
                                     .sin_port = htons(port) };

            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            connect(fill[i], (struct sockaddr *)&a, sizeof(a));
        }
        g_usleep(100000);
        ep = g_strdup_printf("http://127.0.0.1:%d", port);
        c = local_config(ep);
        t0 = g_get_monotonic_time();
        ret = backend_s3_open(&c, &b, &err);
        g_test_message("full backlog, connect_timeout 1 s: %.3f s: %s",
                       elapsed_s(t0), err.msg);
        g_assert_cmpint(ret, ==, -ETIMEDOUT);
        g_assert_cmpfloat(elapsed_s(t0), >=, 0.9);
        g_assert_cmpfloat(elapsed_s(t0), <, 5);
        for (int i = 0; i < 4; i++) {
            close(fill[i]);
        }
        close(lfd);
    }
}

/* A scripted HTTP/1.1 server.  Each request takes the next answer of the
 * script; with the script empty, a LIST gets an empty page and anything
 * else 200. */
struct answer {
    int status;
    const char *body;
    const char *headers;        /* extra lines, each ending "\r\n" */
    bool hang;                  /* never answer */
};

struct fake {
    int fd;
    int port;
    GThread *thread;
    GMutex lock;
    GQueue script;              /* struct answer * */
    GPtrArray *requests;        /* request lines */
    GPtrArray *conns;           /* GThread * */
    bool stop;
};

struct conn {
    struct fake *f;
    int fd;
};

static bool stopped(struct fake *f)
{
    bool s;

    g_mutex_lock(&f->lock);
    s = f->stop;
    g_mutex_unlock(&f->lock);
    return s;
}

/* recv with a 100 ms poll so that stop is noticed; <= 0 at the end. */
static ssize_t fake_recv(struct fake *f, int fd, char *buf, size_t len)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    while (!stopped(f)) {
        if (poll(&p, 1, 100) > 0) {
            return recv(fd, buf, len, 0);
        }
    }
    return -1;
}

static gpointer conn_main(gpointer arg)
{
    struct conn *c = arg;
    struct fake *f = c->f;
    g_autofree char *buf = g_malloc(1 << 16);
    size_t have = 0;

    for (;;) {
        char *end, *cl;
        size_t hlen, blen = 0;
        ssize_t n;
        struct answer *a;
        static const struct answer list_ok = {
            200, "<ListBucketResult><IsTruncated>false</IsTruncated>"
                 "</ListBucketResult>", NULL, false,
        };
        static const struct answer ok = { 200, "", NULL, false };
        g_autofree char *resp = NULL;

        while (!(end = g_strstr_len(buf, have, "\r\n\r\n"))) {
            n = fake_recv(f, c->fd, buf + have, (1 << 16) - 1 - have);
            if (n <= 0) {
                goto out;
            }
            have += n;
            buf[have] = '\0';
        }
        hlen = end + 4 - buf;
        cl = g_strstr_len(buf, hlen, "\r\nContent-Length:");
        if (!cl) {
            cl = g_strstr_len(buf, hlen, "\r\ncontent-length:");
        }
        if (cl) {
            blen = strtoul(cl + 17, NULL, 10);
        }
        g_mutex_lock(&f->lock);
        g_ptr_array_add(f->requests, g_strndup(buf, strcspn(buf, "\r\n")));
        a = g_queue_pop_head(&f->script);
        g_mutex_unlock(&f->lock);
        if (!a) {
            a = (struct answer *)(g_str_has_prefix(buf, "GET ") &&
                                  strstr(buf, "list-type=2") ? &list_ok
                                                             : &ok);
        }
        /* discard the body */
        while (have < hlen + blen) {
            size_t skip = MIN(have - hlen, blen);
            blen -= skip;
            have = hlen;
            n = fake_recv(f, c->fd, buf + have, (1 << 16) - 1 - have);
            if (n <= 0) {
                goto out;
            }
            have += n;
        }
        memmove(buf, buf + hlen + blen, have - hlen - blen);
        have -= hlen + blen;
        buf[have] = '\0';
        if (a->hang) {
            while (fake_recv(f, c->fd, buf, 1) > 0) {
                /* hold the connection until the client gives up */
            }
            goto out;
        }
        resp = g_strdup_printf("HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
                               "%s\r\n%s", a->status, strlen(a->body),
                               a->headers ? a->headers : "", a->body);
        if (send(c->fd, resp, strlen(resp), MSG_NOSIGNAL) < 0) {
            goto out;
        }
    }
out:
    close(c->fd);
    g_free(c);
    return NULL;
}

static gpointer fake_main(gpointer arg)
{
    struct fake *f = arg;
    struct pollfd p = { .fd = f->fd, .events = POLLIN };

    while (!stopped(f)) {
        if (poll(&p, 1, 100) > 0) {
            struct conn *c = g_new0(struct conn, 1);

            c->f = f;
            c->fd = accept(f->fd, NULL, NULL);
            g_assert_cmpint(c->fd, >=, 0);
            g_mutex_lock(&f->lock);
            g_ptr_array_add(f->conns, g_thread_new("conn", conn_main, c));
            g_mutex_unlock(&f->lock);
        }
    }
    return NULL;
}

static struct fake *fake_start(void)
{
    struct fake *f = g_new0(struct fake, 1);

    f->fd = listen_any(&f->port);
    g_mutex_init(&f->lock);
    f->requests = g_ptr_array_new_with_free_func(g_free);
    f->conns = g_ptr_array_new();
    f->thread = g_thread_new("fake", fake_main, f);
    return f;
}

static void fake_script(struct fake *f, const struct answer *a)
{
    g_mutex_lock(&f->lock);
    g_queue_push_tail(&f->script, (gpointer)a);
    g_mutex_unlock(&f->lock);
}

static guint fake_count(struct fake *f, const char *method)
{
    guint n = 0;

    g_mutex_lock(&f->lock);
    for (guint i = 0; i < f->requests->len; i++) {
        n += g_str_has_prefix(f->requests->pdata[i], method);
    }
    g_mutex_unlock(&f->lock);
    return n;
}

static void fake_stop(struct fake *f)
{
    g_mutex_lock(&f->lock);
    f->stop = true;
    g_mutex_unlock(&f->lock);
    g_thread_join(f->thread);
    for (guint i = 0; i < f->conns->len; i++) {
        g_thread_join(f->conns->pdata[i]);
    }
    close(f->fd);
    g_ptr_array_unref(f->conns);
    g_ptr_array_unref(f->requests);
    g_queue_clear(&f->script);
    g_mutex_clear(&f->lock);
    g_free(f);
}

static const struct answer slow_down = {
    503, "<Error><Code>SlowDown</Code><Message>Reduce your request rate."
         "</Message></Error>", NULL, false,
};
static const struct answer denied = {
    403, "<Error><Code>AccessDenied</Code></Error>", NULL, false,
};
static const struct answer hang = { 0, NULL, NULL, true };

static void fake_config(struct fake *f, struct s3_config *c)
{
    static char endpoint[64];

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", f->port);
    *c = local_config(endpoint);
}

static void test_retry(void)
{
    struct fake *f = fake_start();
    struct s3_config c;
    struct backend b;
    struct backend_counters n;
    uint8_t data[1000];
    struct iovec iov[2] = { { data, 300 }, { data + 300, 700 } };
    gint64 t0;
    int ret;

    fake_config(f, &c);
    open_ok(&c, &b);
    fill(data, sizeof(data), 7);

    /* 503 SlowDown twice, then 200: the PUT succeeds on the third try */
    fake_script(f, &slow_down);
    fake_script(f, &slow_down);
    t0 = g_get_monotonic_time();
    g_assert_cmpint(b.ops->put(b.be, "vol/0000000000000001", iov, 2), ==, 0);
    g_test_message("two 503s then 200: %.3f s", elapsed_s(t0));
    g_assert_cmpuint(fake_count(f, "PUT /fake/p/vol/0000000000000001 "), ==,
                     3);
    backend_get_counters(&b, &n);
    g_assert_cmpuint(n.retries, ==, 2);
    g_assert_cmpuint(n.put, ==, 1);
    g_assert_cmpuint(n.put_bytes, ==, 1000);
    g_assert_cmpuint(n.errors, ==, 0);

    /* 403 is final: one attempt */
    fake_script(f, &denied);
    ret = b.ops->put(b.be, "vol/0000000000000002", iov, 2);
    g_assert_cmpint(ret, ==, -EACCES);
    g_assert_cmpuint(fake_count(f, "PUT /fake/p/vol/0000000000000002 "), ==,
                     1);
    backend_get_counters(&b, &n);
    g_assert_cmpuint(n.retries, ==, 2);
    g_assert_cmpuint(n.errors, ==, 1);
    backend_close(&b);

    /* 503 for ever: fails with -EIO once retry_time is spent */
    c.retry_time_ms = 700;
    open_ok(&c, &b);
    for (int i = 0; i < 50; i++) {
        fake_script(f, &slow_down);
    }
    t0 = g_get_monotonic_time();
    ret = b.ops->del(b.be, "vol/0000000000000003");
    g_test_message("503 for ever, retry_time 0.7 s: %.3f s", elapsed_s(t0));
    g_assert_cmpint(ret, ==, -EIO);
    g_assert_cmpfloat(elapsed_s(t0), <, 3);
    backend_get_counters(&b, &n);
    g_assert_cmpuint(n.retries, >=, 2);
    backend_close(&b);
    fake_stop(f);
}

static void test_timeout(void)
{
    struct fake *f = fake_start();
    struct s3_config c;
    struct backend b;
    char buf[100];
    gint64 t0;
    ssize_t ret;

    fake_config(f, &c);
    c.timeout_ms = 1000;
    c.retry_time_ms = 0;
    open_ok(&c, &b);
    fake_script(f, &hang);
    t0 = g_get_monotonic_time();
    ret = b.ops->get_range(b.be, "vol/super", 0, buf, sizeof(buf));
    g_test_message("no answer, timeout 1 s, no retry: %.3f s",
                   elapsed_s(t0));
    g_assert_cmpint(ret, ==, -ETIMEDOUT);
    g_assert_cmpfloat(elapsed_s(t0), >=, 0.9);
    g_assert_cmpfloat(elapsed_s(t0), <, 3.5);
    g_assert_cmpuint(fake_count(f, "GET /fake/p/vol/super "), ==, 1);
    backend_close(&b);
    fake_stop(f);
}

static void test_overflow(void)
{
    static const struct answer too_much = {
        206, "0123456789ABCDEF", "Content-Range: bytes 0-15/16\r\n", false,
    };
    static const struct answer wrong_range = {
        206, "0123", "Content-Range: bytes 0-3/16\r\n", false,
    };
    struct fake *f = fake_start();
    struct s3_config c;
    struct backend b;
    char buf[32];

    fake_config(f, &c);
    open_ok(&c, &b);
    memset(buf, 'z', sizeof(buf));
    fake_script(f, &too_much);
    g_assert_cmpint(b.ops->get_range(b.be, "vol/super", 0, buf, 8), ==, -EIO);
    g_assert_true(buf[8] == 'z');       /* nothing past what was asked */
    fake_script(f, &wrong_range);
    g_assert_cmpint(b.ops->get_range(b.be, "vol/super", 4, buf, 4), ==, -EIO);
    backend_close(&b);
    fake_stop(f);
}

static void test_hostile_list(void)
{
    static const struct answer page1 = {
        200, "<ListBucketResult><IsTruncated>true</IsTruncated>"
             "<EncodingType>url</EncodingType>"
             "<NextContinuationToken>tok/1=</NextContinuationToken>"
             "<Contents><Key>p/vol/0000000000000001</Key><Size>5</Size>"
             "</Contents>"
             "<Contents><Key>p/vol/..</Key><Size>5</Size></Contents>"
             "<Contents><Key>p/vol/a%01b</Key><Size>5</Size></Contents>"
             "<Contents><Key>p/vol/a%2Fb</Key><Size>5</Size></Contents>"
             "<Contents><Key>other/vol/x</Key><Size>5</Size></Contents>"
             "<Contents><Key>p/vol/</Key><Size>0</Size></Contents>"
             "</ListBucketResult>", NULL, false,
    };
    static const struct answer page2 = {
        200, "<ListBucketResult><IsTruncated>false</IsTruncated>"
             "<Unknown><Key>p/vol/ignored</Key></Unknown>"
             "<Contents><Key>p/vol/super</Key><Size>5</Size></Contents>"
             "<CommonPrefixes><Prefix>p/vol/sub/</Prefix></CommonPrefixes>"
             "<CommonPrefixes><Prefix>p/vol/s%20b/</Prefix></CommonPrefixes>"
             "</ListBucketResult>", NULL, false,
    };
    static const struct answer garbage = { 200, "<html>", NULL, false };
    struct fake *f = fake_start();
    struct s3_config c;
    struct backend b;
    GPtrArray *names;
    bool token_sent = false;

    fake_config(f, &c);
    open_ok(&c, &b);
    fake_script(f, &page1);
    fake_script(f, &page2);
    g_assert_cmpint(b.ops->list(b.be, "vol/", &names), ==, 0);
    g_assert_cmpuint(names->len, ==, 3);
    g_assert_cmpstr(names->pdata[0], ==, "vol/0000000000000001");
    g_assert_cmpstr(names->pdata[1], ==, "vol/sub/");
    g_assert_cmpstr(names->pdata[2], ==, "vol/super");
    g_ptr_array_unref(names);
    g_mutex_lock(&f->lock);
    for (guint i = 0; i < f->requests->len; i++) {
        token_sent |= strstr(f->requests->pdata[i],
                             "continuation-token=tok%2F1%3D") != NULL;
    }
    g_mutex_unlock(&f->lock);
    g_assert_true(token_sent);

    fake_script(f, &garbage);
    g_assert_cmpint(b.ops->list(b.be, "vol/", &names), ==, -EIO);
    backend_close(&b);
    fake_stop(f);
}

/* ------------------------------------------------------------ TLS */

static bool run_cmd(const char *cmd)
{
    int status;

    g_autofree char *out = NULL, *err = NULL;

    return g_spawn_command_line_sync(cmd, &out, &err, &status, NULL) &&
           g_spawn_check_wait_status(status, NULL);
}

static void test_tls(void)
{
    g_autofree char *dir = g_dir_make_tmp("lsvd-tls-XXXXXX", NULL);
    g_autofree char *cert = g_build_filename(dir, "cert.pem", NULL);
    g_autofree char *key = g_build_filename(dir, "key.pem", NULL);
    g_autofree char *gen = NULL, *endpoint = NULL, *port_s = NULL;
    g_autofree char *openssl = g_find_program_in_path("openssl");
    struct s3_config c;
    struct backend b = { 0 };
    struct lsvd_err err = { { 0 } };
    GPid pid;
    int port, fd, ret;
    bool up = false;

    if (!openssl) {
        g_test_skip("no openssl command");
        return;
    }
    gen = g_strdup_printf("%s req -x509 -newkey rsa:2048 -nodes -days 1 "
                          "-subj /CN=127.0.0.1 -addext "
                          "subjectAltName=IP:127.0.0.1 -keyout %s -out %s",
                          openssl, key, cert);
    if (!run_cmd(gen)) {
        g_test_skip("openssl req failed");
        return;
    }
    /* a free port: take one, let it go, hand it to s_server */
    fd = listen_any(&port);
    close(fd);
    port_s = g_strdup_printf("127.0.0.1:%d", port);
    {
        const char *argv[] = {
            openssl, "s_server", "-quiet", "-www", "-accept", port_s,
            "-cert", cert, "-key", key, NULL,
        };
        g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                    G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                    NULL, NULL, &pid, NULL));
    }
    for (int i = 0; i < 100 && !up; i++) {
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons(port) };
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        up = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(s);
        if (!up) {
            g_usleep(50000);
        }
    }
    g_assert_true(up);
    endpoint = g_strdup_printf("https://127.0.0.1:%d", port);

    /* verification on, our certificate unknown */
    c = local_config(endpoint);
    ret = backend_s3_open(&c, &b, &err);
    g_test_message("verify on: %s", err.msg);
    g_assert_cmpint(ret, ==, -EACCES);
    g_assert_nonnull(strstr(err.msg, "certificate"));

    /* with ca_file the handshake passes; s_server's page is no S3 */
    c.ca_file = cert;
    memset(&err, 0, sizeof(err));
    ret = backend_s3_open(&c, &b, &err);
    g_test_message("with ca_file: %s", err.msg);
    g_assert_cmpint(ret, ==, -EIO);
    g_assert_null(strstr(err.msg, "certificate"));
    g_assert_nonnull(strstr(err.msg, "HTTP 200"));

    /* verification off: the same */
    c.ca_file = NULL;
    c.verify_tls = false;
    memset(&err, 0, sizeof(err));
    ret = backend_s3_open(&c, &b, &err);
    g_assert_cmpint(ret, ==, -EIO);
    g_assert_nonnull(strstr(err.msg, "HTTP 200"));

    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
    g_unlink(cert);
    g_unlink(key);
    g_rmdir(dir);
}

static void quiet(void *opaque, enum lsvd_log_level level, const char *msg)
{
    (void)opaque;
    if (g_test_verbose() || level == LSVD_LOG_ERROR) {
        g_test_message("log %d: %s", level, msg);
    }
}

int main(int argc, char **argv)
{
    const char *conf = g_getenv("LSVD_TEST_S3_CONF");
    struct lsvd_err err = { { 0 } };
    int ret;

    g_test_init(&argc, &argv, NULL);
    lsvd_set_log_handler(quiet, NULL);
    if (conf && *conf) {
        if (lsvd_config_load(conf, &rgw_cfg, &err) < 0) {
            g_error("%s", err.msg);
        }
        if (!rgw_cfg->is_s3) {
            g_error("%s: not an s3:// config", conf);
        }
        rgw_prefix = g_strdup_printf("%stest-%08x/", rgw_cfg->s3.prefix,
                                     g_random_int());
        g_test_message("prefix %s", rgw_prefix);
    }
    g_test_add_func("/s3/rgw/roundtrip", test_roundtrip);
    g_test_add_func("/s3/rgw/list", test_list);
    g_test_add_func("/s3/rgw/concurrency", test_concurrency);
    g_test_add_func("/s3/rgw/bad-secret", test_bad_secret);
    g_test_add_func("/s3/rgw/no-bucket", test_no_bucket);
    g_test_add_func("/s3/local/unreachable", test_unreachable);
    g_test_add_func("/s3/local/retry", test_retry);
    g_test_add_func("/s3/local/timeout", test_timeout);
    g_test_add_func("/s3/local/overflow", test_overflow);
    g_test_add_func("/s3/local/hostile-list", test_hostile_list);
    g_test_add_func("/s3/local/tls", test_tls);
    ret = g_test_run();
    if (rgw_cfg) {
        lsvd_config_free(rgw_cfg);
    }
    g_free(rgw_prefix);
    return ret;
}
