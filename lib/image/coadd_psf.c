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
#include "rapid/psfops.h"
#include "rapid/spikes.h"

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

/* Made circularly symmetric: the mean profile in radial bins of `bin`
 * samples, linear in r between bin centres, put back on the n x n grid
 * (in place).  The inputs are seen at several roll angles, and a
 * detector's PSF rotated by each; the mean over the rolls is closer to
 * round than any one of them. */
static int radial_average(double *img, int n, double bin, rapid_err *err)
{
    int h = n / 2, nb = (int)ceil(h * M_SQRT2 / bin) + 2, i, j, b;
    double *prof = calloc((size_t)nb, sizeof *prof);
    double *wt = calloc((size_t)nb, sizeof *wt);

    if (!prof || !wt) {
        free(prof);
        free(wt);
        return rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
    }
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            double r = hypot(i - h, j - h) / bin;
            b = (int)r;
            prof[b] += img[j * n + i] * (1 - (r - b));
            wt[b] += 1 - (r - b);
            prof[b + 1] += img[j * n + i] * (r - b);
            wt[b + 1] += r - b;
        }
    for (b = 0; b < nb; b++)
        prof[b] = wt[b] > 0 ? prof[b] / wt[b] : 0;
    for (j = 0; j < n; j++)
        for (i = 0; i < n; i++) {
            double r = hypot(i - h, j - h) / bin;
            b = (int)r;
            img[j * n + i] = prof[b] * (1 - (r - b)) + prof[b + 1] * (r - b);
        }
    free(prof);
    free(wt);
    return 0;
}

/* out (allocated here): the size x size image taking every step-th sample
 * of the n x n img through its centre (0 beyond it), normalised to unit
 * sum. */
static int sample_psf(const double *img, int n, int step, int size,
                      rapid_image *out, rapid_err *err)
{
    int i, j, c = n / 2, h = size / 2, rc;
    double sum = 0;

    if ((rc = rapid_image_alloc(out, size, size, 0, err)) != 0)
        return rc;
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            int x = c + (i - h) * step, y = c + (j - h) * step;
            if (x >= 0 && y >= 0 && x < n && y < n)
                sum += img[y * n + x];
        }
    for (j = 0; j < size; j++)
        for (i = 0; i < size; i++) {
            int x = c + (i - h) * step, y = c + (j - h) * step;
            if (x >= 0 && y >= 0 && x < n && y < n)
                out->data[j * size + i] = (float)(img[y * n + x] / sum);
        }
    return 0;
}

static int psf_header(rapid_image *out, int n, const char *what, rapid_err *err)
{
    int rc;

    if ((rc = rapid_header_set_long(&out->hdr, "NPSFIN", n, "input PSFs averaged")) != 0)
        return rapid_header_fail(err, rc, "reference PSF", "NPSFIN");
    if ((rc = rapid_header_add_text(&out->hdr, "COMMENT", what)) != 0)
        return rapid_header_fail(err, rc, "reference PSF", "COMMENT");
    return 0;
}

int rapid_coadd_psf(const rapid_image *psfs, int n, int size, rapid_image *out,
                    rapid_err *err)
{
    double *mean = NULL, *blur = NULL;
    int rc = 0, i, j;

    if (n <= 0)
        return rapid_fail(err, RAPID_E_ARG, "reference PSF: no input PSFs");
    if (size <= 0)
        size = psfs[0].nx;
    if (size % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "reference PSF: size %d is even", size);
    mean = malloc((size_t)size * size * sizeof *mean);
    blur = calloc((size_t)size * size, sizeof *blur);
    if (!mean || !blur) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
        goto cleanup;
    }
    if ((rc = mean_psf(psfs, n, size, mean, err)) != 0)
        goto cleanup;
    /* Exact-overlap resampling spreads each input pixel over the output
     * pixels it overlaps: averaged over the phases, a star's profile on
     * the output grid is the input PSF convolved with the tent (box *
     * box), a variance of 2/12 per axis, which [1/12 5/6 1/12] adds to
     * the sampled PSF.  Only the variance: for an undersampled PSF the
     * tent lowers the peak more than this kernel does (rapid_coadd_psf_
     * oversampled does it exactly). */
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
    if ((rc = radial_average(blur, size, 0.25, err)) != 0 ||
        (rc = sample_psf(blur, size, 1, size, out, err)) != 0 ||
        (rc = psf_header(out, n, "Reference PSF: mean of the input PSFs "
                                 "convolved with [1/12 5/6 1/12] per axis, "
                                 "radially averaged, unit sum.", err)) != 0)
        goto cleanup;
