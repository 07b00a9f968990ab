// "BPTT falls out of the tape": an Elman RNN written by hand from core ops, unrolled over time and
// differentiated by one tape.backward, gives exactly the gradients of the classic hand-derived
// backpropagation-through-time recursion (the minimal character-RNN derivation), computed here
// with plain loops; and it passes gradcheck, in full mode on a short unroll and along random
// directions on a long one.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Mode = GradcheckOptions::Mode;

namespace {

using Mat = xt::xarray<double>;  // 2-D, row-major

// The parameters and the initial state, in the order gradcheck sees them.
struct Params {
    Mat wx;  // [V, H]
    Mat wh;  // [H, H]
    Mat b;   // [H]
    Mat wy;  // [H, V]
    Mat by;  // [V]
    Mat h0;  // [B, H]
};
const std::vector<std::string> kNames{"W_x", "W_h", "b", "W_y", "b_y", "h_0"};

Mat uniform(std::mt19937_64& gen, const Shape& shape, double scale) {
    std::uniform_real_distribution<double> u(-scale, scale);
    Mat m = Mat::from_shape(shape);
    for (std::size_t i = 0; i < m.size(); ++i) m.data()[i] = u(gen);
    return m;
}

Params make_params(std::mt19937_64& gen, std::size_t V, std::size_t H, std::size_t B) {
    // Large enough that tanh is well into its nonlinear range, small enough that a long unroll
    // neither explodes nor vanishes to nothing.
    const double s = 1.0 / std::sqrt(static_cast<double>(H));
    return {uniform(gen, {V, H}, 2 * s), uniform(gen, {H, H}, 1.5 * s), uniform(gen, {H}, s),
            uniform(gen, {H, V}, 2 * s), uniform(gen, {V}, s),          uniform(gen, {B, H}, 0.5)};
}

// A token sequence tokens[t][batch] of length T + 1: step t reads tokens[t] and predicts tokens[t + 1].
std::vector<std::vector<std::size_t>> make_tokens(std::mt19937_64& gen, std::size_t T, std::size_t B, std::size_t V) {
    std::uniform_int_distribution<std::size_t> u(0, V - 1);
    std::vector<std::vector<std::size_t>> tok(T + 1, std::vector<std::size_t>(B));
    for (auto& row : tok)
        for (auto& v : row) v = u(gen);
    return tok;
}

Mat one_hot(const std::vector<std::size_t>& ids, std::size_t V) {  // [B, V]
    Mat m = xt::zeros<double>({ids.size(), V});
    for (std::size_t r = 0; r < ids.size(); ++r) m(r, ids[r]) = 1.0;
    return m;
}

// ---- the model on the tape ------------------------------------------------------------------
// h_t = tanh(x_t W_x + h_{t-1} W_h + b);  y_t = h_t W_y + b_y;
// loss = sum over t and batch of -log softmax(y_t)[target], spelled out as log(sum(exp(y))) - y[target].
// At these sizes the logits are small, so the log-sum-exp needs no max shift.
// If hs is given, every h_t is kept (retain_grad) so its gradient can be compared too.
Tensor rnn_loss(const std::vector<Tensor>& p, const std::vector<std::vector<std::size_t>>& tok, std::size_t V,
                std::vector<Tensor>* hs = nullptr) {
    const Tensor &wx = p[0], &wh = p[1], &b = p[2], &wy = p[3], &by = p[4];
    Tensor h = p[5];  // [B, H]
    Tensor loss;
    for (std::size_t t = 0; t + 1 < tok.size(); ++t) {
        const Tensor x(one_hot(tok[t], V));           // [B, V]
        const Tensor target(one_hot(tok[t + 1], V));  // [B, V]
        h = tanh(matmul(x, wx) + matmul(h, wh) + b);  // [B, H]
        if (hs) hs->push_back(h.retain_grad());
        const Tensor y = matmul(h, wy) + by;  // [B, V]
        const Tensor nll = sum(log(sum(exp(y), -1))) - sum(y * target);
        loss = loss.defined() ? loss + nll : nll;
    }
    return loss;
}

std::vector<Tensor> as_tensors(const Params& p) {
    return {Tensor(p.wx), Tensor(p.wh), Tensor(p.b), Tensor(p.wy), Tensor(p.by), Tensor(p.h0)};
}

// ---- the same model, forward and BPTT by hand -----------------------------------------------
struct HandGrads {
    Params d;
    std::vector<Mat> dh;  // dh[t] = d loss / d h_t (all paths), [B, H]
    double loss = 0;
};

HandGrads bptt_by_hand(const Params& p, const std::vector<std::vector<std::size_t>>& tok, std::size_t V) {
    const std::size_t T = tok.size() - 1, B = p.h0.shape()[0], H = p.wh.shape()[0];
    std::vector<Mat> h(T + 1), prob(T);  // h[0] = h_0; h[t + 1] is the state after step t
    h[0] = p.h0;
    HandGrads out;
    for (std::size_t t = 0; t < T; ++t) {
        h[t + 1] = Mat::from_shape({B, H});
        prob[t] = Mat::from_shape({B, V});
        for (std::size_t r = 0; r < B; ++r) {
            for (std::size_t j = 0; j < H; ++j) {
                double a = p.wx(tok[t][r], j) + p.b(j);  // x_t is one-hot: x_t W_x picks a row
                for (std::size_t k = 0; k < H; ++k) a += h[t](r, k) * p.wh(k, j);
                h[t + 1](r, j) = std::tanh(a);
            }
            double z = 0;
            for (std::size_t v = 0; v < V; ++v) {
                double y = p.by(v);
                for (std::size_t j = 0; j < H; ++j) y += h[t + 1](r, j) * p.wy(j, v);
                prob[t](r, v) = std::exp(y);
                z += prob[t](r, v);
            }
            for (std::size_t v = 0; v < V; ++v) prob[t](r, v) /= z;
            out.loss -= std::log(prob[t](r, tok[t + 1][r]));
        }
    }

    Params& d = out.d;
    d = {xt::zeros<double>(p.wx.shape()), xt::zeros<double>(p.wh.shape()), xt::zeros<double>(p.b.shape()),
         xt::zeros<double>(p.wy.shape()), xt::zeros<double>(p.by.shape()), Mat()};
    out.dh.assign(T, Mat());
    Mat dh_next = xt::zeros<double>({B, H});
    for (std::size_t t = T; t-- > 0;) {
        Mat dh = dh_next;  // [B, H]
        Mat draw = Mat::from_shape({B, H});
        for (std::size_t r = 0; r < B; ++r) {
            for (std::size_t v = 0; v < V; ++v) {
                const double dy = prob[t](r, v) - (v == tok[t + 1][r] ? 1.0 : 0.0);  // dy = p - onehot(target)
                d.by(v) += dy;                                                     // db_y += dy
                for (std::size_t j = 0; j < H; ++j) {
                    d.wy(j, v) += h[t + 1](r, j) * dy;  // dW_y += h^T dy
                    dh(r, j) += dy * p.wy(j, v);        // dh = dy W_y^T + dh_next
                }
            }
            for (std::size_t j = 0; j < H; ++j) {
                const double hj = h[t + 1](r, j);
                draw(r, j) = (1 - hj * hj) * dh(r, j);  // through tanh
                d.b(j) += draw(r, j);
                d.wx(tok[t][r], j) += draw(r, j);  // dW_x += x^T draw, x one-hot
                for (std::size_t k = 0; k < H; ++k) d.wh(k, j) += h[t](r, k) * draw(r, j);  // dW_h += h_prev^T draw
            }
        }
        out.dh[t] = dh;
        dh_next = xt::zeros<double>({B, H});  // dh_next = draw W_h^T
        for (std::size_t r = 0; r < B; ++r)
            for (std::size_t k = 0; k < H; ++k)
                for (std::size_t j = 0; j < H; ++j) dh_next(r, k) += draw(r, j) * p.wh(k, j);
    }
    d.h0 = dh_next;  // what flows out of step 0 is the gradient of the initial state
    return out;
}

// |a - b| <= tol * (1 + |b|) elementwise: 1e-10 absolute for small entries, relative for large.
void require_close(const std::string& what, const Mat& a, const Mat& b, double tol = 1e-10) {
    INFO(what);
    REQUIRE(a.shape().size() == b.shape().size());
    REQUIRE(std::equal(a.shape().begin(), a.shape().end(), b.shape().begin()));
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]) / (1 + std::abs(b.data()[i])));
    INFO("worst scaled difference " << worst);
    CHECK(worst <= tol);
}

