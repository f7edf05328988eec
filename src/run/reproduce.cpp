#include "dln/run/reproduce.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "dln/error.hpp"
#include "dln/io/output.hpp"
#include "dln/run/config.hpp"
#include "dln/run/experiment.hpp"

namespace dln {

namespace fs = std::filesystem;

namespace {

// One line of runs.csv split into fields (fields may be quoted, with "" for a quote).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      out.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// The values the [select] of an earlier config chose (its single best point, DIR/best/runs.csv)
// for the axes it searched, as "key=value" overrides.
std::vector<std::string> selected_values(const ConfigFile& earlier, const std::string& dir) {
  const fs::path table = fs::path(dir) / "best" / "runs.csv";
  std::ifstream in(table);
  std::string header, row, extra;
  if (!std::getline(in, header) || !std::getline(in, row))
    throw InputError(table.string(), 0, "", "holds no selected run");
  if (std::getline(in, extra) && !extra.empty())
    throw InputError(table.string(), 0, "", "holds more than one selected run");
  const auto names = csv_fields(header), values = csv_fields(row);
  std::vector<std::string> out;
  for (const auto& key : earlier.select.over) {
    const auto at = std::find(names.begin(), names.end(), key);
    if (at == names.end() || static_cast<std::size_t>(at - names.begin()) >= values.size())
      throw InputError(table.string(), 0, key, "has no column for this key");
    out.push_back(key + "=" + cell_toml(key, values[static_cast<std::size_t>(at - names.begin())]));
  }
  return out;
}

}  // namespace

const std::vector<Reproduction>& reproductions() {
  static const std::vector<Reproduction> list = {
      {"basu-fig1",
       "Basu et al. Fig. 1: layer norms of 10-6-3 and 10-8-6-4-3 nets on the 3-Gaussian mixture "
       "grow together within their initial gap, ||W_e|| approaches ||Sigma_yx||, and the growth "
       "bound (17) for L = 2, 3, 4",
       {"papers/basu-fig1/three_layer.toml", "papers/basu-fig1/five_layer.toml"}},
      {"basu-fig2",
       "Basu et al. Fig. 2 and Section 3: a 7-layer ReLU net (784-100x6-10) on the 10,000 MNIST "
       "digits: layer norms, the growth mismatch of adjacent layers (Conjecture 4) and the "
       "activation-pattern agreement of same-label samples (SGD, batch 100, 60 epochs)",
       {"papers/basu-fig2/relu7.toml"}},
      {"steinitz-fig1",
       "Steinitz Fig. 1: linear nets of depth 1-4 on real l2 regression data (diabetes, MNIST "
       "onto one-hot), learning-rate grid then long training: dynamics independent of "
       "intermediate width, and the ranking of depths",
       {"papers/steinitz-fig1/diabetes.toml", "papers/steinitz-fig1/mnist.toml"}},
      {"steinitz-gas",
       "Steinitz's own protocol on his own data (UCI gas-sensor drift, Ethanol): raw features, "
       "N(0, 0.001^2) init, 1-, 2- and 3-layer nets of widths 1 and 2, each rate of his grid "
       "1e-12 ... 3e-6 scored by 10 restarts x 200 epochs, then 30,000 epochs at the selected "
       "rate from fresh inits: the ranking of depths and width independence",
       {"papers/steinitz-gas/ethanol.toml"}},
      {"agd-fig1",
       "AGD paper Fig. 1: Shamir's plateau and Saxe's sigmoid against AGD; instance-wise "
       "speed-up over shallow GD at three rates; depth 2, 4, 8; two-layer GD from standard inits "
       "at tuned rates",
       {"papers/agd-fig1/pitfalls.toml", "papers/agd-fig1/instance.toml",
        "papers/agd-fig1/depth.toml", "papers/agd-fig1/inits.toml"}},
      {"agd-fig2",
       "AGD paper Fig. 2: the path of the effective vector (curved for AGD) and one acceleration "
       "phase of <Y^, E> per eigenvalue",
       {"papers/agd-fig2/paths.toml"}},
      {"agd-fig3",
       "AGD paper Fig. 3: two-layer GD on unwhitened data turns unstable once the kernel "
       "spectrum leaves the unit interval; AGD stays smooth",
       {"papers/agd-fig3/unstable.toml"}},
      {"agd-fig4",
       "AGD paper Fig. 4: shallow GD at its tuned rate against AGD at depth 2, 4, 8 at that rate, "
       "train and test loss, on MNIST 3-vs-8 and a Fashion-MNIST pair (for CIFAR-10)",
       {"papers/agd-fig4/mnist_gd.toml", "papers/agd-fig4/mnist_agd.toml",
        "papers/agd-fig4/fashion_gd.toml", "papers/agd-fig4/fashion_agd.toml"},
       {{"papers/agd-fig4/mnist_agd.toml", "papers/agd-fig4/mnist_gd.toml"},
        {"papers/agd-fig4/fashion_agd.toml", "papers/agd-fig4/fashion_gd.toml"}}},
      {"hou-lp-rate",
       "Hou et al.: l_4 and l_6 regression on the toy problem converge as t^{-1/(p-2)} for the "
       "shallow and the scalar-depth model; depth changes the constant",
       {"papers/hou-lp-rate/p4.toml", "papers/hou-lp-rate/p6.toml"}},
      {"hou-mnist",
       "Hou et al. Section 3 after Arora et al.: a LeNet-5 on MNIST with L2, normal against "
       "overparameterised (every weight a product of two, the regulariser on the product), the "
       "loss with and without the regulariser, and both trained on the cross-entropy alone "
       "(4,000 digits, SGD batch 50, 2000 steps)",
       {"papers/hou-mnist/lenet.toml"}},
      {"eos-linear",
       "The edge of stability (Cohen et al.) in linear nets of depth 2, 3 and 4 on the diabetes "
       "data: at three step sizes each GD drives the sharpness up to 2/eta and holds it there "
       "while the loss falls non-monotonically; a small step and a balanced start for contrast",
       {"papers/eos-linear/diabetes.toml"}},
      {"agd-sharpness",
       "AGD paper Section 4.4 through the Hessian: the balanced minimum of the unwhitened toy is "
       "sharper than 2/eta (35.4 > 20); GD at eta = 0.1 ends at a minimum of sharpness <= 2/eta, "
       "AGD at a far sharper one",
       {"papers/agd-sharpness/unstable.toml"}},
      {"ji-telgarsky-fig1",
       "Ji & Telgarsky Fig. 1: on separable data, logistic loss, a 4-layer and a 1-layer linear "
       "net both converge to the max-margin separator; the deep net's layers tend to rank one "
       "and align",
       {"papers/ji-telgarsky-fig1/separable.toml"}},
      {"arora-lp",
       "Arora et al.'s l_p experiment on real regression data (diabetes, MNIST onto one-hot): "
       "depth 1, 2, 3 against momentum, Adagrad and Adam on the shallow model, l2 and l4, each "
       "at its selected rate; depth helps l4 and not l2",
       {"papers/arora-lp/diabetes_depth.toml", "papers/arora-lp/diabetes_opt.toml",
        "papers/arora-lp/mnist_depth.toml", "papers/arora-lp/mnist_opt.toml"}},
  };
  return list;
}

// Runs every config of a reproduction into DIR/<config name> (written beside DIR, then renamed
// into place), then its figures and claims.
std::string run_reproduction(const std::string& name, const std::string& out_arg, bool force,
                             int jobs) {
  const auto& list = reproductions();
  const auto it =
      std::find_if(list.begin(), list.end(), [&](const auto& r) { return r.name == name; });
  if (it == list.end()) {
    std::string names;
    for (const auto& r : list) names += (names.empty() ? "" : ", ") + r.name;
    throw InputError("", 0, "", "no reproduction named '" + name + "' (known: " + names + ")");
  }
  const std::string out_dir =
      io::output_path(out_arg.empty() ? (fs::path("runs") / name).string() : out_arg,
                      out_arg.empty() ? "name" : "--out")
          .string();
  check_output_dir(out_dir, force);
  const char* env_dir = std::getenv("DLN_EXPERIMENTS_DIR");
  const fs::path experiments = env_dir ? env_dir : DLN_EXPERIMENTS_DIR;
  std::vector<std::pair<std::string, ConfigFile>> configs;
  for (const auto& c : it->configs)
    configs.emplace_back(fs::path(c).stem().string(), load_config((experiments / c).string()));
  io::Output out(out_dir, force);
  const fs::path stage = out.fresh_staging();
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string& stem = configs[i].first;
    ConfigFile config = configs[i].second;
    const std::string dir = (stage / stem).string();
    for (const auto& [target, source] : it->best_from) {
      if (target != it->configs[i]) continue;
      const auto from = std::find(it->configs.begin(), it->configs.end(), source);
      const auto k = static_cast<std::size_t>(from - it->configs.begin());
      const auto overrides =
          selected_values(configs[k].second, (stage / configs[k].first).string());
      for (const auto& o : overrides)
        fmt::print("dln: {}: {} (selected in {})\n", stem, o, configs[k].first);
      config = load_config((experiments / target).string(), overrides);
    }
    if (!config.arms.empty()) {
      run_arms(config, dir, jobs, false);
    } else if (!config.sweep.empty()) {
      run_sweep(config, dir, jobs, false);
    } else {
      auto prepared = prepare(resolve(config));
      run_atomically(prepared, dir, false);
    }
    fmt::print("dln: ran {}\n", (fs::path(out_dir) / stem).string());
  }
  io::mark_dir(stage, "reproduction");
  out.commit(stage);
  return out_dir;
}

}  // namespace dln
