/* ailedger.tlog._tiled: a small read-only HTTP/1.1 server for a static C2SP tlog-tiles mirror.
 *
 * It serves the directory `ailedger tiles export` writes: /checkpoint, /tile/<L>/<N>[.p/<W>] and
 * /tile/entries/<N>[.p/<W>], nothing else.  Every tile path names bytes that never change (tlog-tiles),
 * so each tile is read from disk once and then answered from memory as a ready-made response.  The
 * checkpoint is the one file that changes: it is re-read when inotify reports it replaced (the
 * exporter renames it into place) and, as a fallback, when it is older than the refresh interval.
 *
 * One thread runs one epoll loop with the GIL released; Python handles arguments, the listening
 * socket, worker processes and signals (checked every 100 ms and on EINTR).
 */
#ifndef TILED_NO_PYTHON /* the fuzz harness (tests/fuzz/tiled/) builds the loop without Python */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#elif !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* accept4 (Python.h sets it in the module build) */
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "_http1.h"

#define HEAD_MAX 8192          /* longest request head accepted (431 beyond) */
#define MAX_FILE (64u << 20)   /* larger files are not tiles */
#define LINGER_MS 2000         /* how long a closing connection's late input is read and dropped */
#define REFUSE_SLOTS 128       /* connections over the limit that still get a 503 answer */

enum { K_NONE = 0, K_CHECKPOINT, K_TILE, K_TILE_PARTIAL, K_BUNDLE, K_BUNDLE_PARTIAL };

typedef struct {
    char *key;
    size_t klen;
    uint64_t hash;
    char *resp;      /* status line + headers + blank line + body */
    size_t len;      /* whole response */
    size_t hdr_end;  /* offset of the blank line's CRLF (headers end here) */
    size_t head_len; /* headers with the blank line (a HEAD answer) */
    size_t date_off; /* offset of the 29-character Date value */
    int64_t date_sec;
} entry_t;

typedef struct {
    int fd;
    size_t rlen;
    char *out;
    size_t olen, ooff, ocap;
    int64_t last_ms;
    int64_t head_ms; /* when the request head now in rbuf began arriving (slow-client limit) */
    int closing;
    int want_out;
    int head_req; /* the request being answered is a HEAD: no body, errors included */
    int refuse;   /* accepted over the connection limit: its request is answered 503 */
    int lingering; /* answered and shut for writing: input is read and dropped until EOF */
    char rbuf[HEAD_MAX];
} conn_t;

/* ---- state (one loop per process) ------------------------------------------------------------- */
static struct {
    entry_t *slots;
    size_t cap, used, bytes;
} cache;

static entry_t cp;            /* the checkpoint's current response (resp == NULL: none yet) */
static int cp_stale = 1;
static int64_t cp_loaded_ms;

static conn_t **conns;
static size_t conns_cap;
static size_t n_conns;

static int root_fd = -1, ep = -1, lfd = -1, ifd = -1;
static size_t cache_cap_bytes;
static int64_t refresh_ms, idle_ms, head_ms_limit;
static size_t max_conns;

static int64_t now_ms;
static int64_t date_sec = -1;
static char date_now[40];

static struct {
    unsigned long long requests, ok, not_found, bad, refused, accepted, closed_idle, cache_resets,
        checkpoint_reloads, bytes_out, errors, slow_heads;
    size_t cached_tiles, cached_bytes;
    int inotify;
} st;

/* ---- small helpers --------------------------------------------------------------------------- */
static void update_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    http1_set_date(date_now, sizeof date_now, &date_sec, ts.tv_sec);
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

static int d3(const char *p)
{
    return p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9';
}

/* What a request path names: K_NONE for anything that is not a tlog-tiles path.  Only digits, 'x',
 * '/', ".p/" and "entries" can pass, so nothing outside the mirror's tile tree can be named. */
