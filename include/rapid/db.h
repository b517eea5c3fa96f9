/* rapid/db.h - the operations database (docs/database.md) on SQLite or PostgreSQL.
 *
 * One API, two back ends chosen by URL:
 *   sqlite:PATH              an embedded file (the default:
 *                            sqlite:$RAPID_WORK/rapid.db, RAPID_WORK
 *                            defaulting to ./work)
 *   postgresql://...         a server, through libpq (also postgres://);
 *                            any libpq URI works, e.g.
 *                            postgresql://user@host:5432/rapid
 * $RAPID_DB, when set, replaces the default.  Both back ends hold the same
 * tables, columns and semantics; `rapid db init` (rapid_db_init) creates and
 * upgrades them, recording the version in schema_version.
 *
 * Every function that writes several rows does so in one transaction.  A
 * caller may group calls into one larger transaction with rapid_db_begin /
 * rapid_db_commit; calls made inside it join it, and a failure in any of
 * them makes the commit roll everything back.
 *
 * Times: dateobs and the job times are UTC, written as
 * "YYYY-MM-DDTHH:MM:SS.ffffff"; MJDs are UTC-based modified Julian dates;
 * durations are seconds.  Sky positions are ICRS degrees.
 *
 * Versioned products (l2files, psfs, refimages, diffimages) follow the
 * "vbest" rules: a new version is added with vbest 0; confirming it makes it
 * vbest 1 and drops the previous best to 0 - unless that one is locked by
 * hand (vbest 2), and then the new one stays 0.  Readers take only rows with
 * vbest > 0 AND status > 0.  The schema holds to it: at most one version of
 * a natural key has vbest > 0, vbest is 0..2, version >= 1, status 0 or 1.
 * A value the schema refuses (a CHECK constraint) fails with RAPID_E_ARG,
 * as a bad argument does.
 *
 * File names (the filename of every record and call) are C strings of any
 * bytes: names that are not UTF-8 go in and come back unchanged on both
 * back ends (stored escaped; docs/database.md).  They must be shorter than
 * RAPID_DB_PATH_MAX.
 *
 * A rapid_db handle is for one thread at a time.
 */
#ifndef RAPID_DB_H
#define RAPID_DB_H

#include <stdint.h>

#include "rapid/error.h"
#include "rapid/pipeline.h"
#include "rapid/refimmeta.h"
#include "rapid/wcs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The schema version this library creates and expects. */
#define RAPID_DB_SCHEMA_VERSION 3

#define RAPID_DB_PATH_MAX 1024 /* room for file names in records */
#define RAPID_DB_TIME_MAX 32   /* room for a "YYYY-MM-DDTHH:MM:SS.ffffff" */

/* Pipelines (ppid): rapid/pipeline.h; RAPID_PPID_REFIMAGE is its
 * RAPID_PPID_REFERENCE under the database's older name. */
enum { RAPID_PPID_REFIMAGE = RAPID_PPID_REFERENCE };

typedef struct rapid_db rapid_db;

/* ------------------------------------------------------- connection */

/* The URL used when none is given: $RAPID_DB, else
 * sqlite:$RAPID_WORK/rapid.db (RAPID_WORK defaulting to ./work). */
void rapid_db_default_url(char *out, size_t outsz);

enum {
    RAPID_DB_CREATE = 1,  /* SQLite: create the file (and its directory) */
    RAPID_DB_READONLY = 2 /* only read: works on a database the user may
                           * only read, and writes nothing, not even
                           * SQLite's -wal and -shm files (see
                           * docs/database.md for the one caveat) */
};

/* Why url is not a database URL this library opens, or NULL when it is
 * (a static string).  sqlite:PATH (sqlite:///abs/path too), with no '?'
 * in PATH; postgresql:// or postgres:// with every port in 1..65535.
 * rapid_db_check_url: the same as RAPID_E_ARG, "URL: why", password
 * masked.  rapid_db_open checks first, so nothing is created for a bad
 * URL. */
const char *rapid_db_url_problem(const char *url);
int rapid_db_check_url(const char *url, rapid_err *err);

/* Connect.  url NULL or "" means rapid_db_default_url().  Errors name the
 * URL (without any password) and give the back end's reason on one line.
 * The lock timeout starts at RAPID_DB_LOCK_TIMEOUT. */
int rapid_db_open(rapid_db **db, const char *url, int flags, rapid_err *err);
void rapid_db_close(rapid_db *db);

/* Default lock timeout, seconds. */
#define RAPID_DB_LOCK_TIMEOUT 60.0

