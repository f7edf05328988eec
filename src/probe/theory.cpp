#include "dln/probe/theory.hpp"

#include <array>
#include <boost/numeric/odeint.hpp>
#include <cmath>

#include "dln/optim/e2e.hpp"

namespace dln {
namespace {

// ||dW_e(actual GD step) - dW_e(end-to-end equation)||_F / ||dW_e(actual)||_F at the current
// weights and learning rate: actual = prod_l (W_l - eta g_l) - W_e, predicted = -eta P(W_e, G).
class E2eDev final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("e2e_dev");
  }
  void bind(const StepCache& c) override {
    const auto& n = c.net().widths();
    precond_.resize(n.back(), n.front(), c.model_depth());
    stepped_.clear();
    for (const auto& W : c.net().layers) stepped_.emplace_back(W.rows(), W.cols());
    product_.resize(n.back(), n.front());
    scratch_.resize(n.back(), n.front());
    predicted_.resize(n.back(), n.front());
    partial_.clear();
    for (std::size_t l = 1; l < n.size(); ++l) partial_.emplace_back(n[l], n.front());
  }
  void measure(const StepInfo& info, StepCache& c, std::span<double> out) override {
    const auto& g = c.layer_gradients();
    const auto& W = c.net().layers;
    for (std::size_t l = 0; l < W.size(); ++l) stepped_[l] = W[l] - info.lr * g[l];
    partial_[0] = stepped_[0];
    for (std::size_t l = 1; l < W.size(); ++l)
      partial_[l].noalias() = stepped_[l] * partial_[l - 1];
    product_ = partial_.back() - c.end_to_end();  // the actual change of W_e
    precond_.apply(c.end_to_end(), c.e2e_gradient(), predicted_);
    scratch_ = product_ + info.lr * predicted_;
    const double actual = product_.norm();
    out[0] = actual > 0 ? scratch_.norm() / actual : 0.0;
  }

 private:
  EndToEndPreconditioner precond_;
  std::vector<Eigen::MatrixXd> stepped_, partial_;
  Eigen::MatrixXd product_, scratch_, predicted_;
};

// ||C_l(t) - C_l(0)||_F for each adjacent pair.
class BalanceDrift final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int l = 1; l < net.depth(); ++l) out.push_back("balance_drift." + std::to_string(l));
  }
  void bind(const StepCache& c) override {
    const auto& n = c.net().widths();
    initial_.clear();
    current_.clear();
    for (int l = 1; l < c.net().depth(); ++l) {
      initial_.emplace_back(n[l], n[l]);
      current_.emplace_back(n[l], n[l]);
      c.net().balancedness(l - 1, initial_.back());
    }
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    for (std::size_t l = 0; l < current_.size(); ++l) {
      c.net().balancedness(static_cast<int>(l), current_[l]);
      current_[l] -= initial_[l];
      out[l] = current_[l].norm();
    }
  }

 private:
  std::vector<Eigen::MatrixXd> initial_, current_;
};

// max_{l,k} | ||W_l||_F - ||W_k||_F |.
class NormGap final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("norm_gap");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    double lo = INFINITY, hi = 0.0;
    for (const auto& W : c.net().layers) {
      const double f = W.norm();
      lo = std::min(lo, f);
      hi = std::max(hi, f);
    }
    out[0] = hi - lo;
  }
};

// Basu Lemma 2 / Cor. 2.1 made explicit: ||W_k||^2 - ||W_l||^2 = sum_j tr C_j is conserved by
// gradient flow, and |a - b| <= sqrt(|a^2 - b^2|), so the gap of every pair stays below
// max_{l<k} sqrt(| ||W_k(0)||^2 - ||W_l(0)||^2 |) (docs/theory.md#norm-gap).
class NormGapBound final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("norm_gap_bound");
  }
  void bind(const StepCache& c) override {
    bound_ = 0.0;
    for (const auto& a : c.net().layers)
      for (const auto& b : c.net().layers)
        bound_ = std::max(bound_, std::sqrt(std::abs(a.squaredNorm() - b.squaredNorm())));
  }
  void measure(const StepInfo&, StepCache&, std::span<double> out) override { out[0] = bound_; }

 private:
  double bound_ = 0.0;
};

