// Package eval compares a float model with its quantized form: classification accuracy,
// agreement of the predicted classes, and the error of each quantized tensor against the float
// tensor of the same name.
//
// # Metrics
//
//   - top-1 and top-5 accuracy in percent; top-5 only for more than five classes. A sample's
//     classes are ranked by score, ties going to the lower class index as in numpy.argmax.
//   - drop in percentage points: float top-1 minus int8 top-1, from the integer counts.
//   - agreement: the percentage of samples whose top class is the same in both models.
//   - SQNR in dB: 10 log10(sum x^2 / sum (x - x_q)^2), with x the float tensor and x_q the
//     dequantized integers. It is +Inf when x_q equals x and -Inf when x is all zero but x_q is
//     not. The JSON report writes both as null, and the SQNR is never NaN.
//   - cosine similarity sum x x_q / (|x| |x_q|), and the maximum absolute error in real units.
//
// Every sum is a float64 accumulated element by element in sample order, so the report is the
// same for any batch size and thread count. Only the timing fields vary between runs.
package eval
