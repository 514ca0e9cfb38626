/*
 * config.c - load and check the configuration file.
 *
 * Unknown sections and keys are errors, so that a typo is reported instead
 * of silently falling back to a default.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "util.h"

static const char *const known_keys[][2] = {
    { "backend", "url" },
    { "backend", "endpoint" },
    { "backend", "region" },
    { "backend", "access_key_id" },
    { "backend", "secret_access_key" },
    { "backend", "session_token" },
    { "backend", "addressing" },
    { "backend", "ca_file" },
    { "backend", "verify_tls" },
    { "backend", "connect_timeout" },
    { "backend", "timeout" },
    { "backend", "retry_time" },
    { "backend", "max_requests" },
    { "cache", "dir" },
    { "cache", "size" },
    { "cache", "read_size" },
    { "cache", "read_block" },
    { "cache", "prefetch" },
    { "cache", "write_timeout" },
    { "log", "batch_size" },
    { "log", "checkpoint_objects" },
    { "log", "batch_timeout" },
    { "log", "copy_batches" },
};

static bool key_known(const char *group, const char *key)
{
    for (size_t i = 0; i < G_N_ELEMENTS(known_keys); i++) {
        if (!strcmp(known_keys[i][0], group) &&
            !strcmp(known_keys[i][1], key)) {
            return true;
        }
    }
    return false;
}

int lsvd_parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "KMGTPE";
    uint64_t v = 0, mult = 1;
    const char *p = s;

    if (!s || !g_ascii_isdigit(*p)) {
        return -EINVAL;
    }
    while (g_ascii_isdigit(*p)) {
        unsigned d = *p++ - '0';
        if (v > (UINT64_MAX - d) / 10) {
            return -ERANGE;
        }
        v = v * 10 + d;
    }
    if (*p) {
        const char *u = strchr(units, g_ascii_toupper(*p));
        if (!u) {
            return -EINVAL;
        }
        mult = 1ULL << (10 * (u - units + 1));
        p++;
        /* accept "G", "GB", "GiB" (all binary) */
        if (*p == 'i' && p[1] == 'B') {
            p += 2;
        } else if (*p == 'B') {
            p++;
        }
        if (*p) {
            return -EINVAL;
        }
    }
    if (v > UINT64_MAX / mult) {
        return -ERANGE;
    }
    *out = v * mult;
    return 0;
}

/*
 * A value with surrounding blanks and a trailing " # comment" removed
 * (GKeyFile only knows whole-line comments), or NULL if the key is absent.
 */
static char *get_str(GKeyFile *kf, const char *group, const char *key)
{
    char *v = g_key_file_get_string(kf, group, key, NULL);
    char *hash;

    if (!v) {
        return NULL;
    }
    for (hash = strchr(v, '#'); hash; hash = strchr(hash + 1, '#')) {
        if (hash == v || hash[-1] == ' ' || hash[-1] == '\t') {
            *hash = '\0';
            break;
        }
    }
    return g_strstrip(v);
}

static bool group_known(const char *group)
{
    for (size_t i = 0; i < G_N_ELEMENTS(known_keys); i++) {
        if (!strcmp(known_keys[i][0], group)) {
            return true;
        }
    }
    return false;
}

static int get_size(GKeyFile *kf, const char *source, const char *group,
                    const char *key, uint64_t *out, struct lsvd_err *err)
{
    g_autofree char *v = get_str(kf, group, key);

    if (!v) {
        return 0;
    }
    if (lsvd_parse_size(v, out) < 0) {
        return lsvd_fail(err, -EINVAL, "%s: [%s] %s = '%s' is not a size",
                         source, group, key, v);
    }
    return 0;
}

/*
 * An S3 bucket name as AWS defines it: 3-63 characters of [a-z0-9.-],
 * starting and ending with a letter or digit.
 */
