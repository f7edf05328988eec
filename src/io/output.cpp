#include "dln/io/output.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "dln/error.hpp"
#include "dln/version.hpp"

namespace dln::io {
namespace fs = std::filesystem;

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

// Closes a descriptor on every path out of a scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void fsync_fd_or_throw(int fd, const fs::path& path) {
  // EINVAL: a file system that cannot sync (some network and pseudo file systems); the data
  // are written all the same.
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
    throw std::runtime_error("cannot sync " + path.string() + " (" + errno_text() + ")");
}

bool is_real_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(fs::symlink_status(p, ec));
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

struct Marker {
  std::string kind;
  std::set<std::string> entries;  // files and plain folders, relative paths
  std::set<std::string> runs;     // subfolders with a marker of their own
};

// The marker of `dir`, or false when it has none or it is not dln's.
bool read_marker(const fs::path& dir, Marker& out) {
  const fs::path path = dir / kMarker;
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(path, ec))) return false;
  const auto size = fs::file_size(path, ec);
  if (ec || size > (64u << 20)) return false;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  std::string text(size, '\0');
  const std::size_t got = std::fread(text.data(), 1, text.size(), f);
  std::fclose(f);
  if (got != text.size()) return false;
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object() || json.value("written_by", "") != "dln")
    return false;
  out.kind = json.value("kind", "");
  for (const char* field : {"entries", "runs"}) {
    const auto it = json.find(field);
    if (it == json.end()) continue;
    if (!it->is_array()) return false;
    for (const auto& e : *it) {
      if (!e.is_string()) return false;
      (std::string(field) == "runs" ? out.runs : out.entries).insert(e.get<std::string>());
    }
  }
  return true;
}

// A run, sweep or reproduction directory written by a dln from before the marker: only files
// with the names dln gives them, and a summary.json of dln's somewhere.
bool is_legacy_output(const fs::path& dir) {
  static const std::set<std::string> kFiles = {"config.toml", "metrics.csv", "summary.json",
                                               "runs.csv",    "data_X.npy",  "data_Y.npy"};
  bool summary_seen = false;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    const auto status = it->symlink_status(ec);
    if (ec) return false;
    if (fs::is_directory(status)) continue;
    if (!fs::is_regular_file(status)) return false;
    const std::string parent = p.parent_path().filename().string();
    const bool weight = parent == "weights" && name.size() > 5 && name.starts_with("W") &&
                        name.ends_with(".npy") && all_digits(name.substr(1, name.size() - 5));
    const bool figure = parent == "figures" && (name.ends_with(".png") || name.ends_with(".svg"));
    if (!weight && !figure && !kFiles.count(name)) return false;
    if (name == "summary.json" && !summary_seen) {
      std::FILE* f = std::fopen(p.c_str(), "rb");
      if (!f) return false;
      char head[4096];
      const std::size_t got = std::fread(head, 1, sizeof head, f);
      std::fclose(f);
      summary_seen = std::string_view(head, got).find("\"dln_version\"") != std::string::npos;
    }
  }
  return !ec && summary_seen;
}

// Every entry below `dir` (relative, generic form), without descending into marked subfolders.
void list_entries(const fs::path& dir, std::vector<std::string>& entries,
                  std::vector<std::string>& runs) {
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::end(it); ++it) {
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    if (rel == kMarker) continue;
    if (it.depth() == 0 && is_real_dir(it->path()) && fs::exists(it->path() / kMarker)) {
      runs.push_back(rel);
      it.disable_recursion_pending();
      continue;
    }
    entries.push_back(rel);
  }
}

std::string marker_text(std::string_view kind, const std::vector<std::string>& entries,
                        const std::vector<std::string>& runs) {
  nlohmann::ordered_json m;
  m["written_by"] = "dln";
  m["dln_version"] = kVersion;
  m["kind"] = kind;
  m["entries"] = entries;
  m["runs"] = runs;
  return m.dump(1) + "\n";
}

std::atomic<unsigned> temp_counter{0};

}  // namespace

