/*
 * sigv4.c - AWS Signature Version 4, following "Authenticating Requests:
 * Using the Authorization Header (AWS Signature Version 4)" in the Amazon
 * S3 API Reference:
 *
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n HashedPayload
 *   StringToSign     = "AWS4-HMAC-SHA256" \n amz_date \n scope \n
 *                      hex(SHA256(CanonicalRequest))
 *   scope            = date/region/service/aws4_request
 *   Signature        = hex(HMAC(kSigning, StringToSign))
 */
#include "sigv4.h"

#include <errno.h>
#include <string.h>

#include <glib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

static const char hexdigits[] = "0123456789abcdef";

static void hex_encode(const uint8_t *buf, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexdigits[buf[i] >> 4];
        out[2 * i + 1] = hexdigits[buf[i] & 0xf];
    }
    out[2 * len] = '\0';
}

void sigv4_sha256_hex(const void *buf, size_t len, char out[65])
{
    uint8_t md[SHA256_DIGEST_LENGTH];

    SHA256(buf, len, md);
    hex_encode(md, sizeof(md), out);
}

static int hmac_sha256(const void *key, size_t key_len, const char *msg,
                       uint8_t out[SIGV4_KEY_LEN])
{
    unsigned int out_len = 0;

    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg,
              strlen(msg), out, &out_len) || out_len != SIGV4_KEY_LEN) {
        return -EIO;
    }
    return 0;
}

char *sigv4_uri_encode(const char *s, bool keep_slash)
{
    GString *out = g_string_sized_new(strlen(s) + 16);

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (g_ascii_isalnum(*p) || *p == '-' || *p == '.' || *p == '_' ||
            *p == '~' || (keep_slash && *p == '/')) {
            g_string_append_c(out, (char)*p);
        } else {
            g_string_append_printf(out, "%%%02X", *p);
        }
    }
    return g_string_free(out, FALSE);
}

/* One query parameter or header: encoded/lower-cased name and value. */
struct kv {
    char *name;
    char *value;
};

static void kv_clear(gpointer p)
{
    struct kv *kv = p;

    g_free(kv->name);
    g_free(kv->value);
}

static gint kv_cmp(gconstpointer a, gconstpointer b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    return c ? c : strcmp(x->value, y->value);
}

char *sigv4_canonical_query(const char *query)
{
    GArray *params = g_array_new(FALSE, FALSE, sizeof(struct kv));
    GString *out = g_string_new("");
    char **pieces;

    g_array_set_clear_func(params, kv_clear);
    pieces = g_strsplit(query ? query : "", "&", -1);
    for (char **p = pieces; *p; p++) {
        char *eq = strchr(*p, '=');
        struct kv kv;

        if (**p == '\0') {
            continue;           /* "a=1&&b=2", a trailing '&' */
        }
        if (eq) {
            *eq = '\0';
        }
        kv.name = sigv4_uri_encode(*p, false);
        kv.value = sigv4_uri_encode(eq ? eq + 1 : "", false);
        g_array_append_val(params, kv);
    }
    g_strfreev(pieces);

    g_array_sort(params, kv_cmp);
    for (guint i = 0; i < params->len; i++) {
        struct kv *kv = &g_array_index(params, struct kv, i);

        g_string_append_printf(out, "%s%s=%s", i ? "&" : "", kv->name,
                               kv->value);
    }
    g_array_free(params, TRUE);
    return g_string_free(out, FALSE);
}

/* Trim leading and trailing blanks and squeeze inner runs to one space. */
static char *header_value_trim(const char *v)
{
    GString *out = g_string_new("");
    bool blank = false;

    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            blank = out->len > 0;
            continue;
        }
        if (blank) {
            g_string_append_c(out, ' ');
            blank = false;
        }
        g_string_append_c(out, *v);
    }
    return g_string_free(out, FALSE);
}

/* Append a header; -EINVAL on a bad name or value or a repeated name. */
static int header_add(GArray *hdrs, const char *name, size_t name_len,
                      const char *value)
{
    struct kv kv;

    if (name_len == 0 || strpbrk(value, "\r\n")) {
        return -EINVAL;
    }
    for (size_t i = 0; i < name_len; i++) {
        /* an RFC 9110 token; no blanks, no separators */
        if (name[i] <= ' ' || name[i] >= 0x7f ||
            strchr("\"(),/:;<=>?@[\\]{}", name[i])) {
            return -EINVAL;
        }
    }
    kv.name = g_ascii_strdown(name, (gssize)name_len);
    for (guint i = 0; i < hdrs->len; i++) {
        if (!strcmp(g_array_index(hdrs, struct kv, i).name, kv.name)) {
            g_free(kv.name);
            return -EINVAL;
        }
    }
    kv.value = header_value_trim(value);
    g_array_append_val(hdrs, kv);
    return 0;
}

static bool request_valid(const struct sigv4_request *r)
{
    return r && r->method && *r->method && r->host && *r->host &&
           r->payload_sha256 && *r->payload_sha256 && r->region &&
           *r->region && r->service && *r->service && r->access_key &&
           *r->access_key && r->secret_key &&
           (!r->path || !*r->path || *r->path == '/');
}

