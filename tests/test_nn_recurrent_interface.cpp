// nn::RecurrentLayer, the interface RNN, LSTM and GRU share: through it each layer gives exactly
// what its typed forward gives (outputs and states, with lengths, bidirectional, stacked,
// batch_first), gradients pass float64 gradcheck, one piece of code drives nn::tbptt and nn::sample
// for all three kinds, make_recurrent builds the same layer as its constructor, and a state that
// does not fit the layer is refused with the layer and the shapes named.
#include <catch2/catch.hpp>

#include <memory>
#include <type_traits>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
const nn::RecurrentKind kKinds[] = {nn::RecurrentKind::rnn, nn::RecurrentKind::lstm, nn::RecurrentKind::gru};

// The typed forward of whichever layer `layer` is, as a RecurrentResult: the reference the interface
// must reproduce. This three-way branch is what the interface spares its users.
nn::RecurrentResult typed_forward(const nn::RecurrentLayer& layer, const Tensor& x, const Tensor& h0, const Tensor& c0,
                                  const std::vector<std::int64_t>& lengths) {
    if (const auto* rnn = dynamic_cast<const nn::RNN*>(&layer)) {
        auto [out, h_n] = rnn->forward(x, h0, lengths);
        return {out, {h_n, Tensor()}};
    }
    if (const auto* lstm = dynamic_cast<const nn::LSTM*>(&layer)) {
        auto [out, h_n, c_n] = lstm->forward(x, h0, c0, lengths);
        return {out, {h_n, c_n}};
    }
    const auto& gru = dynamic_cast<const nn::GRU&>(layer);
    auto [out, h_n] = gru.forward(x, h0, lengths);
    return {out, {h_n, Tensor()}};
}

Tensor state_loss(const nn::RecurrentResult& r) {
    Tensor loss = weighted_sum(r.output, 61) + weighted_sum(r.state.h, 62);
    return r.state.c.defined() ? loss + weighted_sum(r.state.c, 63) : loss;
}

// ---- one piece of code for every kind: truncated BPTT and sampling over the interface ------------
constexpr std::size_t kIn = 3, kHidden = 4, kBatch = 2, kSteps = 12, kChunk = 4;

// Trains layer + head with nn::tbptt in chunks of kChunk steps (SGD after each), carrying the
// layer's state packed into nn::tbptt's Tensor. Returns the losses and the final state.
std::pair<std::vector<double>, nn::RecurrentState> train_with_tbptt(nn::RecurrentLayer& layer, nn::Linear& head,
                                                                   const Tensor& xs, const Tensor& ys) {
    std::vector<Tensor> params = layer.parameters();
    for (const Tensor& p : head.parameters()) params.push_back(p);
    nn::SGD opt(params, {.lr = 0.1});
    auto run = [&](const nn::TbpttSpan& span, const Tensor& packed) {
        const long b = static_cast<long>(span.begin), e = static_cast<long>(span.end);
        auto [out, state] = layer(slice(xs, 0, b, e), layer.unpack_state(packed));
        return nn::TbpttOut{mse_loss(head(out), slice(ys, 0, b, e)), layer.pack_state(state)};
    };
    auto update = [&](const nn::TbpttUpdate&) {
        opt.step();
        opt.zero_grad();
    };
    const nn::TbpttResult r = nn::tbptt(kSteps, Tensor(), {.k1 = kChunk}, run, update);
    return {r.losses, layer.unpack_state(r.state)};
}

