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
    { "cache", "dir" },
    { "cache", "size" },
    { "log", "batch_size" },
    { "log", "checkpoint_objects" },
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

static int check_url(const char *source, const char *url,
                     struct lsvd_err *err)
{
    if (g_str_has_prefix(url, "dir://")) {
        if (url[6] != '/') {
            return lsvd_fail(err, -EINVAL,
                             "%s: [backend] url = '%s': a dir:// URL needs an "
                             "absolute path (dir:///path)", source, url);
        }
        return 0;
    }
    if (g_str_has_prefix(url, "s3://")) {
        return lsvd_fail(err, -ENOTSUP,
                         "%s: [backend] url = '%s': the s3:// backend is not "
                         "built yet", source, url);
    }
    return lsvd_fail(err, -EINVAL,
                     "%s: [backend] url = '%s': expected dir:///path",
                     source, url);
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
        ret = check_url(source, cfg->backend_url, err);
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
    g_free(cfg->backend_url);
    g_free(cfg->cache_dir);
    g_free(cfg);
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
