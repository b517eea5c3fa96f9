/* settings.c - the operator's INI file (rapid/steps.h, docs/configuration.md). */
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/candidates.h"
#include "rapid/steps.h"

void rapid_steps_settings_init(rapid_steps_settings *s)
{
    memset(s, 0, sizeof *s);
    s->ref_min_inputs = 3;
    s->ref_max_inputs = 25;
    s->ref_size = 7000;
    snprintf(s->methods, sizeof s->methods, "zogy,sfft,naive");
    s->sfft_order = 2;
    s->kernel_half_width = 9;
    snprintf(s->executor, sizeof s->executor, "local");
    s->jobs = 0;
    s->threads = 1;
    s->slurm_array_max = 1000;
    s->slurm_poll = 5;
}

typedef struct ini_ctx {
    rapid_steps_settings *s;
    char problem[256];
} ini_ctx;

static int int_value(ini_ctx *c, const char *name, const char *value, int lo,
                     int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(value, &end, 10);
    if (end == value || *end || errno || v < lo || v > hi) {
        snprintf(c->problem, sizeof c->problem, "%s = '%s': must be an"
                 " integer in %d .. %d", name, value, lo, hi);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int methods_value(ini_ctx *c, const char *value)
{
    char buf[64], *tok, *save = NULL;
    int n = 0;

    if (strlen(value) >= sizeof buf) {
        snprintf(c->problem, sizeof c->problem, "methods: too long");
        return 0;
    }
    snprintf(buf, sizeof buf, "%s", value);
    for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "zogy") && strcmp(tok, "sfft") && strcmp(tok, "naive")) {
            snprintf(c->problem, sizeof c->problem, "methods: unknown method"
                     " '%.40s' (known: zogy sfft naive)", tok);
            return 0;
        }
        n++;
    }
    if (!n) {
        snprintf(c->problem, sizeof c->problem, "methods: none given");
        return 0;
    }
    snprintf(c->s->methods, sizeof c->s->methods, "%s", value);
    return 1;
}

static int cut_value(ini_ctx *c, const char *name, const char *value)
{
    rapid_steps_settings *s = c->s;
    rapid_cuts scratch;
    char problem[200];
    int i;

    /* the cut keys and their check are rapid_cuts_set's: one list of them */
    rapid_cuts_init(&scratch);
    if (rapid_cuts_set(&scratch, name, value, problem, sizeof problem) != 0) {
        if (strncmp(problem, "unknown key", 11) == 0)
            snprintf(c->problem, sizeof c->problem, "unknown key %.60s in [cuts]"
                     " (docs/configuration.md lists them)", name);
        else
            snprintf(c->problem, sizeof c->problem, "%s", problem);
        return 0;
    }
    if (strlen(value) >= sizeof s->cut_value[0]) {
        snprintf(c->problem, sizeof c->problem, "%s = '%.60s' is not a finite"
                 " number", name, value);
        return 0;
    }
    for (i = 0; i < s->ncuts; i++)
        if (strcmp(s->cut_key[i], name) == 0)
            break;
    if (i == s->ncuts)
        s->ncuts++;
    snprintf(s->cut_key[i], sizeof s->cut_key[i], "%s", name);
    snprintf(s->cut_value[i], sizeof s->cut_value[i], "%s", value);
    return 1;
}

/* A text value that must fit, and (but for extra) be one word. */
static int text_value(ini_ctx *c, const char *name, const char *value,
                      int blanks, char *out, size_t outsz)
{
    if (strlen(value) >= outsz) {
        snprintf(c->problem, sizeof c->problem, "%s: longer than %zu"
                 " characters", name, outsz - 1);
        return 0;
    }
    if (!blanks && strpbrk(value, " \t")) {
        snprintf(c->problem, sizeof c->problem, "%s = '%.60s': one word,"
                 " no blanks", name, value);
        return 0;
    }
    snprintf(out, outsz, "%s", value);
    return 1;
}

