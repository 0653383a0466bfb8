// train/evalsets: the readers on the real STS-B / STS12 / SICK files (counts from the data
// README), and on small hostile files (unscored pairs, malformed lines with file:line, CRLF/BOM,
// misaligned gold files, truncation at every byte).
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sembed/common.h"
#include "testutil.h"
#include "train/evalsets.h"

// ---------------------------------------------------------------- log capture

static char g_log[8192];
static void capture(enum sembed_log_level lvl, const char *msg, void *ud) {
    (void)lvl;
    (void)ud;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
}
static void setup(void) {
    g_log[0] = 0;
    sembed_log_set(capture, NULL);
}
static void teardown(void) { sembed_log_set(NULL, NULL); }

static char *data_path(const char *rel) { return tu_data_file(rel); }

static struct ev_task *load_ok(const char *path, enum ev_format fmt) {
    struct ev_task *t = NULL;
    int rc = ev_task_load(path, fmt, false, &t);
    cr_assert_eq(rc, 0, "ev_task_load(%s): %s\nlog: %s", path, sembed_strerror(rc), g_log);
    return t;
}

#define NEED_DATA(var, rel)                                                        \
    char *var = data_path(rel);                                                    \
    if (!var) cr_skip_test("%s is not present (looked at %s)", rel, tu_data_where(rel))

// ---------------------------------------------------------------- real files

TestSuite(real, .init = setup, .fini = teardown);

Test(real, stsb_dev_senteval_layout) {
    NEED_DATA(p, "sts/STSBenchmark/sts-dev.csv");
    struct ev_task *t = load_ok(p, EV_FORMAT_AUTO);
    cr_assert_eq(t->format, EV_FORMAT_STSB, "detected %s", ev_format_name(t->format));
    cr_assert_eq(t->n_sets, 1);
    cr_assert_str_eq(t->name, "sts-dev");
    const struct ev_set *s = &t->sets[0];
    cr_assert_eq(s->n, 1500, "STS-B dev pairs: expected 1500, got %zu", s->n);
    cr_assert_eq(s->n_malformed, 0, "malformed: %zu\n%s", s->n_malformed, g_log);
    cr_assert_str_eq(s->s1[0], "a man with a hard hat is dancing .");
    cr_assert_str_eq(s->s2[0], "a man wearing a hard hat is dancing .");
    cr_assert_eq(s->gold[0], 5.0);
    cr_assert_eq(s->gold[1], 4.75);
    for (size_t i = 0; i < s->n; i++)
        cr_assert(s->gold[i] >= 0 && s->gold[i] <= 5, "pair %zu: gold %g outside [0, 5]", i, s->gold[i]);
    ev_task_free(t);
    free(p);
}

Test(real, stsb_raw_layout_with_licence_fields) {
    NEED_DATA(p, "sts/STSBenchmark/raw/sts-dev.csv");
    struct ev_task *t = load_ok(p, EV_FORMAT_AUTO);
    cr_assert_eq(t->format, EV_FORMAT_STSB);
    const struct ev_set *s = &t->sets[0];
    // 22 of the 1,500 raw dev lines carry 2 extra licence fields: they must be read, not dropped.
    cr_assert_eq(s->n, 1500, "raw STS-B dev pairs: expected 1500, got %zu", s->n);
    cr_assert_eq(s->n_malformed, 0);
    cr_assert_str_eq(s->s1[0], "A man with a hard hat is dancing.");
    for (size_t i = 0; i < s->n; i++)
        cr_assert(!strchr(s->s2[i], '\t'), "pair %zu: sentence2 holds a tab (extra fields leaked)", i);
    ev_task_free(t);
    free(p);
}

Test(real, stsb_train_count) {
    NEED_DATA(p, "sts/STSBenchmark/sts-train.csv");
    struct ev_task *t = load_ok(p, EV_FORMAT_STSB);
    cr_assert_eq(t->sets[0].n, 5749, "STS-B train pairs: expected 5749, got %zu", t->sets[0].n);
    ev_task_free(t);
    free(p);
}

Test(real, sts12_folder_sets_and_counts) {
    NEED_DATA(p, "sts/STS12-en-test");
    struct ev_task *t = load_ok(p, EV_FORMAT_AUTO);
    cr_assert_eq(t->format, EV_FORMAT_STS_FOLDER);
    cr_assert_str_eq(t->name, "STS12-en-test");
    static const char *names[] = {"MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"};
    static const size_t counts[] = {750, 750, 459, 750, 399};
    cr_assert_eq(t->n_sets, 5, "STS12 sets: expected 5 (STS.gs.ALL.txt has no input), got %zu", t->n_sets);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(t->sets[i].name, names[i], "set %zu", i);
        cr_assert_eq(t->sets[i].n, counts[i], "%s: expected %zu scored pairs, got %zu", names[i], counts[i],
                     t->sets[i].n);
        cr_assert_eq(t->sets[i].n_malformed, 0);
        cr_assert_eq(t->sets[i].n_unscored, 0);
    }
    cr_assert_eq(ev_task_n_pairs(t), 3108);
    cr_assert_eq(t->sets[0].gold[0], 4.4, "MSRpar first gold: %g", t->sets[0].gold[0]);
    cr_assert(!strncmp(t->sets[0].s1[0], "the problem likely will mean corrective changes", 47), "MSRpar s1[0]: %s",
              t->sets[0].s1[0]);
    ev_task_free(t);
    free(p);
}

