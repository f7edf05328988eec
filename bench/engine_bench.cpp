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

void run_steps(benchmark::State& state, const dln::Problem& problem, const std::vector<int>& widths,
               double lr, std::vector<std::string> probes) {
  dln::LinearNet net = dln::initialize(widths, {.scheme = "glorot_normal", .seed = 1});
  dln::StepCache cache;
  cache.bind(problem, net);
  dln::ProbeSet probe_set(probes, cache);
  std::vector<double> row(probe_set.columns().size());
  auto gd = dln::make_optimizer({.kind = "gd", .lr = lr});
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
  const dln::Problem problem(basu_mixture(), dln::LpLoss(2.0, dln::Reduction::kMean));
  run_steps(state, problem, {10, 8, 6, 4, 3}, 1e-3, {});
}
void BM_SmallL2StatsWithProbes(benchmark::State& state) {
  const dln::Problem problem(basu_mixture(), dln::LpLoss(2.0, dln::Reduction::kMean));
  run_steps(state, problem, {10, 8, 6, 4, 3}, 1e-3, {"loss", "fro", "balance"});
}
// The same through the residual (the data touched twice per step).
void BM_SmallL2Data(benchmark::State& state) {
  const dln::Problem problem(basu_mixture(), dln::LpLoss(2.0, dln::Reduction::kMean),
                             dln::GradientPath::kData);
  run_steps(state, problem, {10, 8, 6, 4, 3}, 1e-3, {});
}
// W2: n = 13910, d = 128, scalar target, 128-100-100-1, l4, GD.
void BM_Lp4(benchmark::State& state) {
  const dln::Problem problem(lp4_data(), dln::LpLoss(4.0, dln::Reduction::kMean));
  run_steps(state, problem, {128, 100, 100, 1}, 1e-6, {});
}

BENCHMARK(BM_SmallL2Stats);
BENCHMARK(BM_SmallL2StatsWithProbes);
BENCHMARK(BM_SmallL2Data);
BENCHMARK(BM_Lp4)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
