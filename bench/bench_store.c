/*
 * bench_store.c - rows per second into a store (SQLite or ClickHouse)
 * through the fv_store interface, the process's memory, and the database
 * size per row.
 *
 *     build/bench/bench_store --store sqlite --path /tmp/flows.db --rows 1000000
 *     build/bench/bench_store --store clickhouse --url http://127.0.0.1:8123 \
 *         --database flowvis_bench --rows 1000000
 *
 * It synthesizes rows of a simulated cluster (nodes, Deployments' Pods in
 * a few namespaces, Services, network policies, Pod labels; names as long
 * as real ones), with flowEndSeconds spread over the last 24 hours in the
 * order a store receives them, builds them with fv_flow_row_from_rec as
 * the aggregator does, and pushes their RowBinary encoding from one thread
 * (retrying on -EAGAIN, as the aggregator's output thread does).  The rate
 * is rows / time from the first push until stats() shows every row
 * written: sustained, not just queued.  Target: >= 100k rows/s into SQLite
 * on 2 cores.  Also printed: the CPU time of the store's own threads per
 * row (a figure that moves less with other load on the machine), the
 * process's RSS, and the database size per row (SQLite: the file and its
 * WAL after stop(); ClickHouse: bytes_on_disk of the table's parts).  The
 * last line repeats the figures as key=value pairs for bench/store.sh.
 *
 * --indexes (SQLite) replaces the table's indexes before the run, to
 * measure what each costs: "default" (the store's), "none", or a comma
 * list of columns, one single-column index each.  --max-mb and
 * --retention-s (SQLite) run the size cap and retention during the run,
 * to measure what they take from the insert rate.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/record.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "store/row.h"
#include "store/sql.h"
#include "store/store.h"

#define NODES 20
#define PODS_PER_NODE 40
#define NPODS (NODES * PODS_PER_NODE)
#define NFLOWS 20000
#define NSVC 60
#define NPOL 30

static const char *const namespaces[] = {"frontend", "backend", "batch", "monitoring",
                                         "kube-system"};
static const char *const apps[] = {"web-frontend", "checkout-api",  "payment-service",
                                   "redis-cache",  "etl-worker",    "prometheus-node-exporter",
                                   "coredns",      "search-indexer"};
static const char *const tcp_states[] = {"ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT", "SYN_SENT"};

struct pod {
    char name[64];
    char labels[160];
    const char *ns;
    int node;
    uint8_t ip[4];
};

struct svc {
    char name[64]; /* namespace/name:port */
    uint8_t ip[4];
    uint16_t port;
};

struct policy {
    char name[48], rule[32];
    const char *ns;
};

struct flow {
    int src, dst, svc, in_pol, eg_pol;
    uint16_t sport, dport;
    uint8_t proto, type;
};

struct cluster {
    char nodes[NODES][32];
    struct pod pods[NPODS];
    struct svc svcs[NSVC];
    struct policy pols[NPOL];
    struct flow flows[NFLOWS];
    uint64_t seed;
};

static uint32_t rnd(struct cluster *c)
{
    c->seed = c->seed * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(c->seed >> 33);
}

static void rand_alnum(struct cluster *c, char *out, int n)
{
    static const char al[] = "bcdfghjklmnpqrstvwxz2456789";
    for (int i = 0; i < n; i++)
        out[i] = al[rnd(c) % (sizeof(al) - 1)];
    out[n] = '\0';
}

