#include "dln/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dln {

const Registry& schedule_registry() {
  static const Registry registry = {
      {"constant", "the same learning rate at every step", {"optimizer.warmup_steps"}},
      {"warmup",
       "lr t / warmup_steps over the first optimizer.warmup_steps steps (t = 1, 2, ...), then "
       "lr; warmup_steps also ramps up every other schedule",
       {"optimizer.warmup_steps"}},
      {"step",
       "lr gamma^floor(t / step_size): the rate falls by optimizer.gamma every "
       "optimizer.step_size steps",
       {"optimizer.gamma", "optimizer.step_size", "optimizer.warmup_steps"}},
      {"cosine",
       "min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2 for t < T = optimizer.decay_steps "
       "(default optimizer.steps), then min_lr",
       {"optimizer.decay_steps", "optimizer.min_lr", "optimizer.warmup_steps"}},
      {"inverse_time",
       "lr / (1 + decay_rate t)",
       {"optimizer.decay_rate", "optimizer.warmup_steps"}},
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

double scheduled_rate(const ScheduleSpec& spec, double base, long t) {
  const double x = static_cast<double>(t);
  double rate = base;
  if (spec.kind == "step") {
    rate = base * std::pow(spec.gamma, static_cast<double>(t / spec.step_size));
  } else if (spec.kind == "cosine") {
    const long T = spec.decay_steps > 0 ? spec.decay_steps : spec.steps;
    rate = t >= T ? spec.min_lr
                  : spec.min_lr +
                        (base - spec.min_lr) *
                            (1.0 + std::cos(std::numbers::pi * x / static_cast<double>(T))) / 2.0;
  } else if (spec.kind == "inverse_time") {
    rate = base / (1.0 + spec.decay_rate * x);
  }
  if (t < spec.warmup_steps) rate *= (x + 1.0) / static_cast<double>(spec.warmup_steps);
  return rate;
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

double Schedule::next(long t, StepCache& cache) {
  if (spec_.kind != "ji_telgarsky") return scheduled_rate(spec_, base_, t);
  // Keep W(t) in B(R_t - 1): the radius stays while the weights are inside and grows to the
  // smallest value that holds them otherwise.
  const double m = max_layer_norm(cache);
  if (m > radius_ - 1.0) radius_ = m + 1.0;
  const double beta_r = factor_ * std::pow(radius_, 2.0 * depth_ - 2.0);
  const double rate = std::min(1.0 / beta_r, base_);
  if (t < spec_.warmup_steps)
    return rate * (static_cast<double>(t) + 1.0) / static_cast<double>(spec_.warmup_steps);
  return rate;
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