fs::path output_path(const std::string& path, const std::string& origin) {
  auto refuse = [&](const std::string& why) {
    return InputError("", 0, origin, "'" + path + "' " + why);
  };
  if (path.empty()) throw InputError("", 0, origin, "is empty; give a directory name");
  if (path.find('\0') != std::string::npos) throw refuse("holds a NUL character");
  fs::path p = fs::absolute(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "x/" -> "x"
  if (p == p.root_path() || p.filename().empty() || p.filename() == "." || p.filename() == "..")
    throw refuse("names no directory of its own (it is the file system's root)");
  const fs::path target = fs::weakly_canonical(p.parent_path()) / p.filename();
  std::error_code ec;
  const fs::path cwd = fs::weakly_canonical(fs::current_path(), ec);
  if (!ec) {
    // The target may not be the current directory or hold it: dln would replace it.
    auto t = target.begin();
    auto c = cwd.begin();
    for (; t != target.end() && c != cwd.end() && *t == *c; ++t, ++c) {
    }
    if (t == target.end())
      throw refuse(c == cwd.end() ? "is the current directory"
                                  : "holds the current directory (" + cwd.string() + ")");
  }
  return target;
}

void write_file_atomic(const fs::path& path, std::string_view bytes, Durability durability) {
  auto temporary = [&] {
    return path.parent_path() / ("." + path.filename().string() + ".tmp-" +
                                 std::to_string(::getpid()) + "-" + std::to_string(temp_counter++));
  };
  fs::path tmp = temporary();
  auto fail = [&](const std::string& what) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    return std::runtime_error("cannot write " + path.string() + ": " + what + " (" + why + ")");
  };
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644)};
    // A name taken by a killed process that had the same process id: the next one.
    for (int tries = 0; f.fd < 0 && errno == EEXIST && tries < 64; ++tries) {
      tmp = temporary();
      f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    }
    if (f.fd < 0) throw fail("cannot create a temporary file");
    for (std::size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::write(f.fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw fail("write failed");
      done += static_cast<std::size_t>(n);
    }
    if (durability == Durability::kFsync && ::fsync(f.fd) != 0 && errno != EINVAL && errno != EROFS)
      throw fail("fsync failed");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw fail("rename failed");
}

void sync_path(const fs::path& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0)
    throw std::runtime_error("cannot sync " + path.string() + " (" + errno_text() + ")");
  fsync_fd_or_throw(f.fd, path);
}

void sync_tree(const fs::path& dir) {
  Fd f{::open(dir.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECTORY)};
  if (f.fd < 0) throw std::runtime_error("cannot sync " + dir.string() + " (" + errno_text() + ")");
  if (::syncfs(f.fd) != 0) fsync_fd_or_throw(f.fd, dir);
}

void mark_dir(const fs::path& dir, std::string_view kind, Durability durability) {
  std::vector<std::string> entries, runs;
  list_entries(dir, entries, runs);
  std::sort(entries.begin(), entries.end());
  std::sort(runs.begin(), runs.end());
  write_file_atomic(dir / kMarker, marker_text(kind, entries, runs), durability);
  if (durability == Durability::kFsync) sync_path(dir);
}

bool is_dln_dir(const fs::path& dir) {
  Marker m;
  return is_real_dir(dir) && read_marker(dir, m);
}

void add_to_marker(const fs::path& dir, const std::vector<std::string>& added) {
  Marker m;
  if (!read_marker(dir, m))
    throw std::logic_error("add_to_marker: " + dir.string() + " is not marked as dln's");
  for (const auto& e : added) m.entries.insert(e);
  write_file_atomic(dir / kMarker, marker_text(m.kind, {m.entries.begin(), m.entries.end()},
                                               {m.runs.begin(), m.runs.end()}));
}

std::string foreign_content(const fs::path& dir) {
  std::error_code ec;
  const auto status = fs::symlink_status(dir, ec);
  if (fs::is_symlink(status)) return "is a symbolic link";
  if (!fs::is_directory(status)) return "is not a directory";
  Marker m;
  if (!read_marker(dir, m)) {
    if (fs::exists(fs::symlink_status(dir / kMarker, ec)))
      return "has a .dln marker that dln cannot read";
    return is_legacy_output(dir) ? "" : "was not written by dln (it has no .dln marker)";
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::end(it); it.increment(ec)) {
    if (ec) return "cannot be listed (" + ec.message() + ")";
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    if (rel == kMarker) continue;
    if (it.depth() == 0 && m.runs.count(rel)) {
      it.disable_recursion_pending();
      if (auto why = foreign_content(it->path()); !why.empty())
        return "holds " + rel + ", which " + why;
      continue;
    }
    if (!m.entries.count(rel)) return "holds " + rel + ", which dln did not write";
  }
  return ec ? "cannot be listed (" + ec.message() + ")" : "";
}

namespace {

// NAME when `name` is a temporary sibling of write_file_atomic (".NAME.tmp-PID-N"), else "".
std::string_view temporary_of(std::string_view name) {
  if (name.size() < 2 || name.front() != '.') return {};
  const auto at = name.rfind(".tmp-");
  if (at == std::string_view::npos || at < 2) return {};
  const std::string_view tail = name.substr(at + 5);
  const auto dash = tail.find('-');
  if (dash == std::string_view::npos || !all_digits(tail.substr(0, dash)) ||
      !all_digits(tail.substr(dash + 1)))
    return {};
  return name.substr(1, at - 1);
}

// `name` or, for a temporary sibling of write_file_atomic, the name it was written for.
std::string_view strip_temporary(std::string_view name) {
  const std::string_view of = temporary_of(name);
  return of.empty() ? name : of;
}

// Removes the regular files in `dir` (not below) that are temporaries of a name `wanted` says
// is dln's there.
template <class Wanted>
void remove_temporaries_in(const fs::path& dir, Wanted wanted) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const std::string_view of = temporary_of(name);
    if (!of.empty() && wanted(of) && fs::is_regular_file(e.symlink_status(ec))) stale.push_back(e);
  }
  for (const auto& p : stale) fs::remove(p, ec);
}

