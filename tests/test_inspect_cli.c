// `sembed inspect` end to end: text and JSON output, --verify on corrupt data, truncated files,
// usage errors and exit codes.
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/semb.h"
#include "testutil.h"

static char *g_dir, *g_file;

static void make_file(void) {
    g_dir = tu_mkdtemp();
    g_file = tu_path(g_dir, "m.semb");
    struct sembed_writer *w;
    cr_assert_eq(sembed_writer_create(g_file, &w), 0);
    sembed_writer_add_str(w, "general.architecture", "bert");
    sembed_writer_add_u32(w, "bert.hidden_size", 4);
    const char *v[12] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d", "e", "f", "g", "tab\there"};
    sembed_writer_add_arr_str(w, "tokenizer.vocab", v, 12);
    sembed_writer_add_tensor(w, "embeddings.word_embeddings.weight", SEMBED_DTYPE_F32, 2, (int64_t[]){12, 4});
    sembed_writer_add_tensor(w, "encoder.layer.0.output.dense.weight", SEMBED_DTYPE_Q8_ROW, 2, (int64_t[]){4, 4});
    float e[48];
    for (int i = 0; i < 48; i++) e[i] = (float)i;
    sembed_writer_write(w, e, sizeof e);
    uint8_t q[64 + 16] = {1, 2, 3};
    sembed_writer_write(w, q, sizeof q);
    cr_assert_eq(sembed_writer_finish(w), 0);
}

static void cleanup(void) {
    tu_rmtree(g_dir);
    free(g_dir);
    free(g_file);
}

TestSuite(inspect_cli, .init = make_file, .fini = cleanup);

static int run(const char *args, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", tu_cli(), args);
    return tu_run(cmd, out);
}

Test(inspect_cli, text_output_lists_metadata_tensors_and_totals) {
    char args[1024], *out;
    snprintf(args, sizeof args, "inspect '%s'", g_file);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "general.architecture") && strstr(out, "\"bert\""), "%s", out);
    cr_assert(strstr(out, "string[12]") && strstr(out, "... 4 more"), "long array summarised: %s", out);
    cr_assert(strstr(out, "\"tab\\there\"") || strstr(out, "4 more"), "%s", out);
    cr_assert(strstr(out, "embeddings.word_embeddings.weight") && strstr(out, "[12, 4]"), "%s", out);
    cr_assert(strstr(out, "q8_row") && strstr(out, "totals by dtype"), "%s", out);
    free(out);
}

Test(inspect_cli, json_output_is_one_valid_document) {
    char args[1024], *out;
    snprintf(args, sizeof args, "inspect --json --verify '%s'", g_file);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    json_object *root = json_tokener_parse(out);
    cr_assert_not_null(root, "not JSON: %s", out);
    json_object *tensors, *meta;
    cr_assert(json_object_object_get_ex(root, "tensors", &tensors));
    cr_assert(json_object_object_get_ex(root, "metadata", &meta));
    cr_assert_eq(json_object_array_length(tensors), 2);
    json_object *t0 = json_object_array_get_idx(tensors, 0), *ok, *shape;
    cr_assert(json_object_object_get_ex(t0, "checksum_ok", &ok) && json_object_get_boolean(ok));
    cr_assert(json_object_object_get_ex(t0, "shape", &shape) && json_object_get_int(json_object_array_get_idx(shape, 0)) == 12);
    json_object_put(root);
    free(out);
}

Test(inspect_cli, verify_names_the_corrupted_tensor) {
    size_t len;
    uint8_t *b = tu_read_file(g_file, &len);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(g_file, &f), 0);
    struct sembed_tensor t;
    cr_assert_eq(sembed_file_find_tensor(f, "encoder.layer.0.output.dense.weight", &t), 0);
    size_t pos = (size_t)(sembed_file_data_offset(f) + t.offset + 1);
    sembed_file_free(f);
    b[pos] ^= 0x10;
    char *bad = tu_path(g_dir, "flipped.semb");
    tu_write_file(bad, b, len);
    char args[1024], *out;
    snprintf(args, sizeof args, "inspect --verify '%s'", bad);
    int rc = run(args, &out);
    cr_assert_neq(rc, 0, "exit status must be non-zero: %s", out);
    cr_assert(strstr(out, "encoder.layer.0.output.dense.weight") && strstr(out, "corrupt"), "%s", out);
    cr_assert_null(strstr(out, "'embeddings.word_embeddings.weight' is corrupt"), "only the flipped tensor is named: %s", out);
    free(out);
    // without --verify the structure is fine: exit 0
    snprintf(args, sizeof args, "inspect '%s'", bad);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    free(out);
    free(bad);
    free(b);
}

Test(inspect_cli, truncated_file_named_and_nonzero) {
    size_t len;
    uint8_t *b = tu_read_file(g_file, &len);
    char *cut = tu_path(g_dir, "cut.semb");
    tu_write_file(cut, b, len - 100);
    char args[1024], *out;
    snprintf(args, sizeof args, "inspect '%s'", cut);
    int rc = run(args, &out);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    cr_assert(strstr(out, "truncated"), "%s", out);
    free(out);
    free(cut);
    free(b);
}

Test(inspect_cli, usage_errors_and_help) {
    char *out;
    cr_assert_eq(run("inspect --help", &out), 0);
    cr_assert(strstr(out, "usage: sembed inspect"), "%s", out);
    free(out);
    cr_assert_eq(run("inspect --bogus x", &out), 2, "%s", out);
    cr_assert(strstr(out, "unknown option"), "%s", out);
    free(out);
    cr_assert_eq(run("inspect", &out), 2, "%s", out);
    free(out);
    cr_assert_eq(run("inspect /nonexistent/file.semb", &out), 1, "%s", out);
    cr_assert(strstr(out, "not found") || strstr(out, "No such"), "%s", out);
    free(out);
    cr_assert_eq(run("no-such-command", &out), 2, "%s", out);
    free(out);
    cr_assert_eq(run("--help", &out), 0);
    cr_assert(strstr(out, "inspect") && strstr(out, "embed"), "%s", out);
    free(out);
}

// `sembed convert X.semb -o Y.semb` re-indexes a file converted before the tokenizer index
// existed: the index appears and verifies, and import options are refused on a .semb source.
Test(inspect_cli, convert_semb_adds_a_tokenizer_index) {
    char args[2048], *out;
    char *dst = tu_path(g_dir, "indexed.semb");
    snprintf(args, sizeof args, "inspect '%s'", g_file);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    cr_assert_null(strstr(out, "tokenizer.index.all"), "the fixture starts without an index: %s", out);
    free(out);
    snprintf(args, sizeof args, "convert '%s' -o '%s'", g_file, dst);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "inspect --verify '%s'", dst);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "tokenizer.index.all") && strstr(out, "tokenizer index matches"), "%s", out);
    cr_assert(strstr(out, "embeddings.word_embeddings.weight") && strstr(out, "[12, 4]"), "tensors kept: %s", out);
    free(out);
    snprintf(args, sizeof args, "convert '%s' -o '%s' --dtype q8", g_file, dst);
    cr_assert_eq(run(args, &out), 2, "%s", out);
    cr_assert(strstr(out, "only re-indexed"), "%s", out);
    free(out);
    free(dst);
}
