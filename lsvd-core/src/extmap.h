/*
 * extmap - an extent map: non-overlapping ranges of sectors [lba, lba+len)
 * mapped to a 64-bit location.  The journal maps LBAs to journal sectors,
 * the object log to (object sequence << 32 | sector offset in the object).
 * When an update splits an extent, the piece after the split point gets
 * location + (split - start): the low bits of a location must be a sector
 * address that can be advanced.
 *
 * Threads: none inside; the owner serialises access (the volume's lock).
 * Ownership: the map owns its nodes.
 *
 * Extents live in a compact in-memory B+-tree (extmap.c describes the
 * layout): O(log n) lookups and updates, about 20 bytes per extent.
 * Ranges are clamped so that lba + len never exceeds UINT64_MAX.
 * Callbacks must not modify the map they are walking.
 */
#ifndef LSVD_EXTMAP_H
#define LSVD_EXTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct extmap;

struct extmap *extmap_new(void);
void extmap_free(struct extmap *m);

/* Map [lba, lba+len) to @loc, replacing whatever was mapped there. */
void extmap_update(struct extmap *m, uint64_t lba, uint64_t len,
                   uint64_t loc);
/* Unmap [lba, lba+len). */
void extmap_trim(struct extmap *m, uint64_t lba, uint64_t len);
/* Unmap everything. */
void extmap_clear(struct extmap *m);

/*
 * Walk [lba, lba+len) in order, calling @fn for each piece: mapped pieces
 * with their location, unmapped gaps with mapped == false.  Stops early and
 * returns @fn's value when it is non-zero.
 */
typedef int extmap_fn(void *arg, uint64_t lba, uint64_t len, bool mapped,
                      uint64_t loc);
int extmap_lookup(struct extmap *m, uint64_t lba, uint64_t len,
                  extmap_fn *fn, void *arg);

/* Call @fn for every mapped extent, in LBA order. */
int extmap_foreach(struct extmap *m, extmap_fn *fn, void *arg);

/* Number of extents. */
size_t extmap_count(const struct extmap *m);

/* Bytes allocated for the map: nodes, scratch and the handle itself. */
size_t extmap_memory(const struct extmap *m);

/*
 * For tests.  extmap_new_sized() makes a map with @node_bytes-byte nodes
 * (clamped to [192, 1 MiB]; extmap_new() uses 4096) so that small maps
 * make deep trees.  extmap_check() checks the tree's invariants and
 * returns NULL, or a description of the first broken one (valid until the
 * next call in the same thread).
 */
struct extmap *extmap_new_sized(size_t node_bytes);
const char *extmap_check(const struct extmap *m);

#endif /* LSVD_EXTMAP_H */
