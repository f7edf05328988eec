#include "dln/optim/optimizer.hpp"

#include <algorithm>
#include <boost/numeric/odeint.hpp>
#include <cmath>
#include <stdexcept>

#include "dln/optim/adaptive.hpp"
#include "dln/optim/agd.hpp"
#include "dln/optim/e2e.hpp"

namespace dln {
namespace {

// W_l <- W_l - lr dL/dW_l, every layer from the same weights; or, round robin, W_1 first, then
// W_2 with its gradient at the new W_1, and so on.
class Gd final : public Optimizer {
 public:
  explicit Gd(bool round_robin) : round_robin_(round_robin) {}
  void reset(const LinearNet&, const Problem&) override {}
  void step(StepCache& cache, LinearNet& net, double lr) override {
    if (round_robin_) {
      for (int l = 1; l <= net.depth(); ++l) {
        net.layers[l - 1] -= lr * cache.layer_gradient(l);
        cache.invalidate();
      }
      return;
    }
    const auto& g = cache.layer_gradients();
    for (int l = 0; l < net.depth(); ++l) net.layers[l] -= lr * g[l];
    cache.invalidate();
  }

 private:
  bool round_robin_;
};

// Heavy ball in PyTorch's form: v <- mu v + g, W <- W - lr v; with nesterov,
// W <- W - lr (g + mu v) (docs/theory.md#optimisers).
class Momentum final : public Optimizer {
 public:
  Momentum(double mu, bool nesterov) : mu_(mu), nesterov_(nesterov) {}
  void reset(const LinearNet& net, const Problem&) override {
    velocity_.clear();
    for (const auto& W : net.layers) velocity_.push_back(Eigen::MatrixXd::Zero(W.rows(), W.cols()));
  }
  void save(StateMap& state, const std::string& prefix) const override {
    save_list(state, prefix + "velocity", velocity_);
  }
  void load(const StateMap& state, const std::string& prefix) override {
    load_list(state, prefix + "velocity", velocity_);
  }
  void step(StepCache& cache, LinearNet& net, double lr) override {
    const auto& g = cache.layer_gradients();
    for (int l = 0; l < net.depth(); ++l) {
      velocity_[l] = mu_ * velocity_[l] + g[l];
      if (nesterov_)
        net.layers[l] -= lr * (g[l] + mu_ * velocity_[l]);
      else
        net.layers[l] -= lr * velocity_[l];
    }
    cache.invalidate();
  }

 private:
  double mu_;
  bool nesterov_;
  std::vector<Eigen::MatrixXd> velocity_;
};

// Steinitz Thm 2.2 on the end-to-end matrix: W_e <- W_e - lr P(W_e, dL/dW_e); the net is one
// layer holding W_e (docs/theory.md#end-to-end-update).
class EndToEnd final : public Optimizer {
 public:
  explicit EndToEnd(int depth) : depth_(depth) {}
  void reset(const LinearNet& net, const Problem&) override {
    if (net.depth() != 1) throw std::logic_error("e2e trains a one-layer (end-to-end) net");
    precond_.resize(net.output_dim(), net.input_dim(), depth_);
    update_.resize(net.output_dim(), net.input_dim());
  }
  void step(StepCache& cache, LinearNet& net, double lr) override {
    precond_.apply(net.layers[0], cache.e2e_gradient(), update_);
    net.layers[0] -= lr * update_;
    cache.invalidate();
  }

 private:
  int depth_;
  EndToEndPreconditioner precond_;
  Eigen::MatrixXd update_;
};

// Gradient flow dW_l/dt = -dL/dW_l (or dW_e/dt = -P(W_e, dL/dW_e)), integrated by the
// Dormand-Prince 5(4) pair with error control; step(dt) integrates over [t, t + dt].
class Flow final : public Optimizer {
 public:
  using State = std::vector<double>;
  explicit Flow(const OptimizerSpec& spec)
      : e2e_(spec.dynamics == "e2e"),
        depth_(spec.depth),
        stepper_(boost::numeric::odeint::make_controlled(
            spec.abs_tol, spec.rel_tol, boost::numeric::odeint::runge_kutta_dopri5<State>())) {}

  bool continuous() const override { return true; }
  long evaluations() const override { return evaluations_; }

  void reset(const LinearNet& net, const Problem&) override {
    if (e2e_) {
      if (net.depth() != 1) throw std::logic_error("e2e flow trains a one-layer net");
      precond_.resize(net.output_dim(), net.input_dim(), depth_);
      update_.resize(net.output_dim(), net.input_dim());
    }
    std::size_t size = 0;
    for (const auto& W : net.layers) size += static_cast<std::size_t>(W.size());
    state_.assign(size, 0.0);
    before_.assign(size, 0.0);
    // The solver's buffers (the controller's and the Dormand-Prince stages), sized here.
    stepper_.adjust_size(state_);
    stepper_.stepper().adjust_size(state_);
    evaluations_ = 0;
    h_ = 0.0;
  }
  // The solver's step size and work; its first-same-as-last derivative is not kept: the first
  // step after load() evaluates it again at the same state (the same numbers), uncounted.
  void save(StateMap& state, const std::string& prefix) const override {
    put_scalar(state, prefix + "h", h_);
    put_scalar(state, prefix + "evaluations", static_cast<double>(evaluations_));
  }
  void load(const StateMap& state, const std::string& prefix) override {
    h_ = state_scalar(state, prefix + "h");
    evaluations_ =
        state_count(state, prefix + "evaluations", 0, std::numeric_limits<long>::max() / 2);
    stepper_.reset();
    uncounted_ = 1;
  }

