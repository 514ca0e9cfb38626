/*
 * fuzz-s3xml - libFuzzer target for the S3 XML parsers: any bytes give
 * either an error and no result, or a result within the bounds s3xml.h
 * promises.  The first byte chooses the parser, so one corpus covers both.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_list(const char *doc, size_t len)
{
    struct s3xml_list l = { 0 };

    if (s3xml_parse_list(doc, len, &l) < 0) {
        if (l.objects || l.prefixes || l.next_token) {
            abort();
        }
        return;
    }
    if (l.objects->len + l.prefixes->len > S3XML_MAX_ENTRIES ||
        (l.truncated && !l.next_token)) {
        abort();
    }
    for (guint i = 0; i < l.objects->len; i++) {
        struct s3xml_object *o = l.objects->pdata[i];
        if (!o->key || strlen(o->key) > S3XML_MAX_KEY ||
            o->size > S3XML_MAX_SIZE) {
            abort();
        }
    }
    for (guint i = 0; i < l.prefixes->len; i++) {
        if (strlen(l.prefixes->pdata[i]) > S3XML_MAX_KEY) {
            abort();
        }
    }
    s3xml_list_clear(&l);
}

static void check_error(const char *doc, size_t len)
{
    struct s3xml_error e = { 0 };

    if (s3xml_parse_error(doc, len, &e) < 0) {
        if (e.code || e.message || e.bucket) {
            abort();
        }
        return;
    }
    s3xml_error_clear(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    if (data[0] & 1) {
        check_error((const char *)data + 1, size - 1);
    } else {
        check_list((const char *)data + 1, size - 1);
    }
    return 0;
}
