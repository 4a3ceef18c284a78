package infer

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// conv2D computes a grouped, strided, dilated, padded convolution through im2col and gonum's
// SGEMM. It runs one GEMM per sample and group, so every sample gets the same arithmetic
// whatever the batch size.
// x is [N, C, H, W]; w is [O, C/groups, KH, KW].
func conv2D(x, w, bias *tensor.Tensor, a graph.Attrs, threads int) *tensor.Tensor {
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	o, cg, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	g := a.Groups
	og := o / g
	oh := (h+a.Padding[0]+a.Padding[2]-a.Dilation[0]*(kh-1)-1)/a.Stride[0] + 1
	ow := (wd+a.Padding[1]+a.Padding[3]-a.Dilation[1]*(kw-1)-1)/a.Stride[1] + 1
	out := tensor.New(n, o, oh, ow)
	k := cg * kh * kw
	pixels := oh * ow

	parallel(n, threads, func(s int) {
		cols := make([]float32, k*pixels)
		for gi := range g {
			im2col(x.Data[(s*c+gi*cg)*h*wd:], cg, h, wd, kh, kw, a, oh, ow, cols)
			wm := blas32.General{Rows: og, Cols: k, Stride: k, Data: w.Data[gi*og*k : (gi+1)*og*k]}
			cm := blas32.General{Rows: k, Cols: pixels, Stride: pixels, Data: cols}
			om := blas32.General{Rows: og, Cols: pixels, Stride: pixels, Data: out.Data[(s*o+gi*og)*pixels : (s*o+(gi+1)*og)*pixels]}
			blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, wm, cm, 0, om)
		}
		if bias != nil {
			for oc := range o {
				row := out.Data[(s*o+oc)*pixels : (s*o+oc+1)*pixels]
				for i := range row {
					row[i] += bias.Data[oc]
				}
			}
		}
	})
	return out
}

// im2col writes the [C*KH*KW, OH*OW] patch matrix of one sample; padded taps are 0.
func im2col(x []float32, c, h, w, kh, kw int, a graph.Attrs, oh, ow int, cols []float32) {
	row := 0
	for ci := range c {
		for ky := range kh {
			for kx := range kw {
				dst := cols[row*oh*ow : (row+1)*oh*ow]
				for oy := range oh {
					iy := oy*a.Stride[0] - a.Padding[0] + ky*a.Dilation[0]
					for ox := range ow {
						ix := ox*a.Stride[1] - a.Padding[1] + kx*a.Dilation[1]
						v := float32(0)
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							v = x[(ci*h+iy)*w+ix]
						}
						dst[oy*ow+ox] = v
					}
				}
				row++
			}
		}
	}
}

// linear computes x [N, K] times w [O, K] transposed plus bias, one GEMM row per sample.
func linear(x, w, bias *tensor.Tensor, threads int) *tensor.Tensor {
	n, k := x.Shape[0], x.Shape[1]
	o := w.Shape[0]
	out := tensor.New(n, o)
	wm := blas32.General{Rows: o, Cols: k, Stride: k, Data: w.Data}
	parallel(n, threads, func(s int) {
		xm := blas32.General{Rows: 1, Cols: k, Stride: k, Data: x.Data[s*k : (s+1)*k]}
		om := blas32.General{Rows: 1, Cols: o, Stride: o, Data: out.Data[s*o : (s+1)*o]}
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, xm, wm, 0, om)
		if bias != nil {
			for i := range o {
				om.Data[i] += bias.Data[i]
			}
		}
	})
	return out
}

// batchNorm computes (x - mean) / sqrt(var + eps) * gamma + beta per channel in float64, then
// rounds to float32. gamma and beta may be nil (1 and 0).
func batchNorm(x, mean, variance, gamma, beta *tensor.Tensor, eps float64) *tensor.Tensor {
	out := tensor.New(x.Shape...)
	c := x.Shape[1]
	inner := tensor.Size(x.Shape[2:])
	scale := make([]float64, c)
	shift := make([]float64, c)
	for ch := range c {
		scale[ch] = 1 / math.Sqrt(float64(variance.Data[ch])+eps)
		if gamma != nil {
			scale[ch] *= float64(gamma.Data[ch])
		}
		if beta != nil {
			shift[ch] = float64(beta.Data[ch])
		}
	}
	for i := range x.Data {
		ch := (i / inner) % c
		out.Data[i] = float32((float64(x.Data[i])-float64(mean.Data[ch]))*scale[ch] + shift[ch])
	}
	return out
}

