// IDX files, and the image loader on top of them: the input's first half as images, the rest
// as labels.
#include "dln/io/idx.hpp"

#include "dln/data/idx_images.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dln::fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto a = dln::io::read_idx(dln::fuzz::as_file(data, size, "a.idx"));
    std::size_t count = 1;
    for (auto s : a.shape) count *= s;
    if (count != a.data.size()) __builtin_trap();
  } catch (const dln::InputError&) {
  }
  try {
    dln::IdxImagesSpec spec;
    spec.images = dln::fuzz::as_file(data, size / 2, "images.idx");
    spec.labels = dln::fuzz::as_file(data + size / 2, size - size / 2, "labels.idx");
    (void)dln::load_idx_images(spec);
  } catch (const dln::InputError&) {
  }
  return 0;
}
