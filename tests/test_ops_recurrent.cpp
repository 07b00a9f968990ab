// rnn_sequence, lstm_sequence and gru_sequence, the fused whole-sequence ops: float64 gradchecks in
// every configuration (each cell, forward and reverse, with and without initial states, biases and
// lengths, a long unroll, a reused output), the same values and gradients as the composed per-step
// ops in float64 and float32, padding that holds NaN, Inf or huge values without influence, the
// layers' fused paths against their composed paths, and the messages for inputs that do not fit.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>
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
    Tensor x, h0, c0, w_ih, w_hh, b_ih, b_hh;
    // In the fused ops' input order: x, w_ih, w_hh, then b_ih, b_hh, h0, c0 where given.
    std::vector<Tensor> all() const {
        std::vector<Tensor> v{x, w_ih, w_hh};
        for (const Tensor* t : {&b_ih, &b_hh, &h0, &c0})
            if (t->defined()) v.push_back(*t);
        return v;
    }
    // The same inputs with the tensors replaced, in all()'s order.
    Inputs with(const std::vector<Tensor>& v) const {
        Inputs a = *this;
        std::size_t i = 0;
        for (Tensor* t : {&a.x, &a.w_ih, &a.w_hh, &a.b_ih, &a.b_hh, &a.h0, &a.c0})
            if (t->defined()) *t = v[i++];
        return a;
    }
};

Inputs make_inputs(Kind kind, std::size_t T, std::size_t B, std::size_t F, std::size_t H, bool h0, bool bias,
                   DType dt, double scale = 0.5) {
    Inputs in;
    in.kind = kind;
    in.x = randn({T, B, F}, dt).set_requires_grad();
    const DirectionWeights d = random_direction(kind, B, F, H, h0, bias, dt, scale);
    in.w_ih = d.w_ih, in.w_hh = d.w_hh, in.b_ih = d.b_ih, in.b_hh = d.b_hh, in.h0 = d.h0, in.c0 = d.c0;
    return in;
}

SequenceResult fused(const Inputs& in, bool reverse, const std::vector<std::int64_t>& lengths = {}) {
    switch (in.kind) {
        case Kind::lstm:
            return lstm_sequence(in.x, in.h0, in.c0, in.w_ih, in.w_hh, in.b_ih, in.b_hh,
                                 {.reverse = reverse, .lengths = lengths});
        case Kind::gru:
            return gru_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh, {.reverse = reverse, .lengths = lengths});
        default:
            return rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh,
                                {.relu = in.kind == Kind::relu, .reverse = reverse, .lengths = lengths});
    }
}

// The same recurrence from the general ops, one step at a time: the reference for the fused ops.
// A padded row keeps its state through keep/drop masks (so the padded input must be finite here).
SequenceResult composed(const Inputs& in, bool reverse, const std::vector<std::int64_t>& lengths = {}) {
    const std::size_t T = in.x.size(0), B = in.x.size(1), H = in.w_hh.size(1);
    const DType dt = in.x.dtype();
    const Tensor xw = linear(in.x, in.w_ih, in.b_ih);  // [T, B, G]
    Tensor h = in.h0.defined() ? in.h0 : zeros({B, H}, dt);
    Tensor c = in.c0.defined() ? in.c0 : zeros({B, H}, dt);
    std::vector<Tensor> outs(T);
    for (std::size_t k = 0; k < T; ++k) {
        const std::size_t t = reverse ? T - 1 - k : k;
        const Tensor x_t = select(xw, 0, static_cast<long>(t));
        Tensor h_new, c_new;
        if (in.kind == Kind::lstm) {
            Tensor g = x_t + linear(h, in.w_hh, in.b_hh);
            const std::vector<Tensor> p = chunk(g, 4, -1);
            c_new = sigmoid(p[1]) * c + sigmoid(p[0]) * tanh(p[2]);
            h_new = sigmoid(p[3]) * tanh(c_new);
        } else if (in.kind == Kind::gru) {
            const std::vector<Tensor> gx = chunk(x_t, 3, -1), gh = chunk(linear(h, in.w_hh, in.b_hh), 3, -1);
            const Tensor r = sigmoid(gx[0] + gh[0]), z = sigmoid(gx[1] + gh[1]);
            const Tensor n = tanh(gx[2] + r * gh[2]);
            h_new = (1.0 - z) * n + z * h;
        } else {
            Tensor pre = x_t + linear(h, in.w_hh, in.b_hh);
            h_new = in.kind == Kind::relu ? relu(pre) : tanh(pre);
        }
        if (lengths.empty()) {
            outs[t] = h_new;
            h = h_new, c = c_new;
            continue;
        }
        xt::xarray<double> k1 = xt::zeros<double>({B, std::size_t{1}});
        for (std::size_t b = 0; b < B; ++b) k1(b, 0) = static_cast<std::int64_t>(t) < lengths[b] ? 1.0 : 0.0;
        const Tensor keep = Tensor(k1).to(dt), drop = 1.0 - keep;
        outs[t] = h_new * keep;
        h = h_new * keep + h * drop;
        if (c_new.defined()) c = c_new * keep + c * drop;
    }
    SequenceResult r{stack(outs, 0), h, Tensor()};
    if (in.kind == Kind::lstm) r.c_n = c;
    return r;
}

