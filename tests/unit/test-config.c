/*
 * test-config - the configuration contract: config_parse() and
 * lsvd_config_load().
 */
#include <errno.h>
#include <stdlib.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "config.h"
#include "lsvd.h"

/* Parse @text; on success return the config, else NULL with *ret and
 * @err set. */
static struct lsvd_config *parse(const char *text, int *ret,
                                 struct lsvd_err *err)
{
    struct lsvd_config *cfg = NULL;

    memset(err, 0, sizeof(*err));
    *ret = config_parse(text, strlen(text), "test.conf", &cfg, err);
    if (*ret < 0) {
        g_assert_null(cfg);
        g_assert_cmpstr(err->msg, !=, "");
        g_test_message("'%s' -> %d: %s", text, *ret, err->msg);
    } else {
        g_assert_nonnull(cfg);
    }
    return cfg;
}

/* Expect @text to fail with @expect and a message containing @needle. */
static void parse_fails(const char *text, int expect, const char *needle)
{
    struct lsvd_err err;
    int ret;

    g_assert_null(parse(text, &ret, &err));
    g_assert_cmpint(ret, ==, expect);
    g_assert_nonnull(strstr(err.msg, "test.conf"));
    if (needle) {
        g_assert_nonnull(strstr(err.msg, needle));
    }
}

static void test_defaults(void)
{
    struct lsvd_err err;
    struct lsvd_config *cfg;
    int ret;

    cfg = parse("", &ret, &err);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(cfg->source, ==, "test.conf");
    g_assert_cmpstr(lsvd_config_source(cfg), ==, "test.conf");
    g_assert_cmpstr(cfg->backend_url, ==, LSVD_DEFAULT_STORE_URL);
    g_assert_cmpstr(lsvd_config_backend_url(cfg), ==,
                    "dir:///var/lib/lsvd/store");
    g_assert_cmpstr(lsvd_config_cache_dir(cfg), ==, "/var/lib/lsvd/cache");
    g_assert_cmpuint(cfg->cache_size, ==, 1ULL << 30);
    g_assert_cmpuint(cfg->batch_size, ==, 8ULL << 20);
    lsvd_config_free(cfg);

    /* comments and empty known sections change nothing */
    cfg = parse("# a comment\n\n[backend]\n[cache]\n# another\n[log]\n",
                &ret, &err);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(cfg->backend_url, ==, LSVD_DEFAULT_STORE_URL);
    g_assert_cmpuint(cfg->batch_size, ==, LSVD_DEFAULT_BATCH_SIZE);
    lsvd_config_free(cfg);

    lsvd_config_free(NULL);
}

static void test_all_keys(void)
{
    struct lsvd_err err;
    struct lsvd_config *cfg;
    int ret;

    cfg = parse("[backend]\n"
                "url = dir:///srv/store\n"
                "[cache]\n"
                "dir = /ssd/cache\n"
                "size = 2G\n"
                "[log]\n"
                "batch_size = 16M\n", &ret, &err);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(cfg->backend_url, ==, "dir:///srv/store");
    g_assert_cmpstr(cfg->cache_dir, ==, "/ssd/cache");
    g_assert_cmpuint(cfg->cache_size, ==, 2ULL << 30);
    g_assert_cmpuint(cfg->batch_size, ==, 16ULL << 20);
    lsvd_config_free(cfg);

    /* sections in any order, blanks around '=' */
    cfg = parse("[log]\nbatch_size=1MiB\n[cache]\nsize =64M\n"
                "dir=   /c   \n", &ret, &err);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpuint(cfg->batch_size, ==, 1ULL << 20);
    g_assert_cmpuint(cfg->cache_size, ==, 64ULL << 20);
    g_assert_cmpstr(cfg->cache_dir, ==, "/c");
    lsvd_config_free(cfg);
}

