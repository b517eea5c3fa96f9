/* extract_strips.c - SEP's detection on horizontal strips of an image.
 *
 * SEP's cleaning pass compares every pair of detections, so its cost is
 * quadratic in their number (a third of the catalog of a crowded 7000^2
 * coadd).  Detected in strips of about o->strip_rows rows, neighbours
 * reading STRIP_OVERLAP rows in common, each keeping the objects whose
 * barycentre lies on its side of a boundary chosen in that overlap, the
 * cleaning compares n/k objects k times; the strips run on o->nthreads
 * threads.
 *
 * What a strip sees of an object away from its ends is what the whole
 * image shows: the same pixels, filtered values and thresholds, the same
 * deblending tree, the same neighbours to be cleaned by, in the same
 * order.  An object with pixels within the filter's reach of a strip's
 * end is cut or filtered differently, and so may be what it cleans away:
 * the boundary between two strips is put where neither strip's objects
 * so changed reach, their pixels nor their cleaning (CLEAN_REACH), or the
 * two strips are detected again as one.  Left different: SEP shares the
 * faint pixels of a deblended blend among its members at random, from a
 * stream it restarts at each call, so below the first strip the members
 * of blends get another share-out (their isophotal flux, shape and pixel
 * count; their barycentres are the deblending's); and an object cleaned
 * away (or not) by one that a strip's end changed can change what it
 * cleans in turn.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "image/extract_internal.h"

/* Rows two neighbouring strips both read. */
#define STRIP_OVERLAP 384
/* How far an object's cleaning reaches, in half-extents of the ellipse of
 * its own area: SEP models an object's profile as falling to the
 * detection threshold there and as 1/r^2 beyond, and cleans away a
 * fainter detection where that model is above the detection's own
 * minarea-th pixel's excess over the threshold (a ninth of the threshold
 * at 3: on a crowded 7000^2 coadd nearly every detection cleaned away lies
 * within 3 of the brighter object nearest in these units). */
#define CLEAN_REACH 3.0
/* At most so many strips. */
#define STRIP_MAX 64

typedef struct strip {
    int y0, y1;          /* rows read */
    int c0, c1;          /* rows whose objects it keeps */
    sep_catalog *sc;
    int status;          /* SEP's */
    rapid_err err;       /* its message, made on the strip's thread */
    double top, bot;     /* rows reached by objects its ends changed */
    int done;
} strip;

typedef struct strip_run {
    const sep_image *dim;
    double thresh;
    int thresh_type, side, guard;
    const float *kern;
    const rapid_extract_opts *o;
    strip *s;
    int ns;
    pthread_mutex_t lock;
} strip_run;

/* Vertical half-extent of the ellipse of the object's own area. */
static double ellipse_ry(const sep_catalog *sc, int i)
{
    double a = sc->a[i], b = sc->b[i], t = sc->theta[i], q;

    if (!(a > 0) || !(b > 0))
        return 0;
    q = sc->npix[i] / (M_PI * a * b);
    return sqrt(q) * sqrt(a * a * sin(t) * sin(t) + b * b * cos(t) * cos(t));
}

/* How far (image rows) the objects changed by the strip's ends reach:
 * s->top the last row reached from its top end, s->bot the first from its
 * bottom end (an object with pixels within guard rows of an end that is
 * not the image's). */
static void strip_reach(strip *s, int guard, int ny)
{
    const sep_catalog *sc = s->sc;
    int h = s->y1 - s->y0, i;

    s->top = s->y0 > 0 ? s->y0 + guard : 0;
    s->bot = s->y1 < ny ? s->y1 - 1 - guard : ny;
    for (i = 0; i < sc->nobj; i++) {
        double ry = CLEAN_REACH * ellipse_ry(sc, i), y = sc->y[i];
        if (s->y0 > 0 && sc->ymin[i] < guard)
            s->top = fmax(s->top, s->y0 + fmax(sc->ymax[i], y + ry));
        if (s->y1 < ny && sc->ymax[i] > h - 1 - guard)
            s->bot = fmin(s->bot, s->y0 + fmin(sc->ymin[i], y - ry));
    }
}

static void *strip_worker(void *arg)
{
    strip_run *r = arg;
    int k;

    for (;;) {
        strip *s;
        sep_image im;
        size_t off;
        pthread_mutex_lock(&r->lock);
        for (k = 0; k < r->ns && r->s[k].done; k++)
            ;
        if (k < r->ns)
            r->s[k].done = 1;
        pthread_mutex_unlock(&r->lock);
        if (k >= r->ns)
            return NULL;
        s = &r->s[k];
        im = *r->dim;
        off = (size_t)s->y0 * (size_t)im.w;
        im.data = (const float *)im.data + off;
        if (im.mask)
            im.mask = (const unsigned char *)im.mask + off;
        if (im.noise)
            im.noise = (const float *)im.noise + off;
        im.h = s->y1 - s->y0;
        s->status = rapid_sep_detect(&im, r->thresh, r->thresh_type, r->kern,
                                     r->side, r->o, &s->sc);
        if (s->status == 0)
            strip_reach(s, r->guard, r->dim->h);
        else
            rapid_sep_fail(&s->err, s->status, "detection");
    }
}

