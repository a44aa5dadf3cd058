// The CPU builds of the kernels: one shared library per .cu file, each registering its kernels
// (losskit_emu_register_library) when the driver loads it at cuInit.
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "../emu_abi.h"

namespace emu {

struct KernelBuild {
    const losskit_emu_kernel_desc* kernel;
    const losskit_emu_library_desc* library;
    std::string path;  // the shared library it came from
};

class Registry {
public:
    // dlopen()s every kernel library: the files and directories (*.so inside) listed in `paths`, or
    // by default the kernels/ directory next to this libcuda.so.1. Problems are kept in errors().
    void load(const std::vector<std::string>& paths);
    void add(const losskit_emu_library_desc* library);

    // Every CPU build registered under `name`; more than one is a conflict the caller reports.
    std::vector<const KernelBuild*> find(const std::string& name) const;
    const std::vector<std::string>& errors() const { return errors_; }
    const std::vector<std::string>& libraries() const { return libraries_; }

private:
    void load_file(const std::string& path);

    std::multimap<std::string, KernelBuild> kernels_;
    std::vector<std::string> errors_;
    std::vector<std::string> libraries_;
    std::string loading_;  // the library being dlopen()ed, whose initialiser calls add()
};

Registry& registry();

}  // namespace emu
