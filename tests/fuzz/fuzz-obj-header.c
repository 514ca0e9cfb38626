/*
 * fuzz-obj-header - libFuzzer target for obj_header_parse().
 *
 * The input is the start of an object.  Whatever the parser returns, the
 * tables are freed, and a header it accepts must be self-consistent.
 * Each input is parsed twice: as it is, and with its CRC made right, so
 * that the fuzzer also explores the checks behind the CRC.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <glib.h>

#include "format.h"

#define OBJ_CRC_OFF 124

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void check(const uint8_t *data, size_t size)
{
    struct obj_header h;
    int ret = obj_header_parse(data, size, &h);

    if (ret == -EAGAIN) {
        /* asks for more than it was given, within the limit */
        if (h.hdr_len <= size || h.hdr_len > OBJ_MAX_HDR_LEN) {
            abort();
        }
    } else if (ret == 0) {
        uint64_t raw = 0, stored = 0;

        if (h.hdr_len > size) {
            abort();
        }
        for (uint32_t i = 0; i < h.n_chunks; i++) {
            raw += h.chunks[i].raw_len;
            stored += h.chunks[i].stored_len;
        }
        for (uint32_t i = 0; i < h.n_extents; i++) {
            const struct obj_extent *e = &h.extents[i];
            if (e->lba + e->sectors > h.vol_size / LSVD_SECTOR_SIZE) {
                abort();
            }
            if (!(e->flags & OBJ_EXT_ZERO) &&
                e->off + (uint64_t)e->sectors * LSVD_SECTOR_SIZE > raw) {
                abort();
            }
        }
        /* read the deferred table: ASan checks it was allocated */
        for (uint32_t i = 0; i < 2 * h.n_deferred; i++) {
            sink += h.deferred[i];
        }
        if (raw != h.raw_len || stored != h.data_len) {
            abort();
        }
    }
    obj_header_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t total = size >= 16 ? get_le32(data + 12) : 0;

    check(data, size);
    if (total >= OBJ_FIXED_LEN && total <= size) {
        uint8_t *b = g_memdup2(data, size);

        put_le32(b + OBJ_CRC_OFF, 0);
        put_le32(b + OBJ_CRC_OFF, lsvd_crc32c(0, b, total));
        check(b, size);
        g_free(b);
    }
    return 0;
}
