/* test_wcs.c - WCS from headers (TAN, TAN-SIP, TPV), transforms, footprints,
 * headers written back, and the errors.
 *
 * Expected sky positions come from an evaluation written out here (the SIP
 * or TPV polynomial, the CD matrix, then the gnomonic deprojection as a
 * rotation of a tangent-plane vector), not from WCSLIB. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "rapid/wcs.h"

#define PI 3.14159265358979323846
#define D2R (PI / 180.0)
#define R2D (180.0 / PI)

/* A Roman-like detector: 4088 pixels square, 0.11"/pixel. */
#define NDET 4088
#define SCALE (0.11 / 3600.0)
#define ROT 33.0

/* ------------------------------------------------------------- helpers */

static void put(rapid_header *h, const char *key, double v)
{
    assert_int_equal(rapid_header_set_double(h, key, v, NULL), 0);
}

static void put_long(rapid_header *h, const char *key, long v)
{
    assert_int_equal(rapid_header_set_long(h, key, v, NULL), 0);
}

static void put_str(rapid_header *h, const char *key, const char *v)
{
    assert_int_equal(rapid_header_set_str(h, key, v, NULL), 0);
}

/* Angular offset in degrees, fine for the tiny differences compared here. */
static double offset_deg(double ra1, double dec1, double ra2, double dec2)
{
    double dra = remainder(ra1 - ra2, 360.0) * cos(dec1 * D2R);
    return hypot(dra, dec1 - dec2);
}

/* Gnomonic deprojection: the sky direction of the tangent-plane point
 * (xi east, eta north, degrees) is centre + xi*east + eta*north. */
static void tan_deproject(double ra0, double dec0, double xi, double eta,
                          double *ra, double *dec)
{
    double a = ra0 * D2R, d = dec0 * D2R, v[3];
    double c[3] = {cos(d) * cos(a), cos(d) * sin(a), sin(d)};
    double e[3] = {-sin(a), cos(a), 0.0};
    double n[3] = {-sin(d) * cos(a), -sin(d) * sin(a), cos(d)};
    int k;

    for (k = 0; k < 3; k++)
        v[k] = c[k] + xi * D2R * e[k] + eta * D2R * n[k];
    *ra = atan2(v[1], v[0]) * R2D;
    if (*ra < 0)
        *ra += 360.0;
    *dec = atan2(v[2], hypot(v[0], v[1])) * R2D;
}

/* CD for `scale` deg/pixel, east left, rotated by rot degrees. */
static void rotated_cd(double scale, double rot, int flip, double cd[2][2])
{
    double c = cos(rot * D2R), s = sin(rot * D2R);

    cd[0][0] = -scale * c * (flip ? -1 : 1);
    cd[0][1] = scale * s;
    cd[1][0] = scale * s * (flip ? -1 : 1);
    cd[1][1] = scale * c;
}

static void put_linear(rapid_header *h, const double crval[2],
                       const double crpix[2], double cd[2][2])
{
    put(h, "CRVAL1", crval[0]);
    put(h, "CRVAL2", crval[1]);
    put(h, "CRPIX1", crpix[0]);
    put(h, "CRPIX2", crpix[1]);
    put(h, "CD1_1", cd[0][0]);
    put(h, "CD1_2", cd[0][1]);
    put(h, "CD2_1", cd[1][0]);
    put(h, "CD2_2", cd[1][1]);
}

/* ------------------------------------------------------------- the SIP case */

/* Coefficients a[p][q] of A_p_q, b[p][q] of B_p_q: a few pixels at the
 * corners, as for a wide-field camera. */
static const double sip_a[5][5] = {
    {0, 0, 1.5e-7, -1.5e-11, -6.0e-15},
    {0, -2.4e-7, 4.5e-11, 3.0e-15, 0},
    {3.6e-7, -3.0e-11, 6.0e-15, 0, 0},
    {6.0e-11, -3.0e-15, 0, 0, 0},
    {9.0e-15, 0, 0, 0, 0}};
static const double sip_b[5][5] = {
    {0, 0, -2.7e-7, 6.6e-11, 3.6e-15},
    {0, 3.3e-7, -2.1e-11, 9.0e-15, 0},
    {-1.2e-7, 5.4e-11, -3.0e-15, 0, 0},
    {-1.8e-11, 7.5e-15, 0, 0, 0},
    {-4.5e-15, 0, 0, 0, 0}};

typedef struct sip_case {
    double crval[2], crpix[2], cd[2][2];
} sip_case;

static sip_case sip_at(double ra, double dec)
{
    sip_case s;

    s.crval[0] = ra;
    s.crval[1] = dec;
    s.crpix[0] = s.crpix[1] = (NDET + 1) / 2.0;
    rotated_cd(SCALE, ROT, 0, s.cd);
    return s;
}

/* with_rev: also AP/BP, a rough (second-order) inverse as SIP fitters
 * write it. */
static void sip_header(rapid_header *h, const sip_case *s, int with_rev)
{
    char key[32];
    int p, q;

    rapid_header_init(h);
    put_long(h, "NAXIS", 2);
    put_long(h, "NAXIS1", NDET);
    put_long(h, "NAXIS2", NDET);
    put_str(h, "CTYPE1", "RA---TAN-SIP");
    put_str(h, "CTYPE2", "DEC--TAN-SIP");
    put_linear(h, s->crval, s->crpix, (double(*)[2])s->cd);
    put_long(h, "A_ORDER", 4);
    put_long(h, "B_ORDER", 4);
    for (p = 0; p <= 4; p++)
        for (q = 0; p + q <= 4; q++) {
            if (p + q < 2)
                continue;
            snprintf(key, sizeof key, "A_%d_%d", p, q);
            put(h, key, sip_a[p][q]);
            snprintf(key, sizeof key, "B_%d_%d", p, q);
            put(h, key, sip_b[p][q]);
        }
    if (!with_rev)
        return;
    put_long(h, "AP_ORDER", 2);
    put_long(h, "BP_ORDER", 2);
    for (p = 0; p <= 2; p++) {
        q = 2 - p;
        snprintf(key, sizeof key, "AP_%d_%d", p, q);
        put(h, key, -sip_a[p][q]);
        snprintf(key, sizeof key, "BP_%d_%d", p, q);
        put(h, key, -sip_b[p][q]);
    }
}

static double poly(const double c[5][5], int order, double u, double v)
{
    double sum = 0;
    int p, q;

    for (p = 0; p <= order; p++)
        for (q = 0; p + q <= order; q++)
            sum += c[p][q] * pow(u, p) * pow(v, q);
    return sum;
}

