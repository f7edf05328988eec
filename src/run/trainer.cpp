#include "dln/run/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "dln/core/hessian.hpp"
#include "dln/optim/batches.hpp"
#include "dln/optim/optimizer.hpp"
#include "dln/optim/schedule.hpp"
#include "dln/probe/probe.hpp"

namespace dln {

const char* status_name(RunStatus status) {
  switch (status) {
    case RunStatus::kCompleted:
      return "completed";
    case RunStatus::kConverged:
      return "converged";
    case RunStatus::kDiverged:
      return "diverged";
    case RunStatus::kStopped:
      return "stopped";
  }
  return "?";
}

using Clock = std::chrono::steady_clock;

struct Training::State {
  State(const Problem& problem, LinearNet& net, const TrainSpec& spec, Recorder* recorder)
      : problem(problem), net(net), spec(spec), recorder(recorder), pool(spec.threads) {}

  const Problem& problem;
  LinearNet& net;
  const TrainSpec& spec;
  Recorder* recorder;
  StepCache cache;
  WorkerPool pool;
  std::unique_ptr<ProbeSet> probes;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<Schedule> schedule;
  // Mini-batches (optimizer.batch_size < n): the samples of the step in batch_index.
  bool batched = false;
  MiniBatches batches;
  std::vector<std::int64_t> batch_index;
  RunResult result;
  StepInfo info;
  Clock::time_point start;
  double seconds_before = 0.0;  // wall time of earlier advance() calls
  double t_carry = 0.0;         // Kahan compensation of the sum of the rates
  bool continuous = false;
  long steps = 0, every = 1;
  std::size_t next_record = 0;  // into spec.record_steps

