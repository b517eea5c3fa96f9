/* sim_sn.c - supernovae from volumetric rates: cosmology, rates, luminosity
 * functions and observer-frame light curves.
 *
 * Cosmology: flat Lambda-CDM, H0 = 70 km/s/Mpc, Omega_m = 0.3.
 *
 * Rates per comoving Mpc^3 per rest-frame year (h70^3):
 *  - Type Ia: 2.5e-5 (1+z)^1.5 to z = 1, 9.7e-5 (1+z)^-0.5 beyond (the
 *    form the Roman supernova survey simulations use: Hounsell et al.
 *    2018, after Dilday et al. 2008 and Rodney et al. 2014);
 *  - core collapse: k_CC psi(z), with the cosmic star-formation history
 *    psi(z) = 0.015 (1+z)^2.7 / (1 + ((1+z)/2.9)^5.6) Msun/yr/Mpc^3 and
 *    k_CC = 0.0068 / Msun (Madau & Dickinson 2014), split into subtypes
 *    by the volume-limited fractions of Li et al. 2011 (II-P 48 %, II-L
 *    6.4 %, IIn 8.8 %, Ib/c with IIb 32.6 %, renormalised).
 * An explosion at redshift z is seen for (1+z) times its rest-frame
 * duration, and the number per unit observer time is the rate / (1+z)
 * times the comoving volume.  So the number shining in an image depends on
 * the rates and the depth, not on the survey's length.
 *
 * Peak absolute B magnitudes (Vega, Gaussian; Richardson et al. 2014, their
 * whole samples, so host extinction is in the spread): Ia -19.26 +- 0.51,
 * Ib/c -17.45 +- 1.12 (IIb -16.99 +- 0.92 folded in), II-L -17.98 +- 0.90,
 * II-P -16.75 +- 0.98, IIn -18.53 +- 1.36.
 *
 * Light curves: a rest-frame B-band template per type (rise from explosion
 * as a fireball, flux ~ t^2, then the post-peak decline of a table with the
 * types' usual shapes: Ia 1.1 mag in 15 d then the 0.015 mag/d tail, II-P a
 * plateau and its drop near 110 d, ...), and rest-frame colours: AB
 * magnitude relative to B from the far UV to K at B maximum, and the change
 * of that colour by 40 days after it (interpolated linearly in time, in
 * log wavelength between the tabulated points, constant beyond them).  At
 * peak these are the types' usual optical and near-infrared colours (Ia:
 * B-V ~ 0, the UV deficit below 0.4 um, M_H ~ -18.1 Vega; II: a hot,
 * blue continuum); with time every type reddens as B fades faster than
 * the red and near-infrared (for Ia the near-infrared second maximum keeps
 * I-K nearly level while B falls 2.7 mag).  An observed band sees the
 * rest wavelength lambda / (1+z) at its effective wavelength:
 *   m = M_B + dm_B(t_rest) + c(lambda/(1+z), t_rest) + mu(z) - 2.5 log10(1+z)
 * with t_rest = (t - t_peak) / (1+z), in AB (the last term from the
 * bandwidth compression of f_nu).  This is colour and time dilation to
 * first order, not synthetic photometry of spectral templates.
 */
#include <math.h>
#include <stddef.h>

#include "sim_internal.h"

#define C_KMS 299792.458
#define H0 70.0
#define OMEGA_M 0.3
#define DH (C_KMS / H0) /* Hubble distance, Mpc */
#define NDC 3000        /* comoving-distance table steps to SIM_SN_ZMAX */
#define B_VEGA_TO_AB (-0.09)

typedef struct lc_point {
    double t, v;
} lc_point;

typedef struct sn_type_model {
    const char *name;
    double mb, sigma;  /* peak absolute B (Vega) and spread */
    double rise;       /* explosion to B peak, rest-frame days */
    const lc_point *decline; /* (days after peak, mag below peak) */
    int ndecline;
    const double *c0, *d40;  /* colours (col_lambda) */
} sn_type_model;

static const lc_point ia_decl[] = {
    {0, 0},     {5, 0.2},   {10, 0.6},  {15, 1.1},  {20, 1.6},  {30, 2.3},
    {40, 2.7},  {60, 3.0},  {100, 3.6}, {200, 5.1}, {300, 6.6}};
static const lc_point iip_decl[] = {
    {0, 0},     {10, 0.3},  {20, 0.6},  {50, 1.2},  {90, 1.8},
    {110, 2.2}, {120, 4.0}, {150, 4.4}, {300, 5.9}};