/* 0-based pixel -> sky, by hand: SIP on (u, v) relative to CRPIX, CD, TAN. */
static void sip_by_hand(const sip_case *s, int order, double x, double y,
                        double *ra, double *dec)
{
    double u = x + 1.0 - s->crpix[0], v = y + 1.0 - s->crpix[1];
    double du = poly(sip_a, order, u, v), dv = poly(sip_b, order, u, v);
    double xi = s->cd[0][0] * (u + du) + s->cd[0][1] * (v + dv);
    double eta = s->cd[1][0] * (u + du) + s->cd[1][1] * (v + dv);

    tan_deproject(s->crval[0], s->crval[1], xi, eta, ra, dec);
}

/* A 41x41 grid over the detector, outer pixel edges included. */
#define NG 41
#define NGRID (NG * NG)

static void grid(int nx, int ny, double *x, double *y)
{
    int i, j;

    for (j = 0; j < NG; j++)
        for (i = 0; i < NG; i++) {
            x[j * NG + i] = -0.5 + nx * (double)i / (NG - 1);
            y[j * NG + i] = -0.5 + ny * (double)j / (NG - 1);
        }
}

/* Largest pixel error of pix -> sky -> pix over the grid. */
static double round_trip(rapid_wcs *w, int nx, int ny)
{
    static double x[NGRID], y[NGRID], ra[NGRID], dec[NGRID], x2[NGRID],
        y2[NGRID];
    rapid_err err = RAPID_ERR_INIT;
    double worst = 0;
    int k;

    grid(nx, ny, x, y);
    assert_int_equal(rapid_wcs_pix2sky(w, NGRID, x, y, ra, dec, &err), 0);
    assert_int_equal(rapid_wcs_sky2pix(w, NGRID, ra, dec, x2, y2, &err), 0);
    for (k = 0; k < NGRID; k++)
        worst = fmax(worst, hypot(x2[k] - x[k], y2[k] - y[k]));
    return worst;
}

/* Largest sky difference (deg) between two WCSs over the grid. */
static double compare(rapid_wcs *w1, rapid_wcs *w2, int nx, int ny)
{
    static double x[NGRID], y[NGRID], r1[NGRID], d1[NGRID], r2[NGRID],
        d2[NGRID];
    double worst = 0;
    int k;

    grid(nx, ny, x, y);
    assert_int_equal(rapid_wcs_pix2sky(w1, NGRID, x, y, r1, d1, NULL), 0);
    assert_int_equal(rapid_wcs_pix2sky(w2, NGRID, x, y, r2, d2, NULL), 0);
    for (k = 0; k < NGRID; k++)
        worst = fmax(worst, offset_deg(r1[k], d1[k], r2[k], d2[k]));
    return worst;
}

static void load(rapid_wcs *w, const rapid_header *h)
{
    rapid_err err = RAPID_ERR_INIT;
    int rc = rapid_wcs_from_header(w, h, &err);

    if (rc)
        fail_msg("rapid_wcs_from_header: %s", err.msg);
}

/* ----------------------------------------------------------------- SIP tests */

static void test_sip_matches_hand_evaluation(void **state)
{
    static double x[NGRID], y[NGRID], ra[NGRID], dec[NGRID];
    rapid_header h;
    rapid_wcs w = RAPID_WCS_INIT;
    sip_case s = sip_at(150.1, 2.2);
    double worst = 0, shift = 0, r0, d0;
    int k;

    (void)state;
    sip_header(&h, &s, 0);
    load(&w, &h);
    assert_int_equal(w.kind, RAPID_WCS_TAN_SIP);
    assert_int_equal(w.nx, NDET);
    assert_int_equal(w.ny, NDET);
    assert_int_equal(w.sip.a_order, 4);
    assert_int_equal(w.sip.b_order, 4);
    assert_int_equal(w.sip.ap_order, 0);
    assert_true(w.sip.a[2][0] == sip_a[2][0]);
    assert_true(w.sip.b[1][3] == sip_b[1][3]);
    assert_true(w.crpix[0] == s.crpix[0] && w.crval[1] == s.crval[1]);
    assert_true(w.cd[0][1] == s.cd[0][1] && w.cd[1][0] == s.cd[1][0]);
    assert_true(fabs(rapid_wcs_pixscale(&w) - 0.11) < 1e-12);

    grid(NDET, NDET, x, y);
    assert_int_equal(rapid_wcs_pix2sky(&w, NGRID, x, y, ra, dec, NULL), 0);
    for (k = 0; k < NGRID; k++) {
        double hr, hd;
        sip_by_hand(&s, 4, x[k], y[k], &hr, &hd);
        worst = fmax(worst, offset_deg(ra[k], dec[k], hr, hd));
        /* how far the distortion moves this point, in pixels */
        sip_by_hand(&s, 0, x[k], y[k], &r0, &d0);
        shift = fmax(shift, offset_deg(hr, hd, r0, d0) / SCALE);
    }
    print_message("SIP: pix2sky vs hand evaluation %.2e deg; distortion up to "
                  "%.2f px\n", worst, shift);
    assert_true(shift > 2 && shift < 10); /* the case is realistic */
    assert_true(worst < 1e-9);
    rapid_wcs_release(&w);
    rapid_header_release(&h);
}

static void test_sip_round_trip(void **state)
{
    rapid_header h;
    rapid_wcs w = RAPID_WCS_INIT;
    const double where[3][2] = {{150.1, 2.2}, {0.01, -0.5}, {210.0, 89.9}};
    int c, rev;

    (void)state;
    for (c = 0; c < 3; c++)
        for (rev = 0; rev < 2; rev++) {
            sip_case s = sip_at(where[c][0], where[c][1]);
            double worst;
            sip_header(&h, &s, rev);
            load(&w, &h);
            worst = round_trip(&w, NDET, NDET);
            print_message("SIP at (%g, %g)%s: round trip %.2e px\n",
                          where[c][0], where[c][1], rev ? " with AP/BP" : "",
                          worst);
            assert_true(worst < 1e-6);
            rapid_wcs_release(&w);
            rapid_header_release(&h);
        }
}

/* sky -> pixel against positions made by hand: the inversion is exact, not
 * just consistent with WCSLIB's own forward transform. */
static void test_sip_sky2pix_inverts_hand_evaluation(void **state)
{
    enum { N = 500 };
    static double x[N], y[N], ra[N], dec[N], px[N], py[N];
    rapid_header h;
    rapid_wcs w = RAPID_WCS_INIT;
    sip_case s = sip_at(150.1, 2.2);
    uint64_t seed = 42;
    double worst = 0;
    int k;

    (void)state;
    sip_header(&h, &s, 1);
    load(&w, &h);
    for (k = 0; k < N; k++) {
        x[k] = -0.5 + NDET * test_uniform(&seed);
        y[k] = -0.5 + NDET * test_uniform(&seed);
        if (k < 4) { /* the outer corners */
            x[k] = k & 1 ? NDET - 0.5 : -0.5;
            y[k] = k & 2 ? NDET - 0.5 : -0.5;
        }
        sip_by_hand(&s, 4, x[k], y[k], &ra[k], &dec[k]);
    }
    assert_int_equal(rapid_wcs_sky2pix(&w, N, ra, dec, px, py, NULL), 0);
    for (k = 0; k < N; k++)
        worst = fmax(worst, hypot(px[k] - x[k], py[k] - y[k]));
    print_message("SIP: sky2pix of hand-made positions %.2e px\n", worst);
    assert_true(worst < 1e-6);
    rapid_wcs_release(&w);
    rapid_header_release(&h);
}

