/*
 * backend_s3.c - the object store in an S3 bucket (AWS S3, Ceph RGW, ...)
 * over libcurl's multi interface, every request signed with SigV4.
 *
 * Object "VOL/NAME" is key PREFIX + "VOL/NAME" in the bucket.  URLs are
 * path-style (http://endpoint/bucket/key) or virtual-hosted
 * (https://bucket.s3.REGION.amazonaws.com/key); S3_ADDR_AUTO picks
 * path-style when an endpoint is configured, virtual-hosted for AWS.
 *
 * Threads: the operations are synchronous and may be called from any
 * thread.  A caller describes its request in a struct s3_req on its own
 * stack, queues it (s->queue), wakes the backend's one "lsvd-s3" thread
 * with curl_multi_wakeup() and waits on the request's GCond.  That thread
 * owns the multi handle, the easy handles and the retry timers: it keeps
 * at most max_requests transfers in flight (the rest wait in the queue),
 * reuses connections (the multi handle's cache, CURLMOPT_MAXCONNECTS) and
 * easy handles (a free list), and runs a retry as a timer of its own
 * loop, so that one failing request never holds up the others.
 *
 * Request states:
 *   QUEUED   in s->queue (s->lock)           -> IN FLIGHT
 *   IN FLIGHT an easy handle in the multi     -> DONE, or WAITING to retry
 *   WAITING  in s->waiting until retry_at     -> QUEUED (at the head)
 *   DONE     r->done set under s->lock, the caller woken; the s3 thread
 *            never touches the request again (it lives on the caller's
 *            stack)
 *
 * Locks: s->lock guards s->queue, s->stopping and r->done/r->ret.  Between
 * leaving the queue and DONE a request belongs to the s3 thread alone, as
 * do s->waiting, s->active and s->free_easy.  Counters are relaxed atomics.
 *
 * Bodies: a PUT is read from the caller's iovec (CURLOPT_READFUNCTION,
 * rewound by CURLOPT_SEEKFUNCTION when curl resends on a fresh
 * connection, and from the start on each retry); a GET is written straight
 * into the caller's buffer and a server that sends more than was asked
 * fails the request with -EIO.  LIST pages and error bodies are collected
 * in memory, bounded (S3XML_MAX_DOC, ERR_BODY_MAX).
 *
 * Signing: SigV4 (sigv4.c), header form.  x-amz-content-sha256 is the
 * real SHA-256 of the PUT payload, computed over the iovec in the calling
 * thread, or that of the empty body.  Signed: host, x-amz-date,
 * x-amz-content-sha256, x-amz-security-token (with a session token) and
 * Range.  The Host header is sent explicitly, as signed.
 *
 * Timeouts, per attempt: connect_timeout; a transfer that moves no byte
 * for timeout (rounded up to seconds, CURLOPT_LOW_SPEED_TIME) fails; and
 * a whole attempt is capped at timeout plus one second per MiB of body
 * (CURLOPT_TIMEOUT_MS), so that a 32 MiB PUT on a slow link is not cut
 * short while a stalled one is.
 *
 * Retries: transient failures (the `retry` column of the error tables:
 * 5xx, 429, SlowDown, RequestTimeout, connection refused or reset,
 * timeouts, partial transfers) are retried with exponential backoff and
 * jitter (100 ms doubling to 10 s, each delay drawn from [d/2, d]) while
 * the next attempt would start within retry_time of the first; 0 means
 * no retry.  The check at open retries only within OPEN_RETRY_MS.
 *
 * Errors: negative errno, from the two tables below (HTTP status and S3
 * error code; curl code).  Nothing logged or put in an error message
 * holds a credential or an Authorization header.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <glib.h>
#include <openssl/evp.h>

#include "backend.h"
#include "s3xml.h"
#include "sigv4.h"
#include "util.h"

#define ERR_BODY_MAX (64u << 10)
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
#define OPEN_RETRY_MS 1000
#define LIST_PAGE_KEYS 1000
#define EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum s3_kind { K_PUT, K_GET, K_HEAD, K_DEL, K_LIST };

static const char *const kind_method[] = {
    [K_PUT] = "PUT", [K_GET] = "GET", [K_HEAD] = "HEAD",
    [K_DEL] = "DELETE", [K_LIST] = "GET",
};

struct s3_store {
    /* set at open, then read-only */
    char *bucket;
    char *prefix;
    char *region;
    char *access_key;
    char *secret_key;
    char *session_token;
    char *ca_file;
    char *base;             /* "http://127.0.0.1:7480" */
    char *host;             /* Host header, as signed */
    char *bucket_path;      /* "/bucket" (path-style) or "" */
    char *where;            /* the endpoint, for messages */
    bool verify_tls;
    unsigned connect_timeout_ms, timeout_ms, retry_time_ms, max_requests;

    CURLM *multi;
    GThread *thread;

    GMutex lock;
    GQueue queue;           /* struct s3_req, QUEUED */
    bool stopping;

    /* s3 thread only */
    GQueue waiting;         /* struct s3_req, by retry_at */
    GQueue active;          /* struct s3_req, IN FLIGHT */
    GPtrArray *free_easy;   /* CURL * */

    struct backend_counters n;  /* __atomic access only */
};

