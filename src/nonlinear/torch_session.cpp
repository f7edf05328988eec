// The nonlinear engine's session (the plugin libdln_torch.so): an MLP of groups of factors
// (layer g's weight W_g = F_{g,k} ... F_{g,1}, k = model.overparam), ReLU or identity between
// layers, on libtorch's autograd. Formulas: docs/theory.md#relu-nets, docs/metrics.md.
//
// The step cache idea carries over: the full-batch forward and backward pass at the current
// weights is computed once (the loss the stop rules read, the gradient the next gd step takes,
// the activations and gradients the probes read) and reused until the weights change.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>

#include "dln/nonlinear/torch_engine.hpp"
#include "dln/optim/batches.hpp"
#include "dln/optim/schedule.hpp"

namespace dln {
namespace {

using Clock = std::chrono::steady_clock;

at::Tensor to_tensor(const Eigen::MatrixXd& m, at::ScalarType dtype) {
  // Eigen is column-major: the (out, in) matrix's memory is the row-major (in, out) tensor.
  return at::from_blob(const_cast<double*>(m.data()), {m.cols(), m.rows()}, at::kDouble)
      .t()
      .contiguous()
      .to(dtype);
}

Eigen::MatrixXd to_matrix(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).reshape({t.size(0), -1}).t().contiguous();
  Eigen::MatrixXd m(t.size(0), c.size(0));
  std::memcpy(m.data(), c.data_ptr<double>(), sizeof(double) * static_cast<std::size_t>(m.size()));
  return m;
}

// Samples (n, d) from the data's (d, n) column-major matrix.
at::Tensor samples_tensor(const Eigen::MatrixXd& x, at::ScalarType dtype) {
  return at::from_blob(const_cast<double*>(x.data()), {x.cols(), x.rows()}, at::kDouble)
      .to(dtype)
      .clone();
}

class TorchSession final : public Session {
 public:
  explicit TorchSession(const TorchRunArgs& a);
  long advance(long n) override;
  bool done() const override {
    return result_.status != RunStatus::kCompleted || result_.steps >= steps_;
  }
  const RunResult& result() override;
  RunResult finish() override;
  long total_steps() const override { return steps_; }
  long steps() const override { return result_.steps; }
  void save(StateMap& state) const override;
  std::vector<std::pair<std::string, Eigen::MatrixXd>> parameters() const override;

 private:
  // The full-batch pass at the current weights (cached).
  void ensure_full();
  // The net on inputs x; `pre` (if given) receives every hidden layer's pre-activation.
  at::Tensor forward(const at::Tensor& x, std::vector<at::Tensor>* pre) const;
  // forward() over many samples (without pre-activations), in chunks for convolutions.
  at::Tensor forward_all(const at::Tensor& x) const;
  // A convolutional net's samples per chunk (lenet's unfolded second convolution takes 120 kB
  // an image, lenet_tf's 1.2 MB); 0 for an mlp.
  long conv_chunk_ = 0;
  at::Tensor layer_weight(std::size_t g) const;
  at::Tensor data_loss(const at::Tensor& out, const at::Tensor& y, double scale) const;
  at::Tensor regulariser() const;
  void update(double lr);
  void columns();
  void measure(std::span<double> row);
  void record();
  bool check_stop(double loss);
  double elapsed() const {
    return seconds_before_ + std::chrono::duration<double>(Clock::now() - start_).count();
  }

  TorchRunArgs args_;  // the borrowed pointers, and copies of the settings
  const TrainSpec& spec_ = args_.train;
  at::ScalarType dtype_;
  int k_;                   // factors per layer
  std::size_t groups_ = 0;  // layers
  std::vector<LayerShape> layers_;
  std::vector<long> hidden_size_;  // units (conv: channels x height x width) per hidden layer
  std::vector<at::Tensor> factors_, biases_, params_;
  at::Tensor X_, Y_, labels_, testX_, testY_;
  std::vector<std::int64_t> class_of_;  // pattern_agreement: same target = same class
  long n_ = 0;
  bool relu_, ce_;
  long batch_ = 0;  // 0: full batch
  std::vector<std::int64_t> perm_;
  at::Tensor perm_tensor_;
  long perm_epoch_ = -1;

