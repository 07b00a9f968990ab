// Errors, not crashes, in nn/: layers, heads, sequence utilities, optimizers, clipping, sampling,
// truncated BPTT, metrics and loading refuse bad input with a tapegrad::Error subclass whose message
// names the layer (or function) and the shapes, values or names involved.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
namespace fs = std::filesystem;

namespace {
using Ids = xt::xarray<std::int64_t>;
}  // namespace

// ---- Linear and Embedding -----------------------------------------------------------------------
TEST_CASE("errors: Linear and Embedding name the layer and the offending shape or id", "[errors][nn]") {
    nn::Linear lin(3, 2);
    REQUIRE_THROWS_MATCHES(lin(zeros({4, 5})), ShapeError, WhatContains({"Linear(3, 2)", "[4, 5]", "size 3"}));
    REQUIRE_THROWS_MATCHES(lin(Tensor::scalar(1.0)), ShapeError, WhatContains({"Linear(3, 2)", "[]"}));
    REQUIRE_THROWS_MATCHES(lin(Tensor()), ShapeError, WhatContains({"Linear(3, 2)", "undefined"}));
    REQUIRE_THROWS_MATCHES(lin(zeros({4, 3}, f64)), DTypeError, WhatContains({"Linear(3, 2)", "float64", "float32"}));
    REQUIRE_THROWS_MATCHES(nn::Linear(0, 2), ValueError, WhatContains({"Linear", "in_features 0"}));
    CHECK(lin(zeros({0, 3})).shape() == Shape{0, 2});  // no rows is fine

    nn::Embedding emb(5, 4);
    REQUIRE_THROWS_MATCHES(emb(Ids{1, 5}), ValueError, WhatContains({"Embedding(5, 4)", "id 5", "position [1]"}));
    REQUIRE_THROWS_MATCHES(emb(Ids{{0, -1}}), ValueError, WhatContains({"Embedding(5, 4)", "id -1", "[0, 1]"}));
    REQUIRE_THROWS_MATCHES(nn::Embedding(5, 4, 5), ValueError, WhatContains({"Embedding(5, 4)", "padding_idx 5"}));
    nn::Embedding padded(5, 4, 0);
    REQUIRE_THROWS_MATCHES(padded(Ids{0, 7}), ValueError, WhatContains({"Embedding(5, 4)", "id 7"}));
    CHECK(emb(Ids::from_shape({0, 2})).shape() == Shape{0, 2, 4});
}

// ---- cells --------------------------------------------------------------------------------------
TEST_CASE("errors: RNN, LSTM and GRU cells check input and state shapes and dtypes", "[errors][nn]") {
    nn::RNNCell rnn(3, 4);
    nn::LSTMCell lstm(3, 4);
    nn::GRUCell gru(3, 4);
    REQUIRE_THROWS_MATCHES(rnn(zeros({2, 5})), ShapeError, WhatContains({"RNNCell", "[batch, 3]", "[2, 5]"}));
    REQUIRE_THROWS_MATCHES(lstm(zeros({2, 3, 1})), ShapeError, WhatContains({"LSTMCell", "[batch, 3]", "[2, 3, 1]"}));
    REQUIRE_THROWS_MATCHES(gru(zeros({3})), ShapeError, WhatContains({"GRUCell", "[batch, 3]", "[3]"}));
    REQUIRE_THROWS_MATCHES(rnn(zeros({2, 3}), zeros({2, 5})), ShapeError,
                           WhatContains({"RNNCell", "hidden state", "[2, 4]", "[2, 5]"}));
    REQUIRE_THROWS_MATCHES(lstm(zeros({2, 3}), zeros({3, 4})), ShapeError,
                           WhatContains({"LSTMCell", "hidden state h", "[2, 4]", "[3, 4]"}));
    REQUIRE_THROWS_MATCHES(lstm(zeros({2, 3}), zeros({2, 4}), zeros({2, 5})), ShapeError,
                           WhatContains({"LSTMCell", "cell state c", "[2, 5]"}));
    REQUIRE_THROWS_MATCHES(gru(zeros({2, 3}), zeros({1, 4})), ShapeError, WhatContains({"GRUCell", "[1, 4]"}));
    for (const auto* name : {"RNNCell", "LSTMCell", "GRUCell"}) {
        INFO(name);
        const std::string n = name;
        auto run = [&](const Tensor& x, const Tensor& h) {
            if (n == "RNNCell") return rnn(x, h);
            if (n == "LSTMCell") return lstm(x, h).h;
            return gru(x, h);
        };
        REQUIRE_THROWS_MATCHES(run(zeros({2, 3}, f64), Tensor()), DTypeError,
                               WhatContains({name, "input is float64", "float32"}));
        REQUIRE_THROWS_MATCHES(run(zeros({2, 3}), zeros({2, 4}, f64)), DTypeError,
                               WhatContains({name, "hidden state", "float64"}));
        // A batch of zero rows is fine, as in PyTorch.
        CHECK(run(zeros({0, 3}), Tensor()).shape() == Shape{0, 4});
    }
    REQUIRE_THROWS_MATCHES(nn::LSTMCell(0, 4), ValueError, WhatContains({"LSTMCell", "input_size 0"}));
}

