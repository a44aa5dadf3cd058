// emu_gen: the two generators of the emulator build (scripts/build-emu.sh), in C++ so that the
// build needs nothing beyond g++ and Boost.Context. TEST SUPPORT ONLY.
//
//   emu_gen registry --source F.cu --name cuda-kernels/F.cu --preprocessed F.i --out F.emu.cpp
//                    [--list kernels.list]
//     Writes the registration file of one kernel library: every `extern "C" __global__` function
//     the .cu defines, so that nobody keeps the kernel list by hand. The kernels are found in the
//     *preprocessed* source (g++ -E -DLOSSKIT_EMU_SCAN turns __global__ into the marker
//     __losskit_emu_global__), so kernels stamped out by macros count too. Only definitions whose
//     text comes from the .cu itself (by the preprocessor's line markers) are taken, macro
//     expansions included; a kernel defined in a header belongs to no .cu.
//
//   emu_gen stubs --imports imports.txt --defined defined.txt --out stubs.cpp
//                 [--fallback losskit_emu_not_supported] [--library "driver"]
//     Defines every driver symbol JCuda imports (nm -D --undefined-only of libJCudaDriver) that the
//     driver objects do not (nm --defined-only): a JVM calling a symbol libcuda.so.1 lacks dies with
//     "symbol lookup error". Each stub returns CUDA_ERROR_NOT_SUPPORTED and says so once on stderr.
//     The emulated cuBLAS (libcublas.so.12, cuda-kernels/emu/cublas) uses the same generator with
//     its own fallback, which returns CUBLAS_STATUS_NOT_SUPPORTED.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::map<std::string, std::string> parse_args(int argc, char** argv) {
    std::map<std::string, std::string> args;
    for (int i = 2; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
    return args;
}

std::string require(const std::map<std::string, std::string>& args, const char* key) {
    auto it = args.find(key);
    if (it == args.end()) {
        std::fprintf(stderr, "emu_gen: missing %s\n", key);
        std::exit(2);
    }
    return it->second;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "emu_gen: cannot read %s\n", path.c_str());
        std::exit(1);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string real_path(const std::string& path) {
    char buf[PATH_MAX];
    return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

// ---- registry ------------------------------------------------------------------------------

struct Token {
    std::string text;
    bool in_source;  // comes from the .cu itself, not from an included header
};

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

std::vector<Token> tokenize(const std::string& text, const std::string& source) {
    std::vector<Token> tokens;
    std::map<std::string, bool> is_source;  // cache of realpath comparisons per marker file name
    bool here = true;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        size_t p = line.find_first_not_of(" \t");
        if (p != std::string::npos && line[p] == '#') {
            // Line marker: # 12 "file" flags. Other directives (#pragma) carry no tokens we need.
            const size_t d = line.find_first_not_of(" \t", p + 1);
            const size_t q1 = line.find('"', p), q2 = line.rfind('"');
            if (d != std::string::npos && line[d] >= '0' && line[d] <= '9' && q1 != std::string::npos && q2 > q1) {
                const std::string file = line.substr(q1 + 1, q2 - q1 - 1);
                auto it = is_source.find(file);
                if (it == is_source.end())
                    it = is_source.emplace(file, file[0] != '<' && real_path(file) == source).first;
                here = it->second;
            }
            continue;
        }
        for (size_t i = 0; i < line.size();) {
            const char c = line[i];
            if (c == ' ' || c == '\t' || c == '\r') {
                ++i;
            } else if (c == '"' || c == '\'') {
                size_t j = i + 1;
                while (j < line.size() && line[j] != c) j += line[j] == '\\' ? 2 : 1;
                tokens.push_back({line.substr(i, j + 1 - i), here});
                i = j + 1;
            } else if (ident_start(c)) {
                size_t j = i;
                while (j < line.size() && ident_char(line[j])) ++j;
                tokens.push_back({line.substr(i, j - i), here});
                i = j;
            } else if (c >= '0' && c <= '9') {
                size_t j = i;
                while (j < line.size() && (ident_char(line[j]) || line[j] == '.')) ++j;
                tokens.push_back({line.substr(i, j - i), here});
                i = j;
            } else if (c == ':' && i + 1 < line.size() && line[i + 1] == ':') {
                tokens.push_back({"::", here});
                i += 2;
            } else {
                tokens.push_back({std::string(1, c), here});
                ++i;
            }
        }
    }
    return tokens;
}

