/// \file
/// \brief Decoding whole output sequences from a sequence-to-sequence model: greedy and beam search.
/// \ingroup training
///
/// Decoding whole output sequences from a sequence-to-sequence model, a batch at a time:
/// greedy decoding and beam search with n-best lists and GNMT-style length normalisation. Works with
/// any model through a step function over a batch of hypotheses, as nn::sample does for one sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "../../autograd/index.hpp"
#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

/// \addtogroup training
/// @{

/// Feeds tokens [N] (one per hypothesis) to the model, updating `state` in place, and returns the
/// scores [N, V] of the next token: logits or log-probabilities (log_softmax is applied either way).
/// Row n of the state belongs to hypothesis n along DecodeOptions::state_axis: between steps the
/// decoder keeps, repeats and reorders hypotheses with index_select(state, state_axis, rows), so N
/// changes from step to step. Several tensors (an LSTM's h and c, encoder outputs for attention)
/// are packed into one state with the hypothesis axis in common.
using DecodeStepFn = std::function<Tensor(const LongTensor& tokens, Tensor& state)>;

/// Options of greedy_decode() and beam_search().
struct DecodeOptions {
    std::int64_t start_token = -1;  ///< fed at the first step; must be set (>= 0)
    std::int64_t end_token = -1;    ///< ends a hypothesis and is not returned; must be set (>= 0)
    std::size_t max_length = 0;     ///< most tokens a hypothesis generates, its end token included; > 0
    std::size_t beam_width = 1;     ///< live hypotheses kept per batch row (beam_search only)
    std::size_t n_best = 1;         ///< finished hypotheses returned per batch row, <= beam_width
    /// alpha of the score log P / L^alpha, L the tokens generated (end token included): GNMT's length
    /// normalisation without its constant 5. 0 = plain log-probability, which favours short outputs.
    double length_penalty = 0.0;
    long state_axis = 0;  ///< the state's hypothesis axis (negative counts from the end)
};

/// One decoded output sequence and its scores.
struct Hypothesis {
    std::vector<std::int64_t> tokens;  ///< without the start and end tokens
    double log_prob = 0.0;             ///< sum of the log-probabilities of the tokens generated, end included
    double score = 0.0;                ///< log_prob / L^length_penalty
};

/// The arg-max token at every step (the lowest id on a tie) for each of the B rows of `state`
/// (B = state.size(state_axis)) until it produces end_token or max_length tokens. Rows that end are
/// dropped from the batch. Returns one hypothesis per row. Runs under NoGrad; `state` is not changed.
std::vector<Hypothesis> greedy_decode(const DecodeStepFn& step, const Tensor& state, const DecodeOptions& options);

/// Beam search for each of the B rows of `state`. Each step extends every live hypothesis by every
/// token; of a row's candidates, ranked by log-probability, those ending in end_token finish if they
/// rank among the first beam_width, and the best beam_width others stay live (Hugging Face's and
/// fairseq's rule: the beam stays full). A hypothesis reaching max_length finishes as it is. A row
/// stops when it has n_best finished hypotheses and no live one can still beat the n_best-th: since
/// log-probabilities only fall, a live hypothesis can score at most log P / max_length^alpha. Returns
/// each row's n_best finished hypotheses, best score first (fewer only if fewer had a finite score).
/// beam_width 1 with length_penalty 0 is greedy_decode. Runs under NoGrad; `state` is not changed.
std::vector<std::vector<Hypothesis>> beam_search(const DecodeStepFn& step, const Tensor& state,
                                                 const DecodeOptions& options);

/// @}
}  // namespace tapegrad::nn
