#include "dln/optim/agd.hpp"

#include <cmath>
#include <stdexcept>

namespace dln {

std::string agd_unavailable(const std::vector<int>& widths, const Problem& problem) {
  for (std::size_t i = 1; i < widths.size(); ++i)
    if (widths[i] != 1)
      return "agd trains a scalar-output chain of width 1: model.widths = [d, 1, ..., 1]";
  if (!problem.loss().is_l2() || problem.loss().reduction() != Reduction::kMean)
    return "agd needs the loss (1/n) sum 1/2 (y^ - y)^2: loss.p = 2 with loss.reduction = "
           "\"mean\"";
  return {};
}

void AlignedGd::reset(const LinearNet& net, const Problem& problem) {
  for (int l = 1; l < net.depth(); ++l)
    if (net.layers[l].size() != 1)
      throw std::invalid_argument("agd: layers 2 .. L must be scalars");
  if (net.output_dim() != 1) throw std::invalid_argument("agd: the output must be scalar");
  const Eigen::Index d = problem.dim(), n = problem.samples();
  z_.resize(problem.uses_stats() ? d : n);
  grad_.resize(d);
  resid_.resize(n);
  carried_ = false;
  yy_ = problem.data().Y.squaredNorm();
}

void AlignedGd::step(StepCache& cache, LinearNet& net, double lr) {
  const Problem& p = cache.problem();
  const bool stats = p.uses_stats();
  const Dataset& data = p.data();
  const int L = net.depth();
  const double n = static_cast<double>(p.samples());
  const double c = p.loss().scale(p.samples());
  Eigen::MatrixXd& w = net.layers[0];
  // w as a contiguous row, so that the products below are plain GEMVs without temporaries.
  Eigen::Map<Eigen::RowVectorXd> wv(w.data(), w.cols());
  double a = 1.0;
  for (int l = 1; l < L; ++l) a *= net.layers[l](0, 0);

  // z = W_e M at Theta_t, carried over from the previous step.
  if (!carried_) {
    if (stats) {
      cache.sigma_pass().times(w, Eigen::Map<Eigen::MatrixXd>(z_.data(), 1, z_.size()));
    } else {
      cache.data_pass().times(w, Eigen::Map<Eigen::MatrixXd>(z_.data(), 1, z_.size()));
    }
    z_ *= a;
    carried_ = true;
  }
  // Layer 1 with rate eta / a^2: dL/dw = a dL/dW_e.
  if (stats) {
    grad_ = z_ - p.sigma_yx();
    grad_ *= c * n;  // dL/dW_e = c n (W_e Sigma_xx - Sigma_yx)
  } else {
    resid_ = z_ - data.Y;
    cache.data_pass().times_transposed(
        Eigen::Map<const Eigen::MatrixXd>(resid_.data(), 1, resid_.size()),
        Eigen::Map<Eigen::MatrixXd>(grad_.data(), 1, grad_.size()));
    grad_ *= c;
  }
  // With decay, dL/dw + omega w at the same rate eta / a^2.
  if (decay_ != 0.0) wv *= 1.0 - lr * decay_ / (a * a);
  wv -= (lr / a) * grad_;

  // Y^ at Theta_{t + 1/L}: q = |Y^|^2, r = <Y^, Y>.
  double q = 0.0, r = 0.0;
  if (stats) {
    cache.sigma_pass().times(w, Eigen::Map<Eigen::MatrixXd>(z_.data(), 1, z_.size()));
    z_ *= a;
    q = n * a * z_.dot(wv);
    r = n * a * p.sigma_yx().row(0).dot(wv);
  } else {
    cache.data_pass().times(w, Eigen::Map<Eigen::MatrixXd>(z_.data(), 1, z_.size()));
    z_ *= a;
    q = z_.squaredNorm();
    r = z_.dot(data.Y.row(0));
  }
  if (on_substep) on_substep(1, net);

  // Layers 2 .. L: theta <- theta - theta^2/2 * c (q - r) / theta = theta (1 + c (r - q) / 2)
  // (with decay, minus theta^2/2 omega theta); Y^ scales by the same factor f.
  double scale = 1.0;
  for (int l = 2; l <= L; ++l) {
    const double theta = net.layers[l - 1](0, 0);
    const double f = 1.0 + 0.5 * c * (r - q) - 0.5 * decay_ * theta * theta;
    net.layers[l - 1](0, 0) *= f;
    scale *= f;
    q *= f * f;
    r *= f;
    if (on_substep) on_substep(l, net);
  }
  z_ *= scale;
  cache.invalidate();
  // Stats path: L = c/2 (|Y^|^2 - 2 <Y^, Y> + |Y|^2) = c/2 (q - 2 r + |Y|^2) in O(1), where the
  // cancellation costs at most ~1e-12 relative (the loss is above 1e-4 of the terms' size);
  // below that the cache's cancellation-free form (a product with the factor of Sigma_xx).
  if (stats) {
    const double loss = 0.5 * c * (q - 2.0 * r + yy_);
    if (loss > 1e-4 * 0.5 * c * (q + 2.0 * std::abs(r) + yy_)) cache.set_loss(loss);
  }
  // Data path: the loss at Theta_{t+1} from the carried predictions, without a pass over X.
  if (!stats) {
    resid_ = z_ - data.Y;
    cache.set_loss(0.5 * c * resid_.squaredNorm());
  }
}

void AlignedGd::save(StateMap& state, const std::string& prefix) const {
  state[prefix + "z"] = z_;
  state[prefix + "grad"] = grad_;
  state[prefix + "resid"] = resid_;
  put_scalar(state, prefix + "carried", carried_ ? 1.0 : 0.0);
}

void AlignedGd::load(const StateMap& state, const std::string& prefix) {
  z_ = state_entry(state, prefix + "z", 1, z_.size());
  grad_ = state_entry(state, prefix + "grad", 1, grad_.size());
  resid_ = state_entry(state, prefix + "resid", resid_.rows(), resid_.cols());
  carried_ = state_scalar(state, prefix + "carried") != 0.0;
}

}  // namespace dln
