/* inventory.c - lookups over a sealed inventory; see inventory.h. */
#include "k8s/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void fv_k8s_inventory_free(struct fv_k8s_inventory *inv)
{
    const struct fv_k8s_network_policy *np;

    if (inv == NULL)
        return;
    np = inv->objs[FV_K8S_NETWORK_POLICY].v;
    for (size_t i = 0; i < inv->objs[FV_K8S_NETWORK_POLICY].n; i++)
        json_decref(np[i].obj);
    for (int k = 0; k < FV_K8S_KIND_COUNT; k++)
        free(inv->objs[k].v);
    fv_k8s_table_fini(&inv->pod_by_ip);
    fv_k8s_table_fini(&inv->svc_by_addr);
    fv_k8s_table_fini(&inv->node_by_cidr);
    fv_k8s_table_fini(&inv->np_ns);
    fv_k8s_table_fini(&inv->node_by_addr);
    fv_k8s_pool_fini(&inv->pool);
    free(inv);
}

const struct fv_k8s_inventory_stats *fv_k8s_inventory_stats(const struct fv_k8s_inventory *inv)
{
    return &inv->stats;
}

/* ---- By address ---- */

const struct fv_k8s_pod *fv_k8s_pod_by_ip(const struct fv_k8s_inventory *inv,
                                          const struct fv_ip *ip)
{
    uint8_t key[FV_K8S_IP_KEY_LEN];

    fv_k8s_ip_key(ip, key);
    return (const struct fv_k8s_pod *)fv_k8s_table_get(&inv->pod_by_ip, key);
}

int fv_k8s_service_by_cluster_ip(const struct fv_k8s_inventory *inv, const struct fv_ip *ip,
                                 uint16_t port, uint8_t proto, const struct fv_k8s_service **svc,
                                 const struct fv_k8s_service_port **svc_port)
{
    uint8_t key[FV_K8S_SVC_KEY_LEN];
    const struct fv_k8s_svc_ref *ref;

    fv_k8s_svc_key(ip, port, proto, key);
    ref = (const struct fv_k8s_svc_ref *)fv_k8s_table_get(&inv->svc_by_addr, key);
    *svc = ref ? ref->svc : NULL;
    *svc_port = ref ? ref->port : NULL;
    return ref ? 0 : -ENOENT;
}

const struct fv_k8s_node *fv_k8s_node_by_pod_cidr(const struct fv_k8s_inventory *inv,
                                                  const struct fv_ip *ip)
{
    int f = ip->family == AF_INET6;
    uint8_t key[FV_K8S_CIDR_KEY_LEN];

    if (ip->family != AF_INET && ip->family != AF_INET6)
        return NULL;
    for (int i = 0; i < inv->n_cidr_lens[f]; i++) {
        uintptr_t v;
        fv_k8s_cidr_key(ip, inv->cidr_lens[f][i], key);
        v = fv_k8s_table_get(&inv->node_by_cidr, key);
        if (v != 0)
            return (const struct fv_k8s_node *)v;
    }
    return NULL;
}

bool fv_k8s_ip_in_pod_cidrs(const struct fv_k8s_inventory *inv, const struct fv_ip *ip)
{
    return fv_k8s_node_by_pod_cidr(inv, ip) != NULL;
}

/* ---- By name: binary search over the sorted arrays ---- */

/* The first index in [0, n) whose (ns, name) is >= the key; name NULL
 * sorts before every name of ns. */
