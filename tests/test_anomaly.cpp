// Anomaly mode: a NaN or Inf is reported where it first appears, forward or backward, with the op,
// its tape entry and, inside a recurrent layer or a labelled custom loop, the time step and direction.
#include <cmath>
#include <limits>

#include <catch2/catch.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

namespace {
std::string anomaly_message(const std::function<void()>& f) {
    try {
        f();
    } catch (const AnomalyError& e) {
        return e.what();
    }
    FAIL("no AnomalyError was thrown");
    return {};
}
}  // namespace

TEST_CASE("anomaly mode is off unless a guard is alive, and the guard is scoped", "[anomaly]") {
    const Tensor x = Tensor::of({1.0, 0.0, 2.0}, f64).set_requires_grad();
    {
        Tape tape;
        const Tensor y = log(x);  // -inf in the middle: IEEE, not an error
        CHECK(std::isinf(y.at(1)));
        CHECK_FALSE(anomaly_mode());
    }
    {
        DetectAnomaly guard;
        CHECK(anomaly_mode());
        {
            DetectAnomaly nested;
            CHECK(anomaly_mode());
        }
        CHECK(anomaly_mode());
        CHECK_THROWS_AS(log(x), AnomalyError);
    }
    CHECK_FALSE(anomaly_mode());
    CHECK_NOTHROW(log(x));
}

TEST_CASE("anomaly mode names the op, the value, the element and the tape entry of a forward anomaly",
          "[anomaly]") {
    const Tensor x = Tensor::of({1.0, 4.0, 0.0}, f64).set_requires_grad();
    DetectAnomaly guard;
    Tape tape;
    const Tensor y = exp(x);  // entry 0
    const Tensor z = y * x;   // entry 1
    const std::string msg = anomaly_message([&] { (void)log(z); });  // would be entry 2
    CHECK_THAT(msg, Contains("'log' produced -inf"));
    CHECK_THAT(msg, Contains("element 2 of its [3] result"));
    CHECK_THAT(msg, Contains("tape entry 2"));
    // Without a tape there is no entry to name, but the value is still checked.
    NoGrad no_grad;
    CHECK_THAT(anomaly_message([&] { (void)(x / zeros({3}, f64)); }), Contains("'div' produced"));
}

TEST_CASE("anomaly mode checks every gradient backward produces", "[anomaly]") {
    // sqrt(0) is 0, finite, but its gradient 1 / (2 sqrt(0)) is +inf.
    Tensor x = Tensor::of({1.0, 0.0, 4.0}, f64).set_requires_grad();
    {
        Tape tape;  // without the guard: the inf lands in x.grad silently
        sum(sqrt(x)).backward();
        CHECK(std::isinf(x.grad().at(1)));
    }
    x.zero_grad();
    DetectAnomaly guard;
    Tape tape;
    const Tensor loss = sum(sqrt(x) * 3.0);
    const std::string msg = anomaly_message([&] { loss.backward(); });
    CHECK_THAT(msg, Contains("the backward of 'sqrt' (tape entry 0)"));
    CHECK_THAT(msg, Contains("inf in the gradient of input 0 (shape [3]), element 1"));
    // A non-finite seed is caught before the sweep.
    Tape tape2;
    const Tensor y = x * 2.0;
    CHECK_THAT(anomaly_message([&] { y.backward(Tensor::of({1.0, NAN, 1.0}, f64)); }),
               Contains("grad_output (shape [3]) holds nan at element 1"));
}

// The scenario: a custom recurrent cell takes log of its input, and the input at step 7 is 0,
// so log gives -inf at step 7. The loop labels its steps with OpScope, as a custom cell should.
TEST_CASE("a custom cell fed a value that makes log give -inf at step 7 reports step 7", "[anomaly]") {
    manual_seed(3);
    const std::size_t T = 12, B = 2, H = 3;
    Tensor x = uniform({T, B, H}, 0.5, 1.5, f64);
    x.mutable_value<double>()(7, 1, 2) = 0.0;  // log(0) = -inf at step 7 only
    const Tensor w = (randn({H, H}, f64) * 0.3).set_requires_grad();
    auto run = [&] {
        Tape tape;
        Tensor h = zeros({B, H}, f64);
        //! [opscope]
        for (std::size_t t = 0; t < T; ++t) {
            OpScope scope({.name = "log cell", .step = static_cast<long>(t)});
            h = tanh(matmul(h, w) + log(select(x, 0, static_cast<long>(t))));
        }
        //! [opscope]
        sum(h).backward();
    };
    CHECK_NOTHROW([&] {
        Tensor ok = x.detach();
        ok.mutable_value<double>()(7, 1, 2) = 1.0;
        std::swap(x, ok);
        run();
        std::swap(x, ok);
    }());
    DetectAnomaly guard;
    const std::string msg = anomaly_message(run);
    CHECK_THAT(msg, Contains("'log' produced -inf"));
    CHECK_THAT(msg, Contains("at log cell, step 7"));
}

