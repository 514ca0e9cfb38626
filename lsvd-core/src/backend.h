/*
 * backend - the object-store interface: one operations table, one opaque
 * instance pointer, as s3backer's struct s3backer_store does.
 *
 * Object names are "VOLUME/NAME" with VOLUME a valid volume name and NAME
 * one of "super" or a 16-digit lower-case hex sequence number; a backend
 * treats them as opaque keys with '/' as the hierarchy delimiter.
 *
 * Threads: every operation is synchronous and may be called from any
 * thread concurrently; an implementation does its own locking.
 * Errors: negative errno; -ENOENT for a missing object.
 * Counters: a backend may count its requests (the counters op); the
 * values only grow, and are read without stopping the I/O.
 * Ownership: the caller owns all buffers; list() returns a GPtrArray of
 * g_malloc'd names (free function set) that the caller unrefs.
 */
#ifndef LSVD_BACKEND_H
#define LSVD_BACKEND_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <glib.h>

#include "config.h"
#include "lsvd.h"

/* Requests completed since open, per kind, successful or not; bytes of
 * the successful ones.  retries counts attempts repeated after a
 * transient failure; errors counts requests that failed in the end, for
 * a reason other than a missing object (-ENOENT). */
struct backend_counters {
    uint64_t put, put_bytes;
    uint64_t get, get_bytes;
    uint64_t head;
    uint64_t del;
    uint64_t list;
    uint64_t retries;
    uint64_t errors;
};

struct backend_ops {
    /* Store @iov as object @name, atomically: readers see all or nothing.
     * Durable when it returns 0. */
    int (*put)(void *be, const char *name, const struct iovec *iov,
               int iovcnt);
    /* Read up to @len bytes at @offset; returns the count (short only at
     * the end of the object) or -errno. */
    ssize_t (*get_range)(void *be, const char *name, uint64_t offset,
                         void *buf, size_t len);
    /* -ENOENT if absent, where the store can tell: S3 cannot (a DELETE
     * of a missing key succeeds), so callers treat 0 and -ENOENT alike. */
    int (*del)(void *be, const char *name);
    /* Immediate children of @prefix ("" or ending in '/'): object names in
     * full, and deeper levels as "prefix/child/", sorted. */
    int (*list)(void *be, const char *prefix, GPtrArray **names);
    /* Size of object @name, or -ENOENT. */
    int (*head)(void *be, const char *name, uint64_t *size);
    void (*destroy)(void *be);
    /* Optional (may be NULL): a snapshot of the counters, from any
     * thread. */
    void (*counters)(void *be, struct backend_counters *out);
};

struct backend {
    const struct backend_ops *ops;
    void *be;
};

/*
 * Open the backend @cfg names: dir:///path, or s3://bucket[/prefix] with
 * credentials from the config (or lsvd_config_set_credentials()), else
 * from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
 * An S3 store is checked at open: an unreachable endpoint, wrong
 * credentials or a missing bucket fail here, with one line in @err.
 */
int backend_open(const struct lsvd_config *cfg, struct backend *out,
                 struct lsvd_err *err);

static inline void backend_close(struct backend *b)
{
    if (b->ops) {
        b->ops->destroy(b->be);
        b->ops = NULL;
    }
}

/* The backend's counters; all zero (and -ENOTSUP) if it keeps none. */
static inline int backend_get_counters(const struct backend *b,
                                       struct backend_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (!b->ops || !b->ops->counters) {
        return -ENOTSUP;
    }
    b->ops->counters(b->be, out);
    return 0;
}

/* The local directory store. */
int backend_dir_open(const char *root, bool create, struct backend *out,
                     struct lsvd_err *err);

/*
 * The S3 store (backend_s3.c).  @c has its credentials resolved (access
 * and secret key set).  Object "VOL/NAME" is key PREFIX + "VOL/NAME" in
 * the bucket.  Checks the bucket is reachable with these credentials
 * before it returns.
 */
int backend_s3_open(const struct s3_config *c, struct backend *out,
                    struct lsvd_err *err);

#endif /* LSVD_BACKEND_H */
