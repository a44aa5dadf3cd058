// Reading the environment switches. Malformed values are errors, never silently replaced by a
// default: a mistyped schedule would otherwise make a CI job test less than it claims.
#include "config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <sstream>

namespace emu {

std::string Schedule::name() const {
    switch (kind) {
        case Forward: return "forward";
        case Reverse: return "reverse";
        case Random: return "random:" + std::to_string(seed);
        case RandomMem: return "random-mem:" + std::to_string(seed);
    }
    return "?";
}

namespace {

bool parse_u64(const std::string& text, uint64_t* out) {
    if (text.empty()) return false;
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-') return false;
    *out = v;
    return true;
}

bool parse_bytes(std::string text, size_t* out) {
    uint64_t scale = 1;
    if (!text.empty()) {
        switch (text.back()) {
            case 'k': case 'K': scale = uint64_t(1) << 10; break;
            case 'm': case 'M': scale = uint64_t(1) << 20; break;
            case 'g': case 'G': scale = uint64_t(1) << 30; break;
            default: break;
        }
        if (scale != 1) text.pop_back();
    }
    uint64_t v = 0;
    if (!parse_u64(text, &v) || v == 0) return false;
    *out = static_cast<size_t>(v * scale);
    return true;
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, sep))
        if (!part.empty()) parts.push_back(part);
    return parts;
}

