/*
 * faultfs.c - a FUSE passthrough filesystem that injects faults, to test
 * how lsvd-core behaves when its cache device fails (there is no
 * device-mapper here, so no dm-flakey or dm-error).
 *
 *   faultfs BACKING MOUNTPOINT [FUSE options, e.g. -f -o auto_unmount]
 *
 * Every file and directory of BACKING appears under MOUNTPOINT, and every
 * operation is forwarded to it.  Files are opened with direct_io, so the
 * kernel's page cache above us holds nothing: each read and write reaches
 * this daemon before it returns, and a fault we inject is seen by the
 * caller.  BACKING itself is written with ordinary buffered I/O: its
 * page cache survives the processes above, which is what a device that
 * kept what it acknowledged looks like.
 *
 * Control: the file MOUNTPOINT/.faultfs (not listed by readdir).  Writing
 * a line runs one command (faultfs-rule.h has the language; a bad line
 * fails the write with EINVAL); reading it returns the rules and the
 * counters, one per line:
 *   rule KIND GLOB after=N bytes=N count=N [quota=N] injected=N
 *   injected KIND N          faults injected, per kind, since mount
 *   ops read|write|fsync N   operations seen on files (not .faultfs)
 *   track GLOB
 *   powercut 0|1 torn=N torn_bytes=N dropped=N blocked=N lost=N kept=N
 *                            (lost, kept: unsynced sectors reverted and
 *                            kept at the cut)
 *
 * Threads: libfuse's worker threads call the handlers below concurrently.
 * `g.lock` protects the rules and counters; `g.cut` is held shared by
 * every operation on a file from its decision to the end of its backing
 * I/O and exclusively by the powercut command, so each operation happens
 * wholly before or wholly after the cut.  A blocked fsync holds neither.
 *
 * Errors: handlers return -errno, as libfuse wants.
 */
#define FUSE_USE_VERSION 31

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>      /* fuse_session_exited() */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <glib.h>

#include "faultfs-rule.h"

#define CTL_NAME "/.faultfs"
#define MAX_RULES 64
#define SECTOR 512

struct rule {
    struct ff_cmd cmd;          /* after/bytes/count count down */
    uint64_t injected;
};

/*
 * A backing file with sectors written since its last successful fsync
 * (the track command): their old contents, which a powercut with lose=
 * may put back.  Found by inode; lives until unmount.
 */
struct tracked {
    dev_t dev;
    ino_t ino;
    int fd;                     /* our own dup of a backing descriptor */
    GHashTable *pre;            /* sector (guint64 *) -> struct pre * */
};

struct pre {
    uint64_t gen;               /* g.gen when it was saved */
    uint8_t data[SECTOR];
};

/* An open file: ours to free in release. */
struct ff_file {
    int fd;                     /* on BACKING; -1 for the control file */
    char *rel;                  /* path below the mount, no leading '/' */
    char *status;               /* control file: the report, made at open */
    size_t status_len;
};

static struct {
    int bfd;                    /* BACKING, O_PATH */
    pthread_rwlock_t cut;
    pthread_mutex_t lock;
    struct rule rules[MAX_RULES];
    int nrules;
    bool powercut;
    bool torn_done;             /* the torn write has happened */
    uint64_t rng;
    uint64_t injected[FF_KINDS];
    uint64_t ops_read, ops_write, ops_fsync;
    uint64_t torn, torn_bytes, dropped, blocked;

