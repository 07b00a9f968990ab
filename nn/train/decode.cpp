// tapegrad::nn: greedy decoding and beam search. The bookkeeping (hypotheses, scores) is plain C++
// in double; the model's scores go through log_softmax, argmax and topk, so ties break toward the
// lower id everywhere, and the state is reordered with one index_select per step.
#include "decode.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "../../autograd/ops.hpp"
#include "../../autograd/tape.hpp"

namespace tapegrad::nn {

namespace {

// The state's hypothesis axis as a non-negative number, after checking every option.
std::size_t check_options(const char* who, const DecodeStepFn& step, const Tensor& state, const DecodeOptions& o,
                          bool beam) {
    if (!step) throw ValueError(fmt::format("{}: no step function given", who));
    if (!state.defined())
        throw ValueError(fmt::format("{}: the state is undefined; pass a tensor with one row per batch row along "
                                     "state_axis",
                                     who));
    const long rank = static_cast<long>(state.dim());
    if (o.state_axis < -rank || o.state_axis >= rank)
        throw ShapeError(fmt::format("{}: state_axis {} is out of range for a state of shape {}", who, o.state_axis,
                                     shape_str(state.shape())));
    if (o.start_token < 0)
        throw ValueError(fmt::format("{}: start_token is {}; set it to the model's start id", who, o.start_token));
    if (o.end_token < 0)
        throw ValueError(fmt::format("{}: end_token is {}; set it to the model's end id", who, o.end_token));
    if (o.max_length == 0) throw ValueError(fmt::format("{}: max_length must be at least 1", who));
    if (!(o.length_penalty >= 0.0) || !std::isfinite(o.length_penalty))
        throw ValueError(fmt::format("{}: length_penalty must be a finite number >= 0, got {}", who, o.length_penalty));
    if (beam) {
        if (o.beam_width == 0) throw ValueError(fmt::format("{}: beam_width must be at least 1", who));
        if (o.n_best == 0 || o.n_best > o.beam_width)
            throw ValueError(fmt::format("{}: n_best {} must be in [1, beam_width = {}]", who, o.n_best, o.beam_width));
    }
    return static_cast<std::size_t>(o.state_axis < 0 ? o.state_axis + rank : o.state_axis);
}

// One step for N hypotheses: the log-probabilities [N, V] in float64, checked.
Tensor step_log_probs(const char* who, const DecodeStepFn& step, const std::vector<std::int64_t>& last, Tensor& state,
                      const DecodeOptions& o) {
    const std::size_t N = last.size();
    Tensor out = step(LongTensor(last), state);
    if (!out.defined() || out.dim() != 2 || out.size(0) != N || out.size(1) == 0)
        throw ShapeError(fmt::format("{}: the step function must return scores [{}, V] for {} hypotheses, got {}", who,
                                     N, N, out.defined() ? shape_str(out.shape()) : "undefined"));
    const std::size_t V = out.size(1);
    if (static_cast<std::size_t>(o.end_token) >= V || static_cast<std::size_t>(o.start_token) >= V)
        throw ValueError(fmt::format("{}: start_token {} and end_token {} must be below the vocabulary size {}", who,
                                     o.start_token, o.end_token, V));
    Tensor lp = log_softmax(out.dtype() == f64 ? out : out.to(f64), 1);
    const auto& a = lp.value<double>();
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::isnan(a.data()[i]))
            throw ValueError(fmt::format("{}: the step function's scores for hypothesis {} give NaN log-probabilities "
                                         "(a NaN or +inf score, or only -inf)",
                                         who, i / V));
    return lp;
}

double normalised(double log_prob, std::size_t length, double alpha) {
    return alpha == 0.0 ? log_prob : log_prob / std::pow(static_cast<double>(length), alpha);
}

}  // namespace

std::vector<Hypothesis> greedy_decode(const DecodeStepFn& step, const Tensor& state0, const DecodeOptions& o) {
    constexpr const char* who = "greedy_decode";
    const std::size_t axis = check_options(who, step, state0, o, false);
    NoGrad no_grad;
    const std::size_t B = state0.size(static_cast<long>(axis));
    std::vector<Hypothesis> out(B);
    std::vector<std::size_t> live(B);  // the batch row of each state row
    std::iota(live.begin(), live.end(), std::size_t{0});
    std::vector<std::int64_t> last(B, o.start_token);
    Tensor state = state0;
    for (std::size_t t = 0; t < o.max_length && !live.empty(); ++t) {
        Tensor lp = step_log_probs(who, step, last, state, o);
        const LongTensor best = argmax(lp, 1);
        const std::size_t V = lp.size(1);
        std::vector<std::size_t> next_live;
        std::vector<std::int64_t> keep, next_last;
        for (std::size_t i = 0; i < live.size(); ++i) {
            Hypothesis& h = out[live[i]];
            const std::int64_t tok = best.at(i);
            h.log_prob += lp.at(i * V + static_cast<std::size_t>(tok));
            if (tok == o.end_token) {
                h.score = normalised(h.log_prob, h.tokens.size() + 1, o.length_penalty);
                continue;
            }
            h.tokens.push_back(tok);
            if (t + 1 == o.max_length) {
                h.score = normalised(h.log_prob, h.tokens.size(), o.length_penalty);
                continue;
            }
            next_live.push_back(live[i]);
            next_last.push_back(tok);
            keep.push_back(static_cast<std::int64_t>(i));
        }
        // Rows that ended leave the batch, so the model runs on live rows only.
        if (!keep.empty() && keep.size() != live.size()) state = index_select(state, static_cast<long>(axis), keep);
        live = std::move(next_live);
        last = std::move(next_last);
    }
    return out;
}

