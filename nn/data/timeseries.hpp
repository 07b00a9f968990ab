/// \file
/// \brief Numeric time series for forecasting: CSV columns, normalisers, windows, splits.
/// \ingroup data
///
/// Numeric time series for forecasting with an RNN: reading numeric columns from a
/// CSV file, normalising with an exact inverse (to report forecasts in the data's own units),
/// cutting a series into (input window, next values) pairs, and splitting it in time order.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

/// \addtogroup data
/// @{

/// Options of read_csv() and parse_csv().
struct CsvOptions {
    char delimiter = ',';  ///< the field separator
    /// Without a header the columns are named "0", "1", ... (so `columns` can still pick them).
    bool has_header = true;
    /// The columns to read, by name, in this order; empty = every column. Only these must be numeric,
    /// so a date or label column is simply left out.
    std::vector<std::string> columns = {};
};

/// Numeric columns read from a CSV file.
struct CsvTable {
    std::vector<std::string> header;           ///< the names of the columns read
    std::vector<std::vector<double>> columns;   ///< columns[c][row], one per header name
};

/// Reads a small CSV of numbers (UTF-8; fields are trimmed of spaces and of one pair of surrounding
/// double quotes; quoted delimiters are not supported). LF or CRLF line ends; trailing blank lines are
/// ignored, a blank line inside the data is an error. Every FormatError names the file and, where
/// there is one, the line: a row with the wrong number of fields, a value that is not a finite number
/// (with its column and text), a requested column that does not exist, two columns read under one
/// name, an empty file, no data rows, invalid UTF-8.
CsvTable read_csv(const std::string& path, CsvOptions options = {});
/// read_csv for text already in memory; `name` stands for the file in messages. Invalid UTF-8 is a
/// FormatError too.
CsvTable parse_csv(std::string_view text, const std::string& name, CsvOptions options = {});

/// z = (x - mean) / std, with the population standard deviation (divide by N). A constant series
/// (std 0) cannot be normalised: ValueError. The members are public so a fitted normaliser can be
/// saved and rebuilt ({.mean = m, .std = s}); transform and inverse check std is finite and > 0.
struct ZScore {
    double mean = 0.0;  ///< the fitted mean
    double std = 1.0;   ///< the fitted population standard deviation
    /// The mean and standard deviation of series; an empty, non-finite or constant series is a
    /// ValueError.
    static ZScore fit(const std::vector<double>& series);
    std::vector<double> transform(const std::vector<double>& x) const;  ///< (x - mean) / std, each value
    std::vector<double> inverse(const std::vector<double>& z) const;    ///< z * std + mean, each value
    double transform(double x) const;  ///< (x - mean) / std
    double inverse(double z) const;    ///< z * std + mean
};

/// y = (x - min) / (max - min), so the fitted series spans [0, 1]. max == min: ValueError.
struct MinMax {
    double min = 0.0;  ///< the fitted minimum
    double max = 1.0;  ///< the fitted maximum
    /// The minimum and maximum of series; an empty, non-finite or constant series is a ValueError.
    static MinMax fit(const std::vector<double>& series);
    std::vector<double> transform(const std::vector<double>& x) const;  ///< (x - min) / (max - min), each value
    std::vector<double> inverse(const std::vector<double>& y) const;    ///< y (max - min) + min, each value
    double transform(double x) const;  ///< (x - min) / (max - min)
    double inverse(double y) const;    ///< y (max - min) + min
};

/// Options of sliding_windows().
struct WindowOptions {
    std::size_t input_length = 0;  ///< T, the steps the RNN reads (required, >= 1)
    std::size_t horizon = 1;       ///< the values after the window to predict (>= 1)
    std::size_t stride = 1;        ///< start of window i = i * stride (>= 1)
    DType dtype = f32;             ///< the dtype of inputs and targets
    /// inputs as [T, N, 1], the RNN's default layout, instead of [N, T, 1]
    /// (transpose(inputs, 0, 1) converts between the two later).
    bool time_major = false;
};

/// Input windows and their targets, from sliding_windows().
struct Windows {
    Tensor inputs;   ///< [N, T, 1], or [T, N, 1] with time_major
    Tensor targets;  ///< [N, horizon]
};

/// Window i reads series[i*stride, i*stride + T) and its targets are the next horizon values,
/// series[i*stride + T, i*stride + T + horizon). N = (len - T - horizon) / stride + 1 windows; a
/// window (T + horizon) longer than the series is a ValueError naming both lengths.
Windows sliding_windows(const std::vector<double>& series, WindowOptions options);

/// A series cut into three consecutive parts, from chronological_split().
struct SeriesSplit {
    std::vector<double> train;  ///< the first part
    std::vector<double> val;    ///< the middle part
    std::vector<double> test;   ///< the last part
};

/// The first round(N * train_fraction) values for training, the next round(N * val_fraction) for
/// validation, the rest for testing: time order, never shuffled, so no future value leaks into
/// training. Each part must be non-empty, else a ValueError naming the sizes.
SeriesSplit chronological_split(const std::vector<double>& series, double train_fraction, double val_fraction);

/// @}
}  // namespace tapegrad::nn