// The same training written by hand with the layer's typed forward: the reference.
std::pair<std::vector<double>, nn::RecurrentState> train_by_hand(nn::RecurrentLayer& layer, nn::Linear& head,
                                                                const Tensor& xs, const Tensor& ys) {
    std::vector<Tensor> params = layer.parameters();
    for (const Tensor& p : head.parameters()) params.push_back(p);
    nn::SGD opt(params, {.lr = 0.1});
    std::vector<double> losses;
    Tensor h, c;
    for (std::size_t t = 0; t < kSteps; t += kChunk) {
        Tape tape;
        const long b = static_cast<long>(t), e = static_cast<long>(t + kChunk);
        nn::RecurrentResult r = typed_forward(layer, slice(xs, 0, b, e), h, c, {});
        const Tensor loss = mse_loss(head(r.output), slice(ys, 0, b, e));
        tape.backward(loss);
        opt.step();
        opt.zero_grad();
        losses.push_back(loss.item());
        h = r.state.h.detach();
        c = r.state.c.defined() ? r.state.c.detach() : Tensor();
    }
    return {losses, {h, c}};
}

// Ids drawn by nn::sample from embedding + layer + head, one token at a time, the layer's state
// carried packed in nn::sample's Tensor. `state` is left as sample leaves it.
std::vector<std::int64_t> generate(const nn::Embedding& emb, const nn::RecurrentLayer& layer, const nn::Linear& head,
                                   const std::vector<std::int64_t>& prime, Tensor& state) {
    auto step = [&](std::int64_t id, Tensor& s) {
        xt::xarray<std::int64_t> x = xt::xarray<std::int64_t>::from_shape({1, 1});  // [T = 1, B = 1]
        x(0, 0) = id;
        auto [out, next] = layer(emb(x), layer.unpack_state(s));
        s = layer.pack_state(next);
        return reshape(head(out), {-1});
    };
    Generator gen(17);
    return nn::sample(step, state, prime, {.length = 10, .temperature = 1.5}, gen);
}
}  // namespace

// A concrete layer keeps its typed call; the interface's is the overload taking a RecurrentState.
static_assert(std::is_same_v<decltype(std::declval<const nn::RNN&>()(Tensor())), nn::RNNResult>);
static_assert(std::is_same_v<decltype(std::declval<const nn::LSTM&>()(Tensor(), Tensor(), Tensor())), nn::LSTMResult>);
static_assert(std::is_same_v<decltype(std::declval<const nn::GRU&>().forward(Tensor(), Tensor())), nn::GRUResult>);
static_assert(std::is_same_v<decltype(std::declval<const nn::GRU&>()(Tensor(), nn::RecurrentState{})),
                             nn::RecurrentResult>);
static_assert(std::is_base_of_v<nn::RecurrentLayer, nn::LSTM>);

TEST_CASE("recurrent interface: every kind equals its typed forward", "[nn][recurrent_interface]") {
    for (nn::RecurrentKind kind : kKinds)
        for (bool bidirectional : {false, true})
            for (bool batch_first : {false, true})
                for (const std::vector<std::int64_t>& lengths : {std::vector<std::int64_t>{}, {5, 2, 4}}) {
                    const std::string what = fmt::format("{} bidirectional {} batch_first {} lengths {}",
                                                         nn::recurrent_kind_name(kind), bidirectional, batch_first,
                                                         lengths.size());
                    INFO(what);
                    manual_seed(3);
                    auto layer = nn::make_recurrent(kind, {.input_size = 3,
                                                           .hidden_size = 4,
                                                           .num_layers = 2,
                                                           .batch_first = batch_first,
                                                           .bidirectional = bidirectional});
                    layer->to(f64);
                    const std::size_t rows = 2 * layer->num_directions();
                    const Tensor x = seq(batch_first ? Shape{3, 5, 3} : Shape{5, 3, 3}, 21);
                    const Tensor h0 = seq({rows, 3, 4}, 22);
                    const Tensor c0 = layer->has_cell_state() ? seq({rows, 3, 4}, 23) : Tensor();

                    const nn::RecurrentResult ours = layer->forward(x, {h0, c0}, lengths);
                    const nn::RecurrentResult ref = typed_forward(*layer, x, h0, c0, lengths);
                    CHECK(ours.output.shape() == Shape{batch_first ? 3u : 5u, batch_first ? 5u : 3u, 2 * rows});
                    CHECK(max_abs_diff(ours.output, ref.output) == 0.0);
                    CHECK(max_abs_diff(ours.state.h, ref.state.h) == 0.0);
                    CHECK(ours.state.h.shape() == Shape{rows, 3, 4});
                    REQUIRE(ours.state.c.defined() == layer->has_cell_state());
                    if (ours.state.c.defined()) CHECK(max_abs_diff(ours.state.c, ref.state.c) == 0.0);

                    // The zero state, undefined or explicit, is the typed forward's default.
                    const nn::RecurrentResult zero = (*layer)(x, nn::RecurrentState{}, lengths);
                    const nn::RecurrentResult explicit_zero = (*layer)(x, layer->zero_state(3), lengths);
                    const nn::RecurrentResult typed_zero = typed_forward(*layer, x, Tensor(), Tensor(), lengths);
                    CHECK(max_abs_diff(zero.output, typed_zero.output) == 0.0);
                    CHECK(max_abs_diff(explicit_zero.output, typed_zero.output) < 1e-15);
                    CHECK(max_abs_diff(explicit_zero.state.h, typed_zero.state.h) < 1e-15);
                }
}

