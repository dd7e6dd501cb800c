/*
 * ie.c - builds the information element registry from ie_table.def.
 *
 * The static rows are copied once into one array together with the
 * derived reverse (PEN 29305) elements, sorted by (pen, id) for binary
 * search.  RFC 5103 section 6.1 lists the elements that have no reverse
 * counterpart (identifiers of the process and the template machinery);
 * everything else in the IANA block gets one.
 */
#include "ipfix/ie.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const struct fv_ie rows[] = {
#define FV_IE_ROW(pen, id, name, type) {pen, id, FV_IE_##type, 0, #name, sizeof(#name) - 1},
#include "ipfix/ie_table.def"
#undef FV_IE_ROW
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static struct fv_ie table[NROWS * 2];
static size_t table_len;
static char reverse_names[NROWS * 48];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static const char *const type_names[] = {
    "octetArray",
    "unsigned8",
    "unsigned16",
    "unsigned32",
    "unsigned64",
    "signed8",
    "signed16",
    "signed32",
    "signed64",
    "float32",
    "float64",
    "boolean",
    "macAddress",
    "string",
    "dateTimeSeconds",
    "dateTimeMilliseconds",
    "dateTimeMicroseconds",
    "dateTimeNanoseconds",
    "ipv4Address",
    "ipv6Address",
    "basicList",
    "subTemplateList",
    "subTemplateMultiList",
};

uint16_t fv_ie_type_length(enum fv_ie_type type)
{
    switch (type) {
    case FV_IE_U8:
    case FV_IE_I8:
    case FV_IE_BOOL:
        return 1;
    case FV_IE_U16:
    case FV_IE_I16:
        return 2;
    case FV_IE_U32:
    case FV_IE_I32:
    case FV_IE_F32:
    case FV_IE_DT_S:
    case FV_IE_IPV4:
        return 4;
    case FV_IE_U64:
    case FV_IE_I64:
    case FV_IE_F64:
    case FV_IE_DT_MS:
    case FV_IE_DT_US:
    case FV_IE_DT_NS:
        return 8;
    case FV_IE_MAC:
        return 6;
    case FV_IE_IPV6:
        return 16;
    default:
        return FV_IE_VARLEN;
    }
}

const char *fv_ie_type_name(enum fv_ie_type type)
{
    if ((unsigned)type < sizeof(type_names) / sizeof(type_names[0]))
        return type_names[type];
    return "unknown";
}

/* RFC 5103 section 6.1: elements that must not be reversed. */
static int reversible(uint16_t id)
{
    static const uint16_t never[] = {40,  41,  42,  130, 131, 137, 138, 141, 142, 143, 144, 145,
                                     148, 149, 160, 163, 164, 165, 166, 167, 168, 210, 211, 212,
                                     213, 214, 215, 216, 217, 239, 291, 292, 293, 403, 404, 405};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        if (never[i] == id)
            return 0;
    return 1;
}

static int cmp_ie(const void *a, const void *b)
{
    const struct fv_ie *x = a, *y = b;
    if (x->pen != y->pen)
        return x->pen < y->pen ? -1 : 1;
    return (int)x->id - (int)y->id;
}

static void build_table(void)
{
    char *names = reverse_names;

    for (size_t i = 0; i < NROWS; i++) {
        struct fv_ie ie = rows[i];
        ie.length = fv_ie_type_length((enum fv_ie_type)ie.type);
        table[table_len++] = ie;
        if (ie.pen != FV_PEN_IANA || !reversible(ie.id))
            continue;
        size_t n = strlen(ie.name);
        memcpy(names, "reverse", 7);
        memcpy(names + 7, ie.name, n + 1);
        names[7] = (char)toupper((unsigned char)names[7]);
        ie.pen = FV_PEN_REVERSE;
        ie.name = names;
        ie.name_len = (uint8_t)(7 + n);
        names += 7 + n + 1;
        table[table_len++] = ie;
    }
    qsort(table, table_len, sizeof(table[0]), cmp_ie);
}

const struct fv_ie *fv_ie_find(uint32_t pen, uint16_t id)
{
    struct fv_ie key = {.pen = pen, .id = id};

    pthread_once(&table_once, build_table);
    return bsearch(&key, table, table_len, sizeof(table[0]), cmp_ie);
}

const struct fv_ie *fv_ie_find_name(const char *name)
{
    pthread_once(&table_once, build_table);
    for (size_t i = 0; i < table_len; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

void fv_ie_foreach(void (*fn)(const struct fv_ie *ie, void *arg), void *arg)
{
    pthread_once(&table_once, build_table);
    for (size_t i = 0; i < table_len; i++)
        fn(&table[i], arg);
}
