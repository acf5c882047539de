/* ailedger.tlog._front: the write front of `ailedger serve --ingest-port`, an HTTP/1.1 server for one
 * endpoint, POST /v1/entries, that parses requests outside the interpreter and hands Python whole groups.
 *
 * One thread (a plain pthread, never holding the GIL) runs an epoll loop: it accepts keep-alive
 * connections, reads each request head and its Content-Length body, answers what is malformed (400),
 * too large (413, 431), without a length (411), for another path (404) or method (405) itself, and queues
 * every complete POST /v1/entries body as (token, body).  A connection whose request is queued reads
 * nothing more until that request is answered (one request in flight per connection; pipelined bytes
 * wait in its buffer).  Python takes what is queued (take(), or take_ready() piece by piece while it tells
 * whether every open connection's request is in; the GIL released while they wait: woken once per round of
 * epoll events that queued something, so what arrived together is taken as one piece) and answers with
 * reply([(token, status, body[, headers])]); the loop thread is woken by an
 * eventfd and writes the answers.  A token names a connection and its serial number: an answer for a
 * connection that has gone (its client disconnected) is dropped.
 *
 * Request heads must arrive within request_ms of their first byte and bodies likewise (408), idle
 * connections close after idle_ms; connections over max_conns are answered 503.
 */
#ifndef FRONT_NO_PYTHON /* the fuzz harness (tests/fuzz/front/) builds the loop without Python */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#elif !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* accept4 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "_http1.h"

#define HEAD_MAX 8192
#define LINGER_MS 2000
#define REFUSE_SLOTS 128
#define ENDPOINT "/v1/entries"

enum { S_READ = 0, S_WAIT, S_LINGER };

typedef struct req {
    struct req *next;
    uint64_t token;
    size_t len;
    char body[];
} req_t;

typedef struct ans {
    struct ans *next;
    uint64_t token;
    int status;
    int matched; /* drain_answers: its connection awaits it */
    size_t blen, hlen; /* body, then extra header lines (each ending CRLF) */
    char data[];
} ans_t;

typedef struct {
    int fd;
    uint32_t serial;
    int state;
    int keep;      /* keep the connection open after the answer now awaited */
    int http10;    /* that request was HTTP/1.0 (a kept connection is then announced) */
    int closing;   /* close once the output is flushed */
    int want_out;
    uint32_t events; /* what epoll watches for it now */
    int refuse;
    int continued; /* a 100 Continue went out for the request being read */
    int64_t last_ms, start_ms;
    char *in;
    size_t ilen, icap;
    char *out;
    size_t olen, ooff, ocap;
} conn_t;

/* ---- state (one front per process) ------------------------------------------------------------ */
static conn_t **conns;
static size_t conns_cap, n_conns;
static int ep = -1, lfd = -1, wfd = -1;
static size_t max_body = 132096, max_conns = 10000;
static int64_t idle_ms = 60000, request_ms = 10000;
static uint32_t next_serial = 1;
static int64_t now_ms;
static int64_t date_sec = -1;
static char date_now[40];

/* shared with Python's threads, under qlock */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static req_t *q_head, *q_tail;
static size_t q_len;
static size_t n_waiting;    /* connections whose request is queued or with Python */
static size_t n_active;     /* open connections that may still send a request (not closing) */
static size_t n_posted;     /* answers from Python not yet written (their connections still count in n_waiting) */
static ans_t *a_head;       /* answers from Python, newest first */
static int stopping;
static int q_kick; /* the loop thread's own: a request was queued since Python was last woken */

static struct {
    unsigned long long requests, queued, answered, dropped_answers, bad, not_found, too_large, refused,
        timeouts, accepted, closed_idle, bytes_in, bytes_out;
} st;

