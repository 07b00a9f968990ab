// Index results as values: LongTensor and BoolTensor (construction, shape ops, printing, .npz),
// argmax/argmin/topk/sort against plain loops (ties, NaN, every axis), comparisons and masks with
// broadcasting, the float64 gradchecks of topk's, sort's and masked_fill's values, and bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <sstream>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
}  // namespace

TEST_CASE("LongTensor: made from lists and vectors, read, reshaped, sliced, printed") {
    const LongTensor ids = LongTensor::of({{1, 2, 3}, {4, 5, 6}});
    REQUIRE(ids.shape() == Shape{2, 3});
    REQUIRE(ids.dim() == 2);
    REQUIRE(ids.numel() == 6);
    REQUIRE(ids.size(-1) == 3);
    REQUIRE(ids.at({1, 2}) == 6);
    REQUIRE(ids.at(4) == 5);
    REQUIRE(ids.to_vector() == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6});

    const LongTensor v{7, 8, 9};
    REQUIRE(v.shape() == Shape{3});
    REQUIRE(LongTensor(std::vector<std::int64_t>{7, 8, 9}).to_vector() == v.to_vector());
    REQUIRE(LongTensor().shape() == Shape{0});
    REQUIRE(LongTensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}).at({2, 0}) == 5);
    REQUIRE(LongTensor::full({2, 2}, -1).to_vector() == std::vector<std::int64_t>{-1, -1, -1, -1});

    REQUIRE(ids.reshape({3, -1}).shape() == Shape{3, 2});
    REQUIRE(ids.reshape({3, -1}).at({2, 1}) == 6);
    REQUIRE(ids.flatten().to_vector() == ids.to_vector());
    REQUIRE(ids.transpose().at({2, 0}) == 3);
    REQUIRE(ids.transpose().to_vector() == std::vector<std::int64_t>{1, 4, 2, 5, 3, 6});
    REQUIRE(ids.slice(1, 1, 3).to_vector() == std::vector<std::int64_t>{2, 3, 5, 6});
    REQUIRE(ids.slice(1, -1, 3).to_vector() == std::vector<std::int64_t>{3, 6});
    REQUIRE(ids.slice(1, 0, 3, 2).to_vector() == std::vector<std::int64_t>{1, 3, 4, 6});
    REQUIRE(ids.select(0, 1).to_vector() == std::vector<std::int64_t>{4, 5, 6});
    REQUIRE(ids.select(1, -1).to_vector() == std::vector<std::int64_t>{3, 6});
    REQUIRE(ids.select(1, -1).shape() == Shape{2});
    REQUIRE(LongTensor::of({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}}).at({1, 0, 1}) == 6);

    // A copy is a copy (value semantics).
    LongTensor c = ids;
    c.mutable_array()(0, 0) = 100;
    REQUIRE(ids.at(0) == 1);
    REQUIRE(c.at(0) == 100);
    REQUIRE(equal(ids, ids.reshape({2, 3})));
    REQUIRE_FALSE(equal(ids, c));
    REQUIRE_FALSE(equal(ids, ids.reshape({3, 2})));

    REQUIRE(to_string(ids) == "LongTensor(shape=[2, 3])\n[[1, 2, 3],\n [4, 5, 6]]");
    REQUIRE(to_string(BoolTensor{true, false}) == "BoolTensor(shape=[2])\n[true, false]");
    REQUIRE(to_string(LongTensor()) == "LongTensor(shape=[0])\n[]");
    std::ostringstream os;
    os << arange_long(10);
    REQUIRE(os.str() == "LongTensor(shape=[10])\n[0, 1, 2, ..., 7, 8, 9]");

    REQUIRE(values(ids.to(f64)) == std::vector<double>{1, 2, 3, 4, 5, 6});
    REQUIRE(values(BoolTensor{true, false}.to(f32)) == std::vector<double>{1, 0});
}

