#include "dln/optim/optimizer.hpp"

#include <algorithm>
#include <boost/numeric/odeint.hpp>
#include <cmath>
#include <stdexcept>

#include "dln/optim/adaptive.hpp"
#include "dln/optim/agd.hpp"
#include "dln/optim/e2e.hpp"

namespace dln {

void DecayedGradients::reset(const LinearNet& net, double decay) {
  decay_ = decay;
  out_.clear();
  if (decay == 0.0) return;
  for (const auto& W : net.layers) out_.emplace_back(W.rows(), W.cols());
}

const std::vector<Eigen::MatrixXd>& DecayedGradients::of(StepCache& cache, const LinearNet& net) {
  const auto& g = cache.layer_gradients();
  if (decay_ == 0.0) return g;
  for (std::size_t l = 0; l < g.size(); ++l) out_[l] = g[l] + decay_ * net.layers[l];
  return out_;
}

namespace {

// W_l <- W_l - lr dL/dW_l, every layer from the same weights; or, round robin, W_1 first, then
// W_2 with its gradient at the new W_1, and so on.
class Gd final : public Optimizer {
 public:
  Gd(bool round_robin, double decay) : round_robin_(round_robin), decay_(decay) {}
  void reset(const LinearNet& net, const Problem&) override { grads_.reset(net, decay_); }
  void step(StepCache& cache, LinearNet& net, double lr) override {
    if (round_robin_) {
      for (int l = 1; l <= net.depth(); ++l) {
        if (decay_ != 0.0)
          net.layers[l - 1] -= lr * (cache.layer_gradient(l) + decay_ * net.layers[l - 1]);
        else
          net.layers[l - 1] -= lr * cache.layer_gradient(l);
        cache.invalidate();
      }
      return;
    }
    const auto& g = grads_.of(cache, net);
    for (int l = 0; l < net.depth(); ++l) net.layers[l] -= lr * g[l];
    cache.invalidate();
  }

 private:
  bool round_robin_;
  double decay_;
  DecayedGradients grads_;
};

// Heavy ball in PyTorch's form: v <- mu v + g, W <- W - lr v; with nesterov,
// W <- W - lr (g + mu v) (docs/theory.md#optimisers).
class Momentum final : public Optimizer {
 public:
  Momentum(double mu, bool nesterov, double decay) : mu_(mu), nesterov_(nesterov), decay_(decay) {}
  void reset(const LinearNet& net, const Problem&) override {
    grads_.reset(net, decay_);
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
    const auto& g = grads_.of(cache, net);
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
  double decay_;
  DecayedGradients grads_;
  std::vector<Eigen::MatrixXd> velocity_;
};

// Steinitz Thm 2.2 on the end-to-end matrix: W_e <- W_e - lr P(W_e, dL/dW_e); the net is one
// layer holding W_e (docs/theory.md#end-to-end-update).
class EndToEnd final : public Optimizer {
 public:
  EndToEnd(int depth, double decay) : depth_(depth), decay_(decay) {}
  void reset(const LinearNet& net, const Problem&) override {
    if (net.depth() != 1) throw std::logic_error("e2e trains a one-layer (end-to-end) net");
    precond_.resize(net.output_dim(), net.input_dim(), depth_);
    update_.resize(net.output_dim(), net.input_dim());
  }
  void step(StepCache& cache, LinearNet& net, double lr) override {
    precond_.apply(net.layers[0], cache.e2e_gradient(), update_);
    // Decay omega W_l on every layer moves W_e by sum_l S_l (omega W_l) P_{l-1} = N omega W_e.
    if (decay_ != 0.0) update_ += (depth_ * decay_) * net.layers[0];
    net.layers[0] -= lr * update_;
    cache.invalidate();
  }

 private:
  int depth_;
  double decay_;
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
        decay_(spec.weight_decay),
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
        const double decay = depth_ * decay_;
        const double* w = net.layers[0].data();
        for (Eigen::Index i = 0; i < update_.size(); ++i)
          dxdt[offset++] = -update_.data()[i] - decay * w[i];
        return;
      }
      const auto& grads = cache.layer_gradients();
      for (std::size_t l = 0; l < grads.size(); ++l) {
        const double* g = grads[l].data();
        const double* w = net.layers[l].data();
        for (Eigen::Index i = 0; i < grads[l].size(); ++i) dxdt[offset++] = -g[i] - decay_ * w[i];
      }
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
  double decay_;
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
       "stochastic gradient descent: W <- W - lr g on mini-batches of optimizer.batch_size "
       "samples, a seeded permutation per epoch (or drawn with replacement)",
       {"optimizer.batch_size", "optimizer.with_replacement", "optimizer.seed"}},
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
  if (spec.kind == "gd" || spec.kind == "sgd")
    return std::make_unique<Gd>(spec.round_robin, spec.weight_decay);
  if (spec.kind == "agd") return std::make_unique<AlignedGd>(spec.weight_decay);
  if (spec.kind == "adagrad") return make_adagrad(spec.eps, spec.weight_decay);
  if (spec.kind == "adam") return make_adam(spec.beta1, spec.beta2, spec.eps, spec.weight_decay);
  if (spec.kind == "momentum")
    return std::make_unique<Momentum>(spec.momentum, false, spec.weight_decay);
  if (spec.kind == "nesterov")
    return std::make_unique<Momentum>(spec.momentum, true, spec.weight_decay);
  if (spec.kind == "e2e") return std::make_unique<EndToEnd>(spec.depth, spec.weight_decay);
  if (spec.kind == "flow") return std::make_unique<Flow>(spec);
  throw std::invalid_argument("unknown optimizer '" + spec.kind + "'");
}

}  // namespace dln
