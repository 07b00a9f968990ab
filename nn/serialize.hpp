// tapegrad::nn: saving and loading named tensors as NumPy .npz files (a zip of .npy arrays, read
// by numpy.load). Files are written atomically: a temporary file in the same folder, flushed to
// disk, then renamed over the target, so a crash never leaves a half-written file where the last
// good one was. Loading checks every entry and lists every mismatch at once.
#pragma once

#include <string>

#include "module.hpp"
#include "optim.hpp"

namespace tapegrad::nn {

// Writes tensors (float32 -> '<f4', float64 -> '<f8') as name.npy entries of an .npz archive.
void save_tensors(const NamedTensors& tensors, const std::string& path);
// Reads every entry of an .npz archive of float32/float64 arrays, in archive order.
// A missing, truncated or malformed file is a FormatError naming the file and the entry.
NamedTensors load_tensors(const std::string& path);

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
