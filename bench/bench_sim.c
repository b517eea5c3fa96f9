/* bench_sim.c - time to simulate one L2 image, on one core.
 *
 *   bench_sim [SIZE ...]      (default: 512 4088)
 *
 * For each detector size: the default survey (seed 1, H158 at its default
 * exposure, 302 s: rapid_sim_exptime), the
 * plan and the scene made once, the PSF field of SCA 1, then the first
 * image rendered three times; the best time is printed, with the scene
 * and PSF times beside it.  One line per size:
 *   render SIZE best_s scene_s psf_s nsources
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "rapid/sim.h"

static int bench(int size)
{
    rapid_sim_config c;
    rapid_sim_pointing *p = NULL;
    rapid_sim_scene *scene = NULL;
    rapid_psf_field psf;
    rapid_table truth = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double t0, t_scene, t_psf, best = 1e30;
    int np, rep, rc = 1;

    memset(&psf, 0, sizeof psf);
    rapid_sim_config_init(&c);
    c.size = size;
    c.nscas = 1;
    if ((np = rapid_sim_plan(&c, &p, &err)) <= 0)
        goto cleanup;
    t0 = bench_now();
    if (rapid_sim_scene_make(&c, p, np, &scene, &err))
        goto cleanup;
    t_scene = bench_now() - t0;
    t0 = bench_now();
    if (rapid_psf_field_make(&psf, p[0].filter, 1, size, size, NULL, &err))
        goto cleanup;
    t_psf = bench_now() - t0;
    for (rep = 0; rep < 3; rep++) {
        rapid_image img = RAPID_IMAGE_INIT;
        t0 = bench_now();
        if (rapid_sim_render(&c, scene, &p[0], 1, &psf, &img, &truth, &err))
            goto cleanup;
        best = bench_now() - t0 < best ? bench_now() - t0 : best;
        rapid_image_release(&img);
        rapid_table_release(&truth);
    }
    printf("render %d %.3f s (scene %.3f s, psf %.3f s)\n", size, best, t_scene,
           t_psf);
    rc = 0;
cleanup:
    if (rc)
        fprintf(stderr, "bench_sim: %s\n", err.msg);
    rapid_psf_field_release(&psf);
    rapid_sim_scene_free(scene);
    free(p);
    return rc;
}

int main(int argc, char **argv)
{
    static const int sizes[] = {512, 4088};
    int i;

    if (argc > 1) {
        for (i = 1; i < argc; i++)
            if (bench(atoi(argv[i])))
                return 1;
        return 0;
    }
    for (i = 0; i < 2; i++)
        if (bench(sizes[i]))
            return 1;
    return 0;
}
