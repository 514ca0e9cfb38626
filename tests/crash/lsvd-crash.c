/*
 * lsvd-crash.c - crash-consistency test of lsvd-core: kill -9 a writer (or
 * the qemu-storage-daemon under it) at random points, recover the volume,
 * and check what survived.
 *
 *   lsvd-crash run --seed S --log FILE [--first-id N] [--depth D]
 *                  {VOLUME | --nbd SOCKET [--export NAME]}
 *       Issue a seeded, endless stream of writes, write-zeroes and flushes
 *       (through NBD also discards), up to D (default and at most
 *       MAX_INFLIGHT) at a time, until the process is killed or, through
 *       NBD, the connection dies (exit status 3).  Every event is appended
 *       to FILE.  The transports: VOLUME opened through the library's
 *       asynchronous API (configuration from $LSVD_CONF), or an NBD export
 *       on a unix socket through libnbd (export name default "v").
 *   lsvd-crash verify --mode a|b --log FILE [--base FILE] [--save-base FILE]
 *                     [--order prefix|hb] {[--rdonly] VOLUME |
 *                     --nbd SOCKET [--export NAME]}
 *       Read all of the volume (opening it through the library is the
 *       crash recovery; through NBD the server has recovered it) and check
 *       its contents against the last run in FILE, starting from the base
 *       image (all zeros without --base).  Mode b's rule: --order prefix
 *       (the default for VOLUME) or hb (the default for --nbd), see
 *       check_b() and check_hb().  Prints one verdict line; exit status 0:
 *       the guarantee holds (and the image is saved with --save-base); 1:
 *       it does not (the first violating sectors are listed); 2: any other
 *       error, such as an export that cannot be read.  --rdonly opens the
 *       volume read-only, which changes nothing on disk.
 *   lsvd-crash loop --mode a|b|x --points N --seed S [--chain K]
 *                   [--keep-going] [--dir DIR] [--keep] [--min-ms MS]
 *                   [--max-ms MS] [-v]
 *                   [--qsd QEMU-STORAGE-DAEMON [--s3-conf FILE] [--depth D]
 *                    [--duration SECONDS]]
 *       The driver.  Without --qsd, for each crash point i: `run --seed
 *       S+i` killed with SIGKILL after a seeded 20..400 ms, in mode b the
 *       cache directory deleted, then `verify`; see crash_point().  With
 *       --qsd, the volume is served by qemu-storage-daemon over NBD, the
 *       writer is `run --nbd`, the daemon is what gets SIGKILL, and the
 *       recovery is its restart; on dir:// (default) or on s3:// with the
 *       [backend] of --s3-conf (an RGW's lsvd.conf, scripts/rgw.sh) under
 *       a fresh key prefix; see crash_point_qsd().  Mode x alternates a
 *       and b from one volume (chain) to the next; --duration stops after
 *       that many seconds (the soak test, printing running counts every 30
 *       s). A volume serves K consecutive points (default 4), then a fresh
 *       one is made. Ends with a summary and "N passed, M failed".
 *   lsvd-crash selftest
 *       The checks against hand-made histories, with known answers.
 *
 * Driven by scripts/crash.sh [--transport lib|nbd] [--backend dir|s3] N
 * (make crash), scripts/soak.sh (make soak) and scripts/check.sh crash and
 * s3 (make check).
 *
 * The guarantees checked (docs/design.md):
 *   (a) cache kept: let F be the newest flush that completed with 0.  Every
 *       write acknowledged with 0 before F was submitted is readable, and
 *       every sector holds either zero (if no write covering it was made
 *       durable, or a later discard covered it) or the data of a write
 *       that covered it and is not older than the newest durable one.
 *   (b) cache lost, library transport: there is a P such that the volume
 *       equals writes 1..P (write-zeroes included) applied in submission
 *       order (the library journals requests in the order they are
 *       submitted).
 *   (b) cache lost, through NBD: QEMU may pass concurrent requests to lsvd
 *       in another order, so the rule is the weaker one of check_hb(): the
 *       volume equals the requests of a set closed downward under
 *       happens-before applied in that order (a write is seen whole or not
 *       at all; a write-zeroes or discard still in flight may have zeroed
 *       any part of its range).
 *   Discards (NBD trim; the daemon runs with discard=unmap, else QEMU would
 *   drop them) are checked as zeros, like write-zeroes: lsvd logs both as
 *   ZERO extents and reads them back as zeros (docs/qemu.md), so a
 *   discarded sector holding its old data is reported.
 *
 * Sector stamps.  Every 512-byte sector a write puts down is
 *   bytes 0..7    the write's id            (u64, host order)
 *   bytes 8..15   the sector's LBA          (u64)
 *   bytes 16..23  a checksum of the other 63 words
 *   bytes 24..511 fill derived from (seed, id, LBA): random words, or for
 *                 one write in four a repeated word, so that objects hold
 *                 both compressible and incompressible chunks
 * so the verifier knows exactly which write a sector came from and that
 * it is intact.  A stamped sector is never all zeros (ids start at 1).
 *
 * The log.  One line per event, appended with write(2) to an O_APPEND
 * descriptor under `lock`, so the file order is the real order of events.
 * A kill -9 loses nothing already written: the page cache survives the
 * process, so no fsync is needed.  The runs on one volume append to one
 * log, each starting with its H line:
 *   H seed S size BYTES    once per run, after the volume is open
 *   S id W|Z|D lba sectors before a write (W), write-zeroes (Z) or
 *                          discard (D) is submitted
 *   C id ret               when it completed (from the callback)
 *   FS id                  before a flush is submitted
 *   FC id ret              when it completed
 * A request is logged before it is submitted and its completion after the
 * callback ran, so the log never claims more than happened.  Ids count
 * every request (flushes too) from 1 across the runs of a log; "write
 * #k" in the verdicts means the k-th S line.
 *
 * Threads: `run` has the submitting (main) thread and the library's
 * callback thread; struct runner is protected by its `lock`.  Through NBD
 * there is one thread: libnbd runs the callbacks inside nbd_poll().
 * `verify` and `loop` are single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <libnbd.h>

#include "lsvd.h"

#define SECTOR LSVD_SECTOR_SIZE
#define WORDS (SECTOR / 8)
#define MAX_INFLIGHT 8
#define MAX_WRITE_SECTORS 512           /* 256 KiB */
#define MIN_ZERO_SECTORS 8              /* 4 KiB */
#define MAX_ZERO_SECTORS 2048           /* 1 MiB */
#define HOT_SECTORS 16384               /* 8 MiB: where most I/O goes */
#define VOLUME_NAME "crash"
#define VOLUME_SIZE (64ULL << 20)

/* ---- small helpers ------------------------------------------------------ */

static const char *prog = "lsvd-crash";

static void die(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform value in [0, n), n > 0. */
static uint64_t rnd(uint64_t *state, uint64_t n)
{
    return splitmix64(state) % n;
}

/* A value in [lo, hi], roughly uniform in its logarithm. */
static uint64_t rnd_log(uint64_t *state, uint64_t lo, uint64_t hi)
{
    int blo = 63 - __builtin_clzll(lo), bhi = 63 - __builtin_clzll(hi);
    int b = blo + rnd(state, bhi - blo + 1);
    uint64_t v = (1ULL << b) + rnd(state, 1ULL << b);

    return v < lo ? lo : v > hi ? hi : v;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue;
    }
}

static void log_to_stderr(void *arg, enum lsvd_log_level level,
                          const char *msg)
{
    const char *who = arg;

    fprintf(stderr, "%s: lsvd %s: %s\n", who,
            level == LSVD_LOG_ERROR ? "error" :
            level == LSVD_LOG_WARNING ? "warning" : "info", msg);
}

/* Open the volume named on the command line with the LSVD_CONF config. */
static struct lsvd_volume *open_volume(const char *name, int flags)
{
    struct lsvd_config *cfg;
    struct lsvd_volume *vol;
    struct lsvd_err err = { "" };
    int ret;

    ret = lsvd_config_load(NULL, &cfg, &err);
    if (ret < 0) {
        die("%s", err.msg);
    }
    ret = lsvd_open(cfg, name, flags, &vol, &err);
    lsvd_config_free(cfg);
    if (ret < 0) {
        die("cannot open volume '%s': %s", name, err.msg);
    }
    return vol;
}

/* ---- sector stamps ------------------------------------------------------ */

static uint64_t stamp_sum(const uint64_t *w)
{
    uint64_t h = 0x6c73766463726173ULL;     /* "lsvdcras" */

    for (int i = 0; i < WORDS; i++) {
        if (i != 2) {
            h = (h ^ w[i]) * 0x100000001b3ULL;
            h ^= h >> 29;
        }
    }
    return h;
}

/* Write the stamp of write @id (of a run with @seed) for sector @lba. */
static void stamp_fill(uint64_t seed, uint64_t id, uint64_t lba, void *buf)
{
    uint64_t w[WORDS];
    uint64_t st = seed ^ (id * 0xd6e8feb86659fd93ULL) ^
                  (lba * 0xa0761d6478bd642fULL);

    w[0] = id;
    w[1] = lba;
    if (id % 4 == 0) {
        uint64_t v = splitmix64(&st);
        for (int i = 3; i < WORDS; i++) {
            w[i] = v;
        }
    } else {
        for (int i = 3; i < WORDS; i++) {
            w[i] = splitmix64(&st);
        }
    }
    w[2] = stamp_sum(w);
    memcpy(buf, w, SECTOR);
}

enum sector_kind {
    SK_ZERO,            /* all zeros */
    SK_STAMP,           /* an intact stamp of a write that covered it */
    SK_BAD_SUM,         /* not zero, checksum wrong: torn or foreign data */
    SK_BAD_LBA,         /* an intact stamp of another sector */
    SK_BAD_WRITE,       /* an intact stamp of a write that never covered it */
    SK_BAD_FILL,        /* checksum right, fill not what (seed, id) gives */
};

static const char *const sector_kind_name[] = {
    [SK_ZERO] = "zeros",
    [SK_STAMP] = "a stamp",
    [SK_BAD_SUM] = "garbage (checksum mismatch)",
    [SK_BAD_LBA] = "a stamp of another LBA (misplaced data)",
    [SK_BAD_WRITE] = "a stamp of a write that never covered it",
    [SK_BAD_FILL] = "a stamp with the wrong fill",
};

/*
 * Classify the sector @buf read at @lba: zeros, or a stamp that is intact
 * and in its place (SK_STAMP, *id set), or garbage.  The fill is checked
 * by stamp_fill_ok() once the caller knows which run wrote @id.
 */
static enum sector_kind stamp_parse(uint64_t lba, const void *buf,
                                    uint64_t *id, uint64_t *stamp_lba)
{
    uint64_t w[WORDS];
    uint64_t any = 0;

    memcpy(w, buf, SECTOR);
    for (int i = 0; i < WORDS; i++) {
        any |= w[i];
    }
    if (!any) {
        return SK_ZERO;
    }
    *id = w[0];
    *stamp_lba = w[1];
    if (stamp_sum(w) != w[2]) {
        return SK_BAD_SUM;
    }
    return w[1] == lba ? SK_STAMP : SK_BAD_LBA;
}

static bool stamp_fill_ok(uint64_t seed, uint64_t id, uint64_t lba,
                          const void *buf)
{
    uint8_t want[SECTOR];

    stamp_fill(seed, id, lba, want);
    return memcmp(buf, want, SECTOR) == 0;
}

/* ---- run: the writer ---------------------------------------------------- */

enum op_type { OP_WRITE, OP_ZERO, OP_TRIM, OP_FLUSH };

struct op {
    enum op_type type;
    uint64_t id;
    uint64_t lba;
    uint64_t sectors;
};

/* The seeded request stream; see gen_next(). */
struct gen {
    uint64_t rng;
    uint64_t vol_sectors;
    uint64_t next_id;
    int flush_in;           /* requests until the next flush */
    int phase;              /* 0 mixed, 1 tiny writes, 2 large writes */
    int phase_left;
    bool trims;             /* half the zeroing requests are discards */
};

/*
 * The next request.  Sizes: writes 512 B..256 KiB (log-uniform in the
 * mixed phase, 512 B..2 KiB in tiny phases, whose journal records take 4
 * to 16 times their data, 64..256 KiB in large phases, which fill batches
 * fast); write-zeroes 4 KiB..1 MiB, one request in ten.  Offsets: 70% in
 * the first HOT_SECTORS so overwrites are common, the rest anywhere.  A
 * flush every 10..30 requests.
 */
static void gen_next(struct gen *g, struct op *op)
{
    uint64_t hot = MIN(HOT_SECTORS, g->vol_sectors);

    op->id = g->next_id++;
    op->lba = 0;
    op->sectors = 0;
    if (--g->flush_in <= 0) {
        g->flush_in = 10 + rnd(&g->rng, 21);
        op->type = OP_FLUSH;
        return;
    }
    if (g->phase_left-- <= 0) {
        uint64_t r = rnd(&g->rng, 10);
        g->phase = r < 6 ? 0 : r < 8 ? 1 : 2;
        g->phase_left = 50 + rnd(&g->rng, 250);
    }
    if (rnd(&g->rng, 10) == 0) {
        /* (the library has no discard: its stream stays as it was) */
        op->type = g->trims && rnd(&g->rng, 2) ? OP_TRIM : OP_ZERO;
        op->sectors = rnd_log(&g->rng, MIN_ZERO_SECTORS, MAX_ZERO_SECTORS);
    } else {
        op->type = OP_WRITE;
        op->sectors = g->phase == 1 ? rnd_log(&g->rng, 1, 4) :
                      g->phase == 2 ? rnd_log(&g->rng, 128,
                                              MAX_WRITE_SECTORS) :
                      rnd_log(&g->rng, 1, MAX_WRITE_SECTORS);
    }
    op->sectors = MIN(op->sectors, g->vol_sectors);
    if (rnd(&g->rng, 10) < 7 && hot >= op->sectors) {
        op->lba = rnd(&g->rng, hot - op->sectors + 1);
    } else {
        op->lba = rnd(&g->rng, g->vol_sectors - op->sectors + 1);
    }
}

struct slot {
    struct runner *rn;
    bool busy;
    int err;                    /* NBD: failed with this errno, not logged */
    struct op op;
    struct iovec iov;
    uint8_t *buf;
};

