// Restricted unpickler: reads what torch.save writes, never calls anything, refuses every
// global outside the allowlist by name, survives truncation and bit flips.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pickle.h"
#include "sembed/common.h"
#include "testutil.h"

static char g_log[4096];
static void capture(enum sembed_log_level l, const char *m, void *u) {
    (void)l; (void)u;
    snprintf(g_log, sizeof g_log, "%s", m);
}

static void *fixture(const char *name, size_t *len) {
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/tests/fixtures/pickle/%s", tu_source_dir(), name) > 0);
    void *b = tu_read_file(p, len);
    cr_assert(b, "cannot read %s (regenerate with models/gen/make_fixtures.py --committed)", p);
    free(p);
    return b;
}

Test(pickle, torch_state_dict) {
    size_t len;
    void *b = fixture("tiny_data.pkl", &len);
    struct sp_state_dict sd;
    int rc = sp_load_state_dict(b, len, "tiny_data.pkl", &sd);
    cr_assert_eq(rc, 0, "rc %s", sembed_strerror(rc));
    cr_assert_eq(sd.n, 3);
    cr_assert_str_eq(sd.t[0].name, "a.weight");
    cr_assert_eq(sd.t[0].stype, SP_FLOAT);
    cr_assert_eq(sd.t[0].n_dims, 2);
    cr_assert_eq(sd.t[0].sizes[0], 2);
    cr_assert_eq(sd.t[0].sizes[1], 3);
    cr_assert_eq(sd.t[0].strides[0], 3);
    cr_assert_eq(sd.t[0].storage_numel, 6);
    cr_assert_str_eq(sd.t[1].name, "a.bias");
    cr_assert_eq(sd.t[1].stype, SP_HALF);
    cr_assert_str_eq(sd.t[2].name, "b"); // a transposed view: strides (1, 4)
    cr_assert_eq(sd.t[2].strides[0], 1);
    cr_assert_eq(sd.t[2].strides[1], 4);
    sp_free(&sd);
    free(b);
}

static void refused(const char *file, int want, const char *name) {
    size_t len;
    void *b = fixture(file, &len);
    struct sp_state_dict sd;
    g_log[0] = 0;
    sembed_log_set(capture, NULL);
    int rc = sp_load_state_dict(b, len, file, &sd);
    cr_assert_eq(rc, want, "%s: got %s, expected %s", file, sembed_strerror(rc), sembed_strerror(want));
    cr_assert(strstr(g_log, name), "%s: error does not name %s: %s", file, name, g_log);
    free(b);
}

Test(pickle, malicious_globals_refused_by_name) {
    refused("os_system.pkl", SEMBED_EUNSAFE, "posix.system");
    refused("eval.pkl", SEMBED_EUNSAFE, "builtins.eval");
    refused("subprocess.pkl", SEMBED_EUNSAFE, "subprocess.Popen");
}

static int run(const char *bytes, size_t n) {
    struct sp_state_dict sd;
    g_log[0] = 0;
    sembed_log_set(capture, NULL);
    int rc = sp_load_state_dict(bytes, n, "t.pkl", &sd);
    if (rc == 0) sp_free(&sd);
    return rc;
}
#define RUN(lit) run(lit, sizeof(lit) - 1)

Test(pickle, hand_written_attacks) {
    // STACK_GLOBAL naming os.system via strings, then REDUCE.
    cr_assert_eq(RUN("\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."), SEMBED_EUNSAFE);
    cr_assert(strstr(g_log, "os.system"), "%s", g_log);
    // object-building opcodes
    cr_assert_eq(RUN("\x80\x02(i__main__\nX\n."), SEMBED_EUNSAFE);
    cr_assert_eq(RUN("\x80\x02}\x81."), SEMBED_EUNSAFE);
    // REDUCE of a non-global (a dict) and of a storage class
    cr_assert_eq(RUN("\x80\x02})R."), SEMBED_EUNSAFE);
    cr_assert_eq(RUN("\x80\x02\x63torch\nFloatStorage\n)R."), SEMBED_EUNSAFE);
    // BUILD on a global (would set attributes)
    cr_assert_eq(RUN("\x80\x02\x63\x63ollections\nOrderedDict\n}b."), SEMBED_EUNSAFE);
    // structure errors
    cr_assert_eq(RUN("\x80\x02h\x05."), SEMBED_EPARSE);                 // GET of an unset memo slot
    cr_assert_eq(RUN("\x80\x02r\xff\xff\xff\x7f."), SEMBED_ETOOLONG);   // LONG_BINPUT far away (and empty stack)
    cr_assert_eq(RUN("\x80\x02."), SEMBED_EPARSE);                      // STOP on empty stack
    cr_assert_eq(RUN("\x80\x02}"), SEMBED_ETRUNCATED);                  // no STOP
    cr_assert_eq(RUN("\x80\x02X\xff\xff\xff\xff."), SEMBED_ETRUNCATED); // string past the end
    cr_assert_eq(RUN("\x80\x02K\x01."), SEMBED_EPARSE);                 // not a dict
    cr_assert_eq(RUN("\x80\x02}X\x01\x00\x00\x00" "aK\x01s."), SEMBED_EUNSUPPORTED); // value not a tensor
    cr_assert_eq(RUN("\x80\x09}."), SEMBED_EUNSUPPORTED);               // unknown protocol
    cr_assert_eq(RUN("\x80\x02\xff."), SEMBED_EUNSUPPORTED);            // unknown opcode
    // the empty state dict is fine
    cr_assert_eq(RUN("\x80\x02}."), 0);
}

Test(pickle, legacy_magic_number_gets_a_clear_error) {
    size_t len;
    void *b = fixture("tiny_legacy.bin", &len);
    struct sp_state_dict sd;
    g_log[0] = 0;
    sembed_log_set(capture, NULL);
    int rc = sp_load_state_dict(b, len, "tiny_legacy.bin", &sd);
    cr_assert_eq(rc, SEMBED_EUNSUPPORTED, "got %s", sembed_strerror(rc));
    cr_assert(strstr(g_log, "torch>=1.6"), "%s", g_log);
    free(b);
}

Test(pickle, every_truncation_and_bit_flip_is_handled) {
    size_t len;
    uint8_t *b = fixture("tiny_data.pkl", &len);
    sembed_log_set(capture, NULL);
    struct sp_state_dict sd;
    for (size_t n = 0; n < len; n++) {
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, b, n);
        cr_assert_neq(sp_load_state_dict(c, n, "t", &sd), 0, "truncation to %zu accepted", n);
        free(c);
    }
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *c = malloc(len);
            memcpy(c, b, len);
            c[i] ^= (uint8_t)(1u << bit);
            if (sp_load_state_dict(c, len, "t", &sd) == 0) sp_free(&sd);
            free(c);
        }
    free(b);
}
