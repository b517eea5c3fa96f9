/* table.c - rapid_table in memory, and as a FITS BINTABLE through CFITSIO.
 *
 * Columns are scalar: one value (or one fixed-width string) per row.  On
 * read, vector, bit, complex and variable-length columns are skipped, since
 * nothing in the pipeline stores those and a caller could not tell them from
 * scalars in a rapid_column.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fits_internal.h"

/* CFITSIO's TINT and TLONGLONG read and write the int32_t and int64_t
 * buffers of a rapid_column directly. */
_Static_assert(sizeof(int) == sizeof(int32_t), "TINT must be 32-bit");
_Static_assert(sizeof(long long) == sizeof(int64_t), "TLONGLONG: 64-bit");

/* A FITS string value holds at most 68 characters. */
#define NAME_MAX_LEN 68

/* ------------------------------------------------------- tables in memory */

int rapid_table_init(rapid_table *t, long nrows)
{
    t->nrows = 0;
    t->ncols = 0;
    t->cols = NULL;
    rapid_header_init(&t->hdr);
    if (nrows < 0)
        return RAPID_E_ARG;
    t->nrows = nrows;
    return 0;
}

void rapid_table_release(rapid_table *t)
{
    int i;

    if (!t)
        return;
    for (i = 0; i < t->ncols; i++)
        free(t->cols[i].data);
    free(t->cols);
    rapid_header_release(&t->hdr);
    t->cols = NULL;
    t->ncols = 0;
    t->nrows = 0;
}

static void *add_column(rapid_table *t, const char *name, const char *unit,
                        rapid_coltype type, int width, size_t elsize)
{
    rapid_column *cols = NULL, *c = NULL;
    size_t bytes;

    if (!t || !name || !*name || strlen(name) > NAME_MAX_LEN ||
        (unit && strlen(unit) > NAME_MAX_LEN) || t->nrows < 0 ||
        (t->nrows > 0 && elsize > SIZE_MAX / (size_t)t->nrows))
        return NULL;
    cols = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof *cols);
    if (!cols)
        return NULL;
    t->cols = cols;
    c = &cols[t->ncols];
    memset(c, 0, sizeof *c);
    bytes = (size_t)t->nrows * elsize;
    /* A 0-row column still gets a pointer, so that NULL means failure. */
    c->data = calloc(bytes ? bytes : 1, 1);
    if (!c->data)
        return NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->unit, sizeof c->unit, "%s", unit ? unit : "");
    c->type = type;
    c->width = width;
    t->ncols++;
    return c->data;
}

double *rapid_table_add_f64(rapid_table *t, const char *name, const char *unit)
{
    return add_column(t, name, unit, RAPID_COL_F64, 0, sizeof(double));
}

float *rapid_table_add_f32(rapid_table *t, const char *name, const char *unit)
{
    return add_column(t, name, unit, RAPID_COL_F32, 0, sizeof(float));
}

int32_t *rapid_table_add_i32(rapid_table *t, const char *name, const char *unit)
{
    return add_column(t, name, unit, RAPID_COL_I32, 0, sizeof(int32_t));
}

int64_t *rapid_table_add_i64(rapid_table *t, const char *name, const char *unit)
{
    return add_column(t, name, unit, RAPID_COL_I64, 0, sizeof(int64_t));
}

char *rapid_table_add_str(rapid_table *t, const char *name, int width)
{
    if (width <= 0)
        return NULL;
    return add_column(t, name, NULL, RAPID_COL_STR, width, (size_t)width);
}

