// nn::LSTMCell, nn::LSTM, nn::GRUCell and nn::GRU: PyTorch's conventions (names, shapes, gate order,
// equations, init), float64 gradcheck through whole unrolls, PyTorch reference fixtures (made by
// tests/fixtures/make_lstm_gru_fixtures.py), and behaviour: the reverse direction is the forward
// layer on the reversed sequence, a padded batch equals each sequence run alone, bad input is named.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
double sigm(double v) { return 1.0 / (1.0 + std::exp(-v)); }
// Row j of W [G, K] times row b of v [B, K].
double dot_row(const Tensor& W, std::size_t j, const Tensor& v, std::size_t b) {
    const std::size_t K = W.size(1);
    double s = 0;
    for (std::size_t k = 0; k < K; ++k) s += W.at(j * K + k) * v.at(b * K + k);
    return s;
}
void copy_param(const nn::Module& from, const std::string& from_name, nn::Module& to, const std::string& to_name) {
    Tensor dst = to.parameter(to_name);
    dst.mutable_array() = from.parameter(from_name).array();
}
std::vector<std::int64_t> fixture_lengths(const std::map<std::string, Tensor>& fx) {
    std::vector<std::int64_t> lengths;
    const Tensor& len = fx.at("lengths");
    for (std::size_t b = 0; b < len.numel(); ++b) lengths.push_back(static_cast<std::int64_t>(len.at(b)));
    return lengths;
}
}  // namespace

TEST_CASE("LSTM and GRU parameters have PyTorch's names, shapes and init range", "[nn][lstm][gru]") {
    manual_seed(1);
    nn::LSTM lstm({.input_size = 4, .hidden_size = 5, .num_layers = 2, .bidirectional = true});
    nn::GRU gru({.input_size = 4, .hidden_size = 5, .num_layers = 2, .bidirectional = true});
    const double bound = 1.0 / std::sqrt(5.0);
    for (auto [m, gates] : {std::pair<const nn::Module*, std::size_t>{&lstm, 4}, {&gru, 3}}) {
        const std::size_t G = gates * 5;
        std::vector<std::pair<std::string, Shape>> expect;
        for (std::string l : {"_l0", "_l1"})
            for (std::string d : {"", "_reverse"})
                for (auto& [n, s] : std::vector<std::pair<std::string, Shape>>{{"weight_ih", {G, l == "_l0" ? 4u : 10u}},
                                                                               {"weight_hh", {G, 5}},
                                                                               {"bias_ih", {G}},
                                                                               {"bias_hh", {G}}})
                    expect.emplace_back(n + l + d, s);
        const auto named = m->named_parameters();
        REQUIRE(named.size() == expect.size());
        for (std::size_t i = 0; i < expect.size(); ++i) {
            CHECK(named[i].first == expect[i].first);
            CHECK(named[i].second.shape() == expect[i].second);
            double worst = 0;
            for (std::size_t k = 0; k < named[i].second.numel(); ++k) worst = std::max(worst, std::abs(named[i].second.at(k)));
            CHECK(worst <= bound);
            CHECK(worst > 0.5 * bound);  // uniform over the whole range, not a narrower one
        }
    }
    CHECK_THAT(lstm.summary(), Contains("LSTM(4, 5, num_layers=2, bidirectional=true)") &&
                                   Contains("weight_ih_l1_reverse: [20, 10]") && Contains("parameters: 1,120"));
    CHECK_THAT(gru.summary(), Contains("GRU(4, 5, num_layers=2, bidirectional=true)") && Contains("parameters: 840"));
    CHECK(nn::LSTM({.input_size = 3, .hidden_size = 2, .bias = false}).named_parameters().size() == 2);
    CHECK(nn::GRUCell(3, 2, false).named_parameters().size() == 2);
    CHECK(nn::LSTMCell(3, 2).weight_hh.shape() == Shape{8, 2});
}

