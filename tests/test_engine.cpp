// Engine semantics: what the tape records, how backward walks it, and what it refuses.
#include <catch2/catch.hpp>

#include <memory>
#include <thread>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

namespace {
double g(const Tensor& t, std::size_t i = 0) {
    REQUIRE(t.has_grad());
    return t.grad().at(i);
}
}  // namespace

TEST_CASE("gradients accumulate across backward calls until zeroed", "[engine]") {
    Tensor x = Tensor::of({1.0, 2.0, 3.0}, f64, true);
    for (int k = 1; k <= 2; ++k) {
        Tape tape;
        tape.backward(sum(x * x));  // d/dx = 2x per call
        CHECK(g(x, 2) == Approx(6.0 * k));
    }
    x.zero_grad();
    CHECK_FALSE(x.has_grad());
    Tape tape;
    tape.backward(sum(x));
    CHECK(g(x, 0) == 1.0);
}

TEST_CASE("a value used twice and a diamond accumulate both paths", "[engine]") {
    Tensor x = Tensor::scalar(3.0, f64, true);
    {
        Tape tape;
        tape.backward(x * x + x);  // 2x + 1
        CHECK(g(x) == Approx(7.0));
    }
    x.zero_grad();
    {
        Tape tape;
        Tensor a = exp(x);             // diamond: x -> a -> (b, c) -> d
        Tensor d = tanh(a) + a * 2.0;  // dd/da = 1 - tanh(a)^2 + 2
        tape.backward(d);
        const double ea = std::exp(3.0);
        CHECK(g(x) == Approx((1 - std::tanh(ea) * std::tanh(ea) + 2) * ea));
    }
}

TEST_CASE("no tape or NoGrad: nothing is recorded", "[engine]") {
    Tensor x = Tensor::of({1.0, 2.0}, f32, true);
    Tensor y0 = x * x;  // no tape active
    CHECK_FALSE(y0.requires_grad());
    Tape tape;
    {
        NoGrad guard;
        CHECK_FALSE(is_recording());
        Tensor y = x * x;
        CHECK_FALSE(y.requires_grad());
    }
    CHECK(tape.size() == 0);
    CHECK(is_recording());
    Tensor y = x * x;
    CHECK(tape.size() == 1);
    CHECK(y.requires_grad());
    CHECK_FALSE(y.is_leaf());
}

TEST_CASE("an op on inputs that need no gradient is not recorded", "[engine]") {
    Tape tape;
    Tensor a = Tensor::of({1.0, 2.0});
    Tensor y = a * a + 1.0;
    CHECK(tape.size() == 0);
    CHECK_FALSE(y.requires_grad());
    REQUIRE_THROWS_WITH(tape.backward(sum(y)), Contains("does not require grad"));
}

TEST_CASE("detach cuts the gradient", "[engine]") {
    Tensor x = Tensor::scalar(2.0, f64, true);
    Tape tape;
    Tensor h = x * x;
    Tensor y = h.detach() * x;  // only the direct path: dy/dx = h = 4
    CHECK(h.detach().is_leaf());
    CHECK_FALSE(h.detach().requires_grad());
    tape.backward(y);
    CHECK(g(x) == Approx(4.0));
}

TEST_CASE("a second backward over a released record is refused, retain_graph allows it", "[engine]") {
    Tensor x = Tensor::scalar(2.0, f64, true);
    {
        Tape tape;
        Tensor y = x * x;
        tape.backward(y);
        CHECK(tape.consumed());
        CHECK(tape.size() == 0);
        REQUIRE_THROWS_AS(tape.backward(y), UsageError);
        REQUIRE_THROWS_WITH(tape.backward(y), Contains("already released") && Contains("retain_graph"));
    }
    x.zero_grad();
    Tape tape;
    Tensor y = x * x * x;
    tape.backward(y, {.retain_graph = true});
    tape.backward(y);
    CHECK(g(x) == Approx(2 * 3 * 4.0));
}

TEST_CASE("backward of a non-scalar needs an explicit grad_output", "[engine]") {
    Tensor x = Tensor::of({1.0, 2.0, 3.0}, f64, true);
    Tape tape;
    Tensor y = x * 2.0;
    REQUIRE_THROWS_WITH(tape.backward(y), Contains("[3]") && Contains("grad_output"));
    REQUIRE_THROWS_WITH(tape.backward(y, Tensor::of({1.0, 1.0}, f64)), Contains("grad_output has shape [2]"));
    REQUIRE_THROWS_AS(tape.backward(y, Tensor::of({1.0, 1.0, 1.0}, f32)), DTypeError);
    tape.backward(y, Tensor::of({1.0, 10.0, 100.0}, f64));
    CHECK(g(x, 0) == 2.0);
    CHECK(g(x, 1) == 20.0);
    CHECK(g(x, 2) == 200.0);
}

