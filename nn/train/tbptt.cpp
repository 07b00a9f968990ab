// tapegrad::nn: the truncated-BPTT driver. Each update cuts its window into spans at the points
// where something happens to the state (loss steps begin, the next update's carry point, resets),
// so a sequence model can take a whole span in one call.
#include "tbptt.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "../../autograd/elementwise.hpp"
#include "../../autograd/tape.hpp"

namespace tapegrad::nn {

namespace {
Tensor detached(const Tensor& t) { return t.defined() ? t.detach() : Tensor(); }
}  // namespace

TbpttResult tbptt(std::size_t total_steps, const Tensor& initial_state, const TbpttOptions& options,
                  const TbpttSpanFn& run, const TbpttUpdateFn& on_update) {
    if (!run) throw ValueError("tbptt: no step function given");
    if (total_steps == 0) throw ValueError("tbptt: total_steps is 0: there is nothing to train on");
    const std::size_t k1 = options.k1;
    if (k1 == 0) throw ValueError("tbptt: k1 (steps between updates) must be at least 1, got 0");
    const std::size_t k2 = options.k2 == 0 ? k1 : options.k2;
    if (k2 < k1)
        throw ValueError(fmt::format("tbptt: k2 ({}, steps backpropagated) must be >= k1 ({}, steps between updates); "
                                     "use k2 = k1 for plain chunks",
                                     k2, k1));
    std::set<std::size_t> resets;
    for (std::size_t r : options.reset_at) {
        if (r >= total_steps)
            throw ValueError(fmt::format("tbptt: reset_at step {} is outside the sequence of {} steps", r, total_steps));
        resets.insert(r);
    }
    const std::size_t context = k2 - k1;  // steps before the loss steps that are recomputed
    const std::size_t updates = (total_steps + k1 - 1) / k1;

    TbpttResult result;
    result.losses.reserve(updates);
    Tensor carried;  // detached state at the next window's first step
    for (std::size_t u = 0; u < updates; ++u) {
        const std::size_t loss_begin = u * k1;
        const std::size_t end = std::min(loss_begin + k1, total_steps);
        const std::size_t window_begin = loss_begin >= context ? loss_begin - context : 0;
        const bool last = u + 1 == updates;
        // The next window begins `context` steps before this update's end.
        const std::size_t carry_at = last ? end : (end >= context ? end - context : 0);

        std::set<std::size_t> cuts = {window_begin, end, loss_begin};
        if (carry_at > window_begin) cuts.insert(carry_at);
        for (auto it = resets.upper_bound(window_begin); it != resets.end() && *it < end; ++it) cuts.insert(*it);
        const std::vector<std::size_t> points(cuts.begin(), cuts.end());

        Tape tape;
        if (!is_recording())
            throw UsageError(fmt::format("tbptt: update {} cannot record: a NoGrad guard is active", u));
        Tensor state = (window_begin == 0 || resets.count(window_begin)) ? initial_state : carried;
        Tensor next_carried, total;
        for (std::size_t i = 0; i + 1 < points.size(); ++i) {
            const std::size_t a = points[i], b = points[i + 1];
            if (a == carry_at) next_carried = detached(state);
            if (a != window_begin && resets.count(a)) state = initial_state;
            const TbpttSpan span{.begin = a, .end = b, .has_loss = a >= loss_begin, .update = u,
                                 .loss_steps = end - loss_begin};
            TbpttOut out = run(span, state);
            if (!out.state.defined())
                throw UsageError(fmt::format("tbptt: update {}: the step function returned no state for steps [{}, {})",
                                             u, a, b));
            if (span.has_loss) {
                if (!out.loss.defined())
                    throw UsageError(fmt::format("tbptt: update {}: the step function returned no loss for steps "
                                                 "[{}, {}), whose loss counts",
                                                 u, a, b));
                if (out.loss.numel() != 1)
                    throw ShapeError(fmt::format("tbptt: update {}: the loss for steps [{}, {}) has shape {}; it must "
                                                 "hold one element",
                                                 u, a, b, shape_str(out.loss.shape())));
                total = total.defined() ? total + out.loss : out.loss;
            }
            state = out.state;
        }
        if (carry_at == end) next_carried = detached(state);
        if (!total.requires_grad())
            throw UsageError(fmt::format("tbptt: update {}: the loss of steps [{}, {}) does not depend on anything "
                                         "that requires grad (are the model's parameters used?)",
                                         u, loss_begin, end));
        const double value = total.item();
        tape.backward(total);
        result.losses.push_back(value);
        if (on_update)
            on_update(TbpttUpdate{.index = u, .window_begin = window_begin, .loss_begin = loss_begin, .end = end,
                                  .loss = value});
        carried = next_carried;
        if (last) result.state = next_carried;
    }
    return result;
}

TbpttResult tbptt_steps(std::size_t total_steps, const Tensor& initial_state, const TbpttOptions& options,
                        const TbpttStepFn& step, const TbpttUpdateFn& on_update) {
    if (!step) throw ValueError("tbptt_steps: no step function given");
    auto run = [&](const TbpttSpan& span, const Tensor& state0) {
        TbpttOut acc{.loss = Tensor(), .state = state0};
        for (std::size_t t = span.begin; t < span.end; ++t) {
            TbpttOut o = step(t, acc.state);
            if (span.has_loss) {
                if (!o.loss.defined())
                    throw UsageError(fmt::format("tbptt_steps: update {}: step {} returned no loss", span.update, t));
                if (o.loss.numel() != 1)
                    throw ShapeError(fmt::format("tbptt_steps: update {}: the loss of step {} has shape {}; it must "
                                                 "hold one element",
                                                 span.update, t, shape_str(o.loss.shape())));
                acc.loss = acc.loss.defined() ? acc.loss + o.loss : o.loss;
            }
            if (!o.state.defined())
                throw UsageError(fmt::format("tbptt_steps: update {}: step {} returned no state", span.update, t));
            acc.state = o.state;
        }
        return acc;
    };
    return tbptt(total_steps, initial_state, options, run, on_update);
}

}  // namespace tapegrad::nn
