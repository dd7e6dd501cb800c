/*
 * test_store_row.c - the row every store takes (store/row.c: columns,
 * RowBinary encoding and parsing) and SQL with typed placeholders
 * (store/sql.c: ClickHouse rendering and quoting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/record.h"
#include "base/err.h"
#include "base/sbuf.h"
#include "store/row.h"
#include "store/sql.h"

/* ---- columns ---- */

static void test_columns_are_the_reference_columns_in_order(void **state)
{
    (void)state;
    assert_int_equal(FV_FLOW_NCOLS, 49); /* SPEC section 5 */
    assert_string_equal(fv_flow_cols[0].name, "timeInserted");
    assert_int_equal(fv_flow_cols[0].type, FV_COL_DATETIME);
    assert_string_equal(fv_flow_cols[FV_FLOW_NCOLS - 1].name, "trusted");
    assert_int_equal(fv_flow_col_find("flowEndSeconds"), FV_C_FLOW_END);
    assert_int_equal(fv_flow_col_find("destinationPodLabels"), FV_C_DST_LABELS);
    assert_int_equal(fv_flow_col_find("flowendseconds"), -1); /* case-sensitive */
    assert_int_equal(fv_flow_col_find(""), -1);
    assert_string_equal(fv_col_type_ch(FV_COL_DATETIME), "DateTime");
    assert_string_equal(fv_col_type_ch(FV_COL_U8), "UInt8");
    assert_string_equal(fv_col_type_ch(FV_COL_U16), "UInt16");
    assert_string_equal(fv_col_type_ch(FV_COL_U64), "UInt64");
    assert_string_equal(fv_col_type_ch(FV_COL_STRING), "String");
    for (int i = 0; i < FV_FLOW_NCOLS; i++)
        assert_int_equal(fv_flow_col_find(fv_flow_cols[i].name), i);
}

/* ---- from_rec / encode / parse ---- */

static void make_rec(struct fv_agg_rec *r, bool v6)
{
    memset(r, 0, sizeof(*r));
    r->a.ipv6 = v6;
    r->a.flow_start = 1700000000;
    r->a.flow_end = 1700000060;
    r->a.end_reason = 3;
    if (v6) {
        inet_pton(AF_INET6, "2001:db8::1", r->a.src_addr);
        inet_pton(AF_INET6, "fd00:10:244::5", r->a.dst_addr);
    } else {
        inet_pton(AF_INET, "10.244.1.5", r->a.src_addr);
        inet_pton(AF_INET, "10.244.2.7", r->a.dst_addr);
        inet_pton(AF_INET, "10.96.0.10", r->a.cluster_ip);
    }
    r->a.src_port = 40000;
    r->a.dst_port = 8080;
    r->a.proto = 6;
    r->a.packets_total = 10;
    r->a.octets_total = UINT64_MAX;
    r->a.packets_delta = 3;
    r->a.octets_delta = 300;
    r->a.rev_packets_total = 11;
    r->a.rev_octets_total = 1100;
    r->a.rev_packets_delta = 4;
    r->a.rev_octets_delta = 400;
    r->a.src_pod = "web-7d9f8c6b5-x2k4p";
    r->a.src_ns = "frontend";
    r->a.src_node = "node-1";
    r->a.dst_pod = "api-0";
    r->a.dst_ns = "o'brien";
    r->a.dst_node = "node-2";
    r->a.svc_port = 80;
    r->a.svc_port_name = "backend/api:http";
    r->a.in_policy = "allow-web";
    r->a.in_policy_ns = "backend";
    r->a.in_rule = "rule-0";
    r->a.in_policy_type = 1;
    r->a.in_action = 1;
    r->a.eg_policy = NULL; /* becomes "" */
    r->a.eg_policy_ns = "";
    r->a.eg_rule = "";
    r->a.eg_action = 2;
    r->a.eg_policy_type = 3;
    r->a.tcp_state = "ESTABLISHED";
    r->a.flow_type = 2;
    r->end_side[0] = 1700000059;
    r->end_side[1] = 1700000060;
    r->thr = 1;
    r->rthr = 2;
    r->thr_side[0] = 3;
    r->thr_side[1] = 4;
    r->rthr_side[0] = 5;
    r->rthr_side[1] = 6;
    r->src_labels = "{\"app\":\"web\"}";
    r->dst_labels = NULL;
}

