/* util.c - helpers shared by the subcommands. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rapid/memlimit.h"
#include "rapid/tmpfiles.h"

static void verror(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "rapid %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(cmd, fmt, ap);
    va_end(ap);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(cmd, fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_fail(const char *cmd, const rapid_err *err)
{
    cli_error(cmd, "%s", err->msg[0] ? err->msg : rapid_strstatus(err->code));
    return EXIT_WORK;
}

int cli_parse_double(const char *s, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(*out))
        return -1;
    return 0;
}

int cli_parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int cli_wants_help(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

int cli_interactive(void)
{
    return isatty(STDERR_FILENO);
}

void cli_progress(int64_t done, int64_t total, void *what)
{
    fprintf(stderr, "\rrapid %s: %" PRId64 " / %" PRId64 " (%.0f%%)",
            (const char *)what, done, total,
            total > 0 ? 100.0 * (double)done / (double)total : 100.0);
    if (done == total)
        fputc('\n', stderr);
}

static void remove_and_die(int sig)
{
    rapid_tmp_remove_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_remove_temporaries_on_signals(void)
{
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa, old;
    int i;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_and_die;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < 3; i++) /* one cleanup at a time */
        sigaddset(&sa.sa_mask, sigs[i]);
    for (i = 0; i < 3; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
}

int cli_check_memory(const char *cmd, uint64_t need, const char *what,
                     int allow_large)
{
    rapid_err err = RAPID_ERR_INIT;

    if (allow_large || rapid_mem_check(need, what, NULL, &err) == 0)
        return 0;
    cli_error(cmd, "%s; --allow-large runs it anyway", err.msg);
    return EXIT_WORK;
}
