// Nothing allocates inside the step loop: every malloc of the process is counted while the
// loop runs (this executable replaces malloc; it is not built under the sanitizers, which
// replace it themselves).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>

#include "dln/data/synthetic.hpp"
#include "dln/init/init.hpp"
#include "dln/probe/probe.hpp"
#include "dln/run/csv_recorder.hpp"
#include "dln/run/trainer.hpp"
#include "support.hpp"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* malloc(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) ++g_allocations;
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) ++g_allocations;
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) ++g_allocations;
  return __libc_realloc(p, n);
}
}

namespace dln {
namespace {

// Counts allocations from begin() (after every buffer is sized) to the end of train().
class CountingRecorder final : public Recorder {
 public:
  explicit CountingRecorder(Recorder& inner) : inner_(inner) {}
  void begin(const std::vector<std::string>& columns) override {
    inner_.begin(columns);
    g_allocations = 0;
    g_counting = true;
  }
  void record(long step, std::span<const double> row) override { inner_.record(step, row); }

 private:
  Recorder& inner_;
};

long allocations_in_training(const Problem& problem, const std::vector<int>& widths,
                             const std::string& optimizer, const std::string& only_probe = "",
                             bool round_robin = false, const std::string& schedule = "constant",
                             int threads = 1, long batch = 0) {
  LinearNet net =
      initialize(widths, {.scheme = optimizer == "agd" ? "agd" : "glorot_normal", .seed = 1});
  TrainSpec spec;
  spec.optimizer.kind = optimizer;
  spec.optimizer.lr = 1e-4;
  spec.optimizer.steps = 30;
  spec.optimizer.depth = 3;
  spec.optimizer.round_robin = round_robin;
  spec.optimizer.schedule.kind = schedule;
  spec.optimizer.schedule.steps = spec.optimizer.steps;
  spec.optimizer.time = 0.3;
  spec.dt = 0.03;
  spec.every = 3;
  spec.threads = threads;
  spec.optimizer.batch_size = batch;
  spec.optimizer.weight_decay = batch > 0 ? 0.01 : 0.0;
  for (const auto& e : probe_registry())
    if (probe_unavailable(e.name, problem, optimizer).empty() &&
        (only_probe.empty() || e.name == only_probe))
      spec.probes.push_back(e.name);
  const auto path = std::filesystem::temp_directory_path() / "dln_no_alloc_metrics.csv";
  CsvRecorder csv(path.string());
  CountingRecorder recorder(csv);
  train(problem, net, spec, &recorder);
  g_counting = false;
  csv.close();
  std::filesystem::remove(path);
  return g_allocations.load();
}

TEST(NoAllocation, GuardCatchesAnAllocation) {
  g_allocations = 0;
  g_counting = true;
  Eigen::MatrixXd m = Eigen::MatrixXd::Random(20, 20);
  Eigen::MatrixXd product = m * m;  // allocates its result
  g_counting = false;
  EXPECT_GT(g_allocations.load(), 0);
  EXPECT_NE(product(0, 0), 1234.5);
}

TEST(NoAllocation, StepLoopWithEveryProbeAndOptimizerDoesNotAllocate) {
  // Basu-sized l2 (stats path), the same on the data path, and a larger l4 problem whose
  // products go through Eigen's blocked GEMM.
  const auto small = test::random_data(10, 3, 1200, 1);
  const auto large = test::random_data(128, 1, 2000, 2);
  const Problem stats(small, Loss(2.0, Reduction::kMean), GradientPath::kStats);
  const Problem data(small, Loss(2.0, Reduction::kMean), GradientPath::kData);
  const Problem lp4(large, Loss(4.0, Reduction::kMean), GradientPath::kData);
  for (const auto& probe : probe_registry()) {
    EXPECT_EQ(allocations_in_training(stats, {10, 8, 6, 4, 3}, "gd", probe.name), 0) << probe.name;
    if (probe_unavailable(probe.name, lp4).empty()) {
      EXPECT_EQ(allocations_in_training(lp4, {128, 100, 100, 1}, "gd", probe.name), 0)
          << probe.name << " lp4";
    }
  }
  EXPECT_EQ(allocations_in_training(stats, {10, 3}, "e2e"), 0) << "e2e";
  EXPECT_EQ(allocations_in_training(stats, {10, 8, 6, 4, 3}, "flow"), 0) << "flow";
  // Scalar output, a few samples and a held-out split: the kernel probes and AGD.
  auto scalar = std::make_shared<Dataset>(*test::random_data(6, 1, 40, 3));
  scalar->test_X = test::random_data(6, 1, 10, 4)->X;
  scalar->test_Y = test::random_data(6, 1, 10, 5)->Y;
  for (auto path : {GradientPath::kStats, GradientPath::kData}) {
    const Problem p(scalar, Loss(2.0, Reduction::kMean), path);
    for (const char* probe :
         {"yhat_dot_err", "err_eig", "kernel_rho", "kernel_eig", "theta_e", "test_loss"}) {
      const char* where = path == GradientPath::kStats ? " stats" : " data";
      EXPECT_EQ(allocations_in_training(p, {6, 4, 3, 1}, "gd", probe), 0) << probe << where;
      EXPECT_EQ(allocations_in_training(p, {6, 1, 1, 1}, "agd", probe), 0)
          << probe << " agd" << where;
    }
    EXPECT_EQ(allocations_in_training(p, {6, 4, 3, 1}, "gd", "loss", true), 0) << "round robin";
  }
  // Separable labels, logistic loss: the alignment probes and Ji & Telgarsky's step size.
  const auto sep = std::make_shared<const Dataset>(separable(30, 4, 0.3, 1));
  const Problem logistic(sep, Loss::margin(LossKind::kLogistic, Reduction::kMean));
  for (const char* probe : {"margin", "cos_maxmargin", "adj_align", "error", "loglog_slope"})
    EXPECT_EQ(allocations_in_training(logistic, {4, 3, 3, 1}, "gd", probe), 0) << probe;
  EXPECT_EQ(allocations_in_training(logistic, {4, 3, 1}, "gd", "loss", false, "ji_telgarsky"), 0)
      << "ji_telgarsky";
  // Data large enough to be cut into slices, on two threads (the pool exists before begin()).
  const auto wide = test::random_data(64, 4, 20000, 6);
  const Problem sliced(wide, Loss(4.0, Reduction::kMean), GradientPath::kData);
  EXPECT_EQ(allocations_in_training(sliced, {64, 16, 4}, "gd", "", false, "constant", 2), 0)
      << "sliced, 2 threads";
  const auto wide1 = test::random_data(128, 1, 20000, 7);
  const Problem sliced1(wide1, Loss(2.0, Reduction::kMean), GradientPath::kData);
  EXPECT_EQ(allocations_in_training(sliced1, {128, 1, 1, 1}, "agd", "", false, "constant", 2), 0)
      << "sliced agd, 2 threads";
  // Mini-batches (a short last batch of each epoch) with weight decay, every probe at records.
  for (const char* opt : {"sgd", "momentum", "nesterov", "adagrad", "adam"}) {
    EXPECT_EQ(allocations_in_training(stats, {10, 8, 6, 4, 3}, opt, "", false, "cosine", 1, 70), 0)
        << opt << " mini-batches";
  }
  for (const char* opt : {"gd", "momentum", "nesterov", "adagrad", "adam"}) {
    EXPECT_EQ(allocations_in_training(stats, {10, 8, 6, 4, 3}, opt), 0) << opt << " stats";
    EXPECT_EQ(allocations_in_training(data, {10, 8, 6, 4, 3}, opt), 0) << opt << " data";
    EXPECT_EQ(allocations_in_training(lp4, {128, 100, 100, 1}, opt), 0) << opt << " lp4";
  }
}

}  // namespace
}  // namespace dln
