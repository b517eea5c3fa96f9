/* spikes.c - unflagged single-pixel spikes told from point sources by the
 * PSF (rapid/spikes.h). */
#include <math.h>
#include <stdlib.h>

#include "core/clones.h"
#include "rapid/spikes.h"

double rapid_spike_psf_ratio(const float *psf, int n)
{
    int c = n / 2;
    double p, m;

    if (!psf || n < 3 || n % 2 == 0)
        return NAN;
    p = psf[(size_t)c * n + c];
    m = fmax(fmax(psf[(size_t)c * n + c - 1], psf[(size_t)c * n + c + 1]),
             fmax(psf[(size_t)(c - 1) * n + c], psf[(size_t)(c + 1) * n + c]));
    return m > 0 && p > m ? p / m : NAN;
}

/* Row y's pixels 1 .. nx - 2 whose excess e over the background b has
 * e |e| > NSIGMA^2 var(b) (e > NSIGMA sd without a square root; NaN never
 * passes): flags into hot[x], and whether any.  The same doubles as the
 * judgement after it, in a loop without branches that vectorises (almost
 * every pixel fails). */
RAPID_CLONES
static int row_hot(const float *d, const float *bk, double bkg0,
                   double var_read, double var_per_unit, int nx,
                   unsigned char *hot)
{
    const double k2 = RAPID_SPIKE_NSIGMA * RAPID_SPIKE_NSIGMA;
    int x, any = 0;

    if (bk)
        for (x = 1; x < nx - 1; x++) {
            double b = bk[x], e = d[x] - b;
            double var = var_read + (b > 0 ? b : 0) * var_per_unit;
            hot[x] = e * fabs(e) > k2 * var;
            any |= hot[x];
        }
    else {
        double var = var_read + (bkg0 > 0 ? bkg0 : 0) * var_per_unit;
        for (x = 1; x < nx - 1; x++) {
            double e = d[x] - bkg0;
            hot[x] = e * fabs(e) > k2 * var;
            any |= hot[x];
        }
    }
    return any;
}

int rapid_spike_mask(float *data, float *also, int nx, int ny,
                     const rapid_spike_noise *noise, double ratio,
                     long *nmasked, rapid_err *err)
{
    static const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
    const float *bk = noise->bkg;
    double k_nb = RAPID_SPIKE_MARGIN * ratio;
    unsigned char *hot = NULL;
    size_t i, *spike = NULL, nspike = 0, cap = 0;
    long nm;
    int x, y, k, rc = 0;

    if (nmasked)
        *nmasked = 0;
    if (!(ratio > 1) || !isfinite(ratio))
        return rapid_fail(err, RAPID_E_ARG, "spikes: a PSF peak-to-neighbour "
                          "ratio of %g", ratio);
    if (nx < 3 || ny < 3)
        return 0;
    if (!(hot = malloc((size_t)nx)))
        return rapid_fail(err, RAPID_E_NOMEM, "spikes: no memory for a row "
                          "of %d", nx);
    for (y = 1; y < ny - 1; y++) {
        size_t row = (size_t)y * nx;
        if (!row_hot(data + row, bk ? bk + row : NULL, noise->bkg0,
                     noise->var_read, noise->var_per_unit, nx, hot))
            continue;
        for (x = 1; x < nx - 1; x++) {
            double b, e, nb = 0, sd;
            if (!hot[x])
                continue;
            i = row + x;
            b = bk ? bk[i] : noise->bkg0;
            e = data[i] - b;
            sd = sqrt(noise->var_read + fmax(b, 0) * noise->var_per_unit);
            for (k = 0; k < 4; k++) {
                size_t j = (size_t)(y + dy[k]) * nx + x + dx[k];
                double v = data[j] - (bk ? bk[j] : noise->bkg0);
                if (!isfinite(v))
                    break;
                nb = fmax(nb, v);
            }
            if (k < 4 || !(e - k_nb * nb > RAPID_SPIKE_NSIGMA * sd))
                continue;
            if (nspike == cap) {
                size_t *g = realloc(spike, (cap = cap ? 2 * cap : 1024) *
                                               sizeof *spike);
                if (!g) {
                    rc = rapid_fail(err, RAPID_E_NOMEM, "spikes: no memory "
                                    "for %zu spikes", cap);
                    goto done;
                }
                spike = g;
            }
            spike[nspike++] = i;
        }
    }
    /* after the search, so that a spike's neighbour is judged by the data */
    for (i = 0; i < nspike; i++) {
        data[spike[i]] = NAN;
        if (also)
            also[spike[i]] = NAN;
    }
    nm = (long)nspike;
    if (nmasked)
        *nmasked = nm;
done:
    free(hot);
    free(spike);
    return rc;
}
