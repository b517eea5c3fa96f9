/* sfft_fit.c - the kernel fit's least squares (rapid/diff.h).
 *
 * With the kernel's polynomial terms taken at a stamp's centre, the
 * normal matrix of the whole fit is a sum over stamps of the stamp's Gram
 * matrix G_s (its nb design columns: the kernel's shifts of R~, then the
 * background's monomials at each pixel) times the stamp's terms: the
 * block of kernel terms (j, j') is sum_s phi_j(s) phi_j'(s) G_s, the block
 * (kernel j, background j') sum_s phi_j(s) G_s, the background's
 * sum_s G_s.  Each product is a monomial of degree up to twice the order,
 * so the fit needs only the moments M_m = sum_s mono_m(s) G_s (15 of them
 * for a quadratic kernel): every stamp's G_s by one dsyrk, the moments
 * accumulated by dgemm over blocks of stamps, the normal matrix laid out
 * from them.  Dropping a stamp subtracts its G_s (made again) from the
 * moments.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "sfft_internal.h"

#define CHUNK 32           /* stamps per moment update */

typedef struct fitws {
    int nmono;             /* monomials up to degree 2 max(order, bg_order) */
    size_t nb2;            /* nb * nb */
    double *mom;           /* nmono x nb2: the moments (upper triangles) */
    double *rhs;           /* nunk: sum_s phi_j(s) X_s^T y_s */
    double *chunk;         /* CHUNK x nb2 Gram matrices */
    double *wt;            /* CHUNK x nmono: their monomials (signed) */
    int nchunk;
    double *x, *y, *h;     /* one stamp's design, data, X^T y */
    double *a, *d, *sol;   /* normal matrix, scaling, solution */
} fitws;

static void ws_free(fitws *w)
{
    free(w->mom);
    free(w->rhs);
    free(w->chunk);
    free(w->wt);
    free(w->x);
    free(w->y);
    free(w->h);
    free(w->a);
    free(w->d);
    free(w->sol);
}

static int ws_alloc(const sfft_geom *g, fitws *w)
{
    int side = 2 * g->sh + 1;
    int dmax = 2 * (g->order > g->bg_order ? g->order : g->bg_order);

    memset(w, 0, sizeof *w);
    w->nmono = (dmax + 1) * (dmax + 2) / 2;
    w->nb2 = (size_t)g->nb * g->nb;
    w->mom = calloc((size_t)w->nmono * w->nb2, sizeof *w->mom);
    w->rhs = calloc((size_t)g->nunk, sizeof *w->rhs);
    /* zeroed once: dsyrk writes only the upper triangles */
    w->chunk = calloc((size_t)CHUNK * w->nb2, sizeof *w->chunk);
    w->wt = calloc((size_t)CHUNK * w->nmono, sizeof *w->wt);
    w->x = malloc((size_t)side * side * g->nb * sizeof *w->x);
    w->y = malloc((size_t)side * side * sizeof *w->y);
    w->h = malloc((size_t)g->nb * sizeof *w->h);
    w->a = malloc((size_t)g->nunk * g->nunk * sizeof *w->a);
    w->d = malloc((size_t)g->nunk * sizeof *w->d);
    w->sol = malloc((size_t)g->nunk * sizeof *w->sol);
    return w->mom && w->rhs && w->chunk && w->wt && w->x && w->y && w->h &&
           w->a && w->d && w->sol;
}

/* The moments += the chunk's Gram matrices times their monomials. */
static void flush(fitws *w)
{
    if (!w->nchunk)
        return;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w->nmono,
                (int)w->nb2, w->nchunk, 1.0, w->wt, w->nmono, w->chunk,
                (int)w->nb2, 1.0, w->mom, (int)w->nb2);
    w->nchunk = 0;
}

/* A stamp's contribution added (sign 1) or taken away (-1). */
static void add_stamp(const sfft_images *im, const sfft_geom *g,
                      const sfft_stamp *s, double sign, fitws *w)
{
    double mono[SFFT_MAXMONO], phi[SFFT_MAXTERMS];
    double *gram = w->chunk + (size_t)w->nchunk * w->nb2;
    int j, k, dmax = 2 * (g->order > g->bg_order ? g->order : g->bg_order);

    sfft_stamp_design(im, g, s, w->x, w->y);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, g->nb, s->m, 1.0, w->x,
                g->nb, 0.0, gram, g->nb);
    cblas_dgemv(CblasRowMajor, CblasTrans, s->m, g->nb, 1.0, w->x, g->nb,
                w->y, 1, 0.0, w->h, 1);
    sfft_monomials(dmax, s->u, s->v, mono);
    for (j = 0; j < w->nmono; j++)
        w->wt[(size_t)w->nchunk * w->nmono + j] = sign * mono[j];
    sfft_monomials(g->order, s->u, s->v, phi);
    for (j = 0; j < g->nterms; j++)
        for (k = 0; k < g->nk; k++)
            w->rhs[(size_t)j * g->nk + k] += sign * phi[j] * w->h[k];
    for (j = 0; j < g->nbg; j++)
        w->rhs[(size_t)g->nterms * g->nk + j] += sign * w->h[g->nk + j];
    if (++w->nchunk == CHUNK)
        flush(w);
}

