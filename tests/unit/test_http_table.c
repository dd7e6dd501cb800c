/*
 * test_http_table.c - the command-line output helpers of src/http: the
 * aligned text table (http/table.h) and the JSON-to-YAML printer
 * (http/yaml_out.h).
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <yaml.h>

#include "http/table.h"
#include "http/yaml_out.h"

/* Output captured from a FILE. */
struct capture {
    FILE *f;
    char *text;
    size_t len;
};

static void capture_open(struct capture *c)
{
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    assert_non_null(c->f);
}

/* Closes the stream; c->text holds everything written (freed by the caller). */
static void capture_close(struct capture *c)
{
    assert_int_equal(fclose(c->f), 0);
}

static char *table_text(struct fv_table *t)
{
    struct capture c;

    capture_open(&c);
    assert_int_equal(fv_table_print(t, c.f), 0);
    capture_close(&c);
    return c.text;
}

static void test_columns_are_as_wide_as_their_widest_cell(void **state)
{
    const char *hdr[] = {"SRC_IP", "SPORT", "PROTO"};
    const char *r1[] = {"10.244.1.5", "43210", "TCP"};
    const char *r2[] = {"fd00:10:244:1::5", "53", "UDP"};
    struct fv_table t;
    char *out;

    (void)state;
    fv_table_init(&t, 3);
    assert_int_equal(fv_table_add_row(&t, hdr), 0);
    assert_int_equal(fv_table_add_row(&t, r1), 0);
    assert_int_equal(fv_table_add_row(&t, r2), 0);
    out = table_text(&t);
    assert_string_equal(out, "SRC_IP             SPORT   PROTO\n"
                             "10.244.1.5         43210   TCP\n"
                             "fd00:10:244:1::5   53      UDP\n");
    free(out);
    fv_table_fini(&t);
}

static void test_empty_cells_print_as_nothing_and_no_line_ends_in_spaces(void **state)
{
    const char *hdr[] = {"A", "B", "C", "D"};
    const char *r1[] = {"", "b", NULL, ""};
    const char *r2[] = {"a", NULL, NULL, NULL};
    const char *r3[] = {"a", "", "c", "ddd"};
    struct fv_table t;
    char *out;

    (void)state;
    fv_table_init(&t, 4);
    assert_int_equal(fv_table_add_row(&t, hdr), 0);
    assert_int_equal(fv_table_add_row(&t, r1), 0);
    assert_int_equal(fv_table_add_row(&t, r2), 0);
    assert_int_equal(fv_table_add_row(&t, r3), 0);
    out = table_text(&t);
    assert_string_equal(out, "A   B   C   D\n"
                             "    b\n"
                             "a\n"
                             "a       c   ddd\n");
    free(out);
    fv_table_fini(&t);
}

static void test_width_counts_characters_not_bytes(void **state)
{
    const char *hdr[] = {"NAME", "X"};
    const char *r1[] = {"caf\xc3\xa9-\xc3\xa9", "1"}; /* "café-é": 6 characters, 8 bytes */
    struct fv_table t;
    char *out;

    (void)state;
    fv_table_init(&t, 2);
    assert_int_equal(fv_table_add_row(&t, hdr), 0);
    assert_int_equal(fv_table_add_row(&t, r1), 0);
    out = table_text(&t);
    assert_string_equal(out, "NAME     X\n"
                             "caf\xc3\xa9-\xc3\xa9   1\n");
    free(out);
    fv_table_fini(&t);
}

static void test_control_characters_in_cells_cannot_break_lines(void **state)
{
    const char *hdr[] = {"POD", "NS"};
    const char *r1[] = {"evil\n\x1b[2Jpod\t", "ns"};
    struct fv_table t;
    char *out;

    (void)state;
    fv_table_init(&t, 2);
    assert_int_equal(fv_table_add_row(&t, hdr), 0);
    assert_int_equal(fv_table_add_row(&t, r1), 0);
    out = table_text(&t);
    assert_string_equal(out, "POD             NS\n"
                             "evil??[2Jpod?   ns\n");
    free(out);
    fv_table_fini(&t);
}

static void test_header_only_table_and_reuse_after_fini(void **state)
{
    const char *hdr[] = {"ONE", "TWO"};
    struct fv_table t;
    char *out;

    (void)state;
    fv_table_init(&t, 2);
    out = table_text(&t);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(fv_table_add_row(&t, hdr), 0);
    out = table_text(&t);
    assert_string_equal(out, "ONE   TWO\n");
    free(out);
    fv_table_fini(&t);
    fv_table_fini(&t); /* twice is harmless */
    assert_int_equal(t.nrows, 0);
}

