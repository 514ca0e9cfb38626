/*
 * lsvd - the admin command: create, ls, info, rm.
 *
 *   lsvd [--conf FILE] create NAME SIZE
 *   lsvd [--conf FILE] ls
 *   lsvd [--conf FILE] info NAME
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

#include "lsvd.h"

static const char usage[] =
    "usage: lsvd [--conf FILE] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  create NAME SIZE   create a volume (SIZE like 10G, 512M)\n"
    "  ls                 list volumes\n"
    "  info NAME          show a volume's size and what it stores\n"
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

static int cmd_info(struct lsvd_config *cfg, int argc, char **argv)
{
    struct lsvd_err err = { "" };
    struct lsvd_volume *vol;
    struct lsvd_info info;
    char a[32], b[32], c[32];

    if (argc != 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (lsvd_open(cfg, argv[0], LSVD_OPEN_RDONLY, &vol, &err) < 0) {
        return die(err.msg);
    }
    lsvd_stat(vol, &info);
    lsvd_close(vol);
    human(info.size, a, sizeof(a));
    human(info.stored_bytes, b, sizeof(b));
    human(info.journal_bytes, c, sizeof(c));
    printf("volume:        %s\n", argv[0]);
    printf("size:          %s (%" PRIu64 " bytes)\n", a, info.size);
    printf("backend:       %s\n", lsvd_config_backend_url(cfg));
    printf("objects:       %" PRIu64 " (newest %016" PRIx64 ")\n",
           info.objects, info.last_seq);
    printf("stored:        %s\n", b);
    printf("journal:       %s not yet in objects (cache: %s)\n", c,
           lsvd_config_cache_dir(cfg));
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