struct s3_req {
    enum s3_kind kind;
    char *path;             /* URI-encoded, as signed */
    char *query;            /* unencoded, or NULL */
    char *range;            /* "Range: bytes=A-B" or NULL */
    char payload_sha[65];
    bool at_open;

    /* PUT body */
    const struct iovec *iov;
    int iovcnt;
    uint64_t put_len;
    int iov_i;
    size_t iov_off;

    /* GET: into buf; LIST and errors: into body */
    char *buf;
    size_t buf_len;
    uint64_t offset;
    size_t got;
    bool overflow;
    int64_t range_start;    /* from Content-Range, or -1 */
    GByteArray *body;

    /* the current attempt (s3 thread) */
    CURL *easy;
    struct curl_slist *hdrs;
    long status;
    CURLcode cc;
    long os_errno;
    char errbuf[CURL_ERROR_SIZE];
    struct s3xml_error xerr;
    curl_off_t length;      /* HEAD: Content-Length */

    /* retries (s3 thread) */
    gint64 deadline;        /* monotonic us: no attempt starts after */
    gint64 retry_at;
    unsigned delay_ms;

    /* completion (s->lock) */
    bool done;
    int ret;
    GCond cond;
};

/* ------------------------------------------------------------ errors */

/*
 * The one place HTTP answers become errno.  First match wins: an entry
 * with a code matches only that S3 error code.  retry: a transient
 * failure, worth another attempt; the errno is what the request fails
 * with when no attempt is left.
 */
static const struct http_err {
    long lo, hi;
    const char *code;
    int err;
    bool retry;
} http_errors[] = {
    { 404, 404, "NoSuchBucket", -ENXIO, false },
    { 404, 404, NULL, -ENOENT, false },         /* NoSuchKey; HEAD */
    { 403, 403, NULL, -EACCES, false },         /* AccessDenied,
                                                 * InvalidAccessKeyId,
                                                 * SignatureDoesNotMatch,
                                                 * RequestTimeTooSkewed */
    { 0, 999, "SlowDown", -EIO, true },
    { 400, 400, "RequestTimeout", -ETIMEDOUT, true },
    { 400, 400, "ExpiredToken", -EACCES, false },
    { 400, 400, NULL, -EINVAL, false },         /* InvalidArgument,
                                                 * AuthorizationHeader-
                                                 * Malformed (region) */
    { 301, 308, NULL, -EINVAL, false },         /* PermanentRedirect:
                                                 * wrong region/endpoint */
    { 409, 409, NULL, -EBUSY, false },
    { 416, 416, NULL, -ERANGE, false },         /* get: past the end */
    { 429, 429, NULL, -EIO, true },
    { 501, 501, NULL, -ENOTSUP, false },
    { 500, 599, NULL, -EIO, true },
    { 0, 999, NULL, -EIO, false },
};

/* And curl's failures.  os: use the connect's errno when curl has one
 * (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH). */
static const struct curl_err {
    CURLcode cc;
    int err;
    bool retry;
    bool os;
} curl_errors[] = {
    { CURLE_COULDNT_RESOLVE_HOST, -EHOSTUNREACH, true, false },
    { CURLE_COULDNT_CONNECT, -ECONNREFUSED, true, true },
    { CURLE_OPERATION_TIMEDOUT, -ETIMEDOUT, true, false },
    { CURLE_SEND_ERROR, -ECONNRESET, true, false },
    { CURLE_RECV_ERROR, -ECONNRESET, true, false },
    { CURLE_GOT_NOTHING, -ECONNRESET, true, false },
    { CURLE_PARTIAL_FILE, -EIO, true, false },
    { CURLE_SEND_FAIL_REWIND, -EIO, true, false },
    { CURLE_SSL_CONNECT_ERROR, -ECONNRESET, true, false },
    { CURLE_PEER_FAILED_VERIFICATION, -EACCES, false, false },
    { CURLE_SSL_CACERT_BADFILE, -EINVAL, false, false },
    { CURLE_SSL_CERTPROBLEM, -EINVAL, false, false },
    { CURLE_OUT_OF_MEMORY, -ENOMEM, false, false },
    { CURLE_URL_MALFORMAT, -EINVAL, false, false },
    { CURLE_UNSUPPORTED_PROTOCOL, -EINVAL, false, false },
    { CURLE_WRITE_ERROR, -EIO, false, false },  /* more than asked */
    { CURLE_READ_ERROR, -EIO, false, false },
};

