// nn::Sequential, nn::ModuleList, nn::ModuleDict and nn::Functional: PyTorch's hierarchical
// parameter names, forward through a chain, gradients (float64 gradcheck), modes and dtypes through
// the containers, a save/load round trip, public registration, moving modules, and the errors of
// bad names, indices and keys.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
const ScratchDir scratch("tapegrad_test_nn_containers");

std::vector<std::string> names_of(const nn::Module& m) {
    std::vector<std::string> out;
    for (const auto& [n, p] : m.named_parameters()) out.push_back(n);
    return out;
}

// An encoder (embedding, RNN) and a head (an MLP) in containers, as a PyTorch user would write
//     nn.ModuleDict({"encoder": nn.ModuleDict({"embed": ..., "rnn": ...}), "head": nn.Sequential(...)})
nn::ModuleDict make_tagger() {
    // A model from containers: the parameter names are PyTorch's.
    nn::ModuleDict encoder;
    encoder.insert("embed", nn::Embedding(10, 4));
    encoder.insert("rnn", nn::RNN({.input_size = 4, .hidden_size = 8}));
    nn::ModuleDict model;
    model.insert("encoder", std::move(encoder));
    model.insert("head", nn::Sequential(nn::Linear(8, 8), nn::Functional(tapegrad::tanh, "Tanh"), nn::Linear(8, 3)));
    return model;
}

Tensor run_tagger(const nn::ModuleDict& model, const xt::xarray<std::int64_t>& ids) {
    // ids [T, B] -> logits [T, B, 3]
    auto& encoder = model.at<nn::ModuleDict>("encoder");
    Tensor x = encoder.at<nn::Embedding>("embed")(ids);
    Tensor h = encoder.at<nn::RNN>("rnn")(x).output;
    return model.at<nn::Sequential>("head")(h);
}
}  // namespace

TEST_CASE("Sequential chains modules and names their parameters by index", "[nn][containers]") {
    manual_seed(1);
    // An MLP as a chain: activations are Functional modules (or plain functions).
    nn::Sequential mlp(nn::Linear(3, 4), nn::Functional(tapegrad::tanh, "Tanh"), nn::Linear(4, 2));
    CHECK(names_of(mlp) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
    Tensor x = seq({5, 3}, 2, f32);
    Tensor y = mlp(x);  // [5, 3] -> [5, 2]
    REQUIRE(y.shape() == Shape{5, 2});

    // The same as calling the modules one after another.
    auto& first = mlp.at<nn::Linear>(0);
    auto& last = mlp.at<nn::Linear>(2);
    CHECK(max_abs_diff(y, last(tapegrad::tanh(first(x)))) == 0.0);
    CHECK(mlp.size() == 3);
    CHECK(mlp[1].type_name() == "Tanh");
    std::vector<std::string> types;
    for (const auto& m : mlp) types.push_back(m->type_name());
    CHECK(types == std::vector<std::string>{"Linear", "Tanh", "Linear"});
    CHECK_THAT(mlp.summary(), Contains("Sequential()") && Contains("(0): Linear(in_features=3, out_features=4") &&
                                  Contains("(1): Tanh()") && Contains("parameters: 26"));

    // Names given with the modules, a plain function, a lambda and a shared module.
    nn::Sequential named;
    named.push_back("fc", nn::Linear(3, 4));
    named.push_back("act", tapegrad::relu);
    named.push_back([](const Tensor& h) { return h * 2.0; });
    auto shared = named.push_back("out", std::make_shared<nn::Linear>(4, 1));
    CHECK(names_of(named) == std::vector<std::string>{"fc.weight", "fc.bias", "out.weight", "out.bias"});
    CHECK(named.parameter("out.weight").same(shared->weight));
    CHECK(named(x).shape() == Shape{5, 1});
}

TEST_CASE("ModuleList and ModuleDict hold modules by index and by key", "[nn][containers]") {
    nn::ModuleList layers;
    for (int i = 0; i < 3; ++i) layers.push_back(nn::Linear(4, 4, i != 1));
    CHECK(names_of(layers) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "2.weight", "2.bias"});
    Tensor h = seq({2, 4}, 3, f32);
    for (const auto& layer : layers) h = tapegrad::tanh(std::dynamic_pointer_cast<nn::Linear>(layer)->forward(h));
    CHECK(h.shape() == Shape{2, 4});
    CHECK(layers.at<nn::Linear>(1).bias.defined() == false);

    nn::ModuleDict heads({{"tags", std::make_shared<nn::Linear>(4, 5)}});
    heads.insert("score", nn::Linear(4, 1));
    CHECK(heads.keys() == std::vector<std::string>{"tags", "score"});
    CHECK(heads.contains("score"));
    CHECK_FALSE(heads.contains("scores"));
    CHECK(names_of(heads) == std::vector<std::string>{"tags.weight", "tags.bias", "score.weight", "score.bias"});
    CHECK(heads.at<nn::Linear>("tags")(h).shape() == Shape{2, 5});
}