// ---- layers -------------------------------------------------------------------------------------
TEST_CASE("errors: RNN, LSTM and GRU layers check input, states and lengths", "[errors][nn]") {
    nn::RNN rnn({.input_size = 3, .hidden_size = 4, .num_layers = 2});
    nn::LSTM lstm({.input_size = 3, .hidden_size = 4, .bidirectional = true});
    nn::GRU gru({.input_size = 3, .hidden_size = 4, .batch_first = true});
    const Tensor x = zeros({5, 2, 3});
    REQUIRE_THROWS_MATCHES(rnn(zeros({5, 2, 6})), ShapeError,
                           WhatContains({"RNN", "input_size", "Expected 3, got 6", "[5, 2, 6]"}));
    REQUIRE_THROWS_MATCHES(lstm(zeros({2, 3})), ShapeError, WhatContains({"LSTM", "3 axes", "[2, 3]"}));
    REQUIRE_THROWS_MATCHES(gru(zeros({2, 5, 4})), ShapeError, WhatContains({"GRU", "Expected 3, got 4"}));
    REQUIRE_THROWS_MATCHES(gru(Tensor()), ShapeError, WhatContains({"GRU", "[batch, time, features]", "undefined"}));
    REQUIRE_THROWS_MATCHES(rnn(zeros({5, 2, 3}, f64)), DTypeError, WhatContains({"RNN", "float64", "float32"}));
    // Initial states: [num_layers * num_directions, B, H].
    REQUIRE_THROWS_MATCHES(rnn(x, zeros({1, 2, 4})), ShapeError, WhatContains({"RNN", "h0", "[2, 2, 4]", "[1, 2, 4]"}));
    REQUIRE_THROWS_MATCHES(lstm(x, zeros({2, 2, 4}), zeros({1, 2, 4})), ShapeError,
                           WhatContains({"LSTM", "c0", "[2, 2, 4]", "[1, 2, 4]"}));
    REQUIRE_THROWS_MATCHES(lstm(x, zeros({2, 2, 4}, f64)), DTypeError, WhatContains({"LSTM", "h0", "float64"}));
    // Sequences of length 0 and empty batches.
    REQUIRE_THROWS_MATCHES(rnn(zeros({0, 2, 3})), ShapeError, WhatContains({"RNN", "sequence is empty", "[0, 2, 3]"}));
    REQUIRE_THROWS_MATCHES(gru(zeros({2, 0, 3})), ShapeError, WhatContains({"GRU", "sequence is empty", "[2, 0, 3]"}));
    REQUIRE_THROWS_MATCHES(lstm(zeros({5, 0, 3})), ShapeError, WhatContains({"LSTM", "batch is empty"}));
    // Lengths: one per batch row, each in [1, T].
    REQUIRE_THROWS_MATCHES(rnn(x, Tensor(), {5}), ShapeError, WhatContains({"RNN", "1 lengths", "batch of 2"}));
    REQUIRE_THROWS_MATCHES(rnn(x, Tensor(), {5, 6}), ValueError, WhatContains({"RNN", "lengths[1] = 6", "[1, 5]"}));
    REQUIRE_THROWS_MATCHES(lstm(x, Tensor(), Tensor(), {0, 5}), ValueError, WhatContains({"LSTM", "lengths[0] = 0"}));
    REQUIRE_THROWS_MATCHES(gru(zeros({2, 5, 3}), Tensor(), {3, -1}), ValueError,
                           WhatContains({"GRU", "lengths[1] = -1"}));
}