struct runner {
    struct lsvd_volume *vol;    /* the library transport, or */
    struct nbd_handle *nbd;     /* the NBD transport */
    uint64_t seed;
    int log_fd;

    pthread_mutex_t lock;       /* protects everything below and log_fd */
    pthread_cond_t cond;        /* a slot was freed */
    struct slot slots[MAX_INFLIGHT];
    int inflight;
    int depth;                  /* requests in flight at most */
};

/* Append one line to the log.  Called with rn->lock held. */
static void log_line(struct runner *rn, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void log_line(struct runner *rn, const char *fmt, ...)
{
    char line[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* one write(2) per line: O_APPEND keeps the lines whole */
    if (n <= 0 || n >= (int)sizeof(line) || write(rn->log_fd, line, n) != n) {
        /* the log would claim less than happened: stop right here */
        fprintf(stderr, "%s: cannot write the log: %s\n", prog,
                strerror(errno));
        _exit(2);
    }
}

/* Log the completion of @s and free its slot.  Called with rn->lock held. */
static void slot_done(struct slot *s, int ret)
{
    struct runner *rn = s->rn;

    if (s->op.type == OP_FLUSH) {
        log_line(rn, "FC %" PRIu64 " %d\n", s->op.id, ret);
    } else {
        log_line(rn, "C %" PRIu64 " %d\n", s->op.id, ret);
    }
    if (ret < 0) {
        fprintf(stderr, "%s: request %" PRIu64 " failed: %s\n", prog,
                s->op.id, strerror(-ret));
    }
    s->busy = false;
    s->err = 0;
    rn->inflight--;
    pthread_cond_broadcast(&rn->cond);
}

/* Runs on the library's thread. */
static void run_done(void *arg, int ret)
{
    struct slot *s = arg;

    pthread_mutex_lock(&s->rn->lock);
    slot_done(s, ret);
    pthread_mutex_unlock(&s->rn->lock);
}

static bool overlaps(const struct op *a, const struct op *b)
{
    return a->type != OP_FLUSH && b->type != OP_FLUSH &&
           a->lba < b->lba + b->sectors && b->lba < a->lba + a->sectors;
}

/*
 * A free slot for @op, if one is free and no request in flight overlaps
 * @op; else NULL.  Called with rn->lock held.
 */
static struct slot *slot_find(struct runner *rn, const struct op *op)
{
    struct slot *free_slot = NULL;

    if (rn->inflight >= rn->depth) {
        return NULL;
    }
    for (int i = 0; i < MAX_INFLIGHT; i++) {
        struct slot *s = &rn->slots[i];
        if (!s->busy) {
            free_slot = free_slot ? free_slot : s;
        } else if (overlaps(&s->op, op)) {
            return NULL;
        }
    }
    return free_slot;
}

/* Take slot @s for @op and log the submission.  Called with rn->lock held. */
static void slot_take(struct runner *rn, struct slot *s, const struct op *op)
{
    static const char type[] = { [OP_WRITE] = 'W', [OP_ZERO] = 'Z',
                                 [OP_TRIM] = 'D' };

    s->busy = true;
    s->op = *op;
    rn->inflight++;
    if (op->type == OP_FLUSH) {
        log_line(rn, "FS %" PRIu64 "\n", op->id);
    } else {
        log_line(rn, "S %" PRIu64 " %c %" PRIu64 " %" PRIu64 "\n", op->id,
                 type[op->type], op->lba, op->sectors);
    }
}

/*
 * Library transport: wait for a free slot and for every in-flight request
 * that overlaps @op to complete, then take the slot and log the
 * submission.
 */
static struct slot *run_acquire(struct runner *rn, const struct op *op)
{
    struct slot *s;

    pthread_mutex_lock(&rn->lock);
    while (!(s = slot_find(rn, op))) {
        pthread_cond_wait(&rn->cond, &rn->lock);
    }
    slot_take(rn, s, op);
    pthread_mutex_unlock(&rn->lock);
    return s;
}

static void run_fill(struct runner *rn, struct slot *s)
{
    for (uint64_t i = 0; i < s->op.sectors; i++) {
        stamp_fill(rn->seed, s->op.id, s->op.lba + i, s->buf + i * SECTOR);
    }
}

/* The library transport: submit @s's request. */
static void lib_submit(struct runner *rn, struct slot *s)
{
    const struct op *op = &s->op;
    int ret;

    switch (op->type) {
    case OP_WRITE:
        run_fill(rn, s);
        s->iov = (struct iovec){ s->buf, op->sectors * SECTOR };
        ret = lsvd_aio_write(rn->vol, op->lba * SECTOR, &s->iov, 1,
                             run_done, s);
        break;
    case OP_ZERO:
        ret = lsvd_aio_write_zeroes(rn->vol, op->lba * SECTOR,
                                    op->sectors * SECTOR, run_done, s);
        break;
    case OP_FLUSH:
        ret = lsvd_aio_flush(rn->vol, run_done, s);
        break;
    default:
        die("request type %d on the library transport", op->type);
    }
    if (ret < 0) {
        /* refused at once: the callback will not run */
        run_done(s, ret);
    }
}

/* ---- the NBD transport -------------------------------------------------- */

/*
 * `run --nbd` and `verify --nbd` talk to an NBD export (qemu-storage-
 * daemon's, normally) through libnbd on one thread: requests go out with
 * nbd_aio_*, and their completion callbacks run inside nbd_poll().
 *
 * When the server dies (the loop kills it with SIGKILL), libnbd fails the
 * requests in flight.  Those did not complete: the server may or may not
 * have done them, and the log must not claim either, so a failed request
 * is only logged (as failed) once the connection is known to be alive;
 * on a dead connection the writer exits with status 3 at once.
 */
#define EXIT_CONN_LOST 3
#define EXIT_NO_CONN 4          /* `run` could not connect */

static struct nbd_handle *nbd_open(const char *sock, const char *export,
                                   int status)
{
    struct nbd_handle *nbd = nbd_create();

    if (!nbd || nbd_set_export_name(nbd, export) < 0 ||
        nbd_connect_unix(nbd, sock) < 0) {
        fprintf(stderr, "%s: cannot connect to export '%s' on %s: %s\n",
                prog, export, sock, nbd_get_error());
        exit(status);
    }
    return nbd;
}

static bool nbd_lost(struct nbd_handle *nbd)
{
    return nbd_aio_is_dead(nbd) > 0 || nbd_aio_is_closed(nbd) > 0;
}

static void nbd_exit_if_lost(struct runner *rn)
{
    if (nbd_lost(rn->nbd)) {
        fprintf(stderr, "%s: the connection is lost (%s): %d requests in "
                "flight, not logged\n", prog, nbd_get_error() ?: "no error",
                rn->inflight);
        _exit(EXIT_CONN_LOST);
    }
}

/* Runs inside nbd_poll() or an nbd_aio_* call, on the main thread. */
static int nbd_done(void *arg, int *error)
{
    struct slot *s = arg;

    if (*error) {
        /* maybe the connection died: see nbd_settle() */
        s->err = *error;
    } else {
        slot_done(s, 0);
    }
    return 1;
}

/* Log the requests that failed while the connection stayed up. */
static void nbd_settle(struct runner *rn)
{
    nbd_exit_if_lost(rn);
    for (int i = 0; i < MAX_INFLIGHT; i++) {
        struct slot *s = &rn->slots[i];
        if (s->busy && s->err) {
            slot_done(s, -s->err);
        }
    }
}

static void nbd_wait(struct runner *rn)
{
    if (nbd_poll(rn->nbd, -1) < 0) {
        nbd_exit_if_lost(rn);
        die("nbd_poll: %s", nbd_get_error());
    }
    nbd_settle(rn);
}

static void nbd_submit(struct runner *rn, struct slot *s)
{
    const struct op *op = &s->op;
    nbd_completion_callback cb = { .callback = nbd_done, .user_data = s };
    int64_t ret;

    switch (op->type) {
    case OP_WRITE:
        run_fill(rn, s);
        ret = nbd_aio_pwrite(rn->nbd, s->buf, op->sectors * SECTOR,
                             op->lba * SECTOR, cb, 0);
        break;
    case OP_ZERO:
        ret = nbd_aio_zero(rn->nbd, op->sectors * SECTOR, op->lba * SECTOR,
                           cb, 0);
        break;
    case OP_TRIM:
        ret = nbd_aio_trim(rn->nbd, op->sectors * SECTOR, op->lba * SECTOR,
                           cb, 0);
        break;
    default:
        ret = nbd_aio_flush(rn->nbd, cb, 0);
        break;
    }
    if (ret < 0) {
        /* refused at once: the callback will not run */
        nbd_exit_if_lost(rn);
        s->err = nbd_get_errno() ? nbd_get_errno() : EIO;
    }
    nbd_settle(rn);
}

static void nbd_check_export(struct nbd_handle *nbd, bool writer)
{
    if (nbd_get_size(nbd) <= 0 || nbd_get_size(nbd) % SECTOR) {
        die("the export's size %" PRId64 " is not a positive multiple of "
            "%d", nbd_get_size(nbd), SECTOR);
    }
    if (writer && (nbd_is_read_only(nbd) != 0 || nbd_can_flush(nbd) != 1 ||
                   nbd_can_trim(nbd) != 1 || nbd_can_zero(nbd) != 1)) {
        die("the export must be writable and take flush, trim and "
            "write-zeroes (read-only %d, flush %d, trim %d, zero %d)",
            nbd_is_read_only(nbd), nbd_can_flush(nbd), nbd_can_trim(nbd),
            nbd_can_zero(nbd));
    }
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "seed", required_argument, NULL, 's' },
        { "log", required_argument, NULL, 'l' },
        { "first-id", required_argument, NULL, 'i' },
        { "nbd", required_argument, NULL, 'n' },
        { "export", required_argument, NULL, 'e' },
        { "depth", required_argument, NULL, 'd' },
        { NULL, 0, NULL, 0 },
    };
    struct runner rn = { .log_fd = -1, .depth = MAX_INFLIGHT };
    struct gen g = { 0 };
    const char *log_path = NULL, *sock = NULL, *export = "v";
    uint64_t seed = 0, first_id = 1, size;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            seed = strtoull(optarg, NULL, 0);
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'i':
            first_id = strtoull(optarg, NULL, 0);
            break;
        case 'n':
            sock = optarg;
            break;
        case 'e':
            export = optarg;
            break;
        case 'd':
            rn.depth = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (!log_path || optind != argc - (sock ? 0 : 1) || first_id == 0 ||
        rn.depth < 1 || rn.depth > MAX_INFLIGHT) {
        die("usage: run --seed S --log FILE [--first-id N] [--depth 1..%d] "
            "VOLUME | --nbd SOCKET [--export NAME]", MAX_INFLIGHT);
    }
    lsvd_set_log_handler(log_to_stderr, "run");
    /* appended to: a log holds the runs since the volume was created */
    rn.log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                     0644);
    if (rn.log_fd < 0) {
        die("cannot open %s: %s", log_path, strerror(errno));
    }
    if (sock) {
        /* the daemon may have been killed before the handshake ended */
        rn.nbd = nbd_open(sock, export, EXIT_NO_CONN);
        nbd_check_export(rn.nbd, true);
        size = nbd_get_size(rn.nbd);
    } else {
        rn.vol = open_volume(argv[optind], 0);
        size = lsvd_size(rn.vol);
    }
    rn.seed = seed;
    pthread_mutex_init(&rn.lock, NULL);
    pthread_cond_init(&rn.cond, NULL);
    for (int i = 0; i < MAX_INFLIGHT; i++) {
        rn.slots[i].rn = &rn;
        rn.slots[i].buf = malloc(MAX_WRITE_SECTORS * SECTOR);
        if (!rn.slots[i].buf) {
            die("out of memory");
        }
    }

    g.rng = seed;
    g.vol_sectors = size / SECTOR;
    g.next_id = first_id;
    g.flush_in = 20;
    g.trims = sock != NULL;
    pthread_mutex_lock(&rn.lock);
    log_line(&rn, "H seed %" PRIu64 " size %" PRIu64 "\n", seed, size);
    pthread_mutex_unlock(&rn.lock);

    for (;;) {
        struct op op;
        struct slot *s;

        gen_next(&g, &op);
        if (rn.vol) {
            lib_submit(&rn, run_acquire(&rn, &op));
            continue;
        }
        /* one thread: the lock is only taken for log_line()'s sake */
        pthread_mutex_lock(&rn.lock);
        while (!(s = slot_find(&rn, &op))) {
            nbd_wait(&rn);
        }
        slot_take(&rn, s, &op);
        nbd_submit(&rn, s);
        pthread_mutex_unlock(&rn.lock);
    }
}

/* ---- the log, parsed ---------------------------------------------------- */

#define NO_LINE UINT64_MAX

struct wrec {                   /* one S line */
    uint64_t id;
    uint32_t run;               /* 1 for the first H line's run, ... */
    bool zero;                  /* write-zeroes or discard: reads as zeros */
    bool discard;
    uint64_t lba, sectors;
    uint64_t s_line;            /* line of its S */
    uint64_t c_line;            /* line of its C, or NO_LINE */
    int ret;
};

struct frec {                   /* one FS line */
    uint64_t id;
    uint32_t run;
    uint64_t s_line, c_line;
    int ret;
};

/*
 * The log of a volume: the runs since it was created, each starting with
 * its H line.  Runs 1..base_runs are summed up by a base image (see
 * below); the writes of the runs after it are w[first_new..nw).
 */
struct history {
    uint64_t size;              /* from the H lines; 0 if none */
    uint64_t *seeds;            /* seeds[r] of run r, 1-based */
    uint32_t runs;
    uint32_t base_runs;
    struct wrec *w;
    size_t nw, capw;
    size_t first_new;
    struct frec *f;
    size_t nf, capf;
    int64_t *windex;            /* id -> index in w[], or -1 */
    int64_t *findex;            /* id -> index in f[], or -1 */
    uint64_t max_id;
    uint64_t errors;            /* completions with ret != 0 */
    uint64_t bad_lines;
};

