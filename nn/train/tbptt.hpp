/// \file
/// \brief Truncated backpropagation through time, in the general k1/k2 form.
/// \ingroup training
///
/// Truncated backpropagation through time, in Williams and Peng's general k1/k2 form.
/// A long sequence (or a [N, B] batch of parallel streams) is trained by updates every k1 steps,
/// each backpropagating through at most k2 steps, so memory stays bounded however long the stream.
/// Works with any model: the caller supplies a function from (steps, state) to (loss, new state).
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

/// \addtogroup training
/// @{

/// Options of tbptt(): k1, k2 and state resets.
struct TbpttOptions {
    std::size_t k1 = 0;  ///< steps advanced between updates (each update backpropagates their losses)
    std::size_t k2 = 0;  ///< steps backpropagated per update, k2 >= k1; 0 means k2 = k1 (plain chunking)
    /// Steps t at which the state is replaced by the initial state before step t runs (e.g. at
    /// document boundaries in a concatenated corpus). The whole state is reset; to reset single
    /// rows of a batch of streams, multiply the state by a mask inside the step function.
    std::vector<std::size_t> reset_at{};
};

/// A run of consecutive steps [begin, end) the driver asks the model to take.
struct TbpttSpan {
    std::size_t begin = 0;  ///< the first step of the span
    std::size_t end = 0;    ///< one past its last step
    /// Whether this span's loss is backpropagated (it lies in its update's last k1 steps). A span
    /// without loss only rebuilds the recurrent context; its returned loss is ignored and may be
    /// left undefined.
    bool has_loss = false;
    std::size_t update = 0;      ///< index of the update this span belongs to
    std::size_t loss_steps = 0;  ///< how many steps' losses the update sums (to average, divide by it)
};

/// What the step or span function returns.
struct TbpttOut {
    Tensor loss;   ///< one element; the update backpropagates the sum over its spans with has_loss
    Tensor state;  ///< the state after the span's last step (any shape; an LSTM can concat (h, c))
};

/// What an update did, passed to the update callback after backward.
struct TbpttUpdate {
    std::size_t index = 0;         ///< the update's number, from 0
    std::size_t window_begin = 0;  ///< first step recorded on this update's tape
    std::size_t loss_begin = 0;    ///< first step whose loss counts
    std::size_t end = 0;           ///< one past the last step
    double loss = 0.0;             ///< the backpropagated loss (sum over the loss spans)
};

/// What tbptt() returns.
struct TbpttResult {
    std::vector<double> losses;  ///< one per update
    Tensor state;                ///< the state after the last step, detached
};

/// Runs the model over a span of steps from a state; returns the loss and the new state.
using TbpttSpanFn = std::function<TbpttOut(const TbpttSpan& span, const Tensor& state)>;
/// Runs the model for one step t from a state; returns that step's loss and the new state.
using TbpttStepFn = std::function<TbpttOut(std::size_t t, const Tensor& state)>;
/// Called after each update's backward (typically: clip, optimizer.step(), zero_grad()).
using TbpttUpdateFn = std::function<void(const TbpttUpdate& update)>;

/// Walks steps 0..total_steps-1 in updates u = 0, 1, ...: update u's loss steps are
/// [u k1, min((u+1) k1, total)), and its window starts k2 - k1 steps before them (at 0 at the
/// earliest). Each update runs its window on a Tape of its own, starting from the state carried
/// in DETACHED from the previous update (captured at this window's first step), sums the losses of
/// the loss steps, runs backward, then calls on_update (typically: clip, optimizer.step(),
/// zero_grad). The steps before the loss steps are recomputed with the current parameters: they
/// carry the gradient of the loss k2 steps back without adding their own loss again.
///
/// State semantics: a window starting at step 0 or at a reset step starts from initial_state
/// itself (not detached, so a learnt h0 gets gradients); every other window starts from a detached
/// copy of the state reached at that step by the previous update. initial_state may be undefined
/// (the step function then decides what "no state" means, e.g. zeros, as RNNCell does).
/// k1 = k2 = total_steps is full backpropagation through time; k1 = k2 = k the common chunked form.
/// Without on_update, gradients accumulate over all updates.
TbpttResult tbptt(std::size_t total_steps, const Tensor& initial_state, const TbpttOptions& options,
                  const TbpttSpanFn& run, const TbpttUpdateFn& on_update = {});
/// The same with a function of one step at a time (a hand-written cell); losses of steps outside
/// the loss steps are ignored.
TbpttResult tbptt_steps(std::size_t total_steps, const Tensor& initial_state, const TbpttOptions& options,
                        const TbpttStepFn& step, const TbpttUpdateFn& on_update = {});

/// @}
}  // namespace tapegrad::nn
