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

/* -- the log's write path: leaf hashes and the tree nodes a batch completes --------------------------
 * RFC 6962: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right).  sha256_pre hashes one
 * prefix byte followed by n bytes without copying the data (its blocks after the first are read in place). */
static void sha256_pre(uint8_t pre, const uint8_t *p, size_t n, uint8_t out[32]) {
    uint32_t st[8];
    memcpy(st, H0, sizeof st);
    size_t total = n + 1;
    uint8_t tail[128];
    size_t rem;
    if (total >= 64) {
        uint8_t first[64];
        first[0] = pre;
        memcpy(first + 1, p, 63);
        compress(st, first, 1);
        const uint8_t *rest = p + 63;
        size_t rn = n - 63, full = rn / 64;
        if (full)
            compress(st, rest, full);
        rem = rn - full * 64;
        memcpy(tail, rest + full * 64, rem);
    } else {
        tail[0] = pre;
        memcpy(tail + 1, p, n);
        rem = total;
    }
    tail[rem] = 0x80;
    size_t tl = rem + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + rem + 1, 0, tl - rem - 1);
    uint64_t bits = (uint64_t)total * 8;
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

static PyObject *leaf_hashes(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "leaf_hashes() takes a sequence of bytes");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            Py_DECREF(out);
            Py_DECREF(seq);
            PyErr_SetString(PyExc_TypeError, "leaf_hashes() takes a sequence of bytes");
            return NULL;
        }
        PyObject *h = PyBytes_FromStringAndSize(NULL, 32);
        if (h == NULL) {
            Py_DECREF(out);
            Py_DECREF(seq);
            return NULL;
        }
        sha256_pre(0x00, (const uint8_t *)PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i]),
                   (uint8_t *)PyBytes_AS_STRING(h));
        PyList_SET_ITEM(out, i, h);
    }
    Py_DECREF(seq);
    return out;
}

/* The start extend_range and extend_levels share: the size, the border's hashes pushed onto `stack` (*top of
 * them) and the leaf hashes as a fast sequence (a new reference); NULL with the error set on bad input. */
static PyObject *extend_start(PyObject *args, const char *fmt, const char *name, unsigned long long *size,
                              uint8_t stack[65][32], int *top) {
    PyObject *border, *hashes;
    if (!PyArg_ParseTuple(args, fmt, size, &PyList_Type, &border, &hashes))
        return NULL;
    if (*size >= (1ULL << 56)) {
        PyErr_Format(PyExc_ValueError, "%s(): size out of range", name);
        return NULL;
    }
    Py_ssize_t nb = PyList_GET_SIZE(border);
    if (nb != (Py_ssize_t)__builtin_popcountll(*size) || nb > 64) {
        PyErr_Format(PyExc_ValueError, "%s(): the border needs one hash per set bit of the size", name);
        return NULL;
    }
    *top = 0;
    for (Py_ssize_t i = 0; i < nb; i++) {
        PyObject *h = PyList_GET_ITEM(border, i);
        if (!PyBytes_Check(h) || PyBytes_GET_SIZE(h) != 32) {
            PyErr_Format(PyExc_ValueError, "%s(): border hashes are 32 bytes", name);
            return NULL;
        }
        memcpy(stack[(*top)++], PyBytes_AS_STRING(h), 32);
    }
    char msg[64]; /* PySequence_Fast copies its message into the exception at once */
    snprintf(msg, sizeof msg, "%s() takes a sequence of leaf hashes", name);
    return PySequence_Fast(hashes, msg);
}

/* extend_range(size, border, hashes) -> (border', nodes): the compact range of a tree of `size` leaves
 * (one 32-byte hash per set bit of size, left to right) extended by the leaf hashes `hashes`; nodes are
 * the interior nodes (level >= 1) the new leaves complete, as (level << 56 | index, hash) pairs, in the
 * order merkle.CompactRange.append finds them. */
static PyObject *extend_range(PyObject *self, PyObject *args) {
    unsigned long long size;
    uint8_t stack[65][32];
    int top = 0;
    PyObject *seq = extend_start(args, "KO!O:extend_range", "extend_range", &size, stack, &top);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *nodes = PyList_New(0);
    if (nodes == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    uint8_t buf[65];
    buf[0] = 0x01;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *h = items[k];
        if (!PyBytes_Check(h) || PyBytes_GET_SIZE(h) != 32) {
            PyErr_SetString(PyExc_ValueError, "extend_range(): leaf hashes are 32 bytes");
            goto fail;
        }
        unsigned long long index = size + (unsigned long long)k;
        if (index >= (1ULL << 56) - 1) {
            PyErr_SetString(PyExc_ValueError, "extend_range(): size out of range");
            goto fail;
        }
        uint8_t cur[32];
        memcpy(cur, PyBytes_AS_STRING(h), 32);
        int level = 0;
        while ((index >> level) & 1) {
            memcpy(buf + 1, stack[--top], 32);
            memcpy(buf + 33, cur, 32);
            sha256_one(buf, 65, cur);
            level++;
            PyObject *pair = Py_BuildValue("(Ky#)", ((unsigned long long)level << 56) | (index >> level),
                                           (const char *)cur, (Py_ssize_t)32);
            if (pair == NULL)
                goto fail;
            int r = PyList_Append(nodes, pair);
            Py_DECREF(pair);
            if (r < 0)
                goto fail;
        }
        memcpy(stack[top++], cur, 32);
    }
    Py_DECREF(seq);
    PyObject *nb_list = PyList_New(top);
    if (nb_list == NULL) {
        Py_DECREF(nodes);
        return NULL;
    }
    for (int i = 0; i < top; i++) {
        PyObject *h = PyBytes_FromStringAndSize((const char *)stack[i], 32);
        if (h == NULL) {
            Py_DECREF(nb_list);
            Py_DECREF(nodes);
            return NULL;
        }
        PyList_SET_ITEM(nb_list, i, h);
    }
    PyObject *res = PyTuple_Pack(2, nb_list, nodes);
    Py_DECREF(nb_list);
    Py_DECREF(nodes);
    return res;
fail:
    Py_DECREF(seq);
    Py_DECREF(nodes);
    return NULL;
}

/* extend_levels(size, border, hashes) -> (border', levels): extend_range's compact range, with the interior
 * nodes it completes given per level instead of per node: [(level, first index, their hashes concatenated in
 * index order), ...] for levels 1, 2, ... that gain a node (the nodes an append completes at one level are
 * consecutive: indices size >> level .. (size + n) >> level, exclusive). No Python object per node: the stores
 * write interior nodes as stripes of consecutive hashes (stores/base.stripe_rows). */
