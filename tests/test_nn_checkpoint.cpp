// Checkpoints: resuming from one continues training bitwise exactly (model, optimizer, learning
// rate, step and the generator that drives dropout and batch sampling), extras round-trip, a
// checkpoint of another model is refused with the list and changes nothing, damaged files are
// FormatErrors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
const ScratchDir scratch("tapegrad_test_checkpoint");

constexpr std::size_t V = 6, T = 5, Bt = 3;

struct Net : nn::Module {
    nn::Embedding emb;
    nn::RNN rnn;
    nn::Linear head;
    explicit Net(std::size_t hidden = 8)
        : emb(V, 4), rnn({.input_size = 4, .hidden_size = hidden}), head(hidden, V) {
        register_module("emb", emb);
        register_module("rnn", rnn);
        register_module("head", head);
    }
    Tensor loss(const xt::xarray<std::int64_t>& ids, const xt::xarray<std::int64_t>& targets, Generator& gen) {
        Tensor out = rnn(emb(ids)).output;             // [T, B, H]
        out = dropout(out, 0.3, is_training(), gen);  // the generator matters
        return cross_entropy(head(out), targets);
    }
};

// One training step: a random batch of windows of a fixed token stream, drawn with `gen`.
double train_step(Net& net, nn::Optimizer& opt, Generator& gen) {
    static const std::vector<std::int64_t> stream = [] {
        Generator g(99);
        std::vector<std::int64_t> s(200);
        for (auto& v : s) v = static_cast<std::int64_t>(g.randint(V));
        return s;
    }();
    const auto [ids, tg] = random_windows(stream, T, Bt, gen);
    Tape tape;
    Tensor loss = net.loss(ids, tg, gen);
    tape.backward(loss);
    nn::clip_grad_norm(net.parameters(), 1.0);
    opt.step();
    opt.zero_grad();
    return loss.item();
}
}  // namespace

TEST_CASE("resuming from a checkpoint continues training bitwise exactly", "[nn][checkpoint]") {
    const std::size_t N = 8, K = 3;
    const auto path = scratch("resume.npz").string();

    manual_seed(1);
    Net a;
    nn::Adam oa(a.parameters(), {.lr = 0.05});
    Generator ga(42);
    std::vector<double> losses_a;
    for (std::size_t s = 0; s < N; ++s) losses_a.push_back(train_step(a, oa, ga));

    manual_seed(1);
    Net b;
    nn::Adam ob(b.parameters(), {.lr = 0.05});
    Generator gb(42);
    std::vector<double> losses_b;
    for (std::size_t s = 0; s < K; ++s) losses_b.push_back(train_step(b, ob, gb));
    ob.set_lr(0.05);  // an unchanged but explicitly set learning rate round-trips too
    nn::save_checkpoint(path, b, ob, K, gb);

    manual_seed(2);  // a different initialisation, optimizer and generator: all must be overwritten
    Net c;
    nn::Adam oc(c.parameters(), {.lr = 0.5});
    Generator gc(7);
    const auto info = nn::load_checkpoint(path, c, oc, gc);
    CHECK(info.step == K);
    CHECK(info.extras.empty());
    CHECK(oc.lr() == 0.05);
    CHECK(oc.steps() == K);
    CHECK(gc.state() == gb.state());
    for (std::size_t s = info.step; s < N; ++s) losses_b.push_back(train_step(c, oc, gc));
    REQUIRE(losses_b.size() == losses_a.size());
    for (std::size_t s = 0; s < N; ++s) CHECK(losses_b[s] == losses_a[s]);
    CHECK(flat(c) == flat(a));
    CHECK(flat(c) != flat(b));  // training really went on after the checkpoint
}

