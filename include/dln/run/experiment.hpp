// From a resolved RunSpec to a run directory: load and check the data, build the problem and
// the initial net (all errors before anything is written), train, and write the directory
// atomically. Sweeps run many points on a pool of threads.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "dln/core/problem.hpp"
#include "dln/run/config.hpp"
#include "dln/run/trainer.hpp"

namespace dln {

// Shares data sets and problems between runs whose data (and loss) settings are equal.
class ProblemCache {
 public:
  std::shared_ptr<const Problem> get(const RunSpec& spec);

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Dataset>> data_;
  std::map<std::string, std::shared_ptr<const Problem>> problems_;
};

struct PreparedRun {
  RunSpec spec;
  std::shared_ptr<const Problem> problem;
  LinearNet net;
};

// Loads the data and builds the initial net; throws InputError for any bad input.
std::shared_ptr<const Dataset> load_data(const RunSpec& spec);
PreparedRun prepare(const RunSpec& spec, ProblemCache* cache = nullptr);

// Refuses (InputError) an existing `dir` unless it is empty, or force is set and dln wrote it
// (io::check_replaceable); nothing is written.
void check_output_dir(const std::string& dir, bool force);

// Trains and writes the run directory `dir`, an empty staging directory of dln's: config.toml,
// metrics.csv, weights/W<l>.npy, then summary.json and the marker.
// The text of summary.json for a run that ended with `result`.
std::string summary_json(const PreparedRun& run, const RunResult& result);

// Starts the run's training on its engine (the native Training, or the nonlinear engine's
// session); `resume` continues a checkpoint of it.
std::unique_ptr<Session> start_session(PreparedRun& run, Recorder* recorder,
                                       const StateMap* resume = nullptr);

// A filter, if given, sees every row first and passes it on to metrics.csv.
// With `progress`, a progress line in the process's mode (set_progress_mode).
RunResult write_run(PreparedRun& run, const std::string& dir, RecorderFilter* filter = nullptr,
                    bool progress = false);

// write_run into a temporary sibling, then renamed to `dir` (replacing it, when force is set,
// only if dln wrote it), under the lock of `dir` (io::Output).
RunResult run_atomically(PreparedRun& run, const std::string& dir, bool force,
                         RecorderFilter* filter = nullptr);

// The processes a sweep is shared between (MPI ranks under mpirun): each runs every size-th
// run still to do, and barrier() waits for all of them. The default is one process.
struct Ranks {
  int rank = 0, size = 1;
  std::function<void()> barrier = [] {};
  // Whether `ok` holds on every process (every process calls it).
  std::function<bool(bool)> all_ok = [](bool ok) { return ok; };
};
void set_ranks(Ranks ranks);

struct SweepOutcome {
  std::size_t runs = 0;
  std::size_t resumed = 0;  // runs an interrupted sweep had finished, not run again
  std::map<std::string, std::size_t> statuses;
  double seconds = 0.0;
};

// Runs the cartesian product of the config's [sweep] axes with `jobs` threads into `dir`,
// one run directory per point and runs.csv. Every point is validated before any runs.
SweepOutcome run_sweep(const ConfigFile& config, const std::string& dir, int jobs, bool force);

// Runs every [[arms]] entry of the config into a sibling run directory named after the arm, on
// the same data (and, for arms that keep the seed and init, the same initial weights); runs.csv
// has an `arm` column.
SweepOutcome run_arms(const ConfigFile& config, const std::string& dir, int jobs, bool force);

}  // namespace dln
