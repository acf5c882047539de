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
