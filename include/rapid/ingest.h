/* rapid/ingest.h - L2 images and PSF files into the operations database.
 *
 * Paths are files or directories (searched recursively for *.fits, *.fit,
 * *.fts, plain or .gz).  Each file is read (headers only, plus its MD5),
 * checked, and registered with rapid_db_add_l2file / rapid_db_add_psffile,
 * many files to a transaction.  A file that cannot be read or lacks what
 * the database needs is reported with its name and the reason, and nothing
 * of it is written; the others go on.  A database failure stops the run.
 *
 * In a directory, FITS files that are plainly of the other kind are passed
 * over without complaint: for L2 ingest, files with no image or whose
 * headers have neither DATE-OBS nor a WCS (PSFs, catalogs); for PSF ingest,
 * files with DATE-OBS or a WCS (images of the sky).  Files named
 * explicitly are always tried.  A FITS file with no data in any HDU
 * (headers only), named or found, is passed over with a reason in its
 * event (a warning for the user).
 */
#ifndef RAPID_INGEST_H
#define RAPID_INGEST_H

#include "rapid/db.h"
#include "rapid/error.h"
#include "rapid/fits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* L2 keywords every image must carry, besides its WCS. */
extern const char *const rapid_l2_keywords[];

/* A record from an L2 image's headers: keywords are looked up in the image
 * header (sci) first, then in the primary header (may be NULL); the WCS
 * comes from whichever has CTYPE1 (the image header first).  nx, ny: the
 * image size.  Sets everything but rid, expid, filename and checksum (and
 * what the database sets).  Errors list every missing keyword at once. */
int rapid_l2file_from_headers(const rapid_header *sci,
                              const rapid_header *primary, int nx, int ny,
                              rapid_l2file *rec, rapid_err *err);
/* The record of an L2 file: its image HDU (EXTNAME SCI, else the first
 * 2-D image) and primary headers, a check that the pixel data is all
 * there, the absolute file name and the MD5 of the file. */
int rapid_l2file_read(const char *path, rapid_l2file *rec, rapid_err *err);
/* The record of a PSF file: FILTER and SCA_NUM, an odd-sized 2-D image. */
int rapid_psffile_read(const char *path, rapid_psffile *rec, rapid_err *err);

typedef enum rapid_ingest_kind {
    RAPID_INGEST_L2 = 0,
    RAPID_INGEST_PSF = 1
} rapid_ingest_kind;

/* What happened to one file: outcome is a rapid_db_outcome, or 0 when the
 * file failed (err says why) or was passed over (skipped 1). */
typedef struct rapid_ingest_event {
    const char *path;
    int outcome;
    int skipped;
    const rapid_err *err;   /* why the file failed; or, when skipped, why
                               it was passed over if the user should know
                               (no data in any HDU); else NULL */
    int64_t id;             /* rid or psfid when registered */
    int version;
} rapid_ingest_event;

typedef void (*rapid_ingest_report_fn)(const rapid_ingest_event *ev,
                                       void *arg);
/* done of total files written so far (called inside the transaction of
 * their batch, which may still roll back: for progress displays). */
typedef void (*rapid_ingest_progress_fn)(long done, long total, void *arg);

typedef struct rapid_ingest_opts {
    int batch;                        /* files per transaction (500) */
    rapid_ingest_report_fn report;    /* after each batch commits; NULL ok */
    rapid_ingest_progress_fn progress;/* NULL ok */
    void *arg;                        /* for both */
} rapid_ingest_opts;

void rapid_ingest_opts_init(rapid_ingest_opts *o);

typedef struct rapid_ingest_stats {
    long files;      /* files found (explicit or in directories) */
    long added;      /* first versions */
    long versions;   /* new versions of known files */
    long unchanged;  /* known already: nothing written */
    long failed;     /* reported and not written */
    long skipped;    /* in a directory, not of this kind */
} rapid_ingest_stats;

/* Ingest paths.  Returns 0 when the run went through, even if some files
 * failed (see stats->failed; a path that does not exist is such a file); a
 * negative status when the database failed: then the batches already
 * committed stay, the one in flight is rolled back, and the message ends
 * with "committed before the failure: N of M files".  A lock held by
 * another session is waited for up to rapid_db_lock_timeout(db). */
int rapid_ingest(rapid_db *db, rapid_ingest_kind kind,
                 const char *const *paths, int npaths,
                 const rapid_ingest_opts *opts, rapid_ingest_stats *stats,
                 rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
