/* rapid/tile.h - the Roman sky tessellation (docs/tessellation.md), computed in closed form.
 *
 * Rings of constant declination j = 1 .. 4N-1 from north to south (N =
 * nside, default 512), 8*min(j, N, 4N-j) tiles in ring j, tile i of a ring
 * spanning RA [(i-1/2)D, (i+1/2)D) with D = 360/n, plus two polar caps:
 * rtid 1 (north) and rtid 24N^2+2 (south).  Declination bins (dbid) count
 * 1 = south cap .. 4N+1 = north cap.  Every lookup is O(1); no table.
 *
 * A point on the boundary between two rings belongs to the northern one,
 * except that each cap includes its own boundary.
 */
#ifndef RAPID_TILE_H
#define RAPID_TILE_H

#include <stdint.h>

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_TILE_NSIDE 512

typedef struct rapid_tile {
    int64_t rtid;
    double cra, cdec;       /* centre, degrees (caps: 0, +-90) */
    double ramin, ramax;    /* ramin < 0 for the first tile of a ring */
    double decmin, decmax;
    int dbid;               /* 1 = south cap .. 4N+1 = north cap */
    int64_t nrabins;        /* tiles in this ring (1 for a cap) */
    int ring;               /* j: 0 = north cap, 1..4N-1, 4N = south cap */
    int64_t index;          /* i within the ring */
} rapid_tile;

/* Number of tiles for nside (24N^2 + 2). */
int64_t rapid_tile_count(int nside);
/* rtid of a sky position: RA wraps, Dec must lie in [-90, 90]
 * (returns 0 if dec is out of range or either value is not finite). */
int64_t rapid_tile_rtid(int nside, double ra, double dec);
/* The tile of rtid; RAPID_E_RANGE naming rtid if it is not 1..24N^2+2. */
int rapid_tile_get(int nside, int64_t rtid, rapid_tile *t, rapid_err *err);
/* Corners (ramin,decmin), (ramax,decmin), (ramax,decmax), (ramin,decmax). */
void rapid_tile_corners(const rapid_tile *t, double ra[4], double dec[4]);
/* Declination of the centre (off=0) or an edge (off=+-0.5) of ring j. */
double rapid_tile_ring_dec(int nside, double jf);

/* Tiles sharing an edge or a corner with rtid, ascending.  out must hold
 * max rapid_tile_max_neighbors(); returns the count or a negative status. */
int rapid_tile_max_neighbors(int nside);
int rapid_tile_neighbors(int nside, int64_t rtid, int64_t *out, rapid_err *err);

/* Tiles that a footprint overlaps, ascending.  ra[0], dec[0] is the centre
 * and ra[1..4], dec[1..4] the corners in order around the polygon (as
 * rapid_wcs_footprint gives them); edges are great circles.  *out is
 * allocated (caller frees); returns the count or a negative status. */
int rapid_tile_overlaps(int nside, const double ra[5], const double dec[5],
                        int64_t **out, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
