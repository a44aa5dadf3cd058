// The fiber scheduler behind cuLaunchKernel, and the runtime entry points the CPU-built kernels call
// (losskit_emu_barrier, losskit_emu_warp_op...).
//
// Why fibers: __syncthreads and warp shuffles need every thread of a block to reach the same point
// before any goes on. Running a block's threads as cooperative fibers on one OS thread gives exactly
// that with no locks, keeps shared memory a plain static array, and makes a launch deterministic for
// a given schedule. Boost.Context's fcontext switch saves only callee-saved registers (~10 ns); a
// ucontext switch makes a sigprocmask system call every time (~5 us per thread per barrier).
#include "scheduler.h"

#include "racecheck.h"

#include <boost/context/detail/fcontext.hpp>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

using boost::context::detail::fcontext_t;
using boost::context::detail::jump_fcontext;
using boost::context::detail::make_fcontext;
using boost::context::detail::transfer_t;

// The state the kernels read (emu_abi.h). Plain globals: launches are serialised.
extern "C" {
__attribute__((visibility("default"))) losskit_emu_thread_view* losskit_emu_current = nullptr;
__attribute__((visibility("default"))) losskit_emu_block_view losskit_emu_block = {};
}

namespace emu {

namespace {

constexpr unsigned kWarp = 32;

enum class State : uint8_t { Ready, AtBarrier, AtWarpOp, Done };

struct Fiber {
    losskit_emu_thread_view view;  // losskit_emu_current points here while the fiber runs
    fcontext_t ctx = nullptr;      // the fiber's suspended context
    fcontext_t back = nullptr;     // the scheduler's context, to suspend into
    State state = State::Ready;
    unsigned linear = 0, warp = 0, lane = 0;
    const char* site = nullptr;    // where it waits, for diagnostics
    int kind = 0;                  // which collective it waits in
    uint64_t value = 0;            // its operand of that collective
    int predicate = 0;
    int b = 0;
    uint64_t result = 0;           // the collective's result for this thread
};

// A warp collective some lanes have reached and others have not yet.
struct WarpOp {
    int kind;
    unsigned mask;
    const char* site;
    int c;
    unsigned arrived;
};

struct Warp {
    unsigned exists = 0;  // lanes that are threads of the block (the last warp may be partial)
    unsigned exited = 0;
    std::vector<WarpOp> pending;  // disjoint masks: divergent halves may each run a collective
};

const char* kind_name(int kind) {
    static const char* const names[] = {
        "__shfl_sync",       "__shfl_up_sync",    "__shfl_down_sync",  "__shfl_xor_sync",
        "__ballot_sync",     "__any_sync",        "__all_sync",        "__syncwarp",
        "__reduce_add_sync", "__reduce_min_sync", "__reduce_max_sync", "__reduce_and_sync",
        "__reduce_or_sync",  "__reduce_xor_sync", "__reduce_min_sync", "__reduce_max_sync",
    };
    return kind >= 0 && kind < LOSSKIT_EMU_WARP_KIND_COUNT ? names[kind] : "warp collective";
}

const char* barrier_name(int kind) {
    static const char* const names[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and",
                                        "__syncthreads_or"};
    return kind >= 0 && kind <= LOSSKIT_EMU_BAR_OR ? names[kind] : "barrier";
}

bool is_shuffle(int kind) { return kind >= LOSSKIT_EMU_SHFL_IDX && kind <= LOSSKIT_EMU_SHFL_BFLY; }

std::string lanes(unsigned mask) {
    std::string s;
    for (unsigned l = 0; l < kWarp; ++l) {
        if ((mask >> l & 1u) == 0) continue;
        unsigned e = l;
        while (e + 1 < kWarp && (mask >> (e + 1) & 1u)) ++e;
        if (!s.empty()) s += ",";
        s += std::to_string(l);
        if (e > l) s += "-" + std::to_string(e);
        l = e;
    }
    return s.empty() ? "none" : s;
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
    char buf[1024];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    return buf;
}

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t hash_name(const char* s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
    return h;
}

pid_t current_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

class Runner {
public:
    LaunchOutcome run(const GridLaunch& launch, size_t stack_bytes, bool catch_faults);

    // Entry points for the kernels, always called from inside a fiber.
    int barrier(const char* site, int kind, int predicate);
    uint64_t warp_op(const char* site, int kind, unsigned mask, uint64_t value, int predicate, int b, int c);
    unsigned activemask() const;
    // Ends the launch from inside the running fiber; `who` names the thread at fault when it is
    // not the running one (a lane whose shuffle completes when another lane exits).
    [[noreturn]] void abort_launch(CUresult result, const char* site, const std::string& what,
                                   const Fiber* who = nullptr);
    // LOSSKIT_EMU_RACECHECK: one memory access of the running thread (kAccessRead/Write/Atomic), a
    // __threadfence. Under the random-mem schedule both may also switch to another fiber first.
    void mem_access(uintptr_t addr, unsigned size, int kind, uintptr_t pc);
    void fence();

