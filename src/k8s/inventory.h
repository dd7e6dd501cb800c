/*
 * inventory.h - the Kubernetes inventory: Pods, Services, Nodes, Namespaces
 * and NetworkPolicies, indexed for the lookups that flow enrichment needs.
 *
 * The agent turns the addresses of a connection into Kubernetes identity
 * (SPEC §3, §6): which Pod owns an IP, which Service a ClusterIP:port is,
 * whether an address lies in a Pod CIDR and on which Node.  This module
 * holds one snapshot of the cluster and answers those questions in O(1)
 * (hash tables keyed by struct fv_ip, by (ip, port, protocol) and by CIDR)
 * or O(log n) (binary search over name-sorted arrays).
 *
 * Sources.  Every source speaks the Kubernetes JSON object format.  One
 * object is parsed by fv_k8s_builder_add(), which updates the model under
 * construction; fv_k8s_builder_add_list() feeds it the items of a List;
 * fv_k8s_builder_finish() sorts, indexes and seals it into an immutable
 * struct fv_k8s_inventory.  The file source (the output of `kubectl get
 * pods,services,nodes,namespaces,networkpolicies -A -o json`) is built on
 * that; a Kubernetes API watch source is meant to keep the current objects
 * (json_t, replaced on MODIFIED, dropped on DELETED) and, when they change,
 * build a fresh inventory from them through the same fv_k8s_builder_add().
 *
 * What is kept.  Strings are interned: one copy per distinct string, so the
 * memory is proportional to the cluster, and every string field is non-NULL
 * ("" when absent).  Labels are sorted by key.  Pods, Services and
 * NetworkPolicies are sorted by (namespace, name), Nodes and Namespaces by
 * name.  NetworkPolicies keep their parsed JSON object, and are compiled
 * for fv_k8s_policy_evaluate() when the inventory is finished (policy.h).
 * Problems inside an object (a bad IP, CIDR, port, label or policy part)
 * skip that value; an object without metadata.name is skipped; kinds other
 * than the five above are ignored; all of it is counted in
 * struct fv_k8s_inventory_stats, never fatal.
 *
 * Decisions.
 *  - fv_k8s_pod_by_ip() indexes Pods in phase Pending, Running or Unknown
 *    (and those with no phase yet).  Succeeded and Failed Pods are left out:
 *    their IPs are released and may already belong to another Pod.
 *    hostNetwork Pods are left out: their IPs are their Node's.  When two
 *    indexed Pods claim one IP, a Running Pod wins over the others, then
 *    the first in (namespace, name) order; the clash is counted.
 *  - The service port name (IPFIX destinationServicePortName) is
 *    "namespace/name:portName", or "namespace/name" when the port has no
 *    name (Kubernetes allows that only for a Service's single port).  This
 *    is how kube-proxy and Antrea print a ServicePortName.
 *  - Headless Services (clusterIP "None") and ExternalName Services have no
 *    ClusterIPs and so never match fv_k8s_service_by_cluster_ip().
 *  - Pod and Service objects without metadata.namespace get "default", as
 *    the API server would give them.
 *  - fv_k8s_pod_labels_json() writes keys sorted, no spaces: {"app":"web"};
 *    a Pod without labels gives {}.
 *
 * Ownership and threads.  A builder belongs to one thread.  An inventory is
 * immutable once built: any number of threads may read it and everything it
 * points to (including the policies' json_t, which must not be modified)
 * without locking.  To update, build a new inventory, publish the pointer
 * (e.g. with an atomic store) and free the old one only after every reader
 * has stopped using it.  A file source belongs to the thread that polls it.
 *
 *     struct fv_k8s_file_source src;
 *     struct fv_k8s_inventory *inv = NULL, *fresh;
 *     fv_k8s_file_source_init(&src, "/etc/flowvis/inventory.json");
 *     ...every few seconds:
 *     rc = fv_k8s_file_source_poll(&src, &fresh);
 *     if (rc == 1) { swap inv and fresh; free the old one later }
 *     else if (rc < 0) FV_LOG_WARN("inventory: %s", src.err);
 *     ...on the flow path:
 *     const struct fv_k8s_pod *pod = fv_k8s_pod_by_ip(inv, &rec.src_ip);
 *     if (fv_k8s_service_by_cluster_ip(inv, &orig_dst, dport, proto, &svc, &port) == 0)
 *         use port->ref ("default/web:http"), port->port;
 *     fv_k8s_file_source_fini(&src);
 *     fv_k8s_inventory_free(inv);
 */
#ifndef FV_K8S_INVENTORY_H
#define FV_K8S_INVENTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "base/ip.h"
#include "base/sbuf.h"