  // The cache of the full-batch pass.
  bool valid_ = false;
  double loss_ = 0.0, loss_data_ = 0.0, reg_ = 0.0;
  std::vector<at::Tensor> grads_;  // of params_
  std::vector<at::Tensor> pre_;    // hidden pre-activations (n, width)
  at::Tensor out_;

  // Optimiser state.
  std::vector<at::Tensor> buf1_, buf2_;
  long adam_t_ = 0;

  // Probe state.
  std::vector<at::Tensor> q0_;         // neuron_balance: the initial per-unit differences
  std::vector<at::Tensor> last_mask_;  // pattern_flips: the activation patterns at the last record
  std::vector<std::string> probes_;
  // Whether a probe reads the hidden pre-activations (else the full pass does not keep them:
  // holding 2 x n x width doubles from one step to the next costs the allocator).
  bool keep_pre_ = false;

  RunResult result_;
  StepInfo info_;
  long steps_ = 0;
  double t_carry_ = 0.0;
  std::size_t next_record_ = 0;
  Clock::time_point start_;
  double seconds_before_ = 0.0;
};

TorchSession::TorchSession(const TorchRunArgs& a)
    : args_(a),
      dtype_(a.model.dtype == "float32" ? at::kFloat : at::kDouble),
      k_(std::max(1, a.model.overparam)),
      relu_(a.model.activation == "relu"),
      ce_(a.loss == "cross_entropy") {
  if (spec_.threads > 0) at::set_num_threads(spec_.threads);
  const Dataset& data = *a.data;
  X_ = samples_tensor(data.X, dtype_);
  Y_ = samples_tensor(data.Y, dtype_);
  n_ = X_.size(0);
  if (data.has_test()) {
    testX_ = samples_tensor(data.test_X, dtype_);
    testY_ = samples_tensor(data.test_Y, dtype_);
  }
  // Classes: the index of the largest target (one-hot), or the sign of a scalar target.
  class_of_.resize(static_cast<std::size_t>(n_));
  {
    std::map<std::vector<double>, std::int64_t> ids;
    for (Eigen::Index i = 0; i < data.Y.cols(); ++i) {
      std::vector<double> y(data.Y.col(i).data(), data.Y.col(i).data() + data.Y.rows());
      class_of_[static_cast<std::size_t>(i)] =
          ids.emplace(std::move(y), static_cast<std::int64_t>(ids.size())).first->second;
    }
  }
  layers_ = a.layers;
  conv_chunk_ = a.model.arch == "mlp" ? 0 : a.model.arch == "lenet_tf" ? 100 : 500;
  groups_ = layers_.size();
  if (a.init.size() != groups_ * static_cast<std::size_t>(k_))
    throw std::runtime_error("the nonlinear engine got the wrong number of initial factors");
  for (const auto& w : a.init) factors_.push_back(to_tensor(w, dtype_).set_requires_grad(true));
  for (auto& f : factors_) params_.push_back(f);
  if (a.model.bias)
    for (std::size_t g = 0; g < groups_; ++g) {
      biases_.push_back(
          at::zeros({layers_[g].out}, at::TensorOptions().dtype(dtype_)).set_requires_grad(true));
      params_.push_back(biases_.back());
    }
  const auto& o = spec_.optimizer;
  batch_ = (o.kind == "gd" || o.batch_size <= 0 || o.batch_size >= n_) ? 0 : o.batch_size;
  if (batch_ > 0) perm_.resize(static_cast<std::size_t>(n_));
  for (const auto& p : params_) {
    buf1_.push_back(at::zeros_like(p));
    if (o.kind == "adam") buf2_.push_back(at::zeros_like(p));
  }
  steps_ = o.steps;
  probes_ = spec_.probes;
  for (const auto& p : probes_)
    keep_pre_ = keep_pre_ || p == "active" || p == "pattern_flips" || p == "pattern_agreement" ||
                p == "partial";

  // neuron_balance from the initial weights (bound again on resuming); the hidden layers' sizes.
  {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> pre;
    forward(X_.narrow(0, 0, 1), &pre);
    for (const auto& h : pre) hidden_size_.push_back(h.numel());
    for (std::size_t g = 0; g + 1 < groups_ && conv_chunk_ == 0; ++g) {
      const at::Tensor& in = factors_[(g + 1) * k_ - 1];  // rows: units' incoming weights
      const at::Tensor& out = factors_[(g + 1) * k_];     // columns: outgoing
      at::Tensor q = in.pow(2).sum(1) - out.pow(2).sum(0);
      if (a.model.bias) q = q + biases_[g].pow(2);
      q0_.push_back(q.to(at::kDouble));
    }
  }
  columns();
  result_.final_row.assign(result_.columns.size(), 0.0);
  start_ = Clock::now();
  if (a.recorder) a.recorder->begin(result_.columns);

  if (a.resume) {
    const StateMap& in = *a.resume;
    at::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const std::string key = "P." + std::to_string(i + 1);
      const at::Tensor& p = params_[i];
      const Eigen::Index rows = p.size(0), cols = p.dim() > 1 ? p.numel() / p.size(0) : 1;
      p.copy_(to_tensor(state_entry(in, key, rows, cols), dtype_).reshape(p.sizes()));
      if (!buf1_.empty())
        buf1_[i].copy_(
            to_tensor(state_entry(in, "opt.b1." + std::to_string(i + 1), rows, cols), dtype_)
                .reshape(p.sizes()));
      if (!buf2_.empty())
        buf2_[i].copy_(
            to_tensor(state_entry(in, "opt.b2." + std::to_string(i + 1), rows, cols), dtype_)
                .reshape(p.sizes()));
    }
    adam_t_ = state_count(in, "opt.t", 0, steps_);
    result_.steps = state_count(in, "steps", 0, steps_);
    adam_t_ = std::min(adam_t_, result_.steps);
    result_.initial_loss = state_scalar(in, "initial_loss");
    if (state_count(in, "status", 0, 3) != static_cast<int>(RunStatus::kCompleted))
      throw std::runtime_error("the checkpoint is not of a run in progress");
    const auto& row =
        state_entry(in, "row", 1, static_cast<Eigen::Index>(result_.final_row.size()));
    for (std::size_t i = 0; i < result_.final_row.size(); ++i)
      result_.final_row[i] = row(0, static_cast<Eigen::Index>(i));
    info_.t = state_scalar(in, "t");
    t_carry_ = state_scalar(in, "t_carry");
    info_.lr = state_scalar(in, "lr");
    info_.step = result_.steps;
    next_record_ = static_cast<std::size_t>(
        state_count(in, "next_record", 0, static_cast<long>(spec_.record_steps.size())));
    seconds_before_ = state_scalar(in, "seconds");
    for (std::size_t l = 0; l + 1 < groups_; ++l) {
      const std::string key = "mask." + std::to_string(l + 1);
      if (!in.count(key)) continue;
      const long width = hidden_size_[l];
      const auto& packed = state_entry(in, key, 1, (n_ * width + 31) / 32);
      at::Tensor mask = at::zeros({n_, width}, at::kBool);
      bool* m = mask.data_ptr<bool>();
      for (long j = 0; j < n_ * width; ++j) {
        const double word = packed(0, j / 32);
        if (!(word >= 0 && word < 4294967296.0))
          throw std::runtime_error("the checkpoint's activation patterns are malformed");
        m[j] = (static_cast<std::uint64_t>(word) >> (j % 32)) & 1U;
      }
      last_mask_.push_back(mask);
    }
    return;
  }
  ensure_full();
  result_.initial_loss = loss_;
  check_stop(loss_);
  info_.lr = scheduled_rate(spec_.optimizer.schedule, spec_.optimizer.lr, 0);
  record();
  seconds_before_ = elapsed();
}

