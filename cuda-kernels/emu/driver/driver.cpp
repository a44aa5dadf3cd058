// The emulated CUDA driver API: the entry points JCuda's libJCudaDriver calls, implemented on the
// CPU. Device memory is host memory (memory.h), modules are read for their entry points (image.h)
// and each entry runs as the CPU build of the same kernel (registry.h) under the fiber scheduler
// (scheduler.h). Entry points JCuda imports but a LossKit backend does not need are generated
// stubs (gen_stubs.py) returning CUDA_ERROR_NOT_SUPPORTED.
//
// Semantics follow a real driver where a test can observe them: per-thread context stacks, errors
// for calls without a current context, launch configuration errors returned by cuLaunchKernel,
// kernel faults reported asynchronously (the next synchronising call) and sticky for the context
// until it is destroyed or reset. Work is queued on its stream and run by the stream's worker in
// the order the API guarantees and no other (async.h); events time the CPU execution between them.
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "async.h"
#include "config.h"
#include "cuda_api.h"
#include "image.h"
#include "memory.h"
#include "registry.h"
#include "scheduler.h"

#define EMU_API extern "C" __attribute__((visibility("default"))) CUresult

// The opaque handle types are these structs, so a handle converts without casts.
struct CUctx_st {
    int device = 0;
    unsigned flags = 0;
    bool primary = false;
    bool alive = false;  // explicit: until destroyed; primary: while retained (active)
    int retain = 0;      // primary only
    CUresult sticky = 0; // a kernel fault poisons the context, as on a GPU
    uint64_t id = 0;
    size_t limits[emu::LIMIT_COUNT] = {};
    int cache_config = 0;
    int shared_config = 0;
    emu::AsyncContext* async = nullptr;  // its streams' queues (the legacy default stream's too)
};

struct CUmod_st {
    CUctx_st* ctx = nullptr;
    bool alive = true;
    emu::ModuleImage image;
    std::vector<CUfunc_st*> functions;
};

struct CUfunc_st {
    CUmod_st* module = nullptr;
    emu::EntryInfo entry;
    const emu::KernelBuild* build = nullptr;
    int max_dynamic_shared = 48 << 10;
};

struct CUstream_st {
    CUctx_st* ctx = nullptr;
    unsigned flags = 0;
    int priority = 0;
    bool alive = true;
    uint64_t id = 0;
    emu::Queue* queue = nullptr;  // the work queued on it, run by its worker
};

struct CUevent_st {
    CUctx_st* ctx = nullptr;
    unsigned flags = 0;
    bool alive = true;
    bool recorded = false;
    emu::EventState state;  // the work its last cuEventRecord captured
};

