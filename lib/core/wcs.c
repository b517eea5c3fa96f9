/* wcs.c - world coordinates through WCSLIB: TAN, TAN-SIP and TPV.
 *
 * WCSLIB parses every header (wcspih) and does every transform.  It turns
 * SIP keywords into a "prior" distortion applied to pixel coordinates
 * before CD, and TPV into a TAN projection with a "sequent" distortion
 * applied after CD; both are inverted iteratively by disx2p() to a relative
 * tolerance of 1e-13.  What WCSLIB does not keep in a usable form (SIP
 * orders and coefficients, the effective CD matrix) is copied into the
 * rapid_wcs fields, because callers store and rewrite them.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dis.h>
#include <wcs.h>
#include <wcserr.h>
#include <wcshdr.h>
#include <wcsmath.h>

#include "rapid/wcs.h"

/* Points per WCSLIB call: large enough to amortise the call, small enough
 * for the scratch arrays to live on the stack. */
#define CHUNK 256

enum direction { PIX2SKY, SKY2PIX };

/* Points that fail our own checks before WCSLIB sees them. */
#define BAD_INPUT (-1)

static pthread_once_t errors_once = PTHREAD_ONCE_INIT;

/* WCSLIB only fills its error records (the text we pass on) once enabled;
 * the switch is process-wide, so flip it exactly once. */
static void enable_wcslib_errors(void)
{
    wcserr_enable(1);
}

static const char *err_text(const struct wcserr *e)
{
    return e && e->msg && e->msg[0] ? e->msg : NULL;
}

static const char *wcslib_msg(const struct wcsprm *p, int status)
{
    const char *m = p ? err_text(p->err) : NULL;

    if (m)
        return m;
    if (status > 0 && status <= WCSERR_UNSET)
        return wcs_errmsg[status];
    return "unknown WCSLIB error";
}

/* The message of the stage that failed inside a transform (projection,
 * rotation, distortion), which says more than the wcsprm's summary. */
static const char *wcslib_detail(const struct wcsprm *p)
{
    const char *m = err_text(p->cel.prj.err);

    if (!m)
        m = err_text(p->cel.err);
    if (!m && p->lin.dispre)
        m = err_text(p->lin.dispre->err);
    if (!m && p->lin.disseq)
        m = err_text(p->lin.disseq->err);
    if (!m)
        m = err_text(p->lin.err);
    return m;
}

static double norm_ra(double ra)
{
    ra = fmod(ra, 360.0);
    if (ra < 0)
        ra += 360.0;
    /* fmod of a tiny negative number rounds to 360 after the addition. */
    return ra >= 360.0 ? 0.0 : ra;
}

/* ------------------------------------------------------- header keywords */

/* Keyword of a card, upper case, without trailing blanks. */
static void card_key(const char *card, char key[9])
{
    int n;

    for (n = 0; n < 8 && card[n] && card[n] != ' ' && card[n] != '='; n++)
        key[n] = (char)toupper((unsigned char)card[n]);
    key[n] = '\0';
}

/* key == prefix followed by `groups` digit runs joined by '_', then at most
 * one alternate-WCS letter (CD1_2, CRVAL2A, PV2_1, WCSAXES, RADESYSA...). */