static PyObject *extend_levels(PyObject *self, PyObject *args) {
    unsigned long long size;
    uint8_t stack[65][32];
    int top = 0;
    PyObject *seq = extend_start(args, "KO!O:extend_levels", "extend_levels", &size, stack, &top);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *res = NULL, *nb_list = NULL, *levels = NULL;
    PyObject *bufs[64] = {NULL};
    unsigned long long first[64] = {0};
    int nlev = 0; /* levels 1 .. nlev gain nodes */
    if (n > 0 && (unsigned long long)n >= (1ULL << 56) - size) { /* the last index must stay below 2^56 - 1 */
        PyErr_SetString(PyExc_ValueError, "extend_levels(): size out of range");
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (!PyBytes_Check(items[k]) || PyBytes_GET_SIZE(items[k]) != 32) {
            PyErr_SetString(PyExc_ValueError, "extend_levels(): leaf hashes are 32 bytes");
            goto done;
        }
    }
    unsigned long long end = size + (unsigned long long)n;
    for (int lv = 1; lv < 63; lv++) {
        unsigned long long count = (end >> lv) - (size >> lv);
        if (count == 0)
            break; /* no node at this level: none above it either */
        first[lv] = size >> lv;
        bufs[lv] = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * count));
        if (bufs[lv] == NULL)
            goto done;
        nlev = lv;
    }
    uint8_t buf[65];
    buf[0] = 0x01;
    for (Py_ssize_t k = 0; k < n; k++) {
        unsigned long long index = size + (unsigned long long)k;
        uint8_t cur[32];
        memcpy(cur, PyBytes_AS_STRING(items[k]), 32);
        int level = 0;
        while ((index >> level) & 1) {
            memcpy(buf + 1, stack[--top], 32);
            memcpy(buf + 33, cur, 32);
            sha256_one(buf, 65, cur);
            level++;
            /* level <= nlev: node (level, index >> level) is completed by this append, so counted above */
            memcpy(PyBytes_AS_STRING(bufs[level]) + 32 * ((index >> level) - first[level]), cur, 32);
        }
        memcpy(stack[top++], cur, 32);
    }
    nb_list = PyList_New(top);
    if (nb_list == NULL)
        goto done;
    for (int i = 0; i < top; i++) {
        PyObject *h = PyBytes_FromStringAndSize((const char *)stack[i], 32);
        if (h == NULL)
            goto done;
        PyList_SET_ITEM(nb_list, i, h);
    }
    levels = PyList_New(nlev);
    if (levels == NULL)
        goto done;
    for (int lv = 1; lv <= nlev; lv++) {
        PyObject *t = Py_BuildValue("(iKO)", lv, first[lv], bufs[lv]);
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(levels, lv - 1, t);
    }
    res = PyTuple_Pack(2, nb_list, levels);
done:
    Py_DECREF(seq);
    Py_XDECREF(nb_list);
    Py_XDECREF(levels);
    for (int lv = 1; lv < 64; lv++)
        Py_XDECREF(bufs[lv]);
    return res;
}

/* -- canonical JSON fast path: does a value parsed by orjson need the strict encoder? ------------------
 * 1 when the value holds a float anywhere, a key with a character at or above U+D800 (UTF-16 and code-point
 * order may differ), anything but dict / list / str / int / bool / None, or nests deeper than the limit;
 * 0 when orjson's sorted output is its JCS form.  canonical._needs_slow_path is the reference (tested). */
static int key_needs_slow(PyObject *k) {
    if (!PyUnicode_CheckExact(k))
        return 1;
    if (PyUnicode_IS_ASCII(k))
        return 0;
    int kind = PyUnicode_KIND(k);
    if (kind == PyUnicode_1BYTE_KIND)
        return 0;
    const void *data = PyUnicode_DATA(k);
    Py_ssize_t n = PyUnicode_GET_LENGTH(k);
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyUnicode_READ(kind, data, i) >= 0xD800)
            return 1;
    return 0;
}

static int value_needs_slow(PyObject *o, int depth) {
    if (depth > 1100)
        return 1;
    if (PyDict_CheckExact(o)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            if (key_needs_slow(k) || value_needs_slow(v, depth + 1))
                return 1;
        }
        return 0;
    }
    if (PyList_CheckExact(o)) {
        Py_ssize_t n = PyList_GET_SIZE(o);
        for (Py_ssize_t i = 0; i < n; i++)
            if (value_needs_slow(PyList_GET_ITEM(o, i), depth + 1))
                return 1;
        return 0;
    }
    if (PyUnicode_CheckExact(o) || PyLong_CheckExact(o) || o == Py_None || o == Py_True || o == Py_False)
        return 0;
    return 1;  /* a float, or a type the strict path must judge */
}

static PyObject *needs_slow_path(PyObject *self, PyObject *o) {
    return PyBool_FromLong(value_needs_slow(o, 0));
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

/* -- signed entries: structure check + Ed25519 through libsodium, GIL released ---------------------
 * verify_entries(leaves) takes the canonical bytes of many ledger entries (encoding/records.py) and
 * returns one verdict byte per entry: 1 = the bytes are canonical JSON of exactly the shape
 * parse_entry accepts and the signature verifies; 0 = the same, but the signature does not verify;
 * 2 = anything this code does not handle (floats, escapes it does not expect, non-ASCII keys, deep
 * nesting, a did that does not decode, ...): the caller decides with the Python path.  The grammar
 * below is deliberately narrower than JSON: every byte string it accepts is its own RFC 8785 form
 * on the orjson fast path of encoding/canonical.py, so verdicts 0/1 equal the Python path's.
 * libsodium is the copy bundled in PyNaCl (the same library the Python path calls), found with
 * dlopen on the path the caller passes to _sodium_load(): identical strictness by construction. */

#ifndef _WIN32
#include <dlfcn.h>
#endif

typedef int (*verify_detached_fn)(const unsigned char *sig, const unsigned char *m, unsigned long long mlen,
                                  const unsigned char *pk);
static verify_detached_fn sodium_verify = NULL;

#define V_MAX_DEPTH 64
#define V_MAX_LEAF 65535

/* 1 when one of the 8 bytes at p is not plain string text: below 0x20, 0x80 or above, '"' or '\\' (exact for
 * "none": the tests below never miss such a byte; one found may stand next to another that is not one, which only
 * sends those 8 bytes to the byte-by-byte loop) */
static inline int v_special8(const uint8_t *p) {
    uint64_t x, q, b;
    memcpy(&x, p, 8);
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    return ((x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high) != 0;
}

/* p points at '"'; on success *pp points after the closing quote. key: ASCII only, no escapes. */
static int v_string(const uint8_t **pp, const uint8_t *end, int key) {
    const uint8_t *p = *pp + 1;
    while (p < end) {
        while (end - p >= 8 && !v_special8(p))  /* plain ASCII text, 8 bytes at a time */
            p += 8;
        if (p >= end)
            break;
        uint8_t c = *p;
        if (c == '"') {
            *pp = p + 1;
            return 1;
        }
        if (c == '\\') {
            if (key || p + 1 >= end)
                return 0;
            uint8_t e = p[1];
            if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                p += 2;
                continue;
            }
            if (e != 'u' || p + 5 >= end || p[2] != '0' || p[3] != '0' || (p[4] != '0' && p[4] != '1'))
                return 0;
            uint8_t h = p[5];
            int lo;
            if (h >= '0' && h <= '9') lo = h - '0';
            else if (h >= 'a' && h <= 'f') lo = h - 'a' + 10;
            else return 0;
            int v = (p[4] - '0') * 16 + lo;
            if (v == 8 || v == 9 || v == 10 || v == 12 || v == 13)
                return 0;  /* those have short forms */
            p += 6;
            continue;
        }
        if (c < 0x20)
            return 0;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (key)
            return 0;
        /* well-formed UTF-8 (Unicode 15 table 3-7): no overlongs, no surrogates, <= U+10FFFF */
        size_t n;
        uint8_t lo1 = 0x80, hi1 = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) n = 1;
        else if (c == 0xE0) { n = 2; lo1 = 0xA0; }
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) n = 2;
        else if (c == 0xED) { n = 2; hi1 = 0x9F; }
        else if (c == 0xF0) { n = 3; lo1 = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) n = 3;
        else if (c == 0xF4) { n = 3; hi1 = 0x8F; }
        else return 0;
        if ((size_t)(end - p) <= n)
            return 0;
        if (p[1] < lo1 || p[1] > hi1)
            return 0;
        for (size_t k = 2; k <= n; k++)
            if ((p[k] & 0xC0) != 0x80)
                return 0;
        p += n + 1;
    }
    return 0;
}

