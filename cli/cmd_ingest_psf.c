/* cmd_ingest_psf.c - `rapid ingest-psf`: register PSF files. */
#include "cli.h"
#include "ingest_cli.h"

static const char usage_text[] =
    "usage: rapid ingest-psf [--db URL] [--batch N] [--lock-timeout SECONDS]\n"
    "                        [--verbose] PATH...\n"
    "\n"
    "Register PSF files (one per detector and filter: an odd-sized image\n"
    "with FILTER and SCA_NUM in its header) in the psfs table.  PATHs are\n"
    "files or directories (searched for *.fits, *.fit, *.fts, plain or\n"
    "gzipped; images of the sky found there are passed over).\n"
    "\n"
    "The same file again changes nothing; a different file for the same\n"
    "(filter, detector) becomes its new version (the best one, unless the\n"
    "current best is locked).  A file that cannot be registered is named on\n"
    "stderr with the reason, and the others go on.\n"
    "\n"
    "  --db URL     database (default: $RAPID_DB, else\n"
    "               sqlite:$RAPID_WORK/rapid.db)\n"
    "  --batch N    files per transaction (500)\n"
    "  --lock-timeout SECONDS  how long to wait for a lock that another\n"
    "               process holds before giving up (60)\n"
    "  --verbose    one line per file on stdout: what happened, id, version\n"
    "\n"
    "A FITS file with no data in any HDU (headers only) is passed over with\n"
    "a warning, whether named or found in a directory.  A summary line goes\n"
    "to stderr.\n"
    "\n"
    "Exit status: 0 all registered (or passed over), 1 some file or the\n"
    "database failed, 2 bad usage (unknown option, bad --batch, malformed\n"
    "--db URL, no PATH).\n";

int cmd_ingest_psf(int argc, char **argv)
{
    return ingest_command(argc, argv, RAPID_INGEST_PSF, "ingest-psf",
                          usage_text);
}
