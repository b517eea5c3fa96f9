/* csv.c - a table written as comma-separated values, atomically. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rapid/csv.h"
#include "rapid/tmpfiles.h"

static void put_str(FILE *f, const char *s, int width)
{
    int n = (int)strnlen(s, (size_t)width), k;
    int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');

    for (k = 0; k < n && !quote; k++)
        quote = s[k] == ',' || s[k] == '"' || s[k] == '\n';
    if (!quote) {
        fwrite(s, 1, (size_t)n, f);
        return;
    }
    fputc('"', f);
    for (k = 0; k < n; k++) {
        if (s[k] == '"')
            fputc('"', f);
        fputc(s[k], f);
    }
    fputc('"', f);
}

static void put_value(FILE *f, const rapid_column *c, long i)
{
    switch (c->type) {
    case RAPID_COL_F64: {
        double v = ((const double *)c->data)[i];
        if (isnan(v))
            fputs("nan", f);
        else
            fprintf(f, "%.17g", v);
        break;
    }
    case RAPID_COL_F32: {
        float v = ((const float *)c->data)[i];
        if (isnan(v))
            fputs("nan", f);
        else
            fprintf(f, "%.9g", v);
        break;
    }
    case RAPID_COL_I32:
        fprintf(f, "%" PRId32, ((const int32_t *)c->data)[i]);
        break;
    case RAPID_COL_I64:
        fprintf(f, "%" PRId64, ((const int64_t *)c->data)[i]);
        break;
    case RAPID_COL_STR:
        put_str(f, (const char *)c->data + (size_t)i * c->width, c->width);
        break;
    }
}

int rapid_table_write_csv(const char *path, const rapid_table *t, rapid_err *err)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 32);
    const char *slash = strrchr(path, '/');
    FILE *f = NULL;
    int fd = -1, reg = -1, rc = 0, k;
    long i;

    if (!tmp)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", path);
    /* .<name>.<pid>.tmp beside the target, with the umask's permissions */
    if (slash)
        snprintf(tmp, len + 32, "%.*s/.%s.%ld.tmp", (int)(slash - path), path,
                 slash + 1, (long)getpid());
    else
        snprintf(tmp, len + 32, ".%s.%ld.tmp", path, (long)getpid());
    unlink(tmp); /* one of this process's that an earlier failure left */
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666)) < 0) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", path, strerror(errno));
        goto cleanup;
    }
    reg = rapid_tmp_register(tmp, 0);
    if (!(f = fdopen(fd, "w"))) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        goto cleanup;
    }
    for (k = 0; k < t->ncols; k++) {
        if (k)
            fputc(',', f);
        put_str(f, t->cols[k].name, (int)sizeof t->cols[k].name);
    }
    fputc('\n', f);
    for (i = 0; i < t->nrows; i++) {
        for (k = 0; k < t->ncols; k++) {
            if (k)
                fputc(',', f);
            put_value(f, &t->cols[k], i);
        }
        fputc('\n', f);
    }
    if (ferror(f) | (fclose(f) != 0)) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot rename into place: %s", path,
                        strerror(errno));
        unlink(tmp);
    }
cleanup:
    rapid_tmp_unregister(reg);
    free(tmp);
    return rc;
}
