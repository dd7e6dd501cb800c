/* record.c - aggregator input decoding and output encoding (record.h). */
#include "aggregator/record.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/err.h"
#include "ipfix/fmt.h"

/* ---- Templates ---- */

static void add(struct fv_ipfix_field *f, uint16_t *n, uint32_t pen, uint16_t id, uint16_t len)
{
    f[*n] = (struct fv_ipfix_field){pen, id, len, NULL};
    (*n)++;
}

static int parse_def(const struct fv_ipfix_template_def *def, struct fv_ipfix_template **out)
{
    uint8_t buf[1024];
    struct fv_ipfix_writer w;
    uint16_t withdraw_id;
    size_t used;

    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    if (fv_ipfix_writer_add_template(&w, def) < 0)
        return -FV_ELIMIT;
    return fv_ipfix_template_parse(buf + FV_IPFIX_HEADER_LEN + FV_IPFIX_SET_HEADER_LEN,
                                   w.len - FV_IPFIX_HEADER_LEN - FV_IPFIX_SET_HEADER_LEN, false,
                                   out, &withdraw_id, &used);
}

int fv_agg_templates_init(struct fv_agg_templates *t, bool labels)
{
    static const struct fv_ipfix_template_def *const agent[2] = {&fv_tmpl_agent_v4,
                                                                 &fv_tmpl_agent_v6};
    /* 145 throughput, 147/148 from nodes, 146 reverse, 149/150 from nodes. */
    static const uint16_t thr_ids[] = {145, 147, 148, 146, 149, 150};

    memset(t, 0, sizeof(*t));
    t->labels = labels;
    for (int v = 0; v < 2; v++) {
        struct fv_ipfix_field *f = t->fields[v];
        uint16_t n = 0;
        for (uint16_t i = 0; i < agent[v]->field_count; i++)
            f[n++] = agent[v]->fields[i];
        for (uint16_t id = 120; id <= 135; id++)
            add(f, &n, FV_PEN_ANTREA, id, 8);
        add(f, &n, FV_PEN_ANTREA, 151, 4);
        add(f, &n, FV_PEN_ANTREA, 152, 4);
        for (size_t i = 0; i < sizeof(thr_ids) / sizeof(thr_ids[0]); i++)
            add(f, &n, FV_PEN_ANTREA, thr_ids[i], 8);
        if (labels) {
            add(f, &n, FV_PEN_ANTREA, 143, FV_IE_VARLEN);
            add(f, &n, FV_PEN_ANTREA, 144, FV_IE_VARLEN);
        }
        add(f, &n, FV_PEN_IANA, 403, 4);
        add(f, &n, FV_PEN_IANA, 404, 16);
        add(f, &n, FV_PEN_IANA, 405, 4);
        t->def[v] = (struct fv_ipfix_template_def){(uint16_t)(FV_TMPL_AGG_V4 + v), n, f};
        int rc = parse_def(&t->def[v], &t->parsed[v]);
        if (rc < 0) {
            fv_agg_templates_fini(t);
            return rc;
        }
    }
    return 0;
}

void fv_agg_templates_fini(struct fv_agg_templates *t)
{
    free(t->parsed[0]);
    free(t->parsed[1]);
    t->parsed[0] = t->parsed[1] = NULL;
}

static void put_str(struct fv_ipfix_writer *w, const char *s)
{
    fv_ipfix_put_varlen(w, s ? s : "", s ? strlen(s) : 0);
}

void fv_agg_rec_encode(struct fv_ipfix_writer *w, const void *arg)
{
    const struct fv_agg_encode_arg *ea = arg;
    const struct fv_agg_rec *r = ea->rec;
    uint8_t v4[4] = {0};

    fv_agent_rec_encode(w, &r->a);
    for (int s = 0; s < 2; s++)
        for (int c = 0; c < FV_AGG_CTR_COUNT; c++)
            fv_ipfix_put_u64(w, r->side[s][c]);
    fv_ipfix_put_u32(w, r->end_side[0]);
    fv_ipfix_put_u32(w, r->end_side[1]);
    fv_ipfix_put_u64(w, r->thr);
    fv_ipfix_put_u64(w, r->thr_side[0]);
    fv_ipfix_put_u64(w, r->thr_side[1]);
    fv_ipfix_put_u64(w, r->rthr);
    fv_ipfix_put_u64(w, r->rthr_side[0]);
    fv_ipfix_put_u64(w, r->rthr_side[1]);
    if (ea->t->labels) {
        put_str(w, r->src_labels);
        put_str(w, r->dst_labels);
    }
    if (r->exporter_v6) {
        fv_ipfix_put_bytes(w, v4, 4);
        fv_ipfix_put_bytes(w, r->exporter, 16);
    } else {
        uint8_t v6[16] = {0};
        fv_ipfix_put_bytes(w, r->exporter, 4);
        fv_ipfix_put_bytes(w, v6, 16);
    }
    fv_ipfix_put_u32(w, r->domain);
}