static int v_value(const uint8_t **pp, const uint8_t *end, int depth);

static int v_object(const uint8_t **pp, const uint8_t *end, int depth) {
    const uint8_t *p = *pp + 1;
    if (depth > V_MAX_DEPTH || p >= end)
        return 0;
    if (*p == '}') {
        *pp = p + 1;
        return 1;
    }
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (;;) {
        if (p >= end || *p != '"')
            return 0;
        const uint8_t *k = p + 1;
        if (!v_string(&p, end, 1))
            return 0;
        size_t klen = (size_t)(p - 1 - k);
        if (prev != NULL) {  /* keys strictly increasing (ASCII: bytes order = UTF-16 order) */
            size_t m = prev_len < klen ? prev_len : klen;
            int c = memcmp(prev, k, m);
            if (c > 0 || (c == 0 && prev_len >= klen))
                return 0;
        }
        prev = k;
        prev_len = klen;
        if (p >= end || *p != ':')
            return 0;
        p++;
        if (!v_value(&p, end, depth + 1))
            return 0;
        if (p >= end)
            return 0;
        if (*p == '}') {
            *pp = p + 1;
            return 1;
        }
        if (*p != ',')
            return 0;
        p++;
    }
}

static int v_array(const uint8_t **pp, const uint8_t *end, int depth) {
    const uint8_t *p = *pp + 1;
    if (depth > V_MAX_DEPTH || p >= end)
        return 0;
    if (*p == ']') {
        *pp = p + 1;
        return 1;
    }
    for (;;) {
        if (!v_value(&p, end, depth + 1))
            return 0;
        if (p >= end)
            return 0;
        if (*p == ']') {
            *pp = p + 1;
            return 1;
        }
        if (*p != ',')
            return 0;
        p++;
    }
}

/* integers only, canonical, at most 15 digits (orjson reads them as int and writes them back alike) */
static int v_int(const uint8_t **pp, const uint8_t *end, long long *out) {
    const uint8_t *p = *pp;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return 0;
    const uint8_t *d = p;
    long long v = 0;
    if (*p == '0') {
        p++;
        if (neg)
            return 0;  /* -0 */
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - d >= 15)
                return 0;
            v = v * 10 + (*p - '0');
            p++;
        }
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
        return 0;
    *pp = p;
    if (out)
        *out = neg ? -v : v;
    return 1;
}

static int v_lit(const uint8_t **pp, const uint8_t *end, const char *lit, size_t n) {
    if ((size_t)(end - *pp) < n || memcmp(*pp, lit, n) != 0)
        return 0;
    *pp += n;
    return 1;
}

static int v_value(const uint8_t **pp, const uint8_t *end, int depth) {
    if (*pp >= end)
        return 0;
    switch (**pp) {
    case '{': return v_object(pp, end, depth);
    case '[': return v_array(pp, end, depth);
    case '"': return v_string(pp, end, 0);
    case 't': return v_lit(pp, end, "true", 4);
    case 'f': return v_lit(pp, end, "false", 5);
    case 'n': return v_lit(pp, end, "null", 4);
    default: return v_int(pp, end, NULL);
    }
}