/* How long a statement waits for a lock that another session or process
 * holds (SQLite's busy wait, PostgreSQL's lock_timeout) before it fails
 * with RAPID_E_DB and a message that says so; seconds > 0, at most a day. */
int rapid_db_set_lock_timeout(rapid_db *db, double seconds, rapid_err *err);
double rapid_db_lock_timeout(const rapid_db *db);

/* The URL as given, with any password replaced by "***". */
const char *rapid_db_url(const rapid_db *db);
/* "sqlite" or "postgresql". */
const char *rapid_db_backend(const rapid_db *db);
/* 1 when cone searches use Q3C (PostgreSQL with the extension). */
int rapid_db_has_q3c(const rapid_db *db);

/* Create the schema, or upgrade it, to RAPID_DB_SCHEMA_VERSION and seed the
 * fixed tables (filters, scas, pipelines).  Safe to run again and from two
 * processes at once.  *from gets the version found (0: none).  An upgrade
 * keeps every row and happens in one transaction: if any row breaks a rule
 * of the new version, nothing changes and the message names the rule. */
int rapid_db_init(rapid_db *db, int *from, rapid_err *err);
/* The schema version in the database (0 if there is none). */
int rapid_db_schema_version(rapid_db *db, int *version, rapid_err *err);
/* RAPID_E_DB with "run 'rapid db init'" advice unless the schema is
 * exactly RAPID_DB_SCHEMA_VERSION.  Every command but init calls this. */
int rapid_db_check_schema(rapid_db *db, rapid_err *err);

int rapid_db_begin(rapid_db *db, rapid_err *err);
/* A transaction whose commit does not wait for the disk: as atomic and
 * isolated as any, and it survives a crash of this process once
 * committed; a crash of the database server or its machine may undo the
 * last commits of the fraction of a second before it, whole and in order
 * (PostgreSQL: synchronous_commit off for this transaction; SQLite:
 * rapid_db_begin, whose WAL commits already work so).  For many small
 * transactions whose loss a re-run repairs, e.g. one per job registered.
 * Inside an open transaction it only nests, as rapid_db_begin. */
int rapid_db_begin_async(rapid_db *db, rapid_err *err);
int rapid_db_commit(rapid_db *db, rapid_err *err);
void rapid_db_rollback(rapid_db *db);

/* Row count of a schema table (name must be one of docs/database.md's). */
int rapid_db_count(rapid_db *db, const char *table, int64_t *n,
                   rapid_err *err);

/* ------------------------------------------------------------ times */

/* "YYYY-MM-DD[Thh:mm[:ss[.f...]]]" (also with a space for T, and an
 * optional trailing Z) to seconds since 1970-01-01 UTC. */
int rapid_time_parse(const char *s, double *unix_seconds, rapid_err *err);
/* Seconds since 1970 to "YYYY-MM-DDTHH:MM:SS.ffffff" (microseconds). */
void rapid_time_format(double unix_seconds, char out[RAPID_DB_TIME_MAX]);
double rapid_time_to_mjd(double unix_seconds);
double rapid_time_from_mjd(double mjd);
/* Seconds since 1970 now (UTC, microsecond resolution). */
double rapid_time_now(void);

/* ------------------------------------------------------- L2 images */

#define RAPID_DB_SIP_ORDER 4 /* SIP terms stored: A_p_q, B_p_q, 2 <= p+q <= 4 */

typedef struct rapid_l2file {
    int64_t rid;        /* set by the database */
    int64_t expid;      /* the exposure: one per DATE-OBS */
    int sca, fid;
    int64_t field;      /* tile (rtid, NSIDE 512) of the image centre */
    int64_t hp6, hp9;   /* NESTED HEALPix of the centre, NSIDE 64 and 512 */
    char dateobs[RAPID_DB_TIME_MAX];
    double mjdobs;      /* MJD-OBS */
    double exptime;     /* s */
    int infobits;
    char filename[RAPID_DB_PATH_MAX];
    char checksum[33];  /* MD5 of the file, hex */
    int status, vbest, version;
    int naxis1, naxis2;
    double crval[2], crpix[2]; /* CRPIX 1-based, as in the header */
    double cd[2][2];
    int a_order, b_order;      /* 0: plain TAN */
    double a[RAPID_DB_SIP_ORDER + 1][RAPID_DB_SIP_ORDER + 1];
    double b[RAPID_DB_SIP_ORDER + 1][RAPID_DB_SIP_ORDER + 1];
    double ra, dec;            /* image centre */
    double ra_targ, dec_targ;  /* boresight */
    double pa_obsy, pa_fpa;    /* degrees */
    double zptmag;             /* AB zero point for DN/s */
    double skymean;            /* DN */
    /* l2filemeta: footprint centre [0] and corners [1..4] (as
     * rapid_wcs_footprint orders them), and centre-to-corner radius */
    double fp_ra[5], fp_dec[5];
    double radius;
    /* filled by rapid_db_prior_l2files: image centre to tile centre, deg
     * (NaN otherwise) */
    double dist;
} rapid_l2file;

