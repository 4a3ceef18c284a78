package calib

import "testing"

// BenchmarkObserve measures Observe on batches of 64*56*56 values, the size
// of a ResNet-18 layer1 activation for one 224x224 image, and reports
// values/s.
func BenchmarkObserve(b *testing.B) {
	const batchSize = 64 * 56 * 56
	values := gaussianValues(newRand(13), batchSize)

	for _, s := range allSettings() {
		b.Run(s.String(), func(b *testing.B) {
			o, err := NewObserver("conv1", s)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				o.Observe(values)
			}
			b.ReportMetric(float64(batchSize)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
		})
	}
}

// BenchmarkRange measures the compute step after 1M Gaussian values.
func BenchmarkRange(b *testing.B) {
	values := gaussianValues(newRand(14), 1<<20)

	for _, s := range allSettings() {
		b.Run(s.String(), func(b *testing.B) {
			o, err := NewObserver("conv1", s)
			if err != nil {
				b.Fatal(err)
			}
			o.Observe(values)
			b.ResetTimer()
			for b.Loop() {
				if _, err := o.Range(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