Test(real, sts12_single_input_file) {
    NEED_DATA(p, "sts/STS12-en-test/STS.input.MSRvid.txt");
    struct ev_task *t = load_ok(p, EV_FORMAT_AUTO);
    cr_assert_eq(t->n_sets, 1);
    cr_assert_str_eq(t->sets[0].name, "MSRvid");
    cr_assert_eq(t->sets[0].n, 750);
    ev_task_free(t);
    free(p);
}

Test(real, sick_train_and_trial) {
    NEED_DATA(p, "train/sick/SICK_train.txt");
    struct ev_task *t = load_ok(p, EV_FORMAT_AUTO);
    cr_assert_eq(t->format, EV_FORMAT_SICK);
    cr_assert_eq(t->sets[0].n, 4500, "SICK train pairs: expected 4500, got %zu", t->sets[0].n);
    cr_assert_eq(t->sets[0].gold[0], 4.5);
    cr_assert_str_eq(t->sets[0].s1[0],
                     "A group of kids is playing in a yard and an old man is standing in the background");
    for (size_t i = 0; i < t->sets[0].n; i++)
        cr_assert(t->sets[0].gold[i] >= 1 && t->sets[0].gold[i] <= 5, "pair %zu: relatedness %g outside [1, 5]", i,
                  t->sets[0].gold[i]);
    ev_task_free(t);
    free(p);
    NEED_DATA(q, "train/sick/SICK_trial.txt");
    t = load_ok(q, EV_FORMAT_AUTO);
    cr_assert_eq(t->sets[0].n, 500, "SICK trial pairs: expected 500, got %zu", t->sets[0].n);
    ev_task_free(t);
    free(q);
}

// ---------------------------------------------------------------- synthetic files

TestSuite(synthetic, .init = setup, .fini = teardown);

static char *write_in(const char *dir, const char *name, const char *text) {
    char *p = tu_path(dir, name);
    cr_assert_eq(tu_write_file(p, text, strlen(text)), 0, "cannot write %s", p);
    return p;
}

Test(synthetic, sts_folder_unscored_and_malformed) {
    char *dir = tu_mkdtemp();
    free(write_in(dir, "STS.input.a.txt", "s one\tt one\ns two\tt two\ns three\tt three\nno tab here\ns five\tt five\n"));
    free(write_in(dir, "STS.gs.a.txt", "1.5\n\n4.x\n2\n 3 \n"));
    free(write_in(dir, "STS.input.b.txt", "x\ty\r\n"));
    free(write_in(dir, "STS.gs.b.txt", "\xEF\xBB\xBF" "0.25\r\n"));
    free(write_in(dir, "STS.input.nogold.txt", "p\tq\n"));
    free(write_in(dir, "STS.gs.ALL.txt", "1\n"));
    struct ev_task *t = load_ok(dir, EV_FORMAT_AUTO);
    cr_assert_eq(t->n_sets, 2, "sets: expected a, b (nogold has no gold file, ALL no input), got %zu", t->n_sets);
    const struct ev_set *a = &t->sets[0];
    cr_assert_str_eq(a->name, "a");
    cr_assert_eq(a->n, 2, "a: kept pairs: expected 2 (lines 1 and 5), got %zu", a->n);
    cr_assert_eq(a->n_unscored, 1, "a: unscored: expected 1, got %zu", a->n_unscored);
    cr_assert_eq(a->n_malformed, 2, "a: malformed: expected 2, got %zu", a->n_malformed);
    cr_assert_str_eq(a->s1[1], "s five");
    cr_assert_eq(a->gold[1], 3.0);
    cr_assert(strstr(g_log, "STS.gs.a.txt:3:"), "log should name STS.gs.a.txt:3, got:\n%s", g_log);
    cr_assert(strstr(g_log, "STS.input.a.txt:4:"), "log should name STS.input.a.txt:4, got:\n%s", g_log);
    cr_assert(strstr(g_log, "nogold"), "log should mention the input without gold, got:\n%s", g_log);
    const struct ev_set *b = &t->sets[1];
    cr_assert_eq(b->n, 1);
    cr_assert_str_eq(b->s2[0], "y", "CRLF must be stripped: got '%s'", b->s2[0]);
    cr_assert_eq(b->gold[0], 0.25, "BOM before the gold score: got %g", b->gold[0]);
    ev_task_free(t);
    // strict: the first malformed line is fatal
    t = (struct ev_task *)1;
    cr_assert_eq(ev_task_load(dir, EV_FORMAT_AUTO, true, &t), SEMBED_EPARSE);
    cr_assert_null(t);
    tu_rmtree(dir);
    free(dir);
}

