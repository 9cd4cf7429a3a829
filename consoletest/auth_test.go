package consoletest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestConsoleAccessControl runs the console against a member with -auth
// (API.md "Security"): it asks for a token, refuses a wrong one plainly,
// works with a right one, keeps it in sessionStorage only, and shows a 403
// as the API gave it.
func TestConsoleAccessControl(t *testing.T) {
	t.Parallel() // each has its own cluster and browser
	if chromiumPath() == "" {
		t.Skip("no Chromium found (install Debian's chromium, as .ci/run does, or set ROSTER_CHROMIUM): skipping")
	}
	if err := authSupported(cluster.Binary(t)); err != nil {
		t.Skip("rosterd -h lists no -auth flag (access control has not landed yet): skipping the console's token test")
	}
	const root = "console-test-root-token-5f1c2a"
	tokenFile := filepath.Join(t.TempDir(), "root-token")
	if err := os.WriteFile(tokenFile, []byte(root+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := cluster.StartWith(t, 1, cluster.Options{Client: cluster.TokenClient(nil, root)}, "-auth", "-root-token-file", tokenFile)
	base := "http://" + c.Members[0].HTTP
	admin := &apiClient{t: t, hc: c.Client}
	anon := &apiClient{t: t, hc: &http.Client{Timeout: 15 * time.Second}}
	anon.must(401, "GET", base+"/v1/kv/?prefix=true", "", nil)
	admin.must(200, "PUT", base+"/v1/kv/services/api/node-1", `{"addr":"10.0.1.1:8080"}`, nil)
	admin.must(200, "PUT", base+"/v1/kv/config/mode", "blue", nil)
	// A token that may read /services/api/ only.
	admin.must(200, "PUT", base+"/v1/auth/roles/api-reader", `{"rules":[{"prefix":"/services/api/","read":true}]}`, nil)
	var tok struct {
		Token string `json:"token"`
	}
	admin.must(201, "POST", base+"/v1/auth/tokens", `{"name":"dashboards","roles":["api-reader"]}`, &tok)

	b := newBrowser(t)
	t.Cleanup(func() {
		for _, e := range b.pageErrors() {
			t.Errorf("page error: %s", e)
		}
	})
	b.open(t, base+"/?view=services")
	b.waitFor(t, 5*time.Second, "the token dialog", `document.getElementById('token-dialog').open`)
	b.screenshot(t, "token")

	// A wrong token: refused plainly, nothing kept.
	b.typeInto(t, "#token-input", "not-a-token")
	b.click(t, "#token-submit")
	b.waitFor(t, 5*time.Second, "the refusal", `document.getElementById('token-error').textContent.includes('401 unauthenticated')`)
	if !evalJS[bool](t, b, `document.getElementById('token-dialog').open && sessionStorage.getItem('roster.token') === null`) {
		t.Fatal("a refused token closed the dialog or was kept")
	}

	// The right one: the dialog closes, the views fill, live.
	b.typeInto(t, "#token-input", root)
	b.click(t, "#token-submit")
	b.waitFor(t, 5*time.Second, "the services, signed in", `!document.getElementById('token-dialog').open && document.querySelector('[data-key="/services/api/node-1"]') && Roster.store.state === 'live'`)
	admin.must(200, "PUT", base+"/v1/kv/services/api/node-2", `{"addr":"10.0.1.2:8080"}`, nil)
	b.waitFor(t, 2*time.Second, "a new key through the token's watch", `document.querySelector('[data-key="/services/api/node-2"]')`)
	if !evalJS[bool](t, b, `sessionStorage.getItem('roster.token') === `+jsString(root)+` && localStorage.length === 0 && !document.cookie`) {
		t.Error("the token is not in sessionStorage only")
	}

	// A narrower token: listing / is 403, shown as the API said; its own
	// prefix works.
	b.click(t, "#signout")
	b.waitFor(t, 5*time.Second, "the token dialog again", `document.getElementById('token-dialog').open`)
	b.typeInto(t, "#token-input", tok.Token)
	b.click(t, "#token-submit")
	b.waitFor(t, 5*time.Second, "the 403", `document.getElementById('services-notice').textContent.includes('403 permission_denied')`)
	b.screenshot(t, "forbidden")
	b.typeInto(t, "#scope", "/services/api/\r")
	b.waitFor(t, 5*time.Second, "the allowed prefix", `Roster.store.state === 'live' && document.querySelector('[data-key="/services/api/node-2"]') && !document.getElementById('services-notice').textContent`)

	// A lease this token may not read (GET /v1/leases/{id} needs write on
	// its keys) shows the refusal in its countdown, and is asked again now
	// and then, not every second.
	var g struct {
		ID string `json:"id"`
	}
	admin.must(201, "POST", base+"/v1/leases", `{"ttl":60}`, &g)
	admin.must(200, "PUT", base+"/v1/kv/services/api/node-3?lease="+g.ID, `{"addr":"10.0.1.3:8080"}`, nil)
	cd := `document.querySelector('[data-key="/services/api/node-3"] .cd-text')`
	b.waitFor(t, 5*time.Second, "the refusal in the countdown", cd+` && `+cd+`.textContent === 'permission_denied'`)
	asked := `performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/leases/` + g.ID + `')).length`
	before := evalJS[int](t, b, asked)
	start := evalJS[float64](t, b, `performance.now()`)
	b.waitFor(t, 10*time.Second, "4 s to pass", fmt.Sprintf(`performance.now() > %f`, start+4000))
	if n := evalJS[int](t, b, asked) - before; n > 1 {
		t.Errorf("the refused lease was asked for %d times in 4 s", n)
	}

	// Signing out forgets what the token read: root reads /config/mode in
	// the key editor and the lease of node-3 with its keys; after a sign-in
	// with the narrower token, neither is shown from the old answers.
	signIn := func(token string) {
		b.click(t, "#signout")
		b.waitFor(t, 5*time.Second, "the token dialog", `document.getElementById('token-dialog').open`)
		b.typeInto(t, "#token-input", token)
		b.click(t, "#token-submit")
		b.waitFor(t, 5*time.Second, "the dialog closed", `!document.getElementById('token-dialog').open`)
	}
	signIn(root)
	b.click(t, `.nav a[data-view="services"]`)
	b.waitFor(t, 5*time.Second, "root's countdown of node-3", cd+` && parseInt(`+cd+`.textContent) > 0`)
	b.open(t, base+"/?view=kv&key=/config/mode")
	b.waitFor(t, 5*time.Second, "root reading /config/mode", `document.getElementById('kv-value').value === 'blue'`)
	signIn(tok.Token)
	b.waitFor(t, 5*time.Second, "the editor refusing the narrower token", `document.getElementById('kv-result').textContent.includes('403 permission_denied')`)
	if evalJS[bool](t, b, `document.getElementById('kv-value').value === 'blue' || !!(Roster.leases.map.get(`+jsString(g.ID)+`) || {}).keys`) {
		t.Error("after signing in with another token the console still shows what root read")
	}
}
