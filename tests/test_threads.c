// Concurrency: many threads, each with its own context on one shared model, released together by a
// barrier so that their first calls race the model's lazy weight packing (sembed/model.h: packing
// happens once per model, on first use, thread-safe). Every thread must get embeddings bit-identical
// to a single-threaded reference computed on a separate load of the same file. Run for f32 and
// int8 arithmetic (int8 packs quantized weights: a second packing path).
//
// Built with -DSEMBED_SANITIZE_THREAD=ON (tools/check.d/10-tsan.sh) this runs under ThreadSanitizer,
// which then also reports any data race in loading, context creation, packing or the forward pass.
// Contexts use n_threads = 1 so that no OpenMP team is ever formed: libgomp is not built with TSan
// instrumentation, and its barriers would be reported as races that are not there. Each OpenMP
// region then runs inline on the calling thread; the concurrency under test is the library's own
// (threads sharing one model), which is what the model contract promises.
//
// Criterion cannot start under ThreadSanitizer (its boxfort arena mmap fails: Criterion issue
// #274), so with -DSEMBED_THREADS_MAIN the same checks compile into a plain program (tsan_threads,
// tests/CMakeLists.txt) that prints expected vs got and exits non-zero on any failure.
#define _GNU_SOURCE
#ifdef SEMBED_THREADS_MAIN
#include <stdint.h>
static int g_failures;
#define EXPECT(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); g_failures++; } } while (0)
#define ASSERT(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)
#define INFO(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } while (0)
#else
#include <criterion/criterion.h>
#define EXPECT cr_expect
#define ASSERT cr_assert
#define INFO cr_log_info
#endif
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/convert.h"
#include "sembed/model.h"
#include "testutil.h"

#define N_THREADS 8
#define ROUNDS 3

static const char *const TEXTS[] = {
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The quick brown fox jumps over the lazy dog, twice, and then sleeps.",
    "Café naïve 我想 supercalifragilistic",
    "a",
    "Two dogs run across a snowy field while a third one watches from the fence near the old barn.",
};
#define N_TEXTS (sizeof TEXTS / sizeof TEXTS[0])

static char g_log[4096];
static void capture(enum sembed_log_level lvl, const char *msg, void *ud) {
    (void)ud;
    if (lvl < SEMBED_LOG_WARN) return;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
}

struct shared {
    const struct sembed_model *m;
    pthread_barrier_t go;
    size_t dim;
};

struct worker {
    struct shared *s;
    int id;
    int rc_create, rc_embed;
    float *out;  // ROUNDS * N_TEXTS * dim
};

static void *run(void *arg) {
    struct worker *w = arg;
    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = 1;
    struct sembed_context *ctx = NULL;
    w->rc_create = sembed_context_create(w->s->m, &cp, &ctx);
    pthread_barrier_wait(&w->s->go);  // everyone's first embedding call starts together
    if (w->rc_create) return NULL;
    // Each thread walks the texts from a different starting point, one call per text, so first
    // calls differ in length and the threads reach each layer's packing at different moments.
    for (int r = 0; r < ROUNDS && !w->rc_embed; r++)
        for (size_t k = 0; k < N_TEXTS && !w->rc_embed; k++) {
            size_t i = (k + (size_t)w->id) % N_TEXTS;
            w->rc_embed = sembed_embed_texts(ctx, &TEXTS[i], 1, w->out + ((size_t)r * N_TEXTS + i) * w->s->dim);
        }
    sembed_context_free(ctx);
    return NULL;
}

static char *g_dir, *g_model;

static void setup(void) {
    g_log[0] = 0;
    sembed_log_set(capture, NULL);
    g_dir = tu_mkdtemp();
    g_model = tu_path(g_dir, "tiny.semb");
    struct sembed_convert_params p = sembed_convert_default_params();
    char *src = tu_path(tu_source_dir(), "tests/fixtures/bert-tiny");
    p.src = src;
    p.out = g_model;
    p.created = 0;
    int rc = sembed_convert(&p);
    free(src);
    ASSERT(rc == 0, "convert tests/fixtures/bert-tiny: %s\n%s", sembed_strerror(rc), g_log);
}

static void teardown(void) {
    tu_rmtree(g_dir);
    free(g_dir);
    free(g_model);
}

