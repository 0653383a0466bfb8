// `sembed train` / `sembed export` end to end on a tiny fresh encoder: resume is bit-identical,
// results do not depend on the thread count, malformed data is reported as file:line, train.*
// keys and the inference pooler are recorded, the export loads in the PyTorch twin with the same
// embeddings, the log plots.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/semb.h"
#include "sembed/tokenizer.h"
#include "testutil.h"
#include "train/st.h"

static const char *WORDS[] = {"the", "a", "man", "woman", "dog", "cat", "is", "playing", "eating", "running", "guitar",
                              "food", "in", "park", "house", "red", "blue", "small", "big", "child", "music", "on",
                              "street", "."};
#define NW (sizeof WORDS / sizeof WORDS[0])

struct env {
    char *dir, *vocab, *unsup, *sup, *sts, *init;
};

static void env_make(struct env *e) {
    e->dir = tu_mkdtemp();
    cr_assert(e->dir);
    e->vocab = tu_path(e->dir, "vocab.txt");
    FILE *f = fopen(e->vocab, "w");
    fprintf(f, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (size_t i = 0; i < NW; i++) fprintf(f, "%s\n", WORDS[i]);
    fclose(f);
    e->unsup = tu_path(e->dir, "unsup.txt");
    f = fopen(e->unsup, "w");
    for (unsigned i = 0; i < 40; i++) { // deterministic pseudo-sentences
        unsigned s = i * 2654435761u;
        int n = 3 + (int)(s % 6);
        for (int k = 0; k < n; k++) { s = s * 1103515245u + 12345u; fprintf(f, "%s%s", k ? " " : "", WORDS[(s >> 16) % NW]); }
        fprintf(f, "\n");
    }
    fclose(f);
    e->sts = tu_path(e->dir, "sts.csv");
    f = fopen(e->sts, "w");
    for (unsigned i = 0; i < 12; i++)
        fprintf(f, "main-captions\tMSRvid\t2012test\t%04u\t%.1f\ta %s is %s .\ta %s is %s .\n", i, (double)(i % 6),
                WORDS[2 + i % 4], WORDS[7 + i % 3], WORDS[2 + (i / 2) % 4], WORDS[7 + (i / 3) % 3]);
    fclose(f);
    e->sup = tu_path(e->dir, "sup.csv");
    f = fopen(e->sup, "w");
    fprintf(f, "sent0,sent1,hard_neg\n");
    for (unsigned i = 0; i < 20; i++) {
        if (i == 7) fprintf(f, "only one field\n");           // line 9: malformed
        if (i == 12) fprintf(f, "a,\"b\"c,d\n");                // line 15: text after a closing quote
        fprintf(f, "a %s is %s,\"the %s, %s\",a %s is %s\n", WORDS[2 + i % 4], WORDS[7 + i % 3], WORDS[2 + i % 4],
                WORDS[7 + i % 3], WORDS[2 + (i + 1) % 4], WORDS[15 + i % 4]);
    }
    fclose(f);
    char spec[4096];
    snprintf(spec, sizeof spec, "layers=1,hidden=32,heads=2,intermediate=64,max_position=32,vocab=%s", e->vocab);
    e->init = strdup(spec);
}

static void env_free(struct env *e) {
    tu_rmtree(e->dir);
    free(e->dir); free(e->vocab); free(e->unsup); free(e->sup); free(e->sts); free(e->init);
}

static int run(const char *args, char **out) {
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "'%s' %s 2>&1", tu_cli(), args) > 0);
    int rc = tu_run(cmd, out);
    free(cmd);
    return rc;
}

