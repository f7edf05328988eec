#include "dln/run/experiment.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "dln/data/idx_images.hpp"
#include "dln/data/mnist_json.hpp"
#include "dln/data/synthetic.hpp"
#include "dln/io/csv.hpp"
#include "dln/io/input.hpp"
#include "dln/io/libsvm.hpp"
#include "dln/io/npy.hpp"
#include "dln/io/npz.hpp"
#include "dln/io/output.hpp"
#include "dln/optim/agd.hpp"
#include "dln/optim/optimizer.hpp"
#include "dln/probe/probe.hpp"
#include "dln/probe/spectrum.hpp"
#include "dln/rng.hpp"
#include "dln/run/csv_recorder.hpp"
#include "dln/run/progress.hpp"
#include "dln/version.hpp"

namespace dln {
namespace fs = std::filesystem;

namespace {

// Runs f; an InputError from a file is reported at `key` of the config as well.
template <typename F>
auto at_key(const RunSpec& spec, const std::string& key, F&& f) {
  try {
    return f();
  } catch (const InputError& e) {
    throw spec.error_at(key, e.what());
  }
}

Eigen::MatrixXd samples_from(const io::NpyArray& a, const std::string& what, const RunSpec& spec,
                             const std::string& key) {
  if (a.shape.empty() || a.shape.size() > 2)
    throw spec.error_at(key, what + " has shape " + io::shape_string(a.shape) + "; expected (n, " +
                                 (key == "data.y" ? "k" : "d") + ")");
  return a.transposed_matrix();
}

std::string data_key(const RunSpec& spec) {
  std::string key;
  for (const auto& [k, v] : spec.values)
    if (k.starts_with("data.")) key += k + "=" + value_text(v) + ";";
  return key;
}

std::string loss_key(const RunSpec& spec) {
  return fmt::format("kind={};p={};r={};path={};engine={}", spec.loss.kind, spec.loss.p,
                     static_cast<int>(spec.loss.reduction), spec.loss.path, spec.model.engine);
}

std::shared_ptr<const Problem> make_problem(const RunSpec& spec,
                                            std::shared_ptr<const Dataset> data) {
  const GradientPath path = spec.loss.path == "stats"  ? GradientPath::kStats
                            : spec.loss.path == "data" ? GradientPath::kData
                                                       : GradientPath::kAuto;
  const Loss loss =
      spec.loss.kind == "logistic"      ? Loss::margin(LossKind::kLogistic, spec.loss.reduction)
      : spec.loss.kind == "exponential" ? Loss::margin(LossKind::kExponential, spec.loss.reduction)
                                        : Loss(spec.loss.p, spec.loss.reduction);
  // The torch engine reads the data only: no least-squares optimum or statistics.
  return std::make_shared<const Problem>(std::move(data), loss, path, spec.model.engine != "torch");
}

std::string number(double v) {
  return std::isnan(v) ? "nan" : fmt::format("{}", v);
}

nlohmann::json json_number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(number(v));
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Sweeps of more points than this are refused before they are expanded (docs/safety.md#limits).
constexpr std::uint64_t kMaxSweepPoints = 1000000;

// The memory a run takes beyond its data, estimated from the sizes alone (docs/safety.md#memory):
// the net's layers, their gradients and up to two optimiser buffers per layer, the prefix and
// suffix products, and the Gram matrices of the spectral probes.
double net_bytes(const std::vector<int>& widths) {
  double total = 0.0;
  const double d = widths.front(), k = widths.back();
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const double in = widths[l], out = widths[l + 1], m = std::min(in, out);
    total += 4.0 * in * out + out * d + k * in + 3.0 * m * m;
  }
  return 8.0 * total;
}

// The problem built from d x n inputs and k x n targets: the data path's residual buffers; for
// the l2 loss, the least-squares solve (two n x d copies) and the d x d statistics.
double problem_bytes(const RunSpec& spec, double d, double n, double k) {
  double total = (d + k) * n + 2.0 * k * n + 2.0 * k * d;
  const bool l2 = spec.model.engine != "torch" &&
                  (spec.loss.kind == "lp" || spec.loss.kind == "l2") && spec.loss.p == 2.0;
  if (l2) total += 2.0 * n * d + 3.0 * d * d;
  return 8.0 * total;
}

// The config key a data size comes from, for messages.
std::string data_size_key(const RunSpec& spec) {
  const std::string& s = spec.data.source;
  if (s.starts_with("synthetic.")) return "data.dim";
  if (s == "npy" || (s == "csv" && spec.data.path.empty())) return "data.x";
  if (s.starts_with("toy.")) return "data.source";
  return spec.data.paths.empty() ? "data.path" : "data.paths";
}

}  // namespace

std::shared_ptr<const Dataset> load_data(const RunSpec& spec) {
  const DataSpec& d = spec.data;
  auto data = std::make_shared<Dataset>();
  if (d.source.starts_with("synthetic.")) {  // sizes known before anything is drawn
    const double dim = d.dim, n = static_cast<double>(d.samples) *
                                  (d.source == "synthetic.separable" ? 2 : d.components);
    const double k = d.source == "synthetic.separable" ? 1 : d.targets;
    // The generator's rotations: a few d x d matrices at a time.
    const double bytes = 8.0 * (dim + k) * n + 32.0 * dim * dim + problem_bytes(spec, dim, n, k);
    at_key(spec, "data.dim", [&] {
      io::require_memory(bytes, fmt::format("the data ({} x {}) and their statistics", dim, n), "");
    });
  }
  if (d.source == "synthetic.gaussian_mixture") {
    GaussianMixtureSpec g;
    g.components = d.components;
    g.samples = d.samples;
    g.dim = d.dim;
    g.targets = d.targets;
    g.noise = d.noise;
    g.mean_std = d.mean_std;
    g.map_std = d.map_std;
    g.scale_min = d.scale_min;
    g.scale_max = d.scale_max;
    g.seed = d.seed;
    *data = gaussian_mixture(g);
  } else if (d.source == "toy.agd" || d.source == "toy.agd_unstable") {
    *data = toy_diagonal(d.lambdas, d.y_values);
  } else if (d.source == "synthetic.separable") {
    *data = separable(d.samples, d.dim, d.margin, d.seed);
  } else if (d.source == "toy.lp") {
    *data = toy_lp(d.y_values[0], d.y_values[1]);
  } else if (d.source == "toy.scalar") {
    *data = toy_scalar(d.y_star);
  } else if (d.source == "idx") {
    IdxImagesSpec m;
    m.images = d.path;
    m.labels = d.label_path;
    m.test_images = d.test_path;
    m.test_labels = d.test_label_path;
    m.classes = d.classes;
    m.label_mode = d.labels;
    m.per_class = d.per_class;
    *data = at_key(spec, "data.path", [&] { return load_idx_images(m); });
  } else if (d.source == "npy") {
    // Read straight into the data matrices: one copy of the data in memory.
    for (const auto& [key, path] : {std::pair{"data.x", d.x}, {"data.y", d.y}}) {
      std::vector<std::size_t> shape;
      const std::string& file = path;  // a lambda may not capture a structured binding
      auto m = at_key(spec, key, [&] { return io::read_npy_samples(file, shape); });
      if (shape.empty() || shape.size() > 2)
        throw spec.error_at(key, path + " has shape " + io::shape_string(shape) +
                                     "; expected (n, " +
                                     (std::string(key) == "data.y" ? "k" : "d") + ")");
      (std::string(key) == "data.x" ? data->X : data->Y) = std::move(m);
    }
  } else if (d.source == "npz") {
    const auto arrays = at_key(spec, "data.path", [&] { return io::read_npz(d.path); });
    for (const auto& [key, name] : {std::pair{"data.x_key", d.x_key}, {"data.y_key", d.y_key}}) {
      const auto it = arrays.find(name);
      if (it == arrays.end())
        throw spec.error_at(key, d.path + " has no array named '" + name + "'");
      (std::string(key) == "data.x_key" ? data->X : data->Y) =
          samples_from(it->second, d.path + ":" + name, spec, key);
    }
  } else if (d.source == "libsvm") {
    // One file or several read one after another; rows of the listed classes only.
    const std::string key = d.paths.empty() ? "data.path" : "data.paths";
    std::vector<io::SparseTable> tables;
    std::size_t dim = 0, n = 0;
    for (const auto& path : d.paths.empty() ? std::vector<std::string>{d.path} : d.paths) {
      tables.push_back(at_key(spec, key, [&] { return io::read_libsvm(path); }));
      auto& t = tables.back();
      for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const bool keep = d.classes.empty() || std::find(d.classes.begin(), d.classes.end(),
                                                         t.classes[i]) != d.classes.end();
        if (!keep) continue;
        ++n;
        for (const auto& entry : t.rows[i]) dim = std::max(dim, entry.first + 1);
      }
    }
    at_key(spec, key, [&] {
      const double dd = static_cast<double>(dim), nn = static_cast<double>(n);
      io::require_memory(8.0 * dd * nn + problem_bytes(spec, dd, nn, 1.0),
                         fmt::format("training on the dense {} x {} data matrix (d = its largest "
                                     "index)",
                                     dim, n),
                         d.paths.empty() ? d.path : d.paths.front());
    });
    data->X = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(dim), static_cast<Eigen::Index>(n));
    data->Y.resize(1, static_cast<Eigen::Index>(n));
    Eigen::Index col = 0;
    for (const auto& t : tables)
      for (std::size_t i = 0; i < t.rows.size(); ++i) {
        if (!d.classes.empty() &&
            std::find(d.classes.begin(), d.classes.end(), t.classes[i]) == d.classes.end())
          continue;
        for (const auto& [index, value] : t.rows[i])
          data->X(static_cast<Eigen::Index>(index), col) = value;
        data->Y(0, col++) = t.labels[i];
      }
  } else if (d.source == "mnist_json") {
    MnistJsonSpec m;
    m.dir = d.path;
    m.classes = d.classes;
    m.labels = d.labels;
    m.per_class = d.per_class;
    m.test_fraction = d.test_fraction;
    m.test = d.test;
    m.seed = d.seed;
    *data = at_key(spec, "data.path", [&] { return load_mnist_json(m); });
  } else if (!d.x.empty()) {  // csv: features and targets in separate files
    const auto x = at_key(spec, "data.x", [&] { return io::read_csv(d.x, d.delimiter, d.header); });
    const auto y = at_key(spec, "data.y", [&] { return io::read_csv(d.y, d.delimiter, d.header); });
    std::vector<std::size_t> xcols;
    for (const auto& c : d.feature_columns) {
      const auto it = std::find(x.columns.begin(), x.columns.end(), c);
      if (it == x.columns.end())
        throw spec.error_at("data.feature_columns", d.x + " has no column '" + c + "'");
      xcols.push_back(static_cast<std::size_t>(it - x.columns.begin()));
    }
    if (xcols.empty())
      for (std::size_t c = 0; c < x.columns.size(); ++c) xcols.push_back(c);
    data->X.resize(static_cast<Eigen::Index>(xcols.size()), static_cast<Eigen::Index>(x.rows()));
    for (std::size_t i = 0; i < x.rows(); ++i)
      for (std::size_t j = 0; j < xcols.size(); ++j) data->X(j, i) = x.at(i, xcols[j]);
    data->Y.resize(static_cast<Eigen::Index>(y.columns.size()),
                   static_cast<Eigen::Index>(y.rows()));
    for (std::size_t i = 0; i < y.rows(); ++i)
      for (std::size_t j = 0; j < y.columns.size(); ++j) data->Y(j, i) = y.at(i, j);
  } else {
    const auto table =
        at_key(spec, "data.path", [&] { return io::read_csv(d.path, d.delimiter, d.header); });
    auto column = [&](const std::string& name, const std::string& key) {
      const auto it = std::find(table.columns.begin(), table.columns.end(), name);
      if (it == table.columns.end())
        throw spec.error_at(key, d.path + " has no column '" + name + "'");
      return static_cast<std::size_t>(it - table.columns.begin());
    };
    std::vector<std::size_t> ycols, xcols;
    for (const auto& c : d.target_columns) ycols.push_back(column(c, "data.target_columns"));
    if (!d.feature_columns.empty()) {
      for (const auto& c : d.feature_columns) {
        xcols.push_back(column(c, "data.feature_columns"));
        if (std::find(ycols.begin(), ycols.end(), xcols.back()) != ycols.end())
          throw spec.error_at("data.feature_columns", "column '" + c + "' is also a target");
      }
    } else {
      for (std::size_t c = 0; c < table.columns.size(); ++c)
        if (std::find(ycols.begin(), ycols.end(), c) == ycols.end()) xcols.push_back(c);
    }
    const auto n = static_cast<Eigen::Index>(table.rows());
    data->X.resize(static_cast<Eigen::Index>(xcols.size()), n);
    data->Y.resize(static_cast<Eigen::Index>(ycols.size()), n);
    for (Eigen::Index i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < xcols.size(); ++j) data->X(j, i) = table.at(i, xcols[j]);
      for (std::size_t j = 0; j < ycols.size(); ++j) data->Y(j, i) = table.at(i, ycols[j]);
    }
  }
  const std::string origin = d.source == "npy" ? "data.y" : "data.source";
  if (data->X.cols() != data->Y.cols())
    throw spec.error_at(origin, fmt::format("the targets have {} samples, the inputs {}",
                                            data->Y.cols(), data->X.cols()));
  if (data->samples() == 0 || data->dim() == 0 || data->targets() == 0)
    throw spec.error_at(origin, "the data set is empty");
  if (!data->X.allFinite() || !data->Y.allFinite())
    throw spec.error_at(origin, "the data contain NaN or infinite values");
  if (data->has_test() &&
      (data->test_X.rows() != data->dim() || data->test_Y.rows() != data->targets() ||
       data->test_X.cols() != data->test_Y.cols()))
    throw spec.error_at(origin, "the held-out split does not match the shape of the training data");
  if (d.standardize) standardize(*data);
  if (d.standardize_targets) standardize_targets(*data);
  if (d.whiten && !whiten(*data))
    throw spec.error_at("data.whiten", "cannot whiten: Sigma_xx = X X^T / n is singular");
  return data;
}

