// nn::RNN against PyTorch: fixtures made once by tests/fixtures/make_rnn_fixtures.py with torch.nn.RNN
// (unidirectional and bidirectional, 2 layers, tanh and relu, with packed variable lengths) hold
// PyTorch's weights under their own names, its outputs, h_n and every gradient. Loading the weights
// by name and running the same loss must reproduce them: 1e-10 in float64, 1e-5 in float32.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;

TEST_CASE("RNN reproduces PyTorch's outputs, h_n and gradients", "[nn][rnn][reference]") {
    for (const std::string name : {"rnn_uni_2layer", "rnn_bi_2layer_lengths", "rnn_bi_relu_lengths"}) {
        for (DType dt : {f64, f32}) {
            INFO(name << " " << dtype_name(dt));
            auto fx = load_fixture(name);
            const Shape wih = fx.at("weight_ih_l0").shape();
            nn::RNN rnn({.input_size = wih[1],
                         .hidden_size = wih[0],
                         .num_layers = fx.count("weight_ih_l1") ? 2u : 1u,
                         .nonlinearity = name.find("relu") != std::string::npos ? nn::Nonlinearity::relu
                                                                                  : nn::Nonlinearity::tanh,
                         .bidirectional = fx.count("weight_ih_l0_reverse") > 0});
            nn::NamedTensors state;
            for (auto& [n, p] : rnn.named_parameters()) state.emplace_back(n, fx.at(n).to(dt));
            rnn.to(dt);
            nn::load_state_dict(rnn, state);

            Tensor x = fx.at("input").to(dt).detach().set_requires_grad();
            Tensor h0 = fx.at("h0").to(dt).detach().set_requires_grad();
            std::vector<std::int64_t> lengths;
            const Tensor& len = fx.at("lengths");
            for (std::size_t b = 0; b < len.numel(); ++b) lengths.push_back(static_cast<std::int64_t>(len.at(b)));

            Tape tape;
            auto [out, hn] = rnn(x, h0, lengths);
            tape.backward(sum(out * fx.at("w_out").to(dt)) + sum(hn * fx.at("w_hn").to(dt)));

            const double tol = dt == f64 ? 1e-10 : 1e-5;
            CHECK(max_rel_diff(out, fx.at("output")) < tol);
            CHECK(max_rel_diff(hn, fx.at("h_n")) < tol);
            CHECK(max_rel_diff(x.grad(), fx.at("grad.input")) < tol);
            CHECK(max_rel_diff(h0.grad(), fx.at("grad.h0")) < tol);
            for (auto& [n, p] : rnn.named_parameters()) {
                INFO(n);
                CHECK(max_rel_diff(p.grad(), fx.at("grad." + n)) < tol);
            }
        }
    }
}
