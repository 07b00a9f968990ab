// The tapegrad side of docs/libtorch.md, the guide for LibTorch users: every tapegrad line that page
// shows is quoted from this file (the doc_sync test checks it), and each group of lines is followed
// by checks that it does what the page says. One test case per section of the page.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using Catch::Matchers::Contains;

namespace {

const test::ScratchDir scratch("tapegrad_test_libtorch_guide");

// A module of one's own: members registered by name where they are created.
struct Tagger : nn::Module {
    nn::Embedding embed{10, 4};
    nn::GRU rnn{{.input_size = 4, .hidden_size = 8}};
    nn::Linear head{8, 3};
    Tensor scale;
    Tagger() {
        scale = register_parameter("scale", ones({3}));
        register_module("embed", embed);
        register_module("rnn", rnn);
        register_module("head", head);
    }
    // ids [T, B] -> logits [T, B, 3]; padded steps (t >= lengths[b]) give the head's bias only.
    Tensor forward(const xt::xarray<std::int64_t>& ids, const std::vector<std::int64_t>& lengths = {}) const {
        Tensor h = rnn(embed(ids), Tensor(), lengths).output;  // [T, B, 8]
        h = dropout(h, 0.2, is_training());
        return head(h) * scale;
    }
    std::string type_name() const override { return "Tagger"; }
};

// The same embedding and GRU, without the head: part of a Tagger's file fits it.
struct Encoder : nn::Module {
    nn::Embedding embed{10, 4};
    nn::GRU rnn{{.input_size = 4, .hidden_size = 8}};
    Encoder() {
        register_module("embed", embed);
        register_module("rnn", rnn);
    }
};

// x^2 with a backward written by hand (LibTorch's torch::autograd::Function).
Tensor square(const Tensor& x) {
    Tensor value;
    {
        NoGrad guard;  // the value is computed here; custom_op records it with our backward
        value = x * x;
    }
    return custom_op("square", {x}, value, [](const Tensor& grad_out, const std::vector<Tensor>& in, const Tensor&) {
        return std::vector<Tensor>{grad_out * in[0] * 2.0};
    });
}

}  // namespace

TEST_CASE("guide: factories, dtypes and element access", "[guide][tensor]") {
    Tensor z = zeros({2, 3});
    Tensor o = ones({2, 3}, f64);
    Tensor c = full({2, 3}, 0.5);
    Tensor r = arange(0, 5);
    Tensor n = randn({2, 3});
    Tensor u = uniform({2, 3}, -0.1, 0.1);
    Tensor m = Tensor::of({{1.0, 2.0}, {3.0, 4.0}});
    Tensor s = Tensor::scalar(3.0);
    Tensor like = zeros_like(o);
    Tensor arr(xt::xarray<double>{1.0, 2.0, 3.0});  // from an xtensor array: its dtype
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.dtype() == f32);
    CHECK(o.dtype() == f64);
    CHECK(c.at(5) == 0.5);
    CHECK(r.numel() == 5);
    CHECK(r.at(4) == 4.0);
    CHECK(n.shape() == Shape{2, 3});
    CHECK(max(abs(u)).item() < 0.1);
    CHECK(m.dim() == 2);
    CHECK(m.size(-1) == 2);
    CHECK(m.at(2) == 3.0);  // flat row-major index: m[1][0]
    CHECK(s.item() == 3.0);
    CHECK(like.dtype() == f64);
    CHECK(arr.dtype() == f64);
    // Reading and writing elements: the value is an xtensor array of the tensor's dtype.
    CHECK(m.value<float>()(1, 1) == 4.0f);
    Tensor d = m.to(f64);
    CHECK(d.dtype() == f64);
    CHECK(d.value<double>()(0, 1) == 2.0);
    d.mutable_value<double>()(0, 1) = 7.0;
    CHECK(d.at(1) == 7.0);
    CHECK(m.at(1) == 2.0);  // to() copied
    CHECK_THAT(to_string(m), Contains("shape=[2, 2]") && Contains("float32"));
}

TEST_CASE("guide: the default dtype", "[guide][tensor]") {
    CHECK(default_dtype() == f32);
    {
        DefaultDType guard(f64);
        CHECK(default_dtype() == f64);
        CHECK(zeros({2}).dtype() == f64);
        CHECK(nn::Linear(3, 2).weight.dtype() == f64);
        CHECK(ones({2}, f32).dtype() == f32);  // an explicit dtype wins
    }
    CHECK(default_dtype() == f32);
    // Ops never mix dtypes: convert one side with to().
    REQUIRE_THROWS_AS(ones({2}) + ones({2}, f64), DTypeError);
    CHECK((ones({2}) + ones({2}, f64).to(f32)).dtype() == f32);
    CHECK((ones({2}, f64) * 2.0).dtype() == f64);  // a plain number takes the tensor's dtype
}

