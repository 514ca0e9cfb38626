/*
 * rcache.c - the read cache (see rcache.h for states and invariants).
 */
#include "rcache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "format.h"

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_VALID };

struct slot {
    uint64_t key;               /* seq << 24 | block: the hash key */
    uint8_t state;
    bool refbit;                /* CLOCK: used since the hand last passed */
    bool verified;              /* data known to match crc */
    uint32_t refs;              /* readers of a VALID slot */
    uint32_t len;
    uint32_t crc;
};

#define KEY_BLOCK_BITS 24

struct rcache {
    char *data_path, *map_path;
    int fd;
    uint8_t uuid[LSVD_UUID_LEN];
    uint32_t block_size;
    uint32_t n_slots;
    bool rdonly;                /* hits only: never fill or save */

    GMutex lock;                /* protects everything below, except
                                 * c.hit_bytes: atomics */
    GCond cond;                 /* a FILLING slot changed state */
    struct slot *slots;
    GHashTable *hash;           /* &slot->key -> slot */
    uint32_t hand;
    uint64_t gen;               /* bumped by every change to the map */
    bool fill_failed;           /* a fill could not be written: warned */
    struct rcache_counters c;

    GMutex persist_lock;        /* one rcache_persist() at a time */
    uint64_t persisted_gen;     /* under persist_lock */
};

static uint64_t make_key(uint64_t seq, uint32_t block)
{
    return seq << KEY_BLOCK_BITS | block;
}

uint32_t rcache_block_size(const struct rcache *rc)
{
    return rc->block_size;
}

bool rcache_readonly(const struct rcache *rc)
{
    return rc->rdonly;
}

/* ---- the persisted map ------------------------------------------------ */

static void load_map(struct rcache *rc)
{
    g_autofree uint8_t *buf = NULL;
    struct rcmap m;
    gsize len;
    int ret;

    if (!g_file_get_contents(rc->map_path, (char **)&buf, &len, NULL)) {
        return;                 /* no map: an empty cache */
    }
    ret = rcmap_parse(buf, len, &m);
    if (ret < 0) {
        lsvd_log(LSVD_LOG_WARNING, "read cache map %s is damaged (%s); "
                 "starting with an empty read cache", rc->map_path,
                 g_strerror(-ret));
        return;
    }
    if (memcmp(m.uuid, rc->uuid, LSVD_UUID_LEN) != 0 ||
        m.block_size != rc->block_size || m.n_slots != rc->n_slots) {
        /* another volume's, or the geometry changed: start afresh */
        rcmap_free(&m);
        return;
    }
    for (uint32_t i = 0; i < m.n_entries; i++) {
        const struct rcmap_entry *e = &m.entries[i];
        struct slot *s = &rc->slots[e->slot];

        if (e->seq >> (64 - KEY_BLOCK_BITS) || e->block >> KEY_BLOCK_BITS) {
            continue;
        }
        s->key = make_key(e->seq, e->block);
        if (g_hash_table_contains(rc->hash, &s->key)) {
            continue;           /* the parser allows it; we do not */
        }
        s->state = SLOT_VALID;
        s->len = e->len;
        s->crc = e->crc;
        s->verified = false;
        g_hash_table_insert(rc->hash, &s->key, s);
        rc->c.used_slots++;
    }
    rcmap_free(&m);
}

