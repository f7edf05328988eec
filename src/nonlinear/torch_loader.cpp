// Finds and loads the nonlinear engine's plugin: $DLN_TORCH_PLUGIN if set, else
// libdln_torch.so beside the binary that holds this code (the dln executable, or the Python
// package's extension).
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
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
    // OpenMP threads that spin after each parallel region of libtorch take the cores from
    // OpenBLAS's own threads, which do its GEMMs: on two cores a W6 step took 2.5x as long
    // (docs/performance.md). Passive waiting, unless the user chose a policy; libgomp reads it
    // when the plugin loads it (a process that already has OpenMP keeps its own).
    if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT"))
      ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
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

std::vector<LayerShape> arch_layers(const std::string& arch, const std::vector<int>& widths) {
  std::vector<LayerShape> out;
  if (arch == "lenet") {
    // LeCun et al.'s LeNet-5 with ReLU and max pooling: 28x28 -> conv 5x5 (pad 2) 6 -> pool ->
    // 14x14x6 -> conv 5x5 16 -> 10x10x16 -> pool -> 5x5x16 = 400 -> 120 -> 84 -> k.
    out.push_back({.conv = true, .in = 1, .out = 6, .kernel = 5, .pad = 2, .pool = true});
    out.push_back({.conv = true, .in = 6, .out = 16, .kernel = 5, .pad = 0, .pool = true});
    out.push_back({.in = 400, .out = 120});
    out.push_back({.in = 120, .out = 84});
    out.push_back({.in = 84, .out = widths.back()});
    return out;
  }
  if (arch == "lenet_tf") {
    // TensorFlow's "LeNet-5-like convolutional MNIST model example" (without its dropout):
    // 28x28 -> conv 5x5 (pad 2) 32 -> pool -> 14x14x32 -> conv 5x5 (pad 2) 64 -> pool ->
    // 7x7x64 = 3136 -> 512 -> k.
    out.push_back({.conv = true, .in = 1, .out = 32, .kernel = 5, .pad = 2, .pool = true});
    out.push_back({.conv = true, .in = 32, .out = 64, .kernel = 5, .pad = 2, .pool = true});
    out.push_back({.in = 3136, .out = 512});
    out.push_back({.in = 512, .out = widths.back()});
    return out;
  }
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    out.push_back({.in = widths[l], .out = widths[l + 1]});
  return out;
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