static int key_is(const char *key, const char *prefix, int groups)
{
    size_t n = strlen(prefix);
    const char *s = key + n;
    int g;

    if (strncmp(key, prefix, n) != 0)
        return 0;
    for (g = 0; g < groups; g++) {
        if (g > 0 && *s++ != '_')
            return 0;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0' || (isupper((unsigned char)*s) && s[1] == '\0');
}

static int key_in(const char *key, const char *const *list, int groups)
{
    int i;

    for (i = 0; list[i]; i++)
        if (key_is(key, list[i], groups))
            return 1;
    return 0;
}

static const char *const plain_keys[] = {
    "WCSAXES", "RADESYS", "RADECSYS", "EQUINOX", "EPOCH", "LONPOLE",
    "LATPOLE", "WCSNAME", "A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER",
    "A_DMAX", "B_DMAX", "DVERR", NULL};
static const char *const axis_keys[] = {
    "CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT", "CROTA", "CRDER", "CSYER",
    "CNAME", "CPDIS", "CQDIS", "CPERR", "CQERR", "DP", "DQ",
    "PC", "CD", /* the old PC001002 / CD001002 forms */
    NULL};
static const char *const pair_keys[] = {"CD", "PC", "PV", "PS", "A_",
                                        "B_", "AP_", "BP_", NULL};

static int is_wcs_key(const char *key)
{
    return key_in(key, plain_keys, 0) || key_in(key, axis_keys, 1) ||
           key_in(key, pair_keys, 2);
}

/* Keywords WCSLIB reads as numbers.  WCSLIB silently drops a keyword it
 * cannot parse (CD1_1 = 'abc' would become 0), so they are checked here. */
static int is_numeric_wcs_key(const char *key)
{
    static const char *const axis[] = {"CRVAL", "CRPIX", "CDELT", "CROTA",
                                       NULL};
    static const char *const pair[] = {"CD", "PC", "PV", "A_", "B_", "AP_",
                                       "BP_", NULL};

    return key_in(key, axis, 1) || key_in(key, pair, 2) ||
           key_is(key, "EQUINOX", 0) || key_is(key, "LONPOLE", 0) ||
           key_is(key, "LATPOLE", 0);
}

/* Re-code a header getter's failure as a WCS failure. */
static int bad_key(rapid_err *err)
{
    if (err)
        err->code = RAPID_E_WCS;
    rapid_err_prefix(err, "invalid WCS");
    return RAPID_E_WCS;
}

static int check_numeric_keys(const rapid_header *h, rapid_err *err)
{
    char key[9];
    double v;
    int i;

    for (i = 0; i < h->ncards; i++) {
        card_key(h->cards[i], key);
        if (is_numeric_wcs_key(key) &&
            rapid_header_get_double(h, key, &v, err) != 0)
            return bad_key(err);
    }
    return 0;
}

/* Keyword `key`, or its old form (CD001001 for CD1_1), is in the header. */
static int has_key(const rapid_header *h, const char *key, const char *old)
{
    return rapid_header_has(h, key) || (old && rapid_header_has(h, old));
}

static int has_any_cd(const rapid_header *h)
{
    char key[9];
    int i;

    for (i = 0; i < h->ncards; i++) {
        card_key(h->cards[i], key);
        if (key_is(key, "CD", 2) && strlen(key) == 5) /* primary CDi_j */
            return 1;
        if (strncmp(key, "CD00", 4) == 0 && strlen(key) == 8)
            return 1;
    }
    return 0;
}

/* FITS WCS Paper I gives CRVALi and CRPIXi a default of 0 and CDELTi one of
 * 1 (degree per pixel), and WCSLIB applies them without a word: a header
 * that lost one would place the image elsewhere on the sky.  So the
 * reference point and a scale must be there: CD1_1 and CD2_2 (the other
 * CDi_j default to 0), or else CDELT1 and CDELT2 (with PCi_j, which default
 * to the unit matrix, or CROTA2). */
static int check_linear_keys(const rapid_header *h, rapid_err *err)
{
    static const char *const need[][2] = {
        {"CRVAL1", NULL}, {"CRVAL2", NULL}, {"CRPIX1", NULL},
        {"CRPIX2", NULL}};
    static const char *const cd[][2] = {{"CD1_1", "CD001001"},
                                        {"CD2_2", "CD002002"}};
    static const char *const cdelt[][2] = {{"CDELT1", NULL},
                                           {"CDELT2", NULL}};
    const char *const(*scale)[2] = has_any_cd(h) ? cd : cdelt;
    char missing[80] = "";
    size_t k;

    for (k = 0; k < sizeof need / sizeof need[0]; k++)
        if (!has_key(h, need[k][0], need[k][1]))
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
                     "%s%s", missing[0] ? ", " : "", need[k][0]);
    for (k = 0; k < 2; k++)
        if (!has_key(h, scale[k][0], scale[k][1]))
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
                     "%s%s", missing[0] ? ", " : "", scale[k][0]);
    if (!missing[0])
        return 0;
    if (scale == cdelt && !has_key(h, "CDELT1", NULL) &&
        !has_key(h, "CDELT2", NULL))
        return rapid_fail(err, RAPID_E_WCS,
                          "invalid WCS: missing %s (no pixel scale: neither "
                          "CD1_1/CD2_2 nor CDELT1/CDELT2)", missing);
    return rapid_fail(err, RAPID_E_WCS,
                      "invalid WCS: missing %s (a FITS default would put "
                      "the image elsewhere on the sky)", missing);
}

/* ------------------------------------------------------------ SIP terms */

static const char *const sip_names[4] = {"A", "B", "AP", "BP"};

typedef double sip_row[RAPID_SIP_MAXORDER + 1];

static int *sip_order(rapid_sip *s, int k)
{
    int *o[4] = {&s->a_order, &s->b_order, &s->ap_order, &s->bp_order};
    return o[k];
}

static int sip_order_of(const rapid_sip *s, int k)
{
    const int o[4] = {s->a_order, s->b_order, s->ap_order, s->bp_order};
    return o[k];
}

static sip_row *sip_coef(rapid_sip *s, int k)
{
    sip_row *c[4] = {s->a, s->b, s->ap, s->bp};
    return c[k];
}

static const sip_row *sip_coef_of(const rapid_sip *s, int k)
{
    const sip_row *c[4] = {s->a, s->b, s->ap, s->bp};
    return c[k];
}

/* One polynomial (A, B, AP or BP): its order, then every A_p_q with
 * p+q <= order (missing terms are 0). */
static int read_sip_poly(const rapid_header *h, rapid_sip *s, int k,
                         rapid_err *err)
{
    char key[32];
    long order = 0;
    sip_row *c = sip_coef(s, k);
    int p, q;

    snprintf(key, sizeof key, "%s_ORDER", sip_names[k]);
    if (!rapid_header_has(h, key))
        return 0;
    if (rapid_header_get_long(h, key, &order, err))
        return bad_key(err);
    if (order < 0 || order > RAPID_SIP_MAXORDER)
        return rapid_fail(err, RAPID_E_WCS,
                          "invalid SIP distortion: %s = %ld is outside 0..%d",
                          key, order, RAPID_SIP_MAXORDER);
    *sip_order(s, k) = (int)order;
    for (p = 0; p <= order; p++)
        for (q = 0; p + q <= order; q++) {
            snprintf(key, sizeof key, "%s_%d_%d", sip_names[k], p, q);
            if (rapid_header_has(h, key) &&
                rapid_header_get_double(h, key, &c[p][q], err))
                return bad_key(err);
        }
    return 0;
}