TEST_CASE("guide: requires_grad, backward and grad", "[guide][autograd]") {
    Tensor w = Tensor::of({1.0, 2.0, 3.0}, f32, true);
    Tensor x = ones({3});
    Tape tape;  // records the ops below, while it is alive
    Tensor loss = sum(w * w * x);
    loss.backward();
    CHECK(w.has_grad());
    Tensor g = w.grad();  // a snapshot: a copy of the gradient
    CHECK(g.at(2) == 6.0);
    CHECK(w.grad_value<float>()(1) == 4.0f);
    CHECK_FALSE(x.has_grad());
    w.zero_grad();
    CHECK_FALSE(w.has_grad());

    Tensor b = zeros({3});
    b.set_requires_grad();
    CHECK(b.requires_grad());
    CHECK(b.is_leaf());
    CHECK_FALSE(loss.is_leaf());
}

TEST_CASE("guide: gradients accumulate, retain_graph, retain_grad", "[guide][autograd]") {
    Tensor p = Tensor::scalar(2.0, f64, true);
    for (int i = 0; i < 2; ++i) {
        Tape tape;
        tape.backward(p * p);
    }
    CHECK(p.grad().item() == 4.0 + 4.0);  // gradients add up until zero_grad()

    p.zero_grad();
    Tape tape;
    Tensor h = tanh(p);
    h.retain_grad();  // keep the gradient of an intermediate value
    Tensor y = h * h;
    tape.backward(y, {.retain_graph = true});
    tape.backward(y);  // allowed once more: the first backward kept the record
    CHECK(h.grad().item() == Approx(2 * 2 * std::tanh(2.0)));
    REQUIRE_THROWS_AS(tape.backward(y), UsageError);  // the second one released it
}

TEST_CASE("guide: no_grad, detach and the tape's lifetime", "[guide][autograd]") {
    Tensor w = Tensor::of({1.0, -1.0}, f64, true);
    Tape tape;
    {
        NoGrad no_grad;
        Tensor y = w * 2.0;
        CHECK_FALSE(y.requires_grad());
        CHECK_FALSE(is_recording());
    }
    CHECK(tape.size() == 0);
    Tensor h = tanh(w);
    Tensor d = h.detach();  // the value without its history
    CHECK_FALSE(d.requires_grad());
    CHECK(d.is_leaf());
    CHECK(tape.size() == 1);

    // The tape must be alive for backward: a loss recorded on a tape that has ended cannot be
    // backpropagated, and no tape at all means nothing was recorded.
    Tensor loss;
    {
        Tape inner;
        loss = sum(w * w);
    }
    REQUIRE_THROWS_AS(loss.backward(), UsageError);
    {
        NoGrad no_grad;
        Tensor unrecorded = sum(w * w);
        REQUIRE_THROWS_AS(unrecorded.backward(), UsageError);
    }
}

TEST_CASE("guide: reshape, transpose, cat, stack, split and picking", "[guide][shape]") {
    Tensor x = reshape(arange(0, 24), {2, 3, 4});
    CHECK(reshape(x, {6, -1}).shape() == Shape{6, 4});
    CHECK(transpose(x, 0, 1).shape() == Shape{3, 2, 4});
    CHECK(permute(x, {2, 0, 1}).shape() == Shape{4, 2, 3});
    CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 3, 4});
    CHECK(squeeze(unsqueeze(x, 0), 0).shape() == Shape{2, 3, 4});
    CHECK(concat({x, x}, 1).shape() == Shape{2, 6, 4});
    CHECK(stack({x, x}, 0).shape() == Shape{2, 2, 3, 4});
    std::vector<Tensor> parts = split(x, {1, 2}, 1);
    CHECK(parts[1].shape() == Shape{2, 2, 4});
    std::vector<Tensor> halves = chunk(x, 2, -1);
    CHECK(halves[0].shape() == Shape{2, 3, 2});
    CHECK(select(x, 0, 1).shape() == Shape{3, 4});
    CHECK(slice(x, 2, 1, 3).shape() == Shape{2, 3, 2});
    CHECK(index_select(x, 1, {2, 0}).at(0) == 8.0);
    CHECK(flip(x, 0).at(0) == 12.0);
    CHECK(expand(ones({1, 4}), {3, 4}).shape() == Shape{3, 4});
    CHECK(pad(x, 2, 1, 0).shape() == Shape{2, 3, 5});
}

TEST_CASE("guide: embedding and gather take int64 ids", "[guide][shape]") {
    Tensor table = Tensor::of({{0.0, 0.5}, {1.0, 1.5}, {2.0, 2.5}});  // [V = 3, E = 2]
    xt::xarray<std::int64_t> ids = {{2, 0}, {1, 1}};                  // [T = 2, B = 2]
    Tensor e = embedding(table, ids);
    CHECK(e.shape() == Shape{2, 2, 2});
    CHECK(e.at(0) == 2.0);
    xt::xarray<std::int64_t> pick = {{1, 0}, {0, 1}, {1, 1}};
    Tensor g = gather(table, 1, pick);  // g[i][j] = table[i][pick[i][j]]
    CHECK(g.shape() == Shape{3, 2});
    CHECK(g.at(0) == 0.5);
    CHECK(g.at(2) == 1.0);
    CHECK(g.at(5) == 2.5);
    Tensor hot = one_hot(xt::xarray<std::int64_t>{2, 0}, 3);
    CHECK(hot.shape() == Shape{2, 3});
    CHECK(hot.at(2) == 1.0);
}

