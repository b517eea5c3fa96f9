/* md5.c - MD5 (RFC 1321), written from the RFC's description.
 *
 * Our own 120 lines rather than OpenSSL: the digest is needed for file
 * identity only, and this keeps the library free of a crypto dependency.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/md5.h"

/* Per-round shift amounts and the sine-derived constants T[i] =
 * floor(2^32 * |sin(i + 1)|) of RFC 1321 section 3.4. */
static const unsigned char shifts[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static const uint32_t sines[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
    0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
    0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
    0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
    0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

static uint32_t rotl(uint32_t x, unsigned s)
{
    return (x << s) | (x >> (32 - s));
}

/* One step of round r's function f: a = b + rotl(a + f(b, c, d) + w[g] +
 * T[i], s).  Written out for all 64 steps (the loop with its branches on i
 * and its shifts from the table ran at two thirds of the speed, and the
 * checksums of a job's products are a few GB). */
#define F1(b, c, d) ((((c) ^ (d)) & (b)) ^ (d)) /* (b & c) | (~b & d) */
#define F2(b, c, d) ((((b) ^ (c)) & (d)) ^ (c)) /* (d & b) | (~d & c) */
#define F3(b, c, d) ((b) ^ (c) ^ (d))
#define F4(b, c, d) ((c) ^ ((b) | ~(d)))
#define STEP(f, a, b, c, d, i, g)                                         \
    (a) = (b) + rotl((a) + f((b), (c), (d)) + w[g] + sines[i], shifts[i])

static void block(uint32_t st[4], const unsigned char p[64])
{
    uint32_t w[16], a = st[0], b = st[1], c = st[2], d = st[3];
    int i;

    for (i = 0; i < 16; i++) /* little-endian words, whatever the host */
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
               (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
    /* round 1: g = i */
    STEP(F1, a, b, c, d, 0, 0);   STEP(F1, d, a, b, c, 1, 1);
    STEP(F1, c, d, a, b, 2, 2);   STEP(F1, b, c, d, a, 3, 3);
    STEP(F1, a, b, c, d, 4, 4);   STEP(F1, d, a, b, c, 5, 5);
    STEP(F1, c, d, a, b, 6, 6);   STEP(F1, b, c, d, a, 7, 7);
    STEP(F1, a, b, c, d, 8, 8);   STEP(F1, d, a, b, c, 9, 9);
    STEP(F1, c, d, a, b, 10, 10); STEP(F1, b, c, d, a, 11, 11);
    STEP(F1, a, b, c, d, 12, 12); STEP(F1, d, a, b, c, 13, 13);
    STEP(F1, c, d, a, b, 14, 14); STEP(F1, b, c, d, a, 15, 15);
    /* round 2: g = (5 i + 1) mod 16 */
    STEP(F2, a, b, c, d, 16, 1);  STEP(F2, d, a, b, c, 17, 6);
    STEP(F2, c, d, a, b, 18, 11); STEP(F2, b, c, d, a, 19, 0);
    STEP(F2, a, b, c, d, 20, 5);  STEP(F2, d, a, b, c, 21, 10);
    STEP(F2, c, d, a, b, 22, 15); STEP(F2, b, c, d, a, 23, 4);
    STEP(F2, a, b, c, d, 24, 9);  STEP(F2, d, a, b, c, 25, 14);
    STEP(F2, c, d, a, b, 26, 3);  STEP(F2, b, c, d, a, 27, 8);
    STEP(F2, a, b, c, d, 28, 13); STEP(F2, d, a, b, c, 29, 2);
    STEP(F2, c, d, a, b, 30, 7);  STEP(F2, b, c, d, a, 31, 12);
    /* round 3: g = (3 i + 5) mod 16 */
    STEP(F3, a, b, c, d, 32, 5);  STEP(F3, d, a, b, c, 33, 8);
    STEP(F3, c, d, a, b, 34, 11); STEP(F3, b, c, d, a, 35, 14);
    STEP(F3, a, b, c, d, 36, 1);  STEP(F3, d, a, b, c, 37, 4);
    STEP(F3, c, d, a, b, 38, 7);  STEP(F3, b, c, d, a, 39, 10);
    STEP(F3, a, b, c, d, 40, 13); STEP(F3, d, a, b, c, 41, 0);
    STEP(F3, c, d, a, b, 42, 3);  STEP(F3, b, c, d, a, 43, 6);
    STEP(F3, a, b, c, d, 44, 9);  STEP(F3, d, a, b, c, 45, 12);
    STEP(F3, c, d, a, b, 46, 15); STEP(F3, b, c, d, a, 47, 2);
    /* round 4: g = 7 i mod 16 */
    STEP(F4, a, b, c, d, 48, 0);  STEP(F4, d, a, b, c, 49, 7);
    STEP(F4, c, d, a, b, 50, 14); STEP(F4, b, c, d, a, 51, 5);
    STEP(F4, a, b, c, d, 52, 12); STEP(F4, d, a, b, c, 53, 3);
    STEP(F4, c, d, a, b, 54, 10); STEP(F4, b, c, d, a, 55, 1);
    STEP(F4, a, b, c, d, 56, 8);  STEP(F4, d, a, b, c, 57, 15);
    STEP(F4, c, d, a, b, 58, 6);  STEP(F4, b, c, d, a, 59, 13);
    STEP(F4, a, b, c, d, 60, 4);  STEP(F4, d, a, b, c, 61, 11);
    STEP(F4, c, d, a, b, 62, 2);  STEP(F4, b, c, d, a, 63, 9);
    st[0] += a, st[1] += b, st[2] += c, st[3] += d;
}

void rapid_md5_init(rapid_md5 *m)
{
    m->state[0] = 0x67452301, m->state[1] = 0xefcdab89;
    m->state[2] = 0x98badcfe, m->state[3] = 0x10325476;
    m->nbytes = 0;
}

void rapid_md5_update(rapid_md5 *m, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t have = (size_t)(m->nbytes & 63), take;

    m->nbytes += n;
    if (have) {
        take = 64 - have < n ? 64 - have : n;
        memcpy(m->buf + have, p, take);
        p += take, n -= take, have += take;
        if (have < 64)
            return;
        block(m->state, m->buf);
    }
    for (; n >= 64; p += 64, n -= 64)
        block(m->state, p);
    memcpy(m->buf, p, n);
}

void rapid_md5_final(rapid_md5 *m, unsigned char digest[16])
{
    static const unsigned char pad[64] = {0x80};
    unsigned char len[8];
    uint64_t bits = m->nbytes * 8;
    size_t have = (size_t)(m->nbytes & 63);
    int i;

    for (i = 0; i < 8; i++)
        len[i] = (unsigned char)(bits >> (8 * i));
    /* Pad to 56 mod 64 bytes, then the bit length: RFC 1321 steps 1-2. */
    rapid_md5_update(m, pad, have < 56 ? 56 - have : 120 - have);
    rapid_md5_update(m, len, 8);
    for (i = 0; i < 16; i++)
        digest[i] = (unsigned char)(m->state[i / 4] >> (8 * (i % 4)));
}

void rapid_md5_hex(const unsigned char digest[16], char hex[33])
{
    static const char digits[] = "0123456789abcdef";
    int i;

    for (i = 0; i < 16; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[32] = '\0';
}

/* read in pieces this large (on the heap: the caller may be a thread) */
#define MD5_FILE_BUF ((size_t)1 << 16)

int rapid_md5_file(const char *path, char hex[33], rapid_err *err)
{
    unsigned char *buf = NULL, digest[16];
    rapid_md5 m;
    FILE *fp = NULL;
    size_t n;
    int rc = 0;

    hex[0] = '\0';
    if (!(buf = malloc(MD5_FILE_BUF)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory to read it", path);
    if (!(fp = fopen(path, "rb"))) {
        rc = rapid_fail(err, errno == ENOENT ? RAPID_E_NOENT : RAPID_E_IO,
                        "%s: cannot open: %s", path, strerror(errno));
        free(buf);
        return rc;
    }
    rapid_md5_init(&m);
    while ((n = fread(buf, 1, MD5_FILE_BUF, fp)) > 0)
        rapid_md5_update(&m, buf, n);
    if (ferror(fp)) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot read: %s", path,
                        strerror(errno));
        goto cleanup;
    }
    rapid_md5_final(&m, digest);
    rapid_md5_hex(digest, hex);
cleanup:
    fclose(fp);
    free(buf);
    return rc;
}
