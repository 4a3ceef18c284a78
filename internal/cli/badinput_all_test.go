package cli

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// The files of the LeNet fixture folder that buildLeNetFixture prepares. The first five come
// from testdata/lenet-mnist, the others from running qtool on them.
const (
	lenetModel     = "model.json"
	lenetWeights   = "weights.npz"
	lenetCalibData = "calib.npy"  // uint8 [500, 1, 28, 28]
	lenetTestX     = "test_x.npy" // uint8 [2000, 1, 28, 28]
	lenetTestY     = "test_y.npy" // int64 [2000]
	lenetFused     = "fused.json"
	lenetFusedNPZ  = "fused.npz"
	lenetTable     = "calib.json"
	lenetQModel    = "model.qmodel"
	// lenetOtherTable is a calibration table of the unfused model, stale for fused.json.
	lenetOtherTable = "unfused-calib.json"
)

// buildLeNetFixture copies the LeNet model into a temporary folder and runs fuse, calibrate
// and quantize on it, so the folder contains every kind of file qtool reads.
func buildLeNetFixture(t *testing.T) string {
	t.Helper()
	dir := testutil.CopyDir(t, filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist"))
	in := func(name string) string { return filepath.Join(dir, name) }

	runs := [][]string{
		{"fuse", in(lenetModel), "-o", in(lenetFused)},
		{"calibrate", in(lenetFused), "--data", in(lenetCalibData), "--limit", "64", "-o", in(lenetTable)},
		{"calibrate", in(lenetModel), "--data", in(lenetCalibData), "--limit", "8", "-o", in(lenetOtherTable)},
		{"quantize", in(lenetFused), "--calib", in(lenetTable), "-o", in(lenetQModel)},
	}
	for _, args := range runs {
		if code, _, stderr := runCLI(t, append(args, "-q")...); code != ExitOK {
			t.Fatalf("qtool %s: exit code %d, stderr: %s", strings.Join(args, " "), code, stderr)
		}
	}
	return dir
}

// npzMembers returns the raw NPY bytes of every member of an NPZ archive, keyed without the
// .npy suffix.
func npzMembers(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	members := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		members[strings.TrimSuffix(f.Name, ".npy")] = raw
	}
	return members
}

// writeNPZMembers writes raw NPY members to an NPZ archive, replacing path.
func writeNPZMembers(t *testing.T, path string, members map[string][]byte) {
	t.Helper()
	arrays := map[string]func(io.Writer) error{}
	for key, raw := range members {
		arrays[key] = func(w io.Writer) error {
			_, err := w.Write(raw)
			return err
		}
	}
	var buf bytes.Buffer
	if err := format.WriteNPZ(&buf, arrays); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// editMember rewrites one member of an NPZ archive in place.
func editMember(t *testing.T, path, key string, edit func([]byte) []byte) {
	t.Helper()
	members := npzMembers(t, path)
	raw, ok := members[key]
	if !ok {
		t.Fatalf("%s has no member %q", path, key)
	}
	members[key] = edit(bytes.Clone(raw))
	writeNPZMembers(t, path, members)
}

// writeLyingNPZ writes an archive with one deflated member whose directory entry claims size
// bytes, whatever the length of content. archive/zip's CreateRaw copies the claim unchecked.
func writeLyingNPZ(t *testing.T, path, name string, content []byte, size uint64) {
	t.Helper()
	var deflated bytes.Buffer
	fw, _ := flate.NewWriter(&deflated, flate.BestCompression)
	fw.Write(content)
	fw.Close()

	var archive bytes.Buffer
	zw := zip.NewWriter(&archive)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(content),
		CompressedSize64: uint64(deflated.Len()), UncompressedSize64: size})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(deflated.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, archive.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// npyData returns the header and the data bytes of an NPY file.
func npyData(t *testing.T, raw []byte) (*format.NPYHeader, []byte) {
	t.Helper()
	h, err := format.ParseNPYHeader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return h, raw[h.DataOffset : h.DataOffset+h.DataBytes]
}

// setFloat32 sets element i of a little-endian float32 NPY file to v, in place, and returns the file.
func setFloat32(t *testing.T, raw []byte, i int, v float32) []byte {
	t.Helper()
	h, data := npyData(t, raw)
	if h.DType != format.Float32 || h.BigEndian {
		t.Fatalf("setFloat32 needs little-endian float32 data, not %s", h.DType)
	}
	binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	return raw
}

// shapeDict returns an NPY header dictionary.
func shapeDict(descr string, fortran bool, shape ...int) string {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := "(" + strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	tuple += ")"
	order := "False"
	if fortran {
		order = "True"
	}
	return fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, order, tuple)
}

// replaceInFile replaces the first occurrence of old in the file, failing if there is none.
func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(raw, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// editFile applies edit to the bytes of a file.
func editFile(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(raw), 0o644); err != nil {
		t.Fatal(err)
	}
}

