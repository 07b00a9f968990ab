// tapegrad::nn: many-to-one reductions over time and the one-to-many decoder.
#include "heads.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "../../autograd/ops.hpp"

namespace tapegrad::nn {

namespace {
// Checks output [T, B, F] against lengths, naming the head.
void check_seq(const char* op, const Tensor& out, const std::vector<std::int64_t>& lengths) {
    if (!out.defined() || out.dim() != 3)
        throw ShapeError(fmt::format("{}: output must be [time, batch, features], got {}", op,
                                     out.defined() ? shape_str(out.shape()) : "undefined"));
    const std::size_t T = out.size(0), B = out.size(1);
    if (T == 0) throw ShapeError(fmt::format("{}: the sequence is empty (output {})", op, shape_str(out.shape())));
    if (lengths.empty()) return;
    if (lengths.size() != B)
        throw ShapeError(fmt::format("{}: {} lengths given for a batch of {}", op, lengths.size(), B));
    for (std::size_t b = 0; b < B; ++b)
        if (lengths[b] < 1 || lengths[b] > static_cast<std::int64_t>(T))
            throw ValueError(fmt::format("{}: lengths[{}] = {} is out of range [1, {}]", op, b, lengths[b], T));
}
}  // namespace

Tensor sequence_mask(const std::vector<std::int64_t>& lengths, std::size_t T, std::size_t B, DType dtype) {
    if (!lengths.empty() && lengths.size() != B)
        throw ShapeError(fmt::format("sequence_mask: {} lengths given for a batch of {}", lengths.size(), B));
    for (std::size_t b = 0; b < lengths.size(); ++b)
        if (lengths[b] < 0 || lengths[b] > static_cast<std::int64_t>(T))
            throw ValueError(fmt::format("sequence_mask: lengths[{}] = {} is out of range [0, {}]", b, lengths[b], T));
    Tensor m = zeros({T, B}, dtype);
    std::visit([&](auto& a) {
        for (std::size_t t = 0; t < T; ++t)
            for (std::size_t b = 0; b < B; ++b)
                a(t, b) = lengths.empty() || static_cast<std::int64_t>(t) < lengths[b] ? 1 : 0;
    }, m.mutable_array());
    return m;
}

Tensor last_step(const Tensor& output, const std::vector<std::int64_t>& lengths) {
    check_seq("last_step", output, lengths);
    const std::size_t T = output.size(0), B = output.size(1);
    // Row (len_b - 1) * B + b of the [T*B, F] view is sequence b's last valid step.
    std::vector<std::int64_t> rows(B);
    for (std::size_t b = 0; b < B; ++b)
        rows[b] = (lengths.empty() ? static_cast<std::int64_t>(T) - 1 : lengths[b] - 1) * static_cast<std::int64_t>(B) +
                  static_cast<std::int64_t>(b);
    return index_select(reshape(output, {-1, static_cast<long>(output.size(2))}), 0, rows);
}

Tensor masked_mean(const Tensor& output, const std::vector<std::int64_t>& lengths) {
    check_seq("masked_mean", output, lengths);
    const std::size_t T = output.size(0), B = output.size(1);
    if (lengths.empty()) return mean(output, 0);
    Tensor mask = unsqueeze(sequence_mask(lengths, T, B, output.dtype()), -1);  // [T, B, 1]
    Tensor count = zeros({B, 1}, output.dtype());
    std::visit([&](auto& a) {
        for (std::size_t b = 0; b < B; ++b) a(b, 0) = static_cast<typename std::decay_t<decltype(a)>::value_type>(lengths[b]);
    }, count.mutable_array());
    // Selected, not multiplied by the 0/1 mask: whatever the padding holds (NaN, Inf) must not
    // reach the mean or its gradient (NaN * 0 is NaN).
    return sum(where(mask, output, 0.0), 0) / count;
}

Tensor masked_max(const Tensor& output, const std::vector<std::int64_t>& lengths) {
    check_seq("masked_max", output, lengths);
    const std::size_t T = output.size(0), B = output.size(1);
    if (lengths.empty() || std::all_of(lengths.begin(), lengths.end(),
                                       [T](std::int64_t l) { return l == static_cast<std::int64_t>(T); }))
        return max(output, 0);
    // Each sequence's max over its own valid steps. Not a -inf sentinel in the padding: it would
    // win where the valid steps are -inf too, and anomaly mode would report the -inf it wrote.
    std::vector<Tensor> rows;
    rows.reserve(B);
    for (std::size_t b = 0; b < B; ++b)
        rows.push_back(max(slice(select(output, 1, static_cast<long>(b)), 0, 0, static_cast<long>(lengths[b])), 0));
    return stack(rows, 0);  // [B, F]
}

RNNDecoder::RNNDecoder(const DecoderOptions& o)
    : options(o),
      init(o.latent_size, o.hidden_size),
      cell(o.input_size, o.hidden_size, o.nonlinearity),
      head(o.hidden_size, o.output_size) {
    if (o.feedback == DecoderOptions::Feedback::one_hot_argmax && o.input_size != o.output_size)
        throw ValueError(fmt::format("RNNDecoder: feeding back one-hot predictions needs input_size == output_size "
                                     "(got {} and {})",
                                     o.input_size, o.output_size));
    if (o.feedback == DecoderOptions::Feedback::output && o.input_size != o.output_size)
        throw ValueError(fmt::format("RNNDecoder: feeding back outputs needs input_size == output_size (got {} and {})",
                                     o.input_size, o.output_size));
    register_module("init", init);
    register_module("cell", cell);
    register_module("head", head);
}

std::string RNNDecoder::extra_repr() const {
    return fmt::format("latent={}, input={}, hidden={}, output={}, feedback={}", options.latent_size,
                       options.input_size, options.hidden_size, options.output_size,
                       options.feedback == DecoderOptions::Feedback::one_hot_argmax ? "one_hot_argmax" : "output");
}

Tensor RNNDecoder::forward(const Tensor& z, std::size_t steps, const Tensor& teacher) const {
    if (!z.defined() || z.dim() != 2 || z.size(1) != options.latent_size)
        throw ShapeError(fmt::format("RNNDecoder: z must be [batch, {}], got {}", options.latent_size,
                                     z.defined() ? shape_str(z.shape()) : "undefined"));
    const std::size_t B = z.size(0);
    if (steps == 0) throw ValueError("RNNDecoder: steps must be at least 1");
    const Shape ts{steps, B, options.input_size};
    if (teacher.defined() && teacher.shape() != ts)
        throw ShapeError(fmt::format("RNNDecoder: teacher inputs must be {}, got {}", shape_str(ts),
                                     shape_str(teacher.shape())));
    Tensor h = tanh(init(z));
    Tensor x = zeros({B, options.input_size}, z.dtype());
    std::vector<Tensor> outs;
    for (std::size_t t = 0; t < steps; ++t) {
        if (teacher.defined()) x = select(teacher, 0, static_cast<long>(t));
        h = cell(x, h);
        Tensor y = head(h);
        outs.push_back(y);
        if (teacher.defined()) continue;
        if (options.feedback == DecoderOptions::Feedback::output) {
            x = y;
        } else {  // the arg-max as a one-hot: a choice, so no gradient flows through it
            xt::xarray<std::int64_t> ids = xt::zeros<std::int64_t>({B});
            for (std::size_t b = 0; b < B; ++b) {
                std::size_t best = 0;
                for (std::size_t k = 1; k < options.output_size; ++k)
                    if (y.at(b * options.output_size + k) > y.at(b * options.output_size + best)) best = k;
                ids(b) = static_cast<std::int64_t>(best);
            }
            x = one_hot(ids, options.output_size, z.dtype());
        }
    }
    return stack(outs, 0);
}

}  // namespace tapegrad::nn
