/*
 * Included once per kernel library, by the registration file gen_registry.py generates after the
 * .cu source. Defines what every CPU-built kernel library needs exactly once: its registration
 * with the driver and a device-side assert that fails the launch instead of aborting the process.
 *
 * TEST SUPPORT ONLY: nothing here is part of the LossKit product.
 */
#ifndef LOSSKIT_EMU_LIBRARY_H
#define LOSSKIT_EMU_LIBRARY_H

#include <assert.h>
#include <stdio.h>

#include "cuda_emu.h"

/* The linker defines these for a section whose name is a C identifier; weak, so a library without
 * any __shared__ variable links too (both are then null). */
extern "C" char __start_losskit_emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_losskit_emu_shared[] __attribute__((weak, visibility("hidden")));

/* A failing device-side assert() ends the launch with CUDA_ERROR_ASSERT, as on a GPU, instead of
 * aborting the JVM. Defined here (hidden), it takes precedence over glibc's for this library. */
extern "C" void __assert_fail(const char* expr, const char* file, unsigned int line, const char* function) noexcept {
    char message[512];
    snprintf(message, sizeof message, "assertion `%s' failed in %s", expr, function);
    char site[256];
    snprintf(site, sizeof site, "%s:%u", file, line);
    losskit_emu_abort_launch(710 /* CUDA_ERROR_ASSERT */, site, message);
}

#define LOSSKIT_EMU_LIBRARY(source, kernels, count)                                                  \
    namespace {                                                                                     \
    struct LosskitEmuRegistrar {                                                                    \
        LosskitEmuRegistrar() {                                                                     \
            static const losskit_emu_library_desc library = {                                       \
                LOSSKIT_EMU_ABI_VERSION, source, __start_losskit_emu_shared,                        \
                __stop_losskit_emu_shared, count, kernels};                                         \
            losskit_emu_register_library(&library);                                                 \
        }                                                                                           \
    } losskit_emu_registrar;                                                                        \
    }

#endif /* LOSSKIT_EMU_LIBRARY_H */
