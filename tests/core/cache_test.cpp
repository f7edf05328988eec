// The step cache's products and norms against direct computation.
#include <gtest/gtest.h>

#include <Eigen/QR>
#include <Eigen/SVD>
#include <functional>
#include <optional>
#include <random>

#include "dln/core/data_pass.hpp"
#include "dln/core/step_cache.hpp"
#include "dln/run/trainer.hpp"
#include "support.hpp"

namespace dln {
namespace {

TEST(StepCache, PrefixSuffixAndEndToEndAreTheChainProducts) {
  const auto data = test::random_data(4, 3, 10, 1);
  const Problem problem(data, Loss(3.0, Reduction::kMean));
  const LinearNet net = test::random_net({4, 5, 2, 6, 3}, 3);
  StepCache cache;
  cache.bind(problem, net);
  const int L = net.depth();
  for (int l = 1; l <= L; ++l) {
    Eigen::MatrixXd p = net.layers[0];
    for (int j = 1; j < l; ++j) p = net.layers[j] * p;
    EXPECT_LT(test::relative_error(cache.prefix(l), p), 1e-15);
  }
  for (int l = 0; l < L; ++l) {
    Eigen::MatrixXd s = net.layers[L - 1];
    for (int j = L - 2; j >= l; --j) s = s * net.layers[j];
    EXPECT_LT(test::relative_error(cache.suffix(l), s), 1e-15) << "S_" << l;
  }
  EXPECT_LT(test::relative_error(cache.end_to_end(), net.end_to_end()), 1e-15);
}

TEST(StepCache, SpectralNormsMatchSingularValueDecomposition) {
  const auto data = test::random_data(4, 3, 10, 1);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  const LinearNet net = test::random_net({4, 7, 2, 3}, 6);
  StepCache cache;
  cache.bind(problem, net);
  for (int l = 0; l < net.depth(); ++l) {
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(net.layers[l]);
    // 1e-13: the Gram eigenvalue is exact to eps relative; its square root halves that.
    EXPECT_NEAR(cache.layer_spectral_norms()[l], svd.singularValues()(0),
                1e-13 * svd.singularValues()(0));
  }
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(net.end_to_end());
  EXPECT_NEAR(cache.e2e_spectral_norm(), svd.singularValues()(0), 1e-13 * svd.singularValues()(0));
}

TEST(StepCache, OptimumIsTheMinimumNormLeastSquaresSolution) {
  // Rank-deficient inputs (a repeated feature): the min-norm solution is Y X^+.
  auto data = std::make_shared<Dataset>();
  Rng rng(3);
  data->X = rng.normal_matrix(4, 30);
  data->X.row(3) = data->X.row(0);
  data->Y = rng.normal_matrix(2, 30);
  const Problem problem(data, Loss(2.0, Reduction::kMean));
  const Eigen::MatrixXd pinv =
      data->X.transpose().completeOrthogonalDecomposition().pseudoInverse();
  const Eigen::MatrixXd expected = data->Y * pinv.transpose();
  EXPECT_LT(test::relative_error(problem.optimum(), expected), 1e-12);
  // Normal equations hold: W_* Sigma_xx = Sigma_yx.
  EXPECT_LT(test::relative_error(problem.optimum() * problem.sigma_xx(), problem.sigma_yx()),
            1e-12);
}

}  // namespace
}  // namespace dln