static bool bucket_valid(const char *b)
{
    size_t n = strlen(b);

    if (n < 3 || n > 63 || !g_ascii_isalnum(b[0]) ||
        !g_ascii_isalnum(b[n - 1])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(g_ascii_islower(b[i]) || g_ascii_isdigit(b[i]) ||
              b[i] == '.' || b[i] == '-')) {
            return false;
        }
    }
    return true;
}

/* s3://BUCKET[/PREFIX]: the prefix is kept with one trailing '/'. */
static int parse_s3_url(const char *source, const char *url,
                        struct s3_config *s3, struct lsvd_err *err)
{
    const char *b = url + strlen("s3://");
    const char *slash = strchr(b, '/');
    g_autofree char *bucket = slash ? g_strndup(b, slash - b) : g_strdup(b);
    g_autofree char *prefix = g_strdup(slash ? slash + 1 : "");
    size_t plen;

    if (!bucket_valid(bucket)) {
        return lsvd_fail(err, -EINVAL, "%s: [backend] url = '%s': '%s' is not "
                         "a valid bucket name (3-63 of a-z 0-9 . -)", source,
                         url, bucket);
    }
    while ((plen = strlen(prefix)) > 0 && prefix[plen - 1] == '/') {
        prefix[plen - 1] = '\0';
    }
    for (const char *p = prefix; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\' ||
            (*p == '/' && p[1] == '/')) {
            return lsvd_fail(err, -EINVAL, "%s: [backend] url = '%s': the "
                             "prefix may not hold control characters, '\\' "
                             "or '//'", source, url);
        }
    }
    if (strlen(prefix) > 512) {
        return lsvd_fail(err, -EINVAL, "%s: [backend] url: prefix too long",
                         source);
    }
    s3->bucket = g_steal_pointer(&bucket);
    s3->prefix = *prefix ? g_strconcat(prefix, "/", NULL) : g_strdup("");
    return 0;
}

static int check_url(const char *source, struct lsvd_config *cfg,
                     struct lsvd_err *err)
{
    const char *url = cfg->backend_url;

    if (g_str_has_prefix(url, "dir://")) {
        if (url[6] != '/') {
            return lsvd_fail(err, -EINVAL,
                             "%s: [backend] url = '%s': a dir:// URL needs an "
                             "absolute path (dir:///path)", source, url);
        }
        return 0;
    }
    if (g_str_has_prefix(url, "s3://")) {
        cfg->is_s3 = true;
        return parse_s3_url(source, url, &cfg->s3, err);
    }
    return lsvd_fail(err, -EINVAL,
                     "%s: [backend] url = '%s': expected dir:///path or "
                     "s3://bucket[/prefix]", source, url);
}

/* An s3:// setting given with a dir:// URL is a mistake worth reporting. */
static int check_s3_keys_unused(GKeyFile *kf, const char *source,
                                struct lsvd_err *err)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, "backend", NULL, NULL);

    for (char **k = keys; k && *k; k++) {
        if (strcmp(*k, "url") != 0) {
            return lsvd_fail(err, -EINVAL, "%s: [backend] %s is only for "
                             "an s3:// url", source, *k);
        }
    }
    return 0;
}

static int get_bool(GKeyFile *kf, const char *source, const char *group,
                    const char *key, bool *out, struct lsvd_err *err)
{
    g_autofree char *v = get_str(kf, group, key);

    if (!v) {
        return 0;
    }
    if (!g_ascii_strcasecmp(v, "true") || !g_ascii_strcasecmp(v, "yes") ||
        !strcmp(v, "1") || !g_ascii_strcasecmp(v, "on")) {
        *out = true;
    } else if (!g_ascii_strcasecmp(v, "false") ||
               !g_ascii_strcasecmp(v, "no") || !strcmp(v, "0") ||
               !g_ascii_strcasecmp(v, "off")) {
        *out = false;
    } else {
        return lsvd_fail(err, -EINVAL, "%s: [%s] %s = '%s' is not true or "
                         "false", source, group, key, v);
    }
    return 0;
}

