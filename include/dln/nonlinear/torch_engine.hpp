// The nonlinear engine: ReLU (or linear) MLPs with biases and overparameterised layers,
// softmax cross-entropy, L2 regularisation and mini-batch SGD, on libtorch's autograd and
// kernels. It lives in a plugin (libdln_torch.so) that dln loads the first time a run needs
// it: libtorch takes most of a second to load, which every other command is spared. This
// header is the seam, free of libtorch: the plugin receives the data, the resolved settings and
// the initial weights, and returns a Session that write_run drives like the native engine's
// Training (docs/design.md#two-engines).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dln/data/dataset.hpp"
#include "dln/run/trainer.hpp"

namespace dln {

// [model] beyond the widths.
struct ModelSpec {
  std::string engine = "native";  // resolved: native | torch
  std::string arch = "mlp";       // mlp | lenet | lenet_tf
  std::string activation = "linear";
  std::string dtype = "float64";  // the torch engine's float32 | float64
  bool bias = false;
  int overparam = 1;                        // every weight matrix a product of this many factors
  int overparam_width = 0;                  // their inner width; 0: max(in, out) of the layer
  std::string overparam_init = "identity";  // identity | independent
};

// One layer of the net: fully connected (in -> out) or a convolution of in -> out channels with
// a kernel x kernel window, zero padding `pad`, stride 1, then (if pool) 2 x 2 max pooling. Its
// weight is a matrix (out, in x kernel x kernel); the activation follows every layer but the
// last.
struct LayerShape {
  bool conv = false;
  int in = 0, out = 0, kernel = 1, pad = 0;
  bool pool = false;
  int fan_in() const { return in * kernel * kernel; }
};

// The layers of an arch: mlp from the widths; lenet, lenet_tf (on 28 x 28 single-channel images,
// docs/config.md#lenet) with `classes` outputs.
std::vector<LayerShape> arch_layers(const std::string& arch, const std::vector<int>& widths);

// Everything a nonlinear run is made of. Pointers are borrowed for the session's life.
struct TorchRunArgs {
  const Dataset* data = nullptr;
  std::vector<int> widths;  // d, ..., k (mlp: the layers' widths; lenet: d = 784 and k)
  std::vector<LayerShape> layers;
  ModelSpec model;
  std::string loss = "l2";  // l2 (1/2 squared error) | cross_entropy
  bool mean = true;         // loss.reduction: mean over samples, or sum
  double l2 = 0.0;          // loss.l2: lambda/2 sum_l ||W_l||_F^2 on each layer's product
  TrainSpec train;
  std::uint64_t shuffle_seed = 1;  // sgd: the per-epoch permutations
  int partial_samples = 3;         // probe partial: the first this many samples
  // The initial factors in order (out, in): layer 1's factors first, the one applied first
  // first; biases start at 0.
  std::vector<Eigen::MatrixXd> init;
  Recorder* recorder = nullptr;
  const StateMap* resume = nullptr;
};

// The widths of the factors of an overparameterised layer from `in` to `out`: in, w, ..., w,
// out with k factors (k = 1: in, out).
std::vector<int> factor_widths(int in, int out, const ModelSpec& model);

// Loads the plugin (once) and starts a session; throws std::runtime_error when this dln has no
// nonlinear engine, naming where it looked.
std::unique_ptr<Session> make_torch_session(const TorchRunArgs& args);

// Empty when the plugin can be loaded; otherwise why not.
std::string torch_engine_unavailable();

// The probes only the nonlinear engine measures, and whether a probe name is measured by it.
bool is_nonlinear_probe(const std::string& name);
bool torch_engine_measures(const std::string& name);

}  // namespace dln

// The plugin's one entry point (C linkage, looked up by dlsym).
extern "C" dln::Session* dln_torch_make_session(const dln::TorchRunArgs* args);