TEST_CASE("LongTensor: joining, arange_long, conversions to and from float tensors") {
    const LongTensor a = LongTensor::of({{1, 2}, {3, 4}}), b = LongTensor::of({{5}, {6}});
    REQUIRE(LongTensor::concat({a, b}, 1).to_vector() == std::vector<std::int64_t>{1, 2, 5, 3, 4, 6});
    REQUIRE(LongTensor::concat({a, a}, 0).shape() == Shape{4, 2});
    REQUIRE(LongTensor::stack({a, a}, 0).shape() == Shape{2, 2, 2});
    REQUIRE(LongTensor::stack({LongTensor{1, 2}, LongTensor{3, 4}}, 1).to_vector() == std::vector<std::int64_t>{1, 3, 2, 4});
    REQUIRE(LongTensor::stack({LongTensor::full({}, 7), LongTensor::full({}, 8)}).to_vector() == std::vector<std::int64_t>{7, 8});

    REQUIRE(arange_long(4).to_vector() == std::vector<std::int64_t>{0, 1, 2, 3});
    REQUIRE(arange_long(5, -1, -2).to_vector() == std::vector<std::int64_t>{5, 3, 1});
    REQUIRE(arange_long(3, 3).numel() == 0);
    REQUIRE(arange_long(-9, 9, 9).to_vector() == std::vector<std::int64_t>{-9, 0});
    const std::int64_t big = std::numeric_limits<std::int64_t>::max();
    REQUIRE(arange_long(big - 2, big, 1).to_vector() == std::vector<std::int64_t>{big - 2, big - 1});

    REQUIRE(to_long(Tensor::of({-2.7, -0.5, 0.5, 3.9})).to_vector() == std::vector<std::int64_t>{-2, 0, 0, 3});
    REQUIRE(to_long(Tensor::of({-9223372036854775808.0}, f64)).at(0) == std::numeric_limits<std::int64_t>::min());
    REQUIRE(to_bool(Tensor::of({0.0, -0.0, 2.0, kNaN})).to_vector() == std::vector<bool>{false, false, true, true});
    REQUIRE(to_bool(LongTensor{0, 5}).to_vector() == std::vector<bool>{false, true});
}

TEST_CASE("LongTensor goes wherever ids go: embedding, gather, cross_entropy, one_hot, index_select, nn") {
    const Tensor table = Tensor::of({{0, 1}, {10, 11}, {20, 21}}, f64);
    const LongTensor ids = LongTensor::of({{2, 0}, {1, 1}});
    REQUIRE(values(embedding(table, ids)) == std::vector<double>{20, 21, 0, 1, 10, 11, 10, 11});
    REQUIRE(values(gather(table, 1, LongTensor::of({{1}, {0}, {1}}))) == std::vector<double>{1, 10, 21});
    REQUIRE(values(index_select(table, 0, LongTensor{2, 2})) == std::vector<double>{20, 21, 20, 21});
    REQUIRE(values(index_select(table, 0, {1})) == std::vector<double>{10, 11});  // still the vector overload
    REQUIRE(values(one_hot(LongTensor{1}, 3, f64)) == std::vector<double>{0, 1, 0});

    const Tensor logits = Tensor::of({{1, 2, 3}, {3, 2, 1}}, f64);
    const xt::xarray<std::int64_t> targets_x = {2, 1};
    REQUIRE(cross_entropy(logits, LongTensor{2, 1}).item() == cross_entropy(logits, targets_x).item());

    nn::Embedding emb(3, 2);
    REQUIRE(emb(ids).shape() == Shape{2, 2, 2});

    REQUIRE_THROWS_MATCHES(index_select(table, 0, LongTensor::of({{0}})), ShapeError,
                           WhatContains({"index_select", "1-D", "[1, 1]"}));
}