/* A whole number in [lo, hi], scaled by @mult (seconds -> ms). */
static int get_uint(GKeyFile *kf, const char *source, const char *group,
                    const char *key, unsigned lo, unsigned hi, unsigned mult,
                    unsigned *out, struct lsvd_err *err)
{
    g_autofree char *v = get_str(kf, group, key);
    guint64 n;

    if (!v) {
        return 0;
    }
    if (!g_ascii_string_to_unsigned(v, 10, lo, hi, &n, NULL)) {
        return lsvd_fail(err, -EINVAL, "%s: [%s] %s = '%s': expected a whole "
                         "number from %u to %u", source, group, key, v, lo,
                         hi);
    }
    *out = n * mult;
    return 0;
}

/* Move string key @key of [backend] into *@dst if set. */
static void take_str(GKeyFile *kf, const char *key, char **dst)
{
    char *v = get_str(kf, "backend", key);

    if (v) {
        g_free(*dst);
        *dst = v;
    }
}

static int parse_s3_keys(GKeyFile *kf, const char *source,
                         struct s3_config *s3, struct lsvd_err *err)
{
    g_autofree char *addr = get_str(kf, "backend", "addressing");
    int ret;

    take_str(kf, "endpoint", &s3->endpoint);
    take_str(kf, "region", &s3->region);
    take_str(kf, "access_key_id", &s3->access_key);
    take_str(kf, "secret_access_key", &s3->secret_key);
    take_str(kf, "session_token", &s3->session_token);
    take_str(kf, "ca_file", &s3->ca_file);
    if (s3->endpoint && !g_str_has_prefix(s3->endpoint, "http://") &&
        !g_str_has_prefix(s3->endpoint, "https://")) {
        return lsvd_fail(err, -EINVAL, "%s: [backend] endpoint = '%s': "
                         "expected http://HOST[:PORT] or https://...",
                         source, s3->endpoint);
    }
    if (s3->endpoint) {
        /* "http://host:port/" and "http://host:port" are the same */
        size_t n = strlen(s3->endpoint);
        while (n > 0 && s3->endpoint[n - 1] == '/') {
            s3->endpoint[--n] = '\0';
        }
        if (strchr(strstr(s3->endpoint, "//") + 2, '/')) {
            return lsvd_fail(err, -EINVAL, "%s: [backend] endpoint = '%s': "
                             "no path allowed (put it in the url's prefix)",
                             source, s3->endpoint);
        }
    }
    if (!*s3->region || strpbrk(s3->region, " /\\\t")) {
        return lsvd_fail(err, -EINVAL, "%s: [backend] region = '%s' is not "
                         "a region name", source, s3->region);
    }
    if (addr) {
        if (!strcmp(addr, "path")) {
            s3->addressing = S3_ADDR_PATH;
        } else if (!strcmp(addr, "virtual")) {
            s3->addressing = S3_ADDR_VIRTUAL;
        } else if (!strcmp(addr, "auto")) {
            s3->addressing = S3_ADDR_AUTO;
        } else {
            return lsvd_fail(err, -EINVAL, "%s: [backend] addressing = '%s': "
                             "expected path, virtual or auto", source, addr);
        }
    }
    if (s3->addressing == S3_ADDR_VIRTUAL && strchr(s3->bucket, '.') &&
        (!s3->endpoint || g_str_has_prefix(s3->endpoint, "https://"))) {
        return lsvd_fail(err, -EINVAL, "%s: bucket '%s' has a '.', which "
                         "breaks TLS with virtual-hosted addressing; use "
                         "addressing = path", source, s3->bucket);
    }
    /* access_key_id alone is fine: the secret may come from QEMU's
     * key-secret= (see backend.c) */
    if (s3->secret_key && !s3->access_key) {
        return lsvd_fail(err, -EINVAL, "%s: [backend] secret_access_key "
                         "needs access_key_id", source);
    }
    ret = get_bool(kf, source, "backend", "verify_tls", &s3->verify_tls, err);
    if (ret == 0) {
        ret = get_uint(kf, source, "backend", "connect_timeout", 1, 600, 1000,
                       &s3->connect_timeout_ms, err);
    }
    if (ret == 0) {
        ret = get_uint(kf, source, "backend", "timeout", 1, 3600, 1000,
                       &s3->timeout_ms, err);
    }
    if (ret == 0) {
        ret = get_uint(kf, source, "backend", "retry_time", 0, 86400, 1000,
                       &s3->retry_time_ms, err);
    }
    if (ret == 0) {
        ret = get_uint(kf, source, "backend", "max_requests", 1, 256, 1,
                       &s3->max_requests, err);
    }
    return ret;
}

