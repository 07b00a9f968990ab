// Learning-rate schedulers: each one's sequence of rates over 20-50 epochs against PyTorch's
// formulas written out here (both the closed form and the step-by-step form torch's step() uses,
// which agree to rounding), ReduceLROnPlateau on scripted metrics, every group scheduled, a state
// saved at epoch k and loaded into fresh objects continuing identically (also through
// checkpoints), and bad options refused with the range allowed.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <numbers>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;

namespace {
constexpr double kPi = std::numbers::pi;

// An optimizer of two groups with base rates 0.1 and 0.02 (no gradients: only rates matter here).
struct TwoGroups {
    Tensor a = Tensor::of({1.0}, f64, true), b = Tensor::of({2.0}, f64, true);
    nn::SGD opt{{{.params = {a}, .lr = 0.1}, {.params = {b}, .lr = 0.02}}};
};
const double kBase[2] = {0.1, 0.02};

// The rates of both groups after construction (epoch 0) and after each of `epochs` steps.
std::vector<std::vector<double>> run(nn::EpochLRScheduler& s, nn::Optimizer& opt, std::size_t epochs) {
    std::vector<std::vector<double>> out;
    for (std::size_t e = 0; e <= epochs; ++e) {
        if (e > 0) s.step();
        REQUIRE(s.last_epoch() == e);
        out.push_back({opt.group_lr(0), opt.group_lr(1)});
        CHECK(s.last_lr() == out.back());
    }
    return out;
}

// Checks the rates against expect(epoch, base) for both groups: exact to rounding.
void check_rates(const std::vector<std::vector<double>>& got, const std::function<double(std::size_t, double)>& expect) {
    for (std::size_t e = 0; e < got.size(); ++e)
        for (std::size_t g = 0; g < 2; ++g) {
            INFO("epoch " << e << ", group " << g);
            CHECK(got[e][g] == Approx(expect(e, kBase[g])).epsilon(1e-13).margin(1e-300));
        }
}
// PyTorch's step-by-step (chainable) form: next(epoch, previous rate, base) from epoch 1 on.
void check_recursive(const std::vector<std::vector<double>>& got, double start_factor,
                     const std::function<double(std::size_t, double, double)>& next) {
    for (std::size_t g = 0; g < 2; ++g) {
        double lr = kBase[g] * start_factor;
        for (std::size_t e = 0; e < got.size(); ++e) {
            if (e > 0) lr = next(e, lr, kBase[g]);
            INFO("epoch " << e << ", group " << g);
            CHECK(got[e][g] == Approx(lr).epsilon(1e-12).margin(1e-300));
        }
    }
}
}  // namespace

TEST_CASE("StepLR and MultiStepLR decay by gamma at their epochs", "[nn][scheduler]") {
    TwoGroups t;
    nn::StepLR s(t.opt, {.step_size = 7, .gamma = 0.5});
    const auto rates = run(s, t.opt, 30);
    check_rates(rates, [](std::size_t e, double base) { return base * std::pow(0.5, static_cast<double>(e / 7)); });
    check_recursive(rates, 1.0, [](std::size_t e, double lr, double) { return e % 7 == 0 ? lr * 0.5 : lr; });
    CHECK(rates[6][0] == 0.1);
    CHECK(rates[7][0] == 0.05);
    CHECK(rates[30][1] == Approx(0.02 / 16));

    TwoGroups m;
    nn::MultiStepLR ms(m.opt, {.milestones = {25, 10, 10}, .gamma = 0.1});  // 10 twice: two decays there
    CHECK(ms.options.milestones == std::vector<std::size_t>{10, 10, 25});
    check_rates(run(ms, m.opt, 30), [](std::size_t e, double base) {
        return e < 10 ? base : e < 25 ? base * std::pow(0.1, 2.0) : base * std::pow(0.1, 3.0);
    });
}

TEST_CASE("ExponentialLR multiplies by gamma every epoch", "[nn][scheduler]") {
    TwoGroups t;
    nn::ExponentialLR s(t.opt, {.gamma = 0.9});
    const auto rates = run(s, t.opt, 40);
    check_rates(rates, [](std::size_t e, double base) { return base * std::pow(0.9, static_cast<double>(e)); });
    check_recursive(rates, 1.0, [](std::size_t, double lr, double) { return lr * 0.9; });
}

