package qinfer

import (
	"math/rand/v2"
	"testing"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// mutateNode sets one numeric field of a node, chosen by field, to value.
func mutateNode(n *format.QNode, field uint8, value int) {
	switch field % 12 {
	case 0:
		n.Stride[0] = value
	case 1:
		n.Stride[1] = value
	case 2:
		n.Padding[value&3] = value >> 2
	case 3:
		n.Dilation[0] = value
	case 4:
		n.Groups = value
	case 5:
		n.Kernel[0] = value
	case 6:
		n.Kernel[1] = value
	case 7:
		n.ClampMin = int32(value)
	case 8:
		n.ClampMax = int32(value)
	case 9:
		n.CountIncludePad = value%2 == 0
	case 10:
		n.Float = value%2 == 0
	case 11:
		if len(n.Inputs) > 1 {
			n.Inputs = n.Inputs[:1]
		} else {
			n.Inputs = append(n.Inputs, n.Inputs...)
		}
	}
}

// FuzzNewAndRunDoNotPanic changes one attribute of one node of the test graph's model. New
// must return an error or an Executor that runs without panicking, as a .qmodel file may hold
// any values.
func FuzzNewAndRunDoNotPanic(f *testing.F) {
	for node := range 14 {
		for field := range 12 {
			f.Add(uint8(node), uint8(field), 0)
			f.Add(uint8(node), uint8(field), 3)
			f.Add(uint8(node), uint8(field), -2)
		}
	}
	rng := rand.New(rand.NewPCG(25, 1))
	m := testGraph(f, rng)
	x := randomTensor(rng, -1, 1, 2, 3, 12, 12)
	feeds := map[string]*tensor.Tensor{"x": x}

	f.Fuzz(func(t *testing.T, node, field uint8, value int) {
		q := quantizeGraph(t, m, feeds, node%2 == 0, map[string]bool{"pw": true})
		n := *q.Nodes[int(node)%len(q.Nodes)]
		mutateNode(&n, field, value%1000)
		q.Nodes[int(node)%len(q.Nodes)] = &n

		e, err := New(q, Options{Threads: 2})
		if err != nil {
			return
		}
		if _, err := e.Run(feeds, true); err != nil {
			t.Logf("Run returned an error: %v", err)
		}
	})
}