static int classify(const char *p, size_t n, int *width)
{
    size_t i;
    int entries = 0;
    *width = 256;
    if (n == 11 && memcmp(p, "/checkpoint", 11) == 0)
        return K_CHECKPOINT;
    if (n < 9 || memcmp(p, "/tile/", 6) != 0)
        return K_NONE;
    i = 6;
    if (n - i >= 8 && memcmp(p + i, "entries/", 8) == 0) {
        entries = 1;
        i += 8;
    } else {
        size_t s = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == s || i - s > 2 || (p[s] == '0' && i - s > 1) || i >= n || p[i] != '/')
            return K_NONE;
        i++;
    }
    for (;;) {
        if (i < n && p[i] == 'x') {
            if (i + 5 > n || !d3(p + i + 1) || p[i + 4] != '/')
                return K_NONE;
            i += 5;
            continue;
        }
        if (i + 3 > n || !d3(p + i))
            return K_NONE;
        i += 3;
        break;
    }
    if (i == n)
        return entries ? K_BUNDLE : K_TILE;
    if (n - i < 4 || memcmp(p + i, ".p/", 3) != 0)
        return K_NONE;
    i += 3;
    if (n - i > 3 || p[i] == '0')
        return K_NONE;
    int w = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return K_NONE;
        w = w * 10 + (p[i] - '0');
    }
    if (w < 1 || w > 255)
        return K_NONE;
    *width = w;
    return entries ? K_BUNDLE_PARTIAL : K_TILE_PARTIAL;
}

/* ---- responses -------------------------------------------------------------------------------- */
static const char *cache_control(int kind)
{
    switch (kind) {
    case K_CHECKPOINT:
        return "no-cache";
    case K_TILE:
    case K_BUNDLE:
        return "public, max-age=31536000, immutable";
    default:
        return "public, max-age=60";
    }
}

/* Build the whole 200 response for `body` into e->resp. */
static int build_ok(entry_t *e, int kind, const char *body, size_t blen)
{
    char head[512];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: %s\r\nAccess-Control-Allow-Origin: *\r\n\r\n",
                     date_now, kind == K_CHECKPOINT ? "text/plain; charset=utf-8" : "application/octet-stream",
                     blen, cache_control(kind));
    char *r = malloc((size_t)h + blen);
    if (r == NULL)
        return -1;
    memcpy(r, head, (size_t)h);
    memcpy(r + h, body, blen);
    e->resp = r;
    e->len = (size_t)h + blen;
    e->head_len = (size_t)h;
    e->hdr_end = (size_t)h - 2;
    e->date_off = 23; /* strlen("HTTP/1.1 200 OK\r\nDate: ") */
    e->date_sec = date_sec;
    return 0;
}

/* Read a whole regular file under the mirror root.  Returns 0, or an HTTP status on failure. */
static int read_file(const char *rel, char **buf, size_t *len)
{
    int fd = openat(root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) ? 404 : 500;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return 404;
    }
    if ((uint64_t)sb.st_size > MAX_FILE || sb.st_size == 0) {
        close(fd);
        return 500;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *b = malloc(n);
    if (b == NULL) {
        close(fd);
        return 500;
    }
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(b);
        return 500;
    }
    *buf = b;
    *len = n;
    return 0;
}

static void cache_clear(void)
{
    for (size_t i = 0; i < cache.cap; i++) {
        if (cache.slots[i].key) {
            free(cache.slots[i].key);
            free(cache.slots[i].resp);
        }
    }
    memset(cache.slots, 0, cache.cap * sizeof(entry_t));
    cache.used = cache.bytes = 0;
}

static entry_t *cache_find(const char *k, size_t n, uint64_t h)
{
    size_t m = cache.cap - 1;
    for (size_t i = h & m;; i = (i + 1) & m) {
        entry_t *e = &cache.slots[i];
        if (e->key == NULL)
            return e;
        if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0)
            return e;
    }
}

static int cache_grow(void)
{
    size_t ncap = cache.cap * 2;
    entry_t *ns = calloc(ncap, sizeof(entry_t));
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < cache.cap; i++) {
        entry_t *e = &cache.slots[i];
        if (e->key == NULL)
            continue;
        size_t j = e->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
    }
    free(cache.slots);
    cache.slots = ns;
    cache.cap = ncap;
    return 0;
}

/* The checkpoint: reloaded when marked stale (inotify) or older than the refresh interval.  A failed
 * reload keeps the previous one (the exporter replaces it by rename, so it is never half-written). */
static entry_t *checkpoint_entry(int *status)
{
    if (cp_stale || cp.resp == NULL || now_ms - cp_loaded_ms >= refresh_ms) {
        char *b;
        size_t n;
        int s = read_file("checkpoint", &b, &n);
        cp_loaded_ms = now_ms;
        cp_stale = 0;
        if (s == 0) {
            entry_t e = {0};
            if (build_ok(&e, K_CHECKPOINT, b, n) == 0) {
                free(cp.resp);
                cp = e;
                st.checkpoint_reloads++;
            }
            free(b);
        } else if (cp.resp == NULL) {
            *status = s;
            return NULL;
        }
    }
    return &cp;
}