/* The kinds the model holds. */
enum fv_k8s_kind {
    FV_K8S_KIND_NONE = 0, /* not modelled, or "take it from the object's kind" */
    FV_K8S_POD,
    FV_K8S_SERVICE,
    FV_K8S_NODE,
    FV_K8S_NAMESPACE,
    FV_K8S_NETWORK_POLICY, /* networking.k8s.io NetworkPolicy only */
    FV_K8S_KIND_COUNT
};

/* One label (or selector term); both strings interned. */
struct fv_k8s_label {
    const char *key;
    const char *value;
};

/* A label set, sorted by key (strcmp) with unique keys. */
struct fv_k8s_labels {
    const struct fv_k8s_label *v; /* n entries; NULL when n == 0 */
    uint32_t n;                   /* number of labels */
};

enum fv_k8s_pod_phase {
    FV_K8S_PHASE_UNKNOWN = 0, /* "Unknown", missing or unrecognised */
    FV_K8S_PHASE_PENDING,
    FV_K8S_PHASE_RUNNING,
    FV_K8S_PHASE_SUCCEEDED,
    FV_K8S_PHASE_FAILED
};

/* A declared container port, kept for NetworkPolicy named ports. */
struct fv_k8s_container_port {
    const char *name; /* ports[].name; "" when unnamed */
    uint16_t port;    /* containerPort, 1..65535 */
    uint8_t proto;    /* IPPROTO_TCP (the default), IPPROTO_UDP or IPPROTO_SCTP */
};

struct fv_k8s_pod {
    const char *ns;                            /* metadata.namespace */
    const char *name;                          /* metadata.name */
    const char *node_name;                     /* spec.nodeName; "" before scheduling */
    enum fv_k8s_pod_phase phase;               /* status.phase */
    bool host_network;                         /* spec.hostNetwork: IPs are the Node's */
    uint32_t n_ips;                            /* entries in ips */
    const struct fv_ip *ips;                   /* status.podIPs, else status.podIP; v4 and v6 */
    uint32_t n_ports;                          /* entries in ports */
    const struct fv_k8s_container_port *ports; /* spec.containers[].ports[], in order */
    struct fv_k8s_labels labels;               /* metadata.labels */
};

enum fv_k8s_service_type {
    FV_K8S_SVC_CLUSTER_IP = 0, /* also when spec.type is missing */
    FV_K8S_SVC_NODE_PORT,
    FV_K8S_SVC_LOAD_BALANCER,
    FV_K8S_SVC_EXTERNAL_NAME
};

struct fv_k8s_service_port {
    const char *name;             /* ports[].name; "" when unnamed */
    const char *ref;              /* "namespace/name:portName" or "namespace/name" */
    uint16_t port;                /* the Service port, 1..65535 */
    uint8_t proto;                /* IPPROTO_TCP (the default), IPPROTO_UDP or IPPROTO_SCTP */
    uint16_t target_port;         /* numeric targetPort (defaults to port); 0 when named */
    const char *target_port_name; /* named targetPort (a container port name); "" if numeric */
    uint16_t node_port;           /* nodePort; 0 when none */
};

struct fv_k8s_service {
    const char *ns;                          /* metadata.namespace */
    const char *name;                        /* metadata.name */
    enum fv_k8s_service_type type;           /* spec.type */
    bool headless;                           /* spec.clusterIP is "None" */
    uint32_t n_ips;                          /* entries in ips; 0 when headless */
    const struct fv_ip *ips;                 /* spec.clusterIPs, else spec.clusterIP */
    uint32_t n_ports;                        /* entries in ports */
    const struct fv_k8s_service_port *ports; /* spec.ports, in order */
    struct fv_k8s_labels selector;           /* spec.selector; empty when none */
};

struct fv_k8s_node {
    const char *name;                /* metadata.name */
    uint32_t n_pod_cidrs;            /* entries in pod_cidrs */
    const struct fv_cidr *pod_cidrs; /* spec.podCIDRs, else spec.podCIDR */
    uint32_t n_addresses;            /* entries in addresses */
    const struct fv_ip *addresses;   /* status.addresses of type InternalIP */
};

struct fv_k8s_namespace {
    const char *name;            /* metadata.name */
    struct fv_k8s_labels labels; /* metadata.labels */
};

struct fv_k8s_network_policy {
    const char *ns;   /* metadata.namespace */
    const char *name; /* metadata.name */
    json_t *obj;      /* the whole object; the inventory holds a reference; read-only */
};

