// tapegrad::nn: padding, length bucketing and seeded shuffling of sequence batches. Plain loops
// over contiguous arrays: this runs once per batch and is never the bottleneck.
#include "sequence.hpp"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

namespace tapegrad::nn {

namespace {

template <class T>
void fisher_yates(std::vector<T>& v, Generator& gen) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen.randint(i)]);
}

}  // namespace

PaddedBatch pad_sequences(const std::vector<std::vector<std::int64_t>>& seqs, PadOptions options) {
    if (seqs.empty()) throw ValueError("pad_sequences: no sequences (the batch would be empty)");
    const std::size_t B = seqs.size();
    std::vector<std::size_t> begin(B), len(B);  // the kept range of each sequence
    std::size_t T = 0;
    for (std::size_t b = 0; b < B; ++b) {
        const std::size_t n = seqs[b].size();
        if (n == 0)
            throw ValueError(fmt::format("pad_sequences: sequence {} of {} is empty (RNN lengths must be >= 1)", b, B));
        len[b] = options.max_length > 0 ? std::min(n, options.max_length) : n;
        begin[b] = options.truncate == PadOptions::Truncate::front ? n - len[b] : 0;
        T = std::max(T, len[b]);
    }
    PaddedBatch out;
    const Shape shape = options.batch_first ? Shape{B, T} : Shape{T, B};
    out.ids = xt::xarray<std::int64_t>::from_shape(shape);
    std::fill(out.ids.data(), out.ids.data() + out.ids.size(), options.pad_value);
    xt::xarray<float> mask = xt::xarray<float>::from_shape(shape);
    std::fill(mask.data(), mask.data() + mask.size(), 0.0f);
    std::int64_t* ids = out.ids.data();
    float* m = mask.data();
    out.lengths.resize(B);
    for (std::size_t b = 0; b < B; ++b) {
        out.lengths[b] = static_cast<std::int64_t>(len[b]);
        for (std::size_t t = 0; t < len[b]; ++t) {
            const std::size_t at = options.batch_first ? b * T + t : t * B + b;
            ids[at] = seqs[b][begin[b] + t];
            m[at] = 1.0f;
        }
    }
    out.mask = Tensor(std::move(mask));
    return out;
}

std::vector<std::vector<std::size_t>> bucket_by_length(const std::vector<std::size_t>& lengths,
                                                       std::size_t batch_size, Generator& gen, bool shuffle) {
    if (batch_size == 0) throw ValueError("bucket_by_length: batch_size must be at least 1, got 0");
    if (lengths.empty()) throw ValueError("bucket_by_length: no lengths (nothing to batch)");
    std::vector<std::size_t> order(lengths.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return lengths[a] > lengths[b]; });
    std::vector<std::vector<std::size_t>> batches;
    for (std::size_t i = 0; i < order.size(); i += batch_size)
        batches.emplace_back(order.begin() + static_cast<long>(i),
                             order.begin() + static_cast<long>(std::min(i + batch_size, order.size())));
    if (shuffle) fisher_yates(batches, gen);
    return batches;
}

std::vector<std::size_t> shuffled_indices(std::size_t n, Generator& gen) {
    std::vector<std::size_t> v(n);
    std::iota(v.begin(), v.end(), std::size_t{0});
    fisher_yates(v, gen);
    return v;
}

}  // namespace tapegrad::nn
