// Shape ops: each one's forward against plain loops over indices (in float32 and float64), its
// gradient by a float64 full-Jacobian gradcheck (repeated indices, broadcasting and a value used
// twice included), and its refusal of bad input with a message naming the op and the shapes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <limits>
#include <random>

#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {

xt::xarray<std::int64_t> random_ids(std::mt19937& gen, const Shape& shape, std::int64_t n) {
    std::uniform_int_distribution<std::int64_t> u(0, n - 1);
    xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape(shape);
    for (std::size_t i = 0; i < ids.size(); ++i) ids.data()[i] = u(gen);
    return ids;
}

std::size_t flat(const Shape& idx, const Shape& shape) {
    std::size_t k = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) k = k * shape[d] + idx[d];
    return k;
}
double at(const Tensor& t, const Shape& idx) { return t.at(flat(idx, t.shape())); }

// y must have `shape` and y[idx] == expected(idx) exactly (shape ops only move elements).
void require_values(const Tensor& y, const Shape& shape, const std::function<double(const Shape&)>& expected) {
    REQUIRE(y.shape() == shape);
    std::size_t wrong = 0;
    std::string first;
    for_each_index(shape, [&](const Shape& idx) {
        const double got = at(y, idx), want = expected(idx);
        if (got != want && wrong++ == 0) first = fmt::format("at {}: got {}, want {}", shape_str(idx), got, want);
    });
    INFO(first);
    REQUIRE(wrong == 0);
}

// The gradient of sum(f(x)) as a flat vector of doubles.
std::vector<double> grad_of_sum(const Tensor& x0, const std::function<Tensor(const Tensor&)>& f) {
    return values(grad_of(f, x0));
}

}  // namespace

// ---- reshape, squeeze, unsqueeze ------------------------------------------------------------------

TEMPLATE_TEST_CASE("reshape keeps row-major order and infers one -1 axis", "[shape]", float, double) {
    std::mt19937 gen(1);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {2, 3, 4}, dt);
    require_values(reshape(x, {4, -1}), {4, 6}, [&](const Shape& i) { return x.at(i[0] * 6 + i[1]); });
    require_values(reshape(x, {-1}), {24}, [&](const Shape& i) { return x.at(i[0]); });
    require_values(reshape(x, {3, 1, 8}), {3, 1, 8}, [&](const Shape& i) { return x.at(i[0] * 8 + i[2]); });
}

TEST_CASE("reshape: gradient and bad shapes", "[shape]") {
    std::mt19937 gen(2);
    const Tensor x = uniform(gen, {2, 3, 4});
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor y = reshape(in[0], {-1, 4});
        return y * y + reshape(in[0], {6, 4});  // x reaches the output twice
    }, {x});
    REQUIRE_THROWS_AS(reshape(x, {5, -1}), ShapeError);
    REQUIRE_THROWS_WITH(reshape(x, {5, -1}), Contains("reshape") && Contains("[2, 3, 4]") && Contains("[5, -1]"));
    REQUIRE_THROWS_WITH(reshape(x, {-1, -1}), Contains("reshape") && Contains("only one axis may be -1"));
    REQUIRE_THROWS_WITH(reshape(x, {5, 5}), Contains("reshape") && Contains("[2, 3, 4]") && Contains("[5, 5]"));
}

TEMPLATE_TEST_CASE("squeeze drops size-1 axes, unsqueeze inserts one", "[shape]", float, double) {
    std::mt19937 gen(3);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {1, 3, 1, 2}, dt);
    require_values(squeeze(x), {3, 2}, [&](const Shape& i) { return at(x, {0, i[0], 0, i[1]}); });
    require_values(squeeze(x, 0), {3, 1, 2}, [&](const Shape& i) { return at(x, {0, i[0], 0, i[2]}); });
    require_values(squeeze(x, -2), {1, 3, 2}, [&](const Shape& i) { return at(x, {0, i[1], 0, i[2]}); });
    const Tensor v = uniform(gen, {3, 2}, dt);
    require_values(unsqueeze(v, 0), {1, 3, 2}, [&](const Shape& i) { return at(v, {i[1], i[2]}); });
    require_values(unsqueeze(v, 1), {3, 1, 2}, [&](const Shape& i) { return at(v, {i[0], i[2]}); });
    require_values(unsqueeze(v, 2), {3, 2, 1}, [&](const Shape& i) { return at(v, {i[0], i[1]}); });
    require_values(unsqueeze(v, -1), {3, 2, 1}, [&](const Shape& i) { return at(v, {i[0], i[1]}); });
    require_values(unsqueeze(v, -3), {1, 3, 2}, [&](const Shape& i) { return at(v, {i[1], i[2]}); });
    CHECK(squeeze(uniform(gen, {1, 1}, dt)).shape() == Shape{});
}