/* ---- small helpers ----------------------------------------------------------------------------- */
static void update_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    http1_set_date(date_now, sizeof date_now, &date_sec, ts.tv_sec);
}

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* ---- output -------------------------------------------------------------------------------------- */
static int out_append(conn_t *c, const char *p, size_t n)
{
    if (http1_out_append(&c->out, &c->olen, &c->ooff, &c->ocap, 4096, p, n) < 0)
        return -1;
    st.bytes_out += n;
    return 0;
}

/* Queue one whole response (status line, headers, body); close_after adds Connection: close. */
static int respond(conn_t *c, int status, const char *extra, size_t extra_len, const char *body, size_t blen,
                   int close_after)
{
    char head[512];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s",
                     status, reason(status), date_now, blen,
                     close_after ? "Connection: close\r\n" : c->http10 ? "Connection: keep-alive\r\n" : "");
    if (out_append(c, head, (size_t)h) || (extra_len && out_append(c, extra, extra_len)) ||
        out_append(c, "\r\n", 2) || (blen && out_append(c, body, blen)))
        return -1;
    if (close_after)
        c->closing = 1;
    return 0;
}

/* An answer the front gives itself: a JSON error naming what is wrong. */
static int send_error(conn_t *c, int status, const char *code, const char *msg, int close_after)
{
    char body[320];
    const char *extra = "";
    if (status == 405)
        extra = "Allow: POST\r\n";
    else if (status == 503)
        extra = "Retry-After: 1\r\n";
    int bl = snprintf(body, sizeof body, "{\"code\":\"%s\",\"message\":\"%s\"}", code, msg);
    if (status == 404)
        st.not_found++;
    else if (status == 413 || status == 431)
        st.too_large++;
    else if (status == 408)
        st.timeouts++;
    else if (status == 503)
        st.refused++;
    else
        st.bad++;
    return respond(c, status, extra, strlen(extra), body, (size_t)bl, close_after);
}

static int flush_out(conn_t *c) /* 0 all sent, 1 more queued, -1 gone */
{
    return http1_out_flush(c->fd, &c->out, &c->olen, &c->ooff, &c->ocap);
}

/* ---- connections --------------------------------------------------------------------------------- */
static void set_events(conn_t *c, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.fd = c->fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void conn_close(conn_t *c)
{
    pthread_mutex_lock(&qlock);
    if (c->state == S_WAIT)
        n_waiting--;
    if (c->state != S_LINGER)
        n_active--;
    pthread_cond_broadcast(&qcond); /* a group waiting for this connection need not wait */
    pthread_mutex_unlock(&qlock);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->in);
    free(c->out);
    free(c);
    n_conns--;
}

/* A server-side close: shut the write side and drop input until the client closes (or LINGER_MS),
 * so unread input does not turn the last answer into a reset (RFC 9112 9.6). */
static void begin_close(conn_t *c)
{
    shutdown(c->fd, SHUT_WR);
    pthread_mutex_lock(&qlock);
    if (c->state != S_LINGER)
        n_active--;
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
    c->state = S_LINGER;
    c->ilen = 0;
    c->last_ms = now_ms;
    c->want_out = 0;
    set_events(c, EPOLLIN);
}

/* After output was queued: write it; then close, linger, wait to write, or go on reading. 0 = the
 * connection is gone or closing or waiting to write; 1 = all sent and it stays open. */
static int settle(conn_t *c)
{
    int r = flush_out(c);
    if (r < 0) {
        conn_close(c);
        return 0;
    }
    if (r == 0 && c->closing) {
        begin_close(c);
        return 0;
    }
    c->want_out = r == 1;
    /* a connection awaiting its answer stays watched for input if it was (no epoll_ctl per request): input then
     * (pipelined bytes, its close) is a stray event that unwatches it until the answer (on_readable) */
    set_events(c, c->want_out ? EPOLLOUT : (c->state == S_WAIT && c->events != EPOLLIN ? 0 : EPOLLIN));
    return r == 0;
}