/* Map the attempt's outcome to errno; 0 for success. */
static int classify(struct s3_req *r, bool *retry)
{
    *retry = false;
    if (r->cc != CURLE_OK) {
        if (r->overflow) {
            return -EIO;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(curl_errors); i++) {
            const struct curl_err *e = &curl_errors[i];
            if (e->cc == r->cc) {
                *retry = e->retry;
                return e->os && r->os_errno > 0 ? -(int)r->os_errno : e->err;
            }
        }
        return -EIO;
    }
    if (r->status >= 200 && r->status < 300) {
        return 0;
    }
    if (r->body && r->body->len) {
        s3xml_error_clear(&r->xerr);
        if (s3xml_parse_error((const char *)r->body->data, r->body->len,
                              &r->xerr) < 0) {
            memset(&r->xerr, 0, sizeof(r->xerr));
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(http_errors); i++) {
        const struct http_err *e = &http_errors[i];
        if (r->status >= e->lo && r->status <= e->hi &&
            (!e->code || (r->xerr.code && !strcmp(r->xerr.code, e->code)))) {
            *retry = e->retry;
            return e->err;
        }
    }
    return -EIO;
}

/* What went wrong with the attempt, for a log line or message. */
static void describe(struct s3_req *r, char *out, size_t size)
{
    if (r->overflow) {
        snprintf(out, size, "the server sent more than was asked");
    } else if (r->cc != CURLE_OK) {
        snprintf(out, size, "%s", r->errbuf[0] ? r->errbuf
                                               : curl_easy_strerror(r->cc));
    } else {
        snprintf(out, size, "HTTP %ld%s%s", r->status,
                 r->xerr.code ? " " : "", r->xerr.code ? r->xerr.code : "");
    }
}

/* ------------------------------------------------------------ names */

/* A name we would write: '/'-separated components of [A-Za-z0-9._-],
 * none empty, "." or "..", with a trailing '/' only if @dir. */
static bool name_ok(const char *name, bool dir)
{
    const char *p = name;

    if (!*name || strlen(name) > S3XML_MAX_KEY) {
        return false;
    }
    while (*p) {
        const char *c = p;

        while (g_ascii_isalnum(*p) || *p == '.' || *p == '_' || *p == '-') {
            p++;
        }
        if (p == c || (p - c == 1 && c[0] == '.') ||
            (p - c == 2 && c[0] == '.' && c[1] == '.')) {
            return false;
        }
        if (*p == '\0') {
            return !dir;
        }
        if (*p != '/') {
            return false;
        }
        p++;
        if (*p == '\0') {
            return dir;
        }
    }
    return false;
}

static char *object_path(struct s3_store *s, const char *name)
{
    g_autofree char *key = g_strconcat(s->prefix, name, NULL);
    g_autofree char *enc = sigv4_uri_encode(key, true);

    return g_strconcat(s->bucket_path, "/", enc, NULL);
}

/* ------------------------------------------------------------ callbacks */

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *arg)
{
    struct s3_req *r = arg;
    size_t want = size * nmemb, done = 0;

    while (done < want && r->iov_i < r->iovcnt) {
        const struct iovec *v = &r->iov[r->iov_i];
        size_t n = MIN(v->iov_len - r->iov_off, want - done);

        if (n > 0) {    /* an empty element may have a NULL base */
            memcpy(dst + done, (const char *)v->iov_base + r->iov_off, n);
        }
        done += n;
        r->iov_off += n;
        if (r->iov_off == v->iov_len) {
            r->iov_i++;
            r->iov_off = 0;
        }
    }
    return done;
}

static void rewind_to(struct s3_req *r, uint64_t off)
{
    r->iov_i = 0;
    r->iov_off = 0;
    while (r->iov_i < r->iovcnt && off >= r->iov[r->iov_i].iov_len) {
        off -= r->iov[r->iov_i].iov_len;
        r->iov_i++;
    }
    r->iov_off = off;
}

static int seek_cb(void *arg, curl_off_t off, int origin)
{
    struct s3_req *r = arg;

    if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->put_len) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    rewind_to(r, off);
    return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct s3_req *r = arg;
    size_t n = size * nmemb;
    bool ok;
    size_t max;

    if (!r->status) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    }
    ok = r->status >= 200 && r->status < 300;
    if (ok && r->kind == K_GET) {
        if (n > r->buf_len - r->got) {
            r->overflow = true;
            return 0;           /* CURLE_WRITE_ERROR */
        }
        memcpy(r->buf + r->got, data, n);
        r->got += n;
        return n;
    }
    if (!r->body) {
        r->body = g_byte_array_new();
    }
    max = ok && r->kind == K_LIST ? S3XML_MAX_DOC : ERR_BODY_MAX;
    if (r->body->len + n > max) {
        if (ok) {
            r->overflow = true;
            return 0;
        }
        n = max - r->body->len;     /* an error's tail is not needed */
        g_byte_array_append(r->body, (const guint8 *)data, n);
        return size * nmemb;
    }
    g_byte_array_append(r->body, (const guint8 *)data, n);
    return n;
}

/* Notes Content-Range of a ranged GET, to check the server's offset. */
static size_t header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct s3_req *r = arg;
    size_t n = size * nmemb;
    static const char cr[] = "content-range:";
    char line[128];

    if (n > 5 && !strncmp(data, "HTTP/", 5)) {
        r->range_start = -1;            /* a new response (after a 1xx) */
    } else if (n > sizeof(cr) && n < sizeof(line) &&
               !g_ascii_strncasecmp(data, cr, sizeof(cr) - 1)) {
        uint64_t a;

        memcpy(line, data, n);
        line[n] = '\0';
        if (sscanf(line + sizeof(cr) - 1, " bytes %" SCNu64 "-", &a) == 1) {
            r->range_start = a;
        }
    }
    return n;
}