TEST_CASE("squeeze and unsqueeze: gradient and bad axes", "[shape]") {
    std::mt19937 gen(4);
    const Tensor x = uniform(gen, {2, 1, 3});
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor s = squeeze(in[0]);  // [2, 3]
        return unsqueeze(s * s, 0) + unsqueeze(squeeze(in[0], 1), -3);
    }, {x});
    REQUIRE_THROWS_AS(squeeze(x, 0), ShapeError);
    REQUIRE_THROWS_WITH(squeeze(x, 0), Contains("squeeze") && Contains("[2, 1, 3]") && Contains("size 2"));
    REQUIRE_THROWS_WITH(squeeze(x, 3), Contains("squeeze") && Contains("[2, 1, 3]"));
    REQUIRE_THROWS_AS(unsqueeze(x, 4), ShapeError);
    REQUIRE_THROWS_WITH(unsqueeze(x, 4), Contains("unsqueeze") && Contains("[2, 1, 3]") && Contains("-4 to 3"));
    REQUIRE_THROWS_AS(unsqueeze(x, -5), ShapeError);
}

// ---- transpose, permute, broadcast_to ------------------------------------------------------------

TEMPLATE_TEST_CASE("permute and transpose move axes", "[shape]", float, double) {
    std::mt19937 gen(5);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {2, 3, 4}, dt);
    std::vector<long> p{0, 1, 2};
    do {  // all six permutations
        const Shape out{x.shape()[p[0]], x.shape()[p[1]], x.shape()[p[2]]};
        INFO(fmt::format("axes [{}]", fmt::join(p, ", ")));
        require_values(permute(x, p), out, [&](const Shape& i) {
            Shape src(3);
            for (std::size_t d = 0; d < 3; ++d) src[p[d]] = i[d];
            return at(x, src);
        });
    } while (std::next_permutation(p.begin(), p.end()));
    require_values(permute(x, {-1, 0, -2}), {4, 2, 3}, [&](const Shape& i) { return at(x, {i[1], i[2], i[0]}); });
    require_values(transpose(x), {2, 4, 3}, [&](const Shape& i) { return at(x, {i[0], i[2], i[1]}); });
    require_values(transpose(x, 0, 2), {4, 3, 2}, [&](const Shape& i) { return at(x, {i[2], i[1], i[0]}); });
    const Tensor m = uniform(gen, {3, 5}, dt);
    require_values(transpose(m), {5, 3}, [&](const Shape& i) { return at(m, {i[1], i[0]}); });
}

TEST_CASE("permute and transpose: gradient through the inverse permutation, bad axes", "[shape]") {
    std::mt19937 gen(6);
    const Tensor x = uniform(gen, {2, 3, 4});
    // {1, 2, 0} is not its own inverse, so a backward using the forward permutation would fail.
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor y = permute(in[0], {1, 2, 0});  // [3, 4, 2]
        return y * y + permute(in[0], {1, 2, 0});
    }, {x});
    require_gradcheck([](const std::vector<Tensor>& in) { return transpose(in[0], 0, 2) * transpose(in[0], 2, 0); },
                      {x});
    REQUIRE_THROWS_AS(permute(x, {0, 0, 1}), ShapeError);
    REQUIRE_THROWS_WITH(permute(x, {0, 0, 1}), Contains("permute") && Contains("[2, 3, 4]") && Contains("[0, 0, 1]"));
    REQUIRE_THROWS_WITH(permute(x, {1, 0}), Contains("permute") && Contains("[2, 3, 4]") && Contains("[1, 0]"));
    REQUIRE_THROWS_WITH(permute(x, {0, 1, 3}), Contains("permute") && Contains("[2, 3, 4]"));
    REQUIRE_THROWS_WITH(transpose(uniform(gen, {5})), Contains("transpose") && Contains("[5]"));
    REQUIRE_THROWS_WITH(transpose(x, 0, 3), Contains("transpose") && Contains("[2, 3, 4]"));
}