static void build_cluster(struct cluster *c)
{
    char hash[11], suffix[6];

    c->seed = 42;
    for (int i = 0; i < NODES; i++)
        snprintf(c->nodes[i], sizeof(c->nodes[i]), "ip-10-0-%d-%d.ec2.internal", i / 8, 10 + i);
    for (int i = 0; i < NPODS; i++) {
        struct pod *p = &c->pods[i];
        const char *app = apps[i % 8];
        rand_alnum(c, hash, 10);
        rand_alnum(c, suffix, 5);
        snprintf(p->name, sizeof(p->name), "%s-%s-%s", app, hash, suffix);
        snprintf(p->labels, sizeof(p->labels),
                 "{\"app\":\"%s\",\"pod-template-hash\":\"%s\",\"tier\":\"%s\"}", app, hash,
                 i % 3 ? "backend" : "web");
        p->ns = namespaces[i % 8 % 5];
        p->node = i % NODES;
        p->ip[0] = 10;
        p->ip[1] = 244;
        p->ip[2] = (uint8_t)p->node;
        p->ip[3] = (uint8_t)(2 + i / NODES);
    }
    for (int i = 0; i < NSVC; i++) {
        struct svc *s = &c->svcs[i];
        snprintf(s->name, sizeof(s->name), "%s/%s:%s", namespaces[i % 5], apps[i % 8],
                 i % 2 ? "http" : "grpc");
        s->ip[0] = 10;
        s->ip[1] = 96;
        s->ip[2] = (uint8_t)(i / 200);
        s->ip[3] = (uint8_t)(10 + i % 200);
        s->port = i % 2 ? 80 : 9090;
    }
    for (int i = 0; i < NPOL; i++) {
        struct policy *p = &c->pols[i];
        snprintf(p->name, sizeof(p->name), "allow-%s-to-%s", apps[i % 8], apps[(i + 3) % 8]);
        snprintf(p->rule, sizeof(p->rule), "rule-%d", i % 4);
        p->ns = namespaces[i % 5];
    }
    for (int i = 0; i < NFLOWS; i++) {
        struct flow *f = &c->flows[i];
        f->src = (int)(rnd(c) % NPODS);
        f->dst = (int)(rnd(c) % NPODS);
        f->svc = rnd(c) % 3 == 0 ? (int)(rnd(c) % NSVC) : -1;
        f->in_pol = rnd(c) % 2 ? (int)(rnd(c) % NPOL) : -1;
        f->eg_pol = rnd(c) % 4 == 0 ? (int)(rnd(c) % NPOL) : -1;
        f->sport = (uint16_t)(32768 + rnd(c) % 28000);
        f->dport = f->svc >= 0 ? c->svcs[f->svc].port : (uint16_t)(1024 + rnd(c) % 8000);
        f->proto = rnd(c) % 10 ? 6 : 17;
        f->type =
            c->pods[f->src].node == c->pods[f->dst].node ? FV_FLOW_INTRA_NODE : FV_FLOW_INTER_NODE;
    }
}

/* Row i of n: a flow of the cluster ending at a time that advances from
 * 24 h ago to now over the run. */
static void make_rec(struct cluster *c, uint64_t i, uint64_t n, uint32_t t0, struct fv_agg_rec *r)
{
    const struct flow *f = &c->flows[rnd(c) % NFLOWS];
    const struct pod *s = &c->pods[f->src], *d = &c->pods[f->dst];
    struct fv_agent_rec *a = &r->a;
    uint32_t end = t0 + (uint32_t)(i * 86400 / (n ? n : 1));
    uint64_t bytes = 100 + rnd(c) % 1000000, pkts = 1 + bytes / 900;

    memset(r, 0, sizeof(*r));
    a->flow_start = end - rnd(c) % 600;
    a->flow_end = end;
    a->end_reason = (uint8_t)(1 + rnd(c) % 3);
    memcpy(a->src_addr, s->ip, 4);
    memcpy(a->dst_addr, d->ip, 4);
    a->src_port = f->sport;
    a->dst_port = f->dport;
    a->proto = f->proto;
    a->packets_total = pkts * 10;
    a->octets_total = bytes * 10;
    a->packets_delta = pkts;
    a->octets_delta = bytes;
    a->rev_packets_total = pkts * 8;
    a->rev_octets_total = bytes * 3;
    a->rev_packets_delta = pkts;
    a->rev_octets_delta = bytes / 3;
    a->src_pod = s->name;
    a->src_ns = s->ns;
    a->src_node = c->nodes[s->node];
    a->dst_pod = d->name;
    a->dst_ns = d->ns;
    a->dst_node = c->nodes[d->node];
    a->svc_port_name = "";
    if (f->svc >= 0) {
        memcpy(a->cluster_ip, c->svcs[f->svc].ip, 4);
        a->svc_port = c->svcs[f->svc].port;
        a->svc_port_name = c->svcs[f->svc].name;
    }
    a->in_policy = a->in_policy_ns = a->in_rule = "";
    a->eg_policy = a->eg_policy_ns = a->eg_rule = "";
    if (f->in_pol >= 0) {
        const struct policy *p = &c->pols[f->in_pol];
        a->in_policy = p->name;
        a->in_policy_ns = p->ns;
        a->in_rule = p->rule;
        a->in_policy_type = 1;
        a->in_action = FV_ACTION_ALLOW;
    }
    if (f->eg_pol >= 0) {
        const struct policy *p = &c->pols[f->eg_pol];
        a->eg_policy = p->name;
        a->eg_policy_ns = p->ns;
        a->eg_rule = p->rule;
        a->eg_policy_type = 1;
        a->eg_action = rnd(c) % 20 ? FV_ACTION_ALLOW : FV_ACTION_DROP;
    }
    a->tcp_state = f->proto == 6 ? tcp_states[rnd(c) % 4] : "";
    a->flow_type = f->type;
    r->end_side[0] = end;
    r->end_side[1] = f->type == FV_FLOW_INTER_NODE ? end - rnd(c) % 3 : 0;
    r->thr = bytes * 8 / 60;
    r->rthr = bytes * 8 / 180;
    r->thr_side[0] = r->thr;
    r->thr_side[1] = f->type == FV_FLOW_INTER_NODE ? r->thr : 0;
    r->rthr_side[0] = r->rthr;
    r->rthr_side[1] = f->type == FV_FLOW_INTER_NODE ? r->rthr : 0;
    r->src_labels = s->labels;
    r->dst_labels = d->labels;
}

