/*
 * internal.h - what the files of src/k8s share and nobody else sees.
 *
 * Memory of an inventory comes from one pool (struct fv_k8s_pool), a bump
 * allocator freed as a whole with the inventory: the interned strings, the
 * per-object arrays (IPs, labels, ports) and the index entries.  The five
 * object arrays themselves are malloc'd vectors that grow while building.
 *
 * struct fv_k8s_table is an open-addressing hash table with fixed-size
 * byte keys (compared with memcmp) and non-zero uintptr_t values: the
 * indexes by IP, by (IP, port, protocol) and by CIDR, and the builder's
 * (namespace, name) table, whose keys are the two interned pointers.
 *
 * Files: pool.c (pool, interner), table.c (hash table), parse.c (one object
 * into the builder), build.c (builder lifetime, sorting, indexes),
 * inventory.c (lookups), file.c (file loading and the file source),
 * policy.c (NetworkPolicies compiled when the inventory is finished, and
 * their evaluation).
 */
#ifndef FV_K8S_INTERNAL_H
#define FV_K8S_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/inventory.h"

/* ---- Pool ---- */

struct fv_k8s_pool_chunk;

struct fv_k8s_pool {
    struct fv_k8s_pool_chunk *head; /* the chunk being filled; older ones follow it */
    size_t used;                    /* bytes used in head */
    size_t size;                    /* bytes of data in head */
    size_t total;                   /* bytes allocated for all chunks */
};

void fv_k8s_pool_init(struct fv_k8s_pool *p);
void fv_k8s_pool_fini(struct fv_k8s_pool *p);
/* size bytes aligned for any type, or NULL.  Never freed alone. */
void *fv_k8s_pool_alloc(struct fv_k8s_pool *p, size_t size);
/* An array of n elements of elem bytes, zeroed; NULL when n == 0 or on
 * failure (check n before treating NULL as failure). */
void *fv_k8s_pool_array(struct fv_k8s_pool *p, size_t n, size_t elem);

/* ---- String interner ---- */

struct fv_k8s_strslot;

struct fv_k8s_strtab {
    struct fv_k8s_pool *pool;     /* where the strings live; borrowed */
    struct fv_k8s_strslot *slots; /* cap slots, open addressing */
    size_t cap;                   /* a power of two, or 0 */
    size_t n;                     /* distinct strings */
    size_t bytes;                 /* their bytes, NULs included */
};

void fv_k8s_strtab_init(struct fv_k8s_strtab *t, struct fv_k8s_pool *pool);
/* Frees the table; the strings stay in the pool. */
void fv_k8s_strtab_fini(struct fv_k8s_strtab *t);
/* The one copy of s[0..len), NUL-terminated, or NULL on -ENOMEM. */
const char *fv_k8s_strtab_intern(struct fv_k8s_strtab *t, const char *s, size_t len);

/* ---- Hash table with fixed-size keys ---- */

struct fv_k8s_table {
    uint8_t *slots; /* cap slots of stride bytes: a uintptr_t value (0 = empty), the key */
    size_t key_len; /* bytes per key */
    size_t stride;  /* bytes per slot */
    size_t cap;     /* a power of two, or 0 */
    size_t n;       /* occupied slots */
};

void fv_k8s_table_init(struct fv_k8s_table *t, size_t key_len);
void fv_k8s_table_fini(struct fv_k8s_table *t);
/* Sizes the table for n keys up front; 0 or -ENOMEM. */
int fv_k8s_table_reserve(struct fv_k8s_table *t, size_t n);
/*
 * The value slot of key, inserting the key with value 0 when absent; the
 * caller then stores a non-zero value.  NULL on -ENOMEM.  The pointer is
 * valid until the next insertion.
 */
uintptr_t *fv_k8s_table_slot(struct fv_k8s_table *t, const void *key);
/* The value of key, or 0. */
uintptr_t fv_k8s_table_get(const struct fv_k8s_table *t, const void *key);

/* ---- Keys ---- */

/* struct fv_ip as 17 bytes: family, address. */
#define FV_K8S_IP_KEY_LEN 17
/* (ip, port big-endian, proto). */
#define FV_K8S_SVC_KEY_LEN (FV_K8S_IP_KEY_LEN + 3)
/* (masked ip, prefix length). */
#define FV_K8S_CIDR_KEY_LEN (FV_K8S_IP_KEY_LEN + 1)