static void test_inline_comments(void)
{
    struct lsvd_err err;
    struct lsvd_config *cfg;
    int ret;

    cfg = parse("[backend]\n"
                "url = dir:///srv/store # where objects go\n"
                "[cache]\n"
                "dir = /ssd/cache\t# tab before the hash\n"
                "size = 128M # journal space\n"
                "[log]\n"
                "batch_size = 2M   #\n", &ret, &err);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(cfg->backend_url, ==, "dir:///srv/store");
    g_assert_cmpstr(cfg->cache_dir, ==, "/ssd/cache");
    g_assert_cmpuint(cfg->cache_size, ==, 128ULL << 20);
    g_assert_cmpuint(cfg->batch_size, ==, 2ULL << 20);
    lsvd_config_free(cfg);

    /* a '#' inside a word is part of the value */
    cfg = parse("[cache]\ndir = /ssd/c#1 # comment\n", &ret, &err);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(cfg->cache_dir, ==, "/ssd/c#1");
    lsvd_config_free(cfg);

    /* a value that is only a comment is empty, hence not a size */
    parse_fails("[cache]\nsize = # nothing\n", -EINVAL, "size");
}

static void test_unknown(void)
{
    parse_fails("[cache]\nsize = 1G\nsiez = 2G\n", -EINVAL, "'siez'");
    parse_fails("[backend]\nurl = dir:///x\nregoin = us-east-1\n", -EINVAL,
                "'regoin'");
    /* an s3:// setting with a dir:// url is a mistake, not ignored */
    parse_fails("[backend]\nurl = dir:///x\nregion = us-east-1\n", -EINVAL,
                "region is only for an s3:// url");
    parse_fails("[cach]\ndir = /x\n", -EINVAL, "[cach]");
    parse_fails("[log]\nurl = dir:///x\n", -EINVAL, "'url'");
    /* the key named in the message is the unknown one */
    {
        struct lsvd_err err;
        int ret;

        g_assert_null(parse("[backend]\nurl = dir:///x\n[bogus]\nkey1 = 1\n",
                            &ret, &err));
        g_assert_cmpint(ret, ==, -EINVAL);
        g_assert_nonnull(strstr(err.msg, "key1"));
        g_assert_nonnull(strstr(err.msg, "bogus"));
    }
}

/* docs: unknown sections are errors, so a typo is reported instead of
 * silently ignored; that holds for a section with no keys too */
static void test_unknown_empty_section(void)
{
    parse_fails("[cache]\ndir = /x\n[bakend]\n", -EINVAL, "bakend");
}

static void test_syntax(void)
{
    parse_fails("this is not an ini file\n", -EINVAL, NULL);
    parse_fails("url = dir:///x\n", -EINVAL, NULL);      /* no group */
    parse_fails("[cache\ndir = /x\n", -EINVAL, NULL);
}

static void test_bad_size(void)
{
    parse_fails("[cache]\nsize = lots\n", -EINVAL, "'lots'");
    parse_fails("[cache]\nsize = 1X\n", -EINVAL, "size");
    parse_fails("[log]\nbatch_size = -1M\n", -EINVAL, "batch_size");
    parse_fails("[cache]\nsize = 99999999999999999999\n", -EINVAL, "size");
}

static void test_urls_and_paths(void)
{
    parse_fails("[cache]\ndir = relative/cache\n", -EINVAL, "relative/cache");
    parse_fails("[cache]\ndir = ~/cache\n", -EINVAL, "absolute");
    parse_fails("[backend]\nurl = dir://relative/store\n", -EINVAL,
                "absolute");
    parse_fails("[backend]\nurl = http://host/x\n", -EINVAL, "http://host/x");
    parse_fails("[backend]\nurl = /plain/path\n", -EINVAL, "dir:///");
    parse_fails("[backend]\nurl =\n", -EINVAL, "url");
}