/* Moment m's (r, c), from its upper triangle. */
static double mom_at(const fitws *w, const sfft_geom *g, int m, int r, int c)
{
    const double *mm = w->mom + (size_t)m * w->nb2;

    return r <= c ? mm[(size_t)r * g->nb + c] : mm[(size_t)c * g->nb + r];
}

/* The normal matrix's upper triangle from the moments. */
static void assemble(const sfft_geom *g, const fitws *w)
{
    int n = g->nunk, j, jj, k, kk, a1, b1, a2, b2;
    size_t off = (size_t)g->nterms * g->nk;

    for (j = 0; j < g->nterms; j++) {
        sfft_mono_exps(j, &a1, &b1);
        for (jj = j; jj < g->nterms; jj++) {
            int m;
            sfft_mono_exps(jj, &a2, &b2);
            m = sfft_mono_index(a1 + a2, b1 + b2);
            for (k = 0; k < g->nk; k++) {
                double *row = w->a + ((size_t)j * g->nk + k) * n +
                              (size_t)jj * g->nk;
                for (kk = jj == j ? k : 0; kk < g->nk; kk++)
                    row[kk] = mom_at(w, g, m, k, kk);
            }
        }
        for (jj = 0; jj < g->nbg; jj++)
            for (k = 0; k < g->nk; k++)
                w->a[((size_t)j * g->nk + k) * n + off + jj] =
                    mom_at(w, g, j, k, g->nk + jj);
    }
    for (j = 0; j < g->nbg; j++)
        for (jj = j; jj < g->nbg; jj++)
            w->a[(off + j) * n + off + jj] =
                mom_at(w, g, 0, g->nk + j, g->nk + jj);
}

/* Solve the normal equations, scaled to unit diagonal; the condition
 * number of the scaled matrix into *cond. */
static int solve(const sfft_geom *g, fitws *w, double max_cond, double *cond,
                 rapid_err *err)
{
    int n = g->nunk, i, j;
    lapack_int info;
    double anorm, rcond = 0;

    assemble(g, w);
    for (i = 0; i < n; i++) {
        double aii = w->a[(size_t)i * n + i];
        if (!(aii > 0) || !isfinite(aii))
            return rapid_fail(err, RAPID_E_RANGE, "kernel fit: singular: "
                              "unknown %d of %d (%s term %d) has no weight in "
                              "the stamps", i, n, i < g->nterms * g->nk ?
                              "kernel" : "background", i < g->nterms * g->nk ?
                              i / g->nk : i - g->nterms * g->nk);
        w->d[i] = 1 / sqrt(aii);
    }
    for (i = 0; i < n; i++) {
        double *row = w->a + (size_t)i * n;
        for (j = i; j < n; j++)
            row[j] *= w->d[i] * w->d[j];
        w->sol[i] = w->rhs[i] * w->d[i];
    }
    anorm = LAPACKE_dlansy(LAPACK_ROW_MAJOR, '1', 'U', n, w->a, n);
    info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', n, w->a, n);
    if (info > 0)
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: singular: the "
                          "normal matrix (%d unknowns) is not positive "
                          "definite (pivot %d)", n, (int)info);
    if (info < 0 ||
        LAPACKE_dpocon(LAPACK_ROW_MAJOR, 'U', n, w->a, n, anorm, &rcond) != 0)
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: LAPACK failed on "
                          "the normal matrix (%d unknowns)", n);
    *cond = rcond > 0 ? 1 / rcond : INFINITY;
    if (!(*cond <= max_cond))
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: ill-conditioned: "
                          "condition number %.3g above the limit %.3g (%d "
                          "unknowns)", *cond, max_cond, n);
    if (LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'U', n, 1, w->a, n, w->sol, 1) != 0)
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: LAPACK failed "
                          "solving the normal equations");
    for (i = 0; i < n; i++) {
        w->sol[i] *= w->d[i];
        if (!isfinite(w->sol[i]))
            return rapid_fail(err, RAPID_E_RANGE, "kernel fit: the solution "
                              "is not finite (unknown %d of %d)", i, n);
    }
    return 0;
}

/* chi^2 of a stamp under the solution. */
static double stamp_chi2(const sfft_images *im, const sfft_geom *g,
                         const sfft_stamp *s, const double *sol, fitws *w)
{
    double phi[SFFT_MAXTERMS], *theta = w->h, c = 0;
    int j, k, r;

    sfft_monomials(g->order, s->u, s->v, phi);
    for (k = 0; k < g->nk; k++) {
        double t = 0;
        for (j = 0; j < g->nterms; j++)
            t += phi[j] * sol[(size_t)j * g->nk + k];
        theta[k] = t;
    }
    for (j = 0; j < g->nbg; j++)
        theta[g->nk + j] = sol[(size_t)g->nterms * g->nk + j];
    sfft_stamp_design(im, g, s, w->x, w->y);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, s->m, g->nb, -1.0, w->x, g->nb,
                theta, 1, 1.0, w->y, 1);
    for (r = 0; r < s->m; r++)
        c += w->y[r] * w->y[r];
    return c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Stamps whose chi^2 per pixel is above the median by more than k times
 * the robust scatter are marked for dropping (used = -1), the worst
 * first and at most `most` of them; their number. */
