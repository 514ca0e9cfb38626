/*
 * format - encoders and parsers for every on-disk and in-object structure:
 * the volume superblock object, data object headers, the journal superblock
 * and journal record headers.  docs/format.md describes them byte by byte;
 * keep the two in step.
 *
 * All fields are little-endian and are read and written through get_le*()
 * and put_le*() on byte buffers, never through struct overlays.  Every
 * parser here takes untrusted bytes, checks lengths before reading, and
 * has a fuzz target in tests/fuzz/.
 *
 * Threads: pure functions.  Errors: -EINVAL for a malformed structure,
 * -EIO for a CRC mismatch, -EPROTONOSUPPORT for an unknown version.
 * Ownership: parsed tables are g_malloc'd; free with the matching _free().
 */
#ifndef LSVD_FORMAT_H
#define LSVD_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define FMT_VERSION 1

/* ---- objects: shared prefix ------------------------------------------- */
#define OBJ_MAGIC "LSVDOBJ"         /* 8 bytes with the NUL */
#define OBJ_TYPE_DATA 1
#define OBJ_TYPE_CHECKPOINT 2       /* object map checkpoint */
#define OBJ_TYPE_SUPER 3

/* ---- volume superblock object "VOL/super" ----------------------------- */
#define SUPER_FIXED_LEN 256
#define SUPER_MAX_SNAPS 1024
#define SUPER_BASE_NAME_LEN 128

struct super {
    uint8_t uuid[LSVD_UUID_LEN];
    uint64_t size;              /* bytes */
    uint64_t created;           /* Unix seconds */
    uint64_t writer_epoch;      /* single-writer fencing (reserved, 0) */
    uint64_t base_seq;          /* clone: newest base object used (0) */
    char base_name[SUPER_BASE_NAME_LEN + 1];  /* clone base volume ("") */
    uint32_t n_snaps;
    uint64_t *snaps;            /* snapshot sequence numbers */
};

/* Encode into a g_malloc'd buffer of *len bytes. */
uint8_t *super_encode(const struct super *sb, size_t *len);
int super_parse(const uint8_t *buf, size_t len, struct super *sb);
void super_free(struct super *sb);

/* ---- data object header ----------------------------------------------- */
#define OBJ_FIXED_LEN 128
#define OBJ_EXTENT_LEN 24
#define OBJ_CHUNK_LEN 16
#define OBJ_DEFERRED_LEN 16
#define OBJ_CHUNK_SIZE 65536        /* raw bytes per chunk, all but last */
#define OBJ_MAX_HDR_LEN (16u << 20)

#define OBJ_EXT_ZERO 0x1            /* extent reads as zeros, has no data */
#define OBJ_CHUNK_LZ4 0x1           /* chunk is one LZ4 block */

struct obj_extent {
    uint64_t lba;                   /* sectors */
    uint32_t sectors;
    uint32_t flags;
    uint64_t off;                   /* byte offset in the raw data stream */
};

struct obj_chunk {
    uint32_t raw_len;
    uint32_t stored_len;
    uint32_t flags;
    uint32_t crc;                   /* CRC32C of the stored bytes */
};

struct obj_header {
    uint16_t type;
    uint32_t hdr_len;
    uint8_t uuid[LSVD_UUID_LEN];
    uint64_t seq;
    uint64_t jseq;                  /* newest journal record inside (0) */
    uint64_t vol_size;
    uint64_t data_len;              /* stored bytes after the header */
    uint64_t raw_len;               /* raw (uncompressed) bytes */
    uint64_t writer_epoch;
    uint64_t ckpt_seq;
    uint32_t chunk_size;
    uint32_t n_extents, n_chunks, n_deferred;
    struct obj_extent *extents;
    struct obj_chunk *chunks;
    uint64_t *deferred;             /* n_deferred pairs (n0, ngc) */
};

/* Encode @h (with its tables) into a g_malloc'd buffer of h->hdr_len
 * bytes; sets h->hdr_len. */
uint8_t *obj_header_encode(struct obj_header *h);
/*
 * Parse a header from the first @len bytes of an object.  If @len is too
 * short for the whole header, returns -EAGAIN with h->hdr_len set to the
 * length needed (read that much and call again).
 */
int obj_header_parse(const uint8_t *buf, size_t len, struct obj_header *h);
void obj_header_free(struct obj_header *h);

/* ---- object map checkpoint (a type 2 object in the log) ---------------- */
#define CKPT_FIXED_LEN 128
#define CKPT_EXTENT_LEN 24
#define CKPT_OBJECT_LEN 24
#define CKPT_MAX_ENTRIES (1ULL << 32)

struct ckpt_extent {
    uint64_t lba;
    uint32_t sectors;
    uint32_t flags;                 /* OBJ_EXT_ZERO */
    uint64_t seq;                   /* object (0 for ZERO) */
    uint32_t off;                   /* sector offset in its raw stream */
};

struct ckpt_object {
    uint64_t seq;
    uint32_t hdr_len;
    uint64_t data_len;
};

struct ckpt {
    uint8_t uuid[LSVD_UUID_LEN];
    uint64_t seq;                   /* this checkpoint's own number */
    uint64_t jseq;                  /* newest journal record it covers */
    uint64_t vol_size;
    uint64_t prev;                  /* previous checkpoint (0: none) */
    uint64_t n_extents, n_objects;
    struct ckpt_extent *extents;
    struct ckpt_object *objects;
};

/* Encode into a g_malloc'd buffer of *len bytes. */
uint8_t *ckpt_encode(const struct ckpt *c, size_t *len);
/* Parse; -EAGAIN with *need set when @len is shorter than the whole
 * checkpoint (read that much and call again). */
