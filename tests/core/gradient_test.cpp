// Gradients of the step cache against plain backpropagation and central finite differences,
// for every loss, depths 1-5 and odd shapes, on both the data path and the l2 stats path.
#include <gtest/gtest.h>

#include "dln/core/step_cache.hpp"
#include "support.hpp"

namespace dln {
namespace {

struct Shape {
  const char* name;
  std::vector<int> hidden;  // hidden widths; depth = hidden.size() + 1
  int d, k;
};

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s = {
      {"depth1", {}, 4, 3},
      {"depth2_wide", {9}, 3, 2},
      {"depth3_narrow", {2, 2}, 5, 3},
      {"depth4_bottleneck", {7, 1, 6}, 5, 4},
      {"depth5_mixed", {6, 3, 8, 2}, 4, 5},
      {"depth3_scalar_out", {4, 4}, 6, 1},
  };
  return s;
}

std::vector<int> widths_of(const Shape& s) {
  std::vector<int> w = {s.d};
  w.insert(w.end(), s.hidden.begin(), s.hidden.end());
  w.push_back(s.k);
  return w;
}

TEST(Gradient, LayerGradientsMatchBackpropagationForEveryLossDepthAndShape) {
  for (double p : {1.0, 1.5, 2.0, 3.0, 4.0, 5.5}) {
    for (Reduction red : {Reduction::kMean, Reduction::kSum}) {
      for (const auto& s : shapes()) {
        for (GradientPath path : {GradientPath::kData, GradientPath::kStats}) {
          if (path == GradientPath::kStats && p != 2.0) continue;
          const auto data = test::random_data(s.d, s.k, 17, 11);
          const Problem problem(data, Loss(p, red), path);
          const LinearNet net = test::random_net(widths_of(s), 5);
          StepCache cache;
          cache.bind(problem, net);
          const auto ref = test::reference_gradients(net, *data, problem.loss());
          const double ref_loss = test::reference_loss(net, *data, problem.loss());
          SCOPED_TRACE(testing::Message()
                       << "p=" << p << " shape=" << s.name << " stats=" << problem.uses_stats());
          // 1e-11: a handful of products of O(1) matrices; stats path reassociates the sums.
          EXPECT_NEAR(cache.loss(), ref_loss, 1e-11 * std::max(1.0, ref_loss));
          for (int l = 0; l < net.depth(); ++l)
            EXPECT_LT(test::relative_error(cache.layer_gradients()[l], ref[l]), 1e-11)
                << "layer " << l + 1;
        }
      }
    }
  }
}

TEST(Gradient, LayerGradientsMatchCentralFiniteDifferences) {
  for (double p : {1.5, 2.0, 3.0, 4.0}) {
    for (const auto& s : shapes()) {
      for (GradientPath path : {GradientPath::kData, GradientPath::kStats}) {
        if (path == GradientPath::kStats && p != 2.0) continue;
        const auto data = test::random_data(s.d, s.k, 13, 3);
        const Problem problem(data, Loss(p, Reduction::kMean), path);
        LinearNet net = test::random_net(widths_of(s), 9);
        StepCache cache;
        cache.bind(problem, net);
        const auto grads = cache.layer_gradients();
        for (int l = 0; l < net.depth(); ++l) {
          const Eigen::MatrixXd fd = test::finite_difference(net.layers[l], [&] {
            cache.invalidate();
            return cache.loss();
          });
          SCOPED_TRACE(testing::Message()
                       << "p=" << p << " shape=" << s.name << " layer=" << l + 1);
          // 1e-6: central differences with h = 1e-6 have O(h^2) truncation and O(eps/h)
          // round-off error, about 1e-8 relative here; p = 1.5 has a less smooth |r|^p.
          EXPECT_LT(test::relative_error(grads[l], fd), 1e-6);
        }
      }
    }
  }
}

TEST(Gradient, FiniteDifferenceCheckRejectsAWrongGradient) {
  // The checker itself must fail on a gradient that is slightly wrong.
  const auto data = test::random_data(4, 3, 10, 1);
  const Problem problem(data, Loss(2.0, Reduction::kMean), GradientPath::kData);
  LinearNet net = test::random_net({4, 5, 3}, 2);
  StepCache cache;
  cache.bind(problem, net);
  Eigen::MatrixXd wrong = cache.layer_gradients()[0];
  wrong(0, 0) *= 1.001;
  const Eigen::MatrixXd fd = test::finite_difference(net.layers[0], [&] {
    cache.invalidate();
    return cache.loss();
  });
  EXPECT_GT(test::relative_error(wrong, fd), 1e-6);
}

TEST(Gradient, StatsPathEqualsDataPathForL2) {
  for (const auto& s : shapes()) {
    const auto data = test::random_data(s.d, s.k, 40, 21);
    const Problem stats(data, Loss(2.0, Reduction::kSum), GradientPath::kStats);
    const Problem direct(data, Loss(2.0, Reduction::kSum), GradientPath::kData);
    const LinearNet net = test::random_net(widths_of(s), 4);
    StepCache a, b;
    a.bind(stats, net);
    b.bind(direct, net);
    // 1e-12: the same quantities summed in a different order.
    EXPECT_NEAR(a.loss(), b.loss(), 1e-12 * b.loss());
    EXPECT_LT(test::relative_error(a.e2e_gradient(), b.e2e_gradient()), 1e-12) << s.name;
  }
}

}  // namespace
}  // namespace dln