/* What adding a file did. */
typedef enum rapid_db_outcome {
    RAPID_DB_ADDED = 1,       /* first version of its natural key */
    RAPID_DB_NEW_VERSION = 2, /* same key, different checksum */
    RAPID_DB_UNCHANGED = 3    /* same key and checksum: nothing written */
} rapid_db_outcome;

/* Register an L2 file: its exposure (by dateobs; created if new), the
 * l2files row and its l2filemeta footprint.  Identity is (dateobs, sca,
 * checksum): the same again changes nothing and gives back the same rid; a
 * different checksum for (dateobs, sca) becomes a new version, confirmed by
 * the vbest rules.  On return rec->rid, expid, version, vbest and status
 * are those of the row. */
int rapid_db_add_l2file(rapid_db *db, rapid_l2file *rec,
                        rapid_db_outcome *outcome, rapid_err *err);
int rapid_db_get_l2file(rapid_db *db, int64_t rid, rapid_l2file *rec,
                        rapid_err *err);
/* The WCS stored for an L2 file (TAN, or TAN-SIP when a_order > 0). */
int rapid_l2file_wcs(const rapid_l2file *rec, rapid_wcs *w, rapid_err *err);

/* Best versions of the L2 files observed in [mjd_min, mjd_max), in time
 * order (then sca, rid).  *out is allocated (caller frees). */
int rapid_db_l2files_by_time(rapid_db *db, double mjd_min, double mjd_max,
                             rapid_l2file **out, int *n, rapid_err *err);

/* Inputs for a reference image of a tile: best versions of the L2 files of
 * filter fid whose footprint overlaps tile `field`, observed in
 * [mjd_min, mjd_max) (use -INFINITY / +INFINITY for no bound), nearest the
 * tile centre first (ties: earlier first), at most limit (<= 0: all). */
typedef struct rapid_prior_query {
    int64_t field;
    int fid;
    double mjd_min, mjd_max;
    int limit;
} rapid_prior_query;

int rapid_db_prior_l2files(rapid_db *db, const rapid_prior_query *q,
                           rapid_l2file **out, int *n, rapid_err *err);

/* ------------------------------------------------------------- PSFs */

typedef struct rapid_psffile {
    int64_t psfid;
    int fid, sca;
    int version, vbest, status;
    char filename[RAPID_DB_PATH_MAX];
    char checksum[33];
} rapid_psffile;

/* As rapid_db_add_l2file, for the natural key (fid, sca). */
int rapid_db_add_psffile(rapid_db *db, rapid_psffile *rec,
                         rapid_db_outcome *outcome, rapid_err *err);
/* The best PSF of (fid, sca); *found 0 when there is none. */
int rapid_db_best_psffile(rapid_db *db, int fid, int sca, rapid_psffile *rec,
                          int *found, rapid_err *err);

/* --------------------------------------------------------- products */

typedef enum rapid_product {
    RAPID_PRODUCT_L2FILE = 0,   /* key (expid, sca) */
    RAPID_PRODUCT_PSF = 1,      /* key (fid, sca) */
    RAPID_PRODUCT_REFIMAGE = 2, /* key (field, fid, ppid) */
    RAPID_PRODUCT_DIFFIMAGE = 3 /* key (rid, ppid, method) */
} rapid_product;

/* Confirm a version: status 1 and the vbest rules; *vbest (may be NULL)
 * gets what the row ended with (1, or 0 when a locked version holds). */
int rapid_db_confirm(rapid_db *db, rapid_product kind, int64_t id,
                     int *vbest, rapid_err *err);
/* Set vbest by hand: 2 locks this version as the best (every other version
 * of its key drops to 0), 1 makes it the best, 0 withdraws it. */
int rapid_db_set_vbest(rapid_db *db, rapid_product kind, int64_t id,
                       int vbest, rapid_err *err);
/* Record a product's file after post-processing (new name and MD5). */
int rapid_db_set_file(rapid_db *db, rapid_product kind, int64_t id,
                      const char *filename, const char *checksum,
                      rapid_err *err);

