/*
 * backend.c - open the object store a configuration names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "backend.h"
#include "util.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

/*
 * Credentials: the config's pair (or what lsvd_config_set_credentials()
 * put there) wins over the environment's.  A secret key alone (QEMU's
 * key-secret=) takes its access key ID from AWS_ACCESS_KEY_ID.
 */
static int open_s3(const struct lsvd_config *cfg, struct backend *out,
                   struct lsvd_err *err)
{
    struct s3_config c = cfg->s3;

    if (!c.access_key && !c.secret_key) {
        c.access_key = (char *)env("AWS_ACCESS_KEY_ID");
        c.secret_key = (char *)env("AWS_SECRET_ACCESS_KEY");
        if (!c.session_token) {
            c.session_token = (char *)env("AWS_SESSION_TOKEN");
        }
    } else if (!c.access_key) {
        c.access_key = (char *)env("AWS_ACCESS_KEY_ID");
        if (!c.access_key) {
            return lsvd_fail(err, -EACCES, "%s: a secret key is given but "
                             "no access key ID: set access_key_id in "
                             "[backend] or AWS_ACCESS_KEY_ID", cfg->source);
        }
    }
    if (c.access_key && !c.secret_key) {
        return lsvd_fail(err, -EACCES, "%s: access_key_id is set but no "
                         "secret: set secret_access_key, or give QEMU's "
                         "key-secret=", cfg->source);
    }
    if (!c.access_key || !c.secret_key) {
        return lsvd_fail(err, -EACCES, "%s: no S3 credentials: set "
                         "access_key_id and secret_access_key in [backend], "
                         "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                         cfg->source);
    }
    return backend_s3_open(&c, out, err);
}

int backend_open(const struct lsvd_config *cfg, struct backend *out,
                 struct lsvd_err *err)
{
    const char *url = cfg->backend_url;

    if (g_str_has_prefix(url, "dir://")) {
        /* the directory is made on first use so that the embedded default
         * works on a machine where nothing was set up */
        return backend_dir_open(url + strlen("dir://"), true, out, err);
    }
    if (cfg->is_s3) {
        return open_s3(cfg, out, err);
    }
    return lsvd_fail(err, -ENOTSUP, "unsupported backend URL '%s'", url);
}
