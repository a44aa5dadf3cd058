#include "image.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace emu {

namespace {

// ---- PTX ------------------------------------------------------------------------------------

// Drops // and /* */ comments, keeping string literals (.file "a//b") intact.
std::string strip_comments(const char* text, size_t n) {
    std::string out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        const char c = text[i];
        if (c == '"') {
            const size_t start = i++;
            while (i < n && text[i] != '"') i += (text[i] == '\\') ? 2 : 1;
            out.append(text + start, std::min(i + 1, n) - start);
        } else if (c == '/' && i + 1 < n && text[i + 1] == '/') {
            while (i < n && text[i] != '\n') ++i;
            out.push_back('\n');
        } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {
            i += 2;
            while (i + 1 < n && !(text[i] == '*' && text[i + 1] == '/')) ++i;
            ++i;
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '$' || c == '%';
}

// Words (directives, identifiers, numbers like 9.0) and single punctuation characters.
std::vector<std::string> tokenize(const std::string& s) {
    std::vector<std::string> tokens;
    for (size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ++i;
        } else if (c == '"') {
            size_t j = i + 1;
            while (j < s.size() && s[j] != '"') j += (s[j] == '\\') ? 2 : 1;
            tokens.push_back(s.substr(i, j + 1 - i));
            i = j + 1;
        } else if (word_char(c)) {
            size_t j = i;
            while (j < s.size() && word_char(s[j])) ++j;
            tokens.push_back(s.substr(i, j - i));
            i = j;
        } else {
            tokens.push_back(std::string(1, c));
            ++i;
        }
    }
    return tokens;
}

int type_size(const std::string& t) {
    static const std::map<std::string, int> sizes = {
        {".b8", 1},  {".u8", 1},  {".s8", 1},  {".b16", 2}, {".u16", 2}, {".s16", 2}, {".f16", 2},
        {".b32", 4}, {".u32", 4}, {".s32", 4}, {".f32", 4}, {".b64", 8}, {".u64", 8}, {".s64", 8},
        {".f64", 8}, {".f16x2", 4}, {".bf16", 2}, {".b128", 16},
    };
    auto it = sizes.find(t);
    return it == sizes.end() ? 0 : it->second;
}

bool parse_uint(const std::string& t, unsigned long* out) {
    if (t.empty()) return false;
    char* end = nullptr;
    *out = std::strtoul(t.c_str(), &end, 0);
    return *end == '\0';
}

// Size of a declaration such as ".param .align 8 .b8 name[16]" or ".shared .align 4 .f32 s[256]".
size_t declared_size(const std::vector<std::string>& decl) {
    size_t elem = 0, count = 1;
    for (size_t k = 0; k < decl.size(); ++k) {
        if (elem == 0 && type_size(decl[k]) > 0) elem = static_cast<size_t>(type_size(decl[k]));
        if (decl[k] == "[" && k + 1 < decl.size()) {
            unsigned long n = 0;
            count = parse_uint(decl[k + 1], &n) ? n : 0;  // "[]": unsized (extern)
        }
    }
    return elem * count;
}

void read_dims(const std::vector<std::string>& tok, size_t* i, unsigned dims[3]) {
    for (int d = 0; d < 3 && *i + 1 < tok.size(); ++d) {
        unsigned long v = 0;
        if (!parse_uint(tok[*i + 1], &v)) break;
        dims[d] = static_cast<unsigned>(v);
        *i += 1;
        if (*i + 1 < tok.size() && tok[*i + 1] == ",") *i += 1;
        else break;
    }
    for (int d = 0; d < 3; ++d)
        if (dims[d] == 0 && dims[0] != 0) dims[d] = 1;
}

// Parses one ".entry" starting at tok[*i]; leaves *i on the entry's last token.
bool parse_entry(const std::vector<std::string>& tok, size_t* i, EntryInfo* entry, bool* is_definition,
                 std::string* error) {
    size_t k = *i + 1;
    if (k >= tok.size()) return false;
    entry->name = tok[k++];
    if (k < tok.size() && tok[k] == "(") {
        ++k;
        std::vector<std::string> decl;
        int brackets = 0;
        for (; k < tok.size(); ++k) {
            const std::string& t = tok[k];
            if (t == "[") ++brackets;
            if (t == "]") --brackets;
            if (brackets == 0 && (t == "," || t == ")")) {
                if (!decl.empty()) {
                    const size_t size = declared_size(decl);
                    if (size == 0) {
                        *error = "cannot read a parameter of .entry " + entry->name;
                        return false;
                    }
                    entry->param_sizes.push_back(static_cast<uint32_t>(size));
                }
                decl.clear();
                if (t == ")") break;
            } else {
                decl.push_back(t);
            }
        }
        ++k;
    }
    // Performance directives up to the body (definition) or ';' (declaration).
    for (; k < tok.size() && tok[k] != "{" && tok[k] != ";"; ++k) {
        if (tok[k] == ".maxntid") read_dims(tok, &k, entry->maxntid);
        if (tok[k] == ".reqntid") read_dims(tok, &k, entry->reqntid);
    }
    if (k >= tok.size()) return false;
    *is_definition = tok[k] == "{";
    if (*is_definition) {
        int depth = 0;
        for (; k < tok.size(); ++k) {
            if (tok[k] == "{") ++depth;
            if (tok[k] == "}" && --depth == 0) break;
            if (tok[k] == ".shared" && tok[k - 1] != ".extern") {
                std::vector<std::string> decl;
                for (size_t m = k + 1; m < tok.size() && tok[m] != ";"; ++m) decl.push_back(tok[m]);
                entry->shared_bytes += declared_size(decl);
            }
        }
    }
    *i = k;
    return true;
}

ImageStatus parse_ptx(const char* text, size_t n, ModuleImage* out, std::string* error) {
    const std::vector<std::string> tok = tokenize(strip_comments(text, n));
    out->kind = ModuleImage::Ptx;
    bool has_version = false, has_target = false;
    size_t module_shared = 0;
    int depth = 0;
    for (size_t i = 0; i < tok.size(); ++i) {
        const std::string& t = tok[i];
        if (t == "{") ++depth;
        else if (t == "}") --depth;
        else if (t == ".version" && i + 1 < tok.size()) {
            unsigned major = 0, minor = 0;
            if (std::sscanf(tok[i + 1].c_str(), "%u.%u", &major, &minor) != 2) {
                *error = "malformed .version " + tok[i + 1];
                return ImageStatus::Malformed;
            }
            out->ptx_isa = static_cast<int>(major * 10 + minor);
            has_version = true;
        } else if (t == ".target" && i + 1 < tok.size()) {
            unsigned sm = 0;
            if (std::sscanf(tok[i + 1].c_str(), "sm_%u", &sm) != 1) {
                *error = "unsupported .target " + tok[i + 1];
                return ImageStatus::Malformed;
            }
            out->target_sm = static_cast<int>(sm);
            has_target = true;
        } else if (t == ".shared" && depth == 0 && (i == 0 || tok[i - 1] != ".extern")) {
            std::vector<std::string> decl;
            for (size_t m = i + 1; m < tok.size() && tok[m] != ";"; ++m) decl.push_back(tok[m]);
            module_shared += declared_size(decl);
        } else if (t == ".entry") {
            EntryInfo entry;
            bool definition = false;
            if (!parse_entry(tok, &i, &entry, &definition, error)) {
                if (error->empty()) *error = "truncated .entry";
                return ImageStatus::Malformed;
            }
            if (definition) out->entries.push_back(entry);
        }
    }
    if (!has_version || !has_target) return ImageStatus::NotAnImage;
    // Module-scope .shared variables may be used by any entry: count them for each.
    for (EntryInfo& e : out->entries) e.shared_bytes += module_shared;
    return ImageStatus::Ok;
}

// ---- cubin (ELF, e_machine EM_CUDA) ---------------------------------------------------------

template <class T>
T read_le(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

ImageStatus parse_cubin(const unsigned char* d, size_t size, ModuleImage* out, std::string* error) {
    out->kind = ModuleImage::Cubin;
    if (d[4] != 2 || d[5] != 1 || read_le<uint16_t>(d + 18) != 190 /* EM_CUDA */) {
        *error = "ELF image is not a 64-bit CUDA cubin";
        return ImageStatus::Malformed;
    }
    const uint64_t shoff = read_le<uint64_t>(d + 40);
    const uint16_t shentsize = read_le<uint16_t>(d + 58), shnum = read_le<uint16_t>(d + 60),
                   shstrndx = read_le<uint16_t>(d + 62);
    if (size == 0) size = shoff + uint64_t(shnum) * shentsize;  // section headers come last
    if (shentsize < 64 || shoff + uint64_t(shnum) * shentsize > size || shstrndx >= shnum) {
        *error = "truncated cubin";
        return ImageStatus::Malformed;
    }
    struct Section {
        uint32_t name, type, link;
        uint64_t offset, size;
    };
    std::vector<Section> sec(shnum);
    for (unsigned s = 0; s < shnum; ++s) {
        const unsigned char* h = d + shoff + uint64_t(s) * shentsize;
        sec[s] = {read_le<uint32_t>(h), read_le<uint32_t>(h + 4), read_le<uint32_t>(h + 40), read_le<uint64_t>(h + 24),
                  read_le<uint64_t>(h + 32)};
        if (sec[s].type != 8 /* NOBITS */ && sec[s].offset + sec[s].size > size) {
            *error = "truncated cubin";
            return ImageStatus::Malformed;
        }
    }
    auto str = [&](const Section& strtab, uint32_t off) -> std::string {
        if (off >= strtab.size) return "";
        const char* p = reinterpret_cast<const char*>(d + strtab.offset + off);
        return std::string(p, strnlen(p, strtab.size - off));
    };
    std::map<std::string, const Section*> by_name;
    for (const Section& s : sec) by_name[str(sec[shstrndx], s.name)] = &s;

    // Architecture: newer ELF ABI versions keep the SM number in bits 8-15 of e_flags, older ones
    // in bits 0-7.
    const uint32_t flags = read_le<uint32_t>(d + 48);
    out->target_sm = static_cast<int>(flags & 0xff) >= 20 ? static_cast<int>(flags & 0xff)
                                                           : static_cast<int>((flags >> 8) & 0xff);

    for (const Section& s : sec) {
        if (s.type != 2 /* SYMTAB */ || s.link >= shnum) continue;
        for (uint64_t off = 0; off + 24 <= s.size; off += 24) {
            const unsigned char* sym = d + s.offset + off;
            const uint8_t info = sym[4], other = sym[5];
            if ((info & 0xf) != 2 /* STT_FUNC */ || (other & 0x10) == 0 /* STO_CUDA_ENTRY */) continue;
            EntryInfo entry;
            entry.name = str(sec[s.link], read_le<uint32_t>(sym));
            std::map<unsigned, uint32_t> params;  // ordinal -> size
            auto info_it = by_name.find(".nv.info." + entry.name);
            if (info_it != by_name.end()) {
                const unsigned char* p = d + info_it->second->offset;
                const unsigned char* end = p + info_it->second->size;
                while (p + 4 <= end) {
                    const uint8_t format = p[0], attr = p[1];
                    const uint16_t len = read_le<uint16_t>(p + 2);
                    const unsigned char* data = p + 4;
                    p += 4 + (format == 0x04 /* EIFMT_SVAL */ ? len : 0);
                    if (format != 0x04 || p > end) continue;
                    if (attr == 0x17 /* EIATTR_KPARAM_INFO */ && len >= 12)
                        params[read_le<uint16_t>(data + 4)] = (read_le<uint32_t>(data + 8) >> 18) & 0x3fff;
                    if ((attr == 0x05 /* EIATTR_MAX_THREADS */ || attr == 0x10 /* EIATTR_REQNTID */) && len >= 12) {
                        unsigned* dims = attr == 0x05 ? entry.maxntid : entry.reqntid;
                        for (int k = 0; k < 3; ++k) dims[k] = read_le<uint32_t>(data + 4 * k);
                    }
                }
            }
            for (const auto& [ordinal, bytes] : params) entry.param_sizes.push_back(bytes);
            auto shared_it = by_name.find(".nv.shared." + entry.name);
            if (shared_it != by_name.end()) entry.shared_bytes = shared_it->second->size;
            out->entries.push_back(entry);
        }
    }
    return ImageStatus::Ok;
}

}  // namespace

ImageStatus parse_image(const void* data, size_t size, ModuleImage* out, std::string* error) {
    const unsigned char* d = static_cast<const unsigned char*>(data);
    // Byte by byte, so that a short NUL-terminated text is never read past its end.
    auto starts_with = [d, size](std::initializer_list<unsigned char> magic) {
        size_t k = 0;
        for (unsigned char m : magic) {
            if ((size != 0 && k >= size) || d[k] != m) return false;
            ++k;
        }
        return true;
    };
    if (starts_with({0x7f, 'E', 'L', 'F'})) {
        if (size != 0 && size < 64) {
            *error = "truncated cubin";
            return ImageStatus::Malformed;
        }
        return parse_cubin(d, size, out, error);
    }
    if (starts_with({0x50, 0xed, 0x55, 0xba}) || starts_with({0xb1, 0x43, 0x62, 0x46})) return ImageStatus::Fatbin;
    const char* text = static_cast<const char*>(data);
    const size_t n = size == 0 ? std::strlen(text) : strnlen(text, size);
    return parse_ptx(text, n, out, error);
}

}  // namespace emu
