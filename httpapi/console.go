package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
)

// The web console (docs/console.md): plain HTML, CSS and JavaScript in ui/,
// embedded in the binary so that a member serves it with nothing to
// install and nothing loaded from the internet. It speaks only the public
// API, exactly as any other client does.
//
//go:embed ui
var uiFiles embed.FS

// Caching: index.html is always revalidated (no-cache plus an ETag), and it
// names every asset with ?v=<content hash>. An asset asked for with its
// current hash is immutable for a year; asked for without it (or with a
// stale one) it is revalidated like the page. So a new binary is picked up
// on the next page load, and nothing is fetched twice in between.
const (
	cacheRevalidate = "no-cache"
	cacheImmutable  = "public, max-age=31536000, immutable"
	// consolePolicy lets the page load only its own embedded files and talk
	// only to the member that served it (the API is same-origin).
	consolePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// asset is one embedded file, ready to serve.
type asset struct {
	body    []byte
	ctype   string
	etag    string // quoted strong ETag
	version string // the content hash ?v= must carry for long caching
}

// console holds the embedded files, indexed once at start.
type console struct {
	index  asset            // index.html with versioned asset URLs
	assets map[string]asset // by name under /ui/
}

// contentTypes are the types of the files the console ships; an embedded
// file of another kind is a build mistake that newConsole reports.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

func newAsset(name string, body []byte) (asset, error) {
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok {
		return asset{}, fmt.Errorf("httpapi: console file %s has no known content type", name)
	}
	sum := sha256.Sum256(body)
	v := hex.EncodeToString(sum[:8])
	return asset{body: body, ctype: ctype, etag: `"` + v + `"`, version: v}, nil
}

// newConsole reads the embedded files and rewrites index.html so that each
// reference to /ui/NAME carries NAME's content hash.
func newConsole() (*console, error) {
	c := &console{assets: map[string]asset{}}
	var page []byte
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFiles.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "ui/")
		if name == "index.html" {
			page = b
			return nil
		}
		a, err := newAsset(name, b)
		if err != nil {
			return err
		}
		c.assets[name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("httpapi: reading the console's files: %w", err)
	}
	if page == nil {
		return nil, fmt.Errorf("httpapi: the console has no index.html")
	}
	for name, a := range c.assets {
		ref := []byte(`"/ui/` + name + `"`)
		page = bytes.ReplaceAll(page, ref, []byte(`"/ui/`+name+`?v=`+a.version+`"`))
	}
	if c.index, err = newAsset("index.html", page); err != nil {
		return nil, err
	}
	return c, nil
}

// consoleRoutes serves the page on / and /ui/, and its files under /ui/.
// Every other unknown path keeps answering the JSON 404.
func (s *Server) consoleRoutes(e *gin.Engine) {
	page := func(c *gin.Context) { s.serveAsset(c, s.console.index, false) }
	e.GET("/", page)
	e.HEAD("/", page)
	e.GET("/ui/*file", s.consoleFile)
	e.HEAD("/ui/*file", s.consoleFile)
	e.GET("/v1/cluster/status", s.clusterStatus)
}

// GET /ui/{file}
func (s *Server) consoleFile(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("file"), "/")
	if name == "" || name == "index.html" {
		s.serveAsset(c, s.console.index, false)
		return
	}
	a, ok := s.console.assets[name]
	if !ok {
		s.fail(c, errRouteNotFound)
		return
	}
	s.serveAsset(c, a, c.Query("v") == a.version)
}

func (s *Server) serveAsset(c *gin.Context, a asset, immutable bool) {
	h := c.Writer.Header()
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if immutable {
		h.Set("Cache-Control", cacheImmutable)
	} else {
		h.Set("Cache-Control", cacheRevalidate)
	}
	if a.ctype == contentTypes[".html"] {
		h.Set("Content-Security-Policy", consolePolicy)
	}
	if etagMatches(c.GetHeader("If-None-Match"), a.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	if c.Request.Method == http.MethodHead {
		h.Set("Content-Type", a.ctype)
		h.Set("Content-Length", fmt.Sprint(len(a.body)))
		c.Status(http.StatusOK)
		return
	}
	c.Data(http.StatusOK, a.ctype, a.body)
}

// etagMatches implements If-None-Match's comparison (RFC 9110 13.1.2):
// "*" or any listed tag, weak or strong, equal to ours.
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