/* A_ORDER with some terms left out: they are zero. */
static void test_sip_missing_terms_are_zero(void **state)
{
    static double x[NGRID], y[NGRID], ra[NGRID], dec[NGRID];
    rapid_header h;
    rapid_wcs w = RAPID_WCS_INIT;
    sip_case s = sip_at(33.0, -20.0);
    double worst = 0;
    int k;

    (void)state;
    sip_header(&h, &s, 0);
    assert_true(rapid_header_delete(&h, "A_3_0") == 1);
    assert_true(rapid_header_delete(&h, "B_0_4") == 1);
    load(&w, &h);
    assert_true(w.sip.a[3][0] == 0.0 && w.sip.b[0][4] == 0.0);
    assert_true(w.sip.a[2][0] == sip_a[2][0]);
    grid(NDET, NDET, x, y);
    assert_int_equal(rapid_wcs_pix2sky(&w, NGRID, x, y, ra, dec, NULL), 0);
    for (k = 0; k < NGRID; k++) {
        double u = x[k] + 1 - s.crpix[0], v = y[k] + 1 - s.crpix[1], hr, hd;
        double du = poly(sip_a, 4, u, v) - sip_a[3][0] * u * u * u;
        double dv = poly(sip_b, 4, u, v) - sip_b[0][4] * pow(v, 4);
        tan_deproject(s.crval[0], s.crval[1],
                      s.cd[0][0] * (u + du) + s.cd[0][1] * (v + dv),
                      s.cd[1][0] * (u + du) + s.cd[1][1] * (v + dv), &hr, &hd);
        worst = fmax(worst, offset_deg(ra[k], dec[k], hr, hd));
    }
    assert_true(worst < 1e-9);
    rapid_wcs_release(&w);
    rapid_header_release(&h);
}

static void test_from_terms_and_copy(void **state)
{
    rapid_header h;
    rapid_wcs w = RAPID_WCS_INIT, t = RAPID_WCS_INIT, c = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    sip_case s = sip_at(280.0, -60.0);
    double cd[2][2];

    (void)state;
    sip_header(&h, &s, 1);
    load(&w, &h);
    memcpy(cd, s.cd, sizeof cd);
    assert_int_equal(rapid_wcs_from_terms(&t, s.crval, s.crpix, cd, &w.sip,
                                          NDET, NDET, &err), 0);
    assert_int_equal(t.kind, RAPID_WCS_TAN_SIP);
    assert_int_equal(t.sip.ap_order, 2);
    assert_true(compare(&w, &t, NDET, NDET) < 1e-12);

    assert_int_equal(rapid_wcs_copy(&c, &w, &err), 0);
    rapid_wcs_release(&w); /* the copy owns its own WCSLIB state */
    assert_null(w.prm);
    assert_int_equal(c.kind, RAPID_WCS_TAN_SIP);
    assert_int_equal(c.nx, NDET);
    assert_true(compare(&c, &t, NDET, NDET) < 1e-12);
    assert_true(round_trip(&c, NDET, NDET) < 1e-6);

    /* plain TAN from the same terms differs by the distortion */
    rapid_wcs_release(&t);
    assert_int_equal(rapid_wcs_from_terms(&t, s.crval, s.crpix, cd, NULL, 0,
                                          0, &err), 0);
    assert_int_equal(t.kind, RAPID_WCS_TAN);
    assert_true(compare(&c, &t, NDET, NDET) > 2 * SCALE);

    rapid_wcs_release(&t);
    rapid_wcs_release(&c);
    rapid_wcs_release(&c); /* twice is harmless */
    rapid_header_release(&h);
}

/* ---------------------------------------------------------------- TPV */

static const double tpv1[11] = {2e-5,  1.0003, -2e-4, 0.004, 0.012, -0.008,
                                0.005, 0.03,   0.0,   -0.02, 0.01};
static const double tpv2[11] = {-1e-5, 0.9997, 3e-4, 0.0,  0.006, 0.01,
                                -0.004, 0.0,   0.02, 0.0,  0.015};

static void tpv_header(rapid_header *h, double crval[2], double crpix[2],
                       double cd[2][2])
{
    char key[32];
    int m;

    rapid_header_init(h);
    put_long(h, "NAXIS1", 2048);
    put_long(h, "NAXIS2", 4096);
    put_str(h, "CTYPE1", "RA---TPV");
    put_str(h, "CTYPE2", "DEC--TPV");
    put_linear(h, crval, crpix, cd);
    for (m = 0; m <= 10; m++) {
        snprintf(key, sizeof key, "PV1_%d", m);
        put(h, key, tpv1[m]);
        snprintf(key, sizeof key, "PV2_%d", m);
        put(h, key, tpv2[m]);
    }
}

/* The TPV polynomial up to third order; PVi_3 multiplies r. */
static void tpv_by_hand(const double crval[2], const double crpix[2],
                        double cd[2][2], double px, double py, double *ra,
                        double *dec)
{
    double u = px + 1 - crpix[0], v = py + 1 - crpix[1];
    double x = cd[0][0] * u + cd[0][1] * v, y = cd[1][0] * u + cd[1][1] * v;
    double r = hypot(x, y);
    const double *a = tpv1, *b = tpv2;
    double xi = a[0] + a[1] * x + a[2] * y + a[3] * r + a[4] * x * x +
                a[5] * x * y + a[6] * y * y + a[7] * x * x * x +
                a[8] * x * x * y + a[9] * x * y * y + a[10] * y * y * y;
    double eta = b[0] + b[1] * y + b[2] * x + b[3] * r + b[4] * y * y +
                 b[5] * y * x + b[6] * x * x + b[7] * y * y * y +
                 b[8] * y * y * x + b[9] * y * x * x + b[10] * x * x * x;

    tan_deproject(crval[0], crval[1], xi, eta, ra, dec);
}