static int b64val(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* 88 characters "...==" -> 64 bytes; unused low bits must be zero */
static int v_sig(const uint8_t *s, size_t n, uint8_t out[64]) {
    if (n != 88 || s[86] != '=' || s[87] != '=')
        return 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < 86; i++) {
        int v = b64val(s[i]);
        if (v < 0)
            return 0;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o == 64 && (acc & ((1u << bits) - 1)) == 0;
}

static const int8_t B58[128] = {
    -1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,
    -1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1, 0, 1, 2, 3, 4, 5, 6, 7, 8,-1,-1,-1,-1,-1,-1,
    -1, 9,10,11,12,13,14,15,16,-1,17,18,19,20,21,-1,22,23,24,25,26,27,28,29,30,31,32,-1,-1,-1,-1,-1,
    -1,33,34,35,36,37,38,39,40,41,42,43,-1,44,45,46,47,48,49,50,51,52,53,54,55,56,57,-1,-1,-1,-1,-1,
};

/* "did:key:z" + base58btc(0xed 0x01 + 32-byte key), at most 64 characters (identity.py) */
static int v_did(const uint8_t *s, size_t n, uint8_t pk[32]) {
    if (n > 64 || n < 10 || memcmp(s, "did:key:z", 9) != 0 || s[9] == '1')
        return 0;
    uint8_t num[40];
    memset(num, 0, sizeof num);
    for (size_t i = 9; i < n; i++) {
        if (s[i] >= 128 || B58[s[i]] < 0)
            return 0;
        uint32_t carry = (uint32_t)B58[s[i]];
        for (int j = 39; j >= 0; j--) {
            carry += (uint32_t)num[j] * 58;
            num[j] = (uint8_t)carry;
            carry >>= 8;
        }
        if (carry)
            return 0;
    }
    for (int j = 0; j < 6; j++)
        if (num[j])
            return 0;
    if (num[6] != 0xed || num[7] != 0x01)
        return 0;
    memcpy(pk, num + 8, 32);
    return 1;
}

static int v_time(const uint8_t *s, size_t n) {
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    if (n < 20)
        return 0;
    for (size_t i = 0; i < 19; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != (uint8_t)pat[i])
            return 0;
    }
    if (n == 20)
        return s[19] == 'Z';
    if (s[19] != '.' || n < 22 || n > 30 || s[n - 1] != 'Z')
        return 0;
    for (size_t i = 20; i < n - 1; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int lower(uint8_t c) { return c >= 'a' && c <= 'z'; }

static int v_type(const uint8_t *s, size_t n) {
    if (n == 0 || n > 64)
        return 0;
    int start = 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (start) {
            if (!lower(c))
                return 0;
            start = 0;
        } else if (c == '.') {
            start = 1;
        } else if (!(lower(c) || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return 0;
        }
    }
    return !start;
}

/* a string member '"name":"..."' at p (after the preceding ','), raw ASCII without escapes */
static int v_member(const uint8_t **pp, const uint8_t *end, const char *name, const uint8_t **val, size_t *vlen) {
    size_t nl = strlen(name);
    const uint8_t *p = *pp;
    if ((size_t)(end - p) < nl + 4 || p[0] != '"' || memcmp(p + 1, name, nl) != 0 || p[nl + 1] != '"'
        || p[nl + 2] != ':' || p[nl + 3] != '"')
        return 0;
    p += nl + 4;
    const uint8_t *v = p;
    while (end - p >= 8 && !v_special8(p))
        p += 8;
    while (p < end && *p != '"') {
        if (*p == '\\' || *p < 0x20 || *p >= 0x80)
            return 0;
        p++;
    }
    if (p >= end)
        return 0;
    *val = v;
    *vlen = (size_t)(p - v);
    *pp = p + 1;
    return 1;
}

/* the last signer decoded in a batch (entries of one batch often share a signer) */
typedef struct {
    uint8_t did[64];
    size_t len;
    uint8_t pk[32];
} did_cache;

/* where verify_one found an entry's body end, signer and type (for its index terms) */
typedef struct {
    const uint8_t *body_end, *signer, *type;
    size_t slen, tlen;
} v_spans;

/* what the structure check found in an entry: its spans, its decoded signature and key, its version */
typedef struct {
    v_spans sp;
    const uint8_t *sig_start, *sig_end, *time;
    size_t timelen;
    long long v;
    uint8_t sig[64], pk[32];
} v_parsed;

/* the structure check alone: 1 = canonical bytes of exactly the shape parse_entry accepts, 2 = not handled */
static uint8_t v_parse(const uint8_t *leaf, size_t n, did_cache *dc, v_parsed *o) {
    if (n > V_MAX_LEAF || n < 9 || memcmp(leaf, "{\"body\":{", 9) != 0)
        return 2;
    const uint8_t *end = leaf + n, *p = leaf + 8;
    if (!v_object(&p, end, 2))
        return 2;
    const uint8_t *sig_start = p, *val;
    size_t vlen;
    if (p >= end || *p++ != ',' || !v_member(&p, end, "sig", &val, &vlen) || !v_sig(val, vlen, o->sig))
        return 2;
    const uint8_t *sig_end = p;
    if (p >= end || *p++ != ',' || !v_member(&p, end, "signer", &val, &vlen))
        return 2;
    const uint8_t *signer = val;
    size_t slen = vlen;
    if (dc->len != 0 && vlen == dc->len && memcmp(val, dc->did, vlen) == 0) {
        memcpy(o->pk, dc->pk, 32);
    } else {
        if (!v_did(val, vlen, o->pk))  /* also bounds vlen to 64 */
            return 2;
        memcpy(dc->did, val, vlen);
        dc->len = vlen;
        memcpy(dc->pk, o->pk, 32);
    }
    if (p >= end || *p++ != ',' || !v_member(&p, end, "time", &val, &vlen) || !v_time(val, vlen))
        return 2;
    o->time = val;
    o->timelen = vlen;
    if (p >= end || *p++ != ',' || !v_member(&p, end, "type", &val, &vlen) || !v_type(val, vlen))
        return 2;
    if ((size_t)(end - p) < 6 || memcmp(p, ",\"v\":", 5) != 0)
        return 2;
    p += 5;
    if (!v_int(&p, end, &o->v) || o->v < 1 || o->v > 1000 || p + 1 != end || *p != '}')
        return 2;
    o->sp.body_end = sig_start;
    o->sp.signer = signer;
    o->sp.slen = slen;
    o->sp.type = val;
    o->sp.tlen = vlen;
    o->sig_start = sig_start;
    o->sig_end = sig_end;
    return 1;
}

/* the signature of an entry v_parse took: 1 valid, 0 not; msg: scratch of at least n bytes */
static uint8_t v_signature(const uint8_t *leaf, size_t n, uint8_t *msg, const v_parsed *o) {
    /* the signed message: the leaf without ',"sig":"..."' */
    size_t a = (size_t)(o->sig_start - leaf);
    memcpy(msg, leaf, a);
    memcpy(msg + a, o->sig_end, (size_t)(leaf + n - o->sig_end));
    return sodium_verify(o->sig, msg, (unsigned long long)(n - (size_t)(o->sig_end - o->sig_start)), o->pk) == 0 ? 1 : 0;
}

/* 1 valid, 0 bad signature, 2 not handled; msg: scratch of at least n bytes; sp: NULL or where the spans go */
static uint8_t verify_one(const uint8_t *leaf, size_t n, uint8_t *msg, did_cache *dc, v_spans *sp) {
    v_parsed o;
    if (v_parse(leaf, n, dc, &o) != 1)
        return 2;
    if (sp != NULL)
        *sp = o.sp;
    return v_signature(leaf, n, msg, &o);
}

static PyObject *sodium_load(PyObject *self, PyObject *arg) {
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(arg, &b))
        return NULL;
#ifdef _WIN32
    Py_DECREF(b);
    PyErr_SetString(PyExc_OSError, "not supported on this platform");
    return NULL;
#else
    void *h = dlopen(PyBytes_AS_STRING(b), RTLD_NOW | RTLD_LOCAL);
    Py_DECREF(b);
    if (h == NULL) {
        PyErr_Format(PyExc_OSError, "cannot load libsodium: %s", dlerror());
        return NULL;
    }
    int (*init)(void) = (int (*)(void))dlsym(h, "sodium_init");
    verify_detached_fn f = (verify_detached_fn)dlsym(h, "crypto_sign_ed25519_verify_detached");
    if (init == NULL || f == NULL) {
        PyErr_SetString(PyExc_OSError, "that library has no crypto_sign_ed25519_verify_detached / sodium_init");
        return NULL;
    }
    if (init() < 0) {
        PyErr_SetString(PyExc_OSError, "sodium_init failed");
        return NULL;
    }
    sodium_verify = f;
    Py_RETURN_NONE;
#endif
}

/* The leaves a verifying call reads without the GIL: libsodium loaded, and our own immutable tuple of the
 * argument's items, each bytes (immutable too: safe to read without the GIL). A new reference, or NULL with
 * the error set ("NAME() takes a sequence of bytes"). */
static PyObject *leaves_tuple(PyObject *arg, const char *name) {
    if (sodium_verify == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "call _sodium_load() first");
        return NULL;
    }
    PyObject *seq = PySequence_Tuple(arg);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(seq, i))) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError, "%s() takes a sequence of bytes", name);
            return NULL;
        }
    }
    return seq;
}

static PyObject *verify_entries(PyObject *self, PyObject *arg) {
    PyObject *seq = leaves_tuple(arg, "verify_entries");  /* our own copy: items stay alive without the GIL */
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    uint8_t *msg = PyMem_RawMalloc(V_MAX_LEAF + 1);
    if (out == NULL || msg == NULL) {
        Py_XDECREF(out);
        PyMem_RawFree(msg);
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    did_cache dc;
    dc.len = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        dst[i] = verify_one((const uint8_t *)PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i]), msg,
                            &dc, NULL);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(msg);
    Py_DECREF(seq);
    return out;
}



