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
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* Kernels are built with -fsanitize=alignment (scripts/build-emu.sh): every typed load or store checks
 * that its address is aligned to its type, as a GPU's ld/st instructions require, and calls one of
 * these on a misaligned one (-fno-sanitize-recover: the _abort variant). Defined here (hidden), so no
 * UBSan runtime is linked: a misaligned access ends the launch with CUDA_ERROR_MISALIGNED_ADDRESS,
 * naming the kernel, block, thread, address and source line. Layouts as in GCC's and LLVM's UBSan
 * runtimes (ubsan_handlers.h, "v1"). */
struct losskit_emu_ubsan_location {
    const char* file;
    unsigned int line;
    unsigned int column;
};
struct losskit_emu_ubsan_type {
    unsigned short kind;
    unsigned short info;
    char name[1];
};
struct losskit_emu_ubsan_mismatch {
    losskit_emu_ubsan_location location;
    const losskit_emu_ubsan_type* type;
    unsigned char log_alignment;
    unsigned char check_kind;
};

__attribute__((noreturn)) static void losskit_emu_ubsan_mismatch_report(const losskit_emu_ubsan_mismatch* data, const void* pointer) {
    static const char* const kinds[] = {"load of",          "store to",           "reference binding to",
                                        "member access within", "member call on", "constructor call on",
                                        "downcast of",      "downcast of",        "upcast of",
                                        "cast to virtual base of", "_Nonnull binding to", "dynamic operation on"};
    const char* kind = data->check_kind < sizeof kinds / sizeof kinds[0] ? kinds[data->check_kind] : "access to";
    /* The file as the compiler was given it: shown from cuda-kernels/ on, as __FILE__ is (-fmacro-prefix-map). */
    const char* file = data->location.file != nullptr ? data->location.file : "?";
    if (const char* rel = strstr(file, "/cuda-kernels/")) file = rel + 1;
    char site[256];
    snprintf(site, sizeof site, "%s:%u", file, data->location.line);
    char access[160];
    snprintf(access, sizeof access, "%s type %s", kind, data->type != nullptr ? data->type->name : "?");
    const unsigned alignment = 1u << data->log_alignment;
    if (pointer == nullptr || (reinterpret_cast<uintptr_t>(pointer) & (alignment - 1)) == 0) {
        /* Not an alignment failure (only -fsanitize=alignment is enabled; a null pointer, say). */
        char message[256];
        snprintf(message, sizeof message, "invalid %s (address %p)", access, pointer);
        losskit_emu_abort_launch(700 /* CUDA_ERROR_ILLEGAL_ADDRESS */, site, message);
    }
    losskit_emu_misaligned(site, pointer, alignment, access);
}

extern "C" __attribute__((visibility("hidden"), noreturn)) void __ubsan_handle_type_mismatch_v1_abort(
    losskit_emu_ubsan_mismatch* data, void* pointer) {
    losskit_emu_ubsan_mismatch_report(data, pointer);
    __builtin_unreachable();
}

extern "C" __attribute__((visibility("hidden"))) void __ubsan_handle_type_mismatch_v1(losskit_emu_ubsan_mismatch* data,
                                                                                     void* pointer) {
    losskit_emu_ubsan_mismatch_report(data, pointer);  /* never returns: a GPU faults */
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