/* WCSLIB ignores A_ORDER and uses every A_p_q it finds; a term beyond the
 * order would make the transform differ from the stored terms. */
static int check_sip_degrees(const rapid_header *h, const rapid_sip *s,
                             rapid_err *err)
{
    char key[9], name[4];
    int i, k, p, q, used;

    for (i = 0; i < h->ncards; i++) {
        card_key(h->cards[i], key);
        if (sscanf(key, "%3[ABP]_%d_%d%n", name, &p, &q, &used) != 3 ||
            key[used] != '\0')
            continue;
        for (k = 0; k < 4; k++)
            if (strcmp(name, sip_names[k]) == 0 && p + q > sip_order_of(s, k))
                return rapid_fail(err, RAPID_E_WCS,
                                  "invalid SIP distortion: %s has degree %d "
                                  "but %s_ORDER is %d or missing",
                                  key, p + q, name, sip_order_of(s, k));
    }
    return 0;
}

static int read_sip(const rapid_header *h, rapid_sip *s, rapid_err *err)
{
    int k, rc;

    memset(s, 0, sizeof *s);
    if (!rapid_header_has(h, "A_ORDER") || !rapid_header_has(h, "B_ORDER"))
        return rapid_fail(err, RAPID_E_WCS,
                          "invalid SIP distortion: CTYPE or SIP coefficients "
                          "say SIP but %s is missing",
                          rapid_header_has(h, "A_ORDER") ? "B_ORDER"
                                                         : "A_ORDER");
    for (k = 0; k < 4; k++)
        if ((rc = read_sip_poly(h, s, k, err)) != 0)
            return rc;
    return check_sip_degrees(h, s, err);
}

/* --------------------------------------------------- building the wcsprm */

/* The primary (non-alternate) WCS of the header, pixel axes 1 and 2 only,
 * in a wcsprm of our own. */
static int parse_header(const rapid_header *h, struct wcsprm **out,
                        rapid_err *err)
{
    struct wcsprm *all = NULL, *p = NULL;
    char *text = NULL;
    int ncards = 0, nreject = 0, nwcs = 0, i, st, nsub = 2, axes[2] = {1, 2};
    int rc = 0;

    if (!(text = rapid_header_to_string(h, &ncards)) ||
        !(p = calloc(1, sizeof *p))) {
        rc = rapid_fail(err, RAPID_E_NOMEM, "parsing WCS: out of memory");
        goto cleanup;
    }
    p->flag = -1;
    st = wcspih(text, ncards, WCSHDR_all, 0, &nreject, &nwcs, &all);
    if (st) {
        rc = rapid_fail(err, RAPID_E_WCS, "WCSLIB cannot parse the header: %s",
                        wcshdr_errmsg[st]);
        goto cleanup;
    }
    for (i = 0; i < nwcs && all[i].alt[0] != ' '; i++)
        ;
    if (i == nwcs) {
        rc = rapid_fail(err, RAPID_E_WCS, "no celestial WCS in header "
                                          "(no primary WCS keywords)");
        goto cleanup;
    }
    if ((st = wcssub(1, &all[i], &nsub, axes, p)) != 0) {
        rc = rapid_fail(err, RAPID_E_WCS, "WCSLIB rejects the header WCS: %s",
                        wcslib_msg(p, st));
        goto cleanup;
    }
    *out = p;
    p = NULL;
cleanup:
    if (p) {
        wcsfree(p);
        free(p);
    }
    if (all)
        wcsvfree(&nwcs, &all);
    free(text);
    return rc;
}

/* ICRS is what the API promises; FK5 J2000 differs from it by < 0.1". */
static int check_celestial(const struct wcsprm *p, rapid_err *err)
{
    if (p->lng < 0 || p->lat < 0)
        return rapid_fail(err, RAPID_E_WCS,
                          "no celestial WCS in header (CTYPE1 '%s', "
                          "CTYPE2 '%s')", p->ctype[0], p->ctype[1]);
    if (strcmp(p->lngtyp, "RA") != 0)
        return rapid_fail(err, RAPID_E_WCS,
                          "celestial WCS is %s/%s, not RA/DEC (CTYPE1 '%s')",
                          p->lngtyp, p->lattyp, p->ctype[0]);
    if (strcmp(p->radesys, "ICRS") != 0 &&
        !(strcmp(p->radesys, "FK5") == 0 &&
          (undefined(p->equinox) || p->equinox == 2000.0)))
        return rapid_fail(err, RAPID_E_WCS,
                          "RADESYS '%s' (EQUINOX %g) is not supported: "
                          "sky coordinates must be ICRS",
                          p->radesys, p->equinox);
    return 0;
}

static int has_dis(const struct disprm *d, const char *type)
{
    return d && d->ndis > 0 && strcmp(d->dtype[0], type) == 0;
}

/* Which of our kinds the transform WCSLIB built is.  WCSLIB applies SIP
 * whenever it finds SIP coefficients, even under a plain TAN CTYPE. */