static void enqueue(conn_t *c, const char *body, size_t n)
{
    req_t *r = malloc(sizeof *r + n);
    if (r == NULL) {
        send_error(c, 503, "overloaded", "out of memory; retry", 1);
        return;
    }
    r->next = NULL;
    r->token = ((uint64_t)c->serial << 32) | (uint32_t)c->fd;
    r->len = n;
    memcpy(r->body, body, n);
    c->state = S_WAIT;
    st.queued++;
    pthread_mutex_lock(&qlock);
    if (q_tail)
        q_tail->next = r;
    else
        q_head = r;
    q_tail = r;
    q_len++;
    n_waiting++;
    pthread_mutex_unlock(&qlock);
    q_kick = 1; /* Python is woken once the loop has queued what this round of events brought (loop) */
}

/* Parse the request at the start of c->in (head of h bytes).  Returns the bytes it used (head and
 * body), 0 when the body is not all here yet, or -1 on an answered error that closes. */
static long handle(conn_t *c, size_t h)
{
    const char *p = c->in, *end = c->in + h;
    st.requests++;
    const char *q; /* the line after the request line */
    size_t ll = http1_line(p, end, &q);
    const char *sp1 = memchr(p, ' ', ll);
    const char *tgt = sp1 ? sp1 + 1 : NULL;
    const char *sp2 = tgt ? memchr(tgt, ' ', ll - (size_t)(tgt - p)) : NULL;
    if (sp1 == NULL || sp1 == p || sp2 == NULL || sp2 == tgt)
        return send_error(c, 400, "bad_request", "malformed request line", 1), -1;
    const char *ver = sp2 + 1;
    size_t vl = ll - (size_t)(ver - p), ml = (size_t)(sp1 - p);
    for (size_t i = 0; i < ml; i++)
        if (p[i] < 'A' || p[i] > 'Z')
            return send_error(c, 400, "bad_request", "malformed request line", 1), -1;
    int http11 = http1_version(ver, vl);
    if (http11 == -505)
        return send_error(c, 505, "http_version", "only HTTP/1.0 and HTTP/1.1 are served", 1), -1;
    if (http11 < 0)
        return send_error(c, 400, "bad_request", "malformed request line", 1), -1;
    int keep = http11, hosts = 0, te = 0, expect = 0, bad = 0;
    c->http10 = !http11;
    long long cl = -1;
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
            hosts++;
        else if (ieq(q, nl, "connection"))
            keep = http1_keep_alive(v, vn, keep);
        else if (ieq(q, nl, "content-length")) {
            long long x = 0;
            if (vn == 0 || vn > 12 || cl >= 0) /* empty, absurd, or a second one: refused (RFC 9112 6.3) */
                bad = 1;
            for (size_t i = 0; i < vn && !bad; i++) {
                if (v[i] < '0' || v[i] > '9')
                    bad = 1;
                else
                    x = x * 10 + (v[i] - '0');
            }
            if (bad)
                break;
            cl = x;
        } else if (ieq(q, nl, "transfer-encoding"))
            te = 1;
        else if (ieq(q, nl, "expect"))
            expect = ieq(v, vn, "100-continue") ? 1 : 2;
        q = next;
    }
    if (bad)
        return send_error(c, 400, "bad_request", "malformed header field (or Content-Length)", 1), -1;
    if (http11 && hosts != 1)
        return send_error(c, 400, "bad_request", "an HTTP/1.1 request needs exactly one Host header", 1), -1;
    if (c->refuse)
        return send_error(c, 503, "overloaded", "too many connections; retry", 1), -1;
    /* the target: origin-form path, the query (if any) ignored */
    size_t tl = (size_t)(sp2 - tgt);
    const char *qm = memchr(tgt, '?', tl);
    if (qm)
        tl = (size_t)(qm - tgt);
    /* a request with a body this front does not read closes the connection after its answer */
    int body_left = te || cl > 0;
    if (!(tl == sizeof ENDPOINT - 1 && memcmp(tgt, ENDPOINT, tl) == 0))
        return send_error(c, 404, "not_found",
                          "this port serves one endpoint, POST /v1/entries (everything else is on the API port)",
                          body_left || !keep) ? -1 : (body_left || !keep ? -1 : (long)h);
    if (!(ml == 4 && memcmp(p, "POST", 4) == 0))
        return send_error(c, 405, "method_not_allowed", "this port serves POST /v1/entries only",
                          body_left || !keep) ? -1 : (body_left || !keep ? -1 : (long)h);
    if (te)
        return send_error(c, 411, "length_required", "send the entry with a Content-Length (no Transfer-Encoding)",
                          1), -1;
    if (cl < 0)
        return send_error(c, 411, "length_required", "a POST /v1/entries request needs a Content-Length", 1), -1;
    if ((unsigned long long)cl > max_body)
        return send_error(c, 413, "too_large", "the request body is larger than one entry may be", 1), -1;
    if (expect == 2)
        return send_error(c, 400, "bad_request", "the only expectation served is 100-continue", 1), -1;
    if (c->ilen - h < (size_t)cl) { /* the body is on its way */
        if (c->icap < h + (size_t)cl) {
            char *ni = realloc(c->in, h + (size_t)cl);
            if (ni == NULL)
                return send_error(c, 503, "overloaded", "out of memory; retry", 1), -1;
            c->in = ni;
            c->icap = h + (size_t)cl;
        }
        if (expect == 1 && !c->continued && http11) {
            c->continued = 1;
            if (out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25)) {
                c->closing = 1;
                return -1;
            }
        }
        st.requests--; /* counted again when it is whole */
        return 0;
    }
    c->keep = keep;
    c->continued = 0;
    enqueue(c, c->in + h, (size_t)cl);
    return (long)(h + (size_t)cl);
}