struct opts {
    const char *store, *path, *url, *database, *indexes;
    uint64_t rows;
    uint32_t batch_rows;
    uint64_t commit_ms, queue_mb;
    uint64_t max_mb, retention_s; /* SQLite: the size cap and retention while inserting */
    int overwrite;
};

static long status_kib(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = strtol(line + strlen(key), NULL, 10);
    fclose(f);
    return v;
}

/* CPU seconds (user + system) of this process's threads other than the
 * main one: the store's own threads. */
static double store_cpu_seconds(void)
{
    char p[300], line[1024];
    double ticks = 0;
    long hz = sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == getpid())
            continue;
        snprintf(p, sizeof(p), "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (f == NULL)
            continue;
        if (fgets(line, sizeof(line), f)) {
            /* Fields 14 and 15 (utime, stime) follow the ")" of the name. */
            char *q = strrchr(line, ')');
            unsigned long ut = 0, st = 0;
            if (q &&
                sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
                ticks += (double)(ut + st);
        }
        fclose(f);
    }
    closedir(d);
    return ticks / (double)hz;
}

static long long file_size(const char *path, const char *suffix)
{
    char p[4096];
    struct stat sb;

    snprintf(p, sizeof(p), "%s%s", path, suffix);
    return stat(p, &sb) == 0 ? (long long)sb.st_size : 0;
}

static int open_store(const struct opts *o, struct fv_store *st)
{
    if (strcmp(o->store, "sqlite") == 0) {
        struct fv_sqlite_cfg cfg = {.path = o->path,
                                    .commit_ms = o->commit_ms,
                                    .batch_rows = o->batch_rows,
                                    .queue_bytes = o->queue_mb << 20,
                                    .max_bytes = o->max_mb << 20,
                                    .retention_s = o->retention_s};
        return fv_sqlite_store_new(&cfg, st);
    }
    struct fv_ch_cfg cfg = {.url = o->url,
                            .database = o->database,
                            .compress = true,
                            .commit_ms = o->commit_ms,
                            .batch_rows = o->batch_rows,
                            .queue_bytes = o->queue_mb << 20};
    return fv_ch_store_new(&cfg, st);
}

/* Replaces the indexes of flows with the ones o->indexes names. */
static int set_indexes(const struct opts *o)
{
    struct fv_store st;
    sqlite3 *db = NULL;
    char sql[512], names[64][128];
    int n = 0, rc = open_store(o, &st);

    if (rc < 0)
        return rc;
    st.ops->stop(st.impl, 0);
    if (sqlite3_open(o->path, &db) != SQLITE_OK)
        return -EIO;
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db,
                       "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
                       -1, &q, NULL);
    while (n < 64 && sqlite3_step(q) == SQLITE_ROW)
        snprintf(names[n++], sizeof(names[0]), "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    for (int i = 0; i < n; i++) {
        snprintf(sql, sizeof(sql), "DROP INDEX \"%.127s\"", names[i]);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (strcmp(o->indexes, "none") != 0) {
        char list[512], *save = NULL;
        snprintf(list, sizeof(list), "%s", o->indexes);
        for (char *col = strtok_r(list, ",", &save); col; col = strtok_r(NULL, ",", &save)) {
            snprintf(sql, sizeof(sql), "CREATE INDEX bench_%s ON flows(%s)", col, col);
            if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
                fprintf(stderr, "bench_store: %s: %s\n", sql, sqlite3_errmsg(db));
                rc = -EINVAL;
            }
        }
    }
    sqlite3_close(db);
    return rc;
}

