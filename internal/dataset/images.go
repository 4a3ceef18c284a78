package dataset

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder
	_ "image/png"  // registers the PNG decoder
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/image/draw"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// ImageOptions describe how image files become a model input, in the order applied:
// decode, resize so the shorter side is Resize (bilinear), center crop to the input's H x W,
// arrange channels (gray for one channel, RGB or BGR for three), then
// x = (pixel*Scale - Mean[c]) / Std[c] with pixel in 0..255.
type ImageOptions struct {
	Resize       int       `mapstructure:"resize"`        // shorter side after resizing; 0 resizes straight to H x W
	ChannelOrder string    `mapstructure:"channel_order"` // "rgb" (default) or "bgr"
	Scale        float64   `mapstructure:"scale"`         // default: the model input's preprocess scale, else 1/255
	Mean         []float64 `mapstructure:"mean"`          // default: the model input's preprocess mean
	Std          []float64 `mapstructure:"std"`           // default: the model input's preprocess std
}

// ImageFolder is a data set of PNG and JPEG files in one folder, sorted by file name and
// decoded batch by batch, so memory holds one batch of images.
type ImageFolder struct {
	Path  string
	input graph.Input
	files []string
	opt   ImageOptions
	pre   graph.Preprocess
}

// OpenImages lists the PNG and JPEG files of dir for the model's single input.
func OpenImages(m *graph.Model, dir string, opt ImageOptions) (*ImageFolder, error) {
	if len(m.Inputs) != 1 {
		return nil, fmt.Errorf("data %s: image folders feed single-input models; this one has %d inputs", dir, len(m.Inputs))
	}
	in := m.Inputs[0]
	if len(in.Shape) != 4 || (in.Shape[1] != 1 && in.Shape[1] != 3) {
		return nil, fmt.Errorf("data %s: input %q has shape %s; images need [N, 1 or 3, H, W]", dir, in.Name, tensor.ShapeString(in.Shape))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data %s: %v", dir, unwrap(err))
	}
	f := &ImageFolder{Path: dir, input: in, opt: opt}
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			if e.Type().IsRegular() {
				f.files = append(f.files, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Strings(f.files)
	if len(f.files) == 0 {
		return nil, fmt.Errorf("data %s contains no .png, .jpg or .jpeg files; give a folder of images", dir)
	}

	switch strings.ToLower(opt.ChannelOrder) {
	case "", "rgb", "bgr":
	default:
		return nil, fmt.Errorf("data %s: preprocess channel_order %q must be rgb or bgr", dir, opt.ChannelOrder)
	}
	f.pre = graph.Preprocess{Scale: 1.0 / 255, Mean: opt.Mean, Std: opt.Std}
	if p := in.Preprocess; p != nil {
		f.pre.Scale = p.Scale
		if f.pre.Mean == nil {
			f.pre.Mean = p.Mean
		}
		if f.pre.Std == nil {
			f.pre.Std = p.Std
		}
	}
	if opt.Scale != 0 {
		f.pre.Scale = opt.Scale
	}
	for _, v := range [][]float64{f.pre.Mean, f.pre.Std} {
		if len(v) > 1 && len(v) != in.Shape[1] {
			return nil, fmt.Errorf("data %s: preprocess mean and std need one value or one per channel (%d), got %d", dir, in.Shape[1], len(v))
		}
	}
	for c, s := range f.pre.Std {
		if !(s > 0) {
			return nil, fmt.Errorf("data %s: preprocess std[%d] is %v; it must be positive", dir, c, s)
		}
	}
	return f, nil
}

// Len returns the number of images.
func (f *ImageFolder) Len() int { return len(f.files) }

// Batch decodes images [start, start+count) into one preprocessed [count, C, H, W] tensor.
func (f *ImageFolder) Batch(start, count int) (map[string]*tensor.Tensor, error) {
	if start < 0 || count <= 0 || start+count > len(f.files) {
		return nil, fmt.Errorf("dataset: batch [%d, %d) is outside the %d images", start, start+count, len(f.files))
	}
	c, h, w := f.input.Shape[1], f.input.Shape[2], f.input.Shape[3]
	t := tensor.New(count, c, h, w)
	for i := range count {
		img, err := f.load(f.files[start+i], h, w)
		if err != nil {
			return nil, err
		}
		f.fill(img, t.Data[i*c*h*w:(i+1)*c*h*w], c, h, w)
	}
	f.pre.Apply(t.Data, t.Shape)
	return map[string]*tensor.Tensor{f.input.Name: t}, nil
}

// load decodes one file, resizes it and crops its center to h x w.
func (f *ImageFolder) load(path string, h, w int) (*image.RGBA, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %v", path, unwrap(err))
	}
	defer file.Close()
	cfg, _, err := image.DecodeConfig(file)
	if err != nil {
		return nil, fmt.Errorf("image %s: not a valid PNG or JPEG file: %v", path, err)
	}
	if cfg.Width*cfg.Height > 1<<28 {
		return nil, fmt.Errorf("image %s: %dx%d pixels is more than the limit of 2^28", path, cfg.Width, cfg.Height)
	}
	if _, err := file.Seek(0, 0); err != nil {
		return nil, err
	}
	src, _, err := image.Decode(file)
	if err != nil {
		return nil, fmt.Errorf("image %s: not a valid PNG or JPEG file: %v", path, err)
	}

	b := src.Bounds()
	rw, rh := w, h
	if f.opt.Resize > 0 {
		short := min(b.Dx(), b.Dy())
		rw = max(w, (b.Dx()*f.opt.Resize+short/2)/short)
		rh = max(h, (b.Dy()*f.opt.Resize+short/2)/short)
	}
	resized := image.NewRGBA(image.Rect(0, 0, rw, rh))
	draw.BiLinear.Scale(resized, resized.Bounds(), src, b, draw.Src, nil)

	x0, y0 := (rw-w)/2, (rh-h)/2
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(out, out.Bounds(), resized, image.Point{X: x0, Y: y0}, draw.Src)
	return out, nil
}

// fill writes pixel values 0..255 in CHW order.
func (f *ImageFolder) fill(img *image.RGBA, dst []float32, c, h, w int) {
	bgr := strings.EqualFold(f.opt.ChannelOrder, "bgr")
	for y := range h {
		for x := range w {
			p := img.RGBAAt(x, y)
			if c == 1 {
				g := color.GrayModel.Convert(p).(color.Gray)
				dst[y*w+x] = float32(g.Y)
				continue
			}
			r, g, b := p.R, p.G, p.B
			if bgr {
				r, b = b, r
			}
			dst[(0*h+y)*w+x] = float32(r)
			dst[(1*h+y)*w+x] = float32(g)
			dst[(2*h+y)*w+x] = float32(b)
		}
	}
}