namespace emu {
namespace {

constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kMaxSharedPerBlock = 48 << 10;
constexpr int kMaxSharedPerBlockOptin = 99 << 10;

struct Driver {
    std::timed_mutex mu;
    bool init_attempted = false;
    CUresult init_result = CUDA_ERROR_NOT_INITIALIZED;
    std::vector<CUctx_st*> primaries;
    Memory memory;
    uint64_t next_id = 1;
    uint64_t alloc_calls = 0;
    uint64_t launch_calls = 0;
    uint64_t failed_launches = 0;
    uint64_t copy_calls_all = 0;  // every cuMemcpy* call, counted for LOSSKIT_EMU_FAIL_COPY and triggers
    uint64_t context_calls = 0;   // every call made with a current context (trigger `call:k`)
    // LOSSKIT_EMU_DEVICE_LOST_AT: the device has fallen off the bus. Every call that needs it (and every
    // release of what it held) returns CUDA_ERROR_UNKNOWN from then on, and nothing is freed.
    bool device_lost = false;
    uint64_t async_conflicts = 0;  // unordered accesses and page-locked reuse detected (async.h)
    uint64_t not_ready = 0;        // CUDA_ERROR_NOT_READY answers (cuEventQuery, cuStreamQuery, cuEventElapsedTime)
    // Copies by direction (host = pageable or page-locked host memory): calls and bytes, for tests
    // that prove a path moves no data between host and device.
    uint64_t copy_calls[4] = {0, 0, 0, 0};  // htod, dtoh, dtod, htoh
    uint64_t copy_bytes[4] = {0, 0, 0, 0};
    // Asynchronous host-to-device copies by source: from page-locked memory (truly asynchronous on a
    // GPU, so they can overlap kernels) by stream id (0: a default stream), and from pageable memory
    // (staged by the driver); for tests that prove a path pipelines its uploads.
    uint64_t htod_async_pinned_calls = 0, htod_async_pinned_bytes = 0, htod_async_pageable_calls = 0;
    std::map<uint64_t, uint64_t> htod_async_pinned_by_stream;
    // Handles are never freed, only marked dead, so a stale handle is always recognised as such
    // (a freed and reused address could otherwise pass for a live object).
    std::set<CUctx_st*> contexts;
    std::set<CUmod_st*> modules;
    std::set<CUfunc_st*> functions;
    std::set<CUstream_st*> streams;
    std::set<CUevent_st*> events;
};

Driver& drv() {
    static Driver* d = new Driver;  // never destroyed: JVM threads may call in during exit
    return *d;
}

thread_local std::vector<CUctx_st*> t_context_stack;

void note(const char* fmt, ...) {
    if (config().quiet) return;
    char buf[4096];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    std::fprintf(stderr, "losskit-emu: %s\n", buf);
}

CUresult initialized() {
    return drv().init_result == CUDA_SUCCESS ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

// What a driver returns once its GPU is gone (Xid 79, "fallen off the bus"): applications see
// CUDA_ERROR_UNKNOWN ("unknown error") from every later call, e.g. gpu-burn's "Read faultyelemdata:
// CUDA_ERROR_UNKNOWN" after a PCIe surprise-down (wilicc/gpu-burn#1), and simulation codes list
// cudaErrorUnknown among the hardware errors for exactly this case (proteneer/timemachine#1203).
constexpr CUresult kDeviceLost = CUDA_ERROR_UNKNOWN;

// The sticky error a planted fault leaves: what a kernel's out-of-bounds access gives on a GPU.
constexpr CUresult kStickyFault = CUDA_ERROR_ILLEGAL_ADDRESS;

void note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Counts one event of a kind for LOSSKIT_EMU_STICKY_AT / LOSSKIT_EMU_DEVICE_LOST_AT and fires the
// trigger on its k-th occurrence. `count` is the event's running number.
void count_event(Trigger::What what, uint64_t count, CUctx_st* ctx) {
    const Config& c = config();
    if (c.sticky_at.armed() && c.sticky_at.what == what && c.sticky_at.at == count && ctx != nullptr &&
        ctx->sticky == CUDA_SUCCESS) {
        ctx->sticky = kStickyFault;
        note("CUDA_ERROR_ILLEGAL_ADDRESS: context poisoned by LOSSKIT_EMU_STICKY_AT (event %" PRIu64 ")", count);
    }
    if (c.device_lost_at.armed() && c.device_lost_at.what == what && c.device_lost_at.at == count &&
        !drv().device_lost) {
        drv().device_lost = true;
        note("CUDA_ERROR_UNKNOWN: the device fell off the bus (LOSSKIT_EMU_DEVICE_LOST_AT, event %" PRIu64 ")", count);
    }
}

CUresult check_device(CUdevice dev) {
    if (CUresult r = initialized()) return r;
    if (drv().device_lost) return kDeviceLost;
    return dev >= 0 && dev < config().device_count ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

// The calling thread's current context. `sticky`: also fail with the context's sticky error, as
// nearly every call does on a GPU after a kernel fault.
CUresult current(CUctx_st** out, bool sticky = true) {
    if (CUresult r = initialized()) return r;
    if (drv().device_lost) return kDeviceLost;
    if (t_context_stack.empty() || t_context_stack.back() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
    CUctx_st* ctx = t_context_stack.back();
    if (!ctx->alive) return ctx->primary ? CUDA_ERROR_INVALID_CONTEXT : 709 /* CUDA_ERROR_CONTEXT_IS_DESTROYED */;
    count_event(Trigger::Call, ++drv().context_calls, ctx);
    if (drv().device_lost) return kDeviceLost;
    if (sticky && ctx->sticky != CUDA_SUCCESS) return ctx->sticky;
    *out = ctx;
    return CUDA_SUCCESS;
}

bool live_context(CUctx_st* ctx) { return drv().contexts.count(ctx) != 0 && ctx->alive; }

void reset_context_state(CUctx_st* ctx) {
    ctx->sticky = CUDA_SUCCESS;
    ctx->cache_config = 0;
    ctx->shared_config = 0;
    std::fill(std::begin(ctx->limits), std::end(ctx->limits), size_t(0));
    ctx->limits[0] = 1024;            // CU_LIMIT_STACK_SIZE
    ctx->limits[1] = size_t(1) << 20; // CU_LIMIT_PRINTF_FIFO_SIZE
    ctx->limits[2] = size_t(8) << 20; // CU_LIMIT_MALLOC_HEAP_SIZE
    ctx->limits[3] = 2;               // CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH
    ctx->limits[4] = 2048;            // CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT
}

// Frees what the context owns: memory, modules, streams, events.
void release_context_resources(CUctx_st* ctx) {
    Driver& d = drv();
    d.memory.release_owned_by(ctx);
    for (CUmod_st* m : d.modules)
        if (m->ctx == ctx) m->alive = false;
    for (CUstream_st* s : d.streams)
        if (s->ctx == ctx && s->alive) {
            s->alive = false;
            destroy_queue(s->queue);
        }
    for (CUevent_st* e : d.events)
        if (e->ctx == ctx) e->alive = false;
}

CUresult check_stream(CUstream s, CUctx_st* ctx) {
    if (is_default_stream(s)) return CUDA_SUCCESS;
    return drv().streams.count(s) != 0 && s->alive && s->ctx == ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult check_event(CUevent e, CUctx_st* ctx) {
    return drv().events.count(e) != 0 && e->alive && e->ctx == ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult check_function(CUfunction f, CUctx_st* ctx) {
    if (drv().functions.count(f) == 0 || !f->module->alive) return CUDA_ERROR_INVALID_HANDLE;
    return f->module->ctx == ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

// A device-side range must lie inside one allocation (device or page-locked host memory, both of
// which a GPU addresses); a real driver rejects a copy past the end of an allocation.
CUresult check_device_range(CUdeviceptr p, size_t bytes) {
    if (bytes == 0) return CUDA_SUCCESS;
    return drv().memory.covers(static_cast<uintptr_t>(p), bytes) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// A host range is unchecked (pageable memory, a Java array) unless it starts in or next to memory
// this driver allocated.
CUresult check_host_range(const void* p, size_t bytes) {
    if (bytes == 0) return CUDA_SUCCESS;
    if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (drv().memory.find_mapping(a) == nullptr) return CUDA_SUCCESS;
    return drv().memory.covers(a, bytes) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// cuMemcpy and cuMemcpyAsync infer each side from the address (unified addressing).
CUresult check_any_range(CUdeviceptr p, size_t bytes) {
    return check_host_range(reinterpret_cast<const void*>(static_cast<uintptr_t>(p)), bytes);
}

void* host(CUdeviceptr p) { return reinterpret_cast<void*>(static_cast<uintptr_t>(p)); }

// Contexts on one device have separate GPU address spaces: device memory that another context
// allocated is not mapped in this one (a kernel touching it faults; cuCtxEnablePeerAccess is for
// contexts on other devices). Page-locked host memory is mapped in every context (unified
// addressing), so only device allocations count. The driver's lock is held.
const Allocation* foreign_allocation(const CUctx_st* ctx, uintptr_t p) {
    const Allocation* a = drv().memory.find(p);
    if (a == nullptr) a = drv().memory.find_mapping(p);  // a pointer to the end, or into the slack
    return a != nullptr && a->device >= 0 && a->owner != ctx ? a : nullptr;
}

uint64_t context_id(const void* ctx) { return ctx == nullptr ? 0 : static_cast<const CUctx_st*>(ctx)->id; }

// A copy or memset that names another context's device memory fails at the call, as for an address
// the current context does not know (CUDA_ERROR_INVALID_VALUE), and says so on stderr.
CUresult check_owner(const CUctx_st* ctx, uintptr_t p, size_t bytes, const char* call) {
    if (bytes == 0) return CUDA_SUCCESS;
    const Allocation* a = foreign_allocation(ctx, p);
    if (a == nullptr) return CUDA_SUCCESS;
    note("CUDA_ERROR_INVALID_VALUE: %s: 0x%" PRIxPTR " is in device allocation 0x%" PRIxPTR
         " (%zu bytes) of context %" PRIu64 ", not of the current context %" PRIu64
         " (contexts have separate address spaces)",
         call, p, a->base, a->size, context_id(a->owner), ctx->id);
    return CUDA_ERROR_INVALID_VALUE;
}

// The first pointer parameter of a launch that addresses another context's device memory, described
// (empty when none): on a GPU the kernel's access to it faults (CUDA_ERROR_ILLEGAL_ADDRESS, sticky).
// A pointer the kernel would not dereference counts too: the emulator cannot tell.
std::string foreign_parameter(const CUctx_st* ctx, CUfunction f, void* const* params) {
    const losskit_emu_kernel_desc* k = f->build->kernel;
    for (int i = 0; i < k->param_count; ++i) {
        if (!k->param_is_pointer[i]) continue;
        uintptr_t p = 0;
        std::memcpy(&p, params[i], sizeof p);
        const Allocation* a = foreign_allocation(ctx, p);
        if (a == nullptr) continue;
        char msg[512];
        std::snprintf(msg, sizeof msg,
                      "kernel %s: parameter %d (0x%" PRIxPTR ") points into device allocation 0x%" PRIxPTR
                      " (%zu bytes) of context %" PRIu64 ", not of the launch's context %" PRIu64
                      ": contexts have separate address spaces, the access faults",
                      k->name, i, p, a->base, a->size, context_id(a->owner), ctx->id);
        return msg;
    }
    return {};
}

// ---- asynchronous execution (async.h) ---------------------------------------------------------

// The queue of a stream handle (the legacy default stream for NULL, CU_STREAM_LEGACY and
// CU_STREAM_PER_THREAD: the per-thread default stream is modelled as the legacy one).
Queue* queue_of(CUctx_st* ctx, CUstream s) { return is_default_stream(s) ? ctx->async->legacy : s->queue; }

// Page-locked host memory (cuMemHostAlloc / cuMemAllocHost), which a GPU reads and writes by DMA.
bool page_locked(uintptr_t a) {
    const Allocation* alloc = drv().memory.find(a);
    return alloc != nullptr && alloc->device < 0;
}

bool on_device(uintptr_t a) {
    const Allocation* alloc = drv().memory.find(a);
    return alloc != nullptr && alloc->device >= 0;
}

// Two unordered operations touched the same memory, or the host reused a page-locked buffer
// before the copy from it completed: said on stderr, and the context is poisoned.
void poison_context(AsyncContext* a, const std::string& message) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    ++d.async_conflicts;
    for (CUctx_st* c : d.contexts)
        if (c->async == a && c->sticky == CUDA_SUCCESS) {
            c->sticky = CUDA_ERROR_LAUNCH_FAILED;
            note("CUDA_ERROR_LAUNCH_FAILED: %s", message.c_str());  // the first one: the rest follow from it
        }
}

// Whether queued work must be skipped: the context is poisoned or the device gone (a GPU drops
// the work queued behind a fault); a skipped operation touches nothing. Takes the driver's lock.
bool skip_work(CUctx_st* ctx, Op* op = nullptr) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    const bool skip = drv().device_lost || ctx->sticky != CUDA_SUCCESS;
    if (skip && op != nullptr) {
        op->reads.clear();
        op->writes.clear();
    }
    return skip;
}

// After a host-side wait (the driver's lock retaken): the error the wait reports.
CUresult after_wait(CUctx_st* ctx) {
    if (drv().device_lost) return kDeviceLost;
    return ctx->sticky;
}

// ---- fault injection ---------------------------------------------------------------------------
// The place to add further "fail the k-th X" switches: count the calls, look the number up.
bool injected_failure(const CallPlan& plan, uint64_t call) { return plan.hits(call); }

// ---- accounting report ---------------------------------------------------------------------------

void write_stats(FILE* out, const MemoryStats& s) {
    std::fprintf(out,
                 "\"live_bytes\": %" PRIu64 ", \"live_count\": %" PRIu64 ", \"peak_bytes\": %" PRIu64
                 ", \"peak_count\": %" PRIu64 ", \"alloc_calls\": %" PRIu64 ", \"free_calls\": %" PRIu64
                 ", \"failed_allocs\": %" PRIu64,
                 s.live_bytes, s.live_count, s.peak_bytes, s.peak_count, s.alloc_calls, s.free_calls, s.failed_allocs);
}

void write_report() {
    const std::string& target = config().report;
    Driver& d = drv();
    // At exit another thread may still be inside the driver (a daemon thread running a kernel):
    // wait a little, then report without the lock rather than hang the process.
    std::unique_lock<std::timed_mutex> lock(d.mu, std::chrono::seconds(5));
    FILE* out = target == "stderr" ? stderr : std::fopen(target.c_str(), "w");
    if (out == nullptr) {
        note("cannot write the report to %s", target.c_str());
        return;
    }
    std::fprintf(out, "{\"launches\": %" PRIu64 ", \"failed_launches\": %" PRIu64 ", \"devices\": [", d.launch_calls,
                 d.failed_launches);
    for (int dev = 0; dev < config().device_count; ++dev) {
        std::fprintf(out, "%s{\"device\": %d, \"total_bytes\": %zu, ", dev > 0 ? ", " : "", dev,
                     config().device_memory);
        write_stats(out, d.memory.stats(dev));
        std::fprintf(out, "}");
    }
    std::fprintf(out, "], \"host\": {");
    write_stats(out, d.memory.stats(-1));
    std::fprintf(out, "}, \"live_allocations\": [");
    bool first = true;
    for (const Allocation& a : d.memory.live()) {
        std::fprintf(out, "%s{\"device\": %d, \"address\": \"0x%" PRIxPTR "\", \"bytes\": %zu, \"serial\": %" PRIu64 "}",
                     first ? "" : ", ", a.device, a.base, a.size, a.serial);
        first = false;
    }
    static const char* const kDirections[4] = {"htod", "dtoh", "dtod", "htoh"};
    std::fprintf(out, "], \"copies\": {");
    for (int k = 0; k < 4; ++k)
        std::fprintf(out, "%s\"%s_calls\": %" PRIu64 ", \"%s_bytes\": %" PRIu64, k > 0 ? ", " : "", kDirections[k],
                     d.copy_calls[k], kDirections[k], d.copy_bytes[k]);
    std::fprintf(out,
                 "}, \"async_htod\": {\"from_page_locked_calls\": %" PRIu64 ", \"from_page_locked_bytes\": %" PRIu64
                 ", \"from_pageable_calls\": %" PRIu64 "}, \"async_htod_page_locked_by_stream\": {",
                 d.htod_async_pinned_calls, d.htod_async_pinned_bytes, d.htod_async_pageable_calls);
    first = true;
    for (const auto& [stream, calls] : d.htod_async_pinned_by_stream) {
        std::fprintf(out, "%s\"%" PRIu64 "\": %" PRIu64, first ? "" : ", ", stream, calls);
        first = false;
    }
    std::fprintf(out, "}, \"async\": {\"not_ready\": %" PRIu64 ", \"conflicts\": %" PRIu64 "}}\n", d.not_ready,
                 d.async_conflicts);
    if (out != stderr) std::fclose(out);
}

// ---- modules ---------------------------------------------------------------------------------

void copy_log(char* buffer, size_t capacity, const std::string& text, size_t* written) {
    if (buffer == nullptr || capacity == 0) return;
    const size_t n = std::min(capacity - 1, text.size());
    std::memcpy(buffer, text.data(), n);
    buffer[n] = '\0';
    *written = n + 1;
}

CUresult load_module(CUmodule* out, const void* data, size_t size, std::string* log) {
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (out == nullptr || data == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const Config& c = config();
    ModuleImage image;
    std::string error;
    switch (parse_image(data, size, &image, &error)) {
        case ImageStatus::Ok: break;
        case ImageStatus::Fatbin:
            *log = "fatbin images are not supported by the emulator: load PTX or a cubin";
            return CUDA_ERROR_NOT_SUPPORTED;
        case ImageStatus::NotAnImage:
            *log = "not a PTX (no .version/.target) or cubin image";
            return CUDA_ERROR_INVALID_IMAGE;
        case ImageStatus::Malformed:
            *log = error;
            return CUDA_ERROR_INVALID_IMAGE;
    }
    const int cc = c.cc_major * 10 + c.cc_minor;
    if (image.kind == ModuleImage::Ptx) {
        // What the JIT of a driver this old would say.
        if (image.ptx_isa > max_ptx_isa(c.driver_version)) {
            char msg[160];
            std::snprintf(msg, sizeof msg, "ptxas fatal: Unsupported .version %d.%d; current version is '%d.%d'",
                          image.ptx_isa / 10, image.ptx_isa % 10, max_ptx_isa(c.driver_version) / 10,
                          max_ptx_isa(c.driver_version) % 10);
            *log = msg;
            return CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
        }
        if (image.target_sm > cc) {
            *log = "ptxas fatal: .target sm_" + std::to_string(image.target_sm) + " is newer than the device (sm_" +
                   std::to_string(cc) + ")";
            return CUDA_ERROR_INVALID_PTX;
        }
    } else if (image.target_sm / 10 != c.cc_major || image.target_sm % 10 > c.cc_minor) {
        *log = "cubin for sm_" + std::to_string(image.target_sm) + " does not run on sm_" + std::to_string(cc);
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }

    std::vector<const KernelBuild*> builds;
    for (const EntryInfo& e : image.entries) {
        const std::vector<const KernelBuild*> found = registry().find(e.name);
        if (found.empty()) {
            *log = "entry " + e.name +
                   " has no CPU build: the emulator's kernel libraries are older than this image (rebuild with "
                   "scripts/build-emu.sh) or the kernel does not come from a .cu file the emulator builds";
            return CUDA_ERROR_INVALID_IMAGE;
        }
        if (found.size() > 1) {
            *log = "entry " + e.name + " has two CPU builds, in " + found[0]->path + " and " + found[1]->path +
                   ": kernel names must be unique across the .cu files the emulator loads";
            return CUDA_ERROR_INVALID_IMAGE;
        }
        const losskit_emu_kernel_desc* k = found[0]->kernel;
        std::vector<uint32_t> cpu(k->param_sizes, k->param_sizes + k->param_count);
        if (cpu != e.param_sizes) {
            auto list = [](const std::vector<uint32_t>& v) {
                std::string s;
                for (uint32_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
                return "(" + s + ")";
            };
            *log = "stale build: entry " + e.name + " has parameter sizes " + list(e.param_sizes) +
                   " in the image but " + list(cpu) + " in the CPU build from " + found[0]->library->source +
                   " (" + found[0]->path + "): rebuild the PTX and the emulator from the same sources";
            return CUDA_ERROR_INVALID_IMAGE;
        }
        builds.push_back(found[0]);
    }

    Driver& d = drv();
    CUmod_st* m = new CUmod_st;
    m->ctx = ctx;
    m->image = image;
    for (size_t i = 0; i < image.entries.size(); ++i) {
        CUfunc_st* f = new CUfunc_st;
        f->module = m;
        f->entry = image.entries[i];
        f->build = builds[i];
        m->functions.push_back(f);
        d.functions.insert(f);
    }
    d.modules.insert(m);
    *out = m;
    return CUDA_SUCCESS;
}

CUresult finish_load(CUresult r, const std::string& log, const char* call) {
    if (r != CUDA_SUCCESS && !log.empty()) note("%s: %s", call, log.c_str());
    return r;
}

// ---- launches --------------------------------------------------------------------------------

struct Snapshot {
    uintptr_t base;
    size_t size;
    int param;
    std::vector<char> before, after;
};

std::string describe_difference(const Snapshot& s, const char* first, const char* second, const Schedule& a,
                                const Schedule& b) {
    size_t k = 0;
    while (k < s.size && first[k] == second[k]) ++k;
    const size_t f4 = k & ~size_t(3), f8 = k & ~size_t(7);
    float fa = 0, fb = 0;
    double da = 0, db = 0;
    if (f4 + 4 <= s.size) {
        std::memcpy(&fa, first + f4, 4);
        std::memcpy(&fb, second + f4, 4);
    }
    if (f8 + 8 <= s.size) {
        std::memcpy(&da, first + f8, 8);
        std::memcpy(&db, second + f8, 8);
    }
    char msg[512];
    std::snprintf(msg, sizeof msg,
                  "the result depends on the thread schedule (a race, a missing __syncthreads, or an order-"
                  "dependent atomic): under %s and %s the buffer of parameter %d (allocation 0x%" PRIxPTR
                  ", %zu bytes) first differs at byte %zu: as float %.9g vs %.9g, as double %.17g vs %.17g",
                  a.name().c_str(), b.name().c_str(), s.param, s.base, s.size, k, fa, fb, da, db);
    return msg;
}

// Snapshots of the allocations a launch's pointer parameters reach (the driver's lock held): restored
// between schedules, compared across them, and compared with the memory afterwards to find what the
// kernel wrote (for the check of unordered accesses across streams). The first byte each pointer
// addresses counts as read: where a kernel reads beyond it is not known.
std::vector<Snapshot> snapshot_params(CUfunction f, void* const* params, std::vector<Range>* reads) {
    const losskit_emu_kernel_desc* k = f->build->kernel;
    std::vector<Snapshot> snaps;
    for (int i = 0; i < k->param_count; ++i) {
        if (!k->param_is_pointer[i]) continue;
        uintptr_t p = 0;
        std::memcpy(&p, params[i], sizeof p);
        const Allocation* a = drv().memory.find(p);
        if (a == nullptr) continue;
        reads->push_back(Range{p, p + 1});
        bool seen = false;
        for (const Snapshot& s : snaps) seen = seen || s.base == a->base;
        if (seen) continue;
        const char* bytes = reinterpret_cast<const char*>(a->base);
        snaps.push_back(Snapshot{a->base, a->size, i, std::vector<char>(bytes, bytes + a->size), {}});
    }
    return snaps;
}

// The byte ranges of a snapshot's allocation that differ from the snapshot: what the kernel wrote
// (exact to the byte at the ends of each run of changed 64-byte blocks).
void changed_ranges(const Snapshot& s, std::vector<Range>* out) {
    const char* now = reinterpret_cast<const char*>(s.base);
    const char* was = s.before.data();
    constexpr size_t kBlock = 64;
    std::vector<Range> runs;
    for (size_t k = 0; k < s.size; k += kBlock) {
        const size_t n = std::min(kBlock, s.size - k);
        if (std::memcmp(now + k, was + k, n) == 0) continue;
        size_t first = k, last = k + n;
        while (now[first] == was[first]) ++first;
        while (now[last - 1] == was[last - 1]) --last;
        if (!runs.empty() && runs.back().hi == s.base + k && first == k) runs.back().hi = s.base + last;
        else runs.push_back(Range{s.base + first, s.base + last});
    }
    if (runs.size() > 64) runs = {Range{runs.front().lo, runs.back().hi}};
    out->insert(out->end(), runs.begin(), runs.end());
}

// Runs the grid under every configured schedule (without the driver's lock: a worker runs it).
// With more than one, the buffers the kernel can reach through its pointer parameters (`snaps`) are
// restored before each run and the results compared: a kernel whose output depends on the
// interleaving fails even when each single result looks fine.
LaunchOutcome execute(CUfunction f, const uint3& grid, const uint3& block, void** params,
                      std::vector<Snapshot>& snaps) {
    const Config& c = config();
    Driver& d = drv();
    GridLaunch launch;
    launch.kernel = f->build->kernel;
    launch.library = f->build->library;
    launch.grid = grid;
    launch.block = block;
    launch.params = params;
    launch.describe_address = [&d](uintptr_t a) {
        std::lock_guard<std::timed_mutex> lock(d.mu);
        return d.memory.describe(a);
    };
    launch.racecheck = c.racecheck;
    launch.find_allocation = [&d](uintptr_t a, uintptr_t* base, size_t* size) {
        // the mapping too (slack, guard pages): the detector tracks whole pages
        std::lock_guard<std::timed_mutex> lock(d.mu);
        const Allocation* found = d.memory.find(a);
        if (found == nullptr) found = d.memory.find_mapping(a);
        if (found != nullptr) *base = found->base, *size = found->size;
        return found != nullptr;
    };

    // The allocations the pointer parameters reach: a write into their slack (just past the end, or
    // before the start) fails the launch afterwards, as the access would on a GPU under memcheck.
    std::vector<std::pair<int, uintptr_t>> reached;
    std::unique_lock<std::timed_mutex> reach_lock(d.mu);
    for (int i = 0; i < launch.kernel->param_count; ++i) {
        if (!launch.kernel->param_is_pointer[i]) continue;
        uintptr_t p = 0;
        std::memcpy(&p, params[i], sizeof p);
        const Allocation* a = d.memory.find(p);
        if (a == nullptr) a = d.memory.find_mapping(p);  // a pointer to the end, or into the slack
        if (a == nullptr) continue;
        bool seen = false;
        for (const auto& r : reached) seen = seen || r.second == a->base;
        if (!seen) reached.emplace_back(i, a->base);
    }
    reach_lock.unlock();
    LaunchOutcome outcome;
    for (size_t k = 0; k < c.schedules.size(); ++k) {
        launch.schedule = c.schedules[k];
        if (k > 0)
            for (const Snapshot& s : snaps) std::memcpy(reinterpret_cast<char*>(s.base), s.before.data(), s.size);
        outcome = run_grid(launch, c.stack_bytes, c.catch_faults);
        std::unique_lock<std::timed_mutex> poison_lock(d.mu);
        for (const auto& [param, base] : reached) {
            std::string damage;
            const bool intact = d.memory.check_poison(base, &damage);  // poisons the slack again
            if (!intact && outcome.result == CUDA_SUCCESS) {
                outcome.result = CUDA_ERROR_ILLEGAL_ADDRESS;
                outcome.message = "kernel " + std::string(launch.kernel->name) + ": out-of-bounds write: " + damage +
                                  " (reached through parameter " + std::to_string(param) + ")";
            }
        }
        poison_lock.unlock();
        if (outcome.result != CUDA_SUCCESS) {
            if (c.schedules.size() > 1) outcome.message += " [schedule " + launch.schedule.name() + "]";
            return outcome;
        }
        if (!c.compare_schedules || snaps.empty() || c.schedules.size() == 1) continue;
        for (Snapshot& s : snaps) {
            const char* now = reinterpret_cast<const char*>(s.base);
            if (k == 0) {
                s.after.assign(now, now + s.size);
            } else if (std::memcmp(s.after.data(), now, s.size) != 0) {
                outcome.result = CUDA_ERROR_LAUNCH_FAILED;
                outcome.message = "kernel " + std::string(launch.kernel->name) + ": " +
                                  describe_difference(s, s.after.data(), now, c.schedules[0], launch.schedule);
                return outcome;
            }
        }
    }
    return outcome;
}

unsigned max_threads(const CUfunction f) {
    const EntryInfo& e = f->entry;
    if (e.reqntid[0] != 0) return e.reqntid[0] * e.reqntid[1] * e.reqntid[2];
    if (e.maxntid[0] != 0) return std::min<unsigned>(kMaxThreadsPerBlock, e.maxntid[0] * e.maxntid[1] * e.maxntid[2]);
    return kMaxThreadsPerBlock;
}

int active_blocks_per_sm(CUfunction f, int block_size, size_t dynamic_shared) {
    const size_t shared = f->entry.shared_bytes + dynamic_shared;
    int blocks = std::min(2048 / std::max(block_size, 1), 32);
    if (shared > 0) blocks = std::min<int>(blocks, static_cast<int>((100u << 10) / shared));
    return std::max(blocks, 0);
}

}  // namespace
}  // namespace emu

using namespace emu;

// ---- initialisation, version, errors -----------------------------------------------------------

EMU_API cuInit(unsigned int flags) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (d.init_attempted) return d.init_result;
    d.init_attempted = true;
    const Config& c = config();
    if (!c.errors.empty()) {
        for (const std::string& e : c.errors) std::fprintf(stderr, "losskit-emu: %s\n", e.c_str());
        return d.init_result = CUDA_ERROR_INVALID_VALUE;
    }
    if (c.device_count == 0) return d.init_result = CUDA_ERROR_NO_DEVICE;  // "driver present, no device"
    registry().load(c.kernel_paths);
    for (const std::string& e : registry().errors()) note("%s", e.c_str());
    AsyncHooks hooks;
    hooks.conflict = poison_context;
    set_async_hooks(hooks);
    for (int dev = 0; dev < c.device_count; ++dev) {
        CUctx_st* ctx = new CUctx_st;
        ctx->device = dev;
        ctx->primary = true;
        ctx->id = d.next_id++;
        ctx->async = new_async_context(ctx->id, c.async_seed);
        reset_context_state(ctx);
        d.primaries.push_back(ctx);
        d.contexts.insert(ctx);
    }
    if (!c.report.empty()) std::atexit(write_report);
    return d.init_result = CUDA_SUCCESS;
}

EMU_API cuDriverGetVersion(int* version) {
    if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *version = config().driver_version;
    return CUDA_SUCCESS;
}

namespace {
struct ErrorRow {
    int code;
    const char* name;
    const char* text;
};
const ErrorRow kErrors[] = {
#include "errors.inc"
};
const ErrorRow* error_row(CUresult r) {
    for (const ErrorRow& row : kErrors)
        if (row.code == r) return &row;
    return nullptr;
}
}  // namespace

EMU_API cuGetErrorName(CUresult error, const char** name) {
    if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const ErrorRow* row = error_row(error);
    *name = row != nullptr ? row->name : nullptr;
    return row != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EMU_API cuGetErrorString(CUresult error, const char** text) {
    if (text == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const ErrorRow* row = error_row(error);
    *text = row != nullptr ? row->text : nullptr;
    return row != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// ---- devices ---------------------------------------------------------------------------------

EMU_API cuDeviceGetCount(int* count) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = initialized()) return r;
    *count = config().device_count;
    return CUDA_SUCCESS;
}

EMU_API cuDeviceGet(CUdevice* device, int ordinal) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(ordinal)) return r;
    *device = ordinal;
    return CUDA_SUCCESS;
}

EMU_API cuDeviceGetName(char* name, int len, CUdevice dev) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = check_device(dev)) return r;
    if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    std::snprintf(name, static_cast<size_t>(len), "LossKit emulated GPU (CPU, sm_%d%d)", config().cc_major,
                  config().cc_minor);
    return CUDA_SUCCESS;
}

EMU_API cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = check_device(dev)) return r;
    if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(uuid->bytes, "LossKitEmuGPU\0\0", 16);
    uuid->bytes[15] = static_cast<char>(dev);
    return CUDA_SUCCESS;
}

EMU_API cuDeviceGetPCIBusId(char* bus_id, int len, CUdevice dev) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = check_device(dev)) return r;
    if (bus_id == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    std::snprintf(bus_id, static_cast<size_t>(len), "0000:%02x:00.0", dev + 1);
    return CUDA_SUCCESS;
}

EMU_API cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = check_device(dev)) return r;
    if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *bytes = config().device_memory;
    return CUDA_SUCCESS;
}