void fv_k8s_ip_key(const struct fv_ip *ip, uint8_t *key);
void fv_k8s_svc_key(const struct fv_ip *ip, uint16_t port, uint8_t proto, uint8_t *key);
/* The key of the prefix of ip that is len bits long. */
void fv_k8s_cidr_key(const struct fv_ip *ip, uint8_t len, uint8_t *key);

/* ---- The inventory and its builder ---- */

/* A growing array of the objects of one kind. */
struct fv_k8s_vec {
    void *v;    /* n elements of the kind's struct; malloc'd */
    size_t n;   /* elements in use */
    size_t cap; /* elements allocated */
};

/* What the ClusterIP index points to. */
struct fv_k8s_svc_ref {
    const struct fv_k8s_service *svc;
    const struct fv_k8s_service_port *port;
};

/* One compiled NetworkPolicy, what policy.c knows of a namespace, and of
 * a Pod (the policies that may select it). */
struct fv_k8s_np;
struct fv_k8s_np_ns;
struct fv_k8s_np_pod;

struct fv_k8s_inventory {
    struct fv_k8s_pool pool;                   /* strings, per-object arrays, index entries */
    struct fv_k8s_vec objs[FV_K8S_KIND_COUNT]; /* objects per kind; [0] unused */
    struct fv_k8s_table pod_by_ip;             /* ip key -> struct fv_k8s_pod * */
    struct fv_k8s_table svc_by_addr;           /* svc key -> struct fv_k8s_svc_ref * */
    struct fv_k8s_table node_by_cidr;          /* cidr key -> struct fv_k8s_node * */
    uint8_t cidr_lens[2][129];                 /* [v4, v6]: prefix lengths, longest first */
    uint8_t n_cidr_lens[2];                    /* entries in cidr_lens[i] */
    struct fv_k8s_table np_ns;                 /* interned namespace name -> fv_k8s_np_ns * */
    struct fv_k8s_table node_by_addr;          /* ip key of an InternalIP -> fv_k8s_node * */
    const struct fv_k8s_np *nps;               /* compiled, parallel to the sorted policies */
    const struct fv_k8s_np_pod *np_pods;       /* parallel to the sorted Pods */
    const char *ns_name_label;                 /* interned "kubernetes.io/metadata.name" */
    struct fv_k8s_inventory_stats stats;       /* counts of the build */
};

struct fv_k8s_builder {
    struct fv_k8s_inventory *inv;                   /* the model under construction */
    struct fv_k8s_strtab strs;                      /* interner over inv->pool */
    struct fv_k8s_table by_name[FV_K8S_KIND_COUNT]; /* {ns, name} pointers -> index + 1 */
};

/* Element size of each kind's struct. */
size_t fv_k8s_kind_size(enum fv_k8s_kind kind);
/*
 * Stores a parsed object (obj_size bytes at obj, whose namespace and name
 * are the interned ns and name) into the builder, replacing an object of
 * the same kind, ns and name.  0 or -ENOMEM.
 */
int fv_k8s_builder_store(struct fv_k8s_builder *b, enum fv_k8s_kind kind, const char *ns,
                         const char *name, const void *obj);
/* A Kubernetes protocol ("TCP", also when v is NULL; "UDP"; "SCTP") as an
 * IP protocol number; -EINVAL for anything else.  Ports of Pods, Services
 * and NetworkPolicies share it. */
int fv_k8s_parse_proto(const json_t *v, uint8_t *out);

/* Records a problem: counts it and keeps the first description. */
void fv_k8s_builder_note(struct fv_k8s_builder *b, size_t *counter, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sorts the objects and builds the indexes; 0 or -ENOMEM. */
int fv_k8s_index_build(struct fv_k8s_inventory *inv);

/*
 * Compiles the NetworkPolicies of b's inventory, which fv_k8s_index_build()
 * has sorted, into its pool (strings interned with b->strs) and indexes
 * them by namespace and by Pod, and the Nodes by address (policy.c); does
 * nothing when there are no policies.  Malformed parts are noted in the
 * stats.  0 or -ENOMEM.
 */
int fv_k8s_policy_compile(struct fv_k8s_builder *b);

#endif
