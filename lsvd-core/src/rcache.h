/*
 * rcache - the read cache: decoded blocks of objects, kept in a file of
 * fixed-size slots on the cache device (CACHE_DIR/VOLUME.rcache), with its
 * map persisted beside it (VOLUME.rcmap, docs/format.md).
 *
 * A block is identified by where its data lives in the object log:
 * (object sequence number, block index in the object's raw data), each
 * block being block_size bytes of the object's decoded data (the last
 * block of an object may be shorter).  Objects are immutable, so a cached
 * block can never hold stale data: a newer write goes to the journal
 * (which reads consult first) and then to a newer object, and the object
 * map stops pointing at the old block, which simply ages out.  This is how
 * "a newer write always wins" holds without invalidation messages.
 *
 * Slot states:
 *
 *   FREE     --claim------> FILLING (key set, in the hash; one filler)
 *   FILLING  --fill ok----> VALID   (data and CRC in the slot)
 *   FILLING  --abort/fail-> FREE
 *   VALID    --evict------> FILLING (for another key) or FREE
 *
 * Invariants: a slot is in the hash iff it is FILLING or VALID; a VALID
 * slot with readers (refs > 0) or a FILLING slot is never evicted, so a
 * reader's pread never sees a slot being rewritten.  Slots loaded from the
 * persisted map are VALID but unverified: the first hit reads the whole
 * block and checks its CRC, because a slot may have been reused after the
 * map was last persisted and before a crash.
 *
 * Eviction is CLOCK: a hit sets the slot's reference bit, the hand clears
 * bits until it finds a slot without one.
 *
 * Threads: every function may be called from any thread.  `lock` protects
 * the hash, the slot table, the hand and the counters; I/O on the data
 * file is done without it.  Concurrent misses on one block share one
 * fill: the second caller waits for the first (rcache_get(wait=true)).
 * Errors: negative errno.  I/O errors on the cache file are never the
 * reader's problem: a failed fill just leaves the block uncached.
 */
#ifndef LSVD_RCACHE_H
#define LSVD_RCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "lsvd.h"
#include "util.h"

struct rcache;

struct rcache_counters {
    uint64_t hits, misses;          /* blocks looked up for a read */
    uint64_t hit_bytes;
    uint64_t fills, fill_bytes;     /* blocks written into the cache */
    uint64_t prefetched;            /* blocks filled ahead of a read */
    uint64_t evictions;
    uint64_t bad_blocks;            /* failed their CRC after a restart */
    uint64_t used_slots, n_slots;
    uint32_t block_size;
};

/*
 * Open (creating or resizing it) the read cache whose files start with
 * @base ("CACHE_DIR/VOLUME"): @size bytes of @block_size slots.  The
 * persisted map is used if it belongs to volume @uuid and the same
 * geometry; otherwise the cache starts empty.
 */
int rcache_open(const char *base, const uint8_t uuid[LSVD_UUID_LEN],
                uint64_t size, uint32_t block_size, struct rcache **out,
                struct lsvd_err *err);
/* Persist the map and free.  No call may be in progress. */
void rcache_close(struct rcache *rc);

/* Remove the files of the read cache at @base, if any. */
void rcache_remove(const char *base);

uint32_t rcache_block_size(const struct rcache *rc);

enum rcache_result {
    RCACHE_HIT,         /* *slot holds the block; rcache_read, then put */
    RCACHE_CLAIMED,     /* absent; the caller fills *slot or aborts it */
    RCACHE_NONE,        /* absent and not claimable now (busy) */
};

/*
 * Look up block @block of object @seq.  On a miss, claims a slot for the
 * caller to fill.  If another thread is filling the block, waits for it
 * with @wait, else returns RCACHE_NONE.  @is_read: count a hit or miss
 * (prefetch lookups are not reads).
 */
enum rcache_result rcache_get(struct rcache *rc, uint64_t seq,
                              uint32_t block, bool wait, bool is_read,
                              uint32_t *slot);
/* Copy @len bytes at @off of a HIT block into @buf.  -EIO on failure. */
int rcache_read(struct rcache *rc, uint32_t slot, uint32_t off, void *buf,
                uint32_t len);
/* Done reading a HIT slot. */
void rcache_put(struct rcache *rc, uint32_t slot);
/* Fill a CLAIMED slot with the block's @len bytes (@len <= block size). */
void rcache_fill(struct rcache *rc, uint32_t slot, const void *data,
                 uint32_t len, bool prefetch);
/* Give up a CLAIMED slot. */
void rcache_abort(struct rcache *rc, uint32_t slot);

/* Write the map if it changed since the last time.  0 or -errno. */
int rcache_persist(struct rcache *rc);

void rcache_counters(struct rcache *rc, struct rcache_counters *out);

#endif /* LSVD_RCACHE_H */
