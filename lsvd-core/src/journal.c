/*
 * journal.c - the write-back journal on a cache file.  See journal.h for
 * the layout and its invariants.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

struct journal {
    int fd;                 /* -1: read-only open of a missing journal */
    char *path;
    bool rdonly;
    uint8_t uuid[LSVD_UUID_LEN];
    struct jnl_super sb;
    uint64_t head;          /* byte offset of the next record */
    uint64_t next_seq;
    uint8_t *hdr;           /* JNL_BLOCK scratch for record headers */
};

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
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

static int pwritev_all(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
    while (iovcnt > 0) {
        ssize_t n = pwritev(fd, iov, MIN(iovcnt, IOV_MAX), off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        off += n;
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= n;
        }
    }
    return 0;
}

static int write_super(struct journal *j)
{
    uint8_t b[JNL_BLOCK];
    struct iovec iov = { b, JNL_BLOCK };
    int ret;

    jnl_super_encode(&j->sb, b);
    ret = pwritev_all(j->fd, &iov, 1, 0);
    if (ret == 0 && fdatasync(j->fd) < 0) {
        ret = -errno;
    }
    return ret;
}

int journal_open(const char *path, const uint8_t uuid[LSVD_UUID_LEN],
                 uint64_t size, bool rdonly, struct journal **out,
                 struct lsvd_err *err)
{
    struct journal *j = g_new0(struct journal, 1);
    uint8_t b[JNL_BLOCK];
    struct stat st;
    int ret;

