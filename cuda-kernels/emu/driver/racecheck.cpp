// See racecheck.h.
#include "racecheck.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace emu {

namespace {

std::string demangle(const char* name) {
    int status = 0;
    char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    std::string out = status == 0 && d != nullptr ? d : name;
    std::free(d);
    return out;
}

// The symbol of the ELF file `path` (its .symtab: __shared__ variables are local, hidden symbols that
// dladdr cannot see) whose object covers the file-relative address `vaddr`.
std::string object_symbol(const std::string& path, uintptr_t vaddr, uintptr_t* offset) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    struct stat st;
    std::string found;
    if (fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(sizeof(Elf64_Ehdr))) {
        void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            const char* base = static_cast<const char*>(map);
            const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
            const size_t size = static_cast<size_t>(st.st_size);
            if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
                eh->e_shoff + size_t(eh->e_shnum) * sizeof(Elf64_Shdr) <= size) {
                const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
                for (unsigned i = 0; i < eh->e_shnum && found.empty(); ++i) {
                    if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
                    const Elf64_Shdr& strtab = sh[sh[i].sh_link];
                    if (sh[i].sh_offset + sh[i].sh_size > size || strtab.sh_offset + strtab.sh_size > size) continue;
                    const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
                    const size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
                    for (size_t k = 0; k < n; ++k) {
                        if (ELF64_ST_TYPE(sym[k].st_info) != STT_OBJECT || sym[k].st_name >= strtab.sh_size) continue;
                        if (vaddr < sym[k].st_value || vaddr >= sym[k].st_value + std::max<uint64_t>(sym[k].st_size, 1))
                            continue;
                        found = demangle(base + strtab.sh_offset + sym[k].st_name);
                        *offset = vaddr - sym[k].st_value;
                        break;
                    }
                }
            }
            munmap(map, size);
        }
    }
    close(fd);
    return found;
}

std::string strip_root(std::string file) {
    const size_t k = file.find("cuda-kernels/");
    return k == std::string::npos ? file : file.substr(k);
}

}  // namespace

void RaceDetector::begin_launch(const char* kernel, const losskit_emu_library_desc* library, const void* kernel_fn,
                                uint3 grid, uint3 block, std::function<bool(uintptr_t, uintptr_t*, size_t*)> find_allocation,
                                std::function<std::string(uintptr_t)> describe) {
    kernel_ = kernel;
    grid_ = grid;
    block_dim_ = block;
    find_allocation_ = std::move(find_allocation);
    describe_ = std::move(describe);
    Dl_info info{};
    if (dladdr(kernel_fn, &info) != 0) {
        lib_base_ = reinterpret_cast<uintptr_t>(info.dli_fbase);
        lib_path_ = info.dli_fname != nullptr ? info.dli_fname : "";
    }
    const uintptr_t lo = reinterpret_cast<uintptr_t>(library->shared_begin);
    const size_t len = library->shared_begin != nullptr && library->shared_end > library->shared_begin
                           ? static_cast<size_t>(library->shared_end - library->shared_begin)
                           : 0;
    if (lo != shared_lo_ || len != shared_len_) {
        shared_lo_ = lo;
        shared_len_ = len;
        shared_cells_.assign(len, Cell{});
        gen_shared_ = 0;
    }
    // A new generation makes every earlier launch's accesses invisible; the shadow pages themselves
    // are kept (allocations are reused launch after launch) unless they grow large.
    if (pages_.size() > 256) pages_.clear();
    last_page_ = ~uintptr_t(0);
    last_cells_ = nullptr;
    untracked_page_ = ~uintptr_t(0);
    if (++gen_global_ == 0) {  // wrapped: old cells could look current
        pages_.clear();
        gen_global_ = 1;
    }
    sync_.clear();
}

void RaceDetector::begin_block(uint32_t block_linear, unsigned threads) {
    block_ = block_linear;
    epoch_ = 0;
    fences_ = 0;
    vc_.clear();
    warp_history_.assign((threads + 31) / 32, {});
    if (++gen_shared_ == 0) {
        std::fill(shared_cells_.begin(), shared_cells_.end(), Cell{});
        gen_shared_ = 1;
    }
}

bool RaceDetector::tracked_global(uintptr_t addr) {
    const uintptr_t page = addr >> kPageBits;
    if (page == last_page_) return true;
    if (page == untracked_page_) return false;
    return cell(addr, nullptr) != nullptr;
}

