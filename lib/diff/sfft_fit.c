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
    double vmom[SFFT_MAXMONO]; /* sum_s mono_m(s) vw_s */
    double *s0, *t;        /* nunk each: errors-in-variables scratch */
    double *lw;            /* 3 nunk: LAPACK's workspace (norm, condition) */
    lapack_int *liw;       /* nunk: the condition estimate's */
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
    free(w->s0);
    free(w->t);
    free(w->lw);
    free(w->liw);
}

/* n doubles (or other words) on a 64-byte boundary, zeroed if asked.
 * OpenBLAS's kernels sum in an order that depends on their operands'
 * alignment, and malloc's varies with the heap (another thread's arena
 * in the job's lanes): the last bits of the condition number did. */
static void *amalloc(size_t n, size_t size, int zero)
{
    void *p = NULL;

    if (posix_memalign(&p, 64, n * size > 0 ? n * size : 1) != 0)
        return NULL;
    if (zero)
        memset(p, 0, n * size);
    return p;
}

static int ws_alloc(const sfft_geom *g, fitws *w)
{
    int side = 2 * g->sh + 1;
    int dmax = 2 * (g->order > g->bg_order ? g->order : g->bg_order);
    size_t n = (size_t)g->nunk;

    memset(w, 0, sizeof *w);
    w->nmono = (dmax + 1) * (dmax + 2) / 2;
    w->nb2 = (size_t)g->nb * g->nb;
    w->mom = amalloc((size_t)w->nmono * w->nb2, sizeof *w->mom, 1);
    w->rhs = amalloc(n, sizeof *w->rhs, 1);
    /* zeroed once: dsyrk writes only the upper triangles */
    w->chunk = amalloc((size_t)CHUNK * w->nb2, sizeof *w->chunk, 1);
    w->wt = amalloc((size_t)CHUNK * w->nmono, sizeof *w->wt, 1);
    w->x = amalloc((size_t)side * side * g->nb, sizeof *w->x, 0);
    w->y = amalloc((size_t)side * side, sizeof *w->y, 0);
    w->h = amalloc((size_t)g->nb, sizeof *w->h, 0);
    w->a = amalloc(n * n, sizeof *w->a, 0);
    w->d = amalloc(n, sizeof *w->d, 0);
    w->sol = amalloc(n, sizeof *w->sol, 0);
    w->s0 = amalloc(n, sizeof *w->s0, 0);
    w->t = amalloc(n, sizeof *w->t, 0);
    w->lw = amalloc(3 * n, sizeof *w->lw, 0);
    w->liw = amalloc(n, sizeof *w->liw, 0);
    return w->mom && w->rhs && w->chunk && w->wt && w->x && w->y && w->h &&
           w->a && w->d && w->sol && w->s0 && w->t && w->lw && w->liw;
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
    for (j = 0; j < w->nmono; j++) {
        w->wt[(size_t)w->nchunk * w->nmono + j] = sign * mono[j];
        w->vmom[j] += sign * mono[j] * s->vw;
    }
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

/* The errors in the variables.  The design's columns are R~ shifted, and
 * R~ is noisy: besides the stars' signal, X^T X holds the expected Gram
 * matrix E of R~'s noise (a stamp's: vw times the noise's covariance
 * between the two shifts, im->racf; the whole fit's, for kernel terms j
 * and j', sum_s phi_j(s) phi_j'(s) vw_s times that).  Left in, E acts as
 * a ridge that pulls the kernel towards what the noise favours --
 * smoother than the truth, most where the stamps are faint and the
 * kernel sharp -- and leaves bright stars with a residual that grows with
 * their flux.  The unbiased solution solves (A - E) x = b; A - E need not
 * be positive definite where the stars carry no signal (frequencies the
 * PSFs remove), so it is reached from the plain solution x0 by
 * x <- x0 + A^-1 E x (the series of (A - E)^-1 A x0), through A's
 * Cholesky factor, EIV_STEPS times at most (it converges in one or two
 * on the tests' pairs). */
#define EIV_STEPS 3

/* t = E x (kernel part; background rows 0). */
static void eiv_apply(const sfft_images *im, const sfft_geom *g,
                      const fitws *w, const double *x, double *t)
{
    int side = 2 * g->hw + 1, l = 4 * g->hw + 1, j, jj, k, kk, a1, b1, a2,
        b2;

    memset(t, 0, (size_t)g->nunk * sizeof *t);
    for (j = 0; j < g->nterms; j++) {
        sfft_mono_exps(j, &a1, &b1);
        for (jj = 0; jj < g->nterms; jj++) {
            double c;
            sfft_mono_exps(jj, &a2, &b2);
            c = w->vmom[sfft_mono_index(a1 + a2, b1 + b2)];
            for (k = 0; k < g->nk; k++) {
                int kx = k % side, ky = k / side;
                double acc = 0;
                const double *xj = x + (size_t)jj * g->nk;
                for (kk = 0; kk < g->nk; kk++) {
                    int dx = kk % side - kx + 2 * g->hw;
                    int dy = kk / side - ky + 2 * g->hw;
                    acc += im->racf[(size_t)dy * l + dx] * xj[kk];
                }
                t[(size_t)j * g->nk + k] += c * acc;
            }
        }
    }
}

/* x = A^-1 y in place, through the factor of the scaled matrix. */
static int chol_solve(const sfft_geom *g, const fitws *w, double *y)
{
    int n = g->nunk, i;

    for (i = 0; i < n; i++)
        y[i] *= w->d[i];
    if (LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', n, 1, w->a, n, y, n) != 0)
        return -1;
    for (i = 0; i < n; i++)
        y[i] *= w->d[i];
    return 0;
}

static double dist2(const double *a, const double *b, int n)
{
    double s = 0;
    int i;

    for (i = 0; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

/* The steps taken into *steps: a step that does not shrink to at most
 * half the one before (the first: to half the solution) means the series
 * does not converge (R~'s noise over-stated somewhere): the iterate
 * before it is kept. */
static int eiv_refine(const sfft_images *im, const sfft_geom *g, fitws *w,
                      int *steps)
{
    int it, i, n = g->nunk;
    double last = 0, zero = 0;

    for (i = 0; i < n; i++)
        zero += w->sol[i] * w->sol[i];
    memcpy(w->s0, w->sol, (size_t)n * sizeof *w->s0);
    *steps = 0;
    for (it = 0; it < EIV_STEPS; it++) {
        double step;
        eiv_apply(im, g, w, w->sol, w->t);
        if (chol_solve(g, w, w->t))
            return -1;
        for (i = 0; i < n; i++)
            w->t[i] += w->s0[i];
        step = dist2(w->t, w->sol, n);
        if (!(step <= 0.25 * (it ? last : zero)))
            break;
        memcpy(w->sol, w->t, (size_t)n * sizeof *w->sol);
        last = step;
        (*steps)++;
    }
    return 0;
}

/* Solve the normal equations, scaled to unit diagonal; the condition
 * number of the scaled matrix into *cond. */
static int solve(const sfft_images *im, const sfft_geom *g, fitws *w,
                 double max_cond, double *cond, int *steps, rapid_err *err)
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
    /* the row-major upper triangle is the column-major lower one: LAPACK
     * works on it in place, where row-major calls would copy the matrix
     * (36 MB for a quadratic kernel) transposed into a fresh buffer and
     * back at every call; the factor L is the row-major U (A = U^T U).
     * The _work calls skip LAPACKE's NaN scans of the matrix: the diagonal
     * was checked above, and a NaN elsewhere fails the factorisation or
     * the solution's check below. */
    anorm = LAPACKE_dlansy_work(LAPACK_COL_MAJOR, '1', 'L', n, w->a, n, w->lw);
    info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', n, w->a, n);
    if (info > 0)
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: singular: the "
                          "normal matrix (%d unknowns) is not positive "
                          "definite (pivot %d)", n, (int)info);
    if (info < 0 ||
        LAPACKE_dpocon_work(LAPACK_COL_MAJOR, 'L', n, w->a, n, anorm, &rcond,
                            w->lw, w->liw) != 0)
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: LAPACK failed on "
                          "the normal matrix (%d unknowns)", n);
    *cond = rcond > 0 ? 1 / rcond : INFINITY;
    if (!(*cond <= max_cond))
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: ill-conditioned: "
                          "condition number %.3g above the limit %.3g (%d "
                          "unknowns)", *cond, max_cond, n);
    if (LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', n, 1, w->a, n, w->sol, n) != 0)
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: LAPACK failed "
                          "solving the normal equations");
    for (i = 0; i < n; i++)
        w->sol[i] *= w->d[i];
    if (im->racf && eiv_refine(im, g, w, steps))
        return rapid_fail(err, RAPID_E_RANGE, "kernel fit: LAPACK failed "
                          "solving the normal equations");
    for (i = 0; i < n; i++) {
        if (!isfinite(w->sol[i]))
            return rapid_fail(err, RAPID_E_RANGE, "kernel fit: the solution "
                              "is not finite (unknown %d of %d)", i, n);
    }
    return 0;
}

