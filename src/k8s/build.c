/*
 * build.c - the builder's lifetime, storing parsed objects, and sealing the
 * model: sorting the objects and building the lookup indexes.
 */
#include "k8s/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

size_t fv_k8s_kind_size(enum fv_k8s_kind kind)
{
    switch (kind) {
    case FV_K8S_POD:
        return sizeof(struct fv_k8s_pod);
    case FV_K8S_SERVICE:
        return sizeof(struct fv_k8s_service);
    case FV_K8S_NODE:
        return sizeof(struct fv_k8s_node);
    case FV_K8S_NAMESPACE:
        return sizeof(struct fv_k8s_namespace);
    case FV_K8S_NETWORK_POLICY:
        return sizeof(struct fv_k8s_network_policy);
    default:
        return 0;
    }
}

int fv_k8s_builder_new(struct fv_k8s_builder **out)
{
    struct fv_k8s_builder *b = calloc(1, sizeof(*b));
    struct fv_k8s_inventory *inv = calloc(1, sizeof(*inv));

    *out = NULL;
    if (b == NULL || inv == NULL) {
        free(b);
        free(inv);
        return -ENOMEM;
    }
    fv_k8s_pool_init(&inv->pool);
    fv_k8s_table_init(&inv->pod_by_ip, FV_K8S_IP_KEY_LEN);
    fv_k8s_table_init(&inv->svc_by_addr, FV_K8S_SVC_KEY_LEN);
    fv_k8s_table_init(&inv->node_by_cidr, FV_K8S_CIDR_KEY_LEN);
    fv_k8s_table_init(&inv->np_ns, sizeof(const char *));
    fv_k8s_table_init(&inv->node_by_addr, FV_K8S_IP_KEY_LEN);
    b->inv = inv;
    fv_k8s_strtab_init(&b->strs, &inv->pool);
    for (int k = 0; k < FV_K8S_KIND_COUNT; k++)
        fv_k8s_table_init(&b->by_name[k], 2 * sizeof(const char *));
    *out = b;
    return 0;
}

void fv_k8s_builder_free(struct fv_k8s_builder *b)
{
    if (b == NULL)
        return;
    fv_k8s_inventory_free(b->inv);
    fv_k8s_strtab_fini(&b->strs);
    for (int k = 0; k < FV_K8S_KIND_COUNT; k++)
        fv_k8s_table_fini(&b->by_name[k]);
    free(b);
}