/* ---- a canonical batch in one call: checks, leaf hashes and index terms ------------------------------------
 * The index terms are ledger.entry_terms' short path (its type, its signer, the strings of body.subjects under
 * 300 characters, first occurrence kept). Every entry that path does not take -- a type with record terms
 * (dataset.commit, dataset.screening, model.register, blob.*), an identity type (Ingestor adds a term), a body
 * naming name/manifest/root/sha256/cid, a subject with an escape, more than T_MAX_SUBJECTS subjects -- gets
 * None: Python makes its terms. */

#define T_MAX_SUBJECTS 8

typedef struct {
    int taken;  /* 0: ask Python */
    int ns;
    const uint8_t *subj[T_MAX_SUBJECTS];
    size_t sublen[T_MAX_SUBJECTS];
    int ascii[T_MAX_SUBJECTS];
} t_found;

/* the end of the value at p, in bytes already checked (v_object) */
static const uint8_t *s_skip(const uint8_t *p) {
    if (*p == '"') {
        p++;
        while (*p != '"')
            p += *p == '\\' ? 2 : 1;
        return p + 1;
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            uint8_t c = *p;
            if (c == '"') {
                p = s_skip(p);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']')
                depth--;
            p++;
        } while (depth);
        return p;
    }
    while (*p != ',' && *p != '}' && *p != ']')
        p++;
    return p;
}

static int t_is(const uint8_t *s, size_t n, const char *lit) {
    size_t m = strlen(lit);
    return n == m && memcmp(s, lit, m) == 0;
}

/* the terms of a checked entry (its body is leaf[8 .. body_end)); no GIL needed */
static void t_find(const uint8_t *leaf, const v_spans *sp, t_found *f) {
    const uint8_t *type = sp->type;
    size_t tlen = sp->tlen;
    f->taken = 0;
    f->ns = 0;
    if (t_is(type, tlen, "dataset.commit") || t_is(type, tlen, "dataset.screening") || t_is(type, tlen, "model.register")
        || t_is(type, tlen, "identity.register") || t_is(type, tlen, "identity.revoke")
        || (tlen >= 5 && memcmp(type, "blob.", 5) == 0))
        return;
    const uint8_t *p = leaf + 9;
    if (*p != '}') {
        for (;;) {  /* keys: ASCII, no escapes (v_object) */
            const uint8_t *k = p + 1;
            p = s_skip(p);
            size_t klen = (size_t)(p - 1 - k);
            if (t_is(k, klen, "name") || t_is(k, klen, "manifest") || t_is(k, klen, "root") || t_is(k, klen, "sha256")
                || t_is(k, klen, "cid"))
                return;
            p++;  /* ':' */
            if (t_is(k, klen, "subjects") && *p == '[') {
                p++;
                while (*p != ']') {
                    if (*p == '"') {
                        const uint8_t *s = p + 1;
                        p = s_skip(p);
                        size_t sl = (size_t)(p - 1 - s), chars = 0;
                        int ascii = 1;
                        for (size_t i = 0; i < sl; i++) {
                            if (s[i] == '\\')
                                return;  /* an escape: Python decodes it */
                            chars += (s[i] & 0xC0) != 0x80;
                            ascii &= s[i] < 0x80;
                        }
                        if (chars < 300) {
                            int dup = 0;
                            for (int j = 0; j < f->ns && !dup; j++)
                                dup = f->sublen[j] == sl && memcmp(f->subj[j], s, sl) == 0;
                            if (!dup) {
                                if (f->ns == T_MAX_SUBJECTS)
                                    return;
                                f->subj[f->ns] = s;
                                f->sublen[f->ns] = sl;
                                f->ascii[f->ns++] = ascii;
                            }
                        }
                    } else {
                        p = s_skip(p);
                    }
                    if (*p == ',')
                        p++;
                }
                p++;
            } else {
                p = s_skip(p);
            }
            if (*p == '}')
                break;
            p++;  /* ',' */
        }
    }
    f->taken = 1;
}

static PyObject *t_str(const char *prefix, const uint8_t *s, size_t n, int ascii) {
    size_t m = strlen(prefix);
    if (!ascii) {  /* a subject: under 300 characters, so at most 1,196 bytes */
        char buf[1280];
        if (m + n > sizeof buf) {
            PyErr_SetString(PyExc_SystemError, "subject too long");
            return NULL;
        }
        memcpy(buf, prefix, m);
        memcpy(buf + m, s, n);
        return PyUnicode_DecodeUTF8(buf, (Py_ssize_t)(m + n), "strict");
    }
    PyObject *u = PyUnicode_New((Py_ssize_t)(m + n), 127);
    if (u == NULL)
        return NULL;
    memcpy(PyUnicode_1BYTE_DATA(u), prefix, m);
    memcpy(PyUnicode_1BYTE_DATA(u) + m, s, n);
    return u;
}

