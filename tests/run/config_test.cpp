// Config parsing and validation (the command-line tests cover every bad input end to end).
#include "dln/run/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace dln {
namespace {
namespace fs = std::filesystem;

std::string write_config(const std::string& text) {
  const fs::path path =
      fs::temp_directory_path() / ("dln_config_test_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << text;
  return path.string();
}

const char* kMinimal = R"(
[data]
source = "synthetic.gaussian_mixture"
[model]
widths = [10, 4, 3]
)";

TEST(Config, FillsEveryDefaultAndDerivesTheName) {
  const std::string path = write_config(kMinimal);
  const RunSpec spec = resolve(load_config(path));
  EXPECT_EQ(spec.name, fs::path(path).stem().string());
  EXPECT_EQ(spec.train.optimizer.kind, "gd");
  EXPECT_EQ(spec.train.optimizer.lr, 0.01);
  EXPECT_EQ(spec.loss.p, 2.0);
  EXPECT_EQ(spec.data.samples, 400);
  EXPECT_NE(spec.resolved_toml.find("diverge_factor"), std::string::npos);
  // The resolved config parses back to the same spec.
  const std::string again = write_config(spec.resolved_toml);
  EXPECT_EQ(resolve(load_config(again)).resolved_toml, spec.resolved_toml);
  fs::remove(path);
}

TEST(Config, OverridesTakeTomlValuesOrBareWords) {
  const std::string path = write_config(kMinimal);
  const RunSpec spec = resolve(load_config(
      path, {"optimizer.lr=0.5", "optimizer.kind=momentum", "model.widths=[10, 3]", "seed=7"}));
  EXPECT_EQ(spec.train.optimizer.lr, 0.5);
  EXPECT_EQ(spec.train.optimizer.kind, "momentum");
  EXPECT_EQ(spec.widths, (std::vector<int>{10, 3}));
  EXPECT_EQ(spec.seed, 7u);
  fs::remove(path);
}

TEST(Config, UnknownKeyNamesTheNearestValidKeyAndTheLine) {
  const std::string path = write_config(std::string(kMinimal) + "[optimizer]\nlrr = 0.1\n");
  try {
    load_config(path);
    ADD_FAILURE() << "unknown key accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 7);
    EXPECT_EQ(e.key(), "optimizer.lrr");
    EXPECT_NE(std::string(e.what()).find("did you mean 'optimizer.lr'"), std::string::npos);
  }
  EXPECT_EQ(nearest_key("optimiser.kind"), "optimizer.kind");
  EXPECT_EQ(nearest_key("model.dept"), "model.depth");
  EXPECT_EQ(nearest_key("model.widthss"), "model.widths");
  fs::remove(path);
}

TEST(Config, SweepAxesAreReadInKeyOrder) {
  const std::string path = write_config(
      std::string(kMinimal) + "[sweep]\nseed = [1, 2]\n\"optimizer.lr\" = [0.1, 0.2, 0.3]\n");
  const ConfigFile config = load_config(path);
  ASSERT_EQ(config.sweep.size(), 2u);
  EXPECT_EQ(config.sweep[0].first, "optimizer.lr");
  EXPECT_EQ(config.sweep[0].second.size(), 3u);
  EXPECT_EQ(config.sweep[1].first, "seed");
  fs::remove(path);
}

TEST(Config, SchemaKeysAreUniqueAndEveryConditionNamesAKey) {
  std::set<std::string> keys;
  for (const auto& k : config_schema()) EXPECT_TRUE(keys.insert(k.key).second) << k.key;
  for (const auto& k : config_schema())
    if (!k.when.empty()) {
      std::string condition = k.when.substr(0, k.when.find('='));
      if (condition.ends_with('!')) condition.pop_back();
      EXPECT_TRUE(keys.count(condition)) << k.key;
    }
}

}  // namespace
}  // namespace dln
