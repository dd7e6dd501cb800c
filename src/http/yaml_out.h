/*
 * yaml_out.h - prints a JSON value (jansson) as block-style YAML, for
 * `-o yaml` output of the command-line client.
 *
 * Objects become mappings in their key order, arrays become sequences
 * ("- " items, objects in a sequence start on the dash line), empty ones
 * print as {} and [].  Numbers, true, false and null print as in JSON.
 * A string is printed plain when a YAML 1.1 or 1.2 reader would read it
 * back as the same string, and double-quoted otherwise: the empty string,
 * words a reader takes for booleans or null ("yes", "off", "null", "~"),
 * anything number- or date-like ("123", "1.5", "0x1f", "2026-01-02"),
 * strings that start with an indicator ("- a", "*x", "{"), contain ": " or
 * " #", end in ':' or have spaces at either end, and strings with control
 * characters or Unicode line breaks, which are escaped.  Keys follow the
 * same rule.
 *
 * Writing only; no state; safe from any thread for distinct FILEs.
 *
 *     json_t *v = json_loads(text, 0, NULL);
 *     fv_yaml_out_print(v, stdout);
 *     json_decref(v);
 */
#ifndef FV_HTTP_YAML_OUT_H
#define FV_HTTP_YAML_OUT_H

#include <jansson.h>
#include <stdio.h>

/* Prints v (borrowed) as a YAML document, newline-terminated.  0, or -EIO
 * when writing to out failed. */
int fv_yaml_out_print(const json_t *v, FILE *out);

#endif
