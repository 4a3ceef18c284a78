package eval

import (
	"fmt"
	"math"
)

// TensorStats accumulates the error of a quantized tensor y against its float reference x,
// element by element in float64. Feeding the same samples in the same order gives the same
// bits whatever the batch size, because every element is added in the same sequence.
type TensorStats struct {
	// Elements is the number of finite element pairs added.
	Elements int64
	// NonFinite counts element pairs in which x or y is NaN or infinite. They are left out of
	// every sum, so the metrics stay finite.
	NonFinite int64

	signal   float64 // sum x^2
	noise    float64 // sum (x - y)^2
	dot      float64 // sum x*y
	quantSq  float64 // sum y^2
	maxAbsEr float64 // max |x - y|
}

// Add accumulates the element pairs of ref (float) and got (dequantized integers), which must
// have the same length.
func (s *TensorStats) Add(ref, got []float32) error {
	if len(ref) != len(got) {
		return fmt.Errorf("eval: %d float values but %d quantized values", len(ref), len(got))
	}
	for i := range ref {
		x, y := float64(ref[i]), float64(got[i])
		if !isFinite(x) || !isFinite(y) {
			s.NonFinite++
			continue
		}
		d := x - y
		s.signal += x * x
		s.noise += d * d
		s.dot += x * y
		s.quantSq += y * y
		s.maxAbsEr = max(s.maxAbsEr, math.Abs(d))
		s.Elements++
	}
	return nil
}

// SQNR returns the signal-to-quantization-noise ratio 10 log10(sum x^2 / sum (x - y)^2) in dB.
// It is +Inf when the noise is 0 (y equals x, including an all-zero x) and -Inf when x is all
// zero but y is not. It is never NaN.
func (s *TensorStats) SQNR() float64 {
	switch {
	case s.noise == 0:
		return math.Inf(1)
	case s.signal == 0:
		return math.Inf(-1)
	}
	return 10 * math.Log10(s.signal/s.noise)
}

// Cosine returns the cosine similarity sum x*y / (|x| |y|), in [-1, 1]. It is 1 when both
// tensors are all zero and 0 when only one of them is.
func (s *TensorStats) Cosine() float64 {
	switch {
	case s.signal == 0 && s.quantSq == 0:
		return 1
	case s.signal == 0 || s.quantSq == 0:
		return 0
	}
	c := s.dot / math.Sqrt(s.signal*s.quantSq)
	return min(max(c, -1), 1)
}

// MaxAbsErr returns the largest |x - y| seen, in the tensor's real units.
func (s *TensorStats) MaxAbsErr() float64 { return s.maxAbsEr }

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Classification accumulates the accuracy of the float and the quantized model on the same
// samples, and how often their predicted classes agree.
type Classification struct {
	// Classes is the number of scores per sample.
	Classes int
	// Samples is the number of samples added.
	Samples int
	// Labeled reports whether labels were given; without them only agreement is counted.
	Labeled bool

	FloatTop1, Int8Top1 int // samples whose label is the top class
	FloatTop5, Int8Top5 int // samples whose label is among the top five classes
	Agree               int // samples whose two top classes are the same
}

// NewClassification returns an accumulator for classes scores per sample. labeled is true when
// Add receives labels.
func NewClassification(classes int, labeled bool) *Classification {
	return &Classification{Classes: classes, Labeled: labeled}
}

// Add accumulates a batch: floatScores and int8Scores hold Classes scores per sample, and
// labels one class index per sample when the accumulator is labeled. A label outside
// [0, Classes) is an error.
func (c *Classification) Add(floatScores, int8Scores []float32, labels []int64) error {
	if c.Classes < 1 || len(floatScores)%c.Classes != 0 || len(int8Scores) != len(floatScores) {
		return fmt.Errorf("eval: %d float and %d quantized scores do not split into samples of %d classes",
			len(floatScores), len(int8Scores), c.Classes)
	}
	samples := len(floatScores) / c.Classes
	if c.Labeled && len(labels) != samples {
		return fmt.Errorf("eval: %d labels for %d samples", len(labels), samples)
	}

	for s := range samples {
		f := floatScores[s*c.Classes : (s+1)*c.Classes]
		q := int8Scores[s*c.Classes : (s+1)*c.Classes]
		if Argmax(f) == Argmax(q) {
			c.Agree++
		}
		if c.Labeled {
			label := labels[s]
			if label < 0 || label >= int64(c.Classes) {
				return fmt.Errorf("eval: label %d of sample %d is not a class of the model's %d outputs", label, c.Samples+s, c.Classes)
			}
			fr, qr := Rank(f, int(label)), Rank(q, int(label))
			c.FloatTop1 += boolInt(fr < 1)
			c.Int8Top1 += boolInt(qr < 1)
			c.FloatTop5 += boolInt(fr < 5)
			c.Int8Top5 += boolInt(qr < 5)
		}
	}
	c.Samples += samples
	return nil
}

// HasTop5 reports whether top-5 accuracy is meaningful: more than five classes.
func (c *Classification) HasTop5() bool { return c.Classes > 5 }

// Percent returns 100 * count / Samples, computed as (100 * count) / Samples so that whole
// percentages come out exact.
func (c *Classification) Percent(count int) float64 {
	if c.Samples == 0 {
		return 0
	}
	return float64(100*count) / float64(c.Samples)
}

// DropPP returns float top-1 minus int8 top-1 in percentage points, from the integer counts.
func (c *Classification) DropPP() float64 {
	return c.Percent(c.FloatTop1 - c.Int8Top1)
}

// Argmax returns the index of the largest score. Ties go to the lowest index, as numpy.argmax
// documents, and NaN scores are never the largest.
func Argmax(scores []float32) int {
	best := 0
	for i, v := range scores {
		if v > scores[best] || (scores[best] != scores[best] && v == v) {
			best = i
		}
	}
	return best
}

// Rank returns the position of class label when the scores are sorted in descending order
// with ties broken by the lower index: the count of scores above scores[label], plus the count
// of equal scores at lower indices. Rank < k means that label is in the top k, consistent with
// Argmax for k = 1. A NaN score of label ranks last.
func Rank(scores []float32, label int) int {
	v := scores[label]
	if v != v {
		return len(scores)
	}
	rank := 0
	for i, x := range scores {
		if x > v || (x == v && i < label) {
			rank++
		}
	}
	return rank
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
