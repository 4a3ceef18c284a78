package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/internal/dataset"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// directConv2D is the textbook definition of a grouped, strided, dilated, padded convolution,
// accumulated in float64: the reference the im2col path is checked against.
func directConv2D(x, w, bias *tensor.Tensor, a graph.Attrs) *tensor.Tensor {
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	o, cg, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	og := o / a.Groups
	oh := (h+a.Padding[0]+a.Padding[2]-a.Dilation[0]*(kh-1)-1)/a.Stride[0] + 1
	ow := (wd+a.Padding[1]+a.Padding[3]-a.Dilation[1]*(kw-1)-1)/a.Stride[1] + 1
	out := tensor.New(n, o, oh, ow)
	for s := range n {
		for oc := range o {
			g := oc / og
			for oy := range oh {
				for ox := range ow {
					sum := 0.0
					if bias != nil {
						sum = float64(bias.Data[oc])
					}
					for ci := range cg {
						for ky := range kh {
							for kx := range kw {
								iy := oy*a.Stride[0] - a.Padding[0] + ky*a.Dilation[0]
								ix := ox*a.Stride[1] - a.Padding[1] + kx*a.Dilation[1]
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								xv := x.Data[((s*c+g*cg+ci)*h+iy)*wd+ix]
								wv := w.Data[((oc*cg+ci)*kh+ky)*kw+kx]
								sum += float64(xv) * float64(wv)
							}
						}
					}
					out.Data[((s*o+oc)*oh+oy)*ow+ox] = float32(sum)
				}
			}
		}
	}
	return out
}

func TestConv2DMatchesDirect(t *testing.T) {
	cases := []struct {
		name                  string
		n, c, h, w, o, kh, kw int
		attrs                 graph.Attrs
	}{
		{"3x3 pad 1", 2, 3, 8, 8, 4, 3, 3, graph.Attrs{Stride: [2]int{1, 1}, Padding: [4]int{1, 1, 1, 1}, Dilation: [2]int{1, 1}, Groups: 1}},
		{"strided", 1, 4, 9, 7, 6, 3, 3, graph.Attrs{Stride: [2]int{2, 3}, Padding: [4]int{1, 0, 1, 2}, Dilation: [2]int{1, 1}, Groups: 1}},
		{"dilated", 1, 2, 10, 10, 3, 3, 3, graph.Attrs{Stride: [2]int{1, 1}, Padding: [4]int{2, 2, 2, 2}, Dilation: [2]int{2, 2}, Groups: 1}},
		{"grouped", 2, 6, 6, 6, 4, 3, 3, graph.Attrs{Stride: [2]int{1, 1}, Padding: [4]int{1, 1, 1, 1}, Dilation: [2]int{1, 1}, Groups: 2}},
		{"depthwise", 1, 5, 7, 7, 5, 3, 3, graph.Attrs{Stride: [2]int{2, 2}, Padding: [4]int{1, 1, 1, 1}, Dilation: [2]int{1, 1}, Groups: 5}},
		{"asymmetric padding", 1, 2, 5, 6, 3, 2, 3, graph.Attrs{Stride: [2]int{1, 1}, Padding: [4]int{0, 1, 1, 2}, Dilation: [2]int{1, 1}, Groups: 1}},
		{"1x1", 3, 8, 4, 4, 2, 1, 1, graph.Attrs{Stride: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := testutil.Random(rng, -1, 1, c.n, c.c, c.h, c.w)
			w := testutil.Random(rng, -1, 1, c.o, c.c/c.attrs.Groups, c.kh, c.kw)
			b := testutil.Random(rng, -1, 1, c.o)
			got := conv2D(x, w, b, c.attrs, 2)
			want := directConv2D(x, w, b, c.attrs)
			if !tensor.EqualShape(got.Shape, want.Shape) {
				t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
			}
			// K = c/groups*kh*kw <= 72 products of values in [-1, 1]: float32 accumulation
			// error stays far below 1e-5.
			if d := testutil.MaxAbsDiff(t, got.Data, want.Data); d > 1e-5 {
				t.Errorf("max |im2col - direct| = %g, want <= 1e-5", d)
			}
		})
	}
}

func TestPooling(t *testing.T) {
	x := &tensor.Tensor{Shape: []int{1, 1, 3, 3}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}}
	pad := graph.Attrs{Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}, Padding: [4]int{1, 1, 1, 1}, CountIncludePad: true}
	cases := []struct {
		name string
		got  *tensor.Tensor
		want []float32
	}{
		{"max 2x2 stride 1", maxPool(x, graph.Attrs{Kernel: [2]int{2, 2}, Stride: [2]int{1, 1}}), []float32{5, 6, 8, 9}},
		{"max padded ignores padding", maxPool(&tensor.Tensor{Shape: x.Shape, Data: []float32{-1, -2, -3, -4, -5, -6, -7, -8, -9}}, pad), []float32{-1, -2, -3, -4, -5, -6, -7, -8, -9}[:4]},
		{"avg counts padding", avgPool(x, pad), []float32{0.25, (2 + 3) / 4.0, (4 + 7) / 4.0, (5 + 6 + 8 + 9) / 4.0}},
		{"avg excludes padding", avgPool(x, graph.Attrs{Kernel: pad.Kernel, Stride: pad.Stride, Padding: pad.Padding}), []float32{1, 2.5, 5.5, 7}},
		{"global", globalAvgPool(x), []float32{5}},
	}
	cases[1].want = []float32{-1, -2, -4, -5}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.want {
				if c.got.Data[i] != c.want[i] {
					t.Errorf("output %d = %v, want %v", i, c.got.Data[i], c.want[i])
				}
			}
		})
	}
}