static int parse_cache_keys(GKeyFile *kf, const char *source,
                            struct lsvd_config *cfg, struct lsvd_err *err)
{
    uint64_t block = cfg->read_block, prefetch = cfg->prefetch;
    int ret;

    ret = get_size(kf, source, "cache", "read_size", &cfg->read_cache_size,
                   err);
    if (ret == 0) {
        ret = get_size(kf, source, "cache", "read_block", &block, err);
    }
    if (ret == 0) {
        ret = get_size(kf, source, "cache", "prefetch", &prefetch, err);
    }
    if (ret == 0) {
        ret = get_uint(kf, source, "cache", "write_timeout", 0, 86400, 1000,
                       &cfg->write_timeout_ms, err);
    }
    if (ret < 0) {
        return ret;
    }
    if (block < LSVD_DEFAULT_READ_BLOCK || block > LSVD_MAX_READ_BLOCK ||
        (block & (block - 1))) {
        return lsvd_fail(err, -EINVAL, "%s: [cache] read_block must be a "
                         "power of 2 from 64K to 1M", source);
    }
    if (prefetch > LSVD_MAX_PREFETCH) {
        return lsvd_fail(err, -EINVAL, "%s: [cache] prefetch must be at most "
                         "32M", source);
    }
    if (cfg->read_cache_size && cfg->read_cache_size < 16 * block) {
        return lsvd_fail(err, -EINVAL, "%s: [cache] read_size must be 0 (no "
                         "read cache) or at least 16 read blocks", source);
    }
    cfg->read_block = block;
    cfg->prefetch = prefetch;
    return 0;
}

static struct lsvd_config *config_defaults(const char *source)
{
    struct lsvd_config *cfg = g_new0(struct lsvd_config, 1);

    cfg->source = g_strdup(source);
    cfg->backend_url = g_strdup(LSVD_DEFAULT_STORE_URL);
    cfg->cache_dir = g_strdup(LSVD_DEFAULT_CACHE_DIR);
    cfg->cache_size = LSVD_DEFAULT_CACHE_SIZE;
    cfg->batch_size = LSVD_DEFAULT_BATCH_SIZE;
    cfg->checkpoint_objects = LSVD_DEFAULT_CHECKPOINT_OBJECTS;
    cfg->batch_timeout_ms = LSVD_DEFAULT_BATCH_TIMEOUT_S * 1000;
    cfg->copy_batches = LSVD_DEFAULT_COPY_BATCHES;
    cfg->read_cache_size = LSVD_DEFAULT_READ_CACHE_SIZE;
    cfg->read_block = LSVD_DEFAULT_READ_BLOCK;
    cfg->s3.region = g_strdup("us-east-1");
    cfg->s3.verify_tls = true;
    cfg->s3.connect_timeout_ms = 10000;
    cfg->s3.timeout_ms = 60000;
    cfg->s3.retry_time_ms = 120000;
    cfg->s3.max_requests = 16;
    return cfg;
}