TEST_CASE("CosineAnnealingLR follows the cosine down to eta_min and back", "[nn][scheduler]") {
    TwoGroups t;
    const double eta = 0.001;
    const std::size_t T = 20;
    nn::CosineAnnealingLR s(t.opt, {.T_max = T, .eta_min = eta});
    const auto rates = run(s, t.opt, 50);  // past T_max: the cosine goes on, as in PyTorch
    check_rates(rates, [&](std::size_t e, double base) {
        return eta + (base - eta) * (1 + std::cos(kPi * static_cast<double>(e) / T)) / 2;
    });
    // torch's get_lr(), including its special case at the bottom of each period.
    check_recursive(rates, 1.0, [&](std::size_t e, double lr, double base) {
        const double ed = static_cast<double>(e), Td = static_cast<double>(T);
        if ((static_cast<long>(e) - 1 - static_cast<long>(T)) % (2 * static_cast<long>(T)) == 0)
            return lr + (base - eta) * (1 - std::cos(kPi / Td)) / 2;
        return (1 + std::cos(kPi * ed / Td)) / (1 + std::cos(kPi * (ed - 1) / Td)) * (lr - eta) + eta;
    });
    CHECK(rates[T][0] == Approx(eta));
    CHECK(rates[2 * T][0] == Approx(0.1));
}

TEST_CASE("LinearLR warms up linearly, then holds", "[nn][scheduler]") {
    TwoGroups t;
    nn::LinearLR s(t.opt, {.start_factor = 0.25, .end_factor = 1.0, .total_iters = 4});
    const auto rates = run(s, t.opt, 20);
    check_rates(rates, [](std::size_t e, double base) {
        return base * (0.25 + 0.75 * static_cast<double>(std::min<std::size_t>(e, 4)) / 4);
    });
    check_recursive(rates, 0.25, [](std::size_t e, double lr, double) {
        if (e > 4) return lr;
        return lr * (1.0 + 0.75 / (4 * 0.25 + static_cast<double>(e - 1) * 0.75));
    });
    CHECK(rates[0][0] == Approx(0.025));
    CHECK(rates[2][0] == Approx(0.0625));
    CHECK(rates[20][0] == Approx(0.1));
    // PyTorch's defaults: a third of the rate, up over 5 epochs.
    TwoGroups d;
    nn::LinearLR def(d.opt);
    CHECK(d.opt.group_lr(0) == Approx(0.1 / 3));
}

TEST_CASE("warm-up then decay: SequentialLR and LambdaLR agree with the formula", "[nn][scheduler]") {
    const std::size_t W = 5, T = 25;
    auto expect = [&](std::size_t e, double base) {
        if (e < W) return base * (0.1 + 0.9 * static_cast<double>(e) / W);
        return base * (1 + std::cos(kPi * static_cast<double>(e - W) / T)) / 2;
    };
    TwoGroups t;
    nn::LinearLR warmup(t.opt, {.start_factor = 0.1, .total_iters = W});
    nn::CosineAnnealingLR decay(t.opt, {.T_max = T});
    nn::SequentialLR seq(t.opt, {&warmup, &decay}, {W});
    CHECK(decay.base_lrs() == std::vector<double>{0.1, 0.02});  // not the warm-up's first rate
    CHECK(t.opt.group_lr(0) == Approx(0.01));                  // epoch 0 is the warm-up's
    const auto seq_rates = run(seq, t.opt, 40);
    check_rates(seq_rates, expect);

    TwoGroups u;
    nn::LambdaLR lambda(u.opt, [&](std::size_t e) {
        if (e < W) return 0.1 + 0.9 * static_cast<double>(e) / W;
        return (1 + std::cos(kPi * static_cast<double>(e - W) / T)) / 2;
    });
    const auto lambda_rates = run(lambda, u.opt, 40);
    check_rates(lambda_rates, expect);

    // One function per group.
    TwoGroups v;
    nn::LambdaLR per_group(v.opt, std::vector<nn::LRLambda>{[](std::size_t e) { return 1.0 / (1 + e); },
                                                            [](std::size_t e) { return e % 2 ? 2.0 : 1.0; }});
    per_group.step();
    CHECK(v.opt.group_lr(0) == 0.05);
    CHECK(v.opt.group_lr(1) == 0.04);
}

