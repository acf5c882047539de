/* bench/singles_client.c: a lean closed-loop HTTP/1.1 load generator for bench/http_bench.py's single-entry
 * writers (issue 21). Compiled at run time with the system C compiler (cc -O2); no library beyond libc.
 *
 *   singles_client --port P [--host 127.0.0.1] [--path /v1/entries] [--conns 50] --entries FILE --out FILE
 *                  [--threads T] [--timeout SECONDS] [--wait]
 *
 * FILE holds one request body per line (the pre-signed entries). Every request is formatted once, before the
 * clock starts: "POST PATH HTTP/1.1", Host, Content-Type: application/json, Content-Length, the body. --conns
 * keep-alive connections each keep exactly one request in flight (closed loop): a connection sends the next
 * unsent entry (one shared queue, in file order) as soon as its last answer has arrived. --threads T (default
 * 1) threads share the connections (contiguous slices), each with its own epoll set, level-triggered; per
 * request one write() and one read() in the common case. (Real writers are separate processes: with T > 1 the
 * answers of a group that arrive together are turned around on several cores, not one after the other.)
 *
 * With --wait it connects, prints "ready" and waits for a line on stdin before sending (so the caller can start
 * its clocks and the server's CPU reading at the same moment). At the end it writes, in entry order, one record
 * per entry to --out:  "<status> <latency_ns> <body_len>\n" <body> "\n"  (status 0: no answer -- the connection
 * failed or the timeout passed; such an entry was never acknowledged), and prints one JSON line on stdout:
 * requests, seconds, its own CPU (getrusage, the sending phase only), CPU-us per request, p50/p90/p99/max
 * latency, the statuses seen, errors and reconnects.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>

typedef struct worker worker_t;

typedef struct {
    worker_t *w;       /* the thread that owns it */
    int fd;
    long cur;          /* request in flight (-1: none) */
    size_t sent;       /* bytes of it written so far */
    int want_out;      /* EPOLLOUT registered */
    uint64_t t0;       /* when its first byte was written */
    char *rbuf;
    size_t rlen, rcap;
} conn_t;

/* One sending thread: its epoll set, its connections, the answers' bodies it read. */
struct worker {
    int ep;
    conn_t *cs;
    long nc;
    char *bodies;
    size_t bodies_len, bodies_cap;
    long errors, reconnects;
    int timed_out;
    pthread_t th;
};

static char *reqs;          /* every request, formatted, back to back */
static size_t *req_off;     /* n + 1 offsets into reqs */
static long n_req, next_req; /* next_req: the shared queue (atomic) */
static int *status_of;      /* per request (each written by the one thread that sent it) */
static uint64_t *lat_of;
static size_t *body_off, *body_len;
static int *body_w;         /* the worker whose arena holds the body */
static worker_t *workers;
static struct sockaddr_in addr;
static double timeout = 60;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "singles_client: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die("out of memory");
    return q;
}

static int open_conn(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void watch(conn_t *c, int op, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->w->ep, op, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->want_out = out;
}

static void record(worker_t *w, long i, int status, const char *body, size_t blen, uint64_t lat)
{
    status_of[i] = status;
    lat_of[i] = lat;
    if (w->bodies_len + blen > w->bodies_cap) {
        w->bodies_cap = (w->bodies_len + blen) * 2 + 65536;
        w->bodies = xrealloc(w->bodies, w->bodies_cap);
    }
    memcpy(w->bodies + w->bodies_len, body, blen);
    body_off[i] = w->bodies_len;
    body_len[i] = blen;
    body_w[i] = (int)(w - workers);
    w->bodies_len += blen;
}

/* The next unsent request (-1: none left). */
static long claim(void)
{
    if (__atomic_load_n(&next_req, __ATOMIC_RELAXED) >= n_req)
        return -1;
    long i = __atomic_fetch_add(&next_req, 1, __ATOMIC_RELAXED);
    return i < n_req ? i : -1;
}

/* Write what is left of the connection's request; 0 when all of it is out or waiting for EPOLLOUT, -1 on error. */
static int flush(conn_t *c)
{
    size_t len = req_off[c->cur + 1] - req_off[c->cur];
    while (c->sent < len) {
        ssize_t w = write(c->fd, reqs + req_off[c->cur] + c->sent, len - c->sent);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->want_out)
                    watch(c, EPOLL_CTL_MOD, 1);
                return 0;
            }
            return -1;
        }
        c->sent += (size_t)w;
    }
    if (c->want_out)
        watch(c, EPOLL_CTL_MOD, 0);
    return 0;
}

