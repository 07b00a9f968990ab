// One-to-many: an RNN decoder writes a number in English words, character by character
// (342 -> "three hundred forty-two"). The number is given once, as the decoder's single input
// vector; the decoder is trained with teacher forcing and, at test time, feeds back its own
// arg-max predictions until it writes the end marker. Numbers held out of training (chosen at
// random from the seed) measure whether it learnt the rules of the language or only the examples.
//
// With --beam N, the held-out numbers are decoded by nn::beam_search (N hypotheses kept) instead.
//
//   number_words [--epochs N] [--holdout F] [--hidden H] [--seed S] [--beam N] ...
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

// 342 -> "three hundred forty-two", 0 -> "zero" (American style, no "and").
std::string words(int n) {
    static const char* ones[] = {"zero",    "one",     "two",       "three",    "four",     "five",    "six",
                                 "seven",   "eight",   "nine",      "ten",      "eleven",   "twelve",  "thirteen",
                                 "fourteen", "fifteen", "sixteen",   "seventeen", "eighteen", "nineteen"};
    static const char* tens[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
    std::string s;
    if (n >= 100) {
        s = std::string(ones[n / 100]) + " hundred";
        n %= 100;
        if (n == 0) return s;
        s += ' ';
    }
    if (n < 20) return s + ones[n];
    return s + tens[n / 10] + (n % 10 ? std::string("-") + ones[n % 10] : "");
}

// Characters as ids: 0 is the end marker (shown as '.'), then space, hyphen and a-z.
const std::string alphabet = ". -abcdefghijklmnopqrstuvwxyz";
constexpr std::int64_t end_id = 0;

// The one input vector: the three digits, each one-hot, concatenated: 342 -> [0001000000 0000100000 0010000000].
constexpr std::size_t latent_size = 30;
void encode_number(int n, float* z) {
    std::fill(z, z + latent_size, 0.0f);
    z[n / 100] = 1, z[10 + n / 10 % 10] = 1, z[20 + n % 10] = 1;
}

// A batch of numbers as decoder inputs and targets.
struct Batch {
    Tensor z;                         // [B, 30] the numbers
    Tensor teacher;                   // [T, B, V] step t's input: zeros at t = 0, else the one-hot of target t-1
    xt::xarray<std::int64_t> target;  // [T, B] the characters then the end marker; -100 (ignored) after it
};
Batch make_batch(const std::vector<int>& numbers) {
    const std::size_t B = numbers.size(), V = alphabet.size();
    std::size_t T = 0;
    for (int n : numbers) T = std::max(T, words(n).size() + 1);
    xt::xarray<float> z = xt::zeros<float>({B, latent_size});
    xt::xarray<float> teacher = xt::zeros<float>({T, B, V});
    xt::xarray<std::int64_t> target = xt::xarray<std::int64_t>::from_shape({T, B});
    for (std::size_t b = 0; b < B; ++b) {
        encode_number(numbers[b], z.data() + b * latent_size);
        const std::string w = words(numbers[b]);
        for (std::size_t t = 0; t < T; ++t) {
            const std::int64_t id = t < w.size() ? static_cast<std::int64_t>(alphabet.find(w[t])) : end_id;
            target.data()[t * B + b] = t <= w.size() ? id : -100;
            if (t + 1 < T) teacher.data()[((t + 1) * B + b) * V + static_cast<std::size_t>(id)] = 1.0f;
        }
    }
    return {Tensor(std::move(z)), Tensor(std::move(teacher)), std::move(target)};
}

// Free-running decoding: the model's own arg-max fed back, read up to its first end marker.
std::vector<std::string> decode(const nn::RNNDecoder& model, const std::vector<int>& numbers, std::size_t max_len) {
    NoGrad guard;
    const Batch batch = make_batch(numbers);
    const Tensor logits = model(batch.z, max_len);  // [max_len, B, V]
    const std::size_t B = numbers.size(), V = alphabet.size();
    const auto& y = logits.value<float>();
    std::vector<std::string> out(B);
    for (std::size_t b = 0; b < B; ++b) {
        for (std::size_t t = 0; t < max_len; ++t) {
            const float* row = y.data() + (t * B + b) * V;
            const auto id = std::max_element(row, row + V) - row;
            if (id == end_id) break;
            out[b] += alphabet[static_cast<std::size_t>(id)];
        }
    }
    return out;
}

// Beam search with the same model: nn::beam_search drives a step function over a batch of
// hypotheses, whose state is the hidden state h [N, H]. The first input is zeros, as in training, so
// the end marker doubles as the start token: it is never fed back otherwise, since it ends a hypothesis.
std::vector<std::string> decode_beam(const nn::RNNDecoder& model, const std::vector<int>& numbers, std::size_t max_len,
                                     std::size_t beam) {
    NoGrad guard;
    const Tensor h0 = tanh(model.init(make_batch(numbers).z));  // [B, H]
    const std::size_t V = alphabet.size();
    const nn::DecodeStepFn step = [&model, V](const LongTensor& tokens, Tensor& h) {
        xt::xarray<float> x = xt::zeros<float>({tokens.size(0), V});  // one-hot of each previous character
        for (std::size_t n = 0; n < tokens.size(0); ++n)
            if (tokens.at(n) != end_id) x(n, static_cast<std::size_t>(tokens.at(n))) = 1.0f;
        h = model.cell(Tensor(std::move(x)), h);
        return model.head(h);  // [N, V] logits of the next character
    };
    const auto beams = nn::beam_search(
        step, h0, {.start_token = end_id, .end_token = end_id, .max_length = max_len, .beam_width = beam});
    std::vector<std::string> out;
    for (const auto& best : beams) {
        std::string s;
        for (std::int64_t id : best.front().tokens) s += alphabet[static_cast<std::size_t>(id)];
        out.push_back(s);
    }
    return out;
}

std::size_t beam_width = 1;  // --beam: 1 decodes greedily (decode), more with decode_beam
std::vector<std::string> decode_any(const nn::RNNDecoder& model, const std::vector<int>& numbers, std::size_t max_len) {
    return beam_width > 1 ? decode_beam(model, numbers, max_len, beam_width) : decode(model, numbers, max_len);
}

struct Score {
    double exact = 0, chars = 0;  // fraction of numbers written exactly; of characters right in place
};
Score score(const nn::RNNDecoder& model, const std::vector<int>& numbers) {
    const auto got = decode_any(model, numbers, 32);
    std::size_t exact = 0, right = 0, total = 0;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        const std::string want = words(numbers[i]) + '.', have = got[i] + '.';  // the end marker counts
        exact += have == want;
        for (std::size_t k = 0; k < want.size(); ++k) right += k < have.size() && have[k] == want[k];
        total += want.size();
    }
    return {static_cast<double>(exact) / numbers.size(), static_cast<double>(right) / total};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"One-to-many: an RNN decoder writes numbers 0..999 in English words, character by character"};
    std::size_t epochs = 150, hidden = 256, batch_size = 32, show = 8;
    double holdout = 0.2, lr = 3e-3, check_exact = 0.2;
    std::uint64_t seed = 1;
    bool short_run = false, check = false;
    app.add_option("--epochs", epochs, "passes over the training numbers")->capture_default_str();
    app.add_option("--hidden", hidden, "decoder hidden size")->capture_default_str();
    app.add_option("--batch", batch_size, "numbers per update")->capture_default_str();
    app.add_option("--lr", lr, "Adam learning rate at the start (it decays linearly to 0)")->capture_default_str();
    app.add_option("--holdout", holdout, "fraction of 0..999 held out of training")->capture_default_str();
    app.add_option("--show", show, "held-out numbers to print with their decoding")->capture_default_str();
    app.add_option("--seed", seed, "random seed (held-out set, initialisation, batch order)")->capture_default_str();
    app.add_flag("--short", short_run, "a quick run for CI: 60 epochs, hidden 128");
    app.add_option("--check-exact", check_exact, "with --check: the held-out exact match it must exceed")
        ->capture_default_str();
    app.add_option("--beam", beam_width, "decode held-out numbers with a beam search of this width (1: greedy)")
        ->capture_default_str();
    app.add_flag("--check", check, "exit 1 unless held-out exact match is above --check-exact");
    CLI11_PARSE(app, argc, argv);
    if (short_run && app.count("--epochs") == 0) epochs = 60;
    if (short_run && app.count("--hidden") == 0) hidden = 128;

    if (epochs == 0 || hidden == 0 || batch_size == 0 || beam_width == 0 || !(holdout > 0 && holdout < 1)) {
        fmt::print(stderr, "number_words: --epochs, --hidden, --batch and --beam must be at least 1, --holdout in (0, 1)\n");
        return 2;
    }
    manual_seed(seed);
    Generator gen(seed);
    // A random, seeded split of 0..999 into training and held-out numbers.
    std::vector<int> all(1000);
    std::iota(all.begin(), all.end(), 0);
    for (std::size_t i = all.size() - 1; i > 0; --i) std::swap(all[i], all[gen.randint(i + 1)]);
    const auto n_held = static_cast<std::size_t>(std::lround(holdout * 1000));
    std::vector<int> held(all.begin(), all.begin() + n_held), train(all.begin() + n_held, all.end());
    fmt::print("{} training numbers, {} held out; e.g. {} -> \"{}\"\n", train.size(), held.size(), held[0],
               words(held[0]));

    const std::size_t V = alphabet.size();
    nn::RNNDecoder model({.latent_size = latent_size, .input_size = V, .hidden_size = hidden, .output_size = V});
    nn::Adam opt(model.parameters(), {.lr = lr});
    fmt::print("{}\n", model.summary());

    const std::size_t per_epoch = (train.size() + batch_size - 1) / batch_size;
    nn::Progress progress(epochs * per_epoch, {.log_every = per_epoch * std::max<std::size_t>(1, epochs / 6)});
    std::size_t step = 0;
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
        for (std::size_t i = train.size() - 1; i > 0; --i) std::swap(train[i], train[gen.randint(i + 1)]);
        double epoch_loss = 0;
        for (std::size_t k = 0; k < train.size(); k += batch_size) {
            const std::vector<int> numbers(train.begin() + k, train.begin() + std::min(train.size(), k + batch_size));
            const Batch batch = make_batch(numbers);
            // The learning rate falls linearly to zero: the last epochs settle instead of jumping around.
            opt.set_lr(lr * (1.0 - static_cast<double>(step) / static_cast<double>(epochs * per_epoch)));
            Tape tape;
            // Teacher forcing: every step reads the true previous character, not the model's guess.
            const Tensor logits = model(batch.z, batch.target.shape()[0], batch.teacher);  // [T, B, V]
            const Tensor loss = cross_entropy(logits, batch.target);  // mean over the real characters
            tape.backward(loss);
            nn::clip_grad_norm(model.parameters(), 5.0);
            opt.step();
            opt.zero_grad();
            epoch_loss += loss.item();
            progress.update(++step, loss.item());
        }
        if (epoch % std::max<std::size_t>(1, epochs / 6) == 0 || epoch == epochs) {
            const Score tr = score(model, train), ho = score(model, held);
            fmt::print("epoch {:3}: loss {:.3f}  exact match: training {:5.1f}%, held-out {:5.1f}%  "
                       "(held-out characters {:5.1f}%)\n",
                       epoch, epoch_loss / per_epoch, 100 * tr.exact, 100 * ho.exact, 100 * ho.chars);
        }
    }
    progress.finish();

    const std::vector<int> shown(held.begin(), held.begin() + std::min(show, held.size()));
    const auto got = decode_any(model, shown, 32);
    fmt::print("held-out numbers, written by the model{}:\n",
               beam_width > 1 ? fmt::format(" (beam search, width {})", beam_width) : "");
    for (std::size_t i = 0; i < shown.size(); ++i)
        fmt::print("  {:3} -> {:30} {}\n", shown[i], "\"" + got[i] + "\"", got[i] == words(shown[i]) ? "ok" : "WRONG");

    const auto all_held = decode_any(model, held, 32);
    std::vector<std::string> wrong;
    for (std::size_t i = 0; i < held.size(); ++i)
        if (all_held[i] != words(held[i])) wrong.push_back(fmt::format("{} -> \"{}\"", held[i], all_held[i]));
    fmt::print("held-out numbers it gets wrong ({}): {}\n", wrong.size(),
               fmt::join(wrong.begin(), wrong.begin() + std::min<std::size_t>(wrong.size(), show), ", "));

    const Score ho = score(model, held);
    fmt::print("held-out exact match {:.1f}%, characters {:.1f}% (chance per character: {:.1f}%)\n",
               100 * ho.exact, 100 * ho.chars, 100.0 / static_cast<double>(V));
    if (check && !(ho.exact > check_exact)) {
        fmt::print(stderr, "check failed: held-out exact match {:.1f}% is not above {:.1f}%\n", 100 * ho.exact,
                   100 * check_exact);
        return 1;
    }
    return 0;
}