TEST_CASE("errors: lengths need no order: an unsorted batch equals each sequence run alone", "[errors][nn]") {
    // Unlike PyTorch's pack_padded_sequence (enforce_sorted), the layers mask padded steps, so the
    // order of lengths does not matter. Checked for the reverse direction too, which starts at each
    // sequence's own last step.
    manual_seed(3);
    nn::GRU gru({.input_size = 2, .hidden_size = 3, .bidirectional = true});
    gru.to(f64);
    const Tensor x = randn({4, 3, 2}, f64);
    const std::vector<std::int64_t> lengths{2, 4, 1};
    const nn::GRUResult batch = gru(x, Tensor(), lengths);
    for (std::size_t b = 0; b < 3; ++b) {
        INFO("sequence " << b);
        const long len = static_cast<long>(lengths[b]);
        const Tensor alone = slice(slice(x, 1, static_cast<long>(b), static_cast<long>(b) + 1), 0, 0, len);
        const nn::GRUResult r = gru(alone);
        const Tensor mine = slice(slice(batch.output, 1, static_cast<long>(b), static_cast<long>(b) + 1), 0, 0, len);
        const std::vector<double> want = values(r.output), got = values(mine);
        REQUIRE(want.size() == got.size());
        for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-12));
        const std::vector<double> hn = values(slice(batch.h_n, 1, static_cast<long>(b), static_cast<long>(b) + 1));
        const std::vector<double> hn_alone = values(r.h_n);
        for (std::size_t i = 0; i < hn.size(); ++i) CHECK(hn[i] == Approx(hn_alone[i]).margin(1e-12));
    }
}

// ---- heads and sequence utilities ---------------------------------------------------------------
TEST_CASE("errors: heads and sequence utilities check lengths and sequences", "[errors][nn]") {
    const Tensor out = zeros({3, 2, 4});
    REQUIRE_THROWS_MATCHES(nn::last_step(out, {1, 4}), ValueError, WhatContains({"last_step", "lengths[1] = 4", "[1, 3]"}));
    REQUIRE_THROWS_MATCHES(nn::masked_mean(out, {0, 1}), ValueError, WhatContains({"masked_mean", "lengths[0] = 0"}));
    REQUIRE_THROWS_MATCHES(nn::masked_max(out, {1}), ShapeError, WhatContains({"masked_max", "1 lengths", "batch of 2"}));
    REQUIRE_THROWS_MATCHES(nn::last_step(zeros({0, 2, 4})), ShapeError, WhatContains({"last_step", "empty"}));
    REQUIRE_THROWS_MATCHES(nn::masked_mean(zeros({3, 4})), ShapeError, WhatContains({"masked_mean", "[3, 4]"}));
    REQUIRE_THROWS_MATCHES(nn::sequence_mask({1, 4}, 3, 2), ValueError,
                           WhatContains({"sequence_mask", "lengths[1] = 4", "[0, 3]"}));
    REQUIRE_THROWS_MATCHES(nn::sequence_mask({-1, 2}, 3, 2), ValueError, WhatContains({"sequence_mask", "-1"}));
    REQUIRE_THROWS_MATCHES(nn::sequence_mask({1}, 3, 2), ShapeError, WhatContains({"sequence_mask", "1 lengths"}));
    CHECK(nn::sequence_mask({0, 3}, 3, 2).at(0) == 0.0);  // a length of 0 is a fully masked column

    nn::RNNDecoder dec({.latent_size = 2, .input_size = 3, .hidden_size = 4, .output_size = 3});
    REQUIRE_THROWS_MATCHES(dec(zeros({2, 2}), 0), ValueError, WhatContains({"RNNDecoder", "steps"}));
    REQUIRE_THROWS_MATCHES(dec(zeros({2, 5}), 2), ShapeError, WhatContains({"RNNDecoder", "[batch, 2]", "[2, 5]"}));
    REQUIRE_THROWS_MATCHES(dec(zeros({2, 2}), 2, zeros({3, 2, 3})), ShapeError,
                           WhatContains({"RNNDecoder", "teacher", "[2, 2, 3]", "[3, 2, 3]"}));
    REQUIRE_THROWS_MATCHES(dec(zeros({2, 2}, f64), 2), DTypeError, WhatContains({"Linear(2, 4)", "float64"}));

    REQUIRE_THROWS_MATCHES(nn::pad_sequences({{1, 2}, {}}), ValueError,
                           WhatContains({"pad_sequences", "sequence 1 of 2 is empty"}));
    REQUIRE_THROWS_MATCHES(nn::pad_sequences({}), ValueError, WhatContains({"pad_sequences", "no sequences"}));
    Generator gen(1);
    REQUIRE_THROWS_MATCHES(nn::bucket_by_length({3, 1}, 0, gen), ValueError, WhatContains({"bucket_by_length", "0"}));
    REQUIRE_THROWS_MATCHES(nn::bucket_by_length({}, 2, gen), ValueError, WhatContains({"bucket_by_length"}));
}