static int outliers(sfft_stamp *st, int nst, double k, int most,
                    double *work)
{
    int i, n = 0, bad = 0;
    double med, sig, cut;

    for (i = 0; i < nst; i++)
        if (st[i].used > 0)
            work[n++] = st[i].chi2 / st[i].m;
    if (n < 3)
        return 0;
    qsort(work, (size_t)n, sizeof *work, cmp_double);
    med = work[n / 2];
    for (i = 0; i < n; i++)
        work[i] = fabs(work[i] - med);
    qsort(work, (size_t)n, sizeof *work, cmp_double);
    sig = 1.4826 * work[n / 2];
    cut = med + k * sig;
    for (n = 0, i = 0; i < nst; i++)
        if (st[i].used > 0 && st[i].chi2 / st[i].m > cut)
            work[n++] = st[i].chi2 / st[i].m;
    if (n > most) { /* only the worst `most` */
        qsort(work, (size_t)n, sizeof *work, cmp_double);
        cut = work[n - most];
        cut = nextafter(cut, 0);
    }
    for (i = 0; i < nst && most > 0; i++)
        if (st[i].used > 0 && st[i].chi2 / st[i].m > cut && bad < most) {
            st[i].used = -1;
            bad++;
        }
    return bad;
}

/* The stamps the fit needs: 5 per spatial term. */
static int need_stamps(const sfft_geom *g)
{
    return 5 * (g->nterms > g->nbg ? g->nterms : g->nbg);
}

/* Enough stamps and pixels for the unknowns? */
static int enough(const sfft_geom *g, int nstamps, long npix)
{
    return nstamps >= need_stamps(g) && npix >= 2L * g->nunk;
}

int sfft_fit(const sfft_images *im, const sfft_geom *g,
             const rapid_sfft_opts *o, sfft_stamp *st, int nst, double *coef,
             rapid_sfft_out *out, rapid_err *err)
{
    fitws w;
    double *work = NULL, chi2 = 0;
    long npix = 0;
    int i, it, used = 0, rc = 0;

    if (!ws_alloc(g, &w) ||
        !(work = malloc((size_t)(nst ? nst : 1) * sizeof *work))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "kernel fit: out of memory for "
                        "%d unknowns", g->nunk);
        goto done;
    }
    for (i = 0; i < nst; i++) {
        used += st[i].used > 0;
        npix += st[i].used > 0 ? st[i].m : 0;
    }
    out->ncandidates = nst;
    if (!enough(g, used, npix)) {
        rc = rapid_fail(err, RAPID_E_TOOFEW, "kernel fit: too few stamps: %d "
                        "stamps (%ld pixels) where %d unknowns need at least "
                        "%d stamps and %d pixels (sources at S/N >= %g in "
                        "both images, isolated, unsaturated)", used, npix,
                        g->nunk, need_stamps(g),
                        2 * g->nunk, o->min_snr);
        goto done;
    }
    for (i = 0; i < nst; i++)
        if (st[i].used > 0)
            add_stamp(im, g, &st[i], 1.0, &w);
    flush(&w);
    for (it = 0;; it++) {
        int bad, kept;
        long kpix = 0;
        if ((rc = solve(g, &w, o->max_cond, &out->cond, err)))
            goto done;
        for (i = 0; i < nst; i++)
            if (st[i].used > 0)
                st[i].chi2 = stamp_chi2(im, g, &st[i], w.sol, &w);
        if (it >= o->max_iter)
            break;
        for (i = 0, kept = 0; i < nst; i++)
            if (st[i].used > 0)
                kept++;
        /* never below the stamps the fit needs */
        bad = outliers(st, nst, o->clip_sigma, kept - need_stamps(g), work);
        for (i = 0, kept = 0; i < nst; i++)
            if (st[i].used > 0)
                kept++, kpix += st[i].m;
        if (!bad || !enough(g, kept, kpix)) {
            for (i = 0; i < nst; i++)
                if (st[i].used < 0)
                    st[i].used = 1;
            break;
        }
        for (i = 0; i < nst; i++)
            if (st[i].used < 0) {
                add_stamp(im, g, &st[i], -1.0, &w);
                st[i].used = 0;
                out->nrejected++;
            }
        flush(&w);
    }
    memcpy(coef, w.sol, (size_t)g->nunk * sizeof *coef);
    for (i = 0, used = 0, npix = 0; i < nst; i++)
        if (st[i].used > 0) {
            used++;
            npix += st[i].m;
            chi2 += st[i].chi2;
        }
    out->nstamps = used;
    out->npix = npix;
    out->nunknowns = g->nunk;
    out->chi2r = chi2 / (double)(npix - g->nunk);
done:
    ws_free(&w);
    free(work);
    return rc;
}
