// Many-to-many, and why bidirectional layers exist: take the spaces out of fortune text
// ("thequickbrownfox") and tag each character with whether a word ends after it. Whether "the"
// ends after its "e" depends on what comes next ("the quick" or "theory"), so a model that reads
// only the past must guess where one that also reads the future can see. Two models of the same
// parameter count are trained on the same batches, one reading left to right, one bidirectional,
// and their F1 scores on held-out fortunes are compared.
//
//   word_boundaries [--cell rnn|lstm|gru] [--hidden H] [--steps N] [--seed S] ...
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace fs = std::filesystem;

namespace {

// Text without whitespace, one tag per character: 1 when a word (a run of non-space characters in
// the original) ends after it.
struct Tagged {
    std::vector<char32_t> chars;
    std::vector<std::int64_t> tags;
};

// The plain-text fortune files, in name order, as one tagged stream. The fortunes of every
// `holdout_every`-th file go to `test`, the others to `train`, so held-out text is from other files.
void read_corpus(const fs::path& dir, std::size_t holdout_every, Tagged& train, Tagged& test) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && !e.path().has_extension()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (std::size_t f = 0; f < files.size(); ++f) {
        Tagged& out = f % holdout_every == holdout_every - 1 ? test : train;
        std::string text = nn::read_text_file(files[f].string());
        for (std::size_t p = 0; (p = text.find("\n%\n", p)) != std::string::npos;) text.replace(p, 3, "\n\n");
        for (char32_t c : nn::utf8_decode(text)) {
            const bool space = c == U' ' || c == U'\n' || c == U'\t' || c == U'\r';
            if (space) {
                if (!out.tags.empty()) out.tags.back() = 1;  // the character before a space ends a word
            } else {
                out.chars.push_back(c);
                out.tags.push_back(0);
            }
        }
        if (!out.tags.empty()) out.tags.back() = 1;
    }
}

// nn::RNN, nn::LSTM and nn::GRU share their options and conventions (output [T, B, D*H], the
// forward direction's half first); only LSTM's forward takes a cell state too.
struct Recurrent : nn::Module {
    std::unique_ptr<nn::RNN> rnn;
    std::unique_ptr<nn::LSTM> lstm;
    std::unique_ptr<nn::GRU> gru;
    Recurrent(const std::string& cell, std::size_t input, std::size_t hidden, bool bidirectional) {
        if (cell == "rnn")
            register_module("rnn", *(rnn = std::make_unique<nn::RNN>(nn::RNNOptions{
                                         .input_size = input, .hidden_size = hidden, .bidirectional = bidirectional})));
        else if (cell == "lstm")
            register_module("lstm", *(lstm = std::make_unique<nn::LSTM>(nn::LSTMOptions{
                                          .input_size = input, .hidden_size = hidden, .bidirectional = bidirectional})));
        else if (cell == "gru")
            register_module("gru", *(gru = std::make_unique<nn::GRU>(nn::GRUOptions{
                                         .input_size = input, .hidden_size = hidden, .bidirectional = bidirectional})));
        else
            throw ValueError("--cell must be rnn, lstm or gru, got " + cell);
    }
    std::string type_name() const override { return "Recurrent"; }
    Tensor forward(const Tensor& x) const {  // [T, B, input] -> [T, B, D*H]
        if (rnn) return (*rnn)(x).output;
        if (lstm) return (*lstm)(x).output;
        return (*gru)(x).output;
    }
};

// ids [T, B] -> Embedding [T, B, E] -> RNN/LSTM/GRU [T, B, D*H] -> Linear per step -> logits [T, B, 2].
struct Tagger : nn::Module {
    nn::Embedding embed;
    Recurrent encoder;
    nn::Linear head;
    Tagger(std::size_t vocab, std::size_t embed_dim, const std::string& cell, std::size_t hidden, bool bidirectional)
        : embed(vocab, embed_dim), encoder(cell, embed_dim, hidden, bidirectional),
          head(bidirectional ? 2 * hidden : hidden, 2) {
        register_module("embed", embed);
        register_module("encoder", encoder);
        register_module("head", head);
    }
    std::string type_name() const override { return "Tagger"; }
    Tensor forward(const xt::xarray<std::int64_t>& ids) const { return head(encoder.forward(embed(ids))); }
};

// Windows `idx` of length T of the stream, as ids [T, B] and tags [T, B] (column b = window idx[b]).
std::pair<xt::xarray<std::int64_t>, xt::xarray<std::int64_t>> windows(const std::vector<std::int64_t>& ids,
                                                                       const std::vector<std::int64_t>& tags,
                                                                       const std::vector<std::size_t>& idx,
                                                                       std::size_t T) {
    const std::size_t B = idx.size();
    xt::xarray<std::int64_t> x = xt::xarray<std::int64_t>::from_shape({T, B});
    xt::xarray<std::int64_t> y = xt::xarray<std::int64_t>::from_shape({T, B});
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t t = 0; t < T; ++t) {
            x.data()[t * B + b] = ids[idx[b] * T + t];
            y.data()[t * B + b] = tags[idx[b] * T + t];
        }
    return {x, y};
}