static void test_tpv(void **state)
{
    static double x[NGRID], y[NGRID], ra[NGRID], dec[NGRID];
    rapid_header h;
    rapid_wcs w = RAPID_WCS_INIT;
    double crval[2] = {35.0, -4.5}, crpix[2] = {1024.5, 2048.5}, cd[2][2];
    double worst = 0, trip, shift = 0;
    int k;

    (void)state;
    rotated_cd(0.263 / 3600, -7.0, 0, cd);
    tpv_header(&h, crval, crpix, cd);
    load(&w, &h);
    assert_int_equal(w.kind, RAPID_WCS_TPV);
    assert_true(w.cd[0][1] == cd[0][1]);
    grid(2048, 4096, x, y);
    assert_int_equal(rapid_wcs_pix2sky(&w, NGRID, x, y, ra, dec, NULL), 0);
    for (k = 0; k < NGRID; k++) {
        double hr, hd, lr, ld;
        tpv_by_hand(crval, crpix, cd, x[k], y[k], &hr, &hd);
        worst = fmax(worst, offset_deg(ra[k], dec[k], hr, hd));
        tan_deproject(crval[0], crval[1],
                      cd[0][0] * (x[k] + 1 - crpix[0]) +
                          cd[0][1] * (y[k] + 1 - crpix[1]),
                      cd[1][0] * (x[k] + 1 - crpix[0]) +
                          cd[1][1] * (y[k] + 1 - crpix[1]),
                      &lr, &ld);
        shift = fmax(shift, offset_deg(hr, hd, lr, ld) * 3600);
    }
    trip = round_trip(&w, 2048, 4096);
    print_message("TPV: pix2sky vs hand evaluation %.2e deg (distortion up to "
                  "%.1f\"); round trip %.2e px\n", worst, shift, trip);
    assert_true(shift > 1.0);
    assert_true(worst < 1e-9);
    assert_true(trip < 1e-6);
    rapid_wcs_release(&w);
    rapid_header_release(&h);
}

/* ---------------------------------------------------------- TAN grids */

static void test_tan_grid(void **state)
{
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    const int nx = 1000, ny = 801;
    double x[3], y[3], ra[3], dec[3];

    (void)state;
    assert_int_equal(rapid_wcs_tan_grid(&w, 210.5, -33.3, nx, ny, 0.2, &err),
                     0);
    assert_int_equal(w.kind, RAPID_WCS_TAN);
    assert_int_equal(w.nx, nx);
    assert_int_equal(w.ny, ny);
    assert_true(w.crpix[0] == 500.5 && w.crpix[1] == 401.0);
    assert_true(w.cd[0][0] == -0.2 / 3600 && w.cd[1][1] == 0.2 / 3600);
    assert_true(w.cd[0][1] == 0 && w.cd[1][0] == 0);
    assert_true(fabs(rapid_wcs_pixscale(&w) - 0.2) < 1e-12);
    /* centre, one pixel up, one pixel right */
    x[0] = (nx - 1) / 2.0;
    y[0] = (ny - 1) / 2.0;
    x[1] = x[0];
    y[1] = y[0] + 1;
    x[2] = x[0] + 1;
    y[2] = y[0];
    assert_int_equal(rapid_wcs_pix2sky(&w, 3, x, y, ra, dec, &err), 0);
    assert_true(offset_deg(ra[0], dec[0], 210.5, -33.3) < 1e-12);
    assert_true(dec[1] > dec[0]); /* north is +y */
    assert_true(fabs(ra[1] - ra[0]) < 1e-12);
    assert_true(ra[2] < ra[0]); /* east is -x */
    assert_true(fabs(rapid_sky_distance(ra[0], dec[0], ra[1], dec[1]) * 3600 -
                     0.2) < 1e-9);
    assert_true(fabs(rapid_sky_distance(ra[0], dec[0], ra[2], dec[2]) * 3600 -
                     0.2) < 1e-9);
    assert_true(round_trip(&w, nx, ny) < 1e-6);
    rapid_wcs_release(&w);
}

/* A grid across RA 0 and one next to (and one around) the pole. */
static void test_wrap_and_pole(void **state)
{
    rapid_wcs w = RAPID_WCS_INIT;
    double ra[4] = {359.995, -0.005, 720 - 0.005, 0.004}, dec[4] = {0.3, 0.3,
                                                                   0.3, 0.3};
    double x[4], y[4], sr[1], sd[1];
    double cx = (NDET - 1) / 2.0, cy = cx;

    (void)state;
    assert_int_equal(rapid_wcs_tan_grid(&w, -0.001, 0.3, NDET, NDET, 0.11,
                                        NULL), 0);
    assert_true(fabs(w.crval[0] - 359.999) < 1e-12);
    assert_int_equal(rapid_wcs_sky2pix(&w, 4, ra, dec, x, y, NULL), 0);
    assert_true(fabs(x[0] - x[1]) < 1e-9 && fabs(x[0] - x[2]) < 1e-9);
    assert_true(x[3] < cx && x[0] > cx); /* RA 0.004 is east: left */
    assert_int_equal(rapid_wcs_pix2sky(&w, 1, &x[3], &y[3], sr, sd, NULL), 0);
    assert_true(fabs(sr[0] - 0.004) < 1e-10); /* not 360.004 */
    assert_true(round_trip(&w, NDET, NDET) < 1e-6);
    rapid_wcs_release(&w);

    /* a CRVAL1 below 0 still gives RA in [0, 360) on both sides of 0 */
    {
        double crval[2] = {-0.001, 0.3}, crpix[2] = {100, 100}, cd[2][2];
        double px[2] = {0, 198}, py[2] = {0, 0}, sra[2], sdec[2];
        rotated_cd(1e-4, 0, 0, cd);
        assert_int_equal(rapid_wcs_from_terms(&w, crval, crpix, cd, NULL, 0, 0,
                                              NULL), 0);
        assert_int_equal(rapid_wcs_pix2sky(&w, 2, px, py, sra, sdec, NULL), 0);
        assert_true(sra[0] > 0 && sra[0] < 0.01);
        assert_true(sra[1] > 359.9 && sra[1] < 360);
        rapid_wcs_release(&w);
    }

    assert_int_equal(rapid_wcs_tan_grid(&w, 45, 89.9, NDET, NDET, 0.11, NULL),
                     0);
    assert_true(round_trip(&w, NDET, NDET) < 1e-6);
    rapid_wcs_release(&w);

    /* the pole itself is on this image */
    assert_int_equal(rapid_wcs_tan_grid(&w, 300, 89.99, NDET, NDET, 0.11,
                                        NULL), 0);
    assert_true(round_trip(&w, NDET, NDET) < 1e-6);
    ra[0] = 17;
    dec[0] = 90;
    assert_int_equal(rapid_wcs_sky2pix(&w, 1, ra, dec, x, y, NULL), 0);
    assert_true(fabs(x[0] - cx) < 1e-6); /* pole straight up from the centre */
    assert_true(fabs((y[0] - cy) * 0.11 / 3600 - 0.01) < 1e-9);
    rapid_wcs_release(&w);
}

/* ---------------------------------------------------------- footprints */

/* Direction of (ra, dec) from (ra0, dec0) in standard coordinates, degrees
 * counter-clockwise from east. */
