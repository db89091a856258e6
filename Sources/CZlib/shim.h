// zlib (Debian: zlib1g-dev): deflate for PNG images.
#include <zlib.h>