/* Detect every strip not done yet, on nt threads (this one among them). */
static void strips_run(strip_run *r, int nt)
{
    pthread_t th[RAPID_EXTRACT_MAXTHREADS];
    int k, todo = 0, started = 0;

    for (k = 0; k < r->ns; k++)
        todo += !r->s[k].done;
    if (nt > todo)
        nt = todo;
    for (k = 1; k < nt; k++)
        if (pthread_create(&th[started], NULL, strip_worker, r) == 0)
            started++;
    strip_worker(r);
    for (k = 0; k < started; k++)
        pthread_join(th[k], NULL);
}

/* Strip k and k + 1 made one where join[k], to be detected again; the
 * others keep their objects.  Returns how many joins were made. */
static int strips_join(strip_run *r, const char *join)
{
    int k, m = 0, joined = 0;

    for (k = 0; k < r->ns; k++) {
        strip *s = &r->s[k];
        if (m > 0 && join[k - 1]) {
            strip *t = &r->s[m - 1]; /* above s */
            joined++;
            if (t->sc)
                sep_catalog_free(t->sc);
            if (s->sc)
                sep_catalog_free(s->sc);
            t->sc = NULL;
            t->y1 = s->y1;
            t->done = 0;
            continue;
        }
        r->s[m++] = *s;
    }
    r->ns = m;
    return joined;
}

/* Does every object kept reach (its cleaning, CLEAN_REACH) only strips
 * that hold it whole, away from their ends?  Those that do not join the
 * strips from its own to the one it reaches. */
static int strips_reach(strip_run *r, char *join)
{
    int k, m, i, any = 0, h = r->dim->h;

    for (k = 0; k < r->ns; k++) {
        const strip *s = &r->s[k];
        const sep_catalog *sc = s->sc;
        for (i = 0; i < sc->nobj; i++) {
            double y = sc->y[i] + s->y0, ry = CLEAN_REACH * ellipse_ry(sc, i);
            int ymin = sc->ymin[i] + s->y0, ymax = sc->ymax[i] + s->y0;
            double lo = fmin(ymin, y - ry), hi = fmax(ymax, y + ry);
            if (y < s->c0 || y >= s->c1)
                continue;
            for (m = 0; m < r->ns; m++) {
                const strip *t = &r->s[m];
                int a = m < k ? m : k, b = m < k ? k : m;
                if (m == k || hi < t->c0 || lo >= t->c1)
                    continue;
                if ((t->y0 > 0 && ymin < t->y0 + r->guard) ||
                    (t->y1 < h && ymax > t->y1 - 1 - r->guard)) {
                    for (; a < b; a++)
                        join[a] = 1;
                    any = 1;
                }
            }
        }
    }
    return any;
}

/* Boundaries between the strips: between what the upper strip's bottom
 * end and the lower strip's top end reach, in the middle.  Neighbours
 * with no such row, and the strips between an object and those its
 * cleaning reaches without holding it whole, become one strip, to be
 * detected again.  Returns how many joins were made. */
static int strips_settle(strip_run *r)
{
    char join[STRIP_MAX] = {0};
    int k, any = 0;

    for (k = 0; k + 1 < r->ns; k++) {
        strip *t = &r->s[k], *s = &r->s[k + 1]; /* t above s */
        double lo = s->top + 1, hi = t->bot; /* rows free of both */
        if (lo > hi)
            join[k] = 1, any = 1;
        else
            t->c1 = s->c0 = (int)ceil(0.5 * (lo + hi));
    }
    r->s[0].c0 = 0;
    r->s[r->ns - 1].c1 = r->dim->h;
    if (!any)
        any = strips_reach(r, join);
    return any ? strips_join(r, join) : 0;
}

static int objs_alloc(rapid_sep_objs *ob, long n)
{
    size_t m = (size_t)(n > 0 ? n : 1);

    memset(ob, 0, sizeof *ob);
    ob->x = malloc(m * sizeof *ob->x);
    ob->y = malloc(m * sizeof *ob->y);
    ob->flux = malloc(m * sizeof *ob->flux);
    ob->a = malloc(m * sizeof *ob->a);
    ob->b = malloc(m * sizeof *ob->b);
    ob->theta = malloc(m * sizeof *ob->theta);
    ob->peak = malloc(m * sizeof *ob->peak);
    ob->npix = malloc(m * sizeof *ob->npix);
    ob->flag = malloc(m * sizeof *ob->flag);
    if (!ob->x || !ob->y || !ob->flux || !ob->a || !ob->b || !ob->theta ||
        !ob->peak || !ob->npix || !ob->flag) {
        rapid_sep_objs_release(ob);
        return RAPID_E_NOMEM;
    }
    return 0;
}

