/*
 * s3xml.c - ListObjectsV2 pages and <Error> bodies, with GMarkup.
 *
 * The parser keeps a stack of the element names it cares about, up to the
 * depth where they can occur (3); anything else is counted and skipped.
 * Text is only collected inside a leaf we want, into one GString bounded
 * by S3XML_MAX_TEXT, so memory stays proportional to what is kept.
 */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "s3xml.h"

/* A leaf's text before decoding: a key of S3XML_MAX_KEY bytes, each of
 * which may be sent as "%XX". */
#define S3XML_MAX_TEXT (3 * S3XML_MAX_KEY + 64)
#define MAX_DEPTH 3

enum elem {
    E_OTHER,
    E_LIST,             /* <ListBucketResult> */
    E_ERROR,            /* <Error> */
    E_CONTENTS,
    E_KEY,
    E_SIZE,
    E_COMMON,           /* <CommonPrefixes> */
    E_PREFIX,
    E_TRUNCATED,
    E_TOKEN,            /* <NextContinuationToken> */
    E_ENCODING,
    E_CODE,
    E_MESSAGE,
    E_BUCKET,
};

static const struct {
    enum elem parent;
    const char *name;
    enum elem e;
} known[] = {
    { E_LIST, "Contents", E_CONTENTS },
    { E_LIST, "CommonPrefixes", E_COMMON },
    { E_LIST, "IsTruncated", E_TRUNCATED },
    { E_LIST, "NextContinuationToken", E_TOKEN },
    { E_LIST, "EncodingType", E_ENCODING },
    { E_CONTENTS, "Key", E_KEY },
    { E_CONTENTS, "Size", E_SIZE },
    { E_COMMON, "Prefix", E_PREFIX },
    { E_ERROR, "Code", E_CODE },
    { E_ERROR, "Message", E_MESSAGE },
    { E_ERROR, "BucketName", E_BUCKET },
};

struct pstate {
    enum elem root;             /* what the document must be */
    int depth;                  /* of the element we are in; 0 outside */
    enum elem stack[MAX_DEPTH + 1];
    GString *text;              /* of the current wanted leaf, or NULL */
    bool url_encoded;
    /* list */
    struct s3xml_list *list;
    struct s3xml_object *obj;   /* inside <Contents> */
    bool have_size;
    char *prefix;               /* inside <CommonPrefixes> */
    /* error */
    struct s3xml_error *err;
};

static enum elem cur(struct pstate *p)
{
    return p->depth >= 1 && p->depth <= MAX_DEPTH ? p->stack[p->depth]
                                                   : E_OTHER;
}

static bool is_leaf(enum elem e)
{
    return e != E_OTHER && e != E_LIST && e != E_ERROR && e != E_CONTENTS &&
           e != E_COMMON;
}

static void fail(GError **error, const char *what)
{
    g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT, "%s",
                what);
}

static void obj_free(gpointer p)
{
    struct s3xml_object *o = p;

    g_free(o->key);
    g_free(o);
}

static void on_start(GMarkupParseContext *ctx G_GNUC_UNUSED,
                     const char *name, const char **attr_names G_GNUC_UNUSED,
                     const char **attr_values G_GNUC_UNUSED, gpointer data,
                     GError **error)
{
    struct pstate *p = data;
    enum elem parent = cur(p), e = E_OTHER;

    if (p->depth == 0) {
        e = p->root == E_LIST && !strcmp(name, "ListBucketResult") ? E_LIST :
            p->root == E_ERROR && !strcmp(name, "Error") ? E_ERROR : E_OTHER;
        if (e == E_OTHER) {
            fail(error, "unexpected root element");
            return;
        }
    } else if (p->depth < MAX_DEPTH && parent != E_OTHER) {
        for (size_t i = 0; i < G_N_ELEMENTS(known); i++) {
            if (known[i].parent == parent && !strcmp(known[i].name, name)) {
                e = known[i].e;
                break;
            }
        }
    }
    if (p->text) {
        fail(error, "element inside a text field");
        return;
    }
    p->depth++;
    if (p->depth <= MAX_DEPTH) {
        p->stack[p->depth] = e;
    }
    if (e == E_CONTENTS) {
        if (p->list->objects->len + p->list->prefixes->len >=
            S3XML_MAX_ENTRIES) {
            fail(error, "too many entries");
            return;
        }
        p->obj = g_new0(struct s3xml_object, 1);
        p->have_size = false;
    } else if (e == E_COMMON) {
        if (p->list->objects->len + p->list->prefixes->len >=
            S3XML_MAX_ENTRIES) {
            fail(error, "too many entries");
            return;
        }
    } else if (is_leaf(e)) {
        p->text = g_string_new(NULL);
    }
}

static void on_text(GMarkupParseContext *ctx G_GNUC_UNUSED, const char *text,
                    gsize len, gpointer data, GError **error)
{
    struct pstate *p = data;

    if (!p->text) {
        return;
    }
    if (p->text->len + len > S3XML_MAX_TEXT) {
        fail(error, "text field too long");
        return;
    }
    g_string_append_len(p->text, text, len);
}

/* Move the collected text into *@dst, which must still be empty. */
static bool take_text(struct pstate *p, char **dst, GError **error)
{
    if (*dst) {
        fail(error, "repeated element");
        return false;
    }
    *dst = g_string_free(g_steal_pointer(&p->text), false);
    return true;
}