std::vector<std::vector<Hypothesis>> beam_search(const DecodeStepFn& step, const Tensor& state0,
                                                 const DecodeOptions& o) {
    constexpr const char* who = "beam_search";
    const std::size_t axis = check_options(who, step, state0, o, true);
    NoGrad no_grad;
    const std::size_t B = state0.size(static_cast<long>(axis)), K = o.beam_width;
    struct Live {
        std::vector<std::int64_t> tokens;
        double log_prob;
    };
    // live[b]: row b's live hypotheses, whose state rows lie one after another in batch-row order.
    std::vector<std::vector<Live>> live(B, std::vector<Live>{Live{{}, 0.0}});
    std::vector<std::vector<Hypothesis>> finished(B);
    const auto by_score = [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; };
    // The best score any extension of a live hypothesis can reach: log P only falls and L is at most
    // max_length, so log P / max_length^alpha bounds it (log P <= 0).
    const double bound_div = std::pow(static_cast<double>(o.max_length), o.length_penalty);
    Tensor state = state0;
    for (std::size_t t = 0; t < o.max_length; ++t) {
        std::vector<std::int64_t> last;
        for (const auto& row : live)
            for (const Live& h : row) last.push_back(h.tokens.empty() ? o.start_token : h.tokens.back());
        if (last.empty()) break;
        Tensor lp = step_log_probs(who, step, last, state, o);
        const std::size_t V = lp.size(1);
        const auto& lpa = lp.value<double>();
        std::vector<std::int64_t> parents;  // the state rows the next step's hypotheses continue
        std::size_t offset = 0;
        for (std::size_t b = 0; b < B; ++b) {
            const std::vector<Live> cur = std::move(live[b]);
            live[b].clear();
            if (cur.empty()) continue;
            const std::size_t n = cur.size();
            Tensor cand = zeros({n * V}, f64);  // every one-token extension's log-probability
            auto& ca = cand.mutable_value<double>();
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t v = 0; v < V; ++v) ca(i * V + v) = cur[i].log_prob + lpa.data()[(offset + i) * V + v];
            // The top 2K hold at least K candidates that do not end (at most K of them end: one per live
            // hypothesis), enough to refill the beam.
            const ValuesIndices top = topk(cand, std::min(2 * K, n * V));
            std::vector<std::int64_t> row_parents;
            std::vector<Live> next;
            for (std::size_t j = 0; j < top.indices.numel() && next.size() < K; ++j) {
                const double s = top.values.at(j);
                if (s == -INFINITY) break;  // impossible continuations, and all after it
                const std::size_t i = static_cast<std::size_t>(top.indices.at(j)) / V;
                const std::int64_t tok = top.indices.at(j) % static_cast<std::int64_t>(V);
                if (tok == o.end_token) {
                    if (j < K)
                        finished[b].push_back(
                            {cur[i].tokens, s, normalised(s, cur[i].tokens.size() + 1, o.length_penalty)});
                    continue;
                }
                Live h{cur[i].tokens, s};
                h.tokens.push_back(tok);
                next.push_back(std::move(h));
                row_parents.push_back(static_cast<std::int64_t>(offset + i));
            }
            offset += n;
            if (t + 1 == o.max_length) {  // out of room: the live ones finish as they are
                for (Live& h : next)
                    finished[b].push_back(
                        {h.tokens, h.log_prob, normalised(h.log_prob, h.tokens.size(), o.length_penalty)});
                continue;
            }
            if (next.empty()) continue;
            if (finished[b].size() >= o.n_best) {
                std::vector<Hypothesis>& f = finished[b];
                std::stable_sort(f.begin(), f.end(), by_score);
                double best_live = -INFINITY;
                for (const Live& h : next) best_live = std::max(best_live, h.log_prob);
                if (f[o.n_best - 1].score >= best_live / bound_div) continue;  // nothing live can win: done
            }
            live[b] = std::move(next);
            parents.insert(parents.end(), row_parents.begin(), row_parents.end());
        }
        if (!parents.empty()) state = index_select(state, static_cast<long>(axis), parents);
    }
    for (auto& f : finished) {
        std::stable_sort(f.begin(), f.end(), by_score);  // stable: among equal scores, the first to finish
        if (f.size() > o.n_best) f.resize(o.n_best);
    }
    return finished;
}

}  // namespace tapegrad::nn
