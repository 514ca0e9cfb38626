/*
 * test-util - CRC32C, size parsing and volume names.
 */
#include <errno.h>
#include <stdint.h>

#include <glib.h>

#include "lsvd.h"
#include "util.h"

static void test_crc32c_check_value(void)
{
    /* the standard check value of CRC-32C (Castagnoli) */
    g_assert_cmphex(lsvd_crc32c(0, "123456789", 9), ==, 0xe3069283);
    g_assert_cmphex(lsvd_crc32c(0, "", 0), ==, 0);
    /* RFC 3720 B.4: 32 bytes of zeros */
    {
        uint8_t z[32] = { 0 };
        uint8_t ff[32];

        memset(ff, 0xff, sizeof(ff));
        g_assert_cmphex(lsvd_crc32c(0, z, sizeof(z)), ==, 0x8a9136aa);
        g_assert_cmphex(lsvd_crc32c(0, ff, sizeof(ff)), ==, 0x62a8ab43);
    }
}

static void test_crc32c_incremental(void)
{
    uint8_t buf[8192];
    uint32_t whole;

    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 131 + (i >> 7));
    }
    whole = lsvd_crc32c(0, buf, sizeof(buf));
    /* every split point of a prefix, and a few of the whole buffer */
    for (size_t split = 0; split <= 64; split++) {
        uint32_t c = lsvd_crc32c(0, buf, split);
        c = lsvd_crc32c(c, buf + split, sizeof(buf) - split);
        g_assert_cmphex(c, ==, whole);
    }
    for (size_t split = 1000; split < sizeof(buf); split += 1013) {
        uint32_t c = lsvd_crc32c(0, buf, split);
        c = lsvd_crc32c(c, buf + split, sizeof(buf) - split);
        g_assert_cmphex(c, ==, whole);
    }
    /* byte at a time */
    {
        uint32_t c = 0;
        for (size_t i = 0; i < sizeof(buf); i++) {
            c = lsvd_crc32c(c, buf + i, 1);
        }
        g_assert_cmphex(c, ==, whole);
    }
    /* and a change anywhere changes it */
    buf[4000] ^= 1;
    g_assert_cmphex(lsvd_crc32c(0, buf, sizeof(buf)), !=, whole);
}

static void test_parse_size_good(void)
{
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        { "0", 0 },
        { "4096", 4096 },
        { "1G", 1ULL << 30 },
        { "1g", 1ULL << 30 },
        { "512M", 512ULL << 20 },
        { "10GiB", 10ULL << 30 },
        { "1KB", 1024 },
        { "1K", 1024 },
        { "3T", 3ULL << 40 },
        { "2P", 2ULL << 50 },
        { "15E", 15ULL << 60 },
        { "18446744073709551615", UINT64_MAX },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        uint64_t v = 12345;
        g_test_message("size '%s'", good[i].s);
        g_assert_cmpint(lsvd_parse_size(good[i].s, &v), ==, 0);
        g_assert_cmpuint(v, ==, good[i].v);
    }
}

static void test_parse_size_bad(void)
{
    static const char *const bad[] = {
        "", "G", "1X", "-1", "1GG", " 1G", "1G ", "1 G", "1.5G", "1iB",
        "1Gi", "1GBB", "0x10", "+1", "K1",
    };
    static const char *const range[] = {
        "18446744073709551616", "99999999999999999999999", "16E",
        "17179869184G", "1000000000000000000000K",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        uint64_t v = 12345;
        g_test_message("size '%s'", bad[i]);
        g_assert_cmpint(lsvd_parse_size(bad[i], &v), ==, -EINVAL);
        g_assert_cmpuint(v, ==, 12345);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(range); i++) {
        uint64_t v = 12345;
        g_test_message("size '%s'", range[i]);
        g_assert_cmpint(lsvd_parse_size(range[i], &v), ==, -ERANGE);
        g_assert_cmpuint(v, ==, 12345);
    }
    g_assert_cmpint(lsvd_parse_size(NULL, NULL), ==, -EINVAL);
}

static void test_name_valid(void)
{
    char longest[LSVD_NAME_MAX + 2];

    g_assert_true(lsvd_name_valid("a"));
    g_assert_true(lsvd_name_valid("vm1-disk_0.img"));
    g_assert_true(lsvd_name_valid("A.b-C_9"));
    g_assert_true(lsvd_name_valid("0"));
    g_assert_true(lsvd_name_valid("a."));

    g_assert_false(lsvd_name_valid(NULL));
    g_assert_false(lsvd_name_valid(""));
    g_assert_false(lsvd_name_valid("."));
    g_assert_false(lsvd_name_valid(".."));
    g_assert_false(lsvd_name_valid(".hidden"));
    g_assert_false(lsvd_name_valid("-x"));
    g_assert_false(lsvd_name_valid("a/b"));
    g_assert_false(lsvd_name_valid("a b"));
    g_assert_false(lsvd_name_valid("a\nb"));
    g_assert_false(lsvd_name_valid("caf\xc3\xa9"));
    g_assert_false(lsvd_name_valid("a:b"));

    memset(longest, 'x', LSVD_NAME_MAX);
    longest[LSVD_NAME_MAX] = '\0';
    g_assert_true(lsvd_name_valid(longest));
    longest[LSVD_NAME_MAX] = 'x';
    longest[LSVD_NAME_MAX + 1] = '\0';
    g_assert_false(lsvd_name_valid(longest));
}

static void test_le_fields(void)
{
    uint8_t b[8];

    put_le64(b, 0x0102030405060708ULL);
    g_assert_cmpuint(b[0], ==, 0x08);
    g_assert_cmpuint(b[7], ==, 0x01);
    g_assert_cmphex(get_le64(b), ==, 0x0102030405060708ULL);
    g_assert_cmphex(get_le32(b + 4), ==, 0x01020304);
    g_assert_cmphex(get_le16(b + 2), ==, 0x0506);
    put_le32(b, 0xfffefdfc);
    g_assert_cmphex(get_le32(b), ==, 0xfffefdfc);
}

static void test_uuid(void)
{
    uint8_t a[LSVD_UUID_LEN], b[LSVD_UUID_LEN];
    char s[37];

    g_assert_cmpint(lsvd_uuid_generate(a), ==, 0);
    g_assert_cmpint(lsvd_uuid_generate(b), ==, 0);
    g_assert_true(memcmp(a, b, LSVD_UUID_LEN) != 0);
    g_assert_cmpuint(a[6] >> 4, ==, 4);
    g_assert_cmpuint(a[8] >> 6, ==, 2);
    lsvd_uuid_format(a, s);
    g_assert_cmpuint(strlen(s), ==, 36);
    g_assert_cmpint(s[8], ==, '-');
    g_assert_cmpint(s[14], ==, '4');
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/util/crc32c/check-value", test_crc32c_check_value);
    g_test_add_func("/util/crc32c/incremental", test_crc32c_incremental);
    g_test_add_func("/util/parse-size/good", test_parse_size_good);
    g_test_add_func("/util/parse-size/bad", test_parse_size_bad);
    g_test_add_func("/util/name-valid", test_name_valid);
    g_test_add_func("/util/le-fields", test_le_fields);
    g_test_add_func("/util/uuid", test_uuid);
    return g_test_run();
}