void rapid_sep_objs_release(rapid_sep_objs *ob)
{
    free(ob->x);
    free(ob->y);
    free(ob->flux);
    free(ob->a);
    free(ob->b);
    free(ob->theta);
    free(ob->peak);
    free(ob->npix);
    free(ob->flag);
    memset(ob, 0, sizeof *ob);
}

/* Object i of sc, dy rows down, as row k of ob. */
static void objs_put(rapid_sep_objs *ob, long k, const sep_catalog *sc, int i,
                     int dy)
{
    ob->x[k] = sc->x[i];
    ob->y[k] = sc->y[i] + dy;
    ob->flux[k] = sc->flux[i];
    ob->a[k] = sc->a[i];
    ob->b[k] = sc->b[i];
    ob->theta[k] = sc->theta[i];
    ob->peak[k] = sc->peak[i];
    ob->npix[k] = sc->npix[i];
    ob->flag[k] = sc->flag[i];
}

static int detect_whole(const sep_image *dim, double thresh, int thresh_type,
                        const float *kern, int side, const rapid_extract_opts *o,
                        rapid_sep_objs *ob, rapid_err *err)
{
    sep_catalog *sc = NULL;
    int s, rc, i;

    if ((s = rapid_sep_detect(dim, thresh, thresh_type, kern, side, o, &sc)) != 0)
        return rapid_sep_fail(err, s, "detection");
    if ((rc = objs_alloc(ob, sc->nobj)) != 0) {
        rc = rapid_fail(err, rc, "source extraction: no memory for %d sources",
                        sc->nobj);
    } else {
        for (i = 0; i < sc->nobj; i++)
            objs_put(ob, i, sc, i, 0);
        ob->n = sc->nobj;
        ob->nstrips = 1;
    }
    sep_catalog_free(sc);
    return rc;
}

int rapid_sep_detect_strips(const sep_image *dim, double thresh, int thresh_type,
                            const float *kern, int side,
                            const rapid_extract_opts *o, rapid_sep_objs *ob,
                            rapid_err *err)
{
    strip_run r;
    int ns, nt, k, i, rc = 0, bad;
    long n = 0;

    memset(ob, 0, sizeof *ob);
    ns = o->strip_rows > 0 ? (dim->h + o->strip_rows / 2) / o->strip_rows : 1;
    if (ns > dim->h / STRIP_OVERLAP) /* overlaps apart from one another */
        ns = dim->h / STRIP_OVERLAP;
    if (ns > STRIP_MAX)
        ns = STRIP_MAX;
    if (ns < 2)
        return detect_whole(dim, thresh, thresh_type, kern, side, o, ob, err);
    memset(&r, 0, sizeof r);
    if (!(r.s = calloc((size_t)ns, sizeof *r.s)))
        return rapid_fail(err, RAPID_E_NOMEM, "source extraction: no memory");
    r.dim = dim, r.thresh = thresh, r.thresh_type = thresh_type;
    r.kern = kern, r.side = side, r.o = o, r.ns = ns;
    r.guard = (kern ? side / 2 : 0) + 1;
    for (k = 0; k < ns; k++) { /* the overlap centred on the even split */
        strip *s = &r.s[k];
        s->y0 = k == 0 ? 0 : (int)((long)dim->h * k / ns) - STRIP_OVERLAP / 2;
        s->y1 = k == ns - 1 ? dim->h
                            : (int)((long)dim->h * (k + 1) / ns) + STRIP_OVERLAP / 2;
    }
    pthread_mutex_init(&r.lock, NULL);
    nt = o->nthreads < 1 ? 1 : o->nthreads > RAPID_EXTRACT_MAXTHREADS
                                   ? RAPID_EXTRACT_MAXTHREADS : o->nthreads;
    do {
        strips_run(&r, nt);
        for (k = 0, bad = -1; k < r.ns && bad < 0; k++)
            if (r.s[k].status != 0)
                bad = k;
    } while (bad < 0 && strips_settle(&r) > 0);
    pthread_mutex_destroy(&r.lock);
    if (bad >= 0) {
        rc = r.s[bad].err.code;
        if (err)
            *err = r.s[bad].err;
        goto cleanup;
    }
    for (k = 0; k < r.ns; k++)
        n += r.s[k].sc->nobj;
    if ((rc = objs_alloc(ob, n)) != 0) {
        rc = rapid_fail(err, rc, "source extraction: no memory for %ld sources", n);
        goto cleanup;
    }
    ob->nstrips = r.ns;
    for (k = 0; k < r.ns; k++) {
        const strip *s = &r.s[k];
        for (i = 0; i < s->sc->nobj; i++) {
            double y = s->sc->y[i] + s->y0;
            if (y >= s->c0 && y < s->c1)
                objs_put(ob, ob->n++, s->sc, i, s->y0);
        }
    }
cleanup:
    for (k = 0; k < r.ns; k++)
        if (r.s[k].sc)
            sep_catalog_free(r.s[k].sc);
    free(r.s);
    return rc;
}