// Integrates a scalar ODE du/dt = f(u) from t0 to t1 with an error-controlled Dormand-Prince
// step; a solution that blows up (|u| > 1e150, or a step budget spent) becomes infinity.
template <typename F>
double integrate_scalar(F&& f, double u, double t0, double t1) {
  namespace odeint = boost::numeric::odeint;
  if (!(t1 > t0) || !std::isfinite(u)) return u;
  using State = std::array<double, 1>;
  auto stepper = odeint::make_controlled(1e-12, 1e-10, odeint::runge_kutta_dopri5<State>());
  auto rhs = [&](const State& x, State& dx, double) { dx[0] = f(x[0]); };
  State x{u};
  double t = t0, h = (t1 - t0) / 10.0;
  for (int budget = 100000; t < t1; --budget) {
    if (budget == 0 || !std::isfinite(x[0]) || std::abs(x[0]) > 1e150) return INFINITY;
    const bool last = h >= t1 - t;
    double step = last ? t1 - t : h;
    if (stepper.try_step(rhs, x, t, step) == odeint::success) {
      if (last) t = t1;
      if (!last || step > h) h = step;
    } else {
      h = step;
    }
  }
  return x[0];
}

// Sigma_yx (k x d) has min(k, d) singular triplets.
int mode_count(const LinearNet& net) {
  return std::min(net.input_dim(), net.output_dim());
}

// u_i^T W_e v_i for the i-th singular pair of Sigma_yx; wv is a k-vector buffer.
double mode_strength(StepCache& c, int i, Eigen::VectorXd& wv) {
  wv.noalias() = c.end_to_end() * c.problem().mode_v().col(i);
  return c.problem().mode_u().col(i).dot(wv);
}

// mode.i = u_i^T W_e v_i for the singular vectors (u_i, v_i) of Sigma_yx.
class Mode final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int i = 1; i <= mode_count(net); ++i) out.push_back("mode." + std::to_string(i));
  }
  void bind(const StepCache& c) override {
    modes_ = mode_count(c.net());
    wv_.resize(c.net().output_dim());
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    for (int i = 0; i < modes_; ++i) out[i] = mode_strength(c, i, wv_);
  }

 private:
  int modes_ = 0;
  Eigen::VectorXd wv_;
};

// Saxe's prediction for each mode: with whitened inputs and decoupled, balanced layers, the
// strength u of a mode with singular value s follows du/dt = a L |u|^{2-2/L} (s - u)
// (a = c n, the loss scale times n); for L = 2 the closed form
// u(t) = s / (1 + (s/u_0 - 1) e^{-2 a s t}) (docs/theory.md#saxe-modes).
class ModeTheory final : public Probe {
 public:
  void columns(const LinearNet& net, std::vector<std::string>& out) const override {
    for (int i = 1; i <= mode_count(net); ++i) out.push_back("mode_theory." + std::to_string(i));
  }
  void bind(const StepCache& c) override {
    modes_ = mode_count(c.net());
    depth_ = c.model_depth();
    scale_ = c.problem().loss().scale(c.problem().samples()) *
             static_cast<double>(c.problem().samples());
    initialised_ = false;
    u0_.assign(modes_, 0.0);
    u_.assign(modes_, 0.0);
    wv_.resize(c.net().output_dim());
    t_ = 0.0;
  }
  void measure(const StepInfo& info, StepCache& c, std::span<double> out) override {
    const Problem& p = c.problem();
    if (!initialised_) {
      for (int i = 0; i < modes_; ++i) u0_[i] = u_[i] = mode_strength(c, i, wv_);
      initialised_ = true;
      t_ = info.t;
    }
    for (int i = 0; i < modes_; ++i) {
      const double s = p.mode_s()(i);
      if (depth_ == 2 && u0_[i] != 0.0) {
        out[i] = s / (1.0 + (s / u0_[i] - 1.0) * std::exp(-2.0 * scale_ * s * info.t));
        continue;
      }
      // Other depths: integrate the scalar ODE from the last record time.
      const double L = depth_, a = scale_;
      u_[i] = integrate_scalar(
          [&](double x) { return a * L * std::pow(std::abs(x), 2.0 - 2.0 / L) * (s - x); }, u_[i],
          t_, info.t);
      out[i] = u_[i];
    }
    t_ = info.t;
  }
  void save(StateMap& state, const std::string& prefix) const override {
    Eigen::MatrixXd m(2, modes_);
    for (int i = 0; i < modes_; ++i) m(0, i) = u0_[i], m(1, i) = u_[i];
    state[prefix + "u"] = m;
    put_scalar(state, prefix + "t", t_);
    put_scalar(state, prefix + "initialised", initialised_ ? 1.0 : 0.0);
  }
  void load(const StateMap& state, const std::string& prefix) override {
    const auto& m = state_entry(state, prefix + "u", 2, modes_);
    for (int i = 0; i < modes_; ++i) u0_[i] = m(0, i), u_[i] = m(1, i);
    t_ = state_scalar(state, prefix + "t");
    initialised_ = state_scalar(state, prefix + "initialised") != 0.0;
  }

