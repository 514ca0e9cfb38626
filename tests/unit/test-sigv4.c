/*
 * test-sigv4 - AWS Signature Version 4: AWS's published S3 examples,
 * canonicalisation rules, hashing and argument checks.
 */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "sigv4.h"

/*
 * The four worked examples of the Amazon S3 API Reference, "Signature
 * Calculations for the Authorization Header: Transferring Payload in a
 * Single Chunk (AWS Signature Version 4)", section "Examples: Signature
 * Calculations",
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 * They all use these credentials (note '/' before "bPxRfiCY" in this
 * page's key; AWS's General Reference examples use '+') and
 * Fri, 24 May 2013 00:00:00 GMT.
 */
#define EX_ACCESS_KEY "AKIAIOSFODNN7EXAMPLE"
#define EX_SECRET_KEY "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EX_HOST "examplebucket.s3.amazonaws.com"
#define EX_NOW ((time_t)1369353600)
#define EX_AMZ_DATE "20130524T000000Z"
#define EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EX_CRED_PREFIX "AWS4-HMAC-SHA256 Credential=" EX_ACCESS_KEY \
    "/20130524/us-east-1/s3/aws4_request,"

static struct sigv4_request example_request(void)
{
    struct sigv4_request r = {
        .method = "GET",
        .host = EX_HOST,
        .path = "/",
        .payload_sha256 = EMPTY_SHA256,
        .region = "us-east-1",
        .service = "s3",
        .access_key = EX_ACCESS_KEY,
        .secret_key = EX_SECRET_KEY,
        .now = EX_NOW,
    };
    return r;
}

/*
 * Sign @r and check the published pieces: the canonical request (if the
 * page prints it), the hash of the canonical request (the last line of the
 * published StringToSign) and the whole Authorization header.
 */
static void check_example(const struct sigv4_request *r,
                          const char *want_creq, const char *want_creq_hash,
                          const char *want_auth)
{
    char *creq, *auth, *amz_date;
    char hash[65];

    g_assert_cmpint(sigv4_canonical_request(r, EX_AMZ_DATE, &creq, NULL),
                    ==, 0);
    if (want_creq) {
        g_assert_cmpstr(creq, ==, want_creq);
    }
    sigv4_sha256_hex(creq, strlen(creq), hash);
    g_assert_cmpstr(hash, ==, want_creq_hash);
    g_free(creq);

    g_assert_cmpint(sigv4_sign(r, &auth, &amz_date), ==, 0);
    g_assert_cmpstr(amz_date, ==, EX_AMZ_DATE);
    g_assert_cmpstr(auth, ==, want_auth);
    g_free(auth);
    g_free(amz_date);
}

/* "Example: GET Object": the first 10 bytes of test.txt. */
static void test_aws_get_object(void)
{
    static const char *const headers[] = { "Range: bytes=0-9", NULL };
    struct sigv4_request r = example_request();

    r.path = "/test.txt";
    r.headers = headers;
    check_example(&r,
                  "GET\n"
                  "/test.txt\n"
                  "\n"
                  "host:examplebucket.s3.amazonaws.com\n"
                  "range:bytes=0-9\n"
                  "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                  "x-amz-date:20130524T000000Z\n"
                  "\n"
                  "host;range;x-amz-content-sha256;x-amz-date\n"
                  EMPTY_SHA256,
                  "7344ae5b7ee6c3e7e6b0fe0640412a37"
                  "625d1fbfff95c48bbb2dc43964946972",
                  EX_CRED_PREFIX
                  "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                  "Signature=f0e8bdb87c964420e857bd35b5d6ed31"
                  "0bd44f0170aba48dd91039c6036bdb41");
}

