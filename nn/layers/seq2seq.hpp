/// \file
/// \brief An encoder-decoder (sequence to sequence) model with optional attention.
/// \ingroup modules
///
/// An encoder-decoder (sequence to sequence) model: source embedding, a recurrent
/// encoder (optionally bidirectional, bridged to the decoder's initial state), a recurrent decoder
/// with optional Luong attention and input feeding, and an output layer over the target vocabulary.
/// Trains with teacher forcing (optionally scheduled sampling); decodes through nn::greedy_decode
/// and nn::beam_search with the DecodeStepFn adapter decode_step / decode_fn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "../../autograd/functional.hpp"
#include "../../autograd/index.hpp"
#include "../train/decode.hpp"
#include "attention.hpp"
#include "linear.hpp"
#include "recurrent_layer.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// Options of EncoderDecoder.
struct EncoderDecoderOptions {
    std::size_t src_vocab_size = 0;  ///< Vs, the source vocabulary (required)
    std::size_t tgt_vocab_size = 0;  ///< Vt, the target vocabulary (required)
    std::size_t embedding_size = 0;      ///< both embeddings, unless one of the two below is set
    std::size_t src_embedding_size = 0;  ///< 0 = embedding_size
    std::size_t tgt_embedding_size = 0;  ///< 0 = embedding_size
    /// The decoder's hidden size and the size of the encoder's outputs. A bidirectional encoder has
    /// hidden_size / 2 per direction (OpenNMT-py's convention), so its outputs are hidden_size wide
    /// and every attention score, dot included, works with either encoder; hidden_size must be even.
    std::size_t hidden_size = 0;
    std::size_t num_layers = 1;  ///< of the encoder and of the decoder
    RecurrentKind encoder = RecurrentKind::lstm;  ///< the encoder's recurrent layer
    RecurrentKind decoder = RecurrentKind::lstm;  ///< the decoder's recurrent layer
    bool bidirectional = false;  ///< of the encoder
    /// nullopt: no attention, the decoder sees the source only through its initial state.
    std::optional<AttentionScore> attention = std::nullopt;
    /// On both embeddings' outputs, between recurrent layers, and before the output layer; training only.
    double dropout = 0.0;
    std::int64_t src_pad_id = 0;  ///< Embedding padding_idx of the source
    std::int64_t tgt_pad_id = 0;  ///< Embedding padding_idx of the target, and the loss's ignore_index
};

/// What the encoder hands the decoder.
struct EncoderOutput {
    Tensor outputs;                     ///< [S, B, H]: zeros at padded steps
    std::vector<std::int64_t> lengths;  ///< one per row: the given lengths, or S for every row
    RecurrentState state;               ///< the decoder's initial state: h [L, B, H], and c for an LSTM decoder
};

/// An encoder-decoder (sequence to sequence) model: source embedding, a recurrent encoder, a
/// bridge to the decoder's initial state, a recurrent decoder with optional attention and input
/// feeding, and an output layer; trained with teacher forcing (or scheduled sampling) and decoded
/// with greedy_decode() or beam_search().
///
/// Model (H = hidden_size, L = num_layers, E = embedding sizes):
///
///     encoder: outputs, (h_n, c_n) = encoder_rnn(dropout(src_embedding(src)), lengths)
///     initial decoder state, layer l: unidirectional, the encoder's own h_n[l] (and c_n[l]);
///       bidirectional, tanh(bridge_h_l{l}([h_fwd; h_bwd])) (and tanh(bridge_c_l{l}([c_fwd; c_bwd])));
///       an LSTM decoder after an RNN or GRU encoder starts with c = 0; an LSTM encoder's c is dropped
///       for an RNN or GRU decoder.
///     decoder step t, without attention: h_t = decoder_rnn(dropout(tgt_embedding(y_t)), h_{t-1});
///       logits_t = out(dropout(h_t)).
///     with attention (Luong et al. 2015, "general"/"dot" scores, or Bahdanau's additive score), input
///       feeding: x_t = [dropout(tgt_embedding(y_t)); a_{t-1}] with a_0 = 0; h_t = decoder_rnn(x_t, h_{t-1});
///       c_t = attention(h_t (top layer), outputs, lengths).context; a_t = tanh(attn_combine([c_t; h_t]));
///       logits_t = out(dropout(a_t)).
///
/// Parameters: src_embedding.weight [Vs, Es], tgt_embedding.weight [Vt, Et], encoder.* and decoder.*
/// (PyTorch's recurrent names), bridge_h_l{l}.weight/bias [H, H] and [H] (bidirectional; bridge_c_l{l}
/// too when both are LSTMs), attention.*, attn_combine.weight [H, 2H] (no bias, as Luong's W_c),
/// out.weight [Vt, H], out.bias [Vt].
class EncoderDecoder : public Module {
public:
    /// Builds every part; sizes of 0, an odd hidden_size with a bidirectional encoder, or options
    /// the layers refuse are a ValueError.
    explicit EncoderDecoder(const EncoderDecoderOptions& options);