    /* track: under track_lock (taken after cut, never with lock) */
    pthread_mutex_t track_lock;
    char tracks[MAX_RULES][FF_GLOB_MAX];    /* under lock */
    int ntracks;
    GPtrArray *tracked;         /* struct tracked * */
    uint64_t gen;               /* bumped when an fsync starts */
    uint64_t lost, kept;        /* sectors reverted, kept at the cut */
} g = {
    .bfd = -1,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .track_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- helpers ----------------------------------------------------------- */

static const char *rel_of(const char *path)
{
    return path[1] ? path + 1 : ".";
}

static struct ff_file *ff_of(struct fuse_file_info *fi)
{
    return (struct ff_file *)(uintptr_t)fi->fh;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * The rule of @kind that fires for an operation of @len bytes at @off on
 * @rel; counts it down and counts the fault.  Needs g.lock.  For enospc,
 * only operations that end beyond the quota are candidates.
 */
static struct rule *rule_fires(enum ff_kind kind, const char *rel,
                               uint64_t off, uint64_t len)
{
    for (int i = 0; i < g.nrules; i++) {
        struct rule *r = &g.rules[i];
        struct ff_cmd *c = &r->cmd;

        if (c->kind != kind || !ff_match(c->glob, rel)) {
            continue;
        }
        if (c->has_quota && off + len <= c->quota) {
            continue;
        }
        if (c->count && r->injected >= c->count) {
            continue;           /* spent */
        }
        if (c->after > 0 || c->bytes > 0) {
            c->after -= c->after > 0;
            c->bytes -= c->bytes < len ? c->bytes : len;
            continue;
        }
        r->injected++;
        g.injected[kind]++;
        return r;
    }
    return NULL;
}

/* The fault for an operation of @kind (and, for writes, enospc), or 0;
 * the firing rule's lose= in @lose. */
static int check_lose(enum ff_kind kind, const char *rel, uint64_t off,
                      uint64_t len, uint64_t *lose)
{
    struct rule *r = NULL;
    int ret = 0;

    pthread_mutex_lock(&g.lock);
    if (kind == FF_EIO_WRITE && (r = rule_fires(FF_ENOSPC, rel, off, len))) {
        ret = -ENOSPC;
    } else if (kind != FF_ENOSPC && (r = rule_fires(kind, rel, off, len))) {
        ret = -EIO;
    } else if (kind == FF_ENOSPC &&
               (r = rule_fires(FF_ENOSPC, rel, off, len))) {
        ret = -ENOSPC;
    }
    *lose = r ? r->cmd.lose : 0;
    pthread_mutex_unlock(&g.lock);
    return ret;
}

static int check(enum ff_kind kind, const char *rel, uint64_t off,
                 uint64_t len)
{
    uint64_t lose;

    return check_lose(kind, rel, off, len, &lose);
}

/* Metadata changes after the cut fail: nothing may reach BACKING. */
static int cut_meta(void)
{
    bool cut;

    pthread_mutex_lock(&g.lock);
    cut = g.powercut;
    g.dropped += cut;
    pthread_mutex_unlock(&g.lock);
    return cut ? -EIO : 0;
}

/*
 * After the cut an fsync must never say the data is safe: wait until the
 * filesystem goes away (the process above is killed meanwhile), then
 * fail.  Holds no lock while it waits.
 */
static int block_forever(void)
{
    struct fuse_session *se = fuse_get_session(fuse_get_context()->fuse);

    pthread_mutex_lock(&g.lock);
    g.blocked++;
    pthread_mutex_unlock(&g.lock);
    while (!fuse_session_exited(se)) {
        usleep(20000);
    }
    return -EIO;
}

/* ---- the volatile cache (track, powercut lose=) ------------------------ */

static bool is_tracked(const char *rel)
{
    bool yes = false;

    pthread_mutex_lock(&g.lock);
    for (int i = 0; i < g.ntracks && !yes; i++) {
        yes = ff_match(g.tracks[i], rel);
    }
    pthread_mutex_unlock(&g.lock);
    return yes;
}

/* The record of @fd's inode; NULL if it cannot be made.  Needs
 * track_lock. */
static struct tracked *tracked_get(int fd, bool create)
{
    struct tracked *t;
    struct stat st;

    if (fstat(fd, &st) < 0) {
        return NULL;
    }
    for (guint i = 0; i < g.tracked->len; i++) {
        t = g.tracked->pdata[i];
        if (t->dev == st.st_dev && t->ino == st.st_ino) {
            return t;
        }
    }
    if (!create) {
        return NULL;
    }
    t = g_new0(struct tracked, 1);
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    t->fd = dup(fd);
    t->pre = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                   g_free);
    g_ptr_array_add(g.tracked, t);
    return t;
}

/* Save the old contents of the sectors a write of @size at @off will
 * change, those not saved since the last fsync.  Needs track_lock. */
static void save_old(int fd, size_t size, off_t off)
{
    struct tracked *t = tracked_get(fd, true);
    uint64_t first = off / SECTOR, end = (off + size + SECTOR - 1) / SECTOR;

    if (!t || t->fd < 0) {
        return;
    }
    for (uint64_t s = first; s < end; s++) {
        struct pre *p;
        ssize_t n;

        if (g_hash_table_contains(t->pre, &s)) {
            continue;
        }
        p = g_new0(struct pre, 1);
        p->gen = g.gen;
        n = pread(t->fd, p->data, SECTOR, s * SECTOR);
        if (n < 0) {
            n = 0;
        }
        memset(p->data + n, 0, SECTOR - n);     /* past the end: zeros */
        g_hash_table_insert(t->pre, g_memdup2(&s, sizeof(s)), p);
    }
}

static gboolean saved_before(gpointer key, gpointer value, gpointer gen)
{
    (void)key;
    return ((struct pre *)value)->gen <= *(uint64_t *)gen;
}

/* An fsync of @fd that started at generation @gen succeeded: what was
 * written before it is safe. */
static void synced(int fd, uint64_t gen)
{
    struct tracked *t;

    pthread_mutex_lock(&g.track_lock);
    t = tracked_get(fd, false);
    if (t) {
        g_hash_table_foreach_remove(t->pre, saved_before, &gen);
    }
    pthread_mutex_unlock(&g.track_lock);
}

static uint64_t sync_start(void)
{
    uint64_t gen;

    pthread_mutex_lock(&g.track_lock);
    gen = g.gen++;
    pthread_mutex_unlock(&g.track_lock);
    return gen;
}

/* Each unsynced sector of @t goes back with probability @lose %.  Needs
 * track_lock, and no write to @t in flight. */
static void lose_file(struct tracked *t, uint64_t lose, uint64_t *rng)
{
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, t->pre);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (splitmix64(rng) % 100 < lose &&
            pwrite(t->fd, ((struct pre *)v)->data, SECTOR,
                   *(uint64_t *)k * SECTOR) == SECTOR) {
            g.lost++;
        } else {
            g.kept++;
        }
    }
    g_hash_table_remove_all(t->pre);
}