TEST_CASE("guide: elementwise ops and activations", "[guide][elementwise]") {
    Tensor x = Tensor::of({-2.0, 0.0, 3.0}, f64);
    CHECK((x * 2.0 + 1.0).at(0) == -3.0);
    CHECK((1.0 - x).at(2) == -2.0);
    CHECK(exp(x).at(1) == 1.0);
    CHECK(log(exp(x)).at(2) == Approx(3.0));
    CHECK(sqrt(abs(x)).at(2) == Approx(std::sqrt(3.0)));
    CHECK(pow(x, 2.0).at(2) == 9.0);
    CHECK(clamp(x, -1.0, 1.0).at(2) == 1.0);
    CHECK(clamp_min(x, 0.0).at(0) == 0.0);
    CHECK(maximum(x, zeros_like(x)).at(0) == 0.0);
    CHECK(relu(x).at(0) == 0.0);
    CHECK(leaky_relu(x, 0.1).at(0) == Approx(-0.2));
    CHECK(sigmoid(x).at(1) == 0.5);
    CHECK(tanh(x).at(1) == 0.0);
    CHECK(softplus(x).at(1) == Approx(std::log(2.0)));
    CHECK(hardtanh(x).at(0) == -1.0);
}

TEST_CASE("guide: matmul, linear and outer", "[guide][linalg]") {
    Tensor a = ones({2, 3});
    Tensor w = full({4, 3}, 0.5);
    Tensor b = full({4}, 1.0);
    CHECK(matmul(a, transpose(w)).shape() == Shape{2, 4});
    Tensor y = linear(a, w, b);  // a w^T + b, one GEMM
    CHECK(y.shape() == Shape{2, 4});
    CHECK(y.at(0) == 2.5);
    CHECK(linear(a, w).at(0) == 1.5);
    CHECK(matmul(ones({5, 2, 3}), ones({5, 3, 4})).shape() == Shape{5, 2, 4});
    CHECK(outer(ones({2}), ones({3})).shape() == Shape{2, 3});
}

TEST_CASE("guide: reductions", "[guide][reduce]") {
    Tensor x = Tensor::of({{1.0, 5.0, 3.0}, {4.0, 2.0, 6.0}}, f64);
    CHECK(sum(x).item() == 21.0);
    CHECK(sum(x, 1).shape() == Shape{2});
    CHECK(sum(x, 1, true).shape() == Shape{2, 1});
    CHECK(sum(x, {0, 1}).item() == 21.0);
    CHECK(mean(x, 0).at(0) == 2.5);
    CHECK(max(x).item() == 6.0);
    CHECK(max(x, 1).at(0) == 5.0);
    CHECK(min(x, 0).at(1) == 2.0);
    CHECK(logsumexp(x, 1).at(0) == Approx(std::log(std::exp(1.0) + std::exp(5.0) + std::exp(3.0))));
    CHECK(norm(x).item() == Approx(std::sqrt(91.0)));
}

TEST_CASE("guide: softmax, cross_entropy and nll_loss with ignore_index", "[guide][loss]") {
    Tensor logits = Tensor::of({{{2.0, 1.0, 0.1}, {0.5, 2.5, 0.3}}, {{1.0, 1.0, 1.0}, {0.0, 3.0, 0.0}}}, f64);
    xt::xarray<std::int64_t> targets = {{1, 2}, {2, 0}};  // [T = 2, B = 2]; 0 is padding
    CHECK(sum(softmax(logits), -1).at(3) == Approx(1.0));
    Tensor loss = cross_entropy(logits, targets, {.ignore_index = 0});
    Tensor same = nll_loss(log_softmax(logits), targets, {.ignore_index = 0});
    CHECK(loss.item() == Approx(same.item()));
    Tensor each = cross_entropy(logits, targets, {.ignore_index = 0, .reduction = Reduction::none});
    CHECK(each.shape() == Shape{2, 2});
    CHECK(each.at(3) == 0.0);  // the padding position adds nothing and is not counted
    CHECK(loss.item() == Approx((each.at(0) + each.at(1) + each.at(2)) / 3));
    // A weight is per position, shaped like the targets: a 0/1 mask does what ignore_index does.
    Tensor mask = nn::sequence_mask({2, 1}, 2, 2, f64);
    CHECK(cross_entropy(logits, targets, {.weight = mask}).item() == Approx(loss.item()));
    nn::CrossEntropyLoss criterion({.ignore_index = 0});
    CHECK(criterion(logits, targets).item() == Approx(loss.item()));

    Tensor pred = Tensor::of({0.5, 2.0}), target = Tensor::of({1.0, 1.0});
    CHECK(mse_loss(pred, target).item() == Approx((0.25 + 1.0) / 2));
    CHECK(binary_cross_entropy_with_logits(zeros({2}), target).item() == Approx(std::log(2.0)));
}

