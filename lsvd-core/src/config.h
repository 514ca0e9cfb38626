/*
 * config - the configuration contract: an ini file (GKeyFile) or the
 * embedded defaults.  See docs/config.md for every key.
 *
 *   [backend]  url = dir:///var/lib/lsvd/store  or  s3://BUCKET[/PREFIX]
 *              endpoint, region, access_key_id, secret_access_key,
 *              session_token, addressing, ca_file, verify_tls,
 *              connect_timeout, timeout, retry_time, max_requests  (s3://)
 *   [cache]    dir = /var/lib/lsvd/cache
 *              size = 1G           journal space on the cache device
 *              read_size = 1G      read cache (0 turns it off)
 *              read_block = 64K    read cache block, 64K..1M, power of 2
 *              prefetch = 0        bytes read ahead in an object on a miss
 *              write_timeout = 0   seconds a write may wait for journal
 *                                  space (a full ring, the store away);
 *                                  then it fails with EIO; 0: no limit
 *   [log]      batch_size = 8M     data per object, 1M..32M
 *              checkpoint_objects = 64   objects between map checkpoints
 *              batch_timeout = 5   seconds before a batch that is not full
 *                                  is sealed anyway (0: only when full)
 *              copy_batches = 4    batches that keep a copy of their data
 *                                  in memory (up to 2 x batch_size each),
 *                                  so their PUTs need not read the journal
 *                                  back (0: always read back)
 *
 * Threads: a loaded config is immutable and may be shared by any threads.
 * Ownership: struct lsvd_config owns its strings.
 */
#ifndef LSVD_CONFIG_H
#define LSVD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "lsvd.h"

#define LSVD_DEFAULT_STORE_URL "dir:///var/lib/lsvd/store"
#define LSVD_DEFAULT_CACHE_DIR "/var/lib/lsvd/cache"
#define LSVD_DEFAULT_CACHE_SIZE (1ULL << 30)
#define LSVD_DEFAULT_BATCH_SIZE (8ULL << 20)
#define LSVD_MIN_BATCH_SIZE (1ULL << 20)
#define LSVD_MAX_BATCH_SIZE (32ULL << 20)
#define LSVD_MIN_CACHE_SIZE (64ULL << 20)
#define LSVD_DEFAULT_CHECKPOINT_OBJECTS 64
#define LSVD_DEFAULT_COPY_BATCHES 4
#define LSVD_DEFAULT_BATCH_TIMEOUT_S 5
#define LSVD_DEFAULT_READ_CACHE_SIZE (1ULL << 30)
#define LSVD_DEFAULT_READ_BLOCK (64U << 10)
#define LSVD_MAX_READ_BLOCK (1U << 20)
#define LSVD_MAX_PREFETCH (32U << 20)

enum s3_addressing {
    S3_ADDR_AUTO,           /* path-style with an endpoint, else virtual */
    S3_ADDR_PATH,           /* http://endpoint/bucket/key */
    S3_ADDR_VIRTUAL,        /* http://bucket.endpoint/key */
};

/*
 * The s3:// backend's settings.  Credentials here are the config file's
 * (or those set with lsvd_config_set_credentials()); backend_open() falls
 * back to the environment when they are absent.
 */
struct s3_config {
    char *bucket;
    char *prefix;           /* "" or "some/prefix/" (always ends in '/') */
    char *endpoint;         /* "http://127.0.0.1:7480"; NULL: AWS */
    char *region;           /* default us-east-1 */
    char *access_key;       /* NULL unless set */
    char *secret_key;
    char *session_token;
    char *ca_file;          /* NULL: the system's CA bundle */
    bool verify_tls;        /* default true */
    enum s3_addressing addressing;
    unsigned connect_timeout_ms;    /* per connection attempt, default 10 s */
    unsigned timeout_ms;            /* per request attempt, default 60 s */
    unsigned retry_time_ms;         /* retry a failing request this long,
                                     * default 120 s; open: connect only */
    unsigned max_requests;          /* in flight at once, default 16 */
};

struct lsvd_config {
    char *source;           /* file path, or "(defaults)" */
    char *text;             /* what was parsed, with lsvd_config_set()'s */
    char *backend_url;
    char *cache_dir;
    uint64_t cache_size;
    uint64_t batch_size;
    unsigned checkpoint_objects;    /* objects between map checkpoints */
    unsigned batch_timeout_ms;      /* seal a batch this old; 0: never */
    unsigned copy_batches;          /* batches with their data in memory */
    uint64_t read_cache_size;       /* 0: no read cache */
    uint32_t read_block;
    uint32_t prefetch;              /* bytes; 0: off */
    unsigned write_timeout_ms;      /* a write's wait for journal space;
                                       0: for ever */
    bool is_s3;
    struct s3_config s3;            /* when is_s3 */
};

/*
 * Parse ini text (@data, @len bytes) named @source into @cfg, starting from
 * the defaults.  Used by lsvd_config_load() and by the fuzz target.
 */
int config_parse(const char *data, size_t len, const char *source,
                 struct lsvd_config **out, struct lsvd_err *err);

#endif /* LSVD_CONFIG_H */
