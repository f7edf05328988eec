// Training dynamics: tiny losses stay accurate, balancedness drifts as eta^2 per step, and
// the trainer's stop rules and record cadence.
#include <gtest/gtest.h>

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "dln/core/step_cache.hpp"
#include "dln/init/init.hpp"
#include "dln/run/trainer.hpp"
#include "support.hpp"

namespace dln {
namespace {

// Realisable l2 data: Y = M X exactly, so the loss can go to zero.
std::shared_ptr<const Dataset> realisable_data(int d, int k, int n, std::uint64_t seed) {
  Rng rng(seed);
  auto data = std::make_shared<Dataset>();
  data->X = rng.normal_matrix(d, n);
  data->Y = rng.normal_matrix(k, d) * data->X;
  return data;
}

double residual_loss(const LinearNet& net, const Dataset& data) {
  return (net.end_to_end() * data.X - data.Y).squaredNorm() / (2.0 * data.samples());
}

TEST(TinyLoss, StatsPathLossAgreesWithResidualsBelow1e20) {
  const auto data = realisable_data(5, 3, 200, 7);
  const Problem problem(data, Loss(2.0, Reduction::kMean), GradientPath::kStats);
  LinearNet net = initialize({5, 6, 4, 3}, InitSpec{.scheme = "balanced", .std = 1.0, .seed = 3});
  TrainSpec spec;
  spec.optimizer.lr = 0.05;
  spec.optimizer.steps = 20000;
  spec.probes = {"loss"};
  spec.stop.loss = 1e-24;
  const RunResult r = train(problem, net, spec, nullptr);
  const double residual = residual_loss(net, *data);
  ASSERT_LT(r.final_loss, 1e-20);
  ASSERT_LT(residual, 1e-20);
  // 1e-3: the residual computation itself carries eps * |Y| ~ 1e-16 noise per entry against
  // residuals of ~1e-11, a relative error of ~1e-5 in each squared term.
  EXPECT_NEAR(r.final_loss, residual, 1e-3 * residual);

  // The textbook expansion from the same statistics cancels catastrophically here.
  const Eigen::MatrixXd W = net.end_to_end();
  const double n = static_cast<double>(data->samples());
  const double naive =
      0.5 * ((W * problem.sigma_xx() * W.transpose()).trace() -
             2.0 * (W * problem.sigma_yx().transpose()).trace() + data->Y.squaredNorm() / n);
  EXPECT_GT(std::abs(naive - residual), 100.0 * std::abs(r.final_loss - residual));
}

TEST(Balancedness, OneStepChangeScalesAsEtaSquared) {
  // C_l = W_{l+1}^T W_{l+1} - W_l W_l^T changes by exactly eta^2 (G_{l+1}^T G_{l+1} - G_l G_l^T)
  // under one GD step; fit the order from eta spanning two decades.
  const auto data = test::random_data(5, 3, 30, 2);
  for (double p : {2.0, 4.0}) {
    const Problem problem(data, Loss(p, Reduction::kMean), GradientPath::kData);
    const LinearNet start = test::random_net({5, 4, 6, 3}, 8);
    auto balance = [](const LinearNet& net, int l) {
      return Eigen::MatrixXd(net.layers[l + 1].transpose() * net.layers[l + 1] -
                             net.layers[l] * net.layers[l].transpose());
    };
    for (int l = 0; l + 1 < start.depth(); ++l) {
      std::vector<double> log_eta, log_change;
      for (double eta : {1e-2, 3e-3, 1e-3, 3e-4, 1e-4}) {
        LinearNet net = start;
        StepCache cache;
        cache.bind(problem, net);
        const auto& g = cache.layer_gradients();
        for (int j = 0; j < net.depth(); ++j) net.layers[j] -= eta * g[j];
        log_eta.push_back(std::log(eta));
        log_change.push_back(std::log((balance(net, l) - balance(start, l)).norm()));
      }
      // Least-squares slope of log change against log eta.
      const double mx = std::accumulate(log_eta.begin(), log_eta.end(), 0.0) / log_eta.size();
      const double my = std::accumulate(log_change.begin(), log_change.end(), 0.0) / log_eta.size();
      double sxy = 0, sxx = 0;
      for (std::size_t i = 0; i < log_eta.size(); ++i) {
        sxy += (log_eta[i] - mx) * (log_change[i] - my);
        sxx += (log_eta[i] - mx) * (log_eta[i] - mx);
      }
      EXPECT_GE(sxy / sxx, 1.9) << "p=" << p << " pair " << l + 1;
      EXPECT_LE(sxy / sxx, 2.1) << "p=" << p << " pair " << l + 1;
    }
  }
}

class RowCounter final : public Recorder {
 public:
  void begin(const std::vector<std::string>& columns) override { columns_ = columns; }
  void record(long step, std::span<const double> row) override {
    steps.push_back(step);
    last.assign(row.begin(), row.end());
  }
  std::vector<long> steps;
  std::vector<double> last;
  std::vector<std::string> columns_;
};

TEST(Trainer, RecordsInitialStateEveryKStepsAndTheLastStep) {
  const auto data = test::random_data(3, 2, 20, 1);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  LinearNet net = test::random_net({3, 4, 2}, 1, 0.3);
  TrainSpec spec;
  spec.optimizer.lr = 0.01;
  spec.optimizer.steps = 23;
  spec.every = 5;
  spec.probes = {"loss", "fro"};
  RowCounter rows;
  const RunResult r = train(problem, net, spec, &rows);
  EXPECT_EQ(r.status, RunStatus::kCompleted);
  EXPECT_EQ(rows.steps, (std::vector<long>{0, 5, 10, 15, 20, 23}));
  EXPECT_EQ(rows.columns_, (std::vector<std::string>{"loss", "fro.1", "fro.2"}));
  EXPECT_DOUBLE_EQ(rows.last[0], r.final_loss);
}

TEST(Trainer, LogSpacedRecordsAreGeometricDeduplicatedAndEndAtTheLastStep) {
  // 20 a decade over 10^4 steps: 10^(j/20) rounded; the first rounded values repeat (1, 1, 1, 2,
  // 2, ...) and are kept once.
  const auto at = log_record_steps(10000, 20);
  EXPECT_EQ(at.front(), 0);
  EXPECT_EQ(at[1], 1);
  EXPECT_EQ(at.back(), 10000);
  EXPECT_TRUE(std::is_sorted(at.begin(), at.end()));
  EXPECT_EQ(std::adjacent_find(at.begin(), at.end()), at.end());
  // Every decade [10^m, 10^(m+1)) above the first holds the 20 points round(10^(j/20)).
  for (long lo : {100L, 1000L}) {
    const auto n =
        std::count_if(at.begin(), at.end(), [&](long k) { return k >= lo && k < 10 * lo; });
    EXPECT_EQ(n, 20) << lo;
  }
  // Consecutive ratios approach 10^(1/20) once rounding no longer matters.
  const auto i = std::lower_bound(at.begin(), at.end(), 1000L) - at.begin();
  EXPECT_NEAR(static_cast<double>(at[i + 1]) / at[i], std::pow(10.0, 1.0 / 20), 2e-3);
  EXPECT_EQ(log_record_steps(1, 20), (std::vector<long>{0, 1}));
  EXPECT_EQ(log_record_steps(0, 20), (std::vector<long>{0}));

  const auto data = test::random_data(3, 2, 20, 1);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  LinearNet net = test::random_net({3, 4, 2}, 1, 0.3);
  TrainSpec spec;
  spec.optimizer.lr = 0.01;
  spec.optimizer.steps = 1000;
  spec.record_steps = log_record_steps(1000, 5);
  spec.probes = {"loss"};
  RowCounter rows;
  train(problem, net, spec, &rows);
  EXPECT_EQ(rows.steps, spec.record_steps);
  EXPECT_EQ(rows.steps, (std::vector<long>{0, 1, 2, 3, 4, 6, 10, 16, 25, 40, 63, 100, 158, 251, 398,
                                           631, 1000}));
}

TEST(Trainer, DivergingRunStopsWithStatusDiverged) {
  const auto data = test::random_data(3, 2, 20, 1);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  LinearNet net = test::random_net({3, 4, 2}, 1, 0.3);
  TrainSpec spec;
  spec.optimizer.lr = 50.0;
  spec.optimizer.steps = 1000;
  spec.every = 100;
  spec.probes = {"loss"};
  RowCounter rows;
  const RunResult r = train(problem, net, spec, &rows);
  EXPECT_EQ(r.status, RunStatus::kDiverged);
  EXPECT_LT(r.steps, 1000);
  EXPECT_EQ(rows.steps.back(), r.steps);  // the stopping step is recorded
  EXPECT_TRUE(!std::isfinite(r.final_loss) || r.final_loss > 1e12 * r.initial_loss);
}

TEST(Trainer, ConvergedRunStopsBelowTheTargetLoss) {
  const auto data = realisable_data(3, 2, 50, 4);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  LinearNet net = test::random_net({3, 2}, 1, 0.3);
  TrainSpec spec;
  spec.optimizer.lr = 0.1;
  spec.optimizer.steps = 100000;
  spec.probes = {"loss"};
  spec.stop.loss = 1e-8;
  const RunResult r = train(problem, net, spec, nullptr);
  EXPECT_EQ(r.status, RunStatus::kConverged);
  EXPECT_LT(r.final_loss, 1e-8);
  EXPECT_LT(r.steps, 100000);
}

TEST(Optimizer, MomentumMatchesItsRecurrenceOnAQuadratic) {
  // Depth 1, l2, sum reduction, X = I: L(W) = 1/2 ||W - Y||^2, gradient W - Y. Heavy ball
  // v <- mu v + g, W <- W - lr v, and Nesterov W <- W - lr (g + mu v), computed by hand.
  auto data = std::make_shared<Dataset>();
  data->X = Eigen::MatrixXd::Identity(2, 2);
  data->Y = (Eigen::MatrixXd(2, 2) << 1, 2, 3, 4).finished();
  const Problem problem(data, Loss(2.0, Reduction::kSum), GradientPath::kData);
  for (const char* kind : {"momentum", "nesterov"}) {
    LinearNet net({2, 2});
    TrainSpec spec;
    spec.optimizer.kind = kind;
    spec.optimizer.lr = 0.1;
    spec.optimizer.momentum = 0.8;
    spec.optimizer.steps = 7;
    spec.probes = {"loss"};
    train(problem, net, spec, nullptr);
    Eigen::MatrixXd W = Eigen::MatrixXd::Zero(2, 2), v = W;
    for (int t = 0; t < 7; ++t) {
      const Eigen::MatrixXd g = W - data->Y;
      v = 0.8 * v + g;
      W -= 0.1 * (std::string(kind) == "nesterov" ? Eigen::MatrixXd(g + 0.8 * v) : v);
    }
    // 1e-14: the same arithmetic in the same order, up to Eigen's evaluation order.
    EXPECT_LT(test::relative_error(net.layers[0], W), 1e-14) << kind;
  }
}

}  // namespace
}  // namespace dln