func clamp(x *tensor.Tensor, lo, hi float64) *tensor.Tensor {
	out := x.Clone()
	clampInPlace(out.Data, lo, hi)
	return out
}

func clampInPlace(v []float32, lo, hi float64) {
	l, h := float32(lo), float32(hi)
	if math.IsInf(hi, 1) {
		h = float32(math.Inf(1))
	}
	for i, x := range v {
		if x < l {
			v[i] = l
		} else if x > h {
			v[i] = h
		}
	}
}

// pool2D computes every output cell of a pooling over [N, C, H, W] with reduce. reduce receives
// the in-bounds values of the window and the window's full size.
func pool2D(x *tensor.Tensor, a graph.Attrs, reduce func(vals []float32, window int) float32) *tensor.Tensor {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	kh, kw := a.Kernel[0], a.Kernel[1]
	oh := (h+a.Padding[0]+a.Padding[2]-kh)/a.Stride[0] + 1
	ow := (w+a.Padding[1]+a.Padding[3]-kw)/a.Stride[1] + 1
	out := tensor.New(n, c, oh, ow)
	vals := make([]float32, 0, kh*kw)
	for p := range n * c {
		plane := x.Data[p*h*w : (p+1)*h*w]
		for oy := range oh {
			for ox := range ow {
				vals = vals[:0]
				for ky := range kh {
					iy := oy*a.Stride[0] - a.Padding[0] + ky
					for kx := range kw {
						ix := ox*a.Stride[1] - a.Padding[1] + kx
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							vals = append(vals, plane[iy*w+ix])
						}
					}
				}
				out.Data[(p*oh+oy)*ow+ox] = reduce(vals, kh*kw)
			}
		}
	}
	return out
}

// maxPool ignores padded cells, as PyTorch does.
func maxPool(x *tensor.Tensor, a graph.Attrs) *tensor.Tensor {
	return pool2D(x, a, func(vals []float32, _ int) float32 {
		m := float32(math.Inf(-1))
		for _, v := range vals {
			m = max(m, v)
		}
		return m
	})
}

// avgPool sums in float64 and divides by the full window (count_include_pad) or by the
// in-bounds cells.
func avgPool(x *tensor.Tensor, a graph.Attrs) *tensor.Tensor {
	return pool2D(x, a, func(vals []float32, window int) float32 {
		sum := 0.0
		for _, v := range vals {
			sum += float64(v)
		}
		if !a.CountIncludePad {
			window = len(vals)
		}
		return float32(sum / float64(window))
	})
}

func globalAvgPool(x *tensor.Tensor) *tensor.Tensor {
	n, c := x.Shape[0], x.Shape[1]
	inner := tensor.Size(x.Shape[2:])
	out := tensor.New(n, c, 1, 1)
	for p := range n * c {
		sum := 0.0
		for _, v := range x.Data[p*inner : (p+1)*inner] {
			sum += float64(v)
		}
		out.Data[p] = float32(sum / float64(inner))
	}
	return out
}

func add(a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.New(a.Shape...)
	for i := range out.Data {
		out.Data[i] = a.Data[i] + b.Data[i]
	}
	return out
}

// concat joins [N, Ci, ...] tensors along the channel axis.
func concat(in []*tensor.Tensor) *tensor.Tensor {
	shape := append([]int{}, in[0].Shape...)
	shape[1] = 0
	for _, t := range in {
		shape[1] += t.Shape[1]
	}
	out := tensor.New(shape...)
	n := shape[0]
	inner := tensor.Size(shape[2:])
	pos := 0
	for s := range n {
		for _, t := range in {
			chunk := t.Shape[1] * inner
			copy(out.Data[pos:pos+chunk], t.Data[s*chunk:(s+1)*chunk])
			pos += chunk
		}
	}
	return out
}
