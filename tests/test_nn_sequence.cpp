// Variable-length batches: padding and truncation element by element in both layouts, the mask and
// lengths that go with them, length bucketing that covers every index once, and seeded shuffling.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

namespace {
std::vector<std::vector<std::int64_t>> random_seqs(Generator& g, std::size_t n, std::size_t max_len) {
    std::vector<std::vector<std::int64_t>> seqs(n);
    for (auto& s : seqs) {
        s.resize(1 + g.randint(max_len));
        for (auto& x : s) x = 1 + static_cast<std::int64_t>(g.randint(100));  // never the pad value
    }
    return seqs;
}
}  // namespace

TEST_CASE("pad_sequences puts sequence b in column b, pads after it and masks the padding",
          "[nn][sequence]") {
    Generator g(1);
    const auto seqs = random_seqs(g, 6, 7);
    std::size_t T = 0;
    for (const auto& s : seqs) T = std::max(T, s.size());
    for (bool batch_first : {false, true}) {
        const auto batch = nn::pad_sequences(seqs, {.pad_value = -7, .batch_first = batch_first});
        const Shape expect = batch_first ? Shape{6, T} : Shape{T, 6};
        REQUIRE(Shape(batch.ids.shape().begin(), batch.ids.shape().end()) == expect);
        REQUIRE(batch.mask.shape() == expect);
        CHECK(batch.mask.dtype() == f32);
        REQUIRE(batch.lengths.size() == 6);
        for (std::size_t b = 0; b < 6; ++b) {
            CHECK(batch.lengths[b] == static_cast<std::int64_t>(seqs[b].size()));
            for (std::size_t t = 0; t < T; ++t) {
                const std::size_t flat = batch_first ? b * T + t : t * 6 + b;
                const std::int64_t id = batch_first ? batch.ids(b, t) : batch.ids(t, b);
                if (t < seqs[b].size()) {
                    CHECK(id == seqs[b][t]);
                    CHECK(batch.mask.at(flat) == 1.0);
                } else {
                    CHECK(id == -7);
                    CHECK(batch.mask.at(flat) == 0.0);
                }
            }
        }
    }
}

TEST_CASE("truncation keeps the first or the last max_length items", "[nn][sequence]") {
    const std::vector<std::vector<std::int64_t>> seqs = {{1, 2, 3, 4, 5}, {6, 7}};
    using Tr = nn::PadOptions::Truncate;
    const auto back = nn::pad_sequences(seqs, {.max_length = 3, .truncate = Tr::back});
    REQUIRE(back.ids.shape()[0] == 3);
    CHECK(back.lengths == std::vector<std::int64_t>{3, 2});
    CHECK((back.ids(0, 0) == 1 && back.ids(1, 0) == 2 && back.ids(2, 0) == 3));
    CHECK((back.ids(0, 1) == 6 && back.ids(1, 1) == 7 && back.ids(2, 1) == 0));

    const auto front = nn::pad_sequences(seqs, {.max_length = 3, .truncate = Tr::front, .batch_first = true});
    REQUIRE(front.ids.shape()[1] == 3);
    CHECK((front.ids(0, 0) == 3 && front.ids(0, 1) == 4 && front.ids(0, 2) == 5));
    // A sequence shorter than max_length is untouched, and still padded at its end.
    CHECK((front.ids(1, 0) == 6 && front.ids(1, 1) == 7 && front.ids(1, 2) == 0));
    CHECK(front.mask.at(5) == 0.0);
}

TEST_CASE("pad_sequences refuses an empty batch or an empty sequence", "[nn][sequence]") {
    CHECK_THROWS_WITH(nn::pad_sequences({}), Contains("pad_sequences") && Contains("no sequences"));
    CHECK_THROWS_AS(nn::pad_sequences({{1}, {2, 3}, {}}), ValueError);
    CHECK_THROWS_WITH(nn::pad_sequences({{1}, {2, 3}, {}}), Contains("sequence 2 of 3 is empty"));
}