/* ------------------------------------------------------------ s3 thread */

static void add_header(struct s3_req *r, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void add_header(struct s3_req *r, const char *fmt, ...)
{
    g_autofree char *h = NULL;
    va_list ap;

    va_start(ap, fmt);
    h = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    r->hdrs = curl_slist_append(r->hdrs, h);
}

/* Sign and hand the request to the multi handle. */
static int start_attempt(struct s3_store *s, struct s3_req *r)
{
    const char *extra[2] = { r->range, NULL };
    struct sigv4_request sr = {
        .method = kind_method[r->kind],
        .host = s->host,
        .path = r->path,
        .query = r->query,
        .headers = r->range ? extra : NULL,
        .payload_sha256 = r->payload_sha,
        .region = s->region,
        .service = "s3",
        .access_key = s->access_key,
        .secret_key = s->secret_key,
        .session_token = s->session_token,
        .now = time(NULL),
    };
    g_autofree char *auth = NULL, *date = NULL, *url = NULL, *q = NULL;
    uint64_t body = r->kind == K_PUT ? r->put_len : r->buf_len;
    CURL *e;
    int ret;

    ret = sigv4_sign(&sr, &auth, &date);
    if (ret < 0) {
        return ret;
    }
    q = r->query ? sigv4_canonical_query(r->query) : NULL;
    url = g_strconcat(s->base, r->path, q ? "?" : "", q ? q : "", NULL);

    e = s->free_easy->len ? g_ptr_array_steal_index_fast(s->free_easy,
                                                         s->free_easy->len - 1)
                          : curl_easy_init();
    if (!e) {
        return -ENOMEM;
    }
    curl_easy_reset(e);
    r->easy = e;
    r->hdrs = NULL;
    add_header(r, "Host: %s", s->host);
    add_header(r, "Authorization: %s", auth);
    add_header(r, "x-amz-date: %s", date);
    add_header(r, "x-amz-content-sha256: %s", r->payload_sha);
    if (s->session_token) {
        add_header(r, "x-amz-security-token: %s", s->session_token);
    }
    if (r->range) {
        add_header(r, "%s", r->range);
    }
    add_header(r, "Expect:");       /* no 100-continue round trip */
    explicit_bzero(auth, strlen(auth));

    r->status = 0;
    r->cc = CURLE_OK;
    r->os_errno = 0;
    r->errbuf[0] = '\0';
    r->got = 0;
    r->overflow = false;
    r->range_start = -1;
    r->length = -1;
    if (r->body) {
        g_byte_array_set_size(r->body, 0);
    }
    s3xml_error_clear(&r->xerr);
    rewind_to(r, 0);

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     (long)(s->timeout_ms + (body >> 10)));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     (long)MAX(1, (s->timeout_ms + 999) / 1000));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, s->verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, s->verify_tls ? 2L : 0L);
    if (s->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    switch (r->kind) {
    case K_PUT:
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->put_len);
        break;
    case K_HEAD:
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        break;
    case K_DEL:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    case K_GET:
    case K_LIST:
        break;
    }
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
        curl_slist_free_all(r->hdrs);
        r->hdrs = NULL;
        g_ptr_array_add(s->free_easy, e);
        r->easy = NULL;
        return -ENOMEM;
    }
    g_queue_push_tail(&s->active, r);
    return 0;
}

