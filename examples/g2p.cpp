// Sequence to sequence on real data: pronouncing English words. An encoder-decoder reads a word's
// letters and writes its phonemes ("abbey" -> ae b iy), trained on the CMU Pronouncing Dictionary
// (Debian's festlex-cmu) and scored on held-out test words by phoneme error rate (edit distance over
// reference length) and word error rate, with greedy decoding and beam search, with or without
// attention. docs/seq2seq.md is the tutorial.
//
//   g2p [--attention none|dot|general|additive] [--cell lstm|gru] [--bidirectional] [--updates N] ...
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using nn::TokenVocab;

namespace {

// One training pair: a word's letter ids and one of its pronunciations' phoneme ids.
struct Pair {
    std::vector<std::int64_t> src, tgt;
};

// A test (or validation) word with every pronunciation the dictionary gives it: a hypothesis is
// scored against the closest one, as is usual for CMUdict.
struct Word {
    std::string spelling;
    std::vector<std::int64_t> src;
    std::vector<std::vector<std::int64_t>> refs;
};

std::vector<Word> group_words(const std::vector<nn::CmuEntry>& entries, const TokenVocab& letters,
                              const TokenVocab& phones, bool stress) {
    std::vector<Word> words;
    std::map<std::string, std::size_t> index;  // lower-cased spelling -> position in words
    for (const auto& e : entries) {
        const auto ls = nn::cmu_letters(e);
        const std::string key = fmt::format("{}", fmt::join(ls, ""));
        auto [it, fresh] = index.emplace(key, words.size());
        if (fresh) words.push_back({key, letters.encode(ls), {}});
        words[it->second].refs.push_back(phones.encode(nn::cmu_phonemes(e, stress)));
    }
    return words;
}

// A padded batch, time-major: src [S, B] letters, tgt_in [T, B] (start, phonemes), tgt_out [T, B]
// (phonemes, end), padding 0.
struct Batch {
    LongTensor src, tgt_in, tgt_out;
    std::vector<std::int64_t> lengths;
};
Batch make_batch(const std::vector<const Pair*>& rows) {
    const std::size_t B = rows.size();
    std::size_t S = 0, T = 0;
    for (const Pair* p : rows) S = std::max(S, p->src.size()), T = std::max(T, p->tgt.size() + 1);
    xt::xarray<std::int64_t> src = xt::zeros<std::int64_t>({S, B});
    xt::xarray<std::int64_t> tin = xt::zeros<std::int64_t>({T, B}), tout = xt::zeros<std::int64_t>({T, B});
    std::vector<std::int64_t> lengths;
    for (std::size_t b = 0; b < B; ++b) {
        const Pair& p = *rows[b];
        for (std::size_t s = 0; s < p.src.size(); ++s) src(s, b) = p.src[s];
        tin(0, b) = TokenVocab::start_id;
        for (std::size_t t = 0; t < p.tgt.size(); ++t) tin(t + 1, b) = tout(t, b) = p.tgt[t];
        tout(p.tgt.size(), b) = TokenVocab::end_id;
        lengths.push_back(static_cast<std::int64_t>(p.src.size()));
    }
    return {LongTensor(src), LongTensor(tin), LongTensor(tout), std::move(lengths)};
}

// Letters of several words as a padded source batch [S, B] and their lengths.
std::pair<LongTensor, std::vector<std::int64_t>> source_batch(const std::vector<const Word*>& words) {
    std::size_t S = 0;
    for (const Word* w : words) S = std::max(S, w->src.size());
    xt::xarray<std::int64_t> src = xt::zeros<std::int64_t>({S, words.size()});
    std::vector<std::int64_t> lengths;
    for (std::size_t b = 0; b < words.size(); ++b) {
        for (std::size_t s = 0; s < words[b]->src.size(); ++s) src(s, b) = words[b]->src[s];
        lengths.push_back(static_cast<std::int64_t>(words[b]->src.size()));
    }
    return {LongTensor(src), std::move(lengths)};
}

// Decodes every word (beam_width 1: greedy_decode), batches of similar length together.
std::vector<std::vector<std::int64_t>> decode_all(const nn::EncoderDecoder& model, const std::vector<Word>& words,
                                                  std::size_t beam, double length_penalty) {
    std::vector<std::size_t> order(words.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return words[a].src.size() < words[b].src.size(); });
    std::vector<std::vector<std::int64_t>> out(words.size());
    const std::size_t chunk = 256;
    for (std::size_t k = 0; k < order.size(); k += chunk) {
        std::vector<const Word*> rows;
        for (std::size_t i = k; i < std::min(order.size(), k + chunk); ++i) rows.push_back(&words[order[i]]);
        const auto [src, lengths] = source_batch(rows);
        nn::DecodeOptions o{.start_token = TokenVocab::start_id,
                            .end_token = TokenVocab::end_id,
                            .max_length = rows.back()->src.size() + 8,  // the longest word here, plus room
                            .beam_width = beam,
                            .length_penalty = length_penalty};
        const Tensor state = model.decode_state(src, lengths);
        if (beam == 1) {
            const auto hyps = nn::greedy_decode(model.decode_fn(), state, o);
            for (std::size_t i = 0; i < rows.size(); ++i) out[order[k + i]] = hyps[i].tokens;
        } else {
            const auto beams = nn::beam_search(model.decode_fn(), state, o);
            for (std::size_t i = 0; i < rows.size(); ++i) out[order[k + i]] = beams[i].front().tokens;
        }
    }
    return out;
}

