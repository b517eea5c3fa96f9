/* truth.c - which of the simulator's supernovae a pipeline run found
 * (rapid/eval.h). */
#include "rapid/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_internal.h"

static const char *const names[RAPID_EVAL_NMETHOD] = {"zogy", "sfft", "naive"};

/* The supernovae's mean flux on the images that are not science images
 * of the run (those the references were made of): by truth id. */
typedef struct refflux {
    int64_t id;
    double sum;
    int n;
} refflux;

static int cmp_id(const void *a, const void *b)
{
    int64_t x = ((const refflux *)a)->id, y = ((const refflux *)b)->id;
    return (x > y) - (x < y);
}

static double ref_flux(const refflux *rf, long n, int64_t id)
{
    refflux key = {id, 0, 0};
    const refflux *r = bsearch(&key, rf, (size_t)n, sizeof *rf, cmp_id);
    return r && r->n > 0 ? r->sum / r->n : 0;
}

/* One difference image's catalog against the supernovae on its image
 * whose change from the reference (its mean flux on the reference's
 * images) is brighter than mag_max. */
static int count_one(const eval_scijob *j, const char *cat, const char *dif, double mag_max,
                     const refflux *rf, long nrf, rapid_eval_found *f, rapid_err *err)
{
    rapid_table t = RAPID_TABLE_INIT;
    rapid_image d = RAPID_IMAGE_INIT;
    const rapid_column *cx, *cy, *cp;
    const double *kx, *ky, *km, *kf;
    const int32_t *kk;
    const int64_t *kid;
    long r, k;
    int rc;

    if ((rc = rapid_fits_read_table(cat, NULL, &t, err)) != 0 ||
        (rc = rapid_fits_read_image(dif, NULL, &d, err)) != 0)
        goto done;
    cx = rapid_table_col(&t, "x");
    cy = rapid_table_col(&t, "y");
    cp = rapid_table_col(&t, "pass");
    if (!cx || !cy || !cp) {
        rc = rapid_fail(err, RAPID_E_TABLE, "%s: no x, y, pass columns", cat);
        goto done;
    }
    f->n_images++;
    for (r = 0; r < t.nrows; r++)
        f->n_pass += eval_colval(cp, r) != 0;
    if (j->known.nrows == 0)
        goto done;
    kx = rapid_table_col(&j->known, "x")->data;
    ky = rapid_table_col(&j->known, "y")->data;
    kk = rapid_table_col(&j->known, "kind")->data;
    km = rapid_table_col(&j->known, "mag")->data;
    kf = rapid_table_col(&j->known, "flux_dn")->data;
    kid = rapid_table_col(&j->known, "id")->data;
    for (k = 0; k < j->known.nrows; k++) {
        long px = lround(kx[k]), py = lround(ky[k]);
        double fr = ref_flux(rf, nrf, kid[k]), dmag;
        int found = 0;
        /* supernovae (kinds 1-3) brighter than in the reference by more
         * than mag_max, on data, away from the edges */
        if (kk[k] < 1 || kk[k] > 3 || !(kf[k] > fr) || !(km[k] < 90) ||
            !(kx[k] > RAPID_EVAL_FOUND_EDGE && ky[k] > RAPID_EVAL_FOUND_EDGE &&
              kx[k] < d.nx - 1 - RAPID_EVAL_FOUND_EDGE &&
              ky[k] < d.ny - 1 - RAPID_EVAL_FOUND_EDGE) ||
            !isfinite(d.data[py * d.nx + px]))
            continue;
        dmag = km[k] - 2.5 * log10(1 - fr / kf[k]);
        if (!(dmag < mag_max))
            continue;
        f->n_truth++;
        for (r = 0; r < t.nrows && !found; r++)
            found = eval_colval(cp, r) != 0 &&
                    hypot(eval_colval(cx, r) - kx[k], eval_colval(cy, r) - ky[k]) <= 1.0;
        f->n_found += found;
    }
done:
    rapid_table_release(&t);
    rapid_image_release(&d);
    return rc;
}

int rapid_eval_found_supernovae(const char *work, int procdate, const char *simdir,
                                double mag_max, rapid_eval_found out[RAPID_EVAL_NMETHOD],
                                rapid_err *err)
{
    eval_scijob *jobs = NULL;
    rapid_table tr = RAPID_TABLE_INIT;
    refflux *rf = NULL;
    char path[4200];
    long nrf = 0, r;
    int n = 0, k, m, rc;

    memset(out, 0, RAPID_EVAL_NMETHOD * sizeof *out);
    for (m = 0; m < RAPID_EVAL_NMETHOD; m++)
        out[m].method = names[m];
    if ((rc = eval_find_science_jobs(work, procdate, simdir, 0, &jobs, &n, err)) != 0)
        return rc;
    /* the supernovae's flux on every image that is not a science image of
     * the run, by id */
    eval_pathf(path, sizeof path, "%s/truth/transients.fits", simdir);
    if ((rc = rapid_fits_read_table(path, NULL, &tr, err)) != 0) {
        eval_scijobs_free(jobs, n);
        return rc;
    }
    {
        const rapid_column *ci = rapid_table_col(&tr, "image"), *cid = rapid_table_col(&tr, "id"),
                           *cf = rapid_table_col(&tr, "flux_dn");
        if (!ci || !cid || !cf || ci->type != RAPID_COL_STR ||
            !(rf = calloc((size_t)(tr.nrows > 0 ? tr.nrows : 1), sizeof *rf))) {
            rc = rapid_fail(err, RAPID_E_TABLE, "%s: no image, id, flux_dn columns", path);
            goto done;
        }
        for (r = 0; r < tr.nrows; r++) {
            const char *img = (const char *)ci->data + (size_t)r * ci->width;
            int sci = 0;
            for (k = 0; k < n && !sci; k++)
                sci = !strncmp(img, jobs[k].base, (size_t)ci->width);
            if (sci)
                continue;
            rf[nrf].id = (int64_t)eval_colval(cid, r);
            rf[nrf].sum = eval_colval(cf, r);
            rf[nrf++].n = 1;
        }
        qsort(rf, (size_t)nrf, sizeof *rf, cmp_id);
        /* one entry per id */
        for (r = 0, k = 0; r < nrf; r++) {
            if (k > 0 && rf[k - 1].id == rf[r].id) {
                rf[k - 1].sum += rf[r].sum;
                rf[k - 1].n++;
            } else {
                rf[k++] = rf[r];
            }
        }
        nrf = k;
    }
    for (k = 0; rc == 0 && k < n; k++) {
        json_t *man, *diffs;
        size_t d;
        eval_pathf(path, sizeof path, "%s/manifest.json",
                   eval_config_get(&jobs[k].cfg, "job", "out"));
        if ((rc = eval_read_manifest(path, &man, err)) != 0)
            break;
        diffs = json_object_get(man, "diffs");
        for (d = 0; rc == 0 && d < json_array_size(diffs); d++) {
            json_t *df = json_array_get(diffs, d);
            const char *name = json_string_value(json_object_get(df, "method"));
            const char *cat = eval_product(df, "catalog"), *dif = eval_product(df, "diff");
            for (m = 0; m < RAPID_EVAL_NMETHOD; m++)
                if (name && !strcmp(name, names[m]) && cat && dif)
                    rc = count_one(&jobs[k], cat, dif, mag_max, rf, nrf, &out[m], err);
        }
        json_decref(man);
    }
done:
    eval_scijobs_free(jobs, n);
    rapid_table_release(&tr);
    free(rf);
    return rc;
}
