// Configs: the TOML schema (every key, its type, default and meaning, in one table that
// `dln list config` and docs/config.md are checked against), parsing with --set overrides and
// [sweep] axes, and validation into a RunSpec. Bad input throws InputError naming the file,
// line and key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "dln/error.hpp"
#include "dln/init/init.hpp"
#include "dln/loss/loss.hpp"
#include "dln/nonlinear/torch_engine.hpp"
#include "dln/run/trainer.hpp"

namespace dln {

enum class KeyType { kString, kInt, kFloat, kNumber, kBool, kStringArray, kIntArray, kFloatArray };
const char* key_type_name(KeyType type);

struct KeySpec {
  std::string key;
  KeyType type;
  std::string default_text;  // "" = required; "(seed)" = the top-level seed; "(layers)" = L
  std::string doc;
  std::string when;  // "" = always; "section.key=a|b" only for those values; "key!=a" all but
};
const std::vector<KeySpec>& config_schema();

// One config value with where it came from.
struct ConfigValue {
  using Array2 = std::vector<std::vector<std::int64_t>>;
  std::variant<std::string, std::int64_t, double, bool, std::vector<std::string>,
               std::vector<std::int64_t>, std::vector<double>, Array2>
      value;
  std::string file;  // config file, or "--set"
  int line = 0;
  std::string base_dir;  // relative paths in this value resolve against it
};

struct DataSpec {
  std::string source;
  std::uint64_t seed = 1;
  int components = 3, samples = 400, dim = 10, targets = 3;
  double noise = 0.0, map_std = 1.0, mean_std = 2.0, scale_min = 0.5, scale_max = 2.0;
  std::string x, y, path, x_key = "X", y_key = "Y";  // paths absolute after resolution
  std::vector<std::string> paths;                    // libsvm: several files
  std::vector<std::string> target_columns, feature_columns;
  char delimiter = ',';  // '\0': runs of whitespace
  bool header = true;
  std::vector<double> lambdas, y_values;               // toy.agd, toy.agd_unstable
  double y_star = 1.0;                                 // toy.scalar
  double margin = 0.5;                                 // synthetic.separable
  std::string label_path, test_path, test_label_path;  // idx
  std::vector<int> classes;                            // mnist_json, idx
  std::string labels = "onehot";
  int per_class = 0;
  double test_fraction = 0.0;
  bool test = false;
  bool standardize = false, whiten = false, standardize_targets = false;
};

struct LossSpec {
  std::string kind = "lp";  // lp | l2 | logistic | exponential
  double p = 2.0;
  Reduction reduction = Reduction::kMean;
  std::string path = "auto";  // auto | stats | data
  double l2 = 0.0;            // lambda of the L2 regulariser (torch engine)
};

struct RunSpec {
  std::string name;
  std::uint64_t seed = 1;
  DataSpec data;
  std::vector<int> widths;
  ModelSpec model;
  int partial_samples = 3;  // record.partial_samples
  InitSpec init;
  LossSpec loss;
  TrainSpec train;
  bool save_data = false;  // record.data: the training data written into the run directory
  std::vector<long> snapshot_steps;  // record.weights_every: the layers at these steps
  long checkpoint_every = -1;        // record.checkpoint_every: steps; -1 by wall time; 0 never
  std::string resolved_toml;         // the fully resolved config
  std::map<std::string, ConfigValue> values;  // resolved values, for messages and sweeps

  // An InputError located at `key` (its file and line, if it came from one).
  InputError error_at(const std::string& key, const std::string& message) const;
};

// A parsed config file: its values (with overrides applied) and any [sweep] axes.
struct ConfigFile {
  std::string path;
  std::map<std::string, ConfigValue> values;
  std::vector<std::pair<std::string, std::vector<ConfigValue>>> sweep;  // in key order
  // [[arms]]: named variants of the config run side by side (in file order).
  struct Arm {
    std::string name;
    std::vector<std::pair<std::string, ConfigValue>> overrides;
  };
  std::vector<Arm> arms;
  // [select]: after the [sweep] grid, keep the best candidate of each group (the points that
  // differ only in the `over` and `across` axes) by the final value of `metric`, aggregated over
  // the `across` axes (min, mean or median), and run it again with `then` (and, with
  // `then_seeds`, once per init.seed given). docs/config.md#select.
  struct Select {
    bool enabled = false;
    std::vector<std::string> over, across;
    std::string aggregate = "min";
    std::vector<std::int64_t> then_seeds;
    std::string metric = "loss";
    std::vector<std::pair<std::string, ConfigValue>> then;
    int line = 0;
  };
  Select select;
  std::vector<std::string> overridden;  // the keys given by --set (or Python overrides)
};

// Parses `path` and applies "key=value" overrides (values in TOML syntax; a bare word is a
// string). Throws InputError for malformed TOML, unknown keys or wrongly typed values.
ConfigFile load_config(const std::string& path, const std::vector<std::string>& overrides = {},
                       const std::vector<std::string>& sweeps = {});

// The same for config text that is not in a file (the Python package's dicts): `path` names it
// in messages, relative paths in it resolve against `base_dir`.
ConfigFile parse_config(const std::string& text, const std::string& path,
                        const std::string& base_dir, const std::vector<std::string>& overrides = {},
                        const std::vector<std::string>& sweeps = {});

// Sweep axes from the command line: "key=v1,v2,..." (each value in TOML syntax, a bare word a
// string; "[10, 3],[10, 8, 3]" for lists) or "key=a..b" (the integers a to b). An axis of the
// same key in the file is replaced. A --set of a key that is a sweep axis or an arm's setting
// is refused by check_overrides: the axis or arm would silently win.

// InputError for a --set key that a sweep axis (`axes`) or an arm's setting (`arms`) would
// override. `dln sweep` checks the axes, `dln run` of a config with arms the arms.
void check_overrides(const ConfigFile& config, bool axes, bool arms);

// Validates and fills every default; `point` overrides values (a sweep point).
RunSpec resolve(const ConfigFile& config,
                const std::vector<std::pair<std::string, ConfigValue>>& point = {});

// The closest schema key to `key`, for "did you mean" messages.
std::string nearest_key(const std::string& key);

// Renders a value as TOML text (for runs.csv and labels).
std::string value_text(const ConfigValue& value);

// A value as a runs.csv cell that CSV readers take without quotes: lists of non-negative
// integers joined by '-' (widths 10-8-6-3), other lists by ';'; scalars as value_text.
std::string cell_text(const ConfigValue& value);
// The TOML text of a runs.csv cell of `key` (the inverse of cell_text).
std::string cell_toml(const std::string& key, const std::string& text);

}  // namespace dln
