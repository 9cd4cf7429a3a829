package httpapi

import (
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"
)

// query parses URL query parameters, keeping the first error so a handler
// reads all of its parameters and checks once, before any Backend call.
// Unknown parameters are ignored; a repeated parameter counts by its first
// value. A malformed query string is refused as a whole: net/url skips a
// pair it cannot decode (`cas=1%ZZ`, `a=1;cas=2`) as if it were absent,
// which would turn a conditional write into an unconditional one.
type query struct {
	c   *gin.Context
	err error
}

func newQuery(c *gin.Context) *query {
	q := &query{c: c}
	if raw := c.Request.URL.RawQuery; raw != "" {
		if _, err := url.ParseQuery(raw); err != nil {
			q.fail(invalidf("malformed query string: %v", err))
		}
	}
	return q
}

func (q *query) fail(err error) {
	if q.err == nil {
		q.err = err
	}
}

// flag reads a boolean. A parameter given without a value (`?prefix`) is
// true; otherwise strconv.ParseBool's spellings are accepted and anything
// else is invalid.
func (q *query) flag(name string) bool {
	s, ok := q.c.GetQuery(name)
	if !ok {
		return false
	}
	if s == "" {
		return true
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		q.fail(invalidf("query parameter %s=%q is not a boolean", name, clip(s)))
		return false
	}
	return v
}

// count reads a non-negative integer; ok is false when it is absent.
func (q *query) count(name string) (v int64, ok bool) {
	s, ok := q.c.GetQuery(name)
	if !ok {
		return 0, false
	}
	v, err := parseNonNegative("query parameter "+name, s)
	if err != nil {
		q.fail(err)
		return 0, false
	}
	return v, true
}

// id reads a lease ID (positive, canonical); 0 when absent.
func (q *query) id(name string) int64 {
	s, ok := q.c.GetQuery(name)
	if !ok {
		return 0
	}
	v, err := parseID(s)
	if err != nil {
		q.fail(err)
		return 0
	}
	return v
}

// text reads a string parameter as given ("" when absent).
func (q *query) text(name string) string { return q.c.Query(name) }

// pathID parses the :id path parameter of a lease route.
func pathID(c *gin.Context) (int64, error) {
	return parseID(c.Param("id"))
}
