/*
 * objlog - the object log: batches journaled writes into immutable objects
 * named VOL/SEQ (SEQ as 16 hex digits, so a listing is in log order), keeps
 * the object map (LBA -> object and offset), and reads data back out of
 * objects.  The volume superblock object VOL/super is the only object ever
 * overwritten.
 *
 * Batch states: FILLING (objlog_batch_add) -> SEALED (objlog_seal: gets
 * the next sequence number, queued to a PUT worker) -> DONE (PUT finished)
 * -> APPLIED (in the object map; the journal records up to its jseq are
 * then "durable").  A batch is an extent map into the journal, so many may
 * wait while the store is slow or away: the journal's size, not memory,
 * bounds how far writes run ahead of PUTs.  While the store keeps up, the
 * few newest batches also keep a copy of their data (copy_batches), so that
 * their PUTs need not read the journal back.
 * put_depth PUTs run at once; they complete in any order, but batches are
 * applied in sequence order.
 * A failed PUT is retried with backoff (forever, or for 10 s more once
 * closing); one that fails for good leaves a gap, and nothing after it is
 * applied: the data stays in the journal for the next open to replay.
 *
 * Writes are coalesced inside one batch only: the batch keeps its own
 * extent map, so an overwrite within a batch replaces the older data, and
 * the object holds only the newest data of each LBA.
 *
 * Every ckpt_every objects (or after 5 minutes with a new object) a
 * checkpoint of the object map (and of the object table) is queued as an
 * object of its own in the same sequence; it is encoded only once every
 * object before it is applied, so it is exactly the map after them.
 * Recovery loads the newest checkpoint and then the
 * objects after it up to the first gap in the sequence (without any
 * checkpoint, objects 1..N); later ("stranded") objects are deleted by a
 * writable open.  Objects known from the checkpoint get their chunk tables
 * when first read.
 *
 * Threads: the batch calls (objlog_batch_*, objlog_seal) belong to the
 * journal thread; PUT workers are objlog's own; objlog_read(),
 * objlog_durable_jseq(), objlog_wait_durable(), objlog_drain() and
 * objlog_stats() may be called from any thread.  map_lock (rwlock)
 * protects the object map and object table; `lock` protects the sealed
 * queue, durable_jseq, the error and the stats.  Lock order: lock, then
 * map_lock.
 * Errors: negative errno; a CRC mismatch or malformed object is -EIO with
 * a log line naming the object.
 */
#ifndef LSVD_OBJLOG_H
#define LSVD_OBJLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backend.h"
#include "format.h"

struct objlog;

/* Locations in the maps: bit 63 marks a range that reads as zeros. */
#define LOC_ZERO (1ULL << 63)

/* Object names.  @buf holds at least OBJ_NAME_MAX bytes. */
#define OBJ_NAME_MAX (LSVD_NAME_MAX + 32)
void objlog_object_name(char *buf, const char *vol, uint64_t seq);
void objlog_super_name(char *buf, const char *vol);
/* Parse the part after "VOL/": 0 and *seq for a data object name, -EINVAL
 * for anything else. */
int objlog_parse_seq(const char *leaf, uint64_t *seq);

/* Read and check VOL/super.  -ENOENT if the volume does not exist. */
int objlog_read_super(struct backend *be, const char *vol, struct super *sb,
                      struct lsvd_err *err);
int objlog_write_super(struct backend *be, const char *vol,
                       const struct super *sb);

/*
 * Load the object log of volume @vol: the newest checkpoint, then every
 * object header of the consecutive run after it, into the object map.  Deletes stranded objects
 * unless @rdonly.  *max_jseq is the newest journal record in an object.
 */
int objlog_open(struct backend *be, const char *vol, const struct super *sb,
                uint64_t batch_size, unsigned put_depth,
                unsigned ckpt_every, bool rdonly, struct objlog **out,
                uint64_t *max_jseq, struct lsvd_err *err);
/* From now on a failing PUT is retried for 10 s more at most, then given
 * up (a gap: its data stays in the journal).  For a close. */
void objlog_closing(struct objlog *ol);
/* objlog_closing(), waits for the PUTs in flight, then frees. */
void objlog_close(struct objlog *ol);

