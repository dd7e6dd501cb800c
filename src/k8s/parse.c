/*
 * parse.c - one Kubernetes JSON object (or the items of a List) into the
 * builder.  Shared by every source; see inventory.h.
 *
 * Each kind's parser fills a struct on the stack with interned strings and
 * pool arrays, then hands it to fv_k8s_builder_store().  A bad value inside
 * an object is skipped and noted; only a missing name skips the object.
 */
#include "k8s/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The object being parsed, for notes and interning. */
struct ctx {
    struct fv_k8s_builder *b;
    const char *kind; /* "Pod", ... */
    const char *ns;   /* interned; "" for cluster-scoped kinds */
    const char *name; /* interned */
};

struct kind_row {
    const char *kind;        /* the object's "kind" */
    const char *api_version; /* its "apiVersion", or a prefix ending in '/' */
    enum fv_k8s_kind id;
    bool namespaced;
};

static const struct kind_row kinds[] = {
    {"Pod", "v1", FV_K8S_POD, true},
    {"Service", "v1", FV_K8S_SERVICE, true},
    {"Node", "v1", FV_K8S_NODE, false},
    {"Namespace", "v1", FV_K8S_NAMESPACE, false},
    {"NetworkPolicy", "networking.k8s.io/", FV_K8S_NETWORK_POLICY, true},
};

static const struct kind_row *kind_row(enum fv_k8s_kind id)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].id == id)
            return &kinds[i];
    return NULL;
}

enum fv_k8s_kind fv_k8s_kind_parse(const char *kind, const char *api_version)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const struct kind_row *r = &kinds[i];
        size_t n = strlen(r->api_version);
        if (strcmp(kind, r->kind) != 0)
            continue;
        /* Antrea's NetworkPolicy (crd.antrea.io) shares the kind name. */
        if (api_version == NULL)
            return r->id;
        if (r->api_version[n - 1] == '/' ? strncmp(api_version, r->api_version, n) == 0
                                         : strcmp(api_version, r->api_version) == 0)
            return r->id;
        return FV_K8S_KIND_NONE;
    }
    return FV_K8S_KIND_NONE;
}

static const char *get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const char *intern(struct ctx *c, const char *s)
{
    if (s == NULL)
        s = "";
    return fv_k8s_strtab_intern(&c->b->strs, s, strlen(s));
}