TEST_CASE("containers nest with PyTorch's dotted names, and modes and dtypes reach every module",
          "[nn][containers]") {
    manual_seed(4);
    nn::ModuleDict model = make_tagger();
    CHECK(names_of(model) == std::vector<std::string>{
                                 "encoder.embed.weight", "encoder.rnn.weight_ih_l0", "encoder.rnn.weight_hh_l0",
                                 "encoder.rnn.bias_ih_l0", "encoder.rnn.bias_hh_l0", "head.0.weight", "head.0.bias",
                                 "head.2.weight", "head.2.bias"});
    std::vector<std::string> modules;
    for (const auto& [n, m] : model.named_modules()) modules.push_back(n + "=" + m->type_name());
    CHECK(modules == std::vector<std::string>{"encoder=ModuleDict", "encoder.embed=Embedding", "encoder.rnn=RNN",
                                              "head=Sequential", "head.0=Linear", "head.1=Tanh", "head.2=Linear"});
    CHECK(model.named_children().size() == 2);

    model.eval();
    for (const auto& [n, m] : model.named_modules()) CHECK_FALSE(m->is_training());
    model.train();
    CHECK(model.at<nn::Sequential>("head")[2].is_training());

    const xt::xarray<std::int64_t> ids = {{1, 2}, {3, 4}, {5, 6}};
    CHECK(run_tagger(model, ids).shape() == Shape{3, 2, 3});
    model.to(f64);
    for (const auto& [n, p] : model.named_parameters()) CHECK(p.dtype() == f64);
    CHECK(run_tagger(model, ids).dtype() == f64);
}

TEST_CASE("float64 gradcheck through a Sequential and through nested containers", "[nn][containers][gradcheck]") {
    manual_seed(5);
    nn::Sequential mlp(nn::Linear(3, 4), nn::Functional(tapegrad::tanh, "Tanh"), nn::Linear(4, 4),
                       nn::Sequential(nn::Functional(tapegrad::sigmoid, "Sigmoid"), nn::Linear(4, 2)));
    CHECK(names_of(mlp).back() == "3.1.bias");
    mlp.to(f64);
    Tensor x = seq({2, 3}, 6);
    const GradcheckResult r = nn::gradcheck_module(mlp, [&] { return weighted_sum(mlp(x), 7); }, {x});
    INFO(r.message);
    CHECK(r.ok);

    nn::ModuleDict model = make_tagger();
    model.to(f64);
    const xt::xarray<std::int64_t> ids = {{1, 2}, {3, 9}};
    const GradcheckResult whole = nn::gradcheck_module(model, [&] { return weighted_sum(run_tagger(model, ids), 8); });
    INFO(whole.message);
    CHECK(whole.ok);
    CHECK(whole.compared == model.num_parameters());  // every parameter's element, one output
}

