// "Device" memory of the emulated driver: host memory laid out so that kernel bugs show up.
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cuda_api.h"

namespace emu {

// Device pointers are host addresses (as with unified addressing on a GPU), 256-byte aligned as
// cuMemAlloc guarantees. Each allocation has its own mapping:
//
//   [guard page][head slack | data ..................... | tail slack][guard page]
//                             ^ base                 base+size ^      ^ multiple of 256 from base
//
// The data ends as close to the trailing PROT_NONE page as the alignment allows, so reading even
// one element past the end either faults (size a multiple of 256) or reads the tail slack, which
// holds signalling NaNs; fresh device memory is NaN as well (0xff bytes), so using a value never
// written is visible. The head slack (before base, up to the leading guard page) is poisoned too.
// Reads of either slack give NaN (a large negative integer); writes into it are found after the launch
// (check_poison), since no page protection is that fine-grained. The NaNs are signalling so that a
// write of arithmetic on a slack value (g[n] *= k), which returns a quiet NaN unchanged, still changes
// the bytes (see memory.cpp for the exact pattern).
struct Allocation {
    uintptr_t base = 0;
    size_t size = 0;
    char* map = nullptr;
    size_t map_len = 0;
    int device = -1;             // -1: page-locked host memory (cuMemHostAlloc)
    const void* owner = nullptr; // the context that allocated device memory
    unsigned host_flags = 0;
    uint64_t serial = 0;         // allocation number, for the leak report
};

struct MemoryStats {
    uint64_t live_bytes = 0, live_count = 0;
    uint64_t peak_bytes = 0, peak_count = 0;
    uint64_t alloc_calls = 0, free_calls = 0, failed_allocs = 0;
};

class Memory {
public:
    // Maps a new allocation; capacity and fault-injection checks are the caller's.
    CUresult allocate(int device, const void* owner, size_t bytes, unsigned host_flags, uintptr_t* out);
    // Frees the allocation that starts exactly at `base` and is of the given kind.
    CUresult release(uintptr_t base, bool host);
    // Frees everything a context allocated (destroying a context frees its memory).
    void release_owned_by(const void* owner);

    // The allocation containing `address`, or null.
    const Allocation* find(uintptr_t address) const;
    // The allocation whose mapping (guard pages included) holds `address`, or null: an address there
    // but outside the allocation is a device address gone astray, never host memory.
    const Allocation* find_mapping(uintptr_t address) const;
    // True when [address, address + bytes) lies inside one allocation.
    bool covers(uintptr_t address, size_t bytes) const;
    // Whether the poison around the allocation that starts at `base` (head and tail slack) is intact.
    // If not, says where it was overwritten ("4 bytes at 0 to 3 bytes past the end of allocation ...")
    // and poisons it again.
    bool check_poison(uintptr_t base, std::string* damage);

    // "N bytes past the end of allocation 0x... (M bytes)" and the like, for diagnostics.
    std::string describe(uintptr_t address) const;

    MemoryStats& stats(int device);  // device -1: host memory
    std::vector<Allocation> live() const;

private:
    std::map<uintptr_t, Allocation> by_base_;
    std::map<int, MemoryStats> stats_;
    uint64_t serial_ = 0;
};

}  // namespace emu
