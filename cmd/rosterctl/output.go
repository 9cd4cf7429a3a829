package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/client"
)

// jsonOut reports whether -o json was asked for.
func (a *app) jsonOut() bool { return a.output == "json" }

// printJSON writes v as one indented JSON document.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJSONLine writes v as one compact JSON object on a line of its own:
// the form of the streaming commands.
func (a *app) printJSONLine(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// newTable returns a writer that aligns tab-separated cells in columns.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one table row.
func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// field is one "name: value" line of a single-object answer in table form.
type field struct{ name, value string }

// printFields writes the fields as aligned "name: value" lines; a field
// without a name continues the list of the one above it.
func (a *app) printFields(fields ...field) error {
	tw := newTable(a.stdout)
	for _, f := range fields {
		name := f.name
		if name != "" {
			name += ":"
		}
		row(tw, name, f.value)
	}
	return tw.Flush()
}

// display renders a key or value for a table cell or event line: as is
// when it is printable UTF-8, else quoted with Go escapes (so tabs,
// newlines and binary bytes never break the layout).
func display(b []byte) string {
	if len(b) == 0 {
		return `""`
	}
	if !utf8.Valid(b) {
		return strconv.Quote(string(b))
	}
	for _, r := range string(b) {
		if r != ' ' && !unicode.IsPrint(r) {
			return strconv.Quote(string(b))
		}
	}
	return string(b)
}

func displayString(s string) string { return display([]byte(s)) }

// leaseCell is a lease ID in a table: "-" when there is none.
func leaseCell(id client.LeaseID) string {
	if id == client.NoLease {
		return "-"
	}
	return id.String()
}

func itoa(n int64) string  { return strconv.FormatInt(n, 10) }
func utoa(n uint64) string { return strconv.FormatUint(n, 10) }
func btoa(b bool) string   { return strconv.FormatBool(b) }

// nameCell is a name in a table: "-" when there is none.
func nameCell(s string) string {
	if s == "" {
		return "-"
	}
	return displayString(s)
}

// toKVJSON is a kv as the API writes it: the value as text when it is
// valid UTF-8, else as base64; no value fields without withValue; lease
// omitted when none.
func toKVJSON(kv client.KV, withValue bool) api.KV {
	j := api.KV{
		Key:            kv.Key,
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          kv.Lease,
	}
	if withValue {
		j.SetValue(kv.Value)
	}
	return j
}
