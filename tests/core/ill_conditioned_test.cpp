// The default l2 path on real, ill-conditioned data: the gas-sensor Ethanol subset
// (datasets/gas-sensor-drift; cond(Sigma_xx) ~ 1e15), where an eigenfactor of Sigma_xx loses
// the small directions and with them the loss's last digits.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "dln/core/step_cache.hpp"
#include "dln/io/libsvm.hpp"
#include "support.hpp"

namespace dln {
namespace {

// The 1,316 Ethanol measurements (class 1) of the eight vendored batches: 128 raw features, the
// concentration as target.
std::shared_ptr<const Dataset> ethanol() {
  std::vector<std::vector<std::pair<std::size_t, double>>> rows;
  std::vector<double> y;
  for (int b : {1, 2, 3, 4, 5, 6, 8, 9}) {
    const auto t =
        io::read_libsvm(std::string(DLN_SOURCE_DIR) + "/datasets/gas-sensor-drift/batch" +
                        std::to_string(b) + ".dat.gz");
    for (std::size_t i = 0; i < t.rows.size(); ++i)
      if (t.classes[i] == 1.0) {
        rows.push_back(t.rows[i]);
        y.push_back(t.labels[i]);
      }
  }
  auto data = std::make_shared<Dataset>();
  data->X = Eigen::MatrixXd::Zero(128, static_cast<Eigen::Index>(rows.size()));
  data->Y.resize(1, static_cast<Eigen::Index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (const auto& [j, v] : rows[i])
      data->X(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(i)) = v;
    data->Y(0, static_cast<Eigen::Index>(i)) = y[i];
  }
  return data;
}

// (1/2n) ||W_e X - Y||^2 in long double, sample by sample: an independent float64-or-better
// reference for both paths.
double direct_loss(const LinearNet& net, const Dataset& data) {
  const Eigen::MatrixXd w = net.end_to_end();
  long double sum = 0;
  for (Eigen::Index i = 0; i < data.samples(); ++i) {
    long double r = -static_cast<long double>(data.Y(0, i));
    for (Eigen::Index j = 0; j < data.dim(); ++j)
      r += static_cast<long double>(w(0, j)) * static_cast<long double>(data.X(j, i));
    sum += r * r;
  }
  return static_cast<double>(sum / (2.0L * static_cast<long double>(data.samples())));
}

TEST(IllConditioned, StatsPathLossMatchesTheDataAtEveryStepOnTheEthanolData) {
  const auto data = ethanol();
  ASSERT_EQ(data->samples(), 1316);
  const Loss loss(2.0, Reduction::kMean);
  const Problem stats(data, loss), direct(data, loss, GradientPath::kData);
  ASSERT_TRUE(stats.uses_stats());
  ASSERT_FALSE(direct.uses_stats());
  struct Case {
    std::vector<int> widths;
    double std, lr;
  };
  // Small random inits; rates below the stability limit (about 7.2e-11 for the shallow model).
  for (const Case& c : {Case{{128, 1}, 1e-6, 5e-11}, Case{{128, 2, 1}, 1e-2, 2e-11}}) {
    LinearNet net = test::random_net(c.widths, 7, c.std);
    StepCache a, b;
    a.bind(stats, net);
    b.bind(direct, net);
    double worst = 0.0, worst_direct = 0.0;
    const double first = b.loss();
    for (int step = 0; step <= 300; ++step) {
      // 1e-10: the bound; the eigenfactor path was off by 2.7e-8 relative here.
      const double ls = a.loss(), ld = b.loss();
      worst = std::max(worst, std::abs(ls - ld) / ld);
      if (step % 50 == 0)
        worst_direct = std::max(worst_direct, std::abs(ld - direct_loss(net, *data)) / ld);
      const auto& g = a.layer_gradients();
      for (int l = 0; l < net.depth(); ++l) net.layers[l] -= c.lr * g[l];
      a.invalidate();
      b.invalidate();
    }
    EXPECT_LT(worst, 1e-10) << "depth " << net.depth();
    // 1e-13: the data path is a sum of n = 1316 squares in double against long double.
    EXPECT_LT(worst_direct, 1e-13) << "depth " << net.depth();
    EXPECT_LT(b.loss(), 0.95 * first) << "the run should learn something";
    std::printf(
        "widths %zu layers: max relative loss gap stats vs data %.2e, data vs long double %.2e, "
        "loss %.6g -> %.6g\n",
        c.widths.size() - 1, worst, worst_direct, first, b.loss());
  }
}

TEST(IllConditioned, StatsPathGradientMatchesTheData) {
  const auto data = ethanol();
  const Loss loss(2.0, Reduction::kMean);
  const Problem stats(data, loss), direct(data, loss, GradientPath::kData);
  const LinearNet net = test::random_net({128, 3, 1}, 11, 1e-2);
  StepCache a, b;
  a.bind(stats, net);
  b.bind(direct, net);
  for (int l = 0; l < net.depth(); ++l)
    // 1e-9: the gradient of an ill-conditioned quadratic; both paths are backward stable.
    EXPECT_LT(test::relative_error(a.layer_gradients()[l], b.layer_gradients()[l]), 1e-9) << l;
}

}  // namespace
}  // namespace dln