TEST_CASE("ReduceLROnPlateau on a scripted loss: patience, threshold, cooldown, min_lr", "[nn][scheduler]") {
    Tensor p = Tensor::of({1.0}, f64, true);
    nn::SGD opt({p}, {.lr = 1.0});
    nn::ReduceLROnPlateau s(opt, {.factor = 0.5, .patience = 2, .threshold = 0.1, .cooldown = 1, .min_lr = 0.1});
    // Better means below best * 0.9. Worked by hand from PyTorch's step():
    //  1: 10 best | 2-3: 9.5, 9.2 bad 1, 2 | 4: 9.1 bad 3 > 2: lr 0.5, cooldown 1
    //  5: 9.0 (not < 9) in cooldown | 6: 8 best | 7-8: bad 1, 2 | 9: bad 3: lr 0.25
    //  10: cooldown | 11-12: bad 1, 2 | 13: lr 0.125 | 14: 7 best (< 7.2), cooldown ends
    //  15-16: bad 1, 2 | 17: max(0.0625, min_lr) = 0.1 | 21: 0.1 stays (no change left)
    const std::vector<double> metric{10, 9.5, 9.2, 9.1, 9.0, 8, 7.5, 7.4, 7.3, 7.3, 7.3,
                                     7.3, 7.3, 7, 7, 7, 7, 7, 7, 7, 7};
    const std::vector<double> lr{1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25,
                                 0.25, 0.125, 0.125, 0.125, 0.125, 0.1, 0.1, 0.1, 0.1, 0.1};
    for (std::size_t e = 0; e < metric.size(); ++e) {
        s.step(metric[e]);
        INFO("epoch " << e + 1 << ", metric " << metric[e]);
        CHECK(opt.lr() == lr[e]);
        CHECK(s.last_lr()[0] == lr[e]);
    }
    CHECK(s.best() == 7);
    CHECK(s.last_epoch() == metric.size());

    // An accuracy (mode max), an absolute threshold, two groups with their own floors, a NaN.
    Tensor q = Tensor::of({1.0}, f64, true);
    nn::SGD two({{.params = {p}, .lr = 1.0}, {.params = {q}, .lr = 0.02}});
    nn::ReduceLROnPlateau acc(two, {.mode = nn::PlateauMode::max, .factor = 0.1, .patience = 1, .threshold = 0.01,
                                    .threshold_mode = nn::ThresholdMode::abs, .min_lrs = {0.0, 0.01}});
    const std::vector<double> acc_metric{0.5, 0.505, 0.52, 0.52, 0.525, NAN, 0.6};
    const std::vector<double> lr0{1, 1, 1, 1, 0.1, 0.1, 0.1}, lr1{0.02, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01};
    for (std::size_t e = 0; e < acc_metric.size(); ++e) {
        acc.step(acc_metric[e]);
        INFO("epoch " << e + 1);
        CHECK(two.group_lr(0) == Approx(lr0[e]));
        CHECK(two.group_lr(1) == Approx(lr1[e]));
    }
    CHECK(acc.best() == 0.6);
    CHECK(acc.num_bad_epochs() == 0);
}

TEST_CASE("a scheduler's base is the groups' initial_lr, shared by later schedulers", "[nn][scheduler]") {
    TwoGroups t;
    t.opt.set_lr(0.5);  // before any scheduler: this is the base, as in PyTorch
    nn::ExponentialLR first(t.opt, {.gamma = 0.5});
    first.step();
    CHECK(t.opt.lr() == 0.25);
    nn::StepLR second(t.opt, {.step_size = 3});
    CHECK(second.base_lrs() == std::vector<double>{0.5, 0.5});
    REQUIRE(t.opt.param_groups()[1].initial_lr.has_value());
    CHECK(*t.opt.param_groups()[1].initial_lr == 0.5);
    // The optimizer's state keeps it, so a scheduler created after loading starts from it.
    TwoGroups u;
    u.opt.load_state_dict(t.opt.state_dict());
    nn::StepLR later(u.opt, {.step_size = 3});
    CHECK(later.base_lrs() == std::vector<double>{0.5, 0.5});
}