TEST_CASE("guide: where and masks", "[guide][mask]") {
    Tensor scores = Tensor::of({{0.5, 1.5}, {2.0, -1.0}}, f64);  // [T = 2, B = 2]
    Tensor mask = nn::sequence_mask({2, 1}, 2, 2, f64);          // 1 where t < lengths[b]
    Tensor hidden = where(mask, scores, -1e9);
    CHECK(hidden.at(3) == -1e9);
    CHECK(softmax(hidden, 0).at(3) == 0.0);
    Tensor kept = scores * mask;
    CHECK(kept.at(3) == 0.0);
}

TEST_CASE("guide: Linear and Embedding", "[guide][nn]") {
    nn::Linear fc(4, 2);
    CHECK(fc.weight.shape() == Shape{2, 4});
    CHECK(fc.bias.shape() == Shape{2});
    CHECK(fc(ones({3, 5, 4})).shape() == Shape{3, 5, 2});
    nn::Linear no_bias(4, 2, false);
    CHECK_FALSE(no_bias.bias.defined());

    nn::Embedding emb(10, 4, 0);  // padding_idx 0
    xt::xarray<std::int64_t> ids = {{3, 0}, {5, 7}};
    Tensor e = emb(ids);
    CHECK(e.shape() == Shape{2, 2, 4});
    CHECK(sum(abs(select(select(e, 0, 0), 0, 1))).item() == 0.0);  // padding gives zeros
}

TEST_CASE("guide: RNN, LSTM and GRU options and results", "[guide][nn][rnn]") {
    manual_seed(1);
    //! [recurrent_layers]
    Tensor x = randn({5, 3, 4});  // [T, B, F]
    nn::LSTM lstm({.input_size = 4, .hidden_size = 8, .num_layers = 2, .bidirectional = true});
    nn::LSTMResult r = lstm(x);
    CHECK(r.output.shape() == Shape{5, 3, 16});  // [T, B, D*H]
    CHECK(r.h_n.shape() == Shape{4, 3, 8});      // [num_layers*D, B, H]
    CHECK(r.c_n.shape() == Shape{4, 3, 8});
    nn::LSTMResult next = lstm(x, r.h_n, r.c_n);
    CHECK(next.output.shape() == Shape{5, 3, 16});
    CHECK(lstm.parameter("weight_ih_l0_reverse").shape() == Shape{32, 4});
    CHECK(lstm.parameter("weight_ih_l1").shape() == Shape{32, 16});

    nn::GRU gru({.input_size = 4, .hidden_size = 8, .batch_first = true});
    nn::GRUResult g = gru(randn({3, 5, 4}));  // [B, T, F]
    CHECK(g.output.shape() == Shape{3, 5, 8});
    CHECK(g.h_n.shape() == Shape{1, 3, 8});  // h_n is [num_layers*D, B, H] either way

    nn::RNN rnn({.input_size = 4, .hidden_size = 8, .nonlinearity = nn::Nonlinearity::relu});
    nn::RNNResult rr = rnn(x);
    CHECK(rr.h_n.shape() == Shape{1, 3, 8});
    CHECK(min(rr.output).item() >= 0.0);
    //! [recurrent_layers]
}

TEST_CASE("guide: lengths instead of packed sequences", "[guide][nn][rnn]") {
    manual_seed(2);
    //! [lengths]
    nn::GRU gru({.input_size = 4, .hidden_size = 8});
    Tensor x = randn({5, 2, 4});  // [T, B, F]: row 1 is 3 steps long, then padding
    const std::vector<std::int64_t> lengths = {5, 3};
    nn::GRUResult r = gru(x, Tensor(), lengths);
    nn::GRUResult alone = gru(slice(slice(x, 1, 1, 2), 0, 0, 3));  // row 1 by itself, 3 steps
    CHECK(max(abs(select(r.h_n, 1, 1) - select(alone.h_n, 1, 0))).item() < 1e-5);
    CHECK(sum(abs(slice(slice(r.output, 0, 3, 5), 1, 1, 2))).item() == 0.0);  // padded steps: zeros
    //! [lengths]
}

TEST_CASE("guide: the cells, one step at a time", "[guide][nn][rnn]") {
    manual_seed(3);
    Tensor x_t = randn({3, 4});  // [B, F]
    nn::LSTMCell cell(4, 8);
    nn::LSTMState s = cell(x_t);  // zero state
    s = cell(x_t, s.h, s.c);
    CHECK(s.h.shape() == Shape{3, 8});
    CHECK(s.c.shape() == Shape{3, 8});
    CHECK(cell.weight_ih.shape() == Shape{32, 4});
    nn::GRUCell gcell(4, 8);
    Tensor h = gcell(x_t);
    h = gcell(x_t, h);
    CHECK(h.shape() == Shape{3, 8});
    nn::RNNCell rcell(4, 8, nn::Nonlinearity::relu);
    Tensor hr = rcell(x_t, zeros({3, 8}));
    CHECK(min(hr).item() >= 0.0);
}