/* The kernel's own error where the stamps leave it least constrained
 * (the image's edges, for a quadratic kernel): the model's value at the
 * peak of a point source at (u, v), m = a^T x with a_jk = phi_j(u, v)
 * tmpl[k], has the variance a^T A^-1 a (times the reduced chi^2), which
 * the Cholesky factor U of the scaled matrix gives as |U^-T D a|^2; its
 * ratio to m^2 at the centres of SFFT_EGRID^2 cells. */
static void kernel_error(const sfft_images *im, const sfft_geom *g, fitws *w,
                         double chi2r, double *gam2)
{
    int ci, cj, j, k, n = g->nunk;
    double phi[SFFT_MAXTERMS];

    for (cj = 0; cj < SFFT_EGRID; cj++)
        for (ci = 0; ci < SFFT_EGRID; ci++) {
            double u = -1 + (2.0 * ci + 1) / SFFT_EGRID;
            double v = -1 + (2.0 * cj + 1) / SFFT_EGRID, m = 0, var = 0;
            double *a = w->t;
            sfft_monomials(g->order, u, v, phi);
            memset(a, 0, (size_t)n * sizeof *a);
            for (j = 0; j < g->nterms; j++)
                for (k = 0; k < g->nk; k++) {
                    a[(size_t)j * g->nk + k] = phi[j] * im->tmpl[k];
                    m += a[(size_t)j * g->nk + k] * w->sol[(size_t)j * g->nk +
                                                          k];
                }
            for (k = 0; k < n; k++)
                a[k] *= w->d[k];
            cblas_dtrsv(CblasRowMajor, CblasUpper, CblasTrans, CblasNonUnit,
                        n, w->a, n, a, 1);
            for (k = 0; k < n; k++)
                var += a[k] * a[k];
            gam2[cj * SFFT_EGRID + ci] = m != 0 ? chi2r * var / (m * m) : 0;
        }
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
             double *gam2, rapid_sfft_out *out, rapid_err *err)
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
        if (o->stop && *o->stop) {
            rc = rapid_fail(err, RAPID_E_INTERRUPTED, "kernel fit: interrupted "
                            "after %d passes", it);
            goto done;
        }
        if ((rc = solve(im, g, &w, o->max_cond, &out->cond, &out->eiv_steps,
                        err)))
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
    kernel_error(im, g, &w, out->chi2r > 1 ? out->chi2r : 1, gam2);
done:
    ws_free(&w);
    free(work);
    return rc;
}
