// The dln version, written into every summary.json.
#pragma once

namespace dln {
inline constexpr const char* kVersion = "0.1.0";
}