TEST_CASE("guide: a module of one's own, named parameters, modes", "[guide][nn][module]") {
    Tagger model;
    nn::NamedTensors named = model.named_parameters();
    CHECK(named[0].first == "scale");
    CHECK(named[1].first == "embed.weight");
    CHECK(named[2].first == "rnn.weight_ih_l0");
    CHECK(named.back().first == "head.bias");
    CHECK(model.parameters().size() == 8);
    CHECK(model.num_parameters() == 3 + 40 + 96 + 192 + 24 + 24 + 24 + 3);
    CHECK(model.parameter("head.bias").shape() == Shape{3});
    CHECK(model.named_modules().size() == 3);
    CHECK_THAT(model.summary(), Contains("Tagger") && Contains("(rnn): GRU"));

    xt::xarray<std::int64_t> ids = {{1, 2}, {3, 0}, {4, 0}};  // [T = 3, B = 2]
    CHECK(model.forward(ids, {3, 1}).shape() == Shape{3, 2, 3});
    model.eval();
    CHECK_FALSE(model.rnn.is_training());
    model.train();
    CHECK(model.is_training());
    nn::NamedTensors state = nn::state_dict(model);  // a copy of every parameter, by name
    CHECK(state.size() == 8);
    model.to(f64);
    CHECK(model.dtype() == f64);
}

TEST_CASE("guide: Sequential, ModuleList, ModuleDict", "[guide][nn][containers]") {
    //! [container_examples]
    nn::Sequential mlp(nn::Linear(4, 8), nn::Functional(tapegrad::tanh, "Tanh"), nn::Linear(8, 2));
    CHECK(mlp(ones({3, 4})).shape() == Shape{3, 2});
    CHECK(mlp.named_parameters()[2].first == "2.weight");
    CHECK(mlp.at<nn::Linear>(0).out_features == 8);
    mlp.push_back(tapegrad::relu);  // a function of one Tensor becomes a Functional
    CHECK(mlp.size() == 4);

    nn::ModuleList layers;
    for (int i = 0; i < 3; ++i) layers.push_back(nn::Linear(4, 4));
    CHECK(layers.named_parameters()[4].first == "2.weight");
    CHECK(layers.at<nn::Linear>(2)(ones({1, 4})).shape() == Shape{1, 4});

    nn::ModuleDict heads;
    heads.insert("tags", nn::Linear(8, 3));
    heads.insert("lm", nn::Linear(8, 10));
    CHECK(heads.at<nn::Linear>("lm").out_features == 10);
    CHECK(heads.keys() == std::vector<std::string>{"tags", "lm"});
    CHECK(heads.named_parameters()[2].first == "lm.weight");
    //! [container_examples]
}

TEST_CASE("guide: dropout", "[guide][nn]") {
    Tensor x = ones({1000});
    Generator gen(1);
    Tensor y = dropout(x, 0.5, true, gen);  // kept elements are scaled by 1 / (1 - p)
    CHECK(max(y).item() == 2.0);
    CHECK(min(y).item() == 0.0);
    CHECK(mean(y).item() == Approx(1.0).margin(0.1));
    CHECK(dropout(x, 0.5, false).same(x));  // evaluation: x itself
    nn::LSTM lstm({.input_size = 4, .hidden_size = 8, .num_layers = 2, .dropout = 0.3});
    CHECK(lstm.options.dropout == 0.3);
}

TEST_CASE("guide: nn::init", "[guide][nn][init]") {
    manual_seed(4);
    //! [init_examples]
    nn::Linear fc(4, 8);
    nn::init::xavier_uniform_(fc.weight);
    nn::init::zeros_(fc.bias);
    CHECK(sum(abs(fc.bias)).item() == 0.0);
    CHECK(max(abs(fc.weight)).item() <= std::sqrt(6.0 / (4 + 8)));
    nn::LSTM lstm({.input_size = 4, .hidden_size = 8});
    Tensor w_hh = nn::init::orthogonal_(lstm.parameter("weight_hh_l0"));  // [32, 8]
    Tensor identity = nn::init::eye_(zeros({8, 8}));
    CHECK(max(abs(matmul(transpose(w_hh), w_hh) - identity)).item() < 1e-5);
    //! [init_examples]
    nn::init::kaiming_uniform_(fc.weight, {.a = std::sqrt(5.0)});
    CHECK(max(abs(fc.weight)).item() <= 1.0 / std::sqrt(4.0));
    nn::init::normal_(fc.weight, 0.0, 0.02);
    nn::init::constant_(fc.bias, 0.1);
    CHECK(fc.bias.at(1) == Approx(0.1));
    CHECK(nn::init::calculate_gain("tanh") == Approx(5.0 / 3.0));
}