namespace {
// One scheduler under test: how to build it on an optimizer, and how to step it at an epoch (a
// ReduceLROnPlateau gets a scripted metric).
struct Case {
    const char* name;
    std::function<std::unique_ptr<nn::LRScheduler>(nn::Optimizer&)> make;
};
void step(nn::LRScheduler& s, std::size_t epoch) {
    if (auto* plateau = dynamic_cast<nn::ReduceLROnPlateau*>(&s)) {
        const double metric[] = {5, 4, 4.5, 4.4, 4.3, 3, 3.5, 3.4, 3.4, 2};
        plateau->step(metric[epoch % 10]);
    } else {
        dynamic_cast<nn::EpochLRScheduler&>(s).step();
    }
}
// A SequentialLR that owns the schedulers it drives.
struct OwningSequential {
    std::unique_ptr<nn::LinearLR> warmup;
    std::unique_ptr<nn::MultiStepLR> decay;
};
}  // namespace

TEST_CASE("a scheduler saved at epoch k and loaded into fresh objects continues identically", "[nn][scheduler]") {
    std::vector<std::unique_ptr<OwningSequential>> owned;
    const std::vector<Case> cases{
        {"StepLR", [](nn::Optimizer& o) { return std::make_unique<nn::StepLR>(o, nn::StepLROptions{.step_size = 4}); }},
        {"MultiStepLR",
         [](nn::Optimizer& o) { return std::make_unique<nn::MultiStepLR>(o, nn::MultiStepLROptions{.milestones = {3, 9}}); }},
        {"ExponentialLR",
         [](nn::Optimizer& o) { return std::make_unique<nn::ExponentialLR>(o, nn::ExponentialLROptions{.gamma = 0.8}); }},
        {"CosineAnnealingLR",
         [](nn::Optimizer& o) { return std::make_unique<nn::CosineAnnealingLR>(o, nn::CosineAnnealingLROptions{.T_max = 10}); }},
        {"LinearLR",
         [](nn::Optimizer& o) { return std::make_unique<nn::LinearLR>(o, nn::LinearLROptions{.total_iters = 8}); }},
        {"LambdaLR",
         [](nn::Optimizer& o) { return std::make_unique<nn::LambdaLR>(o, [](std::size_t e) { return 1.0 / (1.0 + e); }); }},
        {"SequentialLR",
         [&](nn::Optimizer& o) {
             auto& parts = owned.emplace_back(std::make_unique<OwningSequential>());
             parts->warmup = std::make_unique<nn::LinearLR>(o, nn::LinearLROptions{.start_factor = 0.2, .total_iters = 3});
             parts->decay = std::make_unique<nn::MultiStepLR>(o, nn::MultiStepLROptions{.milestones = {2, 5}, .gamma = 0.5});
             return std::make_unique<nn::SequentialLR>(o, std::vector<nn::EpochLRScheduler*>{parts->warmup.get(), parts->decay.get()},
                                                       std::vector<std::size_t>{3});
         }},
        {"ReduceLROnPlateau",
         [](nn::Optimizer& o) {
             return std::make_unique<nn::ReduceLROnPlateau>(o, nn::ReduceLROnPlateauOptions{.patience = 1, .cooldown = 1});
         }},
    };
    const std::size_t N = 24, K = 9;
    for (const Case& c : cases) {
        INFO(c.name);
        TwoGroups a;
        auto sa = c.make(a.opt);
        CHECK(sa->type_name() == c.name);
        std::vector<double> want;
        for (std::size_t e = 0; e < N; ++e) {
            step(*sa, e);
            want.push_back(a.opt.group_lr(0));
            want.push_back(a.opt.group_lr(1));
        }
        TwoGroups b;
        auto sb = c.make(b.opt);
        for (std::size_t e = 0; e < K; ++e) step(*sb, e);
        const nn::NamedTensors opt_state = b.opt.state_dict(), sched_state = sb->state_dict();
        // Fresh objects, built with other rates: the states take over.
        TwoGroups fresh;
        fresh.opt.set_lr(0.7);
        auto sc = c.make(fresh.opt);
        fresh.opt.load_state_dict(opt_state);
        sc->load_state_dict(sched_state);
        CHECK(sc->last_epoch() == K);
        CHECK(sc->last_lr() == sb->last_lr());
        CHECK(sc->base_lrs() == sb->base_lrs());
        std::vector<double> got(want.begin(), want.begin() + 2 * K);
        for (std::size_t e = K; e < N; ++e) {
            step(*sc, e);
            got.push_back(fresh.opt.group_lr(0));
            got.push_back(fresh.opt.group_lr(1));
        }
        CHECK(got == want);
    }
}

