// Optimizers and gradient clipping: one or two steps of each against values computed here from
// PyTorch's documented update rules, state save/restore, parameter groups (each against separate
// optimizers), and clipping semantics.
#include <catch2/catch.hpp>

#include <cmath>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
// A parameter [p0, p1] whose gradient we set by hand for each step.
struct Fixture {
    Tensor p = Tensor::of({1.0, -2.0}, f64, true);
    void set_grad(double g0, double g1) {
        p.zero_grad();
        Tape tape;
        tape.backward(p * 1.0, Tensor::of({g0, g1}, f64));
    }
};
const double g_steps[2][2] = {{0.5, -1.5}, {-0.25, 2.0}};
}  // namespace

TEST_CASE("SGD with momentum, dampening, nesterov and weight decay", "[nn][optim]") {
    for (bool nesterov : {false, true}) {
        Fixture f;
        const double lr = 0.1, mu = 0.9, wd = 0.01;
        nn::SGD opt({f.p}, {.lr = lr, .momentum = mu, .weight_decay = wd, .nesterov = nesterov});
        double p[2] = {1.0, -2.0}, b[2] = {0, 0};
        for (int s = 0; s < 2; ++s) {
            f.set_grad(g_steps[s][0], g_steps[s][1]);
            opt.step();
            for (int j = 0; j < 2; ++j) {
                double d = g_steps[s][j] + wd * p[j];
                b[j] = s == 0 ? d : mu * b[j] + d;
                p[j] -= lr * (nesterov ? d + mu * b[j] : b[j]);
                CHECK(f.p.at(j) == Approx(p[j]).epsilon(1e-14));
            }
        }
    }
    Fixture f;
    REQUIRE_THROWS_AS(nn::SGD({f.p}, {.lr = -1}), ValueError);
    REQUIRE_THROWS_AS(nn::SGD({f.p}, {.lr = 0.1, .nesterov = true}), ValueError);
}

TEST_CASE("Adagrad as in the classic character RNN", "[nn][optim]") {
    Fixture f;
    nn::Adagrad opt({f.p}, {.lr = 0.1});
    double p[2] = {1.0, -2.0}, acc[2] = {0, 0};
    for (int s = 0; s < 2; ++s) {
        f.set_grad(g_steps[s][0], g_steps[s][1]);
        opt.step();
        for (int j = 0; j < 2; ++j) {
            acc[j] += g_steps[s][j] * g_steps[s][j];
            p[j] -= 0.1 * g_steps[s][j] / (std::sqrt(acc[j]) + 1e-10);
            CHECK(f.p.at(j) == Approx(p[j]).epsilon(1e-14));
        }
    }
}

TEST_CASE("RMSprop, plain and centered with momentum", "[nn][optim]") {
    for (bool centered : {false, true}) {
        Fixture f;
        const double lr = 0.01, a = 0.99, eps = 1e-8, mu = centered ? 0.5 : 0.0;
        nn::RMSprop opt({f.p}, {.lr = lr, .alpha = a, .momentum = mu, .centered = centered});
        double p[2] = {1.0, -2.0}, v[2] = {0, 0}, ga[2] = {0, 0}, b[2] = {0, 0};
        for (int s = 0; s < 2; ++s) {
            f.set_grad(g_steps[s][0], g_steps[s][1]);
            opt.step();
            for (int j = 0; j < 2; ++j) {
                const double g = g_steps[s][j];
                v[j] = a * v[j] + (1 - a) * g * g;
                double vt = v[j];
                if (centered) {
                    ga[j] = a * ga[j] + (1 - a) * g;
                    vt -= ga[j] * ga[j];
                }
                const double step = g / (std::sqrt(vt) + eps);
                if (mu > 0) {
                    b[j] = mu * b[j] + step;
                    p[j] -= lr * b[j];
                } else {
                    p[j] -= lr * step;
                }
                CHECK(f.p.at(j) == Approx(p[j]).epsilon(1e-12));
            }
        }
    }
}