static void test_many_rows_grow_the_table(void **state)
{
    const char *hdr[] = {"N"};
    struct fv_table t;
    char num[16], *out;
    const char *row[1] = {num};

    (void)state;
    fv_table_init(&t, 1);
    assert_int_equal(fv_table_add_row(&t, hdr), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(num, sizeof(num), "%d", i);
        assert_int_equal(fv_table_add_row(&t, row), 0);
    }
    assert_int_equal(t.nrows, 1001);
    out = table_text(&t);
    assert_non_null(strstr(out, "\n999\n"));
    free(out);
    fv_table_fini(&t);
}

/* ------------------------------------------------------------------------
 * YAML
 * ------------------------------------------------------------------------ */

static char *yaml_of(const json_t *v)
{
    struct capture c;

    capture_open(&c);
    assert_int_equal(fv_yaml_out_print(v, c.f), 0);
    capture_close(&c);
    return c.text;
}

/* The YAML line printed for {"k": s}. */
static char *yaml_of_string(const char *s, size_t n)
{
    json_t *v = json_pack("{s:s%}", "k", s, n);
    char *out;

    assert_non_null(v);
    out = yaml_of(v);
    json_decref(v);
    return out;
}

static void test_yaml_quotes_strings_a_reader_would_take_for_something_else(void **state)
{
    static const char *const cases[][2] = {
        {"", "k: \"\"\n"},
        {"yes", "k: \"yes\"\n"},
        {"No", "k: \"No\"\n"},
        {"TRUE", "k: \"TRUE\"\n"},
        {"off", "k: \"off\"\n"},
        {"y", "k: \"y\"\n"},
        {"null", "k: \"null\"\n"},
        {"~", "k: \"~\"\n"},
        {"123", "k: \"123\"\n"},
        {"-7", "k: \"-7\"\n"},
        {"1.5", "k: \"1.5\"\n"},
        {".5", "k: \".5\"\n"},
        {"1e3", "k: \"1e3\"\n"},
        {"0x1F", "k: \"0x1F\"\n"},
        {"0o17", "k: \"0o17\"\n"},
        {"1_000", "k: \"1_000\"\n"},
        {"1:30", "k: \"1:30\"\n"},
        {".inf", "k: \".inf\"\n"},
        {"-.Inf", "k: \"-.Inf\"\n"},
        {".NaN", "k: \".NaN\"\n"},
        {"2026-01-02", "k: \"2026-01-02\"\n"},
        {"a: b", "k: \"a: b\"\n"},
        {"a #b", "k: \"a #b\"\n"},
        {"end:", "k: \"end:\"\n"},
        {"- a", "k: \"- a\"\n"},
        {"*ref", "k: \"*ref\"\n"},
        {"&anchor", "k: \"&anchor\"\n"},
        {"!tag", "k: \"!tag\"\n"},
        {"{x}", "k: \"{x}\"\n"},
        {"[x]", "k: \"[x]\"\n"},
        {"#x", "k: \"#x\"\n"},
        {"'q'", "k: \"'q'\"\n"},
        {"@x", "k: \"@x\"\n"},
        {" lead", "k: \" lead\"\n"},
        {"trail ", "k: \"trail \"\n"},
        {"\"q\" \\", "k: \"\\\"q\\\" \\\\\"\n"},
        {"two\nlines", "k: \"two\\nlines\"\n"},
        {"tab\there", "k: \"tab\\there\"\n"},
        {"bell\x07", "k: \"bell\\a\"\n"},
        {"\x01", "k: \"\\x01\"\n"},
        {"del\x7f", "k: \"del\\x7F\"\n"},
        {"nel\xc2\x85", "k: \"nel\\x85\"\n"},
        {"ls\xe2\x80\xa8", "k: \"ls\\L\"\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = yaml_of_string(cases[i][0], strlen(cases[i][0]));
        assert_string_equal(out, cases[i][1]);
        free(out);
    }
}

static void test_yaml_leaves_ordinary_strings_plain(void **state)
{
    static const char *const plain[] = {
        "web-0",
        "10.244.1.5",
        "fd00:10:244:1::5",
        "2001:db8::10",
        "backend/api:http",
        "ICMPv6",
        "a:b",
        "a#b",
        "caf\xc3\xa9",
        "1.2.3",
        "v1.5",
        "node-1 (ready)",
        "yesterday",
        "e5",
        "say \"hi\"",
        "x-1_000",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        char want[64];
        char *out = yaml_of_string(plain[i], strlen(plain[i]));
        snprintf(want, sizeof(want), "k: %s\n", plain[i]);
        assert_string_equal(out, want);
        free(out);
    }
}

static void test_yaml_keys_are_quoted_by_the_same_rule(void **state)
{
    json_t *v = json_pack("{s:i,s:i,s:i}", "yes", 1, "a: b", 2, "plain", 3);
    char *out;

    (void)state;
    out = yaml_of(v);
    assert_string_equal(out, "\"yes\": 1\n\"a: b\": 2\nplain: 3\n");
    free(out);
    json_decref(v);
}

static void test_yaml_nests_objects_and_arrays(void **state)
{
    json_t *v = json_loads("{\"count\":2,\"truncated\":false,\"note\":null,"
                           "\"records\":[{\"src\":\"10.0.0.1\",\"port\":443,\"rate\":1.5,"
                           "\"tags\":[\"a\",\"yes\"],\"meta\":{\"k\":\"v\",\"empty\":{}}},"
                           "{\"src\":\"fd00::1\",\"list\":[]}],"
                           "\"matrix\":[[1,2],[],[[3]]],\"deep\":{\"x\":{\"z\":[{}]}}}",
                           0, NULL);
    char *out;

    (void)state;
    assert_non_null(v);
    out = yaml_of(v);
    assert_string_equal(out, "count: 2\n"
                             "truncated: false\n"
                             "note: null\n"
                             "records:\n"
                             "  - src: 10.0.0.1\n"
                             "    port: 443\n"
                             "    rate: 1.5\n"
                             "    tags:\n"
                             "      - a\n"
                             "      - \"yes\"\n"
                             "    meta:\n"
                             "      k: v\n"
                             "      empty: {}\n"
                             "  - src: fd00::1\n"
                             "    list: []\n"
                             "matrix:\n"
                             "  - - 1\n"
                             "    - 2\n"
                             "  - []\n"
                             "  - - - 3\n"
                             "deep:\n"
                             "  x:\n"
                             "    z:\n"
                             "      - {}\n");
    free(out);
    json_decref(v);
}

static void test_yaml_top_level_scalars_and_empty_containers(void **state)
{
    json_t *arr = json_array(), *obj = json_object(), *str = json_string("123");
    json_t *top = json_pack("[s,i]", "x", 1);
    char *out;

    (void)state;
    out = yaml_of(arr);
    assert_string_equal(out, "[]\n");
    free(out);
    out = yaml_of(obj);
    assert_string_equal(out, "{}\n");
    free(out);
    out = yaml_of(str);
    assert_string_equal(out, "\"123\"\n");
    free(out);
    out = yaml_of(top);
    assert_string_equal(out, "- x\n- 1\n");
    free(out);
    json_decref(arr);
    json_decref(obj);
    json_decref(str);
    json_decref(top);
}

/* The value of the only scalar after the key in a one-entry mapping, as a
 * real YAML parser (libyaml) reads it back; *plain says whether it was a
 * plain scalar. */
static char *parse_back(const char *text, size_t *len, bool *plain)
{
    yaml_parser_t p;
    yaml_event_t ev;
    char *value = NULL;
    int scalars = 0;
    bool done = false;

    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    while (!done) {
        assert_true(yaml_parser_parse(&p, &ev));
        if (ev.type == YAML_SCALAR_EVENT && ++scalars == 2) {
            *len = ev.data.scalar.length;
            value = malloc(*len + 1);
            memcpy(value, ev.data.scalar.value, *len + 1);
            *plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    assert_non_null(value);
    return value;
}

static void test_yaml_strings_read_back_unchanged_by_libyaml(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        {"plain", 5},        {"a: b", 4},      {"\"\\", 2},         {"x\ny\r\tz", 7},
        {"\x01\x1b\x7f", 3}, {"nul\0byte", 8}, {"\xe2\x80\xa9", 3}, {"\xef\xbb\xbfx", 4},
        {"caf\xc3\xa9", 5},  {" ", 1},         {"- ", 2},           {"10.0.0.1", 8},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = yaml_of_string(cases[i].s, cases[i].n), *back;
        size_t len;
        bool plain;

        back = parse_back(out, &len, &plain);
        assert_int_equal(len, cases[i].n);
        assert_memory_equal(back, cases[i].s, cases[i].n);
        free(back);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_are_as_wide_as_their_widest_cell),
        cmocka_unit_test(test_empty_cells_print_as_nothing_and_no_line_ends_in_spaces),
        cmocka_unit_test(test_width_counts_characters_not_bytes),
        cmocka_unit_test(test_control_characters_in_cells_cannot_break_lines),
        cmocka_unit_test(test_header_only_table_and_reuse_after_fini),
        cmocka_unit_test(test_many_rows_grow_the_table),
        cmocka_unit_test(test_yaml_quotes_strings_a_reader_would_take_for_something_else),
        cmocka_unit_test(test_yaml_leaves_ordinary_strings_plain),
        cmocka_unit_test(test_yaml_keys_are_quoted_by_the_same_rule),
        cmocka_unit_test(test_yaml_nests_objects_and_arrays),
        cmocka_unit_test(test_yaml_top_level_scalars_and_empty_containers),
        cmocka_unit_test(test_yaml_strings_read_back_unchanged_by_libyaml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
