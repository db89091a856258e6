// OpenBLAS's CBLAS interface (Debian: libopenblas-dev; pkg-config adds the include folder).
// OpenBLAS's cblas.h also declares openblas_set_num_threads / openblas_get_num_threads.
#include <cblas.h>