at::Tensor TorchSession::layer_weight(std::size_t g) const {
  at::Tensor w = factors_[g * k_];
  for (int j = 1; j < k_; ++j) w = factors_[g * k_ + j].mm(w);
  return w;
}

at::Tensor TorchSession::forward(const at::Tensor& x, std::vector<at::Tensor>* pre) const {
  at::Tensor h = conv_chunk_ > 0 ? x.view({x.size(0), 1, 28, 28}) : x;
  for (std::size_t g = 0; g < groups_; ++g) {
    const LayerShape& s = layers_[g];
    const at::Tensor w = layer_weight(g);
    const at::Tensor b = biases_.empty() ? at::Tensor() : biases_[g];
    if (s.conv) {
      h = at::conv2d(h, w.view({s.out, s.in, s.kernel, s.kernel}), b, 1, s.pad);
    } else {
      if (h.dim() > 2) h = h.flatten(1);
      h = b.defined() ? at::addmm(b, h, w.t()) : h.mm(w.t());
    }
    if (g + 1 < groups_) {
      if (pre) pre->push_back(h);
      if (relu_) h = at::relu(h);
      if (s.pool) h = at::max_pool2d(h, {2, 2});
    }
  }
  return h;
}

at::Tensor TorchSession::data_loss(const at::Tensor& out, const at::Tensor& y, double scale) const {
  if (ce_) return -(y * at::log_softmax(out, 1)).sum() * scale;
  return (out - y).pow(2).sum() * (0.5 * scale);
}

