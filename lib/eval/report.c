/* report.c - the evaluation's report: eval.json, eval.csv and the plots
 * (rapid/eval.h). */
#include "rapid/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

static const char *const groups[3] = {"all", "field", "nuclear"};

static const rapid_eval_result *group_result(const rapid_eval_method *m, int g)
{
    return g == 0 ? &m->all : g == 1 ? &m->field : &m->nuclear;
}

/* a figure, or null when not reached */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(round(v * 1e4) / 1e4) : json_null();
}

/* the cuts' names, by bit of fail_bits (docs/candidates.md) */
static const char *const cut_names[] = {"edge", "snr", "elong", "ratio", "nneg",
                                        "nbad", "sumrat", "chi2", "dmag", "satrad",
                                        "snr_psf", "snr_auto", "sharp", "broad"};

static json_t *lost_to_cuts(const rapid_eval_result *r)
{
    json_t *o = json_object();
    int b;

    json_object_set_new(o, "n", json_integer(r->n_cut));
    for (b = 0; b < RAPID_EVAL_NCUTBITS; b++) {
        char name[16];
        if (!r->lost_cut[b])
            continue;
        if (b < (int)(sizeof cut_names / sizeof *cut_names))
            snprintf(name, sizeof name, "%s", cut_names[b]);
        else
            snprintf(name, sizeof name, "bit%d", b);
        json_object_set_new(o, name, json_integer(r->lost_cut[b]));
    }
    return o;
}

static json_t *figures(const rapid_eval_result *r)
{
    json_t *o = json_object(), *curves = json_object(), *mag = json_array(), *comp = json_array(),
           *prec = json_array(), *fp = json_array(), *pm = json_array(), *ps = json_array(),
           *det = json_array();
    int b;

    json_object_set_new(o, "m_th", num(r->m_th));
    json_object_set_new(o, "m80", num(r->m80));
    json_object_set_new(o, "m20", num(r->m20));
    json_object_set_new(o, "m5sigma", num(r->m5sigma));
    json_object_set_new(o, "m_ph10", num(r->m_ph10));
    json_object_set_new(o, "fom", num(r->fom));
    json_object_set_new(o, "fp_per_image", num(r->fp_per_image));
    json_object_set_new(o, "n_injected", json_integer(r->n_injected));
    json_object_set_new(o, "n_recovered", json_integer(r->n_recovered));
    json_object_set_new(o, "n_images", json_integer(r->n_images));
    json_object_set_new(o, "n_detected", json_integer(r->n_detected));
    json_object_set_new(o, "m80_detected", num(r->m80_detected));
    json_object_set_new(o, "lost_to_cuts", lost_to_cuts(r));
    for (b = 0; b < r->nbins; b++) {
        json_array_append_new(mag, num(r->mag[b]));
        json_array_append_new(comp, num(r->completeness[b]));
        json_array_append_new(det, num(r->detected[b]));
        json_array_append_new(prec, num(r->precision[b]));
        json_array_append_new(fp, num(r->fp_cum[b]));
        json_array_append_new(pm, num(r->pull_median[b]));
        json_array_append_new(ps, num(r->pull_sigma[b]));
    }
    json_object_set_new(curves, "mag", mag);
    json_object_set_new(curves, "completeness", comp);
    json_object_set_new(curves, "detected", det);
    json_object_set_new(curves, "precision", prec);
    json_object_set_new(curves, "fp_cumulative_per_image", fp);
    json_object_set_new(curves, "pull_median", pm);
    json_object_set_new(curves, "pull_sigma", ps);
    json_object_set_new(o, "curves", curves);
    return o;
}

static json_t *report_json(const rapid_eval_report *rep)
{
    json_t *root = json_object(), *per = json_object(), *run = json_object();
    int m, g;

    for (m = 0; m < RAPID_EVAL_NMETHOD; m++) {
        const rapid_eval_method *rm = &rep->m[m];
        json_t *jm;
        if (!rm->used)
            continue;
        jm = json_object();
        for (g = 0; g < 3; g++)
            json_object_set_new(jm, groups[g], figures(group_result(rm, g)));
        json_object_set_new(jm, "fp_negative_per_image",
                            num(rm->all.n_images ? (double)rm->fp_negative / rm->all.n_images
                                                 : NAN));
        {
            double ni = rm->all.n_images ? rm->all.n_images : NAN;
            long nfp = lround(rm->all.fp_per_image * rm->all.n_images);
            json_t *u = json_object();
            json_object_set_new(u, "near_bright_stars", num(rm->fp_star / ni));
            json_object_set_new(u, "on_galaxies", num(rm->fp_galaxy / ni));
            json_object_set_new(u, "field", num((nfp - rm->fp_star - rm->fp_galaxy) / ni));
            json_object_set_new(jm, "fp_per_image_under", u);
        }
        json_object_set_new(jm, "known_transients", json_integer(rm->known));
        json_object_set_new(jm, "artefacts", json_integer(rm->artefact));
        json_object_set_new(jm, "images_failed", json_integer(rm->images_failed));
        json_object_set_new(per, rm->name, jm);
    }
    json_object_set_new(root, rep->filter, per);
    json_object_set_new(run, "science_images", json_integer(rep->n_science));
    json_object_set_new(run, "rounds", json_integer(rep->rounds));
    json_object_set_new(run, "jobs_failed", json_integer(rep->jobs_failed));
    json_object_set_new(run, "seconds", num(rep->seconds));
    json_object_set_new(root, "run", run);
    return root;
}

