/* Host driver for the no_std static library: links it into a C program with
 * no Rust runtime at all (only libc) and calls its exported functions.
 * Built and run by .ci/nostd.sh when a C compiler is available. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int32_t cachee_nostd_init(void);
int32_t cachee_nostd_set(const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len);
int64_t cachee_nostd_get(const uint8_t *key, size_t key_len, uint8_t *out, size_t out_len);
int32_t cachee_nostd_remove(const uint8_t *key, size_t key_len);
size_t cachee_nostd_len(void);
int32_t cachee_nostd_typed_insert(uint32_t key, uint64_t value);
uint64_t cachee_nostd_typed_get(uint32_t key, uint64_t dflt);
int32_t cachee_nostd_selftest(void);

#define CHECK(cond)                                                    \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "nostd selftest: FAILED: %s (line %d)\n",  \
                    #cond, __LINE__);                                  \
            return 1;                                                  \
        }                                                              \
    } while (0)

static const uint8_t *u8(const char *s) { return (const uint8_t *)s; }

int main(void) {
    uint8_t out[256];
    uint8_t big[300] = {0};
    char key[32];

    CHECK(cachee_nostd_init() == 0);
    CHECK(cachee_nostd_set(u8("hello"), 5, u8("world"), 5) == 0);
    CHECK(cachee_nostd_get(u8("hello"), 5, out, sizeof out) == 5);
    CHECK(memcmp(out, "world", 5) == 0);
    CHECK(cachee_nostd_get(u8("hello"), 5, out, 2) == -5);   /* BufferTooSmall */
    CHECK(cachee_nostd_get(u8("absent"), 6, out, sizeof out) == -1);
    CHECK(cachee_nostd_set(u8(""), 0, u8("x"), 1) == -2);    /* EmptyKey */
    CHECK(cachee_nostd_set(u8("big"), 3, big, sizeof big) == -4); /* ValueTooLarge */
    CHECK(cachee_nostd_remove(u8("hello"), 5) == 1);
    CHECK(cachee_nostd_remove(u8("hello"), 5) == 0);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        CHECK(cachee_nostd_set(u8(key), (size_t)n, u8(key), (size_t)n) == 0);
    }
    /* Bounded by the region (32 KiB); the last key written is there. */
    CHECK(cachee_nostd_len() >= 1 && cachee_nostd_len() <= 100);
    CHECK(cachee_nostd_get(u8("k99"), 3, out, sizeof out) == 3);
    CHECK(memcmp(out, "k99", 3) == 0);
    CHECK(cachee_nostd_typed_insert(42, 4242) == 0);
    CHECK(cachee_nostd_typed_get(42, 0) == 4242);
    CHECK(cachee_nostd_selftest() == 0);
    printf("nostd selftest: ok (%zu entries in the byte cache)\n", cachee_nostd_len());
    return 0;
}
