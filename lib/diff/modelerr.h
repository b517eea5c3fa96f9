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
 * residuals are already within that.  The light is that of point sources
 * (modelerr_point_light takes extended sources' out): the phase-dependent
 * profile errors average out over a source many pixels wide. */
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
 * differences), a share of the light and a position scatter (px).  eps
 * from the stars' centre pixels (where a residual is read and a
 * detection sits: a share of the light is not the shape of a profile's
 * error, relatively larger at the centre than on the nearer flanks, and
 * eps from the flatter half of the 3 x 3 pixels left the centres' z
 * with a robust sigma of 0.78-1.30 on the simulated pairs), pos from
 * their 8 neighbours (the flanks), each the value for which d^2 / (v +
 * V_model) has the median of a chi^2 with one degree of freedom
 * (0.45494) with the other held, alternately until both settle; 0 when
 * the noise alone explains its pixels' residuals (their median within
 * three times its standard error, 1.06 / sqrt(pixels), of 0.45494 with
 * neither term).  With fewer
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

/* The light of point sources only: each pixel with light (l > 0) belongs
 * to the peak it climbs to (uphill to its brightest neighbour, 8
 * connected), and a peak whose width (the curvature of ln l across it,
 * x and y averaged: a Gaussian's sigma^2 at any sub-pixel phase; 0 where
 * a neighbour holds no light) exceeds MODELERR_EXTENDED times the median
 * width of the bright peaks (l >= MODELERR_SNR sqrt(v), no larger value
 * within MODELERR_SEP px: nearly all stars) is an extended source's, and
 * its basin's light is set to 0 in l and, when given, l2 (the same
 * sources' light in another output), and its pixels to 1 in ext when
 * given (the others left as they are).  *width2: that median (0 with
 * fewer than MODELERR_MIN bright peaks: nothing is cleared);
 * *nextended: the peaks cleared.  scratch: nx * ny 32-bit words.
 * Returns 0 or RAPID_E_NOMEM. */
#define MODELERR_EXTENDED 6.0
int modelerr_point_light(int nx, int ny, float *l, float *l2,
                         const float *v, void *scratch, unsigned char *ext,
                         double *width2, long *nextended);

/* var += eps^2 l^2 + pos^2 |grad l|^2 where l is finite. */
void modelerr_apply(int nx, int ny, const float *l, double eps, double pos,
                    float *var);

#endif