char *rapid_eval_json(const rapid_eval_report *rep)
{
    json_t *j = report_json(rep);
    char *s = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));

    json_decref(j);
    return s;
}

/* text to path through a temporary and a rename */
static int write_atomic(const char *path, const char *text, rapid_err *err)
{
    char tmp[4200];
    FILE *f;
    int ok;

    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    if (!(f = fopen(tmp, "w")))
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", path, strerror(errno));
    ok = fputs(text, f) >= 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write", path);
    }
    return 0;
}

static void csv_num(char **p, size_t *left, double v)
{
    int n = isfinite(v) ? snprintf(*p, *left, ",%.4f", v) : snprintf(*p, *left, ",");
    if (n > 0 && (size_t)n < *left) {
        *p += n;
        *left -= (size_t)n;
    }
}

int rapid_eval_write(const char *work, const rapid_eval_report *rep, rapid_err *err)
{
    static const char *const kinds[3] = {"completeness", "fp", "precision"};
    char path[4200], csv[16384], *p = csv, *json;
    size_t left = sizeof csv;
    int m, g, k, rc;

    /* eval.json */
    if (!(json = rapid_eval_json(rep)))
        return rapid_fail(err, RAPID_E_NOMEM, "eval: no memory for the report");
    snprintf(path, sizeof path, "%s/eval.json", work);
    {
        size_t n = strlen(json);
        char *t = malloc(n + 2);
        if (!t) {
            free(json);
            return rapid_fail(err, RAPID_E_NOMEM, "eval: no memory");
        }
        memcpy(t, json, n);
        t[n] = '\n';
        t[n + 1] = 0;
        rc = write_atomic(path, t, err);
        free(t);
    }
    free(json);
    if (rc)
        return rc;
    /* eval.csv */
    k = snprintf(p, left, "filter,method,group,m_th,m80,m20,m5sigma,m_ph10,fom,fp_per_image,"
                          "n_injected,n_recovered,n_images,n_detected,m80_detected\n");
    p += k;
    left -= (size_t)k;
    for (m = 0; m < RAPID_EVAL_NMETHOD; m++)
        for (g = 0; rep->m[m].used && g < 3; g++) {
            const rapid_eval_result *r = group_result(&rep->m[m], g);
            k = snprintf(p, left, "%s,%s,%s", rep->filter, rep->m[m].name, groups[g]);
            p += k;
            left -= (size_t)k;
            csv_num(&p, &left, r->m_th);
            csv_num(&p, &left, r->m80);
            csv_num(&p, &left, r->m20);
            csv_num(&p, &left, r->m5sigma);
            csv_num(&p, &left, r->m_ph10);
            csv_num(&p, &left, r->fom);
            csv_num(&p, &left, r->fp_per_image);
            k = snprintf(p, left, ",%ld,%ld,%d,%ld", r->n_injected, r->n_recovered,
                         r->n_images, r->n_detected);
            p += k;
            left -= (size_t)k;
            csv_num(&p, &left, r->m80_detected);
            k = snprintf(p, left, "\n");
            p += k;
            left -= (size_t)k;
        }
    snprintf(path, sizeof path, "%s/eval.csv", work);
    if ((rc = write_atomic(path, csv, err)) != 0)
        return rc;
    /* the plots: one line per method, per group and kind */
    for (g = 0; g < 3; g++) {
        rapid_eval_result res[RAPID_EVAL_NMETHOD];
        const char *names[RAPID_EVAL_NMETHOD];
        char title[96];
        int n = 0;
        for (m = 0; m < RAPID_EVAL_NMETHOD; m++)
            if (rep->m[m].used) {
                res[n] = *group_result(&rep->m[m], g);
                names[n++] = rep->m[m].name;
            }
        if (n == 0)
            break;
        snprintf(title, sizeof title, "%s, %s injections", rep->filter, groups[g]);
        for (k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/plots/%s_%s_%s.png", work, rep->filter, groups[g],
                     kinds[k]);
            if ((rc = rapid_eval_plot(path, (rapid_eval_plot_kind)k, res, names, n, title,
                                      err)) != 0)
                return rc;
        }
    }
    return 0;
}