TEST_CASE("a padded batch drives the RNN and the masked loss", "[nn][sequence]") {
    // The lengths and mask are what the RNN and the loss take: the padded batch gives each
    // sequence the output it gets alone.
    Generator g(4);
    const auto seqs = random_seqs(g, 3, 5);
    const auto batch = nn::pad_sequences(seqs);
    manual_seed(2);
    nn::RNN rnn({.input_size = 4, .hidden_size = 3});
    const std::size_t T = batch.ids.shape()[0];
    Tensor table = randn({101, 4}, g);
    Tensor out = rnn(embedding(table, batch.ids), Tensor(), batch.lengths).output;  // [T, 3, 3]
    for (std::size_t b = 0; b < 3; ++b) {
        xt::xarray<std::int64_t> alone = xt::xarray<std::int64_t>::from_shape({seqs[b].size(), 1});
        for (std::size_t t = 0; t < seqs[b].size(); ++t) alone(t, 0) = seqs[b][t];
        Tensor solo = rnn(embedding(table, alone)).output;  // [len, 1, 3]
        for (std::size_t t = 0; t < T; ++t)
            for (std::size_t h = 0; h < 3; ++h) {
                const double want = t < seqs[b].size() ? solo.at(t * 3 + h) : 0.0;
                CHECK(out.at((t * 3 + b) * 3 + h) == Approx(want).margin(1e-6));
            }
    }
}

TEST_CASE("bucket_by_length covers every index once in length-sorted batches", "[nn][sequence]") {
    Generator g(7);
    std::vector<std::size_t> lengths(101);
    for (auto& l : lengths) l = 1 + g.randint(40);
    Generator gb(3);
    const auto batches = nn::bucket_by_length(lengths, 8, gb);
    REQUIRE(batches.size() == 13);  // ceil(101 / 8)
    std::vector<int> seen(lengths.size(), 0);
    std::size_t small = 0;
    for (const auto& batch : batches) {
        REQUIRE(!batch.empty());
        CHECK(batch.size() <= 8);
        small += batch.size() < 8;
        for (std::size_t i : batch) ++seen[i];
        for (std::size_t k = 1; k < batch.size(); ++k) CHECK(lengths[batch[k - 1]] >= lengths[batch[k]]);
    }
    CHECK(small == 1);
    CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
    // Batches do not overlap in length: ordered by their longest member, each batch's shortest is at
    // least the next one's longest.
    auto sorted = batches;
    std::sort(sorted.begin(), sorted.end(),
              [&](const auto& a, const auto& b) { return lengths[a.front()] > lengths[b.front()]; });
    for (std::size_t k = 1; k < sorted.size(); ++k) CHECK(lengths[sorted[k - 1].back()] >= lengths[sorted[k].front()]);

    // Unshuffled: the batches come longest first. Shuffled: reproducible from the seed.
    Generator g0(3);
    const auto plain = nn::bucket_by_length(lengths, 8, g0, false);
    CHECK(plain == sorted);
    Generator gb2(3), gb3(4);
    CHECK(nn::bucket_by_length(lengths, 8, gb2) == batches);
    CHECK(nn::bucket_by_length(lengths, 8, gb3) != batches);
    CHECK(batches != plain);

    CHECK_THROWS_WITH(nn::bucket_by_length(lengths, 0, g0), Contains("bucket_by_length") && Contains("batch_size"));
    CHECK_THROWS_AS(nn::bucket_by_length({}, 4, g0), ValueError);
}

TEST_CASE("shuffled_indices is a seeded, uniform permutation", "[nn][sequence]") {
    Generator a(42), b(42), c(43);
    const auto pa = nn::shuffled_indices(50, a);
    std::vector<std::size_t> sorted = pa;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < 50; ++i) CHECK(sorted[i] == i);
    CHECK(nn::shuffled_indices(50, b) == pa);
    CHECK(nn::shuffled_indices(50, c) != pa);
    CHECK(nn::shuffled_indices(0, a).empty());
    // All 6 orders of 3 items equally likely (a biased swap, e.g. j in [0, i), fails this).
    Generator g(9);
    std::map<std::vector<std::size_t>, int> counts;
    for (int k = 0; k < 6000; ++k) ++counts[nn::shuffled_indices(3, g)];
    REQUIRE(counts.size() == 6);
    for (const auto& [perm, n] : counts) CHECK((n > 850 && n < 1150));
}