TEST_CASE("LSTMCell follows PyTorch's equations and gate order i, f, g, o", "[nn][lstm]") {
    manual_seed(2);
    nn::LSTMCell cell(3, 4);
    cell.to(f64);
    Tensor x = seq({2, 3}, 11), h = seq({2, 4}, 12), c = seq({2, 4}, 13);
    auto [h1, c1] = cell(x, h, c);
    REQUIRE(h1.shape() == Shape{2, 4});
    const std::size_t H = 4;
    for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t j = 0; j < H; ++j) {
            double pre[4];
            for (std::size_t g = 0; g < 4; ++g) {
                const std::size_t row = g * H + j;
                pre[g] = dot_row(cell.weight_ih, row, x, b) + cell.bias_ih.at(row) + dot_row(cell.weight_hh, row, h, b) +
                         cell.bias_hh.at(row);
            }
            const double cn = sigm(pre[1]) * c.at(b * H + j) + sigm(pre[0]) * std::tanh(pre[2]);
            CHECK(c1.at(b * H + j) == Approx(cn).margin(1e-12));
            CHECK(h1.at(b * H + j) == Approx(sigm(pre[3]) * std::tanh(cn)).margin(1e-12));
        }
    // No state given means zero states.
    auto [h2, c2] = cell(x);
    auto [h3, c3] = cell(x, zeros({2, 4}, f64), zeros({2, 4}, f64));
    CHECK(max_abs_diff(h2, h3) < 1e-15);
    CHECK(max_abs_diff(c2, c3) < 1e-15);
}

TEST_CASE("GRUCell follows PyTorch's equations and gate order r, z, n", "[nn][gru]") {
    manual_seed(3);
    nn::GRUCell cell(3, 4);
    cell.to(f64);
    Tensor x = seq({2, 3}, 21), h = seq({2, 4}, 22);
    Tensor h1 = cell(x, h);
    const std::size_t H = 4;
    for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t j = 0; j < H; ++j) {
            double gi[3], gh[3];
            for (std::size_t g = 0; g < 3; ++g) {
                const std::size_t row = g * H + j;
                gi[g] = dot_row(cell.weight_ih, row, x, b) + cell.bias_ih.at(row);
                gh[g] = dot_row(cell.weight_hh, row, h, b) + cell.bias_hh.at(row);
            }
            const double r = sigm(gi[0] + gh[0]), z = sigm(gi[1] + gh[1]), n = std::tanh(gi[2] + r * gh[2]);
            CHECK(h1.at(b * H + j) == Approx((1 - z) * n + z * h.at(b * H + j)).margin(1e-12));
        }
    CHECK(max_abs_diff(cell(x), cell(x, zeros({2, 4}, f64))) < 1e-15);
}

TEST_CASE("one LSTM / GRU layer step equals the cell with the same weights", "[nn][lstm][gru]") {
    manual_seed(4);
    nn::LSTM lstm({.input_size = 3, .hidden_size = 4});
    nn::LSTMCell lcell(3, 4);
    nn::GRU gru({.input_size = 3, .hidden_size = 4});
    nn::GRUCell gcell(3, 4);
    for (nn::Module* m : std::vector<nn::Module*>{&lstm, &lcell, &gru, &gcell}) m->to(f64);
    for (const char* n : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) {
        copy_param(lstm, std::string(n) + "_l0", lcell, n);
        copy_param(gru, std::string(n) + "_l0", gcell, n);
    }
    Tensor x = seq({2, 2, 3}, 31), h0 = seq({1, 2, 4}, 32), c0 = seq({1, 2, 4}, 33);
    auto r = lstm(x, h0, c0);
    auto s0 = lcell(select(x, 0, 0), select(h0, 0, 0), select(c0, 0, 0));
    auto s1 = lcell(select(x, 0, 1), s0.h, s0.c);
    CHECK(max_abs_diff(select(r.output, 0, 0), s0.h) < 1e-14);
    CHECK(max_abs_diff(select(r.h_n, 0, 0), s1.h) < 1e-14);
    CHECK(max_abs_diff(select(r.c_n, 0, 0), s1.c) < 1e-14);
    auto g = gru(x, h0);
    Tensor g1 = gcell(select(x, 0, 1), gcell(select(x, 0, 0), select(h0, 0, 0)));
    CHECK(max_abs_diff(select(g.h_n, 0, 0), g1) < 1e-14);
}

