/*
 * lsvd - the admin command: create, ls, info, rm.
 *
 *   lsvd [--conf FILE] create NAME SIZE
 *   lsvd [--conf FILE] ls
 *   lsvd [--conf FILE] info NAME
 *   lsvd [--conf FILE] stats NAME
 *   lsvd [--conf FILE] rm NAME
 *
 * Errors go to stderr as one line "lsvd: ..." and the exit status is 1
 * (2 for a usage error).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lsvd.h"

static const char usage[] =
    "usage: lsvd [--conf FILE] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  create NAME SIZE   create a volume (SIZE like 10G, 512M)\n"
    "  ls                 list volumes\n"
    "  info NAME          show a volume's size, what it stores, cache use and\n"
    "                     the counters of its last (or current) session\n"
    "  stats NAME         print those counters as key value lines\n"
    "  rm NAME            remove a volume and all its data\n"
    "\n"
    "The configuration comes from --conf, else $LSVD_CONF, else "
    LSVD_DEFAULT_CONF ",\nelse the built-in defaults (a store under "
    "/var/lib/lsvd).\n";

static void log_stderr(void *arg, enum lsvd_log_level level,
                       const char *msg)
{
    (void)arg;
    if (level <= LSVD_LOG_WARNING) {
        fprintf(stderr, "lsvd: %s: %s\n",
                level == LSVD_LOG_ERROR ? "error" : "warning", msg);
    }
}

static void human(uint64_t v, char *buf, size_t len)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double d = v;
    int u = 0;

    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(buf, len, "%" PRIu64 " B", v);
    } else {
        snprintf(buf, len, "%.1f %s", d, units[u]);
    }
}

static int die(const char *msg)
{
    fprintf(stderr, "lsvd: %s\n", msg);
    return 1;
}

static int cmd_create(struct lsvd_config *cfg, int argc, char **argv)
{
    struct lsvd_err err = { "" };
    uint64_t size;
    int ret;

    if (argc != 2) {
        fputs(usage, stderr);
        return 2;
    }
    ret = lsvd_parse_size(argv[1], &size);
    if (ret < 0) {
        fprintf(stderr, "lsvd: '%s' is not a size (examples: 10G, 512M, "
                "1048576)\n", argv[1]);
        return 1;
    }
    if (lsvd_create(cfg, argv[0], size, &err) < 0) {
        return die(err.msg);
    }
    return 0;
}

static int cmd_ls(struct lsvd_config *cfg, int argc, char **argv)
{
    struct lsvd_err err = { "" };
    char **names;

    (void)argv;
    if (argc != 0) {
        fputs(usage, stderr);
        return 2;
    }
    if (lsvd_list(cfg, &names, &err) < 0) {
        return die(err.msg);
    }
    for (char **n = names; *n; n++) {
        printf("%s\n", *n);
    }
    lsvd_free_names(names);
    return 0;
}

/* Bytes a file takes on its device (a sparse file takes less than its
 * size), or 0 if it does not exist. */
static uint64_t disk_use(const char *dir, const char *name, const char *ext)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/*
 * The counters file a writable open keeps (docs/format.md), as text; NULL
 * if there is none or its CRC is wrong.  Read into a bounded,
 * NUL-terminated buffer; stat_value() looks values up in it.
 */
static char *read_stats(struct lsvd_config *cfg, const char *name)
{
    char *path = lsvd_stats_path(cfg, name);
    char buf[8192], *crc;
    size_t n = 0;
    FILE *f = fopen(path, "r");

    free(path);
    if (!f) {
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    crc = strstr(buf, "crc32c ");
    if (strncmp(buf, "lsvd-stats 1\n", 13) != 0 || !crc ||
        (crc != buf && crc[-1] != '\n') ||
        strtoul(crc + 7, NULL, 16) != lsvd_checksum(buf, crc - buf)) {
        return NULL;
    }
    *crc = '\0';
    return strdup(buf + 13);
}

/* Value of "key N" in stats text, or 0. */
static uint64_t stat_value(const char *text, const char *key)
{
    size_t k = strlen(key);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (!strncmp(p, key, k) && p[k] == ' ') {
            return strtoull(p + k + 1, NULL, 10);
        }
    }
    return 0;
}

