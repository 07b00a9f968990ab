/// \file
/// \brief Attention over a padded batch of encoder outputs.
/// \ingroup modules
///
/// Attention over a padded batch of encoder outputs, the piece a sequence-to-sequence
/// decoder uses to look back at its source: additive (Bahdanau) and multiplicative (Luong's "dot"
/// and "general") scores, a softmax over each sequence's valid steps, and the weighted sum.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "linear.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// How Attention scores a key against the query.
enum class AttentionScore {
    additive,  ///< Bahdanau: v^T tanh(W_q q + W_k k + b)
    dot,       ///< Luong "dot": q . k (query_size must equal key_size)
    general,   ///< Luong "general": (W q) . k
};

const char* attention_score_name(AttentionScore score);  ///< "additive", "dot", "general"

/// Options of Attention.
struct AttentionOptions {
    AttentionScore score = AttentionScore::additive;  ///< additive, dot or general
    std::size_t query_size = 0;      ///< Hq, the decoder state's size
    std::size_t key_size = 0;        ///< Hk, the encoder output's size (also the context's size)
    std::size_t attention_size = 0;  ///< additive only: the hidden size of the score; 0 = key_size
    bool batch_first = false;        ///< keys [B, S, Hk] rather than the library's time-major [S, B, Hk]
};

/// What Attention::forward returns.
struct AttentionOutput {
    Tensor context;  ///< [B, Hk]: sum_s weights[b, s] * keys[s, b]
    Tensor weights;  ///< [B, S]: a softmax over the valid steps; exactly 0 on padded steps
};

/// Attention over a padded batch of encoder outputs: scores of every key against the query, a
/// softmax over each row's valid steps, and the weighted sum of the keys (the context).
/// Parameters (PyTorch's Linear names, shapes and init, U(-1/sqrt(in), 1/sqrt(in))):
/// - additive: query_proj.weight [A, Hq]; key_proj.weight [A, Hk], key_proj.bias [A]; v.weight [1, A].
///   One bias is enough (the two projections are added); a bias on v would shift every
///   score of a row equally, which the softmax ignores, so it would never learn.
/// - general: weight [Hk, Hq], as OpenNMT-py's linear_in (score = q^T weight^T k).
/// - dot: none.
///
/// Padded steps (s >= lengths[b]) are replaced by zeros before anything reads them and their scores
/// are set to -inf before the softmax, so whatever they hold, NaN and Inf included, changes neither
/// the outputs nor any gradient, and the keys get exactly zero gradient there.
class Attention : public Module {
public:
    /// Sizes of 0, or dot with query_size != key_size, are a ValueError.
    explicit Attention(const AttentionOptions& options);
    /// query [B, Hq]; keys [S, B, Hk] (or [B, S, Hk] with batch_first), used as the values too;
    /// lengths: one per batch row in [1, S], or empty when every step is valid.
    AttentionOutput forward(const Tensor& query, const Tensor& keys,
                            const std::vector<std::int64_t>& lengths = {}) const;
    /// forward(query, keys, lengths)
    AttentionOutput operator()(const Tensor& query, const Tensor& keys,
                               const std::vector<std::int64_t>& lengths = {}) const {
        return forward(query, keys, lengths);
    }

    std::string type_name() const override { return "Attention"; }  ///< "Attention"
    std::string extra_repr() const override;  ///< the score and sizes, for summary()

    const AttentionOptions options;  ///< as given
    /// additive only (null otherwise), owned so that an Attention can be moved: W_q, no bias.
    std::shared_ptr<Linear> query_proj;
    std::shared_ptr<Linear> key_proj;  ///< additive only: W_k and b
    std::shared_ptr<Linear> v;         ///< additive only: v, no bias
    Tensor weight;  ///< general only: [Hk, Hq]
};

/// @}
}  // namespace tapegrad::nn
