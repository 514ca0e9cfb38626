/*
 * fuzz-faultfs - libFuzzer target for the faultfs control language
 * (tests/faultfs/faultfs-rule.c): whatever ff_parse() accepts must format
 * back to a line that parses to the same command, and its glob must be
 * safe to match.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "faultfs-rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct ff_cmd *a, const struct ff_cmd *b)
{
    return a->verb == b->verb && strcmp(a->glob, b->glob) == 0 &&
           (a->verb != FF_ADD ||
            (a->kind == b->kind && a->after == b->after &&
             a->bytes == b->bytes && a->count == b->count &&
             a->has_quota == b->has_quota && a->quota == b->quota &&
             a->lose == b->lose)) &&
           (a->verb != FF_POWERCUT ||
            (a->seed == b->seed && a->lose == b->lose));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ff_cmd c, again;
    char line[FF_LINE_MAX * 2];
    int ret, n;

    ret = ff_parse((const char *)data, size, &c);
    if (ret != 0) {
        if (ret != -EINVAL) {
            abort();
        }
        return 0;
    }
    if (c.verb > FF_TRACK || (c.verb == FF_ADD && c.kind >= FF_KINDS) ||
        c.lose > 100 ||
        memchr(c.glob, '\0', sizeof(c.glob)) == NULL) {
        abort();
    }
    n = ff_format(&c, line, sizeof(line));
    if (n < 0 || (size_t)n >= sizeof(line) ||
        ff_parse(line, n, &again) != 0 || !same(&c, &again)) {
        abort();
    }
    if (c.glob[0]) {
        /* bounded work whatever the pattern */
        ff_match(c.glob, "cache/vol.journal");
        ff_match(c.glob, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
    }
    return 0;
}
