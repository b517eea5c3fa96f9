/* zogy_inputs.c - the prepared pair as ZOGY takes it (rapid/diff.h):
 * the backgrounds removed, the reference scaled to the science image's
 * flux, variances from the uncertainty maps, the PSFs as the caller gives
 * them; the noises and their correlations left to rapid_zogy to
 * measure.  rapid_diff_zogy is these inputs given to rapid_zogy
 * (tests/test_zogy_inputs.c checks the two agree bit for bit). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/diff.h"

#define COVER_MIN 0.5      /* reference coverage below this: no data */

void rapid_zogy_inputs_release(rapid_zogy_inputs *zi)
{
    if (!zi)
        return;
    free(zi->n);
    free(zi->r);
    free(zi->vn);
    free(zi->vr);
    memset(zi, 0, sizeof *zi);
}

/* The registration error of the mean offset: the stars' rms over the
 * square root of their number (0 without stars). */
static double offset_error(int nstars, double rms)
{
    return nstars > 0 && isfinite(rms) ? rms / sqrt(nstars) : 0;
}

int rapid_diff_zogy_inputs(const rapid_science *sci, const rapid_diff_pair *p,
                           const float *sci_psf, int nsp,
                           const float *ref_psf, int nrp,
                           rapid_zogy_inputs *zi, rapid_err *err)
{
    size_t i, n;
    double s;

    memset(zi, 0, sizeof *zi);
    if (!sci || !p || !sci_psf || !ref_psf || nrp < 1 || nrp % 2 == 0 ||
        sci->rate.nx != p->nx || sci->rate.ny != p->ny ||
        !(p->match.scale > 0))
        return rapid_fail(err, RAPID_E_ARG, "ZOGY inputs: the science image, "
                          "the prepared pair, their PSFs or the flux scale do "
                          "not go together");
    n = (size_t)p->nx * p->ny;
    s = p->match.scale;
    zi->n = malloc(n * sizeof *zi->n);
    zi->r = malloc(n * sizeof *zi->r);
    zi->vn = malloc(n * sizeof *zi->vn);
    zi->vr = malloc(n * sizeof *zi->vr);
    if (!zi->n || !zi->r || !zi->vn || !zi->vr) {
        rapid_zogy_inputs_release(zi);
        return rapid_fail(err, RAPID_E_NOMEM, "ZOGY inputs: out of memory "
                          "for %d x %d images", p->nx, p->ny);
    }
    rapid_background_fill(&p->bkg_sci, zi->n);
    rapid_background_fill(&p->bkg_ref, zi->r);
    for (i = 0; i < n; i++) {
        float u = sci->unc.data[i], w = p->unc.data[i];
        zi->n[i] = sci->rate.data[i] - zi->n[i];
        zi->vn[i] = u * u;
        if (p->cov.data[i] >= COVER_MIN && isfinite(p->ref.data[i])) {
            zi->r[i] = (float)(s * (p->ref.data[i] - zi->r[i]));
            zi->vr[i] = (float)(s * s * w * w);
        } else {
            zi->r[i] = zi->vr[i] = NAN;
        }
    }
    zi->in.nx = p->nx;
    zi->in.ny = p->ny;
    zi->in.n = zi->n;
    zi->in.r = zi->r;
    zi->in.vn = zi->vn;
    zi->in.vr = zi->vr;
    zi->in.pn = sci_psf;
    zi->in.npn = nsp;
    zi->in.pr = ref_psf;
    zi->in.npr = nrp;
    zi->in.sigma_n = zi->in.sigma_r = 0;
    memset(zi->in.corr_n, 0, sizeof zi->in.corr_n);
    memset(zi->in.corr_r, 0, sizeof zi->in.corr_r);
    zi->in.estimate_corr = 1;
    zi->in.eps_d = zi->in.eps_s = -1; /* measured at the stars */
    zi->in.pos_d = zi->in.pos_s = 0;
    zi->in.star_x = zi->in.star_y = NULL;
    zi->in.nstars = 0;
    zi->in.sx = offset_error(p->match.nstars, p->match.dx_rms);
    zi->in.sy = offset_error(p->match.nstars, p->match.dy_rms);
    return 0;
}
