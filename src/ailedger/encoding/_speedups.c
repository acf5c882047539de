/* ailedger.encoding._speedups: SHA-256 of many short byte strings in one call.
 *
 * Dataset commitments hash tens of millions of small records; through hashlib each digest costs
 * ~450 ns of per-call overhead (hash object, OpenSSL context, digest copy) for ~100 ns of actual
 * hashing.  sha256_many() takes a sequence of bytes-like objects and returns their 32-byte SHA-256
 * digests concatenated, using the x86 SHA extensions when the CPU has them (checked at run time)
 * and a portable FIPS 180-4 implementation otherwise.  Optional: ailedger.encoding.fasthash falls back
 * to hashlib when this module is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define AILEDGER_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

typedef void (*blocks_fn)(uint32_t state[8], const uint8_t *data, size_t nblocks);

/* -- portable compression (FIPS 180-4, section 6.2.2) ------------------------------------------ */

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void blocks_portable(uint32_t state[8], const uint8_t *p, size_t nblocks) {
    uint32_t w[64];
    while (nblocks--) {
        for (int t = 0; t < 16; t++)
            w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
            uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
        p += 64;
    }
}

/* -- x86 SHA extensions --------------------------------------------------------------------------
 * The state is kept as two vectors, ABEF and CDGH, the layout sha256rnds2 works on; each group of
 * four rounds adds the round constants to four message words and runs two sha256rnds2 (two rounds
 * each).  Message words 16..63 come from sha256msg1 / sha256msg2 plus the W[t-7] term.            */

#ifdef AILEDGER_X86
__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_shani(uint32_t state[8], const uint8_t *data, size_t nblocks) {
    const __m128i BSWAP = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);  /* lanes A B C D */
    __m128i st1 = _mm_loadu_si128((const __m128i *)&state[4]);  /* lanes E F G H */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                          /* B A D C */
    st1 = _mm_shuffle_epi32(st1, 0x1B);                          /* H G F E */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);                  /* F E B A = "ABEF" */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                       /* H G D C = "CDGH" */
    while (nblocks--) {
        __m128i save0 = st0, save1 = st1, w[4];
        for (int i = 0; i < 16; i++) {
            __m128i m;
            if (i < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), BSWAP);
            } else {
                __m128i t7 = _mm_alignr_epi8(w[(i - 1) & 3], w[(i - 2) & 3], 4);
                m = _mm_add_epi32(_mm_sha256msg1_epu32(w[(i - 4) & 3], w[(i - 3) & 3]), t7);
                m = _mm_sha256msg2_epu32(m, w[(i - 1) & 3]);
            }
            w[i & 3] = m;
            __m128i wk = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&K[4 * i]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, wk);
            wk = _mm_shuffle_epi32(wk, 0x0E);
            st0 = _mm_sha256rnds2_epu32(st0, st1, wk);
        }
        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
        data += 64;
    }
    tmp = _mm_shuffle_epi32(st0, 0x1B);      /* A B E F -> lanes */
    st1 = _mm_shuffle_epi32(st1, 0xB1);
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);   /* A B C D */
    st1 = _mm_alignr_epi8(st1, tmp, 8);      /* E F G H */
    _mm_storeu_si128((__m128i *)&state[0], st0);
    _mm_storeu_si128((__m128i *)&state[4], st1);
}

static int have_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 19)) || !(c & (1u << 9)))  /* SSE4.1, SSSE3 */
        return 0;
    if (__get_cpuid_max(0, 0) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;  /* SHA */
}
#endif

static blocks_fn compress = blocks_portable;

static void sha256_one(const uint8_t *p, size_t n, uint8_t out[32]) {
    uint32_t st[8];
    memcpy(st, H0, sizeof st);
    size_t full = n / 64;
    if (full)
        compress(st, p, full);
    uint8_t tail[128];
    size_t rem = n - full * 64;
    memcpy(tail, p + full * 64, rem);
    tail[rem] = 0x80;
    size_t tl = rem + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + rem + 1, 0, tl - rem - 1);
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
    compress(st, tail, tl / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(st[i] >> 24);
        out[4 * i + 1] = (uint8_t)(st[i] >> 16);
        out[4 * i + 2] = (uint8_t)(st[i] >> 8);
        out[4 * i + 3] = (uint8_t)st[i];
    }
}

static PyObject *sha256_many(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "sha256_many() takes a sequence of bytes-like objects");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * 32);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = items[i];
        if (PyBytes_Check(o)) {
            sha256_one((const uint8_t *)PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o), dst + 32 * i);
            continue;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(out);
            Py_DECREF(seq);
            return NULL;
        }
        sha256_one((const uint8_t *)view.buf, (size_t)view.len, dst + 32 * i);
        PyBuffer_Release(&view);
    }
    Py_DECREF(seq);
    return out;
}

static PyObject *implementation(PyObject *self, PyObject *unused) {
#ifdef AILEDGER_X86
    if (compress == blocks_shani)
        return PyUnicode_FromString("sha-ni");
#endif
    return PyUnicode_FromString("portable");
}

static PyObject *set_portable(PyObject *self, PyObject *flag) {
    int on = PyObject_IsTrue(flag);
    if (on < 0)
        return NULL;
    compress = blocks_portable;
#ifdef AILEDGER_X86
    if (!on && have_shani())
        compress = blocks_shani;
#endif
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"sha256_many", sha256_many, METH_O,
     "sha256_many(items) -> bytes: the SHA-256 digests of a sequence of bytes-like objects, concatenated."},
    {"implementation", implementation, METH_NOARGS, "'sha-ni' or 'portable'."},
    {"_set_portable", set_portable, METH_O, "Force (True) or release (False) the portable code (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
#ifdef AILEDGER_X86
    if (have_shani())
        compress = blocks_shani;
#endif
    return PyModule_Create(&module);
}
