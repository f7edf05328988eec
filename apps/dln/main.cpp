// The dln command line: parses arguments and calls the run layer. Exit status 0 on success,
// 2 for bad input or a bad invocation, 1 for a failure while running.
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "dln/data/dataset.hpp"
#include "dln/error.hpp"
#include "dln/init/init.hpp"
#include "dln/io/output.hpp"
#include "dln/loss/loss.hpp"
#include "dln/optim/optimizer.hpp"
#include "dln/optim/schedule.hpp"
#include "dln/probe/probe.hpp"
#include "dln/run/config.hpp"
#include "dln/run/experiment.hpp"
#include "dln/run/progress.hpp"
#include "dln/run/reproduce.hpp"
#include "dln/run/verify.hpp"
#include "dln/version.hpp"

#ifdef DLN_HAVE_MPI
#include <mpi.h>
#endif

extern char** environ;

namespace {
namespace fs = std::filesystem;

// The output directory: --out as given, else runs/<name>; normalised and checked (a path that
// names no directory of its own, or the current one, is refused naming where it came from).
std::string output_dir(const std::string& out, const std::string& name) {
  if (!out.empty()) return dln::io::output_path(out, "--out").string();
  return dln::io::output_path((fs::path("runs") / name).string(), "name").string();
}

void print_registry(const dln::Registry& registry) {
  std::size_t width = 0;
  for (const auto& e : registry) width = std::max(width, e.name.size());
  for (const auto& e : registry) fmt::print("{:<{}}  {}\n", e.name, width, e.description);
}

int list(const std::string& what) {
  if (what == "metrics") {
    print_registry(dln::probe_registry());
  } else if (what == "losses") {
    print_registry(dln::loss_registry());
  } else if (what == "inits") {
    print_registry(dln::init_registry());
  } else if (what == "optimizers") {
    print_registry(dln::optimizer_registry());
  } else if (what == "datasets") {
    print_registry(dln::dataset_registry());
  } else if (what == "schedules") {
    print_registry(dln::schedule_registry());
  } else if (what == "config") {
    for (const auto& k : dln::config_schema())
      fmt::print("{}\t{}\t{}\t{}\t{}\n", k.key, dln::key_type_name(k.type),
                 k.default_text.empty() ? "(required)" : k.default_text, k.when, k.doc);
  }
  return 0;
}

// Runs a module of python/ with Debian's Python (python3 -m MODULE ARGS...).
int run_python(const std::vector<std::string>& module_and_args) {
  const char* env_dir = std::getenv("DLN_PYTHON_DIR");
  const std::string python_dir = env_dir ? env_dir : DLN_PYTHON_DIR;
  const char* env_python = std::getenv("DLN_PYTHON");
  const std::string python = env_python                       ? env_python
                             : fs::exists("/usr/bin/python3") ? "/usr/bin/python3"
                                                              : "python3";
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with("PYTHONPATH=")) env_strings.emplace_back(*e);
  env_strings.push_back("PYTHONPATH=" + python_dir);
  env_strings.push_back("MPLBACKEND=Agg");
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = {python, "-m"};
  args.insert(args.end(), module_and_args.begin(), module_and_args.end());
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), envp.data()) != 0)
    throw std::runtime_error("cannot start " + python);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

// The options of `dln plot`, passed on to python3 -m dln.plot (which checks them).
struct PlotOptions {
  std::string dir, x, hue, facet, best_by, phase;
  std::vector<std::string> metrics;
  bool logx = false;
};

int plot(const PlotOptions& o) {
  std::vector<std::string> args = {"dln.plot", o.dir};
  for (const auto& m : o.metrics) args.insert(args.end(), {"--metric", m});
  if (!o.x.empty()) args.insert(args.end(), {"--x", o.x});
  if (o.logx) args.push_back("--logx");
  if (!o.hue.empty()) args.insert(args.end(), {"--hue", o.hue});
  if (!o.facet.empty()) args.insert(args.end(), {"--facet", o.facet});
  if (!o.best_by.empty()) args.insert(args.end(), {"--best-by", o.best_by});
  if (!o.phase.empty()) args.insert(args.end(), {"--phase", o.phase});
  return run_python(args);
}

// Runs a reproduction (dln::run_reproduction), then its figures and claims.
int reproduce(const std::string& name, const std::string& out_arg, bool force, int jobs) {
  const std::string out_dir = dln::run_reproduction(name, out_arg, force, jobs);
  std::fflush(stdout);  // before the figures' process writes to the same stream
  return run_python({"dln.paper_figures", name, out_dir});
}

// Under mpirun (with an MPI build), the ranks of one sweep: MPI is started, every rank takes its
// share of the runs, and only rank 0 reports. Outside mpirun, nothing happens.
class MpiSweep {
 public:
  MpiSweep() {
#ifdef DLN_HAVE_MPI
    if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMI_SIZE") &&
        !std::getenv("PMIX_RANK"))
      return;
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    active_ = true;
    dln::Ranks ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &ranks.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks.size);
    ranks.barrier = [] { MPI_Barrier(MPI_COMM_WORLD); };
    ranks.all_ok = [](bool ok) {
      int mine = ok ? 1 : 0, all = 0;
      MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
      return all != 0;
    };
    rank_ = ranks.rank;
    dln::set_ranks(ranks);
