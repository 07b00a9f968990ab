// Many-to-one: read a fortune one character at a time and say which file of Debian's `fortunes`
// package it comes from (computers, food, love, sports, startrek by default). It teaches sequence
// classification over padded batches: characters as ids, batches of similar lengths with their
// lengths passed to the recurrent layer (so padding changes nothing), and a head that reduces the
// [T, B, H] output to one vector per sequence: the last valid step or the mean over valid steps.
// The accuracy on a held-out, stratified split is compared with always answering the largest class.
//
//   classify_fortunes [--cell rnn|lstm|gru] [--head mean|last] [--epochs N] [--seed S] ...
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace fs = std::filesystem;

namespace {

struct Example {
    std::vector<std::int64_t> ids;  // the fortune's characters
    std::int64_t label;             // index of its file in the topic list
};

// The fortunes of one file: the text between lines holding only "%", blank ones dropped.
std::vector<std::string> read_fortunes(const fs::path& path) {
    std::istringstream in(nn::read_text_file(path.string()));
    std::vector<std::string> out;
    std::string line, current;
    auto flush = [&] {
        if (current.find_first_not_of(" \t\n") != std::string::npos) out.push_back(current);
        current.clear();
    };
    while (std::getline(in, line)) {
        if (line == "%") flush();
        else current += line + "\n";
    }
    flush();
    return out;
}

// nn::RNN, nn::LSTM and nn::GRU share their options and conventions (output [T, B, D*H], lengths);
// only LSTM's forward takes a cell state too. This picks one by name.
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
    // x [T, B, input] -> output [T, B, D*H]; padded steps (t >= lengths[b]) emit zeros.
    Tensor forward(const Tensor& x, const std::vector<std::int64_t>& lengths) const {
        if (rnn) return (*rnn)(x, Tensor(), lengths).output;
        if (lstm) return (*lstm)(x, Tensor(), Tensor(), lengths).output;
        return (*gru)(x, Tensor(), lengths).output;
    }
};

// ids [T, B] -> Embedding [T, B, E] -> RNN/LSTM/GRU [T, B, H] -> last step or masked mean [B, H]
// -> Linear -> logits [B, classes].
struct Classifier : nn::Module {
    nn::Embedding embed;
    Recurrent encoder;
    nn::Linear head;
    bool mean_head;
    Classifier(std::size_t vocab, std::size_t embed_dim, const std::string& cell, std::size_t hidden,
               std::size_t classes, bool mean_head)
        : embed(vocab, embed_dim), encoder(cell, embed_dim, hidden, false), head(hidden, classes),
          mean_head(mean_head) {
        register_module("embed", embed);
        register_module("encoder", encoder);
        register_module("head", head);
    }
    std::string type_name() const override { return "Classifier"; }
    Tensor forward(const nn::PaddedBatch& batch) const {
        const Tensor out = encoder.forward(embed(batch.ids), batch.lengths);  // [T, B, H]
        const Tensor summary = mean_head ? nn::masked_mean(out, batch.lengths) : nn::last_step(out, batch.lengths);
        return head(summary);  // [B, classes]
    }
};

// The examples at `idx`, padded (and truncated to max_length) into one batch, with their labels.
std::pair<nn::PaddedBatch, xt::xarray<std::int64_t>> make_batch(const std::vector<Example>& data,
                                                                 const std::vector<std::size_t>& idx,
                                                                 std::size_t max_length) {
    std::vector<std::vector<std::int64_t>> seqs;
    xt::xarray<std::int64_t> labels = xt::xarray<std::int64_t>::from_shape({idx.size()});
    for (std::size_t i = 0; i < idx.size(); ++i) {
        seqs.push_back(data[idx[i]].ids);
        labels(i) = data[idx[i]].label;
    }
    return {nn::pad_sequences(seqs, {.max_length = max_length}), labels};
}

std::vector<std::size_t> truncated_lengths(const std::vector<Example>& data, std::size_t max_length) {
    std::vector<std::size_t> lengths;
    for (const auto& e : data) lengths.push_back(std::min(e.ids.size(), max_length));
    return lengths;
}