TEMPLATE_TEST_CASE("broadcast_to and expand repeat size-1 and missing leading axes", "[shape]", float, double) {
    std::mt19937 gen(7);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {3, 1}, dt);
    require_values(broadcast_to(x, {2, 3, 4}), {2, 3, 4}, [&](const Shape& i) { return at(x, {i[1], 0}); });
    require_values(expand(x, {3, 5}), {3, 5}, [&](const Shape& i) { return at(x, {i[0], 0}); });
    const Tensor s = Tensor::scalar(2.5, dtype_of<TestType>);
    require_values(broadcast_to(s, {2, 2}), {2, 2}, [](const Shape&) { return 2.5; });
    require_values(broadcast_to(x, {3, 1}), {3, 1}, [&](const Shape& i) { return at(x, i); });
}

TEST_CASE("broadcast_to: the gradient is summed back, bad target shapes", "[shape]") {
    std::mt19937 gen(8);
    const Tensor x = uniform(gen, {3, 1});
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor y = broadcast_to(in[0], {2, 3, 4});
        return y * y + expand(in[0], {2, 3, 4});
    }, {x});
    // d sum(broadcast_to(x, [2, 3, 4])) / dx = the number of copies of each element: 2 * 4.
    CHECK(grad_of_sum(x, [](const Tensor& t) { return broadcast_to(t, {2, 3, 4}); }) == std::vector<double>(3, 8.0));
    REQUIRE_THROWS_AS(broadcast_to(uniform(gen, {3, 2}), {4, 3}), ShapeError);
    REQUIRE_THROWS_WITH(broadcast_to(uniform(gen, {3, 2}), {4, 3}),
                        Contains("broadcast_to") && Contains("[3, 2]") && Contains("[4, 3]"));
    REQUIRE_THROWS_WITH(expand(x, {3}), Contains("expand") && Contains("[3, 1]") && Contains("[3]"));
}

// ---- select, slice, flip, pad ---------------------------------------------------------------------

TEMPLATE_TEST_CASE("select picks one index along an axis, negative counting from the end", "[shape]", float,
                   double) {
    std::mt19937 gen(9);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {4, 2, 3}, dt);
    require_values(select(x, 0, 1), {2, 3}, [&](const Shape& i) { return at(x, {1, i[0], i[1]}); });
    require_values(select(x, 0, -1), {2, 3}, [&](const Shape& i) { return at(x, {3, i[0], i[1]}); });
    require_values(select(x, -1, 2), {4, 2}, [&](const Shape& i) { return at(x, {i[0], i[1], 2}); });
    require_values(select(x, 1, -2), {4, 3}, [&](const Shape& i) { return at(x, {i[0], 0, i[1]}); });
}

TEST_CASE("select: every time step selected and summed gives gradient ones, bad index", "[shape]") {
    std::mt19937 gen(10);
    const Tensor x = uniform(gen, {5, 2, 3});  // [T, B, F]
    const auto g = grad_of_sum(x, [](const Tensor& t) {
        Tensor acc = select(t, 0, 0);
        for (long s = 1; s < 5; ++s) acc = acc + select(t, 0, s);
        return acc;
    });
    CHECK(g == std::vector<double>(30, 1.0));
    // The same step selected twice (once by a negative index) adds both gradients into one place.
    const auto g2 = grad_of_sum(x, [](const Tensor& t) { return select(t, 0, 4) + select(t, 0, -1); });
    for (std::size_t i = 0; i < g2.size(); ++i) CHECK(g2[i] == (i >= 24 ? 2.0 : 0.0));
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor a = select(in[0], 0, 1);  // [3, 4]
        return a * a + select(in[0], 0, -4) + transpose(select(in[0], 2, -1)) * 3.0;
    }, {uniform(gen, {4, 3, 4})});
    REQUIRE_THROWS_AS(select(x, 0, 5), ShapeError);
    REQUIRE_THROWS_WITH(select(x, 0, 5), Contains("select") && Contains("[5, 2, 3]") && Contains("index 5"));
    REQUIRE_THROWS_WITH(select(x, 1, -3), Contains("select") && Contains("[5, 2, 3]") && Contains("index -3"));
    REQUIRE_THROWS_WITH(select(x, 3, 0), Contains("select") && Contains("[5, 2, 3]"));
}

