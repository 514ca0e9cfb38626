/*
 * s3xml - parse the two XML documents the S3 backend reads: a
 * ListObjectsV2 result page and an <Error> body.  GMarkup underneath; a
 * module of its own so that a fuzz target can reach it (fuzz-s3xml).
 *
 * The parsers trust nothing: the input may be any bytes.  Elements they do
 * not know are skipped wherever they appear; every string and count is
 * bounded (S3XML_MAX_DOC, S3XML_MAX_KEY, S3XML_MAX_ENTRIES) and a
 * document over a bound is refused, not truncated.  Keys come back as
 * the server sent them, decoded when the page says EncodingType=url; the
 * caller decides which names to trust.
 *
 * Threads: reentrant, no state.
 * Ownership: the results own their strings; free them with the matching
 * _clear() function (which also works on a zeroed, never-filled result).
 * Errors: -EINVAL for a malformed or out-of-bounds document (no result is
 * kept), -EFBIG for one larger than S3XML_MAX_DOC.
 */
#ifndef LSVD_S3XML_H
#define LSVD_S3XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define S3XML_MAX_DOC (8u << 20)        /* a page of 1000 keys is < 2 MiB */
#define S3XML_MAX_KEY 1024              /* S3's own limit, in bytes */
#define S3XML_MAX_ENTRIES 10000         /* keys + prefixes in one page */
#define S3XML_MAX_SIZE (5ULL << 40)     /* S3's largest object, 5 TiB */

struct s3xml_object {
    char *key;
    uint64_t size;
};

struct s3xml_list {
    GPtrArray *objects;         /* struct s3xml_object *, in page order */
    GPtrArray *prefixes;        /* char *, CommonPrefixes/Prefix */
    bool truncated;             /* IsTruncated: another page follows */
    char *next_token;           /* NextContinuationToken or NULL */
};

struct s3xml_error {
    char *code;                 /* "NoSuchKey", or NULL if absent */
    char *message;              /* or NULL */
    char *bucket;               /* BucketName, or NULL */
};

/* Parse a ListObjectsV2 result (<ListBucketResult>). */
int s3xml_parse_list(const char *doc, size_t len, struct s3xml_list *out);
void s3xml_list_clear(struct s3xml_list *l);

/* Parse an S3 <Error> document. */
int s3xml_parse_error(const char *doc, size_t len, struct s3xml_error *out);
void s3xml_error_clear(struct s3xml_error *e);

#endif /* LSVD_S3XML_H */