EMU_API cuDeviceComputeCapability(int* major, int* minor, CUdevice dev) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = check_device(dev)) return r;
    if (major == nullptr || minor == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *major = config().cc_major;
    *minor = config().cc_minor;
    return CUDA_SUCCESS;
}

EMU_API cuDeviceGetAttribute(int* value, int attribute, CUdevice dev) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = check_device(dev)) return r;
    if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const Config& c = config();
    const int threads_per_sm = c.cc_major >= 8 && c.cc_minor > 0 ? 1536 : 2048;
    switch (attribute) {
        case MAX_THREADS_PER_BLOCK: *value = kMaxThreadsPerBlock; break;
        case MAX_BLOCK_DIM_X: *value = 1024; break;
        case MAX_BLOCK_DIM_Y: *value = 1024; break;
        case MAX_BLOCK_DIM_Z: *value = 64; break;
        case MAX_GRID_DIM_X: *value = 2147483647; break;
        case MAX_GRID_DIM_Y: *value = 65535; break;
        case MAX_GRID_DIM_Z: *value = 65535; break;
        case MAX_SHARED_MEMORY_PER_BLOCK: *value = kMaxSharedPerBlock; break;
        case TOTAL_CONSTANT_MEMORY: *value = 65536; break;
        case WARP_SIZE: *value = 32; break;
        case MAX_PITCH: *value = 2147483647; break;
        case MAX_REGISTERS_PER_BLOCK: *value = 65536; break;
        case CLOCK_RATE: *value = 1500000; break;
        case TEXTURE_ALIGNMENT: *value = 512; break;
        case GPU_OVERLAP: *value = 1; break;
        case MULTIPROCESSOR_COUNT: *value = c.sm_count; break;
        case KERNEL_EXEC_TIMEOUT: *value = 0; break;
        case INTEGRATED: *value = 0; break;
        case CAN_MAP_HOST_MEMORY: *value = 1; break;
        case COMPUTE_MODE: *value = 0; break;
        case CONCURRENT_KERNELS: *value = 1; break;
        case ECC_ENABLED: *value = 0; break;
        case PCI_BUS_ID: *value = dev + 1; break;
        case PCI_DEVICE_ID: *value = 0; break;
        case PCI_DOMAIN_ID: *value = 0; break;
        case TCC_DRIVER: *value = 0; break;
        case MEMORY_CLOCK_RATE: *value = 5000000; break;
        case GLOBAL_MEMORY_BUS_WIDTH: *value = 256; break;
        case L2_CACHE_SIZE: *value = 4 << 20; break;
        case MAX_THREADS_PER_MULTIPROCESSOR: *value = threads_per_sm; break;
        case ASYNC_ENGINE_COUNT: *value = 2; break;
        case UNIFIED_ADDRESSING: *value = 1; break;
        case COMPUTE_CAPABILITY_MAJOR: *value = c.cc_major; break;
        case COMPUTE_CAPABILITY_MINOR: *value = c.cc_minor; break;
        case STREAM_PRIORITIES_SUPPORTED: *value = 1; break;
        case GLOBAL_L1_CACHE_SUPPORTED: *value = 1; break;
        case LOCAL_L1_CACHE_SUPPORTED: *value = 1; break;
        case MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *value = 100 << 10; break;
        case MAX_REGISTERS_PER_MULTIPROCESSOR: *value = 65536; break;
        case MANAGED_MEMORY: *value = 0; break;  // cuMemAllocManaged is not emulated
        case MULTI_GPU_BOARD: *value = 0; break;
        case CONCURRENT_MANAGED_ACCESS: *value = 0; break;
        case COOPERATIVE_LAUNCH: *value = 0; break;
        case MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *value = kMaxSharedPerBlockOptin; break;
        case MAX_BLOCKS_PER_MULTIPROCESSOR: *value = threads_per_sm == 1536 ? 16 : 32; break;
        case MEMORY_POOLS_SUPPORTED: *value = 0; break;
        default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

EMU_API cuDeviceGetProperties(CUdevprop* prop, CUdevice dev) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = check_device(dev)) return r;
    if (prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *prop = CUdevprop{kMaxThreadsPerBlock, {1024, 1024, 64}, {2147483647, 65535, 65535}, kMaxSharedPerBlock,
                      65536, 32, 2147483647, 65536, 1500000, 512};
    return CUDA_SUCCESS;
}