static void history_free(struct history *h)
{
    free(h->seeds);
    free(h->w);
    free(h->f);
    free(h->windex);
    free(h->findex);
}

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return p;
    }
    *cap = *cap ? *cap * 2 : 1024;
    p = realloc(p, *cap * elem);
    if (!p) {
        die("out of memory");
    }
    return p;
}

static void history_add_run(struct history *h, uint64_t seed, uint64_t size)
{
    h->seeds = realloc(h->seeds, (h->runs + 2) * sizeof(uint64_t));
    if (!h->seeds) {
        die("out of memory");
    }
    h->seeds[++h->runs] = seed;
    h->size = size;
}

static void history_add_write(struct history *h, uint64_t id, char type,
                              uint64_t lba, uint64_t sectors, uint64_t line)
{
    h->w = grow(h->w, &h->capw, h->nw, sizeof(*h->w));
    h->w[h->nw++] = (struct wrec){
        .id = id, .run = h->runs, .zero = type != 'W',
        .discard = type == 'D', .lba = lba, .sectors = sectors,
        .s_line = line, .c_line = NO_LINE,
    };
    h->max_id = MAX(h->max_id, id);
}

static void history_add_flush(struct history *h, uint64_t id, uint64_t line)
{
    h->f = grow(h->f, &h->capf, h->nf, sizeof(*h->f));
    h->f[h->nf++] = (struct frec){
        .id = id, .run = h->runs, .s_line = line, .c_line = NO_LINE,
    };
    h->max_id = MAX(h->max_id, id);
}

/* Index the ids and split off the runs after @base_runs. */
static void history_index(struct history *h, uint32_t base_runs)
{
    h->windex = malloc((h->max_id + 1) * sizeof(int64_t));
    h->findex = malloc((h->max_id + 1) * sizeof(int64_t));
    if (!h->windex || !h->findex) {
        die("out of memory");
    }
    for (uint64_t i = 0; i <= h->max_id; i++) {
        h->windex[i] = h->findex[i] = -1;
    }
    for (size_t i = 0; i < h->nw; i++) {
        h->windex[h->w[i].id] = i;
    }
    for (size_t i = 0; i < h->nf; i++) {
        h->findex[h->f[i].id] = i;
    }
    h->base_runs = base_runs;
    for (h->first_new = 0; h->first_new < h->nw &&
         h->w[h->first_new].run <= base_runs; h->first_new++) {
        continue;
    }
}

/* Record a completion; with @flush, of a flush. */
static void history_complete(struct history *h, bool flush, uint64_t id,
                             int ret, uint64_t line)
{
    int64_t *index = flush ? h->findex : h->windex;

    if (id > h->max_id || index[id] < 0) {
        h->bad_lines++;
    } else if (flush) {
        h->f[index[id]].c_line = line;
        h->f[index[id]].ret = ret;
    } else {
        h->w[index[id]].c_line = line;
        h->w[index[id]].ret = ret;
    }
    h->errors += ret != 0;
}

/*
 * Read the log at @path (a missing file is an empty log).  A last line
 * without its newline (the writer was killed inside write(2), which a
 * regular file should not allow, but this costs nothing) is ignored.
 */
static void history_load(const char *path, uint32_t base_runs,
                         struct history *h)
{
    FILE *f = fopen(path, "r");
    char line[256];
    uint64_t lineno = 0;

    memset(h, 0, sizeof(*h));
    if (!f && errno != ENOENT) {
        die("cannot open %s: %s", path, strerror(errno));
    }
    /* pass 1: runs and submissions, so that completions can find them */
    while (f && fgets(line, sizeof(line), f)) {
        uint64_t id, seed, size, lba, sectors;
        char type;

        lineno++;
        if (!strchr(line, '\n')) {
            break;
        }
        if (sscanf(line, "H seed %" SCNu64 " size %" SCNu64, &seed,
                   &size) == 2) {
            history_add_run(h, seed, size);
        } else if (sscanf(line, "S %" SCNu64 " %c %" SCNu64 " %" SCNu64,
                          &id, &type, &lba, &sectors) == 4 &&
                   (type == 'W' || type == 'Z' || type == 'D') && id > 0 &&
                   h->runs) {
            history_add_write(h, id, type, lba, sectors, lineno);
        } else if (sscanf(line, "FS %" SCNu64, &id) == 1 && id > 0 &&
                   h->runs) {
            history_add_flush(h, id, lineno);
        }
    }
    history_index(h, base_runs);

    /* pass 2: completions */
    if (f) {
        rewind(f);
    }
    lineno = 0;
    while (f && fgets(line, sizeof(line), f)) {
        uint64_t id;
        int ret;

        lineno++;
        if (!strchr(line, '\n')) {
            break;
        }
        if (sscanf(line, "C %" SCNu64 " %d", &id, &ret) == 2) {
            history_complete(h, false, id, ret, lineno);
        } else if (sscanf(line, "FC %" SCNu64 " %d", &id, &ret) == 2) {
            history_complete(h, true, id, ret, lineno);
        } else if (line[0] != 'H' && line[0] != 'S' && line[0] != 'F') {
            h->bad_lines++;
        }
    }
    if (f) {
        fclose(f);
    }
}

/* ---- images: what a volume holds, sector by sector ---------------------- */

#define V_ZERO (-1)             /* a sector's value: zeros */
#define V_BAD (-2)              /* garbage, see kind[] */

struct image {
    uint64_t sectors;
    int64_t *val;               /* index of a write in h->w, or V_* */
    uint8_t *kind;              /* enum sector_kind */
    uint64_t *raw_id;           /* the id found in a stamp */
    uint64_t *raw_lba;          /* the LBA found in a stamp */
};

static void image_alloc(struct image *im, uint64_t sectors)
{
    im->sectors = sectors;
    im->val = malloc(sectors * sizeof(*im->val));
    im->kind = calloc(sectors, 1);
    im->raw_id = calloc(sectors, sizeof(uint64_t));
    im->raw_lba = calloc(sectors, sizeof(uint64_t));
    if (!im->val || !im->kind || !im->raw_id || !im->raw_lba) {
        die("out of memory");
    }
    for (uint64_t s = 0; s < sectors; s++) {
        im->val[s] = V_ZERO;
    }
}

static void image_free(struct image *im)
{
    free(im->val);
    free(im->kind);
    free(im->raw_id);
    free(im->raw_lba);
}

/* Name the write the sector @buf at @lba came from. */
static void image_set(struct image *im, const struct history *h,
                      uint64_t lba, const uint8_t *buf)
{
    uint64_t id = 0, slba = 0;
    enum sector_kind k = stamp_parse(lba, buf, &id, &slba);
    int64_t wi = -1;

    if (k == SK_STAMP) {
        const struct wrec *w;
        wi = id <= h->max_id ? h->windex[id] : -1;
        w = wi >= 0 ? &h->w[wi] : NULL;
        if (!w || w->zero || lba < w->lba || lba >= w->lba + w->sectors) {
            k = SK_BAD_WRITE;
        } else if (!stamp_fill_ok(h->seeds[w->run], id, lba, buf)) {
            k = SK_BAD_FILL;
        }
    }
    im->kind[lba] = k;
    im->raw_id[lba] = id;
    im->raw_lba[lba] = slba;
    im->val[lba] = k == SK_ZERO ? V_ZERO : k == SK_STAMP ? wi : V_BAD;
}

/* Where verify reads: a volume through the library, or an NBD export. */
struct source {
    struct lsvd_volume *vol;
    struct nbd_handle *nbd;
    uint64_t size;
};

/* The NBD reads of one chunk: READS_IN_FLIGHT of READ_SIZE at a time. */
#define READ_SIZE (1 << 20)
#define READS_IN_FLIGHT 8

static int nbd_read_done(void *arg, int *error)
{
    int *failed = arg;

    if (*error) {
        *failed = *error;
    }
    return 1;
}

/*
 * Read [off, off+len) of the export with several requests in flight: on
 * s3://, with the cache lost, every read is a GET, and one at a time took
 * half a second per verify.
 */
static void nbd_read_chunk(struct nbd_handle *nbd, uint64_t off, uint8_t *buf,
                           size_t len)
{
    int failed = 0;
    size_t next = 0;

    while (!failed && (next < len || nbd_aio_in_flight(nbd) > 0)) {
        while (next < len && nbd_aio_in_flight(nbd) < READS_IN_FLIGHT) {
            size_t n = MIN(READ_SIZE, len - next);
            nbd_completion_callback cb = { .callback = nbd_read_done,
                                           .user_data = &failed };
            if (nbd_aio_pread(nbd, buf + next, n, off + next, cb, 0) < 0) {
                die("NBD read of %zu bytes at %" PRIu64 " failed: %s", n,
                    off + next, nbd_get_error());
            }
            next += n;
        }
        if (nbd_poll(nbd, -1) < 0) {
            die("NBD read: %s", nbd_get_error());
        }
    }
    if (failed) {
        die("NBD read of %zu bytes at %" PRIu64 " failed: %s", len, off,
            strerror(failed));
    }
}

static void source_read(const struct source *src, uint64_t off, void *buf,
                        size_t len)
{
    int ret;

    if (src->vol) {
        ret = lsvd_read(src->vol, off, buf, len);
        if (ret < 0) {
            die("read of %zu bytes at %" PRIu64 " failed: %s", len, off,
                strerror(-ret));
        }
    } else {
        nbd_read_chunk(src->nbd, off, buf, len);
    }
}

static void image_read(const struct source *src, const struct history *h,
                       struct image *im)
{
    const size_t chunk = 16 << 20;
    uint8_t *buf = malloc(chunk);
    uint64_t size = src->size;

    if (!buf) {
        die("out of memory");
    }
    image_alloc(im, size / SECTOR);
    for (uint64_t off = 0; off < size; off += chunk) {
        size_t len = MIN(chunk, size - off);

        source_read(src, off, buf, len);
        for (size_t i = 0; i < len / SECTOR; i++) {
            image_set(im, h, off / SECTOR + i, buf + i * SECTOR);
        }
    }
    free(buf);
}

/*
 * Base images.  In a chain of crashes on one volume, the image a verify
 * accepted is the starting point of the next run: it is as durable as
 * data that was never written since (the volume was recovered and read
 * back), so the next verify treats it as the state before the next run's
 * first write.  File: "LSVDBASE", u32 runs it sums up, u32 0, u64
 * sectors, then one u64 per sector: the id of the write it holds, or 0
 * for zeros.
 */
#define BASE_MAGIC "LSVDBASE"

static void base_save(const char *path, const struct history *h,
                      const struct image *im)
{
    uint32_t hdr32[2] = { h->runs, 0 };
    FILE *f = fopen(path, "w");

    if (!f) {
        die("cannot write %s: %s", path, strerror(errno));
    }
    fwrite(BASE_MAGIC, 8, 1, f);
    fwrite(hdr32, sizeof(hdr32), 1, f);
    fwrite(&im->sectors, 8, 1, f);
    for (uint64_t s = 0; s < im->sectors; s++) {
        uint64_t id = im->val[s] >= 0 ? h->w[im->val[s]].id : 0;
        fwrite(&id, 8, 1, f);
    }
    if (fclose(f) != 0) {
        die("cannot write %s: %s", path, strerror(errno));
    }
}

/* How many runs the base image at @path sums up. */
static uint32_t base_runs(const char *path)
{
    char magic[8];
    uint32_t hdr32[2];
    FILE *f = fopen(path, "r");

    if (!f || fread(magic, 8, 1, f) != 1 || memcmp(magic, BASE_MAGIC, 8) ||
        fread(hdr32, sizeof(hdr32), 1, f) != 1) {
        die("%s: not a base image", path);
    }
    fclose(f);
    return hdr32[0];
}

/* Load the base image at @path into @base: write indices or V_ZERO. */
static void base_load(const char *path, const struct history *h,
                      int64_t *base, uint64_t sectors)
{
    uint64_t n, id;
    FILE *f = fopen(path, "r");

    if (!f || fseek(f, 16, SEEK_SET) < 0 || fread(&n, 8, 1, f) != 1 ||
        n != sectors) {
        die("%s: not a base image of %" PRIu64 " sectors", path, sectors);
    }
    for (uint64_t s = 0; s < sectors; s++) {
        if (fread(&id, 8, 1, f) != 1) {
            die("%s: truncated", path);
        }
        if (id == 0) {
            base[s] = V_ZERO;
        } else if (id <= h->max_id && h->windex[id] >= 0 &&
                   h->w[h->windex[id]].run <= h->base_runs) {
            base[s] = h->windex[id];
        } else {
            die("%s: sector %" PRIu64 " holds id %" PRIu64 ", not a write "
                "of the runs before it", path, s, id);
        }
    }
    fclose(f);
}

/* ---- the checks --------------------------------------------------------- */

/* Violating sectors printed by verify (selftest prints none). */
static uint64_t max_reported = 5;

static void describe_write(const struct history *h, int64_t wi, char *out,
                           size_t len)
{
    const struct wrec *w;

    if (wi == V_ZERO) {
        snprintf(out, len, "zeros");
        return;
    }
    w = &h->w[wi];
    snprintf(out, len, "write #%" PRId64 " (id %" PRIu64 ", %c lba %" PRIu64
             "+%" PRIu64 ", %s%s)", wi + 1, w->id,
             w->discard ? 'D' : w->zero ? 'Z' : 'W',
             w->lba, w->sectors,
             w->c_line == NO_LINE ? "not acknowledged" :
             w->ret ? "failed" : "acknowledged",
             w->run <= h->base_runs ? ", an earlier run" : "");
}

static void describe_sector(const struct history *h, const struct image *im,
                            uint64_t lba, char *out, size_t len)
{
    if (im->val[lba] != V_BAD) {
        describe_write(h, im->val[lba], out, len);
    } else {
        snprintf(out, len, "%s (id %" PRIu64 ", lba %" PRIu64 ")",
                 sector_kind_name[im->kind[lba]], im->raw_id[lba],
                 im->raw_lba[lba]);
    }
}

/*
 * Mode a.  @base holds each sector's value before the new run (zeros for a
 * fresh volume).  Returns the number of violating sectors.
 */