/* A software version by git commit (created if new). */
int rapid_db_swversion(rapid_db *db, const char *gitcommit,
                       const char *version, int64_t *svid, rapid_err *err);

typedef struct rapid_refimage {
    int64_t rfid;       /* set by the database */
    int64_t field;      /* tile rtid */
    int fid, ppid;
    int version, vbest, status, infobits; /* version, vbest set on add */
    int64_t svid;       /* 0: none */
    char filename[RAPID_DB_PATH_MAX];
    char checksum[33];
    char created[RAPID_DB_TIME_MAX];
} rapid_refimage;

/* Add a new version of the reference image of (field, fid, ppid) with
 * vbest 0 and status 0, its metadata (may be NULL) and its input L2 files
 * (rids), in one transaction.  Sets r->rfid, version, vbest, status. */
int rapid_db_add_refimage(rapid_db *db, rapid_refimage *r,
                          const rapid_refimmeta *meta, const int64_t *rids,
                          int nrids, rapid_err *err);
/* As rapid_db_add_refimage, the version confirmed as it is added: status
 * 1 and the vbest rapid_db_confirm would give it (1, or 0 beside a
 * locked version), in fewer round trips to the server. */
int rapid_db_add_refimage_confirmed(rapid_db *db, rapid_refimage *r,
                                    const rapid_refimmeta *meta,
                                    const int64_t *rids, int nrids,
                                    rapid_err *err);
/* A catalog of a reference image (cattype 1 source extraction, 2 PSF
 * fit); replaces an earlier one of the same (rfid, ppid, cattype).
 * rfcatid NULL: its id is not wanted, nor waited for (inside a
 * transaction, PostgreSQL sends the statement with the next one). */
int rapid_db_add_refimcatalog(rapid_db *db, int64_t rfid, int ppid,
                              int cattype, const char *filename,
                              const char *checksum, int64_t *rfcatid,
                              rapid_err *err);
/* The best reference image of (field, fid) (any ppid; a locked one
 * first); *found 0 when there is none. */
int rapid_db_best_refimage(rapid_db *db, int64_t field, int fid,
                           rapid_refimage *r, int *found, rapid_err *err);
/* The rids of a reference image's inputs, ascending (caller frees). */
int rapid_db_refimage_inputs(rapid_db *db, int64_t rfid, int64_t **rids,
                             int *n, rapid_err *err);

/* The difference methods; a science job keeps all three. */
typedef enum rapid_diff_method {
    RAPID_DIFF_ZOGY = 1,
    RAPID_DIFF_KERNELFIT = 2, /* cross-convolution kernel fit */
    RAPID_DIFF_NAIVE = 3      /* science - matched reference */
} rapid_diff_method;

typedef struct rapid_diffimage {
    int64_t pid;        /* set by the database */
    int64_t rid;        /* the science image; expid, sca, fid, field, hp6,
                         * hp9 and jd are copied from it */
    int ppid;
    int method;         /* rapid_diff_method */
    int64_t rfid;       /* 0: none */
    int version, vbest, status; /* set on add */
    int infobitssci, infobitsref;
    double ra[5], dec[5]; /* footprint: centre, 4 corners */
    int64_t svid;       /* 0: none */
    char filename[RAPID_DB_PATH_MAX];
    char checksum[33];
} rapid_diffimage;

typedef struct rapid_diffimmeta {
    int64_t nsexcatsources;
    double scalefacref;
    double dxrmsfin, dyrmsfin, dxmedianfin, dymedianfin;
    int64_t nmatches;   /* sources used for the gain match */
} rapid_diffimmeta;

/* Add a new version of the difference image of (rid, ppid, method),
 * vbest 0 and status 0, with its metadata (may be NULL), in one
 * transaction. */
int rapid_db_add_diffimage(rapid_db *db, rapid_diffimage *d,
                           const rapid_diffimmeta *meta, rapid_err *err);
/* As rapid_db_add_diffimage, the version confirmed as it is added
 * (status 1, vbest 1, or 0 beside a locked version, as rapid_db_confirm
 * gives), and nothing read back: d->pid, version, vbest and status are 0
 * afterwards.  Inside a transaction no statement of it waits for the
 * server: PostgreSQL sends them with the transaction's next statement
 * that returns rows, or its commit, which reports their failure (an L2
 * file of d->rid missing fails the insert: expid must not be NULL). */
int rapid_db_add_diffimage_confirmed(rapid_db *db, rapid_diffimage *d,
                                     const rapid_diffimmeta *meta,
                                     rapid_err *err);