/* "Example: PUT Object": "Welcome to Amazon S3." as test$file.text. */
static void test_aws_put_object(void)
{
    static const char body[] = "Welcome to Amazon S3.";
    static const char *const headers[] = {
        "Date: Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-storage-class: REDUCED_REDUNDANCY",
        NULL
    };
    struct sigv4_request r = example_request();
    char body_hash[65];
    char *path;

    /* the page's x-amz-content-sha256 is the hash of that body */
    sigv4_sha256_hex(body, strlen(body), body_hash);
    g_assert_cmpstr(body_hash, ==,
                    "44ce7dd67c959e0d3524ffac1771dfbb"
                    "a87d2b6b4b4e99e42034a8b803f8b072");
    /* and its canonical URI is the key encoded with '/' kept */
    path = sigv4_uri_encode("/test$file.text", true);
    g_assert_cmpstr(path, ==, "/test%24file.text");

    r.method = "PUT";
    r.path = path;
    r.headers = headers;
    r.payload_sha256 = body_hash;
    check_example(&r,
                  "PUT\n"
                  "/test%24file.text\n"
                  "\n"
                  "date:Fri, 24 May 2013 00:00:00 GMT\n"
                  "host:examplebucket.s3.amazonaws.com\n"
                  "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbb"
                  "a87d2b6b4b4e99e42034a8b803f8b072\n"
                  "x-amz-date:20130524T000000Z\n"
                  "x-amz-storage-class:REDUCED_REDUNDANCY\n"
                  "\n"
                  "date;host;x-amz-content-sha256;x-amz-date;"
                  "x-amz-storage-class\n"
                  "44ce7dd67c959e0d3524ffac1771dfbb"
                  "a87d2b6b4b4e99e42034a8b803f8b072",
                  "9e0e90d9c76de8fa5b200d8c849cd5b8"
                  "dc7a3be3951ddb7f6a76b4158342019d",
                  EX_CRED_PREFIX
                  "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                  "x-amz-storage-class,"
                  "Signature=98ad721746da40c64f1a55b78f14c238"
                  "d841ea1380cd77a1b5971af0ece108bd");
    g_free(path);
}

/* "Example: GET Bucket Lifecycle": a query parameter without a value. */
static void test_aws_get_lifecycle(void)
{
    struct sigv4_request r = example_request();

    r.query = "lifecycle";
    check_example(&r,
                  "GET\n"
                  "/\n"
                  "lifecycle=\n"
                  "host:examplebucket.s3.amazonaws.com\n"
                  "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                  "x-amz-date:20130524T000000Z\n"
                  "\n"
                  "host;x-amz-content-sha256;x-amz-date\n"
                  EMPTY_SHA256,
                  "9766c798316ff2757b517bc739a67f62"
                  "13b4ab36dd5da2f94eaebf79c77395ca",
                  EX_CRED_PREFIX
                  "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                  "Signature=fea454ca298b7da1c68078a5d1bdbfbb"
                  "e0d65c699e0f91ac7a200a0136783543");
}

/* "Example: Get Bucket (List Objects)": two query parameters, given here
 * out of order so that the signer has to sort them. */
static void test_aws_list_objects(void)
{
    struct sigv4_request r = example_request();

    r.query = "prefix=J&max-keys=2";
    check_example(&r,
                  "GET\n"
                  "/\n"
                  "max-keys=2&prefix=J\n"
                  "host:examplebucket.s3.amazonaws.com\n"
                  "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                  "x-amz-date:20130524T000000Z\n"
                  "\n"
                  "host;x-amz-content-sha256;x-amz-date\n"
                  EMPTY_SHA256,
                  "df57d21db20da04d7fa30298dd4488ba"
                  "3a2b47ca3a489c74750e0f1e7df1b9b7",
                  EX_CRED_PREFIX
                  "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                  "Signature=34b48302e7b5fa45bde8084f4b7868a8"
                  "6f0a534bc59db6670ed5711ef69dc6f7");
}

static void test_uri_encode(void)
{
    char *s;

    s = sigv4_uri_encode("AZaz09-._~", false);
    g_assert_cmpstr(s, ==, "AZaz09-._~");
    g_free(s);
    s = sigv4_uri_encode("a b/c+d=e&f%\xc3\xa9", false);
    g_assert_cmpstr(s, ==, "a%20b%2Fc%2Bd%3De%26f%25%C3%A9");
    g_free(s);
    s = sigv4_uri_encode("/bucket/a b/c+d", true);
    g_assert_cmpstr(s, ==, "/bucket/a%20b/c%2Bd");
    g_free(s);
    s = sigv4_uri_encode("", true);
    g_assert_cmpstr(s, ==, "");
    g_free(s);
}

