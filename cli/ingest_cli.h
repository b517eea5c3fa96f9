/* ingest_cli.h - what `rapid ingest` and `rapid ingest-psf` share. */
#ifndef RAPID_INGEST_CLI_H
#define RAPID_INGEST_CLI_H

#include "rapid/ingest.h"

/* Parse the options, run the ingest, report: the exit code. */
int ingest_command(int argc, char **argv, rapid_ingest_kind kind,
                   const char *cmd, const char *usage);

#endif
