//go:build amd64 && !purego

package gemm

// maxBytesAVX2 applies VPMAXUB to the first n bytes of dst and src, n a
// multiple of 32.
//
//go:noescape
func maxBytesAVX2(dst, src *uint8, n int)

// maxBytesSIMD handles the whole 32-byte blocks and returns how many bytes
// it did.
func maxBytesSIMD(dst, src []uint8) int {
	n := len(dst) &^ 31
	if n > 0 {
		maxBytesAVX2(&dst[0], &src[0], n)
	}
	return n
}
