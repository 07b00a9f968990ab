/// \file
/// \brief Training checkpoints: model, optimizer, scheduler and progress in one .npz file.
/// \ingroup files
///
/// Training checkpoints. One .npz, written atomically, holds everything needed to
/// resume a run exactly: the model's parameters, the optimizer's state and learning rates, the
/// learning-rate scheduler's state (when given), the step counter, the random generator's state,
/// any extra named tensors (e.g. a vocabulary), and metadata strings (e.g. the model's configuration,
/// so that a program can rebuild the model from the checkpoint alone).
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "../../autograd/random.hpp"
#include "../layers/module.hpp"
#include "../optim/optim.hpp"
#include "../optim/scheduler.hpp"
#include "serialize.hpp"

namespace tapegrad::nn {

/// \addtogroup files
/// @{

/// Named strings stored with a checkpoint: any UTF-8 text (JSON included) under non-empty keys.
using Metadata = std::map<std::string, std::string>;

/// What load_checkpoint() returns besides restoring the objects.
struct CheckpointInfo {
    std::size_t step = 0;  ///< the step counter given to save_checkpoint
    NamedTensors extras;   ///< the extra tensors given to save_checkpoint, in their order
    Metadata metadata;     ///< the metadata given to save_checkpoint
};

/// Archive layout (numpy.load reads it): the parameters under their own dotted names (so
/// PyTorch-style tools still find "weight_ih_l0"), the optimizer's state under "optimizer." (its
/// groups' learning rates included), the extras under "extra.", and "checkpoint.step",
/// "checkpoint.lr" (the first group's), "checkpoint.generator" (the generator's state text, one
/// byte per float64 element) and "checkpoint.version"; each metadata string is a 0-d str array
/// "checkpoint.meta.<key>" (numpy.load(path)["checkpoint.meta.config"].item() reads it).
/// A parameter name starting with one of those prefixes, a bad extra name, an empty metadata key or
/// a value that is not UTF-8 text is a ValueError.
void save_checkpoint(const std::string& path, const Module& module, const Optimizer& optimizer, std::size_t step,
                     const Generator& gen, const NamedTensors& extras = {}, const Metadata& metadata = {});
/// The same with the scheduler's state_dict() under "scheduler." (then a parameter name may not
/// start with "scheduler." either).
void save_checkpoint(const std::string& path, const Module& module, const Optimizer& optimizer,
                     const LRScheduler& scheduler, std::size_t step, const Generator& gen,
                     const NamedTensors& extras = {}, const Metadata& metadata = {});

/// The metadata of a checkpoint alone, read before there is a model to load into (to build it from
/// the configuration saved with it). A file that is not a checkpoint is a FormatError.
Metadata load_checkpoint_metadata(const std::string& path);

/// Restores module, optimizer (state and learning rate) and generator, and returns the step, the
/// extras and the metadata. Everything is checked before anything changes: a checkpoint of another model or
/// optimizer is a ValueError listing every mismatch (names, shapes, dtypes), and a file that is
/// missing, truncated or not a checkpoint is a FormatError; either way module, optimizer and
/// generator are left as they were.
CheckpointInfo load_checkpoint(const std::string& path, Module& module, Optimizer& optimizer, Generator& gen);
/// The same for a checkpoint saved with a scheduler, which is restored too (its state checked with
/// the others', and left as it was if anything does not fit). A checkpoint without a scheduler's
/// state is a ValueError here.
CheckpointInfo load_checkpoint(const std::string& path, Module& module, Optimizer& optimizer, LRScheduler& scheduler,
                               Generator& gen);

/// load_checkpoint for entries already read (by load_arrays_from_memory; entries from
/// load_tensors lack the metadata strings); `path` names them in messages. Two entries with one name
/// are a FormatError.
CheckpointInfo restore_checkpoint(const NamedArrays& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, Generator& gen);
/// The same with a scheduler, as load_checkpoint with a scheduler.
CheckpointInfo restore_checkpoint(const NamedArrays& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, LRScheduler& scheduler, Generator& gen);
/// The same from float entries only (load_tensors): the metadata strings are absent.
CheckpointInfo restore_checkpoint(const NamedTensors& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, Generator& gen);
/// The same from float entries only, with a scheduler.
CheckpointInfo restore_checkpoint(const NamedTensors& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, LRScheduler& scheduler, Generator& gen);

/// @}
}  // namespace tapegrad::nn
