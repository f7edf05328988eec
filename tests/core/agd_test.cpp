// Aligned Gradient Descent, round-robin GD and the kernel probes, against the AGD paper's
// equations and against quantities computed here independently (explicit Jacobians, the
// eigen-decomposition of X^T X).
#include "dln/optim/agd.hpp"

#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>
#include <cmath>

#include "dln/data/synthetic.hpp"
#include "dln/init/init.hpp"
#include "dln/probe/probe.hpp"
#include "support.hpp"

namespace dln {
namespace {

// Y^ and E = Y - Y^ (row vectors) of a scalar-output net, layer by layer.
Eigen::RowVectorXd predictions(const LinearNet& net, const Dataset& data) {
  Eigen::MatrixXd h = data.X;
  for (const auto& W : net.layers) h = W * h;
  return h.row(0);
}

// Theorem 1 of the AGD paper, Equations (4) and (6), at every sub-step:
//   E_{t+1/L} = (I - eta/n X^T X) E_t,  E_{t+l/L} = (I - 1/(2n) Y^ Y^T) E_{t+(l-1)/L}.
void check_equations(std::shared_ptr<const Dataset> data, int depth, GradientPath path, double eta,
                     int steps) {
  const Problem problem(data, Loss(2.0, Reduction::kMean), path);
  std::vector<int> widths = {static_cast<int>(data->dim())};
  for (int l = 1; l <= depth; ++l) widths.push_back(1);
  LinearNet net = initialize(widths, {.scheme = "agd"});
  StepCache cache;
  cache.bind(problem, net);
  AlignedGd agd;
  agd.reset(net, problem);
  const double n = static_cast<double>(data->samples());
  const Eigen::MatrixXd XtX = data->X.transpose() * data->X;
  const Eigen::RowVectorXd Y = data->Y.row(0);
  Eigen::RowVectorXd before, yhat_before;
  double worst = 0.0;
  int checked = 0;
  agd.on_substep = [&](int sub, const LinearNet& now) {
    const Eigen::RowVectorXd yhat = predictions(now, *data);
    const Eigen::RowVectorXd e = Y - yhat;
    Eigen::RowVectorXd want;
    if (sub == 1) {
      want = before - (eta / n) * (XtX * before.transpose()).transpose();
    } else {
      want = before - (yhat_before.dot(before) / (2 * n)) * yhat_before;
    }
    worst = std::max(worst, (e - want).norm() / std::max(1.0, before.norm()));
    before = e;
    yhat_before = yhat;
    ++checked;
  };
  for (int t = 0; t < steps; ++t) {
    yhat_before = predictions(net, *data);
    before = Y - yhat_before;
    agd.step(cache, net, eta);
  }
  EXPECT_EQ(checked, steps * depth);
  // Each sub-step is a handful of O(1) operations on O(1) quantities: round-off is a few
  // ulps of |E| per step, far below 1e-12.
  EXPECT_LT(worst, 1e-12) << "depth " << depth;
}

TEST(Agd, EquationsFourAndSixHoldAtEverySubStep) {
  const auto toy = std::make_shared<const Dataset>(toy_diagonal({1.0, 0.01}, {1.0, 1.0}));
  for (int depth : {1, 2, 4, 8}) {
    check_equations(toy, depth, GradientPath::kStats, 0.1, 200);
    check_equations(toy, depth, GradientPath::kData, 2.0 / 1.01, 200);
  }
  // Random data, under- and over-parameterised, labels in [-1, 1].
  for (auto [d, n] : {std::pair{4, 9}, {9, 4}}) {
    auto data = std::make_shared<Dataset>(*test::random_data(d, 1, n, 7));
    data->X /= 3.0;
    data->Y = data->Y.array().tanh().matrix();
    const Problem probe(data, Loss(2.0, Reduction::kMean));
    const double lambda_max = (data->X * data->X.transpose() / n)
                                  .selfadjointView<Eigen::Lower>()
                                  .eigenvalues()
                                  .maxCoeff();
    for (int depth : {2, 3, 5})
      for (auto path : {GradientPath::kStats, GradientPath::kData})
        check_equations(data, depth, path, 1.0 / lambda_max, 100);
  }
}

TEST(Agd, StatsAndDataPathsAgreeAndTheLossIsReported) {
  auto data = std::make_shared<Dataset>(*test::random_data(6, 1, 20, 3));
  data->X /= 2.0;
  data->Y = data->Y.array().tanh().matrix();
  for (int depth : {2, 4}) {
    std::vector<double> losses[2];
    LinearNet nets[2];
    for (int i = 0; i < 2; ++i) {
      const Problem problem(data, Loss(2.0, Reduction::kMean),
                            i == 0 ? GradientPath::kStats : GradientPath::kData);
      std::vector<int> widths = {6};
      for (int l = 1; l <= depth; ++l) widths.push_back(1);
      nets[i] = initialize(widths, {.scheme = "agd"});
      StepCache cache;
      cache.bind(problem, nets[i]);
      AlignedGd agd;
      agd.reset(nets[i], problem);
      for (int t = 0; t < 50; ++t) {
        agd.step(cache, nets[i], 0.3);
        losses[i].push_back(cache.loss());
        // The loss the step reports equals the loss written out.
        EXPECT_NEAR(cache.loss(), test::reference_loss(nets[i], *data, Loss(2.0, Reduction::kMean)),
                    1e-13 * std::max(1.0, cache.loss()));
      }
    }
    for (int l = 0; l < depth; ++l)
      EXPECT_LT(test::relative_error(nets[0].layers[l], nets[1].layers[l]), 1e-11);
    // AGD never increases the loss on the same problem (Theorem 1, (7)-(8)).
    for (std::size_t t = 1; t < losses[0].size(); ++t) EXPECT_LE(losses[0][t], losses[0][t - 1]);
  }
}

TEST(Agd, RefusesNetsThatAreNotWidthOneChains) {
  const auto data = test::random_data(3, 1, 10, 1);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  EXPECT_FALSE(agd_unavailable({3, 2, 1}, problem).empty());
  EXPECT_TRUE(agd_unavailable({3, 1, 1, 1}, problem).empty());
  const Problem l4(data, Loss(4.0, Reduction::kMean));
  EXPECT_FALSE(agd_unavailable({3, 1, 1}, l4).empty());
  const Problem sum(data, Loss(2.0, Reduction::kSum));
  EXPECT_FALSE(agd_unavailable({3, 1, 1}, sum).empty());
}

TEST(RoundRobin, EachLayerStepsFromTheWeightsThePreviousLeft) {
  const auto data = test::random_data(4, 2, 15, 5);
  const Loss loss(2.0, Reduction::kMean);
  const Problem problem(data, loss);
  LinearNet net = test::random_net({4, 3, 5, 2}, 9);
  LinearNet expected = net;
  const double lr = 0.05;
  for (int l = 0; l < expected.depth(); ++l)
    expected.layers[l] -= lr * test::reference_gradients(expected, *data, loss)[l];
  StepCache cache;
  cache.bind(problem, net);
  OptimizerSpec spec;
  spec.round_robin = true;
  auto gd = make_optimizer(spec);
  gd->reset(net, problem);
  gd->step(cache, net, lr);
  for (int l = 0; l < net.depth(); ++l)
    EXPECT_LT(test::relative_error(net.layers[l], expected.layers[l]), 1e-13);
  // ... which differs from the simultaneous step.
  LinearNet simultaneous = test::random_net({4, 3, 5, 2}, 9);
  const auto g = test::reference_gradients(simultaneous, *data, loss);
  for (int l = 0; l < simultaneous.depth(); ++l) simultaneous.layers[l] -= lr * g[l];
  EXPECT_GT(test::relative_error(net.layers[2], simultaneous.layers[2]), 1e-6);
}

// The probes of one recorded row, by name.
std::map<std::string, double> measure(const Problem& problem, LinearNet& net,
                                      const std::vector<std::string>& probes, double lr,
                                      const std::string& optimizer = "gd") {
  StepCache cache;
  cache.bind(problem, net);
  ProbeOptions options;
  options.optimizer = optimizer;
  options.eigs = 3;
  ProbeSet set(probes, cache, options);
  std::vector<double> row(set.columns().size());
  StepInfo info;
  info.lr = lr;
  set.measure(info, cache, row);
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < row.size(); ++i) out[set.columns()[i]] = row[i];
  return out;
}

// K^(l)_{(a,i),(b,j)} = <d y^_{ai} / d W_l, d y^_{bj} / d W_l> from the Jacobian of the
// predictions by central differences (exact for a function linear in W_l, up to round-off).
Eigen::MatrixXd explicit_kernel(LinearNet net, const Dataset& data, int l) {
  Eigen::MatrixXd& W = net.layers[l - 1];
  const Eigen::Index outputs = data.Y.size();
  Eigen::MatrixXd J(outputs, W.size());
  for (Eigen::Index p = 0; p < W.size(); ++p) {
    const double w = W.data()[p];
    W.data()[p] = w + 1.0;
    const Eigen::MatrixXd up = net.predict(data.X);
    W.data()[p] = w - 1.0;
    const Eigen::MatrixXd down = net.predict(data.X);
    W.data()[p] = w;
    const Eigen::MatrixXd diff = (up - down) / 2.0;
    J.col(p) = Eigen::Map<const Eigen::VectorXd>(diff.data(), outputs);
  }
  return J * J.transpose();
}

TEST(KernelProbes, SpectraMatchExplicitJacobianKernels) {
  for (int k : {1, 2}) {
    const auto data = test::random_data(3, k, 6, 11 + k);
    for (auto path : {GradientPath::kStats, GradientPath::kData}) {
      const Problem problem(data, Loss(2.0, Reduction::kMean), path);
      LinearNet net = test::random_net({3, 4, 2, k}, 4);
      const double lr = 0.3, c = 1.0 / 6.0;
      std::vector<std::string> probes = {"kernel_rho"};
      if (k == 1) probes.push_back("kernel_eig");
      const auto got = measure(problem, net, probes, lr);
      for (int l = 1; l <= 3; ++l) {
        const Eigen::MatrixXd K = explicit_kernel(net, *data, l);
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(
            Eigen::MatrixXd::Identity(K.rows(), K.cols()) - lr * c * K);
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> keig(K);
        double rho = 0.0;
        for (Eigen::Index i = 0; i < K.rows(); ++i)
          if (keig.eigenvalues()(i) > 1e-9 * keig.eigenvalues().maxCoeff())
            rho = std::max(rho, std::abs(1.0 - lr * c * keig.eigenvalues()(i)));
        // Unit-step central differences of a linear function: exact up to round-off.
        EXPECT_NEAR(got.at("kernel_rho." + std::to_string(l)), rho, 1e-10) << "k " << k;
        if (k == 1) {
          for (Eigen::Index i = 0; i < K.rows(); ++i)
            EXPECT_NEAR(got.at("kernel_eig." + std::to_string(l) + "." + std::to_string(i + 1)),
                        eig.eigenvalues()(i), 1e-10);
        }
      }
    }
  }
}

TEST(KernelProbes, AgdRatesGiveThePapersKernels) {
  // Under AGD, layer 1 steps with eta / a^2 and K^(1) = a^2 X^T X, so its spectrum is that of
  // I - eta/n X^T X whatever a is; a scalar layer's is I - Y^ Y^T / (2n).
  const auto data = std::make_shared<const Dataset>(toy_diagonal({1.0, 4e-4}, {1.0, 1.0}));
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  LinearNet net({2, 1, 1});
  net.layers[0] << 0.3, 2.0;
  net.layers[1](0, 0) = 5.0;
  const auto got = measure(problem, net, {"kernel_eig", "kernel_rho"}, 0.1, "agd");
  EXPECT_NEAR(got.at("kernel_eig.1.1"), 1 - 0.1 * 1.0, 1e-14);
  EXPECT_NEAR(got.at("kernel_eig.1.2"), 1 - 0.1 * 4e-4, 1e-14);
  const Eigen::RowVectorXd yhat = predictions(net, *data);
  EXPECT_NEAR(got.at("kernel_eig.2.1"), 1 - yhat.squaredNorm() / 4.0, 1e-13);
  EXPECT_NEAR(got.at("kernel_eig.2.2"), 1.0, 1e-14);
  EXPECT_NEAR(got.at("kernel_rho.2"), std::abs(1 - yhat.squaredNorm() / 4.0), 1e-13);
  // Under GD the same weights give layer 1 the spectrum of I - eta theta^2/n X^T X.
  const auto gd = measure(problem, net, {"kernel_eig"}, 0.1, "gd");
  EXPECT_NEAR(gd.at("kernel_eig.1.1"), 1 - 0.1 * 25.0, 1e-13);
}

TEST(KernelProbes, ErrorAlignmentAndEffectiveVector) {
  const auto base = test::random_data(4, 1, 7, 21);
  auto data = std::make_shared<Dataset>(*base);
  data->test_X = test::random_data(4, 1, 5, 22)->X;
  data->test_Y = test::random_data(4, 1, 5, 23)->Y;
  for (auto path : {GradientPath::kStats, GradientPath::kData}) {
    const Problem problem(data, Loss(2.0, Reduction::kMean), path);
    LinearNet net = test::random_net({4, 3, 1}, 8);
    const auto got =
        measure(problem, net, {"yhat_dot_err", "err_eig", "theta_e", "test_loss"}, 0.1);
    const Eigen::RowVectorXd yhat = predictions(net, *data);
    const Eigen::RowVectorXd e = data->Y.row(0) - yhat;
    EXPECT_NEAR(got.at("yhat_dot_err"), yhat.dot(e), 1e-12);
    // err_eig.i = <u_i, E> for the eigenvectors of X^T X (7 x 7, rank 4), largest first; the
    // sign of u_i is a convention, so compare magnitudes.
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(data->X.transpose() * data->X);
    for (int i = 0; i < 3; ++i) {
      const double want = eig.eigenvectors().col(6 - i).dot(e.transpose());
      EXPECT_NEAR(std::abs(got.at("err_eig." + std::to_string(i + 1))), std::abs(want), 1e-11);
    }
    const Eigen::MatrixXd we = net.end_to_end();
    for (int i = 0; i < 4; ++i)
      EXPECT_DOUBLE_EQ(got.at("theta_e." + std::to_string(i + 1)), we(0, i));
    const double test_loss = (we * data->test_X - data->test_Y).squaredNorm() / (2.0 * 5.0);
    EXPECT_NEAR(got.at("test_loss"), test_loss, 1e-14 * std::max(1.0, test_loss));
  }
}

TEST(ToyData, DiagonalSetsHaveThePapersSecondMoments) {
  const Dataset d = toy_diagonal({1.0, 4e-4}, {1.0, 1.0});
  const Eigen::MatrixXd m = d.X.transpose() * d.X / 2.0;
  EXPECT_NEAR(m(0, 0), 1.0, 1e-15);
  EXPECT_NEAR(m(1, 1), 4e-4, 1e-18);
  EXPECT_EQ(m(0, 1), 0.0);
  EXPECT_NEAR(d.X(1, 1), std::sqrt(2.0) * 0.02, 1e-16);  // Section 4.4's x_2 = (0, sqrt(2) 0.02)
  const Dataset s = toy_scalar(0.7);
  EXPECT_EQ(s.X(0, 0), 1.0);
  EXPECT_EQ(s.Y(0, 0), 0.7);
}

}  // namespace
}  // namespace dln
