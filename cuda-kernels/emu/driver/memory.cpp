#include "memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

namespace emu {

namespace {

constexpr size_t kAlign = 256;  // cuMemAlloc's alignment guarantee
constexpr unsigned char kFresh = 0xff;  // fresh device memory: NaN as float and as double, -1 as an integer

// The slack poison. Plain 0xff bytes (the quiet NaN 0xffffffff) cannot show a kernel that reads a slack
// element and writes back arithmetic on it (g[n] = g[n] * k): x86 arithmetic and conversions return a quiet
// NaN operand unchanged, so the same bytes come back. A *signalling* NaN is quieted (its quiet bit set) by
// every arithmetic operation and conversion, and kept only by a plain copy, so such a write changes the
// bytes. kSnan64 is a signalling double NaN whose low half is the signalling float NaN kSnan32 and whose high
// half 0xfff7ffff a quiet float NaN: no 8-byte pattern makes both floats of a double signalling while the
// double is a NaN at all (the double's exponent needs the high float's quiet bit), so the high half is the
// float that stays quiet. The slack holds kSnan64 at 8-byte aligned addresses, except that the first whole
// 4-byte word past the data holds kSnan32 when it is the high half of an 8-byte word: the element one past
// the end of a float or double array is always signalling, and every float or double in the slack reads as
// NaN. The bytes of a partial word right after the data (data of 1 or 2-byte elements) are 0xff.
constexpr uint64_t kSnan64 = 0xfff7ffffffbfffffull;
constexpr uint32_t kSnan32 = 0xffbfffffu;

unsigned char snan64_byte(uintptr_t address) {  // little-endian, as x86-64
    return static_cast<unsigned char>(kSnan64 >> (8 * (address & 7)));
}

// The poison byte at `address` in the tail slack of data that ends at `end`.
unsigned char tail_poison(uintptr_t address, uintptr_t end) {
    const uintptr_t word = (end + 3) & ~uintptr_t{3};  // the first whole 4-byte word past the data
    if (address < word) return 0xff;
    if ((word & 7) == 4 && address < word + 4) return static_cast<unsigned char>(kSnan32 >> (8 * (address - word)));
    return snan64_byte(address);
}

// What the head slack holds: kSnan64 from its page-aligned start (a float at base - 4 is the quiet half).
// The head slack is shorter than a page.
const unsigned char* head_pattern() {
    static const std::vector<unsigned char> pattern = [] {
        std::vector<unsigned char> p(static_cast<size_t>(sysconf(_SC_PAGESIZE)));
        for (size_t k = 0; k < p.size(); ++k) p[k] = snan64_byte(k);
        return p;
    }();
    return pattern.data();
}

void poison_slack(unsigned char* head, size_t head_len, unsigned char* tail, size_t tail_len) {
    std::memcpy(head, head_pattern(), head_len);
    const uintptr_t end = reinterpret_cast<uintptr_t>(tail);
    for (size_t k = 0; k < tail_len; ++k) tail[k] = tail_poison(end + k, end);
}

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
    if (device >= 0) std::memset(base, kFresh, bytes);  // host memory starts zeroed by mmap
    poison_slack(reinterpret_cast<unsigned char*>(m + page), body - aligned, reinterpret_cast<unsigned char*>(base + bytes),
                 aligned - bytes);

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

// The first byte in [p, p + n) that differs from `expected`, or n.
size_t first_unpoisoned(const unsigned char* p, const unsigned char* expected, size_t n) {
    if (std::memcmp(p, expected, n) == 0) return n;
    for (size_t k = 0; k < n; ++k)
        if (p[k] != expected[k]) return k;
    return n;
}

// The last byte in [p, p + n) that differs from `expected`, or n.
size_t last_unpoisoned(const unsigned char* p, const unsigned char* expected, size_t n) {
    for (size_t k = n; k > 0; --k)
        if (p[k - 1] != expected[k - 1]) return k - 1;
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
    unsigned char tail_expected[kAlign];
    for (size_t k = 0; k < tail_len; ++k) tail_expected[k] = tail_poison(a.base + a.size + k, a.base + a.size);
    const unsigned char* head_expected = head_pattern();
    size_t t0 = first_unpoisoned(tail, tail_expected, tail_len);
    size_t h0 = first_unpoisoned(head, head_expected, head_len);
    if (t0 == tail_len && h0 == head_len) return true;
    char text[320];
    // Changed bytes are widened to the 4-byte words (aligned as addresses) holding them, within the slack: a
    // write that only quiets a signalling NaN changes one byte of its word.
    const uintptr_t end = a.base + a.size;
    if (t0 < tail_len) {
        const size_t last = last_unpoisoned(tail, tail_expected, tail_len);
        const size_t t1 = std::min(tail_len - 1, static_cast<size_t>(((end + last) | 3) - end));
        t0 = static_cast<size_t>(std::max(end, (end + t0) & ~uintptr_t{3}) - end);
        std::snprintf(text, sizeof text,
                      "bytes %zu to %zu past the end of allocation 0x%" PRIxPTR " (%zu bytes) were written (its tail "
                      "slack, poisoned with signalling NaNs)",
                      t0, t1, a.base, a.size);
    } else {
        const size_t h1 = last_unpoisoned(head, head_expected, head_len) | 3;  // head starts page-aligned
        h0 &= ~size_t{3};
        std::snprintf(text, sizeof text,
                      "bytes %zu to %zu before allocation 0x%" PRIxPTR " (%zu bytes) were written (its head slack, "
                      "poisoned with signalling NaNs)",
                      head_len - h1, head_len - h0, a.base, a.size);
    }
    *damage = text;
    poison_slack(head, head_len, tail, tail_len);
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