// Values and every gradient of fused against composed.
void require_same_as_composed(const Inputs& in, bool reverse, const std::vector<std::int64_t>& lengths, double tol) {
    std::vector<Tensor> grads[2], vals[2];
    for (int pass = 0; pass < 2; ++pass) {
        for (const Tensor& t : in.all()) Tensor(t).zero_grad();
        Tape tape;
        const SequenceResult r = pass == 0 ? fused(in, reverse, lengths) : composed(in, reverse, lengths);
        loss_of(r, 7).backward();
        vals[pass] = {r.output.detach(), r.h_n.detach()};
        if (r.c_n.defined()) vals[pass].push_back(r.c_n.detach());
        for (const Tensor& t : in.all()) grads[pass].push_back(t.grad());
    }
    REQUIRE(vals[0].size() == vals[1].size());
    for (std::size_t i = 0; i < vals[0].size(); ++i) {
        INFO("result " << i);
        CHECK(max_rel_diff(vals[0][i], vals[1][i]) < tol);
    }
    for (std::size_t i = 0; i < grads[0].size(); ++i) {
        INFO("input " << i);
        REQUIRE(grads[0][i].defined());
        CHECK(max_rel_diff(grads[0][i], grads[1][i]) < tol);
    }
}

}  // namespace

TEST_CASE("fused sequence ops: float64 gradcheck in every configuration", "[recurrent]") {
    manual_seed(11);
    const std::vector<std::int64_t> no_lengths, lengths{4, 1, 3};
    for (Kind kind : kKinds)
        for (bool reverse : {false, true})
            for (bool h0 : {false, true})
                for (bool bias : {false, true})
                    for (const auto* len : {&no_lengths, &lengths}) {
                        const Inputs in = make_inputs(kind, 4, 3, 3, 2, h0, bias, f64);
                        INFO(fmt::format("{} reverse {} h0 {} bias {} lengths {}", kind_name(kind), reverse, h0, bias,
                                         !len->empty()));
                        const GradcheckResult r = gradcheck(
                            [&](const std::vector<Tensor>& v) { return flat_result(fused(in.with(v), reverse, *len)); },
                            in.all());
                        INFO(r.message);
                        CHECK(r);
                    }
}

TEST_CASE("fused sequence ops: a single step, and a long unroll", "[recurrent]") {
    manual_seed(12);
    // T = 1 without h0: W_hh gets a zero gradient (it multiplied nothing), as in PyTorch.
    for (Kind kind : kKinds) {
        INFO(kind_name(kind));
        const Inputs one = make_inputs(kind, 1, 2, 3, 4, false, true, f64);
        Tape tape;
        loss_of(fused(one, false), 3).backward();
        REQUIRE(one.w_hh.has_grad());
        for (std::size_t i = 0; i < one.w_hh.numel(); ++i) CHECK(one.w_hh.grad().at(i) == 0.0);
    }
    GradcheckOptions opt;
    opt.mode = GradcheckOptions::Mode::random_direction;
    opt.directions = 4;
    for (Kind kind : kKinds)
        for (bool reverse : {false, true}) {
            INFO(fmt::format("{} reverse {}", kind_name(kind), reverse));
            const Inputs in = make_inputs(kind, 80, 2, 3, 4, true, true, f64, 0.4);
            std::vector<std::int64_t> lengths{80, 53};
            const GradcheckResult r = gradcheck(
                [&](const std::vector<Tensor>& v) { return flat_result(fused(in.with(v), reverse, lengths)); },
                in.all(), opt);
            INFO(r.message);
            CHECK(r);
        }
}

