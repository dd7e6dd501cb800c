/*
 * err.h - flowvis error codes.
 *
 * Every fallible function returns 0 on success or a negative code: either
 * -errno (from the C library or the kernel) or one of the FV_E* codes below.
 * The FV_E* codes live far above any errno value so the two never collide,
 * and fv_strerror() turns either kind into a static message.
 *
 *     int rc = fv_ipfix_msg_open(buf, len, &msg);
 *     if (rc < 0)
 *         fprintf(stderr, "bad message: %s\n", fv_strerror(rc));
 */
#ifndef FV_BASE_ERR_H
#define FV_BASE_ERR_H

/* One row per code: symbol, message.  Drives the enum and fv_strerror(). */
#define FV_ERRORS(X)                                                                               \
    X(FV_ETRUNC, "truncated input")                                                                \
    X(FV_EVERSION, "unsupported IPFIX version")                                                    \
    X(FV_ELENGTH, "length field disagrees with the data")                                          \
    X(FV_ESETID, "invalid set id")                                                                 \
    X(FV_ETEMPLATE, "malformed template record")                                                   \
    X(FV_ENOTEMPLATE, "data set for an unknown template")                                          \
    X(FV_ERECORD, "record does not fit its set")                                                   \
    X(FV_ENOSPACE, "buffer full")                                                                  \
    X(FV_ELIMIT, "limit exceeded")                                                                 \
    X(FV_EADDR, "invalid address")                                                                 \
    X(FV_ECONFIG, "invalid configuration")                                                         \
    X(FV_ETLS, "TLS failure")                                                                      \
    X(FV_ECLOSED, "peer closed the connection")                                                    \
    X(FV_EEND, "end of iteration")

#define FV_E_BASE 10000

enum fv_err {
    FV_E_FIRST_ = FV_E_BASE,
#define FV_ERR_ENUM(sym, msg) sym,
    FV_ERRORS(FV_ERR_ENUM)
#undef FV_ERR_ENUM
        FV_E_LAST_
};

/* A static message for 0, a negative errno or a negative FV_E* code. */
const char *fv_strerror(int rc);

#endif