static double direction(double ra0, double dec0, double ra, double dec)
{
    double da = (ra - ra0) * D2R, d0 = dec0 * D2R, d = dec * D2R;
    double xi = cos(d) * sin(da);
    double eta = cos(d0) * sin(d) - sin(d0) * cos(d) * cos(da);
    double a = atan2(eta, xi) * R2D;

    return a < 0 ? a + 360 : a;
}

static double from_225(double a)
{
    double d = fabs(a - 225.0);
    return d > 180 ? 360 - d : d;
}

/* Corners go counter-clockwise, starting with the one nearest 225 degrees,
 * and are the four outer pixel corners. */
static void check_footprint(rapid_wcs *w, int nx, int ny, int own_size)
{
    double ra[5], dec[5], a[4], cr[4], cd[4], step, total = 0;
    double cx[4] = {-0.5, nx - 0.5, nx - 0.5, -0.5};
    double cy[4] = {-0.5, -0.5, ny - 0.5, ny - 0.5};
    rapid_err err = RAPID_ERR_INIT;
    int k, j, found;

    assert_int_equal(rapid_wcs_footprint(w, own_size ? 0 : nx,
                                         own_size ? 0 : ny, ra, dec, &err),
                     0);
    assert_int_equal(rapid_wcs_pix2sky(w, 4, cx, cy, cr, cd, &err), 0);
    for (k = 0; k < 4; k++) {
        a[k] = direction(ra[0], dec[0], ra[k + 1], dec[k + 1]);
        for (j = 0, found = 0; j < 4; j++)
            found += ra[k + 1] == cr[j] && dec[k + 1] == cd[j];
        assert_int_equal(found, 1);
    }
    /* (a side pointing at 225 makes a tie: either corner may start) */
    for (k = 1; k < 4; k++)
        if (from_225(a[0]) > from_225(a[k]) + 1e-8)
            fail_msg("corner 1 at %.6f deg, corner %d nearer 225 at %.6f",
                     a[0], k + 1, a[k]);
    for (k = 0; k < 4; k++) {
        step = fmod(a[(k + 1) % 4] - a[k] + 360, 360);
        assert_true(step > 0 && step < 180);
        total += step;
    }
    assert_true(fabs(total - 360) < 1e-9);
}

static void test_footprint_north_up(void **state)
{
    rapid_wcs w = RAPID_WCS_INIT;
    double ra[5], dec[5], x, y, r, d;
    const int nx = 200, ny = 100;

    (void)state;
    assert_int_equal(rapid_wcs_tan_grid(&w, 120, 30, nx, ny, 1.0, NULL), 0);
    assert_int_equal(rapid_wcs_footprint(&w, 0, 0, ra, dec, NULL), 0);
    /* centre */
    assert_true(offset_deg(ra[0], dec[0], 120, 30) < 1e-12);
    /* the tile order: (ramin,decmin) (ramax,decmin) (ramax,decmax)
     * (ramin,decmax) */
    assert_true(ra[1] < ra[0] && ra[4] < ra[0] && ra[2] > ra[0] &&
                ra[3] > ra[0]);
    assert_true(dec[1] < dec[0] && dec[2] < dec[0] && dec[3] > dec[0] &&
                dec[4] > dec[0]);
    /* east-left: (ramin, decmin) is the bottom right pixel corner */
    x = nx - 0.5;
    y = -0.5;
    assert_int_equal(rapid_wcs_pix2sky(&w, 1, &x, &y, &r, &d, NULL), 0);
    assert_true(r == ra[1] && d == dec[1]);
    check_footprint(&w, nx, ny, 0);
    rapid_wcs_release(&w);

    /* across RA 0: ramin is just below 360, ramax just above 0 */
    assert_int_equal(rapid_wcs_tan_grid(&w, 0.0, -10, nx, ny, 1.0, NULL), 0);
    assert_int_equal(rapid_wcs_footprint(&w, 0, 0, ra, dec, NULL), 0);
    assert_true(ra[0] == 0.0);
    assert_true(ra[1] > 359.9 && ra[4] > 359.9 && ra[2] < 0.1 && ra[3] < 0.1);
    assert_true(dec[1] < -10 && dec[2] < -10 && dec[3] > -10 && dec[4] > -10);
    check_footprint(&w, nx, ny, 0);
    rapid_wcs_release(&w);
}

static void test_footprint_rotated(void **state)
{
    const double rots[] = {0, 10, 33, 44.9, 45.1, 90, 135, 200, 300, 359};
    const double where[3][2] = {{150, 2}, {0.001, -40}, {77, 89.9}};
    double crpix[2] = {1000.5, 600.5}, cd[2][2];
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_header h;
    int r, f, c;

    (void)state;
    for (c = 0; c < 3; c++)
        for (f = 0; f < 2; f++)
            for (r = 0; r < (int)(sizeof rots / sizeof rots[0]); r++) {
                rotated_cd(0.5 / 3600, rots[r], f, cd);
                assert_int_equal(rapid_wcs_from_terms(&w, where[c], crpix, cd,
                                                      NULL, 2000, 1200, NULL),
                                 0);
                check_footprint(&w, 2000, 1200, 0);
                rapid_wcs_release(&w);
            }
    /* and the distorted detector */
    {
        sip_case s = sip_at(10, 10);
        sip_header(&h, &s, 0);
        load(&w, &h);
        check_footprint(&w, NDET, NDET, 1);
        rapid_wcs_release(&w);
        rapid_header_release(&h);
    }
}

/* ------------------------------------------------------ writing headers */

/* Cards of some other WCS that to_header must clear away. */
static void stale_cards(rapid_header *h)
{
    put_str(h, "OBJECT", "field 7");
    put(h, "CDELT1", -1.0);
    put(h, "CDELT2", 1.0);
    put(h, "PC1_1", 1.0);
    put(h, "CROTA2", 12.0);
    put(h, "CRVAL1A", 3.0);
    put_str(h, "CTYPE1A", "RA---SIN");
    put(h, "LONPOLE", 180.0);
    put(h, "EQUINOX", 2000.0);
    put_long(h, "A_ORDER", 2);
    put(h, "A_2_0", 1e-3);
    put(h, "AP_1_0", 1e-3);
    put(h, "PV2_1", 0.5);
    put_str(h, "DATE-OBS", "2027-01-01T00:00:00");
}

