/*
 * test_agg_strpool.c - the aggregator's string pool: references, id
 * reuse, index growth, and backward-shift deletion from the middle of a
 * probe cluster (including strings whose 32-bit hashes collide).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/strpool.h"

#define NAMELEN 24 /* bytes of a test name */

/* The pool's hash (FNV-1a, 32 bits), so that tests can choose strings by
 * their home slot; tests check it against the hash the pool stores. */
static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint32_t ref(struct fv_strpool *p, const char *s)
{
    return fv_strpool_ref(p, s, strlen(s));
}

/* Every index slot holds a live id whose entry is found from its home
 * slot without crossing an empty slot; the index holds exactly `live`
 * ids. */
static void check_index(const struct fv_strpool *p)
{
    uint32_t used = 0;

    for (uint32_t i = 0; i <= p->mask; i++) {
        uint32_t id = p->index[i];
        if (id == 0)
            continue;
        used++;
        assert_true(id < p->n);
        assert_true(p->ents[id].refs > 0);
        assert_non_null(p->ents[id].s);
        for (uint32_t j = p->ents[id].hash & p->mask; j != i; j = (j + 1) & p->mask)
            assert_int_not_equal(p->index[j], 0);
    }
    assert_int_equal(used, p->live);
}

/* fv_strpool_ref of s returns id (and the extra reference is given back). */
static void assert_resolves(struct fv_strpool *p, const char *s, uint32_t id)
{
    uint32_t refs = p->ents[id].refs;
    uint32_t got = ref(p, s);

    assert_int_equal(got, id);
    assert_int_equal(p->ents[id].refs, refs + 1);
    assert_string_equal(fv_strpool_get(p, id), s);
    fv_strpool_unref(p, id);
    assert_int_equal(p->ents[id].refs, refs);
}

static void test_empty_string_is_id_zero_and_never_counted(void **state)
{
    struct fv_strpool p;
    (void)state;

    assert_int_equal(fv_strpool_init(&p), 0);
    assert_int_equal(fv_strpool_ref(&p, "", 0), 0);
    assert_int_equal(fv_strpool_ref(&p, "abc", 0), 0);
    assert_string_equal(fv_strpool_get(&p, 0), "");
    assert_int_equal(fv_strpool_len(&p, 0), 0);
    fv_strpool_hold(&p, 0);
    fv_strpool_unref(&p, 0);
    fv_strpool_unref(&p, 0);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.bytes, 0);
    assert_string_equal(fv_strpool_get(&p, 0), "");
    fv_strpool_fini(&p);
}

static void test_same_string_gets_same_id_and_last_unref_frees_it(void **state)
{
    struct fv_strpool p;
    (void)state;

    assert_int_equal(fv_strpool_init(&p), 0);
    uint32_t a = ref(&p, "web-1");
    uint32_t b = ref(&p, "web-2");
    assert_int_not_equal(a, 0);
    assert_int_not_equal(b, 0);
    assert_int_not_equal(a, b);
    /* Not NUL-terminated input: only len bytes count. */
    assert_int_equal(fv_strpool_ref(&p, "web-1xyz", 5), a);
    fv_strpool_hold(&p, a);
    assert_int_equal(p.ents[a].refs, 3);
    assert_int_equal(p.live, 2);
    assert_int_equal(p.bytes, 12);
    assert_int_equal(fv_strpool_len(&p, a), 5);
    assert_string_equal(fv_strpool_get(&p, a), "web-1");

    fv_strpool_unref(&p, a);
    fv_strpool_unref(&p, a);
    assert_int_equal(p.live, 2);
    assert_string_equal(fv_strpool_get(&p, a), "web-1");
    fv_strpool_unref(&p, a);
    assert_int_equal(p.live, 1);
    assert_int_equal(p.bytes, 6);
    assert_null(fv_strpool_get(&p, a));
    assert_int_equal(p.nfree, 1);
    assert_resolves(&p, "web-2", b);

    /* A freed id is reused for the next new string; the old one is new again. */
    uint32_t c = ref(&p, "db-0");
    assert_int_equal(c, a);
    assert_string_equal(fv_strpool_get(&p, c), "db-0");
    assert_int_equal(p.nfree, 0);
    uint32_t d = ref(&p, "web-1");
    assert_int_not_equal(d, c);
    assert_int_not_equal(d, b);
    assert_int_equal(p.ents[d].refs, 1);
    assert_int_equal(p.live, 3);
    check_index(&p);
    fv_strpool_fini(&p);
}