TEST_CASE("argmax and argmin along an axis equal a plain loop: ties first, NaN largest") {
    std::mt19937 gen(3);
    for (DType dt : {f32, f64}) {
        // Few distinct values, so ties are common.
        std::uniform_int_distribution<int> u(0, 3);
        xt::xarray<double> v = xt::xarray<double>::from_shape({3, 4, 5});
        for (auto& e : v) e = u(gen);
        const Tensor x = Tensor(v).to(dt);
        for (long axis : {0L, 1L, 2L, -1L}) {
            const std::size_t ax = static_cast<std::size_t>(axis < 0 ? axis + 3 : axis);
            const LongTensor imax = argmax(x, axis), imin = argmin(x, axis);
            const LongTensor keep = argmax(x, axis, true);
            Shape want = x.shape();
            want[ax] = 1;
            REQUIRE(keep.shape() == want);
            want.erase(want.begin() + static_cast<long>(ax));
            REQUIRE(imax.shape() == want);
            for_each_index(want, [&](const Shape& o) {
                std::size_t best = 0, worst = 0;
                auto val = [&](std::size_t k) {
                    Shape i = o;
                    i.insert(i.begin() + static_cast<long>(ax), k);
                    return v[i];
                };
                for (std::size_t k = 1; k < x.shape()[ax]; ++k) {
                    if (val(k) > val(best)) best = k;
                    if (val(k) < val(worst)) worst = k;
                }
                REQUIRE(imax.array()[o] == static_cast<std::int64_t>(best));
                REQUIRE(imin.array()[o] == static_cast<std::int64_t>(worst));
            });
        }
    }
    const Tensor y = Tensor::of({{1, kNaN, 5, kNaN}, {-kInf, 2, 2, kInf}}, f64);
    REQUIRE(argmax(y, 1).to_vector() == std::vector<std::int64_t>{1, 3});
    REQUIRE(argmin(y, 1).to_vector() == std::vector<std::int64_t>{0, 0});
    REQUIRE(argmax(y).item() == 1);  // flat index, 0-d
    REQUIRE(argmax(y).dim() == 0);
    REQUIRE(argmin(Tensor::of({3, 1, 1, 2})).item() == 1);
}

TEST_CASE("topk and sort equal a stable sort of each line, and the values are x's elements") {
    std::mt19937 gen(5);
    std::uniform_int_distribution<int> u(0, 5);
    xt::xarray<double> v = xt::xarray<double>::from_shape({4, 7});
    for (auto& e : v) e = u(gen);
    v(1, 3) = kNaN;
    v(2, 0) = kNaN;
    v(2, 6) = kNaN;
    const Tensor x(v);
    for (bool largest : {true, false}) {
        for (std::size_t k : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{7}}) {
            const auto [values, indices] = topk(x, k, 1, largest);
            REQUIRE(indices.shape() == Shape{4, k});
            REQUIRE(values.shape() == Shape{4, k});
            for (std::size_t r = 0; r < 4; ++r) {
                std::vector<std::int64_t> order(7);
                std::iota(order.begin(), order.end(), 0);
                std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
                    const double va = v(r, a), vb = v(r, b);
                    if (largest) return (std::isnan(va) && !std::isnan(vb)) || va > vb;
                    return (!std::isnan(va) && std::isnan(vb)) || va < vb;
                });
                for (std::size_t j = 0; j < k; ++j) {
                    REQUIRE(indices.at({r, j}) == order[j]);
                    const double want = v(r, static_cast<std::size_t>(order[j]));
                    if (std::isnan(want)) REQUIRE(std::isnan(values.at(r * k + j)));
                    else REQUIRE(values.at(r * k + j) == want);
                }
            }
        }
        // sort along axis 0 (the other layout) against topk of the transpose.
        const auto s0 = sort(x, 0, largest);
        const auto t1 = topk(transpose(x), 4, 1, largest);
        REQUIRE(equal(s0.indices, t1.indices.transpose()));
        REQUIRE(equal(argsort(x, 0, largest), s0.indices));
    }
    const auto asc = sort(Tensor::of({3, 1, kNaN, 2}, f64));
    REQUIRE(asc.indices.to_vector() == std::vector<std::int64_t>{1, 3, 0, 2});
    const auto desc = sort(Tensor::of({3, 1, kNaN, 2}, f64), -1, true);
    REQUIRE(desc.indices.to_vector() == std::vector<std::int64_t>{2, 0, 3, 1});
}

TEST_CASE("topk's and sort's values gradcheck in float64: each picked element gets its gradient") {
    std::mt19937 gen(7);
    const Tensor x = uniform(gen, {3, 6});  // distinct values: finite differences cannot reorder them
    require_gradcheck([](const std::vector<Tensor>& in) { return weighted_sum(topk(in[0], 2, 1).values, 1); }, {x});
    require_gradcheck([](const std::vector<Tensor>& in) { return weighted_sum(topk(in[0], 2, 0, false).values, 2); },
                      {x});
    require_gradcheck([](const std::vector<Tensor>& in) { return weighted_sum(sort(in[0], 1, true).values, 3); }, {x});
    // A value reused: y = topk(x) * x[picked] + sort(x).
    require_gradcheck(
        [](const std::vector<Tensor>& in) {
            const auto [v, i] = topk(in[0], 3, -1);
            return weighted_sum(v * gather(in[0], -1, i), 4) + weighted_sum(sort(in[0]).values, 5);
        },
        {x});
    // The gradient lands on the picked elements only.
    const Tensor x0 = Tensor::of({{1, 5, 3}}, f64);
    const Tensor g = grad_of([](const Tensor& t) { return topk(t, 1, 1).values; }, x0);
    REQUIRE(values(g) == std::vector<double>{0, 1, 0});
}

