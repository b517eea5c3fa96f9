/* util.c - helpers shared by the subcommands. */
#include <ctype.h>
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
#include "rapid/db.h"
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

/* [+-]digits[.digits][e[+-]digits], at least one digit before the
 * exponent: what strtod takes besides (hex, inf, nan, leading blanks) is
 * more likely a slip than meant. */
static int plain_decimal(const char *s)
{
    int digits = 0;

    if (*s == '+' || *s == '-')
        s++;
    for (; isdigit((unsigned char)*s); s++)
        digits++;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            digits++;
    if (!digits)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

int cli_parse_double(const char *s, double *out)
{
    char *end;

    if (!plain_decimal(s))
        return -1;
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

    if (!isdigit((unsigned char)s[s[0] == '+' || s[0] == '-']))
        return -1; /* no leading blanks */
    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int cli_parse_lock_timeout(const char *s, double *seconds)
{
    return cli_parse_double(s, seconds) || !(*seconds > 0) ||
                   *seconds > 86400
               ? -1
               : 0;
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

/* ------------------------------------------------------------ options */

void cli_parser_init(cli_parser *p, const char *cmd, const cli_option *opts,
                     int argc, char **argv)
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->opts = opts;
    p->argc = argc;
    p->argv = argv;
    p->i = 1;
}

static const cli_option *find_option(const cli_option *opts, const char *a,
                                     size_t len)
{
    for (; opts->name; opts++)
        if ((strlen(opts->name) == len && strncmp(opts->name, a, len) == 0) ||
            (opts->alias && strlen(opts->alias) == len &&
             strncmp(opts->alias, a, len) == 0))
            return opts;
    return NULL;
}

/* An argument that is an operand although it starts with '-': "-" and
 * numbers ("-43.8", a southern declination). */
static int is_operand(const char *a)
{
    double d;

    return a[0] != '-' || a[1] == '\0' || cli_parse_double(a, &d) == 0;
}

int cli_next(cli_parser *p)
{
    const cli_option *o;
    const char *a, *eq;
    size_t len;

    p->value = NULL;
    p->opt = NULL;
    if (p->i >= p->argc)
        return CLI_END;
    a = p->argv[p->i++];
    if (!p->operands_only && strcmp(a, "--") == 0) {
        p->operands_only = 1;
        return cli_next(p);
    }
    if (p->operands_only || is_operand(a)) {
        p->value = a;
        return CLI_OPERAND;
    }
    eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    len = eq ? (size_t)(eq - a) : strlen(a);
    if (!(o = find_option(p->opts, a, len))) {
        cli_usage(p->cmd, "unknown option '%.*s' (see rapid %s --help)",
                  (int)len, a, p->cmd);
        return CLI_BAD;
    }
    p->opt = o->name;
    if (!o->takes_value) {
        if (eq) {
            cli_usage(p->cmd, "option %s takes no value (given '%s')",
                      o->name, eq + 1);
            return CLI_BAD;
        }
        return o->id;
    }
    if (eq) {
        p->value = eq + 1;
    } else if (p->i < p->argc && (strncmp(p->argv[p->i], "--", 2) != 0 ||
                                  is_operand(p->argv[p->i]))) {
        p->value = p->argv[p->i++];
    } else {
        cli_usage(p->cmd, "option %s needs a value (see rapid %s --help)",
                  o->name, p->cmd);
        return CLI_BAD;
    }
    return o->id;
}

int cli_int_value(const cli_parser *p, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v;

    if (cli_parse_int64(p->value, &v) || v < lo || v > hi)
        return cli_usage(p->cmd, "invalid %s '%s': must be an integer in "
                         "%" PRId64 " .. %" PRId64, p->opt, p->value, lo, hi);
    *out = v;
    return 0;
}

int cli_int_option(const cli_parser *p, int lo, int hi, int *out)
{
    int64_t v = 0;
    int rc;

    if ((rc = cli_int_value(p, lo, hi, &v)) != 0)
        return rc;
    *out = (int)v;
    return 0;
}

int cli_check_db_url(const char *cmd, const char *url)
{
    const char *from = "--db", *why;

    if (!url || !*url) {
        url = getenv("RAPID_DB");
        from = "RAPID_DB";
        if (!url || !*url)
            return 0; /* the default, under RAPID_WORK */
    }
    if (!(why = rapid_db_url_problem(url)))
        return 0;
    /* Not echoed when it may hold a password. */
    return cli_usage(cmd, "%s '%s': %s", from, strchr(url, '@') ? "..." : url,
                     why);
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

static volatile sig_atomic_t stop_flag;

/* The first signal asks the work to stop; a second one ends it now. */
static void ask_to_stop(int sig)
{
    if (stop_flag)
        remove_and_die(sig);
    stop_flag = 1;
}

volatile sig_atomic_t *cli_stop_on_signals(void)
{
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa, old;
    int i;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ask_to_stop;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < 3; i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    for (i = 0; i < 3; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    return &stop_flag;
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