  void step(StepCache& cache, LinearNet& net, double dt) override {
    namespace odeint = boost::numeric::odeint;
    pack(net);
    auto rhs = [&](const State& x, State& dxdt, double /*t*/) {
      unpack(x, net);
      cache.invalidate();
      if (uncounted_ > 0)
        --uncounted_;
      else
        ++evaluations_;
      std::size_t offset = 0;
      if (e2e_) {
        precond_.apply(net.layers[0], cache.e2e_gradient(), update_);
        for (Eigen::Index i = 0; i < update_.size(); ++i) dxdt[offset++] = -update_.data()[i];
        return;
      }
      for (const auto& g : cache.layer_gradients())
        for (Eigen::Index i = 0; i < g.size(); ++i) dxdt[offset++] = -g.data()[i];
    };
    // Adaptive steps over [0, dt], the last one shortened to end exactly at dt; the step size
    // carries over from one interval to the next.
    if (h_ <= 0) h_ = dt;
    double t = 0.0;
    while (t < dt) {
      const double remaining = dt - t;
      const bool last = h_ >= remaining;
      double h = last ? remaining : h_;
      std::copy(state_.begin(), state_.end(), before_.begin());
      const double t_before = t, tried = h;
      const bool accepted = stepper_.try_step(rhs, state_, t, h) == odeint::success;
      // A trial step so long that the stages overflow gives a NaN error estimate, which the
      // controller does not reject: retry shorter, unless the flow itself leaves the doubles.
      if (accepted && tried > dt * 1e-12 &&
          !std::all_of(state_.begin(), state_.end(), [](double v) { return std::isfinite(v); })) {
        std::copy(before_.begin(), before_.end(), state_.begin());
        stepper_.reset();  // the first-same-as-last derivative is that of the overflowed state
        t = t_before;
        h_ = tried / 8;
        continue;
      }
      if (accepted) {
        if (last) {
          t = dt;
          if (h > h_) h_ = h;
        } else {
          h_ = h;
        }
      } else {
        h_ = h;  // rejected: retry with the smaller step the controller chose
      }
    }
    unpack(state_, net);
    cache.invalidate();
  }

 private:
  void pack(const LinearNet& net) {
    std::size_t offset = 0;
    for (const auto& W : net.layers)
      for (Eigen::Index i = 0; i < W.size(); ++i) state_[offset++] = W.data()[i];
  }
  static void unpack(const State& x, LinearNet& net) {
    std::size_t offset = 0;
    for (auto& W : net.layers)
      for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = x[offset++];
  }

  using Stepper = decltype(boost::numeric::odeint::make_controlled(
      1.0, 1.0, boost::numeric::odeint::runge_kutta_dopri5<State>()));

  bool e2e_;
  int depth_;
  Stepper stepper_;
  State state_, before_;
  double h_ = 0.0;
  long evaluations_ = 0;
  int uncounted_ = 0;  // evaluations after load() that the uninterrupted run did not make
  EndToEndPreconditioner precond_;
  Eigen::MatrixXd update_;
};

}  // namespace

const Registry& optimizer_registry() {
  static const Registry registry = {
      {"gd",
       "full-batch gradient descent, every layer at once (or one at a time: round_robin)",
       {"optimizer.round_robin"}},
      {"sgd",
       "stochastic gradient descent on mini-batches of optimizer.batch_size samples, a seeded "
       "permutation per epoch (torch engine)",
       {}},
      {"momentum", "heavy-ball momentum: v <- mu v + g, W <- W - lr v", {"optimizer.momentum"}},
      {"nesterov",
       "Nesterov momentum: v <- mu v + g, W <- W - lr (g + mu v)",
       {"optimizer.momentum"}},
      {"e2e",
       "the end-to-end update of Arora et al. on W_e alone: W_e <- W_e - lr sum_i "
       "(W_e W_e^T)^{(N-i)/N} grad (W_e^T W_e)^{(i-1)/N}",
       {"optimizer.depth"}},
      {"flow",
       "gradient flow of the layers (or of the end-to-end ODE) by adaptive Dormand-Prince, "
       "recorded every record.every units of time",
       {"optimizer.dynamics", "optimizer.time", "optimizer.abs_tol", "optimizer.rel_tol",
        "optimizer.depth"}},
      {"adagrad",
       "Adagrad (PyTorch's form): s <- s + g^2, W <- W - lr g / (sqrt(s) + eps)",
       {"optimizer.eps"}},
      {"adam",
       "Adam (PyTorch's form, bias-corrected moments)",
       {"optimizer.beta1", "optimizer.beta2", "optimizer.eps"}},
      {"agd",
       "Aligned Gradient Descent on d -> 1 -> ... -> 1 chains: W_1 at rate lr / (theta_2 ... "
       "theta_L)^2, then each scalar layer at rate theta_l^2 / 2, round robin",
       {}},
  };
  return registry;
}

bool trains_end_to_end(const OptimizerSpec& spec) {
  return spec.kind == "e2e" || (spec.kind == "flow" && spec.dynamics == "e2e");
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec) {
  if (spec.kind == "gd") return std::make_unique<Gd>(spec.round_robin);
  if (spec.kind == "agd") return std::make_unique<AlignedGd>();
  if (spec.kind == "adagrad") return make_adagrad(spec.eps);
  if (spec.kind == "adam") return make_adam(spec.beta1, spec.beta2, spec.eps);
  if (spec.kind == "momentum") return std::make_unique<Momentum>(spec.momentum, false);
  if (spec.kind == "nesterov") return std::make_unique<Momentum>(spec.momentum, true);
  if (spec.kind == "e2e") return std::make_unique<EndToEnd>(spec.depth);
  if (spec.kind == "flow") return std::make_unique<Flow>(spec);
  throw std::invalid_argument("unknown optimizer '" + spec.kind + "'");
}

}  // namespace dln