TEST_CASE("guide: an optimizer step, with clipping", "[guide][optim]") {
    manual_seed(0);
    //! [optim_step]
    nn::Linear model(3, 1);
    Tensor x = randn({16, 3});
    Tensor y = sum(x, 1, true);  // the target: the sum of the features
    nn::Adam opt(model.parameters(), {.lr = 0.05});
    double first = 0, last = 0;
    for (int step = 0; step < 200; ++step) {
        Tape tape;
        Tensor loss = mse_loss(model(x), y);
        tape.backward(loss);
        nn::clip_grad_norm(model.parameters(), 1.0);
        opt.step();
        opt.zero_grad();
        if (step == 0) first = loss.item();
        last = loss.item();
    }
    CHECK(last < first / 100);
    //! [optim_step]
    CHECK(opt.steps() == 200);

    Tape tape;
    tape.backward(mse_loss(model(x), y * 3.0));
    nn::clip_grad_value(model.parameters(), 0.5);
    CHECK(max(abs(model.weight.grad())).item() <= 0.5);
    model.zero_grad();
    CHECK_FALSE(model.weight.has_grad());
}

TEST_CASE("guide: optimizers, options and parameter groups", "[guide][optim]") {
    nn::Linear model(3, 1);
    nn::SGD sgd(model.parameters(), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    nn::Adam adam(model.parameters(), {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.98, .weight_decay = 1e-5});
    nn::AdamW adamw(model.parameters(), {.lr = 3e-3});
    nn::RMSprop rmsprop(model.parameters(), {.lr = 0.01, .alpha = 0.9});
    nn::Adagrad adagrad(model.parameters(), {.lr = 0.1});
    CHECK(sgd.lr() == 0.1);
    CHECK(adam.options.beta2 == 0.98);
    CHECK(adamw.options.weight_decay == 1e-2);
    CHECK(rmsprop.type_name() == "RMSprop");
    CHECK(adagrad.lr() == 0.1);

    //! [param_groups]
    nn::Linear body(3, 4), head(4, 1);
    nn::SGD opt({{.params = body.parameters(), .lr = 0.01}, {.params = head.parameters()}}, {.lr = 0.1, .momentum = 0.9});
    CHECK(opt.group_lr(0) == 0.01);
    CHECK(opt.group_lr(1) == 0.1);
    CHECK(opt.group_options(0).momentum == 0.9);
    opt.set_group_lr(1, 0.05);
    CHECK(opt.param_groups()[1].lr == 0.05);
    opt.set_lr(0.02);  // every group
    CHECK(opt.group_lr(0) == 0.02);
    CHECK(opt.group_lr(1) == 0.02);
    //! [param_groups]
}

TEST_CASE("guide: learning-rate schedulers", "[guide][scheduler]") {
    nn::Linear model(2, 1);
    //! [schedulers]
    nn::SGD opt(model.parameters(), {.lr = 0.1});
    nn::StepLR step_lr(opt, {.step_size = 10, .gamma = 0.5});
    for (int epoch = 0; epoch < 10; ++epoch) step_lr.step();  // once per epoch, after its updates
    CHECK(opt.lr() == Approx(0.05));
    CHECK(step_lr.last_lr()[0] == Approx(0.05));

    nn::Adam adam(model.parameters(), {.lr = 1e-3});
    nn::LinearLR warmup(adam, {.start_factor = 0.1, .total_iters = 5});
    nn::CosineAnnealingLR cosine(adam, {.T_max = 95, .eta_min = 1e-5});
    nn::SequentialLR schedule(adam, {&warmup, &cosine}, {5});
    CHECK(adam.lr() == Approx(1e-4));
    for (int epoch = 0; epoch < 5; ++epoch) schedule.step();
    CHECK(adam.lr() == Approx(1e-3));
    CHECK(cosine.lr_at(95, 0) == Approx(1e-5));

    nn::SGD sgd(model.parameters(), {.lr = 0.1});
    nn::ReduceLROnPlateau plateau(sgd, {.factor = 0.5, .patience = 2});
    for (double val_loss : {1.0, 0.9, 0.9, 0.9, 0.9}) plateau.step(val_loss);
    CHECK(sgd.lr() == Approx(0.05));
    //! [schedulers]
}

TEST_CASE("guide: save and load, model and optimizer", "[guide][serialize]") {
    manual_seed(5);
    Tagger model;
    nn::Adam opt(model.parameters());
    const std::string path = scratch("tagger.npz").string();
    nn::save(model, path);
    Tagger restored;
    nn::load(restored, path);
    CHECK(test::max_abs_diff(test::flat(restored), test::flat(model)) == 0.0);

    xt::xarray<std::int64_t> ids = {{1, 2}, {3, 4}}, targets = {{2, 1}, {0, 1}};
    {
        Tape tape;
        tape.backward(cross_entropy(model.forward(ids), targets));
        opt.step();
    }
    const std::string both = scratch("tagger_and_adam.npz").string();
    nn::save(model, opt, both);
    nn::Adam opt2(restored.parameters());
    nn::load(restored, opt2, both);
    CHECK(opt2.steps() == 1);
    CHECK(test::max_abs_diff(test::flat(restored), test::flat(model)) == 0.0);
}

TEST_CASE("guide: non-strict and prefix loading, checkpoints", "[guide][serialize]") {
    manual_seed(6);
    Tagger model;
    const std::string path = scratch("tagger_parts.npz").string();
    nn::save(model, path);

    Encoder encoder;
    nn::LoadReport report = nn::load(encoder, path, {.strict = false});
    CHECK(report.loaded.size() == 5);
    CHECK(report.missing_keys.empty());
    CHECK(report.unexpected_keys == std::vector<std::string>{"scale", "head.weight", "head.bias"});

    nn::GRU gru({.input_size = 4, .hidden_size = 8});
    nn::LoadReport part = nn::load(gru, path, {.prefix = "rnn."});
    CHECK(part.loaded.size() == 4);
    CHECK(test::max_abs_diff(gru.parameter("weight_hh_l0"), model.parameter("rnn.weight_hh_l0")) == 0.0);

    nn::Adam opt(model.parameters());
    Generator gen(7);
    const std::string ckpt = scratch("tagger_ckpt.npz").string();
    nn::save_checkpoint(ckpt, model, opt, 100, gen, {}, {{"hidden_size", "8"}});
    Tagger resumed;
    nn::Adam resumed_opt(resumed.parameters());
    Generator resumed_gen;
    nn::CheckpointInfo info = nn::load_checkpoint(ckpt, resumed, resumed_opt, resumed_gen);
    CHECK(info.step == 100);
    CHECK(info.metadata.at("hidden_size") == "8");
    CHECK(resumed_gen.state() == gen.state());
    CHECK(test::max_abs_diff(test::flat(resumed), test::flat(model)) == 0.0);
}

TEST_CASE("guide: seeds and generators", "[guide][random]") {
    manual_seed(42);
    Tensor a = randn({3});
    manual_seed(42);
    Tensor b = randn({3});
    CHECK(test::max_abs_diff(a, b) == 0.0);

    Generator gen(7);
    Tensor c = rand({3}, gen);
    Generator again(7);
    CHECK(rand({3}, again).at(2) == c.at(2));
    CHECK(randn({2, 2}, gen, f64).dtype() == f64);
    CHECK(gen.randint(10) < 10);
    const std::string saved = gen.state();
    const double next = gen.uniform();
    gen.set_state(saved);
    CHECK(gen.uniform() == next);

    manual_seed(3);
    nn::Linear first(4, 2);  // parameters come from the thread's default generator
    manual_seed(3);
    nn::Linear second(4, 2);
    CHECK(test::max_abs_diff(first.weight, second.weight) == 0.0);
}

TEST_CASE("guide: gradcheck and custom ops", "[guide][gradcheck]") {
    manual_seed(8);
    Tensor x = randn({2, 3}, f64);
    Tensor w = randn({4, 3}, f64);
    GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return tanh(linear(in[0], in[1])); }, {x, w});
    CHECK(r.ok);

    nn::GRU gru({.input_size = 3, .hidden_size = 2});
    gru.to(f64);
    Tensor xs = randn({4, 2, 3}, f64);
    CHECK(nn::gradcheck_module(gru, [&] { return sum(gru(xs).output); }));

    Tensor v = Tensor::of({1.0, -2.0}, f64, true);
    Tape tape;
    tape.backward(sum(square(v)));
    CHECK(v.grad().at(1) == -4.0);
    CHECK(gradcheck([](const std::vector<Tensor>& in) { return square(in[0]); }, {v.detach()}));
}

