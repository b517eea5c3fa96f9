/* db_schema_v1.h - the database schema of rapid's schema version 1, as
 * that version created it (lib/db/db.c then), kept frozen so that the
 * tests can build a real version-1 database and upgrade it.  Never edit:
 * it is history.
 *
 * Tokens: @ID@ an identity key, @KEYREF@ a key that is also a reference,
 * @TS@ a timestamp column, @NOW@ the current UTC time (test_v1_expand
 * spells them for a back end).
 */
#ifndef RAPID_DB_SCHEMA_V1_H
#define RAPID_DB_SCHEMA_V1_H

#include <stdlib.h>
#include <string.h>

#define V1_DP " DOUBLE PRECISION"
#define V1_SIP_COLS(x)                                                          \
    x "_order INTEGER NOT NULL DEFAULT 0, " x "_0_2" V1_DP ", " x "_0_3" V1_DP     \
    ", " x "_0_4" V1_DP ", " x "_1_1" V1_DP ", " x "_1_2" V1_DP ", " x "_1_3" V1_DP      \
    ", " x "_2_0" V1_DP ", " x "_2_1" V1_DP ", " x "_2_2" V1_DP ", " x "_3_0" V1_DP      \
    ", " x "_3_1" V1_DP ", " x "_4_0" V1_DP
#define V1_FOOTPRINT_COLS                                                       \
    "ra0" V1_DP ", dec0" V1_DP ", ra1" V1_DP ", dec1" V1_DP ", ra2" V1_DP ", dec2" V1_DP       \
    ", ra3" V1_DP ", dec3" V1_DP ", ra4" V1_DP ", dec4" V1_DP

