// The race detector behind LOSSKIT_EMU_RACECHECK=1 (compute-sanitizer's racecheck is the model).
//
// The kernel libraries in target/emu/kernels-racecheck are built with g++ -fsanitize=thread, so
// every load and store calls __tsan_readN/__tsan_writeN, which this driver defines itself (no
// libtsan); atomics (cuda_emu.h) report themselves as atomic accesses, __threadfence as a fence.
// Accesses to device allocations, page-locked memory and the launch's __shared__ variables are
// recorded per byte in shadow memory (the last write and the last two reads of other threads);
// everything else (fiber stacks, the kernel's parameters) is ignored.
//
// Happens-before, as CUDA defines it for one launch:
//   - same thread: program order;
//   - same block: a __syncthreads between the accesses (a barrier epoch); lanes of one warp also
//     a warp collective (__syncwarp, a shuffle, a vote...) both took part in after the first access;
//   - different blocks (global memory only): the first block executed __threadfence after its access
//     and then an atomic on some address, and the second block executed an atomic on that address
//     before its access (a release/acquire chain; one sparse clock per block, transitive);
//   - two atomics never race.
// Two accesses to a byte, at least one a write, not ordered this way are a race: the launch fails
// with CUDA_ERROR_LAUNCH_FAILED and a report naming both threads, the address and the source lines.
// Blocks run one after another, so cross-block ordering is a property of the fences and atomics,
// never of the order the emulator happened to pick.
//
// Deliberately lenient (no false positives in LossKit's kernels, a few missed races): a fence
// releases every earlier access of its block, and an acquiring atomic orders every later access of
// its block (CUDA requires the fencing thread to be ordered after the others by a __syncthreads).
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "../emu_abi.h"

namespace emu {

enum : int { kAccessRead = 0, kAccessWrite = 1, kAccessAtomic = 2 };

// Who is accessing: the scheduler fills this in for the running fiber.
struct RaceThread {
    uint32_t block;   // linear block index
    uint32_t thread;  // linear thread index within the block
};

class RaceDetector {
public:
    // `find_allocation`: the device allocation or page-locked buffer whose mapping holds an address
    // (base, size); the pages it answers for are tracked whole, the others not at all.
    void begin_launch(const char* kernel, const losskit_emu_library_desc* library, const void* kernel_fn, uint3 grid,
                      uint3 block, std::function<bool(uintptr_t, uintptr_t*, size_t*)> find_allocation,
                      std::function<std::string(uintptr_t)> describe);
    void begin_block(uint32_t block_linear, unsigned threads);
    void barrier_released() {
        ++epoch_;
        for (auto& h : warp_history_) h.clear();
    }
    void warp_op_completed(unsigned warp, unsigned lanes) { warp_history_[warp].push_back(lanes); }
    void fence() { ++fences_; }

    // True when `addr` is memory the detector tracks in this launch (global or shared).
    bool tracked_global(uintptr_t addr);
    bool is_shared(uintptr_t addr) const { return addr - shared_lo_ < shared_len_; }

    // Records one access; returns a report when it races with an earlier one (empty otherwise).
    std::string access(uintptr_t addr, unsigned size, int kind, uintptr_t pc, const RaceThread& t);

private:
    struct Acc {
        uint32_t gen = 0;  // 0 or an old generation: no access
        uint32_t block = 0;
        uint32_t thread = 0;
        uint32_t epoch = 0;  // barrier epoch of the block at the access
        uint32_t wseq = 0;   // warp collectives completed in the thread's warp (this epoch) at the access
        uint32_t fence = 0;  // __threadfence count of the block at the access
        uint32_t pc = 0;     // return address, as an offset into the kernel library
        uint32_t kind = 0;
    };
    struct Cell {
        Acc w;
        Acc r[2];
    };
    using Clock = std::vector<std::pair<uint32_t, uint32_t>>;  // block -> fences, sorted by block

    Cell* cell(uintptr_t addr, bool* shared);
    bool ordered(const Acc& prev, const RaceThread& t, uint32_t gen) const;
    Acc make(const RaceThread& t, int kind, uintptr_t pc, uint32_t gen) const;
    std::string report(uintptr_t addr, unsigned size, bool shared, const Acc& now, const Acc& prev) const;
    std::string who(const Acc& a) const;
    std::string site(uint32_t pc) const;
    std::string shared_name(uintptr_t addr) const;
    void sync_atomic(uintptr_t addr, const RaceThread& t);
    static void join(Clock& into, const Clock& from);
    static uint32_t lookup(const Clock& c, uint32_t block);

    std::string kernel_;
    uint3 grid_{1, 1, 1}, block_dim_{1, 1, 1};
    std::function<bool(uintptr_t, uintptr_t*, size_t*)> find_allocation_;
    std::function<std::string(uintptr_t)> describe_;
    uintptr_t lib_base_ = 0;
    std::string lib_path_;

    uintptr_t shared_lo_ = 0;
    size_t shared_len_ = 0;
    std::vector<Cell> shared_cells_;
    uint32_t gen_global_ = 0, gen_shared_ = 0;

    static constexpr unsigned kPageBits = 12;
    std::unordered_map<uintptr_t, std::unique_ptr<Cell[]>> pages_;
    uintptr_t last_page_ = ~uintptr_t(0);
    Cell* last_cells_ = nullptr;
    uintptr_t untracked_page_ = ~uintptr_t(0);  // one page known to hold no allocation

    uint32_t block_ = 0;
    uint32_t epoch_ = 0;
    uint32_t fences_ = 0;
    std::vector<std::vector<unsigned>> warp_history_;  // per warp: lanes of each completed collective
    Clock vc_;                                         // what the running block has acquired
    std::unordered_map<uintptr_t, Clock> sync_;       // per atomically accessed global address
};

}  // namespace emu