static void on_leaf_end(struct pstate *p, enum elem e, GError **error)
{
    g_autofree char *s = NULL;
    guint64 v;

    switch (e) {
    case E_KEY:
        take_text(p, &p->obj->key, error);
        return;
    case E_PREFIX:
        take_text(p, &p->prefix, error);
        return;
    case E_TOKEN:
        take_text(p, &p->list->next_token, error);
        return;
    case E_CODE:
        take_text(p, &p->err->code, error);
        return;
    case E_MESSAGE:
        take_text(p, &p->err->message, error);
        return;
    case E_BUCKET:
        take_text(p, &p->err->bucket, error);
        return;
    default:
        break;
    }
    s = g_strstrip(g_string_free(g_steal_pointer(&p->text), false));
    switch (e) {
    case E_SIZE:
        if (p->have_size ||
            !g_ascii_string_to_unsigned(s, 10, 0, S3XML_MAX_SIZE, &v, NULL)) {
            fail(error, "bad Size");
            return;
        }
        p->obj->size = v;
        p->have_size = true;
        break;
    case E_TRUNCATED:
        if (strcmp(s, "true") && strcmp(s, "false")) {
            fail(error, "bad IsTruncated");
            return;
        }
        p->list->truncated = !strcmp(s, "true");
        break;
    case E_ENCODING:
        p->url_encoded = !strcmp(s, "url");
        break;
    default:
        break;
    }
}

static void on_end(GMarkupParseContext *ctx G_GNUC_UNUSED,
                   const char *name G_GNUC_UNUSED, gpointer data,
                   GError **error)
{
    struct pstate *p = data;
    enum elem e = cur(p);

    if (is_leaf(e) && p->text) {
        on_leaf_end(p, e, error);
    } else if (e == E_CONTENTS) {
        if (!p->obj->key) {
            fail(error, "Contents without a Key");
            return;
        }
        g_ptr_array_add(p->list->objects, g_steal_pointer(&p->obj));
    } else if (e == E_COMMON) {
        if (!p->prefix) {
            fail(error, "CommonPrefixes without a Prefix");
            return;
        }
        g_ptr_array_add(p->list->prefixes, g_steal_pointer(&p->prefix));
    }
    p->depth--;
}

/* Undo EncodingType=url: '+' is a space, %XX a byte; NULL if invalid (a
 * bad escape, an escaped NUL) or too long. */
static char *url_decode(const char *s)
{
    g_autofree char *plus = g_strdup(s);
    char *d;

    g_strdelimit(plus, "+", ' ');
    d = g_uri_unescape_string(plus, NULL);
    if (d && strlen(d) > S3XML_MAX_KEY) {
        g_free(d);
        d = NULL;
    }
    return d;
}

static bool decode_all(GPtrArray *objects, GPtrArray *prefixes, bool url)
{
    for (guint i = 0; i < objects->len; i++) {
        struct s3xml_object *o = objects->pdata[i];
        char *d = url ? url_decode(o->key) : NULL;

        if (url) {
            if (!d) {
                return false;
            }
            g_free(o->key);
            o->key = d;
        } else if (strlen(o->key) > S3XML_MAX_KEY) {
            return false;
        }
    }
    for (guint i = 0; i < prefixes->len; i++) {
        char *d = url ? url_decode(prefixes->pdata[i]) : NULL;

        if (url) {
            if (!d) {
                return false;
            }
            g_free(prefixes->pdata[i]);
            prefixes->pdata[i] = d;
        } else if (strlen(prefixes->pdata[i]) > S3XML_MAX_KEY) {
            return false;
        }
    }
    return true;
}

static const GMarkupParser parser = {
    .start_element = on_start,
    .end_element = on_end,
    .text = on_text,
};

static int run(struct pstate *p, const char *doc, size_t len)
{
    GMarkupParseContext *ctx;
    bool ok;

    if (len > S3XML_MAX_DOC) {
        return -EFBIG;
    }
    ctx = g_markup_parse_context_new(&parser, 0, p, NULL);
    ok = g_markup_parse_context_parse(ctx, doc, len, NULL) &&
         g_markup_parse_context_end_parse(ctx, NULL);
    g_markup_parse_context_free(ctx);
    if (p->text) {
        g_string_free(p->text, true);
    }
    if (p->obj) {
        obj_free(p->obj);
    }
    g_free(p->prefix);
    return ok && p->depth == 0 ? 0 : -EINVAL;
}

int s3xml_parse_list(const char *doc, size_t len, struct s3xml_list *out)
{
    struct s3xml_list l = {
        .objects = g_ptr_array_new_with_free_func(obj_free),
        .prefixes = g_ptr_array_new_with_free_func(g_free),
    };
    struct pstate p = { .root = E_LIST, .list = &l };
    int ret = run(&p, doc, len);

    if (ret == 0 && !decode_all(l.objects, l.prefixes, p.url_encoded)) {
        ret = -EINVAL;
    }
    if (ret == 0 && l.truncated && (!l.next_token || !*l.next_token)) {
        ret = -EINVAL;          /* a next page we could not ask for */
    }
    if (ret < 0) {
        s3xml_list_clear(&l);
        return ret;
    }
    *out = l;
    return 0;
}

void s3xml_list_clear(struct s3xml_list *l)
{
    if (l->objects) {
        g_ptr_array_unref(l->objects);
    }
    if (l->prefixes) {
        g_ptr_array_unref(l->prefixes);
    }
    g_free(l->next_token);
    memset(l, 0, sizeof(*l));
}

int s3xml_parse_error(const char *doc, size_t len, struct s3xml_error *out)
{
    struct s3xml_error e = { 0 };
    struct pstate p = { .root = E_ERROR, .err = &e };
    int ret = run(&p, doc, len);

    if (ret < 0) {
        s3xml_error_clear(&e);
        return ret;
    }
    *out = e;
    return 0;
}

void s3xml_error_clear(struct s3xml_error *e)
{
    g_free(e->code);
    g_free(e->message);
    g_free(e->bucket);
    memset(e, 0, sizeof(*e));
}
