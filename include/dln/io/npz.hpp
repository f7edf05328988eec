// NumPy .npz archives (np.savez and np.savez_compressed): a zip of .npy members, stored
// or deflated, with or without zip64 records.
#pragma once

#include <map>
#include <string>

#include "dln/io/npy.hpp"

namespace dln::io {

// Every member, keyed by its name without the ".npy" suffix.
std::map<std::string, NpyArray> read_npz(const std::string& path);

}  // namespace dln::io
