/* sim_clear.c - remove what an earlier simulation wrote in a directory.
 *
 * Files are recognised by the names rapid_sim_run gives them (see sim.c),
 * and by the hidden temporary names of an interrupted write of one of them
 * (".<name>.<pid>.<hex>.tmp", see fits.c); nothing else is touched.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rapid/filters.h"
#include "rapid/sim.h"

#define PATH_LEN 4096

static int skip_prefix(const char **s, const char *prefix)
{
    size_t n = strlen(prefix);

    if (strncmp(*s, prefix, n) != 0)
        return 0;
    *s += n;
    return 1;
}

static int skip_digits(const char **s)
{
    const char *p = *s;

    while (isdigit((unsigned char)*p))
        p++;
    if (p == *s)
        return 0;
    *s = p;
    return 1;
}

static int skip_filter(const char **s)
{
    int fid;

    for (fid = 1; fid <= RAPID_NFILTERS; fid++)
        if (skip_prefix(s, rapid_filter_by_fid(fid)->name))
            return 1;
    return 0;
}

/* Roman_TDS_simple_model_<FILTER>_<pointing>_<sca>.fits[.gz] */
static int l2_name(const char *s)
{
    return skip_prefix(&s, "Roman_TDS_simple_model_") && skip_filter(&s) &&
           skip_prefix(&s, "_") && skip_digits(&s) && skip_prefix(&s, "_") &&
           skip_digits(&s) &&
           (strcmp(s, ".fits") == 0 || strcmp(s, ".fits.gz") == 0);
}

/* Roman_WFI_PSF_<FILTER>_<sca>.fits, or with _visit<v> before .fits */
static int psf_name(const char *s)
{
    if (!(skip_prefix(&s, "Roman_WFI_PSF_") && skip_filter(&s) &&
          skip_prefix(&s, "_") && skip_digits(&s)))
        return 0;
    if (skip_prefix(&s, "_visit") && !skip_digits(&s))
        return 0;
    return strcmp(s, ".fits") == 0;
}

static int truth_name(const char *s)
{
    return strcmp(s, "static.fits") == 0 ||
           strcmp(s, "transients.fits") == 0 ||
           strcmp(s, "pointings.fits") == 0;
}

/* ".<name>.<pid>.<hex>.tmp" where name is one of the kind. */
static int temp_of(const char *s, int (*is)(const char *))
{
    char name[256];
    size_t n = strlen(s);
    char *dot;

    if (s[0] != '.' || n < 5 || n >= sizeof name ||
        strcmp(s + n - 4, ".tmp") != 0)
        return 0;
    memcpy(name, s + 1, n - 5);
    name[n - 5] = '\0';
    if (!(dot = strrchr(name, '.')) || !dot[1] ||
        strspn(dot + 1, "0123456789abcdef") != strlen(dot + 1))
        return 0;
    *dot = '\0';
    if (!(dot = strrchr(name, '.')) || !dot[1] ||
        strspn(dot + 1, "0123456789") != strlen(dot + 1))
        return 0;
    *dot = '\0';
    return is(name);
}

/* Unlink the entries of dir that is() names (or their temporaries). */
static int clear_dir(const char *dir, int (*is)(const char *), long *removed,
                     rapid_err *err)
{
    char path[PATH_LEN];
    struct dirent *d;
    DIR *D = opendir(dir);
    int rc = 0;

    if (!D)
        return errno == ENOENT || errno == ENOTDIR
                   ? 0
                   : rapid_fail(err, RAPID_E_IO, "%s: cannot read the "
                                "directory: %s", dir, strerror(errno));
    while (rc == 0 && (d = readdir(D)) != NULL) {
        if (!is(d->d_name) && !temp_of(d->d_name, is))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, d->d_name) >=
            (int)sizeof path)
            rc = rapid_fail(err, RAPID_E_ARG, "%s: path too long", dir);
        else if (unlink(path) != 0 && errno != ENOENT)
            rc = rapid_fail(err, RAPID_E_IO, "%s: cannot remove: %s", path,
                            strerror(errno));
        else if (removed)
            (*removed)++;
    }
    closedir(D);
    return rc;
}

int rapid_sim_clear(const char *outdir, long *removed, rapid_err *err)
{
    static const char *const subs[] = {"psf", "truth"};
    int (*const kinds[])(const char *) = {psf_name, truth_name};
    char path[PATH_LEN];
    int i, rc;

    if (removed)
        *removed = 0;
    if ((rc = clear_dir(outdir, l2_name, removed, err)) != 0)
        return rc;
    for (i = 0; i < 2; i++) {
        if (snprintf(path, sizeof path, "%s/%s", outdir, subs[i]) >=
            (int)sizeof path)
            return rapid_fail(err, RAPID_E_ARG, "%s: path too long", outdir);
        if ((rc = clear_dir(path, kinds[i], removed, err)) != 0)
            return rc;
        if (rmdir(path) != 0 && errno != ENOENT && errno != ENOTEMPTY &&
            errno != EEXIST && errno != ENOTDIR)
            return rapid_fail(err, RAPID_E_IO, "%s: cannot remove: %s", path,
                              strerror(errno));
    }
    return 0;
}