TEST_CASE("Tensor::backward finds the tape that recorded it", "[engine]") {
    Tensor x = Tensor::scalar(5.0, f64, true);
    Tensor y;
    {
        Tape tape;
        y = x * x;
        y.backward();
        CHECK(g(x) == Approx(10.0));
        y = x * 3.0;
    }
    REQUIRE_THROWS_WITH(y.backward(), Contains("no longer exists"));
}

TEST_CASE("nested tapes record independently", "[engine]") {
    Tensor x = Tensor::scalar(2.0, f64, true);
    Tape outer;
    Tensor a = x * 3.0;  // on outer
    {
        Tape inner;
        CHECK(Tape::active() == &inner);
        Tensor b = a * a;  // on inner; a is a value from another tape: a leaf for inner
        CHECK(inner.size() == 1);
        CHECK(outer.size() == 1);
        inner.backward(b);
        CHECK(a.grad().item() == Approx(12.0));  // db/da = 2a
        CHECK_FALSE(x.has_grad());
    }
    CHECK(Tape::active() == &outer);
    a.zero_grad();
    outer.backward(a);
    CHECK(g(x) == Approx(3.0));
}

TEST_CASE("two threads each record on their own tape", "[engine]") {
    auto work = [](double v, double* out) {
        Tensor x = Tensor::scalar(v, f64, true);
        Tape tape;
        Tensor y = x;
        for (int i = 0; i < 200; ++i) y = tanh(y * 1.01);
        tape.backward(y);
        *out = x.grad().item();
    };
    double r1 = 0, r2 = 0, s1 = 0, s2 = 0;
    work(0.3, &s1);
    work(-0.7, &s2);
    {
        Tape main_tape;  // a tape on this thread must not capture the workers' ops
        std::thread t1(work, 0.3, &r1), t2(work, -0.7, &r2);
        t1.join();
        t2.join();
        CHECK(main_tape.size() == 0);
    }
    CHECK(r1 == s1);
    CHECK(r2 == s2);
    CHECK(r1 != 0.0);
}

TEST_CASE("a 100 000-op chain records and backpropagates without recursion", "[engine]") {
    Tensor x = Tensor::of({0.5, -0.25}, f64, true);
    Tape tape;
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y + 1.0;
    CHECK(tape.size() == 100000);
    tape.backward(sum(y));
    CHECK(g(x, 0) == 1.0);
    CHECK(g(x, 1) == 1.0);
    CHECK(y.at(0) == Approx(100000.5));
}

TEST_CASE("using a value from an ended or released tape asks for detach()", "[engine]") {
    Tensor x = Tensor::scalar(1.0, f64, true);
    Tensor h;
    {
        Tape tape;
        h = x * 2.0;
    }
    {
        Tape tape;
        REQUIRE_THROWS_AS(h * 3.0, UsageError);
        REQUIRE_THROWS_WITH(h * 3.0, Contains("mul") && Contains("no longer exists") && Contains("detach()"));
        Tensor ok = h.detach() * x;  // the truncated-BPTT pattern
        CHECK(ok.requires_grad());
    }
    Tape t1;
    Tensor a = x * 2.0;
    t1.backward(a);
    Tape t2;
    REQUIRE_THROWS_WITH(a * 2.0, Contains("released") && Contains("detach()"));
}

TEST_CASE("changing a saved value in place makes backward refuse", "[engine]") {
    Tensor w = Tensor::of({1.0, 2.0}, f64, true);
    Tape tape;
    Tensor y = sum(w * w);
    w.mutable_value<double>()(0) = 5.0;
    REQUIRE_THROWS_WITH(tape.backward(y), Contains("modified in place") && Contains("mul"));
}

TEST_CASE("retain_grad keeps an intermediate's gradient", "[engine]") {
    Tensor x = Tensor::scalar(0.5, f64, true);
    Tape tape;
    Tensor h = tanh(x).retain_grad();
    Tensor m = h * 3.0;  // not retained
    Tensor y = m * m;
    tape.backward(y, {.retain_graph = true});
    const double hv = std::tanh(0.5);
    CHECK(h.grad().item() == Approx(18 * hv));
    CHECK_FALSE(m.has_grad());
    tape.backward(y);  // retained gradients accumulate like leaves' do
    CHECK(h.grad().item() == Approx(36 * hv));
    CHECK(g(x) == Approx(36 * hv * (1 - hv * hv)));
}