func loadLeNet(t *testing.T) (*graph.Model, string) {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist")
	m, err := graph.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func TestLeNetMatchesPyTorch(t *testing.T) {
	m, dir := loadLeNet(t)
	data, err := dataset.Open(m, filepath.Join(dir, "test_x.npy"))
	if err != nil {
		t.Fatal(err)
	}
	expected, err := format.ReadNPY(filepath.Join(dir, "expected_logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := expected.Float32()
	n := expected.Shape[0]

	batch, err := data.Batch(0, n)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Run(m, batch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := out[m.Outputs[0]]
	if d := testutil.MaxAbsDiff(t, got.Data, want); d > 1e-4 {
		t.Errorf("max |qtool - PyTorch| logit = %g over %d images, want <= 1e-4", d, n)
	}
}

func TestLeNetAccuracy(t *testing.T) {
	m, dir := loadLeNet(t)
	data, err := dataset.Open(m, filepath.Join(dir, "test_x.npy"))
	if err != nil {
		t.Fatal(err)
	}
	labels, err := dataset.Labels(filepath.Join(dir, "test_y.npy"), data.Len())
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for start := 0; start < data.Len(); start += 256 {
		count := min(256, data.Len()-start)
		batch, _ := data.Batch(start, count)
		out, err := Run(m, batch, Options{})
		if err != nil {
			t.Fatal(err)
		}
		logits := out[m.Outputs[0]]
		classes := logits.Shape[1]
		for i := range count {
			if argmax(logits.Data[i*classes:(i+1)*classes]) == int(labels[start+i]) {
				correct++
			}
		}
	}
	acc := 100 * float64(correct) / float64(data.Len())
	t.Logf("float top-1 on %d test images: %.2f%%", data.Len(), acc)
	if acc < 97 {
		t.Errorf("float top-1 = %.2f%%, want >= 97%%", acc)
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func TestBatchSizeDoesNotChangeResults(t *testing.T) {
	m, dir := loadLeNet(t)
	data, _ := dataset.Open(m, filepath.Join(dir, "calib.npy"))
	all, _ := data.Batch(0, 21)
	whole, err := Run(m, all, Options{KeepAll: true, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, bs := range []int{1, 7} {
		for start := 0; start < 21; start += bs {
			part, _ := data.Batch(start, bs)
			out, err := Run(m, part, Options{KeepAll: true, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			for name, tt := range out {
				per := tensor.Size(tt.Shape[1:])
				ref := whole[name].Data[start*per : (start+bs)*per]
				for i := range tt.Data {
					if math.Float32bits(tt.Data[i]) != math.Float32bits(ref[i]) {
						t.Fatalf("batch %d, tensor %q, element %d: %v != %v (batch of 21)", bs, name, start*per+i, tt.Data[i], ref[i])
					}
				}
			}
		}
	}
}

func TestSyntheticModelsMatchPyTorch(t *testing.T) {
	root := filepath.Join(testutil.RepoRoot(t), "testdata", "synthetic")
	for _, name := range []string{"dwconv-bn-relu6", "residual-bn-noaffine", "concat-pool-bn1d"} {
		t.Run(name, func(t *testing.T) {
			m, err := graph.Load(filepath.Join(root, name, "model.json"))
			if err != nil {
				t.Fatal(err)
			}
			data, err := dataset.Open(m, filepath.Join(root, name, "input.npy"))
			if err != nil {
				t.Fatal(err)
			}
			batch, _ := data.Batch(0, data.Len())
			out, err := Run(m, batch, Options{})
			if err != nil {
				t.Fatal(err)
			}
			expected, err := format.ReadNPY(filepath.Join(root, name, "expected.npy"))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := expected.Float32()
			if d := testutil.MaxAbsDiff(t, out[m.Outputs[0]].Data, want); d > 1e-4 {
				t.Errorf("max |qtool - PyTorch| = %g, want <= 1e-4", d)
			}
		})
	}
}

func BenchmarkLeNetFloat(b *testing.B) {
	dir := filepath.Join(testutil.RepoRoot(b), "testdata", "lenet-mnist")
	m, err := graph.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		b.Fatal(err)
	}
	data, _ := dataset.Open(m, filepath.Join(dir, "test_x.npy"))
	for _, bs := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", bs), func(b *testing.B) {
			batch, _ := data.Batch(0, bs)
			for b.Loop() {
				if _, err := Run(m, batch, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bs), "ns/image")
		})
	}
}
