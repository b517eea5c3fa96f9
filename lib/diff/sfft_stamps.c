/* sfft_stamps.c - the kernel fit's stamps (rapid/diff.h): sources found
 * in both cross-convolved images, spread over the image; inside each
 * stamp the pixels that no missing data reaches, with their weights; and
 * a stamp's design matrix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sfft_internal.h"

#define GRID 8             /* cells per side for spreading the stamps */
#define ISO_SNR 5.0        /* neighbours this bright spoil isolation */
#define BLEND 0.25         /* a neighbour this bright relative to the
                            * source spoils its isolation */
#define COVER_FULL 0.99    /* reference coverage of a whole pixel */
#define KCORE 1            /* px: the kernel's core (near a delta function,
                            * shifted by a fraction of a pixel): a hole in
                            * R~ reaches the model this much further */

/* Monomials in the order 1, u, v, u^2, u v, v^2, u^3, u^2 v, ...: degree
 * by degree, falling powers of u within one. */
int sfft_mono_index(int a, int b)
{
    int d = a + b;

    return d * (d + 1) / 2 + b;
}

void sfft_mono_exps(int j, int *a, int *b)
{
    int d = 0;

    while ((d + 1) * (d + 2) / 2 <= j)
        d++;
    *b = j - d * (d + 1) / 2;
    *a = d - *b;
}

int sfft_monomials(int order, double u, double v, double *phi)
{
    int n = (order + 1) * (order + 2) / 2, j, a, b, k;

    for (j = 0; j < n; j++) {
        double t = 1;
        sfft_mono_exps(j, &a, &b);
        for (k = 0; k < a; k++)
            t *= u;
        for (k = 0; k < b; k++)
            t *= v;
        phi[j] = t;
    }
    return n;
}

void sfft_stamps_free(sfft_stamp *st, int nst)
{
    int i;

    if (!st)
        return;
    for (i = 0; i < nst; i++) {
        free(st[i].pix);
        free(st[i].w);
    }
    free(st);
}

typedef struct peak {
    int x, y;
    float snr;             /* in N~ */
    int cell;
} peak;

static float at(const sfft_plane *p, int x, int y)
{
    return p->v[(size_t)y * p->stride + (size_t)x];
}

/* Is (x, y) a local maximum of p (strictly above the neighbours before
 * it, at least the ones after: one pixel of a flat top wins)? */
static int is_max(const sfft_plane *p, int x, int y)
{
    float c = at(p, x, y);
    int i, j;

    for (j = -1; j <= 1; j++)
        for (i = -1; i <= 1; i++) {
            float o;
            if (!i && !j)
                continue;
            o = at(p, x + i, y + j);
            if (j < 0 || (j == 0 && i < 0) ? !(c > o) : !(c >= o))
                return 0;
        }
    return 1;
}

/* The maxima of N~ above ISO_SNR, row by row (so sorted by y); those
 * that may carry a stamp are marked by a positive cell. */
static int find_peaks(const sfft_images *im, const sfft_geom *g,
                      const rapid_sfft_opts *o, peak **out, int *np,
                      rapid_err *err)
{
    int margin = g->sh + g->hw + (im->reach_n > im->reach_r ? im->reach_n
                                                            : im->reach_r) + 2;
    size_t cap = 1024, n = 0;
    peak *pk = malloc(cap * sizeof *pk);
    int x, y;

    if (!pk)
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    for (y = 1; y < im->ny - 1; y++)
        for (x = 1; x < im->nx - 1; x++) {
            float t = at(&im->nt, x, y);
            float snr = (float)(t / im->sig_nt);
            int cell = -1;
            if (!(snr >= ISO_SNR) || !is_max(&im->nt, x, y))
                continue;
            if (snr >= o->min_snr && x >= margin && y >= margin &&
                x < im->nx - margin && y < im->ny - margin)
                cell = 0; /* a candidate, if the rest agrees */
            if (n == cap) {
                peak *q = realloc(pk, 2 * cap * sizeof *pk);
                if (!q) {
                    free(pk);
                    return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out "
                                      "of memory");
                }
                pk = q;
                cap *= 2;
            }
            pk[n].x = x;
            pk[n].y = y;
            pk[n].snr = snr;
            pk[n].cell = cell;
            n++;
        }
    *out = pk;
    *np = (int)n;
    return 0;
}

/* A candidate also in R~ (a maximum within 1 px, as bright), and with
 * data at its peak pixel in both images (a saturated core has none). */
