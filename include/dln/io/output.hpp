// Everything dln writes goes through here. An output path is normalised once; a directory is
// written beside its target under a lock, marked as dln's, fsync'ed and renamed into place; and
// only a directory that dln itself wrote, holding nothing else, may ever be replaced or removed
// (docs/safety.md). Nothing outside this module removes a file or directory.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace dln::io {

// The file that marks a directory as dln's; it lists what dln wrote there.
inline constexpr std::string_view kMarker = ".dln";

// `path` as an absolute path without "." or ".." parts or a trailing slash, its parent resolved
// through symbolic links. InputError at `origin` (e.g. "--out" or "name") for an empty path, the
// root, or the current directory or one of its parents.
std::filesystem::path output_path(const std::string& path, const std::string& origin);

// Whether a file is made durable on its own (fsync) or later with the whole staging directory
// it lies in (sync_tree, one call for many files: a run directory's files are durable before
// its summary.json says it is finished, and before it is renamed into place).
enum class Durability { kFsync, kWithDirectory };

// Writes `bytes` to `path` as a whole or not at all: into a temporary sibling, fsync'ed (unless
// deferred to the directory), renamed.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes,
                       Durability durability = Durability::kFsync);

// fsyncs a file or directory that dln wrote (for files written by streaming).
void sync_path(const std::filesystem::path& path);

// Makes everything written under `dir` durable: one syncfs of its file system (on Linux far
// cheaper than an fsync per file), falling back to fsync of `dir` itself.
void sync_tree(const std::filesystem::path& dir);

// Marks `dir` as written by dln, listing every file and folder in it; a subfolder with a marker
// of its own is listed as a whole and checked by its own marker. `kind` is run, sweep,
// reproduction or staging.
void mark_dir(const std::filesystem::path& dir, std::string_view kind,
              Durability durability = Durability::kFsync);

// Whether `dir` is a real directory carrying a readable marker of dln's.
bool is_dln_dir(const std::filesystem::path& dir);

// Adds paths (relative to `dir`, written since it was marked) to its marker.
void add_to_marker(const std::filesystem::path& dir, const std::vector<std::string>& entries);

// "" when dln wrote `dir` and it holds nothing else; otherwise why it may not be replaced, e.g.
// "holds notes.txt, which dln did not write".
std::string foreign_content(const std::filesystem::path& dir);

// Whether `target` may be written: it does not exist, is an empty directory, or (with force) is
// a directory that dln wrote and holds nothing else. InputError naming it otherwise.
void check_replaceable(const std::filesystem::path& target, bool force);

// "" when every entry of `dir` (a run directory dln is writing, e.g. DIR.partial) is a name dln
// writes there: config.toml, metrics.csv, summary.json, checkpoint.npz, data_X/Y.npy,
// weights/W<l>.npy, snapshots/step_<k>.npz, the marker and their temporary siblings, none a
// symbolic link; otherwise what else it holds.
std::string foreign_in_run_dir(const std::filesystem::path& dir);

// Removes what a killed dln left half-written in the run directory `dir` (dln's, e.g. a
// DIR.partial it resumes): the temporary siblings ".NAME.tmp-PID-N" of a run's own files, at its
// top and in weights/ and snapshots/. Nothing else is touched; call it only while no other
// process writes there (the output's lock is held).
void remove_run_temporaries(const std::filesystem::path& dir);

// The same at the top of the directory `dir` (dln's) for the files `names` (e.g. a sweep's
// runs.csv and progress.json).
void remove_temporaries_of(const std::filesystem::path& dir, const std::vector<std::string>& names);

// Removes a directory tree that dln wrote (it carries the marker); throws std::logic_error for
// anything else, so that a mistake elsewhere cannot delete a user's files.
void remove_dln_dir(const std::filesystem::path& dir);

// Removes the file `name` that dln wrote in `dir`, a directory carrying dln's marker (absent:
// nothing happens); std::logic_error if `dir` is not dln's.
void remove_dln_file(const std::filesystem::path& dir, std::string_view name);

// Creates `dir` marked as a staging directory of dln's. An existing `dir` must be empty or dln's
// (it is removed first); anything else is an InputError.
void make_staging_dir(const std::filesystem::path& dir);

// One output directory while dln writes it: the lock (a sibling lock file, so that a second
// writer of the same target fails at once with InputError), the check that an existing target
// may be replaced (InputError otherwise, naming it), the cleanup of staging directories left by
// killed writers, and the final rename. Release by destruction.
class Output {
 public:
  // `target` as returned by output_path. Creates the parent folders.
  Output(std::filesystem::path target, bool force);
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  const std::filesystem::path& target() const { return target_; }
  // The sibling `target` + suffix, e.g. ".partial" (kept between attempts) or ".tmp-<pid>".
  std::filesystem::path sibling(std::string_view suffix) const;
  // A fresh staging directory target.tmp-<pid>, removed again unless committed.
  std::filesystem::path fresh_staging();
  // Moves the finished `staged` directory onto the target, replacing a directory that dln wrote
  // (checked again now), and fsyncs the parent.
  void commit(const std::filesystem::path& staged);

 private:
  std::filesystem::path target_, lock_path_, staging_;
  int lock_fd_ = -1;
  bool committed_ = false;
};

}  // namespace dln::io