TEST_CASE("fused sequence ops: the same values and gradients as the composed ops", "[recurrent]") {
    manual_seed(13);
    for (Kind kind : kKinds)
        for (bool reverse : {false, true})
            for (bool h0 : {false, true})
                for (const std::vector<std::int64_t>& len : {std::vector<std::int64_t>{}, {7, 2, 5}}) {
                    INFO(fmt::format("{} reverse {} h0 {} lengths {}", kind_name(kind), reverse, h0, !len.empty()));
                    require_same_as_composed(make_inputs(kind, 7, 3, 5, 6, h0, true, f64), reverse, len, 1e-12);
                    require_same_as_composed(make_inputs(kind, 7, 3, 5, 6, h0, false, f32), reverse, len, 2e-5);
                }
}

TEST_CASE("fused sequence ops: a reused, retained output, and gradients that accumulate", "[recurrent]") {
    manual_seed(14);
    for (Kind kind : kKinds) {
        INFO(kind_name(kind));
        const Inputs in = make_inputs(kind, 6, 2, 3, 4, true, true, f64);
        // y = out * out + out + h_n reads the output twice and a final state too, and retain_grad keeps
        // d loss / d out, which the op must not overwrite when it reuses the incoming gradient.
        const GradcheckResult r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                const SequenceResult s = fused(in.with(v), false);
                return reshape(s.output * s.output + s.output + s.h_n, {-1});
            },
            in.all());
        INFO(r.message);
        CHECK(r);
        Tape tape;
        SequenceResult out = fused(in, false);
        out.output.retain_grad();
        sum(out.output * 3.0).backward();
        for (std::size_t i = 0; i < out.output.numel(); ++i) REQUIRE(out.output.grad().at(i) == 3.0);
        // A second backward adds the same gradients again.
        const Tensor first = in.w_hh.grad();
        Tape tape2;
        sum(fused(in, false).output * 3.0).backward();
        CHECK(max_rel_diff(in.w_hh.grad(), first * 2.0) < 1e-14);
    }
}

TEST_CASE("fused sequence ops: a retained graph runs backward again with the same gradients",
          "[recurrent]") {
    // Without retain_graph the gated cells write their gate gradients over the activations they saved;
    // with it they must leave them, so that a second backward finds them as the first did.
    manual_seed(15);
    for (Kind kind : kKinds)
        for (const std::vector<std::int64_t>& len : {std::vector<std::int64_t>{}, {5, 2, 4}})
            for (bool both : {false, true}) {
                INFO(fmt::format("{} lengths {} bidirectional {}", kind_name(kind), !len.empty(), both));
                const Inputs in = make_inputs(kind, 5, 3, 2, 4, true, true, f64);
                const DirectionWeights rv = random_direction(kind, 3, 2, 4, true, true, f64, 0.5);
                std::vector<Tensor> leaves = in.all();
                if (both)
                    for (const Tensor* t : {&rv.w_ih, &rv.w_hh, &rv.b_ih, &rv.b_hh, &rv.h0, &rv.c0})
                        if (t->defined()) leaves.push_back(*t);
                auto run = [&] {
                    if (!both) return fused(in, false, len);
                    const DirectionWeights fw{in.w_ih, in.w_hh, in.b_ih, in.b_hh, in.h0, in.c0};
                    if (kind == Kind::lstm) return lstm_sequence_bidirectional(in.x, fw, rv, {.lengths = len});
                    if (kind == Kind::gru) return gru_sequence_bidirectional(in.x, fw, rv, {.lengths = len});
                    return rnn_sequence_bidirectional(in.x, fw, rv, {.relu = kind == Kind::relu, .lengths = len});
                };
                auto grads = [&] {
                    std::vector<Tensor> g;
                    for (Tensor& t : leaves) g.push_back(t.grad()), t.zero_grad();
                    return g;
                };
                for (Tensor& t : leaves) t.zero_grad();
                std::vector<Tensor> once;
                {
                    Tape tape;
                    loss_of(run(), 9).backward();  // released: the activations are overwritten
                    once = grads();
                }
                Tape tape;
                const Tensor loss = loss_of(run(), 9);
                tape.backward(loss, {.retain_graph = true});
                const std::vector<Tensor> first = grads();
                tape.backward(loss);  // the second sweep, over the same saved arrays
                const std::vector<Tensor> second = grads();
                for (std::size_t i = 0; i < leaves.size(); ++i) {
                    INFO("input " << i);
                    REQUIRE(first[i].defined());
                    REQUIRE(second[i].defined());
                    // The same arithmetic on the same numbers each time: equal to the last bit.
                    CHECK(max_abs_diff(first[i], once[i]) == 0.0);
                    CHECK(max_abs_diff(second[i], once[i]) == 0.0);
                }
            }
}

