/*
 * fuzz-names - libFuzzer target for the small string parsers:
 * objlog_parse_seq(), lsvd_name_valid() and lsvd_parse_size().  The
 * input, cut at its first NUL, is given to all three.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "lsvd.h"
#include "objlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = g_strndup((const char *)data, size);
    char name[OBJ_NAME_MAX];
    uint64_t v;
    int ret;

    /* a sequence number round-trips through the object name */
    if (objlog_parse_seq(s, &v) == 0) {
        char want[OBJ_NAME_MAX];

        objlog_object_name(name, "v", v);
        snprintf(want, sizeof(want), "v/%s", s);
        if (v == 0 || strcmp(name, want) != 0) {
            abort();
        }
    }

    if (lsvd_name_valid(s)) {
        size_t n = strlen(s);

        if (n == 0 || n > LSVD_NAME_MAX || s[0] == '.' || s[0] == '-' ||
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789._-") != n) {
            abort();
        }
    }

    ret = lsvd_parse_size(s, &v);
    if (ret != 0 && ret != -EINVAL && ret != -ERANGE) {
        abort();
    }
    if (ret == 0 && strspn(s, "0123456789") == strlen(s)) {
        /* plain numbers are bytes */
        if (v != g_ascii_strtoull(s, NULL, 10)) {
            abort();
        }
    }
    g_free(s);
    return 0;
}