// Predicted class of every example (no gradients), in data order.
std::vector<std::int64_t> predict(const Classifier& model, const std::vector<Example>& data, std::size_t max_length) {
    NoGrad guard;
    Generator unused(0);
    std::vector<std::int64_t> pred(data.size());
    for (const auto& idx : nn::bucket_by_length(truncated_lengths(data, max_length), 64, unused, false)) {
        const auto [batch, labels] = make_batch(data, idx, max_length);
        const Tensor logits = model.forward(batch);  // [B, C]
        const std::size_t C = logits.shape()[1];
        const auto& v = logits.value<float>();
        for (std::size_t b = 0; b < idx.size(); ++b) {
            const float* row = v.data() + b * C;
            pred[idx[b]] = std::max_element(row, row + C) - row;
        }
    }
    return pred;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Classify fortunes by the file they come from, with a character-level RNN, LSTM or GRU"};
    std::string topics_arg = "computers,food,love,sports,startrek", cell = "gru", head = "mean";
    std::string dir = "/usr/share/games/fortunes";
    std::size_t per_class = 0, embed = 32, hidden = 96, max_length = 200, batch = 32, epochs = 40;
    double lr = 3e-3, clip = 1.0, test_fraction = 0.2, min_margin = 0.10;
    std::uint64_t seed = 1;
    bool short_run = false, check = false;
    app.add_option("--topics", topics_arg, "comma-separated fortune files, one class each")->capture_default_str();
    app.add_option("--dir", dir, "directory of the fortune files")->capture_default_str();
    app.add_option("--per-class", per_class, "fortunes kept per class (0: as many as the smallest class has)")
        ->capture_default_str();
    app.add_option("--cell", cell, "recurrent layer: rnn, lstm or gru")
        ->capture_default_str()
        ->check(CLI::IsMember({"rnn", "lstm", "gru"}));
    app.add_option("--head", head, "how the sequence becomes one vector: mean (over valid steps) or last (valid step)")
        ->capture_default_str()
        ->check(CLI::IsMember({"mean", "last"}));
    app.add_option("--embed", embed, "character embedding size")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--hidden", hidden, "hidden size")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--max-length", max_length, "characters read per fortune (longer ones are truncated)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "fortunes per update")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--epochs", epochs, "passes over the training fortunes")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--clip", clip, "gradient-norm clipping threshold")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--test-fraction", test_fraction, "share of each class held out")->capture_default_str();
    app.add_option("--seed", seed, "random seed (split, shuffling and initialisation)")->capture_default_str();
    app.add_flag("--short", short_run, "a quick run (for CI): 3 topics, a small model, few epochs");
    app.add_option("--check-margin", min_margin, "with --check, the accuracy must beat the baseline by this much")
        ->capture_default_str();
    app.add_flag("--check", check, "exit with status 1 unless held-out accuracy beats the majority baseline");
    CLI11_PARSE(app, argc, argv);
    if (short_run) {
        // Three clearly different topics, short prefixes, a small model: a few seconds.
        if (app.count("--topics") == 0) topics_arg = "computers,food,startrek";
        if (app.count("--max-length") == 0) max_length = 80;
        if (app.count("--hidden") == 0) hidden = 48;
        if (app.count("--epochs") == 0) epochs = 15;
        if (app.count("--lr") == 0) lr = 5e-3;
        if (app.count("--per-class") == 0) per_class = 150;
    }

    manual_seed(seed);  // parameter initialisation
    Generator gen(seed);  // split and batch order

    // ---- data: one class per file, the same number of fortunes per class, a stratified split
    std::vector<std::string> topics;
    for (std::size_t p = 0, q; p <= topics_arg.size(); p = q + 1) {
        q = std::min(topics_arg.find(',', p), topics_arg.size());
        if (q > p) topics.push_back(topics_arg.substr(p, q - p));
    }
    std::vector<std::vector<std::string>> by_class;
    for (const auto& t : topics) by_class.push_back(read_fortunes(fs::path(dir) / t));
    std::size_t smallest = by_class[0].size();
    for (const auto& c : by_class) smallest = std::min(smallest, c.size());
    const std::size_t keep = per_class ? std::min(per_class, smallest) : smallest;

    std::vector<std::pair<std::string, std::int64_t>> train_text, test_text;
    fmt::print("{:<10} {:>9} {:>6} {:>6} {:>5}\n", "class", "fortunes", "kept", "train", "test");
    for (std::size_t c = 0; c < topics.size(); ++c) {
        const auto order = nn::shuffled_indices(by_class[c].size(), gen);
        const auto n_test = static_cast<std::size_t>(std::lround(test_fraction * static_cast<double>(keep)));
        for (std::size_t i = 0; i < keep; ++i)
            (i < n_test ? test_text : train_text).emplace_back(by_class[c][order[i]], static_cast<std::int64_t>(c));
        fmt::print("{:<10} {:>9} {:>6} {:>6} {:>5}\n", topics[c], by_class[c].size(), keep, keep - n_test, n_test);
    }
    std::string all_train;
    for (const auto& [text, label] : train_text) all_train += text;
    const nn::Vocab vocab = nn::Vocab::build(all_train, {.add_unknown = true});  // unseen characters -> unknown
    auto encode = [&](const auto& texts) {
        std::vector<Example> out;
        for (const auto& [text, label] : texts) out.push_back({vocab.encode_vector(text), label});
        return out;
    };
    const std::vector<Example> train = encode(train_text), test = encode(test_text);

    // The baseline: always answer the class most frequent in training (ties: the first listed).
    std::vector<std::size_t> train_count(topics.size()), test_count(topics.size());
    for (const auto& e : train) ++train_count[e.label];
    for (const auto& e : test) ++test_count[e.label];
    const auto majority = std::max_element(train_count.begin(), train_count.end()) - train_count.begin();
    const double baseline = static_cast<double>(test_count[majority]) / static_cast<double>(test.size());

    Classifier model(vocab.size(), embed, cell, hidden, topics.size(), head == "mean");
    nn::Adam opt(model.parameters(), {.lr = lr});
    fmt::print("vocabulary {} characters; fortunes truncated to {} characters\n", vocab.size(), max_length);
    fmt::print("{}\n", model.summary());

    // ---- training: batches of similar lengths, in a new order every epoch
    const auto lengths = truncated_lengths(train, max_length);
    const std::size_t per_epoch = (train.size() + batch - 1) / batch;
    nn::Progress progress(epochs * per_epoch, {.log_every = per_epoch});
    const auto start = std::chrono::steady_clock::now();
    std::size_t step = 0;
    double smooth = std::log(static_cast<double>(topics.size()));
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
        for (const auto& idx : nn::bucket_by_length(lengths, batch, gen)) {
            const auto [x, y] = make_batch(train, idx, max_length);
            Tape tape;
            const Tensor loss = cross_entropy(model.forward(x), y);
            tape.backward(loss);
            nn::clip_grad_norm(model.parameters(), clip);
            opt.step();
            opt.zero_grad();
            smooth = 0.95 * smooth + 0.05 * loss.item();
            progress.update(++step, smooth, {{"epoch", static_cast<double>(epoch)}});
        }
    }
    progress.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    // ---- evaluation on the held-out fortunes
    const auto pred = predict(model, test, max_length);
    std::vector<std::vector<std::size_t>> confusion(topics.size(), std::vector<std::size_t>(topics.size()));
    std::size_t correct = 0;
    for (std::size_t i = 0; i < test.size(); ++i) {
        ++confusion[test[i].label][pred[i]];
        correct += pred[i] == test[i].label;
    }
    const double accuracy = static_cast<double>(correct) / static_cast<double>(test.size());
    fmt::print("\n{} epochs, {} updates in {:.1f}s (cell {}, head {}, seed {})\n", epochs, step, seconds, cell, head,
               seed);
    fmt::print("confusion on the {} held-out fortunes (rows: true file, columns: predicted)\n", test.size());
    fmt::print("{:<10}", "");
    for (const auto& t : topics) fmt::print(" {:>9}", t.substr(0, 9));
    fmt::print("\n");
    for (std::size_t c = 0; c < topics.size(); ++c) {
        fmt::print("{:<10}", topics[c]);
        for (std::size_t p = 0; p < topics.size(); ++p) fmt::print(" {:>9}", confusion[c][p]);
        fmt::print("\n");
    }
    fmt::print("held-out accuracy {:.3f}  vs  majority baseline ({}) {:.3f}\n", accuracy, topics[majority], baseline);
    if (check) {
        const bool ok = accuracy > baseline + min_margin;
        fmt::print("check: {} (needs accuracy above the baseline + {:.2f} = {:.3f})\n", ok ? "passed" : "FAILED",
                   min_margin, baseline + min_margin);
        return ok ? 0 : 1;
    }
    return 0;
}