TEST_CASE("comparisons broadcast, follow IEEE for NaN and compare across dtypes and with numbers") {
    const Tensor a = Tensor::of({{1, 2, 3}, {4, kNaN, 6}}, f64);
    const Tensor b = Tensor::of({2, 2, 2}, f32);
    REQUIRE(eq(a, b).to_vector() == std::vector<bool>{false, true, false, false, false, false});
    REQUIRE(ne(a, b).to_vector() == std::vector<bool>{true, false, true, true, true, true});
    REQUIRE(lt(a, b).to_vector() == std::vector<bool>{true, false, false, false, false, false});
    REQUIRE(le(a, b).to_vector() == std::vector<bool>{true, true, false, false, false, false});
    REQUIRE(gt(a, b).to_vector() == std::vector<bool>{false, false, true, true, false, true});
    REQUIRE(ge(a, b).to_vector() == std::vector<bool>{false, true, true, true, false, true});
    REQUIRE(ge(a, 4.0).to_vector() == std::vector<bool>{false, false, false, true, false, true});
    REQUIRE(eq(a, b).shape() == Shape{2, 3});
    REQUIRE(isnan(a).to_vector() == std::vector<bool>{false, false, false, false, true, false});
    REQUIRE(isinf(Tensor::of({kInf, -kInf, 0.0})).to_vector() == std::vector<bool>{true, true, false});
    REQUIRE(isfinite(Tensor::of({kInf, kNaN, 0.0})).to_vector() == std::vector<bool>{false, false, true});

    const LongTensor p{1, 2, 3}, q = LongTensor::of({{1}, {3}});
    REQUIRE(eq(p, q).shape() == Shape{2, 3});
    REQUIRE(eq(p, q).to_vector() == std::vector<bool>{true, false, false, false, false, true});
    REQUIRE(gt(p, 1).to_vector() == std::vector<bool>{false, true, true});
    REQUIRE(le(p, std::int64_t{2}).to_vector() == std::vector<bool>{true, true, false});

    const BoolTensor m{true, false, true}, n{true, true, false};
    REQUIRE(logical_and(m, n).to_vector() == std::vector<bool>{true, false, false});
    REQUIRE(logical_or(m, n).to_vector() == std::vector<bool>{true, true, true});
    REQUIRE(logical_xor(m, n).to_vector() == std::vector<bool>{false, true, true});
    REQUIRE(logical_not(m).to_vector() == std::vector<bool>{false, true, false});
    REQUIRE(count(m) == 2);
    REQUIRE(any(m));
    REQUIRE_FALSE(all(m));
    REQUIRE(all(BoolTensor()));
    REQUIRE_FALSE(any(BoolTensor()));

    // Accuracy the PyTorch way: (logits.argmax(-1) == targets).float().mean().
    const Tensor logits = Tensor::of({{0.1, 0.9}, {0.8, 0.2}, {0.3, 0.7}});
    const LongTensor targets{1, 0, 0};
    REQUIRE(mean(eq(argmax(logits, -1), targets).to(f64)).item() == Approx(2.0 / 3.0));

    REQUIRE_THROWS_MATCHES(eq(Tensor::of({1, 2}), Tensor::of({1, 2, 3})), ShapeError,
                           WhatContains({"eq", "[2]", "[3]"}));
    REQUIRE_THROWS_MATCHES(logical_and(BoolTensor{true, false}, m), ShapeError,
                           WhatContains({"logical_and", "[2]", "[3]"}));
    REQUIRE(logical_and(BoolTensor{true}, m).to_vector() == m.to_vector());  // [1] broadcasts
}