TEST_CASE("guide: anomaly detection", "[guide][anomaly]") {
    Tensor x = Tensor::of({1.0, 0.0}, f64, true);
    Tape tape;
    DetectAnomaly anomaly;
    REQUIRE_THROWS_AS(log(x), AnomalyError);
    REQUIRE_THROWS_WITH(log(x), Contains("'log' produced -inf"));
}

TEST_CASE("guide: sampling", "[guide][sample]") {
    Generator gen(0);
    Tensor logits = Tensor::of({0.1, 2.0, -1.0, 0.5});
    CHECK(nn::sample_logits(logits, {.greedy = true}, gen) == 1);
    std::int64_t id = nn::sample_logits(logits, {.temperature = 0.8, .top_k = 2}, gen);
    CHECK((id == 1 || id == 3));

    nn::Embedding embed(5, 4);
    nn::GRUCell cell(4, 8);
    nn::Linear head(8, 5);
    nn::SampleStepFn step = [&](std::int64_t token, Tensor& h) {
        h = cell(embed(xt::xarray<std::int64_t>{token}), h);  // [1, 8]
        return head(h);                                       // logits [1, V]
    };
    Tensor h;
    std::vector<std::int64_t> text = nn::sample(step, h, {0}, {.length = 10, .temperature = 0.8}, gen);
    CHECK(text.size() == 10);
    CHECK(h.shape() == Shape{1, 8});
}

