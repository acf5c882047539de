/* libFuzzer harness for ailedger.tlog._front (the write front of `ailedger serve --ingest-port`): its request
 * parser, connection handling and answer path, run under AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * The front's own C file is included whole, built without Python (FRONT_NO_PYTHON), so what runs is the
 * code the server runs: one connection per input, accepted by on_accept() from a listening Unix socket
 * (over the connection limit on some inputs: the 503 path), fed the input in chunks through the real read
 * path (on_readable / on_writable / process / handle / enqueue), with a small send buffer on some inputs so
 * answers queue, a client that stops reading or half-closes or goes away before its answer, a clock that
 * moves on so the request-timeout (408), linger and idle paths run, and a small starting connection table
 * so it grows.  Python's side is played here: every queued request is taken off the queue and answered
 * through post_answer() + drain_answers() (what reply() and the loop's eventfd wake-up do), with a status,
 * body and extra header chosen from the input, sometimes after the client has gone (a dropped answer).
 *
 * Input layout: byte 0 = flags, byte 1 = chunk-size seed, the rest = bytes the client sends.
 * Oracle: the sanitizers, plus every answer on the wire being a well-formed HTTP/1.1 response (status
 * line, header block, Content-Length matching what follows; a 100 Continue has no body). */
#define FRONT_NO_PYTHON 1
#include "_front.c"
#define FUZZ_NAME "front"
#include "../fuzz_client.h"

static char work_dir[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_make_dir(work_dir, sizeof work_dir);
    if (setup(fuzz_listen(work_dir)) != 0)
        abort();
    free(conns); /* small (the front starts at 1024): growing the table is exercised too */
    conns_cap = 4;
    conns = calloc(conns_cap, sizeof *conns);
    if (conns == NULL)
        abort();
    max_body = 4096;
    request_ms = 10000;
    idle_ms = 60000;
    atexit(teardown); /* everything freed: LeakSanitizer then sees only real leaks */
    tick();
    return 0;
}

/* ---- the client side: what it received must be a sequence of well-formed responses ---------------- */

static int d3(const char *p)
{
    return p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9';
}

static void check_output(void)
{
    if (seen_overflow)
        return;
    size_t i = 0;
    while (i < seen_len) {
        const char *p = seen + i;
        size_t left = seen_len - i;
        if (left < 17 || memcmp(p, "HTTP/1.1 ", 9) != 0 || !d3(p + 9) || p[12] != ' ')
            bad_output("status line", i);
        const char *end = memmem(p, left, "\r\n\r\n", 4);
        if (end == NULL)
            bad_output("no end of header block", i);
        size_t hl = (size_t)(end - p) + 4;
        if (p[9] == '1') { /* an interim answer: headers only */
            i += hl;
            continue;
        }
        const char *cl = memmem(p, hl, "\r\nContent-Length: ", 18);
        if (cl == NULL)
            bad_output("no Content-Length", i);
        size_t body = strtoul(cl + 18, NULL, 10);
        if (left - hl < body || (left - hl > body && memcmp(p + hl + body, "HTTP/1.1 ", 9) != 0))
            bad_output("body does not match Content-Length", i);
        i += hl + body;
    }
}

/* What the epoll loop does for one connection, until it has nothing more to do. */
static void pump(int fd, int client, int reading)
{
    for (int rounds = 0; rounds < 10000; rounds++) {
        conn_t *c = (size_t)fd < conns_cap ? conns[fd] : NULL;
        if (c == NULL)
            return;
        if (reading)
            drain(client);
        struct pollfd pf = {.fd = fd, .events = (short)((c->events & EPOLLOUT) ? POLLOUT : (c->events & EPOLLIN) ? POLLIN : 0)};
        if (poll(&pf, 1, 0) <= 0)
            return;
        if ((pf.revents & (POLLERR | POLLHUP)) && !(pf.revents & POLLIN)) {
            conn_close(c);
            return;
        }
        if (pf.revents & POLLOUT)
            on_writable(c);
        else if (pf.revents & (POLLIN | POLLHUP | POLLERR))
            on_readable(c);
        else
            return;
    }
}

/* Python's side: take every queued request and answer it (a status, body and header chosen by `how`). */
static unsigned answer_all(unsigned how)
{
    unsigned n = 0;
    pthread_mutex_lock(&qlock);
    req_t *r = q_head;
    q_head = q_tail = NULL;
    q_len = 0;
    pthread_mutex_unlock(&qlock);
    while (r) {
        req_t *next = r->next;
        static const int statuses[] = {201, 200, 400, 403, 429, 503, 500, 413};
        int status = statuses[(how + n) % 8];
        char body[256];
        int bl = snprintf(body, sizeof body, "{\"index\":%zu,\"duplicate\":%s}", r->len, (how & 1) ? "true" : "false");
        const char *hdr = status == 503 ? "Retry-After: 1\r\n" : status == 429 ? "Retry-After: 2\r\n" : "";
        if (post_answer(r->token, status, body, (how & 2) ? 0 : (size_t)bl, hdr, strlen(hdr)) != 0)
            abort();
        free(r);
        r = next;
        n++;
    }
    drain_answers();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0], seed = data[1];
    data += 2;
    size -= 2;
    seen_len = 0;
    seen_overflow = 0;
    tick();
    max_conns = (flags & 4) ? 0 : 10000; /* 0: this connection is over the limit and gets a 503 */
    int fd;
    int client = fuzz_connect(&fd, flags & 8); /* 8: small buffers, answers queue */
    int reading = !(flags & 16); /* a client that does not read until the end */
    int gone = 0;
    size_t off = 0;
    unsigned s = seed;
    while (off < size && conns[fd]) {
        size_t n = fuzz_chunk(seed, &s, size - off);
        ssize_t w = send(client, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                drain(client);
                pump(fd, client, 1);
                answer_all(s);
                struct pollfd pf = {.fd = client, .events = POLLOUT};
                if (poll(&pf, 1, 0) <= 0)
                    break; /* the server stopped reading: stop sending */
                continue;
            }
            break;
        }
        off += (size_t)w;
        pump(fd, client, reading);
        if ((flags & 1) && (s & 7) == 0 && q_head) { /* the client goes away before its answer */
            close(client);
            client = -1;
            gone = 1;
            pump(fd, -1, 0);
            answer_all(s); /* dropped, or written to a closing connection */
            break;
        }
        if (!(flags & 2) || (s & 3) == 0) /* answered at once, or left waiting a while */
            answer_all(s >> 3);
        pump(fd, client, reading);
        if ((flags & 32) && conns[fd] && (s & 3) == 0) {
            skew_ms += 11000; /* time passes: slow requests get 408, lingering and idle connections close */
            tick();
            sweep();
            pump(fd, client, reading);
        }
    }
    if (!gone) {
        if (flags & 128)
            shutdown(client, SHUT_WR);
        pump(fd, client, 1);
        answer_all(seed);
        pump(fd, client, 1);
        if (conns[fd] && (flags & 64)) {
            skew_ms += 61000;
            tick();
            sweep();
        }
        pump(fd, client, 1);
        drain(client);
    }
    if ((size_t)fd < conns_cap && conns[fd])
        conn_close(conns[fd]);
    answer_all(seed); /* answers for a connection that is gone are dropped */
    if (!gone) {
        drain(client);
        close(client);
        check_output();
    }
    if (n_conns != 0 || n_waiting != 0 || n_active != 0 || q_head != NULL) {
        fprintf(stderr, "front fuzz: state left behind: %zu conns, %zu waiting, %zu active\n", n_conns, n_waiting,
                n_active);
        abort();
    }
    return 0;
}