static PyObject *t_terms(const v_spans *sp, const t_found *f) {
    if (!f->taken)
        Py_RETURN_NONE;
    PyObject *out = PyTuple_New(2 + f->ns), *t;
    if (out == NULL)
        return NULL;
    if ((t = t_str("type:", sp->type, sp->tlen, 1)) == NULL)
        goto fail;
    PyTuple_SET_ITEM(out, 0, t);
    if ((t = t_str("signer:", sp->signer, sp->slen, 1)) == NULL)
        goto fail;
    PyTuple_SET_ITEM(out, 1, t);
    for (int j = 0; j < f->ns; j++) {
        if ((t = t_str("subject:", f->subj[j], f->sublen[j], f->ascii[j])) == NULL)
            goto fail;
        PyTuple_SET_ITEM(out, 2 + j, t);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

typedef struct {
    v_spans sp;
    t_found f;
    uint8_t hash[32];
} c_row;

/* check_entries(leaves) -> (verdicts, hashes, terms): verify_entries' verdicts, the RFC 6962 leaf hash of every
 * leaf, and for each entry with verdict 1 its index terms (or None: ask Python); one pass without the GIL. */
static PyObject *check_entries(PyObject *self, PyObject *arg) {
    PyObject *seq = leaves_tuple(arg, "check_entries");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    PyObject *verdicts = PyBytes_FromStringAndSize(NULL, n), *hashes = NULL, *terms = NULL, *res = NULL;
    uint8_t *msg = PyMem_RawMalloc(V_MAX_LEAF + 1);
    c_row *rows = PyMem_RawMalloc(sizeof(c_row) * (size_t)(n ? n : 1));
    if (verdicts == NULL || msg == NULL || rows == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(verdicts);
    Py_BEGIN_ALLOW_THREADS
    did_cache dc;
    dc.len = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *leaf = (const uint8_t *)PyBytes_AS_STRING(items[i]);
        size_t len = (size_t)PyBytes_GET_SIZE(items[i]);
        dst[i] = verify_one(leaf, len, msg, &dc, &rows[i].sp);
        rows[i].f.taken = 0;
        if (dst[i] == 1)
            t_find(leaf, &rows[i].sp, &rows[i].f);
        sha256_pre(0x00, leaf, len, rows[i].hash);
    }
    Py_END_ALLOW_THREADS
    if ((hashes = PyList_New(n)) == NULL || (terms = PyList_New(n)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyBytes_FromStringAndSize((const char *)rows[i].hash, 32);
        if (h == NULL)
            goto done;
        PyList_SET_ITEM(hashes, i, h);
        PyObject *t = dst[i] == 1 ? t_terms(&rows[i].sp, &rows[i].f) : (Py_INCREF(Py_None), Py_None);
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(terms, i, t);
    }
    res = PyTuple_Pack(3, verdicts, hashes, terms);
done:
    Py_XDECREF(verdicts);
    Py_XDECREF(hashes);
    Py_XDECREF(terms);
    PyMem_RawFree(msg);
    PyMem_RawFree(rows);
    Py_DECREF(seq);
    return res;
}

/* ---- a canonical batch body: its entries' bytes, and for each entry what the write path reads ------------------
 * split_entries(body) -> list of bytes, or None: the elements of body when body is exactly {"entries":[E,...]}
 * (no whitespace, at least one element) and each E is delimited as a JSON object would be (braces and brackets
 * balanced outside strings); None for anything else. The elements are not checked here: check_rows does, and
 * a body whose every element it takes whole is therefore the canonical JSON its elements are joined into. */
static const uint8_t *e_string_end(const uint8_t *p, const uint8_t *end) {
    /* p at an opening '"': the byte after its closing quote, or NULL */
    const uint8_t *q = p + 1;
    for (;;) {
        q = memchr(q, '"', (size_t)(end - q));
        if (q == NULL)
            return NULL;
        size_t k = 0;
        while (q - 1 - k > p && q[-1 - (ptrdiff_t)k] == '\\')
            k++;
        if ((k & 1) == 0)
            return q + 1;
        q++;
    }
}

static PyObject *split_entries(PyObject *self, PyObject *arg) {
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "split_entries() takes bytes");
        return NULL;
    }
    static const char pre[] = "{\"entries\":[";
    const size_t pl = sizeof pre - 1;
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(arg);
    size_t n = (size_t)PyBytes_GET_SIZE(arg);
    if (n < pl + 4 || memcmp(data, pre, pl) != 0 || data[n - 2] != ']' || data[n - 1] != '}')
        Py_RETURN_NONE;
    const uint8_t *p = data + pl, *end = data + n - 2;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (;;) {
        if (p >= end || *p != '{')
            goto none;
        const uint8_t *start = p;
        long depth = 0;
        while (p < end) {
            uint8_t c = *p;
            if (c == '"') {
                if ((p = e_string_end(p, end)) == NULL)
                    goto none;
                continue;
            }
            p++;
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    break;
            }
        }
        if (depth != 0)
            goto none;
        PyObject *b = PyBytes_FromStringAndSize((const char *)start, p - start);
        if (b == NULL || PyList_Append(out, b) < 0) {
            Py_XDECREF(b);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(b);
        if (p == end)
            return out;
        if (*p != ',')
            goto none;
        p++;
    }
none:
    Py_DECREF(out);
    Py_RETURN_NONE;
}

/* the last string made from the same bytes (the entries of a batch share their type, signer and often time) */
typedef struct {
    PyObject *s;
    const uint8_t *b;
    size_t n;
} s_cache;

static PyObject *s_cached(s_cache *c, const char *prefix, const uint8_t *b, size_t n) {
    if (c->s != NULL && c->n == n && memcmp(c->b, b, n) == 0) {
        Py_INCREF(c->s);
        return c->s;
    }
    PyObject *u = t_str(prefix, b, n, 1);  /* ASCII: type, did and time are checked to be */
    if (u == NULL)
        return NULL;
    Py_XSETREF(c->s, u);
    c->b = b;
    c->n = n;
    Py_INCREF(u);
    return u;
}

typedef struct {
    v_parsed e;
    t_found f;
    uint8_t hash[32];
    uint8_t verdict;
} r_row;

static PyObject *k_type, *k_signer, *k_time, *k_v, *k_sig, *k_leaf, *k_dict;

/* The signature checks of rows [a, b) of a check_rows call (the structure already checked: dst 1, or 2 when not
 * handled); msg: scratch of V_MAX_LEAF + 1 bytes. Rows are independent: two threads may run disjoint ranges. */
typedef struct {
    PyObject **items;
    r_row *rows;
    uint8_t *dst;
    Py_ssize_t a, b;
} r_range;

static void r_sign(const r_range *r, uint8_t *msg) {
    for (Py_ssize_t i = r->a; i < r->b; i++) {
        const uint8_t *leaf = (const uint8_t *)PyBytes_AS_STRING(r->items[i]);
        size_t len = (size_t)PyBytes_GET_SIZE(r->items[i]);
        r->rows[i].f.taken = 0;
        sha256_pre(0x00, leaf, len, r->rows[i].hash);
        if (r->dst[i] != 1)  /* partial: not handled here (verdict 2) */
            continue;
        r->dst[i] = v_signature(leaf, len, msg, &r->rows[i].e);
        if (r->dst[i] == 1)
            t_find(leaf, &r->rows[i].e.sp, &r->rows[i].f);
    }
}

#ifndef _WIN32
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

/* One helper thread per process (started on first use, again after a fork) that checks the second half of a
 * check_rows call's signatures while the calling thread checks the first: a piece of requests uses both cores
 * without a second Python thread (no GIL hand-off, no future). One caller at a time owns it (trylock): any
 * other concurrent call checks its rows alone, as before. */
static pthread_mutex_t w_own = PTHREAD_MUTEX_INITIALIZER;  /* held by the caller using the helper */
static pthread_mutex_t w_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t w_go = PTHREAD_COND_INITIALIZER, w_done = PTHREAD_COND_INITIALIZER;
static pid_t w_pid = 0;  /* the process whose helper runs (0: none) */
static r_range w_job;
static int w_state = 0;  /* 0 idle, 1 job posted, 2 job done, 3 job not done (the helper had no scratch) */
static unsigned long long w_jobs = 0;

static void *w_main(void *unused) {
    (void)unused;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "ailedger-sigchk");  /* as top and /proc/PID/task/TID/comm name it */
#endif
    uint8_t *msg = malloc(V_MAX_LEAF + 1);
    pthread_mutex_lock(&w_mu);
    for (;;) {
        while (w_state != 1)
            pthread_cond_wait(&w_go, &w_mu);
        r_range job = w_job;
        pthread_mutex_unlock(&w_mu);
        if (msg != NULL)
            r_sign(&job, msg);
        pthread_mutex_lock(&w_mu);
        w_state = msg != NULL ? 2 : 3;  /* 3: no scratch, the caller checks those rows itself */
        pthread_cond_signal(&w_done);
    }
    return NULL;
}

/* with w_own held: the helper of this process, started if need be; 0 when it runs */
static int w_ensure(void) {
    pid_t me = getpid();
    if (w_pid == me)
        return 0;
    /* first use, or a child after fork (the parent's helper did not follow): fresh state, a new thread */
    pthread_mutex_t m0 = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c0 = PTHREAD_COND_INITIALIZER;
    w_mu = m0;
    w_go = c0;
    w_done = c0;
    w_state = 0;
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);  /* signals stay with Python's main thread */
    int rc = pthread_create(&t, &attr, w_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -1;
    w_pid = me;
    return 0;
}

