#include "memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace emu {

namespace {

constexpr size_t kAlign = 256;  // cuMemAlloc's alignment guarantee
constexpr unsigned char kPoison = 0xff;  // NaN as float and as double, -1 as an integer

size_t page_size() {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return page;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

CUresult Memory::allocate(int device, const void* owner, size_t bytes, unsigned host_flags, uintptr_t* out) {
    const size_t page = page_size();
    const size_t aligned = round_up(bytes, kAlign);
    const size_t body = round_up(aligned, page);
    const size_t map_len = page + body + page;
    void* map = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    char* m = static_cast<char*>(map);
    if (mprotect(m, page, PROT_NONE) != 0 || mprotect(m + page + body, page, PROT_NONE) != 0) {
        munmap(map, map_len);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    char* base = m + page + body - aligned;
    std::memset(m + page, kPoison, body - aligned);  // the head slack
    if (device >= 0) std::memset(base, kPoison, aligned);
    else std::memset(base + bytes, kPoison, aligned - bytes);  // host memory starts zeroed by mmap

    Allocation a;
    a.base = reinterpret_cast<uintptr_t>(base);
    a.size = bytes;
    a.map = m;
    a.map_len = map_len;
    a.device = device;
    a.owner = owner;
    a.host_flags = host_flags;
    a.serial = ++serial_;
    by_base_[a.base] = a;

    MemoryStats& s = stats(device);
    ++s.alloc_calls;
    s.live_bytes += bytes;
    ++s.live_count;
    if (s.live_bytes > s.peak_bytes) s.peak_bytes = s.live_bytes;
    if (s.live_count > s.peak_count) s.peak_count = s.live_count;
    *out = a.base;
    return CUDA_SUCCESS;
}

CUresult Memory::release(uintptr_t base, bool host) {
    auto it = by_base_.find(base);
    if (it == by_base_.end() || (it->second.device < 0) != host) return CUDA_ERROR_INVALID_VALUE;
    MemoryStats& s = stats(it->second.device);
    ++s.free_calls;
    s.live_bytes -= it->second.size;
    --s.live_count;
    munmap(it->second.map, it->second.map_len);
    by_base_.erase(it);
    return CUDA_SUCCESS;
}

void Memory::release_owned_by(const void* owner) {
    std::vector<uintptr_t> doomed;
    for (const auto& [base, a] : by_base_)
        if (a.owner == owner && a.device >= 0) doomed.push_back(base);
    for (uintptr_t base : doomed) release(base, false);
}

const Allocation* Memory::find(uintptr_t address) const {
    auto it = by_base_.upper_bound(address);
    if (it == by_base_.begin()) return nullptr;
    --it;
    const Allocation& a = it->second;
    return address < a.base + a.size ? &a : nullptr;
}

const Allocation* Memory::find_mapping(uintptr_t address) const {
    auto it = by_base_.upper_bound(address);
    for (int k = 0; k < 2; ++k) {  // the allocations just above and just below the address
        if (k == 1) {
            if (it == by_base_.begin()) break;
            --it;
        } else if (it == by_base_.end()) {
            continue;
        }
        const uintptr_t lo = reinterpret_cast<uintptr_t>(it->second.map);
        if (address >= lo && address < lo + it->second.map_len) return &it->second;
    }
    return nullptr;
}

namespace {

// The first byte in [p, p + n) that is not poison, or n.
size_t first_unpoisoned(const unsigned char* p, size_t n) {
    static const std::vector<unsigned char> poison(4096, kPoison);
    for (size_t done = 0; done < n;) {
        const size_t chunk = std::min(n - done, poison.size());
        if (std::memcmp(p + done, poison.data(), chunk) != 0) {
            for (size_t k = 0; k < chunk; ++k)
                if (p[done + k] != kPoison) return done + k;
        }
        done += chunk;
    }
    return n;
}

// The last byte in [p, p + n) that is not poison, or n.
size_t last_unpoisoned(const unsigned char* p, size_t n) {
    for (size_t k = n; k > 0; --k)
        if (p[k - 1] != kPoison) return k - 1;
    return n;
}

}  // namespace

bool Memory::check_poison(uintptr_t base, std::string* damage) {
    auto it = by_base_.find(base);
    if (it == by_base_.end()) return true;
    const Allocation& a = it->second;
    const size_t page = page_size();
    unsigned char* head = reinterpret_cast<unsigned char*>(a.map) + page;
    const size_t head_len = static_cast<size_t>(reinterpret_cast<unsigned char*>(a.base) - head);
    unsigned char* tail = reinterpret_cast<unsigned char*>(a.base + a.size);
    const size_t tail_len = round_up(a.size, kAlign) - a.size;
    const size_t t0 = first_unpoisoned(tail, tail_len);
    const size_t h0 = first_unpoisoned(head, head_len);
    if (t0 == tail_len && h0 == head_len) return true;
    char text[320];
    if (t0 < tail_len) {
        const size_t t1 = last_unpoisoned(tail, tail_len);
        std::snprintf(text, sizeof text,
                      "bytes %zu to %zu past the end of allocation 0x%" PRIxPTR " (%zu bytes) were written (its tail "
                      "slack, poisoned with 0xff)",
                      t0, t1, a.base, a.size);
    } else {
        const size_t h1 = last_unpoisoned(head, head_len);
        std::snprintf(text, sizeof text,
                      "bytes %zu to %zu before allocation 0x%" PRIxPTR " (%zu bytes) were written (its head slack, "
                      "poisoned with 0xff)",
                      head_len - h1, head_len - h0, a.base, a.size);
    }
    *damage = text;
    std::memset(head, kPoison, head_len);
    std::memset(tail, kPoison, tail_len);
    return false;
}

bool Memory::covers(uintptr_t address, size_t bytes) const {
    const Allocation* a = find(address);
    return a != nullptr && bytes <= a->base + a->size - address;
}

std::string Memory::describe(uintptr_t address) const {
    char text[256];
    if (const Allocation* a = find(address)) {
        std::snprintf(text, sizeof text, "offset %zu of allocation 0x%" PRIxPTR " (%zu bytes)",
                      static_cast<size_t>(address - a->base), a->base, a->size);
        return text;
    }
    // Not inside one: name the allocation whose guard pages or slack it hit.
    if (const Allocation* m = find_mapping(address)) {
        const Allocation& a = *m;
        if (address >= a.base + a.size)
            std::snprintf(text, sizeof text, "%zu bytes past the end of allocation 0x%" PRIxPTR " (%zu bytes)",
                          static_cast<size_t>(address - (a.base + a.size)), a.base, a.size);
        else
            std::snprintf(text, sizeof text, "%zu bytes before allocation 0x%" PRIxPTR " (%zu bytes)",
                          static_cast<size_t>(a.base - address), a.base, a.size);
        return text;
    }
    std::snprintf(text, sizeof text, "an address outside every allocation");
    return text;
}

MemoryStats& Memory::stats(int device) { return stats_[device]; }

std::vector<Allocation> Memory::live() const {
    std::vector<Allocation> all;
    for (const auto& [base, a] : by_base_) all.push_back(a);
    return all;
}

}  // namespace emu
