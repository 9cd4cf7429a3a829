package consoletest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// memberStatus is the part of GET /v1/cluster/status the tests read.
type memberStatus struct {
	ID        string `json:"id"`
	Reachable bool   `json:"reachable"`
	Ready     bool   `json:"ready"`
	Leader    bool   `json:"leader"`
	Error     *struct {
		Code string `json:"code"`
	} `json:"error"`
	Term    *uint64 `json:"term"`
	Version string  `json:"version"`
}

type clusterStatus struct {
	Member  string         `json:"member"`
	Members []memberStatus `json:"members"`
}

// seed registers a few services and settings, so that the views (and the
// screenshots) show what an operator would see.
func seed(a *apiClient, base string) {
	for i := 1; i <= 3; i++ {
		id := a.grant(base, 120, fmt.Sprintf("/services/api/node-%d", i))
		a.must(200, "PUT", fmt.Sprintf("%s/v1/kv/services/api/node-%d?lease=%s", base, i, id),
			fmt.Sprintf(`{"addr":"10.0.1.%d:8080","zone":"eu-west-1%c","version":"2.4.1","weight":100}`, i, 'a'+i-1), nil)
	}
	for i := 1; i <= 2; i++ {
		id := a.grant(base, 90, fmt.Sprintf("/services/web/web-%d", i))
		a.must(200, "PUT", fmt.Sprintf("%s/v1/kv/services/web/web-%d?lease=%s", base, i, id), fmt.Sprintf("10.0.2.%d:80", i), nil)
	}
	id := a.grant(base, 3600, "/services/billing/grpc-1")
	a.must(200, "PUT", base+"/v1/kv/services/billing/grpc-1?lease="+id,
		`{"grpc_addr":"10.0.3.1:9000","metadata":{"region":"eu-west-1","canary":false}}`, nil)
	a.must(200, "PUT", base+"/v1/kv/config/mode", "blue", nil)
	a.must(200, "PUT", base+"/v1/kv/config/limits", `{"rps":500,"burst":50}`, nil)
}

