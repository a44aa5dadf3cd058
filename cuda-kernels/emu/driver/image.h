// What the emulated driver reads from a module image (PTX text or a cubin): the entry points with
// their parameter sizes and launch bounds, and the versions a real driver checks before JIT or load.
// Instruction bodies are never interpreted: each entry runs as the CPU build of the same kernel.
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace emu {

struct EntryInfo {
    std::string name;
    std::vector<uint32_t> param_sizes;  // bytes, in declaration order
    unsigned maxntid[3] = {0, 0, 0};    // .maxntid / __launch_bounds__; 0: none declared
    unsigned reqntid[3] = {0, 0, 0};    // .reqntid; 0: none declared
    size_t shared_bytes = 0;            // static __shared__ the entry declares
};

struct ModuleImage {
    enum Kind { Ptx, Cubin } kind = Ptx;
    int ptx_isa = 0;    // PTX: .version as major * 10 + minor
    int target_sm = 0;  // PTX: .target sm_XY, cubin: the architecture it was built for (XY)
    std::vector<EntryInfo> entries;
};

enum class ImageStatus { Ok, NotAnImage, Fatbin, Malformed };

// `size` 0 means unknown: PTX is then read up to its terminating NUL and a cubin's extent is read
// from its ELF header, as cuModuleLoadData does.
ImageStatus parse_image(const void* data, size_t size, ModuleImage* out, std::string* error);

}  // namespace emu
