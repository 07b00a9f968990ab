// nn::greedy_decode and nn::beam_search on tiny models whose probabilities are known: a wide beam
// finds what exhaustive enumeration finds, beam width 1 is greedy, the end token stops a hypothesis,
// length normalisation changes the winner, batch rows are independent, bad options are named.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;

namespace {
constexpr std::size_t V = 4;
constexpr std::int64_t kStart = 0, kEnd = 3;

// log P(next | previous token) as a [V, V] table: row = previous token.
Tensor table_from_probs(const std::vector<std::vector<double>>& p) {
    Tensor t = zeros({V, V}, f64);
    for (std::size_t i = 0; i < V; ++i)
        for (std::size_t j = 0; j < V; ++j) t.mutable_value<double>()(i, j) = std::log(p[i][j]);
    return t;
}
Tensor random_table(std::uint64_t seed) { return log_softmax(seq({V, V}, seed) * 1.5, 1); }

// A model with no memory beyond the previous token; the state only has to keep one row per hypothesis.
nn::DecodeStepFn table_model(const Tensor& table, int* calls = nullptr) {
    return [table, calls](const LongTensor& tokens, Tensor& state) {
        REQUIRE(state.size(0) == tokens.numel());
        if (calls) ++*calls;
        return embedding(table, tokens);
    };
}
// A model whose state matters: the scores add the state row, and the state remembers the tokens fed.
// The hypothesis axis of the state is `axis` (state [N, V] for 0, [1, N, V] for 1).
nn::DecodeStepFn stateful_model(const Tensor& table, long axis) {
    return [table, axis](const LongTensor& tokens, Tensor& state) {
        Tensor s = axis == 0 ? state : squeeze(state, 0);
        REQUIRE(s.size(0) == tokens.numel());
        Tensor scores = embedding(table, tokens) + s;
        s = s * 0.5 + one_hot(tokens, V, f64) * 0.8;
        state = axis == 0 ? s : unsqueeze(s, 0);
        return scores;
    };
}

// Every sequence the table can produce, best score first: ended by kEnd (L counts it) or cut at max_length.
std::vector<nn::Hypothesis> enumerate(const Tensor& table, std::size_t max_length, double alpha) {
    std::vector<nn::Hypothesis> all;
    std::function<void(std::vector<std::int64_t>&, std::int64_t, double)> go = [&](std::vector<std::int64_t>& toks,
                                                                                   std::int64_t prev, double lp) {
        for (std::int64_t v = 0; v < static_cast<std::int64_t>(V); ++v) {
            const double l = lp + table.at(static_cast<std::size_t>(prev) * V + static_cast<std::size_t>(v));
            const std::size_t L = toks.size() + 1;
            if (v == kEnd) {
                all.push_back({toks, l, l / std::pow(static_cast<double>(L), alpha)});
                continue;
            }
            toks.push_back(v);
            if (L == max_length)
                all.push_back({toks, l, l / std::pow(static_cast<double>(L), alpha)});
            else
                go(toks, v, l);
            toks.pop_back();
        }
    };
    std::vector<std::int64_t> toks;
    go(toks, kStart, 0.0);
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
    return all;
}
}  // namespace

TEST_CASE("A wide beam finds the best sequences exhaustive enumeration finds", "[nn][decode]") {
    for (std::uint64_t seed : {1u, 2u, 3u})
        for (double alpha : {0.0, 0.7}) {
            const Tensor table = random_table(seed);
            const std::vector<nn::Hypothesis> truth = enumerate(table, 4, alpha);
            REQUIRE(truth.size() == 1 + 3 + 9 + 27 + 81);  // ended at lengths 1..4, or cut at 4
            const auto beams = nn::beam_search(table_model(table), zeros({1, 1}, f64),
                                               {.start_token = kStart, .end_token = kEnd, .max_length = 4,
                                                .beam_width = 256, .n_best = 5, .length_penalty = alpha});
            REQUIRE(beams.size() == 1);
            REQUIRE(beams[0].size() == 5);
            REQUIRE(truth[0].score > truth[1].score + 1e-9);  // one best sequence
            CHECK(beams[0][0].tokens == truth[0].tokens);
            for (std::size_t i = 0; i < 5; ++i) {
                INFO("seed " << seed << ", alpha " << alpha << ", rank " << i);
                CHECK(beams[0][i].score == Approx(truth[i].score).margin(1e-12));
                // Rank by rank up to ties (the start id is also an ordinary id here, so two orders of
                // the same transitions can tie): the sequence is one of the enumeration's, same numbers.
                const auto same = std::find_if(truth.begin(), truth.end(),
                                               [&](const auto& h) { return h.tokens == beams[0][i].tokens; });
                REQUIRE(same != truth.end());
                CHECK(beams[0][i].log_prob == Approx(same->log_prob).margin(1e-12));
                CHECK(beams[0][i].score == Approx(same->score).margin(1e-12));
            }
        }
}