int rcache_persist(struct rcache *rc)
{
    struct rcmap m = { .block_size = rc->block_size,
                       .n_slots = rc->n_slots };
    g_autofree uint8_t *buf = NULL;
    struct iovec iov;
    uint64_t gen;
    size_t len;
    int ret = 0;

    if (rc->rdonly) {
        return 0;
    }
    g_mutex_lock(&rc->persist_lock);
    g_mutex_lock(&rc->lock);
    gen = rc->gen;
    if (gen == rc->persisted_gen) {
        g_mutex_unlock(&rc->lock);
        g_mutex_unlock(&rc->persist_lock);
        return 0;
    }
    memcpy(m.uuid, rc->uuid, LSVD_UUID_LEN);
    m.entries = g_new(struct rcmap_entry, rc->c.used_slots + 1);
    for (uint32_t i = 0; i < rc->n_slots; i++) {
        const struct slot *s = &rc->slots[i];

        if (s->state == SLOT_VALID) {
            m.entries[m.n_entries++] = (struct rcmap_entry){
                .seq = s->key >> KEY_BLOCK_BITS,
                .block = s->key & ((1u << KEY_BLOCK_BITS) - 1),
                .slot = i, .len = s->len, .crc = s->crc,
            };
        }
    }
    g_mutex_unlock(&rc->lock);

    /* the map must not name data that is not on the device yet; a slot
     * rewritten after this point is caught by its CRC after a crash */
    if (fdatasync(rc->fd) < 0) {
        ret = -errno;
    } else {
        buf = rcmap_encode(&m, &len);
        iov = (struct iovec){ buf, len };
        ret = lsvd_replace_file(rc->map_path, &iov, 1, 0600);
    }
    if (ret == 0) {
        rc->persisted_gen = gen;
    } else {
        lsvd_log(LSVD_LOG_WARNING, "cannot write read cache map %s: %s",
                 rc->map_path, g_strerror(-ret));
    }
    g_mutex_unlock(&rc->persist_lock);
    rcmap_free(&m);
    return ret;
}

/* ---- open and close --------------------------------------------------- */

int rcache_open(const char *base, const uint8_t uuid[LSVD_UUID_LEN],
                uint64_t size, uint32_t block_size, bool rdonly,
                struct rcache **out, struct lsvd_err *err)
{
    struct rcache *rc;
    uint64_t n = size / block_size;
    struct stat st;

