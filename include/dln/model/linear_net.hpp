// A deep linear network x -> W_L ... W_1 x. Layer W_l maps width n_l to n_{l+1} and is stored
// as an n_{l+1} x n_l matrix, the shape of a PyTorch Linear weight (out, in).
#pragma once

#include <Eigen/Core>
#include <vector>

namespace dln {

class LinearNet {
 public:
  LinearNet() = default;
  // widths = {n_1 = d, ..., n_{L+1} = k}: L = widths.size() - 1 layers, all zero.
  explicit LinearNet(std::vector<int> widths);

  int depth() const { return static_cast<int>(layers.size()); }
  const std::vector<int>& widths() const { return widths_; }
  int input_dim() const { return widths_.front(); }
  int output_dim() const { return widths_.back(); }

  // W_L ... W_1 (k x d).
  Eigen::MatrixXd end_to_end() const;
  // W_e X for a d x n batch.
  Eigen::MatrixXd predict(const Eigen::MatrixXd& X) const;
  // Balancedness layers[l + 1]^T layers[l + 1] - layers[l] layers[l]^T into out (no allocation
  // when out has that size already); in 1-based names, W_{l+2}^T W_{l+2} - W_{l+1} W_{l+1}^T.
  void balancedness(int l, Eigen::MatrixXd& out) const;

  std::vector<Eigen::MatrixXd> layers;  // layers[l - 1] is W_l

 private:
  std::vector<int> widths_;
};

}  // namespace dln