/* What a build saw.  Counts of objects are after duplicates were merged. */
struct fv_k8s_inventory_stats {
    size_t items;          /* objects offered to the builder */
    size_t pods;           /* objects in the model, per kind */
    size_t services;       /* ... */
    size_t nodes;          /* ... */
    size_t namespaces;     /* ... */
    size_t policies;       /* ... */
    size_t ignored_kinds;  /* objects of kinds the model does not hold */
    size_t skipped;        /* malformed objects (not an object, no metadata.name) */
    size_t bad_values;     /* bad IPs, CIDRs, ports, labels... skipped inside kept objects */
    size_t duplicates;     /* objects that replaced an earlier one of the same kind/ns/name */
    size_t ip_conflicts;   /* a Pod IP or ClusterIP:port/proto claimed twice */
    size_t strings;        /* distinct strings interned */
    size_t string_bytes;   /* their bytes, NULs included */
    size_t memory;         /* bytes the inventory holds, the policies' JSON aside */
    size_t policy_memory;  /* of memory: the compiled NetworkPolicies and their indexes */
    char first_issue[200]; /* the first skipped object or bad value, for a log line; "" */
};

struct fv_k8s_inventory;
struct fv_k8s_builder;

/* ---- Building (one thread) ---- */

/* The kind an object's "kind" and "apiVersion" name; FV_K8S_KIND_NONE when
 * not modelled.  api_version may be NULL (items of a typed List lack it). */
enum fv_k8s_kind fv_k8s_kind_parse(const char *kind, const char *api_version);

/* 0 or -ENOMEM. */
int fv_k8s_builder_new(struct fv_k8s_builder **out);
/* Frees an unfinished builder; NULL is a no-op. */
void fv_k8s_builder_free(struct fv_k8s_builder *b);
/*
 * Parses one object and adds it to the model, replacing an earlier object of
 * the same kind, namespace and name.  kind FV_K8S_KIND_NONE means: read it
 * from the object's "kind".  obj is borrowed; for a NetworkPolicy the model
 * takes its own reference, so obj must not be modified afterwards.
 * Returns 0 when added or ignored (an unmodelled kind, counted), -EINVAL
 * when the object was malformed and skipped (counted), -ENOMEM.
 */
int fv_k8s_builder_add(struct fv_k8s_builder *b, enum fv_k8s_kind kind, json_t *obj);
/*
 * Adds every item of a Kubernetes List ("kind": "List", or a typed list such
 * as "PodList", whose items carry no kind of their own).  Skipped and
 * ignored items are counted, not fatal.  -EINVAL when list is not a List
 * with an "items" array (err says why), -ENOMEM.
 */
int fv_k8s_builder_add_list(struct fv_k8s_builder *b, json_t *list, char *err, size_t errlen);
/* Sorts, indexes and seals the model.  Consumes b whatever the result.
 * 0 or -ENOMEM. */
int fv_k8s_builder_finish(struct fv_k8s_builder *b, struct fv_k8s_inventory **out);

/* ---- Loading from a file ---- */

/*
 * Reads a `kubectl get ... -o json` List from path into a new inventory.
 * On failure returns a negative code and writes into err a message that
 * names the file and the problem ("inv.json: line 3 column 7: ...",
 * "inv.json: not a Kubernetes List (kind \"Pod\")"): -errno when the file
 * cannot be read, -EINVAL when it is not JSON or not a List, -ENOMEM.
 */
int fv_k8s_inventory_load_file(const char *path, struct fv_k8s_inventory **out, char *err,
                               size_t errlen);
/* NULL is a no-op. */
void fv_k8s_inventory_free(struct fv_k8s_inventory *inv);

/* ---- Lookups (any thread, no locks) ---- */

/* The Pod that owns ip, or NULL (see "Decisions" for which Pods count). */
const struct fv_k8s_pod *fv_k8s_pod_by_ip(const struct fv_k8s_inventory *inv,
                                          const struct fv_ip *ip);
const struct fv_k8s_pod *fv_k8s_pod_by_name(const struct fv_k8s_inventory *inv, const char *ns,
                                            const char *name);
/*
 * The Service with ClusterIP ip and the port (port, proto) of it; proto is
 * an IP protocol number.  0 when found, else -ENOENT with both set to NULL.
 */
int fv_k8s_service_by_cluster_ip(const struct fv_k8s_inventory *inv, const struct fv_ip *ip,
                                 uint16_t port, uint8_t proto, const struct fv_k8s_service **svc,
                                 const struct fv_k8s_service_port **svc_port);
const struct fv_k8s_service *fv_k8s_service_by_name(const struct fv_k8s_inventory *inv,
                                                    const char *ns, const char *name);
/* Appends "namespace/name:portName" (or "namespace/name" for an unnamed
 * port) to out; the same text as svc_port->ref.  0, or the sbuf's error
 * with nothing appended. */