int sigv4_canonical_request(const struct sigv4_request *r,
                            const char *amz_date, char **creq,
                            char **signed_headers)
{
    GArray *hdrs;
    GString *out, *names;
    char *query;
    int ret;

    if (!request_valid(r) || !amz_date || !creq) {
        return -EINVAL;
    }

    hdrs = g_array_new(FALSE, FALSE, sizeof(struct kv));
    g_array_set_clear_func(hdrs, kv_clear);
    ret = header_add(hdrs, "host", 4, r->host);
    if (!ret) {
        ret = header_add(hdrs, "x-amz-content-sha256", 20, r->payload_sha256);
    }
    if (!ret) {
        ret = header_add(hdrs, "x-amz-date", 10, amz_date);
    }
    if (!ret && r->session_token) {
        ret = header_add(hdrs, "x-amz-security-token", 20, r->session_token);
    }
    for (const char *const *h = r->headers; !ret && h && *h; h++) {
        const char *colon = strchr(*h, ':');

        ret = colon ? header_add(hdrs, *h, (size_t)(colon - *h), colon + 1)
                    : -EINVAL;
    }
    if (ret) {
        g_array_free(hdrs, TRUE);
        return ret;
    }
    g_array_sort(hdrs, kv_cmp);

    out = g_string_new("");
    names = g_string_new("");
    query = sigv4_canonical_query(r->query);
    g_string_append_printf(out, "%s\n%s\n%s\n", r->method,
                           r->path && *r->path ? r->path : "/", query);
    g_free(query);
    for (guint i = 0; i < hdrs->len; i++) {
        struct kv *kv = &g_array_index(hdrs, struct kv, i);

        g_string_append_printf(out, "%s:%s\n", kv->name, kv->value);
        g_string_append_printf(names, "%s%s", i ? ";" : "", kv->name);
    }
    g_string_append_printf(out, "\n%s\n%s", names->str, r->payload_sha256);
    g_array_free(hdrs, TRUE);

    *creq = g_string_free(out, FALSE);
    if (signed_headers) {
        *signed_headers = g_string_free(names, FALSE);
    } else {
        g_string_free(names, TRUE);
    }
    return 0;
}

int sigv4_signing_key(const char *secret_key, const char *date,
                      const char *region, const char *service,
                      uint8_t key[SIGV4_KEY_LEN])
{
    char *k_secret = g_strconcat("AWS4", secret_key, NULL);
    size_t k_secret_len = strlen(k_secret);
    uint8_t k[SIGV4_KEY_LEN];
    int ret;

    ret = hmac_sha256(k_secret, k_secret_len, date, k);
    if (!ret) {
        ret = hmac_sha256(k, sizeof(k), region, k);
    }
    if (!ret) {
        ret = hmac_sha256(k, sizeof(k), service, k);
    }
    if (!ret) {
        ret = hmac_sha256(k, sizeof(k), "aws4_request", key);
    }
    OPENSSL_cleanse(k_secret, k_secret_len);
    g_free(k_secret);
    OPENSSL_cleanse(k, sizeof(k));
    return ret;
}

int sigv4_sign(const struct sigv4_request *r, char **authorization,
               char **amz_date)
{
    char date_time[17], date[9];
    char creq_hash[65], sig_hex[2 * SIGV4_KEY_LEN + 1];
    uint8_t key[SIGV4_KEY_LEN], sig[SIGV4_KEY_LEN];
    char *creq, *names, *scope, *sts;
    struct tm tm;
    int ret;

    if (!request_valid(r) || !authorization || !amz_date) {
        return -EINVAL;
    }
    if (!gmtime_r(&r->now, &tm) ||
        strftime(date_time, sizeof(date_time), "%Y%m%dT%H%M%SZ", &tm) !=
            16) {
        return -EINVAL;         /* before year 0 or after 9999 */
    }
    memcpy(date, date_time, 8);
    date[8] = '\0';

    ret = sigv4_canonical_request(r, date_time, &creq, &names);
    if (ret) {
        return ret;
    }
    sigv4_sha256_hex(creq, strlen(creq), creq_hash);
    g_free(creq);

    scope = g_strdup_printf("%s/%s/%s/aws4_request", date, r->region,
                            r->service);
    sts = g_strdup_printf(SIGV4_ALGORITHM "\n%s\n%s\n%s", date_time, scope,
                          creq_hash);
    ret = sigv4_signing_key(r->secret_key, date, r->region, r->service, key);
    if (!ret) {
        ret = hmac_sha256(key, sizeof(key), sts, sig);
    }
    OPENSSL_cleanse(key, sizeof(key));
    g_free(sts);
    if (ret) {
        g_free(scope);
        g_free(names);
        return ret;
    }
    hex_encode(sig, sizeof(sig), sig_hex);

    *authorization = g_strdup_printf(SIGV4_ALGORITHM " Credential=%s/%s,"
                                     "SignedHeaders=%s,Signature=%s",
                                     r->access_key, scope, names, sig_hex);
    *amz_date = g_strdup(date_time);
    g_free(scope);
    g_free(names);
    return 0;
}