TEST_CASE("Beam width 1 is greedy decoding", "[nn][decode]") {
    const Tensor table = random_table(4);
    const Tensor state = seq({5, V}, 5);
    const nn::DecodeOptions o{.start_token = kStart, .end_token = kEnd, .max_length = 6, .beam_width = 1};
    const auto greedy = nn::greedy_decode(stateful_model(table, 0), state, o);
    const auto beam = nn::beam_search(stateful_model(table, 0), state, o);
    REQUIRE(greedy.size() == 5);
    REQUIRE(beam.size() == 5);
    std::size_t lengths = 0;
    for (std::size_t b = 0; b < 5; ++b) {
        REQUIRE(beam[b].size() == 1);
        CHECK(beam[b][0].tokens == greedy[b].tokens);
        CHECK(beam[b][0].log_prob == Approx(greedy[b].log_prob).margin(1e-12));
        CHECK(beam[b][0].score == greedy[b].score);
        lengths += greedy[b].tokens.size();
    }
    CHECK(lengths > 5);  // the rows do not all end at once: the test exercises dropping ended rows
}

TEST_CASE("The end token stops a hypothesis and is not returned", "[nn][decode]") {
    // From the start: token 1 (0.7) or 2 (0.3), never the end; after either, certainly the end.
    const Tensor table = table_from_probs({{0, 0.7, 0.3, 0}, {0, 0, 0, 1}, {0, 0, 0, 1}, {0.25, 0.25, 0.25, 0.25}});
    int calls = 0;
    const nn::DecodeOptions o{.start_token = kStart, .end_token = kEnd, .max_length = 5, .beam_width = 3, .n_best = 3};
    const auto greedy = nn::greedy_decode(table_model(table, &calls), zeros({1, 1}, f64), o);
    CHECK(greedy[0].tokens == std::vector<std::int64_t>{1});
    CHECK(greedy[0].log_prob == Approx(std::log(0.7)).margin(1e-12));
    CHECK(calls == 2);
    // A float32 model decodes the same (its scores are taken to float64).
    CHECK(nn::greedy_decode(table_model(table.to(f32)), zeros({1, 1}, f32), o)[0].tokens == greedy[0].tokens);
    calls = 0;
    const auto beam = nn::beam_search(table_model(table, &calls), zeros({1, 1}, f64), o);
    REQUIRE(beam[0].size() == 2);  // only two sequences have a finite score
    CHECK(beam[0][0].tokens == std::vector<std::int64_t>{1});
    CHECK(beam[0][1].tokens == std::vector<std::int64_t>{2});
    CHECK(beam[0][1].log_prob == Approx(std::log(0.3)).margin(1e-12));
    CHECK(calls == 2);  // nothing is fed after both hypotheses ended
}

TEST_CASE("Length normalisation changes the winner", "[nn][decode]") {
    // End at once: log 0.4 = -0.92. Token 1 then end: log 0.55 + log 0.5 = -1.29, but -0.65 per token.
    const Tensor table = table_from_probs(
        {{0, 0.55, 0.05, 0.4}, {0, 0.25, 0.25, 0.5}, {0, 0.05, 0.05, 0.9}, {0.25, 0.25, 0.25, 0.25}});
    for (double alpha : {0.0, 1.0}) {
        const auto beam = nn::beam_search(table_model(table), zeros({1, 1}, f64),
                                          {.start_token = kStart, .end_token = kEnd, .max_length = 4, .beam_width = 4,
                                           .length_penalty = alpha});
        const std::vector<std::int64_t> expect =
            alpha == 0 ? std::vector<std::int64_t>{} : std::vector<std::int64_t>{1};
        CHECK(beam[0][0].tokens == expect);
        CHECK(enumerate(table, 4, alpha)[0].tokens == expect);
    }
}

