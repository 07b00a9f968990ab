// Linear algebra ops: matmul in its three forms, the fused linear op and outer, each against plain
// triple loops in float32 and float64, gradchecked in float64 (accumulation into an existing
// gradient included), linear against its composition from matmul, transpose and add (with a bias
// row or a whole addend), and the messages for shapes that do not fit.
#include <catch2/catch.hpp>

#include <functional>
#include <random>

#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {

// y must have `shape` and match ref (flat, row-major) to a relative tolerance fit for the dtype.
void require_close(const Tensor& y, const Shape& shape, const std::vector<double>& ref) {
    REQUIRE(y.shape() == shape);
    REQUIRE(y.numel() == ref.size());
    const double tol = y.dtype() == f32 ? 1e-5 : 1e-12;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        INFO("flat index " << i);
        REQUIRE(y.at(i) == Approx(ref[i]).epsilon(tol).margin(tol));
    }
}

// C[b] = A[b] @ B[b or 0] for row-major blocks: the reference every matmul form is held against.
std::vector<double> ref_matmul(const Tensor& a, const Tensor& b, std::size_t nb, std::size_t M, std::size_t K,
                               std::size_t N, bool b_batched) {
    std::vector<double> c(nb * M * N, 0.0);
    for (std::size_t p = 0; p < nb; ++p)
        for (std::size_t i = 0; i < M; ++i)
            for (std::size_t j = 0; j < N; ++j) {
                double s = 0;
                for (std::size_t k = 0; k < K; ++k)
                    s += a.at(p * M * K + i * K + k) * b.at((b_batched ? p * K * N : 0) + k * N + j);
                c[p * M * N + i * N + j] = s;
            }
    return c;
}

std::vector<double> grads(const Tensor& t) {
    REQUIRE(t.has_grad());
    const Tensor g = t.grad();
    std::vector<double> v(g.numel());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = g.at(i);
    return v;
}

// f and g of three fresh leaf copies of x0, w0, b0: the outputs, then the gradients of sum(tanh(y) * y)
// for the three inputs, must agree to 1e-12 (a fused op against its composition).
using Op3 = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;
void require_same_values_and_grads(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Op3& f, const Op3& g) {
    auto run = [&](const Op3& op) {
        Tensor x = x0.detach().set_requires_grad(), w = w0.detach().set_requires_grad(),
               b = b0.detach().set_requires_grad();
        Tape tape;
        const Tensor y = op(x, w, b);
        tape.backward(sum(tanh(y) * y));
        std::vector<double> all;
        for (std::size_t i = 0; i < y.numel(); ++i) all.push_back(y.at(i));
        for (const Tensor* t : {&x, &w, &b}) {
            const auto gr = grads(*t);
            all.insert(all.end(), gr.begin(), gr.end());
        }
        return all;
    };
    const auto fused = run(f), composed = run(g);
    REQUIRE(fused.size() == composed.size());
    for (std::size_t i = 0; i < fused.size(); ++i) CHECK(fused[i] == Approx(composed[i]).epsilon(1e-12).margin(1e-12));
}

}  // namespace

// ---- matmul ---------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("matmul in its three forms against plain loops", "[linalg]", float, double) {
    std::mt19937 gen(31);
    const DType dt = dtype_of<TestType>;
    SECTION("[M, K] @ [K, N]") {
        const Tensor a = uniform(gen, {4, 3}, dt), b = uniform(gen, {3, 5}, dt);
        require_close(matmul(a, b), {4, 5}, ref_matmul(a, b, 1, 4, 3, 5, false));
    }
    SECTION("[.., M, K] @ [K, N]: the leading axes fold into the rows") {
        const Tensor a = uniform(gen, {2, 3, 4, 3}, dt), b = uniform(gen, {3, 2}, dt);
        require_close(matmul(a, b), {2, 3, 4, 2}, ref_matmul(a, b, 1, 24, 3, 2, false));
    }
    SECTION("[B, M, K] @ [B, K, N]: one product per batch entry") {
        const Tensor a = uniform(gen, {3, 2, 4}, dt), b = uniform(gen, {3, 4, 5}, dt);
        require_close(matmul(a, b), {3, 2, 5}, ref_matmul(a, b, 3, 2, 4, 5, true));
        const Tensor a4 = uniform(gen, {2, 2, 1, 3}, dt), b4 = uniform(gen, {2, 2, 3, 2}, dt);
        require_close(matmul(a4, b4), {2, 2, 1, 2}, ref_matmul(a4, b4, 4, 1, 3, 2, true));
    }
    SECTION("size-1 and size-0 axes") {
        const Tensor a = uniform(gen, {1, 3}, dt), b = uniform(gen, {3, 1}, dt);
        require_close(matmul(a, b), {1, 1}, ref_matmul(a, b, 1, 1, 3, 1, false));
        require_close(matmul(b, a), {3, 3}, ref_matmul(b, a, 1, 3, 1, 3, false));
        const Tensor e = matmul(uniform(gen, {2, 0}, dt), uniform(gen, {0, 3}, dt));
        require_close(e, {2, 3}, std::vector<double>(6, 0.0));  // an empty sum is 0
    }
}

