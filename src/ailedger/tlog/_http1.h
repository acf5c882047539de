/* HTTP/1.1 helpers shared by the C servers (_tiled.c, the tile mirror; _front.c, the write front):
 * case-insensitive token matching, finding the end of a request head (RFC 9112 2.2, 5), the Date header's
 * IMF-fixdate (RFC 9110 5.6.7), a connection's output buffer (append, send), and the socket plumbing of
 * their epoll loops (accepting, growing the connection table, reading). */
#ifndef AILEDGER_HTTP1_H
#define AILEDGER_HTTP1_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

/* Is the n bytes at a equal to the lower-case literal lit, ignoring ASCII case? */
static int ieq(const char *a, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x + 32);
        if (x != lit[i])
            return 0;
    }
    return 1;
}

/* Does the comma-separated header value contain the token (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (ieq(v + s, e - s, tok))
            return 1;
    }
    return 0;
}

/* The line at p in a request head ending before end (an LF is there): its length without the CR LF or bare
 * LF that ends it; *next is where the next line starts. */
static size_t http1_line(const char *p, const char *end, const char **next)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)(lf - p);
    if (n && p[n - 1] == '\r')
        n--;
    *next = lf + 1;
    return n;
}

/* keep (1: the connection stays open after this answer) after a Connection header's value (vn bytes at v). */
static int http1_keep_alive(const char *v, size_t vn, int keep)
{
    if (has_token(v, vn, "close"))
        return 0;
    if (has_token(v, vn, "keep-alive"))
        return 1;
    return keep;
}

/* Which HTTP/1.x the request line's version (vl bytes at ver) names: 1 (HTTP/1.1), 0 (HTTP/1.0), -505 for a
 * later major version (answered 505), -400 for anything else (malformed). */
static int http1_version(const char *ver, size_t vl)
{
    if (vl == 8 && memcmp(ver, "HTTP/1.1", 8) == 0)
        return 1;
    if (vl == 8 && memcmp(ver, "HTTP/1.0", 8) == 0)
        return 0;
    if (vl == 8 && memcmp(ver, "HTTP/", 5) == 0 && ver[5] >= '2' && ver[5] <= '9')
        return -505;
    return -400;
}

/* One header field line (n bytes at q, without its line end, not empty): its name is the *nl bytes at q,
 * its value the *vn bytes at *v with the blanks around it dropped. 0 if the line is malformed: it starts
 * with a blank (obsolete line folding), has no name, or has a blank before the colon (RFC 9112 5.1). */
static int http1_field(const char *q, size_t n, size_t *nl, const char **v, size_t *vn)
{
    const char *colon = memchr(q, ':', n);
    if (q[0] == ' ' || q[0] == '\t' || colon == NULL || colon == q || colon[-1] == ' ' || colon[-1] == '\t')
        return 0;
    *nl = (size_t)(colon - q);
    *v = colon + 1;
    *vn = n - *nl - 1;
    while (*vn && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*vn)--;
    }
    while (*vn && ((*v)[*vn - 1] == ' ' || (*v)[*vn - 1] == '\t'))
        (*vn)--;
    return 1;
}

/* Length of the request head at p (through its blank line, CRLF or bare LF), or 0 if it is not all here. */
static size_t http1_head_end(const char *p, size_t avail)
{
    for (size_t i = 0; i + 1 < avail; i++) {
        if (p[i] == '\n' && (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < avail && p[i + 2] == '\n')))
            return i + (p[i + 1] == '\n' ? 2 : 3);
    }
    return 0;
}

/* If the wall-clock second sec differs from *date_sec, write it to date (size bytes) as an IMF-fixdate
 * ("Sun, 06 Nov 1994 08:49:37 GMT") and remember it in *date_sec. */
static void http1_set_date(char *date, size_t size, int64_t *date_sec, time_t sec)
{
    if (sec == *date_sec)
        return;
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(date, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    *date_sec = sec;
}

/* A connection's output: bytes [off, len) of buf are still to be sent; cap is buf's allocation. Both
 * servers keep these four fields in their connection type and pass their addresses here. */

/* Queue n bytes at p (growing buf, first to first_cap, then doubling); -1 if out of memory. */
static int http1_out_append(char **buf, size_t *len, size_t *off, size_t *cap, size_t first_cap,
                            const char *p, size_t n)
{
    if (*off && *off == *len)
        *off = *len = 0;
    if (*len + n > *cap) {
        if (*off) {
            memmove(*buf, *buf + *off, *len - *off);
            *len -= *off;
            *off = 0;
        }
        if (*len + n > *cap) {
            size_t nc = *cap ? *cap : first_cap;
            while (nc < *len + n)
                nc *= 2;
            char *no = realloc(*buf, nc);
            if (no == NULL)
                return -1;
            *buf = no;
            *cap = nc;
        }
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

/* Send what is queued on fd without blocking; 0 = all sent, 1 = more queued, -1 = connection gone.
 * Once all is sent, a buffer grown past 64 KiB by a large answer is given back. */
static int http1_out_flush(int fd, char **buf, size_t *len, size_t *off, size_t *cap)
{
    while (*off < *len) {
        ssize_t w = send(fd, *buf + *off, *len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            return -1;
        }
        *off += (size_t)w;
    }
    *off = *len = 0;
    if (*cap > 65536) {
        free(*buf);
        *buf = NULL;
        *cap = 0;
    }
    return 0;
}

/* The next connection waiting on the listening socket lfd (non-blocking, close-on-exec), or -1 when there is
 * none now (EAGAIN, or EMFILE and friends: tried again on the next event). */
static int http1_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0 || (errno != EINTR && errno != ECONNABORTED))
            return fd;
    }
}

/* Grow the zero-filled table of *cap elements of elem bytes (doubling) until index fits: the new table, with
 * the new slots zeroed and *cap updated, or NULL (table and *cap unchanged) if out of memory. */
static void *http1_table_grow(void *table, size_t *cap, size_t elem, size_t index)
{
    size_t nc = *cap;
    while (nc <= index)
        nc *= 2;
    char *n = realloc(table, nc * elem);
    if (n == NULL)
        return NULL;
    memset(n + *cap * elem, 0, (nc - *cap) * elem);
    *cap = nc;
    return n;
}

/* Did recv's result r say the peer closed or the connection failed (not: no data yet, or interrupted)? */
static int http1_recv_gone(ssize_t r)
{
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* A lingering close: read and drop what the client still sends; 1 once it has closed (or failed). */
static int http1_linger_read(int fd)
{
    char drop[16384];
    return http1_recv_gone(recv(fd, drop, sizeof drop, MSG_DONTWAIT));
}

#endif
