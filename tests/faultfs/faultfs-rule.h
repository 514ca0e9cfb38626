/*
 * faultfs-rule.h - the control language of faultfs (faultfs.c): one
 * command per line, written to MOUNT/.faultfs.  The parser is pure (no
 * FUSE, no state) so that a fuzz target can drive it
 * (tests/fuzz/fuzz-faultfs.c).
 *
 *   KIND GLOB [after=N] [bytes=N] [count=N] [quota=N] [lose=P]
 *       Add a rule.  KIND is one of
 *         eio-write   writes fail with EIO
 *         eio-read    reads fail with EIO
 *         eio-fsync   fsync and fdatasync fail with EIO; with lose=P,
 *                     each sector of the file remembered by track goes
 *                     back to its old contents with probability P
 *                     percent, as Linux may drop dirty pages whose
 *                     writeback failed (a later fsync then succeeds)
 *         enospc      writes and fallocate fail with ENOSPC; with
 *                     quota=N only those that reach beyond byte N of the
 *                     file (a truncate that grows a file is sparse and
 *                     never fails, as on a real filesystem)
 *       GLOB is an fnmatch(3) pattern matched against the file's name
 *       (its last component; the whole path below the mount, without
 *       the leading '/', if GLOB has a '/'; an open file keeps the name
 *       it was opened under).  The rule first lets
 *       after=N matching operations and bytes=N bytes pass, then
 *       injects its fault count=N times (0, the default: for ever).
 *   track GLOB
 *       From now on remember, for matching files, the old contents of
 *       every 512-byte sector written since the file's last successful
 *       fsync or fdatasync (the device's volatile write cache): a
 *       powercut with lose= may revert them.
 *   clear [GLOB]
 *       Remove every rule and track (or those whose GLOB is exactly
 *       this one).
 *   powercut [seed=N] [lose=P]
 *       Model a power cut from now on: each remembered sector (see
 *       track) reverts to its old contents with probability P percent
 *       (0..100, default 0), as if the device's cache had persisted its
 *       sectors in any order; the next write is torn (a seeded number
 *       of its whole 512-byte sectors, fewer than all, reaches the
 *       backing file; the caller is told it succeeded), every later
 *       write is dropped (reported as done), every later metadata change
 *       fails with EIO, and every later fsync blocks until the
 *       filesystem is unmounted.  It cannot be undone.
 *
 * Numbers are decimal with an optional k, M or G suffix (powers of 1024).
 * Blank lines and lines starting with '#' are ignored (FF_NOP).
 *
 * Errors: ff_parse() returns 0 or -EINVAL, nothing else.
 */
#ifndef FAULTFS_RULE_H
#define FAULTFS_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FF_LINE_MAX 512         /* one command, newline excluded */
#define FF_GLOB_MAX 256         /* a glob, NUL included */
#define FF_GLOB_STARS 8         /* at most this many '*': fnmatch is
                                 * exponential in them */

enum ff_kind {
    FF_EIO_WRITE,
    FF_EIO_READ,
    FF_EIO_FSYNC,
    FF_ENOSPC,
    FF_KINDS
};

enum ff_verb {
    FF_NOP,
    FF_ADD,
    FF_CLEAR,
    FF_POWERCUT,
    FF_TRACK,
};

struct ff_cmd {
    enum ff_verb verb;
    enum ff_kind kind;          /* FF_ADD */
    char glob[FF_GLOB_MAX];     /* FF_ADD, FF_TRACK; FF_CLEAR: "" = all */
    uint64_t after;             /* operations to let pass first */
    uint64_t bytes;             /* bytes to let pass first */
    uint64_t count;             /* faults to inject; 0: unlimited */
    uint64_t quota;             /* enospc: the size limit; 0: none */
    bool has_quota;
    uint64_t seed;              /* powercut */
    uint64_t lose;              /* powercut, eio-fsync: percent, 0..100 */
};

/* The name of a kind ("eio-write"...), for the status report. */
const char *ff_kind_name(enum ff_kind kind);

/* Parse one line of @len bytes (a trailing newline is allowed; a NUL is
 * not) into @out.  0 or -EINVAL. */
int ff_parse(const char *line, size_t len, struct ff_cmd *out);

/* Write @cmd back as a line (no newline) that ff_parse() reads to the
 * same command; returns what snprintf() returns. */
int ff_format(const struct ff_cmd *cmd, char *buf, size_t size);

/* Whether @path (below the mount, no leading '/') matches @glob. */
bool ff_match(const char *glob, const char *path);

#endif /* FAULTFS_RULE_H */