bool run_file_name(std::string_view folder, std::string_view name) {
  name = strip_temporary(name);
  if (folder.empty()) {
    for (std::string_view known :
         {std::string_view("config.toml"), std::string_view("metrics.csv"),
          std::string_view("summary.json"), std::string_view("checkpoint.npz"),
          std::string_view("data_X.npy"), std::string_view("data_Y.npy"), kMarker})
      if (name == known) return true;
    return false;
  }
  if (folder == "weights")
    return name.size() > 5 && name.front() == 'W' && name.ends_with(".npy") &&
           all_digits(name.substr(1, name.size() - 5));
  return folder == "snapshots" && name.size() > 9 && name.starts_with("step_") &&
         name.ends_with(".npz") && all_digits(name.substr(5, name.size() - 9));
}

}  // namespace

std::string foreign_in_run_dir(const fs::path& dir) {
  std::error_code ec;
  if (!is_real_dir(dir)) return "is not a directory";
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::end(it); it.increment(ec)) {
    if (ec) return "cannot be listed (" + ec.message() + ")";
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    const auto status = it->symlink_status(ec);
    if (fs::is_symlink(status)) return "holds " + rel + ", a symbolic link";
    const std::string name = it->path().filename().string();
    bool known = false;
    if (it.depth() == 0 && fs::is_directory(status))
      known = name == "weights" || name == "snapshots";
    else if (fs::is_regular_file(status))
      known = run_file_name(it.depth() == 0 ? "" : rel.substr(0, rel.find('/')), name) &&
              it.depth() <= 1;
    if (!known) return "holds " + rel + ", which is not a file of a dln run";
  }
  return ec ? "cannot be listed (" + ec.message() + ")" : "";
}

void remove_run_temporaries(const fs::path& dir) {
  if (!is_dln_dir(dir))
    throw std::logic_error("remove_run_temporaries: " + dir.string() + " is not dln's");
  remove_temporaries_in(dir, [](std::string_view n) { return run_file_name("", n); });
  for (std::string_view folder : {std::string_view("weights"), std::string_view("snapshots")})
    if (is_real_dir(dir / folder))
      remove_temporaries_in(dir / folder,
                            [&](std::string_view n) { return run_file_name(folder, n); });
}

void remove_temporaries_of(const fs::path& dir, const std::vector<std::string>& names) {
  if (!is_dln_dir(dir))
    throw std::logic_error("remove_temporaries_of: " + dir.string() + " is not dln's");
  remove_temporaries_in(dir, [&](std::string_view n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  });
}

void remove_dln_dir(const fs::path& dir) {
  Marker m;
  if (!is_real_dir(dir) || !(read_marker(dir, m) || is_legacy_output(dir)))
    throw std::logic_error("refusing to remove " + dir.string() + ": dln did not write it");
  fs::remove_all(dir);
}

void remove_dln_file(const fs::path& dir, std::string_view name) {
  Marker m;
  if (!is_real_dir(dir) || !read_marker(dir, m))
    throw std::logic_error("refusing to remove " + (dir / name).string() +
                           ": dln did not write it");
  std::error_code ec;
  fs::remove(dir / name, ec);  // absent is fine
}

void make_staging_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir, ec))) {
    Marker m;
    if (!is_real_dir(dir) || !read_marker(dir, m))
      throw InputError(dir.string(), 0, "",
                       "exists and was not written by dln; dln needs this name for its work "
                       "(move it away)");
    fs::remove_all(dir);
  }
  // Marked before it appears under its name: a directory of that name without a marker is
  // never dln's. Only the hidden name can be left unmarked (and empty) by a kill.
  const fs::path fresh = dir.parent_path() / ("." + dir.filename().string() + ".new");
  if (is_dln_dir(fresh)) fs::remove_all(fresh);
  fs::create_directory(fresh);
  write_file_atomic(fresh / kMarker, marker_text("staging", {}, {}));
  fs::rename(fresh, dir);
}