TEST_CASE("a scheduler state of another type or group count is refused, changing nothing", "[nn][scheduler]") {
    TwoGroups t;
    nn::StepLR step_lr(t.opt, {.step_size = 2});
    step_lr.step();
    nn::ExponentialLR exp_lr(t.opt, {.gamma = 0.5});
    REQUIRE_THROWS_MATCHES(exp_lr.load_state_dict(step_lr.state_dict()), ValueError,
                           WhatContains({"ExponentialLR: load_state_dict", "the state is of a StepLR, not of this ExponentialLR"}));
    CHECK(exp_lr.last_epoch() == 0);
    Tensor p = Tensor::of({1.0}, f64, true);
    nn::SGD one({p});
    nn::StepLR one_group(one, {.step_size = 2});
    REQUIRE_THROWS_MATCHES(one_group.load_state_dict(step_lr.state_dict()), ValueError,
                           WhatContains({"'base_lrs' has shape [2], but the optimizer has 1 parameter group(s)"}));
    nn::NamedTensors bad = step_lr.state_dict();
    for (auto& [name, v] : bad)
        if (name == "last_epoch") v = Tensor::scalar(-1.0, f64);
    bad.emplace_back("surprise", Tensor::scalar(1.0, f64));
    REQUIRE_THROWS_MATCHES(step_lr.load_state_dict(bad), ValueError,
                           WhatContains({"'last_epoch' is -1, not a count", "unexpected 'surprise'"}));
    CHECK(step_lr.last_epoch() == 1);
    // A SequentialLR names the inner scheduler whose state does not fit.
    TwoGroups u;
    nn::LinearLR w(u.opt), w2(u.opt);
    nn::StepLR d(u.opt, {.step_size = 3});
    nn::ExponentialLR d2(u.opt, {.gamma = 0.9});
    nn::SequentialLR s1(u.opt, {&w, &d}, {2}), s2(u.opt, {&w2, &d2}, {2});
    REQUIRE_THROWS_MATCHES(s2.load_state_dict(s1.state_dict()), ValueError,
                           WhatContains({"schedulers.1: the state is of a StepLR, not of this ExponentialLR"}));
}