TEST_CASE("Batch rows decode independently, on either state axis", "[nn][decode]") {
    const Tensor table = random_table(6);
    const Tensor state = seq({3, V}, 7);
    const nn::DecodeOptions o{.start_token = kStart, .end_token = kEnd, .max_length = 7, .beam_width = 3, .n_best = 2,
                              .length_penalty = 0.6};
    const auto batch = nn::beam_search(stateful_model(table, 0), state, o);
    nn::DecodeOptions o1 = o;
    o1.state_axis = 1;
    const auto batch_axis1 = nn::beam_search(stateful_model(table, 1), unsqueeze(state, 0), o1);
    const auto greedy = nn::greedy_decode(stateful_model(table, 0), state, o);
    REQUIRE(batch.size() == 3);
    for (std::size_t b = 0; b < 3; ++b) {
        const Tensor row = slice(state, 0, b, b + 1);
        const auto alone = nn::beam_search(stateful_model(table, 0), row, o);
        const auto greedy_alone = nn::greedy_decode(stateful_model(table, 0), row, o);
        REQUIRE(alone[0].size() == 2);
        REQUIRE(batch[b].size() == 2);
        for (std::size_t i = 0; i < 2; ++i) {
            CHECK(batch[b][i].tokens == alone[0][i].tokens);
            CHECK(batch[b][i].score == Approx(alone[0][i].score).margin(1e-12));
            CHECK(batch_axis1[b][i].tokens == alone[0][i].tokens);
            CHECK(batch_axis1[b][i].score == Approx(alone[0][i].score).margin(1e-12));
        }
        CHECK(greedy[b].tokens == greedy_alone[0].tokens);
        CHECK(greedy[b].score == Approx(greedy_alone[0].score).margin(1e-12));
    }
}

TEST_CASE("Decoding refuses bad options and bad step output, naming them", "[nn][decode][errors]") {
    const Tensor table = random_table(8);
    const Tensor state = zeros({2, 1}, f64);
    const nn::DecodeOptions ok{.start_token = kStart, .end_token = kEnd, .max_length = 3, .beam_width = 2};
    auto with = [&](auto change) {
        nn::DecodeOptions o = ok;
        change(o);
        return o;
    };
    const auto step = table_model(table);
    REQUIRE_NOTHROW(nn::beam_search(step, state, ok));
    REQUIRE_THROWS_MATCHES(nn::beam_search(step, state, with([](auto& o) { o.start_token = -1; })), ValueError,
                           WhatContains({"beam_search", "start_token is -1"}));
    REQUIRE_THROWS_MATCHES(nn::greedy_decode(step, state, with([](auto& o) { o.end_token = -1; })), ValueError,
                           WhatContains({"greedy_decode", "end_token is -1"}));
    REQUIRE_THROWS_MATCHES(nn::beam_search(step, state, with([](auto& o) { o.end_token = 4; })), ValueError,
                           WhatContains({"end_token 4", "vocabulary size 4"}));
    REQUIRE_THROWS_MATCHES(nn::beam_search(step, state, with([](auto& o) { o.max_length = 0; })), ValueError,
                           WhatContains({"max_length must be at least 1"}));
    REQUIRE_THROWS_MATCHES(nn::beam_search(step, state, with([](auto& o) { o.beam_width = 0; })), ValueError,
                           WhatContains({"beam_width must be at least 1"}));
    REQUIRE_THROWS_MATCHES(nn::beam_search(step, state, with([](auto& o) { o.n_best = 3; })), ValueError,
                           WhatContains({"n_best 3", "beam_width = 2"}));
    REQUIRE_THROWS_MATCHES(nn::beam_search(step, state, with([](auto& o) { o.length_penalty = -1; })), ValueError,
                           WhatContains({"length_penalty", "-1"}));
    REQUIRE_THROWS_MATCHES(nn::beam_search(step, state, with([](auto& o) { o.state_axis = 2; })), ShapeError,
                           WhatContains({"state_axis 2", "[2, 1]"}));
    REQUIRE_THROWS_MATCHES(nn::beam_search(step, Tensor(), ok), ValueError, WhatContains({"the state is undefined"}));
    REQUIRE_THROWS_MATCHES(nn::beam_search(nn::DecodeStepFn(), state, ok), ValueError,
                           WhatContains({"no step function"}));
    const nn::DecodeStepFn wrong_rows = [](const LongTensor&, Tensor&) { return zeros({3, V}, f64); };
    REQUIRE_THROWS_MATCHES(nn::greedy_decode(wrong_rows, state, ok), ShapeError,
                           WhatContains({"scores [2, V] for 2 hypotheses", "[3, 4]"}));
    const nn::DecodeStepFn nan_scores = [](const LongTensor& t, Tensor&) {
        return full({t.numel(), V}, std::nan(""), f64);
    };
    REQUIRE_THROWS_MATCHES(nn::beam_search(nan_scores, state, ok), ValueError,
                           WhatContains({"hypothesis 0", "NaN log-probabilities"}));
}