EMU_API cuDeviceCanAccessPeer(int* can, CUdevice dev, CUdevice peer) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = check_device(dev)) return r;
    if (CUresult r = check_device(peer)) return r;
    if (can == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *can = 0;
    return CUDA_SUCCESS;
}

// ---- contexts --------------------------------------------------------------------------------

EMU_API cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    if (CUresult r = check_device(dev)) return r;
    if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
    CUctx_st* ctx = d.primaries[static_cast<size_t>(dev)];
    if (!ctx->alive) {
        reset_context_state(ctx);
        ctx->alive = true;
    }
    ++ctx->retain;
    *pctx = ctx;
    return CUDA_SUCCESS;
}

EMU_API cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
    Driver& d = drv();
    std::unique_lock<std::timed_mutex> lock(d.mu);
    if (CUresult r = check_device(dev)) return r;
    CUctx_st* ctx = d.primaries[static_cast<size_t>(dev)];
    if (ctx->retain == 0) return CUDA_ERROR_INVALID_CONTEXT;
    if (d.device_lost) {
        // The retain is dropped, but a lost device frees nothing: its memory stays in the report.
        --ctx->retain;
        return kDeviceLost;
    }
    if (ctx->retain == 1) {
        lock.unlock();
        wait_context(ctx->async);  // the context's work completes before its resources go
        lock.lock();
    }
    if (--ctx->retain == 0) {
        release_context_resources(ctx);
        ctx->alive = false;
    }
    return CUDA_SUCCESS;
}

