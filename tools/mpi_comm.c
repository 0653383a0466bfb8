// The CLI's MPI layer (see mpi_comm.h). Process-wide state is unavoidable here: MPI itself is
// initialised once per process.
#define _POSIX_C_SOURCE 200809L
#include "tools/mpi_comm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli.h"

static bool launched(void) { return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK"); }

#ifdef SEMBED_HAVE_MPI
#include <mpi.h>

static struct {
    bool on;
    int rank, size;
    struct sembed_train_comm comm;
    float *send, *recv;   // allreduce scratch
    size_t cap;
    // SEMBED_MPI_STATS=1: rank 0 prints the time and bytes of the collectives at exit; each
    // collective is then preceded by a barrier, so waiting for slower ranks (t_wait) is told apart
    // from moving and adding the data (t_gather, t_reduce)
    bool stats;
    double t_gather, t_reduce, t_wait;
    uint64_t b_gather, b_reduce, n_gather, n_reduce;
} g;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void stats_wait(void) {
    if (!g.stats) return;
    double t0 = now_s();
    MPI_Barrier(MPI_COMM_WORLD);
    g.t_wait += now_s() - t0;
}

static int allgather_f32(void *user, const float *send, size_t n, float *recv) {
    (void)user;
    if (n > INT_MAX) return -1;
    stats_wait();
    double t0 = now_s();
    int rc = MPI_Allgather(send, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
    g.t_gather += now_s() - t0;
    g.b_gather += (uint64_t)n * 4 * (uint64_t)(g.size - 1);
    g.n_gather++;
    return rc == MPI_SUCCESS ? 0 : -1;
}

// Deterministic sum: chunk j of the buffer is owned by rank j, which receives every rank's chunk j
// (all-to-all), adds them in rank order 0, 1, ..., N-1, and the sums are all-gathered. Every rank
// gets the same bits (MPI_Allreduce does not promise that), the order depends only on N, and the
// traffic is that of a ring allreduce: 2 (N-1)/N of the buffer sent and received per rank.
static int allreduce_sum_f32(void *user, float *buf, size_t n) {
    (void)user;
    int N = g.size;
    size_t c = (n + (size_t)N - 1) / (size_t)N, tot = c * (size_t)N;
    if (c > INT_MAX) return -1;
    if (tot + c > g.cap) {
        float *s = realloc(g.send, tot * sizeof *s), *r = s ? realloc(g.recv, (tot + c) * sizeof *r) : NULL;
        if (s) g.send = s;
        if (!s || !r) return -1;
        g.recv = r;
        g.cap = tot + c;
    }
    stats_wait();
    double t0 = now_s();
    memcpy(g.send, buf, n * sizeof *buf);
    memset(g.send + n, 0, (tot - n) * sizeof *buf);
    if (MPI_Alltoall(g.send, (int)c, MPI_FLOAT, g.recv, (int)c, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    float *mine = g.recv + tot;
    for (size_t k = 0; k < c; k++) {
        float s = g.recv[k];
        for (int j = 1; j < N; j++) s += g.recv[(size_t)j * c + k];
        mine[k] = s;
    }
    if (MPI_Allgather(mine, (int)c, MPI_FLOAT, g.send, (int)c, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    memcpy(buf, g.send, n * sizeof *buf);
    g.t_reduce += now_s() - t0;
    g.b_reduce += (uint64_t)c * 4 * 2 * (uint64_t)(N - 1);
    g.n_reduce++;
    return 0;
}

int cli_mpi_init(int *argc, char ***argv) {
    if (!launched()) return 0;
    // SEMBED_MPI_OVERLAP=1: the trainer sums each layer's gradients on a thread of its own during the
    // backward pass (docs/scale.md "Overlap"); one thread at a time calls MPI, so SERIALIZED suffices
    const char *ov = getenv("SEMBED_MPI_OVERLAP");
    bool overlap = ov && *ov == '1';
    int provided, want = overlap ? MPI_THREAD_SERIALIZED : MPI_THREAD_FUNNELED;
    if (MPI_Init_thread(argc, argv, want, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "sembed: MPI_Init failed\n");
        return CLI_FAIL;
    }
    if (overlap && provided < MPI_THREAD_SERIALIZED) {
        fprintf(stderr, "sembed: SEMBED_MPI_OVERLAP=1 ignored: this MPI does not provide MPI_THREAD_SERIALIZED\n");
        overlap = false;
    }
    g.on = true;
    const char *st = getenv("SEMBED_MPI_STATS");
    g.stats = st && *st == '1';
    MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g.size);
    g.comm = (struct sembed_train_comm){.rank = g.rank, .size = g.size, .allgather_f32 = allgather_f32,
                                        .allreduce_sum_f32 = allreduce_sum_f32, .overlap = overlap};
    return 0;
}

void cli_mpi_finalize(void) {
    if (!g.on) return;
    if (g.stats && g.rank == 0)
        fprintf(stderr,
                "sembed mpi: rank 0 of %d: waiting for other ranks %.3f s; all-gather %llu calls, %.3f MB received, "
                "%.3f s; allreduce %llu calls, %.3f MB sent, %.3f s\n",
                g.size, g.t_wait, (unsigned long long)g.n_gather, (double)g.b_gather / 1e6, g.t_gather, (unsigned long long)g.n_reduce, (double)g.b_reduce / 1e6, g.t_reduce);
    free(g.send);
    free(g.recv);
    MPI_Finalize();
    g.on = false;
}

void cli_mpi_abort(int status) {
    if (g.on && g.size > 1) MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
}

int cli_mpi_rank(void) { return g.on ? g.rank : 0; }
int cli_mpi_size(void) { return g.on ? g.size : 1; }
const struct sembed_train_comm *cli_mpi_train_comm(void) { return g.on && g.size > 1 ? &g.comm : NULL; }

int cli_mpi_bcast(void *buf, size_t n) {
    if (!g.on || g.size == 1) return 0;
    if (n > INT_MAX) return -1;
    return MPI_Bcast(buf, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

int cli_mpi_allreduce_max(int *v) {
    if (!g.on || g.size == 1) return 0;
    return MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

struct cli_mpi_file {
    MPI_File fh;
};

int cli_mpi_file_open(const char *path, struct cli_mpi_file **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return -1;
    if (MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_WRONLY, MPI_INFO_NULL, &(*out)->fh) != MPI_SUCCESS) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int cli_mpi_file_write_at(struct cli_mpi_file *f, uint64_t offset, const void *buf, size_t n) {
    const char *p = buf;
    while (n) { // counts are int
        int k = n > (1u << 30) ? 1 << 30 : (int)n;
        MPI_Status st;
        int got = 0;
        if (MPI_File_write_at(f->fh, (MPI_Offset)offset, p, k, MPI_BYTE, &st) != MPI_SUCCESS ||
            MPI_Get_count(&st, MPI_BYTE, &got) != MPI_SUCCESS || got != k)
            return -1;
        p += k;
        offset += (uint64_t)k;
        n -= (size_t)k;
    }
    return 0;
}

int cli_mpi_file_close(struct cli_mpi_file *f) {
    if (!f) return 0;
    int rc = MPI_File_sync(f->fh) == MPI_SUCCESS ? 0 : -1;
    if (MPI_File_close(&f->fh) != MPI_SUCCESS) rc = -1;
    free(f);
    return rc;
}

#else // built without MPI

static int env_size(void) {
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (!s) s = getenv("PMI_SIZE");
    return s ? atoi(s) : 0;
}


int cli_mpi_init(int *argc, char ***argv) {
    (void)argc; (void)argv;
    if (launched() && env_size() > 1) {
        fprintf(stderr, "sembed: started by mpirun with %d ranks, but this sembed was built without MPI "
                        "(configure with -DSEMBED_MPI=ON and libopenmpi-dev installed)\n", env_size());
        return CLI_FAIL;
    }
    return 0;
}
void cli_mpi_finalize(void) {}
void cli_mpi_abort(int status) { (void)status; }
int cli_mpi_rank(void) { return 0; }
int cli_mpi_size(void) { return 1; }
const struct sembed_train_comm *cli_mpi_train_comm(void) { return NULL; }
int cli_mpi_bcast(void *buf, size_t n) { (void)buf; (void)n; return 0; }
int cli_mpi_allreduce_max(int *v) { (void)v; return 0; }
int cli_mpi_file_open(const char *path, struct cli_mpi_file **out) { (void)path; *out = NULL; return -1; }
int cli_mpi_file_write_at(struct cli_mpi_file *f, uint64_t offset, const void *buf, size_t n) {
    (void)f; (void)offset; (void)buf; (void)n;
    return -1;
}
int cli_mpi_file_close(struct cli_mpi_file *f) { (void)f; return 0; }

#endif
