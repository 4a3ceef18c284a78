package format

import (
	"bytes"
	"testing"
)

// FuzzReadQModel feeds arbitrary bytes to DecodeQModel, once as given and once with the checksum
// recomputed so that the checks behind it are reached. DecodeQModel must not panic, and a file
// it accepts must encode to the same bytes again.
func FuzzReadQModel(f *testing.F) {
	valid := encodeSmall(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:8])
	for _, at := range []int{0, 9, 40, len(valid) - 1} {
		flipped := bytes.Clone(valid)
		flipped[at] ^= 0x55
		f.Add(flipped)
	}
	f.Add(resign(f, valid, func(h string) string { return h + "   " }))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeQModel(data)

		signed := bytes.Clone(data)
		sign(signed)
		q, err := DecodeQModel(signed)
		if err != nil {
			return
		}
		again, err := EncodeQModel(q)
		if err != nil {
			t.Fatalf("a decoded model does not encode: %v", err)
		}
		q2, err := DecodeQModel(again)
		if err != nil {
			t.Fatalf("a re-encoded model does not decode: %v", err)
		}
		third, err := EncodeQModel(q2)
		if err != nil {
			t.Fatalf("a twice decoded model does not encode: %v", err)
		}
		if !bytes.Equal(again, third) {
			t.Fatal("encoding is not stable across a round trip")
		}
	})
}