// ---- optimizers and clipping --------------------------------------------------------------------
TEST_CASE("errors: optimizers refuse a parameter given twice, non-leaves and bad options", "[errors][nn]") {
    nn::Linear lin(3, 2);
    REQUIRE_THROWS_MATCHES(nn::SGD({lin.weight, lin.bias, lin.weight}), ValueError,
                           WhatContains({"parameter 2 ('weight')", "same tensor as parameter 0 ('weight')"}));
    // Two handles to one tensor are the same parameter.
    Tensor alias = lin.parameters()[1];
    REQUIRE_THROWS_MATCHES(nn::Adam({lin.bias, alias}), ValueError, WhatContains({"parameter 1 ('bias')", "same tensor"}));
    {
        Tape tape;
        Tensor y = lin.weight * 2.0;
        REQUIRE_THROWS_MATCHES(nn::Adam({lin.bias, y}), ValueError, WhatContains({"parameter 1", "not a leaf"}));
    }
    REQUIRE_THROWS_MATCHES(nn::SGD({Tensor()}), ValueError, WhatContains({"parameter 0", "undefined"}));
    REQUIRE_THROWS_MATCHES(nn::SGD(lin.parameters(), {.lr = NAN}), ValueError, WhatContains({"learning rate nan"}));
    REQUIRE_THROWS_MATCHES(nn::Adam(lin.parameters(), {.beta1 = 1.0}), ValueError, WhatContains({"Adam", "beta1"}));
    nn::SGD ok(lin.parameters(), {.lr = 0.1});
    REQUIRE_THROWS_MATCHES(ok.set_lr(-1), ValueError, WhatContains({"SGD", "learning rate -1"}));
}

TEST_CASE("errors: an optimizer state that does not fit is refused with every problem", "[errors][nn]") {
    nn::Linear a(3, 2), b(3, 4);
    nn::Adam oa(a.parameters()), ob(b.parameters());
    for (nn::Linear* m : {&a, &b}) {
        Tape tape;
        tape.backward(sum((*m)(ones({1, 3}))));
    }
    oa.step();
    ob.step();
    REQUIRE_THROWS_MATCHES(oa.load_state_dict(ob.state_dict()), ValueError,
                           WhatContains({"Adam: load_state_dict", "'0.exp_avg' is float32 [4, 3]",
                                         "parameter 0 ('weight') is float32 [2, 3]"}));
    nn::NamedTensors state = oa.state_dict();
    for (auto& [name, t] : state)
        if (name == "step") t = Tensor::scalar(-1.0, f64);
    REQUIRE_THROWS_MATCHES(oa.load_state_dict(state), ValueError, WhatContains({"'step' is -1, not a step count"}));
    for (auto& [name, t] : state)
        if (name == "step") t = Tensor::scalar(1.0, f64);
        else if (name == "0.step") t = Tensor::scalar(NAN, f64);
    REQUIRE_THROWS_MATCHES(oa.load_state_dict(state), ValueError, WhatContains({"'0.step' is nan"}));
    CHECK(oa.steps() == 1);  // nothing changed
}