static void assert_col_str(const struct fv_flow_row *row, int c, const char *want)
{
    assert_int_equal(row->slen[c], strlen(want));
    assert_memory_equal(row->s[c], want, row->slen[c]);
}

static void assert_rows_equal(const struct fv_flow_row *a, const struct fv_flow_row *b)
{
    for (int c = 0; c < FV_FLOW_NCOLS; c++) {
        if (fv_flow_cols[c].type == FV_COL_STRING) {
            assert_int_equal(a->slen[c], b->slen[c]);
            assert_memory_equal(a->s[c], b->s[c], a->slen[c]);
        } else {
            /* Encoding keeps the column's width only. */
            uint64_t mask = fv_flow_cols[c].type == FV_COL_U8         ? 0xff
                            : fv_flow_cols[c].type == FV_COL_U16      ? 0xffff
                            : fv_flow_cols[c].type == FV_COL_DATETIME ? 0xffffffffu
                                                                      : UINT64_MAX;
            assert_true((a->v[c] & mask) == b->v[c]);
        }
    }
}

static void test_a_record_becomes_a_row_that_round_trips(void **state)
{
    struct fv_agg_rec rec;
    struct fv_flow_row row, back;
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 1 << 20);
    make_rec(&rec, false);
    fv_flow_row_from_rec(&row, &rec, 1700000100);
    assert_int_equal(row.v[FV_C_TIME_INSERTED], 1700000100);
    assert_int_equal(row.v[FV_C_FLOW_END], 1700000060);
    assert_int_equal(row.v[FV_C_FLOW_END_SRC], 1700000059);
    assert_true(row.v[FV_C_OCT_TOTAL] == UINT64_MAX);
    assert_int_equal(row.v[FV_C_IN_ACTION], 1);
    assert_int_equal(row.v[FV_C_EG_TYPE], 3);
    assert_int_equal(row.v[FV_C_RTHR_DST], 6);
    assert_int_equal(row.v[FV_C_TRUSTED], 0);
    assert_col_str(&row, FV_C_SRC_IP, "10.244.1.5");
    assert_col_str(&row, FV_C_DST_IP, "10.244.2.7");
    assert_col_str(&row, FV_C_CLUSTER_IP, "10.96.0.10");
    assert_col_str(&row, FV_C_DST_NS, "o'brien");
    assert_col_str(&row, FV_C_EG_POLICY, "");
    assert_col_str(&row, FV_C_SRC_LABELS, "{\"app\":\"web\"}");
    assert_col_str(&row, FV_C_DST_LABELS, "");

    assert_int_equal(fv_flow_row_encode(&row, &b), 0);
    /* timeInserted first, little endian. */
    assert_int_equal((uint8_t)b.p[0], 1700000100 & 0xff);
    assert_int_equal((uint8_t)b.p[3], 1700000100 >> 24);
    assert_int_equal(fv_flow_row_parse(b.p, b.len, &back), (int)b.len);
    assert_rows_equal(&row, &back);

    /* IPv6, and no Service: an all-zero ClusterIP is "". */
    fv_sbuf_reset(&b);
    make_rec(&rec, true);
    fv_flow_row_from_rec(&row, &rec, 1);
    assert_col_str(&row, FV_C_SRC_IP, "2001:db8::1");
    assert_col_str(&row, FV_C_DST_IP, "fd00:10:244::5");
    assert_col_str(&row, FV_C_CLUSTER_IP, "");
    assert_int_equal(fv_flow_row_encode(&row, &b), 0);
    assert_int_equal(fv_flow_row_parse(b.p, b.len, &back), (int)b.len);
    assert_rows_equal(&row, &back);
    fv_sbuf_fini(&b);
}

/* Bytes of a row with every integer zero and every string empty. */
static size_t empty_row_len(void)
{
    size_t n = 0;
    for (int c = 0; c < FV_FLOW_NCOLS; c++) {
        switch (fv_flow_cols[c].type) {
        case FV_COL_DATETIME:
            n += 4;
            break;
        case FV_COL_U8:
            n += 1;
            break;
        case FV_COL_U16:
            n += 2;
            break;
        case FV_COL_U64:
            n += 8;
            break;
        case FV_COL_STRING:
            n += 1; /* the length 0 */
            break;
        }
    }
    return n;
}

