#include "dln/error.hpp"

namespace dln {
namespace {

std::string format_location(const std::string& file, int line, const std::string& key,
                            const std::string& message) {
  std::string out;
  if (!file.empty()) {
    out += file;
    if (line > 0) {
      out.push_back(':');
      out.append(std::to_string(line));
    }
    out.append(": ");
  }
  if (!key.empty()) {
    out.append(key);
    out.append(": ");
  }
  out.append(message);
  // One line, whatever the message came from (a TOML parser's description may span several).
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

}  // namespace

InputError::InputError(std::string file, int line, std::string key, const std::string& message)
    : std::runtime_error(format_location(file, line, key, message)),
      file_(std::move(file)),
      line_(line),
      key_(std::move(key)) {}

}  // namespace dln