// truncate keeps the first fraction of a file's bytes.
func truncate(fraction float64) func([]byte) []byte {
	return func(raw []byte) []byte { return raw[:int(float64(len(raw))*fraction)] }
}

// flipByte inverts the bits of the byte at offset at; a negative offset counts from the end.
func flipByte(at int) func([]byte) []byte {
	return func(raw []byte) []byte {
		if at < 0 {
			at += len(raw)
		}
		raw[at] ^= 0xff
		return raw
	}
}

// resignQModel recomputes the checksum of a .qmodel file as docs/format.md specifies it: the
// SHA-256 of the whole file with the 64 digits after "checksum":"sha256: set to '0'.
func resignQModel(t *testing.T, raw []byte) []byte {
	t.Helper()
	key := []byte(`"checksum":"sha256:`)
	at := bytes.Index(raw, key)
	if at < 0 {
		t.Fatal("the .qmodel has no checksum")
	}
	at += len(key)
	copy(raw[at:at+64], strings.Repeat("0", 64))
	sum := sha256.Sum256(raw)
	hex.Encode(raw[at:at+64], sum[:])
	return raw
}

// weightsAsFolder extracts weights.npz into the folder params/ and points model.json at it.
func weightsAsFolder(t *testing.T, dir string) {
	t.Helper()
	params := filepath.Join(dir, "params")
	if err := os.Mkdir(params, 0o755); err != nil {
		t.Fatal(err)
	}
	for key, raw := range npzMembers(t, filepath.Join(dir, lenetWeights)) {
		if err := os.WriteFile(filepath.Join(params, key+".npy"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	replaceInFile(t, filepath.Join(dir, lenetModel), `"weights": "weights.npz"`, `"weights": "params"`)
}

// writeFile writes content to the file name in dir.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Command lines on the fixture folder dir. Each writes its output, if any, to a file whose
// name starts with "out".
func fuseArgs(dir string) []string {
	return []string{"fuse", filepath.Join(dir, lenetModel), "-o", filepath.Join(dir, "out.json")}
}

func calibrateArgs(dir, data string, extra ...string) []string {
	return append([]string{"calibrate", filepath.Join(dir, lenetFused), "--data", filepath.Join(dir, data),
		"--limit", "16", "-o", filepath.Join(dir, "out-calib.json")}, extra...)
}

func quantizeArgs(dir, table string, extra ...string) []string {
	return append([]string{"quantize", filepath.Join(dir, lenetFused), "--calib", filepath.Join(dir, table),
		"-o", filepath.Join(dir, "out.qmodel")}, extra...)
}

func evalArgs(dir, qmodel, data, labels string) []string {
	return []string{"eval", "--float", filepath.Join(dir, lenetFused), "--quant", filepath.Join(dir, qmodel),
		"--data", filepath.Join(dir, data), "--labels", filepath.Join(dir, labels), "--limit", "20", "--no-timing"}
}

func inspectArgs(dir, name string) []string {
	return []string{"inspect", filepath.Join(dir, name)}
}

// badInput is one bad input: files to break in a copy of the fixture, the command line, the
// expected exit code and the words the error line must contain.
type badInput struct {
	name   string
	setup  func(t *testing.T, dir string)
	args   func(dir string) []string
	code   int
	expect []string
	// outputs are the files, relative to the fixture folder, that the command would write.
	// Each must be absent or unchanged after the run.
	outputs []string
}

// TestBadInputsAllCommands runs every command on broken files, flags and configs. Each run
// must exit with the expected code, print one error line that names the file and the tensor,
// layer or key, and leave no output or temporary file behind.
func TestBadInputsAllCommands(t *testing.T) {
	fixture := buildLeNetFixture(t)
	outside := t.TempDir()
	writeNPZMembers(t, filepath.Join(outside, "weights.npz"), npzMembers(t, filepath.Join(fixture, lenetWeights)))

	weightsNPZ := func(dir string) string { return filepath.Join(dir, lenetWeights) }
	fuseOutputs := []string{"out.json", "out.npz"}
	calibOutputs := []string{"out-calib.json"}
	quantOutputs := []string{"out.qmodel"}
	calibrateData := func(data string, extra ...string) func(string) []string {
		return func(dir string) []string { return calibrateArgs(dir, data, extra...) }
	}

	cases := []badInput{
		// Float model files and their weights.
		{name: "truncated NPZ weights",
			setup: func(t *testing.T, dir string) { editFile(t, weightsNPZ(dir), truncate(0.5)) },
			args:  fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{"weights.npz", "not a valid NPZ"}},
		{name: "truncated NPZ member",
			setup: func(t *testing.T, dir string) { editMember(t, weightsNPZ(dir), "conv2.weight", truncate(0.6)) },
			args:  fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{"weights.npz", `"conv2.weight.npy"`, `node "conv2"`, "truncated"}},
		{name: "truncated NPY weight",
			setup: func(t *testing.T, dir string) {
				weightsAsFolder(t, dir)
				editFile(t, filepath.Join(dir, "params", "fc1.weight.npy"), truncate(0.9))
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{"fc1.weight.npy", `node "fc1"`, "truncated"}},
		{name: "NPY weight wrong magic",
			setup: func(t *testing.T, dir string) {
				weightsAsFolder(t, dir)
				editFile(t, filepath.Join(dir, "params", "conv1.bias.npy"), func(raw []byte) []byte { raw[1] = 'X'; return raw })
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{"conv1.bias.npy", `node "conv1"`, "not an NPY file"}},
		{name: "NPZ wrong magic",
			setup: func(t *testing.T, dir string) { editFile(t, weightsNPZ(dir), flipByte(0)) },
			args:  fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{"weights.npz", `"conv1.weight.npy"`, "not a valid zip file"}},
		{name: "weight dtype complex64",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "fc2.bias", func(raw []byte) []byte {
					return testutil.RawNPY(shapeDict("<c8", false, 5), make([]byte, 40))
				})
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{"weights.npz", `"fc2.bias.npy"`, `node "fc2"`, "unsupported dtype", "<c8"}},
		{name: "weight dtype float16",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "fc2.bias", func(raw []byte) []byte {
					return testutil.RawNPY(shapeDict("<f2", false, 10), make([]byte, 20))
				})
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{"weights.npz", `"fc2.bias.npy"`, "unsupported dtype", "<f2"}},
		{name: "weight dtype int32",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "fc2.bias", func(raw []byte) []byte {
					return testutil.RawNPY(shapeDict("<i4", false, 10), make([]byte, 40))
				})
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{`node "fc2"`, `"fc2.bias"`, "dtype int32", "float32"}},
		{name: "weight object array",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "bn1.running_mean", func(raw []byte) []byte {
					return testutil.RawNPY(shapeDict("|O", false, 6), []byte("\x80\x04\x95pickle"))
				})
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{"weights.npz", `"bn1.running_mean.npy"`, `node "bn1"`, "object array", "never loads pickled"}},
		{name: "NaN weight",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "conv2.weight", func(raw []byte) []byte { return setFloat32(t, raw, 7, float32(math.NaN())) })
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "conv2"`, `"conv2.weight"`, "NaN", "[0 0 1 2]"}},
		{name: "Inf weight",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "fc1.bias", func(raw []byte) []byte { return setFloat32(t, raw, 3, float32(math.Inf(1))) })
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "fc1"`, `"fc1.bias"`, "+Inf", "[3]"}},
		{name: "float64 weight beyond float32",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "fc2.bias", func(raw []byte) []byte {
					data := make([]byte, 80)
					binary.LittleEndian.PutUint64(data[8*4:], math.Float64bits(1e300))
					return testutil.RawNPY(shapeDict("<f8", false, 10), data)
				})
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "fc2"`, `"fc2.bias"`, "1e+300", "[4]", "float32 range"}},
		{name: "NaN batchnorm running_var",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "bn1.running_var", func(raw []byte) []byte { return setFloat32(t, raw, 2, float32(math.NaN())) })
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "bn1"`, `"bn1.running_var"`, "NaN", "[2]"}},
		{name: "Inf batchnorm running_mean",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "bn2.running_mean", func(raw []byte) []byte { return setFloat32(t, raw, 0, float32(math.Inf(-1))) })
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "bn2"`, `"bn2.running_mean"`, "-Inf", "[0]"}},
		{name: "negative batchnorm running_var",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "bn2.running_var", func(raw []byte) []byte { return setFloat32(t, raw, 5, -0.5) })
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `batchnorm "bn2" channel 5`, "running_var is -0.5"}},
		{name: "batchnorm running_var of minus eps",
			setup: func(t *testing.T, dir string) {
				editMember(t, weightsNPZ(dir), "bn1.running_var", func(raw []byte) []byte { return setFloat32(t, raw, 1, -1e-5) })
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `batchnorm "bn1" channel 1`, "running_var"}},
		{name: "weights path relative outside",
			setup: func(t *testing.T, dir string) {
				replaceInFile(t, filepath.Join(dir, lenetModel), `"weights.npz"`, `"../weights.npz"`)
				writeNPZMembers(t, filepath.Join(filepath.Dir(dir), "weights.npz"), npzMembers(t, weightsNPZ(dir)))
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, "weights path", "outside the model's folder"}},
		{name: "weights path absolute",
			setup: func(t *testing.T, dir string) {
				replaceInFile(t, filepath.Join(dir, lenetModel), `"weights.npz"`, `"`+filepath.Join(outside, "weights.npz")+`"`)
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, "weights path", "absolute"}},
		{name: "weights symlinked outside",
			setup: func(t *testing.T, dir string) {
				os.Remove(weightsNPZ(dir))
				if err := os.Symlink(filepath.Join(outside, "weights.npz"), weightsNPZ(dir)); err != nil {
					t.Fatal(err)
				}
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `"weights.npz"`, "outside the model's folder"}},
		{name: "param file outside the folder",
			setup: func(t *testing.T, dir string) {
				weightsAsFolder(t, dir)
				os.Rename(filepath.Join(dir, "params", "fc2.bias.npy"), filepath.Join(dir, "fc2.bias.npy"))
				replaceInFile(t, filepath.Join(dir, lenetModel), `"bias": "fc2.bias"`, `"bias": "../fc2.bias"`)
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "fc2"`, "../fc2.bias", "outside the model's folder"}},
		{name: "param file symlinked outside",
			setup: func(t *testing.T, dir string) {
				weightsAsFolder(t, dir)
				target := filepath.Join(outside, "conv1.weight.npy")
				raw, _ := os.ReadFile(filepath.Join(dir, "params", "conv1.weight.npy"))
				os.WriteFile(target, raw, 0o644)
				os.Remove(filepath.Join(dir, "params", "conv1.weight.npy"))
				if err := os.Symlink(target, filepath.Join(dir, "params", "conv1.weight.npy")); err != nil {
					t.Fatal(err)
				}
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "conv1"`, "conv1.weight.npy", "outside the model's folder"}},
		{name: "duplicate node name",
			setup: func(t *testing.T, dir string) {
				replaceInFile(t, filepath.Join(dir, lenetModel), `{"name": "relu2"`, `{"name": "relu1"`)
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "relu1"`, "duplicate name"}},
		{name: "cycle",
			setup: func(t *testing.T, dir string) {
				replaceInFile(t, filepath.Join(dir, lenetModel), `"inputs": ["pool1"]`, `"inputs": ["pool2"]`)
			},
			args: fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, `node "conv2"`, `"pool2"`}},
		{name: "truncated model JSON",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetModel), truncate(0.5)) },
			args:  fuseArgs, code: ExitFailure, outputs: fuseOutputs,
			expect: []string{lenetModel, "invalid model JSON"}},

		// Calibration data.
		{name: "NaN in calibration data",
			setup: func(t *testing.T, dir string) {
				x := testutil.RawNPY(shapeDict("<f4", false, 4, 1, 28, 28), make([]byte, 4*4*784))
				os.WriteFile(filepath.Join(dir, "x.npy"), setFloat32(t, x, 2*784+30, float32(math.NaN())), 0o644)
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", `input "image"`, "sample 2", "NaN"}},
		{name: "Inf in calibration data",
			setup: func(t *testing.T, dir string) {
				x := testutil.RawNPY(shapeDict("<f4", false, 4, 1, 28, 28), make([]byte, 4*4*784))
				os.WriteFile(filepath.Join(dir, "x.npy"), setFloat32(t, x, 100, float32(math.Inf(1))), 0o644)
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", `input "image"`, "sample 0", "+Inf"}},
		{name: "float64 calibration data beyond float32",
			setup: func(t *testing.T, dir string) {
				data := make([]byte, 8*3*784)
				binary.LittleEndian.PutUint64(data[8*(784+5):], math.Float64bits(-1e200))
				writeFile(t, dir, "x.npy", string(testutil.RawNPY(shapeDict("<f8", false, 3, 1, 28, 28), data)))
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", `input "image"`, "sample 1", "-1e+200", "float32 range"}},
		{name: "calibration data wrong shape",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "x.npy", string(testutil.RawNPY(shapeDict("|u1", false, 2, 3, 28, 28), make([]byte, 2*3*784))))
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", `"image"`, "[2 3 28 28]"}},
		{name: "calibration data wrong rank",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "x.npy", string(testutil.RawNPY(shapeDict("|u1", false, 2, 784), make([]byte, 2*784))))
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", `"image"`, "[2 784]"}},
		{name: "calibration NPZ wrong input name",
			setup: func(t *testing.T, dir string) {
				raw, _ := os.ReadFile(filepath.Join(dir, lenetCalibData))
				writeNPZMembers(t, filepath.Join(dir, "x.npz"), map[string][]byte{"images": raw})
			},
			args: calibrateData("x.npz"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npz", `input "image"`, "images"}},
		{name: "empty calibration set",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "x.npy", string(testutil.RawNPY(shapeDict("|u1", false, 0, 1, 28, 28), nil)))
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", "no samples", "[0 1 28 28]"}},
		{name: "truncated calibration data",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetCalibData), truncate(0.7)) },
			args:  calibrateData(lenetCalibData), code: ExitFailure, outputs: calibOutputs,
			expect: []string{lenetCalibData, "truncated", "[500 1 28 28]"}},
		{name: "calibration data dtype int32",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "x.npy", string(testutil.RawNPY(shapeDict("<i4", false, 2, 1, 28, 28), make([]byte, 4*2*784))))
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", `input "image"`, "dtype int32"}},
		{name: "calibration data object array",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "x.npy", string(testutil.RawNPY(shapeDict("|O", false, 2), []byte("\x80\x04N."))))
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", "object array", "never loads pickled"}},
		{name: "calibration NPY header over limit",
			setup: func(t *testing.T, dir string) {
				dict := shapeDict("|u1", false, 1, 1, 28, 28) + strings.Repeat(" ", format.MaxNPYHeaderBytes)
				raw := []byte("\x93NUMPY\x02\x00")
				raw = binary.LittleEndian.AppendUint32(raw, uint32(len(dict)))
				raw = append(append(raw, dict...), make([]byte, 784)...)
				os.WriteFile(filepath.Join(dir, "x.npy"), raw, 0o644)
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", "NPY header", "more than the limit of 65536"}},
		{name: "calibration shape overflows",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "x.npy", string(testutil.RawNPY(shapeDict("|u1", false, 1<<40, 1<<40, 28, 28), make([]byte, 784))))
			},
			args: calibrateData("x.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npy", "[1099511627776 1099511627776 28 28]", "more than 2147483647 elements"}},
		{name: "calibration NPZ member claims 1 GiB",
			setup: func(t *testing.T, dir string) {
				header := testutil.RawNPY(shapeDict("|u1", false, 1<<30/784, 1, 28, 28), nil)
				writeLyingNPZ(t, filepath.Join(dir, "x.npz"), "image.npy", append(header, make([]byte, 784)...), uint64(len(header))+(1<<30/784)*784)
			},
			args: calibrateData("x.npz"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"x.npz", `"image.npy"`, "truncated", "[1369568 1 28 28]"}},
		{name: "calibration data missing",
			args: calibrateData("none.npy"), code: ExitFailure, outputs: calibOutputs,
			expect: []string{"none.npy", "no such file"}},

		// Calibration tables.
		{name: "truncated calibration table",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetTable), truncate(0.5)) },
			args:  func(dir string) []string { return quantizeArgs(dir, lenetTable) }, code: ExitFailure, outputs: quantOutputs,
			expect: []string{lenetTable}},
		{name: "calibration table is a model",
			args: func(dir string) []string { return quantizeArgs(dir, lenetModel) }, code: ExitFailure, outputs: quantOutputs,
			expect: []string{lenetModel, `unknown format "qtool.float/1"`}},
		{name: "calibration range inverted",
			setup: func(t *testing.T, dir string) {
				editFile(t, filepath.Join(dir, lenetTable), func(raw []byte) []byte {
					// fc2 is the first tensor because the table lists them by name.
					return regexp.MustCompile(`"beta": [-0-9.e]+`).ReplaceAll(raw, []byte(`"beta": -100`))
				})
			},
			args: func(dir string) []string { return quantizeArgs(dir, lenetTable) }, code: ExitFailure, outputs: quantOutputs,
			expect: []string{lenetTable, `"fc2"`, "-100"}},
		{name: "calibration table lacks a tensor",
			setup: func(t *testing.T, dir string) {
				replaceInFile(t, filepath.Join(dir, lenetTable), `"relu2": {`, `"relu2_old": {`)
			},
			args: func(dir string) []string { return quantizeArgs(dir, lenetTable) }, code: ExitFailure, outputs: quantOutputs,
			expect: []string{lenetFused, lenetTable, `tensor "relu2" is missing`}},
		{name: "stale calibration table",
			args: func(dir string) []string { return quantizeArgs(dir, lenetOtherTable) }, code: ExitFailure, outputs: quantOutputs,
			expect: []string{lenetFused, lenetOtherTable, "stale"}},

		// Quantized models.
		{name: "truncated qmodel",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetQModel), truncate(0.8)) },
			args:  func(dir string) []string { return evalArgs(dir, lenetQModel, lenetTestX, lenetTestY) }, code: ExitFailure,
			expect: []string{lenetQModel, "corrupt"}},
		{name: "qmodel wrong magic",
			setup: func(t *testing.T, dir string) {
				raw, _ := os.ReadFile(filepath.Join(dir, lenetFused))
				writeFile(t, dir, "fake.qmodel", string(raw))
			},
			args: func(dir string) []string { return inspectArgs(dir, "fake.qmodel") }, code: ExitFailure,
			expect: []string{"fake.qmodel", "not a .qmodel"}},
		{name: "qmodel future version",
			setup: func(t *testing.T, dir string) {
				editFile(t, filepath.Join(dir, lenetQModel), func(raw []byte) []byte {
					return resignQModel(t, bytes.Replace(raw, []byte(`"version":"1"`), []byte(`"version":"2"`), 1))
				})
			},
			args: func(dir string) []string { return evalArgs(dir, lenetQModel, lenetTestX, lenetTestY) }, code: ExitFailure,
			expect: []string{lenetQModel, "file version 2 is newer", "update qtool"}},
		{name: "qmodel flipped byte in length",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetQModel), flipByte(1)) },
			args:  func(dir string) []string { return inspectArgs(dir, lenetQModel) }, code: ExitFailure,
			expect: []string{lenetQModel, "corrupt"}},
		{name: "qmodel flipped byte in header",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetQModel), flipByte(300)) },
			args:  func(dir string) []string { return inspectArgs(dir, lenetQModel) }, code: ExitFailure,
			expect: []string{lenetQModel, "corrupt"}},
		{name: "qmodel flipped byte in weights",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetQModel), flipByte(-5000)) },
			args:  func(dir string) []string { return evalArgs(dir, lenetQModel, lenetTestX, lenetTestY) }, code: ExitFailure,
			expect: []string{lenetQModel, "corrupt", "checksum mismatch"}},
		{name: "qmodel flipped last byte",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetQModel), flipByte(-1)) },
			args:  func(dir string) []string { return inspectArgs(dir, lenetQModel) }, code: ExitFailure,
			expect: []string{lenetQModel, "corrupt", "checksum mismatch"}},

		// Evaluation data and labels.
		{name: "label count differs",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "y.npy", string(testutil.RawNPY(shapeDict("<i8", false, 3), make([]byte, 24))))
			},
			args: func(dir string) []string { return evalArgs(dir, lenetQModel, lenetTestX, "y.npy") }, code: ExitFailure,
			expect: []string{"y.npy", "3 labels for 2000 samples"}},
		{name: "labels of dtype float32",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "y.npy", string(testutil.RawNPY(shapeDict("<f4", false, 2000), make([]byte, 8000))))
			},
			args: func(dir string) []string { return evalArgs(dir, lenetQModel, lenetTestX, "y.npy") }, code: ExitFailure,
			expect: []string{"y.npy", "float32", "not an integer type"}},
		{name: "truncated test data",
			setup: func(t *testing.T, dir string) { editFile(t, filepath.Join(dir, lenetTestX), truncate(0.3)) },
			args:  func(dir string) []string { return evalArgs(dir, lenetQModel, lenetTestX, lenetTestY) }, code: ExitFailure,
			expect: []string{lenetTestX, "truncated"}},
		{name: "test data NPZ wrong input name",
			setup: func(t *testing.T, dir string) {
				raw, _ := os.ReadFile(filepath.Join(dir, lenetTestX))
				writeNPZMembers(t, filepath.Join(dir, "x.npz"), map[string][]byte{"img": raw})
			},
			args: func(dir string) []string { return evalArgs(dir, lenetQModel, "x.npz", lenetTestY) }, code: ExitFailure,
			expect: []string{"x.npz", `input "image"`, "img"}},

		// Output paths that cannot be written.
		{name: "fuse output parent is a file",
			args: func(dir string) []string {
				return []string{"fuse", filepath.Join(dir, lenetModel), "-o", filepath.Join(dir, lenetTestY, "out.json")}
			},
			code: ExitFailure, expect: []string{"test_y.npy", "not a directory"}},
		{name: "calibrate output parent is a file",
			args: func(dir string) []string {
				return []string{"calibrate", filepath.Join(dir, lenetFused), "--data", filepath.Join(dir, lenetCalibData),
					"--limit", "4", "-o", filepath.Join(dir, lenetTestY, "calib.json")}
			},
			code: ExitFailure, expect: []string{filepath.Join(lenetTestY, "calib.json"), "not a directory"}},
		{name: "quantize output parent is a file",
			args: func(dir string) []string {
				return []string{"quantize", filepath.Join(dir, lenetFused), "--calib", filepath.Join(dir, lenetTable),
					"-o", filepath.Join(dir, lenetTestY, "m.qmodel")}
			},
			code: ExitFailure, expect: []string{filepath.Join(lenetTestY, "m.qmodel"), "not a directory"}},

		// Flags and config files.
		{name: "calibrate method foo",
			args: calibrateData(lenetCalibData, "--method", "foo"), code: ExitUsage, outputs: calibOutputs,
			expect: []string{"--method", `"foo"`}},
		{name: "calibrate percentile out of range",
			args: calibrateData(lenetCalibData, "--method", "percentile", "--percentile", "20"), code: ExitUsage, outputs: calibOutputs,
			expect: []string{"percentile", "20"}},
		{name: "quantize weights foo",
			args: func(dir string) []string { return quantizeArgs(dir, lenetTable, "--weights", "foo") }, code: ExitUsage, outputs: quantOutputs,
			expect: []string{"--weights", `"foo"`}},
		{name: "quantize bits 9",
			args: func(dir string) []string { return quantizeArgs(dir, lenetTable, "--bits", "9") }, code: ExitUsage, outputs: quantOutputs,
			expect: []string{"--bits 9"}},
		{name: "eval batch zero",
			args: func(dir string) []string {
				return append(evalArgs(dir, lenetQModel, lenetTestX, lenetTestY), "--batch", "0")
			},
			code: ExitUsage, expect: []string{"--batch"}},
		{name: "fuse output overwrites the input",
			args: func(dir string) []string {
				return []string{"fuse", filepath.Join(dir, lenetFused), "-o", filepath.Join(dir, lenetFused)}
			},
			code: ExitUsage, outputs: []string{lenetFused, lenetFusedNPZ}, expect: []string{"fused.json", "overwrite the input"}},
		{name: "config unknown key",
			setup: func(t *testing.T, dir string) { writeFile(t, dir, "qtool.yaml", "metod: entropy\n") },
			args: func(dir string) []string {
				return calibrateArgs(dir, lenetCalibData, "--config", filepath.Join(dir, "qtool.yaml"))
			},
			code: ExitUsage, outputs: calibOutputs, expect: []string{"qtool.yaml", `"metod"`}},
		{name: "config invalid method",
			setup: func(t *testing.T, dir string) { writeFile(t, dir, "qtool.yaml", "method: foo\n") },
			args: func(dir string) []string {
				return calibrateArgs(dir, lenetCalibData, "--config", filepath.Join(dir, "qtool.yaml"))
			},
			code: ExitUsage, outputs: calibOutputs, expect: []string{"method", `"foo"`}},
		{name: "config malformed",
			setup: func(t *testing.T, dir string) { writeFile(t, dir, "qtool.yaml", "method: [minmax\nbatch: 8\n") },
			args: func(dir string) []string {
				return calibrateArgs(dir, lenetCalibData, "--config", filepath.Join(dir, "qtool.yaml"))
			},
			code: ExitFailure, outputs: calibOutputs, expect: []string{"qtool.yaml"}},
		{name: "config missing",
			args: func(dir string) []string {
				return calibrateArgs(dir, lenetCalibData, "--config", filepath.Join(dir, "none.yaml"))
			},
			code: ExitFailure, outputs: calibOutputs, expect: []string{"none.yaml", "no such file"}},
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := testutil.CopyDir(t, fixture)
			if c.setup != nil {
				c.setup(t, dir)
			}
			// Every second case starts with the outputs present.
			before := snapshot(t, dir, c.outputs, i%2 == 1)
			// --quiet keeps status lines such as "quantizing ..." off stderr, so a command that
			// fails after it started still prints only its error.
			args := append(c.args(dir), "--quiet")

			code, stdout, stderr := runCLI(t, args...)
			t.Logf("exit code %d, stderr: %s", code, stderr)

			if code != c.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, c.code, stderr)
			}
			checkErrorLine(t, stderr, c.code)
			for _, want := range c.expect {
				if !strings.Contains(stderr, want) {
					t.Errorf("error lacks %q: %s", want, stderr)
				}
			}
			if c.code == ExitUsage && stdout != "" {
				t.Errorf("a usage error printed to stdout: %s", stdout)
			}
			checkOutputsUnchanged(t, dir, before)
		})
	}
}