EMU_API cuDevicePrimaryCtxReset_v2(CUdevice dev) {
    Driver& d = drv();
    std::unique_lock<std::timed_mutex> lock(d.mu);
    if (CUresult r = check_device(dev)) return r;
    // Frees everything and clears a sticky error; the context stays usable by whoever retains it.
    CUctx_st* ctx = d.primaries[static_cast<size_t>(dev)];
    lock.unlock();
    wait_context(ctx->async);
    lock.lock();
    release_context_resources(ctx);
    reset_context_state(ctx);
    return CUDA_SUCCESS;
}

EMU_API cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    if (CUresult r = check_device(dev)) return r;
    if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const CUctx_st* ctx = d.primaries[static_cast<size_t>(dev)];
    *flags = ctx->flags;
    *active = ctx->alive ? 1 : 0;
    return CUDA_SUCCESS;
}

EMU_API cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    if (CUresult r = check_device(dev)) return r;
    if ((flags & ~0x1fu) != 0) return CUDA_ERROR_INVALID_VALUE;
    d.primaries[static_cast<size_t>(dev)]->flags = flags;
    return CUDA_SUCCESS;
}

EMU_API cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    if (CUresult r = check_device(dev)) return r;
    if (pctx == nullptr || (flags & ~0x1fu) != 0) return CUDA_ERROR_INVALID_VALUE;
    CUctx_st* ctx = new CUctx_st;
    ctx->device = dev;
    ctx->flags = flags;
    ctx->alive = true;
    ctx->id = d.next_id++;
    ctx->async = new_async_context(ctx->id, config().async_seed);
    reset_context_state(ctx);
    d.contexts.insert(ctx);
    t_context_stack.push_back(ctx);  // a new context is current to the creating thread
    *pctx = ctx;
    return CUDA_SUCCESS;
}

EMU_API cuCtxDestroy_v2(CUcontext ctx) {
    Driver& d = drv();
    std::unique_lock<std::timed_mutex> lock(d.mu);
    if (CUresult r = initialized()) return r;
    if (!live_context(ctx) || ctx->primary) return CUDA_ERROR_INVALID_CONTEXT;
    if (d.device_lost) return kDeviceLost;  // nothing can be freed on a device that is gone
    lock.unlock();
    wait_context(ctx->async);  // as on a GPU: the context's work completes before it goes
    lock.lock();
    if (!live_context(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    release_context_resources(ctx);
    destroy_queue(ctx->async->legacy);
    ctx->alive = false;
    if (!t_context_stack.empty() && t_context_stack.back() == ctx) t_context_stack.pop_back();
    return CUDA_SUCCESS;
}

EMU_API cuCtxPushCurrent_v2(CUcontext ctx) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = initialized()) return r;
    if (!live_context(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    t_context_stack.push_back(ctx);
    return CUDA_SUCCESS;
}

EMU_API cuCtxPopCurrent_v2(CUcontext* pctx) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = initialized()) return r;
    if (t_context_stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
    if (pctx != nullptr) *pctx = t_context_stack.back();
    t_context_stack.pop_back();
    return CUDA_SUCCESS;
}

EMU_API cuCtxSetCurrent(CUcontext ctx) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = initialized()) return r;
    if (ctx == nullptr) {
        if (!t_context_stack.empty()) t_context_stack.pop_back();
        return CUDA_SUCCESS;
    }
    if (!live_context(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    if (t_context_stack.empty()) t_context_stack.push_back(ctx);
    else t_context_stack.back() = ctx;
    return CUDA_SUCCESS;
}

EMU_API cuCtxGetCurrent(CUcontext* pctx) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = initialized()) return r;
    if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *pctx = t_context_stack.empty() ? nullptr : t_context_stack.back();
    return CUDA_SUCCESS;
}

EMU_API cuCtxGetDevice(CUdevice* dev) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx, false)) return r;
    if (dev == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *dev = ctx->device;
    return CUDA_SUCCESS;
}

EMU_API cuCtxGetFlags(unsigned int* flags) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx, false)) return r;
    if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *flags = ctx->flags;
    return CUDA_SUCCESS;
}

EMU_API cuCtxGetId(CUcontext ctx, unsigned long long* id) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = initialized()) return r;
    if (id == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (ctx == nullptr && current(&ctx, false) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_CONTEXT;
    if (!live_context(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    *id = ctx->id;
    return CUDA_SUCCESS;
}

EMU_API cuCtxGetApiVersion(CUcontext ctx, unsigned int* version) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (CUresult r = initialized()) return r;
    if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (ctx == nullptr && current(&ctx, false) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_CONTEXT;
    if (!live_context(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    *version = 3020;  // what every context created through the _v2 API reports
    return CUDA_SUCCESS;
}

EMU_API cuCtxSynchronize() {
    std::unique_lock<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    lock.unlock();
    wait_context(ctx->async);
    lock.lock();
    return after_wait(ctx);
}

EMU_API cuCtxGetLimit(size_t* value, int limit) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx, false)) return r;
    if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (limit < 0 || limit >= LIMIT_COUNT) return CUDA_ERROR_UNSUPPORTED_LIMIT;
    *value = ctx->limits[limit];
    return CUDA_SUCCESS;
}

EMU_API cuCtxSetLimit(int limit, size_t value) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (limit < 0 || limit >= LIMIT_COUNT || limit >= 7 /* the CIG limits are read-only */)
        return CUDA_ERROR_UNSUPPORTED_LIMIT;
    ctx->limits[limit] = value;
    return CUDA_SUCCESS;
}

EMU_API cuCtxGetCacheConfig(int* config_out) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx, false)) return r;
    if (config_out == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *config_out = ctx->cache_config;
    return CUDA_SUCCESS;
}

EMU_API cuCtxSetCacheConfig(int config_in) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (config_in < 0 || config_in > 3) return CUDA_ERROR_INVALID_VALUE;
    ctx->cache_config = config_in;
    return CUDA_SUCCESS;
}

EMU_API cuCtxGetSharedMemConfig(int* config_out) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx, false)) return r;
    if (config_out == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *config_out = ctx->shared_config;
    return CUDA_SUCCESS;
}

EMU_API cuCtxSetSharedMemConfig(int config_in) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (config_in < 0 || config_in > 2) return CUDA_ERROR_INVALID_VALUE;
    ctx->shared_config = config_in;
    return CUDA_SUCCESS;
}

EMU_API cuCtxGetStreamPriorityRange(int* least, int* greatest) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx, false)) return r;
    if (least != nullptr) *least = 0;
    if (greatest != nullptr) *greatest = -5;
    return CUDA_SUCCESS;
}

// ---- memory ----------------------------------------------------------------------------------

EMU_API cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (free_bytes == nullptr || total_bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *total_bytes = config().device_memory;
    *free_bytes = config().device_memory - d.memory.stats(ctx->device).live_bytes;
    return CUDA_SUCCESS;
}

EMU_API cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (dptr == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    MemoryStats& s = d.memory.stats(ctx->device);
    ++d.alloc_calls;
    count_event(Trigger::Alloc, d.alloc_calls, ctx);
    if (d.device_lost) return kDeviceLost;
    if (ctx->sticky != CUDA_SUCCESS) return ctx->sticky;
    if (injected_failure(config().fail_alloc, d.alloc_calls) || bytes > config().device_memory - s.live_bytes) {
        ++s.failed_allocs;
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    uintptr_t p = 0;
    if (CUresult r = d.memory.allocate(ctx->device, ctx, bytes, 0, &p)) {
        ++s.failed_allocs;
        return r;
    }
    *dptr = static_cast<CUdeviceptr>(p);
    return CUDA_SUCCESS;
}

EMU_API cuMemFree_v2(CUdeviceptr dptr) {
    Driver& d = drv();
    std::unique_lock<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (dptr == 0) return CUDA_SUCCESS;  // the real driver: a no-op, like cudaFree(nullptr)
    if (CUresult r = check_owner(ctx, static_cast<uintptr_t>(dptr), 1, "cuMemFree")) return r;
    // cudaFree synchronises the device (the driver API's documentation does not say; drivers do):
    // queued work that uses the block completes first, and a fault in it is returned, not freed past.
    lock.unlock();
    wait_context(ctx->async);
    lock.lock();
    if (CUresult r = after_wait(ctx)) return r;
    return d.memory.release(static_cast<uintptr_t>(dptr), false);
}

EMU_API cuMemGetAddressRange_v2(CUdeviceptr* base, size_t* size, CUdeviceptr dptr) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    const Allocation* a = d.memory.find(static_cast<uintptr_t>(dptr));
    if (a == nullptr || a->device < 0) return CUDA_ERROR_NOT_FOUND;
    if (base != nullptr) *base = a->base;
    if (size != nullptr) *size = a->size;
    return CUDA_SUCCESS;
}

static CUresult host_alloc(void** pp, size_t bytes, unsigned flags) {
    Driver& d = drv();
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (pp == nullptr || bytes == 0 || (flags & ~MEMHOSTALLOC_ALL) != 0) return CUDA_ERROR_INVALID_VALUE;
    uintptr_t p = 0;
    if (CUresult r = d.memory.allocate(-1, nullptr, bytes, flags, &p)) return r;
    *pp = reinterpret_cast<void*>(p);
    return CUDA_SUCCESS;
}

EMU_API cuMemAllocHost_v2(void** pp, size_t bytes) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    return host_alloc(pp, bytes, 0);
}

EMU_API cuMemHostAlloc(void** pp, size_t bytes, unsigned int flags) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    return host_alloc(pp, bytes, flags);
}

EMU_API cuMemFreeHost(void* p) {
    Driver& d = drv();
    std::unique_lock<std::timed_mutex> lock(d.mu);
    if (CUresult r = initialized()) return r;
    if (p == nullptr) return CUDA_SUCCESS;  // free(NULL) semantics, as the real driver
    // cudaFreeHost synchronises as cudaFree does: copies from or into the buffer complete first.
    lock.unlock();
    wait_everything();
    lock.lock();
    // Page-locked memory is host memory: unlocking it needs no device, so it is freed even after a
    // sticky error or the loss of the device (the engine's accounting relies on freeing it then).
    return d.memory.release(reinterpret_cast<uintptr_t>(p), true);
}

