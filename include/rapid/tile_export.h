/* rapid/tile_export.h - the tessellation as SQLite tables, for tools that
 * still look tiles up in the existing system's database. */
#ifndef RAPID_TILE_EXPORT_H
#define RAPID_TILE_EXPORT_H

#include <stdint.h>

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called now and then with the tiles written so far and the total. */
typedef void (*rapid_progress_fn)(int64_t done, int64_t total, void *arg);

/* Write skytiles(cra, cdec, ramin, ramax, decmax, decmin, rtid, dbid),
 * decbins(dbid, cdec, nrabins) and the R*Tree vskytiles(rtid, ramin, ramax,
 * decmin, decmax) for every tile of nside into a new SQLite file at path.
 * The file appears only when complete; an existing file is an error. */
int rapid_tile_export_sqlite(int nside, const char *path,
                             rapid_progress_fn progress, void *arg,
                             rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