TEST_CASE("Adam and AdamW with bias correction", "[nn][optim]") {
    for (bool decoupled : {false, true}) {
        Fixture f;
        const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
        std::unique_ptr<nn::Optimizer> opt;
        if (decoupled) opt = std::make_unique<nn::AdamW>(std::vector<Tensor>{f.p}, nn::AdamWOptions{.lr = lr, .weight_decay = wd});
        else opt = std::make_unique<nn::Adam>(std::vector<Tensor>{f.p}, nn::AdamOptions{.lr = lr, .weight_decay = wd});
        double p[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
        for (int s = 0; s < 2; ++s) {
            f.set_grad(g_steps[s][0], g_steps[s][1]);
            opt->step();
            const double t = s + 1;
            for (int j = 0; j < 2; ++j) {
                double g = g_steps[s][j];
                if (decoupled) p[j] *= 1 - lr * wd;
                else g += wd * p[j];
                m[j] = b1 * m[j] + (1 - b1) * g;
                v[j] = b2 * v[j] + (1 - b2) * g * g;
                const double mh = m[j] / (1 - std::pow(b1, t)), vh = v[j] / (1 - std::pow(b2, t));
                p[j] -= lr * mh / (std::sqrt(vh) + eps);
                CHECK(f.p.at(j) == Approx(p[j]).epsilon(1e-10));
            }
        }
        CHECK(opt->type_name() == (decoupled ? "AdamW" : "Adam"));
    }
}

TEST_CASE("bias correction counts each parameter's own updates, as PyTorch", "[nn][optim]") {
    // q gets no gradient in the first step: its first update must be a first Adam step (|step| = lr).
    Tensor p = Tensor::of({1.0}, f64, true), q = Tensor::of({1.0}, f64, true);
    nn::Adam opt({p, q}, {.lr = 0.1});
    {
        Tape tape;
        tape.backward(sum(p * 3.0));
    }
    opt.step();
    opt.zero_grad();
    {
        Tape tape;
        tape.backward(sum(q * 3.0));
    }
    opt.step();
    CHECK(q.at(0) == Approx(1.0 - 0.1).epsilon(1e-7));
    CHECK(nn::AdamW({p}).options.weight_decay == 1e-2);
    CHECK(nn::AdamW({p}, {.lr = 3e-3}).options.weight_decay == 1e-2);  // the default survives other options
}

TEST_CASE("optimizer state round-trips, so a restored optimizer continues identically", "[nn][optim]") {
    Fixture a, b;
    nn::Adam oa({a.p}, {.lr = 0.05});
    a.set_grad(0.3, -0.7);
    oa.step();
    nn::Adam ob({b.p}, {.lr = 0.05});
    ob.load_state_dict(oa.state_dict());
    b.p.mutable_array() = a.p.array();
    a.set_grad(1.0, 2.0);
    b.set_grad(1.0, 2.0);
    oa.step();
    ob.step();
    CHECK(ob.steps() == 2);
    CHECK(a.p.at(0) == b.p.at(0));
    CHECK(a.p.at(1) == b.p.at(1));
    nn::NamedTensors bad = oa.state_dict();
    bad[0].second = zeros({3}, f64);
    REQUIRE_THROWS_WITH(ob.load_state_dict(bad), Contains("0.exp_avg") && Contains("[3]"));
}

TEST_CASE("parameters without a gradient are skipped, learning rate is settable", "[nn][optim]") {
    Fixture f;
    Tensor q = Tensor::of({5.0}, f64, true);
    nn::SGD opt({f.p, q}, {.lr = 1.0});
    f.set_grad(1.0, 1.0);
    opt.set_lr(0.5);
    CHECK(opt.lr() == 0.5);
    opt.step();
    CHECK(f.p.at(0) == 0.5);
    CHECK(q.at(0) == 5.0);
    REQUIRE_THROWS_AS(opt.set_lr(-1), ValueError);
    opt.zero_grad();
    CHECK_FALSE(f.p.has_grad());
}

TEST_CASE("clip_grad_norm rescales globally and returns the norm before clipping", "[nn][clip]") {
    Fixture f;
    Tensor q = Tensor::of({0.0}, f64, true);
    f.set_grad(3.0, 0.0);
    {
        Tape tape;
        tape.backward(q * 1.0, Tensor::of({4.0}, f64));
    }
    const double norm = nn::clip_grad_norm({f.p, q}, 1.0);
    CHECK(norm == Approx(5.0));
    CHECK(f.p.grad().at(0) == Approx(3.0 / 5.0).epsilon(1e-5));
    CHECK(q.grad().at(0) == Approx(4.0 / 5.0).epsilon(1e-5));
    CHECK(nn::clip_grad_norm({f.p, q}, 10.0) == Approx(1.0).epsilon(1e-5));  // under the limit: unchanged
    CHECK(q.grad().at(0) == Approx(0.8).epsilon(1e-5));
    f.set_grad(NAN, 1.0);
    f.p.set_name("weight_hh_l0");
    REQUIRE_THROWS_WITH(nn::clip_grad_norm({q, f.p}, 1.0),
                        Contains("non-finite") && Contains("weight_hh_l0") && Contains("element 0"));
    CHECK(std::isnan(nn::clip_grad_norm({q, f.p}, 1.0, false)));
}

TEST_CASE("clip_grad_value clamps each element", "[nn][clip]") {
    Fixture f;
    f.set_grad(7.0, -0.5);
    nn::clip_grad_value({f.p}, 5.0);
    CHECK(f.p.grad().at(0) == 5.0);
    CHECK(f.p.grad().at(1) == -0.5);
    REQUIRE_THROWS_AS(nn::clip_grad_value({f.p}, -1), ValueError);
}

// ---- parameter groups ---------------------------------------------------------------------------

namespace {
// Two parameters of different shapes and the gradients of three steps for each, from a seed.
struct TwoParams {
    Tensor a = Tensor::of({0.5, -1.0, 2.0}, f64, true);
    Tensor b = Tensor::of({{1.0, -0.5}, {0.25, 3.0}}, f64, true);
    TwoParams copy() const {
        TwoParams c;
        c.a.mutable_array() = a.array();
        c.b.mutable_array() = b.array();
        return c;
    }
};
void set_grads(const std::vector<Tensor>& ps, int step) {
    Generator g(100 + static_cast<std::uint64_t>(step));
    for (Tensor p : ps) {
        p.zero_grad();
        Tape tape;
        tape.backward(p * 1.0, randn(p.shape(), g, p.dtype()));
    }
}
// Runs `steps` updates of the grouped optimizer on x and of the two single-group ones on y (x.a and
// y.a get the same gradients, as do x.b and y.b); every value must agree bitwise.
void same_as_separate(nn::Optimizer& grouped, TwoParams& x, nn::Optimizer& sep_a, nn::Optimizer& sep_b, TwoParams& y) {
    for (int s = 0; s < 3; ++s) {
        set_grads({x.a, x.b}, s);
        set_grads({y.a, y.b}, s);
        grouped.step();
        sep_a.step();
        sep_b.step();
        for (std::size_t j = 0; j < x.a.numel(); ++j) CHECK(x.a.at(j) == y.a.at(j));
        for (std::size_t j = 0; j < x.b.numel(); ++j) CHECK(x.b.at(j) == y.b.at(j));
    }
    const TwoParams start;  // and they did move
    CHECK(x.a.at(0) != start.a.at(0));
    CHECK(x.b.at(0) != start.b.at(0));
}
}  // namespace

TEST_CASE("two parameter groups move exactly as two separate optimizers", "[nn][optim][groups]") {
    SECTION("SGD, the second group with its own lr and momentum") {
        TwoParams x, y = x.copy();
        nn::SGD grouped({{.params = {x.a}, .lr = 0.1}, {.params = {x.b}, .lr = 0.01, .momentum = 0.5}},
                        {.lr = 0.3, .momentum = 0.9, .weight_decay = 0.01});
        nn::SGD sep_a({y.a}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
        nn::SGD sep_b({y.b}, {.lr = 0.01, .momentum = 0.5, .weight_decay = 0.01});
        same_as_separate(grouped, x, sep_a, sep_b, y);
        CHECK(grouped.group_options(1).momentum == 0.5);
        CHECK(grouped.group_options(1).weight_decay == 0.01);  // from the defaults
        CHECK(grouped.options.lr == 0.3);
    }
    SECTION("SGD, momentum in one group only: state slots per group") {
        TwoParams x, y = x.copy();
        nn::SGD grouped({{.params = {x.a}}, {.params = {x.b}, .momentum = 0.9, .nesterov = true}}, {.lr = 0.05});
        nn::SGD sep_a({y.a}, {.lr = 0.05});
        nn::SGD sep_b({y.b}, {.lr = 0.05, .momentum = 0.9, .nesterov = true});
        same_as_separate(grouped, x, sep_a, sep_b, y);
        bool has_a_buffer = false, has_b_buffer = false;
        for (const auto& [name, t] : grouped.state_dict()) {
            has_a_buffer = has_a_buffer || name == "0.momentum_buffer";
            has_b_buffer = has_b_buffer || name == "1.momentum_buffer";
        }
        CHECK_FALSE(has_a_buffer);
        CHECK(has_b_buffer);
    }
    SECTION("Adam, the second group with amsgrad and weight decay") {
        TwoParams x, y = x.copy();
        nn::Adam grouped({{.params = {x.a}, .lr = 0.02}, {.params = {x.b}, .lr = 0.005, .weight_decay = 0.1, .amsgrad = true}},
                         {.beta2 = 0.99});
        nn::Adam sep_a({y.a}, {.lr = 0.02, .beta2 = 0.99});
        nn::Adam sep_b({y.b}, {.lr = 0.005, .beta2 = 0.99, .weight_decay = 0.1, .amsgrad = true});
        same_as_separate(grouped, x, sep_a, sep_b, y);
    }
    SECTION("AdamW keeps its default decay in groups that do not override it") {
        TwoParams x, y = x.copy();
        nn::AdamW grouped({{.params = {x.a}, .lr = 0.02}, {.params = {x.b}, .weight_decay = 0.0}}, {.lr = 0.01});
        nn::AdamW sep_a({y.a}, {.lr = 0.02});
        nn::AdamW sep_b({y.b}, {.lr = 0.01, .weight_decay = 0.0});
        same_as_separate(grouped, x, sep_a, sep_b, y);
        CHECK(grouped.group_options(0).weight_decay == 1e-2);
        CHECK(grouped.type_name() == "AdamW");
    }
    SECTION("Adagrad and RMSprop") {
        TwoParams x, y = x.copy();
        nn::Adagrad grouped({{.params = {x.a}, .lr = 0.5}, {.params = {x.b}, .lr_decay = 0.1, .initial_accumulator_value = 0.2}},
                            {.lr = 0.1});
        nn::Adagrad sep_a({y.a}, {.lr = 0.5});
        nn::Adagrad sep_b({y.b}, {.lr = 0.1, .lr_decay = 0.1, .initial_accumulator_value = 0.2});
        same_as_separate(grouped, x, sep_a, sep_b, y);
        TwoParams u, v = u.copy();
        nn::RMSprop rms({{.params = {u.a}, .momentum = 0.5}, {.params = {u.b}, .lr = 0.001, .centered = true}},
                        {.lr = 0.01, .alpha = 0.9});
        nn::RMSprop rms_a({v.a}, {.lr = 0.01, .alpha = 0.9, .momentum = 0.5});
        nn::RMSprop rms_b({v.b}, {.lr = 0.001, .alpha = 0.9, .centered = true});
        same_as_separate(rms, u, rms_a, rms_b, v);
    }
}

TEST_CASE("per-group learning rates: get, set one, set all", "[nn][optim][groups]") {
    TwoParams x;
    Tensor c = Tensor::of({1.0}, f64, true);
    nn::SGD opt({{.params = {x.a, x.b}, .lr = 0.1}, {.params = {c}}}, {.lr = 0.01});
    REQUIRE(opt.param_groups().size() == 2);
    CHECK(opt.param_groups()[0].params.size() == 2);
    CHECK(opt.param_groups()[1].params[0].same(c));
    CHECK(opt.params().size() == 3);  // every group's parameters, in group order
    CHECK(opt.group_of(1) == 0);
    CHECK(opt.group_of(2) == 1);
    CHECK(opt.lr() == 0.1);  // the first group's
    CHECK(opt.group_lr(1) == 0.01);
    opt.set_group_lr(1, 0.5);
    CHECK(opt.group_lr(1) == 0.5);
    CHECK(opt.group_lr(0) == 0.1);
    // The update uses the group's current learning rate.
    set_grads({c}, 0);
    const double before = c.at(0), g = c.grad().at(0);
    opt.step();
    CHECK(c.at(0) == before - 0.5 * g);
    opt.set_lr(0.2);
    CHECK(opt.group_lr(0) == 0.2);
    CHECK(opt.group_lr(1) == 0.2);
    REQUIRE_THROWS_MATCHES(opt.set_group_lr(2, 0.1), ValueError, WhatContains({"SGD", "group 2 does not exist", "2"}));
    REQUIRE_THROWS_MATCHES(opt.group_lr(5), ValueError, WhatContains({"group 5"}));
    REQUIRE_THROWS_MATCHES(opt.set_group_lr(1, NAN), ValueError, WhatContains({"SGD: group 1", "learning rate nan"}));
    CHECK(opt.group_lr(1) == 0.2);
}

TEST_CASE("parameter groups: bad groups are refused, naming the group", "[nn][optim][groups]") {
    TwoParams x;
    REQUIRE_THROWS_MATCHES(nn::SGD(std::vector<nn::SGDGroup>{}), ValueError, WhatContains({"SGD", "no parameter groups"}));
    REQUIRE_THROWS_MATCHES(nn::Adam({{.params = {x.a}}, {.params = {x.b, x.a}}}), ValueError,
                           WhatContains({"parameter 2", "(in group 1)", "same tensor as parameter 0", "(in group 0)"}));
    REQUIRE_THROWS_MATCHES(nn::Adam({{.params = {x.a}}, {.params = {x.b}, .beta1 = 1.5}}), ValueError,
                           WhatContains({"Adam: group 1", "beta1", "1.5"}));
    REQUIRE_THROWS_MATCHES(nn::SGD({{.params = {x.a}, .lr = -0.1}, {.params = {x.b}}}), ValueError,
                           WhatContains({"SGD: group 0", "learning rate -0.1"}));
    REQUIRE_THROWS_MATCHES(nn::SGD({{.params = {x.a}}, {.params = {x.b}, .nesterov = true}}), ValueError,
                           WhatContains({"SGD: group 1", "nesterov"}));
    REQUIRE_THROWS_MATCHES(nn::RMSprop({{.params = {x.a}, .alpha = 2.0}}), ValueError, WhatContains({"RMSprop", "alpha"}));
    REQUIRE_THROWS_MATCHES(nn::Adagrad({{.params = {x.a}, .eps = 0.0}}), ValueError, WhatContains({"Adagrad", "eps > 0"}));
}

TEST_CASE("grouped optimizer state round-trips with each group's learning rate", "[nn][optim][groups]") {
    TwoParams x, y = x.copy();
    nn::Adam ox({{.params = {x.a}, .lr = 0.02}, {.params = {x.b}, .lr = 0.005, .amsgrad = true}});
    set_grads({x.a, x.b}, 0);
    ox.step();
    ox.set_group_lr(1, 0.003);
    const nn::NamedTensors saved = ox.state_dict();
    // A fresh optimizer built with other learning rates takes the saved ones.
    nn::Adam oy({{.params = {y.a}, .lr = 0.9}, {.params = {y.b}, .lr = 0.9, .amsgrad = true}});
    y.a.mutable_array() = x.a.array();
    y.b.mutable_array() = x.b.array();
    oy.load_state_dict(saved);
    CHECK(oy.group_lr(0) == 0.02);
    CHECK(oy.group_lr(1) == 0.003);
    CHECK(oy.steps() == 1);
    for (int s = 1; s < 3; ++s) {
        set_grads({x.a, x.b}, s);
        set_grads({y.a, y.b}, s);
        ox.step();
        oy.step();
    }
    CHECK(values(x.a) == values(y.a));
    CHECK(values(x.b) == values(y.b));
    // The entries: the type (as bytes) and one learning rate per group.
    std::string type;
    double lr1 = -1;
    for (const auto& [name, t] : saved) {
        if (name == "type")
            for (double c : values(t)) type.push_back(static_cast<char>(c));
        if (name == "group.1.lr") lr1 = t.item();
    }
    CHECK(type == "Adam");
    CHECK(lr1 == 0.003);
}

TEST_CASE("an optimizer state of another type or group layout is refused, naming both", "[nn][optim][groups]") {
    TwoParams x;
    nn::SGD sgd({x.a, x.b}, {.lr = 0.1, .momentum = 0.9});
    set_grads({x.a, x.b}, 0);
    sgd.step();
    nn::Adam adam({x.a, x.b});
    const std::uint64_t adam_steps = adam.steps();
    REQUIRE_THROWS_MATCHES(adam.load_state_dict(sgd.state_dict()), ValueError,
                           WhatContains({"Adam: load_state_dict", "the state is of a SGD optimizer, not of this Adam"}));
    CHECK(adam.steps() == adam_steps);
    nn::AdamW adamw({x.a, x.b});
    adam.step();
    REQUIRE_THROWS_MATCHES(adamw.load_state_dict(adam.state_dict()), ValueError,
                           WhatContains({"a Adam optimizer, not of this AdamW"}));
    // Same type, two groups saved, one here.
    nn::SGD two({{.params = {x.a}}, {.params = {x.b}}}, {.lr = 0.1, .momentum = 0.9});
    two.step();
    nn::SGD one({x.a, x.b}, {.lr = 0.1, .momentum = 0.9});
    REQUIRE_THROWS_MATCHES(one.load_state_dict(two.state_dict()), ValueError,
                           WhatContains({"the state has 2 parameter group(s), this optimizer 1", "unexpected 'group.1.lr'"}));
    // A bad learning rate in the file.
    nn::NamedTensors bad = sgd.state_dict();
    for (auto& [name, t] : bad)
        if (name == "group.0.lr") t = Tensor::scalar(-2.0, f64);
    REQUIRE_THROWS_MATCHES(one.load_state_dict(bad), ValueError, WhatContains({"'group.0.lr' is -2, not a learning rate"}));
    // A state saved before types and groups were recorded still loads, leaving the learning rate.
    nn::NamedTensors legacy;
    for (const auto& [name, t] : sgd.state_dict())
        if (name != "type" && name.rfind("group.", 0) != 0) legacy.emplace_back(name, t);
    one.set_lr(0.7);
    one.load_state_dict(legacy);
    CHECK(one.lr() == 0.7);
    CHECK(one.steps() == 1);
}
