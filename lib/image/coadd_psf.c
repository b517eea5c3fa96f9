/* coadd_psf.c - the reference PSF: the PSF file of each input (given, or
 * found beside it), their mean on one grid, blurred as the resampling
 * blurs, made circularly symmetric and of unit sum.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "coadd_internal.h"

/* ------------------------------------------------------------ PSF files */

static int psf_name_matches(const char *name, const char *filter, int sca)
{
    char tail[64];
    size_t n = strlen(name), t;

    if (!strstr(name, "PSF") && !strstr(name, "psf"))
        return 0;
    snprintf(tail, sizeof tail, "_%s_%d.fits", filter, sca);
    t = strlen(tail);
    return n > t && strcasecmp(name + n - t, tail) == 0;
}

static int find_in_dir(const char *dir, const char *filter, int sca, char *out,
                       size_t outsz)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    if (!d)
        return 0;
    while (!found && (e = readdir(d)) != NULL)
        if (psf_name_matches(e->d_name, filter, sca)) {
            snprintf(out, outsz, "%s/%s", dir, e->d_name);
            found = 1;
        }
    closedir(d);
    return found;
}

int rapid_coadd_find_psf(const char *l2path, const char *filter, int sca,
                         char *out, size_t outsz, rapid_err *err)
{
    char dir[4096], place[4200];
    const char *slash = strrchr(l2path, '/');
    const char *sub[] = {"", "/psf", "/../psf"};
    size_t k;

    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - l2path), l2path);
    else
        snprintf(dir, sizeof dir, ".");
    for (k = 0; k < sizeof sub / sizeof sub[0]; k++) {
        snprintf(place, sizeof place, "%s%s", dir, sub[k]);
        if (find_in_dir(place, filter, sca, out, outsz))
            return 0;
    }
    return rapid_fail(err, RAPID_E_NOENT,
                      "%s: no PSF file *PSF*_%s_%d.fits in %s, %s/psf or "
                      "%s/../psf",
                      l2path, filter, sca, dir, dir, dir);
}

/* ------------------------------------------------------ reference PSF */

/* Mean of the inputs (each normalised) on a size x size grid. */
static int mean_psf(const rapid_image *psfs, int n, int size, double *mean,
                    rapid_err *err)
{
    int k, i, j, h = size / 2;

    memset(mean, 0, (size_t)size * size * sizeof *mean);
    for (k = 0; k < n; k++) {
        const rapid_image *p = &psfs[k];
        double sum = 0;
        if (p->nx % 2 == 0 || p->ny % 2 == 0 || !p->data)
            return rapid_fail(err, RAPID_E_ARG,
                              "input PSF %d is %d x %d: the size must be odd",
                              k + 1, p->nx, p->ny);
        for (i = 0; i < p->nx * p->ny; i++)
            if (isfinite(p->data[i]))
                sum += p->data[i];
        if (!(sum > 0))
            return rapid_fail(err, RAPID_E_ARG, "input PSF %d has no flux", k + 1);
        for (j = 0; j < size; j++)
            for (i = 0; i < size; i++) {
                int x = i - h + p->nx / 2, y = j - h + p->ny / 2;
                float v;
                if (x < 0 || y < 0 || x >= p->nx || y >= p->ny)
                    continue;
                v = p->data[y * p->nx + x];
                if (isfinite(v))
                    mean[j * size + i] += v / sum / n;
            }
    }
    return 0;
}