static int classify(const struct wcsprm *p, rapid_wcs_kind *kind,
                    rapid_err *err)
{
    int tan = strcmp(p->cel.prj.code, "TAN") == 0 && p->lng == 0 &&
              p->lat == 1;
    int sip = has_dis(p->lin.dispre, "SIP");

    if (!sip && strstr(p->ctype[0], "-SIP"))
        return rapid_fail(err, RAPID_E_WCS,
                          "invalid SIP distortion: CTYPE1 is '%s' but the "
                          "header has no SIP coefficients (A_ORDER, A_p_q)",
                          p->ctype[0]);
    if (tan && sip && !p->lin.disseq)
        *kind = RAPID_WCS_TAN_SIP;
    else if (tan && has_dis(p->lin.disseq, "TPV") && !p->lin.dispre)
        *kind = RAPID_WCS_TPV;
    else if (tan && !p->lin.dispre && !p->lin.disseq)
        *kind = RAPID_WCS_TAN;
    else
        *kind = RAPID_WCS_OTHER;
    return 0;
}

static void fill_terms(rapid_wcs *w, const struct wcsprm *p)
{
    int i, j;

    for (i = 0; i < 2; i++) {
        w->crval[i] = p->crval[i];
        w->crpix[i] = p->crpix[i];
        /* piximg is CD, or PC scaled by CDELT, or what CROTA implies;
         * WCSLIB leaves it NULL when PC is the unit matrix. */
        for (j = 0; j < 2; j++)
            w->cd[i][j] = p->lin.piximg ? p->lin.piximg[2 * i + j]
                          : i == j      ? p->cdelt[i]
                                        : 0.0;
    }
}

static int image_size(const rapid_header *h, const char *key)
{
    long v = 0;

    if (rapid_header_get_long(h, key, &v, NULL) || v < 0 || v > 1L << 30)
        return 0;
    return (int)v;
}

void rapid_wcs_release(rapid_wcs *w)
{
    rapid_wcs init = RAPID_WCS_INIT;

    if (!w)
        return;
    if (w->prm) {
        wcsfree(w->prm);
        free(w->prm);
    }
    *w = init;
}

int rapid_wcs_from_header(rapid_wcs *w, const rapid_header *h, rapid_err *err)
{
    rapid_wcs tmp = RAPID_WCS_INIT, init = RAPID_WCS_INIT;
    struct wcsprm *p = NULL;
    int rc, st;

    if (!w || !h)
        return rapid_fail(err, RAPID_E_ARG, "rapid_wcs_from_header: NULL %s",
                          w ? "header" : "WCS");
    *w = init;
    pthread_once(&errors_once, enable_wcslib_errors);
    if (!rapid_header_has(h, "CTYPE1") || !rapid_header_has(h, "CTYPE2"))
        return rapid_fail(err, RAPID_E_WCS,
                          "no celestial WCS in header (CTYPE%d missing)",
                          rapid_header_has(h, "CTYPE1") ? 2 : 1);
    if ((rc = check_numeric_keys(h, err)) != 0 ||
        (rc = check_linear_keys(h, err)) != 0 ||
        (rc = parse_header(h, &p, err)) != 0)
        goto cleanup;
    tmp.prm = p;
    if ((st = wcsset(p)) != 0) {
        rc = rapid_fail(err, RAPID_E_WCS, "WCSLIB rejects the header WCS: %s",
                        wcslib_msg(p, st));
        goto cleanup;
    }
    if ((rc = check_celestial(p, err)) != 0 ||
        (rc = classify(p, &tmp.kind, err)) != 0)
        goto cleanup;
    if (has_dis(p->lin.dispre, "SIP") && (rc = read_sip(h, &tmp.sip, err)))
        goto cleanup;
    fill_terms(&tmp, p);
    tmp.nx = image_size(h, "NAXIS1");
    tmp.ny = image_size(h, "NAXIS2");
    *w = tmp;
    tmp.prm = NULL;
cleanup:
    rapid_wcs_release(&tmp);
    return rc;
}

int rapid_wcs_copy(rapid_wcs *dst, const rapid_wcs *src, rapid_err *err)
{
    rapid_wcs init = RAPID_WCS_INIT;
    struct wcsprm *p = NULL;
    int st, rc = 0;

    if (!dst || !src || !src->prm)
        return rapid_fail(err, RAPID_E_ARG, "rapid_wcs_copy: no WCS to copy");
    *dst = init;
    if (!(p = calloc(1, sizeof *p)))
        return rapid_fail(err, RAPID_E_NOMEM, "copying WCS: out of memory");
    p->flag = -1;
    if ((st = wcssub(1, src->prm, NULL, NULL, p)) != 0 ||
        (st = wcsset(p)) != 0) {
        rc = rapid_fail(err, st == WCSERR_MEMORY ? RAPID_E_NOMEM : RAPID_E_WCS,
                        "copying WCS: %s", wcslib_msg(p, st));
        wcsfree(p);
        free(p);
        return rc;
    }
    *dst = *src;
    dst->prm = p;
    return 0;
}

/* ----------------------------------------------------- writing a header */

static int put_double(rapid_header *h, const char *key, double v,
                      const char *comment, rapid_err *err)
{
    int rc = rapid_header_set_double(h, key, v, comment);

    if (rc)
        return rapid_fail(err, rc, "writing WCS keyword %s = %.17g: %s", key,
                          v, rapid_strstatus(rc));
    return 0;
}

static int put_str(rapid_header *h, const char *key, const char *v,
                   const char *comment, rapid_err *err)
{
    int rc = rapid_header_set_str(h, key, v, comment);

    if (rc)
        return rapid_fail(err, rc, "writing WCS keyword %s = '%s': %s", key, v,
                          rapid_strstatus(rc));
    return 0;
}

