/*
 * ip.h - IPv4/IPv6 addresses and CIDR prefixes as plain values.
 *
 * struct fv_ip holds either family in 16 bytes (IPv4 in the first 4, the
 * rest zero) so it can be hashed and compared with memcmp.  Parsing is
 * strict: "10.0.0.1", "fd00::1", and for prefixes "10.244.0.0/16",
 * "fd00:10:244::/64"; anything else is -FV_EADDR.
 *
 *     struct fv_ip ip;  struct fv_cidr net;
 *     fv_ip_parse("10.244.1.5", &ip);
 *     fv_cidr_parse("10.244.0.0/16", &net);
 *     if (fv_cidr_contains(&net, &ip)) ...
 */
#ifndef FV_BASE_IP_H
#define FV_BASE_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FV_IP_STRLEN 46 /* INET6_ADDRSTRLEN */

struct fv_ip {
    uint8_t family; /* AF_INET or AF_INET6; 0 for "no address" */
    uint8_t a[16];  /* network order; IPv4 uses a[0..3], the rest is zero */
};

struct fv_cidr {
    struct fv_ip net; /* the network address, host bits cleared */
    uint8_t len;      /* prefix length, 0..32 or 0..128 */
};

int fv_ip_parse(const char *s, struct fv_ip *out);
/* From raw bytes: n == 4 for IPv4, n == 16 for IPv6. */
void fv_ip_from_bytes(const void *p, size_t n, struct fv_ip *out);
/* "10.0.0.1" / "fd00::1"; buf must hold FV_IP_STRLEN bytes. */
const char *fv_ip_str(const struct fv_ip *ip, char *buf);
bool fv_ip_equal(const struct fv_ip *x, const struct fv_ip *y);
bool fv_ip_is_zero(const struct fv_ip *ip);

int fv_cidr_parse(const char *s, struct fv_cidr *out);
bool fv_cidr_contains(const struct fv_cidr *net, const struct fv_ip *ip);

#endif