static void test_canonical_query(void)
{
    struct {
        const char *in, *out;
    } cases[] = {
        { NULL, "" },
        { "", "" },
        { "&&", "" },
        /* space as %20 (never '+'), '/' encoded, '~' kept */
        { "prefix=vol 1/obj~x", "prefix=vol%201%2Fobj~x" },
        /* sorted by name; a repeated name by value, as strings */
        { "b=2&a=z&list-type=2&a=10&a=1&", "a=1&a=10&a=z&b=2&list-type=2" },
        /* sorted by encoded name: "%C3%A9" sorts before "~" */
        { "a~=1&a\xc3\xa9=2", "a%C3%A9=2&a~=1" },
        /* only the first '=' splits; names are encoded too */
        { "x y=a=b&versionId", "versionId=&x%20y=a%3Db" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *q = sigv4_canonical_query(cases[i].in);

        g_assert_cmpstr(q, ==, cases[i].out);
        g_free(q);
    }
}

static void test_header_trim_and_sort(void)
{
    static const char *const headers[] = {
        "X-Amz-Meta-Note:   two   words \t and\t\ttabs  ",
        "Content-Type:application/octet-stream",
        "RANGE: bytes=0-4095",
        "x-amz-meta-empty:   ",
        NULL
    };
    struct sigv4_request r = example_request();
    char *creq, *names;

    r.headers = headers;
    r.host = "127.0.0.1:7480";
    r.path = "/bucket/vol/0000000000000001";
    r.payload_sha256 = "UNSIGNED-PAYLOAD";
    g_assert_cmpint(sigv4_canonical_request(&r, EX_AMZ_DATE, &creq, &names),
                    ==, 0);
    g_assert_cmpstr(creq, ==,
                    "GET\n"
                    "/bucket/vol/0000000000000001\n"
                    "\n"
                    "content-type:application/octet-stream\n"
                    "host:127.0.0.1:7480\n"
                    "range:bytes=0-4095\n"
                    "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
                    "x-amz-date:20130524T000000Z\n"
                    "x-amz-meta-empty:\n"
                    "x-amz-meta-note:two words and tabs\n"
                    "\n"
                    "content-type;host;range;x-amz-content-sha256;"
                    "x-amz-date;x-amz-meta-empty;x-amz-meta-note\n"
                    "UNSIGNED-PAYLOAD");
    g_assert_cmpstr(names, ==,
                    "content-type;host;range;x-amz-content-sha256;"
                    "x-amz-date;x-amz-meta-empty;x-amz-meta-note");
    g_free(creq);
    g_free(names);
}

static void test_session_token(void)
{
    struct sigv4_request r = example_request();
    char *creq, *auth, *auth_plain, *amz_date;

    g_assert_cmpint(sigv4_sign(&r, &auth_plain, &amz_date), ==, 0);
    g_free(amz_date);

    r.session_token = "  FQoGZXIvYXdzEXAMPLE//token=  ";
    g_assert_cmpint(sigv4_canonical_request(&r, EX_AMZ_DATE, &creq, NULL),
                    ==, 0);
    g_assert_nonnull(strstr(creq,
                            "\nx-amz-date:20130524T000000Z\n"
                            "x-amz-security-token:"
                            "FQoGZXIvYXdzEXAMPLE//token=\n\n"
                            "host;x-amz-content-sha256;x-amz-date;"
                            "x-amz-security-token\n"));
    g_free(creq);

    g_assert_cmpint(sigv4_sign(&r, &auth, &amz_date), ==, 0);
    g_assert_true(g_str_has_prefix(auth, EX_CRED_PREFIX
                                   "SignedHeaders=host;x-amz-content-sha256;"
                                   "x-amz-date;x-amz-security-token,"
                                   "Signature="));
    /* the token is covered by the signature */
    g_assert_cmpstr(strrchr(auth, '='), !=, strrchr(auth_plain, '='));
    g_assert_cmpuint(strlen(strrchr(auth, '=') + 1), ==, 64);
    g_free(auth);
    g_free(auth_plain);
    g_free(amz_date);
}

static void test_amz_date(void)
{
    struct sigv4_request r = example_request();
    char *auth, *amz_date;

    r.now = 1440938160;         /* 2015-08-30 12:36:00 UTC */
    g_assert_cmpint(sigv4_sign(&r, &auth, &amz_date), ==, 0);
    g_assert_cmpstr(amz_date, ==, "20150830T123600Z");
    g_assert_true(g_str_has_prefix(auth, "AWS4-HMAC-SHA256 Credential="
                                   EX_ACCESS_KEY "/20150830/us-east-1/s3/"
                                   "aws4_request,"));
    g_free(auth);
    g_free(amz_date);
}

static void test_sha256_hex(void)
{
    char out[65];

    sigv4_sha256_hex("", 0, out);
    g_assert_cmpstr(out, ==, EMPTY_SHA256);
    /* FIPS 180-2, appendix B.1 */
    sigv4_sha256_hex("abc", 3, out);
    g_assert_cmpstr(out, ==,
                    "ba7816bf8f01cfea414140de5dae2223"
                    "b00361a396177a9cb410ff61f20015ad");
}

static void expect_einval(const struct sigv4_request *r)
{
    char *auth = NULL, *amz_date = NULL, *creq = NULL;

    g_assert_cmpint(sigv4_sign(r, &auth, &amz_date), ==, -EINVAL);
    g_assert_null(auth);
    g_assert_null(amz_date);
    g_assert_cmpint(sigv4_canonical_request(r, EX_AMZ_DATE, &creq, NULL),
                    ==, -EINVAL);
    g_assert_null(creq);
}

static void test_bad_requests(void)
{
    static const char *const dup_host[] = { "Host: evil.example", NULL };
    static const char *const dup_name[] = { "Range: a", "range: b", NULL };
    static const char *const no_colon[] = { "Range bytes=0-9", NULL };
    static const char *const no_name[] = { ": value", NULL };
    static const char *const space_name[] = { "Range : bytes=0-9", NULL };
    static const char *const crlf[] = {
        "x-amz-meta-a: b\r\nx-injected: c", NULL
    };
    struct sigv4_request r;

    r = example_request();
    r.headers = dup_host;
    expect_einval(&r);
    r.headers = dup_name;
    expect_einval(&r);
    r.headers = no_colon;
    expect_einval(&r);
    r.headers = no_name;
    expect_einval(&r);
    r.headers = space_name;
    expect_einval(&r);
    r.headers = crlf;
    expect_einval(&r);

    r = example_request();
    r.session_token = "tok\nen";
    expect_einval(&r);

    r = example_request();
    r.secret_key = NULL;
    expect_einval(&r);

    r = example_request();
    r.region = "";
    expect_einval(&r);

    r = example_request();
    r.path = "test.txt";
    expect_einval(&r);

    expect_einval(NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sigv4/aws/get-object", test_aws_get_object);
    g_test_add_func("/sigv4/aws/put-object", test_aws_put_object);
    g_test_add_func("/sigv4/aws/get-lifecycle", test_aws_get_lifecycle);
    g_test_add_func("/sigv4/aws/list-objects", test_aws_list_objects);
    g_test_add_func("/sigv4/uri-encode", test_uri_encode);
    g_test_add_func("/sigv4/canonical-query", test_canonical_query);
    g_test_add_func("/sigv4/header-trim-and-sort", test_header_trim_and_sort);
    g_test_add_func("/sigv4/session-token", test_session_token);
    g_test_add_func("/sigv4/amz-date", test_amz_date);
    g_test_add_func("/sigv4/sha256-hex", test_sha256_hex);
    g_test_add_func("/sigv4/bad-requests", test_bad_requests);
    return g_test_run();
}
