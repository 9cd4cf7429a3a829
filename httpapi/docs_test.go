package httpapi

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsAPIListsEveryRoute keeps docs/api.md in step with the code:
// every route the gin engine serves must appear there as "METHOD /path"
// (":id" and "*key" written "{id}" and "{key}").
func TestDocsAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	param := regexp.MustCompile(`[:*]([A-Za-z_]+)`)
	routes := e.srv.engine.Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, r := range routes {
		want := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/api.md does not document %s (served as %s %s)", want, r.Method, r.Path)
		}
	}
}