static void test_binary_strings_with_zero_bytes_are_kept_whole(void **state)
{
    struct fv_strpool p;
    const char a[16] = {10, 96, 0, 10};
    const char b[16] = {10, 96, 0, 11};
    (void)state;

    assert_int_equal(fv_strpool_init(&p), 0);
    uint32_t ia = fv_strpool_ref(&p, a, 16);
    uint32_t ib = fv_strpool_ref(&p, b, 16);
    assert_int_not_equal(ia, ib);
    assert_int_equal(fv_strpool_ref(&p, a, 16), ia);
    assert_int_equal(fv_strpool_len(&p, ia), 16);
    assert_memory_equal(fv_strpool_get(&p, ia), a, 16);
    assert_memory_equal(fv_strpool_get(&p, ib), b, 16);
    fv_strpool_fini(&p);
}

static void test_many_strings_grow_the_index_and_all_stay_findable(void **state)
{
    enum { N = 20000 };
    struct fv_strpool p;
    uint32_t *ids = calloc(N, sizeof(*ids));
    char s[32];
    (void)state;

    assert_non_null(ids);
    assert_int_equal(fv_strpool_init(&p), 0);
    uint32_t initial_mask = p.mask;
    for (int i = 0; i < N; i++) {
        snprintf(s, sizeof(s), "pod-%d", i);
        ids[i] = ref(&p, s);
        assert_int_equal(ids[i], (uint32_t)i + 1);
        assert_int_equal(p.ents[ids[i]].hash, fnv1a(s, strlen(s)));
    }
    assert_true(p.mask > initial_mask);
    /* Load stays at most 3/4. */
    assert_true((uint64_t)p.live * 4 <= (uint64_t)(p.mask + 1) * 3);
    assert_int_equal(p.live, N);
    check_index(&p);
    for (int i = 0; i < N; i++) {
        snprintf(s, sizeof(s), "pod-%d", i);
        assert_resolves(&p, s, ids[i]);
    }
    fv_strpool_fini(&p);
    free(ids);
}

/* Finds `want` strings "<prefix><n>" whose home slot under mask is slot. */
static void strings_with_home(const char *prefix, uint32_t mask, uint32_t slot, int want,
                              char out[][NAMELEN])
{
    int got = 0;
    for (int n = 0; got < want; n++) {
        char s[NAMELEN];
        snprintf(s, sizeof(s), "%s%d", prefix, n);
        if ((fnv1a(s, strlen(s)) & mask) == slot)
            memcpy(out[got++], s, sizeof(s));
    }
}

static void test_deleting_inside_a_probe_cluster_keeps_the_rest_findable(void **state)
{
    /* Three runs on the initial 256-slot index: 4 strings homed at 10, 3 at
     * 11 and 2 at 13 make one cluster 10..18; 3 at 254, 2 at 255 and 2 at 0
     * make one that wraps around the end of the index (254..4). */
    static const struct {
        uint32_t home;
        int n;
    } runs[] = {{10, 4}, {11, 3}, {13, 2}, {254, 3}, {255, 2}, {0, 2}};
    char names[16][NAMELEN];
    uint32_t ids[16];
    int total = 0;
    struct fv_strpool p;
    (void)state;

    assert_int_equal(fv_strpool_init(&p), 0);
    assert_int_equal(p.mask, 255);
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "h%u-", runs[r].home);
        strings_with_home(prefix, p.mask, runs[r].home, runs[r].n, names + total);
        total += runs[r].n;
    }
    assert_int_equal(total, 16);

    /* Every order of deletion: delete one, check, re-add, for each string,
     * then delete them all front-to-back and back-to-front. */
    for (int victim = 0; victim < total; victim++) {
        for (int i = 0; i < total; i++)
            ids[i] = ref(&p, names[i]);
        assert_int_equal(p.mask, 255); /* no growth: the clusters stay as built */
        fv_strpool_unref(&p, ids[victim]);
        check_index(&p);
        for (int i = 0; i < total; i++)
            if (i != victim)
                assert_resolves(&p, names[i], ids[i]);
        for (int i = 0; i < total; i++)
            if (i != victim)
                fv_strpool_unref(&p, ids[i]);
        assert_int_equal(p.live, 0);
        for (uint32_t i = 0; i <= p.mask; i++)
            assert_int_equal(p.index[i], 0);
    }
    for (int dir = 0; dir < 2; dir++) {
        for (int i = 0; i < total; i++)
            ids[i] = ref(&p, names[i]);
        for (int k = 0; k < total; k++) {
            int v = dir == 0 ? k : total - 1 - k;
            fv_strpool_unref(&p, ids[v]);
            check_index(&p);
            for (int k2 = k + 1; k2 < total; k2++) {
                int i = dir == 0 ? k2 : total - 1 - k2;
                assert_resolves(&p, names[i], ids[i]);
            }
        }
        assert_int_equal(p.live, 0);
    }
    fv_strpool_fini(&p);
}

