/*
 * util.c - CRC32C, messages, logging, UUIDs.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <unistd.h>

#include <glib.h>
#include <isa-l/crc.h>

uint32_t lsvd_crc32c(uint32_t crc, const void *buf, size_t len)
{
    /*
     * ISA-L's crc32_iscsi() takes and returns the raw register value; the
     * standard CRC32C inverts it on the way in and out.  Doing that here
     * makes lsvd_crc32c(0, "123456789", 9) == 0xe3069283, the check value.
     */
    const unsigned char *p = buf;
    uint32_t c = ~crc;

    while (len > 0) {
        int n = len > INT32_MAX ? INT32_MAX : (int)len;
        c = crc32_iscsi((unsigned char *)p, n, c);
        p += n;
        len -= n;
    }
    return ~c;
}

int lsvd_fail(struct lsvd_err *err, int ret, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return ret;
}

static lsvd_log_fn *log_fn;
static void *log_arg;

void lsvd_set_log_handler(lsvd_log_fn *fn, void *arg)
{
    __atomic_store_n(&log_arg, arg, __ATOMIC_RELEASE);
    __atomic_store_n(&log_fn, fn, __ATOMIC_RELEASE);
}

void lsvd_log(enum lsvd_log_level level, const char *fmt, ...)
{
    lsvd_log_fn *fn = __atomic_load_n(&log_fn, __ATOMIC_ACQUIRE);
    char msg[512];
    va_list ap;

    if (!fn) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fn(__atomic_load_n(&log_arg, __ATOMIC_ACQUIRE), level, msg);
}

int lsvd_uuid_generate(uint8_t uuid[LSVD_UUID_LEN])
{
    if (getrandom(uuid, LSVD_UUID_LEN, 0) != LSVD_UUID_LEN) {
        return -errno;
    }
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    return 0;
}

void lsvd_uuid_format(const uint8_t u[LSVD_UUID_LEN], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
             u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int write_all(int fd, const struct iovec *iov, int iovcnt)
{
    for (int i = 0; i < iovcnt; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;

        while (left > 0) {
            ssize_t n = write(fd, p, left);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return -errno;
            }
            p += n;
            left -= n;
        }
    }
    return 0;
}

int lsvd_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret = 0;

    if (fd < 0) {
        return -errno;
    }
    if (fsync(fd) < 0) {
        ret = -errno;
    }
    close(fd);
    return ret;
}

int lsvd_replace_file(const char *path, const struct iovec *iov, int iovcnt,
                      int mode)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *tmp = g_strdup_printf("%s/.tmp.%s.%08x", dir, base,
                                           g_random_int());
    int fd, ret;

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        return -errno;
    }
    ret = write_all(fd, iov, iovcnt);
    if (ret == 0 && fsync(fd) < 0) {
        ret = -errno;
    }
    close(fd);
    if (ret == 0 && rename(tmp, path) < 0) {
        ret = -errno;
    }
    if (ret < 0) {
        unlink(tmp);
        return ret;
    }
    return lsvd_fsync_dir(dir);
}

struct workers {
    GAsyncQueue *queue;
    GThread **threads;
    unsigned n;
    workers_fn *fn;
    void *arg;
};

static char workers_stop_token;

static gpointer workers_main(gpointer p)
{
    struct workers *w = p;
    void *item;

    while ((item = g_async_queue_pop(w->queue)) != &workers_stop_token) {
        w->fn(item, w->arg);
    }
    return NULL;
}

struct workers *workers_start(const char *name, unsigned n, workers_fn *fn,
                              void *arg)
{
    struct workers *w = g_new0(struct workers, 1);

    w->queue = g_async_queue_new();
    w->threads = g_new0(GThread *, n);
    w->fn = fn;
    w->arg = arg;
    for (w->n = 0; w->n < n; w->n++) {
        w->threads[w->n] = g_thread_try_new(name, workers_main, w, NULL);
        if (!w->threads[w->n]) {
            workers_stop(w);
            return NULL;
        }
    }
    return w;
}

void workers_push(struct workers *w, void *item)
{
    g_async_queue_push(w->queue, item);
}

void workers_stop(struct workers *w)
{
    if (!w) {
        return;
    }
    for (unsigned i = 0; i < w->n; i++) {
        g_async_queue_push(w->queue, &workers_stop_token);
    }
    for (unsigned i = 0; i < w->n; i++) {
        g_thread_join(w->threads[i]);
    }
    g_async_queue_unref(w->queue);
    g_free(w->threads);
    g_free(w);
}

int lsvd_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return -ENODATA;        /* past the end of the file */
        }
        done += n;
    }
    return 0;
}

int lsvd_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
                           off + done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EIO;
        }
        done += n;
    }
    return 0;
}