static void count(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

/* DONE: count it, wake the caller, and forget it. */
static void complete(struct s3_store *s, struct s3_req *r, int ret)
{
    switch (r->kind) {
    case K_PUT:
        count(&s->n.put, 1);
        count(&s->n.put_bytes, ret == 0 ? r->put_len : 0);
        break;
    case K_GET:
        count(&s->n.get, 1);
        count(&s->n.get_bytes, ret == 0 ? r->got : 0);
        break;
    case K_HEAD:
        count(&s->n.head, 1);
        break;
    case K_DEL:
        count(&s->n.del, 1);
        break;
    case K_LIST:
        count(&s->n.list, 1);
        break;
    }
    if (ret < 0 && ret != -ENOENT) {
        count(&s->n.errors, 1);
    }
    g_mutex_lock(&s->lock);
    r->ret = ret;
    r->done = true;
    g_cond_signal(&r->cond);
    g_mutex_unlock(&s->lock);
}

static gint by_retry_at(gconstpointer a, gconstpointer b,
                        gpointer data G_GNUC_UNUSED)
{
    const struct s3_req *x = a, *y = b;

    return x->retry_at < y->retry_at ? -1 : x->retry_at > y->retry_at;
}

/* Schedule another attempt if the policy allows it; false if not. */
static bool schedule_retry(struct s3_store *s, struct s3_req *r)
{
    gint64 now = g_get_monotonic_time();
    unsigned d = r->delay_ms ? r->delay_ms : BACKOFF_FIRST_MS;
    unsigned wait = d / 2 + g_random_int_range(0, d / 2 + 1);
    char why[CURL_ERROR_SIZE + 64];

    if (now >= r->deadline) {
        return false;
    }
    /* the last attempt starts at the deadline, not a backoff before it */
    if (now + (gint64)wait * 1000 > r->deadline) {
        wait = (r->deadline - now + 999) / 1000;
    }
    r->delay_ms = MIN(d * 2, BACKOFF_MAX_MS);
    r->retry_at = now + (gint64)wait * 1000;
    g_queue_insert_sorted(&s->waiting, r, by_retry_at, NULL);
    count(&s->n.retries, 1);
    describe(r, why, sizeof(why));
    lsvd_log(LSVD_LOG_INFO, "s3://%s: %s %s: %s; retry in %u ms", s->bucket,
             kind_method[r->kind], r->path, why, wait);
    return true;
}

/* A transfer finished: decide between done and another attempt. */
static void finish_attempt(struct s3_store *s, CURL *e, CURLcode cc)
{
    struct s3_req *r = NULL;
    bool retry;
    int ret;

    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &r->os_errno);
    if (r->kind == K_HEAD) {
        curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->length);
    }
    r->cc = cc;
    curl_multi_remove_handle(s->multi, e);
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    r->easy = NULL;
    g_ptr_array_add(s->free_easy, e);
    g_queue_remove(&s->active, r);

    ret = classify(r, &retry);
    if (ret == 0 && r->kind == K_GET) {
        /* a server that ignores Range, or answers another one */
        if ((r->status == 206 && r->range_start != (int64_t)r->offset) ||
            (r->status != 206 && r->offset != 0)) {
            lsvd_log(LSVD_LOG_ERROR, "s3://%s: GET %s: the server answered "
                     "HTTP %ld for bytes from %" PRIu64, s->bucket, r->path,
                     r->status, r->offset);
            ret = -EIO;
        }
    } else if (ret == -ERANGE && r->kind == K_GET) {
        ret = 0;                /* 416: the range starts past the end */
        r->got = 0;
    } else if (ret == 0 && r->kind == K_HEAD && r->length < 0) {
        ret = -EIO;
    }
    if (ret < 0 && retry && schedule_retry(s, r)) {
        return;
    }
    if (ret < 0 && ret != -ENOENT && !r->at_open) {
        char why[CURL_ERROR_SIZE + 64];

        describe(r, why, sizeof(why));
        lsvd_log(LSVD_LOG_WARNING, "s3://%s: %s %s failed: %s (%s)",
                 s->bucket, kind_method[r->kind], r->path, why,
                 g_strerror(-ret));
    }
    complete(s, r, ret);
}

static void fail_all(struct s3_store *s, GQueue *q)
{
    struct s3_req *r;

    while ((r = g_queue_pop_head(q))) {
        complete(s, r, -ESHUTDOWN);
    }
}

static gpointer s3_thread(gpointer arg)
{
    struct s3_store *s = arg;
    struct s3_req **start = g_new(struct s3_req *, s->max_requests);

    for (;;) {
        gint64 now = g_get_monotonic_time();
        struct s3_req *r;
        unsigned n = 0;
        int running, left, finished = 0, timeout = 1000;
        CURLMsg *msg;
        bool stop;

        g_mutex_lock(&s->lock);
        while ((r = g_queue_peek_head(&s->waiting)) && r->retry_at <= now) {
            g_queue_push_head(&s->queue, g_queue_pop_head(&s->waiting));
        }
        stop = s->stopping;
        while (!stop && s->active.length + n < s->max_requests &&
               (r = g_queue_pop_head(&s->queue))) {
            start[n++] = r;
        }
        g_mutex_unlock(&s->lock);

        if (stop) {
            while ((r = g_queue_peek_head(&s->active))) {
                curl_multi_remove_handle(s->multi, r->easy);
                curl_slist_free_all(r->hdrs);
                g_ptr_array_add(s->free_easy, r->easy);
                g_queue_pop_head(&s->active);
                complete(s, r, -ESHUTDOWN);
            }
            fail_all(s, &s->waiting);
            g_mutex_lock(&s->lock);
            GQueue q = s->queue;
            g_queue_init(&s->queue);
            g_mutex_unlock(&s->lock);
            fail_all(s, &q);
            break;
        }
        for (unsigned i = 0; i < n; i++) {
            int ret = start_attempt(s, start[i]);
            if (ret < 0) {
                complete(s, start[i], ret);
            }
        }
        g_assert(s->active.length <= s->max_requests);

        curl_multi_perform(s->multi, &running);
        while ((msg = curl_multi_info_read(s->multi, &left))) {
            if (msg->msg == CURLMSG_DONE) {
                finish_attempt(s, msg->easy_handle, msg->data.result);
                finished++;
            }
        }
        if (finished) {
            continue;           /* slots freed: start what is queued */
        }
        if ((r = g_queue_peek_head(&s->waiting))) {
            gint64 ms = (r->retry_at - g_get_monotonic_time() + 999) / 1000;
            timeout = (int)CLAMP(ms, 0, timeout);
        }
        curl_multi_poll(s->multi, NULL, 0, timeout, NULL);
    }
    g_free(start);
    return NULL;
}

/* ------------------------------------------------------------ requests */