static void check_rewrite(rapid_wcs *w, int nx, int ny)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_wcs back = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double worst;

    stale_cards(&h);
    assert_int_equal(rapid_wcs_to_header(w, &h, &err), 0);
    assert_true(rapid_header_has(&h, "OBJECT"));
    assert_true(rapid_header_has(&h, "DATE-OBS"));
    assert_int_equal(rapid_header_has(&h, "LONPOLE"),
                     w->kind == RAPID_WCS_OTHER);
    assert_false(rapid_header_has(&h, "CDELT1"));
    assert_false(rapid_header_has(&h, "PC1_1"));
    assert_false(rapid_header_has(&h, "CROTA2"));
    assert_false(rapid_header_has(&h, "CTYPE1A"));
    assert_false(rapid_header_has(&h, "CRVAL1A"));
    assert_false(rapid_header_has(&h, "EQUINOX"));
    assert_false(rapid_header_has(&h, "AP_1_0"));
    assert_true(rapid_header_has(&h, "CD1_2"));
    assert_true(rapid_header_has(&h, "CUNIT1"));
    assert_true(rapid_header_has(&h, "RADESYS"));
    assert_int_equal(rapid_header_has(&h, "A_ORDER"),
                     w->kind == RAPID_WCS_TAN_SIP);
    assert_int_equal(rapid_header_has(&h, "PV2_1"), w->kind == RAPID_WCS_TPV);
    load(&back, &h);
    assert_int_equal(back.kind, w->kind);
    assert_memory_equal(&back.sip, &w->sip, sizeof back.sip);
    worst = compare(w, &back, nx, ny);
    print_message("to_header -> from_header (kind %d): %.2e deg\n", w->kind,
                  worst);
    assert_true(worst < 1e-10);
    rapid_wcs_release(&back);
    rapid_header_release(&h);
}

static void test_to_header_round_trip(void **state)
{
    rapid_header h;
    rapid_wcs w = RAPID_WCS_INIT;
    double crval[2] = {35.0, -4.5}, crpix[2] = {1024.5, 2048.5}, cd[2][2];
    char ctype[80];
    sip_case s = sip_at(150.1, 2.2);

    (void)state;
    assert_int_equal(rapid_wcs_tan_grid(&w, 359.9, -89.0, 3000, 2000, 0.4,
                                        NULL), 0);
    check_rewrite(&w, 3000, 2000);
    rapid_wcs_release(&w);

    sip_header(&h, &s, 1);
    load(&w, &h);
    check_rewrite(&w, NDET, NDET);
    rapid_wcs_release(&w);
    rapid_header_release(&h);

    rotated_cd(0.263 / 3600, -7.0, 0, cd);
    tpv_header(&h, crval, crpix, cd);
    load(&w, &h);
    check_rewrite(&w, 2048, 4096);
    rapid_wcs_release(&w);
    rapid_header_release(&h);

    /* any other projection keeps its CTYPE */
    rapid_header_init(&h);
    put_str(&h, "CTYPE1", "RA---SIN");
    put_str(&h, "CTYPE2", "DEC--SIN");
    put_linear(&h, crval, crpix, cd);
    load(&w, &h);
    assert_int_equal(w.kind, RAPID_WCS_OTHER);
    check_rewrite(&w, 2048, 4096);
    rapid_header_release(&h);
    rapid_header_init(&h);
    assert_int_equal(rapid_wcs_to_header(&w, &h, NULL), 0);
    assert_int_equal(rapid_header_get_str(&h, "CTYPE1", ctype, sizeof ctype,
                                          NULL), 0);
    assert_string_equal(ctype, "RA---SIN");
    rapid_wcs_release(&w);
    rapid_header_release(&h);
}

/* PC + CDELT (and a cube's third axis) give the effective CD. */
static void test_pc_cdelt(void **state)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_wcs w = RAPID_WCS_INIT, t = RAPID_WCS_INIT;
    double c = cos(20 * D2R), s = sin(20 * D2R);
    double crval[2] = {83.6, 22.0}, crpix[2] = {51, 61};
    double cd[2][2] = {{-1e-4 * c, -1e-4 * -s}, {2e-4 * s, 2e-4 * c}};

    (void)state;
    put_long(&h, "NAXIS", 3);
    put_long(&h, "NAXIS1", 100);
    put_long(&h, "NAXIS2", 120);
    put_long(&h, "NAXIS3", 5);
    put_str(&h, "CTYPE1", "RA---TAN");
    put_str(&h, "CTYPE2", "DEC--TAN");
    put_str(&h, "CTYPE3", "FREQ");
    put(&h, "CRVAL1", crval[0]);
    put(&h, "CRVAL2", crval[1]);
    put(&h, "CRVAL3", 1.4e9);
    put(&h, "CRPIX1", crpix[0]);
    put(&h, "CRPIX2", crpix[1]);
    put(&h, "CDELT1", -1e-4);
    put(&h, "CDELT2", 2e-4);
    put(&h, "PC1_1", c);
    put(&h, "PC1_2", -s);
    put(&h, "PC2_1", s);
    put(&h, "PC2_2", c);
    put_str(&h, "RADESYS", "FK5");
    put(&h, "EQUINOX", 2000.0);
    load(&w, &h);
    assert_int_equal(w.kind, RAPID_WCS_TAN);
    assert_int_equal(w.nx, 100);
    assert_int_equal(w.ny, 120);
    assert_true(fabs(w.cd[0][0] - cd[0][0]) < 1e-20);
    assert_true(fabs(w.cd[0][1] - cd[0][1]) < 1e-20);
    assert_true(fabs(w.cd[1][0] - cd[1][0]) < 1e-20);
    assert_true(fabs(w.cd[1][1] - cd[1][1]) < 1e-20);
    assert_int_equal(rapid_wcs_from_terms(&t, crval, crpix, cd, NULL, 100, 120,
                                          NULL), 0);
    assert_true(compare(&w, &t, 100, 120) < 1e-12);
    rapid_wcs_release(&w);
    rapid_wcs_release(&t);
    rapid_header_release(&h);
}

/* ---------------------------------------------------------------- errors */

