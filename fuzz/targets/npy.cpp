// .npy: parsed from memory, and read as a sample file straight into a matrix.
#include "dln/io/npy.hpp"

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dln::fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const dln::io::NpyArray a = dln::io::parse_npy(bytes, "input");
    if (a.shape.size() <= 2) (void)a.matrix();
  } catch (const dln::InputError&) {
  }
  try {
    std::vector<std::size_t> shape;
    (void)dln::io::read_npy_samples(dln::fuzz::as_file(data, size, "x.npy"), shape);
  } catch (const dln::InputError&) {
  }
  return 0;
}
