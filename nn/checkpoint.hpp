// tapegrad::nn: training checkpoints. One .npz, written atomically, holds everything needed to
// resume a run exactly: the model's parameters, the optimizer's state and learning rates, the
// learning-rate scheduler's state (when given), the step counter, the random generator's state,
// and any extra named tensors (e.g. a vocabulary).
#pragma once

#include <cstddef>
#include <string>

#include "../autograd/random.hpp"
#include "module.hpp"
#include "optim.hpp"
#include "scheduler.hpp"

namespace tapegrad::nn {

struct CheckpointInfo {
    std::size_t step = 0;  // the step counter given to save_checkpoint
    NamedTensors extras;   // the extra tensors given to save_checkpoint, in their order
};

// Archive layout (numpy.load reads it): the parameters under their own dotted names (so
// PyTorch-style tools still find "weight_ih_l0"), the optimizer's state under "optimizer." (its
// groups' learning rates included), the extras under "extra.", and "checkpoint.step",
// "checkpoint.lr" (the first group's), "checkpoint.generator" (the generator's state text, one
// byte per float64 element) and "checkpoint.version".
// A parameter name starting with one of those prefixes, or a bad extra name, is a ValueError.
void save_checkpoint(const std::string& path, const Module& module, const Optimizer& optimizer, std::size_t step,
                     const Generator& gen, const NamedTensors& extras = {});
// The same with the scheduler's state_dict() under "scheduler." (then a parameter name may not
// start with "scheduler." either).
void save_checkpoint(const std::string& path, const Module& module, const Optimizer& optimizer,
                     const LRScheduler& scheduler, std::size_t step, const Generator& gen,
                     const NamedTensors& extras = {});

// Restores module, optimizer (state and learning rate) and generator, and returns the step and the
// extras. Everything is checked before anything changes: a checkpoint of another model or
// optimizer is a ValueError listing every mismatch (names, shapes, dtypes), and a file that is
// missing, truncated or not a checkpoint is a FormatError; either way module, optimizer and
// generator are left as they were.
CheckpointInfo load_checkpoint(const std::string& path, Module& module, Optimizer& optimizer, Generator& gen);
// The same for a checkpoint saved with a scheduler, which is restored too (its state checked with
// the others', and left as it was if anything does not fit). A checkpoint without a scheduler's
// state is a ValueError here.
CheckpointInfo load_checkpoint(const std::string& path, Module& module, Optimizer& optimizer, LRScheduler& scheduler,
                               Generator& gen);

// load_checkpoint for entries already read (e.g. by load_tensors_from_memory); `path` names them in
// messages. Two entries with one name are a FormatError.
CheckpointInfo restore_checkpoint(const NamedTensors& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, Generator& gen);
CheckpointInfo restore_checkpoint(const NamedTensors& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, LRScheduler& scheduler, Generator& gen);

}  // namespace tapegrad::nn