at::Tensor TorchSession::regulariser() const {
  at::Tensor r = at::zeros({}, at::TensorOptions().dtype(dtype_));
  if (args_.l2 == 0.0) return r;
  for (std::size_t g = 0; g < groups_; ++g) r = r + layer_weight(g).pow(2).sum();
  return r * (0.5 * args_.l2);
}

void TorchSession::ensure_full() {
  if (valid_) return;
  // In chunks of samples for convolutions (whose unfolded inputs would otherwise take
  // gigabytes for the whole training set); the gradients and losses summed over the chunks.
  const double scale = args_.mean ? 1.0 / static_cast<double>(n_) : 1.0;
  const long chunk = conv_chunk_ > 0 ? conv_chunk_ : n_;
  std::vector<at::Tensor> outs;
  std::vector<std::vector<at::Tensor>> pres(groups_ - 1);
  loss_data_ = loss_ = 0.0;
  for (long i = 0; i < n_; i += chunk) {
    const long m = std::min(chunk, n_ - i);
    std::vector<at::Tensor> pre;
    at::Tensor out = forward(X_.narrow(0, i, m), keep_pre_ ? &pre : nullptr);
    at::Tensor data = data_loss(out, Y_.narrow(0, i, m), scale);
    at::Tensor total = data;
    if (i == 0) {  // the regulariser once
      at::Tensor reg = regulariser();
      total = data + reg;
      reg_ = reg.item<double>();
    }
    auto grads = torch::autograd::grad({total}, params_);
    if (i == 0) {
      grads_ = std::move(grads);
    } else {
      for (std::size_t p = 0; p < grads_.size(); ++p) grads_[p].add_(grads[p]);
    }
    loss_data_ += data.item<double>();
    loss_ += total.item<double>();
    outs.push_back(out.detach());
    for (std::size_t l = 0; l < pre.size(); ++l) pres[l].push_back(pre[l].detach());
  }
  out_ = outs.size() == 1 ? outs[0] : at::cat(outs);
  pre_.clear();
  if (keep_pre_)
    for (auto& p : pres) pre_.push_back(p.size() == 1 ? p[0] : at::cat(p));
  valid_ = true;
}

at::Tensor TorchSession::forward_all(const at::Tensor& x) const {
  const long chunk = conv_chunk_ > 0 ? conv_chunk_ : x.size(0);
  std::vector<at::Tensor> outs;
  for (long i = 0; i < x.size(0); i += chunk)
    outs.push_back(forward(x.narrow(0, i, std::min(chunk, x.size(0) - i)), nullptr));
  return outs.size() == 1 ? outs[0] : at::cat(outs);
}