static size_t lower_bound(const struct fv_k8s_vec *vec, size_t size, size_t ns_off, size_t name_off,
                          const char *ns, const char *name)
{
    size_t lo = 0, hi = vec->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unsigned char *e = (const unsigned char *)vec->v + mid * size;
        const char *e_ns, *e_name;
        int c;
        memcpy(&e_ns, e + ns_off, sizeof(e_ns));
        memcpy(&e_name, e + name_off, sizeof(e_name));
        c = strcmp(e_ns, ns);
        if (c == 0)
            c = name == NULL ? 1 : strcmp(e_name, name);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const void *find_named(const struct fv_k8s_inventory *inv, enum fv_k8s_kind kind,
                              size_t ns_off, size_t name_off, const char *ns, const char *name)
{
    const struct fv_k8s_vec *vec = &inv->objs[kind];
    size_t size = fv_k8s_kind_size(kind);
    size_t i = lower_bound(vec, size, ns_off, name_off, ns, name);
    const unsigned char *e = (const unsigned char *)vec->v + i * size;
    const char *e_ns, *e_name;

    if (i == vec->n)
        return NULL;
    memcpy(&e_ns, e + ns_off, sizeof(e_ns));
    memcpy(&e_name, e + name_off, sizeof(e_name));
    return strcmp(e_ns, ns) == 0 && strcmp(e_name, name) == 0 ? e : NULL;
}

/* Cluster-scoped kinds have no namespace field: compare name with itself. */
#define NS_NAME(type) offsetof(type, ns), offsetof(type, name)
#define NAME_ONLY(type) offsetof(type, name), offsetof(type, name)

const struct fv_k8s_pod *fv_k8s_pod_by_name(const struct fv_k8s_inventory *inv, const char *ns,
                                            const char *name)
{
    return find_named(inv, FV_K8S_POD, NS_NAME(struct fv_k8s_pod), ns, name);
}

const struct fv_k8s_service *fv_k8s_service_by_name(const struct fv_k8s_inventory *inv,
                                                    const char *ns, const char *name)
{
    return find_named(inv, FV_K8S_SERVICE, NS_NAME(struct fv_k8s_service), ns, name);
}

const struct fv_k8s_node *fv_k8s_node_by_name(const struct fv_k8s_inventory *inv, const char *name)
{
    return find_named(inv, FV_K8S_NODE, NAME_ONLY(struct fv_k8s_node), name, name);
}

const struct fv_k8s_namespace *fv_k8s_namespace_by_name(const struct fv_k8s_inventory *inv,
                                                        const char *name)
{
    return find_named(inv, FV_K8S_NAMESPACE, NAME_ONLY(struct fv_k8s_namespace), name, name);
}

const struct fv_cidr *fv_k8s_node_pod_cidrs(const struct fv_k8s_inventory *inv,
                                            const char *node_name, size_t *n)
{
    const struct fv_k8s_node *node = fv_k8s_node_by_name(inv, node_name);

    *n = node ? node->n_pod_cidrs : 0;
    return node ? node->pod_cidrs : NULL;
}

const struct fv_k8s_network_policy *fv_k8s_network_policies(const struct fv_k8s_inventory *inv,
                                                            const char *ns, size_t *n)
{
    const struct fv_k8s_vec *vec = &inv->objs[FV_K8S_NETWORK_POLICY];
    const struct fv_k8s_network_policy *v = vec->v;
    size_t lo, hi = 0;

    if (ns == NULL) {
        *n = vec->n;
        return vec->n ? v : NULL;
    }
    lo = lower_bound(vec, sizeof(*v), NS_NAME(struct fv_k8s_network_policy), ns, NULL);
    for (hi = lo; hi < vec->n && strcmp(v[hi].ns, ns) == 0; hi++)
        ;
    *n = hi - lo;
    return hi > lo ? &v[lo] : NULL;
}

/* ---- Whole arrays ---- */

static const void *all_of(const struct fv_k8s_inventory *inv, enum fv_k8s_kind kind, size_t *n)
{
    *n = inv->objs[kind].n;
    return *n ? inv->objs[kind].v : NULL;
}

const struct fv_k8s_pod *fv_k8s_pods(const struct fv_k8s_inventory *inv, size_t *n)
{
    return all_of(inv, FV_K8S_POD, n);
}

const struct fv_k8s_service *fv_k8s_services(const struct fv_k8s_inventory *inv, size_t *n)
{
    return all_of(inv, FV_K8S_SERVICE, n);
}

const struct fv_k8s_node *fv_k8s_nodes(const struct fv_k8s_inventory *inv, size_t *n)
{
    return all_of(inv, FV_K8S_NODE, n);
}

const struct fv_k8s_namespace *fv_k8s_namespaces(const struct fv_k8s_inventory *inv, size_t *n)
{
    return all_of(inv, FV_K8S_NAMESPACE, n);
}

/* ---- Formatting ---- */

const char *fv_k8s_labels_get(const struct fv_k8s_labels *labels, const char *key)
{
    size_t lo = 0, hi = labels->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(labels->v[mid].key, key);
        if (c == 0)
            return labels->v[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Keeps the first failure of a series of appends. */
static void keep(int *rc, int r)
{
    if (*rc == 0 && r < 0)
        *rc = r;
}

/* Ends a series of appends: on failure nothing of it stays in out. */
static int finish_append(struct fv_sbuf *out, size_t start, int rc)
{
    if (rc < 0 && out->p != NULL) {
        out->len = start;
        out->p[start] = '\0';
    }
    return rc;
}

int fv_k8s_pod_labels_json(const struct fv_k8s_pod *pod, struct fv_sbuf *out)
{
    size_t start = out->len;
    int rc = fv_sbuf_putc(out, '{');

    for (uint32_t i = 0; i < pod->labels.n && rc == 0; i++) {
        const struct fv_k8s_label *l = &pod->labels.v[i];
        if (i > 0)
            keep(&rc, fv_sbuf_putc(out, ','));
        keep(&rc, fv_sbuf_put_json_str(out, l->key, strlen(l->key)));
        keep(&rc, fv_sbuf_putc(out, ':'));
        keep(&rc, fv_sbuf_put_json_str(out, l->value, strlen(l->value)));
    }
    keep(&rc, fv_sbuf_putc(out, '}'));
    return finish_append(out, start, rc);
}

int fv_k8s_service_port_name(const struct fv_k8s_service *svc,
                             const struct fv_k8s_service_port *svc_port, struct fv_sbuf *out)
{
    size_t start = out->len;
    int rc = fv_sbuf_puts(out, svc->ns);

    keep(&rc, fv_sbuf_putc(out, '/'));
    keep(&rc, fv_sbuf_puts(out, svc->name));
    if (*svc_port->name != '\0') {
        keep(&rc, fv_sbuf_putc(out, ':'));
        keep(&rc, fv_sbuf_puts(out, svc_port->name));
    }
    return finish_append(out, start, rc);
}