TEST_CASE("errors: clipping a non-finite gradient names the parameter", "[errors][nn]") {
    nn::Linear lin(3, 2);
    {
        Tape tape;
        tape.backward(sum(lin(Tensor::of({{1.0, NAN, 0.0}}))));
    }
    REQUIRE_THROWS_MATCHES(nn::clip_grad_norm(lin.parameters(), 1.0), ValueError,
                           WhatContains({"clip_grad_norm", "nan", "parameter 0 ('weight')", "[2, 3]", "element 1"}));
    const std::vector<double> before = values(lin.weight.grad());
    // Without the error, the norm is returned and the gradients are left as they are.
    CHECK(std::isnan(nn::clip_grad_norm(lin.parameters(), 1.0, false)));
    const std::vector<double> after = values(lin.weight.grad());
    for (std::size_t i = 0; i < before.size(); ++i)
        CHECK((before[i] == after[i] || (std::isnan(before[i]) && std::isnan(after[i]))));
    lin.zero_grad();
    {
        Tape tape;
        tape.backward(sum(lin(Tensor::of({{1.0, INFINITY, 0.0}}))));
    }
    REQUIRE_THROWS_MATCHES(nn::clip_grad_norm(lin.parameters(), 1.0), ValueError,
                           WhatContains({"clip_grad_norm", "inf", "'weight'"}));
    REQUIRE_THROWS_MATCHES(nn::clip_grad_norm(lin.parameters(), NAN), ValueError, WhatContains({"max_norm nan"}));
    // clip_grad_value keeps a NaN a NaN (as PyTorch's clamp) rather than turning it into -clip_value.
    lin.zero_grad();
    {
        Tape tape;
        tape.backward(sum(lin(Tensor::of({{1.0, NAN, -20.0}}))));
    }
    nn::clip_grad_value(lin.parameters(), 5.0);
    const Tensor g = lin.weight.grad();  // row j of dW is the input: [1, NaN, -20]
    CHECK(g.at(0) == 1.0);
    CHECK(std::isnan(g.at(1)));
    CHECK(g.at(2) == -5.0);
    REQUIRE_THROWS_MATCHES(nn::clip_grad_value(lin.parameters(), -1), ValueError, WhatContains({"clip_value -1"}));
}

