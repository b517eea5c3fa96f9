/* sphere.h - small geometry on the celestial sphere, shared inside the
 * library (private: not installed).
 *
 * Two families, each one way of working with a patch of sky:
 *   - unit vectors and the tangent frame at a point (b towards it, e east,
 *     n north), for the simulator's many transforms of one pointing;
 *   - the gnomonic (TAN) plane about (ra0, dec0) and polygons on it, for
 *     the tile and database overlap tests: great circles project to
 *     straight lines there, so footprint edges stay straight.
 * Angles are degrees unless a name says radians; tangent-plane coordinates
 * are radians (tan of the angle from the centre), xi or x east, eta or y
 * north.  Static inline so that each caller compiles them as it did its
 * own copy: the results are the same to the last bit.
 */
#ifndef RAPID_SPHERE_H
#define RAPID_SPHERE_H

#include <math.h>

#include "rapid/error.h"

#define SPHERE_D2R (M_PI / 180.0)
#define SPHERE_R2D (180.0 / M_PI)

/* ---------------------------------------------- vectors and frames */

/* The unit vector towards (ra, dec). */
static inline void sphere_vec(double ra, double dec, double v[3])
{
    double a = ra * SPHERE_D2R, d = dec * SPHERE_D2R;

    v[0] = cos(d) * cos(a);
    v[1] = cos(d) * sin(a);
    v[2] = sin(d);
}

/* The direction of v (any length > 0): RA in [0, 360), Dec. */
static inline void sphere_radec(const double v[3], double *ra, double *dec)
{
    double a = atan2(v[1], v[0]) * SPHERE_R2D;

    *dec = atan2(v[2], hypot(v[0], v[1])) * SPHERE_R2D;
    if (a < 0)
        a += 360.0;
    *ra = a >= 360.0 ? 0.0 : a; /* -tiny + 360 rounds to 360 */
}

/* The tangent frame at (ra, dec): b towards it, e east and n north, all
 * unit vectors. */
static inline void sphere_frame(double ra, double dec, double b[3],
                                double e[3], double n[3])
{
    double a = ra * SPHERE_D2R, d = dec * SPHERE_D2R;

    sphere_vec(ra, dec, b);
    e[0] = -sin(a);
    e[1] = cos(a);
    e[2] = 0.0;
    n[0] = -sin(d) * cos(a);
    n[1] = -sin(d) * sin(a);
    n[2] = cos(d);
}

/* Gnomonic coordinates (xi, eta) of the unit vector v in the frame
 * (b, e, n); RAPID_E_RANGE if v lies on the far side of the sky (or
 * within 1e-9 of 90 degrees from b). */
static inline int sphere_project(const double b[3], const double e[3],
                                 const double n[3], const double v[3],
                                 double *xi, double *eta)
{
    double z = b[0] * v[0] + b[1] * v[1] + b[2] * v[2];

    if (!(z > 1e-9))
        return RAPID_E_RANGE;
    *xi = (e[0] * v[0] + e[1] * v[1] + e[2] * v[2]) / z;
    *eta = (n[0] * v[0] + n[1] * v[1] + n[2] * v[2]) / z;
    return 0;
}

/* The point b + xi e + eta n of the tangent plane, not normalised (enough
 * for sphere_radec, which takes any length). */
static inline void sphere_tangent_point(const double b[3], const double e[3],
                                        const double n[3], double xi,
                                        double eta, double w[3])
{
    int k;

    for (k = 0; k < 3; k++)
        w[k] = b[k] + xi * e[k] + eta * n[k];
}

/* The unit vector at gnomonic coordinates (xi, eta) of the frame: the
 * inverse of sphere_project. */
static inline void sphere_deproject(const double b[3], const double e[3],
                                    const double n[3], double xi, double eta,
                                    double v[3])
{
    double w[3], r;
    int k;

    sphere_tangent_point(b, e, n, xi, eta, w);
    r = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    for (k = 0; k < 3; k++)
        v[k] = w[k] / r;
}

/* ------------------------------------------- the gnomonic plane */

/* A point of the gnomonic plane, radians. */
typedef struct vec2 {
    double x, y;
} vec2;

/* (ra, dec) projected about (ra0, dec0); RAPID_E_RANGE if it is less
 * than ~1e-6 rad short of 90 degrees away, or beyond. */
static inline int sphere_gnomonic(double ra0, double dec0, double ra,
                                  double dec, vec2 *p)
{
    double sd0 = sin(dec0 * SPHERE_D2R), cd0 = cos(dec0 * SPHERE_D2R);
    double sd = sin(dec * SPHERE_D2R), cd = cos(dec * SPHERE_D2R);
    double dra = (ra - ra0) * SPHERE_D2R;
    double cosc = sd0 * sd + cd0 * cd * cos(dra);

    if (cosc <= 1e-6)
        return RAPID_E_RANGE;
    p->x = cd * sin(dra) / cosc;
    p->y = (cd0 * sd - sd0 * cd * cos(dra)) / cosc;
    return 0;
}

/* The inverse: the sky position of p (RA not wrapped: ra0 + (-180, 180]). */
static inline void sphere_ungnomonic(double ra0, double dec0, vec2 p,
                                     double *ra, double *dec)
{
    double sd0 = sin(dec0 * SPHERE_D2R), cd0 = cos(dec0 * SPHERE_D2R);
    double rho = hypot(p.x, p.y), c = atan(rho);
    double sc = sin(c), cc = cos(c);

    if (rho == 0) {
        *ra = ra0, *dec = dec0;
        return;
    }
    *dec = asin(cc * sd0 + p.y * sc * cd0 / rho) / SPHERE_D2R;
    *ra = ra0 + atan2(p.x * sc, rho * cd0 * cc - p.y * sd0 * sc) / SPHERE_D2R;
}

/* Twice the signed area of the triangle o, a, b (> 0 counter-clockwise). */
static inline double plane_cross(vec2 o, vec2 a, vec2 b)
{
    return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

/* Do segments ab and cd cross (each one's ends on either side of the
 * other's line)? */
static inline int plane_segments_cross(vec2 a, vec2 b, vec2 c, vec2 d)
{
    double d1 = plane_cross(c, d, a), d2 = plane_cross(c, d, b);
    double d3 = plane_cross(a, b, c), d4 = plane_cross(a, b, d);

    return ((d1 > 0) != (d2 > 0)) && ((d3 > 0) != (d4 > 0));
}

/* Is p inside the simple polygon of n vertices (even-odd rule)? */
static inline int plane_inside(const vec2 *poly, int n, vec2 p)
{
    int i, j, in = 0;

    for (i = 0, j = n - 1; i < n; j = i++)
        if ((poly[i].y > p.y) != (poly[j].y > p.y) &&
            p.x < (poly[j].x - poly[i].x) * (p.y - poly[i].y) /
                          (poly[j].y - poly[i].y) +
                      poly[i].x)
            in = !in;
    return in;
}

/* Do two simple polygons share any point?  (Either holds a vertex of the
 * other, or two edges cross.) */
static inline int plane_polygons_meet(const vec2 *a, int na, const vec2 *b,
                                      int nb)
{
    int i, j;

    if (plane_inside(a, na, b[0]) || plane_inside(b, nb, a[0]))
        return 1;
    for (i = 0; i < na; i++)
        for (j = 0; j < nb; j++)
            if (plane_segments_cross(a[i], a[(i + 1) % na], b[j],
                                     b[(j + 1) % nb]))
                return 1;
    return 0;
}

#endif