// snapshot returns the content of each output file, or nil for a file that does not exist.
// With create, it first writes known content to each output that does not exist, so that the
// run must leave it unchanged instead of absent.
func snapshot(t *testing.T, dir string, outputs []string, create bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range outputs {
		path := filepath.Join(dir, name)
		raw, err := os.ReadFile(path)
		if err != nil && create {
			raw = []byte("previous output of " + name + "\n")
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			raw = nil
		}
		files[path] = raw
	}
	return files
}

// checkErrorLine checks that stderr is one "qtool: " error line, followed for a usage error by
// the line that points to --help.
func checkErrorLine(t *testing.T, stderr string, code int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	want := 1
	if code == ExitUsage {
		want = 2
	}
	if len(lines) != want || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr has %d lines, want %d: %q", len(lines), want, stderr)
	}
	if !strings.HasPrefix(lines[0], "qtool: ") {
		t.Errorf("stderr does not start with the error: %q", stderr)
	}
	if code == ExitUsage && len(lines) == 2 && !strings.Contains(lines[1], "--help") {
		t.Errorf("the usage error is not followed by the --help hint: %q", stderr)
	}
}

// checkOutputsUnchanged checks that every output file is as snapshot found it, and that no
// temporary file of format.WriteFileAtomic is left in the output folders.
func checkOutputsUnchanged(t *testing.T, dir string, before map[string][]byte) {
	t.Helper()
	folders := map[string]bool{dir: true}
	for path, old := range before {
		folders[filepath.Dir(path)] = true
		raw, err := os.ReadFile(path)
		switch {
		case old == nil && err == nil:
			t.Errorf("the failed run wrote %s", path)
		case old != nil && !bytes.Equal(raw, old):
			t.Errorf("the failed run changed %s", path)
		}
	}
	for folder := range folders {
		entries, _ := os.ReadDir(folder)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("temporary file %s left in %s", e.Name(), folder)
			}
		}
	}
}

