/* sim_defects.c - a detector's map of bad pixels (rapid_sim_defect_map),
 * and what each kind does to the charge a pixel collects.
 *
 * The Roman project gives about 1.7 % of the H4RG pixels as unusable.
 * Here that fraction of each detector is made bad, the same pixels on
 * every pointing (the map depends on the seed and the SCA only): a
 * quarter of it in row or column segments, a quarter in compact clusters,
 * half as single pixels.  Each feature is one kind: dead (35 %: no
 * charge at all), hot (40 %: extra dark current, log-uniform 0.5-50 e/s)
 * or low QE (25 %: 10-70 % of the normal response to light).  Every bad
 * pixel also gets DO_NOT_USE, as the mask of a calibration pipeline has it.
 */
#include <math.h>

#include "rapid/dq.h"
#include "rapid/rng.h"
#include "sim_internal.h"

/* Random streams of the map ("DEFC" + n), per detector, any pointing. */
#define RNG_MAP 0x4445464300000001ull
#define RNG_PIXEL 0x4445464300000002ull
#define RNG_ANY_POINTING UINT64_MAX

#define DEFECT_FRACTION 0.017
#define DEFECT_BITS (RAPID_DQ_DEAD | RAPID_DQ_HOT | RAPID_DQ_LOW_QE)

typedef struct defect_map {
    int nx, ny;
    uint32_t *dq;
    long flagged, target;
} defect_map;

static void flag(defect_map *m, int x, int y, uint32_t bits)
{
    uint32_t *d;

    if (x < 0 || y < 0 || x >= m->nx || y >= m->ny || m->flagged >= m->target)
        return;
    d = &m->dq[(size_t)y * m->nx + x];
    if (*d & DEFECT_BITS)
        return;
    *d |= bits | RAPID_DQ_DO_NOT_USE;
    m->flagged++;
}

static uint32_t defect_kind(rapid_rng *g)
{
    double u = rapid_rng_uniform(g);

    return u < 0.35 ? RAPID_DQ_DEAD : u < 0.75 ? RAPID_DQ_HOT : RAPID_DQ_LOW_QE;
}

/* A row or column segment of 8 up to side/8 (at most 512) pixels. */
static void add_line(defect_map *m, rapid_rng *g, uint32_t bits)
{
    int side = m->nx < m->ny ? m->nx : m->ny, i;
    double lmax = fmin(fmax(side / 8.0, 8), 512);
    int len = (int)(8 + rapid_rng_uniform(g) * (lmax - 8));
    int x = (int)(rapid_rng_uniform(g) * m->nx);
    int y = (int)(rapid_rng_uniform(g) * m->ny);
    int vertical = rapid_rng_uniform(g) < 0.5;

    for (i = 0; i < len; i++)
        flag(m, vertical ? x : x + i, vertical ? y + i : y, bits);
}

/* Most of the pixels within 0.8-3 pixels of a centre. */
static void add_cluster(defect_map *m, rapid_rng *g, uint32_t bits)
{
    double r = 0.8 + 2.2 * rapid_rng_uniform(g);
    double xc = rapid_rng_uniform(g) * m->nx, yc = rapid_rng_uniform(g) * m->ny;
    int i, j, R = (int)ceil(r);

    for (j = -R; j <= R; j++)
        for (i = -R; i <= R; i++)
            if (i * i + j * j <= r * r && rapid_rng_uniform(g) < 0.8)
                flag(m, (int)xc + i, (int)yc + j, bits);
}

long rapid_sim_defect_map(const rapid_sim_config *c, int sca, int nx, int ny,
                          uint32_t *dq)
{
    defect_map m = {nx, ny, dq, 0, 0};
    rapid_rng g;

    if (!c || !c->defects || nx <= 0 || ny <= 0 || !dq)
        return 0;
    m.target = lround(DEFECT_FRACTION * (double)nx * ny);
    rapid_rng_derive(&g, c->seed, RNG_ANY_POINTING, (uint64_t)sca, RNG_MAP);
    while (m.flagged < m.target) {
        uint32_t bits = defect_kind(&g);
        if (m.flagged < m.target / 4)
            add_line(&m, &g, bits);
        else if (m.flagged < m.target / 2)
            add_cluster(&m, &g, bits);
        else
            flag(&m, (int)(rapid_rng_uniform(&g) * nx),
                 (int)(rapid_rng_uniform(&g) * ny), bits);
    }
    return m.flagged;
}

/* A uniform deviate that belongs to pixel i of the detector. */
static double pixel_uniform(const rapid_sim_config *c, int sca, size_t i)
{
    rapid_rng g;

    rapid_rng_derive(&g, c->seed, (uint64_t)i, (uint64_t)sca, RNG_PIXEL);
    return rapid_rng_uniform(&g);
}

double sim_defect_charge(const rapid_sim_config *c, int sca, size_t i,
                         uint32_t dq, double light_e, double dark_e,
                         double exptime)
{
    if (dq & RAPID_DQ_DEAD)
        return 0;
    if (dq & RAPID_DQ_LOW_QE)
        return (0.1 + 0.6 * pixel_uniform(c, sca, i)) * light_e + dark_e;
    if (dq & RAPID_DQ_HOT)
        return light_e + dark_e +
               SIM_HOT_RATE_MIN * pow(SIM_HOT_RATE_MAX / SIM_HOT_RATE_MIN,
                                      pixel_uniform(c, sca, i)) * exptime;
    return light_e + dark_e;
}