// Phoneme error rate: the edit distance to the closest reference, summed, over the summed lengths
// of those references. Word error rate: the fraction of words matching no reference exactly.
struct Score {
    double per = 0, wer = 0;
};
Score score(const std::vector<Word>& words, const std::vector<std::vector<std::int64_t>>& hyps) {
    std::size_t edits = 0, length = 0, wrong = 0;
    for (std::size_t i = 0; i < words.size(); ++i) {
        std::size_t best = SIZE_MAX, best_len = 0;
        for (const auto& ref : words[i].refs) {
            const std::size_t d = nn::edit_distance(hyps[i], ref);
            if (d < best) best = d, best_len = ref.size();
        }
        edits += best, length += best_len, wrong += best > 0;
    }
    return {100.0 * static_cast<double>(edits) / static_cast<double>(length),
            100.0 * static_cast<double>(wrong) / static_cast<double>(words.size())};
}

std::string spell(const TokenVocab& v, const std::vector<std::int64_t>& ids) {
    return fmt::format("{}", fmt::join(v.decode(ids), " "));
}

// Attention weights of one word: the decoder re-run by hand on its own output (`out` then the end
// token), step by step as EncoderDecoder::decode_step runs it, keeping each step's weights [S].
std::vector<std::vector<float>> attention_weights(const nn::EncoderDecoder& m, const Word& w,
                                                  const std::vector<std::int64_t>& out) {
    NoGrad guard;
    const auto [src, lengths] = source_batch({&w});
    const nn::EncoderOutput enc = m.encode(src, lengths);
    nn::RecurrentState state = enc.state;
    Tensor feed = zeros({1, m.options.hidden_size}, enc.outputs.dtype());  // a_{t-1}, zeros at first
    std::vector<std::vector<float>> rows;
    std::int64_t token = TokenVocab::start_id;
    for (std::size_t t = 0; t <= out.size(); ++t) {
        const Tensor x = concat({(*m.tgt_embedding)(xt::xarray<std::int64_t>({token})), feed}, 1);
        const nn::RecurrentResult r = m.decoder_rnn->forward(unsqueeze(x, 0), state);
        state = r.state;
        const Tensor h = squeeze(r.output, 0);
        const nn::AttentionOutput a = (*m.attention)(h, enc.outputs, enc.lengths);
        feed = tanh((*m.attn_combine)(concat({a.context, h}, 1)));
        const auto& wts = a.weights.value<float>();
        rows.emplace_back(wts.begin(), wts.end());
        if (t < out.size()) token = out[t];
    }
    return rows;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Grapheme to phoneme: an encoder-decoder learns to pronounce English words (CMU dictionary)"};
    std::string dict = nn::kCmudictPath, attention_name = "general", cell_name = "lstm", save_path = "g2p.npz";
    std::string load_path, attention_out;
    std::size_t updates = 8000, batch_size = 64, hidden = 256, embedding = 64, layers = 1, beam = 5, show = 10;
    std::size_t train_limit = 0, test_limit = 0, validate_words = 500;
    double lr = 3e-3, length_penalty = 1.0, dropout = 0.1, sampling = 0.0, check_per = 90;
    std::uint64_t seed = 1;
    bool bidirectional = false, stress = false, short_run = false, check = false;
    app.add_option("--dict", dict, "the dictionary, Festival's lexicon format (festlex-cmu)")->capture_default_str();
    app.add_option("--attention", attention_name, "none, dot, general or additive")->capture_default_str();
    app.add_option("--cell", cell_name, "encoder and decoder: rnn, lstm or gru")->capture_default_str();
    app.add_flag("--bidirectional", bidirectional, "a bidirectional encoder, bridged to the decoder");
    app.add_option("--hidden", hidden, "decoder hidden size (and encoder outputs' size)")->capture_default_str();
    app.add_option("--embedding", embedding, "letter and phoneme embedding size")->capture_default_str();
    app.add_option("--layers", layers, "recurrent layers of the encoder and of the decoder")->capture_default_str();
    app.add_option("--dropout", dropout, "dropout on embeddings, between layers and before the output")
        ->capture_default_str();
    app.add_option("--sampling", sampling, "scheduled sampling: probability of feeding the model's own guess")
        ->capture_default_str();
    app.add_option("--updates", updates, "training updates (the budget: fixed, so a run is reproducible)")
        ->capture_default_str();
    app.add_option("--batch", batch_size, "pronunciations per update")->capture_default_str();
    app.add_option("--lr", lr, "Adam learning rate at the start (it decays linearly to lr/20)")->capture_default_str();
    app.add_option("--beam", beam, "beam width of the beam-search evaluation (1: greedy only)")->capture_default_str();
    app.add_option("--length-penalty", length_penalty, "beam search: score = log P / length^alpha")
        ->capture_default_str();
    app.add_flag("--stress", stress, "predict stressed vowels (ae1, iy0) rather than bare phonemes");
    app.add_option("--train-limit", train_limit, "use only this many training pronunciations (0: all)")
        ->capture_default_str();
    app.add_option("--test-limit", test_limit, "score only this many test words (0: all)")->capture_default_str();
    app.add_option("--validate", validate_words, "validation words decoded during training")->capture_default_str();
    app.add_option("--show", show, "test words it gets wrong to print")->capture_default_str();
    app.add_option("--save", save_path, "where to save the trained model (empty: don't)")->capture_default_str();
    app.add_option("--load", load_path, "evaluate a saved model (same options) instead of training");
    app.add_option("--attention-out", attention_out, "write attention weights of a few test words here "
                                                     "(scripts/plot-attention.sh draws them)");
    app.add_option("--seed", seed, "random seed (initialisation, batch order, dropout)")->capture_default_str();
    app.add_flag("--short", short_run, "a quick pipeline run for CI: 2000 pronunciations, 200 test words, "
                                       "150 updates, hidden 64");
    app.add_option("--check-per", check_per, "with --check: the greedy test PER (%) it must stay below")
        ->capture_default_str();
    app.add_flag("--check", check, "exit 1 unless greedy and beam test PER are below --check-per");
    CLI11_PARSE(app, argc, argv);
    if (short_run) {
        if (!app.count("--train-limit")) train_limit = 2000;
        if (!app.count("--test-limit")) test_limit = 200;
        if (!app.count("--updates")) updates = 150;
        if (!app.count("--hidden")) hidden = 64;
        if (!app.count("--embedding")) embedding = 32;
        if (!app.count("--validate")) validate_words = 100;
        if (!app.count("--save")) save_path.clear();
    }
    std::optional<nn::AttentionScore> attention;
    if (attention_name == "additive") attention = nn::AttentionScore::additive;
    else if (attention_name == "dot") attention = nn::AttentionScore::dot;
    else if (attention_name == "general") attention = nn::AttentionScore::general;
    else if (attention_name != "none") {
        fmt::print(stderr, "g2p: --attention must be none, dot, general or additive, got '{}'\n", attention_name);
        return 2;
    }
    if (updates == 0 || batch_size == 0 || hidden == 0 || embedding == 0 || layers == 0 || beam == 0 ||
        (bidirectional && hidden % 2)) {
        fmt::print(stderr, "g2p: --updates, --batch, --hidden, --embedding, --layers and --beam must be at least 1 "
                           "(--hidden even with --bidirectional)\n");
        return 2;
    }
    const auto clock = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - clock).count(); };

    // ---- data: the dictionary, its fixed split by word, vocabularies from the training part ----
    const std::vector<nn::CmuEntry> entries = nn::read_cmudict(dict);
    const nn::CmuDictSplits split = nn::split_cmudict(entries);
    const TokenVocab letters = nn::cmu_letter_vocab(split.train);
    const TokenVocab phones = nn::cmu_phoneme_vocab(split.train, stress);
    std::vector<Pair> train;
    for (const auto& e : split.train)
        train.push_back({letters.encode(nn::cmu_letters(e)), phones.encode(nn::cmu_phonemes(e, stress))});
    std::vector<Word> test = group_words(split.test, letters, phones, stress);
    std::vector<Word> valid = group_words(split.validation, letters, phones, stress);
    fmt::print("{} pronunciations: {} train, {} validation, {} test ({} test words)\n", entries.size(),
               split.train.size(), split.validation.size(), split.test.size(), test.size());
    fmt::print("{} letters, {} phonemes (4 reserved ids each: pad, start, end, unknown)\n", letters.size() - 4,
               phones.size() - 4);
    manual_seed(seed);
    Generator gen(seed);
    if (train_limit && train_limit < train.size()) {  // a random subset, from the seed
        for (std::size_t i = train.size() - 1; i > 0; --i) std::swap(train[i], train[gen.randint(i + 1)]);
        train.resize(train_limit);
    }
    if (test_limit && test_limit < test.size()) test.resize(test_limit);
    if (validate_words < valid.size()) valid.resize(validate_words);

    // ---- the model ----
    const nn::RecurrentKind cell = nn::parse_recurrent_kind(cell_name);
    nn::EncoderDecoder model({.src_vocab_size = letters.size(),
                              .tgt_vocab_size = phones.size(),
                              .embedding_size = embedding,
                              .hidden_size = hidden,
                              .num_layers = layers,
                              .encoder = cell,
                              .decoder = cell,
                              .bidirectional = bidirectional,
                              .attention = attention,
                              .dropout = dropout,
                              .src_pad_id = TokenVocab::pad_id,
                              .tgt_pad_id = TokenVocab::pad_id});
    fmt::print("{} ({} parameters)\n", model.type_name() + "(" + model.extra_repr() + ")", model.num_parameters());

    // ---- training: a fixed number of updates on length-bucketed batches ----
    if (!load_path.empty()) {
        nn::load(model, load_path);
        fmt::print("loaded {}\n", load_path);
    } else {
        nn::Adam opt(model.parameters(), {.lr = lr});
        std::vector<std::vector<const Pair*>> batches;  // refilled each pass over the data
        std::size_t next = 0;
        auto refill = [&] {
            // Shuffle, sort windows of 50 batches by word length (less padding), cut, shuffle the batches.
            std::vector<const Pair*> rows;
            for (const Pair& p : train) rows.push_back(&p);
            for (std::size_t i = rows.size() - 1; i > 0; --i) std::swap(rows[i], rows[gen.randint(i + 1)]);
            const std::size_t window = 50 * batch_size;
            for (std::size_t k = 0; k < rows.size(); k += window)
                std::stable_sort(rows.begin() + long(k), rows.begin() + long(std::min(rows.size(), k + window)),
                                 [](const Pair* a, const Pair* b) { return a->src.size() < b->src.size(); });
            batches.clear();
            for (std::size_t k = 0; k < rows.size(); k += batch_size)
                batches.emplace_back(rows.begin() + long(k), rows.begin() + long(std::min(rows.size(), k + batch_size)));
            for (std::size_t i = batches.size() - 1; i > 0; --i) std::swap(batches[i], batches[gen.randint(i + 1)]);
            next = 0;
        };
        const std::size_t log_every = std::max<std::size_t>(1, updates / 10);
        double running = 0;
        for (std::size_t step = 0; step < updates; ++step) {
            if (next == batches.size()) refill();
            const Batch b = make_batch(batches[next++]);
            // Linear decay from lr to lr/20: big steps first, settling at the end.
            opt.set_lr(lr * (1.0 - 0.95 * static_cast<double>(step) / static_cast<double>(updates)));
            model.train();
            Tape tape;
            const Tensor logits = sampling > 0 ? model(b.src, b.lengths, b.tgt_in, sampling, gen)
                                               : model(b.src, b.lengths, b.tgt_in);  // teacher forcing
            const Tensor loss = model.loss(logits, b.tgt_out);  // mean over real phonemes, padding ignored
            tape.backward(loss);
            nn::clip_grad_norm(model.parameters(), 5.0);
            opt.step();
            opt.zero_grad();
            running += loss.item();
            if ((step + 1) % log_every == 0 || step + 1 == updates) {
                model.eval();
                const Score v = score(valid, decode_all(model, valid, 1, 0.0));
                fmt::print("update {:6}: loss {:.3f}  validation greedy PER {:5.2f}% WER {:5.2f}%  ({:.0f} s)\n",
                           step + 1, running / static_cast<double>((step % log_every) + 1), v.per, v.wer, seconds());
                std::fflush(stdout);
                running = 0;
            }
        }
        fmt::print("trained {} updates ({} passes over the training data) in {:.0f} s\n", updates,
                   fmt::format("{:.1f}", static_cast<double>(updates * batch_size) / static_cast<double>(train.size())),
                   seconds());
        if (!save_path.empty()) {
            nn::save(model, save_path);
            fmt::print("saved the model to {}\n", save_path);
        }
    }

    // ---- evaluation on the test words ----
    model.eval();
    const double t0 = seconds();
    const auto greedy = decode_all(model, test, 1, 0.0);
    const Score g = score(test, greedy);
    fmt::print("test, greedy:          PER {:5.2f}%  WER {:5.2f}%  ({} words, {:.0f} s)\n", g.per, g.wer, test.size(),
               seconds() - t0);
    std::vector<std::vector<std::int64_t>> best = greedy;
    Score s = g;
    if (beam > 1) {
        const double t1 = seconds();
        best = decode_all(model, test, beam, length_penalty);
        s = score(test, best);
        fmt::print("test, beam {} (alpha {}): PER {:5.2f}%  WER {:5.2f}%  ({} words, {:.0f} s)\n", beam,
                   length_penalty, s.per, s.wer, test.size(), seconds() - t1);
    }

    fmt::print("some test words it gets wrong (word: predicted | dictionary):\n");
    std::size_t shown = 0;
    for (std::size_t i = 0; i < test.size() && shown < show; ++i) {
        if (std::find(test[i].refs.begin(), test[i].refs.end(), best[i]) != test[i].refs.end()) continue;
        fmt::print("  {:14} {:28} | {}\n", test[i].spelling, spell(phones, best[i]), spell(phones, test[i].refs[0]));
        ++shown;
    }

    if (!attention_out.empty() && attention) {
        // The first four test words of 7 to 10 letters, as gnuplot matrices: one block per word, the
        // letters across, the phonemes written (and the end token) down.
        std::ofstream f(attention_out);
        std::size_t written = 0;
        for (std::size_t i = 0; i < test.size() && written < 4; ++i) {
            if (test[i].src.size() < 7 || test[i].src.size() > 10) continue;
            const auto rows = attention_weights(model, test[i], best[i]);
            std::vector<std::string> names = phones.decode(best[i]);
            names.push_back("</s>");
            f << "\"" << test[i].spelling << "\"";
            for (char c : test[i].spelling) f << " " << c;
            f << "\n";
            for (std::size_t t = 0; t < rows.size(); ++t) {
                f << names[t];
                for (float x : rows[t]) f << fmt::format(" {:.4f}", x);
                f << "\n";
            }
            f << "\n\n";
            ++written;
        }
        fmt::print("wrote the attention weights of {} test words to {}\n", written, attention_out);
    }
    fmt::print("total {:.0f} s\n", seconds());
    if (check && !(g.per < check_per && s.per < check_per)) {
        fmt::print(stderr, "check failed: test PER greedy {:.2f}%, beam {:.2f}%, not both below {}%\n", g.per, s.per,
                   check_per);
        return 1;
    }
    return 0;
}