TEST_CASE("dtypes: float32 default, float64 on request, mixing refused", "[engine]") {
    CHECK(Tensor::of({1.0}).dtype() == f32);
    CHECK(zeros({2, 3}).dtype() == f32);
    CHECK(zeros({2, 3}, f64).dtype() == f64);
    Tensor a = ones({2}), b = ones({2}, f64);
    REQUIRE_THROWS_AS(a + b, DTypeError);
    REQUIRE_THROWS_WITH(a + b, Contains("add") && Contains("float32") && Contains("float64"));
    REQUIRE_THROWS_AS(a.value<double>(), DTypeError);
    CHECK((a + 1.5).dtype() == f32);
    CHECK((b * 2.0).dtype() == f64);
}

TEST_CASE("to() converts dtype and carries the gradient back", "[engine]") {
    Tensor x = Tensor::of({1.5, -2.0}, f32, true);
    Tape tape;
    Tensor y = x.to(f64);
    CHECK(y.dtype() == f64);
    CHECK(y.at(0) == 1.5);
    tape.backward(sum(y * y));
    CHECK(x.grad().dtype() == f32);
    CHECK(g(x, 1) == Approx(-4.0));
}

TEST_CASE("construction, access and printing", "[engine]") {
    xt::xarray<float> a = {{1.f, 2.f}, {3.f, 4.f}};
    Tensor t(a, true);
    t.set_name("W");
    CHECK(t.shape() == Shape{2, 2});
    CHECK(t.dim() == 2);
    CHECK(t.size(-1) == 2);
    CHECK(t.numel() == 4);
    CHECK(t.value<float>()(1, 0) == 3.f);
    CHECK(t.is_leaf());
    REQUIRE_THROWS_WITH(t.item(), Contains("item") && Contains("[2, 2]"));
    REQUIRE_THROWS_AS(t.size(2), ShapeError);
    const std::string s = fmt::format("{}", t);
    CHECK_THAT(s, Contains("shape=[2, 2]") && Contains("float32") && Contains("requires_grad") && Contains("'W'"));
    CHECK_THAT(s, Contains("[[1, 2],"));
    CHECK_THAT(fmt::format("{}", Tensor()), Contains("undefined"));
    CHECK_THAT(to_string(arange(0, 100)), Contains("..."));
    REQUIRE_THROWS_AS(Tensor::of({{1.0, 2.0}, {3.0}}), ShapeError);
    Tensor u;
    REQUIRE_THROWS_WITH(u + t, Contains("add") && Contains("undefined"));
    REQUIRE_THROWS_AS(u.shape(), UsageError);
}

// A Tape belongs to the thread that made it. Destroyed on another thread, it cannot leave that
// thread's stack (no thread may touch another's), so it is marked dead: the creating thread's next
// op refuses with a UsageError, once, instead of recording into freed memory; then no tape is
// active there. Runs under ThreadSanitizer and AddressSanitizer (scripts/tsan.sh, sanitize.sh).
TEST_CASE("a Tape destroyed on another thread is reported on its own thread, never dangles", "[engine]") {
    Tensor w = Tensor::of({1.0, 2.0}, f64, true);
    auto tape = std::make_unique<Tape>();
    Tensor h = w * 2.0;  // recorded on the tape, which this thread's stack holds
    std::thread([t = std::move(tape)]() mutable { t.reset(); }).join();
    REQUIRE_THROWS_MATCHES(w * 3.0, UsageError,
                           Catch::Matchers::Predicate<std::exception>(
                               [](const std::exception& e) {
                                   const std::string m = e.what();
                                   return m.find("mul: a Tape created on this thread was destroyed on another "
                                                 "thread") != std::string::npos;
                               },
                               "names the op and the rule"));
    CHECK(Tape::active() == nullptr);  // reported once; the stack is sound again
    CHECK_FALSE(is_recording());
    Tensor y = w * 3.0;  // runs, unrecorded
    CHECK(y.at(1) == 6.0);
    // A value the dead tape recorded: as any value of an ended tape.
    CHECK_THROWS_WITH(h.backward(), Contains("no longer exists"));
    {
        Tape fresh;  // a new tape on this thread records as usual
        sum(w * 3.0).backward();
    }
    CHECK(w.grad().at(0) == 3.0);
}
