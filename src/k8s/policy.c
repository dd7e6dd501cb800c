/*
 * policy.c - NetworkPolicies compiled when an inventory is finished, and
 * evaluated against flows; the semantics are in policy.h.
 *
 * Compiling reads each policy's JSON once and builds, in the inventory's
 * pool, the structs below: selectors as lists of terms whose keys and
 * values are interned (the inventory interns every label too, so a label
 * matches a term when the pointers are equal), peers, port ranges, CIDRs.
 * Indexes are added to the inventory: interned namespace name -> its
 * policies and its Namespace object; Node InternalIP -> Node; and, per Pod
 * (the inventory is immutable and holds them all), its namespace and the
 * policies that may select it, so that evaluating a flow matches no
 * podSelector: its hash probes are the two Pod lookups, and for an end that
 * is not a Pod one in the Node addresses and one per Pod CIDR length.
 *
 * Evaluation is three-valued (enum tri): every part answers no, maybe or
 * yes, "and" is the minimum and "or" the maximum, and only a yes admits.
 * Malformed parts compile to terms that always answer maybe (bad_req,
 * bad_peer, bad_port), so the evaluator needs no error paths.
 */
#include "k8s/policy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/internal.h"

/* Ordered so that "and" is min and "or" is max. */
enum tri { NO = 0, MAYBE = 1, YES = 2 };

enum dir { DIR_INGRESS = 0, DIR_EGRESS = 1 };

enum req_op { OP_IN, OP_NOT_IN, OP_EXISTS, OP_DOES_NOT_EXIST, OP_BAD };

/* One term of a label selector; a matchLabels entry is "key In (value)". */
struct req {
    const char *key;           /* interned; NULL for OP_BAD */
    const char *const *values; /* interned, n_values of them (In, NotIn) */
    uint32_t n_values;         /* entries in values */
    uint8_t op;                /* enum req_op */
};

/* A label selector: every term must match; no terms match every set. */
struct selector {
    const struct req *reqs; /* n_reqs terms */
    uint32_t n_reqs;        /* 0: matches everything */
};

enum peer_kind { PEER_SELECT, PEER_IPBLOCK, PEER_BAD };

/* One entry of a rule's from/to. */
struct peer {
    uint8_t kind;                 /* enum peer_kind; PEER_BAD matches maybe */
    bool own_ns;                  /* PEER_SELECT without namespaceSelector: the policy's ns */
    bool bad_except;              /* an except entry did not parse: maybe inside cidr */
    uint32_t n_except;            /* entries in except */
    struct selector pods;         /* PEER_SELECT: podSelector (none: every Pod) */
    struct selector namespaces;   /* PEER_SELECT without own_ns: namespaceSelector */
    struct fv_cidr cidr;          /* PEER_IPBLOCK: ipBlock.cidr */
    const struct fv_cidr *except; /* PEER_IPBLOCK: ipBlock.except that parsed */
};

/* One entry of a rule's ports. */
struct port {
    const char *name; /* a named port (interned), or NULL for a numeric range */
    uint16_t first;   /* the range first..last; 0..65535 when only a protocol */
    uint16_t last;    /* ... */
    uint8_t proto;    /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
    bool bad;         /* malformed: matches maybe */
};

/* One entry of spec.ingress or spec.egress. */
struct rule {
    const char *name;         /* "ingress-<i>" / "egress-<i>", interned */
    const struct peer *peers; /* n_peers entries of from/to */
    const struct port *ports; /* n_ports entries of ports */
    uint32_t n_peers;         /* 0: every peer */
    uint32_t n_ports;         /* 0: every port */
};

struct fv_k8s_np {
    const struct fv_k8s_network_policy *obj; /* the policy: namespace, name, JSON */
    struct selector pod_selector;            /* spec.podSelector */
    uint8_t isolates[2];                     /* enum tri per enum dir, from policyTypes */
    uint32_t n_rules[2];                     /* entries of spec.ingress, spec.egress */
    const struct rule *rules[2];             /* the rules per enum dir */
};

struct fv_k8s_np_ns {
    const char *name;                   /* interned namespace name */
    const struct fv_k8s_namespace *obj; /* its Namespace object; NULL: labels unknown */
    const struct fv_k8s_np *nps;        /* its policies in name order, n_nps of them */
    uint32_t n_nps;                     /* ... */
};

/* A policy that may select a Pod. */
struct np_ref {
    uint32_t np;    /* index in inv->nps */
    uint8_t sel[2]; /* enum tri per enum dir: selects the Pod and isolates that direction */
};

/* A Pod's side of the policies, computed once: which may select it. */
struct fv_k8s_np_pod {
    const struct fv_k8s_np_ns *ns; /* the Pod's namespace */
    const struct np_ref *refs;     /* the policies of ns that may select it, in order */
    uint32_t n_refs;               /* ... */
};