static uint64_t check_a(const struct history *h, const int64_t *base,
                        const struct image *im, char *verdict, size_t vlen)
{
    size_t first = h->first_new;
    uint64_t fs_line = 0, flushes = 0, flushes_done = 0;
    uint64_t acked = 0, durable = 0, bad = 0, behind = 0;
    int64_t *dur = malloc(im->sectors * sizeof(int64_t));
    int64_t *zl = malloc(im->sectors * sizeof(int64_t));
    int64_t *ack = malloc(im->sectors * sizeof(int64_t));

    if (!dur || !zl || !ack) {
        die("out of memory");
    }
    /* the newest completed flush of the new run, by submission */
    for (size_t i = 0; i < h->nf; i++) {
        if (h->f[i].run <= h->base_runs) {
            continue;
        }
        flushes++;
        if (h->f[i].c_line != NO_LINE && h->f[i].ret == 0) {
            flushes_done++;
            fs_line = MAX(fs_line, h->f[i].s_line);
        }
    }
    for (uint64_t s = 0; s < im->sectors; s++) {
        dur[s] = zl[s] = ack[s] = -1;
    }
    /*
     * Per sector: dur = the newest durable write, zl = the newest
     * write-zeroes submitted, ack = the newest acknowledged write, all of
     * the new run.  Overlapping requests are never in flight together, so
     * submission order is completion order for each sector.
     */
    for (size_t i = first; i < h->nw; i++) {
        const struct wrec *w = &h->w[i];
        bool is_acked = w->c_line != NO_LINE && w->ret == 0;
        bool is_durable = is_acked && w->c_line < fs_line;

        acked += is_acked;
        durable += is_durable;
        for (uint64_t s = w->lba; s < w->lba + w->sectors &&
             s < im->sectors; s++) {
            if (is_durable) {
                dur[s] = i;
            }
            if (is_acked) {
                ack[s] = i;
            }
            if (w->zero) {
                zl[s] = i;
            }
        }
    }
    for (uint64_t s = 0; s < im->sectors; s++) {
        int64_t v = im->val[s];
        bool ok;

        if (v == V_BAD) {
            ok = false;
        } else if (dur[s] >= 0) {
            /* the durable write or anything after it */
            ok = v == V_ZERO ? zl[s] >= dur[s] : v >= dur[s];
        } else if (v == V_ZERO) {
            /* the base, or a write-zeroes of the new run */
            ok = base[s] == V_ZERO || zl[s] >= 0;
        } else {
            /* the base, or any write of the new run */
            ok = v == base[s] || (size_t)v >= first;
        }
        if (ok && ack[s] >= 0) {
            behind += v == V_ZERO ? zl[s] < ack[s] : v < ack[s];
        }
        if (!ok) {
            if (bad < max_reported) {
                char got[192], want[192];
                describe_sector(h, im, s, got, sizeof(got));
                describe_write(h, dur[s] >= 0 ? dur[s] : base[s], want,
                               sizeof(want));
                printf("  sector %" PRIu64 ": holds %s; %s %s\n", s, got,
                       dur[s] >= 0 ? "the newest durable write there is" :
                       "no durable write there, before the run it held",
                       want);
            }
            bad++;
        }
    }
    snprintf(verdict, vlen, "%" PRIu64 " of %" PRIu64 " sectors wrong; %zu "
             "writes (%" PRIu64 " acked, %" PRIu64 " durable), %" PRIu64
             " flushes (%" PRIu64 " done); %" PRIu64 " sectors older than "
             "an acked write (allowed)", bad, im->sectors, h->nw - first,
             acked, durable, flushes, flushes_done, behind);
    free(dur);
    free(zl);
    free(ack);
    return bad;
}

/* Mode b: is the value @v of a sector its state after write @p (-1: none,
 * so the base value @b)? */
static bool value_is(const struct history *h, int64_t v, int64_t p,
                     int64_t b)
{
    if (p < 0) {
        return v == b;
    }
    return h->w[p].zero ? v == V_ZERO : v == p;
}

/*
 * Mode b.  P counts the new run's writes applied, 0..N.  If write j
 * (0-based among them) is the last one covering sector s in the prefix,
 * then P is in [j + 1, k] where k is the next write covering s (or N);
 * with none, P is in [0, k].  Each sector whose value matches adds one to
 * count[P] over such an interval; the intervals of one sector are
 * disjoint, so P is a valid prefix iff count[P] is the number of sectors.
 */
static uint64_t check_b(const struct history *h, const int64_t *base,
                        const struct image *im, char *verdict, size_t vlen)
{
    size_t first = h->first_new, n = h->nw - first;
    int64_t *diff = calloc(n + 2, sizeof(int64_t));
    int64_t *last = malloc(im->sectors * sizeof(int64_t));
    uint64_t acked = 0, best_p = 0, pmin = UINT64_MAX, pmax = 0, bad = 0;
    int64_t best = -1, run = 0;

    if (!diff || !last) {
        die("out of memory");
    }
    for (uint64_t s = 0; s < im->sectors; s++) {
        last[s] = -1;
    }
    for (size_t j = 0; j < n; j++) {
        const struct wrec *w = &h->w[first + j];

        acked += w->c_line != NO_LINE && w->ret == 0;
        for (uint64_t s = w->lba; s < w->lba + w->sectors &&
             s < im->sectors; s++) {
            int64_t p = last[s];
            if (value_is(h, im->val[s], p < 0 ? -1 : (int64_t)first + p,
                         base[s])) {
                diff[p + 1]++;
                diff[j + 1]--;
            }
            last[s] = j;
        }
    }
    for (uint64_t s = 0; s < im->sectors; s++) {
        int64_t p = last[s];
        if (value_is(h, im->val[s], p < 0 ? -1 : (int64_t)first + p,
                     base[s])) {
            diff[p + 1]++;
            diff[n + 1]--;
        }
    }
    for (size_t p = 0; p <= n; p++) {
        run += diff[p];
        if (run > best) {
            best = run;
            best_p = p;
        }
        if ((uint64_t)run == im->sectors) {
            pmin = MIN(pmin, p);
            pmax = p;
        }
    }

    if (pmin != UINT64_MAX) {
        uint64_t lost = 0;
        for (size_t j = pmax; j < n; j++) {
            const struct wrec *w = &h->w[first + j];
            lost += w->c_line != NO_LINE && w->ret == 0;
        }
        if (pmin == pmax) {
            snprintf(verdict, vlen, "prefix P=%" PRIu64, pmax);
        } else {
            snprintf(verdict, vlen, "prefix P=%" PRIu64 "..%" PRIu64, pmin,
                     pmax);
        }
        snprintf(verdict + strlen(verdict), vlen - strlen(verdict),
                 " of %zu writes (%" PRIu64 " acked; %" PRIu64 " acked "
                 "writes after the prefix, allowed)", n, acked, lost);
        free(diff);
        free(last);
        return 0;
    }

    /* show where the closest prefix differs */
    for (uint64_t s = 0; s < im->sectors; s++) {
        last[s] = -1;
    }
    for (size_t j = 0; j < best_p; j++) {
        const struct wrec *w = &h->w[first + j];
        for (uint64_t s = w->lba; s < w->lba + w->sectors &&
             s < im->sectors; s++) {
            last[s] = first + j;
        }
    }
    for (uint64_t s = 0; s < im->sectors; s++) {
        if (!value_is(h, im->val[s], last[s], base[s])) {
            if (bad < max_reported) {
                char got[192], want[192];
                describe_sector(h, im, s, got, sizeof(got));
                describe_write(h, last[s] >= 0 ? last[s] : base[s], want,
                               sizeof(want));
                printf("  sector %" PRIu64 ": holds %s; prefix P=%" PRIu64
                       " has %s\n", s, got, best_p, want);
            }
            bad++;
        }
    }
    snprintf(verdict, vlen, "no prefix of the %zu writes (%" PRIu64
             " acked) matches; the closest, P=%" PRIu64 ", differs in %"
             PRIu64 " sectors", n, acked, best_p, bad);
    free(diff);
    free(last);
    return bad;
}

/*
 * Mode b through NBD: the weaker rule of concurrent requests.
 *
 * QEMU (the NBD server, the block layer) may pass concurrent requests to
 * lsvd in another order than the client submitted them, so the journal
 * order, of which lsvd keeps a prefix when the cache is lost, is some
 * order consistent with "happens-before": w1 -> w2 if w1 completed (its C
 * line) before w2 was submitted (its S line).  What the volume may hold is
 * then apply(V) for a set V of requests closed downward under ->.  Every
 * such V is, for some cut T (a point in the log), the requests completed
 * before T plus any subset of those in flight at T (submitted before T,
 * not completed before it); those in flight at one moment never overlap
 * (the writer waits for overlapping requests), so the requests covering
 * one sector are totally ordered by ->, and apply(V) gives each sector the
 * value of the newest request of V covering it (the base if none; zeros
 * for a write-zeroes or a discard).  The rule checked:
 *
 *   there is a cut T such that for every sector s, with a the newest
 *   request covering s that completed before T (or the base) and b the
 *   next one covering s (if any):
 *     - b was submitted after T: s holds a's value;
 *     - b was in flight at T: s holds a's value or b's, where b is a
 *       write, b's value if b's stamp appears anywhere in the volume
 *       (then b is in V) and a's if it appears nowhere (then it is not;
 *       a write is atomic: visible in all its sectors or in none).
 *   A write-zeroes or discard in flight at T may have zeroed s or not, per
 *   sector (zeros in one of its sectors do not prove it reached lsvd).
 *
 * In the terms of visible writes: the set V (stamps seen, closed downward)
 * must hold every sector at the value of its newest V request, and zeros
 * from a zeroing request outside V are accepted at a sector only if that
 * request does not happen before the newest V write there (then the
 * write would have covered them), i.e. only if it was concurrent with or
 * after everything V holds there.  Without concurrency (depth 1) this is
 * check_b()'s prefix rule.
 *
 * Cuts are numbered q = 0..n: q = 0 before any request of the run, q =
 * p + 1 right after the S line of the run's write p (cuts between other
 * lines allow nothing more).  Each sector adds one over the q ranges at
 * which it is consistent (disjoint per sector), so a cut is valid iff the
 * count is the number of sectors.
 */
struct hb {
    const struct history *h;
    const int64_t *base;
    const struct image *im;
    size_t first, n;
    uint64_t *ps, *pc;          /* cut of a write's submission, completion */
    bool *vis;                  /* the write's stamp appears somewhere */
    int64_t *diff;              /* count[q] - count[q - 1] */
    uint64_t target;            /* with ok != NULL: which sectors allow q */
    bool *ok;
};

/* Add the cuts [lo, hi) to sector @s's consistent ones. */
static void hb_add(struct hb *c, uint64_t s, uint64_t lo, uint64_t hi)
{
    if (lo >= hi) {
        return;
    }
    if (c->ok) {
        c->ok[s] |= c->target >= lo && c->target < hi;
    } else {
        c->diff[lo]++;
        c->diff[hi]--;
    }
}

/* The value of new write @p (-1: none, the base value @b). */
static int64_t hb_value(const struct hb *c, int64_t p, int64_t b)
{
    if (p < 0) {
        return b;
    }
    return c->h->w[c->first + p].zero ? V_ZERO : (int64_t)(c->first + p);
}

/*
 * Sector @s between @a, the newest request covering it that completed
 * before the cut (-1: the base) and @b, the next one (-1: none).
 */
static void hb_sector(struct hb *c, uint64_t s, int64_t a, int64_t b)
{
    int64_t v = c->im->val[s];
    bool is_a = v == hb_value(c, a, c->base[s]);
    uint64_t lo = a < 0 ? 0 : c->pc[a];
    uint64_t mid = b < 0 ? c->n + 1 : c->ps[b];
    uint64_t hi = b < 0 ? c->n + 1 : c->pc[b];
    bool b_seen;

    if (is_a) {
        hb_add(c, s, lo, mid);              /* b not submitted yet */
    }
    if (b < 0) {
        return;
    }
    b_seen = !c->h->w[c->first + b].zero && c->vis[b];
    if ((is_a && !b_seen) || v == hb_value(c, b, c->base[s])) {
        hb_add(c, s, mid, hi);              /* b in flight */
    }
}

/* Every sector's consistent cuts, into c->diff or c->ok. */
static void hb_walk(struct hb *c, int64_t *last)
{
    const struct image *im = c->im;

    for (uint64_t s = 0; s < im->sectors; s++) {
        last[s] = -1;
    }
    for (size_t p = 0; p < c->n; p++) {
        const struct wrec *w = &c->h->w[c->first + p];
        for (uint64_t s = w->lba; s < w->lba + w->sectors &&
             s < im->sectors; s++) {
            hb_sector(c, s, last[s], p);
            last[s] = p;
        }
    }
    for (uint64_t s = 0; s < im->sectors; s++) {
        hb_sector(c, s, last[s], -1);
    }
}

/* The first cut after log line @line (n + 1 for NO_LINE): S lines ascend. */
static uint64_t hb_cut_after(const struct hb *c, uint64_t line)
{
    size_t lo = 0, hi = c->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->h->w[c->first + mid].s_line < line) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo + 1;
}

