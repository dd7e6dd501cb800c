/* table.c - fixed-key open-addressing hash table and index keys; see internal.h. */
#include "k8s/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over the key, then a murmur3 finaliser so that keys differing
 * only in their last bytes (IPs in one subnet) spread over the low bits. */
static uint64_t key_hash(const uint8_t *key, size_t len)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < len; i++) {
        h ^= key[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* A slot is the value followed by the key, padded to a multiple of 8, so
 * that a probe touches one cache line, not one in each of two arrays. */
static uintptr_t *slot_val(const struct fv_k8s_table *t, size_t i)
{
    return (uintptr_t *)(void *)(t->slots + i * t->stride);
}

static uint8_t *slot_key(const struct fv_k8s_table *t, size_t i)
{
    return t->slots + i * t->stride + sizeof(uintptr_t);
}

void fv_k8s_table_init(struct fv_k8s_table *t, size_t key_len)
{
    memset(t, 0, sizeof(*t));
    t->key_len = key_len;
    t->stride = (sizeof(uintptr_t) + key_len + 7) & ~(size_t)7;
}

void fv_k8s_table_fini(struct fv_k8s_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->n = 0;
}

/* Where key is, or the empty slot where it would go. */
static size_t find(const struct fv_k8s_table *t, const uint8_t *key)
{
    size_t i = (size_t)key_hash(key, t->key_len) & (t->cap - 1);

    while (*slot_val(t, i) != 0 && memcmp(slot_key(t, i), key, t->key_len) != 0)
        i = (i + 1) & (t->cap - 1);
    return i;
}

static int rehash(struct fv_k8s_table *t, size_t cap)
{
    struct fv_k8s_table n = *t;

    if (cap > SIZE_MAX / t->stride)
        return -ENOMEM;
    n.cap = cap;
    n.slots = calloc(cap, t->stride);
    if (n.slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (*slot_val(t, i) != 0)
            memcpy(n.slots + find(&n, slot_key(t, i)) * t->stride, t->slots + i * t->stride,
                   t->stride);
    }
    free(t->slots);
    *t = n;
    return 0;
}

int fv_k8s_table_reserve(struct fv_k8s_table *t, size_t n)
{
    size_t cap = 16;

    /* At most half full keeps linear probing short. */
    while (cap < n * 2) {
        if (cap > SIZE_MAX / 4)
            return -ENOMEM;
        cap *= 2;
    }
    return cap > t->cap ? rehash(t, cap) : 0;
}

uintptr_t *fv_k8s_table_slot(struct fv_k8s_table *t, const void *key)
{
    size_t i;

    if (fv_k8s_table_reserve(t, t->n + 1) < 0)
        return NULL;
    i = find(t, key);
    if (*slot_val(t, i) == 0) {
        /* The caller stores the value at once; until it does, the slot
         * still reads as empty. */
        memcpy(slot_key(t, i), key, t->key_len);
        t->n++;
    }
    return slot_val(t, i);
}

uintptr_t fv_k8s_table_get(const struct fv_k8s_table *t, const void *key)
{
    if (t->cap == 0)
        return 0;
    return *slot_val(t, find(t, key));
}

/* ---- Keys ---- */

void fv_k8s_ip_key(const struct fv_ip *ip, uint8_t *key)
{
    key[0] = ip->family;
    memcpy(key + 1, ip->a, 16);
}

void fv_k8s_svc_key(const struct fv_ip *ip, uint16_t port, uint8_t proto, uint8_t *key)
{
    fv_k8s_ip_key(ip, key);
    key[FV_K8S_IP_KEY_LEN] = (uint8_t)(port >> 8);
    key[FV_K8S_IP_KEY_LEN + 1] = (uint8_t)port;
    key[FV_K8S_IP_KEY_LEN + 2] = proto;
}

void fv_k8s_cidr_key(const struct fv_ip *ip, uint8_t len, uint8_t *key)
{
    fv_k8s_ip_key(ip, key);
    for (int i = 0; i < 16; i++) {
        int bits = (int)len - 8 * i;
        key[1 + i] &= bits >= 8 ? 0xFF : bits <= 0 ? 0 : (uint8_t)(0xFF << (8 - bits));
    }
    key[FV_K8S_IP_KEY_LEN] = len;
}
