/*
 * extmap.c - extent map on a GTree keyed by start LBA.
 *
 * Invariants: extents never overlap and never have length 0.  Adjacent
 * extents are not merged (they may point at unrelated locations).
 */
#include "extmap.h"

#include <glib.h>

struct ext {
    uint64_t lba;
    uint64_t len;
    uint64_t loc;
};

struct extmap {
    GTree *tree;        /* &ext->lba -> struct ext */
};

static gint cmp_lba(gconstpointer a, gconstpointer b,
                    gpointer unused G_GNUC_UNUSED)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

struct extmap *extmap_new(void)
{
    struct extmap *m = g_new0(struct extmap, 1);

    m->tree = g_tree_new_full(cmp_lba, NULL, NULL, g_free);
    return m;
}

void extmap_free(struct extmap *m)
{
    if (m) {
        g_tree_destroy(m->tree);
        g_free(m);
    }
}

void extmap_clear(struct extmap *m)
{
    g_tree_destroy(m->tree);
    m->tree = g_tree_new_full(cmp_lba, NULL, NULL, g_free);
}

size_t extmap_count(const struct extmap *m)
{
    return g_tree_nnodes(m->tree);
}

/* The extent that contains @lba or, failing that, the first after it. */
static GTreeNode *first_at_or_after(struct extmap *m, uint64_t lba)
{
    GTreeNode *n = g_tree_upper_bound(m->tree, &lba);  /* first key > lba */
    GTreeNode *prev = n ? g_tree_node_previous(n) : g_tree_node_last(m->tree);

    if (prev) {
        struct ext *e = g_tree_node_value(prev);
        if (e->lba + e->len > lba) {
            return prev;
        }
    }
    return n;
}

static void insert(struct extmap *m, uint64_t lba, uint64_t len,
                   uint64_t loc)
{
    struct ext *e = g_new(struct ext, 1);

    e->lba = lba;
    e->len = len;
    e->loc = loc;
    g_tree_insert(m->tree, &e->lba, e);
}

void extmap_trim(struct extmap *m, uint64_t lba, uint64_t len)
{
    uint64_t end = lba + len;
    GTreeNode *n;

    /*
     * Look the next extent up again after every change: removing a node
     * may relink its neighbours, so saved node pointers are not kept.
     */
    while ((n = first_at_or_after(m, lba))) {
        struct ext *e = g_tree_node_value(n);
        uint64_t e_end = e->lba + e->len;

        if (e->lba >= end) {
            break;
        }
        if (e->lba < lba) {
            /* keep the head [e->lba, lba) */
            e->len = lba - e->lba;
            if (e_end > end) {
                insert(m, end, e_end - end, e->loc + (end - e->lba));
                break;
            }
        } else if (e_end > end) {
            /* keep the tail [end, e_end), re-keyed */
            uint64_t loc = e->loc + (end - e->lba);
            g_tree_remove(m->tree, &e->lba);
            insert(m, end, e_end - end, loc);
            break;
        } else {
            g_tree_remove(m->tree, &e->lba);
        }
    }
}

void extmap_update(struct extmap *m, uint64_t lba, uint64_t len,
                   uint64_t loc)
{
    if (len == 0) {
        return;
    }
    extmap_trim(m, lba, len);
    insert(m, lba, len, loc);
}

int extmap_lookup(struct extmap *m, uint64_t lba, uint64_t len,
                  extmap_fn *fn, void *arg)
{
    uint64_t pos = lba, end = lba + len;
    GTreeNode *n = first_at_or_after(m, lba);
    int ret;

    while (pos < end) {
        struct ext *e = n ? g_tree_node_value(n) : NULL;

        if (!e || e->lba >= end) {
            return fn(arg, pos, end - pos, false, 0);
        }
        if (e->lba > pos) {
            ret = fn(arg, pos, e->lba - pos, false, 0);
            if (ret) {
                return ret;
            }
            pos = e->lba;
        }
        uint64_t piece_end = MIN(e->lba + e->len, end);
        ret = fn(arg, pos, piece_end - pos, true, e->loc + (pos - e->lba));
        if (ret) {
            return ret;
        }
        pos = piece_end;
        n = g_tree_node_next(n);
    }
    return 0;
}

int extmap_foreach(struct extmap *m, extmap_fn *fn, void *arg)
{
    for (GTreeNode *n = g_tree_node_first(m->tree); n;
         n = g_tree_node_next(n)) {
        struct ext *e = g_tree_node_value(n);
        int ret = fn(arg, e->lba, e->len, true, e->loc);
        if (ret) {
            return ret;
        }
    }
    return 0;
}