static void drop(conn_t *c);

static void start_next(conn_t *c)
{
    c->cur = c->fd < 0 ? -1 : claim();
    if (c->cur < 0)
        return;
    c->sent = 0;
    c->t0 = now_ns();
    if (flush(c) < 0)
        drop(c);
}

/* The connection failed: its request in flight gets no answer (status 0); then one new connection is tried. */
static void drop(conn_t *c)
{
    if (c->cur >= 0) {
        record(c->w, c->cur, 0, "", 0, now_ns() - c->t0);
        c->w->errors++;
        c->cur = -1;
    }
    if (c->fd >= 0) {
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->rlen = 0;
    c->fd = __atomic_load_n(&next_req, __ATOMIC_RELAXED) < n_req ? open_conn() : -1;
    if (c->fd >= 0) {
        c->w->reconnects++;
        watch(c, EPOLL_CTL_ADD, 0);
        start_next(c);
    }
}

/* Case-insensitive search for a header's value in a response head; NULL when absent. */
static const char *header(const char *head, size_t hlen, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + 2 + nl < hlen; i++) {
        if (head[i] == '\n' && strncasecmp(head + i + 1, name, nl) == 0 && head[i + 1 + nl] == ':') {
            const char *v = head + i + 2 + nl;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

/* One response complete in the buffer? 1: consumed and recorded, 0: need more, -1: malformed. */
static int take(conn_t *c, int *close_after)
{
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hlen = (size_t)(end - c->rbuf) + 4;
    if (hlen < 12 || memcmp(c->rbuf, "HTTP/1.", 7) != 0)
        return -1;
    int status = atoi(c->rbuf + 9);
    const char *cl = header(c->rbuf, hlen, "content-length");
    if (!cl)  /* the fronts this drives always send one (chunked answers are not read) */
        return -1;
    char *stop;
    unsigned long blen = strtoul(cl, &stop, 10);
    if (stop == cl)
        return -1;
    if (c->rlen < hlen + blen)
        return 0;
    const char *conn = header(c->rbuf, hlen, "connection");
    *close_after = conn && strncasecmp(conn, "close", 5) == 0;
    if (status == 100) {  /* an interim answer: not the request's */
        memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
        c->rlen -= hlen;
        return take(c, close_after);
    }
    record(c->w, c->cur, status, c->rbuf + hlen, blen, now_ns() - c->t0);
    c->cur = -1;
    size_t used = hlen + blen;
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
    return 1;
}

static void on_readable(conn_t *c)
{
    if (c->rcap - c->rlen < 4096) {
        c->rcap *= 2;
        c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0 || c->cur < 0) {  /* closed, failed, or bytes nobody asked for */
        drop(c);
        return;
    }
    c->rlen += (size_t)r;
    int close_after = 0;
    int k = take(c, &close_after);
    if (k < 0) {
        drop(c);
        return;
    }
    if (k == 1) {
        if (close_after)
            drop(c);
        else
            start_next(c);
    }
}

/* A sending thread: until none of its connections has a request in flight and none is left to send. */
static void *run_worker(void *arg)
{
    worker_t *w = arg;
    struct epoll_event evs[256];
    for (long i = 0; i < w->nc; i++)
        start_next(&w->cs[i]);
    for (;;) {
        long busy = 0;
        for (long i = 0; i < w->nc && !busy; i++)
            busy = w->cs[i].cur >= 0;
        if (!busy)  /* nothing in flight: nothing left to send, or every connection of this thread gone */
            break;
        int k = epoll_wait(w->ep, evs, 256, (int)(timeout * 1000));
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        if (k == 0) {
            w->timed_out = 1;
            break;
        }
        for (int j = 0; j < k; j++) {
            conn_t *c = evs[j].data.ptr;
            if (c->fd < 0)
                continue;
            if (evs[j].events & EPOLLOUT && c->cur >= 0 && flush(c) < 0) {
                drop(c);
                continue;
            }
            if (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *sorted, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p / 100.0 * (double)n);
    return (double)sorted[i < n - 1 ? i : n - 1] / 1e6;
}

/* CPU seconds of this process so far: user, and user + system */
static double cpu_s(double *user)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    return *user + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void usage(void)
{
    fprintf(stderr, "usage: singles_client --port P [--host 127.0.0.1] [--path /v1/entries] [--conns N] "
                    "[--threads T] --entries FILE --out FILE [--timeout S] [--wait]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *path = "/v1/entries", *entries = NULL, *outp = NULL;
    long port = 0, conns = 50, nthreads = 1;
    int wait = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--wait") == 0) {
            wait = 1;
            continue;
        }
        if (!v)
            usage();
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = strtol(v, NULL, 10);
        else if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "--conns") == 0)
            conns = strtol(v, NULL, 10);
        else if (strcmp(a, "--threads") == 0)
            nthreads = strtol(v, NULL, 10);
        else if (strcmp(a, "--entries") == 0)
            entries = v;
        else if (strcmp(a, "--out") == 0)
            outp = v;
        else if (strcmp(a, "--timeout") == 0)
            timeout = strtod(v, NULL);
        else
            usage();
        i++;
    }
    if (port <= 0 || port > 65535 || conns <= 0 || conns > 10000 || nthreads <= 0 || nthreads > 64 || !entries ||
        !outp || timeout <= 0)
        usage();
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "singles_client: --host must be an IPv4 address, not %s\n", host);
        return 2;
    }

    /* every request formatted before any is sent */
    FILE *f = fopen(entries, "rb");
    if (!f)
        die(entries);
    size_t cap = 1 << 20, len = 0, rcap = 1 << 20, rlen = 0;
    char *data = xrealloc(NULL, cap);
    for (size_t got; (got = fread(data + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap)
            data = xrealloc(data, cap *= 2);
    }
    fclose(f);
    reqs = xrealloc(NULL, rcap);
    size_t ocap = 1024;
    req_off = xrealloc(NULL, ocap * sizeof *req_off);
    req_off[0] = 0;
    for (size_t p = 0; p < len;) {
        char *nl = memchr(data + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - data) : len, blen = e - p;
        if (blen) {
            char head[512];
            int h = snprintf(head, sizeof head,
                             "POST %s HTTP/1.1\r\nHost: %s:%ld\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n", path, host, port, blen);
            if (h < 0 || (size_t)h >= sizeof head)
                die("--path too long");
            while (rlen + (size_t)h + blen > rcap)
                reqs = xrealloc(reqs, rcap *= 2);
            memcpy(reqs + rlen, head, (size_t)h);
            memcpy(reqs + rlen + h, data + p, blen);
            rlen += (size_t)h + blen;
            if ((size_t)n_req + 2 > ocap)
                req_off = xrealloc(req_off, (ocap *= 2) * sizeof *req_off);
            req_off[++n_req] = rlen;
        }
        p = e + 1;
    }
    free(data);
    status_of = calloc((size_t)n_req + 1, sizeof *status_of);
    lat_of = calloc((size_t)n_req + 1, sizeof *lat_of);
    body_off = calloc((size_t)n_req + 1, sizeof *body_off);
    body_len = calloc((size_t)n_req + 1, sizeof *body_len);
    body_w = calloc((size_t)n_req + 1, sizeof *body_w);
    if (!status_of || !lat_of || !body_off || !body_len || !body_w)
        die("out of memory");

    if (nthreads > conns)
        nthreads = conns;
    workers = calloc((size_t)nthreads, sizeof *workers);
    conn_t *cs = calloc((size_t)conns, sizeof *cs);
    if (!cs || !workers)
        die("out of memory");
    for (long t = 0; t < nthreads; t++) {  /* connections in contiguous slices, one slice per thread */
        workers[t].ep = epoll_create1(0);
        if (workers[t].ep < 0)
            die("epoll_create1");
        workers[t].cs = cs + t * conns / nthreads;
        workers[t].nc = (t + 1) * conns / nthreads - t * conns / nthreads;
        for (long i = 0; i < workers[t].nc; i++)
            workers[t].cs[i].w = &workers[t];
    }
    for (long i = 0; i < conns; i++) {
        cs[i].fd = open_conn();
        if (cs[i].fd < 0) {
            fprintf(stderr, "singles_client: cannot connect to %s:%ld: %s\n", host, port, strerror(errno));
            return 2;
        }
        cs[i].cur = -1;
        cs[i].rcap = 16384;
        cs[i].rbuf = xrealloc(NULL, cs[i].rcap);
        watch(&cs[i], EPOLL_CTL_ADD, 0);
    }
    if (wait) {
        printf("ready\n");
        fflush(stdout);
        char line[64];
        if (!fgets(line, sizeof line, stdin))
            return 2;
    }

    double u0, u1;
    double c0 = cpu_s(&u0);
    uint64_t t0 = now_ns();
    for (long t = 1; t < nthreads; t++)
        if (pthread_create(&workers[t].th, NULL, run_worker, &workers[t]) != 0)
            die("pthread_create");
    run_worker(&workers[0]);
    for (long t = 1; t < nthreads; t++)
        pthread_join(workers[t].th, NULL);
    uint64_t t1 = now_ns();
    double cpu = cpu_s(&u1) - c0;
    /* what got no answer: in flight at the timeout, or never sent (every connection gone) */
    long unanswered = 0, errors = 0, reconnects = 0;
    int timed_out = 0;
    for (long i = 0; i < conns; i++)
        if (cs[i].cur >= 0) {
            record(cs[i].w, cs[i].cur, 0, "", 0, t1 - cs[i].t0);
            unanswered++;
        }
    for (; next_req < n_req; next_req++) {
        record(&workers[0], next_req, 0, "", 0, 0);
        unanswered++;
    }
    for (long t = 0; t < nthreads; t++) {
        errors += workers[t].errors;
        reconnects += workers[t].reconnects;
        timed_out |= workers[t].timed_out;
    }

    FILE *o = fopen(outp, "wb");
    if (!o)
        die(outp);
    long counts[6] = {0};
    for (long i = 0; i < n_req; i++) {
        fprintf(o, "%d %llu %zu\n", status_of[i], (unsigned long long)lat_of[i], body_len[i]);
        fwrite(workers[body_w[i]].bodies + body_off[i], 1, body_len[i], o);
        fputc('\n', o);
        int s = status_of[i] / 100;
        counts[s >= 1 && s <= 5 ? s : 0]++;
    }
    if (fclose(o) != 0)
        die(outp);
    uint64_t *sorted = xrealloc(NULL, (size_t)(n_req + 1) * sizeof *sorted);
    long m = 0;
    for (long i = 0; i < n_req; i++)
        if (status_of[i])
            sorted[m++] = lat_of[i];
    qsort(sorted, (size_t)m, sizeof *sorted, cmp_u64);
    double secs = (double)(t1 - t0) / 1e9;
    printf("{\"client\":\"c\",\"requests\":%ld,\"answered\":%ld,\"connections\":%ld,\"threads\":%ld,\"seconds\":%.6f,"
           "\"requests_per_s\":%.0f,\"cpu_s\":%.6f,\"cpu_user_s\":%.6f,\"cpu_us_per_request\":%.2f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"status_other\":%ld,\"status_2xx\":%ld,\"status_3xx\":%ld,"
           "\"status_4xx\":%ld,\"status_5xx\":%ld,\"errors\":%ld,\"reconnects\":%ld,\"unanswered\":%ld,"
           "\"timed_out\":%s}\n",
           n_req, m, conns, nthreads, secs, secs > 0 ? (double)m / secs : 0.0, cpu, u1 - u0,
           n_req ? cpu / (double)n_req * 1e6 : 0.0, pct_ms(sorted, m, 50), pct_ms(sorted, m, 90),
           pct_ms(sorted, m, 99), m ? (double)sorted[m - 1] / 1e6 : 0.0, counts[0] + counts[1], counts[2],
           counts[3], counts[4], counts[5], errors, reconnects, unanswered, timed_out ? "true" : "false");
    return 0;
}
