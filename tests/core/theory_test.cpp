// The end-to-end update, gradient flow and the Saxe initialisation against independent
// computations.
#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>

#include "dln/init/init.hpp"
#include "dln/optim/e2e.hpp"
#include "dln/run/trainer.hpp"
#include "support.hpp"

namespace dln {
namespace {

// A symmetric PSD matrix to a real power through its eigendecomposition, with 0^0 = 1 (the
// identity term) and eigenvalues below round-off treated as 0.
Eigen::MatrixXd psd_power(const Eigen::MatrixXd& a, double power) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(a);
  Eigen::VectorXd lambda = eig.eigenvalues();
  const double tol = 1e-12 * std::max(1.0, lambda.cwiseAbs().maxCoeff());
  for (Eigen::Index i = 0; i < lambda.size(); ++i)
    lambda(i) = power == 0 ? 1.0 : (lambda(i) <= tol ? 0.0 : std::pow(lambda(i), power));
  return eig.eigenvectors() * lambda.asDiagonal() * eig.eigenvectors().transpose();
}

// The sum of Steinitz Thm 2.2 term by term.
Eigen::MatrixXd e2e_sum(const Eigen::MatrixXd& W, const Eigen::MatrixXd& G, int N) {
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(W.rows(), W.cols());
  for (int i = 1; i <= N; ++i)
    out += psd_power(W * W.transpose(), double(N - i) / N) * G *
           psd_power(W.transpose() * W, double(i - 1) / N);
  return out;
}

TEST(EndToEnd, PreconditionerMatchesTheSumOfFractionalPowers) {
  Rng rng(1);
  struct Case {
    int k, d, rank;
  };
  // Square, wide, tall, and rank-deficient matrices.
  for (const Case c : {Case{3, 3, 3}, Case{2, 5, 2}, Case{6, 3, 3}, Case{4, 5, 2}, Case{5, 3, 1}}) {
    const Eigen::MatrixXd W = rng.normal_matrix(c.k, c.rank) * rng.normal_matrix(c.rank, c.d);
    const Eigen::MatrixXd G = rng.normal_matrix(c.k, c.d);
    for (int N : {1, 2, 3, 5}) {
      EndToEndPreconditioner p;
      p.resize(c.k, c.d, N);
      Eigen::MatrixXd out(c.k, c.d);
      p.apply(W, G, out);
      // 1e-9: the reference takes fractional powers of eigenvalues (squared singular values),
      // which loses about half the digits of the smallest nonzero ones.
      EXPECT_LT(test::relative_error(out, e2e_sum(W, G, N)), 1e-9)
          << c.k << "x" << c.d << " rank " << c.rank << " N " << N;
    }
  }
}

TEST(EndToEnd, ZeroMatrixKeepsOnlyTheIdentityTerms) {
  // W = 0: every power is 0 except the 0th, so P = G for N = 1 and 0 for N >= 3 except...
  // with 0^0 = 1 the i = N term is G (W^T W)^{(N-1)/N} = 0 and the i = 1 term
  // (W W^T)^{(N-1)/N} G = 0: for N >= 2 the update vanishes.
  const Eigen::MatrixXd W = Eigen::MatrixXd::Zero(3, 4);
  const Eigen::MatrixXd G = Rng(2).normal_matrix(3, 4);
  EndToEndPreconditioner p;
  Eigen::MatrixXd out(3, 4);
  p.resize(3, 4, 1);
  p.apply(W, G, out);
  EXPECT_EQ(out, G);
  p.resize(3, 4, 3);
  p.apply(W, G, out);
  EXPECT_EQ(out.norm(), 0.0);
}

TEST(Flow, LossIsNonIncreasingAndBalancednessIsConserved) {
  const auto data = test::random_data(5, 3, 40, 3);
  for (double p : {2.0, 4.0}) {
    const Problem problem(data, Loss(p, Reduction::kMean));
    LinearNet net = test::random_net({5, 4, 6, 3}, 2, 0.4);
    const LinearNet start = net;
    TrainSpec spec;
    spec.optimizer.kind = "flow";
    spec.optimizer.time = 2.0;
    spec.dt = 0.05;
    spec.probes = {"loss", "balance_drift"};
    struct Rows final : Recorder {
      void begin(const std::vector<std::string>&) override {}
      void record(long, std::span<const double> row) override {
        rows.emplace_back(row.begin(), row.end());
      }
      std::vector<std::vector<double>> rows;
    } rows;
    const RunResult r = train(problem, net, spec, &rows);
    ASSERT_EQ(rows.rows.size(), 41u);
    for (std::size_t i = 1; i < rows.rows.size(); ++i)
      EXPECT_LE(rows.rows[i][0], rows.rows[i - 1][0]) << "p=" << p << " t=" << i * 0.05;
    EXPECT_LT(r.final_loss, 0.9 * r.initial_loss);  // random targets: the loss has a floor
    for (int l = 0; l + 1 < net.depth(); ++l) {
      const Eigen::MatrixXd c0 = start.layers[l + 1].transpose() * start.layers[l + 1] -
                                 start.layers[l] * start.layers[l].transpose();
      // 1e-8 relative: the solver's tolerance is 1e-10 per step.
      EXPECT_LT(rows.rows.back()[1 + l], 1e-8 * c0.norm()) << "p=" << p << " pair " << l + 1;
    }
  }
}

TEST(Flow, EndToEndOdeIsTheLimitOfTheEndToEndUpdate) {
  // dW_e/dt = -P(W_e, grad) integrated by the solver, against the e2e update with a small rate
  // to the same time: they differ by O(eta), so halving eta halves the gap.
  const auto data = test::random_data(4, 2, 30, 6);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  const LinearNet deep = initialize({4, 5, 3, 2}, {.scheme = "balanced", .std = 0.5, .seed = 2});
  LinearNet start({4, 2});
  start.layers[0] = deep.end_to_end();
  TrainSpec flow;
  flow.optimizer.kind = "flow";
  flow.optimizer.dynamics = "e2e";
  flow.optimizer.depth = 3;
  flow.optimizer.time = 0.5;
  flow.dt = 0.5;
  flow.probes = {"loss"};
  LinearNet exact = start;
  train(problem, exact, flow, nullptr);
  std::vector<double> gaps;
  for (double eta : {2e-3, 1e-3}) {
    TrainSpec e2e;
    e2e.optimizer.kind = "e2e";
    e2e.optimizer.depth = 3;
    e2e.optimizer.lr = eta;
    e2e.optimizer.steps = std::lround(0.5 / eta);
    e2e.probes = {"loss"};
    LinearNet net = start;
    train(problem, net, e2e, nullptr);
    gaps.push_back((net.layers[0] - exact.layers[0]).norm());
  }
  // 1.6-2.4: first order in eta, with O(eta^2) corrections at these rates.
  EXPECT_GT(gaps[0] / gaps[1], 1.6);
  EXPECT_LT(gaps[0] / gaps[1], 2.4);
  EXPECT_LT(gaps[1], 1e-2 * exact.layers[0].norm());
}

TEST(Saxe, InitIsBalancedAndAlignedWithTheModes) {
  const auto data = test::random_data(6, 3, 50, 4);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  const LinearNet net = initialize({6, 5, 4, 3}, {.scheme = "saxe", .strength = 0.02, .seed = 1},
                                   &problem.sigma_yx());
  // W_e = strength * sum_i u_i v_i^T over the min-width modes.
  const Eigen::MatrixXd expected = 0.02 * problem.mode_u() * problem.mode_v().transpose();
  EXPECT_LT(test::relative_error(net.end_to_end(), expected), 1e-13);
  for (int l = 0; l + 1 < net.depth(); ++l) {
    const Eigen::MatrixXd c = net.layers[l + 1].transpose() * net.layers[l + 1] -
                              net.layers[l] * net.layers[l].transpose();
    EXPECT_LT(c.norm(), 1e-15);
  }
}

}  // namespace
}  // namespace dln
