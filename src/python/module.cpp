// dln._core: the Python package's compiled half. It calls the same run layer as the command
// line (config parsing, prepare, Training, write_run, sweeps, verify, reproductions) and adds
// only what Python needs: rows kept in memory, callbacks and user metrics at every record,
// weights as NumPy arrays, and bad input raised as dln.ConfigError / DataError / OutputError.
// The GIL is released while steps run and taken again only to call Python.
#include <fmt/format.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
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
#include "dln/run/reproduce.hpp"
#include "dln/run/trainer.hpp"
#include "dln/run/verify.hpp"
#include "dln/version.hpp"

namespace py = pybind11;
namespace fs = std::filesystem;

namespace {

using dln::InputError;

// --- Errors -------------------------------------------------------------------------------

enum class Stage { kConfig, kData, kOutput };

[[noreturn]] void raise_input_error(const char* kind, const InputError& e) {
  const py::object type = py::module_::import("dln.errors").attr(kind);
  const py::object error = type(std::string(e.what()), e.file(), e.line(), e.key());
  PyErr_SetObject(type.ptr(), error.ptr());
  throw py::error_already_set();
}

// Runs `fn`, raising an InputError as the Python exception of its stage. A data-stage error that
// names a config key outside [data] (a width too large for memory, say) is a config error.
template <class Fn>
auto at_stage(Stage stage, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const InputError& e) {
    if (stage == Stage::kOutput) raise_input_error("OutputError", e);
    if (e.key() == "--out" || e.key() == "out") raise_input_error("OutputError", e);
    const bool data = stage == Stage::kData && (e.key().empty() || e.key().starts_with("data."));
    raise_input_error(data ? "DataError" : "ConfigError", e);
  }
}

// --- NumPy ----------------------------------------------------------------------------------

// A copy of `m` as a float64 (rows, cols) array: one memcpy into Fortran order, which is
// Eigen's.
py::array_t<double> to_numpy(const Eigen::MatrixXd& m) {
  py::array_t<double, py::array::f_style> a({m.rows(), m.cols()});
  if (m.size() > 0)
    std::memcpy(a.mutable_data(), m.data(), sizeof(double) * static_cast<std::size_t>(m.size()));
  return a;
}

py::list weights_list(const dln::LinearNet& net) {
  py::list out;
  for (const auto& W : net.layers) out.append(to_numpy(W));
  return out;
}

// --- Recorders --------------------------------------------------------------------------------

// The rows of a run, kept in memory with the step first, as in metrics.csv (reserved up front:
// record() does not allocate).
class MemoryRecorder final : public dln::Recorder {
 public:
  explicit MemoryRecorder(long expected_rows) : expected_(std::max(expected_rows, 1L)) {}
  void begin(const std::vector<std::string>& columns) override {
    columns_ = {"step"};
    columns_.insert(columns_.end(), columns.begin(), columns.end());
    constexpr long kMaxReserved = 1L << 24;  // values; beyond, the vector grows as needed
    values_.reserve(static_cast<std::size_t>(
        std::min(kMaxReserved, expected_ * static_cast<long>(columns_.size()))));
  }
  void record(long step, std::span<const double> row) override {
    values_.push_back(static_cast<double>(step));
    values_.insert(values_.end(), row.begin(), row.end());
  }
  const std::vector<std::string>& columns() const { return columns_; }
  py::array_t<double> rows() const {
    const auto n = static_cast<py::ssize_t>(columns_.size());
    const py::ssize_t count = n == 0 ? 0 : static_cast<py::ssize_t>(values_.size()) / n;
    py::array_t<double> a({count, n});
    if (!values_.empty())
      std::memcpy(a.mutable_data(), values_.data(), sizeof(double) * values_.size());
    return a;
  }

 private:
  long expected_;
  std::vector<std::string> columns_;
  std::vector<double> values_;
};

// Thrown through the step loop when a callback or metric raised; the Python exception is kept.
struct CallbackFailed {};

// Adds the user's metric columns and calls the callback at every record, with the GIL held only
// for that. A callback that returns False stops the run; one that raises ends it.
class PythonFilter final : public dln::RecorderFilter {
 public:
  PythonFilter(const dln::LinearNet& net, py::object callback, std::vector<std::string> names,
               std::vector<py::object> fns)
      : net_(net), names_(std::move(names)), fns_(std::move(fns)) {
    if (!callback.is_none()) callback_ = std::move(callback);
  }
  ~PythonFilter() override {
    py::gil_scoped_acquire gil;
    callback_ = py::object();
    fns_.clear();
    keys_.clear();
    error_ = py::object();
  }