static void remove_wcs_cards(rapid_header *h)
{
    char key[9];
    int i = 0;

    while (i < h->ncards) {
        card_key(h->cards[i], key);
        if (is_wcs_key(key))
            rapid_header_delete(h, key); /* removes card i, too */
        else
            i++;
    }
}

static int write_ctypes(const rapid_wcs *w, rapid_header *h, rapid_err *err)
{
    static const char *const ctype[3][2] = {{"RA---TAN", "DEC--TAN"},
                                            {"RA---TAN-SIP", "DEC--TAN-SIP"},
                                            {"RA---TPV", "DEC--TPV"}};
    const struct wcsprm *p = w->prm;
    const char *c1, *c2;
    int rc;

    if (w->kind == RAPID_WCS_OTHER) {
        c1 = p->ctype[0];
        c2 = p->ctype[1];
    } else {
        c1 = ctype[w->kind][0];
        c2 = ctype[w->kind][1];
    }
    if ((rc = put_str(h, "CTYPE1", c1, NULL, err)) != 0 ||
        (rc = put_str(h, "CTYPE2", c2, NULL, err)) != 0 ||
        (rc = put_str(h, "CUNIT1", "deg", NULL, err)) != 0 ||
        (rc = put_str(h, "CUNIT2", "deg", NULL, err)) != 0)
        return rc;
    return 0;
}

static int write_linear(const rapid_wcs *w, rapid_header *h, rapid_err *err)
{
    char key[32];
    int i, j, rc;

    for (i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "CRVAL%d", i + 1);
        if ((rc = put_double(h, key, w->crval[i], "[deg]", err)) != 0)
            return rc;
        snprintf(key, sizeof key, "CRPIX%d", i + 1);
        if ((rc = put_double(h, key, w->crpix[i], "FITS (1-based)", err)))
            return rc;
    }
    for (i = 0; i < 2; i++)
        for (j = 0; j < 2; j++) {
            snprintf(key, sizeof key, "CD%d_%d", i + 1, j + 1);
            if ((rc = put_double(h, key, w->cd[i][j], "[deg/pixel]", err)))
                return rc;
        }
    return put_str(h, "RADESYS", "ICRS", NULL, err);
}

/* A_ORDER, then the terms: all of degree 2..order (as the SIP convention
 * lists them) and any non-zero lower ones. */
static int write_sip(const rapid_sip *s, rapid_header *h, rapid_err *err)
{
    char key[32];
    int k, p, q, order, rc;

    for (k = 0; k < 4; k++) {
        const sip_row *c = sip_coef_of(s, k);
        order = sip_order_of(s, k);
        if (k >= 2 && order == 0)
            continue; /* AP/BP are optional */
        snprintf(key, sizeof key, "%s_ORDER", sip_names[k]);
        if ((rc = rapid_header_set_long(h, key, order, "SIP polynomial order")))
            return rapid_fail(err, rc, "writing WCS keyword %s: %s", key,
                              rapid_strstatus(rc));
        for (p = 0; p <= order; p++)
            for (q = 0; p + q <= order; q++) {
                if (p + q < 2 && c[p][q] == 0.0)
                    continue;
                snprintf(key, sizeof key, "%s_%d_%d", sip_names[k], p, q);
                if ((rc = put_double(h, key, c[p][q], NULL, err)) != 0)
                    return rc;
            }
    }
    return 0;
}

/* TPV terms live in WCSLIB's sequent distortion as DQi 'TPV.m' records. */
static int write_tpv(const struct wcsprm *p, rapid_header *h, rapid_err *err)
{
    const struct disprm *d = p->lin.disseq;
    const char *f;
    char key[32];
    int i, m, rc;

    for (i = 0; i < d->ndp; i++) {
        if (!(f = strstr(d->dp[i].field, ".TPV.")) ||
            sscanf(f + 5, "%d", &m) != 1)
            continue;
        snprintf(key, sizeof key, "PV%d_%d", d->dp[i].j, m);
        if ((rc = put_double(h, key, dpkeyd(&d->dp[i]), NULL, err)) != 0)
            return rc;
    }
    return 0;
}

/* Projection parameters and pole of any other projection. */
static int write_other(const struct wcsprm *p, rapid_header *h, rapid_err *err)
{
    char key[32];
    int i, rc;

    if (p->lin.dispre || p->lin.disseq)
        return rapid_fail(err, RAPID_E_WCS,
                          "cannot write the %s distortion of '%s' to a header",
                          p->lin.dispre ? p->lin.dispre->dtype[0]
                                        : p->lin.disseq->dtype[0],
                          p->ctype[0]);
    for (i = 0; i < p->npv; i++) {
        snprintf(key, sizeof key, "PV%d_%d", p->pv[i].i, p->pv[i].m);
        if ((rc = put_double(h, key, p->pv[i].value, NULL, err)) != 0)
            return rc;
    }
    if ((rc = put_double(h, "LONPOLE", p->lonpole, "[deg]", err)) != 0)
        return rc;
    return put_double(h, "LATPOLE", p->latpole, "[deg]", err);
}