static void test_integers_are_little_endian_at_their_column_width(void **state)
{
    struct fv_flow_row row, back;
    struct fv_sbuf b;

    (void)state;
    memset(&row, 0, sizeof(row));
    for (int c = 0; c < FV_FLOW_NCOLS; c++)
        row.s[c] = "";
    row.v[FV_C_TIME_INSERTED] = 0x01020304;
    row.v[FV_C_FLOW_END_REASON] = 0x1ff; /* wider than UInt8: cut to 0xff */
    row.v[FV_C_TRUSTED] = 1;
    row.v[FV_C_THR] = 0x0102030405060708ull;
    fv_sbuf_init(&b, 1 << 16);
    assert_int_equal(fv_flow_row_encode(&row, &b), 0);
    assert_int_equal(b.len, empty_row_len());
    assert_memory_equal(b.p, "\x04\x03\x02\x01", 4);
    assert_int_equal((uint8_t)b.p[b.len - 1], 1); /* trusted, the last column */
    assert_int_equal(fv_flow_row_parse(b.p, b.len, &back), (int)b.len);
    assert_int_equal(back.v[FV_C_FLOW_END_REASON], 0xff);
    assert_true(back.v[FV_C_THR] == 0x0102030405060708ull);
    fv_sbuf_fini(&b);
}

static void test_every_truncation_of_a_row_is_detected(void **state)
{
    struct fv_agg_rec rec;
    struct fv_flow_row row, back;
    struct fv_sbuf b;
    uint8_t *copy;

    (void)state;
    make_rec(&rec, true);
    fv_flow_row_from_rec(&row, &rec, 7);
    fv_sbuf_init(&b, 1 << 20);
    assert_int_equal(fv_flow_row_encode(&row, &b), 0);
    /* Each prefix in a buffer of its own size, so ASan sees any overread. */
    for (size_t n = 0; n < b.len; n++) {
        copy = malloc(n ? n : 1);
        memcpy(copy, b.p, n);
        assert_int_equal(fv_flow_row_parse(copy, n, &back), -FV_ETRUNC);
        free(copy);
    }
    /* A longer buffer: the row's own length comes back. */
    fv_sbuf_append(&b, "extra", 5);
    assert_int_equal(fv_flow_row_parse(b.p, b.len, &back), (int)b.len - 5);
    fv_sbuf_fini(&b);
}

/* Encodes a row whose first string (sourceIP) has n bytes; returns the
 * offset of that string's length. */
static size_t encode_long(struct fv_sbuf *b, char *s, uint32_t n)
{
    struct fv_flow_row row;
    size_t off = 0;

    memset(&row, 0, sizeof(row));
    for (int c = 0; c < FV_FLOW_NCOLS; c++)
        row.s[c] = "";
    memset(s, 'a', n);
    s[0] = 'A';
    s[n - 1] = 'Z';
    row.s[FV_C_SRC_IP] = s;
    row.slen[FV_C_SRC_IP] = n;
    fv_sbuf_reset(b);
    assert_int_equal(fv_flow_row_encode(&row, b), 0);
    for (int c = 0; c < FV_C_SRC_IP; c++)
        off += fv_flow_cols[c].type == FV_COL_DATETIME ? 4 : 1; /* DateTimes and a UInt8 */
    return off;
}