static int in_both(const sfft_images *im, const rapid_sfft_opts *o, int x,
                   int y)
{
    int i, j, ok = 0;

    for (j = -1; j <= 1 && !ok; j++)
        for (i = -1; i <= 1 && !ok; i++)
            if (at(&im->rt, x + i, y + j) >= o->min_snr * im->sig_rt &&
                is_max(&im->rt, x + i, y + j))
                ok = 1;
    if (!ok)
        return 0;
    for (j = -1; j <= 1; j++)
        for (i = -1; i <= 1; i++) {
            size_t k = (size_t)(y + j) * im->nx + (size_t)(x + i);
            if (o->max_peak > 0 && im->n[k] >= o->max_peak)
                return 0;
        }
    return isfinite(im->n[(size_t)y * im->nx + x]) &&
           isfinite(im->r[(size_t)y * im->nx + x]);
}

/* No other maximum of pk within r of pk[i] brighter than BLEND times it
 * (pk sorted by y): no blend. */
static int isolated(const peak *pk, int np, int i, double r)
{
    float lim = (float)(BLEND * pk[i].snr);
    int k;

    for (k = i - 1; k >= 0 && pk[i].y - pk[k].y <= r; k--)
        if (pk[k].snr >= lim &&
            hypot(pk[k].x - pk[i].x, pk[k].y - pk[i].y) <= r)
            return 0;
    for (k = i + 1; k < np && pk[k].y - pk[i].y <= r; k++)
        if (pk[k].snr >= lim &&
            hypot(pk[k].x - pk[i].x, pk[k].y - pk[i].y) <= r)
            return 0;
    return 1;
}

static int by_cell_snr(const void *a, const void *b)
{
    const peak *p = a, *q = b;

    if (p->cell != q->cell)
        return (p->cell > q->cell) - (p->cell < q->cell);
    if (p->snr != q->snr)
        return (p->snr < q->snr) - (p->snr > q->snr);
    if (p->y != q->y)
        return (p->y > q->y) - (p->y < q->y);
    return (p->x > q->x) - (p->x < q->x);
}

/* Count of bad pixels in a box of an integral image (side l + 1). */
static int box_bad(const int *ii, int l, int x0, int y0, int x1, int y1)
{
    return ii[(size_t)(y1 + 1) * (l + 1) + x1 + 1] -
           ii[(size_t)y0 * (l + 1) + x1 + 1] -
           ii[(size_t)(y1 + 1) * (l + 1) + x0] + ii[(size_t)y0 * (l + 1) + x0];
}

/* Integral image of the no-data pixels of a or va in the square of
 * half-side h about (x, y) (all inside the image): l = 2 h + 1. */
static void integral_bad(const sfft_images *im, const float *a,
                         const float *va, const float *cov, int x, int y,
                         int h, int *ii)
{
    int l = 2 * h + 1, i, j;

    memset(ii, 0, (size_t)(l + 1) * sizeof *ii);
    for (j = 0; j < l; j++) {
        int row = 0;
        size_t k = (size_t)(y - h + j) * im->nx + (size_t)(x - h);
        ii[(size_t)(j + 1) * (l + 1)] = 0;
        for (i = 0; i < l; i++) {
            row += !isfinite(a[k + i]) || !isfinite(va[k + i]) ||
                   (cov && !(cov[k + i] >= COVER_FULL));
            ii[(size_t)(j + 1) * (l + 1) + i + 1] =
                ii[(size_t)j * (l + 1) + i + 1] + row;
        }
    }
}

/* sum_q p2(q) v(x - q) over the PSF squared's reach. */
static double conv_at(const sfft_images *im, const float *v, const float *p2,
                      int reach, int x, int y)
{
    int l = 2 * reach + 1, i, j;
    double s = 0;

    for (j = 0; j < l; j++) {
        const float *vr = v + (size_t)(y + reach - j) * im->nx + (x + reach);
        const float *pr = p2 + (size_t)j * l;
        for (i = 0; i < l; i++)
            s += (double)pr[i] * vr[-i];
    }
    return s;
}

/* R's mean variance over the box of half-side h about each pixel of
 * the square of half-side sh about (x, y): vb ((2 sh + 1)^2), through an
 * integral image ii ((2 (sh + h) + 2)^2) of the variances with data (the
 * others count as the mean). */