double max_abs(const Mat& m) {
    double s = 0;
    for (std::size_t i = 0; i < m.size(); ++i) s = std::max(s, std::abs(m.data()[i]));
    return s;
}

// Run the tape version with every parameter requiring grad, compare with the hand version.
void check_against_hand(const Params& p, const std::vector<std::vector<std::size_t>>& tok, std::size_t V) {
    std::vector<Tensor> leaves = as_tensors(p);
    for (std::size_t i = 0; i < leaves.size(); ++i) leaves[i].set_requires_grad().set_name(kNames[i]);
    std::vector<Tensor> hs;
    Tape tape;
    const Tensor loss = rnn_loss(leaves, tok, V, &hs);
    tape.backward(loss);

    const HandGrads hand = bptt_by_hand(p, tok, V);
    CHECK(loss.item() == Approx(hand.loss).epsilon(1e-12));
    const std::vector<const Mat*> expect{&hand.d.wx, &hand.d.wh, &hand.d.b, &hand.d.wy, &hand.d.by, &hand.d.h0};
    for (std::size_t i = 0; i < leaves.size(); ++i) {
        REQUIRE(leaves[i].has_grad());
        // A gradient of all zeros would compare equal to a broken hand version that is also zero.
        CHECK(max_abs(*expect[i]) > 1e-3);
        require_close(kNames[i], leaves[i].grad_value<double>(), *expect[i]);
    }
    // The intermediate dh_t of the recursion is exactly what the tape holds for h_t.
    REQUIRE(hs.size() == hand.dh.size());
    for (std::size_t t = 0; t < hs.size(); ++t) {
        REQUIRE(hs[t].has_grad());
        require_close("dh at step " + std::to_string(t), hs[t].grad_value<double>(), hand.dh[t]);
    }
}

}  // namespace