static int slurm_key(ini_ctx *c, const char *name, const char *value)
{
    rapid_steps_settings *s = c->s;

    if (strcmp(name, "partition") == 0)
        return text_value(c, name, value, 0, s->slurm_partition,
                          sizeof s->slurm_partition);
    if (strcmp(name, "cpus") == 0)
        return int_value(c, name, value, 0, 4096, &s->slurm_cpus);
    if (strcmp(name, "mem") == 0)
        return text_value(c, name, value, 0, s->slurm_mem,
                          sizeof s->slurm_mem);
    if (strcmp(name, "time") == 0)
        return text_value(c, name, value, 0, s->slurm_time,
                          sizeof s->slurm_time);
    if (strcmp(name, "extra") == 0)
        return text_value(c, name, value, 1, s->slurm_extra,
                          sizeof s->slurm_extra);
    if (strcmp(name, "array_max") == 0)
        return int_value(c, name, value, 1, 100000, &s->slurm_array_max);
    if (strcmp(name, "poll") == 0)
        return int_value(c, name, value, 1, 3600, &s->slurm_poll);
    snprintf(c->problem, sizeof c->problem, "unknown key %.40s in [slurm]"
             " (docs/configuration.md lists them)", name);
    return 0;
}

static int on_key(void *arg, const char *section, const char *name,
                  const char *value)
{
    ini_ctx *c = arg;
    rapid_steps_settings *s = c->s;

    if (c->problem[0])
        return 0;
    if (strcmp(section, "launch") == 0) {
        if (strcmp(name, "ref_min_inputs") == 0)
            return int_value(c, name, value, 1, 1000, &s->ref_min_inputs);
        if (strcmp(name, "ref_max_inputs") == 0)
            return int_value(c, name, value, 1, 1000, &s->ref_max_inputs);
        if (strcmp(name, "ref_size") == 0)
            return int_value(c, name, value, 64, 65536, &s->ref_size);
    } else if (strcmp(section, "diff") == 0) {
        if (strcmp(name, "methods") == 0)
            return methods_value(c, value);
        if (strcmp(name, "sfft_order") == 0)
            return int_value(c, name, value, 0, 10, &s->sfft_order);
        if (strcmp(name, "kernel_half_width") == 0)
            return int_value(c, name, value, 1, 100, &s->kernel_half_width);
    } else if (strcmp(section, "cuts") == 0) {
        return cut_value(c, name, value);
    } else if (strcmp(section, "executor") == 0) {
        if (strcmp(name, "executor") == 0) {
            if (strcmp(value, "local") && strcmp(value, "slurm") &&
                strcmp(value, "none")) {
                snprintf(c->problem, sizeof c->problem, "executor = '%.40s':"
                         " must be local, slurm or none", value);
                return 0;
            }
            snprintf(s->executor, sizeof s->executor, "%s", value);
            return 1;
        }
        if (strcmp(name, "jobs") == 0)
            return int_value(c, name, value, 0, 4096, &s->jobs);
        if (strcmp(name, "threads") == 0)
            return int_value(c, name, value, 1, 1024, &s->threads);
    } else if (strcmp(section, "slurm") == 0) {
        return slurm_key(c, name, value);
    } else {
        snprintf(c->problem, sizeof c->problem, "unknown section [%.40s]"
                 " (known: launch diff cuts executor slurm)", section);
        return 0;
    }
    snprintf(c->problem, sizeof c->problem, "unknown key %.40s in [%s]"
             " (docs/configuration.md lists them)", name, section);
    return 0;
}

int rapid_steps_settings_read(rapid_steps_settings *s, const char *path,
                              rapid_err *err)
{
    rapid_steps_settings tmp = *s;
    ini_ctx c;
    int rc;

    c.s = &tmp;
    c.problem[0] = '\0';
    errno = 0;
    rc = ini_parse(path, on_key, &c);
    if (rc == -1)
        return rapid_fail(err, errno == ENOENT ? RAPID_E_NOENT : RAPID_E_IO,
                          "%s: cannot read the settings: %s", path,
                          errno ? strerror(errno) : "cannot open");
    if (rc == -2)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", path);
    if (rc > 0)
        return rapid_fail(err, RAPID_E_ARG, "%s: line %d: %s", path, rc,
                          c.problem[0] ? c.problem : "not an INI line");
    if (tmp.ref_min_inputs > tmp.ref_max_inputs)
        return rapid_fail(err, RAPID_E_ARG, "%s: ref_min_inputs %d above"
                          " ref_max_inputs %d", path, tmp.ref_min_inputs,
                          tmp.ref_max_inputs);
    *s = tmp;
    return 0;
}
