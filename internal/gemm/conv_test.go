package gemm

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

// withShape returns s after applying edit to a copy, for table entries.
func withShape(s ConvShape, edit func(*ConvShape)) ConvShape {
	edit(&s)
	return s
}

// pathTestShapes covers every layout decision of the kernels. K is 1, odd,
// or not a multiple of 4 or 64. Output channel counts are not multiples of
// the block widths, and pixel counts not multiples of the tile height.
// Further shapes have strides, dilations, asymmetric padding, groups,
// depthwise channels and batches.
var pathTestShapes = []struct {
	name  string
	shape ConvShape
}{
	{"3x3 pad 1, 16 to 40", conv2D(7, 9, 16, 40, 3, 1)},
	{"1x1, K is 1", conv2D(3, 5, 1, 1, 1, 0)},
	{"1x1, K is 5", conv2D(4, 4, 5, 17, 1, 0)},
	{"1x1, K is 4", conv2D(2, 3, 4, 16, 1, 0)},
	{"3x3, 3 channels, K is 27", conv2D(9, 8, 3, 16, 3, 1)},
	{"3x3, K is 612", conv2D(6, 7, 68, 33, 3, 1)},
	{"1x1, K is 68", conv2D(5, 7, 68, 65, 1, 0)},
	{"3x3, 256 channels, K is 2304", conv2D(4, 5, 256, 70, 3, 1)},
	{"outC 1", conv2D(5, 5, 8, 1, 3, 1)},
	{"outC 7", conv2D(5, 5, 8, 7, 3, 1)},
	{"outC 15", conv2D(5, 5, 8, 15, 3, 0)},
	{"outC 48", conv2D(5, 5, 12, 48, 3, 1)},
	{"outC 63", conv2D(5, 5, 12, 63, 3, 1)},
	{"outC 64", conv2D(5, 5, 12, 64, 3, 1)},
	{"outC 130", conv2D(3, 4, 12, 130, 3, 1)},
	{"stride 2", withShape(conv2D(9, 11, 8, 24, 3, 1), func(s *ConvShape) { s.StrideH, s.StrideW = 2, 2 })},
	{"stride 2 by 1", withShape(conv2D(8, 7, 8, 24, 3, 1), func(s *ConvShape) { s.StrideH = 2 })},
	{"stride 3 without padding", withShape(conv2D(10, 10, 4, 8, 2, 0), func(s *ConvShape) { s.StrideH, s.StrideW = 3, 3 })},
	{"dilation 2", withShape(conv2D(9, 9, 8, 20, 3, 2), func(s *ConvShape) { s.DilationH, s.DilationW = 2, 2 })},
	{"dilation 2 by 3", withShape(conv2D(9, 10, 8, 20, 3, 1), func(s *ConvShape) { s.DilationH, s.DilationW = 2, 3 })},
	{"asymmetric padding", withShape(conv2D(6, 7, 8, 18, 3, 0), func(s *ConvShape) { s.PadLeft, s.PadBottom = 1, 2 })},
	{"asymmetric padding 2", withShape(conv2D(6, 7, 8, 18, 3, 0), func(s *ConvShape) { s.PadTop, s.PadRight = 2, 1 })},
	{"kernel wider than input", conv2D(3, 3, 8, 16, 5, 2)},
	// InC not a multiple of 4: the VNNI path widens the input (channel-padded conv).
	{"3 channels, stride 2", withShape(conv2D(9, 11, 3, 20, 3, 1), func(s *ConvShape) { s.StrideH, s.StrideW = 2, 2 })},
	{"3 channels, dilation 2 by 3", withShape(conv2D(9, 10, 3, 20, 3, 1), func(s *ConvShape) { s.DilationH, s.DilationW = 2, 3 })},
	{"1 channel, asymmetric padding", withShape(conv2D(7, 8, 1, 6, 5, 0), func(s *ConvShape) { s.PadTop, s.PadLeft, s.PadRight = 2, 1, 3 })},
	{"6 channels, batch 3", withShape(conv2D(6, 6, 6, 16, 5, 2), func(s *ConvShape) { s.Batch = 3 })},
	{"3 channels, 1x1 with padding", conv2D(4, 5, 3, 8, 1, 1)},
	{"3 channels, 1x1, batch 2", withShape(conv2D(4, 5, 3, 8, 1, 0), func(s *ConvShape) { s.Batch = 2 })},
	{"rectangular kernel", withShape(conv2D(7, 7, 8, 16, 1, 0), func(s *ConvShape) { s.KH, s.KW, s.PadTop, s.PadBottom = 3, 1, 1, 1 })},
	{"groups 2", withShape(conv2D(6, 6, 16, 32, 3, 1), func(s *ConvShape) { s.Groups = 2 })},
	{"groups 4 of 3 channels", withShape(conv2D(6, 6, 12, 8, 3, 1), func(s *ConvShape) { s.Groups = 4 })},
	{"groups 4 of 20 out channels", withShape(conv2D(5, 6, 16, 80, 3, 1), func(s *ConvShape) { s.Groups = 4 })},
	{"depthwise multiplier 2", withShape(conv2D(6, 6, 8, 16, 3, 1), func(s *ConvShape) { s.Groups = 8 })},
	{"depthwise 64", withShape(conv2D(7, 8, 64, 64, 3, 1), func(s *ConvShape) { s.Groups = 64 })},
	{"depthwise 16", withShape(conv2D(7, 8, 16, 16, 3, 1), func(s *ConvShape) { s.Groups = 16 })},
	{"depthwise 24", withShape(conv2D(7, 8, 24, 24, 3, 1), func(s *ConvShape) { s.Groups = 24 })},
	{"depthwise 70", withShape(conv2D(5, 6, 70, 70, 3, 1), func(s *ConvShape) { s.Groups = 70 })},
	{"depthwise 3", withShape(conv2D(5, 6, 3, 3, 3, 1), func(s *ConvShape) { s.Groups = 3 })},
	{"depthwise 130", withShape(conv2D(4, 5, 130, 130, 3, 1), func(s *ConvShape) { s.Groups = 130 })},
	{"depthwise stride 2", withShape(conv2D(9, 9, 32, 32, 3, 1), func(s *ConvShape) { s.Groups, s.StrideH, s.StrideW = 32, 2, 2 })},
	{"depthwise 5x5", withShape(conv2D(8, 8, 32, 32, 5, 2), func(s *ConvShape) { s.Groups = 32 })},
	{"depthwise dilation 2", withShape(conv2D(8, 8, 32, 32, 3, 2), func(s *ConvShape) { s.Groups, s.DilationH, s.DilationW = 32, 2, 2 })},
	{"depthwise asymmetric padding", withShape(conv2D(7, 7, 48, 48, 3, 0), func(s *ConvShape) { s.Groups, s.PadTop, s.PadRight = 48, 1, 2 })},
	{"depthwise 1x1 batch 2", withShape(conv2D(3, 3, 20, 20, 1, 0), func(s *ConvShape) { s.Groups, s.Batch = 20, 2 })},
	{"depthwise batch 3", withShape(conv2D(5, 4, 16, 16, 3, 1), func(s *ConvShape) { s.Groups, s.Batch = 16, 3 })},
	{"batch 3", withShape(conv2D(5, 4, 8, 24, 3, 1), func(s *ConvShape) { s.Batch = 3 })},
	{"1x1 batch 4", withShape(conv2D(3, 5, 20, 36, 1, 0), func(s *ConvShape) { s.Batch = 4 })},
	{"1x1 stride 2 batch 2", withShape(conv2D(6, 5, 8, 16, 1, 0), func(s *ConvShape) { s.Batch, s.StrideH, s.StrideW = 2, 2, 2 })},
}