static void test_s3(void)
{
    struct lsvd_err err;
    struct lsvd_config *cfg;
    int ret;

    cfg = parse("[backend]\nurl = s3://my-bucket\n", &ret, &err);
    g_assert_true(cfg->is_s3);
    g_assert_cmpstr(cfg->s3.bucket, ==, "my-bucket");
    g_assert_cmpstr(cfg->s3.prefix, ==, "");
    g_assert_null(cfg->s3.endpoint);
    g_assert_cmpstr(cfg->s3.region, ==, "us-east-1");
    g_assert_true(cfg->s3.verify_tls);
    g_assert_cmpint(cfg->s3.addressing, ==, S3_ADDR_AUTO);
    g_assert_cmpuint(cfg->s3.max_requests, ==, 16);
    g_assert_null(cfg->s3.access_key);
    lsvd_config_free(cfg);

    cfg = parse("[backend]\nurl = s3://b.1/vols/a//\n"
                "endpoint = http://127.0.0.1:7480/  # rgw\n"
                "region = eu-west-1\naccess_key_id = AK\n"
                "secret_access_key = SK\nsession_token = TOK\n"
                "addressing = path\nca_file = /etc/ca.pem\n"
                "verify_tls = no\nconnect_timeout = 2\ntimeout = 30\n"
                "retry_time = 0\nmax_requests = 4\n", &ret, &err);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(cfg->s3.bucket, ==, "b.1");
    g_assert_cmpstr(cfg->s3.prefix, ==, "vols/a/");
    g_assert_cmpstr(cfg->s3.endpoint, ==, "http://127.0.0.1:7480");
    g_assert_cmpstr(cfg->s3.region, ==, "eu-west-1");
    g_assert_cmpstr(cfg->s3.access_key, ==, "AK");
    g_assert_cmpstr(cfg->s3.secret_key, ==, "SK");
    g_assert_cmpstr(cfg->s3.session_token, ==, "TOK");
    g_assert_cmpint(cfg->s3.addressing, ==, S3_ADDR_PATH);
    g_assert_cmpstr(cfg->s3.ca_file, ==, "/etc/ca.pem");
    g_assert_false(cfg->s3.verify_tls);
    g_assert_cmpuint(cfg->s3.connect_timeout_ms, ==, 2000);
    g_assert_cmpuint(cfg->s3.timeout_ms, ==, 30000);
    g_assert_cmpuint(cfg->s3.retry_time_ms, ==, 0);
    g_assert_cmpuint(cfg->s3.max_requests, ==, 4);
    /* key-secret= and friends override the file */
    g_assert_cmpint(lsvd_config_set_credentials(cfg, NULL, "SK2", NULL), ==,
                    0);
    g_assert_cmpstr(cfg->s3.access_key, ==, "AK");
    g_assert_cmpstr(cfg->s3.secret_key, ==, "SK2");
    lsvd_config_free(cfg);

    parse_fails("[backend]\nurl = s3://\n", -EINVAL, "bucket name");
    parse_fails("[backend]\nurl = s3://Upper\n", -EINVAL, "'Upper'");
    parse_fails("[backend]\nurl = s3://ab\n", -EINVAL, "bucket name");
    parse_fails("[backend]\nurl = s3://-bucket\n", -EINVAL, "bucket name");
    parse_fails("[backend]\nurl = s3://bucket/a//b\n", -EINVAL, "'//'");
    parse_fails("[backend]\nurl = s3://bucket\nendpoint = 127.0.0.1:80\n",
                -EINVAL, "http://");
    parse_fails("[backend]\nurl = s3://bucket\n"
                "endpoint = http://h:80/path\n", -EINVAL, "no path");
    parse_fails("[backend]\nurl = s3://bucket\naddressing = vhost\n",
                -EINVAL, "'vhost'");
    parse_fails("[backend]\nurl = s3://bucket\nverify_tls = maybe\n",
                -EINVAL, "'maybe'");
    parse_fails("[backend]\nurl = s3://bucket\ntimeout = 0\n", -EINVAL,
                "timeout");
    parse_fails("[backend]\nurl = s3://bucket\nmax_requests = 1000\n",
                -EINVAL, "max_requests");
    parse_fails("[backend]\nurl = s3://bucket\nsecret_access_key = SK\n",
                -EINVAL, "needs access_key_id");
    parse_fails("[backend]\nurl = s3://a.b.c\naddressing = virtual\n",
                -EINVAL, "addressing = path");
    parse_fails("[backend]\nurl = s3://bucket\nregion = \n", -EINVAL,
                "region");
}

