// .npz archives (zip, stored or deflated, zip64 records).
#include "dln/io/npz.hpp"

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dln::fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    (void)dln::io::read_npz(dln::fuzz::as_file(data, size, "a.npz"));
  } catch (const dln::InputError&) {
  }
  return 0;
}