/* ------------------------------------------------------------- jobs */

typedef struct rapid_job {
    int64_t jid;
    int ppid;
    int64_t rid, expid, field;
    int fid, sca;
    int procdate;       /* processing date yyyymmdd */
    char machine[64];
    char launched[RAPID_DB_TIME_MAX], started[RAPID_DB_TIME_MAX],
        ended[RAPID_DB_TIME_MAX];  /* "" when not set */
    double qwaited, elapsed;       /* s; NaN when not set */
    int exitcode;                  /* -1 when not set */
    int status;                    /* 0 running, 1 ended */
    char slurm[32], awsbatchjobid[64];
} rapid_job;

/* Start (or restart) the job of (ppid, rid): the row of an earlier job of
 * the same pair is reused - its jid is stable - and its run columns are
 * reset; launched is now.  machine may be NULL. */
int rapid_db_start_job(rapid_db *db, int ppid, int64_t rid, int procdate,
                       const char *machine, int64_t *jid, rapid_err *err);
/* Record the end of a job: exit code, start and end (seconds since 1970),
 * queue wait (started - launched), elapsed (ended - started), status 1.
 * RAPID_E_NOENT when there is no such job. */
int rapid_db_end_job(rapid_db *db, int64_t jid, int exitcode, double started,
                     double ended, rapid_err *err);
/* The executor's id of a job (Slurm job id or AWS Batch id). */
int rapid_db_set_job_executor(rapid_db *db, int64_t jid, const char *slurm,
                              const char *awsbatchjobid, rapid_err *err);
int rapid_db_get_job(rapid_db *db, int64_t jid, rapid_job *job,
                     rapid_err *err);
/* Inside a transaction: the job's row, as rapid_db_get_job, locked until
 * the transaction ends, so that two sessions deciding on the same job
 * (two registrations at once) take turns and the second sees what the
 * first committed (PostgreSQL: SELECT ... FOR UPDATE; SQLite's write
 * transactions are one at a time already).  RAPID_E_ARG outside a
 * transaction. */
int rapid_db_lock_job(rapid_db *db, int64_t jid, rapid_job *job,
                      rapid_err *err);
/* As rapid_db_end_job, inside the transaction of rapid_db_lock_job, for
 * the row it gave (its launched time gives the queue wait): nothing is
 * read, and PostgreSQL sends the update with the commit.  RAPID_E_ARG
 * outside a transaction. */
int rapid_db_end_locked_job(rapid_db *db, const rapid_job *job, int exitcode,
                            double started, double ended, rapid_err *err);
/* Jobs of a processing date that were started and not ended, by jid;
 * ppid 0 means any pipeline.  *out allocated (caller frees). */
int rapid_db_unclosed_jobs(rapid_db *db, int procdate, int ppid,
                           rapid_job **out, int *n, rapid_err *err);

/* Start (or restart) the reference job (ppid 12) of tile `field` and
 * filter fid: it has no science image (rid NULL); its row is found by
 * (field, fid) and reused as rapid_db_start_job reuses one. */
int rapid_db_start_refjob(rapid_db *db, int64_t field, int fid, int procdate,
                          const char *machine, int64_t *jid, rapid_err *err);
/* The job of (ppid, rid), or for ppid 12 the reference job of (field,
 * fid) (rid ignored); *found 0 when there is none. */
int rapid_db_find_job(rapid_db *db, int ppid, int64_t rid, int64_t field,
                      int fid, rapid_job *job, int *found, rapid_err *err);
/* Every job of a processing date (ended or not), by jid; ppid 0 means any
 * pipeline.  *out allocated (caller frees). */
int rapid_db_jobs(rapid_db *db, int procdate, int ppid, rapid_job **out,
                  int *n, rapid_err *err);

/* A reference image by rfid (any version, any status); RAPID_E_NOENT when
 * there is none. */
int rapid_db_get_refimage(rapid_db *db, int64_t rfid, rapid_refimage *r,
                          rapid_err *err);
/* The newest version of the reference image recorded with this file name;
 * *found 0 when there is none. */
int rapid_db_refimage_by_file(rapid_db *db, const char *filename,
                              rapid_refimage *r, int *found, rapid_err *err);
/* The newest version of each method's difference image of (rid, ppid),
 * whatever its vbest and status, by method: *n of them (0..3) in out. */
int rapid_db_latest_diffimages(rapid_db *db, int64_t rid, int ppid,
                               rapid_diffimage out[3], int *n,
                               rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
