/* plot.c - the evaluation's plots as PNG files, through PLplot's cairo
 * driver (rapid/eval.h).  PLplot keeps one global plotting state: the
 * plots are made one at a time, under a lock. */
#include "rapid/eval.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <plplot/plplot.h>

#include "rapid/tmpfiles.h"

static pthread_mutex_t plot_lock = PTHREAD_MUTEX_INITIALIZER;

/* line colours of the methods (cmap0 entries 2..), then the frame's */
static const int colours[][3] = {
    {31, 119, 180}, {214, 39, 40}, {44, 160, 44}, {148, 103, 189}, {255, 127, 14}};
#define NCOLOURS (int)(sizeof colours / sizeof colours[0])

/* y of one curve at bin k (NaN: no value); log10 for the false
 * positives, whose axis is logarithmic */
static double value(const rapid_eval_result *r, rapid_eval_plot_kind kind, int k)
{
    switch (kind) {
    case RAPID_EVAL_PLOT_COMPLETENESS:
        return r->completeness[k];
    case RAPID_EVAL_PLOT_FP:
        return r->fp_cum[k] > 0 ? log10(r->fp_cum[k]) : NAN;
    default:
        return r->precision[k];
    }
}

/* the curve, broken where it has no value */
static void curve(const rapid_eval_result *r, rapid_eval_plot_kind kind)
{
    PLFLT x[RAPID_EVAL_MAXBINS], y[RAPID_EVAL_MAXBINS];
    int k, m = 0;

    for (k = 0; k <= r->nbins; k++) {
        double v = k < r->nbins ? value(r, kind, k) : NAN;
        if (isfinite(v)) {
            x[m] = r->mag[k];
            y[m++] = v;
            continue;
        }
        if (m > 1)
            plline(m, x, y);
        else if (m == 1)
            plpoin(1, x, y, 17);
        m = 0;
    }
}

int rapid_eval_plot(const char *path, rapid_eval_plot_kind kind,
                    const rapid_eval_result *res, const char *const *names,
                    int nmethods, const char *title, rapid_err *err)
{
    static const char *const ylab[] = {"completeness",
                                       "false positives per image (cumulative)",
                                       "PSF-flux precision (robust #gs of #gDf/f)"};
    char tmp[4096];
    double xmin = INFINITY, xmax = -INFINITY, ymin = 0, ymax = 1, m5 = NAN;
    int k, b, handle, rc = 0;
    FILE *f;

    if (!path || !res || nmethods < 1 || kind < RAPID_EVAL_PLOT_COMPLETENESS ||
        kind > RAPID_EVAL_PLOT_PRECISION)
        return rapid_fail(err, RAPID_E_ARG, "plot: bad arguments");
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", path);
    /* the axes: every method's bins; the values' range */
    if (kind == RAPID_EVAL_PLOT_FP) {
        ymin = INFINITY;
        ymax = -INFINITY;
    } else if (kind == RAPID_EVAL_PLOT_PRECISION) {
        ymax = 0.1;
    }
    for (k = 0; k < nmethods; k++) {
        const rapid_eval_result *r = &res[k];
        if (r->nbins > 0) {
            xmin = fmin(xmin, r->mag[0] - 0.5 * (r->mag[1 < r->nbins] - r->mag[0]));
            xmax = fmax(xmax, r->mag[r->nbins - 1] +
                                  0.5 * (r->mag[r->nbins - 1] - r->mag[r->nbins > 1 ? r->nbins - 2 : 0]));
        }
        if (!isfinite(m5) && isfinite(r->m5sigma))
            m5 = r->m5sigma;
        for (b = 0; b < r->nbins; b++) {
            double v = value(r, kind, b);
            if (!isfinite(v))
                continue;
            ymin = fmin(ymin, v);
            ymax = fmax(ymax, v);
        }
    }
    if (!(xmax > xmin)) {
        xmin = 20;
        xmax = 29;
    }
    if (kind == RAPID_EVAL_PLOT_FP) {
        if (!(ymax >= ymin)) {
            ymin = -1;
            ymax = 1;
        }
        ymin = floor(fmin(ymin, -1.0));
        ymax = ceil(fmax(ymax, log10(RAPID_EVAL_TOLERANCE)) + 0.1);
    } else if (kind == RAPID_EVAL_PLOT_PRECISION) {
        ymax = fmin(ymax * 1.1, 1.0);
    } else {
        ymax = 1.05;
    }
    /* the file must be writable before PLplot is asked to write it */
    if (!(f = fopen(tmp, "wb")))
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write the plot", path);
    fclose(f);
    handle = rapid_tmp_register(tmp, 0);

    pthread_mutex_lock(&plot_lock);
    plsdev("pngcairo");
    plsfnam(tmp);
    plspage(0, 0, 960, 680, 0, 0);
    plscol0(0, 255, 255, 255); /* background */
    plscol0(1, 0, 0, 0);       /* frame and text */
    for (k = 0; k < NCOLOURS; k++)
        plscol0(2 + k, colours[k][0], colours[k][1], colours[k][2]);
    plscol0(2 + NCOLOURS, 128, 128, 128);
    plinit();
    plcol0(1);
    plenv(xmin, xmax, ymin, ymax, 0, kind == RAPID_EVAL_PLOT_FP ? 20 : 0);
    pllab("injected magnitude (AB)", ylab[kind], title ? title : "");
    plwidth(2.0);
    for (k = 0; k < nmethods; k++) {
        plcol0(2 + k % NCOLOURS);
        curve(&res[k], kind);
        /* the names where the curves are not: completeness falls to the
         * right, the others rise */
        plmtex("t", -1.5 - 1.4 * k, kind == RAPID_EVAL_PLOT_COMPLETENESS ? 0.97 : 0.03,
               kind == RAPID_EVAL_PLOT_COMPLETENESS ? 1.0 : 0.0,
               names && names[k] ? names[k] : "");
    }
    plwidth(1.0);
    plcol0(2 + NCOLOURS);
    pllsty(2);
    if (kind == RAPID_EVAL_PLOT_FP) { /* the tolerance */
        PLFLT x[2] = {xmin, xmax}, y[2] = {1, 1};
        plline(2, x, y);
    } else if (kind == RAPID_EVAL_PLOT_PRECISION) {
        PLFLT x[2] = {xmin, xmax}, y[2] = {0.1, 0.1};
        plline(2, x, y);
    } else {
        PLFLT x[2] = {xmin, xmax}, y[2] = {0.8, 0.8}, y2[2] = {0.2, 0.2};
        plline(2, x, y);
        plline(2, x, y2);
    }
    if (isfinite(m5) && m5 > xmin && m5 < xmax) {
        PLFLT x[2] = {m5, m5}, y[2] = {ymin, ymax};
        plline(2, x, y);
        plptex(m5 + 0.01 * (xmax - xmin), ymin + 0.04 * (ymax - ymin), 1, 0, 0,
               "m#d5#gs#u");
    }
    pllsty(1);
    plend();
    pthread_mutex_unlock(&plot_lock);

    if (!(f = fopen(tmp, "rb")) || fseek(f, 0, SEEK_END) != 0 || ftell(f) <= 0)
        rc = rapid_fail(err, RAPID_E_IO, "%s: the plot was not written", path);
    if (f)
        fclose(f);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot write the plot", path);
    if (rc)
        unlink(tmp);
    rapid_tmp_unregister(handle);
    return rc;
}