// Every tensor of a and b bit-identical (names and order too).
static void expect_same_tensors(const char *a, const char *b) {
    struct sembed_file *fa, *fb;
    cr_assert_eq(sembed_file_open(a, &fa), 0, "open %s", a);
    cr_assert_eq(sembed_file_open(b, &fb), 0, "open %s", b);
    int64_t n = sembed_file_n_tensors(fa);
    cr_assert_eq(n, sembed_file_n_tensors(fb), "tensor count %lld vs %lld", (long long)n, (long long)sembed_file_n_tensors(fb));
    for (int64_t i = 0; i < n; i++) {
        struct sembed_tensor ta, tb;
        sembed_file_tensor(fa, i, &ta);
        sembed_file_tensor(fb, i, &tb);
        cr_assert_str_eq(ta.name, tb.name);
        cr_assert_eq(ta.nbytes, tb.nbytes);
        if (memcmp(ta.data, tb.data, ta.nbytes) != 0) {
            const float *x = ta.data, *y = tb.data;
            double md = 0;
            for (size_t k = 0; k < ta.nbytes / 4; k++) md = fmax(md, fabs((double)x[k] - y[k]));
            cr_assert_fail("tensor %s differs between %s and %s (max abs diff %g)", ta.name, a, b, md);
        }
    }
    sembed_file_free(fa);
    sembed_file_free(fb);
}

Test(train_cli, help_and_usage_errors) {
    char *out = NULL;
    cr_expect_eq(run("train --help", &out), 0);
    cr_expect(out && strstr(out, "--objective"), "help text: %s", out);
    free(out);
    cr_expect_eq(run("train --bogus", &out), 2, "unknown flag must exit 2: %s", out);
    free(out);
    cr_expect_eq(run("train --data x -o y", &out), 2, "missing -m/--init-random must exit 2: %s", out);
    free(out);
    cr_expect_eq(run("train -m /nonexistent.semb --data /nonexistent -o /tmp/x.semb", &out), 1, "%s", out);
    free(out);
    cr_expect_eq(run("export --help", &out), 0);
    free(out);
    cr_expect_eq(run("export -m /nonexistent.semb -o /tmp/nonexistent-dir", &out), 1, "%s", out);
    free(out);
}