static const lc_point iil_decl[] = {
    {0, 0}, {20, 1.0}, {50, 2.2}, {100, 3.5}, {150, 4.5}, {300, 6.5}};
static const lc_point iin_decl[] = {
    {0, 0}, {50, 1.0}, {100, 2.0}, {200, 3.5}, {300, 5.0}};
static const lc_point ibc_decl[] = {
    {0, 0}, {10, 0.7}, {20, 1.6}, {30, 2.2}, {60, 2.9}, {100, 3.6},
    {300, 6.6}};

/* Colours: AB magnitude relative to rest B at these rest wavelengths
 * (um), at B maximum (c0) and their change by 40 days after it (d40). */
#define NCOL 10
static const double col_lambda[NCOL] = {0.20, 0.26, 0.365, 0.445, 0.551,
                                        0.658, 0.806, 1.22, 1.63, 2.19};
static const double ia_c0[NCOL] = {3.0, 2.0, 0.48, 0, 0.11, 0.30, 0.84, 1.60,
                                   2.64, 2.80};
static const double ia_d40[NCOL] = {1.0, 1.0, 0.6, 0, -0.9, -1.3, -1.8, -2.3,
                                    -2.2, -2.2};
static const double ii_c0[NCOL] = {-0.6, -0.4, -0.2, 0, 0.15, 0.30, 0.55,
                                   1.00, 1.45, 1.80};
static const double ii_d40[NCOL] = {2.5, 2.0, 1.2, 0, -0.9, -1.3, -1.7, -2.0,
                                    -2.2, -2.3};
static const double iin_c0[NCOL] = {-0.3, -0.2, -0.1, 0, 0.15, 0.30, 0.55,
                                    1.00, 1.45, 1.80};
static const double iin_d40[NCOL] = {0.8, 0.6, 0.4, 0, -0.4, -0.6, -0.8, -1.0,
                                     -1.1, -1.2};
static const double ibc_c0[NCOL] = {2.0, 1.2, 0.4, 0, 0.05, 0.25, 0.6, 1.2,
                                    1.8, 2.1};
static const double ibc_d40[NCOL] = {1.0, 0.8, 0.5, 0, -0.9, -1.3, -1.7, -2.0,
                                     -2.1, -2.2};
#define COLOUR_DAYS 40.0

#define NPTS(a) ((int)(sizeof(a) / sizeof(a)[0]))

static const sn_type_model models[SIM_SN_NTYPES] = {
    [SIM_SN_IA] = {"Ia", -19.26, 0.51, 18.0, ia_decl, NPTS(ia_decl), ia_c0,
                   ia_d40},
    [SIM_SN_IIP] = {"II-P", -16.75, 0.98, 10.0, iip_decl, NPTS(iip_decl),
                    ii_c0, ii_d40},
    [SIM_SN_IIL] = {"II-L", -17.98, 0.90, 12.0, iil_decl, NPTS(iil_decl),
                    ii_c0, ii_d40},
    [SIM_SN_IIN] = {"IIn", -18.53, 1.36, 20.0, iin_decl, NPTS(iin_decl),
                    iin_c0, iin_d40},
    [SIM_SN_IBC] = {"Ib/c", -17.45, 1.12, 15.0, ibc_decl, NPTS(ibc_decl),
                    ibc_c0, ibc_d40},
};

/* Fractions of the core-collapse rate (Li et al. 2011). */
static const double cc_frac[SIM_SN_NTYPES] = {
    [SIM_SN_IIP] = 0.482, [SIM_SN_IIL] = 0.064, [SIM_SN_IIN] = 0.088,
    [SIM_SN_IBC] = 0.326};

const char *sim_sn_type_name(int type)
{
    return type > 0 && type < SIM_SN_NTYPES ? models[type].name : "?";
}

double sim_sn_peak_mb(int type, double *sigma)
{
    if (!(type > 0 && type < SIM_SN_NTYPES))
        return NAN;
    if (sigma)
        *sigma = models[type].sigma;
    return models[type].mb;
}

double sim_sn_rise_days(int type)
{
    return type > 0 && type < SIM_SN_NTYPES ? models[type].rise : 0;
}

double sim_sn_duration(int type)
{
    const sn_type_model *m;

    if (!(type > 0 && type < SIM_SN_NTYPES))
        return 0;
    m = &models[type];
    return m->rise + m->decline[m->ndecline - 1].t;
}