    // Fault handling: the signal handler records the fault and redirects the fiber to
    // land_after_fault(). A fault is the kernel's when a fiber of this launch is running on the
    // faulting OS thread (the gettid system call only after the cheap checks).
    // A misaligned load or store (cuda_emu.h's checks, the UBSan alignment handlers): ends the launch
    // with CUDA_ERROR_MISALIGNED_ADDRESS, naming the address's allocation.
    [[noreturn]] void misaligned(const char* site, const void* address, unsigned alignment, const char* access);

    bool owns_fault() const { return exec_tid_ != 0 && current_ != nullptr && exec_tid_ == current_tid(); }
    void record_fault(int sig, uintptr_t address, ucontext_t* uc);
    [[noreturn]] void land_after_fault();

private:
    [[noreturn]] void abandon(CUresult result, const std::string& message);
    void maybe_switch();
    static void fiber_main(transfer_t t);
    void run_block(uint64_t block_linear);
    void resume(Fiber& f);
    void suspend(Fiber& f, State state);
    void thread_exit(Fiber& f);
    void release_barrier();
    bool op_complete(const Warp& w, const WarpOp& op) const;
    void finish_op(Warp& w, size_t index);
    void report_deadlock();
    std::string where(const Fiber* f) const;
    void fail(CUresult result, const std::string& message);
    void ensure_stacks(size_t count, size_t stack_bytes);
    void make_order(uint64_t block_linear, uint64_t pass);

    const GridLaunch* launch_ = nullptr;
    std::vector<Fiber> fibers_;
    std::vector<Warp> warps_;
    std::vector<unsigned> order_;
    unsigned alive_ = 0;
    unsigned threads_ = 0;  // threads per block

    // LOSSKIT_EMU_RACECHECK and the random-mem schedule
    bool racecheck_ = false;
    bool mem_switch_ = false;
    uint64_t mem_rng_ = 0;
    uint32_t block_linear_ = 0;
    uintptr_t stack_lo_ = 0, stack_len_ = 0;  // the running fiber's stack: never tracked
    RaceDetector race_;

    unsigned bar_arrived_ = 0;
    int bar_kind_ = 0;
    const char* bar_site_ = nullptr;
    int bar_acc_ = 0;

    Fiber* current_ = nullptr;
    bool failed_ = false;
    LaunchOutcome outcome_;

    struct Stack {
        char* map;
        size_t len;
        char* top;
    };
    std::vector<Stack> stacks_;
    size_t stack_bytes_ = 0;

    volatile pid_t exec_tid_ = 0;
    struct Fault {
        int sig;
        uintptr_t address;
        bool write;
        uintptr_t pc;
    } fault_{};
};

// Never destroyed: a JVM thread may still be running a kernel while the process exits.
Runner& g_runner = *new Runner;

// ---- fault handling ------------------------------------------------------------------------

struct sigaction g_previous[NSIG];
bool g_handlers_installed = false;

extern "C" void losskit_emu_fault_landing() { g_runner.land_after_fault(); }

void on_fault_signal(int sig, siginfo_t* info, void* context) {
    if (g_runner.owns_fault()) {
        g_runner.record_fault(sig, reinterpret_cast<uintptr_t>(info->si_addr), static_cast<ucontext_t*>(context));
        return;
    }
    // Not a kernel's fault (the JVM uses SIGSEGV for null checks and safepoints): hand it on.
    const struct sigaction& prev = g_previous[sig];
    if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
        prev.sa_sigaction(sig, info, context);
    } else if (prev.sa_handler == SIG_IGN) {
        return;
    } else if (prev.sa_handler == SIG_DFL) {
        signal(sig, SIG_DFL);
        raise(sig);
    } else {
        prev.sa_handler(sig);
    }
}

void install_fault_handlers() {
    if (g_handlers_installed) return;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;  // on our alternate stack: a fiber stack overflow is a fault too
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE}) sigaction(sig, &sa, &g_previous[sig]);
    g_handlers_installed = true;
}

// ---- Runner --------------------------------------------------------------------------------

void Runner::record_fault(int sig, uintptr_t address, ucontext_t* uc) {
#if defined(__x86_64__)
    fault_.sig = sig;
    fault_.address = address;
    fault_.write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;  // page-fault error code: W bit
    fault_.pc = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
    // Continue in land_after_fault() on the top of the faulting fiber's own stack (the fiber is
    // abandoned, so its frames may be overwritten), with the alignment a call would leave.
    const Stack& stack = stacks_[current_->linear];
    uintptr_t sp = (reinterpret_cast<uintptr_t>(stack.top) - 256) & ~uintptr_t(15);
    uc->uc_mcontext.gregs[REG_RSP] = static_cast<greg_t>(sp - 8);
    uc->uc_mcontext.gregs[REG_RIP] = reinterpret_cast<greg_t>(&losskit_emu_fault_landing);
#else
#error "fault recovery is implemented for x86-64 only"
#endif
}