void TorchSession::update(double lr) {
  const auto& o = spec_.optimizer;
  std::vector<at::Tensor> batch_grads;
  const std::vector<at::Tensor>* g = &grads_;
  if (batch_ > 0) {
    // Mini-batch k of the epoch's permutation (the last one of an epoch may be smaller).
    const long per_epoch = (n_ + batch_ - 1) / batch_;
    const long epoch = result_.steps / per_epoch, k = result_.steps % per_epoch;
    if (epoch != perm_epoch_) {
      epoch_permutation(args_.shuffle_seed, epoch, perm_);
      perm_tensor_ = at::from_blob(perm_.data(), {n_}, at::kLong).clone();
      perm_epoch_ = epoch;
    }
    const long size = std::min(batch_, n_ - k * batch_);
    const at::Tensor idx = perm_tensor_.narrow(0, k * batch_, size);
    const at::Tensor xb = X_.index_select(0, idx), yb = Y_.index_select(0, idx);
    const double scale = args_.mean ? 1.0 / static_cast<double>(size) : 1.0;
    at::Tensor total = data_loss(forward(xb, nullptr), yb, scale) + regulariser();
    batch_grads = torch::autograd::grad({total}, params_);
    if (!std::isfinite(total.item<double>())) result_.status = RunStatus::kDiverged;
    g = &batch_grads;
  } else {
    ensure_full();
  }
  at::NoGradGuard no_grad;
  ++adam_t_;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    at::Tensor d = (*g)[i];
    if (o.weight_decay != 0.0) d = d + o.weight_decay * params_[i];
    if (o.kind == "momentum" || o.kind == "nesterov") {
      buf1_[i].mul_(o.momentum).add_(d);
      if (o.kind == "nesterov")
        params_[i].sub_(lr * (d + o.momentum * buf1_[i]));
      else
        params_[i].sub_(lr * buf1_[i]);
    } else if (o.kind == "adam") {
      const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(adam_t_));
      const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(adam_t_));
      buf1_[i].mul_(o.beta1).add_(d, 1.0 - o.beta1);
      buf2_[i].mul_(o.beta2).addcmul_(d, d, 1.0 - o.beta2);
      params_[i].addcdiv_(buf1_[i], buf2_[i].sqrt() / std::sqrt(bc2) + o.eps, -lr / bc1);
    } else {
      params_[i].sub_(lr * d);
    }
  }
  valid_ = false;
}

bool TorchSession::check_stop(double loss) {
  const double limit = spec_.stop.diverge_factor * result_.initial_loss;
  if (!std::isfinite(loss) || (result_.initial_loss > 0 && loss > limit))
    result_.status = RunStatus::kDiverged;
  else if (loss < spec_.stop.loss)
    result_.status = RunStatus::kConverged;
  return result_.status != RunStatus::kCompleted;
}

long TorchSession::advance(long n) {
  start_ = Clock::now();
  long taken = 0;
  while (taken < n && !done()) {
    update(info_.lr);
    ++result_.steps;
    ++taken;
    const double y = info_.lr - t_carry_;
    const double sum = info_.t + y;
    t_carry_ = (sum - info_.t) - y;
    info_.t = sum;
    info_.lr = scheduled_rate(spec_.optimizer.schedule, spec_.optimizer.lr, result_.steps);
    bool due = result_.steps == steps_;
    if (spec_.record_steps.empty()) {
      due = due || result_.steps % spec_.every == 0;
    } else {
      const auto& at = spec_.record_steps;
      while (next_record_ < at.size() && at[next_record_] < result_.steps) ++next_record_;
      due = due || (next_record_ < at.size() && at[next_record_] == result_.steps);
    }
    // Full batch: the stop rules see every step's loss (the pass the next step reuses); with
    // mini-batches, the full loss at records (and a non-finite batch loss at once).
    bool stop = result_.status != RunStatus::kCompleted;
    if (batch_ == 0 || due) {
      ensure_full();
      stop = check_stop(loss_) || stop;
    }
    if (stop || due) record();
  }
  seconds_before_ = elapsed();
  return taken;
}

