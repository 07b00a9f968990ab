// tapegrad::nn: EncoderDecoder. Composed from the library's layers and recorded ops, so its gradient
// is the tape's; the work of its own is checking input, bridging the encoder's final state to the
// decoder, and packing everything a hypothesis needs into one row for the decoders.
#include "seq2seq.hpp"

#include <fmt/format.h>

#include "../../autograd/ops.hpp"

namespace tapegrad::nn {

namespace {
constexpr const char* kWho = "EncoderDecoder";

// ids [rows, B] (or [N] when rows == 0) with every id in [0, vocab): a ShapeError or ValueError naming what.
void check_ids(const LongTensor& ids, std::size_t dims, const char* what, const char* layout, std::size_t vocab) {
    if (ids.dim() != dims || ids.numel() == 0)
        throw ShapeError(fmt::format("{}: {} must be non-empty {} ids, got {}", kWho, what, layout,
                                     shape_str(ids.shape())));
    const auto& a = ids.array();
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a.data()[i] < 0 || a.data()[i] >= static_cast<std::int64_t>(vocab))
            throw ValueError(fmt::format("{}: {} {} holds id {} at flat position {}, outside the vocabulary [0, {})",
                                         kWho, what, shape_str(ids.shape()), a.data()[i], i, vocab));
}
}  // namespace

EncoderDecoder::EncoderDecoder(const EncoderDecoderOptions& o) : options(o) {
    const std::size_t Es = o.src_embedding_size ? o.src_embedding_size : o.embedding_size;
    const std::size_t Et = o.tgt_embedding_size ? o.tgt_embedding_size : o.embedding_size;
    const std::size_t H = o.hidden_size, L = o.num_layers;
    if (o.src_vocab_size == 0 || o.tgt_vocab_size == 0 || Es == 0 || Et == 0 || H == 0 || L == 0)
        throw ValueError(fmt::format("{}: src_vocab_size {}, tgt_vocab_size {}, embedding sizes {} and {}, "
                                     "hidden_size {} and num_layers {} must all be positive",
                                     kWho, o.src_vocab_size, o.tgt_vocab_size, Es, Et, H, L));
    if (o.bidirectional && H % 2 != 0)
        throw ValueError(fmt::format("{}: a bidirectional encoder has hidden_size / 2 per direction, so hidden_size "
                                     "must be even, got {}",
                                     kWho, H));
    if (o.src_pad_id < 0 || o.src_pad_id >= static_cast<std::int64_t>(o.src_vocab_size) || o.tgt_pad_id < 0 ||
        o.tgt_pad_id >= static_cast<std::int64_t>(o.tgt_vocab_size))
        throw ValueError(fmt::format("{}: src_pad_id {} must be in [0, {}) and tgt_pad_id {} in [0, {})", kWho,
                                     o.src_pad_id, o.src_vocab_size, o.tgt_pad_id, o.tgt_vocab_size));
    if (!(o.dropout >= 0.0 && o.dropout < 1.0))
        throw ValueError(fmt::format("{}: dropout must be in [0, 1), got {}", kWho, o.dropout));

    src_embedding = register_module("src_embedding", Embedding(o.src_vocab_size, Es, o.src_pad_id));
    tgt_embedding = register_module("tgt_embedding", Embedding(o.tgt_vocab_size, Et, o.tgt_pad_id));
    const std::size_t He = o.bidirectional ? H / 2 : H;
    encoder_rnn = register_module(
        "encoder", std::shared_ptr<RecurrentLayer>(make_recurrent(
                       o.encoder, {.input_size = Es, .hidden_size = He, .num_layers = L, .dropout = o.dropout,
                                   .bidirectional = o.bidirectional})));
    // Input feeding: the decoder reads the previous attentional vector beside the embedding.
    const std::size_t Din = Et + (o.attention ? H : 0);
    decoder_rnn = register_module("decoder", std::shared_ptr<RecurrentLayer>(make_recurrent(
                                                 o.decoder, {.input_size = Din, .hidden_size = H, .num_layers = L,
                                                             .dropout = o.dropout})));
    if (o.bidirectional) {
        const bool both_lstm = o.encoder == RecurrentKind::lstm && o.decoder == RecurrentKind::lstm;
        for (std::size_t l = 0; l < L; ++l) {
            bridge_h.push_back(register_module(fmt::format("bridge_h_l{}", l), Linear(H, H)));
            if (both_lstm) bridge_c.push_back(register_module(fmt::format("bridge_c_l{}", l), Linear(H, H)));
        }
    }
    if (o.attention) {
        attention = register_module("attention", Attention({.score = *o.attention, .query_size = H, .key_size = H}));
        attn_combine = register_module("attn_combine", Linear(2 * H, H, false));
    }
    out = register_module("out", Linear(H, o.tgt_vocab_size));
}