TEST_CASE("extras round-trip and the archive keeps parameter names", "[nn][checkpoint]") {
    manual_seed(3);
    Net net;
    nn::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
    Generator g(5);
    train_step(net, opt, g);
    Tensor vocab = Tensor::of({97.0, 98.0, 99.0, 10.0}, f64);
    Tensor table = Tensor::of({{1.5, 2.5}}, f32);
    const auto path = scratch("extras.npz").string();
    nn::save_checkpoint(path, net, opt, 123456789, g, {{"vocab", vocab}, {"table", table}});
    bool has_param = false;
    for (auto& [name, t] : nn::load_tensors(path)) has_param = has_param || name == "rnn.weight_ih_l0";
    CHECK(has_param);
    Generator g2;
    const auto info = nn::load_checkpoint(path, net, opt, g2);
    CHECK(info.step == 123456789);
    REQUIRE(info.extras.size() == 2);
    CHECK(info.extras[0].first == "vocab");
    CHECK(info.extras[0].second.dtype() == f64);
    for (std::size_t i = 0; i < 4; ++i) CHECK(info.extras[0].second.at(i) == vocab.at(i));
    CHECK(info.extras[1].first == "table");
    CHECK(info.extras[1].second.shape() == Shape{1, 2});
    CHECK(g2.uniform() == g.uniform());
    REQUIRE_THROWS_WITH(nn::save_checkpoint(path, net, opt, 1, g, {{"vocab", vocab}, {"vocab", vocab}}),
                        Contains("'extra.vocab' appears twice"));
    REQUIRE_THROWS_AS(nn::save_checkpoint(path, net, opt, 1, g, {{"", vocab}}), ValueError);
}

TEST_CASE("a checkpoint of another model is refused with the list, changing nothing", "[nn][checkpoint]") {
    manual_seed(4);
    Net small(8), other(5);
    nn::Adam os(small.parameters()), oo(other.parameters(), {.lr = 0.01});
    Generator gs(1), go(2);
    train_step(small, os, gs);
    train_step(other, oo, go);
    const auto path = scratch("small.npz").string();
    nn::save_checkpoint(path, small, os, 1, gs);
    const auto before = flat(other);
    const std::string gen_before = go.state();
    REQUIRE_THROWS_WITH(nn::load_checkpoint(path, other, oo, go),
                        Contains(path) && Contains("'rnn.weight_hh_l0' has shape [8, 8] but the model's is [5, 5]") &&
                            Contains("'head.weight' has shape [6, 8] but the model's is [6, 5]"));
    CHECK(flat(other) == before);
    CHECK(go.state() == gen_before);
    CHECK(oo.lr() == 0.01);
    // Same model, different optimizer: refused by the optimizer check, the model rolled back.
    Net same(8);
    nn::SGD sgd(same.parameters(), {.lr = 0.1, .momentum = 0.5});
    const auto same_before = flat(same);
    REQUIRE_THROWS_WITH(nn::load_checkpoint(path, same, sgd, go), Contains("unexpected '0.exp_avg'"));
    CHECK(flat(same) == same_before);
}

TEST_CASE("truncated files and plain state dicts are FormatErrors", "[nn][checkpoint]") {
    manual_seed(5);
    Net net;
    nn::Adam opt(net.parameters());
    Generator g(1);
    const auto path = scratch("full.npz");
    nn::save_checkpoint(path.string(), net, opt, 2, g);
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    {
        std::ofstream out(scratch("cut.npz"), std::ios::binary);
        out << bytes.substr(0, bytes.size() * 2 / 3);
    }
    REQUIRE_THROWS_AS(nn::load_checkpoint(scratch("cut.npz").string(), net, opt, g), FormatError);
    nn::save(net, opt, scratch("plain.npz").string());
    REQUIRE_THROWS_WITH(nn::load_checkpoint(scratch("plain.npz").string(), net, opt, g),
                        Contains("plain.npz") && Contains("not a checkpoint"));
    REQUIRE_THROWS_AS(nn::load_checkpoint(scratch("absent.npz").string(), net, opt, g), FormatError);
}