void Runner::land_after_fault() {
    const Stack& stack = stacks_[current_->linear];
    const uintptr_t lo = reinterpret_cast<uintptr_t>(stack.map);
    const uintptr_t guard = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const bool stack_overflow = fault_.address >= lo && fault_.address < lo + guard;
    std::string what;
    CUresult result = CUDA_ERROR_ILLEGAL_ADDRESS;
    if (fault_.sig == SIGFPE) {
        // A GPU returns an unspecified value instead; the CPU traps, which is worth knowing about.
        result = CUDA_ERROR_LAUNCH_FAILED;
        what = "arithmetic trap (integer division by zero or overflow)";
    } else if (stack_overflow) {
        what = format("stack overflow of the CUDA thread (%zu KiB per thread; raise LOSSKIT_EMU_STACK_KB)",
                      stack_bytes_ >> 10);
    } else {
        const std::string target = launch_->describe_address ? launch_->describe_address(fault_.address) : "";
        what = format("illegal address: %s of 0x%" PRIxPTR " (%s)", fault_.write ? "write" : "read",
                      fault_.address, target.c_str());
    }
    abort_launch(result, nullptr, what + format(" [pc 0x%" PRIxPTR "]", fault_.pc));
}

[[noreturn]] void Runner::misaligned(const char* site, const void* address, unsigned alignment, const char* access) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(address);
    const std::string target = launch_ != nullptr && launch_->describe_address ? launch_->describe_address(a) : "";
    abort_launch(CUDA_ERROR_MISALIGNED_ADDRESS, site,
                 format("misaligned address: %s at 0x%" PRIxPTR ", which is not %u-byte aligned (%s)", access, a,
                        alignment, target.c_str()));
}

void Runner::ensure_stacks(size_t count, size_t stack_bytes) {
    if (stack_bytes != stack_bytes_) {
        for (const Stack& s : stacks_) munmap(s.map, s.len);
        stacks_.clear();
        stack_bytes_ = stack_bytes;
    }
    const size_t guard = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    while (stacks_.size() < count) {
        const size_t len = stack_bytes + guard;
        void* map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED) {
            std::perror("losskit-emu: cannot map a fiber stack");
            std::abort();
        }
        mprotect(map, guard, PROT_NONE);  // stacks grow down: the guard is at the low end
        stacks_.push_back(Stack{static_cast<char*>(map), len, static_cast<char*>(map) + len});
    }
}

void Runner::make_order(uint64_t block_linear, uint64_t pass) {
    const unsigned n = static_cast<unsigned>(fibers_.size());
    order_.resize(n);
    switch (launch_->schedule.kind) {
        case Schedule::Forward:
            std::iota(order_.begin(), order_.end(), 0u);
            break;
        case Schedule::Reverse:
            for (unsigned i = 0; i < n; ++i) order_[i] = n - 1 - i;
            break;
        case Schedule::Random:
        case Schedule::RandomMem: {
            // A fresh permutation for every pass, derived from the kernel name rather than a launch
            // counter, so a failure reproduces when the test runs alone.
            uint64_t state = launch_->schedule.seed ^ hash_name(launch_->kernel->name) ^ (block_linear * 0x9e3779b97f4a7c15ull) ^
                             (pass * 0xc2b2ae3d27d4eb4full);
            std::iota(order_.begin(), order_.end(), 0u);
            for (unsigned i = n; i > 1; --i) std::swap(order_[i - 1], order_[splitmix64(state) % i]);
            break;
        }
    }
}

