/*
 * sigv4 - AWS Signature Version 4 request signing (header form,
 * "AWS4-HMAC-SHA256"), for the S3 backend.  A pure function of its
 * inputs: it builds the canonical request, the string to sign and the
 * signature, and knows nothing of HTTP transports.
 *
 * Threads: every function is reentrant and may be called from any thread;
 * the module keeps no state.
 * Ownership: the request and everything it points to stay the caller's;
 * output strings are g_malloc'd and the caller g_free()s them.  Derived
 * key material is wiped before it is freed.
 * Errors: negative errno (-EINVAL for a missing field, a malformed extra
 * header, a duplicate header name or a time that cannot be formatted;
 * -EIO if libcrypto fails).  On error no output is set.
 */
#ifndef LSVD_SIGV4_H
#define LSVD_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIGV4_KEY_LEN 32

struct sigv4_request {
    const char *method;         /* "GET", "PUT", ... */
    /* Host header value: "bucket.s3.amazonaws.com" or "127.0.0.1:7480" */
    const char *host;
    /* already URI-encoded absolute path, "/bucket/vol/0000000000000001";
     * NULL or "" means "/" */
    const char *path;
    /*
     * Unencoded query string, "list-type=2&prefix=vol/" or NULL.  Split on
     * '&' and at the first '=' of each piece; the signer encodes names and
     * values with sigv4_uri_encode(..., false) and sorts them.  A piece
     * without '=' ("lifecycle") has an empty value.  The caller must send
     * the query encoded the same way (see sigv4_canonical_query()).
     */
    const char *query;
    /*
     * NULL-terminated list of extra headers to sign, "Name: value" (Range,
     * Content-Type, x-amz-*), or NULL.  Must not repeat a name, nor name
     * host, x-amz-date, x-amz-content-sha256 or x-amz-security-token,
     * which the signer adds itself.
     */
    const char *const *headers;
    /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"; also the value of
     * the x-amz-content-sha256 header the caller must send */
    const char *payload_sha256;
    const char *region;         /* "us-east-1" */
    const char *service;        /* "s3" */
    const char *access_key;
    const char *secret_key;
    const char *session_token;  /* NULL unless temporary credentials */
    time_t now;                 /* request time, seconds since the epoch */
};

/*
 * Sign @r.  Fills *@authorization with the Authorization header value
 * ("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
 * SignedHeaders=host;...,Signature=<64 hex>") and *@amz_date with the
 * x-amz-date value ("20130524T000000Z"); the caller sends both, plus
 * x-amz-content-sha256 and, with a token, x-amz-security-token.
 * Returns 0 or -errno.
 */
int sigv4_sign(const struct sigv4_request *r, char **authorization,
               char **amz_date);

/*
 * The canonical request of @r at @amz_date ("YYYYMMDDTHHMMSSZ") into
 * *@creq, and its signed header list ("host;range;x-amz-date...") into
 * *@signed_headers (may be NULL).  What sigv4_sign() hashes; exposed for
 * tests and for debugging a SignatureDoesNotMatch.  Returns 0 or -errno.
 */
int sigv4_canonical_request(const struct sigv4_request *r,
                            const char *amz_date, char **creq,
                            char **signed_headers);

/* The canonical form of an unencoded @query (NULL gives ""): pairs encoded
 * and sorted, as signed and as it should go on the wire.  g_malloc'd. */
char *sigv4_canonical_query(const char *query);

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
 * "aws4_request"), @date being "YYYYMMDD".  Returns 0 or -EIO. */
int sigv4_signing_key(const char *secret_key, const char *date,
                      const char *region, const char *service,
                      uint8_t key[SIGV4_KEY_LEN]);

/* Lower-case hex SHA-256 of a buffer, NUL-terminated in @out. */
void sigv4_sha256_hex(const void *buf, size_t len, char out[65]);

/* URI-encode @s as SigV4 wants it: A-Za-z0-9 - . _ ~ kept, '/' kept if
 * @keep_slash, every other byte as %XX in upper-case hex.  g_malloc'd. */
char *sigv4_uri_encode(const char *s, bool keep_slash);

#endif /* LSVD_SIGV4_H */
