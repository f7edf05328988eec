// Errors that reach the user: bad input (exit status 2) carries where it came from.
#pragma once

#include <stdexcept>
#include <string>

namespace dln {

// Bad input: a config, data or weights file, or a command-line value. Printed as one line,
// "file:line: key: message" with the parts that are known, and exit status 2.
class InputError : public std::runtime_error {
 public:
  InputError(std::string file, int line, std::string key, const std::string& message);
  explicit InputError(const std::string& message) : InputError("", 0, "", message) {}

  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& key() const { return key_; }

 private:
  std::string file_;
  int line_;
  std::string key_;
};

}  // namespace dln