// TestByteOrderAndFortranWeights stores LeNet's weights big-endian, in Fortran order and as
// float64, and checks that fuse writes the same bytes as from the original weights.
func TestByteOrderAndFortranWeights(t *testing.T) {
	dir := testutil.CopyDir(t, filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist"))
	weights := filepath.Join(dir, lenetWeights)
	code, _, stderr := runCLI(t, "fuse", filepath.Join(dir, lenetModel), "-o", filepath.Join(dir, "want.json"), "-q")
	if code != ExitOK {
		t.Fatalf("fuse of the original weights: exit code %d, stderr: %s", code, stderr)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "want.npz"))

	members := npzMembers(t, weights)
	encodings := map[string]func(h *format.NPYHeader, values []float32) []byte{
		"big-endian":         func(h *format.NPYHeader, v []float32) []byte { return encodeFloat32(h.Shape, v, true, false) },
		"Fortran order":      func(h *format.NPYHeader, v []float32) []byte { return encodeFloat32(h.Shape, v, false, true) },
		"big-endian Fortran": func(h *format.NPYHeader, v []float32) []byte { return encodeFloat32(h.Shape, v, true, true) },
		"float64":            func(h *format.NPYHeader, v []float32) []byte { return encodeFloat64(h.Shape, v) },
	}
	for name, encode := range encodings {
		t.Run(name, func(t *testing.T) {
			changed := map[string][]byte{}
			for key, raw := range members {
				h, data := npyData(t, raw)
				values := make([]float32, len(data)/4)
				for i := range values {
					values[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
				}
				changed[key] = encode(h, values)
			}
			writeNPZMembers(t, weights, changed)

			out := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
			code, _, stderr := runCLI(t, "fuse", filepath.Join(dir, lenetModel), "-o", out, "-q")
			if code != ExitOK {
				t.Fatalf("exit code %d, stderr: %s", code, stderr)
			}
			got, _ := os.ReadFile(strings.TrimSuffix(out, ".json") + ".npz")
			if !bytes.Equal(got, want) {
				t.Errorf("the fused weights differ from those of the little-endian C-order original")
			}
		})
	}
}

// encodeFloat32 returns an NPY file of float32 values given in C order, stored in the byte
// order and memory order requested.
func encodeFloat32(shape []int, values []float32, bigEndian, fortran bool) []byte {
	order := binary.AppendByteOrder(binary.LittleEndian)
	descr := "<f4"
	if bigEndian {
		order, descr = binary.BigEndian, ">f4"
	}
	data := make([]byte, 0, 4*len(values))
	for _, i := range storageOrder(shape, fortran) {
		data = order.AppendUint32(data, math.Float32bits(values[i]))
	}
	return testutil.RawNPY(shapeDict(descr, fortran, shape...), data)
}

// encodeFloat64 returns a little-endian C-order float64 NPY file.
func encodeFloat64(shape []int, values []float32) []byte {
	data := make([]byte, 0, 8*len(values))
	for _, v := range values {
		data = binary.LittleEndian.AppendUint64(data, math.Float64bits(float64(v)))
	}
	return testutil.RawNPY(shapeDict("<f8", false, shape...), data)
}

// storageOrder returns the C-order indices of the elements of shape in the order they are
// stored: C order, or Fortran order (first index fastest).
func storageOrder(shape []int, fortran bool) []int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	order := make([]int, 0, n)
	if !fortran || len(shape) < 2 {
		for i := range n {
			order = append(order, i)
		}
		return order
	}
	index := make([]int, len(shape))
	for range n {
		c := 0
		for d := range shape {
			c = c*shape[d] + index[d]
		}
		order = append(order, c)
		for d := range shape {
			index[d]++
			if index[d] < shape[d] {
				break
			}
			index[d] = 0
		}
	}
	return order
}