static uint64_t check_hb(const struct history *h, const int64_t *base,
                         const struct image *im, char *verdict, size_t vlen)
{
    struct hb c = { .h = h, .base = base, .im = im, .first = h->first_new,
                    .n = h->nw - h->first_new };
    int64_t *last = malloc(im->sectors * sizeof(int64_t));
    uint64_t acked = 0, best_q = 0, qmin = UINT64_MAX, qmax = 0, bad = 0;
    uint64_t unseen = 0, cuts = 0;
    int64_t best = -1, run = 0;

    c.ps = malloc((c.n + 1) * sizeof(uint64_t));
    c.pc = malloc((c.n + 1) * sizeof(uint64_t));
    c.vis = calloc(c.n + 1, sizeof(bool));
    c.diff = calloc(c.n + 2, sizeof(int64_t));
    if (!last || !c.ps || !c.pc || !c.vis || !c.diff) {
        die("out of memory");
    }
    /* cut p + 1 is right after the S line of write p */
    for (size_t p = 0; p < c.n; p++) {
        const struct wrec *w = &h->w[c.first + p];

        c.ps[p] = p + 1;
        c.pc[p] = hb_cut_after(&c, w->c_line);
        acked += w->c_line != NO_LINE && w->ret == 0;
    }
    for (uint64_t s = 0; s < im->sectors; s++) {
        if (im->val[s] >= (int64_t)c.first) {
            c.vis[im->val[s] - c.first] = true;
        }
    }
    hb_walk(&c, last);
    for (size_t q = 0; q <= c.n; q++) {
        run += c.diff[q];
        if (run > best) {
            best = run;
            best_q = q;
        }
        if ((uint64_t)run == im->sectors) {
            qmin = MIN(qmin, q);
            qmax = q;
            cuts++;
        }
    }

    if (qmin != UINT64_MAX) {
        for (size_t p = 0; p < c.n; p++) {
            const struct wrec *w = &h->w[c.first + p];
            unseen += w->c_line != NO_LINE && w->ret == 0 && !w->zero &&
                      !c.vis[p] && p < qmax;
        }
        snprintf(verdict, vlen, "cut q=%" PRIu64 "..%" PRIu64 " (%" PRIu64
                 " valid) of %zu requests (%" PRIu64 " acked; %" PRIu64
                 " acked writes before the last cut not visible: "
                 "overwritten, or concurrent with it)", qmin, qmax, cuts, c.n,
                 acked, unseen);
    } else {
        /* show where the closest cut differs */
        c.ok = calloc(im->sectors, sizeof(bool));
        if (!c.ok) {
            die("out of memory");
        }
        c.target = best_q;
        hb_walk(&c, last);
        for (uint64_t s = 0; s < im->sectors; s++) {
            if (c.ok[s]) {
                continue;
            }
            if (bad < max_reported) {
                char got[192];
                describe_sector(h, im, s, got, sizeof(got));
                printf("  sector %" PRIu64 ": holds %s; not allowed at cut "
                       "q=%" PRIu64 "\n", s, got, best_q);
            }
            bad++;
        }
        free(c.ok);
        snprintf(verdict, vlen, "no cut of the %zu requests (%" PRIu64
                 " acked) matches; the closest, q=%" PRIu64 ", differs in %"
                 PRIu64 " sectors", c.n, acked, best_q, bad);
        bad = MAX(bad, 1);
    }
    free(c.ps);
    free(c.pc);
    free(c.vis);
    free(c.diff);
    free(last);
    return bad;
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mode", required_argument, NULL, 'm' },
        { "log", required_argument, NULL, 'l' },
        { "rdonly", no_argument, NULL, 'r' },
        { "base", required_argument, NULL, 'b' },
        { "save-base", required_argument, NULL, 'B' },
        { "nbd", required_argument, NULL, 'n' },
        { "export", required_argument, NULL, 'e' },
        { "order", required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 },
    };
    struct history h;
    struct image im = { 0 };
    struct source src = { 0 };
    const char *log_path = NULL, *base_path = NULL, *save_path = NULL;
    const char *sock = NULL, *export = "v", *order = NULL;
    int64_t *base;
    char verdict[512];
    char mode = 0;
    uint64_t bad;
    int c, ret, flags = 0;
    bool failed;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            mode = optarg[0];
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'r':
            flags |= LSVD_OPEN_RDONLY;
            break;
        case 'b':
            base_path = optarg;
            break;
        case 'B':
            save_path = optarg;
            break;
        case 'n':
            sock = optarg;
            break;
        case 'e':
            export = optarg;
            break;
        case 'o':
            order = optarg;
            break;
        default:
            return 2;
        }
    }
    /* through NBD, QEMU may reorder concurrent requests: see check_hb() */
    order = order ? order : sock ? "hb" : "prefix";
    if (!log_path || optind != argc - (sock ? 0 : 1) ||
        (mode != 'a' && mode != 'b') ||
        (strcmp(order, "hb") && strcmp(order, "prefix"))) {
        die("usage: verify --mode a|b --log FILE [--base FILE] "
            "[--save-base FILE] [--order prefix|hb] "
            "{[--rdonly] VOLUME | --nbd SOCKET [--export NAME]}");
    }
    lsvd_set_log_handler(log_to_stderr, "verify");
    history_load(log_path, base_path ? base_runs(base_path) : 0, &h);
    if (h.runs > h.base_runs + 1) {
        die("%s: %u runs since the base image: expected at most one",
            log_path, h.runs - h.base_runs);
    }

    if (sock) {
        src.nbd = nbd_open(sock, export, 2);
        nbd_check_export(src.nbd, false);
        src.size = nbd_get_size(src.nbd);
    } else {
        src.vol = open_volume(argv[optind], flags);
        src.size = lsvd_size(src.vol);
    }
    if (h.size && src.size != h.size) {
        die("the volume has %" PRIu64 " bytes, the log says %" PRIu64,
            src.size, h.size);
    }
    image_read(&src, &h, &im);
    if (src.vol) {
        ret = lsvd_close(src.vol);
        if (ret < 0) {
            die("closing the volume failed: %s", strerror(-ret));
        }
    } else {
        /* a clean disconnect: an abrupt one is not what is tested here */
        if (nbd_shutdown(src.nbd, 0) < 0) {
            die("NBD disconnect failed: %s", nbd_get_error());
        }
        nbd_close(src.nbd);
    }

    base = malloc(im.sectors * sizeof(int64_t));
    if (!base) {
        die("out of memory");
    }
    if (base_path) {
        base_load(base_path, &h, base, im.sectors);
    } else {
        for (uint64_t s = 0; s < im.sectors; s++) {
            base[s] = V_ZERO;
        }
    }
    bad = mode == 'a' ? check_a(&h, base, &im, verdict, sizeof(verdict)) :
          !strcmp(order, "hb") ?
                        check_hb(&h, base, &im, verdict, sizeof(verdict)) :
                        check_b(&h, base, &im, verdict, sizeof(verdict));
    if (mode == 'b' && !strcmp(order, "hb") && !bad) {
        /* how often QEMU's reordering shows: the stricter rule, quietly */
        char strict[512];
        uint64_t saved = max_reported;

        max_reported = 0;
        snprintf(verdict + strlen(verdict), sizeof(verdict) - strlen(verdict),
                 "; a prefix in submission order: %s",
                 check_b(&h, base, &im, strict, sizeof(strict)) ? "no" :
                 "yes");
        max_reported = saved;
    }
    if (h.errors || h.bad_lines) {
        printf("  the run saw %" PRIu64 " failed requests and the log has %"
               PRIu64 " unexpected lines\n", h.errors, h.bad_lines);
    }
    failed = bad || h.errors || h.bad_lines;
    printf("verify(%c): %s: %s\n", mode, failed ? "VIOLATION" : "ok",
           verdict);
    if (!failed && save_path) {
        base_save(save_path, &h, &im);
    }
    free(base);
    image_free(&im);
    history_free(&h);
    return failed ? 1 : 0;
}

/* ---- selftest: the checks against hand-made histories ------------------- */

struct st_ctx {
    struct history h;
    uint64_t line;
    int failures;
};

static void st_s(struct st_ctx *t, uint64_t id, bool zero, uint64_t lba,
                 uint64_t n)
{
    t->line++;
    history_add_write(&t->h, id, zero ? 'Z' : 'W', lba, n, t->line);
}

static void st_c(struct st_ctx *t, uint64_t id)
{
    t->h.w[t->h.windex[id]].c_line = ++t->line;
}

/* st_expect()'s @garbage_at: sector S zeroed instead of made garbage */
#define ST_ZERO(s) (-2 - (int64_t)(s))

/* Build the image with the writes of run 1 whose ids are in @ids applied
 * in order, then check it in @mode (a, b, or h for check_hb) and compare
 * the outcome. */
static void st_expect(struct st_ctx *t, const char *what, char mode,
                      const uint64_t *ids, size_t nids, int64_t garbage_at,
                      uint64_t want_bad, const char *want_verdict)
{
    struct image im;
    int64_t base[16];
    char verdict[512];
    uint64_t bad;

    image_alloc(&im, 16);
    for (uint64_t s = 0; s < 16; s++) {
        base[s] = V_ZERO;
    }
    for (size_t i = 0; i < nids; i++) {
        int64_t wi = t->h.windex[ids[i]];
        const struct wrec *w = &t->h.w[wi];
        for (uint64_t s = w->lba; s < w->lba + w->sectors; s++) {
            uint8_t buf[SECTOR] = { 0 };
            if (!w->zero) {
                stamp_fill(t->h.seeds[w->run], w->id, s, buf);
            }
            image_set(&im, &t->h, s, buf);
        }
    }
    if (garbage_at <= ST_ZERO(0)) {
        image_set(&im, &t->h, ST_ZERO(0) - garbage_at,
                  (uint8_t[SECTOR]){ 0 });
    } else if (garbage_at >= 0) {
        uint8_t buf[SECTOR];
        stamp_fill(t->h.seeds[1], t->h.w[0].id, garbage_at, buf);
        buf[100] ^= 1;
        image_set(&im, &t->h, garbage_at, buf);
    }
    bad = mode == 'a' ? check_a(&t->h, base, &im, verdict, sizeof(verdict)) :
          mode == 'h' ? check_hb(&t->h, base, &im, verdict, sizeof(verdict)) :
                        check_b(&t->h, base, &im, verdict, sizeof(verdict));
    if (bad != want_bad ||
        (want_verdict && strncmp(verdict, want_verdict,
                                 strlen(want_verdict)))) {
        printf("selftest: FAIL %s: %" PRIu64 " bad sectors (want %" PRIu64
               "): %s\n", what, bad, want_bad, verdict);
        t->failures++;
    } else {
        printf("selftest: ok   %s: %s\n", what, verdict);
    }
    image_free(&im);
}

/*
 * The happens-before rule (check_hb) on a history with concurrency, as
 * through NBD; the lines of the log, 16 sectors:
 *   1 S1 W [0,4)    2 S2 W [8,10)   3 C1   4 C2   5 S3 W [2,6)
 *   6 S4 Z [8,12)   7 S5 W [12,14)  8 C5   9 C3  10 S6 W [14,16)
 * (C4 and C6 never came), so 1 -> 3, 2 -> 4, 1 and 2 -> 5 -> 6, 3 -> 6;
 * 3, 4 and 5 were in flight together.
 */
static void selftest_hb(struct st_ctx *t)
{
    static const struct { uint64_t id; char type; uint64_t lba, n, s, c; }
    reqs[] = {
        { 1, 'W', 0, 4, 1, 3 }, { 2, 'W', 8, 2, 2, 4 },
        { 3, 'W', 2, 4, 5, 9 }, { 4, 'Z', 8, 4, 6, NO_LINE },
        { 5, 'W', 12, 2, 7, 8 }, { 6, 'W', 14, 2, 10, NO_LINE },
    };

    memset(&t->h, 0, sizeof(t->h));
    history_add_run(&t->h, 77, 16 * SECTOR);
    for (size_t i = 0; i < G_N_ELEMENTS(reqs); i++) {
        history_add_write(&t->h, reqs[i].id, reqs[i].type, reqs[i].lba,
                          reqs[i].n, reqs[i].s);
    }
    history_index(&t->h, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(reqs); i++) {
        t->h.w[i].c_line = reqs[i].c;
    }

    st_expect(t, "hb: nothing", 'h', NULL, 0, -1, 0, "cut q=0..2 (3 valid)");
    st_expect(t, "hb: 1 2 3 5", 'h', (const uint64_t[]){ 1, 2, 3, 5 }, 4,
              -1, 0, "cut q=5..6 (2 valid)");
    st_expect(t, "hb: all but 6", 'h',
              (const uint64_t[]){ 1, 2, 3, 4, 5 }, 5, -1, 0,
              "cut q=5..6 (2 valid)");
    st_expect(t, "hb: all", 'h',
              (const uint64_t[]){ 1, 2, 3, 4, 5, 6 }, 6, -1, 0,
              "cut q=6..6 (1 valid)");
    /* at q=3 2 is complete and must show; at 4 and 5 Z4 may hide it */
    st_expect(t, "hb: 1 without 2", 'h', (const uint64_t[]){ 1 }, 1, -1, 0,
              "cut q=1..5 (4 valid)");
    /* 5 without the concurrent 3: a reorder, allowed; no prefix has it */
    st_expect(t, "hb: 1 2 5, 3 reordered", 'h',
              (const uint64_t[]){ 1, 2, 5 }, 3, -1, 0, "cut q=5..5 (1 valid)");
    st_expect(t, "prefix: 1 2 5, 3 reordered", 'b',
              (const uint64_t[]){ 1, 2, 5 }, 3, -1, 2, "no prefix");
    /* 2 overwritten by the in-flight Z4: 8..11 zero, 3 visible */
    st_expect(t, "hb: 1 3, 2 hidden by Z4", 'h',
              (const uint64_t[]){ 1, 2, 3, 4 }, 4, -1, 0,
              "cut q=4..5 (2 valid)");
    /* the in-flight Z4 on a part of its range: accepted per sector */
    st_expect(t, "hb: 1 2 3 5, Z4 in part", 'h',
              (const uint64_t[]){ 1, 2, 3, 5 }, 4, ST_ZERO(8), 0,
              "cut q=5..6 (2 valid)");
    /* 5 without 1, which completed before 5 was submitted */
    st_expect(t, "hb: 5 without 1", 'h', (const uint64_t[]){ 2, 5 }, 2, -1,
              2, "no cut");
    /* 6 without 3 and 5, which completed before it was submitted */
    st_expect(t, "hb: 6 without 3 and 5", 'h',
              (const uint64_t[]){ 1, 2, 6 }, 3, -1, 2, "no cut");
    /* a write seen in part */
    st_expect(t, "hb: a torn write", 'h', (const uint64_t[]){ 1, 2, 3 }, 3,
              ST_ZERO(4), 1, "no cut");
    st_expect(t, "hb: a torn sector", 'h', (const uint64_t[]){ 1, 2 }, 2, 13,
              1, "no cut");
    history_free(&t->h);
}