Test(train_cli, resume_is_bit_identical_and_thread_independent) {
    struct env e;
    env_make(&e);
    char args[8192], *out = NULL;
    const char *common = "--objective unsup --batch 8 --steps 6 --lr 1e-3 --mlm-weight 0.1 --eval-every 2 --seed 7";
    // A: straight through, 2 threads
    snprintf(args, sizeof args, "train --init-random %s --data %s --eval-sts %s %s --threads 2 --checkpoint %s/ckA -o %s/A.semb --log %s/A.csv",
             e.init, e.unsup, e.sts, common, e.dir, e.dir, e.dir);
    cr_assert_eq(run(args, &out), 0, "run A failed: %s", out);
    printf("A: %s", out);
    free(out);
    // B: stop after 3 steps, then resume (1 thread: also checks thread independence)
    snprintf(args, sizeof args, "train --init-random %s --data %s --eval-sts %s %s --threads 1 --checkpoint %s/ckB --stop-after 3 -o %s/B.semb --log %s/B.csv",
             e.init, e.unsup, e.sts, common, e.dir, e.dir, e.dir);
    cr_assert_eq(run(args, &out), 0, "run B (first half) failed: %s", out);
    free(out);
    char *bpath = tu_path(e.dir, "B.semb");
    cr_expect(!tu_file_exists(bpath), "an unfinished run with --checkpoint must not write the output");
    snprintf(args, sizeof args, "train --init-random %s --data %s --eval-sts %s %s --threads 1 --checkpoint %s/ckB --resume -o %s/B.semb --log %s/B.csv",
             e.init, e.unsup, e.sts, common, e.dir, e.dir, e.dir);
    cr_assert_eq(run(args, &out), 0, "run B (resume) failed: %s", out);
    free(out);
    char *apath = tu_path(e.dir, "A.semb");
    expect_same_tensors(apath, bpath);
    // the logs agree line for line except the timing columns
    char *la = tu_path(e.dir, "A.csv"), *lb = tu_path(e.dir, "B.csv");
    char *ca = tu_read_file(la, NULL), *cb = tu_read_file(lb, NULL);
    cr_assert(ca && cb);
    int lines_a = 0, lines_b = 0;
    for (char *p = ca; *p; p++) lines_a += *p == '\n';
    for (char *p = cb; *p; p++) lines_b += *p == '\n';
    cr_expect_eq(lines_a, lines_b, "log lines: %d vs %d", lines_a, lines_b);
    // a different setting refuses to resume
    snprintf(args, sizeof args, "train --init-random %s --data %s --eval-sts %s %s --lr 2e-3 --checkpoint %s/ckB --resume -o %s/C.semb",
             e.init, e.unsup, e.sts, common, e.dir, e.dir);
    cr_expect_eq(run(args, &out), 1, "resume with another lr must fail: %s", out);
    cr_expect(out && strstr(out, "other settings"), "message: %s", out);
    free(out);
    // recorded metadata
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(apath, &f), 0);
    const char *s;
    cr_expect_eq(sembed_file_get_str(f, "pooling.mode", &s, NULL), 0);
    cr_expect_str_eq(s, "cls", "unsup with cls pooler (MLP kept) infers with cls");
    cr_expect_eq(sembed_file_get_str(f, "train.objective", &s, NULL), 0);
    cr_expect_str_eq(s, "unsup");
    uint64_t steps;
    cr_expect_eq(sembed_file_get_u64(f, "train.steps", &steps), 0);
    cr_expect_eq(steps, 6);
    float best;
    cr_expect_eq(sembed_file_get_f32(f, "train.best_dev_spearman", &best), 0, "best dev recorded");
    cr_expect_eq(sembed_file_get_str(f, "train.data_xxh3", &s, NULL), 0);
    cr_expect_eq(strlen(s), 16);
    sembed_file_free(f);
    // plot
    snprintf(args, sizeof args, "train --plot %s -o %s/chart.svg", la, e.dir);
    cr_expect_eq(run(args, &out), 0, "%s", out);
    free(out);
    char *svg = tu_path(e.dir, "chart.svg");
    char *sv = tu_read_file(svg, NULL);
    cr_expect(sv && !strncmp(sv, "<svg", 4) && strstr(sv, "polyline"), "SVG chart written");
    free(sv); free(svg);
    free(ca); free(cb); free(la); free(lb); free(apath); free(bpath);
    env_free(&e);
}

Test(train_cli, malformed_lines_reported_and_strict) {
    struct env e;
    env_make(&e);
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "train --init-random %s --data %s --objective sup --batch 4 --steps 2 -o %s/S.semb", e.init,
             e.sup, e.dir);
    cr_assert_eq(run(args, &out), 0, "sup run failed: %s", out);
    char want1[4200], want2[4200];
    snprintf(want1, sizeof want1, "%s:9:", e.sup);
    snprintf(want2, sizeof want2, "%s:15:", e.sup);
    cr_expect(strstr(out, want1), "expected a report naming %s in: %s", want1, out);
    cr_expect(strstr(out, want2), "expected a report naming %s in: %s", want2, out);
    cr_expect(strstr(out, "rows 20") && strstr(out, "skipped 2"), "20 rows kept, 2 skipped: %s", out);
    free(out);
    snprintf(args, sizeof args, "train --init-random %s --data %s --objective sup --batch 4 --steps 2 --strict -o %s/S2.semb",
             e.init, e.sup, e.dir);
    cr_expect_eq(run(args, &out), 1, "--strict must fail: %s", out);
    free(out);
    char *s2 = tu_path(e.dir, "S2.semb");
    cr_expect(!tu_file_exists(s2), "no output on failure");
    free(s2);
    // mlp-only-train records cls_before_pooler
    snprintf(args, sizeof args, "train --init-random %s --data %s --batch 8 --steps 2 --mlp-only-train -o %s/M.semb", e.init,
             e.unsup, e.dir);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    free(out);
    char *mp = tu_path(e.dir, "M.semb");
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(mp, &f), 0);
    const char *s;
    cr_expect_eq(sembed_file_get_str(f, "pooling.mode", &s, NULL), 0);
    cr_expect_str_eq(s, "cls_before_pooler", "--mlp-only-train must infer with cls_before_pooler");
    sembed_file_free(f);
    free(mp);
    env_free(&e);
}