/* lsvd_config_set(): what QEMU's options use; checked like the file. */
static void test_set(void)
{
    struct lsvd_err err;
    struct lsvd_config *cfg;
    int ret;

    cfg = parse("[backend]\nurl = dir:///s # the store\n[cache]\nsize = 128M\n",
                &ret, &err);
    g_assert_cmpint(lsvd_config_set(cfg, "cache", "dir", "/other", &err), ==,
                    0);
    g_assert_cmpstr(cfg->cache_dir, ==, "/other");
    g_assert_cmpuint(cfg->cache_size, ==, 128 << 20);   /* kept */
    g_assert_cmpstr(cfg->backend_url, ==, "dir:///s");
    g_assert_cmpint(lsvd_config_set(cfg, "cache", "read_size", "0", &err), ==,
                    0);
    g_assert_cmpuint(cfg->read_cache_size, ==, 0);
    g_assert_cmpint(lsvd_config_set(cfg, "log", "batch_size", "2M", &err),
                    ==, 0);
    g_assert_cmpuint(cfg->batch_size, ==, 2 << 20);
    /* a bad value or an unknown key changes nothing */
    g_assert_cmpint(lsvd_config_set(cfg, "cache", "size", "lots", &err), ==,
                    -EINVAL);
    g_assert_nonnull(strstr(err.msg, "'lots'"));
    g_assert_cmpint(lsvd_config_set(cfg, "cache", "siez", "1G", &err), ==,
                    -EINVAL);
    g_assert_cmpint(lsvd_config_set(cfg, "cache", "dir", "a\nb", &err), ==,
                    -EINVAL);
    g_assert_cmpint(lsvd_config_set(cfg, "log", "batch_size", "64M", &err),
                    ==, -EINVAL);
    g_assert_cmpuint(cfg->batch_size, ==, 2 << 20);
    g_assert_cmpuint(cfg->cache_size, ==, 128 << 20);
    g_assert_cmpstr(cfg->cache_dir, ==, "/other");
    /* the url may change the backend: then s3 keys become valid */
    g_assert_cmpint(lsvd_config_set(cfg, "backend", "region", "x", &err), ==,
                    -EINVAL);
    g_assert_cmpint(lsvd_config_set(cfg, "backend", "url", "s3://bkt/p",
                                    &err), ==, 0);
    g_assert_true(cfg->is_s3);
    g_assert_cmpint(lsvd_config_set(cfg, "backend", "region", "x", &err), ==,
                    0);
    g_assert_cmpstr(cfg->s3.region, ==, "x");
    g_assert_cmpint(lsvd_config_set(cfg, "cache", "dir", "/a b\\c", &err),
                    ==, 0);
    g_assert_cmpstr(cfg->cache_dir, ==, "/a b\\c");
    lsvd_config_free(cfg);

    /* from the embedded defaults */
    cfg = parse("", &ret, &err);
    g_assert_cmpint(lsvd_config_set(cfg, "cache", "size", "256M", &err), ==,
                    0);
    g_assert_cmpuint(cfg->cache_size, ==, 256 << 20);
    g_assert_cmpstr(cfg->backend_url, ==, LSVD_DEFAULT_STORE_URL);
    lsvd_config_free(cfg);
}

