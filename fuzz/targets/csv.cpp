// CSV tables: plain with two delimiters and both header modes, and the same bytes as a .gz file
// (most are corrupt gzip streams, which must be refused cleanly).
#include "dln/io/csv.hpp"

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dln::fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string plain = dln::fuzz::as_file(data, size, "t.csv");
  for (const auto& [delimiter, header] : {std::pair{',', true}, {'\0', false}}) {
    try {
      const auto t = dln::io::read_csv(plain, delimiter, header);
      for (std::size_t r = 0; r < t.rows(); ++r)
        for (std::size_t c = 0; c < t.columns.size(); ++c) (void)t.at(r, c);
    } catch (const dln::InputError&) {
    }
  }
  try {
    (void)dln::io::read_csv(dln::fuzz::as_file(data, size, "t.csv.gz"), ',', true);
  } catch (const dln::InputError&) {
  }
  return 0;
}
