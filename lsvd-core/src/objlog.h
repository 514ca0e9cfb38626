/*
 * objlog - the object log: batches journaled writes into immutable objects
 * named VOL/SEQ (SEQ as 16 hex digits, so a listing is in log order), keeps
 * the object map (LBA -> object and offset), and reads data back out of
 * objects.  The volume superblock object VOL/super is the only object ever
 * overwritten.
 *
 * Batch states: EMPTY -> FILLING (objlog_batch_add) -> PUT (objlog_seal)
 * -> EMPTY.  Writes are coalesced inside one batch only: the batch keeps
 * its own extent map, so an overwrite within a batch replaces the older
 * data, and the object holds only the newest data of each LBA.
 *
 * Recovery takes objects 1..N up to the first gap in the sequence; later
 * ("stranded") objects are deleted by a writable open.
 *
 * Threads: the volume's worker thread calls everything except
 * objlog_stats(), which takes objlog's stats lock.
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
 * Load the object log of volume @vol: read every object header of the
 * consecutive prefix and build the object map.  Deletes stranded objects
 * unless @rdonly.  *max_jseq is the newest journal record in an object.
 */
int objlog_open(struct backend *be, const char *vol, const struct super *sb,
                uint64_t batch_size, bool rdonly, struct objlog **out,
                uint64_t *max_jseq, struct lsvd_err *err);
void objlog_close(struct objlog *ol);

/* Add data (or zeros, when @iov is NULL) for [lba, lba+sectors) from
 * journal record @jseq to the batch. */
int objlog_batch_add(struct objlog *ol, uint64_t lba, uint64_t sectors,
                     const struct iovec *iov, int iovcnt, uint64_t jseq);
/* True when the batch has reached the batch size. */
bool objlog_batch_full(const struct objlog *ol);
bool objlog_batch_empty(const struct objlog *ol);

/* Write the batch as the next object and update the object map.  Nothing
 * changes if the PUT fails. */
int objlog_seal(struct objlog *ol);

/*
 * Read [lba, lba+sectors) from the object map into @buf: mapped ranges from
 * their objects, unmapped ones as zeros.
 */
int objlog_read(struct objlog *ol, uint64_t lba, uint64_t sectors,
                uint8_t *buf);

struct objlog_stats {
    uint64_t objects;
    uint64_t stored_bytes;
    uint64_t last_seq;
};
void objlog_stats(struct objlog *ol, struct objlog_stats *st);

#endif /* LSVD_OBJLOG_H */