RaceDetector::Cell* RaceDetector::cell(uintptr_t addr, bool* shared) {
    if (addr - shared_lo_ < shared_len_) {
        if (shared != nullptr) *shared = true;
        return &shared_cells_[addr - shared_lo_];
    }
    if (shared != nullptr) *shared = false;
    const uintptr_t page = addr >> kPageBits;
    const size_t in_page = addr & ((uintptr_t(1) << kPageBits) - 1);
    if (page == last_page_) return &last_cells_[in_page];
    if (page == untracked_page_) return nullptr;
    auto it = pages_.find(page);
    if (it == pages_.end()) {
        uintptr_t base = 0;
        size_t size = 0;
        if (!find_allocation_ || !find_allocation_(addr, &base, &size)) {
            untracked_page_ = page;
            return nullptr;
        }
        it = pages_.emplace(page, std::unique_ptr<Cell[]>(new Cell[size_t(1) << kPageBits])).first;
    }
    last_page_ = page;
    last_cells_ = it->second.get();
    return &last_cells_[in_page];
}

RaceDetector::Acc RaceDetector::make(const RaceThread& t, int kind, uintptr_t pc, uint32_t gen) const {
    Acc a;
    a.gen = gen;
    a.block = t.block;
    a.thread = t.thread;
    a.epoch = epoch_;
    const unsigned warp = t.thread / 32;
    a.wseq = warp < warp_history_.size() ? static_cast<uint32_t>(warp_history_[warp].size()) : 0;
    a.fence = fences_;
    a.pc = static_cast<uint32_t>(pc - lib_base_);
    a.kind = static_cast<uint32_t>(kind);
    return a;
}

bool RaceDetector::ordered(const Acc& prev, const RaceThread& t, uint32_t gen) const {
    if (prev.gen != gen) return true;  // no such access in this launch (or block, for shared memory)
    if (prev.block == t.block) {
        if (prev.thread == t.thread || prev.epoch != epoch_) return true;
        const unsigned warp = t.thread / 32;
        if (prev.thread / 32 != warp) return false;
        const unsigned both = (1u << (prev.thread % 32)) | (1u << (t.thread % 32));
        const std::vector<unsigned>& h = warp_history_[warp];
        for (size_t k = prev.wseq; k < h.size(); ++k)
            if ((h[k] & both) == both) return true;
        return false;
    }
    return lookup(vc_, prev.block) > prev.fence;
}

std::string RaceDetector::access(uintptr_t addr, unsigned size, int kind, uintptr_t pc, const RaceThread& t) {
    std::string found;
    for (unsigned k = 0; k < size; ++k) {
        bool shared = false;
        Cell* c = cell(addr + k, &shared);
        if (c == nullptr) return found;  // untracked (a whole access lies in one allocation)
        const uint32_t gen = shared ? gen_shared_ : gen_global_;
        const Acc now = make(t, kind, pc, gen);
        const bool atomic = kind == kAccessAtomic;
        const bool writes = kind != kAccessRead;
        if (found.empty()) {
            // write/write and read-after-write; two atomics never race
            if (!(atomic && c->w.kind == kAccessAtomic) && !ordered(c->w, t, gen))
                found = report(addr, size, shared, now, c->w);
            if (writes && found.empty())
                for (const Acc& r : c->r)
                    if (!ordered(r, t, gen)) {
                        found = report(addr, size, shared, now, r);
                        break;
                    }
        }
        if (writes) {
            c->w = now;
            c->r[0].gen = c->r[1].gen = 0;  // later accesses are checked against this write
        } else if (c->r[0].gen != gen || ordered(c->r[0], t, gen)) {
            c->r[0] = now;
        } else if (c->r[0].block != t.block || c->r[0].thread != t.thread) {
            c->r[1] = now;
        }
        if (!found.empty()) return found;
    }
    if (kind == kAccessAtomic && !is_shared(addr)) sync_atomic(addr, t);
    return found;
}

// An atomic acquires what earlier atomics on the address released, then releases this block's
// fences (and what it acquired) to later ones.
void RaceDetector::sync_atomic(uintptr_t addr, const RaceThread& t) {
    Clock& c = sync_[addr];
    join(vc_, c);
    join(c, vc_);
    join(c, Clock{{t.block, fences_}});
}

