#include "dln/run/trainer.hpp"

#include <chrono>
#include <cmath>

#include "dln/optim/optimizer.hpp"
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
  }
  return "?";
}

RunResult train(const Problem& problem, LinearNet& net, const TrainSpec& spec, Recorder* recorder) {
  StepCache cache;
  cache.bind(problem, net);
  WorkerPool pool(spec.threads);
  cache.set_pool(&pool);
  if (trains_end_to_end(spec.optimizer)) cache.set_model_depth(spec.optimizer.depth);
  ProbeOptions probe_options = spec.probe_options;
  probe_options.optimizer = spec.optimizer.kind;
  ProbeSet probes(spec.probes, cache, probe_options);
  auto optimizer = make_optimizer(spec.optimizer);
  optimizer->reset(net, problem);

  RunResult result;
  result.columns = probes.columns();
  result.final_row.assign(result.columns.size(), 0.0);
  if (recorder) recorder->begin(result.columns);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  StepInfo info;
  auto record = [&] {
    info.step = result.steps;
    info.time = std::chrono::duration<double>(Clock::now() - start).count();
    probes.measure(info, cache, result.final_row);
    if (recorder) recorder->record(result.steps, result.final_row);
  };
  auto check_stop = [&](double loss) {
    const double limit = spec.stop.diverge_factor * result.initial_loss;
    if (!std::isfinite(loss) || (result.initial_loss > 0 && loss > limit))
      result.status = RunStatus::kDiverged;
    else if (loss < spec.stop.loss)
      result.status = RunStatus::kConverged;
    return result.status != RunStatus::kCompleted;
  };

  // A continuous-time optimiser steps from one record time to the next.
  const bool continuous = optimizer->continuous();
  const long steps = continuous ? std::lround(spec.optimizer.time / spec.dt) : spec.optimizer.steps;
  const long every = continuous ? 1 : spec.every;
  Schedule schedule(spec.optimizer.schedule, spec.optimizer.lr);
  schedule.reset(cache);
  auto next_lr = [&] { return continuous ? spec.dt : schedule.next(result.steps, cache); };

  // The loop: step, check the stop rules on the new loss, record when due.
  result.initial_loss = cache.loss();
  check_stop(result.initial_loss);
  info.lr = next_lr();
  record();
  double t_carry = 0.0;
  while (result.status == RunStatus::kCompleted && result.steps < steps) {
    optimizer->step(cache, net, info.lr);
    ++result.steps;
    // Flow time as k dt; otherwise the sum of the rates, compensated (Kahan) so that a
    // constant rate gives t = eta * step to the last bit or so.
    if (continuous) {
      info.t = static_cast<double>(result.steps) * spec.dt;
    } else {
      const double y = info.lr - t_carry;
      const double sum = info.t + y;
      t_carry = (sum - info.t) - y;
      info.t = sum;
    }
    info.lr = next_lr();
    const bool stop = check_stop(cache.loss());
    if (stop || result.steps % every == 0 || result.steps == steps) record();
  }

  result.final_loss = cache.loss();
  result.time = info.t;
  result.evaluations = optimizer->evaluations();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace dln