static void test_long_strings_have_multi_byte_lengths(void **state)
{
    static const struct {
        uint32_t n;
        const char *leb;
        size_t leb_len;
    } cases[] = {
        {1, "\x01", 1},
        {127, "\x7f", 1},
        {128, "\x80\x01", 2},
        {300, "\xac\x02", 2},
        {16383, "\xff\x7f", 2},
        {16384, "\x80\x80\x01", 3},
        {2097152, "\x80\x80\x80\x01", 4},
    };
    struct fv_flow_row back;
    struct fv_sbuf b;
    char *s = malloc(2097152);

    (void)state;
    fv_sbuf_init(&b, 4u << 20);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t off = encode_long(&b, s, cases[i].n);
        assert_memory_equal(b.p + off, cases[i].leb, cases[i].leb_len);
        assert_int_equal(b.len, empty_row_len() - 1 + cases[i].leb_len + cases[i].n);
        assert_int_equal(fv_flow_row_parse(b.p, b.len, &back), (int)b.len);
        assert_int_equal(back.slen[FV_C_SRC_IP], cases[i].n);
        assert_ptr_equal(back.s[FV_C_SRC_IP], b.p + off + cases[i].leb_len);
        assert_int_equal(back.s[FV_C_SRC_IP][0], cases[i].n == 1 ? 'Z' : 'A');
        assert_int_equal(back.s[FV_C_SRC_IP][cases[i].n - 1], 'Z');
        /* A length that claims more than the buffer holds. */
        assert_int_equal(fv_flow_row_parse(b.p, off + cases[i].leb_len + cases[i].n - 1, &back),
                         -FV_ETRUNC);
    }
    free(s);
    fv_sbuf_fini(&b);
}

static void test_an_overlong_length_is_rejected(void **state)
{
    struct fv_flow_row back;
    uint8_t buf[64] = {0};
    size_t off = 0;

    (void)state;
    for (int c = 0; c < FV_C_SRC_IP; c++)
        off += fv_flow_cols[c].type == FV_COL_DATETIME ? 4 : 1;
    /* Six continuation bytes: more than a UInt32 length can need. */
    memset(buf + off, 0x80, 6);
    buf[off + 6] = 0x00;
    assert_int_equal(fv_flow_row_parse(buf, sizeof(buf), &back), -FV_ETRUNC);
    /* A five-byte length of 2^32 - 1 is bigger than any buffer here. */
    memcpy(buf + off, "\xff\xff\xff\xff\x0f", 5);
    assert_int_equal(fv_flow_row_parse(buf, sizeof(buf), &back), -FV_ETRUNC);
}

/* ---- SQL ---- */

static char *render(struct fv_sql *q, int *rc)
{
    static struct fv_sbuf out;
    static bool init;

    if (!init) {
        fv_sbuf_init(&out, 1 << 20);
        init = true;
    }
    fv_sbuf_reset(&out);
    *rc = fv_sql_render_ch(q, &out);
    return out.p ? out.p : "";
}

static void test_render_ch_replaces_placeholders_with_escaped_literals(void **state)
{
    struct fv_sql q;
    int rc;
    char *s;

    (void)state;
    fv_sql_init(&q);
    fv_sql_add(&q, "SELECT a FROM flows WHERE x = ");
    fv_sql_arg_int(&q, -5);
    fv_sql_add(&q, " AND y = ");
    fv_sql_arg_text(&q, "o'b\\c", 5);
    fv_sql_addf(&q, " LIMIT %d", 10);
    s = render(&q, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "SELECT a FROM flows WHERE x = -5 AND y = 'o\\'b\\\\c' LIMIT 10");
    assert_int_equal(q.nargs, 2);
    assert_string_equal(q.text.p, "SELECT a FROM flows WHERE x = ? AND y = ? LIMIT 10");

    /* INT64_MIN and a REAL argument. */
    fv_sql_reset(&q);
    fv_sql_add(&q, "SELECT ");
    fv_sql_arg_int(&q, INT64_MIN);
    fv_sql_add(&q, ", ");
    fv_sql_arg_int(&q, 0);
    q.args[q.nargs - 1] = (struct fv_sql_val){.type = FV_SQL_REAL, .d = 0.5};
    s = render(&q, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "SELECT -9223372036854775808, 0.5");
    fv_sql_fini(&q);
}