static int write_wcs(const rapid_wcs *w, rapid_header *h, rapid_err *err)
{
    int rc;

    if ((rc = write_ctypes(w, h, err)) != 0 ||
        (rc = write_linear(w, h, err)) != 0)
        return rc;
    /* 180 is the default for TAN; anything else must be kept. */
    if (w->kind != RAPID_WCS_OTHER && w->prm &&
        ((const struct wcsprm *)w->prm)->lonpole != 180.0 &&
        (rc = put_double(h, "LONPOLE", ((const struct wcsprm *)w->prm)->lonpole,
                         "[deg]", err)) != 0)
        return rc;
    switch (w->kind) {
    case RAPID_WCS_TAN_SIP:
        return write_sip(&w->sip, h, err);
    case RAPID_WCS_TPV:
        return write_tpv(w->prm, h, err);
    case RAPID_WCS_OTHER:
        return write_other(w->prm, h, err);
    default:
        return 0;
    }
}

int rapid_wcs_to_header(const rapid_wcs *w, rapid_header *h, rapid_err *err)
{
    rapid_header tmp = RAPID_HEADER_INIT;
    int rc;

    if (!w || !h || !w->prm)
        return rapid_fail(err, RAPID_E_ARG, "rapid_wcs_to_header: no %s",
                          h ? "WCS" : "header");
    /* Edit a copy, so that a failure leaves h as it was. */
    if (rapid_header_copy(&tmp, h))
        return rapid_fail(err, RAPID_E_NOMEM, "writing WCS: out of memory");
    remove_wcs_cards(&tmp);
    if ((rc = write_wcs(w, &tmp, err)) != 0) {
        rapid_header_release(&tmp);
        return rc;
    }
    rapid_header_release(h);
    *h = tmp;
    return 0;
}

/* ----------------------------------------------------- other constructors */

static int check_terms(const double crval[2], const double crpix[2],
                       const double cd[2][2], const rapid_sip *sip,
                       rapid_err *err)
{
    double det;
    int k;

    if (!crval || !crpix || !cd)
        return rapid_fail(err, RAPID_E_ARG, "WCS terms: NULL CRVAL/CRPIX/CD");
    det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
    if (!isfinite(crval[0]) || !isfinite(crval[1]) || fabs(crval[1]) > 90)
        return rapid_fail(err, RAPID_E_ARG, "WCS terms: bad CRVAL (%g, %g)",
                          crval[0], crval[1]);
    if (!isfinite(crpix[0]) || !isfinite(crpix[1]))
        return rapid_fail(err, RAPID_E_ARG, "WCS terms: CRPIX not finite");
    if (!isfinite(det) || det == 0.0)
        return rapid_fail(err, RAPID_E_ARG,
                          "WCS terms: CD matrix is singular or not finite");
    for (k = 0; sip && k < 4; k++) {
        int o = sip_order_of(sip, k);
        if (o < 0 || o > RAPID_SIP_MAXORDER)
            return rapid_fail(err, RAPID_E_ARG,
                              "WCS terms: SIP %s order %d outside 0..%d",
                              sip_names[k], o, RAPID_SIP_MAXORDER);
    }
    return 0;
}

/* The terms go through a header, so that every WCS is built by one path. */
int rapid_wcs_from_terms(rapid_wcs *w, const double crval[2],
                         const double crpix[2], const double cd[2][2],
                         const rapid_sip *sip, int nx, int ny, rapid_err *err)
{
    rapid_wcs spec = RAPID_WCS_INIT, init = RAPID_WCS_INIT;
    rapid_header h = RAPID_HEADER_INIT;
    int rc;

    if (!w)
        return rapid_fail(err, RAPID_E_ARG, "rapid_wcs_from_terms: NULL WCS");
    *w = init;
    if ((rc = check_terms(crval, crpix, cd, sip, err)) != 0)
        return rc;
    spec.kind = sip ? RAPID_WCS_TAN_SIP : RAPID_WCS_TAN;
    memcpy(spec.crval, crval, sizeof spec.crval);
    memcpy(spec.crpix, crpix, sizeof spec.crpix);
    memcpy(spec.cd, cd, sizeof spec.cd);
    if (sip)
        spec.sip = *sip;
    if ((rc = write_wcs(&spec, &h, err)) == 0 &&
        (rc = rapid_wcs_from_header(w, &h, err)) == 0) {
        w->nx = nx > 0 ? nx : 0;
        w->ny = ny > 0 ? ny : 0;
    }
    rapid_header_release(&h);
    return rc;
}

int rapid_wcs_tan_grid(rapid_wcs *w, double ra, double dec, int nx, int ny,
                       double scale_arcsec, rapid_err *err)
{
    double crval[2], crpix[2], cd[2][2] = {{0, 0}, {0, 0}};

    if (nx <= 0 || ny <= 0 || !(scale_arcsec > 0) || !isfinite(scale_arcsec))
        return rapid_fail(err, RAPID_E_ARG,
                          "TAN grid: bad size %dx%d or scale %g\"/pixel", nx,
                          ny, scale_arcsec);
    crval[0] = norm_ra(ra);
    crval[1] = dec;
    /* The middle of the grid, 0-based (n-1)/2, is FITS pixel (n+1)/2. */
    crpix[0] = (nx + 1) / 2.0;
    crpix[1] = (ny + 1) / 2.0;
    cd[0][0] = -scale_arcsec / 3600.0; /* east to the left */
    cd[1][1] = scale_arcsec / 3600.0;  /* north up */
    return rapid_wcs_from_terms(w, crval, crpix, cd, NULL, nx, ny, err);
}

/* ------------------------------------------------------------ transforms */

/* WCSLIB 7.12 leaks the message of an error record that it overwrites, so
 * the records are emptied before every call that may fill them again. */