// ---- sampling -----------------------------------------------------------------------------------
TEST_CASE("errors: sampling refuses NaN logits and ids outside the vocabulary", "[errors][nn]") {
    Generator gen(1);
    REQUIRE_THROWS_MATCHES(nn::sample_logits(Tensor::of({0.5, NAN, 0.25}), {.length = 1}, gen), ValueError,
                           WhatContains({"sample_logits", "position 1", "nan"}));
    REQUIRE_THROWS_MATCHES(nn::sample_logits(Tensor::of({0.5, -INFINITY}), {.length = 1}, gen), ValueError,
                           WhatContains({"sample_logits", "position 1", "-inf"}));
    // Greedy decoding does not get past a NaN either.
    REQUIRE_THROWS_MATCHES(nn::sample_logits(Tensor::of({NAN, 0.0}), {.greedy = true}, gen), ValueError,
                           WhatContains({"sample_logits", "position 0"}));
    REQUIRE_THROWS_MATCHES(nn::sample_logits(zeros({0}), {}, gen), ShapeError, WhatContains({"sample_logits", "[0]"}));
    REQUIRE_THROWS_MATCHES(nn::sample_logits(zeros({2, 3}), {}, gen), ShapeError, WhatContains({"[V] or [1, V]"}));
    REQUIRE_THROWS_MATCHES(nn::sample_logits(zeros({3}), {.temperature = 0}, gen), ValueError,
                           WhatContains({"temperature", "got 0"}));
    REQUIRE_THROWS_MATCHES(nn::sample_logits(zeros({3}), {.top_k = 4}, gen), ValueError, WhatContains({"top_k 4"}));

    // A model whose step embeds the token: a priming id >= V is refused by its Embedding.
    nn::Embedding emb(5, 3);
    nn::Linear head(3, 5);
    nn::SampleStepFn step = [&](std::int64_t id, Tensor&) { return head(select(emb(Ids{id}), 0, 0)); };
    Tensor state;
    REQUIRE_THROWS_MATCHES(nn::sample(step, state, {-1}, {.length = 2}, gen), ValueError,
                           WhatContains({"sample", "priming id", "negative (-1)"}));
    REQUIRE_THROWS_MATCHES(nn::sample(step, state, {2, 7}, {.length = 2}, gen), ValueError,
                           WhatContains({"Embedding(5, 3)", "id 7"}));
    REQUIRE_THROWS_MATCHES(nn::sample(step, state, {}, {.length = 2}, gen), ValueError,
                           WhatContains({"sample", "priming sequence is empty"}));
    // A model that starts producing NaN: the message says which generated id failed.
    int calls = 0;
    nn::SampleStepFn nan_after_one = [&](std::int64_t, Tensor&) {
        return ++calls > 1 ? Tensor::of({0.0, NAN, 0.0}) : Tensor::of({0.0, 1.0, 0.0});
    };
    REQUIRE_THROWS_MATCHES(nn::sample(nan_after_one, state, {0}, {.length = 3}, gen), ValueError,
                           WhatContains({"sample: generating id 1 of 3", "position 1", "nan"}));
    CHECK(nn::sample(step, state, {1}, {.length = 0}, gen).empty());  // nothing asked, nothing drawn
}

// ---- truncated BPTT and metrics -----------------------------------------------------------------
TEST_CASE("errors: tbptt and the metrics check their arguments", "[errors][nn]") {
    auto none = [](const nn::TbpttSpan&, const Tensor& s) { return nn::TbpttOut{Tensor(), s}; };
    REQUIRE_THROWS_MATCHES(nn::tbptt(0, Tensor(), {.k1 = 1}, none), ValueError, WhatContains({"tbptt", "total_steps is 0"}));
    REQUIRE_THROWS_MATCHES(nn::tbptt(4, Tensor(), {.k1 = 0}, none), ValueError, WhatContains({"tbptt", "k1"}));
    REQUIRE_THROWS_MATCHES(nn::tbptt(4, Tensor(), {.k1 = 2, .k2 = 1}, none), ValueError,
                           WhatContains({"tbptt", "k2 (1", "k1 (2"}));
    REQUIRE_THROWS_MATCHES(nn::tbptt(4, Tensor(), {.k1 = 2, .reset_at = {4}}, none), ValueError,
                           WhatContains({"tbptt", "reset_at step 4", "4 steps"}));
    Tensor w = Tensor::of({1.0, 2.0}, f64, true);
    auto vector_loss = [&](const nn::TbpttSpan&, const Tensor&) { return nn::TbpttOut{w * 2.0, w}; };
    REQUIRE_THROWS_MATCHES(nn::tbptt(4, Tensor(), {.k1 = 2}, vector_loss), ShapeError,
                           WhatContains({"tbptt", "update 0", "[0, 2)", "[2]", "one element"}));

    REQUIRE_THROWS_MATCHES(nn::perplexity(NAN), ValueError, WhatContains({"perplexity", "nan"}));
    REQUIRE_THROWS_MATCHES(nn::bits_per_char(-1), ValueError, WhatContains({"bits_per_char", "-1"}));
    const Tensor logits = zeros({2, 3});
    REQUIRE_THROWS_MATCHES(nn::masked_accuracy(logits, Ids{0, 3}), ValueError,
                           WhatContains({"masked_accuracy", "target 3", "flat position 1"}));
    REQUIRE_THROWS_MATCHES(nn::masked_accuracy(logits, Ids{0, 1, 2}), ShapeError,
                           WhatContains({"masked_accuracy", "logits [2, 3]", "targets [2]", "got [3]"}));
    REQUIRE_THROWS_MATCHES(nn::masked_accuracy(logits, Ids{0, 1}, zeros({3})), ShapeError,
                           WhatContains({"masked_accuracy", "mask", "[3]"}));
    CHECK(std::isnan(nn::masked_accuracy(logits, Ids{0, 1}, zeros({2}))));  // nothing counted: NaN, not 0
}