/* Queue @r, wait for it to be DONE; returns its result. */
static int run(struct s3_store *s, struct s3_req *r)
{
    gint64 budget = r->at_open ? MIN(s->retry_time_ms, OPEN_RETRY_MS)
                               : s->retry_time_ms;

    r->deadline = g_get_monotonic_time() + budget * 1000;
    if (!r->payload_sha[0]) {
        strcpy(r->payload_sha, EMPTY_SHA256);
    }
    g_cond_init(&r->cond);
    g_mutex_lock(&s->lock);
    if (s->stopping) {
        g_mutex_unlock(&s->lock);
        g_cond_clear(&r->cond);
        return -ESHUTDOWN;
    }
    g_queue_push_tail(&s->queue, r);
    g_mutex_unlock(&s->lock);
    curl_multi_wakeup(s->multi);

    g_mutex_lock(&s->lock);
    while (!r->done) {
        g_cond_wait(&r->cond, &s->lock);
    }
    g_mutex_unlock(&s->lock);
    g_cond_clear(&r->cond);
    return r->ret;
}

static void req_clear(struct s3_req *r)
{
    g_free(r->path);
    g_free(r->query);
    g_free(r->range);
    if (r->body) {
        g_byte_array_unref(r->body);
    }
    s3xml_error_clear(&r->xerr);
}

static int sha256_iov(const struct iovec *iov, int iovcnt, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int n = 0;
    bool ok;

    ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (int i = 0; ok && i < iovcnt; i++) {
        ok = EVP_DigestUpdate(ctx, iov[i].iov_base, iov[i].iov_len);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &n) && n == sizeof(md);
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -EIO;
    }
    for (int i = 0; i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    return 0;
}

static int s3_put(void *be, const char *name, const struct iovec *iov,
                  int iovcnt)
{
    struct s3_store *s = be;
    struct s3_req r = { .kind = K_PUT, .iov = iov, .iovcnt = iovcnt };
    int ret;

    if (!name_ok(name, false) || iovcnt < 0) {
        return -EINVAL;
    }
    for (int i = 0; i < iovcnt; i++) {
        r.put_len += iov[i].iov_len;
    }
    ret = sha256_iov(iov, iovcnt, r.payload_sha);
    if (ret < 0) {
        return ret;
    }
    r.path = object_path(s, name);
    ret = run(s, &r);
    req_clear(&r);
    return ret;
}

static int s3_head(void *be, const char *name, uint64_t *size)
{
    struct s3_store *s = be;
    struct s3_req r = { .kind = K_HEAD };
    int ret;

    if (!name_ok(name, false)) {
        return -EINVAL;
    }
    r.path = object_path(s, name);
    ret = run(s, &r);
    if (ret == 0) {
        *size = r.length;
    }
    req_clear(&r);
    return ret;
}

static ssize_t s3_get_range(void *be, const char *name, uint64_t offset,
                            void *buf, size_t len)
{
    struct s3_store *s = be;
    struct s3_req r = {
        .kind = K_GET, .buf = buf, .buf_len = len, .offset = offset,
    };
    uint64_t size;
    int ret;

    if (!name_ok(name, false) || len > SSIZE_MAX ||
        offset > UINT64_MAX - len) {
        return -EINVAL;
    }
    if (len == 0) {
        /* no Range can ask for nothing; still say if it exists */
        ret = s3_head(be, name, &size);
        return ret < 0 ? ret : 0;
    }
    r.path = object_path(s, name);
    r.range = g_strdup_printf("Range: bytes=%" PRIu64 "-%" PRIu64, offset,
                              offset + len - 1);
    ret = run(s, &r);
    req_clear(&r);
    return ret < 0 ? ret : (ssize_t)r.got;
}

static int s3_del(void *be, const char *name)
{
    struct s3_store *s = be;
    struct s3_req r = { .kind = K_DEL };
    int ret;

    if (!name_ok(name, false)) {
        return -EINVAL;
    }
    r.path = object_path(s, name);
    ret = run(s, &r);
    req_clear(&r);
    return ret;
}

/*
 * Take a listed key (or common prefix, @dir) if it is one of ours: under
 * @full (= store prefix + list prefix), one level down, and a name we
 * would write.  Anything else is logged and skipped, never trusted.
 */
