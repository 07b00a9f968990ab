// Helpers shared by the tests of the fused sequence ops (test_ops_recurrent.cpp, one direction;
// test_ops_bidirectional.cpp, both): the cells, a loss that weighs every result differently, every
// result flattened for full-Jacobian gradchecks, a check of an error's type and message, and the
// BLAS's thread count set for a scope.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>
#include <tapegrad/autograd/blas_info.hpp>
#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

namespace tapegrad::test {

// Sets the BLAS's threads for the scope (CTest starts every test with one; the ops split work over
// threads only with two or more).
struct BlasThreads {
    int before = blas_threads();
    explicit BlasThreads(int n) { set_blas_threads(n); }
    ~BlasThreads() { set_blas_threads(before); }
};

enum class Kind { tanh, relu, lstm, gru };
inline constexpr Kind kKinds[] = {Kind::tanh, Kind::relu, Kind::lstm, Kind::gru};
inline const char* kind_name(Kind k) {
    switch (k) {
        case Kind::tanh: return "rnn tanh";
        case Kind::relu: return "rnn relu";
        case Kind::lstm: return "lstm";
        default: return "gru";
    }
}
inline std::size_t gates(Kind k) { return k == Kind::lstm ? 4 : k == Kind::gru ? 3 : 1; }

// One direction's random weights (w_ih, w_hh, then b_ih, b_hh with `bias`, then h0 and, for an
// LSTM, c0 with `h0`, drawn in that order), each a leaf that requires its gradient.
inline DirectionWeights random_direction(Kind kind, std::size_t B, std::size_t F, std::size_t H, bool h0, bool bias,
                                         DType dt, double scale) {
    DirectionWeights d;
    const std::size_t G = gates(kind) * H;
    d.w_ih = (randn({G, F}, dt) * scale).detach().set_requires_grad();
    d.w_hh = (randn({G, H}, dt) * scale).detach().set_requires_grad();
    if (bias) {
        d.b_ih = (randn({G}, dt) * 0.1).detach().set_requires_grad();
        d.b_hh = (randn({G}, dt) * 0.1).detach().set_requires_grad();
    }
    if (h0) d.h0 = (randn({B, H}, dt) * 0.5).detach().set_requires_grad();
    if (h0 && kind == Kind::lstm) d.c0 = (randn({B, H}, dt) * 0.5).detach().set_requires_grad();
    return d;
}

// A weighted loss over every result, so that each output step and each final state gets its own
// gradient: the fused ops' final-state entry is exercised, not only their output.
inline Tensor loss_of(const SequenceResult& r, std::uint64_t seed) {
    Tensor l = weighted_sum(r.output, seed) + weighted_sum(r.h_n, seed + 1);
    if (r.c_n.defined()) l = l + weighted_sum(r.c_n, seed + 2);
    return l;
}

// Everything flattened into one vector, for full-Jacobian gradchecks.
inline Tensor flat_result(const SequenceResult& r) {
    std::vector<Tensor> parts{reshape(r.output, {-1}), reshape(r.h_n, {-1})};
    if (r.c_n.defined()) parts.push_back(reshape(r.c_n, {-1}));
    return concat(parts, 0);
}

}  // namespace tapegrad::test

// expr throws exactly the error type E with a message the matcher accepts.
#define CHECK_THROWS_OF(expr, E, matcher) \
    do {                                  \
        CHECK_THROWS_AS(expr, E);         \
        CHECK_THROWS_WITH(expr, matcher); \
    } while (0)