void fv_k8s_builder_note(struct fv_k8s_builder *b, size_t *counter, const char *fmt, ...)
{
    struct fv_k8s_inventory_stats *st = &b->inv->stats;
    va_list ap;

    (*counter)++;
    if (st->first_issue[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(st->first_issue, sizeof(st->first_issue), fmt, ap);
    va_end(ap);
}

static int vec_grow(struct fv_k8s_vec *vec, size_t elem)
{
    size_t cap = vec->cap ? vec->cap * 2 : 16;
    void *v;

    if (cap > SIZE_MAX / elem)
        return -ENOMEM;
    v = realloc(vec->v, cap * elem);
    if (v == NULL)
        return -ENOMEM;
    vec->v = v;
    vec->cap = cap;
    return 0;
}

int fv_k8s_builder_store(struct fv_k8s_builder *b, enum fv_k8s_kind kind, const char *ns,
                         const char *name, const void *obj)
{
    /* Interned strings are equal exactly when their pointers are. */
    const char *key[2] = {ns, name};
    struct fv_k8s_vec *vec = &b->inv->objs[kind];
    size_t size = fv_k8s_kind_size(kind);
    uintptr_t *slot = fv_k8s_table_slot(&b->by_name[kind], key);
    unsigned char *dst;

    if (slot == NULL)
        return -ENOMEM;
    if (*slot != 0) {
        dst = (unsigned char *)vec->v + (*slot - 1) * size;
        if (kind == FV_K8S_NETWORK_POLICY)
            json_decref(((struct fv_k8s_network_policy *)dst)->obj);
        memcpy(dst, obj, size);
        b->inv->stats.duplicates++;
        return 0;
    }
    if (vec->n == vec->cap && vec_grow(vec, size) < 0)
        return -ENOMEM;
    memcpy((unsigned char *)vec->v + vec->n * size, obj, size);
    *slot = ++vec->n;
    return 0;
}

static size_t table_bytes(const struct fv_k8s_table *t)
{
    return t->cap * t->stride;
}

static size_t memory_held(const struct fv_k8s_inventory *inv)
{
    size_t n = sizeof(*inv) + inv->pool.total + table_bytes(&inv->pod_by_ip) +
               table_bytes(&inv->svc_by_addr) + table_bytes(&inv->node_by_cidr) +
               table_bytes(&inv->np_ns) + table_bytes(&inv->node_by_addr);

    for (int k = 1; k < FV_K8S_KIND_COUNT; k++)
        n += inv->objs[k].cap * fv_k8s_kind_size(k);
    return n;
}

int fv_k8s_builder_finish(struct fv_k8s_builder *b, struct fv_k8s_inventory **out)
{
    struct fv_k8s_inventory *inv = b->inv;
    struct fv_k8s_inventory_stats *st = &inv->stats;
    int rc;

    *out = NULL;
    st->pods = inv->objs[FV_K8S_POD].n;
    st->services = inv->objs[FV_K8S_SERVICE].n;
    st->nodes = inv->objs[FV_K8S_NODE].n;
    st->namespaces = inv->objs[FV_K8S_NAMESPACE].n;
    st->policies = inv->objs[FV_K8S_NETWORK_POLICY].n;
    rc = fv_k8s_index_build(inv);
    /* Compiling interns the policies' selector keys and rule names too. */
    if (rc == 0)
        rc = fv_k8s_policy_compile(b);
    if (rc == 0) {
        st->strings = b->strs.n;
        st->string_bytes = b->strs.bytes;
        st->memory = memory_held(inv);
        b->inv = NULL;
        *out = inv;
    }
    fv_k8s_builder_free(b);
    return rc;
}

/* ---- Sorting ---- */

static int ns_name_cmp(const char *ns1, const char *n1, const char *ns2, const char *n2)
{
    int c = strcmp(ns1, ns2);
    return c != 0 ? c : strcmp(n1, n2);
}

static int pod_cmp(const void *x, const void *y)
{
    const struct fv_k8s_pod *a = x, *b = y;
    return ns_name_cmp(a->ns, a->name, b->ns, b->name);
}

static int service_cmp(const void *x, const void *y)
{
    const struct fv_k8s_service *a = x, *b = y;
    return ns_name_cmp(a->ns, a->name, b->ns, b->name);
}

static int policy_cmp(const void *x, const void *y)
{
    const struct fv_k8s_network_policy *a = x, *b = y;
    return ns_name_cmp(a->ns, a->name, b->ns, b->name);
}

static int node_cmp(const void *x, const void *y)
{
    return strcmp(((const struct fv_k8s_node *)x)->name, ((const struct fv_k8s_node *)y)->name);
}

static int namespace_cmp(const void *x, const void *y)
{
    return strcmp(((const struct fv_k8s_namespace *)x)->name,
                  ((const struct fv_k8s_namespace *)y)->name);
}

static void sort_objects(struct fv_k8s_inventory *inv)
{
    static int (*const cmp[FV_K8S_KIND_COUNT])(const void *, const void *) = {
        [FV_K8S_POD] = pod_cmp,
        [FV_K8S_SERVICE] = service_cmp,
        [FV_K8S_NODE] = node_cmp,
        [FV_K8S_NAMESPACE] = namespace_cmp,
        [FV_K8S_NETWORK_POLICY] = policy_cmp,
    };

    for (int k = 1; k < FV_K8S_KIND_COUNT; k++)
        if (inv->objs[k].n > 1)
            qsort(inv->objs[k].v, inv->objs[k].n, fv_k8s_kind_size(k), cmp[k]);
}

/* ---- Indexes ---- */

/* Succeeded and Failed Pods have given their IPs back; hostNetwork Pods
 * carry their Node's. */
static bool pod_owns_ips(const struct fv_k8s_pod *pod)
{
    return !pod->host_network && pod->phase != FV_K8S_PHASE_SUCCEEDED &&
           pod->phase != FV_K8S_PHASE_FAILED;
}

static int index_pods(struct fv_k8s_inventory *inv)
{
    const struct fv_k8s_pod *pods = inv->objs[FV_K8S_POD].v;
    size_t n = inv->objs[FV_K8S_POD].n, n_ips = 0;
    uint8_t key[FV_K8S_IP_KEY_LEN];

    for (size_t i = 0; i < n; i++)
        n_ips += pod_owns_ips(&pods[i]) ? pods[i].n_ips : 0;
    if (fv_k8s_table_reserve(&inv->pod_by_ip, n_ips) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t j = 0; pod_owns_ips(&pods[i]) && j < pods[i].n_ips; j++) {
            uintptr_t *slot;
            const struct fv_k8s_pod *old;
            fv_k8s_ip_key(&pods[i].ips[j], key);
            slot = fv_k8s_table_slot(&inv->pod_by_ip, key);
            if (slot == NULL)
                return -ENOMEM;
            old = (const struct fv_k8s_pod *)*slot;
            if (old != NULL)
                inv->stats.ip_conflicts++;
            /* A Running Pod wins; otherwise the first in order stays. */
            if (old == NULL ||
                (old->phase != FV_K8S_PHASE_RUNNING && pods[i].phase == FV_K8S_PHASE_RUNNING))
                *slot = (uintptr_t)&pods[i];
        }
    }
    return 0;
}

static int index_service(struct fv_k8s_inventory *inv, const struct fv_k8s_service *svc,
                         struct fv_k8s_svc_ref *refs, size_t *used)
{
    uint8_t key[FV_K8S_SVC_KEY_LEN];

    for (uint32_t i = 0; i < svc->n_ips; i++) {
        for (uint32_t j = 0; j < svc->n_ports; j++) {
            const struct fv_k8s_service_port *p = &svc->ports[j];
            uintptr_t *slot;
            fv_k8s_svc_key(&svc->ips[i], p->port, p->proto, key);
            slot = fv_k8s_table_slot(&inv->svc_by_addr, key);
            if (slot == NULL)
                return -ENOMEM;
            if (*slot != 0) {
                inv->stats.ip_conflicts++;
                continue;
            }
            refs[*used].svc = svc;
            refs[*used].port = p;
            *slot = (uintptr_t)&refs[(*used)++];
        }
    }
    return 0;
}

static int index_services(struct fv_k8s_inventory *inv)
{
    const struct fv_k8s_service *svcs = inv->objs[FV_K8S_SERVICE].v;
    size_t n = inv->objs[FV_K8S_SERVICE].n, total = 0, used = 0;
    struct fv_k8s_svc_ref *refs;

    for (size_t i = 0; i < n; i++)
        total += (size_t)svcs[i].n_ips * svcs[i].n_ports;
    if (total == 0)
        return 0;
    refs = fv_k8s_pool_array(&inv->pool, total, sizeof(*refs));
    if (refs == NULL || fv_k8s_table_reserve(&inv->svc_by_addr, total) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = index_service(inv, &svcs[i], refs, &used);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int index_nodes(struct fv_k8s_inventory *inv)
{
    const struct fv_k8s_node *nodes = inv->objs[FV_K8S_NODE].v;
    size_t n = inv->objs[FV_K8S_NODE].n;
    bool seen[2][129] = {{false}};
    uint8_t key[FV_K8S_CIDR_KEY_LEN];

    for (size_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < nodes[i].n_pod_cidrs; j++) {
            const struct fv_cidr *c = &nodes[i].pod_cidrs[j];
            uintptr_t *slot;
            fv_k8s_cidr_key(&c->net, c->len, key);
            slot = fv_k8s_table_slot(&inv->node_by_cidr, key);
            if (slot == NULL)
                return -ENOMEM;
            if (*slot != 0)
                inv->stats.ip_conflicts++;
            else
                *slot = (uintptr_t)&nodes[i];
            seen[c->net.family == AF_INET6][c->len] = true;
        }
    }
    /* Longest first, so overlapping CIDRs resolve to the most specific. */
    for (int f = 0; f < 2; f++)
        for (int len = 128; len >= 0; len--)
            if (seen[f][len])
                inv->cidr_lens[f][inv->n_cidr_lens[f]++] = (uint8_t)len;
    return 0;
}

int fv_k8s_index_build(struct fv_k8s_inventory *inv)
{
    int rc;

    sort_objects(inv);
    rc = index_pods(inv);
    if (rc == 0)
        rc = index_services(inv);
    if (rc == 0)
        rc = index_nodes(inv);
    return rc;
}
