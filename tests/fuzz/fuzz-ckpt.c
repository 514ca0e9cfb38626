/*
 * fuzz-ckpt - libFuzzer target for ckpt_parse(), the object map
 * checkpoint.  An accepted checkpoint re-encodes to the same entries.
 * Each input is parsed as it is and with both CRCs made right, to reach
 * the checks behind them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "format.h"

#define CKPT_CRC_OFF 124

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    struct ckpt c, c2;
    uint64_t end = 0;
    size_t need = 0, len;
    uint8_t *again;

    if (ckpt_parse(data, size, &c, &need) < 0) {
        ckpt_free(&c);
        return;
    }
    for (uint64_t i = 0; i < c.n_extents; i++) {
        const struct ckpt_extent *e = &c.extents[i];
        if (e->sectors == 0 || e->lba < end ||
            e->lba + e->sectors > c.vol_size / LSVD_SECTOR_SIZE ||
            (!(e->flags & OBJ_EXT_ZERO) && e->seq >= c.seq)) {
            abort();
        }
        end = e->lba + e->sectors;
    }
    again = ckpt_encode(&c, &len);
    if (ckpt_parse(again, len, &c2, &need) < 0 ||
        c2.n_extents != c.n_extents || c2.n_objects != c.n_objects ||
        c2.seq != c.seq || c2.jseq != c.jseq) {
        abort();
    }
    /* field by field: the structs have padding */
    for (uint64_t i = 0; i < c.n_extents; i++) {
        const struct ckpt_extent *a = &c.extents[i], *b = &c2.extents[i];
        if (a->lba != b->lba || a->sectors != b->sectors ||
            a->flags != b->flags || a->seq != b->seq || a->off != b->off) {
            abort();
        }
    }
    for (uint64_t i = 0; i < c.n_objects; i++) {
        const struct ckpt_object *a = &c.objects[i], *b = &c2.objects[i];
        if (a->seq != b->seq || a->hdr_len != b->hdr_len ||
            a->data_len != b->data_len) {
            abort();
        }
    }
    ckpt_free(&c2);
    g_free(again);
    ckpt_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size >= CKPT_FIXED_LEN + 4) {
        uint8_t *b = g_memdup2(data, size);

        /* both CRCs right: the fixed part's, and the tables' at the end */
        put_le32(b + CKPT_CRC_OFF, 0);
        put_le32(b + CKPT_CRC_OFF, lsvd_crc32c(0, b, CKPT_FIXED_LEN));
        put_le32(b + size - 4, lsvd_crc32c(0, b + CKPT_FIXED_LEN,
                                           size - 4 - CKPT_FIXED_LEN));
        check(b, size);
        g_free(b);
    }
    return 0;
}
