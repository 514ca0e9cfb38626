/*
 * journal - the write-back journal: a log of records in a file in the cache
 * directory.  Each record is a 4 KiB header block (sequence number, the
 * extents it covers, CRC32C over header and data) followed by its data,
 * padded to 4 KiB.  Block 0 holds the journal superblock.
 *
 * States of the journal space, in file order:
 *
 *   [super][records in objects | records not yet in objects][free]
 *          ^data_start                                      ^head
 *
 * Invariants:
 *   - records from data_start carry consecutive sequence numbers starting
 *     at the superblock's start_seq; replay stops at the first record that
 *     is torn, corrupted or out of sequence, and nothing after it is used.
 *   - the space is reused (journal_reset) only after every record in it
 *     is in a durable object: the caller guarantees that.
 *   - a write is complete when its record is written; durable after the
 *     next journal_flush().
 *
 * This first version writes with pwritev() and flushes with fdatasync();
 * the io_uring/O_DIRECT engine replaces it behind this interface.
 *
 * Threads: one thread at a time (the volume's worker).
 * Errors: negative errno; open fills struct lsvd_err.
 */
#ifndef LSVD_JOURNAL_H
#define LSVD_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "format.h"

struct journal;

/*
 * Open (or, unless @rdonly, create) the journal file @path for the volume
 * with @uuid.  Takes an exclusive lock (shared when @rdonly): -EBUSY if
 * another process holds it.  A journal of another volume is refused.  A
 * read-only open of a missing journal gives an empty journal.
 */
int journal_open(const char *path, const uint8_t uuid[LSVD_UUID_LEN],
                 uint64_t size, bool rdonly, struct journal **out,
                 struct lsvd_err *err);
void journal_close(struct journal *j);

/*
 * Replay: call @fn for every valid record with seq > @after_seq, in order.
 * @data points at the record's data (data_len bytes) and is valid during
 * the call; @data_off is its byte offset in the journal.  Afterwards the
 * journal appends after the last valid record, with sequence numbers above
 * both it and @after_seq.
 */
typedef int journal_replay_fn(void *arg, const struct rec_header *r,
                              const uint8_t *data, uint64_t data_off);
int journal_replay(struct journal *j, uint64_t after_seq,
                   journal_replay_fn *fn, void *arg);

/*
 * Append a record of @type covering @ext[0..n) with @len data bytes from
 * @iov.  On success *seq is its sequence number and *data_off the byte
 * offset of its data.  -ENOSPC if the journal has no room for it.
 */
int journal_append(struct journal *j, uint16_t type,
                   const struct rec_extent *ext, uint32_t n,
                   const struct iovec *iov, int iovcnt, size_t len,
                   uint64_t *seq, uint64_t *data_off);

/* Bytes a record of @len data bytes takes. */
static inline uint64_t journal_record_size(size_t len)
{
    return JNL_BLOCK + ROUND_UP((uint64_t)len, JNL_BLOCK);
}

/* Room left, in bytes. */
uint64_t journal_free(const struct journal *j);
/* Bytes in use by records. */
uint64_t journal_used(const struct journal *j);

/* Make every appended record durable. */
int journal_flush(struct journal *j);

/* Forget every record: they are all in durable objects.  Durable on
 * return. */
int journal_reset(struct journal *j);

/* Read @len bytes at byte offset @off (data of an appended record). */
int journal_read(struct journal *j, uint64_t off, void *buf, size_t len);

#endif /* LSVD_JOURNAL_H */