static void bad_value(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bad_value(struct ctx *c, const char *fmt, ...)
{
    char what[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    fv_k8s_builder_note(c->b, &c->b->inv->stats.bad_values, "%s %s%s%s: %s", c->kind, c->ns,
                        *c->ns ? "/" : "", c->name, what);
}

/* ---- Values ---- */

/* An integer 1..65535; NULL (absent) gives 0 when optional. */
static int parse_port(const json_t *v, bool optional, uint16_t *out)
{
    json_int_t n;

    *out = 0;
    if (v == NULL && optional)
        return 0;
    if (!json_is_integer(v))
        return -EINVAL;
    n = json_integer_value(v);
    if (n < 1 || n > 65535)
        return -EINVAL;
    *out = (uint16_t)n;
    return 0;
}

int fv_k8s_parse_proto(const json_t *v, uint8_t *out)
{
    const char *s = json_string_value(v);

    *out = IPPROTO_TCP;
    if (v == NULL || (s != NULL && strcmp(s, "TCP") == 0))
        return 0;
    if (s != NULL && strcmp(s, "UDP") == 0)
        *out = IPPROTO_UDP;
    else if (s != NULL && strcmp(s, "SCTP") == 0)
        *out = IPPROTO_SCTP;
    else
        return -EINVAL;
    return 0;
}

static int label_cmp(const void *x, const void *y)
{
    return strcmp(((const struct fv_k8s_label *)x)->key, ((const struct fv_k8s_label *)y)->key);
}

/* A map of string to string (labels, a selector); field names it in notes. */
static int parse_labels(struct ctx *c, const json_t *map, const char *field,
                        struct fv_k8s_labels *out)
{
    struct fv_k8s_label *v;
    uint32_t n = 0;

    memset(out, 0, sizeof(*out));
    if (map == NULL)
        return 0;
    if (!json_is_object(map) || json_object_size(map) == 0) {
        if (!json_is_object(map))
            bad_value(c, "%s is not an object", field);
        return 0;
    }
    v = fv_k8s_pool_array(&c->b->inv->pool, json_object_size(map), sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (void *it = json_object_iter((json_t *)map); it != NULL;
         it = json_object_iter_next((json_t *)map, it)) {
        const char *key = json_object_iter_key(it);
        const json_t *val = json_object_iter_value(it);
        if (!json_is_string(val)) {
            bad_value(c, "%s[\"%s\"] is not a string", field, key);
            continue;
        }
        v[n].key = intern(c, key);
        v[n].value = intern(c, json_string_value(val));
        if (v[n].key == NULL || v[n].value == NULL)
            return -ENOMEM;
        n++;
    }
    qsort(v, n, sizeof(*v), label_cmp);
    out->v = n ? v : NULL;
    out->n = n;
    return 0;
}

/*
 * Addresses from an array (of strings, or of objects whose member holds
 * the string, as in status.podIPs), else from the single string fallback.
 * Duplicates are dropped; "None" (a headless Service) and "" are skipped
 * and "None" sets *none.
 */
static int parse_ips(struct ctx *c, const json_t *arr, const char *member, const json_t *single,
                     const char *field, const struct fv_ip **ips, uint32_t *n, bool *none)
{
    size_t cap = json_array_size(arr) ? json_array_size(arr) : 1;
    struct fv_ip *v = fv_k8s_pool_array(&c->b->inv->pool, cap, sizeof(*v));
    uint32_t k = 0;

    *ips = NULL;
    *n = 0;
    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++) {
        const json_t *e = json_array_size(arr) ? json_array_get(arr, i) : single;
        const char *s =
            json_string_value(member && json_is_object(e) ? json_object_get(e, member) : e);
        struct fv_ip ip;
        bool dup = false;
        if (e == NULL || (s != NULL && *s == '\0'))
            continue;
        if (s != NULL && strcmp(s, "None") == 0) {
            *none = true;
            continue;
        }
        if (s == NULL || fv_ip_parse(s, &ip) < 0) {
            bad_value(c, "bad IP \"%s\" in %s", s ? s : "(not a string)", field);
            continue;
        }
        for (uint32_t j = 0; j < k && !dup; j++)
            dup = fv_ip_equal(&v[j], &ip);
        if (!dup)
            v[k++] = ip;
    }
    *ips = k ? v : NULL;
    *n = k;
    return 0;
}

/* ---- Metadata ---- */

static int parse_meta(struct ctx *c, const json_t *obj, const struct kind_row *row)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *name = get_str(md, "name");
    const char *ns = row->namespaced ? get_str(md, "namespace") : "";

    c->kind = row->kind;
    if (name == NULL || *name == '\0') {
        fv_k8s_builder_note(c->b, &c->b->inv->stats.skipped, "%s without metadata.name skipped",
                            row->kind);
        return -EINVAL;
    }
    /* The API server puts a namespaced object without one in "default". */
    if (row->namespaced && (ns == NULL || *ns == '\0'))
        ns = "default";
    c->ns = intern(c, ns);
    c->name = intern(c, name);
    return c->ns == NULL || c->name == NULL ? -ENOMEM : 0;
}

/* ---- Pods ---- */

static enum fv_k8s_pod_phase parse_phase(const char *s)
{
    static const char *const names[] = {"Unknown", "Pending", "Running", "Succeeded", "Failed"};

    for (size_t i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return (enum fv_k8s_pod_phase)i;
    return FV_K8S_PHASE_UNKNOWN;
}

static int parse_container_port(struct ctx *c, const json_t *p, struct fv_k8s_container_port *out)
{
    if (parse_port(json_object_get(p, "containerPort"), false, &out->port) < 0) {
        bad_value(c, "bad containerPort");
        return -EINVAL;
    }
    if (fv_k8s_parse_proto(json_object_get(p, "protocol"), &out->proto) < 0) {
        bad_value(c, "bad protocol of containerPort %u", out->port);
        return -EINVAL;
    }
    out->name = intern(c, get_str(p, "name"));
    return out->name == NULL ? -ENOMEM : 0;
}

static int parse_container_ports(struct ctx *c, const json_t *spec, struct fv_k8s_pod *pod)
{
    const json_t *containers = json_object_get(spec, "containers");
    struct fv_k8s_container_port *v;
    size_t i, j, total = 0;

    for (i = 0; i < json_array_size(containers); i++)
        total += json_array_size(json_object_get(json_array_get(containers, i), "ports"));
    if (total == 0)
        return 0;
    v = fv_k8s_pool_array(&c->b->inv->pool, total, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (i = 0; i < json_array_size(containers); i++) {
        const json_t *ports = json_object_get(json_array_get(containers, i), "ports");
        for (j = 0; j < json_array_size(ports); j++) {
            int rc = parse_container_port(c, json_array_get(ports, j), &v[pod->n_ports]);
            if (rc == -ENOMEM)
                return rc;
            if (rc == 0)
                pod->n_ports++;
        }
    }
    pod->ports = pod->n_ports ? v : NULL;
    return 0;
}

static int parse_pod(struct ctx *c, const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    const json_t *status = json_object_get(obj, "status");
    struct fv_k8s_pod pod = {.ns = c->ns, .name = c->name};
    bool none = false;
    int rc;

    pod.node_name = intern(c, get_str(spec, "nodeName"));
    if (pod.node_name == NULL)
        return -ENOMEM;
    pod.host_network = json_is_true(json_object_get(spec, "hostNetwork"));
    pod.phase = parse_phase(get_str(status, "phase"));
    rc = parse_ips(c, json_object_get(status, "podIPs"), "ip", json_object_get(status, "podIP"),
                   "status.podIPs", &pod.ips, &pod.n_ips, &none);
    if (rc == 0)
        rc = parse_container_ports(c, spec, &pod);
    if (rc == 0)
        rc = parse_labels(c, json_object_get(json_object_get(obj, "metadata"), "labels"),
                          "metadata.labels", &pod.labels);
    if (rc == 0)
        rc = fv_k8s_builder_store(c->b, FV_K8S_POD, c->ns, c->name, &pod);
    return rc;
}

/* ---- Services ---- */

static void parse_service_type(struct ctx *c, const char *s, enum fv_k8s_service_type *out)
{
    static const char *const names[] = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"};

    *out = FV_K8S_SVC_CLUSTER_IP;
    for (size_t i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum fv_k8s_service_type)i;
            return;
        }
    }
    if (s != NULL)
        bad_value(c, "unknown spec.type \"%s\"", s);
}

static int service_port_ref(struct ctx *c, struct fv_k8s_service_port *sp)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s/%s%s%s", c->ns, c->name, *sp->name ? ":" : "", sp->name);

    if (n < 0 || (size_t)n >= sizeof(buf)) {
        bad_value(c, "name too long");
        return -EINVAL;
    }
    sp->ref = fv_k8s_strtab_intern(&c->b->strs, buf, (size_t)n);
    return sp->ref == NULL ? -ENOMEM : 0;
}