static const char test_schema_v1[] =
    "CREATE TABLE filters(fid INTEGER PRIMARY KEY,"
    " filter TEXT NOT NULL UNIQUE);"
    "CREATE TABLE scas(sca INTEGER PRIMARY KEY);"
    "CREATE TABLE pipelines(ppid INTEGER PRIMARY KEY,"
    " priority INTEGER NOT NULL, script TEXT NOT NULL);"
    "CREATE TABLE swversions(svid @ID@, gitcommit TEXT NOT NULL UNIQUE,"
    " version TEXT, created @TS@ NOT NULL DEFAULT @NOW@);"
    "CREATE TABLE exposures(expid @ID@, dateobs @TS@ NOT NULL UNIQUE,"
    " mjdobs" V1_DP " NOT NULL, field BIGINT NOT NULL, hp6 BIGINT NOT NULL,"
    " hp9 BIGINT NOT NULL, fid INTEGER NOT NULL REFERENCES filters(fid),"
    " exptime" V1_DP " NOT NULL, ra_targ" V1_DP ", dec_targ" V1_DP ", pa_obsy" V1_DP
    ", pa_fpa" V1_DP ", status INTEGER NOT NULL DEFAULT 1,"
    " infobits INTEGER NOT NULL DEFAULT 0,"
    " created @TS@ NOT NULL DEFAULT @NOW@);"
    "CREATE INDEX exposures_mjdobs ON exposures(mjdobs);"
    "CREATE TABLE l2files(rid @ID@,"
    " expid BIGINT NOT NULL REFERENCES exposures(expid),"
    " sca INTEGER NOT NULL REFERENCES scas(sca),"
    " fid INTEGER NOT NULL REFERENCES filters(fid), field BIGINT NOT NULL,"
    " hp6 BIGINT NOT NULL, hp9 BIGINT NOT NULL, dateobs @TS@ NOT NULL,"
    " mjdobs" V1_DP " NOT NULL, exptime" V1_DP " NOT NULL,"
    " infobits INTEGER NOT NULL DEFAULT 0, filename TEXT NOT NULL,"
    " checksum TEXT NOT NULL, status INTEGER NOT NULL DEFAULT 1,"
    " vbest INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL,"
    " naxis1 INTEGER NOT NULL, naxis2 INTEGER NOT NULL,"
    " ctype1 TEXT NOT NULL, ctype2 TEXT NOT NULL,"
    " crval1" V1_DP " NOT NULL, crval2" V1_DP " NOT NULL, crpix1" V1_DP " NOT NULL,"
    " crpix2" V1_DP " NOT NULL, cd1_1" V1_DP " NOT NULL, cd1_2" V1_DP " NOT NULL,"
    " cd2_1" V1_DP " NOT NULL, cd2_2" V1_DP " NOT NULL, " V1_SIP_COLS("a") ", "
    V1_SIP_COLS("b") ", ra" V1_DP " NOT NULL, dec" V1_DP " NOT NULL, ra_targ" V1_DP
    ", dec_targ" V1_DP ", pa_obsy" V1_DP ", pa_fpa" V1_DP ", zptmag" V1_DP ", skymean" V1_DP
    ", created @TS@ NOT NULL DEFAULT @NOW@, UNIQUE(expid, sca, version));"
    "CREATE INDEX l2files_mjdobs ON l2files(mjdobs);"
    "CREATE INDEX l2files_field ON l2files(field, fid);"
    "CREATE TABLE l2filemeta(rid @KEYREF@ REFERENCES l2files(rid), "
    V1_FOOTPRINT_COLS ", x" V1_DP " NOT NULL, y" V1_DP " NOT NULL, z" V1_DP " NOT NULL,"
    " radius" V1_DP " NOT NULL, hp6 BIGINT NOT NULL, hp9 BIGINT NOT NULL,"
    " fid INTEGER NOT NULL, sca INTEGER NOT NULL, mjdobs" V1_DP " NOT NULL);"
    "CREATE INDEX l2filemeta_fid_mjdobs ON l2filemeta(fid, mjdobs);"
    "CREATE INDEX l2filemeta_dec0 ON l2filemeta(dec0);"
    "CREATE INDEX l2filemeta_radius ON l2filemeta(radius);"
    "CREATE INDEX l2filemeta_hp9 ON l2filemeta(hp9);"
    "CREATE TABLE psfs(psfid @ID@, fid INTEGER NOT NULL REFERENCES"
    " filters(fid), sca INTEGER NOT NULL REFERENCES scas(sca),"
    " version INTEGER NOT NULL, vbest INTEGER NOT NULL DEFAULT 0,"
    " filename TEXT NOT NULL, checksum TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " created @TS@ NOT NULL DEFAULT @NOW@, UNIQUE(fid, sca, version));"
    "CREATE TABLE refimages(rfid @ID@, field BIGINT NOT NULL, hp6 BIGINT,"
    " hp9 BIGINT, fid INTEGER NOT NULL REFERENCES filters(fid),"
    " ppid INTEGER NOT NULL REFERENCES pipelines(ppid),"
    " version INTEGER NOT NULL, vbest INTEGER NOT NULL DEFAULT 0,"
    " filename TEXT, checksum TEXT, status INTEGER NOT NULL DEFAULT 0,"
    " infobits INTEGER NOT NULL DEFAULT 0,"
    " svid BIGINT REFERENCES swversions(svid),"
    " created @TS@ NOT NULL DEFAULT @NOW@,"
    " UNIQUE(field, fid, ppid, version));"
    "CREATE TABLE refimcatalogs(rfcatid @ID@,"
    " rfid BIGINT NOT NULL REFERENCES refimages(rfid),"
    " ppid INTEGER NOT NULL REFERENCES pipelines(ppid),"
    " cattype INTEGER NOT NULL, filename TEXT NOT NULL, checksum TEXT,"
    " status INTEGER NOT NULL DEFAULT 1,"
    " created @TS@ NOT NULL DEFAULT @NOW@, UNIQUE(rfid, ppid, cattype));"
    "CREATE TABLE refimimages(rfid BIGINT NOT NULL REFERENCES"
    " refimages(rfid), rid BIGINT NOT NULL REFERENCES l2files(rid),"
    " PRIMARY KEY(rfid, rid));"
    "CREATE TABLE refimmeta(rfid @KEYREF@ REFERENCES refimages(rfid),"
    " nframes INTEGER, mjdobsmin" V1_DP ", mjdobsmax" V1_DP ", npixsat BIGINT,"
    " npixnan BIGINT, clmean" V1_DP ", clstddev" V1_DP ", clnoutliers BIGINT,"
    " gmedian" V1_DP ", datascale" V1_DP ", gmin" V1_DP ", gmax" V1_DP ", cov5percent" V1_DP
    ", medncov" V1_DP ", medpixunc" V1_DP ", fwhmmedpix" V1_DP ", fwhmminpix" V1_DP
    ", fwhmmaxpix" V1_DP ", nsexcatsources BIGINT);"
    "CREATE TABLE diffimages(pid @ID@,"
    " rid BIGINT NOT NULL REFERENCES l2files(rid),"
    " ppid INTEGER NOT NULL REFERENCES pipelines(ppid),"
    " version INTEGER NOT NULL, vbest INTEGER NOT NULL DEFAULT 0,"
    " rfid BIGINT REFERENCES refimages(rfid), expid BIGINT NOT NULL,"
    " sca INTEGER NOT NULL, fid INTEGER NOT NULL, field BIGINT NOT NULL,"
    " hp6 BIGINT, hp9 BIGINT, jd" V1_DP ", " V1_FOOTPRINT_COLS
    ", infobitssci INTEGER NOT NULL DEFAULT 0,"
    " infobitsref INTEGER NOT NULL DEFAULT 0, filename TEXT, checksum TEXT,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " svid BIGINT REFERENCES swversions(svid),"
    " created @TS@ NOT NULL DEFAULT @NOW@, UNIQUE(rid, ppid, version));"
    "CREATE TABLE diffimmeta(pid @KEYREF@ REFERENCES diffimages(pid),"
    " nsexcatsources BIGINT, scalefacref" V1_DP ", dxrmsfin" V1_DP ", dyrmsfin" V1_DP
    ", dxmedianfin" V1_DP ", dymedianfin" V1_DP ", nmatches BIGINT);"
    "CREATE TABLE jobs(jid @ID@,"
    " ppid INTEGER NOT NULL REFERENCES pipelines(ppid),"
    " rid BIGINT REFERENCES l2files(rid), fid INTEGER, expid BIGINT,"
    " sca INTEGER, field BIGINT, procdate INTEGER NOT NULL, machine TEXT,"
    " launched @TS@, qwaited" V1_DP ", started @TS@, ended @TS@, elapsed" V1_DP
    ", exitcode INTEGER, status INTEGER NOT NULL DEFAULT 0, slurm TEXT,"
    " awsbatchjobid TEXT, UNIQUE(ppid, rid));"
    "CREATE INDEX jobs_procdate ON jobs(procdate, status);";