const RunResult& TorchSession::result() {
  ensure_full();
  result_.final_loss = loss_;
  result_.time = info_.t;
  result_.seconds = seconds_before_;
  return result_;
}

RunResult TorchSession::finish() {
  result();
  if (spec_.stop.rise && result_.status != RunStatus::kDiverged &&
      result_.final_loss > result_.initial_loss)
    result_.status = RunStatus::kDiverged;
  return std::move(result_);
}

void TorchSession::record() {
  info_.step = result_.steps;
  info_.time = elapsed();
  measure(result_.final_row);
  if (args_.recorder) {
    args_.recorder->record(result_.steps, result_.final_row);
    if (args_.recorder->stop_requested() && result_.status == RunStatus::kCompleted)
      result_.status = RunStatus::kStopped;
  }
}

void TorchSession::columns() {
  auto& c = result_.columns;
  const std::size_t m = factors_.size(), hidden = groups_ - 1;
  auto each = [&](const std::string& name, std::size_t count) {
    for (std::size_t l = 1; l <= count; ++l) c.push_back(name + "." + std::to_string(l));
  };
  for (const auto& p : probes_) {
    if (p == "loss" || p == "loss_data" || p == "reg" || p == "accuracy" || p == "test_loss" ||
        p == "test_accuracy" || p == "time" || p == "t")
      c.push_back(p);
    else if (p == "fro" || p == "spectral" || p == "grad_fro")
      each(p, m);
    else if (p == "balance" || p == "growth_mismatch")
      each(p, m - 1);
    else if (p == "neuron_balance" || p == "active" || p == "pattern_flips" ||
             p == "pattern_agreement")
      each(p, hidden);
    else if (p == "partial")
      for (std::size_t l = 1; l <= hidden; ++l)
        for (int s = 1; s <= args_.partial_samples; ++s)
          c.push_back("partial." + std::to_string(l) + "." + std::to_string(s));
    else
      throw std::runtime_error("probe '" + p + "' is not measured by the nonlinear engine");
  }
}

double to_double(const at::Tensor& t) {
  return t.item<double>();
}

// The largest singular value, as the square root of the largest eigenvalue of the smaller
// Gram matrix in double (relative error ~ machine epsilon for the largest; a third of the
// time of a full SVD).
double spectral_norm(const at::Tensor& w) {
  const at::Tensor d = w.to(at::kDouble);
  const at::Tensor gram = d.size(0) <= d.size(1) ? d.mm(d.t()) : d.t().mm(d);
  return std::sqrt(std::max(0.0, at::linalg_eigvalsh(gram).max().item<double>()));
}

// The fraction of true entries of a boolean tensor (counted as integers: no tensor of doubles).
double fraction(const at::Tensor& mask) {
  return static_cast<double>(mask.sum().item<std::int64_t>()) / static_cast<double>(mask.numel());
}