/* Parse what is in c->in while the connection reads: queue a whole request, or answer an error. */
static void process(conn_t *c)
{
    while (c->state == S_READ && !c->closing) {
        size_t skip = 0; /* blank lines before a request line are ignored (RFC 9112 2.2) */
        while (skip < c->ilen && (c->in[skip] == '\r' || c->in[skip] == '\n'))
            skip++;
        if (skip) {
            memmove(c->in, c->in + skip, c->ilen - skip);
            c->ilen -= skip;
        }
        if (c->ilen == 0)
            break;
        size_t h = http1_head_end(c->in, c->ilen < HEAD_MAX ? c->ilen : HEAD_MAX);
        if (h == 0) {
            if (c->ilen >= HEAD_MAX) {
                st.requests++;
                send_error(c, 431, "head_too_large", "the request head is over 8 KiB", 1);
            }
            break;
        }
        long used = handle(c, h);
        if (used <= 0)
            break;
        memmove(c->in, c->in + used, c->ilen - (size_t)used);
        c->ilen -= (size_t)used;
        c->start_ms = now_ms; /* the next request (if any bytes of it are here) is timed from now */
    }
    if (c->icap > 65536 && c->ilen < 16384 && c->state != S_READ) { /* a large body went: give it back */
        char *ni = realloc(c->in, 16384);
        if (ni) {
            c->in = ni;
            c->icap = 16384;
        }
    }
    settle(c);
}

static void on_readable(conn_t *c)
{
    if (c->state == S_LINGER) {
        if (http1_linger_read(c->fd))
            conn_close(c);
        return;
    }
    if (c->state == S_WAIT) { /* input while its request is with Python: read nothing until the answer */
        set_events(c, 0);
        return;
    }
    if (c->ilen == c->icap) {
        size_t nc = c->icap < HEAD_MAX ? HEAD_MAX : c->icap;
        if (c->ilen >= nc) { /* a full head buffer not parsed yet: process() answers 431 */
            process(c);
            return;
        }
        char *ni = realloc(c->in, nc);
        if (ni == NULL) {
            conn_close(c);
            return;
        }
        c->in = ni;
        c->icap = nc;
    }
    ssize_t r = recv(c->fd, c->in + c->ilen, c->icap - c->ilen, MSG_DONTWAIT);
    if (http1_recv_gone(r)) {
        conn_close(c);
        return;
    }
    if (r < 0)
        return;
    if (c->ilen == 0)
        c->start_ms = now_ms;
    c->ilen += (size_t)r;
    c->last_ms = now_ms;
    st.bytes_in += (size_t)r;
    process(c);
}

