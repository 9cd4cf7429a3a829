package client

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNoServerPackage keeps the client free of the server: of this
// module it may import only the wire types of api/ (and itself), and api/
// imports nothing of the module at all.
func TestImportsNoServerPackage(t *testing.T) {
	const module = "github.com/rosterhq/roster/"
	allowed := map[string][]string{
		".":            {module + "api", module + "client"},
		"grpcresolver": {module + "api", module + "client"},
		"../api":       nil,
	}
	for dir, ok := range allowed {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(path, module) {
					continue
				}
				good := false
				for _, a := range ok {
					good = good || path == a
				}
				if !good {
					t.Errorf("%s imports %s: the client may use only the wire types of api/", f, path)
				}
			}
		}
	}
}