TEST_CASE("slice follows Python's slicing rules", "[shape]") {
    const Tensor x = arange(0, 7, 1, f64);  // [0, 1, ..., 6]
    auto items = [](const Tensor& t) {
        std::vector<double> v(t.numel());
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = t.at(i);
        return v;
    };
    using V = std::vector<double>;
    CHECK(items(slice(x, 0, 2, 5)) == V{2, 3, 4});
    CHECK(items(slice(x, 0, -3, 100)) == V{4, 5, 6});      // negative start, stop clamped
    CHECK(items(slice(x, 0, 1, -1, 2)) == V{1, 3, 5});     // negative stop, step 2
    CHECK(items(slice(x, 0, -100, 2)) == V{0, 1});         // start clamped to 0
    CHECK(items(slice(x, 0, 0, 7, 3)) == V{0, 3, 6});
    CHECK(items(slice(x, 0, 6, 7, 4)) == V{6});
    CHECK(items(slice(x, 0, 1, 7, std::numeric_limits<long>::max())) == V{1});
    CHECK(slice(x, 0, 5, 2).shape() == Shape{0});          // empty, not an error
    CHECK(slice(x, 0, 9, 12).shape() == Shape{0});
    CHECK(slice(x, 0, -1, -1).shape() == Shape{0});
}

TEMPLATE_TEST_CASE("slice along an inner axis", "[shape]", float, double) {
    std::mt19937 gen(11);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {2, 7, 3}, dt);
    require_values(slice(x, 1, 1, 6, 2), {2, 3, 3}, [&](const Shape& i) { return at(x, {i[0], 1 + 2 * i[1], i[2]}); });
    require_values(slice(x, -1, -2, 3), {2, 7, 2}, [&](const Shape& i) { return at(x, {i[0], i[1], 1 + i[2]}); });
}

TEST_CASE("slice: gradient with a step and overlapping slices, bad step", "[shape]") {
    std::mt19937 gen(12);
    const Tensor x = uniform(gen, {3, 6});
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor a = slice(in[0], 1, 0, 6, 2);  // [3, 3]
        Tensor b = slice(in[0], 1, -3, 100);  // [3, 3], overlapping a at column 4
        return a * b + a + slice(in[0], 1, 1, 2);  // [3, 1], broadcast
    }, {x});
    REQUIRE_THROWS_AS(slice(x, 1, 0, 4, 0), ValueError);
    REQUIRE_THROWS_WITH(slice(x, 1, 0, 4, 0), Contains("slice") && Contains("[3, 6]") && Contains("step 0"));
    REQUIRE_THROWS_AS(slice(x, 1, 4, 0, -1), ValueError);
    REQUIRE_THROWS_WITH(slice(x, 2, 0, 1), Contains("slice") && Contains("[3, 6]"));
}

TEMPLATE_TEST_CASE("flip reverses one axis", "[shape]", float, double) {
    std::mt19937 gen(13);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {3, 4, 2}, dt);
    require_values(flip(x, 1), {3, 4, 2}, [&](const Shape& i) { return at(x, {i[0], 3 - i[1], i[2]}); });
    require_values(flip(x, 0), {3, 4, 2}, [&](const Shape& i) { return at(x, {2 - i[0], i[1], i[2]}); });
    require_values(flip(x, -1), {3, 4, 2}, [&](const Shape& i) { return at(x, {i[0], i[1], 1 - i[2]}); });
}