static void on_writable(conn_t *c)
{
    c->last_ms = now_ms;
    if (settle(c) && c->state == S_READ && c->ilen)
        process(c);
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
            close(fd);
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
        conn_t *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (c == NULL || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->serial = next_serial++;
        if (next_serial == 0)
            next_serial = 1;
        c->refuse = refuse;
        c->events = EPOLLIN;
        c->last_ms = c->start_ms = now_ms;
        conns[fd] = c;
        n_conns++;
        pthread_mutex_lock(&qlock);
        n_active++;
        pthread_mutex_unlock(&qlock);
    }
}

/* Write the answers Python gave (reply()) to their connections. */
static void drain_answers(void)
{
    pthread_mutex_lock(&qlock);
    ans_t *a = a_head;
    a_head = NULL;
    ans_t *rev = NULL; /* oldest first */
    while (a) {
        ans_t *n = a->next;
        a->next = rev;
        rev = a;
        a = n;
    }
    for (a = rev; a; a = a->next) { /* under qlock: take() sees these connections as answered from now */
        n_posted--;
        uint32_t fd = (uint32_t)a->token, serial = (uint32_t)(a->token >> 32);
        conn_t *c = fd < conns_cap ? conns[fd] : NULL;
        a->matched = c && c->serial == serial && c->state == S_WAIT;
        if (a->matched) { /* its connection reads again once the answer is written below */
            n_waiting--;
            c->state = S_READ;
        }
    }
    pthread_mutex_unlock(&qlock);
    while (rev) {
        ans_t *n = rev->next;
        if (rev->matched) {
            conn_t *c = conns[(uint32_t)rev->token];
            st.answered++;
            c->last_ms = c->start_ms = now_ms;
            if (respond(c, rev->status, rev->data + rev->blen, rev->hlen, rev->data, rev->blen, !c->keep) != 0)
                conn_close(c);
            else
                process(c); /* a pipelined request may be waiting in the buffer; then write */
        } else
            st.dropped_answers++;
        free(rev);
        rev = n;
    }
}

static void sweep(void)
{
    for (size_t i = 0; i < conns_cap; i++) {
        conn_t *c = conns[i];
        if (c == NULL)
            continue;
        if (c->state == S_LINGER) {
            if (now_ms - c->last_ms > LINGER_MS)
                conn_close(c);
        } else if (c->state == S_READ && c->ilen && !c->want_out && now_ms - c->start_ms > request_ms) {
            if (send_error(c, 408, "request_timeout", "the request took too long to arrive", 1) != 0)
                conn_close(c);
            else
                settle(c);
        } else if (c->state == S_READ && now_ms - c->last_ms > idle_ms) {
            st.closed_idle++;
            conn_close(c);
        }
    }
}

static void teardown(void)
{
    for (size_t i = 0; i < conns_cap; i++)
        if (conns[i])
            conn_close(conns[i]);
    free(conns);
    conns = NULL;
    conns_cap = 0;
    pthread_mutex_lock(&qlock);
    while (q_head) {
        req_t *n = q_head->next;
        free(q_head);
        q_head = n;
    }
    q_tail = NULL;
    q_len = 0;
    while (a_head) {
        ans_t *n = a_head->next;
        free(a_head);
        a_head = n;
    }
    n_waiting = n_active = n_posted = 0;
    pthread_mutex_unlock(&qlock);
    if (ep >= 0)
        close(ep);
    if (wfd >= 0)
        close(wfd);
    ep = wfd = lfd = -1;
}

