/*
 * addr.h - the `HOST[:PORT][:PROTO]` address format of flowvis.
 *
 * HOST is a name, an IPv4 address or an IPv6 address in brackets
 * ("[::1]"); PORT defaults to the caller's default (4739 for IPFIX);
 * PROTO is udp, tcp or tls and defaults to the caller's default.
 *
 *     struct fv_addr a;
 *     int rc = fv_addr_parse("[::1]:4739:tls", 4739, FV_PROTO_TCP, &a);
 *     ... fv_addr_resolve(&a, &ss, &sslen) ...
 */
#ifndef FV_BASE_ADDR_H
#define FV_BASE_ADDR_H

#include <stdint.h>
#include <sys/socket.h>

enum fv_proto { FV_PROTO_UDP, FV_PROTO_TCP, FV_PROTO_TLS };

struct fv_addr {
    char host[256];      /* host name or literal, without brackets */
    uint16_t port;       /* port, host byte order */
    enum fv_proto proto; /* transport */
};

/* Parses text; returns -FV_EADDR when it is not of the format above. */
int fv_addr_parse(const char *text, uint16_t default_port, enum fv_proto default_proto,
                  struct fv_addr *out);

/* Parses "udp", "tcp" or "tls". */
int fv_proto_parse(const char *name, enum fv_proto *out);
const char *fv_proto_name(enum fv_proto proto);

/* Resolves host and port to a socket address (first result, numeric hosts
 * do no lookup).  Returns -FV_EADDR when the name does not resolve. */
int fv_addr_resolve(const struct fv_addr *addr, struct sockaddr_storage *ss, socklen_t *len);

/* Formats a socket address as "ip" (no port) into buf of size n. */
void fv_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t n);

/* Formats a socket address as "ip:port" or "[ip6]:port" into buf of size n. */
void fv_sockaddr_str(const struct sockaddr *sa, char *buf, size_t n);

#endif
