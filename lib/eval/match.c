/* match.c - the passing candidates of a difference image against what was
 * injected, what the simulator put there, and the detector's artefacts
 * (rapid/eval.h). */
#include "rapid/eval.h"

#include <math.h>
#include <stdlib.h>

typedef struct pair {
    double d2;
    long inj, cand;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *p = a, *q = b;
    if (p->d2 != q->d2)
        return p->d2 < q->d2 ? -1 : 1;
    if (p->inj != q->inj)
        return p->inj < q->inj ? -1 : 1;
    return (p->cand > q->cand) - (p->cand < q->cand);
}

static int near_artefact(const uint32_t *dq, int nx, int ny, double x, double y)
{
    int i0 = (int)floor(x - 1 + 0.5), j0 = (int)floor(y - 1 + 0.5), i, j;

    for (j = j0; j <= j0 + 2; j++)
        for (i = i0; i <= i0 + 2; i++)
            if (i >= 0 && j >= 0 && i < nx && j < ny &&
                (dq[(size_t)j * nx + i] & RAPID_EVAL_ARTEFACT_BITS))
                return 1;
    return 0;
}

int rapid_eval_match(rapid_eval_inj *inj, const double *ix, const double *iy,
                     long ninj, rapid_eval_cand *c, long nc,
                     const double *kx, const double *ky, long nknown,
                     const uint32_t *dq, int nx, int ny, double radius,
                     double zp, double **fp_mag, long *nfp,
                     rapid_eval_counts *counts, rapid_err *err)
{
    pair *pairs = NULL;
    unsigned char *used = NULL;
    double r2 = radius * radius, rk = fmax(radius, 1.0), *fp;
    long np = 0, cap = 0, k, j, nfree = 0;

    if (ninj < 0 || nc < 0 || nknown < 0 || !(radius > 0) || !fp_mag || !nfp ||
        !counts || (ninj && (!inj || !ix || !iy)) || (nc && !c) ||
        (nknown && (!kx || !ky)))
        return rapid_fail(err, RAPID_E_ARG, "matching: bad arguments");
    *counts = (rapid_eval_counts){0};
    for (k = 0; k < ninj; k++) {
        inj[k].found = inj[k].detected = 0;
        inj[k].fail_bits = 0;
        inj[k].flux_psf = inj[k].fluxerr_psf = NAN;
    }
    if (!(used = calloc((size_t)(nc > 0 ? nc : 1), 1)))
        return rapid_fail(err, RAPID_E_NOMEM, "matching: no memory");
    /* every injection-candidate pair within the radius, nearest first */
    for (k = 0; k < ninj; k++)
        for (j = 0; j < nc; j++) {
            double dx = c[j].x - ix[k], dy = c[j].y - iy[k];
            if (!c[j].pass || !(dx * dx + dy * dy <= r2))
                continue;
            if (np == cap) {
                pair *q = realloc(pairs, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *q);
                if (!q) {
                    free(pairs);
                    free(used);
                    return rapid_fail(err, RAPID_E_NOMEM, "matching: no memory");
                }
                pairs = q;
            }
            pairs[np++] = (pair){dx * dx + dy * dy, k, j};
        }
    qsort(pairs, (size_t)np, sizeof *pairs, cmp_pair);
    for (k = 0; k < np; k++) {
        rapid_eval_inj *e = &inj[pairs[k].inj];
        if (e->found || used[pairs[k].cand])
            continue;
        used[pairs[k].cand] = 1;
        c[pairs[k].cand].fate = RAPID_EVAL_INJECTION;
        e->found = 1;
        e->flux_psf = c[pairs[k].cand].flux;
        e->fluxerr_psf = c[pairs[k].cand].fluxerr;
        counts->injected++;
    }
    free(pairs);

    /* the injections lost: was there a candidate that the cuts removed? */
    for (k = 0; k < ninj; k++) {
        double best = r2 * (1 + 1e-12);
        long jb = -1;
        if (inj[k].found) {
            inj[k].detected = 1;
            continue;
        }
        for (j = 0; j < nc; j++) {
            double dx = c[j].x - ix[k], dy = c[j].y - iy[k], d2 = dx * dx + dy * dy;
            if (!c[j].pass && d2 < best) {
                best = d2;
                jb = j;
            }
        }
        if (jb >= 0) {
            inj[k].detected = 1;
            inj[k].fail_bits = c[jb].fail_bits;
        }
    }

    /* the rest: known objects, artefacts, false positives */
    for (j = 0; j < nc; j++) {
        nfree += c[j].pass && !used[j];
        if (!used[j])
            c[j].fate = RAPID_EVAL_NOT_PASSING;
    }
    if (!(fp = realloc(*fp_mag, (size_t)(*nfp + nfree + 1) * sizeof *fp))) {
        free(used);
        return rapid_fail(err, RAPID_E_NOMEM, "matching: no memory");
    }
    *fp_mag = fp;
    for (j = 0; j < nc; j++) {
        int known = 0;
        if (!c[j].pass || used[j])
            continue;
        for (k = 0; k < nknown && !known; k++)
            known = hypot(c[j].x - kx[k], c[j].y - ky[k]) <= rk;
        if (known) {
            counts->known++;
            c[j].fate = RAPID_EVAL_KNOWN;
        } else if (dq && near_artefact(dq, nx, ny, c[j].x, c[j].y)) {
            counts->artefact++;
            c[j].fate = RAPID_EVAL_ARTEFACT;
        } else {
            c[j].fate = RAPID_EVAL_FALSE;
            double f = fabs(c[j].flux);
            fp[(*nfp)++] = f > 0 && isfinite(f) ? zp - 2.5 * log10(f) : NAN;
            counts->fp++;
            counts->fp_negative += c[j].sign < 0;
        }
    }
    free(used);
    return 0;
}
