package gemm

import (
	"math/rand/v2"
	"testing"
)

// FuzzConvPaths builds a small conv from the fuzzer's bytes and compares
// every available path with the reference, on outputs and accumulators.
func FuzzConvPaths(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(3), uint8(8), uint8(16), uint8(3), uint8(0), uint8(0), uint8(1))
	f.Add(uint64(2), uint8(5), uint8(4), uint8(3), uint8(70), uint8(1), uint8(1), uint8(0), uint8(2))
	f.Add(uint64(3), uint8(7), uint8(7), uint8(64), uint8(64), uint8(3), uint8(0), uint8(64), uint8(1))
	f.Add(uint64(4), uint8(6), uint8(9), uint8(12), uint8(8), uint8(5), uint8(2), uint8(4), uint8(3))
	f.Fuzz(func(t *testing.T, seed uint64, h, w, inC, outC, k, strideDilation, groups, pad uint8) {
		s := ConvShape{
			Batch: 1 + int(seed%2), InH: 1 + int(h%9), InW: 1 + int(w%9),
			InC: 1 + int(inC%80), OutC: 1 + int(outC%80),
			KH: 1 + int(k%5), KW: 1 + int((k/5)%4),
			StrideH: 1 + int(strideDilation%3), StrideW: 1 + int((strideDilation/3)%2),
			DilationH: 1 + int((strideDilation/6)%2), DilationW: 1 + int((strideDilation/12)%3),
			PadTop: int(pad % 3), PadLeft: int((pad / 3) % 3), PadBottom: int((pad / 9) % 3), PadRight: int((pad / 27) % 3),
			Groups: 1,
		}
		// Use groups when it divides both channel counts, and a depthwise
		// conv when it is a multiple of 16.
		if g := int(groups); g > 1 {
			if g%16 == 0 {
				s.OutC = s.InC
				s.Groups = s.InC
			} else if s.InC%g == 0 && s.OutC%g == 0 {
				s.Groups = g
			}
		}
		if s.Validate() != nil {
			t.Skip()
		}

		rng := rand.New(rand.NewPCG(seed, 1))
		opt := caseOptions{weightMax: 1 + rng.IntN(127), inZeroPoint: -1, biasMax: int32(rng.IntN(100000))}
		c := randomCase("fuzz "+shapeString(s), s, seed, opt)
		checkPathsMatchReference(t, c, []int{1, 2})
	})
}