TEST_CASE("a model of containers saves and loads by its dotted names", "[nn][containers][serialize]") {
    manual_seed(6);
    nn::ModuleDict a = make_tagger();
    const auto path = scratch("tagger.npz").string();
    nn::save(a, path);
    manual_seed(7);
    nn::ModuleDict b = make_tagger();
    const xt::xarray<std::int64_t> ids = {{1, 2, 3}, {4, 5, 6}};
    CHECK(max_abs_diff(run_tagger(a, ids), run_tagger(b, ids)) > 0.0);
    nn::load(b, path);
    CHECK(max_abs_diff(run_tagger(a, ids), run_tagger(b, ids)) == 0.0);
    CHECK(flat(a) == flat(b));

    std::vector<std::string> saved;
    for (const auto& [n, t] : nn::load_tensors(path)) saved.push_back(n);
    CHECK(saved == names_of(a));

    // A state dict that lacks an entry is refused, naming it, and changes nothing.
    nn::NamedTensors state = nn::state_dict(a);
    state.pop_back();
    nn::ModuleDict c = make_tagger();
    const std::vector<double> before = flat(c);
    REQUIRE_THROWS_MATCHES(nn::load_state_dict(c, state), ValueError, WhatContains({"head.2.bias"}));
    CHECK(flat(c) == before);
}

TEST_CASE("register_parameter and register_module are public, as in LibTorch", "[nn][containers]") {
    nn::Module m;
    Tensor& w = m.register_parameter("scale", ones({3}));
    CHECK(w.requires_grad());
    CHECK(w.name() == "scale");
    Tensor frozen = m.register_parameter("offset", zeros({3}), false);
    CHECK_FALSE(frozen.requires_grad());
    std::shared_ptr<nn::Linear> fc = m.register_module("fc", nn::Linear(3, 2));
    nn::Linear member(2, 2);
    m.register_module("member", member);
    CHECK(names_of(m) == std::vector<std::string>{"scale", "offset", "fc.weight", "fc.bias", "member.weight",
                                                  "member.bias"});
    CHECK(m.parameter("fc.bias").same(fc->bias));
}

TEST_CASE("modules move, and registrations follow them", "[nn][containers]") {
    manual_seed(8);
    // A module whose members are registered by reference (init, cell, head) moves as a whole:
    // the new one's registrations point at its own members.
    nn::RNNDecoder a({.latent_size = 2, .input_size = 3, .hidden_size = 4, .output_size = 3});
    const std::vector<double> values_a = flat(a);
    const std::vector<std::string> names_a = names_of(a);
    Tensor init_weight = a.init.weight;
    nn::RNNDecoder b(std::move(a));
    CHECK(names_of(b) == names_a);
    CHECK(flat(b) == values_a);
    CHECK(b.parameter("init.weight").same(b.init.weight));
    CHECK(b.init.weight.same(init_weight));  // the same tensors: an optimizer built before still works
    CHECK(a.named_parameters().empty());     // the moved-from module is empty
    b.eval();
    CHECK_FALSE(b.head.is_training());
    CHECK(b.named_children()[1].second == &b.cell);

    // Many of them in a std::vector, which moves them as it grows.
    std::vector<nn::RNNDecoder> decoders;
    for (int i = 0; i < 5; ++i) decoders.emplace_back(nn::DecoderOptions{.latent_size = 2, .input_size = 3,
                                                                           .hidden_size = 4, .output_size = 3});
    for (const auto& d : decoders) {
        CHECK(d.named_children()[0].second == &d.init);
        CHECK(d.parameter("head.bias").same(d.head.bias));
    }

    // A container moves with the modules it owns.
    nn::Sequential s1(nn::Linear(2, 3), nn::Linear(3, 1));
    Tensor x = seq({4, 2}, 9, f32);
    const Tensor y1 = s1(x);
    nn::Sequential s2 = std::move(s1);
    CHECK(max_abs_diff(s2(x), y1) == 0.0);
    CHECK(names_of(s2) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});

    // A parent that registered a module by reference follows it when it moves, and lets go of it
    // when it ends (rather than keep a dangling pointer).
    nn::Module parent;
    auto held = std::make_unique<nn::Linear>(2, 2);
    parent.register_module("held", *held);
    nn::Linear moved(std::move(*held));
    CHECK(parent.parameter("held.weight").same(moved.weight));
    held.reset();
    CHECK(parent.parameter("held.weight").same(moved.weight));
    {
        nn::Linear brief(std::move(moved));
        CHECK(parent.named_children().at(0).second == &brief);
    }
    CHECK(parent.named_children().empty());
}

