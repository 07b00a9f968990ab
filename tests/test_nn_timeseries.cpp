// Numeric time series: CSV reading (values, column choice, CRLF, and errors naming file and line),
// normalisers and their exact inverses, sliding windows element by element, chronological splits.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
const ScratchDir scratch("tapegrad_test_timeseries");
std::vector<double> random_series(Generator& g, std::size_t n) {
    std::vector<double> s(n);
    for (auto& v : s) v = 20.0 + 5.0 * g.normal();
    return s;
}
// A table of rows x 3 random numbers with a date column first, written with full precision.
std::string csv_text(const std::vector<std::vector<double>>& cols, const std::string& eol) {
    std::string s = "date,temp,load,wind" + eol;
    for (std::size_t r = 0; r < cols[0].size(); ++r)
        s += fmt::format("2024-01-{:02d},{:.17g}, {:.17g} ,{:.17g}{}", r + 1, cols[0][r], cols[1][r], cols[2][r], eol);
    return s;
}
}  // namespace

TEST_CASE("read_csv reads the chosen numeric columns exactly, LF or CRLF", "[nn][timeseries]") {
    Generator g(1);
    std::vector<std::vector<double>> cols = {random_series(g, 12), random_series(g, 12), random_series(g, 12)};
    for (const std::string eol : {"\n", "\r\n"}) {
        const auto path = write_file(scratch("good.csv"), csv_text(cols, eol) + eol + eol);  // blank trailing lines
        const auto t = nn::read_csv(path.string(), {.columns = {"wind", "temp"}});
        CHECK(t.header == std::vector<std::string>{"wind", "temp"});
        REQUIRE(t.columns.size() == 2);
        CHECK(t.columns[0] == cols[2]);
        CHECK(t.columns[1] == cols[0]);
        // Every column: the date column is not a number.
        CHECK_THROWS_WITH(nn::read_csv(path.string()), Contains("good.csv") && Contains("line 2") &&
                                                           Contains("column 'date'") && Contains("'2024-01-01'"));
    }
}

TEST_CASE("read_csv without a header or with another delimiter", "[nn][timeseries]") {
    const auto path = write_file(scratch("plain.csv"), "1;2.5\n-3;4e2\n+5;0");  // no final newline
    const auto t = nn::read_csv(path.string(), {.delimiter = ';', .has_header = false});
    CHECK(t.header == std::vector<std::string>{"0", "1"});
    CHECK(t.columns[0] == std::vector<double>{1, -3, 5});
    CHECK(t.columns[1] == std::vector<double>{2.5, 400, 0});
    const auto quoted = write_file(scratch("quoted.csv"), "\xEF\xBB\xBF\"a\",\"b\"\n1,2\n");  // with a byte-order mark
    CHECK(nn::read_csv(quoted.string(), {.columns = {"b"}}).columns[0] == std::vector<double>{2});
}

TEST_CASE("read_csv errors name the file, the line and the values", "[nn][timeseries]") {
    const auto fields = write_file(scratch("fields.csv"), "a,b,c\n1,2,3\n4,5,6\n7,8\n");
    CHECK_THROWS_AS(nn::read_csv(fields.string()), FormatError);
    CHECK_THROWS_WITH(nn::read_csv(fields.string()), Contains("fields.csv") && Contains("line 4: 2 fields, expected 3"));
    const auto text = write_file(scratch("text.csv"), "a,b\r\n1,2\r\n3,abc\r\n");
    CHECK_THROWS_WITH(nn::read_csv(text.string()),
                      Contains("text.csv") && Contains("line 3") && Contains("column 'b'") && Contains("'abc'"));
    const auto empty_value = write_file(scratch("empty_value.csv"), "a,b\n1,\n");
    CHECK_THROWS_WITH(nn::read_csv(empty_value.string()), Contains("line 2") && Contains("column 'b'"));
    const auto nan = write_file(scratch("nan.csv"), "a\nnan\n");
    CHECK_THROWS_WITH(nn::read_csv(nan.string()), Contains("not a finite number"));
    CHECK_THROWS_WITH(nn::read_csv(fields.string(), {.columns = {"a", "pressure"}}),
                      Contains("no column 'pressure'") && Contains("'a', 'b', 'c'"));
    const auto empty = write_file(scratch("empty.csv"), "");
    CHECK_THROWS_WITH(nn::read_csv(empty.string()), Contains("read_csv") && Contains("empty.csv"));
    const auto blank = write_file(scratch("blank.csv"), "\n\r\n\n");
    CHECK_THROWS_AS(nn::read_csv(blank.string()), FormatError);
    const auto blank_first = write_file(scratch("blank_first.csv"), "\na\n1\n");
    CHECK_THROWS_WITH(nn::read_csv(blank_first.string()), Contains("line 1") && Contains("header"));
    const auto header_only = write_file(scratch("header_only.csv"), "a,b\n");
    CHECK_THROWS_WITH(nn::read_csv(header_only.string()), Contains("no data rows"));
    const auto gap = write_file(scratch("gap.csv"), "a\n1\n\n2\n");
    CHECK_THROWS_WITH(nn::read_csv(gap.string()), Contains("line 3") && Contains("blank line"));
    CHECK_THROWS_WITH(nn::read_csv("/nonexistent/dir/x.csv"), Contains("/nonexistent/dir/x.csv"));
}

