// tapegrad::nn: saving and loading named tensors as NumPy .npz files (a zip of .npy arrays, read
// by numpy.load). Files are written atomically: a temporary file in the same folder, flushed to
// disk, then renamed over the target, so a crash never leaves a half-written file where the last
// good one was. Loading checks every entry and lists every mismatch at once.
#pragma once

#include <string>
#include <string_view>

#include "module.hpp"
#include "optim.hpp"

namespace tapegrad::nn {

// Writes tensors (float32 -> '<f4', float64 -> '<f8') as name.npy entries of an .npz archive.
void save_tensors(const NamedTensors& tensors, const std::string& path);
// Reads every entry of an .npz archive of float32/float64 arrays, in archive order.
// A missing, truncated or malformed file is a FormatError naming the file and the entry.
// Every entry name appears once; an entry's sizes are checked against the bytes really present
// before memory is set aside for it, so a hostile file cannot make the loader allocate much more
// than the file holds.
NamedTensors load_tensors(const std::string& path);
// load_tensors for an archive already in memory; `name` stands for the file in messages.
NamedTensors load_tensors_from_memory(std::string_view bytes, const std::string& name = "<memory>");

// One .npy array as bytes ('<f4' or '<f8', C order): what save_tensors stores for each entry.
std::string to_npy(const Tensor& t);
// Parses one .npy array (version 1-3, little-endian float32/float64, C order, or Fortran order when
// that is the same layout). Anything else, or data shorter or longer than the shape says, is a
// FormatError naming `name`.
Tensor from_npy(std::string_view bytes, const std::string& name = "npy");

// The module's parameters by dotted name, copied (later training does not change the result).
NamedTensors state_dict(const Module& module);
// Copies values into the module's parameters. Every missing, unexpected, wrongly shaped or wrongly
// typed entry is listed in one ValueError, and then nothing is changed.
void load_state_dict(Module& module, const NamedTensors& state);

// Loads a model's and its optimizer's state together: both are checked before either changes, so
// when one does not fit, model and optimizer are left as they were (a ValueError listing the problems).
void load_state_dicts(Module& module, Optimizer& optimizer, const NamedTensors& model_state,
                      const NamedTensors& optimizer_state);

// save_tensors(state_dict(module)) and load_state_dict(module, load_tensors(path)).
void save(const Module& module, const std::string& path);
void load(Module& module, const std::string& path);

// The model and its optimizer's state in one file: the parameters under their own names, the
// optimizer's state under "optimizer." (so numpy.load still finds every parameter by name).
void save(const Module& module, const Optimizer& optimizer, const std::string& path);
void load(Module& module, Optimizer& optimizer, const std::string& path);

}  // namespace tapegrad::nn