/* Set up the loop's state; 0 or -1 (errno set). */
static int setup(int listen_fd)
{
    lfd = listen_fd;
    int fl = fcntl(lfd, F_GETFL);
    if (fl < 0 || fcntl(lfd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    ep = epoll_create1(EPOLL_CLOEXEC);
    wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    conns_cap = 1024;
    conns = calloc(conns_cap, sizeof *conns);
    if (ep < 0 || wfd < 0 || conns == NULL)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    struct epoll_event wev = {.events = EPOLLIN, .data.fd = wfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, wfd, &wev) != 0)
        return -1;
    memset(&st, 0, sizeof st);
    stopping = 0;
    update_clock();
    return 0;
}

static void *loop(void *arg)
{
    (void)arg;
    int64_t last_sweep = now_ms;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 250);
        update_clock();
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            int efd = evs[i].data.fd;
            if (efd == lfd)
                on_accept();
            else if (efd == wfd) {
                uint64_t v;
                if (read(wfd, &v, sizeof v) < 0 && errno != EAGAIN)
                    break;
                drain_answers();
            } else if ((size_t)efd < conns_cap && conns[efd]) {
                conn_t *c = conns[efd];
                uint32_t e = evs[i].events;
                if ((e & (EPOLLERR | EPOLLHUP)) && !(e & EPOLLIN)) {
                    conn_close(c);
                    continue;
                }
                if (e & EPOLLOUT)
                    on_writable(c);
                else if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    on_readable(c);
            }
        }
        pthread_mutex_lock(&qlock);
        if (q_kick) /* one wake-up for every request these events queued: Python takes them as one piece */
            pthread_cond_broadcast(&qcond);
        q_kick = 0;
        int stop = stopping;
        pthread_mutex_unlock(&qlock);
        if (stop)
            break;
        if (now_ms - last_sweep >= 250) {
            last_sweep = now_ms;
            sweep();
        }
    }
    return NULL;
}

/* Queue Python's answer for token (called by reply(), with or without the GIL). */
static int post_answer(uint64_t token, int status, const char *body, size_t blen, const char *hdr, size_t hlen)
{
    ans_t *a = malloc(sizeof *a + blen + hlen);
    if (a == NULL)
        return -1;
    a->token = token;
    a->status = status;
    a->blen = blen;
    a->hlen = hlen;
    memcpy(a->data, body, blen);
    if (hlen)
        memcpy(a->data + blen, hdr, hlen);
    pthread_mutex_lock(&qlock);
    a->next = a_head;
    a_head = a;
    n_posted++;
    pthread_mutex_unlock(&qlock);
    return 0;
}

static void wake_loop(void)
{
    uint64_t one = 1;
    if (write(wfd, &one, sizeof one) < 0) { /* EAGAIN: the counter is full, the loop wakes anyway */
    }
}

#ifndef FRONT_NO_PYTHON
/* Every open connection has a request queued or with Python, not yet answered (under qlock). An answer Python
 * posted counts as given: its writer will send again. */
static int all_in(void)
{
    return (long long)n_waiting - (long long)n_posted >= (long long)n_active;
}

/* ---- Python interface ------------------------------------------------------------------------- */
static pthread_t thread;
static int running;

static PyObject *py_start(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"listen_fd", "max_body", "idle_ms", "request_ms", "max_conns", NULL};
    int fd;
    long long mb = (long long)max_body, idle = 60000, req = 10000, maxc = 10000;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|LLLL", kwlist, &fd, &mb, &idle, &req, &maxc))
        return NULL;
    if (mb < 1 || mb > (1LL << 30) || idle < 1 || req < 1 || maxc < 1) {
        PyErr_SetString(PyExc_ValueError, "max_body must be 1..1 GiB; idle_ms, request_ms and max_conns positive");
        return NULL;
    }
    if (running) {
        PyErr_SetString(PyExc_RuntimeError, "an ingest front already runs in this process");
        return NULL;
    }
    max_body = (size_t)mb;
    idle_ms = idle;
    request_ms = req;
    max_conns = (size_t)maxc;
    if (setup(fd) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        teardown();
        return NULL;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay with Python's main thread */
    int rc = pthread_create(&thread, NULL, loop, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        teardown();
        return NULL;
    }
    running = 1;
    Py_RETURN_NONE;
}

