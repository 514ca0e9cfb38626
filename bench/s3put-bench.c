/*
 * s3put-bench - the bare object store, through the core's own backend
 * (backend_open() of lsvd-core/src/backend.h), as a reference for the
 * volume's S3 figures (scripts/bench.sh, docs/bench/README.md).
 *
 *   s3put-bench CONF put N [THREADS]
 *       PUT N objects of 8 MiB of random data with THREADS threads (4, as
 *       the volume's PUT workers), print the throughput; delete them.
 *   s3put-bench CONF get N [SIZE]
 *       PUT one 8 MiB object, then N ranged GETs of SIZE bytes (64 KiB) at
 *       random SIZE-aligned offsets in it, one at a time; print the median
 *       and p99 latency; delete it.
 *
 * Output: "key value" lines (put_mb_s, get_mean_us, get_median_us,
 * get_p99_us, ...).
 * Object names are "s3putbench/%016x", a volume name no test uses.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "lsvd.h"

#define OBJ_SIZE (8u << 20)
#define VOL "s3putbench"

static struct backend be;
static unsigned n_objs, next_obj;
static int failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

    for (size_t i = 0; i + 8 <= len; i += 8) {   /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
}

static void obj_name(char *name, size_t len, unsigned i)
{
    snprintf(name, len, VOL "/%016x", i + 1);
}

static void *put_thread(void *arg)
{
    uint8_t *buf = malloc(OBJ_SIZE);
    char name[64];

    (void)arg;
    if (!buf) {
        abort();
    }
    for (;;) {
        unsigned i;
        pthread_mutex_lock(&lock);
        i = next_obj++;
        pthread_mutex_unlock(&lock);
        if (i >= n_objs) {
            break;
        }
        /* fresh data per object: nothing below can dedupe or compress */
        fill_random(buf, OBJ_SIZE, i + 1);
        struct iovec iov = { .iov_base = buf, .iov_len = OBJ_SIZE };
        obj_name(name, sizeof(name), i);
        int ret = be.ops->put(be.be, name, &iov, 1);
        if (ret < 0) {
            fprintf(stderr, "s3put-bench: PUT %s: %s\n", name, strerror(-ret));
            __atomic_store_n(&failed, 1, __ATOMIC_SEQ_CST);
            break;
        }
    }
    free(buf);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void delete_objs(unsigned n)
{
    char name[64];

    for (unsigned i = 0; i < n; i++) {
        obj_name(name, sizeof(name), i);
        be.ops->del(be.be, name);
    }
}

static int do_put(unsigned n, unsigned threads)
{
    pthread_t tid[64];
    double t0, t;

    /* the random data is generated inside the timed loop, as the volume
     * encodes inside it; time it alone to report it */
    uint8_t *buf = malloc(OBJ_SIZE);
    t0 = now();
    fill_random(buf, OBJ_SIZE, 12345);
    double fill_s = now() - t0;
    free(buf);

    n_objs = n;
    t0 = now();
    for (unsigned i = 0; i < threads; i++) {
        pthread_create(&tid[i], NULL, put_thread, NULL);
    }
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
    }
    t = now() - t0;
    delete_objs(n);
    if (failed) {
        return 1;
    }
    printf("put_objects %u\n", n);
    printf("put_threads %u\n", threads);
    printf("put_seconds %.3f\n", t);
    printf("put_mb_s %.1f\n", (double)n * OBJ_SIZE / t / 1e6);
    printf("fill_ms_per_object %.2f\n", fill_s * 1e3);
    return 0;
}

static int do_get(unsigned n, unsigned size)
{
    uint8_t *obj = malloc(OBJ_SIZE), *buf = malloc(size);
    double *lat = calloc(n, sizeof(*lat));
    char name[64];
    int ret;

    if (!obj || !buf || !lat || size == 0 || size > OBJ_SIZE) {
        fprintf(stderr, "s3put-bench: bad size\n");
        return 1;
    }
    fill_random(obj, OBJ_SIZE, 777);
    obj_name(name, sizeof(name), 0);
    struct iovec iov = { .iov_base = obj, .iov_len = OBJ_SIZE };
    ret = be.ops->put(be.be, name, &iov, 1);
    if (ret < 0) {
        fprintf(stderr, "s3put-bench: PUT %s: %s\n", name, strerror(-ret));
        return 1;
    }
    srand(42);
    unsigned slots = OBJ_SIZE / size;
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = (uint64_t)(rand() % slots) * size;
        double t0 = now();
        ssize_t got = be.ops->get_range(be.be, name, off, buf, size);
        lat[i] = now() - t0;
        if (got != (ssize_t)size || memcmp(buf, obj + off, size) != 0) {
            fprintf(stderr, "s3put-bench: GET %s at %" PRIu64 ": %zd\n",
                    name, off, got);
            return 1;
        }
    }
    delete_objs(1);
    double sum = 0;
    for (unsigned i = 0; i < n; i++) {
        sum += lat[i];
    }
    qsort(lat, n, sizeof(*lat), cmp_double);
    printf("get_requests %u\n", n);
    printf("get_size %u\n", size);
    printf("get_mean_us %.0f\n", sum / n * 1e6);
    printf("get_median_us %.0f\n", lat[n / 2] * 1e6);
    printf("get_p99_us %.0f\n", lat[(size_t)(n * 0.99)] * 1e6);
    free(obj);
    free(buf);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    struct lsvd_config *cfg;
    struct lsvd_err err = { "" };
    int ret;

    if (argc < 4 || (strcmp(argv[2], "put") && strcmp(argv[2], "get"))) {
        fprintf(stderr, "usage: s3put-bench CONF put N [THREADS]\n"
                        "       s3put-bench CONF get N [SIZE]\n");
        return 2;
    }
    ret = lsvd_config_load(argv[1], &cfg, &err);
    if (ret < 0) {
        fprintf(stderr, "s3put-bench: %s\n", err.msg);
        return 1;
    }
    ret = backend_open(cfg, &be, &err);
    if (ret < 0) {
        fprintf(stderr, "s3put-bench: %s\n", err.msg);
        return 1;
    }
    unsigned n = strtoul(argv[3], NULL, 0);
    if (n == 0) {
        fprintf(stderr, "s3put-bench: N must be > 0\n");
        return 2;
    }
    if (!strcmp(argv[2], "put")) {
        unsigned threads = argc > 4 ? strtoul(argv[4], NULL, 0) : 4;
        if (threads < 1 || threads > 64) {
            fprintf(stderr, "s3put-bench: THREADS must be 1..64\n");
            return 2;
        }
        ret = do_put(n, threads);
    } else {
        ret = do_get(n, argc > 4 ? strtoul(argv[4], NULL, 0) : 64u << 10);
    }
    backend_close(&be);
    lsvd_config_free(cfg);
    return ret;
}