std::shared_ptr<const Problem> build_problem(const RunSpec& spec,
                                             std::shared_ptr<const Dataset> data) {
  const double d = static_cast<double>(data->dim()), n = static_cast<double>(data->samples());
  const double k = static_cast<double>(data->targets());
  at_key(spec, data_size_key(spec), [&] {
    io::require_memory(problem_bytes(spec, d, n, k),
                       fmt::format("training on {} samples of dimension {}", n, d), "");
  });
  return make_problem(spec, std::move(data));
}

std::shared_ptr<const Problem> ProblemCache::get(const RunSpec& spec) {
  std::lock_guard lock(mutex_);
  const std::string dkey = data_key(spec), pkey = dkey + "|" + loss_key(spec);
  if (auto it = problems_.find(pkey); it != problems_.end()) return it->second;
  auto& data = data_[dkey];
  if (!data) data = load_data(spec);
  auto problem = build_problem(spec, data);
  problems_[pkey] = problem;
  return problem;
}

PreparedRun prepare(const RunSpec& spec, ProblemCache* cache) {
  // The net's memory is known from the widths alone: checked before any data are read.
  at_key(spec, "model.widths",
         [&] { io::require_memory(net_bytes(spec.widths), "a net of these widths", ""); });
  PreparedRun run;
  run.spec = spec;
  run.problem = cache ? cache->get(spec) : build_problem(spec, load_data(spec));
  const Problem& p = *run.problem;
  // model.depth: the outer widths are the data's d and k.
  if (spec.widths.front() == 0) {
    run.spec.widths.front() = static_cast<int>(p.dim());
    run.spec.widths.back() = static_cast<int>(p.targets());
    at_key(spec, "model.depth",
           [&] { io::require_memory(net_bytes(run.spec.widths), "a net of these widths", ""); });
  }
  if (run.spec.widths.front() != p.dim())
    throw spec.error_at("model.widths",
                        fmt::format("first width {} differs from the data dimension d = {}",
                                    spec.widths.front(), p.dim()));
  if (run.spec.widths.back() != p.targets())
    throw spec.error_at("model.widths",
                        fmt::format("last width {} differs from the target dimension k = {}",
                                    spec.widths.back(), p.targets()));
  if (p.loss().is_margin() && !(p.data().Y.array().abs() == 1.0).all())
    throw spec.error_at("loss.kind", spec.loss.kind +
                                         " is a margin loss: the targets must be labels -1 or +1 "
                                         "(data.labels = \"pm1\" for image sources)");
  if (auto why = schedule_unavailable(spec.train.optimizer.schedule, p); !why.empty())
    throw spec.error_at("optimizer.schedule", why);
  if (spec.train.optimizer.kind == "agd")
    if (auto why = agd_unavailable(run.spec.widths, p); !why.empty())
      throw spec.error_at("optimizer.kind", why);
  for (const auto& name : spec.train.probes)
    if (auto why = spec.model.engine == "torch"
                       ? std::string()
                       : probe_unavailable(name, p, spec.train.optimizer.kind,
                                           trains_end_to_end(spec.train.optimizer));
        !why.empty())
      throw spec.error_at("record.probes", why);
  if (spec.model.engine != "torch" &&
      std::any_of(spec.train.probes.begin(), spec.train.probes.end(), needs_hessian)) {
    // The Lanczos vectors: (iters + 2 + k) of the parameters' length, and of W_e's.
    const auto& o = spec.train.probe_options;
    double parameters = 0.0;
    for (std::size_t l = 0; l + 1 < run.spec.widths.size(); ++l)
      parameters += double(run.spec.widths[l]) * run.spec.widths[l + 1];
    const double e2e = double(p.dim()) * double(p.targets());
    const double vectors = double(o.hessian_iters) + 2.0 + o.hessian_k;
    at_key(spec, "record.hessian_iters", [&] {
      io::require_memory(
          8.0 * vectors * (parameters + e2e) + 16.0 * double(p.targets()) * p.samples(),
          "the Lanczos vectors of the Hessian probes", "");
    });
  }
  if (spec.model.engine == "torch") {
    if (spec.loss.kind == "cross_entropy" &&
        (p.targets() < 2 || !((p.data().Y.array() == 0.0) || (p.data().Y.array() == 1.0)).all() ||
         !(p.data().Y.colwise().sum().array() == 1.0).all()))
      throw spec.error_at("loss.kind",
                          "cross_entropy needs one-hot targets of k >= 2 classes (data.labels = "
                          "\"onehot\")");
    for (const auto& name : spec.train.probes)
      if ((name == "test_loss" || name == "test_accuracy") && !p.data().has_test())
        throw spec.error_at("record.probes", "probe '" + name +
                                                 "' needs a held-out split (data.test_fraction "
                                                 "for mnist_json, data.test_path for idx)");
    if (const std::string why = torch_engine_unavailable(); !why.empty())
      throw spec.error_at("model.engine", why);
    if (spec.model.arch != "mlp") {
      static const std::set<std::string> schemes = {"glorot_normal", "glorot_uniform", "he",
                                                    "normal",        "orthogonal",     "constant"};
      if (!schemes.count(spec.init.scheme))
        throw spec.error_at("init.scheme",
                            spec.model.arch +
                                "'s layers are drawn one by one: glorot_normal, "
                                "glorot_uniform, he, normal, orthogonal or constant");
      if (p.dim() != 784)
        throw spec.error_at("model.arch", fmt::format("{} reads 28 x 28 images: d = 784, not {}",
                                                      spec.model.arch, p.dim()));
    }
    const auto layers = arch_layers(spec.model.arch, run.spec.widths);
    const int k = spec.model.overparam;
    // The normal net's initial layers: lenet's drawn one by one, each from a stream of its own;
    // an mlp's as the linear engine would draw a net of these widths (so that a net of one
    // factor per layer starts where the native engine does).
    auto normal_layers = [&] {
      if (spec.model.arch == "mlp")
        return at_key(spec, spec.init.scheme == "npy" ? "init.paths" : "init.scheme",
                      [&] { return initialize(run.spec.widths, spec.init, &p.sigma_yx()); })
            .layers;
      std::vector<Eigen::MatrixXd> out;
      for (std::size_t l = 0; l < layers.size(); ++l) {
        InitSpec init = spec.init;
        init.seed = derive_seed(spec.init.seed, fmt::format("{}.{}", spec.model.arch, l + 1));
        out.push_back(at_key(spec, "init.scheme", [&] {
                        return initialize({layers[l].fan_in(), layers[l].out}, init);
                      }).layers[0]);
      }
      return out;
    };
    bool identity =
        k == 1 || (spec.model.overparam_init == "identity" && spec.init.scheme != "npy");
    for (const auto& layer : layers) {
      const int w = factor_widths(layer.fan_in(), layer.out, spec.model)[1];
      identity = identity && (w == layer.fan_in() || w == layer.out);
    }
    if (identity) {
      // Each layer's factors multiply to the normal net's layer: it at the factor of its shape,
      // identities at the others (the overparameterised net starts as the same function).
      const auto normal = normal_layers();
      for (std::size_t l = 0; l < layers.size(); ++l) {
        const int in = layers[l].fan_in(), out = layers[l].out;
        const int w = factor_widths(in, out, spec.model)[1];
        const bool last = k > 1 && w == in;  // W applied last, after identities on its input
        for (int j = 0; j < k; ++j) {
          const bool here = k == 1 || (last ? j == k - 1 : j == 0);
          run.net.layers.push_back(here ? normal[l] : Eigen::MatrixXd::Identity(w, w));
        }
      }
      return run;
    }
    // Independent factors: every factor drawn by the scheme, layer by layer as a chain of its
    // factors' widths (mlp: one chain of all the factors, npy: one file per factor).
    if (spec.model.arch != "mlp") {
      for (std::size_t l = 0; l < layers.size(); ++l) {
        InitSpec init = spec.init;
        init.seed = derive_seed(spec.init.seed, fmt::format("{}.{}", spec.model.arch, l + 1));
        const LinearNet part = at_key(spec, "init.scheme", [&] {
          return initialize(factor_widths(layers[l].fan_in(), layers[l].out, spec.model), init);
        });
        for (const auto& f : part.layers) run.net.layers.push_back(f);
      }
      return run;
    }
    std::vector<int> chain = {run.spec.widths.front()};
    for (std::size_t l = 0; l + 1 < run.spec.widths.size(); ++l) {
      const auto f = factor_widths(run.spec.widths[l], run.spec.widths[l + 1], spec.model);
      chain.insert(chain.end(), f.begin() + 1, f.end());
    }
    if (spec.init.scheme == "npy" && spec.init.paths.size() != chain.size() - 1)
      throw spec.error_at("init.paths", fmt::format("has {} files for {} factors",
                                                    spec.init.paths.size(), chain.size() - 1));
    at_key(spec, "model.overparam",
           [&] { io::require_memory(3 * net_bytes(chain), "the factors of this net", ""); });
    run.net = at_key(spec, spec.init.scheme == "npy" ? "init.paths" : "init.scheme",
                     [&] { return initialize(chain, spec.init, &p.sigma_yx()); });
    return run;
  }
  run.net = at_key(spec, spec.init.scheme == "npy" ? "init.paths" : "init.scheme",
                   [&] { return initialize(run.spec.widths, spec.init, &p.sigma_yx()); });
  if (trains_end_to_end(spec.train.optimizer)) {
    // The end-to-end update trains W_e alone, from the same initial W_e as the deep net.
    LinearNet collapsed({run.spec.widths.front(), run.spec.widths.back()});
    collapsed.layers[0] = run.net.end_to_end();
    run.net = std::move(collapsed);
  }
  return run;
}