int fv_agg_rec_json_fields(const struct fv_agg_templates *t, const struct fv_agg_rec *rec,
                           struct fv_sbuf *out)
{
    uint8_t buf[FV_IPFIX_MAX_MESSAGE];
    struct fv_ipfix_writer w;
    struct fv_agg_encode_arg ea = {t, rec};
    const struct fv_ipfix_template *tmpl = t->parsed[rec->a.ipv6 ? 1 : 0];
    struct fv_ipfix_value values[64];
    struct fv_ipfix_rec_iter it;
    struct fv_ipfix_rec r;
    struct fv_ipfix_set set;

    /* Encode, then format the encoding: one source of names and types. */
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    fv_ipfix_writer_record_begin(&w, tmpl->id);
    fv_agg_rec_encode(&w, &ea);
    if (fv_ipfix_writer_record_end(&w) < 0)
        return -FV_ELIMIT;
    set.id = tmpl->id;
    set.length = (uint16_t)(w.len - FV_IPFIX_HEADER_LEN);
    set.body = buf + FV_IPFIX_HEADER_LEN + FV_IPFIX_SET_HEADER_LEN;
    fv_ipfix_rec_iter_init(&it, tmpl, &set);
    if (fv_ipfix_rec_iter_next(&it, &r, values) < 0)
        return -FV_ERECORD;
    return fv_ipfix_fmt_json_record(out, &r, values);
}

int fv_agg_rec_json(const struct fv_agg_templates *t, const struct fv_agg_rec *rec, uint64_t now_s,
                    struct fv_sbuf *out)
{
    char ts[32];

    fv_clock_rfc3339(now_s, ts);
    fv_sbuf_append(out, "{\"@timestamp\":\"", 15);
    fv_sbuf_puts(out, ts);
    fv_sbuf_append(out, "\",\"ipfix\":", 10);
    fv_agg_rec_json_fields(t, rec, out);
    fv_sbuf_append(out, "}\n", 2);
    return out->err;
}

/* ---- Crossing queues ---- */

#define STR_FIELD(m) offsetof(struct fv_agg_rec, m)
static const size_t str_fields[] = {
    STR_FIELD(a.src_pod),       STR_FIELD(a.src_ns),    STR_FIELD(a.src_node),
    STR_FIELD(a.dst_pod),       STR_FIELD(a.dst_ns),    STR_FIELD(a.dst_node),
    STR_FIELD(a.svc_port_name), STR_FIELD(a.in_policy), STR_FIELD(a.in_policy_ns),
    STR_FIELD(a.in_rule),       STR_FIELD(a.eg_policy), STR_FIELD(a.eg_policy_ns),
    STR_FIELD(a.eg_rule),       STR_FIELD(a.tcp_state), STR_FIELD(src_labels),
    STR_FIELD(dst_labels),
};
#define NSTR (sizeof(str_fields) / sizeof(str_fields[0]))

static const char *get_str(const struct fv_agg_rec *r, size_t i)
{
    const char *s;
    memcpy(&s, (const char *)r + str_fields[i], sizeof(s));
    return s ? s : "";
}

size_t fv_agg_rec_packed_size(const struct fv_agg_rec *rec)
{
    size_t n = sizeof(*rec);
    for (size_t i = 0; i < NSTR; i++)
        n += strlen(get_str(rec, i)) + 1;
    return n;
}

void fv_agg_rec_pack(const struct fv_agg_rec *rec, void *buf)
{
    char *p = (char *)buf + sizeof(*rec);

    memcpy(buf, rec, sizeof(*rec));
    for (size_t i = 0; i < NSTR; i++) {
        const char *s = get_str(rec, i);
        size_t n = strlen(s) + 1;
        memcpy(p, s, n);
        p += n;
    }
}

