// tapegrad::nn: sampling from logits. Everything is done in double on a copy of the logits, so a
// float32 model and its float64 twin draw the same ids from the same generator state.
#include "sample.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "../../autograd/tape.hpp"

namespace tapegrad::nn {

namespace {
void check_options(const SampleOptions& o, std::size_t vocab, const char* who) {
    if (o.greedy) return;
    if (!(o.temperature > 0.0) || !std::isfinite(o.temperature))
        throw ValueError(fmt::format("{}: temperature must be a finite number > 0 (or set greedy), got {}", who,
                                     o.temperature));
    if (o.top_k > vocab)
        throw ValueError(fmt::format("{}: top_k {} is larger than the vocabulary of {} logits", who, o.top_k, vocab));
}
}  // namespace

std::int64_t sample_logits(const Tensor& logits, const SampleOptions& options, Generator& gen) {
    constexpr const char* who = "sample_logits";
    if (!logits.defined()) throw ValueError(fmt::format("{}: the logits tensor is undefined", who));
    const Shape s = logits.shape();
    if (!(s.size() == 1 || (s.size() == 2 && s[0] == 1)))
        throw ShapeError(fmt::format("{}: logits must be [V] or [1, V], got {}", who, shape_str(s)));
    const std::size_t V = s.back();
    if (V == 0) throw ShapeError(fmt::format("{}: logits {} hold no entries", who, shape_str(s)));
    std::vector<double> z(V);
    for (std::size_t i = 0; i < V; ++i) {
        z[i] = logits.at(i);
        if (!std::isfinite(z[i])) throw ValueError(fmt::format("{}: logit at position {} is {}", who, i, z[i]));
    }
    check_options(options, V, who);
    const std::size_t best = static_cast<std::size_t>(std::max_element(z.begin(), z.end()) - z.begin());
    if (options.greedy) return static_cast<std::int64_t>(best);

    // The ids allowed to be drawn, in id order (so the draw does not depend on how top-k sorted).
    std::vector<std::size_t> keep(V);
    std::iota(keep.begin(), keep.end(), std::size_t{0});
    if (options.top_k != 0 && options.top_k < V) {
        std::nth_element(keep.begin(), keep.begin() + static_cast<long>(options.top_k) - 1, keep.end(),
                         [&](std::size_t a, std::size_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
        keep.resize(options.top_k);
        std::sort(keep.begin(), keep.end());
    }
    // (z - max) / T is <= 0, so a tiny temperature underflows to 0 instead of overflowing to inf.
    std::vector<double> w(keep.size());
    double total = 0.0;
    for (std::size_t j = 0; j < keep.size(); ++j) {
        w[j] = std::exp((z[keep[j]] - z[best]) / options.temperature);
        total += w[j];
    }
    const double u = gen.uniform() * total;
    double cum = 0.0;
    for (std::size_t j = 0; j < keep.size(); ++j) {
        cum += w[j];
        if (u < cum) return static_cast<std::int64_t>(keep[j]);
    }
    // Rounding left u at or above the last partial sum: take the last id with any weight.
    for (std::size_t j = keep.size(); j-- > 0;)
        if (w[j] > 0.0) return static_cast<std::int64_t>(keep[j]);
    return static_cast<std::int64_t>(best);
}

std::vector<std::int64_t> sample(const SampleStepFn& step, Tensor& state, const std::vector<std::int64_t>& prime,
                                 const SampleOptions& options, Generator& gen) {
    if (!step) throw ValueError("sample: no step function given");
    if (prime.empty())
        throw ValueError("sample: the priming sequence is empty; give at least one id (a start-of-text id will do)");
    for (std::size_t i = 0; i < prime.size(); ++i)
        if (prime[i] < 0) throw ValueError(fmt::format("sample: priming id at position {} is negative ({})", i, prime[i]));
    check_options(options, static_cast<std::size_t>(-1), "sample");  // top_k is checked once V is known
    NoGrad no_grad;
    Tensor logits;
    for (std::int64_t id : prime) logits = step(id, state);
    std::vector<std::int64_t> out;
    out.reserve(options.length);
    for (std::size_t n = 0; n < options.length; ++n) {
        std::int64_t id;
        try {
            id = sample_logits(logits, options, gen);
        } catch (const ShapeError& e) {
            throw ShapeError(fmt::format("sample: generating id {} of {}: {}", n, options.length, e.what()));
        } catch (const ValueError& e) {
            throw ValueError(fmt::format("sample: generating id {} of {}: {}", n, options.length, e.what()));
        }
        out.push_back(id);
        if (n + 1 < options.length) logits = step(id, state);
    }
    return out;
}

}  // namespace tapegrad::nn
