/* For the CPU build of the kernels (cuda-kernels/emu): kernels that include the CUDA runtime header
 * get the emulation header instead. TEST SUPPORT ONLY. */
#include "cuda_emu.h"