/* The cached response for a tile path, reading the file the first time. */
static entry_t *tile_entry(const char *path, size_t n, int kind, int width, int *status, entry_t *scratch)
{
    uint64_t h = fnv1a(path, n);
    entry_t *e = cache_find(path, n, h);
    if (e->key)
        return e;
    char rel[256];
    if (n >= sizeof rel) {
        *status = 404;
        return NULL;
    }
    memcpy(rel, path + 1, n - 1);
    rel[n - 1] = 0;
    char *b;
    size_t blen;
    int s = read_file(rel, &b, &blen);
    if (s) {
        *status = s;
        return NULL;
    }
    /* hash tiles have an exact size: anything else is a damaged mirror, never cached */
    if ((kind == K_TILE || kind == K_TILE_PARTIAL) && blen != (size_t)32 * width) {
        free(b);
        *status = 500;
        return NULL;
    }
    entry_t ne = {0};
    if (build_ok(&ne, kind, b, blen) != 0) {
        free(b);
        *status = 500;
        return NULL;
    }
    free(b);
    if (ne.len > cache_cap_bytes / 2) { /* too large to keep: answered once from scratch */
        *scratch = ne;
        return scratch;
    }
    if (cache.bytes + ne.len > cache_cap_bytes) {
        cache_clear();
        st.cache_resets++;
        e = cache_find(path, n, h);
    }
    if ((cache.used + 1) * 10 > cache.cap * 7) {
        if (cache_grow() != 0) {
            *scratch = ne;
            return scratch;
        }
        e = cache_find(path, n, h);
    }
    ne.key = malloc(n);
    if (ne.key == NULL) {
        *scratch = ne;
        return scratch;
    }
    memcpy(ne.key, path, n);
    ne.klen = n;
    ne.hash = h;
    *e = ne;
    cache.used++;
    cache.bytes += ne.len + n;
    return e;
}

/* ---- connections ------------------------------------------------------------------------------ */
static void conn_close(conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->out);
    free(c);
    n_conns--;
}

/* A server-side close: shut the write side and drop what the client still sends until it closes
 * (or LINGER_MS pass), so unread input never turns the last answer into a reset (RFC 9112 9.6). */
static void begin_close(conn_t *c)
{
    shutdown(c->fd, SHUT_WR);
    c->lingering = 1;
    c->rlen = 0;
    c->last_ms = now_ms;
    if (c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = 0;
    }
}

static int out_append(conn_t *c, const char *p, size_t n)
{
    return http1_out_append(&c->out, &c->olen, &c->ooff, &c->ocap, 16384, p, n);
}

/* Send bytes now if nothing is queued and no more requests wait behind this one; else queue them. */
static int send_bytes(conn_t *c, const char *p, size_t n, int more)
{
    st.bytes_out += n;
    if (c->olen == c->ooff && !more) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w == (ssize_t)n)
            return 0;
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return -1;
            w = 0;
        }
        p += w;
        n -= (size_t)w;
    }
    return out_append(c, p, n);
}

static int send_error(conn_t *c, int status, const char *code, const char *msg, int close_after, int more)
{
    const char *reason;
    const char *extra = "";
    switch (status) {
    case 400: reason = "Bad Request"; break;
    case 404: reason = "Not Found"; break;
    case 405: reason = "Method Not Allowed"; extra = "Allow: GET, HEAD\r\n"; break;
    case 408: reason = "Request Timeout"; break;
    case 431: reason = "Request Header Fields Too Large"; break;
    case 503: reason = "Service Unavailable"; extra = "Retry-After: 1\r\n"; st.refused++; break;
    case 505: reason = "HTTP Version Not Supported"; break;
    default: status = 500; reason = "Internal Server Error"; break;
    }
    char body[256], buf[768];
    int bl = snprintf(body, sizeof body, "{\"code\": \"%s\", \"message\": \"%s\"}\n", code, msg);
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Cache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n%s%s\r\n%s",
                     status, reason, date_now, bl, extra, close_after ? "Connection: close\r\n" : "", body);
    if (status == 503)
        ;
    else if (status >= 500)
        st.errors++;
    else if (status == 404)
        st.not_found++;
    else
        st.bad++;
    if (close_after)
        c->closing = 1;
    if (c->head_req)
        n -= bl;
    return send_bytes(c, buf, (size_t)n, more);
}

