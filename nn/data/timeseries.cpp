// tapegrad::nn: time-series input: a small strict CSV reader (every error names file and line),
// normalisers, sliding windows and the chronological split.
#include "timeseries.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "text.hpp"

namespace tapegrad::nn {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    return s;
}

std::vector<std::string_view> split_fields(std::string_view line, char delim) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t pos = line.find(delim, start);
        out.push_back(trim(line.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start)));
        if (pos == std::string_view::npos) break;
        start = pos + 1;
    }
    return out;
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t") == std::string_view::npos; }

// A number as written in the file, or nothing: all of the text must be used, and it must be finite
// (a NaN or infinity in training data is almost always a bug upstream).
bool parse_number(std::string_view s, double& out) {
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    if (s.empty()) return false;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

// A field for an error message: at most 40 bytes (cut at a character boundary) so that a hostile
// file cannot make the message as long as itself, with control characters escaped (a NUL would
// end the message early for anyone reading what() as a C string).
std::string shown(std::string_view s) {
    std::size_t n = s.size();
    if (n > 40) {
        n = 40;
        while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not inside a UTF-8 sequence
    }
    std::string out;
    for (const char c : s.substr(0, n)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) out += fmt::format("\\x{:02x}", u);
        else out += c;
    }
    return n < s.size() ? out + "..." : out;
}

void check_finite(const std::vector<double>& v, const char* op) {
    if (v.empty()) throw ValueError(fmt::format("{}: the series is empty", op));
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(v[i])) throw ValueError(fmt::format("{}: value {} is {}, not finite", op, i, v[i]));
}

// The CSV parser proper, for text already known to be valid UTF-8; `op` and `path` start messages.
CsvTable parse_csv_text(std::string_view text, const std::string& path, const CsvOptions& options, const char* op) {
    if (options.delimiter == '\n' || options.delimiter == '\r' || options.delimiter == '"')
        throw ValueError(fmt::format("{}: the delimiter cannot be a line end or a double quote", op));
    // The text is walked one line at a time (no vector of lines: a CSV of short rows would need
    // more memory for the line index than for its values). Trailing blank lines are dropped.
    std::string_view rest = text;
    if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // the byte-order mark some editors write
    {
        std::size_t end = rest.size();
        while (end > 0) {  // drop trailing lines holding only blanks
            const std::size_t nl = rest.find_last_of('\n', end - 1);
            const std::size_t start = nl == std::string_view::npos ? 0 : nl + 1;
            std::string_view line = rest.substr(start, end - start);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (!is_blank(line)) break;
            end = nl == std::string_view::npos ? 0 : nl;
        }
        rest = rest.substr(0, end);
    }
    if (rest.empty()) throw FormatError(fmt::format("{}: '{}' holds only blank lines", op, path));
    // Lines, without their LF / CRLF ends.
    auto next_line = [&rest]() {
        const std::size_t nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        return line;
    };
    const std::size_t n_lines = static_cast<std::size_t>(std::count(rest.begin(), rest.end(), '\n')) + 1;
    const std::string_view first_line = next_line();

    if (is_blank(first_line))
        throw FormatError(fmt::format("{}: '{}' line 1: a blank line where the {} should be", op, path,
                                      options.has_header ? "header" : "first row"));
    std::vector<std::string> names;
    std::size_t first_data = 0;  // 0-based line number of the first data row
    const std::size_t n_fields = split_fields(first_line, options.delimiter).size();
    if (options.has_header) {
        for (auto f : split_fields(first_line, options.delimiter)) names.emplace_back(f);
        first_data = 1;
    } else {
        for (std::size_t c = 0; c < n_fields; ++c) names.push_back(std::to_string(c));
    }
    if (first_data >= n_lines)
        throw FormatError(fmt::format("{}: '{}' has a header but no data rows", op, path));

    // Which file column feeds each output column.
    std::vector<std::size_t> pick;
    if (options.columns.empty()) {
        for (std::size_t c = 0; c < n_fields; ++c) pick.push_back(c);
    } else {
        for (const std::string& want : options.columns) {
            std::vector<std::size_t> found;
            for (std::size_t c = 0; c < names.size(); ++c)
                if (names[c] == want) found.push_back(c);
            if (found.empty()) {
                std::string have;
                for (std::size_t c = 0; c < names.size() && c < 20; ++c)
                    have += fmt::format("{}'{}'", c ? ", " : "", shown(names[c]));
                if (names.size() > 20) have += ", ...";
                throw FormatError(fmt::format("{}: '{}' has no column '{}' (columns: {})", op, path, shown(want),
                                              have));
            }
            if (found.size() > 1)
                throw FormatError(fmt::format("{}: '{}' has {} columns named '{}' (line 1)", op, path, found.size(),
                                              want));
            pick.push_back(found[0]);
        }
    }

    // Two columns read under one name would be told apart only by position: refuse the ambiguity.
    // (A map, not a double loop: a hostile header may have hundreds of thousands of columns.)
    std::unordered_map<std::string_view, std::size_t> first_with_name;
    for (std::size_t c : pick) {
        const auto [it, fresh] = first_with_name.emplace(names[c], c);
        if (!fresh)
            throw FormatError(fmt::format("{}: '{}' line 1: columns {} and {} have the same name '{}'", op, path,
                                          it->second + 1, c + 1, shown(names[c])));
    }
    CsvTable table;
    for (std::size_t c : pick) table.header.push_back(names[c]);
    table.columns.assign(pick.size(), {});
    for (auto& col : table.columns) col.reserve(n_lines - first_data);
    for (std::size_t li = first_data; li < n_lines; ++li) {
        const std::size_t line_no = li + 1;
        const std::string_view line = li == 0 ? first_line : next_line();
        if (is_blank(line))
            throw FormatError(fmt::format("{}: '{}' line {}: a blank line inside the data", op, path, line_no));
        const auto fields = split_fields(line, options.delimiter);
        if (fields.size() != n_fields)
            throw FormatError(fmt::format("{}: '{}' line {}: {} fields, expected {}", op, path, line_no,
                                          fields.size(), n_fields));
        for (std::size_t k = 0; k < pick.size(); ++k) {
            double v = 0;
            if (!parse_number(fields[pick[k]], v))
                throw FormatError(fmt::format("{}: '{}' line {}: column '{}' holds '{}', not a finite number", op,
                                              path, line_no, shown(names[pick[k]]), shown(fields[pick[k]])));
            table.columns[k].push_back(v);
        }
    }
    return table;
}

}  // namespace

