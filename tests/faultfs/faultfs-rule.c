/*
 * faultfs-rule.c - the parser of faultfs control commands.  See
 * faultfs-rule.h for the language.  The input comes from whoever can
 * write to the mount, so it is parsed strictly: printable ASCII only,
 * bounded lengths, every number checked for overflow.
 */
#include "faultfs-rule.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[FF_KINDS] = {
    [FF_EIO_WRITE] = "eio-write",
    [FF_EIO_READ] = "eio-read",
    [FF_EIO_FSYNC] = "eio-fsync",
    [FF_ENOSPC] = "enospc",
};

const char *ff_kind_name(enum ff_kind kind)
{
    return kind < FF_KINDS ? kind_names[kind] : "?";
}

/* The words of a line: pointers into a private copy, NUL-terminated. */
struct words {
    char buf[FF_LINE_MAX + 1];
    char *w[8];
    int n;
};

static int split(const char *line, size_t len, struct words *ws)
{
    char *p;

    if (len > 0 && line[len - 1] == '\n') {
        len--;
    }
    if (len > FF_LINE_MAX) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = line[i];

        if ((c < 0x20 || c > 0x7e) && c != '\t') {
            return -EINVAL;     /* NUL, newline, controls, non-ASCII */
        }
    }
    memcpy(ws->buf, line, len);
    ws->buf[len] = '\0';
    ws->n = 0;
    for (p = strtok(ws->buf, " \t"); p; p = strtok(NULL, " \t")) {
        if (ws->n == (int)(sizeof(ws->w) / sizeof(ws->w[0]))) {
            return -EINVAL;
        }
        ws->w[ws->n++] = p;
    }
    return 0;
}

/* A decimal number with an optional k/M/G suffix, no overflow. */
static int parse_num(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int shift = 0;

    if (!*s) {
        return -EINVAL;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) {
            return -EINVAL;
        }
        v = v * 10 + (uint64_t)(*s - '0');
    }
    switch (*s) {
    case '\0': break;
    case 'k': shift = 10; s++; break;
    case 'M': shift = 20; s++; break;
    case 'G': shift = 30; s++; break;
    default: return -EINVAL;
    }
    if (*s || (shift && v > (UINT64_MAX >> shift))) {
        return -EINVAL;
    }
    *out = v << shift;
    return 0;
}

static int parse_glob(const char *s, char *out)
{
    size_t n = strlen(s);
    int stars = 0;

    if (n == 0 || n >= FF_GLOB_MAX || strchr(s, '=')) {
        return -EINVAL;
    }
    for (const char *p = s; *p; p++) {
        stars += *p == '*';
    }
    if (stars > FF_GLOB_STARS) {
        return -EINVAL;
    }
    memcpy(out, s, n + 1);
    return 0;
}

/* One key=value option; each key at most once (@seen). */
static int parse_opt(const char *w, struct ff_cmd *c, unsigned *seen)
{
    static const char *const keys[] = { "after", "bytes", "count", "quota",
                                        "seed", "lose" };
    const char *eq = strchr(w, '=');
    uint64_t v;
    unsigned k;

    if (!eq) {
        return -EINVAL;
    }
    for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        if (strlen(keys[k]) == (size_t)(eq - w) &&
            !strncmp(w, keys[k], eq - w)) {
            break;
        }
    }
    if (k == sizeof(keys) / sizeof(keys[0]) || (*seen & (1u << k)) ||
        parse_num(eq + 1, &v) < 0) {
        return -EINVAL;
    }
    *seen |= 1u << k;
    /* seed belongs to powercut only, lose also to eio-fsync, the others
     * to rules only */
    if (k == 5 ? !(c->verb == FF_POWERCUT ||
                   (c->verb == FF_ADD && c->kind == FF_EIO_FSYNC)) :
        (c->verb == FF_POWERCUT) != (k == 4)) {
        return -EINVAL;
    }
    switch (k) {
    case 0: c->after = v; break;
    case 1: c->bytes = v; break;
    case 2: c->count = v; break;
    case 3:
        if (c->kind != FF_ENOSPC) {
            return -EINVAL;
        }
        c->quota = v;
        c->has_quota = true;
        break;
    case 4: c->seed = v; break;
    default:
        if (v > 100) {
            return -EINVAL;
        }
        c->lose = v;
        break;
    }
    return 0;
}

int ff_parse(const char *line, size_t len, struct ff_cmd *out)
{
    struct words ws;
    struct ff_cmd c;
    unsigned seen = 0;
    int first = 1;

    memset(&c, 0, sizeof(c));
    if (split(line, len, &ws) < 0) {
        return -EINVAL;
    }
    if (ws.n == 0 || ws.w[0][0] == '#') {
        *out = c;               /* FF_NOP */
        return 0;
    }
    if (!strcmp(ws.w[0], "clear")) {
        if (ws.n > 2 || (ws.n == 2 && parse_glob(ws.w[1], c.glob) < 0)) {
            return -EINVAL;
        }
        c.verb = FF_CLEAR;
        *out = c;
        return 0;
    }
    if (!strcmp(ws.w[0], "track")) {
        if (ws.n != 2 || parse_glob(ws.w[1], c.glob) < 0) {
            return -EINVAL;
        }
        c.verb = FF_TRACK;
        *out = c;
        return 0;
    }
    if (!strcmp(ws.w[0], "powercut")) {
        c.verb = FF_POWERCUT;
    } else {
        int k;

        for (k = 0; k < FF_KINDS && strcmp(ws.w[0], kind_names[k]); k++) {
        }
        if (k == FF_KINDS || ws.n < 2 || parse_glob(ws.w[1], c.glob) < 0) {
            return -EINVAL;
        }
        c.verb = FF_ADD;
        c.kind = k;
        first = 2;
    }
    for (int i = first; i < ws.n; i++) {
        if (parse_opt(ws.w[i], &c, &seen) < 0) {
            return -EINVAL;
        }
    }
    *out = c;
    return 0;
}

int ff_format(const struct ff_cmd *c, char *buf, size_t size)
{
    switch (c->verb) {
    case FF_NOP:
        return snprintf(buf, size, "#");
    case FF_CLEAR:
        return snprintf(buf, size, "clear%s%s", c->glob[0] ? " " : "",
                        c->glob);
    case FF_POWERCUT:
        return snprintf(buf, size, "powercut seed=%" PRIu64 " lose=%" PRIu64,
                        c->seed, c->lose);
    case FF_TRACK:
        return snprintf(buf, size, "track %s", c->glob);
    default:
        break;
    }
    if (c->kind == FF_EIO_FSYNC) {
        return snprintf(buf, size, "%s %s after=%" PRIu64 " bytes=%" PRIu64
                        " count=%" PRIu64 " lose=%" PRIu64,
                        ff_kind_name(c->kind), c->glob, c->after, c->bytes,
                        c->count, c->lose);
    }
    if (c->has_quota) {
        return snprintf(buf, size, "%s %s after=%" PRIu64 " bytes=%" PRIu64
                        " count=%" PRIu64 " quota=%" PRIu64,
                        ff_kind_name(c->kind), c->glob, c->after, c->bytes,
                        c->count, c->quota);
    }
    return snprintf(buf, size, "%s %s after=%" PRIu64 " bytes=%" PRIu64
                    " count=%" PRIu64, ff_kind_name(c->kind), c->glob,
                    c->after, c->bytes, c->count);
}

bool ff_match(const char *glob, const char *path)
{
    const char *base = strrchr(path, '/');

    if (!strchr(glob, '/')) {
        path = base ? base + 1 : path;
    }
    return fnmatch(glob, path, 0) == 0;
}