EMU_API cuMemHostGetDevicePointer_v2(CUdeviceptr* dptr, void* p, unsigned int flags) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    const Allocation* a = d.memory.find(reinterpret_cast<uintptr_t>(p));
    if (dptr == nullptr || flags != 0 || a == nullptr || a->device >= 0) return CUDA_ERROR_INVALID_VALUE;
    *dptr = reinterpret_cast<uintptr_t>(p);  // unified addressing: the same address
    return CUDA_SUCCESS;
}

EMU_API cuMemHostGetFlags(unsigned int* flags, void* p) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    const Allocation* a = d.memory.find(reinterpret_cast<uintptr_t>(p));
    if (flags == nullptr || a == nullptr || a->device >= 0) return CUDA_ERROR_INVALID_VALUE;
    *flags = a->host_flags;
    return CUDA_SUCCESS;
}

// One copy routine for every direction: validation differs, the work does not. The copy is queued
// on its stream (synchronous forms: the legacy default stream) and the call returns when the CUDA
// documentation's "API synchronization behavior" says it does:
//   synchronous: device -> host and host -> host return once complete; host -> device from
//     page-locked memory returns once complete; from pageable memory the legacy stream's work is
//     waited for, the source staged, and the call returns before the copy runs; device -> device
//     returns at once;
//   Async: host -> host and device -> pageable host return once complete (JCuda pins a Java array
//     only for the call); from pageable host memory the source is staged; everything else returns
//     at once, and a page-locked buffer must not be reused until the copy has completed.
static CUresult copy(CUdeviceptr dst, bool dst_device, const void* src, bool src_device, size_t bytes,
                     CUstream stream, bool has_stream, std::unique_lock<std::timed_mutex>& lock, const char* call) {
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (has_stream)
        if (CUresult r = check_stream(stream, ctx)) return r;
    if (bytes == 0) return CUDA_SUCCESS;
    const CUdeviceptr s = reinterpret_cast<uintptr_t>(src);
    if (CUresult r = dst_device ? check_device_range(dst, bytes) : check_any_range(dst, bytes)) return r;
    if (CUresult r = src_device ? check_device_range(s, bytes) : check_any_range(s, bytes)) return r;
    if (dst == 0 || src == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_owner(ctx, static_cast<uintptr_t>(dst), bytes, call)) return r;
    if (CUresult r = check_owner(ctx, static_cast<uintptr_t>(s), bytes, call)) return r;
    Driver& d = drv();
    ++d.copy_calls_all;
    count_event(Trigger::Copy, d.copy_calls_all, ctx);
    if (d.device_lost) return kDeviceLost;
    if (ctx->sticky != CUDA_SUCCESS) return has_stream ? CUDA_SUCCESS : ctx->sticky;
    if (injected_failure(config().fail_copy, d.copy_calls_all)) {
        // A copy the DMA engine could not complete. A real driver reports an asynchronous failure like
        // a kernel's: CUDA_ERROR_LAUNCH_FAILED ("unspecified launch failure"), sticky for the context,
        // because it cannot know what the copy left half-written. An Async form returns success and the
        // next synchronising call the error; a synchronous copy returns it at once.
        ctx->sticky = CUDA_ERROR_LAUNCH_FAILED;
        note("CUDA_ERROR_LAUNCH_FAILED: copy %" PRIu64 " of %zu bytes failed (LOSSKIT_EMU_FAIL_COPY)", d.copy_calls_all,
             bytes);
        return has_stream ? CUDA_SUCCESS : CUDA_ERROR_LAUNCH_FAILED;
    }
    // Each side by what the address is (unified addressing), as cuMemcpy itself infers it.
    const uintptr_t to = static_cast<uintptr_t>(dst);
    const bool src_dev = on_device(s), dst_dev = on_device(to);
    const bool src_locked = page_locked(s), dst_locked = page_locked(to);
    const int direction = src_dev ? (dst_dev ? 2 : 1) : (dst_dev ? 0 : 3);
    ++drv().copy_calls[direction];
    drv().copy_bytes[direction] += bytes;
    if (has_stream && direction == 0) {
        if (src_locked) {
            ++drv().htod_async_pinned_calls;
            drv().htod_async_pinned_bytes += bytes;
            ++drv().htod_async_pinned_by_stream[is_default_stream(stream) ? 0 : stream->id];
        } else {
            ++drv().htod_async_pageable_calls;
        }
    }

    const bool src_host = !src_dev, dst_host = !dst_dev;
    bool wait = false, stage = false, sync_first = false;
    if (src_host && dst_host) {
        wait = true;
    } else if (dst_host) {
        wait = !has_stream || !dst_locked;
    } else if (src_host) {
        if (src_locked) wait = !has_stream;
        else {
            stage = true;
            sync_first = !has_stream;
        }
    }
    Queue* q = queue_of(ctx, has_stream ? stream : nullptr);
    if (sync_first) {
        lock.unlock();
        wait_legacy_sync(ctx->async);
        lock.lock();
        if (CUresult r = after_wait(ctx)) return r;
    }

    auto op = std::make_shared<Op>();
    char what[256];
    std::snprintf(what, sizeof what, "%s of %zu bytes 0x%" PRIxPTR " -> 0x%" PRIxPTR " on %s", call, bytes,
                  static_cast<uintptr_t>(s), to, q->name().c_str());
    op->what = what;
    if (src_dev || src_locked) op->reads.push_back(Range{s, s + bytes});
    if (dst_dev || dst_locked) op->writes.push_back(Range{to, to + bytes});
    std::shared_ptr<std::vector<char>> staged, expected;
    const char* from = static_cast<const char*>(src);
    if (stage) staged = std::make_shared<std::vector<char>>(from, from + bytes);
    // An asynchronous copy from page-locked memory reads it when it runs: what the host changes before
    // then is a reuse of the buffer before the copy completed (detected by comparing with the bytes
    // at submission).
    if (!wait && src_locked) expected = std::make_shared<std::vector<char>>(from, from + bytes);
    op->delay = draw_delay(ctx->async, !wait && (src_locked || dst_locked));
    op->run = [ctx, to, from, bytes, staged, expected](Op& self) {
        if (skip_work(ctx, &self)) return;
        if (expected && std::memcmp(from, expected->data(), bytes) != 0) {
            size_t k = 0;
            while (from[k] == (*expected)[k]) ++k;
            char msg[512];
            std::snprintf(msg, sizeof msg,
                          "page-locked buffer reused before the copy from it completed: %s: the host changed byte "
                          "%zu of its source (0x%" PRIxPTR ") after the call and before the copy ran (wait for an "
                          "event recorded after the copy, or synchronise the stream, before refilling it)",
                          self.what.c_str(), k, reinterpret_cast<uintptr_t>(from));
            poison_context(ctx->async, msg);
        }
        std::memmove(reinterpret_cast<void*>(to), staged ? staged->data() : from, bytes);
    };
    submit(q, op);
    if (wait) {
        lock.unlock();
        wait_op(op);
        lock.lock();
        return after_wait(ctx);
    }
    return CUDA_SUCCESS;
}

#define EMU_COPY(decl, dst, dst_dev, src, src_dev, bytes, stream, has_stream, call) \
    EMU_API decl {                                                                   \
        std::unique_lock<std::timed_mutex> lock(drv().mu);                           \
        return copy(dst, dst_dev, src, src_dev, bytes, stream, has_stream, lock, call); \
    }
EMU_COPY(cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n), dst, true, src, false, n, nullptr, false,
         "cuMemcpyHtoD")
EMU_COPY(cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n), reinterpret_cast<uintptr_t>(dst), false, host(src), true,
         n, nullptr, false, "cuMemcpyDtoH")
EMU_COPY(cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n), dst, true, host(src), true, n, nullptr, false,
         "cuMemcpyDtoD")
EMU_COPY(cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n), dst, false, host(src), false, n, nullptr, false,
         "cuMemcpy")
EMU_COPY(cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream s), dst, true, src, false, n, s, true,
         "cuMemcpyHtoDAsync")
EMU_COPY(cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s), reinterpret_cast<uintptr_t>(dst), false,
         host(src), true, n, s, true, "cuMemcpyDtoHAsync")
EMU_COPY(cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), dst, true, host(src), true, n, s,
         true, "cuMemcpyDtoDAsync")
EMU_COPY(cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), dst, false, host(src), false, n, s, true,
         "cuMemcpyAsync")
#undef EMU_COPY

// Memsets are queued like copies; the synchronous forms run on the legacy default stream and, as
// documented, return at once unless the target is page-locked host memory.
template <class T>
static CUresult memset_n(CUdeviceptr dst, T value, size_t count, CUstream stream, bool has_stream,
                         std::unique_lock<std::timed_mutex>& lock) {
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (has_stream)
        if (CUresult r = check_stream(stream, ctx)) return r;
    if (dst % sizeof(T) != 0) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device_range(dst, count * sizeof(T))) return r;
    if (CUresult r = check_owner(ctx, static_cast<uintptr_t>(dst), count * sizeof(T), "cuMemsetD*")) return r;
    if (count == 0) return CUDA_SUCCESS;
    Queue* q = queue_of(ctx, has_stream ? stream : nullptr);
    const uintptr_t to = static_cast<uintptr_t>(dst);
    auto op = std::make_shared<Op>();
    char what[200];
    std::snprintf(what, sizeof what, "cuMemsetD%zu%s of %zu bytes at 0x%" PRIxPTR " on %s", sizeof(T) * 8,
                  has_stream ? "Async" : "", count * sizeof(T), to, q->name().c_str());
    op->what = what;
    op->writes.push_back(Range{to, to + count * sizeof(T)});
    op->delay = draw_delay(ctx->async, false);
    op->run = [ctx, to, value, count](Op& self) {
        if (skip_work(ctx, &self)) return;
        T* p = reinterpret_cast<T*>(to);
        for (size_t i = 0; i < count; ++i) p[i] = value;
    };
    submit(q, op);
    if (!has_stream && page_locked(to)) {
        lock.unlock();
        wait_op(op);
        lock.lock();
        return after_wait(ctx);
    }
    return CUDA_SUCCESS;
}

#define EMU_MEMSET(name, T, async)                                                     \
    EMU_API name(CUdeviceptr dst, T value, size_t count) {                             \
        std::unique_lock<std::timed_mutex> lock(drv().mu);                             \
        return memset_n<T>(dst, value, count, nullptr, false, lock);                   \
    }                                                                                  \
    EMU_API async(CUdeviceptr dst, T value, size_t count, CUstream stream) {           \
        std::unique_lock<std::timed_mutex> lock(drv().mu);                             \
        return memset_n<T>(dst, value, count, stream, true, lock);                     \
    }
