/*
 * test_sbuf.c - the bounded string buffer (base/sbuf.h) and its JSON
 * string escaping.
 */
#include "testutil.h"

#include <errno.h>

static void test_append_up_to_max_succeeds_and_past_it_fails(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 10);
    assert_int_equal(fv_sbuf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10);
    assert_int_equal(b.err, 0);
    assert_int_equal(fv_sbuf_putc(&b, 'x'), -FV_ELIMIT);
    /* The failed append changed nothing and is remembered. */
    assert_int_equal(b.len, 10);
    assert_string_equal(b.p, "0123456789");
    assert_int_equal(b.err, -FV_ELIMIT);
    assert_int_equal(fv_sbuf_append(&b, "", 0), 0);
    assert_int_equal(b.err, -FV_ELIMIT);
    fv_sbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.err, 0);
    assert_string_equal(b.p, "");
    fv_sbuf_fini(&b);
    assert_null(b.p);
}

static void test_first_error_is_kept_until_reset(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 4);
    assert_int_equal(fv_sbuf_puts(&b, "hello"), -FV_ELIMIT);
    assert_int_equal(fv_sbuf_puts(&b, "hi"), 0); /* still fits */
    assert_int_equal(b.err, -FV_ELIMIT);
    assert_string_equal(b.p, "hi");
    fv_sbuf_fini(&b);
}

static void test_buffer_grows_past_its_first_allocation(void **state)
{
    struct fv_sbuf b;
    char chunk[100];

    (void)state;
    memset(chunk, 'a', sizeof(chunk));
    fv_sbuf_init(&b, 100000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fv_sbuf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.p[b.len], '\0');
    assert_int_equal(fv_sbuf_putc(&b, 'a'), -FV_ELIMIT);
    fv_sbuf_fini(&b);
}

static void test_printf_respects_max(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 8);
    assert_int_equal(fv_sbuf_printf(&b, "%d-%s", 42, "ab"), 0);
    assert_string_equal(b.p, "42-ab");
    assert_int_equal(fv_sbuf_printf(&b, "%s", "xyzw"), -FV_ELIMIT);
    assert_string_equal(b.p, "42-ab");
    assert_int_equal(fv_sbuf_printf(&b, "%s", "xyz"), 0);
    assert_string_equal(b.p, "42-abxyz");
    fv_sbuf_fini(&b);
}

static void test_integers_and_hex_format_exactly(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 1024);
    fv_sbuf_put_u64(&b, 0);
    fv_sbuf_putc(&b, ' ');
    fv_sbuf_put_u64(&b, UINT64_MAX);
    fv_sbuf_putc(&b, ' ');
    fv_sbuf_put_i64(&b, INT64_MIN);
    fv_sbuf_putc(&b, ' ');
    fv_sbuf_put_i64(&b, -1);
    fv_sbuf_putc(&b, ' ');
    fv_sbuf_put_i64(&b, INT64_MAX);
    fv_sbuf_putc(&b, ' ');
    fv_sbuf_put_hex(&b, (const uint8_t *)"\x00\x9f\xff", 3);
    fv_sbuf_put_hex(&b, NULL, 0);
    assert_string_equal(b.p, "0 18446744073709551615 -9223372036854775808 -1 "
                             "9223372036854775807 009fff");
    fv_sbuf_fini(&b);
}

/* Formats s (n bytes) as a JSON string into a fresh buffer. */
static const char *json(struct fv_sbuf *b, const char *s, size_t n)
{
    fv_sbuf_reset(b);
    assert_int_equal(fv_sbuf_put_json_str(b, s, n), 0);
    return b->p;
}

#define JSON(b, lit) json((b), (lit), sizeof(lit) - 1)