namespace dln {
namespace {

// Products with large data are cut into column slices; the slicing depends on the sizes only,
// so the result must be the same bit for bit on 1, 2 or 3 threads, and agree with Eigen's
// single product to rounding (1e-13 relative: sums of 10^4 terms of size ~1, each with
// relative error ~1e-16, regrouped).
// Every row count the small kernel takes (and one either side), plain and transposed factors,
// strided destinations, assignment and subtraction, against a triple loop in long double.
// Tolerance: both sum p products of O(1) numbers in double, so they differ by at most a few
// p * eps relative to the sum of |a_ik b_kj|; 1e-14 with p <= 70 leaves room.
TEST(SmallProduct, AgreesWithATripleLoopForEveryShapeAndLayout) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  const auto random = [&](Eigen::Index r, Eigen::Index c) {
    Eigen::MatrixXd m(r, c);
    for (Eigen::Index j = 0; j < c; ++j)
      for (Eigen::Index i = 0; i < r; ++i) m(i, j) = normal(rng);
    return m;
  };
  for (Eigen::Index m = 1; m <= 17; ++m) {
    for (Eigen::Index p : {1, 3, 8, 70}) {
      for (Eigen::Index n : {1, 5, 9}) {
        const Eigen::MatrixXd a = random(m, p), at = a.transpose(), b = random(p, n),
                              bt = b.transpose();
        Eigen::MatrixXd want(m, n), scale(m, n);
        for (Eigen::Index i = 0; i < m; ++i) {
          for (Eigen::Index j = 0; j < n; ++j) {
            long double sum = 0, abs = 0;
            for (Eigen::Index k = 0; k < p; ++k) {
              sum += static_cast<long double>(a(i, k)) * b(k, j);
              abs += std::abs(static_cast<long double>(a(i, k)) * b(k, j));
            }
            want(i, j) = static_cast<double>(sum);
            scale(i, j) = static_cast<double>(abs);
          }
        }
        const auto check = [&](const Eigen::MatrixXd& got, const char* layout) {
          const double err = ((got - want).cwiseAbs().array() / scale.array()).maxCoeff();
          EXPECT_LT(err, 1e-14) << layout << " m=" << m << " p=" << p << " n=" << n;
        };
        Eigen::MatrixXd out(m, n);
        multiply(out, a, b);
        check(out, "a b");
        multiply(out, at.transpose(), b);
        check(out, "(a^T)^T b");
        multiply(out, a, bt.transpose());
        check(out, "a (b^T)^T");
        multiply(out, at.transpose(), bt.transpose());
        check(out, "both transposed");
        // A block of a wider matrix: the columns are strided; subtracting from 2 (a b).
        Eigen::MatrixXd wide = Eigen::MatrixXd::Zero(m + 3, n);
        wide.topRows(m) = 2 * want;
        multiply_subtract(wide.topRows(m), a, b);
        check(wide.topRows(m), "2 (a b) - a b in a block");
        EXPECT_EQ(wide.bottomRows(3).squaredNorm(), 0.0);
      }
    }
  }
}

TEST(DataPass, SlicedProductsAgreeWithTheDirectProductOnAnyNumberOfThreads) {
  const auto data = test::random_data(50, 3, 20000, 11);
  const Eigen::MatrixXd& X = data->X;
  const Eigen::MatrixXd A = Eigen::MatrixXd::Random(3, 50);
  const Eigen::MatrixXd G = Eigen::MatrixXd::Random(3, 20000);
  const Eigen::MatrixXd AX = A * X, GXt = G * X.transpose();
  std::vector<Eigen::MatrixXd> ax, gxt;
  for (int threads : {1, 2, 3}) {
    WorkerPool pool(threads);
    DataPass pass;
    pass.bind(3, X);
    pass.set_pool(&pool);
    ASSERT_GT(pass.slices(), 1);
    Eigen::MatrixXd out(3, 20000), outt(3, 50);
    for (int repeat = 0; repeat < 3; ++repeat) {  // the pool is reused between calls
      pass.times(A, out);
      pass.times_transposed(G, outt);
    }
    EXPECT_LT(test::relative_error(out, AX), 1e-13);
    EXPECT_LT(test::relative_error(outt, GXt), 1e-13);
    ax.push_back(out);
    gxt.push_back(outt);
  }
  for (std::size_t i = 1; i < ax.size(); ++i) {
    EXPECT_TRUE((ax[i].array() == ax[0].array()).all()) << "times, run " << i;
    EXPECT_TRUE((gxt[i].array() == gxt[0].array()).all()) << "times_transposed, run " << i;
  }
}

// The weight products of a wide net (W_e = W_2 W_1 and the layer gradients of a 784-256-10
// net) cut into column slices: against Eigen's product to 1e-13 (the same sums, each in
// increasing k; Eigen's blocking may group them differently), and the same bits for no pool and
// pools of 1, 2 and 3 threads. m = 10 takes small_product (with a row-strided right factor
// too), m = 256 Eigen's GEMM on each slice; n = 785 leaves a slice narrower than the others.
TEST(WorkerPool, SlicedWeightProductsAreTheSameOnAnyNumberOfThreads) {
  std::mt19937_64 rng(21);
  std::normal_distribution<double> normal;
  auto random = [&](Eigen::Index r, Eigen::Index c) {
    Eigen::MatrixXd m(r, c);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
    return m;
  };
  const Eigen::MatrixXd w2 = random(10, 256), w1 = random(256, 785), g = random(10, 785);
  struct Case {
    const char* name;
    std::function<void(WorkerPool*, Eigen::MatrixXd&)> run;
    Eigen::MatrixXd want;
  };
  const std::vector<Case> cases = {
      {"W2 W1", [&](WorkerPool* p, Eigen::MatrixXd& o) { multiply_sliced(p, o, w2, w1); }, w2 * w1},
      {"G W1^T",
       [&](WorkerPool* p, Eigen::MatrixXd& o) { multiply_sliced(p, o, g, w1.transpose()); },
       g * w1.transpose()},
      {"W2^T G",
       [&](WorkerPool* p, Eigen::MatrixXd& o) { multiply_sliced(p, o, w2.transpose(), g); },
       w2.transpose() * g},
  };
  for (const auto& c : cases) {
    std::vector<Eigen::MatrixXd> outs;
    for (int threads : {0, 1, 2, 3}) {
      std::optional<WorkerPool> pool;
      if (threads > 0) pool.emplace(threads);
      Eigen::MatrixXd out;
      for (int repeat = 0; repeat < 2; ++repeat) c.run(pool ? &*pool : nullptr, out);
      EXPECT_LT(test::relative_error(out, c.want), 1e-13) << c.name;
      outs.push_back(out);
    }
    for (std::size_t i = 1; i < outs.size(); ++i)
      EXPECT_TRUE((outs[i].array() == outs[0].array()).all()) << c.name << ", run " << i;
  }
}

// The fused pass (residual, loss and dL/dW_e slice by slice) against the whole-matrix forms
// computed directly; 1e-12 relative: the same sums regrouped by slice. k = 1 and 13 take Eigen's
// products, 3 and 12 the blocked kernels; d = 51 leaves a remainder after groups of four rows.
TEST(DataPass, FusedPassGivesTheLossAndGradientOfTheWholeData) {
  for (int k : {1, 3, 12, 13}) {
    const auto data = test::random_data(51, k, 20000, 14);
    for (double p : {2.0, 4.0, 3.0}) {
      const Problem problem(data, Loss(p, Reduction::kMean), GradientPath::kData);
      const LinearNet net = test::random_net({51, 7, k}, 15);
      StepCache cache;
      cache.bind(problem, net);
      ASSERT_GT(cache.data_pass().slices(), 1);
      const Eigen::MatrixXd R = net.end_to_end() * data->X - data->Y;
      Eigen::MatrixXd G(R.rows(), R.cols());
      const double loss = problem.loss().value_and_gradient(R, data->Y, G);
      EXPECT_NEAR(cache.loss(), loss, 1e-12 * loss) << "k = " << k << ", p = " << p;
      EXPECT_LT(test::relative_error(cache.residual(), R), 1e-13) << "k = " << k << ", p = " << p;
      EXPECT_LT(test::relative_error(cache.e2e_gradient(), G * data->X.transpose()), 1e-12)
          << "k = " << k << ", p = " << p;
    }
  }
}

TEST(DataPass, TrainingOnSeveralThreadsGivesTheSameWeightsBitForBit) {
  const auto data = test::random_data(40, 4, 16000, 12);
  const Problem problem(data, Loss(4.0, Reduction::kMean), GradientPath::kData);
  std::vector<LinearNet> nets;
  for (int threads : {1, 2}) {
    LinearNet net = test::random_net({40, 10, 4}, 13);
    TrainSpec spec;
    spec.optimizer.kind = "gd";
    spec.optimizer.lr = 1e-3;
    spec.optimizer.steps = 20;
    spec.threads = threads;
    train(problem, net, spec, nullptr);
    nets.push_back(net);
  }
  for (int l = 0; l < nets[0].depth(); ++l)
    EXPECT_TRUE((nets[0].layers[l].array() == nets[1].layers[l].array()).all()) << "layer " << l;
}

}  // namespace
}  // namespace dln