void RaceDetector::join(Clock& into, const Clock& from) {
    Clock out;
    out.reserve(into.size() + from.size());
    size_t i = 0, j = 0;
    while (i < into.size() || j < from.size()) {
        if (j == from.size() || (i < into.size() && into[i].first < from[j].first)) {
            out.push_back(into[i++]);
        } else if (i == into.size() || from[j].first < into[i].first) {
            out.push_back(from[j++]);
        } else {
            out.emplace_back(into[i].first, std::max(into[i].second, from[j].second));
            ++i;
            ++j;
        }
    }
    into.swap(out);
}

uint32_t RaceDetector::lookup(const Clock& c, uint32_t block) {
    auto it = std::lower_bound(c.begin(), c.end(), std::make_pair(block, uint32_t(0)));
    return it != c.end() && it->first == block ? it->second : 0;
}

std::string RaceDetector::who(const Acc& a) const {
    const uint32_t bx = a.block % grid_.x, by = a.block / grid_.x % grid_.y, bz = a.block / (grid_.x * grid_.y);
    const uint32_t tx = a.thread % block_dim_.x, ty = a.thread / block_dim_.x % block_dim_.y,
                   tz = a.thread / (block_dim_.x * block_dim_.y);
    const char* what = a.kind == kAccessAtomic ? "atomic" : a.kind == kAccessWrite ? "write" : "read";
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s by block (%u,%u,%u) thread (%u,%u,%u) [warp %u lane %u] at %s", what, bx, by,
                  bz, tx, ty, tz, a.thread / 32, a.thread % 32, site(a.pc).c_str());
    return buf;
}

// "file:line" of a return address in the kernel library, from its debug info (addr2line): the
// innermost frame outside the emulator's own headers, and the kernel's line when it differs.
std::string RaceDetector::site(uint32_t pc) const {
    char fallback[64];
    std::snprintf(fallback, sizeof fallback, "+0x%x", pc);
    const std::string lib = lib_path_.substr(lib_path_.rfind('/') + 1) + fallback;
    if (lib_path_.empty() || lib_path_.find('\'') != std::string::npos) return lib;
    char cmd[4200];
    std::snprintf(cmd, sizeof cmd, "addr2line -i -e '%s' 0x%x 2>/dev/null", lib_path_.c_str(), pc == 0 ? 0 : pc - 1);
    FILE* p = popen(cmd, "r");
    if (p == nullptr) return lib;
    std::vector<std::string> frames;
    char line[4096];
    while (std::fgets(line, sizeof line, p) != nullptr) {
        std::string s = line;
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        const size_t disc = s.find(" (discriminator");
        if (disc != std::string::npos) s.erase(disc);
        if (!s.empty() && s.rfind("??", 0) != 0) frames.push_back(strip_root(s));
    }
    pclose(p);
    if (frames.empty()) return lib;
    std::string inner;
    for (const std::string& f : frames)
        if (f.find("cuda_emu.h") == std::string::npos && f.find("emu_library.h") == std::string::npos) {
            inner = f;
            break;
        }
    if (inner.empty()) inner = frames.front();
    const std::string& outer = frames.back();
    return inner == outer ? inner : inner + " (inlined into " + outer + ")";
}

std::string RaceDetector::shared_name(uintptr_t addr) const {
    uintptr_t offset = 0;
    const std::string name = lib_path_.empty() ? "" : object_symbol(lib_path_, addr - lib_base_, &offset);
    char buf[512];
    if (name.empty())
        std::snprintf(buf, sizeof buf, "__shared__ memory, byte %zu of the library's shared section",
                      static_cast<size_t>(addr - shared_lo_));
    else
        std::snprintf(buf, sizeof buf, "__shared__ variable %s, byte offset %zu", name.c_str(),
                      static_cast<size_t>(offset));
    return buf;
}

std::string RaceDetector::report(uintptr_t addr, unsigned size, bool shared, const Acc& now, const Acc& prev) const {
    const std::string where = shared ? shared_name(addr) : (describe_ ? describe_(addr) : "");
    std::string why;
    if (now.block != prev.block)
        why = "different blocks, not ordered by __threadfence and an atomic the second block observed";
    else if (now.thread / 32 == prev.thread / 32)
        why = "same warp, no __syncthreads, __syncwarp or warp collective of both lanes between them";
    else
        why = "same block, no __syncthreads between them";
    char head[256];
    std::snprintf(head, sizeof head, "data race on %s memory (%u-byte access at 0x%" PRIxPTR ", %s): ",
                  shared ? "shared" : "global", size, addr, where.c_str());
    return "kernel " + kernel_ + ": " + head + who(now) + " conflicts with an earlier " + who(prev) + " (" + why + ")";
}

}  // namespace emu