static double hubble_e(double z)
{
    return sqrt(OMEGA_M * (1 + z) * (1 + z) * (1 + z) + 1 - OMEGA_M);
}

/* Comoving distance, Mpc: Simpson's rule on a fixed grid of NDC steps
 * over [0, z] (exact to 1e-9 relative for these smooth integrands). */
double sim_sn_comoving_mpc(double z)
{
    int n = 2 * (int)ceil(NDC * z / SIM_SN_ZMAX / 2), k;
    double h, s;

    if (!(z > 0))
        return 0;
    if (n < 8)
        n = 8;
    h = z / n;
    s = 1 + 1 / hubble_e(z);
    for (k = 1; k < n; k++)
        s += (k & 1 ? 4.0 : 2.0) / hubble_e(k * h);
    return DH * s * h / 3;
}

double sim_sn_distmod(double z)
{
    /* D_L in Mpc -> 5 log10(D_L / 10 pc) */
    return 5 * log10((1 + z) * sim_sn_comoving_mpc(z)) + 25;
}

double sim_sn_dvdz(double z)
{
    double dc = sim_sn_comoving_mpc(z);

    return DH * dc * dc / hubble_e(z);
}

double sim_sn_rate(int type, double z)
{
    double psi;

    if (!(z >= 0))
        return 0;
    if (type == SIM_SN_IA)
        return z <= 1 ? 2.5e-5 * pow(1 + z, 1.5) : 9.7e-5 / sqrt(1 + z);
    if (!(type > 0 && type < SIM_SN_NTYPES))
        return 0;
    psi = 0.015 * pow(1 + z, 2.7) / (1 + pow((1 + z) / 2.9, 5.6));
    return 0.0068 * psi * cc_frac[type] /
           (cc_frac[SIM_SN_IIP] + cc_frac[SIM_SN_IIL] + cc_frac[SIM_SN_IIN] +
            cc_frac[SIM_SN_IBC]);
}

/* Linear interpolation in a table, extrapolated with the end slopes. */
static double interp(const lc_point *p, int n, double t)
{
    int k;

    if (t <= p[0].t)
        k = 0;
    else if (t >= p[n - 1].t)
        k = n - 2;
    else
        for (k = 0; k < n - 2 && p[k + 1].t < t; k++)
            ;
    return p[k].v + (p[k + 1].v - p[k].v) * (t - p[k].t) / (p[k + 1].t - p[k].t);
}

/* Colour (AB, relative to B) at rest wavelength lambda_um, t rest days
 * after B maximum. */
static double colour(const sn_type_model *m, double lambda_um, double t)
{
    double w = t <= 0 ? 0 : t >= COLOUR_DAYS ? 1 : t / COLOUR_DAYS, f;
    int k;

    if (lambda_um <= col_lambda[0])
        return m->c0[0] + w * m->d40[0];
    if (lambda_um >= col_lambda[NCOL - 1])
        return m->c0[NCOL - 1] + w * m->d40[NCOL - 1];
    for (k = 0; k < NCOL - 2 && col_lambda[k + 1] < lambda_um; k++)
        ;
    f = log(lambda_um / col_lambda[k]) /
        log(col_lambda[k + 1] / col_lambda[k]);
    return (1 - f) * (m->c0[k] + w * m->d40[k]) +
           f * (m->c0[k + 1] + w * m->d40[k + 1]);
}

/* B-band magnitude below peak at rest-frame day t from peak; +inf before
 * the explosion. */
static double b_curve(const sn_type_model *m, double t)
{
    double x;

    if (t < 0) {
        x = 1 + t / m->rise; /* fraction of the rise */
        if (!(x > 0))
            return INFINITY;
        return -5 * log10(x);
    }
    return interp(m->decline, m->ndecline, t);
}

double sim_sn_mag(int type, double z, double mu, double mb, double lambda_um,
                  double t_from_peak_obs)
{
    const sn_type_model *m;
    double t, db;

    if (!(type > 0 && type < SIM_SN_NTYPES) || !(z > 0) || !(lambda_um > 0))
        return INFINITY;
    m = &models[type];
    t = t_from_peak_obs / (1 + z);
    if (t > sim_sn_duration(type) - m->rise)
        return INFINITY;
    db = b_curve(m, t);
    if (!isfinite(db))
        return INFINITY;
    return mb + B_VEGA_TO_AB + db + colour(m, lambda_um / (1 + z), t) + mu -
           2.5 * log10(1 + z);
}
