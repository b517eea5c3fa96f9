/* coadd_inputs.c - the inputs of a reference image: each one's header,
 * WCS and photometric keywords; those of the filter that land on the grid,
 * nearest the tile centre first, at most max_inputs of them.
 */
#include <stdlib.h>
#include <string.h>

#include "coadd_internal.h"

void coadd_input_release(coadd_input *in)
{
    rapid_header_release(&in->hdr);
    rapid_wcs_release(&in->wcs);
}

static double key_or(const rapid_header *h, const char *key, double dflt)
{
    double v;
    return rapid_header_get_double(h, key, &v, NULL) == 0 ? v : dflt;
}

/* Header, WCS and photometric keywords of one input. */
static int read_input(const rapid_coadd_input *src, coadd_input *in, rapid_err *err)
{
    long v;
    int rc;

    memset(in, 0, sizeof *in);
    in->src = src;
    rapid_header_init(&in->hdr);
    if ((rc = rapid_fits_read_header(src->path, NULL, &in->hdr, err)) != 0)
        return rc;
    if ((rc = rapid_header_get_long(&in->hdr, "NAXIS1", &v, err)) ||
        (in->nx = (int)v,
         rc = rapid_header_get_long(&in->hdr, "NAXIS2", &v, err)))
        goto failed;
    in->ny = (int)v;
    if ((rc = rapid_header_get_double(&in->hdr, "EXPTIME", &in->exptime, err)) ||
        (rc = rapid_header_get_double(&in->hdr, "ZPTMAG", &in->zptmag, err)) ||
        (rc = rapid_header_get_double(&in->hdr, "MJD-OBS", &in->mjd, err)) ||
        (rc = rapid_header_get_str(&in->hdr, "FILTER", in->filter,
                                   sizeof in->filter, err)))
        goto failed;
    if (!(in->exptime > 0))
        return rapid_fail(err, RAPID_E_KEY, "%s: EXPTIME %g is not positive",
                          src->path, in->exptime);
    in->sca = rapid_header_get_long(&in->hdr, "SCA_NUM", &v, NULL) == 0 ? (int)v : 0;
    in->gain = key_or(&in->hdr, "GAIN", RAPID_GAIN);
    in->rdnoise = key_or(&in->hdr, "RDNOISE", RAPID_READNOISE);
    in->saturate = key_or(&in->hdr, "SATURATE", RAPID_SATURATION);
    if ((rc = rapid_wcs_from_header(&in->wcs, &in->hdr, err)) != 0)
        goto failed;
    return 0;
failed:
    rapid_err_prefix(err, "%s", src->path);
    return rc;
}

/* Sky distance of the image centre from (ra, dec), and whether the image
 * lands on the grid at all: NULL if it does, else why not. */
static const char *locate_input(coadd_input *in, rapid_wcs *grid, int size, double ra,
                        double dec)
{
    double fra[5], fdec[5], x[5], y[5];
    int k, on = 0;

    if (rapid_wcs_footprint(&in->wcs, in->nx, in->ny, fra, fdec, NULL) != 0)
        return "its WCS gives no footprint on the sky";
    in->dist = rapid_sky_distance(fra[0], fdec[0], ra, dec);
    if (in->dist > 30)
        return "its WCS puts it more than 30 deg from the tile centre";
    if (rapid_wcs_sky2pix(grid, 5, fra, fdec, x, y, NULL) != 0)
        return "its corners cannot be placed on the tile's grid";
    for (k = 0; k < 5; k++)
        on |= x[k] > -0.5 && x[k] < size - 0.5 && y[k] > -0.5 && y[k] < size - 0.5;
    if (!on) { /* the grid may still sit inside a larger image */
        double gx = (size - 1) / 2.0, gy = (size - 1) / 2.0, gra, gdec, ix, iy;
        if (rapid_wcs_pix2sky(grid, 1, &gx, &gy, &gra, &gdec, NULL) == 0 &&
            rapid_wcs_sky2pix(&in->wcs, 1, &gra, &gdec, &ix, &iy, NULL) == 0)
            on = ix > -0.5 && ix < in->nx - 0.5 && iy > -0.5 && iy < in->ny - 0.5;
    }
    return on ? NULL : "it does not overlap the tile's grid";
}

static int cmp_dist(const void *a, const void *b)
{
    double x = ((const coadd_input *)a)->dist, y = ((const coadd_input *)b)->dist;
    return (x > y) - (x < y);
}

int coadd_choose_inputs(const rapid_coadd_opts *o, const rapid_filter *f,
                        int64_t rtid, const rapid_coadd_input *src, int n,
                        rapid_wcs *grid, const rapid_tile *t, coadd_input **out,
                        int *nout, const char **why, rapid_err *err)
{
    coadd_input *in = calloc((size_t)(n > 0 ? n : 1), sizeof *in);
    int k, m = 0, rc = 0;

    *out = in;
    *nout = 0;
    if (!in)
        return rapid_fail(err, RAPID_E_NOMEM, "reference image: no memory");
    for (k = 0; k < n; k++) {
        const rapid_filter *g;
        if ((rc = read_input(&src[k], &in[m], err)) != 0) {
            coadd_input_release(&in[m]);
            goto cleanup;
        }
        g = rapid_filter_by_name(in[m].filter);
        if (g != f) {
            rc = rapid_fail(err, RAPID_E_ARG, "%s: filter %s, but the reference "
                            "image is for %s", src[k].path, in[m].filter, f->name);
            coadd_input_release(&in[m]);
            goto cleanup;
        }
        const char *off = locate_input(&in[m], grid, o->size, t->cra, t->cdec);
        if (off) {
            if (why)
                why[k] = off;
            coadd_input_release(&in[m]);
            continue;
        }
        m++;
    }
    qsort(in, (size_t)m, sizeof *in, cmp_dist);
    while (m > o->max_inputs) {
        if (why)
            why[in[m - 1].src - src] = "not among the max_inputs nearest the "
                                       "tile centre";
        coadd_input_release(&in[--m]);
    }
    if (m < o->min_inputs)
        rc = rapid_fail(err, RAPID_E_TOOFEW,
                        "tile %lld, %s: %d usable input image%s of %d given; a "
                        "reference image needs at least %d",
                        (long long)rtid, f->name, m, m == 1 ? "" : "s", n,
                        o->min_inputs);
cleanup:
    *nout = m;
    return rc;
}