static void test_read_cache_keys(void)
{
    struct lsvd_err err;
    struct lsvd_config *cfg;
    int ret;

    cfg = parse("", &ret, &err);
    g_assert_cmpuint(cfg->read_cache_size, ==, 1ULL << 30);
    g_assert_cmpuint(cfg->read_block, ==, 64 << 10);
    g_assert_cmpuint(cfg->prefetch, ==, 0);
    lsvd_config_free(cfg);
    cfg = parse("[cache]\nread_size = 0\nread_block = 128K\n"
                "prefetch = 1M\n", &ret, &err);
    g_assert_cmpuint(cfg->read_cache_size, ==, 0);
    g_assert_cmpuint(cfg->read_block, ==, 128 << 10);
    g_assert_cmpuint(cfg->prefetch, ==, 1 << 20);
    lsvd_config_free(cfg);
    parse_fails("[cache]\nread_block = 96K\n", -EINVAL, "power of 2");
    parse_fails("[cache]\nread_block = 32K\n", -EINVAL, "read_block");
    parse_fails("[cache]\nread_block = 2M\n", -EINVAL, "read_block");
    parse_fails("[cache]\nread_size = 512K\n", -EINVAL, "read_size");
    parse_fails("[cache]\nprefetch = 64M\n", -EINVAL, "prefetch");
}

static void test_copy_batches(void)
{
    struct lsvd_err err;
    struct lsvd_config *cfg;
    int ret;

    cfg = parse("", &ret, &err);
    g_assert_cmpuint(cfg->copy_batches, ==, 4);
    lsvd_config_free(cfg);
    cfg = parse("[log]\ncopy_batches = 0\n", &ret, &err);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpuint(cfg->copy_batches, ==, 0);
    lsvd_config_free(cfg);
    parse_fails("[log]\ncopy_batches = 65\n", -EINVAL, "copy_batches");
    parse_fails("[log]\ncopy_batches = -1\n", -EINVAL, "copy_batches");
}

static void test_limits(void)
{
    struct lsvd_err err;
    struct lsvd_config *cfg;
    int ret;

    /* batch_size: 1M..32M */
    cfg = parse("[log]\nbatch_size = 1M\n", &ret, &err);
    g_assert_cmpuint(cfg->batch_size, ==, LSVD_MIN_BATCH_SIZE);
    lsvd_config_free(cfg);
    cfg = parse("[log]\nbatch_size = 32M\n", &ret, &err);
    g_assert_cmpuint(cfg->batch_size, ==, LSVD_MAX_BATCH_SIZE);
    lsvd_config_free(cfg);
    parse_fails("[log]\nbatch_size = 1048575\n", -EINVAL, "batch_size");
    parse_fails("[log]\nbatch_size = 512K\n", -EINVAL, "batch_size");
    parse_fails("[log]\nbatch_size = 33M\n", -EINVAL, "batch_size");
    parse_fails("[log]\nbatch_size = 0\n", -EINVAL, "batch_size");

    /* cache size: at least 64M and at least 4 batches */
    cfg = parse("[cache]\nsize = 64M\n[log]\nbatch_size = 16M\n", &ret,
                &err);
    g_assert_cmpuint(cfg->cache_size, ==, LSVD_MIN_CACHE_SIZE);
    lsvd_config_free(cfg);
    parse_fails("[cache]\nsize = 63M\n[log]\nbatch_size = 1M\n", -EINVAL,
                "64M");
    parse_fails("[cache]\nsize = 64M\n[log]\nbatch_size = 17M\n", -EINVAL,
                "batch_size");
    cfg = parse("[cache]\nsize = 128M\n[log]\nbatch_size = 32M\n", &ret,
                &err);
    g_assert_cmpuint(cfg->cache_size, ==, 128ULL << 20);
    lsvd_config_free(cfg);
}

