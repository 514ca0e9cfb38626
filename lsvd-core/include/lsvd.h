/*
 * lsvd.h - the public API of lsvd-core, a log-structured virtual disk.
 *
 * A volume is a sparse array of 512-byte sectors whose durable home is an
 * object store (a local directory, later S3) and whose write-back journal
 * lives in a cache directory on a local SSD.  This header is the only one a
 * user of the library (block/lsvd.c, the lsvd command, tests) includes.
 *
 * Threads: every function may be called from any thread, but calls on one
 * volume handle must not race with lsvd_close() on it.  The asynchronous
 * calls (lsvd_aio_*) never block on I/O; their callback runs exactly once,
 * on a thread owned by the library, after the request is complete.  The
 * callback must not call lsvd_close(); it may submit new requests.
 *
 * Ownership: the caller owns every buffer it passes in (iovecs, names,
 * struct lsvd_err) and must keep the iovec buffers alive until the callback
 * runs.  Handles returned by lsvd_*_open()/lsvd_config_load() are owned by
 * the caller and released with the matching close/free call.
 *
 * Errors: functions return 0 (or a count) on success and a negative errno on
 * failure.  The library never prints.  Calls that can fail for a reason a
 * person must read take a `struct lsvd_err *` (may be NULL) and fill it with
 * one line naming the problem, without credentials.
 */
#ifndef LSVD_H
#define LSVD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LSVD_SECTOR_SIZE 512

/* Largest volume name, in bytes, without the terminating NUL. */
#define LSVD_NAME_MAX 128

/* Default configuration file, used when neither conf= nor LSVD_CONF is set. */
#define LSVD_DEFAULT_CONF "/etc/lsvd/lsvd.conf"

struct lsvd_err {
    char msg[512];
};

/*
 * Log messages the library has no caller to return to (for example a
 * corrupted object met by a read, which fails with -EIO): they go to a
 * handler set here, process-wide.  With no handler they are dropped.  The
 * handler may run on any thread, concurrently.
 */
enum lsvd_log_level { LSVD_LOG_ERROR, LSVD_LOG_WARNING, LSVD_LOG_INFO };
typedef void lsvd_log_fn(void *arg, enum lsvd_log_level level,
                         const char *msg);
void lsvd_set_log_handler(lsvd_log_fn *fn, void *arg);

/* Loaded configuration (ini file or the embedded defaults). */
struct lsvd_config;

/* An open volume. */
struct lsvd_volume;

/*
 * Load the configuration.  @path names an ini file; when it is NULL the
 * LSVD_CONF environment variable is used, then LSVD_DEFAULT_CONF if that
 * file exists, and otherwise the embedded defaults (a directory store
 * under /var/lib/lsvd).  A file named explicitly (by @path or LSVD_CONF)
 * that cannot be read is an error.
 */
int lsvd_config_load(const char *path, struct lsvd_config **out,
                     struct lsvd_err *err);
void lsvd_config_free(struct lsvd_config *cfg);

/*
 * Set one setting, as if the file had "[@section] @key = @value", and
 * check the whole configuration again: -EINVAL (with @err) if the key is
 * unknown or the result is not valid; the configuration is unchanged then.
 * For QEMU's options (cache-size=, ...).  Not for a config in use by an
 * open volume.
 */
int lsvd_config_set(struct lsvd_config *cfg, const char *section,
                    const char *key, const char *value,
                    struct lsvd_err *err);

/*
 * Set S3 credentials, overriding the config file and the environment (for
 * QEMU's key-secret=).  NULL leaves a field as it is.  -EINVAL unless the
 * backend is s3://.  The strings are copied.
 */
int lsvd_config_set_credentials(struct lsvd_config *cfg,
                                const char *access_key_id,
                                const char *secret_access_key,
                                const char *session_token);

/* Where the configuration came from: a file path or "(defaults)". */
const char *lsvd_config_source(const struct lsvd_config *cfg);
/* The backend URL, e.g. "dir:///var/lib/lsvd/store". */
const char *lsvd_config_backend_url(const struct lsvd_config *cfg);
/* The cache directory. */
const char *lsvd_config_cache_dir(const struct lsvd_config *cfg);

/*
 * Parse a size such as "1G", "512M", "4096", "10GiB" (binary units, K to E).
 * Returns 0 or -EINVAL (not a size) / -ERANGE (too large).
 */
int lsvd_parse_size(const char *s, uint64_t *out);

/* True if @name is a valid volume name: 1..LSVD_NAME_MAX characters from
 * [A-Za-z0-9._-], not starting with '.' or '-'. */
bool lsvd_name_valid(const char *name);

/*
 * Create a volume of @size bytes (a multiple of LSVD_SECTOR_SIZE, > 0).
 * -EEXIST if it exists, -EINVAL for a bad name or size.
 */
int lsvd_create(const struct lsvd_config *cfg, const char *name,
                uint64_t size, struct lsvd_err *err);

/*
 * Remove a volume: its objects, superblock and cache files.  -ENOENT if it
 * does not exist, -EBUSY if it is open.
 */
int lsvd_remove(const struct lsvd_config *cfg, const char *name,
                struct lsvd_err *err);

/*
 * List volume names in the store.  On success *names is a NULL-terminated
 * array to free with lsvd_free_names().
 */
int lsvd_list(const struct lsvd_config *cfg, char ***names,
              struct lsvd_err *err);
void lsvd_free_names(char **names);

#define LSVD_OPEN_RDONLY 0x1

/*
 * Open a volume.  Recovers from a crash if needed: rebuilds the maps from the
 * objects and replays the journal in the cache directory.  A volume open
 * for writing is locked against a second writer (-EBUSY); a read-only open
 * does not write anything.
 */