std::string EncoderDecoder::extra_repr() const {
    const auto& o = options;
    return fmt::format("{}->{}, src_vocab={}, tgt_vocab={}, hidden_size={}, num_layers={}{}{}{}",
                       recurrent_kind_name(o.encoder), recurrent_kind_name(o.decoder), o.src_vocab_size,
                       o.tgt_vocab_size, o.hidden_size, o.num_layers, o.bidirectional ? ", bidirectional" : "",
                       o.attention ? fmt::format(", attention={}", attention_score_name(*o.attention)) : "",
                       o.dropout > 0 ? fmt::format(", dropout={}", o.dropout) : "");
}

std::size_t EncoderDecoder::state_rows() const {
    return options.num_layers * (options.decoder == RecurrentKind::lstm ? 2 : 1);
}

EncoderOutput EncoderDecoder::encode(const LongTensor& src, const std::vector<std::int64_t>& src_lengths) const {
    check_ids(src, 2, "src", "[source, batch]", options.src_vocab_size);
    const std::size_t S = src.size(0), B = src.size(1), H = options.hidden_size, L = options.num_layers;
    if (!src_lengths.empty() && src_lengths.size() != B)
        throw ShapeError(fmt::format("{}: {} src_lengths given for src {} ([source, batch]) with batch {}", kWho,
                                     src_lengths.size(), shape_str(src.shape()), B));
    for (std::size_t b = 0; b < src_lengths.size(); ++b)
        if (src_lengths[b] < 1 || src_lengths[b] > static_cast<std::int64_t>(S))
            throw ValueError(fmt::format("{}: src_lengths[{}] = {} is outside [1, {}] for src {}", kWho, b,
                                         src_lengths[b], S, shape_str(src.shape())));
    EncoderOutput enc;
    enc.lengths = src_lengths.empty() ? std::vector<std::int64_t>(B, static_cast<std::int64_t>(S)) : src_lengths;
    const Tensor x = dropout((*src_embedding)(src), options.dropout, is_training());
    RecurrentResult r = encoder_rnn->forward(x, RecurrentState{}, src_lengths);
    enc.outputs = r.output;  // [S, B, H]: the forward direction's half first

    // h_n [L*D, B, He], row l*D + d -> the decoder's [L, B, H].
    const auto bridge = [&](const Tensor& s, const std::vector<std::shared_ptr<Linear>>& lin) {
        if (!options.bidirectional) return s;
        // [L, 2, B, He] -> [L, B, 2, He] -> [L, B, H]: row l holds [forward; backward] of layer l.
        const Tensor both = reshape(permute(reshape(s, {long(L), 2, long(B), long(H / 2)}), {0, 2, 1, 3}),
                                    {long(L), long(B), long(H)});
        std::vector<Tensor> layers;
        for (std::size_t l = 0; l < L; ++l) layers.push_back(tanh((*lin[l])(select(both, 0, long(l)))));
        return stack(layers, 0);
    };
    enc.state.h = bridge(r.state.h, bridge_h);
    if (options.decoder == RecurrentKind::lstm)
        enc.state.c = options.encoder == RecurrentKind::lstm ? bridge(r.state.c, bridge_c)
                                                             : zeros({L, B, H}, enc.outputs.dtype());
    return enc;
}

