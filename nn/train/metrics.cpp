// tapegrad::nn: evaluation metrics. Plain loops over contiguous row-major values; nothing here
// is differentiable or needs to be.
#include "metrics.hpp"

#include <cmath>
#include <limits>
#include <numbers>

#include <fmt/format.h>

namespace tapegrad::nn {

namespace {

void check_nll(double nll, const char* op) {
    if (std::isnan(nll) || nll < 0)
        throw ValueError(fmt::format("{}: the mean negative log-likelihood must be >= 0 (in nats), got {}", op, nll));
}

template <class T>
std::size_t count_correct(const Tensor& logits, const xt::xarray<std::int64_t>& targets, const Tensor& mask,
                          std::int64_t ignore_index, std::size_t& counted) {
    const T* z = logits.value<T>().data();
    const std::int64_t* y = targets.data();
    const std::size_t C = logits.shape().back();
    const std::size_t P = targets.size();
    std::size_t correct = 0;
    counted = 0;
    for (std::size_t p = 0; p < P; ++p) {
        if (mask.defined() && mask.at(p) == 0) continue;
        if (y[p] == ignore_index) continue;
        if (y[p] < 0 || y[p] >= static_cast<std::int64_t>(C))
            throw ValueError(fmt::format("masked_accuracy: target {} at flat position {} is outside [0, {}) and is "
                                         "not ignore_index ({})",
                                         y[p], p, C, ignore_index));
        const T* row = z + p * C;
        std::size_t best = 0;
        for (std::size_t c = 1; c < C; ++c)
            if (row[c] > row[best]) best = c;
        ++counted;
        if (static_cast<std::int64_t>(best) == y[p]) ++correct;
    }
    return correct;
}

}  // namespace

double perplexity(double mean_nll_nats) {
    check_nll(mean_nll_nats, "perplexity");
    return std::exp(mean_nll_nats);
}

double bits_per_char(double mean_nll_nats) {
    check_nll(mean_nll_nats, "bits_per_char");
    return mean_nll_nats / std::numbers::ln2;
}

double masked_accuracy(const Tensor& logits, const xt::xarray<std::int64_t>& targets, const Tensor& mask,
                       std::int64_t ignore_index) {
    if (!logits.defined()) throw UsageError("masked_accuracy: logits is an undefined tensor");
    const Shape ls = logits.shape();
    const Shape ts(targets.shape().begin(), targets.shape().end());
    if (ls.empty() || ls.back() == 0)
        throw ShapeError(fmt::format("masked_accuracy: logits must be [..., C] with C >= 1, got {}", shape_str(ls)));
    if (Shape(ls.begin(), ls.end() - 1) != ts)
        throw ShapeError(fmt::format("masked_accuracy: targets must be the logits' shape without the class axis: "
                                     "logits {}, so targets {}, got {}",
                                     shape_str(ls), shape_str(Shape(ls.begin(), ls.end() - 1)), shape_str(ts)));
    if (mask.defined() && mask.shape() != ts)
        throw ShapeError(fmt::format("masked_accuracy: mask must have the targets' shape {}, got {}", shape_str(ts),
                                     shape_str(mask.shape())));
    std::size_t counted = 0;
    const std::size_t correct = logits.dtype() == f64
                                    ? count_correct<double>(logits, targets, mask, ignore_index, counted)
                                    : count_correct<float>(logits, targets, mask, ignore_index, counted);
    if (counted == 0) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(correct) / static_cast<double>(counted);
}

}  // namespace tapegrad::nn