func TestConvPathsMatchReference(t *testing.T) {
	for i, tc := range pathTestShapes {
		c := randomCase(tc.name, tc.shape, uint64(100+i), defaultOptions)
		checkPathsMatchReference(t, c, []int{1, 2, 3})
	}
}

// TestConvPoisonedScratch fills every scratch buffer with garbage before
// each use, so a kernel that reads padding it did not write, or a requantize
// that reads lanes past n, changes the output.
func TestConvPoisonedScratch(t *testing.T) {
	poisonScratch = true
	defer func() { poisonScratch = false }()
	for i, tc := range pathTestShapes {
		c := randomCase(tc.name, tc.shape, uint64(200+i), defaultOptions)
		checkPathsMatchReference(t, c, []int{1, 3})
	}
}

// TestConvLowWeightBits uses 4-bit weights in [-7, 7] with a depth of
// 72,000, which the headroom check admits only for so few bits:
// 72,000 * 255 * 7 + 2^20 < 2^31, but 72,000 * 255 * 127 > 2^31.
func TestConvLowWeightBits(t *testing.T) {
	opt := caseOptions{weightMax: 7, inZeroPoint: 0, biasMax: 1 << 20}
	s := conv2D(3, 3, 8000, 20, 3, 1)
	c := randomCase("4-bit weights, depth 72000", s, 7, opt)
	checkPathsMatchReference(t, c, []int{1, 2})

	c.w[0] = 127
	if _, err := NewConv(s, c.w, c.e); err == nil {
		t.Errorf("NewConv accepted an 8-bit weight at depth 72,000")
	}
}