/* What malformed parts compile to. */
static const struct req bad_req = {.op = OP_BAD};
static const struct peer bad_peer = {.kind = PEER_BAD};
static const struct port bad_port = {.bad = true};

static const char *const dir_field[2] = {"ingress", "egress"};
static const char *const dir_peers[2] = {"from", "to"};

/* ---- Matching labels (compiling and evaluating) ---- */

static enum tri tri_and(enum tri a, enum tri b)
{
    return a < b ? a : b;
}

static enum tri tri_or(enum tri a, enum tri b)
{
    return a > b ? a : b;
}

static enum tri tri_of(bool b)
{
    return b ? YES : NO;
}

/* Keys and values are interned: equal strings are equal pointers.  Label
 * sets are small, so a scan beats a binary search with strcmp. */
static const char *label_value(const struct fv_k8s_labels *labels, const char *key)
{
    for (uint32_t i = 0; i < labels->n; i++)
        if (labels->v[i].key == key)
            return labels->v[i].value;
    return NULL;
}

static bool in_values(const struct req *r, const char *value)
{
    for (uint32_t i = 0; i < r->n_values; i++)
        if (r->values[i] == value)
            return true;
    return false;
}

/*
 * labels NULL: the set is unknown (a namespace without its Namespace
 * object), except for auto_key, whose value is auto_value (the automatic
 * kubernetes.io/metadata.name of a namespace; NULL for Pods).
 */
static enum tri req_match(const struct req *r, const struct fv_k8s_labels *labels,
                          const char *auto_key, const char *auto_value)
{
    const char *v;

    if (r->op == OP_BAD)
        return MAYBE;
    if (auto_key != NULL && r->key == auto_key)
        v = auto_value;
    else if (labels == NULL)
        return MAYBE;
    else
        v = label_value(labels, r->key);
    switch (r->op) {
    case OP_IN:
        return tri_of(v != NULL && in_values(r, v));
    case OP_NOT_IN:
        return tri_of(v == NULL || !in_values(r, v));
    case OP_EXISTS:
        return tri_of(v != NULL);
    default:
        return tri_of(v == NULL);
    }
}

static enum tri selector_match(const struct selector *s, const struct fv_k8s_labels *labels,
                               const char *auto_key, const char *auto_value)
{
    enum tri t = YES;

    for (uint32_t i = 0; i < s->n_reqs && t != NO; i++)
        t = tri_and(t, req_match(&s->reqs[i], labels, auto_key, auto_value));
    return t;
}

/* ---- Compiling ---- */

/* The policy being compiled. */
struct cc {
    struct fv_k8s_builder *b;
    const struct fv_k8s_network_policy *np;
    size_t bytes; /* pool bytes given to compiled policies */
};