int ckpt_parse(const uint8_t *buf, size_t len, struct ckpt *c, size_t *need);
void ckpt_free(struct ckpt *c);
/* The type field of an object's first bytes (any object), or -EINVAL. */
int obj_type(const uint8_t *buf, size_t len);

/* ---- journal ----------------------------------------------------------- */
#define JNL_BLOCK 4096
#define JNL_MAGIC "LSVDJNL"
#define REC_MAGIC "LSVDREC"
#define REC_FIXED_LEN 64
#define REC_EXTENT_LEN 16
#define REC_MAX_EXTENTS ((JNL_BLOCK - REC_FIXED_LEN) / REC_EXTENT_LEN)

#define REC_TYPE_WRITE 1            /* extents with data */
#define REC_TYPE_ZERO 2             /* extents that read as zeros, no data */
#define REC_TYPE_PAD 3              /* skip data_len bytes (wrap-around) */
#define REC_TYPE_FENCE 4            /* the next record has seq next_seq */

struct jnl_super {
    uint64_t gen;                   /* which of the two copies is newer */
    uint8_t uuid[LSVD_UUID_LEN];
    uint64_t start_seq;             /* seq of the record at tail_off */
    uint64_t tail_off;              /* where replay starts */
    uint64_t data_start;            /* the ring: [data_start, size) */
    uint64_t size;                  /* bytes of the journal file */
};

void jnl_super_encode(const struct jnl_super *js, uint8_t buf[JNL_BLOCK]);
int jnl_super_parse(const uint8_t *buf, size_t len, struct jnl_super *js);

struct rec_extent {
    uint64_t lba;
    uint32_t sectors;
    uint32_t flags;
};

struct rec_header {
    uint16_t type;
    uint32_t n_extents;
    uint8_t uuid[LSVD_UUID_LEN];
    uint64_t seq;
    uint64_t data_len;              /* bytes after the header block */
    uint32_t crc;                   /* over header (crc = 0) then data */
    uint64_t next_seq;              /* FENCE: seq of the next record */
    struct rec_extent extents[REC_MAX_EXTENTS];
};

/* Encode the header block; the CRC field is computed over the header and
 * the bytes of @data (iovec; padded already; none for ZERO and PAD). */
void rec_header_encode(struct rec_header *r, uint8_t buf[JNL_BLOCK],
                       const struct iovec *data, int iovcnt);
/* Parse a header block; checks everything but the data CRC. */
int rec_header_parse(const uint8_t *buf, size_t len, struct rec_header *r);
/* Check the CRC of a parsed header block plus its data (WRITE records
 * only; the CRC of ZERO and PAD records covers the header alone). */
bool rec_crc_ok(const uint8_t buf[JNL_BLOCK], const struct rec_header *r,
                const void *data);

/* ---- journal map checkpoint (file CACHE_DIR/VOLUME.jmap) --------------- */
#define JMAP_MAGIC "LSVDJMP"
#define JMAP_FIXED_LEN 128
#define JMAP_REC_LEN 32
#define JMAP_EXT_LEN 16
#define JMAP_MAP_LEN 24
#define JMAP_MAX_ENTRIES (1ULL << 28)

struct jmap_rec {
    uint64_t seq;
    uint64_t off;                   /* header offset in the ring */
    uint64_t len;                   /* header + data bytes */
    uint16_t type;
    uint32_t n_extents;             /* its extents, in the extent table */
};

struct jmap_map {
    uint64_t lba, len, loc;         /* a journal map entry */
};

struct jmap_ckpt {
    uint8_t uuid[LSVD_UUID_LEN];
    uint64_t sb_start_seq;          /* the journal superblock it goes with */
    uint64_t sb_tail_off;
    uint64_t next_seq;              /* where replay goes on */
    uint64_t next_off;
    uint64_t upto_seq;              /* newest WRITE/ZERO record it covers */
    uint64_t n_recs, n_exts, n_map;
    struct jmap_rec *recs;
    struct rec_extent *exts;        /* the records' extents, in order */
    struct jmap_map *map;
};

uint8_t *jmap_ckpt_encode(const struct jmap_ckpt *c, size_t *len);
int jmap_ckpt_parse(const uint8_t *buf, size_t len, struct jmap_ckpt *c);
void jmap_ckpt_free(struct jmap_ckpt *c);

/* ---- read cache map (file CACHE_DIR/VOLUME.rcmap) --------------------- */
#define RCMAP_MAGIC "LSVDRCM"
#define RCMAP_FIXED_LEN 64
#define RCMAP_ENTRY_LEN 32
#define RCMAP_MAX_SLOTS (1U << 26)

/* Slot @slot of the data file holds @len decoded bytes of object @seq,
 * starting at raw offset @block * block_size; @crc is their CRC32C. */
struct rcmap_entry {
    uint64_t seq;
    uint32_t block;
    uint32_t slot;
    uint32_t len;
    uint32_t crc;
};

struct rcmap {
    uint8_t uuid[LSVD_UUID_LEN];
    uint32_t block_size;
    uint32_t n_slots;
    uint32_t n_entries;
    struct rcmap_entry *entries;
};

uint8_t *rcmap_encode(const struct rcmap *m, size_t *len);
/* Checks every entry: slot in range and used once, length in
 * (0, block_size] and a whole number of sectors, seq non-zero. */
int rcmap_parse(const uint8_t *buf, size_t len, struct rcmap *m);
void rcmap_free(struct rcmap *m);

#endif /* LSVD_FORMAT_H */