static void box_var(const sfft_images *im, int x, int y, int sh, int h,
                    double *ii, double *vb)
{
    int l = 2 * (sh + h) + 1, i, j, side = 2 * sh + 1, n = 0;
    double tot = 0, mean;

    for (j = 0; j < l; j++)
        for (i = 0; i < l; i++) {
            float v = im->vr[(size_t)(y - sh - h + j) * im->nx +
                             (size_t)(x - sh - h + i)];
            if (isfinite(v))
                tot += v, n++;
        }
    mean = n ? tot / n : 0;
    memset(ii, 0, (size_t)(l + 1) * sizeof *ii);
    for (j = 0; j < l; j++) {
        double row = 0;
        const float *vr = im->vr + (size_t)(y - sh - h + j) * im->nx +
                          (size_t)(x - sh - h);
        ii[(size_t)(j + 1) * (l + 1)] = 0;
        for (i = 0; i < l; i++) {
            row += isfinite(vr[i]) ? vr[i] : mean;
            ii[(size_t)(j + 1) * (l + 1) + i + 1] =
                ii[(size_t)j * (l + 1) + i + 1] + row;
        }
    }
    for (j = 0; j < side; j++)
        for (i = 0; i < side; i++) {
            int x1 = i + 2 * h, y1 = j + 2 * h;
            vb[j * side + i] =
                (ii[(size_t)(y1 + 1) * (l + 1) + x1 + 1] -
                 ii[(size_t)j * (l + 1) + x1 + 1] -
                 ii[(size_t)(y1 + 1) * (l + 1) + i] +
                 ii[(size_t)j * (l + 1) + i]) /
                ((2.0 * h + 1) * (2.0 * h + 1));
        }
}

/* The fitted pixels of a stamp and their weights; 0 if too few. */
static int stamp_pixels(const sfft_images *im, const sfft_geom *g,
                        sfft_stamp *s, int *iin, int *iir, double *iv,
                        double *vb)
{
    int side = 2 * g->sh + 1, dn = im->mask_r, dr = im->mask_n + KCORE;
    int hn = g->sh + dn, hr = g->sh + dr, i, j, m = 0;

    integral_bad(im, im->n, im->vn, NULL, s->x, s->y, hn, iin);
    integral_bad(im, im->r, im->vr, im->cov, s->x, s->y, hr, iir);
    box_var(im, s->x, s->y, g->sh, g->hw, iv, vb);
    s->vw = 0;
    s->pix = malloc((size_t)side * side * sizeof *s->pix);
    s->w = malloc((size_t)side * side * sizeof *s->w);
    if (!s->pix || !s->w)
        return -1;
    for (j = 0; j < side; j++)
        for (i = 0; i < side; i++) {
            int xn = i + dn, yn = j + dn, xr = i + dr, yr = j + dr;
            int x = s->x - g->sh + i, y = s->y - g->sh + j;
            double var;
            if (box_bad(iin, 2 * hn + 1, xn - dn, yn - dn, xn + dn, yn + dn) ||
                box_bad(iir, 2 * hr + 1, xr - dr, yr - dr, xr + dr, yr + dr))
                continue;
            var = conv_at(im, im->vn, im->pr2, im->reach_r, x, y) +
                  im->s0 * im->s0 *
                      conv_at(im, im->vr, im->pn2, im->reach_n, x, y);
            if (!(var > 0) || !isfinite(var))
                continue;
            s->pix[m] = j * side + i;
            s->w[m] = 1 / sqrt(var);
            s->vw += vb[j * side + i] / var;
            m++;
        }
    s->m = m;
    return m * 4 >= side * side; /* at least a quarter of the stamp */
}

/* Stamps taken in turn from the cells (brightest first), never closer
 * than a stamp's half-size to one already taken. */
