// tools/mpi_comm.h: the CLI's MPI layer (prefix cli_mpi_). The library stays MPI-free: training
// gets a struct sembed_train_comm whose callbacks live here; `embed` uses the file helpers.
//
// One binary: MPI is initialised only when the process was started by mpirun (Open MPI sets
// OMPI_COMM_WORLD_SIZE, PMIx sets PMIX_RANK); a plain `sembed ...` never touches MPI. Built
// without MPI (SEMBED_MPI=OFF), a process launched by mpirun with more than one rank refuses to
// run instead of doing the whole job N times.
#ifndef SEMBED_TOOLS_MPI_COMM_H
#define SEMBED_TOOLS_MPI_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sembed/train.h"

// 0, or CLI_FAIL with a message printed.
int cli_mpi_init(int *argc, char ***argv);
void cli_mpi_finalize(void);
// Ends every rank (a failed rank must not leave the others waiting in a collective).
void cli_mpi_abort(int status);
int cli_mpi_rank(void);
int cli_mpi_size(void);          // 1 when not launched by mpirun
// The communicator for sembed_train (NULL when size is 1).
const struct sembed_train_comm *cli_mpi_train_comm(void);
// Collective helpers; 0 or -1.
int cli_mpi_bcast(void *buf, size_t n);          // from rank 0
int cli_mpi_allreduce_max(int *v);
// A file every rank writes at its own offsets (MPI-IO); open and close are collective.
struct cli_mpi_file;
int cli_mpi_file_open(const char *path, struct cli_mpi_file **out);
int cli_mpi_file_write_at(struct cli_mpi_file *f, uint64_t offset, const void *buf, size_t n);
int cli_mpi_file_close(struct cli_mpi_file *f);   // flushes (MPI_File_sync) and closes

#endif