/* The cut.  Needs g.cut exclusively (no write half done) and
 * track_lock. */
static void lose_unsynced(uint64_t lose, uint64_t *rng)
{
    for (guint i = 0; i < g.tracked->len; i++) {
        lose_file(g.tracked->pdata[i], lose, rng);
    }
}

/*
 * An fsync of @fd failed with lose=@lose: the kernel may drop the dirty
 * pages whose writeback failed.  Writes to the file racing with the
 * fsync would be lost too, which is what the kernel does as well.
 */
static void fsync_failed(int fd, uint64_t lose)
{
    static uint64_t rng = 0x6673796e63ULL;
    struct tracked *t;

    pthread_mutex_lock(&g.track_lock);
    t = tracked_get(fd, false);
    if (t && lose > 0) {
        lose_file(t, lose, &rng);
    }
    pthread_mutex_unlock(&g.track_lock);
}

/* ---- the control file -------------------------------------------------- */

static void appendf(char **buf, size_t *len, size_t *cap, const char *fmt,
                    ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) {
            *len += n;
            return;
        }
        *cap *= 2;
        *buf = realloc(*buf, *cap);
        if (!*buf) {
            abort();            /* a test tool: no memory is fatal */
        }
    }
}

static char *status_report(size_t *len)
{
    size_t cap = 1024;
    char *buf = malloc(cap);
    char line[FF_LINE_MAX + 64];

    if (!buf) {
        abort();
    }
    *len = 0;
    buf[0] = '\0';
    pthread_mutex_lock(&g.lock);
    for (int i = 0; i < g.nrules; i++) {
        ff_format(&g.rules[i].cmd, line, sizeof(line));
        appendf(&buf, len, &cap, "rule %s injected=%" PRIu64 "\n", line,
                g.rules[i].injected);
    }
    for (int i = 0; i < g.ntracks; i++) {
        appendf(&buf, len, &cap, "track %s\n", g.tracks[i]);
    }
    for (int k = 0; k < FF_KINDS; k++) {
        appendf(&buf, len, &cap, "injected %s %" PRIu64 "\n",
                ff_kind_name(k), g.injected[k]);
    }
    appendf(&buf, len, &cap, "ops read %" PRIu64 "\nops write %" PRIu64
            "\nops fsync %" PRIu64 "\n", g.ops_read, g.ops_write,
            g.ops_fsync);
    appendf(&buf, len, &cap, "powercut %d torn=%" PRIu64 " torn_bytes=%"
            PRIu64 " dropped=%" PRIu64 " blocked=%" PRIu64,
            g.powercut, g.torn, g.torn_bytes, g.dropped, g.blocked);
    pthread_mutex_unlock(&g.lock);
    pthread_mutex_lock(&g.track_lock);
    appendf(&buf, len, &cap, " lost=%" PRIu64 " kept=%" PRIu64 "\n",
            g.lost, g.kept);
    pthread_mutex_unlock(&g.track_lock);
    return buf;
}

