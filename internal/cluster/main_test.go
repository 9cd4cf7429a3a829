package cluster

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every test package that starts clusters must remove the binary Binary
// builds (issue 11): its TestMain calls Main. This finds one that does not.
func TestEveryPackageUsingClustersCallsMain(t *testing.T) {
	root := moduleRoot()
	uses, calls := map[string]bool{}, map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir, src := filepath.Dir(path), string(b)
		if strings.Contains(src, `"github.com/rosterhq/roster/internal/cluster"`) {
			uses[dir] = true
		}
		if strings.Contains(src, "cluster.Main(m)") {
			calls[dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range uses {
		if !calls[dir] {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("package %s starts clusters but no TestMain calls cluster.Main, so the rosterd binary it builds is left in the temp directory; add:\n\tfunc TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }", rel)
		}
	}
}
