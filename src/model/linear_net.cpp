#include "dln/model/linear_net.hpp"

#include <cassert>

namespace dln {

LinearNet::LinearNet(std::vector<int> widths) : widths_(std::move(widths)) {
  assert(widths_.size() >= 2);
  for (std::size_t l = 0; l + 1 < widths_.size(); ++l)
    layers.push_back(Eigen::MatrixXd::Zero(widths_[l + 1], widths_[l]));
}

Eigen::MatrixXd LinearNet::end_to_end() const {
  Eigen::MatrixXd e = layers.front();
  for (std::size_t l = 1; l < layers.size(); ++l) e = layers[l] * e;
  return e;
}

Eigen::MatrixXd LinearNet::predict(const Eigen::MatrixXd& X) const {
  return end_to_end() * X;
}

}  // namespace dln
