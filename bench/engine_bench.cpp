// Microbenchmarks of the step loop on the workloads of docs/performance.md. Each runs whole
// GD steps (gradient, update, loss at the new weights) through the public engine API.
#include <benchmark/benchmark.h>

#include "dln/data/synthetic.hpp"
#include "dln/init/init.hpp"
#include "dln/optim/optimizer.hpp"
#include "dln/probe/probe.hpp"
#include "dln/rng.hpp"

namespace {

std::shared_ptr<const dln::Dataset> basu_mixture() {
  static const auto data = std::make_shared<const dln::Dataset>(dln::gaussian_mixture({}));
  return data;
}

std::shared_ptr<const dln::Dataset> lp4_data() {
  static const auto data = [] {
    dln::Rng rng(1);
    auto d = std::make_shared<dln::Dataset>();
    d->X = rng.normal_matrix(128, 13910);
    d->Y = rng.normal_matrix(1, 13910);
    return std::shared_ptr<const dln::Dataset>(d);
  }();
  return data;
}

// Scalar regression at the size of the AGD paper's MNIST 3-vs-8 set: d = 784, n = 11,982,
// pixel-like inputs in [0, 1] and labels -1/+1.
std::shared_ptr<const dln::Dataset> agd_data() {
  static const auto data = [] {
    dln::Rng rng(2);
    auto d = std::make_shared<dln::Dataset>();
    d->X.resize(784, 11982);
    for (Eigen::Index j = 0; j < d->X.cols(); ++j)
      for (Eigen::Index i = 0; i < d->X.rows(); ++i) d->X(i, j) = rng.uniform();
    d->Y.resize(1, 11982);
    for (Eigen::Index j = 0; j < d->Y.cols(); ++j) d->Y(0, j) = rng.uniform() < 0.5 ? -1.0 : 1.0;
    return std::shared_ptr<const dln::Dataset>(d);
  }();
  return data;
}

void run_steps(benchmark::State& state, const dln::Problem& problem, const std::vector<int>& widths,
               double lr, std::vector<std::string> probes, const std::string& kind = "gd") {
  dln::LinearNet net =
      dln::initialize(widths, {.scheme = kind == "agd" ? "agd" : "glorot_normal", .seed = 1});
  dln::StepCache cache;
  cache.bind(problem, net);
  dln::ProbeSet probe_set(probes, cache);
  std::vector<double> row(probe_set.columns().size());
  auto gd = dln::make_optimizer({.kind = kind, .lr = lr});
  gd->reset(net, problem);
  dln::StepInfo info;
  for (auto _ : state) {
    gd->step(cache, net, lr);
    benchmark::DoNotOptimize(cache.loss());
    if (!probes.empty()) probe_set.measure(info, cache, row);
  }
  state.counters["us_per_step"] = benchmark::Counter(
      static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}

// W1: Basu's mixture, 10-8-6-4-3, l2 (sufficient statistics), GD.
void BM_SmallL2Stats(benchmark::State& state) {
  const dln::Problem problem(basu_mixture(), dln::Loss(2.0, dln::Reduction::kMean));
  run_steps(state, problem, {10, 8, 6, 4, 3}, 1e-3, {});
}
void BM_SmallL2StatsWithProbes(benchmark::State& state) {
  const dln::Problem problem(basu_mixture(), dln::Loss(2.0, dln::Reduction::kMean));
  run_steps(state, problem, {10, 8, 6, 4, 3}, 1e-3, {"loss", "fro", "balance"});
}
// The same through the residual (the data touched twice per step).
void BM_SmallL2Data(benchmark::State& state) {
  const dln::Problem problem(basu_mixture(), dln::Loss(2.0, dln::Reduction::kMean),
                             dln::GradientPath::kData);
  run_steps(state, problem, {10, 8, 6, 4, 3}, 1e-3, {});
}
// W2: n = 13910, d = 128, scalar target, 128-100-100-1, l4, GD.
void BM_Lp4(benchmark::State& state) {
  const dln::Problem problem(lp4_data(), dln::Loss(4.0, dln::Reduction::kMean));
  run_steps(state, problem, {128, 100, 100, 1}, 1e-6, {});
}

// W4: AGD at depth 8 against shallow GD on the same d = 784, n = 11,982 data, on the
// sufficient statistics (l2's default) and through the data.
void agd_vs_gd(benchmark::State& state, const std::string& kind, int depth,
               dln::GradientPath path) {
  static const dln::Problem stats(agd_data(), dln::Loss(2.0, dln::Reduction::kMean),
                                  dln::GradientPath::kStats);
  static const dln::Problem data(agd_data(), dln::Loss(2.0, dln::Reduction::kMean),
                                 dln::GradientPath::kData);
  std::vector<int> widths = {784};
  for (int l = 0; l < depth; ++l) widths.push_back(1);
  run_steps(state, path == dln::GradientPath::kStats ? stats : data, widths, 1e-3, {}, kind);
}
void BM_AgdDepth8Stats(benchmark::State& s) {
  agd_vs_gd(s, "agd", 8, dln::GradientPath::kStats);
}
void BM_ShallowGdStats(benchmark::State& s) {
  agd_vs_gd(s, "gd", 1, dln::GradientPath::kStats);
}
void BM_AgdDepth8Data(benchmark::State& s) {
  agd_vs_gd(s, "agd", 8, dln::GradientPath::kData);
}
void BM_ShallowGdData(benchmark::State& s) {
  agd_vs_gd(s, "gd", 1, dln::GradientPath::kData);
}

BENCHMARK(BM_SmallL2Stats);
BENCHMARK(BM_SmallL2StatsWithProbes);
BENCHMARK(BM_SmallL2Data);
BENCHMARK(BM_Lp4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AgdDepth8Stats)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ShallowGdStats)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AgdDepth8Data)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ShallowGdData)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