static int run_command(const struct ff_cmd *c)
{
    int ret = 0;

    if (c->verb == FF_POWERCUT) {
        /* exclusive: no write is half-way through its decision */
        bool first;
        uint64_t rng = c->seed ^ 0x6c6f7365ULL;

        pthread_rwlock_wrlock(&g.cut);
        pthread_mutex_lock(&g.lock);
        first = !g.powercut;
        if (first) {
            g.powercut = true;
            g.rng = c->seed;
        }
        pthread_mutex_unlock(&g.lock);
        if (first) {
            pthread_mutex_lock(&g.track_lock);
            lose_unsynced(c->lose, &rng);
            pthread_mutex_unlock(&g.track_lock);
        }
        pthread_rwlock_unlock(&g.cut);
        return 0;
    }
    pthread_mutex_lock(&g.lock);
    if (c->verb == FF_ADD) {
        if (g.nrules == MAX_RULES) {
            ret = -ENOSPC;
        } else {
            g.rules[g.nrules].cmd = *c;
            g.rules[g.nrules++].injected = 0;
        }
    } else if (c->verb == FF_TRACK) {
        if (g.ntracks == MAX_RULES) {
            ret = -ENOSPC;
        } else {
            memcpy(g.tracks[g.ntracks++], c->glob, FF_GLOB_MAX);
        }
    } else if (c->verb == FF_CLEAR) {
        int n = 0;

        for (int i = 0; i < g.nrules; i++) {
            if (c->glob[0] && strcmp(c->glob, g.rules[i].cmd.glob)) {
                g.rules[n++] = g.rules[i];
            }
        }
        g.nrules = n;
        n = 0;
        for (int i = 0; i < g.ntracks; i++) {
            if (c->glob[0] && strcmp(c->glob, g.tracks[i])) {
                memcpy(g.tracks[n++], g.tracks[i], FF_GLOB_MAX);
            }
        }
        g.ntracks = n;
    }
    pthread_mutex_unlock(&g.lock);
    return ret;
}

/* One write(2) to the control file carries whole lines. */
static int ctl_write(const char *buf, size_t size)
{
    size_t i = 0;

    while (i < size) {
        const char *nl = memchr(buf + i, '\n', size - i);
        size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : size - i;
        struct ff_cmd c;
        int ret = ff_parse(buf + i, n, &c);

        if (ret == 0) {
            ret = run_command(&c);
        }
        if (ret < 0) {
            return ret;
        }
        i += n;
    }
    return size;
}

/* ---- file operations --------------------------------------------------- */