/* Move *t on by seconds (a CLOCK_REALTIME deadline for pthread_cond_timedwait). */
static void add_seconds(struct timespec *t, double seconds)
{
    long long ns = (long long)(seconds * 1e9);
    t->tv_sec += ns / 1000000000;
    t->tv_nsec += ns % 1000000000;
    if (t->tv_nsec >= 1000000000) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000;
    }
}

/* Unlink up to `most` queued requests (under qlock), oldest first; *n their count. */
static req_t *unlink_queued(size_t most, size_t *n)
{
    req_t *got = q_head, *last = NULL, *r = q_head;
    *n = 0;
    while (r && *n < most) {
        last = r;
        r = r->next;
        (*n)++;
    }
    if (last) {
        last->next = NULL;
        q_head = r;
        if (r == NULL)
            q_tail = NULL;
        q_len -= *n;
    }
    return last ? got : NULL;
}

/* The requests as [(token, body)] (freed here, also on failure). */
static PyObject *group_list(req_t *got, size_t n)
{
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (Py_ssize_t i = 0; got; i++) {
        req_t *nx = got->next;
        if (out) {
            PyObject *t = Py_BuildValue("(Ky#)", (unsigned long long)got->token, got->body, (Py_ssize_t)got->len);
            if (t == NULL)
                Py_CLEAR(out);
            else
                PyList_SET_ITEM(out, i, t);
        }
        free(got);
        got = nx;
    }
    return out;
}

static PyObject *py_take(PyObject *self, PyObject *args)
{
    double timeout = 1.0, window = 0.0;
    Py_ssize_t most = 100000;
    int hold = 0;
    if (!PyArg_ParseTuple(args, "|ddnp", &timeout, &window, &most, &hold))
        return NULL;
    if (most < 1)
        most = 1;
    req_t *got = NULL;
    size_t n = 0;
    Py_BEGIN_ALLOW_THREADS
    struct timespec dl, wl;
    clock_gettime(CLOCK_REALTIME, &dl);
    wl = dl;
    add_seconds(&dl, timeout);
    pthread_mutex_lock(&qlock);
    while (q_head == NULL && !stopping && running) {
        if (pthread_cond_timedwait(&qcond, &qlock, &dl) == ETIMEDOUT)
            break;
    }
    if ((q_head || hold) && window > 0) {
        /* the group stays open up to `window` from now while some connection may still send one */
        clock_gettime(CLOCK_REALTIME, &wl);
        add_seconds(&wl, window);
        while (!stopping && !all_in() && q_len < (size_t)most) {
            if (pthread_cond_timedwait(&qcond, &qlock, &wl) == ETIMEDOUT)
                break;
        }
    }
    got = unlink_queued((size_t)most, &n);
    pthread_mutex_unlock(&qlock);
    Py_END_ALLOW_THREADS
    return group_list(got, n);
}

static PyObject *py_take_ready(PyObject *self, PyObject *args)
{
    double timeout = 0.0;
    Py_ssize_t most = 100000;
    if (!PyArg_ParseTuple(args, "|dn", &timeout, &most))
        return NULL;
    if (most < 1)
        most = 1;
    req_t *got = NULL;
    size_t n = 0;
    int in = 0;
    Py_BEGIN_ALLOW_THREADS
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    add_seconds(&dl, timeout > 0 ? timeout : 0);
    pthread_mutex_lock(&qlock);
    while (q_head == NULL && !all_in() && !stopping && running && timeout > 0) {
        if (pthread_cond_timedwait(&qcond, &qlock, &dl) == ETIMEDOUT)
            break;
    }
    got = unlink_queued((size_t)most, &n);
    in = all_in() && q_head == NULL;
    pthread_mutex_unlock(&qlock);
    Py_END_ALLOW_THREADS
    PyObject *list = group_list(got, n);
    if (list == NULL)
        return NULL;
    return Py_BuildValue("(NO)", list, in ? Py_True : Py_False);
}

