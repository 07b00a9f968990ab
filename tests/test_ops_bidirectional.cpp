// rnn_sequence_bidirectional, lstm_sequence_bidirectional and gru_sequence_bidirectional: both
// directions of a layer as one op, run at once on two threads when the BLAS has two or more.
// Float64 gradchecks in every configuration (each cell, with and without initial states, biases
// and lengths, a long unroll, a weight given to both directions), exactly the numbers of the two
// one-direction ops (already proven against the composed ops in test_ops_recurrent.cpp) in both
// dtypes, on one BLAS thread and on two, and the messages for inputs that do not fit. Also run
// under ThreadSanitizer (scripts/tsan.sh).
#include <catch2/catch.hpp>

#include <stdexcept>

#include <fmt/format.h>
#include <tapegrad/autograd/blas_info.hpp>
#include <tapegrad/autograd/detail/parallel.hpp>
#include <tapegrad/tapegrad.hpp>

#include "sequence_test_util.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {

struct Inputs {
    Kind kind = Kind::tanh;
    Tensor x;
    DirectionWeights dir[2];
    // x, then each direction's w_ih, w_hh, b_ih, b_hh, h0, c0 where given.
    std::vector<Tensor> all() const {
        std::vector<Tensor> v{x};
        for (const DirectionWeights& d : dir)
            for (const Tensor* t : {&d.w_ih, &d.w_hh, &d.b_ih, &d.b_hh, &d.h0, &d.c0})
                if (t->defined()) v.push_back(*t);
        return v;
    }
    Inputs with(const std::vector<Tensor>& v) const {
        Inputs a = *this;
        std::size_t i = 0;
        a.x = v[i++];
        for (DirectionWeights& d : a.dir)
            for (Tensor* t : {&d.w_ih, &d.w_hh, &d.b_ih, &d.b_hh, &d.h0, &d.c0})
                if (t->defined()) *t = v[i++];
        return a;
    }
};

Inputs make_inputs(Kind kind, std::size_t T, std::size_t B, std::size_t F, std::size_t H, bool h0, bool bias,
                   DType dt, double scale = 0.5) {
    Inputs in;
    in.kind = kind;
    in.x = randn({T, B, F}, dt).set_requires_grad();
    for (DirectionWeights& d : in.dir) d = random_direction(kind, B, F, H, h0, bias, dt, scale);
    return in;
}

SequenceResult both(const Inputs& in, const std::vector<std::int64_t>& lengths = {}) {
    switch (in.kind) {
        case Kind::lstm: return lstm_sequence_bidirectional(in.x, in.dir[0], in.dir[1], {.lengths = lengths});
        case Kind::gru: return gru_sequence_bidirectional(in.x, in.dir[0], in.dir[1], {.lengths = lengths});
        default:
            return rnn_sequence_bidirectional(in.x, in.dir[0], in.dir[1],
                                              {.relu = in.kind == Kind::relu, .lengths = lengths});
    }
}

// The reference: each direction through its own one-direction op, the outputs side by side.
SequenceResult apart(const Inputs& in, const std::vector<std::int64_t>& lengths = {}) {
    SequenceResult r[2];
    for (int d = 0; d < 2; ++d) {
        const DirectionWeights& w = in.dir[d];
        const bool reverse = d == 1;
        switch (in.kind) {
            case Kind::lstm:
                r[d] = lstm_sequence(in.x, w.h0, w.c0, w.w_ih, w.w_hh, w.b_ih, w.b_hh,
                                     {.reverse = reverse, .lengths = lengths});
                break;
            case Kind::gru:
                r[d] = gru_sequence(in.x, w.h0, w.w_ih, w.w_hh, w.b_ih, w.b_hh,
                                    {.reverse = reverse, .lengths = lengths});
                break;
            default:
                r[d] = rnn_sequence(in.x, w.h0, w.w_ih, w.w_hh, w.b_ih, w.b_hh,
                                    {.relu = in.kind == Kind::relu, .reverse = reverse, .lengths = lengths});
        }
    }
    SequenceResult out{concat({r[0].output, r[1].output}, -1), stack({r[0].h_n, r[1].h_n}, 0), Tensor()};
    if (in.kind == Kind::lstm) out.c_n = stack({r[0].c_n, r[1].c_n}, 0);
    return out;
}

// Values and gradients of one run: the results, then every input's gradient.
std::vector<Tensor> run(const Inputs& in, bool fused_both, const std::vector<std::int64_t>& lengths) {
    for (const Tensor& t : in.all()) Tensor(t).zero_grad();
    Tape tape;
    const SequenceResult r = fused_both ? both(in, lengths) : apart(in, lengths);
    loss_of(r, 7).backward();
    std::vector<Tensor> out{r.output.detach(), r.h_n.detach()};
    if (r.c_n.defined()) out.push_back(r.c_n.detach());
    for (const Tensor& t : in.all()) out.push_back(t.grad());
    return out;
}

}  // namespace