TEST_CASE("BPTT falls out of the tape: a char-RNN's gradients equal the hand derivation", "[bptt]") {
    const std::size_t V = 5, H = 7, B = 1, T = 25;
    std::mt19937_64 gen(2024);
    const Params p = make_params(gen, V, H, B);
    const auto tok = make_tokens(gen, T, B, V);
    check_against_hand(p, tok, V);
}

TEST_CASE("BPTT by the tape equals the hand derivation for a batch and a long unroll", "[bptt]") {
    const std::size_t V = 5, H = 7, B = 3, T = 200;
    std::mt19937_64 gen(77);
    const Params p = make_params(gen, V, H, B);
    const auto tok = make_tokens(gen, T, B, V);
    check_against_hand(p, tok, V);
}

TEST_CASE("the hand-written char-RNN passes gradcheck over the full Jacobian", "[bptt][gradcheck]") {
    const std::size_t V = 5, H = 7, B = 1, T = 25;
    std::mt19937_64 gen(2025);
    const Params p = make_params(gen, V, H, B);
    const auto tok = make_tokens(gen, T, B, V);
    auto f = [&](const std::vector<Tensor>& in) { return rnn_loss(in, tok, V); };
    const GradcheckResult r = gradcheck(f, as_tensors(p), {.names = kNames});
    INFO(r.message);
    REQUIRE(r);
    CHECK(r.compared == V * H + H * H + H + H * V + V + B * H);
}

TEST_CASE("a 200-step unroll with batch 3 passes gradcheck along random directions", "[bptt][gradcheck]") {
    const std::size_t V = 5, H = 7, B = 3, T = 200;
    std::mt19937_64 gen(99);
    const Params p = make_params(gen, V, H, B);
    const auto tok = make_tokens(gen, T, B, V);
    const GradcheckOptions opt{.mode = Mode::random_direction, .directions = 4, .seed = 3, .names = kNames};
    auto f = [&](const std::vector<Tensor>& in) { return rnn_loss(in, tok, V); };
    const GradcheckResult r = gradcheck(f, as_tensors(p), opt);
    INFO(r.message);
    REQUIRE(r);
    CHECK(r.compared == 4 * kNames.size());

    // The check has teeth at this length: a path the backward forgets (here a term in W_h hidden
    // from the tape by detach, which the finite differences still see) is caught and named.
    auto forgets_a_path = [&](const std::vector<Tensor>& in) {
        const Tensor wh = in[1].detach();
        return rnn_loss(in, tok, V) + sum(wh * wh);
    };
    const GradcheckResult bad = gradcheck(forgets_a_path, as_tensors(p), opt);
    INFO(bad.message);
    REQUIRE_FALSE(bad);
    CHECK(bad.input == "W_h");
}