LaunchOutcome Runner::run(const GridLaunch& launch, size_t stack_bytes, bool catch_faults) {
    launch_ = &launch;
    failed_ = false;
    outcome_ = LaunchOutcome{};
    const unsigned n = launch.block.x * launch.block.y * launch.block.z;
    ensure_stacks(n, stack_bytes);
    fibers_.assign(n, Fiber{});
    warps_.assign((n + kWarp - 1) / kWarp, Warp{});
    for (size_t w = 0; w < warps_.size(); ++w) {
        const unsigned count = std::min<unsigned>(kWarp, n - static_cast<unsigned>(w) * kWarp);
        warps_[w].exists = count == kWarp ? ~0u : (1u << count) - 1u;
    }

    stack_t previous_altstack{};
    static std::vector<char>& altstack = *new std::vector<char>(1 << 16);
    if (catch_faults) {
        install_fault_handlers();
        stack_t ss{};
        ss.ss_sp = altstack.data();
        ss.ss_size = altstack.size();
        sigaltstack(&ss, &previous_altstack);
        exec_tid_ = current_tid();
    }

    losskit_emu_block.block_dim = launch.block;
    losskit_emu_block.grid_dim = launch.grid;
    threads_ = n;
    racecheck_ = launch.racecheck;
    mem_switch_ = launch.racecheck && launch.schedule.kind == Schedule::RandomMem;
    mem_rng_ = launch.schedule.seed ^ hash_name(launch.kernel->name) ^ 0x5851f42d4c957f2dull;
    if (racecheck_)
        race_.begin_launch(launch.kernel->name, launch.library, launch.kernel->kernel, launch.grid, launch.block,
                           launch.find_allocation, launch.describe_address);
    const uint64_t blocks = uint64_t(launch.grid.x) * launch.grid.y * launch.grid.z;
    // Block order: forward, reverse, or an affine permutation i -> (a*i + c) mod blocks with a coprime
    // to blocks, which needs no table however large the grid.
    uint64_t a = 1, c = 0;
    const bool random = launch.schedule.kind == Schedule::Random || launch.schedule.kind == Schedule::RandomMem;
    if (random) {
        uint64_t state = launch.schedule.seed ^ hash_name(launch.kernel->name);
        do a = splitmix64(state) % blocks | 1; while (std::gcd(a, blocks) != 1);
        c = splitmix64(state) % blocks;
    }
    for (uint64_t i = 0; i < blocks && !failed_; ++i) {
        uint64_t b = i;
        if (launch.schedule.kind == Schedule::Reverse) b = blocks - 1 - i;
        if (random) b = static_cast<uint64_t>((static_cast<unsigned __int128>(a) * i + c) % blocks);
        run_block(b);
    }

    if (catch_faults) {
        exec_tid_ = 0;
        sigaltstack(&previous_altstack, nullptr);
    }
    current_ = nullptr;
    losskit_emu_current = nullptr;
    launch_ = nullptr;
    return outcome_;
}

void Runner::run_block(uint64_t block_linear) {
    const uint3 grid = launch_->grid, block = launch_->block;
    losskit_emu_block.block_idx = uint3{static_cast<unsigned>(block_linear % grid.x),
                                        static_cast<unsigned>(block_linear / grid.x % grid.y),
                                        static_cast<unsigned>(block_linear / (uint64_t(grid.x) * grid.y))};
    // Every block starts from poisoned shared memory: a read of an element no thread of this block
    // wrote (a missing __syncthreads, a wrong index) yields NaN instead of a stale valid value.
    const losskit_emu_library_desc* lib = launch_->library;
    if (lib->shared_begin != nullptr && lib->shared_end > lib->shared_begin)
        std::memset(lib->shared_begin, 0xff, static_cast<size_t>(lib->shared_end - lib->shared_begin));

    const unsigned n = static_cast<unsigned>(fibers_.size());
    for (unsigned i = 0; i < n; ++i) {
        Fiber& f = fibers_[i];
        f = Fiber{};
        f.view.thread_idx = uint3{i % block.x, i / block.x % block.y, i / (block.x * block.y)};
        f.linear = i;
        f.warp = i / kWarp;
        f.lane = i % kWarp;
        f.ctx = make_fcontext(stacks_[i].top, stack_bytes_, &Runner::fiber_main);
    }
    for (Warp& w : warps_) {
        w.exited = 0;
        w.pending.clear();
    }
    alive_ = n;
    bar_arrived_ = 0;
    block_linear_ = static_cast<uint32_t>(block_linear);
    if (racecheck_) race_.begin_block(block_linear_, n);

    const bool random = launch_->schedule.kind == Schedule::Random || launch_->schedule.kind == Schedule::RandomMem;
    for (uint64_t pass = 0; alive_ > 0; ++pass) {
        if (pass == 0 || random) make_order(block_linear, pass);
        bool progressed = false;
        for (unsigned idx : order_) {
            if (fibers_[idx].state != State::Ready) continue;
            resume(fibers_[idx]);
            progressed = true;
            if (failed_) return;
        }
        if (!progressed) {
            report_deadlock();
            return;
        }
    }
}

void Runner::fiber_main(transfer_t t) {
    Runner& r = g_runner;
    Fiber* f = static_cast<Fiber*>(t.data);
    f->back = t.fctx;
    r.launch_->kernel->run_thread(r.launch_->kernel->kernel, r.launch_->params);
    r.thread_exit(*f);
    jump_fcontext(f->back, nullptr);  // a finished fiber is never resumed
    __builtin_unreachable();
}

void Runner::resume(Fiber& f) {
    current_ = &f;
    losskit_emu_current = &f.view;
    if (racecheck_) {
        stack_lo_ = reinterpret_cast<uintptr_t>(stacks_[f.linear].map);
        stack_len_ = stacks_[f.linear].len;
    }
    f.ctx = jump_fcontext(f.ctx, &f).fctx;
    current_ = nullptr;
}

void Runner::suspend(Fiber& f, State state) {
    f.state = state;
    f.back = jump_fcontext(f.back, nullptr).fctx;
}

