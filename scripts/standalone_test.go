package scripts

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// outsideRefs name documents that live outside the repository (the
// project's working notes): code and docs must not send a reader there.
// protocol/PROTOCOL.md is the repository's own protocol document.
var outsideRefs = []string{
	"shared" + "/spec", "shared" + "/reference", "STYLE" + ".md",
	"hal-devices" + ".md", "fingerprint-r30x" + ".md", "the issue" + "'s",
}

// TestRepoStandsAlone: no file of the repository refers to a document a
// clone does not have.
func TestRepoStandsAlone(t *testing.T) {
	self, err := filepath.Abs("standalone_test.go")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if abs, _ := filepath.Abs(path); abs == self || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", path)
		rel = filepath.ToSlash(rel)
		for i, line := range bytes.Split(b, []byte("\n")) {
			for _, ref := range outsideRefs {
				if !strings.Contains(string(line), ref) {
					continue
				}
				t.Errorf("%s:%d refers to %q, which is not in the repository", rel, i+1, ref)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