static int parse_service_port(struct ctx *c, const json_t *p, struct fv_k8s_service_port *sp)
{
    const json_t *target = json_object_get(p, "targetPort");

    if (parse_port(json_object_get(p, "port"), false, &sp->port) < 0 ||
        fv_k8s_parse_proto(json_object_get(p, "protocol"), &sp->proto) < 0 ||
        parse_port(json_object_get(p, "nodePort"), true, &sp->node_port) < 0) {
        bad_value(c, "bad port, protocol or nodePort in spec.ports");
        return -EINVAL;
    }
    /* targetPort is an int-or-string: a number, or a container port name;
     * absent means the same as port. */
    sp->target_port = sp->port;
    if (json_is_string(target) && *json_string_value(target) != '\0') {
        sp->target_port = 0;
    } else if (target != NULL && parse_port(target, false, &sp->target_port) < 0) {
        bad_value(c, "bad targetPort of port %u", sp->port);
        return -EINVAL;
    }
    sp->target_port_name = intern(c, json_is_string(target) ? json_string_value(target) : "");
    sp->name = intern(c, get_str(p, "name"));
    if (sp->target_port_name == NULL || sp->name == NULL)
        return -ENOMEM;
    return service_port_ref(c, sp);
}

static int parse_service_ports(struct ctx *c, const json_t *ports, struct fv_k8s_service *svc)
{
    struct fv_k8s_service_port *v;
    size_t i;

    if (json_array_size(ports) == 0)
        return 0;
    v = fv_k8s_pool_array(&c->b->inv->pool, json_array_size(ports), sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (i = 0; i < json_array_size(ports); i++) {
        int rc = parse_service_port(c, json_array_get(ports, i), &v[svc->n_ports]);
        if (rc == -ENOMEM)
            return rc;
        if (rc == 0)
            svc->n_ports++;
    }
    svc->ports = svc->n_ports ? v : NULL;
    return 0;
}

static int parse_service(struct ctx *c, const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    struct fv_k8s_service svc = {.ns = c->ns, .name = c->name};
    int rc;

    parse_service_type(c, get_str(spec, "type"), &svc.type);
    rc = parse_ips(c, json_object_get(spec, "clusterIPs"), NULL, json_object_get(spec, "clusterIP"),
                   "spec.clusterIPs", &svc.ips, &svc.n_ips, &svc.headless);
    if (rc == 0)
        rc = parse_service_ports(c, json_object_get(spec, "ports"), &svc);
    if (rc == 0)
        rc = parse_labels(c, json_object_get(spec, "selector"), "spec.selector", &svc.selector);
    if (rc == 0)
        rc = fv_k8s_builder_store(c->b, FV_K8S_SERVICE, c->ns, c->name, &svc);
    return rc;
}

/* ---- Nodes, Namespaces, NetworkPolicies ---- */

static int parse_pod_cidrs(struct ctx *c, const json_t *spec, struct fv_k8s_node *node)
{
    const json_t *arr = json_object_get(spec, "podCIDRs");
    const json_t *single = json_object_get(spec, "podCIDR");
    size_t cap = json_array_size(arr) ? json_array_size(arr) : 1;
    struct fv_cidr *v = fv_k8s_pool_array(&c->b->inv->pool, cap, sizeof(*v));

    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++) {
        const json_t *e = json_array_size(arr) ? json_array_get(arr, i) : single;
        const char *s = json_string_value(e);
        if (e == NULL || (s != NULL && *s == '\0'))
            continue;
        if (s == NULL || fv_cidr_parse(s, &v[node->n_pod_cidrs]) < 0)
            bad_value(c, "bad CIDR \"%s\" in spec.podCIDRs", s ? s : "(not a string)");
        else
            node->n_pod_cidrs++;
    }
    node->pod_cidrs = node->n_pod_cidrs ? v : NULL;
    return 0;
}