const rapid_column *rapid_table_col(const rapid_table *t, const char *name)
{
    int i;

    if (!t || !name)
        return NULL;
    for (i = 0; i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

/* ---------------------------------------------------------------- reading */

/* The rapid type for a CFITSIO column type, 0 if the column is skipped.
 * The "equivalent" type already accounts for TSCALn/TZEROn, so scaled
 * integers arrive as floats and unsigned 32-bit ones as 64-bit. */
static int scalar_type(int eqtype, LONGLONG repeat, LONGLONG width,
                       rapid_coltype *type)
{
    if (eqtype == TSTRING) {
        *type = RAPID_COL_STR;
        return repeat > 0 && repeat == width && repeat <= INT_MAX;
    }
    if (repeat != 1)
        return 0;
    switch (eqtype) {
    case TLOGICAL: case TBYTE: case TSBYTE: case TSHORT: case TUSHORT:
    case TINT: case TLONG:
        *type = RAPID_COL_I32;
        return 1;
    case TUINT: case TULONG: case TLONGLONG:
        *type = RAPID_COL_I64;
        return 1;
    case TFLOAT:
        *type = RAPID_COL_F32;
        return 1;
    case TDOUBLE:
        *type = RAPID_COL_F64;
        return 1;
    default:
        return 0;
    }
}

/* TTYPEn and TUNITn; a column without TTYPEn is called COLn. */
static void column_names(fitsfile *f, int col, char *name, char *unit)
{
    char key[FLEN_KEYWORD];
    int status = 0;

    snprintf(key, sizeof key, "TTYPE%d", col);
    if (fits_read_key(f, TSTRING, key, name, NULL, &status) || !*name)
        snprintf(name, NAME_MAX_LEN + 1, "COL%d", col);
    status = 0;
    snprintf(key, sizeof key, "TUNIT%d", col);
    if (fits_read_key(f, TSTRING, key, unit, NULL, &status))
        unit[0] = '\0';
    fits_clear_errmsg();
}

/* Logical columns only convert to CFITSIO's TLOGICAL chars. */
static int read_logical(fitsfile *f, int col, long nrows, int32_t *out,
                        int *status)
{
    char *buf = malloc(nrows > 0 ? (size_t)nrows : 1);
    char nul = 0;
    int anynul = 0;
    long i;

    if (!buf)
        return *status = MEMORY_ALLOCATION;
    if (!fits_read_col(f, TLOGICAL, col, 1, 1, nrows, &nul, buf, &anynul,
                       status))
        for (i = 0; i < nrows; i++)
            out[i] = buf[i] != 0;
    free(buf);
    return *status;
}

static int read_strings(fitsfile *f, int col, long nrows, int width,
                        char *out, int *status)
{
    char **rows = malloc((size_t)nrows * sizeof *rows);
    char *buf = malloc((size_t)nrows * ((size_t)width + 1));
    int anynul = 0;
    long i;

    if (!rows || !buf) {
        *status = MEMORY_ALLOCATION;
        goto cleanup;
    }
    for (i = 0; i < nrows; i++)
        rows[i] = buf + (size_t)i * ((size_t)width + 1);
    if (fits_read_col(f, TSTRING, col, 1, 1, nrows, "", rows, &anynul,
                      status))
        goto cleanup;
    /* CFITSIO drops trailing blanks; rows are NUL-padded here. */
    for (i = 0; i < nrows; i++)
        strncpy(out + (size_t)i * (size_t)width, rows[i], (size_t)width);
cleanup:
    free(rows);
    free(buf);
    return *status;
}

static int read_values(fitsfile *f, int col, int eqtype, long nrows,
                       rapid_column *c, int *status)
{
    double dnan = NAN;
    float fnan = NAN;
    int anynul = 0;

    if (nrows == 0)
        return 0;
    switch (c->type) {
    case RAPID_COL_F64:
        return fits_read_col(f, TDOUBLE, col, 1, 1, nrows, &dnan, c->data,
                             &anynul, status);
    case RAPID_COL_F32:
        return fits_read_col(f, TFLOAT, col, 1, 1, nrows, &fnan, c->data,
                             &anynul, status);
    case RAPID_COL_I32:
        if (eqtype == TLOGICAL)
            return read_logical(f, col, nrows, c->data, status);
        return fits_read_col(f, TINT, col, 1, 1, nrows, NULL, c->data,
                             &anynul, status);
    case RAPID_COL_I64:
        return fits_read_col(f, TLONGLONG, col, 1, 1, nrows, NULL, c->data,
                             &anynul, status);
    case RAPID_COL_STR:
        return read_strings(f, col, nrows, c->width, c->data, status);
    }
    return 0;
}

static int read_column(fitsfile *f, const char *label, int col,
                       rapid_table *t, rapid_err *err)
{
    char name[FLEN_VALUE] = "", unit[FLEN_VALUE] = "";
    LONGLONG repeat = 0, width = 0;
    rapid_coltype type = RAPID_COL_F64;
    int status = 0, eqtype = 0;
    size_t elsize[] = {sizeof(double), sizeof(float), sizeof(int32_t),
                       sizeof(int64_t), 1};
    void *data = NULL;

    if (fits_get_eqcoltypell(f, col, &eqtype, &repeat, &width, &status))
        return rapid_cfitsio_fail(err, status, label,
                                  "cannot read the type of column %d", col);
    if (!scalar_type(eqtype, repeat, width, &type))
        return 0;
    column_names(f, col, name, unit);
    if (type == RAPID_COL_STR)
        data = add_column(t, name, unit, type, (int)repeat, (size_t)repeat);
    else
        data = add_column(t, name, unit, type, 0, elsize[type]);
    if (!data)
        return rapid_fail(err, RAPID_E_NOMEM,
                          "%s: column %s: out of memory", label, name);
    if (read_values(f, col, eqtype, t->nrows, &t->cols[t->ncols - 1],
                    &status))
        return rapid_cfitsio_fail(err, status, label,
                                  "cannot read column %s", name);
    return 0;
}

int rapid_fits_read_table(const char *path, const char *hdu, rapid_table *t,
                          rapid_err *err)
{
    char label[RAPID_LABEL_MAX];
    fitsfile *f = NULL;
    LONGLONG nrows = 0;
    int rc = 0, status = 0, ncols = 0, i;

    rapid_table_init(t, 0);
    if ((rc = rapid_fits_open_hdu(&f, path, hdu, RAPID_WANT_TABLE, label,
                                  sizeof label, err)) != 0)
        goto cleanup;
    if (fits_get_num_rowsll(f, &nrows, &status) ||
        fits_get_num_cols(f, &ncols, &status)) {
        rc = rapid_cfitsio_fail(err, status, label, "cannot read table size");
        goto cleanup;
    }
    if (nrows > LONG_MAX || (uint64_t)nrows > SIZE_MAX / 8) {
        rc = rapid_fail(err, RAPID_E_RANGE, "%s: %lld rows are too many",
                        label, (long long)nrows);
        goto cleanup;
    }
    t->nrows = (long)nrows;
    for (i = 1; i <= ncols && !rc; i++)
        rc = read_column(f, label, i, t, err);
    if (!rc)
        rc = rapid_fits_read_cards(f, label, rapid_fits_table_layout, &t->hdr,
                                   err);
cleanup:
    if (rc)
        rapid_table_release(t);
    rapid_fits_close(f);
    return rc;
}

/* ---------------------------------------------------------------- writing */

static void column_form(const rapid_column *c, char form[24])
{
    switch (c->type) {
    case RAPID_COL_F64: snprintf(form, 24, "1D"); break;
    case RAPID_COL_F32: snprintf(form, 24, "1E"); break;
    case RAPID_COL_I32: snprintf(form, 24, "1J"); break;
    case RAPID_COL_I64: snprintf(form, 24, "1K"); break;
    case RAPID_COL_STR: snprintf(form, 24, "%dA", c->width); break;
    }
}

/* CFITSIO wants one NUL-terminated string per row. */
static int write_strings(fitsfile *f, int col, const rapid_column *c,
                         long first, long nrows, int *status)
{
    size_t w = (size_t)c->width;
    char **rows = malloc((size_t)nrows * sizeof *rows);
    char *buf = malloc((size_t)nrows * (w + 1));
    long i;

    if (!rows || !buf) {
        *status = MEMORY_ALLOCATION;
        goto cleanup;
    }
    for (i = 0; i < nrows; i++) {
        rows[i] = buf + (size_t)i * (w + 1);
        memcpy(rows[i], (const char *)c->data + (size_t)(first + i) * w, w);
        rows[i][w] = '\0';
    }
    fits_write_col(f, TSTRING, col, first + 1, 1, nrows, rows, status);
cleanup:
    free(rows);
    free(buf);
    return *status;
}

/* Rows first .. first + nrows - 1 (from 0) of a column. */
static int write_column(fitsfile *f, int col, const rapid_column *c,
                        long first, long nrows, int *status)
{
    LONGLONG r = first + 1;

    if (nrows == 0)
        return 0;
    switch (c->type) {
    case RAPID_COL_F64:
        return fits_write_col(f, TDOUBLE, col, r, 1, nrows,
                              (double *)c->data + first, status);
    case RAPID_COL_F32:
        return fits_write_col(f, TFLOAT, col, r, 1, nrows,
                              (float *)c->data + first, status);
    case RAPID_COL_I32:
        return fits_write_col(f, TINT, col, r, 1, nrows,
                              (int32_t *)c->data + first, status);
    case RAPID_COL_I64:
        return fits_write_col(f, TLONGLONG, col, r, 1, nrows,
                              (int64_t *)c->data + first, status);
    case RAPID_COL_STR:
        return write_strings(f, col, c, first, nrows, status);
    }
    return 0;
}

static int check_table(const rapid_table *t, const char *label,
                       rapid_err *err)
{
    int i;

    if (!t || t->nrows < 0 || t->ncols < 0 || (t->ncols > 0 && !t->cols))
        return rapid_fail(err, RAPID_E_ARG, "%s: no table to write", label);
    for (i = 0; i < t->ncols; i++)
        if (!t->cols[i].data || !t->cols[i].name[0] ||
            (t->cols[i].type == RAPID_COL_STR && t->cols[i].width <= 0))
            return rapid_fail(err, RAPID_E_ARG,
                              "%s: column %d (%s) has no data, name or width",
                              label, i + 1, t->cols[i].name);
    return 0;
}

/* The HDU's layout: TTYPEn, TFORMn and TUNITn. */
static int create_table(fitsfile *f, const rapid_table *t,
                        const char *extname, const char *label,
                        rapid_err *err)
{
    size_t n = t->ncols > 0 ? (size_t)t->ncols : 1;
    char **ttype = calloc(n, sizeof *ttype), **tform = calloc(n, sizeof *tform);
    char **tunit = calloc(n, sizeof *tunit);
    char(*forms)[24] = calloc(n, sizeof *forms);
    int rc = 0, status = 0, i;

    if (!ttype || !tform || !tunit || !forms) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "%s: out of memory", label);
        goto cleanup;
    }
    for (i = 0; i < t->ncols; i++) {
        column_form(&t->cols[i], forms[i]);
        ttype[i] = (char *)t->cols[i].name;
        tform[i] = forms[i];
        tunit[i] = (char *)t->cols[i].unit;
    }
    if (fits_create_tbl(f, BINARY_TBL, t->nrows, t->ncols, ttype, tform,
                        tunit, extname && *extname ? extname : NULL, &status))
        rc = rapid_cfitsio_fail(err, status, label, "cannot start table %s",
                                extname && *extname ? extname : "HDU");
cleanup:
    free(ttype);
    free(tform);
    free(tunit);
    free(forms);
    return rc;
}