static int choose(const sfft_images *im, const sfft_geom *g,
                  const rapid_sfft_opts *o, peak *c, int nc, sfft_stamp *st,
                  int *nst, rapid_err *err)
{
    int start[GRID * GRID + 1] = {0}, next[GRID * GRID], k, i, n = 0, more = 1;
    int hn = g->sh + im->mask_r, hr = g->sh + im->mask_n + KCORE;
    int *iin = malloc((size_t)(2 * hn + 2) * (2 * hn + 2) * sizeof *iin);
    int *iir = malloc((size_t)(2 * hr + 2) * (2 * hr + 2) * sizeof *iir);
    int hv = g->sh + g->hw, side = 2 * g->sh + 1;
    double *iv = malloc((size_t)(2 * hv + 2) * (2 * hv + 2) * sizeof *iv);
    double *vb = malloc((size_t)side * side * sizeof *vb);

    if (!iin || !iir || !iv || !vb) {
        free(iin);
        free(iir);
        free(iv);
        free(vb);
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    }
    qsort(c, (size_t)nc, sizeof *c, by_cell_snr);
    for (i = 0; i < nc; i++)
        start[c[i].cell + 1]++;
    for (k = 0; k < GRID * GRID; k++) {
        start[k + 1] += start[k];
        next[k] = start[k];
    }
    while (more && n < o->max_stamps) {
        more = 0;
        for (k = 0; k < GRID * GRID && n < o->max_stamps; k++) {
            while (next[k] < start[k + 1]) {
                peak *p = &c[next[k]++];
                int t, clash = 0;
                for (t = 0; t < n && !clash; t++)
                    clash = abs(st[t].x - p->x) <= g->sh &&
                            abs(st[t].y - p->y) <= g->sh;
                if (clash)
                    continue;
                memset(&st[n], 0, sizeof st[n]);
                st[n].x = p->x;
                st[n].y = p->y;
                st[n].u = (p->x - g->xc) / g->hx;
                st[n].v = (p->y - g->yc) / g->hy;
                st[n].used = 1;
                t = stamp_pixels(im, g, &st[n], iin, iir, iv, vb);
                if (t < 0) {
                    *nst = n + 1;
                    free(iin);
                    free(iir);
                    free(iv);
                    free(vb);
                    return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out "
                                      "of memory");
                }
                if (t == 0) {
                    free(st[n].pix);
                    free(st[n].w);
                    continue;
                }
                n++;
                more = 1;
                break;
            }
        }
    }
    free(iin);
    free(iir);
    free(iv);
    free(vb);
    *nst = n;
    return 0;
}

int sfft_stamps_find(const sfft_images *im, const sfft_geom *g,
                     const rapid_sfft_opts *o, sfft_stamp **out, int *nout,
                     rapid_err *err)
{
    peak *pk = NULL, *cand = NULL;
    sfft_stamp *st = NULL;
    int np = 0, nc = 0, i, rc, nst = 0;

    *out = NULL;
    *nout = 0;
    if ((rc = find_peaks(im, g, o, &pk, &np, err)))
        return rc;
    cand = malloc((size_t)(np ? np : 1) * sizeof *cand);
    if (!cand) {
        free(pk);
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    }
    for (i = 0; i < np; i++) {
        peak p = pk[i];
        int cx, cy;
        if (p.cell < 0 || !isolated(pk, np, i, o->isolation) ||
            !in_both(im, o, p.x, p.y))
            continue;
        cx = p.x * GRID / im->nx;
        cy = p.y * GRID / im->ny;
        p.cell = cy * GRID + cx;
        cand[nc++] = p;
    }
    free(pk);
    st = calloc((size_t)(o->max_stamps < nc ? o->max_stamps : nc) + 1,
                sizeof *st);
    if (!st) {
        free(cand);
        return rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory");
    }
    rc = choose(im, g, o, cand, nc, st, &nst, err);
    free(cand);
    if (rc) {
        sfft_stamps_free(st, nst);
        return rc;
    }
    *out = st;
    *nout = nst;
    return 0;
}

void sfft_stamp_design(const sfft_images *im, const sfft_geom *g,
                       const sfft_stamp *s, double *x, double *y)
{
    int side = 2 * g->sh + 1, kside = 2 * g->hw + 1, r, kx, ky;

    for (r = 0; r < s->m; r++) {
        int px = s->x - g->sh + s->pix[r] % side;
        int py = s->y - g->sh + s->pix[r] / side;
        double w = s->w[r];
        double *row = x + (size_t)r * g->nb;
        for (ky = -g->hw; ky <= g->hw; ky++) {
            const float *src = im->rt.v + (size_t)(py - ky) * im->rt.stride +
                               (size_t)px;
            double *dst = row + (size_t)(ky + g->hw) * kside + g->hw;
            for (kx = -g->hw; kx <= g->hw; kx++)
                dst[kx] = w * src[-kx];
        }
        {
            double phi[SFFT_MAXTERMS];
            int j;
            sfft_monomials(g->bg_order, (px - g->xc) / g->hx,
                           (py - g->yc) / g->hy, phi);
            for (j = 0; j < g->nbg; j++)
                row[g->nk + j] = w * phi[j];
        }
        y[r] = w * at(&im->nt, px, py);
    }
}