    j->path = g_strdup(path);
    j->rdonly = rdonly;
    j->hdr = g_malloc(JNL_BLOCK);
    memcpy(j->uuid, uuid, LSVD_UUID_LEN);
    j->fd = open(path, (rdonly ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC,
                 0600);
    if (j->fd < 0) {
        if (errno == ENOENT && rdonly) {
            *out = j;
            return 0;
        }
        ret = lsvd_fail(err, -errno, "cannot open journal %s: %s", path,
                        g_strerror(errno));
        goto fail;
    }
    if (flock(j->fd, (rdonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        ret = errno == EWOULDBLOCK ?
              lsvd_fail(err, -EBUSY, "volume is in use (journal %s is "
                        "locked by another process)", path) :
              lsvd_fail(err, -errno, "cannot lock journal %s: %s", path,
                        g_strerror(errno));
        goto fail;
    }
    if (fstat(j->fd, &st) < 0) {
        ret = lsvd_fail(err, -errno, "cannot stat %s", path);
        goto fail;
    }
    if (st.st_size == 0 && !rdonly) {
        /* new journal: start_seq is set by the first replay or reset */
        memcpy(j->sb.uuid, uuid, LSVD_UUID_LEN);
        j->sb.start_seq = 1;
        j->sb.data_start = JNL_BLOCK;
        j->sb.size = size;
        ret = write_super(j);
        if (ret < 0) {
            lsvd_fail(err, ret, "cannot write journal %s: %s", path,
                      g_strerror(-ret));
            goto fail;
        }
    } else {
        ret = pread_all(j->fd, b, JNL_BLOCK, 0);
        if (ret == 0) {
            ret = jnl_super_parse(b, JNL_BLOCK, &j->sb);
        }
        if (ret < 0) {
            lsvd_fail(err, -EIO, "journal %s: bad superblock (%s)", path,
                      g_strerror(ret == -ENODATA ? EINVAL : -ret));
            ret = -EIO;
            goto fail;
        }
        if (memcmp(j->sb.uuid, uuid, LSVD_UUID_LEN) != 0) {
            ret = lsvd_fail(err, -EINVAL, "journal %s belongs to another "
                            "volume", path);
            goto fail;
        }
        /* the configured size may have grown or shrunk since: records
         * already there are kept, new ones respect the new size */
        j->sb.size = MAX(size, (uint64_t)JNL_BLOCK * 2);
    }
    j->head = j->sb.data_start;
    j->next_seq = j->sb.start_seq;
    *out = j;
    return 0;

fail:
    journal_close(j);
    return ret;
}

void journal_close(struct journal *j)
{
    if (!j) {
        return;
    }
    if (j->fd >= 0) {
        close(j->fd);
    }
    g_free(j->hdr);
    g_free(j->path);
    g_free(j);
}

int journal_replay(struct journal *j, uint64_t after_seq,
                   journal_replay_fn *fn, void *arg)
{
    struct rec_header r;
    uint8_t *data = NULL;
    uint64_t off = j->sb.data_start, seq = j->sb.start_seq;
    int ret = 0;

    while (j->fd >= 0) {
        if (pread_all(j->fd, j->hdr, JNL_BLOCK, off) < 0 ||
            rec_header_parse(j->hdr, JNL_BLOCK, &r) < 0 || r.seq != seq ||
            memcmp(r.uuid, j->uuid, LSVD_UUID_LEN) != 0) {
            break;          /* the end of the log */
        }
        data = g_try_realloc(data, MAX(r.data_len, 1));
        if (!data) {
            ret = -ENOMEM;
            break;
        }
        if (pread_all(j->fd, data, r.data_len, off + JNL_BLOCK) < 0 ||
            !rec_crc_ok(j->hdr, &r, data)) {
            break;          /* a torn or corrupted last record */
        }
        if (seq > after_seq && r.type != REC_TYPE_PAD) {
            ret = fn(arg, &r, data, off + JNL_BLOCK);
            if (ret < 0) {
                break;
            }
        }
        off += JNL_BLOCK + r.data_len;
        seq++;
    }
    g_free(data);
    if (ret == 0 && !j->rdonly && j->fd >= 0 &&
        (ftruncate(j->fd, off) < 0 || fdatasync(j->fd) < 0)) {
        /*
         * Cut off what follows the end of the log: records after a torn
         * or corrupted one carry the next sequence numbers, and would be
         * replayed once new records fill the gap in front of them.
         */
        ret = -errno;
    }
    j->head = off;
    j->next_seq = MAX(seq, after_seq + 1);
    if (ret == 0 && seq != j->next_seq && !j->rdonly) {
        /*
         * Every record here is older than the objects (or there are none):
         * start afresh so that sequence numbers stay consecutive.
         */
        ret = journal_reset(j);
    }
    return ret;
}

uint64_t journal_free(const struct journal *j)
{
    return j->sb.size > j->head ? j->sb.size - j->head : 0;
}

uint64_t journal_used(const struct journal *j)
{
    return j->head - j->sb.data_start;
}

int journal_append(struct journal *j, uint16_t type,
                   const struct rec_extent *ext, uint32_t n,
                   const struct iovec *iov, int iovcnt, size_t len,
                   uint64_t *seq, uint64_t *data_off)
{
    static const uint8_t zeros[JNL_BLOCK];
    struct iovec v[IOV_MAX];
    struct rec_header r;
    size_t pad = ROUND_UP(len, JNL_BLOCK) - len;
    int nv = 0, ret;

    if (j->rdonly || j->fd < 0) {
        return -EROFS;
    }
    if (n > REC_MAX_EXTENTS || iovcnt > IOV_MAX - 2) {
        return -EINVAL;
    }
    if (journal_record_size(len) > journal_free(j)) {
        return -ENOSPC;
    }
    r.type = type;
    r.n_extents = n;
    memcpy(r.uuid, j->uuid, LSVD_UUID_LEN);
    r.seq = j->next_seq;
    r.data_len = len + pad;
    memcpy(r.extents, ext, n * sizeof(*ext));

    v[nv++] = (struct iovec){ j->hdr, JNL_BLOCK };
    for (int i = 0; i < iovcnt; i++) {
        v[nv++] = iov[i];
    }
    if (pad) {
        v[nv++] = (struct iovec){ (void *)zeros, pad };
    }
    rec_header_encode(&r, j->hdr, v + 1, nv - 1);
    ret = pwritev_all(j->fd, v, nv, j->head);
    if (ret < 0) {
        return ret;
    }
    *seq = j->next_seq++;
    *data_off = j->head + JNL_BLOCK;
    j->head += JNL_BLOCK + r.data_len;
    return 0;
}

int journal_flush(struct journal *j)
{
    if (j->fd < 0 || j->rdonly) {
        return 0;
    }
    return fdatasync(j->fd) < 0 ? -errno : 0;
}

int journal_reset(struct journal *j)
{
    int ret;

    if (j->rdonly || j->fd < 0) {
        return -EROFS;
    }
    j->sb.start_seq = j->next_seq;
    ret = write_super(j);
    if (ret == 0) {
        j->head = j->sb.data_start;
    }
    return ret;
}

int journal_read(struct journal *j, uint64_t off, void *buf, size_t len)
{
    if (j->fd < 0) {
        return -EIO;
    }
    return pread_all(j->fd, buf, len, off) == 0 ? 0 : -EIO;
}