int rapid_fits_append_table(rapid_fits_out *out, const rapid_table *t,
                            const char *extname, rapid_err *err)
{
    const char *label = NULL;
    fitsfile *f = NULL;
    long block = 1, r0;
    int rc = 0, status = 0, i;

    if (!out)
        return rapid_fail(err, RAPID_E_ARG, "append_table: no file");
    label = rapid_fits_out_path(out);
    if ((rc = check_table(t, label, err)) != 0 ||
        (rc = rapid_fits_out_begin(out, &f, err)) != 0)
        return rc;
    if ((rc = create_table(f, t, extname, label, err)) != 0 ||
        (rc = rapid_fits_write_cards(f, &t->hdr, rapid_fits_table_layout,
                                     extname, label, err)) != 0)
        return rapid_fits_out_end(out, rc);
    /* A block of rows at a time, as many as CFITSIO's buffers hold, every
     * column of it: column after column down the whole table made CFITSIO
     * write and read back each block once per column (230 000 system calls
     * more for a catalog of 18 000 sources). */
    if (fits_get_rowsize(f, &block, &status) || block < 1)
        block = 1, status = 0;
    for (r0 = 0; r0 < t->nrows && !rc; r0 += block) {
        long nr = t->nrows - r0 < block ? t->nrows - r0 : block;
        for (i = 0; i < t->ncols && !rc; i++)
            if (write_column(f, i + 1, &t->cols[i], r0, nr, &status))
                rc = rapid_cfitsio_fail(err, status, label,
                                        "cannot write column %s",
                                        t->cols[i].name);
    }
    return rapid_fits_out_end(out, rc);
}
