/*
 * extmap.c - extent map as a compact in-memory B+-tree.
 *
 * Extents never overlap and never have length 0.  Adjacent extents are not
 * merged (they may point at unrelated locations), and an extent is always
 * one entry, whatever its length, so that extmap_count() and
 * extmap_foreach() see exactly the extents that updates made.
 *
 * Nodes are node_bytes long (4096 unless a test asks for less):
 *
 *   leaf:     prev, next (8+8)  base (8)  n (4)  wide (4)  entries...
 *     narrow  { u32 off; u32 len; u64 loc }  16 bytes, lba = base + off
 *     wide    { u64 lba; u64 len; u64 loc }  24 bytes
 *     A leaf is narrow when all its entries fit: lba - base < 2^32 and
 *     len < 2^32; otherwise it is wide.  4 KiB: 254 narrow or 169 wide.
 *   internal: n (4)  pad (4)  keys[icap]  children[icap]
 *     keys[0] is unused; keys[i] separates child i-1 from child i.
 *     4 KiB: icap = 255.
 *
 * With ~80% full leaves that is about 20 bytes per extent; internal nodes
 * add ~0.1 byte.  Leaves are kept full by B*-style overflow handling: a
 * full leaf shares with its emptier sibling, and two full leaves become
 * three; a run of ascending (or descending) inserts splits unevenly so
 * that the leaf left behind stays nearly full.
 *
 * Invariants (checked by extmap_check()):
 *   - every leaf is at depth height; leaves are linked in LBA order;
 *   - separators are loose lower bounds: every lba in child i is
 *     >= keys[i] and every lba in child i-1 is < keys[i];  an extent may
 *     reach past the separator after it, so the extent containing an LBA
 *     is in the leaf that the descent finds or is the last one of the
 *     leaf before it;
 *   - a narrow leaf's base is <= every lba in it;
 *   - no node is empty; leaves other than the root hold >= leaf_min
 *     entries, internal nodes other than the root >= imin children, an
 *     internal root >= 2.  A leaf that falls under half its capacity is
 *     merged with (or shares with) its emptier sibling, so that trims
 *     leave leaves at least about half full; an empty one is freed at
 *     once, and an empty map holds no nodes.
 *
 * Updates run top-down with a path of (node, child index) pairs; any
 * change to the shape of the tree decodes the leaves involved into a
 * scratch array, re-encodes them (choosing the format of each new leaf)
 * and replaces them in the parent, which may split or merge in turn.
 * Ranges are clamped so that lba + len <= UINT64_MAX.
 */
#include "extmap.h"

#include <assert.h>
#include <string.h>

#include <glib.h>

#define EXTMAP_NODE_BYTES       4096
#define EXTMAP_MIN_NODE_BYTES   192
#define EXTMAP_MAX_NODE_BYTES   (1u << 20)

/* Deepest tree: every internal node but the root has >= 3 children. */
#define MAX_HEIGHT  48
/* Most nodes one level of a rebuild may produce. */
#define MAX_NEW     8

struct ext {
    uint64_t lba;
    uint64_t len;
    uint64_t loc;
};

struct nent {
    uint32_t off;
    uint32_t len;
    uint64_t loc;
};

struct went {
    uint64_t lba;
    uint64_t len;
    uint64_t loc;
};

struct leaf {
    struct leaf *prev;
    struct leaf *next;
    uint64_t base;              /* narrow: lba = base + off */
    uint32_t n;
    uint32_t wide;
    uint64_t data[];            /* struct nent[] or struct went[] */
};

struct inode {
    uint32_t n;                 /* children */
    uint32_t unused;
    uint64_t data[];            /* uint64_t keys[icap]; void *kids[icap] */
};

_Static_assert(sizeof(struct nent) == 16, "narrow entry is 16 bytes");
_Static_assert(sizeof(struct went) == 24, "wide entry is 24 bytes");
_Static_assert(sizeof(struct leaf) == 32, "leaf header is 32 bytes");
_Static_assert(sizeof(struct inode) == 8, "internal header is 8 bytes");

struct extmap {
    void *root;                 /* NULL when empty */
    unsigned height;            /* internal levels above the leaves */
    size_t count;               /* extents */
    size_t nodes;               /* nodes allocated */
    uint32_t node_bytes;
    uint32_t ncap;              /* narrow entries per leaf */
    uint32_t wcap;              /* wide entries per leaf */
    uint32_t icap;              /* children per internal node */
    uint32_t leaf_min;          /* fewest entries in a non-root leaf */
    uint32_t imin;              /* fewest children of a non-root inode */
    bool have_last;
    uint64_t last_lba;          /* start of the last extent updated */
    /* scratch for rebuilds, allocated on the first one */
    struct ext *ents;           /* 2 * ncap + 2 */
    void **ckids;               /* 2 * icap + MAX_NEW */
    uint64_t *ckeys;            /* 2 * icap + MAX_NEW */
};

