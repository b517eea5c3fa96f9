/* wcs.c - being written */