static int parse_node_addresses(struct ctx *c, const json_t *status, struct fv_k8s_node *node)
{
    const json_t *arr = json_object_get(status, "addresses");
    struct fv_ip *v;
    size_t i;

    if (json_array_size(arr) == 0)
        return 0;
    v = fv_k8s_pool_array(&c->b->inv->pool, json_array_size(arr), sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (i = 0; i < json_array_size(arr); i++) {
        const json_t *a = json_array_get(arr, i);
        const char *type = get_str(a, "type");
        const char *s = get_str(a, "address");
        if (type == NULL || strcmp(type, "InternalIP") != 0)
            continue;
        if (s == NULL || fv_ip_parse(s, &v[node->n_addresses]) < 0)
            bad_value(c, "bad InternalIP \"%s\"", s ? s : "(not a string)");
        else
            node->n_addresses++;
    }
    node->addresses = node->n_addresses ? v : NULL;
    return 0;
}

static int parse_node(struct ctx *c, const json_t *obj)
{
    struct fv_k8s_node node = {.name = c->name};
    int rc = parse_pod_cidrs(c, json_object_get(obj, "spec"), &node);

    if (rc == 0)
        rc = parse_node_addresses(c, json_object_get(obj, "status"), &node);
    if (rc == 0)
        rc = fv_k8s_builder_store(c->b, FV_K8S_NODE, "", c->name, &node);
    return rc;
}

static int parse_namespace(struct ctx *c, const json_t *obj)
{
    struct fv_k8s_namespace ns = {.name = c->name};
    int rc = parse_labels(c, json_object_get(json_object_get(obj, "metadata"), "labels"),
                          "metadata.labels", &ns.labels);

    if (rc == 0)
        rc = fv_k8s_builder_store(c->b, FV_K8S_NAMESPACE, "", c->name, &ns);
    return rc;
}

static int parse_network_policy(struct ctx *c, json_t *obj)
{
    struct fv_k8s_network_policy np = {.ns = c->ns, .name = c->name, .obj = json_incref(obj)};
    int rc = fv_k8s_builder_store(c->b, FV_K8S_NETWORK_POLICY, c->ns, c->name, &np);

    if (rc < 0)
        json_decref(obj);
    return rc;
}

/* ---- Entry points ---- */

int fv_k8s_builder_add(struct fv_k8s_builder *b, enum fv_k8s_kind kind, json_t *obj)
{
    struct ctx c = {.b = b, .kind = "object", .ns = "", .name = ""};
    struct fv_k8s_inventory_stats *st = &b->inv->stats;
    const struct kind_row *row;
    int rc;

    st->items++;
    if (!json_is_object(obj)) {
        fv_k8s_builder_note(b, &st->skipped, "item %zu is not an object", st->items - 1);
        return -EINVAL;
    }
    if (kind == FV_K8S_KIND_NONE) {
        const char *k = get_str(obj, "kind");
        if (k == NULL) {
            fv_k8s_builder_note(b, &st->skipped, "item %zu has no kind", st->items - 1);
            return -EINVAL;
        }
        kind = fv_k8s_kind_parse(k, get_str(obj, "apiVersion"));
    }
    row = kind_row(kind);
    if (row == NULL) {
        st->ignored_kinds++;
        return 0;
    }
    rc = parse_meta(&c, obj, row);
    if (rc < 0)
        return rc;
    switch (kind) {
    case FV_K8S_POD:
        return parse_pod(&c, obj);
    case FV_K8S_SERVICE:
        return parse_service(&c, obj);
    case FV_K8S_NODE:
        return parse_node(&c, obj);
    case FV_K8S_NAMESPACE:
        return parse_namespace(&c, obj);
    default:
        return parse_network_policy(&c, obj);
    }
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* The kind of the items of list, from its kind: "List" -> take each item's
 * own; "PodList" -> Pod.  -EINVAL (with err) when list is not a List. */
static int list_item_kind(const json_t *list, enum fv_k8s_kind *item_kind, bool *unmodelled,
                          char *err, size_t errlen)
{
    const char *kind = get_str(list, "kind");
    size_t n = kind ? strlen(kind) : 0;
    char elem[128];

    *item_kind = FV_K8S_KIND_NONE;
    *unmodelled = false;
    if (!json_is_object(list)) {
        snprintf(err, errlen, "not a Kubernetes List: the top level is %s", json_type_name(list));
        return -EINVAL;
    }
    if (kind == NULL) {
        snprintf(err, errlen, "not a Kubernetes List: no \"kind\"");
        return -EINVAL;
    }
    if (n < 4 || strcmp(kind + n - 4, "List") != 0) {
        snprintf(err, errlen, "not a Kubernetes List (kind \"%s\")", kind);
        return -EINVAL;
    }
    if (n == 4 || n - 4 >= sizeof(elem))
        return 0;
    memcpy(elem, kind, n - 4);
    elem[n - 4] = '\0';
    *item_kind = fv_k8s_kind_parse(elem, NULL);
    *unmodelled = *item_kind == FV_K8S_KIND_NONE;
    return 0;
}

int fv_k8s_builder_add_list(struct fv_k8s_builder *b, json_t *list, char *err, size_t errlen)
{
    enum fv_k8s_kind item_kind;
    const json_t *items;
    bool unmodelled;
    size_t i;
    int rc = list_item_kind(list, &item_kind, &unmodelled, err, errlen);

    if (rc < 0)
        return rc;
    items = json_object_get(list, "items");
    if (!json_is_array(items)) {
        snprintf(err, errlen, "%s: \"items\" is %s, not an array", get_str(list, "kind"),
                 items ? json_type_name(items) : "missing");
        return -EINVAL;
    }
    for (i = 0; i < json_array_size(items); i++) {
        json_t *item = json_array_get(items, i);
        if (unmodelled) {
            b->inv->stats.items++;
            b->inv->stats.ignored_kinds++;
            continue;
        }
        rc = fv_k8s_builder_add(b, item_kind, item);
        if (rc == -ENOMEM) {
            snprintf(err, errlen, "out of memory at item %zu", i);
            return rc;
        }
    }
    return 0;
}