void TorchSession::measure(std::span<double> row) {
  ensure_full();
  at::NoGradGuard no_grad;
  std::size_t o = 0;
  const std::size_t m = factors_.size();
  auto accuracy = [&](const at::Tensor& out, const at::Tensor& y) {
    if (y.size(1) == 1) return fraction(out.sign() == y.sign());
    return fraction(out.argmax(1) == y.argmax(1));
  };
  // The activation patterns D_l (n, width), made once for the probes that read them.
  std::vector<at::Tensor> masks;
  auto patterns = [&]() -> const std::vector<at::Tensor>& {
    if (masks.empty())
      for (const auto& h : pre_) masks.push_back((h > 0).reshape({n_, -1}).contiguous());
    return masks;
  };
  // Time derivatives of W^T W and W W^T along -grad: -(G^T W + W^T G), -(G W^T + W G^T).
  auto gram_rate = [&](std::size_t i, bool left) {
    const at::Tensor& w = factors_[i];
    const at::Tensor& g = grads_[i];
    return left ? -(g.t().mm(w) + w.t().mm(g)) : -(g.mm(w.t()) + w.mm(g.t()));
  };
  for (const auto& p : probes_) {
    if (p == "loss") {
      row[o++] = loss_;
    } else if (p == "loss_data") {
      row[o++] = loss_data_;
    } else if (p == "reg") {
      row[o++] = reg_;
    } else if (p == "accuracy") {
      row[o++] = accuracy(out_, Y_);
    } else if (p == "test_loss" || p == "test_accuracy") {
      const at::Tensor out = forward_all(testX_);
      const double scale = args_.mean ? 1.0 / static_cast<double>(testX_.size(0)) : 1.0;
      row[o++] =
          p == "test_loss" ? to_double(data_loss(out, testY_, scale)) : accuracy(out, testY_);
    } else if (p == "time") {
      row[o++] = info_.time;
    } else if (p == "t") {
      row[o++] = info_.t;
    } else if (p == "fro") {
      for (std::size_t i = 0; i < m; ++i) row[o++] = to_double(factors_[i].norm());
    } else if (p == "spectral") {
      for (std::size_t i = 0; i < m; ++i) row[o++] = spectral_norm(factors_[i]);
    } else if (p == "grad_fro") {
      for (std::size_t i = 0; i < m; ++i) row[o++] = to_double(grads_[i].norm());
    } else if (p == "balance") {
      for (std::size_t i = 0; i + 1 < m; ++i)
        row[o++] = to_double(
            (factors_[i + 1].t().mm(factors_[i + 1]) - factors_[i].mm(factors_[i].t())).norm());
    } else if (p == "growth_mismatch") {
      for (std::size_t i = 0; i + 1 < m; ++i)
        row[o++] = to_double((gram_rate(i + 1, true) - gram_rate(i, false)).norm());
    } else if (p == "neuron_balance") {
      for (std::size_t g = 0; g + 1 < groups_; ++g) {
        const at::Tensor& in = factors_[(g + 1) * k_ - 1];
        const at::Tensor& out = factors_[(g + 1) * k_];
        at::Tensor q = in.pow(2).sum(1) - out.pow(2).sum(0);
        if (!biases_.empty()) q = q + biases_[g].pow(2);
        row[o++] = to_double((q.to(at::kDouble) - q0_[g]).abs().max());
      }
    } else if (p == "active") {
      for (const auto& mask : patterns()) row[o++] = fraction(mask);
    } else if (p == "pattern_flips") {
      const bool first = last_mask_.empty();
      for (std::size_t l = 0; l < pre_.size(); ++l) {
        const at::Tensor& mask = patterns()[l];
        if (first) {
          row[o++] = 0.0;
          last_mask_.push_back(mask);
        } else {
          row[o++] = fraction(mask != last_mask_[l]);
          last_mask_[l] = mask;
        }
      }
    } else if (p == "pattern_agreement") {
      // Same-class pairs (i, j), i < j, whose patterns at layer l are equal, over all same-class
      // pairs: the samples sorted by (class, pattern), the pairs within each run counted.
      auto pairs = [](long c) { return 0.5 * static_cast<double>(c) * static_cast<double>(c - 1); };
      std::vector<long> order(static_cast<std::size_t>(n_));
      for (const auto& mask : patterns()) {
        const auto width = static_cast<std::size_t>(mask.size(1));
        const bool* bits = mask.data_ptr<bool>();
        auto row_of = [&](long i) { return bits + static_cast<std::size_t>(i) * width; };
        auto cls = [&](long i) { return class_of_[static_cast<std::size_t>(i)]; };
        std::iota(order.begin(), order.end(), 0L);
        std::sort(order.begin(), order.end(), [&](long a, long b) {
          if (cls(a) != cls(b)) return cls(a) < cls(b);
          return std::memcmp(row_of(a), row_of(b), width) < 0;
        });
        double same = 0.0, all = 0.0;
        long same_run = 0, class_run = 0;
        for (std::size_t r = 0; r < order.size(); ++r) {
          const long i = order[r];
          const bool new_class = r == 0 || cls(i) != cls(order[r - 1]);
          const bool new_pattern =
              new_class || std::memcmp(row_of(i), row_of(order[r - 1]), width) != 0;
          if (new_class) {
            all += pairs(class_run);
            class_run = 0;
          }
          if (new_pattern) {
            same += pairs(same_run);
            same_run = 0;
          }
          ++class_run;
          ++same_run;
        }
        all += pairs(class_run);
        same += pairs(same_run);
        row[o++] = all > 0 ? same / all : NAN;
      }
    } else if (p == "partial") {
      // ||D_{l,i} W_l||_F: the rows of layer l's weight active for sample i.
      for (std::size_t l = 0; l < pre_.size(); ++l) {
        const at::Tensor rows = layer_weight(l).pow(2).sum(1);
        for (int s = 0; s < args_.partial_samples; ++s)
          row[o++] = s < n_ ? std::sqrt(to_double((rows * patterns()[l][s]).sum())) : NAN;
      }
    }
  }
}

