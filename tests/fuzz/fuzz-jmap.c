/*
 * fuzz-jmap - libFuzzer target for jmap_ckpt_parse(), the journal map
 * checkpoint file.  What it accepts is sorted and re-encodes to the same
 * entries.  Each input is parsed as it is and with both CRCs made right.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "format.h"

#define JMAP_CRC_OFF 124

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    struct jmap_ckpt c, c2;
    uint64_t end = 0, exts = 0;
    uint8_t *again;
    size_t len;

    if (jmap_ckpt_parse(data, size, &c) < 0) {
        jmap_ckpt_free(&c);
        return;
    }
    for (uint64_t i = 0; i < c.n_recs; i++) {
        if ((i && c.recs[i].seq <= c.recs[i - 1].seq) ||
            c.recs[i].seq >= c.next_seq) {
            abort();
        }
        exts += c.recs[i].n_extents;
    }
    for (uint64_t i = 0; i < c.n_map; i++) {
        if (c.map[i].len == 0 || c.map[i].lba < end) {
            abort();
        }
        end = c.map[i].lba + c.map[i].len;
    }
    if (exts != c.n_exts) {
        abort();
    }
    again = jmap_ckpt_encode(&c, &len);
    if (jmap_ckpt_parse(again, len, &c2) < 0 || c2.n_recs != c.n_recs ||
        c2.n_exts != c.n_exts || c2.n_map != c.n_map ||
        c2.next_seq != c.next_seq || c2.next_off != c.next_off) {
        abort();
    }
    for (uint64_t i = 0; i < c.n_recs; i++) {
        if (c2.recs[i].seq != c.recs[i].seq ||
            c2.recs[i].off != c.recs[i].off ||
            c2.recs[i].len != c.recs[i].len ||
            c2.recs[i].type != c.recs[i].type) {
            abort();
        }
    }
    for (uint64_t i = 0; i < c.n_map; i++) {
        if (c2.map[i].lba != c.map[i].lba || c2.map[i].len != c.map[i].len ||
            c2.map[i].loc != c.map[i].loc) {
            abort();
        }
    }
    jmap_ckpt_free(&c2);
    g_free(again);
    jmap_ckpt_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size >= JMAP_FIXED_LEN + 4) {
        uint8_t *b = g_memdup2(data, size);

        put_le32(b + JMAP_CRC_OFF, 0);
        put_le32(b + JMAP_CRC_OFF, lsvd_crc32c(0, b, JMAP_FIXED_LEN));
        put_le32(b + size - 4, lsvd_crc32c(0, b + JMAP_FIXED_LEN,
                                           size - 4 - JMAP_FIXED_LEN));
        check(b, size);
        g_free(b);
    }
    return 0;
}