int fv_k8s_service_port_name(const struct fv_k8s_service *svc,
                             const struct fv_k8s_service_port *svc_port, struct fv_sbuf *out);

const struct fv_k8s_node *fv_k8s_node_by_name(const struct fv_k8s_inventory *inv, const char *name);
/* The Node whose podCIDR contains ip (the longest prefix when they
 * overlap), or NULL.  Costs one hash probe per distinct prefix length. */
const struct fv_k8s_node *fv_k8s_node_by_pod_cidr(const struct fv_k8s_inventory *inv,
                                                  const struct fv_ip *ip);
/* Whether ip lies in any Node's podCIDRs. */
bool fv_k8s_ip_in_pod_cidrs(const struct fv_k8s_inventory *inv, const struct fv_ip *ip);
/* The podCIDRs of a Node, *n of them; NULL and *n = 0 for an unknown Node. */
const struct fv_cidr *fv_k8s_node_pod_cidrs(const struct fv_k8s_inventory *inv,
                                            const char *node_name, size_t *n);

const struct fv_k8s_namespace *fv_k8s_namespace_by_name(const struct fv_k8s_inventory *inv,
                                                        const char *name);
/* The NetworkPolicies of namespace ns (all of them when ns is NULL), sorted
 * by name; *n of them. */
const struct fv_k8s_network_policy *fv_k8s_network_policies(const struct fv_k8s_inventory *inv,
                                                            const char *ns, size_t *n);

/* All objects of a kind, sorted as described above; *n of them. */
const struct fv_k8s_pod *fv_k8s_pods(const struct fv_k8s_inventory *inv, size_t *n);
const struct fv_k8s_service *fv_k8s_services(const struct fv_k8s_inventory *inv, size_t *n);
const struct fv_k8s_node *fv_k8s_nodes(const struct fv_k8s_inventory *inv, size_t *n);
const struct fv_k8s_namespace *fv_k8s_namespaces(const struct fv_k8s_inventory *inv, size_t *n);

const struct fv_k8s_inventory_stats *fv_k8s_inventory_stats(const struct fv_k8s_inventory *inv);

/* The value of label key, or NULL. */
const char *fv_k8s_labels_get(const struct fv_k8s_labels *labels, const char *key);
/* Appends the Pod's labels as a JSON object, keys sorted: {"app":"x"};
 * {} without labels.  0, or the sbuf's error with nothing appended. */
int fv_k8s_pod_labels_json(const struct fv_k8s_pod *pod, struct fv_sbuf *out);

/* ---- Re-reading a file when it changes (one thread) ---- */

struct fv_k8s_file_source {
    char *path;            /* owned copy */
    bool have_ident;       /* dev..ctime describe the file last read (or failed on) */
    bool racy;             /* it had changed just before it was read: read it again */
    bool have_hash;        /* hash is that of the content last parsed */
    dev_t dev;             /* st_dev of that file */
    ino_t ino;             /* st_ino: a new file moved into place has a new one */
    off_t size;            /* st_size */
    struct timespec mtime; /* st_mtim: a rewrite in place changes it */
    struct timespec ctime; /* st_ctim */
    uint64_t hash;         /* 64-bit FNV-1a of that content */
    int last_rc;           /* result of the last attempt: 0 or negative */
    char err[512];         /* message of the last failure; "" after a success */
};

/* 0 or -ENOMEM.  Nothing is read until the first poll. */
int fv_k8s_file_source_init(struct fv_k8s_file_source *src, const char *path);
void fv_k8s_file_source_fini(struct fv_k8s_file_source *src);
/*
 * Reads the file again when it is new or changed (device, inode, size,
 * mtime or ctime differ from the last read, or it was read within 2 s of
 * its last change), so that a file replaced by rename(2) or rewritten in
 * place is picked up; content identical to the last parsed is not parsed
 * again.  Returns 1 with a new inventory in *fresh (the caller owns it), 0
 * when nothing changed, or a negative code when the file is missing or bad:
 * *fresh is untouched, the caller keeps its old inventory and can log
 * src->err.  A failure is reported once; polling the same missing or bad
 * file again returns 0.
 */
int fv_k8s_file_source_poll(struct fv_k8s_file_source *src, struct fv_k8s_inventory **fresh);

/* Polls src and, when the file changed, replaces *inv (freeing the old
 * snapshot: for callers whose only reader is the calling thread) and logs
 * what was loaded; a failed read is logged as a warning when a previous
 * snapshot is kept.  Returns what fv_k8s_file_source_poll returned. */
int fv_k8s_file_source_update(struct fv_k8s_file_source *src, struct fv_k8s_inventory **inv);

#endif