static char *write_conf(const char *dir, const char *leaf, const char *text)
{
    char *path = g_build_filename(dir, leaf, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static void test_load(void)
{
    g_autoptr(GError) gerr = NULL;
    g_autofree char *dir = g_dir_make_tmp("lsvd-config-XXXXXX", &gerr);
    g_autofree char *a = NULL, *b = NULL, *bad = NULL, *missing = NULL;
    struct lsvd_config *cfg = NULL;
    struct lsvd_err err = { { 0 } };
    char *old_env = g_strdup(g_getenv("LSVD_CONF"));

    g_assert_no_error(gerr);
    a = write_conf(dir, "a.conf", "[cache]\ndir = /from/a\n");
    b = write_conf(dir, "b.conf", "[cache]\ndir = /from/b\n");
    missing = g_build_filename(dir, "missing.conf", NULL);

    /* an explicit path */
    g_unsetenv("LSVD_CONF");
    g_assert_cmpint(lsvd_config_load(a, &cfg, &err), ==, 0);
    g_assert_cmpstr(lsvd_config_source(cfg), ==, a);
    g_assert_cmpstr(lsvd_config_cache_dir(cfg), ==, "/from/a");
    lsvd_config_free(cfg);

    /* a missing explicit path is an error, not the defaults */
    cfg = NULL;
    g_assert_cmpint(lsvd_config_load(missing, &cfg, &err), ==, -ENOENT);
    g_assert_null(cfg);
    g_assert_nonnull(strstr(err.msg, "missing.conf"));

    /* LSVD_CONF when no path is given; an explicit path wins over it */
    g_setenv("LSVD_CONF", b, TRUE);
    g_assert_cmpint(lsvd_config_load(NULL, &cfg, &err), ==, 0);
    g_assert_cmpstr(lsvd_config_source(cfg), ==, b);
    g_assert_cmpstr(lsvd_config_cache_dir(cfg), ==, "/from/b");
    lsvd_config_free(cfg);
    g_assert_cmpint(lsvd_config_load("", &cfg, &err), ==, 0);
    g_assert_cmpstr(lsvd_config_cache_dir(cfg), ==, "/from/b");
    lsvd_config_free(cfg);
    g_assert_cmpint(lsvd_config_load(a, &cfg, &err), ==, 0);
    g_assert_cmpstr(lsvd_config_cache_dir(cfg), ==, "/from/a");
    lsvd_config_free(cfg);

    /* LSVD_CONF naming a missing file is an error too */
    cfg = NULL;
    g_setenv("LSVD_CONF", missing, TRUE);
    g_assert_cmpint(lsvd_config_load(NULL, &cfg, &err), ==, -ENOENT);
    g_assert_null(cfg);

    /* a bad file's error names the file */
    bad = write_conf(dir, "bad.conf", "[cache]\nnope = 1\n");
    g_assert_cmpint(lsvd_config_load(bad, &cfg, &err), ==, -EINVAL);
    g_assert_nonnull(strstr(err.msg, "bad.conf"));
    g_assert_nonnull(strstr(err.msg, "nope"));

    /* a directory is not readable as a file */
    g_assert_cmpint(lsvd_config_load(dir, &cfg, &err), <, 0);

    if (old_env) {
        g_setenv("LSVD_CONF", old_env, TRUE);
    } else {
        g_unsetenv("LSVD_CONF");
    }
    g_free(old_env);
    g_unlink(a);
    g_unlink(b);
    g_unlink(bad);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/config/defaults", test_defaults);
    g_test_add_func("/config/all-keys", test_all_keys);
    g_test_add_func("/config/inline-comments", test_inline_comments);
    g_test_add_func("/config/unknown", test_unknown);
    g_test_add_func("/config/unknown-empty-section",
                    test_unknown_empty_section);
    g_test_add_func("/config/syntax", test_syntax);
    g_test_add_func("/config/bad-size", test_bad_size);
    g_test_add_func("/config/urls-and-paths", test_urls_and_paths);
    g_test_add_func("/config/limits", test_limits);
    g_test_add_func("/config/s3", test_s3);
    g_test_add_func("/config/read-cache", test_read_cache_keys);
    g_test_add_func("/config/copy-batches", test_copy_batches);
    g_test_add_func("/config/set", test_set);
    g_test_add_func("/config/load", test_load);
    return g_test_run();
}