  void begin(const std::vector<std::string>& columns) override {
    base_ = columns.size();
    columns_ = columns;
    columns_.insert(columns_.end(), names_.begin(), names_.end());
    row_.assign(columns_.size(), 0.0);
    next_->begin(columns_);
  }
  void record(long step, std::span<const double> row) override {
    std::copy(row.begin(), row.end(), row_.begin());
    if (callback_ || !fns_.empty()) call_python(step);
    next_->record(step, row_);
  }
  bool stop_requested() const override { return stop_; }

  // Raises the kept exception, if any, with the step named (the GIL held).
  void reraise() {
    if (!error_) return;
    py::object error = error_;
    error_ = py::object();
    if (py::hasattr(error, "add_note"))
      error.attr("add_note")(fmt::format("(raised at step {} of the dln run)", error_step_));
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    throw py::error_already_set();
  }

 private:
  void call_python(long step) {
    py::gil_scoped_acquire gil;
    try {
      const py::list weights = weights_list(net_);
      for (std::size_t k = 0; k < fns_.size(); ++k) {
        const py::object value = fns_[k](weights);
        try {
          row_[base_ + k] = value.cast<double>();
        } catch (const py::cast_error&) {
          PyErr_SetString(PyExc_TypeError,
                          fmt::format("metric '{}' returned {}, not a number", names_[k],
                                      std::string(py::str(value.get_type().attr("__name__"))))
                              .c_str());
          throw py::error_already_set();
        }
      }
      if (callback_) {
        if (keys_.empty())  // the column names as Python strings, made once
          for (const auto& c : columns_) keys_.emplace_back(c);
        py::dict row;
        for (std::size_t i = 0; i < columns_.size(); ++i)
          row[keys_[i]] = py::reinterpret_steal<py::object>(PyFloat_FromDouble(row_[i]));
        // None goes on; any other false value (False, numpy.False_, 0) stops the run.
        const py::object answer = callback_(step, row, weights);
        if (!answer.is_none()) {
          const int truth = PyObject_IsTrue(answer.ptr());
          if (truth < 0) throw py::error_already_set();
          if (truth == 0) stop_ = true;
        }
      }
    } catch (py::error_already_set& e) {
      error_ = e.value();
      error_step_ = step;
      stop_ = true;
      throw CallbackFailed{};
    }
  }

  const dln::LinearNet& net_;
  py::object callback_;
  std::vector<std::string> names_;
  std::vector<py::object> fns_;
  std::vector<std::string> columns_;
  std::vector<py::str> keys_;
  std::vector<double> row_;
  std::size_t base_ = 0;
  bool stop_ = false;
  py::object error_;
  long error_step_ = 0;
};

int default_jobs() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// --- Config ---------------------------------------------------------------------------------

struct Config {
  dln::ConfigFile file;
};

Config parse(const std::string& text, const std::string& path, const std::string& base_dir,
             const std::vector<std::string>& overrides, const std::vector<std::string>& sweeps) {
  return at_stage(Stage::kConfig, [&] {
    return Config{dln::parse_config(text, path, base_dir, overrides, sweeps)};
  });
}

Config load(const std::string& path, const std::vector<std::string>& overrides,
            const std::vector<std::string>& sweeps) {
  return at_stage(Stage::kConfig,
                  [&] { return Config{dln::load_config(path, overrides, sweeps)}; });
}

dln::RunSpec resolve(const Config& config) {
  return at_stage(Stage::kConfig, [&] { return dln::resolve(config.file); });
}

// --- Runs -----------------------------------------------------------------------------------