void Runner::fail(CUresult result, const std::string& message) {
    if (failed_) return;
    failed_ = true;
    outcome_.result = result;
    outcome_.message = message;
}

[[noreturn]] void Runner::abort_launch(CUresult result, const char* site, const std::string& what,
                                      const Fiber* who) {
    std::string message = where(who != nullptr ? who : current_);
    if (site != nullptr) message += " at " + std::string(site);
    message += ": " + what;
    abandon(result, message);
}

[[noreturn]] void Runner::abandon(CUresult result, const std::string& message) {
    fail(result, message);
    if (current_ == nullptr) {  // cannot happen: kernels only run inside fibers
        std::fprintf(stderr, "losskit-emu: %s (outside a fiber)\n", message.c_str());
        std::abort();
    }
    Fiber* f = current_;
    f->state = State::Done;
    jump_fcontext(f->back, nullptr);  // the launch is over; the fiber is abandoned
    __builtin_unreachable();
}

std::string Runner::where(const Fiber* f) const {
    const uint3 b = losskit_emu_block.block_idx;
    std::string s = format("kernel %s, block (%u,%u,%u)", launch_->kernel->name, b.x, b.y, b.z);
    if (f != nullptr) {
        const uint3 t = f->view.thread_idx;
        s += format(", thread (%u,%u,%u) [warp %u lane %u]", t.x, t.y, t.z, f->warp, f->lane);
    }
    return s;
}

// ---- __syncthreads ------------------------------------------------------------------------

int Runner::barrier(const char* site, int kind, int predicate) {
    Fiber& f = *current_;
    if (bar_arrived_ == 0) {
        bar_kind_ = kind;
        bar_site_ = site;
        bar_acc_ = kind == LOSSKIT_EMU_BAR_AND ? 1 : 0;
    } else if (kind != bar_kind_) {
        abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, site,
                     format("%s while other threads wait in %s at %s", barrier_name(kind), barrier_name(bar_kind_),
                            bar_site_));
    } else if (std::strcmp(site, bar_site_) != 0) {
        // Undefined in CUDA ("__syncthreads is allowed in conditional code only if the conditional
        // evaluates identically across the entire thread block"): a GPU may hang or let both halves
        // through without ordering anything.
        abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, site,
                     format("divergent barrier: %s here while %u other thread(s) wait in %s at %s", barrier_name(kind),
                            bar_arrived_, barrier_name(bar_kind_), bar_site_));
    }
    if (alive_ < threads_) {
        // Same rule: threads that returned early never reach this barrier.
        const Fiber* gone = nullptr;
        for (const Fiber& g : fibers_)
            if (g.state == State::Done && gone == nullptr) gone = &g;
        const uint3 t = gone != nullptr ? gone->view.thread_idx : uint3{0, 0, 0};
        abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, site,
                     format("divergent barrier: %s reached by part of the block: %u of %u threads have exited "
                            "(thread (%u,%u,%u) among them) and can never arrive",
                            barrier_name(kind), threads_ - alive_, threads_, t.x, t.y, t.z));
    }
    switch (kind) {
        case LOSSKIT_EMU_BAR_COUNT: bar_acc_ += predicate != 0; break;
        case LOSSKIT_EMU_BAR_AND: bar_acc_ &= predicate != 0; break;
        case LOSSKIT_EMU_BAR_OR: bar_acc_ |= predicate != 0; break;
        default: break;
    }
    f.site = site;
    if (++bar_arrived_ == alive_) {
        release_barrier();
        return static_cast<int>(f.result);
    }
    suspend(f, State::AtBarrier);
    return static_cast<int>(f.result);
}

void Runner::release_barrier() {
    for (Fiber& g : fibers_) {
        if (g.state != State::AtBarrier) continue;
        g.state = State::Ready;
        g.result = static_cast<uint64_t>(bar_acc_);
    }
    if (current_ != nullptr) current_->result = static_cast<uint64_t>(bar_acc_);
    bar_arrived_ = 0;
    if (racecheck_) race_.barrier_released();
}

// ---- warp collectives ---------------------------------------------------------------------