TEST_CASE("recurrent interface: make_recurrent builds the layer its constructor builds", "[nn][recurrent_interface]") {
    manual_seed(4);
    nn::LSTM direct({.input_size = 3, .hidden_size = 5, .num_layers = 2, .bias = false, .bidirectional = true});
    manual_seed(4);
    auto made = nn::make_recurrent("LSTM", {.input_size = 3, .hidden_size = 5, .num_layers = 2, .bias = false,
                                            .bidirectional = true});
    CHECK(made->kind() == nn::RecurrentKind::lstm);
    CHECK(made->type_name() == "LSTM");
    REQUIRE(dynamic_cast<nn::LSTM*>(made.get()) != nullptr);
    CHECK(made->summary() == direct.summary());
    const auto a = direct.named_parameters(), b = made->named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].first == b[i].first);  // weight_ih_l0, ..., weight_hh_l1_reverse: PyTorch's names
        CHECK(max_abs_diff(a[i].second, b[i].second) == 0.0);
    }

    manual_seed(5);
    nn::RNN relu({.input_size = 2, .hidden_size = 3, .nonlinearity = nn::Nonlinearity::relu, .batch_first = true});
    manual_seed(5);
    auto made_relu =
        nn::make_recurrent("rnn", {.input_size = 2, .hidden_size = 3, .nonlinearity = nn::Nonlinearity::relu,
                                   .batch_first = true});
    CHECK(made_relu->summary() == relu.summary());
    CHECK_THAT(made_relu->summary(), Contains("RNN(2, 3, nonlinearity=relu, batch_first=true)"));
    CHECK(made_relu->recurrent_options().nonlinearity == nn::Nonlinearity::relu);
    CHECK(made_relu->recurrent_options().batch_first);
    CHECK(flat(*made_relu) == flat(relu));

    for (nn::RecurrentKind kind : kKinds) {
        CHECK(nn::parse_recurrent_kind(nn::recurrent_kind_name(kind)) == kind);
        CHECK(nn::make_recurrent(kind, {.input_size = 2, .hidden_size = 3})->kind() == kind);
    }
    CHECK(nn::parse_recurrent_kind("Gru") == nn::RecurrentKind::gru);
}