struct Scores {
    double precision, recall, f1, accuracy;
};

// Precision, recall and F1 of the tag 1 ("a word ends here") over the held-out windows `which`.
Scores evaluate(const Tagger& model, const std::vector<std::int64_t>& ids, const std::vector<std::int64_t>& tags,
                const std::vector<std::size_t>& which, std::size_t T) {
    NoGrad guard;
    const std::size_t n = which.size();
    std::size_t tp = 0, fp = 0, fn = 0, right = 0;
    for (std::size_t begin = 0; begin < n; begin += 256) {
        const std::vector<std::size_t> idx(which.begin() + begin, which.begin() + std::min(n, begin + 256));
        const auto [x, y] = windows(ids, tags, idx, T);
        const Tensor out = model.forward(x);
        const auto& logits = out.value<float>();  // [T, B, 2]
        for (std::size_t i = 0; i < y.size(); ++i) {
            const std::int64_t p = logits.data()[2 * i + 1] > logits.data()[2 * i] ? 1 : 0, t = y.data()[i];
            tp += p == 1 && t == 1;
            fp += p == 1 && t == 0;
            fn += p == 0 && t == 1;
            right += p == t;
        }
    }
    const double precision = tp + fp ? double(tp) / double(tp + fp) : 0.0;
    const double recall = tp + fn ? double(tp) / double(tp + fn) : 0.0;
    const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
    return {precision, recall, f1, double(right) / double(n * T)};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Find the word boundaries in text without spaces: left-to-right vs bidirectional RNN, LSTM or GRU"};
    std::string dir = "/usr/share/games/fortunes", cell = "gru";
    std::size_t embed = 24, hidden = 64, window = 48, batch = 32, steps = 2000, max_test = 60000;
    double lr = 3e-3, clip = 1.0, min_f1 = 0.5;
    std::uint64_t seed = 1;
    bool short_run = false, check = false;
    app.add_option("--dir", dir, "directory of the fortune files")->capture_default_str();
    app.add_option("--cell", cell, "recurrent layer: rnn, lstm or gru")
        ->capture_default_str()
        ->check(CLI::IsMember({"rnn", "lstm", "gru"}));
    app.add_option("--embed", embed, "character embedding size")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--hidden", hidden, "hidden size of each direction of the bidirectional model")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--window", window, "characters per training sequence")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "windows per update")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--steps", steps, "updates per model")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--max-test", max_test, "held-out characters scored, in windows spread over the held-out files")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--clip", clip, "gradient-norm clipping threshold")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--seed", seed, "random seed (initialisation and batch order)")->capture_default_str();
    app.add_flag("--short", short_run, "a quick run (for CI): a small model, few updates");
    app.add_option("--check-f1", min_f1, "with --check, the F1 both models must exceed")->capture_default_str();
    app.add_flag("--check", check,
                 "exit with status 1 unless both F1 scores exceed --check-f1 and the bidirectional one is higher");
    CLI11_PARSE(app, argc, argv);
    if (short_run) {
        if (app.count("--steps") == 0) steps = 300;
        if (app.count("--hidden") == 0) hidden = 32;
        if (app.count("--max-test") == 0) max_test = 20000;
    }

    // ---- data: tagged streams, cut into windows of `window` characters
    Tagged train_text, test_text;
    read_corpus(dir, 5, train_text, test_text);
    const nn::Vocab vocab = nn::Vocab::build(nn::utf8_encode(train_text.chars), {.add_unknown = true});
    auto encode = [&](const Tagged& t) {
        std::vector<std::int64_t> ids;
        for (char32_t c : t.chars) ids.push_back(vocab.id(c));
        return ids;
    };
    const auto train_ids = encode(train_text), test_ids = encode(test_text);
    const std::size_t n_windows = train_ids.size() / window;
    // Held-out windows evenly spread over the held-out files, about max_test characters in all.
    const std::size_t n_test = test_ids.size() / window, n_scored = std::min(n_test, std::max<std::size_t>(1, max_test / window));
    std::vector<std::size_t> scored;
    double positives = 0;
    for (std::size_t i = 0; i < n_scored; ++i) {
        scored.push_back(i * n_test / n_scored);
        for (std::size_t t = 0; t < window; ++t) positives += static_cast<double>(test_text.tags[scored.back() * window + t]);
    }
    const double rate = positives / static_cast<double>(n_scored * window);
    fmt::print("training text: {} characters ({} windows of {}); held-out text: {} characters, {} scored; vocabulary {}\n",
               train_ids.size(), n_windows, window, test_ids.size(), n_scored * window, vocab.size());
    fmt::print("held-out: {:.1f}% of the characters end a word; tagging every character \"ends a word\" scores F1 {:.3f}\n",
               100 * rate, 2 * rate / (1 + rate));
    fmt::print("sample: {}\n        ", nn::utf8_encode({train_text.chars.begin(), train_text.chars.begin() + 60}));
    for (std::size_t i = 0; i < 60; ++i) fmt::print("{}", train_text.tags[i] ? "^" : " ");
    fmt::print("   (^: a word ends here)\n\n");

    // ---- two models of (about) the same parameter count: the left-to-right one gets a wider hidden
    // layer, the smallest whose parameter count reaches the bidirectional model's.
    manual_seed(seed);
    Tagger bi(vocab.size(), embed, cell, hidden, true);
    std::size_t uni_hidden = hidden;
    while (Tagger(vocab.size(), embed, cell, uni_hidden, false).num_parameters() < bi.num_parameters()) ++uni_hidden;
    manual_seed(seed);
    Tagger uni(vocab.size(), embed, cell, uni_hidden, false);

    auto train = [&](Tagger& model, const std::string& label) {
        nn::Adam opt(model.parameters(), {.lr = lr});
        Generator gen(seed);  // the same batches, in the same order, for both models
        nn::Progress progress(steps, {.label = label});
        double smooth = std::log(2.0);
        for (std::size_t step = 1; step <= steps; ++step) {
            std::vector<std::size_t> idx(batch);
            for (auto& i : idx) i = gen.randint(n_windows);
            const auto [x, y] = windows(train_ids, train_text.tags, idx, window);
            Tape tape;
            const Tensor loss = cross_entropy(model.forward(x), y);  // logits [T, B, 2], tags [T, B]
            tape.backward(loss);
            nn::clip_grad_norm(model.parameters(), clip);
            opt.step();
            opt.zero_grad();
            smooth = 0.98 * smooth + 0.02 * loss.item();
            progress.update(step, smooth);
        }
        progress.finish();
    };
    fmt::print("{:<15} {:>6} {:>7} {:>9} {:>9} {:>7} {:>6} {:>8} {:>7}\n", "model", "hidden", "params", "precision",
               "recall", "F1", "acc", "train", "time");
    Scores s[2];
    Tagger* models[2] = {&uni, &bi};
    const char* names[2] = {"left-to-right", "bidirectional"};
    for (int m = 0; m < 2; ++m) {
        const auto start = std::chrono::steady_clock::now();
        train(*models[m], names[m]);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        s[m] = evaluate(*models[m], test_ids, test_text.tags, scored, window);
        fmt::print("{:<15} {:>6} {:>7} {:>9.3f} {:>9.3f} {:>7.3f} {:>6.3f} {:>7} {:>6.1f}s\n", names[m],
                   m == 0 ? std::to_string(uni_hidden) : fmt::format("2x{}", hidden), models[m]->num_parameters(),
                   s[m].precision, s[m].recall, s[m].f1, s[m].accuracy, fmt::format("{} upd", steps), secs);
    }

    // A held-out line, segmented by each model.
    {
        NoGrad guard;
        std::vector<std::size_t> idx{scored[n_scored / 2]};
        const auto [x, y] = windows(test_ids, test_text.tags, idx, window);
        fmt::print("\n");
        for (int m = -1; m < 2; ++m) {
            const xt::xarray<float> logits = m < 0 ? xt::xarray<float>() : models[m]->forward(x).value<float>();
            std::string line;
            for (std::size_t t = 0; t < window; ++t) {
                line += nn::utf8_encode({test_text.chars[idx[0] * window + t]});
                const bool end = m < 0 ? y.data()[t] == 1 : logits.data()[2 * t + 1] > logits.data()[2 * t];
                if (end) line += ' ';
            }
            fmt::print("{:<15} {}\n", m < 0 ? "original" : names[m], line);
        }
    }

    fmt::print("\nF1 left-to-right {:.3f}, bidirectional {:.3f} (cell {}, seed {})\n", s[0].f1, s[1].f1, cell, seed);
    if (check) {
        const bool ok = s[0].f1 > min_f1 && s[1].f1 > min_f1 && s[1].f1 > s[0].f1;
        fmt::print("check: {} (needs both F1 above {:.2f} and bidirectional above left-to-right)\n",
                   ok ? "passed" : "FAILED", min_f1);
        return ok ? 0 : 1;
    }
    return 0;
}