#endif
  }
  ~MpiSweep() {
#ifdef DLN_HAVE_MPI
    if (!active_) return;
    // A failure that is not the same on every rank leaves the others waiting: end them all.
    if (std::uncaught_exceptions() > 0 && !input_error_) MPI_Abort(MPI_COMM_WORLD, 1);
    dln::set_ranks({});
    MPI_Finalize();
#endif
  }
  MpiSweep(const MpiSweep&) = delete;
  MpiSweep& operator=(const MpiSweep&) = delete;
  int rank() const {
    return rank_;
  }
  // Bad input is found by every rank alike before any run starts: rank 0 says it once, and no
  // rank leaves before it has (mpirun ends the others when one exits non-zero).
  int input_error(const dln::InputError& e) {
    input_error_ = true;
    if (rank_ == 0) {
      fmt::print(stderr, "dln: error: {}\n", e.what());
      std::fflush(stderr);
    }
#ifdef DLN_HAVE_MPI
    if (active_) MPI_Barrier(MPI_COMM_WORLD);
#endif
    return 2;
  }

 private:
  bool active_ = false, input_error_ = false;
  int rank_ = 0;
};

// "dln: ran 3 arms in 0.01 s, 3 completed" and where they went.
void report(const char* what, const dln::SweepOutcome& outcome, const std::string& dir) {
  std::string statuses;
  for (const auto& [s, n] : outcome.statuses) statuses += fmt::format(", {} {}", n, s);
  if (outcome.resumed > 0)
    statuses += fmt::format(" ({} of them finished before an interruption, not run again)",
                            outcome.resumed);
  fmt::print("dln: {} in {:.3g} s{}\n", fmt::format(fmt::runtime(what), outcome.runs),
             outcome.seconds, statuses);
  fmt::print("dln: wrote {}\n", dir);
}

// Prints the checks as a table: claim, setting, measured value, threshold, verdict.
int verify(bool quick, int only) {
  bool all = true;
  for (const auto& r : dln::verify(quick, only)) {
    fmt::print("[{}] {}  {}\n", r.pass ? "pass" : "FAIL", r.id, r.claim);
    fmt::print("       setting:   {}\n       measured:  {}\n       threshold: {}\n", r.setting,
               r.measured, r.threshold);
    all &= r.pass;
  }
  fmt::print("dln verify: {}\n", all ? "all checks pass" : "some checks FAIL");
  return all ? 0 : 1;
}