TEST_CASE("recurrent interface: gradcheck of each kind, and through the packed state", "[nn][recurrent_interface][gradcheck]") {
    for (nn::RecurrentKind kind : kKinds) {
        INFO(nn::recurrent_kind_name(kind));
        manual_seed(6);
        auto layer = nn::make_recurrent(kind, {.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
        layer->to(f64);
        const Tensor x = seq({4, 3, 2}, 51), h0 = seq({4, 3, 3}, 52);
        const Tensor c0 = layer->has_cell_state() ? seq({4, 3, 3}, 53) : Tensor();
        std::vector<Tensor> extra{x, h0};
        std::vector<std::string> names{"input", "h0"};
        if (c0.defined()) extra.push_back(c0), names.push_back("c0");
        const std::vector<std::int64_t> lengths{4, 2, 3};
        auto r = nn::gradcheck_module(*layer, [&] { return state_loss(layer->forward(x, {h0, c0}, lengths)); }, extra,
                                      {.names = names});
        INFO(r.message);
        CHECK(r.ok);
        // One Jacobian entry per element of every parameter and every extra tensor (the loss is a scalar).
        std::size_t elements = layer->num_parameters();
        for (const Tensor& t : extra) elements += t.numel();
        CHECK(r.compared == elements);

        // The state as nn::tbptt carries it: packed in, packed out.
        const Tensor packed = layer->pack_state({h0, c0});
        CHECK(packed.shape() == Shape{layer->has_cell_state() ? 8u : 4u, 3, 3});
        auto g = gradcheck(
            [&](const std::vector<Tensor>& in) {
                const nn::RecurrentResult res = (*layer)(in[0], layer->unpack_state(in[1]));
                return weighted_sum(res.output, 64) + weighted_sum(layer->pack_state(res.state), 65);
            },
            {x, packed});
        INFO(g.message);
        CHECK(g.ok);
    }
}

TEST_CASE("recurrent interface: pack_state and unpack_state are inverses, detach cuts the history", "[nn][recurrent_interface]") {
    for (nn::RecurrentKind kind : kKinds) {
        INFO(nn::recurrent_kind_name(kind));
        manual_seed(7);
        auto layer = nn::make_recurrent(kind, {.input_size = 2, .hidden_size = 3, .num_layers = 3});
        const Tensor h = seq({3, 2, 3}, 71, f32);
        const Tensor c = layer->has_cell_state() ? seq({3, 2, 3}, 72, f32) : Tensor();
        const nn::RecurrentState back = layer->unpack_state(layer->pack_state({h, c}));
        CHECK(max_abs_diff(back.h, h) == 0.0);
        REQUIRE(back.c.defined() == c.defined());
        if (c.defined()) CHECK(max_abs_diff(back.c, c) == 0.0);
        CHECK(!layer->pack_state({}).defined());
        CHECK(!layer->unpack_state(Tensor()).defined());

        const nn::RecurrentState zero = layer->zero_state(5);
        CHECK(zero.h.shape() == Shape{3, 5, 3});
        CHECK(zero.c.defined() == layer->has_cell_state());
        CHECK(sum(abs(layer->pack_state(zero))).item() == 0.0);

        Tape tape;
        auto [out, state] = layer->forward(seq({4, 2, 2}, 73, f32), {});
        CHECK(!state.h.is_leaf());
        const nn::RecurrentState cut = state.detach();
        CHECK(cut.h.is_leaf());
        CHECK(!cut.h.requires_grad());
        CHECK(max_abs_diff(cut.h, state.h) == 0.0);
        CHECK(cut.c.defined() == layer->has_cell_state());
        if (cut.c.defined()) CHECK(cut.c.is_leaf());
    }
    CHECK(!nn::RecurrentState{}.detach().defined());
}

TEST_CASE("recurrent interface: one tbptt loop for every kind equals hand-written chunks", "[nn][recurrent_interface][tbptt]") {
    const Tensor xs = seq({kSteps, kBatch, kIn}, 81), ys = seq({kSteps, kBatch, 2}, 82);
    for (nn::RecurrentKind kind : kKinds) {
        INFO(nn::recurrent_kind_name(kind));
        const nn::RecurrentOptions options{.input_size = kIn, .hidden_size = kHidden, .num_layers = 2};
        manual_seed(8);
        auto layer = nn::make_recurrent(kind, options);
        nn::Linear head(kHidden, 2);
        manual_seed(8);
        auto twin = nn::make_recurrent(kind, options);
        nn::Linear twin_head(kHidden, 2);
        for (nn::Module* m : std::initializer_list<nn::Module*>{layer.get(), &head, twin.get(), &twin_head}) m->to(f64);

        const auto [losses, state] = train_with_tbptt(*layer, head, xs, ys);
        const auto [ref_losses, ref_state] = train_by_hand(*twin, twin_head, xs, ys);
        REQUIRE(losses.size() == kSteps / kChunk);
        CHECK(max_abs_diff(losses, ref_losses) < 1e-12);
        CHECK(max_abs_diff(flat(*layer), flat(*twin)) < 1e-12);
        CHECK(max_abs_diff(state.h, ref_state.h) < 1e-12);
        REQUIRE(state.c.defined() == (kind == nn::RecurrentKind::lstm));
        if (state.c.defined()) CHECK(max_abs_diff(state.c, ref_state.c) < 1e-12);
    }
}

TEST_CASE("recurrent interface: one sampling loop for every kind, the state carried packed", "[nn][recurrent_interface][sample]") {
    constexpr std::size_t V = 7;
    for (nn::RecurrentKind kind : kKinds) {
        INFO(nn::recurrent_kind_name(kind));
        manual_seed(9);
        nn::Embedding emb(V, 3);
        auto layer = nn::make_recurrent(kind, {.input_size = 3, .hidden_size = 5, .num_layers = 2});
        nn::Linear head(5, V);
        for (nn::Module* m : std::initializer_list<nn::Module*>{&emb, layer.get(), &head}) m->to(f64);

        const std::vector<std::int64_t> prime{1, 4};
        Tensor state;
        const std::vector<std::int64_t> ids = generate(emb, *layer, head, prime, state);
        REQUIRE(ids.size() == 10);

        // One run over the whole text (the prime, then every id but the last) gives the logits each
        // id was drawn from: the same generator must draw the same ids from them, and the carried
        // state must be that run's final state.
        std::vector<std::int64_t> text = prime;
        text.insert(text.end(), ids.begin(), ids.end() - 1);
        xt::xarray<std::int64_t> x = xt::xarray<std::int64_t>::from_shape({text.size(), 1});
        for (std::size_t t = 0; t < text.size(); ++t) x(t, 0) = text[t];
        const nn::RecurrentResult whole = layer->forward(emb(x), {});
        const Tensor logits = head(whole.output);  // [T, 1, V]
        Generator gen(17);
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const long t = static_cast<long>(prime.size() - 1 + i);
            CHECK(nn::sample_logits(select(logits, 0, t), {.temperature = 1.5}, gen) == ids[i]);
        }
        const nn::RecurrentState carried = layer->unpack_state(state);
        CHECK(max_abs_diff(carried.h, whole.state.h) < 1e-12);
        if (kind == nn::RecurrentKind::lstm) CHECK(max_abs_diff(carried.c, whole.state.c) < 1e-12);
    }
}

TEST_CASE("recurrent interface: a state that does not fit the layer is refused by name", "[nn][recurrent_interface][errors]") {
    manual_seed(10);
    auto rnn = nn::make_recurrent("rnn", {.input_size = 3, .hidden_size = 4, .num_layers = 2});
    auto lstm = nn::make_recurrent("lstm", {.input_size = 3, .hidden_size = 4, .num_layers = 2});
    auto gru = nn::make_recurrent("gru", {.input_size = 3, .hidden_size = 4, .num_layers = 2});
    const Tensor x = seq({5, 3, 3}, 91, f32), h = seq({2, 3, 4}, 92, f32), c = seq({2, 3, 4}, 93, f32);

    // A cell state is an LSTM's alone.
    REQUIRE_THROWS_MATCHES(gru->forward(x, {h, c}), ValueError, WhatContains({"GRU", "cell state c [2, 3, 4]", "LSTM"}));
    REQUIRE_THROWS_MATCHES(rnn->forward(x, {h, c}), ValueError, WhatContains({"RNN", "cell state c [2, 3, 4]"}));
    REQUIRE_THROWS_MATCHES(gru->pack_state({h, c}), ValueError, WhatContains({"GRU", "pack_state", "[2, 3, 4]"}));
    // An LSTM takes (h, c) whole: half a state is most likely a GRU's or an RNN's carried over.
    REQUIRE_THROWS_MATCHES(lstm->forward(x, {h, Tensor()}), ValueError,
                           WhatContains({"LSTM", "h [2, 3, 4] and c undefined", "give both"}));
    REQUIRE_THROWS_MATCHES(lstm->forward(x, {Tensor(), c}), ValueError,
                           WhatContains({"LSTM", "h undefined and c [2, 3, 4]"}));
    REQUIRE_THROWS_MATCHES(lstm->pack_state({h, Tensor()}), ShapeError,
                           WhatContains({"LSTM", "pack_state", "h [2, 3, 4] and c undefined"}));
    // Wrong shapes name the layer, the state and both shapes.
    REQUIRE_THROWS_MATCHES(gru->forward(x, {seq({1, 3, 4}, 94, f32)}), ShapeError,
                           WhatContains({"GRU", "h0 must be [2, 3, 4]", "got [1, 3, 4]"}));
    REQUIRE_THROWS_MATCHES(lstm->forward(x, {h, seq({2, 3, 5}, 95, f32)}), ShapeError,
                           WhatContains({"LSTM", "c0 must be [2, 3, 4]", "got [2, 3, 5]"}));
    REQUIRE_THROWS_MATCHES(rnn->forward(x, {seq({2, 2, 4}, 96, f32)}), ShapeError,
                           WhatContains({"RNN", "h0 must be [2, 3, 4]", "got [2, 2, 4]"}));
    // A GRU's packed state given to an LSTM, and an LSTM's given to a GRU.
    REQUIRE_THROWS_MATCHES(lstm->unpack_state(gru->pack_state({h})), ShapeError,
                           WhatContains({"LSTM", "unpack_state", "[4, batch, 4]", "got [2, 3, 4]"}));
    REQUIRE_THROWS_MATCHES(gru->unpack_state(lstm->pack_state({h, c})), ShapeError,
                           WhatContains({"GRU", "unpack_state", "[2, batch, 4]", "got [4, 3, 4]"}));
    REQUIRE_THROWS_MATCHES(rnn->unpack_state(seq({2, 3}, 97, f32)), ShapeError,
                           WhatContains({"RNN", "unpack_state", "got [2, 3]"}));
    // Input errors are the typed forward's.
    REQUIRE_THROWS_MATCHES(gru->forward(seq({5, 3, 2}, 98, f32), {}), ShapeError,
                           WhatContains({"GRU", "Expected 3, got 2", "[5, 3, 2]"}));

    // make_recurrent: an unknown kind, an RNN option given to an LSTM, bad sizes named by the layer.
    REQUIRE_THROWS_MATCHES(nn::make_recurrent("transformer", {.input_size = 3, .hidden_size = 4}), ValueError,
                           WhatContains({"make_recurrent", "'transformer'", "rnn, lstm or gru"}));
    REQUIRE_THROWS_MATCHES(
        nn::make_recurrent(nn::RecurrentKind::lstm,
                           {.input_size = 3, .hidden_size = 4, .nonlinearity = nn::Nonlinearity::relu}),
        ValueError, WhatContains({"make_recurrent", "relu", "LSTM"}));
    REQUIRE_THROWS_MATCHES(nn::make_recurrent("gru", {.input_size = 3, .hidden_size = 0}), ValueError,
                           WhatContains({"GRU", "hidden_size 0"}));
}
