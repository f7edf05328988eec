// Finds and loads the nonlinear engine's plugin: $DLN_TORCH_PLUGIN if set, else
// libdln_torch.so beside the binary that holds this code (the dln executable, or the Python
// package's extension).
#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "dln/nonlinear/torch_engine.hpp"

namespace dln {

namespace {

using MakeSession = Session* (*)(const TorchRunArgs*);

struct Plugin {
  MakeSession make = nullptr;
  std::string error;
};

std::string plugin_path() {
  if (const char* env = std::getenv("DLN_TORCH_PLUGIN"); env && *env) return env;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&plugin_path), &info) && info.dli_fname) {
    std::error_code ec;
    auto self = std::filesystem::canonical(info.dli_fname, ec);
    if (!ec) return (self.parent_path() / "libdln_torch.so").string();
  }
  return "libdln_torch.so";
}

const Plugin& plugin() {
  static Plugin loaded;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string path = plugin_path();
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = dlerror();
      loaded.error = "this dln cannot load its nonlinear engine (" + path +
                     (why ? std::string(": ") + why : std::string()) +
                     "); build it with libtorch (scripts/setup.sh installs libtorch-dev)";
      return;
    }
    loaded.make = reinterpret_cast<MakeSession>(dlsym(handle, "dln_torch_make_session"));
    if (!loaded.make) loaded.error = path + " is not dln's nonlinear engine";
  });
  return loaded;
}

}  // namespace

std::vector<int> factor_widths(int in, int out, const ModelSpec& model) {
  std::vector<int> w = {in};
  const int inner = model.overparam_width > 0 ? model.overparam_width : std::max(in, out);
  for (int i = 1; i < model.overparam; ++i) w.push_back(inner);
  w.push_back(out);
  return w;
}

std::unique_ptr<Session> make_torch_session(const TorchRunArgs& args) {
  const Plugin& p = plugin();
  if (!p.make) throw std::runtime_error(p.error);
  return std::unique_ptr<Session>(p.make(&args));
}

std::string torch_engine_unavailable() {
  return plugin().error;
}

bool is_nonlinear_probe(const std::string& name) {
  static const char* const names[] = {
      "loss_data",      "reg",    "accuracy",      "test_accuracy",     "growth_mismatch",
      "neuron_balance", "active", "pattern_flips", "pattern_agreement", "partial"};
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

bool torch_engine_measures(const std::string& name) {
  static const char* const shared[] = {"loss",     "fro",       "spectral", "balance",
                                       "grad_fro", "test_loss", "time",     "t"};
  return is_nonlinear_probe(name) ||
         std::find(std::begin(shared), std::end(shared), name) != std::end(shared);
}

}  // namespace dln
