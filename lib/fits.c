/* fits.c - being written */
