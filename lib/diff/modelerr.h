/* modelerr.h - the PSF-model (undersampling) error of a difference image,
 * shared by ZOGY (zogy.c) and the kernel fit (sfft.c); rapid/diff.h states
 * the model and the estimator.
 *
 * A static source's residual in a difference is taken as a multiple of
 * the reference's light as it enters that difference, L (ZOGY's D_R, S_R;
 * the kernel fit's decorrelated model): V_model = eps^2 L^2.  eps is
 * measured at the centres of static stars: the eps >= 0 for which the
 * residuals d_i / sqrt(v_i + eps^2 L_i^2) have the median square of a
 * unit normal (0.45494), v_i the pure-noise variance there; 0 when the
 * residuals are already within that. */
#ifndef RAPID_DIFF_MODELERR_H
#define RAPID_DIFF_MODELERR_H

#include <stddef.h>

#define MODELERR_SNR 20.0   /* a star's peak L / sqrt(v) at least: the term
                             * then matters against the noise for any
                             * eps above 0.05 */
#define MODELERR_MIN 10     /* stars needed to measure eps */
#define MODELERR_CLEAR 3    /* px: no missing data this close to a star */
#define MODELERR_SEP 3      /* px: a star's L is the largest this close */

/* The stars' centre pixels (indices y nx + x) into *idx (allocated; NULL
 * with none): with sx, sy (ns positions, 0-based px), the pixel nearest
 * each; otherwise the local maxima of L (no larger value within
 * MODELERR_SEP px) with L >= MODELERR_SNR sqrt(v).  Either way a star is
 * kept only MODELERR_CLEAR px or more from the edges and with ok[] set
 * (the pixels with data) on every pixel within MODELERR_CLEAR px, and
 * with finite L, v > 0 at its centre.  Returns 0 or RAPID_E_NOMEM. */
int modelerr_stars(int nx, int ny, const float *l, const float *v,
                   const unsigned char *ok, const double *sx,
                   const double *sy, int ns, size_t **idx, int *n);

/* The model error at the stars' centre pixels idx (n of them; each
 * with its 3 x 3 neighbours, a star used only when all nine have finite
 * d, l and v > 0): the residuals d, their pure-noise variances v, the
 * light l.  The model: V_model = eps^2 l^2 + pos^2 |grad l|^2 (central
 * differences), a share of the light and a position scatter (px).  The
 * pixels are split at the median of |grad l|^2 / l^2: eps from the flat
 * half (the centres), pos from the steep half (the flanks), each the
 * value for which d^2 / (v + V_model) has the median of a chi^2 with one
 * degree of freedom (0.45494) with the other held, alternately until
 * both settle; 0 when the noise alone explains the residuals (their
 * median within three times its standard error, 1.06 / sqrt(pixels), of
 * 0.45494 with the parameter at 0).  With fewer
 * than MODELERR_MIN stars, eps = pos = 0 and *nused = 0.  Returns 0 or
 * RAPID_E_NOMEM. */
int modelerr_fit(int nx, int ny, const float *d, const float *v,
                 const float *l, const size_t *idx, int n, double *eps,
                 double *pos, int *nused);

/* The light's noise taken out: l shrunk towards 0 by MODELERR_SHRINK
 * times its robust sigma (1.4826 MAD over an even sample of the image,
 * *sigma; sources
 * are few), so that the term vanishes on empty sky (where l is its
 * noise) and keeps a star's light but for that offset.  Returns 0 or
 * RAPID_E_NOMEM. */
#define MODELERR_SHRINK 3.0
#define MODELERR_SAMPLE 200000 /* pixels the robust sigma is taken from
                                * (an even sample: 0.3 % its precision) */
int modelerr_denoise(float *l, size_t n, double *sigma);

/* var += eps^2 l^2 + pos^2 |grad l|^2 where l is finite. */
void modelerr_apply(int nx, int ny, const float *l, double eps, double pos,
                    float *var);

#endif