TEST_CASE("matmul: gradients of all three forms, and accumulation into an existing gradient", "[linalg]") {
    std::mt19937 gen(32);
    require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                      {uniform(gen, {3, 4}), uniform(gen, {4, 2})});
    require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                      {uniform(gen, {2, 3, 4}), uniform(gen, {4, 2})});
    require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                      {uniform(gen, {3, 2, 4}), uniform(gen, {3, 4, 2})});
    // x used three times: both backward GEMMs must add (beta = 1) onto a gradient already there.
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor y = matmul(in[0], in[0]);  // [3, 3] @ [3, 3]
        return matmul(y, in[0]) + in[0] * in[1];
    }, {uniform(gen, {3, 3}), uniform(gen, {3, 3})});
    require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[0]) + in[0]; },
                      {uniform(gen, {2, 3, 3})});

    // Against hand-derived gradients of sum(A @ B): dA = 1 @ B^T (row sums of B), dB = A^T @ 1.
    Tensor a = uniform(gen, {2, 3}).set_requires_grad(), b = uniform(gen, {3, 4}).set_requires_grad();
    Tape tape;
    tape.backward(sum(matmul(a, b)));
    const auto da = grads(a), db = grads(b);
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t k = 0; k < 3; ++k) {
            double s = 0;
            for (std::size_t j = 0; j < 4; ++j) s += b.at(k * 4 + j);
            CHECK(da[i * 3 + k] == Approx(s));
        }
    for (std::size_t k = 0; k < 3; ++k)
        for (std::size_t j = 0; j < 4; ++j) CHECK(db[k * 4 + j] == Approx(a.at(k) + a.at(3 + k)));
}

TEST_CASE("matmul: float32 gradients agree with float64 ones", "[linalg]") {
    std::mt19937 gen(33);
    const Tensor a64 = uniform(gen, {2, 3, 4}), b64 = uniform(gen, {2, 4, 5});
    std::vector<double> g64, g32;
    for (DType dt : {f64, f32}) {
        Tensor a = a64.to(dt).detach().set_requires_grad(), b = b64.to(dt).detach().set_requires_grad();
        Tape tape;
        Tensor y = matmul(a, b);
        tape.backward(sum(y * y));
        auto ga = grads(a), gb = grads(b);
        ga.insert(ga.end(), gb.begin(), gb.end());
        (dt == f64 ? g64 : g32) = ga;
    }
    REQUIRE(g32.size() == g64.size());
    for (std::size_t i = 0; i < g64.size(); ++i) CHECK(g32[i] == Approx(g64[i]).epsilon(1e-4).margin(1e-5));
}

TEST_CASE("matmul: shapes that do not fit", "[linalg]") {
    const Tensor a = zeros({32, 64}), b = zeros({128, 256});
    REQUIRE_THROWS_AS(matmul(a, b), ShapeError);
    REQUIRE_THROWS_WITH(matmul(a, b), Contains("matmul: [32, 64] @ [128, 256]: inner dimensions 64 and 128 differ"));
    REQUIRE_THROWS_WITH(matmul(zeros({3}), zeros({3, 2})), Contains("matmul") && Contains("[3] @ [3, 2]"));
    REQUIRE_THROWS_WITH(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
                        Contains("matmul") && Contains("[2, 3, 4] @ [3, 4, 5]") && Contains("batch"));
    REQUIRE_THROWS_WITH(matmul(zeros({3, 4}), zeros({2, 4, 5})),
                        Contains("matmul") && Contains("[3, 4] @ [2, 4, 5]"));
    REQUIRE_THROWS_AS(matmul(zeros({2, 2}), zeros({2, 2}, f64)), DTypeError);
}