Config read_config() {
    Config c;
    auto env = [](const char* name) -> const char* {
        const char* v = std::getenv(name);
        return (v != nullptr && *v != '\0') ? v : nullptr;
    };
    auto bad = [&c](const char* name, const char* value, const char* expected) {
        c.errors.push_back(std::string(name) + "=" + value + " is malformed (expected " + expected + ")");
    };
    uint64_t n = 0;

    if (const char* v = env("LOSSKIT_EMU_DEVICE_COUNT")) {
        if (parse_u64(v, &n) && n <= 16) c.device_count = static_cast<int>(n);
        else bad("LOSSKIT_EMU_DEVICE_COUNT", v, "0..16");
    }
    if (const char* v = env("LOSSKIT_EMU_DRIVER_VERSION")) {
        if (parse_u64(v, &n) && n >= 9000 && n < 100000) c.driver_version = static_cast<int>(n);
        else bad("LOSSKIT_EMU_DRIVER_VERSION", v, "major*1000+minor*10, e.g. 12060");
    }
    if (const char* v = env("LOSSKIT_EMU_CC")) {
        unsigned major = 0, minor = 0;
        char tail = 0;
        if (std::sscanf(v, "%u.%u%c", &major, &minor, &tail) == 2 && major >= 3 && major <= 12 && minor <= 9) {
            c.cc_major = static_cast<int>(major);
            c.cc_minor = static_cast<int>(minor);
        } else {
            bad("LOSSKIT_EMU_CC", v, "major.minor, e.g. 7.5");
        }
    }
    if (const char* v = env("LOSSKIT_EMU_DEVICE_MEMORY")) {
        if (!parse_bytes(v, &c.device_memory)) bad("LOSSKIT_EMU_DEVICE_MEMORY", v, "bytes with optional K/M/G, e.g. 64M");
    }
    if (const char* v = env("LOSSKIT_EMU_SM_COUNT")) {
        if (parse_u64(v, &n) && n >= 1 && n <= 1024) c.sm_count = static_cast<int>(n);
        else bad("LOSSKIT_EMU_SM_COUNT", v, "1..1024");
    }
    if (const char* v = env("LOSSKIT_EMU_SCHEDULE")) {
        c.schedules.clear();
        for (const std::string& s : split(v, ',')) {
            Schedule sched;
            if (s == "forward") {
                sched.kind = Schedule::Forward;
            } else if (s == "reverse") {
                sched.kind = Schedule::Reverse;
            } else if (s == "random" || s.rfind("random:", 0) == 0 || s == "random-mem" ||
                       s.rfind("random-mem:", 0) == 0) {
                const bool mem = s.rfind("random-mem", 0) == 0;
                const size_t prefix = mem ? 11 : 7;
                sched.kind = mem ? Schedule::RandomMem : Schedule::Random;
                sched.seed = 1;
                if (s.size() > prefix && !parse_u64(s.substr(prefix), &sched.seed)) {
                    bad("LOSSKIT_EMU_SCHEDULE", v, "forward, reverse, random[:seed], random-mem[:seed], comma-separated");
                    continue;
                }
            } else {
                bad("LOSSKIT_EMU_SCHEDULE", v, "forward, reverse, random[:seed], random-mem[:seed], comma-separated");
                continue;
            }
            c.schedules.push_back(sched);
        }
        if (c.schedules.empty()) c.schedules.push_back(Schedule{});
    }
    if (const char* v = env("LOSSKIT_EMU_SCHEDULE_COMPARE")) c.compare_schedules = std::strcmp(v, "0") != 0;
    for (auto [name, plan] : {std::pair<const char*, CallPlan*>{"LOSSKIT_EMU_FAIL_ALLOC", &c.fail_alloc},
                              {"LOSSKIT_EMU_FAIL_LAUNCH", &c.fail_launch},
                              {"LOSSKIT_EMU_FAIL_COPY", &c.fail_copy}}) {
        if (const char* v = env(name)) {
            for (const std::string& s : split(v, ',')) {
                const size_t dash = s.find('-');
                uint64_t lo = 0, hi = 0;
                bool ok;
                if (dash == std::string::npos) {
                    ok = parse_u64(s, &lo) && lo >= 1;
                    hi = lo;
                } else {
                    ok = parse_u64(s.substr(0, dash), &lo) && lo >= 1;
                    if (dash + 1 == s.size()) hi = UINT64_MAX;
                    else ok = ok && parse_u64(s.substr(dash + 1), &hi) && hi >= lo;
                }
                if (ok) plan->ranges.emplace_back(lo, hi);
                else bad(name, v, "1-based call numbers or ranges (k, a-b, a-), comma-separated");
            }
        }
    }
    for (auto [name, trigger] : {std::pair<const char*, Trigger*>{"LOSSKIT_EMU_STICKY_AT", &c.sticky_at},
                                 {"LOSSKIT_EMU_DEVICE_LOST_AT", &c.device_lost_at}}) {
        if (const char* v = env(name)) {
            const std::string s = v;
            const size_t colon = s.find(':');
            const std::string what = colon == std::string::npos ? "" : s.substr(0, colon);
            uint64_t k = 0;
            Trigger t;
            if (what == "launch") t.what = Trigger::Launch;
            else if (what == "copy") t.what = Trigger::Copy;
            else if (what == "alloc") t.what = Trigger::Alloc;
            else if (what == "call") t.what = Trigger::Call;
            if (t.what != Trigger::None && parse_u64(s.substr(colon + 1), &k) && k >= 1) {
                t.at = k;
                *trigger = t;
            } else {
                bad(name, v, "launch:k, copy:k, alloc:k or call:k with k >= 1");
            }
        }
    }
    if (const char* v = env("LOSSKIT_EMU_REPORT")) c.report = v;
    if (const char* v = env("LOSSKIT_EMU_STACK_KB")) {
        if (parse_u64(v, &n) && n >= 16 && n <= 65536) c.stack_bytes = static_cast<size_t>(n) << 10;
        else bad("LOSSKIT_EMU_STACK_KB", v, "16..65536");
    }
    if (const char* v = env("LOSSKIT_EMU_KERNELS")) c.kernel_paths = split(v, ':');
    if (const char* v = env("LOSSKIT_EMU_CATCH_FAULTS")) c.catch_faults = std::strcmp(v, "0") != 0;
    if (const char* v = env("LOSSKIT_EMU_ASYNC")) {
        const std::string s = v;
        if (s == "on") {
            c.async_delay = false;
        } else if (s.rfind("delay:", 0) == 0 && parse_u64(s.substr(6), &c.async_seed)) {
            c.async_delay = true;
        } else {
            bad("LOSSKIT_EMU_ASYNC", v, "on or delay:SEED");
        }
    }
    if (const char* v = env("LOSSKIT_EMU_QUIET")) c.quiet = std::strcmp(v, "0") != 0;
    if (const char* v = env("LOSSKIT_EMU_RACECHECK")) {
        if (std::strcmp(v, "0") == 0 || std::strcmp(v, "1") == 0) c.racecheck = v[0] == '1';
        else bad("LOSSKIT_EMU_RACECHECK", v, "0 or 1");
    }
    for (const Schedule& s : c.schedules) {
        if (s.kind == Schedule::RandomMem && !c.racecheck) {
            c.errors.push_back("LOSSKIT_EMU_SCHEDULE=" + s.name() +
                               " needs LOSSKIT_EMU_RACECHECK=1 (only the instrumented kernel libraries report their "
                               "memory accesses)");
            break;
        }
    }
    return c;
}

}  // namespace

const Config& config() {
    static const Config* c = new Config(read_config());  // never destroyed: JVM threads may call in during exit
    return *c;
}

int max_ptx_isa(int driver_version) {
    // PTX ISA shipped with each toolkit; a driver JIT-compiles what its own toolkit generates.
    static const struct { int driver; int isa; } table[] = {
        {9000, 60},  {9010, 61},  {9020, 62},  {10000, 63}, {10010, 64}, {10020, 65},
        {11000, 70}, {11010, 71}, {11020, 72}, {11030, 73}, {11040, 74}, {11050, 75}, {11060, 76},
        {11070, 77}, {11080, 78}, {12000, 80}, {12010, 81}, {12020, 82}, {12030, 83}, {12040, 84},
        {12050, 85}, {12070, 86}, {12080, 87}, {12090, 88}, {13000, 90}, {13010, 91},
    };
    int isa = 60;  // CUDA 9.0, the oldest driver the switch accepts
    for (const auto& row : table)
        if (driver_version >= row.driver) isa = row.isa;
    return isa;
}

}  // namespace emu
