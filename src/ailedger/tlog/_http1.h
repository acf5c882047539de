/* HTTP/1.1 request-head helpers shared by the C servers (_tiled.c, the tile mirror; _front.c, the write
 * front): case-insensitive token matching and finding the end of a request head (RFC 9112 2.2, 5). */
#ifndef AILEDGER_HTTP1_H
#define AILEDGER_HTTP1_H

#include <stddef.h>
#include <string.h>

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

/* Length of the request head at p (through its blank line, CRLF or bare LF), or 0 if it is not all here. */
static size_t http1_head_end(const char *p, size_t avail)
{
    for (size_t i = 0; i + 1 < avail; i++) {
        if (p[i] == '\n' && (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < avail && p[i + 2] == '\n')))
            return i + (p[i + 1] == '\n' ? 2 : 3);
    }
    return 0;
}

#endif