TEST_CASE("bidirectional sequence ops: float64 gradcheck in every configuration", "[recurrent][bidirectional]") {
    manual_seed(31);
    const std::vector<std::int64_t> no_lengths, lengths{4, 1, 3};
    for (int threads : {1, 2}) {
        BlasThreads bt(threads);
        for (Kind kind : kKinds)
            for (bool h0 : {false, true})
                for (bool bias : {false, true})
                    for (const auto* len : {&no_lengths, &lengths}) {
                        const Inputs in = make_inputs(kind, 4, 3, 3, 2, h0, bias, f64);
                        INFO(fmt::format("{} threads {} h0 {} bias {} lengths {}", kind_name(kind), threads, h0, bias,
                                         !len->empty()));
                        const GradcheckResult r = gradcheck(
                            [&](const std::vector<Tensor>& v) { return flat_result(both(in.with(v), *len)); },
                            in.all());
                        INFO(r.message);
                        CHECK(r);
                    }
    }
}

TEST_CASE("bidirectional sequence ops: a long unroll, and a reused output", "[recurrent][bidirectional]") {
    manual_seed(32);
    BlasThreads bt(2);
    GradcheckOptions opt;
    opt.mode = GradcheckOptions::Mode::random_direction;
    opt.directions = 4;
    for (Kind kind : kKinds) {
        INFO(kind_name(kind));
        const Inputs in = make_inputs(kind, 80, 2, 3, 4, true, true, f64, 0.4);
        const std::vector<std::int64_t> lengths{80, 53};
        GradcheckResult r = gradcheck(
            [&](const std::vector<Tensor>& v) { return flat_result(both(in.with(v), lengths)); }, in.all(), opt);
        INFO(r.message);
        CHECK(r);
        // y = out * out + out reads the output twice; h_n broadcasts over the steps.
        const Inputs small = make_inputs(kind, 5, 2, 3, 3, true, true, f64);
        r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                const SequenceResult s = both(small.with(v));
                const Tensor h_n = concat({select(s.h_n, 0, 0), select(s.h_n, 0, 1)}, -1);  // [B, 2H]
                return reshape(s.output * s.output + s.output + unsqueeze(h_n, 0), {-1});
            },
            small.all());
        INFO(r.message);
        CHECK(r);
    }
}

TEST_CASE("bidirectional sequence ops: exactly the one-direction ops' numbers, on one thread or two",
          "[recurrent][bidirectional]") {
    manual_seed(33);
    for (Kind kind : kKinds)
        for (DType dt : {f64, f32})
            for (bool h0 : {false, true})
                for (const std::vector<std::int64_t>& len : {std::vector<std::int64_t>{}, {7, 2, 5}}) {
                    INFO(fmt::format("{} {} h0 {} lengths {}", kind_name(kind), dtype_name(dt), h0, !len.empty()));
                    const Inputs in = make_inputs(kind, 7, 3, 5, 6, h0, true, dt);
                    // On one thread the one-direction ops form their products over all steps after
                    // the recurrence, as each direction of the bidirectional op does.
                    const std::vector<Tensor> ref = [&] {
                        BlasThreads one(1);
                        return run(in, false, len);
                    }();
                    for (int threads : {1, 2}) {
                        INFO("threads " << threads);
                        BlasThreads bt(threads);
                        const std::uint64_t before = detail::runs_together();
                        const std::vector<Tensor> got = run(in, true, len);
                        // Forward and backward each ran both directions at once on two threads, and
                        // one after the other on one.
                        CHECK(detail::runs_together() - before == (threads == 2 ? 2u : 0u));
                        REQUIRE(got.size() == ref.size());
                        for (std::size_t i = 0; i < got.size(); ++i) {
                            INFO("result or gradient " << i);
                            REQUIRE(got[i].defined());
                            // The same kernels on the same data: equal to the last bit.
                            CHECK(max_abs_diff(got[i], ref[i]) == 0.0);
                        }
                    }
                }
}

