// The step loop on the workloads of docs/performance.md (bench/configs/*.toml), through the same
// config -> PreparedRun path as `dln run`. Each case runs whole steps (gradient, update, loss at
// the new weights, and the recorded probes where the workload records) and reports us_per_step.
// bench/run.py runs these next to the PyTorch peers in bench/peers/ and writes the table.
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

#include "dln/core/data_pass.hpp"
#include "dln/core/hessian.hpp"
#include "dln/optim/batches.hpp"
#include "dln/optim/optimizer.hpp"
#include "dln/probe/probe.hpp"
#include "dln/run/config.hpp"
#include "dln/run/experiment.hpp"

namespace {

// One prepared run per config and override set, kept for the whole process (data built once).
dln::PreparedRun& prepared(const std::string& name, const std::vector<std::string>& overrides) {
  static std::map<std::string, dln::PreparedRun> runs;
  std::string key = name;
  for (const auto& o : overrides) key += " " + o;
  auto it = runs.find(key);
  if (it == runs.end()) {
    const auto config =
        dln::load_config(std::string(DLN_BENCH_CONFIGS) + "/" + name + ".toml", overrides);
    it = runs.emplace(key, dln::prepare(dln::resolve(config))).first;
  }
  return it->second;
}

void run_steps(benchmark::State& state, const std::string& name, bool record,
               const std::vector<std::string>& overrides = {}) {
  const dln::PreparedRun& run = prepared(name, overrides);
  const dln::Problem& problem = *run.problem;
  dln::LinearNet net = run.net;  // every repetition from the config's initial weights
  const auto& spec = run.spec.train;
  dln::StepCache cache;
  cache.bind(problem, net);
  dln::WorkerPool pool(static_cast<int>(state.range(0)));
  cache.set_pool(&pool);
  dln::ProbeSet probes(record ? spec.probes : std::vector<std::string>{}, cache,
                       spec.probe_options);
  std::vector<double> row(probes.columns().size());
  auto optimizer = dln::make_optimizer(spec.optimizer);
  optimizer->reset(net, problem);
  dln::StepInfo info;
  for (auto _ : state) {
    optimizer->step(cache, net, spec.optimizer.lr);
    benchmark::DoNotOptimize(cache.loss());
    if (record) probes.measure(info, cache, row);
  }
  state.counters["us_per_step"] = benchmark::Counter(
      static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
  state.counters["threads"] = static_cast<double>(pool.threads());
}

// W1 (a): the step alone; (b): loss, fro and balance recorded every step.
void BM_W1_Step(benchmark::State& s) {
  run_steps(s, "w1_small", false);
}
void BM_W1_StepRecording(benchmark::State& s) {
  run_steps(s, "w1_small", true);
}
// W1 recording the sharpness every step (Lanczos warm-started from the last step's vector), and
// one Hessian-vector product at fixed weights: their ratio is a record's cost in products.
void BM_W1_StepSharpness(benchmark::State& state) {
  const dln::PreparedRun& run = prepared("w1_small", {});
  dln::LinearNet net = run.net;
  const auto& spec = run.spec.train;
  dln::StepCache cache;
  cache.bind(*run.problem, net);
  dln::ProbeSet probes({"sharpness"}, cache, spec.probe_options);
  std::vector<double> row(1);
  auto optimizer = dln::make_optimizer(spec.optimizer);
  optimizer->reset(net, *run.problem);
  dln::StepInfo info;
  double products = 0.0;
  for (auto _ : state) {
    optimizer->step(cache, net, spec.optimizer.lr);
    benchmark::DoNotOptimize(cache.loss());
    probes.measure(info, cache, row);
    products += cache.hessian_products();
  }
  state.counters["us_per_step"] = benchmark::Counter(
      static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
  state.counters["products_per_record"] = products / static_cast<double>(state.iterations());
}
void BM_W1_HessianProduct(benchmark::State& state) {
  const dln::PreparedRun& run = prepared("w1_small", {});
  dln::LinearNet net = run.net;
  dln::StepCache cache;
  cache.bind(*run.problem, net);
  cache.enable_hessian({});
  dln::Hessian& h = cache.hessian();
  Eigen::VectorXd v = Eigen::VectorXd::Ones(h.parameters()), out(h.parameters());
  for (auto _ : state) {
    h.apply(cache, v.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["us_per_product"] = benchmark::Counter(
      static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}
// W1 through the residual (the 1200 samples touched twice per step) instead of the statistics.
void BM_W1_StepDataPath(benchmark::State& s) {
  run_steps(s, "w1_small", false, {"loss.path=data"});
}
// W2: l4 on n = 13,910, d = 128.
void BM_W2_Lp4(benchmark::State& s) {
  run_steps(s, "w2_lp4", false);
}
// W4: AGD at depth 8 and shallow GD on the same data; sufficient statistics (l2's default) and
// through the data.
void BM_W4_Agd(benchmark::State& s) {
  run_steps(s, "w4_agd", false);
}
void BM_W4_ShallowGd(benchmark::State& s) {
  run_steps(s, "w4_shallow", false);
}
void BM_W4_AgdDataPath(benchmark::State& s) {
  run_steps(s, "w4_agd", false, {"loss.path=data"});
}
void BM_W4_ShallowGdDataPath(benchmark::State& s) {
  run_steps(s, "w4_shallow", false, {"loss.path=data"});
}
// W5: MNIST onto one-hot targets, l4, 784 -> 256 -> 10.
void BM_W5_OnehotLp4(benchmark::State& s) {
  run_steps(s, "w5_onehot_lp4", false);
}
// W5 by SGD: a step on a mini-batch of range(0) samples from the per-epoch permutations, on
// range(1) threads (the gather, the batch's pass, and the weights' products a step needs
// whatever the batch).
void BM_W5_Sgd(benchmark::State& state) {
  const dln::PreparedRun& run = prepared("w5_onehot_lp4", {"optimizer.kind=\"sgd\""});
  const dln::Problem& problem = *run.problem;
  dln::LinearNet net = run.net;
  const auto& spec = run.spec.train;
  const long batch = state.range(0);
  dln::StepCache cache;
  cache.bind(problem, net);
  dln::WorkerPool pool(static_cast<int>(state.range(1)));
  cache.set_pool(&pool);
  cache.bind_batches(batch);
  dln::MiniBatches batches;
  batches.reset(problem.samples(), batch, false, 1);
  std::vector<std::int64_t> index(static_cast<std::size_t>(batch));
  auto optimizer = dln::make_optimizer(spec.optimizer);
  optimizer->reset(net, problem);
  long t = 0;
  for (auto _ : state) {
    cache.use_batch(index.data(), batches.select(t++, index.data()));
    benchmark::DoNotOptimize(cache.loss());
    optimizer->step(cache, net, spec.optimizer.lr);
  }
  state.counters["us_per_step"] = benchmark::Counter(
      static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}

}  // namespace

// The argument is the number of threads of the run's passes over the data.
BENCHMARK(BM_W1_Step)->Arg(1)->UseRealTime();
BENCHMARK(BM_W1_StepRecording)->Arg(1)->UseRealTime();
BENCHMARK(BM_W1_StepDataPath)->Arg(1)->UseRealTime();
BENCHMARK(BM_W1_StepSharpness)->UseRealTime();
BENCHMARK(BM_W1_HessianProduct)->UseRealTime();
BENCHMARK(BM_W2_Lp4)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_W4_Agd)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_W4_ShallowGd)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_W4_AgdDataPath)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W4_ShallowGdDataPath)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W5_OnehotLp4)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W5_Sgd)
    ->Args({16, 2})
    ->Args({128, 1})
    ->Args({128, 2})
    ->Args({1024, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
