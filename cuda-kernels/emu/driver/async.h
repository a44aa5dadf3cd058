// Asynchronous streams and events of the emulated driver: every stream (and each context's legacy
// default stream) is a queue of operations run in order by the stream's own worker thread. What a
// GPU guarantees about the order across streams is all the emulator guarantees: an operation starts
// once everything it is ordered after has completed (its stream's earlier work, cuStreamWaitEvent,
// the legacy default stream's implicit synchronisation, what the host already waited for). Kernel
// launches and copies run one at a time (the fiber scheduler uses globals), in whatever order the
// workers reach them.
//
// Each operation carries a vector clock (per stream: the last operation of that stream it is ordered
// after). Two operations of different streams that neither orders are concurrent; when they touch
// overlapping device or page-locked memory and one of them writes it, the emulator reports both
// (stderr) and poisons the context, as compute-sanitizer would report a race. This does not depend on
// timing: a missing cuStreamWaitEvent is found whether or not the work happened to overlap.
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace emu {

struct Queue;

// Per queue: the sequence number of the last operation an operation (or the host) is ordered after.
using Clock = std::map<Queue*, uint64_t>;

void join(Clock* into, const Clock& other);

struct Range {
    uintptr_t lo = 0, hi = 0;  // [lo, hi)
};

struct Op {
    uint64_t seq = 0;
    Queue* queue = nullptr;
    Clock clock;                        // includes {queue: seq}
    std::string what;                   // "cuLaunchKernel(losskit_bce) on stream 5"
    bool exclusive = true;              // takes the device-wide execution lock (kernels, copies, memsets)
    std::chrono::microseconds delay{0}; // LOSSKIT_EMU_ASYNC=delay: the worker waits this long before running it
    std::vector<Range> reads, writes;   // device / page-locked memory it touches (kernels: filled by run)
    // The work itself, on the worker. Returns a race-free message to poison the context with, or "".
    std::function<void(Op&)> run;
};

struct AsyncContext;

struct Queue {
    AsyncContext* ctx = nullptr;
    uint64_t id = 0;        // the stream id (0: the legacy default stream)
    bool legacy = false;    // the context's NULL stream
    bool blocking = true;   // synchronises with the legacy default stream (not CU_STREAM_NON_BLOCKING)
    bool alive = true;      // false once destroyed: the worker drains the queue and ends
    bool worker_started = false;
    uint64_t submitted = 0, completed = 0;
    Clock last;             // the clock of the last submitted operation
    std::deque<std::shared_ptr<Op>> pending;
    std::string name() const;
};

// What a finished operation leaves for the race check: the memory it touched, its clock.
struct Done {
    Queue* queue;
    uint64_t seq;
    Clock clock;
    std::string what;
    std::vector<Range> reads, writes;
};

struct AsyncContext {
    uint64_t ctx_id = 0;
    Queue* legacy = nullptr;
    std::vector<Queue*> queues;  // every queue, the legacy one first
    Clock host;                  // what the host has seen complete (synchronisations, successful queries)
    std::deque<Done> history;    // finished operations not yet ordered before everything to come
    std::mt19937_64 rng;
};

// Where an event stands: the operation of its last cuEventRecord and when it completed.
struct EventState {
    Queue* queue = nullptr;  // null: never recorded (captures no work)
    uint64_t seq = 0;
    Clock clock;
    uint64_t generation = 0;
    bool stamped = false;
    std::chrono::steady_clock::time_point time;
};

// The hooks the driver gives the engine (it must not call back into the driver's locked API).
struct AsyncHooks {
    // A detected conflict: report it and poison the context.
    void (*conflict)(AsyncContext* ctx, const std::string& message) = nullptr;
};
void set_async_hooks(const AsyncHooks& hooks);

AsyncContext* new_async_context(uint64_t ctx_id, uint64_t seed);
Queue* new_queue(AsyncContext* ctx, uint64_t stream_id, bool blocking);
void destroy_queue(Queue* q);  // the worker ends once the queue is drained

// Queues `op` on `q` after the queue's work, what the host has seen, the legacy default stream's
// synchronisation and `after` (cuStreamWaitEvent). Returns the operation's sequence number.
uint64_t submit(Queue* q, std::shared_ptr<Op> op, const Clock* after = nullptr);
// cuEventRecord: a marker on `q` that stamps the event's time when the worker passes it.
void record(EventState* e, Queue* q);
// cuStreamWaitEvent: later work on `q` starts after the event's captured work.
void wait_event(Queue* q, const EventState* e);

// Host-side waits (call without the driver's lock). Each makes the host "see" what completed.
void wait_queue(Queue* q);                          // cuStreamSynchronize
void wait_op(const std::shared_ptr<Op>& op);        // a synchronous copy (after submit)
void wait_event_done(const EventState* e);          // cuEventSynchronize
void wait_context(AsyncContext* ctx);               // cuCtxSynchronize, cuMemFree, context teardown
void wait_legacy_sync(AsyncContext* ctx);           // what an operation on the legacy stream would wait for
void wait_everything();                             // cuMemFreeHost: every context's work
// Non-blocking queries; true (and the host sees it) when complete.
bool queue_done(Queue* q);
bool event_done(const EventState* e);
// The event's completion time (for cuEventElapsedTime); false while not completed.
bool event_time(const EventState* e, std::chrono::steady_clock::time_point* t);

// LOSSKIT_EMU_ASYNC=delay:SEED: a seeded delay for an operation (0 in the default mode).
std::chrono::microseconds draw_delay(AsyncContext* ctx, bool page_locked_copy);

}  // namespace emu