int rapid_coadd_psf(const rapid_image *psfs, int n, int size, rapid_image *out,
                    rapid_err *err)
{
    double *mean = NULL, *blur = NULL, *prof = NULL, *wt = NULL, sum = 0;
    int rc = 0, i, j, h, nb, b;
    const double bin = 0.25; /* radial bins, pixels */

    if (n <= 0)
        return rapid_fail(err, RAPID_E_ARG, "reference PSF: no input PSFs");
    if (size <= 0)
        size = psfs[0].nx;
    if (size % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "reference PSF: size %d is even", size);
    h = size / 2;
    nb = (int)ceil(h * M_SQRT2 / bin) + 2;
    mean = malloc((size_t)size * size * sizeof *mean);
    blur = calloc((size_t)size * size, sizeof *blur);
    prof = calloc((size_t)nb, sizeof *prof);
    wt = calloc((size_t)nb, sizeof *wt);
    if (!mean || !blur || !prof || !wt) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
        goto cleanup;
    }
    if ((rc = mean_psf(psfs, n, size, mean, err)) != 0)
        goto cleanup;
    /* Exact-overlap resampling spreads each input pixel over the output
     * pixels it overlaps: output pixel m gets sum_k I_k T(m - k - phase),
     * T the tent (box * box).  Averaged over the phases of the inputs, a
     * star's profile on the output grid is the input PSF convolved with
     * the tent, which adds a variance of 2/12 per axis: the discrete
     * kernel [1/12 5/6 1/12] adds exactly that. */
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            int dx, dy;
            for (dy = -1; dy <= 1; dy++)
                for (dx = -1; dx <= 1; dx++) {
                    int x = i + dx, y = j + dy;
                    double k = (dx ? 1.0 / 12 : 5.0 / 6) * (dy ? 1.0 / 12 : 5.0 / 6);
                    if (x >= 0 && y >= 0 && x < size && y < size)
                        blur[y * size + x] += k * mean[j * size + i];
                }
        }
    /* Radial profile, linear in r between bin centres. */
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            double r = hypot(i - h, j - h) / bin;
            b = (int)r;
            prof[b] += blur[j * size + i] * (1 - (r - b));
            wt[b] += 1 - (r - b);
            prof[b + 1] += blur[j * size + i] * (r - b);
            wt[b + 1] += r - b;
        }
    for (b = 0; b < nb; b++)
        prof[b] = wt[b] > 0 ? prof[b] / wt[b] : 0;
    if ((rc = rapid_image_alloc(out, size, size, 0, err)) != 0)
        goto cleanup;
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            double r = hypot(i - h, j - h) / bin, v;
            b = (int)r;
            v = prof[b] * (1 - (r - b)) + prof[b + 1] * (r - b);
            out->data[j * size + i] = (float)v;
            sum += v;
        }
    for (i = 0; i < size * size; i++)
        out->data[i] = (float)(out->data[i] / sum);
    if ((rc = rapid_header_set_long(&out->hdr, "NPSFIN", n, "input PSFs averaged")) != 0)
        rapid_header_fail(err, rc, "reference PSF", "NPSFIN");
    else if ((rc = rapid_header_add_text(&out->hdr, "COMMENT",
                                         "Reference PSF: mean of the input PSFs "
                                         "convolved with the resampling kernel, "
                                         "radially averaged, unit sum.")) != 0)
        rapid_header_fail(err, rc, "reference PSF", "COMMENT");
cleanup:
    if (rc)
        rapid_image_release(out);
    free(mean);
    free(blur);
    free(prof);
    free(wt);
    return rc;
}

/* ------------------------------------------- of the reference image */

int coadd_reference_psf(const rapid_coadd_opts *o, const coadd_input *in,
                        int n, rapid_image *out, rapid_err *err)
{
    rapid_image *psfs = calloc((size_t)n, sizeof *psfs);
    char path[4096];
    int k, rc = 0;

    if (!psfs)
        return rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
    for (k = 0; k < n && rc == 0; k++) {
        const char *p = in[k].src->psf_path;
        if (!p) {
            if ((rc = rapid_coadd_find_psf(in[k].src->path, in[k].filter, in[k].sca,
                                           path, sizeof path, err)) != 0)
                break;
            p = path;
        }
        rc = rapid_fits_read_image(p, NULL, &psfs[k], err);
    }
    if (rc == 0)
        rc = rapid_coadd_psf(psfs, n, o->psf_size, out, err);
    for (k = 0; k < n; k++)
        rapid_image_release(&psfs[k]);
    free(psfs);
    return rc;
}