py::dict run(const Config& config, const std::optional<std::string>& out, bool force,
             std::optional<int> jobs, py::object callback, std::vector<std::string> metric_names,
             std::vector<py::object> metric_fns) {
  if (!config.file.arms.empty())
    raise_input_error("ConfigError", InputError(config.file.path, 0, "arms",
                                                "[[arms]] are run by dln.sweep, not dln.run"));
  const dln::RunSpec spec = resolve(config);
  std::string dir;
  if (out)
    at_stage(Stage::kOutput, [&] {
      dir = dln::io::output_path(*out, "out").string();
      dln::check_output_dir(dir, force);
    });
  auto prepared = at_stage(Stage::kData, [&] { return dln::prepare(spec); });
  prepared.spec.train.threads = jobs.value_or(default_jobs());
  if (prepared.spec.train.threads < 1) throw py::value_error("jobs must be at least 1");

  const bool torch = prepared.spec.model.engine == "torch";
  if (torch && (!callback.is_none() || !metric_names.empty()))
    throw py::value_error(
        "callback and metrics read the weights of the native linear engine; this run is on the "
        "torch engine (record its probes, or load the run's weights afterwards)");
  PythonFilter filter(prepared.net, std::move(callback), std::move(metric_names),
                      std::move(metric_fns));
  py::list weights;
  MemoryRecorder memory(dln::expected_records(prepared.spec.train));
  dln::RunResult result;
  bool failed = false;
  at_stage(Stage::kOutput, [&] {  // what can go wrong now is the output (a second writer)
    py::gil_scoped_release release;
    try {
      if (out) {
        result = dln::run_atomically(prepared, dir, force, &filter);
      } else {
        filter.set_next(&memory);
        auto session = dln::start_session(prepared, &filter);
        session->advance(session->total_steps());
        result = session->finish();
        if (torch) {
          py::gil_scoped_acquire gil;
          for (const auto& [name, m] : session->parameters())
            if (name[0] == 'W') weights.append(to_numpy(m));
        }
      }
    } catch (const CallbackFailed&) {
      failed = true;
    }
  });
  if (failed) filter.reraise();

  py::dict answer;
  answer["status"] = dln::status_name(result.status);
  answer["summary"] = dln::summary_json(prepared, result);
  answer["config"] = prepared.spec.resolved_toml;
  answer["weights"] = torch ? weights : weights_list(prepared.net);
  answer["path"] = out ? py::object(py::str(dir)) : py::object(py::none());
  if (!out) {
    answer["columns"] = memory.columns();
    answer["rows"] = memory.rows();
  }
  return answer;
}

py::dict sweep(const Config& config, const std::string& out, bool force, std::optional<int> jobs) {
  std::string dir;
  at_stage(Stage::kOutput, [&] {
    dir = dln::io::output_path(out, "out").string();
    dln::check_output_dir(dir, force);
  });
  const int threads = jobs.value_or(default_jobs());
  if (threads < 1) throw py::value_error("jobs must be at least 1");
  if (config.file.arms.empty() && config.file.sweep.empty())
    raise_input_error("ConfigError",
                      InputError(config.file.path, 0, "sweep",
                                 "the config has no [sweep] axes and no [[arms]]: use dln.run"));
  dln::SweepOutcome outcome;
  at_stage(Stage::kData, [&] {
    py::gil_scoped_release release;
    outcome = config.file.arms.empty() ? dln::run_sweep(config.file, dir, threads, force)
                                       : dln::run_arms(config.file, dir, threads, force);
  });
  py::dict answer;
  answer["path"] = dir;
  answer["runs"] = outcome.runs;
  answer["resumed"] = outcome.resumed;
  answer["seconds"] = outcome.seconds;
  answer["statuses"] = outcome.statuses;
  return answer;
}

// --- Trainer --------------------------------------------------------------------------------

// A run stepped by hand. Its recorded rows are those dln.run records, bit for bit.
class Trainer {
 public:
  Trainer(const Config& config, std::optional<int> jobs)
      : spec_(resolve(config)),
        prepared_(at_stage(Stage::kData, [&] { return dln::prepare(spec_); })),
        memory_(dln::expected_records(prepared_.spec.train)) {
    prepared_.spec.train.threads = jobs.value_or(1);
    if (prepared_.spec.train.threads < 1) throw py::value_error("jobs must be at least 1");
    if (prepared_.spec.model.engine == "torch")
      throw py::value_error(
          "dln.Trainer steps the native linear engine; this config runs on the "
          "torch engine (use dln.run)");
    training_ = std::make_unique<dln::Training>(*prepared_.problem, prepared_.net,
                                                prepared_.spec.train, &memory_);
    // The probes measure() uses by default: its own set, so that measuring by hand leaves the
    // recorded rows (some probes keep a history) exactly as in an uninterrupted run.
    side_.emplace(key(prepared_.spec.train.probes), make_probes(prepared_.spec.train.probes));
  }

