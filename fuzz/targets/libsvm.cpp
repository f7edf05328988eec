// LIBSVM text files, plain and as .gz.
#include "dln/io/libsvm.hpp"

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dln::fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const char* name : {"t.svm", "t.svm.gz"}) {
    try {
      const auto t = dln::io::read_libsvm(dln::fuzz::as_file(data, size, name));
      if (t.labels.size() != t.rows.size() || t.classes.size() != t.rows.size()) __builtin_trap();
      for (const auto& row : t.rows)
        for (const auto& [index, value] : row)
          if (index >= t.dim) __builtin_trap();
    } catch (const dln::InputError&) {
    }
  }
  return 0;
}
