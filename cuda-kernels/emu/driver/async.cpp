// Streams as queues with their own workers, events as positions in them, and the check that no two
// unordered operations of different streams touch the same memory (async.h).
//
// Locks: `g.mu` guards every queue, event and context state here and is never held while an
// operation runs or while the driver's lock is taken; workers take `g.exec` around an operation
// (one kernel or copy at a time, device-wide); the driver's own lock is only taken by the
// operations' run functions and the conflict hook, never by the host-side waits here.
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#include "async.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "config.h"

namespace emu {
namespace {

struct Global {
    std::mutex mu;
    std::condition_variable cv;
    std::mutex exec;
    std::vector<AsyncContext*> contexts;
    AsyncHooks hooks;
};

Global& g() {
    static Global* state = new Global;  // never destroyed: workers and JVM threads may run during exit
    return *state;
}

constexpr size_t kHistoryCap = 4096;

uint64_t at(const Clock& c, Queue* q) {
    auto it = c.find(q);
    return it == c.end() ? 0 : it->second;
}

bool overlaps(const std::vector<Range>& a, const std::vector<Range>& b, Range* where) {
    for (const Range& x : a)
        for (const Range& y : b)
            if (x.lo < y.hi && y.lo < x.hi) {
                *where = Range{std::max(x.lo, y.lo), std::min(x.hi, y.hi)};
                return true;
            }
    return false;
}

// Every operation the clock names has completed (g.mu held).
bool ready(const Op& op) {
    for (const auto& [q, seq] : op.clock)
        if (q != op.queue && q->completed < seq) return false;
    return true;
}

// Drops finished operations that the host and every queued operation are already ordered after:
// nothing to come can be concurrent with them (g.mu held).
void prune(AsyncContext* c) {
    auto covered = [c](const Done& d) {
        if (at(c->host, d.queue) < d.seq) return false;
        for (Queue* q : c->queues)
            if (!q->pending.empty() && at(q->pending.front()->clock, d.queue) < d.seq) return false;
        return true;
    };
    c->history.erase(std::remove_if(c->history.begin(), c->history.end(), covered), c->history.end());
    while (c->history.size() > kHistoryCap) c->history.pop_front();
}

// The race check of a finished operation against earlier finished ones of other streams (g.mu held).
std::string check(AsyncContext* c, const Op& op) {
    if (op.reads.empty() && op.writes.empty()) return "";
    for (const Done& d : c->history) {
        if (d.queue == op.queue || at(op.clock, d.queue) >= d.seq) continue;  // ordered before op
        Range r;
        const char* kind = nullptr;
        if (overlaps(op.writes, d.writes, &r)) kind = "both write";
        else if (overlaps(op.writes, d.reads, &r)) kind = "the second writes what the first reads";
        else if (overlaps(op.reads, d.writes, &r)) kind = "the second reads what the first writes";
        if (kind == nullptr) continue;
        char msg[1024];
        std::snprintf(msg, sizeof msg,
                      "unordered accesses on two streams (a missing cuStreamWaitEvent or synchronisation): %s "
                      "and %s are not ordered by any stream, event or host synchronisation, and %s [0x%zx, 0x%zx)",
                      d.what.c_str(), op.what.c_str(), kind, static_cast<size_t>(r.lo), static_cast<size_t>(r.hi));
        return msg;
    }
    return "";
}

void worker(Queue* q) {
    Global& s = g();
    std::unique_lock<std::mutex> lock(s.mu);
    for (;;) {
        s.cv.wait(lock, [q] { return q->pending.empty() ? !q->alive : ready(*q->pending.front()); });
        if (q->pending.empty()) {
            q->worker_started = false;
            return;
        }
        std::shared_ptr<Op> op = q->pending.front();
        lock.unlock();
        if (op->delay.count() > 0) std::this_thread::sleep_for(op->delay);
        if (op->run) {
            if (op->exclusive) {
                std::lock_guard<std::mutex> exec(s.exec);
                op->run(*op);
            } else {
                op->run(*op);
            }
        }
        lock.lock();
        AsyncContext* c = q->ctx;
        const std::string conflict = check(c, *op);
        if (!conflict.empty() && s.hooks.conflict != nullptr) {
            // poisoned before the operation counts as complete: a wait for it returns the error
            lock.unlock();
            s.hooks.conflict(c, conflict);
            lock.lock();
        }
        q->pending.pop_front();
        q->completed = op->seq;
        if (!op->reads.empty() || !op->writes.empty())
            c->history.push_back(Done{q, op->seq, op->clock, op->what, op->reads, op->writes});
        prune(c);
        s.cv.notify_all();
    }
}

void start_worker(Queue* q) {
    if (q->worker_started) return;
    q->worker_started = true;
    std::thread(worker, q).detach();
}

// Waits (g.mu held through `lock`) until queue q has completed seq, then the host has seen `seen`.
void wait_for(std::unique_lock<std::mutex>& lock, Queue* q, uint64_t seq, const Clock& seen) {
    g().cv.wait(lock, [q, seq] { return q->completed >= seq; });
    join(&q->ctx->host, seen);
}

}  // namespace

void join(Clock* into, const Clock& other) {
    for (const auto& [q, seq] : other) {
        uint64_t& mine = (*into)[q];
        mine = std::max(mine, seq);
    }
}

std::string Queue::name() const { return legacy ? "the legacy default stream" : "stream " + std::to_string(id); }

void set_async_hooks(const AsyncHooks& hooks) {
    std::lock_guard<std::mutex> lock(g().mu);
    g().hooks = hooks;
}

AsyncContext* new_async_context(uint64_t ctx_id, uint64_t seed) {
    std::lock_guard<std::mutex> lock(g().mu);
    AsyncContext* c = new AsyncContext;
    c->ctx_id = ctx_id;
    c->rng.seed(seed ^ (ctx_id * 0x9e3779b97f4a7c15ull));
    Queue* q = new Queue;
    q->ctx = c;
    q->legacy = true;
    c->legacy = q;
    c->queues.push_back(q);
    g().contexts.push_back(c);
    return c;
}

Queue* new_queue(AsyncContext* c, uint64_t stream_id, bool blocking) {
    std::lock_guard<std::mutex> lock(g().mu);
    Queue* q = new Queue;  // never freed: an event may still name it
    q->ctx = c;
    q->id = stream_id;
    q->blocking = blocking;
    c->queues.push_back(q);
    return q;
}

void destroy_queue(Queue* q) {
    std::lock_guard<std::mutex> lock(g().mu);
    q->alive = false;
    g().cv.notify_all();
}

uint64_t submit(Queue* q, std::shared_ptr<Op> op, const Clock* after) {
    std::lock_guard<std::mutex> lock(g().mu);
    AsyncContext* c = q->ctx;
    Clock clock = q->last;
    join(&clock, c->host);
    if (q->legacy) {
        for (Queue* other : c->queues)
            if (other != q && other->blocking) join(&clock, other->last);
    } else if (q->blocking) {
        join(&clock, c->legacy->last);
    }
    if (after != nullptr) join(&clock, *after);
    op->queue = q;
    op->seq = ++q->submitted;
    clock[q] = op->seq;
    op->clock = clock;
    q->last = clock;
    q->pending.push_back(std::move(op));
    start_worker(q);
    g().cv.notify_all();
    return q->submitted;
}

void record(EventState* e, Queue* q) {
    auto op = std::make_shared<Op>();
    op->exclusive = false;
    op->what = "cuEventRecord on " + q->name();
    uint64_t generation;
    {
        std::lock_guard<std::mutex> lock(g().mu);
        generation = ++e->generation;
        e->stamped = false;
    }
    op->run = [e, generation](Op&) {
        const auto now = std::chrono::steady_clock::now();
        std::lock_guard<std::mutex> lock(g().mu);
        if (e->generation == generation) {
            e->time = now;
            e->stamped = true;
        }
    };
    submit(q, op);
    std::lock_guard<std::mutex> lock(g().mu);
    if (e->generation == generation) {
        e->queue = q;
        e->seq = q->submitted;
        e->clock = q->last;
    }
}

void wait_event(Queue* q, const EventState* e) {
    Clock after;
    {
        std::lock_guard<std::mutex> lock(g().mu);
        if (e->queue == nullptr) return;  // never recorded: nothing to wait for
        after = e->clock;
    }
    auto op = std::make_shared<Op>();
    op->exclusive = false;
    op->what = "cuStreamWaitEvent on " + q->name();
    submit(q, op, &after);
}

void wait_queue(Queue* q) {
    std::unique_lock<std::mutex> lock(g().mu);
    const uint64_t seq = q->submitted;
    const Clock seen = q->last;
    wait_for(lock, q, seq, seen);
}

void wait_op(const std::shared_ptr<Op>& op) {
    std::unique_lock<std::mutex> lock(g().mu);
    const Clock seen = op->clock;
    wait_for(lock, op->queue, op->seq, seen);
}

void wait_event_done(const EventState* e) {
    std::unique_lock<std::mutex> lock(g().mu);
    if (e->queue == nullptr) return;
    const Clock seen = e->clock;
    wait_for(lock, e->queue, e->seq, seen);
}

void wait_context(AsyncContext* c) {
    std::unique_lock<std::mutex> lock(g().mu);
    std::vector<std::pair<Queue*, uint64_t>> targets;
    Clock seen;
    for (Queue* q : c->queues) {
        targets.emplace_back(q, q->submitted);
        join(&seen, q->last);
    }
    for (const auto& [q, seq] : targets) g().cv.wait(lock, [q = q, seq = seq] { return q->completed >= seq; });
    join(&c->host, seen);
}

void wait_legacy_sync(AsyncContext* c) {
    std::unique_lock<std::mutex> lock(g().mu);
    Clock seen = c->legacy->last;
    for (Queue* q : c->queues)
        if (q->blocking) join(&seen, q->last);
    for (const auto& [q, seq] : seen) g().cv.wait(lock, [q = q, seq = seq] { return q->completed >= seq; });
    join(&c->host, seen);
}

void wait_everything() {
    std::vector<AsyncContext*> all;
    {
        std::lock_guard<std::mutex> lock(g().mu);
        all = g().contexts;
    }
    for (AsyncContext* c : all) wait_context(c);
}

bool queue_done(Queue* q) {
    std::lock_guard<std::mutex> lock(g().mu);
    if (q->completed < q->submitted) return false;
    join(&q->ctx->host, q->last);
    return true;
}

bool event_done(const EventState* e) {
    std::lock_guard<std::mutex> lock(g().mu);
    if (e->queue == nullptr) return true;
    if (e->queue->completed < e->seq) return false;
    join(&e->queue->ctx->host, e->clock);
    return true;
}

bool event_time(const EventState* e, std::chrono::steady_clock::time_point* t) {
    std::lock_guard<std::mutex> lock(g().mu);
    if (e->queue == nullptr || e->queue->completed < e->seq || !e->stamped) return false;
    *t = e->time;
    return true;
}

std::chrono::microseconds draw_delay(AsyncContext* c, bool page_locked_copy) {
    if (!config().async_delay) return std::chrono::microseconds(0);
    std::lock_guard<std::mutex> lock(g().mu);
    const uint64_t r = c->rng();
    // page-locked copies always complete late (200 us .. 2 ms); other work half of the time (up to 1 ms)
    if (page_locked_copy) return std::chrono::microseconds(200 + r % 1800);
    return (r & 1) != 0 ? std::chrono::microseconds((r >> 1) % 1000) : std::chrono::microseconds(0);
}

}  // namespace emu