// Index just past the bracket group opening at tokens[i].
size_t skip_group(const std::vector<Token>& t, size_t i) {
    const std::string open = t[i].text, close = open == "(" ? ")" : open == "{" ? "}" : "]";
    int depth = 0;
    for (; i < t.size(); ++i) {
        if (t[i].text == open) ++depth;
        if (t[i].text == close && --depth == 0) return i + 1;
    }
    return t.size();
}

int registry(const std::map<std::string, std::string>& args) {
    const std::string source = real_path(require(args, "--source"));
    const std::string name = require(args, "--name");
    const std::vector<Token> t = tokenize(read_file(require(args, "--preprocessed")), source);

    std::vector<std::string> kernels;  // qualified names
    std::vector<std::string> scopes;   // per open brace: "C", "ns:NAME", "ns:", "other"
    bool fatal = false;
    for (size_t i = 0; i < t.size(); ++i) {
        const std::string& x = t[i].text;
        if (x == "{") {
            const std::string p1 = i >= 1 ? t[i - 1].text : "", p2 = i >= 2 ? t[i - 2].text : "";
            if (p2 == "extern" && p1 == "\"C\"") scopes.push_back("C");
            else if (p1 == "namespace") scopes.push_back("ns:");
            else if (p2 == "namespace") scopes.push_back("ns:" + p1);
            else scopes.push_back("other");
        } else if (x == "}") {
            if (!scopes.empty()) scopes.pop_back();
        } else if (x == "__losskit_emu_global__" && t[i].in_source) {
            // The declaration's own specifiers: back to the previous ';', '{' or '}'.
            bool extern_c = false;
            for (const std::string& s : scopes) extern_c = extern_c || s == "C";
            for (size_t j = i; j-- > 0 && t[j].text != ";" && t[j].text != "{" && t[j].text != "}";)
                if (t[j].text == "extern" && j + 1 < i && t[j + 1].text == "\"C\"") extern_c = true;
            // The name: the identifier before the first '(' that does not open an attribute.
            size_t k = i + 1;
            std::string kernel;
            while (k < t.size()) {
                if (t[k].text == "(") {
                    const std::string& prev = t[k - 1].text;
                    if (prev == "__attribute__" || prev == "__declspec" || prev == "alignas" || prev == "__launch_bounds__") {
                        k = skip_group(t, k);
                        continue;
                    }
                    kernel = prev;
                    break;
                }
                if (t[k].text == ";" || t[k].text == "{" || t[k].text == "}") break;
                ++k;
            }
            if (kernel.empty()) {
                std::fprintf(stderr, "emu_gen: %s: cannot read the name of a __global__ declaration\n", name.c_str());
                continue;
            }
            const size_t end = skip_group(t, k);
            const bool definition = end < t.size() && t[end].text == "{";
            if (!definition) continue;  // a declaration: the definition (if any) registers
            if (!extern_c) {
                std::fprintf(stderr,
                             "emu_gen: %s: kernel %s is not extern \"C\"; not registered (the driver and JCuda's "
                             "cuModuleGetFunction find kernels by their unmangled name)\n",
                             name.c_str(), kernel.c_str());
            } else {
                std::string qualified;
                bool anonymous = false;
                for (const std::string& s : scopes) {
                    if (s.rfind("ns:", 0) != 0) continue;
                    if (s == "ns:") anonymous = true;
                    qualified += "::" + s.substr(3);
                }
                if (anonymous) {
                    std::fprintf(stderr, "emu_gen: %s: kernel %s is in an anonymous namespace\n", name.c_str(),
                                 kernel.c_str());
                    fatal = true;
                }
                kernels.push_back(qualified + "::" + kernel);
            }
            i = end - 1;
        }
    }
    if (fatal) return 1;

    std::ofstream out(require(args, "--out"));
    out << "// Generated by cuda-kernels/emu/tools/emu_gen.cpp from " << name << "; do not edit.\n"
        << "#include \"" << source << "\"\n#include \"emu_library.h\"\n\n";
    if (kernels.empty()) {
        out << "LOSSKIT_EMU_LIBRARY(\"" << name << "\", nullptr, 0)\n";
    } else {
        out << "static const losskit_emu_kernel_desc losskit_emu_generated_kernels[] = {\n";
        for (const std::string& k : kernels)
            out << "    ::losskit_emu::describe(\"" << k.substr(k.rfind("::") + 2) << "\", &" << k << "),\n";
        out << "};\nLOSSKIT_EMU_LIBRARY(\"" << name << "\", losskit_emu_generated_kernels, " << kernels.size() << ")\n";
    }
    if (args.count("--list")) {
        std::ofstream list(args.at("--list"), std::ios::app);
        for (const std::string& k : kernels) list << name << '\t' << k.substr(k.rfind("::") + 2) << '\n';
    }
    return out ? 0 : 1;
}