    /// src [S, B] ids; src_lengths one per row in [1, S], empty when every step is valid. Steps past
    /// a row's length may hold any in-range id: they change nothing.
    EncoderOutput encode(const LongTensor& src, const std::vector<std::int64_t>& src_lengths = {}) const;

    /// Teacher forcing: tgt_in [T, B] (the start token first, the gold tokens shifted right) ->
    /// logits [T, B, Vt]. Steps after a row's end may hold the pad id: the loss ignores them and,
    /// the decoder being causal, they change no earlier step.
    Tensor forward(const LongTensor& src, const std::vector<std::int64_t>& src_lengths, const LongTensor& tgt_in) const;
    /// forward(src, src_lengths, tgt_in)
    Tensor operator()(const LongTensor& src, const std::vector<std::int64_t>& src_lengths,
                      const LongTensor& tgt_in) const {
        return forward(src, src_lengths, tgt_in);
    }
    /// Scheduled sampling (Bengio et al. 2015): at each step t >= 1, each row is fed the arg-max of its
    /// own logits at step t-1 (no gradient through the choice) with probability sampling_probability,
    /// else the gold tgt_in[t]. Draws one gen.uniform() per row per step t >= 1, rows in order, so a
    /// seeded generator reproduces the run; sampling_probability 0 draws nothing and is forward above.
    Tensor forward(const LongTensor& src, const std::vector<std::int64_t>& src_lengths, const LongTensor& tgt_in,
                   double sampling_probability, Generator& gen) const;
    /// forward(src, src_lengths, tgt_in, sampling_probability, gen)
    Tensor operator()(const LongTensor& src, const std::vector<std::int64_t>& src_lengths, const LongTensor& tgt_in,
                      double sampling_probability, Generator& gen) const {
        return forward(src, src_lengths, tgt_in, sampling_probability, gen);
    }

    /// Cross-entropy of logits [T, B, Vt] against tgt_out [T, B] (tgt_in shifted left: the gold
    /// tokens, then the end token, then padding), positions holding tgt_pad_id ignored.
    Tensor loss(const Tensor& logits, const LongTensor& tgt_out, Reduction reduction = Reduction::mean) const;

    // ---- decoding through nn::greedy_decode / nn::beam_search (hypothesis axis 0) ----
    /// The packed state for B source rows, [B, K], row b holding hypothesis b's everything:
    ///
    ///     column 0                  the source length, as a float (to_long converts it back)
    ///     next Ls*H columns         the decoder state: pack_state's [Ls, B, H] batch-major
    ///                               (Ls = L, or 2L for an LSTM decoder: h then c)
    ///     attention only: next H    a_{t-1}, the previous attentional vector (zeros at first)
    ///     attention only: S*H more  the encoder outputs [S, B, H] batch-major ([B, S, H] flattened)
    ///
    /// K = 1 + Ls*H (+ H + S*H with attention). Rows may be selected, repeated and reordered freely.
    Tensor decode_state(const LongTensor& src, const std::vector<std::int64_t>& src_lengths = {}) const;
    /// One decoder step for N hypotheses: tokens [N], state [N, K] from decode_state (updated in
    /// place) -> logits [N, Vt]. Feeding the gold tgt_in rows one by one gives forward's logits.
    Tensor decode_step(const LongTensor& tokens, Tensor& state) const;
    /// decode_step as a DecodeStepFn. It refers to this module, which must outlive it.
    DecodeStepFn decode_fn() const;

    std::string type_name() const override { return "EncoderDecoder"; }  ///< "EncoderDecoder"
    std::string extra_repr() const override;  ///< the sizes and options, for summary()

    const EncoderDecoderOptions options;  ///< as given
    std::shared_ptr<Embedding> src_embedding;  ///< [Vs, Es]
    std::shared_ptr<Embedding> tgt_embedding;  ///< [Vt, Et]
    std::shared_ptr<RecurrentLayer> encoder_rnn;  ///< registered as "encoder"
    std::shared_ptr<RecurrentLayer> decoder_rnn;  ///< registered as "decoder"
    std::vector<std::shared_ptr<Linear>> bridge_h;  ///< one per layer; bidirectional only
    std::vector<std::shared_ptr<Linear>> bridge_c;  ///< one per layer; bidirectional LSTM to LSTM only
    std::shared_ptr<Attention> attention;                      ///< null without attention
    std::shared_ptr<Linear> attn_combine;                      ///< null without attention
    std::shared_ptr<Linear> out;  ///< [Vt, H] and [Vt]: the logits

private:
    struct StepState {
        RecurrentState rnn;
        Tensor feed;  ///< [B, H] a_{t-1}; attention only
    };
    /// One decoder step: tokens [B] -> logits [B, Vt], updating st.
    Tensor step(const xt::xarray<std::int64_t>& tokens, StepState& st, const Tensor& memory,
                const std::vector<std::int64_t>& lengths) const;
    Tensor run(const LongTensor& src, const std::vector<std::int64_t>& src_lengths, const LongTensor& tgt_in,
               double sampling_probability, Generator* gen) const;
    std::size_t state_rows() const;  ///< Ls
};

/// @}
}  // namespace tapegrad::nn