TEST_CASE("flip: gradient, bad axis", "[shape]") {
    std::mt19937 gen(14);
    const Tensor x = uniform(gen, {3, 4});
    require_gradcheck([](const std::vector<Tensor>& in) { return flip(in[0], 1) * in[0] + flip(in[0], 0); }, {x});
    REQUIRE_THROWS_AS(flip(x, 2), ShapeError);
    REQUIRE_THROWS_WITH(flip(x, 2), Contains("flip") && Contains("[3, 4]"));
}

TEMPLATE_TEST_CASE("pad adds constant entries around one axis", "[shape]", float, double) {
    std::mt19937 gen(15);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {2, 3}, dt);
    require_values(pad(x, 1, 2, 1, -7.5), {2, 6}, [&](const Shape& i) {
        return i[1] < 2 || i[1] >= 5 ? -7.5 : at(x, {i[0], i[1] - 2});
    });
    require_values(pad(x, 0, 0, 2), {4, 3}, [&](const Shape& i) { return i[0] >= 2 ? 0.0 : at(x, i); });
    require_values(pad(x, -1, 0, 0), {2, 3}, [&](const Shape& i) { return at(x, i); });
}

TEST_CASE("pad: gradient, bad axis", "[shape]") {
    std::mt19937 gen(16);
    const Tensor x = uniform(gen, {2, 3});
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor p = pad(in[0], 0, 1, 2, 0.5);  // [5, 3]
        return p * p + pad(in[0], 0, 3, 0);
    }, {x});
    REQUIRE_THROWS_AS(pad(x, 2, 1, 1), ShapeError);
    REQUIRE_THROWS_WITH(pad(x, 2, 1, 1), Contains("pad") && Contains("[2, 3]"));
}

// ---- index_select, embedding, gather -------------------------------------------------------------

TEMPLATE_TEST_CASE("index_select takes entries in the given order, repeats allowed", "[shape]", float, double) {
    std::mt19937 gen(17);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {4, 5, 2}, dt);
    const std::vector<std::int64_t> idx{3, 0, 3, 4, 1, 3};
    require_values(index_select(x, 1, idx), {4, 6, 2},
                   [&](const Shape& i) { return at(x, {i[0], static_cast<std::size_t>(idx[i[1]]), i[2]}); });
    require_values(index_select(x, 0, {2}), {1, 5, 2}, [&](const Shape& i) { return at(x, {2, i[1], i[2]}); });
    CHECK(index_select(x, -1, {}).shape() == Shape{4, 5, 0});
}

TEST_CASE("index_select: repeated indices accumulate gradients, out-of-range indices", "[shape]") {
    std::mt19937 gen(18);
    const Tensor x = uniform(gen, {3, 4});
    const std::vector<std::int64_t> idx{2, 2, 0, 2};
    // Row 2 is taken three times, row 0 once, row 1 never.
    const auto g = grad_of_sum(x, [&](const Tensor& t) { return index_select(t, 0, idx); });
    for (std::size_t i = 0; i < 12; ++i) CHECK(g[i] == std::vector<double>{1, 0, 3}[i / 4]);
    require_gradcheck([&](const std::vector<Tensor>& in) {
        Tensor a = index_select(in[0], 0, idx);  // [4, 4]
        return a * a + index_select(in[0], 1, {3, 3, 1, 0});
    }, {uniform(gen, {4, 4})});
    REQUIRE_THROWS_AS(index_select(x, 1, {0, 4}), ValueError);
    REQUIRE_THROWS_WITH(index_select(x, 1, {0, 1, 4}), Contains("index_select") && Contains("index 4") &&
                                                           Contains("position 2") && Contains("[3, 4]") &&
                                                           Contains("0 to 3"));
    REQUIRE_THROWS_WITH(index_select(x, 0, {-1}), Contains("index_select") && Contains("index -1") &&
                                                      Contains("position 0") && Contains("0 to 2"));
    REQUIRE_THROWS_WITH(index_select(x, 2, {0}), Contains("index_select") && Contains("[3, 4]"));
}

