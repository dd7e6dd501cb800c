/* jsonout.c - JSON lines over TCP or UDP (jsonout.h). */
#include "aggregator/jsonout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/err.h"

#define BUF_CAP (64u << 10)

struct jsonout {
    struct fv_addr addr;
    int fd;
    uint64_t sent;    /* lines delivered */
    uint64_t pending; /* lines in buf */
    size_t len;
    uint8_t buf[BUF_CAP];
};

int fv_jsonout_new(const struct fv_addr *addr, void **out)
{
    struct jsonout *j;

    if (addr->proto != FV_PROTO_TCP && addr->proto != FV_PROTO_UDP)
        return -FV_ECONFIG;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return -ENOMEM;
    j->addr = *addr;
    j->fd = -1;
    *out = j;
    return 0;
}

static void jclose(struct jsonout *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
}

static int jconnect(void *tp)
{
    struct jsonout *j = tp;
    struct sockaddr_storage ss;
    socklen_t len;
    struct timeval tv = {3, 0};
    int rc = fv_addr_resolve(&j->addr, &ss, &len);

    if (rc < 0)
        return rc;
    jclose(j);
    j->fd = socket(ss.ss_family,
                   (j->addr.proto == FV_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (j->fd < 0)
        return -errno;
    /* Bounds connect() and every send: a stuck collector stalls only this
     * thread, and only for a while. */
    setsockopt(j->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(j->fd, (struct sockaddr *)&ss, len) < 0) {
        rc = -errno;
        jclose(j);
        return rc;
    }
    /* A stream restarts clean: a partly sent buffer is sent again whole. */
    return 0;
}

static bool jconnected(void *tp)
{
    return ((struct jsonout *)tp)->fd >= 0;
}

static int send_all(struct jsonout *j, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(j->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int rc = -errno;
            jclose(j);
            return rc;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int jflush(void *tp)
{
    struct jsonout *j = tp;
    int rc;

    if (j->len == 0)
        return 0;
    if (j->fd < 0)
        return -FV_ECLOSED;
    rc = send_all(j, j->buf, j->len);
    if (rc < 0)
        return rc;
    j->sent += j->pending;
    j->pending = 0;
    j->len = 0;
    return 0;
}

static int jadd(void *tp, uint16_t tag, const uint8_t *p, size_t len)
{
    struct jsonout *j = tp;
    (void)tag;

    if (j->fd < 0)
        return -FV_ECLOSED;
    if (j->addr.proto == FV_PROTO_UDP) {
        /* One datagram per line; a failed send keeps the line queued. */
        if (send(j->fd, p, len, MSG_NOSIGNAL) < 0) {
            if (errno == EMSGSIZE)
                return -FV_ELIMIT;
            int rc = -errno;
            jclose(j);
            return rc;
        }
        j->sent++;
        return 0;
    }
    if (j->len + len > BUF_CAP) {
        int rc = jflush(j);
        if (rc < 0)
            return rc;
    }
    if (len > BUF_CAP)
        return send_all(j, p, len) == 0 ? (j->sent++, 0) : -FV_ECLOSED;
    memcpy(j->buf + j->len, p, len);
    j->len += len;
    j->pending++;
    return 0;
}

static bool jcheck(void *tp)
{
    struct jsonout *j = tp;
    char c;

    if (j->fd < 0)
        return false;
    if (j->addr.proto == FV_PROTO_TCP && recv(j->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
        jclose(j);
        return false;
    }
    return true;
}

static uint64_t jsent(void *tp)
{
    return ((struct jsonout *)tp)->sent;
}

static void jfree(void *tp)
{
    struct jsonout *j = tp;
    if (j == NULL)
        return;
    jclose(j);
    free(j);
}

const struct fv_sender_ops fv_jsonout_ops = {jconnect, jconnected, jadd, jflush,
                                             jcheck,   jsent,      jfree};