EMU_MEMSET(cuMemsetD8_v2, unsigned char, cuMemsetD8Async)
EMU_MEMSET(cuMemsetD16_v2, unsigned short, cuMemsetD16Async)
EMU_MEMSET(cuMemsetD32_v2, unsigned int, cuMemsetD32Async)
#undef EMU_MEMSET

// ---- modules and functions -------------------------------------------------------------------

EMU_API cuModuleLoadData(CUmodule* module, const void* image) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    std::string log;
    return finish_load(load_module(module, image, 0, &log), log, "cuModuleLoadData");
}

EMU_API cuModuleLoadFatBinary(CUmodule* module, const void* image) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    std::string log;
    return finish_load(load_module(module, image, 0, &log), log, "cuModuleLoadFatBinary");
}

EMU_API cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int num_options, CUjit_option* options,
                           void** values) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    std::string log;
    const CUresult r = load_module(module, image, 0, &log);
    // The JIT log options: write the failure into the error log, empty the info log, and report the
    // bytes written through the *_SIZE_BYTES entries, as the real JIT does.
    if (options != nullptr && values != nullptr) {
        char* info = nullptr;
        char* error = nullptr;
        size_t info_cap = 0, error_cap = 0;
        int info_size_at = -1, error_size_at = -1;
        for (unsigned i = 0; i < num_options; ++i) {
            switch (options[i]) {
                case JIT_INFO_LOG_BUFFER: info = static_cast<char*>(values[i]); break;
                case JIT_ERROR_LOG_BUFFER: error = static_cast<char*>(values[i]); break;
                case JIT_INFO_LOG_BUFFER_SIZE_BYTES:
                    info_cap = reinterpret_cast<uintptr_t>(values[i]);
                    info_size_at = static_cast<int>(i);
                    break;
                case JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
                    error_cap = reinterpret_cast<uintptr_t>(values[i]);
                    error_size_at = static_cast<int>(i);
                    break;
                default: break;
            }
        }
        size_t info_written = 0, error_written = 0;
        copy_log(info, info_cap, "", &info_written);
        if (r != CUDA_SUCCESS) copy_log(error, error_cap, log, &error_written);
        if (info_size_at >= 0) values[info_size_at] = reinterpret_cast<void*>(info_written);
        if (error_size_at >= 0) values[error_size_at] = reinterpret_cast<void*>(error_written);
    }
    return finish_load(r, log, "cuModuleLoadDataEx");
}

EMU_API cuModuleLoad(CUmodule* module, const char* fname) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (fname == nullptr) return CUDA_ERROR_INVALID_VALUE;
    std::ifstream in(fname, std::ios::binary);
    if (!in) return CUDA_ERROR_FILE_NOT_FOUND;
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string log;
    return finish_load(load_module(module, bytes.c_str(), bytes.size(), &log), log, "cuModuleLoad");
}

EMU_API cuModuleUnload(CUmodule module) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (d.modules.count(module) == 0 || !module->alive) return CUDA_ERROR_INVALID_HANDLE;
    module->alive = false;
    return CUDA_SUCCESS;
}

EMU_API cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (function == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (d.modules.count(module) == 0 || !module->alive) return CUDA_ERROR_INVALID_HANDLE;
    for (CUfunc_st* f : module->functions) {
        if (f->entry.name == name) {
            *function = f;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;  // a kernel missing from the built image, exactly as on a GPU
}

EMU_API cuFuncGetModule(CUmodule* module, CUfunction f) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    if (CUresult r = initialized()) return r;
    if (module == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (d.functions.count(f) == 0 || !f->module->alive) return CUDA_ERROR_INVALID_HANDLE;
    *module = f->module;
    return CUDA_SUCCESS;
}

EMU_API cuFuncGetAttribute(int* value, int attribute, CUfunction f) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_function(f, ctx)) return r;
    if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const Config& c = config();
    switch (attribute) {
        case FUNC_MAX_THREADS_PER_BLOCK: *value = static_cast<int>(max_threads(f)); break;
        case FUNC_SHARED_SIZE_BYTES: *value = static_cast<int>(f->entry.shared_bytes); break;
        case FUNC_CONST_SIZE_BYTES: *value = 0; break;
        case FUNC_LOCAL_SIZE_BYTES: *value = 0; break;
        case FUNC_NUM_REGS: *value = 32; break;  // unknowable without compiling; a plausible value
        case FUNC_PTX_VERSION: *value = f->module->image.kind == ModuleImage::Ptx ? f->module->image.target_sm : 0; break;
        case FUNC_BINARY_VERSION:
            *value = f->module->image.kind == ModuleImage::Ptx ? c.cc_major * 10 + c.cc_minor : f->module->image.target_sm;
            break;
        case FUNC_CACHE_MODE_CA: *value = 0; break;
        case FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES:
            *value = f->max_dynamic_shared - static_cast<int>(f->entry.shared_bytes);
            break;
        case FUNC_PREFERRED_SHARED_MEMORY_CARVEOUT: *value = -1; break;
        default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

EMU_API cuFuncSetAttribute(CUfunction f, int attribute, int value) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_function(f, ctx)) return r;
    if (attribute == FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        if (value < 0 || value + static_cast<int>(f->entry.shared_bytes) > kMaxSharedPerBlockOptin)
            return CUDA_ERROR_INVALID_VALUE;
        f->max_dynamic_shared = value + static_cast<int>(f->entry.shared_bytes);
        return CUDA_SUCCESS;
    }
    if (attribute == FUNC_PREFERRED_SHARED_MEMORY_CARVEOUT) return value >= -1 && value <= 100 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    return CUDA_ERROR_INVALID_VALUE;
}

EMU_API cuFuncSetCacheConfig(CUfunction f, int config_in) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_function(f, ctx)) return r;
    return config_in >= 0 && config_in <= 3 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EMU_API cuFuncSetSharedMemConfig(CUfunction f, int config_in) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_function(f, ctx)) return r;
    return config_in >= 0 && config_in <= 2 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// ---- launch ----------------------------------------------------------------------------------

EMU_API cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                       unsigned int by, unsigned int bz, unsigned int shared_bytes, CUstream stream, void** params,
                       void** extra) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_function(f, ctx)) return r;
    if (CUresult r = check_stream(stream, ctx)) return r;
    // Configuration errors are reported by the launch itself, as on a GPU.
    const uint64_t threads = uint64_t(bx) * by * bz;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 ||
        threads > static_cast<uint64_t>(kMaxThreadsPerBlock) || gx > 2147483647u || gy > 65535 || gz > 65535)
        return CUDA_ERROR_INVALID_VALUE;
    if (f->entry.reqntid[0] != 0 && (bx != f->entry.reqntid[0] || by != f->entry.reqntid[1] || bz != f->entry.reqntid[2]))
        return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    if (threads > max_threads(f)) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;  // beyond __launch_bounds__
    if (f->entry.shared_bytes + shared_bytes > static_cast<size_t>(f->max_dynamic_shared)) return CUDA_ERROR_INVALID_VALUE;
    if (extra != nullptr) return CUDA_ERROR_NOT_SUPPORTED;  // CU_LAUNCH_PARAM_BUFFER_POINTER is not emulated
    if (params == nullptr && f->build->kernel->param_count > 0) return CUDA_ERROR_INVALID_VALUE;

    ++d.launch_calls;
    count_event(Trigger::Launch, d.launch_calls, ctx);
    if (d.device_lost) return kDeviceLost;
    if (ctx->sticky != CUDA_SUCCESS) return CUDA_SUCCESS;  // the planted fault surfaces at the next sync
    const bool injected = injected_failure(config().fail_launch, d.launch_calls);

    // The parameter values are copied now: the caller's array is only valid during the call.
    const losskit_emu_kernel_desc* k = f->build->kernel;
    auto values = std::make_shared<std::vector<uint64_t>>();
    std::vector<size_t> offsets;
    for (int i = 0; i < k->param_count; ++i) {
        offsets.push_back(values->size());
        values->resize(values->size() + (k->param_sizes[i] + 7) / 8 + 1, 0);  // 8-byte aligned, never empty
    }
    for (int i = 0; i < k->param_count; ++i) std::memcpy(values->data() + offsets[i], params[i], k->param_sizes[i]);
    auto pointers = std::make_shared<std::vector<void*>>();
    for (size_t off : offsets) pointers->push_back(values->data() + off);

    Queue* q = queue_of(ctx, stream);
    auto op = std::make_shared<Op>();
    op->what = "cuLaunchKernel(" + f->entry.name + ", launch " + std::to_string(d.launch_calls) + ") on " + q->name();
    op->delay = draw_delay(ctx->async, false);
    const uint3 grid{gx, gy, gz}, block{bx, by, bz};
    op->run = [ctx, f, grid, block, values, pointers, injected](Op& self) {
        Driver& d = drv();
        std::unique_lock<std::timed_mutex> lock(d.mu);
        if (d.device_lost || ctx->sticky != CUDA_SUCCESS) return;
        LaunchOutcome outcome;
        std::string foreign = foreign_parameter(ctx, f, pointers->data());
        if (injected) {
            outcome.result = CUDA_ERROR_LAUNCH_FAILED;
            outcome.message = "kernel " + f->entry.name + ": failure injected by LOSSKIT_EMU_FAIL_LAUNCH";
        } else if (!foreign.empty()) {
            outcome.result = CUDA_ERROR_ILLEGAL_ADDRESS;
            outcome.message = foreign;
        } else {
            std::vector<Snapshot> snaps = snapshot_params(f, pointers->data(), &self.reads);
            lock.unlock();
            outcome = execute(f, grid, block, pointers->data(), snaps);
            if (outcome.result == CUDA_SUCCESS)
                for (const Snapshot& s : snaps) changed_ranges(s, &self.writes);
            lock.lock();
        }
        if (outcome.result != CUDA_SUCCESS) {
            // Asynchronous, as on a GPU: the launch succeeded, the context's next synchronising call (and
            // every later one) returns the error.
            ++d.failed_launches;
            if (ctx->sticky == CUDA_SUCCESS) ctx->sticky = outcome.result;
            const ErrorRow* row = error_row(outcome.result);
            note("%s: %s", row != nullptr ? row->name : "launch failed", outcome.message.c_str());
        }
    };
    submit(q, op);
    return CUDA_SUCCESS;
}

// ---- streams ---------------------------------------------------------------------------------

