/*
 * util - small helpers shared by every layer of lsvd-core: CRC32C,
 * little-endian field access, error messages and logging.
 *
 * Threads: all functions are thread-safe; none keeps state except the
 * process-wide log handler (set once, read with an atomic load).
 * Errors: negative errno, as everywhere in the core.
 */
#ifndef LSVD_UTIL_H
#define LSVD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "lsvd.h"

#define LSVD_UUID_LEN 16

#define ROUND_UP(x, a) ((((x) + (a) - 1) / (a)) * (a))

/* CRC32C (Castagnoli), as iSCSI and ext4 use it; @crc is the running value
 * (start with 0). */
uint32_t lsvd_crc32c(uint32_t crc, const void *buf, size_t len);

/* Fill @err (if not NULL) with a formatted one-line message; returns @ret so
 * that callers can write `return lsvd_fail(err, -EINVAL, "...")`. */
int lsvd_fail(struct lsvd_err *err, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Send a message to the process-wide log handler, if any. */
void lsvd_log(enum lsvd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fill @uuid with 16 random bytes (RFC 4122 version 4). */
int lsvd_uuid_generate(uint8_t uuid[LSVD_UUID_LEN]);
/* Format as 36 characters plus NUL. */
void lsvd_uuid_format(const uint8_t uuid[LSVD_UUID_LEN], char out[37]);

/* Copy @len bytes starting @skip bytes into the iovec to @buf. */
static inline void iov_to_buf(const struct iovec *iov, int iovcnt,
                              size_t skip, void *buf, size_t len)
{
    char *p = buf;

    for (int i = 0; i < iovcnt && len > 0; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t n = iov[i].iov_len - skip;
        n = n < len ? n : len;
        memcpy(p, (const char *)iov[i].iov_base + skip, n);
        p += n;
        len -= n;
        skip = 0;
    }
}

/*
 * Replace file @path with the bytes of @iov, atomically and durably: a
 * hidden temporary file in the same directory is written and synced, then
 * renamed over @path, and the directory is synced.  A reader sees the old
 * contents or the new, never a mix.
 */
int lsvd_replace_file(const char *path, const struct iovec *iov, int iovcnt,
                      int mode);
/* pread/pwrite all of @len bytes at @off, retrying short transfers and
 * EINTR.  0, or -errno; a read past the end of the file is -ENODATA. */
int lsvd_pread_all(int fd, void *buf, size_t len, uint64_t off);
int lsvd_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* Make a directory's entries (a new, renamed or removed file) durable. */
int lsvd_fsync_dir(const char *dir);

/*
 * A fixed set of worker threads taking items from one queue, in place of
 * GThreadPool, whose process-wide threads do not survive fork().
 * workers_stop() lets the threads finish the items queued before it, then
 * joins them.
 */
typedef void workers_fn(void *item, void *arg);
struct workers;
struct workers *workers_start(const char *name, unsigned n, workers_fn *fn,
                              void *arg);
void workers_push(struct workers *w, void *item);
void workers_stop(struct workers *w);

/* Little-endian loads and stores: on-disk structs are byte arrays. */
static inline void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = v;
    p[1] = v >> 8;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, v);
    put_le16(p + 2, v >> 16);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, v);
    put_le32(p + 4, v >> 32);
}

static inline uint16_t get_le16(const uint8_t *p)
{
    return p[0] | (uint16_t)p[1] << 8;
}

static inline uint32_t get_le32(const uint8_t *p)
{
    return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

static inline uint64_t get_le64(const uint8_t *p)
{
    return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

#endif /* LSVD_UTIL_H */
