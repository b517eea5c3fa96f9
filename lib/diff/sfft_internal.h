/* sfft_internal.h - what the kernel fit's stages share (rapid/diff.h):
 * sfft.c (transforms, outputs), sfft_stamps.c (sources, stamps, their
 * design matrices) and sfft_fit.c (normal equations, solution,
 * rejection). */
#ifndef RAPID_SFFT_INTERNAL_H
#define RAPID_SFFT_INTERNAL_H

#include <stddef.h>

#include "rapid/diff.h"

#define SFFT_MAXTERMS 6    /* monomials up to degree 2 */
#define SFFT_MAXMONO 15    /* monomials up to degree 4: products of two */

/* A real image on a padded plane: value (x, y) at v[y * stride + x]. */
typedef struct sfft_plane {
    const float *v;
    size_t stride;
} sfft_plane;

/* The images a stamp is cut from. */
typedef struct sfft_images {
    int nx, ny;
    sfft_plane nt, rt;        /* N~ and R~ */
    const float *n, *r;       /* N and R (NaN: no data) */
    const float *vn, *vr;     /* their variances */
    const float *cov;         /* R's coverage, or NULL */
    const float *pn2, *pr2;   /* the PSFs squared, cut to their reach:
                               * (2 reach + 1)^2 each */
    int reach_n, reach_r;     /* px: the squares' reach (1 % of the peak) */
    int mask_n, mask_r;       /* px: a hole's reach (10 % of the peak) */
    double s0;                /* first flux scale (for the weights) */
    const double *tmpl;       /* a point source of unit flux in R~ at the
                               * origin, read by the kernel at the origin:
                               * (2 hw + 1)^2, tmpl[k] = R~(-k) */
    const double *racf;       /* the covariance of R~'s noise between two
                               * pixels d apart, per unit variance of R's:
                               * (4 hw + 1)^2, d = 0 in the middle (the
                               * errors-in-variables term, sfft_fit.c) */
    double sig_nt, sig_rt;    /* background noise of N~ and R~ */
} sfft_images;

typedef struct sfft_stamp {
    int x, y;                 /* centre */
    double u, v;              /* normalised coordinates of the centre */
    int m;                    /* pixels fitted */
    int *pix;                 /* their offsets in the (2 s + 1)^2 box */
    double *w;                /* their weights, 1 / sigma */
    double vw;                /* sum over its pixels of weight^2 times
                               * R's variance about them: R~'s noise in
                               * the Gram matrix is vw times racf */
    double chi2;              /* of the last solution */
    int used;                 /* 1 in the fit, 0 rejected */
} sfft_stamp;

/* The geometry of the fit. */
typedef struct sfft_geom {
    int hw, nk;               /* kernel half-width, (2 hw + 1)^2 */
    int nb;                   /* nk + nbg: a stamp's design columns */
    int sh;                   /* stamp half-size */
    int order, bg_order;
    int nterms, nbg;          /* monomials of each */
    int nunk;                 /* nk nterms + nbg */
    double xc, yc, hx, hy;    /* u = (x - xc) / hx */
} sfft_geom;

/* The monomials u^a v^b up to degree `order` (1, u, v, u^2, u v, v^2,
 * then degree 3 and 4 for the products) at (u, v) into phi; their count. */
int sfft_monomials(int order, double u, double v, double *phi);
/* The index of u^a v^b among the monomials in that order. */
int sfft_mono_index(int a, int b);
/* The exponents of monomial j. */
void sfft_mono_exps(int j, int *a, int *b);

/* Sources for stamps, chosen and measured as rapid/diff.h says: *st
 * (allocated, *nst entries), each with its fitted pixels and weights. */
int sfft_stamps_find(const sfft_images *im, const sfft_geom *g,
                     const rapid_sfft_opts *o, sfft_stamp **st, int *nst,
                     rapid_err *err);
void sfft_stamps_free(sfft_stamp *st, int nst);

/* A stamp's weighted design matrix (m x nb, row-major: R~(p - k) for
 * every kernel offset k, then the background's monomials at p) and
 * weighted data (m) into x, y. */
void sfft_stamp_design(const sfft_images *im, const sfft_geom *g,
                       const sfft_stamp *s, double *x, double *y);

#define SFFT_EGRID 8      /* the kernel's own error: positions per side */

/* The fit: kernel terms (nterms x nk) and background terms into coef
 * (nunk: term j's kernel at j nk, then the background's), with the
 * statistics into out (nstamps, nrejected, npix, chi2r, cond); and the
 * kernel's own error (from the fit's covariance, times the reduced chi^2
 * when above 1) relative to the model's value at the peak of a point
 * source (im->tmpl), squared, at the centres of SFFT_EGRID^2 cells of the
 * image into gam2 (row-major, y slowest). */
int sfft_fit(const sfft_images *im, const sfft_geom *g,
             const rapid_sfft_opts *o, sfft_stamp *st, int nst,
             double *coef, double *gam2, rapid_sfft_out *out,
             rapid_err *err);

#endif