Tensor EncoderDecoder::step(const xt::xarray<std::int64_t>& tokens, StepState& st, const Tensor& memory,
                            const std::vector<std::int64_t>& lengths) const {
    Tensor x = dropout((*tgt_embedding)(tokens), options.dropout, is_training());  // [B, Et]
    if (attention) x = concat({x, st.feed}, 1);
    RecurrentResult r = decoder_rnn->forward(unsqueeze(x, 0), st.rnn);
    st.rnn = r.state;
    Tensor h = squeeze(r.output, 0);  // [B, H], the top layer
    if (attention) {
        const Tensor context = (*attention)(h, memory, lengths).context;
        h = tanh((*attn_combine)(concat({context, h}, 1)));
        st.feed = h;
    }
    return (*out)(dropout(h, options.dropout, is_training()));
}

Tensor EncoderDecoder::run(const LongTensor& src, const std::vector<std::int64_t>& src_lengths,
                           const LongTensor& tgt_in, double p, Generator* gen) const {
    if (!(p >= 0.0 && p <= 1.0))
        throw ValueError(fmt::format("{}: sampling_probability must be in [0, 1], got {}", kWho, p));
    check_ids(tgt_in, 2, "tgt_in", "[target, batch]", options.tgt_vocab_size);
    if (src.dim() == 2 && tgt_in.size(1) != src.size(1))
        throw ShapeError(fmt::format("{}: src {} ([source, batch]) has batch {} but tgt_in {} ([target, batch]) has "
                                     "batch {}",
                                     kWho, shape_str(src.shape()), src.size(1), shape_str(tgt_in.shape()),
                                     tgt_in.size(1)));
    const EncoderOutput enc = encode(src, src_lengths);
    const std::size_t T = tgt_in.size(0), B = tgt_in.size(1);
    if (!attention && p == 0.0) {
        // Nothing depends on the previous step's output: one call over the whole target.
        const Tensor x = dropout((*tgt_embedding)(tgt_in), options.dropout, is_training());
        const Tensor h = decoder_rnn->forward(x, enc.state).output;  // [T, B, H]
        return (*out)(dropout(h, options.dropout, is_training()));
    }
    StepState st{enc.state, attention ? zeros({B, options.hidden_size}, enc.outputs.dtype()) : Tensor()};
    std::vector<Tensor> logits;
    xt::xarray<std::int64_t> tokens = tgt_in.select(0, 0).array();
    for (std::size_t t = 0; t < T; ++t) {
        if (t > 0) {
            tokens = tgt_in.select(0, long(t)).array();
            if (p > 0.0) {
                const LongTensor pred = argmax(logits.back(), 1);
                for (std::size_t b = 0; b < B; ++b)
                    if (gen->uniform() < p) tokens(b) = pred.at(b);
            }
        }
        logits.push_back(step(tokens, st, enc.outputs, enc.lengths));
    }
    return stack(logits, 0);  // [T, B, Vt]
}

Tensor EncoderDecoder::forward(const LongTensor& src, const std::vector<std::int64_t>& src_lengths,
                               const LongTensor& tgt_in) const {
    return run(src, src_lengths, tgt_in, 0.0, nullptr);
}

Tensor EncoderDecoder::forward(const LongTensor& src, const std::vector<std::int64_t>& src_lengths,
                               const LongTensor& tgt_in, double sampling_probability, Generator& gen) const {
    return run(src, src_lengths, tgt_in, sampling_probability, &gen);
}

Tensor EncoderDecoder::loss(const Tensor& logits, const LongTensor& tgt_out, Reduction reduction) const {
    const std::size_t V = options.tgt_vocab_size;
    if (!logits.defined() || logits.dim() != 3 || logits.size(2) != V || tgt_out.dim() != 2 ||
        tgt_out.size(0) != logits.size(0) || tgt_out.size(1) != logits.size(1))
        throw ShapeError(fmt::format("{}: loss needs logits [T, B, {}] and tgt_out [T, B], got logits {} and "
                                     "tgt_out {}",
                                     kWho, V, logits.defined() ? shape_str(logits.shape()) : "undefined",
                                     shape_str(tgt_out.shape())));
    return cross_entropy(logits, tgt_out, {.ignore_index = options.tgt_pad_id, .reduction = reduction});
}

