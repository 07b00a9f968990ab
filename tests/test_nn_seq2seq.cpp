// nn::EncoderDecoder: shapes and gradients for every encoder, decoder, direction and attention
// combination, float64 gradcheck of the whole loss, padding that changes nothing (a padded batch equals
// each row alone), teacher forcing equal to the decode adapter step by step, greedy decoding equal to a
// hand loop, scheduled sampling, a reverse-the-sequence task that must be learnt, and bad input named.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <optional>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;

namespace {
constexpr std::int64_t kPad = 0, kStart = 1, kEnd = 2;
constexpr std::size_t Vs = 7, Vt = 6;
const nn::RecurrentKind kKinds[] = {nn::RecurrentKind::rnn, nn::RecurrentKind::lstm, nn::RecurrentKind::gru};
const std::optional<nn::AttentionScore> kAttentions[] = {std::nullopt, nn::AttentionScore::additive,
                                                         nn::AttentionScore::dot, nn::AttentionScore::general};

nn::EncoderDecoder make(nn::RecurrentKind enc, nn::RecurrentKind dec, bool bidirectional,
                        std::optional<nn::AttentionScore> attention, std::size_t layers = 2, std::uint64_t seed = 5) {
    manual_seed(seed);
    nn::EncoderDecoder m({.src_vocab_size = Vs,
                          .tgt_vocab_size = Vt,
                          .embedding_size = 3,
                          .hidden_size = 4,
                          .num_layers = layers,
                          .encoder = enc,
                          .decoder = dec,
                          .bidirectional = bidirectional,
                          .attention = attention,
                          .src_pad_id = kPad,
                          .tgt_pad_id = kPad});
    m.to(f64);
    return m;
}

// A padded batch: src [S, B] whose steps past lengths hold `fill` (or random non-pad ids when fill < 0),
// tgt_in [T, B] = start then gold tokens, tgt_out [T, B] = gold then end, both padded past each row's length.
struct Batch {
    LongTensor src, tgt_in, tgt_out;
    std::vector<std::int64_t> src_lengths, tgt_lengths;  // tgt_lengths count the steps of tgt_in in use
};
Batch make_batch(std::size_t S, std::size_t T, const std::vector<std::int64_t>& src_lengths,
                 const std::vector<std::int64_t>& tgt_lengths, std::uint64_t seed, std::int64_t fill = -1) {
    Generator g(seed);
    const std::size_t B = src_lengths.size();
    xt::xarray<std::int64_t> src = xt::xarray<std::int64_t>::from_shape({S, B});
    xt::xarray<std::int64_t> tin = xt::xarray<std::int64_t>::from_shape({T, B});
    xt::xarray<std::int64_t> tout = xt::xarray<std::int64_t>::from_shape({T, B});
    for (std::size_t b = 0; b < B; ++b) {
        for (std::size_t s = 0; s < S; ++s) {
            const std::int64_t id = 3 + static_cast<std::int64_t>(g.randint(Vs - 3));
            src(s, b) = s < static_cast<std::size_t>(src_lengths[b]) || fill < 0 ? id : fill;
        }
        const std::size_t L = static_cast<std::size_t>(tgt_lengths[b]);
        std::vector<std::int64_t> gold;
        for (std::size_t t = 0; t + 1 < L; ++t) gold.push_back(3 + static_cast<std::int64_t>(g.randint(Vt - 3)));
        for (std::size_t t = 0; t < T; ++t) {
            tin(t, b) = t == 0 ? kStart : t < L ? gold[t - 1] : kPad;
            tout(t, b) = t + 1 < L ? gold[t] : t + 1 == L ? kEnd : kPad;
        }
    }
    return {LongTensor(src), LongTensor(tin), LongTensor(tout), src_lengths, tgt_lengths};
}

// Column b of ids [rows, B], cut to its first n rows.
LongTensor row(const LongTensor& ids, std::size_t b, std::int64_t n) {
    return ids.slice(1, long(b), long(b) + 1).slice(0, 0, n);
}

std::string config_name(const nn::EncoderDecoder& m) { return m.type_name() + "(" + m.extra_repr() + ")"; }
}  // namespace

