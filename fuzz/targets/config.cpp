// The TOML loader and resolve(): any bytes as a config file, with and without --set overrides.
#include "dln/run/config.hpp"

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dln::fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = dln::fuzz::as_file(data, size, "config.toml");
  try {
    const dln::ConfigFile config = dln::load_config(path);
    (void)dln::resolve(config);
    for (const auto& arm : config.arms) (void)dln::resolve(config, arm.overrides);
    if (!config.sweep.empty()) {
      std::vector<std::pair<std::string, dln::ConfigValue>> point;
      for (const auto& [key, values] : config.sweep) point.emplace_back(key, values.front());
      (void)dln::resolve(config, point);
    }
  } catch (const dln::InputError&) {
  }
  return 0;
}