CsvTable read_csv(const std::string& path, CsvOptions options) {
    std::string text;
    try {
        text = read_text_file(path);
    } catch (const FormatError& e) {
        throw FormatError(fmt::format("read_csv: {}", e.what()));
    }
    return parse_csv_text(text, path, options, "read_csv");
}

CsvTable parse_csv(std::string_view text, const std::string& name, CsvOptions options) {
    if (text.empty()) throw FormatError(fmt::format("parse_csv: '{}' is empty", name));
    try {
        utf8_validate(text, "parse_csv");
    } catch (const ValueError& e) {
        throw FormatError(fmt::format("parse_csv: '{}' is not valid UTF-8: {}", name, e.what()));
    }
    return parse_csv_text(text, name, options, "parse_csv");
}

// ---- normalisers ----------------------------------------------------------------------------

ZScore ZScore::fit(const std::vector<double>& series) {
    check_finite(series, "ZScore::fit");
    double mean = 0;
    for (double v : series) mean += v;
    mean /= static_cast<double>(series.size());
    double var = 0;
    for (double v : series) var += (v - mean) * (v - mean);
    var /= static_cast<double>(series.size());
    if (!(var > 0))
        throw ValueError(fmt::format("ZScore::fit: the series ({} values) is constant ({}): its standard deviation "
                                     "is 0, so it cannot be scaled",
                                     series.size(), mean));
    return {.mean = mean, .std = std::sqrt(var)};
}

double ZScore::transform(double x) const {
    if (!(std > 0 && std::isfinite(std)) || !std::isfinite(mean))
        throw ValueError(fmt::format("ZScore::transform: needs a finite mean and std > 0, got mean {} std {}", mean,
                                     std));
    return (x - mean) / std;
}
double ZScore::inverse(double z) const {
    if (!(std > 0 && std::isfinite(std)) || !std::isfinite(mean))
        throw ValueError(fmt::format("ZScore::inverse: needs a finite mean and std > 0, got mean {} std {}", mean,
                                     std));
    return z * std + mean;
}
std::vector<double> ZScore::transform(const std::vector<double>& x) const {
    std::vector<double> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = transform(x[i]);
    return out;
}
std::vector<double> ZScore::inverse(const std::vector<double>& z) const {
    std::vector<double> out(z.size());
    for (std::size_t i = 0; i < z.size(); ++i) out[i] = inverse(z[i]);
    return out;
}

