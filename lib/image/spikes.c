/* spikes.c - unflagged single-pixel spikes told from point sources by the
 * PSF (rapid/spikes.h). */
#include <math.h>
#include <stdlib.h>

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

int rapid_spike_mask(float *data, float *also, int nx, int ny,
                     const rapid_spike_noise *noise, double ratio,
                     long *nmasked, rapid_err *err)
{
    static const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
    const float *bk = noise->bkg;
    double k_nb = RAPID_SPIKE_MARGIN * ratio;
    unsigned char *spike = NULL;
    size_t i, n = (size_t)nx * ny;
    long nm = 0;
    int x, y, k;

    if (nmasked)
        *nmasked = 0;
    if (!(ratio > 1) || !isfinite(ratio))
        return rapid_fail(err, RAPID_E_ARG, "spikes: a PSF peak-to-neighbour "
                          "ratio of %g", ratio);
    if (nx < 3 || ny < 3)
        return 0;
    if (!(spike = calloc(n, 1)))
        return rapid_fail(err, RAPID_E_NOMEM, "spikes: no memory for a %d x %d "
                          "mask", nx, ny);
    for (y = 1; y < ny - 1; y++)
        for (x = 1; x < nx - 1; x++) {
            double b, e, nb = 0, sd, var;
            i = (size_t)y * nx + x;
            b = bk ? bk[i] : noise->bkg0;
            e = data[i] - b;
            var = noise->var_read + fmax(b, 0) * noise->var_per_unit;
            /* e > NSIGMA sd in one comparison, without a square root and
             * without the coin-toss branch on e's sign: almost every pixel
             * (NaN too) ends here, predictably */
            if (!(e * fabs(e) > RAPID_SPIKE_NSIGMA * RAPID_SPIKE_NSIGMA * var))
                continue;
            sd = sqrt(var);
            for (k = 0; k < 4; k++) {
                size_t j = (size_t)(y + dy[k]) * nx + x + dx[k];
                double v = data[j] - (bk ? bk[j] : noise->bkg0);
                if (!isfinite(v))
                    break;
                nb = fmax(nb, v);
            }
            if (k == 4 && e - k_nb * nb > RAPID_SPIKE_NSIGMA * sd)
                spike[i] = 1;
        }
    for (i = 0; i < n; i++) /* after the search, so that a spike's
                             * neighbour is judged by the data */
        if (spike[i]) {
            data[i] = NAN;
            if (also)
                also[i] = NAN;
            nm++;
        }
    free(spike);
    if (nmasked)
        *nmasked = nm;
    return 0;
}