/* The internal nodes on the way down to a leaf, and the child taken. */
struct path {
    struct inode *node[MAX_HEIGHT];
    unsigned idx[MAX_HEIGHT];
};

/* ---- nodes ------------------------------------------------------------ */

static void *node_alloc(struct extmap *m)
{
    m->nodes++;
    return g_malloc(m->node_bytes);
}

static void node_free(struct extmap *m, void *node)
{
    assert(m->nodes > 0);
    m->nodes--;
    g_free(node);
}

static inline uint64_t *ikeys(struct inode *p)
{
    return p->data;
}

static inline void **ikids(const struct extmap *m, struct inode *p)
{
    return (void **)(p->data + m->icap);
}

/* The child of @p to descend into for @x: the last i with keys[i] <= x. */
static inline unsigned inode_find(struct inode *p, uint64_t x)
{
    const uint64_t *keys = ikeys(p);
    unsigned lo = 1, hi = p->n;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;

        if (keys[mid] <= x) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo - 1;
}

static inline struct nent *nents(const struct leaf *l)
{
    return (struct nent *)l->data;
}

static inline struct went *wents(const struct leaf *l)
{
    return (struct went *)l->data;
}

static inline unsigned leaf_cap(const struct extmap *m, const struct leaf *l)
{
    return l->wide ? m->wcap : m->ncap;
}

static inline size_t leaf_esize(const struct leaf *l)
{
    return l->wide ? sizeof(struct went) : sizeof(struct nent);
}

static inline uint64_t leaf_lba(const struct leaf *l, unsigned i)
{
    return l->wide ? wents(l)[i].lba : l->base + nents(l)[i].off;
}

static inline void leaf_get(const struct leaf *l, unsigned i, struct ext *e)
{
    if (l->wide) {
        const struct went *w = &wents(l)[i];

        *e = (struct ext){ w->lba, w->len, w->loc };
    } else {
        const struct nent *n = &nents(l)[i];

        *e = (struct ext){ l->base + n->off, n->len, n->loc };
    }
}

/* Can @e be stored in @l as it is (format and base)? */
static inline bool leaf_fits(const struct leaf *l, const struct ext *e)
{
    return l->wide || (e->lba >= l->base && e->lba - l->base <= UINT32_MAX &&
                       e->len <= UINT32_MAX);
}

static inline void leaf_set(struct leaf *l, unsigned i, const struct ext *e)
{
    assert(leaf_fits(l, e));
    if (l->wide) {
        wents(l)[i] = (struct went){ e->lba, e->len, e->loc };
    } else {
        nents(l)[i] = (struct nent){ (uint32_t)(e->lba - l->base),
                                     (uint32_t)e->len, e->loc };
    }
}

static inline void leaf_set_len(struct leaf *l, unsigned i, uint64_t len)
{
    if (l->wide) {
        wents(l)[i].len = len;
    } else {
        assert(len <= UINT32_MAX);
        nents(l)[i].len = (uint32_t)len;
    }
}

