// Shared test helpers: random problems and an independent, layer-by-layer reference.
#pragma once

#include <Eigen/Core>
#include <memory>
#include <vector>

#include "dln/core/problem.hpp"
#include "dln/model/linear_net.hpp"
#include "dln/rng.hpp"

namespace dln::test {

inline std::shared_ptr<const Dataset> random_data(int d, int k, int n, std::uint64_t seed) {
  Rng rng(seed);
  auto data = std::make_shared<Dataset>();
  data->X = rng.normal_matrix(d, n);
  data->Y = rng.normal_matrix(k, n);
  return data;
}

inline LinearNet random_net(const std::vector<int>& widths, std::uint64_t seed, double std = 0.5) {
  Rng rng(seed);
  LinearNet net(widths);
  for (auto& W : net.layers) W = rng.normal_matrix(W.rows(), W.cols(), std);
  return net;
}

// The loss written out directly: c (1/p) sum |W_L(...(W_1 X)) - Y|^p, layer by layer.
inline double reference_loss(const LinearNet& net, const Dataset& data, const Loss& loss) {
  Eigen::MatrixXd h = data.X;
  for (const auto& W : net.layers) h = W * h;
  return loss.scale(data.samples()) * (h - data.Y).array().abs().pow(loss.p()).sum() / loss.p();
}

// Plain backpropagation through the layers: forward activations h_l = W_l h_{l-1}, then
// delta_L = dL/dY_hat, dL/dW_l = delta_l h_{l-1}^T, delta_{l-1} = W_l^T delta_l.
inline std::vector<Eigen::MatrixXd> reference_gradients(const LinearNet& net, const Dataset& data,
                                                        const Loss& loss) {
  std::vector<Eigen::MatrixXd> h = {data.X};
  for (const auto& W : net.layers) h.push_back(W * h.back());
  const Eigen::MatrixXd r = h.back() - data.Y;
  const double c = loss.scale(data.samples());
  Eigen::MatrixXd delta = r.unaryExpr([&](double v) {
    return c * (v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0) * std::pow(std::abs(v), loss.p() - 1.0);
  });
  std::vector<Eigen::MatrixXd> grads(net.layers.size());
  for (int l = net.depth() - 1; l >= 0; --l) {
    grads[l] = delta * h[l].transpose();
    delta = net.layers[l].transpose() * delta;
  }
  return grads;
}

// Central finite differences of f with respect to every entry of W (restored afterwards).
template <typename F>
Eigen::MatrixXd finite_difference(Eigen::MatrixXd& W, F&& f, double h = 1e-6) {
  Eigen::MatrixXd g(W.rows(), W.cols());
  for (Eigen::Index i = 0; i < W.size(); ++i) {
    const double w = W.data()[i];
    W.data()[i] = w + h;
    const double up = f();
    W.data()[i] = w - h;
    const double down = f();
    W.data()[i] = w;
    g.data()[i] = (up - down) / (2 * h);
  }
  return g;
}

inline double relative_error(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const double scale = std::max(a.norm(), b.norm());
  return scale == 0 ? 0.0 : (a - b).norm() / scale;
}

}  // namespace dln::test
