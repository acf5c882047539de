/* The client side shared by the C servers' libFuzzer harnesses (front/fuzz_front.c, tiled/fuzz_tiled.c),
 * included after the server's own C file: a clock that can be moved on (skew_ms), a scratch directory with
 * the listening Unix socket the harness's connections come through, and the buffer that collects what the
 * server sent (drain) for the harness's wire check. Define FUZZ_NAME ("front", "tiled") before including. */
#ifndef AILEDGER_FUZZ_CLIENT_H
#define AILEDGER_FUZZ_CLIENT_H

#include <poll.h>
#include <sys/un.h>

static int64_t skew_ms;
static struct sockaddr_un listen_addr;

static void tick(void)
{
    update_clock();
    now_ms += skew_ms;
}

/* Make a fresh directory FUZZ_NAME-fuzz-XXXXXX under $TMPDIR (or /tmp) into dir (size bytes). */
static void fuzz_make_dir(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/" FUZZ_NAME "-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
}

/* A non-blocking listening Unix socket at dir/s (its address kept in listen_addr for the client). */
static int fuzz_listen(const char *dir)
{
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    listen_addr.sun_family = AF_UNIX;
    snprintf(listen_addr.sun_path, sizeof listen_addr.sun_path, "%s/s", dir);
    if (l < 0 || bind(l, (struct sockaddr *)&listen_addr, sizeof listen_addr) != 0 || listen(l, 16) != 0)
        abort();
    return l;
}

/* Connect a client to the listening socket and have the server accept it (on_accept): the client's socket;
 * *server_fd is the server's side, the one connection in its table. With small_buffers both ends get small
 * socket buffers, so answers queue and the loop waits to write. */
static int fuzz_connect(int *server_fd, int small_buffers)
{
    int client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (client < 0 || connect(client, (struct sockaddr *)&listen_addr, sizeof listen_addr) != 0)
        abort();
    on_accept();
    int fd = -1;
    for (size_t i = 0; i < conns_cap; i++)
        if (conns[i])
            fd = (int)i;
    if (fd < 0 || n_conns != 1)
        abort();
    if (small_buffers) {
        int small = 2048;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    *server_fd = fd;
    return client;
}

/* How much of the left bytes of input to send next: all of it with seed 0, else 1 to 97 bytes drawn from
 * the generator state *s (which moves on either way). */
static size_t fuzz_chunk(unsigned seed, unsigned *s, size_t left)
{
    size_t n = seed == 0 ? left : 1 + (*s % 97);
    *s = *s * 1103515245u + 12345u;
    return n > left ? left : n;
}

/* ---- what the client received (checked by the harness's check_output) ---------------------------- */
static char seen[1 << 20];
static size_t seen_len;
static int seen_overflow;

static void drain(int client)
{
    char buf[65536];
    for (;;) {
        ssize_t r = recv(client, buf, sizeof buf, MSG_DONTWAIT);
        if (r <= 0)
            return;
        if (seen_len + (size_t)r > sizeof seen) {
            seen_overflow = 1;
            continue;
        }
        memcpy(seen + seen_len, buf, (size_t)r);
        seen_len += (size_t)r;
    }
}

static void bad_output(const char *why, size_t at)
{
    fprintf(stderr, FUZZ_NAME " fuzz: malformed output (%s) at byte %zu of %zu\n", why, at, seen_len);
    abort();
}

#endif