cleanup:
    if (rc)
        rapid_image_release(out);
    free(mean);
    free(blur);
    return rc;
}

int rapid_coadd_psf_oversampled(const rapid_image *ovs, int n, int over,
                                int size, rapid_image *out,
                                rapid_image *out_over, rapid_err *err)
{
    double *mean = NULL;
    float *f = NULL;
    int rc = 0, m, k, i;

    if (n <= 0)
        return rapid_fail(err, RAPID_E_ARG, "reference PSF: no input PSFs");
    if (over < 1 || size <= 0 || size % 2 == 0)
        return rapid_fail(err, RAPID_E_ARG, "reference PSF: oversampling %d "
                          "and size %d (must be >= 1, and odd)", over, size);
    m = ovs[0].nx;
    mean = malloc((size_t)m * m * sizeof *mean);
    f = malloc((size_t)m * m * sizeof *f);
    if (!mean || !f) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
        goto cleanup;
    }
    if ((rc = mean_psf(ovs, n, m, mean, err)) != 0)
        goto cleanup;
    /* Exact-overlap resampling gives output pixel m the sum over input
     * pixels k of I_k A(m - x_k), A the overlap of the two pixels (box *
     * box, of whichever rotation); I_k is the effective PSF E at x_k.
     * Averaged over where the input pixels fall, a star's profile on the
     * output grid is E * box * box sampled at the output pixels: two boxes
     * of one pixel (over samples), applied to the well-sampled E by their
     * transforms, before the sampling.  (Blurring the sampled PSF instead
     * cannot lower the peak of an undersampled one enough.) */
    for (i = 0; i < m * m; i++)
        f[i] = (float)mean[i];
    for (k = 0; k < 2; k++)
        if ((rc = rapid_psf_box_blur(f, m, over, f, err)) != 0) {
            rapid_err_prefix(err, "reference PSF");
            goto cleanup;
        }
    for (i = 0; i < m * m; i++)
        mean[i] = f[i];
    if ((rc = radial_average(mean, m, 0.5, err)) != 0 ||
        (rc = sample_psf(mean, m, over, size, out, err)) != 0 ||
        (rc = psf_header(out, n, "Reference PSF: mean of the input effective "
                                 "PSFs (oversampled) convolved with two pixels "
                                 "(the resampling), radially averaged, "
                                 "sampled at the pixel centres, unit sum.",
                         err)) != 0)
        goto cleanup;
    if (out_over) {
        if ((rc = sample_psf(mean, m, 1, m, out_over, err)) != 0 ||
            (rc = psf_header(out_over, n, "The reference PSF before sampling: "
                                          "the same, every 1/OVERSAMP pixel, "
                                          "unit sum.", err)) != 0)
            goto cleanup;
        if ((rc = rapid_header_set_long(&out_over->hdr, "OVERSAMP", over,
                                        "samples per pixel")) != 0) {
            rapid_header_fail(err, rc, "reference PSF", "OVERSAMP");
            goto cleanup;
        }
    }
cleanup:
    if (rc) {
        rapid_image_release(out);
        if (out_over)
            rapid_image_release(out_over);
    }
    free(mean);
    free(f);
    return rc;
}

