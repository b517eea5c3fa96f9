/* cli.h - the rapid command's subcommand table and shared helpers.
 *
 * Exit codes: 0 success, 1 the work failed, 2 bad usage.  Messages go to
 * stderr, data to stdout.
 */
#ifndef RAPID_CLI_H
#define RAPID_CLI_H

#include <stdint.h>

#include "rapid/error.h"

enum { EXIT_WORK = 1, EXIT_USAGE = 2 };

typedef struct rapid_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} rapid_cmd;

int cmd_coadd(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_ingest_psf(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_tile(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* "rapid <cmd>: message" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The same for a mistake on the command line; returns EXIT_USAGE, so that
 * a parser can `return cli_usage("tile", "invalid NSIDE '%s'", s);`. */
int cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Report a library failure and return EXIT_WORK. */
int cli_fail(const char *cmd, const rapid_err *err);
/* Strict number parsing: the whole string, finite; 0 on success. */
int cli_parse_double(const char *s, double *out);
int cli_parse_int64(const char *s, int64_t *out);
/* True if argv holds -h or --help before any "--". */
int cli_wants_help(int argc, char **argv);
/* A progress callback (rapid_progress_fn): "rapid <what>: done / total
 * (n%)" rewritten in place on stderr; what is a const char *. */
void cli_progress(int64_t done, int64_t total, void *what);
/* True when stderr is a terminal (progress is shown only then). */
int cli_interactive(void);
/* On SIGINT, SIGTERM and SIGHUP: remove the library's registered
 * temporaries (rapid/tmpfiles.h), then die of the signal.  A signal the
 * process was started ignoring stays ignored. */
void cli_remove_temporaries_on_signals(void);
/* Refuse work estimated to need more memory than is available (need
 * bytes, what names the work): 0 if it fits (or allow_large, or the
 * available memory is unknown), else EXIT_WORK after a message that gives
 * both figures and names --allow-large. */
int cli_check_memory(const char *cmd, uint64_t need, const char *what,
                     int allow_large);

#endif