TEST_CASE("gradcheck: LSTMCell and GRUCell w.r.t. parameters, input and states", "[nn][lstm][gru][gradcheck]") {
    manual_seed(5);
    nn::LSTMCell lcell(3, 4);
    nn::GRUCell gcell(3, 4);
    lcell.to(f64);
    gcell.to(f64);
    Tensor x = seq({2, 3}, 41), h = seq({2, 4}, 42), c = seq({2, 4}, 43);
    auto r = nn::gradcheck_module(
        lcell,
        [&] {
            auto [h1, c1] = lcell(x, h, c);
            return weighted_sum(h1, 1) + weighted_sum(c1, 2);
        },
        {x, h, c}, {.names = {"x", "h", "c"}});
    INFO(r.message);
    CHECK(r.ok);
    CHECK(r.compared == 16 * 3 + 16 * 4 + 16 + 16 + 6 + 8 + 8);  // every parameter, x, h and c
    auto g = nn::gradcheck_module(gcell, [&] { return weighted_sum(gcell(x, h), 3); }, {x, h});
    INFO(g.message);
    CHECK(g.ok);
}

TEST_CASE("gradcheck: 2-layer bidirectional LSTM and GRU, with and without lengths", "[nn][lstm][gru][gradcheck]") {
    manual_seed(6);
    nn::LSTM lstm({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
    nn::GRU gru({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
    lstm.to(f64);
    gru.to(f64);
    Tensor x = seq({4, 3, 2}, 51), h0 = seq({4, 3, 3}, 52), c0 = seq({4, 3, 3}, 53);
    for (const std::vector<std::int64_t>& lengths : {std::vector<std::int64_t>{}, {4, 2, 3}}) {
        INFO("lengths " << lengths.size());
        auto r = nn::gradcheck_module(
            lstm,
            [&] {
                auto [out, hn, cn] = lstm(x, h0, c0, lengths);
                return weighted_sum(out, 6) + weighted_sum(hn, 7) + weighted_sum(cn, 8);
            },
            {x, h0, c0}, {.names = {"input", "h0", "c0"}});
        INFO(r.message);
        CHECK(r.ok);
        CHECK(r.compared > 400);
        auto g = nn::gradcheck_module(
            gru,
            [&] {
                auto [out, hn] = gru(x, h0, lengths);
                return weighted_sum(out, 6) + weighted_sum(hn, 7);
            },
            {x, h0}, {.names = {"input", "h0"}});
        INFO(g.message);
        CHECK(g.ok);
        CHECK(g.compared > 300);
    }
}

TEST_CASE("LSTM and GRU reproduce PyTorch's outputs, final states and gradients", "[nn][lstm][gru][reference]") {
    for (const std::string name : {"lstm_uni_2layer", "lstm_bi_2layer_lengths", "gru_uni_2layer", "gru_bi_2layer_lengths"}) {
        for (DType dt : {f64, f32}) {
            INFO(name << " " << dtype_name(dt));
            auto fx = load_fixture(name);
            const bool is_lstm = name.rfind("lstm", 0) == 0;
            const std::size_t gates = is_lstm ? 4 : 3;
            const Shape wih = fx.at("weight_ih_l0").shape();
            const std::size_t in = wih[1], H = wih[0] / gates, L = fx.count("weight_ih_l1") ? 2 : 1;
            const bool bi = fx.count("weight_ih_l0_reverse") > 0;
            nn::LSTM lstm({.input_size = in, .hidden_size = H, .num_layers = L, .bidirectional = bi});
            nn::GRU gru({.input_size = in, .hidden_size = H, .num_layers = L, .bidirectional = bi});
            nn::Module& model = is_lstm ? static_cast<nn::Module&>(lstm) : gru;
            nn::NamedTensors state;
            for (auto& [n, p] : model.named_parameters()) state.emplace_back(n, fx.at(n).to(dt));
            model.to(dt);
            nn::load_state_dict(model, state);

            Tensor x = fx.at("input").to(dt).detach().set_requires_grad();
            Tensor h0 = fx.at("h0").to(dt).detach().set_requires_grad();
            Tensor c0 = is_lstm ? fx.at("c0").to(dt).detach().set_requires_grad() : Tensor();
            const auto lengths = fixture_lengths(fx);

            Tape tape;
            Tensor out, hn, cn;
            auto run = [&] {
                if (is_lstm) {
                    auto r = lstm(x, h0, c0, lengths);
                    out = r.output, hn = r.h_n, cn = r.c_n;
                } else {
                    auto r = gru(x, h0, lengths);
                    out = r.output, hn = r.h_n;
                }
            };
            run();
            Tensor loss = sum(out * fx.at("w_out").to(dt)) + sum(hn * fx.at("w_hn").to(dt));
            if (is_lstm) loss = loss + sum(cn * fx.at("w_cn").to(dt));
            tape.backward(loss);

            const double tol = dt == f64 ? 1e-10 : 1e-5;
            CHECK(max_rel_diff(out, fx.at("output")) < tol);
            CHECK(max_rel_diff(hn, fx.at("h_n")) < tol);
            CHECK(max_rel_diff(x.grad(), fx.at("grad.input")) < tol);
            CHECK(max_rel_diff(h0.grad(), fx.at("grad.h0")) < tol);
            if (is_lstm) {
                CHECK(max_rel_diff(cn, fx.at("c_n")) < tol);
                CHECK(max_rel_diff(c0.grad(), fx.at("grad.c0")) < tol);
            }
            for (auto& [n, p] : model.named_parameters()) {
                INFO(n);
                CHECK(max_rel_diff(p.grad(), fx.at("grad." + n)) < tol);
            }
        }
    }
}

TEST_CASE("the reverse direction equals a forward LSTM / GRU with the _reverse weights on the reversed sequence",
          "[nn][lstm][gru]") {
    manual_seed(8);
    nn::LSTM lbi({.input_size = 3, .hidden_size = 4, .bidirectional = true});
    nn::LSTM luni({.input_size = 3, .hidden_size = 4});
    nn::GRU gbi({.input_size = 3, .hidden_size = 4, .bidirectional = true});
    nn::GRU guni({.input_size = 3, .hidden_size = 4});
    for (nn::Module* m : std::vector<nn::Module*>{&lbi, &luni, &gbi, &guni}) m->to(f64);
    for (std::string n : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}) {
        copy_param(lbi, n + "_reverse", luni, n);
        copy_param(gbi, n + "_reverse", guni, n);
    }
    Tensor x = seq({5, 2, 3}, 61);
    auto l = lbi(x);
    auto lr = luni(flip(x, 0));
    CHECK(max_abs_diff(slice(l.output, -1, 4, 8), flip(lr.output, 0)) < 1e-12);
    CHECK(max_abs_diff(select(l.h_n, 0, 1), select(lr.h_n, 0, 0)) < 1e-12);
    CHECK(max_abs_diff(select(l.c_n, 0, 1), select(lr.c_n, 0, 0)) < 1e-12);
    auto g = gbi(x);
    auto gr = guni(flip(x, 0));
    CHECK(max_abs_diff(slice(g.output, -1, 4, 8), flip(gr.output, 0)) < 1e-12);
    CHECK(max_abs_diff(select(g.h_n, 0, 1), select(gr.h_n, 0, 0)) < 1e-12);
}

TEST_CASE("a padded LSTM / GRU batch gives the same outputs and gradients as each sequence alone", "[nn][lstm][gru]") {
    manual_seed(9);
    nn::LSTM lstm({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
    nn::GRU gru({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
    lstm.to(f64);
    gru.to(f64);
    const std::vector<std::int64_t> lengths = {5, 2, 4};
    const std::size_t T = 5;
    Tensor x = seq({T, 3, 2}, 71), h0 = seq({4, 3, 3}, 72), c0 = seq({4, 3, 3}, 73);
    // Runs the layer; returns output and the final states (h_n, then c_n for LSTM).
    using Run = std::function<std::vector<Tensor>(const Tensor&, const Tensor&, const Tensor&, const std::vector<std::int64_t>&)>;
    const Run run_lstm = [&](const Tensor& in, const Tensor& h, const Tensor& c, const std::vector<std::int64_t>& len) {
        auto r = lstm(in, h, c, len);
        return std::vector<Tensor>{r.output, r.h_n, r.c_n};
    };
    const Run run_gru = [&](const Tensor& in, const Tensor& h, const Tensor&, const std::vector<std::int64_t>& len) {
        auto r = gru(in, h, len);
        return std::vector<Tensor>{r.output, r.h_n};
    };
    for (auto [model, run] : {std::pair<nn::Module*, Run>{&lstm, run_lstm}, {&gru, run_gru}}) {
        INFO(model->type_name());
        Tape tape;
        const std::vector<Tensor> batch = run(x, h0, c0, lengths);
        Tensor loss = zeros({}, f64);
        for (std::size_t i = 0; i < batch.size(); ++i) loss = loss + weighted_sum(batch[i], 80 + i);
        tape.backward(loss);
        std::vector<Tensor> batch_grads;
        for (auto& p : model->parameters()) batch_grads.push_back(p.grad());
        model->zero_grad();

        for (std::size_t b = 0; b < 3; ++b) {
            const long len = lengths[b];
            auto row = [&](const Tensor& t) { return slice(t, 1, b, b + 1); };
            const std::vector<Tensor> alone = run(slice(row(x), 0, 0, len), row(h0), row(c0), {});
            CHECK(max_abs_diff(alone[0], slice(row(batch[0]), 0, 0, len)) < 1e-12);
            for (std::size_t i = 1; i < alone.size(); ++i) CHECK(max_abs_diff(alone[i], row(batch[i])) < 1e-12);
            if (len < static_cast<long>(T))  // padded steps emit exact zeros
                CHECK(max_abs_diff(slice(row(batch[0]), 0, len, T), zeros({T - len, 1, 6}, f64)) == 0);
            Tensor l = sum(alone[0] * slice(row(seq(batch[0].shape(), 80)), 0, 0, len));
            for (std::size_t i = 1; i < alone.size(); ++i) l = l + sum(alone[i] * row(seq(batch[i].shape(), 80 + i)));
            tape.backward(l);
        }
        const auto params = model->parameters();
        for (std::size_t i = 0; i < params.size(); ++i) {
            INFO(params[i].name());
            CHECK(max_abs_diff(params[i].grad(), batch_grads[i]) < 1e-12);
        }
        model->zero_grad();
    }
}

TEST_CASE("LSTM / GRU batch_first, dropout between layers, output layouts", "[nn][lstm][gru]") {
    manual_seed(10);
    nn::LSTM a({.input_size = 3, .hidden_size = 2, .num_layers = 2});
    manual_seed(10);
    nn::LSTM b({.input_size = 3, .hidden_size = 2, .num_layers = 2, .batch_first = true});
    Tensor x = seq({4, 2, 3}, 91, f32);
    auto ra = a(x);
    auto rb = b(transpose(x, 0, 1));
    CHECK(rb.output.shape() == Shape{2, 4, 2});
    CHECK(max_abs_diff(transpose(rb.output, 0, 1), ra.output) < 1e-6);
    CHECK(max_abs_diff(rb.c_n, ra.c_n) < 1e-6);

    nn::GRU g({.input_size = 3, .hidden_size = 8, .num_layers = 3, .dropout = 0.5, .bidirectional = true});
    g.eval();
    auto e1 = g(x), e2 = g(x);
    CHECK(e1.output.shape() == Shape{4, 2, 16});
    CHECK(e1.h_n.shape() == Shape{6, 2, 8});
    CHECK(max_abs_diff(e1.output, e2.output) == 0.0);
    // Forward half of the last layer's last step is h_n row 4; the reverse half at step 0 is row 5.
    CHECK(max_abs_diff(slice(select(e1.output, 0, 3), -1, 0, 8), select(e1.h_n, 0, 4)) == 0.0);
    CHECK(max_abs_diff(slice(select(e1.output, 0, 0), -1, 8, 16), select(e1.h_n, 0, 5)) == 0.0);
    g.train();
    CHECK(max_abs_diff(g(x).output, e1.output) > 1e-4);
}

TEST_CASE("LSTM and GRU reject bad input with messages naming the problem", "[nn][lstm][gru]") {
    nn::LSTM lstm({.input_size = 10, .hidden_size = 4, .num_layers = 2});
    nn::GRU gru({.input_size = 10, .hidden_size = 4, .bidirectional = true});
    const Tensor x = zeros({5, 2, 10});
    REQUIRE_THROWS_WITH(lstm(zeros({5, 2, 3})),
                        Contains("LSTM: input.size(-1) must be equal to input_size. Expected 10, got 3"));
    REQUIRE_THROWS_WITH(gru(zeros({5, 2, 3})), Contains("GRU: input.size(-1) must be equal to input_size. Expected 10, got 3"));
    REQUIRE_THROWS_WITH(lstm(zeros({5, 10})), Contains("LSTM") && Contains("3 axes") && Contains("[5, 10]"));
    REQUIRE_THROWS_WITH(gru(zeros({0, 2, 10})), Contains("GRU") && Contains("empty"));
    REQUIRE_THROWS_WITH(lstm(x, zeros({1, 2, 4})), Contains("LSTM: h0 must be [2, 2, 4]") && Contains("[1, 2, 4]"));
    REQUIRE_THROWS_WITH(lstm(x, zeros({2, 2, 4}), zeros({2, 3, 4})),
                        Contains("LSTM: c0 must be [2, 2, 4]") && Contains("[2, 3, 4]"));
    REQUIRE_THROWS_WITH(lstm(x, Tensor(), zeros({2, 2, 5})), Contains("c0") && Contains("[2, 2, 5]"));
    REQUIRE_THROWS_WITH(gru(x, zeros({1, 2, 4})), Contains("GRU: h0 must be [2, 2, 4]") && Contains("[1, 2, 4]"));
    REQUIRE_THROWS_WITH(lstm(x, Tensor(), Tensor(), {5, 6}), Contains("LSTM: lengths[1] = 6") && Contains("[1, 5]"));
    REQUIRE_THROWS_WITH(gru(x, Tensor(), {0, 5}), Contains("GRU: lengths[0] = 0"));
    REQUIRE_THROWS_WITH(gru(x, Tensor(), {5}), Contains("1 lengths") && Contains("batch of 2"));
    REQUIRE_THROWS_AS(lstm(zeros({5, 2, 10}, f64)), DTypeError);
    REQUIRE_THROWS_AS(lstm(x, Tensor(), zeros({2, 2, 4}, f64)), DTypeError);
    REQUIRE_THROWS_AS(nn::GRU({.input_size = 0, .hidden_size = 4}), ValueError);
    REQUIRE_THROWS_WITH(nn::LSTM({.input_size = 2, .hidden_size = 4, .dropout = 1.5}), Contains("LSTM: dropout 1.5"));

    nn::LSTMCell lcell(3, 4);
    nn::GRUCell gcell(3, 4);
    REQUIRE_THROWS_WITH(lcell(zeros({2, 5})), Contains("LSTMCell") && Contains("[batch, 3]") && Contains("[2, 5]"));
    REQUIRE_THROWS_WITH(lcell(zeros({2, 3}), zeros({2, 4}), zeros({2, 5})),
                        Contains("LSTMCell: cell state c must be [2, 4], got [2, 5]"));
    REQUIRE_THROWS_WITH(lcell(zeros({2, 3}), zeros({3, 4})), Contains("hidden state h must be [2, 4], got [3, 4]"));
    REQUIRE_THROWS_WITH(gcell(zeros({2, 3}), zeros({2, 5})), Contains("GRUCell") && Contains("[2, 4]") && Contains("[2, 5]"));
    REQUIRE_THROWS_AS(gcell(zeros({2, 3}, f64)), DTypeError);
}