static int ff_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi)
{
    if (!strcmp(path, CTL_NAME)) {
        memset(st, 0, sizeof(*st));
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        return 0;
    }
    if (fi && ff_of(fi)->fd >= 0) {
        return fstat(ff_of(fi)->fd, st) < 0 ? -errno : 0;
    }
    return fstatat(g.bfd, rel_of(path), st, AT_SYMLINK_NOFOLLOW) < 0 ?
           -errno : 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    int fd = openat(g.bfd, rel_of(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *de;
    DIR *d;

    (void)off, (void)fi, (void)flags;
    if (fd < 0 || !(d = fdopendir(fd))) {
        int e = errno;

        if (fd >= 0) {
            close(fd);
        }
        return -e;
    }
    while ((de = readdir(d))) {
        if (filler(buf, de->d_name, NULL, 0, 0)) {
            break;
        }
    }
    closedir(d);
    return 0;
}

static int new_file(const char *path, int fd, struct fuse_file_info *fi)
{
    struct ff_file *f = calloc(1, sizeof(*f));

    if (!f || !(f->rel = strdup(path + 1))) {
        free(f);
        if (fd >= 0) {
            close(fd);
        }
        return -ENOMEM;
    }
    f->fd = fd;
    fi->fh = (uintptr_t)f;
    fi->direct_io = 1;          /* no page cache above us */
    fi->keep_cache = 0;
    return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
    int fd, ret;

    if (!strcmp(path, CTL_NAME)) {
        ret = new_file(path, -1, fi);
        if (ret == 0) {
            ff_of(fi)->status = status_report(&ff_of(fi)->status_len);
        }
        return ret;
    }
    if ((fi->flags & O_TRUNC) && cut_meta() < 0) {
        return -EIO;
    }
    /* the caller's O_DIRECT is ours to honour, not BACKING's */
    fd = openat(g.bfd, rel_of(path), (fi->flags & ~O_DIRECT) | O_CLOEXEC);
    return fd < 0 ? -errno : new_file(path, fd, fi);
}

static int ff_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int fd;

    if (cut_meta() < 0) {
        return -EIO;
    }
    fd = openat(g.bfd, rel_of(path), (fi->flags & ~O_DIRECT) | O_CLOEXEC,
                mode);
    return fd < 0 ? -errno : new_file(path, fd, fi);
}

static int ff_release(const char *path, struct fuse_file_info *fi)
{
    struct ff_file *f = ff_of(fi);

    (void)path;
    if (f->fd >= 0) {
        close(f->fd);
    }
    free(f->status);
    free(f->rel);
    free(f);
    return 0;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    struct ff_file *f = ff_of(fi);
    ssize_t n;
    int ret;

    (void)path;
    if (f->fd < 0) {
        if ((size_t)off >= f->status_len) {
            return 0;
        }
        n = f->status_len - off < size ? f->status_len - off : size;
        memcpy(buf, f->status + off, n);
        return n;
    }
    pthread_mutex_lock(&g.lock);
    g.ops_read++;
    pthread_mutex_unlock(&g.lock);
    ret = check(FF_EIO_READ, f->rel, off, size);
    if (ret < 0) {
        return ret;
    }
    n = pread(f->fd, buf, size, off);
    return n < 0 ? -errno : n;
}

/*
 * How many bytes of a write reach BACKING: all of it, or after the cut a
 * seeded prefix of whole sectors (fewer than all) of the first write and
 * nothing of the later ones.  Needs g.lock.
 */
static size_t cut_keep(size_t size)
{
    size_t sectors = size / SECTOR, keep;

    if (!g.powercut) {
        return size;
    }
    if (g.torn_done) {
        g.dropped++;
        return 0;
    }
    g.torn_done = true;
    keep = sectors > 1 ? (splitmix64(&g.rng) % sectors) * SECTOR : 0;
    g.torn++;
    g.torn_bytes = keep;
    return keep;
}

static int ff_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct ff_file *f = ff_of(fi);
    size_t keep;
    ssize_t n = 0;
    int ret;

    (void)path;
    if (f->fd < 0) {
        return ctl_write(buf, size);
    }
    pthread_rwlock_rdlock(&g.cut);
    pthread_mutex_lock(&g.lock);
    g.ops_write++;
    keep = cut_keep(size);
    pthread_mutex_unlock(&g.lock);
    ret = keep < size ? 0 : check(FF_EIO_WRITE, f->rel, off, size);
    if (ret == 0 && keep == size && is_tracked(f->rel)) {
        /* old contents saved and write done as one step, so that no
         * fsync falls in between */
        pthread_mutex_lock(&g.track_lock);
        save_old(f->fd, size, off);
        n = pwrite(f->fd, buf, size, off);
        ret = n < 0 ? -errno : 0;
        pthread_mutex_unlock(&g.track_lock);
    } else if (ret == 0 && keep > 0) {
        n = pwrite(f->fd, buf, keep, off);
        ret = n < 0 ? -errno : 0;
    }
    pthread_rwlock_unlock(&g.cut);
    if (ret < 0) {
        return ret;
    }
    return keep < size ? (int)size : (int)n;
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    struct ff_file *f = ff_of(fi);
    uint64_t lose;
    bool cut;
    int ret;

    (void)path;
    if (f->fd < 0) {
        return 0;
    }
    pthread_rwlock_rdlock(&g.cut);
    pthread_mutex_lock(&g.lock);
    g.ops_fsync++;
    cut = g.powercut;
    pthread_mutex_unlock(&g.lock);
    if (cut) {
        pthread_rwlock_unlock(&g.cut);
        return block_forever();
    }
    ret = check_lose(FF_EIO_FSYNC, f->rel, 0, 0, &lose);
    if (ret < 0) {
        fsync_failed(f->fd, lose);
    } else {
        uint64_t gen = sync_start();

        if ((datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0) {
            ret = -errno;
        } else {
            synced(f->fd, gen);
        }
    }
    pthread_rwlock_unlock(&g.cut);
    return ret;
}

static int ff_fsyncdir(const char *path, int datasync,
                       struct fuse_file_info *fi)
{
    int fd, ret = 0;
    bool cut;

    (void)fi;
    pthread_mutex_lock(&g.lock);
    cut = g.powercut;
    pthread_mutex_unlock(&g.lock);
    if (cut) {
        return block_forever();
    }
    fd = openat(g.bfd, rel_of(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (datasync ? fdatasync(fd) : fsync(fd)) < 0) {
        ret = -errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    return ret;
}

static int ff_fallocate(const char *path, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi)
{
    struct ff_file *f = ff_of(fi);
    int ret;

    (void)path;
    if (f->fd < 0) {
        return -EOPNOTSUPP;
    }
    if (cut_meta() < 0) {
        return -EIO;
    }
    ret = check(FF_ENOSPC, f->rel, off, len);
    if (ret == 0 && fallocate(f->fd, mode, off, len) < 0) {
        ret = -errno;
    }
    return ret;
}

static int ff_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    int fd, ret = 0;

    if (!strcmp(path, CTL_NAME)) {
        return 0;               /* `echo CMD > .faultfs` truncates first */
    }
    if (cut_meta() < 0) {
        return -EIO;
    }
    if (fi && ff_of(fi)->fd >= 0) {
        return ftruncate(ff_of(fi)->fd, size) < 0 ? -errno : 0;
    }
    fd = openat(g.bfd, rel_of(path), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, size) < 0) {
        ret = -errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    return ret;
}

static int ff_flock(const char *path, struct fuse_file_info *fi, int op)
{
    struct ff_file *f = ff_of(fi);

    (void)path;
    if (f->fd < 0) {
        return 0;
    }
    return flock(f->fd, op) < 0 ? -errno : 0;
}

static int ff_unlink(const char *path)
{
    if (cut_meta() < 0) {
        return -EIO;
    }
    return unlinkat(g.bfd, rel_of(path), 0) < 0 ? -errno : 0;
}

static int ff_mkdir(const char *path, mode_t mode)
{
    if (cut_meta() < 0) {
        return -EIO;
    }
    return mkdirat(g.bfd, rel_of(path), mode) < 0 ? -errno : 0;
}

static int ff_rmdir(const char *path)
{
    if (cut_meta() < 0) {
        return -EIO;
    }
    return unlinkat(g.bfd, rel_of(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int ff_rename(const char *from, const char *to, unsigned int flags)
{
    if (cut_meta() < 0) {
        return -EIO;
    }
    return renameat2(g.bfd, rel_of(from), g.bfd, rel_of(to), flags) < 0 ?
           -errno : 0;
}

static int ff_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)fi;
    if (cut_meta() < 0) {
        return -EIO;
    }
    return fchmodat(g.bfd, rel_of(path), mode, 0) < 0 ? -errno : 0;
}

static int ff_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi)
{
    (void)fi;
    if (!strcmp(path, CTL_NAME)) {
        return 0;
    }
    if (cut_meta() < 0) {
        return -EIO;
    }
    return utimensat(g.bfd, rel_of(path), tv, AT_SYMLINK_NOFOLLOW) < 0 ?
           -errno : 0;
}

static int ff_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return fstatvfs(g.bfd, st) < 0 ? -errno : 0;
}

static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    /* nothing cached in the kernel: sizes and names come from BACKING */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->direct_io = 1;
    cfg->hard_remove = 1;       /* unlink an open file for real */
    return NULL;
}

