#include "dln/optim/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace dln {

const Registry& schedule_registry() {
  static const Registry registry = {
      {"constant", "the same learning rate at every step", {}},
      {"ji_telgarsky",
       "Ji & Telgarsky's Assumption 3.5 for margin losses: eta_t = min(1 / beta(R_t), lr), "
       "beta(R) = 2 L^2 R^{2L-2} (beta_l + G_l), R_t - 1 a bound on every ||W_k(t)||_F",
       {}},
  };
  return registry;
}

std::string schedule_unavailable(const ScheduleSpec& spec, const Problem& problem) {
  if (spec.kind == "ji_telgarsky" && !problem.loss().is_margin())
    return "schedule 'ji_telgarsky' is for the margin losses (loss.kind = logistic or "
           "exponential)";
  return {};
}

double Schedule::max_layer_norm(const StepCache& cache) const {
  double m = 0.0;
  for (const auto& W : cache.net().layers) m = std::max(m, W.norm());
  return m;
}

void Schedule::reset(StepCache& cache) {
  if (spec_.kind != "ji_telgarsky") return;
  const Problem& p = cache.problem();
  depth_ = cache.model_depth();
  // The loss's smoothness and Lipschitz constants beta_l, G_l: logistic 1/4 and 1; exponential
  // on the sublevel set of the initial risk R_0 (which GD at these rates does not leave), where
  // every term e^{-m_i} <= R_0 / c: both R_0 / c.
  double beta = 0.25, lipschitz = 1.0;
  const double c = p.loss().scale(p.samples());
  if (p.loss().kind() == LossKind::kExponential) beta = lipschitz = cache.loss() / c;
  // With inputs of norm above 1 the risk's constants grow by max_i ||x_i||^2; c n turns the
  // per-sample constants into the risk's (1 for the mean).
  const double x2 = p.data().X.colwise().squaredNorm().maxCoeff();
  const double scale = std::max(1.0, x2) * c * static_cast<double>(p.samples());
  factor_ = 2.0 * depth_ * depth_ * (beta + lipschitz) * scale;
  radius_ = max_layer_norm(cache) + 1.0;
}

double Schedule::next(long /*t*/, StepCache& cache) {
  if (spec_.kind != "ji_telgarsky") return base_;
  // Keep W(t) in B(R_t - 1): the radius stays while the weights are inside and grows to the
  // smallest value that holds them otherwise.
  const double m = max_layer_norm(cache);
  if (m > radius_ - 1.0) radius_ = m + 1.0;
  const double beta_r = factor_ * std::pow(radius_, 2.0 * depth_ - 2.0);
  return std::min(1.0 / beta_r, base_);
}

void Schedule::save(StateMap& state, const std::string& prefix) const {
  put_scalar(state, prefix + "radius", radius_);
  put_scalar(state, prefix + "factor", factor_);
}

void Schedule::load(const StateMap& state, const std::string& prefix) {
  radius_ = state_scalar(state, prefix + "radius");
  factor_ = state_scalar(state, prefix + "factor");
}

}  // namespace dln
