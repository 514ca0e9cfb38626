/*
 * fuzz-super - libFuzzer target for super_parse().  An accepted
 * superblock re-encodes to the same fields.  Each input is parsed as it
 * is and with its CRC made right, to reach the checks behind the CRC.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "format.h"

#define SUPER_CRC_OFF 252

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    struct super sb;
    uint8_t *again;
    size_t len;

    if (super_parse(data, size, &sb) < 0) {
        super_free(&sb);
        return;
    }
    if (sb.size == 0 || sb.size % LSVD_SECTOR_SIZE ||
        sb.n_snaps > SUPER_MAX_SNAPS ||
        strlen(sb.base_name) > SUPER_BASE_NAME_LEN) {
        abort();
    }
    /* reserved bytes may differ, so compare the parse of the re-encoding */
    again = super_encode(&sb, &len);
    {
        struct super sb2;
        if (super_parse(again, len, &sb2) < 0 ||
            sb2.size != sb.size || sb2.n_snaps != sb.n_snaps ||
            memcmp(sb2.uuid, sb.uuid, LSVD_UUID_LEN) != 0 ||
            strcmp(sb2.base_name, sb.base_name) != 0 ||
            (sb.n_snaps && memcmp(sb2.snaps, sb.snaps,
                                  8 * (size_t)sb.n_snaps) != 0)) {
            abort();
        }
        super_free(&sb2);
    }
    g_free(again);
    super_free(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t total = size >= 16 ? get_le32(data + 12) : 0;

    check(data, size);
    if (total >= SUPER_FIXED_LEN && total <= size) {
        uint8_t *b = g_memdup2(data, size);

        put_le32(b + SUPER_CRC_OFF, 0);
        put_le32(b + SUPER_CRC_OFF, lsvd_crc32c(0, b, total));
        check(b, size);
        g_free(b);
    }
    return 0;
}