/* ------------------------------------------- of the reference image */

/* The inputs' oversampled PSFs (extension OVERSAMP) into ovs, when every
 * one has it with the same OVERSAMP: *over gets it (0: not every one). */
static int read_oversampled(char **paths, int n, rapid_image *ovs, int *over,
                            rapid_err *err)
{
    int k, rc = 0;

    *over = 0;
    for (k = 0; k < n; k++) {
        long v = 0;
        if ((rc = rapid_fits_has_hdu(paths[k], "OVERSAMP", err)) <= 0)
            goto none;
        if ((rc = rapid_fits_read_image(paths[k], "OVERSAMP", &ovs[k], err)) != 0)
            return rc;
        if (rapid_header_get_long(&ovs[k].hdr, "OVERSAMP", &v, NULL) != 0 ||
            v < 1 || v > 64 || (k && v != *over))
            goto none;
        *over = (int)v;
    }
    return 0;
none:
    *over = 0;
    return rc < 0 ? rc : 0;
}

/* The PSF file of input in into *p: the path given, or path (sz bytes)
 * holding the one found beside it. */
static int input_psf(const coadd_input *in, char *path, size_t sz,
                     const char **p, rapid_err *err)
{
    int rc = 0;

    *p = in->src->psf_path;
    if (!*p && (rc = rapid_coadd_find_psf(in->src->path, in->filter, in->sca,
                                          path, sz, err)) == 0)
        *p = path;
    return rc;
}

int coadd_spike_ratios(coadd_input *in, int n, rapid_err *err)
{
    rapid_image psf = RAPID_IMAGE_INIT;
    int k, rc = 0;

    for (k = 0; k < n && rc == 0; k++) {
        char path[4096];
        const char *p = NULL;
        if ((rc = input_psf(&in[k], path, sizeof path, &p, err)) == 0 &&
            (rc = rapid_fits_read_image(p, NULL, &psf, err)) == 0)
            in[k].spike_ratio = psf.nx == psf.ny ? rapid_spike_psf_ratio(psf.data, psf.nx)
                                                 : NAN;
        rapid_image_release(&psf);
    }
    return rc;
}

int coadd_reference_psf(const rapid_coadd_opts *o, const coadd_input *in,
                        int n, rapid_image *out, rapid_image *out_over,
                        rapid_err *err)
{
    rapid_image *psfs = calloc((size_t)n, sizeof *psfs);
    rapid_image *ovs = calloc((size_t)n, sizeof *ovs);
    char **paths = calloc((size_t)n, sizeof *paths);
    int k, rc = 0, over = 0;

    if (!psfs || !ovs || !paths) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
        goto cleanup;
    }
    for (k = 0; k < n && rc == 0; k++) {
        char path[4096];
        const char *p = NULL;
        if ((rc = input_psf(&in[k], path, sizeof path, &p, err)) != 0)
            break;
        if (!(paths[k] = strdup(p)))
            rc = rapid_fail(err, RAPID_E_NOMEM, "reference PSF: no memory");
        else
            rc = rapid_fits_read_image(p, NULL, &psfs[k], err);
    }
    if (rc == 0)
        rc = read_oversampled(paths, n, ovs, &over, err);
    if (rc == 0 && over)
        rc = rapid_coadd_psf_oversampled(ovs, n, over,
                                         o->psf_size > 0 ? o->psf_size : psfs[0].nx,
                                         out, out_over, err);
    else if (rc == 0)
        rc = rapid_coadd_psf(psfs, n, o->psf_size, out, err);
cleanup:
    for (k = 0; k < n && psfs; k++)
        rapid_image_release(&psfs[k]);
    for (k = 0; k < n && ovs; k++)
        rapid_image_release(&ovs[k]);
    for (k = 0; k < n && paths; k++)
        free(paths[k]);
    free(psfs);
    free(ovs);
    free(paths);
    return rc;
}