static void bad(struct cc *c, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad(struct cc *c, const char *where, const char *fmt, ...)
{
    char what[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    fv_k8s_builder_note(c->b, &c->b->inv->stats.bad_values, "NetworkPolicy %s/%s: %s %s", c->np->ns,
                        c->np->name, where, what);
}

/* n zeroed elements from the pool; NULL on failure (n > 0). */
static void *alloc(struct cc *c, size_t n, size_t elem)
{
    void *p = fv_k8s_pool_array(&c->b->inv->pool, n, elem);

    if (p != NULL)
        c->bytes += n * elem;
    return p;
}

static const char *intern(struct cc *c, const char *s)
{
    return fv_k8s_strtab_intern(&c->b->strs, s, strlen(s));
}

/* JSON null reads as absent, as Go's decoder reads it into a pointer. */
static const json_t *get(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* The entries a member contributes: its size when it has the expected
 * type, 1 (a bad entry) when it has another, 0 when absent. */
static size_t entries(const json_t *v, bool object)
{
    if (v == NULL)
        return 0;
    if (object)
        return json_is_object(v) ? json_object_size(v) : 1;
    return json_is_array(v) ? json_array_size(v) : 1;
}

/* where, then fmt: the path of a part of the policy, for notes. */
static void fmt_where(char *buf, size_t len, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fmt_where(char *buf, size_t len, const char *where, const char *fmt, ...)
{
    size_t n = strlen(where) < len ? strlen(where) : len - 1;
    va_list ap;

    memcpy(buf, where, n);
    buf[n] = '\0';
    va_start(ap, fmt);
    vsnprintf(buf + n, len - n, fmt, ap);
    va_end(ap);
}

static int compile_match_labels(struct cc *c, const json_t *ml, const char *where, struct req *reqs,
                                uint32_t *n, const char **vals, size_t *used)
{
    if (!json_is_object(ml)) {
        bad(c, where, "matchLabels is not an object");
        reqs[(*n)++] = bad_req;
        return 0;
    }
    for (void *it = json_object_iter((json_t *)ml); it != NULL;
         it = json_object_iter_next((json_t *)ml, it)) {
        const char *key = json_object_iter_key(it);
        const char *value = json_string_value(json_object_iter_value(it));
        struct req *r = &reqs[(*n)++];
        if (value == NULL) {
            bad(c, where, "matchLabels[\"%s\"] is not a string", key);
            *r = bad_req;
            continue;
        }
        r->op = OP_IN;
        r->key = intern(c, key);
        vals[*used] = intern(c, value);
        if (r->key == NULL || vals[*used] == NULL)
            return -ENOMEM;
        r->values = &vals[(*used)++];
        r->n_values = 1;
    }
    return 0;
}

static enum req_op parse_op(const char *s)
{
    static const char *const names[] = {"In", "NotIn", "Exists", "DoesNotExist"};

    for (size_t i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return (enum req_op)i;
    return OP_BAD;
}

/* One matchExpressions entry; a malformed one becomes bad_req. */
static int compile_expr(struct cc *c, const json_t *e, const char *where, struct req *r,
                        const char **vals, size_t *used)
{
    const char *key = json_string_value(get(e, "key"));
    const char *op_name = json_string_value(get(e, "operator"));
    const json_t *values = get(e, "values");
    enum req_op op = parse_op(op_name);
    bool with_values = op == OP_IN || op == OP_NOT_IN;

    *r = bad_req;
    if (!json_is_object(e)) {
        bad(c, where, "is not an object");
        return 0;
    }
    if (key == NULL || *key == '\0') {
        bad(c, where, "has no key");
        return 0;
    }
    if (op == OP_BAD) {
        bad(c, where, "has an unknown operator \"%s\"", op_name ? op_name : "(none)");
        return 0;
    }
    if (with_values ? json_array_size(values) == 0 : entries(values, false) != 0) {
        bad(c, where, with_values ? "needs values" : "must not have values");
        return 0;
    }
    for (size_t i = 0; i < json_array_size(values); i++) {
        if (!json_is_string(json_array_get(values, i))) {
            bad(c, where, "has a value that is not a string");
            return 0;
        }
    }
    r->key = intern(c, key);
    r->values = &vals[*used];
    r->n_values = (uint32_t)json_array_size(values);
    for (size_t i = 0; i < r->n_values; i++) {
        vals[*used] = intern(c, json_string_value(json_array_get(values, i)));
        if (vals[(*used)++] == NULL)
            return -ENOMEM;
    }
    r->op = (uint8_t)op;
    return r->key == NULL ? -ENOMEM : 0;
}

/* The number of values a selector's terms hold, for one allocation. */
static size_t selector_values(const json_t *ml, const json_t *me)
{
    size_t n = json_is_object(ml) ? json_object_size(ml) : 0;

    for (size_t i = 0; i < json_array_size(me); i++)
        n += json_array_size(get(json_array_get(me, i), "values"));
    return n;
}

/* A LabelSelector; absent (sel NULL) matches everything. */
static int compile_selector(struct cc *c, const json_t *sel, const char *where,
                            struct selector *out)
{
    const json_t *ml = get(sel, "matchLabels");
    const json_t *me = get(sel, "matchExpressions");
    size_t n = entries(ml, true) + entries(me, false), n_vals = selector_values(ml, me), used = 0;
    char at[160];
    struct req *reqs;
    const char **vals = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (sel != NULL && !json_is_object(sel)) {
        bad(c, where, "is not an object");
        out->reqs = &bad_req;
        out->n_reqs = 1;
        return 0;
    }
    if (n == 0)
        return 0;
    reqs = alloc(c, n, sizeof(*reqs));
    if (n_vals > 0)
        vals = alloc(c, n_vals, sizeof(*vals));
    if (reqs == NULL || (n_vals > 0 && vals == NULL))
        return -ENOMEM;
    out->reqs = reqs;
    if (ml != NULL)
        rc = compile_match_labels(c, ml, where, reqs, &out->n_reqs, vals, &used);
    if (rc == 0 && me != NULL && !json_is_array(me)) {
        bad(c, where, "matchExpressions is not an array");
        reqs[out->n_reqs++] = bad_req;
    }
    for (size_t i = 0; rc == 0 && i < json_array_size(me); i++) {
        fmt_where(at, sizeof(at), where, ".matchExpressions[%zu]", i);
        rc = compile_expr(c, json_array_get(me, i), at, &reqs[out->n_reqs++], vals, &used);
    }
    return rc;
}

static bool is_port(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 65535;
}

/* One entry of a rule's ports; a malformed one becomes bad_port. */
static int compile_port(struct cc *c, const json_t *p, const char *where, struct port *out)
{
    const json_t *port = get(p, "port");
    const json_t *end = get(p, "endPort");

    *out = bad_port;
    if (!json_is_object(p)) {
        bad(c, where, "is not an object");
        return 0;
    }
    if (fv_k8s_parse_proto(get(p, "protocol"), &out->proto) < 0) {
        bad(c, where, "has an unknown protocol");
        return 0;
    }
    if (port == NULL && end == NULL) {
        out->first = 0;
        out->last = 65535;
    } else if (is_port(port) && (end == NULL || (is_port(end) && json_integer_value(end) >=
                                                                     json_integer_value(port)))) {
        out->first = (uint16_t)json_integer_value(port);
        out->last = (uint16_t)json_integer_value(end ? end : port);
    } else if (json_is_string(port) && *json_string_value(port) != '\0' && end == NULL) {
        out->name = intern(c, json_string_value(port));
        if (out->name == NULL)
            return -ENOMEM;
    } else {
        bad(c, where, "has a bad port or endPort");
        return 0;
    }
    out->bad = false;
    return 0;
}

static int compile_ports(struct cc *c, const json_t *arr, const char *where, struct rule *out)
{
    char at[128];
    struct port *v;

    if (arr == NULL || (json_is_array(arr) && json_array_size(arr) == 0))
        return 0;
    if (!json_is_array(arr)) {
        bad(c, where, "is not an array");
        out->ports = &bad_port;
        out->n_ports = 1;
        return 0;
    }
    v = alloc(c, json_array_size(arr), sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    out->ports = v;
    out->n_ports = (uint32_t)json_array_size(arr);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        int rc;
        fmt_where(at, sizeof(at), where, "[%zu]", i);
        rc = compile_port(c, json_array_get(arr, i), at, &v[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int compile_ip_block(struct cc *c, const json_t *ib, const char *where, struct peer *out)
{
    const char *cidr = json_string_value(get(ib, "cidr"));
    const json_t *except = get(ib, "except");
    struct fv_cidr *v;

    if (cidr == NULL || fv_cidr_parse(cidr, &out->cidr) < 0) {
        bad(c, where, "ipBlock.cidr \"%s\" is not a CIDR", cidr ? cidr : "(none)");
        *out = bad_peer;
        return 0;
    }
    out->kind = PEER_IPBLOCK;
    if (except != NULL && !json_is_array(except)) {
        bad(c, where, "ipBlock.except is not an array");
        out->bad_except = true;
    }
    if (json_array_size(except) == 0)
        return 0;
    v = alloc(c, json_array_size(except), sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    out->except = v;
    for (size_t i = 0; i < json_array_size(except); i++) {
        const char *s = json_string_value(json_array_get(except, i));
        if (s == NULL || fv_cidr_parse(s, &v[out->n_except]) < 0) {
            bad(c, where, "ipBlock.except \"%s\" is not a CIDR", s ? s : "(not a string)");
            out->bad_except = true;
        } else {
            out->n_except++;
        }
    }
    return 0;
}

/* One entry of from/to; a malformed one becomes bad_peer. */
static int compile_peer(struct cc *c, const json_t *p, const char *where, struct peer *out)
{
    const json_t *pods = get(p, "podSelector");
    const json_t *nss = get(p, "namespaceSelector");
    const json_t *ib = get(p, "ipBlock");
    char at[160];
    int rc;

    *out = bad_peer;
    if (!json_is_object(p) || (ib == NULL && pods == NULL && nss == NULL)) {
        bad(c, where, "names no peer");
        return 0;
    }
    if (ib != NULL) {
        if (pods != NULL || nss != NULL) {
            bad(c, where, "has both ipBlock and a selector");
            return 0;
        }
        return compile_ip_block(c, ib, where, out);
    }
    out->kind = PEER_SELECT;
    out->own_ns = nss == NULL;
    fmt_where(at, sizeof(at), where, ".podSelector");
    rc = compile_selector(c, pods, at, &out->pods);
    fmt_where(at, sizeof(at), where, ".namespaceSelector");
    if (rc == 0)
        rc = compile_selector(c, nss, at, &out->namespaces);
    return rc;
}

static int compile_peers(struct cc *c, const json_t *arr, const char *where, struct rule *out)
{
    char at[128];
    struct peer *v;

    if (arr == NULL || (json_is_array(arr) && json_array_size(arr) == 0))
        return 0;
    if (!json_is_array(arr)) {
        bad(c, where, "is not an array");
        out->peers = &bad_peer;
        out->n_peers = 1;
        return 0;
    }
    v = alloc(c, json_array_size(arr), sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    out->peers = v;
    out->n_peers = (uint32_t)json_array_size(arr);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        int rc;
        fmt_where(at, sizeof(at), where, "[%zu]", i);
        rc = compile_peer(c, json_array_get(arr, i), at, &v[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int compile_rule(struct cc *c, const json_t *r, enum dir d, size_t i, struct rule *out)
{
    char where[64], at[96], name[32];
    int rc;

    snprintf(where, sizeof(where), "spec.%s[%zu]", dir_field[d], i);
    snprintf(name, sizeof(name), "%s-%zu", dir_field[d], i);
    out->name = intern(c, name);
    if (out->name == NULL)
        return -ENOMEM;
    if (!json_is_object(r)) {
        bad(c, where, "is not an object");
        out->peers = &bad_peer;
        out->n_peers = 1;
        return 0;
    }
    snprintf(at, sizeof(at), "%s.%s", where, dir_peers[d]);
    rc = compile_peers(c, get(r, dir_peers[d]), at, out);
    snprintf(at, sizeof(at), "%s.ports", where);
    if (rc == 0)
        rc = compile_ports(c, get(r, "ports"), at, out);
    return rc;
}

/* spec.ingress or spec.egress; not an array: one rule that may match. */
static int compile_rules(struct cc *c, const json_t *spec, enum dir d, struct fv_k8s_np *out)
{
    const json_t *arr = get(spec, dir_field[d]);
    size_t n = entries(arr, false);
    struct rule *v;

    if (n == 0)
        return 0;
    v = alloc(c, n, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    out->rules[d] = v;
    out->n_rules[d] = (uint32_t)n;
    if (!json_is_array(arr)) {
        char where[32];
        snprintf(where, sizeof(where), "spec.%s", dir_field[d]);
        bad(c, where, "is not an array");
        v[0].name = intern(c, DIR_INGRESS == d ? "ingress-0" : "egress-0");
        v[0].peers = &bad_peer;
        v[0].n_peers = 1;
        return v[0].name == NULL ? -ENOMEM : 0;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = compile_rule(c, json_array_get(arr, i), d, i, &v[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* spec.policyTypes, defaulted as the API server does when absent or empty.
 * A bad entry leaves the directions not validly listed as maybe. */
static void compile_types(struct cc *c, const json_t *spec, struct fv_k8s_np *out)
{
    const json_t *types = get(spec, "policyTypes");
    bool bad_entry = false;

    if (entries(types, false) == 0) {
        out->isolates[DIR_INGRESS] = YES;
        out->isolates[DIR_EGRESS] = entries(get(spec, "egress"), false) > 0 ? YES : NO;
        return;
    }
    if (!json_is_array(types)) {
        bad(c, "spec.policyTypes", "is not an array");
        bad_entry = true;
    }
    for (size_t i = 0; i < json_array_size(types); i++) {
        const char *s = json_string_value(json_array_get(types, i));
        char where[48];
        if (s != NULL && strcmp(s, "Ingress") == 0) {
            out->isolates[DIR_INGRESS] = YES;
        } else if (s != NULL && strcmp(s, "Egress") == 0) {
            out->isolates[DIR_EGRESS] = YES;
        } else {
            snprintf(where, sizeof(where), "spec.policyTypes[%zu]", i);
            bad(c, where, "\"%s\" is not Ingress or Egress", s ? s : "(not a string)");
            bad_entry = true;
        }
    }
    for (int d = 0; d < 2 && bad_entry; d++)
        if (out->isolates[d] == NO)
            out->isolates[d] = MAYBE;
}

static int compile_policy(struct cc *c, struct fv_k8s_np *out)
{
    const json_t *spec = get(c->np->obj, "spec");
    int rc;

    out->obj = c->np;
    /* No spec: the defaults, every Pod of the namespace, Ingress only. */
    if (spec == NULL) {
        out->isolates[DIR_INGRESS] = YES;
        return 0;
    }
    if (!json_is_object(spec)) {
        bad(c, "spec", "is not an object");
        out->pod_selector.reqs = &bad_req;
        out->pod_selector.n_reqs = 1;
        out->isolates[DIR_INGRESS] = out->isolates[DIR_EGRESS] = MAYBE;
        return 0;
    }
    rc = compile_selector(c, get(spec, "podSelector"), "spec.podSelector", &out->pod_selector);
    compile_types(c, spec, out);
    if (rc == 0)
        rc = compile_rules(c, spec, DIR_INGRESS, out);
    if (rc == 0)
        rc = compile_rules(c, spec, DIR_EGRESS, out);
    return rc;
}

/* The index entry of namespace name, created when absent; NULL on -ENOMEM. */
static struct fv_k8s_np_ns *ns_entry(struct cc *c, const char *name)
{
    uintptr_t *slot = fv_k8s_table_slot(&c->b->inv->np_ns, &name);
    struct fv_k8s_np_ns *e;

    if (slot == NULL)
        return NULL;
    if (*slot != 0)
        return (struct fv_k8s_np_ns *)*slot;
    e = alloc(c, 1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->name = name;
    *slot = (uintptr_t)e;
    return e;
}

/* Every namespace that has a Namespace object, a Pod or a policy. */
static int index_namespaces(struct cc *c)
{
    struct fv_k8s_inventory *inv = c->b->inv;
    const struct fv_k8s_namespace *nss = inv->objs[FV_K8S_NAMESPACE].v;
    const struct fv_k8s_pod *pods = inv->objs[FV_K8S_POD].v;
    const struct fv_k8s_network_policy *nps = inv->objs[FV_K8S_NETWORK_POLICY].v;
    struct fv_k8s_np_ns *e;

    for (size_t i = 0; i < inv->objs[FV_K8S_NAMESPACE].n; i++) {
        e = ns_entry(c, nss[i].name);
        if (e == NULL)
            return -ENOMEM;
        e->obj = &nss[i];
    }
    for (size_t i = 0; i < inv->objs[FV_K8S_POD].n; i++)
        if (ns_entry(c, pods[i].ns) == NULL)
            return -ENOMEM;
    /* Sorted by (namespace, name): each namespace's policies are a run. */
    for (size_t i = 0; i < inv->objs[FV_K8S_NETWORK_POLICY].n; i++) {
        e = ns_entry(c, nps[i].ns);
        if (e == NULL)
            return -ENOMEM;
        if (e->n_nps++ == 0)
            e->nps = &inv->nps[i];
    }
    return 0;
}

/* A growing scratch array of refs, copied into the pool when complete. */
struct ref_vec {
    struct np_ref *v; /* malloc'd */
    size_t n;         /* refs in use */
    size_t cap;       /* refs allocated */
};

static int ref_push(struct ref_vec *rv, uint32_t np, enum tri in, enum tri eg)
{
    if (rv->n == rv->cap) {
        size_t cap = rv->cap ? rv->cap * 2 : 1024;
        struct np_ref *v = realloc(rv->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        rv->v = v;
        rv->cap = cap;
    }
    rv->v[rv->n].np = np;
    rv->v[rv->n].sel[DIR_INGRESS] = (uint8_t)in;
    rv->v[rv->n].sel[DIR_EGRESS] = (uint8_t)eg;
    rv->n++;
    return 0;
}

/* The policies of the Pod's namespace that may select it. */
static int select_pod(const struct fv_k8s_inventory *inv, const struct fv_k8s_pod *pod,
                      struct fv_k8s_np_pod *view, struct ref_vec *rv)
{
    const struct fv_k8s_np_ns *ns = view->ns;

    for (uint32_t i = 0; ns != NULL && i < ns->n_nps; i++) {
        const struct fv_k8s_np *np = &ns->nps[i];
        enum tri s = selector_match(&np->pod_selector, &pod->labels, NULL, NULL);
        enum tri in = tri_and(s, (enum tri)np->isolates[DIR_INGRESS]);
        enum tri eg = tri_and(s, (enum tri)np->isolates[DIR_EGRESS]);
        if ((in != NO || eg != NO) && ref_push(rv, (uint32_t)(np - inv->nps), in, eg) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int index_pods(struct cc *c)
{
    struct fv_k8s_inventory *inv = c->b->inv;
    const struct fv_k8s_pod *pods = inv->objs[FV_K8S_POD].v;
    size_t n = inv->objs[FV_K8S_POD].n;
    struct fv_k8s_np_pod *views;
    struct np_ref *refs = NULL;
    struct ref_vec rv = {NULL, 0, 0};
    int rc = 0;

    if (n == 0)
        return 0;
    views = alloc(c, n, sizeof(*views));
    if (views == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        views[i].ns = (const struct fv_k8s_np_ns *)fv_k8s_table_get(&inv->np_ns, &pods[i].ns);
        views[i].n_refs = (uint32_t)rv.n; /* where its refs start, for now */
        rc = select_pod(inv, &pods[i], &views[i], &rv);
    }
    if (rc == 0 && rv.n > 0) {
        refs = alloc(c, rv.n, sizeof(*refs));
        if (refs == NULL)
            rc = -ENOMEM;
        else
            memcpy(refs, rv.v, rv.n * sizeof(*refs));
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t start = views[i].n_refs, end = i + 1 < n ? views[i + 1].n_refs : rv.n;
        views[i].refs = end > start ? &refs[start] : NULL;
        views[i].n_refs = (uint32_t)(end - start);
    }
    free(rv.v);
    inv->np_pods = views;
    return rc;
}

static int index_node_addresses(struct fv_k8s_inventory *inv)
{
    const struct fv_k8s_node *nodes = inv->objs[FV_K8S_NODE].v;
    uint8_t key[FV_K8S_IP_KEY_LEN];

    for (size_t i = 0; i < inv->objs[FV_K8S_NODE].n; i++) {
        for (uint32_t j = 0; j < nodes[i].n_addresses; j++) {
            uintptr_t *slot;
            fv_k8s_ip_key(&nodes[i].addresses[j], key);
            slot = fv_k8s_table_slot(&inv->node_by_addr, key);
            if (slot == NULL)
                return -ENOMEM;
            if (*slot == 0)
                *slot = (uintptr_t)&nodes[i];
        }
    }
    return 0;
}

int fv_k8s_policy_compile(struct fv_k8s_builder *b)
{
    struct fv_k8s_inventory *inv = b->inv;
    const struct fv_k8s_network_policy *v = inv->objs[FV_K8S_NETWORK_POLICY].v;
    size_t n = inv->objs[FV_K8S_NETWORK_POLICY].n;
    struct cc c = {.b = b};
    struct fv_k8s_np *nps;
    int rc = 0;

    /* Without policies evaluation looks nothing up: no indexes needed. */
    if (n == 0)
        return 0;
    inv->ns_name_label = intern(&c, "kubernetes.io/metadata.name");
    nps = alloc(&c, n, sizeof(*nps));
    if (inv->ns_name_label == NULL || nps == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        c.np = &v[i];
        rc = compile_policy(&c, &nps[i]);
    }
    inv->nps = nps;
    if (rc == 0)
        rc = index_namespaces(&c);
    if (rc == 0)
        rc = index_pods(&c);
    if (rc == 0)
        rc = index_node_addresses(inv);
    inv->stats.policy_memory = c.bytes + inv->np_ns.cap * inv->np_ns.stride +
                               inv->node_by_addr.cap * inv->node_by_addr.stride;
    return rc;
}

/* ---- Evaluating ---- */

/* One end of the flow. */
struct end {
    const struct fv_ip *ip;
    const struct fv_k8s_pod *pod;     /* NULL: not a known Pod */
    const struct fv_k8s_np_pod *view; /* the Pod's policies; NULL without a Pod */
    const struct fv_k8s_np_ns *ns;    /* the Pod's namespace; NULL without a Pod */
    int8_t in_cidrs;                  /* ip is in a Pod CIDR: -1 until asked, then 0 or 1 */
};

struct eval {
    const struct fv_k8s_inventory *inv;
    const struct fv_np_flow *flow;
    struct end src;
    struct end dst;
};

static bool in_pod_cidrs(const struct eval *e, struct end *end)
{
    if (end->in_cidrs < 0)
        end->in_cidrs = fv_k8s_ip_in_pod_cidrs(e->inv, end->ip);
    return end->in_cidrs != 0;
}

static enum tri ip_block_match(const struct peer *p, const struct fv_ip *ip)
{
    if (!fv_cidr_contains(&p->cidr, ip))
        return NO;
    for (uint32_t i = 0; i < p->n_except; i++)
        if (fv_cidr_contains(&p->except[i], ip))
            return NO;
    return p->bad_except ? MAYBE : YES;
}

static enum tri peer_match(const struct eval *e, const struct fv_k8s_np *np, const struct peer *p,
                           struct end *end)
{
    const struct fv_k8s_pod *pod = end->pod;
    enum tri t;

    if (p->kind == PEER_BAD)
        return MAYBE;
    if (p->kind == PEER_IPBLOCK)
        return ip_block_match(p, end->ip);
    /* A selector matches known Pods; an unknown address in a Pod CIDR may
     * be a Pod the inventory does not hold yet. */
    if (pod == NULL)
        return in_pod_cidrs(e, end) ? MAYBE : NO;
    if (p->own_ns)
        t = tri_of(pod->ns == np->obj->ns);
    else
        t = selector_match(&p->namespaces,
                           end->ns != NULL && end->ns->obj != NULL ? &end->ns->obj->labels : NULL,
                           e->inv->ns_name_label, pod->ns);
    if (t == NO)
        return NO;
    return tri_and(t, selector_match(&p->pods, &pod->labels, NULL, NULL));
}

/* A named port is one the destination Pod declares, same name and
 * protocol, and the flow goes to its number. */
static enum tri named_port_match(const struct eval *e, struct end *dst, const struct port *p)
{
    const struct fv_k8s_pod *pod = dst->pod;

    if (pod == NULL)
        return in_pod_cidrs(e, dst) ? MAYBE : NO;
    for (uint32_t i = 0; i < pod->n_ports; i++) {
        const struct fv_k8s_container_port *cp = &pod->ports[i];
        if (cp->name == p->name && cp->proto == p->proto && cp->port == e->flow->dport)
            return YES;
    }
    return NO;
}

static enum tri ports_match(struct eval *e, const struct rule *r)
{
    enum tri best = r->n_ports == 0 ? YES : NO;

    for (uint32_t i = 0; i < r->n_ports && best != YES; i++) {
        const struct port *p = &r->ports[i];
        enum tri t;
        if (p->bad)
            t = MAYBE;
        else if (p->proto != e->flow->proto)
            t = NO;
        else if (p->name != NULL)
            t = named_port_match(e, &e->dst, p);
        else
            t = tri_of(e->flow->dport >= p->first && e->flow->dport <= p->last);
        best = tri_or(best, t);
    }
    return best;
}

static enum tri rule_match(struct eval *e, const struct fv_k8s_np *np, const struct rule *r,
                           struct end *peer)
{
    enum tri ports = ports_match(e, r);
    enum tri peers = r->n_peers == 0 ? YES : NO;

    if (ports == NO)
        return NO;
    for (uint32_t i = 0; i < r->n_peers && peers != YES; i++)
        peers = tri_or(peers, peer_match(e, np, &r->peers[i], peer));
    return tri_and(ports, peers);
}

/* NetworkPolicy never isolates a Pod from itself or from its own Node. */
static bool exempt(const struct eval *e, const struct end *self, const struct end *peer)
{
    uint8_t key[FV_K8S_IP_KEY_LEN];
    const struct fv_k8s_node *node;

    if (peer->pod != NULL)
        return peer->pod == self->pod;
    fv_k8s_ip_key(peer->ip, key);
    node = (const struct fv_k8s_node *)fv_k8s_table_get(&e->inv->node_by_addr, key);
    return node != NULL && node->name == self->pod->node_name;
}

static void decide(struct eval *e, enum dir d, struct fv_np_result *out)
{
    struct end *self = d == DIR_INGRESS ? &e->dst : &e->src;
    struct end *peer = d == DIR_INGRESS ? &e->src : &e->dst;
    const struct fv_k8s_np *first_isolating = NULL;
    enum tri isolated = NO, admitted = NO;

    if (self->view == NULL || self->view->n_refs == 0 || exempt(e, self, peer))
        return;
    for (uint32_t i = 0; i < self->view->n_refs; i++) {
        const struct np_ref *ref = &self->view->refs[i];
        const struct fv_k8s_np *np = &e->inv->nps[ref->np];
        enum tri s = (enum tri)ref->sel[d];
        if (s == NO)
            continue;
        isolated = tri_or(isolated, s);
        if (s == YES && first_isolating == NULL)
            first_isolating = np;
        for (uint32_t r = 0; r < np->n_rules[d]; r++) {
            enum tri a = tri_and(s, rule_match(e, np, &np->rules[d][r], peer));
            if (a == YES) {
                out->verdict = FV_NP_ALLOWED;
                out->policy = np->obj;
                out->rule = (int)r;
                out->rule_name = np->rules[d][r].name;
                return;
            }
            admitted = tri_or(admitted, a);
        }
    }
    if (isolated == YES && admitted == NO) {
        out->verdict = FV_NP_DENIED;
        out->policy = first_isolating->obj;
    } else if (isolated != NO) {
        out->verdict = FV_NP_UNKNOWN;
    }
}

static void end_init(const struct fv_k8s_inventory *inv, struct end *end, const struct fv_ip *ip)
{
    const struct fv_k8s_pod *pods = inv->objs[FV_K8S_POD].v;

    end->ip = ip;
    end->pod = fv_k8s_pod_by_ip(inv, ip);
    end->view = end->pod ? &inv->np_pods[end->pod - pods] : NULL;
    end->ns = end->view ? end->view->ns : NULL;
    end->in_cidrs = -1;
}

static void result_init(struct fv_np_result *r)
{
    r->verdict = FV_NP_NOT_ISOLATED;
    r->policy = NULL;
    r->rule = -1;
    r->rule_name = "";
}

void fv_k8s_policy_evaluate(const struct fv_k8s_inventory *inv, const struct fv_np_flow *flow,
                            struct fv_np_result *ingress, struct fv_np_result *egress)
{
    struct eval e = {.inv = inv, .flow = flow};

    result_init(ingress);
    result_init(egress);
    /* Most clusters have no policies: no lookups then. */
    if (inv->objs[FV_K8S_NETWORK_POLICY].n == 0)
        return;
    end_init(inv, &e.src, &flow->src);
    end_init(inv, &e.dst, &flow->dst);
    decide(&e, DIR_INGRESS, ingress);
    decide(&e, DIR_EGRESS, egress);
}

size_t fv_k8s_policy_count(const struct fv_k8s_inventory *inv)
{
    return inv->objs[FV_K8S_NETWORK_POLICY].n;
}

const char *fv_np_verdict_name(enum fv_np_verdict v)
{
    switch (v) {
    case FV_NP_NOT_ISOLATED:
        return "not_isolated";
    case FV_NP_ALLOWED:
        return "allowed";
    case FV_NP_DENIED:
        return "denied";
    case FV_NP_UNKNOWN:
        return "unknown";
    default:
        return "?";
    }
}