TEST_CASE("fused sequence ops: at two BLAS threads backward overlaps its products with the recurrence",
          "[recurrent][threads]") {
    // With two threads, one direction's backward forms its weight gradients, dx and bias sums on a
    // second thread, block by block of steps as the recurrence finishes them. Gradients must pass
    // gradcheck, match the one-thread path to rounding, and not depend on timing (equal to the last
    // bit from run to run).
    manual_seed(16);
    const std::vector<std::int64_t> no_lengths, lengths{9, 3, 6}, long_lengths{40, 21, 33};
    for (Kind kind : kKinds)
        for (bool reverse : {false, true})
            for (bool h0 : {false, true})
                for (bool bias : {false, true})
                    for (const auto* len : {&no_lengths, &lengths}) {
                        INFO(fmt::format("{} reverse {} h0 {} bias {} lengths {}", kind_name(kind), reverse, h0, bias,
                                         !len->empty()));
                        const Inputs in = make_inputs(kind, 9, 3, 3, 2, h0, bias, f64);
                        BlasThreads two(2);
                        const GradcheckResult r = gradcheck(
                            [&](const std::vector<Tensor>& v) { return flat_result(fused(in.with(v), reverse, *len)); },
                            in.all());
                        INFO(r.message);
                        CHECK(r);
                    }
    for (Kind kind : kKinds)
        for (DType dt : {f64, f32})
            for (bool reverse : {false, true})
                for (const auto* len : {&no_lengths, &long_lengths}) {
                    INFO(fmt::format("{} {} reverse {} lengths {}", kind_name(kind), dtype_name(dt), reverse,
                                     !len->empty()));
                    // T = 40: blocks of 3 steps, the last of 1.
                    const Inputs in = make_inputs(kind, 40, 3, 5, 6, true, true, dt);
                    auto grads = [&](int threads) {
                        BlasThreads bt(threads);
                        for (const Tensor& t : in.all()) Tensor(t).zero_grad();
                        Tape tape;
                        const std::uint64_t before = detail::runs_together();
                        loss_of(fused(in, reverse, *len), 3).backward();
                        CHECK(detail::runs_together() - before == (threads == 2 ? 1u : 0u));
                        std::vector<Tensor> g;
                        for (const Tensor& t : in.all()) g.push_back(t.grad());
                        return g;
                    };
                    const std::vector<Tensor> one = grads(1), two = grads(2), again = grads(2);
                    for (std::size_t i = 0; i < one.size(); ++i) {
                        INFO("input " << i);
                        CHECK(max_rel_diff(two[i], one[i]) < (dt == f64 ? 1e-12 : 1e-4));
                        CHECK(max_abs_diff(again[i], two[i]) == 0.0);
                    }
                }
}