static void w_child(void) {  /* after fork, in the child: the helper did not follow; nobody owns it there */
    pthread_mutex_t m0 = PTHREAD_MUTEX_INITIALIZER;
    w_own = m0;
    w_pid = 0;
}

/* rows [0, n): the second half on the helper when split and it is free, the first here; else all here */
static void r_sign_all(PyObject **items, r_row *rows, uint8_t *dst, Py_ssize_t n, int split, uint8_t *msg) {
    r_range all = {items, rows, dst, 0, n};
    if (!split || n < 2 || pthread_mutex_trylock(&w_own) != 0) {
        r_sign(&all, msg);
        return;
    }
    if (w_ensure() != 0) {
        pthread_mutex_unlock(&w_own);
        r_sign(&all, msg);
        return;
    }
    Py_ssize_t h = n / 2;
    r_range mine = {items, rows, dst, 0, h};
    pthread_mutex_lock(&w_mu);
    w_job = (r_range){items, rows, dst, h, n};
    w_state = 1;
    w_jobs++;
    pthread_cond_signal(&w_go);
    pthread_mutex_unlock(&w_mu);
    r_sign(&mine, msg);
    pthread_mutex_lock(&w_mu);
    while (w_state == 1)
        pthread_cond_wait(&w_done, &w_mu);
    int undone = w_state == 3;
    w_state = 0;
    pthread_mutex_unlock(&w_mu);
    pthread_mutex_unlock(&w_own);
    if (undone) {  /* the helper had no scratch: the second half here too */
        r_range rest = {items, rows, dst, h, n};
        r_sign(&rest, msg);
    }
}
#else
static void r_sign_all(PyObject **items, r_row *rows, uint8_t *dst, Py_ssize_t n, int split, uint8_t *msg) {
    (void)split;
    r_range all = {items, rows, dst, 0, n};
    r_sign(&all, msg);
}
#endif

/* check_rows(leaves, cls, partial=False) -> (verdicts, hashes, terms, entries), or None: check_entries of leaves
 * when every one of them passes the structure check (verdicts 1 or 0), with for each entry of verdict 1 an instance
 * of cls (records.SignedEntry) whose __dict__ holds type, v, signer, time, sig and leaf_bytes (not body: records
 * reads it from leaf_bytes when asked), else None. None as soon as one leaf is not handled here (verdict 2), before
 * any signature is checked: the caller then takes its general path. partial (leaves that are independent requests,
 * e.g. the single-entry bodies of the ingest front): never None; a leaf not handled gets verdict 2 (its signature
 * not checked, its term and entry None) and the others are checked as usual. split: the signatures of the second
 * half are checked on the helper thread (r_sign_all) when no other call holds it. The GIL is released for the
 * checks. */
static PyObject *check_rows(PyObject *self, PyObject *args) {
    PyObject *arg, *cls;
    int partial = 0, split = 0;
    if (!PyArg_ParseTuple(args, "OO!|pp:check_rows", &arg, &PyType_Type, &cls, &partial, &split))
        return NULL;
    PyTypeObject *tp = (PyTypeObject *)cls;
    PyObject *seq = leaves_tuple(arg, "check_rows");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    PyObject *verdicts = PyBytes_FromStringAndSize(NULL, n), *hashes = NULL, *terms = NULL, *entries = NULL;
    PyObject *res = NULL;
    s_cache c_type = {NULL, NULL, 0}, c_signer = {NULL, NULL, 0}, c_time = {NULL, NULL, 0};
    s_cache c_tterm = {NULL, NULL, 0}, c_sterm = {NULL, NULL, 0};
    uint8_t *msg = PyMem_RawMalloc(V_MAX_LEAF + 1);
    r_row *rows = PyMem_RawMalloc(sizeof(r_row) * (size_t)(n ? n : 1));
    if (verdicts == NULL || msg == NULL || rows == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(verdicts);
    int whole = 1;
    Py_BEGIN_ALLOW_THREADS
    did_cache dc;
    dc.len = 0;
    for (Py_ssize_t i = 0; i < n && whole; i++) {  /* every structure first: no signature checked in vain */
        dst[i] = v_parse((const uint8_t *)PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i]), &dc,
                         &rows[i].e);
        whole = dst[i] == 1 || partial;
    }
    if (whole)
        r_sign_all(items, rows, dst, n, split, msg);
    Py_END_ALLOW_THREADS
    if (!whole) {
        Py_INCREF(Py_None);
        res = Py_None;
        goto done;
    }
    if ((hashes = PyList_New(n)) == NULL || (terms = PyList_New(n)) == NULL || (entries = PyList_New(n)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyBytes_FromStringAndSize((const char *)rows[i].hash, 32);
        if (h == NULL)
            goto done;
        PyList_SET_ITEM(hashes, i, h);
        if (dst[i] != 1) {
            Py_INCREF(Py_None);
            PyList_SET_ITEM(terms, i, Py_None);
            Py_INCREF(Py_None);
            PyList_SET_ITEM(entries, i, Py_None);
            continue;
        }
        const v_parsed *e = &rows[i].e;
        const t_found *f = &rows[i].f;
        PyObject *t;
        if (!f->taken) {
            Py_INCREF(Py_None);
            t = Py_None;
        } else {
            if ((t = PyTuple_New(2 + f->ns)) == NULL)
                goto done;
            PyObject *x;
            if ((x = s_cached(&c_tterm, "type:", e->sp.type, e->sp.tlen)) == NULL) {
                Py_DECREF(t);
                goto done;
            }
            PyTuple_SET_ITEM(t, 0, x);
            if ((x = s_cached(&c_sterm, "signer:", e->sp.signer, e->sp.slen)) == NULL) {
                Py_DECREF(t);
                goto done;
            }
            PyTuple_SET_ITEM(t, 1, x);
            for (int j = 0; j < f->ns; j++) {
                if ((x = t_str("subject:", f->subj[j], f->sublen[j], f->ascii[j])) == NULL) {
                    Py_DECREF(t);
                    goto done;
                }
                PyTuple_SET_ITEM(t, 2 + j, x);
            }
        }
        PyList_SET_ITEM(terms, i, t);
        PyObject *d = PyDict_New(), *o = NULL, *x = NULL;
        if (d == NULL)
            goto done;
#define SETF(key, expr) \
        if ((x = (expr)) == NULL || PyDict_SetItem(d, key, x) < 0) goto entry_fail; \
        Py_DECREF(x); x = NULL;
        SETF(k_type, s_cached(&c_type, "", e->sp.type, e->sp.tlen))
        SETF(k_v, PyLong_FromLongLong(e->v))
        SETF(k_signer, s_cached(&c_signer, "", e->sp.signer, e->sp.slen))
        SETF(k_time, s_cached(&c_time, "", e->time, e->timelen))
        SETF(k_sig, PyBytes_FromStringAndSize((const char *)e->sig, 64))
#undef SETF
        if (PyDict_SetItem(d, k_leaf, items[i]) < 0)
            goto entry_fail;
        if ((o = tp->tp_alloc(tp, 0)) == NULL || PyObject_GenericSetAttr(o, k_dict, d) < 0)
            goto entry_fail;
        Py_DECREF(d);
        PyList_SET_ITEM(entries, i, o);
        continue;
    entry_fail:
        Py_XDECREF(x);
        Py_XDECREF(o);
        Py_DECREF(d);
        goto done;
    }
    res = PyTuple_Pack(4, verdicts, hashes, terms, entries);
done:
    Py_XDECREF(verdicts);
    Py_XDECREF(hashes);
    Py_XDECREF(terms);
    Py_XDECREF(entries);
    Py_XDECREF(c_type.s);
    Py_XDECREF(c_signer.s);
    Py_XDECREF(c_time.s);
    Py_XDECREF(c_tterm.s);
    Py_XDECREF(c_sterm.s);
    PyMem_RawFree(msg);
    PyMem_RawFree(rows);
    Py_DECREF(seq);
    return res;
}