/* A small deterministic generator (xorshift32). */
static uint32_t rnd(uint32_t *st)
{
    uint32_t x = *st;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *st = x;
    return x;
}

struct hashed {
    uint32_t h;
    uint32_t n;
};

static int by_hash(const void *a, const void *b)
{
    const struct hashed *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->n < y->n ? -1 : (x->n > y->n);
}

/* A name of ten lowercase letters that depends only on n. */
static void random_name(uint32_t n, char *out)
{
    uint32_t st = n * 2654435761u + 1;

    for (int k = 0; k < 10; k++)
        out[k] = (char)('a' + rnd(&st) % 26);
    out[10] = '\0';
}

/* Fills out with up to cap distinct strings that share their full 32-bit
 * hash with another string in out, found by the birthday bound among
 * random names (sequential names like "c123" never collide under FNV-1a). */
static int colliding_strings(char (*out)[NAMELEN], int cap)
{
    enum { M = 400000 };
    struct hashed *hs = malloc(M * sizeof(*hs));
    char a[NAMELEN], b[NAMELEN];
    int got = 0;

    assert_non_null(hs);
    for (uint32_t n = 0; n < M; n++) {
        random_name(n, a);
        hs[n] = (struct hashed){fnv1a(a, strlen(a)), n};
    }
    qsort(hs, M, sizeof(*hs), by_hash);
    for (uint32_t i = 0; i + 1 < M && got + 2 <= cap; i++) {
        if (hs[i].h != hs[i + 1].h)
            continue;
        random_name(hs[i].n, a);
        random_name(hs[i + 1].n, b);
        if (strcmp(a, b) == 0)
            continue;
        memcpy(out[got++], a, NAMELEN);
        memcpy(out[got++], b, NAMELEN);
        i++;
    }
    free(hs);
    return got;
}

static void test_random_halves_removed_from_thousands_with_colliding_hashes(void **state)
{
    enum { PLAIN = 6000, MAXC = 64, N = PLAIN + MAXC };
    char(*names)[NAMELEN] = calloc(N, sizeof(*names));
    uint32_t *ids = calloc(N, sizeof(*ids));
    unsigned char *live = calloc(N, 1);
    uint32_t seed = 12345;
    struct fv_strpool p;
    (void)state;

    assert_non_null(names);
    assert_non_null(ids);
    assert_non_null(live);
    int nc = colliding_strings(names + PLAIN, MAXC);
    assert_true(nc >= 8);
    for (int i = 0; i < PLAIN; i++)
        snprintf(names[i], NAMELEN, "n%d", i);
    int n = PLAIN + nc;

    assert_int_equal(fv_strpool_init(&p), 0);
    for (int round = 0; round < 6; round++) {
        /* (Re-)insert everything that is not live, interleaving the
         * colliding names among the others. */
        for (int i = 0; i < n; i++) {
            int k = (i * 7919) % n; /* 7919 is prime and n is not a multiple */
            if (live[k])
                continue;
            ids[k] = ref(&p, names[k]);
            assert_int_not_equal(ids[k], 0);
            live[k] = 1;
        }
        /* Colliding pairs really collide in the pool. */
        for (int i = PLAIN; i + 1 < n; i += 2)
            assert_int_equal(p.ents[ids[i]].hash, p.ents[ids[i + 1]].hash);
        check_index(&p);
        /* Remove a random half. */
        for (int i = 0; i < n; i++) {
            if (rnd(&seed) & 1) {
                fv_strpool_unref(&p, ids[i]);
                live[i] = 0;
            }
        }
        check_index(&p);
        uint32_t count = 0;
        for (int i = 0; i < n; i++) {
            if (!live[i])
                continue;
            count++;
            assert_resolves(&p, names[i], ids[i]);
        }
        assert_int_equal(p.live, count);
        /* Distinct live strings have distinct ids. */
        for (int i = PLAIN; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (live[i] && live[j])
                    assert_int_not_equal(ids[i], ids[j]);
    }
    fv_strpool_fini(&p);
    free(live);
    free(ids);
    free(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_string_is_id_zero_and_never_counted),
        cmocka_unit_test(test_same_string_gets_same_id_and_last_unref_frees_it),
        cmocka_unit_test(test_binary_strings_with_zero_bytes_are_kept_whole),
        cmocka_unit_test(test_many_strings_grow_the_index_and_all_stay_findable),
        cmocka_unit_test(test_deleting_inside_a_probe_cluster_keeps_the_rest_findable),
        cmocka_unit_test(test_random_halves_removed_from_thousands_with_colliding_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