static void test_json_string_escapes_quotes_backslashes_and_controls(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 4096);
    assert_string_equal(JSON(&b, ""), "\"\"");
    assert_string_equal(JSON(&b, "plain ascii ~"), "\"plain ascii ~\"");
    assert_string_equal(JSON(&b, "say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
    assert_string_equal(JSON(&b, "a\nb\tc\rd"), "\"a\\u000ab\\u0009c\\u000dd\"");
    assert_string_equal(JSON(&b, "\x01\x1f"), "\"\\u0001\\u001f\"");
    assert_string_equal(JSON(&b, "nul\0inside"), "\"nul\\u0000inside\"");
    assert_string_equal(JSON(&b, "del\x7f"), "\"del\x7f\""); /* valid in JSON as is */
    fv_sbuf_fini(&b);
}

static void test_json_string_keeps_valid_utf8(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 4096);
    assert_string_equal(JSON(&b, "caf\xc3\xa9"), "\"caf\xc3\xa9\"");           /* U+00E9 */
    assert_string_equal(JSON(&b, "\xe2\x82\xac"), "\"\xe2\x82\xac\"");         /* U+20AC */
    assert_string_equal(JSON(&b, "\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\""); /* U+1F600 */
    assert_string_equal(JSON(&b, "\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
    assert_string_equal(JSON(&b, "\xef\xbf\xbd"), "\"\xef\xbf\xbd\"");         /* U+FFFD */
    fv_sbuf_fini(&b);
}

static void test_json_string_replaces_invalid_utf8_bytewise(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 4096);
    assert_string_equal(JSON(&b, "\x80"), "\"\\ufffd\""); /* lone continuation */
    assert_string_equal(JSON(&b, "a\xff"
                                 "b"),
                        "\"a\\ufffdb\"");                              /* never valid */
    assert_string_equal(JSON(&b, "\xe2\x82"), "\"\\ufffd\\ufffd\"");   /* truncated at end */
    assert_string_equal(JSON(&b, "\xe2\x82x"), "\"\\ufffd\\ufffdx\""); /* truncated inside */
    assert_string_equal(JSON(&b, "\xc0\x80"), "\"\\ufffd\\ufffd\"");   /* overlong NUL */
    assert_string_equal(JSON(&b, "\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\""); /* overlong */
    assert_string_equal(JSON(&b, "\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    assert_string_equal(JSON(&b, "\xf4\x90\x80\x80"),
                        "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* past U+10FFFF */
    assert_string_equal(JSON(&b, "\xf8\x88\x80\x80\x80"),
                        "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\""); /* 5-byte form */
    fv_sbuf_fini(&b);
}

/* The limit is about what is written: a short string fits a buffer with
 * room for its escaped form, even if every byte could have needed six. */
static void test_json_string_fits_when_its_escaped_form_fits(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 12);
    assert_int_equal(fv_sbuf_put_json_str(&b, "0123456789", 10), 0);
    assert_string_equal(b.p, "\"0123456789\"");
    fv_sbuf_reset(&b);
    assert_int_equal(fv_sbuf_put_json_str(&b, "\n\n", 2), -FV_ELIMIT); /* 2 + 12 > 12 */
    fv_sbuf_fini(&b);
    fv_sbuf_init(&b, 14);
    assert_int_equal(fv_sbuf_put_json_str(&b, "\n\n", 2), 0);
    assert_string_equal(b.p, "\"\\u000a\\u000a\"");
    fv_sbuf_fini(&b);
}

static void test_json_string_past_max_fails_and_leaves_content(void **state)
{
    struct fv_sbuf b;

    (void)state;
    fv_sbuf_init(&b, 8);
    assert_int_equal(fv_sbuf_puts(&b, "ab"), 0);
    assert_int_equal(fv_sbuf_put_json_str(&b, "abcde", 5), -FV_ELIMIT);
    assert_string_equal(b.p, "ab");
    assert_int_equal(b.err, -FV_ELIMIT);
    fv_sbuf_fini(&b);
}

static void test_strerror_names_codes_and_errnos(void **state)
{
    (void)state;
    assert_string_equal(fv_strerror(0), "success");
    assert_string_equal(fv_strerror(-FV_ETRUNC), "truncated input");
    assert_string_equal(fv_strerror(-FV_EEND), "end of iteration");
    assert_string_equal(fv_strerror(-ENOMEM), strerror(ENOMEM));
    assert_string_equal(fv_strerror(-FV_E_LAST_), "unknown error");
    assert_string_equal(fv_strerror(5), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_up_to_max_succeeds_and_past_it_fails),
        cmocka_unit_test(test_first_error_is_kept_until_reset),
        cmocka_unit_test(test_buffer_grows_past_its_first_allocation),
        cmocka_unit_test(test_printf_respects_max),
        cmocka_unit_test(test_integers_and_hex_format_exactly),
        cmocka_unit_test(test_json_string_escapes_quotes_backslashes_and_controls),
        cmocka_unit_test(test_json_string_keeps_valid_utf8),
        cmocka_unit_test(test_json_string_replaces_invalid_utf8_bytewise),
        cmocka_unit_test(test_json_string_fits_when_its_escaped_form_fits),
        cmocka_unit_test(test_json_string_past_max_fails_and_leaves_content),
        cmocka_unit_test(test_strerror_names_codes_and_errnos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
