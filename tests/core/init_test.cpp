// Initialisers: invariants, shapes, seeding and the variances they promise.
#include "dln/init/init.hpp"

#include <gtest/gtest.h>

#include <Eigen/SVD>

#include "support.hpp"

namespace dln {
namespace {

const std::vector<int> kWidths = {7, 9, 4, 6, 3};

TEST(Init, EverySchemeIsSeededAndShaped) {
  for (const auto& entry : init_registry()) {
    if (entry.name == "npy") continue;  // covered by the command-line tests
    InitSpec spec{.scheme = entry.name, .std = 0.3, .gain = 1.5, .noise = 0.01, .seed = 42};
    const Eigen::MatrixXd sigma_yx = Rng(7).normal_matrix(kWidths.back(), kWidths.front());
    const LinearNet a = initialize(kWidths, spec, &sigma_yx),
                    b = initialize(kWidths, spec, &sigma_yx);
    spec.seed = 43;
    const LinearNet c = initialize(kWidths, spec, &sigma_yx);
    ASSERT_EQ(a.depth(), 4) << entry.name;
    bool differs = false;
    for (int l = 0; l < a.depth(); ++l) {
      EXPECT_EQ(a.layers[l].rows(), kWidths[l + 1]);
      EXPECT_EQ(a.layers[l].cols(), kWidths[l]);
      EXPECT_EQ(a.layers[l], b.layers[l]) << entry.name << ": same seed, same weights";
      differs |= a.layers[l] != c.layers[l];
    }
    // Deterministic schemes ignore the seed; identity has noise here.
    const bool seeded = entry.name != "constant" && entry.name != "agd";
    EXPECT_EQ(differs, seeded) << entry.name;
  }
}

TEST(Init, ConstantAndAgdSchemes) {
  const LinearNet agd = initialize({3, 1, 1, 1}, {.scheme = "agd"});
  EXPECT_TRUE(agd.layers[0].isZero(0.0));
  for (int l = 1; l < 3; ++l) EXPECT_EQ(agd.layers[l](0, 0), 1.0);
  InitSpec spec{.scheme = "constant"};
  spec.values = {1.0, -1.0};
  const LinearNet c = initialize({1, 1, 1}, spec);
  EXPECT_EQ(c.layers[0](0, 0), 1.0);
  EXPECT_EQ(c.layers[1](0, 0), -1.0);
  spec.values = {0.25};
  const LinearNet e = initialize({2, 3, 1}, spec);
  EXPECT_TRUE((e.layers[0].array() == 0.25).all() && (e.layers[1].array() == 0.25).all());
}

TEST(Init, BalancedSatisfiesInvariantToMachinePrecision) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const LinearNet net = initialize(kWidths, {.scheme = "balanced", .std = 0.7, .seed = seed});
    for (int l = 0; l + 1 < net.depth(); ++l) {
      const Eigen::MatrixXd lhs = net.layers[l + 1].transpose() * net.layers[l + 1];
      const Eigen::MatrixXd rhs = net.layers[l] * net.layers[l].transpose();
      // 1e-14: a few products of orthonormal factors and O(1) singular values.
      EXPECT_LT((lhs - rhs).norm(), 1e-14 * rhs.norm()) << "seed " << seed << " pair " << l + 1;
    }
  }
}

TEST(Init, BalancedEndToEndIsTheRankTruncatedSample) {
  // Widths with a bottleneck of 2: W_e must be the best rank-2 approximation of the sample.
  const std::vector<int> widths = {6, 5, 2, 4};
  const InitSpec spec{.scheme = "balanced", .std = 1.0, .seed = 9};
  const LinearNet net = initialize(widths, spec);
  Rng rng(spec.seed);
  const Eigen::MatrixXd sample = rng.normal_matrix(4, 6, 1.0);
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(sample, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::MatrixXd best = svd.matrixU().leftCols(2) *
                               svd.singularValues().head(2).asDiagonal() *
                               svd.matrixV().leftCols(2).transpose();
  EXPECT_LT(test::relative_error(net.end_to_end(), best), 1e-13);
}

TEST(Init, OrthogonalHasOrthonormalRowsOrColumns) {
  const LinearNet net = initialize(kWidths, {.scheme = "orthogonal", .gain = 1.0, .seed = 1});
  for (const auto& W : net.layers) {
    const Eigen::MatrixXd gram = W.rows() >= W.cols() ? Eigen::MatrixXd(W.transpose() * W)
                                                      : Eigen::MatrixXd(W * W.transpose());
    EXPECT_LT((gram - Eigen::MatrixXd::Identity(gram.rows(), gram.cols())).norm(), 1e-13);
  }
}

TEST(Init, IdentityWithoutNoiseIsTheRectangularIdentity) {
  const LinearNet net = initialize({3, 5, 2}, {.scheme = "identity", .gain = 2.0, .seed = 1});
  EXPECT_EQ(net.layers[0], 2.0 * Eigen::MatrixXd::Identity(5, 3));
  EXPECT_EQ(net.layers[1], 2.0 * Eigen::MatrixXd::Identity(2, 5));
}

TEST(Init, GlorotAndHeHaveTheirVariances) {
  // One 400 x 300 layer: the sample variance of 120000 entries is within 2% of the target
  // (its relative standard error is sqrt(2 / 120000) = 0.4%).
  const std::vector<int> widths = {300, 400};
  auto variance = [&](const std::string& scheme) {
    const Eigen::MatrixXd W = initialize(widths, {.scheme = scheme, .seed = 5}).layers[0];
    return W.squaredNorm() / static_cast<double>(W.size());
  };
  EXPECT_NEAR(variance("glorot_normal"), 2.0 / 700.0, 0.02 * 2.0 / 700.0);
  EXPECT_NEAR(variance("glorot_uniform"), 2.0 / 700.0, 0.02 * 2.0 / 700.0);  // a^2 / 3
  EXPECT_NEAR(variance("he"), 2.0 / 300.0, 0.02 * 2.0 / 300.0);
}

}  // namespace
}  // namespace dln
