package eval

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

func TestTensorStatsKnownValues(t *testing.T) {
	var s TensorStats
	if err := s.Add([]float32{1, 2, 3}, []float32{1, 2, 2}); err != nil {
		t.Fatal(err)
	}
	// signal 1 + 4 + 9 = 14, noise 1, dot 1 + 4 + 6 = 11, |y|^2 = 9.
	if got, want := s.SQNR(), 10*math.Log10(14); got != want {
		t.Errorf("SQNR %v, want %v", got, want)
	}
	if got, want := s.Cosine(), 11/(math.Sqrt(14)*3); math.Abs(got-want) > 1e-15 {
		t.Errorf("cosine %v, want %v", got, want)
	}
	if got := s.MaxAbsErr(); got != 1 {
		t.Errorf("max abs err %v, want 1", got)
	}
	if s.Elements != 3 {
		t.Errorf("elements %d, want 3", s.Elements)
	}
}

func TestTensorStatsInfiniteCases(t *testing.T) {
	cases := []struct {
		name       string
		ref, got   []float32
		wantSQNR   float64
		wantCosine float64
	}{
		{"exact", []float32{1, -2}, []float32{1, -2}, math.Inf(1), 1},
		{"all zero", []float32{0, 0}, []float32{0, 0}, math.Inf(1), 1},
		{"zero signal", []float32{0, 0}, []float32{0.5, 0}, math.Inf(-1), 0},
		{"zero quantized", []float32{1, 0}, []float32{0, 0}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s TensorStats
			if err := s.Add(tc.ref, tc.got); err != nil {
				t.Fatal(err)
			}
			if got := s.SQNR(); got != tc.wantSQNR {
				t.Errorf("SQNR %v, want %v", got, tc.wantSQNR)
			}
			if got := s.Cosine(); got != tc.wantCosine {
				t.Errorf("cosine %v, want %v", got, tc.wantCosine)
			}

			r := newLayerReport("t", &s)
			raw, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("the report does not encode as JSON: %v", err)
			}
			if math.IsInf(tc.wantSQNR, 0) && r.SQNRdB != nil {
				t.Errorf("infinite SQNR reported as %v, want null; JSON %s", *r.SQNRdB, raw)
			}
		})
	}
}

func TestTensorStatsSkipsNonFinite(t *testing.T) {
	var s TensorStats
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	if err := s.Add([]float32{1, nan, 2, inf}, []float32{1, 0, 2.5, 3}); err != nil {
		t.Fatal(err)
	}
	if s.NonFinite != 2 || s.Elements != 2 {
		t.Errorf("non-finite %d and elements %d, want 2 and 2", s.NonFinite, s.Elements)
	}
	if db := s.SQNR(); math.IsNaN(db) || math.IsInf(db, 0) {
		t.Errorf("SQNR %v, want a finite value", db)
	}
}

func TestTensorStatsIndependentOfBatching(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := make([]float32, 1000)
	got := make([]float32, 1000)
	for i := range ref {
		ref[i] = rng.Float32()*4 - 2
		got[i] = ref[i] + (rng.Float32()-0.5)*0.01
	}
	var whole TensorStats
	if err := whole.Add(ref, got); err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 7, 64} {
		var parts TensorStats
		for start := 0; start < len(ref); start += chunk {
			end := min(start+chunk, len(ref))
			if err := parts.Add(ref[start:end], got[start:end]); err != nil {
				t.Fatal(err)
			}
		}
		if parts != whole {
			t.Errorf("chunks of %d: stats %+v differ from one batch %+v", chunk, parts, whole)
		}
	}
}

func TestTensorStatsRejectsLengthMismatch(t *testing.T) {
	var s TensorStats
	if err := s.Add([]float32{1, 2}, []float32{1}); err == nil {
		t.Error("Add accepted slices of different lengths")
	}
}

func TestArgmaxAndRankBreakTiesLow(t *testing.T) {
	scores := []float32{1, 3, 3, 0, 2, 3}
	if got := Argmax(scores); got != 1 {
		t.Errorf("Argmax %d, want 1 (first of the tied maxima)", got)
	}
	wantRanks := []int{4, 0, 1, 5, 3, 2}
	for label, want := range wantRanks {
		if got := Rank(scores, label); got != want {
			t.Errorf("Rank of class %d is %d, want %d", label, got, want)
		}
	}
	nan := float32(math.NaN())
	if got := Argmax([]float32{nan, 1, 2}); got != 2 {
		t.Errorf("Argmax with a leading NaN is %d, want 2", got)
	}
	if got := Rank([]float32{nan, 1}, 0); got != 2 {
		t.Errorf("Rank of a NaN score is %d, want 2 (last)", got)
	}
}

func TestClassificationCounts(t *testing.T) {
	c := NewClassification(6, true)
	floatScores := []float32{
		9, 1, 2, 3, 4, 5, // top class 0
		0, 1, 2, 3, 4, 5, // top class 5
		5, 4, 3, 2, 1, 0, // top class 0
	}
	int8Scores := []float32{
		9, 1, 2, 3, 4, 5, // top class 0
		0, 1, 2, 3, 6, 5, // top class 4
		5, 0, 4, 3, 2, 1, // top class 0, class 1 last
	}
	labels := []int64{0, 5, 1}
	if err := c.Add(floatScores, int8Scores, labels); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"samples", c.Samples, 3},
		{"agree", c.Agree, 2},
		{"float top-1", c.FloatTop1, 2},
		{"int8 top-1", c.Int8Top1, 1},
		{"float top-5", c.FloatTop5, 3}, // label 1 ranks 1 in float
		{"int8 top-5", c.Int8Top5, 2},   // label 5 ranks 1 in int8, label 1 ranks 5
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: %d, want %d", ch.name, ch.got, ch.want)
		}
	}
	if got := c.DropPP(); got != float64(100)/3 {
		t.Errorf("drop %v pp, want %v", got, float64(100)/3)
	}
	if !c.HasTop5() {
		t.Error("six classes should have top-5")
	}
	if NewClassification(5, true).HasTop5() {
		t.Error("five classes should not have top-5")
	}
}

func TestClassificationPercentIsExact(t *testing.T) {
	c := &Classification{Samples: 2000}
	if got := c.Percent(1976); got != 98.8 {
		t.Errorf("1976 of 2000 is %v%%, want 98.8", got)
	}
}

func TestClassificationRejectsBadLabel(t *testing.T) {
	c := NewClassification(3, true)
	if err := c.Add([]float32{1, 2, 3}, []float32{1, 2, 3}, []int64{3}); err == nil {
		t.Error("Add accepted label 3 for 3 classes")
	}
	if err := c.Add([]float32{1, 2, 3}, []float32{1, 2, 3}, []int64{}); err == nil {
		t.Error("Add accepted a batch without its label")
	}
}