// ---- loading ------------------------------------------------------------------------------------
namespace {
struct Model : nn::Module {
    nn::Embedding emb;
    nn::LSTM lstm;
    nn::Linear head;
    explicit Model(std::size_t hidden) : emb(6, 3), lstm({.input_size = 3, .hidden_size = hidden}), head(hidden, 6) {
        register_module("emb", emb);
        register_module("lstm", lstm);
        register_module("head", head);
    }
    std::string type_name() const override { return "Model"; }
};
}  // namespace

TEST_CASE("errors: a state dict whose names, shapes or dtypes do not match is refused whole", "[errors][nn]") {
    Model model(4), other(5);
    const std::vector<double> before = flat(model);
    REQUIRE_THROWS_MATCHES(nn::load_state_dict(model, nn::state_dict(other)), ValueError,
                           WhatContains({"load_state_dict into Model", "'lstm.weight_hh_l0' has shape [20, 5] but the "
                                                                       "model's is [16, 4]",
                                         "'head.weight' has shape [6, 5] but the model's is [6, 4]"}));
    nn::NamedTensors state = nn::state_dict(model);
    state[0].second = state[0].second.to(f64);  // emb.weight as float64
    state[1].first = "lstm.weight_ih_l9";       // a name the model does not have
    REQUIRE_THROWS_MATCHES(nn::load_state_dict(model, state), ValueError,
                           WhatContains({"'emb.weight' is float64 but the model's is float32",
                                         "missing 'lstm.weight_ih_l0'", "unexpected 'lstm.weight_ih_l9'"}));
    CHECK(flat(model) == before);  // nothing was changed by either attempt
    REQUIRE_THROWS_MATCHES(nn::load_tensors("no_such_file.npz"), FormatError,
                           WhatContains({"load_tensors", "no_such_file.npz"}));
}

TEST_CASE("errors: a checkpoint of a different model is refused and changes nothing", "[errors][nn]") {
    manual_seed(11);
    Model small(4), other(5);
    nn::Adam os(small.parameters()), oo(other.parameters(), {.lr = 0.01});
    Generator gs(1), go(2);
    const fs::path dir = fs::temp_directory_path() / "tapegrad_test_errors";
    fs::create_directories(dir);
    const std::string path = (dir / "small.npz").string();
    nn::save_checkpoint(path, small, os, 3, gs);
    const std::vector<double> before = flat(other);
    const std::string gen_before = go.state();
    REQUIRE_THROWS_MATCHES(nn::load_checkpoint(path, other, oo, go), ValueError,
                           WhatContains({"load_checkpoint", path, "'head.weight' has shape [6, 4] but the model's is "
                                                                  "[6, 5]"}));
    CHECK(flat(other) == before);
    CHECK(go.state() == gen_before);
    CHECK(oo.lr() == 0.01);
    REQUIRE_THROWS_MATCHES(nn::load_checkpoint((dir / "missing.npz").string(), other, oo, go), FormatError,
                           WhatContains({"load_checkpoint", "missing.npz"}));
    fs::remove_all(dir);
}

TEST_CASE("errors: gradcheck_module needs a float64 module", "[errors][nn]") {
    nn::Linear lin(2, 2);
    REQUIRE_THROWS_MATCHES(nn::gradcheck_module(lin, [&] { return sum(lin(ones({1, 2}))); }), ValueError,
                           WhatContains({"gradcheck_module", "'weight'", "float32", "float64"}));
}
