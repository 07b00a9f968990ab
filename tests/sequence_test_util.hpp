// Helpers shared by the tests of the fused sequence ops (test_ops_recurrent.cpp, one direction;
// test_ops_bidirectional.cpp, both): the cells, a loss that weighs every result differently, every
// result flattened for full-Jacobian gradchecks, and a check of an error's type and message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>
#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

namespace tapegrad::test {

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