static int on_size(void *arg, const struct fv_sql_val *cells, int ncells)
{
    if (ncells > 0 && cells[0].type == FV_SQL_INT)
        *(long long *)arg = cells[0].i;
    else if (ncells > 0 && cells[0].type == FV_SQL_TEXT)
        *(long long *)arg = strtoll(cells[0].s, NULL, 10);
    return 0;
}

/* ClickHouse: bytes on disk of the flows table's active parts. */
static long long ch_bytes(const struct opts *o, struct fv_store *st)
{
    struct fv_sql q;
    char err[256];
    long long v = -1;

    fv_sql_init(&q);
    fv_sql_add(&q, "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = ");
    fv_sql_arg_text(&q, "flows", 5);
    fv_sql_add(&q, " AND database = ");
    fv_sql_arg_text(&q, o->database, strlen(o->database));
    if (st->ops->query(st->impl, &q, on_size, &v, err, sizeof(err)) < 0)
        fprintf(stderr, "bench_store: size query: %s\n", err);
    fv_sql_fini(&q);
    return v;
}

/* Pushes n rows; returns the seconds until all were written. */
static double run(const struct opts *o, struct fv_store *st, uint64_t *refused)
{
    struct cluster *c = calloc(1, sizeof(*c));
    struct fv_sbuf buf;
    struct fv_agg_rec rec;
    struct fv_flow_row row;
    struct fv_store_stats ss;
    uint32_t now = fv_clock_wall_s(), t0 = now - 86400;
    uint64_t start, last_print;

    build_cluster(c);
    fv_sbuf_init(&buf, 1 << 20);
    start = fv_clock_mono_ns();
    last_print = start;
    for (uint64_t i = 0; i < o->rows; i++) {
        make_rec(c, i, o->rows, t0, &rec);
        fv_flow_row_from_rec(&row, &rec, rec.a.flow_end + 1);
        fv_sbuf_reset(&buf);
        fv_flow_row_encode(&row, &buf);
        while (st->ops->push(st->impl, buf.p, buf.len) == -EAGAIN) {
            (*refused)++;
            nanosleep(&(struct timespec){0, 200000}, NULL);
        }
        if ((i & 0xffff) == 0 && fv_clock_mono_ns() - last_print > 5000000000ull) {
            last_print = fv_clock_mono_ns();
            st->ops->stats(st->impl, &ss);
            fprintf(stderr, "  %llu pushed, %llu written\n", (unsigned long long)i,
                    (unsigned long long)ss.rows_written);
        }
    }
    double pushed = (double)(fv_clock_mono_ns() - start) / 1e9;
    for (;;) {
        st->ops->stats(st->impl, &ss);
        if (ss.rows_written >= o->rows)
            break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    double total = (double)(fv_clock_mono_ns() - start) / 1e9;
    printf("pushed in %.2f s (%.0f rows/s offered)\n", pushed, (double)o->rows / pushed);
    printf("batches written %llu, failed %llu, rows deleted %llu\n",
           (unsigned long long)ss.batches_written, (unsigned long long)ss.batches_failed,
           (unsigned long long)ss.rows_deleted);
    fv_sbuf_fini(&buf);
    free(c);
    return total;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_store --store sqlite --path FILE [--indexes default|none|COL,...]\n"
            "                   [--max-mb MB] [--retention-s S]\n"
            "       bench_store --store clickhouse --url URL --database DB\n"
            "       common: [--rows N] [--batch-rows N] [--commit-ms MS] [--queue-mb MB] "
            "[--overwrite]\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"store", 1, NULL, 's'},     {"path", 1, NULL, 'p'},     {"url", 1, NULL, 'u'},
        {"database", 1, NULL, 'd'},  {"rows", 1, NULL, 'n'},     {"batch-rows", 1, NULL, 'b'},
        {"commit-ms", 1, NULL, 'c'}, {"queue-mb", 1, NULL, 'q'}, {"indexes", 1, NULL, 'i'},
        {"overwrite", 0, NULL, 'o'}, {"max-mb", 1, NULL, 'm'},   {"retention-s", 1, NULL, 'r'},
        {NULL, 0, NULL, 0}};
    int ch;

    *o = (struct opts){.store = "sqlite",
                       .database = "flowvis_bench",
                       .indexes = "default",
                       .rows = 1000000,
                       .batch_rows = 50000,
                       .commit_ms = 1000,
                       .queue_mb = 64};
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's':
            o->store = optarg;
            break;
        case 'p':
            o->path = optarg;
            break;
        case 'u':
            o->url = optarg;
            break;
        case 'd':
            o->database = optarg;
            break;
        case 'n':
            o->rows = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            o->batch_rows = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            o->commit_ms = strtoull(optarg, NULL, 10);
            break;
        case 'q':
            o->queue_mb = strtoull(optarg, NULL, 10);
            break;
        case 'm':
            o->max_mb = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            o->retention_s = strtoull(optarg, NULL, 10);
            break;
        case 'i':
            o->indexes = optarg;
            break;
        case 'o':
            o->overwrite = 1;
            break;
        default:
            return -1;
        }
    }
    if (strcmp(o->store, "sqlite") == 0)
        return o->path ? 0 : -1;
    return strcmp(o->store, "clickhouse") == 0 && o->url ? 0 : -1;
}