TEMPLATE_TEST_CASE("embedding looks up one table row per id", "[shape]", float, double) {
    std::mt19937 gen(19);
    const DType dt = dtype_of<TestType>;
    const Tensor table = uniform(gen, {10, 4}, dt);  // [V, E]
    const xt::xarray<std::int64_t> ids = random_ids(gen, {5, 3}, 10);  // [T, B]
    require_values(embedding(table, ids), {5, 3, 4}, [&](const Shape& i) {
        return at(table, {static_cast<std::size_t>(ids(i[0], i[1])), i[2]});
    });
    const xt::xarray<std::int64_t> one = {7};
    require_values(embedding(table, one), {1, 4}, [&](const Shape& i) { return at(table, {7, i[1]}); });
}

TEST_CASE("embedding: repeated ids accumulate into their row, out-of-range ids", "[shape]") {
    std::mt19937 gen(20);
    const Tensor table = uniform(gen, {6, 3});
    const xt::xarray<std::int64_t> ids = {{1, 4}, {1, 1}, {5, 4}};  // id 1 three times, 4 twice, 0/2/3 never
    const auto g = grad_of_sum(table, [&](const Tensor& t) { return embedding(t, ids); });
    const std::vector<double> count{0, 3, 0, 0, 2, 1};
    for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == count[i / 3]);
    const xt::xarray<std::int64_t> more = random_ids(gen, {3, 2}, 6);
    require_gradcheck([&](const std::vector<Tensor>& in) {
        Tensor e = embedding(in[0], ids);  // [3, 2, 3]
        return e * e + embedding(in[0], more);
    }, {table});

    REQUIRE_THROWS_AS(embedding(table, xt::xarray<std::int64_t>{{0, 1}, {6, 2}}), ValueError);
    REQUIRE_THROWS_WITH(embedding(table, xt::xarray<std::int64_t>{{0, 1}, {6, 2}}),
                        Contains("embedding") && Contains("id 6") && Contains("position [1, 0]") &&
                            Contains("ids [2, 2]") && Contains("[6, 3]") && Contains("0 to 5"));
    REQUIRE_THROWS_WITH(embedding(table, xt::xarray<std::int64_t>{3, -2}),
                        Contains("embedding") && Contains("id -2") && Contains("position [1]"));
    REQUIRE_THROWS_AS(embedding(uniform(gen, {6}), ids), ShapeError);
    REQUIRE_THROWS_WITH(embedding(uniform(gen, {6}), ids), Contains("embedding") && Contains("[6]") && Contains("[3, 2]"));
}

TEMPLATE_TEST_CASE("gather picks along one axis per position (PyTorch semantics)", "[shape]", float, double) {
    std::mt19937 gen(21);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {3, 4}, dt);
    const xt::xarray<std::int64_t> i0 = random_ids(gen, {5, 4}, 3);  // out[i][j] = x[i0[i][j]][j]
    require_values(gather(x, 0, i0), {5, 4},
                   [&](const Shape& i) { return at(x, {static_cast<std::size_t>(i0(i[0], i[1])), i[1]}); });
    const xt::xarray<std::int64_t> i1 = random_ids(gen, {2, 6}, 4);  // out[i][j] = x[i][i1[i][j]]; smaller on axis 0
    require_values(gather(x, 1, i1), {2, 6},
                   [&](const Shape& i) { return at(x, {i[0], static_cast<std::size_t>(i1(i[0], i[1]))}); });
    const Tensor y = uniform(gen, {2, 3, 5}, dt);
    const xt::xarray<std::int64_t> i2 = random_ids(gen, {2, 3, 1}, 5);  // picking one class per row
    require_values(gather(y, -1, i2), {2, 3, 1},
                   [&](const Shape& i) { return at(y, {i[0], i[1], static_cast<std::size_t>(i2(i[0], i[1], 0))}); });
}