static void expect_error(const rapid_header *h, const char *needle)
{
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;

    assert_int_equal(rapid_wcs_from_header(&w, h, &err), RAPID_E_WCS);
    assert_int_equal(err.code, RAPID_E_WCS);
    if (!strstr(err.msg, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", err.msg, needle);
    assert_null(w.prm);
    rapid_wcs_release(&w);
    /* and without an error record */
    assert_int_equal(rapid_wcs_from_header(&w, h, NULL), RAPID_E_WCS);
}

static void tan_header(rapid_header *h, const char *c1, const char *c2)
{
    double crval[2] = {10, 20}, crpix[2] = {100, 100}, cd[2][2];

    rotated_cd(1e-4, 0, 0, cd);
    rapid_header_init(h);
    put_str(h, "CTYPE1", c1);
    put_str(h, "CTYPE2", c2);
    put_linear(h, crval, crpix, cd);
}

static void test_header_errors(void **state)
{
    rapid_header h = RAPID_HEADER_INIT;
    sip_case s = sip_at(10, 10);

    (void)state;
    put_str(&h, "OBJECT", "no wcs here");
    put(&h, "CRVAL1", 10);
    expect_error(&h, "no celestial WCS in header (CTYPE1 missing)");
    rapid_header_release(&h);

    tan_header(&h, "RA---XXX", "DEC--XXX");
    expect_error(&h, "XXX"); /* WCSLIB's own words */
    rapid_header_release(&h);

    tan_header(&h, "RA---TAN", "");
    rapid_header_delete(&h, "CTYPE2");
    expect_error(&h, "CTYPE2 missing");
    rapid_header_release(&h);

    tan_header(&h, "LINEAR", "LINEAR");
    expect_error(&h, "no celestial WCS");
    rapid_header_release(&h);

    tan_header(&h, "GLON-TAN", "GLAT-TAN");
    expect_error(&h, "not RA/DEC");
    rapid_header_release(&h);

    tan_header(&h, "RA---TAN", "DEC--TAN");
    put(&h, "EQUINOX", 1950.0);
    expect_error(&h, "FK4");
    rapid_header_release(&h);

    tan_header(&h, "RA---TAN", "DEC--TAN");
    put_str(&h, "CD1_1", "abc"); /* WCSLIB would quietly use 0 */
    expect_error(&h, "CD1_1");
    rapid_header_release(&h);

    tan_header(&h, "RA---TAN", "DEC--TAN");
    put(&h, "CD1_1", 0);
    put(&h, "CD2_2", 0);
    expect_error(&h, "singular");
    rapid_header_release(&h);

    /* -SIP but no SIP terms: an error, not a silent plain TAN */
    tan_header(&h, "RA---TAN-SIP", "DEC--TAN-SIP");
    expect_error(&h, "no SIP coefficients");
    rapid_header_release(&h);

    sip_header(&h, &s, 0);
    rapid_header_delete(&h, "B_ORDER");
    expect_error(&h, "B_ORDER is missing");
    rapid_header_release(&h);

    sip_header(&h, &s, 0);
    put(&h, "A_3_2", 1e-16); /* beyond A_ORDER = 4 */
    expect_error(&h, "A_3_2");
    rapid_header_release(&h);

    sip_header(&h, &s, 0);
    put_long(&h, "A_ORDER", 12);
    expect_error(&h, "A_ORDER");
    rapid_header_release(&h);

    sip_header(&h, &s, 0);
    put_str(&h, "A_2_0", "x");
    expect_error(&h, "A_2_0");
    rapid_header_release(&h);
}

/* FITS WCS Paper I lets CRVAL and CRPIX default to 0 and CDELT to 1; WCSLIB
 * takes those defaults silently, so a header that lost one would put the
 * image somewhere else on the sky.  Each must be present, and named when
 * not. */
static void test_missing_linear_keys(void **state)
{
    static const char *const keys[] = {"CRVAL1", "CRVAL2", "CRPIX1",
                                       "CRPIX2", "CD1_1",  "CD2_2"};
    rapid_header h = RAPID_HEADER_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    sip_case s = sip_at(10, 10);
    char want[64];
    size_t k;

    (void)state;
    for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        tan_header(&h, "RA---TAN", "DEC--TAN");
        rapid_header_delete(&h, keys[k]);
        snprintf(want, sizeof want, "missing %s", keys[k]);
        expect_error(&h, want);
        rapid_header_release(&h);
        /* and under SIP, as in a Roman L2 image */
        sip_header(&h, &s, 0);
        rapid_header_delete(&h, keys[k]);
        expect_error(&h, want);
        rapid_header_release(&h);
    }

    /* every missing keyword is named */
    tan_header(&h, "RA---TAN", "DEC--TAN");
    rapid_header_delete(&h, "CRVAL2");
    rapid_header_delete(&h, "CRPIX1");
    rapid_header_delete(&h, "CD2_2");
    expect_error(&h, "missing CRVAL2, CRPIX1, CD2_2");
    rapid_header_release(&h);

    /* no scale at all */
    tan_header(&h, "RA---TAN", "DEC--TAN");
    rapid_header_delete(&h, "CD1_1");
    rapid_header_delete(&h, "CD1_2");
    rapid_header_delete(&h, "CD2_1");
    rapid_header_delete(&h, "CD2_2");
    expect_error(&h, "CDELT1");
    rapid_header_release(&h);

    /* PC + CDELT needs both CDELTs (PC defaults to the unit matrix) */
    tan_header(&h, "RA---TAN", "DEC--TAN");
    rapid_header_delete(&h, "CD1_1");
    rapid_header_delete(&h, "CD1_2");
    rapid_header_delete(&h, "CD2_1");
    rapid_header_delete(&h, "CD2_2");
    put(&h, "CDELT1", -1e-4);
    put(&h, "CDELT2", 1e-4);
    load(&w, &h);
    assert_true(fabs(w.cd[0][0] + 1e-4) < 1e-20);
    rapid_wcs_release(&w);
    rapid_header_delete(&h, "CDELT2");
    expect_error(&h, "missing CDELT2");
    /* CROTA2 with CDELT (the older AIPS form) is complete */
    put(&h, "CDELT2", 1e-4);
    put(&h, "CROTA2", 30.0);
    load(&w, &h);
    rapid_wcs_release(&w);
    rapid_header_release(&h);

    /* a CD matrix without off-diagonal terms is complete (they default
     * to 0), and so is one in the old CD00i00j form */
    tan_header(&h, "RA---TAN", "DEC--TAN");
    rapid_header_delete(&h, "CD1_2");
    rapid_header_delete(&h, "CD2_1");
    load(&w, &h);
    rapid_wcs_release(&w);
    rapid_header_delete(&h, "CD1_1");
    rapid_header_delete(&h, "CD2_2");
    put(&h, "CD001001", -1e-4);
    put(&h, "CD002002", 1e-4);
    load(&w, &h);
    assert_true(fabs(w.cd[1][1] - 1e-4) < 1e-20);
    rapid_wcs_release(&w);
    rapid_header_release(&h);
}

/* SIP coefficients under a plain TAN CTYPE: WCSLIB applies them, so the
 * WCS is TAN-SIP (as astropy reads it, too). */
static void test_sip_under_tan_ctype(void **state)
{
    rapid_header h;
    rapid_wcs w = RAPID_WCS_INIT, ref = RAPID_WCS_INIT;
    sip_case s = sip_at(10, 10);

    (void)state;
    sip_header(&h, &s, 0);
    load(&ref, &h);
    put_str(&h, "CTYPE1", "RA---TAN");
    put_str(&h, "CTYPE2", "DEC--TAN");
    load(&w, &h);
    assert_int_equal(w.kind, RAPID_WCS_TAN_SIP);
    assert_true(compare(&w, &ref, NDET, NDET) == 0.0);
    rapid_wcs_release(&w);
    rapid_wcs_release(&ref);
    rapid_header_release(&h);
}

/* u + A_2_0 u^2 folds over at u = -1/(2 A_2_0): sky positions beyond it
 * have no pixel.  WCSLIB fails a whole call then; only that point may be
 * lost. */
static void fold_case(void)
{
    rapid_wcs w = RAPID_WCS_INIT, t = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    rapid_sip sip;
    double crval[2] = {10, 10}, crpix[2] = {2044.5, 2044.5};
    double cd[2][2] = {{-3e-5, 0}, {0, 3e-5}};
    double x[3] = {100, 2043.5 - 1e6, 300}, y[3] = {100, 2000, 400};
    double ra[3], dec[3], px[3], py[3], r2[3], d2[3];

    memset(&sip, 0, sizeof sip);
    sip.a_order = sip.b_order = 2;
    sip.a[2][0] = 3.6e-7;
    assert_int_equal(rapid_wcs_from_terms(&w, crval, crpix, cd, &sip, 0, 0,
                                          NULL), 0);
    assert_int_equal(rapid_wcs_from_terms(&t, crval, crpix, cd, NULL, 0, 0,
                                          NULL), 0);
    assert_int_equal(rapid_wcs_pix2sky(&t, 3, x, y, ra, dec, NULL), 0);
    assert_int_equal(rapid_wcs_sky2pix(&w, 3, ra, dec, px, py, &err),
                     RAPID_E_WCS);
    print_message("fold: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "1 of 3 points"));
    assert_true(isnan(px[1]) && isnan(py[1]));
    assert_int_equal(rapid_wcs_pix2sky(&w, 1, &px[0], &py[0], r2, d2, NULL), 0);
    assert_int_equal(rapid_wcs_pix2sky(&w, 1, &px[2], &py[2], &r2[2], &d2[2],
                                       NULL), 0);
    assert_true(offset_deg(r2[0], d2[0], ra[0], dec[0]) < 1e-12);
    assert_true(offset_deg(r2[2], d2[2], ra[2], dec[2]) < 1e-12);
    rapid_wcs_release(&w);
    rapid_wcs_release(&t);
}

static void test_transform_errors(void **state)
{
    rapid_wcs w = RAPID_WCS_INIT, none = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double x[3] = {10, NAN, 30}, y[3] = {10, 20, INFINITY}, ra[5], dec[5];
    double r2[3] = {100, 280, 100}, d2[3] = {5, -5, 95}, px[3], py[3];
    double cd[2][2] = {{1, 2}, {2, 4}}, crval[2] = {10, 10};

    (void)state;
    assert_int_equal(rapid_wcs_tan_grid(&w, 100, 5, 100, 100, 1.0, NULL), 0);
    assert_int_equal(rapid_wcs_pix2sky(&w, 3, x, y, ra, dec, &err),
                     RAPID_E_WCS);
    assert_non_null(strstr(err.msg, "2 of 3 points"));
    assert_true(isfinite(ra[0]) && isfinite(dec[0]));
    assert_true(isnan(ra[1]) && isnan(dec[1]) && isnan(ra[2]));

    /* the antipode is not on a TAN image; Dec 95 is nowhere */
    rapid_err_clear(&err);
    assert_int_equal(rapid_wcs_sky2pix(&w, 3, r2, d2, px, py, &err),
                     RAPID_E_WCS);
    assert_non_null(strstr(err.msg, "sky2pix: 2 of 3"));
    print_message("sky2pix error: %s\n", err.msg);
    assert_true(fabs(px[0] - 49.5) < 1e-9 && fabs(py[0] - 49.5) < 1e-9);
    assert_true(isnan(px[1]) && isnan(py[1]) && isnan(px[2]));
    assert_int_equal(rapid_wcs_sky2pix(&w, 0, NULL, NULL, NULL, NULL, &err), 0);

    assert_int_equal(rapid_wcs_pix2sky(&none, 1, x, y, ra, dec, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_wcs_footprint(&none, 10, 10, ra, dec, NULL),
                     RAPID_E_ARG);
    rapid_wcs_release(&w);

    fold_case();

    assert_int_equal(rapid_wcs_from_terms(&w, crval, crval, cd, NULL, 0, 0,
                                          &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "singular"));
    assert_int_equal(rapid_wcs_tan_grid(&w, 0, 0, 0, 10, 1.0, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_wcs_tan_grid(&w, 0, 95, 10, 10, 1.0, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_wcs_footprint(&w, 0, 0, ra, dec, &err),
                     RAPID_E_ARG);
}

/* ------------------------------------------------------------- distance */

static void test_sky_distance(void **state)
{
    double tiny = 1e-10, d;

    (void)state;
    assert_true(fabs(rapid_sky_distance(10, 20, 10, 20)) == 0);
    /* inputs chosen to be exact in binary, so any error is the formula's */
    d = rapid_sky_distance(0, 60, tiny, 60);
    assert_true(fabs(d - tiny / 2) < 1e-9 * tiny);
    d = rapid_sky_distance(0, 0, 0, tiny);
    assert_true(fabs(d - tiny) < 1e-9 * tiny);
    /* at the pole cos(90 deg) is 6e-17, not 0: an error of 4e-15 deg */
    d = rapid_sky_distance(0, 90, 77, 90 - 1e-8);
    assert_true(fabs(d - (90 - (90 - 1e-8))) < 1e-14);
    assert_true(fabs(rapid_sky_distance(10, 20, 190, -20) - 180) < 1e-12);
    d = rapid_sky_distance(0, 0, 180 - 1e-7, 0);
    assert_true(fabs(d - (180 - 1e-7)) < 1e-12);
    d = rapid_sky_distance(0, 0, 180, 1e-8);
    assert_true(fabs(d - (180 - 1e-8)) < 1e-12);
    assert_true(fabs(rapid_sky_distance(0, 0, 90, 0) - 90) < 1e-12);
    assert_true(fabs(rapid_sky_distance(123, 90, 7, 0) - 90) < 1e-12);
    assert_true(fabs(rapid_sky_distance(359.9, 0, 0.1, 0) - 0.2) < 1e-12);
    assert_true(fabs(rapid_sky_distance(0, 89.9, 180, 89.9) - 0.2) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sip_matches_hand_evaluation),
        cmocka_unit_test(test_sip_round_trip),
        cmocka_unit_test(test_sip_sky2pix_inverts_hand_evaluation),
        cmocka_unit_test(test_sip_missing_terms_are_zero),
        cmocka_unit_test(test_from_terms_and_copy),
        cmocka_unit_test(test_tpv),
        cmocka_unit_test(test_tan_grid),
        cmocka_unit_test(test_wrap_and_pole),
        cmocka_unit_test(test_footprint_north_up),
        cmocka_unit_test(test_footprint_rotated),
        cmocka_unit_test(test_to_header_round_trip),
        cmocka_unit_test(test_pc_cdelt),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_missing_linear_keys),
        cmocka_unit_test(test_sip_under_tan_ctype),
        cmocka_unit_test(test_transform_errors),
        cmocka_unit_test(test_sky_distance),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