// Train, export, then embed with the trainer's forward here and with the PyTorch twin over the
// exported folder (models/gen/export_check.py): same vectors.
static void export_roundtrip(const char *pooler) {
    if (tu_run("/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null", NULL) != 0)
        cr_skip_test("python3 with torch is not available");
    struct env e;
    env_make(&e);
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "train --init-random %s --data %s --batch 8 --steps 3 --lr 1e-2 --pooler %s -o %s/E.semb",
             e.init, e.unsup, pooler, e.dir);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "export -m %s/E.semb -o %s/hf", e.dir, e.dir);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    free(out);
    char *mp = tu_path(e.dir, "E.semb");
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(mp, &f), 0);
    struct sembed_tokenizer *tok;
    cr_assert_eq(sembed_tokenizer_from_file(f, &tok), 0);
    struct st_model *m;
    bool fp, fm;
    cr_assert_eq(st_model_from_file(f, false, false, 0, &m, &fp, &fm), 0);
    const char *mode;
    cr_assert_eq(sembed_file_get_str(f, "pooling.mode", &mode, NULL), 0);
    const char *texts[] = {"a man is playing guitar .", "the dog", "a small red house in the park .", "cat"};
    enum { N = 4, T = 12 };
    int32_t ids[N * T], lens[N];
    for (int i = 0; i < N; i++) {
        uint32_t n;
        cr_assert_eq(sembed_tokenizer_encode_input(tok, texts[i], SIZE_MAX, NULL, 0, T, SEMBED_TRUNCATE_LONGEST_FIRST,
                                                   ids + i * T, NULL, &n, NULL), 0);
        lens[i] = (int32_t)n;
        for (int k = (int)n; k < T; k++) ids[i * T + k] = sembed_tokenizer_pad_id(tok);
    }
    struct st_acts *a;
    cr_assert_eq(st_acts_create(&m->cfg, N, T, 1, &a), 0);
    struct st_batch b = {.n = N, .t = T, .ids = ids, .types = NULL, .lens = lens};
    st_forward(m, a, &b, 0, 1);
    int H = m->cfg.hidden;
    float z[N * 64];
    enum st_pool pm = !strcmp(mode, "mean") ? ST_POOL_MEAN : !strcmp(mode, "cls") ? ST_POOL_CLS : ST_POOL_CLS_BEFORE_POOLER;
    st_pool_forward(m, a, &b, pm, pm == ST_POOL_CLS, z, 1);
    char *case_path = tu_path(e.dir, "case.bin");
    FILE *cf = fopen(case_path, "wb");
    uint32_t hdr[3] = {N, T, (uint32_t)H};
    fwrite(hdr, 4, 3, cf);
    fwrite(ids, 4, N * T, cf);
    fwrite(lens, 4, N, cf);
    fwrite(z, 4, (size_t)N * H, cf);
    fclose(cf);
    snprintf(args, sizeof args, "/usr/bin/python3 '%s/models/gen/export_check.py' '%s/hf' '%s' 2>&1", tu_source_dir(), e.dir,
             case_path);
    int rc = tu_run(args, &out);
    printf("[%s] %s", pooler, out ? out : "");
    cr_expect_eq(rc, 0, "PyTorch twin over the export disagrees (%s pooler): %s", pooler, out);
    free(out);
    st_acts_free(a);
    st_model_free(m);
    sembed_tokenizer_free(tok);
    sembed_file_free(f);
    free(mp); free(case_path);
    env_free(&e);
}

