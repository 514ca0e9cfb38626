/*
 * journal - the write-back journal: a ring of records in a file in the
 * cache directory, written with io_uring and O_DIRECT.  Each record is a
 * 4 KiB header block (sequence number, the extents it covers, CRC32C over
 * header and data) followed by its data, padded to 4 KiB.  Block 0 holds
 * the journal superblock, which says where replay starts.
 *
 * The ring [data_start, size) holds records oldest first:
 *
 *     data_start         tail                         head            size
 *     |   free           | in objects  | not in objects | free          |
 *
 * Record states: PREPARED (in the round buffer) -> WRITTEN (its round
 * completed; the caller acks it) -> IN OBJECT (its seq <= the object log's
 * durable jseq) -> RECLAIMED (space reusable).  A record that does not fit
 * before the end of the ring is preceded by a PAD record that skips to
 * data_start.
 *
 * Invariants:
 *   - records from the superblock's tail_off carry consecutive sequence
 *     numbers from its start_seq; replay stops at the first record that is
 *     torn, corrupted or out of sequence, and uses nothing after it.
 *   - space is reclaimed only for records IN OBJECT (journal_reclaim), and
 *     the superblock is moved forward (written and synced) before the ring
 *     overwrites the record it points at.
 *   - writes are group-committed: every record prepared since the last
 *     journal_submit() goes out in one or two write requests (two when the
 *     ring wraps), so records reach the device in sequence order per round.
 *   - a flush is one fdatasync request; it covers every round that has
 *     completed.
 *
 * Threads: one thread (the volume's journal thread) calls everything but
 * journal_read() and journal_read_blocks(), which any thread may call
 * (pread); the
 * caller keeps the region it reads from being reclaimed meanwhile.
 * Errors: negative errno; open fills struct lsvd_err.
 */
#ifndef LSVD_JOURNAL_H
#define LSVD_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "format.h"

struct journal;

/* A record in the ring, as the reclaim callback sees it. */
struct jrec {
    uint64_t seq;
    uint64_t off;               /* header offset */
    uint64_t len;               /* header + data bytes */
    uint16_t type;
    uint32_t n_extents;
    struct rec_extent *extents; /* n_extents entries */
    struct rec_extent ext0;     /* storage when n_extents == 1 */
    uint64_t cum;               /* bytes appended up to its end */
};

/* Largest data a single record may carry. */
#define JOURNAL_MAX_RECORD (32u << 20)

/*
 * Open (or, unless @rdonly, create) the journal file @path for the volume
 * with @uuid; a new file gets @size bytes.  Takes an exclusive lock
 * (shared when @rdonly): -EBUSY if another process holds it.  A journal of
 * another volume is refused.  A read-only open of a missing journal gives
 * an empty journal.
 */
/* @path NULL with @rdonly: an empty journal, touching no file (for a
 * shared open, which reads only objects). */
int journal_open(const char *path, const uint8_t uuid[LSVD_UUID_LEN],
                 uint64_t size, bool rdonly, struct journal **out,
                 struct lsvd_err *err);
void journal_close(struct journal *j);

/*
 * Replay: call @fn for every valid WRITE or ZERO record, oldest first.
 * @data points at the record's data (data_len bytes) and is valid during
 * the call; @data_off is its byte offset in the journal.  Records with
 * seq <= @after_seq are already in objects.  If the journal holds nothing
 * newer than @after_seq and its numbering is behind, it is reset (unless
 * read-only) and *reset is set: the caller forgets what @fn was told.
 */
typedef int journal_replay_fn(void *arg, const struct rec_header *r,
                              const uint8_t *data, uint64_t data_off);
int journal_replay(struct journal *j, uint64_t after_seq,
                   journal_replay_fn *fn, void *arg, bool *reset);

/*
 * Prepare a record of @type covering @ext[0..n) with @len data bytes taken
 * @skip bytes into @iov, to go out with the next journal_submit().  On
 * success *seq is its sequence number and *data_off the byte offset of its data.  -ENOSPC if
 * the ring has no room for it now (submit, reclaim, and try again);
 * -EFBIG if it could never fit.
 */
int journal_prepare(struct journal *j, uint16_t type,
                    const struct rec_extent *ext, uint32_t n,
                    const struct iovec *iov, int iovcnt, size_t skip,
                    size_t len, uint64_t *seq, uint64_t *data_off);

/* Bytes a record of @len data bytes takes. */
static inline uint64_t journal_record_size(size_t len)
{
    return JNL_BLOCK + ROUND_UP((uint64_t)len, JNL_BLOCK);
}

/*
 * After a writable open's replay: write (durably) a FENCE record whose
 * successor's sequence number jumps past anything the ring can hold, so
 * that records left behind the end of the log (after a torn or corrupted
 * one) can never be taken for its continuation by a later replay.
 */
int journal_fence(struct journal *j);

/* True if records are prepared and not yet submitted. */
bool journal_pending(const struct journal *j);

/*
 * Write every prepared record and, if @flush, then make every written
 * record durable; wait for both.  Returns 0 or the first error: then the
 * records of this round must be taken as not written.
 */
int journal_submit(struct journal *j, bool flush);

/*
 * Reclaim the space of the oldest records while they are in objects
 * (seq <= @durable_seq), calling @fn for each WRITE or ZERO record before
 * its space becomes reusable.
 */
typedef void journal_reclaim_fn(void *arg, const struct jrec *r);
void journal_reclaim(struct journal *j, uint64_t durable_seq,
                     journal_reclaim_fn *fn, void *arg);

/*
 * Journal map checkpoints.  journal_export() fills the journal's part of
 * @c (superblock, records in the ring, where replay goes on); nothing may
 * be prepared.  journal_resume(), before journal_replay(), takes the
 * records of a checkpoint instead of reading them from the ring; -EINVAL
 * if it does not fit this journal (then replay reads everything).
 */
void journal_export(const struct journal *j, struct jmap_ckpt *c);
int journal_resume(struct journal *j, const struct jmap_ckpt *c);
/* Sequence number of the newest WRITE or ZERO record (0: none). */
uint64_t journal_last_data_seq(const struct journal *j);
/* The ring's size in bytes. */
uint64_t journal_ring_size(const struct journal *j);
/* Bytes ever appended (grows monotonically). */
uint64_t journal_appended(const struct journal *j);

/* Bytes in use by records (written or prepared). */
uint64_t journal_used(const struct journal *j);
/* Bytes of records newer than @durable_seq (not yet in objects). */
uint64_t journal_dirty_bytes(const struct journal *j, uint64_t durable_seq);
/* Sequence number of the newest prepared record (0: none yet). */
uint64_t journal_last_seq(const struct journal *j);

/* Read @len bytes at byte offset @off.  Any thread. */
int journal_read(struct journal *j, uint64_t off, void *buf, size_t len);
/*
 * The same for whole records: @off, @len and @buf all JNL_BLOCK-aligned.
 * Reads around the page cache (O_DIRECT) where the file allows it: pages
 * cached ahead of the ring's head would make every write over them wait
 * for their invalidation (io_uring hands such writes to a worker thread).
 */
int journal_read_blocks(struct journal *j, uint64_t off, void *buf,
                        size_t len);

#endif /* LSVD_JOURNAL_H */
