// Package format reads and writes qtool's files: NPY arrays and NPZ archives, the float model's
// weights, and (through WriteFileAtomic) every output file.
//
// Readers check sizes before they allocate: an NPY header is limited to MaxNPYHeaderBytes, its
// element count to MaxElements, and the data it declares must be present in the file. Errors
// name the file (and the NPZ member) and tell what to do next.
package format