// ---- stubs ---------------------------------------------------------------------------------

// The cu* names in nm output (last field, version suffix dropped).
std::set<std::string> driver_names(const std::string& path) {
    std::set<std::string> names;
    std::istringstream lines(read_file(path));
    std::string line;
    while (std::getline(lines, line)) {
        const size_t space = line.find_last_of(" \t");
        std::string sym = space == std::string::npos ? line : line.substr(space + 1);
        sym = sym.substr(0, sym.find('@'));
        if (sym.size() > 2 && sym.compare(0, 2, "cu") == 0) names.insert(sym);
    }
    return names;
}

int stubs(const std::map<std::string, std::string>& args) {
    const std::set<std::string> imports = driver_names(require(args, "--imports"));
    const std::set<std::string> defined = driver_names(require(args, "--defined"));
    if (imports.empty()) {
        std::fprintf(stderr, "emu_gen: no cu* symbols in %s\n", require(args, "--imports").c_str());
        return 1;
    }
    const auto optional = [&args](const char* key, const char* otherwise) {
        auto it = args.find(key);
        return it == args.end() ? std::string(otherwise) : it->second;
    };
    const std::string fallback = optional("--fallback", "losskit_emu_not_supported");
    const std::string library = optional("--library", "driver");
    size_t implemented = 0;
    std::ostringstream body;
    for (const std::string& s : imports) {
        if (defined.count(s) != 0) {
            ++implemented;
            continue;
        }
        body << "extern \"C\" __attribute__((visibility(\"default\"))) int " << s
             << "() { return " << fallback << "(\"" << s << "\"); }\n";
    }
    std::ofstream out(require(args, "--out"));
    out << "// Generated by cuda-kernels/emu/tools/emu_gen.cpp; do not edit.\n"
        << "// " << imports.size() << " " << library << " symbols imported by JCuda, " << implemented
        << " implemented, " << imports.size() - implemented << " stubbed.\n"
        << "// A stub ignores its arguments, which the x86-64 calling convention makes safe.\n\n"
        << "extern \"C\" int " << fallback << "(const char* name);\n\n"
        << body.str();
    return out ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "registry") return registry(parse_args(argc, argv));
    if (command == "stubs") return stubs(parse_args(argc, argv));
    std::fprintf(stderr, "usage: emu_gen registry|stubs --key value...\n");
    return 2;
}
