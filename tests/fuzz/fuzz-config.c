/*
 * fuzz-config - libFuzzer target for config_parse(): any text either
 * gives a configuration that passes the checks or an error message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lsvd_config *cfg = NULL;
    struct lsvd_err err = { { 0 } };
    int ret = config_parse((const char *)data, size, "fuzz", &cfg, &err);

    if (ret < 0) {
        if (cfg || err.msg[0] == '\0') {
            abort();
        }
        return 0;
    }
    if (!cfg || cfg->cache_dir[0] != '/' ||
        (strncmp(cfg->backend_url, "dir:///", 7) != 0 &&
         !(cfg->is_s3 && cfg->s3.bucket && cfg->s3.prefix &&
           strlen(cfg->s3.bucket) >= 3 && cfg->s3.region)) ||
        (cfg->is_s3 && cfg->s3.prefix[0] &&
         cfg->s3.prefix[strlen(cfg->s3.prefix) - 1] != '/') ||
        (cfg->read_block & (cfg->read_block - 1)) ||
        cfg->batch_size < LSVD_MIN_BATCH_SIZE ||
        cfg->batch_size > LSVD_MAX_BATCH_SIZE ||
        cfg->cache_size < LSVD_MIN_CACHE_SIZE ||
        cfg->cache_size < 4 * cfg->batch_size) {
        abort();
    }
    lsvd_config_free(cfg);
    return 0;
}