uint64_t Runner::warp_op(const char* site, int kind, unsigned mask, uint64_t value, int predicate, int b, int c) {
    Fiber& f = *current_;
    Warp& w = warps_[f.warp];
    const unsigned bit = 1u << f.lane;
    if (kind < 0 || kind >= LOSSKIT_EMU_WARP_KIND_COUNT)
        abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, site, "unknown warp collective");
    if ((mask & bit) == 0)
        abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, site,
                     format("%s with mask 0x%08x, which does not name the calling lane", kind_name(kind), mask));
    if (is_shuffle(kind)) {
        const unsigned width = kWarp - ((static_cast<unsigned>(c) >> 8) & 0x1f);
        if ((width & (width - 1)) != 0)
            abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, site,
                         format("%s with width %u (must be a power of two up to 32)", kind_name(kind), width));
    }
    size_t index = w.pending.size();
    for (size_t k = 0; k < w.pending.size(); ++k) {
        if ((w.pending[k].mask & mask) == 0) continue;
        const WarpOp& op = w.pending[k];
        if (op.mask != mask)
            abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, site,
                         format("%s with mask 0x%08x while lanes %s wait in %s with mask 0x%08x at %s", kind_name(kind),
                                mask, lanes(op.arrived).c_str(), kind_name(op.kind), op.mask, op.site));
        if (op.kind != kind || op.c != c || std::strcmp(op.site, site) != 0)
            abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, site,
                         format("divergent warp collective: %s here while lanes %s of the same mask 0x%08x wait in "
                                "%s at %s",
                                kind_name(kind), lanes(op.arrived).c_str(), mask, kind_name(op.kind), op.site));
        index = k;
        break;
    }
    if (index == w.pending.size()) w.pending.push_back(WarpOp{kind, mask, site, c, 0});
    f.site = site;
    f.kind = kind;
    f.value = value;
    f.predicate = predicate;
    f.b = b;
    w.pending[index].arrived |= bit;
    if (op_complete(w, w.pending[index])) {
        finish_op(w, index);
        return f.result;
    }
    suspend(f, State::AtWarpOp);
    return f.result;
}

// Complete once every lane named in the mask has arrived, except lanes that have exited or do not
// exist (Volta semantics: "all non-exited threads named in mask must execute the same intrinsic").
bool Runner::op_complete(const Warp& w, const WarpOp& op) const {
    const unsigned required = op.mask & w.exists & ~w.exited;
    return (op.arrived & required) == required;
}

void Runner::finish_op(Warp& w, size_t index) {
    const WarpOp op = w.pending[index];
    w.pending.erase(w.pending.begin() + static_cast<long>(index));
    if (racecheck_) race_.warp_op_completed(static_cast<unsigned>(&w - warps_.data()), op.arrived);
    Fiber* lane_fiber[kWarp] = {};
    const unsigned base = static_cast<unsigned>(&w - warps_.data()) * kWarp;
    for (unsigned l = 0; l < kWarp; ++l)
        if (op.arrived >> l & 1u) lane_fiber[l] = &fibers_[base + l];

    uint64_t ballot = 0, fold = 0;
    bool first = true;
    for (unsigned l = 0; l < kWarp; ++l) {
        const Fiber* g = lane_fiber[l];
        if (g == nullptr) continue;
        if (g->predicate != 0) ballot |= uint64_t(1) << l;
        const uint32_t v = static_cast<uint32_t>(g->value);
        if (first) {
            fold = v;
            first = false;
            continue;
        }
        switch (op.kind) {
            case LOSSKIT_EMU_REDUCE_ADD: fold = static_cast<uint32_t>(fold + v); break;
            case LOSSKIT_EMU_REDUCE_MIN: fold = std::min<uint32_t>(static_cast<uint32_t>(fold), v); break;
            case LOSSKIT_EMU_REDUCE_MAX: fold = std::max<uint32_t>(static_cast<uint32_t>(fold), v); break;
            case LOSSKIT_EMU_REDUCE_AND: fold &= v; break;
            case LOSSKIT_EMU_REDUCE_OR: fold |= v; break;
            case LOSSKIT_EMU_REDUCE_XOR: fold ^= v; break;
            case LOSSKIT_EMU_REDUCE_MIN_SIGNED:
                fold = static_cast<uint32_t>(std::min(static_cast<int32_t>(fold), static_cast<int32_t>(v)));
                break;
            case LOSSKIT_EMU_REDUCE_MAX_SIGNED:
                fold = static_cast<uint32_t>(std::max(static_cast<int32_t>(fold), static_cast<int32_t>(v)));
                break;
            default: break;
        }
    }

    for (unsigned l = 0; l < kWarp; ++l) {
        Fiber* g = lane_fiber[l];
        if (g == nullptr) continue;
        uint64_t result = 0;
        switch (op.kind) {
            case LOSSKIT_EMU_VOTE_BALLOT: result = ballot; break;
            case LOSSKIT_EMU_VOTE_ANY: result = ballot != 0; break;
            case LOSSKIT_EMU_VOTE_ALL: result = ballot == op.arrived; break;
            case LOSSKIT_EMU_SYNCWARP: result = 0; break;
            case LOSSKIT_EMU_SHFL_IDX:
            case LOSSKIT_EMU_SHFL_UP:
            case LOSSKIT_EMU_SHFL_DOWN:
            case LOSSKIT_EMU_SHFL_BFLY: {
                // PTX shfl.sync, word for word: b and c are the instruction's operands.
                const int lane = static_cast<int>(l);
                const int bval = g->b & 0x1f, cval = op.c & 0x1f, segmask = (op.c >> 8) & 0x1f;
                const int max_lane = (lane & segmask) | (cval & ~segmask);
                const int min_lane = lane & segmask;
                int j = lane;
                bool pval = false;
                switch (op.kind) {
                    case LOSSKIT_EMU_SHFL_UP: j = lane - bval; pval = j >= max_lane; break;
                    case LOSSKIT_EMU_SHFL_DOWN: j = lane + bval; pval = j <= max_lane; break;
                    case LOSSKIT_EMU_SHFL_BFLY: j = lane ^ bval; pval = j <= max_lane; break;
                    default: j = min_lane | (bval & ~segmask); pval = j <= max_lane; break;
                }
                if (!pval) j = lane;
                if (lane_fiber[j] == nullptr) {
                    // Undefined on a GPU (the value is garbage); here it ends the launch.
                    const char* why = (w.exists >> j & 1u) == 0 ? "is not a thread of the block"
                                      : (w.exited >> j & 1u) ? "has exited"
                                      : (op.mask >> j & 1u) == 0 ? "is not named in the mask"
                                                                  : "does not take part";
                    abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, op.site,
                                 format("%s: lane %d reads lane %d, which %s (mask 0x%08x)", kind_name(op.kind), lane, j,
                                        why, op.mask),
                                 g);
                }
                result = lane_fiber[j]->value;
                break;
            }
            default: result = fold; break;
        }
        g->result = result;
    }
    for (unsigned l = 0; l < kWarp; ++l)
        if (lane_fiber[l] != nullptr && lane_fiber[l] != current_) lane_fiber[l]->state = State::Ready;
}