TEST_CASE("containers refuse bad names, indices and keys with messages that say which", "[nn][containers][errors]") {
    nn::ModuleDict dict;
    dict.insert("encoder", nn::Linear(2, 2));
    REQUIRE_THROWS_MATCHES(dict.insert("encoder", nn::Linear(2, 2)), ValueError,
                           WhatContains({"ModuleDict: key 'encoder' is already taken (keys taken: encoder)"}));
    REQUIRE_THROWS_MATCHES(dict.insert("enc.rnn", nn::Linear(2, 2)), ValueError,
                           WhatContains({"ModuleDict: key 'enc.rnn' holds a dot; dots separate the levels of "
                                         "parameter names (as in 'encoder.rnn.weight_ih_l0'), so a key cannot "
                                         "hold one"}));
    REQUIRE_THROWS_MATCHES(dict.insert("", nn::Linear(2, 2)), ValueError,
                           WhatContains({"ModuleDict: a key must not be empty"}));
    REQUIRE_THROWS_MATCHES(dict["decoder"], ValueError,
                           WhatContains({"ModuleDict: no module under key 'decoder'; the keys are: encoder"}));
    REQUIRE_THROWS_MATCHES(dict.at<nn::RNN>("encoder"), ValueError,
                           WhatContains({"ModuleDict: key 'encoder' is a tapegrad::nn::Linear (Linear(",
                                         "not a tapegrad::nn::RNN"}));
    CHECK(dict.size() == 1);  // nothing was added by the refused inserts

    nn::Sequential chain(nn::Linear(3, 2));
    REQUIRE_THROWS_MATCHES(chain[1], ValueError,
                           WhatContains({"Sequential: index 1 is out of range: it holds 1 module"}));
    REQUIRE_THROWS_MATCHES(chain.push_back("0", nn::Linear(2, 2)), ValueError,
                           WhatContains({"Sequential: name '0' is already taken"}));
    REQUIRE_THROWS_MATCHES(chain.push_back("a.b", nn::Linear(2, 2)), ValueError,
                           WhatContains({"Sequential: name 'a.b' holds a dot"}));
    CHECK(chain.size() == 1);
    // An error inside the chain keeps its type and says which module raised it.
    REQUIRE_THROWS_MATCHES(chain(zeros({4, 5})), ShapeError,
                           WhatContains({"Sequential: module '0' (Linear): Linear(3, 2)", "[4, 5]"}));
    REQUIRE_THROWS_MATCHES(nn::Sequential()(zeros({1})), UsageError,
                           WhatContains({"Sequential: forward of an empty Sequential"}));

    nn::ModuleList list;
    REQUIRE_THROWS_MATCHES(list.ptr(0), ValueError,
                           WhatContains({"ModuleList: index 0 is out of range: it holds 0 modules"}));

    nn::Module m;
    m.register_parameter("w", ones({1}));
    REQUIRE_THROWS_MATCHES(m.register_module("w", nn::Linear(1, 1)), ValueError,
                           WhatContains({"register_module: 'w' is registered twice in Module (it is already a "
                                         "parameter)"}));
    REQUIRE_THROWS_MATCHES(m.register_parameter("a.b", ones({1})), ValueError,
                           WhatContains({"register_parameter: bad name 'a.b' in Module: a name must be non-empty and "
                                         "hold no dot"}));
    REQUIRE_THROWS_MATCHES(m.register_module("self", m), ValueError,
                           WhatContains({"register_module: 'self' is the module itself"}));
}