void check_output_dir(const std::string& dir, bool force) {
  io::check_replaceable(io::output_path(dir, "--out"), force);
}

std::string summary_json(const PreparedRun& run, const RunResult& result) {
  nlohmann::ordered_json summary;
  summary["name"] = run.spec.name;
  summary["status"] = status_name(result.status);
  summary["steps"] = result.steps;
  summary["wall_seconds"] = result.seconds;
  summary["steps_per_second"] = result.seconds > 0 ? result.steps / result.seconds : 0.0;
  summary["t"] = result.time;
  if (result.evaluations > 0) summary["evaluations"] = result.evaluations;
  summary["seed"] = run.spec.seed;
  summary["engine"] = run.spec.model.engine;
  summary["widths"] = run.spec.widths;
  summary["sigma_yx_fro"] = run.problem->sigma_yx().norm();
  summary["dln_version"] = kVersion;
  summary["initial_loss"] = json_number(result.initial_loss);
  summary["final_loss"] = json_number(result.final_loss);
  nlohmann::ordered_json final_values;
  for (std::size_t i = 0; i < result.columns.size(); ++i)
    final_values[result.columns[i]] = json_number(result.final_row[i]);
  summary["final"] = final_values;
  return summary.dump(2) + "\n";
}

namespace {

// Whether `dir` holds a checkpoint of `run` (the same resolved config) that write_run
// continues, and nothing but a run's own files.
bool has_checkpoint_of(const fs::path& dir, const PreparedRun& run) {
  std::error_code ec;
  if (!io::is_dln_dir(dir) || !fs::is_regular_file(dir / "checkpoint.npz", ec) ||
      !io::foreign_in_run_dir(dir).empty())
    return false;
  try {
    return io::read_file((dir / "config.toml").string()) == run.spec.resolved_toml;
  } catch (const InputError&) {
    return false;
  }
}

// Makes `dir` a fresh staging directory for a run. An existing one of dln's is replaced only
// if it holds nothing but what a run writes there (not a sweep's partial directory, not a
// user's file); InputError naming what else it holds otherwise.
void restage_run_dir(const fs::path& dir) {
  if (io::is_dln_dir(dir))
    if (const std::string why = io::foreign_in_run_dir(dir); !why.empty())
      throw InputError(dir.string(), 0, "", why + " (move it away)");
  io::make_staging_dir(dir);
}

// A checkpoint's state, or nothing when it cannot be read (the run then starts over).
std::optional<StateMap> read_checkpoint(const fs::path& path) {
  try {
    StateMap state;
    for (auto& [key, array] : io::read_npz(path.string())) state[key] = array.matrix();
    return state;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void write_layers_npz(const fs::path& path, const Session& session) {
  std::map<std::string, Eigen::MatrixXd> layers;
  for (auto& [name, m] : session.parameters()) layers[name] = std::move(m);
  io::write_npz(path.string(), layers, io::Durability::kWithDirectory);
}

using Clock = std::chrono::steady_clock;
constexpr double kCheckpointSeconds = 60.0;  // record.checkpoint_every = "auto"

}  // namespace

std::unique_ptr<Session> start_session(PreparedRun& run, Recorder* recorder,
                                       const StateMap* resume) {
  if (run.spec.model.engine != "torch")
    return std::make_unique<Training>(*run.problem, run.net, run.spec.train, recorder, resume);
  TorchRunArgs a;
  a.data = &run.problem->data();
  a.widths = run.spec.widths;
  a.layers = arch_layers(run.spec.model.arch, run.spec.widths);
  a.model = run.spec.model;
  a.loss = run.spec.loss.kind == "cross_entropy" ? "cross_entropy" : "l2";
  a.mean = run.spec.loss.reduction == Reduction::kMean;
  a.l2 = run.spec.loss.l2;
  a.train = run.spec.train;
  a.shuffle_seed = run.spec.train.optimizer.shuffle_seed;
  a.partial_samples = run.spec.partial_samples;
  a.init = run.net.layers;
  a.recorder = recorder;
  a.resume = resume;
  return make_torch_session(a);
}

RunResult write_run(PreparedRun& run, const std::string& dir, RecorderFilter* filter,
                    bool progress) {
  const fs::path root(dir);
  const fs::path checkpoint = root / "checkpoint.npz";
  // The files of a run are made durable together (io::sync_tree) before the summary.json that
  // says the run is finished.
  constexpr auto kDeferred = io::Durability::kWithDirectory;
  // A checkpoint of this very run (the same resolved config) is continued.
  std::optional<StateMap> resume;
  if (has_checkpoint_of(root, run)) resume = read_checkpoint(checkpoint);
  auto cannot_continue = [&](const std::exception& e) {
    return InputError(
        checkpoint.string(), 0, "",
        std::string("cannot be continued (") + e.what() + "); --force starts the run over");
  };
  long csv_offset = 0;
  if (resume) {
    io::remove_run_temporaries(root);  // what the killed process was writing
    try {
      csv_offset = state_count(*resume, "csv_offset", 0,
                               static_cast<long>(fs::file_size(root / "metrics.csv")));
    } catch (const std::exception& e) {
      throw cannot_continue(e);
    }
  } else {
    fs::create_directories(root / "weights");
    io::write_file_atomic(root / "config.toml", run.spec.resolved_toml, kDeferred);
  }
  const auto& snaps = run.spec.snapshot_steps;
  if (!snaps.empty()) fs::create_directories(root / "snapshots");
  const int digits = static_cast<int>(std::to_string(run.spec.train.optimizer.steps).size());
  bool unsynced = false;  // snapshots written since the last checkpoint
  std::unique_ptr<Session> made;
  auto snapshot = [&](long step) {
    write_layers_npz(root / "snapshots" / fmt::format("step_{:0{}}.npz", step, digits), *made);
    unsynced = true;
  };

  std::optional<CsvRecorder> recorder;
  if (resume)
    recorder.emplace((root / "metrics.csv").string(), csv_offset);
  else
    recorder.emplace((root / "metrics.csv").string());
  Recorder* first = &*recorder;
  if (filter) {
    filter->set_next(&*recorder);
    first = filter;
  }
  try {
    made = start_session(run, first, resume ? &*resume : nullptr);
  } catch (const InputError&) {
    throw;
  } catch (const std::runtime_error& e) {
    if (!resume) throw;
    throw cannot_continue(e);
  }
  Session& training = *made;
  if (resume && progress_mode() != ProgressMode::kQuiet)
    std::fprintf(stderr, "dln: %s: resuming from its checkpoint at step %ld\n",
                 run.spec.name.c_str(), training.steps());
  resume.reset();
  std::size_t next_snap = static_cast<std::size_t>(
      std::lower_bound(snaps.begin(), snaps.end(), training.steps()) - snaps.begin());
  if (next_snap < snaps.size() && snaps[next_snap] == training.steps())
    snapshot(snaps[next_snap++]);

  // The steps, in stretches that end at snapshots and checkpoints; by wall time (checkpoints
  // every minute, progress), stretches that last about 0.02-0.2 s, so that the clock is read
  // rarely.
  const long every = run.spec.checkpoint_every;
  ProgressLine line(progress ? progress_mode() : ProgressMode::kOff);
  const bool timed = every < 0 || line.on();
  const auto started = Clock::now();
  const long first_step = training.steps();
  auto show_progress = [&](Clock::time_point now) {
    const long k = training.steps(), total = training.total_steps();
    const double seconds = std::chrono::duration<double>(now - started).count();
    const double rate = seconds > 0 ? static_cast<double>(k - first_step) / seconds : 0.0;
    line.show(fmt::format(
        "dln: {}  step {}/{} ({:.0f}%)  {:.3g} steps/s  ETA {}  loss {:.4g}", run.spec.name, k,
        total, 100.0 * static_cast<double>(k) / static_cast<double>(std::max(total, 1L)), rate,
        duration_text(rate > 0 ? static_cast<double>(total - k) / rate : NAN),
        training.result().final_loss));
  };
  auto last_checkpoint = started;
  bool checkpoints = every != 0;
  long chunk = 1;
  StateMap state;
  while (!training.done()) {
    const long k0 = training.steps();
    long target = training.total_steps();
    if (next_snap < snaps.size()) target = std::min(target, snaps[next_snap]);
    if (every > 0) target = std::min(target, (k0 / every + 1) * every);
    long n = target - k0;
    if (timed) n = std::min(n, chunk);
    const auto t0 = Clock::now();
    training.advance(n);
    const auto now = Clock::now();
    if (line.due()) show_progress(now);
    if (timed) {
      const double took = std::chrono::duration<double>(now - t0).count();
      if (took < 0.02 && chunk < (1L << 40)) chunk *= 2;
      if (took > 0.2 && chunk > 1) chunk /= 2;
    }
    const long k = training.steps();
    if (next_snap < snaps.size() && snaps[next_snap] == k) snapshot(snaps[next_snap++]);
    if (training.done()) break;
    const bool due = every > 0   ? k % every == 0
                     : every < 0 ? std::chrono::duration<double>(now - last_checkpoint).count() >=
                                       kCheckpointSeconds
                                 : false;
    if (due && checkpoints) {
      state.clear();
      training.save(state);
      put_scalar(state, "csv_offset", static_cast<double>(recorder->sync()));
      if (unsynced) io::sync_tree(root);  // a resumed run does not write them again
      unsynced = false;
      try {
        io::write_npz(checkpoint.string(), state);
      } catch (const std::runtime_error& e) {
        // No checkpoint is no reason to lose the run: it goes on without them.
        if (progress_mode() != ProgressMode::kQuiet)
          std::fprintf(stderr, "dln: %s: no more checkpoints: %s\n", run.spec.name.c_str(),
                       e.what());
        checkpoints = false;
      }
      last_checkpoint = Clock::now();
    }
  }
  if (line.lines()) show_progress(Clock::now());  // the last word in a log
  line.finish();
  const RunResult result = training.finish();
  recorder->close();
  // A run that stopped early has its last state as a snapshot too.
  if (!snaps.empty() && (snaps.back() != result.steps)) snapshot(result.steps);

  for (const auto& [name, m] : training.parameters())
    io::write_npy((root / "weights" / (name + ".npy")).string(), m, kDeferred);
  if (run.spec.save_data) {
    const Dataset& data = run.problem->data();
    io::write_npy((root / "data_X.npy").string(), Eigen::MatrixXd(data.X.transpose()), kDeferred);
    io::write_npy((root / "data_Y.npy").string(), Eigen::MatrixXd(data.Y.transpose()), kDeferred);
  }
  io::sync_tree(root);

  // Written last: a run directory with a summary.json is finished.
  io::write_file_atomic(root / "summary.json", summary_json(run, result), kDeferred);
  // Kept until now: a kill before summary.json is on disk resumes from it.
  io::remove_dln_file(root, "checkpoint.npz");
  io::mark_dir(root, "run", kDeferred);
  return result;
}

RunResult run_atomically(PreparedRun& run, const std::string& dir, bool force,
                         RecorderFilter* filter) {
  io::Output out(io::output_path(dir, "--out"), force);
  // A checkpointed run is written in DIR.partial, kept if it is killed: run again, the same
  // command continues from its checkpoint (unless --force).
  fs::path tmp;
  if (run.spec.checkpoint_every != 0) {
    tmp = out.sibling(".partial");
    if (force || !has_checkpoint_of(tmp, run)) restage_run_dir(tmp);
  } else {
    tmp = out.fresh_staging();
  }
  RunResult result;
  try {
    result = write_run(run, tmp.string(), filter, true);
  } catch (...) {
    // A run that failed keeps its partial directory only if it can be resumed from there.
    std::error_code ec;
    if (run.spec.checkpoint_every != 0 && !fs::exists(tmp / "checkpoint.npz", ec) &&
        io::foreign_in_run_dir(tmp).empty())
      io::remove_dln_dir(tmp);
    throw;
  }
  out.commit(tmp);
  return result;
}

namespace {

// A run of a sweep or an arm: its directory name, its overrides, and the values shown for it
// in runs.csv.
struct Point {
  std::string name;
  std::vector<std::pair<std::string, ConfigValue>> overrides;
  std::vector<std::string> labels;
};

Ranks& ranks_storage() {
  static Ranks ranks;
  return ranks;
}

const Ranks& current_ranks() {
  return ranks_storage();
}

// A finished run's result from its summary.json (status, steps and the final row), for runs a
// resumed sweep does not repeat; nothing when there is no readable one (the run is redone).
std::optional<RunResult> read_result(const fs::path& run_dir) {
  const fs::path path = run_dir / "summary.json";
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(path, ec))) return std::nullopt;
  try {
    const auto summary = nlohmann::ordered_json::parse(io::read_file(path.string()));
    auto number_of = [](const nlohmann::ordered_json& v) {
      return v.is_string() ? std::strtod(v.get<std::string>().c_str(), nullptr) : v.get<double>();
    };
    RunResult r;
    const std::string status = summary.at("status").get<std::string>();
    r.status = status == "converged"  ? RunStatus::kConverged
               : status == "diverged" ? RunStatus::kDiverged
               : status == "stopped"  ? RunStatus::kStopped
                                      : RunStatus::kCompleted;
    r.steps = summary.at("steps").get<long>();
    r.initial_loss = number_of(summary.at("initial_loss"));
    r.final_loss = number_of(summary.at("final_loss"));
    for (const auto& [column, value] : summary.at("final").items()) {
      r.columns.push_back(column);
      r.final_row.push_back(number_of(value));
    }
    return r;
  } catch (const std::exception&) {  // torn or foreign: not a finished run
    return std::nullopt;
  }
}

// Runs `setup` on the first process only; every process learns whether it succeeded, and bad
// input found there is reported there (the others end with a generic InputError).
template <typename F>
void on_first_process(const Ranks& ranks, F&& setup) {
  std::exception_ptr error;
  if (ranks.rank == 0) {
    try {
      setup();
    } catch (...) {
      error = std::current_exception();
    }
  }
  const bool ok = ranks.all_ok(!error);
  if (error) std::rethrow_exception(error);
  if (!ok) throw InputError("the first process could not set up the output directory");
}

// Prepares every point (all input errors before any run), runs them on `jobs` threads into
// `dir` (atomically), and writes runs.csv with `label_columns` before the results. The runs are
// written into DIR.partial first; a sweep that was interrupted (a killed process) and is started
// again with the same points keeps the runs that finished there and runs only the rest.
SweepOutcome run_points(const ConfigFile& config, const std::vector<Point>& points,
                        const std::vector<std::string>& label_columns, const std::string& dir,
                        int jobs, bool force, std::vector<RunResult>* results_out = nullptr) {
  const fs::path target = io::output_path(dir, "--out");
  io::check_replaceable(target, force);
  ProblemCache cache;
  std::vector<PreparedRun> runs;
  for (const auto& p : points) runs.push_back(prepare(resolve(config, p.overrides), &cache));

  const fs::path tmp = target.string() + ".partial";
  // What these runs are: every point's name and resolved config. A partial directory from an
  // interrupted sweep is resumed only if it was started for exactly these.
  std::string identity;
  for (std::size_t i = 0; i < runs.size(); ++i)
    identity += points[i].name + "\n" + runs[i].spec.resolved_toml + "\n";
  const fs::path identity_file = tmp / "points.txt";
  const Ranks& ranks = current_ranks();
  const bool lead = ranks.rank == 0;
  std::vector<RunResult> results(runs.size());
  SweepOutcome outcome;
  std::optional<io::Output> out;  // the first process holds the lock until the end
  on_first_process(ranks, [&] {
    out.emplace(target, force);
    std::error_code ec;
    bool resuming = false;
    if (!force && io::is_dln_dir(tmp)) {
      std::string previous;
      try {
        previous = io::read_file(identity_file.string());
      } catch (const InputError&) {  // no readable points list: start over
      }
      resuming = previous == identity;
    }
    if (!resuming) {
      io::make_staging_dir(tmp);
      io::write_file_atomic(identity_file, identity);
    } else {
      io::remove_temporaries_of(
          tmp, {"points.txt", "progress.json", "runs.csv", std::string(io::kMarker)});
    }
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const fs::path run_dir = tmp / points[i].name;
      if (!resuming) continue;
      if (auto r = read_result(run_dir)) {  // summary.json is written last, atomically
        results[i] = std::move(*r);
        ++outcome.resumed;
        if (io::is_dln_dir(run_dir) && io::foreign_in_run_dir(run_dir).empty()) {
          // A kill after its summary.json may have left what follows it undone.
          io::remove_run_temporaries(run_dir);
          io::remove_dln_file(run_dir, "checkpoint.npz");
          io::mark_dir(run_dir, "run");
        }
      } else if (fs::exists(fs::symlink_status(run_dir, ec)) &&
                 !has_checkpoint_of(run_dir, runs[i])) {
        restage_run_dir(run_dir);  // an unfinished run (or a torn file): redone
      }
    }
  });
  // The runs still to do, shared between the processes: every size-th one.
  std::vector<std::size_t> todo, others;
  for (std::size_t i = 0, k = 0; i < runs.size(); ++i) {
    if (fs::exists(tmp / points[i].name / "summary.json")) continue;
    (k++ % static_cast<std::size_t>(ranks.size) == static_cast<std::size_t>(ranks.rank) ? todo
                                                                                        : others)
        .push_back(i);
  }
  ranks.barrier();  // every process has its list before any run adds a summary.json
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto start = std::chrono::steady_clock::now();
  const int threads = std::clamp(jobs, 1, static_cast<int>(std::max<std::size_t>(todo.size(), 1)));
  // Progress: a line on stderr (in the process's mode) and DIR.partial/progress.json, kept
  // current (at most once a second) for those who watch a sweep from elsewhere; under MPI each
  // process counts its own share.
  ProgressLine line;
  std::mutex progress_mutex;
  std::size_t finished = 0, diverged = 0;
  const std::size_t before = runs.size() - todo.size() - others.size();
  auto last_json = start - std::chrono::hours(1);
  auto progress = [&](bool last) {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - start).count();
    const double rate = seconds > 0 ? static_cast<double>(finished) / seconds : 0.0;
    const std::size_t left = todo.size() - finished;
    const double eta = rate > 0 ? static_cast<double>(left) / rate : NAN;
    const std::size_t running = std::min<std::size_t>(static_cast<std::size_t>(threads), left);
    if (line.due() || (last && line.on()))
      line.show(fmt::format("dln: {}  runs {}/{}  {} running  {} diverged  {:.3g} runs/s  ETA {}",
                            target.filename().string(), before + finished, before + todo.size(),
                            running, diverged, rate, duration_text(eta)));
    if (last || std::chrono::duration<double>(now - last_json).count() >= 1.0) {
      nlohmann::ordered_json j;
      j["total"] = before + todo.size();
      j["done"] = before + finished;
      j["running"] = running;
      j["diverged"] = diverged;
      j["elapsed_seconds"] = seconds;
      j["runs_per_second"] = rate;
      j["eta_seconds"] = json_number(eta);
      j["unix_time"] =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      try {
        io::write_file_atomic(tmp / "progress.json", j.dump(2) + "\n",
                              io::Durability::kWithDirectory);
      } catch (const std::runtime_error&) {  // a full disk: the runs matter, this does not
      }
      last_json = now;
    }
  };
  if (lead) progress(false);
  auto worker = [&] {
    for (std::size_t k; (k = next++) < todo.size();) {
      const std::size_t i = todo[k];
      try {
        const fs::path run_dir = tmp / points[i].name;
        if (!has_checkpoint_of(run_dir, runs[i])) io::make_staging_dir(run_dir);  // else resumed
        results[i] = write_run(runs[i], run_dir.string());
        std::lock_guard lock(progress_mutex);
        ++finished;
        if (results[i].status == RunStatus::kDiverged) ++diverged;
        if (lead) progress(finished == todo.size());
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        next = todo.size();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  line.finish();
  if (error) std::rethrow_exception(error);  // the finished runs stay in DIR.partial
  // The other processes' runs, once every process is done.
  ranks.barrier();
  if (!lead) {
    ranks.barrier();  // the first process writes runs.csv and renames DIR.partial to DIR
    if (results_out) {
      for (std::size_t i = 0; i < runs.size(); ++i) {
        auto r = read_result(target / points[i].name);
        if (!r) throw std::runtime_error("cannot read the summary of " + points[i].name);
        results[i] = std::move(*r);
      }
      *results_out = results;
    }
    outcome.runs = runs.size();
    return outcome;
  }
  for (std::size_t i : others) {
    auto r = read_result(tmp / points[i].name);
    if (!r) throw std::runtime_error("another process left no summary for run " + points[i].name);
    results[i] = std::move(*r);
  }

  // runs.csv: labels, status and the final metrics (wall-clock columns left out, so that the
  // table does not depend on --jobs or the machine's load).
  std::vector<std::string> metric_columns;
  for (const auto& r : results)
    for (const auto& c : r.columns)
      if (c != "time" &&
          std::find(metric_columns.begin(), metric_columns.end(), c) == metric_columns.end())
        metric_columns.push_back(c);
  std::string csv = "run";
  for (const auto& c : label_columns) csv += "," + csv_field(c);
  csv += ",depth,status,steps";
  for (const auto& c : metric_columns) csv += "," + c;
  csv += "\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    csv += csv_field(points[i].name);
    for (const auto& label : points[i].labels) csv += "," + csv_field(label);
    csv +=
        fmt::format(",{},{},{}", arch_layers(runs[i].spec.model.arch, runs[i].spec.widths).size(),
                    status_name(results[i].status), results[i].steps);
    for (const auto& c : metric_columns) {
      const auto it = std::find(results[i].columns.begin(), results[i].columns.end(), c);
      csv += ",";
      if (it != results[i].columns.end())
        csv +=
            number(results[i].final_row[static_cast<std::size_t>(it - results[i].columns.begin())]);
    }
    csv += "\n";
    ++outcome.statuses[status_name(results[i].status)];
  }
  io::write_file_atomic(tmp / "runs.csv", csv);
  // The points list, written by this sweep above (or by the one it resumes), and the progress.
  io::remove_dln_file(tmp, identity_file.filename().string());
  io::remove_dln_file(tmp, "progress.json");
  io::mark_dir(tmp, "sweep");
  out->commit(tmp);
  out.reset();
  ranks.barrier();
  outcome.runs = runs.size();
  if (results_out) *results_out = results;
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return outcome;
}

SweepOutcome select_in(const ConfigFile& config, const std::vector<Point>& grid,
                       const std::vector<std::string>& columns, const fs::path& tmp, int jobs,
                       std::optional<io::Output>& out);

// Grid, then the best point of each group again with the [select.then] overrides, into
// DIR/grid and DIR/best (docs/config.md#select-grid-search-then-the-long-run).
SweepOutcome run_select(const ConfigFile& config, const std::vector<Point>& grid,
                        const std::vector<std::string>& columns, const std::string& dir, int jobs,
                        bool force) {
  const fs::path target = io::output_path(dir, "--out");
  io::check_replaceable(target, force);
  // One name for every process of a distributed sweep; the first sets it up.
  const fs::path tmp = target.string() + ".select";
  const Ranks& ranks = current_ranks();
  std::optional<io::Output> out;
  on_first_process(ranks, [&] {
    out.emplace(target, force);
    io::make_staging_dir(tmp);
  });
  try {
    return select_in(config, grid, columns, tmp, jobs, out);
  } catch (...) {
    if (ranks.rank == 0) io::remove_dln_dir(tmp);
    throw;
  }
}

SweepOutcome select_in(const ConfigFile& config, const std::vector<Point>& grid,
                       const std::vector<std::string>& columns, const fs::path& tmp, int jobs,
                       std::optional<io::Output>& out) {
  const Ranks& ranks = current_ranks();
  const auto& sel = config.select;
  // The grid's runs count a final loss above the initial one as diverged (stop.rise).
  std::vector<Point> grid_points = grid;
  ConfigValue on;
  on.value = true;
  on.file = config.path;
  for (auto& p : grid_points) p.overrides.emplace_back("stop.rise", on);
  std::vector<RunResult> results;
  SweepOutcome outcome =
      run_points(config, grid_points, columns, (tmp / "grid").string(), jobs, true, &results);

  // Each axis groups the points, is searched (over) or is aggregated (across). A candidate is
  // one group's values with one value of every searched axis; its score aggregates the metric
  // over its points (the across axes' values).
  enum class Role { kGroup, kOver, kAcross };
  std::vector<Role> role;
  for (const auto& c : columns) {
    const auto in = [&](const std::vector<std::string>& v) {
      return std::find(v.begin(), v.end(), c) != v.end();
    };
    role.push_back(in(sel.over) ? Role::kOver : in(sel.across) ? Role::kAcross : Role::kGroup);
  }
  struct Candidate {
    std::string group;
    std::vector<std::size_t> points;  // grid indices, in grid order
    std::vector<double> values;       // the metric of the points that did not diverge
    std::size_t diverged = 0;
    double score = std::numeric_limits<double>::infinity();
    std::size_t best = 0;  // the member with the lowest metric
    double best_value = 0.0;
  };
  std::vector<Candidate> candidates;
  std::map<std::string, std::size_t> by_key;
  bool metric_seen = false;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    std::string group, key;
    for (std::size_t a = 0; a < columns.size(); ++a) {
      if (role[a] == Role::kGroup) group += grid[i].labels[a] + "\x1f";
      if (role[a] != Role::kAcross) key += grid[i].labels[a] + "\x1f";
    }
    auto [it, fresh] = by_key.try_emplace(key, candidates.size());
    if (fresh) candidates.push_back({group, {}, {}, 0});
    Candidate& c = candidates[it->second];
    c.points.push_back(i);
    const auto& r = results[i];
    const auto col = std::find(r.columns.begin(), r.columns.end(), sel.metric);
    if (col != r.columns.end()) metric_seen = true;
    const double v = col == r.columns.end()
                         ? std::numeric_limits<double>::quiet_NaN()
                         : r.final_row[static_cast<std::size_t>(col - r.columns.begin())];
    if (r.status == RunStatus::kDiverged || !std::isfinite(v)) {
      ++c.diverged;
      continue;
    }
    if (c.values.empty() || v < c.best_value) {
      c.best = i;
      c.best_value = v;
    }
    c.values.push_back(v);
  }
  if (!metric_seen)
    throw InputError(config.path, sel.line, "select.metric",
                     "'" + sel.metric + "' is not a recorded column of the grid runs");
  // Scores: min over the points that did not diverge; mean and median only over candidates none
  // of whose points diverged (a rate at which one restart diverges is not chosen).
  for (auto& c : candidates) {
    if (c.values.empty() || (sel.aggregate != "min" && c.diverged > 0)) continue;
    std::vector<double> v = c.values;
    if (sel.aggregate == "min") {
      c.score = *std::min_element(v.begin(), v.end());
    } else if (sel.aggregate == "mean") {
      double sum = 0.0;
      for (double x : v) sum += x;
      c.score = sum / static_cast<double>(v.size());
    } else {
      std::sort(v.begin(), v.end());
      const std::size_t m = v.size() / 2;
      c.score = v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
    }
  }
  // The winner of each group: the lowest score; a tie goes to the candidate first in the grid's
  // order (axes sorted by key, values in the order given).
  std::map<std::string, std::size_t> winner;
  std::vector<std::string> order;
  for (std::size_t k = 0; k < candidates.size(); ++k) {
    const Candidate& c = candidates[k];
    if (!std::isfinite(c.score)) continue;
    auto [it, fresh] = winner.try_emplace(c.group, k);
    if (fresh)
      order.push_back(c.group);
    else if (c.score < candidates[it->second].score)
      it->second = k;
  }

  // A group without a scored candidate (every rate diverged) has no long run: say so.
  if (ranks.rank == 0 && progress_mode() != ProgressMode::kQuiet) {
    std::set<std::string> named;
    for (const auto& c : candidates) {
      if (winner.count(c.group) || !named.insert(c.group).second) continue;
      std::string values;
      for (std::size_t a = 0; a < columns.size(); ++a)
        if (role[a] == Role::kGroup)
          values +=
              (values.empty() ? "" : ", ") + columns[a] + " = " + grid[c.points.front()].labels[a];
      std::fprintf(stderr, "dln: select: no candidate of %s kept a finite score; no long run\n",
                   values.empty() ? "the grid" : values.c_str());
    }
  }
  // selection.csv: every candidate with its score and whether it won.
  {
    std::string csv;
    for (std::size_t a = 0; a < columns.size(); ++a)
      if (role[a] != Role::kAcross) csv += csv_field(columns[a]) + ",";
    csv += fmt::format("{}_{},runs,diverged,selected\n", sel.metric, sel.aggregate);
    for (std::size_t k = 0; k < candidates.size(); ++k) {
      const Candidate& c = candidates[k];
      const Point& p = grid[c.points.front()];
      for (std::size_t a = 0; a < columns.size(); ++a)
        if (role[a] != Role::kAcross) csv += csv_field(p.labels[a]) + ",";
      const auto w = winner.find(c.group);
      csv += fmt::format("{},{},{},{}\n", number(c.score), c.points.size(), c.diverged,
                         w != winner.end() && w->second == k ? 1 : 0);
    }
    if (ranks.rank == 0) io::write_file_atomic(tmp / "selection.csv", csv);
  }

  // The long phase: each group's winner (its best point's values, but for the across axes when
  // then_seeds re-draws the init), with [select.then], once per seed of then_seeds.
  const bool reseed = !sel.then_seeds.empty();
  std::vector<std::string> long_columns;
  for (std::size_t a = 0; a < columns.size(); ++a)
    if (!(reseed && role[a] == Role::kAcross)) long_columns.push_back(columns[a]);
  const bool seed_column = reseed && std::find(long_columns.begin(), long_columns.end(),
                                               "init.seed") == long_columns.end();
  if (seed_column) long_columns.push_back("init.seed");
  std::vector<Point> long_phase;
  const std::vector<std::int64_t> no_seed = {-1};
  for (const auto& group : order) {
    const Point& best = grid[candidates[winner[group]].best];
    for (std::int64_t seed : reseed ? sel.then_seeds : no_seed) {
      Point p;
      p.name = fmt::format("{:03}", long_phase.size());
      for (std::size_t a = 0; a < columns.size(); ++a) {
        if (reseed && role[a] == Role::kAcross) continue;
        p.labels.push_back(reseed && columns[a] == "init.seed" ? std::to_string(seed)
                                                               : best.labels[a]);
      }
      if (seed_column) p.labels.push_back(std::to_string(seed));
      for (const auto& o : best.overrides)
        if (!(reseed &&
              std::find(sel.across.begin(), sel.across.end(), o.first) != sel.across.end()))
          p.overrides.push_back(o);
      for (const auto& o : sel.then) p.overrides.push_back(o);
      if (reseed) {
        ConfigValue v;
        v.value = seed;
        v.file = config.path;
        v.line = sel.line;
        p.overrides.emplace_back("init.seed", v);
      }
      long_phase.push_back(std::move(p));
    }
  }
  const SweepOutcome second =
      run_points(config, long_phase, long_columns, (tmp / "best").string(), jobs, true);
  outcome.runs += second.runs;
  outcome.seconds += second.seconds;
  for (const auto& [s, n] : second.statuses) outcome.statuses[s] += n;
  if (ranks.rank == 0) {
    io::mark_dir(tmp, "select");
    out->commit(tmp);
    out.reset();
  }
  ranks.barrier();
  return outcome;
}

}  // namespace

