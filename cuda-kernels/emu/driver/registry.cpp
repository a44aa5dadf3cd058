#include "registry.h"

#include <dirent.h>
#include <dlfcn.h>

#include <algorithm>

#include "config.h"

namespace emu {

Registry& registry() {
    static Registry* r = new Registry;  // never destroyed: JVM threads may call in during exit
    return *r;
}

namespace {

bool is_directory(const std::string& path) {
    DIR* d = opendir(path.c_str());
    if (d == nullptr) return false;
    closedir(d);
    return true;
}

std::vector<std::string> shared_objects_in(const std::string& dir) {
    std::vector<std::string> files;
    if (DIR* d = opendir(dir.c_str())) {
        while (const dirent* e = readdir(d)) {
            const std::string name = e->d_name;
            if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0) files.push_back(dir + "/" + name);
        }
        closedir(d);
    }
    std::sort(files.begin(), files.end());  // load order, hence conflict messages, stay reproducible
    return files;
}

std::string own_directory() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&registry), &info) == 0 || info.dli_fname == nullptr) return ".";
    std::string path = info.dli_fname;
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

void Registry::load(const std::vector<std::string>& paths) {
    std::vector<std::string> roots = paths;
    // LOSSKIT_EMU_RACECHECK=1: the same kernels built with -fsanitize=thread, whose memory accesses
    // feed the race detector (scripts/build-emu.sh builds both sets).
    if (roots.empty()) roots.push_back(own_directory() + (config().racecheck ? "/kernels-racecheck" : "/kernels"));
    for (const std::string& root : roots) {
        if (is_directory(root)) {
            for (const std::string& file : shared_objects_in(root)) load_file(file);
        } else {
            load_file(root);
        }
    }
}

void Registry::load_file(const std::string& path) {
    loading_ = path;
    // RTLD_LOCAL: every library has its own copy of helper functions; only registration connects
    // them to the driver. Their references to losskit_emu_* resolve to this libcuda.so.1, which
    // each links against by soname.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    loading_.clear();
    if (handle == nullptr) {
        const char* why = dlerror();
        errors_.push_back("cannot load kernel library " + path + ": " + (why != nullptr ? why : "?"));
        return;
    }
    libraries_.push_back(path);
}

void Registry::add(const losskit_emu_library_desc* library) {
    const std::string path = loading_.empty() ? std::string("(linked into the process)") : loading_;
    if (library->abi_version != LOSSKIT_EMU_ABI_VERSION) {
        errors_.push_back(path + " was built against emulator ABI " + std::to_string(library->abi_version) +
                          ", this driver implements " + std::to_string(LOSSKIT_EMU_ABI_VERSION) + ": rebuild it");
        return;
    }
    for (int i = 0; i < library->kernel_count; ++i)
        kernels_.emplace(library->kernels[i].name, KernelBuild{&library->kernels[i], library, path});
}

std::vector<const KernelBuild*> Registry::find(const std::string& name) const {
    std::vector<const KernelBuild*> found;
    auto [lo, hi] = kernels_.equal_range(name);
    for (auto it = lo; it != hi; ++it) found.push_back(&it->second);
    return found;
}

}  // namespace emu

extern "C" __attribute__((visibility("default"))) void losskit_emu_register_library(
    const losskit_emu_library_desc* library) {
    emu::registry().add(library);
}