  long step(long n) {
    if (n < 0) throw py::value_error("n must be >= 0");
    py::gil_scoped_release release;
    return training_->advance(n);
  }
  bool done() const { return training_->done(); }
  long steps() { return training_->result().steps; }
  // "running" until the run has ended (its steps taken, or a stop rule).
  std::string status() {
    return training_->done() ? dln::status_name(training_->result().status) : "running";
  }
  double loss() { return training_->cache().loss(); }
  py::list weights() const { return weights_list(prepared_.net); }

  void set_weights(const std::vector<py::array_t<double, py::array::forcecast>>& layers) {
    auto& net = prepared_.net;
    if (layers.size() != net.layers.size())
      throw py::value_error(fmt::format("set_weights: {} arrays for a net of {} layers",
                                        layers.size(), net.layers.size()));
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const auto& a = layers[l];
      const auto& W = net.layers[l];
      if (a.ndim() != 2 || a.shape(0) != W.rows() || a.shape(1) != W.cols())
        throw py::value_error(fmt::format("set_weights: layer {} must have shape ({}, {})", l + 1,
                                          W.rows(), W.cols()));
    }
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const auto r = layers[l].unchecked<2>();
      auto& W = net.layers[l];
      for (py::ssize_t i = 0; i < r.shape(0); ++i)
        for (py::ssize_t j = 0; j < r.shape(1); ++j) W(i, j) = r(i, j);
    }
    training_->weights_changed();
  }

  py::list gradients() {
    py::list out;
    for (const auto& G : training_->cache().layer_gradients()) out.append(to_numpy(G));
    return out;
  }

  py::dict measure(const std::optional<std::vector<std::string>>& probes) {
    const auto& names = probes ? *probes : prepared_.spec.train.probes;
    auto it = side_.find(key(names));
    if (it == side_.end()) it = side_.emplace(key(names), make_probes(names)).first;
    dln::ProbeSet& set = *it->second;
    std::vector<double> row(set.columns().size());
    dln::StepInfo info = training_->info();
    set.measure(info, training_->cache(), row);
    py::dict out;
    for (std::size_t i = 0; i < row.size(); ++i) out[set.columns()[i].c_str()] = row[i];
    return out;
  }

  py::dict metrics() const {
    py::dict out;
    out["columns"] = memory_.columns();
    out["rows"] = memory_.rows();
    return out;
  }
  std::string summary() { return dln::summary_json(prepared_, training_->result()); }
  std::string config() const { return prepared_.spec.resolved_toml; }

 private:
  static std::string key(const std::vector<std::string>& names) {
    std::string k;
    for (const auto& n : names) k += n + "\n";
    return k;
  }
  std::unique_ptr<dln::ProbeSet> make_probes(const std::vector<std::string>& names) {
    dln::ProbeOptions options = prepared_.spec.train.probe_options;
    options.optimizer = prepared_.spec.train.optimizer.kind;
    for (const auto& n : names) {
      if (!dln::find_entry(dln::probe_registry(), n))
        throw py::value_error("no metric named '" + n + "' (dln.metrics() lists them)");
      const std::string why =
          dln::probe_unavailable(n, *prepared_.problem, options.optimizer,
                                 dln::trains_end_to_end(prepared_.spec.train.optimizer));
      if (!why.empty()) throw py::value_error(why);
    }
    return std::make_unique<dln::ProbeSet>(names, training_->cache(), options);
  }

  dln::RunSpec spec_;
  dln::PreparedRun prepared_;
  MemoryRecorder memory_;
  std::unique_ptr<dln::Training> training_;
  std::map<std::string, std::unique_ptr<dln::ProbeSet>> side_;
};

// --- Registries, verify, reproduce ------------------------------------------------------------

