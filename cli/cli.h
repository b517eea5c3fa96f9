/* cli.h - the rapid command's subcommand table and shared helpers.
 *
 * Exit codes: 0 success, 1 the work failed, 2 bad usage.  Messages go to
 * stderr, data to stdout.
 */
#ifndef RAPID_CLI_H
#define RAPID_CLI_H

#include <signal.h>
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
int cmd_diff(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_job(int argc, char **argv);
int cmd_postproc_job(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_ingest_psf(int argc, char **argv);
int cmd_launch(int argc, char **argv);
int cmd_postproc(int argc, char **argv);
int cmd_register(int argc, char **argv);
int cmd_register_postproc(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_status(int argc, char **argv);
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
/* Strict number parsing: the whole string, plain decimal ([+-]digits[.digits]
 * [e[+-]digits]; no hex, inf, nan or blanks), finite; 0 on success. */
int cli_parse_double(const char *s, double *out);
int cli_parse_int64(const char *s, int64_t *out);
/* A --lock-timeout value: seconds, 0 < s <= 86400; 0 on success. */
int cli_parse_lock_timeout(const char *s, double *seconds);
/* True if argv holds -h or --help before any "--". */
int cli_wants_help(int argc, char **argv);
/* ------------------------------------------------------------ options
 *
 * One convention for every subcommand: options and operands in any order;
 * an option's value as "--opt value" or "--opt=value"; "--" ends the
 * options; "-" and numbers ("-43.8") are operands.  A command lists its
 * options in a table ending with {NULL} and loops:
 *
 *     cli_parser p;
 *     int id;
 *     cli_parser_init(&p, "db", options, argc, argv);
 *     while ((id = cli_next(&p)) != CLI_END) {
 *         switch (id) {
 *         case OPT_DB: url = p.value; break;
 *         case CLI_OPERAND: ...p.value...; break;
 *         default: return EXIT_USAGE;          (CLI_BAD: already reported)
 *         }
 *     }
 *
 * Adding an option is one line in the table and one case in the loop.
 */
typedef struct cli_option {
    const char *name;    /* "--db" */
    const char *alias;   /* another spelling ("-v"), or NULL */
    int takes_value;     /* 1: "--db URL" or "--db=URL" */
    int id;              /* what cli_next returns for it: > 0 */
} cli_option;

enum { CLI_END = 0, CLI_OPERAND = -1, CLI_BAD = -2 };

typedef struct cli_parser {
    const char *cmd;
    const cli_option *opts;
    int argc;
    char **argv;
    int i;               /* next argument */
    int operands_only;   /* after "--" */
    const char *opt;     /* the option just read, by its name ("--size") */
    const char *value;   /* its value, or the operand */
} cli_parser;

void cli_parser_init(cli_parser *p, const char *cmd, const cli_option *opts,
                     int argc, char **argv);
/* The id of the next option (its value in p->value), CLI_OPERAND (the
 * operand in p->value), CLI_END, or CLI_BAD when an option is unknown,
 * lacks its value or has one it does not take: the mistake is reported
 * and the caller returns EXIT_USAGE. */
int cli_next(cli_parser *p);
/* The current option's value as an integer in lo .. hi: 0, or EXIT_USAGE
 * after "invalid --size '32': must be an integer in 64 .. 8192". */
int cli_int_value(const cli_parser *p, int64_t lo, int64_t hi, int64_t *out);
int cli_int_option(const cli_parser *p, int lo, int hi, int *out);
/* 0 if url (or, when url is NULL or empty, $RAPID_DB) is a database URL
 * rapid knows; else EXIT_USAGE after saying so. */
int cli_check_db_url(const char *cmd, const char *url);

/* A progress callback (rapid_progress_fn): "rapid <what>: done / total
 * (n%)" rewritten in place on stderr; what is a const char *. */
void cli_progress(int64_t done, int64_t total, void *what);
/* True when stderr is a terminal (progress is shown only then). */
int cli_interactive(void);
/* On SIGINT, SIGTERM and SIGHUP: remove the library's registered
 * temporaries (rapid/tmpfiles.h), then die of the signal.  A signal the
 * process was started ignoring stays ignored. */
void cli_remove_temporaries_on_signals(void);
/* On SIGINT, SIGTERM and SIGHUP: set the flag returned (the work stops at
 * its next step and cleans up); a second signal removes the temporaries
 * and dies of it, as above. */
volatile sig_atomic_t *cli_stop_on_signals(void);
/* `rapid job` and `rapid postproc-job`: [--quiet] CONFIG parsed, fn run
 * with the stop flag; its exit code returned (usage: the --help text). */
struct rapid_job_opts;
int cli_run_job(const char *cmd, const char *usage, int argc, char **argv,
                int (*fn)(const char *, const struct rapid_job_opts *));
/* Refuse work estimated to need more memory than is available (need
 * bytes, what names the work): 0 if it fits (or allow_large, or the
 * available memory is unknown), else EXIT_WORK after a message that gives
 * both figures and names --allow-large. */
int cli_check_memory(const char *cmd, uint64_t need, const char *what,
                     int allow_large);

#endif