static const struct fuse_operations ff_ops = {
    .init = ff_init,
    .getattr = ff_getattr,
    .readdir = ff_readdir,
    .open = ff_open,
    .create = ff_create,
    .release = ff_release,
    .read = ff_read,
    .write = ff_write,
    .fsync = ff_fsync,
    .fsyncdir = ff_fsyncdir,
    .fallocate = ff_fallocate,
    .truncate = ff_truncate,
    .flock = ff_flock,
    .unlink = ff_unlink,
    .mkdir = ff_mkdir,
    .rmdir = ff_rmdir,
    .rename = ff_rename,
    .chmod = ff_chmod,
    .utimens = ff_utimens,
    .statfs = ff_statfs,
};

int main(int argc, char **argv)
{
    pthread_rwlockattr_t ra;

    if (argc < 3) {
        fprintf(stderr, "usage: faultfs BACKING MOUNTPOINT [FUSE options]\n");
        return 2;
    }
    g.bfd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (g.bfd < 0) {
        fprintf(stderr, "faultfs: cannot open %s: %s\n", argv[1],
                strerror(errno));
        return 1;
    }
    /* a powercut must not wait behind a stream of writes */
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&g.cut, &ra);
    g.tracked = g_ptr_array_new();
    argv[1] = argv[0];          /* fuse_main sees: faultfs MOUNTPOINT ... */
    return fuse_main(argc - 1, argv + 1, &ff_ops, NULL);
}
