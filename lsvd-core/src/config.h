/*
 * config - the configuration contract: an ini file (GKeyFile) or the
 * embedded defaults.  See docs/config.md for every key.
 *
 *   [backend]  url = dir:///var/lib/lsvd/store
 *   [cache]    dir = /var/lib/lsvd/cache
 *              size = 1G           journal space on the cache device
 *   [log]      batch_size = 8M     data per object, 1M..32M
 *              checkpoint_objects = 64   objects between map checkpoints
 *
 * Threads: a loaded config is immutable and may be shared by any threads.
 * Ownership: struct lsvd_config owns its strings.
 */
#ifndef LSVD_CONFIG_H
#define LSVD_CONFIG_H

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

struct lsvd_config {
    char *source;           /* file path, or "(defaults)" */
    char *backend_url;
    char *cache_dir;
    uint64_t cache_size;
    uint64_t batch_size;
    unsigned checkpoint_objects;    /* objects between map checkpoints */
};

/*
 * Parse ini text (@data, @len bytes) named @source into @cfg, starting from
 * the defaults.  Used by lsvd_config_load() and by the fuzz target.
 */
int config_parse(const char *data, size_t len, const char *source,
                 struct lsvd_config **out, struct lsvd_err *err);

#endif /* LSVD_CONFIG_H */