/* Answer one request head (h bytes at p, ending with the blank line). */
static int handle(conn_t *c, const char *p, size_t h, int more)
{
    st.requests++;
    c->head_req = 0;
    const char *end = p + h;
    const char *q; /* the line after the request line */
    size_t ll = http1_line(p, end, &q);
    /* request line: METHOD SP target SP HTTP/x.y */
    const char *sp1 = memchr(p, ' ', ll);
    if (sp1 == NULL)
        return send_error(c, 400, "bad_request", "malformed request line", 1, more);
    const char *tgt = sp1 + 1;
    const char *sp2 = memchr(tgt, ' ', ll - (size_t)(tgt - p));
    if (sp2 == NULL || sp2 == tgt)
        return send_error(c, 400, "bad_request", "malformed request line", 1, more);
    const char *ver = sp2 + 1;
    size_t vl = ll - (size_t)(ver - p);
    int http11 = http1_version(ver, vl);
    if (http11 == -505)
        return send_error(c, 505, "http_version", "only HTTP/1.0 and HTTP/1.1 are served", 1, more);
    if (http11 < 0)
        return send_error(c, 400, "bad_request", "malformed request line", 1, more);
    size_t ml = (size_t)(sp1 - p);
    int head = 0;
    if (ml == 4 && memcmp(p, "HEAD", 4) == 0)
        head = c->head_req = 1;
    else if (!(ml == 3 && memcmp(p, "GET", 3) == 0)) {
        if (ml == 0)
            return send_error(c, 400, "bad_request", "malformed request line", 1, more);
        for (size_t i = 0; i < ml; i++)
            if (p[i] < 'A' || p[i] > 'Z')
                return send_error(c, 400, "bad_request", "malformed request line", 1, more);
    }
    /* header fields */
    int keep = http11, has_host = 0, body = 0, bad = 0;
    while (q < end) {
        const char *next;
        size_t n = http1_line(q, end, &next);
        if (n == 0)
            break;
        size_t nl, vn;
        const char *v;
        if (!http1_field(q, n, &nl, &v, &vn)) {
            bad = 1;
            break;
        }
        if (ieq(q, nl, "host"))
            has_host++;
        else if (ieq(q, nl, "connection"))
            keep = http1_keep_alive(v, vn, keep);
        else if (ieq(q, nl, "content-length")) {
            if (!(vn == 1 && v[0] == '0'))
                body = 1;
        } else if (ieq(q, nl, "transfer-encoding"))
            body = 1;
        q = next;
    }
    if (bad)
        return send_error(c, 400, "bad_request", "malformed header field", 1, more);
    if (http11 && has_host != 1)
        return send_error(c, 400, "bad_request", "an HTTP/1.1 request needs exactly one Host header", 1, more);
    if (body)
        return send_error(c, 400, "bad_request", "requests to the tile mirror carry no body", 1, more);
    if (c->refuse)
        return send_error(c, 503, "overloaded", "too many connections; retry", 1, more);
    if (!head && !(ml == 3 && memcmp(p, "GET", 3) == 0))
        return send_error(c, 405, "method_not_allowed", "the tile mirror is read-only: GET or HEAD", !keep, more);
    /* target: origin-form, or absolute-form (its path); the query is ignored */
    size_t tl = (size_t)(sp2 - tgt);
    if (tl > 7 && (memcmp(tgt, "http://", 7) == 0 || (tl > 8 && memcmp(tgt, "https://", 8) == 0))) {
        const char *s = memchr(tgt + 8, '/', tl - 8);
        if (s == NULL)
            return send_error(c, 404, "not_found", "no tile, entry bundle or checkpoint at this path", !keep, more);
        tl -= (size_t)(s - tgt);
        tgt = s;
    }
    const char *qm = memchr(tgt, '?', tl);
    if (qm)
        tl = (size_t)(qm - tgt);
    int width, kind = classify(tgt, tl, &width);
    if (kind == K_NONE)
        return send_error(c, 404, "not_found", "no tile, entry bundle or checkpoint at this path", !keep, more);
    int status = 404;
    entry_t scratch = {0};
    entry_t *e = kind == K_CHECKPOINT ? checkpoint_entry(&status) : tile_entry(tgt, tl, kind, width, &status, &scratch);
    if (e == NULL) {
        if (status == 404)
            return send_error(c, 404, "not_found", "no tile, entry bundle or checkpoint at this path", !keep, more);
        return send_error(c, 500, "mirror_unreadable",
                          "the mirror file for this path cannot be read or has the wrong size", !keep, more);
    }
    if (e->date_sec != date_sec) {
        memcpy(e->resp + e->date_off, date_now, 29);
        e->date_sec = date_sec;
    }
    st.ok++;
    int rc;
    if (keep && http11) {
        rc = send_bytes(c, e->resp, head ? e->head_len : e->len, more);
    } else {
        /* the rare forms: add a Connection header */
        const char *ch = keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
        rc = out_append(c, e->resp, e->hdr_end);
        if (rc == 0)
            rc = out_append(c, ch, strlen(ch));
        if (rc == 0)
            rc = out_append(c, e->resp + e->hdr_end, (head ? e->head_len : e->len) - e->hdr_end);
        st.bytes_out += (head ? e->head_len : e->len) + strlen(ch);
        if (!keep)
            c->closing = 1;
    }
    if (e == &scratch)
        free(scratch.resp);
    return rc;
}

