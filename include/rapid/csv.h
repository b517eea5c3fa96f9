/* rapid/csv.h - a table (rapid/fits.h) as comma-separated values.
 *
 * One header line of the column names, then one line per row: integers
 * in decimal, floats with their full precision (9 significant digits for
 * float32, 17 for float64), NaN as "nan", strings quoted when they hold a
 * comma, a quote or a blank at either end.  Units are not written (the
 * FITS table carries them).  Written atomically: a temporary file beside
 * path, renamed into place; an interrupted write leaves nothing.
 */
#ifndef RAPID_CSV_H
#define RAPID_CSV_H

#include "rapid/error.h"
#include "rapid/fits.h"

#ifdef __cplusplus
extern "C" {
#endif

int rapid_table_write_csv(const char *path, const rapid_table *t,
                          rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