TEST_CASE("masked_fill and where with a BoolTensor: values, broadcasting, gradients in float64") {
    std::mt19937 gen(11);
    const Tensor x = uniform(gen, {2, 3});
    const BoolTensor row = BoolTensor{false, true, false};  // broadcasts over the rows
    const Tensor y = masked_fill(x, row, -1e9);
    for (std::size_t r = 0; r < 2; ++r)
        for (std::size_t c = 0; c < 3; ++c)
            REQUIRE(y.at(r * 3 + c) == (c == 1 ? -1e9 : x.at(r * 3 + c)));
    REQUIRE(y.dtype() == f64);
    REQUIRE(masked_fill(x.to(f32), row, 2.5).dtype() == f32);

    require_gradcheck([&](const std::vector<Tensor>& in) { return weighted_sum(masked_fill(in[0], row, 0.5), 1); }, {x});
    // The classic use: masked softmax over scores, with the scores reused.
    const BoolTensor pad = BoolTensor::of({{false, false, true}, {false, true, true}});
    require_gradcheck(
        [&](const std::vector<Tensor>& in) {
            const Tensor s = in[0] * in[0] + in[0];
            return weighted_sum(softmax(masked_fill(s, pad, -1e9), -1), 2);
        },
        {x});
    const Tensor g = grad_of([&](const Tensor& t) { return masked_fill(t, pad, 0.0); }, x);
    REQUIRE(values(g) == std::vector<double>{1, 1, 0, 1, 0, 0});

    const Tensor z = uniform(gen, {2, 3});
    require_gradcheck([&](const std::vector<Tensor>& in) { return weighted_sum(where(pad, in[0], in[1]), 3); }, {x, z});
    REQUIRE(where(pad, x, 7.0).at(0) == 7.0);  // where the mask is true: a; elsewhere b
    REQUIRE(where(pad, x, 7.0).at(2) == x.at(2));
    REQUIRE(where(pad, 7.0, x).at(2) == 7.0);
    REQUIRE(values(where(gt(x, 0.0), x, 0.0)) == values(relu(x)));

    REQUIRE_THROWS_MATCHES(masked_fill(x, BoolTensor{true, false}, 0.0), ShapeError,
                           WhatContains({"masked_fill", "[2]", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(masked_fill(Tensor::of({1, 2, 3}), pad, 0.0), ShapeError,
                           WhatContains({"masked_fill", "[2, 3]", "[3]", "does not broadcast"}));
}

TEST_CASE("greedy decoding with argmax and a beam step with topk, as a seq2seq user writes them") {
    // log-probabilities of 2 beams over a vocabulary of 4; the best 2 continuations over both beams.
    const Tensor beam_scores = reshape(Tensor::of({-0.1, -2.0}, f64), {2, 1});
    const Tensor step = Tensor::of({{-1.0, -0.5, -3.0, -2.0}, {-0.1, -4.0, -0.2, -5.0}}, f64);
    const Tensor total = reshape(beam_scores + step, {-1});  // [2 * 4]
    const auto [best, flat_ids] = topk(total, 2);
    REQUIRE(flat_ids.to_vector() == std::vector<std::int64_t>{1, 0});  // -0.6 and -1.1, both from beam 0
    REQUIRE(best.at(0) == Approx(-0.6));
    // Greedy: the next ids of a batch, fed straight back into an embedding.
    const LongTensor next = argmax(step, -1);
    REQUIRE(next.to_vector() == std::vector<std::int64_t>{1, 0});
    const Tensor table = Tensor::of({{0, 0}, {1, 1}, {2, 2}, {3, 3}}, f64);
    REQUIRE(values(embedding(table, next)) == std::vector<double>{1, 1, 0, 0});
}

TEST_CASE("LongTensor and BoolTensor round-trip through .npz as int64 and bool") {
    const ScratchDir scratch("tapegrad_test_ops_index");
    const std::string path = scratch("ids.npz").string();
    const LongTensor ids = LongTensor::of({{3, -1}, {std::numeric_limits<std::int64_t>::max(), 0}});
    const BoolTensor mask = BoolTensor::of({{true, false, true}});
    nn::save_arrays({{"ids", ids}, {"mask", mask}}, path);
    const nn::NpzArchive a = nn::NpzArchive::read(path);
    REQUIRE(a.at("ids").type() == nn::NpyType::int64);
    REQUIRE(a.at("mask").type() == nn::NpyType::boolean);
    const LongTensor ids2 = a.int64("ids");
    const BoolTensor mask2 = a.bools("mask");
    REQUIRE(equal(ids, ids2));
    REQUIRE(equal(mask, mask2));
    REQUIRE_THROWS_MATCHES(a.bools("ids"), DTypeError, WhatContains({"ids", "int64", "not a bool array"}));
}

TEST_CASE("index values refuse bad input with the op and the shapes") {
    const Tensor x = Tensor::of({{1, 2, 3}, {4, 5, 6}});
    REQUIRE_THROWS_MATCHES(topk(x, 4, 1), ValueError, WhatContains({"topk", "k = 4", "[2, 3]", "size 3"}));
    REQUIRE_THROWS_MATCHES(argmax(x, 2), ShapeError, WhatContains({"argmax", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(argmax(zeros({2, 0}), 1), ValueError, WhatContains({"argmax", "[2, 0]", "nothing"}));
    REQUIRE_THROWS_MATCHES(argmin(zeros({0})), ValueError, WhatContains({"argmin", "[0]", "empty"}));
    REQUIRE_THROWS_MATCHES(argmax(Tensor()), Error, WhatContains({"argmax"}));
    REQUIRE_THROWS_MATCHES(sort(Tensor(), 0), Error, WhatContains({"sort"}));

    const LongTensor ids = LongTensor::of({{1, 2, 3}, {4, 5, 6}});
    REQUIRE_THROWS_MATCHES(ids.at({2, 0}), ValueError, WhatContains({"LongTensor::at", "index 2", "axis 0", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(ids.at({1}), ValueError, WhatContains({"LongTensor::at", "1 indices", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(ids.at(6), ValueError, WhatContains({"LongTensor::at", "flat index 6", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(ids.item(), ValueError, WhatContains({"LongTensor::item", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(ids.reshape({4, -1}), ShapeError, WhatContains({"LongTensor::reshape", "[2, 3]", "[4, -1]"}));
    REQUIRE_THROWS_MATCHES(ids.reshape({-1, -1}), ShapeError, WhatContains({"at most one -1"}));
    REQUIRE_THROWS_MATCHES(ids.select(0, 2), ValueError, WhatContains({"LongTensor::select", "index 2", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(ids.slice(0, 0, 1, 0), ValueError, WhatContains({"LongTensor::slice", "step 0"}));
    REQUIRE_THROWS_MATCHES(LongTensor::from_vector({1, 2, 3}, {2, 2}), ValueError,
                           WhatContains({"LongTensor::from_vector", "3 values", "[2, 2]"}));
    REQUIRE_THROWS_MATCHES(LongTensor::of({{1, 2}, {3}}), ValueError, WhatContains({"LongTensor::of", "row 1"}));
    REQUIRE_THROWS_MATCHES(BoolTensor::of({{true}, {true, false}}), ValueError, WhatContains({"BoolTensor::of"}));
    REQUIRE_THROWS_MATCHES(LongTensor::concat({ids, LongTensor{1, 2}}, 0), ShapeError,
                           WhatContains({"LongTensor::concat", "[2]", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(LongTensor::stack({ids, ids.transpose()}), ShapeError,
                           WhatContains({"LongTensor::stack", "[3, 2]", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(BoolTensor::stack({}), ValueError, WhatContains({"BoolTensor::stack", "empty"}));
    REQUIRE_THROWS_MATCHES(arange_long(0, 5, 0), ValueError, WhatContains({"arange_long", "step"}));
    REQUIRE_THROWS_MATCHES(arange_long(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()),
                           ValueError, WhatContains({"arange_long", "too many"}));
    REQUIRE_THROWS_MATCHES(to_long(Tensor::of({1.0, kNaN})), ValueError, WhatContains({"to_long", "element 1", "nan"}));
    REQUIRE_THROWS_MATCHES(to_long(Tensor::of({1e19}, f64)), ValueError, WhatContains({"to_long", "not an int64"}));
    // An id out of range still gets embedding's own message.
    REQUIRE_THROWS_MATCHES(embedding(x, LongTensor{5}), ValueError, WhatContains({"embedding", "5"}));
}