// TestConvExtremeValues sets every input and weight to the ends of their
// ranges, for input zero points 0, 128 and 255. The biases push the folded
// start value Bias - InZeroPoint*sum(w) past the int32 range while the final
// accumulator stays inside it.
func TestConvExtremeValues(t *testing.T) {
	shapes := []ConvShape{
		conv2D(5, 7, 64, 64, 3, 1),
		conv2D(4, 5, 3, 17, 3, 1),
		withShape(conv2D(5, 6, 70, 70, 3, 1), func(s *ConvShape) { s.Groups = 70 }),
		conv2D(2, 3, 1, 1, 1, 0),
	}
	inputs := []struct {
		name string
		at   func(i int) uint8
	}{
		{"a=255", func(int) uint8 { return 255 }},
		{"a=0", func(int) uint8 { return 0 }},
		{"a alternates 0 and 255", func(i int) uint8 { return uint8(255 * (i % 2)) }},
	}
	weights := []struct {
		name string
		at   func(i int) int8
	}{
		{"w=127", func(int) int8 { return 127 }},
		{"w=-127", func(int) int8 { return -127 }},
		{"w=-128", func(int) int8 { return -128 }},
		{"w alternates 127 and -127", func(i int) int8 { return int8(127 - 254*(i%2)) }},
	}

	for si, s := range shapes {
		for _, zeroPoint := range []int32{0, 128, 255} {
			for _, input := range inputs {
				for _, weight := range weights {
					name := fmt.Sprintf("%s/zp=%d/%s/%s", shapeString(s), zeroPoint, input.name, weight.name)
					c := randomCase(name, s, uint64(si), caseOptions{weightMax: 127, inZeroPoint: zeroPoint})
					for i := range c.in {
						c.in[i] = input.at(i)
					}
					for i := range c.w {
						c.w[i] = weight.at(i)
					}
					setExtremeEpilogue(&c)
					checkPathsMatchReference(t, c, []int{2})
				}
			}
		}
	}
}

// setExtremeEpilogue gives each output channel a bias that uses all the
// headroom left by its weights, alternating in sign, and multipliers and
// shifts at the ends of their ranges.
func setExtremeEpilogue(c *convCase) {
	s := c.shape
	depth := s.depth()
	maxA := int64(max(c.e.InZeroPoint, 255-c.e.InZeroPoint))
	for oc := 0; oc < s.OutC; oc++ {
		maxW := int64(0)
		for _, v := range c.w[oc*depth : (oc+1)*depth] {
			maxW = max(maxW, abs64(int64(v)))
		}
		room := int64(math.MaxInt32) - int64(depth)*maxA*maxW
		bias := room
		if oc%2 == 1 {
			bias = -room
		}
		c.e.Bias[oc] = int32(bias)
		c.e.Mult[oc] = []int32{math.MaxInt32, 1 << 30, 0, 1<<30 + 12345}[oc%4]
		c.e.Shift[oc] = []int32{31, -31, 0, -8, 5}[oc%5]
	}
}