    if (block_size < LSVD_SECTOR_SIZE || block_size % LSVD_SECTOR_SIZE ||
        n == 0 || n > RCMAP_MAX_SLOTS) {
        return lsvd_fail(err, -EINVAL, "read cache: %" PRIu64 " bytes of %u "
                         "byte blocks is not a usable size", size,
                         block_size);
    }
    rc = g_new0(struct rcache, 1);
    rc->data_path = g_strconcat(base, ".rcache", NULL);
    rc->map_path = g_strconcat(base, ".rcmap", NULL);
    memcpy(rc->uuid, uuid, LSVD_UUID_LEN);
    rc->block_size = block_size;
    rc->n_slots = n;
    rc->rdonly = rdonly;
    g_mutex_init(&rc->lock);
    g_cond_init(&rc->cond);
    g_mutex_init(&rc->persist_lock);
    rc->fd = rdonly ? open(rc->data_path, O_RDONLY | O_CLOEXEC) :
                      open(rc->data_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (rc->fd < 0 && rdonly && errno == ENOENT) {
        rc->hash = NULL;
        rcache_close(rc);
        return -ENOENT;
    }
    if (rc->fd < 0 || fstat(rc->fd, &st) < 0) {
        int ret = lsvd_fail(err, -errno, "cannot open read cache %s: %s",
                            rc->data_path, g_strerror(errno));
        rc->hash = NULL;
        rcache_close(rc);
        return ret;
    }
    rc->slots = g_new0(struct slot, n);
    rc->hash = g_hash_table_new(g_int64_hash, g_int64_equal);
    /* sparse: a slot takes space on the device once it is filled */
    if ((uint64_t)st.st_size != n * block_size && rdonly) {
        rcache_close(rc);
        return -ENOENT;
    }
    if ((uint64_t)st.st_size != n * block_size) {
        if (ftruncate(rc->fd, 0) < 0 ||
            ftruncate(rc->fd, n * block_size) < 0) {
            int ret = lsvd_fail(err, -errno, "cannot size read cache %s: %s",
                                rc->data_path, g_strerror(errno));
            rcache_close(rc);
            return ret;
        }
    } else {
        load_map(rc);
    }
    rc->persisted_gen = rc->gen;
    *out = rc;
    return 0;
}

void rcache_close(struct rcache *rc)
{
    if (!rc) {
        return;
    }
    if (rc->hash) {
        rcache_persist(rc);
        g_hash_table_destroy(rc->hash);
    }
    if (rc->fd >= 0) {
        close(rc->fd);
    }
    g_free(rc->slots);
    g_mutex_clear(&rc->lock);
    g_cond_clear(&rc->cond);
    g_mutex_clear(&rc->persist_lock);
    g_free(rc->data_path);
    g_free(rc->map_path);
    g_free(rc);
}

void rcache_remove(const char *base)
{
    g_autofree char *data = g_strconcat(base, ".rcache", NULL);
    g_autofree char *map = g_strconcat(base, ".rcmap", NULL);

    g_unlink(map);
    g_unlink(data);
}

/* ---- lookups ---------------------------------------------------------- */

/* Lock held.  A slot to reuse (CLOCK), out of the hash, or NULL if every
 * slot is busy. */
static struct slot *evict_one(struct rcache *rc)
{
    for (uint64_t i = 0; i < 2ULL * rc->n_slots + 1; i++) {
        struct slot *s = &rc->slots[rc->hand];

        rc->hand = (rc->hand + 1) % rc->n_slots;
        if (s->state == SLOT_FILLING || s->refs > 0) {
            continue;
        }
        if (s->state == SLOT_VALID && s->refbit) {
            s->refbit = false;
            continue;
        }
        if (s->state == SLOT_VALID) {
            g_hash_table_remove(rc->hash, &s->key);
            rc->c.evictions++;
            rc->c.used_slots--;
            rc->gen++;
        }
        s->state = SLOT_FREE;
        return s;
    }
    return NULL;
}

/* Lock held: @s, in the hash and FILLING, goes back to FREE. */
static void drop_slot(struct rcache *rc, struct slot *s)
{
    g_hash_table_remove(rc->hash, &s->key);
    s->state = SLOT_FREE;
    s->verified = false;
    g_cond_broadcast(&rc->cond);
}

/*
 * A slot from the persisted map, first use: check its data.  Lock held on
 * entry and exit; the slot is FILLING meanwhile so nobody else uses it.
 */
static bool verify_slot(struct rcache *rc, struct slot *s)
{
    uint32_t idx = s - rc->slots, len = s->len, crc = s->crc;
    g_autofree uint8_t *buf = NULL;
    bool ok;

    s->state = SLOT_FILLING;
    g_mutex_unlock(&rc->lock);
    buf = g_try_malloc(len);
    ok = buf && lsvd_pread_all(rc->fd, buf, len,
                           (off_t)idx * rc->block_size) == 0 &&
         lsvd_crc32c(0, buf, len) == crc;
    g_mutex_lock(&rc->lock);
    return ok;
}

enum rcache_result rcache_get(struct rcache *rc, uint64_t seq,
                              uint32_t block, bool wait, bool is_read,
                              uint32_t *slot)
{
    uint64_t key = make_key(seq, block);
    struct slot *s;

    if (seq >> (64 - KEY_BLOCK_BITS) || block >> KEY_BLOCK_BITS) {
        return RCACHE_NONE;         /* beyond what a key can name */
    }
    g_mutex_lock(&rc->lock);
    for (;;) {
        s = g_hash_table_lookup(rc->hash, &key);
        if (!s || s->state != SLOT_FILLING) {
            break;
        }
        if (!wait) {
            g_mutex_unlock(&rc->lock);
            return RCACHE_NONE;
        }
        g_cond_wait(&rc->cond, &rc->lock);
    }
    if (s && !s->verified) {
        if (verify_slot(rc, s)) {
            s->verified = true;
            s->state = SLOT_VALID;
            g_cond_broadcast(&rc->cond);
        } else if (rc->rdonly) {
            /* reused after the map was saved, and we may not refill */
            rc->c.bad_blocks++;
            rc->c.used_slots--;
            if (is_read) {
                rc->c.misses++;
            }
            drop_slot(rc, s);
            g_mutex_unlock(&rc->lock);
            return RCACHE_NONE;
        } else {
            /* reused after the map was saved: refill it ourselves */
            rc->c.bad_blocks++;
            rc->c.used_slots--;
            rc->gen++;
            if (is_read) {
                rc->c.misses++;
            }
            *slot = s - rc->slots;
            g_mutex_unlock(&rc->lock);
            return RCACHE_CLAIMED;
        }
    }
    if (s) {
        s->refs++;
        s->refbit = true;
        if (is_read) {
            rc->c.hits++;
        }
        *slot = s - rc->slots;
        g_mutex_unlock(&rc->lock);
        return RCACHE_HIT;
    }
    if (is_read) {
        rc->c.misses++;
    }
    s = rc->rdonly ? NULL : evict_one(rc);
    if (!s) {
        g_mutex_unlock(&rc->lock);
        return RCACHE_NONE;
    }
    s->key = key;
    s->state = SLOT_FILLING;
    s->verified = false;
    s->refbit = false;
    g_hash_table_insert(rc->hash, &s->key, s);
    *slot = s - rc->slots;
    g_mutex_unlock(&rc->lock);
    return RCACHE_CLAIMED;
}

int rcache_read(struct rcache *rc, uint32_t slot, uint32_t off, void *buf,
                uint32_t len)
{
    struct slot *s = &rc->slots[slot];
    int ret;

    g_assert(s->state == SLOT_VALID && s->refs > 0);
    if ((uint64_t)off + len > s->len) {
        return -EIO;
    }
    ret = lsvd_pread_all(rc->fd, buf, len, (off_t)slot * rc->block_size + off);
    if (ret < 0) {
        lsvd_log(LSVD_LOG_WARNING, "read cache %s: read failed: %s",
                 rc->data_path, g_strerror(-ret));
        return -EIO;
    }
    /* a hit should not take the lock a third time just to count */
    __atomic_fetch_add(&rc->c.hit_bytes, len, __ATOMIC_RELAXED);
    return 0;
}

void rcache_put(struct rcache *rc, uint32_t slot)
{
    g_mutex_lock(&rc->lock);
    g_assert(rc->slots[slot].refs > 0);
    rc->slots[slot].refs--;
    g_mutex_unlock(&rc->lock);
}

void rcache_fill(struct rcache *rc, uint32_t slot, const void *data,
                 uint32_t len, bool prefetch)
{
    struct slot *s = &rc->slots[slot];
    uint32_t crc = lsvd_crc32c(0, data, len);
    int err;

    g_assert(s->state == SLOT_FILLING && len > 0 && len <= rc->block_size);
    err = -lsvd_pwrite_all(rc->fd, data, len,
                           (uint64_t)slot * rc->block_size);
    g_mutex_lock(&rc->lock);
    if (err) {
        /* once per open: a full or failing cache device fails every fill */
        bool first = !rc->fill_failed;

        drop_slot(rc, s);
        rc->fill_failed = true;
        g_mutex_unlock(&rc->lock);
        if (first) {
            lsvd_log(LSVD_LOG_WARNING, "read cache %s: write failed: %s "
                     "(reads go on without caching what fails to write)",
                     rc->data_path, g_strerror(err));
        }
        return;
    }
    s->state = SLOT_VALID;
    s->verified = true;
    s->len = len;
    s->crc = crc;
    s->refbit = !prefetch;
    rc->c.fills++;
    rc->c.fill_bytes += len;
    rc->c.used_slots++;
    if (prefetch) {
        rc->c.prefetched++;
    }
    rc->gen++;
    g_cond_broadcast(&rc->cond);
    g_mutex_unlock(&rc->lock);
}

void rcache_abort(struct rcache *rc, uint32_t slot)
{
    g_mutex_lock(&rc->lock);
    g_assert(rc->slots[slot].state == SLOT_FILLING);
    drop_slot(rc, &rc->slots[slot]);
    g_mutex_unlock(&rc->lock);
}

void rcache_counters(struct rcache *rc, struct rcache_counters *out)
{
    g_mutex_lock(&rc->lock);
    *out = rc->c;
    g_mutex_unlock(&rc->lock);
    out->hit_bytes = __atomic_load_n(&rc->c.hit_bytes, __ATOMIC_RELAXED);
    out->n_slots = rc->n_slots;
    out->block_size = rc->block_size;
}
