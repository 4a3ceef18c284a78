// Package calib chooses the real range [alpha, beta] of each tensor from the
// values that float inference produces on calibration data, and stores the
// ranges in a calibration table.
//
// # Overview
//
// Calibration is collect then compute. A driver creates one Observer per
// tensor with NewObserver, passes each batch of the tensor's values to
// Observe, and calls Range after the last batch. Range returns [Alpha, Beta]
// with the number of finite values (Samples) and of the NaN and ±Inf values
// that Observe skipped. NewEntry turns a Range into a table Entry, Table.Write
// stores the table, and ReadTable and Table.CheckModel load it back for
// quantization.
//
// Range returns an error naming the tensor when it saw no finite value. A
// constant tensor gets Alpha == Beta. Quantization widens every range to
// contain 0, so calib does not.
//
// Observers are not safe for concurrent use: give each goroutine its own
// observers, or serialize the calls.
//
// # Methods
//
// Method names the closed set of observers, and Settings holds their
// parameters. DefaultSettings returns:
//
//   - minmax: the smallest and largest finite values. No parameters.
//   - ema: the per-batch minimum and maximum, averaged with momentum 0.99
//     (DefaultMomentum). The only method whose result depends on how the
//     values are split into batches and on the batch order.
//   - percentile: the (100-p)-th and p-th percentiles with p = 99.99, read
//     from a histogram of at most 2048 bins.
//   - entropy: the threshold t with the least KL divergence between the
//     histogram of |x| (at most 2048 bins) and its quantization to 128
//     levels (8 bits), as NVIDIA describes TensorRT's entropy calibration.
//     The range is [-t, t] for a tensor with values of both signs, [0, t]
//     for a tensor without negative values and [-t, 0] for one without
//     positive values.
//   - mse: the range with the least estimated mean squared quantization
//     error on an asymmetric 8-bit (uint8) grid, from a histogram of at most
//     2048 bins. Symmetric selects a symmetric grid, with ranges as for
//     entropy.
//
// The method types in minmax.go, percentile.go, entropy.go and mse.go
// document their algorithms.
//
// # Order independence
//
// minmax, percentile, entropy and mse return bit-identical ranges for any
// split of the same values into batches and any batch order. Each computes
// its range from the exact minimum and maximum, the counts, and a histogram
// that depends only on the multiset of values:
//
//  1. The bins have width w = 2^e and bin k covers [k*w, (k+1)*w). A value
//     x falls in bin floor(x/w). Since w is a power of two, x/w is exact in
//     float64 for every float32 x, so each value lands in the same bin
//     whatever came before it.
//  2. e is the smallest exponent, but at least -149, for which the bins from
//     floor(lo/w) to floor(hi/w) number at most Bins, where lo and hi are the
//     minimum and maximum seen so far. The number of bins covering a range
//     does not grow with e, so when a batch widens [lo, hi] the fitting e
//     can only grow, and the histogram reaches the e of the final [lo, hi]
//     whatever the order.
//  3. Growing e by one merges bins 2k and 2k+1 into bin k. The merge is
//     exact because floor(floor(y)/2) = floor(y/2): the merged counts equal
//     those that binning every value at the new width would give.
//
// So after any sequence of batches, the histogram equals the one built by
// binning all values at once at the final width. The counts are integers,
// and the computations after the last batch read the histogram in a fixed
// order, so their float64 results are bit-identical too. The histogram
// uses more than Bins/2 and at most Bins bins, except that a range
// narrower than Bins/2 bins of width 2^-149 (a constant tensor, for
// example) uses fewer.
//
// Bin indices are integer-valued float64s, not int64. So magnitudes up to
// the float32 maximum (about 3.4e38) and subnormals down to 2^-149 need no
// special case. The histogram type in histogram.go gives the bounds.
//
// -0 counts as +0, so the sign of a zero range end does not depend on
// which zero came first.
package calib