MinMax MinMax::fit(const std::vector<double>& series) {
    check_finite(series, "MinMax::fit");
    double lo = series[0], hi = series[0];
    for (double v : series) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(hi > lo))
        throw ValueError(fmt::format("MinMax::fit: the series ({} values) is constant ({}): max == min, so it "
                                     "cannot be scaled",
                                     series.size(), lo));
    return {.min = lo, .max = hi};
}

double MinMax::transform(double x) const {
    if (!(max > min) || !std::isfinite(max - min))
        throw ValueError(fmt::format("MinMax::transform: needs finite min < max, got min {} max {}", min, max));
    return (x - min) / (max - min);
}
double MinMax::inverse(double y) const {
    if (!(max > min) || !std::isfinite(max - min))
        throw ValueError(fmt::format("MinMax::inverse: needs finite min < max, got min {} max {}", min, max));
    return y * (max - min) + min;
}
std::vector<double> MinMax::transform(const std::vector<double>& x) const {
    std::vector<double> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = transform(x[i]);
    return out;
}
std::vector<double> MinMax::inverse(const std::vector<double>& y) const {
    std::vector<double> out(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) out[i] = inverse(y[i]);
    return out;
}

// ---- windows and splits ---------------------------------------------------------------------

namespace {

template <class V>
Windows make_windows(const std::vector<double>& s, const WindowOptions& o, std::size_t N) {
    const std::size_t T = o.input_length, H = o.horizon;
    xt::xarray<V> in = xt::xarray<V>::from_shape(o.time_major ? Shape{T, N, 1} : Shape{N, T, 1});
    xt::xarray<V> tg = xt::xarray<V>::from_shape({N, H});
    V* pin = in.data();
    V* ptg = tg.data();
    for (std::size_t i = 0; i < N; ++i) {
        const std::size_t start = i * o.stride;
        for (std::size_t t = 0; t < T; ++t)
            pin[o.time_major ? t * N + i : i * T + t] = static_cast<V>(s[start + t]);
        for (std::size_t h = 0; h < H; ++h) ptg[i * H + h] = static_cast<V>(s[start + T + h]);
    }
    return {Tensor(std::move(in)), Tensor(std::move(tg))};
}

}  // namespace

Windows sliding_windows(const std::vector<double>& series, WindowOptions options) {
    if (options.input_length == 0) throw ValueError("sliding_windows: input_length must be at least 1, got 0");
    if (options.horizon == 0) throw ValueError("sliding_windows: horizon must be at least 1, got 0");
    if (options.stride == 0) throw ValueError("sliding_windows: stride must be at least 1, got 0");
    const std::size_t need = options.input_length + options.horizon;
    if (need > series.size())
        throw ValueError(fmt::format("sliding_windows: a window of {} inputs + {} targets = {} values is longer than "
                                     "the series ({} values)",
                                     options.input_length, options.horizon, need, series.size()));
    for (std::size_t i = 0; i < series.size(); ++i)
        if (!std::isfinite(series[i]))
            throw ValueError(fmt::format("sliding_windows: series value {} is {}, not finite", i, series[i]));
    const std::size_t N = (series.size() - need) / options.stride + 1;
    return options.dtype == f64 ? make_windows<double>(series, options, N) : make_windows<float>(series, options, N);
}

SeriesSplit chronological_split(const std::vector<double>& series, double train_fraction, double val_fraction) {
    if (!(train_fraction > 0 && train_fraction < 1) || !(val_fraction > 0 && val_fraction < 1) ||
        !(train_fraction + val_fraction < 1))
        throw ValueError(fmt::format("chronological_split: fractions must be in (0, 1) with a sum below 1 (the "
                                     "rest is the test part), got train {} val {}",
                                     train_fraction, val_fraction));
    const std::size_t N = series.size();
    const auto n_train = static_cast<std::size_t>(std::llround(static_cast<double>(N) * train_fraction));
    const auto n_val = static_cast<std::size_t>(std::llround(static_cast<double>(N) * val_fraction));
    if (n_train == 0 || n_val == 0 || n_train + n_val >= N)
        throw ValueError(fmt::format("chronological_split: {} values with fractions train {} val {} give {} train, "
                                     "{} val and {} test values; each part must be non-empty",
                                     N, train_fraction, val_fraction, n_train, n_val,
                                     N > n_train + n_val ? N - n_train - n_val : 0));
    SeriesSplit out;
    const auto b = series.begin();
    out.train.assign(b, b + static_cast<long>(n_train));
    out.val.assign(b + static_cast<long>(n_train), b + static_cast<long>(n_train + n_val));
    out.test.assign(b + static_cast<long>(n_train + n_val), series.end());
    return out;
}

}  // namespace tapegrad::nn