static void clear_wcslib_errors(struct wcsprm *p)
{
    wcserr_clear(&p->err);
    wcserr_clear(&p->lin.err);
    wcserr_clear(&p->cel.err);
    wcserr_clear(&p->cel.prj.err);
    if (p->lin.dispre)
        wcserr_clear(&p->lin.dispre->err);
    if (p->lin.disseq)
        wcserr_clear(&p->lin.disseq->err);
}

static int call_wcslib(struct wcsprm *p, enum direction dir, int m,
                       const double *in, double *out, int *stat)
{
    double img[2 * CHUNK], phi[CHUNK], theta[CHUNK];

    clear_wcslib_errors(p);
    if (dir == PIX2SKY)
        return wcsp2s(p, m, 2, in, img, phi, theta, out, stat);
    return wcss2p(p, m, 2, in, phi, theta, img, out, stat);
}

/* bad[k] = 0 for a transformed point, else why not.  When a distortion
 * cannot be inverted WCSLIB fails the whole call, so a failed call is
 * repeated point by point to lose only the bad points. */
static void run_chunk(struct wcsprm *p, enum direction dir, int m,
                      const double *in, double *out, int *bad)
{
    int stat[CHUNK], k, st;

    for (k = 0; k < m && bad[k]; k++)
        ;
    if (k == m)
        return;
    st = call_wcslib(p, dir, m, in, out, stat);
    if (st && st != WCSERR_BAD_PIX && st != WCSERR_BAD_WORLD && m > 1) {
        for (k = 0; k < m; k++)
            if (!bad[k])
                run_chunk(p, dir, 1, in + 2 * k, out + 2 * k, bad + k);
        return;
    }
    for (k = 0; k < m; k++) {
        if (bad[k])
            continue;
        if (st && (m == 1 || stat[k]))
            bad[k] = st;
        else if (!isfinite(out[2 * k]) || !isfinite(out[2 * k + 1]))
            bad[k] = dir == PIX2SKY ? WCSERR_BAD_PIX : WCSERR_BAD_WORLD;
    }
}

/* Inputs in WCSLIB's layout: FITS pixels, or world in axis order.  Points
 * WCSLIB must not see are replaced by the reference point and marked. */
static void pack(const struct wcsprm *p, enum direction dir, int m,
                 const double *a, const double *b, double *in, int *bad)
{
    int k;

    for (k = 0; k < m; k++) {
        int ok = isfinite(a[k]) && isfinite(b[k]) &&
                 (dir == PIX2SKY || fabs(b[k]) <= 90.0);
        bad[k] = ok ? 0 : BAD_INPUT;
        if (dir == PIX2SKY) {
            in[2 * k] = ok ? a[k] + 1.0 : p->crpix[0];
            in[2 * k + 1] = ok ? b[k] + 1.0 : p->crpix[1];
        } else {
            in[2 * k + p->lng] = ok ? a[k] : p->crval[p->lng];
            in[2 * k + p->lat] = ok ? b[k] : p->crval[p->lat];
        }
    }
}

static void unpack(const struct wcsprm *p, enum direction dir, int m,
                   const double *out, const int *bad, double *c, double *d)
{
    int k;

    for (k = 0; k < m; k++) {
        if (bad[k]) {
            c[k] = d[k] = NAN;
        } else if (dir == PIX2SKY) {
            c[k] = norm_ra(out[2 * k + p->lng]);
            d[k] = out[2 * k + p->lat];
        } else {
            c[k] = out[2 * k] - 1.0;
            d[k] = out[2 * k + 1] - 1.0;
        }
    }
}