static PyObject *py_reply(PyObject *self, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "reply() takes a list of (token, status, body[, headers])");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long token;
        int status;
        const char *body, *hdr = NULL;
        Py_ssize_t blen, hlen = 0;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "Kiy#|y#", &token, &status, &body, &blen, &hdr,
                              &hlen)) {
            Py_DECREF(seq);
            return NULL;
        }
        if (status < 200 || status > 599) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "status must be 200..599");
            return NULL;
        }
        if (!running) /* stopped: nobody to answer */
            continue;
        if (post_answer(token, status, body, (size_t)blen, hdr, (size_t)hlen) != 0) {
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
    }
    Py_DECREF(seq);
    if (n && running)
        wake_loop();
    Py_RETURN_NONE;
}

static PyObject *py_stop(PyObject *self, PyObject *args)
{
    if (!running)
        Py_RETURN_NONE;
    pthread_mutex_lock(&qlock);
    stopping = 1;
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
    wake_loop();
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    running = 0;
    teardown();
    Py_RETURN_NONE;
}

/* The open connections that may still send a request (a cheap read for the group's size, under qlock). */
static PyObject *py_connections(PyObject *self, PyObject *args)
{
    pthread_mutex_lock(&qlock);
    size_t na = n_active;
    pthread_mutex_unlock(&qlock);
    return PyLong_FromSize_t(na);
}

static PyObject *py_stats(PyObject *self, PyObject *args)
{
    pthread_mutex_lock(&qlock);
    size_t ql = q_len, nw = n_waiting, na = n_active;
    pthread_mutex_unlock(&qlock);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:n,s:n,s:n,s:O}",
                         "requests", st.requests, "queued", st.queued, "answered", st.answered,
                         "dropped_answers", st.dropped_answers, "bad_requests", st.bad, "not_found", st.not_found,
                         "too_large", st.too_large, "refused_503", st.refused, "timeouts", st.timeouts,
                         "connections_accepted", st.accepted, "closed_idle", st.closed_idle, "bytes_in",
                         st.bytes_in, "bytes_out", st.bytes_out, "queue", (Py_ssize_t)ql, "waiting",
                         (Py_ssize_t)nw, "connections", (Py_ssize_t)na, "running", running ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"start", (PyCFunction)(void (*)(void))py_start, METH_VARARGS | METH_KEYWORDS,
     "start(listen_fd, max_body=132096, idle_ms=60000, request_ms=10000, max_conns=10000)\n"
     "Start the loop thread on the listening socket."},
    {"take", py_take, METH_VARARGS,
     "take(timeout=1.0, window=0.0, most=100000, hold=False) -> [(token, body)]\n"
     "Every complete request queued (waiting up to timeout for a first one; then up to window more while "
     "some open connection has no request queued or taken; hold: the caller holds taken requests, so wait "
     "the window even if none is queued now). The GIL is released while waiting."},
    {"take_ready", py_take_ready, METH_VARARGS,
     "take_ready(timeout=0.0, most=100000) -> ([(token, body)], all_in)\n"
     "What is queued now (waiting up to timeout for a first request unless every open connection already has "
     "its request queued or taken), and whether every open connection has its request taken and unanswered "
     "(nobody else is on the way: a group may close). The GIL is released while waiting."},
    {"reply", py_reply, METH_O, "reply([(token, status, body[, headers])]): answer taken requests."},
    {"stop", py_stop, METH_NOARGS, "Stop the loop thread and close every connection."},
    {"stats", py_stats, METH_NOARGS, "Counters of the front."},
    {"connections", py_connections, METH_NOARGS, "connections() -> the open connections that may still send a request."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_front", "The write front of ailedger serve --ingest-port.",
                                 -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__front(void)
{
    return PyModule_Create(&mod);
}
#endif /* FRONT_NO_PYTHON */
