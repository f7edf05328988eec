// The names a config may use in each area, each with a one-line description; `dln list`, the
// config parser and the docs read these lists.
#pragma once

#include <string>
#include <vector>

namespace dln {

struct RegistryEntry {
  std::string name;
  std::string description;
  std::vector<std::string> keys;  // config keys that only this entry reads
};

using Registry = std::vector<RegistryEntry>;

const RegistryEntry* find_entry(const Registry& registry, const std::string& name);

}  // namespace dln