static int prepare_sqlite(const struct opts *o)
{
    if (file_size(o->path, "") > 0 || access(o->path, F_OK) == 0) {
        if (!o->overwrite) {
            fprintf(stderr, "bench_store: %s exists; remove it or pass --overwrite\n", o->path);
            return -1;
        }
        const char *sfx[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            char p[4096];
            snprintf(p, sizeof(p), "%s%s", o->path, sfx[i]);
            unlink(p);
        }
    }
    if (strcmp(o->indexes, "default") != 0 && set_indexes(o) < 0) {
        fprintf(stderr, "bench_store: cannot set the indexes\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct fv_store st;
    uint64_t refused = 0;
    long long bytes = -1;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    fv_log_threshold = FV_LOG_WARN;
    if (parse_opts(argc, argv, &o) < 0) {
        usage();
        return 2;
    }
    if (strcmp(o.store, "sqlite") == 0 && prepare_sqlite(&o) < 0)
        return 1;
    rc = open_store(&o, &st);
    if (rc < 0) {
        fprintf(stderr, "bench_store: cannot open the %s store: %s\n", o.store, fv_strerror(rc));
        return 1;
    }
    printf("store %s, %llu rows, batch %u rows / %llu ms, queue %llu MiB, indexes %s\n", o.store,
           (unsigned long long)o.rows, o.batch_rows, (unsigned long long)o.commit_ms,
           (unsigned long long)o.queue_mb, strcmp(o.store, "sqlite") == 0 ? o.indexes : "-");
    double secs = run(&o, &st, &refused);
    long rss = status_kib("VmRSS:"), hwm = status_kib("VmHWM:");
    double cpu = store_cpu_seconds();
    if (strcmp(o.store, "clickhouse") == 0)
        bytes = ch_bytes(&o, &st);
    uint64_t t = fv_clock_mono_ns();
    st.ops->stop(st.impl, 30000);
    double stop_s = (double)(fv_clock_mono_ns() - t) / 1e9;
    if (strcmp(o.store, "sqlite") == 0)
        bytes = file_size(o.path, "") + file_size(o.path, "-wal");
    printf("sustained %.0f rows/s (%llu rows in %.2f s, %llu pushes refused)\n",
           (double)o.rows / secs, (unsigned long long)o.rows, secs, (unsigned long long)refused);
    printf("store threads' CPU %.2f s, %.2f us/row\n", cpu, cpu * 1e6 / (double)o.rows);
    printf("RSS %ld KiB (peak %ld KiB), stop %.2f s\n", rss, hwm, stop_s);
    if (bytes >= 0 && o.rows > 0)
        printf("database %lld bytes, %.1f bytes/row\n", bytes, (double)bytes / (double)o.rows);
    /* The last line, for bench/store.sh. */
    printf("rows_per_s=%.0f bytes_per_row=%.1f rss_kb=%ld peak_rss_kb=%ld cpu_us_per_row=%.2f\n",
           (double)o.rows / secs, bytes >= 0 ? (double)bytes / (double)o.rows : -1.0, rss, hwm,
           cpu * 1e6 / (double)o.rows);
    return 0;
}