static void set_interest(conn_t *c, int want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = want_out ? EPOLLOUT : EPOLLIN, .data.fd = c->fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

/* Write what is queued; 0 = all sent, 1 = more queued, -1 = connection gone. */
static int flush_out(conn_t *c)
{
    return http1_out_flush(c->fd, &c->out, &c->olen, &c->ooff, &c->ocap);
}

/* After a flush (r from flush_out): close, begin a lingering close, or go on.  1 = the connection
 * stays in use and nothing is queued; 0 = it is closing, gone, or waiting to write. */
static int settle(conn_t *c, int r)
{
    if (r < 0) {
        conn_close(c);
        return 0;
    }
    if (r == 0 && c->closing) {
        begin_close(c);
        return 0;
    }
    return r == 0;
}

/* Answer every complete request in the read buffer (stopping while output is queued). */
static void process(conn_t *c)
{
    for (;;) {
        size_t pos = 0;
        int paused = 0;
        while (pos < c->rlen && !c->closing) {
            /* blank lines before a request line are ignored (RFC 9112 2.2) */
            while (pos < c->rlen && (c->rbuf[pos] == '\r' || c->rbuf[pos] == '\n'))
                pos++;
            const char *p = c->rbuf + pos;
            size_t h = http1_head_end(p, c->rlen - pos);
            if (h == 0) {
                if (pos == 0 && c->rlen == HEAD_MAX) {
                    c->head_req = 0;
                    st.requests++;
                    if (send_error(c, 431, "head_too_large", "the request head is over 8 KiB", 1, 0) != 0) {
                        conn_close(c);
                        return;
                    }
                    pos = c->rlen;
                }
                break;
            }
            int more = pos + h < c->rlen;
            if (handle(c, p, h, more) != 0) {
                conn_close(c);
                return;
            }
            pos += h;
            if (c->olen - c->ooff > (1u << 20)) {
                paused = 1; /* a client pipelining faster than it reads: drain before going on */
                break;
            }
        }
        if (pos) {
            memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
            c->rlen -= pos;
        }
        int r = flush_out(c);
        int idle = settle(c, r);
        if (idle && paused)
            continue;
        if (idle || r == 1)
            set_interest(c, r == 1);
        return;
    }
}

static void on_readable(conn_t *c)
{
    if (c->lingering) {
        if (http1_linger_read(c->fd))
            conn_close(c);
        return;
    }
    if (c->rlen >= HEAD_MAX) { /* only possible while output is queued */
        set_interest(c, 1);
        return;
    }
    ssize_t r = recv(c->fd, c->rbuf + c->rlen, HEAD_MAX - c->rlen, MSG_DONTWAIT);
    if (http1_recv_gone(r)) {
        conn_close(c);
        return;
    }
    if (r < 0)
        return;
    size_t before = c->rlen;
    int fd = c->fd;
    if (before == 0)
        c->head_ms = now_ms;
    c->rlen += (size_t)r;
    c->last_ms = now_ms;
    process(c);
    /* requests were answered and a new head is half here: time that one from now */
    if (conns[fd] == c && c->rlen && c->rlen < before + (size_t)r)
        c->head_ms = now_ms;
}

static void on_writable(conn_t *c)
{
    c->last_ms = now_ms;
    if (settle(c, flush_out(c))) {
        set_interest(c, 0);
        if (c->rlen)
            process(c); /* requests that waited behind the queue */
    }
}

/* A new connection on fd (non-blocking, below conns_cap), watched for input; NULL if it cannot be. */
static conn_t *conn_new(int fd, int refuse)
{
    conn_t *c = malloc(sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->rlen = c->olen = c->ooff = c->ocap = 0;
    c->head_ms = now_ms;
    c->out = NULL;
    c->last_ms = now_ms;
    c->closing = c->want_out = c->head_req = c->lingering = 0;
    c->refuse = refuse;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        return NULL;
    }
    conns[fd] = c;
    n_conns++;
    return c;
}

static void on_accept(void)
{
    for (;;) {
        int fd = http1_accept(lfd);
        if (fd < 0)
            return;
        st.accepted++;
        int refuse = n_conns >= max_conns;
        if (refuse && n_conns >= max_conns + REFUSE_SLOTS) {
            close(fd); /* far over the limit: not even a 503 */
            st.refused++;
            continue;
        }
        if ((size_t)fd >= conns_cap) {
            conn_t **n = http1_table_grow(conns, &conns_cap, sizeof *conns, (size_t)fd);
            if (n == NULL) {
                close(fd);
                continue;
            }
            conns = n;
        }
        if (conn_new(fd, refuse) == NULL)
            close(fd);
    }
}

static void on_inotify(void)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(ifd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if ((ev->mask & IN_Q_OVERFLOW) || (ev->len && strcmp(ev->name, "checkpoint") == 0))
                cp_stale = 1;
            p += sizeof *ev + ev->len;
        }
    }
}