static int cmd_selftest(int argc G_GNUC_UNUSED, char **argv G_GNUC_UNUSED)
{
    static const uint64_t w12[] = { 1, 2 }, w1[] = { 1 }, w2[] = { 2 };
    static const uint64_t w1234[] = { 1, 2, 3, 4 }, w1236[] = { 1, 2, 3, 6 };
    static const uint64_t w124[] = { 1, 2, 6 }, w7[] = { 1, 7 };
    struct st_ctx t = { { 0 } };
    uint8_t buf[SECTOR], buf2[SECTOR];
    uint64_t id, lba;

    max_reported = 0;

    /* stamps */
    stamp_fill(42, 7, 1000, buf);
    memcpy(buf2, buf, SECTOR);
    if (stamp_parse(1000, buf, &id, &lba) != SK_STAMP || id != 7 ||
        !stamp_fill_ok(42, 7, 1000, buf) || stamp_fill_ok(43, 7, 1000, buf) ||
        stamp_parse(1001, buf, &id, &lba) != SK_BAD_LBA) {
        printf("selftest: FAIL stamps\n");
        t.failures++;
    }
    buf2[511] ^= 0x80;
    memset(buf, 0, SECTOR);
    if (stamp_parse(1000, buf2, &id, &lba) != SK_BAD_SUM ||
        stamp_parse(1000, buf, &id, &lba) != SK_ZERO) {
        printf("selftest: FAIL stamps\n");
        t.failures++;
    }

    /*
     * Run 1 on 16 sectors: W1 [0,4) and W2 [2,6) acknowledged, a flush
     * submitted after both and completed, then Z3 [0,2) acknowledged, W4
     * [8,10) not, W6 [12,14) not (id 5 is the flush).
     */
    history_add_run(&t.h, 99, 16 * SECTOR);
    t.line = 1;
    st_s(&t, 1, false, 0, 4);
    st_s(&t, 2, false, 2, 4);
    st_s(&t, 3, true, 0, 2);
    st_s(&t, 4, false, 8, 2);
    st_s(&t, 6, false, 12, 2);
    st_s(&t, 7, false, 6, 1);
    history_add_flush(&t.h, 5, 0);
    history_index(&t.h, 0);
    st_c(&t, 1);
    st_c(&t, 2);
    t.h.f[0].s_line = ++t.line;
    t.h.f[0].c_line = ++t.line;
    st_c(&t, 3);

    st_expect(&t, "a: all applied", 'a', w1234, 4, -1, 0, "0 of 16");
    st_expect(&t, "a: unflushed Z3, W4 lost", 'a', w12, 2, -1, 0, "0 of 16");
    st_expect(&t, "a: durable W2 lost", 'a', w1, 1, -1, 4, "4 of 16");
    st_expect(&t, "a: everything lost", 'a', NULL, 0, -1, 4, "4 of 16");
    st_expect(&t, "a: a torn sector", 'a', w12, 2, 12, 1, "1 of 16");
    st_expect(&t, "a: W2 lost, W7 in", 'a', w7, 2, -1, 4, "4 of 16");

    st_expect(&t, "b: W1 W2", 'b', w12, 2, -1, 0, "prefix P=2 of 6");
    st_expect(&t, "b: W1..W4", 'b', w1234, 4, -1, 0, "prefix P=4 of 6");
    /* W2 without W1: sectors 0-1 zero, which Z3 explains: P = 3 */
    st_expect(&t, "b: W2 then Z3", 'b', (const uint64_t[]){ 2, 3 }, 2, -1,
              0, "prefix P=3 of 6");
    st_expect(&t, "b: W2 alone", 'b', w2, 1, -1, 0, "prefix P=3 of 6");
    /* W6 without W4: no prefix */
    st_expect(&t, "b: a hole", 'b', w1236, 4, -1, 2, "no prefix");
    st_expect(&t, "b: W6 without Z3", 'b', w124, 3, -1, 2, "no prefix");
    st_expect(&t, "b: a torn sector", 'b', w12, 2, 12, 1, "no prefix");

    /* run 2 on top of the image W1 W2 Z3 W4 as its base */
    {
        struct image im;
        int64_t base[16];
        char verdict[512];
        uint64_t bad;

        history_add_run(&t.h, 100, 16 * SECTOR);
        st_s(&t, 8, false, 1, 2);
        free(t.h.windex);
        free(t.h.findex);
        history_index(&t.h, 1);
        for (uint64_t s = 0; s < 16; s++) {
            base[s] = V_ZERO;
        }
        base[2] = base[3] = base[4] = base[5] = t.h.windex[2];
        base[8] = base[9] = t.h.windex[4];
        image_alloc(&im, 16);
        for (uint64_t s = 0; s < 16; s++) {
            memset(buf, 0, SECTOR);
            if (base[s] >= 0) {
                stamp_fill(99, t.h.w[base[s]].id, s, buf);
            }
            image_set(&im, &t.h, s, buf);
        }
        bad = check_b(&t.h, base, &im, verdict, sizeof(verdict)) +
              check_a(&t.h, base, &im, verdict, sizeof(verdict));
        /* lose a base sector: both modes must see it */
        image_set(&im, &t.h, 9, (uint8_t[SECTOR]){ 0 });
        if (bad != 0 ||
            check_b(&t.h, base, &im, verdict, sizeof(verdict)) != 1 ||
            check_a(&t.h, base, &im, verdict, sizeof(verdict)) != 1) {
            printf("selftest: FAIL base images\n");
            t.failures++;
        } else {
            printf("selftest: ok   base images\n");
        }
        image_free(&im);
    }

    history_free(&t.h);
    selftest_hb(&t);
    printf("selftest: %s\n", t.failures ? "FAILED" : "ok");
    return t.failures ? 1 : 0;
}

/* ---- loop: the driver --------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st G_GNUC_UNUSED,
                    int type G_GNUC_UNUSED, struct FTW *ftw G_GNUC_UNUSED)
{
    if (remove(path) < 0 && errno != ENOENT) {
        die("cannot remove %s: %s", path, strerror(errno));
    }
    return 0;
}

static void rm_rf(const char *path)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 &&
        errno != ENOENT) {
        die("cannot remove %s: %s", path, strerror(errno));
    }
}

/*
 * Copy a file, holes as holes: the read cache is a sparse file of 1 GiB
 * (reading its holes took seconds per crash point) and the journal is
 * preallocated.  A missing @from copies nothing.
 */
static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out;
    struct stat st;
    off_t data = 0, hole;

    if (in < 0 && errno == ENOENT) {
        return;
    }
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0 || fstat(in, &st) < 0 ||
        ftruncate(out, st.st_size) < 0) {
        die("cannot copy %s to %s: %s", from, to, strerror(errno));
    }
    while ((data = lseek(in, data, SEEK_DATA)) >= 0) {
        hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0) {
            hole = st.st_size;
        }
        for (off_t off = data; off < hole;) {
            off_t o_in = off, o_out = off;
            ssize_t n = copy_file_range(in, &o_in, out, &o_out, hole - off,
                                        0);
            if (n <= 0) {
                die("cannot copy %s to %s: %s", from, to,
                    n < 0 ? strerror(errno) : "short file");
            }
            off += n;
        }
        data = hole;
    }
    if (errno != ENXIO) {
        die("cannot read %s: %s", from, strerror(errno));
    }
    close(in);
    close(out);
}

/* Snapshot state for nftw, which has no argument for its callback. */
static struct {
    const char *src, *dst;
    bool link;                  /* hard-link files instead of copying */
    unsigned tmp_files;         /* ".tmp." names met: PUTs in progress */
    unsigned objects;
} snap;

static int snap_entry(const char *path, const struct stat *st G_GNUC_UNUSED,
                      int type, struct FTW *ftw)
{
    g_autofree char *to = g_strdup_printf("%s%s", snap.dst,
                                          path + strlen(snap.src));

    if (type == FTW_D) {
        if (mkdir(to, 0755) < 0 && errno != EEXIST) {
            die("cannot create %s: %s", to, strerror(errno));
        }
        return 0;
    }
    if (!strncmp(path + ftw->base, ".tmp.", 5)) {
        snap.tmp_files++;
    } else if (strlen(path + ftw->base) == 16) {
        snap.objects++;
    }
    /* objects are written once (new file, rename), so a link is a copy;
     * the journal is rewritten in place, so it is copied */
    if (!snap.link || link(path, to) < 0) {
        copy_file(path, to);
    }
    return 0;
}

static void snapshot(const char *src, const char *dst, bool hardlink)
{
    snap.src = src;
    snap.dst = dst;
    snap.link = hardlink;
    if (nftw(src, snap_entry, 16, FTW_PHYS) < 0 && errno != ENOENT) {
        die("cannot copy %s: %s", src, strerror(errno));
    }
}

/*
 * The configuration of an s3:// volume: the [backend] section of the
 * RGW's @s3_conf with @prefix appended to its url (a fresh key prefix per
 * loop, so that runs on one RGW do not collide), then the cache in @dir.
 */
static void write_conf_s3(const char *dir, const char *s3_conf,
                          const char *prefix, uint64_t batch, uint64_t cache)
{
    g_autofree char *path = g_strdup_printf("%s/lsvd.conf", dir);
    FILE *in = fopen(s3_conf, "r");
    FILE *f = fopen(path, "w");
    char line[1024];
    bool backend = false;

    if (!in || !f) {
        die("cannot copy %s to %s: %s", s3_conf, path, strerror(errno));
    }
    while (fgets(line, sizeof(line), in)) {
        if (line[0] == '[') {
            backend = !strncmp(line, "[backend]", 9);
        }
        if (backend && !strncmp(line, "url", 3)) {
            fprintf(f, "%.*s/%s\n", (int)strcspn(line, "\r\n"), line, prefix);
        } else if (backend) {
            fputs(line, f);
        }
    }
    fclose(in);
    fprintf(f, "[cache]\ndir = %s/cache\nsize = %" PRIu64 "M\n[log]\n"
            "batch_size = %" PRIu64 "M\n", dir, cache >> 20, batch >> 20);
    if (fclose(f) != 0) {
        die("cannot write %s: %s", path, strerror(errno));
    }
}

static void write_conf(const char *dir, uint64_t batch, uint64_t cache)
{
    g_autofree char *path = g_strdup_printf("%s/lsvd.conf", dir);
    FILE *f = fopen(path, "w");

    if (!f) {
        die("cannot write %s: %s", path, strerror(errno));
    }
    fprintf(f, "[backend]\nurl = dir://%s/store\n[cache]\ndir = %s/cache\n"
            "size = %" PRIu64 "M\n[log]\nbatch_size = %" PRIu64 "M\n",
            dir, dir, cache >> 20, batch >> 20);
    fclose(f);
}

static char self_exe[PATH_MAX];

/*
 * Start this program with @argv, output to @out, LSVD_CONF=@conf.  The
 * child dies with the driver, so that a driver stopped by a timeout or ^C
 * leaves no endless writer behind.
 */
static pid_t spawn_exe(const char *exe, char *const argv[], const char *out,
                       const char *conf, bool append)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid < 0) {
        die("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT |
                      (append ? O_APPEND : O_TRUNC), 0644);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
            _exit(127);
        }
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
            _exit(127);
        }
        close(fd);
        setenv("LSVD_CONF", conf, 1);
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

static pid_t spawn(char *const argv[], const char *out, const char *conf)
{
    return spawn_exe(self_exe, argv, out, conf, false);
}

static int wait_exit(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            die("waitpid: %s", strerror(errno));
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The exit status of @pid, or -1 if it has not exited after @ms. */
static int wait_exit_ms(pid_t pid, unsigned ms)
{
    double end = now_s() + ms / 1000.0;
    int st;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (r < 0 && errno != EINTR) {
            die("waitpid: %s", strerror(errno));
        }
        if (now_s() > end) {
            return -1;
        }
        sleep_ms(5);
    }
}

static void print_file(const char *path, const char *indent)
{
    FILE *f = fopen(path, "r");
    char line[512];

    if (!f) {
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        printf("%s%s", indent, line);
    }
    fclose(f);
}

/* The last @n lines of @path. */
static void print_tail(const char *path, const char *indent, unsigned n)
{
    FILE *f = fopen(path, "r");
    char line[512];
    unsigned total = 0, i = 0;

    if (!f) {
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        total++;
    }
    rewind(f);
    while (fgets(line, sizeof(line), f)) {
        if (i++ + n >= total) {
            printf("%s%s", indent, line);
        }
    }
    fclose(f);
}

struct loop_opts {
    char mode;                  /* a, b, or x: a and b alternating */
    unsigned chain;             /* crash points per volume */
    unsigned min_ms, max_ms;
    bool verbose;
    const char *qsd;            /* through qemu-storage-daemon, or NULL */
    const char *s3_conf;        /* with qsd: the RGW's lsvd.conf, or NULL */
    const char *depth;          /* with qsd: the writer's --depth */
};

struct loop_stats {
    unsigned passed, failed;
    unsigned points[2], violations[2];  /* per mode a, b */
    uint64_t discards;
    double t_recover, t_verify;         /* seconds, summed */
    unsigned no_conn;           /* daemon killed before the writer connected */
    unsigned put_in_progress;   /* kills with a ".tmp." object present */
    unsigned with_objects;      /* kills after at least one object */
    uint64_t writes, acked, objects;
};

/*
 * Crash point @seed in @dir, number @pos (from 0) of its volume's chain;
 * @last if the chain ends with it.
 *
 * The first point of a chain makes a fresh store, cache and volume.  Every
 * point writes a new configuration with a batch size of 1M..8M, so that
 * objects are PUT every few dozen milliseconds and kills land inside
 * journal writes, inside PUTs (the loop counts kills that left a PUT's
 * temporary file) and between a PUT and the journal reset.  Inside a
 * chain, verify opens the volume read-only: the next run then does the
 * writable recovery of exactly the state that was checked (a journal with
 * records not yet in objects, stranded objects) and is killed in turn.
 * The image verify accepted is the next verify's base image.  The last
 * verify of a chain recovers read-write and closes the volume.
 *
 * Returns 0 if the point passed; on failure the state right after the
 * kill is kept in DIR/fail-SEED, and the output says how to check it
 * again.
 */
