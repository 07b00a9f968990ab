// Forecasting a real time series: next year's sunspot number from the last 20 years, 1700-2008.
// It teaches the honest path from a CSV column to a forecast in the data's own units: normalise
// with statistics of the training years only, cut the series into (window, next value) pairs,
// split in time order (train, validation, test, never shuffled across), train an RNN, LSTM or GRU
// with a Linear head on the last step, stop early on validation, and compare the test RMSE, after
// the exact inverse transform, with the persistence baseline "next year = this year".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

#ifndef SUNSPOTS_CSV
#define SUNSPOTS_CSV "examples/data/sunspots.csv"
#endif

namespace {

// A recurrent layer of the chosen kind, then a Linear on its last step: [T, B, 1] -> [B, 1].
struct Forecaster : nn::Module {
    std::unique_ptr<nn::RNN> rnn;
    std::unique_ptr<nn::LSTM> lstm;
    std::unique_ptr<nn::GRU> gru;
    nn::Linear head;
    Forecaster(const std::string& cell, std::size_t hidden) : head(hidden, 1) {
        if (cell == "rnn") register_module("rnn", *(rnn = std::make_unique<nn::RNN>(nn::RNNOptions{1, hidden})));
        if (cell == "lstm") register_module("lstm", *(lstm = std::make_unique<nn::LSTM>(nn::LSTMOptions{1, hidden})));
        if (cell == "gru") register_module("gru", *(gru = std::make_unique<nn::GRU>(nn::GRUOptions{1, hidden})));
        register_module("head", head);
    }
    std::string type_name() const override { return "Forecaster"; }
    Tensor forward(const Tensor& x) const {  // x [T, B, 1] -> [B, 1]
        const Tensor out = rnn ? rnn->forward(x).output : lstm ? lstm->forward(x).output : gru->forward(x).output;
        return head(nn::last_step(out));  // out [T, B, H] -> [B, H] -> [B, 1]
    }
    Tensor operator()(const Tensor& x) const { return forward(x); }
};

// The windows whose targets are the years of `part`, reading the `context` years before it: the
// input of the first target year is the last T values of what came before, as a forecaster would
// have them. Returns inputs [T, N, 1] and targets [N, 1], N = part.size().
nn::Windows windows_for(const std::vector<double>& before, const std::vector<double>& part, std::size_t T) {
    std::vector<double> s(before.end() - static_cast<long>(T), before.end());
    s.insert(s.end(), part.begin(), part.end());
    return nn::sliding_windows(s, {.input_length = T, .horizon = 1, .time_major = true});
}

// Root mean squared error between two equally long vectors.
double rmse(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(s / static_cast<double>(a.size()));
}

std::vector<double> to_vector(const Tensor& t) {
    std::vector<double> v(t.numel());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = t.at(i);
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Forecast next year's sunspot number from the previous years with an RNN, LSTM or GRU, and "
                 "compare the test RMSE with the persistence baseline."};
    std::string data = SUNSPOTS_CSV, cell = "gru", csv;
    unsigned seed = 1;
    std::size_t window = 20, hidden = 32, batch = 16, epochs = 300, patience = 40;
    double lr = 3e-3;
    bool short_run = false, check = false;
    app.add_option("--data", data, "CSV with a 'sunspots' column, one row per year")->capture_default_str();
    app.add_option("--cell", cell, "recurrent layer")->check(CLI::IsMember({"rnn", "lstm", "gru"}))->capture_default_str();
    app.add_option("--window", window, "years read per forecast (T)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--hidden", hidden, "hidden units")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--batch", batch, "windows per Adam step")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--epochs", epochs, "most passes over the training windows")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--patience", patience, "stop after this many epochs without a better validation RMSE")
        ->capture_default_str();
    app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--seed", seed, "random seed (initialisation and batch order)")->capture_default_str();
    app.add_option("--csv", csv, "write year, truth, forecast, persistence for the test years to this file");
    app.add_flag("--short", short_run, "a quick run (for CI): at most 60 epochs");
    app.add_flag("--check", check, "exit with status 1 unless the test RMSE beats the persistence baseline");
    CLI11_PARSE(app, argc, argv);
    if (short_run && app.count("--epochs") == 0) epochs = 60;

    // ---- data: read, split in time order, normalise with the training years' statistics only ----
    const nn::CsvTable table = nn::read_csv(data, {.columns = {"year", "sunspots"}});
    const std::vector<double>& years = table.columns[0];
    const std::vector<double>& series = table.columns[1];
    const nn::SeriesSplit split = nn::chronological_split(series, 0.7, 0.15);
    const nn::ZScore norm = nn::ZScore::fit(split.train);  // mean and std of the training years only
    const std::vector<double> train_z = norm.transform(split.train);
    const std::vector<double> val_z = norm.transform(split.val);
    const std::vector<double> test_z = norm.transform(split.test);
    std::vector<double> train_val_z = train_z;
    train_val_z.insert(train_val_z.end(), val_z.begin(), val_z.end());

    const nn::Windows train = nn::sliding_windows(train_z, {.input_length = window, .time_major = true});
    const nn::Windows val = windows_for(train_z, val_z, window);
    const nn::Windows test = windows_for(train_val_z, test_z, window);
    const std::size_t n_train = train.targets.size(0);
    const std::size_t first_test = split.train.size() + split.val.size();
    fmt::print("sunspots {:.0f}-{:.0f}: {} years; forecasts for train {:.0f}-{:.0f} ({} windows of {} years), "
               "val {:.0f}-{:.0f}, test {:.0f}-{:.0f}\n",
               years.front(), years.back(), series.size(), years[window], years[split.train.size() - 1], n_train,
               window, years[split.train.size()], years[first_test - 1], years[first_test], years.back());
    fmt::print("z-score fitted on the training years: mean {:.2f}, std {:.2f}\n", norm.mean, norm.std);

    // ---- model and training: Adam on minibatches, early stopping on the validation RMSE ----
    manual_seed(seed);
    Forecaster model(cell, hidden);
    nn::Adam opt(model.parameters(), {.lr = lr});
    std::mt19937 gen(seed);
    std::vector<std::int64_t> order(n_train);
    std::iota(order.begin(), order.end(), 0);

    // The forecasts for `w`'s windows, in sunspot units (the exact inverse of the z-score).
    auto forecast = [&](const nn::Windows& w) {
        NoGrad guard;
        return norm.inverse(to_vector(model(w.inputs)));
    };
    auto truth = [&](const nn::Windows& w) { return norm.inverse(to_vector(w.targets)); };
    const std::vector<double> val_truth = truth(val);

    fmt::print("{} with {} hidden units ({} parameters), Adam lr {}, batch {}, seed {}\n\n", cell, hidden,
               model.num_parameters(), lr, batch, seed);
    fmt::print("{:>5}  {:>10}  {:>8}\n", "epoch", "train MSE", "val RMSE");
    const auto start = std::chrono::steady_clock::now();
    double best_val = INFINITY;
    std::size_t best_epoch = 0, epoch = 0;
    std::vector<Tensor> best;  // a copy of the parameters at the best validation RMSE
    for (epoch = 1; epoch <= epochs && epoch - best_epoch <= patience; ++epoch) {
        std::shuffle(order.begin(), order.end(), gen);
        double loss_sum = 0;
        for (std::size_t b0 = 0; b0 < n_train; b0 += batch) {
            const std::vector<std::int64_t> idx(order.begin() + static_cast<long>(b0),
                                                order.begin() + static_cast<long>(std::min(n_train, b0 + batch)));
            const Tensor x = index_select(train.inputs, 1, idx);   // [T, b, 1]
            const Tensor y = index_select(train.targets, 0, idx);  // [b, 1]
            Tape tape;
            const Tensor loss = mse_loss(model(x), y);
            tape.backward(loss);
            opt.step();
            opt.zero_grad();
            loss_sum += loss.item() * static_cast<double>(idx.size());
        }
        const double val_rmse = rmse(forecast(val), val_truth);
        if (val_rmse < best_val) {
            best_val = val_rmse;
            best_epoch = epoch;
            best.clear();
            for (const Tensor& p : model.parameters()) best.push_back(p.detach());
        }
        if (epoch % 10 == 0 || epoch == 1)
            fmt::print("{:>5}  {:>10.4f}  {:>8.2f}{}\n", epoch, loss_sum / static_cast<double>(n_train), val_rmse,
                       best_epoch == epoch ? "  *" : "");
    }
    // Back to the parameters of the best validation epoch.
    std::vector<Tensor> params = model.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) params[i].mutable_value<float>() = best[i].value<float>();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("stopped after epoch {}; best validation RMSE {:.2f} at epoch {}\n\n", epoch - 1, best_val, best_epoch);
    fmt::print(stderr, "training took {:.1f}s\n", secs);  // stderr: stdout stays the same from run to run

    // ---- test: the model against persistence, both in sunspot units ----
    const std::vector<double> test_truth = truth(test);
    const std::vector<double> test_pred = forecast(test);
    std::vector<double> persistence(test_truth.size());
    for (std::size_t i = 0; i < persistence.size(); ++i) persistence[i] = series[first_test + i - 1];
    const double model_rmse = rmse(test_pred, test_truth), base_rmse = rmse(persistence, test_truth);
    fmt::print("test years {:.0f}-{:.0f} ({} forecasts, one year ahead):\n", years[first_test], years.back(),
               test_truth.size());
    fmt::print("  {} RMSE          {:6.2f}\n", cell, model_rmse);
    fmt::print("  persistence RMSE  {:6.2f}   (next year = this year)\n", base_rmse);
    fmt::print("  ratio             {:6.2f}\n", model_rmse / base_rmse);

    if (!csv.empty()) {
        std::ofstream f(csv);
        f << "year,truth,forecast,persistence\n";
        for (std::size_t i = 0; i < test_truth.size(); ++i)
            f << fmt::format("{:.0f},{:.1f},{:.2f},{:.1f}\n", years[first_test + i], test_truth[i], test_pred[i],
                             persistence[i]);
        if (!f) throw FormatError("sunspots: could not write " + csv);
        fmt::print("wrote {}\n", csv);
    }
    if (check) {
        const bool ok = model_rmse < base_rmse;
        fmt::print("check: {} (needs the test RMSE below the persistence baseline's)\n", ok ? "passed" : "FAILED");
        return ok ? 0 : 1;
    }
    return 0;
}
