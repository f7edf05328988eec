// Margin losses, the max-margin direction, the alignment probes and Ji & Telgarsky's step
// size, against finite differences, closed forms and Eigen's SVD.
#include <gtest/gtest.h>

#include <Eigen/SVD>
#include <cmath>

#include "dln/core/max_margin.hpp"
#include "dln/data/synthetic.hpp"
#include "dln/init/init.hpp"
#include "dln/optim/schedule.hpp"
#include "dln/probe/probe.hpp"
#include "dln/run/trainer.hpp"
#include "support.hpp"

namespace dln {
namespace {

std::shared_ptr<const Dataset> labelled(int d, int n, std::uint64_t seed) {
  auto data = std::make_shared<Dataset>(*test::random_data(d, 1, n, seed));
  data->Y = data->Y.unaryExpr([](double v) { return v >= 0 ? 1.0 : -1.0; });
  return data;
}

TEST(MarginLoss, GradientMatchesFiniteDifferences) {
  const auto data = labelled(4, 12, 3);
  for (auto kind : {LossKind::kLogistic, LossKind::kExponential}) {
    for (auto reduction : {Reduction::kMean, Reduction::kSum}) {
      const Problem problem(data, Loss::margin(kind, reduction));
      LinearNet net = test::random_net({4, 3, 1}, 5);
      StepCache cache;
      cache.bind(problem, net);
      const auto grads = cache.layer_gradients();
      for (int l = 0; l < net.depth(); ++l) {
        const Eigen::MatrixXd fd = test::finite_difference(net.layers[l], [&] {
          StepCache fresh;
          fresh.bind(problem, net);
          return fresh.loss();
        });
        // Central differences with h = 1e-6 on O(1) smooth functions: error ~ 1e-9.
        EXPECT_LT(test::relative_error(grads[l], fd), 1e-7);
      }
    }
  }
}

TEST(MarginLoss, LogisticIsStableAtLargeMargins) {
  EXPECT_EQ(logistic_loss(1000.0), 0.0 + std::log1p(std::exp(-1000.0)));
  EXPECT_NEAR(logistic_loss(-1000.0), 1000.0, 1e-12);
  EXPECT_NEAR(logistic_loss(0.0), std::log(2.0), 1e-16);
  EXPECT_NEAR(logistic_derivative(-1000.0), -1.0, 1e-16);
  EXPECT_EQ(logistic_derivative(1000.0), -0.0 * 1.0 + logistic_derivative(1000.0));
  EXPECT_TRUE(std::isfinite(logistic_derivative(1000.0)));
  EXPECT_NEAR(logistic_derivative(0.0), -0.5, 1e-16);
  // Through the loss: margins +-1000 on two samples.
  const Loss loss = Loss::margin(LossKind::kLogistic, Reduction::kSum);
  Eigen::MatrixXd Y(1, 2), R(1, 2), G(1, 2);
  Y << 1.0, -1.0;
  R << 999.0, 1001.0;  // y^ = 1000 for both: margins +1000 and -1000
  const double value = loss.value_and_gradient(R, Y, G);
  EXPECT_NEAR(value, 1000.0, 1e-9);
  EXPECT_TRUE(G.allFinite());
  EXPECT_NEAR(G(0, 1), 1.0, 1e-15);  // d/dy^ log(1 + e^{y^}) -> 1
}

TEST(MaxMargin, ClosedFormSets) {
  // Symmetric set: the separator is the vertical axis, u = (1, 0), gamma = 1.
  Eigen::MatrixXd X(2, 4);
  X << 1, 1, -1, -1, 0.5, -0.5, 0.5, -0.5;
  Eigen::RowVectorXd y(4);
  y << 1, 1, -1, -1;
  MaxMargin m = max_margin(X, y);
  ASSERT_TRUE(m.separable);
  EXPECT_NEAR(m.direction(0), 1.0, 1e-10);
  EXPECT_NEAR(m.direction(1), 0.0, 1e-10);
  EXPECT_NEAR(m.margin, 1.0, 1e-10);
  // Two points: y_i x_i = (2, 1) and (1, -1); the max-margin direction is the minimum-norm
  // point of their segment, (1.2, -0.6): u = (2, -1) / sqrt(5), gamma = 3 / sqrt(5).
  Eigen::MatrixXd X2(2, 2);
  X2 << 2, -1, 1, 1;
  Eigen::RowVectorXd y2(2);
  y2 << 1, -1;
  m = max_margin(X2, y2);
  EXPECT_NEAR(m.direction(0), 2 / std::sqrt(5.0), 1e-10);
  EXPECT_NEAR(m.direction(1), -1 / std::sqrt(5.0), 1e-10);
  EXPECT_NEAR(m.margin, 3 / std::sqrt(5.0), 1e-10);
  // Not separable: x and -x with the same label.
  Eigen::MatrixXd X3(1, 2);
  X3 << 1, -1;
  Eigen::RowVectorXd y3(2);
  y3 << 1, 1;
  EXPECT_FALSE(max_margin(X3, y3).separable);
}

TEST(MaxMargin, SeparableGeneratorKeepsItsMargin) {
  const Dataset d = separable(50, 5, 0.4, 9);
  const MaxMargin m = max_margin(d.X, d.Y.row(0));
  EXPECT_TRUE(m.separable);
  EXPECT_GE(m.margin, 0.4 - 1e-9);  // the generator's direction already attains 0.4
  const Eigen::RowVectorXd margins = m.direction.transpose() * d.X;
  EXPECT_NEAR((margins.array() * d.Y.row(0).array()).minCoeff(), m.margin, 1e-12);
}

std::map<std::string, double> measure(const Problem& problem, const LinearNet& net,
                                      const std::vector<std::string>& probes) {
  StepCache cache;
  cache.bind(problem, net);
  ProbeSet set(probes, cache);
  std::vector<double> row(set.columns().size());
  set.measure({}, cache, row);
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < row.size(); ++i) out[set.columns()[i]] = row[i];
  return out;
}

TEST(AlignmentProbes, MatchDirectComputations) {
  const Dataset d = separable(10, 3, 0.5, 4);
  const auto data = std::make_shared<const Dataset>(d);
  const Problem problem(data, Loss::margin(LossKind::kLogistic, Reduction::kMean));
  const LinearNet net = test::random_net({3, 5, 2, 1}, 6);
  const auto got = measure(problem, net, {"margin", "cos_maxmargin", "adj_align"});
  const Eigen::MatrixXd we = net.end_to_end();
  const Eigen::RowVectorXd margins = (we * d.X).array() * d.Y.array();
  double norms = 1.0;
  for (const auto& W : net.layers) norms *= W.norm();
  EXPECT_NEAR(got.at("margin"), margins.minCoeff() / norms, 1e-14);
  const Eigen::VectorXd u = max_margin(d.X, d.Y.row(0)).direction;
  EXPECT_NEAR(got.at("cos_maxmargin"), we.row(0).dot(u.transpose()) / we.norm(), 1e-14);
  for (int l = 1; l < net.depth(); ++l) {
    Eigen::JacobiSVD<Eigen::MatrixXd> a(net.layers[l - 1], Eigen::ComputeFullU);
    Eigen::JacobiSVD<Eigen::MatrixXd> b(net.layers[l], Eigen::ComputeFullV);
    const double want = std::abs(b.matrixV().col(0).dot(a.matrixU().col(0)));
    EXPECT_NEAR(got.at("adj_align." + std::to_string(l)), want, 1e-10) << l;
  }
}

TEST(JiTelgarskySchedule, RateFollowsTheRadiusOfTheWeights) {
  // Inputs inside the unit ball, mean logistic loss: beta(R) = 2 L^2 R^{2L-2} (1/4 + 1).
  auto data = std::make_shared<Dataset>(separable(5, 2, 0.2, 2));
  data->X /= 2.0 * data->X.colwise().norm().maxCoeff();
  const Problem problem(data, Loss::margin(LossKind::kLogistic, Reduction::kMean));
  LinearNet net = test::random_net({2, 3, 1}, 1);
  StepCache cache;
  cache.bind(problem, net);
  Schedule schedule({.kind = "ji_telgarsky"}, 1.0);
  schedule.reset(cache);
  const double r0 = std::max(net.layers[0].norm(), net.layers[1].norm()) + 1.0;
  EXPECT_NEAR(schedule.next(0, cache), 1.0 / (2 * 4 * std::pow(r0, 2) * 1.25), 1e-15);
  // Weights leaving B(R - 1) move the radius to hold them.
  net.layers[1] *= 10.0;
  cache.invalidate();
  const double r1 = net.layers[1].norm() + 1.0;
  EXPECT_NEAR(schedule.next(1, cache), 1.0 / (2 * 4 * std::pow(r1, 2) * 1.25), 1e-15);
  // The cap.
  Schedule capped({.kind = "ji_telgarsky"}, 1e-9);
  capped.reset(cache);
  EXPECT_EQ(capped.next(0, cache), 1e-9);
  EXPECT_FALSE(schedule_unavailable({.kind = "ji_telgarsky"}, problem).size());
  const Problem l2(data, Loss(2.0, Reduction::kMean));
  EXPECT_FALSE(schedule_unavailable({.kind = "ji_telgarsky"}, l2).empty());
}

}  // namespace
}  // namespace dln