TEST_CASE("bidirectional sequence ops: one tensor given to both directions", "[recurrent][bidirectional]") {
    // Both directions' gradients then go into one buffer: backward runs them one after the other,
    // and the gradient is the sum of both uses.
    manual_seed(34);
    BlasThreads bt(2);
    for (Kind kind : kKinds) {
        INFO(kind_name(kind));
        Inputs in = make_inputs(kind, 5, 2, 3, 4, true, true, f64);
        in.dir[1].w_hh = in.dir[0].w_hh;
        in.dir[1].h0 = in.dir[0].h0;
        std::vector<Tensor> inputs{in.x, in.dir[0].w_ih, in.dir[0].w_hh, in.dir[1].w_ih, in.dir[0].h0};
        auto with = [&](const std::vector<Tensor>& v) {
            Inputs a = in;
            a.x = v[0], a.dir[0].w_ih = v[1], a.dir[0].w_hh = a.dir[1].w_hh = v[2], a.dir[1].w_ih = v[3];
            a.dir[0].h0 = a.dir[1].h0 = v[4];
            return a;
        };
        const GradcheckResult r =
            gradcheck([&](const std::vector<Tensor>& v) { return flat_result(both(with(v))); }, inputs);
        INFO(r.message);
        CHECK(r);
        const std::uint64_t before = detail::runs_together();
        const std::vector<Tensor> got = run(in, true, {});
        CHECK(detail::runs_together() - before == 1u);  // the forward only
        const std::vector<Tensor> ref = run(in, false, {});
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(max_rel_diff(got[i], ref[i]) < 1e-13);
    }
}

TEST_CASE("bidirectional sequence ops: the BLAS's threads are shared, then given back", "[bidirectional]") {
    BlasThreads bt(2);
    int seen_a = 0, seen_b = 0;
    detail::run_two([&] { seen_a = blas_threads(); }, [&] { seen_b = blas_threads(); });
    // blas_threads() reports what the user set, not the halves the two pieces run with.
    CHECK(seen_a == 2);
    CHECK(seen_b == 2);
    CHECK(blas_threads() == 2);
    // An exception from either piece reaches the caller once both have ended, and the count is back.
    bool other_ran = false;
    CHECK_THROWS_WITH(detail::run_two([] { throw std::runtime_error("piece a"); }, [&] { other_ran = true; }),
                      "piece a");
    CHECK(other_ran);
    CHECK_THROWS_WITH(detail::run_two([] {}, [] { throw std::runtime_error("piece b"); }), "piece b");
    CHECK(blas_threads() == 2);
    set_blas_threads(0);  // below one counts as one
    CHECK(blas_threads() == 1);
}

TEST_CASE("bidirectional sequence ops: inputs that do not fit", "[recurrent][bidirectional]") {
    const Inputs in = make_inputs(Kind::lstm, 4, 2, 3, 5, true, true, f32);
    CHECK_THROWS_OF(lstm_sequence_bidirectional(in.x, in.dir[0], in.dir[1], {.reverse = true}), ValueError,
                    Contains("lstm_sequence_bidirectional") && Contains("options.reverse must be false"));
    DirectionWeights bad = in.dir[1];
    bad.c0 = randn({2, 4});
    CHECK_THROWS_OF(lstm_sequence_bidirectional(in.x, in.dir[0], bad), ShapeError,
                    Contains("lstm_sequence_bidirectional (reverse direction): x [4, 2, 3], h0 [2, 5], c0 [2, 4]") &&
                        Contains("c0 must be [B, H] = [2, 5]"));
    const Inputs wide = make_inputs(Kind::lstm, 4, 2, 3, 6, false, true, f32);
    CHECK_THROWS_OF(lstm_sequence_bidirectional(in.x, DirectionWeights{in.dir[0].w_ih, in.dir[0].w_hh, in.dir[0].b_ih,
                                                                       in.dir[0].b_hh, Tensor(), Tensor()},
                                                wide.dir[1]),
                    ShapeError, Contains("the directions' hidden sizes differ: w_hh [20, 5] and [24, 6]"));
    const Inputs g = make_inputs(Kind::gru, 4, 2, 3, 5, false, true, f32);
    CHECK_THROWS_OF(gru_sequence_bidirectional(g.x, g.dir[0], g.dir[1], {.lengths = {4, 9}}), ValueError,
                    Contains("gru_sequence_bidirectional (forward direction): lengths[1] = 9 is out of range"));
    const Inputs e = make_inputs(Kind::tanh, 4, 2, 3, 5, false, false, f32);
    DirectionWeights half = e.dir[0];
    half.b_ih = randn({5});
    CHECK_THROWS_OF(rnn_sequence_bidirectional(e.x, half, e.dir[1]), ShapeError,
                    Contains("rnn_sequence_bidirectional (forward direction)") &&
                        Contains("give both biases or neither"));
    CHECK_THROWS_OF(rnn_sequence_bidirectional(e.x.to(f64), e.dir[0], e.dir[1]), DTypeError,
                    Contains("every input must be float64 like x"));
    DirectionWeights with_c0 = g.dir[1];
    with_c0.c0 = randn({2, 5});
    CHECK_THROWS_OF(gru_sequence_bidirectional(g.x, g.dir[0], with_c0), ValueError,
                    Contains("gru_sequence_bidirectional: c0 is given, but only an LSTM has a cell state"));
}