TEST_CASE("fused sequence ops: only a final state used still reaches every input", "[recurrent]") {
    manual_seed(17);
    for (Kind kind : kKinds) {
        INFO(kind_name(kind));
        const Inputs in = make_inputs(kind, 5, 2, 3, 3, true, true, f64);
        const GradcheckResult r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                const SequenceResult s = fused(in.with(v), true, {5, 3});
                return reshape(s.c_n.defined() ? s.c_n : s.h_n, {-1});
            },
            in.all());
        INFO(r.message);
        CHECK(r);
    }
}

TEST_CASE("fused sequence ops: a constant number of tape entries, whatever the length", "[recurrent]") {
    for (Kind kind : kKinds) {
        INFO(kind_name(kind));
        std::size_t sizes[2];
        for (int i = 0; i < 2; ++i) {
            const Inputs in = make_inputs(kind, i == 0 ? 5 : 50, 2, 3, 4, true, true, f32);
            Tape tape;
            (void)fused(in, false, {});
            sizes[i] = tape.size();
        }
        CHECK(sizes[0] == sizes[1]);
        CHECK(sizes[0] <= 4);  // the sequence, its final states, and one select per state
    }
}

TEST_CASE("fused sequence ops: padding has no influence, whatever it holds", "[recurrent]") {
    // A padded batch gives each row exactly what running that row alone gives: outputs (zeros at the
    // padding), final states and the gradients of every input, with NaN, Inf or 1e30 in the padding.
    manual_seed(16);
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    const std::vector<std::int64_t> lengths{5, 2, 3};
    for (Kind kind : kKinds)
        for (bool reverse : {false, true})
            for (DType dt : {f64, f32})
                for (double junk : {nan, inf, 1e30}) {
                    INFO(fmt::format("{} reverse {} {} padding {}", kind_name(kind), reverse, dtype_name(dt), junk));
                    const Inputs in = make_inputs(kind, 5, 3, 4, 3, true, true, dt);
                    // Write junk into the padded steps of x.
                    Tensor x = in.x.detach();
                    std::visit(
                        [&](auto& a) {
                            for (std::size_t t = 0; t < 5; ++t)
                                for (std::size_t b = 0; b < 3; ++b)
                                    if (static_cast<std::int64_t>(t) >= lengths[b])
                                        for (std::size_t f = 0; f < 4; ++f) a(t, b, f) = junk;
                        },
                        x.mutable_array());
                    x.set_requires_grad();
                    Inputs batch = in;
                    batch.x = x;
                    for (const Tensor& t : batch.all()) Tensor(t).zero_grad();
                    Tape tape;
                    const SequenceResult r = fused(batch, reverse, lengths);
                    loss_of(r, 5).backward();
                    const double tol = dt == f64 ? 1e-12 : 1e-5;
                    for (std::size_t b = 0; b < 3; ++b) {
                        INFO("row " << b);
                        const long len = static_cast<long>(lengths[b]);
                        Inputs alone = in;
                        alone.x = slice(select(in.x, 1, static_cast<long>(b)), 0, 0, len).detach();
                        alone.x = unsqueeze(alone.x, 1).detach().set_requires_grad();
                        for (Tensor* t : {&alone.h0, &alone.c0})
                            if (t->defined()) *t = unsqueeze(select(*t, 0, static_cast<long>(b)), 0).detach();
                        for (Tensor* t : {&alone.w_ih, &alone.w_hh, &alone.b_ih, &alone.b_hh})
                            *t = t->detach().set_requires_grad();
                        Tape t2;
                        const SequenceResult one = fused(alone, reverse);
                        const Tensor row_out = select(r.output, 1, static_cast<long>(b));
                        CHECK(max_rel_diff(slice(row_out, 0, 0, len), select(one.output, 1, 0)) < tol);
                        for (long t = len; t < 5; ++t) CHECK(max_abs_diff(select(row_out, 0, t), zeros({3}, dt)) == 0.0);
                        CHECK(max_rel_diff(select(r.h_n, 0, static_cast<long>(b)), select(one.h_n, 0, 0)) < tol);
                        if (r.c_n.defined())
                            CHECK(max_rel_diff(select(r.c_n, 0, static_cast<long>(b)), select(one.c_n, 0, 0)) < tol);
                    }
                    // Every gradient is finite, and the padded steps of x get exact zeros.
                    for (const Tensor& t : batch.all()) {
                        REQUIRE(t.has_grad());
                        for (double v : values(t.grad())) REQUIRE(std::isfinite(v));
                    }
                    const Tensor gx = x.grad();
                    for (std::size_t b = 0; b < 3; ++b)
                        for (long t = lengths[b]; t < 5; ++t)
                            CHECK(max_abs_diff(select(select(gx, 0, t), 0, static_cast<long>(b)), zeros({4}, dt)) == 0.0);
                }
}

