package affine_test

import (
	"fmt"

	"github.com/qtool-dev/qtool/internal/affine"
)

func ExampleChooseParams() {
	// Activations calibrated to [-1, 3], stored as asymmetric uint8.
	p, err := affine.ChooseParams(-1, 3, affine.Scheme{Bits: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("scale %.6g, zero point %d, range [%d, %d]\n", p.Scale, p.ZeroPoint, p.QMin, p.QMax)
	fmt.Println("0 ->", p.Quantize(0), "->", p.Dequantize(p.Quantize(0)))
	fmt.Println("3 ->", p.Quantize(3))

	_, err = affine.ChooseParams(5, 2, affine.Scheme{Bits: 8})
	fmt.Println(err)
	// Output:
	// scale 0.0156863, zero point 64, range [0, 255]
	// 0 -> 64 -> 0
	// 3 -> 255
	// affine: range [5, 2] is invalid because alpha > beta; pass the minimum as alpha and the maximum as beta
}

func ExampleQuantizeMultiplier() {
	// M = scale_in * scale_w / scale_out for one output channel.
	m, err := affine.QuantizeMultiplier(0.02 * 0.005 / 0.05)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("Mult %d, Shift %d, M %.6g\n", m.Mult, m.Shift, m.Float64())
	fmt.Println("12345 * M =", affine.MultiplyByQuantizedMultiplier(12345, m))

	_, err = affine.QuantizeMultiplier(0)
	fmt.Println(err)
	// Output:
	// Mult 1099511628, Shift -8, M 0.002
	// 12345 * M = 25
	// affine: multiplier 0 is not a finite positive number; check the scales it was computed from (scale_in * scale_w / scale_out)
}
