// Optimizers and gradient clipping: one or two steps of each against values computed here from
// PyTorch's documented update rules, state save/restore, and clipping semantics.
#include <catch2/catch.hpp>

#include <cmath>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
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
