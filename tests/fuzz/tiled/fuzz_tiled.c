/* libFuzzer harness for ailedger.tlog._tiled: the tile server's request parser and handler, run
 * under AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * The server's own C file is included whole, built without Python (TILED_NO_PYTHON), so what runs
 * is the code `ailedger tiles serve` runs: one connection per input, accepted by on_accept() from a
 * listening Unix socket (over the connection limit on some inputs: the 503 path), fed the input in
 * chunks through the real read path (on_readable / on_writable / process / handle / the tile cache /
 * the checkpoint reload), with a small send buffer on some inputs so answers queue, a client that
 * stops reading or half-closes, a forward-moving clock so the slow-head (408), linger and idle paths
 * run, the checkpoint replaced under it (inotify, on_inotify), small starting tables so the
 * connection table and the cache grow, and small caches so entries are reset or not kept.  The
 * mirror it serves is written once at start: a checkpoint, full and partial hash tiles, entry
 * bundles, a tile of the wrong size and a symlink pointing out of the tree.
 *
 * Input layout: byte 0 = flags, byte 1 = chunk-size seed, the rest = bytes the client sends.
 * Oracle: the sanitizers, plus every answer on the wire being a well-formed HTTP/1.1 response
 * (status line, header block, Content-Length matching what follows); anything else aborts. */
#define TILED_NO_PYTHON 1
#include "_tiled.c"
#define FUZZ_NAME "tiled"
#include "../fuzz_client.h"

static char mirror_dir[256];
static const char cp_a[] = "example.org/fuzz\n261\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
                           "\xe2\x80\x94 example.org/fuzz AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
static const char cp_b[] = "example.org/fuzz\n262\nBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=\n\n";

static void put_file(const char *rel, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", mirror_dir, rel);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, n, f) != n)
        abort();
    fclose(f);
}

static void make_dirs(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", mirror_dir, rel);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_make_dir(mirror_dir, sizeof mirror_dir);
    static unsigned char tile[8192], bundle[4000];
    for (size_t i = 0; i < sizeof tile; i++)
        tile[i] = (unsigned char)(i * 7);
    for (size_t i = 0; i < sizeof bundle; i += 16) {
        bundle[i] = 0;
        bundle[i + 1] = 14;
    }
    make_dirs("tile");
    make_dirs("tile/0");
    make_dirs("tile/0/001.p");
    make_dirs("tile/0/x001");
    make_dirs("tile/1");
    make_dirs("tile/1/000.p");
    make_dirs("tile/entries");
    make_dirs("tile/entries/001.p");
    put_file("checkpoint", cp_a, sizeof cp_a - 1);
    put_file("tile/0/000", tile, sizeof tile);
    put_file("tile/0/001.p/5", tile, 160);
    put_file("tile/0/002", tile, 100); /* wrong size: a damaged mirror, answered 500 */
    put_file("tile/0/x001/234", tile, sizeof tile);
    for (int w = 1; w <= 24; w++) { /* many small answers: the cache table fills and grows */
        char rel[64];
        snprintf(rel, sizeof rel, "tile/1/000.p/%d", w);
        put_file(rel, tile, (size_t)32 * w);
    }
    put_file("tile/entries/000", bundle, sizeof bundle);
    put_file("tile/entries/001.p/5", bundle, 80);
    char link[512];
    snprintf(link, sizeof link, "%s/tile/0/003", mirror_dir);
    if (symlink("/etc/passwd", link) != 0 && errno != EEXIST)
        abort();

    refresh_ms = 1000;
    idle_ms = 60000;
    head_ms_limit = 10000;
    cache_cap_bytes = 256u << 20;
    max_conns = 10000;
    root_fd = open(mirror_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ep = epoll_create1(EPOLL_CLOEXEC);
    cache.cap = 8; /* small (the server starts at 1024): growing the table is exercised too */
    cache.slots = calloc(cache.cap, sizeof(entry_t));
    conns_cap = 4; /* likewise: fds above it grow the connection table */
    conns = calloc(conns_cap, sizeof *conns);
    lfd = fuzz_listen(mirror_dir);
    ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ifd < 0 || inotify_add_watch(ifd, mirror_dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE) < 0)
        abort();
    if (root_fd < 0 || ep < 0 || cache.slots == NULL || conns == NULL)
        abort();
    atexit(teardown); /* everything freed: LeakSanitizer then sees only real leaks */
    tick();
    return 0;
}