Test(synthetic, sts_gold_line_count_mismatch_is_fatal) {
    char *dir = tu_mkdtemp();
    free(write_in(dir, "STS.input.a.txt", "a\tb\nc\td\n"));
    free(write_in(dir, "STS.gs.a.txt", "1\n"));
    struct ev_task *t;
    cr_assert_eq(ev_task_load(dir, EV_FORMAT_AUTO, false, &t), SEMBED_EPARSE);
    cr_assert(strstr(g_log, "misalign"), "log: %s", g_log);
    tu_rmtree(dir);
    free(dir);
}

Test(synthetic, stsb_and_sick_malformed_lines) {
    char *dir = tu_mkdtemp();
    char *p = write_in(dir, "sts-x.csv",
                       "g\tf\t2012\t0001\t4.0\ta b\tc d\n"
                       "\n"
                       "g\tf\t2012\t0002\tfive\ta\tb\n"
                       "g\tf\t2012\t0003\t1.0\tonly one\n"
                       "g\tf\t2012\t0004\t2.5\tx\ty\tlicence\tmore\n");
    struct ev_task *t = load_ok(p, EV_FORMAT_AUTO);
    cr_assert_eq(t->format, EV_FORMAT_STSB);
    cr_assert_eq(t->sets[0].n, 2);
    cr_assert_eq(t->sets[0].n_malformed, 2);
    cr_assert_str_eq(t->sets[0].s2[1], "y");
    cr_assert(strstr(g_log, "sts-x.csv:3:") && strstr(g_log, "sts-x.csv:4:"), "log: %s", g_log);
    ev_task_free(t);
    free(p);

    g_log[0] = 0;
    p = write_in(dir, "sick.txt",
                 "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
                 "1\tA dog runs\tA dog is running\t4.9\tENTAILMENT\n"
                 "2\tA cat\tNo cat\t\tCONTRADICTION\n");
    t = load_ok(p, EV_FORMAT_AUTO);
    cr_assert_eq(t->format, EV_FORMAT_SICK);
    cr_assert_eq(t->sets[0].n, 1);
    cr_assert_eq(t->sets[0].n_malformed, 1);
    cr_assert(strstr(g_log, "sick.txt:3:"), "log: %s", g_log);
    ev_task_free(t);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

Test(synthetic, unknown_and_missing) {
    char *dir = tu_mkdtemp();
    struct ev_task *t;
    char *p = write_in(dir, "notes.txt", "hello world\n");
    cr_assert_eq(ev_task_load(p, EV_FORMAT_AUTO, false, &t), SEMBED_EPARSE, "unknown layout");
    free(p);
    p = write_in(dir, "empty.csv", "");
    cr_assert_eq(ev_task_load(p, EV_FORMAT_AUTO, false, &t), SEMBED_EPARSE, "empty file");
    free(p);
    p = write_in(dir, "bad.csv", "g\tf\t2012\t1\t1\ta\tb\n");
    cr_assert_eq(ev_task_load(p, EV_FORMAT_SICK, false, &t), 0, "forced SICK reads fields 2-4 of any 4+ field line");
    ev_task_free(t);
    free(p);
    p = write_in(dir, "none.csv", "g\tf\t2012\t1\tx\ta\tb\n");
    cr_assert_eq(ev_task_load(p, EV_FORMAT_STSB, false, &t), SEMBED_EINVAL, "no scored pair");
    free(p);
    char *sub = tu_path(dir, "sub");
    mkdir(sub, 0700);
    cr_assert_eq(ev_task_load(sub, EV_FORMAT_AUTO, false, &t), SEMBED_ENOTFOUND, "empty folder");
    cr_assert_eq(ev_task_load(sub, EV_FORMAT_STSB, false, &t), SEMBED_EINVAL, "folder as STS-B");
    free(sub);
    p = tu_path(dir, "does-not-exist.csv");
    cr_assert_eq(ev_task_load(p, EV_FORMAT_AUTO, false, &t), SEMBED_EIO);
    cr_assert(strstr(g_log, "does-not-exist.csv"), "log should name the path: %s", g_log);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

Test(synthetic, every_truncation_loads_or_fails_cleanly) {
    const char *text = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\r\n"
                       "1\tA dog runs\tA dog is running\t4.9\tENTAILMENT\r\n"
                       "2\tA cat sits\tA cat is sitting\t4.2\tENTAILMENT\r\n";
    char *dir = tu_mkdtemp(), *p = tu_path(dir, "sick.txt");
    size_t len = strlen(text);
    for (size_t cut = 0; cut <= len; cut++) {
        cr_assert_eq(tu_write_file(p, text, cut), 0);
        struct ev_task *t = NULL;
        int rc = ev_task_load(p, EV_FORMAT_SICK, false, &t);
        cr_assert(rc == 0 || rc == SEMBED_EINVAL, "cut %zu: %s", cut, sembed_strerror(rc));
        if (!rc) {
            cr_assert(t->sets[0].n >= 1 && t->sets[0].n <= 2, "cut %zu: %zu pairs", cut, t->sets[0].n);
            ev_task_free(t);
        }
    }
    free(p);
    tu_rmtree(dir);
    free(dir);
}
