/* ip.c - see ip.h. */
#include "base/ip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

int fv_ip_parse(const char *s, struct fv_ip *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, out->a) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->a) == 1) {
        out->family = AF_INET6;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return -FV_EADDR;
}

void fv_ip_from_bytes(const void *p, size_t n, struct fv_ip *out)
{
    memset(out, 0, sizeof(*out));
    out->family = n == 16 ? AF_INET6 : AF_INET;
    memcpy(out->a, p, n == 16 ? 16 : 4);
}

const char *fv_ip_str(const struct fv_ip *ip, char *buf)
{
    if (ip->family == AF_INET || ip->family == AF_INET6)
        inet_ntop(ip->family, ip->a, buf, FV_IP_STRLEN);
    else
        strcpy(buf, "");
    return buf;
}

bool fv_ip_equal(const struct fv_ip *x, const struct fv_ip *y)
{
    return x->family == y->family && memcmp(x->a, y->a, 16) == 0;
}

bool fv_ip_is_zero(const struct fv_ip *ip)
{
    static const uint8_t zero[16];
    return ip->family == 0 || memcmp(ip->a, zero, 16) == 0;
}

int fv_cidr_parse(const char *s, struct fv_cidr *out)
{
    char host[FV_IP_STRLEN];
    const char *slash = strchr(s, '/');
    char *end;
    long len;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (slash == NULL)
        return -FV_EADDR;
    n = (size_t)(slash - s);
    if (n == 0 || n >= sizeof(host))
        return -FV_EADDR;
    memcpy(host, s, n);
    host[n] = '\0';
    if (fv_ip_parse(host, &out->net) < 0)
        return -FV_EADDR;
    len = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end != '\0' || len < 0 ||
        len > (out->net.family == AF_INET ? 32 : 128))
        return -FV_EADDR;
    out->len = (uint8_t)len;
    /* Clear the host bits so that contains() is a plain masked compare. */
    for (int i = 0; i < 16; i++) {
        int bits = (int)len - 8 * i;
        uint8_t mask = bits >= 8 ? 0xFF : bits <= 0 ? 0 : (uint8_t)(0xFF << (8 - bits));
        out->net.a[i] &= mask;
    }
    return 0;
}

bool fv_cidr_contains(const struct fv_cidr *net, const struct fv_ip *ip)
{
    if (ip->family != net->net.family)
        return false;
    for (int i = 0; i < 16; i++) {
        int bits = (int)net->len - 8 * i;
        if (bits <= 0)
            return true;
        uint8_t mask = bits >= 8 ? 0xFF : (uint8_t)(0xFF << (8 - bits));
        if ((ip->a[i] & mask) != net->net.a[i])
            return false;
    }
    return true;
}