TEST_CASE("EncoderDecoder gives the documented shapes and gradients for every configuration", "[nn][seq2seq]") {
    const Batch batch = make_batch(5, 4, {5, 2, 4}, {4, 2, 3}, 1);
    for (auto enc : kKinds)
        for (auto dec : kKinds)
            for (bool bidirectional : {false, true})
                for (auto attention : kAttentions) {
                    nn::EncoderDecoder m = make(enc, dec, bidirectional, attention);
                    INFO(config_name(m));
                    const nn::EncoderOutput e = m.encode(batch.src, batch.src_lengths);
                    CHECK(e.outputs.shape() == Shape{5, 3, 4});
                    CHECK(e.state.h.shape() == Shape{2, 3, 4});
                    CHECK(e.state.c.defined() == (dec == nn::RecurrentKind::lstm));
                    if (e.state.c.defined()) CHECK(e.state.c.shape() == Shape{2, 3, 4});
                    CHECK(e.lengths == batch.src_lengths);

                    Tape tape;
                    const Tensor logits = m(batch.src, batch.src_lengths, batch.tgt_in);
                    REQUIRE(logits.shape() == Shape{4, 3, Vt});
                    const Tensor loss = m.loss(logits, batch.tgt_out);
                    REQUIRE(loss.shape() == Shape{});
                    REQUIRE(std::isfinite(loss.item()));
                    tape.backward(loss);
                    // Every parameter takes part: a bridge, the attention or the input feeding left
                    // unconnected would show here as a parameter without gradient.
                    for (const auto& [name, p] : m.named_parameters()) {
                        INFO(name);
                        REQUIRE(p.has_grad());
                        CHECK(sum(abs(p.grad())).item() > 0);
                    }

                    // Names: PyTorch's inside the recurrent layers, a bridge per layer when bidirectional.
                    CHECK_NOTHROW(m.parameter("encoder.weight_ih_l1"));
                    CHECK_NOTHROW(m.parameter("decoder.weight_hh_l1"));
                    CHECK_NOTHROW(m.parameter("out.bias"));
                    CHECK_NOTHROW(m.parameter("src_embedding.weight"));
                    if (bidirectional) {
                        CHECK_NOTHROW(m.parameter("encoder.weight_ih_l0_reverse"));
                        CHECK(m.parameter("bridge_h_l1.weight").shape() == Shape{4, 4});
                        CHECK(m.bridge_c.size() ==
                              (enc == nn::RecurrentKind::lstm && dec == nn::RecurrentKind::lstm ? 2u : 0u));
                    } else {
                        CHECK(m.bridge_h.empty());
                    }
                    CHECK((m.attention != nullptr) == attention.has_value());
                    if (attention) CHECK(m.parameter("attn_combine.weight").shape() == Shape{4, 8});
                    CHECK(m.parameter("decoder.weight_ih_l0").size(1) == (attention ? 3u + 4u : 3u));

                    Tensor state = m.decode_state(batch.src, batch.src_lengths);
                    const std::size_t Ls = dec == nn::RecurrentKind::lstm ? 4 : 2;
                    CHECK(state.shape() == Shape{3, 1 + Ls * 4 + (attention ? 4 + 5 * 4 : 0)});
                    CHECK(m.decode_step(LongTensor{kStart, kStart, kStart}, state).shape() == Shape{3, Vt});
                }
}

TEST_CASE("EncoderDecoder prints its configuration", "[nn][seq2seq]") {
    manual_seed(1);
    nn::EncoderDecoder m({.src_vocab_size = 10, .tgt_vocab_size = 12, .embedding_size = 8, .hidden_size = 16,
                          .encoder = nn::RecurrentKind::lstm, .decoder = nn::RecurrentKind::gru,
                          .bidirectional = true, .attention = nn::AttentionScore::general, .dropout = 0.1});
    CHECK_THAT(m.summary(), Contains("EncoderDecoder(lstm->gru, src_vocab=10, tgt_vocab=12, hidden_size=16, "
                                     "num_layers=1, bidirectional, attention=general, dropout=0.1)"));
    CHECK_THAT(m.summary(), Contains("bridge_h_l0"));
    CHECK(m.parameter("encoder.weight_hh_l0").shape() == Shape{4 * 8, 8});  // hidden_size / 2 per direction
    CHECK(m.parameter("decoder.weight_ih_l0").shape() == Shape{3 * 16, 8 + 16});  // embedding; a_(t-1)
}

