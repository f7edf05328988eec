#include "dln/core/max_margin.hpp"

#include <linear.h>

#include <Eigen/QR>
#include <algorithm>
#include <numeric>
#include <vector>

namespace dln {
namespace {

void quiet(const char*) {}

// The hard-margin solution on a candidate active set S: the minimum-norm w with y_i <w, x_i> = 1
// for i in S, i.e. w = A^+ 1 with rows a_i = y_i x_i^T, and its multipliers alpha = (A A^T)^+ 1
// (w = A^T alpha). Inactive candidates (alpha_i < 0) are dropped one at a time.
bool solve_on_support(const Eigen::MatrixXd& Z, std::vector<Eigen::Index> support,
                      Eigen::VectorXd& w) {
  while (!support.empty()) {
    Eigen::MatrixXd A(support.size(), Z.rows());
    for (std::size_t i = 0; i < support.size(); ++i) A.row(i) = Z.col(support[i]).transpose();
    const Eigen::VectorXd ones = Eigen::VectorXd::Ones(A.rows());
    const Eigen::MatrixXd gram = A * A.transpose();
    const Eigen::VectorXd alpha = gram.completeOrthogonalDecomposition().solve(ones);
    Eigen::Index worst = 0;
    if (alpha.minCoeff(&worst) >= -1e-12 * alpha.cwiseAbs().maxCoeff()) {
      w = A.transpose() * alpha;
      return true;
    }
    support.erase(support.begin() + worst);
  }
  return false;
}

}  // namespace

MaxMargin max_margin(const Eigen::MatrixXd& X, const Eigen::RowVectorXd& y) {
  const Eigen::Index d = X.rows(), n = X.cols();
  // Z holds y_i x_i: the problem is max_u min_i <u, z_i>.
  Eigen::MatrixXd Z = X;
  for (Eigen::Index i = 0; i < n; ++i) Z.col(i) *= y(i);

  std::vector<std::vector<feature_node>> rows(static_cast<std::size_t>(n));
  std::vector<feature_node*> row_ptrs(static_cast<std::size_t>(n));
  std::vector<double> labels(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) {
    auto& r = rows[static_cast<std::size_t>(i)];
    for (Eigen::Index j = 0; j < d; ++j)
      if (X(j, i) != 0.0) r.push_back({static_cast<int>(j + 1), X(j, i)});
    r.push_back({-1, 0.0});
    row_ptrs[static_cast<std::size_t>(i)] = r.data();
    labels[static_cast<std::size_t>(i)] = y(i);
  }
  problem prob{};
  prob.l = static_cast<int>(n);
  prob.n = static_cast<int>(d);
  prob.y = labels.data();
  prob.x = row_ptrs.data();
  prob.bias = -1;
  parameter param{};
  param.solver_type = L2R_L1LOSS_SVC_DUAL;
  param.C = 1e6;
  param.eps = 1e-10;
  set_print_string_function(quiet);

  MaxMargin out;
  Eigen::VectorXd w = Eigen::VectorXd::Zero(d);
  if (check_parameter(&prob, &param) == nullptr && n > 0) {
    model* m = train(&prob, &param);
    if (m->nr_class == 2) {
      const double sign = m->label[0] == 1 ? 1.0 : -1.0;
      for (Eigen::Index j = 0; j < d; ++j) w(j) = sign * m->w[j];
    } else {  // one class only: any direction that separates it
      w = Z.rowwise().sum();
    }
    free_and_destroy_model(&m);
  }
  if (w.norm() > 0) {
    // Polish: the constraints that are (nearly) active at liblinear's w, solved exactly.
    const Eigen::RowVectorXd margins = w.transpose() * Z;
    const double low = margins.minCoeff();
    if (low > 0) {
      std::vector<Eigen::Index> support;
      for (Eigen::Index i = 0; i < n; ++i)
        if (margins(i) <= low * (1.0 + 1e-3)) support.push_back(i);
      Eigen::VectorXd exact;
      if (solve_on_support(Z, support, exact) && exact.norm() > 0) {
        const Eigen::RowVectorXd check = exact.transpose() * Z;
        if (check.minCoeff() >= 1.0 - 1e-9) w = exact;
      }
    }
    out.direction = w.normalized();
  } else {
    out.direction = Eigen::VectorXd::Zero(d);
  }
  out.margin = n > 0 ? (out.direction.transpose() * Z).minCoeff() : 0.0;
  out.separable = out.margin > 0;
  return out;
}

}  // namespace dln