// --jobs: a whole number of threads, 1 to 1024, said in one line.
const CLI::Validator kThreadCount(
    [](std::string& text) -> std::string {
      int n = 0;
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec != std::errc() || ptr != text.data() + text.size() || n < 1 || n > 1024)
        return "must be a whole number of threads from 1 to 1024 (got '" + text + "')";
      return "";
    },
    "N", "threads");

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dln: training dynamics of deep linear networks"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "Print the version and exit");

  std::string config_path, out_dir;
  std::vector<std::string> overrides;
  bool force = false;
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool progress_lines = false, quiet = false;
  auto progress_flags = [&](CLI::App* cmd) {
    auto* lines = cmd->add_flag("--progress", progress_lines,
                                "Progress as plain lines now and then (for logs and batch jobs)");
    cmd->add_flag("--quiet", quiet, "No progress line and no notices on stderr (errors only)")
        ->excludes(lines);
  };

  auto* run = app.add_subcommand("run", "Run one experiment into a run directory");
  run->add_option("config", config_path, "Experiment config (TOML)")->required();
  run->add_option("--out", out_dir, "Run directory (default runs/<name>)");
  run->add_option("--set", overrides, "Override a config key: key=value (repeatable)");
  run->add_flag("--force", force, "Overwrite an existing run directory");
  run->add_option("--jobs", jobs, "Threads: arms in parallel, or one run's passes over large data")
      ->check(kThreadCount);
  progress_flags(run);

  auto* sweep = app.add_subcommand("sweep", "Run the cartesian product of a config's [sweep]");
  sweep->add_option("config", config_path, "Experiment config (TOML); axes from [sweep] or --sweep")
      ->required();
  sweep->add_option("--out", out_dir, "Sweep directory (default runs/<name>)");
  sweep->add_option("--set", overrides, "Override a config key: key=value (repeatable)");
  std::vector<std::string> sweep_axes;
  sweep->add_option("--sweep", sweep_axes,
                    "A sweep axis: key=v1,v2,... or key=a..b (repeatable; replaces the file's)");
  sweep->add_option("--jobs", jobs, "Runs in parallel (threads)")->check(kThreadCount);
  sweep->add_flag("--force", force, "Overwrite an existing sweep directory");
  progress_flags(sweep);

  PlotOptions plot_options;
  auto* plot_cmd = app.add_subcommand("plot", "Draw the figures of a run or sweep directory");
  plot_cmd->add_option("dir", plot_options.dir, "Run, sweep, arms or [select] directory")
      ->required();
  plot_cmd->add_option("--metric", plot_options.metrics, "Columns to draw (repeatable)");
  plot_cmd->add_option("--x", plot_options.x, "The x axis: step (default) or t")
      ->check(CLI::IsMember({"step", "t"}));
  plot_cmd->add_flag("--logx", plot_options.logx, "A logarithmic x axis");
  plot_cmd->add_option("--hue", plot_options.hue, "Sweep axis drawn as colours (default: first)");
  plot_cmd->add_option("--facet", plot_options.facet, "Sweep axis drawn as one panel per value");
  plot_cmd->add_option("--best-by", plot_options.best_by,
                       "Only the best run per hue and facet value by this final metric");
  plot_cmd
      ->add_option("--phase", plot_options.phase, "[select] directories: best (default) or grid")
      ->check(CLI::IsMember({"best", "grid"}));

  bool quick = false;
  int check_id = 0;
  auto* verify_cmd =
      app.add_subcommand("verify", "Check the theory numerically; exit 0 iff all pass");
  verify_cmd->add_flag("--quick", quick, "Smaller settings (under 10 s)");
  verify_cmd->add_option("--check", check_id, "Run only this check (by number)")
      ->check(CLI::Range(1, static_cast<int>(dln::verify_checks().size())));

  std::string repro_name;
  bool repro_list = false;
  auto* repro_cmd =
      app.add_subcommand("reproduce", "Run a paper's experiment, its figures and claims");
  repro_cmd->add_option("name", repro_name, "Reproduction (see --list)");
  repro_cmd->add_flag("--list", repro_list, "List the reproductions, one line each");
  repro_cmd->add_option("--out", out_dir, "Output directory (default runs/<name>)");
  repro_cmd->add_flag("--force", force, "Replace an existing output directory");
  progress_flags(repro_cmd);

  std::string what;
  auto* list_cmd = app.add_subcommand("list", "List what exists, one line each");
  list_cmd
      ->add_option("what", what,
                   "metrics | losses | inits | optimizers | schedules | datasets | config")
      ->required()
      ->check(CLI::IsMember(
          {"metrics", "losses", "inits", "optimizers", "schedules", "datasets", "config"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::string message = e.what();
    for (char& c : message)
      if (c == '\n' || c == '\r') c = ' ';
    fmt::print(stderr, "dln: error: {} (dln {} --help)\n", message,
               app.get_subcommands().empty() ? "" : app.get_subcommands().front()->get_name());
    return 2;
  }

  // Progress on stderr: a line rewritten in place when stderr is a terminal, plain lines with
  // --progress, nothing with --quiet (or when stderr is a file or a pipe).
  dln::set_progress_mode(quiet            ? dln::ProgressMode::kQuiet
                         : progress_lines ? dln::ProgressMode::kLines
                         : ::isatty(2)    ? dln::ProgressMode::kTerminal
                                          : dln::ProgressMode::kOff);
  try {
    if (version) {
      fmt::print("dln {}\n", dln::kVersion);
      return 0;
    }
    if (*run) {
      const auto config = dln::load_config(config_path, overrides);
      if (!config.sweep.empty())
        fmt::print(stderr,
                   "warning: {}: the [sweep] table is ignored by 'dln run' (use 'dln sweep')\n",
                   config_path);
      const auto spec = dln::resolve(config);
      const std::string dir = output_dir(out_dir, spec.name);
      if (!config.arms.empty()) {
        report("ran {} arms", dln::run_arms(config, dir, jobs, force), dir);
        return 0;
      }
      dln::check_output_dir(dir, force);
      auto prepared = dln::prepare(spec);
      prepared.spec.train.threads = jobs;
      const auto result = dln::run_atomically(prepared, dir, force);
      fmt::print("dln: {} {} after {} steps: final loss {:.6g}, {:.4g} steps/s\n", spec.name,
                 dln::status_name(result.status), result.steps, result.final_loss,
                 result.seconds > 0 ? result.steps / result.seconds : 0.0);
      fmt::print("dln: wrote {}\n", dir);
      return 0;
    }
    if (*sweep) {
      MpiSweep mpi;
      try {
        const auto config = dln::load_config(config_path, overrides, sweep_axes);
        const std::string dir = output_dir(out_dir, dln::resolve(config).name);
        const auto outcome = dln::run_sweep(config, dir, jobs, force);
        if (mpi.rank() == 0) report("swept {} runs", outcome, dir);
        return 0;
      } catch (const dln::InputError& e) {
        return mpi.input_error(e);
      }
    }
    if (*plot_cmd) return plot(plot_options);
    if (*verify_cmd) return verify(quick, check_id);
    if (*repro_cmd) {
      if (repro_list || repro_name.empty()) {
        for (const auto& r : dln::reproductions()) fmt::print("{}  {}\n", r.name, r.description);
        return repro_list ? 0 : 2;
      }
      return reproduce(repro_name, out_dir, force, jobs);
    }
    if (*list_cmd) return list(what);
    std::cout << app.help();
    return 0;
  } catch (const dln::InputError& e) {
    fmt::print(stderr, "dln: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dln: failure: {}\n", e.what());
    return 1;
  }
}