static void take_listed(struct s3_store *s, const char *full,
                        const char *key, bool dir, GPtrArray *names)
{
    const char *name = key + strlen(s->prefix);
    const char *child = key + strlen(full);
    const char *why = NULL;

    if (!g_str_has_prefix(key, full)) {
        why = "outside the prefix";
    } else if (!*child) {
        why = "names the prefix itself";
    } else if (!name_ok(name, dir)) {
        why = "not a name lsvd writes";
    } else if (strchr(child, '/') != (dir ? child + strlen(child) - 1
                                          : NULL)) {
        why = "not an immediate child";
    }
    if (why) {
        g_autofree char *esc = g_strescape(key, NULL);
        lsvd_log(LSVD_LOG_WARNING, "s3://%s: LIST: skipping key '%s': %s",
                 s->bucket, esc, why);
        return;
    }
    g_ptr_array_add(names, g_strdup(name));
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One ListObjectsV2 request; the page into @page. */
static int list_page(struct s3_store *s, const char *full, const char *token,
                     unsigned max_keys, bool at_open, struct s3_req *r,
                     struct s3xml_list *page)
{
    int ret;

    *r = (struct s3_req){ .kind = K_LIST, .at_open = at_open };
    r->path = g_strdup(*s->bucket_path ? s->bucket_path : "/");
    r->query = g_strdup_printf("list-type=2&delimiter=/&encoding-type=url"
                               "&max-keys=%u&prefix=%s%s%s", max_keys, full,
                               token ? "&continuation-token=" : "",
                               token ? token : "");
    ret = run(s, r);
    if (ret < 0) {
        return ret;
    }
    if (!r->body) {
        r->body = g_byte_array_new();
    }
    ret = s3xml_parse_list((const char *)r->body->data, r->body->len, page);
    if (ret < 0) {
        lsvd_log(LSVD_LOG_ERROR, "s3://%s: LIST %s: the answer is not a "
                 "ListObjectsV2 page", s->bucket, full);
        return -EIO;
    }
    return 0;
}

static int s3_list(void *be, const char *prefix, GPtrArray **out)
{
    struct s3_store *s = be;
    g_autofree char *full = NULL, *token = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    struct s3xml_list page = { 0 };
    struct s3_req r;
    int ret;

    if (*prefix && !name_ok(prefix, true)) {
        return -EINVAL;
    }
    full = g_strconcat(s->prefix, prefix, NULL);
    do {
        ret = list_page(s, full, token, LIST_PAGE_KEYS, false, &r, &page);
        req_clear(&r);
        if (ret < 0) {
            return ret;
        }
        for (guint i = 0; i < page.objects->len; i++) {
            struct s3xml_object *o = page.objects->pdata[i];
            take_listed(s, full, o->key, false, names);
        }
        for (guint i = 0; i < page.prefixes->len; i++) {
            take_listed(s, full, page.prefixes->pdata[i], true, names);
        }
        if (page.truncated && (strchr(page.next_token, '&') ||
                               (token && !strcmp(token, page.next_token)))) {
            /* one we cannot sign as a query value, or a loop */
            lsvd_log(LSVD_LOG_ERROR, "s3://%s: LIST %s: unusable "
                     "continuation token", s->bucket, full);
            s3xml_list_clear(&page);
            return -EIO;
        }
        g_free(token);
        token = page.truncated ? g_steal_pointer(&page.next_token) : NULL;
        s3xml_list_clear(&page);
    } while (token);
    g_ptr_array_sort(names, cmp_names);
    *out = g_steal_pointer(&names);
    return 0;
}

static void s3_counters(void *be, struct backend_counters *out)
{
    struct s3_store *s = be;
    const uint64_t *src = (const uint64_t *)&s->n;
    uint64_t *dst = (uint64_t *)out;

    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++) {
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
}

static void wipe_free(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        g_free(p);
    }
}

static void s3_destroy(void *be)
{
    struct s3_store *s = be;

    if (s->thread) {
        g_mutex_lock(&s->lock);
        s->stopping = true;
        g_mutex_unlock(&s->lock);
        curl_multi_wakeup(s->multi);
        g_thread_join(s->thread);
    }
    if (s->free_easy) {
        for (guint i = 0; i < s->free_easy->len; i++) {
            curl_easy_cleanup(s->free_easy->pdata[i]);
        }
        g_ptr_array_unref(s->free_easy);
    }
    if (s->multi) {
        curl_multi_cleanup(s->multi);
    }
    g_mutex_clear(&s->lock);
    g_free(s->bucket);
    g_free(s->prefix);
    g_free(s->region);
    g_free(s->access_key);
    wipe_free(s->secret_key);
    wipe_free(s->session_token);
    g_free(s->ca_file);
    g_free(s->base);
    g_free(s->host);
    g_free(s->bucket_path);
    g_free(s->where);
    g_free(s);
}

static const struct backend_ops s3_ops = {
    .put = s3_put,
    .get_range = s3_get_range,
    .del = s3_del,
    .list = s3_list,
    .head = s3_head,
    .destroy = s3_destroy,
    .counters = s3_counters,
};

/* ------------------------------------------------------------ open */

static gpointer global_init(gpointer arg G_GNUC_UNUSED)
{
    return GINT_TO_POINTER(curl_global_init(CURL_GLOBAL_DEFAULT) + 1);
}

/* The one line that says why the check at open failed. */
static int open_error(struct s3_store *s, struct s3_req *r, int ret,
                      struct lsvd_err *err)
{
    const char *code = r->xerr.code ? r->xerr.code : "no error code";
    char why[CURL_ERROR_SIZE + 64];

