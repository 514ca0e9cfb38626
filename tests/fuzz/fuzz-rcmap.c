/*
 * fuzz-rcmap - libFuzzer target for rcmap_parse(), the read cache's map
 * file.  What it accepts names each slot once, within the slot count,
 * with lengths a block can hold, and re-encodes to the same entries.
 * Each input is parsed as it is and with both CRCs made right.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "format.h"

#define RCMAP_CRC_OFF 60

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    g_autofree uint8_t *seen = NULL;
    struct rcmap m, m2;
    uint8_t *again;
    size_t len;

    if (rcmap_parse(data, size, &m) < 0) {
        rcmap_free(&m);
        return;
    }
    seen = g_malloc0(m.n_slots / 8 + 1);
    if (m.n_entries > m.n_slots) {
        abort();
    }
    for (uint32_t i = 0; i < m.n_entries; i++) {
        const struct rcmap_entry *e = &m.entries[i];

        if (e->slot >= m.n_slots || (seen[e->slot / 8] & (1 << e->slot % 8)) ||
            e->len == 0 || e->len > m.block_size || e->seq == 0) {
            abort();
        }
        seen[e->slot / 8] |= 1 << e->slot % 8;
    }
    again = rcmap_encode(&m, &len);
    if (len != size || memcmp(again, data, len) != 0 ||
        rcmap_parse(again, len, &m2) < 0 || m2.n_entries != m.n_entries) {
        abort();
    }
    rcmap_free(&m2);
    g_free(again);
    rcmap_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed;

    check(data, size);
    /* again with the CRCs right, to reach the checks behind them */
    if (size < RCMAP_FIXED_LEN + 4 || size > (1u << 20)) {
        return 0;
    }
    fixed = g_memdup2(data, size);
    put_le32(fixed + RCMAP_CRC_OFF, 0);
    put_le32(fixed + RCMAP_CRC_OFF,
             lsvd_crc32c(0, fixed, RCMAP_FIXED_LEN));
    put_le32(fixed + size - 4, lsvd_crc32c(0, fixed + RCMAP_FIXED_LEN,
                                           size - 4 - RCMAP_FIXED_LEN));
    check(fixed, size);
    g_free(fixed);
    return 0;
}