int config_parse(const char *data, size_t len, const char *source,
                 struct lsvd_config **out, struct lsvd_err *err)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) gerr = NULL;
    g_auto(GStrv) groups = NULL;
    struct lsvd_config *cfg;
    char *v;
    int ret;

    if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &gerr)) {
        return lsvd_fail(err, -EINVAL, "%s: %s", source, gerr->message);
    }
    groups = g_key_file_get_groups(kf, NULL);
    for (char **g = groups; *g; g++) {
        g_auto(GStrv) keys = g_key_file_get_keys(kf, *g, NULL, NULL);
        for (char **k = keys; k && *k; k++) {
            if (!key_known(*g, *k)) {
                return lsvd_fail(err, -EINVAL, "%s: unknown key '%s' in [%s]",
                                 source, *k, *g);
            }
        }
        if (!group_known(*g)) {
            return lsvd_fail(err, -EINVAL, "%s: unknown section [%s]",
                             source, *g);
        }
    }

    cfg = config_defaults(source);
    cfg->text = g_strndup(data, len);
    if ((v = get_str(kf, "backend", "url"))) {
        g_free(cfg->backend_url);
        cfg->backend_url = v;
    }
    if ((v = get_str(kf, "cache", "dir"))) {
        g_free(cfg->cache_dir);
        cfg->cache_dir = v;
    }
    ret = get_size(kf, source, "cache", "size", &cfg->cache_size, err);
    if (ret == 0) {
        ret = get_size(kf, source, "log", "batch_size", &cfg->batch_size,
                       err);
    }
    if (ret == 0) {
        uint64_t n = cfg->checkpoint_objects;
        ret = get_size(kf, source, "log", "checkpoint_objects", &n, err);
        if (ret == 0 && (n < 1 || n > 1000000)) {
            ret = lsvd_fail(err, -EINVAL, "%s: [log] checkpoint_objects "
                            "must be between 1 and 1000000", source);
        }
        cfg->checkpoint_objects = n;
    }
    if (ret == 0) {
        ret = get_uint(kf, source, "log", "batch_timeout", 0, 3600, 1000,
                       &cfg->batch_timeout_ms, err);
    }
    if (ret == 0) {
        ret = get_uint(kf, source, "log", "copy_batches", 0, 64, 1,
                       &cfg->copy_batches, err);
    }
    if (ret == 0) {
        ret = parse_cache_keys(kf, source, cfg, err);
    }
    if (ret == 0) {
        ret = check_url(source, cfg, err);
    }
    if (ret == 0) {
        ret = cfg->is_s3 ? parse_s3_keys(kf, source, &cfg->s3, err) :
                           check_s3_keys_unused(kf, source, err);
    }
    if (ret == 0 && cfg->cache_dir[0] != '/') {
        ret = lsvd_fail(err, -EINVAL,
                        "%s: [cache] dir = '%s' is not an absolute path",
                        source, cfg->cache_dir);
    }
    if (ret == 0 && (cfg->batch_size < LSVD_MIN_BATCH_SIZE ||
                     cfg->batch_size > LSVD_MAX_BATCH_SIZE)) {
        ret = lsvd_fail(err, -EINVAL,
                        "%s: [log] batch_size must be between 1M and 32M",
                        source);
    }
    if (ret == 0 && cfg->cache_size < LSVD_MIN_CACHE_SIZE) {
        ret = lsvd_fail(err, -EINVAL, "%s: [cache] size must be at least 64M",
                        source);
    }
    if (ret == 0 && cfg->cache_size < 4 * cfg->batch_size) {
        ret = lsvd_fail(err, -EINVAL,
                        "%s: [cache] size must be at least 4 x [log] "
                        "batch_size", source);
    }
    if (ret < 0) {
        lsvd_config_free(cfg);
        return ret;
    }
    *out = cfg;
    return 0;
}

int lsvd_config_load(const char *path, struct lsvd_config **out,
                     struct lsvd_err *err)
{
    g_autoptr(GError) gerr = NULL;
    g_autofree char *data = NULL;
    gsize len;