static PyObject *helper_jobs(PyObject *self, PyObject *unused) {
#ifndef _WIN32
    return PyLong_FromUnsignedLongLong(w_jobs);
#else
    return PyLong_FromLong(0);
#endif
}

/* answer_batch(results, appended) -> bytes: the JSON answer of POST /v1/entries/batch, byte for byte what
 * orjson gives for {"results": [{"index", "leaf_hash" (hex), "duplicate"}, ...], "appended", "duplicates"}:
 * results are (index, 32-byte hash, duplicate) tuples (log.AppendResult). */
static PyObject *answer_batch(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "answer_batch() takes a sequence of results");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    /* {"index":<20>,"leaf_hash":"<64>","duplicate":false}, */
    size_t cap = 16 + (size_t)n * 144 + 96;
    char *buf = PyMem_Malloc(cap), *w = buf;
    PyObject *out = NULL;
    if (buf == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t dups = 0;
    memcpy(w, "{\"results\":[", 12);
    w += 12;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = items[i];
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) < 3 || !PyLong_CheckExact(PyTuple_GET_ITEM(r, 0))
            || !PyBytes_Check(PyTuple_GET_ITEM(r, 1)) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(r, 1)) != 32
            || !PyBool_Check(PyTuple_GET_ITEM(r, 2))) {
            PyErr_SetString(PyExc_TypeError, "answer_batch() takes (int, 32-byte bytes, bool) results");
            goto done;
        }
        long long idx = PyLong_AsLongLong(PyTuple_GET_ITEM(r, 0));
        if (idx == -1 && PyErr_Occurred())
            goto done;
        int dup = PyTuple_GET_ITEM(r, 2) == Py_True;
        dups += dup;
        if (i)
            *w++ = ',';
        w += sprintf(w, "{\"index\":%lld,\"leaf_hash\":\"", idx);
        const uint8_t *h = (const uint8_t *)PyBytes_AS_STRING(PyTuple_GET_ITEM(r, 1));
        for (int k = 0; k < 32; k++) {
            *w++ = hex[h[k] >> 4];
            *w++ = hex[h[k] & 15];
        }
        if (dup) {
            memcpy(w, "\",\"duplicate\":true}", 19);
            w += 19;
        } else {
            memcpy(w, "\",\"duplicate\":false}", 20);
            w += 20;
        }
    }
    w += sprintf(w, "],\"appended\":%zd,\"duplicates\":%zd}", n - dups, dups);
    out = PyBytes_FromStringAndSize(buf, w - buf);
done:
    PyMem_Free(buf);
    Py_DECREF(seq);
    return out;
}

static PyMethodDef methods[] = {
    {"sha256_many", sha256_many, METH_O,
     "sha256_many(items) -> bytes: the SHA-256 digests of a sequence of bytes-like objects, concatenated."},
    {"implementation", implementation, METH_NOARGS, "'sha-ni' or 'portable'."},
    {"needs_slow_path", needs_slow_path, METH_O,
     "needs_slow_path(value) -> bool: True unless orjson's sorted output of value is its canonical JSON."},
    {"leaf_hashes", leaf_hashes, METH_O, "leaf_hashes(datas) -> list: the RFC 6962 leaf hash of each bytes."},
    {"extend_range", extend_range, METH_VARARGS,
     "extend_range(size, border, hashes) -> (border, nodes): a compact range extended by leaf hashes; nodes are "
     "the completed interior nodes as (level << 56 | index, hash)."},
    {"extend_levels", extend_levels, METH_VARARGS,
     "extend_levels(size, border, hashes) -> (border, levels): extend_range with the completed interior nodes as "
     "(level, first index, hashes concatenated) per level."},
    {"_set_portable", set_portable, METH_O, "Force (True) or release (False) the portable code (for tests)."},
    {"_sodium_load", sodium_load, METH_O,
     "_sodium_load(path): use the libsodium at path (PyNaCl's bundled copy) for verify_entries()."},
    {"check_entries", check_entries, METH_O,
     "check_entries(leaves) -> (verdicts, hashes, terms): verify_entries' verdicts, each leaf's RFC 6962 hash, and "
     "ledger.entry_terms of each entry with verdict 1 whose terms take its short path (None: ask Python)."},
    {"split_entries", split_entries, METH_O,
     "split_entries(body) -> list | None: the elements' bytes of a body {\"entries\":[...]} (unchecked), else None."},
    {"check_rows", check_rows, METH_VARARGS,
     "check_rows(leaves, cls, partial=False, split=False) -> (verdicts, hashes, terms, entries) | None: check_entries "
     "with an instance of cls per entry of verdict 1 (body read from leaf_bytes on demand); None when a leaf is not "
     "handled here (verdict 2), unless partial: then that leaf alone gets verdict 2 (and None). split: half the "
     "signatures on the module's helper thread when it is free (the same result, on two cores)."},
    {"_helper_jobs", helper_jobs, METH_NOARGS,
     "_helper_jobs() -> int: how many check_rows calls had half their signatures checked by the helper thread."},
    {"answer_batch", answer_batch, METH_O,
     "answer_batch(results) -> bytes: the JSON answer of a batch append (orjson's bytes for the same document)."},
    {"verify_entries", verify_entries, METH_O,
     "verify_entries(leaves) -> bytes: per entry 1 (valid), 0 (bad signature) or 2 (not handled here)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__speedups(void) {
#ifdef AILEDGER_X86
    if (have_shani())
        compress = blocks_shani;
#endif
    if ((k_type = PyUnicode_InternFromString("type")) == NULL || (k_signer = PyUnicode_InternFromString("signer")) == NULL
        || (k_time = PyUnicode_InternFromString("time")) == NULL || (k_v = PyUnicode_InternFromString("v")) == NULL
        || (k_sig = PyUnicode_InternFromString("sig")) == NULL
        || (k_leaf = PyUnicode_InternFromString("leaf_bytes")) == NULL
        || (k_dict = PyUnicode_InternFromString("__dict__")) == NULL)
        return NULL;
#ifndef _WIN32
    static int forked_handler = 0;
    if (!forked_handler && pthread_atfork(NULL, NULL, w_child) == 0)
        forked_handler = 1;
#endif
    return PyModule_Create(&module);
}