static void print_counters(const char *t)
{
    char a[32], b[32], c[32];
    uint64_t hits = stat_value(t, "rc_hits");
    uint64_t misses = stat_value(t, "rc_misses");
    time_t when = stat_value(t, "time");

    printf("counters of pid %" PRIu64 ", %s", stat_value(t, "pid"),
           ctime(&when));
    human(stat_value(t, "read_bytes"), a, sizeof(a));
    human(stat_value(t, "write_bytes"), b, sizeof(b));
    printf("  client:      %" PRIu64 " reads (%s), %" PRIu64 " writes (%s), "
           "%" PRIu64 " zeroes, %" PRIu64 " flushes\n",
           stat_value(t, "reads"), a, stat_value(t, "writes"), b,
           stat_value(t, "zeroes"), stat_value(t, "flushes"));
    human(stat_value(t, "be_put_bytes"), a, sizeof(a));
    human(stat_value(t, "be_get_bytes"), b, sizeof(b));
    printf("  store:       %" PRIu64 " PUT (%s), %" PRIu64 " GET (%s), "
           "%" PRIu64 " HEAD, %" PRIu64 " DELETE, %" PRIu64 " LIST, "
           "%" PRIu64 " retries, %" PRIu64 " errors\n",
           stat_value(t, "be_put"), a, stat_value(t, "be_get"), b,
           stat_value(t, "be_head"), stat_value(t, "be_delete"),
           stat_value(t, "be_list"), stat_value(t, "be_retries"),
           stat_value(t, "be_errors"));
    human(stat_value(t, "journal_used"), a, sizeof(a));
    human(stat_value(t, "journal_size"), b, sizeof(b));
    human(stat_value(t, "journal_bytes"), c, sizeof(c));
    printf("  journal:     %s of %s in use, %s not yet in objects\n", a, b,
           c);
    human(stat_value(t, "rc_used"), a, sizeof(a));
    human(stat_value(t, "rc_size"), b, sizeof(b));
    printf("  read cache:  %s of %s, %" PRIu64 " hits, %" PRIu64 " misses "
           "(%.1f%% hits), %" PRIu64 " prefetched, %" PRIu64 " evicted\n",
           a, b, hits, misses,
           hits + misses ? 100.0 * hits / (hits + misses) : 0.0,
           stat_value(t, "rc_prefetched"), stat_value(t, "rc_evictions"));
}

static int cmd_info(struct lsvd_config *cfg, int argc, char **argv)
{
    struct lsvd_err err = { "" };
    struct lsvd_volume *vol;
    struct lsvd_info info;
    const char *cache = lsvd_config_cache_dir(cfg);
    char a[32], b[32], c[32];
    char *stats;
    int ret;

    if (argc != 1) {
        fputs(usage, stderr);
        return 2;
    }
    ret = lsvd_open(cfg, argv[0], LSVD_OPEN_RDONLY, &vol, &err);
    stats = read_stats(cfg, argv[0]);
    if (ret == -EBUSY && stats) {
        /* open in another process (QEMU): what its counters say */
        info.size = stat_value(stats, "size");
        info.objects = stat_value(stats, "objects");
        info.last_seq = stat_value(stats, "last_seq");
        info.stored_bytes = stat_value(stats, "stored_bytes");
        info.journal_bytes = stat_value(stats, "journal_bytes");
        printf("volume:        %s (open in process %" PRIu64 ")\n", argv[0],
               stat_value(stats, "pid"));
    } else if (ret < 0) {
        free(stats);
        return die(err.msg);
    } else {
        lsvd_stat(vol, &info);
        lsvd_close(vol);
        printf("volume:        %s\n", argv[0]);
    }
    human(info.size, a, sizeof(a));
    human(info.stored_bytes, b, sizeof(b));
    human(info.journal_bytes, c, sizeof(c));
    printf("size:          %s (%" PRIu64 " bytes)\n", a, info.size);
    printf("backend:       %s\n", lsvd_config_backend_url(cfg));
    printf("objects:       %" PRIu64 " (newest %016" PRIx64 ")\n",
           info.objects, info.last_seq);
    printf("stored:        %s\n", b);
    printf("journal:       %s not yet in objects\n", c);
    human(disk_use(cache, argv[0], "journal"), a, sizeof(a));
    human(disk_use(cache, argv[0], "rcache"), b, sizeof(b));
    printf("cache:         %s: journal %s, read cache %s on disk\n", cache,
           a, b);
    if (stats) {
        print_counters(stats);
        free(stats);
    }
    return 0;
}

static int cmd_stats(struct lsvd_config *cfg, int argc, char **argv)
{
    char *stats;

    if (argc != 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (!lsvd_name_valid(argv[0])) {
        fprintf(stderr, "lsvd: '%s' is not a valid volume name\n", argv[0]);
        return 1;
    }
    stats = read_stats(cfg, argv[0]);
    if (!stats) {
        fprintf(stderr, "lsvd: no counters for '%s' in %s (it has not been "
                "opened for writing with this cache)\n", argv[0],
                lsvd_config_cache_dir(cfg));
        return 1;
    }
    fputs(stats, stdout);
    free(stats);
    return 0;
}

static int cmd_rm(struct lsvd_config *cfg, int argc, char **argv)
{
    struct lsvd_err err = { "" };

    if (argc != 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (lsvd_remove(cfg, argv[0], &err) < 0) {
        return die(err.msg);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct lsvd_config *, int, char **);
    } cmds[] = {
        { "create", cmd_create },
        { "ls", cmd_ls },
        { "info", cmd_info },
        { "stats", cmd_stats },
        { "rm", cmd_rm },
    };
    struct lsvd_err err = { "" };
    struct lsvd_config *cfg;
    const char *conf = NULL;
    int i = 1, ret;

    if (i < argc && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (i + 1 < argc && (!strcmp(argv[i], "--conf") ||
                         !strcmp(argv[i], "-c"))) {
        conf = argv[i + 1];
        i += 2;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
        if (!strcmp(argv[i], cmds[k].name)) {
            lsvd_set_log_handler(log_stderr, NULL);
            if (lsvd_config_load(conf, &cfg, &err) < 0) {
                return die(err.msg);
            }
            ret = cmds[k].fn(cfg, argc - i - 1, argv + i + 1);
            lsvd_config_free(cfg);
            return ret;
        }
    }
    fprintf(stderr, "lsvd: unknown command '%s'\n", argv[i]);
    fputs(usage, stderr);
    return 2;
}