Test(train_cli, export_roundtrip_cls_mlp) { export_roundtrip("cls"); }
Test(train_cli, export_roundtrip_mean) { export_roundtrip("mean"); }

Test(train_cli, init_random_from_json_then_mlm) {
    struct env e;
    env_make(&e);
    char *json = tu_path(e.dir, "init.json");
    FILE *f = fopen(json, "w");
    // relative vocab path: resolved against the JSON file's folder
    fprintf(f, "{\"layers\": 2, \"hidden\": 16, \"heads\": 2, \"intermediate\": 32, \"max_position\": 24, \"vocab\": \"vocab.txt\"}\n");
    fclose(f);
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "train --init-random %s --objective mlm --data %s --batch 8 --steps 2 --max-length 16 -o %s/J.semb", json,
             e.unsup, e.dir);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    free(out);
    char *mp = tu_path(e.dir, "J.semb");
    struct sembed_file *sf;
    cr_assert_eq(sembed_file_open(mp, &sf), 0);
    uint32_t v;
    cr_expect(sembed_file_get_u32(sf, "bert.num_layers", &v) == 0 && v == 2, "layers %u", v);
    cr_expect(sembed_file_get_u32(sf, "bert.hidden_size", &v) == 0 && v == 16, "hidden %u", v);
    cr_expect(sembed_file_get_u32(sf, "bert.vocab_size", &v) == 0 && v == 5 + NW, "vocab %u", v);
    bool b;
    cr_expect(sembed_file_get_bool(sf, "bert.has_mlm_head", &b) == 0 && b, "MLM head kept");
    const char *s;
    cr_expect(sembed_file_get_str(sf, "pooling.mode", &s, NULL) == 0 && !strcmp(s, "cls_before_pooler"), "MLM infers with cls_before_pooler");
    struct sembed_tensor t;
    cr_expect_eq(sembed_file_find_tensor(sf, "cls.predictions.bias", &t), 0);
    sembed_file_free(sf);
    // a bad flag set is a usage error
    snprintf(args, sizeof args, "train --init-random layers=x,vocab=%s --data %s -o %s/K.semb", e.vocab, e.unsup, e.dir);
    cr_expect_eq(run(args, &out), 2, "%s", out);
    free(out);
    free(mp);
    free(json);
    env_free(&e);
}

// --keep last: with --eval-sts, -o gets the last step's weights, the same as a run without
// evaluation (evaluation never changes training); --keep best (default) gets the best on dev.
Test(train_cli, keep_last_writes_the_final_weights) {
    struct env e;
    env_make(&e);
    char args[8192], *out = NULL;
    const char *common = "--objective unsup --batch 8 --steps 6 --lr 1e-3 --seed 3 --threads 2";
    snprintf(args, sizeof args, "train --init-random %s --data %s %s -o %s/plain.semb", e.init, e.unsup, common, e.dir);
    cr_assert_eq(run(args, &out), 0, "plain run failed: %s", out);
    free(out);
    snprintf(args, sizeof args, "train --init-random %s --data %s --eval-sts %s --eval-every 1 --keep last %s -o %s/last.semb",
             e.init, e.unsup, e.sts, common, e.dir);
    cr_assert_eq(run(args, &out), 0, "--keep last run failed: %s", out);
    free(out);
    char *plain = tu_path(e.dir, "plain.semb"), *last = tu_path(e.dir, "last.semb");
    expect_same_tensors(plain, last);
    snprintf(args, sizeof args, "train --init-random %s --data %s --keep newest %s -o %s/x.semb", e.init, e.unsup, common, e.dir);
    cr_expect_eq(run(args, &out), 2, "--keep newest is a usage error: %s", out);
    cr_expect(out && strstr(out, "--keep wants best or last"), "message: %s", out);
    free(out);
    free(plain); free(last);
    env_free(&e);
}