TEST_CASE("anomaly mode inside nn::RNN names the layer, the direction and the time step", "[anomaly]") {
    const std::size_t T = 10, B = 2, F = 3, H = 4;
    SECTION("an overflow at step 7 of the forward direction") {
        // relu RNN with W_hh = 1e50 I and every projected input 1: h_t = 1e50^t (roughly), finite up to
        // t = 6 (1e300), +inf at t = 7. The whole-sequence input projection stays finite.
        nn::RNN rnn({.input_size = F, .hidden_size = H, .nonlinearity = nn::Nonlinearity::relu,
                     .bidirectional = true});
        rnn.to(f64);
        auto set = [&](const std::string& name, double v, bool diag) {
            auto& a = rnn.parameter(name).mutable_value<double>();
            for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = 0.0;
            if (diag)
                for (std::size_t i = 0; i < H; ++i) a(i, i) = v;
            else
                for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = v;
        };
        set("weight_hh_l0", 1e50, true);
        set("weight_ih_l0", 1.0 / F, false);
        set("bias_ih_l0", 0.0, false);
        set("bias_hh_l0", 0.0, false);
        const Tensor x = ones({T, B, F}, f64);
        {
            Tape tape;  // without the guard the overflow goes unnoticed until the output
            const Tensor out = rnn(x).output;
            CHECK(std::isinf(out.at(7 * B * 2 * H)));
        }
        DetectAnomaly guard;
        Tape tape;
        const std::string msg = anomaly_message([&] { (void)rnn(x); });
        CHECK_THAT(msg, Contains("produced inf"));
        CHECK_THAT(msg, Contains("at RNN layer 0 (forward), step 7"));
    }
    SECTION("a NaN weight of the reverse direction shows at its first step, T - 1") {
        nn::RNN rnn({.input_size = F, .hidden_size = H, .num_layers = 2, .bidirectional = true});
        rnn.to(f64);
        rnn.parameter("weight_hh_l1_reverse").mutable_value<double>()(1, 2) = NAN;
        DetectAnomaly guard;
        Tape tape;
        const std::string msg = anomaly_message([&] { (void)rnn(randn({T, B, F}, f64)); });
        CHECK_THAT(msg, Contains("produced nan"));
        CHECK_THAT(msg, Contains("at RNN layer 1 (reverse), step 9"));
    }
    SECTION("a gradient overflow in backward names the step whose op produced it") {
        // Every projected input is 0.03 and W_hh is zero but for W_hh(1, 0) = 4: h stays small. The
        // loss is 1e308 * h_4(0, 1), so d loss / d pre-activation of unit 1 at step 4 is about 1e308, and
        // the step-4 product h_3 W_hh^T passes 4 times that, +inf, to h_3(0, 0).
        nn::RNN rnn({.input_size = F, .hidden_size = H});
        rnn.to(f64);
        for (auto [name, p] : rnn.named_parameters()) {
            auto& a = p.mutable_value<double>();
            const double v = name == "weight_ih_l0" ? 0.01 : 0.0;
            for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = v;
        }
        rnn.parameter("weight_hh_l0").mutable_value<double>()(1, 0) = 4.0;
        Tensor g = zeros({T, B, H}, f64);
        g.mutable_value<double>()(4, 0, 1) = 1e308;
        DetectAnomaly guard;
        Tape tape;
        const Tensor loss = sum(rnn(ones({T, B, F}, f64)).output * g);
        const std::string msg = anomaly_message([&] { tape.backward(loss); });
        CHECK_THAT(msg, Contains("at RNN layer 0 (forward), step 4)"));
        CHECK_THAT(msg, Contains("produced inf in the gradient of input 0 (shape [2, 4]), element 0"));
    }
}

TEST_CASE("Where renders what it is given", "[anomaly]") {
    CHECK(where_str({.name = "GRU", .layer = 1, .direction = "reverse", .step = 3}) == "GRU layer 1 (reverse), step 3");
    CHECK(where_str({.name = "cell", .step = 0}) == "cell, step 0");
    CHECK(where_str({.step = 5}) == "step 5");
    CHECK(where_str({.name = "head"}) == "head");
}