int lsvd_open(const struct lsvd_config *cfg, const char *name, int flags,
              struct lsvd_volume **out, struct lsvd_err *err);

/*
 * Close a volume.  For a writable volume, writes every journaled write into
 * the object store first, so that a cleanly closed volume needs no cache.
 * No request may be in flight.  Returns the first error met while writing
 * out; the handle is freed in every case.
 */
int lsvd_close(struct lsvd_volume *vol);

/* Size in bytes. */
uint64_t lsvd_size(const struct lsvd_volume *vol);

/* Completion callback: @ret is 0 or a negative errno.  Runs exactly once. */
typedef void lsvd_cb(void *cb_arg, int ret);

/*
 * Asynchronous I/O.  @offset and the total iovec length must be multiples of
 * LSVD_SECTOR_SIZE and lie inside the volume.  A write is complete when its
 * journal record is written; it is durable once a later flush completes.
 * Returns 0 if the request was queued (the callback will run), or a
 * negative errno if it was refused at once (the callback will not run).
 */
int lsvd_aio_read(struct lsvd_volume *vol, uint64_t offset,
                  const struct iovec *iov, int iovcnt,
                  lsvd_cb *cb, void *cb_arg);
int lsvd_aio_write(struct lsvd_volume *vol, uint64_t offset,
                   const struct iovec *iov, int iovcnt,
                   lsvd_cb *cb, void *cb_arg);
/*
 * Make [offset, offset+len) read as zeros.  Discard and write-zeroes are the
 * same operation here: both are logged like writes (so they survive
 * recovery and keep their place in the write order) and store no data.
 */
int lsvd_aio_write_zeroes(struct lsvd_volume *vol, uint64_t offset,
                          uint64_t len, lsvd_cb *cb, void *cb_arg);
/* Complete once every write completed before this call is durable. */
int lsvd_aio_flush(struct lsvd_volume *vol, lsvd_cb *cb, void *cb_arg);

/*
 * Change the size to @size bytes (a multiple of LSVD_SECTOR_SIZE, > 0, at
 * most 512 TiB), in order with the writes submitted before it.  Growing
 * always works; the new space reads as zeros.  Shrinking works only if
 * nothing beyond @size was ever written, discarded or zeroed (the maps
 * hold nothing there): otherwise -ENOTEMPTY and nothing changes.  The size
 * is in the volume's superblock once the callback runs with 0.  Writes
 * submitted before the resize but past its new end fail with -EINVAL.
 */
int lsvd_aio_resize(struct lsvd_volume *vol, uint64_t size, lsvd_cb *cb,
                    void *cb_arg);

/* What a range holds, for qemu-img map and convert. */
enum lsvd_extent_kind {
    LSVD_EXTENT_UNWRITTEN,      /* never written: reads as zeros */
    LSVD_EXTENT_ZERO,           /* discarded or zeroed: reads as zeros */
    LSVD_EXTENT_DATA,           /* written data */
};

/*
 * The kind of the range at @offset (sector-aligned, inside the volume):
 * returns an lsvd_extent_kind and sets *@len to how many bytes from
 * @offset (at most @max, > 0) are of that kind.  Never blocks on I/O.
 */
int lsvd_extent(struct lsvd_volume *vol, uint64_t offset, uint64_t max,
                uint64_t *len);

/* Blocking wrappers of the calls above, for tools and tests. */
int lsvd_read(struct lsvd_volume *vol, uint64_t offset, void *buf,
              size_t len);
int lsvd_write(struct lsvd_volume *vol, uint64_t offset, const void *buf,
               size_t len);
int lsvd_write_zeroes(struct lsvd_volume *vol, uint64_t offset,
                      uint64_t len);
int lsvd_flush(struct lsvd_volume *vol);
int lsvd_resize(struct lsvd_volume *vol, uint64_t size);

struct lsvd_info {
    uint64_t size;              /* virtual size, bytes */
    uint64_t objects;           /* data objects in the store */
    uint64_t stored_bytes;      /* bytes of those objects */
    uint64_t journal_bytes;     /* journal bytes not yet in an object */
    uint64_t last_seq;          /* newest object sequence number */

    /* The counters below count since the volume was opened. */
    /* client requests */
    uint64_t reads, read_bytes;
    uint64_t writes, write_bytes;
    uint64_t zeroes, zero_bytes;    /* write-zeroes and discards */
    uint64_t flushes;
    /* write cache (the journal) */
    uint64_t journal_size;          /* ring bytes */
    uint64_t journal_used;          /* bytes of records in the ring */
    /* object store requests, and what they moved */
    uint64_t be_put, be_put_bytes;
    uint64_t be_get, be_get_bytes;
    uint64_t be_head, be_delete, be_list;
    uint64_t be_retries, be_errors;
    /* read cache (all 0 without one) */
    uint64_t rc_size, rc_used;      /* bytes of slots, bytes in use */
    uint64_t rc_block;              /* block size */
    uint64_t rc_hits, rc_misses;    /* blocks looked up by reads */
    uint64_t rc_hit_bytes;
    uint64_t rc_fills, rc_prefetched, rc_evictions;
};

/* Information about an open volume. */
int lsvd_stat(struct lsvd_volume *vol, struct lsvd_info *info);

/*
 * A volume open for writing also keeps its counters in the text file
 * CACHE_DIR/VOLUME.stats (docs/format.md), rewritten every few seconds
 * while they change and at close, so that `lsvd info` can show them for a
 * volume another process (QEMU) has open.  Returns the path, g_malloc'd
 * (free with free()).
 */
char *lsvd_stats_path(const struct lsvd_config *cfg, const char *name);

/* CRC32C of @len bytes, as in the stats file's last line. */
uint32_t lsvd_checksum(const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* LSVD_H */