/*
 * Batches hold no data: a PUT worker reads it back from the journal, which
 * keeps every record until the batch is applied, with @fn (any thread):
 * @len bytes at journal offset @off, whole records (@off, @len and @buf
 * JNL_BLOCK-aligned).  Before the first batch is sealed.
 */
typedef int objlog_source_fn(void *arg, uint64_t off, void *buf, size_t len);
/* @copies: batches that may keep a copy of their data in memory at once
 * ([log] copy_batches; 0: none, every PUT reads back). */
void objlog_set_source(struct objlog *ol, objlog_source_fn *fn, void *arg,
                       unsigned copies);

/* Add [lba, lba+sectors) from journal record @jseq to the batch: zeros if
 * @zero, else the data at journal offset @joff (a sector multiple). */
int objlog_batch_add(struct objlog *ol, uint64_t lba, uint64_t sectors,
                     bool zero, uint64_t joff, uint64_t jseq);
/*
 * The @len bytes at journal offset @joff, which objlog_batch_add() pointed
 * the batch at, are these (@iov after @skip bytes): the batch keeps a copy
 * while memory allows (copy_batches), so that its PUT need not read the
 * journal back.  @iov NULL: not at hand, read back.
 */
void objlog_batch_data(struct objlog *ol, uint64_t joff,
                       const struct iovec *iov, int iovcnt, size_t skip,
                       size_t len);
/* The batch takes data from the WRITE record whose header is at journal
 * offset @off (@len bytes with its data, sequence @seq); read back, its
 * CRC is checked. */
void objlog_batch_record(struct objlog *ol, uint64_t off, uint64_t len,
                         uint64_t seq);
/* True when the batch has reached @times the batch size. */
bool objlog_batch_full(const struct objlog *ol, unsigned times);
bool objlog_batch_empty(const struct objlog *ol);
/* When the batch got its first extent (g_get_monotonic_time()), or 0 if
 * it is empty. */
int64_t objlog_batch_started(const struct objlog *ol);

/* Seal the batch and queue its PUT.  While a great many batches wait
 * (MAX_SEALED) it waits, or with !@wait returns -EAGAIN (the batch keeps
 * filling).
 * Returns the sticky error, if a PUT failed for good. */
int objlog_seal(struct objlog *ol, bool wait);

/* Newest journal sequence number whose data is in applied objects. */
uint64_t objlog_durable_jseq(struct objlog *ol);
/* Wait until durable_jseq > @old, or nothing is in flight; returns the
 * sticky error or 0, or -ETIMEDOUT once the monotonic clock passes
 * @deadline (g_get_monotonic_time() microseconds; 0: no deadline). */
int objlog_wait_durable(struct objlog *ol, uint64_t old, int64_t deadline);
/* Wait until every sealed batch is applied; returns the sticky error. */
int objlog_drain(struct objlog *ol);

/*
 * Read [lba, lba+sectors) from the object map into @buf: mapped ranges from
 * their objects, unmapped ones as zeros.
 */
int objlog_read(struct objlog *ol, uint64_t lba, uint64_t sectors,
                uint8_t *buf);

/*
 * Serve reads of object data through read cache @rc (NULL: none), reading
 * @prefetch bytes ahead on a miss.  Before any read; @rc stays the
 * caller's and must outlive the objlog's reads.
 */
struct rcache;
void objlog_set_rcache(struct objlog *ol, struct rcache *rc,
                       uint64_t prefetch);

/* The volume size that new objects record (after a resize). */
void objlog_set_vol_size(struct objlog *ol, uint64_t size);

/* What the object map holds at @lba: an LSVD_EXTENT_* kind, for *@n
 * sectors (at most @sectors) from there. */
int objlog_extent_kind(struct objlog *ol, uint64_t lba, uint64_t sectors,
                       uint64_t *n);

struct objlog_stats {
    uint64_t objects;
    uint64_t stored_bytes;
    uint64_t last_seq;
};
void objlog_stats(struct objlog *ol, struct objlog_stats *st);

#endif /* LSVD_OBJLOG_H */