void set_ranks(Ranks ranks) {
  ranks_storage() = std::move(ranks);
}

SweepOutcome run_sweep(const ConfigFile& config, const std::string& dir, int jobs, bool force) {
  check_overrides(config, true, false);
  if (!config.arms.empty())
    throw InputError(config.path, 0, "arms", "[[arms]] are run by 'dln run', not swept");
  // The number of points, checked before the product is expanded.
  std::uint64_t count = 1;
  for (const auto& [key, values] : config.sweep) {
    count = io::mul_sat(count, values.size());
    if (count > kMaxSweepPoints)
      throw InputError(config.path, values.front().line, "sweep." + key,
                       fmt::format("the sweep has more than {} points (the product of the lengths "
                                   "of its axes); split it into several sweeps",
                                   kMaxSweepPoints));
  }
  // Cartesian product, the first axis varying slowest.
  std::vector<Point> points(1);
  for (const auto& [key, values] : config.sweep) {
    std::vector<Point> next;
    for (const auto& p : points)
      for (const auto& v : values) {
        next.push_back(p);
        next.back().overrides.emplace_back(key, v);
        next.back().labels.push_back(cell_text(v));
      }
    points = std::move(next);
  }
  const int digits = static_cast<int>(std::to_string(points.size() - 1).size());
  for (std::size_t i = 0; i < points.size(); ++i)
    points[i].name = fmt::format("{:0{}}", i, std::max(digits, 3));
  std::vector<std::string> columns;
  for (const auto& [key, values] : config.sweep) columns.push_back(key);
  if (config.select.enabled) return run_select(config, points, columns, dir, jobs, force);
  return run_points(config, points, columns, dir, jobs, force);
}

SweepOutcome run_arms(const ConfigFile& config, const std::string& dir, int jobs, bool force) {
  check_overrides(config, false, true);
  std::vector<Point> points;
  for (const auto& arm : config.arms) points.push_back({arm.name, arm.overrides, {arm.name}});
  return run_points(config, points, {"arm"}, dir, jobs, force);
}

}  // namespace dln
