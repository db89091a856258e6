// glibc's heap statistics (mallinfo2), which Swift's Glibc module does not expose: the benchmarks
// use the bytes in use to show that a steady-state training step allocates nothing.
#include <malloc.h>
