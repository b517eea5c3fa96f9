/* tile.c - being written */