    describe(r, why, sizeof(why));
    if (r->cc == CURLE_PEER_FAILED_VERIFICATION ||
        r->cc == CURLE_SSL_CACERT_BADFILE) {
        return lsvd_fail(err, ret, "s3://%s: TLS certificate of %s not "
                         "trusted (%s): set ca_file, or verify_tls = false",
                         s->bucket, s->where, why);
    }
    if (r->cc != CURLE_OK) {
        return lsvd_fail(err, ret, "s3://%s: cannot reach %s: %s",
                         s->bucket, s->where, why);
    }
    switch (ret) {
    case -EACCES:
        return lsvd_fail(err, ret, "s3://%s: access denied by %s (%s): "
                         "check access_key_id/secret_access_key%s",
                         s->bucket, s->where, code,
                         r->xerr.code &&
                         !strcmp(r->xerr.code, "RequestTimeTooSkewed") ?
                         " and the clock" : " and the bucket's permissions");
    case -ENXIO:
        return lsvd_fail(err, ret, "s3://%s: bucket '%s' does not exist at "
                         "%s", s->bucket, s->bucket, s->where);
    case -EINVAL:
        return lsvd_fail(err, ret, "s3://%s: %s refused the request (%s): "
                         "check region '%s' and endpoint", s->bucket,
                         s->where, why, s->region);
    default:
        if (r->status >= 200 && r->status < 300) {
            return lsvd_fail(err, ret, "s3://%s: %s answered HTTP %ld but "
                             "not with a ListObjectsV2 result: is it S3?",
                             s->bucket, s->where, r->status);
        }
        return lsvd_fail(err, ret, "s3://%s: %s answered %s", s->bucket,
                         s->where, why);
    }
}

int backend_s3_open(const struct s3_config *c, struct backend *out,
                    struct lsvd_err *err)
{
    static GOnce once = G_ONCE_INIT;
    g_autofree char *hostport = NULL;
    struct s3xml_list page = { 0 };
    const char *scheme;
    struct s3_store *s;
    struct s3_req r;
    bool path_style;
    int ret;

    if (GPOINTER_TO_INT(g_once(&once, global_init, NULL)) != 1) {
        return lsvd_fail(err, -ENOMEM, "s3://%s: libcurl failed to "
                         "initialize", c->bucket);
    }
    if (!c->bucket || !*c->bucket || !c->region || !c->access_key ||
        !c->secret_key || !c->max_requests) {
        return lsvd_fail(err, -EINVAL, "s3://%s: incomplete S3 settings",
                         c->bucket ? c->bucket : "");
    }
    if (c->prefix && *c->prefix && !name_ok(c->prefix, true)) {
        return lsvd_fail(err, -EINVAL, "s3://%s: prefix '%s' must be "
                         "components of [A-Za-z0-9._-] ending in '/'",
                         c->bucket, c->prefix);
    }
    if (c->endpoint) {
        scheme = g_str_has_prefix(c->endpoint, "https://") ? "https" : "http";
        hostport = g_strdup(strstr(c->endpoint, "://") + 3);
        path_style = c->addressing != S3_ADDR_VIRTUAL;
    } else {
        scheme = "https";
        hostport = g_strdup_printf("s3.%s.amazonaws.com", c->region);
        path_style = c->addressing == S3_ADDR_PATH;
    }

    s = g_new0(struct s3_store, 1);
    g_mutex_init(&s->lock);
    s->bucket = g_strdup(c->bucket);
    s->prefix = g_strdup(c->prefix ? c->prefix : "");
    s->region = g_strdup(c->region);
    s->access_key = g_strdup(c->access_key);
    s->secret_key = g_strdup(c->secret_key);
    s->session_token = c->session_token && *c->session_token ?
                       g_strdup(c->session_token) : NULL;
    s->ca_file = g_strdup(c->ca_file);
    s->host = path_style ? g_strdup(hostport)
                         : g_strdup_printf("%s.%s", c->bucket, hostport);
    s->base = g_strdup_printf("%s://%s", scheme, s->host);
    s->bucket_path = path_style ? g_strdup_printf("/%s", c->bucket)
                                : g_strdup("");
    s->where = g_strdup_printf("%s://%s", scheme, hostport);
    s->verify_tls = c->verify_tls;
    s->connect_timeout_ms = c->connect_timeout_ms;
    s->timeout_ms = c->timeout_ms;
    s->retry_time_ms = c->retry_time_ms;
    s->max_requests = c->max_requests;
    s->free_easy = g_ptr_array_new();

    s->multi = curl_multi_init();
    if (!s->multi) {
        s3_destroy(s);
        return lsvd_fail(err, -ENOMEM, "s3://%s: curl_multi_init failed",
                         c->bucket);
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)s->max_requests);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      (long)s->max_requests);
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->max_requests);
    s->thread = g_thread_try_new("lsvd-s3", s3_thread, s, NULL);
    if (!s->thread) {
        s3_destroy(s);
        return lsvd_fail(err, -EAGAIN, "s3://%s: cannot start a thread",
                         c->bucket);
    }
    if (!s->verify_tls && !strcmp(scheme, "https")) {
        lsvd_log(LSVD_LOG_WARNING, "s3://%s: verify_tls = false: the "
                 "certificate of %s is not checked", s->bucket, s->where);
    }

    /* One cheap request: credentials, bucket and endpoint, all at once. */
    ret = list_page(s, s->prefix, NULL, 1, true, &r, &page);
    if (ret < 0) {
        ret = r.done ? open_error(s, &r, ret, err) :
              lsvd_fail(err, ret, "s3://%s: cannot check the bucket at %s: "
                        "%s", s->bucket, s->where, g_strerror(-ret));
        req_clear(&r);
        s3_destroy(s);
        return ret;
    }
    req_clear(&r);
    s3xml_list_clear(&page);
    out->ops = &s3_ops;
    out->be = s;
    return 0;
}
