package gemm

// MaxBytes sets dst[i] = max(dst[i], src[i]) for i < len(dst); src must be at
// least as long. The integer executor's max pooling uses it on whole rows.
// On amd64 with AVX2 it takes 32 bytes per instruction. The Go loop has no
// branch, because a branch would be mispredicted on about half the bytes of
// random data.
func MaxBytes(dst, src []uint8) {
	src = src[:len(dst)]
	n := 0
	if activePath != pathGeneric {
		n = maxBytesSIMD(dst, src)
	}
	maxBytesGeneric(dst[n:], src[n:])
}

func maxBytesGeneric(dst, src []uint8) {
	src = src[:len(dst)]
	for i, a := range dst {
		d := int32(src[i]) - int32(a)
		dst[i] = a + uint8(d&^(d>>31))
	}
}