void fv_agg_rec_unpack(const void *buf, struct fv_agg_rec *rec)
{
    const char *p = (const char *)buf + sizeof(*rec);

    memcpy(rec, buf, sizeof(*rec));
    for (size_t i = 0; i < NSTR; i++) {
        memcpy((char *)rec + str_fields[i], &p, sizeof(p));
        p += strlen(p) + 1;
    }
}

/* ---- Input ---- */

enum slot {
    S_NONE,
    S_START,
    S_END,
    S_REASON,
    S_SPORT,
    S_DPORT,
    S_PROTO,
    S_CTR, /* + enum fv_agg_ctr */
    S_SRC4 = S_CTR + FV_AGG_CTR_COUNT,
    S_DST4,
    S_SRC6,
    S_DST6,
    S_STR, /* + enum fv_agg_str */
    S_SVC_PORT = S_STR + FV_AGG_STR_COUNT,
    S_IN_TYPE,
    S_IN_ACTION,
    S_EG_TYPE,
    S_EG_ACTION,
    S_FLOW_TYPE,
    S_CIP4,
    S_CIP6,
    S_COUNT
};

static uint8_t slot_of(const struct fv_ipfix_field *f)
{
    if (f->pen == FV_PEN_IANA) {
        switch (f->id) {
        case 150:
            return S_START;
        case 151:
            return S_END;
        case 136:
            return S_REASON;
        case 7:
            return S_SPORT;
        case 11:
            return S_DPORT;
        case 4:
            return S_PROTO;
        case 86:
            return S_CTR + FV_AGG_PKT_TOTAL;
        case 85:
            return S_CTR + FV_AGG_OCT_TOTAL;
        case 2:
            return S_CTR + FV_AGG_PKT_DELTA;
        case 1:
            return S_CTR + FV_AGG_OCT_DELTA;
        case 8:
            return S_SRC4;
        case 12:
            return S_DST4;
        case 27:
            return S_SRC6;
        case 28:
            return S_DST6;
        }
    } else if (f->pen == FV_PEN_REVERSE) {
        switch (f->id) {
        case 86:
            return S_CTR + FV_AGG_RPKT_TOTAL;
        case 85:
            return S_CTR + FV_AGG_ROCT_TOTAL;
        case 2:
            return S_CTR + FV_AGG_RPKT_DELTA;
        case 1:
            return S_CTR + FV_AGG_ROCT_DELTA;
        }
    } else if (f->pen == FV_PEN_ANTREA) {
        switch (f->id) {
        case 101:
            return S_STR + FV_AGG_SRC_POD;
        case 100:
            return S_STR + FV_AGG_SRC_NS;
        case 104:
            return S_STR + FV_AGG_SRC_NODE;
        case 103:
            return S_STR + FV_AGG_DST_POD;
        case 102:
            return S_STR + FV_AGG_DST_NS;
        case 105:
            return S_STR + FV_AGG_DST_NODE;
        case 109:
            return S_STR + FV_AGG_SVC_NAME;
        case 110:
            return S_STR + FV_AGG_IN_POLICY;
        case 111:
            return S_STR + FV_AGG_IN_POLICY_NS;
        case 141:
            return S_STR + FV_AGG_IN_RULE;
        case 112:
            return S_STR + FV_AGG_EG_POLICY;
        case 113:
            return S_STR + FV_AGG_EG_POLICY_NS;
        case 142:
            return S_STR + FV_AGG_EG_RULE;
        case 136:
            return S_STR + FV_AGG_TCP_STATE;
        case 108:
            return S_SVC_PORT;
        case 115:
            return S_IN_TYPE;
        case 139:
            return S_IN_ACTION;
        case 118:
            return S_EG_TYPE;
        case 140:
            return S_EG_ACTION;
        case 137:
            return S_FLOW_TYPE;
        case 106:
            return S_CIP4;
        case 107:
            return S_CIP6;
        }
    }
    return S_NONE;
}

