#include "dln/model/linear_net.hpp"

#include <cassert>

#include "dln/core/multiply.hpp"

namespace dln {

LinearNet::LinearNet(std::vector<int> widths) : widths_(std::move(widths)) {
  assert(widths_.size() >= 2);
  for (std::size_t l = 0; l + 1 < widths_.size(); ++l)
    layers.push_back(Eigen::MatrixXd::Zero(widths_[l + 1], widths_[l]));
}

Eigen::MatrixXd LinearNet::end_to_end() const {
  // The same products, in the same order, as the step cache's prefixes: a collapsed net starts
  // from the deep net's end-to-end matrix bit for bit.
  Eigen::MatrixXd e = layers.front(), next;
  for (std::size_t l = 1; l < layers.size(); ++l) {
    multiply(next, layers[l], e);
    e.swap(next);
  }
  return e;
}

void LinearNet::balancedness(int l, Eigen::MatrixXd& out) const {
  multiply(out, layers[l + 1].transpose(), layers[l + 1]);
  multiply_subtract(out, layers[l], layers[l].transpose());
}

Eigen::MatrixXd LinearNet::predict(const Eigen::MatrixXd& X) const {
  return end_to_end() * X;
}

}  // namespace dln