    if (!path || !*path) {
        path = getenv("LSVD_CONF");
    }
    if (!path || !*path) {
        if (!g_file_test(LSVD_DEFAULT_CONF, G_FILE_TEST_EXISTS)) {
            *out = config_defaults("(defaults)");
            return 0;
        }
        path = LSVD_DEFAULT_CONF;
    }
    if (!g_file_get_contents(path, &data, &len, &gerr)) {
        int ret = gerr->code == G_FILE_ERROR_NOENT ? -ENOENT :
                  gerr->code == G_FILE_ERROR_ACCES ? -EACCES : -EIO;
        return lsvd_fail(err, ret, "cannot read config: %s", gerr->message);
    }
    return config_parse(data, len, path, out, err);
}

void lsvd_config_free(struct lsvd_config *cfg)
{
    if (!cfg) {
        return;
    }
    g_free(cfg->source);
    if (cfg->text) {
        explicit_bzero(cfg->text, strlen(cfg->text));   /* may hold keys */
    }
    g_free(cfg->text);
    g_free(cfg->backend_url);
    g_free(cfg->cache_dir);
    g_free(cfg->s3.bucket);
    g_free(cfg->s3.prefix);
    g_free(cfg->s3.endpoint);
    g_free(cfg->s3.region);
    g_free(cfg->s3.access_key);
    if (cfg->s3.secret_key) {
        explicit_bzero(cfg->s3.secret_key, strlen(cfg->s3.secret_key));
    }
    g_free(cfg->s3.secret_key);
    if (cfg->s3.session_token) {
        explicit_bzero(cfg->s3.session_token, strlen(cfg->s3.session_token));
    }
    g_free(cfg->s3.session_token);
    g_free(cfg->s3.ca_file);
    g_free(cfg);
}

int lsvd_config_set(struct lsvd_config *cfg, const char *section,
                    const char *key, const char *value, struct lsvd_err *err)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    struct lsvd_config *next = NULL, tmp;
    g_autofree char *text = NULL;
    gsize len;
    int ret;

    if (!key_known(section, key)) {
        return lsvd_fail(err, -EINVAL, "unknown setting [%s] %s", section,
                         key);
    }
    if (strchr(value, '\n') || strchr(value, '\r')) {
        return lsvd_fail(err, -EINVAL, "[%s] %s: a value is one line",
                         section, key);
    }
    if (cfg->text && *cfg->text &&
        !g_key_file_load_from_data(kf, cfg->text, strlen(cfg->text),
                                   G_KEY_FILE_NONE, NULL)) {
        return lsvd_fail(err, -EINVAL, "%s: cannot be read again",
                         cfg->source);
    }
    g_key_file_set_string(kf, section, key, value);
    text = g_key_file_to_data(kf, &len, NULL);
    /* the whole configuration is checked again, as if from the file */
    ret = config_parse(text, len, cfg->source, &next, err);
    explicit_bzero(text, len);
    if (ret < 0) {
        return ret;
    }
    tmp = *cfg;
    *cfg = *next;
    *next = tmp;
    lsvd_config_free(next);
    return 0;
}

int lsvd_config_set_credentials(struct lsvd_config *cfg,
                                const char *access_key_id,
                                const char *secret_access_key,
                                const char *session_token)
{
    const char *vals[3] = { access_key_id, secret_access_key, session_token };
    const char *keys[3] = { "access_key_id", "secret_access_key",
                            "session_token" };
    int ret = 0;

    if (!cfg->is_s3) {
        return -EINVAL;
    }
    for (int i = 0; i < 3 && ret == 0; i++) {
        if (vals[i]) {
            ret = lsvd_config_set(cfg, "backend", keys[i], vals[i], NULL);
        }
    }
    return ret;
}

const char *lsvd_config_source(const struct lsvd_config *cfg)
{
    return cfg->source;
}

const char *lsvd_config_backend_url(const struct lsvd_config *cfg)
{
    return cfg->backend_url;
}

const char *lsvd_config_cache_dir(const struct lsvd_config *cfg)
{
    return cfg->cache_dir;
}