TEST_CASE("bad scheduler options are refused with the range allowed", "[nn][scheduler]") {
    TwoGroups t;
    REQUIRE_THROWS_MATCHES(nn::StepLR(t.opt, {.step_size = 0}), ValueError, WhatContains({"StepLR", "step_size 0", ">= 1"}));
    REQUIRE_THROWS_MATCHES(nn::StepLR(t.opt, {.step_size = 2, .gamma = 0.0}), ValueError,
                           WhatContains({"StepLR", "gamma 0", "> 0"}));
    REQUIRE_THROWS_MATCHES(nn::StepLR(t.opt, {.step_size = 2, .gamma = -0.5}), ValueError, WhatContains({"gamma -0.5"}));
    REQUIRE_THROWS_MATCHES(nn::MultiStepLR(t.opt, {.milestones = {2}, .gamma = NAN}), ValueError,
                           WhatContains({"MultiStepLR", "gamma nan"}));
    REQUIRE_THROWS_MATCHES(nn::ExponentialLR(t.opt, {}), ValueError, WhatContains({"ExponentialLR", "gamma 0", "> 0"}));
    REQUIRE_THROWS_MATCHES(nn::CosineAnnealingLR(t.opt, {.T_max = 0}), ValueError,
                           WhatContains({"CosineAnnealingLR", "T_max 0", ">= 1"}));
    REQUIRE_THROWS_MATCHES(nn::CosineAnnealingLR(t.opt, {.T_max = 5, .eta_min = -1}), ValueError,
                           WhatContains({"eta_min -1", ">= 0"}));
    REQUIRE_THROWS_MATCHES(nn::CosineAnnealingLR(t.opt, {.T_max = 5, .eta_min = NAN}), ValueError, WhatContains({"eta_min nan"}));
    REQUIRE_THROWS_MATCHES(nn::LinearLR(t.opt, {.start_factor = 0.0}), ValueError,
                           WhatContains({"LinearLR", "start_factor 0", "(0, 1]"}));
    REQUIRE_THROWS_MATCHES(nn::LinearLR(t.opt, {.start_factor = NAN}), ValueError, WhatContains({"start_factor nan"}));
    REQUIRE_THROWS_MATCHES(nn::LinearLR(t.opt, {.end_factor = 1.5}), ValueError, WhatContains({"end_factor 1.5", "[0, 1]"}));
    REQUIRE_THROWS_MATCHES(nn::LinearLR(t.opt, {.total_iters = 0}), ValueError, WhatContains({"total_iters 0", ">= 1"}));
    REQUIRE_THROWS_MATCHES(nn::ReduceLROnPlateau(t.opt, {.factor = 1.0}), ValueError,
                           WhatContains({"ReduceLROnPlateau", "factor 1", "(0, 1)"}));
    REQUIRE_THROWS_MATCHES(nn::ReduceLROnPlateau(t.opt, {.factor = NAN}), ValueError, WhatContains({"factor nan"}));
    REQUIRE_THROWS_MATCHES(nn::ReduceLROnPlateau(t.opt, {.threshold = -1}), ValueError, WhatContains({"threshold -1", ">= 0"}));
    REQUIRE_THROWS_MATCHES(nn::ReduceLROnPlateau(t.opt, {.min_lr = -0.1}), ValueError, WhatContains({"min_lr -0.1", ">= 0"}));
    REQUIRE_THROWS_MATCHES(nn::ReduceLROnPlateau(t.opt, {.min_lrs = {0.1}}), ValueError,
                           WhatContains({"1 min_lrs for 2 parameter group(s)"}));
    REQUIRE_THROWS_MATCHES(nn::LambdaLR(t.opt, std::vector<nn::LRLambda>{[](std::size_t) { return 1.0; }}), ValueError,
                           WhatContains({"LambdaLR", "1 function(s) for 2 parameter group(s)"}));
    // A lambda that gives a bad factor: refused at that epoch, nothing changed.
    nn::LambdaLR bad(t.opt, [](std::size_t e) { return e < 2 ? 1.0 : -1.0; });
    bad.step();
    REQUIRE_THROWS_MATCHES(bad.step(), ValueError, WhatContains({"LambdaLR", "epoch 2", "group 0", "-0.1"}));
    CHECK(bad.last_epoch() == 1);
    CHECK(t.opt.lr() == 0.1);
    // SequentialLR: milestones that fit the schedulers, schedulers of the same optimizer.
    nn::LinearLR w(t.opt);
    nn::StepLR d(t.opt, {.step_size = 3});
    REQUIRE_THROWS_MATCHES(nn::SequentialLR(t.opt, {&w, &d}, {}), ValueError,
                           WhatContains({"SequentialLR", "2 scheduler(s) need 1 milestone(s), got 0"}));
    REQUIRE_THROWS_MATCHES(nn::SequentialLR(t.opt, {&w, &d, &w}, {4, 4}), ValueError,
                           WhatContains({"milestones [4, 4] must increase strictly"}));
    TwoGroups other;
    nn::StepLR elsewhere(other.opt, {.step_size = 3});
    REQUIRE_THROWS_MATCHES(nn::SequentialLR(t.opt, {&w, &elsewhere}, {4}), ValueError,
                           WhatContains({"scheduler 1 (StepLR) belongs to another optimizer"}));
}

// ---- checkpoints --------------------------------------------------------------------------------

namespace {
const ScratchDir scratch("tapegrad_test_scheduler");

struct Net : nn::Module {
    nn::Linear body{3, 4}, head{4, 2};
    Net() {
        register_module("body", body);
        register_module("head", head);
    }
    Tensor loss(Generator& gen) {
        Tensor x = randn({5, 3}, gen, body.weight.dtype());
        return sum(head(tanh(body(x))) * head(tanh(body(x))));
    }
};
// A model whose body and head train at different rates, warmed up then decayed.
struct Run {
    Net net;
    nn::Adam opt{{{.params = net.body.parameters(), .lr = 0.01}, {.params = net.head.parameters(), .lr = 0.03}}};
    nn::LinearLR warmup{opt, {.start_factor = 0.5, .total_iters = 3}};
    nn::ExponentialLR decay{opt, {.gamma = 0.7}};
    nn::SequentialLR sched{opt, {&warmup, &decay}, {3}};
    Generator gen{3};
    double epoch() {
        Tape tape;
        Tensor loss = net.loss(gen);
        tape.backward(loss);
        opt.step();
        opt.zero_grad();
        sched.step();
        return loss.item();
    }
};
}  // namespace