static void race(enum sembed_compute compute) {
    struct sembed_model_params mp = sembed_model_default_params();
    mp.compute = compute;
    mp.pack_eagerly = false;
    // Reference: its own load, one context, one thread.
    struct sembed_model *ref_m = NULL;
    ASSERT(sembed_model_load(g_model, &mp, &ref_m) == 0, "load: %s", g_log);
    ASSERT(sembed_model_compute(ref_m) == compute, "compute %s not in effect", sembed_compute_name(compute));
    size_t dim = sembed_model_dim(ref_m);
    float *ref = calloc(N_TEXTS * dim, sizeof *ref);
    ASSERT(ref, "out of memory");
    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = 1;
    struct sembed_context *ctx = NULL;
    ASSERT(sembed_context_create(ref_m, &cp, &ctx) == 0, "reference context: %s", g_log);
    for (size_t i = 0; i < N_TEXTS; i++) ASSERT(sembed_embed_texts(ctx, &TEXTS[i], 1, ref + i * dim) == 0, "reference embed: %s", g_log);
    sembed_context_free(ctx);
    sembed_model_free(ref_m);
    for (size_t i = 0; i < N_TEXTS * dim; i++) ASSERT(isfinite(ref[i]), "reference value %zu is %g", i, (double)ref[i]);

    // The shared model: freshly loaded, nothing packed yet.
    struct shared s = {.dim = dim};
    struct sembed_model *m = NULL;
    ASSERT(sembed_model_load(g_model, &mp, &m) == 0, "load: %s", g_log);
    s.m = m;
    ASSERT(pthread_barrier_init(&s.go, NULL, N_THREADS) == 0, "pthread_barrier_init");
    struct worker w[N_THREADS];
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        w[t] = (struct worker){.s = &s, .id = t, .out = calloc((size_t)ROUNDS * N_TEXTS * dim, sizeof(float))};
        ASSERT(w[t].out, "out of memory");
    }
    for (int t = 0; t < N_THREADS; t++) ASSERT(pthread_create(&th[t], NULL, run, &w[t]) == 0, "pthread_create %d", t);
    for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&s.go);

    size_t differing = 0;
    for (int t = 0; t < N_THREADS; t++) {
        EXPECT(w[t].rc_create == 0, "thread %d: context create: %s", t, sembed_strerror(w[t].rc_create));
        EXPECT(w[t].rc_embed == 0, "thread %d: embed: %s\n%s", t, sembed_strerror(w[t].rc_embed), g_log);
        for (int r = 0; r < ROUNDS; r++)
            for (size_t i = 0; i < N_TEXTS; i++) {
                const float *got = w[t].out + ((size_t)r * N_TEXTS + i) * dim, *want = ref + i * dim;
                if (!memcmp(got, want, dim * sizeof *got)) continue;
                float maxd = 0;
                size_t at = 0;
                for (size_t j = 0; j < dim; j++)
                    if (fabsf(got[j] - want[j]) > maxd || (isnan(got[j]) && !maxd)) { maxd = fabsf(got[j] - want[j]); at = j; }
                EXPECT(0, "%s: thread %d round %d text %zu differs from the single-threaded reference: [%zu] got %.9g expected %.9g (max abs diff %g)",
                          sembed_compute_name(compute), t, r, i, at, (double)got[at], (double)want[at], (double)maxd);
                differing++;
            }
        free(w[t].out);
    }
    INFO("%s: %d threads x %d rounds x %zu texts, %zu embeddings differ from the reference", sembed_compute_name(compute), N_THREADS, ROUNDS,
                N_TEXTS, differing);
    sembed_model_free(m);
    free(ref);
}

#ifdef SEMBED_THREADS_MAIN
int main(void) {
    static const enum sembed_compute modes[2] = {SEMBED_COMPUTE_F32, SEMBED_COMPUTE_INT8};
    for (int k = 0; k < 2; k++) {
        setup();
        race(modes[k]);
        teardown();
    }
    fprintf(stderr, "tsan_threads: %s (%d failed checks)\n", g_failures ? "FAILED" : "passed", g_failures);
    return g_failures ? 1 : 0;
}
#else
Test(threads, f32_shared_model_first_use_race, .init = setup, .fini = teardown, .timeout = 600) { race(SEMBED_COMPUTE_F32); }
Test(threads, int8_shared_model_first_use_race, .init = setup, .fini = teardown, .timeout = 600) { race(SEMBED_COMPUTE_INT8); }
#endif