/* SQLite's spatial index: the bounding box of each footprint on the unit
 * sphere (x, y, z), kept by db_l2.c next to every l2filemeta row.  A 3-D
 * box has no RA wrap-around and no pole to treat specially. */
static const char test_schema_v1_sqlite[] =
    "CREATE VIRTUAL TABLE l2filemeta_box USING rtree(rid, xmin, xmax,"
    " ymin, ymax, zmin, zmax);";


/* What version 1's `rapid db init` added: its version table and record. */
static const char test_schema_v1_version[] =
    "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER PRIMARY KEY,"
    " applied @TS@ NOT NULL DEFAULT @NOW@);"
    "INSERT INTO schema_version(version) VALUES(1);";

/* The template with the tokens spelled for SQLite or PostgreSQL; caller
 * frees. */
static inline char *test_v1_expand(const char *tmpl, int pg)
{
    static const char *const tok[4][3] = {
        {"@ID@", "INTEGER PRIMARY KEY",
         "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
        {"@KEYREF@", "INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY"},
        {"@TS@", "TEXT", "TIMESTAMP"},
        {"@NOW@", "(strftime('%Y-%m-%dT%H:%M:%f000', 'now'))",
         "(now() AT TIME ZONE 'UTC')"}};
    char *out = malloc(strlen(tmpl) * 3 + 1);
    size_t k = 0;
    int i;

    if (!out)
        return NULL;
    while (*tmpl) {
        for (i = 0; i < 4; i++)
            if (strncmp(tmpl, tok[i][0], strlen(tok[i][0])) == 0)
                break;
        if (i < 4) {
            memcpy(out + k, tok[i][pg ? 2 : 1], strlen(tok[i][pg ? 2 : 1]));
            k += strlen(tok[i][pg ? 2 : 1]);
            tmpl += strlen(tok[i][0]);
        } else {
            out[k++] = *tmpl++;
        }
    }
    out[k] = '\0';
    return out;
}

#endif