// TestFortranCalibrationData stores the calibration images in Fortran order and checks that
// calibrate writes the same table as from the C-order original.
func TestFortranCalibrationData(t *testing.T) {
	dir := testutil.CopyDir(t, filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist"))
	raw, _ := os.ReadFile(filepath.Join(dir, lenetCalibData))
	h, data := npyData(t, raw)
	if h.DType != format.Uint8 {
		t.Fatalf("calib.npy has dtype %s, want uint8", h.DType)
	}
	h.Shape[0] = 32
	data = data[:32*784]
	cOrder := testutil.RawNPY(shapeDict("|u1", false, h.Shape...), data)
	fortran := make([]byte, 0, len(data))
	for _, i := range storageOrder(h.Shape, true) {
		fortran = append(fortran, data[i])
	}
	fOrder := testutil.RawNPY(shapeDict("|u1", true, h.Shape...), fortran)
	os.WriteFile(filepath.Join(dir, "c.npy"), cOrder, 0o644)
	os.WriteFile(filepath.Join(dir, "f.npy"), fOrder, 0o644)

	tables := map[string][]byte{}
	for _, name := range []string{"c", "f"} {
		out := filepath.Join(dir, name+".json")
		code, _, stderr := runCLI(t, "calibrate", filepath.Join(dir, lenetModel), "--data", filepath.Join(dir, name+".npy"), "-o", out, "-q")
		if code != ExitOK {
			t.Fatalf("calibrate on %s.npy: exit code %d, stderr: %s", name, code, stderr)
		}
		tables[name], _ = os.ReadFile(out)
	}
	if !bytes.Equal(tables["c"], tables["f"]) {
		t.Error("the table from Fortran-order data differs from the table from C-order data")
	}
}
