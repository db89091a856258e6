// OpenMPI's C API (Debian: libopenmpi-dev; pkg-config ompi-c adds the include folder).
#include <mpi.h>

// MPI's handles are macros that Swift cannot import; these give them to Swift.
static inline MPI_Comm vb_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype vb_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype vb_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype vb_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype vb_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op vb_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op vb_mpi_max(void) { return MPI_MAX; }
static inline void *vb_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int vb_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
