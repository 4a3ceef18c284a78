package calib_test

import (
	"fmt"
	"log"

	"github.com/qtool-dev/qtool/internal/calib"
)

func ExampleNewObserver() {
	o, err := calib.NewObserver("relu1", calib.DefaultSettings(calib.MethodMinMax))
	if err != nil {
		log.Fatal(err)
	}
	o.Observe([]float32{0.5, 2, -1})
	o.Observe([]float32{3, 0})

	r, err := o.Range()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("[%g, %g] from %d values\n", r.Alpha, r.Beta, r.Samples)
	// Output: [-1, 3] from 5 values
}
