/*
 * backend_s3.c - PLACEHOLDER until the S3 backend lands (issue 4): every
 * open fails, so an s3:// config is refused clearly.
 */
#include <errno.h>

#include "backend.h"
#include "util.h"

int backend_s3_open(const struct s3_config *c, struct backend *out,
                    struct lsvd_err *err)
{
    (void)out;
    return lsvd_fail(err, -ENOTSUP, "s3://%s: the S3 backend is not built "
                     "yet", c->bucket);
}