// ---- linear ---------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("linear is x @ weight^T + bias", "[linalg]", float, double) {
    std::mt19937 gen(34);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {3, 2, 4}, dt), w = uniform(gen, {5, 4}, dt), b = uniform(gen, {5}, dt);
    std::vector<double> ref(6 * 5), ref_nb(6 * 5);
    for (std::size_t r = 0; r < 6; ++r)
        for (std::size_t o = 0; o < 5; ++o) {
            double s = 0;
            for (std::size_t i = 0; i < 4; ++i) s += x.at(r * 4 + i) * w.at(o * 4 + i);
            ref_nb[r * 5 + o] = s;
            ref[r * 5 + o] = s + b.at(o);
        }
    require_close(linear(x, w, b), {3, 2, 5}, ref);
    require_close(linear(x, w), {3, 2, 5}, ref_nb);
    require_close(linear(x, w, Tensor()), {3, 2, 5}, ref_nb);
    // A 1-D input is one row.
    const Tensor v = uniform(gen, {4}, dt);
    std::vector<double> rv(5);
    for (std::size_t o = 0; o < 5; ++o) {
        rv[o] = b.at(o);
        for (std::size_t i = 0; i < 4; ++i) rv[o] += v.at(i) * w.at(o * 4 + i);
    }
    require_close(linear(v, w, b), {5}, rv);
}

TEST_CASE("linear equals matmul(x, transpose(W)) + b in values and gradients", "[linalg]") {
    std::mt19937 gen(35);
    const Tensor x0 = uniform(gen, {4, 3, 6}), w0 = uniform(gen, {5, 6}), b0 = uniform(gen, {5});
    require_same_values_and_grads(
        x0, w0, b0, [](const Tensor& x, const Tensor& w, const Tensor& b) { return linear(x, w, b); },
        [](const Tensor& x, const Tensor& w, const Tensor& b) { return matmul(x, transpose(w)) + b; });
}

TEST_CASE("linear: gradients with and without bias, accumulating into existing gradients", "[linalg]") {
    std::mt19937 gen(36);
    const Tensor x = uniform(gen, {2, 3, 4}), w = uniform(gen, {3, 4}), b = uniform(gen, {3});
    require_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b});
    require_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {x, w});
    // Every input also reaches the output another way, so each backward adds onto a gradient.
    require_gradcheck([](const std::vector<Tensor>& in) {
        Tensor h = linear(in[0], in[1], in[2]);  // [2, 3, 3]
        return linear(h, in[1], in[2]) * h + in[2];
    }, {uniform(gen, {2, 3, 3}), uniform(gen, {3, 3}), b});
    require_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                      {uniform(gen, {4}), w, b});
}

TEMPLATE_TEST_CASE("linear with an addend of the output's shape is x @ weight^T + addend", "[linalg]", float, double) {
    std::mt19937 gen(37);
    const DType dt = dtype_of<TestType>;
    const Tensor x = uniform(gen, {3, 2, 4}, dt), w = uniform(gen, {5, 4}, dt), a = uniform(gen, {3, 2, 5}, dt);
    std::vector<double> ref(6 * 5);
    for (std::size_t r = 0; r < 6; ++r)
        for (std::size_t o = 0; o < 5; ++o) {
            double s = a.at(r * 5 + o);
            for (std::size_t i = 0; i < 4; ++i) s += x.at(r * 4 + i) * w.at(o * 4 + i);
            ref[r * 5 + o] = s;
        }
    require_close(linear(x, w, a), {3, 2, 5}, ref);
}