TEST_CASE("EncoderDecoder passes float64 gradcheck of its whole loss", "[nn][seq2seq][gradcheck]") {
    const Batch batch = make_batch(4, 3, {4, 2}, {3, 2}, 2);
    struct Config {
        nn::RecurrentKind enc, dec;
        bool bidirectional;
        std::optional<nn::AttentionScore> attention;
    };
    const Config configs[] = {
        {nn::RecurrentKind::lstm, nn::RecurrentKind::gru, true, nn::AttentionScore::additive},
        {nn::RecurrentKind::lstm, nn::RecurrentKind::gru, true, nn::AttentionScore::general},
        {nn::RecurrentKind::lstm, nn::RecurrentKind::lstm, true, nn::AttentionScore::dot},
        {nn::RecurrentKind::gru, nn::RecurrentKind::lstm, true, std::nullopt},
        {nn::RecurrentKind::lstm, nn::RecurrentKind::lstm, false, std::nullopt},
    };
    for (const Config& c : configs) {
        nn::EncoderDecoder m = make(c.enc, c.dec, c.bidirectional, c.attention);
        INFO(config_name(m));
        const auto f = [&] { return m.loss(m(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out); };
        const GradcheckResult r = nn::gradcheck_module(m, f);
        INFO(r.message);
        CHECK(r.ok);
    }
}

TEST_CASE("Padding changes nothing: garbage in padded source steps, and a padded batch equals each row alone",
          "[nn][seq2seq]") {
    const std::vector<std::int64_t> src_lengths{4, 2, 3}, tgt_lengths{3, 4, 2};
    const Batch dirty = make_batch(4, 4, src_lengths, tgt_lengths, 3);         // random ids past the lengths
    const Batch clean = make_batch(4, 4, src_lengths, tgt_lengths, 3, kPad);  // the pad id there
    for (auto attention : kAttentions)
        for (bool bidirectional : {false, true}) {
            nn::EncoderDecoder m = make(bidirectional ? nn::RecurrentKind::lstm : nn::RecurrentKind::gru,
                                        bidirectional ? nn::RecurrentKind::gru : nn::RecurrentKind::lstm,
                                        bidirectional, attention);
            INFO(config_name(m));
            const auto run = [&](const Batch& b, std::vector<Tensor>& grads) {
                m.zero_grad();
                Tape tape;
                const Tensor logits = m(b.src, b.src_lengths, b.tgt_in);
                const Tensor per_position = m.loss(logits, b.tgt_out, Reduction::none);  // [T, B]
                tape.backward(sum(per_position));
                grads.clear();
                for (const Tensor& p : m.parameters()) grads.push_back(p.grad().detach());
                return std::pair{logits.detach(), sum(per_position.detach(), 0)};  // per-row losses [B]
            };
            std::vector<Tensor> gd, gc, ga, gsum;
            const auto [ld, rd] = run(dirty, gd);
            const auto [lc, rc] = run(clean, gc);
            CHECK(max_abs_diff(ld, lc) == 0);
            CHECK(max_abs_diff(rd, rc) == 0);
            for (std::size_t i = 0; i < gd.size(); ++i) CHECK(max_abs_diff(gd[i], gc[i]) == 0);

            for (std::size_t b = 0; b < 3; ++b) {
                const Batch alone{row(dirty.src, b, src_lengths[b]), row(dirty.tgt_in, b, tgt_lengths[b]),
                                  row(dirty.tgt_out, b, tgt_lengths[b]), {}, {}};
                const auto [la, ra] = run(alone, ga);
                const Tensor batch_rows = slice(slice(ld, 1, long(b), long(b) + 1), 0, 0, tgt_lengths[b]);
                CHECK(max_abs_diff(la, batch_rows) < 1e-12);
                CHECK(ra.item() == Approx(rd.at(b)).epsilon(1e-12));
                if (gsum.empty()) gsum.resize(ga.size());
                for (std::size_t i = 0; i < ga.size(); ++i) gsum[i] = b == 0 ? ga[i] : gsum[i] + ga[i];
            }
            for (std::size_t i = 0; i < gd.size(); ++i) CHECK(max_rel_diff(gd[i], gsum[i]) < 1e-10);
        }
}

TEST_CASE("Teacher forcing equals the decode adapter fed the gold tokens step by step", "[nn][seq2seq][decode]") {
    const Batch batch = make_batch(5, 4, {3, 5, 1}, {4, 2, 3}, 4);
    for (auto enc : kKinds)
        for (auto dec : kKinds)
            for (bool bidirectional : {false, true})
                for (auto attention : kAttentions) {
                    nn::EncoderDecoder m = make(enc, dec, bidirectional, attention);
                    INFO(config_name(m));
                    const Tensor logits = m(batch.src, batch.src_lengths, batch.tgt_in);  // [T, B, Vt]
                    Tensor state = m.decode_state(batch.src, batch.src_lengths);
                    for (std::size_t t = 0; t < 4; ++t) {
                        const Tensor step = m.decode_step(batch.tgt_in.select(0, long(t)), state);  // [B, Vt]
                        CHECK(max_abs_diff(step, select(logits, 0, long(t))) < 1e-12);
                    }
                }
}

TEST_CASE("greedy_decode through the adapter equals a hand loop of arg-max, row by row", "[nn][seq2seq][decode]") {
    const Batch batch = make_batch(5, 2, {5, 2, 4, 3}, {1, 1, 1, 1}, 5);
    for (auto attention : {std::optional<nn::AttentionScore>{}, std::optional{nn::AttentionScore::general}}) {
        nn::EncoderDecoder m = make(nn::RecurrentKind::lstm, nn::RecurrentKind::lstm, true, attention);
        // Sharper scores and a push toward the end token, chosen so that 3 of the 4 rows end before
        // max_length: rows then leave the batch at different steps.
        m.out->weight.mutable_value<double>() *= 6.0;
        m.out->bias.mutable_value<double>()(static_cast<std::size_t>(kEnd)) += attention ? 0.5 : 3.0;
        INFO(config_name(m));
        const nn::DecodeOptions o{.start_token = kStart, .end_token = kEnd, .max_length = 6};
        const std::vector<nn::Hypothesis> greedy =
            nn::greedy_decode(m.decode_fn(), m.decode_state(batch.src, batch.src_lengths), o);
        REQUIRE(greedy.size() == 4);
        std::size_t ended = 0;
        for (std::size_t b = 0; b < 4; ++b) {
            NoGrad no_grad;
            Tensor state = m.decode_state(row(batch.src, b, batch.src_lengths[b]));
            std::vector<std::int64_t> tokens;
            double log_prob = 0;
            std::int64_t token = kStart;
            for (std::size_t t = 0; t < o.max_length; ++t) {
                const Tensor logp = log_softmax(m.decode_step(LongTensor{token}, state), 1);
                token = argmax(logp, 1).at(0);
                log_prob += logp.at(static_cast<std::size_t>(token));
                if (token == kEnd) break;
                tokens.push_back(token);
            }
            ended += token == kEnd;
            CHECK(greedy[b].tokens == tokens);
            CHECK(greedy[b].log_prob == Approx(log_prob).margin(1e-10));
        }
        CHECK(ended > 0);
        CHECK(ended < 4);

        // Beam search reorders and repeats rows of the packed state; each hypothesis it returns must
        // have exactly the log-probability the teacher-forced model gives its tokens.
        const auto beams = nn::beam_search(m.decode_fn(), m.decode_state(batch.src, batch.src_lengths),
                                           {.start_token = kStart, .end_token = kEnd, .max_length = 5,
                                            .beam_width = 3, .n_best = 2});
        for (std::size_t b = 0; b < 4; ++b) {
            REQUIRE(beams[b].size() == 2);
            for (const nn::Hypothesis& h : beams[b]) {
                std::vector<std::int64_t> in{kStart}, gold = h.tokens;
                in.insert(in.end(), h.tokens.begin(), h.tokens.end());
                if (h.tokens.size() < 5) gold.push_back(kEnd);  // ended by the end token, not cut
                in.resize(gold.size());
                const auto col = [](const std::vector<std::int64_t>& v) {
                    return LongTensor::from_vector(v, {v.size(), 1});
                };
                const Tensor per_position =
                    m.loss(m(row(batch.src, b, batch.src_lengths[b]), {}, col(in)), col(gold), Reduction::none);
                CHECK(h.log_prob == Approx(-sum(per_position).item()).margin(1e-10));
            }
        }
    }
}

TEST_CASE("Scheduled sampling is reproducible and feeds the model's own arg-max", "[nn][seq2seq]") {
    const Batch batch = make_batch(4, 5, {4, 3, 2}, {5, 5, 5}, 6);
    for (auto attention : {std::optional<nn::AttentionScore>{}, std::optional{nn::AttentionScore::additive}}) {
        nn::EncoderDecoder m = make(nn::RecurrentKind::gru, nn::RecurrentKind::lstm, true, attention);
        INFO(config_name(m));
        Generator g0(9);
        CHECK(max_abs_diff(m(batch.src, batch.src_lengths, batch.tgt_in, 0.0, g0),
                           m(batch.src, batch.src_lengths, batch.tgt_in)) == 0);
        CHECK(g0.uniform() == Generator(9).uniform());  // p = 0 draws nothing

        Generator g1(10), g2(10);
        const Tensor a = m(batch.src, batch.src_lengths, batch.tgt_in, 0.5, g1);
        CHECK(max_abs_diff(a, m(batch.src, batch.src_lengths, batch.tgt_in, 0.5, g2)) == 0);
        Generator skip(10);
        for (int i = 0; i < 4 * 3; ++i) skip.uniform();  // one draw per row for steps 1..4
        CHECK(g1.uniform() == skip.uniform());

        // p = 1: every step after the first is fed the previous step's arg-max, as a decoding loop does.
        Generator g3(11);
        const Tensor own = m(batch.src, batch.src_lengths, batch.tgt_in, 1.0, g3);
        Tensor state = m.decode_state(batch.src, batch.src_lengths);
        LongTensor tokens = batch.tgt_in.select(0, 0);
        for (std::size_t t = 0; t < 5; ++t) {
            const Tensor logits = m.decode_step(tokens, state);
            CHECK(max_abs_diff(logits, select(own, 0, long(t))) < 1e-12);
            tokens = argmax(logits, 1);
        }
        CHECK(max_abs_diff(own, m(batch.src, batch.src_lengths, batch.tgt_in)) > 1e-3);
    }
}

namespace {
// 32 sequences of 3 to 6 symbols from {3, ..., 9}, padded; the target is the source reversed.
struct ReverseTask {
    static constexpr std::size_t kV = 10, kN = 32, kMax = 6;
    std::vector<std::vector<std::int64_t>> seqs;
    LongTensor src, tgt_in, tgt_out;  // [kMax, kN], [kMax + 1, kN], [kMax + 1, kN]
    std::vector<std::int64_t> lengths;
};
ReverseTask reverse_task() {
    ReverseTask task;
    Generator data(2024);
    task.seqs.resize(ReverseTask::kN);
    for (auto& s : task.seqs) {
        s.resize(3 + data.randint(ReverseTask::kMax - 2));
        for (auto& id : s) id = 3 + static_cast<std::int64_t>(data.randint(ReverseTask::kV - 3));
    }
    xt::xarray<std::int64_t> src = xt::zeros<std::int64_t>({ReverseTask::kMax, ReverseTask::kN});
    xt::xarray<std::int64_t> tin = xt::zeros<std::int64_t>({ReverseTask::kMax + 1, ReverseTask::kN});
    xt::xarray<std::int64_t> tout = tin;
    for (std::size_t b = 0; b < ReverseTask::kN; ++b) {
        const auto& s = task.seqs[b];
        task.lengths.push_back(static_cast<std::int64_t>(s.size()));
        tin(0, b) = kStart;
        for (std::size_t t = 0; t < s.size(); ++t) {
            src(t, b) = s[t];
            tin(t + 1, b) = tout(t, b) = s[s.size() - 1 - t];
        }
        tout(s.size(), b) = kEnd;
    }
    task.src = src;
    task.tgt_in = tin;
    task.tgt_out = tout;
    return task;
}

// Trains on the whole task for `steps` Adam steps; checks the loss falls well below `target` and
// that greedy decoding then reverses all but at most one sequence exactly.
void learn_reverse(nn::EncoderDecoder& model, int steps, double target) {
    const ReverseTask task = reverse_task();
    const auto& [seqs, src, tgt_in, tgt_out, lengths] = task;
    nn::Adam opt(model.parameters(), {.lr = 0.01});
    double first = 0, last = 0;
    for (int step = 0; step < steps; ++step) {
        Tape tape;
        Tensor logits = model(src, lengths, tgt_in);  // [T, B, V]: tgt_in is the start token, then the target
        Tensor loss = model.loss(logits, tgt_out);    // cross-entropy, padding ignored
        tape.backward(loss);
        opt.step();
        opt.zero_grad();
        (step == 0 ? first : last) = loss.item();
    }
    INFO("loss " << first << " -> " << last);
    CHECK(first > 1.5);
    CHECK(last < target);

    model.eval();  // no dropout while decoding
    const nn::DecodeOptions options{.start_token = kStart, .end_token = kEnd, .max_length = 7};
    std::vector<nn::Hypothesis> out = nn::greedy_decode(model.decode_fn(), model.decode_state(src, lengths), options);
    std::size_t exact = 0;
    for (std::size_t b = 0; b < seqs.size(); ++b)
        exact += out[b].tokens == std::vector<std::int64_t>(seqs[b].rbegin(), seqs[b].rend());
    INFO(exact << " of " << seqs.size() << " reversed exactly");
    CHECK(exact + 1 >= seqs.size());
}
}  // namespace

TEST_CASE("EncoderDecoder with attention learns to reverse sequences", "[nn][seq2seq][train]") {
    manual_seed(3);
    // A bidirectional GRU encoder, a GRU decoder with Luong "general" attention and input feeding.
    nn::EncoderDecoder model({.src_vocab_size = 10, .tgt_vocab_size = 10, .embedding_size = 16, .hidden_size = 32,
                              .encoder = nn::RecurrentKind::gru, .decoder = nn::RecurrentKind::gru,
                              .bidirectional = true, .attention = nn::AttentionScore::general,
                              .src_pad_id = kPad, .tgt_pad_id = kPad});
    learn_reverse(model, 300, 0.05);
}

TEST_CASE("EncoderDecoder without attention learns to reverse sequences", "[nn][seq2seq][train]") {
    manual_seed(4);
    nn::EncoderDecoder model({.src_vocab_size = 10, .tgt_vocab_size = 10, .embedding_size = 16, .hidden_size = 48,
                              .encoder = nn::RecurrentKind::lstm, .decoder = nn::RecurrentKind::lstm});
    learn_reverse(model, 800, 0.05);  // the whole source must pass through the final state: slower
}

TEST_CASE("Dropout acts in training mode only", "[nn][seq2seq]") {
    const Batch batch = make_batch(4, 3, {4, 3}, {3, 3}, 8);
    manual_seed(5);
    nn::EncoderDecoder m({.src_vocab_size = Vs, .tgt_vocab_size = Vt, .embedding_size = 3, .hidden_size = 4,
                          .num_layers = 2, .bidirectional = true, .attention = nn::AttentionScore::dot,
                          .dropout = 0.5});
    const Tensor a = m(batch.src, batch.src_lengths, batch.tgt_in), b = m(batch.src, batch.src_lengths, batch.tgt_in);
    CHECK(max_abs_diff(a, b) > 1e-3);
    m.eval();
    const Tensor c = m(batch.src, batch.src_lengths, batch.tgt_in);
    CHECK(max_abs_diff(c, m(batch.src, batch.src_lengths, batch.tgt_in)) == 0);
    Tensor state = m.decode_state(batch.src, batch.src_lengths);
    for (std::size_t t = 0; t < 3; ++t)
        CHECK(max_abs_diff(m.decode_step(batch.tgt_in.select(0, long(t)), state), select(c, 0, long(t))) < 1e-6);
}

TEST_CASE("EncoderDecoder names itself and the shapes when options or input are wrong", "[nn][seq2seq][errors]") {
    const auto build = [](auto change) {
        nn::EncoderDecoderOptions o{.src_vocab_size = 5, .tgt_vocab_size = 6, .embedding_size = 3, .hidden_size = 4};
        change(o);
        return nn::EncoderDecoder(o);
    };
    REQUIRE_NOTHROW(build([](auto&) {}));
    REQUIRE_THROWS_MATCHES(build([](auto& o) { o.tgt_vocab_size = 0; }), ValueError,
                           WhatContains({"EncoderDecoder", "tgt_vocab_size 0", "must all be positive"}));
    REQUIRE_THROWS_MATCHES(build([](auto& o) { o.embedding_size = 0; }), ValueError,
                           WhatContains({"EncoderDecoder", "embedding sizes 0 and 0"}));
    REQUIRE_NOTHROW(build([](auto& o) { o.embedding_size = 0, o.src_embedding_size = 2, o.tgt_embedding_size = 5; }));
    REQUIRE_THROWS_MATCHES(build([](auto& o) { o.bidirectional = true, o.hidden_size = 5; }), ValueError,
                           WhatContains({"EncoderDecoder", "hidden_size must be even, got 5"}));
    REQUIRE_THROWS_MATCHES(build([](auto& o) { o.tgt_pad_id = 6; }), ValueError,
                           WhatContains({"EncoderDecoder", "tgt_pad_id 6", "[0, 6)"}));
    REQUIRE_THROWS_MATCHES(build([](auto& o) { o.dropout = 1.0; }), ValueError,
                           WhatContains({"EncoderDecoder", "dropout must be in [0, 1), got 1"}));

    nn::EncoderDecoder m = make(nn::RecurrentKind::lstm, nn::RecurrentKind::gru, true, nn::AttentionScore::dot, 1);
    const Batch b = make_batch(4, 3, {4, 2}, {3, 2}, 7);
    REQUIRE_THROWS_MATCHES(m(b.src.flatten(), {}, b.tgt_in), ShapeError,
                           WhatContains({"EncoderDecoder", "src must be non-empty [source, batch] ids", "[8]"}));
    REQUIRE_THROWS_MATCHES(m(b.src, {4}, b.tgt_in), ShapeError,
                           WhatContains({"EncoderDecoder", "1 src_lengths given for src [4, 2]", "batch 2"}));
    REQUIRE_THROWS_MATCHES(m(b.src, {4, 5}, b.tgt_in), ValueError,
                           WhatContains({"EncoderDecoder", "src_lengths[1] = 5", "[1, 4]"}));
    REQUIRE_THROWS_MATCHES(m(b.src, {}, b.tgt_in.slice(1, 0, 1)), ShapeError,
                           WhatContains({"EncoderDecoder", "src [4, 2]", "tgt_in [3, 1]", "batch 1"}));
    LongTensor bad_src = b.src;
    bad_src.mutable_array()(1, 1) = 7;
    REQUIRE_THROWS_MATCHES(m(bad_src, {}, b.tgt_in), ValueError,
                           WhatContains({"EncoderDecoder", "src [4, 2] holds id 7", "[0, 7)"}));
    LongTensor bad_tgt = b.tgt_in;
    bad_tgt.mutable_array()(0, 0) = -1;
    REQUIRE_THROWS_MATCHES(m(b.src, {}, bad_tgt), ValueError,
                           WhatContains({"EncoderDecoder", "tgt_in [3, 2] holds id -1", "[0, 6)"}));
    Generator g(1);
    REQUIRE_THROWS_MATCHES(m(b.src, {}, b.tgt_in, 1.5, g), ValueError,
                           WhatContains({"EncoderDecoder", "sampling_probability", "1.5"}));
    const Tensor logits = m(b.src, {}, b.tgt_in);
    REQUIRE_THROWS_MATCHES(m.loss(logits, b.tgt_out.slice(0, 0, 2)), ShapeError,
                           WhatContains({"EncoderDecoder", "logits [T, B, 6]", "[3, 2, 6]", "tgt_out [2, 2]"}));

    Tensor state = m.decode_state(b.src, b.src_lengths);
    REQUIRE(state.shape() == Shape{2, 1 + 4 + 4 + 4 * 4});
    REQUIRE_THROWS_MATCHES(m.decode_step(LongTensor{kStart}, state), ShapeError,
                           WhatContains({"EncoderDecoder", "tokens must be [2]", "[1]"}));
    Tensor narrow = slice(state, 1, 0, 12);
    REQUIRE_THROWS_MATCHES(m.decode_step(LongTensor{kStart, kStart}, narrow), ShapeError,
                           WhatContains({"EncoderDecoder", "decode_step", "[N, 1 + 4 + 4 + S*4]", "[2, 12]"}));
}