void fv_agg_in_map_build(struct fv_agg_in_map *m, const struct fv_ipfix_template *t)
{
    bool seen[S_COUNT] = {false};

    m->serial = t->serial;
    m->field_count = t->field_count;
    for (uint16_t i = 0; i < t->field_count; i++) {
        uint8_t s = slot_of(&t->fields[i]);
        /* Addresses and strings need their exact size; a field of another
         * length is ignored rather than misread. */
        if ((s == S_SRC4 || s == S_DST4 || s == S_CIP4) && t->fields[i].length != 4)
            s = S_NONE;
        if ((s == S_SRC6 || s == S_DST6 || s == S_CIP6) && t->fields[i].length != 16)
            s = S_NONE;
        m->slot[i] = s;
        seen[s] = true;
    }
    m->usable = seen[S_SPORT] && seen[S_DPORT] && seen[S_PROTO] &&
                ((seen[S_SRC4] && seen[S_DST4]) || (seen[S_SRC6] && seen[S_DST6]));
}

/* FNV-1a, 32 bits. */
static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

int fv_agg_in_decode(const struct fv_agg_in_map *m, const struct fv_ipfix_value *values,
                     struct fv_agg_in *in, char *blob, size_t blob_cap)
{
    size_t used = 1;
    uint32_t h = 2166136261u;
    bool v4 = false, v6 = false;

    memset(in, 0, sizeof(*in));
    blob[0] = '\0'; /* offset 0 is the empty string */
    for (uint16_t i = 0; i < m->field_count; i++) {
        const struct fv_ipfix_value *v = &values[i];
        uint8_t s = m->slot[i];
        if (s == S_NONE)
            continue;
        if (s >= S_CTR && s < S_CTR + FV_AGG_CTR_COUNT) {
            in->ctr[s - S_CTR] = fv_ipfix_value_uint(v);
            continue;
        }
        if (s >= S_STR && s < S_STR + FV_AGG_STR_COUNT) {
            size_t n = v->len;
            if (n == 0)
                continue;
            if (n > blob_cap - used)
                n = blob_cap - used;
            memcpy(blob + used, v->p, n);
            in->str_off[s - S_STR] = (uint16_t)used;
            in->str_len[s - S_STR] = (uint16_t)n;
            used += n;
            h = fnv(h, &s, 1);
            h = fnv(h, v->p, n);
            continue;
        }
        switch (s) {
        case S_START:
            in->flow_start = (uint32_t)fv_ipfix_value_uint(v);
            break;
        case S_END:
            in->flow_end = (uint32_t)fv_ipfix_value_uint(v);
            break;
        case S_REASON:
            in->end_reason = (uint8_t)fv_ipfix_value_uint(v);
            break;
        case S_SPORT:
            in->key.sport = (uint16_t)fv_ipfix_value_uint(v);
            break;
        case S_DPORT:
            in->key.dport = (uint16_t)fv_ipfix_value_uint(v);
            break;
        case S_PROTO:
            in->key.proto = (uint8_t)fv_ipfix_value_uint(v);
            break;
        case S_SRC4:
            memcpy(in->key.src, v->p, 4);
            v4 = true;
            break;
        case S_DST4:
            memcpy(in->key.dst, v->p, 4);
            break;
        case S_SRC6:
            memcpy(in->key.src, v->p, 16);
            v6 = true;
            break;
        case S_DST6:
            memcpy(in->key.dst, v->p, 16);
            break;
        case S_CIP4:
        case S_CIP6:
            memcpy(in->cluster_ip, v->p, v->len);
            h = fnv(h, v->p, v->len);
            break;
        case S_SVC_PORT:
            in->svc_port = (uint16_t)fv_ipfix_value_uint(v);
            break;
        case S_IN_TYPE:
            in->in_type = (uint8_t)fv_ipfix_value_uint(v);
            break;
        case S_IN_ACTION:
            in->in_action = (uint8_t)fv_ipfix_value_uint(v);
            break;
        case S_EG_TYPE:
            in->eg_type = (uint8_t)fv_ipfix_value_uint(v);
            break;
        case S_EG_ACTION:
            in->eg_action = (uint8_t)fv_ipfix_value_uint(v);
            break;
        case S_FLOW_TYPE:
            in->flow_type = (uint8_t)fv_ipfix_value_uint(v);
            break;
        }
    }
    if (!m->usable || (!v4 && !v6))
        return -FV_ERECORD;
    in->key.v6 = v6 && !v4;
    {
        uint8_t small[8] = {in->in_type,           in->in_action,
                            in->eg_type,           in->eg_action,
                            in->flow_type,         (uint8_t)(in->svc_port >> 8),
                            (uint8_t)in->svc_port, 0};
        h = fnv(h, small, sizeof(small));
    }
    in->ident_hash = h;
    in->blob = blob;
    return (int)used;
}