static CUresult create_stream(CUstream* out, unsigned flags, int priority) {
    Driver& d = drv();
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (out == nullptr || (flags & ~STREAM_NON_BLOCKING) != 0) return CUDA_ERROR_INVALID_VALUE;
    CUstream_st* s = new CUstream_st;
    s->ctx = ctx;
    s->flags = flags;
    s->priority = std::max(-5, std::min(0, priority));
    s->id = d.next_id++;
    s->queue = new_queue(ctx->async, s->id, (flags & STREAM_NON_BLOCKING) == 0);
    d.streams.insert(s);
    *out = s;
    return CUDA_SUCCESS;
}

EMU_API cuStreamCreate(CUstream* out, unsigned int flags) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    return create_stream(out, flags, 0);
}

EMU_API cuStreamCreateWithPriority(CUstream* out, unsigned int flags, int priority) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    return create_stream(out, flags, priority);
}

EMU_API cuStreamDestroy_v2(CUstream s) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx, false)) return r;
    if (is_default_stream(s) || check_stream(s, ctx) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_HANDLE;
    // As documented: returns at once; the stream's queued work still runs, then its worker ends.
    s->alive = false;
    destroy_queue(s->queue);
    return CUDA_SUCCESS;
}

EMU_API cuStreamSynchronize(CUstream s) {
    std::unique_lock<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    Queue* q = queue_of(ctx, s);
    lock.unlock();
    // the legacy default stream is ordered after every blocking stream's earlier work
    if (q->legacy) wait_legacy_sync(ctx->async);
    else wait_queue(q);
    lock.lock();
    return after_wait(ctx);
}

EMU_API cuStreamQuery(CUstream s) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    if (!queue_done(queue_of(ctx, s))) {
        ++drv().not_ready;
        return CUDA_ERROR_NOT_READY;
    }
    return after_wait(ctx);
}

EMU_API cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    if (flags > 1) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_event(e, ctx)) return r;
    wait_event(queue_of(ctx, s), &e->state);  // the event's work as recorded now; later records do not count
    return CUDA_SUCCESS;
}

// Stream memory operations: later work on the stream waits until a 32-bit word in device or page-locked
// memory satisfies the condition (CU_STREAM_WAIT_VALUE_GEQ 0, EQ 1, AND 2, NOR 3; FLUSH 1<<30 ignored).
// The host releases it by writing the word (e.g. in page-locked memory): a deterministic gate.
EMU_API cuStreamWaitValue32_v2(CUstream s, CUdeviceptr addr, unsigned int value, unsigned int flags) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    const unsigned kind = flags & ~(1u << 30);
    if (kind > 3 || addr % 4 != 0) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device_range(addr, 4)) return r;
    Queue* q = queue_of(ctx, s);
    auto op = std::make_shared<Op>();
    op->exclusive = false;
    op->what = "cuStreamWaitValue32 on " + q->name();
    op->run = [ctx, addr, value, kind](Op&) {
        const volatile unsigned* word = reinterpret_cast<const volatile unsigned*>(static_cast<uintptr_t>(addr));
        for (;;) {
            const unsigned w = *word;
            const bool met = kind == 0 ? static_cast<int32_t>(w - value) >= 0
                             : kind == 1 ? w == value
                             : kind == 2 ? (w & value) != 0
                                         : ~(w | value) != 0;
            if (met || skip_work(ctx)) return;
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    };
    submit(q, op);
    return CUDA_SUCCESS;
}

EMU_API cuStreamGetFlags(CUstream s, unsigned int* flags) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *flags = is_default_stream(s) ? 0 : s->flags;
    return CUDA_SUCCESS;
}

EMU_API cuStreamGetPriority(CUstream s, int* priority) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    if (priority == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *priority = is_default_stream(s) ? 0 : s->priority;
    return CUDA_SUCCESS;
}

EMU_API cuStreamGetCtx(CUstream s, CUcontext* pctx) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *pctx = ctx;
    return CUDA_SUCCESS;
}

EMU_API cuStreamGetId(CUstream s, unsigned long long* id) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    if (id == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *id = is_default_stream(s) ? reinterpret_cast<uintptr_t>(s) : s->id;
    return CUDA_SUCCESS;
}

// ---- events ----------------------------------------------------------------------------------

EMU_API cuEventCreate(CUevent* out, unsigned int flags) {
    Driver& d = drv();
    std::lock_guard<std::timed_mutex> lock(d.mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (out == nullptr || (flags & ~EVENT_FLAGS_ALL) != 0) return CUDA_ERROR_INVALID_VALUE;
    if ((flags & 0x4) != 0 && (flags & EVENT_DISABLE_TIMING) == 0) return CUDA_ERROR_INVALID_VALUE;
    CUevent_st* e = new CUevent_st;
    e->ctx = ctx;
    e->flags = flags;
    d.events.insert(e);
    *out = e;
    return CUDA_SUCCESS;
}

EMU_API cuEventDestroy_v2(CUevent e) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx, false)) return r;
    if (CUresult r = check_event(e, ctx)) return r;
    e->alive = false;
    return CUDA_SUCCESS;
}

static CUresult record_event(CUevent e, CUstream s) {
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_event(e, ctx)) return r;
    if (CUresult r = check_stream(s, ctx)) return r;
    e->recorded = true;
    record(&e->state, queue_of(ctx, s));  // completes (and takes its time) when the stream's worker passes it
    return CUDA_SUCCESS;
}

EMU_API cuEventRecord(CUevent e, CUstream s) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    return record_event(e, s);
}

EMU_API cuEventRecordWithFlags(CUevent e, CUstream s, unsigned int flags) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    if (flags > 1) return CUDA_ERROR_INVALID_VALUE;
    return record_event(e, s);
}

EMU_API cuEventQuery(CUevent e) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_event(e, ctx)) return r;
    if (!event_done(&e->state)) {  // never recorded: no work, complete
        ++drv().not_ready;
        return CUDA_ERROR_NOT_READY;
    }
    return after_wait(ctx);
}

EMU_API cuEventSynchronize(CUevent e) {
    std::unique_lock<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_event(e, ctx)) return r;
    lock.unlock();
    wait_event_done(&e->state);
    lock.lock();
    return after_wait(ctx);
}

EMU_API cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (ms == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_event(start, ctx)) return r;
    if (CUresult r = check_event(end, ctx)) return r;
    if (((start->flags | end->flags) & EVENT_DISABLE_TIMING) != 0 || !start->recorded || !end->recorded)
        return CUDA_ERROR_INVALID_HANDLE;
    std::chrono::steady_clock::time_point t0, t1;
    if (!event_time(&start->state, &t0) || !event_time(&end->state, &t1)) {
        ++drv().not_ready;
        return CUDA_ERROR_NOT_READY;
    }
    *ms = std::chrono::duration<float, std::milli>(t1 - t0).count();
    return CUDA_SUCCESS;
}

// ---- occupancy (a plausible model: launch-configuration code must get sane numbers) -----------

EMU_API cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, CUfunction f, int block_size, size_t dynamic_shared) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_function(f, ctx)) return r;
    if (blocks == nullptr || block_size <= 0) return CUDA_ERROR_INVALID_VALUE;
    *blocks = static_cast<unsigned>(block_size) > max_threads(f) ? 0 : active_blocks_per_sm(f, block_size, dynamic_shared);
    return CUDA_SUCCESS;
}

EMU_API cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* blocks, CUfunction f, int block_size,
                                                              size_t dynamic_shared, unsigned int) {
    return cuOccupancyMaxActiveBlocksPerMultiprocessor(blocks, f, block_size, dynamic_shared);
}

EMU_API cuOccupancyMaxPotentialBlockSize(int* min_grid, int* block_size, CUfunction f, CUoccupancyB2DSize,
                                         size_t dynamic_shared, int limit) {
    std::lock_guard<std::timed_mutex> lock(drv().mu);
    CUctx_st* ctx = nullptr;
    if (CUresult r = current(&ctx)) return r;
    if (CUresult r = check_function(f, ctx)) return r;
    if (min_grid == nullptr || block_size == nullptr) return CUDA_ERROR_INVALID_VALUE;
    int size = static_cast<int>(max_threads(f));
    if (limit > 0) size = std::min(size, limit);
    if (size >= 32) size -= size % 32;
    *block_size = size;
    *min_grid = active_blocks_per_sm(f, size, dynamic_shared) * config().sm_count;
    return CUDA_SUCCESS;
}

EMU_API cuOccupancyMaxPotentialBlockSizeWithFlags(int* min_grid, int* block_size, CUfunction f,
                                                  CUoccupancyB2DSize to_shared, size_t dynamic_shared, int limit,
                                                  unsigned int) {
    return cuOccupancyMaxPotentialBlockSize(min_grid, block_size, f, to_shared, dynamic_shared, limit);
}

// ---- profiler: nothing to profile, nothing to refuse -----------------------------------------

EMU_API cuProfilerStart() { return CUDA_SUCCESS; }
EMU_API cuProfilerStop() { return CUDA_SUCCESS; }

// ---- for the emulated cuBLAS ----------------------------------------------------------------

// cuBLAS runs a GEMM on the host at submission: first the work it is ordered after on `stream` (and,
// for a blocking or the legacy stream, the legacy stream's synchronisation) must have completed.
// Counts as no driver call (the fault triggers keep their numbering).
extern "C" __attribute__((visibility("default"))) void losskit_emu_stream_drain(CUstream s) {
    Driver& d = drv();
    std::unique_lock<std::timed_mutex> lock(d.mu);
    if (initialized() != CUDA_SUCCESS || t_context_stack.empty() || t_context_stack.back() == nullptr) return;
    CUctx_st* ctx = t_context_stack.back();
    if (!ctx->alive || check_stream(s, ctx) != CUDA_SUCCESS) return;
    Queue* q = queue_of(ctx, s);
    lock.unlock();
    if (q->legacy || q->blocking) wait_legacy_sync(ctx->async);
    wait_queue(q);
}

// ---- what the generated stubs call -----------------------------------------------------------

extern "C" int losskit_emu_not_supported(const char* name) {
    static std::mutex& mu = *new std::mutex;  // never destroyed, like the driver state
    static std::set<std::string>& reported = *new std::set<std::string>;
    std::lock_guard<std::mutex> lock(mu);
    if (reported.insert(name).second) note("%s is not emulated: returning CUDA_ERROR_NOT_SUPPORTED", name);
    return CUDA_ERROR_NOT_SUPPORTED;
}