/* Replace the checkpoint as the exporter does (write a temporary file, rename it into place). */
static void replace_checkpoint(int which)
{
    const char *text = which ? cp_b : cp_a;
    size_t n = which ? sizeof cp_b - 1 : sizeof cp_a - 1;
    put_file("checkpoint.tmp", text, n);
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/checkpoint.tmp", mirror_dir);
    snprintf(to, sizeof to, "%s/checkpoint", mirror_dir);
    if (rename(from, to) != 0)
        abort();
}

/* ---- the client side: what it received must be a sequence of well-formed responses ---------------- */
static int cut_short; /* the server closed an idle connection: its last answer may be cut off */

static int response_starts(size_t at)
{
    return at == seen_len || (seen_len - at >= 9 && memcmp(seen + at, "HTTP/1.1 ", 9) == 0);
}

static void check_output(void)
{
    if (seen_overflow)
        return;
    size_t i = 0;
    while (i < seen_len) {
        const char *p = seen + i;
        size_t left = seen_len - i;
        if (cut_short && (left < 17 || (memcmp(p, "HTTP/1.1 ", 9) == 0 && memmem(p, left, "\r\n\r\n", 4) == NULL)))
            return;
        if (left < 17 || memcmp(p, "HTTP/1.1 ", 9) != 0 || !d3(p + 9) || p[12] != ' ')
            bad_output("status line", i);
        const char *end = memmem(p, left, "\r\n\r\n", 4);
        if (end == NULL)
            bad_output("no end of header block", i);
        size_t hl = (size_t)(end - p) + 4;
        const char *cl = memmem(p, hl, "\r\nContent-Length: ", 18);
        if (cl == NULL)
            bad_output("no Content-Length", i);
        size_t body = strtoul(cl + 18, NULL, 10);
        /* the body, then the next response or the end; or no body at all (an answer to HEAD) */
        if (left - hl >= body && response_starts(i + hl + body))
            i += hl + body;
        else if (response_starts(i + hl))
            i += hl;
        else if (cut_short && left - hl < body && memmem(p + hl, left - hl, "HTTP/1.1 ", 9) == NULL)
            i = seen_len;
        else
            bad_output("body does not match Content-Length", i);
    }
}

/* What the epoll loop does for one connection, until it has nothing more to do. */
static void pump(int fd, int client, int reading)
{
    for (;;) {
        conn_t *c = conns[fd];
        if (c == NULL)
            return;
        if (reading)
            drain(client);
        struct pollfd pf = {.fd = fd, .events = (short)(c->want_out ? POLLOUT : POLLIN)};
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0], seed = data[1];
    data += 2;
    size -= 2;
    seen_len = 0;
    seen_overflow = 0;
    unsigned long long idle_before = st.closed_idle;
    tick();
    /* 20000: tiles are cached and the cache is reset; 6000: a full tile is too large to keep */
    cache_cap_bytes = (flags & 3) == 0 ? 20000 : (flags & 3) == 1 ? 6000 : 256u << 20;
    max_conns = (flags & 4) ? 0 : 10000; /* 0: this connection is over the limit and gets a 503 */
    if (flags & 64) { /* the exporter replaces the checkpoint: inotify reports it */
        replace_checkpoint(seed & 1);
        on_inotify();
    }

    int fd;
    int client = fuzz_connect(&fd, flags & 8); /* 8: small buffers, answers queue */
    int reading = !(flags & 16); /* a client that does not read until the end */
    size_t off = 0;
    unsigned s = seed;
    while (off < size && conns[fd]) {
        size_t n = fuzz_chunk(seed, &s, size - off);
        while (n) {
            ssize_t w = send(client, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
                n -= (size_t)w;
                continue;
            }
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                drain(client);
                pump(fd, client, 1);
                if (conns[fd] == NULL)
                    break;
                struct pollfd pf = {.fd = client, .events = POLLOUT};
                if (poll(&pf, 1, 0) <= 0) /* the server stopped reading (its queue is full): stop sending */
                    goto done_sending;
                continue;
            }
            goto done_sending; /* the server closed */
        }
        pump(fd, client, reading);
        if ((flags & 32) && conns[fd] && (s & 3) == 0) {
            skew_ms += 11000; /* time passes: slow heads get 408, lingering and idle connections close */
            tick();
            sweep_idle();
            pump(fd, client, reading);
        }
    }
done_sending:
    if (flags & 128)
        shutdown(client, SHUT_WR);
    pump(fd, client, 1);
    if (conns[fd] && (flags & 32)) {
        skew_ms += 61000;
        tick();
        sweep_idle();
    }
    pump(fd, client, 1);
    drain(client);
    if (conns[fd])
        conn_close(conns[fd]);
    drain(client);
    close(client);
    cut_short = st.closed_idle != idle_before;
    check_output();
    return 0;
}