TEST_CASE("ZScore and MinMax invert exactly and refuse a constant series", "[nn][timeseries]") {
    Generator g(2);
    const auto x = random_series(g, 200);
    // Reference moments by a different route: E[x^2] - E[x]^2 on the centred-by-x[0] values.
    double s1 = 0, s2 = 0;
    for (double v : x) s1 += v - x[0], s2 += (v - x[0]) * (v - x[0]);
    const double n = static_cast<double>(x.size());
    const double ref_mean = x[0] + s1 / n, ref_std = std::sqrt(s2 / n - (s1 / n) * (s1 / n));

    const auto z = nn::ZScore::fit(x);
    CHECK(z.mean == Approx(ref_mean).epsilon(1e-12));
    CHECK(z.std == Approx(ref_std).epsilon(1e-10));
    const auto zx = z.transform(x);
    double m = 0, v = 0;
    for (double e : zx) m += e / n;
    for (double e : zx) v += (e - m) * (e - m) / n;
    CHECK(std::abs(m) < 1e-12);
    CHECK(std::abs(v - 1) < 1e-12);
    const auto zb = z.inverse(zx);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(std::abs(zb[i] - x[i]) <= 1e-12 * std::abs(x[i]));

    const auto mm = nn::MinMax::fit(x);
    const auto y = mm.transform(x);
    CHECK(*std::min_element(y.begin(), y.end()) == 0.0);
    CHECK(*std::max_element(y.begin(), y.end()) == 1.0);
    const auto yb = mm.inverse(y);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(std::abs(yb[i] - x[i]) <= 1e-12 * std::abs(x[i]));

    const std::vector<double> flat(10, 3.5);
    CHECK_THROWS_WITH(nn::ZScore::fit(flat), Contains("ZScore::fit") && Contains("constant"));
    CHECK_THROWS_WITH(nn::MinMax::fit(flat), Contains("MinMax::fit") && Contains("constant"));
    CHECK_THROWS_AS(nn::ZScore::fit({}), ValueError);
    CHECK_THROWS_AS(nn::MinMax::fit({1.0, NAN}), ValueError);
    // A normaliser rebuilt from saved numbers works the same; a broken one is refused.
    const nn::ZScore saved{.mean = z.mean, .std = z.std};
    CHECK(saved.transform(x[3]) == zx[3]);
    CHECK_THROWS_WITH((nn::ZScore{.mean = 0, .std = 0}).transform(1.0), Contains("ZScore::transform"));
    CHECK_THROWS_AS((nn::MinMax{.min = 2, .max = 2}).inverse(0.5), ValueError);
}

TEST_CASE("sliding_windows: count and content of every window, both layouts", "[nn][timeseries]") {
    Generator g(3);
    const auto s = random_series(g, 20);
    const std::size_t T = 5, H = 2, stride = 3, N = (20 - T - H) / stride + 1;  // 5
    const auto w = nn::sliding_windows(s, {.input_length = T, .horizon = H, .stride = stride, .dtype = f64});
    REQUIRE(w.inputs.shape() == Shape{N, T, 1});
    REQUIRE(w.targets.shape() == Shape{N, H});
    for (std::size_t i = 0; i < N; ++i) {
        for (std::size_t t = 0; t < T; ++t) CHECK(w.inputs.at(i * T + t) == s[i * stride + t]);
        for (std::size_t h = 0; h < H; ++h) CHECK(w.targets.at(i * H + h) == s[i * stride + T + h]);
    }
    const auto tm = nn::sliding_windows(s, {.input_length = T, .horizon = H, .stride = stride, .time_major = true});
    REQUIRE(tm.inputs.shape() == Shape{T, N, 1});
    CHECK(tm.inputs.dtype() == f32);
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t t = 0; t < T; ++t)
            CHECK(tm.inputs.at(t * N + i) == static_cast<double>(static_cast<float>(s[i * stride + t])));
    // The last value of the series is used when the windows fit exactly.
    const auto exact = nn::sliding_windows(s, {.input_length = 19});
    CHECK(exact.targets.shape() == Shape{1, 1});
    CHECK(exact.targets.at(0) == static_cast<double>(static_cast<float>(s[19])));

    CHECK_THROWS_WITH(nn::sliding_windows(std::vector<double>(6, 1.0), {.input_length = 5, .horizon = 2}),
                      Contains("sliding_windows") && Contains("7 values") && Contains("(6 values)"));
    CHECK_THROWS_AS(nn::sliding_windows(s, {.input_length = 0}), ValueError);
    CHECK_THROWS_AS(nn::sliding_windows(s, {.input_length = 3, .stride = 0}), ValueError);
    CHECK_THROWS_AS(nn::sliding_windows(s, {.input_length = 3, .horizon = 0}), ValueError);
}

TEST_CASE("chronological_split keeps time order and makes three non-empty parts", "[nn][timeseries]") {
    Generator g(4);
    const auto s = random_series(g, 20);
    const auto sp = nn::chronological_split(s, 0.6, 0.2);
    REQUIRE(sp.train.size() == 12);
    REQUIRE(sp.val.size() == 4);
    REQUIRE(sp.test.size() == 4);
    std::vector<double> joined = sp.train;
    joined.insert(joined.end(), sp.val.begin(), sp.val.end());
    joined.insert(joined.end(), sp.test.begin(), sp.test.end());
    CHECK(joined == s);
    CHECK_THROWS_WITH(nn::chronological_split(std::vector<double>(4, 0.0), 0.8, 0.1),
                      Contains("chronological_split") && Contains("non-empty"));
    CHECK_THROWS_AS(nn::chronological_split(s, 0.7, 0.3), ValueError);
    CHECK_THROWS_AS(nn::chronological_split(s, 0.0, 0.3), ValueError);
}