TEST_CASE("guide: truncated BPTT", "[guide][tbptt]") {
    manual_seed(9);
    nn::GRU gru({.input_size = 1, .hidden_size = 8});
    nn::Linear head(8, 1);
    Tensor x = randn({40, 2, 1});  // [T, B, 1]
    Tensor y = x * 0.5;
    std::vector<Tensor> params = gru.parameters();
    for (const Tensor& p : head.parameters()) params.push_back(p);
    nn::Adam opt(params, {.lr = 0.01});

    // By hand: a tape per chunk, the state carried forward detached.
    Tensor h;
    for (long start = 0; start < 40; start += 10) {
        Tape tape;
        nn::GRUResult r = gru(slice(x, 0, start, start + 10), h);
        Tensor loss = mse_loss(head(r.output), slice(y, 0, start, start + 10));
        tape.backward(loss);
        opt.step();
        opt.zero_grad();
        h = r.h_n.detach();
    }
    CHECK(h.shape() == Shape{1, 2, 8});
    CHECK_FALSE(h.requires_grad());

    // The same with nn::tbptt, here updating every 10 steps through a window of 20.
    nn::TbpttResult res = nn::tbptt(40, Tensor(), {.k1 = 10, .k2 = 20},
        [&](const nn::TbpttSpan& span, const Tensor& state) {
            const long b = static_cast<long>(span.begin), e = static_cast<long>(span.end);
            nn::GRUResult r = gru(slice(x, 0, b, e), state);
            return nn::TbpttOut{mse_loss(head(r.output), slice(y, 0, b, e)), r.h_n};
        },
        [&](const nn::TbpttUpdate&) {
            opt.step();
            opt.zero_grad();
        });
    CHECK(res.losses.size() == 4);
    CHECK(res.state.shape() == Shape{1, 2, 8});
}

TEST_CASE("guide: padded batches and sequence heads", "[guide][sequence]") {
    nn::PaddedBatch batch = nn::pad_sequences({{4, 2, 7}, {5}});
    CHECK(batch.ids.shape(0) == 3);  // [T, B]
    CHECK(batch.ids.shape(1) == 2);
    CHECK(batch.lengths == std::vector<std::int64_t>{3, 1});
    CHECK(batch.mask.at(3) == 0.0);  // t = 1, b = 1 is padding
    nn::Embedding embed(8, 4);
    nn::GRU gru({.input_size = 4, .hidden_size = 6});
    nn::GRUResult r = gru(embed(batch.ids), Tensor(), batch.lengths);
    Tensor last = nn::last_step(r.output, batch.lengths);  // [B, H]: each row at its own last step
    CHECK(test::max_abs_diff(last, select(r.h_n, 0, 0)) == 0.0);
    CHECK(nn::masked_mean(r.output, batch.lengths).shape() == Shape{2, 6});
}

TEST_CASE("guide: one recurrent interface, the layer picked at run time", "[guide][nn][rnn]") {
    //! [recurrent_interface]
    std::unique_ptr<nn::RecurrentLayer> rnn = nn::make_recurrent("lstm", {.input_size = 4, .hidden_size = 8});
    Tensor x = randn({5, 3, 4});
    nn::RecurrentResult r = rnn->forward(x, nn::RecurrentState{});  // zero state
    CHECK(r.state.c.defined());                                     // (h, c) for an LSTM
    nn::RecurrentResult next = rnn->forward(x, r.state.detach());
    CHECK(next.output.shape() == Shape{5, 3, 8});
    Tensor packed = rnn->pack_state(next.state);  // one Tensor, as nn::tbptt and nn::sample carry
    CHECK(packed.shape() == Shape{2, 3, 8});
    CHECK(rnn->unpack_state(packed).c.shape() == Shape{1, 3, 8});
    //! [recurrent_interface]
}

TEST_CASE("guide: argmax, topk, sort, comparisons and bool masks", "[guide][index]") {
    Tensor logits = Tensor::of({{0.1, 2.0, 0.5}, {1.5, 0.2, 0.3}}, f64);  // [B, V]
    LongTensor targets{1, 2};
    LongTensor pred = argmax(logits, -1);
    CHECK(pred.to_vector() == std::vector<std::int64_t>{1, 0});
    BoolTensor hit = eq(pred, targets);
    CHECK(count(hit) == 1);
    auto [top, top_ids] = topk(logits, 2, -1);
    CHECK(top_ids.at({0, 1}) == 2);
    CHECK(top.at(1) == 0.5);
    auto [sorted, order] = sort(logits, -1, true);
    CHECK(order.select(0, 1).to_vector() == std::vector<std::int64_t>{0, 2, 1});
    Tensor hidden = masked_fill(logits, lt(logits, 0.4), -1e9);
    CHECK(hidden.at(0) == -1e9);
    CHECK(mean(hit.to(f64)).item() == 0.5);
    LongTensor ids = LongTensor::of({{3, 1}, {0, 2}});
    CHECK(ids.reshape({-1}).at(3) == 2);
    nn::Embedding embed(4, 5);
    CHECK(embed(ids).shape() == Shape{2, 2, 5});
    CHECK(cross_entropy(logits, targets).item() > 0);
}