TEST_CASE("nn layers: the fused path equals the composed path", "[recurrent][rnn]") {
    // Anomaly mode runs the composed per-step path (its messages name the step), so the two runs of
    // the same module must agree in outputs, final states and every parameter's gradient, with and
    // without lengths, in every layout.
    manual_seed(15);
    const std::size_t T = 6, B = 3, F = 4, H = 5;
    for (Kind kind : kKinds)
        for (bool batch_first : {false, true})
            for (const std::vector<std::int64_t>& len : {std::vector<std::int64_t>{}, {6, 2, 4}}) {
                INFO(fmt::format("{} batch_first {} lengths {}", kind_name(kind), batch_first, !len.empty()));
                std::unique_ptr<nn::Module> m;
                if (kind == Kind::lstm)
                    m = std::make_unique<nn::LSTM>(nn::LSTMOptions{.input_size = F, .hidden_size = H, .num_layers = 2,
                                                                   .batch_first = batch_first, .bidirectional = true});
                else if (kind == Kind::gru)
                    m = std::make_unique<nn::GRU>(nn::GRUOptions{.input_size = F, .hidden_size = H, .num_layers = 2,
                                                                 .batch_first = batch_first, .bidirectional = true});
                else
                    m = std::make_unique<nn::RNN>(nn::RNNOptions{
                        .input_size = F, .hidden_size = H, .num_layers = 2,
                        .nonlinearity = kind == Kind::relu ? nn::Nonlinearity::relu : nn::Nonlinearity::tanh,
                        .batch_first = batch_first, .bidirectional = true});
                m->to(f64);
                const Tensor x = batch_first ? randn({B, T, F}, f64) : randn({T, B, F}, f64);
                const Tensor h0 = randn({4, B, H}, f64), c0 = randn({4, B, H}, f64);
                std::vector<Tensor> res[2];
                std::vector<Tensor> grads[2];
                for (int pass = 0; pass < 2; ++pass) {
                    m->zero_grad();
                    std::optional<DetectAnomaly> composed_path;
                    if (pass == 1) composed_path.emplace();
                    Tape tape;
                    std::vector<Tensor> r;
                    if (kind == Kind::lstm) {
                        const auto o = static_cast<nn::LSTM&>(*m)(x, h0, c0, len);
                        r = {o.output, o.h_n, o.c_n};
                    } else if (kind == Kind::gru) {
                        const auto o = static_cast<nn::GRU&>(*m)(x, h0, len);
                        r = {o.output, o.h_n};
                    } else {
                        const auto o = static_cast<nn::RNN&>(*m)(x, h0, len);
                        r = {o.output, o.h_n};
                    }
                    if (pass == 0) CHECK(tape.size() < 40);  // fused: a handful of entries per layer, not per step
                    else CHECK(tape.size() > 4 * T);
                    Tensor loss = weighted_sum(r[0], 1);
                    for (std::size_t i = 1; i < r.size(); ++i) loss = loss + weighted_sum(r[i], 1 + i);
                    loss.backward();
                    for (const Tensor& t : r) res[pass].push_back(t.detach());
                    for (const auto& [name, p] : m->named_parameters()) grads[pass].push_back(p.grad());
                }
                for (std::size_t i = 0; i < res[0].size(); ++i) CHECK(max_rel_diff(res[0][i], res[1][i]) < 1e-12);
                for (std::size_t i = 0; i < grads[0].size(); ++i) {
                    INFO("parameter " << i);
                    CHECK(max_rel_diff(grads[0][i], grads[1][i]) < 1e-12);
                }
            }
}