// TestConsole runs every view against one real three-member cluster and one
// browser; the subtests run in order and build on each other (the member
// kill comes last).
func TestConsole(t *testing.T) {
	t.Parallel() // each has its own cluster and browser
	c := cluster.Start(t, 3)
	serving, victim := c.Members[0], c.Members[2]
	base := "http://" + serving.HTTP
	api := &apiClient{t: t, hc: c.Client}
	seed(api, base)

	t.Run("StatusRoute", func(t *testing.T) {
		var st clusterStatus
		c.Eventually(10*time.Second, "every member ready in /v1/cluster/status", func() bool {
			st = clusterStatus{}
			if api.call("GET", base+"/v1/cluster/status", "", &st) != 200 || len(st.Members) != 3 {
				return false
			}
			for _, m := range st.Members {
				if !m.Reachable || !m.Ready || m.Term == nil || m.Version == "" {
					return false
				}
			}
			return true
		})
		if st.Member != serving.ID {
			t.Errorf("answered by %q, want %q", st.Member, serving.ID)
		}
	})

	var b *browser
	if chromiumPath() != "" {
		b = newBrowser(t)
	} else {
		t.Log("no Chromium found (install Debian's chromium, as .ci/run does, or set ROSTER_CHROMIUM): the browser subtests skip")
	}
	needBrowser := func(t *testing.T) {
		t.Helper()
		if b == nil {
			t.Skip("no Chromium found: skipping")
		}
		t.Cleanup(func() {
			for _, e := range b.pageErrors() {
				t.Errorf("page error: %s", e)
			}
		})
	}

	var lease4 string // the lease of /services/api/node-4, put in Services
	t.Run("Services", func(t *testing.T) {
		needBrowser(t)
		b.open(t, base+"/?view=services")
		b.waitFor(t, 5*time.Second, "the listing", `document.querySelector('[data-key="/services/api/node-1"]')`)
		t.Logf("page load: %s", evalJS[string](t, b, `(() => { const n = performance.getEntriesByType('navigation')[0];
			return 'DOMContentLoaded ' + n.domContentLoadedEventEnd.toFixed(0) + ' ms, load ' + n.loadEventEnd.toFixed(0) + ' ms, ' + performance.getEntriesByType('resource').filter(r => r.name.includes('/ui/')).length + ' assets'; })()`))
		// A key put through the API (on another member) shows within a second.
		lease4 = api.grant(base, 30, "/services/api/node-4")
		api.must(200, "PUT", "http://"+c.Members[1].HTTP+"/v1/kv/services/api/node-4?lease="+lease4,
			`{"addr":"10.0.1.4:8080","zone":"eu-west-1a","version":"2.4.2","weight":50}`, nil)
		took := b.waitFor(t, time.Second, "the new key in the services view", `document.querySelector('[data-key="/services/api/node-4"]')`)
		t.Logf("the key appeared %v after the put was acknowledged", took)
		row := `document.querySelector('[data-key="/services/api/node-4"]')`
		if text := evalJS[string](t, b, row+`.textContent`); !strings.Contains(text, `"10.0.1.4:8080"`) || !strings.Contains(text, "node-4") {
			t.Errorf("row text %q lacks the name or the pretty-printed value", text)
		}
		// Its lease counts down, locally, second by second.
		cd := row + `.querySelector('.cd-text')`
		b.waitFor(t, 5*time.Second, "the countdown", `parseInt(`+cd+`.textContent) > 0`)
		first := evalJS[int](t, b, `parseInt(`+cd+`.textContent)`)
		if first > 30 {
			t.Errorf("countdown starts at %ds for a 30 s lease", first)
		}
		b.waitFor(t, 4*time.Second, "the countdown to decrease", fmt.Sprintf(`parseInt(%s.textContent) < %d`, cd, first))
		// A change updates the row in place and flashes it.
		api.must(200, "PUT", base+"/v1/kv/services/api/node-4?lease="+lease4,
			`{"addr":"10.0.1.4:8080","zone":"eu-west-1a","version":"2.4.3","weight":50}`, nil)
		b.waitFor(t, 2*time.Second, "the changed value, flashing", row+`.textContent.includes('"2.4.3"') && `+row+`.classList.contains('flash')`)
		b.screenshot(t, "services")
	})

	t.Run("PrefixInURL", func(t *testing.T) {
		needBrowser(t)
		b.typeInto(t, "#scope", "/services/web/\r") // Enter submits
		only := `(() => { const ks = [...document.querySelectorAll('#services-tree [data-key]')].map(e => e.dataset.key);
			return ks.length === 2 && ks.every(k => k.startsWith('/services/web/')); })()`
		b.waitFor(t, 5*time.Second, "only the keys under the prefix", only+` && location.search.includes('prefix=/services/web/')`)
		// The URL is the state: loading it again shows the same.
		url := evalJS[string](t, b, `location.href`)
		b.open(t, url)
		b.waitFor(t, 5*time.Second, "the same view from the URL", only+` && document.getElementById('scope').value === '/services/web/'`)
		b.open(t, base+"/?view=services")
		b.waitFor(t, 5*time.Second, "the full listing", `document.querySelector('[data-key="/services/api/node-4"]')`)
	})

	t.Run("RevokeFromLeasesView", func(t *testing.T) {
		needBrowser(t)
		b.click(t, `.nav a[data-view="leases"]`)
		row := fmt.Sprintf(`document.querySelector('tr[data-lease="%s"]')`, lease4)
		b.waitFor(t, 5*time.Second, "the lease with its key", row+` && `+row+`.textContent.includes('/services/api/node-4')`)
		b.screenshot(t, "leases")
		b.click(t, fmt.Sprintf(`button[data-revoke="%s"]`, lease4))
		b.waitFor(t, 2*time.Second, "the confirmation", `document.getElementById('confirm-dialog').open`)
		b.screenshot(t, "leases-revoke")
		b.click(t, `#confirm-ok`)
		b.waitFor(t, 3*time.Second, "the lease gone from the leases view", `!`+row)
		b.waitFor(t, 3*time.Second, "its key gone from the services view", `!document.querySelector('[data-key="/services/api/node-4"]')`)
		for _, m := range c.Members {
			api.must(404, "GET", m.URL("/v1/kv/services/api/node-4"), "", nil)
			api.must(404, "GET", m.URL("/v1/leases/"+lease4), "", nil)
		}
	})

	t.Run("KeyEditor", func(t *testing.T) {
		needBrowser(t)
		b.click(t, `.nav a[data-view="kv"]`)
		b.typeInto(t, "#kv-key", "/config/feature-x")
		b.typeInto(t, "#kv-value", `{"enabled":true,"rollout":25}`)
		b.click(t, "#kv-put")
		b.waitFor(t, 5*time.Second, "the put's answer", `document.getElementById('kv-result').textContent.includes('Stored /config/feature-x')`)
		var kv struct {
			Value       string `json:"value"`
			ModRevision int64  `json:"mod_revision"`
		}
		api.must(200, "GET", victim.URL("/v1/kv/config/feature-x"), "", &kv)
		if kv.Value != `{"enabled":true,"rollout":25}` {
			t.Errorf("the API reads %q", kv.Value)
		}
		b.waitFor(t, 5*time.Second, "the stored revision", fmt.Sprintf(`document.getElementById('kv-meta-list').textContent.includes('%d')`, kv.ModRevision))
		b.screenshot(t, "kv")
		// Someone else changes it; a compare-and-swap on the shown revision
		// fails with the API's own error.
		api.must(200, "PUT", base+"/v1/kv/config/feature-x", `{"enabled":false}`, nil)
		b.click(t, "#kv-cas")
		b.typeInto(t, "#kv-value", `{"enabled":true,"rollout":50}`)
		b.click(t, "#kv-put")
		b.waitFor(t, 5*time.Second, "the CAS failure", `document.getElementById('kv-result').textContent.includes('409 cas_failed')`)
		api.must(200, "GET", base+"/v1/kv/config/feature-x", "", &kv)
		if kv.Value != `{"enabled":false}` {
			t.Errorf("a failed CAS changed the key: %q", kv.Value)
		}
		b.click(t, "#kv-cas") // off again
		b.click(t, "#kv-del")
		b.waitFor(t, 2*time.Second, "the confirmation", `document.getElementById('confirm-dialog').open`)
		b.click(t, "#confirm-ok")
		b.waitFor(t, 5*time.Second, "the delete's answer", `document.getElementById('kv-result').textContent.includes('Deleted /config/feature-x')`)
		api.must(404, "GET", base+"/v1/kv/config/feature-x", "", nil)
	})

	t.Run("ChangeFeed", func(t *testing.T) {
		needBrowser(t)
		b.click(t, `.nav a[data-view="feed"]`)
		b.waitFor(t, 3*time.Second, "the revocation in the feed",
			`[...document.querySelectorAll('#feed-body tr[data-type="revoked"]')].some(r => r.textContent.includes('/services/api/node-4'))`)
		b.click(t, "#feed-pause")
		api.must(200, "PUT", base+"/v1/kv/config/paused", "1", nil)
		b.waitFor(t, 3*time.Second, "the held event counted", `document.getElementById('feed-pause').textContent.includes('1 new')`)
		if evalJS[bool](t, b, `document.getElementById('feed-body').textContent.includes('/config/paused')`) {
			t.Error("a paused feed showed a new event")
		}
		b.click(t, "#feed-pause")
		b.waitFor(t, 2*time.Second, "the held event after resuming", `document.querySelector('#feed-body tr').textContent.includes('/config/paused')`)
		b.screenshot(t, "feed")
	})

	// A binary value shows as base64, read-only; a put of it (say, to
	// attach the key to a lease) stores the same bytes, not their base64
	// text.
	t.Run("KeyEditorBinary", func(t *testing.T) {
		needBrowser(t)
		blob := "\xff\xfe\x00roster\x80"
		api.must(200, "PUT", base+"/v1/kv/config/blob", blob, nil)
		b.open(t, base+"/?view=kv&key=/config/blob")
		b.waitFor(t, 5*time.Second, "the binary value, read-only", `document.getElementById('kv-result').textContent.includes('Read /config/blob') && document.getElementById('kv-value').readOnly`)
		lease := api.grant(base, 60, "/config/blob")
		b.typeInto(t, "#kv-lease", lease)
		b.click(t, "#kv-put")
		b.waitFor(t, 5*time.Second, "the put's answer", `document.getElementById('kv-result').textContent.includes('Stored /config/blob')`)
		var kv struct {
			Value       *string `json:"value"`
			ValueBase64 []byte  `json:"value_base64"`
			Lease       string  `json:"lease"`
		}
		api.must(200, "GET", base+"/v1/kv/config/blob", "", &kv)
		got := string(kv.ValueBase64)
		if kv.Value != nil {
			got = *kv.Value
		}
		if got != blob || kv.Lease != lease {
			t.Errorf("after a put from the editor the key holds %q on lease %q, want %q on lease %s", got, kv.Lease, blob, lease)
		}
	})

	// A key with a ".." segment cannot travel in a browser's URL (the
	// browser resolves it: /config/dots/../mode would name /config/mode):
	// the editor says so, and never reads or deletes the other key.
	t.Run("KeyEditorDotSegments", func(t *testing.T) {
		needBrowser(t)
		api.must(200, "PUT", base+"/v1/kv/config/dots/../mode", "dots", nil)
		b.open(t, base+"/?view=kv&key=/config/dots/../mode")
		b.waitFor(t, 5*time.Second, "the refusal", `document.getElementById('kv-result').textContent.includes('invalid_argument')`)
		b.click(t, "#kv-del")
		b.waitFor(t, 2*time.Second, "the refusal of the delete", `document.getElementById('kv-result').textContent.includes('invalid_argument') && !document.getElementById('confirm-dialog').open`)
		api.must(200, "GET", base+"/v1/kv/config/mode", "", nil)
		api.must(200, "GET", base+"/v1/kv/config/dots/../mode", "", nil)
	})

	t.Run("ClusterView", func(t *testing.T) {
		needBrowser(t)
		b.click(t, `.nav a[data-view="cluster"]`)
		b.waitFor(t, 5*time.Second, "three ready members", `document.querySelectorAll('#cluster-body tr[data-status="ready"]').length === 3`)
		b.screenshot(t, "cluster")
	})

	t.Run("NarrowWindow", func(t *testing.T) {
		needBrowser(t)
		b.do(t, "narrow viewport", chromedp.EmulateViewport(390, 844))
		defer b.do(t, "wide viewport", chromedp.EmulateViewport(1280, 800))
		b.click(t, `.nav a[data-view="services"]`)
		b.waitFor(t, 3*time.Second, "the services", `document.querySelector('[data-key="/services/api/node-1"]')`)
		if w := evalJS[int](t, b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the page is %dpx wide in a 390px window", w)
		}
		b.screenshot(t, "services-narrow")
		b.click(t, `.nav a[data-view="cluster"]`)
	})

	// The member serving the console restarts: the open page reconnects
	// its watch by itself and shows what changed meanwhile (resumed from
	// its last revision, or listed again if that member's history no
	// longer reaches back).
	t.Run("ServingMemberRestarts", func(t *testing.T) {
		needBrowser(t)
		b.open(t, base+"/?view=services")
		b.waitFor(t, 5*time.Second, "the live view", `Roster.store.state === 'live' && document.querySelector('[data-key="/services/api/node-1"]')`)
		serving.Stop()
		b.waitFor(t, 10*time.Second, "the watch to notice", `Roster.store.state !== 'live'`)
		other := "http://" + c.Members[1].HTTP
		c.Eventually(15*time.Second, "a write through another member", func() bool {
			return api.call("PUT", other+"/v1/kv/services/api/node-5", `{"addr":"10.0.1.5:8080"}`, nil) == http.StatusOK
		})
		serving.Restart()
		c.WaitReady(30*time.Second, serving)
		took := b.waitFor(t, 15*time.Second, "the change made while the member was down", `Roster.store.state === 'live' && document.querySelector('[data-key="/services/api/node-5"]')`)
		t.Logf("the page was live again %v after the member was ready", took)
	})

	t.Run("MemberDown", func(t *testing.T) {
		if b != nil {
			b.click(t, `.nav a[data-view="cluster"]`)
			b.waitFor(t, 5*time.Second, "three ready members", `document.querySelectorAll('#cluster-body tr[data-status="ready"]').length === 3`)
		}
		victim.Kill()
		start := time.Now()
		testutil.Eventually(t, 5*time.Second, "the killed member reported down", func() bool {
			var st clusterStatus
			if api.call("GET", base+"/v1/cluster/status", "", &st) != http.StatusOK {
				return false
			}
			for _, m := range st.Members {
				if m.ID == victim.ID {
					return !m.Reachable && !m.Ready && m.Error != nil && m.Error.Code == "unreachable"
				}
			}
			return false
		})
		t.Logf("the status route reported %s down %v after the kill", victim.ID, time.Since(start))
		if b == nil {
			return
		}
		b.waitFor(t, 5*time.Second, "the member marked down in the cluster view", fmt.Sprintf(`document.querySelector('#cluster-body tr[data-member="%s"][data-status="down"]')`, victim.ID))
		t.Logf("the cluster view showed %s down %v after the kill", victim.ID, time.Since(start))
		b.screenshot(t, "cluster-down")
		for _, e := range b.pageErrors() {
			t.Errorf("page error: %s", e)
		}
	})

	// A member waiting to be added (-bootstrap=false) knows no member:
	// its Cluster view says so, rather than an empty table under "0/0
	// ready" in the colour of a healthy cluster.
	t.Run("MemberNotInTheConfiguration", func(t *testing.T) {
		needBrowser(t)
		waiting := c.Add()
		waiting.Start("-bootstrap=false")
		c.Eventually(10*time.Second, "the waiting member serving", func() bool {
			res, err := c.Client.Get(waiting.URL("/healthz"))
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
		b.open(t, waiting.URL("/?view=cluster"))
		b.waitFor(t, 5*time.Second, "the notice", `document.getElementById('cluster-notice').textContent.includes('not in the cluster')`)
		if evalJS[bool](t, b, `document.getElementById('count-cluster').classList.contains('good') || !!document.querySelector('#cluster-stats .stat.good')`) {
			t.Error("the Cluster view of a member in no configuration shows a healthy cluster")
		}
	})
}