func TestNewConvErrors(t *testing.T) {
	s := conv2D(5, 5, 8, 4, 3, 1)
	w := make([]int8, s.weightLen())
	ok := Epilogue{Mult: make([]int32, 4), Shift: make([]int32, 4), ClampMax: 255}

	big := conv2D(300, 300, 8000, 1, 3, 1)
	bigW := make([]int8, big.weightLen())
	bigW[0] = 127
	bigE := Epilogue{Mult: []int32{0}, Shift: []int32{0}, ClampMax: 255}

	cases := []struct {
		name  string
		shape ConvShape
		w     []int8
		e     Epilogue
		want  string
	}{
		{"zero stride", func() ConvShape { x := s; x.StrideH = 0; return x }(), w, ok, "StrideH is 0"},
		{"negative padding", func() ConvShape { x := s; x.PadLeft = -1; return x }(), w, ok, "PadLeft is -1"},
		{"groups do not divide", func() ConvShape { x := s; x.Groups = 3; return x }(), w, ok, "Groups 3 does not divide"},
		{"kernel larger than input", conv2D(2, 2, 8, 4, 5, 0), make([]int8, 4*8*25), ok, "does not fit"},
		{"weight length", s, w[:10], ok, "got 10 weights, expected"},
		{"bias length", s, w, func() Epilogue { x := ok; x.Bias = make([]int32, 3); return x }(), "3 bias values"},
		{"multiplier range", s, w, func() Epilogue { x := ok; x.Mult = []int32{0, 5, 0, 0}; return x }(), "invalid multiplier 5 of output channel 1"},
		{"shift range", s, w, func() Epilogue { x := ok; x.Shift = []int32{0, 0, 32, 0}; return x }(), "invalid shift 32 of output channel 2"},
		{"zero point range", s, w, func() Epilogue { x := ok; x.InZeroPoint = 256; return x }(), "InZeroPoint 256"},
		{"clamp order", s, w, func() Epilogue { x := ok; x.ClampMin = 9; x.ClampMax = 8; return x }(), "ClampMin 9 is greater than ClampMax 8"},
		{"headroom", big, bigW, bigE, "depth 72000 * max|a-zp| 255 * max|w| 127 + |bias| 0 = 2331720000"},
	}
	for _, c := range cases {
		_, err := NewConv(c.shape, c.w, c.e)
		if err == nil {
			t.Errorf("%s: NewConv returned no error, expected one containing %q", c.name, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "gemm: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: NewConv error %q, expected the prefix \"gemm: \" and %q", c.name, err, c.want)
		}
	}
}

// TestConvNilBias checks that a nil Bias means a zero bias on every path.
func TestConvNilBias(t *testing.T) {
	c := randomCase("nil bias", conv2D(4, 5, 12, 20, 3, 1), 9, defaultOptions)
	for i := range c.e.Bias {
		c.e.Bias[i] = 0
	}
	want := make([]uint8, c.shape.outputLen())
	if err := ReferenceConv(c.shape, c.w, c.e, c.in, want); err != nil {
		t.Fatal(err)
	}
	c.e.Bias = nil
	for _, p := range testPaths(t) {
		conv, err := newConvPath(c.shape, c.w, c.e, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		got := make([]uint8, c.shape.outputLen())
		conv.Run(c.in, got, 1)
		if i := firstDiff(got, want); i >= 0 {
			t.Errorf("%s: output %d is %d with a nil bias, %d with a zero bias", p, i, got[i], want[i])
		}
	}
}

// TestConvConcurrentRuns runs one Conv from several goroutines at once, each
// asking for 2 threads, so that some find the worker pool busy and fall back
// to fresh goroutines. Every output must still equal the reference.
func TestConvConcurrentRuns(t *testing.T) {
	c := randomCase("concurrent", conv2D(12, 13, 16, 24, 3, 1), 21, defaultOptions)
	want := make([]uint8, c.shape.outputLen())
	if err := ReferenceConv(c.shape, c.w, c.e, c.in, want); err != nil {
		t.Fatal(err)
	}
	for _, p := range testPaths(t) {
		conv, err := newConvPath(c.shape, c.w, c.e, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var wg sync.WaitGroup
		outs := make([][]uint8, 4)
		for g := range outs {
			outs[g] = make([]uint8, c.shape.outputLen())
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					conv.Run(c.in, outs[g], 2)
				}
			}()
		}
		wg.Wait()
		for g, got := range outs {
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("%s: goroutine %d: output %d is %d, reference %d", p, g, i, got[i], want[i])
			}
		}
	}
}
