package infer

import (
	"math"
	"sync"

	"github.com/qtool-dev/qtool/internal/gemm"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// conv2D computes a grouped, strided, dilated, padded convolution through im2col and
// gemm.SGEMM. Each output starts from its bias and adds one fused multiply-add per
// kernel tap and input channel, in order, so its bits do not depend on the batch size,
// the thread count or the CPU's kernel path.
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
	// A 1x1 conv with stride 1 and no padding reads its input as the patch matrix.
	direct := kh == 1 && kw == 1 && a.Stride == [2]int{1, 1} && a.Padding == [4]int{}

	parallel(n, threads, func(s int) {
		var cols []float32
		if !direct {
			buf := colsPool.Get().(*[]float32)
			defer colsPool.Put(buf)
			if cap(*buf) < k*pixels {
				*buf = make([]float32, k*pixels)
			}
			cols = (*buf)[:k*pixels]
		}
		if bias != nil {
			for oc := range o {
				row := out.Data[(s*o+oc)*pixels : (s*o+oc+1)*pixels]
				for i := range row {
					row[i] = bias.Data[oc]
				}
			}
		}
		for gi := range g {
			src := x.Data[(s*c+gi*cg)*h*wd:]
			if direct {
				cols = src[:k*pixels]
			} else {
				im2col(src, cg, h, wd, kh, kw, a, oh, ow, cols)
			}
			wm := w.Data[gi*og*k : (gi+1)*og*k]
			om := out.Data[(s*o+gi*og)*pixels : (s*o+(gi+1)*og)*pixels]
			gemm.SGEMM(og, pixels, k, wm, k, cols, pixels, om, pixels)
		}
	})
	return out
}

// colsPool keeps patch matrices for reuse, which is safe because im2col overwrites every value.
var colsPool = sync.Pool{New: func() any { return new([]float32) }}

// im2col writes the [C*KH*KW, OH*OW] patch matrix of one sample; padded taps are 0. Each
// output row's in-bounds stretch is found once, then copied (stride 1) or strided through.
func im2col(x []float32, c, h, w, kh, kw int, a graph.Attrs, oh, ow int, cols []float32) {
	sy, sx := a.Stride[0], a.Stride[1]
	row := 0
	for ci := range c {
		for ky := range kh {
			for kx := range kw {
				dst := cols[row*oh*ow : (row+1)*oh*ow]
				// ix = ox*sx + shift lies in [0, w) for ox in [lo, hi).
				shift := kx*a.Dilation[1] - a.Padding[1]
				lo := min(ow, max(0, ceilDiv(-shift, sx)))
				hi := max(lo, min(ow, ceilDiv(w-shift, sx)))
				for oy := range oh {
					iy := oy*sy - a.Padding[0] + ky*a.Dilation[0]
					line := dst[oy*ow : (oy+1)*ow]
					if iy < 0 || iy >= h {
						clear(line)
						continue
					}
					src := x[(ci*h+iy)*w : (ci*h+iy+1)*w]
					clear(line[:lo])
					clear(line[hi:])
					if sx == 1 && lo < hi {
						copy(line[lo:hi], src[lo+shift:hi+shift])
						continue
					}
					for ox := lo; ox < hi; ox++ {
						line[ox] = src[ox*sx+shift]
					}
				}
				row++
			}
		}
	}
}

// ceilDiv returns the ceiling of a/b for b > 0 and any sign of a.
func ceilDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}

// linearRowBlock is how many samples one goroutine of linear takes at a time.
const linearRowBlock = 16

// linear computes x [N, K] times w [O, K] transposed plus bias with gemm.SGEMM. Each
// output starts from its bias and adds one fused multiply-add per input, in order.
func linear(x, w, bias *tensor.Tensor, threads int) *tensor.Tensor {
	n, k := x.Shape[0], x.Shape[1]
	o := w.Shape[0]
	out := tensor.New(n, o)
	wt := make([]float32, k*o) // w transposed: [K, O]
	for oc := range o {
		for i, v := range w.Data[oc*k : (oc+1)*k] {
			wt[i*o+oc] = v
		}
	}
	if bias != nil {
		for s := range n {
			copy(out.Data[s*o:(s+1)*o], bias.Data)
		}
	}
	blocks := (n + linearRowBlock - 1) / linearRowBlock
	parallel(blocks, threads, func(bi int) {
		first := bi * linearRowBlock
		rows := min(linearRowBlock, n-first)
		gemm.SGEMM(rows, o, k, x.Data[first*k:], k, wt, o, out.Data[first*o:], o)
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

// maxPool ignores padded cells, as PyTorch does. A window's maximum is the maximum over its
// columns of each column's maximum over the window's rows, so each output row first takes
// the elementwise maximum of its in-bounds input rows, then slides along that line. max is
// exact, so this gives the same bits as visiting the window's cells one by one.
func maxPool(x *tensor.Tensor, a graph.Attrs) *tensor.Tensor {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	kh, kw := a.Kernel[0], a.Kernel[1]
	oh := (h+a.Padding[0]+a.Padding[2]-kh)/a.Stride[0] + 1
	ow := (w+a.Padding[1]+a.Padding[3]-kw)/a.Stride[1] + 1
	out := tensor.New(n, c, oh, ow)
	line := make([]float32, w)
	negInf := float32(math.Inf(-1))
	for p := range n * c {
		plane := x.Data[p*h*w : (p+1)*h*w]
		for oy := range oh {
			y0 := oy*a.Stride[0] - a.Padding[0]
			y1 := min(y0+kh, h)
			y0 = max(y0, 0)
			for i := range line {
				line[i] = negInf
			}
			for y := y0; y < y1; y++ {
				for i, v := range plane[y*w : (y+1)*w] {
					line[i] = max(line[i], v)
				}
			}
			dst := out.Data[(p*oh+oy)*ow : (p*oh+oy+1)*ow]
			for ox := range dst {
				x0 := ox*a.Stride[1] - a.Padding[1]
				m := negInf
				if lo, hi := max(x0, 0), min(x0+kw, w); lo < hi {
					for _, v := range line[lo:hi] {
						m = max(m, v)
					}
				}
				dst[ox] = m
			}
		}
	}
	return out
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
