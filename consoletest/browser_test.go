package consoletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/rosterhq/roster/internal/testutil"
)

// browser is one headless Chromium tab, shared by the subtests of a test.
type browser struct {
	t   testing.TB
	ctx context.Context

	mu     sync.Mutex
	errors []string // uncaught exceptions and console.error calls of the page
}

// chromiumPath finds the browser: ROSTER_CHROMIUM, else Debian's chromium
// or another usual name on PATH; "" when there is none.
func chromiumPath() string {
	if p := os.Getenv("ROSTER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts headless Chromium at 1280×800 (skipping the test when
// there is none) and stops it at cleanup.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no Chromium found (install Debian's chromium, as .ci/run does, or set ROSTER_CHROMIUM): skipping the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		// This machine has no network: nothing may try to reach one.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "uncaught: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg = "console.error: " + strings.Join(parts, " ")
		default:
			return
		}
		b.mu.Lock()
		b.errors = append(b.errors, msg)
		b.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("listening to the page: %v", err)
	}
	return b
}

// pageErrors returns the page's script errors so far and forgets them.
func (b *browser) pageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := b.errors
	b.errors = nil
	return errs
}

// do runs actions with a deadline.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// open loads a console URL and waits until the console has started.
func (b *browser) open(t *testing.T, url string) {
	t.Helper()
	b.do(t, "open "+url, chromedp.Navigate(url))
	b.waitFor(t, 10*time.Second, "the console to start", `!!(window.Roster && window.Roster.store)`)
}

// eval evaluates a JavaScript expression in the page.
func evalJS[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds or d passes, and
// returns how long it took. It never sleeps longer than a poll interval.
func (b *browser) waitFor(t *testing.T, d time.Duration, what, cond string) time.Duration {
	t.Helper()
	start := time.Now()
	if !testutil.Poll(d, func() bool { return evalJS[bool](t, b, "!!("+cond+")") }) {
		state := evalJS[string](t, b, `JSON.stringify({url: location.href, store: Roster.store.state, prefix: Roster.store.prefix, keys: Roster.store.kvs.size, err: Roster.store.error && Roster.store.error.text})`)
		t.Fatalf("timed out after %v waiting for %s (condition %s); page state %s", d, what, cond, state)
	}
	return time.Since(start)
}

// click clicks the element matched by a CSS selector, as a user would.
func (b *browser) click(t *testing.T, sel string) {
	t.Helper()
	b.do(t, "click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// typeInto replaces the value of an input or textarea by typing.
func (b *browser) typeInto(t *testing.T, sel, text string) {
	t.Helper()
	b.waitFor(t, 5*time.Second, sel+" to be visible", `document.querySelector(`+jsString(sel)+`)?.offsetParent`)
	evalJS[bool](t, b, `(el => { el.value = ''; el.focus(); return true; })(document.querySelector(`+jsString(sel)+`))`)
	b.do(t, "type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible))
}

// screenshot saves the viewport as name.png in $ROSTER_SCREENSHOTS, when
// set. It waits for the page's animations to settle first.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("ROSTER_SCREENSHOTS")
	if dir == "" {
		return
	}
	b.waitFor(t, 5*time.Second, "animations to end", `document.getAnimations().every(a => !(a instanceof CSSAnimation) || a.playState !== 'running')`)
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---------- the API, as the tests' own client

type apiClient struct {
	t     testing.TB
	hc    *http.Client
	token string
}

// call sends a request to base+path and decodes a JSON answer into out
// (when non-nil); it returns the status.
func (a *apiClient) call(method, url, body string, out any) int {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	res, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: decoding %s: %v", method, url, b, err)
		}
	}
	return res.StatusCode
}

// must is call that fails the test unless the status is want.
func (a *apiClient) must(want int, method, url, body string, out any) {
	a.t.Helper()
	if got := a.call(method, url, body, out); got != want {
		a.t.Fatalf("%s %s: status %d, want %d", method, url, got, want)
	}
}

// grant grants a lease and returns its ID.
func (a *apiClient) grant(base string, ttl int, name string) string {
	a.t.Helper()
	var g struct {
		ID string `json:"id"`
	}
	a.must(201, "POST", base+"/v1/leases", fmt.Sprintf(`{"ttl":%d,"name":%q}`, ttl, name), &g)
	if g.ID == "" {
		a.t.Fatal("grant: no ID")
	}
	return g.ID
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

var errNoAuth = errors.New("rosterd has no -auth flag")

// authSupported reports whether this rosterd has access control (-auth in
// its usage), which another workstream adds.
func authSupported(bin string) error {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	if !strings.Contains(string(out), "-auth") {
		return errNoAuth
	}
	return nil
}