std::vector<py::dict> registry_rows(const dln::Registry& registry) {
  std::vector<py::dict> rows;
  for (const auto& e : registry) {
    py::dict d;
    d["name"] = e.name;
    d["description"] = e.description;
    d["keys"] = e.keys;
    rows.push_back(d);
  }
  return rows;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "dln's compiled half; use the functions of the dln package instead";
  m.attr("version") = std::string(dln::kVersion);

  py::class_<Config>(m, "Config")
      .def_property_readonly("path", [](const Config& c) { return c.file.path; })
      .def_property_readonly("has_sweep", [](const Config& c) { return !c.file.sweep.empty(); })
      .def_property_readonly("has_arms", [](const Config& c) { return !c.file.arms.empty(); })
      .def_property_readonly("sweep_axes",
                             [](const Config& c) {
                               std::vector<std::string> axes;
                               for (const auto& [k, v] : c.file.sweep) axes.push_back(k);
                               return axes;
                             })
      .def("resolved_toml", [](const Config& c) { return resolve(c).resolved_toml; })
      .def("name", [](const Config& c) { return resolve(c).name; });
  m.def("parse_config", &parse, py::arg("text"), py::arg("path"), py::arg("base_dir"),
        py::arg("overrides"), py::arg("sweeps") = std::vector<std::string>{});
  m.def("load_config", &load, py::arg("path"), py::arg("overrides"),
        py::arg("sweeps") = std::vector<std::string>{});
  m.def("run", &run, py::arg("config"), py::arg("out"), py::arg("force"), py::arg("jobs"),
        py::arg("callback"), py::arg("metric_names"), py::arg("metric_fns"));
  m.def("sweep", &sweep, py::arg("config"), py::arg("out"), py::arg("force"), py::arg("jobs"));

  py::class_<Trainer>(m, "Trainer")
      .def(py::init<const Config&, std::optional<int>>(), py::arg("config"), py::arg("jobs"))
      .def("step", &Trainer::step, py::arg("n") = 1)
      .def_property_readonly("done", &Trainer::done)
      .def_property_readonly("steps", &Trainer::steps)
      .def_property_readonly("status", &Trainer::status)
      .def_property_readonly("loss", &Trainer::loss)
      .def_property_readonly("weights", &Trainer::weights)
      .def("set_weights", &Trainer::set_weights, py::arg("weights"))
      .def("gradients", &Trainer::gradients)
      .def("measure", &Trainer::measure, py::arg("probes") = py::none())
      .def("metrics", &Trainer::metrics)
      .def("summary", &Trainer::summary)
      .def("config", &Trainer::config);

  m.def("metrics", [] { return registry_rows(dln::probe_registry()); });
  m.def("optimizers", [] { return registry_rows(dln::optimizer_registry()); });
  m.def("schedules", [] { return registry_rows(dln::schedule_registry()); });
  m.def("losses", [] { return registry_rows(dln::loss_registry()); });
  m.def("inits", [] { return registry_rows(dln::init_registry()); });
  m.def("datasets", [] { return registry_rows(dln::dataset_registry()); });
  m.def("config_keys", [] {
    std::vector<py::dict> rows;
    for (const auto& k : dln::config_schema()) {
      py::dict d;
      d["key"] = k.key;
      d["type"] = dln::key_type_name(k.type);
      d["default"] = k.default_text.empty() ? "(required)" : k.default_text;
      d["when"] = k.when.empty() ? "always" : k.when;
      d["doc"] = k.doc;
      rows.push_back(d);
    }
    return rows;
  });
  m.def(
      "verify",
      [](bool quick, int only) {
        const auto count = static_cast<int>(dln::verify_checks().size());
        if (only < 0 || only > count)
          throw py::value_error(
              fmt::format("only must be a check from 1 to {} (or 0: all)", count));
        std::vector<dln::CheckResult> results;
        {
          py::gil_scoped_release release;
          results = dln::verify(quick, only);
        }
        std::vector<py::dict> rows;
        for (const auto& r : results) {
          py::dict d;
          d["id"] = r.id;
          d["check"] = r.claim;
          d["setting"] = r.setting;
          d["measured"] = r.measured;
          d["threshold"] = r.threshold;
          d["holds"] = r.pass;
          rows.push_back(d);
        }
        return rows;
      },
      py::arg("quick"), py::arg("only") = 0);
  m.def(
      "reproduce",
      [](const std::string& name, const std::string& out, bool force, std::optional<int> jobs) {
        const auto& list = dln::reproductions();
        if (std::none_of(list.begin(), list.end(), [&](const auto& r) { return r.name == name; }))
          at_stage(Stage::kConfig, [&] { dln::run_reproduction(name, out, force, 1); });
        at_stage(Stage::kOutput, [&] {
          dln::check_output_dir(out.empty() ? (fs::path("runs") / name).string() : out, force);
        });
        return at_stage(Stage::kData, [&] {
          py::gil_scoped_release release;
          return dln::run_reproduction(name, out, force, jobs.value_or(default_jobs()));
        });
      },
      py::arg("name"), py::arg("out"), py::arg("force"), py::arg("jobs"));
  m.def("reproductions", [] {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& r : dln::reproductions()) out.emplace_back(r.name, r.description);
    return out;
  });
}
