// NumPy .npz archives (np.savez and np.savez_compressed): a zip of .npy members, stored
// or deflated, with or without zip64 records.
#pragma once

#include <map>
#include <string>

#include "dln/io/npy.hpp"

namespace dln::io {

// Every member, keyed by its name without the ".npy" suffix.
std::map<std::string, NpyArray> read_npz(const std::string& path);

// Writes the matrices as members NAME.npy (float64, C order) of an uncompressed .npz, as a
// whole or not at all; np.load reads it. std::runtime_error beyond the plain zip's 4 GiB.
void write_npz(const std::string& path, const std::map<std::string, Eigen::MatrixXd>& members,
               Durability durability = Durability::kFsync);

}  // namespace dln::io
