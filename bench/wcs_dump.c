/* wcs_dump.c - pixel->sky and sky->pixel through rapid's WCS for a file, so
 * that bench/wcs_vs_astropy.py can compare with an independent library.
 *   wcs_dump FILE [HDU] < "x y" lines  ->  "x y ra dec xback yback" lines
 * Pixel coordinates are 0-based. */
#include <stdio.h>

#include "rapid/fits.h"
#include "rapid/wcs.h"

int main(int argc, char **argv)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_wcs w = RAPID_WCS_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double x, y, ra, dec, xb, yb;

    if (argc < 2) {
        fprintf(stderr, "usage: wcs_dump FILE [HDU] < points\n");
        return 2;
    }
    if (rapid_fits_read_header(argv[1], argc > 2 ? argv[2] : NULL, &h, &err) ||
        rapid_wcs_from_header(&w, &h, &err)) {
        fprintf(stderr, "wcs_dump: %s\n", err.msg);
        return 1;
    }
    while (scanf("%lf %lf", &x, &y) == 2) {
        if (rapid_wcs_pix2sky(&w, 1, &x, &y, &ra, &dec, &err) ||
            rapid_wcs_sky2pix(&w, 1, &ra, &dec, &xb, &yb, &err)) {
            fprintf(stderr, "wcs_dump: %s\n", err.msg);
            return 1;
        }
        printf("%.10f %.10f %.12f %.12f %.10f %.10f\n", x, y, ra, dec, xb, yb);
    }
    rapid_wcs_release(&w);
    rapid_header_release(&h);
    return 0;
}