/* The first entry of @l with lba >= @x (l->n if none). */
static unsigned leaf_lower_bound(const struct leaf *l, uint64_t x)
{
    unsigned lo = 0, hi = l->n;

    if (l->wide) {
        const struct went *w = wents(l);

        while (lo < hi) {
            unsigned mid = lo + (hi - lo) / 2;

            if (w[mid].lba < x) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
    } else {
        const struct nent *e = nents(l);
        uint32_t t;

        if (x <= l->base) {
            return 0;
        }
        if (x - l->base > UINT32_MAX) {
            return l->n;
        }
        t = (uint32_t)(x - l->base);
        while (lo < hi) {
            unsigned mid = lo + (hi - lo) / 2;

            if (e[mid].off < t) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
    }
    return lo;
}

/*
 * Replace entries [i, i+ndel) of @l by ins[0..nins); the caller checked
 * room and leaf_fits().
 */
static void leaf_splice(struct leaf *l, unsigned i, unsigned ndel,
                        const struct ext *ins, unsigned nins)
{
    size_t es = leaf_esize(l);
    char *d = (char *)l->data;

    memmove(d + (i + nins) * es, d + (i + ndel) * es,
            (l->n - i - ndel) * es);
    l->n = l->n - ndel + nins;
    for (unsigned k = 0; k < nins; k++) {
        leaf_set(l, i + k, &ins[k]);
    }
}

static unsigned leaf_decode(const struct leaf *l, struct ext *out)
{
    for (unsigned i = 0; i < l->n; i++) {
        leaf_get(l, i, &out[i]);
    }
    return l->n;
}

/*
 * Can e[0..n) share one leaf?  Narrow if it can, since that holds more;
 * wide, which holds anything, if there are few enough.
 */
static bool chunk_fits(const struct extmap *m, const struct ext *e,
                       unsigned n, bool *narrow)
{
    *narrow = false;
    if (n <= m->ncap && e[n - 1].lba - e[0].lba <= UINT32_MAX) {
        unsigned i;

        for (i = 0; i < n && e[i].len <= UINT32_MAX; i++) {
            continue;
        }
        if (i == n) {
            *narrow = true;
            return true;
        }
    }
    return n <= m->wcap;
}

/*
 * Fill @l with e[0..n).  @lo is a lower bound of the LBAs that may later
 * be inserted into the leaf; a narrow leaf's base splits the spare
 * offset range between room below the first entry and above the last.
 */
static void leaf_encode(struct leaf *l, const struct ext *e, unsigned n,
                        bool narrow, uint64_t lo)
{
    l->n = n;
    l->wide = !narrow;
    l->base = lo;
    if (narrow) {
        uint64_t first = e[0].lba;
        uint64_t slack = (UINT32_MAX - (e[n - 1].lba - first)) / 2;

        assert(lo <= first);
        l->base = MAX(lo, first > slack ? first - slack : 0);
    }
    for (unsigned i = 0; i < n; i++) {
        leaf_set(l, i, &e[i]);
    }
}

/* ---- the map ---------------------------------------------------------- */

struct extmap *extmap_new_sized(size_t node_bytes)
{
    struct extmap *m = g_new0(struct extmap, 1);

    node_bytes = MIN(MAX(node_bytes, EXTMAP_MIN_NODE_BYTES),
                     EXTMAP_MAX_NODE_BYTES) & ~(size_t)7;
    m->node_bytes = node_bytes;
    m->ncap = (node_bytes - sizeof(struct leaf)) / sizeof(struct nent);
    m->wcap = (node_bytes - sizeof(struct leaf)) / sizeof(struct went);
    m->icap = (node_bytes - sizeof(struct inode)) /
              (sizeof(uint64_t) + sizeof(void *));
    m->leaf_min = MAX(m->wcap / 4, 1);
    m->imin = m->icap / 3;
    assert(m->imin >= 3 && m->icap >= MAX_NEW && m->wcap >= 6);
    return m;
}

struct extmap *extmap_new(void)
{
    return extmap_new_sized(EXTMAP_NODE_BYTES);
}

static void free_subtree(struct extmap *m, void *node, unsigned depth)
{
    if (depth < m->height) {
        struct inode *p = node;

        for (unsigned i = 0; i < p->n; i++) {
            free_subtree(m, ikids(m, p)[i], depth + 1);
        }
    }
    node_free(m, node);
}

static void free_scratch(struct extmap *m)
{
    g_free(m->ents);
    g_free(m->ckids);
    g_free(m->ckeys);
    m->ents = NULL;
    m->ckids = NULL;
    m->ckeys = NULL;
}

static void ensure_scratch(struct extmap *m)
{
    if (!m->ents) {
        m->ents = g_new(struct ext, 2 * m->ncap + 2);
        m->ckids = g_new(void *, 2 * m->icap + MAX_NEW);
        m->ckeys = g_new(uint64_t, 2 * m->icap + MAX_NEW);
    }
}

void extmap_clear(struct extmap *m)
{
    if (m->root) {
        free_subtree(m, m->root, 0);
    }
    assert(m->nodes == 0);
    m->root = NULL;
    m->height = 0;
    m->count = 0;
    m->have_last = false;
    free_scratch(m);
}

void extmap_free(struct extmap *m)
{
    if (m) {
        extmap_clear(m);
        g_free(m);
    }
}

size_t extmap_count(const struct extmap *m)
{
    return m->count;
}

size_t extmap_memory(const struct extmap *m)
{
    size_t bytes = sizeof(*m) + m->nodes * m->node_bytes;

    if (m->ents) {
        bytes += (2 * m->ncap + 2) * sizeof(struct ext) +
                 (2 * m->icap + MAX_NEW) * (sizeof(void *) + sizeof(uint64_t));
    }
    return bytes;
}

/* Shorten [lba, lba+len) so that its end does not wrap. */
static inline uint64_t clamp_len(uint64_t lba, uint64_t len)
{
    return MIN(len, UINT64_MAX - lba);
}

/*
 * The leaf whose key range holds @x, recording the way down in @p (if not
 * NULL) and the separator after the leaf in *ub (*has_ub false if none).
 */
static struct leaf *descend(const struct extmap *m, uint64_t x,
                            struct path *p, uint64_t *ub, bool *has_ub)
{
    void *node = m->root;
    bool has = false;
    uint64_t bound = 0;

    assert(m->height <= MAX_HEIGHT);
    for (unsigned d = 0; d < m->height; d++) {
        struct inode *in = node;
        unsigned i = inode_find(in, x);

        if (p) {
            p->node[d] = in;
            p->idx[d] = i;
        }
        if (i + 1 < in->n) {
            /* deeper separators are tighter */
            bound = ikeys(in)[i + 1];
            has = true;
        }
        node = ikids(m, in)[i];
    }
    if (ub) {
        *ub = bound;
        *has_ub = has;
    }
    return node;
}

/* The lower bound of child @ci of the internal node at depth @d. */
static uint64_t lower_bound_at(const struct path *p, int d, unsigned ci)
{
    for (;;) {
        if (ci > 0) {
            return ikeys(p->node[d])[ci];
        }
        if (d == 0) {
            return 0;
        }
        d--;
        ci = p->idx[d];
    }
}

/* ---- rebuilding --------------------------------------------------------- */

static void write_inode(struct extmap *m, struct inode *p, void **kids,
                        const uint64_t *keys, unsigned n)
{
    p->n = n;
    p->unused = 0;
    ikeys(p)[0] = 0;
    for (unsigned i = 0; i < n; i++) {
        ikids(m, p)[i] = kids[i];
        if (i > 0) {
            ikeys(p)[i] = keys[i];
        }
    }
}

/*
 * Replace children [ci, ci+nold) of the internal node at depth @d of @p
 * (the root itself if @d < 0) by nodes[0..nnew); keys[j], j >= 1, is the
 * separator before nodes[j].  The new nodes cover the key range of the
 * old ones, so the separators around them stay.  Splits, merges or
 * shares the internal node with a sibling as needed, upwards.
 */
static void replace_children(struct extmap *m, struct path *p, int d,
                             unsigned ci, unsigned nold, void **nodes,
                             const uint64_t *keys, unsigned nnew)
{
    struct inode *P, *olds[2];
    void *nn[MAX_NEW];
    uint64_t nk[MAX_NEW];
    unsigned c, t = 0, k, gi, gold = 1;
    void **ck;
    uint64_t *ck_keys;

    assert(nnew <= MAX_NEW);
    if (d < 0) {
        assert(ci == 0 && nold == 1);
        if (nnew == 0) {
            m->root = NULL;
            m->height = 0;
        } else if (nnew == 1) {
            m->root = nodes[0];
        } else {
            struct inode *r = node_alloc(m);

            write_inode(m, r, nodes, keys, nnew);
            m->root = r;
            m->height++;
            assert(m->height <= MAX_HEIGHT);
        }
        return;
    }

    P = p->node[d];
    c = P->n - nold + nnew;
    if (c <= m->icap) {
        uint64_t *pkeys = ikeys(P);
        void **pkids = ikids(m, P);
        unsigned tail = P->n - ci - nold;

        memmove(&pkids[ci + nnew], &pkids[ci + nold], tail * sizeof(void *));
        memmove(&pkeys[ci + nnew], &pkeys[ci + nold], tail * sizeof(uint64_t));
        for (unsigned j = 0; j < nnew; j++) {
            pkids[ci + j] = nodes[j];
            if (j > 0) {
                pkeys[ci + j] = keys[j];
            }
        }
        P->n = c;
        if (d == 0) {
            if (c == 0) {
                node_free(m, P);
                m->root = NULL;
                m->height = 0;
            } else if (c == 1) {
                /* the root has one child left: it becomes the root */
                m->root = pkids[0];
                m->height--;
                node_free(m, P);
            }
            return;
        }
        if (c >= m->imin) {
            return;
        }
    }

    /* Overflow, or a non-root underflow: collect the children and share. */
    ensure_scratch(m);
    ck = m->ckids;
    ck_keys = m->ckeys;
    gi = d > 0 ? p->idx[d - 1] : 0;
    if (c > m->icap) {
        /* P's children with the new ones spliced in */
        for (unsigned j = 0; j < ci; j++, t++) {
            ck[t] = ikids(m, P)[j];
            ck_keys[t] = ikeys(P)[j];
        }
        for (unsigned j = 0; j < nnew; j++, t++) {
            ck[t] = nodes[j];
            ck_keys[t] = j > 0 ? keys[j] : ikeys(P)[ci];
        }
        for (unsigned j = ci + nold; j < P->n; j++, t++) {
            ck[t] = ikids(m, P)[j];
            ck_keys[t] = ikeys(P)[j];
        }
        olds[0] = P;
    } else if (d > 0) {
        /* P (already spliced) is too small: take in a sibling */
        struct inode *gp = p->node[d - 1];
        struct inode *left = gi > 0 ? ikids(m, gp)[gi - 1] : NULL;
        struct inode *right = gi + 1 < gp->n ? ikids(m, gp)[gi + 1] : NULL;
        struct inode *a, *b;

        assert(left || right);
        if (left && (!right || left->n <= right->n)) {
            a = left;
            b = P;
            gi--;
        } else {
            a = P;
            b = right;
        }
        for (unsigned j = 0; j < a->n; j++, t++) {
            ck[t] = ikids(m, a)[j];
            ck_keys[t] = ikeys(a)[j];
        }
        for (unsigned j = 0; j < b->n; j++, t++) {
            ck[t] = ikids(m, b)[j];
            ck_keys[t] = j > 0 ? ikeys(b)[j] : ikeys(gp)[gi + 1];
        }
        olds[0] = a;
        olds[1] = b;
        gold = 2;
    } else {
        g_assert_not_reached();     /* a small root returned above */
    }

    k = (t + m->icap - 1) / m->icap;
    assert(k >= 1 && k <= MAX_NEW && t <= 2 * m->icap + MAX_NEW);
    for (unsigned j = 0; j < k; j++) {
        unsigned b0 = (uint64_t)j * t / k, b1 = (uint64_t)(j + 1) * t / k;

        nn[j] = j < gold ? (void *)olds[j] : node_alloc(m);
        nk[j] = ck_keys[b0];
        write_inode(m, nn[j], &ck[b0], &ck_keys[b0], b1 - b0);
    }
    for (unsigned j = k; j < gold; j++) {
        node_free(m, olds[j]);
    }
    replace_children(m, p, d - 1, gi, gold, nn, nk, k);
}

/*
 * Replace leaves [gi, gi+nold) under the parent at the bottom of @p by
 * leaves holding m->ents[0..n).  At least @k0 leaves (if n allows); if
 * @split is not 0, try a split into [0, split) and [split, n) first.
 */
static void rebuild_leaves(struct extmap *m, struct path *p, unsigned gi,
                           unsigned nold, unsigned n, unsigned k0,
                           unsigned split)
{
    const struct ext *e = m->ents;
    int d = (int)m->height - 1;
    struct inode *P = d >= 0 ? p->node[d] : NULL;
    struct leaf *olds[2], *news[MAX_NEW], *left, *right;
    unsigned b[MAX_NEW + 1], k = 0;
    bool narrow[MAX_NEW];
    uint64_t keys[MAX_NEW];
    uint64_t lo = d >= 0 ? lower_bound_at(p, d, gi) : 0;

    assert(nold >= 1 && nold <= 2);
    for (unsigned j = 0; j < nold; j++) {
        olds[j] = P ? ikids(m, P)[gi + j] : m->root;
    }
    left = olds[0]->prev;
    right = olds[nold - 1]->next;

    /* plan the chunks */
    if (n > 0 && split > 0 && split < n &&
        chunk_fits(m, e, split, &narrow[0]) &&
        chunk_fits(m, e + split, n - split, &narrow[1])) {
        k = 2;
        b[0] = 0;
        b[1] = split;
        b[2] = n;
    } else if (n > 0) {
        for (k = MIN(MAX(k0, 1), n);; k++) {
            bool ok = true;

            assert(k <= MAX_NEW);
            for (unsigned j = 0; j <= k; j++) {
                b[j] = (uint64_t)j * n / k;
            }
            for (unsigned j = 0; j < k && ok; j++) {
                ok = chunk_fits(m, e + b[j], b[j + 1] - b[j], &narrow[j]);
            }
            if (ok) {
                break;
            }
        }
    }

    /* reuse the old leaves, then fill and link the new ones */
    for (unsigned j = 0; j < k; j++) {
        news[j] = j < nold ? olds[j] : node_alloc(m);
    }
    for (unsigned j = k; j < nold; j++) {
        node_free(m, olds[j]);
    }
    for (unsigned j = 0; j < k; j++) {
        leaf_encode(news[j], e + b[j], b[j + 1] - b[j], narrow[j],
                    j == 0 ? lo : e[b[j]].lba);
        keys[j] = e[b[j]].lba;
        news[j]->prev = j == 0 ? left : news[j - 1];
        news[j]->next = j + 1 == k ? right : news[j + 1];
    }
    if (left) {
        left->next = k ? news[0] : right;
    }
    if (right) {
        right->prev = k ? news[k - 1] : left;
    }
    replace_children(m, p, d, gi, nold, (void **)news, keys, k);
}

/*
 * Insert @e, whose range is unmapped, into leaf @l at position @i when it
 * is full or @e does not fit its format.
 */
static void insert_slow(struct extmap *m, struct path *p, struct leaf *l,
                        unsigned i, const struct ext *e)
{
    unsigned h = m->height, cap = leaf_cap(m, l), n = 0;
    unsigned gi = h ? p->idx[h - 1] : 0, nold = 1, k0 = 1, split = 0;
    struct leaf *sib = NULL;
    bool sib_left = false;
    struct ext *s;

    ensure_scratch(m);
    s = m->ents;
    if (l->n >= cap) {
        unsigned total = l->n + 1;

        k0 = 2;
        if (m->have_last && i > 0 && leaf_lba(l, i - 1) == m->last_lba) {
            /* ascending run: leave the entries before @e behind, full */
            split = MIN(MAX(i, m->leaf_min), total - m->leaf_min);
        } else if (m->have_last && i < l->n &&
                   leaf_lba(l, i) == m->last_lba) {
            /* descending run: leave the entries after @e behind */
            split = MIN(MAX(i + 1, m->leaf_min), total - m->leaf_min);
        } else if (h > 0) {
            /* share with the emptier sibling */
            struct inode *P = p->node[h - 1];
            struct leaf *lt = gi > 0 ? ikids(m, P)[gi - 1] : NULL;
            struct leaf *rt = gi + 1 < P->n ? ikids(m, P)[gi + 1] : NULL;

            if (lt && (!rt || lt->n <= rt->n)) {
                sib = lt;
                sib_left = true;
            } else {
                sib = rt;
            }
            nold = 2;
        }
    }
    if (sib && sib_left) {
        n = leaf_decode(sib, s);
        gi--;
    }
    for (unsigned j = 0; j < i; j++) {
        leaf_get(l, j, &s[n++]);
    }
    s[n++] = *e;
    for (unsigned j = i; j < l->n; j++) {
        leaf_get(l, j, &s[n++]);
    }
    if (sib && !sib_left) {
        n += leaf_decode(sib, s + n);
    }
    if (nold == 2) {
        /* two full leaves make three; otherwise share out evenly */
        k0 = n <= 2 * cap - cap / 4 ? 2 : 3;
    }
    rebuild_leaves(m, p, gi, nold, n, k0, split);
}

/* Insert @e, whose range is unmapped. */
static void insert(struct extmap *m, const struct ext *e)
{
    struct path p;
    struct leaf *l;
    unsigned i;

    m->count++;
    if (!m->root) {
        bool narrow;

        l = node_alloc(m);
        chunk_fits(m, e, 1, &narrow);
        leaf_encode(l, e, 1, narrow, 0);
        l->prev = l->next = NULL;
        m->root = l;
        m->height = 0;
        return;
    }
    l = descend(m, e->lba, &p, NULL, NULL);
    i = leaf_lower_bound(l, e->lba);
    if (l->n < leaf_cap(m, l) && leaf_fits(l, e)) {
        leaf_splice(l, i, 0, e, 1);
    } else {
        insert_slow(m, &p, l, i, e);
    }
}

/* Entries were removed from @l, the leaf at the bottom of @p. */
static void leaf_shrunk(struct extmap *m, struct path *p, struct leaf *l)
{
    unsigned h = m->height, gi, n = 0;
    struct inode *P;
    struct leaf *lt, *rt;

    if (l->n == 0) {
        rebuild_leaves(m, p, h ? p->idx[h - 1] : 0, 1, 0, 1, 0);
        return;
    }
    if (h == 0 || l->n >= leaf_cap(m, l) / 2) {
        return;
    }
    /* merge with, or share with, the emptier sibling */
    ensure_scratch(m);
    P = p->node[h - 1];
    gi = p->idx[h - 1];
    lt = gi > 0 ? ikids(m, P)[gi - 1] : NULL;
    rt = gi + 1 < P->n ? ikids(m, P)[gi + 1] : NULL;
    if (lt && (!rt || lt->n <= rt->n)) {
        n = leaf_decode(lt, m->ents);
        n += leaf_decode(l, m->ents + n);
        gi--;
    } else {
        n = leaf_decode(l, m->ents);
        n += leaf_decode(rt, m->ents + n);
    }
    rebuild_leaves(m, p, gi, 2, n, 1, 0);
}

/* ---- the interface ---------------------------------------------------- */

void extmap_trim(struct extmap *m, uint64_t lba, uint64_t len)
{
    uint64_t end, pos = lba;
    struct ext tail;
    bool have_tail = false;

    len = clamp_len(lba, len);
    end = lba + len;
    while (len > 0 && m->root) {
        struct path p;
        struct leaf *l, *pl = NULL;
        unsigned i, j, pi = 0;
        uint64_t ub;
        bool has_ub, stop;
        struct ext e;

        l = descend(m, pos, &p, &ub, &has_ub);
        i = leaf_lower_bound(l, pos);

        /* the extent before @pos may reach into the range */
        if (i > 0) {
            pl = l;
            pi = i - 1;
        } else if (l->prev) {
            pl = l->prev;
            pi = pl->n - 1;
        }
        if (pl) {
            leaf_get(pl, pi, &e);
            if (e.lba + e.len > pos) {
                leaf_set_len(pl, pi, pos - e.lba);
                if (e.lba + e.len > end) {
                    /* keep [end, e_end) too: it covered the whole range */
                    tail = (struct ext){ end, e.lba + e.len - end,
                                         e.loc + (end - e.lba) };
                    have_tail = true;
                    break;
                }
            }
        }

        /* entries [i, j) start inside the range */
        j = leaf_lower_bound(l, end);
        stop = j < l->n || !has_ub || ub >= end;
        if (j > i) {
            leaf_get(l, j - 1, &e);
            if (e.lba + e.len > end) {
                struct ext t = { end, e.lba + e.len - end,
                                 e.loc + (end - e.lba) };

                /* keep the tail in place if it still belongs here */
                if ((!has_ub || end < ub) && leaf_fits(l, &t)) {
                    leaf_set(l, j - 1, &t);
                    j--;
                } else {
                    tail = t;
                    have_tail = true;
                }
                stop = true;
            }
        }
        if (j > i) {
            leaf_splice(l, i, j - i, NULL, 0);
            m->count -= j - i;
            leaf_shrunk(m, &p, l);
        }
        if (stop) {
            break;
        }
        pos = ub;
    }
    if (have_tail) {
        insert(m, &tail);
    }
    if (!m->root) {
        free_scratch(m);
    }
}

/*
 * The common update, with one descent: everything it replaces is in one
 * leaf, which has room for the result, except that the last extent of
 * the leaf before may be shortened.  Returns false, having changed
 * nothing, if the update is not that simple.
 */
static bool update_in_leaf(struct extmap *m, const struct ext *e)
{
    uint64_t end = e->lba + e->len, ub, cut_len = 0;
    struct ext ins[2], x;
    unsigned i, j, pi = 0, nins = 0;
    struct leaf *l, *pl = NULL;
    struct path p;
    bool has_ub, tail = false;

    if (!m->root) {
        return false;
    }
    l = descend(m, e->lba, &p, &ub, &has_ub);
    i = leaf_lower_bound(l, e->lba);
    j = leaf_lower_bound(l, end);
    if (j == l->n && has_ub && ub < end) {
        return false;           /* the next leaf may hold some too */
    }
    ins[nins++] = *e;

    /* the extent before may reach into the range, or past it */
    if (i > 0) {
        pl = l;
        pi = i - 1;
    } else if (l->prev) {
        pl = l->prev;
        pi = pl->n - 1;
    }
    if (pl) {
        leaf_get(pl, pi, &x);
        if (x.lba + x.len > e->lba) {
            cut_len = e->lba - x.lba;
            tail = x.lba + x.len > end;
        } else {
            pl = NULL;
        }
    }
    /* else the last extent that starts in the range may reach past it */
    if (!tail && j > i) {
        leaf_get(l, j - 1, &x);
        tail = x.lba + x.len > end;
    }
    if (tail) {
        if (has_ub && end >= ub) {
            return false;
        }
        ins[nins++] = (struct ext){ end, x.lba + x.len - end,
                                    x.loc + (end - x.lba) };
    }
    if (l->n - (j - i) + nins > leaf_cap(m, l) || !leaf_fits(l, &ins[0]) ||
        (nins > 1 && !leaf_fits(l, &ins[1]))) {
        return false;
    }

    if (pl) {
        leaf_set_len(pl, pi, cut_len);
    }
    leaf_splice(l, i, j - i, ins, nins);
    m->count = m->count + nins - (j - i);
    if (j - i > nins) {
        leaf_shrunk(m, &p, l);
    }
    return true;
}

void extmap_update(struct extmap *m, uint64_t lba, uint64_t len,
                   uint64_t loc)
{
    struct ext e = { lba, clamp_len(lba, len), loc };

    if (e.len == 0) {
        return;
    }
    if (!update_in_leaf(m, &e)) {
        extmap_trim(m, lba, e.len);
        insert(m, &e);
    }
    m->have_last = true;
    m->last_lba = lba;
}

/* The first extent that ends after @pos, or NULL. */
static struct leaf *find_first(const struct extmap *m, uint64_t pos,
                               unsigned *ip)
{
    struct leaf *l;
    unsigned i;

    if (!m->root) {
        return NULL;
    }
    l = descend(m, pos, NULL, NULL, NULL);
    i = leaf_lower_bound(l, pos);
    if (i > 0) {
        struct ext e;

        leaf_get(l, i - 1, &e);
        if (e.lba + e.len > pos) {
            i--;
        }
    } else if (l->prev) {
        struct ext e;

        leaf_get(l->prev, l->prev->n - 1, &e);
        if (e.lba + e.len > pos) {
            *ip = l->prev->n - 1;
            return l->prev;
        }
    }
    if (i == l->n) {
        l = l->next;
        i = 0;
    }
    *ip = i;
    return l;
}

int extmap_lookup(struct extmap *m, uint64_t lba, uint64_t len,
                  extmap_fn *fn, void *arg)
{
    uint64_t pos = lba, end = lba + clamp_len(lba, len);
    unsigned i = 0;
    struct leaf *l = pos < end ? find_first(m, pos, &i) : NULL;
    int ret;

    while (pos < end) {
        uint64_t piece_end;
        struct ext e;

        if (!l) {
            return fn(arg, pos, end - pos, false, 0);
        }
        leaf_get(l, i, &e);
        if (e.lba >= end) {
            return fn(arg, pos, end - pos, false, 0);
        }
        if (e.lba > pos) {
            ret = fn(arg, pos, e.lba - pos, false, 0);
            if (ret) {
                return ret;
            }
            pos = e.lba;
        }
        piece_end = MIN(e.lba + e.len, end);
        ret = fn(arg, pos, piece_end - pos, true, e.loc + (pos - e.lba));
        if (ret) {
            return ret;
        }
        pos = piece_end;
        if (++i == l->n) {
            l = l->next;
            i = 0;
        }
    }
    return 0;
}

int extmap_foreach(struct extmap *m, extmap_fn *fn, void *arg)
{
    void *node = m->root;

    if (!node) {
        return 0;
    }
    for (unsigned d = 0; d < m->height; d++) {
        node = ikids(m, node)[0];
    }
    for (struct leaf *l = node; l; l = l->next) {
        for (unsigned i = 0; i < l->n; i++) {
            struct ext e;
            int ret;

            leaf_get(l, i, &e);
            ret = fn(arg, e.lba, e.len, true, e.loc);
            if (ret) {
                return ret;
            }
        }
    }
    return 0;
}

/* ---- checking ----------------------------------------------------------- */

struct check {
    const struct extmap *m;
    size_t count, nodes;
    const struct leaf *last;    /* previous leaf in order */
    bool have_end;
    uint64_t end;               /* end of the previous extent */
    char *msg;
};

static bool check_fail(struct check *c, const char *what, uint64_t a,
                       uint64_t b)
{
    static __thread char buf[160];

    g_snprintf(buf, sizeof(buf), "extmap: %s (%#" G_GINT64_MODIFIER "x, %#"
             G_GINT64_MODIFIER "x)", what, (guint64)a, (guint64)b);
    c->msg = buf;
    return false;
}

/* Keys in @node lie in [lo, hi) (hi unbounded if !has_hi). */
static bool check_node(struct check *c, const void *node, unsigned depth,
                       uint64_t lo, bool has_hi, uint64_t hi)
{
    const struct extmap *m = c->m;
    bool root = depth == 0;

    c->nodes++;
    if (depth < m->height) {
        struct inode *p = (struct inode *)node;
        const uint64_t *keys = ikeys(p);

        if (p->n > m->icap || p->n < (root ? 2 : m->imin)) {
            return check_fail(c, "internal node fill", depth, p->n);
        }
        for (unsigned i = 1; i < p->n; i++) {
            if (keys[i] <= (i > 1 ? keys[i - 1] : lo) ||
                (has_hi && keys[i] >= hi)) {
                return check_fail(c, "separator out of order", depth,
                                  keys[i]);
            }
        }
        for (unsigned i = 0; i < p->n; i++) {
            bool last = i + 1 == p->n;

            if (!check_node(c, ikids(m, p)[i], depth + 1,
                            i > 0 ? keys[i] : lo, last ? has_hi : true,
                            last ? hi : keys[i + 1])) {
                return false;
            }
        }
    } else {
        const struct leaf *l = node;

        if (l->n == 0 || l->n > leaf_cap(m, l) ||
            (!root && l->n < m->leaf_min)) {
            return check_fail(c, "leaf fill", l->n, l->wide);
        }
        if (l->prev != c->last || (c->last && c->last->next != l)) {
            return check_fail(c, "leaf links", depth, l->n);
        }
        for (unsigned i = 0; i < l->n; i++) {
            struct ext e;

            leaf_get(l, i, &e);
            if (e.len == 0 || e.len > UINT64_MAX - e.lba) {
                return check_fail(c, "extent length", e.lba, e.len);
            }
            if (e.lba < lo || (has_hi && e.lba >= hi)) {
                return check_fail(c, "extent outside its leaf", e.lba, lo);
            }
            if (c->have_end && e.lba < c->end) {
                return check_fail(c, "extents overlap or out of order",
                                  e.lba, c->end);
            }
            c->have_end = true;
            c->end = e.lba + e.len;
        }
        c->count += l->n;
        c->last = l;
    }
    return true;
}

const char *extmap_check(const struct extmap *m)
{
    struct check c = { .m = m };

    if (!m->root) {
        if (m->count || m->nodes || m->height) {
            check_fail(&c, "empty map with extents or nodes", m->count,
                       m->nodes);
        }
        return c.msg;
    }
    if (m->height > MAX_HEIGHT) {
        check_fail(&c, "too deep", m->height, MAX_HEIGHT);
    } else if (check_node(&c, m->root, 0, 0, false, 0)) {
        if (c.last->next) {
            check_fail(&c, "last leaf has a successor", 0, 0);
        } else if (c.count != m->count) {
            check_fail(&c, "extent count", c.count, m->count);
        } else if (c.nodes != m->nodes) {
            check_fail(&c, "node count", c.nodes, m->nodes);
        }
    }
    return c.msg;
}
