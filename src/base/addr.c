/* addr.c - see addr.h. */
#include "base/addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static const char *const proto_names[] = {"udp", "tcp", "tls"};

int fv_proto_parse(const char *name, enum fv_proto *out)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, proto_names[i]) == 0) {
            *out = (enum fv_proto)i;
            return 0;
        }
    }
    return -FV_EADDR;
}

const char *fv_proto_name(enum fv_proto proto)
{
    return proto_names[proto];
}

static int parse_port(const char *s, size_t len, uint16_t *out)
{
    char tmp[8];
    char *end;
    long v;

    if (len == 0 || len >= sizeof(tmp))
        return -FV_EADDR;
    /* strtol() alone would also take a sign and leading spaces. */
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return -FV_EADDR;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    v = strtol(tmp, &end, 10);
    if (*end != '\0' || v < 1 || v > 65535)
        return -FV_EADDR;
    *out = (uint16_t)v;
    return 0;
}

int fv_addr_parse(const char *text, uint16_t default_port, enum fv_proto default_proto,
                  struct fv_addr *out)
{
    const char *rest;
    size_t hostlen;
    char proto[8];

    out->port = default_port;
    out->proto = default_proto;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL)
            return -FV_EADDR;
        hostlen = (size_t)(close - text - 1);
        memcpy(out->host, text + 1, hostlen < sizeof(out->host) ? hostlen : 0);
        rest = close + 1;
        if (*rest != '\0' && *rest != ':')
            return -FV_EADDR;
    } else {
        rest = strchr(text, ':');
        if (rest == NULL)
            rest = text + strlen(text);
        hostlen = (size_t)(rest - text);
        if (hostlen < sizeof(out->host))
            memcpy(out->host, text, hostlen);
    }
    if (hostlen == 0 || hostlen >= sizeof(out->host))
        return -FV_EADDR;
    out->host[hostlen] = '\0';
    if (*rest == '\0')
        return 0;
    rest++;
    const char *colon = strchr(rest, ':');
    size_t portlen = colon ? (size_t)(colon - rest) : strlen(rest);
    if (portlen > 0 && parse_port(rest, portlen, &out->port) < 0)
        return -FV_EADDR;
    if (colon == NULL)
        return 0;
    if (strlen(colon + 1) >= sizeof(proto))
        return -FV_EADDR;
    strcpy(proto, colon + 1);
    return fv_proto_parse(proto, &out->proto);
}

int fv_addr_resolve(const struct fv_addr *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[8];

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = addr->proto == FV_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", addr->port);
    if (getaddrinfo(addr->host, port, &hints, &res) != 0 || res == NULL)
        return -FV_EADDR;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void fv_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t n)
{
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        /* Show IPv4-mapped peers of dual-stack sockets as plain IPv4. */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)n);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)n);
    } else {
        snprintf(buf, n, "?");
    }
}

void fv_sockaddr_str(const struct sockaddr *sa, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port = 0;

    fv_sockaddr_ip(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    if (strchr(ip, ':'))
        snprintf(buf, n, "[%s]:%u", ip, port);
    else
        snprintf(buf, n, "%s:%u", ip, port);
}