TEST_CASE("fused sequence ops: inputs that do not fit", "[recurrent]") {
    const Inputs in = make_inputs(Kind::tanh, 4, 2, 3, 5, true, true, f32);
    CHECK_THROWS_OF(rnn_sequence(randn({4, 2, 7}), in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh), ShapeError,
                    Contains("rnn_sequence: x [4, 2, 7], h0 [2, 5], w_ih [5, 3], w_hh [5, 5]") &&
                        Contains("needs w_ih [H, F] = [5, 7]"));
    CHECK_THROWS_OF(rnn_sequence(in.x, randn({3, 5}), in.w_ih, in.w_hh, in.b_ih, in.b_hh), ShapeError,
                    Contains("h0 must be [B, H] = [2, 5]"));
    CHECK_THROWS_OF(rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, Tensor()), ShapeError,
                    Contains("give both biases or neither"));
    CHECK_THROWS_OF(rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, randn({4}), randn({4})), ShapeError,
                    Contains("the biases must be [5]"));
    CHECK_THROWS_OF(rnn_sequence(in.x.to(f64), in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh), DTypeError,
                    Contains("every input must be float64 like x"));
    CHECK_THROWS_OF(rnn_sequence(randn({0, 2, 3}), Tensor(), in.w_ih, in.w_hh, in.b_ih, in.b_hh), ShapeError,
                    Contains("must not be empty"));
    CHECK_THROWS_OF(rnn_sequence(randn({2, 3}), Tensor(), in.w_ih, in.w_hh, in.b_ih, in.b_hh), ShapeError,
                    Contains("needs x [T, B, F]"));
    CHECK_THROWS_OF(rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh, {.lengths = {4, 4, 4}}), ShapeError,
                    Contains("rnn_sequence") && Contains("3 lengths given for a batch of 2"));
    CHECK_THROWS_OF(rnn_sequence(in.x, in.h0, in.w_ih, in.w_hh, in.b_ih, in.b_hh, {.lengths = {4, 0}}), ValueError,
                    Contains("rnn_sequence: lengths[1] = 0 is out of range: each length must be in [1, 4]"));

    const Inputs l = make_inputs(Kind::lstm, 4, 2, 3, 5, true, true, f32);
    CHECK_THROWS_OF(lstm_sequence(l.x, l.h0, l.c0, in.w_ih, in.w_hh, l.b_ih, l.b_hh), ShapeError,
                    Contains("lstm_sequence: x [4, 2, 3], h0 [2, 5], c0 [2, 5], w_ih [5, 3], w_hh [5, 5]") &&
                        Contains("needs w_ih [4H, F] = [20, 3] and w_hh [4H, H] = [20, 5]"));
    CHECK_THROWS_OF(lstm_sequence(l.x, l.h0, randn({2, 4}), l.w_ih, l.w_hh, l.b_ih, l.b_hh), ShapeError,
                    Contains("c0 must be [B, H] = [2, 5]"));
    CHECK_THROWS_OF(lstm_sequence(l.x, l.h0, l.c0.to(f64), l.w_ih, l.w_hh, l.b_ih, l.b_hh), DTypeError,
                    Contains("lstm_sequence") && Contains("every input must be float32 like x"));
    CHECK_THROWS_OF(lstm_sequence(l.x, l.h0, l.c0, l.w_ih, l.w_hh, l.b_ih, l.b_hh, {.lengths = {5, 1}}), ValueError,
                    Contains("lstm_sequence: lengths[0] = 5 is out of range"));
    const Inputs g = make_inputs(Kind::gru, 4, 2, 3, 5, false, true, f32);
    CHECK_THROWS_OF(gru_sequence(g.x, Tensor(), g.w_ih, g.w_hh, randn({15}), randn({5})), ShapeError,
                    Contains("gru_sequence") && Contains("the biases must be [15]"));
    CHECK_THROWS_OF(gru_sequence(g.x, Tensor(), l.w_ih, l.w_hh, Tensor(), Tensor()), ShapeError,
                    Contains("needs w_ih [3H, F] = [15, 3] and w_hh [3H, H] = [15, 5]"));
}