TEST_CASE("gather: repeated positions accumulate, bad index shapes and values", "[shape]") {
    std::mt19937 gen(22);
    const Tensor x = uniform(gen, {3, 4});
    const xt::xarray<std::int64_t> idx = {{0, 0, 2, 2, 0}, {1, 1, 1, 3, 3}};  // [2, 5] along axis 1
    const auto g = grad_of_sum(x, [&](const Tensor& t) { return gather(t, 1, idx); });
    CHECK(g == std::vector<double>{3, 0, 2, 0, 0, 3, 0, 2, 0, 0, 0, 0});
    const xt::xarray<std::int64_t> rows = random_ids(gen, {6, 4}, 3);
    require_gradcheck([&](const std::vector<Tensor>& in) {
        Tensor a = gather(in[0], 1, idx);  // [2, 5]
        return concat({reshape(a * a + a, {-1}), reshape(gather(in[0], 0, rows), {-1})}, 0);  // [10 + 24]
    }, {x});

    REQUIRE_THROWS_AS(gather(x, 1, xt::xarray<std::int64_t>{0, 1}), ShapeError);
    REQUIRE_THROWS_WITH(gather(x, 1, xt::xarray<std::int64_t>{0, 1}),
                        Contains("gather") && Contains("[3, 4]") && Contains("[2]") && Contains("rank"));
    REQUIRE_THROWS_WITH(gather(x, 1, xt::xarray<std::int64_t>::from_shape({4, 1})),
                        Contains("gather") && Contains("[3, 4]") && Contains("[4, 1]"));
    const xt::xarray<std::int64_t> bad = {{0, 1}, {2, 4}};
    REQUIRE_THROWS_AS(gather(x, 1, bad), ValueError);
    REQUIRE_THROWS_WITH(gather(x, 1, bad), Contains("gather") && Contains("index 4") && Contains("position [1, 1]") &&
                                               Contains("[3, 4]") && Contains("0 to 3"));
    const xt::xarray<std::int64_t> negative = {{-1, 0}};
    REQUIRE_THROWS_WITH(gather(x, 0, negative),
                        Contains("gather") && Contains("index -1") && Contains("position [0, 0]") && Contains("0 to 2"));
}

// ---- stack, concat, split, chunk ------------------------------------------------------------------

TEMPLATE_TEST_CASE("stack joins along a new axis, concat along an existing one", "[shape]", float, double) {
    std::mt19937 gen(23);
    const DType dt = dtype_of<TestType>;
    const std::vector<Tensor> xs{uniform(gen, {2, 3}, dt), uniform(gen, {2, 3}, dt), uniform(gen, {2, 3}, dt)};
    require_values(stack(xs), {3, 2, 3}, [&](const Shape& i) { return at(xs[i[0]], {i[1], i[2]}); });
    require_values(stack(xs, 1), {2, 3, 3}, [&](const Shape& i) { return at(xs[i[1]], {i[0], i[2]}); });
    require_values(stack(xs, -1), {2, 3, 3}, [&](const Shape& i) { return at(xs[i[2]], {i[0], i[1]}); });
    const Tensor a = uniform(gen, {2, 1}, dt), b = uniform(gen, {2, 3}, dt);
    require_values(concat({a, b}), {2, 4},
                   [&](const Shape& i) { return i[1] == 0 ? at(a, {i[0], 0}) : at(b, {i[0], i[1] - 1}); });
    require_values(concat({b, xs[0]}, 0), {4, 3},
                   [&](const Shape& i) { return i[0] < 2 ? at(b, i) : at(xs[0], {i[0] - 2, i[1]}); });
}

TEST_CASE("stack and concat: gradients, mismatched shapes", "[shape]") {
    std::mt19937 gen(24);
    const Tensor a = uniform(gen, {2, 3}), b = uniform(gen, {2, 3}), c = uniform(gen, {2, 2});
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor s = stack({in[0], in[1], in[0]}, 1);  // a twice
        return s * s + stack({in[1], in[0], in[1]}, 1);
    }, {a, b});
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor s = concat({in[0], in[1], in[0]});  // [2, 8]
        return s * s + concat({in[2], in[1], in[0]}, 1);
    }, {a, c, b});
    REQUIRE_THROWS_AS(stack({a, c}), ShapeError);
    REQUIRE_THROWS_WITH(stack({a, c}), Contains("stack") && Contains("[2, 3]") && Contains("[2, 2]"));
    REQUIRE_THROWS_WITH(stack({}), Contains("stack") && Contains("empty"));
    REQUIRE_THROWS_AS(concat({a, c}, 0), ShapeError);
    REQUIRE_THROWS_WITH(concat({a, c}, 0), Contains("concat") && Contains("[2, 3]") && Contains("[2, 2]"));
    REQUIRE_THROWS_AS(concat({a, a.to(f32)}), DTypeError);
    REQUIRE_THROWS_WITH(stack({a, c.to(f32)}), Contains("stack") && Contains("[2, 2]") && Contains("float32"));
    REQUIRE_THROWS_WITH(concat({Tensor::scalar(1.0)}), Contains("concat") && Contains("[]"));
}

