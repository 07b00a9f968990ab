// Evaluation metrics: perplexity and bits per character against hand-worked values and the loss of
// a uniform model, masked arg-max accuracy on a hand-worked batch, and the errors for bad input.
#include <catch2/catch.hpp>

#include <cmath>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

TEST_CASE("perplexity and bits per character", "[nn][metrics]") {
    CHECK(nn::perplexity(0.0) == 1.0);
    CHECK(nn::perplexity(std::log(4.0)) == Approx(4.0).epsilon(1e-14));
    CHECK(nn::bits_per_char(std::log(2.0)) == Approx(1.0).epsilon(1e-14));
    CHECK(nn::bits_per_char(std::log(256.0)) == Approx(8.0).epsilon(1e-14));
    CHECK(std::isinf(nn::perplexity(INFINITY)));
    // A model that knows nothing (all logits equal) over V classes has perplexity V.
    Generator g(1);
    xt::xarray<std::int64_t> targets = xt::xarray<std::int64_t>::from_shape({4, 3});
    for (std::size_t i = 0; i < targets.size(); ++i) targets.data()[i] = static_cast<std::int64_t>(g.randint(7));
    const double nll = cross_entropy(zeros({4, 3, 7}, f64), targets).item();
    CHECK(nn::perplexity(nll) == Approx(7.0).epsilon(1e-12));
    CHECK(nn::bits_per_char(nll) == Approx(std::log2(7.0)).epsilon(1e-12));
    CHECK_THROWS_WITH(nn::perplexity(-0.5), Contains("perplexity") && Contains("-0.5"));
    CHECK_THROWS_AS(nn::bits_per_char(NAN), ValueError);
}

TEST_CASE("masked_accuracy counts arg-max hits over unmasked, not ignored positions", "[nn][metrics]") {
    // [T=2, B=3, C=3]; arg-maxes: (0,0)->2, (0,1)->0, (0,2)->1, (1,0)->1, (1,1)->0 (tie: lowest), (1,2)->2
    const Tensor logits = Tensor::of({{{0, 1, 5}, {3, 2, 1}, {0, 4, 0}}, {{1, 9, 2}, {6, 6, 0}, {0, 0, 1}}});
    xt::xarray<std::int64_t> targets = {{2, 1, 1}, {1, 0, -100}};
    // Hits: (0,0) (0,2) (1,0) (1,1); miss: (0,1); (1,2) ignored.
    CHECK(nn::masked_accuracy(logits, targets) == Approx(4.0 / 5.0));
    CHECK(nn::masked_accuracy(logits.to(f64), targets) == Approx(4.0 / 5.0));
    // Masking out (0,0) and (1,1): 2 hits of 3.
    const Tensor mask = Tensor::of({{0, 1, 1}, {1, 0, 1}});
    CHECK(nn::masked_accuracy(logits, targets, mask) == Approx(2.0 / 3.0));
    // Another ignore_index: -100 is then a real (bad) target.
    CHECK_THROWS_WITH(nn::masked_accuracy(logits, targets, Tensor(), 7),
                      Contains("masked_accuracy") && Contains("target -100") && Contains("[0, 3)"));
    // Nothing counted: NaN.
    CHECK(std::isnan(nn::masked_accuracy(logits, targets, zeros({2, 3}))));
    // A padded batch's own mask fits.
    const auto batch = nn::pad_sequences({{0, 1}, {2}});
    Tensor l2 = Tensor::of({{{9, 0, 0}, {0, 0, 9}}, {{0, 0, 9}, {9, 0, 0}}});  // [2, 2, 3]
    CHECK(nn::masked_accuracy(l2, batch.ids, batch.mask) == Approx(2.0 / 3.0));
}

TEST_CASE("masked_accuracy validates shapes", "[nn][metrics]") {
    const Tensor logits = zeros({2, 3, 4});
    xt::xarray<std::int64_t> bad_targets = xt::xarray<std::int64_t>::from_shape({3, 2});
    std::fill(bad_targets.data(), bad_targets.data() + 6, 0);
    CHECK_THROWS_AS(nn::masked_accuracy(logits, bad_targets), ShapeError);
    CHECK_THROWS_WITH(nn::masked_accuracy(logits, bad_targets), Contains("[2, 3, 4]") && Contains("[3, 2]"));
    xt::xarray<std::int64_t> targets = xt::xarray<std::int64_t>::from_shape({2, 3});
    std::fill(targets.data(), targets.data() + 6, 0);
    CHECK_THROWS_WITH(nn::masked_accuracy(logits, targets, ones({3, 2})), Contains("mask") && Contains("[3, 2]"));
    CHECK_THROWS_AS(nn::masked_accuracy(Tensor(), targets), UsageError);
    CHECK_THROWS_AS(nn::masked_accuracy(Tensor::scalar(1.0), xt::xarray<std::int64_t>()), ShapeError);
}