unsigned Runner::activemask() const {
    const Warp& w = warps_[current_->warp];
    return w.exists & ~w.exited;
}

void Runner::thread_exit(Fiber& f) {
    if (bar_arrived_ > 0)
        abort_launch(CUDA_ERROR_ILLEGAL_INSTRUCTION, nullptr,
                     format("divergent barrier: the thread exits while %u other thread(s) wait in %s at %s",
                            bar_arrived_, barrier_name(bar_kind_), bar_site_));
    f.state = State::Done;
    --alive_;
    Warp& w = warps_[f.warp];
    w.exited |= 1u << f.lane;
    if (bar_arrived_ > 0 && bar_arrived_ == alive_) release_barrier();
    // Collectives that were waiting only for this lane can now complete.
    for (size_t k = 0; k < w.pending.size();) {
        if (op_complete(w, w.pending[k])) finish_op(w, k);
        else ++k;
    }
}

// ---- race detection and the random-mem schedule (LOSSKIT_EMU_RACECHECK) -----------------------

void Runner::maybe_switch() {
    // A seeded coin per access: deterministic, since everything here runs on one OS thread.
    if ((splitmix64(mem_rng_) & 3) != 0) return;
    Fiber& f = *current_;
    suspend(f, State::Ready);
}

void Runner::mem_access(uintptr_t addr, unsigned size, int kind, uintptr_t pc) {
    if (!racecheck_ || current_ == nullptr || failed_) return;
    if (addr - stack_lo_ < stack_len_) return;  // a local variable of the running thread
    const bool shared = race_.is_shared(addr);
    if (!shared && !race_.tracked_global(addr)) return;
    if (mem_switch_ && !shared) maybe_switch();
    std::string report = race_.access(addr, size, kind, pc, RaceThread{block_linear_, current_->linear});
    if (!report.empty()) abandon(CUDA_ERROR_LAUNCH_FAILED, report);
}

void Runner::fence() {
    if (!racecheck_ || current_ == nullptr) return;
    if (mem_switch_) maybe_switch();
    race_.fence();
}

void Runner::report_deadlock() {
    std::string detail;
    unsigned at_barrier = 0;
    const char* barrier_site = nullptr;
    for (const Fiber& g : fibers_) {
        if (g.state == State::AtBarrier) {
            ++at_barrier;
            barrier_site = g.site;
        }
    }
    for (size_t wi = 0; wi < warps_.size(); ++wi) {
        const Warp& w = warps_[wi];
        for (const WarpOp& op : w.pending) {
            const unsigned missing = op.mask & w.exists & ~w.exited & ~op.arrived;
            detail += format("; warp %zu: lanes %s wait in %s at %s (mask 0x%08x) for lanes %s", wi,
                             lanes(op.arrived).c_str(), kind_name(op.kind), op.site, op.mask, lanes(missing).c_str());
            for (unsigned l = 0; l < kWarp; ++l) {
                if ((missing >> l & 1u) == 0) continue;
                const Fiber& g = fibers_[wi * kWarp + l];
                detail += format(", lane %u is in %s at %s", l,
                                 g.state == State::AtBarrier ? "__syncthreads" : kind_name(g.kind), g.site);
                break;  // one example is enough
            }
        }
    }
    if (at_barrier > 0) detail += format("; %u threads wait in __syncthreads at %s", at_barrier, barrier_site);
    fail(CUDA_ERROR_ILLEGAL_INSTRUCTION, where(nullptr) + ": deadlock (a GPU hangs or traps here)" + detail);
}

}  // namespace

