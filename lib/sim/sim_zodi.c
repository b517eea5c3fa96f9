/* sim_zodi.c - the zodiacal light of a pointing: where it looks relative
 * to the Sun and the ecliptic, and how bright the zodiacal light is there.
 *
 * The brightness is Leinert et al. (1998, A&AS 127, 1), Table 17: the
 * zodiacal light seen from 1 AU as a function of ecliptic latitude beta
 * and helio-ecliptic longitude lambda - lambda_sun (the table the HST
 * instrument handbooks' zodiacal backgrounds come from), interpolated
 * bilinearly in the logarithm of the brightness and expressed relative to
 * its value at the ecliptic pole, which is the same on every date.  The
 * shape is taken to be the same at every wavelength of the WFI (Leinert's
 * colour changes across the sky are a few per cent at these angles).
 *
 * The Sun's ecliptic longitude is the Astronomical Almanac's low-precision
 * formula (0.01 degree from 1950 to 2050), referred back to the ecliptic
 * and equinox of J2000 like the pointing's coordinates.
 */
#include <math.h>

#include "sim_internal.h"

#define D2R (M_PI / 180.0)
#define R2D (180.0 / M_PI)
#define OBLIQUITY_J2000 23.4392911 /* degrees */
#define MJD_J2000 51544.5
/* General precession in longitude, degrees per Julian century. */
#define PRECESSION 1.396971

#define NDL 19
#define NB 11
static const double tab_dl[NDL] = {0,  5,  10, 15, 20,  25,  30,  35,  40,  45,
                                   60, 75, 90, 105, 120, 135, 150, 165, 180};
static const double tab_b[NB] = {0, 5, 10, 15, 20, 25, 30, 45, 60, 75, 90};
/* Leinert et al. (1998) Table 17, 500 nm, 10^-8 W m^-2 sr^-1 um^-1; rows
 * lambda - lambda_sun, columns beta.  0: not given (within ~15 degrees of
 * the Sun), never reached (see zodi_cell). */
static const double tab_i[NDL][NB] = {
    {0, 0, 0, 3140, 1610, 985, 640, 275, 150, 100, 77},
    {0, 0, 0, 2940, 1540, 945, 625, 271, 150, 100, 77},
    {0, 0, 4740, 2470, 1370, 865, 590, 264, 148, 100, 77},
    {11500, 6780, 3440, 1860, 1110, 755, 525, 251, 146, 100, 77},
    {6400, 4480, 2410, 1410, 910, 635, 454, 237, 141, 99, 77},
    {3840, 2830, 1730, 1100, 749, 545, 410, 223, 136, 97, 77},
    {2480, 1870, 1220, 845, 615, 467, 365, 207, 131, 95, 77},
    {1650, 1270, 910, 680, 510, 397, 320, 193, 125, 93, 77},
    {1180, 940, 700, 530, 416, 338, 282, 179, 120, 92, 77},
    {910, 730, 555, 442, 356, 292, 250, 166, 116, 90, 77},
    {505, 442, 352, 292, 243, 209, 183, 134, 104, 86, 77},
    {338, 317, 269, 227, 196, 172, 151, 116, 93, 82, 77},
    {259, 251, 225, 193, 166, 147, 132, 104, 86, 79, 77},
    {212, 210, 197, 170, 150, 133, 119, 96, 82, 77, 77},
    {188, 186, 177, 154, 138, 125, 113, 90, 77, 74, 77},
    {179, 178, 166, 147, 134, 122, 110, 90, 77, 73, 77},
    {179, 178, 165, 148, 137, 127, 116, 96, 79, 72, 77},
    {196, 192, 179, 165, 151, 141, 131, 104, 82, 72, 77},
    {230, 212, 195, 178, 163, 148, 134, 105, 83, 72, 77},
};
#define POLE 77.0

double rapid_sun_longitude(double mjd)
{
    double n = mjd - MJD_J2000;
    double l = 280.460 + 0.9856474 * n, g = (357.528 + 0.9856003 * n) * D2R;
    double lam = fmod(l + 1.915 * sin(g) + 0.020 * sin(2 * g), 360.0);

    return lam < 0 ? lam + 360.0 : lam;
}

void rapid_ecliptic_from_equatorial(double ra, double dec, double *lambda,
                                    double *beta)
{
    double e = OBLIQUITY_J2000 * D2R, a = ra * D2R, d = dec * D2R;
    double sb = sin(d) * cos(e) - cos(d) * sin(e) * sin(a);
    double lam = atan2(cos(d) * sin(a) * cos(e) + sin(d) * sin(e),
                       cos(d) * cos(a)) * R2D;

    *beta = asin(fmax(-1.0, fmin(1.0, sb))) * R2D;
    *lambda = lam < 0 ? lam + 360.0 : lam;
}

/* The index i of the interval [t[i], t[i+1]) holding v (clamped; the last
 * one is closed), and where v lies in it, 0..1. */
static int bracket(const double *t, int n, double v, double *u)
{
    int i = 0;

    v = fmax(t[0], fmin(t[n - 1], v));
    while (i < n - 2 && v >= t[i + 1])
        i++;
    *u = (v - t[i]) / (t[i + 1] - t[i]);
    return i;
}

double rapid_zodi_relative(double beta, double dlambda)
{
    double b = fabs(beta), dl = fmod(fabs(dlambda), 360.0), u, v, l00, l01,
           l10, l11;
    int i, j;

    if (!isfinite(b) || !isfinite(dl))
        return NAN;
    if (b > 90)
        b = 90;
    if (dl > 180)
        dl = 360 - dl;
    /* The table leaves out the corner next to the Sun: there the level of
     * the nearest longitude it gives is used (Roman never looks there). */
    if (b < 10 && dl < 15)
        dl = 15;
    else if (b < 15 && dl < 10)
        dl = 10;
    i = bracket(tab_dl, NDL, dl, &u);
    j = bracket(tab_b, NB, b, &v);
    l00 = log(tab_i[i][j]);
    l01 = log(tab_i[i][j + 1]);
    l10 = log(tab_i[i + 1][j]);
    l11 = log(tab_i[i + 1][j + 1]);
    return exp((1 - u) * ((1 - v) * l00 + v * l01) +
               u * ((1 - v) * l10 + v * l11)) / POLE;
}

double rapid_zodi_factor(double ra, double dec, double mjd, rapid_zodi_geom *g)
{
    double lam, beta, sun, dl, cose;

    rapid_ecliptic_from_equatorial(ra, dec, &lam, &beta);
    sun = rapid_sun_longitude(mjd) -
          PRECESSION * (mjd - MJD_J2000) / 36525.0;
    dl = fmod(fabs(lam - sun), 360.0);
    if (dl > 180)
        dl = 360 - dl;
    if (g) {
        cose = cos(beta * D2R) * cos(dl * D2R);
        g->beta = beta;
        g->dlambda = dl;
        g->elong = acos(fmax(-1.0, fmin(1.0, cose))) * R2D;
    }
    return rapid_zodi_relative(beta, dl);
}

double rapid_sim_sky_rate(const rapid_sim_pointing *p, int sca)
{
    const rapid_filter *f = p->filter;
    double mid = p->mjd + p->exptime / 2 / 86400.0;
    double zodi = f->zodi * rapid_zodi_factor(p->ra, p->dec, mid, NULL);

    return (zodi + f->thermal) *
           pow(10.0, 0.4 * (rapid_zero_point(f, sca) - f->zp_ab));
}
