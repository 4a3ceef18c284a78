package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/qtool-dev/qtool/internal/cli"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"qtool": func() { os.Exit(cli.Main(os.Args[1:], cli.SystemStreams())) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script: real qtool commands on models
// written by the scripts themselves, checking stdout, stderr, files and exit codes.
func TestScripts(t *testing.T) {
	root, _ := filepath.Abs("../..")
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join(root, "testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", root)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"npy": cmdNPY,
		},
	})
}

// cmdNPY writes an NPY file from the script:
//
//	npy FILE DTYPE SHAPE VALUES...      listed values, for example npy b.npy float32 2 0.5 -1
//	npy FILE DTYPE SHAPE rand SEED LO HI seeded uniform values in [LO, HI)
//
// SHAPE is comma-separated (1,2,4,4); DTYPE is float32, uint8 or int64.
func cmdNPY(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("npy does not support !")
	}
	if len(args) < 3 {
		ts.Fatalf("usage: npy FILE DTYPE SHAPE VALUES... | rand SEED LO HI")
	}
	var shape []int
	for _, s := range strings.Split(args[2], ",") {
		d, err := strconv.Atoi(s)
		ts.Check(err)
		shape = append(shape, d)
	}
	n := tensor.Size(shape)
	values := make([]float64, n)
	rest := args[3:]
	if len(rest) == 4 && rest[0] == "rand" {
		seed, _ := strconv.ParseUint(rest[1], 10, 64)
		lo, _ := strconv.ParseFloat(rest[2], 64)
		hi, _ := strconv.ParseFloat(rest[3], 64)
		rng := rand.New(rand.NewPCG(seed, 1))
		for i := range values {
			values[i] = lo + (hi-lo)*rng.Float64()
		}
	} else {
		if len(rest) != n {
			ts.Fatalf("npy: %d values for shape %v (%d elements)", len(rest), shape, n)
		}
		for i, s := range rest {
			v, err := strconv.ParseFloat(s, 64)
			ts.Check(err)
			values[i] = v
		}
	}

	var buf bytes.Buffer
	switch args[1] {
	case "float32":
		t := tensor.New(shape...)
		for i, v := range values {
			t.Data[i] = float32(v)
		}
		ts.Check(format.EncodeNPY(&buf, t))
	case "uint8", "int64":
		code, size := "|u1", 1
		if args[1] == "int64" {
			code, size = "<i8", 8
		}
		dims := make([]string, len(shape))
		for i, d := range shape {
			dims[i] = strconv.Itoa(d)
		}
		tuple := strings.Join(dims, ", ")
		if len(dims) == 1 {
			tuple += ","
		}
		header := "{'descr': '" + code + "', 'fortran_order': False, 'shape': (" + tuple + "), }\n"
		buf.WriteString("\x93NUMPY\x01\x00")
		buf.WriteByte(byte(len(header)))
		buf.WriteByte(byte(len(header) >> 8))
		buf.WriteString(header)
		for _, v := range values {
			x := int64(v)
			for b := range size {
				buf.WriteByte(byte(x >> (8 * b)))
			}
		}
	default:
		ts.Fatalf("npy: unknown dtype %q", args[1])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), buf.Bytes(), 0o644))
}
