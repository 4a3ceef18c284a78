package cli

import (
	"errors"
	"testing"
)

func TestMentionsFlag(t *testing.T) {
	cases := []struct {
		msg, name string
		want      bool
	}{
		{"--bits 9 is invalid", "bits", true},
		{"invalid --out", "out", true},
		{"write --output x.json", "out", false},
		{"--plots and --plot DIR", "plot", true},
		{"--plots only", "plot", false},
		{"--eval-limit -1", "eval", false},
		{"no flag here", "bits", false},
	}
	for _, c := range cases {
		if got := mentionsFlag(c.msg, c.name); got != c.want {
			t.Errorf("mentionsFlag(%q, %q) = %v, want %v", c.msg, c.name, got, c.want)
		}
	}
}

func TestAnnotateNamesSource(t *testing.T) {
	g := &globalOptions{sources: map[string]string{"out": "QTOOL_OUT", "bits": "key bits of config c.yaml"}}
	got := g.annotate(errors.New("--bits 9 is invalid; use 2 to 8"))
	want := "--bits 9 is invalid; use 2 to 8 (the value of --bits came from key bits of config c.yaml)"
	if got != want {
		t.Errorf("annotate = %q, want %q", got, want)
	}
	if got := g.annotate(errors.New("cannot write --output")); got != "cannot write --output" {
		t.Errorf("annotate added a source for --out to %q", got)
	}
}