static int crash_point(const char *dir, uint64_t seed, unsigned pos,
                       bool last, const struct loop_opts *o,
                       struct loop_stats *ls)
{
    /* batch sizes: mostly small, so that objects are PUT often */
    static const uint64_t batches[] = { 1, 1, 1, 2, 2, 4, 8 };
    g_autofree char *conf = g_strdup_printf("%s/lsvd.conf", dir);
    g_autofree char *store = g_strdup_printf("%s/store", dir);
    g_autofree char *cache = g_strdup_printf("%s/cache", dir);
    g_autofree char *logp = g_strdup_printf("%s/log", dir);
    g_autofree char *base = g_strdup_printf("%s/base", dir);
    g_autofree char *new_base = g_strdup_printf("%s/base.new", dir);
    g_autofree char *run_out = g_strdup_printf("%s/run.out", dir);
    g_autofree char *ver_out = g_strdup_printf("%s/verify.out", dir);
    g_autofree char *snapd = g_strdup_printf("%s/snap", dir);
    g_autofree char *snap_store = g_strdup_printf("%s/store", snapd);
    g_autofree char *snap_cache = g_strdup_printf("%s/cache", snapd);
    g_autofree char *snap_log = g_strdup_printf("%s/log", snapd);
    g_autofree char *snap_base = g_strdup_printf("%s/base", snapd);
    g_autofree char *keep = NULL;
    g_autofree char *seed_s = g_strdup_printf("%" PRIu64, seed);
    g_autofree char *first_id_s = NULL;
    uint64_t first_id;
    char mode_s[2] = { o->mode, 0 };
    uint64_t prng = seed ^ 0x63726173685f7074ULL;
    uint64_t batch = batches[rnd(&prng, G_N_ELEMENTS(batches))] << 20;
    uint64_t cache_size = MAX(64ULL << 20, 4 * batch);
    unsigned ms = o->min_ms + rnd(&prng, o->max_ms - o->min_ms + 1);
    struct history h;
    pid_t pid;
    int ret, st;

    if (pos == 0) {
        /* a fresh volume */
        struct lsvd_config *cfg;
        struct lsvd_err err = { "" };

        rm_rf(store);
        rm_rf(cache);
        unlink(logp);
        unlink(base);
        write_conf(dir, batch, cache_size);
        ret = lsvd_config_load(conf, &cfg, &err);
        if (ret == 0) {
            ret = lsvd_create(cfg, VOLUME_NAME, VOLUME_SIZE, &err);
            lsvd_config_free(cfg);
        }
        if (ret < 0) {
            die("cannot create the volume: %s", err.msg);
        }
    } else {
        /* the same volume, maybe another batch size */
        write_conf(dir, batch, cache_size);
    }
    rm_rf(snapd);
    history_load(logp, 0, &h);
    first_id = h.max_id + 1;
    first_id_s = g_strdup_printf("%" PRIu64, first_id);
    history_free(&h);

    /* run, and kill it */
    {
        char *argv[] = { "lsvd-crash", "run", "--seed", seed_s, "--log",
                         logp, "--first-id", first_id_s, VOLUME_NAME,
                         NULL };
        pid = spawn(argv, run_out, conf);
    }
    sleep_ms(ms);
    if (waitpid(pid, &st, WNOHANG) == pid) {
        printf("crash(%c): seed %" PRIu64 ": the writer exited by itself "
               "(status %d):\n", o->mode, seed, st);
        print_file(run_out, "    ");
        ls->failed++;
        return 1;
    }
    kill(pid, SIGKILL);
    wait_exit(pid);

    /* keep the state as the crash left it, in case verify fails */
    if (mkdir(snapd, 0755) < 0) {
        die("cannot create %s: %s", snapd, strerror(errno));
    }
    snap.tmp_files = snap.objects = 0;
    snapshot(store, snap_store, true);
    snapshot(cache, snap_cache, false);
    copy_file(logp, snap_log);
    copy_file(base, snap_base);
    ls->put_in_progress += snap.tmp_files > 0;
    ls->with_objects += snap.objects > 0;
    ls->objects += snap.objects;

    history_load(logp, 0, &h);
    for (size_t i = 0; i < h.nw; i++) {
        if (h.w[i].id >= first_id) {
            ls->writes++;
            ls->acked += h.w[i].c_line != NO_LINE && h.w[i].ret == 0;
        }
    }
    history_free(&h);

    if (o->mode == 'b') {
        rm_rf(cache);
    }
    {
        char *argv[16] = { "lsvd-crash", "verify", "--mode", mode_s,
                           "--log", logp, "--save-base", new_base };
        int n = 8;

        if (pos > 0) {
            argv[n++] = "--base";
            argv[n++] = base;
        }
        if (!last) {
            argv[n++] = "--rdonly";
        }
        argv[n++] = VOLUME_NAME;
        argv[n] = NULL;
        ret = wait_exit(spawn(argv, ver_out, conf));
    }
    if (o->verbose || ret != 0) {
        printf("crash(%c): seed %" PRIu64 " (%u in chain): batch %" PRIu64
               "M, kill after %u ms, %u objects%s:%s", o->mode, seed,
               pos + 1, batch >> 20, ms, snap.objects,
               snap.tmp_files ? " (+ a PUT in progress)" : "",
               ret == 0 ? " " : " FAILED\n");
        print_file(ver_out, ret == 0 ? "" : "    ");
    }
    if (ret == 0) {
        if (rename(new_base, base) < 0) {
            die("cannot rename %s: %s", new_base, strerror(errno));
        }
        ls->passed++;
        return 0;
    }
    ls->failed++;
    keep = g_strdup_printf("%s/fail-%" PRIu64, dir, seed);
    rm_rf(keep);
    if (rename(snapd, keep) < 0) {
        die("cannot keep %s: %s", keep, strerror(errno));
    }
    write_conf(keep, batch, cache_size);
    printf("    the state right after the kill is in %s; check it again "
           "with\n    %sLSVD_CONF=%s/lsvd.conf %s verify --rdonly --mode %c "
           "--log %s/log%s%s%s %s\n", keep,
           o->mode == 'b' ? "rm -rf CACHE && " : "", keep, self_exe,
           o->mode, keep, pos > 0 ? " --base " : "", pos > 0 ? keep : "",
           pos > 0 ? "/base" : "", VOLUME_NAME);
    if (o->mode == 'b') {
        printf("    (CACHE is %s/cache, kept for mode a)\n", keep);
    }
    printf("    or run the crash points of this volume again (the kills "
           "land elsewhere) with\n    %s loop --mode %c --points %u "
           "--chain %u --seed %" PRIu64 " -v\n", self_exe, o->mode, pos + 1,
           o->chain, seed - pos);
    return 1;
}

/* ---- loop --qsd: the same through qemu-storage-daemon over NBD ---------- */

/* The daemon of the current chain; see crash_point_qsd(). */
struct qsd {
    char *volume;               /* this chain's volume */
    char *prefix;               /* s3: this loop's key prefix */
    pid_t pid;                  /* 0: not running */
};

static void qsd_conf(const char *dir, const struct loop_opts *o,
                     const struct qsd *q, uint64_t batch, uint64_t cache)
{
    if (o->s3_conf) {
        write_conf_s3(dir, o->s3_conf, q->prefix, batch, cache);
    } else {
        write_conf(dir, batch, cache);
    }
}

/*
 * Start qemu-storage-daemon on this chain's volume (opening it is the
 * recovery) and wait for its NBD socket.  Output appended to DIR/qsd.out.
 * Returns false, with the reason printed, if it did not come up.
 */
static bool qsd_start(const char *dir, const struct loop_opts *o,
                      struct qsd *q, uint64_t seed)
{
    g_autofree char *conf = g_strdup_printf("%s/lsvd.conf", dir);
    g_autofree char *sock = g_strdup_printf("%s/nbd.sock", dir);
    g_autofree char *out = g_strdup_printf("%s/qsd.out", dir);
    g_autofree char *dev = g_strdup_printf(
        "driver=lsvd,node-name=v,volume=%s,conf=%s,discard=unmap",
        q->volume, conf);
    g_autofree char *srv = g_strdup_printf(
        "addr.type=unix,addr.path=%s", sock);
    char *argv[] = { "qemu-storage-daemon", "--blockdev", dev,
                     "--nbd-server", srv, "--export",
                     "type=nbd,id=e,node-name=v,writable=on", NULL };
    struct stat st;
    double end = now_s() + 60;
    int ret;

    /* a killed daemon leaves its socket: wait for the new one */
    unlink(sock);
    q->pid = spawn_exe(o->qsd, argv, out, conf, true);
    while (stat(sock, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        ret = wait_exit_ms(q->pid, 10);
        if (ret >= 0 || now_s() > end) {
            printf("crash: seed %" PRIu64 ": qemu-storage-daemon %s; the "
                   "end of %s:\n", seed, ret >= 0 ? "exited" :
                   "made no socket in 60 s", out);
            print_tail(out, "    ", 15);
            if (ret < 0) {
                kill(q->pid, SIGKILL);
                wait_exit(q->pid);
            }
            q->pid = 0;
            return false;
        }
    }
    return true;
}

/* SIGTERM, as a service manager would: the daemon must close the volume
 * (which writes the journal into the store) and exit 0. */
static bool qsd_stop(const char *dir, struct qsd *q)
{
    g_autofree char *out = g_strdup_printf("%s/qsd.out", dir);
    int ret;

    if (!q->pid) {
        return true;
    }
    kill(q->pid, SIGTERM);
    ret = wait_exit_ms(q->pid, 60000);
    if (ret < 0) {
        kill(q->pid, SIGKILL);
        wait_exit(q->pid);
    }
    q->pid = 0;
    if (ret != 0) {
        printf("crash: qemu-storage-daemon %s on SIGTERM; the end of %s:\n",
               ret < 0 ? "did not exit in 60 s" : "exited non-zero", out);
        print_tail(out, "    ", 15);
    }
    return ret == 0;
}

/* s3: remove a chain's volume, so that the test RGW does not fill up. */
static bool qsd_remove(const char *conf, const struct qsd *q)
{
    struct lsvd_config *cfg;
    struct lsvd_err err = { "" };
    int ret = lsvd_config_load(conf, &cfg, &err);

    if (ret == 0) {
        ret = lsvd_remove(cfg, q->volume, &err);
        lsvd_config_free(cfg);
    }
    if (ret < 0) {
        printf("crash: cannot remove volume %s: %s\n", q->volume, err.msg);
    }
    return ret == 0;
}

/*
 * Crash point @seed through qemu-storage-daemon, number @pos of its
 * volume's chain; @last if the chain ends with it; in @mode (a or b).
 *
 * The first point of a chain makes a fresh volume (dir://: a fresh store
 * and cache; s3://: a new volume name under this loop's prefix) and starts
 * the daemon.  Then: `run --nbd` against the daemon's export, SIGKILL to
 * the daemon (not the writer) after a seeded MIN..MAX ms, the writer must
 * see its connection die and exit 3; in mode b the cache directory is
 * deleted; the daemon is started again, which is the recovery (with a new
 * batch size of 1M..8M in the configuration), and `verify --nbd` reads the
 * whole export and checks it.  That daemon serves the next point of the
 * chain; the last one stops it with SIGTERM, which must succeed (and on
 * s3:// removes the volume: a test RGW keeps its objects in memory).
 *
 * Returns 0 if the point passed; on failure the state right after the
 * kill is kept in DIR/fail-SEED (for s3://, the cache and the log; the
 * objects stay in the RGW until it is stopped).
 */
static int crash_point_qsd(const char *dir, uint64_t seed, unsigned pos,
                           bool last, char mode, const struct loop_opts *o,
                           struct loop_stats *ls, struct qsd *q)
{
    /* s3: objects of at most 4 MiB, which a test RGW deletes at once (the
     * tail of a bigger one waits for its garbage collection, hours, while
     * its memstore OSD fills up) */
    static const uint64_t batches[] = { 1, 1, 1, 2, 2, 4, 8 };
    static const uint64_t batches_s3[] = { 1, 1, 1, 2, 2 };
    g_autofree char *conf = g_strdup_printf("%s/lsvd.conf", dir);
    g_autofree char *store = g_strdup_printf("%s/store", dir);
    g_autofree char *cache = g_strdup_printf("%s/cache", dir);
    g_autofree char *logp = g_strdup_printf("%s/log", dir);
    g_autofree char *base = g_strdup_printf("%s/base", dir);
    g_autofree char *new_base = g_strdup_printf("%s/base.new", dir);
    g_autofree char *sock = g_strdup_printf("%s/nbd.sock", dir);
    g_autofree char *qsd_out = g_strdup_printf("%s/qsd.out", dir);
    g_autofree char *run_out = g_strdup_printf("%s/run.out", dir);
    g_autofree char *ver_out = g_strdup_printf("%s/verify.out", dir);
    g_autofree char *snapd = g_strdup_printf("%s/snap", dir);
    g_autofree char *keep = NULL;
    g_autofree char *seed_s = g_strdup_printf("%" PRIu64, seed);
    g_autofree char *first_id_s = NULL;
    char mode_s[2] = { mode, 0 };
    uint64_t prng = seed ^ 0x63726173685f7074ULL;
    uint64_t batch = o->s3_conf ?
        batches_s3[rnd(&prng, G_N_ELEMENTS(batches_s3))] << 20 :
        batches[rnd(&prng, G_N_ELEMENTS(batches))] << 20;
    uint64_t cache_size = MAX(64ULL << 20, 4 * batch);
    unsigned ms = o->min_ms + rnd(&prng, o->max_ms - o->min_ms + 1);
    unsigned objects = 0, tmp_files = 0;
    const char *why = NULL;
    double t, t_recover;
    struct history h;
    uint64_t first_id;
    pid_t pid;
    int ret;

    ls->points[mode == 'b']++;
    if (pos == 0) {
        struct lsvd_config *cfg;
        struct lsvd_err err = { "" };

        rm_rf(store);
        rm_rf(cache);
        unlink(logp);
        unlink(base);
        unlink(qsd_out);
        g_free(q->volume);
        q->volume = g_strdup_printf("crash-%" PRIu64, seed);
        qsd_conf(dir, o, q, batch, cache_size);
        ret = lsvd_config_load(conf, &cfg, &err);
        if (ret == 0) {
            ret = lsvd_create(cfg, q->volume, VOLUME_SIZE, &err);
            lsvd_config_free(cfg);
        }
        if (ret < 0) {
            die("cannot create the volume: %s", err.msg);
        }
        if (!qsd_start(dir, o, q, seed)) {
            why = "qemu-storage-daemon did not start on a fresh volume";
            goto failed;
        }
    }
    rm_rf(snapd);
    history_load(logp, 0, &h);
    first_id = h.max_id + 1;
    first_id_s = g_strdup_printf("%" PRIu64, first_id);
    history_free(&h);

