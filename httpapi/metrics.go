package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics are the request metrics of one Server. They live in the
// Server, not in package variables, so that several servers (tests, one
// process with many nodes) each count their own.
type httpMetrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	watchers    prometheus.Gauge
	blocking    prometheus.Gauge
	eventsSent  prometheus.Counter
	watchersCut prometheus.Counter
	conns       prometheus.Gauge
	rejected    *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roster_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roster_watchers_open", Help: "Watch streams open on this member.",
		}),
		blocking: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roster_blocking_reads_open", Help: "Blocking reads waiting for a change on this member.",
		}),
		eventsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roster_watch_events_sent_total", Help: "Events written to watch streams.",
		}),
		watchersCut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roster_watchers_cut_off_total", Help: "Watch streams ended because the watcher fell too far behind or stopped reading.",
		}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roster_http_connections_open", Help: "HTTP connections open on this member.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_http_rejected_total",
			Help: "Requests and connections refused with 429 because a limit was reached, by limit.",
		}, []string{"limit"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.watchers, m.blocking, m.eventsSent, m.watchersCut, m.conns, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("httpapi: registering metrics"), err)
		}
	}
	return m, nil
}

// observe is the outermost middleware, so that it also counts answers made
// by the recovery middleware and the 404/405 handlers.
func (m *httpMetrics) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	// The route pattern, never the path: paths hold keys and IDs, which
	// would make the label set unbounded.
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	method := methodLabel(c.Request.Method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(c.Writer.Status())).Inc()
	m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
}

// methodLabel keeps the method label bounded: a client may send any token.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// metricsHandler serves the configured Gatherer in the Prometheus text
// format, or 404 when there is none.
func (s *Server) metricsHandler() gin.HandlerFunc {
	if s.cfg.Gatherer == nil {
		return func(c *gin.Context) { s.fail(c, errRouteNotFound) }
	}
	h := promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return gin.WrapH(h)
}

// promLogger adapts the server's slog logger to promhttp's Logger.
type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) { l.s.log.Warn("serving metrics", "detail", fmt.Sprint(v...)) }