Tensor EncoderDecoder::decode_state(const LongTensor& src, const std::vector<std::int64_t>& src_lengths) const {
    const EncoderOutput enc = encode(src, src_lengths);
    const std::size_t S = src.size(0), B = src.size(1), H = options.hidden_size;
    const DType dt = enc.outputs.dtype();
    xt::xarray<double> lv = xt::xarray<double>::from_shape({B, 1});
    for (std::size_t b = 0; b < B; ++b) lv(b, 0) = static_cast<double>(enc.lengths[b]);
    const Tensor len = Tensor(std::move(lv)).to(dt);
    // pack_state's [Ls, B, H] -> [B, Ls*H]
    const Tensor packed = decoder_rnn->pack_state(enc.state);
    std::vector<Tensor> parts{len, reshape(permute(packed, {1, 0, 2}), {long(B), -1})};
    if (attention) {
        parts.push_back(zeros({B, H}, dt));
        parts.push_back(reshape(permute(enc.outputs, {1, 0, 2}), {long(B), long(S * H)}));
    }
    return concat(parts, 1);
}

Tensor EncoderDecoder::decode_step(const LongTensor& tokens, Tensor& state) const {
    const std::size_t H = options.hidden_size, Ls = state_rows(), base = 1 + Ls * H;
    const std::string layout =
        attention ? fmt::format("[N, 1 + {} + {} + S*{}] (length, decoder state, a_(t-1), encoder outputs)", Ls * H,
                                H, H)
                  : fmt::format("[N, {}] (length, decoder state)", base);
    const bool width_ok = state.defined() && state.dim() == 2 &&
                          (attention ? state.size(1) > base + H && (state.size(1) - base - H) % H == 0
                                     : state.size(1) == base);
    if (!width_ok)
        throw ShapeError(fmt::format("{}: decode_step: the state must be {} as decode_state makes it, got {}", kWho,
                                     layout, state.defined() ? shape_str(state.shape()) : "undefined"));
    const std::size_t N = state.size(0);
    if (tokens.dim() != 1 || tokens.size(0) != N)
        throw ShapeError(fmt::format("{}: decode_step: tokens must be [{}], one per row of the state {}, got {}", kWho,
                                     N, shape_str(state.shape()), shape_str(tokens.shape())));
    check_ids(tokens, 1, "tokens", "[N]", options.tgt_vocab_size);

    const Tensor len = slice(state, 1, 0, 1);
    StepState st;
    st.rnn = decoder_rnn->unpack_state(
        permute(reshape(slice(state, 1, 1, long(base)), {long(N), long(Ls), long(H)}), {1, 0, 2}));
    Tensor memory;
    std::vector<std::int64_t> lengths;
    if (attention) {
        const std::size_t S = (state.size(1) - base - H) / H;
        st.feed = slice(state, 1, long(base), long(base + H));
        memory = permute(reshape(slice(state, 1, long(base + H), long(state.size(1))), {long(N), long(S), long(H)}),
                         {1, 0, 2});  // [S, N, H]
        lengths = to_long(len).to_vector();
    }
    const Tensor logits = step(tokens.array(), st, memory, lengths);
    std::vector<Tensor> parts{len, reshape(permute(decoder_rnn->pack_state(st.rnn), {1, 0, 2}), {long(N), -1})};
    if (attention) {
        parts.push_back(st.feed);
        parts.push_back(slice(state, 1, long(base + H), long(state.size(1))));
    }
    state = concat(parts, 1);
    return logits;
}

DecodeStepFn EncoderDecoder::decode_fn() const {
    return [this](const LongTensor& tokens, Tensor& state) { return decode_step(tokens, state); };
}

}  // namespace tapegrad::nn