void TorchSession::save(StateMap& out) const {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    out["P." + std::to_string(i + 1)] = to_matrix(params_[i].reshape({params_[i].size(0), -1}));
    if (!buf1_.empty())
      out["opt.b1." + std::to_string(i + 1)] =
          to_matrix(buf1_[i].reshape({params_[i].size(0), -1}));
    if (!buf2_.empty())
      out["opt.b2." + std::to_string(i + 1)] =
          to_matrix(buf2_[i].reshape({params_[i].size(0), -1}));
  }
  put_scalar(out, "opt.t", static_cast<double>(adam_t_));
  put_scalar(out, "steps", static_cast<double>(result_.steps));
  put_scalar(out, "initial_loss", result_.initial_loss);
  put_scalar(out, "status", static_cast<double>(static_cast<int>(result_.status)));
  out["row"] = Eigen::Map<const Eigen::MatrixXd>(
      result_.final_row.data(), 1, static_cast<Eigen::Index>(result_.final_row.size()));
  put_scalar(out, "t", info_.t);
  put_scalar(out, "t_carry", t_carry_);
  put_scalar(out, "lr", info_.lr);
  put_scalar(out, "next_record", static_cast<double>(next_record_));
  put_scalar(out, "seconds", seconds_before_);
  for (std::size_t l = 0; l < last_mask_.size(); ++l) {
    const at::Tensor mask = last_mask_[l].contiguous();
    const bool* m = mask.data_ptr<bool>();
    const long count = mask.numel();
    Eigen::MatrixXd packed = Eigen::MatrixXd::Zero(1, (count + 31) / 32);
    for (long j = 0; j < count; ++j)
      if (m[j]) packed(0, j / 32) += static_cast<double>(1ULL << (j % 32));
    out["mask." + std::to_string(l + 1)] = std::move(packed);
  }
}

std::vector<std::pair<std::string, Eigen::MatrixXd>> TorchSession::parameters() const {
  std::vector<std::pair<std::string, Eigen::MatrixXd>> out;
  // Layer l's factors as W<l> (one factor) or W<l>_<j> (j = 1 applied first).
  for (std::size_t g = 0; g < groups_; ++g)
    for (int j = 0; j < k_; ++j) {
      std::string name = "W" + std::to_string(g + 1);
      if (k_ > 1) name += "_" + std::to_string(j + 1);
      out.emplace_back(name, to_matrix(factors_[g * k_ + j]));
    }
  for (std::size_t g = 0; g < biases_.size(); ++g)
    out.emplace_back("b" + std::to_string(g + 1), to_matrix(biases_[g].reshape({-1, 1})));
  return out;
}

}  // namespace
}  // namespace dln

extern "C" dln::Session* dln_torch_make_session(const dln::TorchRunArgs* args) {
  return new dln::TorchSession(*args);
}