LaunchOutcome run_grid(const GridLaunch& launch, size_t stack_bytes, bool catch_faults) {
    return g_runner.run(launch, stack_bytes, catch_faults);
}

}  // namespace emu

// ---- entry points called by the CPU-built kernels (emu_abi.h) --------------------------------

extern "C" {

__attribute__((visibility("default"))) int losskit_emu_barrier(const char* site, int kind, int predicate) {
    return emu::g_runner.barrier(site, kind, predicate);
}

__attribute__((visibility("default"))) uint64_t losskit_emu_warp_op(const char* site, int kind, unsigned mask,
                                                                    uint64_t value, int predicate, int b, int c) {
    return emu::g_runner.warp_op(site, kind, mask, value, predicate, b, c);
}

__attribute__((visibility("default"))) unsigned losskit_emu_activemask(void) { return emu::g_runner.activemask(); }

__attribute__((visibility("default"))) void losskit_emu_misaligned(const char* site, const void* address,
                                                                    unsigned alignment, const char* access) {
    emu::g_runner.misaligned(site, address, alignment, access);
}

__attribute__((visibility("default"))) void losskit_emu_fence(void) { emu::g_runner.fence(); }

__attribute__((visibility("default"))) void losskit_emu_atomic_access(void* address, unsigned size, const void* pc) {
    emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(address), size, emu::kAccessAtomic,
                             reinterpret_cast<uintptr_t>(pc));
}

// ThreadSanitizer's instrumentation ABI, as g++ -fsanitize=thread emits it into the kernel libraries
// of target/emu/kernels-racecheck (which are linked against this library, not libtsan). The return
// address is the instruction after the access's call, in the kernel.
#define LOSSKIT_EMU_TSAN(size)                                                                              \
    __attribute__((visibility("default"))) void __tsan_read##size(void* a) {                                \
        emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(a), size, emu::kAccessRead,                    \
                                 reinterpret_cast<uintptr_t>(__builtin_return_address(0)));                 \
    }                                                                                                       \
    __attribute__((visibility("default"))) void __tsan_write##size(void* a) {                               \
        emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(a), size, emu::kAccessWrite,                   \
                                 reinterpret_cast<uintptr_t>(__builtin_return_address(0)));                 \
    }                                                                                                       \
    __attribute__((visibility("default"))) void __tsan_unaligned_read##size(void* a) {                      \
        emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(a), size, emu::kAccessRead,                    \
                                 reinterpret_cast<uintptr_t>(__builtin_return_address(0)));                 \
    }                                                                                                       \
    __attribute__((visibility("default"))) void __tsan_unaligned_write##size(void* a) {                     \
        emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(a), size, emu::kAccessWrite,                   \
                                 reinterpret_cast<uintptr_t>(__builtin_return_address(0)));                 \
    }                                                                                                       \
    __attribute__((visibility("default"))) void __tsan_volatile_read##size(void* a) {                       \
        emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(a), size, emu::kAccessRead,                    \
                                 reinterpret_cast<uintptr_t>(__builtin_return_address(0)));                 \
    }                                                                                                       \
    __attribute__((visibility("default"))) void __tsan_volatile_write##size(void* a) {                      \
        emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(a), size, emu::kAccessWrite,                   \
                                 reinterpret_cast<uintptr_t>(__builtin_return_address(0)));                 \
    }
LOSSKIT_EMU_TSAN(1)
LOSSKIT_EMU_TSAN(2)
LOSSKIT_EMU_TSAN(4)
LOSSKIT_EMU_TSAN(8)
LOSSKIT_EMU_TSAN(16)
#undef LOSSKIT_EMU_TSAN

__attribute__((visibility("default"))) void __tsan_read_range(void* a, unsigned long size) {
    emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(a), static_cast<unsigned>(size), emu::kAccessRead,
                             reinterpret_cast<uintptr_t>(__builtin_return_address(0)));
}
__attribute__((visibility("default"))) void __tsan_write_range(void* a, unsigned long size) {
    emu::g_runner.mem_access(reinterpret_cast<uintptr_t>(a), static_cast<unsigned>(size), emu::kAccessWrite,
                             reinterpret_cast<uintptr_t>(__builtin_return_address(0)));
}
__attribute__((visibility("default"))) void __tsan_init(void) {}
__attribute__((visibility("default"))) void __tsan_func_entry(void*) {}
__attribute__((visibility("default"))) void __tsan_func_exit(void) {}
__attribute__((visibility("default"))) void __tsan_vptr_update(void**, void*) {}
__attribute__((visibility("default"))) void __tsan_vptr_read(void**) {}

__attribute__((visibility("default"))) void losskit_emu_abort_launch(int result, const char* site, const char* message) {
    emu::g_runner.abort_launch(result, site, message);
}

}  // extern "C"
