// One model code in float32 and float64: DefaultDType (the dtype factories and layers take when none
// is given), full_like, and where with a plain number, which takes the tensor's dtype. The model at
// the end uses a mask and constants and is run in float32 and gradient-checked in float64 unchanged.
#include <catch2/catch.hpp>

#include <cstdint>
#include <thread>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"

using namespace tapegrad;
using Catch::Matchers::Contains;

namespace {

// Attention pooling over a padded batch, written once for either dtype: the mask, the -1e9 that
// hides the padding from the softmax, and the zero start all follow the model's dtype.
struct AttentionPool : nn::Module {
    nn::Linear score;
    explicit AttentionPool(std::size_t features) : score(features, 1) { register_module("score", score); }

    // x [T, B, F], lengths [B] -> [B, F]: a softmax over each row's own steps, then the weighted sum.
    Tensor forward(const Tensor& x, const std::vector<std::int64_t>& lengths) const {
        const std::size_t T = x.shape()[0], B = x.shape()[1];
        const Tensor s = reshape(score(x), {static_cast<long>(T), static_cast<long>(B)});
        const Tensor mask = nn::sequence_mask(lengths, T, B);
        const Tensor w = softmax(where(mask, s, -1e9), 0);
        const Tensor start = zeros({B, x.shape()[2]});
        return start + sum(unsqueeze(w, -1) * x, 0);
    }
};

}  // namespace

TEST_CASE("default dtype: float32 unless a guard on this thread says otherwise", "[tensor][dtype]") {
    CHECK(default_dtype() == f32);
    CHECK(zeros({2}).dtype() == f32);
    {
        DefaultDType guard(f64);
        CHECK(default_dtype() == f64);
        {
            DefaultDType inner(f32);
            CHECK(zeros({2}).dtype() == f32);
        }
        CHECK(default_dtype() == f64);
        // Another thread has its own default, as it has its own tape.
        DType seen = f64;
        std::thread([&] { seen = default_dtype(); }).join();
        CHECK(seen == f32);
    }
    CHECK(default_dtype() == f32);
}

TEST_CASE("default dtype: every factory and layer follows it, and an explicit dtype wins", "[tensor][dtype]") {
    DefaultDType guard(f64);
    Generator gen(3);
    const std::vector<Tensor> made{zeros({2, 3}),
                                   ones({2}),
                                   full({2}, 0.5),
                                   arange(0, 4),
                                   Tensor::scalar(1.5),
                                   Tensor::of({1, 2}),
                                   Tensor::of({{1, 2}, {3, 4}}),
                                   rand({3}, gen),
                                   randn({3}, gen),
                                   uniform({3}, -1, 1, gen),
                                   rand({3}),
                                   randn({3}),
                                   uniform({3}, -1, 1),
                                   one_hot(xt::xarray<std::int64_t>{0, 2}, 3),
                                   nn::sequence_mask({2, 1}, 2, 2)};
    for (std::size_t i = 0; i < made.size(); ++i) {
        INFO("factory " << i);
        CHECK(made[i].dtype() == f64);
    }
    nn::Linear layer(3, 2);
    nn::LSTM lstm(nn::LSTMOptions{.input_size = 3, .hidden_size = 2});
    CHECK(layer.dtype() == f64);
    CHECK(lstm.dtype() == f64);
    CHECK(zeros({2}, f32).dtype() == f32);
    CHECK(Tensor::scalar(1.0, f32).dtype() == f32);
}

TEST_CASE("full_like and where with a number take the tensor's dtype", "[tensor][dtype]") {
    for (DType dt : {f32, f64}) {
        INFO(dtype_name(dt));
        const Tensor x = Tensor::of({1, -2, 3}, dt, true);
        const Tensor f = full_like(x, -1e9);
        CHECK(f.dtype() == dt);
        CHECK(f.shape() == Shape{3});
        const double big = dt == f32 ? static_cast<double>(static_cast<float>(-1e9)) : -1e9;  // -1e9 in dt
        CHECK(f.at(2) == big);
        const Tensor mask = Tensor::of({1, 0, 1}, dt);
        Tape tape;
        const Tensor y = where(mask, x, -1e9);
        const Tensor z = where(mask, 7.0, x);
        CHECK(y.dtype() == dt);
        CHECK(z.dtype() == dt);
        CHECK(y.at(0) == 1);
        CHECK(y.at(1) == big);
        CHECK(z.at(0) == 7);
        CHECK(z.at(1) == -2);
        tape.backward(sum(y) + 2.0 * sum(z));
        // x gets 1 where y took it (mask true) and 2 where z took it (mask false).
        CHECK(x.grad().at(0) == 1);
        CHECK(x.grad().at(1) == 2);
        CHECK(x.grad().at(2) == 1);
    }
    CHECK_THROWS_WITH(full_like(Tensor(), 1.0), Contains("full_like"));
    CHECK_THROWS_WITH(where(Tensor::of({1}), Tensor(), 0.0), Contains("where"));
}

TEST_CASE("where with a number: float64 gradcheck, with the input used twice", "[tensor][dtype][gradcheck]") {
    const Tensor mask = Tensor::of({{1, 0, 1}, {0, 1, 1}}, f64);
    const Tensor x = Tensor::of({{0.3, -1.2, 0.7}, {2.0, -0.4, 0.1}}, f64);
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return where(mask, in[0], -3.0) * in[0] + where(mask, 0.5, in[0]); },
                       {x});
    INFO(r.message);
    CHECK(r);
}

TEST_CASE("one model code: run in float32, gradient-checked in float64 unchanged", "[nn][dtype][gradcheck]") {
    const std::vector<std::int64_t> lengths{3, 1, 2};
    manual_seed(5);
    AttentionPool model32(4);
    const Tensor x32 = randn({3, 3, 4});
    const Tensor y32 = model32.forward(x32, lengths);
    CHECK(y32.dtype() == f32);
    CHECK(y32.shape() == Shape{3, 4});
    // Row 1 has one step: the softmax puts all its weight there, so the result is that step.
    for (std::size_t f = 0; f < 4; ++f) CHECK(y32.at(1 * 4 + f) == Approx(x32.at((0 * 3 + 1) * 4 + f)));

    DefaultDType guard(f64);
    manual_seed(5);
    AttentionPool model64(4);
    const Tensor x64 = randn({3, 3, 4});
    CHECK(model64.dtype() == f64);
    const Tensor y64 = model64.forward(x64, lengths);
    CHECK(y64.dtype() == f64);
    for (std::size_t i = 0; i < y32.numel(); ++i) CHECK(y64.at(i) == Approx(y32.at(i)).epsilon(1e-5));
    const auto r = nn::gradcheck_module(model64, [&] { return sum(model64.forward(x64, lengths) * x64.at(0)); });
    INFO(r.message);
    CHECK(r);
    const auto rx = gradcheck([&](const std::vector<Tensor>& in) { return model64.forward(in[0], lengths); }, {x64});
    INFO(rx.message);
    CHECK(rx);
}