    /* run, and kill the daemon under it */
    {
        char *argv[] = { "lsvd-crash", "run", "--nbd", sock, "--seed",
                         seed_s, "--log", logp, "--first-id", first_id_s,
                         "--depth", (char *)o->depth, NULL };
        pid = spawn(argv, run_out, conf);
    }
    sleep_ms(ms);
    ret = wait_exit_ms(pid, 0);
    if (wait_exit_ms(q->pid, 0) >= 0) {
        q->pid = 0;
        why = "qemu-storage-daemon exited before the kill";
    } else if (ret >= 0) {
        why = "the writer exited before the kill";
    }
    if (why) {
        if (ret < 0) {
            kill(pid, SIGKILL);
            wait_exit(pid);
        }
        goto failed;
    }
    kill(q->pid, SIGKILL);
    wait_exit(q->pid);
    q->pid = 0;
    ret = wait_exit_ms(pid, 10000);
    /* killed before the writer connected: a point without writes, which
     * still checks the recovery of the one before */
    ls->no_conn += ret == EXIT_NO_CONN;
    if (ret != EXIT_CONN_LOST && ret != EXIT_NO_CONN) {
        if (ret < 0) {
            kill(pid, SIGKILL);
            wait_exit(pid);
        }
        why = ret < 0 ? "the writer did not exit 10 s after its server died" :
                        "the writer did not exit with status 3 (connection "
                        "lost) or 4 (no connection)";
        goto failed;
    }

    /* keep the state as the crash left it, in case verify fails */
    if (mkdir(snapd, 0755) < 0) {
        die("cannot create %s: %s", snapd, strerror(errno));
    }
    {
        g_autofree char *s_store = g_strdup_printf("%s/store", snapd);
        g_autofree char *s_cache = g_strdup_printf("%s/cache", snapd);
        g_autofree char *s_log = g_strdup_printf("%s/log", snapd);
        g_autofree char *s_base = g_strdup_printf("%s/base", snapd);
        g_autofree char *s_conf = g_strdup_printf("%s/lsvd.conf", snapd);

        snap.tmp_files = snap.objects = 0;
        if (!o->s3_conf) {
            snapshot(store, s_store, true);
        }
        objects = snap.objects;
        tmp_files = snap.tmp_files;
        snapshot(cache, s_cache, false);
        copy_file(logp, s_log);
        copy_file(base, s_base);
        copy_file(conf, s_conf);
    }
    ls->put_in_progress += tmp_files > 0;
    ls->with_objects += objects > 0;
    ls->objects += objects;
    history_load(logp, 0, &h);
    for (size_t i = 0; i < h.nw; i++) {
        if (h.w[i].id >= first_id) {
            ls->writes++;
            ls->acked += h.w[i].c_line != NO_LINE && h.w[i].ret == 0;
            ls->discards += h.w[i].discard;
        }
    }
    history_free(&h);

    /* recover: a new daemon, in mode b on an empty cache */
    if (mode == 'b') {
        rm_rf(cache);
    }
    qsd_conf(dir, o, q, batch, cache_size);
    t = now_s();
    if (!qsd_start(dir, o, q, seed)) {
        why = "the recovery failed: qemu-storage-daemon did not start";
        goto failed;
    }
    t_recover = now_s() - t;
    ls->t_recover += t_recover;
    t = now_s();
    {
        char *argv[16] = { "lsvd-crash", "verify", "--mode", mode_s,
                           "--log", logp, "--save-base", new_base, "--nbd",
                           sock };
        int n = 10;

        if (pos > 0) {
            argv[n++] = "--base";
            argv[n++] = base;
        }
        argv[n] = NULL;
        ret = wait_exit(spawn(argv, ver_out, conf));
    }
    ls->t_verify += now_s() - t;
    if (o->verbose || ret != 0) {
        printf("crash(%c): seed %" PRIu64 " (%u in chain): batch %" PRIu64
               "M, qsd killed after %u ms, recovered in %.0f ms, verified in "
               "%.0f ms, %u objects%s:%s", mode, seed, pos + 1, batch >> 20,
               ms, t_recover * 1000, (now_s() - t) * 1000, objects,
               tmp_files ? " (+ a PUT in progress)" : "",
               ret == 0 ? " " : " FAILED\n");
        print_file(ver_out, ret == 0 ? "" : "    ");
    }
    if (ret != 0) {
        why = ret == 1 ? "verify found a violation" :
                         "verify could not read the export";
        goto failed;
    }
    if (last && !qsd_stop(dir, q)) {
        why = "qemu-storage-daemon did not stop cleanly after the verify";
        goto failed;
    }
    if (last && o->s3_conf && !qsd_remove(conf, q)) {
        why = "the volume could not be removed";
        goto failed;
    }
    if (rename(new_base, base) < 0) {
        die("cannot rename %s: %s", new_base, strerror(errno));
    }
    ls->passed++;
    return 0;

failed:
    qsd_stop(dir, q);
    ls->failed++;
    ls->violations[mode == 'b']++;
    printf("crash(%c): seed %" PRIu64 " (%u in chain): FAILED: %s\n", mode,
           seed, pos + 1, why);
    print_tail(run_out, "    writer: ", 5);
    print_tail(qsd_out, "    qemu-storage-daemon: ", 5);
    keep = g_strdup_printf("%s/fail-%" PRIu64, dir, seed);
    rm_rf(keep);
    if (rename(snapd, keep) == 0) {
        printf("    the state right after the kill (%s) is in %s\n",
               o->s3_conf ? "cache and log; the objects are in the RGW" :
               "store, cache and log", keep);
    }
    printf("    run the crash points of this volume again (the kills land "
           "elsewhere) with\n    %s loop --qsd %s%s%s --mode %c "
           "--points %u --chain %u --seed %" PRIu64 " -v\n", self_exe,
           o->qsd, o->s3_conf ? " --s3-conf " : "",
           o->s3_conf ? o->s3_conf : "", o->mode == 'x' ? 'x' : mode, pos + 1,
           o->chain, seed - pos);
    return 1;
}

static int cmd_loop(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mode", required_argument, NULL, 'm' },
        { "points", required_argument, NULL, 'n' },
        { "seed", required_argument, NULL, 's' },
        { "chain", required_argument, NULL, 'c' },
        { "keep-going", no_argument, NULL, 'k' },
        { "dir", required_argument, NULL, 'd' },
        { "keep", no_argument, NULL, 'K' },
        { "min-ms", required_argument, NULL, '0' },
        { "max-ms", required_argument, NULL, '1' },
        { "verbose", no_argument, NULL, 'v' },
        { "qsd", required_argument, NULL, 'q' },
        { "s3-conf", required_argument, NULL, '3' },
        { "depth", required_argument, NULL, 'D' },
        { "duration", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    struct loop_opts o = { .chain = 4, .min_ms = 20, .max_ms = 400,
                           .depth = "8" };
    struct loop_stats ls = { 0 };
    struct qsd q = { 0 };
    double duration = 0, last_print;
    const char *dir_opt = NULL;
    char dir[PATH_MAX];
    uint64_t seed = 1, points = 200, done;
    unsigned pos = 0, volumes = 0;
    bool keep_going = false, keep = false;
    double t0;
    ssize_t n;
    int c;

    while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o.mode = optarg[0];
            break;
        case 'n':
            points = strtoull(optarg, NULL, 0);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 0);
            break;
        case 'c':
            o.chain = strtoul(optarg, NULL, 0);
            break;
        case 'k':
            keep_going = true;
            break;
        case 'd':
            dir_opt = optarg;
            break;
        case 'K':
            keep = true;
            break;
        case '0':
            o.min_ms = strtoul(optarg, NULL, 0);
            break;
        case '1':
            o.max_ms = strtoul(optarg, NULL, 0);
            break;
        case 'v':
            o.verbose = true;
            break;
        case 'q':
            o.qsd = optarg;
            break;
        case '3':
            o.s3_conf = optarg;
            break;
        case 'D':
            o.depth = optarg;
            break;
        case 't':
            duration = strtod(optarg, NULL);
            break;
        default:
            return 2;
        }
    }
    if (optind != argc || !strchr("abx", o.mode) || !o.mode ||
        o.max_ms < o.min_ms || o.chain == 0 ||
        ((o.mode == 'x' || o.s3_conf || duration) && !o.qsd)) {
        die("usage: loop --mode a|b|x --points N --seed S [--chain K] "
            "[--keep-going] [--dir DIR] [--keep] [--min-ms MS] "
            "[--max-ms MS] [-v] [--qsd QEMU-STORAGE-DAEMON [--s3-conf FILE] "
            "[--depth N] [--duration S]]  (x: a and b alternating)");
    }
    if (o.s3_conf) {
        q.prefix = g_strdup_printf("crash-%ld-%d", (long)time(NULL),
                                   (int)getpid());
    }
    n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n < 0) {
        die("cannot find this program: %s", strerror(errno));
    }
    self_exe[n] = '\0';
    if (dir_opt) {
        snprintf(dir, sizeof(dir), "%s", dir_opt);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            die("cannot create %s: %s", dir, strerror(errno));
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/lsvd-crash.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            die("cannot create a directory in %s: %s", dir, strerror(errno));
        }
    }
    if (dir[0] != '/') {
        die("--dir must be an absolute path");
    }
    lsvd_set_log_handler(log_to_stderr, "loop");

    if (duration) {
        printf("crash(%c): for %.0f s, seeds from %" PRIu64, o.mode,
               duration, seed);
    } else {
        printf("crash(%c): %" PRIu64 " points, seeds %" PRIu64 "..%" PRIu64,
               o.mode, points, seed, seed + points - 1);
    }
    printf(", a fresh volume every %u, in %s%s%s%s\n", o.chain, dir,
           o.qsd ? "; through qemu-storage-daemon over NBD on " : "",
           o.qsd ? (o.s3_conf ? "s3://, prefix " : "dir://") : "",
           q.prefix ? q.prefix : "");
    fflush(stdout);
    t0 = last_print = now_s();
    for (done = 0; done < points; done++) {
        bool last = pos == o.chain - 1 || done == points - 1;
        /*
         * x alternates per volume, not per point: the base image of a
         * point after a mode a point may hold writes that are only in the
         * journal, which a mode b point then loses, as it may (mode b
         * allows any prefix of all the writes since the volume was
         * created, which one run's log does not describe)
         */
        char mode = o.mode == 'x' ? "ab"[volumes % 2] : o.mode;
        int failed;

        if (duration && now_s() - t0 >= duration) {
            break;
        }
        failed = o.qsd ? crash_point_qsd(dir, seed + done, pos, last, mode,
                                         &o, &ls, &q) :
                         crash_point(dir, seed + done, pos, last, &o, &ls);
        if (duration && now_s() - last_print >= 30) {
            last_print = now_s();
            printf("soak: %.0f s, %" PRIu64 " points (a %u, b %u), %u "
                   "violations (a %u, b %u)\n", last_print - t0, done + 1,
                   ls.points[0], ls.points[1], ls.failed, ls.violations[0],
                   ls.violations[1]);
        }
        if (failed) {
            if (!keep_going) {
                done++;
                break;
            }
            pos = 0;        /* the volume's history is lost: a fresh one */
            volumes++;
        } else {
            pos = last ? 0 : pos + 1;
            volumes += last;
        }
        if (!o.verbose && !duration && (done + 1) % 50 == 0 &&
            done + 1 < points) {
            printf("crash(%c): %" PRIu64 "/%" PRIu64 " points, %u failed\n",
                   o.mode, done + 1, points, ls.failed);
        }
        fflush(stdout);
    }

    if (!qsd_stop(dir, &q)) {
        ls.failed++;
    } else if (o.s3_conf && pos > 0) {
        /* --duration ended a chain early: its volume goes too */
        g_autofree char *conf = g_strdup_printf("%s/lsvd.conf", dir);
        ls.failed += !qsd_remove(conf, &q);
    }
    printf("crash(%c): %" PRIu64 " points, %u violations, %.1f s; per point "
           "%.0f writes (%.0f acked), %.1f objects; kills with objects %u, "
           "during a PUT %u\n", o.mode, done, ls.failed, now_s() - t0,
           (double)ls.writes / MAX(done, 1), (double)ls.acked / MAX(done, 1),
           (double)ls.objects / MAX(done, 1), ls.with_objects,
           ls.put_in_progress);
    if (o.qsd) {
        printf("crash(%c): through NBD: mode a %u points (%u failed), mode b "
               "%u points (%u failed); per point %.1f discards, recovery "
               "(daemon restart) %.0f ms, verify %.0f ms; %u kills before "
               "the writer connected\n", o.mode,
               ls.points[0], ls.violations[0], ls.points[1],
               ls.violations[1], (double)ls.discards / MAX(done, 1),
               ls.t_recover * 1000 / MAX(done, 1),
               ls.t_verify * 1000 / MAX(done, 1), ls.no_conn);
    }
    printf("%u passed, %u failed\n", ls.passed, ls.failed);
    if (ls.failed == 0 && !keep && !dir_opt) {
        rm_rf(dir);
    } else if (ls.failed == 0 && !keep) {
        const char *leaves[] = { "store", "cache", "snap", "log", "base",
                                 "base.new", "lsvd.conf", "run.out",
                                 "verify.out", "qsd.out", "nbd.sock" };
        for (size_t i = 0; i < G_N_ELEMENTS(leaves); i++) {
            g_autofree char *p = g_strdup_printf("%s/%s", dir, leaves[i]);
            rm_rf(p);
        }
    }
    return ls.failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s run|verify|loop|selftest ...\n", prog);
        return 2;
    }
    optind = 2;
    if (!strcmp(argv[1], "run")) {
        return cmd_run(argc, argv);
    }
    if (!strcmp(argv[1], "verify")) {
        return cmd_verify(argc, argv);
    }
    if (!strcmp(argv[1], "loop")) {
        return cmd_loop(argc, argv);
    }
    if (!strcmp(argv[1], "selftest")) {
        return cmd_selftest(argc, argv);
    }
    fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
    return 2;
}