static void sweep_idle(void)
{
    for (size_t i = 0; i < conns_cap; i++) {
        conn_t *c = conns[i];
        if (c && c->lingering) {
            if (now_ms - c->last_ms > LINGER_MS)
                conn_close(c);
        } else if (c && c->rlen && !c->want_out && now_ms - c->head_ms > head_ms_limit) {
            /* a request head trickling in (slowloris): answer 408 and close */
            c->head_req = 0;
            st.slow_heads++;
            if (send_error(c, 408, "request_timeout", "the request head took too long to arrive", 1, 0) != 0 ||
                flush_out(c) < 0)
                conn_close(c);
            else
                begin_close(c);
        } else if (c && now_ms - c->last_ms > idle_ms) {
            st.closed_idle++;
            conn_close(c);
        }
    }
}

static void teardown(void)
{
    st.cached_tiles = cache.used;
    st.cached_bytes = cache.bytes;
    for (size_t i = 0; i < conns_cap; i++)
        if (conns[i])
            conn_close(conns[i]);
    free(conns);
    conns = NULL;
    conns_cap = 0;
    if (cache.slots) {
        cache_clear();
        free(cache.slots);
        cache.slots = NULL;
    }
    free(cp.resp);
    memset(&cp, 0, sizeof cp);
    cp_stale = 1;
    if (ep >= 0)
        close(ep);
    if (ifd >= 0)
        close(ifd);
    if (root_fd >= 0)
        close(root_fd);
    ep = ifd = root_fd = lfd = -1;
}

#ifndef TILED_NO_PYTHON
/* ---- Python interface ------------------------------------------------------------------------- */
static PyObject *stats_dict(void)
{
    if (cache.slots) {
        st.cached_tiles = cache.used;
        st.cached_bytes = cache.bytes;
    }
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:n,s:n,s:N}", "requests", st.requests, "ok", st.ok,
        "request_timeouts", st.slow_heads,
        "not_found", st.not_found, "bad_requests", st.bad, "server_errors", st.errors, "refused_503", st.refused,
        "connections_accepted", st.accepted, "closed_idle", st.closed_idle, "cache_resets", st.cache_resets,
        "checkpoint_reloads", st.checkpoint_reloads, "bytes_out", st.bytes_out, "cached_tiles",
        (Py_ssize_t)st.cached_tiles, "cached_bytes", (Py_ssize_t)st.cached_bytes, "inotify", PyBool_FromLong(st.inotify));
}