static void describe(struct wcsprm *p, enum direction dir, const double *in,
                     int bad, char *why, size_t sz)
{
    const char *detail;
    double out[2];
    int stat[1], st;

    if (bad == BAD_INPUT) {
        snprintf(why, sz, "%s", dir == PIX2SKY ? "coordinates not finite"
                               : "coordinates not finite or |Dec| > 90");
        return;
    }
    /* Again, alone, so that WCSLIB's message is about this point. */
    st = call_wcslib(p, dir, 1, in, out, stat);
    detail = wcslib_detail(p);
    snprintf(why, sz, "%s%s%s%s", wcslib_msg(p, st ? st : bad),
             detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
}

static int transform(rapid_wcs *w, enum direction dir, int n, const double *a,
                     const double *b, double *c, double *d, rapid_err *err)
{
    const char *name = dir == PIX2SKY ? "pix2sky" : "sky2pix";
    struct wcsprm *p = w ? w->prm : NULL;
    double in[2 * CHUNK], out[2 * CHUNK], bad_a = 0, bad_b = 0;
    int bad[CHUNK], i, k, m, nbad = 0;
    char why[RAPID_ERR_MAX / 2] = "";

    if (!p || n < 0 || (n > 0 && (!a || !b || !c || !d)))
        return rapid_fail(err, RAPID_E_ARG, "%s: no WCS or bad arguments",
                          name);
    for (i = 0; i < n; i += m) {
        m = n - i < CHUNK ? n - i : CHUNK;
        pack(p, dir, m, a + i, b + i, in, bad);
        run_chunk(p, dir, m, in, out, bad);
        for (k = 0; k < m; k++)
            if (bad[k] && nbad++ == 0) {
                bad_a = a[i + k];
                bad_b = b[i + k];
                describe(p, dir, in + 2 * k, bad[k], why, sizeof why);
            }
        unpack(p, dir, m, out, bad, c + i, d + i);
    }
    if (nbad)
        return rapid_fail(err, RAPID_E_WCS,
                          "%s: %d of %d points could not be transformed, the "
                          "first (%.10g, %.10g): %s",
                          name, nbad, n, bad_a, bad_b, why);
    return 0;
}

int rapid_wcs_pix2sky(rapid_wcs *w, int n, const double *x, const double *y,
                      double *ra, double *dec, rapid_err *err)
{
    return transform(w, PIX2SKY, n, x, y, ra, dec, err);
}

int rapid_wcs_sky2pix(rapid_wcs *w, int n, const double *ra, const double *dec,
                      double *x, double *y, rapid_err *err)
{
    return transform(w, SKY2PIX, n, ra, dec, x, y, err);
}

/* ------------------------------------------------------------- footprint */

/* Direction from (ra0, dec0) to (ra, dec) as an angle in degrees,
 * counter-clockwise from east in the (dRA cos(dec), dDec) plane; exact on
 * the sphere, so it holds next to the poles too. */
static double bearing(double ra0, double dec0, double ra, double dec)
{
    double da = (ra - ra0) * D2R, d0 = dec0 * D2R, d1 = dec * D2R;
    double east = sin(da) * cos(d1);
    double north = cos(d0) * sin(d1) - sin(d0) * cos(d1) * cos(da);
    double a = atan2(north, east) * R2D;

    return a < 0 ? a + 360.0 : a;
}

/* How far direction a is from 225 degrees.  A side pointing exactly at
 * 225 makes a tie; the corner clockwise of 225 then wins, so that rounding
 * does not decide. */
static double from_225(double a)
{
    double d = fmod(a - 225.0 + 540.0, 360.0) - 180.0;

    return fabs(d) + (d > 0 ? 1e-9 : 0.0);
}

/* Corners 1..4 of (ra, dec) reordered counter-clockwise around point 0,
 * starting with the one nearest the (-RA, -Dec) direction, 225 degrees. */
static void order_corners(const double *ra, const double *dec, double out_ra[5],
                          double out_dec[5])
{
    double ang[4], rel[4];
    int idx[4] = {0, 1, 2, 3}, k, j, start = 0;

    for (k = 0; k < 4; k++) {
        ang[k] = bearing(ra[0], dec[0], ra[k + 1], dec[k + 1]);
        if (from_225(ang[k]) < from_225(ang[start]))
            start = k;
    }
    for (k = 0; k < 4; k++)
        rel[k] = fmod(ang[k] - ang[start] + 720.0, 360.0);
    rel[start] = -1.0; /* first even if rounding puts it near 360 */
    for (k = 1; k < 4; k++) /* insertion sort of four indices */
        for (j = k; j > 0 && rel[idx[j]] < rel[idx[j - 1]]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    out_ra[0] = ra[0];
    out_dec[0] = dec[0];
    for (k = 0; k < 4; k++) {
        out_ra[k + 1] = ra[idx[k] + 1];
        out_dec[k + 1] = dec[idx[k] + 1];
    }
}

int rapid_wcs_footprint(rapid_wcs *w, int nx, int ny, double ra[5],
                        double dec[5], rapid_err *err)
{
    double x[5], y[5], sra[5], sdec[5];
    int rc;

    if (!w || !ra || !dec)
        return rapid_fail(err, RAPID_E_ARG, "footprint: NULL argument");
    if (nx <= 0 || ny <= 0) {
        nx = w->nx;
        ny = w->ny;
    }
    if (nx <= 0 || ny <= 0)
        return rapid_fail(err, RAPID_E_ARG,
                          "footprint: image size unknown (give nx, ny)");
    /* The centre, then the outer edges of the corner pixels. */
    x[0] = (nx - 1) / 2.0;
    y[0] = (ny - 1) / 2.0;
    x[1] = x[4] = -0.5;
    x[2] = x[3] = nx - 0.5;
    y[1] = y[2] = -0.5;
    y[3] = y[4] = ny - 0.5;
    if ((rc = rapid_wcs_pix2sky(w, 5, x, y, sra, sdec, err)) != 0) {
        rapid_err_prefix(err, "footprint of %dx%d image", nx, ny);
        return rc;
    }
    order_corners(sra, sdec, ra, dec);
    return 0;
}

/* ------------------------------------------------------------------ misc */

double rapid_wcs_pixscale(const rapid_wcs *w)
{
    if (!w)
        return NAN;
    return sqrt(fabs(w->cd[0][0] * w->cd[1][1] - w->cd[0][1] * w->cd[1][0])) *
           3600.0;
}

/* Vincenty's form of the great-circle distance: atan2 keeps full precision
 * from coincident to antipodal points, where acos and haversine lose it. */
double rapid_sky_distance(double ra1, double dec1, double ra2, double dec2)
{
    double da = (ra2 - ra1) * D2R, d1 = dec1 * D2R, d2 = dec2 * D2R;
    double sd1 = sin(d1), cd1 = cos(d1), sd2 = sin(d2), cd2 = cos(d2);
    double x = cd2 * sin(da);
    double y = cd1 * sd2 - sd1 * cd2 * cos(da);
    double z = sd1 * sd2 + cd1 * cd2 * cos(da);

    return atan2(sqrt(x * x + y * y), z) * R2D;
}
