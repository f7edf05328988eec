// The end-to-end update of Arora et al. (Steinitz, Theorem 2.2): for depth N,
//   P(W, G) = sum_{i=1..N} (W W^T)^{(N-i)/N} G (W^T W)^{(i-1)/N},
// computed from one full SVD of W (docs/theory.md#end-to-end-update). Right for rectangular
// and rank-deficient W, with 0^0 = 1 on the identity terms.
#pragma once

#include <Eigen/Core>
#include <Eigen/SVD>

namespace dln {

class EndToEndPreconditioner {
 public:
  // Sizes every buffer for k x d matrices and depth N >= 1.
  void resize(Eigen::Index k, Eigen::Index d, int depth);
  int depth() const { return depth_; }
  // out = P(W, G); W and G are k x d. No allocation after resize().
  void apply(const Eigen::MatrixXd& W, const Eigen::MatrixXd& G, Eigen::MatrixXd& out);

 private:
  int depth_ = 1;
  Eigen::JacobiSVD<Eigen::MatrixXd> svd_;
  Eigen::VectorXd alpha_, beta_;  // sigma^{2/N} on the left (k) and right (d) singular bases
  Eigen::MatrixXd rotated_, tmp_;
};

}  // namespace dln
