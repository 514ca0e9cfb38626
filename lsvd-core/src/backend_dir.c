/*
 * backend_dir.c - an object store in a local directory: the embedded
 * default, usable with no server at all.
 *
 * Object "VOL/NAME" is the file ROOT/VOL/NAME.  A PUT writes a hidden
 * temporary file beside it, fsyncs it, renames it into place and fsyncs
 * the directory, so a reader sees all of an object or none of it, and an
 * object is durable once put() returns.
 *
 * Counters are relaxed atomics: each call adds to them once, whatever
 * thread it runs on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "backend.h"
#include "util.h"

struct dir_store {
    char *root;
    struct backend_counters n;      /* __atomic access only */
};

static void count(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

/* Count one request of kind @c (bytes in @bytes_c if it succeeded). */
static int counted(struct dir_store *s, uint64_t *c, uint64_t *bytes_c,
                   ssize_t ret, uint64_t bytes)
{
    count(c, 1);
    if (ret < 0 && ret != -ENOENT) {
        count(&s->n.errors, 1);
    } else if (bytes_c) {
        count(bytes_c, bytes);
    }
    return ret;
}

/* Names are ours, but refuse anything that could leave the root. */
static bool name_ok(const char *name)
{
    return name[0] != '/' && name[0] != '.' && !strstr(name, "/.") &&
           !strstr(name, "//");
}

static int dir_put_one(void *be, const char *name, const struct iovec *iov,
                       int iovcnt)
{
    struct dir_store *s = be;
    g_autofree char *path = NULL, *dir = NULL;

    if (!name_ok(name)) {
        return -EINVAL;
    }
    path = g_build_filename(s->root, name, NULL);
    dir = g_path_get_dirname(path);
    if (g_mkdir_with_parents(dir, 0755) < 0) {
        return -errno;
    }
    return lsvd_replace_file(path, iov, iovcnt, 0644);
}

static int dir_put(void *be, const char *name, const struct iovec *iov,
                   int iovcnt)
{
    struct dir_store *s = be;
    uint64_t len = 0;

    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
    }
    return counted(s, &s->n.put, &s->n.put_bytes,
                   dir_put_one(be, name, iov, iovcnt), len);
}

static ssize_t dir_get_one(void *be, const char *name, uint64_t offset,
                           void *buf, size_t len)
{
    struct dir_store *s = be;
    g_autofree char *path = NULL;
    size_t done = 0;
    int fd;

    if (!name_ok(name)) {
        return -EINVAL;
    }
    path = g_build_filename(s->root, name, NULL);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, offset + done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int ret = -errno;
            close(fd);
            return ret;
        }
        if (n == 0) {
            break;
        }
        done += n;
    }
    close(fd);
    return done;
}

static ssize_t dir_get_range(void *be, const char *name, uint64_t offset,
                             void *buf, size_t len)
{
    struct dir_store *s = be;
    ssize_t ret = dir_get_one(be, name, offset, buf, len);

    return counted(s, &s->n.get, &s->n.get_bytes, ret, ret < 0 ? 0 : ret);
}

static int dir_del_one(void *be, const char *name)
{
    struct dir_store *s = be;
    g_autofree char *path = NULL, *dir = NULL;
    int ret;

    if (!name_ok(name)) {
        return -EINVAL;
    }
    path = g_build_filename(s->root, name, NULL);
    if (unlink(path) < 0) {
        return -errno;
    }
    dir = g_path_get_dirname(path);
    ret = lsvd_fsync_dir(dir);
    if (strcmp(dir, s->root) != 0) {
        rmdir(dir);     /* drops an emptied volume directory, else fails */
    }
    return ret;
}

static int dir_del(void *be, const char *name)
{
    struct dir_store *s = be;

    return counted(s, &s->n.del, NULL, dir_del_one(be, name), 0);
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dir_list_one(void *be, const char *prefix, GPtrArray **out)
{
    struct dir_store *s = be;
    g_autofree char *path = NULL;
    GPtrArray *names;
    struct dirent *de;
    DIR *d;

    if (*prefix && (!name_ok(prefix) || !g_str_has_suffix(prefix, "/"))) {
        return -EINVAL;
    }
    path = g_build_filename(s->root, prefix, NULL);
    d = opendir(path);
    if (!d) {
        if (errno == ENOENT && *prefix) {
            *out = g_ptr_array_new_with_free_func(g_free);
            return 0;
        }
        return -errno;
    }
    names = g_ptr_array_new_with_free_func(g_free);
    while ((de = readdir(d))) {
        bool is_dir;

        if (de->d_name[0] == '.') {
            continue;       /* ".", "..", and PUTs in progress */
        }
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            g_autofree char *p = g_build_filename(path, de->d_name, NULL);
            is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
        } else {
            is_dir = de->d_type == DT_DIR;
        }
        g_ptr_array_add(names, g_strdup_printf("%s%s%s", prefix, de->d_name,
                                               is_dir ? "/" : ""));
    }
    closedir(d);
    g_ptr_array_sort(names, cmp_names);
    *out = names;
    return 0;
}

static int dir_list(void *be, const char *prefix, GPtrArray **out)
{
    struct dir_store *s = be;

    return counted(s, &s->n.list, NULL, dir_list_one(be, prefix, out), 0);
}

static int dir_head_one(void *be, const char *name, uint64_t *size)
{
    struct dir_store *s = be;
    g_autofree char *path = NULL;
    struct stat st;

    if (!name_ok(name)) {
        return -EINVAL;
    }
    path = g_build_filename(s->root, name, NULL);
    if (stat(path, &st) < 0) {
        return -errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return -ENOENT;
    }
    *size = st.st_size;
    return 0;
}

static int dir_head(void *be, const char *name, uint64_t *size)
{
    struct dir_store *s = be;

    return counted(s, &s->n.head, NULL, dir_head_one(be, name, size), 0);
}

static void dir_counters(void *be, struct backend_counters *out)
{
    struct dir_store *s = be;
    const uint64_t *src = (const uint64_t *)&s->n;
    uint64_t *dst = (uint64_t *)out;

    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++) {
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
}

static void dir_destroy(void *be)
{
    struct dir_store *s = be;

    g_free(s->root);
    g_free(s);
}

static const struct backend_ops dir_ops = {
    .put = dir_put,
    .get_range = dir_get_range,
    .del = dir_del,
    .list = dir_list,
    .head = dir_head,
    .destroy = dir_destroy,
    .counters = dir_counters,
};

int backend_dir_open(const char *root, bool create, struct backend *out,
                     struct lsvd_err *err)
{
    struct dir_store *s;

    if (create && g_mkdir_with_parents(root, 0755) < 0) {
        return lsvd_fail(err, -errno, "cannot create store directory %s: %s",
                         root, g_strerror(errno));
    }
    if (!g_file_test(root, G_FILE_TEST_IS_DIR)) {
        return lsvd_fail(err, -ENOENT, "store directory %s does not exist",
                         root);
    }
    s = g_new0(struct dir_store, 1);
    s->root = g_strdup(root);
    out->ops = &dir_ops;
    out->be = s;
    return 0;
}
