/*
 * fuzz-journal - libFuzzer target for the journal parsers: the input is
 * tried as a journal superblock and as a record header block followed by
 * its data (jnl_super_parse, rec_header_parse, rec_crc_ok).  The
 * superblock is also tried with its CRC made right, and the record with
 * its CRC made right over the data that follows, to reach the checks
 * behind the CRCs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "format.h"

#define JNL_CRC_OFF (JNL_BLOCK - 4)
#define REC_CRC_OFF 48

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    struct jnl_super js;
    struct rec_header r;

    if (jnl_super_parse(data, size, &js) == 0) {
        if (js.data_start < JNL_BLOCK || js.data_start % JNL_BLOCK ||
            js.size < js.data_start) {
            abort();
        }
    }
    if (rec_header_parse(data, size, &r) == 0) {
        uint64_t bytes = 0;

        if (r.n_extents > REC_MAX_EXTENTS || r.data_len % JNL_BLOCK) {
            abort();
        }
        for (uint32_t i = 0; i < r.n_extents; i++) {
            bytes += (uint64_t)r.extents[i].sectors * LSVD_SECTOR_SIZE;
        }
        if (r.type == REC_TYPE_WRITE &&
            ROUND_UP(bytes, JNL_BLOCK) != r.data_len) {
            abort();
        }
        /* the CRC check reads data_len bytes after the header block */
        if (r.data_len <= size - JNL_BLOCK) {
            bool ok = rec_crc_ok(data, &r, data + JNL_BLOCK);

            /* an accepted record re-encodes to the same fields (the
             * reserved bytes may differ, and with them the CRC) */
            if (ok) {
                uint8_t b[JNL_BLOCK];
                struct rec_header r2 = r;
                size_t ext_len = (size_t)r.n_extents * REC_EXTENT_LEN;

                rec_header_encode(&r2, b, NULL, 0);
                if (memcmp(b, data, 48) != 0 ||
                    memcmp(b + REC_FIXED_LEN, data + REC_FIXED_LEN,
                           ext_len) != 0) {
                    abort();
                }
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size >= JNL_BLOCK) {
        uint8_t *b = g_memdup2(data, size);
        uint32_t crc;

        put_le32(b + JNL_CRC_OFF, 0);
        put_le32(b + JNL_CRC_OFF, lsvd_crc32c(0, b, JNL_BLOCK));
        check(b, size);
        memcpy(b, data, size);
        if (get_le64(b + 40) <= size - JNL_BLOCK) {       /* data_len */
            put_le32(b + REC_CRC_OFF, 0);
            crc = lsvd_crc32c(0, b, JNL_BLOCK);
            crc = lsvd_crc32c(crc, b + JNL_BLOCK, get_le64(b + 40));
            put_le32(b + REC_CRC_OFF, crc);
        }
        check(b, size);
        g_free(b);
    }
    return 0;
}