static void test_quote_ch_escapes_quotes_backslashes_and_control_bytes(void **state)
{
    struct fv_sbuf b;
    const char in[] = "a'b\\c\n\t\x01\x7f\xc3\xa9\"?";

    (void)state;
    fv_sbuf_init(&b, 1 << 10);
    assert_int_equal(fv_sql_quote_ch(&b, in, sizeof(in) - 1), 0);
    /* UTF-8 bytes, double quotes and `?` pass unchanged. */
    assert_string_equal(b.p, "'a\\'b\\\\c\\x0A\\x09\\x01\\x7F\xc3\xa9\"?'");
    fv_sbuf_reset(&b);
    assert_int_equal(fv_sql_quote_ch(&b, "", 0), 0);
    assert_string_equal(b.p, "''");
    /* An embedded NUL is a control byte like the others. */
    fv_sbuf_reset(&b);
    assert_int_equal(fv_sql_quote_ch(&b, "a\0b", 3), 0);
    assert_string_equal(b.p, "'a\\x00b'");
    fv_sbuf_fini(&b);
}

static void test_question_marks_inside_text_arguments_are_not_placeholders(void **state)
{
    struct fv_sql q;
    int rc;
    char *s;

    (void)state;
    fv_sql_init(&q);
    fv_sql_add(&q, "SELECT 1 WHERE a = ");
    fv_sql_arg_text(&q, "?\?'?", 4);
    fv_sql_add(&q, " AND b = ");
    fv_sql_arg_int(&q, 7);
    s = render(&q, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "SELECT 1 WHERE a = '?\?\\'?' AND b = 7");

    /* An injection attempt stays one literal. */
    fv_sql_reset(&q);
    fv_sql_add(&q, "SELECT 1 WHERE a = ");
    fv_sql_arg_text(&q, "'; DROP TABLE flows; --", 23);
    s = render(&q, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "SELECT 1 WHERE a = '\\'; DROP TABLE flows; --'");
    fv_sql_fini(&q);
}

static void test_argument_count_mismatches_are_errors(void **state)
{
    struct fv_sql q;
    int rc;

    (void)state;
    fv_sql_init(&q);
    /* A `?` written as text has no argument. */
    fv_sql_add(&q, "SELECT ? + ");
    fv_sql_arg_int(&q, 1);
    render(&q, &rc);
    assert_int_equal(rc, -FV_ELIMIT);

    /* More arguments than placeholders. */
    fv_sql_reset(&q);
    fv_sql_add(&q, "SELECT ");
    fv_sql_arg_int(&q, 1);
    q.args[q.nargs++] = (struct fv_sql_val){.type = FV_SQL_INT, .i = 2};
    render(&q, &rc);
    assert_int_equal(rc, -FV_ELIMIT);

    /* Too many arguments: the error sticks and render returns it. */
    fv_sql_reset(&q);
    fv_sql_add(&q, "SELECT 1");
    for (int i = 0; i <= FV_SQL_MAX_ARGS; i++) {
        fv_sql_add(&q, ",");
        fv_sql_arg_int(&q, i);
    }
    assert_int_equal(q.err, -FV_ELIMIT);
    assert_int_equal(q.nargs, FV_SQL_MAX_ARGS);
    render(&q, &rc);
    assert_int_equal(rc, -FV_ELIMIT);

    /* So does a formatted piece longer than addf's buffer; reset clears it. */
    fv_sql_reset(&q);
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fv_sql_addf(&q, "%s", big);
    assert_int_equal(q.err, -FV_ELIMIT);
    fv_sql_reset(&q);
    assert_int_equal(q.err, 0);
    assert_int_equal(q.nargs, 0);
    fv_sql_add(&q, "SELECT 1");
    assert_string_equal(render(&q, &rc), "SELECT 1");
    assert_int_equal(rc, 0);
    fv_sql_fini(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_are_the_reference_columns_in_order),
        cmocka_unit_test(test_a_record_becomes_a_row_that_round_trips),
        cmocka_unit_test(test_integers_are_little_endian_at_their_column_width),
        cmocka_unit_test(test_every_truncation_of_a_row_is_detected),
        cmocka_unit_test(test_long_strings_have_multi_byte_lengths),
        cmocka_unit_test(test_an_overlong_length_is_rejected),
        cmocka_unit_test(test_render_ch_replaces_placeholders_with_escaped_literals),
        cmocka_unit_test(test_quote_ch_escapes_quotes_backslashes_and_control_bytes),
        cmocka_unit_test(test_question_marks_inside_text_arguments_are_not_placeholders),
        cmocka_unit_test(test_argument_count_mismatches_are_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