TEST_CASE("a checkpoint with a scheduler resumes the schedule and each group's rate exactly", "[nn][scheduler][checkpoint]") {
    const std::size_t N = 10, K = 4;
    const auto path = scratch("resume.npz").string();
    manual_seed(1);
    Run a;
    std::vector<double> want;
    for (std::size_t e = 0; e < N; ++e) want.push_back(a.epoch());

    manual_seed(1);
    Run b;
    std::vector<double> got;
    for (std::size_t e = 0; e < K; ++e) got.push_back(b.epoch());
    nn::save_checkpoint(path, b.net, b.opt, b.sched, K, b.gen);

    manual_seed(2);
    Run c;
    const nn::CheckpointInfo info = nn::load_checkpoint(path, c.net, c.opt, c.sched, c.gen);
    CHECK(info.step == K);
    CHECK(c.sched.last_epoch() == K);
    CHECK(c.opt.group_lr(0) == b.opt.group_lr(0));
    CHECK(c.opt.group_lr(1) == b.opt.group_lr(1));
    CHECK(c.opt.group_lr(0) != c.opt.group_lr(1));
    for (std::size_t e = K; e < N; ++e) got.push_back(c.epoch());
    CHECK(got == want);
    CHECK(flat(c.net) == flat(a.net));
    CHECK(c.opt.group_lr(1) == a.opt.group_lr(1));

    // A checkpoint without a scheduler cannot fill one; the plain loader lists the scheduler's entries.
    const auto plain = scratch("plain.npz").string();
    nn::save_checkpoint(plain, b.net, b.opt, K, b.gen);
    Run d;
    REQUIRE_THROWS_MATCHES(nn::load_checkpoint(plain, d.net, d.opt, d.sched, d.gen), ValueError,
                           WhatContains({plain, "holds no scheduler state"}));
    REQUIRE_THROWS_MATCHES(nn::load_checkpoint(path, d.net, d.opt, d.gen), ValueError,
                           WhatContains({"unexpected 'scheduler.type'"}));
    // The plain one still restores per-group rates (from the optimizer's state).
    nn::load_checkpoint(plain, d.net, d.opt, d.gen);
    CHECK(d.opt.group_lr(1) == b.opt.group_lr(1));
}

TEST_CASE("a checkpoint whose scheduler or model does not fit changes nothing", "[nn][scheduler][checkpoint]") {
    const auto path = scratch("mismatch.npz").string();
    manual_seed(3);
    Run a;
    a.epoch();
    a.epoch();
    nn::save_checkpoint(path, a.net, a.opt, a.sched, 2, a.gen);
    // Another scheduler type: refused before the model changes.
    Net net;
    nn::Adam opt{{{.params = net.body.parameters()}, {.params = net.head.parameters()}}};
    nn::StepLR step_lr(opt, {.step_size = 2});
    Generator gen(9);
    const auto before = flat(net);
    REQUIRE_THROWS_MATCHES(nn::load_checkpoint(path, net, opt, step_lr, gen), ValueError,
                           WhatContains({path, "the state is of a SequentialLR, not of this StepLR"}));
    CHECK(flat(net) == before);
    CHECK(step_lr.last_epoch() == 0);
    // The scheduler fits, the model does not: the scheduler is put back as it was.
    struct Small : nn::Module {
        nn::Linear body{3, 4}, head{4, 3};
        Small() {
            register_module("body", body);
            register_module("head", head);
        }
    } small;
    nn::Adam small_opt{{{.params = small.body.parameters()}, {.params = small.head.parameters()}}};
    nn::LinearLR w{small_opt, {.start_factor = 0.5, .total_iters = 3}};
    nn::ExponentialLR e{small_opt, {.gamma = 0.7}};
    nn::SequentialLR s{small_opt, {&w, &e}, {3}};
    REQUIRE_THROWS_MATCHES(nn::load_checkpoint(path, small, small_opt, s, gen), ValueError,
                           WhatContains({"'head.weight' has shape [2, 4] but the model's is [3, 4]"}));
    CHECK(s.last_epoch() == 0);
    CHECK(gen.state() == Generator(9).state());
}
