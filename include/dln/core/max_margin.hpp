// The max-margin direction of labelled data without bias: u = argmax_{|u| = 1} min_i y_i <u, x_i>
// and the margin gamma it attains (the hard-margin SVM through the origin), for the alignment
// probes of margin losses (docs/theory.md#max-margin).
#pragma once

#include <Eigen/Core>

namespace dln {

struct MaxMargin {
  Eigen::VectorXd direction;  // unit u (d)
  double margin = 0.0;        // gamma = min_i y_i <u, x_i>; <= 0 when not separable
  bool separable = false;
};

// X is d x n, y holds n labels -1/+1. liblinear's dual coordinate descent (hinge loss, no bias,
// C large) finds the support vectors; the direction is then solved exactly on them.
MaxMargin max_margin(const Eigen::MatrixXd& X, const Eigen::RowVectorXd& y);

}  // namespace dln
