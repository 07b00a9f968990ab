// Traps a LibTorch user falls into, closed: reading a temporary tensor (p.grad().value<T>()) gives
// the right numbers instead of a dangling reference; a NoGrad guard left alive while a tape is
// active is named by the backward that finds nothing recorded. (Guards written as temporaries,
// `NoGrad();`, are refused at compile time: see the discarded_guards test in CMakeLists.txt.)
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;

// ---- reading a temporary ----------------------------------------------------------------------------

// On a named tensor, value() is a reference into its storage; on a temporary, a copy that cannot
// outlive what it refers to.
static_assert(std::is_same_v<decltype(std::declval<Tensor&>().value<float>()), const xt::xarray<float>&>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().value<double>()), const xt::xarray<double>&>);
static_assert(std::is_same_v<decltype(std::declval<Tensor>().value<float>()), xt::xarray<float>>);
static_assert(std::is_same_v<decltype(std::declval<Tensor>().grad_value<double>()), xt::xarray<double>>);
static_assert(std::is_same_v<decltype(std::declval<Tensor>().array()), Array>);
static_assert(std::is_same_v<decltype(std::declval<Tensor>().name()), std::string>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().name()), const std::string&>);

TEST_CASE("p.grad().value<T>() reads the gradient, even held past the expression", "[traps]") {
    Tensor p = Tensor::of({1.0, 2.0, 3.0}, f32, true);
    {
        Tape tape;
        tape.backward(sum(p * p));  // d/dp = 2p
    }
    // grad() makes a new tensor that is the only owner of its copy of the gradient; before, value()
    // returned a reference into it that dangled as soon as the statement ended.
    const auto& g = p.grad().value<float>();
    const Tensor scratch = ones({1000}, f32);  // reuses the memory a freed gradient would have had
    REQUIRE(g.size() == 3);
    CHECK(g(0) == 2.0f);
    CHECK(g(1) == 4.0f);
    CHECK(g(2) == 6.0f);
    CHECK(p.grad().value<float>()(2) == 6.0f);
    CHECK(p.grad().grad_array() == nullptr);  // a snapshot: the copy has no gradient of its own
    double total = 0;
    for (float v : p.grad().value<float>()) total += v;  // a range-for over a temporary's value
    CHECK(total == 12.0);
    // The gradient itself is unchanged by writing to the snapshot.
    Tensor snapshot = p.grad();
    snapshot.mutable_value<float>()(0) = 100.0f;
    CHECK(p.grad_value<float>()(0) == 2.0f);
}

TEST_CASE("value, grad_value, array and name of an op's temporary result are copies", "[traps]") {
    Tensor a = Tensor::of({1.0, 2.0}, f64);
    const auto& v = (a + a).value<double>();  // the sum's only owner ends at the semicolon
    const Tensor other = full({1000}, 9.0, f64);
    CHECK(v(0) == 2.0);
    CHECK(v(1) == 4.0);
    const Array& arr = (a * 3.0).array();
    CHECK(std::get<xt::xarray<double>>(arr)(1) == 6.0);
    const std::string& n = Tensor(a.detach()).set_name("renamed").detach().name();
    CHECK(n == "renamed");
    Tensor p = Tensor::of({2.0}, f64, true);
    p.backward();  // a leaf root: d p / d p = 1
    const auto& gv = Tensor(p).grad_value<double>();
    CHECK(gv(0) == 1.0);
    // Reading a named tensor still gives a reference into its storage (no copy).
    CHECK(&a.value<double>() == &a.value<double>());
}

// ---- a NoGrad guard left alive ----------------------------------------------------------------------

TEST_CASE("backward under a live NoGrad guard names the guard, not a missing tape", "[traps]") {
    Tensor x = Tensor::of({1.0, 2.0}, f64, true);
    Tape tape;
    NoGrad no_grad; const int guard_line = __LINE__;  // (on one line: the message names this line)
    Tensor loss = sum(x * x);
    CHECK(tape.size() == 0);
    const std::string where = "test_traps.cpp:" + std::to_string(guard_line);
    REQUIRE_THROWS_MATCHES(tape.backward(loss), UsageError,
                           WhatContains({"backward: the root (shape []) does not require grad",
                                         "a NoGrad guard is alive on this thread (created at ", where,
                                         "although a tape is active", "end the guard's scope"}));
    REQUIRE_THROWS_MATCHES(loss.backward(), UsageError, WhatContains({"NoGrad guard is alive", where}));
    CHECK(live_no_grad_guards().size() == 1);
    CHECK_THAT(live_no_grad_guards().at(0), Catch::Matchers::EndsWith(where));
}

TEST_CASE("the NoGrad message names every live guard, and without a tape it says so", "[traps]") {
    Tensor x = Tensor::of({1.0}, f64, true);
    NoGrad outer; const int outer_line = __LINE__;
    // (new, not make_unique: the guard records where its constructor is called from)
    std::unique_ptr<NoGrad> inner(new NoGrad()); const int inner_line = __LINE__;
    Tensor y = x * 2.0;
    const std::string outer_at = "test_traps.cpp:" + std::to_string(outer_line);
    const std::string inner_at = "test_traps.cpp:" + std::to_string(inner_line);
    REQUIRE_THROWS_MATCHES(y.backward(), UsageError,
                           WhatContains({"2 NoGrad guards are alive", "created at ", outer_at, ", ", inner_at}));
    try {
        y.backward();
    } catch (const UsageError& e) {
        CHECK_THAT(e.what(), !Catch::Matchers::Contains("although a tape is active"));
    }
    // A guard ended out of order (here the outer one stays) leaves the others listed.
    inner.reset();
    REQUIRE(live_no_grad_guards().size() == 1);
    CHECK_THAT(live_no_grad_guards().at(0), Catch::Matchers::EndsWith(outer_at));
}

TEST_CASE("once the guard has ended, the message still mentions NoGrad as a cause", "[traps]") {
    Tensor x = Tensor::of({1.0, 2.0}, f64, true);
    Tape tape;
    Tensor loss;
    {
        NoGrad no_grad;
        loss = sum(x * x);
    }
    CHECK(live_no_grad_guards().empty());
    CHECK(is_recording());
    REQUIRE_THROWS_MATCHES(tape.backward(loss), UsageError,
                           WhatContains({"does not require grad",
                                         "while no tape was active or a NoGrad guard was alive"}));
    // After the guard, recording works as before.
    Tensor again = sum(x * x);
    tape.backward(again);
    CHECK(x.grad_value<double>()(1) == 4.0);
}