static PyObject *py_stats(PyObject *self, PyObject *args)
{
    return stats_dict();
}

static PyObject *py_serve(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"listen_fd", "root", "refresh_ms", "cache_bytes", "idle_ms", "max_conns", NULL};
    int fd;
    const char *root;
    long long refresh = 1000, cbytes = 256LL << 20, idle = 60000, maxc = 10000;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "is|LLLL", kwlist, &fd, &root, &refresh, &cbytes, &idle, &maxc))
        return NULL;
    if (refresh < 1 || cbytes < 4096 || idle < 1 || maxc < 1) {
        PyErr_SetString(PyExc_ValueError, "refresh_ms, idle_ms and max_conns must be positive, cache_bytes >= 4096");
        return NULL;
    }
    if (ep >= 0) {
        PyErr_SetString(PyExc_RuntimeError, "a tile server already runs in this process");
        return NULL;
    }
    memset(&st, 0, sizeof st);
    refresh_ms = refresh;
    idle_ms = idle;
    head_ms_limit = idle < 10000 ? idle : 10000;
    cache_cap_bytes = (size_t)cbytes;
    max_conns = (size_t)maxc;
    lfd = fd;
    root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, root);
        return NULL;
    }
    int fl = fcntl(lfd, F_GETFL);
    if (fl < 0 || fcntl(lfd, F_SETFL, fl | O_NONBLOCK) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        teardown();
        return NULL;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    cache.cap = 1024;
    cache.slots = calloc(cache.cap, sizeof(entry_t));
    conns_cap = 1024;
    conns = calloc(conns_cap, sizeof *conns);
    if (ep < 0 || cache.slots == NULL || conns == NULL) {
        PyErr_NoMemory();
        teardown();
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        teardown();
        return NULL;
    }
    ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ifd >= 0) {
        if (inotify_add_watch(ifd, root, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE) < 0) {
            close(ifd);
            ifd = -1;
        } else {
            struct epoll_event iev = {.events = EPOLLIN, .data.fd = ifd};
            epoll_ctl(ep, EPOLL_CTL_ADD, ifd, &iev);
            st.inotify = 1;
        }
    }
    update_clock();
    int64_t last_sweep = now_ms, last_signals = now_ms;
    struct epoll_event evs[256];
    int failed = 0;
    PyThreadState *ts = PyEval_SaveThread();
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 100);
        update_clock();
        if (n < 0 && errno != EINTR) {
            PyEval_RestoreThread(ts);
            PyErr_SetFromErrno(PyExc_OSError);
            failed = 1;
            break;
        }
        for (int i = 0; i < n; i++) {
            int efd = evs[i].data.fd;
            if (efd == lfd)
                on_accept();
            else if (efd == ifd)
                on_inotify();
            else if ((size_t)efd < conns_cap && conns[efd]) {
                conn_t *c = conns[efd];
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    if (!(evs[i].events & EPOLLIN)) {
                        conn_close(c);
                        continue;
                    }
                }
                if (evs[i].events & EPOLLOUT)
                    on_writable(c);
                else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    on_readable(c);
            }
        }
        if (n < 0 || now_ms - last_signals >= 100) {
            last_signals = now_ms;
            PyEval_RestoreThread(ts);
            if (PyErr_CheckSignals() != 0) {
                failed = 1;
                break;
            }
            ts = PyEval_SaveThread();
        }
        if (now_ms - last_sweep >= 1000) {
            last_sweep = now_ms;
            sweep_idle();
        }
    }
    /* here the GIL is held and an exception is set (a signal handler raised, or epoll failed) */
    teardown();
    (void)failed;
    return NULL;
}

static PyMethodDef methods[] = {
    {"serve", (PyCFunction)(void (*)(void))py_serve, METH_VARARGS | METH_KEYWORDS,
     "serve(listen_fd, root, refresh_ms=1000, cache_bytes=256 MiB, idle_ms=60000, max_conns=10000)\n"
     "Serve the tile mirror at root on the listening socket until a signal handler raises."},
    {"stats", py_stats, METH_NOARGS, "Counters of the current (or last) serve() in this process."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_tiled", "A C2SP tlog-tiles mirror server.", -1, methods,
                                 NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__tiled(void)
{
    return PyModule_Create(&mod);
}
#endif /* TILED_NO_PYTHON */