void check_replaceable(const fs::path& target, bool force) {
  std::error_code ec;
  const auto status = fs::symlink_status(target, ec);
  if (!fs::exists(status)) return;
  const std::string where = target.string();
  if (fs::is_symlink(status))
    throw InputError(where, 0, "", "is a symbolic link; give the directory itself");
  if (!fs::is_directory(status)) throw InputError(where, 0, "", "exists and is not a directory");
  if (fs::is_empty(target, ec)) return;
  const std::string why = foreign_content(target);
  if (!force)
    throw InputError(where, 0, "",
                     why.empty() ? "already holds dln's output (use --force to replace it)"
                                 : "exists and is not empty: it " + why);
  if (!why.empty())
    throw InputError(where, 0, "",
                     "--force replaces only a directory that dln wrote, and this one " + why);
}

Output::Output(fs::path target, bool force) : target_(std::move(target)) {
  const fs::path parent = target_.parent_path();
  fs::create_directories(parent);
  const std::string name = target_.filename().string();
  lock_path_ = parent / ("." + name + ".dln-lock");

  // The lock: flock on a sibling file. A lock file that a finished writer unlinked (between our
  // open and our flock) is not the lock any more: open again.
  for (int attempt = 0; lock_fd_ < 0; ++attempt) {
    const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
      throw InputError(
          target_.string(), 0, "",
          "cannot create its lock file " + lock_path_.string() + " (" + errno_text() + ")");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK)
        throw InputError(
            target_.string(), 0, "",
            "another dln process is writing it (it holds " + lock_path_.string() + ")");
      throw InputError(target_.string(), 0, "",
                       "cannot lock " + lock_path_.string() + " (" + std::strerror(err) + ")");
    }
    struct stat held {
    }, now{};
    if (::fstat(fd, &held) == 0 && ::lstat(lock_path_.c_str(), &now) == 0 &&
        held.st_ino == now.st_ino && held.st_dev == now.st_dev) {
      lock_fd_ = fd;
    } else {
      ::close(fd);
      if (attempt > 100) throw InputError(target_.string(), 0, "", "cannot take its lock");
    }
  }

  try {
    // Staging directories of writers that were killed: nobody else holds the lock, so every
    // one of dln's is stale.
    const std::string stem = name + ".tmp-", old = name + ".old-";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(parent, ec)) {
      const std::string n = e.path().filename().string();
      const std::string hidden = "." + stem;
      const bool stale = (n.starts_with(stem) && all_digits(n.substr(stem.size()))) ||
                         (n.starts_with(old) && all_digits(n.substr(old.size()))) ||
                         (n.starts_with(hidden) && n.ends_with(".new") &&
                          all_digits(n.substr(hidden.size(), n.size() - hidden.size() - 4)));
      Marker m;
      if (stale && is_real_dir(e.path()) && read_marker(e.path(), m)) fs::remove_all(e.path());
    }

    check_replaceable(target_, force);
  } catch (...) {
    ::unlink(lock_path_.c_str());
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw;
  }
}

Output::~Output() {
  if (!staging_.empty() && !committed_) {
    try {
      if (fs::exists(fs::symlink_status(staging_))) remove_dln_dir(staging_);
    } catch (...) {  // left for the next writer of this target to clean up
    }
  }
  if (lock_fd_ >= 0) {
    struct stat held {
    }, now{};
    if (::fstat(lock_fd_, &held) == 0 && ::lstat(lock_path_.c_str(), &now) == 0 &&
        held.st_ino == now.st_ino && held.st_dev == now.st_dev && now.st_size == 0)
      ::unlink(lock_path_.c_str());
    ::close(lock_fd_);
  }
}

fs::path Output::sibling(std::string_view suffix) const {
  return target_.parent_path() / (target_.filename().string() + std::string(suffix));
}

fs::path Output::fresh_staging() {
  staging_ = sibling(".tmp-" + std::to_string(::getpid()));
  make_staging_dir(staging_);
  return staging_;
}

void Output::commit(const fs::path& staged) {
  sync_tree(staged);  // what it holds is on disk before it takes the target's name
  std::error_code ec;
  const auto status = fs::symlink_status(target_, ec);
  if (fs::exists(status) && !(fs::is_directory(status) && fs::is_empty(target_))) {
    // Checked again: the target may have changed while dln was writing.
    if (const std::string why = foreign_content(target_); !why.empty()) {
      committed_ = true;  // keep what was written: it is the only copy
      throw std::runtime_error(target_.string() + " changed while dln was writing (it " + why +
                               "); the new output is in " + staged.string());
    }
    if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0) {
      committed_ = true;
      remove_dln_dir(staged);  // now the old target
    } else {
      // No atomic exchange on this file system: the old target steps aside first.
      const fs::path old = sibling(".old-" + std::to_string(::getpid()));
      fs::rename(target_, old);
      fs::rename(staged, target_);
      committed_ = true;
      remove_dln_dir(old);
    }
  } else {
    fs::rename(staged, target_);
    committed_ = true;
  }
  sync_path(target_.parent_path());
}

}  // namespace dln::io