TEMPLATE_TEST_CASE("split and chunk cut consecutive pieces", "[shape]", float, double) {
    std::mt19937 gen(25);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {3, 5}, dt);
    const auto parts = split(x, {2, 0, 3}, 1);
    REQUIRE(parts.size() == 3);
    require_values(parts[0], {3, 2}, [&](const Shape& i) { return at(x, i); });
    CHECK(parts[1].shape() == Shape{3, 0});
    require_values(parts[2], {3, 3}, [&](const Shape& i) { return at(x, {i[0], i[1] + 2}); });
    // chunk(5 columns, 4) -> pieces of ceil(5 / 4) = 2: sizes 2, 2, 1 (three pieces, not four).
    const auto ch = chunk(x, 4, 1);
    REQUIRE(ch.size() == 3);
    CHECK(ch[0].shape() == Shape{3, 2});
    CHECK(ch[1].shape() == Shape{3, 2});
    require_values(ch[2], {3, 1}, [&](const Shape& i) { return at(x, {i[0], 4}); });
    const auto rows = chunk(x, 3, 0);
    REQUIRE(rows.size() == 3);
    require_values(rows[1], {1, 5}, [&](const Shape& i) { return at(x, {1, i[1]}); });
    CHECK(chunk(x, 1, 0)[0].shape() == Shape{3, 5});
    CHECK(chunk(x, 7, -1).size() == 5);
    CHECK(chunk(x, std::numeric_limits<std::size_t>::max(), 1).size() == 5);
}

TEST_CASE("split and chunk: gradients, bad sizes", "[shape]") {
    std::mt19937 gen(26);
    const Tensor x = uniform(gen, {4, 3});
    require_gradcheck([](const std::vector<Tensor>& in) {
        const auto p = split(in[0], {1, 3}, 0);
        const auto q = chunk(in[0], 2, 0);  // [2, 3] twice
        return concat({p[1] * p[1], p[0] * 2.0}, 0) + concat({q[1], q[0]}, 0);
    }, {x});
    REQUIRE_THROWS_AS(split(x, {1, 2}, 0), ShapeError);
    REQUIRE_THROWS_WITH(split(x, {1, 2}, 0),
                        Contains("split") && Contains("[1, 2]") && Contains("[4, 3]") && Contains("sum to 3"));
    REQUIRE_THROWS_WITH(split(x, {4}, 2), Contains("split") && Contains("[4, 3]"));
    REQUIRE_THROWS_AS(chunk(x, 0, 0), ValueError);
    REQUIRE_THROWS_WITH(chunk(x, 0, 0), Contains("chunk") && Contains("[4, 3]"));
    REQUIRE_THROWS_WITH(chunk(x, 2, -3), Contains("chunk") && Contains("[4, 3]"));
}

TEST_CASE("shape ops refuse undefined tensors, naming the op", "[shape]") {
    const Tensor u;
    REQUIRE_THROWS_WITH(permute(u, {0}), Contains("permute") && Contains("undefined"));
    REQUIRE_THROWS_WITH(slice(u, 0, 0, 1), Contains("slice") && Contains("undefined"));
    REQUIRE_THROWS_WITH(embedding(u, xt::xarray<std::int64_t>{0}), Contains("embedding") && Contains("undefined"));
    REQUIRE_THROWS_WITH(gather(u, 0, xt::xarray<std::int64_t>{0}), Contains("gather") && Contains("undefined"));
    REQUIRE_THROWS_WITH(broadcast_to(u, {2}), Contains("broadcast_to") && Contains("undefined"));
}