  double elapsed() const {
    return seconds_before + std::chrono::duration<double>(Clock::now() - start).count();
  }
  void record() {
    info.step = result.steps;
    info.time = elapsed();
    probes->measure(info, cache, result.final_row);
    if (recorder) {
      recorder->record(result.steps, result.final_row);
      if (recorder->stop_requested() && result.status == RunStatus::kCompleted)
        result.status = RunStatus::kStopped;
    }
  }
  bool check_stop(double loss) {
    const double limit = spec.stop.diverge_factor * result.initial_loss;
    if (!std::isfinite(loss) || (result.initial_loss > 0 && loss > limit))
      result.status = RunStatus::kDiverged;
    else if (loss < spec.stop.loss)
      result.status = RunStatus::kConverged;
    return result.status != RunStatus::kCompleted;
  }
  double next_lr() {
    if (!continuous) return schedule->next(result.steps, cache);
    const auto& at = spec.record_times;
    const auto k = static_cast<std::size_t>(result.steps);
    return at.empty() ? spec.dt : k + 1 < at.size() ? at[k + 1] - at[k] : 0.0;
  }
};

Training::Training(const Problem& problem, LinearNet& net, const TrainSpec& spec,
                   Recorder* recorder, const StateMap* resume)
    : state_(std::make_unique<State>(problem, net, spec, recorder)) {
  State& s = *state_;
  s.cache.bind(problem, net);
  s.cache.set_pool(&s.pool);
  if (trains_end_to_end(spec.optimizer)) s.cache.set_model_depth(spec.optimizer.depth);
  ProbeOptions probe_options = spec.probe_options;
  probe_options.optimizer = spec.optimizer.kind;
  s.probes = std::make_unique<ProbeSet>(spec.probes, s.cache, probe_options);
  s.optimizer = make_optimizer(spec.optimizer);
  s.optimizer->reset(net, problem);

  s.result.columns = s.probes->columns();
  s.result.final_row.assign(s.result.columns.size(), 0.0);

  s.start = Clock::now();
  // A continuous-time optimiser steps from one record time to the next.
  s.continuous = s.optimizer->continuous();
  s.steps = !s.continuous                ? spec.optimizer.steps
            : !spec.record_times.empty() ? static_cast<long>(spec.record_times.size()) - 1
                                         : std::lround(spec.optimizer.time / spec.dt);
  s.every = s.continuous ? 1 : spec.every;
  s.schedule = std::make_unique<Schedule>(spec.optimizer.schedule, spec.optimizer.lr);
  s.schedule->reset(s.cache);
  const auto& o = spec.optimizer;
  s.batched = o.batch_size > 0 && o.batch_size < problem.samples() &&
              (o.kind == "sgd" || o.kind == "momentum" || o.kind == "nesterov" ||
               o.kind == "adam" || o.kind == "adagrad");
  if (s.batched) {
    s.batches.reset(problem.samples(), o.batch_size, o.with_replacement, o.shuffle_seed);
    s.batch_index.assign(static_cast<std::size_t>(o.batch_size), 0);
    s.cache.bind_batches(o.batch_size);
  }

  if (recorder) recorder->begin(s.result.columns);  // everything is allocated by now
  if (resume) {
    // The probes and the schedule were bound at the initial weights; now the saved state.
    const StateMap& in = *resume;
    std::vector<Eigen::MatrixXd> layers = net.layers;
    load_list(in, "W", layers);
    net.layers = std::move(layers);
    s.cache.invalidate();
    s.optimizer->load(in, "opt.");
    s.schedule->load(in, "schedule.");
    s.probes->load(in);
    if (s.cache.has_hessian()) s.cache.hessian().load(in, "hessian.");
    s.result.steps = state_count(in, "steps", 0, s.steps);
    s.result.initial_loss = state_scalar(in, "initial_loss");
    if (state_count(in, "status", 0, 3) != static_cast<int>(RunStatus::kCompleted))
      throw std::runtime_error("the checkpoint is not of a run in progress");
    const auto& row =
        state_entry(in, "row", 1, static_cast<Eigen::Index>(s.result.final_row.size()));
    for (std::size_t i = 0; i < s.result.final_row.size(); ++i)
      s.result.final_row[i] = row(0, static_cast<Eigen::Index>(i));
    s.info.t = state_scalar(in, "t");
    s.t_carry = state_scalar(in, "t_carry");
    s.info.lr = state_scalar(in, "lr");
    s.info.step = s.result.steps;
    s.next_record = static_cast<std::size_t>(
        state_count(in, "next_record", 0, static_cast<long>(spec.record_steps.size())));
    s.seconds_before = state_scalar(in, "seconds");
    return;
  }
  s.result.initial_loss = s.cache.loss();
  s.check_stop(s.result.initial_loss);
  s.info.lr = s.next_lr();
  s.record();
  s.seconds_before = s.elapsed();
}

Training::~Training() = default;

long Training::advance(long n) {
  State& s = *state_;
  s.start = Clock::now();
  long taken = 0;
  // The loop: step, check the stop rules on the new loss, record when due.
  while (taken < n && !done()) {
    double batch_loss = 0.0;
    if (s.batched) {
      const auto size = s.batches.select(s.result.steps, s.batch_index.data());
      s.cache.use_batch(s.batch_index.data(), size);
      batch_loss = s.cache.loss();
    }
    s.optimizer->step(s.cache, s.net, s.info.lr);
    ++s.result.steps;
    ++taken;
    // Flow time as k dt; otherwise the sum of the rates, compensated (Kahan) so that a
    // constant rate gives t = eta * step to the last bit or so.
    if (s.continuous) {
      const auto& at = s.spec.record_times;
      s.info.t = at.empty() ? static_cast<double>(s.result.steps) * s.spec.dt
                            : at[static_cast<std::size_t>(s.result.steps)];
    } else {
      const double y = s.info.lr - s.t_carry;
      const double sum = s.info.t + y;
      s.t_carry = (sum - s.info.t) - y;
      s.info.t = sum;
    }
    s.info.lr = s.next_lr();
    // Full batch: the stop rules see every step's loss (the pass the next step reuses). With
    // mini-batches a full pass each step would cost n / B steps: they see a non-finite batch
    // loss at once, and the whole loss at records.
    bool stop = false;
    if (!s.batched) {
      stop = s.check_stop(s.cache.loss());
    } else if (!std::isfinite(batch_loss)) {
      s.result.status = RunStatus::kDiverged;
      stop = true;
    }
    // A continuous-time step goes from one record time to the next (every is 1): always due.
    bool due = s.result.steps == s.steps;
    if (s.spec.record_steps.empty()) {
      due = due || s.result.steps % s.every == 0;
    } else {
      const auto& at = s.spec.record_steps;
      while (s.next_record < at.size() && at[s.next_record] < s.result.steps) ++s.next_record;
      due = due || (s.next_record < at.size() && at[s.next_record] == s.result.steps);
    }
    if (s.batched && due && !stop) stop = s.check_stop(s.cache.loss());
    if (stop || due) s.record();
  }
  s.seconds_before = s.elapsed();
  return taken;
}

bool Training::done() const {
  return state_->result.status != RunStatus::kCompleted || state_->result.steps >= state_->steps;
}

const RunResult& Training::result() {
  State& s = *state_;
  s.result.final_loss = s.cache.loss();
  s.result.time = s.info.t;
  s.result.evaluations = s.optimizer->evaluations();
  s.result.seconds = s.seconds_before;
  return s.result;
}

RunResult Training::finish() {
  State& s = *state_;
  result();
  if (s.spec.stop.rise && s.result.status != RunStatus::kDiverged &&
      s.result.final_loss > s.result.initial_loss)
    s.result.status = RunStatus::kDiverged;
  return std::move(s.result);
}

long Training::total_steps() const {
  return state_->steps;
}

long Training::steps() const {
  return state_->result.steps;
}

void Training::save(StateMap& out) const {
  const State& s = *state_;
  save_list(out, "W", s.net.layers);
  s.optimizer->save(out, "opt.");
  s.schedule->save(out, "schedule.");
  s.probes->save(out);
  if (s.cache.has_hessian()) s.cache.hessian().save(out, "hessian.");
  put_scalar(out, "steps", static_cast<double>(s.result.steps));
  put_scalar(out, "initial_loss", s.result.initial_loss);
  put_scalar(out, "status", static_cast<double>(static_cast<int>(s.result.status)));
  out["row"] = Eigen::Map<const Eigen::MatrixXd>(
      s.result.final_row.data(), 1, static_cast<Eigen::Index>(s.result.final_row.size()));
  put_scalar(out, "t", s.info.t);
  put_scalar(out, "t_carry", s.t_carry);
  put_scalar(out, "lr", s.info.lr);
  put_scalar(out, "next_record", static_cast<double>(s.next_record));
  put_scalar(out, "seconds", s.seconds_before);
}

long expected_records(const TrainSpec& spec) {
  if (!spec.record_steps.empty()) return static_cast<long>(spec.record_steps.size()) + 1;
  if (!spec.record_times.empty()) return static_cast<long>(spec.record_times.size());
  if (make_optimizer(spec.optimizer)->continuous())
    return static_cast<long>(std::min(spec.optimizer.time / spec.dt, 1e9)) + 2;
  return spec.optimizer.steps / std::max(spec.every, 1L) + 2;
}

std::vector<long> log_record_steps(long steps, int per_decade) {
  std::vector<long> out = {0};
  if (steps >= 1) out.push_back(1);
  for (long j = 1;; ++j) {
    const double x = std::pow(10.0, static_cast<double>(j) / per_decade);
    if (!(x < static_cast<double>(steps))) break;
    const long k = std::lround(x);
    if (k > out.back() && k < steps) out.push_back(k);
  }
  if (steps > out.back()) out.push_back(steps);
  return out;
}

std::vector<double> log_record_times(double end, double start, int per_decade) {
  std::vector<double> out = {0.0};
  for (long j = 0;; ++j) {
    const double t = start * std::pow(10.0, static_cast<double>(j) / per_decade);
    if (!(t < end)) break;
    if (t > out.back()) out.push_back(t);
  }
  if (end > out.back()) out.push_back(end);
  return out;
}

std::vector<std::pair<std::string, Eigen::MatrixXd>> Training::parameters() const {
  std::vector<std::pair<std::string, Eigen::MatrixXd>> out;
  for (std::size_t l = 0; l < state_->net.layers.size(); ++l)
    out.emplace_back("W" + std::to_string(l + 1), state_->net.layers[l]);
  return out;
}

StepCache& Training::cache() {
  return state_->cache;
}

const std::vector<std::string>& Training::columns() const {
  return state_->result.columns;
}

void Training::measure(std::span<double> row) {
  State& s = *state_;
  s.info.step = s.result.steps;
  s.info.time = s.seconds_before;
  s.probes->measure(s.info, s.cache, row);
}

const StepInfo& Training::info() const {
  return state_->info;
}

void Training::weights_changed() {
  state_->cache.invalidate();
}

RunResult train(const Problem& problem, LinearNet& net, const TrainSpec& spec, Recorder* recorder) {
  Training training(problem, net, spec, recorder);
  training.advance(training.total_steps());
  return training.finish();
}

}  // namespace dln
