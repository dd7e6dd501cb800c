/*
 * fmt.h - decoded IPFIX values as JSON or human-readable text.
 *
 * Values are rendered by their registry type: integers and date-times as
 * numbers (the NTP-based micro- and nanosecond date-times as micro- and
 * nanoseconds since the Unix epoch), floats as numbers (NaN and infinities
 * as strings), booleans as true/false, addresses as strings, strings as
 * (escaped) strings; octet arrays, lists, unknown elements and values
 * whose length does not fit their type as lowercase hex strings.  Unknown
 * elements are named ie<pen>_<id>.
 *
 *     fv_ipfix_fmt_json_record(&sb, rec, values);   // {"octetDeltaCount":42,...}
 *
 * Appends to a caller-owned fv_sbuf; returns 0 or the sbuf's error.
 */
#ifndef FV_IPFIX_FMT_H
#define FV_IPFIX_FMT_H

#include "base/sbuf.h"
#include "ipfix/ipfix.h"

/* The field's name: the registry name or ie<pen>_<id>. */
int fv_ipfix_fmt_name(struct fv_sbuf *b, const struct fv_ipfix_field *f);

/* The value as a JSON value. */
int fv_ipfix_fmt_json_value(struct fv_sbuf *b, const struct fv_ipfix_field *f,
                            const struct fv_ipfix_value *v);

/* The value for people: like JSON, but strings unquoted. */
int fv_ipfix_fmt_text_value(struct fv_sbuf *b, const struct fv_ipfix_field *f,
                            const struct fv_ipfix_value *v);

/* The whole record as a JSON object of name:value pairs. */
int fv_ipfix_fmt_json_record(struct fv_sbuf *b, const struct fv_ipfix_rec *rec,
                             const struct fv_ipfix_value *values);

#endif