TEST_CASE("linear with an addend: gradients, reuse, and the step of a cell", "[linalg]") {
    std::mt19937 gen(38);
    const Tensor x = uniform(gen, {2, 3, 4}), w = uniform(gen, {5, 4}), a = uniform(gen, {2, 3, 5});
    require_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, a});
    // The addend reused after the op, and the output fed back as the next addend: each backward adds
    // onto an existing gradient, and the addend's gradient is the output's, handed on.
    require_gradcheck([](const std::vector<Tensor>& in) {
        const Tensor y = linear(in[0], in[1], in[2]);
        return linear(in[0], in[1], y) * in[2] + y;
    }, {x, w, a});
    // x and the addend the same tensor ([2, 3] @ [3, 3]^T + itself).
    require_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[0]); },
                      {uniform(gen, {2, 3}), uniform(gen, {3, 3})});
    // A cell's step, as docs/custom_cell.md writes it: each step's row of a precomputed projection as
    // the addend of the recurrent product, over a 12-step unroll.
    require_gradcheck([](const std::vector<Tensor>& in) {
        const Tensor xw = linear(in[0], in[1]);  // [T, B, H]
        Tensor h = in[3];
        for (long t = 0; t < static_cast<long>(in[0].size(0)); ++t) h = tanh(linear(h, in[2], select(xw, 0, t)));
        return h;
    }, {uniform(gen, {12, 2, 3}), uniform(gen, {4, 3}), uniform(gen, {4, 4}), uniform(gen, {2, 4})});
    // Values and gradients equal the composed linear(h, w) + addend.
    const Tensor x0 = uniform(gen, {4, 6}), w0 = uniform(gen, {5, 6}), a0 = uniform(gen, {4, 5});
    require_same_values_and_grads(
        x0, w0, a0, [](const Tensor& x, const Tensor& w, const Tensor& a) { return linear(x, w, a); },
        [](const Tensor& x, const Tensor& w, const Tensor& a) { return linear(x, w) + a; });
}

TEST_CASE("linear: shapes and dtypes that do not fit", "[linalg]") {
    const Tensor x = zeros({32, 64}), w = zeros({128, 256}), b = zeros({128});
    REQUIRE_THROWS_AS(linear(x, w, b), ShapeError);
    REQUIRE_THROWS_WITH(linear(x, w, b), Contains("linear: input [32, 64], weight [128, 256], bias [128]: input "
                                                  "features 64 and weight in_features 256 differ"));
    REQUIRE_THROWS_WITH(linear(zeros({32, 256}), w, zeros({64})),
                        Contains("linear") && Contains("[32, 256]") && Contains("[128, 256]") && Contains("[64]") &&
                            Contains("[128]"));
    REQUIRE_THROWS_WITH(linear(zeros({32, 256}), zeros({256}), b), Contains("linear") && Contains("[256]"));
    // An addend must be the whole output's shape: no other broadcasting.
    REQUIRE_THROWS_WITH(linear(zeros({32, 256}), w, zeros({1, 128})),
                        Contains("linear: input [32, 256], weight [128, 256], bias [1, 128]: the bias must be [128] "
                                 "or the output's shape [32, 128]"));
    REQUIRE_THROWS_WITH(linear(zeros({4, 32, 256}), w, zeros({32, 128})),
                        Contains("bias [32, 128]") && Contains("[4, 32, 128]"));
    REQUIRE_THROWS_WITH(linear(Tensor::scalar(1.0), w, b), Contains("linear") && Contains("[]"));
    REQUIRE_THROWS_AS(linear(zeros({2, 256}), w, zeros({128}, f64)), DTypeError);
    REQUIRE_THROWS_AS(linear(zeros({2, 256}, f64), w), DTypeError);
    REQUIRE_THROWS_WITH(linear(Tensor(), w), Contains("linear") && Contains("undefined"));
}

// ---- outer ----------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("outer multiplies every pair", "[linalg]", float, double) {
    std::mt19937 gen(37);
    const DType dt = dtype_of<TestType>;
    const Tensor a = uniform(gen, {4}, dt), b = uniform(gen, {3}, dt);
    std::vector<double> ref(12);
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 3; ++j) ref[i * 3 + j] = a.at(i) * b.at(j);
    require_close(outer(a, b), {4, 3}, ref);
}

TEST_CASE("outer: gradient, bad shapes", "[linalg]") {
    std::mt19937 gen(38);
    require_gradcheck([](const std::vector<Tensor>& in) { return outer(in[0], in[1]) * outer(in[0], in[0]); },
                      {uniform(gen, {3}), uniform(gen, {3})});
    require_gradcheck([](const std::vector<Tensor>& in) { return outer(in[0], in[1]); },
                      {uniform(gen, {2}), uniform(gen, {5})});
    REQUIRE_THROWS_AS(outer(zeros({3, 1}), zeros({2})), ShapeError);
    REQUIRE_THROWS_WITH(outer(zeros({3, 1}), zeros({2})), Contains("outer") && Contains("[3, 1]") && Contains("[2]"));
    REQUIRE_THROWS_AS(outer(zeros({3}), zeros({2}, f64)), DTypeError);
}