 private:
  int modes_ = 0, depth_ = 1;
  double scale_ = 1.0, t_ = 0.0;
  bool initialised_ = false;
  std::vector<double> u0_, u_;
  Eigen::VectorXd wv_;
};

// Basu et al.'s Theorem 3: U = (||W_l||_F + Delta)^L with Delta the largest gap between layer
// norms at the start; dln takes the smallest layer, U(t) = (min_l ||W_l(t)||_F + Delta_0)^L,
// which bounds the product of the layer norms while the gaps stay within Delta_0.
double basu_u(const LinearNet& net, double delta0) {
  double lo = INFINITY;
  for (const auto& W : net.layers) lo = std::min(lo, W.norm());
  return std::pow(lo + delta0, net.depth());
}

double initial_gap(const LinearNet& net) {
  double lo = INFINITY, hi = 0.0;
  for (const auto& W : net.layers) lo = std::min(lo, W.norm()), hi = std::max(hi, W.norm());
  return hi - lo;
}

class BasuU final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("basu_U");
  }
  void bind(const StepCache& c) override { delta0_ = initial_gap(c.net()); }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    out[0] = basu_u(c.net(), delta0_);
  }

 private:
  double delta0_ = 0.0;
};

// The growth bound (17) integrated as an equality from U(0): in continuous time t,
// dU/dt = a L U^{2(1-1/L)} (M - kappa_2 U), M = (2 kappa_1 + 1) ||Sigma_yx||_F
// (docs/theory.md#basu-growth-bound). kappa_1, kappa_2 come from the config.
class BasuBound final : public Probe {
 public:
  BasuBound(double kappa1, double kappa2) : kappa1_(kappa1), kappa2_(kappa2) {}
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("basu_bound");
  }
  void bind(const StepCache& c) override {
    u_[0] = basu_u(c.net(), initial_gap(c.net()));
    t_ = 0.0;
    depth_ = c.net().depth();
    scale_ = c.problem().loss().scale(c.problem().samples()) *
             static_cast<double>(c.problem().samples());
    m_ = (2.0 * kappa1_ + 1.0) * c.problem().sigma_yx().norm();
  }
  void measure(const StepInfo& info, StepCache&, std::span<double> out) override {
    const double L = depth_, a = scale_, M = m_, k2 = kappa2_;
    u_[0] = integrate_scalar(
        [&](double x) {
          return a * L * std::pow(std::max(x, 0.0), 2.0 * (1.0 - 1.0 / L)) * (M - k2 * x);
        },
        u_[0], t_, info.t);
    t_ = info.t;
    out[0] = u_[0];
  }
  void save(StateMap& state, const std::string& prefix) const override {
    put_scalar(state, prefix + "u", u_[0]);
    put_scalar(state, prefix + "t", t_);
  }
  void load(const StateMap& state, const std::string& prefix) override {
    u_[0] = state_scalar(state, prefix + "u");
    t_ = state_scalar(state, prefix + "t");
  }

 private:
  double kappa1_, kappa2_;
  std::array<double, 1> u_{0.0};
  double t_ = 0.0, scale_ = 1.0, m_ = 0.0;
  int depth_ = 1;
};

}  // namespace

std::unique_ptr<Probe> make_basu_bound(double kappa1, double kappa2) {
  return std::make_unique<BasuBound>(kappa1, kappa2);
}

std::unique_ptr<Probe> make_theory_probe(const std::string& name) {
  if (name == "e2e_dev") return std::make_unique<E2eDev>();
  if (name == "balance_drift") return std::make_unique<BalanceDrift>();
  if (name == "norm_gap") return std::make_unique<NormGap>();
  if (name == "norm_gap_bound") return std::make_unique<NormGapBound>();
  if (name == "mode") return std::make_unique<Mode>();
  if (name == "mode_theory") return std::make_unique<ModeTheory>();
  if (name == "basu_U") return std::make_unique<BasuU>();
  return nullptr;
}

}  // namespace dln
